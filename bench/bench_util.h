/*
 * What the benchmarks share: a monotonic clock, a shell runner for the
 * peer tools (qemu-img, sync), a reproducible pseudo-random fill (each
 * bench keeps its own seed, so its figures stay comparable with the ones
 * it printed before), file sizes and medians. Header-only: every bench is
 * one program, and the helpers are small.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_BENCH_UTIL_H
#define VSM_BENCH_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <vsm/vsm.h>

/* Seconds on the monotonic clock. */
static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Stop the bench after a library call failed, with the library's message. */
static inline void bench_die(const char *what)
{
	const vsm_error *e = vsm_error_last();

	fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
		e && e->message ? e->message : "?");
	exit(1);
}

/* Run a shell command (a peer tool); its exit status as system() gives it. */
static inline int bench_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int bench_run(const char *fmt, ...)
{
	char cmd[16384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* xorshift64: fast, and the same bytes on every run for the same seed. */
static inline uint64_t bench_next(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* Fill @buf (@len a multiple of 8) with incompressible bytes. */
static inline void bench_fill_random(uint64_t *state, void *buf, size_t len)
{
	uint64_t *p = buf;
	size_t i;

	for (i = 0; i < len / 8; i++)
		p[i] = bench_next(state);
}

/* The file's length (0 when it does not exist). */
static inline uint64_t bench_file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of @n samples (sorts @v). */
static inline double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return v[n / 2];
}

#endif /* VSM_BENCH_UTIL_H */
