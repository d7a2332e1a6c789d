/*
 * Built-in template ops that change a container's devices: device.add
 * (undone by removing the device), device.resize and device.remove (points
 * of no return: a grown device is not shrunk back, removed data is gone).
 * The "Built-in ops" table of doc/workflows.md lists them.
 */
#include <stdlib.h>
#include <string.h>

#include "ops_common.h"

static const char *const device_results[] = { "container", "device", NULL };

/* --- device.add --- */

/* Whether the container has a device of that name before the step: the
 * undo removes only a device the step made. */
static int add_pre(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object **pre)
{
	vsm_container *c = NULL;
	int rc;

	(void)op;
	if (flow_container_get(&c, ctx, args) < 0)
		vsm__error_reset(); /* the step reports it */
	if ((rc = flow_obj_new(pre)) == 0 &&
	    ((rc = flow_obj_str(*pre, "uuid", c ? vsm_container_uuid(c) : NULL)) < 0 ||
	     (rc = flow_obj_bool(*pre, "existed",
				 c && vsm_container_device_by_name(c, flow_str(args, "name")))) < 0)) {
		json_object_put(*pre);
		*pre = NULL;
	}
	vsm_container_free(c);
	return rc;
}

/* Remove the device the step added, undeploying it first (a later step,
 * undone before this one, may have deployed it). Gone already is fine. */
static int add_restore(vsm_ctx *ctx, json_object *args, json_object *pre)
{
	const char *name = flow_str(args, "name"), *uuid = flow_str(pre, "uuid");
	vsm_container *c = NULL;
	int rc;

	rc = uuid ? vsm_container_lookup_by_uuid(&c, ctx, uuid) : flow_container_get(&c, ctx, args);
	if (rc < 0)
		return flow_gone_ok(rc);
	if (!vsm_container_device_by_name(c, name))
		goto out;
	if (flow_device_deployed(c, name) && (rc = vsm_device_undeploy(c, name, 0)) < 0)
		goto out;
	rc = flow_gone_ok(vsm_device_remove(c, name, 0));
out:
	vsm_container_free(c);
	return rc;
}

static int add_undo(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		    json_object *result)
{
	(void)result; /* pre says whether the name was the step's to take */
	if (!flow_pre_has(ctx, op, pre, "existed") || flow_bool(pre, "existed", true))
		return 0;
	return add_restore(ctx, args, pre);
}

static int add_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		   bool again, json_object **result)
{
	vsm_device_spec s = VSM_DEVICE_SPEC_INIT;
	vsm_container *c = NULL;
	json_object *v = NULL;
	const char *format;
	int rc;

	(void)op;
	(void)again;
	s.name = flow_str(args, "name");
	s.base = flow_str(args, "base");
	if (json_object_object_get_ex(args, "size", &v) && v && flow_parse_size(v, &s.size) < 0)
		return vsm_err(VSM_EINVAL, "size: not a size (bytes, or a number with K, M, G "
			       "or T)");
	if (!s.size && !s.base)
		return vsm_err(VSM_EINVAL, "size: required unless base is given");
	/* A linked clone of a base image can only be a qcow2 overlay. */
	s.format = s.base ? VSM_FORMAT_QCOW2 : VSM_FORMAT_RAW;
	if ((format = flow_str(args, "format")) && vsm_format_parse(&s.format, format) < 0)
		return vsm_err(VSM_EINVAL, "format: not \"qcow2\" or \"raw\"");
	if ((rc = flow_container_get(&c, ctx, args)) == 0 &&
	    (rc = vsm_device_add(c, &s, flow_bool(args, "thin", false) ?
				 VSM_DEVICE_ADD_THIN : 0)) == 0 &&
	    !(*result = flow_result("container", vsm_container_name(c), "device", s.name,
				    NULL))) {
		/* A failed step changes nothing. */
		add_restore(ctx, args, pre);
		rc = flow_nomem();
	}
	vsm_container_free(c);
	return rc;
}

static const flow_arg add_args[] = {
	FLOW_ARG_CONTAINER,
	{ "name", FLOW_T_STRING, true },
	{ "size", FLOW_T_SIZE, false },
	{ "format", FLOW_T_STRING, false },
	{ "base", FLOW_T_STRING, false },
	{ "thin", FLOW_T_BOOLEAN, false },
};

static const flow_op op_add = {
	.name = "device.add",
	.args = add_args,
	.n_args = sizeof(add_args) / sizeof(add_args[0]),
	.results = device_results,
	.pre = add_pre,
	.run = add_run,
	.undo = add_undo,
};

/* --- device.resize, device.remove: no undo --- */

static int resize_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		      bool again, json_object **result)
{
	vsm_container *c = NULL;
	json_object *v = NULL;
	uint64_t size = 0;
	int rc;

	(void)op;
	(void)pre;
	(void)again; /* growing to the size it has already is a no-op */
	if (!json_object_object_get_ex(args, "size", &v) || !v || flow_parse_size(v, &size) < 0)
		return vsm_err(VSM_EINVAL, "size: not a size (bytes, or a number with K, M, G "
			       "or T)");
	if ((rc = flow_container_get(&c, ctx, args)) == 0 &&
	    (rc = vsm_device_resize(c, flow_str(args, "name"), size, 0)) == 0 &&
	    !(*result = flow_result("container", vsm_container_name(c),
				    "device", flow_str(args, "name"), NULL)))
		rc = flow_nomem();
	vsm_container_free(c);
	return rc;
}

static const flow_arg resize_args[] = {
	FLOW_ARG_CONTAINER,
	{ "name", FLOW_T_STRING, true },
	{ "size", FLOW_T_SIZE, true },
};

static const flow_op op_resize = {
	.name = "device.resize",
	.args = resize_args,
	.n_args = sizeof(resize_args) / sizeof(resize_args[0]),
	.results = device_results,
	.run = resize_run,
	.undo = NULL, /* a device is never shrunk back */
};

static int remove_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		      bool again, json_object **result)
{
	const char *name = flow_str(args, "name");
	vsm_container *c = NULL;
	int rc;

	(void)op;
	(void)pre;
	if ((rc = flow_container_get(&c, ctx, args)) == 0) {
		rc = vsm_device_remove(c, name, 0);
		/* Run again: the first run got as far as removing it. */
		if (again && rc == -VSM_ENOTFOUND && !vsm_container_device_by_name(c, name))
			rc = flow_gone_ok(rc);
	}
	if (rc == 0 && !(*result = flow_result("container", vsm_container_name(c),
					       "device", name, NULL)))
		rc = flow_nomem();
	vsm_container_free(c);
	return rc;
}

static const flow_arg remove_args[] = {
	FLOW_ARG_CONTAINER,
	{ "name", FLOW_T_STRING, true },
};

static const flow_op op_remove = {
	.name = "device.remove",
	.args = remove_args,
	.n_args = sizeof(remove_args) / sizeof(remove_args[0]),
	.results = device_results,
	.run = remove_run,
	.undo = NULL, /* the data is gone */
};

const flow_op *const flow_device_ops[] = {
	&op_add, &op_resize, &op_remove, NULL,
};
