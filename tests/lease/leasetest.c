/*
 * Lease test helpers (see leasetest.h).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"
#include "internal.h"
#include "lease/sector.h"
#include "leasetest.h"
#include "meta.h"

void lt_env(bool plain)
{
	char v[32];

	snprintf(v, sizeof(v), "%d", LT_TIMEOUT_MS);
	setenv("VSM_LEASE_TIMEOUT_MS", v, 1);
	snprintf(v, sizeof(v), "%d", LT_RENEW_MS);
	setenv("VSM_LEASE_RENEW_MS", v, 1);
	setenv("VSM_LEASE_PROTOCOL", plain ? "plain" : "caw", 1);
}

vsm_ctx *lt_host_ctx_nock(const char *dir, const char *uri, const char *host,
			  unsigned int ctx_flags)
{
	vsm_ctx_opts opts = VSM_CTX_OPTS_INIT;
	vsm_ctx *ctx = NULL;
	int rc;

	opts.state_dir = dir;
	opts.flags = ctx_flags;
	if (vsm_ctx_open(&ctx, &opts) < 0)
		return NULL;
	rc = vsm_datastore_add(ctx, "ds", uri, 0);
	if (rc == -VSM_EEXISTS)
		rc = 0;
	if (rc == 0) {
		rc = vsm_host_add(ctx, host, NULL);
		if (rc == -VSM_EEXISTS)
			rc = 0;
	}
	if (rc == 0) {
		rc = vsm_host_link(ctx, host, "ds", 0);
		if (rc == -VSM_EEXISTS)
			rc = 0;
	}
	if (rc < 0) {
		fprintf(stderr, "host %s: %s\n", host, tu_msg());
		vsm_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

vsm_ctx *lt_host_ctx(const char *dir, const char *uri, const char *host)
{
	vsm_ctx *ctx = lt_host_ctx_nock(dir, uri, host, 0);

	ck_assert_msg(ctx != NULL, "cannot set up host %s: %s", host, tu_msg());
	return ctx;
}

int64_t lt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void lt_sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

pid_t lt_fork(int (*fn)(void *arg), void *arg)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Never outlive the test, even when it fails. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		_exit(fn(arg));
	}
	return pid;
}

int lt_reap(pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

struct lt_watch {
	pthread_t th;
	volatile bool stop;
	vsm_bdev *b;
	uint64_t hb_off;
	uint32_t lb, max_hosts;
	char host[LS_NAME_MAX + 1];
	pthread_mutex_t lock;
	int64_t before_change;
};

static void *watch_main(void *arg)
{
	lt_watch *w = arg;
	uint8_t *buf = malloc(w->lb);
	int64_t prev_start = 0;
	uint64_t seen = 0;
	int slot = -1;

	while (!w->stop) {
		int64_t t0 = lt_now_ms();
		uint32_t h;

		for (h = 0; h < w->max_hosts; h++) {
			vsm_hbrec r;

			if (slot >= 0 && (int)h != slot)
				continue;
			if (vsm_bdev_read(w->b, buf, w->lb, w->hb_off + (uint64_t)h * w->lb) < 0 ||
			    ls_hb_decode(buf, &r) != 1 || strcmp(r.name, w->host))
				continue;
			slot = (int)h;
			if (r.counter != seen) {
				seen = r.counter;
				pthread_mutex_lock(&w->lock);
				w->before_change = prev_start;
				pthread_mutex_unlock(&w->lock);
			}
		}
		prev_start = t0;
		lt_sleep_ms(1);
	}
	free(buf);
	return NULL;
}

lt_watch *lt_watch_start(const char *dsdir, const char *host)
{
	lt_watch *w = calloc(1, sizeof(*w));
	vsm_meta *m = NULL;
	vsm_bdev *b = NULL;
	char path[4096];

	ck_assert(w != NULL);
	snprintf(path, sizeof(path), "%s/.vsm/meta", dsdir);
	ck_vsm(vsm_bdev_open_path(&b, path, VSM_BDEV_RDONLY));
	ck_vsm(vsm_meta_open(&m, b, "ds", false));
	ck_vsm(vsm_bdev_open_path(&w->b, path, VSM_BDEV_RDONLY));
	w->hb_off = m->geom.lease_off;
	w->lb = m->geom.lease_block;
	w->max_hosts = m->geom.max_hosts;
	vsm_meta_close(m);
	snprintf(w->host, sizeof(w->host), "%s", host);
	pthread_mutex_init(&w->lock, NULL);
	ck_assert(pthread_create(&w->th, NULL, watch_main, w) == 0);
	return w;
}

int64_t lt_watch_before_last_change(lt_watch *w)
{
	int64_t v;

	pthread_mutex_lock(&w->lock);
	v = w->before_change;
	pthread_mutex_unlock(&w->lock);
	return v;
}

void lt_watch_stop(lt_watch *w)
{
	if (!w)
		return;
	w->stop = true;
	pthread_join(w->th, NULL);
	vsm_bdev_close(w->b);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
