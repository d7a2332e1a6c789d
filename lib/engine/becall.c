/*
 * Every call of a backend's datastore ops (becall.h says why they meet
 * here). Optional callbacks a backend left out answer -VSM_ENOTSUP with a
 * message naming the datastore and the backend; everything else is passed
 * through unchanged, and the callers add what they were doing.
 */
#include "becall.h"

#define OPS(ds) (&(ds)->be->ops)

static int missing(const vsm_dstore *ds, const char *what)
{
	return vsm_err(VSM_ENOTSUP, "datastore '%s': backend '%s' cannot %s", ds->name,
		       OPS(ds)->scheme, what);
}

/* Backends say what failed about their own objects; the core names the
 * datastore (a backend that names it too is not repeated: error.c). */
static int named(const vsm_dstore *ds, int rc)
{
	if (rc < 0 && rc != -VSM_EMISMATCH)
		vsm__error_prefix("datastore '%s'", ds->name);
	return rc;
}

const char *vsm__be_scheme(const vsm_dstore *ds)
{
	return OPS(ds)->scheme;
}

int vsm__be_open(vsm_dstore *ds, const char *uri, const vsm_backend_open_args *args)
{
	return OPS(ds)->open(&ds->h, uri, args);
}

void vsm__be_close(vsm_dstore *ds)
{
	if (ds->h)
		OPS(ds)->close(ds->h);
	ds->h = NULL;
}

int vsm__be_capacity(vsm_dstore *ds, uint64_t *total, uint64_t *free_bytes)
{
	uint64_t t, f;

	return named(ds, OPS(ds)->capacity(ds->h, total ? total : &t, free_bytes ? free_bytes : &f));
}

int vsm__be_meta_open(vsm_dstore *ds, uint64_t min_size, unsigned int flags,
		      const char *label, vsm_bdev **out)
{
	vsm_bdev_io *h = NULL;
	int rc = vsm__backend_meta_open(ds->be, &h, ds->h, min_size, flags);

	if (rc < 0)
		return rc;
	return vsm_bdev_wrap(out, h, label, (flags & VSM_BDEV_RDONLY) != 0);
}

int vsm__be_device_open(vsm_dstore *ds, const char *key, unsigned int flags,
			const char *label, vsm_bdev **out)
{
	vsm_bdev_io *h = NULL;
	int rc = vsm__backend_device_open(ds->be, &h, ds->h, key, flags);

	if (rc < 0)
		return rc;
	return vsm_bdev_wrap(out, h, label, (flags & VSM_BDEV_RDONLY) != 0);
}

int vsm__be_device_create(vsm_dstore *ds, const vsm_backend_device_spec *spec,
			  char *key, size_t key_size, unsigned int *out_flags)
{
	return named(ds, OPS(ds)->device_create(ds->h, spec, key, key_size, out_flags));
}

int vsm__be_device_delete(vsm_dstore *ds, const char *key, unsigned int flags)
{
	return named(ds, OPS(ds)->device_delete(ds->h, key, flags));
}

bool vsm__be_can_resize(const vsm_dstore *ds)
{
	return OPS(ds)->device_resize != NULL;
}

int vsm__be_device_resize(vsm_dstore *ds, const char *key, uint64_t size, unsigned int flags)
{
	if (!OPS(ds)->device_resize)
		return missing(ds, "resize a device");
	return named(ds, OPS(ds)->device_resize(ds->h, key, size, flags));
}

bool vsm__be_can_allocated(const vsm_dstore *ds)
{
	return OPS(ds)->device_allocated != NULL;
}

int vsm__be_device_allocated(vsm_dstore *ds, const char *key, uint64_t *bytes)
{
	if (!OPS(ds)->device_allocated)
		return missing(ds, "say what a device occupies (its vtable has no "
			       "device_allocated)");
	return named(ds, OPS(ds)->device_allocated(ds->h, key, bytes));
}

bool vsm__be_can_fence(const vsm_dstore *ds)
{
	return OPS(ds)->domain_fence != NULL;
}

int vsm__be_domain_fence(vsm_dstore *ds, const char *host, const char *host_uri,
			 const char *domain, unsigned int op)
{
	if (!OPS(ds)->domain_fence)
		return missing(ds, "pause or resume a domain (its vtable has no domain_fence)");
	return named(ds, OPS(ds)->domain_fence(ds->h, host, host_uri, domain, op));
}

bool vsm__be_can_list(const vsm_dstore *ds)
{
	return OPS(ds)->device_list != NULL;
}

int vsm__be_device_list(vsm_dstore *ds, vsm_backend_device_cb cb, void *payload)
{
	if (!OPS(ds)->device_list)
		return missing(ds, "list its devices (its vtable has no device_list)");
	return named(ds, OPS(ds)->device_list(ds->h, cb, payload));
}

int vsm__be_host_attach(vsm_dstore *ds, const char *host, const char *host_uri,
			unsigned int flags)
{
	return named(ds, OPS(ds)->host_attach(ds->h, host, host_uri, flags));
}

int vsm__be_host_detach(vsm_dstore *ds, const char *host, const char *host_uri,
			unsigned int flags)
{
	return named(ds, OPS(ds)->host_detach(ds->h, host, host_uri, flags));
}

int vsm__be_device_deploy(vsm_dstore *ds, const char *key, const vsm_backend_deploy_req *req,
			  vsm_locator *out)
{
	return named(ds, OPS(ds)->device_deploy(ds->h, key, req, out));
}

int vsm__be_device_undeploy(vsm_dstore *ds, const char *key,
			    const vsm_backend_deploy_req *req)
{
	return named(ds, OPS(ds)->device_undeploy(ds->h, key, req));
}
