/*
 * Suite "migrate": offline migration of a container between two file
 * datastores (vsm_container_migrate), with qemu-img as the oracle:
 * data and checkpoints arrive, refusals change nothing, a cancel at each
 * progress point rolls back, and SIGKILL at random points of many
 * migrations leaves each container exactly once, intact, nothing
 * orphaned.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "workflow.h"
#include <vsm/migrate.h>

#define DEV_SIZE (4u << 20)
#define NDEV 2
#define KILL_ROUNDS 50

static char *state, *ds1dir, *ds2dir, *refdir;
static vsm_ctx *ctx;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char *cmd = NULL, *full = NULL;
	va_list ap;
	int st;

	va_start(ap, fmt);
	ck_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	ck_assert(asprintf(&full, "( %s ) >/dev/null 2>&1", cmd) > 0);
	st = system(full);
	free(cmd);
	free(full);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void setup(void)
{
	char *u;

	state = tu_dir("state");
	ds1dir = tu_dir("ds1");
	ds2dir = tu_dir("ds2");
	refdir = tu_dir("ref");
	ctx = tu_ctx(state);
	u = tu_uri(ds1dir);
	ck_vsm(vsm_datastore_add(ctx, "ds1", u, 0));
	free(u);
	u = tu_uri(ds2dir);
	ck_vsm(vsm_datastore_add(ctx, "ds2", u, 0));
	free(u);
}

static void teardown(void)
{
	vsm_ctx_free(ctx);
	ctx = NULL;
	free(state);
	free(ds1dir);
	free(ds2dir);
	free(refdir);
}

static vsm_container *make(const char *name)
{
	vsm_device_spec specs[NDEV];
	const vsm_device_spec *ptrs[NDEV];
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	static const char *names[] = { "d0", "d1" };
	vsm_container *c = NULL;
	size_t i;

	for (i = 0; i < NDEV; i++) {
		vsm_device_spec d = VSM_DEVICE_SPEC_INIT;

		d.name = names[i];
		d.size = DEV_SIZE;
		d.format = i % 2 ? VSM_FORMAT_QCOW2 : VSM_FORMAT_RAW;
		specs[i] = d;
		ptrs[i] = &specs[i];
	}
	opts.devices = ptrs;
	opts.n_devices = NDEV;
	opts.flags = VSM_CONTAINER_CREATE_THIN;
	ck_vsm(vsm_container_create(&c, ctx, "ds1", name, &opts));
	return c;
}

static char *dir_of(const char *ds)
{
	return !strcmp(ds, "ds1") ? ds1dir : ds2dir;
}

static char *top_path(vsm_container *c, size_t i)
{
	char *p = NULL;

	ck_vsm(vsm_container_refresh(c));
	ck_assert(asprintf(&p, "%s/%s", dir_of(vsm_container_datastore(c)),
			   vsm_device_key(vsm_container_device(c, i))) > 0);
	return p;
}

static char *ref_path(const char *name, const char *tag, size_t i)
{
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/%s.%s.%zu.raw", refdir, name, tag, i) > 0);
	return p;
}

/* Write a pattern into every device of @c and into the references
 * "NAME.cur.I". */
static void scribble(vsm_container *c, unsigned int seed)
{
	uint8_t buf[70000];
	size_t i, j;
	int k;

	for (i = 0; i < NDEV; i++) {
		char *p = top_path(c, i), *ref = ref_path(vsm_container_name(c), "cur", i);
		vsm_image *img = NULL;
		int fd = open(ref, O_RDWR | O_CREAT, 0644);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(ftruncate(fd, DEV_SIZE), 0);
		ck_vsm(vsm_image_open(&img, p, NULL));
		for (k = 0; k < 3; k++) {
			uint64_t off = (uint64_t)(seed * 7919u + (unsigned)k * 104729u + i * 4099u) %
				       (DEV_SIZE - sizeof(buf));

			off &= ~(uint64_t)511;
			for (j = 0; j < sizeof(buf); j++)
				buf[j] = (uint8_t)(seed * 31 + (unsigned)k * 17 + j * 13 + i);
			ck_vsm(vsm_image_write(img, buf, sizeof(buf), off, 0));
			ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), (off_t)off),
					 (ssize_t)sizeof(buf));
		}
		ck_vsm(vsm_image_close(img));
		close(fd);
		free(p);
		free(ref);
	}
}

/* Keep the current references as @tag. */
static void ref_keep(vsm_container *c, const char *tag)
{
	size_t i;

	for (i = 0; i < NDEV; i++) {
		char *a = ref_path(vsm_container_name(c), "cur", i);
		char *b = ref_path(vsm_container_name(c), tag, i);

		ck_assert_int_eq(sh("cp --sparse=always '%s' '%s'", a, b), 0);
		free(a);
		free(b);
	}
}

/* Every device of @c reads like its references @tag (qemu-img compare). */
static void same_as(vsm_container *c, const char *tag)
{
	size_t i;

	for (i = 0; i < NDEV; i++) {
		char *top = top_path(c, i), *ref = ref_path(vsm_container_name(c), tag, i);
		const char *fmt = vsm_device_format(vsm_container_device(c, i)) ==
				  VSM_FORMAT_QCOW2 ? "qcow2" : "raw";

		ck_assert_msg(sh("qemu-img compare -f %s -F raw '%s' '%s'", fmt, top, ref) == 0,
			      "container '%s' device %zu on '%s' differs from '%s'",
			      vsm_container_name(c), i, vsm_container_datastore(c), tag);
		free(top);
		free(ref);
	}
}

/* qemu-img check finds every qcow2 file of @dir clean. */
static void clean_in(const char *dir)
{
	ck_assert_msg(sh("for f in '%s'/*.qcow2; do [ -e \"$f\" ] || continue; "
			 "qemu-img check -f qcow2 \"$f\" || exit 1; done", dir) == 0,
		      "a qcow2 file in '%s' is not clean", dir);
}

static void no_orphans(const char *ds)
{
	vsm_check_report *r = NULL;
	vsm_check_opts o = VSM_CHECK_OPTS_INIT;

	o.grace_seconds = 0;
	ck_vsm(vsm_datastore_check(&r, ctx, ds, &o));
	ck_assert_msg(vsm_check_report_orphan_count(r) == 0, "datastore '%s' has %zu orphans, "
		      "first '%s'", ds, vsm_check_report_orphan_count(r),
		      vsm_orphan_key(vsm_check_report_orphan(r, 0)));
	vsm_check_report_free(r);
}

static void ckpt(vsm_container *c, const char *name)
{
	ck_vsm(vsm_checkpoint_create(NULL, c, name, NULL));
}

/* A container with checkpoints c1, c2 and data written after each. */
static vsm_container *make_full(const char *name, unsigned int seed)
{
	vsm_container *c = make(name);

	scribble(c, seed);
	ref_keep(c, "c1");
	ckpt(c, "c1");
	scribble(c, seed + 1);
	ref_keep(c, "c2");
	ckpt(c, "c2");
	scribble(c, seed + 2);
	return c;
}

static int n_files(const char *dir)
{
	return tu_count_files(dir);
}

/* --- tests --- */

START_TEST(file_to_file)
{
	vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;
	vsm_migrate_stats st;
	vsm_container *c = make_full("vm", 5), *l = NULL;
	vsm_checkpoint **cps = NULL;
	vsm_revert_opts ro = VSM_REVERT_OPTS_INIT;
	const char *old_ds = vsm_container_datastore(c);
	char uuid[64];
	size_t n;

	snprintf(uuid, sizeof(uuid), "%s", vsm_container_uuid(c));
	ck_assert_int_gt(n_files(ds1dir), 0);
	o.stats = &st;
	ck_vsm(vsm_container_migrate(c, "ds2", &o));
	/* The handle follows; what it handed out before stays valid. */
	ck_assert_str_eq(old_ds, "ds1");
	ck_assert_str_eq(vsm_container_datastore(c), "ds2");
	ck_assert_str_eq(vsm_container_uuid(c), uuid);
	ck_assert_str_eq(vsm_container_name(c), "vm");
	ck_assert_uint_ge(st.layers, 4);
	ck_assert_uint_gt(st.bytes_written, 0);
	ck_assert_uint_ge(st.bytes_verified, (uint64_t)NDEV * DEV_SIZE);
	same_as(c, "cur");
	ck_assert_int_eq(n_files(ds1dir), 0);
	/* Lookups find it once, on ds2. */
	ck_vsm(vsm_container_lookup(&l, ctx, NULL, "vm"));
	ck_assert_str_eq(vsm_container_datastore(l), "ds2");
	vsm_container_free(l);
	ck_vsm(vsm_container_lookup_by_uuid(&l, ctx, uuid));
	ck_assert_str_eq(vsm_container_datastore(l), "ds2");
	vsm_container_free(l);
	ck_assert_int_eq(vsm_container_lookup(&l, ctx, "ds1", "vm"), -VSM_ENOTFOUND);
	/* The tree came along. */
	ck_vsm(vsm_checkpoint_list(&cps, &n, c));
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(vsm_checkpoint_name(cps[0]), "c1");
	ck_assert_str_eq(vsm_checkpoint_name(cps[1]), "c2");
	ck_assert_str_eq(vsm_checkpoint_parent(cps[1]), "c1");
	ck_assert(vsm_checkpoint_is_current(cps[1]));
	vsm_checkpoint_list_free(cps, n);
	clean_in(ds2dir);
	no_orphans("ds1");
	no_orphans("ds2");
	/* And reverts on the target. */
	ck_vsm(vsm_checkpoint_revert(c, "c1", &ro));
	same_as(c, "c1");
	ck_vsm(vsm_checkpoint_revert(c, "c2", &ro));
	same_as(c, "c2");
	/* And back again. */
	ck_vsm(vsm_container_migrate(c, "ds1", NULL));
	same_as(c, "c2");
	ck_assert_int_eq(n_files(ds2dir), 0);
	ck_vsm(vsm_checkpoint_revert(c, "c1", &ro));
	same_as(c, "c1");
	no_orphans("ds1");
	vsm_container_free(c);
}
END_TEST

START_TEST(refusals)
{
	vsm_container *c = make_full("vm", 9), *other = NULL;
	int f1, f2;

	f1 = n_files(ds1dir);
	f2 = n_files(ds2dir);
	ck_vsm_refused(vsm_container_migrate(c, "ds1", NULL), VSM_EINVAL, "already");
	ck_vsm_refused(vsm_container_migrate(c, "nowhere", NULL), VSM_ENOTFOUND, "nowhere");
	ck_vsm(vsm_host_add(ctx, "h1", NULL));
	ck_vsm(vsm_host_link(ctx, "h1", "ds1", 0));
	ck_vsm(vsm_attach(c, "h1", 0));
	ck_vsm_refused(vsm_container_migrate(c, "ds2", NULL), VSM_EBUSY, "attached");
	ck_vsm(vsm_detach(c, 0));
	{
		vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;

		o.flags = 0x80;
		ck_vsm_refused(vsm_container_migrate(c, "ds2", &o), VSM_EINVAL, "flags");
		o.flags = 0;
		o.version = 99;
		ck_vsm_refused(vsm_container_migrate(c, "ds2", &o), VSM_EVERSION, "version");
	}
	ck_assert_int_eq(n_files(ds1dir), f1);
	ck_assert_int_eq(n_files(ds2dir), f2);
	/* The name is taken on the target. */
	{
		vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
		const vsm_device_spec *p = &d;
		vsm_container_opts co = VSM_CONTAINER_OPTS_INIT;

		d.name = "x";
		d.size = 1 << 20;
		co.devices = &p;
		co.n_devices = 1;
		co.flags = VSM_CONTAINER_CREATE_THIN;
		ck_vsm(vsm_container_create(&other, ctx, "ds2", "vm", &co));
	}
	f2 = n_files(ds2dir);
	ck_vsm_refused(vsm_container_migrate(c, "ds2", NULL), VSM_EEXISTS, "already exists");
	ck_assert_int_eq(n_files(ds1dir), f1);
	ck_assert_int_eq(n_files(ds2dir), f2);
	ck_assert_str_eq(vsm_container_datastore(c), "ds1");
	same_as(c, "cur");
	ck_assert_uint_eq(vsm_container_device_count(other), 1);
	vsm_container_free(other);
	vsm_container_free(c);
}
END_TEST

static int calls, cancel_at;

static int cancel_cb(uint64_t done, uint64_t total, void *payload)
{
	(void)payload;
	ck_assert_uint_le(done, total);
	return ++calls == cancel_at ? 1 : 0;
}

START_TEST(cancel_each_point)
{
	vsm_container *c = make_full("vm", 13), *l = NULL;
	vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;
	int f1 = n_files(ds1dir), rc;

	o.progress = cancel_cb;
	for (cancel_at = 1;; cancel_at++) {
		calls = 0;
		rc = vsm_container_migrate(c, "ds2", &o);
		if (rc == 0)
			break;
		ck_assert_msg(rc == -VSM_ECANCELED, "cancel at %d: %d %s", cancel_at, rc, tu_msg());
		ck_assert_int_eq(calls, cancel_at);
		ck_assert_str_eq(vsm_container_datastore(c), "ds1");
		ck_assert_int_eq(n_files(ds1dir), f1);
		ck_assert_int_eq(n_files(ds2dir), 0);
		ck_vsm(vsm_container_lookup(&l, ctx, NULL, "vm"));
		ck_assert_str_eq(vsm_container_datastore(l), "ds1");
		vsm_container_free(l);
		same_as(c, "cur");
	}
	/* Every point was tried: export, import and verify report. */
	ck_assert_int_ge(cancel_at, 4);
	ck_assert_int_eq(calls, cancel_at - 1);
	ck_assert_str_eq(vsm_container_datastore(c), "ds2");
	same_as(c, "cur");
	ck_assert_int_eq(n_files(ds1dir), 0);
	no_orphans("ds2");
	vsm_container_free(c);
}
END_TEST

/* --- SIGKILL at random points --- */

static int kill_step, kill_tick, seen_steps, seen_ticks;

static void kill_hook(const char *action)
{
	(void)action;
	if (++seen_steps == kill_step)
		raise(SIGKILL);
}

static int kill_cb(uint64_t done, uint64_t total, void *payload)
{
	(void)done;
	(void)total;
	(void)payload;
	if (++seen_ticks == kill_tick)
		raise(SIGKILL);
	return 0;
}

/* In a child: open a context, migrate @name from @from to @to, killed
 * at journal step kill_step or progress report kill_tick (0: never).
 * Returns whether it was killed. */
static bool migrate_killed(const char *name, const char *to)
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		vsm_ctx *child;
		vsm_ctx_opts co = VSM_CTX_OPTS_INIT;
		vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;
		vsm_container *c = NULL;

		co.state_dir = state;
		if (vsm_ctx_open(&child, &co) < 0 || vsm_container_lookup(&c, child, NULL, name) < 0)
			_exit(3);
		seen_steps = seen_ticks = 0;
		vsm__wf_test_hook = kill_hook;
		o.progress = kill_cb;
		_exit(vsm_container_migrate(c, to, &o) == 0 ? 0 : 4);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st)) {
		ck_assert_int_eq(WTERMSIG(st), SIGKILL);
		return true;
	}
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child exit %d",
		      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return false;
}

static int counted;

static void count_hook(const char *action)
{
	(void)action;
	counted++;
}

START_TEST(sigkill_rounds)
{
	unsigned int seed = (unsigned int)getpid();
	int round, killed = 0, on_target = 0, steps;
	char name[32];

	time_t t0 = time(NULL);

	srand(seed);
	/* How many kill points (journal steps and the points of the
	 * committed half) one migration passes, counted on a first one. */
	{
		vsm_container *c = make_full("probe", 7);

		counted = 0;
		vsm__wf_test_hook = count_hook;
		ck_vsm(vsm_container_migrate(c, "ds2", NULL));
		vsm__wf_test_hook = NULL;
		steps = counted;
		vsm_container_free(c);
		ck_assert_int_ge(steps, 6);
	}
	fprintf(stderr, "sigkill_rounds: seed %u, %d kill points\n", seed, steps);
	for (round = 0; round < KILL_ROUNDS; round++) {
		vsm_container *c, *l = NULL;
		vsm_container **all = NULL;
		vsm_checkpoint **cps = NULL;
		size_t n, i, found = 0;
		char uuid[64];

		snprintf(name, sizeof(name), "vm%d", round);
		c = make_full(name, 20u + (unsigned)round * 3u);
		snprintf(uuid, sizeof(uuid), "%s", vsm_container_uuid(c));
		vsm_container_free(c);
		/* Even rounds die at each kill point in turn (one past the
		 * last lets the migration finish), odd ones at a random
		 * progress report. */
		kill_step = kill_tick = 0;
		if (round % 2 == 0)
			kill_step = 1 + (round / 2) % (steps + 1);
		else
			kill_tick = 1 + rand() % 12;
		killed += migrate_killed(name, "ds2");
		/* A new context: recovery finishes or rolls back. */
		vsm_ctx_free(ctx);
		ctx = tu_ctx(state);
		ck_vsm(vsm_container_list(&all, &n, ctx, NULL));
		for (i = 0; i < n; i++)
			if (!strcmp(vsm_container_uuid(all[i]), uuid))
				found++;
		vsm_container_list_free(all, n);
		ck_assert_msg(found == 1, "round %d (step %d, tick %d): container listed %zu times",
			      round, kill_step, kill_tick, found);
		ck_vsm(vsm_container_lookup(&l, ctx, NULL, name));
		ck_assert_str_eq(vsm_container_uuid(l), uuid);
		on_target += !strcmp(vsm_container_datastore(l), "ds2");
		same_as(l, "cur");
		ck_vsm(vsm_checkpoint_list(&cps, &n, l));
		ck_assert_uint_eq(n, 2);
		vsm_checkpoint_list_free(cps, n);
		vsm_container_free(l);
		no_orphans("ds1");
		no_orphans("ds2");
		ck_assert_msg(sh("ls '%s'/migrate-* 2>/dev/null | grep -q .", state) != 0,
			      "round %d: a temporary bundle was left", round);
		if (round % 10 == 9)
			fprintf(stderr, "sigkill_rounds: %d rounds done, %ld s\n", round + 1,
				(long)(time(NULL) - t0));
	}
	fprintf(stderr, "sigkill_rounds: %d of %d killed, %d ended on the target\n", killed,
		KILL_ROUNDS, on_target);
	/* Both outcomes happened, or the test proved nothing. */
	ck_assert_int_gt(killed, 0);
	ck_assert_int_gt(on_target, 0);
	ck_assert_int_lt(on_target, KILL_ROUNDS);
	clean_in(ds1dir);
	clean_in(ds2dir);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("migrate");
	TCase *tc = tcase_create("offline");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, file_to_file);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, cancel_each_point);
	suite_add_tcase(s, tc);
	/* Many child processes and new contexts: a case of its own, with
	 * room for slow builds (sanitizers). */
	tc = tcase_create("kill");
	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 2400);
	tcase_add_test(tc, sigkill_rounds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
