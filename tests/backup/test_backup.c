/*
 * Suite "backup": changed-block tracking (vsm_changes) against a
 * reference model of every write, across checkpoint create, delete
 * (merges), revert, and in linked and full clones; backup chains
 * restored byte-identical (qemu-img compare); chains with a gap, out of order or from another container
 * refused; damaged files refused with nothing left behind; a restore
 * killed at each journal step rolled back by the next context.
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "workflow.h"
#include <vsm/backup.h>

#define DEV_SIZE (8u << 20)
#define CL 65536u
#define NCL (DEV_SIZE / CL)
#define NDEV 2
#define MAXSEG 16

static char *state, *dsdir, *uri, *tmpd;
static vsm_ctx *ctx;

static void setup(void)
{
	state = tu_dir("state");
	dsdir = tu_dir("ds");
	tmpd = tu_dir("files");
	uri = tu_uri(dsdir);
	ctx = tu_ctx(state);
	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
}

static void teardown(void)
{
	vsm_ctx_free(ctx);
	ctx = NULL;
	free(state);
	free(dsdir);
	free(tmpd);
	free(uri);
}

static char *in_tmp(const char *name)
{
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/%s", tmpd, name) > 0);
	return p;
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

/* A container "vm" with a qcow2 device d0 and a raw device d1. */
static vsm_container *make(const char *name)
{
	vsm_device_spec s0 = VSM_DEVICE_SPEC_INIT, s1 = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *specs[2] = { &s0, &s1 };
	vsm_container_opts o = VSM_CONTAINER_OPTS_INIT;
	vsm_container *c = NULL;

	s0.name = "d0";
	s0.size = DEV_SIZE;
	s0.format = VSM_FORMAT_QCOW2;
	s1.name = "d1";
	s1.size = DEV_SIZE;
	s1.format = VSM_FORMAT_RAW;
	o.devices = specs;
	o.n_devices = 2;
	o.state_size = 1u << 20;
	ck_vsm(vsm_container_create(&c, ctx, "ds1", name, &o));
	return c;
}

/* The model: what each device holds, and the clusters written in each
 * segment of history (segment k: after the k-th checkpoint). */
typedef struct {
	uint8_t *data[NDEV];
	bool seg[MAXSEG][NDEV][NCL];
	int cur; /* segment being written */
} model;

static void model_init(model *m)
{
	int d;

	memset(m, 0, sizeof(*m));
	for (d = 0; d < NDEV; d++)
		ck_assert((m->data[d] = calloc(1, DEV_SIZE)) != NULL);
}

static void model_free(model *m)
{
	int d;

	for (d = 0; d < NDEV; d++)
		free(m->data[d]);
}

/* @n random writes (data, or now and then zeroes) into both devices. */
static void scribble(model *m, const char *container, int n)
{
	static const char *names[NDEV] = { "d0", "d1" };
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	uint8_t *buf = malloc(300000);
	int d, i;

	ck_assert(buf != NULL);
	o.flags = VSM_IMAGE_OPEN_RDWR;
	for (d = 0; d < NDEV; d++) {
		vsm_image *img = NULL;

		ck_vsm(vsm_image_open_device(&img, ctx, "ds1", container, names[d], &o));
		for (i = 0; i < n; i++) {
			uint64_t len = 1 + (uint64_t)(rand() % 200000);
			uint64_t off = (uint64_t)rand() % (DEV_SIZE - len), c;
			size_t j;

			if (rand() % 5 == 0) {
				ck_vsm(vsm_image_write_zeroes(img, off, len, 0));
				memset(m->data[d] + off, 0, len);
			} else {
				for (j = 0; j < len; j++)
					buf[j] = (uint8_t)(rand() | 1);
				ck_vsm(vsm_image_write(img, buf, len, off, 0));
				memcpy(m->data[d] + off, buf, len);
			}
			for (c = off / CL; c <= (off + len - 1) / CL; c++)
				m->seg[m->cur][d][c] = true;
		}
		ck_vsm(vsm_image_close(img));
	}
	free(buf);
}

/* A cluster of device 0 whose write was never flushed before its writer
 * was killed: it may or may not have reached the disk (-1: none). */
static long maybe_cluster = -1;

/* vsm_changes(@since, @until) of device @d equals the union of segments
 * [@from, @to] of the model, cluster for cluster. */
static void check_changes(model *m, vsm_container *c, int d, const char *since,
			  const char *until, int from, int to)
{
	vsm_change_extent *v = NULL;
	bool want[NCL] = {0}, got[NCL] = {0};
	size_t n = 0, i;
	uint64_t k;
	int s;

	for (s = from; s <= to; s++)
		for (k = 0; k < NCL; k++)
			want[k] |= m->seg[s][d][k];
	ck_vsm(vsm_changes(&v, &n, c, d ? "d1" : "d0", since, until));
	for (i = 0; i < n; i++) {
		ck_assert_msg(v[i].offset % CL == 0 && v[i].length % CL == 0 && v[i].length,
			      "extent %zu (%llu+%llu) is not whole clusters", i,
			      (unsigned long long)v[i].offset, (unsigned long long)v[i].length);
		ck_assert(v[i].offset + v[i].length <= DEV_SIZE);
		if (i)
			ck_assert_msg(v[i].offset > v[i - 1].offset + v[i - 1].length,
				      "extents not sorted and merged");
		for (k = v[i].offset / CL; k < (v[i].offset + v[i].length) / CL; k++)
			got[k] = true;
	}
	for (k = 0; k < NCL; k++)
		ck_assert_msg(want[k] == got[k] || (d == 0 && (long)k == maybe_cluster), "device d%d since %s until %s: cluster %llu "
			      "is %s but the model says %s", d, since, until ? until : "now",
			      (unsigned long long)k, got[k] ? "changed" : "unchanged",
			      want[k] ? "changed" : "unchanged");
	vsm_change_extents_free(v);
}

static void ckpt(vsm_container *c, model *m, const char *name)
{
	ck_vsm(vsm_checkpoint_create(NULL, c, name, NULL));
	m->cur++;
}

START_TEST(changes_follow_writes)
{
	vsm_container *c = make("vm");
	model m;
	int d;

	model_init(&m);
	srand(1);
	scribble(&m, "vm", 20);       /* segment 0: before any checkpoint */
	ckpt(c, &m, "a");
	scribble(&m, "vm", 15);       /* 1 */
	ckpt(c, &m, "b");
	scribble(&m, "vm", 15);       /* 2 */
	ckpt(c, &m, "c");
	scribble(&m, "vm", 10);       /* 3: now */
	for (d = 0; d < NDEV; d++) {
		check_changes(&m, c, d, "a", "b", 1, 1);
		check_changes(&m, c, d, "a", "c", 1, 2);
		check_changes(&m, c, d, "b", "c", 2, 2);
		check_changes(&m, c, d, "a", NULL, 1, 3);
		check_changes(&m, c, d, "c", NULL, 3, 3);
		check_changes(&m, c, d, "b", "b", 2, 1); /* empty */
	}
	/* Deleting b merges its layer with a neighbour: a..c is unchanged. */
	ck_vsm(vsm_checkpoint_delete(c, "b", 0));
	for (d = 0; d < NDEV; d++) {
		check_changes(&m, c, d, "a", "c", 1, 2);
		check_changes(&m, c, d, "a", NULL, 1, 3);
		check_changes(&m, c, d, "c", NULL, 3, 3);
	}
	ck_vsm_refused(vsm_changes(&(vsm_change_extent *){0}, &(size_t){0}, c, "d0", "b", NULL),
		       VSM_ENOTFOUND, "no checkpoint 'b'");
	ck_vsm_refused(vsm_changes(&(vsm_change_extent *){0}, &(size_t){0}, c, "d9", "a", NULL),
		       VSM_ENOTFOUND, "no device 'd9'");
	ck_vsm_refused(vsm_changes(&(vsm_change_extent *){0}, &(size_t){0}, c, "d0", "c", "a"),
		       VSM_EINVAL, "not an ancestor");
	model_free(&m);
	vsm_container_free(c);
}
END_TEST

START_TEST(changes_after_revert)
{
	vsm_container *c = make("vm");
	model m;
	int d;

	model_init(&m);
	srand(2);
	scribble(&m, "vm", 10);
	ckpt(c, &m, "a");
	scribble(&m, "vm", 10);       /* 1 */
	ckpt(c, &m, "b");
	scribble(&m, "vm", 10);       /* 2: dropped by the revert */
	ck_vsm(vsm_checkpoint_revert(c, "a", NULL));
	memset(m.seg[2], 0, sizeof(m.seg[2]));
	for (d = 0; d < NDEV; d++)
		check_changes(&m, c, d, "a", NULL, 2, 2); /* nothing yet */
	scribble(&m, "vm", 10);       /* 2 again, on the new branch */
	for (d = 0; d < NDEV; d++) {
		check_changes(&m, c, d, "a", NULL, 2, 2);
		check_changes(&m, c, d, "a", "b", 1, 1); /* the other branch stays */
	}
	ck_vsm_refused(vsm_changes(&(vsm_change_extent *){0}, &(size_t){0}, c, "d0", "b", NULL),
		       VSM_EINVAL, "not an ancestor of the current state");
	model_free(&m);
	vsm_container_free(c);
}
END_TEST

/* A clone (linked, then full) tracks its own writes from its own
 * checkpoints; the source's answers do not see them, and deleting the
 * source's checkpoint under a linked clone changes neither side. */
START_TEST(changes_in_clones)
{
	static const unsigned int kinds[2] = { 0, VSM_CLONE_FULL };
	vsm_container *c = make("vm");
	model m;
	int d, k;

	model_init(&m);
	srand(3);
	scribble(&m, "vm", 10);
	ckpt(c, &m, "a");
	for (k = 0; k < 2; k++) {
		const char *name = kinds[k] ? "full" : "linked";
		vsm_container *cl = NULL;
		model mc;

		ck_vsm(vsm_checkpoint_clone(&cl, c, "a", name, kinds[k]));
		model_init(&mc);
		scribble(&mc, name, 8);         /* the clone's segment 0 */
		ckpt(cl, &mc, "x");
		scribble(&mc, name, 8);         /* 1 */
		ckpt(cl, &mc, "y");
		scribble(&mc, name, 8);         /* 2: now */
		for (d = 0; d < NDEV; d++) {
			check_changes(&mc, cl, d, "x", "y", 1, 1);
			check_changes(&mc, cl, d, "x", NULL, 1, 2);
			check_changes(&mc, cl, d, "y", NULL, 2, 2);
		}
		ck_vsm_refused(vsm_changes(&(vsm_change_extent *){0}, &(size_t){0}, cl, "d0", "a",
					   NULL), VSM_ENOTFOUND, "no checkpoint 'a'");
		model_free(&mc);
		vsm_container_free(cl);
	}
	scribble(&m, "vm", 10);         /* the source's segment 1 */
	for (d = 0; d < NDEV; d++)
		check_changes(&m, c, d, "a", NULL, 1, 1);
	/* The linked clone still reads a's layer once a is gone from vm. */
	ckpt(c, &m, "b");
	ck_vsm(vsm_checkpoint_delete(c, "a", 0));
	{
		vsm_container *cl = NULL;
		model mc;

		ck_vsm(vsm_container_lookup(&cl, ctx, "ds1", "linked"));
		model_init(&mc);
		ckpt(cl, &mc, "z");
		scribble(&mc, "linked", 5);     /* the clone's segment 1 since z */
		for (d = 0; d < NDEV; d++)
			check_changes(&mc, cl, d, "z", NULL, 1, 1);
		model_free(&mc);
		vsm_container_free(cl);
	}
	model_free(&m);
	vsm_container_free(c);
}
END_TEST

/* A writer through libvsm killed after some writes leaves the top's
 * tracking bitmap in use: the answer comes from the layer's allocation
 * (no change lost), and the next writer rebuilds the bitmap. */
START_TEST(killed_writer_recovered)
{
	vsm_container *c = make("vm");
	vsm_image *img = NULL;
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	char *top = NULL;
	model m;
	pid_t pid;
	int st, d;

	model_init(&m);
	srand(8);
	scribble(&m, "vm", 10);
	ckpt(c, &m, "a");
	scribble(&m, "vm", 10);
	ck_vsm(vsm_container_refresh(c));
	ck_assert(asprintf(&top, "%s/%s", dsdir, vsm_device_key(vsm_container_device(c, 0))) > 0);
	ck_assert_int_eq(sh("qemu-img info '%s' | grep -q libvsm-cbt", top), 0);
	/* Fork from a process without the library's threads: a lock one of
	 * them holds would stay held in the child (ASan's allocator did). */
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	ctx = NULL;
	fflush(NULL);
	if ((pid = fork()) == 0) {
		vsm_ctx_opts co = VSM_CTX_OPTS_INIT;

		co.state_dir = state;
		if (vsm_ctx_open(&ctx, &co) < 0)
			_exit(3);
		scribble(&m, "vm", 0); /* nothing: the model is the parent's */
		o.flags = VSM_IMAGE_OPEN_RDWR;
		if (vsm_image_open_device(&img, ctx, "ds1", "vm", "d0", &o) < 0 ||
		    vsm_image_write(img, "x", 1, 5u << 20, 0) < 0 ||
		    vsm_image_flush(img) < 0 ||
		    vsm_image_write(img, "y", 1, 7u << 20, 0) < 0)
			_exit(4);
		/* Killed after a write no flush stored the bits of. */
		raise(SIGKILL);
		_exit(5);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	ctx = tu_ctx(state);
	ck_vsm(vsm_container_lookup(&c, ctx, "ds1", "vm"));
	/* 'x' was flushed; 'y' was not, so a crash may lose it. */
	m.seg[1][0][(5u << 20) / CL] = true;
	m.data[0][5u << 20] = 'x';
	maybe_cluster = (7u << 20) / CL;
	ck_assert_msg(sh("qemu-img info --output=json '%s' | grep -q in-use", top) == 0,
		      "the killed writer's bitmap is not marked in use");
	for (d = 0; d < NDEV; d++)
		check_changes(&m, c, d, "a", NULL, 1, 1);
	/* The next writer rebuilds it from the layer. */
	o.flags = VSM_IMAGE_OPEN_RDWR;
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", "vm", "d0", &o));
	ck_vsm(vsm_image_close(img));
	ck_assert_msg(sh("qemu-img info --output=json '%s' | grep -q in-use", top) != 0,
		      "the bitmap is still in use after a writer closed the image");
	ck_assert_int_eq(sh("qemu-img check -q '%s'", top), 0);
	for (d = 0; d < NDEV; d++)
		check_changes(&m, c, d, "a", NULL, 1, 1);
	maybe_cluster = -1;
	free(top);
	model_free(&m);
	vsm_container_free(c);
}
END_TEST

/* Read all of device @dev of container @name. */
static uint8_t *read_all(const char *name, const char *dev)
{
	vsm_image *img = NULL;
	uint8_t *buf = malloc(DEV_SIZE);

	ck_assert(buf != NULL);
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", name, dev, NULL));
	ck_vsm(vsm_image_read(img, buf, DEV_SIZE, 0));
	ck_vsm(vsm_image_close(img));
	return buf;
}

static void same_as(const char *name, uint8_t *const want[NDEV])
{
	static const char *names[NDEV] = { "d0", "d1" };
	int d;

	for (d = 0; d < NDEV; d++) {
		uint8_t *got = read_all(name, names[d]);

		ck_assert_msg(!memcmp(got, want[d], DEV_SIZE), "container '%s' device %s differs",
			      name, names[d]);
		free(got);
	}
}

/* qemu-img compare of the two containers' devices, through their chains. */
static void qemu_same(vsm_container *a, vsm_container *b)
{
	size_t d;

	ck_vsm(vsm_container_refresh(a));
	ck_vsm(vsm_container_refresh(b));
	for (d = 0; d < NDEV; d++)
		ck_assert_msg(sh("qemu-img compare -q '%s/%s' '%s/%s'", dsdir,
				 vsm_device_key(vsm_container_device(a, d)), dsdir,
				 vsm_device_key(vsm_container_device(b, d))) == 0,
			      "qemu-img compare: device %zu differs", d);
}

static uint64_t changed_bytes(vsm_container *c, const char *since, const char *until)
{
	vsm_change_extent *v = NULL;
	uint64_t sum = 0;
	size_t n = 0, i;
	int d;

	for (d = 0; d < NDEV; d++) {
		ck_vsm(vsm_changes(&v, &n, c, d ? "d1" : "d0", since, until));
		for (i = 0; i < n; i++)
			sum += v[i].length;
		vsm_change_extents_free(v);
	}
	return sum;
}

/* A chain of 4 backups of "vm" (full, then 3 incrementals) with the
 * model's contents at each point in @at. */
typedef struct {
	char *file[4];
	uint8_t *at[4][NDEV];
} chain;

static void backup_at(vsm_container *c, model *m, chain *ch, int k, const char *base,
		      int state_fd)
{
	vsm_backup_opts o = VSM_BACKUP_OPTS_INIT;
	vsm_checkpoint_opts co = VSM_CHECKPOINT_OPTS_INIT;
	vsm_backup_stats st;
	char name[8], file[16];
	int d;

	snprintf(name, sizeof(name), "b%d", k);
	snprintf(file, sizeof(file), "vm.%d.bk", k);
	ch->file[k] = in_tmp(file);
	co.state_fd = state_fd;
	o.checkpoint = name;
	o.checkpoint_opts = &co;
	o.incremental_from = base;
	o.stats = &st;
	ck_vsm(vsm_backup(c, ch->file[k], &o));
	ck_assert_str_eq(st.checkpoint, name);
	for (d = 0; d < NDEV; d++) {
		ck_assert((ch->at[k][d] = malloc(DEV_SIZE)) != NULL);
		memcpy(ch->at[k][d], m->data[d], DEV_SIZE);
	}
	if (base) {
		uint64_t changed = changed_bytes(c, base, name);

		/* Only the changed extents, plus the manifest and 24-byte
		 * records (the state area's zeros included). */
		ck_assert_msg(st.file_bytes <= changed + 65536, "incremental %d: %llu bytes for "
			      "%llu changed", k, (unsigned long long)st.file_bytes,
			      (unsigned long long)changed);
		fprintf(stderr, "backup: incremental %d: %llu bytes changed, file %llu bytes\n",
			k, (unsigned long long)changed, (unsigned long long)st.file_bytes);
	}
}

static void make_chain(chain *ch, model *m, vsm_container *c)
{
	char *sp = in_tmp("state.bin");
	int fd, i;

	fd = open(sp, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert(fd >= 0);
	for (i = 0; i < 3000; i++)
		ck_assert(write(fd, "vm-state", 8) == 8);
	ck_assert(lseek(fd, 0, SEEK_SET) == 0);
	scribble(m, "vm", 20);
	backup_at(c, m, ch, 0, NULL, fd);
	close(fd);
	scribble(m, "vm", 8);
	backup_at(c, m, ch, 1, "b0", -1);
	scribble(m, "vm", 8);
	backup_at(c, m, ch, 2, "b1", -1);
	scribble(m, "vm", 8);
	backup_at(c, m, ch, 3, "b2", -1);
	free(sp);
}

static void chain_free(chain *ch)
{
	int k, d;

	for (k = 0; k < 4; k++) {
		free(ch->file[k]);
		for (d = 0; d < NDEV; d++)
			free(ch->at[k][d]);
	}
}

static int restore(const char *name, int n, ...)
{
	vsm_restore_opts o = VSM_RESTORE_OPTS_INIT;
	const char *files[8];
	va_list ap;
	int i;

	va_start(ap, n);
	for (i = 0; i < n; i++)
		files[i] = va_arg(ap, const char *);
	va_end(ap);
	o.name = name;
	return vsm_restore(NULL, ctx, files, (size_t)n, "ds1", &o);
}

START_TEST(backup_chain_restores)
{
	vsm_container *c = make("vm"), *r = NULL;
	vsm_checkpoint **list = NULL;
	size_t n = 0, i;
	chain ch;

	memset(&ch, 0, sizeof(ch));
	model m;
	char *blob;
	int fd;

	model_init(&m);
	srand(3);
	make_chain(&ch, &m, c);
	/* The whole chain: as the source at b3, by the model and qemu-img. */
	ck_vsm(restore("r3", 4, ch.file[0], ch.file[1], ch.file[2], ch.file[3]));
	same_as("r3", ch.at[3]);
	ck_vsm(vsm_container_lookup(&r, ctx, "ds1", "r3"));
	qemu_same(c, r);
	ck_vsm(vsm_checkpoint_list(&list, &n, r));
	ck_assert_int_eq(n, 4);
	for (i = 0; i < n; i++) {
		char want[32];

		snprintf(want, sizeof(want), "b%zu", i);
		ck_assert_str_eq(vsm_checkpoint_name(list[i]), want);
	}
	ck_assert(vsm_checkpoint_is_current(list[3]));
	vsm_checkpoint_list_free(list, n);
	/* The VM-state blob of the full backup's checkpoint came along. */
	blob = in_tmp("state.out");
	fd = open(blob, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_vsm(vsm_checkpoint_state_read(r, "b0", fd, NULL, NULL));
	close(fd);
	ck_assert_int_eq(sh("cmp '%s' '%s/state.bin'", blob, tmpd), 0);
	free(blob);
	/* A chain cut short restores that point. */
	ck_vsm(restore("r1", 2, ch.file[0], ch.file[1]));
	same_as("r1", ch.at[1]);
	/* The restored container backs up again from its last point. */
	scribble(&m, "r3", 5);
	{
		vsm_backup_opts o = VSM_BACKUP_OPTS_INIT;
		char *again = in_tmp("r3.inc");

		o.incremental_from = "b3";
		ck_vsm(vsm_backup(r, again, &o));
		ck_vsm(restore("r4", 5, ch.file[0], ch.file[1], ch.file[2], ch.file[3], again));
		same_as("r4", m.data);
		free(again);
	}
	vsm_container_free(r);
	chain_free(&ch);
	model_free(&m);
	vsm_container_free(c);
}
END_TEST

START_TEST(bad_chains_refused)
{
	vsm_container *c = make("vm"), *other = make("other"), *r = NULL;
	chain ch;

	memset(&ch, 0, sizeof(ch));
	char *ofile = in_tmp("other.bk"), *base_less = in_tmp("x.bk");
	model m;
	int before;

	model_init(&m);
	srand(4);
	make_chain(&ch, &m, c);
	ck_vsm(vsm_backup(other, ofile, NULL));
	before = tu_count_files(dsdir);
	ck_vsm_refused(restore("x", 3, ch.file[0], ch.file[2], ch.file[3]), VSM_EINVAL,
		       "missing or out of order");
	ck_vsm_refused(restore("x", 4, ch.file[0], ch.file[2], ch.file[1], ch.file[3]),
		       VSM_EINVAL, "missing or out of order");
	ck_vsm_refused(restore("x", 2, ch.file[1], ch.file[2]), VSM_EINVAL,
		       "starts from a full backup");
	ck_vsm_refused(restore("x", 2, ch.file[0], ch.file[0]), VSM_EINVAL,
		       "only the first file");
	ck_vsm_refused(restore("x", 2, ofile, ch.file[1]), VSM_EINVAL, "not of the container of");
	ck_vsm_refused(restore("vm", 1, ch.file[0]), VSM_EEXISTS, "vm");
	ck_assert_int_eq(tu_count_files(dsdir), before);
	ck_assert_int_eq(vsm_container_lookup(&r, ctx, "ds1", "x"), -VSM_ENOTFOUND);
	/* An incremental needs a backup point as its base. */
	ck_vsm(vsm_checkpoint_create(NULL, c, "plain", NULL));
	{
		vsm_backup_opts o = VSM_BACKUP_OPTS_INIT;

		o.incremental_from = "plain";
		ck_vsm_refused(vsm_backup(c, base_less, &o), VSM_EINVAL, "not a backup point");
		ck_assert(!tu_exists(base_less));
		/* An existing file is never overwritten; no checkpoint is left. */
		o.incremental_from = NULL;
		o.checkpoint = "bx";
		ck_vsm_refused(vsm_backup(c, ch.file[0], &o), VSM_EEXISTS, ch.file[0]);
		ck_assert_int_eq(vsm_checkpoint_lookup(&(vsm_checkpoint *){0}, c, "bx"),
				 -VSM_ENOTFOUND);
	}
	free(ofile);
	free(base_less);
	chain_free(&ch);
	model_free(&m);
	vsm_container_free(other);
	vsm_container_free(c);
}
END_TEST

START_TEST(backup_existing_checkpoint)
{
	vsm_container *c = make("vm");
	vsm_backup_opts o = VSM_BACKUP_OPTS_INIT;
	char *f1 = in_tmp("p1.bk"), *f2 = in_tmp("p2.bk");
	uint8_t *at_p2[NDEV];
	model m;
	int d;

	model_init(&m);
	srand(7);
	scribble(&m, "vm", 10);
	ck_vsm(vsm_checkpoint_create(NULL, c, "p1", NULL));
	scribble(&m, "vm", 10);
	ck_vsm(vsm_checkpoint_create(NULL, c, "p2", NULL));
	for (d = 0; d < NDEV; d++) {
		ck_assert((at_p2[d] = malloc(DEV_SIZE)) != NULL);
		memcpy(at_p2[d], m.data[d], DEV_SIZE);
	}
	scribble(&m, "vm", 10); /* after p2: in no backup */
	o.flags = VSM_BACKUP_AT_CHECKPOINT;
	ck_vsm_refused(vsm_backup(c, f1, &o), VSM_EINVAL, "needs the checkpoint's name");
	o.checkpoint = "nope";
	ck_vsm_refused(vsm_backup(c, f1, &o), VSM_ENOTFOUND, "no checkpoint 'nope'");
	o.checkpoint = "p1";
	ck_vsm(vsm_backup(c, f1, &o));
	o.checkpoint = "p2";
	o.incremental_from = "p1";
	ck_vsm(vsm_backup(c, f2, &o));
	ck_vsm(restore("r", 2, f1, f2));
	same_as("r", at_p2);
	for (d = 0; d < NDEV; d++)
		free(at_p2[d]);
	free(f1);
	free(f2);
	model_free(&m);
	vsm_container_free(c);
}
END_TEST

static int cancel_at_half(uint64_t done, uint64_t total, void *payload)
{
	(void)payload;
	return total && done * 2 >= total ? -VSM_EINVAL : 0;
}

/* A backup cancelled by its progress callback leaves neither the file
 * nor the checkpoint it took. */
START_TEST(backup_cancelled)
{
	vsm_container *c = make("vm");
	vsm_backup_opts o = VSM_BACKUP_OPTS_INIT;
	char *f = in_tmp("cancel.bk");
	size_t n = 0;
	vsm_checkpoint **list = NULL;
	model m;

	model_init(&m);
	srand(9);
	scribble(&m, "vm", 30);
	o.checkpoint = "half";
	o.progress = cancel_at_half;
	ck_vsm_refused(vsm_backup(c, f, &o), VSM_EINVAL, "cancelled");
	ck_assert(!tu_exists(f));
	ck_vsm(vsm_checkpoint_list(&list, &n, c));
	ck_assert_uint_eq(n, 0);
	vsm_checkpoint_list_free(list, n);
	free(f);
	model_free(&m);
	vsm_container_free(c);
}
END_TEST

/* A raw disk whose guest wrote a qcow2 header (naming another
 * container's device as its backing) is backed up as the bytes it holds:
 * the layer is opened as the record's format, never probed. */
START_TEST(raw_layer_never_probed)
{
	vsm_container *c = make("vm"), *other = NULL;
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img = NULL;
	char *fake = in_tmp("fake.qcow2"), *f = in_tmp("vm.bk");
	uint8_t *want = calloc(1, DEV_SIZE), *got, s[65536];
	vsm_restore_opts ro = VSM_RESTORE_OPTS_INIT;
	const char *files[1] = { f };
	FILE *fp;
	size_t n;

	ck_assert(want != NULL);
	/* The secret: another container's raw device full of 'S'. */
	ck_vsm(tu_create(&other, ctx, "ds1", "other", 1, DEV_SIZE));
	memset(s, 'S', sizeof(s));
	o.flags = VSM_IMAGE_OPEN_RDWR;
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", "other", "d0", &o));
	ck_vsm(vsm_image_write(img, s, sizeof(s), 0, 0));
	ck_vsm(vsm_image_close(img));
	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 -u -F raw -b '%s' '%s' 8M",
			    vsm_device_key(vsm_container_device(other, 0)), fake), 0);
	ck_assert((fp = fopen(fake, "rb")) != NULL);
	n = fread(want, 1, DEV_SIZE, fp);
	fclose(fp);
	ck_assert(n > 0 && !memcmp(want, "QFI\xfb", 4));
	/* The guest of vm writes it into its raw disk d1. */
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", "vm", "d1", &o));
	ck_vsm(vsm_image_write(img, want, n, 0, 0));
	ck_vsm(vsm_image_close(img));
	ck_vsm(vsm_backup(c, f, NULL));
	ro.name = "copy";
	ck_vsm(vsm_restore(NULL, ctx, files, 1, "ds1", &ro));
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", "copy", "d1", NULL));
	ck_assert((got = malloc(DEV_SIZE)) != NULL);
	ck_vsm(vsm_image_read(img, got, DEV_SIZE, 0));
	ck_vsm(vsm_image_close(img));
	ck_assert_msg(!memcmp(got, want, DEV_SIZE), "the raw disk's bytes were not backed up "
		      "as they are (read through as a qcow2 image?)");
	free(got);
	free(want);
	free(fake);
	free(f);
	vsm_container_free(other);
	vsm_container_free(c);
}
END_TEST

/* Copy @src to @dst with the byte at @at XORed (or cut at @at). */
static void damage(const char *src, const char *dst, off_t at, bool cut)
{
	ck_assert_int_eq(sh("cp '%s' '%s'", src, dst), 0);
	if (cut) {
		ck_assert_int_eq(truncate(dst, at), 0);
	} else {
		int fd = open(dst, O_RDWR);
		uint8_t b;

		ck_assert(fd >= 0);
		ck_assert(pread(fd, &b, 1, at) == 1);
		b ^= 0x40;
		ck_assert(pwrite(fd, &b, 1, at) == 1);
		close(fd);
	}
}

START_TEST(damaged_files_refused)
{
	vsm_container *c = make("vm"), *r = NULL;
	chain ch;

	memset(&ch, 0, sizeof(ch));
	char *bad = in_tmp("bad.bk");
	struct stat st;
	model m;
	int before;

	model_init(&m);
	srand(5);
	make_chain(&ch, &m, c);
	before = tu_count_files(dsdir);
	ck_assert_int_eq(stat(ch.file[1], &st), 0);
	/* A data byte late in the incremental: found after the full backup
	 * and part of it were written; the whole container goes. */
	damage(ch.file[1], bad, st.st_size - 2000, false);
	ck_vsm_refused(restore("x", 2, ch.file[0], bad), VSM_ECORRUPT, "checksum");
	unlink(bad);
	damage(ch.file[1], bad, st.st_size - 5, true);
	ck_vsm_refused(restore("x", 2, ch.file[0], bad), VSM_ECORRUPT, "truncated");
	unlink(bad);
	damage(ch.file[1], bad, 100, false);     /* the manifest */
	ck_vsm_refused(restore("x", 2, ch.file[0], bad), VSM_ECORRUPT, "manifest");
	unlink(bad);
	damage(ch.file[1], bad, 20, false);      /* the header */
	ck_vsm_refused(restore("x", 2, ch.file[0], bad), VSM_ECORRUPT, "header");
	ck_assert_int_eq(tu_count_files(dsdir), before);
	ck_assert_int_eq(vsm_container_lookup(&r, ctx, "ds1", "x"), -VSM_ENOTFOUND);
	/* A bundle is not a backup, and the other way round. */
	unlink(bad);
	ck_vsm(vsm_bundle_export(c, "b0", bad, NULL));
	ck_vsm_refused(restore("x", 1, bad), VSM_EINVAL, "is a bundle, not a backup");
	ck_assert(vsm_bundle_import(NULL, ctx, ch.file[0], "ds1", "x", NULL) < 0);
	free(bad);
	chain_free(&ch);
	model_free(&m);
	vsm_container_free(c);
}
END_TEST

/* --- a restore killed at each of its journal steps --- */

static int crash_at, crash_seen;
static const char *crash_files[2];

static void crash_hook(const char *action)
{
	(void)action;
	if (++crash_seen == crash_at)
		_exit(77);
}

START_TEST(restore_crash_rolls_back)
{
	vsm_container *c = make("vm");
	chain ch;

	memset(&ch, 0, sizeof(ch));
	model m;
	int at, before, done = 0;

	model_init(&m);
	srand(6);
	make_chain(&ch, &m, c);
	crash_files[0] = ch.file[0];
	crash_files[1] = ch.file[1];
	before = tu_count_files(dsdir);
	vsm_container_free(c);
	c = NULL;
	for (at = 1; at < 60 && !done; at++) {
		vsm_container *r = NULL;
		pid_t pid;
		int st;

		/* Fork without the library's threads (see killed_writer_recovered). */
		vsm_ctx_free(ctx);
		ctx = NULL;
		fflush(NULL);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
			vsm_restore_opts ro = VSM_RESTORE_OPTS_INIT;

			o.state_dir = state;
			if (vsm_ctx_open(&ctx, &o) < 0)
				_exit(3);
			crash_at = at;
			crash_seen = 0;
			vsm__wf_test_hook = crash_hook;
			ro.name = "copy";
			_exit(vsm_restore(NULL, ctx, crash_files, 2, "ds1", &ro) < 0 ? 5 : 0);
		}
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert(WIFEXITED(st));
		ck_assert_msg(WEXITSTATUS(st) == 77 || WEXITSTATUS(st) == 0, "child exit %d",
			      WEXITSTATUS(st));
		done = WEXITSTATUS(st) == 0;
		/* The next context rolls an interrupted restore back. */
		ctx = tu_ctx(state);
		if (done) {
			same_as("copy", ch.at[1]);
			ck_vsm(vsm_container_lookup(&r, ctx, "ds1", "copy"));
			ck_vsm(vsm_container_destroy(r, 0));
			vsm_container_free(r);
		} else {
			ck_assert_int_eq(vsm_container_lookup(&r, ctx, "ds1", "copy"),
					 -VSM_ENOTFOUND);
		}
		ck_assert_msg(tu_count_files(dsdir) == before, "step %d: %d files, %d before", at,
			      tu_count_files(dsdir), before);
	}
	ck_assert_msg(done, "the restore never finished");
	ck_assert_int_gt(at, 3);
	chain_free(&ch);
	model_free(&m);
	vsm_container_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("backup");
	TCase *t = tcase_create("backup");

	tcase_add_unchecked_fixture(t, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 240);
	tcase_add_test(t, changes_follow_writes);
	tcase_add_test(t, changes_after_revert);
	tcase_add_test(t, changes_in_clones);
	tcase_add_test(t, killed_writer_recovered);
	tcase_add_test(t, backup_chain_restores);
	tcase_add_test(t, bad_chains_refused);
	tcase_add_test(t, backup_existing_checkpoint);
	tcase_add_test(t, backup_cancelled);
	tcase_add_test(t, raw_layer_never_probed);
	tcase_add_test(t, damaged_files_refused);
	tcase_add_test(t, restore_crash_rolls_back);
	suite_add_tcase(s, t);
	return tu_run(s);
}
