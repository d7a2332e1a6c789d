/*
 * `vsmctl workflow validate|run|list|show|cancel`: workflow templates
 * (doc/workflows.md) through the public <vsm/workflow.h> API only.
 * Errors print "vsmctl: <library message>" and exit 1; usage errors exit
 * 2. `run` exits 0 only when the run is done; Ctrl-C during it cancels
 * the run (it is rolled back) and exits 1.
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vsm/vsm.h>
#include <vsm/workflow.h>

#include "vsmctl-util.h"
#include "vsmctl-workflow.h"

static const char usage_text[] =
	"usage: vsmctl workflow validate FILE [--json]\n"
	"       vsmctl workflow run FILE [--param KEY=VALUE ...] [--json]\n"
	"       vsmctl workflow list [--json] | workflow show RUN-ID [--json]\n"
	"       vsmctl workflow cancel RUN-ID\n"
	"run: prints the run ID, each step as it runs, and the outcome; exits 0 only\n"
	"  when the run is done (Ctrl-C cancels it: it is rolled back).\n";

static int usage(const char *why, const char *arg)
{
	fprintf(stderr, "vsmctl: workflow: ");
	fprintf(stderr, why, arg);
	fprintf(stderr, "\n%s", usage_text);
	return 2;
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : json_object_new_null();
}

/* JSON text from the library as a value; text that does not parse stays
 * a string rather than being lost. */
static json_object *jparsed(const char *s)
{
	json_object *o;

	if (!s)
		return json_object_new_null();
	if (!(o = json_tokener_parse(s)) && strcmp(s, "null"))
		return json_object_new_string(s);
	return o;
}

/* One JSON object on one line, flushed: a consumer reads it at once. */
static void print_line(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
}

static void iso_time(char *buf, size_t size, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "-");
}

static json_object *jtime(int64_t t)
{
	char buf[40];

	if (t <= 0)
		return json_object_new_null();
	iso_time(buf, sizeof(buf), t);
	return json_object_new_string(buf);
}

/* --- validate --- */

static int cmd_validate(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_workflow *wf = NULL;
	const char *file = NULL;
	size_t i, n;
	int a;

	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--json"))
			json = 1;
		else if (argv[a][0] == '-' && argv[a][1] == '-')
			return usage("unknown option '%s'", argv[a]);
		else if (!file)
			file = argv[a];
		else
			return usage("unexpected argument '%s'", argv[a]);
	}
	if (!file)
		return usage("validate needs FILE%s", "");
	if (vsm_workflow_load(&wf, ctx, file) < 0)
		return vsmctl_fail();
	if (json) {
		json_object *o = json_object_new_object(), *ps = json_object_new_array(),
			    *ss = json_object_new_array();

		json_object_object_add(o, "name", jstr(vsm_workflow_name(wf)));
		for (i = 0, n = vsm_workflow_param_count(wf); i < n; i++) {
			json_object *p = json_object_new_object();
			const char *def = vsm_workflow_param_default(wf, i);

			json_object_object_add(p, "name", jstr(vsm_workflow_param_name(wf, i)));
			json_object_object_add(p, "type", jstr(vsm_workflow_param_type(wf, i)));
			json_object_object_add(p, "required", json_object_new_boolean(!def));
			json_object_object_add(p, "default", jparsed(def));
			json_object_array_add(ps, p);
		}
		for (i = 0, n = vsm_workflow_step_count(wf); i < n; i++) {
			json_object *s = json_object_new_object();

			json_object_object_add(s, "id", jstr(vsm_workflow_step_id(wf, i)));
			json_object_object_add(s, "op", jstr(vsm_workflow_step_op(wf, i)));
			json_object_array_add(ss, s);
		}
		json_object_object_add(o, "params", ps);
		json_object_object_add(o, "steps", ss);
		vsmctl_print_json(o);
	} else {
		printf("template '%s' is valid\n", vsm_workflow_name(wf));
		n = vsm_workflow_param_count(wf);
		printf("params:%s\n", n ? "" : " none");
		for (i = 0; i < n; i++) {
			const char *def = vsm_workflow_param_default(wf, i);

			printf("  %-20s %-8s %s%s\n", vsm_workflow_param_name(wf, i),
			       vsm_workflow_param_type(wf, i), def ? "default " : "(required)",
			       def ? def : "");
		}
		n = vsm_workflow_step_count(wf);
		printf("steps:\n");
		for (i = 0; i < n; i++)
			printf("  %3zu %-20s %s\n", i + 1, vsm_workflow_step_id(wf, i),
			       vsm_workflow_step_op(wf, i));
	}
	vsm_workflow_free(wf);
	return 0;
}

/* --- run --- */

/* Set by SIGINT; the progress callback cancels the run when it sees it. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

typedef struct {
	vsm_workflow *wf;
	int json;
	bool announced;  /* the run ID is printed */
	bool cancelling; /* said so on stderr */
	char run_id[VSM_WORKFLOW_RUN_ID_LEN + 1];
} run_state;

static int run_progress(const char *run_id, size_t step, size_t n_steps, const char *step_id,
			const char *event, void *opaque)
{
	run_state *st = opaque;
	const char *op = step < vsm_workflow_step_count(st->wf) ?
			 vsm_workflow_step_op(st->wf, step) : "?";

	if (!st->announced) {
		/* The first call: the run exists in the catalog from now on. */
		snprintf(st->run_id, sizeof(st->run_id), "%s", run_id);
		st->announced = true;
		if (!st->json) {
			printf("run %s: template '%s', %zu step%s\n", run_id,
			       vsm_workflow_name(st->wf), n_steps, n_steps == 1 ? "" : "s");
			fflush(stdout);
		}
	}
	if (st->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "run", jstr(run_id));
		json_object_object_add(o, "event", jstr(event));
		json_object_object_add(o, "index", json_object_new_uint64(step));
		json_object_object_add(o, "steps", json_object_new_uint64(n_steps));
		json_object_object_add(o, "step", jstr(step_id));
		json_object_object_add(o, "op", jstr(op));
		print_line(o);
	} else {
		printf("[%zu/%zu] %-6s %s (%s)\n", step + 1, n_steps, event, step_id, op);
		fflush(stdout);
	}
	/* Looked at after the line is out: a signal that arrived while it
	 * was written is seen here, not a step later. */
	if (interrupted) {
		if (!st->cancelling) {
			fprintf(stderr, "vsmctl: interrupted: cancelling run %s\n", run_id);
			st->cancelling = true;
		}
		return 1;
	}
	return 0;
}

static int cmd_run(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_workflow_run_opts opts = VSM_WORKFLOW_RUN_OPTS_INIT;
	struct sigaction sa, old_sa;
	run_state st;
	vsm_workflow *wf = NULL;
	vsm_run *run = NULL;
	const char *file = NULL, **params;
	char msg[2048] = "";
	size_t n_params = 0;
	int a, rc, status = 1;

	if (!(params = calloc((size_t)argc, sizeof(*params))))
		return usage("out of memory%s", "");
	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--json")) {
			json = 1;
		} else if (!strcmp(argv[a], "--param") && a + 1 < argc) {
			if (!strchr(argv[a + 1], '=') || argv[a + 1][0] == '=') {
				free(params);
				return usage("bad --param '%s' (want KEY=VALUE)", argv[a + 1]);
			}
			params[n_params++] = argv[++a];
		} else if (argv[a][0] == '-' && argv[a][1] == '-') {
			free(params);
			return usage("unknown option '%s'", argv[a]);
		} else if (!file) {
			file = argv[a];
		} else {
			free(params);
			return usage("unexpected argument '%s'", argv[a]);
		}
	}
	if (!file) {
		free(params);
		return usage("run needs FILE%s", "");
	}
	if (vsm_workflow_load(&wf, ctx, file) < 0) {
		free(params);
		return vsmctl_fail();
	}
	memset(&st, 0, sizeof(st));
	st.wf = wf;
	st.json = json;
	opts.params = params;
	opts.n_params = n_params;
	opts.progress = run_progress;
	opts.opaque = &st;

	/* SA_RESTART: a signal while a progress line is written must not
	 * cut the line. Installed even when the shell started us with
	 * SIGINT ignored (a background job): cancelling is the point. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	interrupted = 0;
	sigaction(SIGINT, &sa, &old_sa);
	rc = vsm_workflow_run(wf, &opts, st.run_id);
	sigaction(SIGINT, &old_sa, NULL);

	if (rc < 0) {
		const vsm_error *e = vsm_error_last();

		snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : "unknown error");
	}
	if (!st.run_id[0]) {
		/* No run was made (a bad parameter): nothing ran. */
		fprintf(stderr, "vsmctl: %s\n", msg);
		goto out;
	}
	if (vsm_run_lookup(&run, ctx, st.run_id) < 0) {
		if (rc < 0)
			fprintf(stderr, "vsmctl: %s\n", msg);
		status = vsmctl_fail();
		goto out;
	}
	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "run", jstr(st.run_id));
		json_object_object_add(o, "state", jstr(vsm_run_state(run)));
		json_object_object_add(o, "error", rc < 0 ? jstr(msg) : jstr(vsm_run_error(run)));
		print_line(o);
	} else if (rc == 0) {
		printf("run %s: %s\n", st.run_id, vsm_run_state(run));
	} else {
		printf("run %s: %s: %s\n", st.run_id, vsm_run_state(run), msg);
	}
	if (rc < 0)
		fprintf(stderr, "vsmctl: %s\n", msg);
	if (rc == 0 && interrupted && strcmp(vsm_run_state(run), "done") == 0)
		/* The library honours a cancel only before a step, and not
		 * past a step that cannot be undone. */
		fprintf(stderr, "vsmctl: interrupted too late to cancel (during the last "
			"step, or past a step that cannot be undone): run %s is done\n", st.run_id);
	if (rc == 0 && strcmp(vsm_run_state(run), "done"))
		/* Not expected from the library: say it rather than exit 0. */
		fprintf(stderr, "vsmctl: run %s ended '%s'\n", st.run_id, vsm_run_state(run));
	else if (rc == 0)
		status = 0;
out:
	vsm_run_free(run);
	vsm_workflow_free(wf);
	free(params);
	return status;
}

/* --- list, show, cancel --- */

static json_object *run_json(const vsm_run *r, bool steps)
{
	json_object *o = json_object_new_object(), *arr;
	size_t i, n;

	json_object_object_add(o, "id", jstr(vsm_run_id(r)));
	json_object_object_add(o, "template", jstr(vsm_run_template(r)));
	json_object_object_add(o, "state", jstr(vsm_run_state(r)));
	json_object_object_add(o, "started", jtime(vsm_run_started(r)));
	json_object_object_add(o, "ended", jtime(vsm_run_ended(r)));
	json_object_object_add(o, "error", jstr(vsm_run_error(r)));
	if (!steps)
		return o;
	json_object_object_add(o, "params", jparsed(vsm_run_params(r)));
	arr = json_object_new_array();

	for (i = 0, n = vsm_run_step_count(r); i < n; i++) {
		json_object *s = json_object_new_object();

		json_object_object_add(s, "id", jstr(vsm_run_step_id(r, i)));
		json_object_object_add(s, "op", jstr(vsm_run_step_op(r, i)));
		json_object_object_add(s, "state", jstr(vsm_run_step_state(r, i)));
		json_object_object_add(s, "args", jparsed(vsm_run_step_args(r, i)));
		json_object_object_add(s, "result", jparsed(vsm_run_step_result(r, i)));
		json_object_object_add(s, "error", jstr(vsm_run_step_error(r, i)));
		json_object_array_add(arr, s);
	}
	json_object_object_add(o, "steps", arr);
	return o;
}

static int cmd_list(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_run **list = NULL;
	size_t n = 0, i;
	int a;

	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--json"))
			json = 1;
		else
			return usage("list: unknown argument '%s'", argv[a]);
	}
	if (vsm_run_list(&list, &n, ctx) < 0)
		return vsmctl_fail();
	if (json) {
		json_object *arr = json_object_new_array();

		for (i = 0; i < n; i++)
			json_object_array_add(arr, run_json(list[i], false));
		vsmctl_print_json(arr);
	} else {
		if (n)
			printf("%-36s  %-20s %-12s %-20s %s\n", "ID", "TEMPLATE", "STATE",
			       "STARTED", "ENDED");
		for (i = 0; i < n; i++) {
			char started[40], ended[40];

			iso_time(started, sizeof(started), vsm_run_started(list[i]));
			iso_time(ended, sizeof(ended), vsm_run_ended(list[i]));
			printf("%-36s  %-20s %-12s %-20s %s\n", vsm_run_id(list[i]),
			       vsm_run_template(list[i]), vsm_run_state(list[i]), started, ended);
		}
	}
	vsm_run_list_free(list, n);
	return 0;
}

/* A step's JSON field on one line, slashes as they were. */
static void print_field(const char *label, const char *value)
{
	json_object *o;

	if (!value)
		return;
	if ((o = json_tokener_parse(value)) != NULL) {
		printf("      %-7s %s\n", label, json_object_to_json_string_ext(o,
		       JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		printf("      %-7s %s\n", label, value);
	}
}

static int cmd_show(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_run *r = NULL;
	const char *id = NULL;
	char started[40], ended[40];
	size_t i, n;
	int a;

	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--json"))
			json = 1;
		else if (!id && argv[a][0] != '-')
			id = argv[a];
		else
			return usage("show: unexpected argument '%s'", argv[a]);
	}
	if (!id)
		return usage("show needs RUN-ID%s", "");
	if (vsm_run_lookup(&r, ctx, id) < 0)
		return vsmctl_fail();
	if (json) {
		vsmctl_print_json(run_json(r, true));
		vsm_run_free(r);
		return 0;
	}
	iso_time(started, sizeof(started), vsm_run_started(r));
	iso_time(ended, sizeof(ended), vsm_run_ended(r));
	printf("run:      %s\ntemplate: %s\nstate:    %s\nstarted:  %s\nended:    %s\n"
	       "params:   %s\nerror:    %s\nsteps:\n", vsm_run_id(r), vsm_run_template(r),
	       vsm_run_state(r), started, ended, vsm_run_params(r) ? vsm_run_params(r) : "{}",
	       vsm_run_error(r) ? vsm_run_error(r) : "-");
	for (i = 0, n = vsm_run_step_count(r); i < n; i++) {
		printf("  %3zu %-20s %-20s %s\n", i + 1, vsm_run_step_id(r, i), vsm_run_step_op(r, i),
		       vsm_run_step_state(r, i));
		print_field("args:", vsm_run_step_args(r, i));
		print_field("result:", vsm_run_step_result(r, i));
		print_field("error:", vsm_run_step_error(r, i));
	}
	vsm_run_free(r);
	return 0;
}

static int cmd_cancel(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_run *r = NULL;
	const char *id = NULL;
	int a, rc;

	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--json"))
			json = 1;
		else if (!id && argv[a][0] != '-')
			id = argv[a];
		else
			return usage("cancel: unexpected argument '%s'", argv[a]);
	}
	if (!id)
		return usage("cancel needs RUN-ID%s", "");
	if ((rc = vsm_run_cancel(ctx, id)) < 0) {
		const vsm_error *e = vsm_error_last();
		const char *m = e && e->message ? e->message : "unknown error";

		/* The two answers a script acts on, said plainly. */
		if (rc == -VSM_ESTATE || rc == -VSM_ENOTFOUND)
			fprintf(stderr, "vsmctl: cannot cancel: %s\n", m);
		else
			fprintf(stderr, "vsmctl: %s\n", m);
		return 1;
	}
	/* A live run notices before its next step; a dead one's rollback
	 * was done by the call. */
	if (vsm_run_lookup(&r, ctx, id) < 0)
		return vsmctl_fail();
	if (json)
		vsmctl_print_json(run_json(r, false));
	else
		printf("run %s: cancel requested (state %s)\n", id, vsm_run_state(r));
	vsm_run_free(r);
	return 0;
}

int vsmctl_workflow_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	if (argc < 2)
		return usage("which command?%s", "");
	if (!strcmp(argv[1], "validate"))
		return cmd_validate(ctx, argc, argv, json);
	if (!strcmp(argv[1], "run"))
		return cmd_run(ctx, argc, argv, json);
	if (!strcmp(argv[1], "list"))
		return cmd_list(ctx, argc, argv, json);
	if (!strcmp(argv[1], "show"))
		return cmd_show(ctx, argc, argv, json);
	if (!strcmp(argv[1], "cancel"))
		return cmd_cancel(ctx, argc, argv, json);
	return usage("unknown command '%s'", argv[1]);
}
