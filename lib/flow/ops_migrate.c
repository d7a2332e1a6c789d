/*
 * Built-in template op container.migrate: offline migration of a detached
 * container to another datastore (vsm_container_migrate), undone by
 * migrating it back. The migration is journalled by the library itself,
 * so after a crash the container is on one side or the other, never both;
 * the step's re-run and its undo only look where it is now.
 * The "Built-in ops" table of doc/workflows.md lists it.
 */
#include <stdlib.h>
#include <string.h>

#include "ops_common.h"

static const char *const migrate_results[] = { "container", "datastore", "from", NULL };

/* The container's UUID and datastore before the step: the undo finds it
 * by UUID wherever it went and brings it back there. */
static int migrate_pre(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object **pre)
{
	vsm_container *c = NULL;
	int rc;

	(void)op;
	if (flow_container_get(&c, ctx, args) < 0)
		vsm__error_reset(); /* the step reports it */
	if ((rc = flow_obj_new(pre)) == 0 &&
	    ((rc = flow_obj_str(*pre, "uuid", c ? vsm_container_uuid(c) : NULL)) < 0 ||
	     (rc = flow_obj_str(*pre, "from", c ? vsm_container_datastore(c) : NULL)) < 0)) {
		json_object_put(*pre);
		*pre = NULL;
	}
	vsm_container_free(c);
	return rc;
}

static int migrate_undo(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			json_object *result)
{
	const char *uuid = flow_str(pre, "uuid"), *from = flow_str(pre, "from");
	vsm_container *c = NULL;
	int rc;

	(void)op;
	(void)args;
	(void)result; /* the step may have moved it or not: look */
	if (!uuid || !from)
		return 0; /* no container before the step: nothing moved */
	if ((rc = vsm_container_lookup_by_uuid(&c, ctx, uuid)) < 0)
		return flow_gone_ok(rc);
	if (strcmp(vsm_container_datastore(c), from) != 0)
		rc = vsm_container_migrate(c, from, NULL);
	vsm_container_free(c);
	return rc;
}

static int migrate_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		       bool again, json_object **result)
{
	const char *to = flow_str(args, "to"), *uuid = flow_str(pre, "uuid");
	const char *from = flow_str(pre, "from");
	vsm_container *c = NULL;
	int rc;

	(void)op;
	if (again && uuid)
		/* The process died in or after the migration: it finished or
		 * was rolled back, by UUID the container is on one side. */
		rc = vsm_container_lookup_by_uuid(&c, ctx, uuid);
	else
		rc = flow_container_get(&c, ctx, args);
	if (rc == 0 && !(again && !strcmp(vsm_container_datastore(c), to)))
		rc = vsm_container_migrate(c, to, NULL);
	if (rc == 0 &&
	    !(*result = flow_result("container", vsm_container_name(c), "datastore",
				    vsm_container_datastore(c), "from", from, NULL))) {
		/* A failed step changes nothing. */
		migrate_undo(op, ctx, args, pre, NULL);
		rc = flow_nomem();
	}
	vsm_container_free(c);
	return rc;
}

static const flow_arg migrate_args[] = {
	FLOW_ARG_CONTAINER,
	{ "to", FLOW_T_STRING, true },
};

static const flow_op op_migrate = {
	.name = "container.migrate",
	.args = migrate_args,
	.n_args = sizeof(migrate_args) / sizeof(migrate_args[0]),
	.results = migrate_results,
	.pre = migrate_pre,
	.run = migrate_run,
	.undo = migrate_undo,
};

const flow_op *const flow_migrate_ops[] = {
	&op_migrate, NULL,
};
