/*
 * libvsm - consistency groups: a named set of containers, possibly on
 * several datastores and backends, checkpointed, reverted and cloned
 * together, with a disaster-recovery plan (boot order and network
 * settings per member) stored with the group.
 *
 * A group is a record on one datastore (doc/groups.md). A group
 * checkpoint gives every member a checkpoint of the same name, all or
 * none, at one cut: writers that go through the group's image handles
 * (vsm_group_image_open()) are held at a write barrier while every
 * member is checkpointed.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_GROUP_H
#define VSM_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "context.h"
#include "container.h"
#include "image.h"

VSM_BEGIN_DECL

/** A consistency group, as read when the handle was made or last
 *  updated. A call that changes the group updates the handle; what its
 *  getters returned before stays valid, unchanged, until
 *  vsm_group_free(). Since: 0.2 */
typedef struct vsm_group vsm_group;

/** Version of vsm_group_opts understood by this header. Since: 0.2 */
#define VSM_GROUP_OPTS_VERSION 1

/** Settings for vsm_group_create(). Since: 0.2 */
typedef struct {
	unsigned int version;  /**< VSM_GROUP_OPTS_VERSION */
	/** Datastore that keeps the group record; NULL: the first
	 *  member's. */
	const char *datastore;
	unsigned int flags;    /**< 0 */
} vsm_group_opts;

/** Default group settings. Since: 0.2 */
#define VSM_GROUP_OPTS_INIT { VSM_GROUP_OPTS_VERSION, NULL, 0 }

/**
 * Create group @name with the @n containers @members (none is allowed
 * when @opts names the datastore). Group names are unique per datastore;
 * a container belongs to at most one group, and member names are unique
 * in a group.
 *
 * @out: receives the group; may be NULL
 * Returns 0, -VSM_EINVAL, -VSM_EEXISTS (the name is taken on that
 * datastore), -VSM_EBUSY (a container is in another group), ...
 * Since: 0.2
 */
VSM_API int vsm_group_create(vsm_group **out, vsm_ctx *ctx, const char *name,
			     vsm_container *const *members, size_t n,
			     const vsm_group_opts *opts);

/**
 * Look up group @name on @datastore, or on every datastore of @ctx when
 * @datastore is NULL (-VSM_EEXISTS when two datastores hold one of that
 * name). A damaged group record is refused with -VSM_ECORRUPT.
 * Since: 0.2
 */
VSM_API int vsm_group_lookup(vsm_group **out, vsm_ctx *ctx, const char *datastore,
			     const char *name);

/** Every group on every datastore of @ctx, sorted by datastore then
 *  name. Free with vsm_group_list_free(). Since: 0.2 */
VSM_API int vsm_group_list(vsm_group ***out, size_t *count, vsm_ctx *ctx);
/** Free a list from vsm_group_list(); NULL is ignored. Since: 0.2 */
VSM_API void vsm_group_list_free(vsm_group **list, size_t count);
/** Free a group handle; NULL is ignored. Image handles opened through
 *  it must be closed first. Since: 0.2 */
VSM_API void vsm_group_free(vsm_group *g);
/** Read the group again from its datastore. Since: 0.2 */
VSM_API int vsm_group_refresh(vsm_group *g);

/**
 * Destroy the group record (its members and their checkpoints stay).
 * Refused with -VSM_EBUSY while image handles are open through @g.
 * @g stays a valid handle showing the group as it was. Since: 0.2
 */
VSM_API int vsm_group_destroy(vsm_group *g, unsigned int flags);

/** Name; owned by @g, valid until it is freed. Since: 0.2 */
VSM_API const char *vsm_group_name(const vsm_group *g);
/** UUID; owned by @g, valid until it is freed. Since: 0.2 */
VSM_API const char *vsm_group_uuid(const vsm_group *g);
/** Datastore holding the record; owned by @g, valid until it is freed.
 *  Since: 0.2 */
VSM_API const char *vsm_group_datastore(const vsm_group *g);
/** Creation time, seconds since the epoch. Since: 0.2 */
VSM_API int64_t vsm_group_ctime(const vsm_group *g);

/** Number of members. Since: 0.2 */
VSM_API size_t vsm_group_member_count(const vsm_group *g);
/** Container name of member @i, NULL past the end; owned by @g, valid
 *  until it is freed. Since: 0.2 */
VSM_API const char *vsm_group_member_name(const vsm_group *g, size_t i);
/** Container UUID of member @i, NULL past the end; owned by @g, valid
 *  until it is freed. Since: 0.2 */
VSM_API const char *vsm_group_member_uuid(const vsm_group *g, size_t i);
/** Datastore of member @i, NULL past the end; owned by @g, valid until
 *  it is freed. Since: 0.2 */
VSM_API const char *vsm_group_member_datastore(const vsm_group *g, size_t i);

/**
 * Add container @c to @g. Refused with -VSM_EBUSY when @c is in a group
 * already, -VSM_EEXISTS when a member has its name. Updates @g.
 * Since: 0.2
 */
VSM_API int vsm_group_member_add(vsm_group *g, vsm_container *c, unsigned int flags);

/**
 * Remove member @name from @g (the container and its checkpoints stay;
 * the group checkpoints still list the checkpoint it had). Its plan
 * entry goes, and so does every other member's "after" naming it.
 * Updates @g. Since: 0.2
 */
VSM_API int vsm_group_member_remove(vsm_group *g, const char *name, unsigned int flags);

/** Number of group checkpoints, oldest first. Since: 0.2 */
VSM_API size_t vsm_group_checkpoint_count(const vsm_group *g);
/** Name of group checkpoint @i, NULL past the end; owned by @g, valid
 *  until it is freed. Since: 0.2 */
VSM_API const char *vsm_group_checkpoint_name(const vsm_group *g, size_t i);
/** Creation time of group checkpoint @i (seconds since the epoch).
 *  Since: 0.2 */
VSM_API int64_t vsm_group_checkpoint_ctime(const vsm_group *g, size_t i);
/** Number of members group checkpoint @i covers. Since: 0.2 */
VSM_API size_t vsm_group_checkpoint_member_count(const vsm_group *g, size_t i);
/** Container UUID of the @j-th member of group checkpoint @i (NULL past
 *  the end); owned by @g, valid until it is freed. Since: 0.2 */
VSM_API const char *vsm_group_checkpoint_member_uuid(const vsm_group *g, size_t i, size_t j);
/** The checkpoint that member got (NULL past the end); owned by @g,
 *  valid until it is freed. Since: 0.2 */
VSM_API const char *vsm_group_checkpoint_member_checkpoint(const vsm_group *g, size_t i,
							   size_t j);

/** Version of vsm_group_checkpoint_opts understood by this header.
 *  Since: 0.2 */
#define VSM_GROUP_CHECKPOINT_OPTS_VERSION 1

/** Flag of vsm_group_checkpoint_opts: members deployed into domains are
 *  fenced by freezing their filesystems through the guest agent instead
 *  of pausing the domains. Since: 0.2 */
#define VSM_GROUP_CHECKPOINT_FREEZE (1u << 0)

/** Settings for vsm_group_checkpoint_create(). Since: 0.2 */
typedef struct {
	unsigned int version;   /**< VSM_GROUP_CHECKPOINT_OPTS_VERSION */
	/** Bound on the time writers and domains are held (ms); 0: 7000.
	 *  When it is exceeded, every member's new checkpoint is undone,
	 *  every domain resumed, and the call fails with -VSM_EBUSY. */
	unsigned int timeout_ms;
	unsigned int flags;     /**< VSM_GROUP_CHECKPOINT_FREEZE or 0 */
} vsm_group_checkpoint_opts;

/** Default group checkpoint settings. Since: 0.2 */
#define VSM_GROUP_CHECKPOINT_OPTS_INIT { VSM_GROUP_CHECKPOINT_OPTS_VERSION, 0, 0 }

/**
 * Checkpoint every member as @name, at one cut, all or none. Refused up
 * front (nothing changed) when a member already has a checkpoint @name,
 * is being destroyed, has a device deployed other than into a domain its
 * backend can pause, or the group has one of that name.
 * Writers through @g's image handles are held (new writes wait, those in
 * flight finish and are flushed) from before the first member's
 * checkpoint until after the last; their handles then write the new
 * tops. Every domain a member's devices are hot-plugged into (deployed
 * with a domain, on a backend with domain_fence) is paused (or, with
 * VSM_GROUP_CHECKPOINT_FREEZE, its filesystems frozen) before the first
 * member's checkpoint and resumed after the last; meanwhile those
 * devices move to their new tops. A failure or a crash undoes every member's checkpoint made (the
 * next vsm_ctx_open() on the same state directory does it after a
 * crash). Writers in other processes, or through other handles, are the
 * caller's to stop. Updates @g.
 *
 * @opts: NULL for defaults
 * Since: 0.2
 */
VSM_API int vsm_group_checkpoint_create(vsm_group *g, const char *name,
					const vsm_group_checkpoint_opts *opts);

/**
 * Revert every member to its checkpoint of group checkpoint @name.
 * Checked up front for every member (exists, has the checkpoint, not
 * deployed): when the checks fail nothing changed. After the first
 * member is switched the call finishes forward: a member that fails is
 * left in the journal, which the next vsm_ctx_open() finishes, and the
 * call reports it. Writers through @g's image handles are held around it
 * and then write the reverted tops. Updates @g. Since: 0.2
 */
VSM_API int vsm_group_checkpoint_revert(vsm_group *g, const char *name, unsigned int flags);

/**
 * Delete group checkpoint @name: it leaves the group record first (the
 * commit point), then each member's checkpoint is deleted (finished
 * forward by the journal when one fails). Updates @g. Since: 0.2
 */
VSM_API int vsm_group_checkpoint_delete(vsm_group *g, const char *name, unsigned int flags);

/**
 * Make group @new_name (on @g's datastore) of linked clones of each
 * member's checkpoint of group checkpoint @checkpoint: member M becomes
 * container "M-@new_name" on M's datastore. The plan is copied (with
 * the new names). All or nothing: a failure destroys the clones made.
 *
 * @out: receives the new group; may be NULL
 * Since: 0.2
 */
VSM_API int vsm_group_clone(vsm_group **out, vsm_group *g, const char *checkpoint,
			    const char *new_name, unsigned int flags);

/** Version of vsm_group_plan_entry understood by this header. Since: 0.2 */
#define VSM_GROUP_PLAN_ENTRY_VERSION 1

/**
 * The recovery plan of one member: boot priority (lower boots first),
 * the members that must be up before it, and the network settings it
 * gets on the recovery site (data for the guest: libvsm stores them and
 * carries them with the group). Pointers given to vsm_group_plan_set()
 * are copied; those vsm_group_plan_get() fills are owned by the group
 * handle and valid until it is freed.
 * Since: 0.2
 */
typedef struct {
	unsigned int version;    /**< VSM_GROUP_PLAN_ENTRY_VERSION */
	const char *member;      /**< member (container) name */
	unsigned int priority;   /**< 0..1000000 */
	const char *const *after; /**< member names booting first */
	size_t n_after;          /**< entries in @after */
	const char *mac;         /**< "52:54:00:xx:xx:xx"; NULL: no network settings */
	const char *network;     /**< network or bridge name (needed with @mac) */
	const char *ip;          /**< NULL: none (DHCP) */
	int prefix;              /**< prefix length with @ip, else -1 */
	const char *gateway;     /**< NULL: none */
	const char *dns;         /**< NULL: none */
} vsm_group_plan_entry;

/** Default plan entry: priority 0, no dependencies, no network. Since: 0.2 */
#define VSM_GROUP_PLAN_ENTRY_INIT \
	{ VSM_GROUP_PLAN_ENTRY_VERSION, NULL, 0, NULL, 0, NULL, NULL, NULL, -1, NULL, NULL }

/**
 * Set the plan of the @n members @entries name (the others keep
 * theirs). Refused, changing nothing, for an unknown member, a bad MAC,
 * an "after" that is not another member, or a boot order with a cycle.
 * Updates @g. Since: 0.2
 */
VSM_API int vsm_group_plan_set(vsm_group *g, const vsm_group_plan_entry *entries, size_t n,
			       unsigned int flags);

/**
 * The plan of member @i into @out (whose version the caller sets; its
 * pointers are owned by @g, valid until it is freed).
 * Returns 0, -VSM_ENOTFOUND past the end, -VSM_EVERSION.
 * Since: 0.2
 */
VSM_API int vsm_group_plan_get(const vsm_group *g, size_t i, vsm_group_plan_entry *out);

/** An image handle on a member's device whose writes the group's write
 *  barrier holds (vsm_group_checkpoint_create()). Since: 0.2 */
typedef struct vsm_group_image vsm_group_image;

/**
 * Open device @device of member @member read-write through the group:
 * as vsm_image_open_device() with VSM_IMAGE_OPEN_RDWR, and registered
 * with @g so that a group checkpoint or revert holds its writes and then
 * moves it to the member's new top. One thread at a time per handle;
 * several threads may each use their own. Close every one before
 * vsm_group_free(@g).
 * Since: 0.2
 */
VSM_API int vsm_group_image_open(vsm_group_image **out, vsm_group *g, const char *member,
				 const char *device, unsigned int flags);
/** Read @len bytes at @off. Since: 0.2 */
VSM_API int vsm_group_image_read(vsm_group_image *gi, void *buf, size_t len, uint64_t off);
/** Write @len bytes at @off (waits while the barrier is up). Since: 0.2 */
VSM_API int vsm_group_image_write(vsm_group_image *gi, const void *buf, size_t len,
				  uint64_t off);
/** Flush. Since: 0.2 */
VSM_API int vsm_group_image_flush(vsm_group_image *gi);
/** Close (flushing); NULL is ignored. Since: 0.2 */
VSM_API int vsm_group_image_close(vsm_group_image *gi);

VSM_END_DECL

#endif /* VSM_GROUP_H */
