/*
 * The engine's bitmap calls (cow.h): argument checks, locking, and the
 * rule that every change made through them is on disk when they return
 * (stored with the image's current in_use state), so a crash never loses
 * an added bitmap or merged bits of a disabled one.
 */
#include <stdlib.h>
#include <string.h>

#include "cow_int.h"

static int need_qcow2(vsm_cow *c, bool write)
{
	if (c->format != VSM_COW_QCOW2)
		return vsm_err(VSM_ENOTSUP, "%s: bitmaps need a qcow2 image", c->label);
	if (write && c->readonly)
		return vsm_err(VSM_EPERM, "%s: image is open read-only", c->label);
	if (write && c->q->version != 3)
		return vsm_err(VSM_ENOTSUP, "%s: bitmaps need a qcow2 v3 image", c->label);
	return 0;
}

static int lookup(vsm_cow *c, const char *name, struct qc_bitmap **out)
{
	if (!name)
		return vsm_err(VSM_EINVAL, "%s: no bitmap name", c->label);
	*out = qc_bm_find(c->q, name);
	if (!*out)
		return vsm_err(VSM_ENOTFOUND, "%s: no bitmap '%s'", c->label, name);
	return 0;
}

static int refuse_bad(vsm_cow *c, const struct qc_bitmap *b)
{
	return vsm_err(VSM_ECORRUPT, "%s: bitmap '%s' was in use when the image was opened: "
		       "its writer did not close the image, so its content cannot be "
		       "trusted (remove it and rebuild it)", c->label, b->name);
}

int vsm_cow_bitmap_list(vsm_cow *c, vsm_cow_bitmap_info **out, size_t *n)
{
	vsm_cow_bitmap_info *l;
	uint32_t i;

	*out = NULL;
	*n = 0;
	if (c->format != VSM_COW_QCOW2 || !c->q->nbm)
		return 0;
	pthread_mutex_lock(&c->lock);
	l = vsm__calloc(c->q->nbm, sizeof(*l));
	for (i = 0; l && i < c->q->nbm; i++) {
		struct qc_bitmap *b = &c->q->bm[i];

		l[i].name = vsm__strdup(b->name);
		if (!l[i].name) {
			vsm_cow_bitmap_list_free(l, i);
			l = NULL;
			break;
		}
		l[i].granularity = (uint32_t)(1ull << b->gran_bits);
		l[i].enabled = b->enabled;
		l[i].in_use = b->bad;
	}
	if (l)
		*n = c->q->nbm;
	pthread_mutex_unlock(&c->lock);
	if (!l)
		return -VSM_ENOMEM;
	*out = l;
	return 0;
}

void vsm_cow_bitmap_list_free(vsm_cow_bitmap_info *list, size_t n)
{
	size_t i;

	for (i = 0; list && i < n; i++)
		free(list[i].name);
	free(list);
}

/* Bytes the directory takes now. */
static uint64_t dir_bytes(const struct qcow2 *q)
{
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < q->nbm; i++)
		n += (24ull + q->bm[i].extra_size + strlen(q->bm[i].name) + 7) & ~7ull;
	return n;
}

static int do_add(vsm_cow *c, const char *name, uint32_t gran, bool enabled)
{
	struct qcow2 *q = c->q;
	struct qc_bitmap *nb, b;
	uint32_t gb = 0;
	size_t nl;
	int rc;

	if (!name || !*name)
		return vsm_err(VSM_EINVAL, "%s: a bitmap needs a name", c->label);
	nl = strlen(name);
	if (nl > QC_BM_MAX_NAME)
		return vsm_err(VSM_EINVAL, "%s: bitmap name is longer than 1023 bytes", c->label);
	if (!gran)
		gran = (uint32_t)q->cs;
	while (gb < 32 && (1ull << gb) < gran)
		gb++;
	if ((1ull << gb) != gran || gb < QC_BM_MIN_GRAN_BITS || gb > QC_BM_MAX_GRAN_BITS)
		return vsm_err(VSM_EINVAL, "%s: bitmap granularity %u is not a power of two "
			       "between 512 and 2147483648", c->label, gran);
	if (qc_bm_find(q, name))
		return vsm_err(VSM_EEXISTS, "%s: bitmap '%s' already exists", c->label, name);
	if (q->nbm >= QC_BM_MAX_BITMAPS)
		return vsm_err(VSM_ENOSPC, "%s: an image holds at most 65535 bitmaps", c->label);
	if (dir_bytes(q) + ((24 + nl + 7) & ~(size_t)7) > QC_BM_MAX_DIR_BYTES)
		return vsm_err(VSM_ENOSPC, "%s: the bitmap directory would exceed 64 MiB",
			       c->label);
	if ((q->size >> gb) / 8 > QC_BM_MAX_BYTES)
		return vsm_err(VSM_EINVAL, "%s: bitmap '%s' would take more than 512 MiB; use a "
			       "coarser granularity", c->label, name);
	memset(&b, 0, sizeof(b));
	b.name = vsm__strdup(name);
	if (!b.name)
		return -VSM_ENOMEM;
	b.gran_bits = gb;
	b.enabled = enabled;
	b.changed = true;
	rc = qc_bm_init_bits(q, &b, q->size);
	nb = rc < 0 ? NULL : realloc(q->bm, (q->nbm + 1) * sizeof(*nb));
	if (!nb) {
		qc_bm_free_bits(&b);
		free(b.name);
		return rc < 0 ? rc : vsm_err(VSM_ENOMEM, "out of memory");
	}
	q->bm = nb;
	q->bm[q->nbm++] = b;
	rc = qc_bm_store(q, q->bm_inuse_stored);
	if (rc < 0) {
		/* Its table, if the store got that far, stays allocated on disk
		 * (a leak at worst): the disk may name it. */
		q->nbm--;
		qc_bm_free_bits(&q->bm[q->nbm]);
		free(q->bm[q->nbm].name);
		free(q->bm[q->nbm].table);
	}
	return rc;
}

int vsm_cow_bitmap_add(vsm_cow *c, const char *name, uint32_t granularity, bool enabled)
{
	int rc = need_qcow2(c, true);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	rc = do_add(c, name, granularity, enabled);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int do_remove(vsm_cow *c, const char *name)
{
	struct qcow2 *q = c->q;
	struct qc_bitmap *b, gone;
	uint32_t idx, k;
	int rc;

	if ((rc = lookup(c, name, &b)) < 0)
		return rc;
	idx = (uint32_t)(b - q->bm);
	gone = *b;
	memmove(&q->bm[idx], &q->bm[idx + 1], (q->nbm - idx - 1) * sizeof(*b));
	q->nbm--;
	rc = qc_bm_store(q, q->bm_inuse_stored);
	if (rc < 0) {
		memmove(&q->bm[idx + 1], &q->bm[idx], (q->nbm - idx) * sizeof(*b));
		q->bm[idx] = gone;
		q->nbm++;
		return rc;
	}
	/* Its table and data are named by nothing on disk now. */
	for (k = 0; k < gone.table_size; k++)
		if (gone.table[k] & QC_OFFSET_MASK)
			qc_defer_free(q, gone.table[k] & QC_OFFSET_MASK, q->cs);
	if (gone.table_size)
		qc_defer_free(q, gone.table_off, (uint64_t)gone.table_size * 8);
	qc_bm_free_bits(&gone);
	free(gone.name);
	free(gone.extra);
	free(gone.table);
	return qc_flush_all(q);
}

int vsm_cow_bitmap_remove(vsm_cow *c, const char *name)
{
	int rc = need_qcow2(c, true);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	rc = do_remove(c, name);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int vsm_cow_bitmap_clear(vsm_cow *c, const char *name)
{
	struct qc_bitmap *b;
	uint64_t i;
	int rc = need_qcow2(c, true);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	rc = lookup(c, name, &b);
	if (rc == 0 && b->bad)
		rc = refuse_bad(c, b);
	if (rc == 0) {
		for (i = 0; i < b->nchunks; i++) {
			if (b->chunk[i] != QC_BM_ONES)
				free(b->chunk[i]);
			b->chunk[i] = NULL;
		}
		b->changed = true;
		c->q->bm_changed = true;
		rc = qc_bm_store(c->q, c->q->bm_inuse_stored);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int vsm_cow_bitmap_enable(vsm_cow *c, const char *name, bool enable)
{
	struct qc_bitmap *b;
	int rc = need_qcow2(c, true);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	rc = lookup(c, name, &b);
	if (rc == 0 && b->enabled != enable) {
		b->enabled = enable;
		rc = qc_bm_store(c->q, c->q->bm_inuse_stored);
		if (rc < 0)
			b->enabled = !enable;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int vsm_cow_bitmap_set(vsm_cow *c, const char *name, uint64_t off, uint64_t len)
{
	struct qc_bitmap *b;
	int rc = need_qcow2(c, true);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	rc = lookup(c, name, &b);
	if (rc == 0 && b->bad)
		rc = refuse_bad(c, b);
	if (rc == 0 && (off > c->size || len > c->size - off))
		rc = vsm_err(VSM_EINVAL, "%s: range %llu+%llu is past the virtual size %llu",
			     c->label, (unsigned long long)off, (unsigned long long)len,
			     (unsigned long long)c->size);
	if (rc == 0)
		rc = qc_bm_set_range(c->q, b, off, len);
	if (rc == 0)
		rc = qc_bm_store(c->q, c->q->bm_inuse_stored);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

struct merge_ctx {
	struct qcow2 *q;
	struct qc_bitmap *dst;
};

static int merge_one(uint64_t off, uint64_t len, void *payload)
{
	struct merge_ctx *m = payload;

	return qc_bm_set_range(m->q, m->dst, off, len);
}

int vsm_cow_bitmap_merge(vsm_cow *dst, const char *dst_name, vsm_cow *src, const char *src_name)
{
	struct qc_bitmap *d, *s;
	struct merge_ctx m;
	int rc = need_qcow2(dst, true);

	if (rc == 0)
		rc = need_qcow2(src, false);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&dst->lock);
	if (src != dst)
		pthread_mutex_lock(&src->lock);
	rc = lookup(dst, dst_name, &d);
	if (rc == 0)
		rc = lookup(src, src_name, &s);
	if (rc == 0 && d->bad)
		rc = refuse_bad(dst, d);
	if (rc == 0 && s->bad)
		rc = refuse_bad(src, s);
	if (rc == 0 && d != s) {
		m.q = dst->q;
		m.dst = d;
		/* Each dirty source range sets every destination bit it meets;
		 * a negative return is an error of qc_bm_set_range. */
		rc = qc_bm_walk(src->q, s, 0, src->size, merge_one, &m);
		if (rc == 0)
			rc = qc_bm_store(dst->q, dst->q->bm_inuse_stored);
	}
	if (src != dst)
		pthread_mutex_unlock(&src->lock);
	pthread_mutex_unlock(&dst->lock);
	return rc;
}

int vsm_cow_bitmap_extents(vsm_cow *c, const char *name, uint64_t off, uint64_t len,
			   vsm_cow_extent_fn fn, void *payload)
{
	struct qc_bitmap *b;
	int rc = need_qcow2(c, false);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	rc = lookup(c, name, &b);
	if (rc == 0 && b->bad)
		rc = refuse_bad(c, b);
	if (rc == 0)
		rc = qc_bm_walk(c->q, b, off, len, fn, payload);
	pthread_mutex_unlock(&c->lock);
	return rc;
}
