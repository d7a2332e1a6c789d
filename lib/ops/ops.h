/*
 * What the ops layer (containers, attach, deploy, locators, inventory,
 * lease status) offers the modules above it (checkpoints) and the
 * composition root. Never included below lib/ops.
 */
#ifndef VSM_OPS_H
#define VSM_OPS_H

#include "ctx.h"

/* The context behind a container handle. */
vsm_ctx *vsm__container_ctx(const vsm_container *c);

/* A new handle on a copy of @r. */
int vsm__container_new(vsm_container **out, vsm_ctx *ctx, const char *datastore,
		       const vsm_record *r);

/* A handle update in two steps, for calls with a commit point: staged
 * (allocations that may fail) before it, applied (nothing that can fail)
 * after it, or dropped. What the handle's getters returned before stays
 * valid either way. */
typedef struct vsm__handle_stage vsm__handle_stage;
int vsm__container_stage(vsm__handle_stage **out, vsm_container *c, const vsm_record *r);
void vsm__container_apply(vsm_container *c, vsm__handle_stage *st); /* frees @st */
void vsm__container_unstage(vsm__handle_stage *st);                 /* NULL ignored */

/* Point handle @c at its container on @datastore, now described by @r
 * (an offline migration's end). The old datastore name, which
 * vsm_container_datastore() handed out, stays valid until the free. */
int vsm__container_move(vsm_container *c, const char *datastore, const vsm_record *r);

/* Container destroy's tail, also run by journal recovery: 1 if this call
 * removed the record, 0 if another had already. */
int vsm__container_finish_destroy(vsm_ctx *ctx, vsm_dstore *ds, uint32_t slot,
				  const char *uuid);

/* The journal action that finishes a destroy ("container_destroy"),
 * registered by lib/open.c. */
int vsm__container_destroy_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action,
				  const char *arg);

/* The journal actions of device add, remove and resize (devices.c),
 * registered by lib/open.c under this prefix. */
#define VSM__DEV_WF_PREFIX "dev_"
int vsm__device_wf_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action, const char *arg);

/* Host tags (inventory.c): check that @tag is "KEY" or "KEY=VALUE" (KEY
 * 1-64 of [A-Za-z0-9._-], VALUE 0-128 of the same); 0 with the length of
 * KEY in *@key_len, else -VSM_EINVAL naming @tag. */
int vsm__host_tag_check(const char *tag, size_t *key_len);

/* Live migration (attach_live.c): attach the record of container @uuid
 * on @tds (a hidden migration target) to @host, taking its lease there
 * for this context; nothing is changed when it fails. */
int vsm__attach_incoming(vsm_ctx *ctx, vsm_dstore *tds, const char *uuid, const char *host);
/* Let go of @r's host side and lease on @ds (a migrated source or a
 * target rolled back); failures are logged, the thread's error kept. */
void vsm__attach_let_go(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r);

#endif /* VSM_OPS_H */
