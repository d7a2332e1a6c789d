/*
 * Lease suite: acquisition and its refusals, fencing of metadata writes,
 * takeover of a killed holder only after the timeout, a paused holder
 * that loses its lease, manual renewal, and change notification between
 * two contexts. Every case runs under both protocols.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backends/file/file.h"
#include "leasetest.h"

static bool plain;

static void setup_caw(void)
{
	tu_root_setup();
	plain = false;
	lt_env(false);
}

static void setup_plain(void)
{
	tu_root_setup();
	plain = true;
	lt_env(true);
}

/* A datastore directory and its URI, fresh for each test. */
static char *dsdir, *dsuri;

static void fresh_ds(void)
{
	dsdir = tu_dir("ds");
	dsuri = tu_uri(dsdir);
}

static vsm_ctx *host_ctx(const char *host)
{
	char *dir = tu_dir(host);
	vsm_ctx *ctx = lt_host_ctx(dir, dsuri, host);

	free(dir);
	return ctx;
}

static vsm_lease *find_lease(vsm_lease **list, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(vsm_lease_container(list[i]), name))
			return list[i];
	return NULL;
}

START_TEST(acquire_refuse_release)
{
	vsm_ctx *a, *b;
	vsm_container *ca = NULL, *cb = NULL;
	vsm_lease **list = NULL;
	vsm_lease *l;
	size_t n = 0;
	uint64_t v1;

	fresh_ds();
	a = host_ctx("h1");
	b = host_ctx("h2");
	ck_vsm(tu_create(&ca, a, "ds", "web", 1, 1 << 20));
	ck_vsm(vsm_attach(ca, "h1", 0));
	ck_assert_str_eq(vsm_container_attached_host(ca), "h1");

	ck_vsm(vsm_container_lookup(&cb, b, "ds", "web"));
	ck_vsm_refused(vsm_attach(cb, "h2", 0), VSM_ELEASE, "lease is held by host 'h1' since ");
	ck_assert_msg(strstr(tu_msg(), "(heartbeat moving)"), "%s", tu_msg());
	/* Not attached here: deploying from h2 is refused before any I/O. */
	ck_vsm_refused(vsm_device_deploy(NULL, cb, "d0", NULL), VSM_ESTALE, "h1");

	ck_vsm(vsm_lease_status(&list, &n, b, "ds", VSM_LEASE_STATUS_WATCH));
	ck_assert_uint_eq(n, 1);
	l = find_lease(list, n, "web");
	ck_assert_ptr_nonnull(l);
	ck_assert_str_eq(vsm_lease_host(l), "h1");
	ck_assert_int_eq(vsm_lease_state_of(l), VSM_LEASE_LIVE);
	ck_assert_int_eq(vsm_lease_is_mine(l), 0);
	ck_assert_int_gt(vsm_lease_since(l), 0);
	v1 = vsm_lease_version(l);
	ck_assert_uint_gt(v1, 0);
	vsm_lease_list_free(list, n);

	ck_vsm(vsm_lease_status(&list, &n, a, "ds", 0));
	ck_assert_int_eq(vsm_lease_is_mine(find_lease(list, n, "web")), 1);
	vsm_lease_list_free(list, n);

	/* The holder deploys and detaches; the lease becomes free. */
	ck_vsm(vsm_device_deploy(NULL, ca, "d0", NULL));
	ck_vsm(vsm_detach(ca, VSM_DETACH_FORCE));
	ck_vsm(vsm_lease_status(&list, &n, b, "ds", 0));
	ck_assert_int_eq(vsm_lease_state_of(find_lease(list, n, "web")), VSM_LEASE_FREE);
	vsm_lease_list_free(list, n);

	ck_vsm(vsm_attach(cb, "h2", 0));
	ck_vsm(vsm_lease_status(&list, &n, b, "ds", 0));
	l = find_lease(list, n, "web");
	ck_assert_str_eq(vsm_lease_host(l), "h2");
	ck_assert_uint_gt(vsm_lease_version(l), v1);
	vsm_lease_list_free(list, n);
	/* h1's context now acts for nobody who holds it. */
	ck_vsm_refused(vsm_detach(ca, 0), VSM_ESTALE, "h2");
	ck_vsm(vsm_device_deploy(NULL, cb, "d0", NULL));
	ck_vsm(vsm_detach(cb, VSM_DETACH_FORCE));
	/* Attaching twice to the same host stays a no-op. */
	ck_vsm(vsm_attach(ca, "h1", 0));
	ck_vsm(vsm_attach(ca, "h1", 0));
	ck_vsm(vsm_detach(ca, 0));

	vsm_container_free(ca);
	vsm_container_free(cb);
	vsm_ctx_free(a);
	vsm_ctx_free(b);
}
END_TEST

/* --- a holder in a child process --- */

typedef struct {
	const char *dir, *host, *container;
	int ready[2];  /* child -> parent: 'R' once attached */
	int cmd[2];    /* parent -> child: any byte to continue */
} holder_args;

static volatile int lost_events;

static void on_event(const vsm_event *ev, void *payload)
{
	(void)payload;
	if (vsm_event_type_of(ev) == VSM_EVENT_LEASE_LOST)
		__atomic_add_fetch(&lost_events, 1, __ATOMIC_SEQ_CST);
}

/* Exit codes: 0 all as expected; 10+ setup; 20+ what went wrong after. */
static int holder_main(void *arg)
{
	holder_args *h = arg;
	vsm_container *c = NULL;
	vsm_ctx *ctx = lt_host_ctx_nock(h->dir, dsuri, h->host, 0);
	char byte = 'R';
	int64_t until;
	int rc;

	if (!ctx)
		return 10;
	if (vsm_event_register(ctx, on_event, NULL, NULL) < 0)
		return 11;
	if (vsm_container_lookup(&c, ctx, "ds", h->container) < 0 || vsm_attach(c, h->host, 0) < 0) {
		fprintf(stderr, "holder: %s\n", tu_msg());
		return 12;
	}
	if (write(h->ready[1], &byte, 1) != 1)
		return 13;
	if (read(h->cmd[0], &byte, 1) != 1)
		return 14;
	/* Resumed after the lease was taken over: we must hear about it... */
	until = lt_now_ms() + 10000;
	while (!__atomic_load_n(&lost_events, __ATOMIC_SEQ_CST) && lt_now_ms() < until)
		lt_sleep_ms(5);
	if (!__atomic_load_n(&lost_events, __ATOMIC_SEQ_CST))
		return 20;
	/* ... and our late metadata writes must be refused. */
	rc = vsm_device_deploy(NULL, c, "d0", NULL);
	if (rc != -VSM_ESTALE) {
		fprintf(stderr, "late deploy gave %d: %s\n", rc, tu_msg());
		return 21;
	}
	rc = vsm_detach(c, VSM_DETACH_FORCE);
	if (rc != -VSM_ESTALE) {
		fprintf(stderr, "late detach gave %d: %s\n", rc, tu_msg());
		return 22;
	}
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	return 0;
}

static pid_t start_holder(holder_args *h, const char *host)
{
	char byte = 0;
	pid_t pid;

	h->dir = tu_dir(host);
	h->host = host;
	h->container = "web";
	ck_assert(pipe(h->ready) == 0 && pipe(h->cmd) == 0);
	pid = lt_fork(holder_main, h);
	ck_assert_msg(read(h->ready[0], &byte, 1) == 1 && byte == 'R',
		      "holder failed to attach (exit %d)", lt_reap(pid));
	return pid;
}

START_TEST(killed_holder_taken_after_timeout)
{
	holder_args h;
	vsm_ctx *a, *b;
	vsm_container *c = NULL;
	lt_watch *w;
	int64_t before, t_end = 0;
	int rc, refused = 0;
	pid_t pid;

	fresh_ds();
	a = host_ctx("h0");
	ck_vsm(tu_create(NULL, a, "ds", "web", 1, 1 << 20));
	vsm_ctx_free(a);
	pid = start_holder(&h, "h1");
	w = lt_watch_start(dsdir, "h1");
	b = host_ctx("h2");
	ck_vsm(vsm_container_lookup(&c, b, "ds", "web"));
	ck_vsm_refused(vsm_attach(c, "h2", 0), VSM_ELEASE, "(heartbeat moving)");

	kill(pid, SIGKILL);
	ck_assert_int_eq(lt_reap(pid), 128 + SIGKILL);
	for (;;) {
		rc = vsm_attach(c, "h2", 0);
		t_end = lt_now_ms();
		if (rc == 0)
			break;
		ck_assert_msg(rc == -VSM_ELEASE, "attach: %d %s", rc, tu_msg());
		refused++;
		lt_sleep_ms(5);
	}
	/* The holder's last heartbeat became visible after @before; nobody
	 * may take over before it has stood still for the timeout. */
	before = lt_watch_before_last_change(w);
	lt_watch_stop(w);
	ck_assert_int_gt(before, 0);
	ck_assert_msg(t_end >= before + LT_TIMEOUT_MS, "taken over %lld ms after the last "
		      "heartbeat, timeout is %d", (long long)(t_end - before), LT_TIMEOUT_MS);
	ck_assert_int_gt(refused, 0);
	ck_assert_str_eq(vsm_container_attached_host(c), "h2");
	ck_vsm(vsm_device_deploy(NULL, c, "d0", NULL));
	vsm_container_free(c);
	vsm_ctx_free(b);
	close(h.ready[0]);
	close(h.ready[1]);
	close(h.cmd[0]);
	close(h.cmd[1]);
	free((char *)h.dir);
}
END_TEST

START_TEST(paused_holder_loses_and_is_fenced)
{
	holder_args h;
	vsm_ctx *b;
	vsm_container *c = NULL;
	char byte = 'G';
	pid_t pid;

	fresh_ds();
	b = host_ctx("h2");
	ck_vsm(tu_create(NULL, b, "ds", "web", 1, 1 << 20));
	vsm_ctx_free(b);
	pid = start_holder(&h, "h1");
	b = host_ctx("h2");
	ck_vsm(vsm_container_lookup(&c, b, "ds", "web"));
	kill(pid, SIGSTOP);
	/* Asked to take over, attach watches the stopped heartbeat until the
	 * timeout has passed, then takes the lease. */
	ck_vsm(vsm_attach(c, "h2", VSM_ATTACH_TAKEOVER));
	ck_assert_str_eq(vsm_container_attached_host(c), "h2");
	kill(pid, SIGCONT);
	ck_assert(write(h.cmd[1], &byte, 1) == 1);
	ck_assert_int_eq(lt_reap(pid), 0);
	/* Nothing the old holder tried reached the record. */
	ck_vsm(vsm_container_refresh(c));
	ck_assert_str_eq(vsm_container_attached_host(c), "h2");
	ck_assert_ptr_null(vsm_device_locator(vsm_container_device(c, 0)));
	ck_vsm(vsm_device_deploy(NULL, c, "d0", NULL));
	ck_vsm(vsm_detach(c, VSM_DETACH_FORCE));
	vsm_container_free(c);
	vsm_ctx_free(b);
	close(h.ready[0]);
	close(h.ready[1]);
	close(h.cmd[0]);
	close(h.cmd[1]);
	free((char *)h.dir);
}
END_TEST

START_TEST(manual_renewal)
{
	char *dir;
	vsm_ctx *a;
	vsm_container *c = NULL;
	int ms;

	fresh_ds();
	dir = tu_dir("m1");
	a = lt_host_ctx_nock(dir, dsuri, "m1", VSM_CTX_LEASE_MANUAL);
	ck_assert_ptr_nonnull(a);
	ck_vsm(tu_create(&c, a, "ds", "web", 1, 1 << 20));
	ck_vsm(vsm_attach(c, "m1", 0));
	ms = vsm_lease_renew(a, 0);
	ck_assert_int_ge(ms, 0);
	ck_assert_int_le(ms, LT_RENEW_MS);
	ck_vsm_refused(vsm_lease_renew(a, 1), VSM_EINVAL, "flags");
	ck_vsm(vsm_device_deploy(NULL, c, "d0", NULL));
	ck_vsm(vsm_detach(c, VSM_DETACH_FORCE));
	vsm_container_free(c);
	vsm_ctx_free(a);
	free(dir);
}
END_TEST

static volatile int changed_events;

static void on_changed(const vsm_event *ev, void *payload)
{
	(void)payload;
	if (vsm_event_type_of(ev) == VSM_EVENT_DATASTORE_CHANGED)
		__atomic_add_fetch(&changed_events, 1, __ATOMIC_SEQ_CST);
}

START_TEST(other_context_sees_change)
{
	vsm_ctx *a, *b;
	vsm_container **list = NULL;
	size_t n = 0;
	int64_t until;

	fresh_ds();
	a = host_ctx("h1");
	b = host_ctx("h2");
	ck_vsm(vsm_container_list(&list, &n, b, "ds"));
	ck_assert_uint_eq(n, 0);
	vsm_container_list_free(list, n);
	ck_vsm(vsm_event_register(b, on_changed, NULL, NULL));
	ck_vsm(tu_create(NULL, a, "ds", "db", 1, 1 << 20));
	/* B is told without asking (its renewal reads the generation). */
	until = lt_now_ms() + 20000;
	while (!__atomic_load_n(&changed_events, __ATOMIC_SEQ_CST) && lt_now_ms() < until)
		lt_sleep_ms(5);
	ck_assert_int_gt(changed_events, 0);
	ck_vsm(vsm_container_list(&list, &n, b, "ds"));
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(vsm_container_name(list[0]), "db");
	vsm_container_list_free(list, n);
	vsm_ctx_free(a);
	vsm_ctx_free(b);
}
END_TEST

START_TEST(protocol_is_per_datastore)
{
	vsm_ctx *a, *b;
	char *dir;
	int rc;

	fresh_ds();
	a = host_ctx("h1");
	vsm_ctx_free(a);
	/* A process told to use the other protocol is refused, not mixed in. */
	setenv("VSM_LEASE_PROTOCOL", plain ? "caw" : "plain", 1);
	dir = tu_dir("h2");
	b = tu_ctx(dir);
	rc = vsm_datastore_add(b, "ds", dsuri, 0);
	if (plain) {
		/* A datastore recorded as plain stays plain, whatever the backend
		 * or the environment offer. */
		ck_assert_int_eq(rc, 0);
	} else {
		ck_assert_int_eq(rc, -VSM_ESTATE);
		ck_assert_msg(strstr(tu_msg(), "compare-and-write"), "%s", tu_msg());
	}
	lt_env(plain);
	vsm_ctx_free(b);
	free(dir);
}
END_TEST

START_TEST(dead_host_slots_are_reclaimed)
{
	vsm_ctx *a, *b;
	vsm_container *c = NULL;
	char host[16];
	int64_t until;
	int i, rc;

	fresh_ds();
	a = host_ctx("k0");
	ck_vsm(tu_create(NULL, a, "ds", "web", 1, 1 << 20));
	/* One context keeps every heartbeat slot (64 by default) alive. On
	 * the plain protocol its state directory already holds one, for the
	 * metadata lock (doc/leases.md), so one host fewer fits. */
	ck_vsm(vsm_lease_keep(a, "k0", 0));
	for (i = 1; i < (plain ? 63 : 64); i++) {
		snprintf(host, sizeof(host), "k%d", i);
		ck_vsm(vsm_host_add(a, host, NULL));
		ck_vsm(vsm_host_link(a, host, "ds", 0));
		ck_vsm(vsm_lease_keep(a, host, 0));
	}
	b = host_ctx("late");
	ck_vsm(vsm_container_lookup(&c, b, "ds", "web"));
	ck_vsm_refused(vsm_attach(c, "late", 0), VSM_ENOSPC, "heartbeat slots are taken");
	/* Once those hosts are gone for the timeout, their slots are free. */
	vsm_ctx_free(a);
	until = lt_now_ms() + 20000;
	while ((rc = vsm_attach(c, "late", 0)) == -VSM_ENOSPC && lt_now_ms() < until)
		lt_sleep_ms(20);
	ck_assert_msg(rc == 0, "attach after the timeout: %d %s", rc, tu_msg());
	ck_vsm(vsm_detach(c, 0));
	vsm_container_free(c);
	vsm_ctx_free(b);
}
END_TEST

/* "flaky://DIR": the file backend whose writes fail while @fail_writes. */
static int fail_writes;

static int flaky_open(vsm_backend_ds **out, const char *uri, const vsm_backend_open_args *args)
{
	char u[4096];

	snprintf(u, sizeof(u), "file%s", uri + strlen("flaky"));
	return vsm__file_backend_ops.open(out, u, args);
}

/* The file backend's devices with their table swapped for a copy whose
 * writes can fail. */
static struct vsm_bdev_io_ops flaky_io;
static const struct vsm_bdev_io_ops *file_io;

static int flaky_write(vsm_bdev_io *b, const void *buf, size_t len, uint64_t off,
		       unsigned int flags)
{
	if (__atomic_load_n(&fail_writes, __ATOMIC_SEQ_CST))
		return vsm_error_set(VSM_EIO, "injected write failure");
	return file_io->write(b, buf, len, off, flags);
}

static int flaky_caw(vsm_bdev_io *b, const void *exp, const void *buf, size_t len,
		     uint64_t off)
{
	if (__atomic_load_n(&fail_writes, __ATOMIC_SEQ_CST))
		return vsm_error_set(VSM_EIO, "injected write failure");
	return file_io->compare_and_write(b, exp, buf, len, off);
}

static int flaky_wrap(vsm_bdev_io *io, int rc)
{
	if (rc < 0)
		return rc;
	if (!file_io) {
		file_io = io->ops;
		flaky_io = *file_io;
		flaky_io.write = flaky_write;
		flaky_io.compare_and_write = flaky_caw;
	}
	io->ops = &flaky_io;
	return 0;
}

static int flaky_device_open(vsm_bdev_io **out, vsm_backend_ds *ds, const char *key,
			     unsigned int flags)
{
	int rc = vsm__file_backend_ops.device_open(out, ds, key, flags);

	return flaky_wrap(rc == 0 ? *out : NULL, rc);
}

static int flaky_meta_open(vsm_bdev_io **out, vsm_backend_ds *ds, uint64_t min,
			   unsigned int flags)
{
	int rc = vsm__file_backend_ops.meta_open(out, ds, min, flags);

	return flaky_wrap(rc == 0 ? *out : NULL, rc);
}

START_TEST(failed_renewals_raise_lease_lost)
{
	struct vsm_datastore_ops ops = vsm__file_backend_ops;
	vsm_container *c = NULL;
	char *dir, *uri;
	vsm_ctx *a;
	int64_t until;
	int rc;

	fresh_ds();
	ck_assert(asprintf(&uri, "flaky://%s", dsdir) > 0);
	dir = tu_dir("f1");
	a = tu_ctx(dir);
	ops.scheme = "flaky";
	ops.open = flaky_open;
	ops.device_open = flaky_device_open;
	ops.meta_open = flaky_meta_open;
	ck_vsm(vsm_datastore_ops_register(a, &ops, NULL));
	ck_vsm(vsm_event_register(a, on_event, NULL, NULL));
	ck_vsm(vsm_datastore_add(a, "ds", uri, 0));
	ck_vsm(vsm_host_add(a, "f1", NULL));
	ck_vsm(vsm_host_link(a, "f1", "ds", 0));
	ck_vsm(tu_create(&c, a, "ds", "web", 1, 1 << 20));
	ck_vsm(vsm_attach(c, "f1", 0));
	/* The storage stops taking writes: renewals fail, and once the lease
	 * may have been taken the context says so. */
	__atomic_store_n(&fail_writes, 1, __ATOMIC_SEQ_CST);
	until = lt_now_ms() + 10000;
	while (!__atomic_load_n(&lost_events, __ATOMIC_SEQ_CST) && lt_now_ms() < until)
		lt_sleep_ms(5);
	ck_assert_int_gt(lost_events, 0);
	rc = vsm_device_deploy(NULL, c, "d0", NULL);
	ck_assert_msg(rc == -VSM_EIO, "deploy without storage: %d %s", rc, tu_msg());
	/* Storage back, nobody took the lease: the host takes it up again. */
	__atomic_store_n(&fail_writes, 0, __ATOMIC_SEQ_CST);
	ck_vsm(vsm_device_deploy(NULL, c, "d0", NULL));
	ck_vsm(vsm_detach(c, VSM_DETACH_FORCE));
	vsm_container_free(c);
	vsm_ctx_free(a);
	free(dir);
	free(uri);
}
END_TEST

static TCase *cases(const char *name, void (*setup)(void))
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, setup, tu_root_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, acquire_refuse_release);
	tcase_add_test(tc, killed_holder_taken_after_timeout);
	tcase_add_test(tc, paused_holder_loses_and_is_fenced);
	tcase_add_test(tc, manual_renewal);
	tcase_add_test(tc, other_context_sees_change);
	tcase_add_test(tc, protocol_is_per_datastore);
	tcase_add_test(tc, dead_host_slots_are_reclaimed);
	tcase_add_test(tc, failed_renewals_raise_lease_lost);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("lease");

	suite_add_tcase(s, cases("caw", setup_caw));
	suite_add_tcase(s, cases("plain", setup_plain));
	return tu_run(s);
}
