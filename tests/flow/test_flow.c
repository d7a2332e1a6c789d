/*
 * Suite "flow": workflow templates (doc/workflows.md) through the public
 * API. This file: the run entry point, validation, the example of the
 * issue, registered ops, run listing. flow_ops.c: every built-in op done
 * and undone. flow_tx.c: failures at every step, cancel, parallel runs,
 * and (argument "crash") SIGKILL at random points.
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
	fx f;
	char id[VSM_WORKFLOW_RUN_ID_LEN + 1];
	char *w;

	fx_init(&f);
	ck_vsm(flow_run(f.ctx, example, NULL, id));
	w = flow_world(f.ctx, &f);
	fprintf(stderr, "%s\n", w);
	free(w);
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
		suite_add_tcase(s, tc);
		suite_add_tcase(s, flow_ops_tcase());
		suite_add_tcase(s, flow_tx_tcase());
	}
	rc = tu_run(s);
	tu_root_teardown();
	return rc;
}
