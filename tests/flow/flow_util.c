/*
 * Helpers of the "flow" suite (flow_util.h).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "flow_util.h"

int flow_count_runs, flow_count_undos, flow_count_undo_null;
char flow_last_undo_result[256];
char *flow_snap;
const fx *flow_snap_fx;

void fx_init(fx *f)
{
	char *uri;

	memset(f, 0, sizeof(*f));
	f->state = tu_dir("state");
	f->dsdir = tu_dir("ds");
	f->bkdir = tu_dir("bk");
	f->ctx = tu_ctx(f->state);
	uri = tu_uri(f->dsdir);
	ck_vsm(vsm_datastore_add(f->ctx, "ds", uri, VSM_DATASTORE_ADD_CREATE));
	free(uri);
	ck_vsm(vsm_host_add(f->ctx, "h", NULL));
	ck_vsm(vsm_host_link(f->ctx, "h", "ds", 0));
	ck_vsm(vsm_host_add(f->ctx, "h2", NULL));
	ck_vsm(vsm_host_link(f->ctx, "h2", "ds", 0));
	flow_ops_register(f->ctx);
}

vsm_ctx *fx_join(const fx *f, const char *state, const char *host)
{
	vsm_ctx *ctx = tu_ctx(state);
	char *uri = tu_uri(f->dsdir);

	ck_vsm(vsm_datastore_add(ctx, "ds", uri, 0));
	free(uri);
	ck_vsm(vsm_host_add(ctx, host, NULL));
	ck_vsm(vsm_host_link(ctx, host, "ds", 0));
	flow_ops_register(ctx);
	return ctx;
}

void fx_free(fx *f)
{
	vsm_ctx_free(f->ctx);
	free(f->state);
	free(f->dsdir);
	free(f->bkdir);
	memset(f, 0, sizeof(*f));
}

/* --- ops the tests register --- */

static int fail_run(vsm_ctx *ctx, const char *args, char **result, void *opaque)
{
	(void)ctx;
	(void)args;
	(void)result;
	(void)opaque;
	return vsm_error_set(VSM_EIO, "test.fail: failing on purpose");
}

static int count_run(vsm_ctx *ctx, const char *args, char **result, void *opaque)
{
	(void)ctx;
	(void)args;
	(void)opaque;
	flow_count_runs++;
	if (asprintf(result, "{\"token\": \"tok-%d\"}", flow_count_runs) < 0)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	return 0;
}

static int count_undo(vsm_ctx *ctx, const char *args, const char *result, void *opaque)
{
	(void)ctx;
	(void)args;
	(void)opaque;
	flow_count_undos++;
	if (!result)
		flow_count_undo_null++;
	snprintf(flow_last_undo_result, sizeof(flow_last_undo_result), "%s",
		 result ? result : "(null)");
	return 0;
}

static int snap_run(vsm_ctx *ctx, const char *args, char **result, void *opaque)
{
	(void)args;
	(void)result;
	(void)opaque;
	free(flow_snap);
	flow_snap = flow_snap_fx ? flow_world(ctx, flow_snap_fx) : NULL;
	return vsm_error_set(VSM_EIO, "test.snap: failing on purpose");
}

void flow_ops_register(vsm_ctx *ctx)
{
	vsm_workflow_op fail = { VSM_WORKFLOW_OP_VERSION, "test.fail",
				 "{\"args\": {\"tag\": {\"type\": \"any\"}}, \"results\": []}",
				 fail_run, NULL, NULL };
	vsm_workflow_op count = { VSM_WORKFLOW_OP_VERSION, "test.count",
				  "{\"args\": {\"tag\": {\"type\": \"string\"}}, "
				  "\"results\": [\"token\"]}", count_run, count_undo, NULL };
	vsm_workflow_op final = count;
	vsm_workflow_op snap = fail;

	final.name = "test.final";
	final.undo = NULL;
	snap.name = "test.snap";
	snap.run = snap_run;
	/* test.fail has no undo either, but it never succeeds; give it one
	 * so that validation does not take it for a point of no return. */
	fail.undo = count_undo;
	snap.undo = count_undo;
	ck_vsm(vsm_workflow_op_register(ctx, &fail));
	ck_vsm(vsm_workflow_op_register(ctx, &count));
	ck_vsm(vsm_workflow_op_register(ctx, &final));
	ck_vsm(vsm_workflow_op_register(ctx, &snap));
}

/* --- runs --- */

int flow_run_opts(vsm_ctx *ctx, const char *json, vsm_workflow_run_opts *o, char *id)
{
	vsm_workflow *wf = NULL;
	int rc;

	ck_vsm(vsm_workflow_parse(&wf, ctx, json, NULL));
	id[0] = '\0';
	rc = vsm_workflow_run(wf, o, id);
	vsm_workflow_free(wf);
	return rc;
}

int flow_run(vsm_ctx *ctx, const char *json, const char *const *params, char *id)
{
	vsm_workflow_run_opts o = VSM_WORKFLOW_RUN_OPTS_INIT;
	size_t n = 0;

	while (params && params[n])
		n++;
	o.params = params;
	o.n_params = n;
	return flow_run_opts(ctx, json, &o, id);
}

void ck_run_states(vsm_ctx *ctx, const char *id, const char *state, const char *steps)
{
	vsm_run *r = NULL;
	char *copy = strdup(steps), *save = NULL, *tok;
	size_t i = 0;

	ck_vsm(vsm_run_lookup(&r, ctx, id));
	ck_assert_msg(!strcmp(vsm_run_state(r), state), "run %s is '%s', expected '%s' (error: %s)",
		      id, vsm_run_state(r), state, vsm_run_error(r) ? vsm_run_error(r) : "-");
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save), i++) {
		ck_assert_msg(i < vsm_run_step_count(r), "run %s has %zu steps", id,
			      vsm_run_step_count(r));
		ck_assert_msg(!strcmp(vsm_run_step_state(r, i), tok),
			      "run %s step %zu (%s) is '%s', expected '%s' (error: %s)", id, i,
			      vsm_run_step_id(r, i), vsm_run_step_state(r, i), tok,
			      vsm_run_step_error(r, i) ? vsm_run_step_error(r, i) : "-");
	}
	ck_assert_uint_eq(i, vsm_run_step_count(r));
	free(copy);
	vsm_run_free(r);
}

char *run_step_field(vsm_ctx *ctx, const char *id, size_t i, const char *what,
		     const char *field)
{
	vsm_run *r = NULL;
	const char *text;
	json_object *o, *v = NULL;
	char *out = NULL;

	ck_vsm(vsm_run_lookup(&r, ctx, id));
	text = !strcmp(what, "args") ? vsm_run_step_args(r, i) : vsm_run_step_result(r, i);
	if (text && (o = json_tokener_parse(text))) {
		if (json_object_object_get_ex(o, field, &v) && v)
			out = strdup(json_object_is_type(v, json_type_string) ?
				     json_object_get_string(v) : json_object_to_json_string(v));
		json_object_put(o);
	}
	vsm_run_free(r);
	return out;
}

size_t flow_run_count(vsm_ctx *ctx)
{
	vsm_run **l = NULL;
	size_t n = 0;

	ck_vsm(vsm_run_list(&l, &n, ctx));
	vsm_run_list_free(l, n);
	return n;
}

size_t flow_run_count_at(const char *state)
{
	vsm_ctx *ctx = tu_ctx(state);
	size_t n = flow_run_count(ctx);

	vsm_ctx_free(ctx);
	return n;
}

/* --- the world --- */

static int by_name(const void *a, const void *b)
{
	return strcmp(vsm_container_name(*(vsm_container *const *)a),
		      vsm_container_name(*(vsm_container *const *)b));
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every path under @dir (relative to @top), sorted, skipping ".vsm". */
static void list_files(FILE *out, const char *top, const char *rel)
{
	char *path = NULL, **names = NULL;
	size_t n = 0, i;
	struct dirent *e;
	DIR *d;

	ck_assert(asprintf(&path, "%s%s%s", top, *rel ? "/" : "", rel) > 0);
	if (!(d = opendir(path))) {
		free(path);
		return;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    (!*rel && !strcmp(e->d_name, ".vsm")))
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		ck_assert(asprintf(&names[n], "%s%s%s", rel, *rel ? "/" : "", e->d_name) > 0);
		n++;
		if (e->d_type == DT_DIR) {
			list_files(out, top, names[n - 1]);
		}
	}
	closedir(d);
	if (n) /* qsort wants a non-NULL array even for none */
		qsort(names, n, sizeof(*names), by_str);
	for (i = 0; i < n; i++) {
		fprintf(out, "  file %s\n", names[i]);
		free(names[i]);
	}
	free(names);
	free(path);
}

char *flow_world(vsm_ctx *ctx, const fx *f)
{
	vsm_container **cs = NULL;
	vsm_group **gs = NULL;
	vsm_lease **ls = NULL;
	size_t n = 0, ng = 0, nl = 0, i, j;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(out);
	ck_vsm(vsm_container_list(&cs, &n, ctx, "ds"));
	if (n)
		qsort(cs, n, sizeof(*cs), by_name);
	for (i = 0; i < n; i++) {
		vsm_checkpoint **cps = NULL;
		size_t ncp = 0;

		fprintf(out, "container %s %s host=%s\n", vsm_container_name(cs[i]),
			vsm_container_uuid(cs[i]), vsm_container_attached_host(cs[i]) ?
			vsm_container_attached_host(cs[i]) : "-");
		for (j = 0; j < vsm_container_device_count(cs[i]); j++) {
			const vsm_device *d = vsm_container_device(cs[i], j);

			fprintf(out, "  device %s %llu %s\n", vsm_device_name(d),
				(unsigned long long)vsm_device_size(d),
				vsm_device_locator(d) ? "deployed" : "-");
		}
		ck_vsm(vsm_checkpoint_list(&cps, &ncp, cs[i]));
		for (j = 0; j < ncp; j++)
			fprintf(out, "  checkpoint %s\n", vsm_checkpoint_name(cps[j]));
		vsm_checkpoint_list_free(cps, ncp);
	}
	vsm_container_list_free(cs, n);
	ck_vsm(vsm_group_list(&gs, &ng, ctx));
	for (i = 0; i < ng; i++) {
		fprintf(out, "group %s members=%zu\n", vsm_group_name(gs[i]),
			vsm_group_member_count(gs[i]));
		for (j = 0; j < vsm_group_checkpoint_count(gs[i]); j++)
			fprintf(out, "  checkpoint %s\n", vsm_group_checkpoint_name(gs[i], j));
	}
	vsm_group_list_free(gs, ng);
	ck_vsm(vsm_lease_status(&ls, &nl, ctx, "ds", 0));
	for (i = 0; i < nl; i++)
		if (vsm_lease_host(ls[i]))
			fprintf(out, "lease %s %s\n", vsm_lease_container(ls[i]),
				vsm_lease_host(ls[i]));
	vsm_lease_list_free(ls, nl);
	fprintf(out, "datastore files:\n");
	list_files(out, f->dsdir, "");
	fprintf(out, "backup files:\n");
	list_files(out, f->bkdir, "");
	fclose(out);
	return buf;
}

int flow_leases_held(vsm_ctx *ctx)
{
	vsm_lease **ls = NULL;
	size_t nl = 0, i;
	int held = 0;

	ck_vsm(vsm_lease_status(&ls, &nl, ctx, "ds", 0));
	for (i = 0; i < nl; i++)
		held += vsm_lease_host(ls[i]) != NULL;
	vsm_lease_list_free(ls, nl);
	return held;
}
