/*
 * cow-damaged: damaged and unsupported images fail with a clear error
 * naming the image and the problem, never a crash (run under ASan/UBSan
 * in CI).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cowtest.h"

/* A qemu-made image with some data, named @name; path in @out. */
static void make(char *out, const char *name, const char *opts)
{
	ct_path(out, name);
	ck_assert_int_eq(ct_sh("%s create -f qcow2 %s '%s' 4M", ct_qemu_img(), opts, out), 0);
	ck_assert_int_eq(ct_sh("%s -c 'write -P 0x5a 0 1M' '%s'", ct_qemu_io(), out), 0);
}

static void expect_open_fails(const char *path, int code, const char *words)
{
	vsm_image *img = NULL;
	int rc = vsm_image_open(&img, path, NULL);
	const vsm_error *e = vsm_error_last();

	ck_assert_msg(rc == -code, "open '%s' gave %d, wanted %d (%s)", path, rc, -code,
		      e ? e->message : "");
	ck_assert_ptr_null(img);
	ck_assert_ptr_nonnull(e);
	ck_assert_msg(strstr(e->message, words) != NULL, "message '%s' lacks '%s'",
		      e->message, words);
}

START_TEST(header_damage)
{
	char p[PATH_MAX];

	make(p, "l1far.qcow2", "");
	ct_put_be(p, 40, 1ull << 40, 8);
	expect_open_fails(p, VSM_ECORRUPT, "L1 table offset past end of file");
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, "l1far.qcow2"));

	make(p, "l1big.qcow2", "");
	ct_put_be(p, 36, 0xffffffffu, 4);
	expect_open_fails(p, VSM_ECORRUPT, "absurd");

	make(p, "l1small.qcow2", "");
	ct_put_be(p, 36, 0, 4);
	expect_open_fails(p, VSM_ECORRUPT, "too small");

	make(p, "rtfar.qcow2", "");
	ct_put_be(p, 48, 1ull << 40, 8);
	expect_open_fails(p, VSM_ECORRUPT, "refcount table");

	make(p, "trunc.qcow2", "");
	ck_assert_int_eq(truncate(p, 65536), 0);
	expect_open_fails(p, VSM_ECORRUPT, "past end of file");

	make(p, "cbits.qcow2", "");
	ct_put_be(p, 20, 30, 4);
	expect_open_fails(p, VSM_ECORRUPT, "cluster size");

	make(p, "magic.qcow2", "");
	ct_put_be(p, 4, 7, 4);
	expect_open_fails(p, VSM_EVERSION, "version 7");
}
END_TEST

START_TEST(table_damage)
{
	vsm_image_check_result cr = VSM_IMAGE_CHECK_RESULT_INIT;
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	char p[PATH_MAX];
	vsm_image *img;
	uint8_t buf[4096];
	uint64_t l1, rt, rb;

	/* L2 table past the end of the file */
	make(p, "l2far.qcow2", "");
	l1 = ct_get_be(p, 40, 8);
	ct_put_be(p, l1, (1ull << 40) | (1ull << 63), 8);
	CT_OK(vsm_image_open(&img, p, NULL));
	ck_assert_int_eq(vsm_image_read(img, buf, sizeof(buf), 0), -VSM_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, "past end of file"));
	ck_assert_int_eq(vsm_image_write(img, buf, sizeof(buf), 0, 0), -VSM_ECORRUPT);
	CT_OK(vsm_image_check(&cr, img, 0));
	ck_assert_uint_gt(cr.corruptions, 0);
	vsm_image_close(img);

	/* truncated in the middle of the data */
	make(p, "cut.qcow2", "");
	ck_assert_int_eq(truncate(p, 5 * 65536 + 100), 0);
	oo.flags = VSM_IMAGE_OPEN_RDONLY;
	if (vsm_image_open(&img, p, &oo) == 0) {
		(void)vsm_image_read(img, buf, sizeof(buf), 900000);
		CT_OK(vsm_image_check(&cr, img, 0));
		ck_assert_uint_gt(cr.corruptions + cr.leaks, 0);
		vsm_image_close(img);
	}

	/* a refcount at its maximum for a cluster nothing uses: a leak */
	make(p, "rcmax.qcow2", "");
	rt = ct_get_be(p, 48, 8);
	rb = ct_get_be(p, rt, 8);
	ct_put_be(p, rb + 2 * 100, 0xffff, 2);
	CT_OK(vsm_image_open(&img, p, NULL));
	CT_OK(vsm_image_check(&cr, img, 0));
	ck_assert_uint_eq(cr.corruptions, 0);
	ck_assert_uint_eq(cr.leaks, 1);
	CT_OK(vsm_image_check(&cr, img, VSM_IMAGE_CHECK_REPAIR));
	ck_assert_uint_eq(cr.leaks_fixed, 1);
	vsm_image_close(img);
	ck_assert_int_eq(ct_qemu_check(p), 0);

	/* a refcount too low (0 for a data cluster): corruption, repaired */
	make(p, "rclow.qcow2", "");
	ct_put_be(p, rb + 2 * 6, 0, 2);
	ct_put_be(p, rb + 2 * 7, 5, 2);
	CT_OK(vsm_image_open(&img, p, NULL));
	CT_OK(vsm_image_check(&cr, img, 0));
	ck_assert_uint_gt(cr.corruptions, 0);
	CT_OK(vsm_image_check(&cr, img, VSM_IMAGE_CHECK_REPAIR));
	vsm_image_close(img);
	ck_assert_int_eq(ct_qemu_check(p), 0);
}
END_TEST

START_TEST(backing_refused)
{
	char a[PATH_MAX], b[PATH_MAX];

	ct_path(a, "loop-a.qcow2");
	ct_path(b, "loop-b.qcow2");
	ck_assert_int_eq(ct_sh("cd '%s' && %s create -f qcow2 -u -b loop-b.qcow2 -F qcow2 loop-a.qcow2 1M && "
			       "%s create -f qcow2 -u -b loop-a.qcow2 -F qcow2 loop-b.qcow2 1M",
			       ct_dir(), ct_qemu_img(), ct_qemu_img()), 0);
	expect_open_fails(a, VSM_ECORRUPT, "loops");
	/* the same loop through a different spelling */
	ck_assert_int_eq(ct_sh("cd '%s' && rm loop-b.qcow2 && %s create -f qcow2 -u -b '%s' -F qcow2 loop-b.qcow2 1M",
			       ct_dir(), ct_qemu_img(), a), 0);
	expect_open_fails(a, VSM_ECORRUPT, "loops");

	ct_path(a, "dotdot.qcow2");
	ck_assert_int_eq(ct_sh("cd '%s' && %s create -f qcow2 -u -b ../x.raw -F raw dotdot.qcow2 1M",
			       ct_dir(), ct_qemu_img()), 0);
	expect_open_fails(a, VSM_EPERM, "..");

	ct_path(a, "abs.qcow2");
	ck_assert_int_eq(ct_sh("cd '%s' && %s create -f qcow2 -u -b /etc/hostname -F raw abs.qcow2 1M",
			       ct_dir(), ct_qemu_img()), 0);
	expect_open_fails(a, VSM_EPERM, "outside");

	ct_path(a, "missing.qcow2");
	ck_assert_int_eq(ct_sh("cd '%s' && %s create -f qcow2 -u -b nothere.raw -F raw missing.qcow2 1M",
			       ct_dir(), ct_qemu_img()), 0);
	expect_open_fails(a, VSM_ENOTFOUND, "nothere.raw");
}
END_TEST

START_TEST(features_refused)
{
	vsm_image *img;
	char p[PATH_MAX];
	uint8_t buf[512] = { 1 };

	make(p, "el2.qcow2", "-o extended_l2=on");
	expect_open_fails(p, VSM_ENOTSUP, "extended L2");

	ct_path(p, "df.qcow2");
	ck_assert_int_eq(ct_sh("cd '%s' && %s create -f qcow2 -o data_file=df.data df.qcow2 1M",
			       ct_dir(), ct_qemu_img()), 0);
	expect_open_fails(p, VSM_ENOTSUP, "external data file");

	ct_path(p, "zstd.qcow2");
	if (ct_sh("%s create -f qcow2 -o compression_type=zstd '%s' 1M", ct_qemu_img(), p) == 0)
		expect_open_fails(p, VSM_ENOTSUP, "zstd");

	make(p, "crypt.qcow2", "");
	ct_put_be(p, 32, 2, 4);
	expect_open_fails(p, VSM_ENOTSUP, "encryption");

	make(p, "unknown.qcow2", "");
	ct_put_be(p, 72, 1ull << 20, 8);
	expect_open_fails(p, VSM_ENOTSUP, "incompatible feature bit 20");

	make(p, "corrupt.qcow2", "");
	ct_put_be(p, 72, 2, 8);
	CT_OK(vsm_image_open(&img, p, NULL));
	CT_OK(vsm_image_read(img, buf, sizeof(buf), 0));
	ck_assert_uint_eq(buf[0], 0x5a);
	ck_assert_int_eq(vsm_image_write(img, buf, sizeof(buf), 0, 0), -VSM_ESTATE);
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, "corrupt"));
	vsm_image_close(img);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cow-damaged");
	TCase *tc = tcase_create("damaged");

	tcase_add_unchecked_fixture(tc, ct_setup, ct_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, header_damage);
	tcase_add_test(tc, table_damage);
	tcase_add_test(tc, backing_refused);
	tcase_add_test(tc, features_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ct_run(suite());
}
