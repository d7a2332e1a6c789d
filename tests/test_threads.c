/*
 * Suite "threads": one context used from several threads at once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

#define THREADS 8
#define ROUNDS 12

static vsm_ctx *ctx;
static char *state, *dsdir, *uri;

static void setup(void)
{
	state = tu_dir("state");
	dsdir = tu_dir("ds");
	uri = tu_uri(dsdir);
	ctx = tu_ctx(state);
	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	ck_vsm(vsm_host_add(ctx, "h1", NULL));
	ck_vsm(vsm_host_link(ctx, "h1", "ds1", 0));
}

static void teardown(void)
{
	vsm_ctx_free(ctx);
	free(state);
	free(dsdir);
	free(uri);
}

typedef struct {
	int id;
	int failures;
	char why[256];
} worker;

static void note(worker *w, const char *what)
{
	if (!w->failures++)
		snprintf(w->why, sizeof(w->why), "thread %d: %s: %s", w->id, what, tu_msg());
}

static void *churn(void *arg)
{
	worker *w = arg;
	char name[32];

	for (int r = 0; r < ROUNDS; r++) {
		vsm_container *c = NULL, **list = NULL;
		size_t n = 0;

		snprintf(name, sizeof(name), "t%d-%d", w->id, r);
		if (tu_create(&c, ctx, "ds1", name, 2, 1 << 20) < 0) {
			note(w, "create");
			continue;
		}
		if (vsm_attach(c, "h1", 0) < 0 || vsm_device_deploy(NULL, c, "d1", NULL) < 0)
			note(w, "attach/deploy");
		if (vsm_container_list(&list, &n, ctx, NULL) < 0)
			note(w, "list");
		vsm_container_list_free(list, n);
		if (vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE) < 0)
			note(w, "destroy");
		vsm_container_free(c);
	}
	return NULL;
}

START_TEST(concurrent_create_destroy)
{
	pthread_t t[THREADS];
	worker w[THREADS];
	vsm_container **list = NULL;
	size_t n = 0;
	int i;

	for (i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].id = i;
		ck_assert_int_eq(pthread_create(&t[i], NULL, churn, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < THREADS; i++)
		ck_assert_msg(w[i].failures == 0, "%s (%d failures)", w[i].why, w[i].failures);
	ck_vsm(vsm_container_list(&list, &n, ctx, NULL));
	ck_assert_uint_eq(n, 0);
	vsm_container_list_free(list, n);
	ck_assert_int_eq(tu_count_files(dsdir), 0);
}
END_TEST

static int winners;
static pthread_mutex_t winners_lock = PTHREAD_MUTEX_INITIALIZER;

static void *race(void *arg)
{
	int rc = tu_create(NULL, ctx, "ds1", "contested", 1, 1 << 20);

	(void)arg;
	pthread_mutex_lock(&winners_lock);
	if (rc == 0)
		winners++;
	else if (rc != -VSM_EEXISTS)
		winners += 100; /* any other failure is a bug */
	pthread_mutex_unlock(&winners_lock);
	return NULL;
}

START_TEST(same_name_race_has_one_winner)
{
	pthread_t t[THREADS];
	int i;

	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, race, NULL), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(winners, 1);
	ck_assert_int_eq(tu_count_files(dsdir), 2);
}
END_TEST

static Suite *threads_suite(void)
{
	Suite *s = suite_create("threads");
	TCase *tc = tcase_create("threads");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, concurrent_create_destroy);
	tcase_add_test(tc, same_name_race_has_one_winner);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(threads_suite());
}
