/*
 * libvsm - changed-block tracking and incremental backup.
 *
 * Every layer a checkpoint puts on top of a device records what is
 * written to it (a persistent dirty bitmap in the qcow2 image, rebuilt
 * from the layer's allocation map when its writer died), so the library
 * can say which extents of a device changed between two checkpoints
 * without reading the disks. A backup takes a checkpoint (a *backup
 * point*) and writes a bundle file holding either everything the devices
 * read at that point (full) or only what changed since an earlier backup
 * point (incremental); a restore rebuilds a container from a full backup
 * and any chain of incrementals, refusing a chain with a gap.
 * See doc/backup.md for the file format and the guarantees.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_BACKUP_H
#define VSM_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "context.h"
#include "container.h"
#include "checkpoint.h"

VSM_BEGIN_DECL

/** A byte range of a device. Since: 0.2 */
typedef struct {
	uint64_t offset; /**< first byte */
	uint64_t length; /**< bytes, > 0 */
} vsm_change_extent;

/**
 * The extents of device @device of @c written since checkpoint @since,
 * up to checkpoint @until (NULL: up to now), sorted, merged where they
 * touch, at the granularity the tracking keeps (the image's cluster size
 * by default). The answer never misses a changed byte; it may name
 * unchanged bytes of a changed cluster. Cost grows with the changed
 * extents, not with the size of the device. "Now" on a device that a
 * running VM writes is as of the last write the image holds; take a
 * checkpoint for an exact cut.
 *
 * @out: receives the array (free with vsm_change_extents_free()); NULL
 *       when there is no change
 * Returns 0, -VSM_ENOTFOUND (no such device or checkpoint), -VSM_EINVAL
 * (@since is not an ancestor of @until or of the current state, or the
 * device did not exist at @since), -VSM_EIO ...
 * Since: 0.2
 */
VSM_API int vsm_changes(vsm_change_extent **out, size_t *count, vsm_container *c,
			const char *device, const char *since, const char *until);

/** Free the array of vsm_changes(); NULL is ignored. Since: 0.2 */
VSM_API void vsm_change_extents_free(vsm_change_extent *list);

/** What a backup or a restore moved (filled when the call succeeds). Since: 0.2 */
typedef struct {
	uint64_t data_bytes;     /**< guest bytes carried (backup) or written (restore) */
	uint64_t extents;        /**< data and zero extents carried */
	uint64_t file_bytes;     /**< size of the backup file(s) */
	/** The backup point: the checkpoint the backup was taken at (backup),
	 *  or the last one a restore rebuilt. */
	char checkpoint[256];
} vsm_backup_stats;

/** Version of vsm_backup_opts understood by this header. Since: 0.2 */
#define VSM_BACKUP_OPTS_VERSION 1

/** Flag: back up the existing checkpoint vsm_backup_opts.checkpoint
 *  instead of taking a new one (it becomes a backup point; a group
 *  backup uses this for the group's checkpoint). Since: 0.2 */
#define VSM_BACKUP_AT_CHECKPOINT (1u << 0)

/**
 * Settings for vsm_backup().
 * Since: 0.2
 */
typedef struct {
	unsigned int version;          /**< VSM_BACKUP_OPTS_VERSION */
	/** Incremental: only what changed since this checkpoint, which must be
	 *  a backup point (made by an earlier vsm_backup() of @c). NULL: full. */
	const char *incremental_from;
	/** Name of the checkpoint to take as the backup point; NULL: a name
	 *  made from the time ("backup-20261201T083000Z", "-2" ... if taken). */
	const char *checkpoint;
	/** How to take that checkpoint (VM-state blob, VSM_CHECKPOINT_STOPPED);
	 *  NULL: no blob, refused while a device is deployed. */
	const vsm_checkpoint_opts *checkpoint_opts;
	vsm_progress_fn progress;      /**< bytes of guest data; NULL: none */
	void *payload;                 /**< for @progress */
	vsm_backup_stats *stats;       /**< receives the counts; may be NULL */
	unsigned int flags;            /**< VSM_BACKUP_* */
} vsm_backup_opts;

/** Default backup settings: full, a generated checkpoint name. Since: 0.2 */
#define VSM_BACKUP_OPTS_INIT { VSM_BACKUP_OPTS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, 0 }

/**
 * Take a checkpoint of @c and write a backup of it to a new file at
 * @path (refused if it exists): every device's data as it reads at the
 * checkpoint (full), or the extents changed since @opts->incremental_from
 * (incremental), plus the checkpoint tree's description, the
 * checkpoint's VM-state blob and the container's state area. The
 * checkpoint stays (it is the base of the next incremental); deleting it
 * ends the chain. A failure removes the file and the checkpoint (not one
 * that VSM_BACKUP_AT_CHECKPOINT named: that stays, a backup point now).
 * Returns 0, -VSM_EEXISTS, -VSM_ENOTFOUND, -VSM_EINVAL (a base that is
 * not a backup point), -VSM_EBUSY, -VSM_EIO, ...
 * Since: 0.2
 */
VSM_API int vsm_backup(vsm_container *c, const char *path, const vsm_backup_opts *opts);

/** Version of vsm_restore_opts understood by this header. Since: 0.2 */
#define VSM_RESTORE_OPTS_VERSION 1

/** Settings for vsm_restore(). Since: 0.2 */
typedef struct {
	unsigned int version;          /**< VSM_RESTORE_OPTS_VERSION */
	const char *name;              /**< the new container's; NULL: the backup's */
	vsm_progress_fn progress;      /**< NULL: none */
	void *payload;                 /**< for @progress */
	vsm_backup_stats *stats;       /**< receives the counts; may be NULL */
} vsm_restore_opts;

/** Default restore settings. Since: 0.2 */
#define VSM_RESTORE_OPTS_INIT { VSM_RESTORE_OPTS_VERSION, NULL, NULL, NULL, NULL }

/**
 * Rebuild a new container on @datastore from the backup files @paths: a
 * full backup first, then incrementals, each taken since the one before
 * it. The container gets one checkpoint per backup point (the names the
 * backups carry), the last one current, its devices reading exactly as
 * the source's did at that point. Every file is checked before it is
 * applied: a chain with a gap, in the wrong order or from another
 * container is refused with -VSM_EINVAL, a damaged file with
 * -VSM_ECORRUPT; a failure (or a crash, at the next vsm_ctx_open())
 * removes the new container.
 *
 * @out: receives the new container; may be NULL
 * Since: 0.2
 */
VSM_API int vsm_restore(vsm_container **out, vsm_ctx *ctx, const char *const *paths,
			size_t n_paths, const char *datastore, const vsm_restore_opts *opts);

VSM_END_DECL

#endif /* VSM_BACKUP_H */
