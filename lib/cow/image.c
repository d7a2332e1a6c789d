/*
 * The public vsm_image_* calls: the COW engine over image files named by
 * path. Owns the path-based backing opener, which keeps a chain inside
 * the directory of the image that was opened.
 */
#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vsm/image.h"
#include "cow_int.h"
#include "image_int.h"

#define COW_CHUNK_PUBLIC (4u << 20)

struct path_ctx {
	char *root;       /* realpath of the top image's directory */
	char **seen;      /* realpaths already in the chain */
	size_t nseen;
};

struct vsm_image {
	vsm_cow *cow;
	struct path_ctx *pc;
	char *path;
	unsigned int refuse;  /* VSM__IMAGE_NO_*: wrapped handles (image_int.h) */
	char *refuse_why;
	/* Guest I/O holds @gate shared; a live migration holds it exclusive
	 * to pause the handle, set @live or swap @cow (image_int.h). */
	pthread_rwlock_t gate;
	vsm__image_live *live;
	vsm__image_close_fn on_close;
	void *close_payload;
};

static int gate_init(vsm_image *img)
{
	pthread_rwlockattr_t a;
	int rc;

	/* A waiting pause must not starve behind a stream of writes. */
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rc = pthread_rwlock_init(&img->gate, &a);
	pthread_rwlockattr_destroy(&a);
	return rc ? vsm_err(VSM_ENOMEM, "out of memory") : 0;
}

static void path_ctx_free(struct path_ctx *pc)
{
	size_t i;

	if (!pc)
		return;
	for (i = 0; i < pc->nseen; i++)
		free(pc->seen[i]);
	free(pc->seen);
	free(pc->root);
	free(pc);
}

static int path_ctx_new(struct path_ctx **out, const char *path, bool must_exist)
{
	struct path_ctx *pc = vsm__calloc(1, sizeof(*pc));
	char *dup = NULL, *slash, *real = NULL;
	int rc = -VSM_ENOMEM;

	if (!pc)
		return -VSM_ENOMEM;
	dup = vsm__strdup(path);
	if (!dup)
		goto fail;
	slash = strrchr(dup, '/');
	if (slash == dup)
		dup[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dup, ".");
	pc->root = realpath(dup, NULL);
	if (!pc->root) {
		rc = vsm_err(errno == ENOENT ? VSM_ENOTFOUND : VSM_EIO,
			     "image '%s': directory '%s' cannot be resolved: %s",
			     path, dup, strerror(errno));
		goto fail;
	}
	if (must_exist) {
		real = realpath(path, NULL);
		if (real) {
			pc->seen = vsm__calloc(1, sizeof(char *));
			if (!pc->seen) {
				free(real);
				goto fail;
			}
			pc->seen[pc->nseen++] = real;
		}
	}
	free(dup);
	*out = pc;
	return 0;
fail:
	free(dup);
	path_ctx_free(pc);
	return rc;
}

static bool has_dotdot(const char *name)
{
	const char *p = name;

	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

/* Resolve a backing name inside the root directory. */
static int path_resolve(struct path_ctx *pc, const char *name, char **out)
{
	char *full, *real;
	size_t rl = strlen(pc->root);

	if (!*name)
		return vsm_err(VSM_ECORRUPT, "backing name is empty");
	if (has_dotdot(name))
		return vsm_err(VSM_EPERM, "backing name '%s' contains '..' and may not leave "
			       "the image's directory", name);
	if (strstr(name, "://") || (strchr(name, ':') && !strchr(name, '/')))
		return vsm_err(VSM_ENOTSUP, "backing name '%s' is not a file name", name);
	if (name[0] == '/') {
		full = vsm__strdup(name);
	} else {
		full = malloc(rl + strlen(name) + 2);
		if (full)
			sprintf(full, "%s/%s", pc->root, name);
		else
			vsm_err(VSM_ENOMEM, "out of memory");
	}
	if (!full)
		return -VSM_ENOMEM;
	real = realpath(full, NULL);
	if (!real) {
		int e = errno;

		vsm_err(e == ENOENT ? VSM_ENOTFOUND : VSM_EIO, "backing image '%s' (%s): %s",
			name, full, strerror(e));
		free(full);
		return e == ENOENT ? -VSM_ENOTFOUND : -VSM_EIO;
	}
	free(full);
	if (strncmp(real, pc->root, rl) != 0 || (real[rl] != '/' && strcmp(pc->root, "/"))) {
		vsm_err(VSM_EPERM, "backing image '%s' resolves to '%s', outside '%s'",
			name, real, pc->root);
		free(real);
		return -VSM_EPERM;
	}
	*out = real;
	return 0;
}

static int path_open_backing(vsm_bdev **out, const char *name, bool readonly,
			     void *payload)
{
	struct path_ctx *pc = payload;
	char *real = NULL, **ns;
	size_t i;
	int rc = path_resolve(pc, name, &real);

	if (rc < 0)
		return rc;
	if (readonly) {
		for (i = 0; i < pc->nseen; i++)
			if (!strcmp(pc->seen[i], real)) {
				vsm_err(VSM_ECORRUPT, "backing chain loops back to '%s'", real);
				free(real);
				return -VSM_ECORRUPT;
			}
		ns = realloc(pc->seen, (pc->nseen + 1) * sizeof(*ns));
		if (!ns) {
			free(real);
			return vsm_err(VSM_ENOMEM, "out of memory");
		}
		pc->seen = ns;
		pc->seen[pc->nseen++] = real;
		return vsm_bdev_open_path(out, real, VSM_BDEV_RDONLY);
	}
	/* Reopened writable for commit: the chain below it is opened again,
	 * so forget what was seen below it. */
	for (i = 0; i < pc->nseen; i++)
		if (!strcmp(pc->seen[i], real)) {
			while (pc->nseen > i + 1)
				free(pc->seen[--pc->nseen]);
			break;
		}
	rc = vsm_bdev_open_path(out, real, 0);
	free(real);
	return rc;
}

static int image_open(vsm_image **out, const char *path, const char *format,
		      unsigned int flags, uint64_t cache_max)
{
	vsm_image *img;
	vsm_bdev *b = NULL;
	vsm_cow_open_opts o;
	char label[PATH_MAX + 16];
	int rc;

	if (!out || !path)
		return vsm_err(VSM_EINVAL, "image: path and out are required");
	img = vsm__calloc(1, sizeof(*img));
	if (!img)
		return -VSM_ENOMEM;
	img->path = vsm__strdup(path);
	if (!img->path) {
		free(img);
		return -VSM_ENOMEM;
	}
	if ((rc = gate_init(img)) < 0) {
		free(img->path);
		free(img);
		return rc;
	}
	rc = path_ctx_new(&img->pc, path, true);
	if (rc < 0)
		goto fail;
	rc = vsm_bdev_open_path(&b, path, (flags & VSM_COW_RDONLY) ? VSM_BDEV_RDONLY : 0);
	if (rc < 0) {
		vsm__error_prefix("image '%s'", path);
		goto fail;
	}
	snprintf(label, sizeof(label), "image '%s'", path);
	memset(&o, 0, sizeof(o));
	o.format = format;
	o.flags = flags;
	o.cache_max = cache_max;
	o.open_backing = path_open_backing;
	o.payload = img->pc;
	rc = vsm_cow_open(&img->cow, b, label, &o);
	if (rc < 0)
		goto fail;
	*out = img;
	return 0;
fail:
	pthread_rwlock_destroy(&img->gate);
	path_ctx_free(img->pc);
	free(img->path);
	free(img);
	return rc;
}

VSM_API int vsm_image_open(vsm_image **out, const char *path,
			   const vsm_image_open_opts *opts)
{
	unsigned int flags = 0;

	vsm__error_reset();
	if (opts && (opts->version == 0 || opts->version > VSM_IMAGE_OPEN_OPTS_VERSION))
		return vsm_err(VSM_EVERSION, "image '%s': open options version %u is unknown",
			       path ? path : "", opts->version);
	if (opts && (opts->flags & VSM_IMAGE_OPEN_RDONLY) && (opts->flags & VSM_IMAGE_OPEN_RDWR))
		return vsm_err(VSM_EINVAL, "image '%s': open flags RDONLY and RDWR exclude each "
			       "other", path ? path : "");
	if (opts && (opts->flags & VSM_IMAGE_OPEN_RDONLY))
		flags |= VSM_COW_RDONLY;
	if (opts && (opts->flags & VSM_IMAGE_OPEN_NO_BACKING))
		flags |= VSM_COW_NO_BACKING;
	if (opts && (opts->flags & VSM_IMAGE_OPEN_REPAIR))
		flags |= VSM_COW_REPAIR;
	return image_open(out, path, opts ? opts->format : NULL, flags,
			  opts ? opts->cache_max : 0);
}

static int image_free(vsm_image *img)
{
	int rc = 0;

	if (!img)
		return 0;
	/* Whoever watches the handle (a live migration) must see its data on
	 * the device once it has let go of it. */
	if (img->on_close) {
		rc = vsm_cow_flush(img->cow);
		img->on_close(img, img->close_payload);
	}
	{
		int r2 = vsm_cow_close(img->cow);

		if (r2 < 0 && rc == 0)
			rc = r2;
	}
	pthread_rwlock_destroy(&img->gate);
	path_ctx_free(img->pc);
	free(img->path);
	free(img->refuse_why);
	free(img);
	return rc;
}

int vsm__image_wrap(vsm_image **out, vsm_bdev *bdev, const vsm__image_wrap_opts *o)
{
	vsm_image *img = vsm__calloc(1, sizeof(*img));
	vsm_cow_open_opts co;
	char *label = NULL;
	int rc = -VSM_ENOMEM;

	if (!img || !(img->path = vsm__strdup(o->name)) ||
	    (o->refuse_why && !(img->refuse_why = vsm__strdup(o->refuse_why))) ||
	    !(label = malloc(strlen(o->name) + 16))) {
		vsm_bdev_close(bdev);
		goto fail;
	}
	sprintf(label, "image '%s'", o->name);
	if ((rc = gate_init(img)) < 0)
		goto fail_bdev;
	img->refuse = o->refuse;
	memset(&co, 0, sizeof(co));
	co.format = o->format;
	co.flags = o->cow_flags;
	co.cache_max = o->cache_max;
	co.open_backing = o->open_backing;
	co.payload = o->payload;
	if ((rc = vsm_cow_open(&img->cow, bdev, label, &co)) < 0) {
		pthread_rwlock_destroy(&img->gate);
		goto fail;
	}
	free(label);
	*out = img;
	return 0;
fail_bdev:
	vsm_bdev_close(bdev);
fail:
	if (rc == -VSM_ENOMEM)
		vsm_err(VSM_ENOMEM, "out of memory");
	free(label);
	if (img) {
		free(img->path);
		free(img->refuse_why);
		free(img);
	}
	return rc;
}

void vsm__image_drop(vsm_image *img)
{
	vsm__saved_error e;

	if (!img)
		return;
	vsm__error_save(&e);
	image_free(img);
	vsm__error_restore(&e);
}

vsm_cow *vsm__image_cow(vsm_image *img)
{
	return img->cow;
}

/* Wrapped handles on a datastore refuse what would change a layer the
 * datastore's records describe (the chain, the size). */
static int refused(vsm_image *img, unsigned int what, const char *call)
{
	if (!(img->refuse & what))
		return 0;
	return vsm_err(VSM_ENOTSUP, "image '%s': %s is not supported on this image%s%s",
		       img->path, call, img->refuse_why ? ": " : "",
		       img->refuse_why ? img->refuse_why : "");
}

VSM_API int vsm_image_close(vsm_image *img)
{
	vsm__error_reset();
	return image_free(img);
}

VSM_API uint64_t vsm_image_size(vsm_image *img)
{
	vsm__error_reset();
	return img ? vsm_cow_size(img->cow) : 0;
}

#define NEED(img) do { if (!(img)) return vsm_err(VSM_EINVAL, "image handle is NULL"); } while (0)

/* The guest's changes, done under the gate (see struct vsm_image). */
enum { IO_WRITE, IO_ZERO, IO_DISCARD };

static int io_do(vsm_cow *c, int op, const void *buf, uint64_t len, uint64_t off, bool unmap)
{
	switch (op) {
	case IO_WRITE:
		return vsm_cow_write(c, buf, (size_t)len, off);
	case IO_ZERO:
		return vsm_cow_write_zeroes(c, off, len, unmap);
	default:
		return vsm_cow_write_zeroes(c, off, len, true);
	}
}

static void live_mark(vsm__image_live *lv, uint64_t off, uint64_t len)
{
	uint64_t b, last;

	if (!len)
		return;
	b = off >> lv->gran_bits;
	last = (off + len - 1) >> lv->gran_bits;
	if (last >= lv->nbits)
		last = lv->nbits - 1;
	for (; b <= last && b < lv->nbits; b++) {
		uint64_t m = 1ull << (b % 64);

		if (!(lv->bits[b / 64] & m)) {
			lv->bits[b / 64] |= m;
			lv->ndirty++;
		}
	}
}

static int gated_change(vsm_image *img, int op, const void *buf, uint64_t len, uint64_t off,
			bool unmap)
{
	vsm__image_live *lv;
	int rc;

	pthread_rwlock_rdlock(&img->gate);
	lv = img->live;
	if (lv && lv->mirror) {
		/* Synchronous: both sides, serialized with the migration's
		 * copy of the same device (which also holds lv->mu). */
		pthread_mutex_lock(&lv->mu);
		rc = io_do(img->cow, op, buf, len, off, unmap);
		if (rc == 0) {
			rc = io_do(lv->mirror, op, buf, len, off, unmap);
			if (rc < 0 && lv->mirror_rc == 0)
				lv->mirror_rc = rc;
			else if (rc == 0)
				lv->mirrored += len;
		}
		pthread_mutex_unlock(&lv->mu);
	} else {
		rc = io_do(img->cow, op, buf, len, off, unmap);
		/* Marked after the change (also a failed one, which may have
		 * changed part): a copy that read before it copies it again. */
		if (lv) {
			pthread_mutex_lock(&lv->mu);
			live_mark(lv, off, len);
			pthread_mutex_unlock(&lv->mu);
		}
	}
	pthread_rwlock_unlock(&img->gate);
	return rc;
}

VSM_API int vsm_image_read(vsm_image *img, void *buf, size_t len, uint64_t off)
{
	int rc;

	vsm__error_reset();
	NEED(img);
	pthread_rwlock_rdlock(&img->gate);
	rc = vsm_cow_read(img->cow, buf, len, off);
	pthread_rwlock_unlock(&img->gate);
	return rc;
}

VSM_API int vsm_image_write(vsm_image *img, const void *buf, size_t len,
			    uint64_t off, unsigned int flags)
{
	vsm__error_reset();
	NEED(img);
	if (flags)
		return vsm_err(VSM_EINVAL, "image '%s': unknown write flags 0x%x", img->path, flags);
	return gated_change(img, IO_WRITE, buf, len, off, false);
}

VSM_API int vsm_image_write_zeroes(vsm_image *img, uint64_t off, uint64_t len,
				   unsigned int flags)
{
	vsm__error_reset();
	NEED(img);
	if (flags & ~VSM_IMAGE_ZERO_UNMAP)
		return vsm_err(VSM_EINVAL, "image '%s': unknown zero flags 0x%x", img->path, flags);
	return gated_change(img, IO_ZERO, NULL, len, off, (flags & VSM_IMAGE_ZERO_UNMAP) != 0);
}

VSM_API int vsm_image_discard(vsm_image *img, uint64_t off, uint64_t len,
			      unsigned int flags)
{
	vsm__error_reset();
	NEED(img);
	if (flags)
		return vsm_err(VSM_EINVAL, "image '%s': unknown discard flags 0x%x", img->path, flags);
	return gated_change(img, IO_DISCARD, NULL, len, off, true);
}

VSM_API int vsm_image_flush(vsm_image *img)
{
	int rc;

	vsm__error_reset();
	NEED(img);
	pthread_rwlock_rdlock(&img->gate);
	rc = vsm_cow_flush(img->cow);
	if (rc == 0 && img->live && img->live->mirror)
		rc = vsm_cow_flush(img->live->mirror);
	pthread_rwlock_unlock(&img->gate);
	return rc;
}

/* --- live migration hooks (image_int.h) --- */

int vsm__image_live_init(vsm__image_live *lv, uint64_t size, uint32_t gran_bits)
{
	memset(lv, 0, sizeof(*lv));
	lv->gran_bits = gran_bits;
	lv->nbits = (size + (1ull << gran_bits) - 1) >> gran_bits;
	if (!lv->nbits)
		lv->nbits = 1;
	if (!(lv->bits = vsm__calloc((lv->nbits + 63) / 64, sizeof(uint64_t))))
		return -VSM_ENOMEM;
	pthread_mutex_init(&lv->mu, NULL);
	return 0;
}

void vsm__image_live_fini(vsm__image_live *lv)
{
	if (!lv->bits)
		return;
	free(lv->bits);
	lv->bits = NULL;
	pthread_mutex_destroy(&lv->mu);
}

uint64_t vsm__image_live_dirty(vsm__image_live *lv)
{
	uint64_t n;

	pthread_mutex_lock(&lv->mu);
	n = lv->ndirty;
	pthread_mutex_unlock(&lv->mu);
	return n;
}

int vsm__image_live_take(vsm__image_live *lv, uint64_t **out, uint64_t *ndirty)
{
	size_t words = (size_t)((lv->nbits + 63) / 64);
	uint64_t *copy = vsm__calloc(words, sizeof(uint64_t));

	if (!copy)
		return -VSM_ENOMEM;
	pthread_mutex_lock(&lv->mu);
	memcpy(copy, lv->bits, words * sizeof(uint64_t));
	memset(lv->bits, 0, words * sizeof(uint64_t));
	*ndirty = lv->ndirty;
	lv->ndirty = 0;
	pthread_mutex_unlock(&lv->mu);
	*out = copy;
	return 0;
}

void vsm__image_hold(vsm_image *img)
{
	pthread_rwlock_wrlock(&img->gate);
}

void vsm__image_release(vsm_image *img)
{
	pthread_rwlock_unlock(&img->gate);
}

void vsm__image_set_live(vsm_image *img, vsm__image_live *lv)
{
	img->live = lv;
}

vsm_cow *vsm__image_swap(vsm_image *img, vsm_cow *cow, char *name)
{
	vsm_cow *old = img->cow;

	img->cow = cow;
	if (name) {
		/* Nothing hands img->path out: it only names the image in
		 * messages, which are built under the gate. */
		free(img->path);
		img->path = name;
	}
	return old;
}

bool vsm__image_writable(vsm_image *img)
{
	return !img->cow->readonly;
}

void vsm__image_set_close_hook(vsm_image *img, vsm__image_close_fn fn, void *payload)
{
	img->on_close = fn;
	img->close_payload = payload;
}

VSM_API int vsm_image_info_get(vsm_image_info **out, vsm_image *img, unsigned int depth)
{
	vsm_cow *c;
	vsm_cow_info ci;
	vsm_image_info *inf;
	unsigned int d;
	int rc;

	vsm__error_reset();
	NEED(img);
	if (!out)
		return vsm_err(VSM_EINVAL, "image '%s': out is NULL", img->path);
	pthread_rwlock_rdlock(&img->gate);
	c = img->cow;
	for (d = 0; d < depth && c; d++)
		c = vsm_cow_backing(c);
	if (!c) {
		pthread_rwlock_unlock(&img->gate);
		return vsm_err(VSM_ENOTFOUND, "image '%s': no image at depth %u of the chain",
			       img->path, depth);
	}
	rc = vsm_cow_get_info(c, &ci);
	inf = rc < 0 ? NULL : vsm__calloc(1, sizeof(*inf));
	if (!inf) {
		pthread_rwlock_unlock(&img->gate);
		return rc < 0 ? rc : -VSM_ENOMEM;
	}
	inf->version = VSM_IMAGE_INFO_VERSION;
	inf->filename = vsm__strdup(depth == 0 ? img->path : c->bdev->label);
	inf->format = ci.format == VSM_COW_QCOW2 ? VSM_IMAGE_FORMAT_QCOW2 : VSM_IMAGE_FORMAT_RAW;
	inf->virtual_size = ci.virtual_size;
	inf->cluster_size = ci.cluster_size;
	inf->qcow2_version = ci.qcow2_version;
	inf->refcount_bits = ci.refcount_bits;
	inf->snapshots = ci.nb_snapshots;
	inf->dirty = ci.dirty;
	inf->corrupt = ci.corrupt;
	inf->file_size = ci.file_size;
	inf->allocated_bytes = ci.allocated_bytes;
	inf->backing = ci.backing ? vsm__strdup(ci.backing) : NULL;
	inf->backing_format = ci.backing_format ? vsm__strdup(ci.backing_format) : NULL;
	pthread_rwlock_unlock(&img->gate);
	if (!inf->filename || (ci.backing && !inf->backing) ||
	    (ci.backing_format && !inf->backing_format)) {
		vsm_image_info_free(inf);
		return -VSM_ENOMEM;
	}
	*out = inf;
	return 0;
}

VSM_API void vsm_image_info_free(vsm_image_info *info)
{
	vsm__error_reset();
	if (!info)
		return;
	free((char *)info->filename);
	free((char *)info->backing);
	free((char *)info->backing_format);
	free(info);
}

VSM_API int vsm_image_map(vsm_image_extent **out, size_t *out_count, vsm_image *img)
{
	vsm_image_extent *list = NULL, *nl;
	size_t n = 0, cap = 0;
	uint64_t off = 0, size, pnum;
	vsm_cow_status st;
	int rc = 0;

	vsm__error_reset();
	NEED(img);
	if (!out || !out_count)
		return vsm_err(VSM_EINVAL, "image '%s': out is NULL", img->path);
	size = vsm_cow_size(img->cow);
	while (off < size) {
		vsm_image_extent *last = n ? &list[n - 1] : NULL;

		rc = vsm_cow_block_status(img->cow, off, size - off, &pnum, &st);
		if (rc < 0)
			break;
		if (last && last->depth == st.depth && last->present == st.present &&
		    last->data == st.data && last->zero == st.zero &&
		    last->compressed == st.compressed &&
		    ((last->offset == UINT64_MAX && st.offset == UINT64_MAX) ||
		     (last->offset != UINT64_MAX && last->offset + last->length == st.offset))) {
			last->length += pnum;
		} else {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				nl = realloc(list, cap * sizeof(*nl));
				if (!nl) {
					rc = vsm_err(VSM_ENOMEM, "out of memory");
					break;
				}
				list = nl;
			}
			list[n].start = off;
			list[n].length = pnum;
			list[n].depth = st.depth;
			list[n].present = st.present;
			list[n].data = st.data;
			list[n].zero = st.zero;
			list[n].compressed = st.compressed;
			list[n].offset = st.offset;
			n++;
		}
		off += pnum;
	}
	if (rc < 0) {
		free(list);
		return rc;
	}
	*out = list;
	*out_count = n;
	return 0;
}

VSM_API void vsm_image_extent_list_free(vsm_image_extent *list)
{
	vsm__error_reset();
	free(list);
}

VSM_API int vsm_image_check(vsm_image_check_result *out, vsm_image *img,
			    unsigned int flags)
{
	vsm_cow_check_result r;
	int rc;

	vsm__error_reset();
	NEED(img);
	if (!out || out->version == 0 || out->version > VSM_IMAGE_CHECK_RESULT_VERSION)
		return vsm_err(VSM_EVERSION, "image '%s': check result version is unknown",
			       img->path);
	if (flags & ~VSM_IMAGE_CHECK_REPAIR)
		return vsm_err(VSM_EINVAL, "image '%s': unknown check flags 0x%x", img->path, flags);
	rc = vsm_cow_check(img->cow, &r, (flags & VSM_IMAGE_CHECK_REPAIR) != 0);
	if (rc < 0)
		return rc;
	out->corruptions = r.corruptions;
	out->leaks = r.leaks;
	out->corruptions_fixed = r.corruptions_fixed;
	out->leaks_fixed = r.leaks_fixed;
	out->allocated_clusters = r.allocated_clusters;
	out->image_end = r.image_end;
	return 0;
}

VSM_API int vsm_image_commit(vsm_image *img, unsigned int flags)
{
	vsm__error_reset();
	NEED(img);
	if (flags)
		return vsm_err(VSM_EINVAL, "image '%s': unknown commit flags 0x%x", img->path, flags);
	if (refused(img, VSM__IMAGE_NO_COMMIT, "commit"))
		return -VSM_ENOTSUP;
	return vsm_cow_commit(img->cow);
}

VSM_API int vsm_image_flatten(vsm_image *img, unsigned int flags)
{
	vsm__error_reset();
	NEED(img);
	if (flags)
		return vsm_err(VSM_EINVAL, "image '%s': unknown flatten flags 0x%x", img->path, flags);
	if (refused(img, VSM__IMAGE_NO_FLATTEN, "flatten"))
		return -VSM_ENOTSUP;
	return vsm_cow_flatten(img->cow);
}

VSM_API int vsm_image_resize(vsm_image *img, uint64_t size, unsigned int flags)
{
	vsm__error_reset();
	NEED(img);
	if (flags)
		return vsm_err(VSM_EINVAL, "image '%s': unknown resize flags 0x%x", img->path, flags);
	if (refused(img, VSM__IMAGE_NO_RESIZE, "resize"))
		return -VSM_ENOTSUP;
	return vsm_cow_resize(img->cow, size);
}

static int create_file(vsm_bdev **out, const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		return vsm_err(VSM_EEXISTS, "image '%s' already exists", path);
	return vsm_bdev_open_path(out, path, VSM_BDEV_CREATE);
}

VSM_API int vsm_image_create(const char *path, const vsm_image_create_opts *opts,
			     unsigned int flags)
{
	struct path_ctx *pc = NULL;
	vsm_cow_create_opts o;
	vsm_bdev *b = NULL;
	char label[PATH_MAX + 16];
	int rc;

	vsm__error_reset();
	if (!path || !opts)
		return vsm_err(VSM_EINVAL, "image: path and options are required");
	if (opts->version == 0 || opts->version > VSM_IMAGE_CREATE_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "image '%s': create options version %u is unknown",
			       path, opts->version);
	if (flags)
		return vsm_err(VSM_EINVAL, "image '%s': unknown create flags 0x%x", path, flags);
	snprintf(label, sizeof(label), "image '%s'", path);
	memset(&o, 0, sizeof(o));
	o.size = opts->size;
	o.cluster_size = opts->cluster_size;
	o.refcount_bits = opts->refcount_bits;
	o.backing = opts->backing;
	o.backing_format = opts->backing_format;
	rc = path_ctx_new(&pc, path, false);
	if (rc < 0)
		return rc;
	o.open_backing = path_open_backing;
	o.payload = pc;
	if (o.backing) {
		/* Refuse a reference the image could not follow later. */
		char *real = NULL;

		rc = path_resolve(pc, o.backing, &real);
		free(real);
		if (rc < 0) {
			vsm__error_prefix("%s", label);
			goto out;
		}
	}
	rc = create_file(&b, path);
	if (rc < 0)
		goto out;
	rc = vsm_cow_create_qcow2(b, label, &o);
	vsm_bdev_close(b);
	if (rc < 0)
		unlink(path);
out:
	path_ctx_free(pc);
	return rc;
}

static bool zero_buf(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* qemu-img convert --bitmaps: same names, granularities, flags, bits. */
static int copy_bitmaps(vsm_cow *d, vsm_cow *s)
{
	vsm_cow_bitmap_info *l = NULL;
	size_t n = 0, i;
	int rc = vsm_cow_bitmap_list(s, &l, &n);

	for (i = 0; rc == 0 && i < n; i++) {
		if (l[i].in_use) {
			rc = vsm_err(VSM_ECORRUPT, "%s: bitmap '%s' is in use (inconsistent) and "
				     "cannot be copied", vsm_cow_label(s), l[i].name);
			break;
		}
		rc = vsm_cow_bitmap_add(d, l[i].name, l[i].granularity, l[i].enabled);
		if (rc == 0)
			rc = vsm_cow_bitmap_merge(d, l[i].name, s, l[i].name);
	}
	vsm_cow_bitmap_list_free(l, n);
	return rc;
}

VSM_API int vsm_image_convert(const char *src, const char *dst,
			      const vsm_image_convert_opts *opts)
{
	vsm_image *s = NULL, *d = NULL;
	vsm_bdev *b = NULL;
	uint64_t size, off = 0, pnum;
	uint8_t *buf = NULL;
	uint32_t gran;
	vsm_cow_status st;
	unsigned int cflags;
	bool raw;
	int rc;

	vsm__error_reset();
	if (!src || !dst || !opts)
		return vsm_err(VSM_EINVAL, "convert: source, target and options are required");
	if (opts->version == 0 || opts->version > VSM_IMAGE_CONVERT_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "convert: options version %u is unknown", opts->version);
	if (!opts->format || (strcmp(opts->format, "raw") && strcmp(opts->format, "qcow2")))
		return vsm_err(VSM_EINVAL, "image '%s': target format '%s' is not raw or qcow2",
			       dst, opts->format ? opts->format : "");
	raw = !strcmp(opts->format, "raw");
	/* Members past version 1 are read only when the caller has them. */
	cflags = opts->version >= 2 ? opts->flags : 0;
	if (cflags & ~VSM_IMAGE_CONVERT_BITMAPS)
		return vsm_err(VSM_EINVAL, "image '%s': unknown convert flags 0x%x", dst, cflags);
	if ((cflags & VSM_IMAGE_CONVERT_BITMAPS) && raw)
		return vsm_err(VSM_EINVAL, "image '%s': bitmaps can only be copied to a qcow2 "
			       "target", dst);
	rc = image_open(&s, src, NULL, VSM_COW_RDONLY, 0);
	if (rc < 0)
		return rc;
	size = vsm_cow_size(s->cow);
	if (raw) {
		uint8_t z = 0;

		rc = create_file(&b, dst);
		if (rc == 0 && size)
			rc = vsm_bdev_write(b, &z, 1, size - 1);
		if (b)
			vsm_bdev_close(b);
		if (rc < 0)
			goto out_nodst;
		rc = image_open(&d, dst, "raw", 0, 0);
		gran = 4096;
	} else {
		vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;

		co.size = size ? size : 1;
		co.cluster_size = opts->cluster_size;
		rc = vsm_image_create(dst, &co, 0);
		if (rc < 0)
			goto out_nodst;
		rc = image_open(&d, dst, "qcow2", 0, 0);
		gran = opts->cluster_size ? opts->cluster_size : 65536;
	}
	if (rc < 0)
		goto out;
	buf = malloc(COW_CHUNK_PUBLIC);
	if (!buf) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	while (off < size) {
		uint64_t len = size - off < COW_CHUNK_PUBLIC ? size - off : COW_CHUNK_PUBLIC, p = 0;

		rc = vsm_cow_block_status(s->cow, off, len, &pnum, &st);
		if (rc < 0)
			goto out;
		if (st.data) {
			uint64_t run = 0; /* non-zero bytes gathered before p */

			rc = vsm_cow_read(s->cow, buf, pnum, off);
			/* Skip zero blocks, aligned to the target's grain; the
			 * blocks between them go out as one write. */
			while (rc == 0 && p < pnum) {
				uint64_t step = gran - ((off + p) % gran);

				if (step > pnum - p)
					step = pnum - p;
				if (!zero_buf(buf + p, (size_t)step)) {
					run += step;
				} else if (run) {
					rc = vsm_cow_write(d->cow, buf + p - run, run, off + p - run);
					run = 0;
				}
				p += step;
			}
			if (rc == 0 && run)
				rc = vsm_cow_write(d->cow, buf + p - run, run, off + p - run);
			if (rc < 0)
				goto out;
		}
		off += pnum;
	}
	/* After the data, so that the copy's writes dirty none of them. */
	if (cflags & VSM_IMAGE_CONVERT_BITMAPS)
		rc = copy_bitmaps(d->cow, s->cow);
	if (rc == 0)
		rc = vsm_cow_flush(d->cow);
out:
	free(buf);
	if (d) {
		int r2 = image_free(d);

		if (rc == 0)
			rc = r2;
	}
	if (rc < 0)
		unlink(dst);
out_nodst:
	image_free(s);
	return rc;
}
