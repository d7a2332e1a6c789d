/*
 * Placement phase 2 benchmark: the time of one host decision
 * (vsm_place_host_for on one datastore) with many hosts and datastores
 * registered in the catalog. Setup: DATASTORES file datastores under
 * DIR, HOSTS hosts each linked to LINKS datastores (host i to datastores
 * i, i+1, ... modulo DATASTORES) and tagged rack=rN, and on the measured
 * datastore one container attached to each of its hosts but the last
 * (which makes them alive: this state directory renews their heartbeats
 * there), so that the counts and the liveness are real; and CONTAINERS
 * more on the next datastores (50 each), attached to their hosts, so that
 * the record cache the counts come from is not tiny. Not a test.
 *
 * Run: build/bench/placement-hosts/bench_place_host [--dir DIR]
 *        [--hosts N] [--datastores M] [--links K] [--rounds R] [--containers C]
 * Prints the setup time, then mean and p99 per decision for the default
 * request and for one with a tag and an anti-affinity rule, and the first
 * decision of a fresh context (which opens the datastore).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vsm/vsm.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	const vsm_error *e = vsm_error_last();

	fprintf(stderr, "bench_place_host: %s: %s\n", what, e && e->message ? e->message : "?");
	exit(1);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int by_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void measure(vsm_ctx *ctx, const char *ds, const vsm_host_request *req, int rounds,
		    const char *label)
{
	double *t = calloc((size_t)rounds, sizeof(*t)), sum = 0;
	size_t kept = 0, rej = 0;
	int i;

	if (!t)
		die("out of memory");
	for (i = 0; i < rounds; i++) {
		vsm_placement *p = NULL;
		double t0 = now_ms();

		if (vsm_place_host_for(&p, ctx, &ds, 1, req) < 0)
			die("vsm_place_host_for");
		t[i] = now_ms() - t0;
		sum += t[i];
		kept = vsm_placement_count(p);
		rej = vsm_placement_rejected_count(p);
		vsm_placement_free(p);
	}
	qsort(t, (size_t)rounds, sizeof(*t), by_double);
	printf("%-34s mean %.3f ms  p50 %.3f ms  p99 %.3f ms  max %.3f ms  (%d decisions; "
	       "%zu candidates, %zu rejected)\n", label, sum / rounds, t[rounds / 2],
	       t[(size_t)((rounds - 1) * 0.99)], t[rounds - 1], rounds, kept, rej);
	free(t);
}

static void run_all(vsm_ctx *ctx, int dss, int rounds)
{
	vsm_host_request req = VSM_HOST_REQUEST_INIT;
	const char *tags[] = { "rack" }, *anti[] = { "c0" };
	char far[32], label[64];

	measure(ctx, "ds0000", NULL, rounds, "default request (spread)");
	req.tags = tags;
	req.n_tags = 1;
	req.anti_affinity = anti;
	req.n_anti_affinity = 1;
	req.weigher = "pack";
	measure(ctx, "ds0000", &req, rounds, "tag + anti-affinity + pack");
	/* A datastore far from those with containers. */
	snprintf(far, sizeof(far), "ds%04d", dss - 1);
	snprintf(label, sizeof(label), "default, %s", far);
	measure(ctx, far, NULL, rounds, label);
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	int hosts = 10000, dss = 1000, links = 3, rounds = 200, more = 2000, i, k;
	vsm_ctx_opts opts = VSM_CTX_OPTS_INIT;
	char tmpl[] = "/tmp/vsm-bench-place-host.XXXXXX", *state = NULL, name[64], uri[4200];
	vsm_ctx *ctx = NULL;
	double t0, t_ds, t_hosts, t_cont;
	int attached = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--hosts") && i + 1 < argc)
			hosts = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--datastores") && i + 1 < argc)
			dss = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--links") && i + 1 < argc)
			links = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--containers") && i + 1 < argc)
			more = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--dir DIR] [--hosts N] [--datastores M] "
				"[--links K] [--rounds R] [--containers C]\n", argv[0]);
			return 2;
		}
	}
	if (hosts < 1 || dss < 1 || links < 1 || links > dss || rounds < 1 || more < 0 ||
	    more / 50 + 2 > dss) {
		fprintf(stderr, "bench_place_host: bad sizes\n");
		return 2;
	}
	if (!dir && !(dir = mkdtemp(tmpl))) {
		perror("mkdtemp");
		return 1;
	}
	if (asprintf(&state, "%s/state", dir) < 0)
		return 1;
	mkdir(state, 0700);
	opts.state_dir = state;
	if (vsm_ctx_open(&ctx, &opts) < 0)
		die("vsm_ctx_open");

	t0 = now_ms();
	for (i = 0; i < dss; i++) {
		snprintf(name, sizeof(name), "ds%04d", i);
		snprintf(uri, sizeof(uri), "file://%s/%s", dir, name);
		if (vsm_datastore_add(ctx, name, uri, VSM_DATASTORE_ADD_CREATE) < 0)
			die("vsm_datastore_add");
	}
	t_ds = now_ms() - t0;
	t0 = now_ms();
	for (i = 0; i < hosts; i++) {
		char tag[32];

		snprintf(name, sizeof(name), "h%05d", i);
		snprintf(tag, sizeof(tag), "rack=r%d", i % 40);
		if (vsm_host_add(ctx, name, NULL) < 0 || vsm_host_tag_add(ctx, name, tag) < 0)
			die("vsm_host_add");
		for (k = 0; k < links; k++) {
			char ds[32];

			snprintf(ds, sizeof(ds), "ds%04d", (i + k) % dss);
			if (vsm_host_link(ctx, name, ds, 0) < 0)
				die("vsm_host_link");
		}
	}
	t_hosts = now_ms() - t0;
	/* ds0000's hosts: i + k = 0 (mod dss). One container each but the last. */
	t0 = now_ms();
	{
		int last = -1;

		for (i = 0; i < hosts; i++)
			for (k = 0; k < links; k++)
				if ((i + k) % dss == 0)
					last = i;
		for (i = 0; i < hosts; i++) {
			for (k = 0; k < links; k++) {
				vsm_container_opts co = VSM_CONTAINER_OPTS_INIT;
				vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
				const vsm_device_spec *dp[] = { &d };
				vsm_container *c = NULL;
				char hn[32];

				if ((i + k) % dss != 0 || i == last)
					continue;
				d.name = "d0";
				d.size = 1 << 20;
				co.devices = dp;
				co.n_devices = 1;
				co.flags = VSM_CONTAINER_CREATE_THIN;
				snprintf(name, sizeof(name), "c%d", attached);
				snprintf(hn, sizeof(hn), "h%05d", i);
				if (vsm_container_create(&c, ctx, "ds0000", name, &co) < 0)
					die("vsm_container_create");
				if (vsm_attach(c, hn, 0) < 0)
					die("vsm_attach");
				vsm_container_free(c);
				attached++;
			}
		}
	}
	/* More containers on ds0001, ds0002, ...: 50 each, attached in turn
	 * to the hosts linked there (host i links ds (i + k) % dss). */
	for (i = 0; i < more; i++) {
		vsm_container_opts co = VSM_CONTAINER_OPTS_INIT;
		vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
		const vsm_device_spec *dp[] = { &d };
		vsm_container *c = NULL;
		int dsi = 1 + i / 50, hi = ((dsi - (i % links)) % dss + dss) % dss;
		char hn[32], ds[32];

		/* Hosts linked to dsi: dsi - k + j*dss for j >= 0; take j = i % 3. */
		hi += dss * ((i / links) % (hosts / dss > 0 ? hosts / dss : 1));
		if (hi >= hosts)
			hi %= dss;
		d.name = "d0";
		d.size = 1 << 20;
		co.devices = dp;
		co.n_devices = 1;
		co.flags = VSM_CONTAINER_CREATE_THIN;
		snprintf(name, sizeof(name), "m%d", i);
		snprintf(hn, sizeof(hn), "h%05d", hi);
		snprintf(ds, sizeof(ds), "ds%04d", dsi);
		if (vsm_container_create(&c, ctx, ds, name, &co) < 0)
			die("vsm_container_create (more)");
		if (vsm_attach(c, hn, 0) < 0)
			die("vsm_attach (more)");
		vsm_container_free(c);
		attached++;
	}
	t_cont = now_ms() - t0;
	printf("setup: %d datastores %.1f s; %d hosts (tagged, %d links each) %.1f s; "
	       "%d containers attached (ds0000 and %d more datastores) %.1f s\n", dss, t_ds / 1e3, hosts, links,
	       t_hosts / 1e3, attached, (more + 49) / 50, t_cont / 1e3);

	printf("-- in the setup context (all %d datastores open: its renewal pass reads every "
	       "lease area, under the lease lock phase 2 also takes):\n", dss);
	run_all(ctx, dss, rounds);
	vsm_ctx_free(ctx);
	/* A fresh context: its first decision opens the datastore; then only
	 * the datastores decided on are open. */
	if (vsm_ctx_open(&ctx, &opts) < 0)
		die("vsm_ctx_open");
	{
		vsm_placement *p = NULL;
		const char *ds = "ds0000";
		double t = now_ms();

		if (vsm_place_host_for(&p, ctx, &ds, 1, NULL) < 0)
			die("vsm_place_host_for (fresh)");
		printf("-- fresh context: first decision %.3f ms (%zu candidates)\n",
		       now_ms() - t, vsm_placement_count(p));
		vsm_placement_free(p);
	}
	run_all(ctx, dss, rounds);
	vsm_ctx_free(ctx);
	free(state);
	/* Our own temp directory goes; a --dir given stays. */
	if (dir == tmpl)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
