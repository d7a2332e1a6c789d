/*
 * iSCSI backend: the target's LUNs. REPORT LUNS and the probe of each
 * (INQUIRY, READ CAPACITY, block limits, provisioning), the COMPARE AND
 * WRITE probe, and running a command that must end GOOD.
 */
#include <stdlib.h>
#include <string.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "isc-int.h"

#define MAX_XFER_DEFAULT (1024 * 1024)

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

lun_info *isc_find_lun(vsm_backend_ds *ds, int lun)
{
	size_t i;

	for (i = 0; i < ds->n_luns; i++)
		if (ds->luns[i].lun == lun)
			return &ds->luns[i];
	return NULL;
}

/* Run a command that must end GOOD; otherwise set the error. */
int isc_run_good(vsm_backend_ds *ds, const isc_cmd *c, isc_result *res, const char *what)
{
	int rc = isc_sess_run(ds->s, c, res);

	if (rc < 0)
		return rc;
	if (res->status != SCSI_STATUS_GOOD)
		return isc_result_error(ds->s, res, c->lun, what);
	return 0;
}

bool isc_is_data_lun(const lun_info *li)
{
	return li->type == 0 && li->nblocks > 0;
}

static int probe_lun(vsm_backend_ds *ds, lun_info *li)
{
	isc_cmd c = { .lun = li->lun };
	isc_result r;
	int rc;

	c.kind = ISC_CMD_INQUIRY;
	c.alloc_len = 96;
	if ((rc = isc_run_good(ds, &c, &r, "INQUIRY")) < 0)
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
	if ((rc = isc_run_good(ds, &c, &r, "READ CAPACITY(16)")) < 0)
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
int isc_scan_luns(vsm_backend_ds *ds)
{
	isc_cmd c = { .kind = ISC_CMD_REPORT_LUNS, .alloc_len = 16384, .lun = 0 };
	isc_result r;
	lun_info *luns = NULL;
	size_t n = 0, i, count;
	int rc;

	if ((rc = isc_run_good(ds, &c, &r, "REPORT LUNS")) < 0)
		return rc;
	count = r.data_len >= 8 ? be32(r.data) / 8 : 0;
	if (8 + count * 8 > r.data_len)
		count = (r.data_len - 8) / 8;
	luns = calloc(count ? count : 1, sizeof(*luns));
	if (!luns) {
		isc_result_clear(&r);
		return isc_oom();
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
		if ((old = isc_find_lun(ds, luns[n].lun)) && old->type == 0 && old->nblocks) {
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
int isc_probe_caw(vsm_backend_ds *ds, lun_info *li, uint64_t probe_lba)
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
		return isc_oom();
	memset(&c, 0, sizeof(c));
	c.kind = ISC_CMD_READ;
	c.lun = li->lun;
	c.lba = probe_lba;
	c.nblocks = 1;
	c.block_size = li->bs;
	c.buf = buf;
	c.len = li->bs;
	c.retry_conflict = true;
	if ((rc = isc_run_good(ds, &c, &r, "READ(16)")) < 0) {
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
