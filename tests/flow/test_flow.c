/*
 * Suite "flow": workflow templates (doc/workflows.md) through the public
 * API. This file: the entry point, the example of issue 19, validation
 * messages, registered ops, run listing and getters. flow_ops.c: every
 * built-in op done and undone. flow_tx.c: failures at every step,
 * cancel, parallel runs. flow_crash.c: SIGKILL at random points
 * (argument "crash", test "flow-crash"), and a dead run of registered ops
 * (case "dead", in the ordinary run).
 */
#include <stdio.h>
#include <stdlib.h>

#include "flow_util.h"

static const char example[] =
	"{\"name\": \"two-vms\", \"params\": {\"ds\": {\"type\": \"string\", \"default\": \"ds\"}},"
	" \"steps\": [ {\"id\": \"one\", \"op\": \"container.create\", \"args\": {\"name\": \"wf1\","
	" \"datastore\": \"${param.ds}\", \"devices\": [{\"name\": \"root\", \"size\": \"16M\"}]}},"
	" {\"id\": \"two\", \"op\": \"container.attach\", \"args\": {\"container\": "
	"\"${steps.one.name}\", \"host\": \"h\"}}]}";

START_TEST(example_runs)
{
	char id[VSM_WORKFLOW_RUN_ID_LEN + 1];
	vsm_workflow *wf = NULL;
	vsm_container *c = NULL;
	fx f;

	fx_init(&f);
	ck_vsm(vsm_workflow_parse(&wf, f.ctx, example, NULL));
	ck_assert_str_eq(vsm_workflow_name(wf), "two-vms");
	ck_assert_uint_eq(vsm_workflow_param_count(wf), 1);
	ck_assert_str_eq(vsm_workflow_param_name(wf, 0), "ds");
	ck_assert_str_eq(vsm_workflow_param_type(wf, 0), "string");
	ck_assert_str_eq(vsm_workflow_param_default(wf, 0), "\"ds\"");
	ck_assert_uint_eq(vsm_workflow_step_count(wf), 2);
	ck_assert_str_eq(vsm_workflow_step_id(wf, 1), "two");
	ck_assert_str_eq(vsm_workflow_step_op(wf, 1), "container.attach");
	ck_assert_ptr_null(vsm_workflow_step_id(wf, 2));
	ck_vsm(vsm_workflow_run(wf, NULL, id));
	vsm_workflow_free(wf);
	ck_run_states(f.ctx, id, "done", "done done");
	ck_vsm(vsm_container_lookup(&c, f.ctx, "ds", "wf1"));
	ck_assert_str_eq(vsm_container_attached_host(c), "h");
	ck_assert_uint_eq(vsm_device_size(vsm_container_device_by_name(c, "root")), 16u << 20);
	vsm_container_free(c);
	fx_free(&f);
}
END_TEST

/* --- validation --- */

typedef struct {
	const char *json;
	const char *path; /* the message starts with it */
	const char *says; /* and mentions this */
} bad_case;

#define ONE(op, args) "{\"name\": \"t\", \"steps\": [{\"id\": \"one\", \"op\": \"" op "\", " \
	"\"args\": " args "}]}"
#define DEVS "\"devices\": [{\"name\": \"r\", \"size\": \"1M\"}]"

static const bad_case bad_cases[] = {
	{ ONE("container.crate", "{}"), "steps[0].op: ", "unknown op 'container.crate'" },
	{ ONE("container.create", "{\"name\": \"x\"}"), "steps[0].args: ", "devices" },
	{ ONE("container.create", "{\"name\": \"x\", " DEVS ", \"color\": \"red\"}"),
	  "steps[0].args.color: ", "no argument 'color'" },
	{ ONE("container.attach", "{\"container\": \"x\", \"host\": \"h\", \"takeover\": \"yes\"}"),
	  "steps[0].args.takeover: ", "not a boolean" },
	{ ONE("container.create", "{\"name\": 5, " DEVS "}"), "steps[0].args.name: ",
	  "not a string" },
	{ ONE("container.create", "{\"name\": \"x\", \"devices\": [{\"name\": \"r\", \"size\": "
	      "\"big\"}]}"), "steps[0].args.devices[0].size: ", "not a size" },
	{ ONE("container.create", "{\"name\": \"${param.nope}\", " DEVS "}"),
	  "steps[0].args.name: ", "no parameter 'nope'" },
	{ "{\"name\": \"t\", \"steps\": [{\"id\": \"one\", \"op\": \"container.attach\", \"args\": "
	  "{\"container\": \"${steps.two.name}\", \"host\": \"h\"}}, {\"id\": \"two\", \"op\": "
	  "\"container.create\", \"args\": {\"name\": \"x\", " DEVS "}}]}",
	  "steps[0].args.container: ", "no earlier step 'two'" },
	{ "{\"name\": \"t\", \"steps\": [{\"id\": \"one\", \"op\": \"container.create\", \"args\": "
	  "{\"name\": \"x\", " DEVS "}}, {\"id\": \"two\", \"op\": \"container.attach\", \"args\": "
	  "{\"container\": \"${steps.on.name}\", \"host\": \"h\"}}]}",
	  "steps[1].args.container: ", "no earlier step 'on'" },
	{ "{\"name\": \"t\", \"steps\": [{\"id\": \"one\", \"op\": \"container.create\", \"args\": "
	  "{\"name\": \"x\", " DEVS "}}, {\"id\": \"two\", \"op\": \"container.attach\", \"args\": "
	  "{\"container\": \"${steps.one.colour}\", \"host\": \"h\"}}]}",
	  "steps[1].args.container: ", "no result 'colour'" },
	{ "{\"name\": \"t\", \"params\": {\"size\": {\"type\": \"size\", \"default\": \"big\"}}, "
	  "\"steps\": [{\"id\": \"one\", \"op\": \"place.datastore\", \"args\": {\"size\": "
	  "\"${param.size}\"}}]}", "params.size.default: ", "not a size" },
	{ "{\"name\": \"t\", \"params\": {\"n\": {\"type\": \"integer\", \"default\": 1}}, "
	  "\"steps\": [{\"id\": \"one\", \"op\": \"container.attach\", \"args\": {\"container\": "
	  "\"x\", \"host\": \"h\", \"takeover\": \"${param.n}\"}}]}",
	  "steps[0].args.takeover: ", "parameter 'n'" },
	{ "{\"name\": \"t\", \"steps\": [{\"id\": \"one\", \"op\": \"place.datastore\", \"args\": "
	  "{\"size\": 1}}, {\"id\": \"one\", \"op\": \"place.datastore\", \"args\": "
	  "{\"size\": 1}}]}", "steps[1].id: ", "'one'" },
	{ "{\"name\": \"t\", \"steps\": [{\"id\": \"one\", \"op\": \"container.destroy\", \"args\": "
	  "{\"container\": \"x\"}}, {\"id\": \"two\", \"op\": \"place.datastore\", \"args\": "
	  "{\"size\": 1}}]}", "steps[1].on_error: ", "container.destroy" },
	{ ONE("place.datastore", "{\"size\": 1}, \"colour\": 1"), "steps[0].colour: ",
	  "unknown field" },
	{ "{\"name\": \"t\", \"steps\": []}", "steps: ", "non-empty" },
	{ "{\"steps\": [{\"id\": \"one\", \"op\": \"place.datastore\"}]}", "name: ", "name" },
	{ "{\"name\": \"t\", \"steps\": [{\"id\": \"one\", \"op\": \"place.datastore\", ",
	  "template: ", "not JSON" },
	{ ONE("place.datastore", "{\"size\": 1}") " trailing", "template: ", "not JSON" },
};

START_TEST(refused)
{
	const bad_case *bc = &bad_cases[_i];
	vsm_workflow *wf = NULL;
	char *prefixed = NULL;
	fx f;

	fx_init(&f);
	ck_assert_int_eq(vsm_workflow_parse(&wf, f.ctx, bc->json, NULL), -VSM_EINVAL);
	ck_assert_ptr_null(wf);
	ck_assert_msg(!strncmp(tu_msg(), bc->path, strlen(bc->path)),
		      "case %d: message '%s' does not start with '%s'", _i, tu_msg(), bc->path);
	ck_assert_msg(strstr(tu_msg(), bc->says), "case %d: message '%s' does not mention '%s'",
		      _i, tu_msg(), bc->says);
	/* With an origin, the message names it first. */
	ck_assert_int_eq(vsm_workflow_parse(&wf, f.ctx, bc->json, "t.json"), -VSM_EINVAL);
	ck_assert(asprintf(&prefixed, "t.json: %s", strcmp(bc->path, "template: ") ?
			   bc->path : "") > 0);
	ck_assert_msg(!strncmp(tu_msg(), prefixed, strlen(prefixed)),
		      "case %d: message '%s' does not start with '%s'", _i, tu_msg(), prefixed);
	free(prefixed);
	ck_assert_uint_eq(flow_run_count(f.ctx), 0);
	fx_free(&f);
}
END_TEST

START_TEST(bad_params_at_run)
{
	static const char tpl[] = "{\"name\": \"p\", \"params\": {\"n\": {\"type\": \"integer\"}},"
		" \"steps\": [{\"id\": \"a\", \"op\": \"test.count\", \"args\": {\"tag\": "
		"\"n${param.n}\"}}]}";
	static const char *const missing[] = { NULL };
	static const char *const wrong[] = { "n=seven", NULL };
	static const char *const unknown[] = { "n=1", "m=2", NULL };
	static const char *const good[] = { "n=1", NULL };
	char id[VSM_WORKFLOW_RUN_ID_LEN + 1], *tag;
	fx f;

	fx_init(&f);
	ck_vsm_refused(flow_run(f.ctx, tpl, missing, id), VSM_EINVAL, "'n'");
	ck_vsm_refused(flow_run(f.ctx, tpl, wrong, id), VSM_EINVAL, "seven");
	ck_vsm_refused(flow_run(f.ctx, tpl, unknown, id), VSM_EINVAL, "'m'");
	ck_assert_uint_eq(flow_run_count(f.ctx), 0);
	ck_vsm(flow_run(f.ctx, tpl, good, id));
	tag = run_step_field(f.ctx, id, 0, "args", "tag");
	ck_assert_str_eq(tag, "n1");
	free(tag);
	fx_free(&f);
}
END_TEST

/* --- registered ops --- */

START_TEST(custom_op_undo)
{
	static const char tpl[] = "{\"name\": \"c\", \"steps\": ["
		"{\"id\": \"a\", \"op\": \"test.count\", \"args\": {\"tag\": \"first\"}},"
		"{\"id\": \"b\", \"op\": \"test.count\", \"args\": {\"tag\": \"${steps.a.token}\"}},"
		"{\"id\": \"c\", \"op\": \"test.fail\"}]}";
	char id[VSM_WORKFLOW_RUN_ID_LEN + 1], *v;
	fx f;

	fx_init(&f);
	flow_count_runs = flow_count_undos = flow_count_undo_null = 0;
	ck_vsm_refused(flow_run(f.ctx, tpl, NULL, id), VSM_EIO, "failing on purpose");
	ck_assert_msg(strstr(tu_msg(), "template 'c', step 'c' (test.fail)"), "%s", tu_msg());
	ck_run_states(f.ctx, id, "rolled-back", "undone undone failed");
	ck_assert_int_eq(flow_count_runs, 2);
	ck_assert_int_eq(flow_count_undos, 2);
	ck_assert_int_eq(flow_count_undo_null, 0);
	/* Newest first: the last undo is step a's, with its result. */
	ck_assert_msg(strstr(flow_last_undo_result, "tok-1"), "%s", flow_last_undo_result);
	v = run_step_field(f.ctx, id, 1, "args", "tag");
	ck_assert_str_eq(v, "tok-1");
	free(v);
	v = run_step_field(f.ctx, id, 1, "result", "token");
	ck_assert_str_eq(v, "tok-2");
	free(v);
	fx_free(&f);
}
END_TEST

START_TEST(custom_op_final)
{
	char id[VSM_WORKFLOW_RUN_ID_LEN + 1];
	vsm_workflow *wf = NULL;
	fx f;

	fx_init(&f);
	ck_vsm_refused(vsm_workflow_parse(&wf, f.ctx, "{\"name\": \"c\", \"steps\": ["
					  "{\"id\": \"a\", \"op\": \"test.final\"},"
					  "{\"id\": \"b\", \"op\": \"test.count\"}]}", NULL),
		       VSM_EINVAL, "steps[1].on_error: step 'a' (test.final) cannot be undone");
	flow_count_runs = flow_count_undos = 0;
	ck_vsm(flow_run(f.ctx, "{\"name\": \"c\", \"steps\": ["
			"{\"id\": \"a\", \"op\": \"test.count\"},"
			"{\"id\": \"b\", \"op\": \"test.final\"},"
			"{\"id\": \"c\", \"op\": \"test.fail\", \"on_error\": \"continue\"}]}",
			NULL, id));
	ck_run_states(f.ctx, id, "done", "done done failed");
	ck_assert_int_eq(flow_count_runs, 2);
	ck_assert_int_eq(flow_count_undos, 0);
	fx_free(&f);
}
END_TEST

static int noop_run(vsm_ctx *ctx, const char *args, char **result, void *opaque)
{
	(void)ctx;
	(void)args;
	(void)result;
	(void)opaque;
	return 0;
}

START_TEST(register_refused)
{
	vsm_workflow_op op = { VSM_WORKFLOW_OP_VERSION, "my.op", "{}", noop_run, NULL, NULL };
	static const char *const bad_names[] = { "noverb", "my.", ".op", "my op.x", "my.o/p" };
	static const char *const builtin[] = { "container.foo", "device.foo", "checkpoint.foo",
					       "backup.foo", "group.foo", "place.foo" };
	static const char *const bad_schemas[] = {
		"not json", "[]", "{\"extra\": {}}", "{\"args\": []}",
		"{\"args\": {\"x\": {\"type\": \"float\"}}}", "{\"args\": {\"x\": {}}}",
		"{\"args\": {\"x\": {\"type\": \"string\", \"required\": \"yes\"}}}",
		"{\"results\": \"x\"}", "{\"results\": [1]}",
	};
	vsm_workflow *wf = NULL;
	size_t i;
	fx f;

	fx_init(&f);
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		op.name = bad_names[i];
		ck_assert_msg(vsm_workflow_op_register(f.ctx, &op) == -VSM_EINVAL, "name '%s'",
			      bad_names[i]);
	}
	for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
		op.name = builtin[i];
		ck_vsm_refused(vsm_workflow_op_register(f.ctx, &op), VSM_EINVAL, "namespace");
	}
	op.name = "test.count";
	ck_vsm_refused(vsm_workflow_op_register(f.ctx, &op), VSM_EEXISTS, "test.count");
	op.name = "my.op";
	op.version = 99;
	ck_vsm_refused(vsm_workflow_op_register(f.ctx, &op), VSM_EVERSION, "99");
	op.version = 0;
	ck_assert_int_eq(vsm_workflow_op_register(f.ctx, &op), -VSM_EVERSION);
	op.version = VSM_WORKFLOW_OP_VERSION;
	for (i = 0; i < sizeof(bad_schemas) / sizeof(bad_schemas[0]); i++) {
		op.schema = bad_schemas[i];
		ck_assert_msg(vsm_workflow_op_register(f.ctx, &op) == -VSM_EINVAL, "schema %s: %s",
			      bad_schemas[i], tu_msg());
	}
	op.schema = "{}";
	op.run = NULL;
	ck_assert_int_eq(vsm_workflow_op_register(f.ctx, &op), -VSM_EINVAL);
	/* None of those went in; a good one does, once. */
	ck_vsm_refused(vsm_workflow_parse(&wf, f.ctx, ONE("my.op", "{}"), NULL), VSM_EINVAL,
		       "steps[0].op: unknown op 'my.op'");
	op.run = noop_run;
	ck_vsm(vsm_workflow_op_register(f.ctx, &op));
	ck_vsm_refused(vsm_workflow_op_register(f.ctx, &op), VSM_EEXISTS, "my.op");
	ck_vsm(vsm_workflow_parse(&wf, f.ctx, ONE("my.op", "{}"), NULL));
	vsm_workflow_free(wf);
	/* Another context does not know it. */
	{
		vsm_ctx *other = tu_ctx(f.state);

		ck_vsm_refused(vsm_workflow_parse(&wf, other, ONE("my.op", "{}"), NULL),
			       VSM_EINVAL, "unknown op 'my.op'");
		vsm_ctx_free(other);
	}
	fx_free(&f);
}
END_TEST

/* --- listing and getters --- */

START_TEST(run_getters)
{
	static const char tpl[] = "{\"name\": \"get\", \"params\": {\"t\": {\"type\": \"string\", "
		"\"default\": \"x\"}}, \"steps\": ["
		"{\"id\": \"a\", \"op\": \"test.count\", \"args\": {\"tag\": \"${param.t}\"}},"
		"{\"id\": \"b\", \"op\": \"test.fail\", \"args\": {\"tag\": 7}},"
		"{\"id\": \"c\", \"op\": \"test.count\"}]}";
	static const char *const params[] = { "t=hello", NULL };
	char id1[VSM_WORKFLOW_RUN_ID_LEN + 1], id2[VSM_WORKFLOW_RUN_ID_LEN + 1];
	vsm_run **l = NULL, *r = NULL;
	size_t n = 0;
	fx f;

	fx_init(&f);
	ck_vsm(flow_run(f.ctx, example, NULL, id1));
	ck_assert_uint_eq(strlen(id1), VSM_WORKFLOW_RUN_ID_LEN);
	ck_assert_int_eq(flow_run(f.ctx, tpl, params, id2), -VSM_EIO);
	ck_assert_uint_eq(strlen(id2), VSM_WORKFLOW_RUN_ID_LEN);
	ck_assert_str_ne(id1, id2);
	ck_vsm(vsm_run_list(&l, &n, f.ctx));
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(vsm_run_id(l[0]), id1);
	ck_assert_str_eq(vsm_run_id(l[1]), id2);
	ck_assert_str_eq(vsm_run_template(l[0]), "two-vms");
	ck_assert_str_eq(vsm_run_state(l[0]), "done");
	ck_assert_ptr_null(vsm_run_error(l[0]));
	ck_assert_int_gt(vsm_run_started(l[0]), 0);
	ck_assert_int_ge(vsm_run_ended(l[0]), vsm_run_started(l[0]));
	ck_assert_msg(strstr(vsm_run_params(l[0]), "\"ds\""), "%s", vsm_run_params(l[0]));
	vsm_run_list_free(l, n);

	ck_vsm(vsm_run_lookup(&r, f.ctx, id2));
	ck_assert_str_eq(vsm_run_id(r), id2);
	ck_assert_str_eq(vsm_run_template(r), "get");
	ck_assert_str_eq(vsm_run_state(r), "rolled-back");
	ck_assert_msg(vsm_run_error(r) && strstr(vsm_run_error(r), "step 'b'"), "%s",
		      vsm_run_error(r) ? vsm_run_error(r) : "(null)");
	ck_assert_msg(strstr(vsm_run_params(r), "hello"), "%s", vsm_run_params(r));
	ck_assert_int_ge(vsm_run_ended(r), vsm_run_started(r));
	ck_assert_uint_eq(vsm_run_step_count(r), 3);
	ck_assert_str_eq(vsm_run_step_id(r, 0), "a");
	ck_assert_str_eq(vsm_run_step_op(r, 1), "test.fail");
	ck_assert_str_eq(vsm_run_step_state(r, 0), "undone");
	ck_assert_str_eq(vsm_run_step_state(r, 1), "failed");
	ck_assert_str_eq(vsm_run_step_state(r, 2), "skipped");
	ck_assert_msg(strstr(vsm_run_step_args(r, 0), "hello"), "%s", vsm_run_step_args(r, 0));
	ck_assert_msg(strstr(vsm_run_step_result(r, 0), "tok-"), "%s", vsm_run_step_result(r, 0));
	ck_assert_ptr_null(vsm_run_step_error(r, 0));
	ck_assert_msg(vsm_run_step_args(r, 1) && strstr(vsm_run_step_args(r, 1), "7"), "%s",
		      vsm_run_step_args(r, 1) ? vsm_run_step_args(r, 1) : "(null)");
	ck_assert_ptr_null(vsm_run_step_result(r, 1));
	ck_assert_msg(vsm_run_step_error(r, 1) && strstr(vsm_run_step_error(r, 1),
							 "failing on purpose"), "step error");
	ck_assert_ptr_null(vsm_run_step_args(r, 2));
	ck_assert_ptr_null(vsm_run_step_result(r, 2));
	ck_assert_ptr_null(vsm_run_step_id(r, 3));
	vsm_run_free(r);

	/* Another context on the state directory sees the same log. */
	{
		vsm_ctx *other = tu_ctx(f.state);

		ck_assert_uint_eq(flow_run_count(other), 2);
		ck_vsm(vsm_run_lookup(&r, other, id1));
		ck_assert_str_eq(vsm_run_state(r), "done");
		vsm_run_free(r);
		vsm_ctx_free(other);
	}
	ck_vsm_refused(vsm_run_lookup(&r, f.ctx, "no-such-run"), VSM_ENOTFOUND, "no-such-run");
	ck_assert_ptr_null(r);
	fx_free(&f);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("flow");
	TCase *tc;
	int rc;

	tu_root_setup();
	if (argc > 1 && !strcmp(argv[1], "crash")) {
		suite_add_tcase(s, flow_crash_tcase());
	} else {
		tc = tcase_create("api");
		tcase_set_timeout(tc, 120);
		tcase_add_test(tc, example_runs);
		tcase_add_loop_test(tc, refused, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
		tcase_add_test(tc, bad_params_at_run);
		tcase_add_test(tc, custom_op_undo);
		tcase_add_test(tc, custom_op_final);
		tcase_add_test(tc, register_refused);
		tcase_add_test(tc, run_getters);
		suite_add_tcase(s, tc);
		suite_add_tcase(s, flow_ops_tcase());
		suite_add_tcase(s, flow_tx_tcase());
		suite_add_tcase(s, flow_dead_tcase());
	}
	rc = tu_run(s);
	tu_root_teardown();
	return rc;
}
