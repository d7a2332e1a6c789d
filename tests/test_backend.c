/*
 * Suite "backend": the southbound vtable's registration checks, URI
 * dispatch, and a backend registered from outside the library.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fault_backend.h"
#include "testutil.h"
#include "backends/file/file.h"

static vsm_ctx *ctx;
static char *state;

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
	struct vsm_backend_ops ops = vsm__file_backend_ops;

	ops.scheme = "x0";
	ops.version = 0;
	ck_vsm_refused(vsm_backend_register(ctx, &ops, NULL), VSM_EVERSION, "x0");
}
END_TEST

START_TEST(version_newer_refused)
{
	struct vsm_backend_ops ops = vsm__file_backend_ops;

	ops.scheme = "x1";
	ops.version = VSM_BACKEND_OPS_VERSION + 1;
	ck_vsm_refused(vsm_backend_register(ctx, &ops, NULL), VSM_EVERSION, "not supported");
}
END_TEST

START_TEST(size_too_small_refused)
{
	struct vsm_backend_ops ops = vsm__file_backend_ops;

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
	u.ops = vsm__file_backend_ops;
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
	struct vsm_backend_ops ops = vsm__file_backend_ops;

	ops.scheme = "x4";
	ops.device_create = NULL;
	ck_vsm_refused(vsm_backend_register(ctx, &ops, NULL), VSM_EINVAL, "device_create");
	ops.device_create = vsm__file_backend_ops.device_create;
	ops.bdev_read = NULL;
	ck_vsm_refused(vsm_backend_register(ctx, &ops, NULL), VSM_EINVAL, "bdev_read");
	ops.bdev_read = vsm__file_backend_ops.bdev_read;
	ops.host_attach = NULL;
	ck_vsm_refused(vsm_backend_register(ctx, &ops, NULL), VSM_EINVAL, "host_attach");
}
END_TEST

START_TEST(optional_callbacks_may_be_null)
{
	struct vsm_backend_ops ops = vsm__file_backend_ops;

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
	ck_vsm_refused(vsm_backend_register(ctx, &vsm__file_backend_ops, NULL), VSM_EEXISTS,
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
	tcase_add_test(tc, external_backend_end_to_end);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(backend_suite());
}
