/*
 * Suite "imageds": the image API on a datastore (vsm_image_open_device,
 * vsm_image_open_golden, vsm_image_import, vsm_image_export) on a file
 * datastore: a golden image imported from a local qcow2 with a backing
 * file serves vsm_device_spec.base, devices open read-only by default,
 * read-write only when nobody else may be writing them, calls that would
 * change what the records describe are refused, and failures leave
 * nothing behind (a failed copy, an existing name).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vsm/image.h>

#include "fault_backend.h"
#include "testutil.h"

#define MiB (1u << 20)

static char *state, *state2, *dsdir, *uri, *furi, *files;

static void setup(void)
{
	state = tu_dir("state");
	state2 = tu_dir("state2");
	dsdir = tu_dir("ds");
	files = tu_dir("files");
	uri = tu_uri(dsdir);
	ck_assert(asprintf(&furi, "fault://%s", dsdir) > 0);
	memset(&fault, 0, sizeof(fault));
}

static void teardown(void)
{
	free(state);
	free(state2);
	free(dsdir);
	free(files);
	free(uri);
	free(furi);
}

static char *in(const char *dir, const char *name)
{
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

/* A 16 MiB golden image as a qcow2 overlay of a qcow2 base: "BASE" at
 * 1 MiB in the base, "TOP!" at 8 MiB in the overlay. Returns the top. */
static char *make_golden(void)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	char *base = in(files, "base.qcow2"), *top = in(files, "gold.qcow2");
	vsm_image *img = NULL;

	co.size = 16 * MiB;
	ck_vsm(vsm_image_create(base, &co, 0));
	ck_vsm(vsm_image_open(&img, base, NULL));
	ck_vsm(vsm_image_write(img, "BASE", 4, MiB, 0));
	ck_vsm(vsm_image_close(img));
	co.size = 0;
	co.backing = "base.qcow2";
	co.backing_format = "qcow2";
	ck_vsm(vsm_image_create(top, &co, 0));
	ck_vsm(vsm_image_open(&img, top, NULL));
	ck_vsm(vsm_image_write(img, "TOP!", 4, 8 * MiB, 0));
	ck_vsm(vsm_image_close(img));
	free(base);
	return top;
}

static vsm_ctx *ds_ctx(const char *st, const char *u)
{
	vsm_ctx *ctx = tu_ctx(st);

	ck_vsm(fault_register(ctx));
	ck_vsm(vsm_datastore_add(ctx, "ds1", u, 0));
	return ctx;
}

static void expect_read(vsm_image *img, uint64_t off, const char *want)
{
	char buf[32] = {0};

	ck_vsm(vsm_image_read(img, buf, strlen(want), off));
	ck_assert_str_eq(buf, want);
}

static void create_clone(vsm_ctx *ctx, const char *name)
{
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *ds[1] = { &d };
	vsm_container_opts o = VSM_CONTAINER_OPTS_INIT;

	d.name = "d0";
	d.format = VSM_FORMAT_QCOW2;
	d.base = "gold";
	o.devices = ds;
	o.n_devices = 1;
	ck_vsm(vsm_container_create(NULL, ctx, "ds1", name, &o));
}

START_TEST(import_serves_base)
{
	char *top = make_golden(), *out = in(files, "out.qcow2"), *gpath = in(dsdir, "gold");
	vsm_ctx *ctx = ds_ctx(state, uri);
	vsm_image_open_opts rw = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image_info *inf = NULL;
	vsm_image *img = NULL, *a = NULL, *b = NULL;
	char buf[4];
	int rc;

	rw.flags = VSM_IMAGE_OPEN_RDWR;
	ck_vsm(vsm_image_import(ctx, "ds1", "gold", top, NULL, 0));
	ck_assert(tu_exists(gpath));
	/* Flattened: no backing reference, the chain's data in it. */
	ck_vsm(vsm_image_open_golden(&img, ctx, "ds1", "gold", NULL));
	ck_vsm(vsm_image_info_get(&inf, img, 0));
	ck_assert_ptr_null(inf->backing);
	ck_assert_int_eq(inf->format, VSM_IMAGE_FORMAT_QCOW2);
	ck_assert_str_eq(inf->filename, "ds1:gold");
	vsm_image_info_free(inf);
	ck_assert_uint_eq(vsm_image_size(img), 16 * MiB);
	expect_read(img, MiB, "BASE");
	expect_read(img, 8 * MiB, "TOP!");
	/* Read-only by default. */
	ck_assert_int_lt(vsm_image_write(img, "x", 1, 0, 0), 0);
	ck_vsm(vsm_image_close(img));

	/* An existing name is refused, and the existing image stays. */
	rc = vsm_image_import(ctx, "ds1", "gold", top, NULL, 0);
	ck_assert_int_eq(rc, -VSM_EEXISTS);
	ck_assert(tu_exists(gpath));

	/* It serves --base; the clone reads it and takes writes. */
	create_clone(ctx, "web");
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", "web", "d0", NULL));
	expect_read(img, MiB, "BASE");
	ck_assert_int_lt(vsm_image_write(img, "x", 1, 0, 0), 0);
	ck_vsm(vsm_image_close(img));
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", "web", "d0", &rw));
	ck_vsm(vsm_image_write(img, "mine", 4, 2 * MiB, 0));
	ck_vsm(vsm_image_flush(img));
	ck_vsm(vsm_image_info_get(&inf, img, 0));
	ck_assert_str_eq(inf->backing, "gold");
	ck_assert_str_eq(inf->filename, "ds1/web:d0");
	vsm_image_info_free(inf);
	{
		vsm_image_check_result r = VSM_IMAGE_CHECK_RESULT_INIT;
		vsm_image_extent *map = NULL;
		size_t n = 0, i, depth1 = 0;

		ck_vsm(vsm_image_check(&r, img, 0));
		ck_assert_uint_eq(r.corruptions + r.leaks, 0);
		ck_vsm(vsm_image_map(&map, &n, img));
		for (i = 0; i < n; i++)
			depth1 += map[i].data && map[i].depth == 1;
		ck_assert_uint_ge(depth1, 1);
		vsm_image_extent_list_free(map);
	}
	/* What would change the records' picture is refused. */
	ck_assert_int_eq(vsm_image_commit(img, 0), -VSM_ENOTSUP);
	ck_assert_int_eq(vsm_image_flatten(img, 0), -VSM_ENOTSUP);
	ck_assert_int_eq(vsm_image_resize(img, 32 * MiB, 0), -VSM_ENOTSUP);
	ck_vsm(vsm_image_close(img));
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", "web", "d0", NULL));
	expect_read(img, 2 * MiB, "mine");
	ck_vsm(vsm_image_close(img));

	/* The golden image is read by web: no read-write open. */
	ck_assert_int_eq(vsm_image_open_golden(&img, ctx, "ds1", "gold", &rw), -VSM_EBUSY);
	ck_assert_ptr_nonnull(strstr(tu_msg(), "'web'"));

	/* Export gives back what was imported. */
	ck_vsm(vsm_image_export(ctx, "ds1", "gold", out, NULL, 0));
	ck_assert_int_eq(vsm_image_export(ctx, "ds1", "gold", out, NULL, 0), -VSM_EEXISTS);
	ck_vsm(vsm_image_open(&a, out, NULL));
	ck_vsm(vsm_image_open(&b, top, NULL));
	ck_assert_uint_eq(vsm_image_size(a), vsm_image_size(b));
	expect_read(a, MiB, "BASE");
	expect_read(a, 8 * MiB, "TOP!");
	ck_vsm(vsm_image_read(a, buf, 4, 2 * MiB));
	ck_assert(!memcmp(buf, "\0\0\0\0", 4));
	ck_vsm(vsm_image_close(a));
	ck_vsm(vsm_image_close(b));

	vsm_ctx_free(ctx);
	free(top);
	free(out);
	free(gpath);
}
END_TEST

START_TEST(raw_import_and_export)
{
	char *top = make_golden(), *raw = in(files, "gold.raw"), *back = in(files, "back.raw");
	vsm_image_convert_opts o = VSM_IMAGE_CONVERT_OPTS_INIT;
	vsm_ctx *ctx = ds_ctx(state, uri);
	vsm_image_info *inf = NULL;
	vsm_image *img = NULL;

	o.format = "raw";
	ck_vsm(vsm_image_import(ctx, "ds1", "rawgold", top, &o, 0));
	ck_vsm(vsm_image_open_golden(&img, ctx, "ds1", "rawgold", NULL));
	ck_vsm(vsm_image_info_get(&inf, img, 0));
	ck_assert_int_eq(inf->format, VSM_IMAGE_FORMAT_RAW);
	vsm_image_info_free(inf);
	expect_read(img, 8 * MiB, "TOP!");
	ck_vsm(vsm_image_close(img));
	ck_vsm(vsm_image_export(ctx, "ds1", "rawgold", back, NULL, 0));
	ck_vsm(vsm_image_open(&img, back, NULL));
	ck_vsm(vsm_image_info_get(&inf, img, 0));
	ck_assert_int_eq(inf->format, VSM_IMAGE_FORMAT_RAW);
	vsm_image_info_free(inf);
	expect_read(img, MiB, "BASE");
	ck_vsm(vsm_image_close(img));
	vsm_ctx_free(ctx);
	free(top);
	free(raw);
	free(back);
}
END_TEST

START_TEST(failed_import_leaves_nothing)
{
	char *top = make_golden(), *gpath = in(dsdir, "gold");
	vsm_ctx *ctx = ds_ctx(state, furi);
	int rc;

	fault.write_fail_at = fault.writes + 3;
	rc = vsm_image_import(ctx, "ds1", "gold", top, NULL, 0);
	ck_assert_int_lt(rc, 0);
	ck_assert(!tu_exists(gpath));
	fault.write_fail_at = 0;
	ck_vsm(vsm_image_import(ctx, "ds1", "gold", top, NULL, 0));
	ck_assert(tu_exists(gpath));
	vsm_ctx_free(ctx);
	free(top);
	free(gpath);
}
END_TEST

START_TEST(crashed_import_rolled_back)
{
	char *top = make_golden(), *gpath = in(dsdir, "gold");
	vsm_ctx *ctx = ds_ctx(state, furi);
	vsm_image *img = NULL;
	int status;
	pid_t pid;

	vsm_ctx_free(ctx);
	/* The importing process dies right after the backend made the device. */
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		vsm_ctx *c = tu_ctx(state);

		fault_register(c);
		fault.create_crash_at = 1;
		vsm_image_import(c, "ds1", "gold", top, NULL, 0);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 77, "status 0x%x", status);
	ck_assert(tu_exists(gpath));
	/* The next context on the same state directory rolls it back once
	 * the backend is registered and recovery asked for (a lookup alone
	 * never runs it). */
	ctx = tu_ctx(state);
	ck_vsm(fault_register(ctx));
	ck_assert_int_eq(vsm_ctx_recover(ctx, NULL, 0), 0);
	ck_assert_int_eq(vsm_image_open_golden(&img, ctx, "ds1", "gold", NULL), -VSM_ENOTFOUND);
	ck_assert(!tu_exists(gpath));
	ck_vsm(vsm_image_import(ctx, "ds1", "gold", top, NULL, 0));
	vsm_ctx_free(ctx);
	free(top);
	free(gpath);
}
END_TEST

START_TEST(owner_elsewhere_refuses_write)
{
	char *top = make_golden();
	vsm_ctx *ctx = ds_ctx(state, uri), *other = ds_ctx(state2, uri);
	vsm_image_open_opts rw = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_container *c = NULL;
	vsm_image *img = NULL;

	rw.flags = VSM_IMAGE_OPEN_RDWR;
	ck_vsm(vsm_image_import(ctx, "ds1", "gold", top, NULL, 0));
	create_clone(ctx, "web");
	ck_vsm(vsm_host_add(other, "h2", NULL));
	ck_vsm(vsm_host_link(other, "h2", "ds1", 0));
	ck_vsm(vsm_container_lookup(&c, other, "ds1", "web"));
	ck_vsm(vsm_attach(c, "h2", 0));
	/* Owned by h2, which this context does not act for. */
	ck_assert_int_eq(vsm_image_open_device(&img, ctx, "ds1", "web", "d0", &rw), -VSM_EBUSY);
	ck_assert_ptr_nonnull(strstr(tu_msg(), "'h2'"));
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", "web", "d0", NULL));
	expect_read(img, MiB, "BASE");
	ck_vsm(vsm_image_close(img));
	/* Its owner may write it. */
	ck_vsm(vsm_image_open_device(&img, other, "ds1", "web", "d0", &rw));
	ck_vsm(vsm_image_write(img, "h2", 2, 0, 0));
	ck_vsm(vsm_image_close(img));
	ck_vsm(vsm_detach(c, 0));
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", "web", "d0", &rw));
	expect_read(img, 0, "h2");
	ck_vsm(vsm_image_close(img));
	vsm_container_free(c);
	vsm_ctx_free(other);
	vsm_ctx_free(ctx);
	free(top);
}
END_TEST

START_TEST(bad_arguments_refused)
{
	char *top = make_golden();
	vsm_ctx *ctx = ds_ctx(state, uri);
	vsm_image_open_opts both = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img = NULL;

	both.flags = VSM_IMAGE_OPEN_RDONLY | VSM_IMAGE_OPEN_RDWR;
	ck_vsm(vsm_image_import(ctx, "ds1", "gold", top, NULL, 0));
	create_clone(ctx, "web");
	ck_assert_int_eq(vsm_image_open_device(&img, ctx, "ds1", "nope", "d0", NULL),
			 -VSM_ENOTFOUND);
	ck_assert_int_eq(vsm_image_open_device(&img, ctx, "ds1", "web", "d9", NULL),
			 -VSM_ENOTFOUND);
	ck_assert_int_eq(vsm_image_open_device(&img, ctx, "nods", "web", "d0", NULL),
			 -VSM_ENOTFOUND);
	ck_assert_int_eq(vsm_image_open_device(&img, ctx, "ds1", "", "d0", NULL), -VSM_EINVAL);
	ck_assert_int_eq(vsm_image_open_device(&img, ctx, "ds1", "web", NULL, NULL), -VSM_EINVAL);
	ck_assert_int_eq(vsm_image_open_device(&img, ctx, "ds1", "web", "d0", &both),
			 -VSM_EINVAL);
	ck_assert_int_eq(vsm_image_open_golden(&img, ctx, "ds1", "..", NULL), -VSM_EINVAL);
	ck_assert_int_eq(vsm_image_open_golden(&img, ctx, "ds1", "../x", NULL), -VSM_EINVAL);
	ck_assert_int_eq(vsm_image_open_golden(&img, ctx, "ds1", "", NULL), -VSM_EINVAL);
	ck_assert_int_eq(vsm_image_open_golden(&img, ctx, "ds1", "missing", NULL),
			 -VSM_ENOTFOUND);
	ck_assert_int_eq(vsm_image_import(ctx, "ds1", "a/b", top, NULL, 0), -VSM_EINVAL);
	ck_assert_int_eq(vsm_image_import(ctx, "ds1",
					  "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9-d0.qcow2", top,
					  NULL, 0), -VSM_EINVAL);
	ck_assert_int_eq(vsm_image_import(ctx, "ds1", "x", "/nonexistent/file", NULL, 0),
			 -VSM_ENOTFOUND);
	ck_assert_int_eq(vsm_image_import(ctx, "ds1", "x", top, NULL, 1), -VSM_EINVAL);
	ck_assert_int_eq(tu_count_files(dsdir), 3); /* gold, web's d0 and state */
	vsm_ctx_free(ctx);
	free(top);
}
END_TEST

static Suite *imageds_suite(void)
{
	Suite *s = suite_create("imageds");
	TCase *tc = tcase_create("datastore images");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, import_serves_base);
	tcase_add_test(tc, raw_import_and_export);
	tcase_add_test(tc, failed_import_leaves_nothing);
	tcase_add_test(tc, crashed_import_rolled_back);
	tcase_add_test(tc, owner_elsewhere_refuses_write);
	tcase_add_test(tc, bad_arguments_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(imageds_suite());
}
