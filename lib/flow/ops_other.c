/*
 * Built-in template ops that only ask: where a container of a given size
 * would go (place.datastore), where a container could run (place.host).
 * They change nothing, so their undo has nothing to do; having one keeps
 * them from counting as steps that cannot be undone.
 */
#include <stdio.h>
#include <string.h>

#include "ops_common.h"

static int nothing_undo(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			json_object *result)
{
	(void)op;
	(void)ctx;
	(void)args;
	(void)pre;
	(void)result;
	return 0;
}

/*
 * The best candidate of @p as result field @field, or -VSM_ENOSPC
 * giving every rejected candidate's reason, the way vsm_place_reserve()
 * and VSM_ATTACH_PLACE do.
 */
static int best_or_nospc(const vsm_placement *p, const char *what, const char *field,
			 json_object **result)
{
	char why[1024];
	size_t i, len = 0;

	if (vsm_placement_count(p)) {
		if (!(*result = flow_result(field, vsm_placement_name(p, 0), NULL)))
			return flow_nomem();
		return 0;
	}
	why[0] = '\0';
	for (i = 0; i < vsm_placement_rejected_count(p) && len < sizeof(why); i++) {
		int n = snprintf(why + len, sizeof(why) - len, "%s%s: %s", i ? "; " : "",
				 vsm_placement_rejected_name(p, i),
				 vsm_placement_rejected_reason(p, i));

		if (n < 0)
			break;
		len += (size_t)n;
	}
	return vsm_err(VSM_ENOSPC, "no %s qualifies%s%s", what, why[0] ? ": " : "", why);
}

/* --- place.datastore --- */

/* Phase 1 for one thick device of @size (raw, the most it can take). */
static int place_ds_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			bool again, json_object **result)
{
	vsm_device_spec dev = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *devs[1] = { &dev };
	vsm_place_request req = VSM_PLACE_REQUEST_INIT;
	vsm_placement *p = NULL;
	json_object *v = NULL;
	int rc;

	(void)op;
	(void)pre;
	(void)again;
	if (!json_object_object_get_ex(args, "size", &v) || flow_parse_size(v, &dev.size) < 0)
		return vsm_err(VSM_EINVAL, "size: not a size (bytes, or a number with K, M, G "
			       "or T)");
	dev.name = "disk";
	req.devices = devs;
	req.n_devices = 1;
	if ((rc = vsm_place_datastore(&p, ctx, &req)) == 0)
		rc = best_or_nospc(p, "datastore", "datastore", result);
	vsm_placement_free(p);
	return rc;
}

static const flow_arg place_ds_args[] = {
	{ "size", FLOW_T_SIZE, true },
};

static const char *const place_ds_results[] = { "datastore", NULL };

static const flow_op op_place_ds = {
	.name = "place.datastore",
	.args = place_ds_args,
	.n_args = sizeof(place_ds_args) / sizeof(place_ds_args[0]),
	.results = place_ds_results,
	.run = place_ds_run,
	.undo = nothing_undo,
};

/* --- place.host --- */

static int place_host_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
			  bool again, json_object **result)
{
	vsm_container *c = NULL;
	vsm_placement *p = NULL;
	int rc;

	(void)op;
	(void)pre;
	(void)again;
	if ((rc = flow_container_get(&c, ctx, args)) == 0 &&
	    (rc = vsm_place_host(&p, c, NULL)) == 0)
		rc = best_or_nospc(p, "host", "host", result);
	vsm_placement_free(p);
	vsm_container_free(c);
	return rc;
}

static const flow_arg place_host_args[] = {
	FLOW_ARG_CONTAINER,
};

static const char *const place_host_results[] = { "host", NULL };

static const flow_op op_place_host = {
	.name = "place.host",
	.args = place_host_args,
	.n_args = sizeof(place_host_args) / sizeof(place_host_args[0]),
	.results = place_host_results,
	.run = place_host_run,
	.undo = nothing_undo,
};

const flow_op *const flow_other_ops[] = {
	&op_place_ds, &op_place_host, NULL,
};
