/*
 * bench_cow: the COW engine against its peers in one run, on the same
 * filesystem, the same sizes and the same request sequences, each peer in
 * the configurations a user would pick for it. Every contender is timed
 * for the whole operation a user waits for: open -> I/O -> final flush ->
 * close. libvsm and the raw file run in this process (a monotonic clock
 * around vsm_image_open .. vsm_image_close, or open .. fdatasync .. close);
 * qemu-img runs as a process and is timed from fork to waitpid, so its
 * exec, open, I/O, final flush and close are all inside its time. The
 * "open + close, no I/O" row measures that fixed cost for every contender
 * (`qemu-img bench -c 0`) so the reader can judge it; nothing is
 * subtracted. How to run it, what each column means and the figures
 * measured so far: bench/cow.md. Not a test: nothing here asserts a
 * timing.
 *
 * usage: bench_cow [--dir DIR] [--size MiB] [--ops N] [--reps N]
 *                  [--qemu-img PATH]
 *
 * Inputs are fixed: the image size, the request counts, the data pattern
 * (every byte 0xa5) and the "random" offsets, which come from no random
 * generator but from i * STEP mod SIZE, i = 0, 1, ... STEP is the odd
 * multiple of 4 KiB nearest SIZE / golden ratio, so the offsets are 4 KiB
 * aligned, pairwise distinct and spread over the whole image like a
 * low-discrepancy random sequence. `qemu-img bench` has no random mode,
 * only a start offset and a step wrapping modulo the image size, so every
 * contender runs exactly this sequence (qemu-img bench -o 0 -S STEP).
 * Queue depth is 1 everywhere (qemu-img bench -d 1): the vsm_image API is
 * synchronous, so that is the pattern a libvsm caller issues.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vsm/vsm.h>
#include <vsm/image.h>

#ifndef QEMU_IMG
#define QEMU_IMG "qemu-img"
#endif

#define MAX_REPS 15
#define MAX_PEERS 8
#define MAX_ROWS 16
#define PATTERN 0xa5

enum kind { VSM, QEMU, RAW };

/* One contender of a row. For QEMU, @opts are the options that pick its
 * configuration (space separated, no quoting). */
struct peer {
	const char *name;
	enum kind kind;
	const char *opts;
};

/* `qemu-img bench` configurations (Debian 12, qemu-img 7.2): -i picks the
 * AIO engine, -t the cache mode; native AIO needs cache=none (O_DIRECT).
 * `-i native` is what the older `-n` flag means. */
static const struct peer io_peers[] = {
	{ "libvsm", VSM, NULL },
	{ "qemu-img threads,wb", QEMU, "-t writeback -i threads" },
	{ "qemu-img io_uring,wb", QEMU, "-t writeback -i io_uring" },
	{ "qemu-img io_uring,none", QEMU, "-t none -i io_uring" },
	{ "qemu-img native,none", QEMU, "-t none -i native" },
	{ "raw file", RAW, NULL },
};

static const struct peer commit_peers[] = {
	{ "libvsm", VSM, NULL },
	{ "qemu-img -t writeback", QEMU, "-t writeback" },
	{ "qemu-img -t none", QEMU, "-t none" },
	{ "raw copy", RAW, NULL },
};

/* -W: out-of-order writes, qemu-img convert's fastest writing mode. */
static const struct peer convert_peers[] = {
	{ "libvsm", VSM, NULL },
	{ "qemu-img -t writeback", QEMU, "-t writeback" },
	{ "qemu-img -t writeback -W", QEMU, "-t writeback -W" },
	{ "qemu-img -t none -W", QEMU, "-t none -W" },
	{ "raw copy", RAW, NULL },
};

#define NPEERS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *dir = ".";
static const char *qemu_img = QEMU_IMG;
static uint64_t size = 256ull << 20;
static uint64_t rnd_ops = 10000;
static int reps = 3;
static uint64_t step;

static char img[PATH_MAX], qimg[PATH_MAX], raw[PATH_MAX], raw2[PATH_MAX];
static char empty_t[PATH_MAX], fresh[PATH_MAX];
static char base_t[PATH_MAX], ov_t[PATH_MAX], base[PATH_MAX], ov[PATH_MAX];
static char dst[PATH_MAX];

/* The summary printed at the end: per row, the median whole-operation
 * time of libvsm, of the fastest qemu-img configuration and of raw. */
struct summary {
	const char *test;
	double amount;
	const char *unit;
	double vsm, qemu, raw;
	const char *qemu_name;
};
static struct summary sums[MAX_ROWS];
static int nsums;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	const vsm_error *e = vsm_error_last();

	fprintf(stderr, "bench_cow: %s: %s\n", what,
		e && e->message ? e->message : strerror(errno));
	exit(1);
}

static void path(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

/* An argument vector for a peer process. */
struct args {
	char *v[64];
	char store[8192];
	size_t used;
	int n;
};

static void arg(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arg(struct args *a, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(a->store + a->used, sizeof(a->store) - a->used, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(a->store) - a->used || a->n + 1 >= 64) {
		fprintf(stderr, "bench_cow: command line too long\n");
		exit(1);
	}
	a->v[a->n++] = a->store + a->used;
	a->v[a->n] = NULL;
	a->used += (size_t)len + 1;
}

/* Append @opts, split at spaces. */
static void arg_split(struct args *a, const char *opts)
{
	const char *p = opts, *e;

	while (p && *p) {
		while (*p == ' ')
			p++;
		e = strchr(p, ' ');
		if (!e)
			e = p + strlen(p);
		if (e > p)
			arg(a, "%.*s", (int)(e - p), p);
		p = e;
	}
}

/* Run @a with its output captured, without a shell. Returns the wall-clock
 * seconds from fork to waitpid; *io gets what `qemu-img bench` reports as
 * its own run time ("Run completed in"), or -1. Exits on failure. */
static double run(struct args *a, double *io)
{
	char out[16384], *p;
	size_t len = 0;
	int fds[2], status;
	double t;
	pid_t pid;
	ssize_t n;

	if (pipe(fds) < 0)
		die("pipe");
	t = now();
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execvp(a->v[0], a->v);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		char discard[4096];

		if (len < sizeof(out) - 1)
			n = read(fds[0], out + len, sizeof(out) - 1 - len);
		else
			n = read(fds[0], discard, sizeof(discard));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (len < sizeof(out) - 1)
			len += (size_t)n;
	}
	close(fds[0]);
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	t = now() - t;
	out[len] = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		int i;

		fprintf(stderr, "bench_cow: command failed:");
		for (i = 0; i < a->n; i++)
			fprintf(stderr, " %s", a->v[i]);
		fprintf(stderr, "\n%s", out);
		exit(1);
	}
	if (io) {
		*io = -1;
		p = strstr(out, "Run completed in ");
		if (p)
			sscanf(p, "Run completed in %lf", io);
	}
	return t;
}

static void must(int status, const char *what)
{
	if (status != 0) {
		fprintf(stderr, "bench_cow: %s failed\n", what);
		exit(1);
	}
}

/* Untimed preparation through the shell (cp, truncate, cat). */
static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 32, fmt, ap);
	va_end(ap);
	strcat(cmd, " >/dev/null 2>&1");
	must(system(cmd), cmd);
}

/* Offsets of the I/O rows: sequential, or the wrapping golden-ratio step. */
static uint64_t offset_of(uint64_t i, uint64_t bs, bool random)
{
	return random ? i * step % size : i * bs % size;
}

/* `qemu-img bench` with the configuration of @p over @file: @count
 * requests of @bs bytes, sequential or with the golden step. */
static double qbench(const struct peer *p, const char *file, bool write, uint64_t bs,
		     uint64_t count, bool random, double *io)
{
	struct args a = { .n = 0 };

	arg(&a, "%s", qemu_img);
	arg(&a, "bench");
	arg(&a, "-f");
	arg(&a, "qcow2");
	arg(&a, "-d");
	arg(&a, "1");
	arg_split(&a, p->opts);
	if (write) {
		arg(&a, "-w");
		arg(&a, "--pattern=%d", PATTERN);
	}
	arg(&a, "-c");
	arg(&a, "%" PRIu64, count);
	arg(&a, "-s");
	arg(&a, "%" PRIu64, bs);
	arg(&a, "-o");
	arg(&a, "0");
	arg(&a, "-S");
	arg(&a, "%" PRIu64, random ? step : bs);
	arg(&a, "%s", file);
	return run(&a, io);
}

/* libvsm: open -> @count requests -> close (which flushes). Returns the
 * whole time; *io gets the time of the requests alone. */
static double vsm_rw(const char *p, bool write, uint64_t bs, uint64_t count, bool random,
		     double *io)
{
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	uint8_t *buf = aligned_alloc(4096, bs ? bs : 4096);
	vsm_image *im;
	uint64_t i;
	double t, t_io;

	if (!buf)
		die("aligned_alloc");
	memset(buf, PATTERN, bs);
	if (!write)
		oo.flags = VSM_IMAGE_OPEN_RDONLY;
	t = now();
	if (vsm_image_open(&im, p, &oo) < 0)
		die(p);
	t_io = now();
	for (i = 0; i < count; i++) {
		uint64_t off = offset_of(i, bs, random);

		if ((write ? vsm_image_write(im, buf, bs, off, 0) : vsm_image_read(im, buf, bs, off)) < 0)
			die("I/O");
	}
	t_io = now() - t_io;
	if (vsm_image_close(im) < 0)
		die("close");
	t = now() - t;
	free(buf);
	if (io)
		*io = t_io;
	return t;
}

/* A raw file through pread/pwrite: open -> I/O -> fdatasync (writes) ->
 * close, in this process, buffered like libvsm. */
static double raw_rw(const char *p, bool write, uint64_t bs, uint64_t count, bool random,
		     double *io)
{
	uint8_t *buf = aligned_alloc(4096, bs ? bs : 4096);
	uint64_t i;
	double t, t_io;
	int fd;

	if (!buf)
		die("aligned_alloc");
	memset(buf, PATTERN, bs);
	t = now();
	fd = open(p, write ? O_RDWR : O_RDONLY);
	if (fd < 0)
		die(p);
	t_io = now();
	for (i = 0; i < count; i++) {
		off_t off = (off_t)offset_of(i, bs, random);

		if ((write ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off)) != (ssize_t)bs)
			die("raw I/O");
	}
	t_io = now() - t_io;
	if (write && fdatasync(fd) < 0)
		die("fdatasync");
	close(fd);
	t = now() - t;
	free(buf);
	if (io)
		*io = t_io;
	return t;
}

/* Copy @src to @d (created) with pread/pwrite of 1 MiB, then fdatasync. */
static double raw_copy(const char *src, const char *d)
{
	uint8_t *buf = aligned_alloc(4096, 1 << 20);
	int in, out;
	uint64_t off;
	double t;

	if (!buf)
		die("aligned_alloc");
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
	sh("cat '%s'", p);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double s[MAX_REPS];

	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double vmin(const double *v, int n)
{
	double m = v[0];
	int i;

	for (i = 1; i < n; i++)
		if (v[i] < m)
			m = v[i];
	return m;
}

static double vmax(const double *v, int n)
{
	double m = v[0];
	int i;

	for (i = 1; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

/* One contender's run of a row: returns the whole time in seconds and
 * sets *io to the I/O-only time, or -1 where there is none. */
typedef double (*run_fn)(const struct peer *p, double *io);

/* Run every contender @reps times, in an order rotating from one
 * repetition to the next, each after a sync(); print the medians. */
static void row(const char *name, double amount, const char *unit, run_fn fn,
		const struct peer *peers, int n)
{
	double t[MAX_PEERS][MAX_REPS], io[MAX_PEERS][MAX_REPS];
	double med[MAX_PEERS], vsm = 0;
	struct summary *s = &sums[nsums++];
	int rep, k;

	for (rep = 0; rep < reps; rep++)
		for (k = 0; k < n; k++) {
			int who = (rep + k) % n;

			sync();
			t[who][rep] = fn(&peers[who], &io[who][rep]);
		}
	for (k = 0; k < n; k++) {
		med[k] = median(t[k], reps);
		if (peers[k].kind == VSM)
			vsm = med[k];
	}
	if (amount > 0)
		printf("\n%s (%.0f %s per run)\n\n", name, amount, unit);
	else
		printf("\n%s\n\n", name);
	printf("| %-26s | %9s | %9s | %9s | %10s | %11s | %9s |\n", "contender", "median s",
	       "min s", "max s", amount > 0 ? (strcmp(unit, "MiB") ? "IOPS" : "MiB/s") : "-",
	       "libvsm/this", "I/O s");
	printf("|----------------------------|-----------|-----------|-----------|"
	       "------------|-------------|-----------|\n");
	memset(s, 0, sizeof(*s));
	s->test = name;
	s->amount = amount;
	s->unit = unit;
	for (k = 0; k < n; k++) {
		printf("| %-26s | %9.4f | %9.4f | %9.4f | ", peers[k].name, med[k],
		       vmin(t[k], reps), vmax(t[k], reps));
		if (amount > 0)
			printf("%10.0f | ", amount / med[k]);
		else
			printf("%10s | ", "-");
		printf("%11.2f | ", vsm / med[k]);
		if (io[k][0] >= 0)
			printf("%9.4f |\n", median(io[k], reps));
		else
			printf("%9s |\n", "-");
		if (peers[k].kind == VSM)
			s->vsm = med[k];
		else if (peers[k].kind == RAW)
			s->raw = med[k];
		else if (!s->qemu_name || med[k] < s->qemu) {
			s->qemu = med[k];
			s->qemu_name = peers[k].name;
		}
	}
	fflush(stdout);
}

static double zero_io(const struct peer *p, double *io)
{
	sh("cp '%s' '%s'", empty_t, fresh);
	switch (p->kind) {
	case VSM:
		return vsm_rw(fresh, true, 0, 0, false, io);
	case QEMU:
		return qbench(p, fresh, true, 4096, 0, false, io);
	default:
		return raw_rw(raw, true, 0, 0, false, io);
	}
}

static double seq_write(const struct peer *p, double *io)
{
	switch (p->kind) {
	case VSM:
		sh("cp '%s' '%s'", empty_t, img);
		sync();
		return vsm_rw(img, true, 1 << 20, size >> 20, false, io);
	case QEMU:
		sh("cp '%s' '%s'", empty_t, qimg);
		sync();
		return qbench(p, qimg, true, 1 << 20, size >> 20, false, io);
	default:
		unlink(raw);
		sh("truncate -s %" PRIu64 " '%s'", size, raw);
		sync();
		return raw_rw(raw, true, 1 << 20, size >> 20, false, io);
	}
}

static double seq_read(const struct peer *p, double *io)
{
	warm(p->kind == RAW ? raw : img);
	switch (p->kind) {
	case VSM:
		return vsm_rw(img, false, 1 << 20, size >> 20, false, io);
	case QEMU:
		return qbench(p, img, false, 1 << 20, size >> 20, false, io);
	default:
		return raw_rw(raw, false, 1 << 20, size >> 20, false, io);
	}
}

static double rnd_io(const struct peer *p, bool write, const char *file, const char *rawf,
		     uint64_t ops, double *io)
{
	switch (p->kind) {
	case VSM:
		return vsm_rw(file, write, 4096, ops, true, io);
	case QEMU:
		return qbench(p, file, write, 4096, ops, true, io);
	default:
		return raw_rw(rawf, write, 4096, ops, true, io);
	}
}

static double rnd_read(const struct peer *p, double *io)
{
	warm(p->kind == RAW ? raw : img);
	return rnd_io(p, false, img, raw, rnd_ops, io);
}

static double rnd_overwrite(const struct peer *p, double *io)
{
	warm(p->kind == RAW ? raw : img);
	return rnd_io(p, true, img, raw, rnd_ops, io);
}

static double rnd_alloc(const struct peer *p, double *io)
{
	if (p->kind == RAW) {
		unlink(raw2);
		sh("truncate -s %" PRIu64 " '%s'", size, raw2);
	} else {
		sh("cp '%s' '%s'", empty_t, fresh);
	}
	sync();
	return rnd_io(p, true, fresh, raw2, rnd_ops / 4, io);
}

static double commit(const struct peer *p, double *io)
{
	struct args a = { .n = 0 };
	vsm_image *o;
	double t;

	*io = -1;
	if (p->kind == RAW) {
		warm(raw);
		unlink(raw2);
		sync();
		return raw_copy(raw, raw2);
	}
	sh("cp --sparse=always '%s' '%s' && cp --sparse=always '%s' '%s'", base_t, base, ov_t, ov);
	sync();
	warm(ov);
	if (p->kind == VSM) {
		t = now();
		if (vsm_image_open(&o, ov, NULL) < 0)
			die(ov);
		if (vsm_image_commit(o, 0) < 0)
			die("commit");
		if (vsm_image_close(o) < 0)
			die("close");
		return now() - t;
	}
	arg(&a, "%s", qemu_img);
	arg(&a, "commit");
	arg(&a, "-q");
	arg_split(&a, p->opts);
	arg(&a, "%s", ov);
	return run(&a, NULL);
}

static double convert(const struct peer *p, double *io)
{
	vsm_image_convert_opts cv = VSM_IMAGE_CONVERT_OPTS_INIT;
	struct args a = { .n = 0 };
	double t;

	*io = -1;
	warm(raw);
	unlink(dst);
	unlink(raw2);
	sync();
	switch (p->kind) {
	case VSM:
		t = now();
		if (vsm_image_convert(raw, dst, &cv) < 0)
			die("convert");
		return now() - t;
	case QEMU:
		arg(&a, "%s", qemu_img);
		arg(&a, "convert");
		arg_split(&a, p->opts);
		arg(&a, "-f");
		arg(&a, "raw");
		arg(&a, "-O");
		arg(&a, "qcow2");
		arg(&a, "%s", raw);
		arg(&a, "%s", dst);
		return run(&a, NULL);
	default:
		return raw_copy(raw, raw2);
	}
}

/* The odd multiple of 4 KiB nearest size / golden ratio: coprime with
 * the number of 4 KiB blocks when that is a power of two, so that the
 * offsets do not repeat within size / 4 KiB requests. */
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
	sh("cp '%s' '%s'", base_t, base);
	co.size = 0;
	co.backing = "bench-base.qcow2";
	co.backing_format = "qcow2";
	if (vsm_image_create(ov_t, &co, 0) < 0)
		die("create");
	vsm_rw(ov_t, true, 1 << 20, size >> 20, false, NULL);
	/* The raw file read before the first sequential-write row runs. */
	sh("truncate -s %" PRIu64 " '%s'", size, raw);
}

static void cleanup(void)
{
	const char *all[] = { img, qimg, raw, raw2, empty_t, fresh, base_t, ov_t, base, ov, dst };
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		unlink(all[i]);
}

static void print_summary(void)
{
	int i;

	printf("\nSummary: median whole-operation seconds; ratio = libvsm time / peer time "
	       "(below 1: libvsm is faster; above 1: slower); best qemu-img = its fastest "
	       "configuration in that row\n\n");
	printf("| %-36s | %9s | %9s | %-26s | %7s | %9s | %7s |\n", "test", "libvsm s",
	       "qemu-img s", "best qemu-img", "ratio", "raw s", "ratio");
	printf("|--------------------------------------|-----------|------------|"
	       "----------------------------|---------|-----------|---------|\n");
	for (i = 0; i < nsums; i++) {
		const struct summary *s = &sums[i];

		printf("| %-36s | %9.4f | %10.4f | %-26s | %7.2f | %9.4f | %7.2f |\n", s->test,
		       s->vsm, s->qemu, s->qemu_name, s->vsm / s->qemu, s->raw, s->vsm / s->raw);
	}
}

static void print_qemu_version(void)
{
	char line[256] = "";
	char cmd[PATH_MAX + 32];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "'%s' --version", qemu_img);
	f = popen(cmd, "r");
	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		pclose(f);
	}
	line[strcspn(line, "\n")] = '\0';
	printf("peer: %s (%s)\n", qemu_img, line[0] ? line : "version unknown");
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
		else if (!strcmp(argv[a], "--ops") && a + 1 < argc)
			rnd_ops = strtoull(argv[++a], NULL, 0);
		else if (!strcmp(argv[a], "--reps") && a + 1 < argc)
			reps = atoi(argv[++a]);
		else if (!strcmp(argv[a], "--qemu-img") && a + 1 < argc)
			qemu_img = argv[++a];
		else
			break;
	}
	if (a < argc || reps < 1 || reps > MAX_REPS || size < (4u << 20) || rnd_ops < 4) {
		fprintf(stderr, "usage: bench_cow [--dir DIR] [--size MiB (>= 4, default 256)] "
			"[--ops N (>= 4, default 10000)] [--reps N (1..%d, default 3)] "
			"[--qemu-img PATH]\n", MAX_REPS);
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

	printf("bench_cow: libvsm vs qemu-img and a raw file in %s; %.0f MiB images, "
	       "64 KiB clusters; %" PRIu64 " random 4 KiB requests (%" PRIu64
	       " allocating), step %" PRIu64 " bytes; queue depth 1; median of %d runs\n",
	       dir, mib, rnd_ops, rnd_ops / 4, step, reps);
	print_qemu_version();
	printf("times: whole operation (open -> I/O -> final flush -> close); qemu-img: "
	       "wall clock of its process, fork to exit; I/O s: the requests alone "
	       "(qemu-img: its own \"Run completed in\")\n");

	row("open + close, no I/O", 0, "-", zero_io, io_peers, NPEERS(io_peers));
	row("1 MiB sequential write (allocating)", mib, "MiB", seq_write, io_peers,
	    NPEERS(io_peers));
	row("1 MiB sequential read", mib, "MiB", seq_read, io_peers, NPEERS(io_peers));
	row("4 KiB random read", (double)rnd_ops, "requests", rnd_read, io_peers, NPEERS(io_peers));
	row("4 KiB random write (overwrite)", (double)rnd_ops, "requests", rnd_overwrite, io_peers,
	    NPEERS(io_peers));
	row("4 KiB random write (allocating)", (double)(rnd_ops / 4), "requests", rnd_alloc, io_peers,
	    NPEERS(io_peers));
	row("commit (fully allocated overlay)", mib, "MiB", commit, commit_peers,
	    NPEERS(commit_peers));
	row("convert raw -> qcow2", mib, "MiB", convert, convert_peers, NPEERS(convert_peers));
	print_summary();
	cleanup();
	return 0;
}
