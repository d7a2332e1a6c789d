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
#define VSM_MIGRATE_OPTS_VERSION 1

/** What a migration moved (filled when the call succeeds). Since: 0.2 */
typedef struct {
	uint64_t layers;        /**< layers carried (checkpoint layers and tops) */
	uint64_t layers_reused; /**< already on the target, not copied */
	uint64_t bytes_written; /**< guest and state bytes written to the target */
	uint64_t bytes_verified; /**< guest bytes read back and compared */
} vsm_migrate_stats;

/**
 * Settings for vsm_container_migrate().
 *
 * @progress is called with bytes done and the total of the whole call
 * (the copy out of the source, the copy into the target, the read-back
 * check), every call before the commit point; none is made after it.
 * A non-zero return cancels: the call undoes its work and returns
 * -VSM_ECANCELED.
 *
 * Since: 0.2
 */
typedef struct {
	unsigned int version;     /**< VSM_MIGRATE_OPTS_VERSION */
	unsigned int flags;       /**< 0 */
	vsm_progress_fn progress; /**< NULL: none */
	void *payload;            /**< for @progress */
	vsm_migrate_stats *stats; /**< receives the counts; may be NULL */
} vsm_migrate_opts;

/** Default migration settings. Since: 0.2 */
#define VSM_MIGRATE_OPTS_INIT { VSM_MIGRATE_OPTS_VERSION, 0, NULL, NULL, NULL }

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
 * On success @c refers to the container on @datastore; what its getters
 * returned before stays valid (see vsm_container).
 *
 * @opts: NULL for the defaults
 * Returns 0, -VSM_EBUSY, -VSM_EINVAL, -VSM_ENOTFOUND, -VSM_EEXISTS,
 * -VSM_ECANCELED, -VSM_ENOSPC, -VSM_EIO, -VSM_ECORRUPT, ...
 * Since: 0.2
 */
VSM_API int vsm_container_migrate(vsm_container *c, const char *datastore,
				  const vsm_migrate_opts *opts);

VSM_END_DECL

#endif /* VSM_MIGRATE_H */
