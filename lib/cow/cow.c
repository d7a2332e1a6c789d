/*
 * The image layer over either format: opening a chain (probing, backing
 * references through the caller's opener, loop refusal), range checks and
 * locking for guest I/O, block status across the chain, and the
 * whole-image operations (commit, flatten, resize, info, create).
 */
#include <stdlib.h>
#include <string.h>

#include "cow_int.h"

#define COW_MAX_DEPTH 1024
#define COW_CHUNK (1u << 20)

struct chain {
	const char *name;
	const struct chain *up;
};

static int cow_open_chain(vsm_cow **out, vsm_bdev *bdev, const char *label,
			  const vsm_cow_open_opts *o, unsigned int depth,
			  const char *name, const struct chain *up);

static void cow_free(vsm_cow *c)
{
	if (!c)
		return;
	vsm_bdev_close(c->bdev);
	free(c->label);
	free(c->name);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int open_backing(vsm_cow *c, bool readonly, const struct chain *up)
{
	struct qcow2 *q = c->q;
	vsm_cow_open_opts bo;
	struct chain here = { c->name ? c->name : "", up };
	const struct chain *ch;
	vsm_bdev *bb = NULL;
	int rc;

	if (!c->open_backing)
		return vsm_err(VSM_ENOTSUP, "%s: has backing image '%s' but no way to open it",
			       c->label, q->backing);
	for (ch = &here; ch; ch = ch->up)
		if (!strcmp(ch->name, q->backing))
			return vsm_err(VSM_ECORRUPT, "%s: backing chain loops back to '%s'",
				       c->label, q->backing);
	if (c->depth + 1 >= COW_MAX_DEPTH)
		return vsm_err(VSM_ECORRUPT, "%s: backing chain deeper than %d images",
			       c->label, COW_MAX_DEPTH);
	rc = c->open_backing(&bb, q->backing, readonly, c->payload);
	if (rc < 0) {
		vsm__error_prefix("%s: backing image '%s'", c->label, q->backing);
		return rc;
	}
	memset(&bo, 0, sizeof(bo));
	bo.format = q->backing_format;
	bo.flags = readonly ? VSM_COW_RDONLY : 0;
	bo.cache_max = c->cache_max;
	bo.open_backing = c->open_backing;
	bo.payload = c->payload;
	rc = cow_open_chain(&c->backing, bb, bb->label, &bo, c->depth + 1, q->backing, &here);
	if (rc < 0)
		vsm__error_prefix("%s", c->label);
	return rc;
}

static int cow_open_chain(vsm_cow **out, vsm_bdev *bdev, const char *label,
			  const vsm_cow_open_opts *o, unsigned int depth,
			  const char *name, const struct chain *up)
{
	vsm_cow *c = vsm__calloc(1, sizeof(*c));
	uint8_t magic[4] = { 0 };
	int rc;

	if (!c) {
		vsm_bdev_close(bdev);
		return -VSM_ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->bdev = bdev;
	c->label = vsm__strdup(label ? label : "image");
	c->name = name ? vsm__strdup(name) : NULL;
	c->readonly = (o->flags & VSM_COW_RDONLY) || bdev->readonly;
	c->open_backing = o->open_backing;
	c->payload = o->payload;
	c->cache_max = o->cache_max;
	c->depth = depth;
	if (!c->label || (name && !c->name)) {
		rc = -VSM_ENOMEM;
		goto fail;
	}
	if (o->format && strcmp(o->format, "raw") && strcmp(o->format, "qcow2")) {
		rc = vsm_err(VSM_ENOTSUP, "%s: format '%s' is not supported (raw, qcow2)",
			     c->label, o->format);
		goto fail;
	}
	if (!o->format) {
		rc = vsm_bdev_read(bdev, magic, sizeof(magic), 0);
		if (rc < 0)
			goto fail;
	}
	if ((o->format && !strcmp(o->format, "qcow2")) ||
	    (!o->format && vsm__get_be32(magic) == QCOW_MAGIC)) {
		c->format = VSM_COW_QCOW2;
		rc = qc_open(&c->q, bdev, c->label, c->readonly, o->flags, o->cache_max);
		if (rc < 0)
			goto fail;
		c->readonly = c->q->readonly;
		c->size = c->q->size;
		if (c->q->backing && !(o->flags & VSM_COW_NO_BACKING)) {
			rc = open_backing(c, true, up);
			if (rc < 0)
				goto fail;
		}
	} else {
		c->format = VSM_COW_RAW;
		rc = vsm_bdev_size(bdev, &c->size);
		if (rc < 0)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	if (c->q)
		qc_free(c->q);
	c->q = NULL;
	cow_free(c);
	return rc;
}

int vsm_cow_open(vsm_cow **out, vsm_bdev *bdev, const char *label,
		 const vsm_cow_open_opts *opts)
{
	vsm_cow_open_opts def;

	if (!opts) {
		memset(&def, 0, sizeof(def));
		opts = &def;
	}
	return cow_open_chain(out, bdev, label, opts, 0, NULL, NULL);
}

static int close_chain(vsm_cow *c)
{
	int rc = 0, r2;

	while (c) {
		vsm_cow *b = c->backing;

		if (c->q) {
			r2 = qc_close(c->q);
			if (r2 < 0 && rc == 0)
				rc = r2;
		} else if (!c->readonly) {
			r2 = vsm_bdev_flush(c->bdev);
			if (r2 < 0 && rc == 0)
				rc = r2;
		}
		c->q = NULL;
		cow_free(c);
		c = b;
	}
	return rc;
}

int vsm_cow_close(vsm_cow *c)
{
	return close_chain(c);
}

vsm_cow *vsm_cow_backing(vsm_cow *c) { return c ? c->backing : NULL; }
int vsm_cow_format(const vsm_cow *c) { return c->format; }
uint64_t vsm_cow_size(const vsm_cow *c) { return c->size; }
const char *vsm_cow_label(const vsm_cow *c) { return c->label; }

int cow_do_read(vsm_cow *c, uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t n;

	if (off >= c->size) {
		memset(buf, 0, (size_t)len);
		return 0;
	}
	n = c->size - off < len ? c->size - off : len;
	if (n < len)
		memset(buf + n, 0, (size_t)(len - n));
	if (c->format == VSM_COW_QCOW2)
		return qc_read(c, buf, n, off);
	return vsm_bdev_read(c->bdev, buf, (size_t)n, off);
}

/* A guest change of [off, off+len): the enabled bitmaps are stored in_use
 * (once, before the first change after a store), then their bits are set
 * in memory before the data moves, so no completed write is missed. */
static int bitmaps_dirty(vsm_cow *c, uint64_t off, uint64_t len)
{
	int rc;

	if (c->format != VSM_COW_QCOW2 || !c->q->nbm)
		return 0;
	if ((rc = qc_bm_before_write(c->q)) < 0)
		return rc;
	qc_bm_mark_write(c->q, off, len);
	return 0;
}

int cow_do_write(vsm_cow *c, const uint8_t *buf, uint64_t len, uint64_t off)
{
	int rc;

	if (c->format == VSM_COW_QCOW2) {
		if ((rc = bitmaps_dirty(c, off, len)) < 0)
			return rc;
		return qc_write(c, buf, len, off);
	}
	return vsm_bdev_write(c->bdev, buf, (size_t)len, off);
}

int cow_do_zero(vsm_cow *c, uint64_t off, uint64_t len, bool unmap)
{
	uint8_t *z;
	int rc = 0;

	if (c->format == VSM_COW_QCOW2) {
		if ((rc = bitmaps_dirty(c, off, len)) < 0)
			return rc;
		return qc_zero(c, off, len, unmap);
	}
	if (unmap && vsm_bdev_can_discard(c->bdev)) {
		rc = vsm_bdev_discard(c->bdev, off, len);
		if (rc == 0)
			return 0;
		if (rc != -VSM_ENOTSUP)
			return rc;
		vsm_error_clear();
	}
	z = calloc(1, COW_CHUNK);
	if (!z)
		return vsm_err(VSM_ENOMEM, "out of memory");
	while (len && rc == 0) {
		uint64_t n = len < COW_CHUNK ? len : COW_CHUNK;

		rc = vsm_bdev_write(c->bdev, z, (size_t)n, off);
		off += n;
		len -= n;
	}
	free(z);
	return rc;
}

static int range_check(vsm_cow *c, uint64_t off, uint64_t len, bool write)
{
	if (write && c->readonly) {
		if (c->q && (c->q->incompat & QC_INCOMPAT_CORRUPT))
			return vsm_err(VSM_ESTATE, "%s: image is marked corrupt and open read-only",
				       c->label);
		return vsm_err(VSM_EPERM, "%s: image is open read-only", c->label);
	}
	if (off > c->size || len > c->size - off)
		return vsm_err(VSM_EINVAL, "%s: range %llu+%llu is past the virtual size %llu",
			       c->label, (unsigned long long)off, (unsigned long long)len,
			       (unsigned long long)c->size);
	return 0;
}

int vsm_cow_read(vsm_cow *c, void *buf, size_t len, uint64_t off)
{
	int rc = range_check(c, off, len, false);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	rc = cow_do_read(c, buf, len, off);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int vsm_cow_write(vsm_cow *c, const void *buf, size_t len, uint64_t off)
{
	int rc = range_check(c, off, len, true);

	if (rc < 0 || len == 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	rc = cow_do_write(c, buf, len, off);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int vsm_cow_write_zeroes(vsm_cow *c, uint64_t off, uint64_t len, bool unmap)
{
	int rc = range_check(c, off, len, true);

	if (rc < 0 || len == 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	rc = cow_do_zero(c, off, len, unmap);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int vsm_cow_flush(vsm_cow *c)
{
	int rc;

	if (c->readonly)
		return 0;
	pthread_mutex_lock(&c->lock);
	/* A flushed image has its bits on disk (and in_use clear until the
	 * next change); see doc/bitmaps.md. */
	rc = 0;
	if (c->q && (c->q->bm_changed || c->q->bm_inuse_stored))
		rc = qc_bm_store(c->q, false);
	if (rc == 0)
		rc = c->q ? qc_flush(c->q) : vsm_bdev_flush(c->bdev);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int status(vsm_cow *c, uint64_t off, uint64_t len, uint64_t *pnum,
		  vsm_cow_status *st, unsigned int depth)
{
	uint64_t e, n;
	int rc;

	memset(st, 0, sizeof(*st));
	st->depth = depth;
	st->offset = UINT64_MAX;
	if (c->format == VSM_COW_RAW) {
		st->data = st->present = true;
		st->offset = off;
		*pnum = len;
		return 0;
	}
	rc = qc_status(c, off, len, &n, &e);
	if (rc < 0)
		return rc;
	*pnum = n;
	if (e & QC_OFLAG_COMPRESSED) {
		st->data = st->present = st->compressed = true;
	} else if (c->q->version == 3 && (e & QC_OFLAG_ZERO)) {
		st->zero = st->present = true;
	} else if (e & QC_OFFSET_MASK) {
		st->data = st->present = true;
		st->offset = (e & QC_OFFSET_MASK) + (off & (c->q->cs - 1));
	} else if (c->backing && off < c->backing->size) {
		if (n > c->backing->size - off)
			n = c->backing->size - off;
		rc = status(c->backing, off, n, pnum, st, depth + 1);
	} else {
		st->zero = true;
	}
	return rc;
}

int vsm_cow_block_status(vsm_cow *c, uint64_t off, uint64_t len,
			 uint64_t *pnum, vsm_cow_status *st)
{
	int rc = range_check(c, off, len, false);

	if (rc < 0)
		return rc;
	if (len == 0)
		return vsm_err(VSM_EINVAL, "%s: empty range", c->label);
	pthread_mutex_lock(&c->lock);
	rc = status(c, off, len, pnum, st, 0);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int vsm_cow_check(vsm_cow *c, vsm_cow_check_result *res, bool repair)
{
	int rc;

	memset(res, 0, sizeof(*res));
	if (c->format != VSM_COW_QCOW2)
		return 0;
	pthread_mutex_lock(&c->lock);
	rc = qc_check(c->q, res, repair);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && ((uintptr_t)(p + i) & 7); i++)
		if (p[i])
			return false;
	for (; i + 8 <= n; i += 8)
		if (*(const uint64_t *)(const void *)(p + i))
			return false;
	for (; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Reopen the backing image writable, for commit. */
static int reopen_backing_rw(vsm_cow *c)
{
	vsm_cow *old = c->backing;
	vsm_cow_open_opts bo;
	vsm_bdev *bb = NULL;
	int rc;

	if (!old->readonly)
		return 0;
	rc = c->open_backing(&bb, c->q->backing, false, c->payload);
	if (rc < 0) {
		vsm__error_prefix("%s: backing image '%s'", c->label, c->q->backing);
		return rc;
	}
	memset(&bo, 0, sizeof(bo));
	bo.format = old->format == VSM_COW_QCOW2 ? "qcow2" : "raw";
	bo.cache_max = c->cache_max;
	bo.open_backing = c->open_backing;
	bo.payload = c->payload;
	/* The chain below was already opened (and checked for loops). */
	rc = cow_open_chain(&c->backing, bb, bb->label, &bo, c->depth + 1,
			    c->q->backing, NULL);
	if (rc < 0) {
		c->backing = old;
		return rc;
	}
	close_chain(old);
	return 0;
}

static int do_resize(vsm_cow *c, uint64_t size)
{
	uint8_t z = 0;
	int rc;

	if (size == c->size)
		return 0;
	if (size < c->size)
		return vsm_err(VSM_ENOTSUP, "%s: shrinking is not supported", c->label);
	if (c->readonly)
		return vsm_err(VSM_EPERM, "%s: image is open read-only", c->label);
	if (c->format == VSM_COW_QCOW2) {
		rc = qc_resize(c->q, size);
	} else {
		uint64_t cur;

		rc = vsm_bdev_size(c->bdev, &cur);
		if (rc == 0 && cur < size)
			rc = vsm_bdev_write(c->bdev, &z, 1, size - 1);
		if (rc == 0)
			rc = vsm_bdev_flush(c->bdev);
	}
	if (rc == 0)
		c->size = size;
	return rc;
}

int vsm_cow_resize(vsm_cow *c, uint64_t size)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = do_resize(c, size);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int do_commit(vsm_cow *c)
{
	uint8_t *buf = NULL;
	uint64_t off = 0, e, n;
	int rc;

	if (c->format != VSM_COW_QCOW2 || !c->backing)
		return vsm_err(VSM_EINVAL, "%s: has no backing image to commit into", c->label);
	if (c->readonly)
		return vsm_err(VSM_EPERM, "%s: image is open read-only", c->label);
	rc = reopen_backing_rw(c);
	if (rc < 0)
		return rc;
	if (c->backing->size < c->size) {
		rc = do_resize(c->backing, c->size);
		if (rc < 0)
			return rc;
	}
	buf = malloc(COW_CHUNK);
	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	while (off < c->size) {
		uint64_t len = c->size - off < COW_CHUNK ? c->size - off : COW_CHUNK;

		rc = qc_status(c, off, len, &n, &e);
		if (rc < 0)
			break;
		if ((e & QC_OFLAG_COMPRESSED) || (e & QC_OFFSET_MASK && !(c->q->version == 3 && (e & QC_OFLAG_ZERO)))) {
			rc = qc_read(c, buf, n, off);
			if (rc == 0)
				rc = cow_do_write(c->backing, buf, n, off);
		} else if (c->q->version == 3 && (e & QC_OFLAG_ZERO)) {
			rc = cow_do_zero(c->backing, off, n, true);
		}
		if (rc < 0)
			break;
		off += n;
	}
	free(buf);
	if (rc == 0)
		rc = c->backing->q ? qc_flush_all(c->backing->q) : vsm_bdev_flush(c->backing->bdev);
	if (rc == 0)
		rc = qc_make_empty(c);
	return rc;
}

int vsm_cow_commit(vsm_cow *c)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = do_commit(c);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int do_flatten(vsm_cow *c)
{
	uint8_t *buf;
	uint64_t off = 0, e, n, cs;
	int rc = 0;

	if (c->format != VSM_COW_QCOW2 || !c->q->backing)
		return 0;
	if (c->readonly)
		return vsm_err(VSM_EPERM, "%s: image is open read-only", c->label);
	if (!c->backing)
		return vsm_err(VSM_ESTATE, "%s: backing chain is not open", c->label);
	cs = c->q->cs;
	buf = malloc(COW_CHUNK);
	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	while (off < c->size && off < c->backing->size) {
		uint64_t len = c->size - off < COW_CHUNK ? c->size - off : COW_CHUNK;

		rc = qc_status(c, off, len, &n, &e);
		if (rc < 0)
			break;
		if ((e & ~QC_OFLAG_COPIED) == 0) {
			uint64_t p = 0;

			rc = cow_do_read(c->backing, buf, n, off);
			/* Copy up only what is not zero: without a backing
			 * image, unallocated clusters read as zeros. */
			while (rc == 0 && p < n) {
				uint64_t step = cs - ((off + p) & (cs - 1));

				if (step > n - p)
					step = n - p;
				if (!all_zero(buf + p, (size_t)step))
					rc = qc_write(c, buf + p, step, off + p);
				p += step;
			}
		}
		if (rc < 0)
			break;
		off += n;
	}
	free(buf);
	if (rc == 0)
		rc = qc_drop_backing(c->q);
	if (rc == 0) {
		close_chain(c->backing);
		c->backing = NULL;
	}
	return rc;
}

int vsm_cow_flatten(vsm_cow *c)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = do_flatten(c);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int vsm_cow_get_info(vsm_cow *c, vsm_cow_info *out)
{
	uint64_t off = 0, n, e;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock);
	out->format = c->format;
	out->virtual_size = c->size;
	out->readonly = c->readonly;
	rc = vsm_bdev_size(c->bdev, &out->file_size);
	if (rc == 0 && c->q) {
		struct qcow2 *q = c->q;

		out->cluster_size = (uint32_t)q->cs;
		out->qcow2_version = q->version;
		out->refcount_bits = q->rc_bits;
		out->nb_snapshots = q->nb_snapshots;
		out->dirty = (q->incompat & QC_INCOMPAT_DIRTY) != 0;
		out->corrupt = (q->incompat & QC_INCOMPAT_CORRUPT) != 0;
		out->backing = q->backing;
		out->backing_format = q->backing_format;
		while (off < c->size) {
			rc = qc_status(c, off, c->size - off, &n, &e);
			if (rc < 0)
				break;
			if ((e & QC_OFLAG_COMPRESSED) ||
			    ((e & QC_OFFSET_MASK) && !(q->version == 3 && (e & QC_OFLAG_ZERO))))
				out->allocated_bytes += n;
			off += n;
		}
	} else if (rc == 0) {
		out->allocated_bytes = out->file_size;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int vsm_cow_create_qcow2(vsm_bdev *bdev, const char *label,
			 const vsm_cow_create_opts *opts)
{
	vsm_cow_create_opts o = *opts;
	vsm_cow *b = NULL;
	vsm_bdev *bb = NULL;
	vsm_cow_open_opts bo;
	int rc;

	if (o.backing && (o.size == 0 || !o.backing_format)) {
		if (!o.open_backing)
			return vsm_err(VSM_EINVAL, "%s: cannot open backing image '%s' to learn "
				       "its size and format", label, o.backing);
		rc = o.open_backing(&bb, o.backing, true, o.payload);
		if (rc < 0) {
			vsm__error_prefix("%s: backing image '%s'", label, o.backing);
			return rc;
		}
		memset(&bo, 0, sizeof(bo));
		bo.format = o.backing_format;
		bo.flags = VSM_COW_RDONLY | VSM_COW_NO_BACKING;
		rc = vsm_cow_open(&b, bb, bb->label, &bo);
		if (rc < 0) {
			vsm__error_prefix("%s", label);
			return rc;
		}
		if (!o.size)
			o.size = b->size;
		if (!o.backing_format)
			o.backing_format = b->format == VSM_COW_QCOW2 ? "qcow2" : "raw";
		rc = qc_create(bdev, label, &o);
		vsm_cow_close(b);
		return rc;
	}
	return qc_create(bdev, label, &o);
}
