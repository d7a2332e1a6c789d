/*
 * The content ID of a qcow2 layer: 16 bytes in libvsm's own header
 * extension (QC_EXT_VSM_CID). The rule it carries is that two layers
 * with the same ID read the same bytes, so the ID goes away (on disk,
 * before anything else is written) at the first change through the
 * engine of what the layer reads; whoever froze the layer gives it a new
 * one. See doc/chain-copy.md.
 */
#include <string.h>

#include "cow_int.h"

void qc_cid_parse(struct qcow2 *q, const uint8_t *ext, uint32_t len)
{
	/* Longer is a later version of ours (the ID comes first); shorter
	 * is not an ID we can trust: the layer has none. */
	if (len < QC_CID_LEN)
		return;
	memcpy(q->cid, ext, QC_CID_LEN);
	q->has_cid = true;
}

int qc_content_change(struct qcow2 *q)
{
	bool issued;
	int rc = qc_mark_dirty(q);

	if (rc < 0 || !q->has_cid)
		return rc;
	rc = qc_write_header_ext(q, QC_EXT_VSM_CID, NULL, 0, &issued);
	/* Once the write was issued the disk may hold either header: the
	 * ID is no longer trusted here either way. */
	if (issued)
		q->has_cid = false;
	return rc;
}

bool vsm_cow_cid(vsm_cow *c, uint8_t out[VSM_COW_CID_LEN])
{
	bool has;

	if (c->format != VSM_COW_QCOW2)
		return false;
	pthread_mutex_lock(&c->lock);
	has = c->q->has_cid;
	if (has)
		memcpy(out, c->q->cid, QC_CID_LEN);
	pthread_mutex_unlock(&c->lock);
	return has;
}

int vsm_cow_set_cid(vsm_cow *c, const uint8_t cid[VSM_COW_CID_LEN])
{
	struct qcow2 *q = c->q;
	bool issued = false;
	int rc;

	if (c->format != VSM_COW_QCOW2)
		return vsm_err(VSM_ENOTSUP, "%s: a raw image has no content ID", c->label);
	if (c->readonly)
		return vsm_err(VSM_EPERM, "%s: image is open read-only", c->label);
	pthread_mutex_lock(&c->lock);
	/* The data the ID names is on disk before the ID is. */
	rc = q->inconsistent ? qc_refuse_inconsistent(q) : qc_flush_all(q);
	if (rc == 0)
		rc = qc_write_header_ext(q, QC_EXT_VSM_CID, cid, QC_CID_LEN, &issued);
	if (rc == 0) {
		memcpy(q->cid, cid, QC_CID_LEN);
		q->has_cid = true;
	} else if (issued) {
		q->has_cid = false;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}
