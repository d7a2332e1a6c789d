/*
 * Suite "place": placement phase 1 and its reservations on real file
 * datastores. The capacity cases run on tmpfs file systems of different
 * sizes that the suite mounts (as root; CI runs as root) and unmounts in
 * its unchecked teardown, whatever the tests did; without root they are
 * left out and say so. The others run on plain directories.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vsm/backend.h>

#include "record.h"
#include "testutil.h"

/* The file backend's table (lib/open.c registers it), wrapped below as
 * another scheme to register it again with an older version. */
extern const struct vsm_datastore_ops vsm__file_backend_ops;

#define MIB (UINT64_C(1) << 20)
#define N_MNT 3

static const unsigned mnt_mib[N_MNT] = { 24, 48, 96 };
static char *mnt_dir[N_MNT];
static bool mounted[N_MNT];
static bool have_tmpfs;

static void mounts_setup(void)
{
	char opt[32];
	int i;

	tu_root_setup();
	have_tmpfs = geteuid() == 0;
	for (i = 0; i < N_MNT && have_tmpfs; i++) {
		ck_assert(asprintf(&mnt_dir[i], "%s/tmpfs%u", tu_root, mnt_mib[i]) > 0);
		ck_assert(mkdir(mnt_dir[i], 0700) == 0);
		snprintf(opt, sizeof(opt), "size=%um", mnt_mib[i]);
		if (mount("tmpfs", mnt_dir[i], "tmpfs", 0, opt) < 0) {
			fprintf(stderr, "place: cannot mount tmpfs (%s): capacity cases left out\n",
				strerror(errno));
			have_tmpfs = false;
			break;
		}
		mounted[i] = true;
	}
}

static void mounts_teardown(void)
{
	int i;

	for (i = 0; i < N_MNT; i++) {
		if (mounted[i] && umount2(mnt_dir[i], MNT_DETACH) < 0)
			fprintf(stderr, "place: cannot unmount %s: %s\n", mnt_dir[i],
				strerror(errno));
		mounted[i] = false;
		free(mnt_dir[i]);
		mnt_dir[i] = NULL;
	}
	tu_root_teardown();
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Datastore "NAME" in a fresh directory under @parent. */
static void add_ds(vsm_ctx *ctx, const char *name, const char *parent, char **dir_out)
{
	char *dir = NULL, *uri;

	ck_assert(asprintf(&dir, "%s/%s.%d", parent, name, (int)getpid()) > 0);
	uri = tu_uri(dir);
	ck_vsm(vsm_datastore_add(ctx, name, uri, VSM_DATASTORE_ADD_CREATE));
	free(uri);
	if (dir_out)
		*dir_out = dir;
	else
		free(dir);
}

/* The three tmpfs datastores s (24 MiB), m (48), l (96). */
static const char *const tmpfs_names[N_MNT] = { "s", "m", "l" };

static void add_tmpfs(vsm_ctx *ctx, char *dirs[N_MNT])
{
	int i;

	for (i = 0; i < N_MNT; i++)
		add_ds(ctx, tmpfs_names[i], mnt_dir[i], dirs ? &dirs[i] : NULL);
}

static uint64_t fs_free(const char *dir)
{
	struct statvfs sv;

	ck_assert(statvfs(dir, &sv) == 0);
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* A request of @n devices of @size each. */
typedef struct {
	vsm_device_spec specs[4];
	const vsm_device_spec *ptrs[4];
	vsm_place_request req;
	vsm_container_opts opts;
} request;

static void request_init(request *r, size_t n, uint64_t size, const char *base)
{
	static const char *const names[4] = { "d0", "d1", "d2", "d3" };
	vsm_place_request req = VSM_PLACE_REQUEST_INIT;
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	size_t i;

	for (i = 0; i < n; i++) {
		vsm_device_spec d = VSM_DEVICE_SPEC_INIT;

		d.name = names[i];
		d.size = size;
		if (base) {
			d.base = base;
			d.format = VSM_FORMAT_QCOW2;
		}
		r->specs[i] = d;
		r->ptrs[i] = &r->specs[i];
	}
	req.devices = r->ptrs;
	req.n_devices = n;
	opts.devices = r->ptrs;
	opts.n_devices = n;
	r->req = req;
	r->opts = opts;
}

static size_t find(const vsm_placement *p, const char *name)
{
	size_t i;

	for (i = 0; i < vsm_placement_count(p); i++)
		if (!strcmp(vsm_placement_name(p, i), name))
			return i;
	return SIZE_MAX;
}

static const char *rejected(const vsm_placement *p, const char *name)
{
	size_t i;

	for (i = 0; i < vsm_placement_rejected_count(p); i++)
		if (!strcmp(vsm_placement_rejected_name(p, i), name))
			return vsm_placement_rejected_reason(p, i);
	return NULL;
}

/* A filter that keeps everything and notes one datastore's figures. */
typedef struct {
	const char *name;
	vsm_place_ds_info seen;
	bool found;
} spy;

static int spy_fn(const vsm_place_ds_info *ds, char *reason, size_t size, void *payload)
{
	spy *s = payload;

	(void)reason;
	(void)size;
	if (!strcmp(ds->name, s->name)) {
		s->seen = *ds;
		s->seen.name = NULL;
		s->seen.uri = NULL;
		s->found = true;
	}
	return 0;
}

/* What datastore @name has reserved now (live figures). */
static uint64_t reserved_on(vsm_ctx *ctx, const char *name)
{
	spy s = { name, { 0 }, false };
	vsm_place_filter f = { VSM_PLACE_FILTER_VERSION, "spy", spy_fn, NULL, &s };
	const vsm_place_filter *fp[1] = { &f };
	vsm_placement *p = NULL;
	request r;

	request_init(&r, 1, MIB, NULL);
	r.req.flags = VSM_PLACE_THIN;
	r.req.filters = fp;
	r.req.n_filters = 1;
	ck_vsm(vsm_place_datastore(&p, ctx, &r.req));
	vsm_placement_free(p);
	ck_assert_msg(s.found, "datastore '%s' was not judged", name);
	return s.seen.reserved;
}

/* --- capacity on tmpfs --- */

START_TEST(fullest_never_chosen)
{
	char *state = tu_dir("state");
	vsm_ctx *ctx = tu_ctx(state);
	vsm_reservation *res = NULL;
	vsm_placement *p = NULL;
	const char *why;
	request r;
	int w;

	if (!have_tmpfs)
		goto out;
	add_tmpfs(ctx, NULL);
	/* 28 MiB thick + 4 MiB state: s (24 MiB) cannot, m and l can. */
	request_init(&r, 1, 28 * MIB, NULL);
	for (w = 0; w < 3; w++) {
		r.req.weigher = w == 0 ? NULL : w == 1 ? "pack" : "spread";
		ck_vsm(vsm_place_datastore(&p, ctx, &r.req));
		ck_assert_uint_eq(vsm_placement_count(p), 2);
		ck_assert_uint_eq(find(p, "s"), SIZE_MAX);
		ck_assert_ptr_nonnull((why = rejected(p, "s")));
		ck_assert_msg(strstr(why, "needs 32.0 MiB") && strstr(why, "available (free "),
			      "reason: %s", why);
		if (w == 0)
			ck_assert_str_eq(vsm_placement_name(p, 0), "l");
		if (w == 1)
			ck_assert_str_eq(vsm_placement_name(p, 0), "m");
		ck_assert(vsm_placement_available(p, 0) >= 32 * MIB);
		vsm_placement_free(p);
		p = NULL;
	}
	/* Fill l with reservations: it is then the fullest, and m (with
	 * room) is chosen over it. */
	request_init(&r, 1, 80 * MIB, NULL);
	r.req.datastores = (const char *const[]){ "l" };
	r.req.n_datastores = 1;
	ck_vsm(vsm_place_reserve(&res, ctx, "big", &r.req));
	ck_assert_str_eq(vsm_reservation_datastore(res), "l");
	request_init(&r, 1, 20 * MIB, NULL);
	ck_vsm(vsm_place_datastore(&p, ctx, &r.req));
	ck_assert_str_eq(vsm_placement_name(p, 0), "m");
	ck_assert_ptr_nonnull((why = rejected(p, "s")) ? why : "s ranked");
	why = rejected(p, "l");
	ck_assert_msg(why && strstr(why, "reserved 84.0 MiB"), "l: %s", why ? why : "kept");
	vsm_placement_free(p);
	vsm_reservation_free(res);
out:
	vsm_ctx_free(ctx);
	free(state);
}
END_TEST

/* 8 processes (two state directories, as two hosts) place thick
 * containers until refused: what they placed fits every datastore. */
#define N_PROCS 8
START_TEST(concurrent_never_overcommit)
{
	char *state[2] = { tu_dir("host0"), tu_dir("host1") }, *dirs[N_MNT];
	uint64_t start_free[N_MNT], sum[N_MNT] = { 0 };
	vsm_container **list = NULL;
	pid_t pid[N_PROCS];
	size_t n = 0, i, d;
	int k, st, placed = 0, fd[2];
	vsm_ctx *ctx;

	if (!have_tmpfs)
		goto out;
	ctx = tu_ctx(state[0]);
	add_tmpfs(ctx, dirs);
	vsm_ctx_free(ctx);
	ctx = tu_ctx(state[1]);
	for (i = 0; i < N_MNT; i++) {
		char *uri = tu_uri(dirs[i]);

		ck_vsm(vsm_datastore_add(ctx, tmpfs_names[i], uri, 0));
		free(uri);
		start_free[i] = fs_free(dirs[i]);
	}
	vsm_ctx_free(ctx);
	ck_assert(pipe(fd) == 0);
	for (k = 0; k < N_PROCS; k++) {
		pid[k] = fork();
		ck_assert(pid[k] >= 0);
		if (pid[k] == 0) {
			int made = 0, refused = 0, j, rc = 0;
			request r;

			ctx = tu_ctx(state[k % 2]);
			request_init(&r, 1, 8 * MIB, NULL);
			for (j = 0; j < 100; j++) {
				vsm_reservation *res = NULL;
				char name[32];

				snprintf(name, sizeof(name), "p%d-%d", k, j);
				rc = vsm_place_reserve(&res, ctx, name, &r.req);
				if (rc == -VSM_ENOSPC) {
					const char *m = tu_msg();

					refused++;
					/* Every datastore is named, with why. */
					if (!strstr(m, "s: ") || !strstr(m, "m: ") || !strstr(m, "l: ")) {
						fprintf(stderr, "refusal does not name every "
							"datastore: %s\n", m);
						_exit(2);
					}
					break;
				}
				if (rc < 0) {
					fprintf(stderr, "reserve %s: %d %s\n", name, rc, tu_msg());
					_exit(3);
				}
				if (vsm_container_create_reserved(NULL, res, &r.opts) < 0) {
					fprintf(stderr, "create %s: %s\n", name, tu_msg());
					_exit(4);
				}
				vsm_reservation_free(res);
				made++;
			}
			vsm_ctx_free(ctx);
			if (write(fd[1], &made, sizeof(made)) != sizeof(made))
				_exit(5);
			_exit(refused == 1 ? 0 : 6);
		}
	}
	close(fd[1]);
	for (k = 0; k < N_PROCS; k++) {
		int made = 0;

		ck_assert(waitpid(pid[k], &st, 0) == pid[k]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "placer %d: status 0x%x", k,
			      st);
		ck_assert(read(fd[0], &made, sizeof(made)) == sizeof(made));
		placed += made;
	}
	close(fd[0]);
	/* A third state directory reads what is on the datastores. */
	{
		char *fresh = tu_dir("fresh");

		ctx = tu_ctx(fresh);
		for (i = 0; i < N_MNT; i++) {
			char *uri = tu_uri(dirs[i]);

			ck_vsm(vsm_datastore_add(ctx, tmpfs_names[i], uri, 0));
			free(uri);
		}
		ck_vsm(vsm_container_list(&list, &n, ctx, NULL));
		ck_assert_int_eq((int)n, placed);
		for (i = 0; i < n; i++) {
			const char *ds = vsm_container_datastore(list[i]);
			uint64_t prov = 4 * MIB; /* the default VM-state area */

			for (d = 0; d < vsm_container_device_count(list[i]); d++)
				prov += vsm_device_size(vsm_container_device(list[i], d));
			for (d = 0; d < N_MNT; d++)
				if (!strcmp(ds, tmpfs_names[d]))
					sum[d] += prov;
		}
		vsm_container_list_free(list, n);
		for (d = 0; d < N_MNT; d++) {
			ck_assert_msg(sum[d] <= start_free[d], "datastore %s: %llu bytes placed, "
				      "%llu were free", tmpfs_names[d],
				      (unsigned long long)sum[d], (unsigned long long)start_free[d]);
			/* And it was used: a request of 12 MiB fits in all. */
			ck_assert_msg(sum[d] > 0, "datastore %s got nothing", tmpfs_names[d]);
			ck_assert_uint_eq(reserved_on(ctx, tmpfs_names[d]), 0);
		}
		vsm_ctx_free(ctx);
		free(fresh);
	}
	for (d = 0; d < N_MNT; d++)
		free(dirs[d]);
out:
	free(state[0]);
	free(state[1]);
}
END_TEST

/* Fork a placer that reserves 20 MiB on s, says when it expires, and
 * waits to be killed. */
static pid_t reserve_and_hang(const char *state, int64_t ttl, int64_t *expires)
{
	int fd[2];
	pid_t pid;

	ck_assert(pipe(fd) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		vsm_ctx *ctx = tu_ctx(state);
		vsm_reservation *res = NULL;
		int64_t e = 0;
		request r;

		request_init(&r, 1, 16 * MIB, NULL);
		r.req.datastores = (const char *const[]){ "s" };
		r.req.n_datastores = 1;
		r.req.reservation_ttl_ms = ttl;
		if (vsm_place_reserve(&res, ctx, "held", &r.req) == 0)
			e = vsm_reservation_expires(res);
		else
			fprintf(stderr, "reserve: %s\n", tu_msg());
		if (write(fd[1], &e, sizeof(e)) != sizeof(e))
			_exit(1);
		for (;;)
			pause();
	}
	close(fd[1]);
	ck_assert(read(fd[0], expires, sizeof(*expires)) == sizeof(*expires));
	close(fd[0]);
	ck_assert_msg(*expires > 0, "the child could not reserve");
	kill(pid, SIGKILL);
	ck_assert(waitpid(pid, NULL, 0) == pid);
	return pid;
}

START_TEST(killed_holder_expires)
{
	char *state = tu_dir("state"), *other = tu_dir("other");
	vsm_reservation *res = NULL;
	vsm_ctx *ctx;
	int64_t expires = 0, t;
	request r;
	int rc, tries;

	if (!have_tmpfs)
		goto out;
	ctx = tu_ctx(state);
	add_tmpfs(ctx, NULL);
	vsm_ctx_free(ctx);
	/* Another host (state directory) holds it and dies. */
	{
		char *uri = NULL, *d = NULL;

		ctx = tu_ctx(other);
		ck_assert(asprintf(&d, "%s/s.%d", mnt_dir[0], (int)getpid()) > 0);
		uri = tu_uri(d);
		ck_vsm(vsm_datastore_add(ctx, "s", uri, 0));
		vsm_ctx_free(ctx);
		free(uri);
		free(d);
	}
	reserve_and_hang(other, 1500, &expires);
	ctx = tu_ctx(state);
	request_init(&r, 1, 16 * MIB, NULL);
	r.req.datastores = (const char *const[]){ "s" };
	r.req.n_datastores = 1;
	t = now_ms();
	rc = vsm_place_reserve(&res, ctx, "again", &r.req);
	if (t + 200 < expires) /* only what the expiry decides is asserted */
		ck_assert_msg(rc == -VSM_ENOSPC && strstr(tu_msg(), "reserved 20.0 MiB"),
			      "before the expiry: %d %s", rc, tu_msg());
	for (tries = 0; rc != 0 && tries < 600; tries++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		rc = vsm_place_reserve(&res, ctx, "again", &r.req);
	}
	ck_assert_msg(rc == 0, "after the expiry: %s", tu_msg());
	ck_assert(now_ms() >= expires);
	vsm_reservation_free(res);
	res = NULL;
	/* A dead process of this very state directory frees at once,
	 * whatever its expiry. */
	reserve_and_hang(state, 3600 * 1000, &expires);
	ck_vsm(vsm_place_reserve(&res, ctx, "again2", &r.req));
	vsm_reservation_free(res);
	vsm_ctx_free(ctx);
out:
	free(state);
	free(other);
}
END_TEST

/* --- on plain directories --- */

static vsm_ctx *three_dirs(char **state, char *dirs[3])
{
	vsm_ctx *ctx;

	*state = tu_dir("state");
	ctx = tu_ctx(*state);
	add_ds(ctx, "a", tu_root, dirs ? &dirs[0] : NULL);
	add_ds(ctx, "b", tu_root, dirs ? &dirs[1] : NULL);
	add_ds(ctx, "c", tu_root, dirs ? &dirs[2] : NULL);
	return ctx;
}

START_TEST(base_image_preferred)
{
	char *state, *dirs[3], *path = NULL;
	vsm_container *c = NULL;
	vsm_placement *p = NULL;
	const char *why;
	request r;
	FILE *f;
	vsm_ctx *ctx = three_dirs(&state, dirs);

	/* The golden image is on b only. */
	ck_assert(asprintf(&path, "%s/golden.img", dirs[1]) > 0);
	ck_assert_ptr_nonnull((f = fopen(path, "w")));
	ck_assert(ftruncate(fileno(f), 2 * MIB) == 0);
	fclose(f);
	request_init(&r, 1, 0, "golden.img");
	ck_vsm(vsm_place_datastore(&p, ctx, &r.req));
	ck_assert_uint_eq(vsm_placement_count(p), 1);
	ck_assert_str_eq(vsm_placement_name(p, 0), "b");
	why = rejected(p, "a");
	ck_assert_msg(why && !strcmp(why, "does not hold base image 'golden.img'"), "a: %s",
		      why ? why : "kept");
	ck_assert_ptr_nonnull(rejected(p, "c"));
	vsm_placement_free(p);
	/* Create with placement: on b, over the base. */
	r.opts.flags = VSM_CONTAINER_CREATE_PLACE | VSM_CONTAINER_CREATE_THIN;
	ck_vsm(vsm_container_create(&c, ctx, NULL, "linked", &r.opts));
	ck_assert_str_eq(vsm_container_datastore(c), "b");
	ck_assert_uint_eq(vsm_device_size(vsm_container_device(c, 0)), 2 * MIB);
	vsm_container_free(c);
	ck_assert_uint_eq(reserved_on(ctx, "b"), 0);
	vsm_ctx_free(ctx);
	free(path);
	for (int i = 0; i < 3; i++)
		free(dirs[i]);
	free(state);
}
END_TEST

static int not_b(const vsm_place_ds_info *ds, char *reason, size_t size, void *payload)
{
	(void)payload;
	if (strcmp(ds->name, "b") != 0)
		return 0;
	snprintf(reason, size, "b is under maintenance");
	return 1;
}

static double by_name_desc(const vsm_place_ds_info *ds, void *payload)
{
	(void)payload;
	return (double)(unsigned char)ds->name[0];
}

START_TEST(custom_filter_weigher)
{
	char *state;
	vsm_ctx *ctx = three_dirs(&state, NULL);
	vsm_place_filter f = { VSM_PLACE_FILTER_VERSION, "maint", not_b, NULL, NULL };
	vsm_place_weigher w = { VSM_PLACE_WEIGHER_VERSION, "names", by_name_desc, NULL, 10.0,
				NULL };
	const vsm_place_filter *fp[1] = { &f };
	const vsm_place_weigher *wp[1] = { &w };
	vsm_reservation *res = NULL;
	vsm_placement *p = NULL;
	request r;

	request_init(&r, 1, MIB, NULL);
	r.req.weigher = "spread";
	ck_vsm(vsm_place_datastore(&p, ctx, &r.req));
	ck_assert_uint_eq(vsm_placement_count(p), 3);
	ck_assert_str_eq(vsm_placement_name(p, 0), "a"); /* a tie: by name */
	vsm_placement_free(p);
	r.req.filters = fp;
	r.req.n_filters = 1;
	r.req.weighers = wp;
	r.req.n_weighers = 1;
	ck_vsm(vsm_place_datastore(&p, ctx, &r.req));
	ck_assert_uint_eq(vsm_placement_count(p), 2);
	ck_assert_str_eq(vsm_placement_name(p, 0), "c");
	ck_assert_str_eq(vsm_placement_name(p, 1), "a");
	ck_assert_str_eq(rejected(p, "b"), "maint: b is under maintenance");
	vsm_placement_free(p);
	/* The reservation follows the ranking. */
	ck_vsm(vsm_place_reserve(&res, ctx, "w1", &r.req));
	ck_assert_str_eq(vsm_reservation_datastore(res), "c");
	vsm_reservation_free(res);
	/* Bad input. */
	r.req.weigher = "heaviest";
	ck_vsm_refused(vsm_place_datastore(&p, ctx, &r.req), VSM_EINVAL, "unknown weigher");
	r.req.weigher = NULL;
	f.version = 0;
	ck_vsm_refused(vsm_place_datastore(&p, ctx, &r.req), VSM_EINVAL, "filter");
	vsm_ctx_free(ctx);
	free(state);
}
END_TEST

START_TEST(commit_replaces_reservation)
{
	char *state;
	vsm_ctx *ctx = three_dirs(&state, NULL);
	vsm_reservation *res = NULL, *res2 = NULL;
	vsm_container **list = NULL, *c = NULL;
	size_t n = 9;
	request r;

	request_init(&r, 2, 2 * MIB, NULL);
	r.req.datastores = (const char *const[]){ "b" };
	r.req.n_datastores = 1;
	ck_vsm(vsm_place_reserve(&res, ctx, "web", &r.req));
	ck_assert_str_eq(vsm_reservation_name(res), "web");
	ck_assert_uint_eq(vsm_reservation_bytes(res), 8 * MIB);
	ck_assert_uint_eq(reserved_on(ctx, "b"), 8 * MIB);
	/* Not a container, but its name is held. */
	ck_vsm(vsm_container_list(&list, &n, ctx, NULL));
	ck_assert_uint_eq(n, 0);
	vsm_container_list_free(list, n);
	ck_vsm_refused(vsm_container_lookup(&c, ctx, NULL, "web"), VSM_ENOTFOUND, "web");
	ck_vsm_refused(tu_create(NULL, ctx, "b", "web", 1, MIB), VSM_EEXISTS,
		       "reserved by a placement in progress");
	ck_vsm_refused(vsm_place_reserve(&res2, ctx, "web", &r.req), VSM_EEXISTS,
		       "reserved by a placement in progress");
	/* Commit: the container takes the reservation's place. */
	ck_vsm(vsm_container_create_reserved(&c, res, &r.opts));
	ck_assert_str_eq(vsm_container_datastore(c), "b");
	vsm_container_free(c);
	c = NULL;
	ck_assert_uint_eq(reserved_on(ctx, "b"), 0);
	ck_vsm(vsm_container_lookup(&c, ctx, NULL, "web"));
	vsm_container_free(c);
	ck_vsm(vsm_container_list(&list, &n, ctx, NULL));
	ck_assert_uint_eq(n, 1);
	vsm_container_list_free(list, n);
	/* An abort after the commit leaves the container alone. */
	ck_vsm(vsm_reservation_abort(res));
	vsm_reservation_free(res);
	ck_vsm(vsm_container_lookup(&c, ctx, "b", "web"));
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	free(state);
}
END_TEST

START_TEST(failed_create_frees_reservation)
{
	char *state;
	vsm_ctx *ctx = three_dirs(&state, NULL);
	vsm_reservation *res = NULL;
	vsm_container *c = NULL;
	request r, big;

	request_init(&r, 1, 2 * MIB, NULL);
	r.req.datastores = (const char *const[]){ "a" };
	r.req.n_datastores = 1;
	/* More than reserved. */
	ck_vsm(vsm_place_reserve(&res, ctx, "db", &r.req));
	request_init(&big, 1, 3 * MIB, NULL);
	ck_vsm_refused(vsm_container_create_reserved(&c, res, &big.opts), VSM_EINVAL,
		       "its reservation holds");
	ck_assert_uint_eq(reserved_on(ctx, "a"), 0);
	ck_vsm_refused(vsm_container_create_reserved(&c, res, &r.opts), VSM_EINVAL,
		       "used or aborted");
	vsm_reservation_free(res);
	/* A failure inside the create (a base image that is not there). */
	ck_vsm(vsm_place_reserve(&res, ctx, "db", &r.req));
	big.specs[0].base = "missing.img";
	big.specs[0].format = VSM_FORMAT_QCOW2;
	big.specs[0].size = 2 * MIB;
	ck_assert_int_lt(vsm_container_create_reserved(&c, res, &big.opts), 0);
	ck_assert_uint_eq(reserved_on(ctx, "a"), 0);
	vsm_reservation_free(res);
	/* The name is free again. */
	ck_vsm(vsm_place_reserve(&res, ctx, "db", &r.req));
	ck_vsm(vsm_reservation_abort(res));
	ck_assert_uint_eq(reserved_on(ctx, "a"), 0);
	ck_vsm(vsm_reservation_abort(res));
	vsm_reservation_free(res);
	/* Create with placement in one call, on a named datastore. */
	r.opts.flags = VSM_CONTAINER_CREATE_PLACE;
	ck_vsm(vsm_container_create(&c, ctx, "c", "db2", &r.opts));
	ck_assert_str_eq(vsm_container_datastore(c), "c");
	vsm_container_free(c);
	ck_assert_uint_eq(reserved_on(ctx, "c"), 0);
	vsm_ctx_free(ctx);
	free(state);
}
END_TEST

START_TEST(cached_figures)
{
	char *state;
	vsm_ctx *ctx = three_dirs(&state, NULL);
	vsm_reservation *res = NULL;
	vsm_placement *p = NULL;
	request r;

	request_init(&r, 1, MIB, NULL);
	r.req.flags = VSM_PLACE_CACHED;
	/* No figures recorded yet: read live (and recorded). */
	ck_vsm(vsm_place_datastore(&p, ctx, &r.req));
	ck_assert_uint_eq(vsm_placement_count(p), 3);
	vsm_placement_free(p);
	r.req.flags = VSM_PLACE_CACHED | VSM_PLACE_REQUIRE_CAW;
	ck_vsm(vsm_place_datastore(&p, ctx, &r.req));
	ck_assert_uint_eq(vsm_placement_count(p) + vsm_placement_rejected_count(p), 3);
	if (vsm_placement_rejected_count(p))
		ck_assert_str_eq(vsm_placement_rejected_reason(p, 0),
				 "no compare-and-write on its metadata device");
	vsm_placement_free(p);
	r.req.flags = VSM_PLACE_CACHED;
	ck_vsm(vsm_place_reserve(&res, ctx, "x", &r.req));
	vsm_reservation_free(res);
	vsm_ctx_free(ctx);
	free(state);
}
END_TEST

/* --- records and the backend table's version --- */

START_TEST(reservation_records)
{
	vsm_record r = { 0 }, *back = NULL;
	vsm_rec_reservation rv = { 12 * MIB, 1764560000000, (char *)"n/1:2/c", true };
	char *json = NULL;

	r.name = (char *)"web";
	strcpy(r.uuid, "0c9d2c5e-5b1a-4d7e-9d43-2b7f3f2d9a10");
	r.resv = &rv;
	ck_vsm(vsm_record_encode(&json, &r));
	ck_assert_ptr_nonnull(strstr(json, "\"reservation\""));
	ck_assert_ptr_null(strstr(json, "\"thick\":true,\"")); /* the container flag: absent */
	ck_vsm(vsm_record_decode(&back, json, strlen(json), "test"));
	ck_assert_ptr_nonnull(back->resv);
	ck_assert_uint_eq(back->resv->bytes, 12 * MIB);
	ck_assert_int_eq(back->resv->expires_ms, 1764560000000);
	ck_assert_str_eq(back->resv->owner, "n/1:2/c");
	ck_assert(back->resv->thick);
	ck_assert_uint_eq(back->n_devices, 0);
	vsm_record_free(back);
	free(json);
	/* Zero devices only for a reservation. */
	r.resv = NULL;
	ck_vsm(vsm_record_encode(&json, &r));
	ck_vsm_refused(vsm_record_decode(&back, json, strlen(json), "test"), VSM_ECORRUPT,
		       "has no devices");
	free(json);
	/* A reservation with devices is no reservation. */
	{
		vsm_rec_device d = { (char *)"d0", (char *)"k0", MIB, VSM_FORMAT_RAW, NULL, 0 };

		r.devices = &d;
		r.n_devices = 1;
		r.resv = &rv;
		ck_vsm(vsm_record_encode(&json, &r));
		ck_vsm_refused(vsm_record_decode(&back, json, strlen(json), "test"),
			       VSM_ECORRUPT, "has devices");
		free(json);
		/* A container: thick round-trips, absent reads as thin. */
		r.resv = NULL;
		r.thick = true;
		ck_vsm(vsm_record_encode(&json, &r));
		ck_vsm(vsm_record_decode(&back, json, strlen(json), "test"));
		ck_assert(back->thick && !back->resv);
		vsm_record_free(back);
		free(json);
		r.thick = false;
		ck_vsm(vsm_record_encode(&json, &r));
		ck_assert_ptr_null(strstr(json, "thick"));
		ck_vsm(vsm_record_decode(&back, json, strlen(json), "test"));
		ck_assert(!back->thick);
		vsm_record_free(back);
		free(json);
	}
}
END_TEST

static int allocated_calls;

static int counting_allocated(vsm_backend_ds *ds, const char *key, uint64_t *bytes)
{
	(void)ds;
	(void)key;
	allocated_calls++;
	*bytes = 0;
	return 0;
}

/* "fileN:///PATH" opened as "file:///PATH". */
static int renamed_open(vsm_backend_ds **out, const char *uri, const vsm_backend_open_args *args)
{
	char buf[4200];

	snprintf(buf, sizeof(buf), "file%s", strchr(uri, ':'));
	return vsm__file_backend_ops.open(out, buf, args);
}

START_TEST(allocated_op_versioned)
{
	struct vsm_datastore_ops one = vsm__file_backend_ops, two = vsm__file_backend_ops;
	char *state, *uri = NULL;
	vsm_ctx *ctx;
	spy s1 = { "one", { 0 }, false }, s2 = { "two", { 0 }, false };
	vsm_place_filter f1 = { VSM_PLACE_FILTER_VERSION, "spy1", spy_fn, NULL, &s1 };
	vsm_place_filter f2 = { VSM_PLACE_FILTER_VERSION, "spy2", spy_fn, NULL, &s2 };
	const vsm_place_filter *fp[2] = { &f1, &f2 };
	vsm_placement *p = NULL;
	request r;

	state = tu_dir("state");
	ctx = tu_ctx(state);
	/* A version-1 table whose size still covers the new field: the
	 * field must not be read. */
	one.version = 1;
	one.scheme = "fileone";
	one.open = renamed_open;
	one.device_allocated = counting_allocated;
	two.scheme = "filetwo";
	two.open = renamed_open;
	two.device_allocated = counting_allocated;
	ck_vsm(vsm_datastore_ops_register(ctx, &one, NULL));
	ck_vsm(vsm_datastore_ops_register(ctx, &two, NULL));
	ck_assert(asprintf(&uri, "fileone://%s/one", tu_root) > 0);
	ck_vsm(vsm_datastore_add(ctx, "one", uri, VSM_DATASTORE_ADD_CREATE));
	free(uri);
	ck_assert(asprintf(&uri, "filetwo://%s/two", tu_root) > 0);
	ck_vsm(vsm_datastore_add(ctx, "two", uri, VSM_DATASTORE_ADD_CREATE));
	free(uri);
	ck_vsm(tu_create(NULL, ctx, "one", "thick1", 1, 8 * MIB));
	ck_vsm(tu_create(NULL, ctx, "two", "thick2", 1, 8 * MIB));
	request_init(&r, 1, MIB, NULL);
	r.req.filters = fp;
	r.req.n_filters = 2;
	allocated_calls = 0;
	ck_vsm(vsm_place_datastore(&p, ctx, &r.req));
	vsm_placement_free(p);
	/* Two devices (d0 and the VM-state area) of "two" only. */
	ck_assert_int_eq(allocated_calls, 2);
	/* Without the op, a thick container occupies nothing: all of it
	 * is committed. */
	ck_assert_uint_eq(s1.seen.committed, 12 * MIB);
	ck_assert_uint_eq(s1.seen.provisioned, 12 * MIB);
	ck_assert_uint_eq(s1.seen.containers, 1);
	ck_assert_uint_eq(s2.seen.committed, 12 * MIB);
	vsm_ctx_free(ctx);
	free(state);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("place");
	TCase *tc = tcase_create("datastore");

	tcase_add_unchecked_fixture(tc, mounts_setup, mounts_teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, fullest_never_chosen);
	tcase_add_test(tc, concurrent_never_overcommit);
	tcase_add_test(tc, killed_holder_expires);
	tcase_add_test(tc, base_image_preferred);
	tcase_add_test(tc, custom_filter_weigher);
	tcase_add_test(tc, commit_replaces_reservation);
	tcase_add_test(tc, failed_create_frees_reservation);
	tcase_add_test(tc, cached_figures);
	tcase_add_test(tc, reservation_records);
	tcase_add_test(tc, allocated_op_versioned);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
