/*
 * Datastores: registration in the catalog, opening through their backend,
 * and the public datastore calls. The cache of their container records and
 * the one way records change are in dscache.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "ctx.h"
#include "lease/dslock.h"
#include "lease/lease.h"

struct vsm_datastore {
	char *name;
	char *uri;
	char *uuid;
	uint64_t generation;
};

void vsm__ds_close(vsm_dstore *ds)
{
	if (!ds)
		return;
	vsm__ds_cache_clear(ds);
	vsm__dslock_close(ds->lock);
	vsm__lease_ds_close(ds);
	vsm_meta_close(ds->meta);
	if (ds->h)
		ds->be->ops.close(ds->h);
	free(ds->name);
	free(ds->uri);
	free(ds);
}

void vsm__ds_forget(vsm_ctx *ctx, const char *name)
{
	vsm_dstore **pp;

	for (pp = &ctx->open; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->name, name)) {
			vsm_dstore *ds = *pp;

			*pp = ds->next;
			vsm__ds_close(ds);
			return;
		}
	}
}

/* A backend saw its storage change or vanish: tell the caller. */
static void backend_notify(void *cookie, int event, const char *detail)
{
	vsm_dstore *ds = cookie;

	vsm__event_emit(ds->ctx->events, event == VSM_BACKEND_EVENT_LOST ?
			VSM_EVENT_DATASTORE_LOST : VSM_EVENT_DATASTORE_CHANGED,
			ds->name, NULL, NULL, detail, 0);
}

/* Open a datastore's backend and metadata; @format makes a blank one,
 * @open_flags (VSM_BACKEND_OPEN_*) go to the backend. */
static int ds_open(vsm_dstore **out, vsm_ctx *ctx, const char *name, const char *uri,
		   bool format, unsigned int open_flags)
{
	vsm_backend_open_args args = { VSM_BACKEND_OPEN_ARGS_VERSION, name, NULL, NULL, NULL,
				       open_flags };
	vsm_bdev_io *mh = NULL;
	vsm_bdev *mb = NULL;
	vsm_dstore *ds;
	char label[160];
	int rc;

	if (!(ds = vsm__calloc(1, sizeof(*ds))))
		return -VSM_ENOMEM;
	if (!(ds->name = vsm__strdup(name)) || !(ds->uri = vsm__strdup(uri))) {
		rc = -VSM_ENOMEM;
		goto fail;
	}
	if (!(ds->be = vsm__backend_for_uri(ctx, uri))) {
		rc = -vsm__error_code();
		goto fail;
	}
	args.payload = ds->be->payload;
	args.notify = backend_notify;
	args.notify_cookie = ds;
	ds->ctx = ctx;
	if ((rc = ds->be->ops.open(&ds->h, uri, &args)) < 0)
		goto fail;
	rc = vsm__backend_meta_open(ds->be, &mh, ds->h, vsm_meta_default_size(512),
				    format ? VSM_BDEV_CREATE : 0);
	if (rc < 0)
		goto fail;
	snprintf(label, sizeof(label), "datastore '%s' metadata", name);
	if ((rc = vsm_bdev_wrap(&mb, mh, label, false)) < 0)
		goto fail;
	if ((rc = vsm_meta_open(&ds->meta, mb, name, format)) < 0 ||
	    (rc = vsm__lease_ds_open(ctx, ds)) < 0)
		goto fail;
	*out = ds;
	return 0;
fail:
	vsm__error_prefix("datastore '%s'", name);
	vsm__ds_close(ds);
	return rc;
}

typedef struct {
	char *uri;
	char *uuid;
} ds_row;

static int ds_row_cb(void *payload, int ncol, const char *const *cols)
{
	ds_row *r = payload;

	(void)ncol;
	if (!(r->uri = vsm__strdup(cols[0])) || !(r->uuid = vsm__strdup(cols[1])))
		return -VSM_ENOMEM;
	return 1;
}

static int ds_row_get(vsm_ctx *ctx, const char *name, ds_row *row)
{
	int rc;

	memset(row, 0, sizeof(*row));
	rc = vsm_catalog_query(ctx->cat, ds_row_cb, row,
			       "SELECT uri, uuid FROM datastores WHERE name = ?", "s", name);
	if (rc < 0) {
		free(row->uri);
		free(row->uuid);
		return rc;
	}
	if (rc == 0)
		return vsm_err(VSM_ENOTFOUND, "datastore '%s' is not registered", name);
	return 0;
}

int vsm__ds_get(vsm_dstore **out, vsm_ctx *ctx, const char *name)
{
	vsm_dstore *ds;
	ds_row row;
	int rc;

	for (ds = ctx->open; ds; ds = ds->next) {
		if (!strcmp(ds->name, name)) {
			*out = ds;
			return 0;
		}
	}
	if ((rc = ds_row_get(ctx, name, &row)) < 0)
		return rc;
	rc = ds_open(&ds, ctx, name, row.uri, false, 0);
	if (rc == 0 && strcmp(ds->meta->geom.uuid, row.uuid) != 0) {
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': '%s' now holds datastore %s, not "
			     "the registered %s", name, row.uri, ds->meta->geom.uuid, row.uuid);
		vsm__ds_close(ds);
	}
	free(row.uri);
	free(row.uuid);
	if (rc < 0)
		return rc;
	ds->next = ctx->open;
	ctx->open = ds;
	*out = ds;
	/* Finish what a dead process left half done here before anyone
	 * reads the datastore. */
	if (!ds->recovering) {
		ds->recovering = true;
		vsm__wf_recover(ctx, name);
		ds->recovering = false;
	}
	return 0;
}

int vsm__ds_open_device(vsm_dstore *ds, const char *key, unsigned int flags,
			vsm_bdev **out)
{
	vsm_bdev_io *h = NULL;
	char label[VSM_BACKEND_KEY_MAX + 64];
	int rc = vsm__backend_device_open(ds->be, &h, ds->h, key, flags);

	if (rc < 0)
		return rc;
	snprintf(label, sizeof(label), "datastore '%s' device '%s'", ds->name, key);
	return vsm_bdev_wrap(out, h, label, (flags & VSM_BDEV_RDONLY) != 0);
}

/* --- public API --- */

VSM_API int vsm_datastore_add(vsm_ctx *ctx, const char *name, const char *uri,
			      unsigned int flags)
{
	vsm_dstore *ds = NULL;
	char **same = NULL;
	size_t n_same = 0;
	int64_t exists = 0;
	int rc;

	vsm__error_reset();
	if (!ctx || !uri)
		return vsm_err(VSM_EINVAL, "vsm_datastore_add: ctx or uri is NULL");
	if (flags & ~VSM_DATASTORE_ADD_CREATE)
		return vsm_err(VSM_EINVAL, "vsm_datastore_add: unknown flags 0x%x", flags);
	if ((rc = vsm__name_check("datastore", name)) < 0)
		return rc;
	vsm__ctx_lock(ctx);
	if ((rc = vsm_catalog_count(ctx->cat, &exists, "SELECT 1 FROM datastores WHERE "
				    "name = ?", "s", name)) < 0)
		goto out;
	if (exists) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s' already exists", name);
		goto out;
	}
	if ((rc = ds_open(&ds, ctx, name, uri, true, (flags & VSM_DATASTORE_ADD_CREATE) ?
			  VSM_BACKEND_OPEN_CREATE : 0)) < 0)
		goto out;
	if ((rc = vsm_catalog_strings(ctx->cat, &same, &n_same, "SELECT name FROM datastores "
				      "WHERE uuid = ?", "s", ds->meta->geom.uuid)) < 0)
		goto out;
	if (n_same) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': '%s' is already registered as "
			     "datastore '%s'", name, uri, same[0]);
		goto out;
	}
	if ((rc = vsm_catalog_exec(ctx->cat, "INSERT INTO datastores(name, uri, uuid) "
				   "VALUES(?,?,?)", "sss", name, uri, ds->meta->geom.uuid)) < 0)
		goto out;
	ds->next = ctx->open;
	ctx->open = ds;
	/* Adopt whatever the datastore already holds. */
	if ((rc = vsm__ds_refresh(ctx, ds)) < 0) {
		vsm__saved_error saved;

		vsm__error_save(&saved);
		vsm__ds_forget(ctx, name);
		vsm_catalog_exec(ctx->cat, "DELETE FROM datastores WHERE name = ?", "s", name);
		vsm__error_restore(&saved);
		ds = NULL;
		goto out;
	}
	vsm__log(ctx, VSM_LOG_INFO, "datastore '%s' added (%s, %zu containers)", name, uri,
		 ds->n_recs);
	ds = NULL;
out:
	vsm_strv_free(same, n_same);
	vsm__ds_close(ds);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_datastore_remove(vsm_ctx *ctx, const char *name, unsigned int flags)
{
	vsm_dstore *ds;
	size_t i;
	int rc;

	vsm__error_reset();
	if (!ctx || !name)
		return vsm_err(VSM_EINVAL, "vsm_datastore_remove: ctx or name is NULL");
	if (flags & ~VSM_DATASTORE_REMOVE_FORCE)
		return vsm_err(VSM_EINVAL, "vsm_datastore_remove: unknown flags 0x%x", flags);
	vsm__ctx_lock(ctx);
	rc = vsm__ds_get(&ds, ctx, name);
	if (rc == 0 && !(flags & VSM_DATASTORE_REMOVE_FORCE)) {
		if ((rc = vsm__ds_refresh(ctx, ds)) < 0)
			goto out;
		for (i = 0; i < ds->n_recs; i++) {
			if (ds->recs[i]->attached_host) {
				rc = vsm_err(VSM_EBUSY, "datastore '%s': container '%s' is attached "
					     "to host '%s'", name, ds->recs[i]->name,
					     ds->recs[i]->attached_host);
				goto out;
			}
		}
	} else if (rc == -VSM_ENOTFOUND) {
		goto out;
	} else if (rc < 0 && !(flags & VSM_DATASTORE_REMOVE_FORCE)) {
		goto out;
	}
	vsm__ds_forget(ctx, name);
	if ((rc = vsm_catalog_begin(ctx->cat)) < 0)
		goto out;
	if ((rc = vsm_catalog_exec(ctx->cat, "DELETE FROM datastores WHERE name = ?", "s", name)) < 0 ||
	    (rc = vsm_catalog_exec(ctx->cat, "DELETE FROM links WHERE datastore = ?", "s", name)) < 0 ||
	    (rc = vsm_catalog_exec(ctx->cat, "DELETE FROM records WHERE datastore = ?", "s", name)) < 0) {
		vsm_catalog_rollback(ctx->cat);
		goto out;
	}
	rc = vsm_catalog_commit(ctx->cat);
	vsm__error_reset();
out:
	vsm__ctx_unlock(ctx);
	return rc;
}

static int handle_new(vsm_datastore **out, vsm_ctx *ctx, const char *name)
{
	vsm_datastore *h;
	ds_row row;
	int rc;

	if ((rc = ds_row_get(ctx, name, &row)) < 0)
		return rc;
	if (!(h = vsm__calloc(1, sizeof(*h))) || !(h->name = vsm__strdup(name))) {
		free(h);
		free(row.uri);
		free(row.uuid);
		return -VSM_ENOMEM;
	}
	h->uri = row.uri;
	h->uuid = row.uuid;
	for (vsm_dstore *ds = ctx->open; ds; ds = ds->next)
		if (!strcmp(ds->name, name))
			h->generation = ds->gen;
	*out = h;
	return 0;
}

VSM_API int vsm_datastore_lookup(vsm_datastore **out, vsm_ctx *ctx, const char *name)
{
	int rc;

	vsm__error_reset();
	if (!out || !ctx || !name)
		return vsm_err(VSM_EINVAL, "vsm_datastore_lookup: NULL argument");
	vsm__ctx_lock(ctx);
	rc = handle_new(out, ctx, name);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_datastore_list(vsm_datastore ***out, size_t *count, vsm_ctx *ctx)
{
	char **names = NULL;
	size_t n = 0, i;
	vsm_datastore **list = NULL;
	int rc;

	vsm__error_reset();
	if (!out || !count || !ctx)
		return vsm_err(VSM_EINVAL, "vsm_datastore_list: NULL argument");
	vsm__ctx_lock(ctx);
	if ((rc = vsm_catalog_strings(ctx->cat, &names, &n, "SELECT name FROM datastores "
				      "ORDER BY name", NULL)) < 0)
		goto out;
	if (!(list = vsm__calloc(n, sizeof(*list)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((rc = handle_new(&list[i], ctx, names[i])) < 0) {
			vsm_datastore_list_free(list, i);
			list = NULL;
			goto out;
		}
	}
	*out = list;
	*count = n;
out:
	vsm_strv_free(names, n);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API void vsm_datastore_free(vsm_datastore *ds)
{
	if (!ds)
		return;
	free(ds->name);
	free(ds->uri);
	free(ds->uuid);
	free(ds);
}

VSM_API void vsm_datastore_list_free(vsm_datastore **list, size_t count)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < count; i++)
		vsm_datastore_free(list[i]);
	free(list);
}

VSM_API const char *vsm_datastore_name(const vsm_datastore *ds)
{
	return ds ? ds->name : NULL;
}

VSM_API const char *vsm_datastore_uri(const vsm_datastore *ds)
{
	return ds ? ds->uri : NULL;
}

VSM_API const char *vsm_datastore_uuid(const vsm_datastore *ds)
{
	return ds ? ds->uuid : NULL;
}

VSM_API uint64_t vsm_datastore_generation(const vsm_datastore *ds)
{
	return ds ? ds->generation : 0;
}

VSM_API int vsm_datastore_capacity(vsm_ctx *ctx, const char *name, uint64_t *total,
				   uint64_t *free_bytes)
{
	vsm_dstore *ds;
	uint64_t t = 0, f = 0;
	int rc;

	vsm__error_reset();
	if (!ctx || !name)
		return vsm_err(VSM_EINVAL, "vsm_datastore_capacity: NULL argument");
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, name)) == 0 &&
	    (rc = ds->be->ops.capacity(ds->h, &t, &f)) < 0)
		vsm__error_prefix("datastore '%s'", name);
	vsm__ctx_unlock(ctx);
	if (rc == 0) {
		if (total)
			*total = t;
		if (free_bytes)
			*free_bytes = f;
	}
	return rc;
}
