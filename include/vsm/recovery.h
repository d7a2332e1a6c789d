/*
 * libvsm - group backup sets and disaster recovery.
 *
 * A group backup takes one group checkpoint (a crash-consistent cut of
 * every member, <vsm/group.h>) and writes each member's backup of it
 * (<vsm/backup.h>) into a directory, with a manifest that ties the set
 * together and carries the group's recovery plan (boot order and network
 * settings per member). Recovery rebuilds the group from such a
 * directory on a target datastore, attaches and deploys its members on a
 * host, and, when asked, defines and starts their domains in boot order
 * on that host's hypervisor. See doc/groups.md.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_RECOVERY_H
#define VSM_RECOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "context.h"
#include "checkpoint.h"
#include "group.h"

VSM_BEGIN_DECL

/** Version of vsm_group_backup_opts understood by this header. Since: 0.2 */
#define VSM_GROUP_BACKUP_OPTS_VERSION 1

/** Settings for vsm_group_backup(). Since: 0.2 */
typedef struct {
	unsigned int version;         /**< VSM_GROUP_BACKUP_OPTS_VERSION */
	/** Incremental: what changed since this group checkpoint, which an
	 *  earlier vsm_group_backup() took. NULL: full. */
	const char *incremental_from;
	/** Name of the group checkpoint to take; NULL: "backup-<UTC time>". */
	const char *checkpoint;
	unsigned int timeout_ms;      /**< for the group checkpoint; 0: its default */
	vsm_progress_fn progress;     /**< per member file; NULL: none */
	void *payload;                /**< for @progress */
	unsigned int flags;           /**< 0 */
} vsm_group_backup_opts;

/** Default group backup settings: full. Since: 0.2 */
#define VSM_GROUP_BACKUP_OPTS_INIT \
	{ VSM_GROUP_BACKUP_OPTS_VERSION, NULL, NULL, 0, NULL, NULL, 0 }

/**
 * Take group checkpoint (a backup point of every member) and write the
 * backup set into directory @dir (made if missing): one backup file per
 * member, "GROUP.POINT.MEMBER.bk", and the manifest "GROUP.POINT.group.json"
 * (written last, atomically: a set without it is not a set). All or
 * nothing: a failure removes the files written and the group checkpoint.
 * Returns 0, -VSM_EEXISTS, -VSM_EBUSY (the cut's time bound), -VSM_EINVAL,
 * -VSM_EIO, ...
 * Since: 0.2
 */
VSM_API int vsm_group_backup(vsm_group *g, const char *dir, const vsm_group_backup_opts *opts);

/** Flag of vsm_group_recover_opts: define and start the members' domains
 *  on the host's hypervisor, in boot order. Since: 0.2 */
#define VSM_GROUP_RECOVER_START (1u << 0)

/**
 * A step of a recovery, reported as it happens: @member (NULL for the
 * group as a whole), @step ("restore", "group", "plan", "attach",
 * "deploy", "define", "start", "running", "tier"), and a human-readable
 * @detail.
 * Since: 0.2
 */
typedef void (*vsm_group_recover_step_fn)(const char *member, const char *step,
					  const char *detail, void *payload);

/** Version of vsm_group_recover_opts understood by this header. Since: 0.2 */
#define VSM_GROUP_RECOVER_OPTS_VERSION 1

/** Settings for vsm_group_recover(). Since: 0.2 */
typedef struct {
	unsigned int version;         /**< VSM_GROUP_RECOVER_OPTS_VERSION */
	const char *datastore;        /**< where the members are restored (required) */
	const char *name;             /**< the new group's name; NULL: the backup's */
	const char *point;            /**< the backup point; NULL: the newest in @dir */
	/** Attach every member to this host and deploy its devices; NULL:
	 *  neither (VSM_GROUP_RECOVER_START needs it, with a hypervisor URI). */
	const char *host;
	unsigned int flags;           /**< VSM_GROUP_RECOVER_* */
	/** How long to wait for a boot tier's domains to run; 0: 60 s. */
	unsigned int tier_timeout_ms;
	vsm_group_recover_step_fn step; /**< NULL: none */
	void *payload;                /**< for @step */
} vsm_group_recover_opts;

/** Default recovery settings (datastore still to be given). Since: 0.2 */
#define VSM_GROUP_RECOVER_OPTS_INIT \
	{ VSM_GROUP_RECOVER_OPTS_VERSION, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL }

/**
 * Rebuild a group from the backup sets in @dir: each member restored
 * (vsm_restore(), the full set and the incrementals up to the point) under
 * its own name onto @opts->datastore, the group made again with its plan;
 * then, with @opts->host, every member attached there and its devices
 * deployed; then, with VSM_GROUP_RECOVER_START, a domain defined for each
 * member (its devices, and for a member with network settings an
 * interface with the MAC on the network, the IP settings as metadata for
 * the guest) and started in boot order: by priority (lower first), a
 * member after those it names; each tier waits until all its domains run.
 * A failure undoes what the call made (domains, deployments, the group,
 * the restored containers), also after a crash (the next vsm_ctx_open()).
 *
 * @out: receives the new group; may be NULL
 * Returns 0, -VSM_ENOTFOUND (no backup set, a missing file), -VSM_EINVAL
 * (sets of several groups, a chain with a gap), -VSM_EEXISTS, -VSM_ECORRUPT,
 * -VSM_ENOTSUP (start without a hypervisor), ...
 * Since: 0.2
 */
VSM_API int vsm_group_recover(vsm_group **out, vsm_ctx *ctx, const char *dir,
			      const vsm_group_recover_opts *opts);

VSM_END_DECL

#endif /* VSM_RECOVERY_H */
