/*
 * vsm_checkpoint_create: freezing every device's top as a table layer
 * under a new overlay, the state blob, and the new checkpoint entry.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "becall.h"
#include "ckpt.h"
#include "steps.h"

static int state_size_of(const vsm_checkpoint_opts *o, uint64_t *out)
{
	struct stat st;

	*out = 0;
	if (o->state_fd < 0 && !o->state_read)
		return 0;
	if (o->state_fd >= 0 && o->state_read)
		return vsm_err(VSM_EINVAL, "give the state blob as an fd or a callback, not both");
	if (o->state_size) {
		*out = o->state_size;
		return 0;
	}
	if (o->state_fd >= 0 && fstat(o->state_fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t pos = lseek(o->state_fd, 0, SEEK_CUR);

		*out = (uint64_t)st.st_size - (pos > 0 ? (uint64_t)pos : 0);
		return 0;
	}
	*out = STATE_UNKNOWN; /* read to the end; needs a resizable device */
	return 0;
}

/* Freeze @d's top as a table layer with a new content ID and put @top
 * (an overlay on it) in its place. */
static int freeze(vsm_record *r, vsm_rec_device *d, const char *top)
{
	vsm_rec_frozen l = {0};
	vsm_rec_layer *chain;
	char cid[VSM_UUID_STRLEN + 1], *k;
	int rc;

	vsm__uuid_new(cid);
	l.key = d->key;
	l.format = d->format;
	l.backing = d->chain_len ? d->chain[0].key : NULL;
	l.backing_format = d->chain_len ? d->chain[0].format : 0;
	l.cid = cid;
	l.managed = true;
	if ((rc = ck_layer_put(r, &l)) < 0)
		return rc;
	if (!(k = vsm__strdup(top)) ||
	    !(chain = realloc(d->chain, (d->chain_len + 1) * sizeof(*chain)))) {
		free(k);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	memmove(&chain[1], &chain[0], d->chain_len * sizeof(*chain));
	chain[0].key = d->key;
	chain[0].format = d->format;
	d->chain = chain;
	d->chain_len++;
	d->key = k;
	d->format = VSM_FORMAT_QCOW2;
	return 0;
}

static int ckpt_append(vsm_record *r, const char *name, const char *state_key,
		       uint64_t state_size, uint64_t sum, char **frozen, const char *point)
{
	vsm_rec_checkpoint *grown, *c;
	size_t i;

	if (!(grown = realloc(r->ckpts, (r->n_ckpts + 1) * sizeof(*grown))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	r->ckpts = grown;
	c = &r->ckpts[r->n_ckpts++];
	memset(c, 0, sizeof(*c));
	c->ctime = (int64_t)time(NULL);
	c->state_size = state_key ? state_size : 0;
	c->state_sum = sum;
	if (point)
		memcpy(c->point, point, VSM_UUID_STRLEN + 1);
	if (!(c->name = vsm__strdup(name)) ||
	    (r->ckpt_current && !(c->parent = vsm__strdup(r->ckpt_current))) ||
	    (state_key && !(c->state_key = vsm__strdup(state_key))) ||
	    !(c->layers = vsm__calloc(r->n_devices, sizeof(*c->layers))))
		return -VSM_ENOMEM;
	for (i = 0; i < r->n_devices; i++) {
		c->n_layers = i + 1;
		if (!(c->layers[i].device = vsm__strdup(r->devices[i].name)) ||
		    !(c->layers[i].key = vsm__strdup(frozen[i])))
			return -VSM_ENOMEM;
	}
	free(r->ckpt_current);
	return (r->ckpt_current = vsm__strdup(name)) ? 0 : -VSM_ENOMEM;
}

VSM_API int vsm_checkpoint_create(vsm_checkpoint **out, vsm_container *c, const char *name,
				  const vsm_checkpoint_opts *opts)
{
	return ck_create(out, c, name, opts, NULL);
}

int ck_create(vsm_checkpoint **out, vsm_container *c, const char *name,
	      const vsm_checkpoint_opts *opts, const char *point)
{
	vsm_checkpoint_opts defaults = VSM_CHECKPOINT_OPTS_INIT;
	char key[VSM_BACKEND_KEY_MAX], state_key[VSM_BACKEND_KEY_MAX] = "";
	char dev_name[VSM_BACKEND_KEY_MAX], *frozen[64] = {0}, **saved = NULL;
	uint64_t size = 0, sum = 0;
	size_t i, n_saved = 0;
	vsm_checkpoint *cp = NULL;
	vsm__handle_stage *st = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!c)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_create: NULL argument");
	if (point && !vsm__uuid_valid(point))
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_create: bad backup point ID");
	if (!opts)
		opts = &defaults;
	if ((rc = vsm__name_check("checkpoint", name)) < 0 ||
	    (rc = ck_check_opts_version(opts->version, VSM_CHECKPOINT_OPTS_VERSION,
				     "vsm_checkpoint_opts")) < 0)
		return rc;
	if (opts->flags & ~VSM_CHECKPOINT_STOPPED)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_create: unknown flags 0x%x", opts->flags);
	if ((rc = state_size_of(opts, &size)) < 0)
		return rc;
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = ck_fresh(c, &ds, &r)) < 0)
		goto out;
	if (ck_find(r, name)) {
		rc = vsm_err(VSM_EEXISTS, "container '%s': checkpoint '%s' already exists",
			     r->name, name);
		goto out;
	}
	if (r->n_devices > 64) {
		rc = vsm_err(VSM_EINVAL, "container '%s' has too many devices", r->name);
		goto out;
	}
	vsm_record_free(r);
	r = NULL;
	if ((rc = ck_undeploy_for(c, opts->flags, &saved, &n_saved)) < 0 ||
	    (rc = ck_fresh(c, &ds, &r)) < 0 || (rc = ck_table_fill(ds, r)) < 0)
		goto out;
	if ((rc = vsm__wf_begin(&wf, ctx, "checkpoint-create", ds->name, r->name)) < 0)
		goto out;
	if (size == STATE_UNKNOWN && !vsm__be_can_resize(ds)) {
		rc = vsm_err(VSM_ENOTSUP, "datastore '%s' cannot grow a device: give the size of "
			     "the state blob (state_size)", ds->name);
		goto abort;
	}
	if ((opts->state_fd >= 0 || opts->state_read) &&
	    (rc = ck_state_in(&wf, ds, r->uuid, opts->state_fd, opts->state_read,
			   opts->state_payload, &size, state_key, &sum)) < 0)
		goto abort;
	for (i = 0; i < r->n_devices; i++) {
		vsm_rec_device *d = &r->devices[i];

		ck_name(dev_name, sizeof(dev_name), r->uuid, d->name, "qcow2");
		if ((rc = ck_device_create(&wf, ds, dev_name, d->size, "qcow2", d->key, d->format,
					   key)) < 0)
			goto abort;
		if (!(frozen[i] = vsm__strdup(d->key)) || (rc = freeze(r, d, key)) < 0) {
			rc = rc < 0 ? rc : -VSM_ENOMEM;
			goto abort;
		}
	}
	/* Everything the caller gets is made before the commit point. */
	if ((rc = ckpt_append(r, name, state_key[0] ? state_key : NULL, size, sum, frozen,
				point)) < 0 ||
	    (out && (rc = ck_handle_new(&cp, ds, r, ck_find(r, name))) < 0) ||
	    (rc = vsm__container_stage(&st, c, r)) < 0 ||
	    (rc = ck_commit_record(ctx, ds, r)) < 0)
		goto abort;
	ck_wf_finish(ctx, &wf, true);
	/* After the commit point (no writer holds the old tops: they were
	 * undeployed): the frozen layers carry the record's content IDs. */
	for (i = 0; i < r->n_devices; i++)
		ck_stamp_layer(ctx, ds, r, frozen[i]);
	vsm__log(ctx, VSM_LOG_INFO, "container '%s': checkpoint '%s' created", r->name, name);
	vsm__container_apply(c, st);
	st = NULL;
	if (out) {
		*out = cp;
		cp = NULL;
	}
	goto out;
abort:
	vsm__wf_abort(&wf);
out:
	for (i = 0; i < 64; i++)
		free(frozen[i]);
	vsm_checkpoint_free(cp);
	vsm__container_unstage(st);
	vsm_record_free(r);
	if (n_saved)
		ck_redeploy(c, saved, n_saved);
	vsm__ctx_unlock(ctx);
	return rc;
}

int ck_point_of(vsm_container *c, const char *name, char point[VSM_UUID_STRLEN + 1])
{
	vsm__handle_stage *st = NULL;
	vsm_rec_checkpoint *cp;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_ctx *ctx = vsm__container_ctx(c);
	int rc;

	vsm__ctx_lock(ctx);
	if ((rc = ck_fresh(c, &ds, &r)) < 0)
		goto out;
	if (!(cp = ck_find(r, name))) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name, name);
		goto out;
	}
	if (!cp->point[0]) {
		/* One record write: a concurrent change of the record makes it
		 * fail (its sequence number moved) rather than be lost. */
		vsm__uuid_new(cp->point);
		if ((rc = vsm__container_stage(&st, c, r)) < 0 ||
		    (rc = ck_commit_record(ctx, ds, r)) < 0)
			goto out;
		vsm__container_apply(c, st);
		st = NULL;
	}
	memcpy(point, cp->point, VSM_UUID_STRLEN + 1);
out:
	vsm__container_unstage(st);
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}
