/*
 * Built-in template ops on containers and their devices: create, clone,
 * destroy, attach, detach, deploy, undeploy (the "Built-in ops" table of
 * doc/workflows.md). Each pre() notes what its undo needs to put things
 * back as it found them; each undo works from the state it finds, so it
 * can run twice, and after a process that died in the middle of the step.
 */
#include <stdlib.h>
#include <string.h>

#include "ops_common.h"

/* --- container.create, container.clone --- */

static const char *const created_results[] = { "name", "uuid", "datastore", NULL };

/*
 * Note in @pre the UUIDs of the containers called @name on @ds (NULL:
 * on every datastore) before the step: an undo that does not know what
 * the step made destroys only a container of that name not among them.
 */
static int note_name_holders(json_object *pre, vsm_ctx *ctx, const char *ds, const char *name)
{
	vsm_container **list = NULL;
	json_object *uuids;
	const char *first = NULL;
	size_t n = 0, i;
	int rc;

	/* A datastore that is not there holds nothing; the step says so. */
	if ((rc = flow_gone_ok(vsm_container_list(&list, &n, ctx, ds))) < 0)
		return rc;
	if (!(uuids = json_object_new_array())) {
		rc = flow_nomem();
		goto out;
	}
	for (i = 0; i < n; i++) {
		json_object *u;

		if (strcmp(vsm_container_name(list[i]), name))
			continue;
		u = json_object_new_string(vsm_container_uuid(list[i]));
		if (!u || json_object_array_add(uuids, u) < 0) {
			json_object_put(u);
			json_object_put(uuids);
			rc = flow_nomem();
			goto out;
		}
		if (!first)
			first = vsm_container_uuid(list[i]);
	}
	if ((rc = flow_obj_str(pre, "uuid", first)) == 0)
		rc = flow_obj_add(pre, "uuids", uuids);
	else
		json_object_put(uuids);
out:
	vsm_container_list_free(list, n);
	return rc;
}

/* Whether @uuid is among those pre noted. */
static bool held_before(json_object *pre, const char *uuid)
{
	json_object *uuids = NULL;
	const char *one;
	size_t i;

	if (json_object_object_get_ex(pre, "uuids", &uuids) &&
	    json_object_is_type(uuids, json_type_array)) {
		for (i = 0; i < json_object_array_length(uuids); i++) {
			json_object *u = json_object_array_get_idx(uuids, i);

			if (json_object_is_type(u, json_type_string) &&
			    !strcmp(json_object_get_string(u), uuid))
				return true;
		}
		return false;
	}
	one = flow_str(pre, "uuid");
	return one && !strcmp(one, uuid);
}

static int created_pre(json_object **pre, vsm_ctx *ctx, const char *ds, const char *name)
{
	int rc;

	if ((rc = flow_obj_new(pre)) < 0)
		return rc;
	if ((rc = flow_obj_str(*pre, "datastore", ds)) < 0 ||
	    (rc = note_name_holders(*pre, ctx, ds, name)) < 0) {
		json_object_put(*pre);
		*pre = NULL;
	}
	return rc;
}

/* The results of a step that made container @c. A failed step leaves
 * nothing behind, so without memory for the results @c goes again. */
static int created_result(vsm_container *c, json_object **result)
{
	*result = flow_result("name", vsm_container_name(c), "uuid", vsm_container_uuid(c),
			      "datastore", vsm_container_datastore(c), NULL);
	if (*result)
		return 0;
	vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE);
	return flow_nomem();
}

static int destroy_uuid(vsm_ctx *ctx, const char *uuid)
{
	vsm_container *c = NULL;
	int rc;

	if ((rc = vsm_container_lookup_by_uuid(&c, ctx, uuid)) == 0)
		rc = vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE);
	vsm_container_free(c);
	return flow_gone_ok(rc);
}

/*
 * The process died while the step ran: a container called @name that
 * pre did not see is the one the step made (before it, the name was
 * free there, or held by the containers pre noted).
 */
static int destroy_newcomers(vsm_ctx *ctx, json_object *pre, const char *name)
{
	vsm_container **list = NULL;
	size_t n = 0, i;
	int rc;

	if (!pre) {
		/* Without pre there is no telling ours from another's. */
		vsm__log(ctx, VSM_LOG_WARN, "container '%s': the step left no note of what held "
			 "the name before it; nothing destroyed", name);
		return 0;
	}
	if ((rc = flow_gone_ok(vsm_container_list(&list, &n, ctx, flow_str(pre, "datastore")))) < 0)
		return rc;
	for (i = 0; i < n && rc == 0; i++) {
		if (strcmp(vsm_container_name(list[i]), name) ||
		    held_before(pre, vsm_container_uuid(list[i])))
			continue;
		rc = flow_gone_ok(vsm_container_destroy(list[i], VSM_CONTAINER_DESTROY_FORCE));
	}
	vsm_container_list_free(list, n);
	return rc;
}

static int created_undo(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			json_object *result)
{
	const char *uuid = flow_str(result, "uuid");

	(void)op;
	if (uuid)
		return destroy_uuid(ctx, uuid);
	return destroy_newcomers(ctx, pre, flow_str(args, "name"));
}

/* A size argument that may be absent (0). */
static int size_arg(json_object *args, const char *name, uint64_t *out)
{
	json_object *v = NULL;

	*out = 0;
	if (!json_object_object_get_ex(args, name, &v) || !v)
		return 0;
	if (flow_parse_size(v, out) < 0)
		return vsm_err(VSM_EINVAL, "%s: not a size (bytes, or a number with K, M, G or T)",
			       name);
	return 0;
}

/* One entry of the device list; its strings point into @d. */
static int device_parse(vsm_device_spec *s, json_object *d, size_t i)
{
	json_object *v = NULL;
	const char *format = NULL;

	if (!json_object_is_type(d, json_type_object))
		return vsm_err(VSM_EINVAL, "devices[%zu]: not an object", i);
	json_object_object_foreach(d, key, val) {
		(void)val;
		if (strcmp(key, "name") && strcmp(key, "size") && strcmp(key, "format") &&
		    strcmp(key, "base"))
			return vsm_err(VSM_EINVAL, "devices[%zu].%s: unknown field (name, size, "
				       "format, base)", i, key);
	}
	if (!(s->name = flow_str(d, "name")))
		return vsm_err(VSM_EINVAL, "devices[%zu].name: required, a string", i);
	if (!json_object_object_get_ex(d, "size", &v) || !v)
		return vsm_err(VSM_EINVAL, "devices[%zu].size: required", i);
	if (flow_parse_size(v, &s->size) < 0)
		return vsm_err(VSM_EINVAL, "devices[%zu].size: not a size (bytes, or a number "
			       "with K, M, G or T)", i);
	if (json_object_object_get_ex(d, "base", &v) && v && !(s->base = flow_str(d, "base")))
		return vsm_err(VSM_EINVAL, "devices[%zu].base: not a string", i);
	/* A linked clone of a base image can only be a qcow2 overlay. */
	s->format = s->base ? VSM_FORMAT_QCOW2 : VSM_FORMAT_RAW;
	if (json_object_object_get_ex(d, "format", &v) && v) {
		if (!(format = flow_str(d, "format")) || vsm_format_parse(&s->format, format) < 0)
			return vsm_err(VSM_EINVAL, "devices[%zu].format: not \"qcow2\" or \"raw\"",
				       i);
	}
	return 0;
}

/* The device list of container.create; the strings point into @list. */
static int devices_parse(json_object *list, vsm_device_spec **specs,
			 const vsm_device_spec ***ptrs, size_t *n)
{
	size_t len, i;
	int rc;

	*specs = NULL;
	*ptrs = NULL;
	*n = 0;
	if (!json_object_is_type(list, json_type_array) || !(len = json_object_array_length(list)))
		return vsm_err(VSM_EINVAL, "devices: not a non-empty array");
	if (!(*specs = vsm__calloc(len, sizeof(**specs))) ||
	    !(*ptrs = vsm__calloc(len, sizeof(**ptrs)))) {
		free(*specs);
		*specs = NULL;
		return -VSM_ENOMEM;
	}
	for (i = 0; i < len; i++) {
		vsm_device_spec init = VSM_DEVICE_SPEC_INIT;

		(*specs)[i] = init;
		if ((rc = device_parse(&(*specs)[i], json_object_array_get_idx(list, i), i)) < 0) {
			free(*specs);
			free(*ptrs);
			*specs = NULL;
			*ptrs = NULL;
			return rc;
		}
		(*ptrs)[i] = &(*specs)[i];
	}
	*n = len;
	return 0;
}

/* The datastore a create looks at: none (every one) when placement
 * picks it. */
static const char *create_ds(json_object *args)
{
	const char *ds = flow_str(args, "datastore");

	if (flow_bool(args, "place", false) && ds && !strcmp(ds, "auto"))
		return NULL;
	return ds;
}

static int create_pre(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object **pre)
{
	(void)op;
	return created_pre(pre, ctx, create_ds(args), flow_str(args, "name"));
}

static int create_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		      bool again, json_object **result)
{
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	vsm_device_spec *specs = NULL;
	const vsm_device_spec **ptrs = NULL;
	vsm_container *c = NULL;
	json_object *devices = NULL;
	int rc;

	(void)op;
	(void)pre;
	(void)again;
	json_object_object_get_ex(args, "devices", &devices);
	if ((rc = devices_parse(devices, &specs, &ptrs, &opts.n_devices)) < 0)
		return rc;
	if ((rc = size_arg(args, "state_size", &opts.state_size)) < 0)
		goto out;
	opts.devices = ptrs;
	if (flow_bool(args, "place", false))
		opts.flags |= VSM_CONTAINER_CREATE_PLACE;
	if ((rc = vsm_container_create(&c, ctx, create_ds(args), flow_str(args, "name"),
				       &opts)) == 0)
		rc = created_result(c, result);
out:
	vsm_container_free(c);
	free(specs);
	free(ptrs);
	return rc;
}

static const flow_arg create_args[] = {
	{ "name", FLOW_T_STRING, true },
	{ "datastore", FLOW_T_STRING, false },
	{ "devices", FLOW_T_DEVICES, true },
	{ "state_size", FLOW_T_SIZE, false },
	{ "place", FLOW_T_BOOLEAN, false },
};

static const flow_op op_create = {
	.name = "container.create",
	.args = create_args,
	.n_args = sizeof(create_args) / sizeof(create_args[0]),
	.results = created_results,
	.pre = create_pre,
	.run = create_run,
	.undo = created_undo,
};

/* The clone lands on its source's datastore: that is where pre looks. */
static int clone_pre(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object **pre)
{
	vsm_container *src = NULL;
	int rc;

	(void)op;
	if (flow_container_get(&src, ctx, args) < 0) {
		/* The step will fail the same way; note the name's holders
		 * where the args point all the same. */
		vsm__error_reset();
		return created_pre(pre, ctx, flow_str(args, "datastore"), flow_str(args, "name"));
	}
	rc = created_pre(pre, ctx, vsm_container_datastore(src), flow_str(args, "name"));
	vsm_container_free(src);
	return rc;
}

static int clone_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		     bool again, json_object **result)
{
	vsm_container *src = NULL, *c = NULL;
	int rc;

	(void)op;
	(void)pre;
	(void)again;
	if ((rc = flow_container_get(&src, ctx, args)) == 0 &&
	    (rc = vsm_checkpoint_clone(&c, src, flow_str(args, "checkpoint"),
				       flow_str(args, "name"),
				       flow_bool(args, "full", false) ? VSM_CLONE_FULL : 0)) == 0)
		rc = created_result(c, result);
	vsm_container_free(c);
	vsm_container_free(src);
	return rc;
}

static const flow_arg clone_args[] = {
	FLOW_ARG_CONTAINER,
	{ "checkpoint", FLOW_T_STRING, true },
	{ "name", FLOW_T_STRING, true },
	{ "full", FLOW_T_BOOLEAN, false },
};

static const flow_op op_clone = {
	.name = "container.clone",
	.args = clone_args,
	.n_args = sizeof(clone_args) / sizeof(clone_args[0]),
	.results = created_results,
	.pre = clone_pre,
	.run = clone_run,
	.undo = created_undo,
};

/* --- container.destroy --- */

/* The UUID of the container the step is to destroy: run goes for that
 * one, so that a step run again never takes a newcomer of the name. */
static int destroy_pre(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object **pre)
{
	vsm_container *c = NULL;
	int rc;

	(void)op;
	if (flow_container_get(&c, ctx, args) < 0)
		vsm__error_reset(); /* the step reports it */
	if ((rc = flow_obj_new(pre)) == 0 &&
	    (rc = flow_obj_str(*pre, "uuid", c ? vsm_container_uuid(c) : NULL)) < 0) {
		json_object_put(*pre);
		*pre = NULL;
	}
	vsm_container_free(c);
	return rc;
}

static int destroy_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		       bool again, json_object **result)
{
	const char *uuid = flow_str(pre, "uuid");
	vsm_container *c = NULL;
	int rc;

	(void)op;
	if (uuid)
		rc = vsm_container_lookup_by_uuid(&c, ctx, uuid);
	else
		rc = flow_container_get(&c, ctx, args);
	if (rc == 0)
		rc = vsm_container_destroy(c, flow_bool(args, "force", false) ?
					   VSM_CONTAINER_DESTROY_FORCE : 0);
	/* Run again: the first run got as far as removing it. */
	if (again)
		rc = flow_gone_ok(rc);
	if (rc == 0 && !(*result = flow_result("name", c ? vsm_container_name(c) :
					       flow_str(args, "container"),
					       "uuid", c ? vsm_container_uuid(c) : uuid, NULL)))
		rc = flow_nomem();
	vsm_container_free(c);
	return rc;
}

static const flow_arg destroy_args[] = {
	FLOW_ARG_CONTAINER,
	{ "force", FLOW_T_BOOLEAN, false },
};

static const char *const destroy_results[] = { "name", "uuid", NULL };

static const flow_op op_destroy = {
	.name = "container.destroy",
	.args = destroy_args,
	.n_args = sizeof(destroy_args) / sizeof(destroy_args[0]),
	.results = destroy_results,
	.pre = destroy_pre,
	.run = destroy_run,
	.undo = NULL, /* the data is gone */
};

/* --- container.attach, container.detach --- */

static const char *const attach_results[] = { "container", "host", NULL };

/* The host the container is attached to before the step (null: none). */
static int host_pre(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object **pre)
{
	vsm_container *c = NULL;
	int rc;

	(void)op;
	if (flow_container_get(&c, ctx, args) < 0)
		vsm__error_reset(); /* the step reports it */
	if ((rc = flow_obj_new(pre)) == 0 &&
	    (rc = flow_obj_str(*pre, "host", c ? vsm_container_attached_host(c) : NULL)) < 0) {
		json_object_put(*pre);
		*pre = NULL;
	}
	vsm_container_free(c);
	return rc;
}

static bool same_host(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/*
 * Put the container back on the host pre noted (or on none). The devices
 * deployed meanwhile belong to the host being left, and later steps
 * (undone before this one) deployed them: a forced detach takes them
 * along.
 */
static int host_restore(vsm_ctx *ctx, json_object *args, json_object *pre)
{
	const char *want = flow_str(pre, "host");
	vsm_container *c = NULL;
	int rc;

	if ((rc = flow_container_get(&c, ctx, args)) < 0)
		return flow_gone_ok(rc);
	if (same_host(vsm_container_attached_host(c), want))
		goto out;
	if (vsm_container_attached_host(c) && (rc = vsm_detach(c, VSM_DETACH_FORCE)) < 0)
		goto out;
	if (want)
		rc = vsm_attach(c, want, 0);
out:
	vsm_container_free(c);
	return rc;
}

static int host_undo(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		     json_object *result)
{
	(void)op;
	(void)result; /* whether the step happened or not, pre says where to be */
	return host_restore(ctx, args, pre);
}

static int attach_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		      bool again, json_object **result)
{
	const char *host = flow_str(args, "host");
	bool place = flow_bool(args, "place", false);
	unsigned int flags = 0;
	vsm_container *c = NULL;
	int rc;

	(void)op;
	(void)pre;
	(void)again;
	if (!host && !place)
		return vsm_err(VSM_EINVAL, "host: required unless place is true");
	if (place)
		flags |= VSM_ATTACH_PLACE;
	if (flow_bool(args, "takeover", false))
		flags |= VSM_ATTACH_TAKEOVER;
	if ((rc = flow_container_get(&c, ctx, args)) == 0 &&
	    (rc = vsm_attach(c, host, flags)) == 0 &&
	    !(*result = flow_result("container", vsm_container_name(c),
				    "host", vsm_container_attached_host(c), NULL))) {
		/* A failed step changes nothing. */
		host_restore(ctx, args, pre);
		rc = flow_nomem();
	}
	vsm_container_free(c);
	return rc;
}

static const flow_arg attach_args[] = {
	FLOW_ARG_CONTAINER,
	{ "host", FLOW_T_STRING, false },
	{ "place", FLOW_T_BOOLEAN, false },
	{ "takeover", FLOW_T_BOOLEAN, false },
};

static const flow_op op_attach = {
	.name = "container.attach",
	.args = attach_args,
	.n_args = sizeof(attach_args) / sizeof(attach_args[0]),
	.results = attach_results,
	.pre = host_pre,
	.run = attach_run,
	.undo = host_undo,
};

static int detach_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		      bool again, json_object **result)
{
	vsm_container *c = NULL;
	const char *host;
	int rc;

	(void)op;
	(void)again;
	if ((rc = flow_container_get(&c, ctx, args)) < 0)
		return rc;
	/* Still valid after the detach (see vsm_container). */
	host = vsm_container_attached_host(c);
	if ((rc = vsm_detach(c, 0)) == 0 &&
	    !(*result = flow_result("container", vsm_container_name(c), "host", host, NULL))) {
		host_restore(ctx, args, pre);
		rc = flow_nomem();
	}
	vsm_container_free(c);
	return rc;
}

static const flow_arg detach_args[] = {
	FLOW_ARG_CONTAINER,
};

static const flow_op op_detach = {
	.name = "container.detach",
	.args = detach_args,
	.n_args = sizeof(detach_args) / sizeof(detach_args[0]),
	.results = attach_results,
	.pre = host_pre,
	.run = detach_run,
	.undo = host_undo,
};

/* --- device.deploy, device.undeploy --- */

/* Whether the device is deployed before the step. */
static int deployed_pre(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object **pre)
{
	vsm_container *c = NULL;
	int rc;

	(void)op;
	if (flow_container_get(&c, ctx, args) < 0)
		vsm__error_reset(); /* the step reports it */
	if ((rc = flow_obj_new(pre)) == 0 &&
	    (rc = flow_obj_bool(*pre, "deployed",
				c && flow_device_deployed(c, flow_str(args, "device")))) < 0) {
		json_object_put(*pre);
		*pre = NULL;
	}
	vsm_container_free(c);
	return rc;
}

/* Bring the device back to being deployed (@want) or not. A redeploy
 * takes the default target and bus: the locator does not say which
 * domain the device was hot-plugged into. */
static int deployed_restore(vsm_ctx *ctx, json_object *args, bool want)
{
	const char *dev = flow_str(args, "device");
	vsm_container *c = NULL;
	int rc;

	if ((rc = flow_container_get(&c, ctx, args)) < 0)
		return flow_gone_ok(rc);
	if (flow_device_deployed(c, dev) == want || !vsm_container_device_by_name(c, dev))
		rc = 0;
	else if (want)
		rc = vsm_device_deploy(NULL, c, dev, NULL);
	else
		rc = vsm_device_undeploy(c, dev, 0);
	vsm_container_free(c);
	return rc;
}

static int deployed_undo(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			 json_object *result)
{
	(void)result; /* pre says what to go back to, whether the step ran or not */
	if (!flow_pre_has(ctx, op, pre, "deployed"))
		return 0;
	return deployed_restore(ctx, args, flow_bool(pre, "deployed", false));
}

static int deploy_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		      bool again, json_object **result)
{
	vsm_container *c = NULL;
	vsm_locator *loc = NULL;
	int rc;

	(void)op;
	(void)again;
	if ((rc = flow_container_get(&c, ctx, args)) == 0 &&
	    (rc = vsm_device_deploy(&loc, c, flow_str(args, "device"), NULL)) == 0 &&
	    !(*result = flow_result("container", vsm_container_name(c),
				    "device", flow_str(args, "device"),
				    "uri", vsm_locator_uri(loc), "path", vsm_locator_path(loc),
				    "host", vsm_locator_host(loc), NULL))) {
		deployed_restore(ctx, args, flow_bool(pre, "deployed", false));
		rc = flow_nomem();
	}
	vsm_locator_free(loc);
	vsm_container_free(c);
	return rc;
}

static const flow_arg device_args[] = {
	FLOW_ARG_CONTAINER,
	{ "device", FLOW_T_STRING, true },
};

static const char *const deploy_results[] = { "container", "device", "uri", "path", "host",
					      NULL };

static const flow_op op_deploy = {
	.name = "device.deploy",
	.args = device_args,
	.n_args = sizeof(device_args) / sizeof(device_args[0]),
	.results = deploy_results,
	.pre = deployed_pre,
	.run = deploy_run,
	.undo = deployed_undo,
};

static int undeploy_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			bool again, json_object **result)
{
	vsm_container *c = NULL;
	int rc;

	(void)op;
	(void)again;
	if ((rc = flow_container_get(&c, ctx, args)) == 0 &&
	    (rc = vsm_device_undeploy(c, flow_str(args, "device"), 0)) == 0 &&
	    !(*result = flow_result("container", vsm_container_name(c),
				    "device", flow_str(args, "device"), NULL))) {
		deployed_restore(ctx, args, flow_bool(pre, "deployed", false));
		rc = flow_nomem();
	}
	vsm_container_free(c);
	return rc;
}

static const char *const undeploy_results[] = { "container", "device", NULL };

static const flow_op op_undeploy = {
	.name = "device.undeploy",
	.args = device_args,
	.n_args = sizeof(device_args) / sizeof(device_args[0]),
	.results = undeploy_results,
	.pre = deployed_pre,
	.run = undeploy_run,
	.undo = deployed_undo,
};

const flow_op *const flow_container_ops[] = {
	&op_create, &op_clone, &op_destroy, &op_attach, &op_detach, &op_deploy, &op_undeploy,
	NULL,
};
