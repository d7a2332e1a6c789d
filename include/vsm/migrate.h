/*
 * libvsm - offline migration: move a detached container, with its
 * checkpoint tree and VM-state blobs, to another datastore of any
 * backend. See doc/migration.md for the protocol and its guarantees.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_MIGRATE_H
#define VSM_MIGRATE_H

#include <stdint.h>

#include "common.h"
#include "container.h"
#include "checkpoint.h"

VSM_BEGIN_DECL

/** Version of vsm_migrate_opts understood by this header. Since: 0.2 */
#define VSM_MIGRATE_OPTS_VERSION 2

/**
 * What a migration moved (filled when the call succeeds). The fields
 * after bytes_verified are written only when vsm_migrate_opts.version is
 * 2 or more (a caller built against version 1 has the shorter struct).
 * Since: 0.2
 */
typedef struct {
	uint64_t layers;        /**< layers carried (checkpoint layers and tops) */
	uint64_t layers_reused; /**< already on the target, not copied */
	uint64_t bytes_written; /**< guest and state bytes written to the target */
	uint64_t bytes_verified; /**< guest bytes read back and compared */
	/* version 2 */
	uint64_t passes;        /**< live: copy passes made, the last one included */
	uint64_t pause_us;      /**< live: how long writes were held at the switchover */
	uint64_t bytes_mirrored; /**< live: bytes written to both sides while synchronous */
	unsigned int synchronous; /**< live: 1 if it escalated to synchronous mirroring */
} vsm_migrate_stats;

/** vsm_migrate_opts.flags: migrate while the container is attached and
 *  its devices are written (see vsm_container_migrate()). Since: 0.2 */
#define VSM_MIGRATE_LIVE (1u << 0)

/** What a live migration does when it does not converge. Since: 0.2 */
typedef enum {
	/** Switch to synchronous mirroring (every write goes to both sides
	 *  until the switchover), then finish. The default. */
	VSM_MIGRATE_NO_CONVERGE_SYNC = 0,
	/** Give up: undo the work, keep the container on its source, and
	 *  return -VSM_ETIMEDOUT. */
	VSM_MIGRATE_NO_CONVERGE_ABORT = 1,
} vsm_migrate_no_converge;

/**
 * Settings for vsm_container_migrate().
 *
 * @progress is called with bytes done and the total of the whole call
 * (the copy out of the source, the copy into the target, the read-back
 * check; a live migration's passes add to the total as writes dirty
 * more), every call before the commit point; none is made after it.
 * A non-zero return cancels: the call undoes its work and returns
 * -VSM_ECANCELED.
 *
 * Live migration (VSM_MIGRATE_LIVE; fields of version 2): passes copy
 * what was written meanwhile until what is left can be copied within
 * @downtime_ms at the copy rate measured so far; then writes are held,
 * the rest is copied and the container switches to the target. A
 * migration that has not converged after @max_passes passes, or when
 * @deadline_ms has passed, does what @on_no_converge says.
 *
 * Since: 0.2
 */
typedef struct {
	unsigned int version;     /**< VSM_MIGRATE_OPTS_VERSION */
	unsigned int flags;       /**< 0 or VSM_MIGRATE_LIVE */
	vsm_progress_fn progress; /**< NULL: none */
	void *payload;            /**< for @progress */
	vsm_migrate_stats *stats; /**< receives the counts; may be NULL */
	/* version 2 */
	unsigned int downtime_ms; /**< live: switchover budget; 0: 300 */
	unsigned int deadline_ms; /**< live: give up converging after this; 0: no deadline */
	unsigned int max_passes;  /**< live: passes before it has not converged; 0: 30 */
	int on_no_converge;       /**< live: a vsm_migrate_no_converge */
} vsm_migrate_opts;

/** Default migration settings. Since: 0.2 */
#define VSM_MIGRATE_OPTS_INIT { VSM_MIGRATE_OPTS_VERSION, 0, NULL, NULL, NULL, 0, 0, 0, 0 }

/**
 * Move container @c to @datastore (another registered datastore, of any
 * backend): its devices, checkpoint tree, VM-state area and blobs. The
 * container keeps its name and UUID. The target copy is written hidden
 * (no lookup or listing sees it), read back and compared with the source,
 * and only then does the migration commit: the target copy becomes the
 * container and the source's record and devices are deleted.
 *
 * Journalled: if the process dies, the next vsm_ctx_open() (or
 * vsm_ctx_recover()) on the same state directory rolls back an
 * uncommitted migration (the target copy is deleted, the source is
 * untouched) or finishes a committed one. A lookup never finds two
 * copies.
 *
 * Refused, with nothing changed: an attached container (-VSM_EBUSY), the
 * container's own datastore (-VSM_EINVAL), an unknown datastore
 * (-VSM_ENOTFOUND), a name already taken on the target (-VSM_EEXISTS),
 * a member of a consistency group (-VSM_EBUSY).
 *
 * With VSM_MIGRATE_LIVE the container may be attached (to a host whose
 * lease this context holds) and written meanwhile: through vsm_image
 * handles this context opened with vsm_image_open_device(), which stay
 * open and go on on the target after the switchover, or by a running
 * libvirt domain its devices are deployed into, which the hypervisor's
 * block copy moves (see doc/migration.md). An abort at any point leaves
 * the container, its writers and its domain on the source. A detached
 * container is migrated as without the flag.
 *
 * On success @c refers to the container on @datastore; what its getters
 * returned before stays valid (see vsm_container).
 *
 * @opts: NULL for the defaults
 * Returns 0, -VSM_EBUSY, -VSM_EINVAL, -VSM_ENOTFOUND, -VSM_EEXISTS,
 * -VSM_ECANCELED, -VSM_ETIMEDOUT (live, not converged, abort chosen),
 * -VSM_ENOSPC, -VSM_EIO, -VSM_ECORRUPT, ...
 * Since: 0.2
 */
VSM_API int vsm_container_migrate(vsm_container *c, const char *datastore,
				  const vsm_migrate_opts *opts);

VSM_END_DECL

#endif /* VSM_MIGRATE_H */
