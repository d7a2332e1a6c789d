/*
 * iSCSI backend: the vtable. A datastore is one target; devices are its
 * LUNs. The metadata LUN starts with a claim table (1 MiB, one block per
 * LUN number) that says which LUN belongs to which device, so every host
 * agrees; the core's metadata layout follows it, and the core only sees
 * the LUN from that offset on. doc/iscsi.md describes the bytes.
 *
 * Pool mode hands out the target's existing LUNs; managed mode (a local
 * tgtd) makes a file-backed LUN per device with tgtadm.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "iscsi-backend.h"
#include "isc-int.h"
#include "../common/diskxml.h"

#define CLAIM_AREA (1024 * 1024)  /* claim table; the core's view starts here */
#define TABLE_MAGIC "VSMISCT1"
#define ENTRY_MAGIC "VSMISCE1"
#define CLAIM_VERSION 1
#define ENTRY_BYTES 512            /* used bytes of each (block-sized) entry */
#define ENTRY_CRC_OFF 508
#define ENTRY_NAME_OFF 56
#define ENTRY_NAME_MAX 136
#define ENTRY_HOST_OFF 192
#define ENTRY_HOST_MAX 224
#define ENTRY_FLAG_MANAGED 1u
#define META_FILE "vsm-meta.img"
#define MAX_XFER_DEFAULT (1024 * 1024)

typedef struct {
	int lun;
	int type;          /* SCSI peripheral device type; 0 = disk */
	uint32_t bs;
	uint64_t nblocks;
	uint32_t max_xfer; /* bytes per command */
	uint32_t max_cmp;  /* blocks per COMPARE AND WRITE; 0 = none */
	bool caw;          /* COMPARE AND WRITE works */
	bool caw_probed;
	bool unmap;
	bool lbprz;        /* unmapped blocks read as zeros */
} lun_info;

struct vsm_backend_ds {
	char *name;
	isc_uri u;
	isc_sess *s;
	bool caw_scheme;      /* opened as iscsi-caw://: the metadata LUN must have CAW */
	pthread_mutex_t lock; /* luns, and claim-table updates from this process */
	lun_info *luns;
	size_t n_luns;
	int meta_lun;         /* -1 until meta_open */
};

/* An open LUN (or a view of one): the v2 device handle comes first. */
typedef struct isc_dev {
	vsm_bdev_io io;
	vsm_backend_ds *ds;
	lun_info li;
	uint64_t base;   /* byte offset of the view in the LUN */
	uint64_t size;   /* bytes in the view */
	bool readonly;
	pthread_mutex_t rmw; /* serializes read-modify-write of partial blocks */
} isc_dev;

static const struct vsm_bdev_io_ops isc_io_ops;

/* ----------------------------------------------------------- helpers */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t crc(const uint8_t *p, size_t n)
{
	return (uint32_t)crc32(0L, p, (uInt)n);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static int oom(void)
{
	return vsm_error_set(VSM_ENOMEM, "out of memory");
}

/* Put "@prefix: " before the thread's current error message. */
static int prefix_error(int rc, const char *prefix)
{
	const vsm_error *e = vsm_error_last();
	char msg[768];

	snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : vsm_strerror(rc));
	return vsm_error_set(rc, "%s: %s", prefix, msg);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static lun_info *find_lun(vsm_backend_ds *ds, int lun)
{
	size_t i;

	for (i = 0; i < ds->n_luns; i++)
		if (ds->luns[i].lun == lun)
			return &ds->luns[i];
	return NULL;
}

/* Run a command that must end GOOD; otherwise set the error. */
static int run_good(vsm_backend_ds *ds, const isc_cmd *c, isc_result *res, const char *what)
{
	int rc = isc_sess_run(ds->s, c, res);

	if (rc < 0)
		return rc;
	if (res->status != SCSI_STATUS_GOOD)
		return isc_result_error(ds->s, res, c->lun, what);
	return 0;
}

/* ------------------------------------------------------------- LUNs */

static int probe_lun(vsm_backend_ds *ds, lun_info *li)
{
	isc_cmd c = { .lun = li->lun };
	isc_result r;
	int rc;

	c.kind = ISC_CMD_INQUIRY;
	c.alloc_len = 96;
	if ((rc = run_good(ds, &c, &r, "INQUIRY")) < 0)
		return rc;
	if (r.data_len < 1 || (r.data[0] >> 5) != 0) {
		/* not connected: skip it */
		li->type = -1;
		isc_result_clear(&r);
		return 0;
	}
	li->type = r.data[0] & 0x1f;
	isc_result_clear(&r);
	if (li->type != 0)
		return 0;
	c.kind = ISC_CMD_RC16;
	if ((rc = run_good(ds, &c, &r, "READ CAPACITY(16)")) < 0)
		return rc;
	if (r.data_len < 12) {
		isc_result_clear(&r);
		return vsm_error_set(VSM_EIO, "LUN %d of %s: short READ CAPACITY(16) answer",
				     li->lun, isc_sess_label(ds->s));
	}
	li->nblocks = ((uint64_t)be32(r.data) << 32 | be32(r.data + 4)) + 1;
	li->bs = be32(r.data + 8);
	li->lbprz = r.data_len > 14 && (r.data[14] & 0x40);
	isc_result_clear(&r);
	if (li->bs != 512 && li->bs != 4096)
		return vsm_error_set(VSM_ENOTSUP, "LUN %d of %s has %u-byte blocks; libvsm "
				     "handles 512 and 4096", li->lun, isc_sess_label(ds->s), li->bs);
	li->max_xfer = MAX_XFER_DEFAULT;
	/* Block limits (optional page): transfer and compare-and-write sizes. */
	c.kind = ISC_CMD_INQUIRY;
	c.evpd = 1;
	c.page = 0xb0;
	c.alloc_len = 64;
	if (isc_sess_run(ds->s, &c, &r) == 0 && r.status == SCSI_STATUS_GOOD && r.data_len >= 16) {
		uint32_t mx = be32(r.data + 8);

		li->max_cmp = r.data[5];
		if (mx && (uint64_t)mx * li->bs < li->max_xfer)
			li->max_xfer = mx * li->bs;
	}
	isc_result_clear(&r);
	/* Logical block provisioning: is UNMAP there. */
	c.page = 0xb2;
	if (isc_sess_run(ds->s, &c, &r) == 0 && r.status == SCSI_STATUS_GOOD && r.data_len >= 6)
		li->unmap = (r.data[5] & 0x80) != 0;
	isc_result_clear(&r);
	return 0;
}

/* REPORT LUNS and probe each; replaces ds->luns. Caller holds ds->lock. */
static int scan_luns(vsm_backend_ds *ds)
{
	isc_cmd c = { .kind = ISC_CMD_REPORT_LUNS, .alloc_len = 16384, .lun = 0 };
	isc_result r;
	lun_info *luns = NULL;
	size_t n = 0, i, count;
	int rc;

	if ((rc = run_good(ds, &c, &r, "REPORT LUNS")) < 0)
		return rc;
	count = r.data_len >= 8 ? be32(r.data) / 8 : 0;
	if (8 + count * 8 > r.data_len)
		count = (r.data_len - 8) / 8;
	luns = calloc(count ? count : 1, sizeof(*luns));
	if (!luns) {
		isc_result_clear(&r);
		return oom();
	}
	for (i = 0; i < count; i++) {
		const uint8_t *e = r.data + 8 + 8 * i;
		int method = e[0] >> 6;
		lun_info *old;

		if (method != 0 && method != 1)
			continue; /* addressing we do not issue */
		luns[n].lun = method == 0 ? e[1] : ((e[0] & 0x3f) << 8 | e[1]);
		/* Geometry of a LUN we know does not change under a claim;
		 * probing again costs four commands per LUN. */
		if ((old = find_lun(ds, luns[n].lun)) && old->type == 0 && old->nblocks) {
			luns[n] = *old;
			n++;
			continue;
		}
		if ((rc = probe_lun(ds, &luns[n])) < 0) {
			free(luns);
			isc_result_clear(&r);
			return rc;
		}
		n++;
	}
	isc_result_clear(&r);
	free(ds->luns);
	ds->luns = luns;
	ds->n_luns = n;
	return 0;
}

/* Does COMPARE AND WRITE work on this LUN? A target that answers REPORT
 * SUPPORTED OPERATION CODES with "not supported" is believed; "supported"
 * is not (tgt lists the opcode and then rejects the command), so that
 * gets one harmless trial: compare a block with itself, write it back. */
static int probe_caw(vsm_backend_ds *ds, lun_info *li, uint64_t probe_lba)
{
	isc_cmd c = { .kind = ISC_CMD_RSOC, .lun = li->lun, .page = 0x89, .alloc_len = 64 };
	isc_result r;
	uint8_t *buf;
	int rc;

	if (li->caw_probed)
		return 0;
	li->caw_probed = true;
	li->caw = false;
	if (isc_sess_run(ds->s, &c, &r) == 0 && r.status == SCSI_STATUS_GOOD && r.data_len >= 2 &&
	    (r.data[1] & 7) == 1) {
		isc_result_clear(&r);
		return 0;
	}
	isc_result_clear(&r);
	if (!(buf = malloc(2 * (size_t)li->bs)))
		return oom();
	memset(&c, 0, sizeof(c));
	c.kind = ISC_CMD_READ;
	c.lun = li->lun;
	c.lba = probe_lba;
	c.nblocks = 1;
	c.block_size = li->bs;
	c.buf = buf;
	c.len = li->bs;
	c.retry_conflict = true;
	if ((rc = run_good(ds, &c, &r, "READ(16)")) < 0) {
		free(buf);
		return rc;
	}
	memcpy(buf + li->bs, buf, li->bs);
	c.kind = ISC_CMD_CAW;
	c.len = 2 * (size_t)li->bs;
	rc = isc_sess_run(ds->s, &c, &r);
	free(buf);
	if (rc < 0)
		return rc;
	/* A miscompare means someone wrote in between: still supported. */
	li->caw = r.status == SCSI_STATUS_GOOD ||
		  (r.status == SCSI_STATUS_CHECK_CONDITION && r.sense_key == SCSI_SENSE_MISCOMPARE);
	if (li->caw && li->max_cmp == 0)
		li->max_cmp = 1;
	return 0;
}

/* ------------------------------------------------------------- datastore */

static int isc_open(vsm_backend_ds **out, const char *uri, const vsm_backend_open_args *args)
{
	bool caw_scheme = !strncmp(uri, "iscsi-caw:", 10);
	const char *name = args && args->name ? args->name : uri;
	vsm_backend_ds *ds = calloc(1, sizeof(*ds));
	int rc;

	if (!ds)
		return oom();
	ds->meta_lun = -1;
	ds->caw_scheme = caw_scheme;
	pthread_mutex_init(&ds->lock, NULL);
	if (!(ds->name = strdup(name))) {
		rc = oom();
		goto fail;
	}
	if ((rc = isc_uri_parse(&ds->u, uri, name)) < 0)
		goto fail;
	if (ds->u.mode == ISC_MODE_MANAGED) {
		struct stat st;

		if (stat(ds->u.dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			rc = vsm_error_set(VSM_ENOTFOUND, "datastore '%s': managed iSCSI backing "
					   "directory '%s' does not exist", name, ds->u.dir);
			goto fail;
		}
	}
	if ((rc = isc_sess_open(&ds->s, &ds->u, name, args ? args->notify : NULL,
				args ? args->notify_cookie : NULL)) < 0)
		goto fail;
	if ((rc = scan_luns(ds)) < 0) {
		char pre[200];

		snprintf(pre, sizeof(pre), "datastore '%s'", name);
		prefix_error(rc, pre);
		goto fail;
	}
	*out = ds;
	return 0;
fail:
	isc_sess_close(ds->s);
	isc_uri_clear(&ds->u);
	pthread_mutex_destroy(&ds->lock);
	free(ds->luns);
	free(ds->name);
	free(ds);
	return rc;
}

static void isc_close(vsm_backend_ds *ds)
{
	if (!ds)
		return;
	isc_sess_close(ds->s);
	isc_uri_clear(&ds->u);
	pthread_mutex_destroy(&ds->lock);
	free(ds->luns);
	free(ds->name);
	free(ds);
}

/* ------------------------------------------------------------- block I/O */

static int bdev_new(isc_dev **out, vsm_backend_ds *ds, const lun_info *li,
		    uint64_t base, unsigned int flags)
{
	isc_dev *b = calloc(1, sizeof(*b));

	if (!b)
		return oom();
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

static void isc_bdev_close(isc_dev *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->rmw);
	free(b);
}

/* Aligned transfer of whole blocks at LUN byte offset @loff, split into
 * commands of at most max_xfer bytes that are all in flight at once. */
static int xfer(isc_dev *b, bool write, uint8_t *buf, size_t len, uint64_t loff)
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
		return oom();
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
		return xfer(b, false, buf, in, loff);
	start = loff / bs * bs;
	end = (loff + in + bs - 1) / bs * bs;
	if (!(bounce = aligned_alloc(bs, (size_t)(end - start))))
		return oom();
	rc = xfer(b, false, bounce, (size_t)(end - start), start);
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
		return xfer(b, true, (uint8_t *)buf, len, loff);
	start = loff / bs * bs;
	end = (loff + len + bs - 1) / bs * bs;
	if (!(bounce = aligned_alloc(bs, (size_t)(end - start))))
		return oom();
	pthread_mutex_lock(&b->rmw);
	rc = xfer(b, false, bounce, bs, start);
	if (rc == 0 && end - start > bs)
		rc = xfer(b, false, bounce + (end - start - bs), bs, end - bs);
	if (rc == 0) {
		memcpy(bounce + (loff - start), buf, len);
		rc = xfer(b, true, bounce, (size_t)(end - start), start);
	}
	pthread_mutex_unlock(&b->rmw);
	free(bounce);
	return rc;
}

static int isc_bdev_flush(isc_dev *b)
{
	isc_cmd c = { .kind = ISC_CMD_SYNC, .lun = b->li.lun, .retry_conflict = true };
	isc_result r;

	return run_good(b->ds, &c, &r, "SYNCHRONIZE CACHE on");
}

static int isc_bdev_size(isc_dev *b, uint64_t *out)
{
	*out = b->size;
	return 0;
}

static int write_zeros(isc_dev *b, uint64_t off, uint64_t len)
{
	size_t chunk = 1024 * 1024;
	uint8_t *z = calloc(1, chunk);
	int rc = 0;

	if (!z)
		return oom();
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
static int isc_bdev_discard(isc_dev *b, uint64_t off, uint64_t len)
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
		return write_zeros(b, off, len);
	if (a > loff && (rc = write_zeros(b, off, a - loff)) < 0)
		return rc;
	while (a < e) {
		uint64_t n = (e - a) / bs;
		isc_cmd c = { .kind = ISC_CMD_UNMAP, .lun = b->li.lun, .lba = a / bs,
			      .retry_conflict = true };
		isc_result r;

		if (n > 0xffffff)
			n = 0xffffff;
		c.nblocks = (uint32_t)n;
		if ((rc = run_good(b->ds, &c, &r, "UNMAP on")) < 0)
			return rc;
		a += n * bs;
	}
	if (loff + len > e)
		return write_zeros(b, e - b->base, loff + len - e);
	return 0;
}

static int caw_blocks(isc_dev *b, uint8_t *both, uint64_t lstart, size_t n_bytes)
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
		return oom();
	if (start == loff && span == len) {
		memcpy(both, expected, len);
		memcpy(both + len, buf, len);
		rc = caw_blocks(b, both, start, span);
		free(both);
		return rc;
	}
	for (tries = 0; tries < 1000; tries++) {
		if ((rc = xfer(b, false, both, span, start)) < 0)
			break;
		if (memcmp(both + (loff - start), expected, len) != 0) {
			rc = -VSM_EMISMATCH;
			break;
		}
		memcpy(both + span, both, span);
		memcpy(both + span + (loff - start), buf, len);
		rc = caw_blocks(b, both, start, span);
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
		r->result = oom();
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

/* ------------------------------------------------------------- claim table */

typedef struct {
	bool claimed;
	uint32_t lun, flags;
	uint64_t size;
	uint64_t lun_bytes; /* read back only; entry_encode takes it as an argument */
	int64_t when;       /* claim time, read back only; entry_encode writes now */
	char name[ENTRY_NAME_MAX];
} claim;

static uint32_t max_entries(const isc_dev *meta)
{
	return CLAIM_AREA / meta->li.bs - 1;
}

/* A raw view of the claim area (base 0) of the metadata LUN. */
static int claim_view(vsm_backend_ds *ds, isc_dev **out)
{
	lun_info *li = ds->meta_lun >= 0 ? find_lun(ds, ds->meta_lun) : NULL;

	if (!li)
		return vsm_error_set(VSM_ESTATE, "datastore '%s': metadata LUN is not open",
				     ds->name);
	return bdev_new(out, ds, li, 0, 0);
}

static int entry_decode(const uint8_t *e, uint32_t lun, claim *c, const char *ds_name)
{
	memset(c, 0, sizeof(*c));
	if (all_zero(e, ENTRY_BYTES))
		return 0;
	if (memcmp(e, ENTRY_MAGIC, 8) || get32(e + ENTRY_CRC_OFF) != crc(e, ENTRY_CRC_OFF) ||
	    get32(e + 8) != CLAIM_VERSION || get32(e + 16) != lun ||
	    memchr(e + ENTRY_NAME_OFF, 0, ENTRY_NAME_MAX) == NULL)
		return vsm_error_set(VSM_ECORRUPT, "datastore '%s': claim of LUN %u in the "
				     "metadata LUN's claim table is damaged", ds_name, lun);
	c->claimed = get32(e + 12) == 1;
	c->lun = lun;
	c->flags = get32(e + 20);
	c->size = get64(e + 24);
	c->lun_bytes = get64(e + 32);
	c->when = (int64_t)get64(e + 40);
	memcpy(c->name, e + ENTRY_NAME_OFF, ENTRY_NAME_MAX);
	return 0;
}

static void entry_encode(uint8_t *e, const claim *c, const char *initiator, uint64_t lun_bytes,
			 uint32_t bs)
{
	memset(e, 0, ENTRY_BYTES);
	if (!c->claimed)
		return;
	memcpy(e, ENTRY_MAGIC, 8);
	put32(e + 8, CLAIM_VERSION);
	put32(e + 12, 1);
	put32(e + 16, c->lun);
	put32(e + 20, c->flags);
	put64(e + 24, c->size);
	put64(e + 32, lun_bytes);
	put64(e + 40, (uint64_t)time(NULL));
	put32(e + 48, bs);
	snprintf((char *)e + ENTRY_NAME_OFF, ENTRY_NAME_MAX, "%s", c->name);
	snprintf((char *)e + ENTRY_HOST_OFF, ENTRY_HOST_MAX, "%s", initiator);
	put32(e + ENTRY_CRC_OFF, crc(e, ENTRY_CRC_OFF));
}

static int header_check(vsm_backend_ds *ds, const uint8_t *h, uint32_t bs, bool *present)
{
	*present = false;
	if (all_zero(h, ENTRY_BYTES))
		return 0;
	if (memcmp(h, TABLE_MAGIC, 8) || get32(h + ENTRY_CRC_OFF) != crc(h, ENTRY_CRC_OFF))
		return vsm_error_set(VSM_ECORRUPT, "datastore '%s': LUN %d does not start with "
				     "a libvsm claim table (damaged, or not a libvsm metadata "
				     "LUN); refusing to use it", ds->name, ds->meta_lun);
	if (get32(h + 8) != CLAIM_VERSION)
		return vsm_error_set(VSM_EVERSION, "datastore '%s': claim table version %u is not "
				     "supported (this library knows %d)", ds->name, get32(h + 8),
				     CLAIM_VERSION);
	if (get32(h + 12) != bs)
		return vsm_error_set(VSM_ECORRUPT, "datastore '%s': claim table was written for "
				     "%u-byte blocks, the LUN now has %u", ds->name,
				     get32(h + 12), bs);
	*present = true;
	return 0;
}

/* Read the whole claim table. @table gets CLAIM_AREA bytes. */
static int table_read(vsm_backend_ds *ds, isc_dev *v, uint8_t **table)
{
	bool present;
	int rc;

	if (!(*table = aligned_alloc(v->li.bs, CLAIM_AREA)))
		return oom();
	if ((rc = xfer(v, false, *table, CLAIM_AREA, 0)) < 0 ||
	    (rc = header_check(ds, *table, v->li.bs, &present)) < 0) {
		free(*table);
		*table = NULL;
	}
	return rc;
}

static int with_table(vsm_backend_ds *ds, isc_dev **v, uint8_t **table)
{
	int rc;

	*v = NULL;
	*table = NULL;
	if ((rc = claim_view(ds, v)) < 0)
		return rc;
	if ((rc = table_read(ds, *v, table)) < 0) {
		isc_bdev_close(*v);
		*v = NULL;
	}
	return rc;
}

static int table_find_name(vsm_backend_ds *ds, isc_dev *v, const uint8_t *table,
			   const char *name, claim *out)
{
	uint32_t i, n = max_entries(v);
	int rc;

	for (i = 0; i < n; i++) {
		const uint8_t *e = table + (size_t)(i + 1) * v->li.bs;
		claim c;

		if (all_zero(e, ENTRY_BYTES))
			continue;
		if ((rc = entry_decode(e, i, &c, ds->name)) < 0)
			return rc;
		if (c.claimed && !strcmp(c.name, name)) {
			*out = c;
			return 1;
		}
	}
	return 0;
}

/*
 * Replace the entry of @lun atomically across hosts: it must still hold
 * @old (block-sized). With COMPARE AND WRITE the target checks that;
 * without it the metadata LUN is reserved (SPC-2 RESERVE) around the
 * read-check-write, and every host retries the commands a reservation
 * turns away. -VSM_EMISMATCH when the entry changed under us.
 */
static int entry_replace(vsm_backend_ds *ds, isc_dev *v, uint32_t lun,
			 const uint8_t *old, const claim *now_c, uint64_t lun_bytes)
{
	uint32_t bs = v->li.bs;
	uint64_t off = (uint64_t)(lun + 1) * bs;
	uint8_t *blk = aligned_alloc(bs, 2 * (size_t)bs);
	lun_info *mli = find_lun(ds, ds->meta_lun);
	isc_cmd c = { .lun = v->li.lun };
	isc_result r;
	bool reserved = false, present;
	int rc;

	if (!blk)
		return oom();
	memset(blk, 0, 2 * (size_t)bs);
	memcpy(blk, old, bs);
	memcpy(blk + bs, old, bs);
	entry_encode(blk + bs, now_c, ds->u.initiator, lun_bytes, bs);
	if (mli && (rc = probe_caw(ds, mli, 0)) < 0)
		goto out;
	if (!mli || !mli->caw) {
		c.kind = ISC_CMD_RESERVE6;
		c.retry_conflict = true;
		if ((rc = run_good(ds, &c, &r, "RESERVE(6) of")) < 0)
			goto out;
		reserved = true;
	}
	/* The table header goes first, once. */
	if ((rc = xfer(v, false, blk, bs, 0)) < 0)
		goto out;
	if ((rc = header_check(ds, blk, bs, &present)) < 0)
		goto out;
	if (!present) {
		memset(blk, 0, bs);
		memcpy(blk, TABLE_MAGIC, 8);
		put32(blk + 8, CLAIM_VERSION);
		put32(blk + 12, bs);
		put32(blk + 16, CLAIM_AREA);
		put32(blk + ENTRY_CRC_OFF, crc(blk, ENTRY_CRC_OFF));
		if ((rc = xfer(v, true, blk, bs, 0)) < 0)
			goto out;
	}
	memcpy(blk, old, bs);
	if (reserved) {
		uint8_t *cur = aligned_alloc(bs, bs);

		if (!cur) {
			rc = oom();
			goto out;
		}
		rc = xfer(v, false, cur, bs, off);
		if (rc == 0 && memcmp(cur, old, bs) != 0)
			rc = -VSM_EMISMATCH;
		free(cur);
		if (rc == 0)
			rc = xfer(v, true, blk + bs, bs, off);
	} else {
		rc = caw_blocks(v, blk, off, bs);
	}
	if (rc == 0)
		rc = isc_bdev_flush(v);
out:
	if (reserved) {
		isc_result rr;

		c.kind = ISC_CMD_RELEASE6;
		c.retry_conflict = false;
		if (isc_sess_run(ds->s, &c, &rr) == 0 && rr.status != SCSI_STATUS_GOOD && rc == 0)
			rc = isc_result_error(ds->s, &rr, c.lun, "RELEASE(6) of");
	}
	free(blk);
	return rc;
}

/* ------------------------------------------------------------- metadata */

static bool is_data_lun(const lun_info *li)
{
	return li->type == 0 && li->nblocks > 0;
}

static int managed_add_lun(vsm_backend_ds *ds, int lun, const char *path)
{
	char tid[16], ln[16];
	const char *argv[] = { "--mode", "logicalunit", "--op", "new", "--tid", tid, "--lun", ln,
			       "--backing-store", path, NULL };

	snprintf(tid, sizeof(tid), "%d", ds->u.tid);
	snprintf(ln, sizeof(ln), "%d", lun);
	return isc_tgtadm(&ds->u, argv);
}

static int managed_del_lun(vsm_backend_ds *ds, int lun)
{
	char tid[16], ln[16];
	const char *argv[] = { "--mode", "logicalunit", "--op", "delete", "--tid", tid, "--lun",
			       ln, NULL };

	snprintf(tid, sizeof(tid), "%d", ds->u.tid);
	snprintf(ln, sizeof(ln), "%d", lun);
	return isc_tgtadm(&ds->u, argv);
}

/* Lowest LUN number the target does not have and no claim names. */
static int lowest_free_lun(vsm_backend_ds *ds, const uint8_t *table, uint32_t bs, uint32_t max)
{
	uint32_t n;

	for (n = 1; n < max; n++) {
		if (find_lun(ds, (int)n))
			continue;
		if (table && !all_zero(table + (size_t)(n + 1) * bs, ENTRY_BYTES))
			continue;
		return (int)n;
	}
	return -1;
}

static int make_file(const char *path, uint64_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int e;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		e = errno;
		close(fd);
		unlink(path);
		return -e;
	}
	close(fd);
	return 0;
}

static int managed_make_meta(vsm_backend_ds *ds, uint64_t min_size)
{
	char *path = NULL;
	int lun = ds->u.meta_lun >= 0 ? ds->u.meta_lun : lowest_free_lun(ds, NULL, 512, 2048);
	uint64_t size = min_size + CLAIM_AREA;
	int rc;

	if (size < 64ull << 20)
		size = 64ull << 20;
	if (asprintf(&path, "%s/%s", ds->u.dir, META_FILE) < 0)
		return oom();
	if ((rc = make_file(path, size)) < 0) {
		rc = vsm_error_set(rc == -EEXIST ? VSM_EEXISTS : VSM_EIO, "datastore '%s': cannot "
				   "create metadata file '%s': %s", ds->name, path, strerror(-rc));
		free(path);
		return rc;
	}
	if ((rc = managed_add_lun(ds, lun, path)) < 0 || (rc = scan_luns(ds)) < 0) {
		unlink(path);
		free(path);
		return rc;
	}
	free(path);
	return 0;
}

/*
 * tgtd forgets its LUNs when it restarts. In managed mode the backing
 * files and the claim table say what was exported: put the metadata LUN
 * back when the target has no disk LUN at all (as the lowest LUN, or
 * meta-lun=), and, once the claim table is readable, every managed
 * device whose LUN is missing. Caller holds ds->lock.
 */
static int managed_restore_meta(vsm_backend_ds *ds)
{
	char *path = NULL;
	struct stat st;
	size_t i;
	int rc = 0;

	for (i = 0; i < ds->n_luns; i++)
		if (is_data_lun(&ds->luns[i]))
			return 0;
	if (asprintf(&path, "%s/%s", ds->u.dir, META_FILE) < 0)
		return oom();
	if (stat(path, &st) == 0 &&
	    (rc = managed_add_lun(ds, ds->u.meta_lun >= 0 ? ds->u.meta_lun : 1, path)) == 0)
		rc = scan_luns(ds);
	free(path);
	return rc;
}

static int managed_restore_devices(vsm_backend_ds *ds)
{
	isc_dev *v = NULL;
	uint8_t *table = NULL;
	uint32_t n;
	bool added = false;
	int rc;

	if ((rc = with_table(ds, &v, &table)) < 0)
		return rc;
	for (n = 0; n < max_entries(v) && rc == 0; n++) {
		const uint8_t *e = table + (size_t)(n + 1) * v->li.bs;
		char *path = NULL;
		struct stat st;
		claim c;

		if (all_zero(e, ENTRY_BYTES) || find_lun(ds, (int)n))
			continue;
		if ((rc = entry_decode(e, n, &c, ds->name)) < 0)
			break;
		if (!c.claimed || !(c.flags & ENTRY_FLAG_MANAGED))
			continue;
		if (asprintf(&path, "%s/%s", ds->u.dir, c.name) < 0)
			rc = oom();
		else if (stat(path, &st) == 0 && (rc = managed_add_lun(ds, (int)n, path)) == 0)
			added = true;
		free(path);
	}
	if (rc == 0 && added)
		rc = scan_luns(ds);
	isc_bdev_close(v);
	free(table);
	return rc;
}

static int isc_meta_open(vsm_bdev_io **out, vsm_backend_ds *ds, uint64_t min_size,
			 unsigned int flags)
{
	isc_dev *v = NULL;
	lun_info *li = NULL;
	uint8_t *hdr = NULL;
	bool present;
	size_t i;
	int rc;

	pthread_mutex_lock(&ds->lock);
	if (ds->u.mode == ISC_MODE_MANAGED && (rc = managed_restore_meta(ds)) < 0)
		goto out;
	if (ds->u.meta_lun >= 0) {
		li = find_lun(ds, ds->u.meta_lun);
	} else {
		for (i = 0; i < ds->n_luns; i++)
			if (is_data_lun(&ds->luns[i]) && (!li || ds->luns[i].lun < li->lun))
				li = &ds->luns[i];
	}
	if (!li && ds->u.mode == ISC_MODE_MANAGED && (flags & VSM_BDEV_CREATE)) {
		if ((rc = managed_make_meta(ds, min_size)) < 0)
			goto out;
		for (i = 0; i < ds->n_luns; i++)
			if (is_data_lun(&ds->luns[i]) && (!li || ds->luns[i].lun < li->lun))
				li = &ds->luns[i];
	}
	if (!li) {
		rc = ds->u.meta_lun >= 0 ?
		     vsm_error_set(VSM_ENOTFOUND, "datastore '%s': %s has no LUN %d (meta-lun)",
				   ds->name, isc_sess_label(ds->s), ds->u.meta_lun) :
		     vsm_error_set(VSM_ENOTFOUND, "datastore '%s': %s has no disk LUN to keep "
				   "metadata on", ds->name, isc_sess_label(ds->s));
		goto out;
	}
	if (!is_data_lun(li)) {
		rc = vsm_error_set(VSM_EINVAL, "datastore '%s': LUN %d of %s is not a disk "
				   "(peripheral type %d); it cannot hold metadata", ds->name,
				   li->lun, isc_sess_label(ds->s), li->type);
		goto out;
	}
	/* The core needs at least about 3 MiB to lay out 16 record slots. */
	if (li->nblocks * li->bs < CLAIM_AREA + (4u << 20)) {
		rc = vsm_error_set(VSM_ENOSPC, "datastore '%s': LUN %d of %s holds %llu bytes; "
				   "the metadata LUN needs at least %u", ds->name, li->lun,
				   isc_sess_label(ds->s),
				   (unsigned long long)(li->nblocks * li->bs),
				   CLAIM_AREA + (4u << 20));
		goto out;
	}
	ds->meta_lun = li->lun;
	/* Leases and the metadata lock take the one-I/O path when this LUN
	 * has COMPARE AND WRITE (the device's caps say so); iscsi-caw://
	 * insists on it. */
	if ((rc = probe_caw(ds, li, 0)) < 0)
		goto out;
	if (ds->caw_scheme) {
		if (!li->caw) {
			rc = vsm_error_set(VSM_ENOTSUP, "datastore '%s': LUN %d of %s does not "
					   "support SCSI COMPARE AND WRITE; use an iscsi:// URI "
					   "for this target", ds->name, li->lun,
					   isc_sess_label(ds->s));
			goto out;
		}
	}
	if ((rc = bdev_new(&v, ds, li, 0, 0)) < 0)
		goto out;
	if (!(hdr = aligned_alloc(li->bs, li->bs))) {
		rc = oom();
		goto out;
	}
	if ((rc = xfer(v, false, hdr, li->bs, 0)) < 0 ||
	    (rc = header_check(ds, hdr, li->bs, &present)) < 0)
		goto out;
	isc_bdev_close(v);
	v = NULL;
	if (ds->u.mode == ISC_MODE_MANAGED && (rc = managed_restore_devices(ds)) < 0)
		goto out;
	/* A rescan may have moved the LUN list: find the metadata LUN again. */
	if (!(li = find_lun(ds, ds->meta_lun))) {
		rc = vsm_error_set(VSM_ENOTFOUND, "datastore '%s': metadata LUN %d vanished",
				   ds->name, ds->meta_lun);
		goto out;
	}
	if ((rc = bdev_new(&v, ds, li, CLAIM_AREA, flags & VSM_BDEV_RDONLY)) < 0)
		goto out;
	*out = &v->io;
	v = NULL;
out:
	if (rc < 0)
		ds->meta_lun = -1;
	pthread_mutex_unlock(&ds->lock);
	isc_bdev_close(v);
	free(hdr);
	return rc;
}

/* ------------------------------------------------------------- capacity */

static int isc_capacity(vsm_backend_ds *ds, uint64_t *total, uint64_t *free_bytes)
{
	isc_dev *v = NULL;
	uint8_t *table = NULL;
	uint64_t t = 0, f = 0;
	size_t i;
	int rc = 0;

	if (ds->u.mode == ISC_MODE_MANAGED) {
		struct statvfs sv;

		if (statvfs(ds->u.dir, &sv) < 0)
			return vsm_error_set(VSM_EIO, "datastore '%s': cannot stat '%s': %s",
					     ds->name, ds->u.dir, strerror(errno));
		if (total)
			*total = (uint64_t)sv.f_blocks * sv.f_frsize;
		if (free_bytes)
			*free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
		return 0;
	}
	pthread_mutex_lock(&ds->lock);
	if ((rc = scan_luns(ds)) < 0)
		goto out;
	if (ds->meta_lun >= 0 && ((rc = claim_view(ds, &v)) < 0 ||
				  (rc = table_read(ds, v, &table)) < 0))
		goto out;
	for (i = 0; i < ds->n_luns; i++) {
		const lun_info *li = &ds->luns[i];
		uint64_t bytes = li->nblocks * li->bs;
		claim c = { 0 };

		if (!is_data_lun(li) || li->lun == ds->meta_lun)
			continue;
		t += bytes;
		if (table && (uint32_t)li->lun < max_entries(v) &&
		    (rc = entry_decode(table + (size_t)(li->lun + 1) * v->li.bs, (uint32_t)li->lun,
				       &c, ds->name)) < 0)
			goto out;
		if (!c.claimed)
			f += bytes;
	}
	if (total)
		*total = t;
	if (free_bytes)
		*free_bytes = f;
out:
	pthread_mutex_unlock(&ds->lock);
	isc_bdev_close(v);
	free(table);
	return rc;
}

/* ------------------------------------------------------------- devices */

static int check_name(const vsm_backend_ds *ds, const char *name)
{
	size_t i, n = name ? strlen(name) : 0;

	if (n == 0 || n >= ENTRY_NAME_MAX - 1)
		goto bad;
	for (i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			goto bad;
	}
	return 0;
bad:
	return vsm_error_set(VSM_EINVAL, "datastore '%s': device name '%s' is not 1-%d "
			     "characters of [A-Za-z0-9._-]", ds->name, name ? name : "",
			     ENTRY_NAME_MAX - 2);
}

/* A key is "lun<N>/<name>"; a bare name (the journal's undo of a create
 * whose key was never recorded) is looked up in the claim table. */
static int parse_key(const vsm_backend_ds *ds, const char *key, int *lun, const char **name)
{
	char *end;
	unsigned long n;

	*lun = -1;
	*name = key;
	if (!key || strncmp(key, "lun", 3) != 0 || !strchr(key, '/'))
		return check_name(ds, key);
	n = strtoul(key + 3, &end, 10);
	if (end == key + 3 || *end != '/' || n > 16383)
		return vsm_error_set(VSM_EINVAL, "datastore '%s': '%s' is not an iSCSI device key "
				     "(lun<N>/<name>)", ds->name, key);
	*lun = (int)n;
	*name = end + 1;
	return check_name(ds, *name);
}

/* Find the claim of a key; -VSM_ENOTFOUND when there is none. */
static int lookup(vsm_backend_ds *ds, isc_dev *v, const uint8_t *table, const char *key,
		  claim *out)
{
	const char *name;
	int lun, rc;

	if ((rc = parse_key(ds, key, &lun, &name)) < 0)
		return rc;
	if (lun < 0) {
		if ((rc = table_find_name(ds, v, table, name, out)) < 0)
			return rc;
		if (rc == 1)
			return 0;
	} else if ((uint32_t)lun < max_entries(v)) {
		if ((rc = entry_decode(table + (size_t)(lun + 1) * v->li.bs, (uint32_t)lun, out,
				       ds->name)) < 0)
			return rc;
		if (out->claimed && !strcmp(out->name, name))
			return 0;
	}
	return vsm_error_set(VSM_ENOTFOUND, "datastore '%s': device '%s' is not claimed on %s",
			     ds->name, key, isc_sess_label(ds->s));
}

static uint64_t managed_file_size(const vsm_backend_device_spec *spec)
{
	/* qcow2 needs room for its tables beyond the virtual size. */
	return vsm_backend_device_bytes(spec);
}

static int isc_device_create(vsm_backend_ds *ds, const vsm_backend_device_spec *spec,
			     char *key, size_t key_size, unsigned int *out_flags)
{
	isc_dev *v = NULL;
	uint8_t *table = NULL;
	char *path = NULL;
	claim c, found;
	int rc, tries, lun = -1;
	bool file_made = false, lun_made = false;

	if ((rc = check_name(ds, spec->name)) < 0)
		return rc;
	if (strlen(spec->name) + 12 >= key_size)
		return vsm_error_set(VSM_EINVAL, "device name '%s' is too long", spec->name);
	pthread_mutex_lock(&ds->lock);
	for (tries = 0; tries < 100; tries++) {
		const lun_info *best = NULL;
		size_t i;

		free(table);
		table = NULL;
		isc_bdev_close(v);
		v = NULL;
		if ((rc = scan_luns(ds)) < 0 || (rc = with_table(ds, &v, &table)) < 0)
			goto out;
		if ((rc = table_find_name(ds, v, table, spec->name, &found)) < 0)
			goto out;
		if (rc == 1) {
			rc = vsm_error_set(VSM_EEXISTS, "datastore '%s': device '%s' already "
					   "exists (LUN %u)", ds->name, spec->name, found.lun);
			goto out;
		}
		if (ds->u.mode == ISC_MODE_MANAGED) {
			if (!path) {
				if (asprintf(&path, "%s/%s", ds->u.dir, spec->name) < 0) {
					path = NULL;
					rc = oom();
					goto out;
				}
				if ((rc = make_file(path, managed_file_size(spec))) < 0) {
					rc = vsm_error_set(rc == -EEXIST ? VSM_EEXISTS :
							   rc == -ENOSPC ? VSM_ENOSPC : VSM_EIO,
							   "datastore '%s': cannot create backing "
							   "file '%s': %s", ds->name, path,
							   strerror(-rc));
					goto out;
				}
				file_made = true;
			}
			if (!lun_made) {
				if ((lun = lowest_free_lun(ds, table, v->li.bs, max_entries(v))) < 0) {
					rc = vsm_error_set(VSM_ENOSPC, "datastore '%s': no free LUN "
							   "number on %s", ds->name,
							   isc_sess_label(ds->s));
					goto out;
				}
				if ((rc = managed_add_lun(ds, lun, path)) < 0)
					goto out;
				lun_made = true;
				if ((rc = scan_luns(ds)) < 0)
					goto out;
			}
			best = find_lun(ds, lun);
			if (!best || !is_data_lun(best)) {
				rc = vsm_error_set(VSM_EIO, "datastore '%s': tgtadm added LUN %d "
						   "but the target does not report it", ds->name, lun);
				goto out;
			}
		} else {
			for (i = 0; i < ds->n_luns; i++) {
				const lun_info *li = &ds->luns[i];
				uint64_t bytes = li->nblocks * li->bs;
				claim cur;

				if (!is_data_lun(li) || li->lun == ds->meta_lun ||
				    (uint32_t)li->lun >= max_entries(v) || bytes < spec->size)
					continue;
				if ((rc = entry_decode(table + (size_t)(li->lun + 1) * v->li.bs,
						       (uint32_t)li->lun, &cur, ds->name)) < 0)
					goto out;
				if (cur.claimed)
					continue;
				if (!best || bytes < best->nblocks * best->bs)
					best = li;
			}
			if (!best) {
				rc = vsm_error_set(VSM_ENOSPC, "datastore '%s': %s has no unclaimed "
						   "LUN of at least %llu bytes for device '%s'",
						   ds->name, isc_sess_label(ds->s),
						   (unsigned long long)spec->size, spec->name);
				goto out;
			}
		}
		memset(&c, 0, sizeof(c));
		c.claimed = true;
		c.lun = (uint32_t)best->lun;
		c.size = spec->size;
		c.flags = ds->u.mode == ISC_MODE_MANAGED ? ENTRY_FLAG_MANAGED : 0;
		snprintf(c.name, sizeof(c.name), "%s", spec->name);
		rc = entry_replace(ds, v, c.lun, table + (size_t)(c.lun + 1) * v->li.bs, &c,
				   best->nblocks * best->bs);
		if (rc == -VSM_EMISMATCH)
			continue; /* another host took it: look again */
		if (rc < 0)
			goto out;
		snprintf(key, key_size, "lun%u/%s", c.lun, spec->name);
		*out_flags = 0;
		file_made = lun_made = false;
		break;
	}
	if (tries == 100)
		rc = vsm_error_set(VSM_EBUSY, "datastore '%s': LUN claims keep changing under "
				   "device '%s'", ds->name, spec->name);
out:
	if (lun_made)
		managed_del_lun(ds, lun);
	if (file_made)
		unlink(path);
	pthread_mutex_unlock(&ds->lock);
	isc_bdev_close(v);
	free(table);
	free(path);
	return rc;
}

/* Zero a whole LUN: WRITE SAME(16) of a zero block where the target has
 * it, plain writes of zeros where it does not. */
static int zero_lun(vsm_backend_ds *ds, isc_dev *b)
{
	const lun_info *li = &b->li;
	uint8_t *zero = calloc(1, li->bs);
	uint64_t lba = 0;
	int rc = 0;

	if (!zero)
		return oom();
	while (lba < li->nblocks && rc == 0) {
		uint64_t n = li->nblocks - lba > 32768 ? 32768 : li->nblocks - lba;
		isc_cmd c = { .kind = ISC_CMD_WRITE_SAME_ZERO, .lun = li->lun, .lba = lba,
			      .nblocks = (uint32_t)n, .block_size = li->bs, .buf = zero,
			      .len = li->bs, .retry_conflict = true };
		isc_result r;

		if ((rc = isc_sess_run(ds->s, &c, &r)) < 0)
			break;
		if (r.status == SCSI_STATUS_CHECK_CONDITION && r.sense_key == 0x5 && lba == 0) {
			free(zero);
			return write_zeros(b, 0, b->size); /* no WRITE SAME here */
		}
		if (r.status != SCSI_STATUS_GOOD)
			rc = isc_result_error(ds->s, &r, li->lun, "WRITE SAME(16) on");
		lba += n;
	}
	free(zero);
	return rc;
}

static int wipe_lun(vsm_backend_ds *ds, const lun_info *li)
{
	isc_dev *b = NULL;
	int rc;

	if (ds->u.wipe == ISC_WIPE_NONE)
		return 0;
	if ((rc = bdev_new(&b, ds, li, 0, 0)) < 0)
		return rc;
	if (ds->u.wipe == ISC_WIPE_UNMAP && li->unmap)
		rc = isc_bdev_discard(b, 0, b->size);
	else
		rc = zero_lun(ds, b);
	if (rc == 0)
		rc = isc_bdev_flush(b);
	isc_bdev_close(b);
	return rc;
}

static int isc_device_delete(vsm_backend_ds *ds, const char *key, unsigned int flags)
{
	isc_dev *v = NULL;
	uint8_t *table = NULL;
	char *path = NULL;
	claim c, freed = { 0 };
	lun_info *li;
	int rc;

	(void)flags;
	pthread_mutex_lock(&ds->lock);
	if ((rc = scan_luns(ds)) < 0 || (rc = with_table(ds, &v, &table)) < 0 ||
	    (rc = lookup(ds, v, table, key, &c)) < 0)
		goto out;
	li = find_lun(ds, (int)c.lun);
	if (c.flags & ENTRY_FLAG_MANAGED) {
		if (ds->u.mode != ISC_MODE_MANAGED) {
			rc = vsm_error_set(VSM_ENOTSUP, "datastore '%s': device '%s' is a managed "
					   "LUN; delete it through a mode=managed URI", ds->name, key);
			goto out;
		}
		if (li && (rc = managed_del_lun(ds, (int)c.lun)) < 0)
			goto out;
	} else if (li && (rc = wipe_lun(ds, li)) < 0) {
		goto out;
	}
	freed.lun = c.lun;
	rc = entry_replace(ds, v, c.lun, table + (size_t)(c.lun + 1) * v->li.bs, &freed, 0);
	/* Claims change only by a create or a delete: one that changed under
	 * us no longer names this device, which another host (finishing the
	 * same destroy) released first. Deleting is idempotent: say it is gone. */
	if (rc == -VSM_EMISMATCH)
		rc = vsm_error_set(VSM_ENOTFOUND, "datastore '%s': device '%s' was released by "
				   "another host meanwhile", ds->name, key);
	if (rc == 0 && (c.flags & ENTRY_FLAG_MANAGED)) {
		if (asprintf(&path, "%s/%s", ds->u.dir, c.name) < 0)
			path = NULL;
		else if (unlink(path) < 0 && errno != ENOENT)
			rc = vsm_error_set(VSM_EIO, "datastore '%s': cannot remove '%s': %s",
					   ds->name, path, strerror(errno));
		scan_luns(ds);
	}
out:
	pthread_mutex_unlock(&ds->lock);
	isc_bdev_close(v);
	free(table);
	free(path);
	return rc;
}

/* Every claimed LUN is a device: claims are what all hosts share, so the
 * table is read afresh and reported after the lock is dropped. A claim's
 * time is when its device was created (on the claiming host's clock). */
static int isc_device_list(vsm_backend_ds *ds, vsm_backend_device_cb cb, void *payload)
{
	isc_dev *v = NULL;
	uint8_t *table = NULL;
	claim *found = NULL;
	size_t n = 0, i;
	uint32_t lun, max;
	int rc;

	pthread_mutex_lock(&ds->lock);
	if ((rc = with_table(ds, &v, &table)) < 0)
		goto unlock;
	max = max_entries(v);
	if (!(found = calloc(max, sizeof(*found)))) {
		rc = oom();
		goto unlock;
	}
	for (lun = 0; lun < max; lun++) {
		const uint8_t *e = table + (size_t)(lun + 1) * v->li.bs;

		if (all_zero(e, ENTRY_BYTES))
			continue;
		if ((rc = entry_decode(e, lun, &found[n], ds->name)) < 0)
			goto unlock;
		if (found[n].claimed)
			n++;
	}
unlock:
	pthread_mutex_unlock(&ds->lock);
	isc_bdev_close(v);
	free(table);
	for (i = 0; rc == 0 && i < n; i++) {
		vsm_backend_device_info info = { VSM_BACKEND_DEVICE_INFO_VERSION, NULL, NULL, 0, 0 };
		char key[ENTRY_NAME_MAX + 16];

		snprintf(key, sizeof(key), "lun%u/%s", found[i].lun, found[i].name);
		info.key = key;
		info.name = found[i].name;
		info.size = found[i].lun_bytes ? found[i].lun_bytes : found[i].size;
		info.mtime = found[i].when > 0 ? found[i].when : 0;
		rc = cb(&info, payload);
	}
	free(found);
	return rc;
}

/* Find the LUN behind a key, checking the claim. */
static int resolve(vsm_backend_ds *ds, const char *key, lun_info *out)
{
	isc_dev *v = NULL;
	uint8_t *table = NULL;
	lun_info *li;
	claim c;
	int rc;

	pthread_mutex_lock(&ds->lock);
	if ((rc = with_table(ds, &v, &table)) < 0 || (rc = lookup(ds, v, table, key, &c)) < 0)
		goto out;
	/* The target may have dropped or renumbered LUNs since we looked. */
	li = (rc = scan_luns(ds)) == 0 ? find_lun(ds, (int)c.lun) : NULL;
	if (rc == 0 && (!li || !is_data_lun(li)))
		rc = vsm_error_set(VSM_ENOTFOUND, "datastore '%s': device '%s': LUN %u is gone "
				   "from %s", ds->name, key, c.lun, isc_sess_label(ds->s));
	if (rc == 0)
		*out = *li;
out:
	pthread_mutex_unlock(&ds->lock);
	isc_bdev_close(v);
	free(table);
	return rc;
}

static int isc_device_open(vsm_bdev_io **out, vsm_backend_ds *ds, const char *key,
			   unsigned int flags)
{
	isc_dev *b = NULL;
	lun_info li;
	int rc;

	if ((rc = resolve(ds, key, &li)) < 0)
		return rc;
	/* Capabilities are per LUN: find out whether this one has CAW. */
	if ((rc = probe_caw(ds, &li, 0)) < 0)
		return rc;
	if ((rc = bdev_new(&b, ds, &li, 0, flags & VSM_BDEV_RDONLY)) == 0)
		*out = &b->io;
	return rc;
}

static int isc_device_resize(vsm_backend_ds *ds, const char *key, uint64_t size,
			     unsigned int flags)
{
	lun_info li;
	int rc;

	(void)flags;
	if ((rc = resolve(ds, key, &li)) < 0)
		return rc;
	if (size > li.nblocks * li.bs)
		return vsm_error_set(VSM_ENOSPC, "datastore '%s': device '%s' lives on LUN %d of "
				     "%llu bytes and cannot grow to %llu", ds->name, key, li.lun,
				     (unsigned long long)(li.nblocks * li.bs),
				     (unsigned long long)size);
	return 0;
}

/* ------------------------------------------------------------- hosts */

static int isc_host_attach(vsm_backend_ds *ds, const char *host, const char *host_uri,
			   unsigned int flags)
{
	int rc;

	(void)host_uri;
	(void)flags;
	/* This process's session is the host's path to the target: make
	 * sure it answers (reconnecting if it must). */
	pthread_mutex_lock(&ds->lock);
	rc = scan_luns(ds);
	pthread_mutex_unlock(&ds->lock);
	if (rc < 0) {
		char pre[300];

		snprintf(pre, sizeof(pre), "datastore '%s': host '%s' cannot use the target",
			 ds->name, host);
		return prefix_error(rc, pre);
	}
	return 0;
}

static int isc_host_detach(vsm_backend_ds *ds, const char *host, const char *host_uri,
			   unsigned int flags)
{
	(void)ds; (void)host; (void)host_uri; (void)flags;
	return 0;
}

static int isc_device_deploy(vsm_backend_ds *ds, const char *key,
			     const vsm_backend_deploy_req *req, struct vsm_locator *out)
{
	size_t n = req->chain_len + 1, i;
	lun_info *luns = NULL;
	vsm_disk_xml_layer *layers = NULL;
	const char **attrs = NULL;
	char **names = NULL, *uri = NULL, *xml = NULL, *usage = NULL, port[16];
	int rc;

	snprintf(port, sizeof(port), "%u", ds->u.port);
	if (ds->u.user) {
		/* The libvirt secret holding the CHAP password, by usage name. */
		if (ds->u.auth_secret)
			usage = strdup(ds->u.auth_secret);
		else if (asprintf(&usage, "libvsm/%s", ds->u.iqn) < 0)
			usage = NULL;
		if (!usage)
			return oom();
	}
	{
		/* Every layer is a LUN of the same target: one set of children. */
		const char *host_a[] = { "name", ds->u.host, "port", port, NULL };
		const char *iqn_a[] = { "name", ds->u.initiator, NULL };
		const char *auth_a[] = { "username", ds->u.user, NULL };
		const char *secret_a[] = { "type", "iscsi", "usage", usage, NULL };
		const vsm_disk_xml_elem iqn = { "iqn", iqn_a, NULL, 0 };
		const vsm_disk_xml_elem secret = { "secret", secret_a, NULL, 0 };
		const vsm_disk_xml_elem kids[3] = {
			{ "host", host_a, NULL, 0 },
			{ "initiator", NULL, &iqn, 1 },
			{ "auth", auth_a, &secret, 1 },
		};

		luns = calloc(n, sizeof(*luns));
		layers = calloc(n, sizeof(*layers));
		attrs = calloc(5 * n, sizeof(*attrs));
		names = calloc(n, sizeof(*names));
		if (!luns || !layers || !attrs || !names) {
			rc = oom();
			goto out;
		}
		for (i = 0; i < n; i++) {
			if ((rc = resolve(ds, i ? req->chain_keys[i - 1] : key, &luns[i])) < 0)
				goto out;
			if (asprintf(&names[i], "%s/%d", ds->u.iqn, luns[i].lun) < 0) {
				names[i] = NULL;
				rc = oom();
				goto out;
			}
			attrs[5 * i] = "protocol";
			attrs[5 * i + 1] = "iscsi";
			attrs[5 * i + 2] = "name";
			attrs[5 * i + 3] = names[i];
			layers[i].type = "network";
			layers[i].format = i ? req->chain_formats[i - 1] : req->format;
			layers[i].source_attrs = &attrs[5 * i];
			layers[i].source_children = kids;
			layers[i].n_source_children = ds->u.user ? 3 : 2;
		}
		if ((rc = vsm__diskxml_build(&xml, layers, n, req->target, req->bus, 0)) < 0)
			goto out;
	}
	if (asprintf(&uri, strchr(ds->u.host, ':') ? "iscsi://[%s]:%u/%s/%d" :
		     "iscsi://%s:%u/%s/%d", ds->u.host, ds->u.port, ds->u.iqn, luns[0].lun) < 0) {
		uri = NULL;
		rc = oom();
		goto out;
	}
	rc = vsm_locator_set(out, uri, NULL, xml);
out:
	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	free(attrs);
	free(layers);
	free(luns);
	free(usage);
	free(uri);
	free(xml);
	return rc;
}

static int isc_device_undeploy(vsm_backend_ds *ds, const char *key,
			       const vsm_backend_deploy_req *req)
{
	const char *name;
	int lun;

	(void)req;
	/* Nothing was set up on the host: QEMU logs in by itself. */
	return parse_key(ds, key, &lun, &name);
}

/* ------------------------------------------------------------- tables */

static const char *const isc_aliases[] = { "iscsi-caw", NULL };

const struct vsm_datastore_ops vsm__iscsi_backend_ops = VSM_DATASTORE_OPS_INIT(
	.scheme = "iscsi",
	.description = "iSCSI target through libiscsi; LUNs are devices",
	.scheme_aliases = isc_aliases,
	.open = isc_open,
	.close = isc_close,
	.capacity = isc_capacity,
	.meta_open = isc_meta_open,
	.device_create = isc_device_create,
	.device_delete = isc_device_delete,
	.device_resize = isc_device_resize,
	.host_attach = isc_host_attach,
	.host_detach = isc_host_detach,
	.device_deploy = isc_device_deploy,
	.device_undeploy = isc_device_undeploy,
	.device_list = isc_device_list,
	.device_open = isc_device_open,
);
