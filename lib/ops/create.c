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
#include "workflow.h"

/* --- validation --- */

static int check_opts(const vsm_container_opts *o, const char *name)
{
	size_t i, j;
	int rc;

	if (o->version == 0 || o->version > VSM_CONTAINER_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "container '%s': vsm_container_opts version %u is "
			       "not supported", name, o->version);
	if (o->flags & ~VSM_CONTAINER_CREATE_THIN)
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
		if (d->version == 0 || d->version > VSM_DEVICE_SPEC_VERSION)
			return vsm_err(VSM_EVERSION, "container '%s': vsm_device_spec version %u "
				       "is not supported", name, d->version);
		if ((rc = vsm__name_check("device", d->name)) < 0) {
			vsm__error_prefix("container '%s'", name);
			return rc;
		}
		if (d->size == 0 && !d->base)
			return vsm_err(VSM_EINVAL, "container '%s': device '%s' has size 0", name,
				       d->name);
		if (d->size > (UINT64_C(1) << 56))
			return vsm_err(VSM_EINVAL, "container '%s': device '%s' is larger than "
				       "64 PiB", name, d->name);
		if (!vsm_format_name(d->format))
			return vsm_err(VSM_EINVAL, "container '%s': device '%s' has unknown "
				       "format %d", name, d->name, d->format);
		if (d->base && d->format != VSM_FORMAT_QCOW2)
			return vsm_err(VSM_EINVAL, "container '%s': device '%s' has a base image, "
				       "so it must be qcow2", name, d->name);
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

/* A device's size and backing chain, resolved before anything is made:
 * with a base image the chain is the base and whatever it stands on. */
typedef struct {
	uint64_t size;
	vsm_rec_layer *chain;
	size_t chain_len;
} planned_device;

static int plan_device(vsm_dstore *ds, const char *container, const vsm_device_spec *d,
		       planned_device *p)
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
			  planned_device *p)
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

VSM_API int vsm_container_create(vsm_container **out, vsm_ctx *ctx, const char *datastore,
				 const char *name, const vsm_container_opts *opts)
{
	char key[VSM_BACKEND_KEY_MAX], dev_name[160];
	planned_device plan[64];
	vsm_record *r = NULL;
	vsm_container *h = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	uint64_t need, free_bytes = 0;
	size_t i, planned = 0;
	int rc;

	vsm__error_reset();
	if (!ctx || !datastore || !opts)
		return vsm_err(VSM_EINVAL, "vsm_container_create: NULL argument");
	if ((rc = vsm__name_check("container", name)) < 0 || (rc = check_opts(opts, name)) < 0)
		return rc;
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, datastore)) < 0 || (rc = vsm__ds_refresh(ctx, ds)) < 0)
		goto out;
	if (vsm__ds_find(ds, name, NULL)) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': container '%s' already exists",
			     datastore, name);
		goto out;
	}
	need = opts->state_size ? opts->state_size : DEFAULT_STATE_SIZE;
	for (i = 0; i < opts->n_devices; i++) {
		rc = plan_device(ds, name, opts->devices[i], &plan[i]);
		planned = i + 1;
		if (rc < 0)
			goto out;
		need += plan[i].size;
	}
	if (!(opts->flags & VSM_CONTAINER_CREATE_THIN)) {
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
	vsm__uuid_new(r->uuid);
	r->ctime = (int64_t)time(NULL);
	r->state_size = opts->state_size ? opts->state_size : DEFAULT_STATE_SIZE;

	if ((rc = vsm__wf_begin(&wf, ctx, "container-create", datastore, name)) < 0)
		goto out;
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
	 * two hosts creating it at once, one gets EEXISTS and rolls back. */
	/* Until the journal forgets the steps, a failure (or the next
	 * context) removes it all again: forgetting them is the commit point,
	 * so the handle is made before it. */
	if ((rc = vsm__wf_undo(&wf, VSM_WF_UUID_FREE, r->uuid)) < 0 ||
	    (rc = vsm__ds_insert_record(ctx, ds, r)) < 0 ||
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
out:
	vsm_container_free(h);
	for (i = 0; i < planned; i++)
		vsm__layers_free(plan[i].chain, plan[i].chain_len);
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}
