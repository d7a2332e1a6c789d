/*
 * Suite "faults": a fault campaign over whole operations (issue 12 item
 * 3). For each operation, for N = 1, 2, ... until a run meets no fault,
 * the Nth read, write or flush (any of them) of the operation's I/O
 * fails (lib/io/fault.h), transient or sticky, EIO or ENOSPC. Every run
 * starts from a fresh datastore and container holding known data; the
 * rule is limited by its match string to the datastore's (or the image
 * directory's) bdevs and armed only around the operation itself.
 *
 * After each run: the operation succeeded, or failed with a negative
 * code and a message (never a crash: Check forks each test; never a
 * hang: the test has a timeout); vsm_ctx_recover() finishes or rolls
 * back whatever the journal holds (it must report nothing left); every
 * qcow2 file checks clean with qemu-img (rc 0 or 3: leaks allowed); the
 * devices read what was acknowledged before the operation (or, where the
 * operation succeeded, what it promises: a revert's checkpoint data, a
 * clone's, an import's); and the operation run again succeeds (nothing
 * is left unfinishable: after a failed checkpoint delete, deleting on
 * that container works).
 *
 * Each campaign prints how many runs met a fault (doc/faults.md).
 *
 * Modes: transient EIO and sticky ENOSPC by default; VSM_FAULTS_ALL=1
 * adds sticky EIO and transient ENOSPC. VSM_FAULTS_STRIDE=K (the
 * sanitizer run in .ci/run) tries every Kth N only, still up to the
 * first run that meets no fault: it looks for memory errors, the plain
 * run covers every N.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "testutil.h"
#include <vsm/checkpoint.h>
#include <vsm/backend.h>
#include <vsm/image.h>
#include <vsm/placement.h>

#define KiB 1024u
#define DEV_SIZE (2u << 20)
#define MAX_RUNS 5000

/* --- one run's world --- */

typedef struct {
	char *state, *dsdir, *imgdir, *bundle;
	vsm_ctx *ctx;
	vsm_container *c;
	/* Expected content of device d0: now, and at checkpoints c1, c2. */
	uint8_t *cur, *at1, *at2;
	bool op_ok; /* the operation under test returned 0 */
} world;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char *cmd = NULL, *full = NULL;
	va_list ap;
	int st;

	va_start(ap, fmt);
	ck_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	ck_assert(asprintf(&full, getenv("VSM_FAULTS_DEBUG") ? "( %s ) 1>&2" :
			   "( %s ) >/dev/null 2>&1", cmd) > 0);
	st = system(full);
	free(cmd);
	free(full);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static uint8_t pat(unsigned int seed, uint64_t off)
{
	return (uint8_t)(seed * 37u + (unsigned)(off >> 9) * 11u + (unsigned)off * 3u + 1u);
}

/* Regions stage @seed writes: a whole 64 KiB cluster, a partial one,
 * one across a cluster boundary. */
static void regions(unsigned int seed, uint64_t off[3], uint32_t len[3])
{
	off[0] = (uint64_t)(seed % 5) * 128 * KiB;
	len[0] = 64 * KiB;
	off[1] = 1024 * KiB + (uint64_t)seed * 4 * KiB + 512;
	len[1] = 3000;
	off[2] = 1536 * KiB - 8 * KiB + (uint64_t)seed * 64 * KiB;
	len[2] = 24 * KiB;
}

static void model_write(uint8_t *m, unsigned int seed)
{
	uint64_t off[3];
	uint32_t len[3];
	size_t r, i;

	regions(seed, off, len);
	for (r = 0; r < 3; r++)
		for (i = 0; i < len[r]; i++)
			m[off[r] + i] = pat(seed, off[r] + i);
}

static void img_write(vsm_image *img, unsigned int seed)
{
	uint64_t off[3];
	uint32_t len[3];
	uint8_t *buf;
	size_t r, i;

	regions(seed, off, len);
	for (r = 0; r < 3; r++) {
		buf = malloc(len[r]);
		ck_assert_ptr_nonnull(buf);
		for (i = 0; i < len[r]; i++)
			buf[i] = pat(seed, off[r] + i);
		ck_vsm(vsm_image_write(img, buf, len[r], off[r], 0));
		free(buf);
	}
}

/* Write stage @seed into container @name's d0 and the model. */
static void dev_write(world *w, const char *name, unsigned int seed)
{
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img = NULL;

	o.flags = VSM_IMAGE_OPEN_RDWR;
	ck_vsm(vsm_image_open_device(&img, w->ctx, "fds", name, "d0", &o));
	img_write(img, seed);
	ck_vsm(vsm_image_close(img));
	model_write(w->cur, seed);
}

static void same(const uint8_t *got, const uint8_t *want, size_t n, const char *what,
		 const char *run)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (got[i] != want[i])
			ck_abort_msg("%s: %s: byte %zu reads 0x%02x, expected 0x%02x", run, what, i,
				     got[i], want[i]);
}

static void dev_reads(world *w, const char *name, const uint8_t *want, const char *run)
{
	vsm_image *img = NULL;
	uint8_t *buf = malloc(DEV_SIZE);
	char what[128];

	ck_assert_ptr_nonnull(buf);
	ck_vsm(vsm_image_open_device(&img, w->ctx, "fds", name, "d0", NULL));
	ck_vsm(vsm_image_read(img, buf, DEV_SIZE, 0));
	ck_vsm(vsm_image_close(img));
	snprintf(what, sizeof(what), "container '%s' d0", name);
	same(buf, want, DEV_SIZE, what, run);
	free(buf);
}

static void file_reads(const char *path, const uint8_t *want, const char *run)
{
	vsm_image *img = NULL;
	uint8_t *buf = malloc(DEV_SIZE);

	ck_assert_ptr_nonnull(buf);
	ck_vsm(vsm_image_open(&img, path, NULL));
	ck_vsm(vsm_image_read(img, buf, DEV_SIZE, 0));
	ck_vsm(vsm_image_close(img));
	same(buf, want, DEV_SIZE, path, run);
	free(buf);
}

/* qemu-img check: rc 0 (clean) or, unless @no_leaks, 3 (leaks only) on
 * every qcow2 of @dir (one shell for all of them: qemu-img is most of a
 * run's time). */
static void clean_in(const char *dir, const char *run, bool no_leaks)
{
	int rc = sh("cd '%s' && for f in *.qcow2; do [ -e \"$f\" ] || continue; "
		    "qemu-img check -f qcow2 \"$f\" >/dev/null 2>&1; r=$?; "
		    "[ $r = 0 ] || { [ $r = 3 ] && [ %d = 0 ]; } || "
		    "{ echo \"$f: qemu-img check says $r\" >&2; exit 1; }; done", dir, no_leaks);

	if (rc != 0)
		sh("cd '%s' && for f in *.qcow2; do qemu-img check \"$f\" 1>&2; done", dir);
	ck_assert_msg(rc == 0, "%s: a qcow2 file of '%s' is %s (qemu-img check)", run, dir,
		      no_leaks ? "corrupt or leaks clusters" : "corrupt");
}

static void all_clean(const char *dir, const char *run)
{
	clean_in(dir, run, false);
}

static size_t n_ckpts(world *w)
{
	vsm_checkpoint **list = NULL;
	size_t n = 0;

	ck_vsm(vsm_checkpoint_list(&list, &n, w->c));
	vsm_checkpoint_list_free(list, n);
	return n;
}

static bool has_ckpt(world *w, const char *name)
{
	vsm_checkpoint *cp = NULL;
	int rc;

	ck_vsm(vsm_container_refresh(w->c));
	rc = vsm_checkpoint_lookup(&cp, w->c, name);
	vsm_checkpoint_free(cp);
	ck_assert_msg(rc == 0 || rc == -VSM_ENOTFOUND, "lookup '%s': %s", name, tu_msg());
	return rc == 0;
}

static bool has_container(world *w, const char *name)
{
	vsm_container *x = NULL;
	int rc = vsm_container_lookup(&x, w->ctx, "fds", name);

	vsm_container_free(x);
	ck_assert_msg(rc == 0 || rc == -VSM_ENOTFOUND, "lookup '%s': %s", name, tu_msg());
	return rc == 0;
}

static void world_new(world *w)
{
	char *uri;

	memset(w, 0, sizeof(*w));
	w->state = tu_dir("state");
	w->dsdir = tu_dir("ds");
	w->imgdir = tu_dir("img");
	w->bundle = path_in(w->imgdir, "vm.bundle");
	uri = tu_uri(w->dsdir);
	w->ctx = tu_ctx(w->state);
	ck_vsm(vsm_datastore_add(w->ctx, "fds", uri, 0));
	free(uri);
	w->cur = calloc(1, DEV_SIZE);
	w->at1 = calloc(1, DEV_SIZE);
	w->at2 = calloc(1, DEV_SIZE);
	ck_assert(w->cur && w->at1 && w->at2);
}

static void world_free(world *w)
{
	vsm_container_free(w->c);
	vsm_ctx_free(w->ctx);
	tu_rmrf(w->state);
	tu_rmrf(w->dsdir);
	tu_rmrf(w->imgdir);
	free(w->state);
	free(w->dsdir);
	free(w->imgdir);
	free(w->bundle);
	free(w->cur);
	free(w->at1);
	free(w->at2);
}

/* A thin container "vm" with one qcow2 device d0 holding stage 1. */
static void make_vm(world *w)
{
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *ptrs[1] = { &d };
	vsm_container_opts o = VSM_CONTAINER_OPTS_INIT;

	d.name = "d0";
	d.size = DEV_SIZE;
	d.format = VSM_FORMAT_QCOW2;
	o.devices = ptrs;
	o.n_devices = 1;
	o.flags = VSM_CONTAINER_CREATE_THIN;
	ck_vsm(vsm_container_create(&w->c, w->ctx, "fds", "vm", &o));
	dev_write(w, "vm", 1);
}

static void ckpt(world *w, const char *name, uint8_t *save)
{
	ck_vsm(vsm_checkpoint_create(NULL, w->c, name, NULL));
	memcpy(save, w->cur, DEV_SIZE);
}

/* --- the operations --- */

typedef struct {
	const char *name;
	const char *match;                  /* NULL: the datastore "fds" */
	void (*prep)(world *w);
	int (*run)(world *w);
	void (*verify)(world *w, const char *run);
	/* The later calls of verify must finish what a failure left on their
	 * own; the journal is asked only afterwards. */
	bool heal_in_place;
} op_def;

/* vsm_image_commit: top.qcow2 (stage 2) over base.qcow2 (stage 1). */
static void commit_prep(world *w)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	char *b = path_in(w->imgdir, "base.qcow2"), *t = path_in(w->imgdir, "top.qcow2");
	vsm_image *img = NULL;

	co.size = DEV_SIZE;
	ck_vsm(vsm_image_create(b, &co, 0));
	co.backing = "base.qcow2";
	co.backing_format = "qcow2";
	ck_vsm(vsm_image_create(t, &co, 0));
	ck_vsm(vsm_image_open(&img, b, NULL));
	img_write(img, 1);
	ck_vsm(vsm_image_close(img));
	model_write(w->cur, 1);
	memcpy(w->at1, w->cur, DEV_SIZE);
	ck_vsm(vsm_image_open(&img, t, NULL));
	img_write(img, 2);
	ck_vsm(vsm_image_close(img));
	model_write(w->cur, 2);
	free(b);
	free(t);
}

static int commit_once(world *w)
{
	char *t = path_in(w->imgdir, "top.qcow2");
	vsm_image *img = NULL;
	int rc = vsm_image_open(&img, t, NULL), r2;

	free(t);
	if (rc < 0)
		return rc;
	rc = vsm_image_commit(img, 0);
	if (rc < 0) {
		/* The close clears the error, as every public call does. */
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", tu_msg());
		vsm_image_close(img);
		return vsm_error_set(rc, "%s", msg);
	}
	r2 = vsm_image_close(img);
	return r2;
}

static void commit_verify(world *w, const char *run)
{
	char *b = path_in(w->imgdir, "base.qcow2"), *t = path_in(w->imgdir, "top.qcow2");

	all_clean(w->imgdir, run);
	/* The overlay's view never changes; the base has it once a commit
	 * succeeded. */
	file_reads(t, w->cur, run);
	if (w->op_ok)
		file_reads(b, w->cur, run);
	ck_vsm(commit_once(w));
	all_clean(w->imgdir, run);
	file_reads(b, w->cur, run);
	file_reads(t, w->cur, run);
	free(b);
	free(t);
}

/* vsm_image_convert: src.qcow2 (stage 1 over nothing) to dst.qcow2. */
static void convert_prep(world *w)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	char *s = path_in(w->imgdir, "src.qcow2");
	vsm_image *img = NULL;

	co.size = DEV_SIZE;
	ck_vsm(vsm_image_create(s, &co, 0));
	ck_vsm(vsm_image_open(&img, s, NULL));
	img_write(img, 1);
	img_write(img, 2);
	ck_vsm(vsm_image_close(img));
	model_write(w->cur, 1);
	model_write(w->cur, 2);
	free(s);
}

static int convert_once(world *w)
{
	char *s = path_in(w->imgdir, "src.qcow2"), *d = path_in(w->imgdir, "dst.qcow2");
	vsm_image_convert_opts o = VSM_IMAGE_CONVERT_OPTS_INIT;
	int rc;

	o.cluster_size = 4096;
	rc = vsm_image_convert(s, d, &o);
	free(s);
	free(d);
	return rc;
}

static void convert_verify(world *w, const char *run)
{
	char *s = path_in(w->imgdir, "src.qcow2"), *d = path_in(w->imgdir, "dst.qcow2");

	all_clean(w->imgdir, run);
	file_reads(s, w->cur, run);
	if (w->op_ok)
		file_reads(d, w->cur, run);
	else /* a failed convert leaves no target behind */
		ck_assert_msg(!tu_exists(d), "%s: a failed convert left '%s'", run, d);
	if (w->op_ok)
		unlink(d);
	ck_vsm(convert_once(w));
	all_clean(w->imgdir, run);
	file_reads(d, w->cur, run);
	free(s);
	free(d);
}

/* vsm_checkpoint_create: "vm" holds stage 1; create c1. */
static void create_prep(world *w)
{
	make_vm(w);
}

static int create_once(world *w)
{
	return vsm_checkpoint_create(NULL, w->c, "c1", NULL);
}

static void create_verify(world *w, const char *run)
{
	bool there = has_ckpt(w, "c1");

	/* A failed call changed nothing; a successful one made c1. */
	ck_assert_msg(!w->op_ok || there, "%s: create succeeded, c1 is missing", run);
	ck_assert_msg(w->op_ok || !there, "%s: create failed, yet c1 is there", run);
	all_clean(w->dsdir, run);
	dev_reads(w, "vm", w->cur, run);
	if (!there)
		ck_vsm(create_once(w));
	memcpy(w->at1, w->cur, DEV_SIZE);
	dev_write(w, "vm", 2);
	ck_vsm(vsm_checkpoint_revert(w->c, "c1", NULL));
	all_clean(w->dsdir, run);
	dev_reads(w, "vm", w->at1, run);
}

/* vsm_checkpoint_delete: stage 1, c1, stage 2, c2, stage 3; delete c1
 * (its layer merges with c2's). */
static void delete_prep(world *w)
{
	make_vm(w);
	ckpt(w, "c1", w->at1);
	dev_write(w, "vm", 2);
	ckpt(w, "c2", w->at2);
	dev_write(w, "vm", 3);
}

/* The same, with c2's layer holding more than c1's: the merge streams
 * c1's layer into c2's (stream_one, then a rebase) instead of a commit. */
static void delete_stream_prep(world *w)
{
	make_vm(w);
	ckpt(w, "c1", w->at1);
	dev_write(w, "vm", 2);
	dev_write(w, "vm", 6);
	dev_write(w, "vm", 7);
	ckpt(w, "c2", w->at2);
	dev_write(w, "vm", 3);
}

static int delete_once(world *w)
{
	return vsm_checkpoint_delete(w->c, "c1", 0);
}

static void delete_verify(world *w, const char *run)
{
	bool there = has_ckpt(w, "c1");

	ck_assert_msg(!w->op_ok || !there, "%s: delete succeeded, c1 is still there", run);
	if (w->op_ok) {
		/* Committed: the merge it owes is the journal's to finish, not
		 * left to whichever call compacts next. */
		ck_assert_msg(vsm_ctx_recover(w->ctx, NULL, 0) == 0, "%s: recovery: %s", run,
			      tu_msg());
		ck_assert_msg(sh("test $(ls '%s' | grep -c qcow2) -eq 2", w->dsdir) == 0,
			      "%s: the delete succeeded, its merge is not done after recovery",
			      run);
	}
	all_clean(w->dsdir, run);
	dev_reads(w, "vm", w->cur, run);
	/* Later deletes on this container work. */
	if (there)
		ck_vsm(delete_once(w));
	ck_assert_uint_eq(n_ckpts(w), 1);
	dev_reads(w, "vm", w->cur, run);
	ck_vsm(vsm_checkpoint_revert(w->c, "c2", NULL));
	dev_reads(w, "vm", w->at2, run);
	ck_vsm(vsm_checkpoint_delete(w->c, "c2", 0));
	ck_assert_uint_eq(n_ckpts(w), 0);
	/* A merge the fault cut short was run again by a later delete,
	 * which first gave back the clusters the first try leaked. */
	clean_in(w->dsdir, run, true);
	dev_reads(w, "vm", w->at2, run);
	/* Only the top and the state area are left: every merge finished. */
	if (getenv("VSM_FAULTS_DEBUG"))
		ck_assert(system("true") == 0 && sh("ls -l %s 1>&2; for f in %s/*.qcow2; do qemu-img info "
				   "--backing-chain $f 1>&2; done", w->dsdir, w->dsdir) == 0);
	ck_assert_msg(sh("test $(ls '%s' | grep -c qcow2) -eq 1", w->dsdir) == 0,
		      "%s: a layer file is left over (unmerged or orphaned) after every "
		      "checkpoint is deleted", run);
}

/* vsm_checkpoint_revert: stage 1, c1, stage 2; revert to c1. */
static void revert_prep(world *w)
{
	make_vm(w);
	ckpt(w, "c1", w->at1);
	dev_write(w, "vm", 2);
}

static int revert_once(world *w)
{
	return vsm_checkpoint_revert(w->c, "c1", NULL);
}

static void revert_verify(world *w, const char *run)
{
	all_clean(w->dsdir, run);
	/* A failed revert changed nothing; a successful one shows c1. */
	ck_vsm(vsm_container_refresh(w->c));
	dev_reads(w, "vm", w->op_ok ? w->at1 : w->cur, run);
	ck_vsm(revert_once(w));
	all_clean(w->dsdir, run);
	dev_reads(w, "vm", w->at1, run);
	ck_assert_uint_eq(n_ckpts(w), 1);
}

/* vsm_checkpoint_clone: stage 1, c1, stage 2; clone c1 as "k". */
static void clone_prep(world *w)
{
	revert_prep(w);
}

static int clone_once(world *w)
{
	vsm_container *k = NULL;
	int rc = vsm_checkpoint_clone(&k, w->c, "c1", "k", 0);

	vsm_container_free(k);
	return rc;
}

static void clone_verify(world *w, const char *run)
{
	bool there = has_container(w, "k");

	ck_assert_msg(!w->op_ok || there, "%s: clone succeeded, 'k' is missing", run);
	ck_assert_msg(w->op_ok || !there, "%s: clone failed, yet 'k' is there", run);
	all_clean(w->dsdir, run);
	dev_reads(w, "vm", w->cur, run);
	if (!there)
		ck_vsm(clone_once(w));
	all_clean(w->dsdir, run);
	dev_reads(w, "k", w->at1, run);
	dev_reads(w, "vm", w->cur, run);
}

/* Placement (issue 13): vsm_container_create with
 * VSM_CONTAINER_CREATE_PLACE, a thick container: phase 1 measures the
 * datastore, writes the reservation record, creates the devices and
 * turns the reservation into the record. A failure leaves neither the
 * container nor a reservation (the name is free again and the space is
 * not held), and the create works again. */
static void place_prep(world *w)
{
	make_vm(w);
}

static int place_once(world *w)
{
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *ptrs[1] = { &d };
	vsm_container_opts o = VSM_CONTAINER_OPTS_INIT;
	vsm_container *k = NULL;
	int rc;

	d.name = "d0";
	d.size = DEV_SIZE;
	d.format = VSM_FORMAT_QCOW2;
	o.devices = ptrs;
	o.n_devices = 1;
	o.state_size = 64 * KiB;
	o.flags = VSM_CONTAINER_CREATE_PLACE;
	rc = vsm_container_create(&k, w->ctx, NULL, "placed", &o);
	ck_assert_msg(rc < 0 || !strcmp(vsm_container_datastore(k), "fds"),
		      "placed on '%s'", k ? vsm_container_datastore(k) : "?");
	vsm_container_free(k);
	return rc;
}

static void place_verify(world *w, const char *run)
{
	vsm_place_request req = VSM_PLACE_REQUEST_INIT;
	vsm_reservation *r = NULL;
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *ptrs[1] = { &d };
	bool there = has_container(w, "placed");
	uint8_t *zero = calloc(1, DEV_SIZE);

	ck_assert_ptr_nonnull(zero);
	ck_assert_msg(!w->op_ok || there, "%s: placed create succeeded, 'placed' is missing",
		      run);
	ck_assert_msg(w->op_ok || !there, "%s: placed create failed, yet 'placed' is there",
		      run);
	all_clean(w->dsdir, run);
	dev_reads(w, "vm", w->cur, run);
	if (!there) {
		/* No reservation holds the name: reserving it again works. */
		d.name = "d0";
		d.size = DEV_SIZE;
		req.devices = ptrs;
		req.n_devices = 1;
		ck_vsm(vsm_place_reserve(&r, w->ctx, "placed", &req));
		ck_vsm(vsm_reservation_abort(r));
		vsm_reservation_free(r);
		ck_vsm(place_once(w));
	}
	dev_reads(w, "placed", zero, run);
	all_clean(w->dsdir, run);
	free(zero);
}

/* vsm_bundle_export of c1, then vsm_bundle_import as "copy": two
 * campaigns, one per call. */
static void export_prep(world *w)
{
	revert_prep(w);
}

static int export_once(world *w)
{
	return vsm_bundle_export(w->c, "c1", w->bundle, NULL);
}

static int import_once(world *w)
{
	vsm_container *x = NULL;
	int rc = vsm_bundle_import(&x, w->ctx, w->bundle, "fds", "copy", NULL);

	vsm_container_free(x);
	return rc;
}

static void export_verify(world *w, const char *run)
{
	all_clean(w->dsdir, run);
	dev_reads(w, "vm", w->cur, run);
	if (!w->op_ok) {
		ck_assert_msg(!tu_exists(w->bundle), "%s: a failed export left '%s'", run,
			      w->bundle);
		ck_vsm(export_once(w));
	}
	ck_vsm(import_once(w));
	all_clean(w->dsdir, run);
	dev_reads(w, "copy", w->at1, run);
}

static void import_prep(world *w)
{
	revert_prep(w);
	ck_vsm(export_once(w));
}

static void import_verify(world *w, const char *run)
{
	bool there = has_container(w, "copy");

	ck_assert_msg(!w->op_ok || there, "%s: import succeeded, 'copy' is missing", run);
	ck_assert_msg(w->op_ok || !there, "%s: import failed, yet 'copy' is there", run);
	all_clean(w->dsdir, run);
	dev_reads(w, "vm", w->cur, run);
	if (!there)
		ck_vsm(import_once(w));
	all_clean(w->dsdir, run);
	dev_reads(w, "copy", w->at1, run);
}

static const op_def ops[] = {
	{ "commit", "/img.", commit_prep, commit_once, commit_verify, false },
	{ "convert", "/img.", convert_prep, convert_once, convert_verify, false },
	{ "checkpoint-create", NULL, create_prep, create_once, create_verify, false },
	{ "checkpoint-delete", NULL, delete_prep, delete_once, delete_verify, true },
	{ "checkpoint-delete-stream", NULL, delete_stream_prep, delete_once, delete_verify,
	  true },
	{ "checkpoint-revert", NULL, revert_prep, revert_once, revert_verify, false },
	{ "checkpoint-clone", NULL, clone_prep, clone_once, clone_verify, false },
	{ "bundle-export", NULL, export_prep, export_once, export_verify, false },
	{ "bundle-import", NULL, import_prep, import_once, import_verify, false },
	{ "placed-create", NULL, place_prep, place_once, place_verify, false },
};

/* --- the campaign --- */

/* One run under @rule; returns how many faults it met. */
static uint64_t one_run(const op_def *op, const char *rule, const char *run)
{
	world w;
	uint64_t hit;
	int rc, rec;

	world_new(&w);
	op->prep(&w);
	ck_assert_int_eq(vsm__fault_set(rule, getenv("VSM_FAULTS_MATCH") ? getenv("VSM_FAULTS_MATCH") :
					 op->match ? op->match : "datastore 'fds'"), 0);
	rc = op->run(&w);
	hit = vsm__fault_failed();
	vsm__fault_set(NULL, NULL);
	if (rc < 0) {
		ck_assert_msg(hit > 0, "%s: failed with no fault met: %s", run, tu_msg());
		ck_assert_msg(vsm_error_last() && vsm_error_last()->message &&
			      vsm_error_last()->message[0], "%s: failed (%d) with no message",
			      run, rc);
	}
	w.op_ok = rc == 0;
	/* The journal finishes or rolls back what the failure left. */
	if (!op->heal_in_place) {
		rec = vsm_ctx_recover(w.ctx, NULL, 0);
		ck_assert_msg(rec == 0, "%s: recovery left %d workflow(s) unfinished (%s; the "
			      "operation said %d)", run, rec, tu_msg(), rc);
	}
	op->verify(&w, run);
	/* Nothing is left for the journal to do. */
	rec = vsm_ctx_recover(w.ctx, NULL, 0);
	ck_assert_msg(rec == 0, "%s: recovery left %d workflow(s) unfinished (%s)", run, rec,
		      tu_msg());
	world_free(&w);
	return hit;
}

static void campaign(const op_def *op, const char *mode, const char *err)
{
	char rule[64], run[160];
	struct timespec t0, t1;
	uint64_t n;

	clock_gettime(CLOCK_MONOTONIC, &t0);

	/* VSM_FAULTS_FROM=N: start there (to look at one run). */
	uint64_t faulted = 0;
	uint64_t stride = getenv("VSM_FAULTS_STRIDE") ?
			  strtoull(getenv("VSM_FAULTS_STRIDE"), NULL, 10) : 1;

	if (stride == 0)
		stride = 1;
	for (n = getenv("VSM_FAULTS_FROM") ? strtoull(getenv("VSM_FAULTS_FROM"), NULL, 10) : 1;
	     n < MAX_RUNS; n += stride) {
		snprintf(rule, sizeof(rule), "any:%llu:%s:%s", (unsigned long long)n, mode, err);
		snprintf(run, sizeof(run), "%s, rule %s", op->name, rule);
		if (one_run(op, rule, run) == 0)
			break;
		faulted++;
	}
	ck_assert_msg(n > 1, "%s: the operation met no I/O at all", op->name);
	ck_assert_msg(n < MAX_RUNS, "%s: faults went on past %d runs", op->name, MAX_RUNS);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "faults: %s %s %s: %llu runs with a fault (%.1f s)\n", op->name, mode,
		err, (unsigned long long)faulted,
		(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static const char *const modes[][2] = {
	{ "transient", "eio" },
	{ "sticky", "enospc" },
	{ "sticky", "eio" },
	{ "transient", "enospc" },
};

/* Test i: operation i / 4, mode i % 4 (the first two modes unless
 * VSM_FAULTS_ALL is set). */
START_TEST(op_campaign)
{
	const op_def *op = &ops[_i / 4];
	const char *only = getenv("VSM_FAULTS_ONLY");

	/* VSM_FAULTS_ONLY=NAME[,NAME...]: only those campaigns. */
	if (only) {
		char list[512], want[80];

		snprintf(list, sizeof(list), ",%s,", only);
		snprintf(want, sizeof(want), ",%s,", op->name);
		if (!strstr(list, want))
			return;
	}
	campaign(op, modes[_i % 4][0], modes[_i % 4][1]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("ops");
	size_t i;

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_set_timeout(tc, 900);
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		tcase_add_loop_test(tc, op_campaign, (int)i * 4, (int)i * 4 + 2);
		if (getenv("VSM_FAULTS_ALL"))
			tcase_add_loop_test(tc, op_campaign, (int)i * 4 + 2, (int)i * 4 + 4);
	}
	suite_add_tcase(s, tc);
	return tu_run(s);
}
