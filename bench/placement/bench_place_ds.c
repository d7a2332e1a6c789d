/*
 * bench_place_ds: how long phase 1 takes to choose a datastore among
 * many, from the figures the catalog recorded (VSM_PLACE_CACHED, the
 * goal: <= 5 ms a decision with 1,000 datastores), next to its peer, the
 * live decision that asks every datastore; and how many placements per
 * second (rank, reserve under the metadata lock, abort) 8 processes of one
 * state directory make together. Prints figures and ratios; no assertion.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vsm/vsm.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_place_ds: %s: %s\n", what, vsm_error_last()->message);
	exit(1);
}

static vsm_ctx *open_ctx(const char *state)
{
	vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
	vsm_ctx *ctx = NULL;

	o.state_dir = state;
	if (vsm_ctx_open(&ctx, &o) < 0)
		die("vsm_ctx_open");
	return ctx;
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	int count = 1000, decisions = 200, procs = 8, rounds = 50, i, k;
	char base[4096], state[4200], path[4300], uri[4400], cmd[4400];
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *dp[1] = { &d };
	vsm_place_request req = VSM_PLACE_REQUEST_INIT;
	vsm_placement *p = NULL;
	double t0, setup, live, *lat, sum = 0, tp;
	vsm_ctx *ctx;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--decisions") && i + 1 < argc)
			decisions = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--procs") && i + 1 < argc)
			procs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_place_ds [--dir DIR] [--count N] "
				"[--decisions N] [--procs P] [--rounds N]\n");
			return 2;
		}
	}
	if (count < 1 || decisions < 1 || procs < 1 || rounds < 1)
		return 2;
	snprintf(base, sizeof(base), "%s/bench-place-XXXXXX",
		 dir ? dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(state, sizeof(state), "%s/state", base);
	ctx = open_ctx(state);
	d.name = "root";
	d.size = UINT64_C(1) << 20;
	req.devices = dp;
	req.n_devices = 1;

	/* Setup: each datastore add formats a metadata file. */
	t0 = now_s();
	for (i = 0; i < count; i++) {
		char name[32];

		snprintf(name, sizeof(name), "ds%04d", i);
		snprintf(path, sizeof(path), "%s/%s", base, name);
		snprintf(uri, sizeof(uri), "file://%s", path);
		if (vsm_datastore_add(ctx, name, uri, VSM_DATASTORE_ADD_CREATE) < 0)
			die("vsm_datastore_add");
	}
	setup = now_s() - t0;
	printf("setup: %d file datastores added in %.2f s (%.2f ms each)\n", count, setup,
	       setup * 1e3 / count);

	/* The peer: a live decision asks every datastore (and records the
	 * figures the cached ones read). A fresh context opens them all. */
	vsm_ctx_free(ctx);
	ctx = open_ctx(state);
	t0 = now_s();
	if (vsm_place_datastore(&p, ctx, &req) < 0)
		die("live vsm_place_datastore");
	live = now_s() - t0;
	vsm_placement_free(p);
	t0 = now_s();
	if (vsm_place_datastore(&p, ctx, &req) < 0)
		die("live vsm_place_datastore");
	double live2 = now_s() - t0;
	vsm_placement_free(p);
	printf("live decision, %d datastores: first %.2f ms (opens them), then %.2f ms\n",
	       count, live * 1e3, live2 * 1e3);

	req.flags = VSM_PLACE_CACHED;
	if (!(lat = calloc((size_t)decisions, sizeof(*lat))))
		return 1;
	for (i = 0; i < decisions; i++) {
		t0 = now_s();
		if (vsm_place_datastore(&p, ctx, &req) < 0)
			die("cached vsm_place_datastore");
		lat[i] = now_s() - t0;
		sum += lat[i];
		if (vsm_placement_count(p) != (size_t)count) {
			fprintf(stderr, "bench_place_ds: %zu of %d datastores ranked\n",
				vsm_placement_count(p), count);
			return 1;
		}
		vsm_placement_free(p);
	}
	qsort(lat, (size_t)decisions, sizeof(*lat), cmp_d);
	printf("cached decision (VSM_PLACE_CACHED), %d datastores, %d decisions: mean %.3f ms, "
	       "p50 %.3f ms, p99 %.3f ms (goal <= 5 ms)\n", count, decisions,
	       sum * 1e3 / decisions, lat[decisions / 2] * 1e3,
	       lat[(size_t)(decisions * 0.99) < (size_t)decisions ?
		   (size_t)(decisions * 0.99) : (size_t)decisions - 1] * 1e3);
	printf("ratio live/cached (steady): %.1fx\n", live2 / (sum / decisions));
	vsm_ctx_free(ctx);

	/* Throughput: @procs processes, each @rounds place+reserve+abort. */
	t0 = now_s();
	for (k = 0; k < procs; k++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			vsm_ctx *c = open_ctx(state);

			for (i = 0; i < rounds; i++) {
				vsm_reservation *r = NULL;
				char name[32];

				snprintf(name, sizeof(name), "b%d-%d", k, i);
				if (vsm_place_reserve(&r, c, name, &req) < 0 ||
				    vsm_reservation_abort(r) < 0) {
					fprintf(stderr, "placer %d: %s\n", k, vsm_error_last()->message);
					_exit(1);
				}
				vsm_reservation_free(r);
			}
			vsm_ctx_free(c);
			_exit(0);
		}
	}
	for (k = 0; k < procs; k++) {
		int st = 0;

		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "bench_place_ds: a placer failed\n");
			return 1;
		}
	}
	tp = now_s() - t0;
	printf("%d concurrent placers x %d place+reserve+abort: %.2f s, %.1f placements/s\n",
	       procs, rounds, tp, procs * rounds / tp);
	free(lat);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_place_ds: could not remove %s\n", base);
	return 0;
}
