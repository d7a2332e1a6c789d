/*
 * qcow2 metadata: the L2-table and refcount-block caches, refcount
 * arithmetic for every width, cluster allocation, and the ordered flush
 * that makes a crash leave only leaked clusters:
 *
 *   data -> refcount blocks -> (flush) -> refcount table -> (flush)
 *        -> L2 tables -> (flush) -> L1 table -> (flush) -> decrements
 *
 * Refcounts are raised before anything that points at the cluster reaches
 * the disk, and lowered (in memory) only after the reference that went
 * away is durable, so a freed cluster cannot be reused too early.
 */
#include <stdlib.h>
#include <string.h>

#include "cow_int.h"

int qc_bwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
	int rc = vsm_bdev_write(q->bdev, buf, len, off);

	if (rc == 0)
		q->unflushed = true;
	return rc;
}

static int bflush(struct qcow2 *q)
{
	int rc = vsm_bdev_flush(q->bdev);

	if (rc == 0)
		q->unflushed = false;
	return rc;
}

int qc_grow_map(struct cow_cache *c, uint64_t len)
{
	int32_t *m;
	uint64_t i;

	if (len <= c->map_len)
		return 0;
	m = realloc(c->map, len * sizeof(*m));
	if (!m)
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (i = c->map_len; i < len; i++)
		m[i] = -1;
	c->map = m;
	c->map_len = len;
	return 0;
}

static int cache_setup(struct cow_cache *c, unsigned int maxslots, uint64_t keys)
{
	memset(c, 0, sizeof(*c));
	c->maxslots = maxslots ? maxslots : 1;
	c->slots = vsm__calloc(c->maxslots, sizeof(*c->slots));
	if (!c->slots)
		return -VSM_ENOMEM;
	return qc_grow_map(c, keys ? keys : 1);
}

static void cache_release(struct cow_cache *c)
{
	unsigned int i;

	for (i = 0; i < c->nslots; i++)
		free(c->slots[i].buf);
	free(c->slots);
	free(c->map);
	memset(c, 0, sizeof(*c));
}

int qc_cache_init(struct qcow2 *q, uint64_t cache_max)
{
	uint64_t l2_max, rb_max, l2_want, rb_want;
	int rc;

	if (!cache_max)
		cache_max = 64ull << 20;
	/* Enough L2 tables for the whole image, up to the bound; the
	 * refcount blocks get a sixteenth of it (they cover far more). */
	l2_want = q->l1_size ? q->l1_size : 1;
	l2_max = cache_max / q->cs;
	if (l2_max < 4)
		l2_max = 4;
	if (l2_want > l2_max)
		l2_want = l2_max;
	rb_max = cache_max / 16 / q->cs;
	if (rb_max < 4)
		rb_max = 4;
	rb_want = q->rt_entries ? q->rt_entries : 1;
	if (rb_want > rb_max)
		rb_want = rb_max;
	if (rb_want < 4)
		rb_want = 4;
	if (l2_want < 4)
		l2_want = 4;
	rc = cache_setup(&q->l2c, (unsigned int)l2_want, q->l1_size);
	if (rc == 0)
		rc = cache_setup(&q->rbc, (unsigned int)rb_want, q->rt_entries);
	return rc;
}

void qc_cache_free(struct qcow2 *q)
{
	cache_release(&q->l2c);
	cache_release(&q->rbc);
}

static struct cow_slot *cache_find(struct cow_cache *c, uint64_t key)
{
	int32_t i;

	if (key >= c->map_len)
		return NULL;
	i = c->map[key];
	if (i < 0)
		return NULL;
	c->slots[i].tick = ++c->tick;
	return &c->slots[i];
}

static int rc_sync(struct qcow2 *q);

static int slot_writeback(struct qcow2 *q, struct cow_cache *c, struct cow_slot *s)
{
	int rc;

	if (!s->dirty)
		return 0;
	if (c == &q->l2c) {
		/* An L2 table may reach the disk only after the refcounts and
		 * data it points at. */
		rc = rc_sync(q);
		if (rc < 0)
			return rc;
	}
	rc = qc_bwrite(q, s->buf, q->cs, s->off);
	if (rc < 0)
		return rc;
	s->dirty = false;
	c->ndirty--;
	return 0;
}

/* A slot for @key, evicting the least recently used one if needed. The
 * slot's buffer content is undefined. */
static int cache_take(struct qcow2 *q, struct cow_cache *c, uint64_t key,
		      struct cow_slot **out)
{
	struct cow_slot *s = NULL;
	unsigned int i;
	int rc;

	if (c->nslots < c->maxslots) {
		s = &c->slots[c->nslots];
		if (posix_memalign((void **)&s->buf, 4096, q->cs) != 0) {
			s->buf = NULL;
			return vsm_err(VSM_ENOMEM, "out of memory");
		}
		c->nslots++;
	} else {
		for (i = 0; i < c->nslots; i++)
			if (!s || c->slots[i].tick < s->tick)
				s = &c->slots[i];
		rc = slot_writeback(q, c, s);
		if (rc < 0)
			return rc;
		if (s->key < c->map_len)
			c->map[s->key] = -1;
	}
	rc = qc_grow_map(c, key + 1);
	if (rc < 0)
		return rc;
	s->used = true;
	s->dirty = false;
	s->key = key;
	s->tick = ++c->tick;
	c->map[key] = (int32_t)(s - c->slots);
	*out = s;
	return 0;
}

static void slot_drop(struct cow_cache *c, struct cow_slot *s)
{
	if (s->key < c->map_len)
		c->map[s->key] = -1;
	if (s->dirty)
		c->ndirty--;
	s->dirty = false;
	s->tick = 0;
}

static void slot_dirty(struct cow_cache *c, struct cow_slot *s)
{
	if (!s->dirty) {
		s->dirty = true;
		c->ndirty++;
	}
}

/* ---- refcount entries of any width ---- */

uint64_t qc_rb_get_entry(const struct qcow2 *q, const uint8_t *rb, uint64_t i)
{
	uint32_t bits;

	switch (q->refcount_order) {
	case 0: case 1: case 2:
		bits = q->rc_bits;
		return (rb[(i * bits) >> 3] >> ((i * bits) & 7)) & ((1u << bits) - 1);
	case 3: return rb[i];
	case 4: return vsm__get_be16(rb + 2 * i);
	case 5: return vsm__get_be32(rb + 4 * i);
	default: return vsm__get_be64(rb + 8 * i);
	}
}

void qc_rb_set_entry(const struct qcow2 *q, uint8_t *rb, uint64_t i, uint64_t v)
{
	uint32_t bits, shift, mask;
	uint8_t *p;

	switch (q->refcount_order) {
	case 0: case 1: case 2:
		bits = q->rc_bits;
		p = &rb[(i * bits) >> 3];
		shift = (uint32_t)((i * bits) & 7);
		mask = ((1u << bits) - 1) << shift;
		*p = (uint8_t)((*p & ~mask) | (((uint32_t)v << shift) & mask));
		break;
	case 3: rb[i] = (uint8_t)v; break;
	case 4: vsm__put_be16(rb + 2 * i, (uint16_t)v); break;
	case 5: vsm__put_be32(rb + 4 * i, (uint32_t)v); break;
	default: vsm__put_be64(rb + 8 * i, v); break;
	}
}

static void rt_set(struct qcow2 *q, uint64_t rti, uint64_t off)
{
	q->rt[rti] = off;
	q->rt_dirty[(rti * 8) / q->cs] = 1;
}

void qc_rt_clear(struct qcow2 *q, uint64_t rti)
{
	rt_set(q, rti, 0);
}

static bool guarded(const struct qcow2 *q, uint64_t cl)
{
	return q->guard && cl < q->guard_len && q->guard[cl] != 0;
}

/* Load the refcount block for table index @rti. *out is NULL when it does
 * not exist (every refcount it would hold is 0). */
static int rb_load(struct qcow2 *q, uint64_t rti, struct cow_slot **out)
{
	struct cow_slot *s;
	uint64_t off;
	int rc;

	*out = NULL;
	if (rti >= q->rt_entries)
		return 0;
	s = cache_find(&q->rbc, rti);
	if (s) {
		*out = s;
		return 0;
	}
	off = q->rt[rti];
	if (off == 0)
		return 0;
	if ((off & QC_RT_RESERVED) || (off & (q->cs - 1)))
		return vsm_err(VSM_ECORRUPT,
			       "%s: refcount block %llu at misaligned offset 0x%llx",
			       q->label, (unsigned long long)rti,
			       (unsigned long long)off);
	if (off >= q->file_end)
		return vsm_err(VSM_ECORRUPT,
			       "%s: refcount block %llu offset 0x%llx is past end of file",
			       q->label, (unsigned long long)rti,
			       (unsigned long long)off);
	rc = cache_take(q, &q->rbc, rti, &s);
	if (rc < 0)
		return rc;
	s->off = off;
	rc = vsm_bdev_read(q->bdev, s->buf, q->cs, off);
	if (rc < 0) {
		slot_drop(&q->rbc, s);
		return rc;
	}
	*out = s;
	return 0;
}

int qc_rc_get(struct qcow2 *q, uint64_t cluster, uint64_t *out)
{
	struct cow_slot *s;
	int rc = rb_load(q, cluster >> q->rb_bits, &s);

	if (rc < 0)
		return rc;
	*out = s ? qc_rb_get_entry(q, s->buf,
				   cluster & ((1ull << q->rb_bits) - 1)) : 0;
	return 0;
}

/* Create the refcount block for @rti inside the range it describes, so
 * that it counts itself and needs no other block. */
static int rb_create(struct qcow2 *q, uint64_t rti)
{
	uint64_t first = rti << q->rb_bits, n = 1ull << q->rb_bits, i;
	struct cow_slot *s;
	int rc;

	for (i = 0; i < n && guarded(q, first + i); i++)
		;
	if (i == n)
		return vsm_err(VSM_ENOSPC, "%s: no free cluster for a refcount block",
			       q->label);
	rc = cache_take(q, &q->rbc, rti, &s);
	if (rc < 0)
		return rc;
	memset(s->buf, 0, q->cs);
	s->off = (first + i) * q->cs;
	qc_rb_set_entry(q, s->buf, i, 1);
	slot_dirty(&q->rbc, s);
	if (q->guard && first + i < q->guard_len)
		q->guard[first + i]++;
	rt_set(q, rti, s->off);
	if (s->off + q->cs > q->file_end)
		q->file_end = s->off + q->cs;
	if (first + i + 1 > q->fresh_from)
		q->fresh_from = first + i + 1;
	return 0;
}

static int grow_rt(struct qcow2 *q, uint64_t need);

static int rc_update(struct qcow2 *q, uint64_t cluster, bool set, int delta,
		     uint64_t val)
{
	uint64_t rti = cluster >> q->rb_bits, cur, nv;
	struct cow_slot *s;
	int rc;

	if (rti >= q->rt_entries) {
		if (!set && delta < 0)
			goto underflow;
		if (set && val == 0)
			return 0;
		rc = grow_rt(q, rti + 1);
		if (rc < 0)
			return rc;
	}
	rc = rb_load(q, rti, &s);
	if (rc < 0)
		return rc;
	if (!s) {
		if ((!set && delta < 0))
			goto underflow;
		if (set && val == 0)
			return 0;
		rc = rb_create(q, rti);
		if (rc < 0)
			return rc;
		rc = rb_load(q, rti, &s);
		if (rc < 0)
			return rc;
	}
	cur = qc_rb_get_entry(q, s->buf, cluster & ((1ull << q->rb_bits) - 1));
	if (set) {
		nv = val;
	} else if (delta < 0) {
		if (cur < (uint64_t)-delta)
			goto underflow;
		nv = cur - (uint64_t)-delta;
	} else {
		nv = cur + (uint64_t)delta;
		if (nv < cur || nv > q->rc_max)
			return vsm_err(VSM_ECORRUPT,
				       "%s: refcount of cluster %llu would overflow %u bits",
				       q->label, (unsigned long long)cluster, q->rc_bits);
	}
	if (nv > q->rc_max)
		return vsm_err(VSM_EINVAL, "%s: refcount %llu does not fit %u bits",
			       q->label, (unsigned long long)nv, q->rc_bits);
	if (nv == cur)
		return 0;
	qc_rb_set_entry(q, s->buf, cluster & ((1ull << q->rb_bits) - 1), nv);
	slot_dirty(&q->rbc, s);
	if (nv == 0 && cluster < q->free_hint)
		q->free_hint = cluster;
	return 0;
underflow:
	return vsm_err(VSM_ECORRUPT, "%s: refcount of cluster %llu would drop below zero",
		       q->label, (unsigned long long)cluster);
}

int qc_rc_add(struct qcow2 *q, uint64_t cluster, int delta)
{
	return rc_update(q, cluster, false, delta, 0);
}

int qc_rc_set(struct qcow2 *q, uint64_t cluster, uint64_t val)
{
	return rc_update(q, cluster, true, 0, val);
}

/* Find @n free clusters in a row at or after the hint. */
static int find_free(struct qcow2 *q, uint64_t n, uint64_t *start,
		     uint64_t *first_free)
{
	uint64_t i = q->free_hint, run = 0, rbn = 1ull << q->rb_bits;
	struct cow_slot *s = NULL;
	uint64_t cur_rti = UINT64_MAX;
	int rc;

	*first_free = UINT64_MAX;
	if (i == 0)
		i = 1; /* the header */
	for (;; i++) {
		uint64_t rti = i >> q->rb_bits, v = 0;

		if (rti != cur_rti) {
			cur_rti = rti;
			rc = rb_load(q, rti, &s);
			if (rc < 0)
				return rc;
			if (!s && !q->guard) {
				/* A range without a block is all free. */
				uint64_t left = rbn - (i & (rbn - 1));

				if (*first_free == UINT64_MAX)
					*first_free = i;
				if (run + left >= n) {
					*start = i - run;
					return 0;
				}
				run += left;
				i += left - 1;
				cur_rti = UINT64_MAX;
				continue;
			}
		}
		if (s)
			v = qc_rb_get_entry(q, s->buf, i & (rbn - 1));
		if (v == 0 && !guarded(q, i)) {
			if (*first_free == UINT64_MAX)
				*first_free = i;
			if (++run == n) {
				*start = i + 1 - n;
				return 0;
			}
		} else {
			run = 0;
		}
	}
}

int qc_alloc(struct qcow2 *q, uint64_t n, uint64_t *out_off, bool *fresh)
{
	uint64_t start, first_free, rti, i;
	int rc;

	for (;;) {
		bool again = false;

		rc = find_free(q, n, &start, &first_free);
		if (rc < 0)
			return rc;
		for (rti = start >> q->rb_bits; rti <= (start + n - 1) >> q->rb_bits; rti++) {
			if (rti >= q->rt_entries) {
				rc = grow_rt(q, rti + 1);
				if (rc < 0)
					return rc;
				again = true;
				break;
			}
			if (q->rt[rti] == 0) {
				rc = rb_create(q, rti);
				if (rc < 0)
					return rc;
				again = true;
				break;
			}
		}
		if (!again)
			break;
	}
	if ((rc = qc_alloc_check(q, start, n)) < 0)
		return rc;
	for (i = 0; i < n; i++) {
		rc = qc_rc_add(q, start + i, 1);
		if (rc < 0)
			return rc;
		if (q->guard && start + i < q->guard_len)
			q->guard[start + i]++;
	}
	q->free_hint = first_free == start ? start + n : first_free;
	if (fresh)
		*fresh = start >= q->fresh_from;
	if (start + n > q->fresh_from)
		q->fresh_from = start + n;
	if ((start + n) * q->cs > q->file_end)
		q->file_end = (start + n) * q->cs;
	*out_off = start * q->cs;
	return 0;
}

/* Move the refcount table to a larger place. The new table is written
 * (with the header pointing at it) at the next rc_sync; the old one is
 * freed after that. */
static int grow_rt(struct qcow2 *q, uint64_t need)
{
	uint64_t per = q->cs / 8, entries, clusters, *nrt, old_off = q->rt_offset;
	uint32_t old_clusters = q->rt_clusters;
	uint8_t *nd;
	int rc;

	entries = q->rt_entries * 2;
	if (entries < need + 8)
		entries = need + 8;
	clusters = (entries + per - 1) / per;
	entries = clusters * per;
	if (clusters * q->cs > QC_MAX_RT_BYTES)
		return vsm_err(VSM_ENOSPC, "%s: refcount table would exceed %u MiB",
			       q->label, QC_MAX_RT_BYTES >> 20);
	nrt = realloc(q->rt, entries * sizeof(*nrt));
	if (!nrt)
		return vsm_err(VSM_ENOMEM, "out of memory");
	memset(nrt + q->rt_entries, 0, (entries - q->rt_entries) * sizeof(*nrt));
	q->rt = nrt;
	nd = realloc(q->rt_dirty, clusters);
	if (!nd)
		return vsm_err(VSM_ENOMEM, "out of memory");
	q->rt_dirty = nd;
	q->rt_entries = entries;
	rc = qc_grow_map(&q->rbc, entries);
	if (rc < 0)
		return rc;
	rc = qc_alloc(q, clusters, &q->rt_offset, NULL);
	if (rc < 0)
		return rc;
	q->rt_clusters = (uint32_t)clusters;
	memset(q->rt_dirty, 1, clusters);
	q->rt_moved = true;
	return qc_defer_free(q, old_off, (uint64_t)old_clusters * q->cs);
}

int qc_defer_free(struct qcow2 *q, uint64_t off, uint64_t len)
{
	uint64_t c, last;

	if (len == 0)
		return 0;
	c = off / q->cs;
	last = (off + len - 1) / q->cs;
	for (; c <= last; c++) {
		if (q->npend == q->pend_cap) {
			size_t ncap = q->pend_cap ? q->pend_cap * 2 : 64;
			uint64_t *np = realloc(q->pend, ncap * sizeof(*np));

			if (!np)
				return vsm_err(VSM_ENOMEM, "out of memory");
			q->pend = np;
			q->pend_cap = ncap;
		}
		q->pend[q->npend++] = c;
	}
	return 0;
}

int qc_free_entry(struct qcow2 *q, uint64_t e)
{
	uint64_t off, len;

	if (e & QC_OFLAG_COMPRESSED) {
		qc_compressed_range(q, e, &off, &len);
		return qc_defer_free(q, off, len);
	}
	off = e & QC_OFFSET_MASK;
	if (off == 0)
		return 0;
	return qc_defer_free(q, off, q->cs);
}

/* Make every refcount change durable: blocks, then the table (and the
 * header when the table moved). Also flushes pending data. */
static int rc_sync(struct qcow2 *q)
{
	unsigned int i;
	uint64_t k, per = q->cs / 8, j;
	bool rt_dirty = false;
	uint8_t *buf;
	int rc;

	if (q->rbc.ndirty) {
		for (i = 0; i < q->rbc.nslots; i++) {
			rc = slot_writeback(q, &q->rbc, &q->rbc.slots[i]);
			if (rc < 0)
				return rc;
		}
	}
	for (k = 0; k < q->rt_clusters; k++)
		if (q->rt_dirty[k])
			rt_dirty = true;
	if (rt_dirty) {
		if (q->unflushed && (rc = bflush(q)) < 0)
			return rc;
		buf = malloc(q->cs);
		if (!buf)
			return vsm_err(VSM_ENOMEM, "out of memory");
		for (k = 0; k < q->rt_clusters; k++) {
			if (!q->rt_dirty[k])
				continue;
			for (j = 0; j < per; j++)
				vsm__put_be64(buf + 8 * j, q->rt[k * per + j]);
			rc = qc_bwrite(q, buf, q->cs, q->rt_offset + k * q->cs);
			if (rc < 0) {
				free(buf);
				return rc;
			}
			q->rt_dirty[k] = 0;
		}
		free(buf);
		if (q->rt_moved) {
			if ((rc = bflush(q)) < 0)
				return rc;
			rc = qc_write_header(q, false);
			if (rc < 0)
				return rc;
			q->rt_moved = false;
		}
	}
	if (q->unflushed)
		return bflush(q);
	return 0;
}

static int extend_file(struct qcow2 *q)
{
	uint64_t sz;
	uint8_t z = 0;
	int rc;

	if (!q->zero_extent)
		return 0;
	rc = vsm_bdev_size(q->bdev, &sz);
	if (rc < 0)
		return rc;
	if (sz < q->file_end) {
		rc = qc_bwrite(q, &z, 1, q->file_end - 1);
		if (rc < 0)
			return rc;
	}
	q->zero_extent = false;
	return 0;
}

int qc_flush(struct qcow2 *q)
{
	unsigned int i;
	uint64_t k, j, nchunks;
	bool l1_dirty = false;
	size_t n;
	int rc;

	if (q->readonly)
		return 0;
	if ((rc = extend_file(q)) < 0)
		return rc;
	if ((rc = rc_sync(q)) < 0)
		return rc;
	if (q->l2c.ndirty) {
		for (i = 0; i < q->l2c.nslots; i++) {
			struct cow_slot *s = &q->l2c.slots[i];

			if (!s->dirty)
				continue;
			rc = qc_bwrite(q, s->buf, q->cs, s->off);
			if (rc < 0)
				return rc;
			s->dirty = false;
			q->l2c.ndirty--;
		}
	}
	nchunks = ((uint64_t)q->l1_size + 511) / 512;
	for (k = 0; k < nchunks; k++)
		if (q->l1_dirty[k])
			l1_dirty = true;
	if (l1_dirty) {
		uint8_t buf[4096];

		if (q->unflushed && (rc = bflush(q)) < 0)
			return rc;
		for (k = 0; k < nchunks; k++) {
			uint64_t first = k * 512;

			if (!q->l1_dirty[k])
				continue;
			n = (size_t)(q->l1_size - first < 512 ? q->l1_size - first : 512);
			for (j = 0; j < n; j++)
				vsm__put_be64(buf + 8 * j, q->l1[first + j]);
			rc = qc_bwrite(q, buf, n * 8, q->l1_offset + first * 8);
			if (rc < 0)
				return rc;
			q->l1_dirty[k] = 0;
		}
	}
	if (q->unflushed && (rc = bflush(q)) < 0)
		return rc;
	/* Every reference that went away is durable: release the clusters. */
	while (q->npend) {
		uint64_t c = q->pend[--q->npend];

		rc = qc_rc_add(q, c, -1);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int qc_flush_all(struct qcow2 *q)
{
	int rc = qc_flush(q);

	if (rc == 0 && !q->readonly && (q->rbc.ndirty || q->npend))
		rc = qc_flush(q);
	return rc;
}

/* Largest read-ahead of L2 tables in one I/O. */
#define QC_L2_READAHEAD (1u << 20)

/* How many tables from @l1i on (its own included) lie back to back on
 * disk from @off, are not cached, and fit free cache slots: read-ahead
 * never evicts, so it can never push out a dirty table. */
static uint64_t l2_readahead_count(const struct qcow2 *q, uint64_t l1i, uint64_t off)
{
	const struct cow_cache *c = &q->l2c;
	uint64_t max, n;

	if (c->nslots >= c->maxslots)
		return 1;
	max = c->maxslots - c->nslots;
	if (max > QC_L2_READAHEAD / q->cs)
		max = QC_L2_READAHEAD / q->cs;
	for (n = 1; n < max && l1i + n < q->l1_size; n++) {
		uint64_t e = q->l1[l1i + n], noff = off + n * q->cs;

		if ((e & QC_L1_RESERVED) || (e & QC_OFFSET_MASK) != noff ||
		    noff + q->cs > q->file_end)
			break;
		if (l1i + n < c->map_len && c->map[l1i + n] >= 0)
			break;
	}
	return n;
}

/* Load the L2 table of @l1i from @off into the cache, with the tables
 * that follow it on disk when they are cheap to take along. */
static int l2_load(struct qcow2 *q, uint64_t l1i, uint64_t off, struct cow_slot **out)
{
	uint64_t n = l2_readahead_count(q, l1i, off), j;
	struct cow_slot *s;
	uint8_t *buf;
	int rc;

	if (n > 1) {
		buf = malloc((size_t)(n * q->cs));
		if (!buf)
			n = 1;
	}
	if (n == 1) {
		rc = cache_take(q, &q->l2c, l1i, &s);
		if (rc < 0)
			return rc;
		s->off = off;
		rc = vsm_bdev_read(q->bdev, s->buf, q->cs, off);
		if (rc < 0) {
			slot_drop(&q->l2c, s);
			return rc;
		}
		*out = s;
		return 0;
	}
	rc = vsm_bdev_read(q->bdev, buf, (size_t)(n * q->cs), off);
	/* The tables after the wanted one first, so that it is the most
	 * recently used. */
	for (j = n; rc == 0 && j-- > 0;) {
		rc = cache_take(q, &q->l2c, l1i + j, &s);
		if (rc < 0)
			break;
		s->off = off + j * q->cs;
		memcpy(s->buf, buf + j * q->cs, q->cs);
		*out = s;
	}
	free(buf);
	return rc;
}

int qc_l2_get(struct qcow2 *q, uint64_t l1i, bool write, uint64_t **tbl,
	      struct cow_slot **slot)
{
	struct cow_slot *s;
	uint64_t l1e, off, rcnt, noff, i, n = qc_l2_entries(q);
	int rc;

	*tbl = NULL;
	if (slot)
		*slot = NULL;
	if (l1i >= q->l1_size)
		return vsm_err(VSM_ECORRUPT, "%s: guest offset beyond the L1 table",
			       q->label);
	l1e = q->l1[l1i];
	s = cache_find(&q->l2c, l1i);
	if (!s) {
		off = l1e & QC_OFFSET_MASK;
		if (l1e & QC_L1_RESERVED)
			return vsm_err(VSM_ECORRUPT,
				       "%s: L1 entry %llu has reserved bits set",
				       q->label, (unsigned long long)l1i);
		if (off == 0) {
			if (!write)
				return 0;
			rc = qc_alloc(q, 1, &noff, NULL);
			if (rc < 0)
				return rc;
			rc = cache_take(q, &q->l2c, l1i, &s);
			if (rc < 0)
				return rc;
			memset(s->buf, 0, q->cs);
			s->off = noff;
			slot_dirty(&q->l2c, s);
			q->l1[l1i] = noff | QC_OFLAG_COPIED;
			q->l1_dirty[l1i / 512] = 1;
			goto done;
		}
		if (off & (q->cs - 1))
			return vsm_err(VSM_ECORRUPT,
				       "%s: L2 table offset 0x%llx is not cluster aligned",
				       q->label, (unsigned long long)off);
		if (off + q->cs > q->file_end)
			return vsm_err(VSM_ECORRUPT,
				       "%s: L2 table offset 0x%llx is past end of file",
				       q->label, (unsigned long long)off);
		rc = l2_load(q, l1i, off, &s);
		if (rc < 0)
			return rc;
	}
	if (write && !(s->dirty && (l1e & QC_OFLAG_COPIED))) {
		rc = qc_rc_get(q, s->off / q->cs, &rcnt);
		if (rc < 0)
			return rc;
		if (rcnt == 0)
			return vsm_err(VSM_ECORRUPT,
				       "%s: L2 table at 0x%llx has refcount 0",
				       q->label, (unsigned long long)s->off);
		if (rcnt > 1) {
			/* Shared with a snapshot: copy it before writing. */
			uint64_t *t = (uint64_t *)(void *)s->buf, old = s->off;

			rc = qc_alloc(q, 1, &noff, NULL);
			if (rc < 0)
				return rc;
			for (i = 0; i < n; i++) {
				uint8_t *p = (uint8_t *)&t[i];
				uint64_t e = vsm__get_be64(p), hc;

				if (!(e & QC_OFLAG_COMPRESSED) && (e & QC_OFFSET_MASK)) {
					rc = qc_rc_get(q, (e & QC_OFFSET_MASK) / q->cs, &hc);
					if (rc < 0)
						return rc;
					e = hc == 1 ? e | QC_OFLAG_COPIED : e & ~QC_OFLAG_COPIED;
					vsm__put_be64(p, e);
				}
			}
			s->off = noff;
			slot_dirty(&q->l2c, s);
			q->l1[l1i] = noff | QC_OFLAG_COPIED;
			q->l1_dirty[l1i / 512] = 1;
			rc = qc_defer_free(q, old, q->cs);
			if (rc < 0)
				return rc;
		} else if (!(l1e & QC_OFLAG_COPIED)) {
			q->l1[l1i] = l1e | QC_OFLAG_COPIED;
			q->l1_dirty[l1i / 512] = 1;
		}
	}
done:
	*tbl = (uint64_t *)(void *)s->buf;
	if (slot)
		*slot = s;
	return 0;
}

/* Would qc_l2_get() for @l1i have to evict a cached table? */
bool qc_l2_may_evict(const struct qcow2 *q, uint64_t l1i)
{
	const struct cow_cache *c = &q->l2c;

	if (l1i < c->map_len && c->map[l1i] >= 0)
		return false;
	return c->nslots >= c->maxslots;
}

void qc_l2_mark(struct qcow2 *q, struct cow_slot *s)
{
	slot_dirty(&q->l2c, s);
}
