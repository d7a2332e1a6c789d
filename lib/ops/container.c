/*
 * Containers as a whole: lookups and listings (which never change
 * anything), refresh, and destroy with its journalled tail.
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

/* --- lookups --- */

/* Datastores to search: the one named, or all registered. */
static int ds_names(vsm_ctx *ctx, const char *datastore, char ***names, size_t *n)
{
	if (datastore) {
		vsm_dstore *ds;
		int rc = vsm__ds_get(&ds, ctx, datastore);

		if (rc < 0)
			return rc;
		if (!(*names = vsm__calloc(1, sizeof(char *))) ||
		    !((*names)[0] = vsm__strdup(datastore))) {
			free(*names);
			return -VSM_ENOMEM;
		}
		*n = 1;
		return 0;
	}
	return vsm_catalog_strings(ctx->cat, names, n, "SELECT name FROM datastores ORDER BY "
				   "name", NULL);
}

/* Open and refresh one of the datastores a search walks. When the caller
 * named it, failure is the answer; when walking all of them, one
 * unreachable datastore must not hide the others: log it and return 1. */
/* Open and refresh datastore @name for a walk over every datastore: one
 * that cannot be read is logged and skipped (1), and the first such
 * error is kept in @why and @why_code, so that a walk that finds nothing
 * says the container may be on it rather than that it does not exist. */
static int walk_open(vsm_dstore **out, vsm_ctx *ctx, const char *name, bool named,
		     char **why, int *why_code)
{
	int rc;

	if ((rc = vsm__ds_get(out, ctx, name)) == 0 && (rc = vsm__ds_refresh(ctx, *out)) == 0)
		return 0;
	if (named)
		return rc;
	vsm__log(ctx, VSM_LOG_WARN, "%s", vsm_error_last()->message);
	if (why && !*why && (*why = strdup(vsm_error_last()->message)))
		*why_code = -rc;
	vsm__error_reset();
	return 1;
}

static int lookup(vsm_container **out, vsm_ctx *ctx, const char *datastore,
		  const char *name, const char *uuid)
{
	char **names = NULL, *damaged = NULL, *unreadable = NULL;
	size_t n = 0, i;
	vsm_record *found = NULL;
	const char *found_ds = NULL;
	int rc, unreadable_code = 0;

	if ((rc = ds_names(ctx, datastore, &names, &n)) < 0)
		return rc;
	for (i = 0; i < n; i++) {
		vsm_dstore *ds;
		vsm_record *r;

		if ((rc = walk_open(&ds, ctx, names[i], datastore != NULL, &unreadable,
				    &unreadable_code)) < 0)
			goto out;
		if (rc > 0) {
			rc = 0;
			continue;
		}
		/* Two records bearing the name (0.1's races): say so, name
		 * both, and pick neither. */
		if (name && vsm__ds_find_name(ds, name, &r) == -VSM_EEXISTS) {
			rc = -VSM_EEXISTS;
			goto out;
		}
		vsm__error_reset();
		/* A reservation (lib/ops/reserve.c) holds a name but is no
		 * container yet. */
		if ((r = vsm__ds_find(ds, name, uuid)) && !r->resv && !r->group && !r->migration) {
			if (found) {
				rc = vsm_err(VSM_EINVAL, "container name '%s' is ambiguous: it exists "
					     "on datastores '%s' and '%s'", name, found_ds, names[i]);
				goto out;
			}
			found = r;
			found_ds = names[i];
		} else if (ds->n_damaged && !damaged &&
			   asprintf(&damaged, "datastore '%s': container record in slot %u is "
				    "damaged (%s)", ds->name, ds->damaged[0],
				    ds->damaged_why[0]) < 0) {
			damaged = NULL;
		}
	}
	if (!found) {
		/* The container may be the one whose record we cannot read. */
		if (damaged)
			rc = vsm_err(VSM_ECORRUPT, "container '%s' not found; %s", name ? name : uuid,
				     damaged);
		else if (unreadable)
			/* It may be on the datastore we could not read. */
			/* Never "not found": the caller would take it for an
			 * answer about the container. */
			rc = vsm_err(unreadable_code > 0 && unreadable_code != VSM_ENOTFOUND ?
				     unreadable_code : VSM_EIO,
				     "container '%s' not found; a datastore could not be read: %s",
				     name ? name : uuid, unreadable);
		else
			rc = vsm_err(VSM_ENOTFOUND, "container '%s' does not exist%s%s",
				     name ? name : uuid, datastore ? " on datastore " : "",
				     datastore ? datastore : "");
		goto out;
	}
	rc = vsm__handle_new(out, ctx, found_ds, found);
out:
	free(damaged);
	free(unreadable);
	vsm_strv_free(names, n);
	return rc;
}

VSM_API int vsm_container_lookup(vsm_container **out, vsm_ctx *ctx, const char *datastore,
				 const char *name)
{
	int rc;

	vsm__error_reset();
	if (!out || !ctx || !name)
		return vsm_err(VSM_EINVAL, "vsm_container_lookup: NULL argument");
	vsm__ctx_lock(ctx);
	rc = lookup(out, ctx, datastore, name, NULL);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_container_lookup_by_uuid(vsm_container **out, vsm_ctx *ctx,
					 const char *uuid)
{
	int rc;

	vsm__error_reset();
	if (!out || !ctx || !uuid)
		return vsm_err(VSM_EINVAL, "vsm_container_lookup_by_uuid: NULL argument");
	if (!vsm__uuid_valid(uuid))
		return vsm_err(VSM_EINVAL, "'%s' is not a UUID", uuid);
	vsm__ctx_lock(ctx);
	rc = lookup(out, ctx, NULL, NULL, uuid);
	vsm__ctx_unlock(ctx);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	const vsm_container *x = *(vsm_container *const *)a, *y = *(vsm_container *const *)b;
	int c = strcmp(x->datastore, y->datastore);

	return c ? c : strcmp(x->rec->name, y->rec->name);
}

VSM_API int vsm_container_list(vsm_container ***out, size_t *count, vsm_ctx *ctx,
			       const char *datastore)
{
	char **names = NULL;
	size_t n = 0, i, j, total = 0;
	vsm_container **list = NULL, **grown;
	int rc;

	vsm__error_reset();
	if (!out || !count || !ctx)
		return vsm_err(VSM_EINVAL, "vsm_container_list: NULL argument");
	vsm__ctx_lock(ctx);
	if ((rc = ds_names(ctx, datastore, &names, &n)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		vsm_dstore *ds;

		if ((rc = walk_open(&ds, ctx, names[i], datastore != NULL, NULL, NULL)) < 0)
			goto fail;
		if (rc > 0) {
			rc = 0;
			continue;
		}
		for (j = 0; j < ds->n_damaged; j++)
			vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': container record in slot %u "
				 "is damaged (%s) and not listed", ds->name, ds->damaged[j],
				 ds->damaged_why[j]);
		if (!(grown = realloc(list, (total + ds->n_recs + 1) * sizeof(*grown)))) {
			rc = vsm_err(VSM_ENOMEM, "out of memory");
			goto fail;
		}
		list = grown;
		for (j = 0; j < ds->n_recs; j++) {
			if (ds->recs[j]->resv || ds->recs[j]->group || ds->recs[j]->migration)
				continue; /* a placement in progress, a group, a migration's copy */
			if ((rc = vsm__handle_new(&list[total], ctx, ds->name, ds->recs[j])) < 0)
				goto fail;
			total++;
		}
	}
	if (total)
		qsort(list, total, sizeof(*list), by_name);
	*out = list ? list : vsm__calloc(1, sizeof(*list));
	*count = total;
	if (!*out)
		rc = -VSM_ENOMEM;
	goto out;
fail:
	vsm_container_list_free(list, total);
out:
	vsm_strv_free(names, n);
	vsm__ctx_unlock(ctx);
	return rc;
}

/* The container's current record, straight from its datastore. */
int vsm__container_fresh(vsm_container *c, vsm_dstore **ds_out, vsm_record **out)
{
	vsm_record *r;
	int rc;

	if ((rc = vsm__ds_get(ds_out, c->ctx, c->datastore)) < 0 ||
	    (rc = vsm__ds_refresh(c->ctx, *ds_out)) < 0)
		return rc;
	r = vsm__ds_find(*ds_out, NULL, c->rec->uuid);
	if (!r || r->resv || r->group || r->migration)
		return vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' no longer exists",
			       c->datastore, c->rec->name);
	if (!(*out = vsm_record_dup(r)))
		return -VSM_ENOMEM;
	return 0;
}

VSM_API int vsm_container_refresh(vsm_container *c)
{
	vsm_dstore *ds;
	vsm_record *r = NULL;
	int rc;

	vsm__error_reset();
	if (!c)
		return vsm_err(VSM_EINVAL, "vsm_container_refresh: NULL argument");
	vsm__ctx_lock(c->ctx);
	if ((rc = vsm__container_fresh(c, &ds, &r)) == 0)
		rc = vsm__handle_set(c, r);
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

/* --- destroy --- */

int vsm__container_finish_destroy(vsm_ctx *ctx, vsm_dstore *ds, uint32_t slot,
				  const char *uuid)
{
	vsm_record *r = NULL;
	size_t i;
	int rc = vsm__ds_read_record(ctx, ds, slot, uuid, &r);

	if (rc == -VSM_ENOTFOUND) { /* already gone */
		vsm__error_reset();
		return 0;
	}
	if (rc < 0)
		return rc;
	for (i = 0; i < r->n_devices && rc == 0; i++) {
		rc = vsm__be_device_delete(ds, r->devices[i].key, 0);
		if (rc == -VSM_ENOTFOUND) {
			vsm__error_reset();
			rc = 0;
		}
	}
	if (rc == 0 && r->state_key) {
		rc = vsm__be_device_delete(ds, r->state_key, 0);
		if (rc == -VSM_ENOTFOUND) {
			vsm__error_reset();
			rc = 0;
		}
	}
	for (size_t h = 0; rc == 0 && h < ctx->n_destroy_hooks; h++)
		rc = ctx->destroy_hooks[h](ctx, ds, r, false);
	if (rc == 0)
		rc = vsm__ds_free_slot(ctx, ds, slot, uuid);
	else
		vsm__error_prefix("datastore '%s': destroying container '%s'", ds->name, r->name);
	/* Only the call that removed the record merges what it left. */
	if (rc == 1)
		for (size_t h = 0; h < ctx->n_destroy_hooks; h++)
			ctx->destroy_hooks[h](ctx, ds, r, true);
	vsm_record_free(r);
	return rc;
}

int vsm__container_destroy_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action,
				  const char *arg)
{
	char uuid[VSM_UUID_STRLEN + 1];
	uint32_t slot = 0;
	int rc;

	(void)action;
	if ((rc = vsm__wf_parse_slot_uuid(arg, &slot, uuid)) < 0)
		return rc;
	rc = vsm__container_finish_destroy(ctx, ds, slot, uuid);
	return rc < 0 ? rc : 0;
}

VSM_API int vsm_container_destroy(vsm_container *c, unsigned int flags)
{
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	uint64_t lver = 0;
	char arg[64];
	int rc, tries, removed;

	vsm__error_reset();
	if (!c)
		return vsm_err(VSM_EINVAL, "vsm_container_destroy: NULL argument");
	if (flags & ~VSM_CONTAINER_DESTROY_FORCE)
		return vsm_err(VSM_EINVAL, "vsm_container_destroy: unknown flags 0x%x", flags);
	vsm__ctx_lock(c->ctx);
	for (tries = 0; ; tries++) {
		vsm_record_free(r);
		r = NULL;
		if ((rc = vsm__container_fresh(c, &ds, &r)) < 0)
			goto out;
		/* Another process began destroying it (or died doing so):
		 * help finish; whoever removes the record reports success. */
		if (r->destroying)
			break;
		if (tries == 0 && c->ctx->destroy_check &&
		    (rc = c->ctx->destroy_check(c->ctx, ds->name, r)) < 0)
			goto out;
		if (r->attached_host) {
			if (!(flags & VSM_CONTAINER_DESTROY_FORCE)) {
				rc = vsm_err(VSM_EBUSY, "container '%s' is attached to host '%s'; "
					     "detach it or force the destroy", r->name,
					     r->attached_host);
				goto out;
			}
			/* Only the lease holder may undeploy and detach it. */
			if ((rc = vsm__lease_fence(ds->lease, r, &lver)) < 0 ||
			    (rc = vsm__handover_refuse(ds, r)) < 0 ||
			    (rc = vsm__detach_record(c->ctx, ds, r, true)) < 0)
				goto out;
		}
		/* Past this point the container is going away: mark the record
		 * so nobody deploys it again, and journal the rest as
		 * roll-forward. A record changed meanwhile is read again. */
		r->destroying = true;
		rc = vsm__ds_put_record(c->ctx, ds, r);
		if (rc == 0)
			break;
		if (rc != -VSM_EBUSY || tries >= 20)
			goto out;
	}
	snprintf(arg, sizeof(arg), "%u %s", r->slot, r->uuid);
	if ((rc = vsm__wf_begin(&wf, c->ctx, "container-destroy", ds->name, r->name)) < 0 ||
	    (rc = vsm__wf_redo(&wf, VSM_WF_CONTAINER_DESTROY, arg)) < 0)
		goto out;
	if (vsm__lease_release(ds->lease, r) < 0)
		vsm__error_reset(); /* a lease of a gone container is free anyway */
	if ((removed = vsm__container_finish_destroy(c->ctx, ds, r->slot, r->uuid)) < 0) {
		rc = removed;
		goto out; /* stays journalled; the next open finishes it */
	}
	if ((rc = vsm__wf_end(&wf)) < 0)
		goto out;
	if (!removed) {
		rc = vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' was destroyed by "
			     "another process meanwhile", ds->name, r->name);
		goto out;
	}
	vsm__log(c->ctx, VSM_LOG_INFO, "datastore '%s': container '%s' destroyed", ds->name,
		 r->name);
	vsm__handle_set(c, r);
out:
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}
