/*
 * Suite "check": vsm_datastore_check finds the devices that nothing
 * references, made the ways they really happen (a crashed create seen
 * from another host, a destroy whose backend lost a device, a device made
 * by hand through the backend), leaves user files and referenced devices
 * alone, keeps what is younger than the grace period, and removes the
 * rest only with repair.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault_backend.h"
#include "testutil.h"
#include "workflow.h"
#include "backends/file/file.h"
#include "v01_backend.h"

#define MiB (1u << 20)

/* Two fixed container UUIDs no record on the test datastores has. */
#define U1 "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
#define U2 "11111111-2222-4333-8444-555555555555"

static char *state, *state2, *dsdir, *uri, *furi;

static void setup(void)
{
	state = tu_dir("state");
	state2 = tu_dir("state2");
	dsdir = tu_dir("ds");
	uri = tu_uri(dsdir);
	ck_assert(asprintf(&furi, "fault://%s", dsdir) > 0);
	memset(&fault, 0, sizeof(fault));
}

static void teardown(void)
{
	free(state);
	free(state2);
	free(dsdir);
	free(uri);
	free(furi);
}

static char *path_of(const char *name)
{
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/%s", dsdir, name) > 0);
	return p;
}

static bool present(const char *name)
{
	char *p = path_of(name);
	bool yes = tu_exists(p);

	free(p);
	return yes;
}

/* A device made through the file backend itself, as a create that never
 * got to write its record leaves it. */
static void backend_device(const char *name, uint64_t size)
{
	vsm_backend_open_args args = { VSM_BACKEND_OPEN_ARGS_VERSION, "raw-access", NULL, NULL,
				       NULL, 0 };
	vsm_backend_device_spec spec = { VSM_BACKEND_DEVICE_SPEC_VERSION, name, size, "raw",
					 NULL, NULL, 0 };
	const struct vsm_datastore_ops *O = &vsm__file_backend_ops;
	char key[VSM_BACKEND_KEY_MAX];
	unsigned int fl = 0;
	vsm_backend_ds *h = NULL;

	ck_vsm(O->open(&h, uri, &args));
	ck_vsm(O->device_create(h, &spec, key, sizeof(key), &fl));
	ck_assert_str_eq(key, name);
	O->close(h);
}

/* A file put on the datastore by someone else. */
static void user_file(const char *name)
{
	char *p = path_of(name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_msg(fd >= 0, "create %s", p);
	ck_assert_int_eq(ftruncate(fd, MiB), 0);
	close(fd);
	free(p);
}

/* Move a device's modification time @secs into the past (negative: the
 * future). */
static void age_device(const char *name, int64_t secs)
{
	struct timespec ts[2];
	char *p = path_of(name);

	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - (time_t)secs;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
	free(p);
}

static vsm_check_report *check(vsm_ctx *ctx, const char *ds, unsigned int flags,
			       uint64_t grace)
{
	vsm_check_opts o = VSM_CHECK_OPTS_INIT;
	vsm_check_report *r = NULL;

	o.flags = flags;
	o.grace_seconds = grace;
	ck_vsm(vsm_datastore_check(&r, ctx, ds, &o));
	ck_assert_ptr_nonnull(r);
	return r;
}

static const vsm_orphan *orphan(const vsm_check_report *r, const char *key)
{
	size_t i;

	for (i = 0; i < vsm_check_report_orphan_count(r); i++)
		if (!strcmp(vsm_orphan_key(vsm_check_report_orphan(r, i)), key))
			return vsm_check_report_orphan(r, i);
	return NULL;
}

/* The report lists exactly @keys (NULL-terminated), each in @state. */
static void expect_orphans(const vsm_check_report *r, int state_, const char *const *keys)
{
	size_t n = 0;

	for (; keys[n]; n++) {
		const vsm_orphan *o = orphan(r, keys[n]);

		ck_assert_msg(o != NULL, "orphan '%s' not reported", keys[n]);
		ck_assert_msg(vsm_orphan_state_of(o) == state_, "orphan '%s' is '%s' (%s), want "
			      "'%s'", keys[n], vsm_orphan_state_name(vsm_orphan_state_of(o)),
			      vsm_orphan_reason(o), vsm_orphan_state_name(state_));
		ck_assert_ptr_nonnull(vsm_orphan_reason(o));
	}
	ck_assert_msg(vsm_check_report_orphan_count(r) == n, "%zu orphans reported, want %zu "
		      "(first: %s)", vsm_check_report_orphan_count(r), n,
		      vsm_check_report_orphan_count(r) ?
		      vsm_orphan_key(vsm_check_report_orphan(r, 0)) : "-");
}

static vsm_ctx *fault_ctx(const char *dir)
{
	vsm_ctx *ctx = tu_ctx(dir);

	ck_vsm(fault_register(ctx));
	ck_assert_int_ge(vsm_ctx_recover(ctx, NULL, 0), 0);
	return ctx;
}

static bool device_files_present(const vsm_container *c)
{
	size_t i;

	for (i = 0; i < vsm_container_device_count(c); i++)
		if (!present(vsm_device_key(vsm_container_device(c, i))))
			return false;
	return true;
}

START_TEST(clean_datastore_has_none)
{
	vsm_ctx *ctx = tu_ctx(state);
	vsm_check_report *r;
	static const char *const none[] = { NULL };

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	ck_vsm(tu_create(NULL, ctx, "ds1", "web", 2, MiB));
	r = check(ctx, "ds1", VSM_CHECK_REPAIR, 0);
	expect_orphans(r, 0, none);
	ck_assert_uint_eq(vsm_check_report_devices(r), 3); /* two devices, the state area */
	ck_assert_uint_eq(vsm_check_report_referenced(r), 3);
	ck_assert_uint_eq(vsm_check_report_foreign(r), 0);
	ck_assert_uint_eq(vsm_check_report_remaining(r), 0);
	ck_assert_str_eq(vsm_check_report_datastore(r), "ds1");
	ck_assert_ptr_null(vsm_check_report_orphan(r, 0));
	vsm_check_report_free(r);
	ck_assert_int_eq(tu_count_files(dsdir), 3);
	vsm_ctx_free(ctx);
}
END_TEST

START_TEST(finds_exactly_the_orphans)
{
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *devs[] = { &d };
	vsm_container_opts co = VSM_CONTAINER_OPTS_INIT;
	vsm_ctx *ctx = tu_ctx(state);
	vsm_container *c = NULL;
	vsm_check_report *r;
	static const char *const orphans[] = {
		U1 "-d0.raw", U1 ".state", U2 "-root.1a2b3c4d.qcow2", NULL
	};
	static const char *const foreign[] = {
		"golden.raw",            /* a base image a record uses (referenced) */
		"spare-golden.raw",      /* a base image nobody uses yet */
		"notes.txt",
		".hidden",
		U1 ".txt",               /* a UUID, but not a name libvsm gives */
		U1 "-.raw",              /* no device name */
		U1 "-d0.vmdk",
		"0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9-d0.raw", /* libvsm writes lower case */
		"x" U1 "-d0.raw",
		NULL
	};
	size_t i;
	char *sub;

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	for (i = 0; foreign[i]; i++)
		user_file(foreign[i]);
	/* A directory is no device, whatever its name. */
	sub = path_of(U2 "-d9.raw");
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	free(sub);
	d.name = "root";
	d.format = VSM_FORMAT_QCOW2;
	d.base = "golden.raw";
	co.devices = devs;
	co.n_devices = 1;
	ck_vsm(vsm_container_create(&c, ctx, "ds1", "web", &co));
	for (i = 0; orphans[i]; i++)
		backend_device(orphans[i], MiB);

	r = check(ctx, "ds1", 0, 0);
	expect_orphans(r, VSM_ORPHAN_FOUND, orphans);
	/* web's device and state area, and the golden image its chain names. */
	ck_assert_uint_eq(vsm_check_report_referenced(r), 3);
	ck_assert_uint_eq(vsm_check_report_foreign(r), 8);
	ck_assert_uint_eq(vsm_check_report_devices(r), 3 + 8 + 3);
	ck_assert_uint_eq(vsm_check_report_remaining(r), 3);
	ck_assert_uint_eq(vsm_check_report_count(r, VSM_ORPHAN_FOUND), 3);
	ck_assert_uint_eq(vsm_orphan_size(orphan(r, U1 "-d0.raw")), MiB);
	ck_assert_int_ge(vsm_orphan_age(orphan(r, U1 "-d0.raw")), 0);
	ck_assert_ptr_nonnull(strstr(vsm_orphan_reason(orphan(r, U1 ".state")), "references"));
	/* Sorted by key. */
	for (i = 1; i < vsm_check_report_orphan_count(r); i++)
		ck_assert_int_lt(strcmp(vsm_orphan_key(vsm_check_report_orphan(r, i - 1)),
					vsm_orphan_key(vsm_check_report_orphan(r, i))), 0);
	vsm_check_report_free(r);
	/* Reporting removed nothing. */
	for (i = 0; orphans[i]; i++)
		ck_assert(present(orphans[i]));

	/* Repair removes exactly the orphans. */
	r = check(ctx, "ds1", VSM_CHECK_REPAIR, 0);
	expect_orphans(r, VSM_ORPHAN_REMOVED, orphans);
	ck_assert_uint_eq(vsm_check_report_remaining(r), 0);
	vsm_check_report_free(r);
	for (i = 0; orphans[i]; i++)
		ck_assert_msg(!present(orphans[i]), "%s still there", orphans[i]);
	for (i = 0; foreign[i]; i++)
		ck_assert_msg(present(foreign[i]), "user file %s removed", foreign[i]);
	ck_assert(device_files_present(c));
	vsm_container_free(c);
	c = NULL;
	/* web still opens and its devices are whole. */
	ck_vsm(vsm_container_lookup(&c, ctx, "ds1", "web"));
	ck_assert(device_files_present(c));
	vsm_container_free(c);
	vsm_ctx_free(ctx);
}
END_TEST

START_TEST(grace_keeps_young_orphans)
{
	vsm_ctx *ctx = tu_ctx(state);
	vsm_check_report *r = NULL;
	static const char *const both[] = { U1 "-d0.raw", U1 "-d1.raw", NULL };
	static const char *const fresh[] = { U1 "-d1.raw", NULL };
	const vsm_orphan *o;

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	backend_device(U1 "-d0.raw", MiB);
	backend_device(U1 "-d1.raw", MiB);

	/* Default options: report only, an hour of grace. */
	ck_vsm(vsm_datastore_check(&r, ctx, "ds1", NULL));
	expect_orphans(r, VSM_ORPHAN_YOUNG, both);
	ck_assert_ptr_nonnull(strstr(vsm_orphan_reason(orphan(r, U1 "-d0.raw")), "3600"));
	vsm_check_report_free(r);

	/* Repair with the default grace keeps them. */
	r = check(ctx, "ds1", VSM_CHECK_REPAIR, VSM_CHECK_GRACE_DEFAULT);
	expect_orphans(r, VSM_ORPHAN_YOUNG, both);
	ck_assert_uint_eq(vsm_check_report_remaining(r), 2);
	vsm_check_report_free(r);
	ck_assert(present(U1 "-d0.raw") && present(U1 "-d1.raw"));

	/* Two hours old is past an hour of grace; the fresh one stays. */
	age_device(U1 "-d0.raw", 7200);
	r = check(ctx, "ds1", VSM_CHECK_REPAIR, 3600);
	ck_assert_uint_eq(vsm_check_report_orphan_count(r), 2);
	o = orphan(r, U1 "-d0.raw");
	ck_assert_int_eq(vsm_orphan_state_of(o), VSM_ORPHAN_REMOVED);
	ck_assert_int_ge(vsm_orphan_age(o), 7200);
	ck_assert_int_eq(vsm_orphan_state_of(orphan(r, U1 "-d1.raw")), VSM_ORPHAN_YOUNG);
	ck_assert_uint_eq(vsm_check_report_remaining(r), 1);
	vsm_check_report_free(r);
	ck_assert(!present(U1 "-d0.raw"));
	ck_assert(present(U1 "-d1.raw"));

	/* Written "tomorrow" (another host's clock): as young as can be. */
	age_device(U1 "-d1.raw", -86400);
	r = check(ctx, "ds1", VSM_CHECK_REPAIR, 60);
	expect_orphans(r, VSM_ORPHAN_YOUNG, fresh);
	ck_assert_int_eq(vsm_orphan_age(orphan(r, U1 "-d1.raw")), 0);
	vsm_check_report_free(r);
	ck_assert(present(U1 "-d1.raw"));
	vsm_ctx_free(ctx);
}
END_TEST

static void pid_exit_on_second_create(void)
{
	vsm_ctx *ctx = fault_ctx(state);

	fault.create_crash_at = 2;
	tu_create(NULL, ctx, "ds1", "web", 3, MiB);
}

START_TEST(crashed_create_seen_from_another_host)
{
	vsm_ctx *a = fault_ctx(state), *b;
	vsm_check_report *r;
	vsm_container *c = NULL;
	static const char *const none[] = { NULL };
	int status;
	pid_t pid;

	ck_vsm(vsm_datastore_add(a, "ds1", furi, 0));
	vsm_ctx_free(a);
	/* Host A dies right after making its second device. */
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		pid_exit_on_second_create();
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 77, "status 0x%x", status);
	ck_assert_int_eq(tu_count_files(dsdir), 2);

	/* Host B shares the directory, not A's journal: two orphans, no
	 * record. A container B makes meanwhile is not one of them. */
	b = tu_ctx(state2);
	ck_vsm(vsm_datastore_add(b, "ds1", uri, 0));
	ck_vsm(tu_create(&c, b, "ds1", "db", 1, MiB));
	r = check(b, "ds1", 0, 0);
	ck_assert_uint_eq(vsm_check_report_orphan_count(r), 2);
	ck_assert_uint_eq(vsm_check_report_count(r, VSM_ORPHAN_FOUND), 2);
	ck_assert_uint_eq(vsm_check_report_referenced(r), 2);
	ck_assert(!strncmp(vsm_orphan_key(vsm_check_report_orphan(r, 0)),
			   vsm_orphan_key(vsm_check_report_orphan(r, 1)), VSM_UUID_STRLEN));
	vsm_check_report_free(r);

	/* A's next start rolls its create back; then B sees nothing left. */
	a = fault_ctx(state);
	vsm_ctx_free(a);
	r = check(b, "ds1", VSM_CHECK_REPAIR, 0);
	expect_orphans(r, 0, none);
	vsm_check_report_free(r);
	ck_assert(device_files_present(c));
	vsm_container_free(c);
	vsm_ctx_free(b);
}
END_TEST

START_TEST(destroy_with_lost_delete)
{
	vsm_ctx *ctx = fault_ctx(state);
	vsm_container *c = NULL;
	vsm_check_report *r;
	char key[VSM_BACKEND_KEY_MAX];
	const char *lost[] = { key, NULL };

	ck_vsm(vsm_datastore_add(ctx, "ds1", furi, 0));
	ck_vsm(tu_create(&c, ctx, "ds1", "web", 2, MiB));
	snprintf(key, sizeof(key), "%s", vsm_device_key(vsm_container_device(c, 0)));
	/* The backend answers "not found" for the first device and keeps it:
	 * the core takes it as gone and the record goes. */
	fault.delete_fail_at = 1;
	fault.delete_fail_code = VSM_ENOTFOUND;
	ck_vsm(vsm_container_destroy(c, 0));
	vsm_container_free(c);
	ck_assert_int_eq(tu_count_files(dsdir), 1);
	ck_assert(present(key));

	r = check(ctx, "ds1", 0, 0);
	expect_orphans(r, VSM_ORPHAN_FOUND, lost);
	vsm_check_report_free(r);
	r = check(ctx, "ds1", VSM_CHECK_REPAIR, 0);
	expect_orphans(r, VSM_ORPHAN_REMOVED, lost);
	vsm_check_report_free(r);
	ck_assert_int_eq(tu_count_files(dsdir), 0);
	vsm_ctx_free(ctx);
}
END_TEST

/* Host A: a destroy whose second delete fails for real, then A exits. */
static int destroy_fails_then_exit(void)
{
	vsm_ctx *ctx = fault_ctx(state);
	vsm_container *c = NULL;
	int rc;

	if (vsm_datastore_add(ctx, "ds1", furi, 0) < 0 ||
	    tu_create(&c, ctx, "ds1", "web", 2, MiB) < 0)
		return 1;
	fault.delete_fail_at = 2;
	fault.delete_fail_code = VSM_EIO;
	rc = vsm_container_destroy(c, 0);
	return rc == -VSM_EIO ? 0 : 2;
}

START_TEST(destroy_with_failed_delete_is_not_orphaned)
{
	vsm_ctx *ctx, *b;
	vsm_check_report *r;
	static const char *const none[] = { NULL };
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(destroy_fails_then_exit());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
	/* One device and the state area are left; the record, marked
	 * destroying, still names them, and A's journal will finish it. */
	ck_assert_int_eq(tu_count_files(dsdir), 2);
	b = tu_ctx(state2);
	ck_vsm(vsm_datastore_add(b, "ds1", uri, 0));
	r = check(b, "ds1", VSM_CHECK_REPAIR, 0);
	expect_orphans(r, 0, none);
	ck_assert_uint_eq(vsm_check_report_referenced(r), 2);
	vsm_check_report_free(r);
	ck_assert_int_eq(tu_count_files(dsdir), 2);
	/* A's next start finishes the destroy; nothing is left to collect. */
	ctx = fault_ctx(state);
	ck_assert_int_eq(tu_count_files(dsdir), 0);
	vsm_ctx_free(ctx);
	r = check(b, "ds1", VSM_CHECK_REPAIR, 0);
	expect_orphans(r, 0, none);
	ck_assert_uint_eq(vsm_check_report_devices(r), 0);
	vsm_check_report_free(r);
	vsm_ctx_free(b);
}
END_TEST

START_TEST(running_workflow_protects)
{
	vsm_ctx *ctx = tu_ctx(state);
	vsm_check_report *r;
	vsm_wf wf = { 0 };
	static const char *const none[] = { NULL };
	static const char *const both[] = { U1 "-d0.raw", U2 ".state", NULL };

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	/* A create in progress in this state directory: its journal names
	 * one device before making it, and a container UUID. */
	ck_vsm(vsm__wf_begin(&wf, ctx, "test-create", "ds1", "web"));
	ck_vsm(vsm__wf_undo(&wf, VSM_WF_DEVICE_DELETE, U1 "-d0.raw"));
	backend_device(U1 "-d0.raw", MiB);
	ck_vsm(vsm__wf_undo(&wf, VSM_WF_SLOT_FREE, "7 " U2));
	backend_device(U2 ".state", MiB);
	r = check(ctx, "ds1", VSM_CHECK_REPAIR, 0);
	expect_orphans(r, 0, none);
	ck_assert_uint_eq(vsm_check_report_referenced(r), 2);
	vsm_check_report_free(r);
	ck_assert(present(U1 "-d0.raw") && present(U2 ".state"));
	/* Once the workflow is gone without a record, they are orphans. */
	ck_vsm(vsm__wf_end(&wf));
	r = check(ctx, "ds1", 0, 0);
	expect_orphans(r, VSM_ORPHAN_FOUND, both);
	vsm_check_report_free(r);
	vsm_ctx_free(ctx);
}
END_TEST

/* Another host starts using one of the two orphans as a golden image
 * while the repair is deleting the other. */
static char *late_uri, *late_state;

static void take_the_other(const char *deleting)
{
	const char *other = !strcmp(deleting, U1 "-d0.raw") ? U1 "-d1.raw" : U1 "-d0.raw";
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *devs[] = { &d };
	vsm_container_opts co = VSM_CONTAINER_OPTS_INIT;
	vsm_ctx *b;

	fault.delete_hook = NULL;
	b = tu_ctx(late_state);
	ck_vsm(vsm_datastore_add(b, "ds1", late_uri, 0));
	d.name = "root";
	d.format = VSM_FORMAT_QCOW2;
	d.base = other;
	co.devices = devs;
	co.n_devices = 1;
	ck_vsm(vsm_container_create(NULL, b, "ds1", "late", &co));
	vsm_ctx_free(b);
}

START_TEST(repair_skips_what_became_referenced)
{
	vsm_ctx *ctx = fault_ctx(state);
	vsm_check_report *r;
	vsm_container *c = NULL;
	size_t i;

	ck_vsm(vsm_datastore_add(ctx, "ds1", furi, 0));
	backend_device(U1 "-d0.raw", MiB);
	backend_device(U1 "-d1.raw", MiB);
	late_uri = uri;
	late_state = state2;
	fault.delete_hook = take_the_other;
	r = check(ctx, "ds1", VSM_CHECK_REPAIR, 0);
	ck_assert_uint_eq(vsm_check_report_orphan_count(r), 2);
	ck_assert_uint_eq(vsm_check_report_count(r, VSM_ORPHAN_REMOVED), 1);
	ck_assert_uint_eq(vsm_check_report_count(r, VSM_ORPHAN_REFERENCED), 1);
	ck_assert_uint_eq(vsm_check_report_remaining(r), 0);
	for (i = 0; i < 2; i++) {
		const vsm_orphan *o = vsm_check_report_orphan(r, i);

		ck_assert(present(vsm_orphan_key(o)) ==
			  (vsm_orphan_state_of(o) == VSM_ORPHAN_REFERENCED));
	}
	ck_assert_int_eq(fault.deletes, 1);
	vsm_check_report_free(r);
	/* The late container's base is whole. */
	ck_vsm(vsm_container_lookup(&c, ctx, "ds1", "late"));
	ck_assert(device_files_present(c));
	vsm_container_free(c);
	vsm_ctx_free(ctx);
}
END_TEST

START_TEST(refused_removal_reported)
{
	vsm_ctx *ctx = fault_ctx(state);
	vsm_check_report *r;
	const vsm_orphan *o;
	size_t i, failed = 0;

	ck_vsm(vsm_datastore_add(ctx, "ds1", furi, 0));
	backend_device(U1 "-d0.raw", MiB);
	backend_device(U1 "-d1.raw", MiB);
	/* The backend refuses the first removal; the call still succeeds, says
	 * which one is left and why, and removes the other. */
	fault.delete_fail_at = 1;
	fault.delete_fail_code = VSM_EIO;
	r = check(ctx, "ds1", VSM_CHECK_REPAIR, 0);
	ck_assert_uint_eq(vsm_check_report_orphan_count(r), 2);
	for (i = 0; i < 2; i++) {
		o = vsm_check_report_orphan(r, i);
		if (vsm_orphan_state_of(o) == VSM_ORPHAN_FAILED) {
			failed++;
			ck_assert_ptr_nonnull(strstr(vsm_orphan_reason(o), "injected"));
			ck_assert(present(vsm_orphan_key(o)));
		} else {
			ck_assert_int_eq(vsm_orphan_state_of(o), VSM_ORPHAN_REMOVED);
			ck_assert(!present(vsm_orphan_key(o)));
		}
	}
	ck_assert_uint_eq(failed, 1);
	ck_assert_uint_eq(vsm_check_report_remaining(r), 1);
	vsm_check_report_free(r);
	/* The next repair gets it. */
	r = check(ctx, "ds1", VSM_CHECK_REPAIR, 0);
	ck_assert_uint_eq(vsm_check_report_count(r, VSM_ORPHAN_REMOVED), 1);
	ck_assert_uint_eq(vsm_check_report_remaining(r), 0);
	vsm_check_report_free(r);
	ck_assert_int_eq(tu_count_files(dsdir), 0);
	vsm_ctx_free(ctx);
}
END_TEST

/* Host A: create 40 containers, destroying every other one, then exit
 * with the number of calls that failed. */
static int host_a_rounds(void)
{
	vsm_ctx *ctx = tu_ctx(state);
	int i, failures = 0;

	if (vsm_datastore_add(ctx, "ds1", uri, 0) < 0)
		return 100;
	for (i = 0; i < 40; i++) {
		vsm_container *c = NULL;
		char name[16];

		snprintf(name, sizeof(name), "c%d", i);
		if (tu_create(&c, ctx, "ds1", name, 2, MiB) < 0) {
			failures++;
			continue;
		}
		if (i % 2 && vsm_container_destroy(c, 0) < 0)
			failures++;
		vsm_container_free(c);
	}
	vsm_ctx_free(ctx);
	return failures;
}

START_TEST(two_hosts_repair_while_creating)
{
	vsm_ctx *b, *init;
	vsm_container **list = NULL;
	vsm_check_report *r;
	char name[80];
	size_t n = 0, i, lost = 0, rounds = 0;
	int status, k;
	pid_t pid;

	init = tu_ctx(state2);
	ck_vsm(vsm_datastore_add(init, "ds1", uri, 0));
	vsm_ctx_free(init);
	/* Old orphans for the repair to find while host A works. */
	for (k = 0; k < 10; k++) {
		snprintf(name, sizeof(name), "%08x-0000-4000-8000-000000000000-d0.raw", k);
		backend_device(name, MiB);
		age_device(name, 7200);
	}
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(host_a_rounds());
	/* Host B repairs with a minute of grace for as long as A creates. */
	b = tu_ctx(state2); /* ds1 is in its catalog already */
	do {
		r = check(b, "ds1", VSM_CHECK_REPAIR, 60);
		ck_assert_uint_eq(vsm_check_report_count(r, VSM_ORPHAN_FAILED), 0);
		vsm_check_report_free(r);
		rounds++;
	} while (waitpid(pid, &status, WNOHANG) == 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "host A: status 0x%x (%d failed calls)", status, WEXITSTATUS(status));
	/* Every container A kept is whole (their state areas are counted
	 * below); every old orphan is gone. */
	ck_vsm(vsm_container_list(&list, &n, b, "ds1"));
	ck_assert_uint_eq(n, 20);
	for (i = 0; i < n; i++)
		lost += !device_files_present(list[i]);
	vsm_container_list_free(list, n);
	ck_assert_msg(lost == 0, "%zu containers lost a device in %zu repair rounds", lost,
		      rounds);
	r = check(b, "ds1", VSM_CHECK_REPAIR, 60);
	ck_assert_uint_eq(vsm_check_report_orphan_count(r), 0);
	ck_assert_uint_eq(vsm_check_report_referenced(r), 20 * 3);
	vsm_check_report_free(r);
	ck_assert_int_eq(tu_count_files(dsdir), 20 * 3);
	vsm_ctx_free(b);
}
END_TEST

/* Overwrite a byte inside the payload of the record naming @needle. */
static void damage_record(const char *needle)
{
	char *meta = NULL, *buf = malloc(MiB);
	size_t nlen = strlen(needle);
	off_t off = 0;
	bool done = false;
	int fd;

	ck_assert(asprintf(&meta, "%s/.vsm/meta", dsdir) > 0);
	ck_assert((fd = open(meta, O_RDWR)) >= 0);
	for (;;) {
		ssize_t n = pread(fd, buf, MiB, off);
		char *hit;

		if (n <= 0)
			break;
		hit = memmem(buf, (size_t)n, needle, nlen);
		if (hit) {
			ck_assert_int_eq(pwrite(fd, "X", 1, off + (hit - buf) + 2), 1);
			done = true;
			break;
		}
		off += n - (off_t)nlen; /* a hit may straddle two reads */
	}
	close(fd);
	free(meta);
	free(buf);
	ck_assert_msg(done, "record with '%s' not found", needle);
}

START_TEST(damaged_records_make_it_unsure)
{
	vsm_ctx *ctx = tu_ctx(state);
	vsm_check_report *r;
	size_t i;

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	ck_vsm(tu_create(NULL, ctx, "ds1", "web", 1, MiB));
	ck_vsm(tu_create(NULL, ctx, "ds1", "db", 1, MiB));
	backend_device(U1 "-d0.raw", MiB);
	vsm_ctx_free(ctx);
	damage_record("\"name\":\"web\"");
	/* A fresh catalog cannot read web's record: web's devices look
	 * unreferenced, so nothing may be removed. */
	ctx = tu_ctx(state2);
	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	r = check(ctx, "ds1", VSM_CHECK_REPAIR, 0);
	ck_assert_uint_eq(vsm_check_report_orphan_count(r), 3); /* web's two, and U1's */
	ck_assert_uint_eq(vsm_check_report_count(r, VSM_ORPHAN_UNSURE), 3);
	ck_assert_uint_eq(vsm_check_report_remaining(r), 3);
	ck_assert_ptr_nonnull(strstr(vsm_orphan_reason(orphan(r, U1 "-d0.raw")), "damaged"));
	for (i = 0; i < 3; i++)
		ck_assert(present(vsm_orphan_key(vsm_check_report_orphan(r, i))));
	vsm_check_report_free(r);
	ck_assert_int_eq(tu_count_files(dsdir), 5);
	vsm_ctx_free(ctx);
}
END_TEST

static int must_not_be_called(vsm_backend_ds *ds, vsm_backend_device_cb cb, void *payload)
{
	(void)ds; (void)cb; (void)payload;
	ck_abort_msg("the core read device_list past a version 1 table's size");
	return -VSM_EINTERNAL;
}

START_TEST(version1_backend_not_supported)
{
	/* A table built against the 0.1 header (tests/v01_backend.c):
	 * version 1, and a size that ends before device_list. What lies past
	 * it must never be read. */
	const struct vsm_backend_ops *v01 = v01_backend_ops(1);
	struct vsm_backend_ops ops;
	vsm_ctx *ctx = tu_ctx(state);
	vsm_check_report *r = NULL;
	char *v1uri = NULL;

	ck_assert_uint_eq(v01->version, 1);
	ck_assert_uint_le(v01->size, offsetof(struct vsm_backend_ops, device_list));
	memset(&ops, 0, sizeof(ops));
	memcpy(&ops, v01, v01->size);
	ops.scheme = "vone";
	ops.device_list = must_not_be_called;
	ck_vsm(vsm_backend_register(ctx, &ops, NULL));
	ck_assert(asprintf(&v1uri, "vone://%s", dsdir) > 0);
	ck_vsm(vsm_datastore_add(ctx, "old", v1uri, 0));
	ck_vsm(tu_create(NULL, ctx, "old", "web", 1, MiB));
	backend_device(U1 "-d0.raw", MiB);
	ck_vsm_refused(vsm_datastore_check(&r, ctx, "old", NULL), VSM_ENOTSUP,
		       "cannot list its devices");
	ck_assert_ptr_nonnull(strstr(tu_msg(), "vone"));
	ck_assert_ptr_null(r);
	ck_assert(present(U1 "-d0.raw"));
	free(v1uri);
	vsm_ctx_free(ctx);
}
END_TEST

START_TEST(bad_arguments_refused)
{
	vsm_ctx *ctx = tu_ctx(state);
	vsm_check_opts o = VSM_CHECK_OPTS_INIT;
	vsm_check_report *r = NULL;

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	ck_vsm_refused(vsm_datastore_check(&r, ctx, "nope", NULL), VSM_ENOTFOUND, "nope");
	ck_vsm_refused(vsm_datastore_check(NULL, ctx, "ds1", NULL), VSM_EINVAL, "NULL");
	o.version = 0;
	ck_vsm_refused(vsm_datastore_check(&r, ctx, "ds1", &o), VSM_EVERSION, "version 0");
	o.version = VSM_CHECK_OPTS_VERSION + 1;
	ck_vsm_refused(vsm_datastore_check(&r, ctx, "ds1", &o), VSM_EVERSION, "ds1");
	o.version = VSM_CHECK_OPTS_VERSION;
	o.flags = 0x80;
	ck_vsm_refused(vsm_datastore_check(&r, ctx, "ds1", &o), VSM_EINVAL, "0x80");
	ck_assert_ptr_null(r);
	/* The getters are NULL-safe, and the names cover every state. */
	vsm_check_report_free(NULL);
	ck_assert_uint_eq(vsm_check_report_orphan_count(NULL), 0);
	ck_assert_ptr_null(vsm_orphan_key(NULL));
	ck_assert_str_eq(vsm_orphan_state_name(VSM_ORPHAN_YOUNG), "young");
	ck_assert_str_eq(vsm_orphan_state_name(VSM_ORPHAN_UNSURE), "unsure");
	ck_assert_ptr_null(vsm_orphan_state_name(99));
	vsm_ctx_free(ctx);
}
END_TEST

static Suite *check_suite(void)
{
	Suite *s = suite_create("check");
	TCase *tc = tcase_create("orphans");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, clean_datastore_has_none);
	tcase_add_test(tc, finds_exactly_the_orphans);
	tcase_add_test(tc, grace_keeps_young_orphans);
	tcase_add_test(tc, crashed_create_seen_from_another_host);
	tcase_add_test(tc, destroy_with_lost_delete);
	tcase_add_test(tc, destroy_with_failed_delete_is_not_orphaned);
	tcase_add_test(tc, running_workflow_protects);
	tcase_add_test(tc, repair_skips_what_became_referenced);
	tcase_add_test(tc, refused_removal_reported);
	tcase_add_test(tc, two_hosts_repair_while_creating);
	tcase_add_test(tc, damaged_records_make_it_unsure);
	tcase_add_test(tc, version1_backend_not_supported);
	tcase_add_test(tc, bad_arguments_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(check_suite());
}
