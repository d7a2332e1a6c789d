/*
 * Private view of a context and of the datastores it has open. Shared by
 * the core's files; never exported.
 */
#ifndef VSM_CTX_H
#define VSM_CTX_H

#include <pthread.h>

#include "catalog.h"
#include "events.h"
#include "hyper.h"
#include "internal.h"
#include "meta.h"
#include "record.h"
#include "strmap.h"
#include "vsm/placement.h"

typedef struct {
	struct vsm_datastore_ops ops; /* our copy, zero-filled past the caller's size */
	/* A 0.1 table's copy (v1.version != 0; its datastore callbacks are
	 * also in @ops), whose devices lib/backend_v1.c wraps; else zeros. */
	struct vsm_backend_ops v1;
	void *payload;
} vsm_backend_reg;

/* Register a table (context.c): checks the required callbacks (device
 * and metadata opens are @v1's when given), and that no scheme or alias
 * is served yet. */
int vsm__backend_add(vsm_ctx *ctx, const struct vsm_datastore_ops *ops,
		     const struct vsm_backend_ops *v1, void *payload);
/* Open a device or the metadata device through a v2 table or a 0.1 one
 * (lib/backend_v1.c); either way the result is a v2 device handle. */
int vsm__backend_device_open(const vsm_backend_reg *be, vsm_bdev_io **out, vsm_backend_ds *h,
			     const char *key, unsigned int flags);
int vsm__backend_meta_open(const vsm_backend_reg *be, vsm_bdev_io **out, vsm_backend_ds *h,
			   uint64_t min_size, unsigned int flags);

/* What the cache knows of one slot of a datastore. */
enum {
	VSM_DS_SLOT_FREE = 0,    /* empty, tombstoned, or an unreferenced piece */
	VSM_DS_SLOT_RECORD = 1,
	VSM_DS_SLOT_DAMAGED = 2,
	VSM_DS_SLOT_PIECE = 3,   /* continues the record of another slot */
};

/* A datastore opened by this context, with the container records read
 * at generation @gen (0: nothing cached yet). recs[] lists them densely
 * (each record's position is in pos[slot]); by_slot[], the maps and
 * use[] find them in constant time. */
typedef struct vsm_dstore {
	char *name;
	char *uri;
	const vsm_backend_reg *be;
	vsm_backend_ds *h;
	vsm_meta *meta;
	uint64_t gen;
	uint64_t cat_gen;      /* generation the catalog's rows reach */
	vsm_record **recs;
	size_t n_recs, cap_recs;
	vsm_record **by_slot;  /* [n_slots] */
	uint32_t *pos;         /* [n_slots]: index in recs[] */
	uint8_t *use;          /* [n_slots]: VSM_DS_SLOT_* */
	uint32_t n_slots;
	uint32_t free_hint;    /* no free slot below it */
	vsm_strmap names;      /* name -> slot */
	vsm_strmap uuids;      /* uuid -> slot */
	vsm_strmap dup_names;  /* name -> records bearing it, when more than one */
	uint32_t *damaged;     /* slots no copy of which is readable */
	char **damaged_why;
	size_t n_damaged;
	uint32_t *dirty;       /* slots whose catalog row is behind */
	size_t n_dirty, cap_dirty;
	bool recovering;       /* journal recovery in progress on it */
	bool recovered;        /* journal recovery ran for it (change_begin) */
	struct vsm_dslock *lock;
	int lock_depth;        /* nested metadata changes */
	bool warned_no_caw;
	struct vsm_ctx *ctx;   /* owner, for backend notifications */
	struct vsm_lease_ds *lease; /* heartbeats and leases (lib/lease) */
	struct vsm_dstore *next;
} vsm_dstore;

struct vsm_ctx;
/* A journal action an upper module registered (workflow.h). */
typedef struct {
	const char *name; /* static */
	int (*fn)(struct vsm_ctx *ctx, vsm_dstore *ds, const char *action, const char *arg);
} vsm__wf_action;

/* Run by container destroy (ops) for the modules above it: before the
 * record is removed (@after false; a failure stops the destroy), and
 * after, by the call that removed it (failures are only logged). */
typedef int (*vsm__destroy_hook)(struct vsm_ctx *ctx, vsm_dstore *ds,
				 const vsm_record *r, bool after);

struct vsm_ctx {
	pthread_mutex_t lock; /* recursive: public calls nest internal ones */
	char *state_dir;
	vsm_catalog *cat;
	vsm_backend_reg **backends; /* each allocated once: datastores point at them */
	size_t n_backends;
	vsm_dstore *open;
	vsm_log_cb log_cb;
	void *log_payload;
	int log_level;
	vsm_event_hub *events;
	struct vsm_lease_mgr *leases; /* lib/lease: renewal thread and held leases */
	vsm__wf_action *wf_actions;   /* registered by lib/open.c */
	size_t n_wf_actions;
	vsm__destroy_hook *destroy_hooks;
	size_t n_destroy_hooks;
	struct vsm__modules *modules; /* lib/modules.c: loaded backend modules */
	vsm__hv_list hv;              /* hypervisor drivers (hyper.c), newest last */
	char wf_nonce[17];            /* names this context in journal owners */
	/* Placement (lib/place), set by lib/open.c: vsm_container_create
	 * with VSM_CONTAINER_CREATE_PLACE reserves through place_reserve,
	 * vsm_attach with VSM_ATTACH_PLACE asks place_host for a host
	 * (*@host_out: malloc'd). NULL: placement is not composed in. */
	int (*place_reserve)(struct vsm_reservation **out, struct vsm_ctx *ctx,
			     const char *name, const vsm_place_request *req);
	int (*place_host)(char **host_out, vsm_container *c);
	/* Set by lib/open.c for the group layer: vsm_container_destroy
	 * asks it before the destroy begins; a negative code (with the
	 * error set) refuses the destroy (a member of a consistency group). */
	int (*destroy_check)(struct vsm_ctx *ctx, const char *ds_name, const vsm_record *r);
	/* Workflow templates (lib/flow): the ops a program registered, and
	 * how to free them (the engine does not know their shape). */
	void *flow;
	void (*flow_free)(void *flow);
	/* The device handles open through vsm_image_open_device (imgreg.h). */
	struct vsm__imgreg *imgreg;
};

struct vsm_locator {
	char *uri;
	char *path;
	char *xml;
	char *host;
};

void vsm__log(vsm_ctx *ctx, int level, const char *fmt, ...) VSM_PRINTF(3, 4);

void vsm__ctx_lock(vsm_ctx *ctx);
void vsm__ctx_unlock(vsm_ctx *ctx);

const vsm_backend_reg *vsm__backend_for_uri(vsm_ctx *ctx, const char *uri);

/* Open (once) the registered datastore @name. */
int vsm__ds_get(vsm_dstore **out, vsm_ctx *ctx, const char *name);
void vsm__ds_close(vsm_dstore *ds);
/* Drop every cached record (lib/dscache.c). */
void vsm__ds_cache_clear(vsm_dstore *ds);
void vsm__ds_forget(vsm_ctx *ctx, const char *name);
/* Bring the cached records up to the datastore's current generation. */
int vsm__ds_refresh(vsm_ctx *ctx, vsm_dstore *ds);

/*
 * Every change of a datastore's records runs between begin and end, under
 * the datastore's metadata lock (lib/dslock.c), with the cache refreshed
 * at begin: what the cache says then is what the datastore holds. Changes
 * nest; the lock is released by the outermost end.
 */
int vsm__ds_change_begin(vsm_ctx *ctx, vsm_dstore *ds);
void vsm__ds_change_end(vsm_ctx *ctx, vsm_dstore *ds);

/* Write @r to its slot (it must still hold @r's container, unchanged
 * since @r->seq was read). Updates @r->seq, the cache and the
 * generation. Takes the lock for its own duration when not held. */
int vsm__ds_put_record(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r);
/* Store a new container: its name must be free on the datastore; a slot
 * is chosen (the record area grows as needed) and set in @r->slot. */
int vsm__ds_insert_record(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r);
/* Move the generation on (after journal recovery changed the datastore). */
int vsm__ds_touch(vsm_ctx *ctx, vsm_dstore *ds);
/* Tombstone @slot if it still holds @uuid: 1 if this call did, 0 if it
 * was gone already (absent is not an error). */
int vsm__ds_free_slot(vsm_ctx *ctx, vsm_dstore *ds, uint32_t slot, const char *uuid);
/* Tombstone the slot holding container @uuid, wherever it is. */
int vsm__ds_free_uuid(vsm_ctx *ctx, vsm_dstore *ds, const char *uuid);
/* Cached record by name or uuid, or NULL. A name that two records bear
 * (left by 0.1's races) finds neither: use vsm__ds_find_name. */
vsm_record *vsm__ds_find(vsm_dstore *ds, const char *name, const char *uuid);
/* Cached record by name: -VSM_ENOTFOUND, or -VSM_EEXISTS naming every
 * record that bears it. */
int vsm__ds_find_name(vsm_dstore *ds, const char *name, vsm_record **out);
/* The current on-disk record at @slot if it still has @uuid. */
int vsm__ds_read_record(vsm_ctx *ctx, vsm_dstore *ds, uint32_t slot,
			const char *uuid, vsm_record **out);

/* Open one of the datastore's devices as a core bdev. */
int vsm__ds_open_device(vsm_dstore *ds, const char *key, unsigned int flags,
			struct vsm_bdev **out);

/* Finish workflows a dead process left in the journal: those on
 * @datastore, or on every datastore whose backend is registered when
 * NULL. A workflow that cannot be finished now stays for later. Run from
 * two places only: vsm_ctx_open (lib/open.c), and the first change of a
 * datastore whose backend was registered after the context opened
 * (vsm__ds_change_begin). Never from a lookup. @mine (vsm_ctx_recover
 * only, where no call of this context is running): also workflows this
 * very context began and left after a failure ("the next open finishes
 * it"), which a long-lived process would otherwise never finish. */
int vsm__wf_recover(vsm_ctx *ctx, const char *datastore, bool mine);

/* Register a destroy hook (lib/open.c, at context open). */
int vsm__destroy_hook_register(vsm_ctx *ctx, vsm__destroy_hook fn);

/* A context with its catalog, events and lease manager, and no backend
 * registered yet; lib/open.c composes the rest (vsm_ctx_open). */
int vsm__ctx_new(vsm_ctx **out, const vsm_ctx_opts *opts);

#endif /* VSM_CTX_H */
