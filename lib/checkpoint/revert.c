/*
 * vsm_checkpoint_revert: new tops over a checkpoint's layers, the old
 * tops deleted after the commit point. Also pointing a device at a new
 * top over a frozen layer, which clone uses too.
 */
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "devimage.h"
#include "steps.h"

const char *ck_layer_for(const vsm_rec_checkpoint *cp, const char *device)
{
	size_t i;

	for (i = 0; i < cp->n_layers; i++)
		if (!strcmp(cp->layers[i].device, device))
			return cp->layers[i].key;
	return NULL;
}

/* Point @d at @top standing on frozen layer @base (chain from @r's table). */
int ck_set_top(vsm_record *r, vsm_rec_device *d, const char *top, const char *base)
{
	const vsm_rec_frozen *l = ck_layer(r, base);
	vsm_rec_layer *below = NULL, *chain;
	size_t n = 0;
	char *k;
	int rc;

	if (!l)
		return vsm_err(VSM_ECORRUPT, "container '%s': layer '%s' is not in its layer "
			       "table", r->name, base);
	if ((rc = ck_chain_of(r, base, &below, &n)) < 0)
		return rc;
	if (!(chain = vsm__calloc(n + 1, sizeof(*chain))) || !(k = vsm__strdup(top)) ||
	    !(chain[0].key = vsm__strdup(base))) {
		if (chain)
			free(chain[0].key);
		free(chain);
		vsm__layers_free(below, n);
		return -VSM_ENOMEM;
	}
	chain[0].format = l->format;
	if (n)
		memcpy(&chain[1], below, n * sizeof(*below));
	free(below);
	vsm__layers_free(d->chain, d->chain_len);
	free(d->key);
	d->key = k;
	d->format = VSM_FORMAT_QCOW2;
	d->chain = chain;
	d->chain_len = n + 1;
	return 0;
}

VSM_API int vsm_checkpoint_revert(vsm_container *c, const char *name,
				  const vsm_revert_opts *opts)
{
	vsm_revert_opts defaults = VSM_REVERT_OPTS_INIT;
	char key[VSM_BACKEND_KEY_MAX], dev_name[VSM_BACKEND_KEY_MAX];
	char *old[64] = {0}, **saved = NULL;
	const vsm_rec_checkpoint *cp;
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
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_revert: NULL argument");
	if (!opts)
		opts = &defaults;
	if ((rc = ck_check_opts_version(opts->version, VSM_REVERT_OPTS_VERSION,
				     "vsm_revert_opts")) < 0)
		return rc;
	if (opts->flags & ~VSM_CHECKPOINT_STOPPED)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_revert: unknown flags 0x%x", opts->flags);
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = ck_fresh(c, &ds, &r)) < 0)
		goto out;
	if (!ck_find(r, name)) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name, name);
		goto out;
	}
	vsm_record_free(r);
	r = NULL;
	if ((rc = ck_undeploy_for(c, opts->flags, &saved, &n_saved)) < 0 ||
	    (rc = ck_fresh(c, &ds, &r)) < 0)
		goto out;
	/* The blob goes out before the switch, which is the last thing
	 * that may fail; the caller drops it if the call fails. */
	if (!(cp = ck_find(r, name))) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name, name);
		goto out;
	}
	if ((opts->state_fd >= 0 || opts->state_write) &&
	    (rc = ck_state_out(ds, r->name, cp, opts->state_fd, opts->state_write,
			    opts->state_payload)) < 0)
		goto out;
	if ((rc = vsm__wf_begin(&wf, ctx, "checkpoint-revert", ds->name, r->name)) < 0)
		goto out;
	for (i = 0; i < r->n_devices && i < 64; i++) {
		vsm_rec_device *d = &r->devices[i];
		const char *base = ck_layer_for(cp, d->name);
		const vsm_rec_frozen *l = ck_layer(r, base);

		if (!base || !l) {
			rc = vsm_err(VSM_ECORRUPT, "container '%s': checkpoint '%s' has no layer for "
				     "device '%s'", r->name, name, d->name);
			goto abort;
		}
		ck_name(dev_name, sizeof(dev_name), r->uuid, d->name, "qcow2");
		if ((rc = ck_device_create(&wf, ds, dev_name, d->size, "qcow2", base, l->format,
					   key)) < 0)
			goto abort;
		/* The old top goes once the record no longer names it. */
		if (!(old[i] = vsm__strdup(d->key)) ||
		    (rc = vsm__wf_undo(&wf, CK_WF_DELETE_UNREF, d->key)) < 0 ||
		    (rc = ck_set_top(r, d, key, base)) < 0) {
			rc = rc < 0 ? rc : -VSM_ENOMEM;
			goto abort;
		}
	}
	free(r->ckpt_current);
	if (!(r->ckpt_current = vsm__strdup(name))) {
		rc = -VSM_ENOMEM;
		goto abort;
	}
	if ((rc = vsm__container_stage(&st, c, r)) < 0 || (rc = ck_commit_record(ctx, ds, r)) < 0)
		goto abort;
	/* Reverted. The old tops go now, or with the journal entry later. */
	for (i = 0; i < 64 && old[i]; i++)
		if (ck_delete_unref(ctx, ds, old[i]) < 0) {
			ck_warn(ctx, NULL);
			tidy = false;
		}
	ck_wf_finish(ctx, &wf, tidy);
	vsm__log(ctx, VSM_LOG_INFO, "container '%s': reverted to checkpoint '%s'", r->name, name);
	if (ck_compact(ctx, ds, r->uuid, false) < 0)
		ck_warn(ctx, NULL);
	vsm__container_apply(c, st);
	st = NULL;
	goto out;
abort:
	vsm__wf_abort(&wf);
out:
	for (i = 0; i < 64; i++)
		free(old[i]);
	vsm__container_unstage(st);
	vsm_record_free(r);
	if (n_saved)
		ck_redeploy(c, saved, n_saved);
	if (rc == 0)
		ck_refresh_or_warn(c);
	vsm__ctx_unlock(ctx);
	return rc;
}
