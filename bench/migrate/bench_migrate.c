/*
 * bench_migrate: offline container migration and chain copy against
 * `qemu-img convert` of the same chain, in one run. Not a test: nothing
 * here asserts a timing.
 *
 * usage: bench_migrate [--dir DIR] [--size SIZE] [--quick]
 *
 * Part 1, migration (issue 15): one container on a file datastore in DIR
 * with one qcow2 device of SIZE (default 2G), every byte written with
 * incompressible data through vsm_image_open_device(); one checkpoint;
 * then 10 % of the disk written again (every tenth MiB). Timed, each as
 * a user waits for it (`sync` untimed before each step):
 *   (a) `qemu-img convert -O qcow2 -W -m 8` of the device's top with its
 *       backing chain, + fsync of the output, with default caches and
 *       with -T none -t none; the faster is the peer
 *   (b) vsm_container_migrate to a second file datastore in DIR, + fsync
 *       of every file of the target datastore
 *
 * Part 2, chain copy: a chain base <- l1 <- l2 <- top of qcow2 files of
 * SIZE, layer i holding its own incompressible data in quarter i of the
 * disk, each frozen (vsm_image_freeze). Timed:
 *   (c) vsm_image_copy of the top to a new directory, no reuse
 *   (d) vsm_image_copy of the top into a directory that already holds
 *       base and l1 (copied there untimed), reuse_dir = that directory
 *   (e) `qemu-img convert` of the chain (flattened), same two modes as (a)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vsm/vsm.h>

#include "bench_util.h"
#include <vsm/checkpoint.h>
#include <vsm/image.h>
#include <vsm/migrate.h>

#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define K64 (UINT64_C(65536))

static const char *dir = "/var/tmp";
static char root[PATH_MAX];
static uint64_t disk_size = 2 * GIB;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static const char *qopts[] = { "-W -m 8", "-W -m 8 -T none -t none" };

static void fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0) {
		fprintf(stderr, "bench_migrate: fsync %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
}

/* fsync every regular file in @path and the directory itself; returns
 * the sum of their sizes. */
static uint64_t fsync_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char p[2 * PATH_MAX];
	uint64_t sum = 0;
	struct stat st;

	if (!d) {
		fprintf(stderr, "bench_migrate: opendir %s: %s\n", path, strerror(errno));
		exit(1);
	}
	while ((de = readdir(d))) {
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (de->d_name[0] == '.' || stat(p, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		fsync_path(p);
		sum += (uint64_t)st.st_size;
	}
	closedir(d);
	fsync_path(path);
	return sum;
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
	return (uint64_t)(v * (double)m) / MIB * MIB;
}

/* Write incompressible data into [off, off + len) of @img, 1 MiB at a
 * time, every @stride bytes (stride == MIB: all of it). Returns the
 * bytes written. */
static uint64_t fill(vsm_image *img, void *buf, uint64_t off, uint64_t len, uint64_t stride)
{
	uint64_t o, n = 0;

	for (o = off; o < off + len; o += stride) {
		size_t l = off + len - o < MIB ? (size_t)(off + len - o) : (size_t)MIB;

		bench_fill_random(&rng, buf, l);
		if (vsm_image_write(img, buf, l, o, 0) < 0)
			bench_die("image write");
		n += l;
	}
	return n;
}

/* `qemu-img convert` of @src to @dst with @opts, then fsync of @dst: the
 * whole time a user waits until the copy is durable. */
static double qemu_convert(const char *opts, const char *src, const char *dst)
{
	double t0;

	bench_run("sync");
	t0 = bench_now();
	if (bench_run("qemu-img convert %s -O qcow2 '%s' '%s'", opts, src, dst) != 0) {
		fprintf(stderr, "bench_migrate: qemu-img convert %s failed\n", opts);
		exit(1);
	}
	fsync_path(dst);
	return bench_now() - t0;
}

static void row(const char *what, double secs, uint64_t bytes)
{
	printf("| %-52s | %9.2f s | %13" PRIu64 " | %8.0f |\n", what, secs, bytes,
	       (double)bytes / 1e6 / secs);
}

static void header(void)
{
	printf("\n| %-52s | %11s | %13s | %8s |\n", "operation", "time", "bytes", "MB/s");
	printf("|------------------------------------------------------|-------------|"
	       "---------------|----------|\n");
}

/* Both qemu-img modes of @src into @outdir; prints their rows, returns
 * the faster time and its index in *best. */
static double qemu_peer(const char *src, const char *outdir, const char *tag, double *t,
			uint64_t *bytes, int *best)
{
	char out[2][PATH_MAX + 64];
	int i;

	for (i = 0; i < 2; i++) {
		snprintf(out[i], sizeof(out[i]), "%s/%s-q%d.qcow2", outdir, tag, i);
		t[i] = qemu_convert(qopts[i], src, out[i]);
		bytes[i] = bench_file_size(out[i]);
		unlink(out[i]);
	}
	*best = t[1] < t[0];
	return t[*best];
}

/* ---- part 1: migration -------------------------------------------------- */

static void bench_migrate(vsm_ctx *ctx, const char *ds1, const char *ds2, const char *outdir)
{
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *ptrs[1] = { &d };
	vsm_container_opts o = VSM_CONTAINER_OPTS_INIT;
	vsm_image_open_opts io = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_migrate_opts mo = VSM_MIGRATE_OPTS_INIT;
	vsm_migrate_stats ms = {0};
	vsm_container *c = NULL;
	vsm_image *img = NULL;
	char top[PATH_MAX + 256], label[160];
	void *buf = malloc(MIB);
	double t0, t_fill, t_q[2], t_peer, t_mig;
	uint64_t data, more, qbytes[2], target_bytes;
	int best;

	if (!buf)
		bench_die("out of memory");
	d.name = "d0";
	d.size = disk_size;
	d.format = VSM_FORMAT_QCOW2;
	o.devices = ptrs;
	o.n_devices = 1;
	o.flags = VSM_CONTAINER_CREATE_THIN;
	if (vsm_container_create(&c, ctx, "ds1", "src", &o) < 0)
		bench_die("container create");

	t0 = bench_now();
	io.flags = VSM_IMAGE_OPEN_RDWR;
	if (vsm_image_open_device(&img, ctx, "ds1", "src", "d0", &io) < 0)
		bench_die("image open device");
	data = fill(img, buf, 0, disk_size, MIB);
	if (vsm_image_close(img) < 0)
		bench_die("image close");
	if (vsm_checkpoint_create(NULL, c, "c1", NULL) < 0)
		bench_die("checkpoint create");
	if (vsm_image_open_device(&img, ctx, "ds1", "src", "d0", &io) < 0)
		bench_die("image open device");
	more = fill(img, buf, 0, disk_size, 10 * MIB);
	if (vsm_image_close(img) < 0)
		bench_die("image close");
	t_fill = bench_now() - t0;

	/* The device's current top (its key is a file in ds1, its backing
	 * reference the checkpoint layer's key, resolved by qemu-img in the
	 * same directory). */
	if (vsm_container_refresh(c) < 0)
		bench_die("container refresh");
	snprintf(top, sizeof(top), "%s/%s", ds1,
		 vsm_device_key(vsm_container_device_by_name(c, "d0")));

	/* (a) the peer, at the same data, before the migration */
	t_peer = qemu_peer(top, outdir, "mig", t_q, qbytes, &best);

	/* (b) migrate, then fsync what the target datastore holds */
	mo.stats = &ms;
	bench_run("sync");
	t0 = bench_now();
	if (vsm_container_migrate(c, "ds2", &mo) < 0)
		bench_die("container migrate");
	target_bytes = fsync_dir(ds2);
	t_mig = bench_now() - t0;

	printf("\n== migration: %s, device %" PRIu64 " MiB qcow2, checkpoint + %" PRIu64
	       " MiB rewritten ==\n", dir, disk_size / MIB, more / MIB);
	printf("setup (not a result): fill %" PRIu64 " MiB + checkpoint + %" PRIu64
	       " MiB in %.1f s; chain data %" PRIu64 " bytes in 2 layers\n", data / MIB,
	       more / MIB, t_fill, data + more);
	header();
	snprintf(label, sizeof(label), "(a) qemu-img convert %s + fsync", qopts[0]);
	row(label, t_q[0], qbytes[0]);
	snprintf(label, sizeof(label), "(a) qemu-img convert %s + fsync", qopts[1]);
	row(label, t_q[1], qbytes[1]);
	row("(b) vsm_container_migrate file -> file + fsync", t_mig, ms.bytes_written);
	printf("bytes: (a) output file size (flattened: 1 layer); (b) bytes_written "
	       "(guest + state bytes to the target)\n");
	printf("MB/s = bytes / time (10^6 bytes)\n");
	printf("migrate stats: layers %" PRIu64 ", reused %" PRIu64 ", written %" PRIu64
	       ", verified %" PRIu64 "; target datastore files %" PRIu64 " bytes\n", ms.layers,
	       ms.layers_reused, ms.bytes_written, ms.bytes_verified, target_bytes);
	printf("ratio peer time / migrate time (> 1: libvsm faster) %6.2f  (peer: %s)\n",
	       t_peer / t_mig, qopts[best]);
	printf("ratio peer time / migrate time per byte moved        %6.2f  "
	       "(peer bytes %" PRIu64 ", migrate bytes %" PRIu64 ")\n",
	       (t_peer / (double)qbytes[best]) / (t_mig / (double)ms.bytes_written),
	       qbytes[best], ms.bytes_written);

	if (vsm_container_destroy(c, 0) < 0)
		bench_die("destroy");
	vsm_container_free(c);
	free(buf);
}

/* ---- part 2: chain copy ------------------------------------------------- */

static const char *layer_names[4] = { "base.qcow2", "l1.qcow2", "l2.qcow2", "top.qcow2" };

static void bench_copy(const char *chaindir, const char *full_dir, const char *reuse_dir,
		       const char *outdir)
{
	vsm_image_copy_stats st_full = VSM_IMAGE_COPY_STATS_INIT;
	vsm_image_copy_stats st_reuse = VSM_IMAGE_COPY_STATS_INIT;
	vsm_image_copy_stats st_pre = VSM_IMAGE_COPY_STATS_INIT;
	vsm_image_copy_opts co = VSM_IMAGE_COPY_OPTS_INIT;
	vsm_image_open_opts io = VSM_IMAGE_OPEN_OPTS_INIT;
	char path[PATH_MAX + 64], src[PATH_MAX + 64], dst[PATH_MAX + 64], label[160];
	uint64_t quarter = disk_size / 4 / MIB * MIB, data = 0, qbytes[2];
	void *buf = malloc(MIB);
	double t0, t_fill, t_full, t_reuse, t_q[2], t_peer;
	int i, best;

	if (!buf)
		bench_die("out of memory");
	t0 = bench_now();
	io.flags = VSM_IMAGE_OPEN_RDWR;
	for (i = 0; i < 4; i++) {
		vsm_image_create_opts cr = VSM_IMAGE_CREATE_OPTS_INIT;
		vsm_image *img = NULL;

		snprintf(path, sizeof(path), "%s/%s", chaindir, layer_names[i]);
		cr.size = disk_size;
		if (i > 0) {
			cr.backing = layer_names[i - 1];
			cr.backing_format = "qcow2";
		}
		if (vsm_image_create(path, &cr, 0) < 0)
			bench_die("image create");
		if (vsm_image_open(&img, path, &io) < 0)
			bench_die("image open");
		data += fill(img, buf, (uint64_t)i * quarter, quarter, MIB);
		if (vsm_image_freeze(img, 0) < 0)
			bench_die("image freeze");
		if (vsm_image_close(img) < 0)
			bench_die("image close");
	}
	t_fill = bench_now() - t0;
	snprintf(src, sizeof(src), "%s/%s", chaindir, layer_names[3]);

	/* (c) full copy, no reuse */
	snprintf(dst, sizeof(dst), "%s/%s", full_dir, layer_names[3]);
	bench_run("sync");
	t0 = bench_now();
	if (vsm_image_copy(src, dst, NULL, &st_full) < 0)
		bench_die("image copy (full)");
	t_full = bench_now() - t0;
	bench_run("rm -f '%s'/*.qcow2", full_dir);

	/* (d) base and l1 already there (copied untimed), then the top with
	 * reuse_dir = the target directory */
	snprintf(path, sizeof(path), "%s/%s", chaindir, layer_names[1]);
	snprintf(dst, sizeof(dst), "%s/%s", reuse_dir, layer_names[1]);
	if (vsm_image_copy(path, dst, NULL, &st_pre) < 0)
		bench_die("image copy (lower layers)");
	snprintf(dst, sizeof(dst), "%s/%s", reuse_dir, layer_names[3]);
	co.reuse_dir = reuse_dir;
	bench_run("sync");
	t0 = bench_now();
	if (vsm_image_copy(src, dst, &co, &st_reuse) < 0)
		bench_die("image copy (reuse)");
	t_reuse = bench_now() - t0;
	bench_run("rm -f '%s'/*.qcow2", reuse_dir);

	/* (e) the peer: the whole chain, flattened */
	t_peer = qemu_peer(src, outdir, "chain", t_q, qbytes, &best);

	printf("\n== chain copy: %s, 4 qcow2 layers of %" PRIu64 " MiB virtual, %" PRIu64
	       " MiB of data each ==\n", dir, disk_size / MIB, quarter / MIB);
	printf("setup (not a result): 4 layers written and frozen in %.1f s (%" PRIu64
	       " data bytes); lower 2 layers pre-copied: %" PRIu64 " bytes\n", t_fill, data,
	       st_pre.bytes_copied);
	header();
	row("(c) vsm_image_copy, no reuse", t_full, st_full.bytes_copied);
	row("(d) vsm_image_copy, reuse_dir holds base + l1", t_reuse, st_reuse.bytes_copied);
	snprintf(label, sizeof(label), "(e) qemu-img convert %s + fsync", qopts[0]);
	row(label, t_q[0], qbytes[0]);
	snprintf(label, sizeof(label), "(e) qemu-img convert %s + fsync", qopts[1]);
	row(label, t_q[1], qbytes[1]);
	printf("bytes: (c), (d) bytes_copied; (e) output file size (flattened: 1 layer)\n");
	printf("(c) layers copied %u, reused %u; (d) layers copied %u, reused %u\n",
	       st_full.layers_copied, st_full.layers_reused, st_reuse.layers_copied,
	       st_reuse.layers_reused);
	printf("bytes copied: without reuse %" PRIu64 ", with parent reuse %" PRIu64
	       " (%.1f %%)\n", st_full.bytes_copied, st_reuse.bytes_copied,
	       100.0 * (double)st_reuse.bytes_copied / (double)st_full.bytes_copied);
	printf("ratios (> 1: the second is faster; libvsm for the first two):\n");
	printf("  time  peer / full copy            %6.2f  (peer: %s)\n", t_peer / t_full,
	       qopts[best]);
	printf("  time  peer / copy with reuse      %6.2f\n", t_peer / t_reuse);
	printf("  time  full copy / copy with reuse %6.2f\n", t_full / t_reuse);

	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", chaindir, layer_names[i]);
		unlink(path);
	}
	free(buf);
}

int main(int argc, char **argv)
{
	vsm_ctx_opts co = VSM_CTX_OPTS_INIT;
	vsm_ctx *ctx = NULL;
	char tmpl[PATH_MAX];
	char state[PATH_MAX + 16], ds1[PATH_MAX + 16], ds2[PATH_MAX + 16], outdir[PATH_MAX + 16],
	     chain[PATH_MAX + 16], full[PATH_MAX + 16], reuse[PATH_MAX + 16], uri[PATH_MAX + 32];
	int a, size_given = 0, quick = 0;
	double t0 = bench_now();

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--dir") && a + 1 < argc) {
			dir = argv[++a];
		} else if (!strcmp(argv[a], "--size") && a + 1 < argc) {
			disk_size = parse_size(argv[++a]);
			size_given = 1;
		} else if (!strcmp(argv[a], "--quick")) {
			quick = 1;
		} else {
			fprintf(stderr, "usage: bench_migrate [--dir DIR] [--size SIZE] [--quick]\n");
			return 2;
		}
	}
	if (quick && !size_given)
		disk_size = 64 * MIB;
	if (disk_size < 16 * MIB) {
		fprintf(stderr, "bench_migrate: --size at least 16M\n");
		return 2;
	}
	/* A real path: vsm_image_copy wants reuse_dir to be the target's
	 * directory after realpath. */
	snprintf(tmpl, sizeof(tmpl), "%s/bench-migrate.XXXXXX", dir);
	if (!mkdtemp(tmpl) || !realpath(tmpl, root)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(state, sizeof(state), "%s/state", root);
	snprintf(ds1, sizeof(ds1), "%s/ds1", root);
	snprintf(ds2, sizeof(ds2), "%s/ds2", root);
	snprintf(outdir, sizeof(outdir), "%s/out", root);
	snprintf(chain, sizeof(chain), "%s/chain", root);
	snprintf(full, sizeof(full), "%s/copy-full", root);
	snprintf(reuse, sizeof(reuse), "%s/copy-reuse", root);
	mkdir(ds1, 0755);
	mkdir(ds2, 0755);
	mkdir(outdir, 0755);
	mkdir(chain, 0755);
	mkdir(full, 0755);
	mkdir(reuse, 0755);
	co.state_dir = state;
	if (vsm_ctx_open(&ctx, &co) < 0)
		bench_die("ctx open");
	snprintf(uri, sizeof(uri), "file://%s", ds1);
	if (vsm_datastore_add(ctx, "ds1", uri, 0) < 0)
		bench_die("datastore add");
	snprintf(uri, sizeof(uri), "file://%s", ds2);
	if (vsm_datastore_add(ctx, "ds2", uri, 0) < 0)
		bench_die("datastore add");

	printf("bench_migrate: %s\n", root);
	bench_migrate(ctx, ds1, ds2, outdir);
	bench_copy(chain, full, reuse, outdir);
	printf("\ntotal run time %.0f s\n", bench_now() - t0);

	vsm_ctx_free(ctx);
	bench_run("rm -rf '%s'", root);
	return 0;
}
