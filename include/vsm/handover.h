/*
 * libvsm - host migration: hand an attached container over to another
 * host while a VM live-migrates there. The container's lease goes
 * through a handover in which its holder (the source) keeps writing and
 * the target is admitted too, so that the hypervisor's migration can
 * switch writes over at its own switchover; completing it makes the
 * lease the target's and fences the source. A target that dies during
 * the handover falls back to the source. doc/host-migration.md gives the
 * protocol and who may write when.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_HANDOVER_H
#define VSM_HANDOVER_H

#include "common.h"
#include "container.h"

VSM_BEGIN_DECL

/** Where a container's lease is in a handover. Since: 0.2 */
typedef enum {
	/** No handover: the holder alone may write. */
	VSM_HANDOVER_NONE = 0,
	/** Begun by the holder, naming a target; only the holder writes. */
	VSM_HANDOVER_BEGUN = 1,
	/** Accepted: the target is admitted and may write the devices too. */
	VSM_HANDOVER_ACCEPTED = 2,
} vsm_handover_state;

/** Version of vsm_handover_opts understood by this header. Since: 0.2 */
#define VSM_HANDOVER_OPTS_VERSION 1

/** vsm_handover_opts.flags: vsm_container_migrate_host() only begins the
 *  handover, even when this context could act for the target. Since: 0.2 */
#define VSM_HANDOVER_BEGIN_ONLY (1u << 0)

/** Options of vsm_handover_begin() and vsm_container_migrate_host(). Since: 0.2 */
typedef struct {
	unsigned int version; /**< VSM_HANDOVER_OPTS_VERSION */
	unsigned int flags;   /**< VSM_HANDOVER_* flags */
} vsm_handover_opts;

/** Initializer for vsm_handover_opts. Since: 0.2 */
#define VSM_HANDOVER_OPTS_INIT { VSM_HANDOVER_OPTS_VERSION, 0 }

/**
 * Begin handing @c over to @target_host. Run by a context that holds the
 * container's lease for the host it is attached to (the source). The
 * source keeps the lease and may go on writing; nobody else may write
 * yet. Nothing but the lease changes; the record still names the source.
 * Raises VSM_EVENT_MIGRATION "start". Calling it again for the same
 * target is a no-op. @opts may be NULL (flags other than
 * VSM_HANDOVER_BEGIN_ONLY are refused).
 *
 * Returns 0, -VSM_ESTATE when @c is detached or already being handed
 * over to another host, -VSM_ESTALE when this context does not hold the
 * lease, or another negative VSM_E* code.
 * Since: 0.2
 */
VSM_API int vsm_handover_begin(vsm_container *c, const char *target_host,
			       const vsm_handover_opts *opts);

/**
 * Accept the handover of @c as @host, the target named by
 * vsm_handover_begin(). Run by a context that acts for @host (usually
 * on the target host); @host must be registered in it and linked to the
 * container's datastore. From then on this context is admitted: it may
 * open the container's devices for writing (vsm_image_open_device())
 * while its heartbeat is valid, and the backend was asked to attach the
 * datastore to @host. The source may still write as well, until
 * vsm_handover_complete(): between the two, the hypervisor's migration
 * decides which side writes (doc/host-migration.md). Record changes
 * (deploy, checkpoint, detach) stay the source's until complete.
 * Raises VSM_EVENT_MIGRATION "switchover admitted". Calling it again is
 * a no-op. @flags: 0.
 *
 * Returns 0, -VSM_ESTATE when the container is not being handed over to
 * @host, or another negative VSM_E* code.
 * Since: 0.2
 */
VSM_API int vsm_handover_accept(vsm_container *c, const char *host, unsigned int flags);

/**
 * Complete the handover of @c: run by the admitted target's context.
 * The lease becomes the target's (its version grows), the record names
 * the target as the attached host (deployments move with it), and from
 * then on the source's metadata writes, deploys and read-write opens
 * through libvsm fail with -VSM_ESTALE. Raises VSM_EVENT_MIGRATION
 * "complete" (and the source's context raises it too within a renewal
 * interval). Exactly one of a complete and a cancel (or the source's
 * fall-back) succeeds. Calling it again after success finishes a record
 * write that failed; when the container is attached to a host whose
 * lease this context holds and no handover is under way, it does
 * nothing and returns 0. @flags: 0.
 *
 * Returns 0, -VSM_ESTALE when the handover was cancelled or fell back to
 * the source, -VSM_ESTATE when it was not accepted by this context, or
 * another negative VSM_E* code.
 * Since: 0.2
 */
VSM_API int vsm_handover_complete(vsm_container *c, unsigned int flags);

/**
 * Cancel the handover of @c: run by the source's context. The target is
 * no longer admitted (its context raises VSM_EVENT_MIGRATION "abort
 * cancelled..." within a renewal interval and refuses new read-write
 * opens); the source alone holds the lease. Raises VSM_EVENT_MIGRATION
 * "abort cancelled". @flags: 0.
 *
 * Returns 0, -VSM_ESTATE when there is no handover, -VSM_ESTALE when
 * the lease is no longer this host's (the target completed first), or
 * another negative VSM_E* code.
 * Since: 0.2
 */
VSM_API int vsm_handover_cancel(vsm_container *c, unsigned int flags);

/**
 * The handover state of @c as its lease says now: returns a
 * vsm_handover_state (>= 0) or a negative VSM_E* code. @target (may be
 * NULL) receives the target host's name (caller frees) or NULL without
 * a handover.
 * Since: 0.2
 */
VSM_API int vsm_handover_state_of(vsm_container *c, char **target);

/**
 * Move attached @c to @host for a VM live migration, in one call where
 * one context can act for both hosts: when @host is registered in this
 * context and linked to the container's datastore, it runs begin,
 * accept and complete (the hypervisor's migration runs outside libvsm;
 * call this once the VM runs on @host, or use the four calls above
 * around the migration). Otherwise, or with VSM_HANDOVER_BEGIN_ONLY, it
 * only begins the handover and returns VSM_HANDOVER_BEGUN: the target's
 * context must then accept and complete it. @opts may be NULL.
 *
 * Returns 0 when the container is now attached to @host,
 * VSM_HANDOVER_BEGUN when only begun, or a negative VSM_E* code (a
 * failure before the complete leaves the source holding the lease with
 * no handover).
 * Since: 0.2
 */
VSM_API int vsm_container_migrate_host(vsm_container *c, const char *host,
				       const vsm_handover_opts *opts);

VSM_END_DECL

#endif /* VSM_HANDOVER_H */
