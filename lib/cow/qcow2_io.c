/*
 * qcow2 guest I/O: reads through L1/L2 (zero, compressed and backing
 * clusters included), allocating and copy-on-write writes, zeroing as
 * zero clusters, block status, and emptying an overlay after commit.
 * Adjacent clusters that map to adjacent host clusters go out as one I/O.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cow_int.h"

/* A run of I/O being gathered: host bytes, or guest bytes of the backing.
 * Closed host runs wait in @batch and go to the device together through
 * the bdev's asynchronous submission, so one caller keeps several
 * discontiguous extents in flight (queue depth on an iSCSI LUN); devices
 * without native submission run the batch in turn. Requests of one batch
 * never overlap: each names other host clusters. */
#define RUN_BATCH 32

struct run {
	int kind; /* 0 none, 1 host read, 2 backing read, 3 host write */
	uint64_t start;
	uint8_t *buf;
	const uint8_t *wbuf;
	uint64_t len;
	vsm_bdev_req batch[RUN_BATCH];
	size_t n;
	bool writes; /* the batch holds writes */
};

static void run_init(struct run *r)
{
	r->kind = 0;
	r->len = 0;
	r->n = 0;
	r->writes = false;
}

/* Issue every closed run and wait for them. */
static int batch_run(vsm_cow *c, struct run *r)
{
	struct qcow2 *q = c->q;
	size_t n = r->n;
	int rc;

	if (n == 0)
		return 0;
	r->n = 0;
	if (n == 1 && r->batch[0].op == VSM_BDEV_OP_READ)
		return vsm_bdev_read(q->bdev, r->batch[0].buf, r->batch[0].len, r->batch[0].off);
	if (n == 1)
		rc = vsm_bdev_write(q->bdev, r->batch[0].buf, r->batch[0].len, r->batch[0].off);
	else
		rc = vsm_bdev_run(q->bdev, r->batch, n);
	if (r->writes && rc == 0)
		q->unflushed = true;
	r->writes = false;
	return rc;
}

/* Close the current run: host I/O joins the batch, backing reads run. */
static int run_close(vsm_cow *c, struct run *r)
{
	uint64_t bsz, n;
	vsm_bdev_req *b;
	int rc = 0;

	switch (r->kind) {
	case 1:
	case 3:
		if (r->n == RUN_BATCH && (rc = batch_run(c, r)) < 0)
			break;
		b = &r->batch[r->n++];
		memset(b, 0, sizeof(*b));
		b->op = r->kind == 1 ? VSM_BDEV_OP_READ : VSM_BDEV_OP_WRITE;
		b->off = r->start;
		b->buf = r->kind == 1 ? r->buf : (void *)(uintptr_t)r->wbuf;
		b->len = (size_t)r->len;
		if (r->kind == 3)
			r->writes = true;
		break;
	case 2:
		/* Guest range read from the backing chain, zeros past its end. */
		bsz = c->backing ? c->backing->size : 0;
		n = r->start >= bsz ? 0 : (bsz - r->start < r->len ? bsz - r->start : r->len);
		if (n)
			rc = cow_do_read(c->backing, r->buf, n, r->start);
		if (rc == 0 && n < r->len)
			memset(r->buf + n, 0, (size_t)(r->len - n));
		break;
	default:
		break;
	}
	r->kind = 0;
	r->len = 0;
	return rc;
}

/* Finish everything gathered so far. */
static int run_flush(vsm_cow *c, struct run *r)
{
	int rc = run_close(c, r), rc2 = batch_run(c, r);

	return rc < 0 ? rc : rc2;
}

static int run_add(vsm_cow *c, struct run *r, int kind, uint64_t start,
		   uint8_t *buf, const uint8_t *wbuf, uint64_t len)
{
	int rc;

	if (r->kind == kind && r->start + r->len == start &&
	    (kind == 3 ? r->wbuf + r->len == wbuf : r->buf + r->len == buf) &&
	    r->len + len <= (64u << 20)) {
		r->len += len;
		return 0;
	}
	rc = run_close(c, r);
	if (rc < 0)
		return rc;
	r->kind = kind;
	r->start = start;
	r->buf = buf;
	r->wbuf = wbuf;
	r->len = len;
	return 0;
}

void qc_compressed_range(const struct qcow2 *q, uint64_t e, uint64_t *off,
			 uint64_t *len)
{
	uint32_t x = 62 - (q->cluster_bits - 8);
	uint64_t nsec = ((e >> x) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;

	*off = e & ((1ull << x) - 1);
	*len = nsec * 512 - (*off & 511);
}

int qc_read_compressed(struct qcow2 *q, uint64_t e, uint8_t *out)
{
	uint64_t off, len;
	z_stream zs;
	int rc, zr;

	if (q->cbuf_valid && q->cbuf_entry == e) {
		if (out != q->cbuf)
			memcpy(out, q->cbuf, q->cs);
		return 0;
	}
	qc_compressed_range(q, e, &off, &len);
	if (off + len > q->file_end + q->cs)
		return vsm_err(VSM_ECORRUPT,
			       "%s: compressed cluster at 0x%llx is past end of file",
			       q->label, (unsigned long long)off);
	rc = vsm_bdev_read(q->bdev, q->ztmp, (size_t)len, off);
	if (rc < 0)
		return rc;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, -15) != Z_OK)
		return vsm_err(VSM_ENOMEM, "%s: cannot start inflate", q->label);
	zs.next_in = q->ztmp;
	zs.avail_in = (uInt)len;
	zs.next_out = q->cbuf;
	zs.avail_out = (uInt)q->cs;
	zr = inflate(&zs, Z_FINISH);
	inflateEnd(&zs);
	if ((zr != Z_STREAM_END && zr != Z_BUF_ERROR) || zs.avail_out != 0) {
		q->cbuf_valid = false;
		return vsm_err(VSM_ECORRUPT, "%s: compressed cluster at 0x%llx does not inflate",
			       q->label, (unsigned long long)off);
	}
	q->cbuf_entry = e;
	q->cbuf_valid = true;
	if (out != q->cbuf)
		memcpy(out, q->cbuf, q->cs);
	return 0;
}

/* Check a standard entry; the host offset is returned. */
static int std_entry(struct qcow2 *q, uint64_t e, uint64_t *host)
{
	uint64_t h = e & QC_OFFSET_MASK;

	if ((e & QC_L2_STD_RESERVED) || (q->version == 2 && (e & QC_OFLAG_ZERO)))
		return vsm_err(VSM_ECORRUPT, "%s: L2 entry 0x%llx has reserved bits set",
			       q->label, (unsigned long long)e);
	if (h & (q->cs - 1))
		return vsm_err(VSM_ECORRUPT,
			       "%s: data cluster offset 0x%llx is not cluster aligned",
			       q->label, (unsigned long long)h);
	if (h && h + q->cs > q->file_end)
		return vsm_err(VSM_ECORRUPT,
			       "%s: data cluster offset 0x%llx is past end of file",
			       q->label, (unsigned long long)h);
	*host = h;
	return 0;
}

static inline uint64_t l2e_get(const uint64_t *t, uint64_t i)
{
	return vsm__get_be64((const uint8_t *)&t[i]);
}

static inline void l2e_set(uint64_t *t, uint64_t i, uint64_t v)
{
	vsm__put_be64((uint8_t *)&t[i], v);
}

static bool is_zero_entry(const struct qcow2 *q, uint64_t e)
{
	return q->version == 3 && !(e & QC_OFLAG_COMPRESSED) && (e & QC_OFLAG_ZERO);
}

int qc_read(vsm_cow *c, uint8_t *buf, uint64_t len, uint64_t off)
{
	struct qcow2 *q = c->q;
	uint64_t l2n = qc_l2_entries(q), *tbl, e, host, n;
	struct run r;
	int rc;

	run_init(&r);
	while (len) {
		uint64_t l1i = off >> (q->cluster_bits + q->l2_bits);
		uint64_t l2i = (off >> q->cluster_bits) & (l2n - 1);

		/* A pending read run stays open across L2 tables: loading or
		 * evicting a table never touches the data clusters it reads
		 * or the buffer it fills, so host-contiguous data spanning
		 * several tables goes out as one I/O. */
		rc = qc_l2_get(q, l1i, false, &tbl, NULL);
		if (rc < 0)
			return rc;
		for (; len && l2i < l2n; l2i++) {
			uint64_t co = off & (q->cs - 1);

			n = q->cs - co < len ? q->cs - co : len;
			e = tbl ? l2e_get(tbl, l2i) : 0;
			if (e & QC_OFLAG_COMPRESSED) {
				rc = run_flush(c, &r);
				if (rc == 0)
					rc = qc_read_compressed(q, e & ~QC_OFLAG_COPIED, q->cbuf);
				if (rc < 0)
					return rc;
				memcpy(buf, q->cbuf + co, (size_t)n);
			} else if (is_zero_entry(q, e)) {
				memset(buf, 0, (size_t)n);
			} else {
				rc = std_entry(q, e, &host);
				if (rc < 0)
					return rc;
				if (host)
					rc = run_add(c, &r, 1, host + co, buf, NULL, n);
				else if (c->backing)
					rc = run_add(c, &r, 2, off, buf, NULL, n);
				else
					memset(buf, 0, (size_t)n);
				if (rc < 0)
					return rc;
			}
			buf += n;
			off += n;
			len -= n;
		}
	}
	return run_flush(c, &r);
}

/* Would the cluster at guest @goff read as zeros with entry @e? */
static bool reads_zero(vsm_cow *c, uint64_t e, uint64_t goff)
{
	if (is_zero_entry(c->q, e))
		return true;
	if (e != 0 && (e & ~QC_OFLAG_COPIED) != 0)
		return false;
	return !c->backing || goff >= c->backing->size;
}

/* Fill @dst with the current content of the cluster at guest @gstart. */
static int cluster_content(vsm_cow *c, uint64_t e, uint64_t gstart, uint8_t *dst)
{
	struct qcow2 *q = c->q;
	uint64_t host, bsz, n;
	int rc;

	if (e & QC_OFLAG_COMPRESSED)
		return qc_read_compressed(q, e & ~QC_OFLAG_COPIED, dst);
	if (is_zero_entry(q, e)) {
		memset(dst, 0, q->cs);
		return 0;
	}
	rc = std_entry(q, e, &host);
	if (rc < 0)
		return rc;
	if (host)
		return vsm_bdev_read(q->bdev, dst, q->cs, host);
	bsz = c->backing ? c->backing->size : 0;
	n = gstart >= bsz ? 0 : (bsz - gstart < q->cs ? bsz - gstart : q->cs);
	if (n) {
		rc = cow_do_read(c->backing, dst, n, gstart);
		if (rc < 0)
			return rc;
	}
	memset(dst + n, 0, (size_t)(q->cs - n));
	return 0;
}

/*
 * What an allocating write changed in cached L2 tables, kept until the
 * data is on the device. The L2 entry of a new cluster is set as the data
 * joins a run, before the run goes out; if a data write then fails
 * (EIO, ENOSPC), every entry is put back and the new clusters are given
 * back, so nothing the next flush or close writes points at data that
 * never landed. Clusters the old entries held are freed only once the
 * new data is there.
 */
struct wundo {
	uint64_t l1i, l2i;
	uint64_t old;   /* the entry before this write */
	uint64_t nh;    /* the cluster allocated for it */
};

struct wlog {
	struct wundo *e;
	size_t n, cap;
};

static int wlog_add(struct wlog *w, uint64_t l1i, uint64_t l2i, uint64_t old, uint64_t nh)
{
	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 64;
		struct wundo *ne = realloc(w->e, ncap * sizeof(*ne));

		if (!ne)
			return vsm_err(VSM_ENOMEM, "out of memory");
		w->e = ne;
		w->cap = ncap;
	}
	w->e[w->n++] = (struct wundo){ l1i, l2i, old, nh };
	return 0;
}

/* The data of every logged entry is on the device: free what the old
 * entries held. */
static int wlog_commit(struct qcow2 *q, struct wlog *w)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < w->n && rc == 0; i++)
		if ((w->e[i].old & ~(QC_OFLAG_COPIED | QC_OFLAG_ZERO)) != 0)
			rc = qc_free_entry(q, w->e[i].old);
	w->n = 0;
	return rc;
}

/* A data write failed: put the logged entries back (their tables are
 * still cached: none is evicted before the log is committed) and give
 * the new clusters back. If even that fails, the image takes no more
 * changes in this open. Returns @rc, the failure being reported. */
static int wlog_rollback(struct qcow2 *q, struct wlog *w, int rc)
{
	const vsm_error *e = vsm_error_last();
	int code = e ? e->code : -rc;
	char *msg = vsm__strdup(e && e->message ? e->message : "write failed");
	struct cow_slot *slot;
	uint64_t *tbl;
	size_t i;
	bool clean = true;

	for (i = w->n; i-- > 0;) {
		struct wundo *u = &w->e[i];

		if (qc_l2_get(q, u->l1i, true, &tbl, &slot) < 0 ||
		    qc_rc_add(q, u->nh / q->cs, -1) < 0) {
			clean = false;
			continue;
		}
		l2e_set(tbl, u->l2i, u->old);
		qc_l2_mark(q, slot);
	}
	w->n = 0;
	if (!clean && !q->inconsistent)
		q->inconsistent = vsm__strdup("a failed write could not be undone");
	/* The caller is told of the write that failed, not of the undo. */
	vsm_error_set(code, "%s", msg ? msg : "write failed");
	free(msg);
	return rc;
}

static int qc_write_logged(vsm_cow *c, const uint8_t *buf, uint64_t len, uint64_t off,
			   struct wlog *w);

int qc_write(vsm_cow *c, const uint8_t *buf, uint64_t len, uint64_t off)
{
	struct qcow2 *q = c->q;
	struct wlog w = { NULL, 0, 0 };
	int rc = qc_content_change(q);

	if (rc < 0)
		return rc;
	rc = qc_write_logged(c, buf, len, off, &w);
	if (rc < 0)
		rc = wlog_rollback(q, &w, rc);
	free(w.e);
	return rc;
}

static int qc_write_logged(vsm_cow *c, const uint8_t *buf, uint64_t len, uint64_t off,
			   struct wlog *w)
{
	struct qcow2 *q = c->q;
	uint64_t l2n = qc_l2_entries(q), *tbl, e, host, n, nh, rcnt;
	struct cow_slot *slot;
	struct run r;
	bool fresh;
	int rc;

	run_init(&r);
	q->cbuf_valid = false;
	while (len) {
		uint64_t l1i = off >> (q->cluster_bits + q->l2_bits);
		uint64_t l2i = (off >> q->cluster_bits) & (l2n - 1);

		/* Data goes out before any L2 table can be evicted: a dirty
		 * table written back now could point at clusters whose data
		 * is still in the pending run. When the next table is cached
		 * or a free slot takes it, nothing is evicted and the run
		 * continues across the table boundary. */
		if (qc_l2_may_evict(q, l1i)) {
			rc = run_flush(c, &r);
			if (rc == 0)
				rc = wlog_commit(q, w);
			if (rc < 0)
				return rc;
		}
		rc = qc_l2_get(q, l1i, true, &tbl, &slot);
		if (rc < 0)
			return rc;
		for (; len && l2i < l2n; l2i++) {
			uint64_t co = off & (q->cs - 1), gstart = off - co;

			n = q->cs - co < len ? q->cs - co : len;
			e = l2e_get(tbl, l2i);
			host = 0;
			rcnt = 0;
			if (!(e & QC_OFLAG_COMPRESSED) && !is_zero_entry(q, e)) {
				rc = std_entry(q, e, &host);
				if (rc == 0 && host)
					rc = qc_rc_get(q, host / q->cs, &rcnt);
				if (rc < 0)
					return rc;
			}
			if (host && rcnt == 1) {
				rc = run_add(c, &r, 3, host + co, NULL, buf, n);
				if (rc < 0)
					return rc;
				if (!(e & QC_OFLAG_COPIED)) {
					l2e_set(tbl, l2i, e | QC_OFLAG_COPIED);
					qc_l2_mark(q, slot);
				}
			} else {
				if (host && rcnt == 0)
					return vsm_err(VSM_ECORRUPT,
						       "%s: data cluster 0x%llx has refcount 0",
						       q->label, (unsigned long long)host);
				rc = qc_alloc(q, 1, &nh, &fresh);
				if (rc == 0)
					rc = wlog_add(w, l1i, l2i, e, nh);
				if (rc < 0)
					return rc;
				if (n == q->cs) {
					rc = run_add(c, &r, 3, nh, NULL, buf, n);
				} else if (fresh && reads_zero(c, e, gstart)) {
					/* The rest of a never-written cluster reads 0. */
					rc = run_add(c, &r, 3, nh + co, NULL, buf, n);
					q->zero_extent = true;
				} else {
					rc = run_flush(c, &r);
					if (rc == 0)
						rc = cluster_content(c, e, gstart, q->tmp);
					if (rc == 0) {
						memcpy(q->tmp + co, buf, (size_t)n);
						rc = qc_bwrite(q, q->tmp, q->cs, nh);
					}
				}
				if (rc < 0)
					return rc;
				l2e_set(tbl, l2i, nh | QC_OFLAG_COPIED);
				qc_l2_mark(q, slot);
			}
			buf += n;
			off += n;
			len -= n;
		}
	}
	rc = run_flush(c, &r);
	return rc < 0 ? rc : wlog_commit(q, w);
}

static int zero_part(vsm_cow *c, uint64_t off, uint64_t n)
{
	struct qcow2 *q = c->q;
	uint64_t *tbl, e, l1i = off >> (q->cluster_bits + q->l2_bits);
	uint64_t l2i = (off >> q->cluster_bits) & (qc_l2_entries(q) - 1);
	uint8_t *z;
	int rc;

	rc = qc_l2_get(q, l1i, false, &tbl, NULL);
	if (rc < 0)
		return rc;
	e = tbl ? l2e_get(tbl, l2i) : 0;
	if (reads_zero(c, e, off - (off & (q->cs - 1))))
		return 0;
	z = calloc(1, (size_t)n);
	if (!z)
		return vsm_err(VSM_ENOMEM, "out of memory");
	rc = qc_write(c, z, n, off);
	free(z);
	return rc;
}

int qc_zero(vsm_cow *c, uint64_t off, uint64_t len, bool unmap)
{
	struct qcow2 *q = c->q;
	uint64_t l2n = qc_l2_entries(q), *tbl, e, n;
	struct cow_slot *slot;
	int rc;

	(void)unmap;
	rc = qc_content_change(q);
	if (rc < 0)
		return rc;
	q->cbuf_valid = false;
	while (len) {
		uint64_t co = off & (q->cs - 1), gstart = off - co;
		uint64_t cend = q->cs < c->size - gstart ? q->cs : c->size - gstart;
		uint64_t l1i, l2i;

		n = q->cs - co < len ? q->cs - co : len;
		if (co != 0 || n < cend) {
			rc = zero_part(c, off, n);
			if (rc < 0)
				return rc;
			off += n;
			len -= n;
			continue;
		}
		n = cend;
		l1i = off >> (q->cluster_bits + q->l2_bits);
		l2i = (off >> q->cluster_bits) & (l2n - 1);
		rc = qc_l2_get(q, l1i, false, &tbl, NULL);
		if (rc < 0)
			return rc;
		e = tbl ? l2e_get(tbl, l2i) : 0;
		if (!(reads_zero(c, e, gstart) && (e & ~(QC_OFLAG_COPIED | QC_OFLAG_ZERO)) == 0)) {
			if (q->version == 2 && c->backing && gstart < c->backing->size) {
				rc = zero_part(c, off, n); /* no zero flag in v2 */
			} else {
				rc = qc_l2_get(q, l1i, true, &tbl, &slot);
				if (rc == 0) {
					e = l2e_get(tbl, l2i);
					l2e_set(tbl, l2i, q->version == 3 ? QC_OFLAG_ZERO : 0);
					qc_l2_mark(q, slot);
					rc = qc_free_entry(q, e);
				}
			}
			if (rc < 0)
				return rc;
		}
		off += n;
		len -= n;
	}
	return 0;
}

/* The L2 entry of the cluster at @off and how many bytes from @off (up
 * to @len) are of the same kind (unallocated, zero, host-contiguous data,
 * one compressed cluster). */
int qc_status(vsm_cow *c, uint64_t off, uint64_t len, uint64_t *pnum, uint64_t *entry)
{
	struct qcow2 *q = c->q;
	uint64_t l2n = qc_l2_entries(q), *tbl, e0 = 0, host0 = 0, done = 0;
	int kind0 = -1, rc;

	while (done < len) {
		uint64_t o = off + done, co = o & (q->cs - 1);
		uint64_t l1i = o >> (q->cluster_bits + q->l2_bits);
		uint64_t l2i = (o >> q->cluster_bits) & (l2n - 1);

		rc = qc_l2_get(q, l1i, false, &tbl, NULL);
		if (rc < 0)
			return rc;
		if (!tbl) {
			/* No L2 table: the whole range it would map is
			 * unallocated, in one step (a sparse disk costs its
			 * L1 entries, not its clusters). */
			uint64_t n = ((l2n - l2i) << q->cluster_bits) - co;

			if (n > len - done)
				n = len - done;
			if (kind0 < 0)
				kind0 = 0;
			else if (kind0 != 0)
				goto out;
			done += n;
			continue;
		}
		for (; done < len && l2i < l2n; l2i++) {
			uint64_t e = l2e_get(tbl, l2i), host = 0, n;
			int kind;

			co = (off + done) & (q->cs - 1);
			n = q->cs - co < len - done ? q->cs - co : len - done;
			if (e & QC_OFLAG_COMPRESSED) {
				kind = 3;
			} else if (is_zero_entry(q, e)) {
				kind = 1;
			} else {
				rc = std_entry(q, e, &host);
				if (rc < 0)
					return rc;
				kind = host ? 2 : 0;
			}
			if (kind0 < 0) {
				kind0 = kind;
				e0 = e;
				host0 = host;
			} else if (kind != kind0 || kind == 3 ||
				   (kind == 2 && host != host0 + ((off + done - co) -
								  (off - (off & (q->cs - 1)))))) {
				goto out;
			}
			done += n;
			if (kind0 == 3)
				goto out;
		}
	}
out:
	*pnum = done;
	*entry = e0;
	return 0;
}

int qc_make_empty(vsm_cow *c)
{
	struct qcow2 *q = c->q;
	uint64_t l1i, i, l2n = qc_l2_entries(q), *tbl;
	struct cow_slot *slot;
	int rc;

	rc = qc_content_change(q);
	if (rc < 0)
		return rc;
	q->cbuf_valid = false;
	for (l1i = 0; l1i < q->l1_size; l1i++) {
		bool any = false;

		rc = qc_l2_get(q, l1i, false, &tbl, NULL);
		if (rc < 0)
			return rc;
		if (!tbl)
			continue;
		for (i = 0; i < l2n && !any; i++)
			any = l2e_get(tbl, i) != 0;
		if (!any)
			continue;
		rc = qc_l2_get(q, l1i, true, &tbl, &slot);
		if (rc < 0)
			return rc;
		for (i = 0; i < l2n; i++) {
			uint64_t e = l2e_get(tbl, i);

			if (!e)
				continue;
			l2e_set(tbl, i, 0);
			rc = qc_free_entry(q, e);
			if (rc < 0)
				return rc;
		}
		qc_l2_mark(q, slot);
	}
	return qc_flush_all(q);
}
