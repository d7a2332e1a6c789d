/*
 * Suite "events": callbacks registered on a context hear about changes
 * another context (another host) made to a shared datastore.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "testutil.h"
#include "ctx.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int seen;
static char seen_ds[64];
static int seen_type;

static void on_event(const vsm_event *ev, void *payload)
{
	pthread_mutex_lock(&lock);
	seen++;
	seen_type = vsm_event_type_of(ev);
	snprintf(seen_ds, sizeof(seen_ds), "%s", vsm_event_datastore(ev));
	*(int *)payload += 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

/* Wait (bounded, so a lost event fails instead of hanging) for @n events. */
static bool wait_for(int n)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&lock);
	while (seen < n && pthread_cond_timedwait(&cond, &lock, &until) == 0)
		;
	ok = seen >= n;
	pthread_mutex_unlock(&lock);
	return ok;
}

static size_t count(vsm_ctx *ctx)
{
	vsm_container **list = NULL;
	size_t n = 0;

	ck_vsm(vsm_container_list(&list, &n, ctx, NULL));
	vsm_container_list_free(list, n);
	return n;
}

START_TEST(change_by_other_context_is_announced)
{
	char *s1 = tu_dir("s1"), *s2 = tu_dir("s2"), *ds = tu_dir("ds"), *uri = tu_uri(ds);
	vsm_ctx *a = tu_ctx(s1), *b = tu_ctx(s2);
	int mine = 0, id = 0;

	ck_vsm(vsm_datastore_add(a, "shared", uri, 0));
	ck_vsm(vsm_datastore_add(b, "shared", uri, 0));
	ck_vsm(vsm_event_register(a, on_event, &mine, &id));
	ck_assert_uint_eq(count(a), 0);

	ck_vsm(tu_create(NULL, b, "shared", "made-by-b", 1, 1 << 20));
	/* a's next look at the datastore sees the new generation. */
	ck_assert_uint_eq(count(a), 1);
	ck_assert_msg(wait_for(1), "no datastore-changed event");
	ck_assert_int_eq(seen_type, VSM_EVENT_DATASTORE_CHANGED);
	ck_assert_str_eq(seen_ds, "shared");
	ck_assert_str_eq(vsm_event_type_name(seen_type), "datastore-changed");

	/* a's own changes are not news to a. */
	ck_vsm(tu_create(NULL, a, "shared", "made-by-a", 1, 1 << 20));
	ck_assert_uint_eq(count(a), 2);
	vsm__events_drain(a->events);
	ck_assert_int_eq(mine, 1);

	/* After unregistering, nothing more is delivered. */
	ck_vsm(vsm_event_unregister(a, id));
	ck_vsm_refused(vsm_event_unregister(a, id), VSM_ENOTFOUND, "not registered");
	ck_vsm(tu_create(NULL, b, "shared", "again", 1, 1 << 20));
	ck_assert_uint_eq(count(a), 3);
	vsm__events_drain(a->events);
	ck_assert_int_eq(mine, 1);

	vsm_ctx_free(a);
	vsm_ctx_free(b);
	free(s1);
	free(s2);
	free(ds);
	free(uri);
}
END_TEST

static void reentrant(const vsm_event *ev, void *payload)
{
	/* A callback may call back into the library. */
	vsm_ctx *ctx = payload;
	vsm_container **list = NULL;
	size_t n = 0;

	(void)ev;
	if (vsm_container_list(&list, &n, ctx, NULL) == 0)
		vsm_container_list_free(list, n);
	pthread_mutex_lock(&lock);
	seen++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

START_TEST(callback_may_call_library)
{
	char *s1 = tu_dir("s1"), *s2 = tu_dir("s2"), *ds = tu_dir("ds"), *uri = tu_uri(ds);
	vsm_ctx *a = tu_ctx(s1), *b = tu_ctx(s2);

	seen = 0;
	ck_vsm(vsm_datastore_add(a, "shared", uri, 0));
	ck_vsm(vsm_datastore_add(b, "shared", uri, 0));
	ck_vsm(vsm_event_register(a, reentrant, a, NULL));
	ck_assert_uint_eq(count(a), 0);
	ck_vsm(tu_create(NULL, b, "shared", "x", 1, 1 << 20));
	ck_assert_uint_eq(count(a), 1);
	ck_assert_msg(wait_for(1), "no event");
	vsm_ctx_free(a);
	vsm_ctx_free(b);
	free(s1);
	free(s2);
	free(ds);
	free(uri);
}
END_TEST

static Suite *events_suite(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("events");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, change_by_other_context_is_announced);
	tcase_add_test(tc, callback_may_call_library);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(events_suite());
}
