/*
 * Built-in template ops on checkpoints: a container's (create, delete,
 * revert), a backup (which takes one), and a group's (create, delete).
 * What pre() notes is whether the checkpoint (and the backup's file) was
 * there before the step: an undo removes only what the step made.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops_common.h"

static const char *const checkpoint_results[] = { "container", "checkpoint", NULL };

static int checkpoint_result(vsm_container *c, const char *name, json_object **result)
{
	if (!(*result = flow_result("container", vsm_container_name(c), "checkpoint", name, NULL)))
		return flow_nomem();
	return 0;
}

/* Whether container @c has checkpoint @name; lookup errors count as no. */
static bool has_checkpoint(vsm_container *c, const char *name)
{
	vsm_checkpoint *cp = NULL;
	bool found = vsm_checkpoint_lookup(&cp, c, name) == 0;

	vsm_checkpoint_free(cp);
	vsm__error_reset();
	return found;
}

/*
 * Delete checkpoint @name of the container @args name, if both are
 * there. @flags: for vsm_checkpoint_delete().
 */
static int checkpoint_drop(vsm_ctx *ctx, json_object *args, const char *name, unsigned int flags)
{
	vsm_container *c = NULL;
	int rc;

	if ((rc = flow_container_get(&c, ctx, args)) == 0)
		rc = vsm_checkpoint_delete(c, name, flags);
	vsm_container_free(c);
	return flow_gone_ok(rc);
}

/* --- checkpoint.create --- */

static int existed_pre(json_object **pre, bool existed)
{
	int rc;

	if ((rc = flow_obj_new(pre)) == 0 && (rc = flow_obj_bool(*pre, "existed", existed)) < 0) {
		json_object_put(*pre);
		*pre = NULL;
	}
	return rc;
}

static int cp_create_pre(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object **pre)
{
	vsm_container *c = NULL;
	int rc;

	(void)op;
	if (flow_container_get(&c, ctx, args) < 0)
		vsm__error_reset(); /* the step reports it */
	rc = existed_pre(pre, c && has_checkpoint(c, flow_str(args, "name")));
	vsm_container_free(c);
	return rc;
}

static unsigned int stopped_flag(json_object *args)
{
	return flow_bool(args, "stopped", false) ? VSM_CHECKPOINT_STOPPED : 0;
}

static int cp_create_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			 bool again, json_object **result)
{
	vsm_checkpoint_opts opts = VSM_CHECKPOINT_OPTS_INIT;
	const char *name = flow_str(args, "name");
	vsm_container *c = NULL;
	int rc;

	(void)op;
	(void)pre;
	(void)again;
	opts.flags = stopped_flag(args);
	if ((rc = flow_container_get(&c, ctx, args)) == 0 &&
	    (rc = vsm_checkpoint_create(NULL, c, name, &opts)) == 0 &&
	    (rc = checkpoint_result(c, name, result)) < 0) {
		/* A failed step changes nothing. */
		vsm_checkpoint_delete(c, name, opts.flags);
		rc = flow_nomem();
	}
	vsm_container_free(c);
	return rc;
}

/* Whether the step ran or not: a checkpoint of that name that was not
 * there before is the step's. */
static int cp_create_undo(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			  json_object *result)
{
	(void)result;
	if (!flow_pre_has(ctx, op, pre, "existed") || flow_bool(pre, "existed", true))
		return 0;
	return checkpoint_drop(ctx, args, flow_str(args, "name"), stopped_flag(args));
}

static const flow_arg cp_create_args[] = {
	FLOW_ARG_CONTAINER,
	{ "name", FLOW_T_STRING, true },
	{ "stopped", FLOW_T_BOOLEAN, false },
};

static const flow_op op_cp_create = {
	.name = "checkpoint.create",
	.args = cp_create_args,
	.n_args = sizeof(cp_create_args) / sizeof(cp_create_args[0]),
	.results = checkpoint_results,
	.pre = cp_create_pre,
	.run = cp_create_run,
	.undo = cp_create_undo,
};

/* --- checkpoint.delete --- */

static int cp_delete_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			 bool again, json_object **result)
{
	const char *name = flow_str(args, "name");
	vsm_container *c = NULL;
	int rc;

	(void)op;
	(void)pre;
	if ((rc = flow_container_get(&c, ctx, args)) == 0)
		rc = vsm_checkpoint_delete(c, name, 0);
	/* Run again: the first run got as far as removing it. */
	if (again)
		rc = flow_gone_ok(rc);
	if (rc == 0 && !(*result = flow_result("container", c ? vsm_container_name(c) :
					       flow_str(args, "container"),
					       "checkpoint", name, NULL)))
		rc = flow_nomem();
	vsm_container_free(c);
	return rc;
}

static const flow_arg cp_delete_args[] = {
	FLOW_ARG_CONTAINER,
	{ "name", FLOW_T_STRING, true },
};

static const flow_op op_cp_delete = {
	.name = "checkpoint.delete",
	.args = cp_delete_args,
	.n_args = sizeof(cp_delete_args) / sizeof(cp_delete_args[0]),
	.results = checkpoint_results,
	.run = cp_delete_run,
	.undo = NULL, /* its layers are merged away */
};

/* --- checkpoint.revert --- */

/* Reverting is idempotent: run again, it simply reverts again. */
static int cp_revert_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			 bool again, json_object **result)
{
	vsm_revert_opts opts = VSM_REVERT_OPTS_INIT;
	const char *name = flow_str(args, "name");
	vsm_container *c = NULL;
	int rc;

	(void)op;
	(void)pre;
	(void)again;
	opts.flags = stopped_flag(args);
	if ((rc = flow_container_get(&c, ctx, args)) == 0 &&
	    (rc = vsm_checkpoint_revert(c, name, &opts)) == 0)
		rc = checkpoint_result(c, name, result);
	vsm_container_free(c);
	return rc;
}

static const flow_op op_cp_revert = {
	.name = "checkpoint.revert",
	.args = cp_create_args, /* the same: container, datastore, name, stopped */
	.n_args = sizeof(cp_create_args) / sizeof(cp_create_args[0]),
	.results = checkpoint_results,
	.run = cp_revert_run,
	.undo = NULL, /* what was written since is dropped */
};

/* --- backup.create --- */

/*
 * The backup point's name is chosen here, not by vsm_backup(), so that
 * an undo after a crash knows which checkpoint to look for. An existing
 * checkpoint of that name is backed up as it is (and stays).
 */
static int backup_pre(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object **pre)
{
	const char *name = flow_str(args, "checkpoint"), *path = flow_str(args, "path");
	char uuid[VSM_UUID_STRLEN + 1], made[16];
	vsm_container *c = NULL;
	struct stat st;
	bool file_existed;
	int rc;

	(void)op;
	if (!name) {
		vsm__uuid_new(uuid);
		snprintf(made, sizeof(made), "wf-%.8s", uuid);
		name = made;
	}
	/* A path we cannot look at counts as there: never removed. */
	file_existed = lstat(path, &st) == 0 || errno != ENOENT;
	if (flow_container_get(&c, ctx, args) < 0)
		vsm__error_reset(); /* the step reports it */
	if ((rc = flow_obj_new(pre)) == 0 &&
	    ((rc = flow_obj_str(*pre, "checkpoint", name)) < 0 ||
	     (rc = flow_obj_bool(*pre, "checkpoint_existed", c && has_checkpoint(c, name))) < 0 ||
	     (rc = flow_obj_bool(*pre, "file_existed", file_existed)) < 0)) {
		json_object_put(*pre);
		*pre = NULL;
	}
	vsm_container_free(c);
	return rc;
}

/* Remove what the backup step made that pre says was not there. */
static int backup_remove(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre)
{
	const char *path = flow_str(args, "path"), *name = flow_str(pre, "checkpoint");
	int rc = 0;

	if (flow_pre_has(ctx, op, pre, "file_existed") && !flow_bool(pre, "file_existed", true) &&
	    unlink(path) < 0 && errno != ENOENT)
		return vsm_err(VSM_EIO, "backup file '%s': cannot remove it: %s", path,
			       strerror(errno));
	if (name && flow_pre_has(ctx, op, pre, "checkpoint_existed") &&
	    !flow_bool(pre, "checkpoint_existed", true))
		rc = checkpoint_drop(ctx, args, name, 0);
	return rc;
}

static int backup_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		      bool again, json_object **result)
{
	vsm_backup_opts opts = VSM_BACKUP_OPTS_INIT;
	vsm_backup_stats stats;
	vsm_container *c = NULL;
	bool existed;
	int rc;

	(void)again;
	memset(&stats, 0, sizeof(stats));
	if ((rc = flow_container_get(&c, ctx, args)) < 0)
		return rc;
	/* Without pre (as a compensate step) the args and the state decide. */
	if (!(opts.checkpoint = flow_str(pre, "checkpoint")))
		opts.checkpoint = flow_str(args, "checkpoint");
	if (flow_pre_has(NULL, NULL, pre, "checkpoint_existed"))
		existed = flow_bool(pre, "checkpoint_existed", false);
	else
		existed = opts.checkpoint && has_checkpoint(c, opts.checkpoint);
	if (existed)
		opts.flags |= VSM_BACKUP_AT_CHECKPOINT;
	opts.incremental_from = flow_str(args, "incremental_from");
	opts.stats = &stats;
	if ((rc = vsm_backup(c, flow_str(args, "path"), &opts)) < 0)
		goto out;
	if ((rc = flow_obj_new(result)) < 0 ||
	    (rc = flow_obj_str(*result, "container", vsm_container_name(c))) < 0 ||
	    (rc = flow_obj_str(*result, "path", flow_str(args, "path"))) < 0 ||
	    (rc = flow_obj_str(*result, "checkpoint",
			       stats.checkpoint[0] ? stats.checkpoint : opts.checkpoint)) < 0 ||
	    (rc = flow_obj_int(*result, "data_bytes", (int64_t)stats.data_bytes)) < 0) {
		/* A failed step changes nothing. */
		json_object_put(*result);
		*result = NULL;
		if (pre)
			backup_remove(op, ctx, args, pre);
		rc = flow_nomem();
	}
out:
	vsm_container_free(c);
	return rc;
}

static int backup_undo(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		       json_object *result)
{
	(void)result; /* pre knows the file and the checkpoint either way */
	return backup_remove(op, ctx, args, pre);
}

static const flow_arg backup_args[] = {
	FLOW_ARG_CONTAINER,
	{ "path", FLOW_T_STRING, true },
	{ "incremental_from", FLOW_T_STRING, false },
	{ "checkpoint", FLOW_T_STRING, false },
};

static const char *const backup_results[] = { "container", "path", "checkpoint", "data_bytes",
					      NULL };

static const flow_op op_backup = {
	.name = "backup.create",
	.args = backup_args,
	.n_args = sizeof(backup_args) / sizeof(backup_args[0]),
	.results = backup_results,
	.pre = backup_pre,
	.run = backup_run,
	.undo = backup_undo,
};

/* --- group.checkpoint, group.checkpoint_delete --- */

static const char *const group_results[] = { "group", "checkpoint", NULL };

static bool group_has_checkpoint(const vsm_group *g, const char *name)
{
	size_t i;

	for (i = 0; i < vsm_group_checkpoint_count(g); i++)
		if (!strcmp(vsm_group_checkpoint_name(g, i), name))
			return true;
	return false;
}

static int group_result(vsm_group *g, const char *name, json_object **result)
{
	if (!(*result = flow_result("group", vsm_group_name(g), "checkpoint", name, NULL)))
		return flow_nomem();
	return 0;
}

static int gcp_create_pre(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object **pre)
{
	vsm_group *g = NULL;
	int rc;

	(void)op;
	if (flow_group_get(&g, ctx, args) < 0)
		vsm__error_reset(); /* the step reports it */
	rc = existed_pre(pre, g && group_has_checkpoint(g, flow_str(args, "name")));
	vsm_group_free(g);
	return rc;
}

static int gcp_create_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			  bool again, json_object **result)
{
	const char *name = flow_str(args, "name");
	vsm_group *g = NULL;
	int rc;

	(void)op;
	(void)pre;
	(void)again;
	if ((rc = flow_group_get(&g, ctx, args)) == 0 &&
	    (rc = vsm_group_checkpoint_create(g, name, NULL)) == 0 &&
	    (rc = group_result(g, name, result)) < 0) {
		vsm_group_checkpoint_delete(g, name, 0);
		rc = flow_nomem();
	}
	vsm_group_free(g);
	return rc;
}

static int gcp_create_undo(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			   json_object *result)
{
	const char *name = flow_str(args, "name");
	vsm_group *g = NULL;
	int rc;

	(void)result; /* a group checkpoint not there before is the step's */
	if (!flow_pre_has(ctx, op, pre, "existed") || flow_bool(pre, "existed", true))
		return 0;
	if ((rc = flow_group_get(&g, ctx, args)) == 0 && group_has_checkpoint(g, name))
		rc = vsm_group_checkpoint_delete(g, name, 0);
	vsm_group_free(g);
	return flow_gone_ok(rc);
}

static const flow_arg group_args[] = {
	{ "group", FLOW_T_STRING, true },
	{ "datastore", FLOW_T_STRING, false },
	{ "name", FLOW_T_STRING, true },
};

static const flow_op op_gcp_create = {
	.name = "group.checkpoint",
	.args = group_args,
	.n_args = sizeof(group_args) / sizeof(group_args[0]),
	.results = group_results,
	.pre = gcp_create_pre,
	.run = gcp_create_run,
	.undo = gcp_create_undo,
};

static int gcp_delete_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			  bool again, json_object **result)
{
	const char *name = flow_str(args, "name");
	vsm_group *g = NULL;
	int rc;

	(void)op;
	(void)pre;
	if ((rc = flow_group_get(&g, ctx, args)) == 0)
		rc = vsm_group_checkpoint_delete(g, name, 0);
	/* Run again: the first run got as far as removing it. */
	if (again)
		rc = flow_gone_ok(rc);
	if (rc == 0 && !(*result = flow_result("group", g ? vsm_group_name(g) :
					       flow_str(args, "group"),
					       "checkpoint", name, NULL)))
		rc = flow_nomem();
	vsm_group_free(g);
	return rc;
}

static const flow_op op_gcp_delete = {
	.name = "group.checkpoint_delete",
	.args = group_args,
	.n_args = sizeof(group_args) / sizeof(group_args[0]),
	.results = group_results,
	.run = gcp_delete_run,
	.undo = NULL, /* the members' layers are merged away */
};

const flow_op *const flow_checkpoint_ops[] = {
	&op_cp_create, &op_cp_delete, &op_cp_revert, &op_backup, &op_gcp_create, &op_gcp_delete,
	NULL,
};
