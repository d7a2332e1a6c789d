/*
 * Placement phase 2 (include/vsm/placement.h): host tags and limits in
 * the catalog, and the choice of a host: links, heartbeats (a second
 * state directory is a second host, its heartbeat kept by a real
 * `vsmctl agent` process that is then killed), limits, tags,
 * anti-affinity, migration, the caller's filters and weighers, and
 * vsm_attach with VSM_ATTACH_PLACE.
 */
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static const char *vsmctl_path;

/* The agent's pid is also written under the root, so that the suite's
 * teardown (in the parent) kills it when a test failed mid-way. */
static void agent_pid_note(pid_t pid)
{
	char *path = NULL;
	FILE *f;

	ck_assert(asprintf(&path, "%s/agent.pid", tu_root) > 0);
	ck_assert((f = fopen(path, "w")) != NULL);
	fprintf(f, "%d\n", (int)pid);
	fclose(f);
	free(path);
}

static void suite_setup(void)
{
	tu_root_setup();
}

static void suite_teardown(void)
{
	char *path = NULL;
	FILE *f;
	int pid = 0;

	if (tu_root && asprintf(&path, "%s/agent.pid", tu_root) > 0 && (f = fopen(path, "r"))) {
		if (fscanf(f, "%d", &pid) == 1 && pid > 0 && kill(pid, SIGKILL) == 0)
			waitpid(pid, NULL, 0);
		fclose(f);
	}
	free(path);
	tu_root_teardown();
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A state directory with datastore "ds1" (and "ds2" when @two). */
static vsm_ctx *world(const char *name, bool two, char **state_out)
{
	char *state = tu_dir(name), *d1 = tu_dir("ds1"), *d2 = tu_dir("ds2");
	char *u1 = tu_uri(d1), *u2 = tu_uri(d2);
	vsm_ctx *ctx = tu_ctx(state);

	ck_vsm(vsm_datastore_add(ctx, "ds1", u1, VSM_DATASTORE_ADD_CREATE));
	if (two)
		ck_vsm(vsm_datastore_add(ctx, "ds2", u2, VSM_DATASTORE_ADD_CREATE));
	free(d1);
	free(d2);
	free(u1);
	free(u2);
	if (state_out)
		*state_out = state;
	else
		free(state);
	return ctx;
}

/* Host @name linked to ds1 (and ds2 when @two), its heartbeat kept here
 * when @live. */
static void host(vsm_ctx *ctx, const char *name, bool two, bool live)
{
	ck_vsm(vsm_host_add(ctx, name, NULL));
	ck_vsm(vsm_host_link(ctx, name, "ds1", 0));
	if (two)
		ck_vsm(vsm_host_link(ctx, name, "ds2", 0));
	if (live)
		ck_vsm(vsm_lease_keep(ctx, name, 0));
}

static vsm_placement *place_for(vsm_ctx *ctx, size_t n_ds, const vsm_host_request *req)
{
	const char *dss[] = { "ds1", "ds2" };
	vsm_placement *p = NULL;

	ck_vsm(vsm_place_host_for(&p, ctx, dss, n_ds, req));
	return p;
}

static bool ranked(const vsm_placement *p, const char *h)
{
	size_t i;

	for (i = 0; i < vsm_placement_count(p); i++)
		if (!strcmp(vsm_placement_name(p, i), h))
			return true;
	return false;
}

static const char *reason_of(const vsm_placement *p, const char *h)
{
	size_t i;

	for (i = 0; i < vsm_placement_rejected_count(p); i++)
		if (!strcmp(vsm_placement_rejected_name(p, i), h))
			return vsm_placement_rejected_reason(p, i);
	return NULL;
}

#define ck_rejected(p, h, substr) do { \
		const char *r_ = reason_of((p), (h)); \
		ck_assert_msg(r_ && strstr(r_, (substr)), "host %s: reason '%s', expected '%s'", \
			      (h), r_ ? r_ : "(kept)", (substr)); \
	} while (0)

/* ------------------------------------------------------- tags, limits */

START_TEST(test_tags_api)
{
	vsm_ctx *ctx = world("tags", false, NULL);
	vsm_host *h = NULL;

	host(ctx, "h1", false, false);
	ck_vsm(vsm_host_tag_add(ctx, "h1", "rack=r1"));
	ck_vsm(vsm_host_tag_add(ctx, "h1", "ssd"));
	ck_vsm(vsm_host_tag_add(ctx, "h1", "a.b_c-9=x.Y_z-0"));
	ck_vsm(vsm_host_tag_add(ctx, "h1", "rack=r2")); /* same KEY replaces */
	ck_vsm(vsm_host_tag_add(ctx, "h1", "empty="));
	ck_vsm(vsm_host_set_max_containers(ctx, "h1", 4));
	ck_vsm(vsm_host_lookup(&h, ctx, "h1"));
	ck_assert_uint_eq(vsm_host_tag_count(h), 4);
	ck_assert_str_eq(vsm_host_tag(h, 0), "a.b_c-9=x.Y_z-0");
	ck_assert_str_eq(vsm_host_tag(h, 1), "empty=");
	ck_assert_str_eq(vsm_host_tag(h, 2), "rack=r2");
	ck_assert_str_eq(vsm_host_tag(h, 3), "ssd");
	ck_assert_ptr_null(vsm_host_tag(h, 4));
	ck_assert_uint_eq(vsm_host_max_containers(h), 4);
	vsm_host_free(h);

	ck_vsm_refused(vsm_host_tag_add(ctx, "h1", ""), VSM_EINVAL, "bad host tag");
	ck_vsm_refused(vsm_host_tag_add(ctx, "h1", "=v"), VSM_EINVAL, "bad host tag");
	ck_vsm_refused(vsm_host_tag_add(ctx, "h1", "a b"), VSM_EINVAL, "bad host tag");
	ck_vsm_refused(vsm_host_tag_add(ctx, "h1", "k=v=w"), VSM_EINVAL, "bad host tag");
	{
		char key[66], val[140];

		memset(key, 'k', 65);
		key[65] = '\0';
		ck_vsm_refused(vsm_host_tag_add(ctx, "h1", key), VSM_EINVAL, "bad host tag");
		key[64] = '\0';
		ck_vsm(vsm_host_tag_add(ctx, "h1", key));
		ck_vsm(vsm_host_tag_remove(ctx, "h1", key));
		memcpy(val, "k=", 2);
		memset(val + 2, 'v', 129);
		val[131] = '\0';
		ck_vsm_refused(vsm_host_tag_add(ctx, "h1", val), VSM_EINVAL, "bad host tag");
		val[130] = '\0';
		ck_vsm(vsm_host_tag_add(ctx, "h1", val));
		ck_vsm(vsm_host_tag_remove(ctx, "h1", "k"));
	}
	ck_vsm_refused(vsm_host_tag_add(ctx, "nosuch", "ssd"), VSM_ENOTFOUND, "nosuch");
	ck_vsm_refused(vsm_host_tag_remove(ctx, "nosuch", "ssd"), VSM_ENOTFOUND, "nosuch");
	ck_vsm_refused(vsm_host_set_max_containers(ctx, "nosuch", 1), VSM_ENOTFOUND, "nosuch");
	ck_vsm_refused(vsm_host_tag_remove(ctx, "h1", "gpu"), VSM_ENOTFOUND, "gpu");
	ck_vsm(vsm_host_tag_remove(ctx, "h1", "ssd"));
	ck_vsm_refused(vsm_host_tag_remove(ctx, "h1", "ssd"), VSM_ENOTFOUND, "ssd");
	ck_vsm(vsm_host_set_max_containers(ctx, "h1", 0));
	ck_vsm(vsm_host_lookup(&h, ctx, "h1"));
	ck_assert_uint_eq(vsm_host_tag_count(h), 3);
	ck_assert_uint_eq(vsm_host_max_containers(h), 0);
	vsm_host_free(h);

	/* A removed host takes its tags and limit with it. */
	ck_vsm(vsm_host_set_max_containers(ctx, "h1", 7));
	ck_vsm(vsm_host_remove(ctx, "h1", 0));
	ck_vsm(vsm_host_add(ctx, "h1", NULL));
	ck_vsm(vsm_host_lookup(&h, ctx, "h1"));
	ck_assert_uint_eq(vsm_host_tag_count(h), 0);
	ck_assert_uint_eq(vsm_host_max_containers(h), 0);
	vsm_host_free(h);
	vsm_ctx_free(ctx);
}
END_TEST

/* A catalog of schema 2 (before host tags) is upgraded in place. */
START_TEST(test_catalog_upgrade)
{
	char *state = NULL, *db = NULL;
	vsm_ctx *ctx = world("upgrade", true, &state);
	vsm_host *h = NULL;
	sqlite3 *s = NULL;
	sqlite3_stmt *st;

	host(ctx, "old1", true, false);
	vsm_ctx_free(ctx);
	/* Exactly what a schema-2 catalog holds: the host tables go. */
	ck_assert(asprintf(&db, "%s/catalog.db", state) > 0);
	ck_assert_int_eq(sqlite3_open(db, &s), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(s, "DROP TABLE host_tags; DROP TABLE host_limits;", NULL,
				      NULL, NULL), SQLITE_OK);
	sqlite3_close(s);

	ctx = tu_ctx(state);
	ck_vsm(vsm_host_lookup(&h, ctx, "old1"));
	ck_assert_uint_eq(vsm_host_datastore_count(h), 2);
	ck_assert_uint_eq(vsm_host_tag_count(h), 0);
	vsm_host_free(h);
	ck_vsm(vsm_host_tag_add(ctx, "old1", "ssd"));
	ck_vsm(vsm_host_set_max_containers(ctx, "old1", 3));
	vsm_ctx_free(ctx);

	ctx = tu_ctx(state);
	ck_vsm(vsm_host_lookup(&h, ctx, "old1"));
	ck_assert_uint_eq(vsm_host_datastore_count(h), 2);
	ck_assert_uint_eq(vsm_host_tag_count(h), 1);
	ck_assert_uint_eq(vsm_host_max_containers(h), 3);
	vsm_host_free(h);
	vsm_ctx_free(ctx);

	ck_assert_int_eq(sqlite3_open(db, &s), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(s, "SELECT value FROM settings WHERE key = 'schema'",
					    -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "2");
	sqlite3_finalize(st);
	sqlite3_close(s);
	free(db);
	free(state);
}
END_TEST

/* ----------------------------------------------------------- phase 2 */

START_TEST(test_not_linked)
{
	vsm_ctx *ctx = world("links", true, NULL);
	vsm_host_request req = VSM_HOST_REQUEST_INIT;
	vsm_placement *p;
	int round;

	host(ctx, "hA", true, true);
	host(ctx, "hB", false, true);  /* ds1 only */
	ck_vsm(vsm_host_add(ctx, "hC", NULL)); /* nothing */
	host(ctx, "hD", true, false);  /* linked, never alive */
	req.flags = VSM_PLACE_HOST_WATCH;
	for (round = 0; round < 3; round++) {
		p = place_for(ctx, 2, round ? &req : NULL);
		ck_assert_uint_eq(vsm_placement_count(p), 1);
		ck_assert_uint_eq(vsm_placement_rejected_count(p), 2);
		ck_assert_str_eq(vsm_placement_name(p, 0), "hA");
		ck_rejected(p, "hB", "not linked to datastore 'ds2'");
		/* Linked to neither: not a candidate at all. */
		ck_assert(!ranked(p, "hC") && !reason_of(p, "hC"));
		ck_rejected(p, "hD", "no heartbeat on datastore 'ds1'");
		vsm_placement_free(p);
	}
	/* On ds1 alone, hB qualifies too. */
	p = place_for(ctx, 1, NULL);
	ck_assert(ranked(p, "hA") && ranked(p, "hB"));
	ck_assert_uint_eq(vsm_placement_count(p), 2);
	vsm_placement_free(p);
	{
		const char *bad[] = { "ds1", "nosuch" };

		ck_assert_int_eq(vsm_place_host_for(&p, ctx, bad, 2, NULL), -VSM_ENOTFOUND);
	}
	req.weigher = "fastest";
	ck_vsm_refused(vsm_place_host_for(&p, ctx, (const char *[]){ "ds1" }, 1, &req),
		       VSM_EINVAL, "fastest");
	vsm_ctx_free(ctx);
}
END_TEST

static pid_t agent_start(const char *state, const char *hostname)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		/* Dies with the test, should the test die first. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(vsmctl_path, vsmctl_path, "--state", state, "agent", "--host", hostname,
		      (char *)NULL);
		_exit(127);
	}
	agent_pid_note(pid);
	return pid;
}

/* hB's heartbeat is kept by another state directory (another host's
 * management): live, it may be chosen; killed, it is judged dead and
 * never chosen, while hA, live here, is. */
START_TEST(test_heartbeat_dead)
{
	vsm_host_request req = VSM_HOST_REQUEST_INIT;
	char *s1 = NULL, *s2 = tu_dir("other"), *u = NULL;
	vsm_ctx *ctx = world("dead", false, &s1), *ctx2, *fresh;
	vsm_container *x = NULL, *c = NULL;
	vsm_datastore *dsh = NULL;
	vsm_placement *p = NULL;
	bool seen = false, dead = false;
	pid_t pid;
	int i, st = 0;

	host(ctx, "hA", false, true);
	host(ctx, "hB", false, false);
	ck_vsm(vsm_datastore_lookup(&dsh, ctx, "ds1"));
	ck_assert((u = strdup(vsm_datastore_uri(dsh))) != NULL);
	vsm_datastore_free(dsh);
	ctx2 = tu_ctx(s2);
	ck_vsm(vsm_datastore_add(ctx2, "ds1", u, 0));
	ck_vsm(vsm_host_add(ctx2, "hB", NULL));
	ck_vsm(vsm_host_link(ctx2, "hB", "ds1", 0));
	vsm_ctx_free(ctx2);
	/* hA gets a container: spread then prefers hB while it lives. */
	ck_vsm(tu_create(&x, ctx, "ds1", "x", 1, 1 << 20));
	ck_vsm(vsm_attach(x, "hA", 0));

	pid = agent_start(s2, "hB");
	req.flags = VSM_PLACE_HOST_WATCH;
	for (i = 0; i < 400 && !seen; i++) {
		p = place_for(ctx, 1, &req);
		seen = ranked(p, "hB");
		if (seen)
			ck_assert_str_eq(vsm_placement_name(p, 0), "hB");
		vsm_placement_free(p);
		if (!seen)
			sleep_ms(25);
	}
	ck_assert_msg(seen, "hB, live in another state directory, was never a candidate");

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	for (i = 0; i < 400 && !dead; i++) {
		const char *r;

		p = place_for(ctx, 1, &req);
		r = reason_of(p, "hB");
		dead = r && strstr(r, "heartbeat on datastore 'ds1' is dead (stopped ");
		vsm_placement_free(p);
		if (!dead)
			sleep_ms(25);
	}
	ck_assert_msg(dead, "hB was never judged dead after its agent was killed");
	for (i = 0; i < 5; i++) {
		p = place_for(ctx, 1, &req);
		ck_assert(!ranked(p, "hB"));
		ck_assert(ranked(p, "hA"));
		vsm_placement_free(p);
	}
	ck_vsm(tu_create(&c, ctx, "ds1", "c", 1, 1 << 20));
	ck_vsm(vsm_attach(c, NULL, VSM_ATTACH_PLACE));
	ck_assert_str_eq(vsm_container_attached_host(c), "hA");
	/* A fresh context of this state directory does not choose it either. */
	fresh = tu_ctx(s1);
	p = place_for(fresh, 1, &req);
	ck_assert(!ranked(p, "hB"));
	ck_assert(ranked(p, "hA"));
	vsm_placement_free(p);
	vsm_ctx_free(fresh);
	vsm_container_free(c);
	vsm_container_free(x);
	vsm_ctx_free(ctx);
	free(s1);
	free(s2);
	free(u);
}
END_TEST

START_TEST(test_tags_limit_anti_migrate)
{
	vsm_ctx *ctx = world("rules", false, NULL);
	vsm_host_request req = VSM_HOST_REQUEST_INIT;
	vsm_container *web1 = NULL, *web2 = NULL, *db = NULL;
	const char *tags1[] = { "ssd" }, *tags2[] = { "rack=r1" }, *tags3[] = { "rack" };
	const char *anti[] = { "web1" };
	vsm_placement *p;

	host(ctx, "h1", false, true);
	host(ctx, "h2", false, true);
	host(ctx, "h3", false, true);
	ck_vsm(vsm_host_tag_add(ctx, "h1", "ssd"));
	ck_vsm(vsm_host_tag_add(ctx, "h1", "rack=r1"));
	ck_vsm(vsm_host_tag_add(ctx, "h2", "rack=r2"));
	ck_vsm(vsm_host_tag_add(ctx, "h3", "ssd=yes"));

	req.tags = tags1;
	req.n_tags = 1;
	p = place_for(ctx, 1, &req);
	ck_assert_uint_eq(vsm_placement_count(p), 2); /* "KEY" takes any value */
	ck_assert(ranked(p, "h1") && ranked(p, "h3"));
	ck_rejected(p, "h2", "lacks tag 'ssd'");
	vsm_placement_free(p);
	req.tags = tags2;
	p = place_for(ctx, 1, &req);
	ck_assert_uint_eq(vsm_placement_count(p), 1);
	ck_assert_str_eq(vsm_placement_name(p, 0), "h1");
	ck_rejected(p, "h2", "lacks tag 'rack=r1'");
	ck_rejected(p, "h3", "lacks tag 'rack=r1'");
	vsm_placement_free(p);
	req.tags = tags3;
	p = place_for(ctx, 1, &req);
	ck_assert_uint_eq(vsm_placement_count(p), 2);
	ck_rejected(p, "h3", "lacks tag 'rack'");
	vsm_placement_free(p);
	req.tags = NULL;
	req.n_tags = 0;

	/* Limits count the containers attached. */
	ck_vsm(tu_create(&web1, ctx, "ds1", "web1", 1, 1 << 20));
	ck_vsm(tu_create(&web2, ctx, "ds1", "web2", 1, 1 << 20));
	ck_vsm(tu_create(&db, ctx, "ds1", "db", 1, 1 << 20));
	ck_vsm(vsm_attach(web1, "h1", 0));
	ck_vsm(vsm_attach(web2, "h3", 0));
	ck_vsm(vsm_host_set_max_containers(ctx, "h3", 1));
	p = place_for(ctx, 1, NULL);
	ck_assert_uint_eq(vsm_placement_count(p), 2);
	ck_assert_str_eq(vsm_placement_name(p, 0), "h2"); /* spread: fewest first */
	ck_rejected(p, "h3", "has 1 containers attached, limit 1");
	vsm_placement_free(p);
	req.weigher = "pack";
	p = place_for(ctx, 1, &req);
	ck_assert_str_eq(vsm_placement_name(p, 0), "h1");
	vsm_placement_free(p);
	req.weigher = NULL;
	/* Where the container is, it does not count against itself. */
	p = NULL;
	ck_vsm(vsm_place_host(&p, web2, NULL));
	ck_assert(ranked(p, "h3"));
	vsm_placement_free(p);

	/* Anti-affinity: not where web1 runs. */
	req.anti_affinity = anti;
	req.n_anti_affinity = 1;
	p = NULL;
	ck_vsm(vsm_place_host(&p, db, &req));
	ck_rejected(p, "h1", "hosts 'web1' (anti-affinity)");
	ck_assert(ranked(p, "h2"));
	vsm_placement_free(p);
	/* A container is never apart from itself. */
	p = NULL;
	ck_vsm(vsm_place_host(&p, web1, &req));
	ck_assert(ranked(p, "h1"));
	vsm_placement_free(p);
	req.anti_affinity = NULL;
	req.n_anti_affinity = 0;

	/* Migration: anywhere but where it is. */
	req.flags = VSM_PLACE_HOST_MIGRATE;
	p = NULL;
	ck_vsm(vsm_place_host(&p, web1, &req));
	ck_rejected(p, "h1", "is the container's current host");
	ck_assert(ranked(p, "h2"));
	ck_rejected(p, "h3", "limit 1");
	vsm_placement_free(p);
	ck_vsm_refused(vsm_place_host_for(&p, ctx, (const char *[]){ "ds1" }, 1, &req),
		       VSM_EINVAL, "MIGRATE");
	vsm_container_free(web1);
	vsm_container_free(web2);
	vsm_container_free(db);
	vsm_ctx_free(ctx);
}
END_TEST

static int no_h2(const vsm_place_host_info *h, char *reason, size_t size, void *payload)
{
	(*(int *)payload)++;
	if (h->version != VSM_PLACE_HOST_INFO_VERSION || !h->live)
		return snprintf(reason, size, "bad info"), 1;
	if (!strcmp(h->name, "h2")) {
		snprintf(reason, size, "h2 is under maintenance (%zu tags)", h->n_tags);
		return 1;
	}
	return 0;
}

static double likes_h3(const vsm_place_host_info *h, void *payload)
{
	(*(int *)payload)++;
	return h->n_tags && !strcmp(h->tags[0], "fast") ? 1.0 : 0.0;
}

START_TEST(test_custom_callbacks)
{
	vsm_ctx *ctx = world("custom", false, NULL);
	vsm_host_request req = VSM_HOST_REQUEST_INIT;
	int filtered = 0, weighed = 0;
	vsm_place_filter f = { VSM_PLACE_FILTER_VERSION, "maint", NULL, no_h2, &filtered };
	vsm_place_weigher w = { VSM_PLACE_WEIGHER_VERSION, "fast", NULL, likes_h3, 10.0,
				&weighed };
	const vsm_place_filter *fs[] = { &f };
	const vsm_place_weigher *ws[] = { &w };
	vsm_place_filter bad = { 0, "bad", NULL, no_h2, NULL };
	const vsm_place_filter *bads[] = { &bad };
	vsm_placement *p;

	host(ctx, "h1", false, true);
	host(ctx, "h2", false, true);
	host(ctx, "h3", false, true);
	host(ctx, "h4", false, false); /* rejected before any callback */
	ck_vsm(vsm_host_tag_add(ctx, "h3", "fast"));
	req.filters = fs;
	req.n_filters = 1;
	req.weighers = ws;
	req.n_weighers = 1;
	p = place_for(ctx, 1, &req);
	ck_assert_uint_eq(vsm_placement_count(p), 2);
	ck_assert_str_eq(vsm_placement_name(p, 0), "h3");
	ck_assert_str_eq(vsm_placement_name(p, 1), "h1");
	ck_rejected(p, "h2", "maint: h2 is under maintenance (0 tags)");
	ck_rejected(p, "h4", "no heartbeat");
	ck_assert_int_eq(filtered, 3);
	ck_assert_int_eq(weighed, 2);
	vsm_placement_free(p);
	req.filters = bads;
	ck_vsm_refused(vsm_place_host_for(&p, ctx, (const char *[]){ "ds1" }, 1, &req),
		       VSM_EINVAL, "version");
	vsm_ctx_free(ctx);
}
END_TEST

START_TEST(test_attach_place)
{
	vsm_ctx *ctx = world("attach", true, NULL);
	vsm_container *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	vsm_host_request req = VSM_HOST_REQUEST_INIT;
	vsm_placement *p = NULL;

	/* Never live (no heartbeat, nobody acts for them) and not linked. */
	host(ctx, "ghost", false, false);
	host(ctx, "half", false, true);
	/* Registered, linked, with no heartbeat yet: acted for here (an
	 * attach starts its heartbeat), so it qualifies. */
	host(ctx, "h1", true, true);
	ck_vsm(vsm_host_add(ctx, "h2", NULL));
	ck_vsm(vsm_host_link(ctx, "h2", "ds1", 0));
	ck_vsm(vsm_host_link(ctx, "h2", "ds2", 0));
	ck_vsm(vsm_lease_keep(ctx, "h2", 0));
	ck_vsm(tu_create(&a, ctx, "ds2", "a", 1, 1 << 20));
	ck_vsm(tu_create(&b, ctx, "ds2", "b", 1, 1 << 20));
	ck_vsm(tu_create(&c, ctx, "ds1", "c", 1, 1 << 20));
	ck_vsm(vsm_attach(a, NULL, VSM_ATTACH_PLACE));
	ck_assert_str_eq(vsm_container_attached_host(a), "h1"); /* tie: by name */
	ck_vsm(vsm_attach(b, "auto", VSM_ATTACH_PLACE));
	ck_assert_str_eq(vsm_container_attached_host(b), "h2"); /* spread */
	/* Migrate b: h1 is the only other. */
	req.flags = VSM_PLACE_HOST_MIGRATE;
	ck_vsm(vsm_place_host(&p, b, &req));
	ck_assert_uint_eq(vsm_placement_count(p), 1);
	ck_assert_str_eq(vsm_placement_name(p, 0), "h1");
	vsm_placement_free(p);
	/* Nowhere to go: every host's reason. */
	ck_vsm(vsm_host_set_max_containers(ctx, "h1", 1));
	ck_vsm(vsm_host_set_max_containers(ctx, "h2", 1));
	ck_vsm(vsm_host_set_max_containers(ctx, "half", 1));
	ck_vsm(tu_create(&d, ctx, "ds2", "d", 1, 1 << 20));
	ck_vsm_refused(vsm_attach(d, NULL, VSM_ATTACH_PLACE), VSM_ENOSPC, "no host qualifies");
	ck_assert_msg(strstr(tu_msg(), "host 'h1': has 1 containers attached, limit 1") &&
		      strstr(tu_msg(), "host 'h2': has 1 containers attached, limit 1") &&
		      !strstr(tu_msg(), "ghost"), "message: %s", tu_msg());
	ck_assert_ptr_null(vsm_container_attached_host(d));
	/* Without the flag, "auto" is just a host name. */
	ck_vsm_refused(vsm_attach(d, "auto", 0), VSM_ENOTFOUND, "auto");
	ck_vsm_refused(vsm_attach(d, NULL, 0), VSM_EINVAL, "NULL");
	/* A host named explicitly with the flag is used as is. */
	ck_vsm(vsm_host_set_max_containers(ctx, "h2", 0));
	ck_vsm(vsm_attach(d, "h2", VSM_ATTACH_PLACE));
	ck_assert_str_eq(vsm_container_attached_host(d), "h2");
	ck_vsm(vsm_attach(c, NULL, VSM_ATTACH_PLACE));
	ck_assert_str_eq(vsm_container_attached_host(c), "half");
	/* A datastore no host is linked to. */
	{
		char *d3 = tu_dir("ds3"), *u3 = tu_uri(d3);
		vsm_container *e = NULL;

		ck_vsm(vsm_datastore_add(ctx, "ds3", u3, VSM_DATASTORE_ADD_CREATE));
		ck_vsm(tu_create(&e, ctx, "ds3", "e", 1, 1 << 20));
		ck_vsm_refused(vsm_attach(e, NULL, VSM_ATTACH_PLACE), VSM_ENOSPC,
			       "no host is linked to datastore 'ds3'");
		vsm_container_free(e);
		free(d3);
		free(u3);
	}
	vsm_container_free(a);
	vsm_container_free(b);
	vsm_container_free(c);
	vsm_container_free(d);
	vsm_ctx_free(ctx);
}
END_TEST

/*
 * Four processes of one state directory auto-attach three containers
 * each, at once, to two hosts with a limit of 4 containers each: exactly
 * 8 attach, 4 are refused with the reason, and no host goes over its
 * limit (each process choosing on its own saw room on the same host).
 */
#define ATTACHERS 4
#define PER_PROC 3

START_TEST(test_attach_place_concurrent)
{
	char *state = NULL;
	vsm_ctx *ctx = world("concurrent", false, &state);
	vsm_container **list = NULL;
	size_t n = 0, i;
	int p, go[2], attached = 0, refused = 0, on_h1 = 0, on_h2 = 0;
	pid_t pids[ATTACHERS];

	/* No thread may run here when the attachers are forked: a child can
	 * inherit a lock the lease renewer held at that moment (ASan's
	 * allocator's, for one) and hang in malloc. The context (and its
	 * renewer) is closed before the forks and opened again after. */
	host(ctx, "h1", false, false);
	host(ctx, "h2", false, false);
	ck_vsm(vsm_host_set_max_containers(ctx, "h1", 4));
	ck_vsm(vsm_host_set_max_containers(ctx, "h2", 4));
	for (p = 0; p < ATTACHERS * PER_PROC; p++) {
		char name[16];
		vsm_container *c = NULL;

		snprintf(name, sizeof(name), "k%d", p);
		ck_vsm(tu_create(&c, ctx, "ds1", name, 1, 1 << 20));
		vsm_container_free(c);
	}
	ck_assert_int_eq(pipe(go), 0);
	vsm_ctx_free(ctx);
	for (p = 0; p < ATTACHERS; p++) {
		pids[p] = fork();
		ck_assert_int_ge(pids[p], 0);
		if (pids[p] == 0) {
			vsm_ctx *cx;
			char ch;
			int k, bad = 0;

			close(go[1]);
			if (read(go[0], &ch, 1) != 0)
				_exit(3);
			cx = tu_ctx(state);
			for (k = 0; k < PER_PROC; k++) {
				char name[16];
				vsm_container *c = NULL;
				int rc;

				snprintf(name, sizeof(name), "k%d", p * PER_PROC + k);
				if (vsm_container_lookup(&c, cx, "ds1", name) < 0)
					_exit(4);
				rc = vsm_attach(c, NULL, VSM_ATTACH_PLACE);
				/* A refusal must say why. */
				if (rc < 0 && (rc != -VSM_ENOSPC ||
					       !strstr(vsm_error_last()->message, "limit 4")))
					bad = 1;
				vsm_container_free(c);
			}
			vsm_ctx_free(cx);
			_exit(bad);
		}
	}
	close(go[0]);
	ctx = tu_ctx(state);
	ck_vsm(vsm_lease_keep(ctx, "h1", 0));
	ck_vsm(vsm_lease_keep(ctx, "h2", 0));
	close(go[1]);
	for (p = 0; p < ATTACHERS; p++) {
		int st = 0;

		ck_assert_int_eq(waitpid(pids[p], &st, 0), pids[p]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			      "attacher %d: status 0x%x (a refusal without its reason?)", p, st);
	}
	ck_vsm(vsm_container_list(&list, &n, ctx, "ds1"));
	for (i = 0; i < n; i++) {
		const char *h = vsm_container_attached_host(list[i]);

		if (!h) {
			refused++;
			continue;
		}
		attached++;
		on_h1 += !strcmp(h, "h1");
		on_h2 += !strcmp(h, "h2");
	}
	vsm_container_list_free(list, n);
	ck_assert_msg(on_h1 <= 4 && on_h2 <= 4, "over a limit: h1 %d, h2 %d (limit 4)",
		      on_h1, on_h2);
	ck_assert_int_eq(attached, 8);
	ck_assert_int_eq(refused, ATTACHERS * PER_PROC - 8);
	vsm_ctx_free(ctx);
	free(state);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("hosts");
	TCase *tc = tcase_create("hosts");

	if (argc < 2) {
		fprintf(stderr, "usage: %s VSMCTL\n", argv[0]);
		return 2;
	}
	vsmctl_path = argv[1];
	/* Short leases: a dead heartbeat is judged in well under a second. */
	setenv("VSM_LEASE_TIMEOUT_MS", "600", 1);
	setenv("VSM_LEASE_RENEW_MS", "60", 1);
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_tags_api);
	tcase_add_test(tc, test_catalog_upgrade);
	tcase_add_test(tc, test_not_linked);
	tcase_add_test(tc, test_heartbeat_dead);
	tcase_add_test(tc, test_tags_limit_anti_migrate);
	tcase_add_test(tc, test_custom_callbacks);
	tcase_add_test(tc, test_attach_place);
	tcase_add_test(tc, test_attach_place_concurrent);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
