/*
 * bench_backup: incremental backup against full exports (libvsm's own and
 * `qemu-img convert`) in one run, and the changed-extent query against
 * disk size and change count. Not a test: nothing here asserts a timing.
 *
 * usage: bench_backup [--dir DIR] [--size SIZE] [--changed-pct P] [--reps N] [--quick]
 *
 * Part 1, backup (issue 14): one container on a file datastore in DIR with
 * one qcow2 device of SIZE (default 10G), every byte written with
 * incompressible data through vsm_image_open_device(); a full backup
 * (untimed, the base of the chain); then P % (default 1) of the disk is
 * changed by random 64 KiB-aligned writes of 64 KiB..1 MiB. Timed, each
 * as a user waits for it (the libvsm calls fsync their output; qemu-img's
 * output is fsynced inside the timed span):
 *   (a) vsm_backup incremental from the full backup's checkpoint
 *   (b) vsm_backup full, at the same data
 *   (c) vsm_bundle_export of the container (libvsm's other full export)
 *   (d) `qemu-img convert -O qcow2 -W -m 8` of the device's chain at (a)'s
 *       checkpoint, with default caches and with -T none -t none; the
 *       faster is the peer
 *   (e) vsm_restore of full + incremental into a new container, against
 *       `qemu-img convert` of (d)'s copy back into a file, same options
 * `sync` runs (untimed) before every timed step; the page cache is not
 * dropped (the source mostly fits in RAM on a machine with enough of it,
 * for libvsm and qemu-img alike; -T none bypasses it by design).
 *
 * Part 2, query: vsm_changes between two checkpoints with the same 1,000
 * changed 64 KiB extents (spread over the whole disk, none touching) on
 * sparse devices of 1 GiB, 16 GiB, 256 GiB and 1 TiB; then 100, 1,000 and
 * 10,000 extents at 16 GiB. Median of N calls each.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vsm/vsm.h>

#include "bench_util.h"
#include <vsm/backup.h>
#include <vsm/checkpoint.h>
#include <vsm/image.h>

#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define K64 (UINT64_C(65536))

static const char *dir = "/var/tmp";
static char root[4096];
static uint64_t disk_size = 10 * GIB;
static double changed_pct = 1.0;
static int reps = 11;
static int quick;
static uint64_t rng = 88172645463325252ull;

/* Bytes the file takes on disk (qemu-img leaves holes). */
static uint64_t file_alloc(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static void fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0) {
		fprintf(stderr, "bench_backup: fsync %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	uint64_t m = 1;

	switch (*end) {
	case 'k': case 'K': m = UINT64_C(1) << 10; break;
	case 'm': case 'M': m = MIB; break;
	case 'g': case 'G': m = GIB; break;
	case 't': case 'T': m = UINT64_C(1) << 40; break;
	default: break;
	}
	return (uint64_t)(v * (double)m) / K64 * K64;
}

static vsm_container *make(vsm_ctx *ctx, const char *name, uint64_t size)
{
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *ptrs[1] = { &d };
	vsm_container_opts o = VSM_CONTAINER_OPTS_INIT;
	vsm_container *c = NULL;

	d.name = "d0";
	d.size = size;
	d.format = VSM_FORMAT_QCOW2;
	o.devices = ptrs;
	o.n_devices = 1;
	o.flags = VSM_CONTAINER_CREATE_THIN;
	if (vsm_container_create(&c, ctx, "ds1", name, &o) < 0)
		bench_die("container create");
	return c;
}

static vsm_image *open_dev(vsm_ctx *ctx, const char *container)
{
	vsm_image_open_opts io = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img = NULL;

	io.flags = VSM_IMAGE_OPEN_RDWR;
	if (vsm_image_open_device(&img, ctx, "ds1", container, "d0", &io) < 0)
		bench_die("image open device");
	return img;
}

static void close_dev(vsm_image *img)
{
	if (vsm_image_close(img) < 0)
		bench_die("image close");
}

static void ckpt(vsm_container *c, const char *name)
{
	if (vsm_checkpoint_create(NULL, c, name, NULL) < 0)
		bench_die("checkpoint create");
}

/* ---- part 1: backup ---------------------------------------------------- */

typedef struct {
	const char *what;
	double secs;
	uint64_t bytes;  /* output file size */
	uint64_t alloc;  /* of which allocated on disk */
} result;

static void print_result(const result *r)
{
	printf("| %-58s | %9.2f s | %15" PRIu64 " | %15" PRIu64 " | %8.0f |\n", r->what, r->secs,
	       r->bytes, r->alloc, (double)r->bytes / 1e6 / r->secs);
}

/* `qemu-img convert` of @src to @dst with @opts, then fsync of @dst: the
 * whole time a user waits until the copy is durable. */
static double qemu_convert(const char *opts, const char *src, const char *dst)
{
	double t0;

	bench_run("sync");
	t0 = bench_now();
	if (bench_run("qemu-img convert %s -O qcow2 '%s' '%s'", opts, src, dst) != 0) {
		fprintf(stderr, "bench_backup: qemu-img convert %s failed\n", opts);
		exit(1);
	}
	fsync_path(dst);
	return bench_now() - t0;
}

static void bench_backup(vsm_ctx *ctx, const char *ds1, const char *outdir)
{
	static const char *qopts[] = { "-W -m 8", "-W -m 8 -T none -t none" };
	vsm_backup_opts bo = VSM_BACKUP_OPTS_INIT;
	vsm_restore_opts ro = VSM_RESTORE_OPTS_INIT;
	vsm_backup_stats st_full0 = {0}, st_inc = {0}, st_full = {0}, st_res = {0};
	vsm_bundle_stats st_bundle = {0};
	vsm_bundle_opts bdo = VSM_BUNDLE_OPTS_INIT;
	vsm_container *c, *restored = NULL;
	vsm_checkpoint *cp = NULL;
	vsm_image *img;
	char full0[4300], inc[4300], full[4300], bundle[4300], qout[2][4300], qback[4300],
	     chain[8400], label[128];
	const char *paths[2];
	uint64_t units = disk_size / K64, changed = 0, target, off, writes = 0, inc_bound;
	uint8_t *map = calloc((size_t)(units + 7) / 8, 1);
	void *buf = malloc(MIB);
	double t0, t_setup, t_full0, t_inc, t_full, t_bundle, t_q[2], t_res, t_qback;
	result rs[8];
	int best, i;

	if (!map || !buf)
		bench_die("out of memory");
	snprintf(full0, sizeof(full0), "%s/full0.vbk", outdir);
	snprintf(inc, sizeof(inc), "%s/inc1.vbk", outdir);
	snprintf(full, sizeof(full), "%s/full2.vbk", outdir);
	snprintf(bundle, sizeof(bundle), "%s/src.bundle", outdir);
	snprintf(qout[0], sizeof(qout[0]), "%s/qemu-wb.qcow2", outdir);
	snprintf(qout[1], sizeof(qout[1]), "%s/qemu-none.qcow2", outdir);
	snprintf(qback, sizeof(qback), "%s/qemu-back.qcow2", outdir);

	/* Setup: every byte of the device, incompressible, 1 MiB at a time. */
	t0 = bench_now();
	c = make(ctx, "src", disk_size);
	img = open_dev(ctx, "src");
	for (off = 0; off < disk_size; off += MIB) {
		size_t len = disk_size - off < MIB ? (size_t)(disk_size - off) : (size_t)MIB;

		bench_fill_random(&rng, buf, len);
		if (vsm_image_write(img, buf, len, off, 0) < 0)
			bench_die("image write");
	}
	close_dev(img);
	t_setup = bench_now() - t0;

	bench_run("sync");
	t0 = bench_now();
	bo.checkpoint = "full0";
	bo.stats = &st_full0;
	if (vsm_backup(c, full0, &bo) < 0)
		bench_die("full backup (base)");
	t_full0 = bench_now() - t0;

	/* Change changed_pct % of the disk: random 64 KiB-aligned writes of
	 * 64 KiB..1 MiB, until that many distinct bytes differ. */
	target = (uint64_t)((double)disk_size * changed_pct / 100.0) / K64 * K64;
	if (target < K64)
		target = K64;
	img = open_dev(ctx, "src");
	while (changed < target) {
		uint64_t n = 1 + bench_next(&rng) % 16, u = bench_next(&rng) % units, k;

		if (u + n > units)
			n = units - u;
		bench_fill_random(&rng, buf, (size_t)(n * K64));
		if (vsm_image_write(img, buf, (size_t)(n * K64), u * K64, 0) < 0)
			bench_die("image write (change)");
		writes++;
		for (k = u; k < u + n; k++)
			if (!(map[k / 8] & (1u << (k % 8)))) {
				map[k / 8] |= (uint8_t)(1u << (k % 8));
				changed += K64;
			}
	}
	close_dev(img);

	/* (a) incremental */
	bench_run("sync");
	bo = (vsm_backup_opts)VSM_BACKUP_OPTS_INIT;
	bo.incremental_from = "full0";
	bo.checkpoint = "inc1";
	bo.stats = &st_inc;
	t0 = bench_now();
	if (vsm_backup(c, inc, &bo) < 0)
		bench_die("incremental backup");
	t_inc = bench_now() - t0;

	/* (b) full, same data */
	bench_run("sync");
	bo = (vsm_backup_opts)VSM_BACKUP_OPTS_INIT;
	bo.checkpoint = "full2";
	bo.stats = &st_full;
	t0 = bench_now();
	if (vsm_backup(c, full, &bo) < 0)
		bench_die("full backup");
	t_full = bench_now() - t0;
	rs[1] = (result){ "(b) vsm_backup full", t_full, bench_file_size(full), file_alloc(full) };
	unlink(full);

	/* (c) bundle export of the container */
	bench_run("sync");
	bdo.stats = &st_bundle;
	t0 = bench_now();
	if (vsm_bundle_export(c, NULL, bundle, &bdo) < 0)
		bench_die("bundle export");
	t_bundle = bench_now() - t0;
	rs[2] = (result){ "(c) vsm_bundle_export (container)", t_bundle, bench_file_size(bundle),
			  file_alloc(bundle) };
	unlink(bundle);

	/* (d) qemu-img convert of the chain at inc1 */
	if (vsm_checkpoint_lookup(&cp, c, "inc1") < 0)
		bench_die("checkpoint lookup");
	snprintf(chain, sizeof(chain), "%s/%s", ds1, vsm_checkpoint_layer_key(cp, 0));
	vsm_checkpoint_free(cp);
	for (i = 0; i < 2; i++)
		t_q[i] = qemu_convert(qopts[i], chain, qout[i]);
	best = t_q[1] < t_q[0];
	snprintf(label, sizeof(label), "(d) qemu-img convert %s + fsync", qopts[0]);
	rs[3] = (result){ strdup(label), t_q[0], bench_file_size(qout[0]), file_alloc(qout[0]) };
	snprintf(label, sizeof(label), "(d) qemu-img convert %s + fsync", qopts[1]);
	rs[4] = (result){ strdup(label), t_q[1], bench_file_size(qout[1]), file_alloc(qout[1]) };
	unlink(qout[!best]);
	rs[0] = (result){ "(a) vsm_backup incremental", t_inc, bench_file_size(inc), file_alloc(inc) };

	/* (e) restore full + incremental vs qemu-img convert back */
	paths[0] = full0;
	paths[1] = inc;
	ro.name = "restored";
	ro.stats = &st_res;
	bench_run("sync");
	t0 = bench_now();
	if (vsm_restore(&restored, ctx, paths, 2, "ds2", &ro) < 0)
		bench_die("restore");
	t_res = bench_now() - t0;
	if (vsm_container_destroy(restored, 0) < 0)
		bench_die("destroy restored");
	vsm_container_free(restored);
	t_qback = qemu_convert(qopts[best], qout[best], qback);
	rs[5] = (result){ "(e) vsm_restore full + incremental", t_res, st_res.file_bytes,
			  st_res.data_bytes };
	snprintf(label, sizeof(label), "(e) qemu-img convert back %s + fsync", qopts[best]);
	rs[6] = (result){ strdup(label), t_qback, bench_file_size(qback), file_alloc(qback) };
	unlink(qback);
	unlink(qout[best]);

	inc_bound = changed + K64;
	printf("\n== backup: %s, device %" PRIu64 " MiB qcow2, %.2f %% changed ==\n", dir,
	       disk_size / MIB, changed_pct);
	printf("setup (not a result): fill %" PRIu64 " MiB in %.1f s; base full backup %.1f s "
	       "(%" PRIu64 " bytes); change: %" PRIu64 " writes, %" PRIu64 " distinct bytes\n",
	       disk_size / MIB, t_setup, t_full0, bench_file_size(full0), writes, changed);
	printf("\n| %-58s | %11s | %15s | %15s | %8s |\n", "operation", "time", "file bytes",
	       "allocated", "MB/s");
	printf("|------------------------------------------------------------|-------------|"
	       "-----------------|-----------------|----------|\n");
	for (i = 0; i < 7; i++)
		print_result(&rs[i]);
	printf("(e) vsm_restore row: file bytes = backup files read, allocated = guest bytes "
	       "written\n");
	printf("MB/s = file bytes / time (10^6 bytes)\n\n");
	printf("incremental carries %" PRIu64 " data bytes in %" PRIu64 " extents; changed "
	       "%" PRIu64 " bytes; file %" PRIu64 " bytes = changed + %" PRId64 " bytes; bound "
	       "changed + 64 KiB = %" PRIu64 ": %s\n", st_inc.data_bytes, st_inc.extents,
	       changed, rs[0].bytes, (int64_t)rs[0].bytes - (int64_t)changed, inc_bound,
	       rs[0].bytes <= inc_bound ? "within" : "EXCEEDED");
	printf("ratios (> 1: incremental is faster / smaller):\n");
	printf("  time  full backup / incremental          %8.1f\n", t_full / t_inc);
	printf("  time  bundle export / incremental        %8.1f\n", t_bundle / t_inc);
	printf("  time  best qemu-img convert / incremental %7.1f  (best: %s)\n",
	       t_q[best] / t_inc, qopts[best]);
	printf("  time  best qemu-img convert / full backup %7.2f\n", t_q[best] / t_full);
	printf("  size  full backup / incremental          %8.1f\n",
	       (double)rs[1].bytes / (double)rs[0].bytes);
	printf("  size  qemu-img copy / incremental        %8.1f\n",
	       (double)rs[3 + best].bytes / (double)rs[0].bytes);
	printf("  time  qemu-img convert back / vsm_restore %7.2f  (> 1: vsm_restore is "
	       "faster)\n", t_qback / t_res);

	unlink(full0);
	unlink(inc);
	if (vsm_container_destroy(c, 0) < 0)
		bench_die("destroy");
	vsm_container_free(c);
	free(map);
	free(buf);
}

/* ---- part 2: query ----------------------------------------------------- */

/* A container of @size with @n changed 64 KiB extents between
 * checkpoints c0 and c1, spread over the disk, none touching another:
 * the disk is cut into @n slots and each gets one cluster, never the
 * slot's last, at a random place. */
static double query_case(vsm_ctx *ctx, uint64_t size, unsigned int n, size_t *got)
{
	static int seq;
	uint64_t slot = size / K64 / n, i;
	double t[64];
	char name[64];
	vsm_container *c;
	vsm_image *img;
	void *buf = malloc(K64);
	int r;

	if (slot < 2) {
		fprintf(stderr, "bench_backup: %u extents do not fit in %" PRIu64 " bytes\n", n,
			size);
		exit(1);
	}
	snprintf(name, sizeof(name), "q%d", seq++);
	c = make(ctx, name, size);
	ckpt(c, "c0");
	img = open_dev(ctx, name);
	for (i = 0; i < n; i++) {
		bench_fill_random(&rng, buf, K64);
		if (vsm_image_write(img, buf, K64, (i * slot + bench_next(&rng) % (slot - 1)) * K64, 0) < 0)
			bench_die("image write (query)");
	}
	close_dev(img);
	ckpt(c, "c1");
	/* One untimed call first: the median is of warm calls. */
	for (r = -1; r < reps; r++) {
		vsm_change_extent *ext = NULL;
		double t0 = bench_now();

		if (vsm_changes(&ext, got, c, "d0", "c0", "c1") < 0)
			bench_die("vsm_changes");
		if (r >= 0)
			t[r] = bench_now() - t0;
		vsm_change_extents_free(ext);
	}
	if (vsm_container_destroy(c, 0) < 0)
		bench_die("destroy");
	vsm_container_free(c);
	free(buf);
	return bench_median(t, reps);
}

static void bench_query(vsm_ctx *ctx)
{
	static const uint64_t sizes[] = { GIB, 16 * GIB, 256 * GIB, 1024 * GIB };
	static const unsigned int counts[] = { 100, 1000, 10000 };
	double ts[4], tc[3];
	size_t gs[4], gc[3];
	int i;

	for (i = 0; i < 4; i++)
		ts[i] = query_case(ctx, sizes[i], 1000, &gs[i]);
	for (i = 0; i < 3; i++) {
		if (counts[i] == 1000) {
			tc[i] = ts[1];
			gc[i] = gs[1];
		} else {
			tc[i] = query_case(ctx, 16 * GIB, counts[i], &gc[i]);
		}
	}
	printf("\n== vsm_changes (c0 -> c1), median of %d ==\n\n", reps);
	printf("| %10s | %8s | %8s | %10s | %10s |\n", "disk", "written", "answered", "time",
	       "ratio");
	printf("|------------|----------|----------|------------|------------|\n");
	for (i = 0; i < 4; i++)
		printf("| %6" PRIu64 " GiB | %8u | %8zu | %7.3f ms | %10.2f |\n", sizes[i] / GIB,
		       1000u, gs[i], ts[i] * 1e3, ts[i] / ts[0]);
	printf("\n");
	printf("| %10s | %8s | %8s | %10s | %10s |\n", "disk", "written", "answered", "time",
	       "ratio");
	printf("|------------|----------|----------|------------|------------|\n");
	for (i = 0; i < 3; i++)
		printf("| %6u GiB | %8u | %8zu | %7.3f ms | %10.2f |\n", 16u, counts[i], gc[i],
		       tc[i] * 1e3, tc[i] / tc[0]);
	printf("ratio = time / time of the first row (flat in disk size; linear in extents "
	       "would be 10 and 100)\n");
}

int main(int argc, char **argv)
{
	vsm_ctx_opts co = VSM_CTX_OPTS_INIT;
	vsm_ctx *ctx = NULL;
	char state[4200], ds1[4200], ds2[4200], outdir[4200], uri[4300];
	int a, size_given = 0, reps_given = 0;
	double t0 = bench_now();

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--dir") && a + 1 < argc) {
			dir = argv[++a];
		} else if (!strcmp(argv[a], "--size") && a + 1 < argc) {
			disk_size = parse_size(argv[++a]);
			size_given = 1;
		} else if (!strcmp(argv[a], "--changed-pct") && a + 1 < argc) {
			changed_pct = atof(argv[++a]);
		} else if (!strcmp(argv[a], "--reps") && a + 1 < argc) {
			reps = atoi(argv[++a]);
			reps_given = 1;
		} else if (!strcmp(argv[a], "--quick")) {
			quick = 1;
		} else {
			fprintf(stderr, "usage: bench_backup [--dir DIR] [--size SIZE] "
				"[--changed-pct P] [--reps N] [--quick]\n");
			return 2;
		}
	}
	if (quick && !size_given)
		disk_size = 256 * MIB;
	if (quick && !reps_given)
		reps = 3;
	if (reps < 1 || reps > 64)
		reps = 11;
	if (disk_size < 16 * MIB || changed_pct <= 0 || changed_pct > 100) {
		fprintf(stderr, "bench_backup: --size at least 16M, --changed-pct in (0, 100]\n");
		return 2;
	}
	snprintf(root, sizeof(root), "%s/bench-backup.XXXXXX", dir);
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(state, sizeof(state), "%s/state", root);
	snprintf(ds1, sizeof(ds1), "%s/ds1", root);
	snprintf(ds2, sizeof(ds2), "%s/ds2", root);
	snprintf(outdir, sizeof(outdir), "%s/out", root);
	mkdir(ds1, 0755);
	mkdir(ds2, 0755);
	mkdir(outdir, 0755);
	co.state_dir = state;
	if (vsm_ctx_open(&ctx, &co) < 0)
		bench_die("ctx open");
	snprintf(uri, sizeof(uri), "file://%s", ds1);
	if (vsm_datastore_add(ctx, "ds1", uri, 0) < 0)
		bench_die("datastore add");
	snprintf(uri, sizeof(uri), "file://%s", ds2);
	if (vsm_datastore_add(ctx, "ds2", uri, 0) < 0)
		bench_die("datastore add");

	printf("bench_backup: %s\n", root);
	bench_backup(ctx, ds1, outdir);
	bench_query(ctx);
	printf("\ntotal run time %.0f s\n", bench_now() - t0);

	vsm_ctx_free(ctx);
	bench_run("rm -rf '%s'", root);
	return 0;
}
