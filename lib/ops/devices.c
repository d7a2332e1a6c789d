/*
 * The devices of an existing container: add, remove, resize, with their
 * journal actions. Every record change is made under the datastore's
 * metadata lock against the record as it is on the datastore then, so
 * that changes by other processes to the same container are never lost.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "becall.h"
#include "container_int.h"
#include "bdev.h"
#include "cow.h"
#include "devimage.h"
#include "workflow.h"

/* The device's storage, unless the container's record names it: the undo
 * of an add (before its record write, the device is nobody's) and the
 * finish of a remove (after its record write, the device is nobody's).
 * A record still naming it means the add committed, or the remove did
 * not: either way the device stays. */
static int delete_unreferenced(vsm_ctx *ctx, vsm_dstore *ds, const char *uuid,
			       const char *key)
{
	const vsm_record *r;
	size_t i;
	int rc;

	if ((rc = vsm__ds_change_begin(ctx, ds)) < 0)
		return rc;
	if ((r = vsm__ds_find(ds, NULL, uuid)))
		for (i = 0; i < r->n_devices; i++)
			if (!strcmp(r->devices[i].key, key)) {
				vsm__ds_change_end(ctx, ds);
				return 0;
			}
	rc = vsm__be_device_delete(ds, key, 0);
	if (rc == -VSM_ENOTFOUND) { /* never made, or gone already */
		vsm__error_reset();
		rc = 0;
	}
	vsm__ds_change_end(ctx, ds);
	return rc;
}

/* Grow the storage of device @key to @size: qcow2 through the COW engine
 * (its header says the size), raw through the backend. Growing to a
 * size it has is a no-op, so recovery may run it again. */
static int grow_storage(vsm_dstore *ds, const char *key, int format, uint64_t size)
{
	vsm_cow_open_opts o = {0};
	char label[VSM_BACKEND_KEY_MAX + 64];
	vsm_bdev *b = NULL;
	vsm_cow *c = NULL;
	int rc;

	if (format == VSM_FORMAT_RAW) {
		uint64_t cur = 0;

		if ((rc = vsm__ds_open_device(ds, key, 0, &b)) < 0)
			return rc;
		rc = vsm_bdev_size(b, &cur);
		vsm_bdev_close(b);
		if (rc < 0 || cur >= size)
			return rc;
		if (!vsm__be_can_resize(ds))
			return vsm_err(VSM_ENOTSUP, "datastore '%s' (backend '%s') cannot grow a "
				       "raw device", ds->name, vsm__be_scheme(ds));
		return vsm__be_device_resize(ds, key, size, 0);
	}
	if ((rc = vsm__ds_open_device(ds, key, 0, &b)) < 0)
		return rc;
	snprintf(label, sizeof(label), "datastore '%s' device '%s'", ds->name, key);
	o.format = "qcow2";
	o.flags = VSM_COW_NO_BACKING;
	if ((rc = vsm_cow_open(&c, b, label, &o)) < 0)
		return rc; /* the engine owns @b from the call on */
	if (vsm_cow_size(c) < size)
		rc = vsm_cow_resize(c, size);
	if (rc == 0)
		rc = vsm_cow_close(c);
	else
		vsm_cow_close(c);
	return rc;
}

/* The record of a resize says @size for the device whose top is @key,
 * unless it says more already or names it no longer. */
static int record_size(vsm_ctx *ctx, vsm_dstore *ds, const char *uuid, const char *key,
		       uint64_t size)
{
	vsm_record *cur, *r = NULL;
	size_t i;
	int rc;

	if ((rc = vsm__ds_change_begin(ctx, ds)) < 0)
		return rc;
	if (!(cur = vsm__ds_find(ds, NULL, uuid)))
		goto out;
	for (i = 0; i < cur->n_devices; i++)
		if (!strcmp(cur->devices[i].key, key) && cur->devices[i].size < size)
			break;
	if (i == cur->n_devices)
		goto out;
	if (!(r = vsm_record_dup(cur))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	r->devices[i].size = size;
	rc = vsm__ds_put_record(ctx, ds, r);
out:
	vsm__ds_change_end(ctx, ds);
	vsm_record_free(r);
	return rc;
}

/* Journal actions "devunref_UUID" (arg: a device key) and "devsize_UUID"
 * (arg: "SIZE FORMAT KEY"), registered by lib/open.c under "dev_". */
#define DEV_WF_UNREF VSM__DEV_WF_PREFIX "unref_"
#define DEV_WF_SIZE VSM__DEV_WF_PREFIX "size_"

int vsm__device_wf_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action, const char *arg)
{
	char key[VSM_BACKEND_KEY_MAX];
	unsigned long long size;
	const char *uuid;
	int format, n = 0, rc;

	if (!strncmp(action, DEV_WF_UNREF, strlen(DEV_WF_UNREF))) {
		uuid = action + strlen(DEV_WF_UNREF);
		if (!vsm__uuid_valid(uuid))
			return vsm_err(VSM_ECORRUPT, "journal action '%s' is malformed", action);
		return delete_unreferenced(ctx, ds, uuid, arg);
	}
	if (!strncmp(action, DEV_WF_SIZE, strlen(DEV_WF_SIZE))) {
		uuid = action + strlen(DEV_WF_SIZE);
		if (!vsm__uuid_valid(uuid) ||
		    sscanf(arg, "%llu %d %n", &size, &format, &n) != 2 || !n ||
		    strlen(arg + n) >= sizeof(key) || !vsm_format_name(format))
			return vsm_err(VSM_ECORRUPT, "journal step %s '%s' is malformed", action,
				       arg);
		strcpy(key, arg + n);
		/* Forward: the device is (again) grown, the record follows.
		 * A record that names the key no longer has let it go. */
		if ((rc = grow_storage(ds, key, format, size)) == -VSM_ENOTFOUND) {
			vsm__error_reset();
			return 0;
		}
		return rc < 0 ? rc : record_size(ctx, ds, uuid, key, size);
	}
	return vsm_err(VSM_ECORRUPT, "journal names unknown action '%s'", action);
}

/* --- add --- */

static int check_spec(const vsm_container *c, const vsm_device_spec *spec)
{
	const char *name = vsm_container_name(c);

	if (spec->version == 0 || spec->version > VSM_DEVICE_SPEC_VERSION)
		return vsm_err(VSM_EVERSION, "container '%s': vsm_device_spec version %u is not "
			       "supported", name, spec->version);
	return vsm__device_spec_check(name, spec);
}

/* The record at commit: @cur (the datastore's, under the lock) with the
 * device added; NULL with the error set when it cannot take it. */
static vsm_record *with_device(const vsm_record *cur, const char *name, const char *key,
			       int format, vsm__planned_device *p)
{
	vsm_rec_device *grown, *d;
	vsm_record *r;

	if (cur->destroying) {
		vsm_err(VSM_ESTATE, "container '%s' is being destroyed", cur->name);
		return NULL;
	}
	if (vsm_record_device(cur, name)) {
		vsm_err(VSM_EEXISTS, "container '%s': device '%s' already exists", cur->name,
			name);
		return NULL;
	}
	if (cur->n_devices >= 64) {
		vsm_err(VSM_EINVAL, "container '%s' has 64 devices, the most it may have",
			cur->name);
		return NULL;
	}
	if (!(r = vsm_record_dup(cur)) ||
	    !(grown = realloc(r->devices, (r->n_devices + 1) * sizeof(*grown)))) {
		vsm_record_free(r);
		vsm_err(VSM_ENOMEM, "out of memory");
		return NULL;
	}
	r->devices = grown;
	d = &r->devices[r->n_devices++];
	memset(d, 0, sizeof(*d));
	d->size = p->size;
	d->format = format;
	if (!(d->name = vsm__strdup(name)) || !(d->key = vsm__strdup(key)) ||
	    (p->chain_len && !(d->chain = vsm__calloc(p->chain_len, sizeof(*d->chain))))) {
		vsm_record_free(r);
		vsm_err(VSM_ENOMEM, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < p->chain_len; i++) {
		d->chain[i].format = p->chain[i].format;
		d->chain_len = i + 1;
		if (!(d->chain[i].key = vsm__strdup(p->chain[i].key))) {
			vsm_record_free(r);
			vsm_err(VSM_ENOMEM, "out of memory");
			return NULL;
		}
	}
	return r;
}

VSM_API int vsm_device_add(vsm_container *c, const vsm_device_spec *spec, unsigned int flags)
{
	char key[VSM_BACKEND_KEY_MAX], dev_name[200], action[64], tag[VSM_UUID_STRLEN + 1];
	vsm__planned_device plan = {0};
	vsm__handle_stage *st = NULL;
	vsm_record *r = NULL, *nr = NULL, *cur;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	uint64_t free_bytes = 0;
	int rc;

	vsm__error_reset();
	if (!c || !spec)
		return vsm_err(VSM_EINVAL, "vsm_device_add: NULL argument");
	if (flags & ~VSM_DEVICE_ADD_THIN)
		return vsm_err(VSM_EINVAL, "vsm_device_add: unknown flags 0x%x", flags);
	if ((rc = check_spec(c, spec)) < 0)
		return rc;
	vsm__ctx_lock(c->ctx);
	if ((rc = vsm__container_fresh(c, &ds, &r)) < 0)
		goto out;
	/* The checks of the commit, early, so that a refusal makes nothing. */
	if (!(nr = with_device(r, spec->name, "-", spec->format, &plan))) {
		rc = -vsm_error_last()->code;
		goto out;
	}
	vsm_record_free(nr);
	nr = NULL;
	if ((rc = vsm__device_plan(ds, r->name, spec, &plan)) < 0)
		goto out;
	if (!(flags & VSM_DEVICE_ADD_THIN)) {
		if ((rc = vsm__be_capacity(ds, NULL, &free_bytes)) < 0) {
			vsm__error_prefix("datastore '%s'", ds->name);
			goto out;
		}
		if (plan.size > free_bytes) {
			rc = vsm_err(VSM_ENOSPC, "container '%s': device '%s' needs %" PRIu64
				     " bytes but only %" PRIu64 " are free on datastore '%s' (ask "
				     "for thin provisioning to overcommit)", r->name, spec->name,
				     plan.size, free_bytes, ds->name);
			goto out;
		}
	}
	/* A key of its own, so that a device of the same name that another
	 * host adds at once, or that was removed before, never shares it. */
	vsm__uuid_new(tag);
	tag[8] = '\0';
	snprintf(dev_name, sizeof(dev_name), "%s-%s-%s.%s", r->uuid, spec->name, tag,
		 vsm_format_name(spec->format));
	snprintf(action, sizeof(action), "%s%s", DEV_WF_UNREF, r->uuid);
	if ((rc = vsm__wf_begin(&wf, c->ctx, "device-add", ds->name, r->name)) < 0)
		goto out;
	if ((rc = vsm__dev_create(&wf, action, ds, dev_name, plan.size,
				  vsm_format_name(spec->format),
				  plan.chain_len ? plan.chain[0].key : NULL,
				  plan.chain_len ? vsm_format_name(plan.chain[0].format) : NULL,
				  VSM_BACKEND_DEVICE_THIN, key)) < 0)
		goto abort;
	/* The commit: the record as it is now, plus the device. */
	if ((rc = vsm__ds_change_begin(c->ctx, ds)) < 0)
		goto abort;
	if (!(cur = vsm__ds_find(ds, NULL, r->uuid)) || cur->resv || cur->group)
		rc = vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' no longer exists",
			     ds->name, r->name);
	else if (!(nr = with_device(cur, spec->name, key, spec->format, &plan)))
		rc = -vsm_error_last()->code;
	else if ((rc = vsm__container_stage(&st, c, nr)) == 0)
		rc = vsm__ds_put_record(c->ctx, ds, nr);
	vsm__ds_change_end(c->ctx, ds);
	if (rc < 0)
		goto abort;
	/* Committed. A journal entry left over only deletes what no record
	 * names, so the device stays either way. */
	if (vsm__wf_end(&wf) < 0) {
		vsm__log(c->ctx, VSM_LOG_WARN, "%s (the next context forgets it)",
			 vsm_error_last()->message);
		vsm__error_reset();
	}
	vsm__log(c->ctx, VSM_LOG_INFO, "datastore '%s': container '%s': device '%s' added",
		 ds->name, r->name, spec->name);
	vsm__container_apply(c, st);
	st = NULL;
	goto out;
abort:
	vsm__wf_abort(&wf);
out:
	vsm__container_unstage(st);
	vsm__layers_free(plan.chain, plan.chain_len);
	vsm_record_free(nr);
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

/* --- remove, resize: the checks they share --- */

/* Device @name of @r, or NULL with the error set: it must exist and be
 * undeployed, and the container have no checkpoints. @what: "removed" or
 * "resized", for the message. */
static vsm_rec_device *changeable(vsm_record *r, const char *name, const char *what)
{
	vsm_rec_device *d = NULL;
	size_t i;

	for (i = 0; i < r->n_devices; i++)
		if (!strcmp(r->devices[i].name, name))
			d = &r->devices[i];
	if (!d) {
		vsm_err(VSM_ENOTFOUND, "container '%s' has no device '%s'", r->name, name);
		return NULL;
	}
	if (r->destroying) {
		vsm_err(VSM_ESTATE, "container '%s' is being destroyed", r->name);
		return NULL;
	}
	if (vsm_record_deploy(r, name)) {
		vsm_err(VSM_EBUSY, "container '%s': device '%s' is deployed on host '%s', where "
			"the hypervisor may have it open, so it cannot be %s; undeploy it first",
			r->name, name, vsm_record_deploy(r, name)->host, what);
		return NULL;
	}
	if (r->n_ckpts) {
		vsm_err(VSM_EBUSY, "container '%s' has checkpoints, whose frozen layers reference "
			"device '%s', so it cannot be %s; delete them first", r->name, name, what);
		return NULL;
	}
	return d;
}

/* --- remove --- */

/* @cur without device @name, checked again under the lock; NULL with
 * the error set. */
static vsm_record *without_device(const vsm_record *cur, const char *name)
{
	vsm_record *r;
	vsm_rec_device *d;
	size_t i;

	if (!(r = vsm_record_dup(cur))) {
		vsm_err(VSM_ENOMEM, "out of memory");
		return NULL;
	}
	if (!(d = changeable(r, name, "removed")))
		goto fail;
	if (r->n_devices == 1) {
		vsm_err(VSM_ESTATE, "container '%s': device '%s' is its last; a container keeps "
			"at least one device (destroy the container instead)", r->name, name);
		goto fail;
	}
	i = (size_t)(d - r->devices);
	free(d->name);
	free(d->key);
	vsm__layers_free(d->chain, d->chain_len);
	memmove(d, d + 1, (r->n_devices - i - 1) * sizeof(*d));
	r->n_devices--;
	return r;
fail:
	vsm_record_free(r);
	return NULL;
}

VSM_API int vsm_device_remove(vsm_container *c, const char *name, unsigned int flags)
{
	char action[64], *key = NULL;
	vsm__handle_stage *st = NULL;
	vsm_record *r = NULL, *nr = NULL, *cur;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	int rc;

	vsm__error_reset();
	if (!c || !name)
		return vsm_err(VSM_EINVAL, "vsm_device_remove: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_device_remove: unknown flags 0x%x", flags);
	vsm__ctx_lock(c->ctx);
	if ((rc = vsm__container_fresh(c, &ds, &r)) < 0)
		goto out;
	if (!(nr = without_device(r, name))) {
		rc = -vsm_error_last()->code;
		goto out;
	}
	vsm_record_free(nr);
	nr = NULL;
	snprintf(action, sizeof(action), "%s%s", DEV_WF_UNREF, r->uuid);
	/* Journalled before the record lets the device go: the storage of a
	 * device no record names is deleted, now or by the next context. */
	if ((rc = vsm__wf_begin(&wf, c->ctx, "device-remove", ds->name, r->name)) < 0)
		goto out;
	if ((rc = vsm__ds_change_begin(c->ctx, ds)) < 0)
		goto abort;
	if (!(cur = vsm__ds_find(ds, NULL, r->uuid)) || cur->resv || cur->group)
		rc = vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' no longer exists",
			     ds->name, r->name);
	else if (!(nr = without_device(cur, name)))
		rc = -vsm_error_last()->code;
	else if (!(key = vsm__strdup(vsm_record_device(cur, name)->key)))
		rc = -VSM_ENOMEM;
	else if ((rc = vsm__wf_redo(&wf, action, key)) == 0 &&
		 (rc = vsm__container_stage(&st, c, nr)) == 0)
		rc = vsm__ds_put_record(c->ctx, ds, nr);
	vsm__ds_change_end(c->ctx, ds);
	if (rc < 0)
		goto abort; /* the redo step deletes nothing a record names */
	/* Past the point of no return: a failure here leaves the step to the
	 * next context, and the call succeeds. */
	if ((rc = delete_unreferenced(c->ctx, ds, r->uuid, key)) < 0 ||
	    (rc = vsm__wf_end(&wf)) < 0) {
		vsm__log(c->ctx, VSM_LOG_WARN, "datastore '%s': container '%s': device '%s' "
			 "removed, its storage not yet deleted (%s); the next context deletes "
			 "it", ds->name, r->name, name, vsm_error_last()->message);
		vsm__error_reset();
		rc = 0;
	}
	vsm__log(c->ctx, VSM_LOG_INFO, "datastore '%s': container '%s': device '%s' removed",
		 ds->name, r->name, name);
	vsm__container_apply(c, st);
	st = NULL;
	goto out;
abort:
	vsm__wf_abort(&wf);
out:
	vsm__container_unstage(st);
	free(key);
	vsm_record_free(nr);
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

/* --- resize --- */

/* Under the lock: device @d of @r (checked before the lock) is still
 * resizable and unchanged in the datastore's record. */
static int still_same(vsm_dstore *ds, const vsm_record *r, const vsm_rec_device *d,
		      const char *name)
{
	const vsm_record *cur = vsm__ds_find(ds, NULL, r->uuid);
	vsm_rec_device *now;
	vsm_record *copy;
	int rc = 0;

	if (!cur || cur->resv || cur->group)
		return vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' no longer exists",
			       ds->name, r->name);
	if (!(copy = vsm_record_dup(cur)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	if (!(now = changeable(copy, name, "resized")))
		rc = -vsm_error_last()->code;
	else if (strcmp(now->key, d->key) || now->size != d->size || now->format != d->format)
		rc = vsm_err(VSM_EBUSY, "container '%s': device '%s' was changed by another "
			     "process meanwhile; try again", r->name, name);
	vsm_record_free(copy);
	return rc;
}

VSM_API int vsm_device_resize(vsm_container *c, const char *name, uint64_t size,
			      unsigned int flags)
{
	char action[64], arg[VSM_BACKEND_KEY_MAX + 48];
	vsm__handle_stage *st = NULL;
	vsm_record *r = NULL;
	vsm_rec_device *d;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	uint64_t free_bytes = 0;
	bool locked = false;
	int rc;

	vsm__error_reset();
	if (!c || !name)
		return vsm_err(VSM_EINVAL, "vsm_device_resize: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_device_resize: unknown flags 0x%x", flags);
	if (size > (UINT64_C(1) << 56))
		return vsm_err(VSM_EINVAL, "container '%s': device '%s': %" PRIu64 " bytes is "
			       "larger than 64 PiB", vsm_container_name(c), name, size);
	vsm__ctx_lock(c->ctx);
	if ((rc = vsm__container_fresh(c, &ds, &r)) < 0)
		goto out;
	if (!(d = changeable(r, name, "resized"))) {
		rc = -vsm_error_last()->code;
		goto out;
	}
	if (size < d->size) {
		rc = vsm_err(VSM_EINVAL, "container '%s': device '%s' is %" PRIu64 " bytes; it "
			     "can only grow, and shrinking it to %" PRIu64 " would cut off the "
			     "guest's data", r->name, name, d->size, size);
		goto out;
	}
	if (size == d->size) {
		rc = vsm__handle_set(c, r);
		goto out;
	}
	if (d->format == VSM_FORMAT_RAW && !vsm__be_can_resize(ds)) {
		rc = vsm_err(VSM_ENOTSUP, "container '%s': device '%s' is raw and datastore '%s' "
			     "(backend '%s') cannot grow a device", r->name, name, ds->name,
			     vsm__be_scheme(ds));
		goto out;
	}
	if (r->thick) {
		if ((rc = vsm__be_capacity(ds, NULL, &free_bytes)) < 0) {
			vsm__error_prefix("datastore '%s'", ds->name);
			goto out;
		}
		if (size - d->size > free_bytes) {
			rc = vsm_err(VSM_ENOSPC, "container '%s': growing device '%s' needs %" PRIu64
				     " bytes but only %" PRIu64 " are free on datastore '%s'",
				     r->name, name, size - d->size, free_bytes, ds->name);
			goto out;
		}
	}
	/* The device grows under the metadata lock, checked again there, so
	 * that no other host deploys it, removes it or takes a checkpoint
	 * between the check and the record. */
	if ((rc = vsm__ds_change_begin(c->ctx, ds)) < 0)
		goto out;
	locked = true;
	if ((rc = still_same(ds, r, d, name)) < 0)
		goto out;
	/* Forward only from here: the journal grows the device and writes
	 * the record again if this process dies on the way. */
	snprintf(action, sizeof(action), "%s%s", DEV_WF_SIZE, r->uuid);
	snprintf(arg, sizeof(arg), "%" PRIu64 " %d %s", size, d->format, d->key);
	if ((rc = vsm__wf_begin(&wf, c->ctx, "device-resize", ds->name, r->name)) < 0)
		goto out;
	if ((rc = vsm__wf_redo(&wf, action, arg)) < 0) {
		vsm__wf_abort(&wf);
		goto out;
	}
	if ((rc = grow_storage(ds, d->key, d->format, size)) < 0) {
		/* Nothing grew that a record reads: a raw backend resize and
		 * the qcow2 header write are each all or nothing. */
		vsm__saved_error saved;

		vsm__error_prefix("container '%s': device '%s'", r->name, name);
		vsm__error_save(&saved);
		if (vsm__wf_end(&wf) < 0)
			vsm__log(c->ctx, VSM_LOG_WARN, "%s", vsm_error_last()->message);
		vsm__error_restore(&saved);
		goto out;
	}
	if ((rc = record_size(c->ctx, ds, r->uuid, d->key, size)) < 0) {
		vsm__log(c->ctx, VSM_LOG_WARN, "datastore '%s': container '%s': device '%s' grew "
			 "but its record was not written (%s); the next context writes it",
			 ds->name, r->name, name, vsm_error_last()->message);
		/* Past the point of no return: it stays journalled. */
	} else if (vsm__wf_end(&wf) < 0) {
		vsm__log(c->ctx, VSM_LOG_WARN, "%s", vsm_error_last()->message);
		vsm__error_reset();
	}
	vsm__ds_change_end(c->ctx, ds);
	locked = false;
	vsm__log(c->ctx, VSM_LOG_INFO, "datastore '%s': container '%s': device '%s' grown to "
		 "%" PRIu64 " bytes", ds->name, r->name, name, size);
	vsm_record_free(r);
	r = NULL;
	if (vsm__container_fresh(c, &ds, &r) == 0 && vsm__container_stage(&st, c, r) == 0) {
		vsm__container_apply(c, st);
		st = NULL;
	}
	vsm__error_reset();
	rc = 0;
out:
	if (locked)
		vsm__ds_change_end(c->ctx, ds);
	vsm__container_unstage(st);
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}
