/*
 * bench_checkpoint: checkpoints against their peers in one run. Not a
 * test: nothing here asserts a timing.
 *
 * usage: bench_checkpoint [--dir DIR] [--reps N] [--copy-reps N] [--layer MiB]
 *
 * Rows:
 *  checkpoint create, 4 x 100 GiB (sparse) and 4 x 1 GiB qcow2 devices:
 *      median latency of vsm_checkpoint_create (no state blob) over N
 *      checkpoints of one container each, the two containers taking turns;
 *      it must not grow with the size.
 *  delete-merge of a 1 GiB layer: a base layer and its child both hold
 *      1 GiB of (different) data, so either direction copies 1 GiB;
 *      vsm_checkpoint_delete of the base's checkpoint vs `qemu-img commit`
 *      of copies of the very same two files. Both end flushed.
 *  export / import of a 1 GiB layer: vsm_bundle_export of a checkpoint
 *      whose layer holds 1 GiB, vsm_bundle_import of that bundle into an
 *      empty datastore; next to `qemu-img convert -O qcow2` of the same
 *      layer file (which reads and writes it once, as export and import
 *      each do).
 * The copy rows are the median of --copy-reps fresh setups (libvsm and
 * qemu-img take turns going first). `sync` runs (untimed) before every
 * timed step.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
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

static const char *dir = "/tmp";
static char root[4096];
static int reps = 9, big_reps = 3;
static uint64_t layer_mib = 1024;

static vsm_container *make(vsm_ctx *ctx, const char *name, int n, uint64_t size)
{
	vsm_device_spec specs[4];
	const vsm_device_spec *ptrs[4];
	vsm_container_opts o = VSM_CONTAINER_OPTS_INIT;
	static const char *names[] = { "d0", "d1", "d2", "d3" };
	vsm_container *c = NULL;
	int i;

	for (i = 0; i < n; i++) {
		vsm_device_spec d = VSM_DEVICE_SPEC_INIT;

		d.name = names[i];
		d.size = size;
		d.format = VSM_FORMAT_QCOW2;
		specs[i] = d;
		ptrs[i] = &specs[i];
	}
	o.devices = ptrs;
	o.n_devices = (size_t)n;
	o.flags = VSM_CONTAINER_CREATE_THIN;
	if (vsm_container_create(&c, ctx, "ds1", name, &o) < 0)
		bench_die("container create");
	return c;
}

/* Fill device 0's top with @mib MiB of data that differs per @seed. */
static void fill(vsm_container *c, const char *dsdir, uint64_t mib, unsigned int seed)
{
	char path[8192];
	vsm_image *img = NULL;
	uint64_t *buf = malloc(1 << 20), x = 88172645463325252ull ^ seed, i, j;

	if (vsm_container_refresh(c) < 0)
		bench_die("refresh");
	snprintf(path, sizeof(path), "%s/%s", dsdir, vsm_device_key(vsm_container_device(c, 0)));
	if (vsm_image_open(&img, path, NULL) < 0)
		bench_die("image open");
	for (i = 0; i < mib; i++) {
		for (j = 0; j < (1 << 20) / 8; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[j] = x;
		}
		if (vsm_image_write(img, buf, 1 << 20, i << 20, 0) < 0)
			bench_die("image write");
	}
	if (vsm_image_close(img) < 0)
		bench_die("image close");
	free(buf);
}

/* Checkpoints of the two containers alternate, so neither pays for
 * warming up the catalog or the page cache. */
static void ckpt_latency(vsm_ctx *ctx, double *big, double *small)
{
	vsm_container *c[2] = { make(ctx, "big", 4, UINT64_C(100) << 30),
				make(ctx, "small", 4, UINT64_C(1) << 30) };
	double t[2][64];
	char cp[32];
	int i, k;

	for (i = 0; i < reps; i++)
		for (k = 0; k < 2; k++) {
			double t0;

			snprintf(cp, sizeof(cp), "c%d", i);
			t0 = bench_now();
			if (vsm_checkpoint_create(NULL, c[(i + k) % 2], cp, NULL) < 0)
				bench_die("checkpoint create");
			t[(i + k) % 2][i] = bench_now() - t0;
		}
	*big = bench_median(t[0], reps);
	*small = bench_median(t[1], reps);
	vsm_container_free(c[0]);
	vsm_container_free(c[1]);
}

static void row(const char *what, double ours, double theirs, uint64_t bytes)
{
	double mib = (double)bytes / 1048576.0;

	if (theirs > 0)
		printf("| %-44s | %9.1f ms | %8.0f MiB/s | %9.1f ms | %8.0f MiB/s | %5.2f |\n",
		       what, ours * 1e3, mib / ours, theirs * 1e3, mib / theirs, theirs / ours);
	else
		printf("| %-44s | %9.2f ms | %14s | %12s | %14s | %5s |\n", what, ours * 1e3, "-",
		       "-", "-", "-");
}

int main(int argc, char **argv)
{
	vsm_ctx_opts co = VSM_CTX_OPTS_INIT;
	vsm_ctx *ctx = NULL;
	vsm_container *m, *e, *imported = NULL;
	char state[4200], ds1[4200], ds2[4200], qdir[4200], uri[4300], bundle[4300];
	double t0, lat_big, lat_small, t_merge[16], t_commit[16], t_export[16], t_import[16],
	       t_convert[16];
	uint64_t bytes;
	int a, r, k;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--dir") && a + 1 < argc)
			dir = argv[++a];
		else if (!strcmp(argv[a], "--reps") && a + 1 < argc)
			reps = atoi(argv[++a]);
		else if (!strcmp(argv[a], "--copy-reps") && a + 1 < argc)
			big_reps = atoi(argv[++a]);
		else if (!strcmp(argv[a], "--layer") && a + 1 < argc)
			layer_mib = strtoull(argv[++a], NULL, 10);
		else {
			fprintf(stderr, "usage: bench_checkpoint [--dir DIR] [--reps N] [--copy-reps N] "
				"[--layer MiB]\n");
			return 2;
		}
	}
	if (reps < 1 || reps > 64)
		reps = 5;
	if (big_reps < 1 || big_reps > 16)
		big_reps = 3;
	bytes = layer_mib << 20;
	snprintf(root, sizeof(root), "%s/bench-ckpt.XXXXXX", dir);
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(state, sizeof(state), "%s/state", root);
	snprintf(ds1, sizeof(ds1), "%s/ds1", root);
	snprintf(ds2, sizeof(ds2), "%s/ds2", root);
	snprintf(qdir, sizeof(qdir), "%s/qemu", root);
	mkdir(ds1, 0755);
	mkdir(ds2, 0755);
	mkdir(qdir, 0755);
	co.state_dir = state;
	if (vsm_ctx_open(&ctx, &co) < 0)
		bench_die("ctx open");
	snprintf(uri, sizeof(uri), "file://%s", ds1);
	if (vsm_datastore_add(ctx, "ds1", uri, 0) < 0)
		bench_die("datastore add");
	snprintf(uri, sizeof(uri), "file://%s", ds2);
	if (vsm_datastore_add(ctx, "ds2", uri, 0) < 0)
		bench_die("datastore add");

	ckpt_latency(ctx, &lat_big, &lat_small);

	for (r = 0; r < big_reps; r++) {
		char name[32];

		/* Merge: base and child hold layer_mib MiB each. */
		snprintf(name, sizeof(name), "merge%d", r);
		m = make(ctx, name, 1, bytes);
		fill(m, ds1, layer_mib, 1);
		if (vsm_checkpoint_create(NULL, m, "base", NULL) < 0)
			bench_die("checkpoint");
		fill(m, ds1, layer_mib, 2);
		if (vsm_checkpoint_create(NULL, m, "child", NULL) < 0)
			bench_die("checkpoint");
		{
			vsm_checkpoint *b = NULL, *c = NULL;

			if (vsm_checkpoint_lookup(&b, m, "base") < 0 ||
			    vsm_checkpoint_lookup(&c, m, "child") < 0)
				bench_die("lookup");
			bench_run("cp --sparse=always '%s/%s' '%s/base.qcow2' && cp --sparse=always '%s/%s' "
			    "'%s/over.qcow2' && qemu-img rebase -u -F qcow2 -b base.qcow2 "
			    "'%s/over.qcow2'", ds1, vsm_checkpoint_layer_key(b, 0), qdir, ds1,
			    vsm_checkpoint_layer_key(c, 0), qdir, qdir);
			vsm_checkpoint_free(b);
			vsm_checkpoint_free(c);
		}
		/* Alternate who goes first. */
		for (k = 0; k < 2; k++) {
			bench_run("sync");
			t0 = bench_now();
			if ((k + r) % 2 == 0) {
				if (vsm_checkpoint_delete(m, "base", 0) < 0)
					bench_die("checkpoint delete");
				t_merge[r] = bench_now() - t0;
			} else {
				if (bench_run("cd '%s' && qemu-img commit -q -t writeback over.qcow2", qdir) != 0)
					bench_die("qemu-img commit");
				t_commit[r] = bench_now() - t0;
			}
		}
		if (vsm_container_destroy(m, 0) < 0)
			bench_die("destroy");
		vsm_container_free(m);
		bench_run("rm -f '%s'/*.qcow2", qdir);

		/* Export / import of one layer of layer_mib MiB. */
		snprintf(name, sizeof(name), "exp%d", r);
		e = make(ctx, name, 1, bytes);
		fill(e, ds1, layer_mib, 3);
		if (vsm_checkpoint_create(NULL, e, "c1", NULL) < 0)
			bench_die("checkpoint");
		snprintf(bundle, sizeof(bundle), "%s/exp.bundle", root);
		bench_run("sync");
		t0 = bench_now();
		if (vsm_bundle_export(e, "c1", bundle, NULL) < 0)
			bench_die("export");
		t_export[r] = bench_now() - t0;
		bench_run("sync");
		t0 = bench_now();
		if (vsm_bundle_import(&imported, ctx, bundle, "ds2", NULL, NULL) < 0)
			bench_die("import");
		t_import[r] = bench_now() - t0;
		{
			vsm_checkpoint *c = NULL;

			if (vsm_checkpoint_lookup(&c, e, "c1") < 0)
				bench_die("lookup");
			bench_run("sync");
			t0 = bench_now();
			if (bench_run("qemu-img convert -t writeback -O qcow2 '%s/%s' '%s/conv.qcow2'", ds1,
				vsm_checkpoint_layer_key(c, 0), qdir) != 0)
				bench_die("qemu-img convert");
			t_convert[r] = bench_now() - t0;
			vsm_checkpoint_free(c);
		}
		if (vsm_container_destroy(imported, 0) < 0 || vsm_container_destroy(e, 0) < 0)
			bench_die("destroy");
		vsm_container_free(imported);
		vsm_container_free(e);
		imported = NULL;
		bench_run("rm -f '%s' '%s'/*.qcow2", bundle, qdir);
	}

	printf("\nbench_checkpoint: %s, median of %d (latencies) and %d (copies), layer %" PRIu64
	       " MiB\n\n", dir, reps, big_reps, layer_mib);
	printf("| %-44s | %12s | %14s | %12s | %14s | %5s |\n", "operation", "libvsm",
	       "libvsm rate", "qemu-img", "qemu-img rate", "ratio");
	printf("|%s|%s|%s|%s|%s|%s|\n", "----------------------------------------------",
	       "--------------", "----------------", "--------------", "----------------", "-------");
	row("checkpoint create, 4 x 100 GiB devices", lat_big, 0, 0);
	row("checkpoint create, 4 x 1 GiB devices", lat_small, 0, 0);
	row("delete-merge 1 GiB layer vs qemu-img commit", bench_median(t_merge, big_reps),
	    bench_median(t_commit, big_reps), bytes);
	row("export 1 GiB layer vs qemu-img convert", bench_median(t_export, big_reps),
	    bench_median(t_convert, big_reps), bytes);
	row("import 1 GiB layer vs qemu-img convert", bench_median(t_import, big_reps),
	    bench_median(t_convert, big_reps), bytes);
	printf("\nratio = qemu-img time / libvsm time (> 1: libvsm is faster)\n");

	vsm_ctx_free(ctx);
	bench_run("rm -rf '%s'", root);
	return 0;
}
