/*
 * Helpers the built-in ops share (ops_common.h).
 */
#include <string.h>

#include "ops_common.h"

int flow_container_get(vsm_container **out, vsm_ctx *ctx, json_object *args)
{
	return vsm_container_lookup(out, ctx, flow_str(args, "datastore"),
				    flow_str(args, "container"));
}

int flow_group_get(vsm_group **out, vsm_ctx *ctx, json_object *args)
{
	return vsm_group_lookup(out, ctx, flow_str(args, "datastore"), flow_str(args, "group"));
}

int flow_gone_ok(int rc)
{
	if (rc != -VSM_ENOTFOUND)
		return rc;
	vsm__error_reset();
	return 0;
}

int flow_nomem(void)
{
	return vsm_err(VSM_ENOMEM, "out of memory");
}

int flow_obj_new(json_object **out)
{
	if (!(*out = json_object_new_object()))
		return flow_nomem();
	return 0;
}

/* @o takes @v over; a failed add leaves @v ours to free. */
static int obj_add(json_object *o, const char *key, json_object *v, bool null_ok)
{
	if (!v && !null_ok)
		return flow_nomem();
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return flow_nomem();
	}
	return 0;
}

int flow_obj_str(json_object *o, const char *key, const char *val)
{
	return obj_add(o, key, val ? json_object_new_string(val) : NULL, !val);
}

int flow_obj_bool(json_object *o, const char *key, bool val)
{
	return obj_add(o, key, json_object_new_boolean(val), false);
}

int flow_obj_int(json_object *o, const char *key, int64_t val)
{
	return obj_add(o, key, json_object_new_int64(val), false);
}

int flow_obj_add(json_object *o, const char *key, json_object *v)
{
	return obj_add(o, key, v, false);
}

bool flow_device_deployed(const vsm_container *c, const char *name)
{
	const vsm_device *d = vsm_container_device_by_name(c, name);

	return d && vsm_device_locator(d);
}

bool flow_pre_has(vsm_ctx *ctx, const flow_op *op, json_object *pre, const char *field)
{
	json_object *v = NULL;

	if (json_object_object_get_ex(pre, field, &v) && json_object_is_type(v, json_type_boolean))
		return true;
	if (op)
		vsm__log(ctx, VSM_LOG_WARN, "%s: the step left no note of '%s'; nothing undone",
			 op->name, field);
	return false;
}
