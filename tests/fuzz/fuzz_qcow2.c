/*
 * Fuzz target: the qcow2 engine through the image API. The input is an
 * image file. A read-only pass opens it, reads a few ranges, checks it
 * and maps it; a read-write pass (no backing) writes a few small ranges
 * derived from the input, flushes, checks, maps and closes; a repair
 * pass opens it with VSM_IMAGE_OPEN_REPAIR and repairs it. Every pass
 * lists the persistent bitmaps and walks their extents; the read-write
 * pass also adds one and merges into it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsm/vsm.h"
#include "fuzz_util.h"

#define CACHE_MAX (4u << 20)
#define IO_MAX 8192

static void read_some(vsm_image *img, uint64_t *seed, uint8_t *buf)
{
	uint64_t size = vsm_image_size(img);
	int i;

	if (!size)
		return;
	vsm_image_read(img, buf, size < IO_MAX ? (size_t)size : IO_MAX, 0);
	for (i = 0; i < 4; i++) {
		uint64_t off = fz_next(seed) % size;
		size_t len = (size_t)(fz_next(seed) % IO_MAX) + 1;

		if (len > size - off)
			len = (size_t)(size - off);
		vsm_image_read(img, buf, len, off);
	}
}

static void check_map(vsm_image *img, unsigned int flags)
{
	vsm_image_check_result cr = VSM_IMAGE_CHECK_RESULT_INIT;
	vsm_image_extent *ext = NULL;
	vsm_image_info *info = NULL;
	size_t n = 0;

	fz_debug("check", vsm_image_check(&cr, img, flags));
	if (vsm_image_map(&ext, &n, img) == 0)
		vsm_image_extent_list_free(ext);
	if (vsm_image_info_get(&info, img, 0) == 0)
		vsm_image_info_free(info);
}

static void bitmaps(vsm_image *img, bool rw)
{
	vsm_image_bitmap_info *l = NULL;
	vsm_image_extent *ext = NULL;
	size_t n = 0, i, ne = 0;

	if (vsm_image_bitmap_list(&l, &n, img) < 0)
		return;
	for (i = 0; i < n; i++)
		if (vsm_image_bitmap_extents(&ext, &ne, img, l[i].name) == 0)
			vsm_image_extent_list_free(ext);
	if (rw && vsm_image_bitmap_add(img, "fuzz", NULL, 0) == 0 && n)
		fz_debug("merge", vsm_image_bitmap_merge(img, "fuzz", img, l[0].name, 0));
	vsm_image_bitmap_list_free(l, n);
}

static void pass(const char *path, unsigned int oflags, uint64_t seed, const uint8_t *data,
		 size_t size, uint8_t *buf)
{
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img = NULL;
	uint64_t vsize;
	int i;

	o.flags = oflags;
	o.format = "qcow2";
	o.cache_max = CACHE_MAX;
	if (vsm_image_open(&img, path, &o) < 0) {
		fz_debug("open", -1);
		return;
	}
	read_some(img, &seed, buf);
	bitmaps(img, !(oflags & VSM_IMAGE_OPEN_RDONLY));
	vsize = vsm_image_size(img);
	if (!(oflags & VSM_IMAGE_OPEN_RDONLY) && vsize) {
		for (i = 0; i < 4; i++) {
			uint64_t r = fz_next(&seed), off = r % vsize;
			size_t len = (size_t)(fz_next(&seed) % 4096) + 1;

			if (len > vsize - off)
				len = (size_t)(vsize - off);
			/* The bytes come from the input, so a write of
			 * compressed-looking data is as likely as zeros. */
			memset(buf, 0, len);
			if (size)
				memcpy(buf, data + (r >> 32) % size,
				       len < size - (r >> 32) % size ? len : size - (r >> 32) % size);
			switch ((r >> 8) & 3) {
			case 0:
			case 1:
				fz_debug("write", vsm_image_write(img, buf, len, off, 0));
				break;
			case 2:
				vsm_image_write_zeroes(img, off, len, VSM_IMAGE_ZERO_UNMAP);
				break;
			default:
				vsm_image_discard(img, off, len, 0);
				break;
			}
		}
		vsm_image_flush(img);
		read_some(img, &seed, buf);
	}
	check_map(img, (oflags & VSM_IMAGE_OPEN_REPAIR) ? VSM_IMAGE_CHECK_REPAIR : 0);
	vsm_image_close(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[4200];
	uint64_t seed = fz_hash(data, size);
	uint8_t *buf;

	if (!path[0])
		snprintf(path, sizeof(path), "%s/image.qcow2", fz_tmpdir());
	if (!(buf = malloc(IO_MAX)))
		return 0;
	fz_write_file(path, data, size);
	pass(path, VSM_IMAGE_OPEN_RDONLY | VSM_IMAGE_OPEN_NO_BACKING, seed, data, size, buf);
	pass(path, VSM_IMAGE_OPEN_RDWR | VSM_IMAGE_OPEN_NO_BACKING, seed, data, size, buf);
	fz_write_file(path, data, size);
	pass(path, VSM_IMAGE_OPEN_RDWR | VSM_IMAGE_OPEN_NO_BACKING | VSM_IMAGE_OPEN_REPAIR,
	     seed ^ 1, data, size, buf);
	free(buf);
	remove(path);
	return 0;
}
