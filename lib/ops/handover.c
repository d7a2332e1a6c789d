/*
 * Host migration (include/vsm/handover.h): the public handover calls
 * over the lease's handover steps (lib/lease/handover.c), the record
 * that names the target once it completes, and the one-process
 * vsm_container_migrate_host. doc/host-migration.md gives the protocol.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsm/handover.h"

#include "becall.h"
#include "container_int.h"
#include "events.h"
#include "lease.h"

static void emit(vsm_ctx *ctx, const vsm_dstore *ds, const vsm_record *r, const char *host,
		 const char *detail)
{
	vsm__event_emit(ctx->events, VSM_EVENT_MIGRATION, ds->name, r->name, host, detail, 0);
}

static int attached(const vsm_record *r)
{
	if (r->destroying)
		return vsm_err(VSM_ESTATE, "container '%s' is being destroyed", r->name);
	if (!r->attached_host)
		return vsm_err(VSM_ESTATE, "container '%s' is not attached to a host", r->name);
	return 0;
}

/* @host is registered here and linked to @ds: this context may act for it. */
static int host_here(vsm_ctx *ctx, const vsm_dstore *ds, const char *host, bool *here)
{
	int64_t n = 0;
	int rc;

	*here = false;
	if ((rc = vsm_catalog_count(ctx->cat, &n, "SELECT 1 FROM links WHERE host = ? AND "
				    "datastore = ?", "ss", host, ds->name)) < 0)
		return rc;
	*here = n > 0;
	return 0;
}

int vsm__handover_refuse(vsm_dstore *ds, const vsm_record *r)
{
	char target[72] = "";
	int ho = vsm__lease_handover_state(ds->lease, r, NULL, target, sizeof(target));

	if (ho <= 0)
		return ho;
	return vsm_err(VSM_ESTATE, "container '%s' is being handed over to host '%s'; complete "
		       "or cancel the handover first", r->name, target);
}

static int begin_locked(vsm_container *c, const char *target)
{
	vsm_record *r = NULL;
	vsm_dstore *ds;
	uint64_t lver = 0;
	int rc;

	if ((rc = vsm__container_fresh(c, &ds, &r)) < 0 || (rc = attached(r)) < 0)
		goto out;
	if (!strcmp(r->attached_host, target)) {
		rc = vsm_err(VSM_EINVAL, "container '%s' is already attached to host '%s'",
			     r->name, target);
		goto out;
	}
	/* Only the holder begins: the fence takes the lease up again for a
	 * host this state directory acts for, or refuses. */
	if ((rc = vsm__lease_fence(ds->lease, r, &lver)) < 0 ||
	    (rc = vsm__lease_handover(ds->lease, r, r->attached_host, VSM__HO_BEGIN, target,
				      &lver, NULL, 0)) < 0)
		goto out;
	emit(c->ctx, ds, r, target, "start");
out:
	vsm_record_free(r);
	return rc;
}

static int check_opts(const vsm_handover_opts *opts, const char *fn)
{
	if (!opts)
		return 0;
	if (opts->version == 0 || opts->version > VSM_HANDOVER_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "%s: vsm_handover_opts version %u is not supported",
			       fn, opts->version);
	if (opts->flags & ~VSM_HANDOVER_BEGIN_ONLY)
		return vsm_err(VSM_EINVAL, "%s: unknown flags 0x%x", fn, opts->flags);
	return 0;
}

VSM_API int vsm_handover_begin(vsm_container *c, const char *target_host,
			       const vsm_handover_opts *opts)
{
	int rc;

	vsm__error_reset();
	if (!c || !target_host)
		return vsm_err(VSM_EINVAL, "vsm_handover_begin: NULL argument");
	if ((rc = check_opts(opts, "vsm_handover_begin")) < 0)
		return rc;
	vsm__ctx_lock(c->ctx);
	rc = begin_locked(c, target_host);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

static int accept_locked(vsm_container *c, const char *host)
{
	vsm_record *r = NULL;
	vsm_dstore *ds;
	char source[72] = "";
	char *hv = NULL;
	uint64_t lver = 0;
	bool here;
	int rc;

	if ((rc = vsm__container_fresh(c, &ds, &r)) < 0 || (rc = attached(r)) < 0)
		goto out;
	if (!strcmp(r->attached_host, host)) {
		rc = vsm_err(VSM_ESTATE, "container '%s' is already attached to host '%s'",
			     r->name, host);
		goto out;
	}
	if ((rc = host_here(c->ctx, ds, host, &here)) < 0)
		goto out;
	if (!here) {
		rc = vsm_err(VSM_ESTATE, "container '%s': host '%s' is not registered here or "
			     "not linked to datastore '%s'", r->name, host, ds->name);
		goto out;
	}
	/* The target's hypervisor must reach the datastore before it writes. */
	hv = vsm__host_uri(c->ctx, host);
	if ((rc = vsm__be_host_attach(ds, host, hv, 0)) < 0) {
		vsm__error_prefix("datastore '%s'", ds->name);
		goto out;
	}
	if ((rc = vsm__lease_handover(ds->lease, r, host, VSM__HO_ACCEPT, NULL, &lver, source,
				      sizeof(source))) < 0) {
		vsm__saved_error saved;

		vsm__error_save(&saved);
		vsm__be_host_detach(ds, host, hv, 0);
		vsm__error_restore(&saved);
		goto out;
	}
	emit(c->ctx, ds, r, host, "switchover admitted: both hosts may write until complete");
out:
	free(hv);
	vsm_record_free(r);
	return rc;
}

VSM_API int vsm_handover_accept(vsm_container *c, const char *host, unsigned int flags)
{
	int rc;

	vsm__error_reset();
	if (!c || !host)
		return vsm_err(VSM_EINVAL, "vsm_handover_accept: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_handover_accept: unknown flags 0x%x", flags);
	vsm__ctx_lock(c->ctx);
	rc = accept_locked(c, host);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

/*
 * The record after a complete: attached to @target, carrying the new
 * lease version, with the deployments moved along (the locators are the
 * shared storage's, the same on either host). Written twice, as after a
 * takeover, so that a late write of the source can never be the newest
 * copy (doc/leases.md, "Fencing the metadata").
 */
static int record_to_target(vsm_container *c, vsm_dstore *ds, const vsm_record *cur,
			    const char *target, uint64_t lver)
{
	vsm__handle_stage *st = NULL;
	vsm_record *r = vsm_record_dup(cur);
	size_t i;
	int rc;

	if (!r)
		return -VSM_ENOMEM;
	for (i = 0; i < r->n_deploys; i++) {
		vsm_rec_deploy d = r->deploys[i];

		d.host = (char *)target;
		if ((rc = vsm_record_set_deploy(r, &d)) < 0)
			goto out;
	}
	r->lease_version = lver;
	if ((rc = vsm_record_set_host(r, target)) < 0 ||
	    (rc = vsm__container_stage(&st, c, r)) < 0 ||
	    (rc = vsm__ds_put_record(c->ctx, ds, r)) < 0 ||
	    (rc = vsm__ds_put_record(c->ctx, ds, r)) < 0)
		goto out;
	vsm__container_apply(c, st);
	st = NULL;
out:
	vsm__container_unstage(st);
	vsm_record_free(r);
	return rc;
}

static int complete_locked(vsm_container *c)
{
	vsm_record *r = NULL, *cur;
	vsm_dstore *ds;
	char source[72] = "", target[72] = "";
	uint64_t lver = 0;
	int rc, state;

	if ((rc = vsm__container_fresh(c, &ds, &r)) < 0 || (rc = attached(r)) < 0)
		goto out;
	/* Under the metadata lock from the lease step to the record write:
	 * a record write of the source's either comes before both (and the
	 * source still held the lease) or after both (and is fenced). */
	if ((rc = vsm__ds_change_begin(c->ctx, ds)) < 0)
		goto out;
	if (!(cur = vsm__ds_find(ds, r->name, r->uuid))) {
		rc = vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' no longer exists",
			     ds->name, r->name);
		goto unlock;
	}
	if ((state = vsm__lease_handover_state(ds->lease, cur, source, target,
					       sizeof(source))) < 0) {
		rc = state;
		goto unlock;
	}
	if (state == VSM_HANDOVER_NONE && !strcmp(source, cur->attached_host) &&
	    vsm__lease_held(ds->lease, cur, source, &lver)) {
		rc = 0; /* attached to a host whose lease we hold: nothing to do */
		goto unlock;
	}
	if (state == VSM_HANDOVER_NONE && strcmp(source, cur->attached_host) &&
	    vsm__lease_acts_for(c->ctx->leases, source)) {
		/* Completed before, its record write failed: finish it. */
		snprintf(target, sizeof(target), "%s", source);
	} else if (state != VSM_HANDOVER_ACCEPTED) {
		rc = vsm_err(state == VSM_HANDOVER_BEGUN ? VSM_ESTATE : VSM_ESTALE,
			     "container '%s': %s", r->name, state == VSM_HANDOVER_BEGUN ?
			     "the handover was not accepted yet" : "no handover to complete (it "
			     "was cancelled or fell back to the source)");
		goto unlock;
	} else if (!vsm__lease_acts_for(c->ctx->leases, target)) {
		rc = vsm_err(VSM_ESTATE, "container '%s': the handover's target is host '%s', "
			     "which this context does not act for", r->name, target);
		goto unlock;
	}
	/* The commit point: the lease is the target's. */
	if ((rc = vsm__lease_handover(ds->lease, cur, target, VSM__HO_COMPLETE, NULL, &lver,
				      NULL, 0)) < 0)
		goto unlock;
	if ((rc = record_to_target(c, ds, cur, target, lver)) < 0) {
		vsm__log(c->ctx, VSM_LOG_WARN, "container '%s' was handed over to host '%s', but "
			 "its record still names host '%s' (%s); vsm_handover_complete() again "
			 "finishes it", r->name, target, cur->attached_host,
			 vsm_error_last()->message);
		vsm__error_reset();
		rc = 0;
	}
	emit(c->ctx, ds, r, target, "complete");
unlock:
	vsm__ds_change_end(c->ctx, ds);
out:
	vsm_record_free(r);
	return rc;
}

VSM_API int vsm_handover_complete(vsm_container *c, unsigned int flags)
{
	int rc;

	vsm__error_reset();
	if (!c)
		return vsm_err(VSM_EINVAL, "vsm_handover_complete: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_handover_complete: unknown flags 0x%x", flags);
	vsm__ctx_lock(c->ctx);
	rc = complete_locked(c);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

static int cancel_locked(vsm_container *c, const char *why)
{
	vsm_record *r = NULL;
	vsm_dstore *ds;
	char target[72] = "", detail[128];
	uint64_t lver = 0;
	int rc;

	if ((rc = vsm__container_fresh(c, &ds, &r)) < 0 || (rc = attached(r)) < 0)
		goto out;
	/* Only the source cancels; after a complete the record names the
	 * target, which this context must not start acting for. */
	if (!vsm__lease_acts_for(c->ctx->leases, r->attached_host)) {
		rc = vsm_err(VSM_ESTALE, "container '%s' is attached to host '%s', which this "
			     "context does not act for", r->name, r->attached_host);
		goto out;
	}
	if ((rc = vsm__lease_handover(ds->lease, r, r->attached_host, VSM__HO_CANCEL, NULL,
				      &lver, target, sizeof(target))) < 0)
		goto out;
	snprintf(detail, sizeof(detail), "abort %s", why);
	emit(c->ctx, ds, r, target, detail);
out:
	vsm_record_free(r);
	return rc;
}

VSM_API int vsm_handover_cancel(vsm_container *c, unsigned int flags)
{
	int rc;

	vsm__error_reset();
	if (!c)
		return vsm_err(VSM_EINVAL, "vsm_handover_cancel: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_handover_cancel: unknown flags 0x%x", flags);
	vsm__ctx_lock(c->ctx);
	rc = cancel_locked(c, "cancelled");
	vsm__ctx_unlock(c->ctx);
	return rc;
}

VSM_API int vsm_handover_state_of(vsm_container *c, char **target)
{
	vsm_record *r = NULL;
	vsm_dstore *ds;
	char name[72] = "";
	int rc;

	vsm__error_reset();
	if (target)
		*target = NULL;
	if (!c)
		return vsm_err(VSM_EINVAL, "vsm_handover_state_of: NULL argument");
	vsm__ctx_lock(c->ctx);
	if ((rc = vsm__container_fresh(c, &ds, &r)) < 0)
		goto out;
	if (!r->attached_host) {
		rc = VSM_HANDOVER_NONE;
		goto out;
	}
	if ((rc = vsm__lease_handover_state(ds->lease, r, NULL, name, sizeof(name))) > 0 &&
	    target && !(*target = vsm__strdup(name)))
		rc = -VSM_ENOMEM;
out:
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

VSM_API int vsm_container_migrate_host(vsm_container *c, const char *host,
				       const vsm_handover_opts *opts)
{
	vsm_record *r = NULL;
	vsm_dstore *ds;
	bool here = false;
	int rc;

	vsm__error_reset();
	if (!c || !host)
		return vsm_err(VSM_EINVAL, "vsm_container_migrate_host: NULL argument");
	if ((rc = check_opts(opts, "vsm_container_migrate_host")) < 0)
		return rc;
	vsm__ctx_lock(c->ctx);
	if ((rc = vsm__container_fresh(c, &ds, &r)) < 0 || (rc = attached(r)) < 0)
		goto out;
	if ((rc = host_here(c->ctx, ds, host, &here)) < 0 || (rc = begin_locked(c, host)) < 0)
		goto out;
	if (!here || (opts && (opts->flags & VSM_HANDOVER_BEGIN_ONLY))) {
		vsm__log(c->ctx, VSM_LOG_INFO, "container '%s': handover to host '%s' begun; "
			 "the target's context must accept and complete it", r->name, host);
		rc = VSM_HANDOVER_BEGUN;
		goto out;
	}
	if ((rc = accept_locked(c, host)) < 0 || (rc = complete_locked(c)) < 0) {
		vsm__saved_error saved;

		/* Back to the source alone, unless the complete committed. */
		vsm__error_save(&saved);
		if (cancel_locked(c, "failed") < 0)
			vsm__error_reset();
		vsm__error_restore(&saved);
	}
out:
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}
