/*
 * The committed half of an offline migration, run by the call itself and
 * by journal recovery after a crash: hide the source, reveal the target,
 * destroy the source, delete the temporary bundle. Every step checks
 * what is on disk first, so a rerun after a crash at any point is right.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate_int.h"

/* Lets the tests kill the process between the steps of the committed
 * half, which writes no journal step of its own. */
static void point(const char *what)
{
	if (vsm__wf_test_hook)
		vsm__wf_test_hook(what);
}

int ck_mig_bundle_path(vsm_ctx *ctx, const char *uuid, char **out)
{
	if (asprintf(out, "%s/migrate-%s.vsmb", ctx->state_dir, uuid) < 0) {
		*out = NULL;
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	return 0;
}

/* Set @uuid's record on @ds to migration state @state (and, for the
 * outgoing source, mark it destroying: nobody may use it any more). */
static int set_state(vsm_ctx *ctx, vsm_dstore *ds, const char *uuid, int from, int state)
{
	vsm_record *r;
	int rc = 0, tries;

	for (tries = 0; tries < 20; tries++) {
		const vsm_record *cur;

		if ((rc = vsm__ds_refresh(ctx, ds)) < 0)
			return rc;
		if (!(cur = vsm__ds_find(ds, NULL, uuid)) || cur->migration != from)
			return 0; /* done already (or gone) */
		if (!(r = vsm_record_dup(cur)))
			return -VSM_ENOMEM;
		r->migration = state;
		if (state == VSM_REC_MIG_OUTGOING)
			r->destroying = true;
		rc = vsm__ds_put_record(ctx, ds, r);
		vsm_record_free(r);
		if (rc != -VSM_EBUSY)
			return rc;
		vsm__error_reset();
	}
	return rc;
}

int ck_mig_hide_source(vsm_ctx *ctx, vsm_dstore *sds, const char *uuid)
{
	return set_state(ctx, sds, uuid, VSM_REC_MIG_NONE, VSM_REC_MIG_OUTGOING);
}

int ck_mig_finish(vsm_ctx *ctx, vsm_dstore *tds, const char *uuid, const char *source)
{
	int rc;

	if ((rc = ck_mig_show_target(ctx, tds, uuid, source)) < 0)
		return rc;
	return ck_mig_drop_source(ctx, uuid, source);
}

int ck_mig_show_target(vsm_ctx *ctx, vsm_dstore *tds, const char *uuid, const char *source)
{
	const vsm_record *t;
	vsm_dstore *sds;
	int rc;

	if ((rc = vsm__ds_get(&sds, ctx, source)) < 0 || (rc = vsm__ds_refresh(ctx, tds)) < 0)
		return rc;
	/* Only committed after the target was complete: a missing target
	 * copy means something else removed it; then keep the source. */
	if (!(t = vsm__ds_find(tds, NULL, uuid)))
		return vsm_err(VSM_ESTATE, "migration of container %s to datastore '%s': the "
			       "target copy is gone; the source is kept", uuid, tds->name);
	/* Hide the source before the target shows: never two copies. */
	(void)t;
	if ((rc = set_state(ctx, sds, uuid, VSM_REC_MIG_NONE, VSM_REC_MIG_OUTGOING)) < 0)
		return rc;
	point("mig_finish: source hidden");
	if ((rc = set_state(ctx, tds, uuid, VSM_REC_MIG_INCOMING, VSM_REC_MIG_NONE)) < 0)
		return rc;
	point("mig_finish: target shown");
	return 0;
}

int ck_mig_drop_source(vsm_ctx *ctx, const char *uuid, const char *source)
{
	const vsm_record *s;
	vsm_dstore *sds;
	char *path = NULL;
	int rc;

	if ((rc = vsm__ds_get(&sds, ctx, source)) < 0 || (rc = vsm__ds_refresh(ctx, sds)) < 0)
		return rc;
	s = vsm__ds_find(sds, NULL, uuid);
	if (s && s->migration == VSM_REC_MIG_OUTGOING &&
	    (rc = vsm__container_finish_destroy(ctx, sds, s->slot, uuid)) < 0)
		return rc;
	point("mig_finish: source destroyed");
	if ((rc = ck_mig_bundle_path(ctx, uuid, &path)) < 0)
		return rc;
	unlink(path);
	free(path);
	return 0;
}

int vsm__migrate_wf_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action, const char *arg)
{
	char uuid[VSM_UUID_STRLEN + 1], *path = NULL;
	int rc;

	if (strlen(arg) < VSM_UUID_STRLEN)
		return vsm_err(VSM_ECORRUPT, "journal step argument '%s' is malformed", arg);
	memcpy(uuid, arg, VSM_UUID_STRLEN);
	uuid[VSM_UUID_STRLEN] = '\0';
	if (!vsm__uuid_valid(uuid))
		return vsm_err(VSM_ECORRUPT, "journal step argument '%s' is malformed", arg);
	if (!strcmp(action, MIG_WF_UNLINK)) {
		if ((rc = ck_mig_bundle_path(ctx, uuid, &path)) < 0)
			return rc;
		unlink(path);
		free(path);
		return 0;
	}
	if (!strcmp(action, MIG_WF_FINISH) && arg[VSM_UUID_STRLEN] == ' ')
		return ck_mig_finish(ctx, ds, uuid, arg + VSM_UUID_STRLEN + 1);
	return vsm_err(VSM_ECORRUPT, "journal names unknown action '%s'", action);
}
