/*
 * iSCSI benchmark: one LUN, measured through libvsm (the core's bdev over
 * the iSCSI backend's v2 device: QD1 from one thread with the synchronous
 * calls, deeper queues from ONE submitting thread through the
 * asynchronous batch API, completions resubmitting) and through its
 * peers in the same run: libiscsi's own iscsi-perf (reads only; it has
 * no write mode) and a plain libiscsi async loop written here the way
 * iscsi-perf is (for writes, and reads as a cross-check). Prints IOPS,
 * MB/s and the ratios. Not a test: it asserts nothing about speed.
 *
 * Each workload runs REPS times, the three tools taking turns, and the
 * median of each is printed, so that a neighbour's burst of CPU use on a
 * small machine does not decide a ratio.
 *
 * usage: bench-iscsi DATASTORE-URI LUN-URL SECONDS [REPS]
 * ($VSM_BENCH_ONLY=TEXT runs only the workloads whose name contains TEXT)
 *   DATASTORE-URI  iscsi://HOST:PORT/IQN?meta-lun=M (pool mode)
 *   LUN-URL        iscsi://HOST:PORT/IQN/N, the data LUN the device lands on
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include <stdatomic.h>

#include "vsm/backend.h"
#include "bdev.h"
#include "backends/iscsi/iscsi-backend.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

typedef struct {
	bool write, random;
	size_t io;
	int qd;
	double secs;
} job;

/* ------------------------------------------------------------- libvsm */

typedef struct {
	vsm_bdev *dev;
	uint64_t size;
	const job *j;
	double end;
	uint64_t seq_next; /* shared cursor for sequential jobs */
	pthread_mutex_t lock;
	uint64_t ios;
	int err;
} vsm_run;

static void *vsm_worker(void *p)
{
	vsm_run *r = p;
	uint8_t *buf = aligned_alloc(4096, r->j->io);
	uint64_t seed = (uint64_t)(uintptr_t)&buf ^ 0x9e3779b97f4a7c15ull, n = 0, off;
	uint64_t slots = r->size / r->j->io;

	memset(buf, 0x5a, r->j->io);
	while (now_s() < r->end) {
		if (r->j->random) {
			off = rnd(&seed) % slots * r->j->io;
		} else {
			pthread_mutex_lock(&r->lock);
			off = r->seq_next;
			r->seq_next = (r->seq_next + r->j->io) % (slots * r->j->io);
			pthread_mutex_unlock(&r->lock);
		}
		if ((r->j->write ? vsm_bdev_write(r->dev, buf, r->j->io, off) :
		     vsm_bdev_read(r->dev, buf, r->j->io, off)) < 0) {
			const vsm_error *e = vsm_error_last();

			fprintf(stderr, "libvsm I/O failed: %s\n", e ? e->message : "?");
			r->err = 1;
			break;
		}
		n++;
	}
	pthread_mutex_lock(&r->lock);
	r->ios += n;
	pthread_mutex_unlock(&r->lock);
	free(buf);
	return NULL;
}

/* Queue depth from one thread: it submits @qd requests in one batch and
 * waits; each completion (on the backend's event thread) submits the
 * next request in its place until the time is up. */
typedef struct async_run async_run;

typedef struct {
	vsm_bdev_req req;
	async_run *r;
} slot;

struct async_run {
	vsm_bdev *dev;
	uint64_t slots;
	const job *j;
	double end;
	atomic_uint_fast64_t ios;
	atomic_uint_fast64_t pos;
	atomic_int in_flight;
	atomic_int err;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t seed;
};

static uint64_t next_off(async_run *r)
{
	/* Completions of one session arrive on one thread at a time, so the
	 * seed needs no lock; the cursor of sequential jobs is atomic. */
	if (r->j->random)
		return rnd(&r->seed) % r->slots * r->j->io;
	return atomic_fetch_add(&r->pos, 1) % r->slots * r->j->io;
}

static void async_done(vsm_bdev_req *q)
{
	slot *s = q->payload;
	async_run *r = s->r;
	vsm_bdev_req *one = q;

	if (q->result < 0) {
		const vsm_error *e = vsm_error_last();

		if (!atomic_exchange(&r->err, 1))
			fprintf(stderr, "libvsm async I/O failed: %s\n", e ? e->message : "?");
	} else {
		atomic_fetch_add(&r->ios, 1);
		if (now_s() < r->end) {
			q->off = next_off(r);
			if (vsm_bdev_submit(r->dev, &one, 1) == 0)
				return;
			atomic_store(&r->err, 1);
		}
	}
	if (atomic_fetch_sub(&r->in_flight, 1) == 1) {
		pthread_mutex_lock(&r->lock);
		pthread_cond_signal(&r->cond);
		pthread_mutex_unlock(&r->lock);
	}
}

static double run_vsm_async(vsm_bdev *dev, uint64_t size, const job *j)
{
	async_run r;
	slot *sl = calloc((size_t)j->qd, sizeof(*sl));
	vsm_bdev_req **reqs = calloc((size_t)j->qd, sizeof(*reqs));
	uint8_t *bufs = aligned_alloc(4096, (size_t)j->qd * j->io);
	double t0;
	int i;

	memset(&r, 0, sizeof(r));
	r.dev = dev;
	r.slots = size / j->io;
	r.j = j;
	r.seed = 0x9e3779b97f4a7c15ull;
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	memset(bufs, 0x5a, (size_t)j->qd * j->io);
	atomic_store(&r.in_flight, j->qd);
	for (i = 0; i < j->qd; i++) {
		sl[i].r = &r;
		sl[i].req.op = j->write ? VSM_BDEV_OP_WRITE : VSM_BDEV_OP_READ;
		sl[i].req.buf = bufs + (size_t)i * j->io;
		sl[i].req.len = j->io;
		sl[i].req.off = next_off(&r);
		sl[i].req.done = async_done;
		sl[i].req.payload = &sl[i];
		reqs[i] = &sl[i].req;
	}
	t0 = now_s();
	r.end = t0 + j->secs;
	if (vsm_bdev_submit(dev, reqs, (size_t)j->qd) < 0) {
		const vsm_error *e = vsm_error_last();

		fprintf(stderr, "libvsm submit failed: %s\n", e ? e->message : "?");
		exit(1);
	}
	pthread_mutex_lock(&r.lock);
	while (atomic_load(&r.in_flight) > 0)
		pthread_cond_wait(&r.cond, &r.lock);
	pthread_mutex_unlock(&r.lock);
	t0 = (double)atomic_load(&r.ios) / (now_s() - t0);
	if (atomic_load(&r.err))
		exit(1);
	pthread_mutex_destroy(&r.lock);
	pthread_cond_destroy(&r.cond);
	free(bufs);
	free(reqs);
	free(sl);
	return t0;
}

/* Queue depth from @j->qd threads calling the synchronous API
 * ($VSM_BENCH_THREADS, the 0.1 way), or from one thread when qd is 1. */
static double run_vsm(vsm_bdev *dev, uint64_t size, const job *j)
{
	vsm_run r = { dev, size, j, 0, 0, PTHREAD_MUTEX_INITIALIZER, 0, 0 };
	pthread_t th[64];
	double t0;
	int i;

	t0 = now_s();
	r.end = t0 + j->secs;
	for (i = 0; i < j->qd; i++)
		pthread_create(&th[i], NULL, vsm_worker, &r);
	for (i = 0; i < j->qd; i++)
		pthread_join(th[i], NULL);
	if (r.err)
		exit(1);
	return (double)r.ios / (now_s() - t0);
}

/* ------------------------------------------------------------- plain libiscsi */

typedef struct {
	struct iscsi_context *c;
	int lun;
	uint32_t bs;
	uint64_t nblocks;
	const job *j;
	uint8_t *buf;
	uint64_t pos, seed, ios;
	int in_flight;
	bool stop, err;
} raw_run;

static void raw_submit(raw_run *r);

static void raw_cb(struct iscsi_context *c, int status, void *data, void *priv)
{
	raw_run *r = priv;

	(void)c;
	if (data)
		scsi_free_scsi_task(data);
	r->in_flight--;
	if (status != SCSI_STATUS_GOOD) {
		fprintf(stderr, "libiscsi I/O failed: %s\n", iscsi_get_error(r->c));
		r->err = true;
		return;
	}
	r->ios++;
	if (!r->stop)
		raw_submit(r);
}

static void raw_submit(raw_run *r)
{
	uint32_t nb = (uint32_t)(r->j->io / r->bs);
	uint64_t slots = r->nblocks / nb, lba;
	struct scsi_task *t;

	if (r->j->random) {
		lba = rnd(&r->seed) % slots * nb;
	} else {
		lba = r->pos;
		r->pos = (r->pos + nb) % (slots * nb);
	}
	t = r->j->write ?
	    iscsi_write16_task(r->c, r->lun, lba, r->buf, (uint32_t)r->j->io, (int)r->bs, 0, 0, 0,
			       0, 0, raw_cb, r) :
	    iscsi_read16_task(r->c, r->lun, lba, (uint32_t)r->j->io, (int)r->bs, 0, 0, 0, 0, 0,
			      raw_cb, r);
	if (!t) {
		r->err = true;
		return;
	}
	r->in_flight++;
}

static double run_raw(const char *url, const job *j)
{
	struct iscsi_context *c = iscsi_create_context("iqn.2026-01.org.libvsm:bench-peer");
	struct iscsi_url *u = iscsi_parse_full_url(c, url);
	struct scsi_task *t;
	struct scsi_readcapacity16 *rc16;
	raw_run r;
	double t0, end;
	int i;

	if (!u) {
		fprintf(stderr, "bad LUN URL %s: %s\n", url, iscsi_get_error(c));
		exit(1);
	}
	memset(&r, 0, sizeof(r));
	r.c = c;
	r.lun = u->lun;
	r.j = j;
	r.seed = 0x1234567;
	iscsi_set_targetname(c, u->target);
	iscsi_set_session_type(c, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(c, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	if (iscsi_full_connect_sync(c, u->portal, u->lun) != 0) {
		fprintf(stderr, "login to %s failed: %s\n", url, iscsi_get_error(c));
		exit(1);
	}
	iscsi_destroy_url(u);
	t = iscsi_readcapacity16_sync(c, r.lun);
	if (!t || t->status != SCSI_STATUS_GOOD || !(rc16 = scsi_datain_unmarshall(t))) {
		fprintf(stderr, "READ CAPACITY(16) failed\n");
		exit(1);
	}
	r.bs = rc16->block_length;
	r.nblocks = rc16->returned_lba + 1;
	scsi_free_scsi_task(t);
	r.buf = malloc(j->io);
	memset(r.buf, 0x5a, j->io);
	t0 = now_s();
	end = t0 + j->secs;
	for (i = 0; i < j->qd; i++)
		raw_submit(&r);
	while (r.in_flight > 0 && !r.err) {
		struct pollfd pfd = { iscsi_get_fd(c), (short)iscsi_which_events(c), 0 };

		if (now_s() >= end)
			r.stop = true;
		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			break;
		if (iscsi_service(c, pfd.revents) < 0) {
			r.err = true;
			break;
		}
	}
	if (r.err)
		exit(1);
	t0 = (double)r.ios / (now_s() - t0);
	iscsi_logout_sync(c);
	iscsi_destroy_context(c);
	free(r.buf);
	return t0;
}

/* ------------------------------------------------------------- iscsi-perf */

static double run_iscsi_perf(const char *url, const job *j, uint32_t bs)
{
	char cmd[600], line[4096], *p;
	double iops = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "iscsi-perf -m %d -b %zu -t %d %s %s 2>&1 | tr '\\r' '\\n'",
		 j->qd, j->io / bs, (int)j->secs, j->random ? "-r" : "", url);
	if (!(f = popen(cmd, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if ((p = strstr(line, "iops average ")))
			iops = atof(p + 13);
	pclose(f);
	return iops;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	static const struct { const char *name; job j; } jobs[] = {
		{ "4K random read  QD1 ", { false, true, 4096, 1, 0 } },
		{ "4K random read  QD32", { false, true, 4096, 32, 0 } },
		{ "4K random write QD1 ", { true, true, 4096, 1, 0 } },
		{ "4K random write QD32", { true, true, 4096, 32, 0 } },
		{ "1M seq read     QD1 ", { false, false, 1 << 20, 1, 0 } },
		{ "1M seq write    QD1 ", { true, false, 1 << 20, 1, 0 } },
	};
	const struct vsm_datastore_ops *ops = &vsm__iscsi_backend_ops;
	vsm_backend_open_args args = { VSM_BACKEND_OPEN_ARGS_VERSION, "bench", NULL, NULL, NULL, 0 };
	vsm_backend_device_spec spec = { VSM_BACKEND_DEVICE_SPEC_VERSION, "bench.raw", 1 << 20,
					 "raw", NULL, NULL, 0 };
	vsm_backend_ds *ds = NULL;
	vsm_bdev_io *meta = NULL, *dio = NULL;
	vsm_bdev *dev = NULL;
	bool threads = getenv("VSM_BENCH_THREADS") != NULL;
	char key[VSM_BACKEND_KEY_MAX];
	unsigned int of = 0;
	uint64_t size = 0;
	uint32_t bs = 512;
	double secs;
	size_t i;
	int reps, k;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: %s DATASTORE-URI LUN-URL SECONDS [REPS]\n", argv[0]);
		return 2;
	}
	secs = atof(argv[3]);
	reps = argc == 5 ? atoi(argv[4]) : 3;
	if (reps < 1 || reps > 15)
		reps = 3;
	if (ops->open(&ds, argv[1], &args) < 0 || ops->meta_open(&meta, ds, 1 << 20, 0) < 0 ||
	    ops->device_create(ds, &spec, key, sizeof(key), &of) < 0 ||
	    ops->device_open(&dio, ds, key, 0) < 0 || vsm_bdev_wrap(&dev, dio, key, false) < 0 ||
	    vsm_bdev_size(dev, &size) < 0) {
		const vsm_error *e = vsm_error_last();

		fprintf(stderr, "setup: %s\n", e ? e->message : "?");
		return 1;
	}
	bs = vsm_bdev_block_size(dev);
	printf("device %s: %" PRIu64 " MiB, %u-byte blocks, %.0f s per run, median of %d\n",
	       key, size >> 20, bs, secs, reps);
	printf("libvsm: QD>1 from %s\n\n", threads ? "that many threads (sync calls)" :
	       vsm_bdev_has_native_async(dev) ? "one thread (native async submission)" :
	       "one thread (emulated async submission)");
	printf("%-22s %12s %12s %12s %9s %9s\n", "workload", "libvsm", "iscsi-perf",
	       "libiscsi", "vs perf", "vs raw");
	for (i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
		job j = jobs[i].j;
		double v, perf = -1, raw, vv[15], pv[15], rv[15];
		const char *unit = j.io >= (1 << 20) ? "MB/s" : "IOPS";
		double scale = j.io >= (1 << 20) ? (double)j.io / 1e6 : 1;
		char pbuf[32] = "n/a", rbuf[32] = "n/a";

		if (getenv("VSM_BENCH_ONLY") && !strstr(jobs[i].name, getenv("VSM_BENCH_ONLY")))
			continue;
		j.secs = secs;
		for (k = 0; k < reps; k++) {
			vv[k] = j.qd > 1 && !threads ? run_vsm_async(dev, size, &j) :
				run_vsm(dev, size, &j);
			pv[k] = j.write ? -1 : run_iscsi_perf(argv[2], &j, bs);
			rv[k] = run_raw(argv[2], &j);
		}
		v = median(vv, reps);
		perf = median(pv, reps);
		raw = median(rv, reps);
		if (perf > 0)
			snprintf(pbuf, sizeof(pbuf), "%.0f", perf * scale);
		if (perf > 0)
			snprintf(rbuf, sizeof(rbuf), "%.2f", v / perf);
		printf("%-22s %7.0f %-4s %12s %7.0f %-4s %9s %9.2f\n", jobs[i].name, v * scale, unit,
		       pbuf, raw * scale, unit, rbuf, v / raw);
		fflush(stdout);
	}
	vsm_bdev_close(dev);
	meta->ops->close(meta);
	ops->device_delete(ds, key, 0);
	ops->close(ds);
	return 0;
}
