/*
 * Host migration suite (doc/host-migration.md): two (or three) processes
 * as hosts on one file datastore, each a child with its own context and
 * state directory, driven through pipes. A full handover with both sides
 * writing the device while allowed and the source fenced after complete;
 * cancel; a target killed during the handover (falls back to the
 * source); a source killed during it (the target completes); two targets
 * and the source racing, counting one winner per round. Every case runs
 * under both lease protocols.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "lease/sector.h"
#include "leasetest.h"

static bool plain;
static char *dsuri;

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

/* --------------------------------------------- a host in a child process */

typedef struct {
	const char *host;
	char *dir;
	pid_t pid;
	FILE *to, *from;
} host_proc;

static vsm_ctx *child_ctx;
static const char *child_host;
static int mig_events[4]; /* start, switchover, complete, abort */
static int wrong_host_events; /* MIGRATION events whose host is not "dst" */

static void on_event(const vsm_event *ev, void *payload)
{
	const char *d = vsm_event_detail(ev);

	(void)payload;
	if (vsm_event_type_of(ev) != VSM_EVENT_MIGRATION || !d)
		return;
	if (!vsm_event_host(ev) || strcmp(vsm_event_host(ev), "dst"))
		__atomic_add_fetch(&wrong_host_events, 1, __ATOMIC_SEQ_CST);
	if (!strncmp(d, "start", 5))
		__atomic_add_fetch(&mig_events[0], 1, __ATOMIC_SEQ_CST);
	else if (!strncmp(d, "switchover", 10))
		__atomic_add_fetch(&mig_events[1], 1, __ATOMIC_SEQ_CST);
	else if (!strncmp(d, "complete", 8))
		__atomic_add_fetch(&mig_events[2], 1, __ATOMIC_SEQ_CST);
	else if (!strncmp(d, "abort", 5))
		__atomic_add_fetch(&mig_events[3], 1, __ATOMIC_SEQ_CST);
}

static int event_index(const char *name)
{
	return !strcmp(name, "start") ? 0 : !strcmp(name, "switchover") ? 1 :
	       !strcmp(name, "complete") ? 2 : 3;
}

/* Write 512 bytes of @v at block @n of device d0 (open, write, close). */
static int dev_write(const char *name, int n, int v)
{
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img = NULL;
	char buf[512];
	int rc;

	o.flags = VSM_IMAGE_OPEN_RDWR;
	if ((rc = vsm_image_open_device(&img, child_ctx, "ds", name, "d0", &o)) < 0)
		return rc;
	memset(buf, v, sizeof(buf));
	rc = vsm_image_write(img, buf, sizeof(buf), (uint64_t)n * 65536, 0);
	if (rc == 0)
		rc = vsm_image_flush(img);
	if (vsm_image_close(img) < 0 && rc == 0)
		rc = -VSM_EIO;
	return rc;
}

static int run_cmd(char *line)
{
	char op[32] = "", name[64] = "", arg[64] = "";
	vsm_container *c = NULL;
	int rc, n;

	n = sscanf(line, "%31s %63s %63s", op, name, arg);
	if (n < 1)
		return -VSM_EINVAL;
	if (!strcmp(op, "wait")) {
		/* wait EVENT MS: until one such event arrived, or MS passed */
		int64_t until = lt_now_ms() + atoi(arg);
		int *cnt = &mig_events[event_index(name)];

		while (!__atomic_load_n(cnt, __ATOMIC_SEQ_CST) && lt_now_ms() < until)
			lt_sleep_ms(5);
		return __atomic_load_n(cnt, __ATOMIC_SEQ_CST);
	}
	if (!strcmp(op, "write"))
		return dev_write(name, atoi(arg), 'a' + atoi(arg));
	if ((rc = vsm_container_lookup(&c, child_ctx, "ds", name)) < 0)
		return rc;
	if (!strcmp(op, "attach"))
		rc = vsm_attach(c, child_host, 0);
	else if (!strcmp(op, "begin"))
		rc = vsm_handover_begin(c, arg, NULL);
	else if (!strcmp(op, "accept"))
		rc = vsm_handover_accept(c, child_host, 0);
	else if (!strcmp(op, "complete"))
		rc = vsm_handover_complete(c, 0);
	else if (!strcmp(op, "take")) /* accept, then complete */
		rc = vsm_handover_accept(c, child_host, 0) < 0 ? -vsm_error_last()->code :
		     vsm_handover_complete(c, 0);
	else if (!strcmp(op, "cancel")) {
		lt_sleep_ms(atoi(arg));
		rc = vsm_handover_cancel(c, 0);
	} else if (!strcmp(op, "state"))
		rc = vsm_handover_state_of(c, NULL);
	else if (!strcmp(op, "deploy"))
		rc = vsm_device_deploy(NULL, c, "d0", NULL);
	else if (!strcmp(op, "detach"))
		rc = vsm_detach(c, VSM_DETACH_FORCE);
	else
		rc = -VSM_EINVAL;
	vsm_container_free(c);
	return rc;
}

static int child_main(void *arg)
{
	host_proc *h = arg;
	char line[256];

	child_host = h->host;
	if (!(child_ctx = lt_host_ctx_nock(h->dir, dsuri, h->host, 0)))
		return 10;
	if (vsm_event_register(child_ctx, on_event, NULL, NULL) < 0)
		return 11;
	fprintf(h->from, "ready\n");
	fflush(h->from);
	while (fgets(line, sizeof(line), h->to)) {
		int rc;

		if (!strncmp(line, "quit", 4))
			break;
		rc = run_cmd(line);
		fprintf(h->from, "%d %s\n", rc, rc < 0 ? tu_msg() : "");
		fflush(h->from);
	}
	vsm_ctx_free(child_ctx);
	return 0;
}

static void host_start(host_proc *h, const char *host)
{
	int to[2], from[2];
	char line[64];

	memset(h, 0, sizeof(*h));
	h->host = host;
	h->dir = tu_dir(host);
	ck_assert(pipe(to) == 0 && pipe(from) == 0);
	h->to = fdopen(to[0], "r");
	h->from = fdopen(from[1], "w");
	h->pid = lt_fork(child_main, h);
	fclose(h->to);
	fclose(h->from);
	h->to = fdopen(to[1], "w");
	h->from = fdopen(from[0], "r");
	ck_assert_msg(fgets(line, sizeof(line), h->from) && !strncmp(line, "ready", 5),
		      "host %s did not start (exit %d)", host, lt_reap(h->pid));
}

static char last_msg[600], last_cmd[256];

static void host_send(host_proc *h, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_cmd, sizeof(last_cmd), fmt, ap);
	va_end(ap);
	fprintf(h->to, "%s\n", last_cmd);
	fflush(h->to);
}

static int host_reply(host_proc *h)
{
	char line[600];
	int rc = 0;

	ck_assert_msg(fgets(line, sizeof(line), h->from) != NULL, "host %s died", h->host);
	ck_assert(sscanf(line, "%d", &rc) == 1);
	snprintf(last_msg, sizeof(last_msg), "%s", line);
	return rc;
}

#define CMD(h, ...) (host_send((h), __VA_ARGS__), host_reply(h))
#define ck_cmd(h, ...) do { \
		int rc_ = CMD((h), __VA_ARGS__); \
		ck_assert_msg(rc_ == 0, "%s: '%s' gave %s", (h)->host, last_cmd, last_msg); \
	} while (0)
#define ck_cmd_rc(h, want, ...) do { \
		int rc_ = CMD((h), __VA_ARGS__); \
		ck_assert_msg(rc_ == (want), "%s: '%s' gave %s, expected %d", (h)->host, \
			      last_cmd, last_msg, (want)); \
	} while (0)

static void host_stop(host_proc *h)
{
	if (h->pid > 0) {
		host_send(h, "quit");
		ck_assert_int_eq(lt_reap(h->pid), 0);
	}
	fclose(h->to);
	fclose(h->from);
	free(h->dir);
}

static void host_kill(host_proc *h)
{
	kill(h->pid, SIGKILL);
	ck_assert_int_eq(lt_reap(h->pid), 128 + SIGKILL);
	h->pid = 0;
}

/* A fresh datastore with containers @names (made by a context that is
 * closed before any child starts). */
static void fresh(const char *const *names, size_t n)
{
	char *dir, *dsdir;
	vsm_ctx *a;
	size_t i;

	dsdir = tu_dir("ds");
	free(dsuri);
	dsuri = tu_uri(dsdir);
	free(dsdir);
	dir = tu_dir("maker");
	a = lt_host_ctx(dir, dsuri, "maker");
	for (i = 0; i < n; i++)
		ck_vsm(tu_create(NULL, a, "ds", names[i], 1, 4 << 20));
	vsm_ctx_free(a);
	free(dir);
}

/* What a fresh context of the parent sees: attached host and lease
 * holder of @name, and block @n of d0 (its first byte). */
static void check_holder(const char *name, const char *host)
{
	char *dir = tu_dir("observer");
	vsm_ctx *o = lt_host_ctx(dir, dsuri, "observer");
	vsm_container *c = NULL;
	vsm_lease **list = NULL;
	size_t n = 0, i;
	bool found = false;

	ck_vsm(vsm_container_lookup(&c, o, "ds", name));
	ck_assert_str_eq(vsm_container_attached_host(c), host);
	ck_vsm(vsm_lease_status(&list, &n, o, "ds", 0));
	for (i = 0; i < n; i++) {
		if (strcmp(vsm_lease_container(list[i]), name))
			continue;
		found = true;
		ck_assert_str_eq(vsm_lease_host(list[i]), host);
	}
	ck_assert(found);
	vsm_lease_list_free(list, n);
	vsm_container_free(c);
	vsm_ctx_free(o);
	free(dir);
}

static void check_blocks(const char *name, int nblocks)
{
	char *dir = tu_dir("observer");
	vsm_ctx *o = lt_host_ctx(dir, dsuri, "observer");
	vsm_image *img = NULL;
	char buf[512];
	int i;

	ck_vsm(vsm_image_open_device(&img, o, "ds", name, "d0", NULL));
	for (i = 0; i < nblocks; i++) {
		ck_vsm(vsm_image_read(img, buf, sizeof(buf), (uint64_t)i * 65536));
		ck_assert_msg(buf[0] == 'a' + i && buf[511] == 'a' + i, "block %d lost", i);
	}
	vsm_image_close(img);
	vsm_ctx_free(o);
	free(dir);
}

START_TEST(handover_full)
{
	const char *names[] = { "web" };
	host_proc s, t;

	fresh(names, 1);
	host_start(&s, "src");
	host_start(&t, "dst");
	ck_cmd(&s, "attach web");
	ck_cmd(&s, "write web 0");
	/* Not admitted before it accepts. */
	ck_cmd_rc(&t, -VSM_EBUSY, "write web 1");
	ck_cmd_rc(&t, -VSM_ESTATE, "accept web");
	ck_cmd(&s, "begin web dst");
	ck_cmd(&s, "begin web dst"); /* again: a no-op */
	ck_cmd_rc(&s, -VSM_ESTATE, "begin web other");
	ck_cmd_rc(&t, -VSM_EBUSY, "write web 1");
	ck_cmd_rc(&t, -VSM_ESTATE, "complete web");
	ck_cmd(&t, "accept web");
	ck_cmd_rc(&t, VSM_HANDOVER_ACCEPTED, "state web");
	/* Both admitted: the migration decides who writes; here in turn. */
	ck_cmd(&t, "write web 1");
	ck_cmd(&s, "write web 2");
	/* Record changes stay the source's, and it cannot let go meanwhile. */
	ck_cmd_rc(&s, -VSM_ESTATE, "detach web");
	ck_cmd(&t, "complete web");
	ck_cmd(&t, "complete web"); /* again: a no-op */
	ck_cmd_rc(&t, VSM_HANDOVER_NONE, "state web");
	ck_cmd(&t, "write web 3");
	/* The old source is fenced, and told. */
	ck_cmd_rc(&s, -VSM_ESTALE, "write web 4");
	ck_cmd_rc(&s, -VSM_ESTALE, "deploy web");
	ck_cmd_rc(&s, -VSM_ESTALE, "cancel web 0");
	ck_assert_int_ge(CMD(&s, "wait complete 5000"), 1);
	ck_assert_int_ge(CMD(&s, "wait start 100"), 1);
	ck_assert_int_ge(CMD(&t, "wait switchover 100"), 1);
	ck_assert_int_ge(CMD(&t, "wait complete 100"), 1);
	ck_cmd(&t, "deploy web");
	host_stop(&s);
	host_stop(&t);
	check_holder("web", "dst");
	check_blocks("web", 4);
}
END_TEST

START_TEST(handover_cancel)
{
	const char *names[] = { "web" };
	host_proc s, t;

	fresh(names, 1);
	host_start(&s, "src");
	host_start(&t, "dst");
	ck_cmd(&s, "attach web");
	ck_cmd_rc(&s, -VSM_ESTATE, "cancel web 0");
	ck_cmd(&s, "begin web dst");
	ck_cmd(&t, "accept web");
	ck_cmd(&s, "cancel web 0");
	ck_cmd_rc(&s, VSM_HANDOVER_NONE, "state web");
	ck_cmd_rc(&t, -VSM_ESTALE, "complete web");
	ck_assert_int_ge(CMD(&t, "wait abort 5000"), 1);
	ck_assert_int_ge(CMD(&s, "wait abort 100"), 1);
	ck_assert_int_lt(CMD(&t, "write web 1"), 0);
	ck_cmd(&s, "write web 0");
	/* A new handover after a cancelled one. */
	ck_cmd(&s, "begin web dst");
	ck_cmd(&s, "cancel web 0");
	ck_cmd(&s, "detach web");
	host_stop(&s);
	host_stop(&t);
}
END_TEST

START_TEST(target_killed_falls_back)
{
	const char *names[] = { "web" };
	host_proc s, t;

	fresh(names, 1);
	host_start(&s, "src");
	host_start(&t, "dst");
	ck_cmd(&s, "attach web");
	ck_cmd(&s, "begin web dst");
	ck_cmd(&t, "accept web");
	ck_cmd(&t, "write web 0");
	host_kill(&t);
	/* After the target's heartbeat stood still for the timeout, the
	 * source's renewal takes the lease back alone and says so. */
	ck_assert_int_ge(CMD(&s, "wait abort 10000"), 1);
	ck_cmd_rc(&s, VSM_HANDOVER_NONE, "state web");
	ck_cmd(&s, "write web 1");
	ck_cmd(&s, "deploy web");
	host_stop(&s);
	fclose(t.to);
	fclose(t.from);
	free(t.dir);
	check_holder("web", "src");
	check_blocks("web", 2);
}
END_TEST

START_TEST(source_killed_target_completes)
{
	const char *names[] = { "web" };
	host_proc s, t;

	fresh(names, 1);
	host_start(&s, "src");
	host_start(&t, "dst");
	ck_cmd(&s, "attach web");
	ck_cmd(&s, "write web 0");
	ck_cmd(&s, "begin web dst");
	ck_cmd(&t, "accept web");
	/* A third host that watched the source die may not take the lease
	 * over while the admitted target lives. */
	{
		char *dir = tu_dir("third");
		vsm_ctx *x = lt_host_ctx(dir, dsuri, "third");
		vsm_container *c = NULL;

		ck_vsm(vsm_container_lookup(&c, x, "ds", "web"));
		ck_vsm(vsm_lease_keep(x, "third", 0));
		host_kill(&s);
		lt_sleep_ms(3 * LT_TIMEOUT_MS);
		ck_vsm_refused(vsm_attach(c, "third", 0), VSM_ELEASE, "being handed over");
		vsm_container_free(c);
		vsm_ctx_free(x);
		free(dir);
	}
	ck_cmd(&t, "write web 1");
	ck_cmd(&t, "complete web");
	ck_cmd(&t, "write web 2");
	ck_cmd(&t, "deploy web");
	host_stop(&t);
	fclose(s.to);
	fclose(s.from);
	free(s.dir);
	check_holder("web", "dst");
	check_blocks("web", 3);
}
END_TEST

#define RACE_ROUNDS 8

START_TEST(racing_targets_one_winner)
{
	const char *names[RACE_ROUNDS] = { "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7" };
	host_proc s, t1, t2;
	int i, won_t1 = 0, won_src = 0;

	fresh(names, RACE_ROUNDS);
	host_start(&s, "src");
	host_start(&t1, "dst1");
	host_start(&t2, "dst2");
	for (i = 0; i < RACE_ROUNDS; i++) {
		int r_s, r_1, r_2;

		ck_cmd(&s, "attach %s", names[i]);
		ck_cmd(&s, "begin %s dst1", names[i]);
		/* All three at once: the named target accepts and completes,
		 * the other target tries the same, the source cancels. */
		host_send(&t1, "take %s", names[i]);
		host_send(&t2, "take %s", names[i]);
		host_send(&s, "cancel %s %d", names[i], (i % 4) * 5);
		r_1 = host_reply(&t1);
		r_2 = host_reply(&t2);
		r_s = host_reply(&s);
		ck_assert_msg(r_2 < 0, "round %d: a target not named won", i);
		ck_assert_msg((r_1 == 0) != (r_s == 0), "round %d: target %d, source cancel %d",
			      i, r_1, r_s);
		won_t1 += r_1 == 0;
		won_src += r_s == 0;
		/* The winner holds it and may use it; the loser may not. */
		ck_cmd_rc(r_1 == 0 ? &t1 : &s, 0, "deploy %s", names[i]);
		ck_cmd_rc(r_1 == 0 ? &s : &t1, -VSM_ESTALE, "deploy %s", names[i]);
	}
	ck_assert_int_eq(won_t1 + won_src, RACE_ROUNDS);
	fprintf(stderr, "race (%s): target won %d, source's cancel won %d of %d\n",
		plain ? "plain" : "caw", won_t1, won_src, RACE_ROUNDS);
	host_stop(&s);
	host_stop(&t1);
	host_stop(&t2);
	/* Nothing lost: every container is there, attached to its winner. */
	{
		char *dir = tu_dir("observer");
		vsm_ctx *o = lt_host_ctx(dir, dsuri, "observer");
		vsm_container **list = NULL;
		size_t n = 0, k, at1 = 0, asrc = 0;

		ck_vsm(vsm_container_list(&list, &n, o, "ds"));
		ck_assert_uint_eq(n, RACE_ROUNDS);
		for (k = 0; k < n; k++) {
			const char *h = vsm_container_attached_host(list[k]);

			ck_assert_ptr_nonnull(h);
			at1 += !strcmp(h, "dst1");
			asrc += !strcmp(h, "src");
		}
		ck_assert_uint_eq(at1, (size_t)won_t1);
		ck_assert_uint_eq(asrc, (size_t)won_src);
		vsm_container_list_free(list, n);
		vsm_ctx_free(o);
		free(dir);
	}
}
END_TEST

/* One context acting for both hosts: vsm_container_migrate_host does
 * the whole handover; to a host it does not know, it only begins. */
START_TEST(migrate_host_one_context)
{
	const char *names[] = { "web" };
	char *dir = NULL, *target = NULL;
	vsm_container *c = NULL;
	vsm_handover_opts o = VSM_HANDOVER_OPTS_INIT;
	vsm_ctx *a;
	int64_t until;

	fresh(names, 1);
	dir = tu_dir("both");
	a = lt_host_ctx(dir, dsuri, "src");
	ck_vsm(vsm_host_add(a, "dst", NULL));
	ck_vsm(vsm_host_link(a, "dst", "ds", 0));
	memset(mig_events, 0, sizeof(mig_events));
	wrong_host_events = 0;
	ck_vsm(vsm_event_register(a, on_event, NULL, NULL));
	ck_vsm(vsm_container_lookup(&c, a, "ds", "web"));
	ck_vsm_refused(vsm_container_migrate_host(c, "dst", NULL), VSM_ESTATE, "not attached");
	ck_vsm(vsm_attach(c, "src", 0));
	o.flags = 1u << 7;
	ck_vsm_refused(vsm_container_migrate_host(c, "dst", &o), VSM_EINVAL, "flags");
	ck_vsm(vsm_container_migrate_host(c, "dst", NULL));
	ck_assert_str_eq(vsm_container_attached_host(c), "dst");
	ck_assert_int_eq(vsm_handover_state_of(c, &target), VSM_HANDOVER_NONE);
	ck_assert_ptr_null(target);
	until = lt_now_ms() + 5000;
	while (!__atomic_load_n(&mig_events[2], __ATOMIC_SEQ_CST) && lt_now_ms() < until)
		lt_sleep_ms(5);
	ck_assert_int_ge(mig_events[0], 1);
	ck_assert_int_ge(mig_events[1], 1);
	ck_assert_int_ge(mig_events[2], 1);
	ck_assert_int_eq(mig_events[3], 0);
	ck_assert_int_eq(wrong_host_events, 0);
	ck_vsm(vsm_device_deploy(NULL, c, "d0", NULL));
	/* A target this context does not know: begun only. */
	ck_assert_int_eq(vsm_container_migrate_host(c, "far", NULL), VSM_HANDOVER_BEGUN);
	ck_assert_int_eq(vsm_handover_state_of(c, &target), VSM_HANDOVER_BEGUN);
	ck_assert_str_eq(target, "far");
	free(target);
	ck_vsm_refused(vsm_container_migrate_host(c, "other", NULL), VSM_ESTATE,
		       "already being handed over to host 'far'");
	ck_vsm(vsm_handover_cancel(c, 0));
	ck_vsm(vsm_detach(c, VSM_DETACH_FORCE));
	vsm_container_free(c);
	vsm_ctx_free(a);
	free(dir);
}
END_TEST

/* Version 2 sectors only for a lease in a handover; version 1 ones (what
 * 0.1 wrote) still read; anything newer, or a bad state, is refused. */
START_TEST(sector_versions)
{
	uint8_t b[LS_SECTOR];
	vsm_lv v, back;
	vsm_ballot bl, blb;
	vsm_lhdr h = { .format = 2, .mode = LS_MODE_PLAIN, .timeout_ms = 400, .renew_ms = 50 };

	memset(&v, 0, sizeof(v));
	v.lver = 7;
	v.owner_slot = 1;
	v.owner_gen = 3;
	snprintf(v.owner, sizeof(v.owner), "src");
	snprintf(v.uuid, sizeof(v.uuid), "0b9e6a3c-8f0e-4c57-9a3e-2d7b1c6f5e41");
	ls_owner_encode(b, &v);
	ck_assert(!memcmp(b, "VSMLO001", 8));
	ck_assert_int_eq(ls_owner_decode(b, &back), 1);
	ck_assert_uint_eq(back.ho_state, LV_HO_NONE);
	v.ho_state = LV_HO_ACCEPTED;
	v.ho_slot = 4;
	v.ho_gen = 9;
	snprintf(v.ho_host, sizeof(v.ho_host), "dst");
	ls_owner_encode(b, &v);
	ck_assert(!memcmp(b, "VSMLO002", 8));
	ck_assert_int_eq(ls_owner_decode(b, &back), 1);
	ck_assert_uint_eq(back.ho_state, LV_HO_ACCEPTED);
	ck_assert_uint_eq(back.ho_slot, 4);
	ck_assert_uint_eq(back.ho_gen, 9);
	ck_assert_str_eq(back.ho_host, "dst");
	/* A bad handover state, or a version from the future, is refused. */
	vsm__put_le32(b + 8 + 144, 3);
	vsm__put_le32(b + LS_SECTOR - 4, vsm__crc32(b, LS_SECTOR - 4));
	ck_assert_int_eq(ls_owner_decode(b, &back), -1);
	ls_owner_encode(b, &v);
	b[7] = '3';
	vsm__put_le32(b + LS_SECTOR - 4, vsm__crc32(b, LS_SECTOR - 4));
	ck_assert_int_eq(ls_owner_decode(b, &back), -1);

	memset(&bl, 0, sizeof(bl));
	bl.lver = 8;
	bl.inp = v;
	bl.dec = v;
	bl.dec.ho_state = LV_HO_NONE;
	bl.dec.ho_slot = 0;
	bl.dec.ho_gen = 0;
	bl.dec.ho_host[0] = '\0';
	ls_ballot_encode(b, &bl);
	ck_assert(!memcmp(b, "VSMBL002", 8));
	ck_assert_int_eq(ls_ballot_decode(b, &blb), 1);
	ck_assert_str_eq(blb.inp.ho_host, "dst");
	ck_assert_uint_eq(blb.dec.ho_state, LV_HO_NONE);
	bl.inp = bl.dec;
	ls_ballot_encode(b, &bl);
	ck_assert(!memcmp(b, "VSMBL001", 8));

	ls_hdr_encode(b, &h);
	ck_assert_int_eq(ls_hdr_decode(b, &h), 1);
	ck_assert_uint_eq(h.format, 2);
	vsm__put_le32(b + 8, 3);
	vsm__put_le32(b + LS_SECTOR - 4, vsm__crc32(b, LS_SECTOR - 4));
	ck_assert_int_eq(ls_hdr_decode(b, &h), -1);
}
END_TEST

static TCase *cases(const char *name, void (*setup)(void))
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, setup, tu_root_teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, handover_full);
	tcase_add_test(tc, handover_cancel);
	tcase_add_test(tc, target_killed_falls_back);
	tcase_add_test(tc, source_killed_target_completes);
	tcase_add_test(tc, racing_targets_one_winner);
	tcase_add_test(tc, migrate_host_one_context);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("handover");

	TCase *tc = tcase_create("format");

	tcase_add_test(tc, sector_versions);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, cases("caw", setup_caw));
	suite_add_tcase(s, cases("plain", setup_plain));
	return tu_run(s);
}
