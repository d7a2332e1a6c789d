/*
 * Private interface of offline migration (migrate.c, migrate_finish.c):
 * its journal actions, registered by lib/open.c, and the steps they
 * share with the call.
 */
#ifndef VSM_CKPT_MIGRATE_INT_H
#define VSM_CKPT_MIGRATE_INT_H

#include "ckpt.h"

/* Journal action (undo): "UUID" delete the migration's temporary bundle
 * file in the state directory. */
#define MIG_WF_UNLINK "mig_unlink"
/* Journal action (redo, the commit point): "UUID SOURCE-DATASTORE" hide
 * the source record, reveal the target's (the workflow's datastore),
 * destroy the source, delete the temporary bundle. Idempotent. */
#define MIG_WF_FINISH "mig_finish"

/* The temporary bundle of the migration of container @uuid. */
int ck_mig_bundle_path(vsm_ctx *ctx, const char *uuid, char **out);
/* Mark the source record of @uuid on @sds outgoing (hidden, destroying);
 * done already is no error. */
int ck_mig_hide_source(vsm_ctx *ctx, vsm_dstore *sds, const char *uuid);
/* MIG_WF_FINISH's work on target @tds. */
int ck_mig_finish(vsm_ctx *ctx, vsm_dstore *tds, const char *uuid, const char *source);

/* What lib/open.c registers: the "mig_" journal actions. */
int vsm__migrate_wf_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action, const char *arg);

#endif /* VSM_CKPT_MIGRATE_INT_H */
