/*
 * iSCSI backend: the claim table at the start of the metadata LUN, which
 * says which LUN belongs to which device: its codec, reading it, and
 * replacing one entry atomically across hosts. doc/iscsi.md describes
 * the bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "isc-int.h"

#define TABLE_MAGIC "VSMISCT1"
#define ENTRY_MAGIC "VSMISCE1"
#define CLAIM_VERSION 1
#define ENTRY_CRC_OFF 508
#define ENTRY_NAME_OFF 56
#define ENTRY_HOST_OFF 192
#define ENTRY_HOST_MAX 224

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

bool isc_all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

uint32_t isc_max_entries(const isc_dev *meta)
{
	return CLAIM_AREA / meta->li.bs - 1;
}

/* A raw view of the claim area (base 0) of the metadata LUN. */
int isc_claim_view(vsm_backend_ds *ds, isc_dev **out)
{
	lun_info *li = ds->meta_lun >= 0 ? isc_find_lun(ds, ds->meta_lun) : NULL;

	if (!li)
		return vsm_error_set(VSM_ESTATE, "datastore '%s': metadata LUN is not open",
				     ds->name);
	return isc_bdev_new(out, ds, li, 0, 0);
}

int isc_entry_decode(const uint8_t *e, uint32_t lun, claim *c, const char *ds_name)
{
	memset(c, 0, sizeof(*c));
	if (isc_all_zero(e, ENTRY_BYTES))
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

int isc_header_check(vsm_backend_ds *ds, const uint8_t *h, uint32_t bs, bool *present)
{
	*present = false;
	if (isc_all_zero(h, ENTRY_BYTES))
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
int isc_table_read(vsm_backend_ds *ds, isc_dev *v, uint8_t **table)
{
	bool present;
	int rc;

	if (!(*table = aligned_alloc(v->li.bs, CLAIM_AREA)))
		return isc_oom();
	if ((rc = isc_xfer(v, false, *table, CLAIM_AREA, 0)) < 0 ||
	    (rc = isc_header_check(ds, *table, v->li.bs, &present)) < 0) {
		free(*table);
		*table = NULL;
	}
	return rc;
}

int isc_with_table(vsm_backend_ds *ds, isc_dev **v, uint8_t **table)
{
	int rc;

	*v = NULL;
	*table = NULL;
	if ((rc = isc_claim_view(ds, v)) < 0)
		return rc;
	if ((rc = isc_table_read(ds, *v, table)) < 0) {
		isc_bdev_close(*v);
		*v = NULL;
	}
	return rc;
}

int isc_table_find_name(vsm_backend_ds *ds, isc_dev *v, const uint8_t *table,
			const char *name, claim *out)
{
	uint32_t i, n = isc_max_entries(v);
	int rc;

	for (i = 0; i < n; i++) {
		const uint8_t *e = table + (size_t)(i + 1) * v->li.bs;
		claim c;

		if (isc_all_zero(e, ENTRY_BYTES))
			continue;
		if ((rc = isc_entry_decode(e, i, &c, ds->name)) < 0)
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
int isc_entry_replace(vsm_backend_ds *ds, isc_dev *v, uint32_t lun,
		      const uint8_t *old, const claim *now_c, uint64_t lun_bytes)
{
	uint32_t bs = v->li.bs;
	uint64_t off = (uint64_t)(lun + 1) * bs;
	uint8_t *blk = aligned_alloc(bs, 2 * (size_t)bs);
	lun_info *mli = isc_find_lun(ds, ds->meta_lun);
	isc_cmd c = { .lun = v->li.lun };
	isc_result r;
	bool reserved = false, present;
	int rc;

	if (!blk)
		return isc_oom();
	memset(blk, 0, 2 * (size_t)bs);
	memcpy(blk, old, bs);
	memcpy(blk + bs, old, bs);
	entry_encode(blk + bs, now_c, ds->u.initiator, lun_bytes, bs);
	if (mli && (rc = isc_probe_caw(ds, mli, 0)) < 0)
		goto out;
	if (!mli || !mli->caw) {
		c.kind = ISC_CMD_RESERVE6;
		c.retry_conflict = true;
		if ((rc = isc_run_good(ds, &c, &r, "RESERVE(6) of")) < 0)
			goto out;
		reserved = true;
	}
	/* The table header goes first, once. */
	if ((rc = isc_xfer(v, false, blk, bs, 0)) < 0)
		goto out;
	if ((rc = isc_header_check(ds, blk, bs, &present)) < 0)
		goto out;
	if (!present) {
		memset(blk, 0, bs);
		memcpy(blk, TABLE_MAGIC, 8);
		put32(blk + 8, CLAIM_VERSION);
		put32(blk + 12, bs);
		put32(blk + 16, CLAIM_AREA);
		put32(blk + ENTRY_CRC_OFF, crc(blk, ENTRY_CRC_OFF));
		if ((rc = isc_xfer(v, true, blk, bs, 0)) < 0)
			goto out;
	}
	memcpy(blk, old, bs);
	if (reserved) {
		uint8_t *cur = aligned_alloc(bs, bs);

		if (!cur) {
			rc = isc_oom();
			goto out;
		}
		rc = isc_xfer(v, false, cur, bs, off);
		if (rc == 0 && memcmp(cur, old, bs) != 0)
			rc = -VSM_EMISMATCH;
		free(cur);
		if (rc == 0)
			rc = isc_xfer(v, true, blk + bs, bs, off);
	} else {
		rc = isc_caw_blocks(v, blk, off, bs);
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
