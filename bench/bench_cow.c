/*
 * bench_cow: the COW engine against its peers in one run, on the same
 * filesystem and the same images: `qemu-img bench` (queue depth 1,
 * writeback cache, the same offsets), a raw file through pread/pwrite
 * (the physical reference), `qemu-img commit` and `qemu-img convert`.
 * Prints, per row, the median of --reps runs of each contender and the
 * ratios libvsm/qemu-img and libvsm/raw. Not a test: nothing here
 * asserts a timing.
 *
 * usage: bench_cow [--dir DIR] [--size MiB] [--reps N] [--qemu-img PATH]
 *
 * What each row measures (S = the image size, 64 KiB clusters):
 *
 *  1 MiB sequential write (allocating)  S/1 MiB writes of 1 MiB at 0, 1 MiB,
 *      ... into a fresh empty image (libvsm: created by libvsm; qemu-img:
 *      by `qemu-img create`; raw: a fresh sparse file).
 *  1 MiB sequential read  the same S/1 MiB requests reading back the image
 *      libvsm wrote in the last run of the row above (libvsm and qemu-img
 *      read the very same file) and the raw file.
 *  4 KiB random read / write (overwrite)  40000 requests of 4 KiB at
 *      offsets i * STEP mod S, i = 0, 1, ... STEP is the odd multiple of
 *      4 KiB nearest S / golden ratio, so the offsets are 4 KiB aligned,
 *      pairwise distinct and spread over the whole image (every L2 table)
 *      like a low-discrepancy random sequence. `qemu-img bench` has no
 *      random mode (only -o start offset and -S step, wrapping modulo the
 *      image size), so both run exactly this sequence: qemu-img bench -o 0
 *      -S STEP. Same image file for both; the raw file for raw.
 *  4 KiB random write (allocating)  10000 such requests into a fresh empty
 *      image (one libvsm-created empty image, copied for each contender);
 *      most allocate a cluster (and with it the rest of the cluster reads
 *      as zeros), a few land in a cluster allocated earlier in the run.
 *      Raw: a fresh sparse file.
 *  commit 1 GiB overlay  an overlay fully written (1 MiB pattern writes)
 *      over an empty base, both copied afresh from one template for every
 *      run: libvsm open + commit + close vs the whole `qemu-img commit -t
 *      writeback` process (its exec and open are inside its time, a few
 *      ms). Both end with the data durable (flushed) and the overlay
 *      emptied. Raw: copying S bytes between two raw files with
 *      pread/pwrite of 1 MiB + fdatasync.
 *  convert raw -> qcow2  the raw file of the first row into a new qcow2:
 *      libvsm vs the whole `qemu-img convert -t writeback` process. Raw:
 *      copying it to a new raw file + fdatasync.
 *
 * Cache state: the page cache is warm for every read (an untimed `cat` of
 * the file right before the timed run) and `sync` runs (untimed) before
 * every timed run, so nobody pays for another contender's writeback.
 * The I/O rows (1-5) do not include a final flush for any contender:
 * `qemu-img bench` stops its clock before it flushes on close, so libvsm
 * and raw stop theirs there too (each then flushes, untimed). The commit
 * and convert rows include everything up to the durable end.
 * Contenders run in a rotating order from run to run.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vsm/vsm.h>
#include <vsm/image.h>

#ifndef QEMU_IMG
#define QEMU_IMG "qemu-img"
#endif

#define MAX_REPS 15
enum { VSM, QEMU, RAW };

static const char *dir = ".";
static const char *qemu_img = QEMU_IMG;
static uint64_t size = 1ull << 30;
static int reps = 3;
static const uint64_t rnd_ops = 40000;
static uint64_t step;

static char img[PATH_MAX], qimg[PATH_MAX], raw[PATH_MAX], raw2[PATH_MAX];
static char empty_t[PATH_MAX], fresh[PATH_MAX];
static char base_t[PATH_MAX], ov_t[PATH_MAX], base[PATH_MAX], ov[PATH_MAX];
static char dst[PATH_MAX];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	const vsm_error *e = vsm_error_last();

	fprintf(stderr, "bench_cow: %s: %s\n", what, e ? e->message : "failed");
	exit(1);
}

static void path(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 32, fmt, ap);
	va_end(ap);
	strcat(cmd, " >/dev/null 2>&1");
	return system(cmd);
}

static void must(int status, const char *what)
{
	if (status != 0) {
		fprintf(stderr, "bench_cow: %s failed\n", what);
		exit(1);
	}
}

/* Seconds `qemu-img bench` reports for @file, or exit. */
static double qbench(const char *args, const char *file)
{
	char cmd[4096], line[512];
	double secs = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "%s bench -f qcow2 -t writeback -d 1 %s '%s' 2>&1",
		 qemu_img, args, file);
	p = popen(cmd, "r");
	if (!p)
		die("popen");
	while (fgets(line, sizeof(line), p))
		if (sscanf(line, "Run completed in %lf seconds", &secs) == 1)
			break;
	pclose(p);
	if (secs <= 0) {
		fprintf(stderr, "bench_cow: %s gave no time\n", cmd);
		exit(1);
	}
	return secs;
}

static double timed_sh(const char *cmd)
{
	double t = now();

	must(system(cmd), cmd);
	return now() - t;
}

/* Offsets of the I/O rows: sequential, or the wrapping golden-ratio step. */
static uint64_t offset_of(uint64_t i, uint64_t bs, bool random)
{
	return random ? i * step % size : i * bs % size;
}

static vsm_image *open_img(const char *p)
{
	vsm_image *im;

	if (vsm_image_open(&im, p, NULL) < 0)
		die(p);
	return im;
}

static double vsm_rw(const char *p, bool write, uint64_t bs, uint64_t count, bool random)
{
	vsm_image *im = open_img(p);
	uint8_t *buf = aligned_alloc(4096, bs);
	uint64_t i;
	double t;

	memset(buf, 0xa5, bs);
	t = now();
	for (i = 0; i < count; i++) {
		uint64_t off = offset_of(i, bs, random);

		if ((write ? vsm_image_write(im, buf, bs, off, 0) : vsm_image_read(im, buf, bs, off)) < 0)
			die("I/O");
	}
	t = now() - t;
	if (vsm_image_close(im) < 0)
		die("close");
	free(buf);
	return t;
}

static double raw_rw(const char *p, bool write, uint64_t bs, uint64_t count, bool random)
{
	int fd = open(p, O_RDWR);
	uint8_t *buf = aligned_alloc(4096, bs);
	uint64_t i;
	double t;

	if (fd < 0)
		die(p);
	memset(buf, 0xa5, bs);
	t = now();
	for (i = 0; i < count; i++) {
		off_t off = (off_t)offset_of(i, bs, random);

		if ((write ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off)) != (ssize_t)bs)
			die("raw I/O");
	}
	t = now() - t;
	if (write)
		fdatasync(fd);
	close(fd);
	free(buf);
	return t;
}

/* Copy @src to @dst (created) with pread/pwrite of 1 MiB, then fdatasync. */
static double raw_copy(const char *src, const char *d)
{
	uint8_t *buf = aligned_alloc(4096, 1 << 20);
	int in, out;
	uint64_t off;
	double t;

	t = now();
	in = open(src, O_RDONLY);
	out = open(d, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || out < 0)
		die("raw copy open");
	for (off = 0; off < size; off += 1 << 20)
		if (pread(in, buf, 1 << 20, (off_t)off) != 1 << 20 ||
		    pwrite(out, buf, 1 << 20, (off_t)off) != 1 << 20)
			die("raw copy");
	if (fdatasync(out) < 0)
		die("fdatasync");
	close(in);
	close(out);
	t = now() - t;
	free(buf);
	return t;
}

static void warm(const char *p)
{
	must(sh("cat '%s' > /dev/null", p), "cat");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	double s[MAX_REPS];

	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* One contender's run of a row; returns seconds. */
typedef double (*run_fn)(int who);

/* Run every contender @reps times in rotating order; print the medians. */
static void row(const char *name, double amount, const char *unit, run_fn fn, bool has_raw)
{
	double t[3][MAX_REPS], v, q, r = 0;
	int rep, k;

	for (rep = 0; rep < reps; rep++) {
		for (k = 0; k < 3; k++) {
			int who = (rep + k) % 3;

			if (who == RAW && !has_raw)
				continue;
			sync();
			t[who][rep] = fn(who);
		}
	}
	v = amount / median(t[VSM], reps);
	q = amount / median(t[QEMU], reps);
	if (has_raw)
		r = amount / median(t[RAW], reps);
	printf("| %-36s | %10.0f | %10.0f | %5.2f | ", name, v, q, v / q);
	if (has_raw)
		printf("%10.0f | %5.2f |", r, v / r);
	else
		printf("%10s | %5s |", "-", "-");
	printf(" %s\n", unit);
	fflush(stdout);
}

static double seq_write(int who)
{
	char args[256];

	switch (who) {
	case VSM: {
		vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;

		unlink(img);
		co.size = size;
		if (vsm_image_create(img, &co, 0) < 0)
			die("create");
		sync();
		return vsm_rw(img, true, 1 << 20, size >> 20, false);
	}
	case QEMU:
		unlink(qimg);
		must(sh("%s create -q -f qcow2 '%s' %" PRIu64, qemu_img, qimg, size), "create");
		sync();
		snprintf(args, sizeof(args), "-w -c %" PRIu64 " -s 1M -S 1M --pattern=165",
			 size >> 20);
		return qbench(args, qimg);
	default:
		unlink(raw);
		must(sh("truncate -s %" PRIu64 " '%s'", size, raw), "truncate");
		return raw_rw(raw, true, 1 << 20, size >> 20, false);
	}
}

static double seq_read(int who)
{
	char args[256];

	warm(who == RAW ? raw : img);
	switch (who) {
	case VSM:
		return vsm_rw(img, false, 1 << 20, size >> 20, false);
	case QEMU:
		snprintf(args, sizeof(args), "-c %" PRIu64 " -s 1M -S 1M", size >> 20);
		return qbench(args, img);
	default:
		return raw_rw(raw, false, 1 << 20, size >> 20, false);
	}
}

static double rnd_io(int who, bool write, const char *file, uint64_t ops)
{
	char args[256];

	switch (who) {
	case VSM:
		return vsm_rw(file, write, 4096, ops, true);
	case QEMU:
		snprintf(args, sizeof(args), "%s-c %" PRIu64 " -s 4k -o 0 -S %" PRIu64 "%s",
			 write ? "-w " : "", ops, step, write ? " --pattern=165" : "");
		return qbench(args, file);
	default:
		return raw_rw(raw, write, 4096, ops, true);
	}
}

static double rnd_read(int who)
{
	warm(who == RAW ? raw : img);
	return rnd_io(who, false, img, rnd_ops);
}

static double rnd_overwrite(int who)
{
	warm(who == RAW ? raw : img);
	return rnd_io(who, true, img, rnd_ops);
}

static double rnd_alloc(int who)
{
	if (who == RAW) {
		unlink(raw2);
		must(sh("truncate -s %" PRIu64 " '%s'", size, raw2), "truncate");
		return raw_rw(raw2, true, 4096, rnd_ops / 4, true);
	}
	must(sh("cp '%s' '%s'", empty_t, fresh), "cp");
	sync();
	return rnd_io(who, true, fresh, rnd_ops / 4);
}

static double commit(int who)
{
	char cmd[PATH_MAX + 256];
	double t;

	if (who == RAW) {
		warm(raw);
		unlink(raw2);
		return raw_copy(raw, raw2);
	}
	must(sh("cp --sparse=always '%s' '%s' && cp --sparse=always '%s' '%s'",
		base_t, base, ov_t, ov), "cp");
	sync();
	warm(ov);
	if (who == VSM) {
		vsm_image *o;

		t = now();
		o = open_img(ov);
		if (vsm_image_commit(o, 0) < 0)
			die("commit");
		if (vsm_image_close(o) < 0)
			die("close");
		return now() - t;
	}
	snprintf(cmd, sizeof(cmd), "%s commit -q -t writeback '%s'", qemu_img, ov);
	return timed_sh(cmd);
}

static double convert(int who)
{
	vsm_image_convert_opts cv = VSM_IMAGE_CONVERT_OPTS_INIT;
	char cmd[3 * PATH_MAX];
	double t;

	warm(raw);
	unlink(dst);
	unlink(raw2);
	sync();
	switch (who) {
	case VSM:
		t = now();
		if (vsm_image_convert(raw, dst, &cv) < 0)
			die("convert");
		return now() - t;
	case QEMU:
		snprintf(cmd, sizeof(cmd), "%s convert -t writeback -f raw -O qcow2 '%s' '%s'",
			 qemu_img, raw, dst);
		return timed_sh(cmd);
	default:
		return raw_copy(raw, raw2);
	}
}

/* The odd multiple of 4 KiB nearest size / golden ratio: coprime with
 * the (power-of-two) number of 4 KiB blocks when that is a power of two,
 * so that the offsets do not repeat within size / 4 KiB requests. */
static uint64_t golden_step(void)
{
	uint64_t blocks = (uint64_t)((double)(size / 4096) / 1.6180339887498949);

	if (blocks % 2 == 0)
		blocks++;
	return blocks * 4096;
}

static void make_templates(void)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;

	co.size = size;
	if (vsm_image_create(empty_t, &co, 0) < 0 || vsm_image_create(base_t, &co, 0) < 0)
		die("create");
	/* The overlay names its backing image "bench-base.qcow2": the copy
	 * of the template base that each run commits into. */
	must(sh("cp '%s' '%s'", base_t, base), "cp");
	co.size = 0;
	co.backing = "bench-base.qcow2";
	co.backing_format = "qcow2";
	if (vsm_image_create(ov_t, &co, 0) < 0)
		die("create");
	vsm_rw(ov_t, true, 1 << 20, size >> 20, false);
}

static void cleanup(void)
{
	const char *all[] = { img, qimg, raw, raw2, empty_t, fresh, base_t, ov_t, base, ov, dst };
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		unlink(all[i]);
}

int main(int argc, char **argv)
{
	double mib;
	int a;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--dir") && a + 1 < argc)
			dir = argv[++a];
		else if (!strcmp(argv[a], "--size") && a + 1 < argc)
			size = strtoull(argv[++a], NULL, 0) << 20;
		else if (!strcmp(argv[a], "--reps") && a + 1 < argc)
			reps = atoi(argv[++a]);
		else if (!strcmp(argv[a], "--qemu-img") && a + 1 < argc)
			qemu_img = argv[++a];
		else
			break;
	}
	if (a < argc || reps < 1 || reps > MAX_REPS || size < (4u << 20)) {
		fprintf(stderr, "usage: bench_cow [--dir DIR] [--size MiB (>= 4)] "
			"[--reps N (1..%d)] [--qemu-img PATH]\n", MAX_REPS);
		return 2;
	}
	step = golden_step();
	mib = (double)size / 1048576.0;
	path(img, "bench-vsm.qcow2");
	path(qimg, "bench-qemu.qcow2");
	path(raw, "bench.raw");
	path(raw2, "bench2.raw");
	path(empty_t, "bench-empty-template.qcow2");
	path(fresh, "bench-fresh.qcow2");
	path(base_t, "bench-base-template.qcow2");
	path(ov_t, "bench-ov-template.qcow2");
	path(base, "bench-base.qcow2");
	path(ov, "bench-ov.qcow2");
	path(dst, "bench-dst.qcow2");
	cleanup();
	make_templates();

	printf("libvsm vs %s (queue depth 1, writeback, warm page cache) on %s, "
	       "%.0f MiB image, 64 KiB clusters; median of %d runs each; random step %"
	       PRIu64 " bytes\n\n", qemu_img, dir, mib, reps, step);
	printf("| %-36s | %10s | %10s | %5s | %10s | %5s | unit\n", "test", "libvsm", "qemu-img",
	       "ratio", "raw file", "ratio");
	printf("|%s|%s|%s|%s|%s|%s|\n", "--------------------------------------",
	       "------------", "------------", "-------", "------------", "-------");

	row("1 MiB sequential write (allocating)", mib, "MiB/s", seq_write, true);
	row("1 MiB sequential read", mib, "MiB/s", seq_read, true);
	row("4 KiB random read", (double)rnd_ops, "IOPS", rnd_read, true);
	row("4 KiB random write (overwrite)", (double)rnd_ops, "IOPS", rnd_overwrite, true);
	row("4 KiB random write (allocating)", (double)(rnd_ops / 4), "IOPS", rnd_alloc, true);
	row("commit (fully allocated overlay)", mib, "MiB/s", commit, true);
	row("convert raw -> qcow2", mib, "MiB/s", convert, true);
	cleanup();
	return 0;
}
