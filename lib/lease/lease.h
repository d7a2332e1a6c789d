/*
 * Leases: the core's view of the on-datastore lease area (heartbeats,
 * per-container lease records) and of the leases this context holds.
 * doc/leases.md gives the layout, the two protocols and the safety
 * argument. Nothing here is exported.
 */
#ifndef VSM_LEASE_INT_H
#define VSM_LEASE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "vsm/lease.h"

struct vsm_ctx;
struct vsm_dstore;
struct vsm_record;

typedef struct vsm_lease_mgr vsm_lease_mgr;
typedef struct vsm_lease_ds vsm_lease_ds;

/* Per-context lease manager; @manual: the embedder drives renewal. */
int vsm__lease_mgr_new(vsm_lease_mgr **out, struct vsm_ctx *ctx, bool manual);
/* Stop the renewal thread (datastores may still be open). */
void vsm__lease_mgr_stop(vsm_lease_mgr *m);
/* Free; every datastore must have been closed. NULL is ignored. */
void vsm__lease_mgr_free(vsm_lease_mgr *m);

/* A datastore was opened: read (or, when blank, write) the lease area
 * header and start watching its heartbeats. */
int vsm__lease_ds_open(struct vsm_ctx *ctx, struct vsm_dstore *ds);
/* Forget a datastore before its metadata device closes. */
void vsm__lease_ds_close(struct vsm_dstore *ds);

/* The datastore's generation is now @gen because of this context
 * (commit) or a refresh: later renewals announce only newer ones. */
void vsm__lease_note_gen(struct vsm_dstore *ds, uint64_t gen);
/* True if @gen has not been announced yet (and marks it announced). */
bool vsm__lease_gen_unseen(struct vsm_dstore *ds, uint64_t gen);

/* Flags for vsm__lease_acquire(). */
#define VSM__LEASE_WAIT (1u << 0)       /* watch a stopped holder until dead */
#define VSM__LEASE_SAME_HOST (1u << 1)  /* only from a free lease or one of @host */

/*
 * Acquire the lease of record @r (its slot and uuid) for @host. On
 * success *lver is the new lease version (the fencing token) and
 * *took_over tells whether another host's unreleased lease was taken.
 * -VSM_ELEASE while another host holds it and looks live.
 */
int vsm__lease_acquire(struct vsm_ctx *ctx, struct vsm_dstore *ds,
		       const struct vsm_record *r, const char *host, unsigned int flags,
		       uint64_t *lver, bool *took_over);
/* True if this context holds @r's lease for @host right now (*lver). */
bool vsm__lease_held(struct vsm_dstore *ds, const struct vsm_record *r, const char *host,
		     uint64_t *lver);
/* True if this context's state directory acts for @host. */
bool vsm__lease_acts_for(struct vsm_ctx *ctx, const char *host);
/* Release the lease of @r if this context holds it (else nothing). */
int vsm__lease_release(struct vsm_ctx *ctx, struct vsm_dstore *ds,
		       const struct vsm_record *r);
/*
 * Before writing metadata of @cur (the record as on disk, attached to
 * @cur->attached_host): make sure this context holds its lease and that
 * no newer holder has written it. *lver receives the token to store.
 * -VSM_ESTALE when the lease was lost to another host.
 */
int vsm__lease_fence(struct vsm_ctx *ctx, struct vsm_dstore *ds,
		     const struct vsm_record *cur, uint64_t *lver);

/* The metadata lock's register on a datastore without compare-and-write
 * (lib/dslock.c): lease area 0, decided by Disk Paxos. */
typedef struct {
	uint64_t lver;      /* instance of the value in force (0: never used) */
	bool held;
	uint32_t slot;      /* heartbeat slot of the holding state directory */
	uint64_t gen;
	char node[65];
} vsm__lease_lockval;

/* True when the datastore's leases use the plain (Disk Paxos) protocol. */
bool vsm__lease_plain(const struct vsm_dstore *ds);
/* The lease timeout in force on the datastore (its lease area header). */
uint32_t vsm__lease_timeout_ms(const struct vsm_dstore *ds);
int vsm__lease_lock_read(struct vsm_dstore *ds, vsm__lease_lockval *out);
/* Propose the next value after @cur: held by @node (@take) or free.
 * 0 when ours was chosen, -VSM_EMISMATCH when another value was.
 * *@same_node: @cur is held by this state directory's own slot. */
int vsm__lease_lock_propose(struct vsm_dstore *ds, const char *node,
			    const vsm__lease_lockval *cur, bool take, bool *same_node);

#endif /* VSM_LEASE_INT_H */
