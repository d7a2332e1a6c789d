/*
 * Test case "crash" (run as test "flow-crash"): a child process opens a
 * context and runs the six-step template; it is killed with SIGKILL at a
 * random point, by the parent after a random delay or by itself from the
 * test hook at a random step and phase. The next context on the state
 * directory (vsm_ctx_open recovers) must find the run either "done" with
 * everything there, or "rolled-back" with no trace. VSM_FLOW_KILL_RUNS
 * sets the number of runs (100), VSM_FLOW_SEED the random seed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flow.h"
#include "flow_util.h"

static size_t kill_step;
static const char *kill_phase;

static int kill_hook(const char *run_id, size_t step, const char *phase)
{
	(void)run_id;
	if (step == kill_step && !strcmp(phase, kill_phase))
		raise(SIGKILL);
	return 0;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The child: no Check calls. Exit 0 when the run is done. */
static void child(const char *state, const char *name, const char *bk, bool self_kill)
{
	vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
	vsm_ctx *ctx = NULL;
	char id[VSM_WORKFLOW_RUN_ID_LEN + 1];

	o.state_dir = state;
	if (vsm_ctx_open(&ctx, &o) < 0)
		_exit(2);
	if (self_kill)
		vsm__flow_test_fail = kill_hook;
	_exit(six_run(ctx, name, bk, NULL, NULL, id) == 0 ? 0 : 1);
}

/* Fork the child; kill it after @delay_us (< 0: let it be). Returns how
 * long it lived. */
static int64_t round_run(const fx *f, const char *name, bool self_kill, int64_t delay_us)
{
	char *bk = six_bk(f, name);
	int64_t t0 = now_us();
	pid_t pid = fork();
	int st;

	ck_assert(pid >= 0);
	if (pid == 0)
		child(f->state, name, bk, self_kill);
	if (delay_us >= 0) {
		usleep((useconds_t)delay_us);
		kill(pid, SIGKILL);
	}
	ck_assert(waitpid(pid, &st, 0) == pid);
	free(bk);
	return now_us() - t0;
}

typedef struct {
	int done, rolled_back, never_started, bad;
	char first_bad[2048];
} tally;

static void note_bad(tally *t, int round, const char *how, const char *why)
{
	size_t len = strlen(t->first_bad);

	t->bad++;
	fprintf(stderr, "flow-crash: run %d (%s): %s\n", round, how, why);
	if (len < sizeof(t->first_bad) - 1)
		snprintf(t->first_bad + len, sizeof(t->first_bad) - len, "run %d (%s): %s; ",
			 round, how, why);
}

/* After round @round: look with a fresh context and put things back for
 * the next round. */
static void round_check(const fx *f, int round, const char *name, size_t runs_before,
			int files, int leases, const char *how, tally *t)
{
	vsm_ctx *ctx = tu_ctx(f->state);
	vsm_run **l = NULL;
	size_t n = 0, i;
	char *why = NULL;

	ck_vsm(vsm_run_list(&l, &n, ctx));
	for (i = 0; i < n; i++)
		if (!strcmp(vsm_run_state(l[i]), "running") ||
		    !strcmp(vsm_run_state(l[i]), "rolling-back")) {
			char msg[1024];
			const char *step_err = "-";
			size_t j;
			int left;

			for (j = 0; j < vsm_run_step_count(l[i]); j++)
				if (vsm_run_step_error(l[i], j))
					step_err = vsm_run_step_error(l[i], j);

			/* What vsm_ctx_open should have done; try again so the
			 * report says whether a retry finishes it, and so that
			 * the next rounds start clean. */
			left = vsm_workflow_recover(ctx);
			snprintf(msg, sizeof(msg), "run left '%s' after vsm_ctx_open (error: %s; "
				 "step: %s); vsm_workflow_recover() then leaves %d",
				 vsm_run_state(l[i]), vsm_run_error(l[i]) ? vsm_run_error(l[i]) : "-",
				 step_err, left);
			note_bad(t, round, how, msg);
			vsm_run_list_free(l, n);
			ck_vsm(vsm_run_list(&l, &n, ctx));
			break;
		}
	if (n == runs_before) {
		/* Killed before its run began. */
		t->never_started++;
		if ((why = six_problem_gone(ctx, f, name, files, leases)))
			note_bad(t, round, how, why);
	} else if (n != runs_before + 1) {
		note_bad(t, round, how, "more than one new run");
	} else if (!strcmp(vsm_run_state(l[n - 1]), "done")) {
		vsm_container *c = NULL;
		char *bk = six_bk(f, name);

		t->done++;
		for (i = 0; i < vsm_run_step_count(l[n - 1]); i++)
			if (strcmp(vsm_run_step_state(l[n - 1], i), "done"))
				note_bad(t, round, how, "a step of a done run is not done");
		if ((why = six_problem_done(ctx, f, name, "h")))
			note_bad(t, round, how, why);
		free(why);
		/* Clear the way for the next round. */
		if (vsm_container_lookup(&c, ctx, "ds", name) == 0)
			ck_vsm(vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE));
		vsm_container_free(c);
		unlink(bk);
		free(bk);
		if ((why = six_problem_gone(ctx, f, name, files, leases)))
			note_bad(t, round, how, "after destroying the done run's container, a trace");
	} else if (!strcmp(vsm_run_state(l[n - 1]), "rolled-back")) {
		t->rolled_back++;
		for (i = 0; i < vsm_run_step_count(l[n - 1]); i++) {
			const char *s = vsm_run_step_state(l[n - 1], i);

			if (strcmp(s, "undone") && strcmp(s, "failed") && strcmp(s, "skipped"))
				note_bad(t, round, how, "a step of a rolled-back run is not undone, "
					 "failed or skipped");
		}
		if ((why = six_problem_gone(ctx, f, name, files, leases)))
			note_bad(t, round, how, why);
	} else {
		note_bad(t, round, how, vsm_run_state(l[n - 1]));
	}
	free(why);
	vsm_run_list_free(l, n);
	vsm_ctx_free(ctx);
}

static int leases_at(const char *state)
{
	vsm_ctx *ctx = tu_ctx(state);
	int n = flow_leases_held(ctx);

	vsm_ctx_free(ctx);
	return n;
}

START_TEST(sigkill_runs)
{
	const char *e = getenv("VSM_FLOW_KILL_RUNS");
	int runs = e && atoi(e) > 0 ? atoi(e) : 100;
	unsigned seed = getenv("VSM_FLOW_SEED") ? (unsigned)atoi(getenv("VSM_FLOW_SEED"))
						: (unsigned)time(NULL);
	tally t;
	int64_t full;
	size_t runs_before = 0;
	char name[32], how[64];
	int round, files, leases;
	fx f;

	memset(&t, 0, sizeof(t));
	srand(seed);
	fx_init(&f);
	vsm_ctx_free(f.ctx);
	f.ctx = NULL;
	/* How long a whole run takes here: the range of the random delays. */
	full = round_run(&f, "calib", false, -1);
	round_check(&f, -1, "calib", runs_before, 0, 0, "not killed", &t);
	ck_assert_msg(t.done == 1 && t.bad == 0, "the run that is not killed: %s", t.first_bad);
	memset(&t, 0, sizeof(t));
	runs_before = 1;
	for (round = 0; round < runs; round++) {
		snprintf(name, sizeof(name), "vm%d", round);
		/* What is there before (0 and 0 unless an earlier round
		 * leaked, which it reported): a leak is counted once. */
		files = tu_count_files(f.dsdir);
		leases = leases_at(f.state);
		if (rand() % 2) {
			kill_step = (size_t)rand() % 6;
			kill_phase = rand() % 2 ? "after" : "before";
			snprintf(how, sizeof(how), "kills itself %s step %zu", kill_phase,
				 kill_step);
			round_run(&f, name, true, -1);
		} else {
			int64_t delay = rand() % (full + full / 5 + 1);

			snprintf(how, sizeof(how), "killed after %lld us of %lld", (long long)delay,
				 (long long)full);
			round_run(&f, name, false, delay);
		}
		round_check(&f, round, name, runs_before, files, leases, how, &t);
		runs_before = flow_run_count_at(f.state);
	}
	fprintf(stderr, "flow-crash: seed %u, %d runs killed at random: %d done, %d rolled back, "
		"%d killed before the run began; %d lost or leaked\n", seed, runs, t.done,
		t.rolled_back, t.never_started, t.bad);
	ck_assert_int_eq(t.done + t.rolled_back + t.never_started, runs);
	ck_assert_msg(t.bad == 0, "%d runs lost or leaked something: %s", t.bad, t.first_bad);
	fx_free(&f);
}
END_TEST

TCase *flow_crash_tcase(void)
{
	TCase *tc = tcase_create("crash");

	tcase_set_timeout(tc, 560);
	tcase_add_test(tc, sigkill_runs);
	return tc;
}

/*
 * A run of registered ops whose process died waits for a program that
 * registers them: vsm_ctx_open leaves it "running", a cancel cannot roll
 * it back yet (-VSM_ESTATE), and vsm_workflow_recover() after the
 * registration undoes it, the step in flight with NULL results. _i = 1:
 * cancelled first (it then ends "cancelled").
 */
START_TEST(dead_registered)
{
	static const char tpl[] = "{\"name\": \"dead\", \"steps\": ["
		"{\"id\": \"a\", \"op\": \"test.count\"}, {\"id\": \"b\", \"op\": \"test.count\"},"
		"{\"id\": \"c\", \"op\": \"test.count\"}]}";
	char *state = tu_dir("state");
	vsm_run **l = NULL;
	vsm_ctx *ctx;
	size_t n = 0;
	char id[VSM_WORKFLOW_RUN_ID_LEN + 1];
	pid_t pid;
	int st;

	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
		vsm_workflow *wf = NULL;
		vsm_ctx *c = NULL;

		o.state_dir = state;
		if (vsm_ctx_open(&c, &o) < 0)
			_exit(2);
		flow_ops_register(c);
		if (vsm_workflow_parse(&wf, c, tpl, NULL) < 0)
			_exit(3);
		kill_step = 1;
		kill_phase = "after";
		vsm__flow_test_fail = kill_hook;
		vsm_workflow_run(wf, NULL, id);
		_exit(4); /* not reached: killed */
	}
	ck_assert(waitpid(pid, &st, 0) == pid);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %d", st);
	ctx = tu_ctx(state);
	ck_vsm(vsm_run_list(&l, &n, ctx));
	ck_assert_uint_eq(n, 1);
	snprintf(id, sizeof(id), "%s", vsm_run_id(l[0]));
	vsm_run_list_free(l, n);
	ck_run_states(ctx, id, "running", "done running pending");
	if (_i)
		ck_vsm_refused(vsm_run_cancel(ctx, id), VSM_ESTATE, "cannot be rolled back yet");
	ck_assert_int_eq(vsm_workflow_recover(ctx), 1);
	flow_count_undos = flow_count_undo_null = 0;
	flow_ops_register(ctx);
	ck_assert_int_eq(vsm_workflow_recover(ctx), 0);
	ck_run_states(ctx, id, _i ? "cancelled" : "rolled-back", "undone undone skipped");
	ck_assert_int_eq(flow_count_undos, 2);
	ck_assert_int_eq(flow_count_undo_null, 1);
	ck_assert_int_eq(vsm_run_cancel(ctx, id), -VSM_ESTATE);
	vsm_ctx_free(ctx);
	free(state);
}
END_TEST

TCase *flow_dead_tcase(void)
{
	TCase *tc = tcase_create("dead");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, dead_registered, 0, 2);
	return tc;
}
