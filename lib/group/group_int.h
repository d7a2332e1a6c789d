/*
 * Private interface of the group layer (lib/group, doc/groups.md): the
 * group handle, reading and writing the group record under its
 * datastore's metadata lock, the write barrier of the group's image
 * handles, and what lib/open.c registers (journal actions "grp_*" and
 * the destroy check).
 */
#ifndef VSM_GROUP_INT_H
#define VSM_GROUP_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "vsm/group.h"
#include "ops.h"
#include "workflow.h"

struct vsm_group {
	vsm_ctx *ctx;
	char *datastore;
	vsm_record *rec;       /* the group record as last read or written */
	vsm_record **old;      /* replaced copies: getters' pointers stay valid */
	size_t n_old;
	/* Image handles opened through the group, and the barrier their
	 * writes pass (read side per write; a checkpoint takes the write
	 * side). imgs_lock guards the list. */
	pthread_mutex_t imgs_lock;
	vsm_group_image **imgs;
	size_t n_imgs;
	pthread_rwlock_t barrier;
};

struct vsm_group_image {
	vsm_group *g;
	vsm_image *img;        /* NULL when it could not be moved to a new top */
	char *member_uuid;
	char *device;
	char *label;           /* "member:device" for messages */
};

/* The record name of group @name: "group:NAME". */
int grp_rec_name(char *buf, size_t size, const char *name);
/* A group name: 1-58 characters of [A-Za-z0-9._-]. */
int grp_name_check(const char *name);

/* A new handle on a copy of @r. */
int grp_handle_new(vsm_group **out, vsm_ctx *ctx, const char *ds, const vsm_record *r);
/* Swap in @r (taken) as the handle's record; the old copy stays until
 * the handle is freed. */
void grp_handle_set(vsm_group *g, vsm_record *r);

/* Under the context's lock: the group's datastore, refreshed, and a
 * private copy of its record (-VSM_ENOTFOUND when it is gone). */
int grp_fresh(vsm_group *g, vsm_dstore **ds, vsm_record **out);
/* Write @r (a changed copy of the group's record) under the datastore's
 * metadata lock the caller holds; 0: committed. */
int grp_commit(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r);

/* Store @r (a new group record) under the datastore's metadata lock
 * the caller holds. */
int grp_insert(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r);
/* Member @uuid's container handle (by UUID on every datastore). */
int grp_member_open(vsm_container **out, vsm_ctx *ctx, const vsm_rec_gmember *m);
/* The member of @r named @name, or NULL. */
vsm_rec_gmember *grp_member(const vsm_record *r, const char *name);
vsm_rec_gmember *grp_member_by_uuid(const vsm_record *r, const char *uuid);
vsm_rec_gckpt *grp_ckpt(const vsm_record *r, const char *name);

/* Whether container @uuid is a member of a group on any datastore of
 * @ctx other than the group @except (NULL: any); *@group_out gets that
 * group's name ("" when none). */
int grp_find_membership(vsm_ctx *ctx, const char *uuid, const char *except,
			char *group_out, size_t size);

/* The barrier: hold new writes, wait for those in flight, flush and
 * close every image handle of @g (barrier_up); open them again on their
 * member's current top and let writes go (barrier_down). */
int grp_barrier_up(vsm_group *g);
void grp_barrier_down(vsm_group *g);
bool grp_has_images(vsm_group *g);

/* lib/open.c registers these. */
int vsm__group_wf_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action, const char *arg);
int vsm__group_destroy_check(vsm_ctx *ctx, const char *ds_name, const vsm_record *r);

/* Journal actions (args are space-separated; names have no spaces). */
/* undo: "GROUP_UUID NAME MEMBER_UUID": delete checkpoint NAME of the
 * member unless the group record lists group checkpoint NAME. */
#define GRP_WF_CKPT_UNDO "grp_ckpt_undo"
/* redo: "NAME MEMBER_UUID...": revert each member to checkpoint NAME. */
#define GRP_WF_REVERT "grp_revert"
/* redo: "MEMBER_UUID NAME": delete the member's checkpoint NAME. */
#define GRP_WF_CKPT_DELETE "grp_ckpt_delete"
/* undo: "CONTAINER_UUID": destroy a clone made by a group clone. */
#define GRP_WF_CLONE_UNDO "grp_clone_undo"

#endif /* VSM_GROUP_INT_H */
