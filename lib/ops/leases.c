/*
 * The public lease calls (include/vsm/lease.h): the status of every
 * container's lease on a datastore, keeping a host's heartbeat, manual
 * renewal. The protocol itself is lib/lease/; this file only walks the
 * datastore's records and shapes the answers.
 */
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "lease.h"

struct vsm_lease {
	char *container;
	char *host;
	int state;
	int64_t since;
	uint64_t version;
	int64_t stopped;
	int mine;
};

static void lease_free(vsm_lease *x)
{
	if (!x)
		return;
	free(x->container);
	free(x->host);
	free(x);
}

VSM_API void vsm_lease_list_free(vsm_lease **list, size_t count)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < count; i++)
		lease_free(list[i]);
	free(list);
}

static int by_container(const void *a, const void *b)
{
	return strcmp((*(vsm_lease *const *)a)->container, (*(vsm_lease *const *)b)->container);
}

VSM_API int vsm_lease_status(vsm_lease ***out, size_t *count, vsm_ctx *ctx,
			     const char *datastore, unsigned int flags)
{
	vsm_lease **list = NULL;
	vsm__lease_view *views = NULL;
	vsm_lease_ds *l;
	vsm_dstore *ds;
	size_t i, n = 0;
	int rc;

	vsm__error_reset();
	if (!out || !count || !ctx || !datastore)
		return vsm_err(VSM_EINVAL, "vsm_lease_status: NULL argument");
	if (flags & ~VSM_LEASE_STATUS_WATCH)
		return vsm_err(VSM_EINVAL, "vsm_lease_status: unknown flags 0x%x", flags);
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, datastore)) < 0 || (rc = vsm__ds_refresh(ctx, ds)) < 0)
		goto out;
	if (!(l = ds->lease)) {
		rc = vsm_err(VSM_ENOTSUP, "datastore '%s' has no lease area open", datastore);
		goto out;
	}
	if (!(list = vsm__calloc(ds->n_recs + 1, sizeof(*list)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if (!(views = vsm__calloc(ds->n_recs + 1, sizeof(*views)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	rc = vsm__lease_status(l, (const vsm_record *const *)ds->recs, ds->n_recs,
			       (flags & VSM_LEASE_STATUS_WATCH) != 0, views);
	for (i = 0; rc == 0 && i < ds->n_recs; i++) {
		const vsm__lease_view *v = &views[i];
		vsm_lease *x;

		if (ds->recs[i]->resv || ds->recs[i]->group)
			continue; /* a placement in progress or a group holds no lease */
		if (!(x = vsm__calloc(1, sizeof(*x))) ||
		    !(x->container = vsm__strdup(ds->recs[i]->name)) ||
		    (v->state != VSM_LEASE_FREE && !(x->host = vsm__strdup(v->owner)))) {
			if (x)
				free(x->container);
			free(x);
			rc = -VSM_ENOMEM;
			break;
		}
		list[n++] = x;
		x->state = v->state;
		x->since = v->since;
		x->version = v->version;
		x->stopped = v->stopped;
		x->mine = v->mine;
	}
	if (rc < 0)
		goto out;
	if (n > 1)
		qsort(list, n, sizeof(*list), by_container);
	*out = list;
	*count = n;
	list = NULL;
out:
	free(views);
	vsm_lease_list_free(list, n);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API const char *vsm_lease_container(const vsm_lease *l)
{
	return l ? l->container : NULL;
}

VSM_API const char *vsm_lease_host(const vsm_lease *l)
{
	return l ? l->host : NULL;
}

VSM_API int vsm_lease_state_of(const vsm_lease *l)
{
	return l ? l->state : VSM_LEASE_FREE;
}

VSM_API const char *vsm_lease_state_name(int state)
{
	switch (state) {
	case VSM_LEASE_FREE: return "free";
	case VSM_LEASE_LIVE: return "live";
	case VSM_LEASE_STOPPED: return "stopped";
	case VSM_LEASE_DEAD: return "dead";
	}
	return NULL;
}

VSM_API int64_t vsm_lease_since(const vsm_lease *l)
{
	return l ? l->since : 0;
}

VSM_API uint64_t vsm_lease_version(const vsm_lease *l)
{
	return l ? l->version : 0;
}

VSM_API int64_t vsm_lease_stopped_ms(const vsm_lease *l)
{
	return l ? l->stopped : 0;
}

VSM_API int vsm_lease_is_mine(const vsm_lease *l)
{
	return l ? l->mine : 0;
}

VSM_API int vsm_lease_keep(vsm_ctx *ctx, const char *host, unsigned int flags)
{
	char **names = NULL;
	size_t n = 0, i;
	int rc;

	vsm__error_reset();
	if (!ctx || !host)
		return vsm_err(VSM_EINVAL, "vsm_lease_keep: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_lease_keep: unknown flags 0x%x", flags);
	vsm__ctx_lock(ctx);
	if ((rc = vsm_catalog_strings(ctx->cat, &names, &n, "SELECT datastore FROM links "
				      "WHERE host = ? ORDER BY datastore", "s", host)) < 0)
		goto out;
	if (n == 0) {
		int64_t exists = 0;

		if ((rc = vsm_catalog_count(ctx->cat, &exists, "SELECT 1 FROM hosts WHERE "
					    "name = ?", "s", host)) < 0)
			goto out;
		if (!exists) {
			rc = vsm_err(VSM_ENOTFOUND, "host '%s' does not exist", host);
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		vsm_dstore *ds;

		if ((rc = vsm__ds_get(&ds, ctx, names[i])) < 0)
			goto out;
		if (!ds->lease) {
			rc = vsm_err(VSM_ENOTSUP, "datastore '%s' has no lease area open", ds->name);
			goto out;
		}
		if ((rc = vsm__lease_keep(ds->lease, host)) < 0)
			goto out;
	}
	vsm__lease_host_note(ctx->leases, host);
out:
	vsm_strv_free(names, n);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_lease_renew(vsm_ctx *ctx, unsigned int flags)
{
	vsm__error_reset();
	if (!ctx)
		return vsm_err(VSM_EINVAL, "vsm_lease_renew: ctx is NULL");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_lease_renew: unknown flags 0x%x", flags);
	return vsm__lease_renew_all(ctx->leases);
}
