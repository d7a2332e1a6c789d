/*
 * Suite "core": errors, version, name rules, context opening.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "testutil.h"

START_TEST(error_last_set_and_cleared)
{
	char *state = tu_dir("state");
	vsm_ctx *ctx = tu_ctx(state);

	ck_assert_ptr_null(vsm_error_last());
	ck_vsm_refused(vsm_host_add(ctx, "bad name", NULL), VSM_EINVAL, "bad name");
	ck_assert_int_eq(vsm_error_last()->code, VSM_EINVAL);
	/* The next call clears it on entry. */
	ck_vsm(vsm_host_add(ctx, "good", NULL));
	ck_assert_ptr_null(vsm_error_last());
	vsm_error_clear();
	ck_assert_ptr_null(vsm_error_last());
	vsm_ctx_free(ctx);
	free(state);
}
END_TEST

static void *other_thread(void *arg)
{
	/* A fresh thread starts with no error, whatever the others did. */
	*(int *)arg = vsm_error_last() == NULL;
	return NULL;
}

START_TEST(error_is_thread_local)
{
	char *state = tu_dir("state");
	vsm_ctx *ctx = tu_ctx(state);
	pthread_t t;
	int clean = 0;

	ck_assert_int_lt(vsm_host_add(ctx, "", NULL), 0);
	ck_assert_ptr_nonnull(vsm_error_last());
	ck_assert_int_eq(pthread_create(&t, NULL, other_thread, &clean), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(clean, 1);
	ck_assert_ptr_nonnull(vsm_error_last());
	vsm_ctx_free(ctx);
	free(state);
}
END_TEST

/* A prefix naming what the message already names is not repeated (a
 * backend and the core both saying "datastore 'u1'"). */
START_TEST(error_prefix_not_repeated)
{
	vsm_error_set(VSM_EIO, "datastore 'u1': LUN 3 is gone");
	vsm__error_prefix("datastore '%s'", "u1");
	ck_assert_str_eq(vsm_error_last()->message, "datastore 'u1': LUN 3 is gone");
	vsm__error_prefix("datastore 'u1': destroying container 'web'");
	ck_assert_str_eq(vsm_error_last()->message,
			 "datastore 'u1': destroying container 'web': LUN 3 is gone");
	vsm__error_prefix("host 'h1'");
	ck_assert_str_eq(vsm_error_last()->message,
			 "host 'h1': datastore 'u1': destroying container 'web': LUN 3 is gone");
	/* Another datastore's name is kept. */
	vsm_error_set(VSM_EIO, "datastore 'u10': bad");
	vsm__error_prefix("datastore 'u1'");
	ck_assert_str_eq(vsm_error_last()->message, "datastore 'u1': datastore 'u10': bad");
	ck_assert_int_eq(vsm_error_last()->code, VSM_EIO);
}
END_TEST

START_TEST(strerror_covers_codes)
{
	int c;

	for (c = VSM_EINVAL; c <= VSM_ETIMEDOUT; c++) {
		ck_assert_str_ne(vsm_strerror(c), "unknown error");
		ck_assert_str_eq(vsm_strerror(c), vsm_strerror(-c));
	}
	ck_assert_str_eq(vsm_strerror(9999), "unknown error");
	ck_assert_str_eq(vsm_strerror(0), "success");
}
END_TEST

START_TEST(error_names_cover_codes)
{
	int c;

	for (c = VSM_EINVAL; c <= VSM_ETIMEDOUT; c++) {
		ck_assert_ptr_nonnull(vsm_error_name(c));
		ck_assert_str_eq(vsm_error_name(c), vsm_error_name(-c));
		ck_assert_int_eq(vsm_error_name(c)[0], 'E');
	}
	ck_assert_str_eq(vsm_error_name(VSM_ELEASE), "ELEASE");
	ck_assert_str_eq(vsm_error_name(-VSM_ETIMEDOUT), "ETIMEDOUT");
	ck_assert_str_eq(vsm_error_name(0), "OK");
	ck_assert_ptr_null(vsm_error_name(VSM_ETIMEDOUT + 1));
	ck_assert_ptr_null(vsm_error_name(-9999));
}
END_TEST

START_TEST(version_matches_headers)
{
	int major = -1, minor = -1, patch = -1;

	ck_assert_int_eq(vsm_version(&major, &minor, &patch), VSM_VERSION_NUMBER);
	ck_assert_int_eq(major, VSM_VERSION_MAJOR);
	ck_assert_int_eq(minor, VSM_VERSION_MINOR);
	ck_assert_int_eq(patch, VSM_VERSION_PATCH);
	ck_assert_int_eq(vsm_version(NULL, NULL, NULL), VSM_VERSION_NUMBER);
}
END_TEST

START_TEST(name_rules)
{
	char *state = tu_dir("state");
	vsm_ctx *ctx = tu_ctx(state);
	char long_name[80];

	memset(long_name, 'a', 65);
	long_name[65] = '\0';
	ck_vsm_refused(vsm_host_add(ctx, "", NULL), VSM_EINVAL, "empty");
	ck_vsm_refused(vsm_host_add(ctx, ".", NULL), VSM_EINVAL, "reserved");
	ck_vsm_refused(vsm_host_add(ctx, "..", NULL), VSM_EINVAL, "reserved");
	ck_vsm_refused(vsm_host_add(ctx, "a/b", NULL), VSM_EINVAL, "a/b");
	ck_vsm_refused(vsm_host_add(ctx, "a b", NULL), VSM_EINVAL, "outside");
	ck_vsm_refused(vsm_host_add(ctx, long_name, NULL), VSM_EINVAL, "64 characters");
	long_name[64] = '\0';
	ck_vsm(vsm_host_add(ctx, long_name, NULL));
	ck_vsm(vsm_host_add(ctx, "A-z_0.9", NULL));
	ck_vsm_refused(vsm_host_add(ctx, "A-z_0.9", NULL), VSM_EEXISTS, "A-z_0.9");
	vsm_ctx_free(ctx);
	free(state);
}
END_TEST

START_TEST(ctx_opts_version_checked)
{
	vsm_ctx_opts opts = VSM_CTX_OPTS_INIT;
	vsm_ctx *ctx = NULL;

	opts.version = 0;
	ck_vsm_refused(vsm_ctx_open(&ctx, &opts), VSM_EVERSION, "version");
	opts.version = VSM_CTX_OPTS_VERSION + 1;
	ck_vsm_refused(vsm_ctx_open(&ctx, &opts), VSM_EVERSION, "version");
	ck_assert_ptr_null(ctx);
}
END_TEST

START_TEST(ctx_state_dir_from_env)
{
	char *state = tu_dir("envstate"), *sub = NULL;
	vsm_ctx *ctx = NULL;

	ck_assert(asprintf(&sub, "%s/a/b", state) > 0);
	setenv("VSM_STATE_DIR", sub, 1);
	ck_vsm(vsm_ctx_open(&ctx, NULL));
	ck_assert_str_eq(vsm_ctx_state_dir(ctx), sub);
	vsm_ctx_free(ctx);
	free(sub);
	ck_assert(asprintf(&sub, "%s/a/b/catalog.db", state) > 0);
	ck_assert(tu_exists(sub));
	unsetenv("VSM_STATE_DIR");
	free(sub);
	free(state);
}
END_TEST

START_TEST(catalog_damaged_refused)
{
	char *state = tu_dir("state"), *db = NULL;
	vsm_ctx_opts opts = VSM_CTX_OPTS_INIT;
	vsm_ctx *ctx = NULL;
	FILE *f;

	ck_assert(asprintf(&db, "%s/catalog.db", state) > 0);
	f = fopen(db, "w");
	ck_assert_ptr_nonnull(f);
	fputs("this is not a database, it only pretends to be one. ", f);
	for (int i = 0; i < 100; i++)
		fputs("garbage garbage garbage garbage garbage\n", f);
	fclose(f);
	opts.state_dir = state;
	ck_vsm_refused(vsm_ctx_open(&ctx, &opts), VSM_ECORRUPT, "catalog.db");
	ck_assert_ptr_null(ctx);
	free(db);
	free(state);
}
END_TEST

static Suite *core_suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_test(tc, error_last_set_and_cleared);
	tcase_add_test(tc, error_is_thread_local);
	tcase_add_test(tc, error_prefix_not_repeated);
	tcase_add_test(tc, strerror_covers_codes);
	tcase_add_test(tc, error_names_cover_codes);
	tcase_add_test(tc, version_matches_headers);
	tcase_add_test(tc, name_rules);
	tcase_add_test(tc, ctx_opts_version_checked);
	tcase_add_test(tc, ctx_state_dir_from_env);
	tcase_add_test(tc, catalog_damaged_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(core_suite());
}
