/*
 * bench_cow: the COW engine against its peers in one run, on the same
 * filesystem: `qemu-img bench` (queue depth 1, the same access pattern),
 * a raw file through pread/pwrite (the physical reference), `qemu-img
 * commit` and `qemu-img convert`. Prints each figure and libvsm/peer.
 *
 * usage: bench_cow [--dir DIR] [--size MiB] [--qemu-img PATH]
 * Not a test: nothing here asserts a timing.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
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

static const char *dir = ".";
static const char *qemu_img = QEMU_IMG;
static uint64_t size = 1ull << 30;
static const uint64_t rnd_ops = 40000;
/* The 4 KiB "random" pattern: a stride that wraps, so that qemu-img bench
 * (which has only strides) and we touch the same offsets. */
static uint64_t stride;

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

/* Seconds `qemu-img bench` reports, or -1. */
static double qbench(const char *args, const char *file)
{
	char cmd[4096], line[512];
	double secs = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "%s bench -f qcow2 -t writeback -d 1 %s '%s' 2>&1",
		 qemu_img, args, file);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p))
		if (sscanf(line, "Run completed in %lf seconds", &secs) == 1)
			break;
	pclose(p);
	return secs;
}

static double timed_sh(const char *cmd)
{
	double t = now();

	if (system(cmd) != 0)
		return -1;
	return now() - t;
}

static uint64_t rnd_off(uint64_t i)
{
	return (i * stride) % size / 4096 * 4096;
}

static vsm_image *open_img(const char *p)
{
	vsm_image *img;

	if (vsm_image_open(&img, p, NULL) < 0)
		die(p);
	return img;
}

static double vsm_rw(const char *p, int write, uint64_t bs, uint64_t count, int random)
{
	vsm_image *img = open_img(p);
	uint8_t *buf = aligned_alloc(4096, bs);
	uint64_t i, off = 0;
	double t;

	memset(buf, 0xa5, bs);
	t = now();
	for (i = 0; i < count; i++) {
		off = random ? rnd_off(i) : (i * bs) % size;
		if ((write ? vsm_image_write(img, buf, bs, off, 0) : vsm_image_read(img, buf, bs, off)) < 0)
			die("I/O");
	}
	if (write && vsm_image_flush(img) < 0)
		die("flush");
	t = now() - t;
	vsm_image_close(img);
	free(buf);
	return t;
}

static double raw_rw(const char *p, int write, uint64_t bs, uint64_t count, int random)
{
	int fd = open(p, O_RDWR);
	uint8_t *buf = aligned_alloc(4096, bs);
	uint64_t i, off;
	double t;

	if (fd < 0)
		die(p);
	memset(buf, 0xa5, bs);
	t = now();
	for (i = 0; i < count; i++) {
		off = random ? rnd_off(i) : (i * bs) % size;
		if ((write ? pwrite(fd, buf, bs, (off_t)off) : pread(fd, buf, bs, (off_t)off)) != (ssize_t)bs)
			die("raw I/O");
	}
	if (write)
		fdatasync(fd);
	t = now() - t;
	close(fd);
	free(buf);
	return t;
}

static void row(const char *name, double ops_or_bytes, const char *unit,
		double t_vsm, double t_qemu, double t_raw)
{
	double v = t_vsm > 0 ? ops_or_bytes / t_vsm : 0, q = t_qemu > 0 ? ops_or_bytes / t_qemu : 0;
	double r = t_raw > 0 ? ops_or_bytes / t_raw : 0;

	printf("| %-34s | %10.0f | %10.0f | %5.2f | ", name, v, q, q > 0 ? v / q : 0);
	if (r > 0)
		printf("%10.0f | %5.2f |", r, v / r);
	else
		printf("%10s | %5s |", "-", "-");
	printf(" %s\n", unit);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	char img[PATH_MAX], qimg[PATH_MAX], raw[PATH_MAX], fresh[PATH_MAX], qfresh[PATH_MAX];
	char base[PATH_MAX], ov[PATH_MAX], qbase[PATH_MAX], qov[PATH_MAX], dst[PATH_MAX];
	char args[256], cmd[3 * PATH_MAX + 512];
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	vsm_image_convert_opts cv = VSM_IMAGE_CONVERT_OPTS_INIT;
	double tv, tq, tr, mib;
	int a;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--dir") && a + 1 < argc)
			dir = argv[++a];
		else if (!strcmp(argv[a], "--size") && a + 1 < argc)
			size = strtoull(argv[++a], NULL, 0) << 20;
		else if (!strcmp(argv[a], "--qemu-img") && a + 1 < argc)
			qemu_img = argv[++a];
		else {
			fprintf(stderr, "usage: bench_cow [--dir DIR] [--size MiB] [--qemu-img PATH]\n");
			return 2;
		}
	}
	stride = (size / 7) + 4096 * 13; /* touches every L2 table */
	mib = (double)size / 1048576.0;
	path(img, "bench-vsm.qcow2");
	path(qimg, "bench-qemu.qcow2");
	path(raw, "bench.raw");
	path(fresh, "bench-fresh.qcow2");
	path(qfresh, "bench-qfresh.qcow2");
	path(base, "bench-base.qcow2");
	path(ov, "bench-ov.qcow2");
	path(qbase, "bench-qbase.qcow2");
	path(qov, "bench-qov.qcow2");
	path(dst, "bench-dst.qcow2");
	sh("rm -f '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s'", img, qimg, raw, fresh, qfresh,
	   base, ov, qbase, qov, dst);

	printf("libvsm vs qemu-img (%s, queue depth 1, writeback) on %s, %.0f MiB image, "
	       "64 KiB clusters\n\n", qemu_img, dir, mib);
	printf("| %-34s | %10s | %10s | %5s | %10s | %5s | unit\n", "test", "libvsm", "qemu-img",
	       "ratio", "raw file", "ratio");
	printf("|%s|%s|%s|%s|%s|%s|\n", "------------------------------------",
	       "------------", "------------", "-------", "------------", "-------");

	/* 1 MiB sequential write into fresh images (allocating). */
	co.size = size;
	if (vsm_image_create(img, &co, 0) < 0)
		die("create");
	tv = vsm_rw(img, 1, 1 << 20, size >> 20, 0);
	sh("%s create -f qcow2 '%s' %" PRIu64, qemu_img, qimg, size);
	snprintf(args, sizeof(args), "-w -c %" PRIu64 " -s 1M -S 1M --pattern=165", size >> 20);
	tq = qbench(args, qimg);
	sh("truncate -s %" PRIu64 " '%s'", size, raw);
	tr = raw_rw(raw, 1, 1 << 20, size >> 20, 0);
	row("1 MiB sequential write (allocating)", mib, "MiB/s", tv, tq, tr);

	/* 1 MiB sequential read of the fully allocated images. */
	sh("sync; echo 1 > /proc/sys/vm/drop_caches");
	tv = vsm_rw(img, 0, 1 << 20, size >> 20, 0);
	snprintf(args, sizeof(args), "-c %" PRIu64 " -s 1M -S 1M", size >> 20);
	tq = qbench(args, img);
	tr = raw_rw(raw, 0, 1 << 20, size >> 20, 0);
	row("1 MiB sequential read", mib, "MiB/s", tv, tq, tr);

	/* 4 KiB strided ("random") reads and overwrites of allocated data. */
	tv = vsm_rw(img, 0, 4096, rnd_ops, 1);
	snprintf(args, sizeof(args), "-c %" PRIu64 " -s 4k -S %" PRIu64, rnd_ops, stride);
	tq = qbench(args, img);
	tr = raw_rw(raw, 0, 4096, rnd_ops, 1);
	row("4 KiB random read", (double)rnd_ops, "IOPS", tv, tq, tr);
	tv = vsm_rw(img, 1, 4096, rnd_ops, 1);
	snprintf(args, sizeof(args), "-w -c %" PRIu64 " -s 4k -S %" PRIu64, rnd_ops, stride);
	tq = qbench(args, qimg);
	tr = raw_rw(raw, 1, 4096, rnd_ops, 1);
	row("4 KiB random write (overwrite)", (double)rnd_ops, "IOPS", tv, tq, tr);

	/* 4 KiB random writes into empty images: each allocates a cluster. */
	if (vsm_image_create(fresh, &co, 0) < 0)
		die("create");
	tv = vsm_rw(fresh, 1, 4096, rnd_ops / 4, 1);
	sh("%s create -f qcow2 '%s' %" PRIu64, qemu_img, qfresh, size);
	snprintf(args, sizeof(args), "-w -c %" PRIu64 " -s 4k -S %" PRIu64, rnd_ops / 4, stride);
	tq = qbench(args, qfresh);
	row("4 KiB random write (allocating)", (double)(rnd_ops / 4), "IOPS", tv, tq, 0);

	/* Commit of a fully allocated overlay, on identical copies. */
	co.size = size;
	if (vsm_image_create(base, &co, 0) < 0)
		die("create");
	co.size = 0;
	co.backing = "bench-base.qcow2";
	co.backing_format = "qcow2";
	if (vsm_image_create(ov, &co, 0) < 0)
		die("create");
	vsm_rw(ov, 1, 1 << 20, size >> 20, 0);
	sh("cp --sparse=always '%s' '%s' && cp --sparse=always '%s' '%s'", base, qbase, ov, qov);
	sh("%s rebase -u -b bench-qbase.qcow2 -F qcow2 '%s'", qemu_img, qov);
	sh("sync");
	{
		vsm_image *o = open_img(ov);
		double t = now();

		if (vsm_image_commit(o, 0) < 0)
			die("commit");
		if (vsm_image_close(o) < 0)
			die("close");
		tv = now() - t;
	}
	snprintf(cmd, sizeof(cmd), "%s commit -q -t writeback '%s'", qemu_img, qov);
	tq = timed_sh(cmd);
	row("commit 1 GiB overlay", mib, "MiB/s", tv, tq, 0);

	/* raw -> qcow2 convert of a fully written raw file. */
	sh("sync");
	tv = now();
	if (vsm_image_convert(raw, dst, &cv) < 0)
		die("convert");
	tv = now() - tv;
	sh("rm -f '%s'", dst);
	snprintf(cmd, sizeof(cmd), "%s convert -t writeback -f raw -O qcow2 '%s' '%s'",
		 qemu_img, raw, dst);
	tq = timed_sh(cmd);
	row("convert raw -> qcow2", mib, "MiB/s", tv, tq, 0);

	sh("rm -f '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s'", img, qimg, raw, fresh, qfresh,
	   base, ov, qbase, qov, dst);
	return 0;
}
