/*
 * Every built-in op of the table in doc/workflows.md, run by a template
 * whose next step fails: the op's effect is there while the run goes on
 * (test.snap notes the world), and after the rollback the world is as it
 * was. The ops that cannot be undone show their success path, that
 * validation refuses a step after them that may not fail, and that a
 * run whose only failure comes after them ("on_error": "continue") ends
 * "done". Also results and parameters flowing into later steps.
 */
#include <stdio.h>
#include <stdlib.h>

#include "flow_util.h"

#define MIB (UINT64_C(1) << 20)

static vsm_container *get(vsm_ctx *ctx, const char *name)
{
	vsm_container *c = NULL;

	ck_vsm(vsm_container_lookup(&c, ctx, "ds", name));
	return c;
}

/* --- preconditions --- */

static void setup_none(fx *f)
{
	(void)f;
}

static void setup_src(fx *f)
{
	vsm_container *c = NULL;

	ck_vsm(tu_create(&c, f->ctx, "ds", "src", 1, MIB));
	vsm_container_free(c);
}

/* device.remove wants a device that is not the container's last. */
static void setup_two(fx *f)
{
	vsm_container *c = NULL;

	ck_vsm(tu_create(&c, f->ctx, "ds", "src", 2, MIB));
	vsm_container_free(c);
}

static void setup_cp(fx *f)
{
	vsm_container *c;

	setup_src(f);
	c = get(f->ctx, "src");
	ck_vsm(vsm_checkpoint_create(NULL, c, "c0", NULL));
	vsm_container_free(c);
}

/* A second datastore "ds2" (its files are not in the world snapshot:
 * the rollback's check is that src is back on "ds" as it was). */
static void setup_cp_ds2(fx *f)
{
	char *dir = tu_dir("ds2"), *uri = tu_uri(dir);

	setup_cp(f);
	ck_vsm(vsm_datastore_add(f->ctx, "ds2", uri, VSM_DATASTORE_ADD_CREATE));
	free(dir);
	free(uri);
}

static void setup_attached(fx *f)
{
	vsm_container *c;

	setup_src(f);
	c = get(f->ctx, "src");
	ck_vsm(vsm_attach(c, "h", 0));
	vsm_container_free(c);
}

static void setup_deployed(fx *f)
{
	vsm_container *c;

	setup_attached(f);
	c = get(f->ctx, "src");
	ck_vsm(vsm_device_deploy(NULL, c, "d0", NULL));
	vsm_container_free(c);
}

/* place.host wants a host whose heartbeat it sees. */
static void setup_live(fx *f)
{
	setup_src(f);
	ck_vsm(vsm_lease_keep(f->ctx, "h", 0));
}

static void setup_group(fx *f)
{
	vsm_container *c;
	vsm_group *g = NULL;

	setup_src(f);
	c = get(f->ctx, "src");
	ck_vsm(vsm_group_create(&g, f->ctx, "g", &c, 1, NULL));
	vsm_group_free(g);
	vsm_container_free(c);
}

static void setup_group_cp(fx *f)
{
	vsm_group *g = NULL;

	setup_group(f);
	ck_vsm(vsm_group_lookup(&g, f->ctx, "ds", "g"));
	ck_vsm(vsm_group_checkpoint_create(g, "gc0", NULL));
	vsm_group_free(g);
}

/* --- ops that can be undone --- */

typedef struct {
	const char *op;
	void (*setup)(fx *f);
	const char *args;   /* "%s" is the backup directory */
	bool changes;       /* the op changes the world (place.* only ask) */
	const char *field;  /* a result field and its value (NULL: any) */
	const char *value;
} undo_case;

static const undo_case undo_cases[] = {
	{ "container.create", setup_none,
	  "{\"name\": \"new\", \"datastore\": \"ds\", \"devices\": [{\"name\": \"root\", "
	  "\"size\": \"1M\"}, {\"name\": \"data\", \"size\": \"2M\", \"format\": \"qcow2\"}]}",
	  true, "name", "new" },
	{ "container.clone", setup_cp,
	  "{\"container\": \"src\", \"checkpoint\": \"c0\", \"name\": \"cl\"}", true, "name",
	  "cl" },
	{ "container.migrate", setup_cp_ds2, "{\"container\": \"src\", \"to\": \"ds2\"}",
	  true, "datastore", "ds2" },
	{ "container.attach", setup_src, "{\"container\": \"src\", \"host\": \"h\"}", true,
	  "host", "h" },
	{ "container.detach", setup_attached, "{\"container\": \"src\"}", true, "host", "h" },
	{ "device.deploy", setup_attached, "{\"container\": \"src\", \"device\": \"d0\"}", true,
	  "device", "d0" },
	{ "device.undeploy", setup_deployed, "{\"container\": \"src\", \"device\": \"d0\"}",
	  true, "device", "d0" },
	{ "device.add", setup_src, "{\"container\": \"src\", \"name\": \"d1\", \"size\": "
	  "\"2M\", \"format\": \"qcow2\"}", true, "device", "d1" },
	{ "device.add", setup_attached, "{\"container\": \"src\", \"name\": \"d1\", \"size\": "
	  "1048576, \"thin\": true}", true, "device", "d1" },
	{ "checkpoint.create", setup_src, "{\"container\": \"src\", \"name\": \"c1\"}", true,
	  "checkpoint", "c1" },
	{ "backup.create", setup_src, "{\"container\": \"src\", \"path\": \"%s/b1\"}", true,
	  "container", "src" },
	{ "group.checkpoint", setup_group, "{\"group\": \"g\", \"name\": \"gc1\"}", true,
	  "checkpoint", "gc1" },
	{ "place.datastore", setup_none, "{\"size\": \"1M\"}", false, "datastore", "ds" },
	{ "place.host", setup_live, "{\"container\": \"src\"}", false, "host", "h" },
};

/* @w with every file name blanked: a migration there and back leaves
 * the same container, devices and checkpoints, in as many files, but the
 * way back gives them new keys. */
static void mask_file_names(char *w)
{
	char *p = w, *q;

	while ((p = strstr(p, "  file "))) {
		p += strlen("  file ");
		q = strchr(p, '\n');
		if (!q)
			q = p + strlen(p);
		memmove(p, q, strlen(q) + 1);
	}
}

START_TEST(op_undone)
{
	const undo_case *uc = &undo_cases[_i];
	char id[VSM_WORKFLOW_RUN_ID_LEN + 1], *args = NULL, *json = NULL, *before, *after, *v;
	fx f;
	int rc;

	fx_init(&f);
	uc->setup(&f);
	ck_assert(asprintf(&args, uc->args, f.bkdir) > 0);
	ck_assert(asprintf(&json, "{\"name\": \"op-case\", \"steps\": [{\"id\": \"s\", \"op\": "
			   "\"%s\", \"args\": %s}, {\"id\": \"boom\", \"op\": \"test.snap\"}]}",
			   uc->op, args) > 0);
	before = flow_world(f.ctx, &f);
	flow_snap_fx = &f;
	rc = flow_run(f.ctx, json, NULL, id);
	ck_assert_msg(rc == -VSM_EIO, "%s: run returned %d: %s", uc->op, rc, tu_msg());
	ck_assert_msg(strstr(tu_msg(), "step 'boom'"), "message: %s", tu_msg());
	ck_run_states(f.ctx, id, "rolled-back", "undone failed");
	ck_assert_ptr_nonnull(flow_snap);
	if (uc->changes)
		ck_assert_msg(strcmp(flow_snap, before), "%s: no effect seen while it ran:\n%s",
			      uc->op, before);
	else
		ck_assert_str_eq(flow_snap, before);
	after = flow_world(f.ctx, &f);
	if (!strcmp(uc->op, "container.migrate")) {
		mask_file_names(before);
		mask_file_names(after);
	}
	ck_assert_msg(!strcmp(after, before), "%s: world before:\n%s\nwhile running:\n%s\n"
		      "after the rollback:\n%s", uc->op, before, flow_snap, after);
	v = run_step_field(f.ctx, id, 0, "result", uc->field);
	ck_assert_msg(v != NULL, "%s: no result '%s'", uc->op, uc->field);
	if (uc->value)
		ck_assert_str_eq(v, uc->value);
	free(v);
	free(before);
	free(after);
	free(flow_snap);
	flow_snap = NULL;
	free(args);
	free(json);
	fx_free(&f);
}
END_TEST

/* --- ops that cannot be undone --- */

typedef struct {
	const char *op;
	void (*setup)(fx *f);
	const char *args;
	const char *field, *value;
} final_case;

static const final_case final_cases[] = {
	{ "container.destroy", setup_src, "{\"container\": \"src\"}", "name", "src" },
	{ "device.resize", setup_src, "{\"container\": \"src\", \"name\": \"d0\", \"size\": "
	  "\"4M\"}", "device", "d0" },
	{ "device.remove", setup_two, "{\"container\": \"src\", \"name\": \"d1\"}", "device",
	  "d1" },
	{ "checkpoint.delete", setup_cp, "{\"container\": \"src\", \"name\": \"c0\"}",
	  "checkpoint", "c0" },
	{ "checkpoint.revert", setup_cp, "{\"container\": \"src\", \"name\": \"c0\"}",
	  "checkpoint", "c0" },
	{ "group.checkpoint_delete", setup_group_cp, "{\"group\": \"g\", \"name\": \"gc0\"}",
	  "checkpoint", "gc0" },
};

/* What the op did is there. */
static void final_effect(const fx *f, const char *op)
{
	vsm_container *c = NULL;
	vsm_checkpoint *cp = NULL;
	vsm_group *g = NULL;

	if (!strcmp(op, "container.destroy")) {
		ck_assert_int_eq(vsm_container_lookup(&c, f->ctx, "ds", "src"), -VSM_ENOTFOUND);
		ck_assert_int_eq(tu_count_files(f->dsdir), 0);
	} else if (!strcmp(op, "device.resize")) {
		c = get(f->ctx, "src");
		ck_assert_uint_eq(vsm_device_size(vsm_container_device_by_name(c, "d0")), 4 * MIB);
	} else if (!strcmp(op, "device.remove")) {
		c = get(f->ctx, "src");
		ck_assert_ptr_null(vsm_container_device_by_name(c, "d1"));
		ck_assert_uint_eq(vsm_container_device_count(c), 1);
		ck_assert_int_eq(tu_count_files(f->dsdir), 2);
	} else if (!strcmp(op, "checkpoint.delete")) {
		c = get(f->ctx, "src");
		ck_assert_int_eq(vsm_checkpoint_lookup(&cp, c, "c0"), -VSM_ENOTFOUND);
	} else if (!strcmp(op, "checkpoint.revert")) {
		c = get(f->ctx, "src");
		ck_vsm(vsm_checkpoint_lookup(&cp, c, "c0"));
	} else {
		ck_vsm(vsm_group_lookup(&g, f->ctx, "ds", "g"));
		ck_assert_uint_eq(vsm_group_checkpoint_count(g), 0);
	}
	vsm_checkpoint_free(cp);
	vsm_container_free(c);
	vsm_group_free(g);
}

START_TEST(op_final)
{
	const final_case *fc = &final_cases[_i];
	char id[VSM_WORKFLOW_RUN_ID_LEN + 1], *json = NULL, *v;
	vsm_workflow *wf = NULL;
	fx f;

	fx_init(&f);
	fc->setup(&f);
	/* Followed by a step that may not fail: refused before any run. */
	ck_assert(asprintf(&json, "{\"name\": \"final\", \"steps\": [{\"id\": \"s\", \"op\": "
			   "\"%s\", \"args\": %s}, {\"id\": \"next\", \"op\": \"test.count\"}]}",
			   fc->op, fc->args) > 0);
	ck_assert_int_eq(vsm_workflow_parse(&wf, f.ctx, json, NULL), -VSM_EINVAL);
	ck_assert_ptr_null(wf);
	ck_assert_msg(!strncmp(tu_msg(), "steps[1].on_error: ", 19), "message: %s", tu_msg());
	ck_assert_msg(strstr(tu_msg(), fc->op), "message: %s", tu_msg());
	ck_assert_uint_eq(flow_run_count(f.ctx), 0);
	free(json);
	/* With "on_error": "continue" after it, a failure there ends "done". */
	ck_assert(asprintf(&json, "{\"name\": \"final\", \"steps\": [{\"id\": \"s\", \"op\": "
			   "\"%s\", \"args\": %s}, {\"id\": \"next\", \"op\": \"test.fail\", "
			   "\"on_error\": \"continue\"}]}", fc->op, fc->args) > 0);
	ck_vsm(flow_run(f.ctx, json, NULL, id));
	ck_run_states(f.ctx, id, "done", "done failed");
	v = run_step_field(f.ctx, id, 0, "result", fc->field);
	ck_assert_msg(v && !strcmp(v, fc->value), "%s: result %s is '%s'", fc->op, fc->field,
		      v ? v : "(none)");
	free(v);
	final_effect(&f, fc->op);
	free(json);
	fx_free(&f);
}
END_TEST

/* --- results and parameters into later steps --- */

START_TEST(results_flow)
{
	static const char tpl[] =
		"{\"name\": \"flow\", \"params\": {\"n\": {\"type\": \"integer\"}, "
		"\"size\": {\"type\": \"size\", \"default\": \"2M\"}}, \"steps\": ["
		"{\"id\": \"create\", \"op\": \"container.create\", \"args\": {\"name\": "
		"\"vm-${param.n}\", \"datastore\": \"ds\", \"devices\": [{\"name\": \"root\", "
		"\"size\": \"${param.size}\"}]}},"
		"{\"id\": \"attach\", \"op\": \"container.attach\", \"args\": {\"container\": "
		"\"${steps.create.name}\", \"datastore\": \"${steps.create.datastore}\", "
		"\"host\": \"h2\"}},"
		"{\"id\": \"deploy\", \"op\": \"device.deploy\", \"args\": {\"container\": "
		"\"${steps.attach.container}\", \"device\": \"root\"}},"
		"{\"id\": \"note\", \"op\": \"test.count\", \"args\": {\"tag\": "
		"\"${steps.create.uuid}@${steps.deploy.host}:${steps.deploy.path}\"}}]}";
	static const char *const params[] = { "n=7", NULL };
	char id[VSM_WORKFLOW_RUN_ID_LEN + 1], want[512], *tag;
	vsm_container *c;
	const vsm_device *d;
	fx f;

	fx_init(&f);
	ck_vsm(flow_run(f.ctx, tpl, params, id));
	ck_run_states(f.ctx, id, "done", "done done done done");
	c = get(f.ctx, "vm-7");
	ck_assert_str_eq(vsm_container_attached_host(c), "h2");
	d = vsm_container_device_by_name(c, "root");
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(vsm_device_size(d), 2 * MIB);
	ck_assert_ptr_nonnull(vsm_device_locator(d));
	snprintf(want, sizeof(want), "%s@h2:%s", vsm_container_uuid(c),
		 vsm_locator_path(vsm_device_locator(d)));
	tag = run_step_field(f.ctx, id, 3, "args", "tag");
	ck_assert_ptr_nonnull(tag);
	ck_assert_str_eq(tag, want);
	free(tag);
	tag = run_step_field(f.ctx, id, 1, "args", "container");
	ck_assert_str_eq(tag, "vm-7");
	free(tag);
	vsm_container_free(c);
	fx_free(&f);
}
END_TEST

TCase *flow_ops_tcase(void)
{
	TCase *tc = tcase_create("ops");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, op_undone, 0, (int)(sizeof(undo_cases) / sizeof(undo_cases[0])));
	tcase_add_loop_test(tc, op_final, 0, (int)(sizeof(final_cases) / sizeof(final_cases[0])));
	tcase_add_test(tc, results_flow);
	return tc;
}
