/*
 * How the control plane scales with the number of containers on one
 * datastore, through the public API only: per-create time over windows of
 * 1,000 as the datastore fills (the ratio of the last window to the first
 * says whether creates stay flat), lookup by name, a listing of every
 * container in process, a listing by a fresh process (from the catalog
 * another state directory already holds, and from nothing), and creates
 * per second from several processes as hosts at once.
 *
 * Times are whole calls as a caller waits for them; medians of windows.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_store: %s: %d %s\n", what, rc,
		vsm_error_last() ? vsm_error_last()->message : "");
	exit(1);
}

static vsm_ctx *ctx_on(const char *state, const char *uri, bool add)
{
	vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
	vsm_ctx *ctx = NULL;
	int rc;

	mkdir(state, 0755);
	o.state_dir = state;
	if ((rc = vsm_ctx_open(&ctx, &o)) < 0)
		die("open", rc);
	if (add && (rc = vsm_datastore_add(ctx, "ds", uri, VSM_DATASTORE_ADD_CREATE)) < 0)
		die("datastore add", rc);
	return ctx;
}

static int create(vsm_ctx *ctx, const char *name)
{
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *devs[1] = { &d };
	vsm_container_opts co = VSM_CONTAINER_OPTS_INIT;

	d.name = "root";
	d.size = 1 << 20;
	co.devices = devs;
	co.n_devices = 1;
	co.flags = VSM_CONTAINER_CREATE_THIN;
	co.state_size = 4096;
	return vsm_container_create(NULL, ctx, "ds", name, &co);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return n ? v[n / 2] : 0;
}

static double list_all(vsm_ctx *ctx, size_t *count)
{
	vsm_container **list = NULL;
	double t0 = now_s(), t;
	int rc;

	if ((rc = vsm_container_list(&list, count, ctx, "ds")) < 0)
		die("list", rc);
	t = now_s() - t0;
	vsm_container_list_free(list, *count);
	return t;
}

int main(int argc, char **argv)
{
	const char *dir = "/var/tmp";
	int count = 100000, procs = 2, per_proc = 500, i, a;
	char root[4096], state[4200], ds[4200], uri[4300], name[64];
	double *win, first = 0, last = 0, t0;
	size_t n = 0;
	vsm_ctx *ctx;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--dir") && a + 1 < argc)
			dir = argv[++a];
		else if (!strcmp(argv[a], "--count") && a + 1 < argc)
			count = atoi(argv[++a]);
		else if (!strcmp(argv[a], "--procs") && a + 1 < argc)
			procs = atoi(argv[++a]);
		else {
			fprintf(stderr, "usage: bench_store [--dir DIR] [--count N] [--procs P]\n");
			return 2;
		}
	}
	if (count < 2000)
		count = 2000;
	snprintf(root, sizeof(root), "%s/bench-store.XXXXXX", dir);
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(state, sizeof(state), "%s/state", root);
	snprintf(ds, sizeof(ds), "%s/ds", root);
	snprintf(uri, sizeof(uri), "file://%s", ds);
	ctx = ctx_on(state, uri, true);
	printf("bench_store: %d containers (thin, 1 MiB device + 4 KiB state) on %s\n",
	       count, ds);
	/* Per-create time, window by window of 1,000. */
	win = calloc(1000, sizeof(*win));
	for (i = 0; i < count; i++) {
		double t;
		int rc;

		snprintf(name, sizeof(name), "c%06d", i);
		t0 = now_s();
		if ((rc = create(ctx, name)) < 0)
			die("create", rc);
		t = now_s() - t0;
		win[i % 1000] = t;
		if (i % 1000 == 999) {
			double m = median(win, 1000);

			if (i == 999)
				first = m;
			last = m;
			if ((i + 1) % 10000 == 0 || i == 999)
				printf("  containers %6d: create median %.3f ms\n", i + 1, m * 1e3);
			fflush(stdout);
		}
	}
	printf("create: median %.3f ms at 1k, %.3f ms at %dk: ratio %.2f (goal <= 1.5)\n",
	       first * 1e3, last * 1e3, count / 1000, last / first);
	/* Lookups by name, spread over the whole datastore. */
	for (i = 0; i < 1000; i++) {
		vsm_container *c = NULL;
		int rc;

		snprintf(name, sizeof(name), "c%06d", (int)((long)i * 7919 % count));
		t0 = now_s();
		if ((rc = vsm_container_lookup(&c, ctx, "ds", name)) < 0)
			die("lookup", rc);
		win[i] = now_s() - t0;
		vsm_container_free(c);
	}
	printf("lookup by name at %dk: median %.3f ms\n", count / 1000, median(win, 1000) * 1e3);
	{
		double t = list_all(ctx, &n);

		printf("list in process: %zu containers in %.1f ms (%.1f ms per 10,000; goal <= 20)\n",
		       n, t * 1e3, t * 1e3 * 10000 / (double)n);
	}
	vsm_ctx_free(ctx);
	/* A new process of the same host: the catalog holds the rows. */
	ctx = ctx_on(state, uri, false);
	t0 = now_s();
	list_all(ctx, &n);
	printf("list by a new process of this host (from its catalog): %zu in %.2f s\n", n,
	       now_s() - t0);
	vsm_ctx_free(ctx);
	/* A host that never saw the datastore reads every slot. */
	{
		char fresh[4300];

		snprintf(fresh, sizeof(fresh), "%s/fresh", root);
		t0 = now_s();
		ctx = ctx_on(fresh, uri, true);
		list_all(ctx, &n);
		printf("list by a new host (reads every record): %zu in %.2f s\n", n,
		       now_s() - t0);
		vsm_ctx_free(ctx);
	}
	/* Several processes as hosts creating at once. Each first reads the
	 * datastore (a new host reads every record), then all start together
	 * and the clock runs from the start to the last one's end. */
	{
		pid_t pids[64];
		int p, ready[2], go[2];
		char c;
		double t;

		if (procs > 64)
			procs = 64;
		if (pipe(ready) < 0 || pipe(go) < 0)
			die("pipe", -1);
		for (p = 0; p < procs; p++) {
			if ((pids[p] = fork()) == 0) {
				char st[4300];
				vsm_ctx *c2;

				snprintf(st, sizeof(st), "%s/host%d", root, p);
				c2 = ctx_on(st, uri, true);
				list_all(c2, &n);
				if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
					_exit(1);
				for (i = 0; i < per_proc; i++) {
					snprintf(name, sizeof(name), "h%d-%d", p, i);
					if (create(c2, name) < 0)
						_exit(1);
				}
				vsm_ctx_free(c2);
				_exit(0);
			}
		}
		for (p = 0; p < procs; p++)
			if (read(ready[0], &c, 1) != 1)
				die("ready", -1);
		t0 = now_s();
		for (p = 0; p < procs; p++)
			if (write(go[1], "g", 1) != 1)
				die("go", -1);
		for (p = 0; p < procs; p++) {
			int st = 0;

			waitpid(pids[p], &st, 0);
			if (!WIFEXITED(st) || WEXITSTATUS(st))
				die("concurrent create", -1);
		}
		t = now_s() - t0;
		ctx = ctx_on(state, uri, false);
		list_all(ctx, &n);
		vsm_ctx_free(ctx);
		printf("%d processes as hosts, %d creates each: %.0f creates/s together "
		       "(one process alone: %.0f/s); listed %zu (expected %d): lost %d\n", procs,
		       per_proc, procs * per_proc / t, 1 / last, n, count + procs * per_proc,
		       count + procs * per_proc - (int)n);
	}
	free(win);
	printf("bench_store: data left in %s (remove it with rm -rf)\n", root);
	return 0;
}
