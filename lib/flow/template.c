/*
 * Templates: parsing and validation (everything that can be known before
 * a run is checked here, and a refusal names the JSON path of what is
 * wrong), then, at run time, parameter values and references resolved.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"

#define PATH_MAX_LEN 256

static const char *const type_names[] = {
	[FLOW_T_STRING] = "string", [FLOW_T_INTEGER] = "integer", [FLOW_T_SIZE] = "size",
	[FLOW_T_BOOLEAN] = "boolean", [FLOW_T_DEVICES] = "devices", [FLOW_T_ANY] = "any",
};

/* A JSON path into the document (a path longer than the buffer is cut:
 * it only names the place in a message). */
static void pfmt(char *dst, size_t size, const char *fmt, ...) VSM_PRINTF(3, 4);
static void pfmt(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, size, fmt, ap);
	va_end(ap);
}

/* An error about the field at @path of the document. */
#define bad(path, ...) flow_bad((path), __VA_ARGS__)
static int flow_bad(const char *path, const char *fmt, ...) VSM_PRINTF(2, 3);
static int flow_bad(const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return vsm_err(VSM_EINVAL, "%s: %s", path, msg);
}

static bool valid_id(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 1 || n > 64)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static const flow_param *param_find(const vsm_workflow *wf, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < wf->n_params; i++)
		if (strlen(wf->params[i].name) == len && !strncmp(wf->params[i].name, name, len))
			return &wf->params[i];
	return NULL;
}

static long step_find(const vsm_workflow *wf, size_t upto, const char *id, size_t len)
{
	size_t i;

	for (i = 0; i < upto; i++)
		if (strlen(wf->steps[i].id) == len && !strncmp(wf->steps[i].id, id, len))
			return (long)i;
	return -1;
}

bool flow_step_undoable(const flow_step *s)
{
	return s->comp || (s->op && s->op->undo);
}

/* --- references --- */

/* One reference "${...}" at @s (pointing at '$'): its kind and parts.
 * Returns the length of the reference, or 0 if it does not close. */
typedef struct {
	bool is_param;
	const char *name; /* param name or step id */
	size_t name_len;
	const char *field; /* step result field */
	size_t field_len;
} flow_ref;

static size_t ref_scan(const char *s, flow_ref *r)
{
	const char *end = strchr(s, '}'), *body = s + 2, *dot;

	if (!end)
		return 0;
	memset(r, 0, sizeof(*r));
	if (!strncmp(body, "param.", 6)) {
		r->is_param = true;
		r->name = body + 6;
		r->name_len = (size_t)(end - r->name);
	} else if (!strncmp(body, "steps.", 6)) {
		r->name = body + 6;
		dot = memchr(r->name, '.', (size_t)(end - r->name));
		if (!dot)
			return (size_t)(end - s + 1); /* name_len 0: malformed */
		r->name_len = (size_t)(dot - r->name);
		r->field = dot + 1;
		r->field_len = (size_t)(end - r->field);
	}
	return (size_t)(end - s + 1);
}

/* The whole of @s is one reference. */
static bool single_ref(const char *s, flow_ref *r)
{
	size_t n;

	if (strncmp(s, "${", 2))
		return false;
	n = ref_scan(s, r);
	return n && n == strlen(s);
}

static bool field_known(const flow_op *op, const char *f, size_t len)
{
	size_t i;

	if (!op || !op->results)
		return true; /* any field */
	for (i = 0; op->results[i]; i++)
		if (strlen(op->results[i]) == len && !strncmp(op->results[i], f, len))
			return true;
	return false;
}

/* Check every reference in string @s: names a declared parameter, or a
 * result field of a step before @upto (a compensate may also name its
 * own step: @upto is then that step's index + 1). */
static int check_refs(const vsm_workflow *wf, const char *s, size_t upto, const char *path)
{
	const char *p = s;

	while ((p = strstr(p, "${"))) {
		flow_ref r;
		size_t n = ref_scan(p, &r);
		long k;

		if (!n)
			return bad(path, "reference '%s' has no closing '}'", p);
		if (!r.name || !r.name_len || (!r.is_param && !r.field_len))
			return bad(path, "reference '%.*s' is neither ${param.NAME} nor "
				   "${steps.ID.FIELD}", (int)n, p);
		if (r.is_param) {
			if (!param_find(wf, r.name, r.name_len))
				return bad(path, "no parameter '%.*s' is declared", (int)r.name_len,
					   r.name);
		} else {
			if ((k = step_find(wf, upto, r.name, r.name_len)) < 0)
				return bad(path, "no earlier step '%.*s'", (int)r.name_len, r.name);
			if (!field_known(wf->steps[k].op, r.field, r.field_len))
				return bad(path, "step '%s' (%s) has no result '%.*s'",
					   wf->steps[k].id, wf->steps[k].op_name, (int)r.field_len,
					   r.field);
		}
		p += n;
	}
	return 0;
}

/* Every string anywhere in @v. */
static int check_refs_deep(const vsm_workflow *wf, json_object *v, size_t upto, const char *path)
{
	char sub[PATH_MAX_LEN];
	size_t i;
	int rc;

	switch (json_object_get_type(v)) {
	case json_type_string:
		return check_refs(wf, json_object_get_string(v), upto, path);
	case json_type_array:
		for (i = 0; i < json_object_array_length(v); i++) {
			pfmt(sub, sizeof(sub), "%s[%zu]", path, i);
			if ((rc = check_refs_deep(wf, json_object_array_get_idx(v, i), upto, sub)) < 0)
				return rc;
		}
		return 0;
	case json_type_object: {
		json_object_object_foreach(v, key, val) {
			pfmt(sub, sizeof(sub), "%s.%s", path, key);
			if ((rc = check_refs_deep(wf, val, upto, sub)) < 0)
				return rc;
		}
		return 0;
	}
	default:
		return 0;
	}
}

/* --- types --- */

static bool has_ref(json_object *v)
{
	return json_object_is_type(v, json_type_string) && strstr(json_object_get_string(v), "${");
}

/* Is literal @v (no references) a value of type @t? */
static bool literal_ok(json_object *v, flow_type t)
{
	uint64_t n;

	switch (t) {
	case FLOW_T_STRING:
		return json_object_is_type(v, json_type_string);
	case FLOW_T_INTEGER:
		return json_object_is_type(v, json_type_int);
	case FLOW_T_SIZE:
		return flow_parse_size(v, &n) == 0;
	case FLOW_T_BOOLEAN:
		return json_object_is_type(v, json_type_boolean);
	case FLOW_T_DEVICES:
		return json_object_is_type(v, json_type_array);
	case FLOW_T_ANY:
		return true;
	}
	return false;
}

/* A parameter of type @p where an argument of type @a is wanted. */
static bool param_fits(flow_type p, flow_type a)
{
	return p == a || a == FLOW_T_ANY || (a == FLOW_T_SIZE && p == FLOW_T_INTEGER) ||
	       (a == FLOW_T_STRING && p != FLOW_T_BOOLEAN);
}

static int check_value(const vsm_workflow *wf, json_object *v, flow_type t, const char *path)
{
	flow_ref r;

	if (has_ref(v)) {
		const char *s = json_object_get_string(v);
		const flow_param *p;

		if (single_ref(s, &r) && r.is_param && (p = param_find(wf, r.name, r.name_len)) &&
		    !param_fits(p->type, t))
			return bad(path, "parameter '%s' is a %s, not a %s", p->name,
				   type_names[p->type], type_names[t]);
		/* Step results and interpolated text are checked at run time. */
		return 0;
	}
	if (!literal_ok(v, t))
		return bad(path, "not a %s", type_names[t]);
	return 0;
}

/* A device list: [{name, size, format?, base?}]. */
static int check_devices(const vsm_workflow *wf, json_object *v, const char *path)
{
	char sub[PATH_MAX_LEN];
	size_t i, n;
	int rc;

	if (has_ref(v))
		return 0;
	if (!json_object_is_type(v, json_type_array) || !(n = json_object_array_length(v)))
		return bad(path, "not a non-empty array of devices");
	for (i = 0; i < n; i++) {
		json_object *d = json_object_array_get_idx(v, i), *f = NULL;

		pfmt(sub, sizeof(sub), "%s[%zu]", path, i);
		if (!json_object_is_type(d, json_type_object))
			return bad(sub, "not an object");
		json_object_object_foreach(d, key, val) {
			static const char *const known[] = { "name", "size", "format", "base" };
			size_t k;

			for (k = 0; k < 4 && strcmp(known[k], key); k++)
				;
			pfmt(sub, sizeof(sub), "%s[%zu].%s", path, i, key);
			if (k == 4)
				return bad(sub, "unknown field (a device has name, size, format, base)");
			if ((rc = check_value(wf, val, k == 1 ? FLOW_T_SIZE : FLOW_T_STRING, sub)) < 0)
				return rc;
		}
		pfmt(sub, sizeof(sub), "%s[%zu]", path, i);
		if (!json_object_object_get_ex(d, "name", &f))
			return bad(sub, "a device needs a name");
		if (!json_object_object_get_ex(d, "size", &f))
			return bad(sub, "a device needs a size (0 with a base: the base's)");
	}
	return 0;
}

/* The args object @args of op @op at @path. */
static int check_args(const vsm_workflow *wf, const flow_op *op, json_object *args,
		      size_t upto, const char *path)
{
	char sub[PATH_MAX_LEN];
	size_t i;
	int rc;

	if (!json_object_is_type(args, json_type_object))
		return bad(path, "not an object");
	json_object_object_foreach(args, key, val) {
		const flow_arg *a = NULL;

		for (i = 0; i < op->n_args && !a; i++)
			if (!strcmp(op->args[i].name, key))
				a = &op->args[i];
		pfmt(sub, sizeof(sub), "%s.%s", path, key);
		if (!a)
			return bad(sub, "op '%s' has no argument '%s'", op->name, key);
		rc = a->type == FLOW_T_DEVICES ? check_devices(wf, val, sub)
					       : check_value(wf, val, a->type, sub);
		if (rc < 0)
			return rc;
	}
	for (i = 0; i < op->n_args; i++) {
		json_object *v = NULL;

		if (op->args[i].required && !json_object_object_get_ex(args, op->args[i].name, &v))
			return bad(path, "op '%s' needs argument '%s'", op->name, op->args[i].name);
	}
	return check_refs_deep(wf, args, upto, path);
}

/* --- the document --- */

static int type_parse(const char *s, flow_type *out)
{
	flow_type t;

	for (t = FLOW_T_STRING; t <= FLOW_T_BOOLEAN; t++)
		if (!strcmp(type_names[t], s)) {
			*out = t;
			return 0;
		}
	return -1;
}

static int parse_params(vsm_workflow *wf, json_object *ps)
{
	size_t n = 0;
	char path[PATH_MAX_LEN];

	if (!json_object_is_type(ps, json_type_object))
		return bad("params", "not an object");
	if (!(wf->params = vsm__calloc((size_t)json_object_object_length(ps) + 1,
				       sizeof(*wf->params))))
		return -VSM_ENOMEM;
	json_object_object_foreach(ps, key, val) {
		flow_param *p = &wf->params[n];
		json_object *t = NULL, *d = NULL;

		pfmt(path, sizeof(path), "params.%s", key);
		if (!valid_id(key))
			return bad(path, "a parameter name is 1-64 of [A-Za-z0-9_-]");
		if (!json_object_is_type(val, json_type_object))
			return bad(path, "not an object");
		json_object_object_foreach(val, f, fv) {
			(void)fv;
			if (strcmp(f, "type") && strcmp(f, "default") && strcmp(f, "description")) {
				pfmt(path, sizeof(path), "params.%s.%s", key, f);
				return bad(path, "unknown field (type, default, description)");
			}
		}
		pfmt(path, sizeof(path), "params.%s.type", key);
		if (!json_object_object_get_ex(val, "type", &t) ||
		    !json_object_is_type(t, json_type_string) ||
		    type_parse(json_object_get_string(t), &p->type) < 0)
			return bad(path, "needs one of string, integer, size, boolean");
		if (!(p->name = vsm__strdup(key)))
			return -VSM_ENOMEM;
		wf->n_params = ++n;
		if (json_object_object_get_ex(val, "default", &d)) {
			pfmt(path, sizeof(path), "params.%s.default", key);
			if (has_ref(d))
				return bad(path, "a default cannot hold a reference");
			if (!literal_ok(d, p->type))
				return bad(path, "not a %s", type_names[p->type]);
			p->dflt = json_object_get(d);
			if (!(p->dflt_text = vsm__strdup(json_object_to_json_string_ext(
				      d, JSON_C_TO_STRING_PLAIN))))
				return -VSM_ENOMEM;
		}
	}
	return 0;
}

static int parse_step(vsm_workflow *wf, size_t i, json_object *st)
{
	flow_step *s = &wf->steps[i];
	json_object *v = NULL, *c = NULL;
	char path[PATH_MAX_LEN], sub[PATH_MAX_LEN];
	int rc;

	pfmt(path, sizeof(path), "steps[%zu]", i);
	if (!json_object_is_type(st, json_type_object))
		return bad(path, "not an object");
	json_object_object_foreach(st, key, val) {
		(void)val;
		if (strcmp(key, "id") && strcmp(key, "op") && strcmp(key, "args") &&
		    strcmp(key, "on_error") && strcmp(key, "compensate") &&
		    strcmp(key, "description")) {
			pfmt(sub, sizeof(sub), "%s.%s", path, key);
			return bad(sub, "unknown field (id, op, args, on_error, compensate, "
				   "description)");
		}
	}
	pfmt(sub, sizeof(sub), "%s.id", path);
	if (!json_object_object_get_ex(st, "id", &v) || !json_object_is_type(v, json_type_string) ||
	    !valid_id(json_object_get_string(v)))
		return bad(sub, "a step needs an id of 1-64 [A-Za-z0-9_-]");
	if (step_find(wf, i, json_object_get_string(v), strlen(json_object_get_string(v))) >= 0)
		return bad(sub, "id '%s' is used by an earlier step", json_object_get_string(v));
	if (!(s->id = vsm__strdup(json_object_get_string(v))))
		return -VSM_ENOMEM;
	pfmt(sub, sizeof(sub), "%s.op", path);
	if (!json_object_object_get_ex(st, "op", &v) || !json_object_is_type(v, json_type_string))
		return bad(sub, "a step needs an op");
	if (!(s->op_name = vsm__strdup(json_object_get_string(v))))
		return -VSM_ENOMEM;
	if (!(s->op = flow_op_find(wf->ctx, s->op_name)))
		return bad(sub, "unknown op '%s'", s->op_name);
	pfmt(sub, sizeof(sub), "%s.on_error", path);
	if (json_object_object_get_ex(st, "on_error", &v)) {
		const char *e = json_object_is_type(v, json_type_string) ? json_object_get_string(v)
									 : "";

		if (strcmp(e, "abort") && strcmp(e, "continue"))
			return bad(sub, "is \"abort\" or \"continue\"");
		s->keep_going = !strcmp(e, "continue");
	}
	if (!json_object_object_get_ex(st, "args", &s->args)) {
		/* No args: an empty object, owned by the step's document. */
		json_object_object_add(st, "args", json_object_new_object());
		json_object_object_get_ex(st, "args", &s->args);
	}
	pfmt(sub, sizeof(sub), "%s.args", path);
	if ((rc = check_args(wf, s->op, s->args, i, sub)) < 0)
		return rc;
	if (json_object_object_get_ex(st, "compensate", &c)) {
		pfmt(sub, sizeof(sub), "%s.compensate", path);
		if (!json_object_is_type(c, json_type_object))
			return bad(sub, "not an object");
		json_object_object_foreach(c, ck, cv) {
			(void)cv;
			if (strcmp(ck, "op") && strcmp(ck, "args")) {
				pfmt(sub, sizeof(sub), "%s.compensate.%s", path, ck);
				return bad(sub, "unknown field (op, args)");
			}
		}
		pfmt(sub, sizeof(sub), "%s.compensate.op", path);
		if (!json_object_object_get_ex(c, "op", &v) ||
		    !json_object_is_type(v, json_type_string))
			return bad(sub, "a compensate step needs an op");
		if (!(s->comp_name = vsm__strdup(json_object_get_string(v))))
			return -VSM_ENOMEM;
		if (!(s->comp = flow_op_find(wf->ctx, s->comp_name)))
			return bad(sub, "unknown op '%s'", s->comp_name);
		if (!json_object_object_get_ex(c, "args", &s->comp_args)) {
			json_object_object_add(c, "args", json_object_new_object());
			json_object_object_get_ex(c, "args", &s->comp_args);
		}
		pfmt(sub, sizeof(sub), "%s.compensate.args", path);
		/* It runs after its step: it may name the step's own results. */
		if ((rc = check_args(wf, s->comp, s->comp_args, i + 1, sub)) < 0)
			return rc;
	}
	return 0;
}

static int parse_doc(vsm_workflow *wf, json_object *doc)
{
	json_object *v = NULL, *steps = NULL;
	size_t i, n;
	long last_final = -1;
	char path[PATH_MAX_LEN];
	int rc;

	if (!json_object_is_type(doc, json_type_object))
		return bad("(top)", "a template is a JSON object");
	json_object_object_foreach(doc, key, val) {
		(void)val;
		if (strcmp(key, "name") && strcmp(key, "description") && strcmp(key, "params") &&
		    strcmp(key, "steps"))
			return bad(key, "unknown field (name, description, params, steps)");
	}
	if (!json_object_object_get_ex(doc, "name", &v) || !json_object_is_type(v, json_type_string) ||
	    vsm__name_check("template", json_object_get_string(v)) < 0)
		return bad("name", "a template needs a name of 1-64 [A-Za-z0-9._-]");
	vsm__error_reset();
	if (!(wf->name = vsm__strdup(json_object_get_string(v))))
		return -VSM_ENOMEM;
	if (json_object_object_get_ex(doc, "params", &v) && (rc = parse_params(wf, v)) < 0)
		return rc;
	if (!json_object_object_get_ex(doc, "steps", &steps) ||
	    !json_object_is_type(steps, json_type_array) || !(n = json_object_array_length(steps)))
		return bad("steps", "a template needs a non-empty array of steps");
	if (n > 1000)
		return bad("steps", "more than 1000 steps");
	if (!(wf->steps = vsm__calloc(n, sizeof(*wf->steps))))
		return -VSM_ENOMEM;
	for (i = 0; i < n; i++) {
		wf->n_steps = i + 1;
		if ((rc = parse_step(wf, i, json_object_array_get_idx(steps, i))) < 0)
			return rc;
		/* After a step that cannot be undone, a failure cannot roll the
		 * run back: the steps after it may only be allowed to fail. */
		if (last_final >= 0 && !wf->steps[i].keep_going) {
			pfmt(path, sizeof(path), "steps[%zu].on_error", i);
			return bad(path, "step '%s' (%s) cannot be undone, so the steps after it "
				   "need \"on_error\": \"continue\" (or give it a \"compensate\")",
				   wf->steps[last_final].id, wf->steps[last_final].op_name);
		}
		if (!flow_step_undoable(&wf->steps[i]))
			last_final = (long)i;
	}
	return 0;
}

VSM_API void vsm_workflow_free(vsm_workflow *wf)
{
	size_t i;

	if (!wf)
		return;
	for (i = 0; i < wf->n_params; i++) {
		free(wf->params[i].name);
		json_object_put(wf->params[i].dflt);
		free(wf->params[i].dflt_text);
	}
	free(wf->params);
	for (i = 0; i < wf->n_steps; i++) {
		free(wf->steps[i].id);
		free(wf->steps[i].op_name);
		free(wf->steps[i].comp_name);
	}
	free(wf->steps);
	free(wf->name);
	free(wf->text);
	json_object_put(wf->doc);
	free(wf);
}

VSM_API int vsm_workflow_parse(vsm_workflow **out, vsm_ctx *ctx, const char *json,
			       const char *origin)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	vsm_workflow *wf;
	int rc;

	vsm__error_reset();
	if (!out || !ctx || !json)
		return vsm_err(VSM_EINVAL, "vsm_workflow_parse: out, ctx and json are required");
	*out = NULL;
	if (!(wf = vsm__calloc(1, sizeof(*wf))))
		return -VSM_ENOMEM;
	wf->ctx = ctx;
	if (!(tok = json_tokener_new())) {
		free(wf);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	wf->doc = json_tokener_parse_ex(tok, json, (int)strlen(json));
	jerr = json_tokener_get_error(tok);
	if (!wf->doc || jerr != json_tokener_success ||
	    json_tokener_get_parse_end(tok) < strlen(json)) {
		size_t at = json_tokener_get_parse_end(tok), k;

		/* Trailing blanks are fine; anything else after the value is not. */
		for (k = at; wf->doc && json[k] && isspace((unsigned char)json[k]); k++)
			;
		if (!wf->doc || jerr != json_tokener_success || json[k]) {
			rc = vsm_err(VSM_EINVAL, "%s: not JSON (at byte %zu: %s)",
				     origin ? origin : "template", at,
				     wf->doc && jerr == json_tokener_success ?
				     "text after the end" : json_tokener_error_desc(jerr));
			json_tokener_free(tok);
			vsm_workflow_free(wf);
			return rc;
		}
	}
	json_tokener_free(tok);
	vsm__ctx_lock(ctx);
	rc = parse_doc(wf, wf->doc);
	vsm__ctx_unlock(ctx);
	if (rc == 0 && !(wf->text = vsm__strdup(json_object_to_json_string_ext(
				 wf->doc, JSON_C_TO_STRING_PLAIN))))
		rc = -VSM_ENOMEM;
	if (rc < 0) {
		if (origin)
			vsm__error_prefix("%s", origin);
		vsm_workflow_free(wf);
		return rc;
	}
	*out = wf;
	return 0;
}

VSM_API int vsm_workflow_load(vsm_workflow **out, vsm_ctx *ctx, const char *path)
{
	FILE *f;
	char *text = NULL;
	size_t len = 0, cap = 0, got;
	int rc;

	vsm__error_reset();
	if (!out || !path)
		return vsm_err(VSM_EINVAL, "vsm_workflow_load: out and path are required");
	if (!(f = fopen(path, "r")))
		return vsm_err(errno == ENOENT ? VSM_ENOTFOUND : VSM_EIO, "template '%s': %s",
			       path, strerror(errno));
	do {
		if (len + 4096 + 1 > cap) {
			char *grown;

			cap = cap ? cap * 2 : 8192;
			if (cap > (16u << 20) || !(grown = realloc(text, cap))) {
				free(text);
				fclose(f);
				return vsm_err(cap > (16u << 20) ? VSM_EINVAL : VSM_ENOMEM,
					       "template '%s': larger than 16 MiB or out of memory",
					       path);
			}
			text = grown;
		}
		got = fread(text + len, 1, 4096, f);
		len += got;
	} while (got > 0);
	if (ferror(f)) {
		free(text);
		fclose(f);
		return vsm_err(VSM_EIO, "template '%s': cannot read it", path);
	}
	fclose(f);
	text[len] = '\0';
	if (strlen(text) != len) {
		free(text);
		return vsm_err(VSM_EINVAL, "template '%s': holds a NUL byte", path);
	}
	rc = vsm_workflow_parse(out, ctx, text, path);
	free(text);
	return rc;
}

VSM_API const char *vsm_workflow_name(const vsm_workflow *wf)
{
	return wf ? wf->name : NULL;
}

VSM_API size_t vsm_workflow_param_count(const vsm_workflow *wf)
{
	return wf ? wf->n_params : 0;
}

VSM_API const char *vsm_workflow_param_name(const vsm_workflow *wf, size_t i)
{
	return wf && i < wf->n_params ? wf->params[i].name : NULL;
}

VSM_API const char *vsm_workflow_param_type(const vsm_workflow *wf, size_t i)
{
	return wf && i < wf->n_params ? type_names[wf->params[i].type] : NULL;
}

VSM_API const char *vsm_workflow_param_default(const vsm_workflow *wf, size_t i)
{
	return wf && i < wf->n_params ? wf->params[i].dflt_text : NULL;
}

VSM_API size_t vsm_workflow_step_count(const vsm_workflow *wf)
{
	return wf ? wf->n_steps : 0;
}

VSM_API const char *vsm_workflow_step_id(const vsm_workflow *wf, size_t i)
{
	return wf && i < wf->n_steps ? wf->steps[i].id : NULL;
}

VSM_API const char *vsm_workflow_step_op(const vsm_workflow *wf, size_t i)
{
	return wf && i < wf->n_steps ? wf->steps[i].op_name : NULL;
}

/* --- run time: parameters and references --- */

/* Text @s read as a value of type @t. */
static json_object *typed(const char *s, flow_type t)
{
	json_object *str, *v = NULL;
	uint64_t n;
	char *end;
	long long i;

	switch (t) {
	case FLOW_T_INTEGER:
		errno = 0;
		i = strtoll(s, &end, 10);
		return *s && !*end && !errno ? json_object_new_int64(i) : NULL;
	case FLOW_T_SIZE:
		if (!(str = json_object_new_string(s)))
			return NULL;
		if (flow_parse_size(str, &n) == 0 && n <= INT64_MAX)
			v = json_object_new_int64((int64_t)n);
		json_object_put(str);
		return v;
	case FLOW_T_BOOLEAN:
		if (!strcmp(s, "true") || !strcmp(s, "false"))
			return json_object_new_boolean(!strcmp(s, "true"));
		return NULL;
	default:
		return json_object_new_string(s);
	}
}

int flow_params_resolve(const vsm_workflow *wf, const char *const *kv, size_t n,
			json_object **out)
{
	json_object *o = json_object_new_object();
	size_t i, j;
	uint64_t sz;

	if (!o)
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		const char *eq = kv[i] ? strchr(kv[i], '=') : NULL;
		const flow_param *p;
		json_object *v;

		if (!eq || eq == kv[i]) {
			json_object_put(o);
			return vsm_err(VSM_EINVAL, "parameter '%s' is not KEY=VALUE",
				       kv[i] ? kv[i] : "(null)");
		}
		if (!(p = param_find(wf, kv[i], (size_t)(eq - kv[i])))) {
			json_object_put(o);
			return vsm_err(VSM_EINVAL, "template '%s' declares no parameter '%.*s'",
				       wf->name, (int)(eq - kv[i]), kv[i]);
		}
		if (!(v = typed(eq + 1, p->type))) {
			json_object_put(o);
			return vsm_err(VSM_EINVAL, "parameter '%s': '%s' is not a %s", p->name,
				       eq + 1, type_names[p->type]);
		}
		json_object_object_add(o, p->name, v);
	}
	for (j = 0; j < wf->n_params; j++) {
		const flow_param *p = &wf->params[j];
		json_object *v = NULL;

		if (json_object_object_get_ex(o, p->name, &v))
			continue;
		if (!p->dflt) {
			json_object_put(o);
			return vsm_err(VSM_EINVAL, "template '%s' needs parameter '%s' (a %s)",
				       wf->name, p->name, type_names[p->type]);
		}
		if (p->type == FLOW_T_SIZE && flow_parse_size(p->dflt, &sz) == 0 && sz <= INT64_MAX)
			v = json_object_new_int64((int64_t)sz);
		else
			v = json_object_get(p->dflt);
		json_object_object_add(o, p->name, v);
	}
	*out = o;
	return 0;
}

/* The value reference @r stands for (a new reference), or NULL with the
 * error set. */
static json_object *ref_value(const vsm_workflow *wf, const flow_ref *r, json_object *params,
			      json_object *const *results, const char *path)
{
	json_object *v = NULL;
	char name[128];
	long k;

	snprintf(name, sizeof(name), "%.*s", (int)r->name_len, r->name);
	if (r->is_param) {
		if (!json_object_object_get_ex(params, name, &v)) {
			bad(path, "parameter '%s' has no value", name);
			return NULL;
		}
		return json_object_get(v);
	}
	k = step_find(wf, wf->n_steps, r->name, r->name_len);
	if (k < 0 || !results || !results[k]) {
		bad(path, "step '%s' has no results (it did not run or failed)", name);
		return NULL;
	}
	{
		char field[128];

		snprintf(field, sizeof(field), "%.*s", (int)r->field_len, r->field);
		if (!json_object_object_get_ex(results[k], field, &v) || !v) {
			bad(path, "step '%s' gave no result '%s'", name, field);
			return NULL;
		}
	}
	return json_object_get(v);
}

static json_object *resolve_string(const vsm_workflow *wf, const char *s, json_object *params,
				   json_object *const *results, const char *path)
{
	flow_ref r;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	const char *p = s, *q;
	json_object *out;

	if (!strstr(s, "${"))
		return json_object_new_string(s);
	if (single_ref(s, &r))
		return ref_value(wf, &r, params, results, path);
	if (!(f = open_memstream(&buf, &len))) {
		vsm_err(VSM_ENOMEM, "out of memory");
		return NULL;
	}
	while ((q = strstr(p, "${"))) {
		size_t n = ref_scan(q, &r);
		json_object *v;

		fwrite(p, 1, (size_t)(q - p), f);
		if (!n || !(v = ref_value(wf, &r, params, results, path))) {
			if (!n)
				bad(path, "reference has no closing '}'");
			fclose(f);
			free(buf);
			return NULL;
		}
		fputs(json_object_is_type(v, json_type_string) ? json_object_get_string(v)
			  : json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), f);
		json_object_put(v);
		p = q + n;
	}
	fputs(p, f);
	fclose(f);
	out = json_object_new_string(buf ? buf : "");
	free(buf);
	return out;
}

static json_object *resolve_deep(const vsm_workflow *wf, json_object *v, json_object *params,
				 json_object *const *results, const char *path)
{
	char sub[PATH_MAX_LEN];
	json_object *out, *e;
	size_t i;

	switch (json_object_get_type(v)) {
	case json_type_string:
		return resolve_string(wf, json_object_get_string(v), params, results, path);
	case json_type_array:
		if (!(out = json_object_new_array()))
			return NULL;
		for (i = 0; i < json_object_array_length(v); i++) {
			pfmt(sub, sizeof(sub), "%s[%zu]", path, i);
			if (!(e = resolve_deep(wf, json_object_array_get_idx(v, i), params, results,
					       sub))) {
				json_object_put(out);
				return NULL;
			}
			json_object_array_add(out, e);
		}
		return out;
	case json_type_object: {
		if (!(out = json_object_new_object()))
			return NULL;
		json_object_object_foreach(v, key, val) {
			pfmt(sub, sizeof(sub), "%s.%s", path, key);
			if (!(e = resolve_deep(wf, val, params, results, sub))) {
				json_object_put(out);
				return NULL;
			}
			json_object_object_add(out, key, e);
		}
		return out;
	}
	default:
		return json_object_get(v);
	}
}

/* @v resolved, as type @t: text from a reference becomes a number or a
 * boolean where the schema wants one. */
static int coerce(json_object **v, flow_type t, const char *path)
{
	json_object *n;
	uint64_t sz;

	if (t == FLOW_T_SIZE) {
		if (flow_parse_size(*v, &sz) < 0 || sz > INT64_MAX)
			return bad(path, "'%s' is not a size", json_object_get_string(*v));
		n = json_object_new_int64((int64_t)sz);
	} else if ((t == FLOW_T_INTEGER || t == FLOW_T_BOOLEAN) &&
		   json_object_is_type(*v, json_type_string)) {
		if (!(n = typed(json_object_get_string(*v), t)))
			return bad(path, "'%s' is not a %s", json_object_get_string(*v),
				   type_names[t]);
	} else if (t == FLOW_T_STRING && !json_object_is_type(*v, json_type_string) &&
		   !json_object_is_type(*v, json_type_object) &&
		   !json_object_is_type(*v, json_type_array)) {
		n = json_object_new_string(json_object_to_json_string_ext(*v,
									  JSON_C_TO_STRING_PLAIN));
	} else {
		return literal_ok(*v, t) ? 0 : bad(path, "not a %s", type_names[t]);
	}
	if (!n)
		return vsm_err(VSM_ENOMEM, "out of memory");
	json_object_put(*v);
	*v = n;
	return 0;
}

int flow_args_resolve(const vsm_workflow *wf, const flow_op *op, json_object *v,
		      json_object *params, json_object *const *results, const char *where,
		      json_object **out)
{
	json_object *o = resolve_deep(wf, v, params, results, where);
	char sub[PATH_MAX_LEN];
	size_t i;
	int rc;

	if (!o)
		return vsm__error_code() ? -vsm__error_code() : vsm_err(VSM_ENOMEM, "out of memory");
	for (i = 0; i < op->n_args; i++) {
		json_object *a = NULL;

		if (!json_object_object_get_ex(o, op->args[i].name, &a))
			continue;
		pfmt(sub, sizeof(sub), "%s.%s", where, op->args[i].name);
		if (op->args[i].type == FLOW_T_DEVICES) {
			if (!json_object_is_type(a, json_type_array)) {
				json_object_put(o);
				return bad(sub, "not an array of devices");
			}
			continue;
		}
		{
			json_object *orig = a;

			json_object_get(a);
			if ((rc = coerce(&a, op->args[i].type, sub)) < 0) {
				json_object_put(a);
				json_object_put(o);
				return rc;
			}
			if (a == orig)
				json_object_put(a);
			else
				json_object_object_add(o, op->args[i].name, a);
		}
	}
	*out = o;
	return 0;
}
