/*
 * Suite "recovery": group backup sets and disaster recovery. A group of
 * three containers is backed up (full, then incremental) and recovered
 * onto another datastore: every member reads as the source did at the
 * point, the plan comes back; a set missing from the chain, a damaged
 * member file or sets of two groups are refused with nothing left
 * behind; a recovery killed at each journal step is undone by the next
 * context; with a host whose hypervisor is libvirt's test driver, the
 * domains are defined with the plan's network and started tier by tier.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "hyper.h"
#include "workflow.h"
#include <vsm/recovery.h>

#define DEV_SIZE (4u << 20)
#define NMEM 3

static char *state, *dsdir, *ds2dir, *bkdir;
static vsm_ctx *ctx;
static const char *const names[NMEM] = { "web", "db", "app" };

static void setup(void)
{
	char *u1, *u2;

	state = tu_dir("state");
	dsdir = tu_dir("ds");
	ds2dir = tu_dir("ds2");
	bkdir = tu_dir("bk");
	u1 = tu_uri(dsdir);
	u2 = tu_uri(ds2dir);
	ctx = tu_ctx(state);
	ck_vsm(vsm_datastore_add(ctx, "ds1", u1, 0));
	ck_vsm(vsm_datastore_add(ctx, "ds2", u2, 0));
	free(u1);
	free(u2);
}

static void teardown(void)
{
	vsm_ctx_free(ctx);
	ctx = NULL;
	free(state);
	free(dsdir);
	free(ds2dir);
	free(bkdir);
}

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

/* What each member's device holds, by the test's own writes. */
static uint8_t *model[NMEM];

static void write_member(int i, int seed)
{
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img = NULL;
	uint8_t buf[65536];
	int k, j;

	o.flags = VSM_IMAGE_OPEN_RDWR;
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", names[i], "d0", &o));
	srand((unsigned)(seed * 7 + i));
	for (k = 0; k < 6; k++) {
		uint64_t off = (uint64_t)(rand() % (DEV_SIZE / 4096 - 16)) * 4096;

		for (j = 0; j < (int)sizeof(buf); j++)
			buf[j] = (uint8_t)(rand() | 1);
		ck_vsm(vsm_image_write(img, buf, sizeof(buf), off, 0));
		memcpy(model[i] + off, buf, sizeof(buf));
	}
	ck_vsm(vsm_image_close(img));
}

static vsm_group *make_group(void)
{
	vsm_container *cs[NMEM];
	vsm_group_plan_entry e[NMEM];
	const char *after_db[] = { "db" };
	vsm_group *g = NULL;
	int i;

	for (i = 0; i < NMEM; i++) {
		ck_vsm(tu_create(&cs[i], ctx, "ds1", names[i], 1, DEV_SIZE));
		ck_assert((model[i] = calloc(1, DEV_SIZE)) != NULL);
		write_member(i, 1);
	}
	ck_vsm(vsm_group_create(&g, ctx, "g1", cs, NMEM, NULL));
	for (i = 0; i < NMEM; i++) {
		vsm_group_plan_entry x = VSM_GROUP_PLAN_ENTRY_INIT;

		x.member = names[i];
		e[i] = x;
		vsm_container_free(cs[i]);
	}
	e[0].priority = 3;       /* web: last */
	e[0].mac = "52:54:00:12:34:56";
	e[0].network = "default";
	e[0].ip = "10.1.2.3";
	e[0].prefix = 24;
	e[0].gateway = "10.1.2.1";
	e[0].dns = "10.1.2.2";
	e[1].priority = 1;       /* db: first */
	e[2].priority = 1;       /* app: with db's priority, but after it */
	e[2].after = after_db;
	e[2].n_after = 1;
	ck_vsm(vsm_group_plan_set(g, e, NMEM, 0));
	return g;
}

static void free_model(void)
{
	int i;

	for (i = 0; i < NMEM; i++) {
		free(model[i]);
		model[i] = NULL;
	}
}

static void same_as_model(const char *ds, const char *const *want_names, uint8_t **want)
{
	uint8_t *got = malloc(DEV_SIZE);
	int i;

	ck_assert(got != NULL);
	for (i = 0; i < NMEM; i++) {
		vsm_image *img = NULL;

		ck_vsm(vsm_image_open_device(&img, ctx, ds, want_names[i], "d0", NULL));
		ck_vsm(vsm_image_read(img, got, DEV_SIZE, 0));
		ck_vsm(vsm_image_close(img));
		ck_assert_msg(!memcmp(got, want[i], DEV_SIZE), "member '%s' on %s differs",
			      want_names[i], ds);
	}
	free(got);
}

/* Full set p1, incremental p2; the model at p2 is returned in @at2. */
static void two_sets(vsm_group *g, uint8_t **at1, uint8_t **at2)
{
	vsm_group_backup_opts o = VSM_GROUP_BACKUP_OPTS_INIT;
	int i;

	o.checkpoint = "p1";
	ck_vsm(vsm_group_backup(g, bkdir, &o));
	for (i = 0; i < NMEM; i++) {
		at1[i] = malloc(DEV_SIZE);
		memcpy(at1[i], model[i], DEV_SIZE);
		if (i != 2)
			write_member(i, 2);
	}
	o.checkpoint = "p2";
	o.incremental_from = "p1";
	ck_vsm(vsm_group_backup(g, bkdir, &o));
	for (i = 0; i < NMEM; i++) {
		at2[i] = malloc(DEV_SIZE);
		memcpy(at2[i], model[i], DEV_SIZE);
	}
	write_member(0, 3); /* after the last set: not recovered */
}

static void free_points(uint8_t **a, uint8_t **b)
{
	int i;

	for (i = 0; i < NMEM; i++) {
		free(a[i]);
		free(b[i]);
	}
}

START_TEST(backup_and_recover)
{
	vsm_group *g = make_group(), *r = NULL;
	vsm_group_recover_opts ro = VSM_GROUP_RECOVER_OPTS_INIT;
	vsm_group_plan_entry e = VSM_GROUP_PLAN_ENTRY_INIT;
	uint8_t *at1[NMEM], *at2[NMEM];
	size_t i;

	two_sets(g, at1, at2);
	ck_assert_int_eq(sh("test -f '%s/g1.p2.group.json' && test -f '%s/g1.p2.db.bk'", bkdir,
			    bkdir), 0);
	ro.datastore = "ds2";
	ck_vsm(vsm_group_recover(&r, ctx, bkdir, &ro));
	ck_assert_str_eq(vsm_group_name(r), "g1");
	ck_assert_str_eq(vsm_group_datastore(r), "ds2");
	ck_assert_uint_eq(vsm_group_member_count(r), NMEM);
	same_as_model("ds2", names, at2);
	for (i = 0; i < NMEM; i++) {
		ck_vsm(vsm_group_plan_get(r, i, &e));
		if (!strcmp(e.member, "web")) {
			ck_assert_uint_eq(e.priority, 3);
			ck_assert_str_eq(e.mac, "52:54:00:12:34:56");
			ck_assert_str_eq(e.ip, "10.1.2.3");
			ck_assert_int_eq(e.prefix, 24);
		} else if (!strcmp(e.member, "app")) {
			ck_assert_uint_eq(e.n_after, 1);
			ck_assert_str_eq(e.after[0], "db");
		}
	}
	vsm_group_free(r);
	/* An earlier point of the chain, under another name, on ds1. */
	ro.datastore = "ds1";
	ro.point = "p1";
	ro.name = "old";
	ck_vsm_refused(vsm_group_recover(&r, ctx, bkdir, &ro), VSM_EEXISTS, "web");
	free_points(at1, at2);
	vsm_group_free(g);
	free_model();
}
END_TEST

START_TEST(bad_sets_refused)
{
	vsm_group *g = make_group(), *r = NULL;
	vsm_group_recover_opts ro = VSM_GROUP_RECOVER_OPTS_INIT;
	uint8_t *at1[NMEM], *at2[NMEM];
	int before = 0, fd;

	two_sets(g, at1, at2);
	before = tu_count_files(ds2dir);
	ro.datastore = "ds2";
	/* A damaged member file of the last set: found while restoring. */
	ck_assert_int_eq(sh("cp '%s/g1.p2.app.bk' '%s/app.keep'", bkdir, bkdir), 0);
	{
		char *p = NULL;
		uint8_t b;

		ck_assert(asprintf(&p, "%s/g1.p2.app.bk", bkdir) > 0);
		fd = open(p, O_RDWR);
		ck_assert(fd >= 0);
		ck_assert(pread(fd, &b, 1, 70) == 1);
		b ^= 1;
		ck_assert(pwrite(fd, &b, 1, 70) == 1);
		close(fd);
		free(p);
	}
	ck_vsm_refused(vsm_group_recover(&r, ctx, bkdir, &ro), VSM_ECORRUPT, "app");
	ck_assert_int_eq(tu_count_files(ds2dir), before);
	ck_assert_int_eq(vsm_group_lookup(&r, ctx, "ds2", "g1"), -VSM_ENOTFOUND);
	ck_assert_int_eq(sh("mv '%s/app.keep' '%s/g1.p2.app.bk'", bkdir, bkdir), 0);
	/* The full set gone: the chain has a gap. */
	ck_assert_int_eq(sh("mv '%s/g1.p1.group.json' '%s/p1.away'", bkdir, bkdir), 0);
	ck_vsm_refused(vsm_group_recover(&r, ctx, bkdir, &ro), VSM_ENOTFOUND, "not there");
	ck_assert_int_eq(sh("mv '%s/p1.away' '%s/g1.p1.group.json'", bkdir, bkdir), 0);
	/* A member file gone. */
	ck_assert_int_eq(sh("mv '%s/g1.p1.db.bk' '%s/db.away'", bkdir, bkdir), 0);
	ck_vsm_refused(vsm_group_recover(&r, ctx, bkdir, &ro), VSM_ENOTFOUND, "g1.p1.db.bk");
	ck_assert_int_eq(sh("mv '%s/db.away' '%s/g1.p1.db.bk'", bkdir, bkdir), 0);
	ck_assert_int_eq(tu_count_files(ds2dir), before);
	/* Not a manifest at all. */
	ck_assert_int_eq(sh("echo '{\"format\":\"libvsm-group-backup\",\"version\":1}' > "
			    "'%s/x.group.json'", bkdir), 0);
	ck_vsm_refused(vsm_group_recover(&r, ctx, bkdir, &ro), VSM_ECORRUPT, "missing field");
	ck_assert_int_eq(sh("rm '%s/x.group.json'", bkdir), 0);
	/* Sets of another group in the same directory. */
	ck_assert_int_eq(sh("sed 's/\"group_uuid\": *\"[^\"]*\"/\"group_uuid\": "
			    "\"00000000-0000-4000-8000-000000000001\"/' '%s/g1.p1.group.json' > "
			    "'%s/other.p1.group.json'", bkdir, bkdir), 0);
	ck_vsm_refused(vsm_group_recover(&r, ctx, bkdir, &ro), VSM_EINVAL, "several groups");
	ck_assert_int_eq(sh("rm '%s/other.p1.group.json'", bkdir), 0);
	/* Starting domains needs a host with a hypervisor. */
	ro.flags = VSM_GROUP_RECOVER_START;
	ck_vsm_refused(vsm_group_recover(&r, ctx, bkdir, &ro), VSM_EINVAL, "needs a host");
	ck_assert_int_eq(tu_count_files(ds2dir), before);
	free_points(at1, at2);
	vsm_group_free(g);
	free_model();
}
END_TEST

/* --- domains started in boot order on libvirt's test driver --- */
#ifdef VSM_TEST_LIBVIRT
#include <libvirt/libvirt.h>

typedef struct {
	char log[64][96];
	int n;
} steps;

static void on_step(const char *member, const char *step, const char *detail, void *payload)
{
	steps *s = payload;

	(void)detail;
	if (s->n < 64)
		snprintf(s->log[s->n++], sizeof(s->log[0]), "%s %s", step, member ? member : "-");
}

static int at_step(const steps *s, const char *what)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->log[i], what))
			return i;
	ck_abort_msg("step '%s' was not reported", what);
	return -1;
}

START_TEST(recover_starts_domains_in_order)
{
	/* test:///default keeps its domains while a connection is open. */
	virConnectPtr keep = virConnectOpen("test:///default");
	vsm_group *g = make_group(), *r = NULL;
	vsm_group_recover_opts ro = VSM_GROUP_RECOVER_OPTS_INIT;
	vsm_host_opts ho = VSM_HOST_OPTS_INIT;
	const vsm_hypervisor_ops *hv = NULL;
	uint8_t *at1[NMEM], *at2[NMEM];
	steps log = { .n = 0 };
	char *xml = NULL;
	int i;

	ck_assert_ptr_nonnull(keep);
	two_sets(g, at1, at2);
	ho.hypervisor_uri = "test:///default";
	ck_vsm(vsm_host_add(ctx, "h1", &ho));
	ck_vsm(vsm_host_link(ctx, "h1", "ds2", 0));
	ro.datastore = "ds2";
	ro.host = "h1";
	ro.flags = VSM_GROUP_RECOVER_START;
	ro.step = on_step;
	ro.payload = &log;
	ck_vsm(vsm_group_recover(&r, ctx, bkdir, &ro));
	/* db boots first; app has db's priority but comes after it; web last. */
	ck_assert_int_lt(at_step(&log, "running db"), at_step(&log, "start app"));
	ck_assert_int_lt(at_step(&log, "running app"), at_step(&log, "start web"));
	ck_assert_int_lt(at_step(&log, "deploy web"), at_step(&log, "define web"));
	ck_vsm(vsm__hv_for(ctx, "test:///default", &hv));
	for (i = 0; i < NMEM; i++)
		ck_assert_int_eq(hv->domain_state("test:///default", names[i]), VSM_HV_RUNNING);
	/* The plan's network, as the hypervisor defined it. */
	ck_vsm(hv->domain_xml("test:///default", "web", &xml));
	ck_assert_msg(strstr(xml, "52:54:00:12:34:56") && strstr(xml, "'default'") &&
		      strstr(xml, "10.1.2.3") && strstr(xml, "10.1.2.1"),
		      "web's domain lacks the plan's network: %s", xml);
	free(xml);
	ck_vsm(hv->domain_xml("test:///default", "db", &xml));
	ck_assert_msg(strstr(xml, "<disk"), "db's domain has no disk: %s", xml);
	free(xml);
	same_as_model("ds2", names, at2);
	for (i = 0; i < NMEM; i++)
		ck_vsm(hv->domain_remove("test:///default", names[i]));
	virConnectClose(keep);
	vsm_group_free(r);
	free_points(at1, at2);
	vsm_group_free(g);
	free_model();
}
END_TEST
#endif

/* --- a recovery killed at each of its journal steps --- */

static int crash_at, crash_seen;

static void crash_hook(const char *action)
{
	(void)action;
	if (++crash_seen == crash_at)
		_exit(77);
}

START_TEST(recover_crash_rolls_back)
{
	vsm_group *g = make_group(), *r = NULL;
	uint8_t *at1[NMEM], *at2[NMEM];
	int at, before, done = 0;

	two_sets(g, at1, at2);
	before = tu_count_files(ds2dir);
	vsm_group_free(g);
	g = NULL;
	for (at = 1; at < 80 && !done; at++) {
		pid_t pid;
		int st;

		/* Fork from a process without the library's threads: a lock
		 * one of them holds would stay held in the child. */
		vsm_ctx_free(ctx);
		ctx = NULL;
		fflush(NULL);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
			vsm_group_recover_opts ro = VSM_GROUP_RECOVER_OPTS_INIT;

			o.state_dir = state;
			if (vsm_ctx_open(&ctx, &o) < 0)
				_exit(3);
			crash_at = at;
			crash_seen = 0;
			vsm__wf_test_hook = crash_hook;
			ro.datastore = "ds2";
			_exit(vsm_group_recover(NULL, ctx, bkdir, &ro) < 0 ? 5 : 0);
		}
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert(WIFEXITED(st));
		ck_assert_msg(WEXITSTATUS(st) == 77 || WEXITSTATUS(st) == 0, "child exit %d",
			      WEXITSTATUS(st));
		done = WEXITSTATUS(st) == 0;
		ctx = tu_ctx(state);
		if (done) {
			same_as_model("ds2", names, at2);
		} else {
			ck_assert_int_eq(vsm_group_lookup(&r, ctx, "ds2", "g1"), -VSM_ENOTFOUND);
			ck_assert_msg(tu_count_files(ds2dir) == before, "step %d: %d files on ds2, "
				      "%d before", at, tu_count_files(ds2dir), before);
		}
	}
	ck_assert_msg(done, "the recovery never finished");
	free_points(at1, at2);
	vsm_group_free(g);
	free_model();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("recovery");
	TCase *t = tcase_create("recovery");

	tcase_add_unchecked_fixture(t, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 300);
	tcase_add_test(t, backup_and_recover);
	tcase_add_test(t, bad_sets_refused);
	tcase_add_test(t, recover_crash_rolls_back);
#ifdef VSM_TEST_LIBVIRT
	tcase_add_test(t, recover_starts_domains_in_order);
#endif
	suite_add_tcase(s, t);
	return tu_run(s);
}
