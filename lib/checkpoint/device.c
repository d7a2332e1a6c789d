/*
 * Devices of the checkpoint module: naming and creating them under the
 * journal, deleting a layer nobody references, opening a layer with its
 * chain, its allocation, copying a view, and rebasing a qcow2 layer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "becall.h"
#include "ckpt.h"
#include "cow.h"
#include "devimage.h"

void ck_name(char *buf, size_t size, const char *uuid, const char *what, const char *ext)
{
	char id[VSM_UUID_STRLEN + 1];

	vsm__uuid_new(id);
	snprintf(buf, size, "%s-%s.%.8s.%s", uuid, what, id, ext);
}

int ck_device_create(vsm_wf *wf, vsm_dstore *ds, const char *name, uint64_t size,
		     const char *format, const char *backing, int backing_format,
		     char key[VSM_BACKEND_KEY_MAX])
{
	/* Undone only if no record came to reference it (see doc). */
	return vsm__dev_create(wf, CK_WF_DELETE_UNREF, ds, name, size, format, backing,
			       backing ? vsm_format_name(backing_format) : NULL,
			       VSM_BACKEND_DEVICE_THIN, key);
}

int ck_delete_unref(vsm_ctx *ctx, vsm_dstore *ds, const char *key)
{
	ck_recs rs;
	size_t i;
	bool managed, listed = false;
	int rc;

	if ((rc = ck_recs_load(&rs, ctx, ds)) < 0)
		return rc;
	if (ck_referenced(&rs, key)) {
		ck_recs_free(&rs);
		return 0;
	}
	managed = ck_is_managed(&rs, key);
	for (i = 0; i < rs.n; i++)
		if (ck_layer(rs.v[i], key))
			listed = true;
	/* A golden image someone else put there is never ours to delete. */
	if (managed || !listed) {
		rc = vsm__be_device_delete(ds, key, 0);
		if (rc == -VSM_ENOTFOUND) {
			vsm__error_reset();
			rc = 0;
		}
		if (rc < 0) {
			vsm__error_prefix("datastore '%s'", ds->name);
			goto out;
		}
	}
	/* Table entries go after the device, so a crash in between leaves
	 * an entry that the next run removes, never an orphaned device. */
	for (i = 0; i < rs.n; i++)
		if (ck_layer(rs.v[i], key)) {
			ck_layer_remove(rs.v[i], key);
			rs.dirty[i] = true;
		}
	rc = ck_recs_store(&rs, ctx, ds);
out:
	ck_recs_free(&rs);
	return rc;
}

int ck_cow_open(vsm_cow **out, vsm_dstore *ds, const char *key, int format, bool rdonly,
		bool no_backing)
{
	vsm_cow_open_opts o = {0};
	vsm_bdev *b = NULL;
	char label[VSM_BACKEND_KEY_MAX + 64];
	int rc;

	if (!(o.format = vsm_format_name(format)))
		return vsm_err(VSM_EINTERNAL, "datastore '%s' layer '%s': no format given",
			       ds->name, key);
	if ((rc = vsm__ds_backing_open(&b, key, rdonly, ds)) < 0)
		return rc;
	snprintf(label, sizeof(label), "datastore '%s' layer '%s'", ds->name, key);
	o.flags = (rdonly ? VSM_COW_RDONLY : 0) | (no_backing ? VSM_COW_NO_BACKING : 0);
	o.open_backing = vsm__ds_backing_open;
	o.payload = ds;
	return vsm_cow_open(out, b, label, &o);
}

int ck_stamp_cid(vsm_dstore *ds, const char *key, int format, const char *cid)
{
	uint8_t bin[VSM_COW_CID_LEN], had[VSM_COW_CID_LEN];
	vsm_cow *c = NULL;
	int rc;

	if (format != VSM_FORMAT_QCOW2 || !cid)
		return 0;
	if (!vsm_cow_cid_parse(cid, bin))
		return vsm_err(VSM_EINTERNAL, "datastore '%s' layer '%s': bad content ID '%s'",
			       ds->name, key, cid);
	if ((rc = ck_cow_open(&c, ds, key, format, false, true)) < 0)
		return rc;
	if (!vsm_cow_cid(c, had) || memcmp(had, bin, sizeof(bin)))
		rc = vsm_cow_set_cid(c, bin);
	if (rc == 0)
		rc = vsm_cow_close(c);
	else
		vsm_cow_close(c);
	return rc;
}

int ck_header_cid(vsm_dstore *ds, const char *key, int format, char out[VSM_UUID_STRLEN + 1])
{
	uint8_t bin[VSM_COW_CID_LEN];
	vsm_cow *c = NULL;
	bool has;
	int rc;

	out[0] = '\0';
	if (format != VSM_FORMAT_QCOW2)
		return 0;
	if ((rc = ck_cow_open(&c, ds, key, format, true, true)) < 0)
		return rc;
	has = vsm_cow_cid(c, bin);
	vsm_cow_close(c);
	if (has)
		vsm_cow_cid_text(bin, out);
	return has ? 1 : 0;
}

void ck_stamp_layer(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r, const char *key)
{
	const vsm_rec_frozen *l = ck_layer(r, key);
	char had[VSM_UUID_STRLEN + 1];

	if (!l || !l->managed || !l->cid || l->format != VSM_FORMAT_QCOW2)
		return;
	if (ck_header_cid(ds, l->key, l->format, had) == 1 && !strcmp(had, l->cid))
		return;
	if (ck_stamp_cid(ds, l->key, l->format, l->cid) < 0) {
		vsm__log(ctx, VSM_LOG_WARN, "%s (its header keeps no content ID; chain copies "
			 "will copy it)", vsm_error_last()->message);
		vsm__error_reset();
	}
}

void ck_stamp_layers(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r)
{
	size_t i;

	for (i = 0; i < r->n_layers; i++)
		ck_stamp_layer(ctx, ds, r, r->layers[i].key);
}

int ck_layer_alloc(vsm_dstore *ds, const char *key, int format, uint64_t *out)
{
	vsm_cow *c = NULL;
	vsm_cow_info info;
	int rc;

	if ((rc = ck_cow_open(&c, ds, key, format, true, true)) < 0)
		return rc;
	rc = vsm_cow_get_info(c, &info);
	vsm_cow_close(c);
	if (rc == 0)
		*out = info.allocated_bytes;
	return rc;
}

bool ck_all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int ck_copy_view(vsm_cow *src, vsm_cow *dst, uint64_t *written)
{
	uint64_t size = vsm_cow_size(src), off = 0, pnum;
	uint8_t *buf = malloc(CK_CHUNK);
	int rc = 0;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	while (off < size && rc == 0) {
		vsm_cow_status st;
		uint64_t len = size - off < CK_CHUNK ? size - off : CK_CHUNK, p;

		if ((rc = vsm_cow_block_status(src, off, len, &pnum, &st)) < 0)
			break;
		if (pnum > len)
			pnum = len;
		if (st.data && !st.zero) {
			if ((rc = vsm_cow_read(src, buf, (size_t)pnum, off)) < 0)
				break;
			for (p = 0; p < pnum && rc == 0; p += 65536) {
				size_t n = (size_t)(pnum - p < 65536 ? pnum - p : 65536);

				if (ck_all_zero(buf + p, n))
					continue;
				rc = vsm_cow_write(dst, buf + p, n, off + p);
				if (written)
					*written += n;
			}
		}
		off += pnum;
	}
	free(buf);
	if (rc == 0)
		rc = vsm_cow_flush(dst);
	return rc;
}

int ck_rebase(vsm_dstore *ds, const char *key, const char *backing, int backing_format)
{
	vsm_bdev *b = NULL;
	char label[VSM_BACKEND_KEY_MAX + 64];
	int rc;

	if ((rc = vsm__ds_open_device(ds, key, 0, &b)) < 0)
		return rc;
	snprintf(label, sizeof(label), "datastore '%s': layer '%s'", ds->name, key);
	rc = vsm_cow_rebase_header(b, label, backing,
				   backing ? vsm_format_name(backing_format) : NULL);
	vsm_bdev_close(b);
	return rc;
}
