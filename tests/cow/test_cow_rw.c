/*
 * cow-rw: what libvsm writes. Randomized write/zero/discard sequences
 * (with reopen, commit, flatten, resize, convert) checked against an
 * in-memory model, qemu-img check, qemu-img convert and libqcow.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cowtest.h"

static const uint32_t sizes[] = { 512, 4096, 65536, 2097152, 65536, 16384 };
static const unsigned int rbits[] = { 16, 1, 64, 8, 2, 32 };

static vsm_image *open_rw(const char *path)
{
	vsm_image *img = NULL;

	CT_OK(vsm_image_open(&img, path, NULL));
	return img;
}

START_TEST(random_sequences)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	uint64_t rs = 0x9e3779b97f4a7c15ull + (uint64_t)_i * 7919;
	size_t size = (size_t)(_i == 3 ? 40 : 12) << 20;
	char path[PATH_MAX];
	uint8_t *model = calloc(1, size);
	vsm_image *img;
	int i;

	snprintf(path, sizeof(path), "%s/rand%d.qcow2", ct_dir(), _i);
	co.size = size;
	co.cluster_size = sizes[_i];
	co.refcount_bits = rbits[_i];
	CT_OK(vsm_image_create(path, &co, 0));
	img = open_rw(path);
	for (i = 0; i < 160; i++) {
		ct_random_op(img, model, size, &rs, sizes[_i] * 3 + 70000);
		if (i % 40 == 39) {
			CT_OK(vsm_image_close(img));
			img = open_rw(path);
		} else if (i % 13 == 0) {
			CT_OK(vsm_image_flush(img));
		}
	}
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(path), 0);
	ck_assert(ct_vsm_matches(path, model, size));
	ck_assert(ct_qemu_matches(path, model, size));
	free(model);
}
END_TEST

START_TEST(overlay_commit_flatten)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	vsm_image_check_result cr = VSM_IMAGE_CHECK_RESULT_INIT;
	size_t size = 16u << 20;
	uint64_t rs = 12345;
	char base[PATH_MAX], ov[PATH_MAX];
	uint8_t *model = calloc(1, size), *bmodel;
	vsm_image *img;
	vsm_image_info *inf;
	int i;

	ct_path(base, "base.qcow2");
	ct_path(ov, "ov.qcow2");
	co.size = size;
	co.cluster_size = 4096;
	CT_OK(vsm_image_create(base, &co, 0));
	img = open_rw(base);
	for (i = 0; i < 60; i++)
		ct_random_op(img, model, size, &rs, 200000);
	CT_OK(vsm_image_close(img));
	bmodel = malloc(size);
	memcpy(bmodel, model, size);

	co = (vsm_image_create_opts)VSM_IMAGE_CREATE_OPTS_INIT;
	co.backing = "base.qcow2";
	co.backing_format = "qcow2";
	CT_OK(vsm_image_create(ov, &co, 0));
	img = open_rw(ov);
	ck_assert_uint_eq(vsm_image_size(img), size);
	CT_OK(vsm_image_info_get(&inf, img, 1));
	ck_assert_int_eq(inf->format, VSM_IMAGE_FORMAT_QCOW2);
	vsm_image_info_free(inf);
	for (i = 0; i < 80; i++)
		ct_random_op(img, model, size, &rs, 150000);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(ov), 0);
	ck_assert(ct_qemu_matches(ov, model, size));
	ck_assert(ct_vsm_matches(base, bmodel, size));

	/* commit: the base now reads as the overlay did */
	img = open_rw(ov);
	CT_OK(vsm_image_commit(img, 0));
	CT_OK(vsm_image_check(&cr, img, 0));
	ck_assert_uint_eq(cr.corruptions + cr.leaks, 0);
	for (i = 0; i < 40; i++)
		ct_random_op(img, model, size, &rs, 150000);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(base), 0);
	ck_assert_int_eq(ct_qemu_check(ov), 0);
	ck_assert(ct_qemu_matches(ov, model, size));

	/* flatten: no backing left, same content */
	img = open_rw(ov);
	CT_OK(vsm_image_flatten(img, 0));
	for (i = 0; i < 20; i++)
		ct_random_op(img, model, size, &rs, 150000);
	CT_OK(vsm_image_info_get(&inf, img, 0));
	ck_assert_ptr_null(inf->backing);
	vsm_image_info_free(inf);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_sh("%s info '%s' | grep -q 'backing file'", ct_qemu_img(), ov), 1);
	ck_assert_int_eq(ct_qemu_check(ov), 0);
	ck_assert(ct_qemu_matches(ov, model, size));
	free(model);
	free(bmodel);
}
END_TEST

START_TEST(resize_grows_l1)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	size_t size = 1u << 20, nsize = 48u << 20;
	uint64_t rs = 777;
	char path[PATH_MAX];
	uint8_t *model = calloc(1, nsize);
	vsm_image *img;
	int i;

	ct_path(path, "grow.qcow2");
	co.size = size;
	co.cluster_size = 512;
	CT_OK(vsm_image_create(path, &co, 0));
	img = open_rw(path);
	for (i = 0; i < 20; i++)
		ct_random_op(img, model, size, &rs, 20000);
	CT_OK(vsm_image_resize(img, nsize, 0));
	ck_assert_uint_eq(vsm_image_size(img), nsize);
	ck_assert_int_eq(vsm_image_resize(img, size, 0), -VSM_ENOTSUP);
	for (i = 0; i < 40; i++)
		ct_random_op(img, model, nsize, &rs, 300000);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(path), 0);
	ck_assert(ct_qemu_matches(path, model, nsize));
	free(model);
}
END_TEST

START_TEST(convert_sparse)
{
	vsm_image_convert_opts cv = VSM_IMAGE_CONVERT_OPTS_INIT;
	size_t size = 64u << 20, n = 0;
	char raw[PATH_MAX], q[PATH_MAX], back[PATH_MAX];
	uint8_t *model = calloc(1, size), *data;
	FILE *f;
	struct stat st;
	size_t i;

	ct_path(raw, "src.raw");
	ct_path(q, "dst.qcow2");
	ct_path(back, "back.raw");
	for (i = 0; i < 8; i++)
		memset(model + i * (7u << 20) + 4096 * i, (int)(i + 1), 100000);
	f = fopen(raw, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(model, 1, size, f), size);
	fclose(f);
	CT_OK(vsm_image_convert(raw, q, &cv));
	ck_assert_int_eq(vsm_image_convert(raw, q, &cv), -VSM_EEXISTS);
	ck_assert_int_eq(ct_qemu_check(q), 0);
	ck_assert(ct_qemu_matches(q, model, size));
	ck_assert_int_eq(stat(q, &st), 0);
	ck_assert_int_lt(st.st_size, 4 << 20); /* zeros were not written */
	cv.format = "raw";
	CT_OK(vsm_image_convert(q, back, &cv));
	data = ct_read_file(back, &n);
	ck_assert_uint_eq(n, size);
	ck_assert(memcmp(data, model, size) == 0);
	ck_assert_int_eq(stat(back, &st), 0);
	ck_assert_int_lt(st.st_blocks * 512, 8 << 20);
	free(data);
	free(model);
}
END_TEST

START_TEST(overlay_create_is_cheap)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	char base[PATH_MAX], ov[PATH_MAX];
	struct stat st;
	vsm_image *img;
	vsm_image_extent *map;
	size_t n;
	uint8_t buf[4096];

	ct_path(base, "golden.raw");
	ct_path(ov, "clone.qcow2");
	ck_assert_int_eq(ct_sh("truncate -s 1T '%s'", base), 0);
	co.backing = "golden.raw";
	CT_OK(vsm_image_create(ov, &co, 0));
	ck_assert_int_eq(stat(ov, &st), 0);
	ck_assert_int_lt(st.st_size, 1 << 20);
	ck_assert_int_eq(ct_qemu_check(ov), 0);
	img = open_rw(ov);
	ck_assert_uint_eq(vsm_image_size(img), 1ull << 40);
	memset(buf, 0xab, sizeof(buf));
	CT_OK(vsm_image_write(img, buf, sizeof(buf), (1ull << 40) - 8192, 0));
	CT_OK(vsm_image_map(&map, &n, img));
	ck_assert_uint_ge(n, 2);
	ck_assert_uint_eq(map[0].depth, 1);
	ck_assert_int_eq(map[n - 1].depth, 0);
	ck_assert_int_eq(map[n - 1].data, 1);
	vsm_image_extent_list_free(map);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(ov), 0);
	/* existing path refused, backing that escapes refused */
	ck_assert_int_eq(vsm_image_create(ov, &co, 0), -VSM_EEXISTS);
	co.backing = "../golden.raw";
	ct_path(ov, "bad.qcow2");
	ck_assert_int_eq(vsm_image_create(ov, &co, 0), -VSM_EPERM);
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, ".."));
}
END_TEST

START_TEST(map_matches_model)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	size_t size = 8u << 20, i, n;
	uint64_t rs = 4242;
	char path[PATH_MAX];
	uint8_t *model = calloc(1, size);
	vsm_image_extent *map;
	vsm_image *img;
	uint64_t covered = 0;

	ct_path(path, "map.qcow2");
	co.size = size;
	CT_OK(vsm_image_create(path, &co, 0));
	img = open_rw(path);
	for (i = 0; i < 30; i++)
		ct_random_op(img, model, size, &rs, 300000);
	CT_OK(vsm_image_map(&map, &n, img));
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(map[i].start, covered);
		covered += map[i].length;
		if (map[i].zero) {
			size_t j;

			for (j = 0; j < map[i].length; j++)
				ck_assert_uint_eq(model[map[i].start + j], 0);
		}
	}
	ck_assert_uint_eq(covered, size);
	vsm_image_extent_list_free(map);
	CT_OK(vsm_image_close(img));
	free(model);
}
END_TEST

/* Requests spanning many clusters and several L2 tables, over a mix of
 * backing, allocated and zero clusters: with the default cache (a read or
 * write run continues across tables, L2 tables lying back to back are read
 * ahead) and with a 4-table cache (runs are cut before an eviction). The
 * result is compared with the model, with qemu-img convert's output and
 * with qemu-img check. */
static const uint32_t span_cs[] = { 512, 4096, 512, 4096 };

static void span_read_check(vsm_image *img, const uint8_t *model, size_t size,
			    uint64_t *rs, uint64_t cover)
{
	uint8_t *buf = malloc(6 * cover + 4096);
	int i;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < 40; i++) {
		uint64_t off = ct_rand(rs) % size, len = 1 + ct_rand(rs) % (6 * cover);

		if (i % 3 == 0)
			off -= off % cover; /* start on a table boundary */
		if (off + len > size)
			len = size - off;
		CT_OK(vsm_image_read(img, buf, len, off));
		ck_assert_msg(memcmp(buf, model + off, len) == 0,
			      "read %llu+%llu differs", (unsigned long long)off,
			      (unsigned long long)len);
	}
	free(buf);
}

START_TEST(io_spanning_l2_tables)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	uint64_t cs = span_cs[_i], cover = cs * (cs / 8), rs = 777 + (uint64_t)_i, r;
	size_t size = (size_t)(_i % 2 ? 24 : 2) << 20, n, k;
	char base[PATH_MAX], ov[PATH_MAX];
	uint8_t *model = calloc(1, size), *buf = malloc(6 * cover + 4096);
	vsm_image_extent *map;
	vsm_image *img;
	bool spans = false;
	int i;

	ck_assert_ptr_nonnull(model);
	ck_assert_ptr_nonnull(buf);
	snprintf(base, sizeof(base), "%s/span-base%d.qcow2", ct_dir(), _i);
	snprintf(ov, sizeof(ov), "%s/span-ov%d.qcow2", ct_dir(), _i);
	co.size = size;
	co.cluster_size = (uint32_t)cs;
	CT_OK(vsm_image_create(base, &co, 0));
	img = open_rw(base);
	for (i = 0; i < 30; i++)
		ct_random_op(img, model, size, &rs, (uint32_t)(3 * cover));
	CT_OK(vsm_image_close(img));

	co.size = 0;
	co.backing = strrchr(base, '/') + 1;
	co.backing_format = "qcow2";
	CT_OK(vsm_image_create(ov, &co, 0));
	img = open_rw(ov);
	/* Zeroing one cluster per table allocates the L2 tables back to back
	 * (no data cluster between them), so later data allocations are
	 * host-contiguous across table boundaries. */
	for (r = 0; r < size; r += cover) {
		CT_OK(vsm_image_write_zeroes(img, r + cs, cs, 0));
		memset(model + r + cs, 0, cs);
	}
	for (i = 0; i < 10; i++)
		ct_random_op(img, model, size, &rs, (uint32_t)cover);
	CT_OK(vsm_image_close(img));

	/* Cold caches: read-ahead of the back-to-back tables. */
	oo.cache_max = _i < 2 ? 0 : 4 * cs;
	CT_OK(vsm_image_open(&img, ov, &oo));
	span_read_check(img, model, size, &rs, cover);
	/* Large unaligned writes over several tables and every kind of
	 * cluster (backing, zero, allocated). */
	for (i = 0; i < 25; i++) {
		uint64_t off = ct_rand(&rs) % size, len = 1 + ct_rand(&rs) % (5 * cover);
		uint8_t v = (uint8_t)(1 + ct_rand(&rs) % 250);

		if (i % 2)
			off -= off % cs;
		if (off + len > size)
			len = size - off;
		for (k = 0; k < len; k++)
			buf[k] = (uint8_t)(v + k / 777);
		CT_OK(vsm_image_write(img, buf, len, off, 0));
		memcpy(model + off, buf, len);
		if (i % 8 == 7)
			CT_OK(vsm_image_flush(img));
	}
	span_read_check(img, model, size, &rs, cover);
	CT_OK(vsm_image_close(img));

	CT_OK(vsm_image_open(&img, ov, &oo));
	span_read_check(img, model, size, &rs, cover);
	/* The path under test was taken: some data in the overlay is
	 * host-contiguous across an L2 table boundary. */
	CT_OK(vsm_image_map(&map, &n, img));
	for (k = 0; k < n; k++)
		if (map[k].depth == 0 && map[k].data && map[k].offset != UINT64_MAX &&
		    map[k].start / cover != (map[k].start + map[k].length - 1) / cover)
			spans = true;
	vsm_image_extent_list_free(map);
	ck_assert(spans);
	CT_OK(vsm_image_close(img));

	ck_assert_int_eq(ct_qemu_check(ov), 0);
	ck_assert_int_eq(ct_qemu_check(base), 0);
	ck_assert(ct_qemu_matches(ov, model, size));
	ck_assert(ct_vsm_matches(ov, model, size));
	free(model);
	free(buf);
}
END_TEST

/* libqcow reads what we write: single images and overlays. */
START_TEST(libqcow_reads_ours)
{
	static const uint32_t bcs[] = { 4096, 65536, 65536 };
	static const uint32_t ocs[] = { 4096, 65536, 4096 };
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	size_t size = 8u << 20;
	uint64_t rs = 99 + (uint64_t)_i;
	char base[PATH_MAX], ov[PATH_MAX], bname[64], oname[64];
	const char *chain[3];
	uint8_t *model = calloc(1, size);
	vsm_image *img;
	int i;

	ct_writes_only = getenv("CT_ZEROS") == NULL;
	snprintf(bname, sizeof(bname), "lqb%d.qcow2", _i);
	snprintf(oname, sizeof(oname), "lqo%d.qcow2", _i);
	ct_path(base, bname);
	ct_path(ov, oname);
	co.size = size;
	co.cluster_size = bcs[_i];
	CT_OK(vsm_image_create(base, &co, 0));
	img = open_rw(base);
	for (i = 0; i < 40; i++)
		ct_random_op(img, model, size, &rs, 100000);
	CT_OK(vsm_image_close(img));
	chain[0] = base;
	chain[1] = NULL;
	ck_assert(ct_libqcow_matches(chain, model, size));
	co = (vsm_image_create_opts)VSM_IMAGE_CREATE_OPTS_INIT;
	co.cluster_size = ocs[_i];
	co.backing = bname;
	co.backing_format = "qcow2";
	CT_OK(vsm_image_create(ov, &co, 0));
	img = open_rw(ov);
	for (i = 0; i < 40; i++)
		ct_random_op(img, model, size, &rs, 100000);
	CT_OK(vsm_image_close(img));
	ck_assert(ct_qemu_matches(ov, model, size));
	chain[0] = ov;
	chain[1] = base;
	chain[2] = NULL;
	ck_assert(ct_libqcow_matches(chain, model, size));
	free(model);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cow-rw");
	TCase *tc = tcase_create("rw");

	tcase_add_unchecked_fixture(tc, ct_setup, ct_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, random_sequences, 0, (int)(sizeof(sizes) / sizeof(sizes[0])));
	tcase_add_test(tc, overlay_commit_flatten);
	tcase_add_test(tc, resize_grows_l1);
	tcase_add_test(tc, convert_sparse);
	tcase_add_test(tc, overlay_create_is_cheap);
	tcase_add_test(tc, map_matches_model);
	tcase_add_loop_test(tc, libqcow_reads_ours, 0, 3);
	tcase_add_loop_test(tc, io_spanning_l2_tables, 0,
			    (int)(sizeof(span_cs) / sizeof(span_cs[0])));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ct_run(suite());
}
