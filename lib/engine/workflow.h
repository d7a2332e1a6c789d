/*
 * Journalled workflows. Each step is recorded in the catalog, with how to
 * undo it (or, for steps past the point of no return, how to finish it),
 * before it touches storage. A failure runs the undo log backwards; a
 * crash leaves it in the catalog, and the next context that opens the
 * datastore runs it.
 */
#ifndef VSM_ENGINE_WORKFLOW_H
#define VSM_ENGINE_WORKFLOW_H

#include <stdint.h>

#include "ctx.h"

typedef struct {
	vsm_ctx *ctx;
	int64_t id;
	int64_t seq; /* last step written */
} vsm_wf;

/* Step actions the journal can replay. */
#define VSM_WF_DEVICE_DELETE "device_delete"         /* arg: device key */
#define VSM_WF_SLOT_FREE "slot_free"                 /* arg: "SLOT UUID" (0.1) */
#define VSM_WF_UUID_FREE "uuid_free"                 /* arg: container UUID */
#define VSM_WF_CONTAINER_DESTROY "container_destroy" /* arg: "SLOT UUID" */

int vsm__wf_begin(vsm_wf *wf, vsm_ctx *ctx, const char *kind, const char *datastore,
		  const char *subject);
/* Record how to undo the step about to run. */
int vsm__wf_undo(vsm_wf *wf, const char *action, const char *arg);
/* Record how to finish the workflow if it is interrupted from here on. */
int vsm__wf_redo(vsm_wf *wf, const char *action, const char *arg);
/* Replace the argument of the last step (e.g. once a key is known). */
int vsm__wf_update(vsm_wf *wf, const char *arg);
/* Success: forget the journal entry. */
int vsm__wf_end(vsm_wf *wf);
/* Failure: undo what was done, keep the caller's error, forget. */
void vsm__wf_abort(vsm_wf *wf);
/* Finish (or roll back) the workflows of @kind on @datastore that this
 * context began and left after a failure, or that a dead process left,
 * now rather than in recovery's order or at a new process. Only under the
 * context's lock, with none of them running. Returns how many are still
 * left (each is logged), or a negative code. */
int vsm__wf_finish_left(vsm_ctx *ctx, const char *datastore, const char *kind);

/*
 * Journal actions of the modules above the engine (container destroy,
 * checkpoint steps) are registered at context open by lib/open.c: the
 * journal replays an action by the name it was written with, or by the
 * longest registered prefix ending in '_' ("ckpt_"). The engine's own
 * actions (device_delete, slot_free, uuid_free) need no registration.
 */
typedef int (*vsm_wf_action_fn)(vsm_ctx *ctx, vsm_dstore *ds, const char *action,
				const char *arg);
int vsm__wf_register_action(vsm_ctx *ctx, const char *name, vsm_wf_action_fn fn);
/* The "SLOT UUID" argument of slot_free and container_destroy. */
int vsm__wf_parse_slot_uuid(const char *arg, uint32_t *slot, char uuid[VSM_UUID_STRLEN + 1]);

/* This context's owner string, "PID:START/CONTEXT", as journal entries
 * carry it (also reservations, lib/ops/reserve.c); @size >= 82. */
void vsm__wf_owner(const vsm_ctx *ctx, char *buf, size_t size);
/* Whether the process an owner string names (its "PID:START" part) runs. */
bool vsm__wf_owner_alive(const char *owner);

/* Test hook: when set, called after each journalled step is written, with
 * the step's action (used to simulate crashes between steps). */
extern void (*vsm__wf_test_hook)(const char *action);

#endif /* VSM_ENGINE_WORKFLOW_H */
