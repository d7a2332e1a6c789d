/*
 * What lib/open.c registers for the checkpoint module: its journal
 * actions (every "ckpt_" step) and its part of a container destroy.
 */
#include <string.h>

#include "becall.h"
#include "ckpt.h"

/* --- journal actions (workflow.c hands us every "ckpt_" step) --- */

int vsm__ckpt_wf_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action, const char *arg)
{
	if (!strcmp(action, CK_WF_DELETE_UNREF))
		return ck_delete_unref(ctx, ds, arg);
	if (!strcmp(action, CK_WF_COMPACT)) {
		if (!vsm__uuid_valid(arg))
			return vsm_err(VSM_ECORRUPT, "journal step argument '%s' is malformed", arg);
		return ck_compact_rounds(ctx, ds, arg, false);
	}
	if (!strcmp(action, CK_WF_MERGE)) {
		char t[VSM_BACKEND_KEY_MAX], x[VSM_BACKEND_KEY_MAX], dir[16], cid[40];
		const char *p = arg;

		if (!ck_merge_arg_get(&p, t, sizeof(t)) || !ck_merge_arg_get(&p, x, sizeof(x)) ||
		    !ck_merge_arg_get(&p, dir, sizeof(dir)) ||
		    !ck_merge_arg_get(&p, cid, sizeof(cid)) || *p ||
		    (strcmp(dir, "commit") && strcmp(dir, "stream")) || !vsm__uuid_valid(cid))
			return vsm_err(VSM_ECORRUPT, "journal step argument '%s' is malformed", arg);
		return ck_merge(ctx, ds, t, x, dir, cid, true);
	}
	return vsm_err(VSM_ECORRUPT, "journal names unknown action '%s'", action);
}

/* Container destroy: blobs and layers only this record read go with it;
 * layers a linked clone still reads stay, and are merged into it. */
int vsm__ckpt_destroy_hook(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r, bool after)
{
	ck_recs rs;
	size_t i, j;
	int rc;

	if (after)
		return ck_compact(ctx, ds, NULL, false) < 0 ? (vsm__error_reset(), 0) : 0;
	if (!r->n_ckpts && !r->n_layers)
		return 0;
	if ((rc = ck_recs_load(&rs, ctx, ds)) < 0)
		return rc;
	for (i = 0; i < rs.n; i++)
		if (!strcmp(rs.v[i]->uuid, r->uuid))
			rs.v[i]->destroying = true; /* reads nothing any more */
	for (i = 0; i < r->n_ckpts && rc == 0; i++)
		if (r->ckpts[i].state_key && !ck_referenced(&rs, r->ckpts[i].state_key)) {
			rc = vsm__be_device_delete(ds, r->ckpts[i].state_key, 0);
			if (rc == -VSM_ENOTFOUND) {
				vsm__error_reset();
				rc = 0;
			}
		}
	/* The destroyed record counts for nothing (it is marked destroying),
	 * so a layer goes when no other record names it: not in a chain, a
	 * checkpoint, a table's backing link, nor its own table. */
	for (i = 0; i < r->n_layers && rc == 0; i++) {
		const vsm_rec_frozen *l = &r->layers[i];
		bool others = false;

		if (!l->managed)
			continue;
		for (j = 0; j < rs.n; j++)
			if (strcmp(rs.v[j]->uuid, r->uuid) && ck_layer(rs.v[j], l->key))
				others = true;
		if (others || ck_referenced(&rs, l->key))
			continue;
		rc = vsm__be_device_delete(ds, l->key, 0);
		if (rc == -VSM_ENOTFOUND) {
			vsm__error_reset();
			rc = 0;
		}
	}
	ck_recs_free(&rs);
	if (rc < 0)
		vsm__error_prefix("datastore '%s': destroying container '%s'", ds->name, r->name);
	return rc;
}
