/*
 * Suite "backend": the southbound vtable's registration checks, URI
 * dispatch, and a backend registered from outside the library.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fault_backend.h"
#include "testutil.h"
#include "backends/file/file.h"
#include "v01_backend.h"

static vsm_ctx *ctx;
static char *state;

/* A 0.1 table (tests/v01_backend.c) as this header sees it. */
static struct vsm_backend_ops v01(void)
{
	const struct vsm_backend_ops *o = v01_backend_ops(1);
	struct vsm_backend_ops ops;

	memset(&ops, 0, sizeof(ops));
	memcpy(&ops, o, o->size);
	return ops;
}

static void setup(void)
{
	state = tu_dir("state");
	ctx = tu_ctx(state);
}

static void teardown(void)
{
	vsm_ctx_free(ctx);
	free(state);
}

START_TEST(version_zero_refused)
{
	struct vsm_backend_ops ops = v01();

	ops.scheme = "x0";
	ops.version = 0;
	ck_vsm_refused(vsm_backend_register(ctx, &ops, NULL), VSM_EVERSION, "x0");
}
END_TEST

START_TEST(version_newer_refused)
{
	struct vsm_backend_ops ops = v01();

	ops.scheme = "x1";
	ops.version = VSM_BACKEND_OPS_VERSION + 1;
	ck_vsm_refused(vsm_backend_register(ctx, &ops, NULL), VSM_EVERSION, "not supported");
}
END_TEST

START_TEST(size_too_small_refused)
{
	struct vsm_backend_ops ops = v01();

	ops.scheme = "x2";
	ops.size = 16;
	ck_vsm_refused(vsm_backend_register(ctx, &ops, NULL), VSM_EINVAL, "size");
}
END_TEST

START_TEST(size_never_read_past)
{
	/* A table that says it is longer than the version this library
	 * knows (a backend built against a newer header): the core copies
	 * only the fields it knows, never the bytes past them (ASan would
	 * catch an over-read of @u), and the known fields work. */
	union {
		struct vsm_backend_ops ops;
		unsigned char bytes[sizeof(struct vsm_backend_ops) + 64];
	} u;

	memset(u.bytes, 0xA5, sizeof(u.bytes));
	u.ops = v01();
	u.ops.scheme = "x3";
	u.ops.size = (uint32_t)sizeof(u.bytes);
	ck_vsm(vsm_backend_register(ctx, &u.ops, NULL));
	/* Still refused if the version is beyond ours, whatever the size. */
	u.ops.scheme = "x3b";
	u.ops.version = VSM_BACKEND_OPS_VERSION + 1;
	ck_vsm_refused(vsm_backend_register(ctx, &u.ops, NULL), VSM_EVERSION, "x3b");
}
END_TEST

START_TEST(missing_callback_named)
{
	struct vsm_backend_ops ops = v01();

	ops.scheme = "x4";
	ops.device_create = NULL;
	ck_vsm_refused(vsm_backend_register(ctx, &ops, NULL), VSM_EINVAL, "device_create");
	ops.device_create = v01().device_create;
	ops.bdev_read = NULL;
	ck_vsm_refused(vsm_backend_register(ctx, &ops, NULL), VSM_EINVAL, "bdev_read");
	ops.bdev_read = v01().bdev_read;
	ops.host_attach = NULL;
	ck_vsm_refused(vsm_backend_register(ctx, &ops, NULL), VSM_EINVAL, "host_attach");
}
END_TEST

START_TEST(optional_callbacks_may_be_null)
{
	struct vsm_backend_ops ops = v01();

	ops.scheme = "x5";
	ops.device_resize = NULL;
	ops.bdev_compare_and_write = NULL;
	ops.bdev_discard = NULL;
	ops.bdev_block_size = NULL;
	ck_vsm(vsm_backend_register(ctx, &ops, NULL));
}
END_TEST

START_TEST(duplicate_scheme_refused)
{
	ck_vsm_refused(vsm_datastore_ops_register(ctx, &vsm__file_backend_ops, NULL), VSM_EEXISTS,
		       "file");
}
END_TEST

START_TEST(unknown_scheme_refused)
{
	ck_vsm_refused(vsm_datastore_add(ctx, "ds", "nfs://server/export", 0), VSM_ENOTSUP,
		       "nfs");
	ck_vsm_refused(vsm_datastore_add(ctx, "ds", "no-scheme-here", 0), VSM_EINVAL,
		       "no-scheme-here");
}
END_TEST

START_TEST(file_uri_checked)
{
	ck_vsm_refused(vsm_datastore_add(ctx, "ds", "file://relative/path", 0), VSM_EINVAL,
		       "file:///ABSOLUTE/PATH");
	ck_vsm_refused(vsm_datastore_add(ctx, "ds", "file:///tmp/a/../b", 0), VSM_EINVAL, "..");
}
END_TEST

/* A mistyped path is refused, not made into an empty datastore. */
START_TEST(file_dir_must_exist)
{
	char *dir = tu_dir("p"), *missing = NULL, *uri = NULL, *want = NULL, *meta = NULL;
	vsm_datastore **list = NULL;
	size_t n = 0;

	ck_assert(asprintf(&missing, "%s/missing/sub", dir) > 0);
	ck_assert(asprintf(&meta, "%s/.vsm/meta", missing) > 0);
	uri = tu_uri(missing);
	ck_assert(asprintf(&want, "datastore 'ds': directory '%s' does not exist (pass "
			   "VSM_DATASTORE_ADD_CREATE / --create to make it)", missing) > 0);
	ck_assert_int_eq(vsm_datastore_add(ctx, "ds", uri, 0), -VSM_ENOTFOUND);
	ck_assert_str_eq(tu_msg(), want); /* prefixed once, by the core */
	ck_assert_int_eq(tu_count_files(dir), 0);
	ck_vsm(vsm_datastore_list(&list, &n, ctx));
	ck_assert_uint_eq(n, 0);
	vsm_datastore_list_free(list, n);
	ck_vsm_refused(vsm_datastore_add(ctx, "ds", uri, 1u << 5), VSM_EINVAL, "unknown flags");

	ck_vsm(vsm_datastore_add(ctx, "ds", uri, VSM_DATASTORE_ADD_CREATE));
	ck_assert(tu_exists(meta));
	/* An existing directory needs no flag, and the flag does no harm. */
	ck_vsm(vsm_datastore_remove(ctx, "ds", 0));
	ck_vsm(vsm_datastore_add(ctx, "ds", uri, 0));
	ck_vsm(vsm_datastore_remove(ctx, "ds", 0));
	ck_vsm(vsm_datastore_add(ctx, "ds", uri, VSM_DATASTORE_ADD_CREATE));
	free(dir);
	free(missing);
	free(uri);
	free(want);
	free(meta);
}
END_TEST

START_TEST(file_uri_percent_decoded)
{
	char *dir = tu_dir("pct"), *sub = NULL, *uri = NULL, *p = NULL;
	vsm_datastore *ds = NULL;

	ck_assert(asprintf(&sub, "%s/my dir", dir) > 0);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	ck_assert(asprintf(&uri, "file://%s/my%%20dir", dir) > 0);
	ck_vsm(vsm_datastore_add(ctx, "sp", uri, 0));
	ck_assert(asprintf(&p, "%s/.vsm/meta", sub) > 0);
	ck_assert(tu_exists(p));
	/* The catalog keeps the URI as the caller wrote it. */
	ck_vsm(vsm_datastore_lookup(&ds, ctx, "sp"));
	ck_assert_str_eq(vsm_datastore_uri(ds), uri);
	vsm_datastore_free(ds);
	free(uri);
	free(p);

	/* UTF-8 and reserved characters, made on demand. */
	ck_assert(asprintf(&uri, "file://%s/%%C3%%A9t%%C3%%A9%%3F%%23%%25", dir) > 0);
	ck_vsm(vsm_datastore_add(ctx, "utf", uri, VSM_DATASTORE_ADD_CREATE));
	ck_assert(asprintf(&p, "%s/\xc3\xa9t\xc3\xa9?#%%/.vsm/meta", dir) > 0);
	ck_assert_msg(tu_exists(p), "%s", p);
	free(uri);
	free(p);
	free(sub);
	free(dir);
}
END_TEST

START_TEST(file_uri_bad_escapes_refused)
{
	static const struct { const char *tail, *msg; } bad[] = {
		{ "/a%00b", "encodes a NUL byte (%00)" },
		{ "/a%zzb", "malformed escape '%zz'" },
		{ "/a%2", "malformed escape '%2'" },
		{ "/a%", "malformed escape" },
		{ "/a%g0", "malformed escape" },
		{ "/a/%2e%2e/b", "'..' path component" },
		{ "/a/%2E%2E", "'..' path component" },
		{ "/a/.%2e/b", "'..' path component" },
		{ "/a/../b", "'..' path component" },
		{ "/..", "'..' path component" },
	};
	char *dir = tu_dir("bad"), *uri = NULL;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		ck_assert(asprintf(&uri, "file://%s%s", dir, bad[i].tail) > 0);
		ck_assert_int_eq(vsm_datastore_add(ctx, "ds", uri, VSM_DATASTORE_ADD_CREATE),
				 -VSM_EINVAL);
		ck_assert_msg(strstr(tu_msg(), bad[i].msg) && strstr(tu_msg(), uri) &&
			      !strncmp(tu_msg(), "datastore 'ds': URI '", 21),
			      "%s: %s", uri, tu_msg());
		free(uri);
	}
	/* Nothing was made for any of them. */
	ck_assert_int_eq(tu_count_files(dir), 0);
	free(dir);
}
END_TEST

/* open_args before version 2 have no flags field: a backend must not read it. */
START_TEST(open_args_v1_creates_nothing)
{
	char *dir = tu_dir("v1"), *missing = NULL, *uri = NULL;
	vsm_backend_open_args args = { 1, "t", NULL, NULL, NULL, VSM_BACKEND_OPEN_CREATE };
	vsm_backend_ds *ds = NULL;

	ck_assert(asprintf(&missing, "%s/m", dir) > 0);
	uri = tu_uri(missing);
	ck_assert_int_eq(vsm__file_backend_ops.open(&ds, uri, &args), -VSM_ENOTFOUND);
	ck_assert(!tu_exists(missing));
	args.version = 2;
	args.flags = 0;
	ck_assert_int_eq(vsm__file_backend_ops.open(&ds, uri, &args), -VSM_ENOTFOUND);
	ck_assert(!tu_exists(missing));
	args.flags = VSM_BACKEND_OPEN_CREATE;
	ck_vsm(vsm__file_backend_ops.open(&ds, uri, &args));
	ck_assert(tu_exists(missing));
	vsm__file_backend_ops.close(ds);
	free(missing);
	free(uri);
	free(dir);
}
END_TEST

START_TEST(external_backend_end_to_end)
{
	char *dir = tu_dir("ds"), *uri = NULL;
	vsm_container *c = NULL;
	vsm_locator *loc = NULL;

	ck_vsm(fault_register(ctx));
	ck_assert(asprintf(&uri, "fault://%s", dir) > 0);
	ck_vsm(vsm_datastore_add(ctx, "fds", uri, 0));
	ck_vsm(vsm_host_add(ctx, "h", NULL));
	ck_vsm(vsm_host_link(ctx, "h", "fds", 0));
	ck_vsm(tu_create(&c, ctx, "fds", "vm", 2, 1 << 20));
	ck_assert_int_eq(fault.creates, 3); /* two devices and the state area */
	ck_vsm(vsm_attach(c, "h", 0));
	ck_vsm(vsm_device_deploy(&loc, c, "d1", NULL));
	ck_assert_ptr_nonnull(strstr(vsm_locator_uri(loc), dir));
	ck_vsm(vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE));
	ck_assert_int_eq(tu_count_files(dir), 0);
	vsm_locator_free(loc);
	vsm_container_free(c);
	free(uri);
	free(dir);
}
END_TEST

static Suite *backend_suite(void)
{
	Suite *s = suite_create("backend");
	TCase *tc = tcase_create("vtable");

	/* A backend without compare-and-write takes the plain protocol: the
	 * first metadata change joins a heartbeat slot, which waits two
	 * renewal intervals. */
	tcase_set_timeout(tc, 30);

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, version_zero_refused);
	tcase_add_test(tc, version_newer_refused);
	tcase_add_test(tc, size_too_small_refused);
	tcase_add_test(tc, size_never_read_past);
	tcase_add_test(tc, missing_callback_named);
	tcase_add_test(tc, optional_callbacks_may_be_null);
	tcase_add_test(tc, duplicate_scheme_refused);
	tcase_add_test(tc, unknown_scheme_refused);
	tcase_add_test(tc, file_uri_checked);
	tcase_add_test(tc, file_dir_must_exist);
	tcase_add_test(tc, file_uri_percent_decoded);
	tcase_add_test(tc, file_uri_bad_escapes_refused);
	tcase_add_test(tc, open_args_v1_creates_nothing);
	tcase_add_test(tc, external_backend_end_to_end);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(backend_suite());
}
