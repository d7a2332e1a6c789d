/*
 * Suite "workflow": container create is all-or-nothing. Failures roll
 * back at once; a process that dies mid-way is rolled back (create) or
 * finished (destroy) by the next context on the same state directory.
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault_backend.h"
#include "testutil.h"
#include "workflow.h"

static char *state, *dsdir, *uri;

static void setup(void)
{
	state = tu_dir("state");
	dsdir = tu_dir("ds");
	ck_assert(asprintf(&uri, "fault://%s", dsdir) > 0);
	memset(&fault, 0, sizeof(fault));
}

static void teardown(void)
{
	free(state);
	free(dsdir);
	free(uri);
}

static vsm_ctx *open_fault_ctx(void)
{
	vsm_ctx *ctx = tu_ctx(state);

	ck_vsm(fault_register(ctx));
	/* The fault backend comes after open: finish its datastores' work now
	 * (a lookup never would). */
	ck_assert_int_ge(vsm_ctx_recover(ctx, NULL, 0), 0);
	return ctx;
}

static int64_t journal_rows(void)
{
	char *db = NULL;
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	ck_assert(asprintf(&db, "%s/catalog.db", state) > 0);
	ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(h, "SELECT (SELECT count(*) FROM workflows) + "
					    "(SELECT count(*) FROM workflow_steps)", -1, &st,
					    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	free(db);
	return n;
}

static size_t count_containers(vsm_ctx *ctx)
{
	vsm_container **list = NULL;
	size_t n = 0;

	ck_vsm(vsm_container_list(&list, &n, ctx, NULL));
	vsm_container_list_free(list, n);
	return n;
}

static void failure_rolls_back(int code)
{
	vsm_ctx *ctx = open_fault_ctx();
	vsm_container *c = NULL;

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	fault.create_fail_at = 3;
	fault.create_fail_code = code;
	ck_assert_int_eq(tu_create(&c, ctx, "ds1", "web", 3, 1 << 20), -code);
	ck_assert_ptr_nonnull(strstr(tu_msg(), "injected failure"));
	ck_assert_ptr_null(c);
	ck_assert_int_eq(fault.creates, 3);
	ck_assert_int_eq(tu_count_files(dsdir), 0);
	ck_assert_uint_eq(count_containers(ctx), 0);
	ck_assert_int_eq(journal_rows(), 0);
	/* The name is free again. */
	fault.create_fail_at = 0;
	ck_vsm(tu_create(NULL, ctx, "ds1", "web", 3, 1 << 20));
	vsm_ctx_free(ctx);
}

START_TEST(enospc_on_third_device)
{
	failure_rolls_back(VSM_ENOSPC);
}
END_TEST

START_TEST(eio_on_third_device)
{
	failure_rolls_back(VSM_EIO);
}
END_TEST

START_TEST(record_write_failure_rolls_back)
{
	vsm_ctx *ctx = open_fault_ctx();

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	/* Device creation does no bdev writes; the first one is the record. */
	fault.writes = 0;
	fault.write_fail_at = 1;
	ck_assert_int_eq(tu_create(NULL, ctx, "ds1", "web", 2, 1 << 20), -VSM_EIO);
	ck_assert_ptr_nonnull(strstr(tu_msg(), "injected write error"));
	ck_assert_int_eq(tu_count_files(dsdir), 0);
	ck_assert_uint_eq(count_containers(ctx), 0);
	ck_assert_int_eq(journal_rows(), 0);
	vsm_ctx_free(ctx);
}
END_TEST

/* Run @fn in a child that must die with exit status 77 (our "crash"). */
static void in_crashing_child(void (*fn)(void))
{
	pid_t pid = fork();
	int status = 0;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fn();
		_exit(0); /* reached only if the crash did not happen */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 77,
		      "child did not crash where expected (status 0x%x)", status);
}

static void create_and_crash_on_third(void)
{
	vsm_ctx *ctx = open_fault_ctx();

	fault.create_crash_at = 3;
	tu_create(NULL, ctx, "ds1", "web", 3, 1 << 20);
}

START_TEST(crash_mid_create_rolled_back_on_open)
{
	vsm_ctx *ctx = open_fault_ctx();

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	vsm_ctx_free(ctx);
	in_crashing_child(create_and_crash_on_third);
	/* The dead process left three devices and its journal behind. */
	ck_assert_int_eq(tu_count_files(dsdir), 3);
	ck_assert_int_gt(journal_rows(), 0);
	ctx = open_fault_ctx(); /* vsm_ctx_recover after registering the backend */
	ck_assert_int_eq(tu_count_files(dsdir), 0);
	ck_assert_int_eq(journal_rows(), 0);
	ck_assert_uint_eq(count_containers(ctx), 0);
	vsm_ctx_free(ctx);
}
END_TEST

static void crash_hook(const char *action)
{
	if (!strcmp(action, VSM_WF_CONTAINER_DESTROY))
		_exit(77);
}

static void destroy_and_crash(void)
{
	vsm_ctx *ctx = open_fault_ctx();
	vsm_container *c = NULL;

	ck_vsm(vsm_container_lookup(&c, ctx, "ds1", "web"));
	vsm__wf_test_hook = crash_hook;
	vsm_container_destroy(c, 0);
}

START_TEST(crash_mid_destroy_finished_on_open)
{
	vsm_ctx *ctx = open_fault_ctx();
	vsm_container *c = NULL;

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	ck_vsm(tu_create(NULL, ctx, "ds1", "web", 2, 1 << 20));
	ck_vsm(tu_create(NULL, ctx, "ds1", "keep", 1, 1 << 20));
	vsm_ctx_free(ctx);
	in_crashing_child(destroy_and_crash);
	ck_assert_int_eq(tu_count_files(dsdir), 5);
	ctx = open_fault_ctx();
	ck_assert_int_eq(tu_count_files(dsdir), 2);
	ck_assert_int_eq(journal_rows(), 0);
	ck_vsm_refused(vsm_container_lookup(&c, ctx, NULL, "web"), VSM_ENOTFOUND, "web");
	ck_vsm(vsm_container_lookup(&c, ctx, NULL, "keep"));
	vsm_container_free(c);
	vsm_ctx_free(ctx);
}
END_TEST

START_TEST(recovery_waits_for_a_live_owner)
{
	/* A second context in this (live) process must not roll back a
	 * workflow the first is still running: plant a journal row owned
	 * by us and check a new context leaves it alone. */
	vsm_ctx *ctx = open_fault_ctx(), *ctx2;
	vsm_wf wf;

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	ck_vsm(tu_create(NULL, ctx, "ds1", "web", 1, 1 << 20));
	ck_vsm(vsm__wf_begin(&wf, ctx, "test", "ds1", "web"));
	ck_vsm(vsm__wf_redo(&wf, VSM_WF_DEVICE_DELETE, "no-such-key"));
	ctx2 = open_fault_ctx();
	ck_assert_int_gt(journal_rows(), 0);
	vsm_ctx_free(ctx2);
	ck_vsm(vsm__wf_end(&wf));
	ck_assert_int_eq(journal_rows(), 0);
	vsm_ctx_free(ctx);
}
END_TEST

/* SIGKILL a process creating and destroying containers at random moments:
 * afterwards every container listed has all its files and no file is
 * left that no container owns. */
static void churn(void)
{
	vsm_ctx *ctx = tu_ctx(state);
	char name[32];

	for (int i = 0;; i++) {
		vsm_container *c = NULL;

		snprintf(name, sizeof(name), "c%d", i % 4);
		if (vsm_container_lookup(&c, ctx, "ds1", name) == 0) {
			vsm_container_destroy(c, 0);
			vsm_container_free(c);
		} else {
			tu_create(NULL, ctx, "ds1", name, 3, 1 << 20);
		}
	}
}

/* A workflow this context began and left after a failure (a compaction
 * merge whose write failed stays "for the next open") is finished by
 * vsm_ctx_recover in the same context: a long-lived process would never
 * reach a next open. Before, recovery skipped every workflow whose owner
 * was alive, this process included. */
START_TEST(own_leftover_finished_by_recover)
{
	vsm_ctx *ctx = open_fault_ctx();
	vsm_container *c = NULL;
	char name[32];
	int k, rc = 0;
	bool left = false;

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	/* Fail the k-th write of a checkpoint delete, for growing k, until
	 * one fails inside the merge that follows the delete's commit. */
	for (k = 1; k <= 200 && !left; k++) {
		snprintf(name, sizeof(name), "vm%d", k);
		ck_vsm(tu_create(&c, ctx, "ds1", name, 1, 1 << 20));
		ck_vsm(vsm_checkpoint_create(NULL, c, "c1", NULL));
		ck_vsm(vsm_checkpoint_create(NULL, c, "c2", NULL));
		fault.write_fail_at = fault.writes + k;
		rc = vsm_checkpoint_delete(c, "c1", 0);
		fault.write_fail_at = 0;
		left = journal_rows() > 0;
		vsm_container_free(c);
		c = NULL;
	}
	ck_assert_msg(left, "no failed write left a workflow in the journal (last rc %d)", rc);
	ck_assert_int_eq(vsm_ctx_recover(ctx, NULL, 0), 0);
	ck_assert_int_eq(journal_rows(), 0);
	vsm_ctx_free(ctx);
}
END_TEST

START_TEST(sigkill_at_random_points)
{
	char *furi = tu_uri(dsdir);
	vsm_ctx *ctx = tu_ctx(state);
	unsigned seed = (unsigned)getpid();

	ck_vsm(vsm_datastore_add(ctx, "ds1", furi, 0));
	vsm_ctx_free(ctx);
	for (int round = 0; round < 6; round++) {
		pid_t pid = fork();
		vsm_container **list = NULL;
		size_t n = 0;
		int files = 0;

		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			churn();
			_exit(0);
		}
		usleep(20000 + (useconds_t)(rand_r(&seed) % 150000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		ctx = tu_ctx(state);
		ck_vsm(vsm_container_list(&list, &n, ctx, NULL));
		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; j < vsm_container_device_count(list[i]); j++) {
				char *p = NULL;

				ck_assert(asprintf(&p, "%s/%s", dsdir,
						   vsm_device_key(vsm_container_device(list[i], j))) > 0);
				ck_assert_msg(tu_exists(p), "round %d: %s missing", round, p);
				free(p);
			}
			files += (int)vsm_container_device_count(list[i]) + 1;
		}
		ck_assert_int_eq(tu_count_files(dsdir), files);
		ck_assert_int_eq(journal_rows(), 0);
		vsm_container_list_free(list, n);
		vsm_ctx_free(ctx);
	}
	free(furi);
}
END_TEST

static Suite *workflow_suite(void)
{
	Suite *s = suite_create("workflow");
	TCase *tc = tcase_create("rollback");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, enospc_on_third_device);
	tcase_add_test(tc, eio_on_third_device);
	tcase_add_test(tc, record_write_failure_rolls_back);
	tcase_add_test(tc, crash_mid_create_rolled_back_on_open);
	tcase_add_test(tc, crash_mid_destroy_finished_on_open);
	tcase_add_test(tc, recovery_waits_for_a_live_owner);
	tcase_add_test(tc, own_leftover_finished_by_recover);
	tcase_add_test(tc, sigkill_at_random_points);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(workflow_suite());
}
