/*
 * Suite "concurrency": processes that write one datastore's metadata at
 * the same time, as two hosts (two state directories) and as several
 * processes of one host (one state directory). Each round every process
 * creates its names and destroys half of what it created; afterwards a
 * fresh state directory must list exactly what was created and not
 * destroyed: nothing lost, nothing twice, no device left without a record.
 * Case "first-use" starts several processes on a brand-new state directory
 * at once (the first change makes the directory's node id).
 *
 * VSM_TEST_ROUNDS and VSM_TEST_NAMES scale it (defaults 5 and 200; the
 * figures in doc/datastore-layout.md were soaked with VSM_TEST_ROUNDS=20).
 * tests/iscsi/concurrent-run.sh runs it against an iSCSI target with each
 * process in a network namespace of its own: VSM_TEST_URI_<p> is the
 * datastore as process p reaches it, VSM_TEST_NETNS_<p> its namespace
 * (VSM_TEST_NETNS_CHECK for the checks), and orphans are counted with
 * vsm_datastore_check instead of in the directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define MAX_PROCS 4

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);

	return v && atoi(v) > 0 ? atoi(v) : dflt;
}

/* Enter the network namespace the environment names for @who, if any. */
static int enter_netns(const char *who)
{
	char var[64], path[256];
	const char *ns;
	int fd, rc;

	snprintf(var, sizeof(var), "VSM_TEST_NETNS_%s", who);
	if (!(ns = getenv(var)))
		return 0;
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	rc = setns(fd, CLONE_NEWNET);
	close(fd);
	return rc < 0 ? -errno : 0;
}

/* The datastore's URI as process @who reaches it. */
static const char *uri_for(const char *who, const char *dflt)
{
	char var[64];

	snprintf(var, sizeof(var), "VSM_TEST_URI_%s", who);
	return getenv(var) ? getenv(var) : dflt;
}

/* One expected container: name and how many times it must be listed. */
typedef struct {
	char **names;
	size_t n, cap;
} name_set;

static void set_add(name_set *s, const char *name)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->names = realloc(s->names, s->cap * sizeof(*s->names));
		ck_assert_ptr_nonnull(s->names);
	}
	s->names[s->n] = strdup(name);
	ck_assert_ptr_nonnull(s->names[s->n]);
	s->n++;
}

static void set_del(name_set *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (!strcmp(s->names[i], name)) {
			free(s->names[i]);
			s->names[i] = s->names[--s->n];
			return;
		}
	}
	ck_abort_msg("'%s' destroyed but never created", name);
}

static void set_free(name_set *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	memset(s, 0, sizeof(*s));
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A child: create names, then destroy every other one it created. Writes
 * "C name rc" and "D name rc" lines to @out. Uses no Check calls. */
static int child(const char *state, const char *out, const char *prefix, int names,
		 int seed, int done_fd, int go_fd)
{
	char who[16];
	vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *devs[1] = { &d };
	vsm_container_opts co = VSM_CONTAINER_OPTS_INIT;
	vsm_ctx *ctx = NULL;
	FILE *f = fopen(out, "w");
	char name[64];
	int i, rc, made = 0;

	if (!f)
		return 2;
	snprintf(who, sizeof(who), "%d", seed);
	if ((rc = enter_netns(who)) < 0) {
		fprintf(f, "E netns %d\n", rc);
		fclose(f);
		return 1;
	}
	o.state_dir = state;
	if ((rc = vsm_ctx_open(&ctx, &o)) < 0) {
		fprintf(f, "E open %d %s\n", rc, vsm_error_last()->message);
		fclose(f);
		return 1;
	}
	d.name = "root";
	d.size = 1 << 20;
	co.state_size = 1 << 20;
	co.devices = devs;
	co.n_devices = 1;
	co.flags = VSM_CONTAINER_CREATE_THIN;
	for (i = 0; i < names; i++) {
		/* Start at different places so same-name runs collide often
		 * in both orders. */
		int k = (i + seed * names / MAX_PROCS) % names;

		snprintf(name, sizeof(name), "%s%d", prefix, k);
		rc = vsm_container_create(NULL, ctx, "ds", name, &co);
		fprintf(f, "C %s %d %s\n", name, rc, rc ? vsm_error_last()->message : "");
		made += rc == 0;
	}
	fflush(f);
	/* Every process finishes creating before any destroys, so that "one
	 * process was told it created each name" holds. */
	if (write(done_fd, "c", 1) != 1 || read(go_fd, name, 1) != 1)
		return 3;
	for (i = 0; i < names; i++) {
		vsm_container *c = NULL;
		int k = (i + seed * names / MAX_PROCS) % names;

		if (k % 2)
			continue; /* the even half goes */
		snprintf(name, sizeof(name), "%s%d", prefix, k);
		rc = vsm_container_lookup(&c, ctx, "ds", name);
		if (rc == 0) {
			/* With the same names on every process, several may go
			 * for one container: one destroys it, the others must be
			 * told it is gone. */
			rc = vsm_container_destroy(c, 0);
			vsm_container_free(c);
		}
		fprintf(f, "L %s %d %s\n", name, rc, rc ? vsm_error_last()->message : "");
	}
	fclose(f);
	vsm_ctx_free(ctx);
	(void)made;
	return 0;
}

typedef struct {
	const char *what;
	int procs;
	bool shared_state;  /* all processes on one state directory */
	bool same_names;    /* every process creates the same names */
} scenario;

static void run(const scenario *sc)
{
	char *ds = tu_dir("ds"), *uri = tu_uri(ds), *states[MAX_PROCS], *res[MAX_PROCS];
	int rounds = env_int("VSM_TEST_ROUNDS", 5), names = env_int("VSM_TEST_NAMES", 200);
	name_set expect = {0};
	int r, p, lost_total = 0, dup_total = 0, orphan_total = 0;

	/* Check's own process for this test: checks run where CHECK says. */
	ck_assert_int_eq(enter_netns("CHECK"), 0);

	for (p = 0; p < sc->procs; p++) {
		char sub[32];
		vsm_ctx *ctx;

		snprintf(sub, sizeof(sub), "state%d", p);
		states[p] = sc->shared_state && p ? strdup(states[0]) : tu_dir(sub);
		ck_assert(asprintf(&res[p], "%s/result", states[p]) > 0);
		if (p == 0 || !sc->shared_state) {
			char who[16];
			pid_t pid;
			int st = 0;

			/* In the process's own namespace, as its host sees it. */
			snprintf(who, sizeof(who), "%d", p);
			if ((pid = fork()) == 0) {
				vsm_ctx_opts o = VSM_CTX_OPTS_INIT;

				o.state_dir = states[p];
				if (enter_netns(who) < 0 || vsm_ctx_open(&ctx, &o) < 0 ||
				    vsm_datastore_add(ctx, "ds", uri_for(who, uri),
						      VSM_DATASTORE_ADD_CREATE) < 0) {
					fprintf(stderr, "datastore add: %s\n",
						vsm_error_last() ? vsm_error_last()->message : "?");
					_exit(1);
				}
				vsm_ctx_free(ctx);
				_exit(0);
			}
			ck_assert_int_eq(waitpid(pid, &st, 0), pid);
			ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "datastore add failed");
		}
	}
	for (r = 0; r < rounds; r++) {
		pid_t pids[MAX_PROCS];
		int created_by[MAX_PROCS] = {0}, lost = 0, dup = 0, files;
		vsm_container **list = NULL;
		size_t n = 0, i;
		char *fresh, sub[32];
		vsm_ctx *ctx;

		int done[2], go[2];
		char buf[MAX_PROCS];

		ck_assert_int_eq(pipe(done), 0);
		ck_assert_int_eq(pipe(go), 0);
		for (p = 0; p < sc->procs; p++) {
			char prefix[32], out[4096];

			snprintf(prefix, sizeof(prefix), "r%d-%c", r, sc->same_names ? 'x' : 'a' + p);
			snprintf(out, sizeof(out), "%s.%d", res[0], p);
			pids[p] = fork();
			ck_assert_int_ge(pids[p], 0);
			if (pids[p] == 0)
				_exit(child(states[p], out, prefix, names, p, done[1], go[0]));
		}
		for (p = 0; p < sc->procs; p++)
			ck_assert_int_eq(read(done[0], buf, 1), 1);
		ck_assert_int_eq(write(go[1], "gggg", (size_t)sc->procs), sc->procs);
		close(done[0]);
		close(done[1]);
		close(go[0]);
		close(go[1]);
		for (p = 0; p < sc->procs; p++) {
			int st = 0;

			ck_assert_int_eq(waitpid(pids[p], &st, 0), pids[p]);
			ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
				      "%s: process %d ended with status 0x%x", sc->what, p, st);
		}
		/* What the processes were told. */
		{
			name_set won = {0};

			/* Every create first, then every destroy: a process may
			 * destroy what another created. */
			for (int pass = 0; pass < 2; pass++) {
				for (p = 0; p < sc->procs; p++) {
					char out[4096], line[1024], kind, nm[64];
					int rc;
					FILE *f;

					snprintf(out, sizeof(out), "%s.%d", res[0], p);
					ck_assert_ptr_nonnull(f = fopen(out, "r"));
					while (fgets(line, sizeof(line), f)) {
						ck_assert_msg(sscanf(line, "%c %63s %d", &kind, nm,
								     &rc) == 3, "bad line '%s'", line);
						ck_assert_msg(kind == 'C' || kind == 'L', "%s: %s",
							      sc->what, line);
						if (kind == 'C' && pass == 0) {
							ck_assert_msg(rc == 0 || (sc->same_names &&
										  rc == -VSM_EEXISTS),
								      "%s: create %s: %s", sc->what,
								      nm, line);
							if (rc == 0) {
								set_add(&won, nm);
								set_add(&expect, nm);
								created_by[p]++;
							}
						} else if (kind == 'L' && pass == 1 && rc == 0) {
							set_del(&expect, nm);
						} else if (kind == 'L' && pass == 1) {
							/* Another process destroyed it first. */
							ck_assert_msg(sc->same_names &&
								      rc == -VSM_ENOTFOUND,
								      "%s: destroy %s: %s", sc->what,
								      nm, line);
						}
					}
					fclose(f);
				}
			}
			/* Same names: exactly one process got success for each. */
			qsort(won.names, won.n, sizeof(char *), by_str);
			for (i = 1; i < won.n; i++)
				ck_assert_msg(strcmp(won.names[i - 1], won.names[i]) != 0,
					      "%s: two processes were told they created '%s'",
					      sc->what, won.names[i]);
			ck_assert_int_eq(won.n, sc->same_names ? (size_t)names
							       : (size_t)names * sc->procs);
			set_free(&won);
		}
		/* What a host that never saw any of it finds. */
		snprintf(sub, sizeof(sub), "fresh%d", r);
		fresh = tu_dir(sub);
		ctx = tu_ctx(fresh);
		ck_vsm(vsm_datastore_add(ctx, "ds", uri_for("CHECK", uri), 0));
		ck_vsm(vsm_container_list(&list, &n, ctx, "ds"));
		qsort(expect.names, expect.n, sizeof(char *), by_str);
		{
			size_t a = 0, b = 0;

			/* Both sorted by name (the list comes back sorted). */
			while (a < expect.n || b < n) {
				int c = a == expect.n ? 1 : b == n ? -1 :
					strcmp(expect.names[a], vsm_container_name(list[b]));

				if (b > 0 && b < n && !strcmp(vsm_container_name(list[b - 1]),
							      vsm_container_name(list[b]))) {
					dup++;
					b++;
				} else if (c < 0) {
					lost++;
					a++;
				} else if (c > 0) {
					ck_abort_msg("%s: '%s' listed but never created (or destroyed)",
						     sc->what, vsm_container_name(list[b]));
				} else {
					a++;
					b++;
				}
			}
		}
		vsm_container_list_free(list, n);
		/* Devices no record names: on a directory, counted as files (each
		 * container has its root device and its state area); elsewhere
		 * by the datastore check, with no grace. */
		if (!getenv("VSM_TEST_URI_CHECK")) {
			files = tu_count_files(ds);
			orphan_total += files - 2 * (int)expect.n;
		} else {
			vsm_check_opts co = VSM_CHECK_OPTS_INIT;
			vsm_check_report *rep = NULL;

			co.grace_seconds = 0;
			ck_vsm(vsm_datastore_check(&rep, ctx, "ds", &co));
			files = (int)vsm_check_report_devices(rep);
			orphan_total += (int)vsm_check_report_orphan_count(rep);
			vsm_check_report_free(rep);
		}
		vsm_ctx_free(ctx);
		tu_rmrf(fresh);
		free(fresh);
		lost_total += lost;
		dup_total += dup;
		printf("%s round %d: %zu containers expected, lost %d, duplicated %d, "
		       "device files %d\n", sc->what, r, expect.n, lost, dup, files);
	}
	printf("%s: %d rounds x %d processes x %d names: lost %d, duplicated %d, "
	       "orphans %d\n", sc->what, rounds, sc->procs, names, lost_total, dup_total,
	       orphan_total);
	ck_assert_int_eq(lost_total, 0);
	ck_assert_int_eq(dup_total, 0);
	ck_assert_int_eq(orphan_total, 0);
	/* Leave the datastore empty for the next scenario (an iSCSI target
	 * has a few hundred LUNs, not more). */
	if (getenv("VSM_TEST_URI_CHECK")) {
		char *st = tu_dir("cleanup");
		vsm_ctx *ctx = tu_ctx(st);
		size_t i;

		ck_vsm(vsm_datastore_add(ctx, "ds", uri_for("CHECK", uri), 0));
		for (i = 0; i < expect.n; i++) {
			vsm_container *c = NULL;

			ck_vsm(vsm_container_lookup(&c, ctx, "ds", expect.names[i]));
			ck_vsm(vsm_container_destroy(c, 0));
			vsm_container_free(c);
		}
		vsm_ctx_free(ctx);
		free(st);
	}
	set_free(&expect);
	for (p = 0; p < sc->procs; p++) {
		free(states[p]);
		free(res[p]);
	}
	free(uri);
	free(ds);
}

START_TEST(two_hosts_distinct_names)
{
	scenario sc = { "two hosts, distinct names", 2, false, false };

	run(&sc);
}
END_TEST

START_TEST(two_hosts_same_names)
{
	scenario sc = { "two hosts, same names", 2, false, true };

	run(&sc);
}
END_TEST

START_TEST(four_processes_one_host)
{
	scenario sc = { "four processes of one host", 4, true, false };

	run(&sc);
}
END_TEST

START_TEST(four_processes_same_names)
{
	scenario sc = { "four processes of one host, same names", 4, true, true };

	run(&sc);
}
END_TEST

/*
 * Several processes that use a brand-new state directory at the same moment
 * each make the directory's node id if it is missing; every one of them
 * must come away with the same whole id and create its container (one of
 * them once read the id file between its creation and its write, and failed
 * with "does not hold a node id").
 */
#define FIRST_USE_PROCS 6

START_TEST(first_use_of_state_dir)
{
	char *ds = tu_dir("ds-first"), *uri = tu_uri(ds);
	int rounds = env_int("VSM_TEST_ROUNDS", 5) * 4, r, p, failed = 0;
	char msg[512] = "";

	for (r = 0; r < rounds; r++) {
		char state[64], *st;
		int go[2];
		pid_t pids[FIRST_USE_PROCS];

		snprintf(state, sizeof(state), "state-first.%d", r);
		st = tu_dir(state);
		{
			/* Adding a datastore makes no node id; the first change does. */
			vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
			vsm_ctx *ctx = NULL;

			o.state_dir = st;
			ck_assert_int_eq(vsm_ctx_open(&ctx, &o), 0);
			ck_assert_msg(vsm_datastore_add(ctx, "ds", uri, r ? 0 : VSM_DATASTORE_ADD_CREATE) == 0,
				      "%s", vsm_error_last()->message);
			vsm_ctx_free(ctx);
		}
		ck_assert_int_eq(pipe(go), 0);
		for (p = 0; p < FIRST_USE_PROCS; p++) {
			pids[p] = fork();
			ck_assert_int_ge(pids[p], 0);
			if (pids[p] == 0) {
				vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
				vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
				const vsm_device_spec *devs[1] = { &d };
				vsm_container_opts co = VSM_CONTAINER_OPTS_INIT;
				vsm_ctx *ctx = NULL;
				char name[64], c;
				int rc;

				close(go[1]);
				/* All start together, when the parent closes the pipe. */
				if (read(go[0], &c, 1) != 0)
					_exit(3);
				o.state_dir = st;
				if (vsm_ctx_open(&ctx, &o) < 0) {
					fprintf(stderr, "first-use %d/%d: %s\n", r, p, vsm_error_last()->message);
					_exit(1);
				}
				d.name = "root";
				d.size = 1 << 20;
				co.devices = devs;
				co.n_devices = 1;
				co.flags = VSM_CONTAINER_CREATE_THIN;
				snprintf(name, sizeof(name), "f%d-%d", r, p);
				rc = vsm_container_create(NULL, ctx, "ds", name, &co);
				if (rc < 0)
					fprintf(stderr, "first-use %s: %s\n", name, vsm_error_last()->message);
				vsm_ctx_free(ctx);
				_exit(rc < 0 ? 1 : 0);
			}
		}
		close(go[0]);
		close(go[1]);
		for (p = 0; p < FIRST_USE_PROCS; p++) {
			int status = 0;

			ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				failed++;
				snprintf(msg, sizeof(msg), "round %d process %d: status %#x", r, p, status);
			}
		}
		free(st);
	}
	ck_assert_msg(failed == 0, "%d of %d first uses failed (last: %s)", failed,
		      rounds * FIRST_USE_PROCS, msg);
	free(uri);
	free(ds);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("concurrency");
	struct { const char *name; const TTest *test; } cases[] = {
		{ "distinct", two_hosts_distinct_names },
		{ "same", two_hosts_same_names },
		{ "four", four_processes_one_host },
		{ "four-same", four_processes_same_names },
		{ "first-use", first_use_of_state_dir },
	};
	size_t i;

	/* One case each, so that CK_RUN_CASE can pick scenarios. */
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
		tcase_set_timeout(tc, 900);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return tu_run(s);
}
