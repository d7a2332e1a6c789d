/*
 * Attach and detach a container to a host: the container lease, the
 * backend's host_attach/host_detach, and the record that names the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "becall.h"
#include "container_int.h"
#include "devimage.h"
#include "lease.h"
#include "workflow.h"

/* --- attach / detach --- */

/*
 * Placed attaches of one state directory run one at a time, from the
 * choice to the record that names the host: two processes choosing at
 * once would each see a host below its container limit and both attach
 * there. An OFD lock on STATE/place.lock (released when the descriptor
 * is closed, also by a process that dies); -1 with the error set.
 */
static int place_lock(vsm_ctx *ctx)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/place.lock", ctx->state_dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		vsm_err(VSM_EIO, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	while (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
		if (errno != EINTR) {
			vsm_err(VSM_EIO, "cannot lock '%s': %s", path, strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

VSM_API int vsm_attach(vsm_container *c, const char *host, unsigned int flags)
{
	vsm__handle_stage *st = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	int64_t n = 0;
	char *hv = NULL, *chosen = NULL;
	bool took_over = false, same, acquired = false;
	bool place = (flags & VSM_ATTACH_PLACE) && (!host || !strcmp(host, "auto"));
	uint64_t lver = 0;
	int rc, place_fd = -1;

	vsm__error_reset();
	if (!c || (!host && !place))
		return vsm_err(VSM_EINVAL, "vsm_attach: NULL argument");
	if (flags & ~(VSM_ATTACH_TAKEOVER | VSM_ATTACH_PLACE))
		return vsm_err(VSM_EINVAL, "vsm_attach: unknown flags 0x%x", flags);
	vsm__ctx_lock(c->ctx);
	/* Phase 2 of placement (lib/place, through the hook lib/open.c set)
	 * chooses the host; then it is an attach like any other. */
	if (place) {
		if (!c->ctx->place_host) {
			rc = vsm_err(VSM_ENOTSUP, "vsm_attach: placement is not available in "
				     "this build");
			goto out;
		}
		if ((place_fd = place_lock(c->ctx)) < 0) {
			rc = -vsm_error_last()->code;
			goto out;
		}
		if ((rc = c->ctx->place_host(&chosen, c)) < 0)
			goto out;
		host = chosen;
	}
	if ((rc = vsm__container_fresh(c, &ds, &r)) < 0)
		goto out;
	if ((rc = vsm_catalog_count(c->ctx->cat, &n, "SELECT 1 FROM hosts WHERE name = ?",
				    "s", host)) < 0)
		goto out;
	if (!n) {
		rc = vsm_err(VSM_ENOTFOUND, "host '%s' does not exist", host);
		goto out;
	}
	if ((rc = vsm_catalog_count(c->ctx->cat, &n, "SELECT 1 FROM links WHERE host = ? AND "
				    "datastore = ?", "ss", host, c->datastore)) < 0)
		goto out;
	if (!n) {
		rc = vsm_err(VSM_ESTATE, "container '%s' cannot attach to host '%s': the host is "
			     "not linked to datastore '%s'", r->name, host, c->datastore);
		goto out;
	}
	if (r->destroying) {
		rc = vsm_err(VSM_ESTATE, "container '%s' is being destroyed", r->name);
		goto out;
	}
	same = r->attached_host && !strcmp(r->attached_host, host);
	/* Attached to another host this context itself manages: a local
	 * conflict, not a lease question. */
	if (r->attached_host && !same && vsm__lease_acts_for(c->ctx->leases, r->attached_host)) {
		rc = vsm_err(VSM_EBUSY, "container '%s' is attached to host '%s'; detach "
			     "it first", r->name, r->attached_host);
		goto out;
	}
	if (same && vsm__lease_held(ds->lease, r, host, &lver) && lver == r->lease_version) {
		rc = vsm__handle_set(c, r);
		goto out;
	}
	/* The lease decides: free, ours, or its holder dead (doc/leases.md). */
	if ((rc = vsm__lease_acquire(ds->lease, r, host, (flags & VSM_ATTACH_TAKEOVER) ?
				     VSM__LEASE_WAIT : 0, &lver, &took_over)) < 0)
		goto out;
	acquired = true;
	if (r->attached_host && !same && !took_over) {
		/* Attached without a lease (a datastore from before leases):
		 * only its host may let go of it. */
		rc = vsm_err(VSM_EBUSY, "container '%s' is attached to host '%s'; detach "
			     "it first", r->name, r->attached_host);
		goto out;
	}
	if (!same) {
		hv = vsm__host_uri(c->ctx, host);
		if ((rc = vsm__be_host_attach(ds, host, hv, 0)) < 0) {
			vsm__error_prefix("datastore '%s'", ds->name);
			goto out;
		}
	}
	if (took_over) {
		/* The dead host's deployments died with it. */
		vsm__log(c->ctx, VSM_LOG_WARN, "datastore '%s': container '%s' taken over from "
			 "dead host '%s'", ds->name, r->name, r->attached_host);
		while (r->n_deploys)
			vsm_record_remove_deploy(r, r->deploys[0].device);
	}
	r->lease_version = lver;
	/* After a takeover the record is written twice, so that a late write
	 * the old holder had in flight can never be the newest copy. */
	if ((rc = vsm_record_set_host(r, host)) < 0 ||
	    (rc = vsm__container_stage(&st, c, r)) < 0 ||
	    (rc = vsm__ds_put_record(c->ctx, ds, r)) < 0 ||
	    (took_over && (rc = vsm__ds_put_record(c->ctx, ds, r)) < 0)) {
		vsm__saved_error saved;

		vsm__error_save(&saved);
		if (!same)
			vsm__be_host_detach(ds, host, hv, 0);
		vsm__error_restore(&saved);
		goto out;
	}
	acquired = false;
	vsm__container_apply(c, st);
	st = NULL;
out:
	vsm__container_unstage(st);
	if (acquired && !same) {
		vsm__saved_error saved;

		vsm__error_save(&saved);
		vsm__lease_release(ds->lease, r);
		vsm__error_restore(&saved);
	}
	if (place_fd >= 0)
		close(place_fd);
	free(hv);
	free(chosen);
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

/* Undeploy everything (when forced) and clear the attachment in @r. */
int vsm__detach_record(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r, bool force)
{
	char *hv;
	int rc;

	if (r->n_deploys && !force)
		return vsm_err(VSM_EBUSY, "container '%s': device '%s' is deployed; undeploy it "
			       "first", r->name, r->deploys[0].device);
	while (r->n_deploys)
		if ((rc = vsm__undeploy_one(ctx, ds, r, r->deploys[0].device)) < 0)
			return rc;
	hv = vsm__host_uri(ctx, r->attached_host);
	rc = vsm__be_host_detach(ds, r->attached_host, hv, 0);
	free(hv);
	if (rc < 0) {
		vsm__error_prefix("datastore '%s'", ds->name);
		return rc;
	}
	return vsm_record_set_host(r, NULL);
}

VSM_API int vsm_detach(vsm_container *c, unsigned int flags)
{
	vsm__handle_stage *st = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	uint64_t lver = 0;
	int rc;

	vsm__error_reset();
	if (!c)
		return vsm_err(VSM_EINVAL, "vsm_detach: NULL argument");
	if (flags & ~VSM_DETACH_FORCE)
		return vsm_err(VSM_EINVAL, "vsm_detach: unknown flags 0x%x", flags);
	vsm__ctx_lock(c->ctx);
	if ((rc = vsm__container_fresh(c, &ds, &r)) < 0)
		goto out;
	if (!r->attached_host) {
		rc = vsm_err(VSM_ESTATE, "container '%s' is not attached", r->name);
		goto out;
	}
	/* Only the lease holder touches the host's side. */
	if ((rc = vsm__lease_fence(ds->lease, r, &lver)) < 0)
		goto out;
	if ((rc = vsm__handover_refuse(ds, r)) < 0)
		goto out;
	if ((rc = vsm__detach_record(c->ctx, ds, r, flags & VSM_DETACH_FORCE)) < 0 ||
	    (rc = vsm__container_stage(&st, c, r)) < 0 ||
	    (rc = vsm__ds_put_record(c->ctx, ds, r)) < 0)
		goto out;
	/* The record says detached: a failed release only delays others
	 * until our heartbeat stops. */
	if (vsm__lease_release(ds->lease, r) < 0) {
		vsm__log(c->ctx, VSM_LOG_WARN, "%s", vsm_error_last()->message);
		vsm__error_reset();
	}
	vsm__container_apply(c, st);
	st = NULL;
out:
	vsm__container_unstage(st);
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}
