/*
 * What the container files of lib/ops share: the handle structures and
 * the few helpers more than one of them calls. Private to lib/ops.
 */
#ifndef VSM_CONTAINER_INT_H
#define VSM_CONTAINER_INT_H

#include "ops.h"

#define DEFAULT_STATE_SIZE (4u << 20)

/* What a handle hands out through its getters. A call that updates the
 * handle (attach, deploy, refresh, a checkpoint, ...) swaps in new state
 * but never frees anything a getter returned: strings are interned in
 * the handle (an unchanged value keeps its pointer, a new one is added),
 * and device and locator objects are kept, so that a caller may hold
 * them, and pass them back into calls on the same handle, until the
 * handle is freed. A handle grows only by the distinct values it has
 * seen (new keys after a checkpoint, a new locator per deployment). */
struct vsm_device {
	const char *name; /* interned in the handle */
	const char *key;  /* interned in the handle */
	uint64_t size;
	int format;
	const vsm_locator *loc; /* NULL unless deployed; owned by the handle */
};

struct vsm_container {
	vsm_ctx *ctx;
	char *datastore;
	vsm_record *rec;     /* current record; internal, never handed out */
	/* The getters' view of @rec. */
	const char *name, *uuid, *host;
	vsm_device **devs;   /* current devices, in record order */
	size_t n_devs;
	/* Everything ever handed out, freed with the handle. */
	char **strs;
	size_t n_strs, cap_strs;
	vsm_locator **locs;
	size_t n_locs, cap_locs;
	vsm_device **all;
	size_t n_all, cap_all;
};

/* A handle on @r (copied) for @datastore; vsm__handle_set swaps @r into
 * an existing handle (handle.c). */
int vsm__handle_new(vsm_container **out, vsm_ctx *ctx, const char *datastore,
		    const vsm_record *r);
int vsm__handle_set(vsm_container *c, const vsm_record *r);
/* The container's datastore and its current on-disk record (a copy the
 * caller frees), refreshed; ENOTFOUND when it is gone (container.c). */
int vsm__container_fresh(vsm_container *c, vsm_dstore **ds_out, vsm_record **out);
/* The hypervisor URI registered for @host, or NULL (deploy.c). */
char *vsm__host_uri(vsm_ctx *ctx, const char *host);

/* The per-device checks of create, also those of vsm_device_add: the
 * error names @container (create.c). */
int vsm__device_spec_check(const char *container, const vsm_device_spec *d);

/* A device's size and backing chain, resolved before anything is made:
 * with a base image the chain is the base and whatever it stands on
 * (create.c; free the chain with vsm__layers_free). */
typedef struct {
	uint64_t size;
	vsm_rec_layer *chain;
	size_t chain_len;
} vsm__planned_device;
int vsm__device_plan(vsm_dstore *ds, const char *container, const vsm_device_spec *d,
		     vsm__planned_device *p);

/* Undeploy @device of @r on its host and clear its deployment in @r
 * (deploy.c); detach @r from its host, @force past backend failures
 * (attach.c). */
int vsm__undeploy_one(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r, const char *device);
int vsm__detach_record(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r, bool force);

/* A locator copied from a record's deployment, or NULL (out of memory);
 * free it with vsm__locator_free (handle.c). */
vsm_locator *vsm__locator_from(const vsm_rec_deploy *d);
void vsm__locator_free(vsm_locator *loc);

#endif /* VSM_CONTAINER_INT_H */
