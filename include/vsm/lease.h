/*
 * libvsm - leases: which host owns which container on a shared
 * datastore, and the heartbeats that keep those leases alive.
 *
 * vsm_attach() acquires a container's lease for the host and
 * vsm_detach() releases it; every metadata write of an attached
 * container is fenced by it. A context renews its hosts' heartbeats on a
 * background thread, or, when opened with VSM_CTX_LEASE_MANUAL, whenever
 * the embedder calls vsm_lease_renew(). doc/leases.md describes the
 * on-disk layout and the protocol.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_LEASE_H
#define VSM_LEASE_H

#include "common.h"
#include "context.h"

VSM_BEGIN_DECL

/** One container's lease as seen by vsm_lease_status() (owned by the list). Since: 0.1 */
typedef struct vsm_lease vsm_lease;

/** What the observer concluded about a lease's holder. Since: 0.1 */
typedef enum {
	/** Nobody holds the lease. */
	VSM_LEASE_FREE = 0,
	/** Held; the holder's heartbeat counter was seen moving. */
	VSM_LEASE_LIVE = 1,
	/** Held; the counter has not moved yet, but not for the whole timeout. */
	VSM_LEASE_STOPPED = 2,
	/** Held by a host judged dead: it may be taken over. */
	VSM_LEASE_DEAD = 3,
} vsm_lease_state;

/** Flag for vsm_lease_status(): watch heartbeats for up to one renewal
 *  interval so that a live holder can be told from a stopped one. Since: 0.1 */
#define VSM_LEASE_STATUS_WATCH (1u << 0)

/**
 * The lease of every container on @datastore, sorted by container name.
 * Free the list with vsm_lease_list_free().
 *
 * Liveness is judged only by watching heartbeat counters on this
 * process's monotonic clock: a context that has had the datastore open
 * for a while answers at once; a fresh one sees VSM_LEASE_STOPPED until
 * it has watched long enough, unless VSM_LEASE_STATUS_WATCH is given.
 *
 * Returns 0 or a negative VSM_E* code.
 * Since: 0.1
 */
VSM_API int vsm_lease_status(vsm_lease ***out, size_t *count, vsm_ctx *ctx,
			     const char *datastore, unsigned int flags);

/** Free a list from vsm_lease_status(); NULL is ignored. Since: 0.1 */
VSM_API void vsm_lease_list_free(vsm_lease **list, size_t count);

/** Container name (owned by @l, valid until the list is freed). Since: 0.1 */
VSM_API const char *vsm_lease_container(const vsm_lease *l);
/** Holder's host name, or NULL when free (owned by @l, valid until the
 *  list is freed). Since: 0.1 */
VSM_API const char *vsm_lease_host(const vsm_lease *l);
/** A vsm_lease_state. Since: 0.1 */
VSM_API int vsm_lease_state_of(const vsm_lease *l);
/** "free", "live", "stopped", "dead"; NULL for an unknown value. Since: 0.1 */
VSM_API const char *vsm_lease_state_name(int state);
/** When the holder acquired it: ms since the epoch on the holder's clock (0 when free). Since: 0.1 */
VSM_API int64_t vsm_lease_since(const vsm_lease *l);
/** Lease version: grows with every acquisition; the fencing token. Since: 0.1 */
VSM_API uint64_t vsm_lease_version(const vsm_lease *l);
/** How long this process has watched the holder's heartbeat stand still, in ms. Since: 0.1 */
VSM_API int64_t vsm_lease_stopped_ms(const vsm_lease *l);
/** Non-zero if this context holds the lease and may use it now. Since: 0.1 */
VSM_API int vsm_lease_is_mine(const vsm_lease *l);

/**
 * Keep @host's heartbeat alive on every datastore it is linked to, so
 * that the leases it holds (acquired by this or another process of the
 * same host) stay valid while this context runs. `vsmctl agent` does
 * this. @flags: 0.
 * Since: 0.1
 */
VSM_API int vsm_lease_keep(vsm_ctx *ctx, const char *host, unsigned int flags);

/**
 * Renew this context's heartbeats now and look for other hosts' changes
 * (raising VSM_EVENT_DATASTORE_CHANGED / VSM_EVENT_LEASE_LOST as needed).
 * For embedders that opened the context with VSM_CTX_LEASE_MANUAL; harmless
 * otherwise. @flags: 0.
 *
 * Returns the number of milliseconds until the next renewal is due (call
 * again by then, or the leases lapse), or a negative VSM_E* code.
 * Since: 0.1
 */
VSM_API int vsm_lease_renew(vsm_ctx *ctx, unsigned int flags);

VSM_END_DECL

#endif /* VSM_LEASE_H */
