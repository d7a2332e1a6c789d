/*
 * Container create: validate the options, plan the devices, make them
 * under the journal, claim the name last (the record's insert), so that a
 * failure or a lost race deletes what was made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "becall.h"
#include "container_int.h"
#include "devimage.h"
#include "lease.h"
#include "reserve.h"
#include "workflow.h"

/* --- validation --- */

int vsm__device_spec_check(const char *container, const vsm_device_spec *d)
{
	int rc;

	if (d->version == 0 || d->version > VSM_DEVICE_SPEC_VERSION)
		return vsm_err(VSM_EVERSION, "container '%s': vsm_device_spec version %u "
			       "is not supported", container, d->version);
	if ((rc = vsm__name_check("device", d->name)) < 0) {
		vsm__error_prefix("container '%s'", container);
		return rc;
	}
	if (d->size == 0 && !d->base)
		return vsm_err(VSM_EINVAL, "container '%s': device '%s' has size 0", container,
			       d->name);
	if (d->size > (UINT64_C(1) << 56))
		return vsm_err(VSM_EINVAL, "container '%s': device '%s' is larger than "
			       "64 PiB", container, d->name);
	if (!vsm_format_name(d->format))
		return vsm_err(VSM_EINVAL, "container '%s': device '%s' has unknown "
			       "format %d", container, d->name, d->format);
	if (d->base && d->format != VSM_FORMAT_QCOW2)
		return vsm_err(VSM_EINVAL, "container '%s': device '%s' has a base image, "
			       "so it must be qcow2", container, d->name);
	return 0;
}

static int check_opts(const vsm_container_opts *o, const char *name)
{
	size_t i, j;
	int rc;

	if (o->version == 0 || o->version > VSM_CONTAINER_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "container '%s': vsm_container_opts version %u is "
			       "not supported", name, o->version);
	if (o->flags & ~(VSM_CONTAINER_CREATE_THIN | VSM_CONTAINER_CREATE_PLACE))
		return vsm_err(VSM_EINVAL, "container '%s': unknown flags 0x%x", name, o->flags);
	if (o->n_devices == 0 || !o->devices)
		return vsm_err(VSM_EINVAL, "container '%s' needs at least one device", name);
	if (o->n_devices > 64)
		return vsm_err(VSM_EINVAL, "container '%s': %zu devices is more than 64", name,
			       o->n_devices);
	for (i = 0; i < o->n_devices; i++) {
		const vsm_device_spec *d = o->devices[i];

		if (!d)
			return vsm_err(VSM_EINVAL, "container '%s': device %zu is NULL", name, i);
		if ((rc = vsm__device_spec_check(name, d)) < 0)
			return rc;
		for (j = 0; j < i; j++)
			if (!strcmp(o->devices[j]->name, d->name))
				return vsm_err(VSM_EEXISTS, "container '%s': device '%s' is given "
					       "twice", name, d->name);
	}
	return 0;
}

/* --- create --- */

/* Create one backend device under the journal: the undo step is written
 * with the name before the device exists, then updated with its key. */
static int create_device(vsm_wf *wf, vsm_dstore *ds, const char *dev_name,
			 uint64_t size, const char *format, const vsm_rec_layer *base,
			 unsigned int flags, char key[VSM_BACKEND_KEY_MAX])
{
	return vsm__dev_create(wf, VSM_WF_DEVICE_DELETE, ds, dev_name, size, format,
			       base ? base->key : NULL,
			       base ? vsm_format_name(base->format) : NULL, flags, key);
}

int vsm__device_plan(vsm_dstore *ds, const char *container, const vsm_device_spec *d,
		       vsm__planned_device *p)
{
	vsm_rec_layer *below = NULL;
	uint64_t base_size = 0;
	size_t n = 0;
	int fmt = VSM_FORMAT_RAW, rc;

	memset(p, 0, sizeof(*p));
	p->size = d->size;
	if (!d->base)
		return 0;
	if ((rc = vsm__dev_probe(ds, d->base, NULL, &base_size, &fmt, &below, &n)) < 0) {
		vsm__error_prefix("container '%s': device '%s': base image '%s'", container,
				  d->name, d->base);
		return rc;
	}
	if (!(p->chain = vsm__calloc(n + 1, sizeof(*p->chain))) ||
	    !(p->chain[0].key = vsm__strdup(d->base))) {
		vsm__layers_free(below, n);
		return -VSM_ENOMEM;
	}
	p->chain[0].format = fmt;
	if (n)
		memcpy(&p->chain[1], below, n * sizeof(*below));
	free(below);
	p->chain_len = n + 1;
	if (p->size == 0)
		p->size = base_size;
	if (p->size < base_size)
		return vsm_err(VSM_EINVAL, "container '%s': device '%s' (%llu bytes) is smaller "
			       "than its base image '%s' (%llu bytes)", container, d->name,
			       (unsigned long long)p->size, d->base,
			       (unsigned long long)base_size);
	return 0;
}

/* The record takes over @p's chain. */
static int rec_add_device(vsm_record *r, const char *name, const char *key, int format,
			  vsm__planned_device *p)
{
	vsm_rec_device *d = &r->devices[r->n_devices];

	memset(d, 0, sizeof(*d));
	r->n_devices++;
	d->size = p->size;
	d->format = format;
	d->chain = p->chain;
	d->chain_len = p->chain_len;
	p->chain = NULL;
	p->chain_len = 0;
	if (!(d->name = vsm__strdup(name)) || !(d->key = vsm__strdup(key)))
		return -VSM_ENOMEM;
	return 0;
}

/* The commit of a create in reserved space: the container's record
 * replaces the reservation in its slot (same uuid), under the lock. A
 * reservation that expired and was swept meanwhile is replaced by a new
 * insert only if its bytes still fit. */
static int commit_reserved(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r, vsm_reservation *res)
{
	char a[32], b[32];
	vsm_record *cur;
	vsm__space sp;
	int rc;

	if ((rc = vsm__ds_change_begin(ctx, ds)) < 0)
		return rc;
	cur = vsm__ds_find(ds, NULL, res->uuid);
	if (vsm__resv_is(res, cur)) {
		r->slot = cur->slot;
		r->seq = cur->seq;
		free(r->cont);
		r->cont = NULL;
		r->n_cont = 0;
		rc = vsm__ds_put_record(ctx, ds, r);
	} else if (cur) {
		rc = vsm_err(VSM_EBUSY, "datastore '%s': container '%s': the reservation's "
			     "record was replaced by another", ds->name, r->name);
	} else if ((rc = vsm__space_live(ctx, ds, &sp)) == 0) {
		if (vsm__space_fits(&sp, res->bytes, res->thick))
			rc = vsm__ds_insert_record(ctx, ds, r);
		else
			rc = vsm_err(VSM_ENOSPC, "datastore '%s': container '%s': its reservation "
				     "expired and the space is gone (needs %s, %s available)",
				     ds->name, r->name, vsm__space_fmt(a, sizeof(a), res->bytes),
				     vsm__space_fmt(b, sizeof(b), vsm__space_available(&sp)));
	}
	vsm__ds_change_end(ctx, ds);
	if (rc == 0)
		res->done = true;
	return rc;
}

/* Both creates: in @res's space when given (then @datastore and @name
 * are the reservation's), else wherever @datastore has room. */
static int create(vsm_container **out, vsm_ctx *ctx, const char *datastore, const char *name,
		  const vsm_container_opts *opts, vsm_reservation *res)
{
	char key[VSM_BACKEND_KEY_MAX], dev_name[160], a[32], b[32];
	vsm__planned_device plan[64];
	uint64_t sizes[64];
	vsm_record *r = NULL, *held;
	vsm_container *h = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	uint64_t need, free_bytes = 0;
	bool thick = !(opts->flags & VSM_CONTAINER_CREATE_THIN);
	size_t i, planned = 0;
	int rc;

	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, datastore)) < 0 || (rc = vsm__ds_refresh(ctx, ds)) < 0)
		goto out;
	if ((held = vsm__ds_find(ds, name, NULL)) && !(res && vsm__resv_is(res, held))) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': container '%s' already exists%s",
			     datastore, name, held->resv ? " (reserved by a placement in "
			     "progress)" : "");
		goto out;
	}
	need = opts->state_size ? opts->state_size : DEFAULT_STATE_SIZE;
	for (i = 0; i < opts->n_devices; i++) {
		rc = vsm__device_plan(ds, name, opts->devices[i], &plan[i]);
		planned = i + 1;
		if (rc < 0)
			goto out;
		need += plan[i].size;
		sizes[i] = plan[i].size;
	}
	if (res) {
		/* The reservation stands for the free-space check. */
		uint64_t want = vsm__space_need(thick, opts->state_size, sizes, opts->n_devices);

		if (thick != res->thick || want > res->bytes) {
			rc = vsm_err(VSM_EINVAL, "datastore '%s': container '%s' needs %s (%s) but "
				     "its reservation holds %s (%s)", datastore, name,
				     vsm__space_fmt(a, sizeof(a), want), thick ? "thick" : "thin",
				     vsm__space_fmt(b, sizeof(b), res->bytes),
				     res->thick ? "thick" : "thin");
			goto out;
		}
	} else if (thick) {
		if ((rc = vsm__be_capacity(ds, NULL, &free_bytes)) < 0) {
			vsm__error_prefix("datastore '%s'", datastore);
			goto out;
		}
		if (need > free_bytes) {
			rc = vsm_err(VSM_ENOSPC, "datastore '%s': container '%s' needs %llu bytes "
				     "but only %llu are free (ask for thin provisioning to "
				     "overcommit)", datastore, name, (unsigned long long)need,
				     (unsigned long long)free_bytes);
			goto out;
		}
	}
	if (!(r = vsm__calloc(1, sizeof(*r))) ||
	    !(r->devices = vsm__calloc(opts->n_devices, sizeof(*r->devices))) ||
	    !(r->name = vsm__strdup(name))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if (res)
		memcpy(r->uuid, res->uuid, sizeof(r->uuid));
	else
		vsm__uuid_new(r->uuid);
	r->ctime = (int64_t)time(NULL);
	r->state_size = opts->state_size ? opts->state_size : DEFAULT_STATE_SIZE;
	r->thick = thick;

	if ((rc = vsm__wf_begin(&wf, ctx, "container-create", datastore, name)) < 0)
		goto out;
	/* In reserved space the slot holding our uuid is the reservation:
	 * from here a failure (or a crash, through the next context's
	 * recovery) frees it with whatever was made. */
	if (res && (rc = vsm__wf_undo(&wf, VSM_WF_UUID_FREE, r->uuid)) < 0)
		goto abort;
	for (i = 0; i < opts->n_devices; i++) {
		const vsm_device_spec *d = opts->devices[i];

		snprintf(dev_name, sizeof(dev_name), "%s-%s.%s", r->uuid, d->name,
			 vsm_format_name(d->format));
		if ((rc = create_device(&wf, ds, dev_name, plan[i].size, vsm_format_name(d->format),
					plan[i].chain_len ? &plan[i].chain[0] : NULL,
					VSM_BACKEND_DEVICE_THIN, key)) < 0 ||
		    (rc = rec_add_device(r, d->name, key, d->format, &plan[i])) < 0)
			goto abort;
	}
	snprintf(dev_name, sizeof(dev_name), "%s.state", r->uuid);
	if ((rc = create_device(&wf, ds, dev_name, r->state_size, "raw", NULL,
				VSM_BACKEND_DEVICE_THIN, key)) < 0)
		goto abort;
	if (!(r->state_key = vsm__strdup(key))) {
		rc = -VSM_ENOMEM;
		goto abort;
	}
	/* The name is claimed here, under the datastore's metadata lock: of
	 * two hosts creating it at once, one gets EEXISTS and rolls back.
	 * (In reserved space the name was claimed by the reservation.) */
	/* Until the journal forgets the steps, a failure (or the next
	 * context) removes it all again: forgetting them is the commit point,
	 * so the handle is made before it. */
	if ((!res && (rc = vsm__wf_undo(&wf, VSM_WF_UUID_FREE, r->uuid)) < 0) ||
	    (rc = res ? commit_reserved(ctx, ds, r, res) : vsm__ds_insert_record(ctx, ds, r)) < 0 ||
	    (out && (rc = vsm__handle_new(&h, ctx, datastore, r)) < 0) ||
	    (rc = vsm__wf_end(&wf)) < 0)
		goto abort;
	vsm__log(ctx, VSM_LOG_INFO, "datastore '%s': container '%s' created (%s)", datastore,
		 name, r->uuid);
	if (out) {
		*out = h;
		h = NULL;
	}
	goto out;
abort:
	vsm__wf_abort(&wf);
	if (res)
		res->done = false; /* the undo freed the slot: abort finds it gone */
out:
	vsm_container_free(h);
	for (i = 0; i < planned; i++)
		vsm__layers_free(plan[i].chain, plan[i].chain_len);
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_container_create_reserved(vsm_container **out, vsm_reservation *res,
					  const vsm_container_opts *opts)
{
	vsm__saved_error saved;
	int rc;

	vsm__error_reset();
	if (!res || !opts)
		return vsm_err(VSM_EINVAL, "vsm_container_create_reserved: NULL argument");
	if (res->done)
		return vsm_err(VSM_EINVAL, "container '%s': its reservation on datastore '%s' "
			       "was used or aborted already", res->name, res->datastore);
	if ((rc = check_opts(opts, res->name)) == 0)
		rc = create(out, res->ctx, res->datastore, res->name, opts, res);
	if (rc < 0) {
		/* A failed create leaves no reservation behind. */
		vsm__error_save(&saved);
		if (vsm_reservation_abort(res) < 0)
			vsm__log(res->ctx, VSM_LOG_WARN, "datastore '%s': reservation for '%s' "
				 "not freed (%s); it expires by itself", res->datastore,
				 res->name, vsm_error_last()->message);
		res->done = true;
		vsm__error_restore(&saved);
	}
	return rc;
}

/* vsm_container_create with VSM_CONTAINER_CREATE_PLACE: phase 1 and its
 * reservation through the hook lib/open.c set, then the create there. */
static int create_placed(vsm_container **out, vsm_ctx *ctx, const char *datastore,
			 const char *name, const vsm_container_opts *opts)
{
	vsm_place_request req = VSM_PLACE_REQUEST_INIT;
	vsm_reservation *res = NULL;
	const char *only[1] = { datastore };
	int rc;

	if (!ctx->place_reserve)
		return vsm_err(VSM_ENOTSUP, "container '%s': placement is not available in this "
			       "context", name);
	req.devices = opts->devices;
	req.n_devices = opts->n_devices;
	req.state_size = opts->state_size;
	req.flags = (opts->flags & VSM_CONTAINER_CREATE_THIN) ? VSM_PLACE_THIN : 0;
	if (datastore) {
		req.datastores = only;
		req.n_datastores = 1;
	}
	if ((rc = ctx->place_reserve(&res, ctx, name, &req)) < 0)
		return rc;
	rc = create(out, ctx, res->datastore, name, opts, res);
	if (rc < 0) {
		vsm__saved_error saved;

		vsm__error_save(&saved);
		vsm_reservation_abort(res);
		vsm__error_restore(&saved);
		res->done = true;
	}
	vsm_reservation_free(res);
	return rc;
}

VSM_API int vsm_container_create(vsm_container **out, vsm_ctx *ctx, const char *datastore,
				 const char *name, const vsm_container_opts *opts)
{
	int rc;

	vsm__error_reset();
	if (!ctx || !opts || (!datastore && !(opts->flags & VSM_CONTAINER_CREATE_PLACE)))
		return vsm_err(VSM_EINVAL, "vsm_container_create: NULL argument");
	if ((rc = vsm__name_check("container", name)) < 0 || (rc = check_opts(opts, name)) < 0)
		return rc;
	if (opts->flags & VSM_CONTAINER_CREATE_PLACE) {
		vsm__ctx_lock(ctx);
		rc = create_placed(out, ctx, datastore && strcmp(datastore, "auto") ? datastore :
				   NULL, name, opts);
		vsm__ctx_unlock(ctx);
		return rc;
	}
	return create(out, ctx, datastore, name, opts, NULL);
}
