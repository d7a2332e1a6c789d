/*
 * The one adapter between the core and a backend's datastore vtable: every
 * call of a backend's ops goes through here (tools/check-layers.py keeps
 * it so). It answers -VSM_ENOTSUP for an optional callback the backend
 * left out, so no caller tests the table itself, and it is where a later
 * vtable's shape is mapped onto what the core asks.
 */
#ifndef VSM_BECALL_H
#define VSM_BECALL_H

#include "bdev.h"
#include "ctx.h"

const char *vsm__be_scheme(const vsm_dstore *ds);

int vsm__be_open(vsm_dstore *ds, const char *uri, const vsm_backend_open_args *args);
void vsm__be_close(vsm_dstore *ds);
int vsm__be_capacity(vsm_dstore *ds, uint64_t *total, uint64_t *free_bytes);
/* The metadata device as a core bdev labelled @label. */
int vsm__be_meta_open(vsm_dstore *ds, uint64_t min_size, unsigned int flags,
		      const char *label, struct vsm_bdev **out);
/* A device as a core bdev labelled @label. */
int vsm__be_device_open(vsm_dstore *ds, const char *key, unsigned int flags,
			const char *label, struct vsm_bdev **out);

int vsm__be_device_create(vsm_dstore *ds, const vsm_backend_device_spec *spec,
			  char *key, size_t key_size, unsigned int *out_flags);
int vsm__be_device_delete(vsm_dstore *ds, const char *key, unsigned int flags);
bool vsm__be_can_resize(const vsm_dstore *ds);
int vsm__be_device_resize(vsm_dstore *ds, const char *key, uint64_t size, unsigned int flags);
/* Bytes device @key occupies now: -VSM_ENOTSUP without the optional op. */
bool vsm__be_can_allocated(const vsm_dstore *ds);
int vsm__be_device_allocated(vsm_dstore *ds, const char *key, uint64_t *bytes);
/* Pause/resume/freeze/thaw a domain (vtable v3 domain_fence, optional). */
bool vsm__be_can_fence(const vsm_dstore *ds);
int vsm__be_domain_fence(vsm_dstore *ds, const char *host, const char *host_uri,
			 const char *domain, unsigned int op);
bool vsm__be_can_list(const vsm_dstore *ds);
int vsm__be_device_list(vsm_dstore *ds, vsm_backend_device_cb cb, void *payload);

int vsm__be_host_attach(vsm_dstore *ds, const char *host, const char *host_uri,
			unsigned int flags);
int vsm__be_host_detach(vsm_dstore *ds, const char *host, const char *host_uri,
			unsigned int flags);
int vsm__be_device_deploy(vsm_dstore *ds, const char *key, const vsm_backend_deploy_req *req,
			  vsm_locator *out);
int vsm__be_device_undeploy(vsm_dstore *ds, const char *key,
			    const vsm_backend_deploy_req *req);

#endif /* VSM_BECALL_H */
