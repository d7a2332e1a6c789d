/*
 * The table of operations templates can name: the built-in ones
 * (ops_*.c) and those a program registers (vsm_workflow_op_register),
 * whose do/undo take and give JSON text; and small helpers the ops share.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"

typedef struct {
	flow_op *v;      /* each with its own copies of name and schema */
	flow_arg **args; /* the parsed schema of each */
	char ***results;
	size_t n;
} flow_registry;

static const flow_op *const *const builtin_tables[] = {
	flow_container_ops, flow_device_ops, flow_migrate_ops, flow_checkpoint_ops,
	flow_other_ops,
};

static const char *const builtin_namespaces[] = {
	"container", "device", "checkpoint", "backup", "group", "place", "workflow",
};

const flow_op *flow_op_find(vsm_ctx *ctx, const char *name)
{
	flow_registry *reg = ctx->flow;
	size_t t, i;

	for (t = 0; t < sizeof(builtin_tables) / sizeof(builtin_tables[0]); t++)
		for (i = 0; builtin_tables[t][i]; i++)
			if (!strcmp(builtin_tables[t][i]->name, name))
				return builtin_tables[t][i];
	for (i = 0; reg && i < reg->n; i++)
		if (!strcmp(reg->v[i].name, name))
			return &reg->v[i];
	return NULL;
}

/* --- registered ops: JSON text in and out --- */

static int user_run(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		    bool again, json_object **result)
{
	char *out = NULL;
	int rc;

	(void)pre;
	(void)again;
	rc = op->user.run(ctx, json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN), &out,
			  op->user.opaque);
	if (rc > 0)
		rc = -rc;
	if (rc < 0) {
		free(out);
		if (!vsm__error_code())
			return vsm_err(-rc, "op '%s' failed (%s)", op->name, vsm_strerror(rc));
		return rc;
	}
	if (out && !(*result = json_tokener_parse(out))) {
		free(out);
		return vsm_err(VSM_EINVAL, "op '%s' returned a result that is not JSON", op->name);
	}
	free(out);
	if (*result && !json_object_is_type(*result, json_type_object)) {
		json_object_put(*result);
		*result = NULL;
		return vsm_err(VSM_EINVAL, "op '%s' returned a result that is not a JSON object",
			       op->name);
	}
	return 0;
}

static int user_undo(const flow_op *op, vsm_ctx *ctx, json_object *args, json_object *pre,
		     json_object *result)
{
	int rc;

	(void)pre;
	rc = op->user.undo(ctx, json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN),
			   result ? json_object_to_json_string_ext(result, JSON_C_TO_STRING_PLAIN)
				  : NULL,
			   op->user.opaque);
	if (rc > 0)
		rc = -rc;
	if (rc < 0 && !vsm__error_code())
		return vsm_err(-rc, "undo of op '%s' failed (%s)", op->name, vsm_strerror(rc));
	return rc;
}

static void registry_free(void *p)
{
	flow_registry *reg = p;
	size_t i, j;

	if (!reg)
		return;
	for (i = 0; i < reg->n; i++) {
		free((char *)reg->v[i].name);
		free((char *)reg->v[i].user.schema);
		for (j = 0; j < reg->v[i].n_args; j++)
			free((char *)reg->args[i][j].name);
		free(reg->args[i]);
		for (j = 0; reg->results[i] && reg->results[i][j]; j++)
			free(reg->results[i][j]);
		free(reg->results[i]);
	}
	free(reg->v);
	free(reg->args);
	free(reg->results);
	free(reg);
}

static bool valid_op_name(const char *name)
{
	const char *dot = strchr(name, '.');
	size_t i;

	if (!dot || dot == name || !dot[1] || strlen(name) > 64)
		return false;
	for (i = 0; name[i]; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return false;
	return true;
}

static int type_of(const char *s, flow_type *out)
{
	static const struct {
		const char *name;
		flow_type t;
	} types[] = {
		{ "string", FLOW_T_STRING }, { "integer", FLOW_T_INTEGER },
		{ "size", FLOW_T_SIZE },     { "boolean", FLOW_T_BOOLEAN },
		{ "any", FLOW_T_ANY },
	};
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(types[i].name, s)) {
			*out = types[i].t;
			return 0;
		}
	return -1;
}

/* The schema text of a registered op, into @args and @results. */
static int parse_schema(const char *name, const char *text, flow_arg **args, size_t *n_args,
			char ***results)
{
	json_object *root = text ? json_tokener_parse(text) : NULL, *a = NULL, *r = NULL;
	size_t n = 0, i;
	int rc = 0;

	*args = NULL;
	*n_args = 0;
	*results = NULL;
	if (!root || !json_object_is_type(root, json_type_object)) {
		rc = vsm_err(VSM_EINVAL, "op '%s': schema is not a JSON object", name);
		goto out;
	}
	json_object_object_foreach(root, field, fval) {
		(void)fval;
		if (strcmp(field, "args") && strcmp(field, "results")) {
			rc = vsm_err(VSM_EINVAL, "op '%s': schema.%s: unknown field", name, field);
			goto out;
		}
	}
	if (json_object_object_get_ex(root, "args", &a) &&
	    !json_object_is_type(a, json_type_object)) {
		rc = vsm_err(VSM_EINVAL, "op '%s': schema.args is not an object", name);
		goto out;
	}
	if (a && !(*args = vsm__calloc((size_t)json_object_object_length(a) + 1, sizeof(**args)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if (a) {
		json_object_object_foreach(a, key, val) {
			json_object *t = NULL, *req = NULL;
			flow_arg *fa = &(*args)[n];

			if (!json_object_is_type(val, json_type_object) ||
			    !json_object_object_get_ex(val, "type", &t) ||
			    !json_object_is_type(t, json_type_string) ||
			    type_of(json_object_get_string(t), &fa->type) < 0) {
				rc = vsm_err(VSM_EINVAL, "op '%s': schema.args.%s: needs a \"type\" "
					     "of string, integer, size, boolean or any", name, key);
				goto out;
			}
			if (json_object_object_get_ex(val, "required", &req) &&
			    !json_object_is_type(req, json_type_boolean)) {
				rc = vsm_err(VSM_EINVAL, "op '%s': schema.args.%s.required is not a "
					     "boolean", name, key);
				goto out;
			}
			fa->required = req && json_object_get_boolean(req);
			if (!(fa->name = vsm__strdup(key))) {
				rc = -VSM_ENOMEM;
				goto out;
			}
			*n_args = ++n;
		}
	}
	if (json_object_object_get_ex(root, "results", &r)) {
		size_t m = json_object_is_type(r, json_type_array) ? json_object_array_length(r) : 0;

		if (!json_object_is_type(r, json_type_array)) {
			rc = vsm_err(VSM_EINVAL, "op '%s': schema.results is not an array", name);
			goto out;
		}
		if (!(*results = vsm__calloc(m + 1, sizeof(**results)))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
		for (i = 0; i < m; i++) {
			json_object *f = json_object_array_get_idx(r, i);

			if (!json_object_is_type(f, json_type_string)) {
				rc = vsm_err(VSM_EINVAL, "op '%s': schema.results[%zu] is not a "
					     "string", name, i);
				goto out;
			}
			if (!((*results)[i] = vsm__strdup(json_object_get_string(f)))) {
				rc = -VSM_ENOMEM;
				goto out;
			}
		}
	}
out:
	json_object_put(root);
	if (rc < 0) {
		for (i = 0; i < n; i++)
			free((char *)(*args)[i].name);
		free(*args);
		for (i = 0; *results && (*results)[i]; i++)
			free((*results)[i]);
		free(*results);
		*args = NULL;
		*results = NULL;
	}
	return rc;
}

VSM_API int vsm_workflow_op_register(vsm_ctx *ctx, const vsm_workflow_op *op)
{
	flow_registry *reg;
	flow_arg *args = NULL;
	char **results = NULL, *name = NULL, *schema = NULL;
	size_t n_args = 0, i;
	void *grown;
	int rc;

	vsm__error_reset();
	if (!ctx || !op)
		return vsm_err(VSM_EINVAL, "vsm_workflow_op_register: ctx and op are required");
	if (op->version != VSM_WORKFLOW_OP_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_workflow_op: version %u is unknown (this "
			       "library knows %u)", op->version, VSM_WORKFLOW_OP_VERSION);
	if (!op->name || !valid_op_name(op->name))
		return vsm_err(VSM_EINVAL, "op name '%s' is not NAMESPACE.VERB (letters, digits, "
			       "'.', '_', '-'; at most 64)", op->name ? op->name : "(null)");
	if (!op->run)
		return vsm_err(VSM_EINVAL, "op '%s': run is required", op->name);
	for (i = 0; i < sizeof(builtin_namespaces) / sizeof(builtin_namespaces[0]); i++) {
		size_t len = strlen(builtin_namespaces[i]);

		if (!strncmp(op->name, builtin_namespaces[i], len) && op->name[len] == '.')
			return vsm_err(VSM_EINVAL, "op '%s': namespace '%s' is the library's",
				       op->name, builtin_namespaces[i]);
	}
	vsm__ctx_lock(ctx);
	if (flow_op_find(ctx, op->name)) {
		rc = vsm_err(VSM_EEXISTS, "op '%s' is already registered", op->name);
		goto out;
	}
	if ((rc = parse_schema(op->name, op->schema ? op->schema : "{}", &args, &n_args,
			       &results)) < 0)
		goto out;
	if (!ctx->flow) {
		if (!(ctx->flow = vsm__calloc(1, sizeof(flow_registry)))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
		ctx->flow_free = registry_free;
	}
	reg = ctx->flow;
	if (!(name = vsm__strdup(op->name)) ||
	    !(schema = vsm__strdup(op->schema ? op->schema : "{}"))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if (!(grown = realloc(reg->v, (reg->n + 1) * sizeof(*reg->v)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	reg->v = grown;
	if (!(grown = realloc(reg->args, (reg->n + 1) * sizeof(*reg->args)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	reg->args = grown;
	if (!(grown = realloc(reg->results, (reg->n + 1) * sizeof(*reg->results)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	reg->results = grown;
	memset(&reg->v[reg->n], 0, sizeof(reg->v[reg->n]));
	reg->v[reg->n].name = name;
	reg->v[reg->n].args = args;
	reg->v[reg->n].n_args = n_args;
	reg->v[reg->n].results = (const char *const *)results;
	reg->v[reg->n].run = user_run;
	reg->v[reg->n].undo = op->undo ? user_undo : NULL;
	reg->v[reg->n].user = *op;
	reg->v[reg->n].user.name = name;
	reg->v[reg->n].user.schema = schema;
	reg->args[reg->n] = args;
	reg->results[reg->n] = results;
	reg->n++;
	name = schema = NULL;
	args = NULL;
	results = NULL;
	rc = 0;
out:
	vsm__ctx_unlock(ctx);
	free(name);
	free(schema);
	if (args) {
		for (i = 0; i < n_args; i++)
			free((char *)args[i].name);
		free(args);
	}
	for (i = 0; results && results[i]; i++)
		free(results[i]);
	free(results);
	return rc;
}

/* --- helpers --- */

const char *flow_str(json_object *args, const char *name)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(args, name, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int64_t flow_int(json_object *args, const char *name, int64_t dflt)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(args, name, &v) || !json_object_is_type(v, json_type_int))
		return dflt;
	return json_object_get_int64(v);
}

bool flow_bool(json_object *args, const char *name, bool dflt)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(args, name, &v) ||
	    !json_object_is_type(v, json_type_boolean))
		return dflt;
	return json_object_get_boolean(v);
}

int flow_parse_size(json_object *v, uint64_t *out)
{
	const char *s, *units = "KMGT";
	char *end;
	unsigned long long n;
	int shift = 0;

	if (json_object_is_type(v, json_type_int)) {
		int64_t i = json_object_get_int64(v);

		if (i < 0)
			return -1;
		*out = (uint64_t)i;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	if (!isdigit((unsigned char)*s))
		return -1;
	n = strtoull(s, &end, 10);
	if (*end) {
		const char *u = strchr(units, toupper((unsigned char)*end));

		if (!u || !*u)
			return -1;
		shift = 10 * (int)(u - units + 1);
		end++;
		if (*end == 'i' && end[1] == 'B')
			end += 2;
		else if (*end == 'B')
			end++;
		if (*end)
			return -1;
	}
	if (shift && n > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)n << shift;
	return 0;
}

json_object *flow_result(const char *key, ...)
{
	json_object *o = json_object_new_object();
	va_list ap;

	if (!o)
		return NULL;
	va_start(ap, key);
	for (; key; key = va_arg(ap, const char *)) {
		const char *val = va_arg(ap, const char *);

		json_object_object_add(o, key, val ? json_object_new_string(val) : NULL);
	}
	va_end(ap);
	return o;
}
