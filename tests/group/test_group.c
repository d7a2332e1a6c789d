/*
 * Consistency groups (doc/groups.md) on real file datastores: the record
 * (create, add, remove, list, names, a damaged record, the strict
 * codec), two processes changing groups on one datastore at once, group
 * checkpoints all or none (a failing member, a SIGKILL at every journal
 * step), revert, delete, clone, and the cut a group checkpoint makes
 * while a writer thread stamps sequence numbers into every member.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "fault.h"
#include "record.h"
#include "workflow.h"
#include "group_int.h"
#include <vsm/backend.h>
#include <vsm/group.h>

extern const struct vsm_datastore_ops vsm__file_backend_ops;

#define MB (UINT64_C(1) << 20)

static char *state, *dsdir, *ds2dir;
static vsm_ctx *ctx;

static void setup(void)
{
	char *u;

	state = tu_dir("state");
	dsdir = tu_dir("ds");
	ds2dir = tu_dir("ds2");
	ctx = tu_ctx(state);
	u = tu_uri(dsdir);
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
	free(dsdir);
	free(ds2dir);
}

static vsm_container *mk(const char *ds, const char *name)
{
	vsm_container *c = NULL;

	ck_vsm(tu_create(&c, ctx, ds, name, 1, 4 * MB));
	return c;
}

static vsm_container *get(const char *name)
{
	vsm_container *c = NULL;

	ck_vsm(vsm_container_lookup(&c, ctx, NULL, name));
	return c;
}

static bool has_ckpt(const char *container, const char *name)
{
	vsm_container *c = get(container);
	vsm_checkpoint *cp = NULL;
	int rc = vsm_checkpoint_lookup(&cp, c, name);

	ck_assert_msg(rc == 0 || rc == -VSM_ENOTFOUND, "checkpoint lookup: %s", tu_msg());
	vsm_checkpoint_free(cp);
	vsm_container_free(c);
	return rc == 0;
}

/* Group @name with members @names (NULL-terminated) on their datastores. */
static vsm_group *mkgroup(const char *name, const char *const *names)
{
	vsm_container *cs[8] = {0};
	vsm_group *g = NULL;
	size_t n = 0, i;

	for (; names[n]; n++)
		cs[n] = get(names[n]);
	ck_vsm(vsm_group_create(&g, ctx, name, cs, n, NULL));
	for (i = 0; i < n; i++)
		vsm_container_free(cs[i]);
	return g;
}

START_TEST(create_add_remove_list)
{
	static const char *const two[] = { "web", "db", NULL };
	vsm_container *extra, *c;
	vsm_group *g, *l = NULL, **list = NULL;
	vsm_container **cl = NULL;
	const char *old_name;
	size_t n = 0;

	vsm_container_free(mk("ds1", "web"));
	vsm_container_free(mk("ds1", "db"));
	extra = mk("ds2", "cache");
	g = mkgroup("app", two);
	ck_assert_str_eq(vsm_group_name(g), "app");
	ck_assert_str_eq(vsm_group_datastore(g), "ds1");
	ck_assert_uint_eq(vsm_group_member_count(g), 2);
	old_name = vsm_group_member_name(g, 1);
	/* Another datastore's container joins. */
	ck_vsm(vsm_group_member_add(g, extra, 0));
	ck_assert_uint_eq(vsm_group_member_count(g), 3);
	ck_assert_str_eq(vsm_group_member_datastore(g, 2), "ds2");
	ck_assert_str_eq(old_name, "db"); /* earlier pointers stay valid */
	ck_vsm_refused(vsm_group_member_add(g, extra, 0), VSM_EEXISTS, "member already");
	/* Names are unique per datastore, and the group is no container. */
	ck_vsm_refused(vsm_group_create(NULL, ctx, "app", NULL, 0, &(vsm_group_opts){
		VSM_GROUP_OPTS_VERSION, "ds1", 0 }), VSM_EEXISTS, "already exists");
	ck_vsm(vsm_container_list(&cl, &n, ctx, NULL));
	ck_assert_uint_eq(n, 3);
	vsm_container_list_free(cl, n);
	ck_vsm_refused(vsm_container_lookup(&c, ctx, "ds1", "group:app"), VSM_ENOTFOUND, "app");
	/* A container of the group's name is no clash. */
	vsm_container_free(mk("ds1", "app"));
	/* At most one group per container; members are not destroyed. */
	ck_vsm_refused(vsm_group_create(NULL, ctx, "other", &extra, 1, NULL), VSM_EBUSY,
		       "member of group 'app'");
	ck_vsm_refused(vsm_container_destroy(extra, 0), VSM_EBUSY, "member of group 'app'");
	/* Lookup from another context, and the listing. */
	ck_vsm(vsm_group_lookup(&l, ctx, NULL, "app"));
	ck_assert_uint_eq(vsm_group_member_count(l), 3);
	ck_assert_str_eq(vsm_group_uuid(l), vsm_group_uuid(g));
	vsm_group_free(l);
	ck_vsm(vsm_group_create(NULL, ctx, "empty", NULL, 0, &(vsm_group_opts){
		VSM_GROUP_OPTS_VERSION, "ds2", 0 }));
	ck_vsm(vsm_group_list(&list, &n, ctx));
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(vsm_group_name(list[0]), "app");
	ck_assert_str_eq(vsm_group_name(list[1]), "empty");
	vsm_group_list_free(list, n);
	/* Remove: the container stays, and may then be destroyed. */
	ck_vsm(vsm_group_member_remove(g, "cache", 0));
	ck_vsm_refused(vsm_group_member_remove(g, "cache", 0), VSM_ENOTFOUND, "no member");
	ck_assert_uint_eq(vsm_group_member_count(g), 2);
	ck_vsm(vsm_container_destroy(extra, 0));
	vsm_container_free(extra);
	ck_vsm_refused(vsm_group_lookup(&l, ctx, NULL, "nosuch"), VSM_ENOTFOUND, "does not exist");
	ck_vsm_refused(vsm_group_lookup(&l, ctx, NULL, "bad/name"), VSM_EINVAL, "group name");
	ck_vsm(vsm_group_destroy(g, 0));
	ck_vsm_refused(vsm_group_lookup(&l, ctx, NULL, "app"), VSM_ENOTFOUND, "does not exist");
	vsm_group_free(g);
}
END_TEST

START_TEST(plan_set_get)
{
	static const char *const three[] = { "a", "b", "c", NULL };
	static const char *const after_a[] = { "a" };
	static const char *const after_c[] = { "c" };
	vsm_group_plan_entry e[2] = { VSM_GROUP_PLAN_ENTRY_INIT, VSM_GROUP_PLAN_ENTRY_INIT };
	vsm_group_plan_entry got = VSM_GROUP_PLAN_ENTRY_INIT;
	vsm_group *g, *l = NULL;

	vsm_container_free(mk("ds1", "a"));
	vsm_container_free(mk("ds1", "b"));
	vsm_container_free(mk("ds2", "c"));
	g = mkgroup("p", three);
	e[0].member = "b";
	e[0].priority = 2;
	e[0].after = after_a;
	e[0].n_after = 1;
	e[0].mac = "52:54:00:aa:bb:cc";
	e[0].network = "br0";
	e[0].ip = "192.168.1.9";
	e[0].prefix = 24;
	e[0].gateway = "192.168.1.1";
	e[0].dns = "192.168.1.53";
	e[1].member = "a";
	e[1].priority = 1;
	ck_vsm(vsm_group_plan_set(g, e, 2, 0));
	ck_vsm(vsm_group_lookup(&l, ctx, NULL, "p"));
	ck_vsm(vsm_group_plan_get(l, 1, &got));
	ck_assert_str_eq(got.member, "b");
	ck_assert_uint_eq(got.priority, 2);
	ck_assert_uint_eq(got.n_after, 1);
	ck_assert_str_eq(got.after[0], "a");
	ck_assert_str_eq(got.mac, "52:54:00:aa:bb:cc");
	ck_assert_str_eq(got.network, "br0");
	ck_assert_str_eq(got.ip, "192.168.1.9");
	ck_assert_int_eq(got.prefix, 24);
	ck_assert_str_eq(got.gateway, "192.168.1.1");
	ck_assert_str_eq(got.dns, "192.168.1.53");
	ck_vsm(vsm_group_plan_get(l, 2, &got));
	ck_assert_ptr_null(got.mac);
	ck_assert_int_eq(got.prefix, -1);
	vsm_group_free(l);
	/* Refused, changing nothing: a cycle, a bad MAC, an unknown member. */
	e[0] = (vsm_group_plan_entry)VSM_GROUP_PLAN_ENTRY_INIT;
	e[0].member = "a";
	e[0].after = after_c;
	e[0].n_after = 1;
	e[1] = (vsm_group_plan_entry)VSM_GROUP_PLAN_ENTRY_INIT;
	e[1].member = "c";
	e[1].after = (const char *const[]){ "b" };
	e[1].n_after = 1;
	ck_vsm_refused(vsm_group_plan_set(g, e, 2, 0), VSM_EINVAL, "cycle");
	e[1] = (vsm_group_plan_entry)VSM_GROUP_PLAN_ENTRY_INIT;
	e[1].member = "c";
	e[1].mac = "52:54:00:aa:bb";
	e[1].network = "n";
	ck_vsm_refused(vsm_group_plan_set(g, &e[1], 1, 0), VSM_EINVAL, "MAC");
	e[1].member = "zz";
	ck_vsm_refused(vsm_group_plan_set(g, &e[1], 1, 0), VSM_ENOTFOUND, "no member 'zz'");
	e[1] = (vsm_group_plan_entry)VSM_GROUP_PLAN_ENTRY_INIT;
	e[1].member = "c";
	e[1].after = (const char *const[]){ "c" };
	e[1].n_after = 1;
	ck_vsm_refused(vsm_group_plan_set(g, &e[1], 1, 0), VSM_EINVAL, "not another member");
	ck_vsm(vsm_group_refresh(g));
	ck_vsm(vsm_group_plan_get(g, 0, &got));
	ck_assert_uint_eq(got.priority, 1);
	ck_assert_uint_eq(got.n_after, 0);
	/* Removing a member drops the "after" that named it. */
	ck_vsm(vsm_group_member_remove(g, "a", 0));
	ck_vsm(vsm_group_plan_get(g, 0, &got));
	ck_assert_str_eq(got.member, "b");
	ck_assert_uint_eq(got.n_after, 0);
	got.version = 99;
	ck_vsm_refused(vsm_group_plan_get(g, 0, &got), VSM_EVERSION, "version");
	vsm_group_free(g);
}
END_TEST

/* --- the record: damage and the strict codec --- */

static char *find_in(const char *dir, const char *needle, uint64_t *off)
{
	char *meta = NULL, *buf;
	FILE *f;
	long size;

	ck_assert(asprintf(&meta, "%s/.vsm/meta", dir) > 0);
	ck_assert_ptr_nonnull(f = fopen(meta, "rb"));
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	ck_assert_ptr_nonnull(buf = malloc((size_t)size));
	ck_assert_int_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	*off = 0;
	for (long i = 0; i + (long)strlen(needle) < size; i++)
		if (!memcmp(buf + i, needle, strlen(needle))) {
			*off = (uint64_t)i;
			break;
		}
	free(buf);
	ck_assert_msg(*off, "'%s' not found in %s", needle, meta);
	return meta;
}

START_TEST(damaged_record_refused)
{
	static const char *const one[] = { "web", NULL };
	vsm_group *g = NULL, **list = NULL;
	vsm_ctx *ctx2;
	char *meta, *state2 = tu_dir("state2"), *u = tu_uri(dsdir);
	uint64_t off;
	size_t n = 0;
	int fd;

	vsm_container_free(mk("ds1", "web"));
	vsm_group_free(mkgroup("app", one));
	vsm_ctx_free(ctx);
	ctx = NULL;
	meta = find_in(dsdir, "\"name\":\"group:app\"", &off);
	ck_assert_int_ge(fd = open(meta, O_RDWR), 0);
	ck_assert_int_eq(pwrite(fd, "X", 1, (off_t)off + 12), 1);
	close(fd);
	free(meta);
	ctx2 = tu_ctx(state2);
	ck_vsm(vsm_datastore_add(ctx2, "ds1", u, 0));
	ck_vsm_refused(vsm_group_lookup(&g, ctx2, NULL, "app"), VSM_ECORRUPT, "damaged");
	ck_assert_ptr_null(g);
	/* Listings skip it; the member is still a container. */
	ck_vsm(vsm_group_list(&list, &n, ctx2));
	ck_assert_uint_eq(n, 0);
	vsm_group_list_free(list, n);
	vsm_ctx_free(ctx2);
	ctx = tu_ctx(state);
	free(state2);
	free(u);
}
END_TEST

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define U3 "33333333-3333-4333-8333-333333333333"

static char *rec_json(const char *name, const char *group)
{
	char *s = NULL;

	ck_assert(asprintf(&s, "{\"version\":1,\"name\":\"%s\",\"uuid\":\"" U1 "\",\"ctime\":1,"
			   "\"state_key\":null,\"state_size\":0,\"devices\":[],"
			   "\"attached_host\":null,\"deployments\":[],\"destroying\":false,"
			   "\"lease_version\":0%s%s}", name, group ? ",\"group\":" : "",
			   group ? group : "") > 0);
	return s;
}

#define MEMBER(U, N, EXTRA) "{\"datastore\":\"ds1\",\"datastore_uuid\":\"" U3 "\"," \
	"\"uuid\":\"" U "\",\"name\":\"" N "\",\"boot\":{\"priority\":0,\"after\":[" EXTRA \
	"]},\"net\":null}"

static void decode_case(const char *name, const char *group, int want, const char *substr)
{
	char *j = rec_json(name, group);
	vsm_record *r = NULL;
	int rc = vsm_record_decode(&r, j, strlen(j), "t");

	if (!want) {
		ck_assert_msg(rc == 0, "%s: %s", group ? group : name, tu_msg());
		ck_assert_ptr_nonnull(r->group);
		/* What decodes encodes to what decodes the same. */
		{
			char *a = NULL, *b = NULL;
			vsm_record *r2 = NULL, *r3 = vsm_record_dup(r);

			ck_vsm(vsm_record_encode(&a, r));
			ck_vsm(vsm_record_decode(&r2, a, strlen(a), "t"));
			ck_vsm(vsm_record_encode(&b, r3));
			ck_assert_str_eq(a, b);
			vsm_record_free(r2);
			vsm_record_free(r3);
			free(a);
			free(b);
		}
	} else {
		ck_assert_msg(rc == -want, "%s decoded (%d), expected refusal", group ? group : name,
			      rc);
		ck_assert_msg(strstr(tu_msg(), substr), "message '%s' lacks '%s'", tu_msg(), substr);
		ck_assert_ptr_null(r);
	}
	vsm_record_free(r);
	free(j);
}

START_TEST(codec_strict)
{
	decode_case("group:g", "{\"members\":[" MEMBER(U1, "a", "") "," MEMBER(U2, "b", "\"a\"")
		    "],\"checkpoints\":[{\"name\":\"c1\",\"ctime\":5,\"members\":[{\"uuid\":\"" U1
		    "\",\"checkpoint\":\"c1\"}]}]}", 0, NULL);
	/* The name and the group data must agree. */
	decode_case("group:g", NULL, VSM_ECORRUPT, "disagree");
	decode_case("g", "{\"members\":[],\"checkpoints\":[]}", VSM_ECORRUPT, "disagree");
	decode_case("group:", "{\"members\":[],\"checkpoints\":[]}", VSM_ECORRUPT, "name");
	decode_case("group:g", "[]", VSM_ECORRUPT, "wrong type");
	decode_case("group:g", "{\"members\":[]}", VSM_ECORRUPT, "'checkpoints' is missing");
	decode_case("group:g", "{\"members\":[" MEMBER(U1, "a", "") "," MEMBER(U1, "b", "")
		    "],\"checkpoints\":[]}", VSM_ECORRUPT, "listed twice");
	decode_case("group:g", "{\"members\":[" MEMBER(U1, "a", "") "," MEMBER(U2, "a", "")
		    "],\"checkpoints\":[]}", VSM_ECORRUPT, "listed twice");
	decode_case("group:g", "{\"members\":[" MEMBER(U1, "a", "\"b\"") "," MEMBER(U2, "b",
		    "\"a\"") "],\"checkpoints\":[]}", VSM_ECORRUPT, "cycle");
	decode_case("group:g", "{\"members\":[" MEMBER(U1, "a", "\"zz\"")
		    "],\"checkpoints\":[]}", VSM_ECORRUPT, "not another member");
	decode_case("group:g", "{\"members\":[" MEMBER("nope", "a", "")
		    "],\"checkpoints\":[]}", VSM_ECORRUPT, "not a UUID");
	decode_case("group:g", "{\"members\":[" MEMBER(U1, "a/b", "")
		    "],\"checkpoints\":[]}", VSM_ECORRUPT, "container name");
	decode_case("group:g", "{\"members\":[{\"datastore\":\"ds1\",\"datastore_uuid\":\"" U3
		    "\",\"uuid\":\"" U1 "\",\"name\":\"a\",\"boot\":{\"priority\":0,\"after\":[]},"
		    "\"net\":{\"mac\":\"52:54:00:00:00:0g\",\"network\":\"n\",\"ip\":null,"
		    "\"prefix\":-1,\"gateway\":null,\"dns\":null}}],\"checkpoints\":[]}",
		    VSM_ECORRUPT, "MAC");
	decode_case("group:g", "{\"members\":[{\"datastore\":\"ds1\",\"datastore_uuid\":\"" U3
		    "\",\"uuid\":\"" U1 "\",\"name\":\"a\",\"boot\":{\"priority\":0,\"after\":[]},"
		    "\"net\":{\"mac\":\"52:54:00:00:00:01\",\"network\":\"n<x>\",\"ip\":null,"
		    "\"prefix\":-1,\"gateway\":null,\"dns\":null}}],\"checkpoints\":[]}",
		    VSM_ECORRUPT, "network");
	decode_case("group:g", "{\"members\":[{\"datastore\":\"ds1\",\"datastore_uuid\":\"" U3
		    "\",\"uuid\":\"" U1 "\",\"name\":\"a\",\"boot\":{\"priority\":-3,\"after\":[]},"
		    "\"net\":null}],\"checkpoints\":[]}", VSM_ECORRUPT, "out of range");
	decode_case("group:g", "{\"members\":[],\"checkpoints\":[{\"name\":\"c\",\"ctime\":1,"
		    "\"members\":[]},{\"name\":\"c\",\"ctime\":1,\"members\":[]}]}", VSM_ECORRUPT,
		    "listed twice");
	decode_case("group:g", "{\"members\":[],\"checkpoints\":[{\"name\":\"c\",\"ctime\":1,"
		    "\"members\":[{\"uuid\":\"" U1 "\",\"checkpoint\":\"..\"}]}]}", VSM_ECORRUPT,
		    "reserved");
}
END_TEST

/* --- two processes at once --- */

#define ROUNDS 12

static void child_work(const char *st, const char *tag)
{
	vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
	vsm_ctx *c2 = NULL;
	vsm_group *shared = NULL;
	char name[64];
	int i, bad = 0;

	o.state_dir = st;
	if (vsm_ctx_open(&c2, &o) < 0)
		_exit(3);
	if (vsm_group_lookup(&shared, c2, "ds1", "shared") < 0)
		_exit(4);
	for (i = 0; i < ROUNDS; i++) {
		vsm_container *c = NULL;

		snprintf(name, sizeof(name), "%s%d", tag, i);
		if (vsm_container_lookup(&c, c2, "ds1", name) < 0 ||
		    vsm_group_member_add(shared, c, 0) < 0)
			bad++;
		vsm_container_free(c);
		snprintf(name, sizeof(name), "g%s%d", tag, i);
		if (vsm_group_create(NULL, c2, name, NULL, 0, &(vsm_group_opts){
			VSM_GROUP_OPTS_VERSION, "ds1", 0 }) < 0)
			bad++;
		if (bad)
			fprintf(stderr, "child %s: %s\n", tag, vsm_error_last()->message);
	}
	vsm_group_free(shared);
	vsm_ctx_free(c2);
	_exit(bad ? 1 : 0);
}

START_TEST(two_processes_lose_nothing)
{
	char *st[2] = { tu_dir("stA"), tu_dir("stB") }, *u = tu_uri(dsdir), name[64];
	const char *tags[2] = { "a", "b" };
	vsm_group *shared = NULL, **list = NULL;
	size_t n = 0, i, lost = 0;
	pid_t pid[2];
	int k, s;

	ck_vsm(vsm_group_create(NULL, ctx, "shared", NULL, 0, &(vsm_group_opts){
		VSM_GROUP_OPTS_VERSION, "ds1", 0 }));
	for (k = 0; k < 2; k++)
		for (i = 0; i < ROUNDS; i++) {
			snprintf(name, sizeof(name), "%s%zu", tags[k], i);
			vsm_container_free(mk("ds1", name));
		}
	for (k = 0; k < 2; k++) {
		vsm_ctx *c2 = tu_ctx(st[k]);

		ck_vsm(vsm_datastore_add(c2, "ds1", u, 0));
		vsm_ctx_free(c2);
	}
	fflush(NULL);
	for (k = 0; k < 2; k++) {
		ck_assert_int_ge(pid[k] = fork(), 0);
		if (pid[k] == 0)
			child_work(st[k], tags[k]);
	}
	for (k = 0; k < 2; k++) {
		ck_assert_int_eq(waitpid(pid[k], &s, 0), pid[k]);
		ck_assert_msg(WIFEXITED(s) && WEXITSTATUS(s) == 0, "child %d failed", k);
	}
	ck_vsm(vsm_group_lookup(&shared, ctx, "ds1", "shared"));
	for (k = 0; k < 2; k++)
		for (i = 0; i < ROUNDS; i++) {
			bool found = false;

			snprintf(name, sizeof(name), "%s%zu", tags[k], i);
			for (size_t j = 0; j < vsm_group_member_count(shared); j++)
				found |= !strcmp(vsm_group_member_name(shared, j), name);
			lost += !found;
		}
	ck_assert_msg(lost == 0, "%zu of %d member additions lost", lost, 2 * ROUNDS);
	ck_assert_uint_eq(vsm_group_member_count(shared), 2 * ROUNDS);
	ck_vsm(vsm_group_list(&list, &n, ctx));
	ck_assert_msg(n == 1 + 2 * ROUNDS, "%zu of %d groups lost", 1 + 2 * ROUNDS - n,
		      1 + 2 * ROUNDS);
	vsm_group_list_free(list, n);
	vsm_group_free(shared);
	free(st[0]);
	free(st[1]);
	free(u);
}
END_TEST

/* --- group checkpoints --- */

static const char *const trio[] = { "m0", "m1", "m2", NULL };

static vsm_group *make_trio(void)
{
	vsm_container_free(mk("ds1", "m0"));
	vsm_container_free(mk("ds2", "m1"));
	vsm_container_free(mk("ds1", "m2"));
	return mkgroup("g", trio);
}

static int members_with(const char *ck)
{
	int n = 0;

	for (size_t i = 0; trio[i]; i++)
		n += has_ckpt(trio[i], ck);
	return n;
}

START_TEST(checkpoint_revert_delete)
{
	vsm_group *g = make_trio();
	vsm_container *c;
	const char *first;

	ck_vsm(vsm_group_checkpoint_create(g, "c1", NULL));
	ck_assert_int_eq(members_with("c1"), 3);
	ck_assert_uint_eq(vsm_group_checkpoint_count(g), 1);
	first = vsm_group_checkpoint_name(g, 0);
	ck_assert_uint_eq(vsm_group_checkpoint_member_count(g, 0), 3);
	ck_assert_str_eq(vsm_group_checkpoint_member_checkpoint(g, 0, 2), "c1");
	ck_vsm_refused(vsm_group_checkpoint_create(g, "c1", NULL), VSM_EEXISTS, "already exists");
	/* A member with the name already: refused up front, nothing made. */
	c = get("m1");
	ck_vsm(vsm_checkpoint_create(NULL, c, "c2", NULL));
	ck_vsm_refused(vsm_group_checkpoint_create(g, "c2", NULL), VSM_EEXISTS,
		       "member 'm1' already has a checkpoint 'c2'");
	ck_assert_int_eq(members_with("c2"), 1);
	ck_vsm(vsm_checkpoint_delete(c, "c2", 0));
	vsm_container_free(c);
	ck_vsm(vsm_group_checkpoint_create(g, "c2", NULL));
	ck_assert_str_eq(first, "c1");
	/* Revert: every member back to c1. */
	ck_vsm(vsm_group_checkpoint_revert(g, "c1", 0));
	for (size_t i = 0; trio[i]; i++) {
		vsm_checkpoint *cp = NULL;

		c = get(trio[i]);
		ck_vsm(vsm_checkpoint_lookup(&cp, c, "c1"));
		ck_assert(vsm_checkpoint_is_current(cp));
		vsm_checkpoint_free(cp);
		vsm_container_free(c);
	}
	ck_vsm_refused(vsm_group_checkpoint_revert(g, "nope", 0), VSM_ENOTFOUND, "no checkpoint");
	/* Delete: gone from the group and from every member. */
	ck_vsm(vsm_group_checkpoint_delete(g, "c2", 0));
	ck_assert_int_eq(members_with("c2"), 0);
	ck_assert_int_eq(members_with("c1"), 3);
	ck_assert_uint_eq(vsm_group_checkpoint_count(g), 1);
	ck_vsm_refused(vsm_group_checkpoint_delete(g, "c2", 0), VSM_ENOTFOUND, "no checkpoint");
	vsm_group_free(g);
}
END_TEST

START_TEST(checkpoint_refused_when_busy)
{
	vsm_group *g = make_trio();
	vsm_container *c = get("m2");

	ck_vsm(vsm_host_add(ctx, "h1", NULL));
	ck_vsm(vsm_host_link(ctx, "h1", "ds1", 0));
	ck_vsm(vsm_attach(c, "h1", 0));
	ck_vsm(vsm_device_deploy(NULL, c, "d0", NULL));
	ck_vsm_refused(vsm_group_checkpoint_create(g, "c1", NULL), VSM_EBUSY, "deployed");
	ck_assert_int_eq(members_with("c1"), 0);
	ck_assert_uint_eq(vsm_group_checkpoint_count(g), 0);
	vsm_container_free(c);
	vsm_group_free(g);
}
END_TEST

START_TEST(checkpoint_member_fails_all_undone)
{
	vsm_group *g = make_trio(), *l = NULL;
	char match[64];

	/* The last member's new overlay cannot be written: the first two
	 * members' checkpoints are made, then undone. */
	snprintf(match, sizeof(match), "%s", vsm_group_member_uuid(g, 2));
	ck_assert_int_eq(vsm__fault_set("write:1:sticky", match), 0);
	ck_assert_int_lt(vsm_group_checkpoint_create(g, "c1", NULL), 0);
	ck_assert_msg(strstr(tu_msg(), "member 'm2'"), "message: %s", tu_msg());
	ck_assert_uint_ge(vsm__fault_failed(), 1);
	vsm__fault_set(NULL, NULL);
	ck_assert_int_eq(members_with("c1"), 0);
	ck_vsm(vsm_group_lookup(&l, ctx, NULL, "g"));
	ck_assert_uint_eq(vsm_group_checkpoint_count(l), 0);
	vsm_group_free(l);
	/* And it works once the fault is gone. */
	ck_vsm(vsm_group_checkpoint_create(g, "c1", NULL));
	ck_assert_int_eq(members_with("c1"), 3);
	vsm_group_free(g);
}
END_TEST

static int kill_at, kill_seen;

static void kill_hook(const char *action)
{
	(void)action;
	if (++kill_seen == kill_at)
		raise(SIGKILL);
}

START_TEST(checkpoint_sigkill_all_or_none)
{
	vsm_group *g = make_trio();
	int at, killed = 0, done = 0;

	vsm_group_free(g);
	/* Kill the group checkpoint at each journal step in turn (the
	 * group's and the members' own), until it finishes first. */
	for (at = 1; at < 200; at++) {
		pid_t pid;
		int s, n;
		vsm_group *l = NULL;

		fflush(NULL);
		ck_assert_int_ge(pid = fork(), 0);
		if (pid == 0) {
			vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
			vsm_ctx *c2;
			vsm_group *cg;

			o.state_dir = state;
			if (vsm_ctx_open(&c2, &o) < 0 || vsm_group_lookup(&cg, c2, NULL, "g") < 0)
				_exit(3);
			kill_at = at;
			kill_seen = 0;
			vsm__wf_test_hook = kill_hook;
			_exit(vsm_group_checkpoint_create(cg, "x", NULL) < 0 ? 4 : 0);
		}
		ck_assert_int_eq(waitpid(pid, &s, 0), pid);
		ck_assert_msg((WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL) ||
			      (WIFEXITED(s) && WEXITSTATUS(s) == 0), "child status 0x%x", s);
		/* What a restarted process does: open, which recovers. */
		vsm_ctx_free(ctx);
		ctx = tu_ctx(state);
		ck_vsm(vsm_group_lookup(&l, ctx, NULL, "g"));
		n = members_with("x");
		if (vsm_group_checkpoint_count(l)) {
			ck_assert_msg(n == 3, "step %d: group checkpoint recorded, %d members have it",
				      at, n);
			ck_vsm(vsm_group_checkpoint_delete(l, "x", 0));
			ck_assert_int_eq(members_with("x"), 0);
		} else {
			ck_assert_msg(n == 0, "step %d: no group checkpoint, but %d members have one",
				      at, n);
		}
		vsm_group_free(l);
		if (WIFEXITED(s)) {
			done = 1;
			break;
		}
		killed++;
	}
	ck_assert(done);
	ck_assert_int_ge(killed, 4); /* the test did kill it mid-way */
}
END_TEST

/* Run @op in a child killed (SIGKILL) at its @at-th journal step; then
 * restart (a new context recovers). 1: killed, 0: it finished. */
static int kill_run(int (*op)(vsm_group *g), int at)
{
	pid_t pid;
	int s;

	fflush(NULL);
	ck_assert_int_ge(pid = fork(), 0);
	if (pid == 0) {
		vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
		vsm_ctx *c2;
		vsm_group *cg;

		o.state_dir = state;
		if (vsm_ctx_open(&c2, &o) < 0 || vsm_group_lookup(&cg, c2, NULL, "g") < 0)
			_exit(3);
		kill_at = at;
		kill_seen = 0;
		vsm__wf_test_hook = kill_hook;
		_exit(op(cg) < 0 ? 4 : 0);
	}
	ck_assert_int_eq(waitpid(pid, &s, 0), pid);
	ck_assert_msg((WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL) ||
		      (WIFEXITED(s) && WEXITSTATUS(s) == 0), "child status 0x%x", s);
	vsm_ctx_free(ctx);
	ctx = tu_ctx(state);
	return WIFSIGNALED(s);
}

static int op_revert(vsm_group *g)
{
	return vsm_group_checkpoint_revert(g, "c1", 0);
}

static int op_delete(vsm_group *g)
{
	return vsm_group_checkpoint_delete(g, "d", 0);
}

/* How many members descend from checkpoint @name directly. */
static int members_current(const char *name)
{
	int n = 0;

	for (size_t i = 0; trio[i]; i++) {
		vsm_container *c = get(trio[i]);
		vsm_checkpoint *cp = NULL;

		if (vsm_checkpoint_lookup(&cp, c, name) == 0 && vsm_checkpoint_is_current(cp))
			n++;
		vsm_checkpoint_free(cp);
		vsm_container_free(c);
	}
	return n;
}

START_TEST(revert_delete_sigkill)
{
	vsm_group *g = make_trio(), *l = NULL;
	int at, killed = 0, n;

	ck_vsm(vsm_group_checkpoint_create(g, "c1", NULL));
	ck_vsm(vsm_group_checkpoint_create(g, "c2", NULL));
	vsm_group_free(g);
	/* Revert rolls forward from its first journal step: killed anywhere,
	 * the restart leaves every member on c1. */
	for (at = 1; ; at++) {
		int k = kill_run(op_revert, at);

		n = members_current("c1");
		ck_assert_msg(n == 3, "revert killed at step %d: %d members on c1", at, n);
		ck_vsm(vsm_group_lookup(&l, ctx, NULL, "g"));
		ck_vsm(vsm_group_checkpoint_revert(l, "c2", 0));
		ck_assert_int_eq(members_current("c2"), 3);
		vsm_group_free(l);
		if (!k)
			break;
		killed++;
	}
	ck_assert_int_ge(killed, 3);
	/* Delete: either the group and every member still have it, or
	 * neither. */
	killed = 0;
	ck_vsm(vsm_group_lookup(&l, ctx, NULL, "g"));
	ck_vsm(vsm_group_checkpoint_create(l, "d", NULL));
	vsm_group_free(l);
	for (at = 1; ; at++) {
		int k = kill_run(op_delete, at);
		bool listed = false;

		ck_vsm(vsm_group_lookup(&l, ctx, NULL, "g"));
		for (size_t i = 0; i < vsm_group_checkpoint_count(l); i++)
			listed |= !strcmp(vsm_group_checkpoint_name(l, i), "d");
		n = members_with("d");
		ck_assert_msg(n == (listed ? 3 : 0), "delete killed at step %d: group %s it, %d "
			      "members have it", at, listed ? "lists" : "does not list", n);
		if (!listed)
			ck_vsm(vsm_group_checkpoint_create(l, "d", NULL));
		vsm_group_free(l);
		if (!k)
			break;
		killed++;
	}
	ck_assert_int_ge(killed, 1);
}
END_TEST

/* --- fencing domains through the backend (domain_fence) --- */

/* What the fake fence saw: "pause dom-a" lines, in order. */
static char fence_log[2048];
static const char *fence_refuse; /* a domain it cannot pause */

static int fake_fence(vsm_backend_ds *ds, const char *host, const char *host_uri,
		      const char *domain, unsigned int op)
{
	static const char *const names[] = { "?", "pause", "resume", "freeze", "thaw" };

	(void)ds;
	(void)host_uri;
	if (fence_refuse && !strcmp(domain, fence_refuse) && op == VSM_BACKEND_FENCE_PAUSE)
		return vsm_error_set(VSM_ESTATE, "host '%s': domain '%s' is not running", host,
				     domain);
	snprintf(fence_log + strlen(fence_log), sizeof(fence_log) - strlen(fence_log),
		 "%s %s\n", names[op < 5 ? op : 0], domain);
	return 0;
}

static int fenced_open(vsm_backend_ds **out, const char *uri, const vsm_backend_open_args *args)
{
	char buf[4200];

	snprintf(buf, sizeof(buf), "file%s", strchr(uri, ':'));
	return vsm__file_backend_ops.open(out, buf, args);
}

/* Datastore "fd" on a copy of the file backend with the fake fence, in a
 * table of @version; members f0 (dom-a), f1 (dom-b) and f2 (two devices,
 * both in dom-a), attached and deployed. */
static vsm_group *fenced_trio(uint32_t version)
{
	static struct vsm_datastore_ops ops;
	static const char *const names[] = { "f0", "f1", "f2", NULL };
	static const char *const doms[] = { "dom-a", "dom-b", "dom-a" };
	char *dir = tu_dir("fd"), *uri = NULL;

	ops = vsm__file_backend_ops;
	ops.version = version;
	ops.scheme = version >= 3 ? "fencedfile" : "oldfile";
	ops.open = fenced_open;
	ops.domain_fence = fake_fence;
	ck_vsm(vsm_datastore_ops_register(ctx, &ops, NULL));
	ck_assert(asprintf(&uri, "%s://%s", ops.scheme, dir) > 0);
	ck_vsm(vsm_datastore_add(ctx, "fd", uri, 0));
	ck_vsm(vsm_host_add(ctx, "h1", NULL));
	ck_vsm(vsm_host_link(ctx, "h1", "fd", 0));
	for (int i = 0; i < 3; i++) {
		vsm_container *c = NULL;
		vsm_deploy_opts o = VSM_DEPLOY_OPTS_INIT;

		ck_vsm(tu_create(&c, ctx, "fd", names[i], i == 2 ? 2 : 1, 4 * MB));
		ck_vsm(vsm_attach(c, "h1", 0));
		o.domain = doms[i];
		o.bus = "scsi";
		o.target = i == 2 ? "sdc" : "sda";
		ck_vsm(vsm_device_deploy(NULL, c, "d0", &o));
		if (i == 2) {
			o.target = "sdd";
			ck_vsm(vsm_device_deploy(NULL, c, "d1", &o));
		}
		vsm_container_free(c);
	}
	free(dir);
	free(uri);
	fence_log[0] = '\0';
	fence_refuse = NULL;
	return mkgroup("fg", names);
}

static int fenced_with(const char *ck)
{
	static const char *const names[] = { "f0", "f1", "f2" };
	int n = 0;

	for (int i = 0; i < 3; i++)
		n += has_ckpt(names[i], ck);
	return n;
}

START_TEST(fence_pause_checkpoint_resume)
{
	vsm_group *g = fenced_trio(VSM_DATASTORE_OPS_VERSION);
	vsm_container *c;
	vsm_checkpoint *cp = NULL;

	ck_vsm(vsm_group_checkpoint_create(g, "c1", NULL));
	/* Every domain paused once before any checkpoint, resumed after. */
	ck_assert_str_eq(fence_log, "pause dom-a\npause dom-b\nresume dom-a\nresume dom-b\n");
	ck_assert_int_eq(fenced_with("c1"), 3);
	/* The devices are deployed again, on their new tops, with the
	 * target they had. */
	c = get("f2");
	ck_vsm(vsm_checkpoint_lookup(&cp, c, "c1"));
	for (size_t i = 0; i < vsm_container_device_count(c); i++) {
		const vsm_device *d = vsm_container_device(c, i);
		const vsm_locator *loc = vsm_device_locator(d);

		ck_assert_ptr_nonnull(loc);
		ck_assert_str_ne(vsm_device_key(d), vsm_checkpoint_layer_key(cp, i));
		ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), i ? "dev='sdd'" : "dev='sdc'"));
		ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "bus='scsi'"));
	}
	vsm_checkpoint_free(cp);
	vsm_container_free(c);
	/* Freezing instead of pausing. */
	fence_log[0] = '\0';
	ck_vsm(vsm_group_checkpoint_create(g, "c2", &(vsm_group_checkpoint_opts){
		VSM_GROUP_CHECKPOINT_OPTS_VERSION, 0, VSM_GROUP_CHECKPOINT_FREEZE }));
	ck_assert_str_eq(fence_log, "freeze dom-a\nfreeze dom-b\nthaw dom-a\nthaw dom-b\n");
	vsm_group_free(g);
}
END_TEST

START_TEST(fence_refused_or_failing_undone)
{
	vsm_group *g = fenced_trio(VSM_DATASTORE_OPS_VERSION);
	char match[64];

	/* A domain that cannot be paused: nothing made, the other resumed. */
	fence_refuse = "dom-b";
	ck_vsm_refused(vsm_group_checkpoint_create(g, "c1", NULL), VSM_ESTATE,
		       "domain 'dom-b' is not running");
	ck_assert_str_eq(fence_log, "pause dom-a\nresume dom-a\n");
	ck_assert_int_eq(fenced_with("c1"), 0);
	/* A member failing after the others were checkpointed: all undone,
	 * every domain resumed. */
	fence_refuse = NULL;
	fence_log[0] = '\0';
	snprintf(match, sizeof(match), "%s", vsm_group_member_uuid(g, 2));
	ck_assert_int_eq(vsm__fault_set("write:1:sticky", match), 0);
	ck_assert_int_lt(vsm_group_checkpoint_create(g, "c1", NULL), 0);
	vsm__fault_set(NULL, NULL);
	ck_assert_str_eq(fence_log, "pause dom-a\npause dom-b\nresume dom-a\nresume dom-b\n");
	ck_assert_int_eq(fenced_with("c1"), 0);
	vsm_group_free(g);
}
END_TEST

START_TEST(fence_op_versioned)
{
	/* A version-2 table whose size covers domain_fence: never read, so
	 * the deployed members cannot be fenced and are refused. */
	vsm_group *g = fenced_trio(2);

	ck_vsm_refused(vsm_group_checkpoint_create(g, "c1", NULL), VSM_EBUSY,
		       "without a domain libvsm can pause");
	ck_assert_str_eq(fence_log, "");
	ck_assert_int_eq(fenced_with("c1"), 0);
	vsm_group_free(g);
}
END_TEST

static void fnv_tag(const char *key, char out[17])
{
	uint64_t h = UINT64_C(1469598103934665603);

	for (; *key; key++) {
		h ^= (unsigned char)*key;
		h *= UINT64_C(1099511628211);
	}
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* The revert's redo step, replayed after the revert went through (its
 * journal entry not forgotten), must not revert again: that would drop
 * what was written since. */
START_TEST(revert_replay_keeps_new_writes)
{
	vsm_group *g = make_trio();
	vsm_container *c;
	vsm_image *img = NULL;
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_dstore *ds = NULL;
	char arg[512], tag[17];
	uint8_t buf[512];

	ck_vsm(vsm_group_checkpoint_create(g, "c1", NULL));
	snprintf(arg, sizeof(arg), "c1");
	for (size_t i = 0; trio[i]; i++) {
		c = get(trio[i]);
		fnv_tag(vsm_device_key(vsm_container_device(c, 0)), tag);
		snprintf(arg + strlen(arg), sizeof(arg) - strlen(arg), " %s %s",
			 vsm_container_uuid(c), tag);
		vsm_container_free(c);
	}
	ck_vsm(vsm_group_checkpoint_revert(g, "c1", 0));
	o.flags = VSM_IMAGE_OPEN_RDWR;
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", "m0", "d0", &o));
	memset(buf, 0x5a, sizeof(buf));
	ck_vsm(vsm_image_write(img, buf, sizeof(buf), 0, 0));
	ck_vsm(vsm_image_close(img));
	ck_vsm(vsm__ds_get(&ds, ctx, "ds1"));
	ck_vsm(vsm__group_wf_action(ctx, ds, GRP_WF_REVERT, arg));
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", "m0", "d0", NULL));
	memset(buf, 0, sizeof(buf));
	ck_vsm(vsm_image_read(img, buf, sizeof(buf), 0));
	ck_assert_int_eq(buf[0], 0x5a);
	ck_assert_int_eq(buf[511], 0x5a);
	vsm_image_close(img);
	vsm_group_free(g);
}
END_TEST

START_TEST(clone_group)
{
	vsm_group *g = make_trio(), *k = NULL;
	vsm_group_plan_entry e = VSM_GROUP_PLAN_ENTRY_INIT, got = VSM_GROUP_PLAN_ENTRY_INIT;

	e.member = "m1";
	e.priority = 5;
	e.after = (const char *const[]){ "m0" };
	e.n_after = 1;
	ck_vsm(vsm_group_plan_set(g, &e, 1, 0));
	ck_vsm(vsm_group_checkpoint_create(g, "c1", NULL));
	ck_vsm(vsm_group_clone(&k, g, "c1", "dr", 0));
	ck_assert_str_eq(vsm_group_name(k), "dr");
	ck_assert_uint_eq(vsm_group_member_count(k), 3);
	ck_assert_str_eq(vsm_group_member_name(k, 1), "m1-dr");
	ck_assert_str_eq(vsm_group_member_datastore(k, 1), "ds2");
	ck_vsm(vsm_group_plan_get(k, 1, &got));
	ck_assert_uint_eq(got.priority, 5);
	ck_assert_str_eq(got.after[0], "m0-dr");
	/* The clones are containers, members of the new group only. */
	vsm_container_free(get("m2-dr"));
	/* A second clone of the same name: refused, no clone left behind. */
	ck_assert_int_lt(vsm_group_clone(NULL, g, "c1", "dr", 0), 0);
	{
		vsm_container **cl = NULL;
		size_t n = 0;

		ck_vsm(vsm_container_list(&cl, &n, ctx, NULL));
		ck_assert_uint_eq(n, 6);
		vsm_container_list_free(cl, n);
	}
	vsm_group_free(k);
	vsm_group_free(g);
}
END_TEST

/* --- the cut --- */

#define BLK 512u
#define NM 3
#define DEV_SIZE (8 * MB)
#define PER_MEMBER (DEV_SIZE / BLK)

typedef struct {
	vsm_group_image *img[NM];
	atomic_ulong next;     /* sequence numbers 1.. written so far */
	atomic_int stop;
	int err;
} writer;

static void *write_loop(void *p)
{
	writer *w = p;
	uint8_t buf[BLK];
	unsigned long seq;

	for (seq = 1; !atomic_load(&w->stop) && seq / NM < PER_MEMBER; seq++) {
		/* Write seq goes to member seq % NM, block seq / NM. */
		memset(buf, (int)(seq & 0xff), sizeof(buf));
		memcpy(buf, &seq, sizeof(seq));
		if (vsm_group_image_write(w->img[seq % NM], buf, BLK, (uint64_t)(seq / NM) * BLK) < 0) {
			w->err = 1;
			fprintf(stderr, "write %lu: %s\n", seq, vsm_error_last()->message);
			break;
		}
		atomic_store(&w->next, seq);
	}
	return NULL;
}

static void wait_for(writer *w, unsigned long n)
{
	while (atomic_load(&w->next) < n && !w->err)
		usleep(1000);
}

/* Which sequence numbers member @m's device @img holds (flags in @in). */
static void read_member(vsm_image *img, int m, uint8_t *in, unsigned long max)
{
	uint8_t buf[BLK];
	unsigned long seq, b;

	for (b = 0; b < PER_MEMBER; b++) {
		seq = b * NM + (unsigned long)m;
		if (seq == 0 || seq > max)
			continue;
		ck_vsm(vsm_image_read(img, buf, BLK, (uint64_t)b * BLK));
		unsigned long got;

		memcpy(&got, buf, sizeof(got));
		ck_assert_msg(got == 0 || got == seq, "member %d block %lu holds %lu", m, b, got);
		in[seq] = got == seq;
	}
}

static void big(const char *ds, const char *name)
{
	vsm_container *c = NULL;

	ck_vsm(tu_create(&c, ctx, ds, name, 1, DEV_SIZE));
	vsm_container_free(c);
}

START_TEST(cut_is_consistent)
{
	writer w = {0};
	vsm_group *g, *cl = NULL;
	pthread_t th;
	uint8_t *in;
	unsigned long total, n, cut = 0, seq;
	int m;

	big("ds1", "m0");
	big("ds2", "m1");
	big("ds1", "m2");
	g = mkgroup("g", trio);
	for (m = 0; m < NM; m++)
		ck_vsm(vsm_group_image_open(&w.img[m], g, trio[m], "d0", 0));
	ck_assert_int_eq(pthread_create(&th, NULL, write_loop, &w), 0);
	/* Checkpoints while the writer runs: the second and third see a
	 * writer that went through the earlier barriers. */
	wait_for(&w, 500);
	ck_vsm(vsm_group_checkpoint_create(g, "early", NULL));
	wait_for(&w, atomic_load(&w.next) + 500);
	ck_vsm(vsm_group_checkpoint_create(g, "cut", NULL));
	wait_for(&w, atomic_load(&w.next) + 500);
	atomic_store(&w.stop, 1);
	pthread_join(th, NULL);
	ck_assert(!w.err);
	total = atomic_load(&w.next);
	for (m = 0; m < NM; m++)
		ck_vsm(vsm_group_image_close(w.img[m]));
	ck_assert_ptr_nonnull(in = calloc(total + 1, 1));
	/* The checkpoint, read through linked clones of every member. */
	ck_vsm(vsm_group_clone(&cl, g, "cut", "v", 0));
	for (m = 0; m < NM; m++) {
		vsm_image *img = NULL;
		char name[32];

		snprintf(name, sizeof(name), "%s-v", trio[m]);
		ck_vsm(vsm_image_open_device(&img, ctx, vsm_group_member_datastore(g, (size_t)m),
					     name, "d0", NULL));
		read_member(img, m, in, total);
		vsm_image_close(img);
	}
	/* One N: every write below it in, none at or above it. */
	for (n = 1; n <= total && in[n]; n++)
		;
	cut = n;
	for (seq = cut; seq <= total; seq++)
		ck_assert_msg(!in[seq], "write %lu is in the checkpoint but %lu is not "
			      "(writes up to %lu)", seq, cut, total);
	ck_assert_msg(cut > 500 && cut <= total, "cut %lu of %lu writes", cut, total);
	/* The writes after the cut went to the members' new tops: now every
	 * write is there. */
	memset(in, 0, total + 1);
	for (m = 0; m < NM; m++) {
		vsm_image *img = NULL;

		ck_vsm(vsm_image_open_device(&img, ctx, vsm_group_member_datastore(g, (size_t)m),
					     trio[m], "d0", NULL));
		read_member(img, m, in, total);
		vsm_image_close(img);
	}
	for (seq = 1; seq <= total; seq++)
		ck_assert_msg(in[seq], "write %lu lost from the current top", seq);
	free(in);
	vsm_group_free(cl);
	vsm_group_free(g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("group");
	TCase *tc = tcase_create("group");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, create_add_remove_list);
	tcase_add_test(tc, plan_set_get);
	tcase_add_test(tc, damaged_record_refused);
	tcase_add_test(tc, codec_strict);
	tcase_add_test(tc, two_processes_lose_nothing);
	tcase_add_test(tc, checkpoint_revert_delete);
	tcase_add_test(tc, checkpoint_refused_when_busy);
	tcase_add_test(tc, checkpoint_member_fails_all_undone);
	tcase_add_test(tc, checkpoint_sigkill_all_or_none);
	tcase_add_test(tc, revert_delete_sigkill);
	tcase_add_test(tc, fence_pause_checkpoint_resume);
	tcase_add_test(tc, fence_refused_or_failing_undone);
	tcase_add_test(tc, fence_op_versioned);
	tcase_add_test(tc, revert_replay_keeps_new_writes);
	tcase_add_test(tc, clone_group);
	tcase_add_test(tc, cut_is_consistent);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
