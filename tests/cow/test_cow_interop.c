/*
 * cow-interop: what qemu-img writes. Images of compat 0.10 and 1.1, every
 * cluster size, zero and compressed clusters, internal snapshots and
 * 3-deep chains are read identically, written, committed, and still pass
 * `qemu-img check`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cowtest.h"

static uint8_t *qemu_raw(const char *path, size_t *len)
{
	char out[PATH_MAX + 8];
	uint8_t *d;

	snprintf(out, sizeof(out), "%s.ref", path);
	ck_assert_int_eq(ct_sh("%s convert -O raw '%s' '%s'", ct_qemu_img(), path, out), 0);
	d = ct_read_file(out, len);
	remove(out);
	ck_assert_ptr_nonnull(d);
	return d;
}

static void write_some(vsm_image *img, uint8_t *model, size_t size, uint64_t seed, int n)
{
	uint64_t rs = seed;
	int i;

	for (i = 0; i < n; i++)
		ct_random_op(img, model, size, &rs, 150000);
}

static const struct { const char *compat; uint32_t cs; } cfg[] = {
	{ "0.10", 512 }, { "0.10", 4096 }, { "0.10", 65536 }, { "0.10", 2097152 },
	{ "1.1", 512 }, { "1.1", 4096 }, { "1.1", 65536 }, { "1.1", 2097152 },
};

START_TEST(qemu_images)
{
	char path[PATH_MAX], name[64];
	size_t size = 8u << 20, n = 0;
	uint8_t *model;
	vsm_image *img;

	snprintf(name, sizeof(name), "q%d.qcow2", _i);
	ct_path(path, name);
	ck_assert_int_eq(ct_sh("%s create -f qcow2 -o compat=%s,cluster_size=%u '%s' %zu",
			       ct_qemu_img(), cfg[_i].compat, cfg[_i].cs, path, size), 0);
	ck_assert_int_eq(ct_sh("%s -c 'write -P 0x41 0 3M' -c 'write -P 0x42 5000 70000' "
			       "-c 'write -z 1M 1M' -c 'write -P 0x43 7M 300k' '%s'",
			       ct_qemu_io(), path), 0);
	ck_assert_int_eq(ct_sh("%s snapshot -c snap1 '%s'", ct_qemu_img(), path), 0);
	ck_assert_int_eq(ct_sh("%s -c 'write -P 0x44 2M 1M' -c 'write -z 7M 64k' '%s'",
			       ct_qemu_io(), path), 0);
	model = qemu_raw(path, &n);
	ck_assert_uint_eq(n, size);
	ck_assert(ct_vsm_matches(path, model, size));

	CT_OK(vsm_image_open(&img, path, NULL));
	write_some(img, model, size, 31 + (uint64_t)_i, 60);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(path), 0);
	ck_assert(ct_qemu_matches(path, model, size));
	ck_assert_int_eq(ct_sh("%s snapshot -l '%s' | grep -q snap1", ct_qemu_img(), path), 0);
	/* The snapshot still reads what it read before we wrote. */
	ck_assert_int_eq(ct_sh("%s snapshot -a snap1 '%s'", ct_qemu_img(), path), 0);
	ck_assert_int_eq(ct_qemu_check(path), 0);
	ck_assert_int_eq(ct_sh("%s -c 'read -P 0x41 128k 800k' -c 'read -P 0 1M 1M' '%s'",
			       ct_qemu_io(), path), 0);
	free(model);
}
END_TEST

START_TEST(compressed)
{
	char src[PATH_MAX], path[PATH_MAX];
	size_t size = 16u << 20, n = 0;
	uint8_t *model;
	vsm_image *img;

	ct_path(src, "plain.qcow2");
	ct_path(path, "comp.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s' %zu", ct_qemu_img(), src, size), 0);
	ck_assert_int_eq(ct_sh("%s -c 'write -P 0x61 0 6M' -c 'write -P 0x62 9M 2M' '%s'",
			       ct_qemu_io(), src), 0);
	ck_assert_int_eq(ct_sh("%s convert -c -O qcow2 '%s' '%s'", ct_qemu_img(), src, path), 0);
	ck_assert_int_eq(ct_sh("%s snapshot -c s '%s'", ct_qemu_img(), path), 0);
	model = qemu_raw(path, &n);
	ck_assert(ct_vsm_matches(path, model, size));
	CT_OK(vsm_image_open(&img, path, NULL));
	write_some(img, model, size, 5, 80);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(path), 0);
	ck_assert(ct_qemu_matches(path, model, size));
	free(model);
}
END_TEST

START_TEST(chain_of_three)
{
	char b[PATH_MAX], m[PATH_MAX], t[PATH_MAX];
	size_t size = 8u << 20, n = 0;
	uint8_t *model;
	vsm_image *img;
	vsm_image_info *inf;

	ct_path(b, "c-base.qcow2");
	ct_path(m, "c-mid.qcow2");
	ct_path(t, "c-top.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 -o compat=0.10,cluster_size=4096 '%s' %zu",
			       ct_qemu_img(), b, size), 0);
	ck_assert_int_eq(ct_sh("%s -c 'write -P 0x71 0 8M' '%s'", ct_qemu_io(), b), 0);
	ck_assert_int_eq(ct_sh("cd '%s' && %s create -f qcow2 -b c-base.qcow2 -F qcow2 c-mid.qcow2",
			       ct_dir(), ct_qemu_img()), 0);
	ck_assert_int_eq(ct_sh("%s -c 'write -P 0x72 1M 2M' -c 'write -z 5M 1M' '%s'",
			       ct_qemu_io(), m), 0);
	ck_assert_int_eq(ct_sh("cd '%s' && %s create -f qcow2 -o cluster_size=512 -b c-mid.qcow2 "
			       "-F qcow2 c-top.qcow2", ct_dir(), ct_qemu_img()), 0);
	ck_assert_int_eq(ct_sh("%s -c 'write -P 0x73 2M 100k' '%s'", ct_qemu_io(), t), 0);
	model = qemu_raw(t, &n);
	ck_assert(ct_vsm_matches(t, model, size));

	CT_OK(vsm_image_open(&img, t, NULL));
	CT_OK(vsm_image_info_get(&inf, img, 2));
	ck_assert_uint_eq(inf->cluster_size, 4096);
	ck_assert_uint_eq(inf->qcow2_version, 2);
	vsm_image_info_free(inf);
	ck_assert_int_eq(vsm_image_info_get(&inf, img, 3), -VSM_ENOTFOUND);
	write_some(img, model, size, 8, 50);
	CT_OK(vsm_image_commit(img, 0));
	write_some(img, model, size, 9, 20);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(t), 0);
	ck_assert_int_eq(ct_qemu_check(m), 0);
	ck_assert_int_eq(ct_qemu_check(b), 0);
	ck_assert(ct_qemu_matches(t, model, size));
	/* commit the middle into the v2 base too */
	CT_OK(vsm_image_open(&img, m, NULL));
	CT_OK(vsm_image_commit(img, 0));
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(m), 0);
	ck_assert_int_eq(ct_qemu_check(b), 0);
	ck_assert(ct_qemu_matches(t, model, size));
	free(model);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cow-interop");
	TCase *tc = tcase_create("interop");

	tcase_add_unchecked_fixture(tc, ct_setup, ct_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, qemu_images, 0, (int)(sizeof(cfg) / sizeof(cfg[0])));
	tcase_add_test(tc, compressed);
	tcase_add_test(tc, chain_of_three);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ct_run(suite());
}
