/*
 * Deploy and undeploy a container's device on its host: the request to
 * the backend, the locator it returns, and the record that remembers it.
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

/* --- deploy / undeploy --- */

char *vsm__host_uri(vsm_ctx *ctx, const char *host)
{
	char **v = NULL;
	size_t n = 0;
	char *uri = NULL;

	if (vsm_catalog_strings(ctx->cat, &v, &n, "SELECT hypervisor_uri FROM hosts WHERE "
				"name = ? AND hypervisor_uri IS NOT NULL", "s", host) == 0 && n)
		uri = vsm__strdup(v[0]);
	vsm_strv_free(v, n);
	return uri;
}

static void deploy_req_init(vsm_backend_deploy_req *req, const vsm_record *r,
			    const vsm_rec_device *d, const char *host, const char *hv_uri,
			    const char **keys, const char **formats)
{
	size_t i;

	memset(req, 0, sizeof(*req));
	req->version = VSM_BACKEND_DEPLOY_REQ_VERSION;
	req->host = host;
	req->host_uri = hv_uri;
	req->format = vsm_format_name(d->format);
	for (i = 0; i < d->chain_len; i++) {
		keys[i] = d->chain[i].key;
		formats[i] = vsm_format_name(d->chain[i].format);
	}
	req->chain_keys = keys;
	req->chain_formats = formats;
	req->chain_len = d->chain_len;
	(void)r;
}

int vsm__undeploy_one(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r, const char *device)
{
	const vsm_rec_deploy *dep = vsm_record_deploy(r, device);
	const vsm_rec_device *d = vsm_record_device(r, device);
	const char *keys[64], *formats[64];
	vsm_backend_deploy_req req;
	char *hv;
	int rc;

	if (!dep || !d)
		return 0;
	if (d->chain_len > 64)
		return vsm_err(VSM_EINVAL, "device '%s': backing chain too deep", device);
	hv = vsm__host_uri(ctx, dep->host);
	deploy_req_init(&req, r, d, dep->host, hv, keys, formats);
	req.domain = dep->domain; /* unplug from where it was plugged */
	rc = vsm__be_device_undeploy(ds, d->key, &req);
	free(hv);
	if (rc < 0) {
		vsm__error_prefix("datastore '%s': container '%s' device '%s'", ds->name,
				  r->name, device);
		return rc;
	}
	vsm_record_remove_deploy(r, device);
	return 0;
}

VSM_API int vsm_device_deploy(vsm_locator **out, vsm_container *c, const char *device,
			      const vsm_deploy_opts *opts)
{
	vsm_deploy_opts defaults = VSM_DEPLOY_OPTS_INIT;
	const char *keys[64], *formats[64];
	vsm_backend_deploy_req req;
	const vsm_rec_device *d;
	vsm_rec_deploy dep = {0};
	vsm_locator *loc = NULL, *copy = NULL;
	vsm__handle_stage *st = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	char target[8], *hv = NULL;
	size_t idx;
	int rc;

	vsm__error_reset();
	if (!c || !device)
		return vsm_err(VSM_EINVAL, "vsm_device_deploy: NULL argument");
	if (!opts)
		opts = &defaults;
	if (opts->version == 0 || opts->version > VSM_DEPLOY_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_deploy_opts version %u is not supported",
			       opts->version);
	/* Checked here for every backend, not only by the ones that build XML. */
	if ((opts->target && (rc = vsm_disk_target_check(opts->target)) < 0) ||
	    (opts->bus && (rc = vsm_disk_bus_check(opts->bus)) < 0))
		return rc;
	vsm__ctx_lock(c->ctx);
	if ((rc = vsm__container_fresh(c, &ds, &r)) < 0)
		goto out;
	if (!(d = vsm_record_device(r, device))) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no device '%s'", r->name, device);
		goto out;
	}
	if (r->destroying) {
		rc = vsm_err(VSM_ESTATE, "container '%s' is being destroyed", r->name);
		goto out;
	}
	if (!r->attached_host) {
		rc = vsm_err(VSM_ESTATE, "container '%s' is not attached to a host; attach it "
			     "before deploying device '%s'", r->name, device);
		goto out;
	}
	/* Deploy only while the container's lease is ours (doc/leases.md). */
	{
		uint64_t lver = 0;

		if ((rc = vsm__lease_fence(ds->lease, r, &lver)) < 0)
			goto out;
	}
	if (!vsm_record_deploy(r, device)) {
		if (d->chain_len > 64) {
			rc = vsm_err(VSM_EINVAL, "device '%s': backing chain too deep", device);
			goto out;
		}
		idx = (size_t)(d - r->devices);
		snprintf(target, sizeof(target), "vd%c", (char)('a' + idx % 26));
		hv = vsm__host_uri(c->ctx, r->attached_host);
		deploy_req_init(&req, r, d, r->attached_host, hv, keys, formats);
		req.domain = opts->domain;
		req.target = opts->target ? opts->target : target;
		req.bus = opts->bus ? opts->bus : "virtio";
		if (!(loc = vsm__calloc(1, sizeof(*loc)))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
		if ((rc = vsm__be_device_deploy(ds, d->key, &req, loc)) < 0) {
			vsm__error_prefix("datastore '%s': container '%s' device '%s'",
					  ds->name, r->name, device);
			goto out;
		}
		if (!loc->uri || !loc->xml) {
			rc = vsm_err(VSM_EINTERNAL, "datastore '%s': backend '%s' deployed device "
				     "'%s' without a locator", ds->name, vsm__be_scheme(ds), device);
			vsm__be_device_undeploy(ds, d->key, &req);
			goto out;
		}
		dep.device = (char *)device;
		dep.host = r->attached_host;
		dep.uri = loc->uri;
		dep.path = loc->path;
		dep.xml = loc->xml;
		dep.domain = (char *)opts->domain;
		/* The record write commits: what follows it cannot fail. */
		if ((rc = vsm_record_set_deploy(r, &dep)) < 0 ||
		    (rc = vsm__container_stage(&st, c, r)) < 0 ||
		    (out && !(copy = vsm__locator_from(vsm_record_deploy(r, device))) &&
		     (rc = -VSM_ENOMEM) < 0) ||
		    (rc = vsm__ds_put_record(c->ctx, ds, r)) < 0) {
			vsm__saved_error saved;

			vsm__error_save(&saved);
			vsm__be_device_undeploy(ds, d->key, &req);
			vsm__error_restore(&saved);
			goto out;
		}
	} else if ((rc = vsm__container_stage(&st, c, r)) < 0 ||
		   (out && !(copy = vsm__locator_from(vsm_record_deploy(r, device))) &&
		    (rc = -VSM_ENOMEM) < 0)) {
		goto out;
	}
	vsm__container_apply(c, st);
	st = NULL;
	if (out) {
		*out = copy;
		copy = NULL;
	}
out:
	vsm__container_unstage(st);
	vsm__locator_free(copy);
	vsm__locator_free(loc);
	free(hv);
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

VSM_API int vsm_device_undeploy(vsm_container *c, const char *device, unsigned int flags)
{
	vsm__handle_stage *st = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	int rc;

	vsm__error_reset();
	if (!c || !device)
		return vsm_err(VSM_EINVAL, "vsm_device_undeploy: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_device_undeploy: unknown flags 0x%x", flags);
	vsm__ctx_lock(c->ctx);
	if ((rc = vsm__container_fresh(c, &ds, &r)) < 0)
		goto out;
	if (!vsm_record_device(r, device)) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no device '%s'", r->name, device);
		goto out;
	}
	if (!vsm_record_deploy(r, device)) {
		rc = vsm_err(VSM_ESTATE, "container '%s': device '%s' is not deployed", r->name,
			     device);
		goto out;
	}
	if (r->attached_host) {
		uint64_t lver = 0;

		if ((rc = vsm__lease_fence(ds->lease, r, &lver)) < 0)
			goto out;
	}
	if ((rc = vsm__undeploy_one(c->ctx, ds, r, device)) < 0 ||
	    (rc = vsm__container_stage(&st, c, r)) < 0 ||
	    (rc = vsm__ds_put_record(c->ctx, ds, r)) < 0)
		goto out;
	vsm__container_apply(c, st);
	st = NULL;
out:
	vsm__container_unstage(st);
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}
