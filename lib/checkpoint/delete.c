/*
 * vsm_checkpoint_delete: dropping a checkpoint's entry in one record
 * write, then its state blob and the merges of the layers it froze.
 */
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "steps.h"

VSM_API int vsm_checkpoint_delete(vsm_container *c, const char *name, unsigned int flags)
{
	vsm_rec_checkpoint *cp;
	char *state_key = NULL, **saved = NULL, uuid[VSM_UUID_STRLEN + 1];
	size_t i, n_saved = 0;
	vsm__handle_stage *st = NULL;
	bool tidy = true;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!c || !name)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_delete: NULL argument");
	if (flags & ~VSM_CHECKPOINT_STOPPED)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_delete: unknown flags 0x%x", flags);
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	/* What an earlier delete of this context left goes first; it may
	 * rewrite records, so the copy to change is taken after it. */
	if ((rc = ck_fresh(c, &ds, &r)) < 0)
		goto out;
	ck_finish_left(ctx, ds);
	vsm_record_free(r);
	r = NULL;
	if ((rc = ck_fresh(c, &ds, &r)) < 0)
		goto out;
	if (!ck_find(r, name)) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name, name);
		goto out;
	}
	/* A stopped VM's devices are undeployed before the commit point, so
	 * that the merges after it may reach them. */
	if (flags & VSM_CHECKPOINT_STOPPED) {
		vsm_record_free(r);
		r = NULL;
		if ((rc = ck_undeploy_for(c, flags, &saved, &n_saved)) < 0 ||
		    (rc = ck_fresh(c, &ds, &r)) < 0)
			goto out;
	}
	if (!(cp = ck_find(r, name))) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name, name);
		goto out;
	}
	memcpy(uuid, r->uuid, sizeof(uuid));
	/* Drop the entry in one record write; the layers it froze become
	 * anonymous and the merges below tidy them up. */
	for (i = 0; i < r->n_ckpts; i++) {
		vsm_rec_checkpoint *k = &r->ckpts[i];

		if (k->parent && !strcmp(k->parent, name)) {
			free(k->parent);
			k->parent = NULL;
			if (cp->parent && !(k->parent = vsm__strdup(cp->parent))) {
				rc = -VSM_ENOMEM;
				goto out;
			}
		}
	}
	if (r->ckpt_current && !strcmp(r->ckpt_current, name)) {
		free(r->ckpt_current);
		r->ckpt_current = NULL;
		if (cp->parent && !(r->ckpt_current = vsm__strdup(cp->parent))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
	}
	state_key = cp->state_key;
	cp->state_key = NULL;
	{
		vsm_rec_checkpoint gone = *cp;
		size_t at = (size_t)(cp - r->ckpts);

		memmove(&r->ckpts[at], &r->ckpts[at + 1], (r->n_ckpts - at - 1) * sizeof(gone));
		r->n_ckpts--;
		cp = NULL;
		free(gone.name);
		free(gone.parent);
		for (i = 0; i < gone.n_layers; i++) {
			free(gone.layers[i].device);
			free(gone.layers[i].key);
		}
		free(gone.layers);
	}
	if ((rc = vsm__wf_begin(&wf, ctx, "checkpoint-delete", ds->name, r->name)) < 0)
		goto out;
	if ((state_key && (rc = vsm__wf_undo(&wf, CK_WF_DELETE_UNREF, state_key)) < 0) ||
	    (rc = vsm__container_stage(&st, c, r)) < 0 || (rc = ck_commit_record(ctx, ds, r)) < 0) {
		vsm__wf_abort(&wf);
		goto out;
	}
	/* Deleted. From here the journal entry finishes forward: the blob
	 * goes and the layers merge now, or with the journal entry later (a
	 * merge that failed before its own journal entry began would else be
	 * left to whichever call compacts next, if any). The undo step above
	 * stays right for an entry these redo steps did not reach. */
	if ((state_key && vsm__wf_redo(&wf, CK_WF_DELETE_UNREF, state_key) < 0) ||
	    vsm__wf_redo(&wf, CK_WF_COMPACT, uuid) < 0) {
		ck_warn(ctx, NULL);
		tidy = false;
	}
	if (state_key && ck_delete_unref(ctx, ds, state_key) < 0) {
		ck_warn(ctx, NULL);
		tidy = false;
	}
	vsm__log(ctx, VSM_LOG_INFO, "container '%s': checkpoint '%s' deleted", r->name, name);
	if (ck_compact_rounds(ctx, ds, uuid, (flags & VSM_CHECKPOINT_STOPPED) != 0) < 0) {
		ck_warn(ctx, NULL);
		tidy = false;
	}
	ck_wf_finish(ctx, &wf, tidy);
	vsm__container_apply(c, st);
	st = NULL;
out:
	free(state_key);
	vsm__container_unstage(st);
	vsm_record_free(r);
	if (n_saved)
		ck_redeploy(c, saved, n_saved);
	if (rc == 0)
		ck_refresh_or_warn(c);
	vsm__ctx_unlock(ctx);
	return rc;
}
