/*
 * qcow2 consistency check: count every reference (header, tables, data
 * and compressed clusters of the active and snapshot L1 tables), compare
 * with the stored refcounts and the COPIED flags, and optionally repair
 * both. Leaks are stored counts above the references; anything else is a
 * corruption.
 *
 * Every loop is bounded by the file: references past its end are counted
 * as corruptions, not followed, and each table is read once however many
 * entries name it, so a small hostile image is checked in time
 * proportional to its size.
 */
#include <stdlib.h>
#include <string.h>

#include "cow_int.h"

struct chk {
	struct qcow2 *q;
	uint64_t *cnt;
	uint64_t ncl;
	uint64_t fsize;
	uint32_t *l2mult;   /* per cluster: L1 entries naming it as an L2 table */
	vsm_cow_check_result *res;
	uint8_t *buf;
};

static void add_ref_n(struct chk *k, uint64_t off, uint64_t len, uint32_t mult)
{
	uint64_t c, last;

	if (len == 0)
		return;
	c = off / k->q->cs;
	last = (off + len - 1) / k->q->cs;
	for (; c <= last; c++) {
		if (c >= k->ncl) {
			k->res->corruptions++;
			return;
		}
		k->cnt[c] += mult;
	}
}

static void add_ref(struct chk *k, uint64_t off, uint64_t len)
{
	add_ref_n(k, off, len, 1);
}

static bool bad_offset(struct chk *k, uint64_t off, uint64_t len)
{
	if ((off & (k->q->cs - 1)) || off + len > k->ncl * k->q->cs || off == 0) {
		k->res->corruptions++;
		return true;
	}
	return false;
}

/* The data an L2 table names counts once per L1 entry naming the table
 * (snapshots share tables), but the table is read only once. */
static int walk_l2(struct chk *k, uint64_t l2off, uint32_t mult)
{
	struct qcow2 *q = k->q;
	uint64_t i, n = qc_l2_entries(q), e, host, clen;
	int rc;

	rc = vsm_bdev_read(q->bdev, k->buf, q->cs, l2off);
	if (rc < 0)
		return rc;
	for (i = 0; i < n; i++) {
		e = vsm__get_be64(k->buf + 8 * i);
		if (e & QC_OFLAG_COMPRESSED) {
			qc_compressed_range(q, e & ~QC_OFLAG_COPIED, &host, &clen);
			if (host + clen > k->ncl * q->cs + q->cs)
				k->res->corruptions++;
			else
				add_ref_n(k, host, clen, mult);
			continue;
		}
		host = e & QC_OFFSET_MASK;
		if ((e & QC_L2_STD_RESERVED) || (q->version == 2 && (e & 1))) {
			k->res->corruptions++;
			continue;
		}
		if (host && !bad_offset(k, host, q->cs))
			add_ref_n(k, host, q->cs, mult);
	}
	return 0;
}

/* Note the L2 tables of an L1 table; walk_l2s() reads them. */
static void walk_l1(struct chk *k, const uint64_t *l1, uint64_t n)
{
	uint64_t i, off;

	for (i = 0; i < n; i++) {
		if (l1[i] & QC_L1_RESERVED) {
			k->res->corruptions++;
			continue;
		}
		off = l1[i] & QC_OFFSET_MASK;
		if (!off || bad_offset(k, off, k->q->cs))
			continue;
		add_ref(k, off, k->q->cs);
		if (k->l2mult[off / k->q->cs] < UINT32_MAX)
			k->l2mult[off / k->q->cs]++;
	}
}

static int walk_l2s(struct chk *k)
{
	uint64_t c;
	int rc;

	for (c = 0; c < k->ncl; c++) {
		if (!k->l2mult[c])
			continue;
		rc = walk_l2(k, c * k->q->cs, k->l2mult[c]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int walk_snapshots(struct chk *k)
{
	struct qcow2 *q = k->q;
	uint64_t p = q->snapshots_offset, i, j;
	uint8_t e[40];
	int rc;

	for (i = 0; i < q->nb_snapshots; i++) {
		uint64_t l1off, total, *l1;
		uint32_t l1n, idl, namel, extra;
		uint8_t *raw;

		if (p + 40 > k->fsize) {
			k->res->corruptions++;
			return 0;
		}
		rc = vsm_bdev_read(q->bdev, e, sizeof(e), p);
		if (rc < 0)
			return rc;
		l1off = vsm__get_be64(e);
		l1n = vsm__get_be32(e + 8);
		idl = vsm__get_be16(e + 12);
		namel = vsm__get_be16(e + 14);
		extra = vsm__get_be32(e + 36);
		total = 40 + (uint64_t)extra + idl + namel;
		total = (total + 7) & ~7ull;
		p += total;
		if ((uint64_t)l1n * 8 > QC_MAX_L1_BYTES ||
		    bad_offset(k, l1off, l1n ? (uint64_t)l1n * 8 : 1)) {
			k->res->corruptions++;
			continue;
		}
		/* Each snapshot has its own L1 table; one that shares its
		 * clusters with anything counted so far is not read again. */
		if (l1n && k->cnt[l1off / q->cs]) {
			k->res->corruptions++;
			add_ref(k, l1off, (uint64_t)l1n * 8);
			continue;
		}
		add_ref(k, l1off, (uint64_t)l1n * 8);
		raw = malloc((size_t)l1n * 8 + 8);
		l1 = malloc((size_t)l1n * 8 + 8);
		if (!raw || !l1) {
			free(raw);
			free(l1);
			return vsm_err(VSM_ENOMEM, "out of memory");
		}
		rc = vsm_bdev_read(q->bdev, raw, (size_t)l1n * 8, l1off);
		for (j = 0; rc == 0 && j < l1n; j++)
			l1[j] = vsm__get_be64(raw + 8 * j);
		if (rc == 0)
			walk_l1(k, l1, l1n);
		free(raw);
		free(l1);
		if (rc < 0)
			return rc;
	}
	if (q->nb_snapshots)
		add_ref(k, q->snapshots_offset, p - q->snapshots_offset);
	return 0;
}

static int walk_bitmaps(struct chk *k)
{
	struct qcow2 *q = k->q;
	uint64_t p = q->version == 3 ? q->header_length : 72;

	/* Without the autoclear bit the extension is stale and its clusters
	 * are leaks, as QEMU counts them. */
	if (!(q->autoclear & QC_AUTOCLEAR_BITMAPS))
		return 0;
	while (p + 8 <= q->cs) {
		uint32_t type = vsm__get_be32(q->hdr + p), len = vsm__get_be32(q->hdr + p + 4);

		if (type == QC_EXT_END || p + 8 + len > q->cs)
			break;
		if (type == QC_EXT_BITMAPS && len >= 24) {
			uint32_t nb = vsm__get_be32(q->hdr + p + 8), i;
			uint64_t dsize = vsm__get_be64(q->hdr + p + 16), doff = vsm__get_be64(q->hdr + p + 24);
			uint8_t *dir;
			uint64_t d = 0;

			if (dsize > (64u << 20) || bad_offset(k, doff, dsize ? dsize : 1))
				return 0;
			add_ref(k, doff, dsize);
			dir = malloc(dsize);
			if (!dir)
				return vsm_err(VSM_ENOMEM, "out of memory");
			if (vsm_bdev_read(q->bdev, dir, dsize, doff) < 0) {
				free(dir);
				return -VSM_EIO;
			}
			for (i = 0; i < nb && d + 24 <= dsize; i++) {
				uint64_t toff = vsm__get_be64(dir + d), j;
				uint32_t tsize = vsm__get_be32(dir + d + 8);
				uint32_t nsz = vsm__get_be16(dir + d + 18), esz = vsm__get_be32(dir + d + 20);
				uint8_t *t;

				d += (24 + esz + nsz + 7) & ~7ull;
				if ((uint64_t)tsize * 8 > (64u << 20) ||
				    bad_offset(k, toff, tsize ? (uint64_t)tsize * 8 : 1))
					continue;
				if (tsize && k->cnt[toff / q->cs]) {
					/* shared with another table: not read again */
					k->res->corruptions++;
					add_ref(k, toff, (uint64_t)tsize * 8);
					continue;
				}
				add_ref(k, toff, (uint64_t)tsize * 8);
				t = malloc((size_t)tsize * 8 + 8);
				if (!t)
					break;
				if (vsm_bdev_read(q->bdev, t, (size_t)tsize * 8, toff) == 0)
					for (j = 0; j < tsize; j++) {
						uint64_t be = vsm__get_be64(t + 8 * j) & QC_OFFSET_MASK;

						if (be && !bad_offset(k, be, q->cs))
							add_ref(k, be, q->cs);
					}
				free(t);
			}
			free(dir);
		}
		p += 8 + ((len + 7) & ~7ull);
	}
	return 0;
}

/* Counts for clusters past the end of the file are leaks. Only blocks
 * that lie inside the file and are named by exactly one table entry are
 * read (a block past the end is already a corruption), so this reads at
 * most every cluster of the file once, wherever the table points. */
static int past_end(struct chk *k, bool repair)
{
	struct qcow2 *q = k->q;
	uint64_t j, i, end, off, stored, per = 1ull << q->rb_bits;
	/* clusters a repair has just allocated (past the old end) are in use */
	uint64_t lo = q->file_end / q->cs > k->ncl ? q->file_end / q->cs : k->ncl;
	int rc;

	for (j = 0; j < q->rt_entries; j++) {
		off = q->rt[j];
		if (!off || (off & QC_RT_RESERVED) || (off & (q->cs - 1)) ||
		    off / q->cs >= k->ncl)
			continue;
		end = (j + 1) * per;
		if (end <= lo)
			continue;
		if (k->cnt[off / q->cs] != 1) {
			/* a refcount block shared with other metadata */
			k->res->corruptions++;
			continue;
		}
		for (i = j * per > lo ? j * per : lo; i < end; i++) {
			rc = qc_rc_get(q, i, &stored);
			if (rc < 0) {
				vsm_error_clear();
				k->res->corruptions++;
				break;
			}
			if (!stored)
				continue;
			k->res->leaks++;
			if (repair) {
				rc = qc_rc_set(q, i, 0);
				if (rc < 0)
					return rc;
				k->res->leaks_fixed++;
			}
		}
	}
	return 0;
}

/* COPIED flags of the active tables must say "refcount is exactly 1". */
static int check_copied(struct chk *k, bool repair)
{
	struct qcow2 *q = k->q;
	uint64_t i, j, n = qc_l2_entries(q), *tbl;
	struct cow_slot *slot;
	uint8_t *seen = vsm__calloc(k->ncl + 1, 1);
	int rc = 0;

	if (!seen)
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (i = 0; i < q->l1_size; i++) {
		uint64_t off = q->l1[i] & QC_OFFSET_MASK, rcnt;
		bool want, fix_l2 = false;

		if (!off || (q->l1[i] & QC_L1_RESERVED) || off / q->cs >= k->ncl ||
		    (off & (q->cs - 1)))
			continue;
		/* A table named twice is already a corruption (its count is
		 * off); reading it again would only cost time. */
		if (seen[off / q->cs])
			continue;
		seen[off / q->cs] = 1;
		rc = qc_rc_get(q, off / q->cs, &rcnt);
		if (rc < 0)
			goto out;
		want = rcnt == 1;
		if (want != !!(q->l1[i] & QC_OFLAG_COPIED)) {
			k->res->corruptions++;
			if (repair) {
				q->l1[i] = want ? q->l1[i] | QC_OFLAG_COPIED : q->l1[i] & ~QC_OFLAG_COPIED;
				q->l1_dirty[i / 512] = 1;
				k->res->corruptions_fixed++;
			}
		}
		rc = qc_l2_get(q, i, false, &tbl, &slot);
		if (rc < 0)
			goto out;
		for (j = 0; tbl && j < n; j++) {
			uint8_t *p = (uint8_t *)&tbl[j];
			uint64_t e = vsm__get_be64(p), h = e & QC_OFFSET_MASK, hc;

			if ((e & QC_OFLAG_COMPRESSED) || !h || (h & (q->cs - 1)) ||
			    h / q->cs >= k->ncl || (e & QC_L2_STD_RESERVED))
				continue;
			rc = qc_rc_get(q, h / q->cs, &hc);
			if (rc < 0)
				goto out;
			want = hc == 1;
			if (want != !!(e & QC_OFLAG_COPIED)) {
				k->res->corruptions++;
				if (repair) {
					vsm__put_be64(p, want ? e | QC_OFLAG_COPIED : e & ~QC_OFLAG_COPIED);
					fix_l2 = true;
					k->res->corruptions_fixed++;
				}
			}
		}
		if (fix_l2)
			qc_l2_mark(q, slot);
	}
out:
	free(seen);
	return rc;
}

/* After a full repair the refcounts are exact: clear the dirty bit now,
 * as QEMU does, so that a crash before close does not ask for another
 * repair. The next change sets it again. */
static int mark_clean(struct qcow2 *q)
{
	int rc;

	if (q->version != 3 || !(q->incompat & QC_INCOMPAT_DIRTY))
		return 0;
	q->incompat &= ~QC_INCOMPAT_DIRTY;
	rc = qc_write_header(q, false);
	if (rc == 0)
		rc = vsm_bdev_flush(q->bdev);
	if (rc < 0) {
		q->incompat |= QC_INCOMPAT_DIRTY;
		return rc;
	}
	q->marked_dirty = false;
	return 0;
}

int qc_check(struct qcow2 *q, vsm_cow_check_result *res, bool repair)
{
	struct chk k;
	uint64_t i, stored;
	bool need_repair = q->need_repair;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&k, 0, sizeof(k));
	k.q = q;
	k.res = res;
	if (repair && q->readonly)
		return vsm_err(VSM_EPERM, "%s: cannot repair an image open read-only", q->label);
	if (!q->readonly) {
		rc = qc_flush_all(q);
		if (rc < 0)
			return rc;
	}
	rc = vsm_bdev_size(q->bdev, &k.fsize);
	if (rc < 0)
		return rc;
	k.ncl = (k.fsize + q->cs - 1) / q->cs;
	if (q->file_end / q->cs > k.ncl)
		k.ncl = q->file_end / q->cs;
	k.cnt = vsm__calloc(k.ncl + 1, sizeof(uint64_t));
	k.l2mult = vsm__calloc(k.ncl + 1, sizeof(uint32_t));
	k.buf = malloc(q->cs);
	if (!k.cnt || !k.l2mult || !k.buf) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	add_ref(&k, 0, q->cs);
	add_ref(&k, q->l1_offset, (uint64_t)q->l1_size * 8);
	walk_l1(&k, q->l1, q->l1_size);
	add_ref(&k, q->rt_offset, (uint64_t)q->rt_clusters * q->cs);
	for (i = 0; i < q->rt_entries; i++) {
		uint64_t off = q->rt[i];

		if (!off)
			continue;
		if ((off & QC_RT_RESERVED) || bad_offset(&k, off, q->cs))
			continue;
		add_ref(&k, off, q->cs);
	}
	rc = walk_snapshots(&k);
	if (rc == 0)
		rc = walk_bitmaps(&k);
	if (rc == 0)
		rc = walk_l2s(&k);
	if (rc < 0)
		goto out;

	/* Compare with what is stored: every cluster of the file here,
	 * the counts past its end below. */
	if (repair) {
		/* This is the repair qc_mark_dirty() waits for: it must not
		 * start another one. Restored below unless all gets fixed. */
		q->need_repair = false;
		/* The repair is also the remedy for metadata the refcounts
		 * left out (qcow2_overlap.c): the guard, set first, keeps the
		 * allocator off every cluster in use while it runs. */
		q->guard = k.cnt;
		q->guard_len = k.ncl;
		free(q->inconsistent);
		q->inconsistent = NULL;
		rc = qc_mark_dirty(q);
		if (rc < 0)
			goto out;
		/* A refcount-table entry that names no usable block (reserved
		 * bits, misaligned, past the end of the file) is forgotten: the
		 * comparison below then finds every cluster of its range
		 * uncounted and writes a new block for it. */
		for (i = 0; i < q->rt_entries; i++) {
			uint64_t off = q->rt[i];

			if (!off || (!(off & QC_RT_RESERVED) && !(off & (q->cs - 1)) &&
				     off / q->cs < k.ncl))
				continue;
			if (off & QC_RT_RESERVED)
				res->corruptions++; /* not counted by the walk above */
			qc_rt_clear(q, i);
			res->corruptions_fixed++;
		}
	}
	for (i = 0; i < k.ncl; i++) {
		uint64_t want = k.cnt[i];

		rc = qc_rc_get(q, i, &stored);
		if (rc < 0) {
			/* An unreadable block: everything it counts is wrong. */
			vsm_error_clear();
			res->corruptions++;
			i |= (1ull << q->rb_bits) - 1;
			continue;
		}
		if (want)
			res->allocated_clusters++;
		if (want && (i + 1) * q->cs > res->image_end)
			res->image_end = (i + 1) * q->cs;
		if (stored == want)
			continue;
		if (stored > want)
			res->leaks++;
		else
			res->corruptions++;
		if (repair) {
			if (want > q->rc_max)
				continue;
			rc = qc_rc_set(q, i, want);
			if (rc < 0)
				goto out;
			if (stored > want)
				res->leaks_fixed++;
			else
				res->corruptions_fixed++;
		}
	}
	rc = past_end(&k, repair);
	if (rc < 0)
		goto out;
	rc = check_copied(&k, repair);
	if (rc < 0)
		goto out;
	if (repair) {
		q->guard = NULL;
		rc = qc_flush_all(q);
		if (rc < 0)
			goto out;
		if (res->corruptions == res->corruptions_fixed && res->leaks == res->leaks_fixed) {
			rc = mark_clean(q);
			q->meta_verified = rc == 0;
		} else
			q->need_repair = need_repair;
	}
out:
	if (rc < 0 && repair)
		q->need_repair = need_repair;
	q->guard = NULL;
	free(k.cnt);
	free(k.l2mult);
	free(k.buf);
	return rc;
}
