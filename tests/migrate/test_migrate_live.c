/*
 * Suite "migrate-live": live migration of an attached container between
 * two file datastores while a writer thread writes random 4 KiB blocks
 * through vsm_image handles, with a reference model in memory: the
 * handles go on on the target and read what the model says (and
 * qemu-img compare agrees on the target's files); convergence in few
 * passes, escalation to synchronous mirroring, abort at a deadline and
 * cancel through progress leave the container on its source, nothing
 * on the target. Pause figures are printed, never asserted.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "workflow.h"
#include <vsm/migrate.h>

#define DEV_SIZE (16u << 20)
#define NDEV 2
#define BLK 4096

static char *state, *ds1dir, *ds2dir, *refdir;
static vsm_ctx *ctx;

static const char *const names[NDEV] = { "d0", "d1" };

typedef struct {
	vsm_image *img[NDEV];
	uint8_t *model[NDEV];
	unsigned int pause_us;  /* between writes; 0: as fast as it can */
	volatile int stop;
	volatile unsigned long writes;
	volatile int failed;
	unsigned int seed;
	pthread_t th;
} writer;

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
	ck_vsm(vsm_host_add(ctx, "h1", NULL));
	ck_vsm(vsm_host_link(ctx, "h1", "ds1", 0));
	ck_vsm(vsm_host_link(ctx, "h1", "ds2", 0));
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

static void *write_loop(void *arg)
{
	writer *w = arg;
	uint8_t buf[BLK];

	while (!w->stop) {
		unsigned int d = (unsigned int)rand_r(&w->seed) % NDEV;
		uint64_t off = ((uint64_t)rand_r(&w->seed) % (DEV_SIZE / BLK)) * BLK;
		size_t i;

		for (i = 0; i < BLK; i += 4)
			*(uint32_t *)(buf + i) = (uint32_t)rand_r(&w->seed) | 1u;
		if (vsm_image_write(w->img[d], buf, BLK, off, 0) != 0) {
			w->failed = 1;
			break;
		}
		memcpy(w->model[d] + off, buf, BLK);
		w->writes++;
		if (w->pause_us)
			usleep(w->pause_us);
	}
	return NULL;
}

/* Fill every device (before the checkpoint), take checkpoint "c1",
 * write some more, attach to h1 and open the writer's handles. */
static vsm_container *make(writer *w, const char *name)
{
	vsm_device_spec specs[NDEV];
	const vsm_device_spec *ptrs[NDEV];
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	vsm_image_open_opts rw = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_container *c = NULL;
	uint8_t buf[65536];
	size_t i, j, round;

	memset(w, 0, sizeof(*w));
	w->seed = 12345;
	for (i = 0; i < NDEV; i++) {
		vsm_device_spec d = VSM_DEVICE_SPEC_INIT;

		d.name = names[i];
		d.size = DEV_SIZE;
		d.format = i % 2 ? VSM_FORMAT_QCOW2 : VSM_FORMAT_RAW;
		specs[i] = d;
		ptrs[i] = &specs[i];
		w->model[i] = calloc(1, DEV_SIZE);
		ck_assert_ptr_nonnull(w->model[i]);
	}
	opts.devices = ptrs;
	opts.n_devices = NDEV;
	opts.flags = VSM_CONTAINER_CREATE_THIN;
	ck_vsm(vsm_container_create(&c, ctx, "ds1", name, &opts));
	rw.flags = VSM_IMAGE_OPEN_RDWR;
	for (round = 0; round < 2; round++) {
		for (i = 0; i < NDEV; i++) {
			vsm_image *img = NULL;

			ck_vsm(vsm_image_open_device(&img, ctx, "ds1", name, names[i], &rw));
			for (j = 0; j < 24; j++) {
				uint64_t off = ((j * 7 + round * 3 + i) % (DEV_SIZE / sizeof(buf))) *
					       sizeof(buf);

				memset(buf, (int)(1 + j + 40 * round + 100 * i), sizeof(buf));
				ck_vsm(vsm_image_write(img, buf, sizeof(buf), off, 0));
				memcpy(w->model[i] + off, buf, sizeof(buf));
			}
			ck_vsm(vsm_image_close(img));
		}
		if (round == 0)
			ck_vsm(vsm_checkpoint_create(NULL, c, "c1", NULL));
	}
	ck_vsm(vsm_attach(c, "h1", 0));
	for (i = 0; i < NDEV; i++)
		ck_vsm(vsm_image_open_device(&w->img[i], ctx, "ds1", name, names[i], &rw));
	return c;
}

static void start(writer *w, unsigned int pause_us)
{
	w->pause_us = pause_us;
	w->stop = 0;
	ck_assert_int_eq(pthread_create(&w->th, NULL, write_loop, w), 0);
	/* It writes before the migration begins. */
	while (w->writes < 50 && !w->failed)
		usleep(1000);
}

static void stop(writer *w)
{
	w->stop = 1;
	pthread_join(w->th, NULL);
	ck_assert_msg(!w->failed, "a write failed: %s", tu_msg());
}

/* What the handles read equals the model. */
static void check_handles(writer *w)
{
	uint8_t *buf = malloc(DEV_SIZE);
	size_t i;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < NDEV; i++) {
		ck_vsm(vsm_image_flush(w->img[i]));
		ck_vsm(vsm_image_read(w->img[i], buf, DEV_SIZE, 0));
		ck_assert_msg(memcmp(buf, w->model[i], DEV_SIZE) == 0,
			      "device %s reads other data than the model", names[i]);
	}
	free(buf);
}

/* Close the handles; the files of @c's tops equal the model (qemu-img). */
static void close_and_compare(writer *w, vsm_container *c)
{
	size_t i;

	for (i = 0; i < NDEV; i++) {
		ck_vsm(vsm_image_close(w->img[i]));
		w->img[i] = NULL;
	}
	ck_vsm(vsm_container_refresh(c));
	for (i = 0; i < NDEV; i++) {
		const char *dir = !strcmp(vsm_container_datastore(c), "ds1") ? ds1dir : ds2dir;
		char *ref = NULL, *top = NULL;
		int fd;

		ck_assert(asprintf(&ref, "%s/%s.%zu.raw", refdir, vsm_container_name(c), i) > 0);
		ck_assert(asprintf(&top, "%s/%s", dir,
				   vsm_device_key(vsm_container_device(c, i))) > 0);
		fd = open(ref, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, w->model[i], DEV_SIZE), (ssize_t)DEV_SIZE);
		close(fd);
		bool q = strlen(top) > 6 && !strcmp(top + strlen(top) - 6, ".qcow2");

		ck_assert_msg(sh("qemu-img compare -f raw -F %s '%s' '%s'", q ? "qcow2" : "raw",
				 ref, top) == 0, "qemu-img compare: %s differs from the model", top);
		if (q)
			ck_assert_msg(sh("qemu-img check '%s'", top) == 0, "qemu-img check %s", top);
		free(ref);
		free(top);
	}
}

static void free_model(writer *w)
{
	size_t i;

	for (i = 0; i < NDEV; i++) {
		if (w->img[i])
			vsm_image_close(w->img[i]);
		free(w->model[i]);
	}
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

/* Nothing of the container's on ds2: no record, no file. */
static void nothing_on_ds2(const char *name)
{
	vsm_container *c = NULL;

	ck_assert_int_eq(vsm_container_lookup(&c, ctx, "ds2", name), -VSM_ENOTFOUND);
	ck_assert_int_eq(tu_count_files(ds2dir), 0);
	no_orphans("ds2");
}

typedef struct {
	pthread_mutex_t mu;
	char seen[4096];
} events;

static void on_event(const vsm_event *ev, void *payload)
{
	events *e = payload;
	const char *d = vsm_event_detail(ev);
	char word[32];

	if (vsm_event_type_of(ev) != VSM_EVENT_MIGRATION || !d)
		return;
	sscanf(d, "%31s", word);
	pthread_mutex_lock(&e->mu);
	if (strlen(e->seen) + strlen(word) + 2 < sizeof(e->seen)) {
		strcat(e->seen, word);
		strcat(e->seen, " ");
	}
	pthread_mutex_unlock(&e->mu);
}

static void print_stats(const char *what, const vsm_migrate_stats *st)
{
	printf("%s: passes %llu, writes paused %llu us, %llu bytes mirrored, synchronous %u, "
	       "%llu bytes written\n", what, (unsigned long long)st->passes,
	       (unsigned long long)st->pause_us, (unsigned long long)st->bytes_mirrored,
	       st->synchronous, (unsigned long long)st->bytes_written);
}

START_TEST(converges)
{
	vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;
	vsm_migrate_stats st;
	events ev = { PTHREAD_MUTEX_INITIALIZER, "" };
	vsm_container *c;
	unsigned long before;
	int id = 0;
	writer w;

	ck_vsm(vsm_event_register(ctx, on_event, &ev, &id));
	c = make(&w, "vm");
	start(&w, 500); /* about 2000 writes a second */
	o.flags = VSM_MIGRATE_LIVE;
	o.stats = &st;
	ck_vsm(vsm_container_migrate(c, "ds2", &o));
	print_stats("converges", &st);
	ck_assert_str_eq(vsm_container_datastore(c), "ds2");
	ck_assert_uint_ge(st.passes, 2);
	ck_assert_uint_eq(st.synchronous, 0);
	/* The handles go on, on the target. */
	before = w.writes;
	while (w.writes < before + 200 && !w.failed)
		usleep(1000);
	stop(&w);
	check_handles(&w);
	ck_vsm(vsm_container_refresh(c));
	ck_assert_str_eq(vsm_container_attached_host(c), "h1");
	{
		vsm_checkpoint **l = NULL;
		size_t n = 0;

		ck_vsm(vsm_checkpoint_list(&l, &n, c));
		ck_assert_uint_eq(n, 1);
		ck_assert_str_eq(vsm_checkpoint_name(l[0]), "c1");
		vsm_checkpoint_list_free(l, n);
	}
	close_and_compare(&w, c);
	ck_assert_int_eq(tu_count_files(ds1dir), 0);
	no_orphans("ds1");
	no_orphans("ds2");
	vsm_event_unregister(ctx, id);
	printf("converges: events %s\n", ev.seen);
	ck_assert_ptr_nonnull(strstr(ev.seen, "start pass "));
	ck_assert_ptr_nonnull(strstr(ev.seen, "switchover complete"));
	/* And back, live again. */
	{
		vsm_image_open_opts rw = VSM_IMAGE_OPEN_OPTS_INIT;
		size_t i;

		rw.flags = VSM_IMAGE_OPEN_RDWR;
		for (i = 0; i < NDEV; i++)
			ck_vsm(vsm_image_open_device(&w.img[i], ctx, "ds2", "vm", names[i], &rw));
		w.writes = 0;
		start(&w, 500);
		ck_vsm(vsm_container_migrate(c, "ds1", &o));
		print_stats("converges back", &st);
		stop(&w);
		check_handles(&w);
		close_and_compare(&w, c);
		ck_assert_str_eq(vsm_container_datastore(c), "ds1");
		no_orphans("ds1");
		no_orphans("ds2");
	}
	free_model(&w);
	vsm_container_free(c);
}
END_TEST

START_TEST(escalates_to_sync)
{
	vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;
	vsm_migrate_stats st;
	vsm_container *c;
	writer w;

	c = make(&w, "busy");
	start(&w, 0); /* as fast as it can */
	o.flags = VSM_MIGRATE_LIVE;
	o.stats = &st;
	o.max_passes = 2;
	o.downtime_ms = 1;
	o.on_no_converge = VSM_MIGRATE_NO_CONVERGE_SYNC;
	ck_vsm(vsm_container_migrate(c, "ds2", &o));
	print_stats("escalates_to_sync", &st);
	ck_assert_uint_eq(st.synchronous, 1);
	ck_assert_str_eq(vsm_container_datastore(c), "ds2");
	usleep(20000);
	stop(&w);
	check_handles(&w);
	close_and_compare(&w, c);
	ck_assert_int_eq(tu_count_files(ds1dir), 0);
	no_orphans("ds2");
	free_model(&w);
	vsm_container_free(c);
}
END_TEST

START_TEST(aborts_at_deadline)
{
	vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;
	vsm_migrate_stats st;
	vsm_container *c;
	unsigned long before;
	writer w;
	int rc;

	c = make(&w, "late");
	start(&w, 0);
	o.flags = VSM_MIGRATE_LIVE;
	o.stats = &st;
	o.deadline_ms = 1;
	o.downtime_ms = 1;
	o.max_passes = 1000;
	o.on_no_converge = VSM_MIGRATE_NO_CONVERGE_ABORT;
	rc = vsm_container_migrate(c, "ds2", &o);
	printf("aborts_at_deadline: %d %s\n", rc, tu_msg());
	ck_assert_int_eq(rc, -VSM_ETIMEDOUT);
	ck_assert_ptr_nonnull(strstr(tu_msg(), "did not converge"));
	ck_assert_str_eq(vsm_container_datastore(c), "ds1");
	/* The writer goes on, on the source. */
	before = w.writes;
	while (w.writes < before + 100 && !w.failed)
		usleep(1000);
	stop(&w);
	check_handles(&w);
	nothing_on_ds2("late");
	close_and_compare(&w, c);
	no_orphans("ds1");
	free_model(&w);
	vsm_container_free(c);
}
END_TEST

static int cancel_late(uint64_t done, uint64_t total, void *payload)
{
	int *calls = payload;

	(void)done;
	(void)total;
	return ++*calls >= 40;
}

START_TEST(cancel_through_progress)
{
	vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;
	vsm_container *c;
	int calls = 0;
	writer w;

	c = make(&w, "cx");
	start(&w, 200);
	o.flags = VSM_MIGRATE_LIVE;
	o.progress = cancel_late;
	o.payload = &calls;
	ck_assert_int_eq(vsm_container_migrate(c, "ds2", &o), -VSM_ECANCELED);
	printf("cancel_through_progress: cancelled at call %d: %s\n", calls, tu_msg());
	ck_assert_str_eq(vsm_container_datastore(c), "ds1");
	usleep(20000);
	stop(&w);
	check_handles(&w);
	nothing_on_ds2("cx");
	close_and_compare(&w, c);
	free_model(&w);
	vsm_container_free(c);
}
END_TEST

START_TEST(refusals)
{
	vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;
	vsm_container *c;
	writer w;

	c = make(&w, "ref");
	o.flags = VSM_MIGRATE_LIVE;
	o.on_no_converge = 7;
	ck_assert_int_eq(vsm_container_migrate(c, "ds2", &o), -VSM_EINVAL);
	o.on_no_converge = 0;
	ck_assert_int_eq(vsm_container_migrate(c, "ds1", &o), -VSM_EINVAL);
	ck_assert_int_eq(vsm_container_migrate(c, "nope", &o), -VSM_ENOTFOUND);
	/* Without the flag an attached container stays. */
	o.flags = 0;
	ck_assert_int_eq(vsm_container_migrate(c, "ds2", &o), -VSM_EBUSY);
	/* A host not linked to the target. */
	ck_vsm(vsm_host_add(ctx, "h2", NULL));
	ck_vsm(vsm_host_link(ctx, "h2", "ds1", 0));
	for (size_t i = 0; i < NDEV; i++) {
		ck_vsm(vsm_image_close(w.img[i]));
		w.img[i] = NULL;
	}
	ck_vsm(vsm_detach(c, 0));
	ck_vsm(vsm_attach(c, "h2", 0));
	o.flags = VSM_MIGRATE_LIVE;
	ck_assert_int_eq(vsm_container_migrate(c, "ds2", &o), -VSM_ESTATE);
	ck_assert_str_eq(vsm_container_datastore(c), "ds1");
	nothing_on_ds2("ref");
	free_model(&w);
	vsm_container_free(c);
}
END_TEST

START_TEST(detached_goes_offline)
{
	vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;
	vsm_migrate_stats st;
	vsm_container *c;
	writer w;
	size_t i;

	c = make(&w, "cold");
	for (i = 0; i < NDEV; i++) {
		ck_vsm(vsm_image_close(w.img[i]));
		w.img[i] = NULL;
	}
	ck_vsm(vsm_detach(c, 0));
	o.flags = VSM_MIGRATE_LIVE;
	o.stats = &st;
	ck_vsm(vsm_container_migrate(c, "ds2", &o));
	ck_assert_uint_eq(st.passes, 0);
	ck_assert_str_eq(vsm_container_datastore(c), "ds2");
	close_and_compare(&w, c);
	free_model(&w);
	vsm_container_free(c);
}
END_TEST


/* --- SIGKILL during live migrations --- */

#define KILL_ROUNDS 14

static int kill_step, kill_tick, seen_steps, seen_ticks, counted, counted_ticks;

static void kill_hook(const char *action)
{
	(void)action;
	if (++seen_steps == kill_step)
		raise(SIGKILL);
}

static void count_hook(const char *action)
{
	(void)action;
	counted++;
}

static int kill_cb(uint64_t done, uint64_t total, void *payload)
{
	(void)done;
	(void)total;
	(void)payload;
	counted_ticks++;
	if (++seen_ticks == kill_tick)
		raise(SIGKILL);
	return 0;
}

/* In a child with its own context: open the writer's handles and
 * migrate @name live, killed at journal step kill_step or progress
 * report kill_tick (0: never). Returns whether it was killed. */
static bool live_killed(const char *name)
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		vsm_image_open_opts rw = VSM_IMAGE_OPEN_OPTS_INIT;
		vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;
		vsm_ctx_opts co = VSM_CTX_OPTS_INIT;
		vsm_image *img[NDEV];
		vsm_container *c = NULL;
		vsm_ctx *child;
		size_t i;

		co.state_dir = state;
		if (vsm_ctx_open(&child, &co) < 0 || vsm_container_lookup(&c, child, NULL, name) < 0)
			_exit(3);
		rw.flags = VSM_IMAGE_OPEN_RDWR;
		for (i = 0; i < NDEV; i++)
			if (vsm_image_open_device(&img[i], child, "ds1", name, names[i], &rw) < 0)
				_exit(5);
		seen_steps = seen_ticks = 0;
		vsm__wf_test_hook = kill_step ? kill_hook : count_hook;
		o.flags = VSM_MIGRATE_LIVE;
		o.progress = kill_cb;
		_exit(vsm_container_migrate(c, "ds2", &o) == 0 ? 0 : 4);
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

START_TEST(sigkill_rounds)
{
	unsigned int seed = (unsigned int)getpid();
	int round, killed = 0, on_target = 0, steps, ticks;
	char name[32];

	srand(seed);
	/* How many journal steps and progress reports one live migration
	 * passes, counted on a first one. */
	{
		vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;
		vsm_container *c;
		writer w;

		c = make(&w, "probe");
		counted = counted_ticks = 0;
		kill_tick = 0;
		vsm__wf_test_hook = count_hook;
		o.flags = VSM_MIGRATE_LIVE;
		o.progress = kill_cb;
		ck_vsm(vsm_container_migrate(c, "ds2", &o));
		vsm__wf_test_hook = NULL;
		steps = counted;
		ticks = counted_ticks;
		free_model(&w);
		ck_vsm(vsm_detach(c, 0));
		vsm_container_free(c);
		ck_assert_int_ge(steps, 6);
		fprintf(stderr, "sigkill_rounds (live): seed %u, %d journal steps, %d reports\n",
			seed, steps, ticks);
	}
	for (round = 0; round < KILL_ROUNDS; round++) {
		vsm_image_open_opts ro = VSM_IMAGE_OPEN_OPTS_INIT;
		vsm_container *c, *l = NULL;
		vsm_container **all = NULL;
		uint8_t *buf = malloc(DEV_SIZE);
		size_t n, i, found = 0;
		char uuid[64];
		writer w;

		ck_assert_ptr_nonnull(buf);
		snprintf(name, sizeof(name), "vm%d", round);
		c = make(&w, name);
		snprintf(uuid, sizeof(uuid), "%s", vsm_container_uuid(c));
		for (i = 0; i < NDEV; i++) {
			ck_vsm(vsm_image_close(w.img[i]));
			w.img[i] = NULL;
		}
		vsm_container_free(c);
		vsm_ctx_free(ctx);
		ctx = NULL;
		/* Even rounds die at each journal step in turn (past the last
		 * the migration finishes), odd ones at a random report. */
		kill_step = kill_tick = 0;
		if (round % 2 == 0)
			kill_step = 1 + rand() % (steps + 1);
		else
			kill_tick = 1 + rand() % (ticks + ticks / 4 + 1);
		killed += live_killed(name);
		/* A new context: recovery finishes or rolls back. */
		ctx = tu_ctx(state);
		ck_vsm(vsm_container_list(&all, &n, ctx, NULL));
		for (i = 0; i < n; i++)
			if (!strcmp(vsm_container_uuid(all[i]), uuid))
				found++;
		vsm_container_list_free(all, n);
		ck_assert_msg(found == 1, "round %d (step %d, tick %d): container listed %zu times",
			      round, kill_step, kill_tick, found);
		ck_vsm(vsm_container_lookup(&l, ctx, NULL, name));
		on_target += !strcmp(vsm_container_datastore(l), "ds2");
		ck_assert_str_eq(vsm_container_attached_host(l), "h1");
		for (i = 0; i < NDEV; i++) {
			vsm_image *img = NULL;

			ck_vsm(vsm_image_open_device(&img, ctx, vsm_container_datastore(l), name,
						     names[i], &ro));
			ck_vsm(vsm_image_read(img, buf, DEV_SIZE, 0));
			ck_assert_msg(memcmp(buf, w.model[i], DEV_SIZE) == 0,
				      "round %d (step %d, tick %d): device %s differs", round,
				      kill_step, kill_tick, names[i]);
			ck_vsm(vsm_image_close(img));
		}
		ck_vsm(vsm_detach(l, 0));
		vsm_container_free(l);
		no_orphans("ds1");
		no_orphans("ds2");
		ck_assert_msg(sh("ls '%s'/migrate-* 2>/dev/null | grep -q .", state) != 0,
			      "round %d: a temporary bundle was left", round);
		free_model(&w);
		free(buf);
	}
	fprintf(stderr, "sigkill_rounds (live): seed %u, %d of %d killed, %d ended on the "
		"target\n", seed, killed, KILL_ROUNDS, on_target);
	ck_assert_int_gt(killed, 0);
	ck_assert_int_gt(on_target, 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("migrate-live");
	TCase *t = tcase_create("live");

	tcase_add_unchecked_fixture(t, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 600);
	tcase_add_test(t, converges);
	tcase_add_test(t, escalates_to_sync);
	tcase_add_test(t, aborts_at_deadline);
	tcase_add_test(t, cancel_through_progress);
	tcase_add_test(t, refusals);
	tcase_add_test(t, detached_goes_offline);
	tcase_add_test(t, sigkill_rounds);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
