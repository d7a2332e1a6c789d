/*
 * Private interface of offline migration (migrate.c, migrate_finish.c):
 * its journal actions, registered by lib/open.c, and the steps they
 * share with the call.
 */
#ifndef VSM_CKPT_MIGRATE_INT_H
#define VSM_CKPT_MIGRATE_INT_H

#include "ckpt.h"
#include "vsm/migrate.h"

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
/* MIG_WF_FINISH's work on target @tds: show_target (hide the source,
 * reveal the target), then drop_source (destroy the source, delete the
 * temporary bundle). A live migration runs the two apart, re-pointing
 * its writers in between. */
int ck_mig_finish(vsm_ctx *ctx, vsm_dstore *tds, const char *uuid, const char *source);
int ck_mig_show_target(vsm_ctx *ctx, vsm_dstore *tds, const char *uuid, const char *source);
int ck_mig_drop_source(vsm_ctx *ctx, const char *uuid, const char *source);

/* Why @r (on @sds) may not leave now (a migration running, deployed,
 * a group member; attached, unless @live), or 0. */
int ck_mig_refuse(vsm_ctx *ctx, vsm_dstore *sds, const vsm_record *r, bool live);
/* Compare the target copy @t with the source @s as the offline
 * migration does, but for the device tops (a live migration's tops are
 * compared by nobody while they are written). */
int ck_mig_verify_frozen(vsm_dstore *sds, const vsm_record *s, vsm_dstore *tds,
			 const vsm_record *t, uint64_t *bytes);

/* Clear what @opts->stats has room for (its version decides). */
void ck_mig_stats_clear(const vsm_migrate_opts *opts);

/* Live migration (VSM_MIGRATE_LIVE) of an attached container whose
 * devices are written through this context's vsm_image handles
 * (migrate_live.c). */
int ck_mig_live_image(vsm_container *c, const char *datastore, const vsm_migrate_opts *opts);
/* True when a device of @c is deployed: live migration then goes through
 * the hypervisor's block copy (migrate_domain.c). */
bool ck_mig_has_deployment(vsm_container *c);
int ck_mig_live_domain(vsm_container *c, const char *datastore, const vsm_migrate_opts *opts);
/* Journal action (redo, the commit point of a live domain migration):
 * "UUID SOURCE-DATASTORE" finish forward if a domain disk reads the
 * target copy, else abort the copy jobs and drop the target copy
 * (migrate_domain.c; lib/open.c registers the "mig_dom_" prefix). */
#define MIG_WF_DOMAIN "mig_dom_settle"
/* Journal action (undo): "UUID SOURCE-DATASTORE" abort the block copy
 * jobs on the deployed disks of the source record's domains. */
#define MIG_WF_DOMAIN_CANCEL "mig_dom_cancel"
int vsm__migrate_domain_wf_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action,
				  const char *arg);

/* What lib/open.c registers: the "mig_" journal actions. */
int vsm__migrate_wf_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action, const char *arg);

#endif /* VSM_CKPT_MIGRATE_INT_H */
