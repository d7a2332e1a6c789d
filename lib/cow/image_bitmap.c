/*
 * The public vsm_image_bitmap_* calls: argument and version checks over
 * the engine's bitmap calls (cow_bitmap.c), and the extent list.
 */
#include <stdlib.h>
#include <string.h>

#include "vsm/image.h"
#include "cow_int.h"
#include "image_int.h"

#define NEED(img) do { if (!(img)) return vsm_err(VSM_EINVAL, "image handle is NULL"); } while (0)

static int no_flags(vsm_image *img, unsigned int flags, const char *call)
{
	if (flags)
		return vsm_err(VSM_EINVAL, "%s: %s: unknown flags 0x%x",
			       vsm_cow_label(vsm__image_cow(img)), call, flags);
	return 0;
}

VSM_API int vsm_image_bitmap_add(vsm_image *img, const char *name,
				 const vsm_image_bitmap_opts *opts, unsigned int flags)
{
	int rc;

	vsm__error_reset();
	NEED(img);
	if ((rc = no_flags(img, flags, "bitmap add")) < 0)
		return rc;
	if (opts && (opts->version == 0 || opts->version > VSM_IMAGE_BITMAP_OPTS_VERSION))
		return vsm_err(VSM_EVERSION, "%s: bitmap options version %u is unknown",
			       vsm_cow_label(vsm__image_cow(img)), opts->version);
	return vsm_cow_bitmap_add(vsm__image_cow(img), name, opts ? opts->granularity : 0,
				  opts ? !opts->disabled : true);
}

VSM_API int vsm_image_bitmap_remove(vsm_image *img, const char *name, unsigned int flags)
{
	int rc;

	vsm__error_reset();
	NEED(img);
	if ((rc = no_flags(img, flags, "bitmap remove")) < 0)
		return rc;
	return vsm_cow_bitmap_remove(vsm__image_cow(img), name);
}

VSM_API int vsm_image_bitmap_clear(vsm_image *img, const char *name, unsigned int flags)
{
	int rc;

	vsm__error_reset();
	NEED(img);
	if ((rc = no_flags(img, flags, "bitmap clear")) < 0)
		return rc;
	return vsm_cow_bitmap_clear(vsm__image_cow(img), name);
}

VSM_API int vsm_image_bitmap_enable(vsm_image *img, const char *name, int enable,
				    unsigned int flags)
{
	int rc;

	vsm__error_reset();
	NEED(img);
	if ((rc = no_flags(img, flags, "bitmap enable")) < 0)
		return rc;
	return vsm_cow_bitmap_enable(vsm__image_cow(img), name, enable != 0);
}

VSM_API int vsm_image_bitmap_merge(vsm_image *dst, const char *dst_name, vsm_image *src,
				   const char *src_name, unsigned int flags)
{
	int rc;

	vsm__error_reset();
	NEED(dst);
	NEED(src);
	if ((rc = no_flags(dst, flags, "bitmap merge")) < 0)
		return rc;
	return vsm_cow_bitmap_merge(vsm__image_cow(dst), dst_name, vsm__image_cow(src),
				    src_name);
}

VSM_API int vsm_image_bitmap_list(vsm_image_bitmap_info **out, size_t *out_count,
				  vsm_image *img)
{
	vsm_cow_bitmap_info *l = NULL;
	vsm_image_bitmap_info *r;
	size_t n = 0, i;
	int rc;

	vsm__error_reset();
	NEED(img);
	if (!out || !out_count)
		return vsm_err(VSM_EINVAL, "bitmap list: out is NULL");
	*out = NULL;
	*out_count = 0;
	rc = vsm_cow_bitmap_list(vsm__image_cow(img), &l, &n);
	if (rc < 0 || n == 0)
		return rc;
	r = vsm__calloc(n, sizeof(*r));
	if (!r) {
		vsm_cow_bitmap_list_free(l, n);
		return -VSM_ENOMEM;
	}
	for (i = 0; i < n; i++) {
		r[i].name = l[i].name;  /* ownership moves */
		l[i].name = NULL;
		r[i].granularity = l[i].granularity;
		r[i].enabled = l[i].enabled;
		r[i].in_use = l[i].in_use;
	}
	vsm_cow_bitmap_list_free(l, n);
	*out = r;
	*out_count = n;
	return 0;
}

VSM_API void vsm_image_bitmap_list_free(vsm_image_bitmap_info *list, size_t count)
{
	size_t i;

	vsm__error_reset();
	for (i = 0; list && i < count; i++)
		free(list[i].name);
	free(list);
}

struct xl {
	vsm_image_extent *e;
	size_t n, cap;
};

static int add_extent(uint64_t off, uint64_t len, void *payload)
{
	struct xl *x = payload;

	if (x->n == x->cap) {
		size_t ncap = x->cap ? x->cap * 2 : 64;
		vsm_image_extent *ne = realloc(x->e, ncap * sizeof(*ne));

		if (!ne)
			return vsm_err(VSM_ENOMEM, "out of memory");
		x->e = ne;
		x->cap = ncap;
	}
	memset(&x->e[x->n], 0, sizeof(x->e[x->n]));
	x->e[x->n].start = off;
	x->e[x->n].length = len;
	x->e[x->n].present = 1;
	x->e[x->n].data = 1;
	x->e[x->n].offset = UINT64_MAX;
	x->n++;
	return 0;
}

VSM_API int vsm_image_bitmap_extents(vsm_image_extent **out, size_t *out_count,
				     vsm_image *img, const char *name)
{
	struct xl x = { NULL, 0, 0 };
	vsm_cow *c;
	int rc;

	vsm__error_reset();
	NEED(img);
	if (!out || !out_count)
		return vsm_err(VSM_EINVAL, "bitmap extents: out is NULL");
	c = vsm__image_cow(img);
	rc = vsm_cow_bitmap_extents(c, name, 0, vsm_cow_size(c), add_extent, &x);
	if (rc < 0) {
		free(x.e);
		return rc;
	}
	*out = x.e;
	*out_count = x.n;
	return 0;
}
