/*
 * The composition root: the one place that knows every module. A new
 * context gets the built-in backends (registered through the public
 * vsm_datastore_ops_register(), the door an out-of-tree backend uses) and
 * hypervisor driver (vsm_hypervisor_register()), the
 * journal actions and destroy hooks of the modules above the engine, and
 * then one recovery pass over the journal. Lower layers reach upper ones
 * only through what is registered here.
 */
#include "vsm-config.h"

#include "ckpt.h"
#include "flow.h"
#include "group_int.h"
#include "migrate_int.h"
#include "modules.h"
#include "ops.h"
#include "place_int.h"
#include "place_host.h"
#include "workflow.h"
#include "../backends/file/file.h"
#if VSM_BUILTIN_LIBVIRT
#include "../backends/libvirt/libvirt-backend.h"
#endif
#if VSM_BUILTIN_ISCSI
#include "../backends/iscsi/iscsi-backend.h"
#endif

static int register_builtins(vsm_ctx *ctx)
{
	int rc = vsm_datastore_ops_register(ctx, &vsm__file_backend_ops, NULL);

#if VSM_BUILTIN_LIBVIRT
	if (rc == 0)
		rc = vsm_datastore_ops_register(ctx, &vsm__libvirt_backend_ops, NULL);
	/* First, so that any driver registered later is asked before it. */
	if (rc == 0)
		rc = vsm_hypervisor_register(ctx, vsm__libvirt_hypervisor_ops());
#endif
#if VSM_BUILTIN_ISCSI
	/* One table: each LUN reports COMPARE AND WRITE in its own caps;
	 * "iscsi-caw" is an alias of "iscsi" (doc/iscsi.md). */
	if (rc == 0)
		rc = vsm_datastore_ops_register(ctx, &vsm__iscsi_backend_ops, NULL);
#endif
	return rc;
}

static int register_modules(vsm_ctx *ctx)
{
	int rc;

	if ((rc = vsm__wf_register_action(ctx, VSM_WF_CONTAINER_DESTROY,
					  vsm__container_destroy_action)) < 0 ||
	    (rc = vsm__wf_register_action(ctx, VSM__DEV_WF_PREFIX, vsm__device_wf_action)) < 0 ||
	    (rc = vsm__wf_register_action(ctx, "ckpt_", vsm__ckpt_wf_action)) < 0 ||
	    /* "mig_dom_" steps go to their own handler: the longest prefix wins. */
	    (rc = vsm__wf_register_action(ctx, "mig_dom_", vsm__migrate_domain_wf_action)) < 0 ||
	    (rc = vsm__wf_register_action(ctx, "mig_", vsm__migrate_wf_action)) < 0 ||
	    (rc = vsm__destroy_hook_register(ctx, vsm__ckpt_destroy_hook)) < 0 ||
	    (rc = vsm__wf_register_action(ctx, "grp_", vsm__group_wf_action)) < 0)
		return rc;
	/* A member of a consistency group is not destroyed (doc/groups.md). */
	ctx->destroy_check = vsm__group_destroy_check;
	/* Placement phase 1: vsm_container_create with PLACE reserves here. */
	ctx->place_reserve = vsm__place_reserve;
	return 0;
}

VSM_API int vsm_ctx_open(vsm_ctx **out, const vsm_ctx_opts *opts)
{
	vsm__saved_error saved;
	vsm_ctx *ctx = NULL;
	int rc;

	vsm__error_reset();
	if (!out)
		return vsm_err(VSM_EINVAL, "vsm_ctx_open: out is NULL");
	if ((rc = vsm__ctx_new(&ctx, opts)) < 0)
		return rc;
	/* Placement phase 2 for vsm_attach(VSM_ATTACH_PLACE). */
	ctx->place_host = vsm__place_host_pick;
	if ((rc = register_modules(ctx)) < 0 || (rc = register_builtins(ctx)) < 0) {
		vsm__error_save(&saved);
		vsm_ctx_free(ctx);
		vsm__error_restore(&saved);
		return rc;
	}
	/* Backend modules after the built-in backends (a module cannot take
	 * a built-in scheme) and before recovery, which then covers them. */
	vsm__modules_load(&ctx->modules, ctx,
			  opts && opts->version >= 2 ? opts->backend_dir : NULL,
			  VSM_BACKEND_DIR_DEFAULT, vsm__log);
	/* A previous process may have died mid-workflow: finish its work on
	 * every datastore whose backend is known now. */
	vsm__wf_recover(ctx, NULL, false);
	/* Then the template runs it left (each of their steps is one of the
	 * operations just finished or rolled back): runs whose ops a program
	 * registers wait for its vsm_workflow_recover(). */
	flow_recover(ctx, NULL);
	vsm__error_reset();
	*out = ctx;
	return 0;
}

VSM_API int vsm_ctx_recover(vsm_ctx *ctx, const char *datastore, unsigned int flags)
{
	int rc;

	vsm__error_reset();
	if (!ctx)
		return vsm_err(VSM_EINVAL, "vsm_ctx_recover: ctx is NULL");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_ctx_recover: unknown flags 0x%x", flags);
	vsm__ctx_lock(ctx);
	/* Under the context's lock no call of this context is running, so
	 * what it began and left after a failure can be finished too. */
	rc = vsm__wf_recover(ctx, datastore, true);
	if (rc >= 0 && !datastore) {
		int left = flow_recover(ctx, NULL);

		rc = left < 0 ? left : rc + left;
	}
	vsm__ctx_unlock(ctx);
	return rc;
}
