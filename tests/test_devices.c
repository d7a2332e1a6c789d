/*
 * Suite "devices": vsm_device_add, vsm_device_remove and vsm_device_resize
 * on an existing container. Each rule of container.h is checked, a
 * refusal leaves the files and the record as they were, qemu-img reads
 * what was made, two hosts adding at once lose nothing, and a process
 * killed mid-way leaves the device either fully there or without trace.
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
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

static vsm_ctx *open_ctx(void)
{
	vsm_ctx *ctx = tu_ctx(state);

	ck_vsm(fault_register(ctx));
	ck_assert_int_ge(vsm_ctx_recover(ctx, NULL, 0), 0);
	return ctx;
}

/* A context with datastore "ds1", hosts h1 (linked) and container "web"
 * with one raw device "d0" of 1 MiB. */
static vsm_ctx *world(vsm_container **c)
{
	vsm_ctx *ctx = open_ctx();

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	ck_vsm(vsm_host_add(ctx, "h1", NULL));
	ck_vsm(vsm_host_link(ctx, "h1", "ds1", 0));
	ck_vsm(tu_create(c, ctx, "ds1", "web", 1, 1 << 20));
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

static vsm_device_spec spec(const char *name, uint64_t size, int format)
{
	vsm_device_spec s = VSM_DEVICE_SPEC_INIT;

	s.name = name;
	s.size = size;
	s.format = format;
	return s;
}

/* The container as a fresh lookup sees it: "name:size:format:deployed"
 * per device, joined by spaces (malloc'd). */
static char *devices_of(vsm_ctx *ctx, const char *name)
{
	vsm_container *c = NULL;
	char *out = strdup(""), *more;

	ck_vsm(vsm_container_lookup(&c, ctx, "ds1", name));
	for (size_t i = 0; i < vsm_container_device_count(c); i++) {
		const vsm_device *d = vsm_container_device(c, i);

		ck_assert(asprintf(&more, "%s%s:%llu:%s:%d", out, vsm_device_name(d),
				   (unsigned long long)vsm_device_size(d),
				   vsm_format_name(vsm_device_format(d)),
				   vsm_device_locator(d) != NULL) > 0);
		free(out);
		out = more;
		if (i + 1 < vsm_container_device_count(c)) {
			ck_assert(asprintf(&more, "%s ", out) > 0);
			free(out);
			out = more;
		}
	}
	vsm_container_free(c);
	return out;
}

/* Path of device @name of @c in the datastore directory (malloc'd). */
static char *dev_path(const vsm_container *c, const char *name)
{
	const vsm_device *d = vsm_container_device_by_name(c, name);
	char *p = NULL;

	ck_assert_ptr_nonnull(d);
	ck_assert(asprintf(&p, "%s/%s", dsdir, vsm_device_key(d)) > 0);
	return p;
}

static int sh(const char *fmt, const char *path)
{
	char *cmd = NULL;
	int rc;

	ck_assert(asprintf(&cmd, fmt, path) > 0);
	rc = system(cmd);
	free(cmd);
	return rc;
}

/* The virtual size qemu-img reads from the image at @path. */
static unsigned long long qemu_size(const char *path)
{
	char *cmd = NULL, line[256];
	unsigned long long v = 0;
	FILE *f;

	ck_assert(asprintf(&cmd, "qemu-img info --output=json '%s'", path) > 0);
	ck_assert_ptr_nonnull(f = popen(cmd, "r"));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " \"virtual-size\": %llu", &v) == 1)
			break;
	pclose(f);
	free(cmd);
	return v;
}

static void ck_qemu_clean(const char *path)
{
	ck_assert_msg(sh("qemu-img check -q '%s'", path) == 0, "qemu-img check %s", path);
}

/* The state of disk and record a refusal must not change. */
typedef struct {
	char *devs;
	int files;
} snap;

static snap snap_take(vsm_ctx *ctx)
{
	snap s = { devices_of(ctx, "web"), tu_count_files(dsdir) };

	return s;
}

static void snap_same(vsm_ctx *ctx, snap *s)
{
	char *now = devices_of(ctx, "web");

	ck_assert_str_eq(now, s->devs);
	ck_assert_int_eq(tu_count_files(dsdir), s->files);
	ck_assert_int_eq(journal_rows(), 0);
	free(now);
}

/* --- add --- */

START_TEST(add_detached_and_attached)
{
	vsm_container *c = NULL;
	vsm_ctx *ctx = world(&c);
	vsm_device_spec s = spec("data", 2 << 20, VSM_FORMAT_RAW);
	const char *d0 = vsm_device_name(vsm_container_device(c, 0));
	vsm_locator *loc = NULL;
	char *devs, *p;
	struct stat st;

	ck_vsm(vsm_device_add(c, &s, 0));
	ck_assert_uint_eq(vsm_container_device_count(c), 2);
	ck_assert_str_eq(d0, "d0"); /* a getter's pointer outlives the update */
	ck_assert_int_eq(tu_count_files(dsdir), 3);
	p = dev_path(c, "data");
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_size, 2 << 20);
	free(p);
	/* qcow2, while attached: it starts undeployed. */
	ck_vsm(vsm_attach(c, "h1", 0));
	s = spec("q", 4 << 20, VSM_FORMAT_QCOW2);
	ck_vsm(vsm_device_add(c, &s, 0));
	ck_assert_ptr_null(vsm_device_locator(vsm_container_device_by_name(c, "q")));
	p = dev_path(c, "q");
	ck_qemu_clean(p);
	ck_assert_uint_eq(qemu_size(p), 4 << 20);
	free(p);
	devs = devices_of(ctx, "web");
	ck_assert_str_eq(devs, "d0:1048576:raw:0 data:2097152:raw:0 q:4194304:qcow2:0");
	free(devs);
	ck_vsm(vsm_device_deploy(&loc, c, "q", NULL));
	ck_assert_ptr_nonnull(vsm_locator_path(loc));
	vsm_locator_free(loc);
	ck_assert_int_eq(journal_rows(), 0);
	vsm_container_free(c);
	vsm_ctx_free(ctx);
}
END_TEST

START_TEST(add_refusals_change_nothing)
{
	vsm_container *c = NULL;
	vsm_ctx *ctx = world(&c);
	vsm_device_spec s;
	snap before = snap_take(ctx);

	s = spec("bad/name", 1 << 20, VSM_FORMAT_RAW);
	ck_vsm_refused(vsm_device_add(c, &s, 0), VSM_EINVAL, "bad/name");
	s = spec("d0", 1 << 20, VSM_FORMAT_RAW);
	ck_vsm_refused(vsm_device_add(c, &s, 0), VSM_EEXISTS, "'d0' already exists");
	s = spec("zero", 0, VSM_FORMAT_RAW);
	ck_vsm_refused(vsm_device_add(c, &s, 0), VSM_EINVAL, "size 0");
	s = spec("fmt", 1 << 20, 7);
	ck_vsm_refused(vsm_device_add(c, &s, 0), VSM_EINVAL, "unknown format");
	s = spec("based", 1 << 20, VSM_FORMAT_RAW);
	s.base = "golden.img";
	ck_vsm_refused(vsm_device_add(c, &s, 0), VSM_EINVAL, "must be qcow2");
	s = spec("nobase", 1 << 20, VSM_FORMAT_QCOW2);
	s.base = "no-such-image";
	ck_assert_int_lt(vsm_device_add(c, &s, 0), 0);
	s = spec("huge", UINT64_C(1) << 50, VSM_FORMAT_RAW);
	ck_vsm_refused(vsm_device_add(c, &s, 0), VSM_ENOSPC, "thin");
	ck_vsm_refused(vsm_device_add(c, &s, 1u << 5), VSM_EINVAL, "unknown flags");
	s.version = 99;
	ck_vsm_refused(vsm_device_add(c, &s, 0), VSM_EVERSION, "version");
	/* The backend fails to make it: rolled back, nothing left. */
	s = spec("eio", 1 << 20, VSM_FORMAT_QCOW2);
	fault.write_fail_at = fault.writes + 1; /* formatting the qcow2 header */
	ck_assert_int_lt(vsm_device_add(c, &s, 0), 0);
	fault.write_fail_at = 0;
	ck_assert_uint_eq(vsm_container_device_count(c), 1);
	snap_same(ctx, &before);
	/* Thin: larger than the free space is fine. */
	s = spec("huge", UINT64_C(1) << 50, VSM_FORMAT_QCOW2);
	ck_vsm(vsm_device_add(c, &s, VSM_DEVICE_ADD_THIN));
	ck_assert_uint_eq(vsm_device_size(vsm_container_device_by_name(c, "huge")),
			  UINT64_C(1) << 50);
	free(before.devs);
	vsm_container_free(c);
	vsm_ctx_free(ctx);
}
END_TEST

/* A linked clone of a golden image; it may grow past the base's end,
 * where the base reads as zeros. */
START_TEST(add_linked_clone_and_grow)
{
	vsm_container *c = NULL;
	vsm_ctx *ctx = world(&c);
	vsm_device_spec s = spec("os", 0, VSM_FORMAT_QCOW2);
	char *golden = NULL, *p;

	ck_assert(asprintf(&golden, "%s/golden.img", dsdir) > 0);
	ck_assert_int_eq(sh("qemu-img create -q -f raw '%s' 2M", golden), 0);
	ck_assert_int_eq(sh("qemu-io -f raw -c 'write -P 0x5a 0 2M' '%s' >/dev/null", golden),
			 0);
	s.base = "golden.img";
	ck_vsm(vsm_device_add(c, &s, VSM_DEVICE_ADD_THIN));
	ck_assert_uint_eq(vsm_device_size(vsm_container_device_by_name(c, "os")), 2 << 20);
	p = dev_path(c, "os");
	ck_qemu_clean(p);
	ck_vsm(vsm_device_resize(c, "os", 8 << 20, 0));
	ck_qemu_clean(p);
	ck_assert_uint_eq(qemu_size(p), 8 << 20);
	ck_assert_int_eq(sh("qemu-io -c 'read -P 0x5a 0 2M' -c 'read -P 0 2M 6M' '%s' | "
			    "grep -q 'read 6291456'", p), 0);
	ck_assert_int_eq(sh("qemu-io -c 'read -P 0 2M 6M' '%s' | grep -qi 'fail\\|pattern'",
			    p), 256);
	/* Removing it keeps the golden image. */
	ck_vsm(vsm_device_remove(c, "os", 0));
	ck_assert(tu_exists(golden));
	ck_assert(!tu_exists(p));
	free(p);
	free(golden);
	vsm_container_free(c);
	vsm_ctx_free(ctx);
}
END_TEST

/* --- remove --- */

START_TEST(remove_and_refusals)
{
	vsm_container *c = NULL;
	vsm_ctx *ctx = world(&c);
	vsm_device_spec s = spec("data", 1 << 20, VSM_FORMAT_QCOW2);
	const vsm_device *held;
	snap before;
	char *p;

	ck_vsm(vsm_device_add(c, &s, 0));
	held = vsm_container_device_by_name(c, "data");
	p = dev_path(c, "data");
	ck_assert(tu_exists(p));
	ck_vsm(vsm_attach(c, "h1", 0));
	ck_vsm(vsm_device_deploy(NULL, c, "data", NULL));
	before = snap_take(ctx);
	ck_vsm_refused(vsm_device_remove(c, "data", 0), VSM_EBUSY, "deployed");
	ck_vsm_refused(vsm_device_remove(c, "nope", 0), VSM_ENOTFOUND, "nope");
	ck_vsm_refused(vsm_device_remove(c, "data", 1), VSM_EINVAL, "flags");
	snap_same(ctx, &before);
	free(before.devs);
	ck_vsm(vsm_device_undeploy(c, "data", 0));
	ck_vsm(vsm_detach(c, 0));
	ck_vsm(vsm_checkpoint_create(NULL, c, "c0", NULL));
	before = snap_take(ctx);
	ck_vsm_refused(vsm_device_remove(c, "data", 0), VSM_EBUSY, "has checkpoints");
	snap_same(ctx, &before);
	free(before.devs);
	ck_vsm(vsm_checkpoint_delete(c, "c0", 0));
	ck_vsm(vsm_container_refresh(c));
	before = snap_take(ctx);
	ck_vsm(vsm_device_remove(c, "data", 0));
	ck_assert_uint_eq(vsm_container_device_count(c), 1);
	ck_assert_ptr_null(vsm_container_device_by_name(c, "data"));
	ck_assert_str_eq(vsm_device_name(held), "data"); /* still valid */
	ck_assert_int_eq(tu_count_files(dsdir), before.files - 1);
	free(before.devs);
	before = snap_take(ctx);
	ck_vsm_refused(vsm_device_remove(c, vsm_device_name(vsm_container_device(c, 0)), 0),
		       VSM_ESTATE, "at least one device");
	snap_same(ctx, &before);
	free(before.devs);
	/* The name may come back, on storage of its own. */
	ck_vsm(vsm_device_add(c, &s, 0));
	ck_assert_int_eq(journal_rows(), 0);
	free(p);
	vsm_container_free(c);
	vsm_ctx_free(ctx);
}
END_TEST

/* --- resize --- */

START_TEST(resize_and_refusals)
{
	vsm_container *c = NULL;
	vsm_ctx *ctx = world(&c);
	vsm_device_spec s = spec("q", 1 << 20, VSM_FORMAT_QCOW2);
	snap before;
	struct stat st;
	char *p, *raw;

	ck_vsm(vsm_device_add(c, &s, 0));
	p = dev_path(c, "q");
	raw = dev_path(c, "d0");
	ck_assert_int_eq(sh("qemu-io -c 'write -P 0x11 0 1M' '%s' >/dev/null", p), 0);
	ck_vsm(vsm_device_resize(c, "q", 16 << 20, 0));
	ck_assert_uint_eq(vsm_device_size(vsm_container_device_by_name(c, "q")), 16 << 20);
	ck_qemu_clean(p);
	ck_assert_uint_eq(qemu_size(p), 16 << 20);
	ck_assert_int_eq(sh("qemu-io -c 'read -P 0x11 0 1M' -c 'read -P 0 1M 15M' '%s' | "
			    "grep -c '^read' | grep -q 2", p), 0);
	ck_vsm(vsm_device_resize(c, "d0", 3 << 20, 0));
	ck_assert_int_eq(stat(raw, &st), 0);
	ck_assert_int_eq(st.st_size, 3 << 20);
	/* The same size: nothing to do. */
	ck_vsm(vsm_device_resize(c, "d0", 3 << 20, 0));
	before = snap_take(ctx);
	ck_vsm_refused(vsm_device_resize(c, "q", 8 << 20, 0), VSM_EINVAL, "can only grow");
	ck_vsm_refused(vsm_device_resize(c, "nope", 8 << 20, 0), VSM_ENOTFOUND, "nope");
	ck_vsm(vsm_attach(c, "h1", 0));
	ck_vsm(vsm_device_deploy(NULL, c, "q", NULL));
	free(before.devs);
	before = snap_take(ctx);
	ck_vsm_refused(vsm_device_resize(c, "q", 32 << 20, 0), VSM_EBUSY, "deployed");
	snap_same(ctx, &before);
	ck_assert_uint_eq(qemu_size(p), 16 << 20);
	free(before.devs);
	ck_vsm(vsm_detach(c, VSM_DETACH_FORCE));
	ck_vsm(vsm_checkpoint_create(NULL, c, "c0", NULL));
	before = snap_take(ctx);
	ck_vsm_refused(vsm_device_resize(c, "d0", 32 << 20, 0), VSM_EBUSY, "has checkpoints");
	snap_same(ctx, &before);
	free(before.devs);
	free(p);
	free(raw);
	vsm_container_free(c);
	vsm_ctx_free(ctx);
}
END_TEST

/* --- two hosts at once --- */

#define PER_PROC 12

/* Add PER_PROC devices called PREFIX0...; with @race, another process
 * adds the same names, and the exit status is how many this one got. */
static void adder(const char *st, const char *furi, const char *prefix, bool race)
{
	vsm_ctx *ctx = tu_ctx(st);
	vsm_container *c = NULL;
	char name[32];
	int i, rc, tries, got = 0;

	if (((rc = vsm_datastore_add(ctx, "ds1", furi, 0)) < 0 && rc != -VSM_EEXISTS) ||
	    vsm_container_lookup(&c, ctx, "ds1", "web") < 0)
		_exit(2);
	for (i = 0; i < PER_PROC; i++) {
		vsm_device_spec s = spec(name, 1 << 16, i % 2 ? VSM_FORMAT_QCOW2 : VSM_FORMAT_RAW);

		snprintf(name, sizeof(name), "%s%d", prefix, i);
		/* -VSM_EBUSY is the metadata lock's answer under contention:
		 * the call changed nothing, try again. */
		for (tries = 0; (rc = vsm_device_add(c, &s, 0)) == -VSM_EBUSY && tries < 50;
		     tries++)
			usleep(1000);
		if (race && rc == -VSM_EEXISTS)
			continue; /* the other one got it */
		if (rc < 0) {
			fprintf(stderr, "%s: %s\n", name, tu_msg());
			_exit(100);
		}
		got++;
	}
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	_exit(race ? got : 0);
}

static void two_hosts(bool race)
{
	char *furi = tu_uri(dsdir), *st2 = tu_dir("state2"), *st3 = tu_dir("state3");
	vsm_ctx *ctx = tu_ctx(state);
	vsm_container *c = NULL;
	pid_t pids[2];
	int status, got = 0;

	ck_vsm(vsm_datastore_add(ctx, "ds1", furi, 0));
	ck_vsm(tu_create(NULL, ctx, "ds1", "web", 1, 1 << 20));
	vsm_ctx_free(ctx);
	for (int p = 0; p < 2; p++) {
		ck_assert_int_ge(pids[p] = fork(), 0);
		if (pids[p] == 0)
			adder(p ? st2 : state, furi, race || !p ? "a" : "b", race);
	}
	for (int p = 0; p < 2; p++) {
		ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
		ck_assert_msg(WIFEXITED(status) && (race ? WEXITSTATUS(status) <= PER_PROC :
						    WEXITSTATUS(status) == 0),
			      "adder %d: 0x%x", p, status);
		got += WEXITSTATUS(status);
	}
	/* Of two adds of one name, exactly one got it. */
	if (race)
		ck_assert_int_eq(got, PER_PROC);
	/* A third host counts: nothing lost, every device has its file, and
	 * no file is left without a device. */
	ctx = tu_ctx(st3);
	ck_vsm(vsm_datastore_add(ctx, "ds1", furi, 0));
	ck_vsm(vsm_container_lookup(&c, ctx, "ds1", "web"));
	ck_assert_uint_eq(vsm_container_device_count(c), 1 + (race ? 1 : 2) * PER_PROC);
	for (size_t i = 0; i < vsm_container_device_count(c); i++) {
		char *p = dev_path(c, vsm_device_name(vsm_container_device(c, i)));

		ck_assert_msg(tu_exists(p), "%s missing", p);
		free(p);
	}
	ck_assert_int_eq(tu_count_files(dsdir), 1 + (race ? 1 : 2) * PER_PROC + 1);
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	free(furi);
	free(st2);
	free(st3);
}

START_TEST(two_hosts_add_at_once)
{
	two_hosts(false);
}
END_TEST

/* Both add the same names: each goes to one, the loser's device is
 * deleted again, nothing is left over. */
START_TEST(two_hosts_add_same_names)
{
	two_hosts(true);
}
END_TEST

/* --- killed mid-way --- */

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

static const char *crash_prefix;

static void crash_hook(const char *action)
{
	if (crash_prefix && !strncmp(action, crash_prefix, strlen(crash_prefix)))
		_exit(77);
}

static void child_add(void)
{
	vsm_ctx *ctx = open_ctx();
	vsm_container *c = NULL;
	vsm_device_spec s = spec("new", 1 << 20, VSM_FORMAT_QCOW2);

	ck_vsm(vsm_container_lookup(&c, ctx, "ds1", "web"));
	vsm__wf_test_hook = crash_hook;
	vsm_device_add(c, &s, 0);
}

static void crashed_add_leaves_no_trace(bool device_made)
{
	vsm_container *c = NULL;
	vsm_ctx *ctx = world(&c);
	char *devs;

	vsm_container_free(c);
	vsm_ctx_free(ctx);
	crash_prefix = NULL;
	if (device_made)
		fault.create_crash_at = fault.creates + 1; /* the device is there, no record */
	else
		crash_prefix = "dev_unref_"; /* journalled, not made yet */
	in_crashing_child(child_add);
	fault.create_crash_at = 0;
	ck_assert_int_eq(tu_count_files(dsdir), device_made ? 3 : 2);
	ck_assert_int_gt(journal_rows(), 0);
	ctx = open_ctx();
	ck_assert_int_eq(tu_count_files(dsdir), 2); /* no orphan */
	ck_assert_int_eq(journal_rows(), 0);
	devs = devices_of(ctx, "web");
	ck_assert_str_eq(devs, "d0:1048576:raw:0");
	free(devs);
	vsm_ctx_free(ctx);
}

START_TEST(kill_add_after_device_made)
{
	crashed_add_leaves_no_trace(true);
}
END_TEST

START_TEST(kill_add_at_journal_step)
{
	crashed_add_leaves_no_trace(false);
}
END_TEST

static void child_remove(void)
{
	vsm_ctx *ctx = open_ctx();
	vsm_container *c = NULL;

	ck_vsm(vsm_container_lookup(&c, ctx, "ds1", "web"));
	crash_prefix = "dev_unref_";
	vsm__wf_test_hook = crash_hook;
	vsm_device_remove(c, "x", 0);
}

/* Killed after journalling, before the record let it go: it stays. */
START_TEST(kill_remove_before_record)
{
	vsm_container *c = NULL;
	vsm_ctx *ctx = world(&c);
	vsm_device_spec s = spec("x", 1 << 20, VSM_FORMAT_RAW);
	char *devs;

	ck_vsm(vsm_device_add(c, &s, 0));
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	in_crashing_child(child_remove);
	ctx = open_ctx();
	ck_assert_int_eq(tu_count_files(dsdir), 3);
	ck_assert_int_eq(journal_rows(), 0);
	devs = devices_of(ctx, "web");
	ck_assert_str_eq(devs, "d0:1048576:raw:0 x:1048576:raw:0");
	free(devs);
	vsm_ctx_free(ctx);
}
END_TEST

static void child_resize(void)
{
	vsm_ctx *ctx = open_ctx();
	vsm_container *c = NULL;

	ck_vsm(vsm_container_lookup(&c, ctx, "ds1", "web"));
	crash_prefix = "dev_size_";
	vsm__wf_test_hook = crash_hook;
	vsm_device_resize(c, "q", 4 << 20, 0);
}

/* A resize is past its point of no return once journalled: the next
 * context grows the device and writes the record. */
START_TEST(kill_resize_finished_forward)
{
	vsm_container *c = NULL;
	vsm_ctx *ctx = world(&c);
	vsm_device_spec s = spec("q", 1 << 20, VSM_FORMAT_QCOW2);
	char *devs, *p;

	ck_vsm(vsm_device_add(c, &s, 0));
	p = dev_path(c, "q");
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	in_crashing_child(child_resize);
	ck_assert_uint_eq(qemu_size(p), 1 << 20);
	ctx = open_ctx();
	ck_assert_int_eq(journal_rows(), 0);
	devs = devices_of(ctx, "web");
	ck_assert_str_eq(devs, "d0:1048576:raw:0 q:4194304:qcow2:0");
	ck_assert_uint_eq(qemu_size(p), 4 << 20);
	ck_qemu_clean(p);
	free(devs);
	free(p);
	vsm_ctx_free(ctx);
}
END_TEST

/* SIGKILL a process adding and removing devices at random moments:
 * afterwards every device listed has its file and no file is left that
 * no device owns. */
static void churn(void)
{
	vsm_ctx *ctx = tu_ctx(state);
	vsm_container *c = NULL;
	char name[16];

	if (vsm_container_lookup(&c, ctx, "ds1", "web") < 0)
		_exit(2);
	for (int i = 0;; i++) {
		vsm_device_spec s = spec(name, 1 << 20, i % 3 ? VSM_FORMAT_QCOW2 : VSM_FORMAT_RAW);

		snprintf(name, sizeof(name), "x%d", i % 5);
		if (vsm_container_device_by_name(c, name))
			vsm_device_remove(c, name, 0);
		else
			vsm_device_add(c, &s, 0);
	}
}

START_TEST(sigkill_at_random_points)
{
	char *furi = tu_uri(dsdir);
	vsm_ctx *ctx = tu_ctx(state);
	unsigned seed = (unsigned)getpid();

	ck_vsm(vsm_datastore_add(ctx, "ds1", furi, 0));
	ck_vsm(tu_create(NULL, ctx, "ds1", "web", 1, 1 << 20));
	vsm_ctx_free(ctx);
	for (int round = 0; round < 8; round++) {
		vsm_container *c = NULL;
		pid_t pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			churn();
			_exit(0);
		}
		usleep(20000 + (useconds_t)(rand_r(&seed) % 150000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		ctx = tu_ctx(state);
		ck_vsm(vsm_container_lookup(&c, ctx, "ds1", "web"));
		for (size_t j = 0; j < vsm_container_device_count(c); j++) {
			char *p = dev_path(c, vsm_device_name(vsm_container_device(c, j)));

			ck_assert_msg(tu_exists(p), "round %d: %s missing", round, p);
			free(p);
		}
		ck_assert_int_eq(tu_count_files(dsdir), (int)vsm_container_device_count(c) + 1);
		ck_assert_int_eq(journal_rows(), 0);
		vsm_container_free(c);
		vsm_ctx_free(ctx);
	}
	free(furi);
}
END_TEST

static Suite *devices_suite(void)
{
	Suite *s = suite_create("devices");
	TCase *tc = tcase_create("devices");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, add_detached_and_attached);
	tcase_add_test(tc, add_refusals_change_nothing);
	tcase_add_test(tc, add_linked_clone_and_grow);
	tcase_add_test(tc, remove_and_refusals);
	tcase_add_test(tc, resize_and_refusals);
	tcase_add_test(tc, two_hosts_add_at_once);
	tcase_add_test(tc, two_hosts_add_same_names);
	tcase_add_test(tc, kill_add_after_device_made);
	tcase_add_test(tc, kill_add_at_journal_step);
	tcase_add_test(tc, kill_remove_before_record);
	tcase_add_test(tc, kill_resize_finished_forward);
	tcase_add_test(tc, sigkill_at_random_points);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(devices_suite());
}
