/*
 * Mutual exclusion under chaos (sanlock's devcount idea): 8 processes,
 * each its own host with its own state directory, compete for the same
 * containers on one file datastore. A holder fences a counter stored
 * beside the data (a compare-and-write tagged with its lease version),
 * increments it and checks nobody changed it under it while the library
 * still says the lease is held. Holders are SIGSTOPped, resumed and
 * SIGKILLed (and restarted) at random. Run under both protocols.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bdev.h"
#include "ctx.h"
#include "internal.h"
#include "lease/lease.h"
#include "leasetest.h"

#define N_HOSTS 8
#define N_CONT 4
#define CHAOS_MS 20000

typedef struct {
	volatile int stop;
	volatile int ready;
	volatile long acquisitions;
	volatile long increments;
	volatile long lost;
	volatile long refused;
	volatile long errors;
	volatile long violations;
	char why[256];
} shared_t;

static shared_t *sh;
static char *dsdir, *dsuri, *cntdir;
static char *hostdir[N_HOSTS];

static void add(volatile long *v, long n)
{
	__atomic_add_fetch(v, n, __ATOMIC_SEQ_CST);
}

static void violation(const char *fmt, const char *host, const char *cont)
{
	add(&sh->violations, 1);
	snprintf(sh->why, sizeof(sh->why), fmt, host, cont);
}

/* Our validity for @c right now, and the lease version. */
static bool held(vsm_ctx *ctx, vsm_container *c, const char *host, uint64_t *lver)
{
	vsm_dstore *ds;
	vsm_record *r;

	if (vsm__ds_get(&ds, ctx, "ds") < 0 || !(r = vsm__ds_find(ds, NULL, vsm_container_uuid(c))))
		return false;
	return vsm__lease_held(ds->lease, r, host, lver);
}

static void cnt_encode(uint8_t *b, uint64_t value, uint32_t host, uint64_t lver)
{
	memset(b, 0, 512);
	vsm__put_le64(b, value);
	vsm__put_le32(b + 8, host);
	vsm__put_le64(b + 16, lver);
}

/* Hold the lease of @c and count under it. */
static void count_under_lease(vsm_ctx *ctx, vsm_container *c, vsm_bdev *b, int me,
			      const char *host, unsigned int *seed)
{
	uint8_t cur[512], want[512], back[512];
	uint64_t lver = 0, value;
	int i, rc;

	/* Fence: tag the counter with our lease version, so that a late
	 * write of an earlier holder (whose compare expects its own tag)
	 * can no longer land. Retry while such a write races us. */
	for (;;) {
		if (!held(ctx, c, host, &lver)) {
			add(&sh->lost, 1);
			return;
		}
		if (vsm_bdev_read(b, cur, 512, 0) < 0)
			goto error;
		cnt_encode(want, vsm__get_le64(cur), (uint32_t)me, lver);
		rc = vsm_bdev_compare_and_write(b, cur, want, 512, 0);
		if (rc == 0)
			break;
		if (rc != -VSM_EMISMATCH)
			goto error;
	}
	value = vsm__get_le64(want);
	for (i = 0; i < 3; i++) {
		cnt_encode(cur, value, (uint32_t)me, lver);
		cnt_encode(want, value + 1, (uint32_t)me, lver);
		rc = vsm_bdev_compare_and_write(b, cur, want, 512, 0);
		if (rc == -VSM_EMISMATCH) {
			uint64_t l2;

			if (held(ctx, c, host, &l2) && l2 == lver)
				violation("host %s: counter of %s changed under a held lease", host,
					  vsm_container_name(c));
			add(&sh->lost, 1);
			return;
		}
		if (rc < 0)
			goto error;
		value++;
		add(&sh->increments, 1);
		lt_sleep_ms(rand_r(seed) % 3);
		if (vsm_bdev_read(b, back, 512, 0) < 0)
			goto error;
		if (memcmp(back, want, 512) != 0) {
			uint64_t l2;

			if (held(ctx, c, host, &l2) && l2 == lver)
				violation("host %s: counter of %s was overwritten while held", host,
					  vsm_container_name(c));
			add(&sh->lost, 1);
			return;
		}
	}
	return;
error:
	add(&sh->errors, 1);
	vsm__error_reset();
}

static int worker_main(void *arg)
{
	int me = (int)(intptr_t)arg;
	vsm_container *c[N_CONT] = {0};
	vsm_bdev *b[N_CONT] = {0};
	char host[16], name[16], path[4096];
	unsigned int seed = (unsigned int)getpid() * 7919u;
	vsm_ctx *ctx;
	int k, rc;

	snprintf(host, sizeof(host), "h%d", me);
	if (!(ctx = lt_host_ctx_nock(hostdir[me], dsuri, host, 0)))
		return 10;
	for (k = 0; k < N_CONT; k++) {
		snprintf(name, sizeof(name), "c%d", k);
		snprintf(path, sizeof(path), "%s/count-%d", cntdir, k);
		if (vsm_container_lookup(&c[k], ctx, "ds", name) < 0 ||
		    vsm_bdev_open_path(&b[k], path, 0) < 0)
			return 11;
	}
	__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
		k = rand_r(&seed) % N_CONT;
		rc = vsm_attach(c[k], host, 0);
		if (rc == -VSM_ELEASE || rc == -VSM_EBUSY || rc == -VSM_ESTALE) {
			add(&sh->refused, 1);
			lt_sleep_ms(rand_r(&seed) % 4);
			continue;
		}
		if (rc < 0) {
			add(&sh->errors, 1);
			fprintf(stderr, "%s attach: %s\n", host, tu_msg());
			lt_sleep_ms(5);
			continue;
		}
		add(&sh->acquisitions, 1);
		count_under_lease(ctx, c[k], b[k], me, host, &seed);
		rc = vsm_detach(c[k], VSM_DETACH_FORCE);
		/* After a lost lease the container may be elsewhere or detached. */
		if (rc < 0 && rc != -VSM_ESTALE && rc != -VSM_ELEASE && rc != -VSM_ESTATE) {
			add(&sh->errors, 1);
			fprintf(stderr, "%s detach: %s\n", host, tu_msg());
		}
	}
	for (k = 0; k < N_CONT; k++) {
		vsm_container_free(c[k]);
		vsm_bdev_close(b[k]);
	}
	vsm_ctx_free(ctx);
	return 0;
}

static void run_chaos(bool plain)
{
	pid_t pid[N_HOSTS];
	int64_t resume_at[N_HOSTS] = {0}, end;
	unsigned int seed = 12345u + (plain ? 1u : 0u);
	long kills = 0, stops = 0;
	vsm_ctx *ctx;
	char *dir, path[4096];
	int i, k;

	lt_env(plain);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(sh != MAP_FAILED);
	memset((void *)sh, 0, sizeof(*sh));
	dsdir = tu_dir("ds");
	dsuri = tu_uri(dsdir);
	cntdir = tu_dir("counters");
	dir = tu_dir("admin");
	ctx = lt_host_ctx(dir, dsuri, "admin");
	for (k = 0; k < N_CONT; k++) {
		FILE *f;

		snprintf(path, sizeof(path), "c%d", k);
		ck_vsm(tu_create(NULL, ctx, "ds", path, 1, 1 << 20));
		snprintf(path, sizeof(path), "%s/count-%d", cntdir, k);
		ck_assert((f = fopen(path, "w")) != NULL);
		for (i = 0; i < 512; i++)
			fputc(0, f);
		fclose(f);
	}
	vsm_ctx_free(ctx);
	free(dir);
	for (i = 0; i < N_HOSTS; i++) {
		snprintf(path, sizeof(path), "h%d", i);
		hostdir[i] = tu_dir(path);
		pid[i] = lt_fork(worker_main, (void *)(intptr_t)i);
	}
	/* Chaos starts once every host has its heartbeat slot. */
	end = lt_now_ms() + 30000;
	while (__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST) < N_HOSTS && lt_now_ms() < end)
		lt_sleep_ms(5);
	ck_assert_int_eq(sh->ready, N_HOSTS);
	end = lt_now_ms() + (getenv("LT_CHAOS_MS") ? atoi(getenv("LT_CHAOS_MS")) : CHAOS_MS);
	while (lt_now_ms() < end) {
		int64_t now = lt_now_ms();
		int r;

		lt_sleep_ms(10 + rand_r(&seed) % 30);
		for (i = 0; i < N_HOSTS; i++) {
			if (resume_at[i] && now >= resume_at[i]) {
				kill(pid[i], SIGCONT);
				resume_at[i] = 0;
			}
		}
		i = rand_r(&seed) % N_HOSTS;
		r = rand_r(&seed) % 10;
		if (r == 0) {
			kill(pid[i], SIGKILL);
			lt_reap(pid[i]);
			resume_at[i] = 0;
			kills++;
			pid[i] = lt_fork(worker_main, (void *)(intptr_t)i);
		} else if (r <= 3 && !resume_at[i]) {
			kill(pid[i], SIGSTOP);
			stops++;
			/* Sometimes shorter than the timeout, sometimes longer. */
			resume_at[i] = now + rand_r(&seed) % (2 * LT_TIMEOUT_MS + 1);
		}
	}
	__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < N_HOSTS; i++)
		kill(pid[i], SIGCONT);
	end = lt_now_ms() + 10000;
	for (i = 0; i < N_HOSTS; i++) {
		int st;

		while (lt_now_ms() < end && kill(pid[i], 0) == 0 &&
		       waitpid(pid[i], &st, WNOHANG) == 0)
			lt_sleep_ms(10);
		kill(pid[i], SIGKILL);
		waitpid(pid[i], &st, 0);
	}
	fprintf(stderr, "chaos (%s): %ld acquisitions, %ld increments, %ld refusals, %ld lost "
		"to a pause, %ld errors, %ld kills, %ld stops, %ld violations\n",
		plain ? "plain" : "caw", sh->acquisitions, sh->increments, sh->refused, sh->lost,
		sh->errors, kills, stops, sh->violations);
	ck_assert_msg(sh->violations == 0, "%ld violations: %s", sh->violations, sh->why);
	ck_assert_int_gt(sh->acquisitions, 0);
	for (i = 0; i < N_HOSTS; i++)
		free(hostdir[i]);
	free(dsdir);
	free(dsuri);
	free(cntdir);
	munmap((void *)sh, sizeof(*sh));
}

START_TEST(chaos_caw)
{
	run_chaos(false);
}
END_TEST

START_TEST(chaos_plain)
{
	run_chaos(true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lease-chaos");
	TCase *tc = tcase_create("chaos");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_set_timeout(tc, 150);
	tcase_add_test(tc, chaos_caw);
	tcase_add_test(tc, chaos_plain);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
