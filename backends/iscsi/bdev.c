/*
 * iSCSI backend: block I/O on an open LUN (or a view of one) and the v2
 * device table over it, native asynchronous submission included.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "isc-int.h"

static const struct vsm_bdev_io_ops isc_io_ops;

/* ------------------------------------------------------------- block I/O */

int isc_bdev_new(isc_dev **out, vsm_backend_ds *ds, const lun_info *li,
		 uint64_t base, unsigned int flags)
{
	isc_dev *b = calloc(1, sizeof(*b));

	if (!b)
		return isc_oom();
	b->io.ops = &isc_io_ops;
	b->ds = ds;
	b->li = *li;
	b->base = base;
	b->size = li->nblocks * li->bs - base;
	b->readonly = (flags & VSM_BDEV_RDONLY) != 0;
	pthread_mutex_init(&b->rmw, NULL);
	*out = b;
	return 0;
}

void isc_bdev_close(isc_dev *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->rmw);
	free(b);
}

/* Aligned transfer of whole blocks at LUN byte offset @loff, split into
 * commands of at most max_xfer bytes that are all in flight at once. */
int isc_xfer(isc_dev *b, bool write, uint8_t *buf, size_t len, uint64_t loff)
{
	size_t chunk = b->li.max_xfer, n = (len + chunk - 1) / chunk, i;
	isc_cmd one_c, *c = n == 1 ? &one_c : calloc(n, sizeof(*c));
	isc_result one_r, *r = n == 1 ? &one_r : calloc(n, sizeof(*r));
	int rc;

	if (!c || !r) {
		if (c != &one_c)
			free(c);
		if (r != &one_r)
			free(r);
		return isc_oom();
	}
	memset(c, 0, n * sizeof(*c));
	for (i = 0; i < n; i++) {
		size_t l = len - i * chunk < chunk ? len - i * chunk : chunk;

		c[i].kind = write ? ISC_CMD_WRITE : ISC_CMD_READ;
		c[i].lun = b->li.lun;
		c[i].lba = (loff + i * chunk) / b->li.bs;
		c[i].nblocks = (uint32_t)(l / b->li.bs);
		c[i].block_size = b->li.bs;
		c[i].buf = buf + i * chunk;
		c[i].len = l;
		c[i].retry_conflict = true;
	}
	rc = isc_sess_run_many(b->ds->s, c, r, n);
	for (i = 0; i < n && rc == 0; i++)
		if (r[i].status != SCSI_STATUS_GOOD)
			rc = isc_result_error(b->ds->s, &r[i], b->li.lun,
					      write ? "WRITE(16) to" : "READ(16) from");
	if (c != &one_c)
		free(c);
	if (r != &one_r)
		free(r);
	return rc;
}

static int isc_bdev_read(isc_dev *b, void *buf, size_t len, uint64_t off)
{
	uint32_t bs = b->li.bs;
	uint64_t start, end, loff;
	uint8_t *bounce;
	size_t in;
	int rc;

	if (len == 0)
		return 0;
	if (off >= b->size) {
		memset(buf, 0, len);
		return 0;
	}
	in = off + len > b->size ? (size_t)(b->size - off) : len;
	if (in < len)
		memset((uint8_t *)buf + in, 0, len - in);
	loff = b->base + off;
	if (loff % bs == 0 && in % bs == 0)
		return isc_xfer(b, false, buf, in, loff);
	start = loff / bs * bs;
	end = (loff + in + bs - 1) / bs * bs;
	if (!(bounce = aligned_alloc(bs, (size_t)(end - start))))
		return isc_oom();
	rc = isc_xfer(b, false, bounce, (size_t)(end - start), start);
	if (rc == 0)
		memcpy(buf, bounce + (loff - start), in);
	free(bounce);
	return rc;
}

static int check_write(isc_dev *b, size_t len, uint64_t off)
{
	if (b->readonly)
		return vsm_error_set(VSM_EPERM, "LUN %d of %s is open read-only", b->li.lun,
				     isc_sess_label(b->ds->s));
	if (off > b->size || len > b->size - off)
		return vsm_error_set(VSM_ENOSPC, "LUN %d of %s: write of %zu bytes at %llu "
				     "passes its end (%llu bytes)", b->li.lun,
				     isc_sess_label(b->ds->s), len, (unsigned long long)off,
				     (unsigned long long)b->size);
	return 0;
}

/* Partial blocks are read, patched and written back whole, one such
 * update at a time per device so two of them sharing a block cannot undo
 * each other. Writes of whole blocks never share a block with another
 * non-overlapping write, so they go straight out. */
static int isc_bdev_write(isc_dev *b, const void *buf, size_t len, uint64_t off)
{
	uint32_t bs = b->li.bs;
	uint64_t start, end, loff = b->base + off;
	uint8_t *bounce;
	int rc;

	if ((rc = check_write(b, len, off)) < 0 || len == 0)
		return rc;
	if (loff % bs == 0 && len % bs == 0)
		return isc_xfer(b, true, (uint8_t *)buf, len, loff);
	start = loff / bs * bs;
	end = (loff + len + bs - 1) / bs * bs;
	if (!(bounce = aligned_alloc(bs, (size_t)(end - start))))
		return isc_oom();
	pthread_mutex_lock(&b->rmw);
	rc = isc_xfer(b, false, bounce, bs, start);
	if (rc == 0 && end - start > bs)
		rc = isc_xfer(b, false, bounce + (end - start - bs), bs, end - bs);
	if (rc == 0) {
		memcpy(bounce + (loff - start), buf, len);
		rc = isc_xfer(b, true, bounce, (size_t)(end - start), start);
	}
	pthread_mutex_unlock(&b->rmw);
	free(bounce);
	return rc;
}

int isc_bdev_flush(isc_dev *b)
{
	isc_cmd c = { .kind = ISC_CMD_SYNC, .lun = b->li.lun, .retry_conflict = true };
	isc_result r;

	return isc_run_good(b->ds, &c, &r, "SYNCHRONIZE CACHE on");
}

static int isc_bdev_size(isc_dev *b, uint64_t *out)
{
	*out = b->size;
	return 0;
}

int isc_write_zeros(isc_dev *b, uint64_t off, uint64_t len)
{
	size_t chunk = 1024 * 1024;
	uint8_t *z = calloc(1, chunk);
	int rc = 0;

	if (!z)
		return isc_oom();
	while (len > 0 && rc == 0) {
		size_t l = len < chunk ? (size_t)len : chunk;

		rc = isc_bdev_write(b, z, l, off);
		off += l;
		len -= l;
	}
	free(z);
	return rc;
}

/* UNMAP where the LUN has it and unmapped blocks read as zeros; zeros
 * written otherwise, so the range reads as zeros either way. */
int isc_bdev_discard(isc_dev *b, uint64_t off, uint64_t len)
{
	uint32_t bs = b->li.bs;
	uint64_t loff, a, e;
	int rc;

	if ((rc = check_write(b, 0, off)) < 0)
		return rc;
	if (off + len > b->size)
		len = b->size - off;
	if (len == 0)
		return 0;
	loff = b->base + off;
	a = (loff + bs - 1) / bs * bs;
	e = (loff + len) / bs * bs;
	if (!b->li.unmap || !b->li.lbprz || e <= a)
		return isc_write_zeros(b, off, len);
	if (a > loff && (rc = isc_write_zeros(b, off, a - loff)) < 0)
		return rc;
	while (a < e) {
		uint64_t n = (e - a) / bs;
		isc_cmd c = { .kind = ISC_CMD_UNMAP, .lun = b->li.lun, .lba = a / bs,
			      .retry_conflict = true };
		isc_result r;

		if (n > 0xffffff)
			n = 0xffffff;
		c.nblocks = (uint32_t)n;
		if ((rc = isc_run_good(b->ds, &c, &r, "UNMAP on")) < 0)
			return rc;
		a += n * bs;
	}
	if (loff + len > e)
		return isc_write_zeros(b, e - b->base, loff + len - e);
	return 0;
}

int isc_caw_blocks(isc_dev *b, uint8_t *both, uint64_t lstart, size_t n_bytes)
{
	isc_cmd c = { .kind = ISC_CMD_CAW, .lun = b->li.lun, .lba = lstart / b->li.bs,
		      .nblocks = (uint32_t)(n_bytes / b->li.bs), .block_size = b->li.bs,
		      .buf = both, .len = 2 * n_bytes, .retry_conflict = true };
	isc_result r;
	int rc = isc_sess_run(b->ds->s, &c, &r);

	if (rc < 0)
		return rc;
	if (r.status == SCSI_STATUS_CHECK_CONDITION && r.sense_key == SCSI_SENSE_MISCOMPARE)
		return -VSM_EMISMATCH;
	if (r.status != SCSI_STATUS_GOOD)
		return isc_result_error(b->ds->s, &r, b->li.lun, "COMPARE AND WRITE on");
	return 0;
}

/*
 * SCSI COMPARE AND WRITE works on whole blocks. A range that covers part
 * of a block is compared and written within the enclosing blocks: read
 * them, check the caller's bytes, and COMPARE AND WRITE the whole blocks
 * against what was read; if anything in them changed meanwhile, look
 * again. That stays atomic: the target compares every byte it writes.
 */
static int isc_bdev_caw(isc_dev *b, const void *expected, const void *buf, size_t len,
			uint64_t off)
{
	uint32_t bs = b->li.bs;
	uint64_t loff = b->base + off, start, end;
	size_t span;
	uint8_t *both;
	int rc, tries;

	if ((rc = check_write(b, len, off)) < 0)
		return rc;
	if (!b->li.caw)
		return vsm_error_set(VSM_ENOTSUP, "LUN %d of %s does not support SCSI COMPARE "
				     "AND WRITE", b->li.lun, isc_sess_label(b->ds->s));
	if (len == 0)
		return 0;
	start = loff / bs * bs;
	end = (loff + len + bs - 1) / bs * bs;
	span = (size_t)(end - start);
	if (span / bs > b->li.max_cmp)
		return vsm_error_set(VSM_EINVAL, "LUN %d of %s: compare-and-write of %zu bytes "
				     "at %llu spans %zu blocks; the target allows %u",
				     b->li.lun, isc_sess_label(b->ds->s), len,
				     (unsigned long long)off, span / bs, b->li.max_cmp);
	if (!(both = aligned_alloc(bs, 2 * span)))
		return isc_oom();
	if (start == loff && span == len) {
		memcpy(both, expected, len);
		memcpy(both + len, buf, len);
		rc = isc_caw_blocks(b, both, start, span);
		free(both);
		return rc;
	}
	for (tries = 0; tries < 1000; tries++) {
		if ((rc = isc_xfer(b, false, both, span, start)) < 0)
			break;
		if (memcmp(both + (loff - start), expected, len) != 0) {
			rc = -VSM_EMISMATCH;
			break;
		}
		memcpy(both + span, both, span);
		memcpy(both + span + (loff - start), buf, len);
		rc = isc_caw_blocks(b, both, start, span);
		if (rc != -VSM_EMISMATCH)
			break;
	}
	if (tries == 1000)
		rc = vsm_error_set(VSM_EBUSY, "LUN %d of %s: blocks around compare-and-write "
				   "keep changing", b->li.lun, isc_sess_label(b->ds->s));
	free(both);
	return rc;
}

/* ------------------------------------------------------ v2 device table */

static isc_dev *dev_of(vsm_bdev_io *io)
{
	return (isc_dev *)io;
}

static void io_close(vsm_bdev_io *io)
{
	isc_bdev_close(io ? dev_of(io) : NULL);
}

static int io_read(vsm_bdev_io *io, void *buf, size_t len, uint64_t off)
{
	return isc_bdev_read(dev_of(io), buf, len, off);
}

static int io_write(vsm_bdev_io *io, const void *buf, size_t len, uint64_t off,
		    unsigned int flags)
{
	int rc = isc_bdev_write(dev_of(io), buf, len, off);

	/* Partial-block writes go through read-modify-write: FUA there is a
	 * flush after it. */
	if (rc == 0 && (flags & VSM_BDEV_WRITE_FUA))
		rc = isc_bdev_flush(dev_of(io));
	return rc;
}

static int io_flush(vsm_bdev_io *io)
{
	return isc_bdev_flush(dev_of(io));
}

static int io_size(vsm_bdev_io *io, uint64_t *out)
{
	return isc_bdev_size(dev_of(io), out);
}

static int io_caw(vsm_bdev_io *io, const void *expected, const void *buf, size_t len,
		  uint64_t off)
{
	return isc_bdev_caw(dev_of(io), expected, buf, len, off);
}

static int io_discard(vsm_bdev_io *io, uint64_t off, uint64_t len)
{
	return isc_bdev_discard(dev_of(io), off, len);
}

static int io_query(vsm_bdev_io *io, vsm_bdev_caps *out)
{
	isc_dev *b = dev_of(io);

	out->flags = VSM_BDEV_CAP_DISCARD | VSM_BDEV_CAP_NATIVE_ASYNC |
		     VSM_BDEV_CAP_FIXED_SIZE;
	if (b->li.caw)
		out->flags |= VSM_BDEV_CAP_COMPARE_AND_WRITE;
	out->logical_block_size = b->li.bs;
	out->max_transfer = b->li.max_xfer;
	out->max_compare_and_write = b->li.max_cmp * b->li.bs;
	out->max_queue_depth = 128;
	return 0;
}

/*
 * Native submission. A whole-block read or write inside the device, and
 * a flush, become SCSI commands queued on the session without waiting
 * (several per request when it exceeds the LUN's transfer limit); their
 * completions run on the session's event thread, which calls the
 * request's done when its last command ends. Anything else (partial
 * blocks, which need a read-modify-write under the device's lock, or
 * ranges past the end) runs synchronously on the submitting thread.
 */
typedef struct {
	vsm_bdev_req *req;
	isc_dev *b;
	atomic_int left;
	atomic_int failed;    /* first failure claimed */
	int rc;               /* that failure's code */
	isc_result res;       /* that failure's SCSI result, when it had one */
	bool undelivered;
} isc_sub;

/* Set @req's result from how its command(s) ended and complete it. */
static void req_finish(vsm_bdev_req *req, isc_dev *b, int rc, bool undelivered,
		       const isc_result *res)
{
	if (rc == 0) {
		req->result = 0;
	} else if (undelivered) {
		req->result = vsm_error_set(rc, "LUN %d of %s: %s", b->li.lun,
					    isc_sess_label(b->ds->s), res->error);
	} else {
		const char *what = req->op == VSM_BDEV_OP_READ ? "READ(16) from" :
				   req->op == VSM_BDEV_OP_WRITE ? "WRITE(16) to" :
				   "SYNCHRONIZE CACHE on";

		req->result = isc_result_error(b->ds->s, res, b->li.lun, what);
	}
	req->done(req);
}

static void sub_finish(isc_sub *x)
{
	vsm_bdev_req *req = x->req;
	isc_dev *b = x->b;
	isc_sub copy = *x;

	free(x);
	req_finish(req, b, copy.rc, copy.undelivered, &copy.res);
}

static void sub_cmd_done(void *arg, int rc, isc_result *res)
{
	isc_sub *x = arg;

	if ((rc < 0 || res->status != SCSI_STATUS_GOOD) && atomic_fetch_add(&x->failed, 1) == 0) {
		x->rc = rc < 0 ? rc : -VSM_EIO;
		x->undelivered = rc < 0;
		x->res = *res;
		x->res.data = NULL;
	}
	isc_result_clear(res);
	if (atomic_fetch_sub(&x->left, 1) == 1)
		sub_finish(x);
}

/* A request of one command (the common case) needs no state of its own
 * beyond the request: the device rides in its backend_private. */
static void single_cmd_done(void *arg, int rc, isc_result *res)
{
	vsm_bdev_req *req = arg;
	isc_dev *b = req->backend_private[0];
	bool bad = rc < 0 || res->status != SCSI_STATUS_GOOD;

	res->data_len = 0;
	req_finish(req, b, bad ? (rc < 0 ? rc : -VSM_EIO) : 0, rc < 0, res);
	isc_result_clear(res);
}

static void sub_sync(isc_dev *b, vsm_bdev_req *r)
{
	switch (r->op) {
	case VSM_BDEV_OP_READ:
		r->result = isc_bdev_read(b, r->buf, r->len, r->off);
		break;
	case VSM_BDEV_OP_WRITE:
		r->result = io_write(&b->io, r->buf, r->len, r->off, r->flags);
		break;
	default:
		r->result = isc_bdev_flush(b);
		break;
	}
	r->done(r);
}

static void sub_one(isc_dev *b, vsm_bdev_req *r)
{
	uint32_t bs = b->li.bs;
	uint64_t loff = b->base + r->off;
	size_t chunk = b->li.max_xfer, n, i;
	bool rw = r->op == VSM_BDEV_OP_READ || r->op == VSM_BDEV_OP_WRITE;
	isc_sub *x;

	if (rw && (r->len == 0 || loff % bs || r->len % bs || r->off > b->size ||
		   r->len > b->size - r->off || (r->op == VSM_BDEV_OP_WRITE && b->readonly))) {
		sub_sync(b, r);
		return;
	}
	n = rw ? (r->len + chunk - 1) / chunk : 1;
	if (n == 1) {
		isc_cmd c = { .lun = b->li.lun, .retry_conflict = true,
			      .kind = !rw ? ISC_CMD_SYNC :
				      r->op == VSM_BDEV_OP_READ ? ISC_CMD_READ : ISC_CMD_WRITE };

		if (rw) {
			c.lba = loff / bs;
			c.nblocks = (uint32_t)(r->len / bs);
			c.block_size = bs;
			c.buf = r->buf;
			c.len = r->len;
			c.fua = (r->flags & VSM_BDEV_WRITE_FUA) != 0;
		}
		r->backend_private[0] = b;
		/* The message of a refused start is already set on this
		 * thread, where done runs. */
		if ((r->result = isc_sess_start(b->ds->s, &c, single_cmd_done, r)) < 0)
			r->done(r);
		return;
	}
	if (!(x = calloc(1, sizeof(*x)))) {
		r->result = isc_oom();
		r->done(r);
		return;
	}
	x->req = r;
	x->b = b;
	atomic_init(&x->left, (int)n);
	atomic_init(&x->failed, 0);
	for (i = 0; i < n; i++) {
		isc_cmd c = { .lun = b->li.lun, .retry_conflict = true };
		isc_result none;

		if (rw) {
			size_t l = r->len - i * chunk < chunk ? r->len - i * chunk : chunk;

			c.kind = r->op == VSM_BDEV_OP_READ ? ISC_CMD_READ : ISC_CMD_WRITE;
			c.lba = (loff + i * chunk) / bs;
			c.nblocks = (uint32_t)(l / bs);
			c.block_size = bs;
			c.buf = (uint8_t *)r->buf + i * chunk;
			c.len = l;
			c.fua = (r->flags & VSM_BDEV_WRITE_FUA) != 0;
		} else {
			c.kind = ISC_CMD_SYNC;
		}
		if (isc_sess_start(b->ds->s, &c, sub_cmd_done, x) < 0) {
			const vsm_error *e = vsm_error_last();

			memset(&none, 0, sizeof(none));
			snprintf(none.error, sizeof(none.error), "%.190s",
				 e && e->message ? e->message : "cannot queue");
			none.status = SCSI_STATUS_ERROR;
			sub_cmd_done(x, -VSM_EIO, &none);
		}
	}
}

static int io_submit(vsm_bdev_io *io, vsm_bdev_req *const *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sub_one(dev_of(io), reqs[i]);
	return 0;
}

static const struct vsm_bdev_io_ops isc_io_ops = VSM_BDEV_IO_OPS_INIT(
	.close = io_close,
	.read = io_read,
	.write = io_write,
	.flush = io_flush,
	.get_size = io_size,
	.query = io_query,
	.compare_and_write = io_caw,
	.discard = io_discard,
	.submit = io_submit,
);
