/*
 * cow-header: every header rewrite (flatten, commit, rebase) keeps the
 * image's own header_length and its extensions, and a rewrite that does
 * not fit in the header cluster is refused without a write. Images come
 * from qemu-img, patched into the layouts other qemu-img versions write
 * (header_length 104 before QEMU 5.1) and into crowded small-cluster
 * headers; qemu-img info/check are the oracles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cowtest.h"
#include "codec.h"
#include "cow.h"

#define EXT_UNKNOWN 0x7a7a0001u

static uint8_t *read_cluster(const char *path, size_t *cs)
{
	size_t n = 0;
	uint8_t *f = ct_read_file(path, &n), *h;

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_ge(n, 512);
	*cs = (size_t)1 << vsm__get_be32(f + 20);
	ck_assert_uint_ge(n, *cs);
	h = malloc(*cs);
	ck_assert_ptr_nonnull(h);
	memcpy(h, f, *cs);
	free(f);
	return h;
}

static void write_cluster(const char *path, const uint8_t *h, size_t cs)
{
	FILE *f = fopen(path, "r+b");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(h, 1, cs, f), cs);
	ck_assert_int_eq(fclose(f), 0);
}

/* Turn a header_length 112 image into the pre-5.1 layout: header_length
 * 104, extensions and backing name 8 bytes earlier. */
static void make_hl104(const char *path)
{
	size_t cs;
	uint8_t *h = read_cluster(path, &cs);
	uint64_t boff = vsm__get_be64(h + 8);

	ck_assert_uint_eq(vsm__get_be32(h + 100), 112);
	ck_assert_uint_eq(h[104], 0); /* zlib */
	memmove(h + 104, h + 112, cs - 112);
	memset(h + cs - 8, 0, 8);
	vsm__put_be32(h + 100, 104);
	if (boff)
		vsm__put_be64(h + 8, boff - 8);
	write_cluster(path, h, cs);
	free(h);
}

static uint32_t header_length(const char *path)
{
	size_t cs;
	uint8_t *h = read_cluster(path, &cs);
	uint32_t hl = vsm__get_be32(h + 100);

	free(h);
	return hl;
}

/* Offset of extension @type in the header of @path, 0 when absent. */
static uint64_t find_ext(const char *path, uint32_t type, uint32_t *len)
{
	size_t cs;
	uint8_t *h = read_cluster(path, &cs);
	uint64_t p = vsm__get_be32(h + 4) == 3 ? vsm__get_be32(h + 100) : 72, found = 0;

	while (p + 8 <= cs) {
		uint32_t t = vsm__get_be32(h + p), l = vsm__get_be32(h + p + 4);

		if (t == 0)
			break;
		if (t == type) {
			found = p;
			*len = l;
			break;
		}
		p += 8 + ((l + 7ull) & ~7ull);
	}
	free(h);
	return found;
}

static uint8_t *qemu_raw(const char *path, size_t *len)
{
	char out[PATH_MAX];
	uint8_t *d;

	snprintf(out, sizeof(out), "%s.raw", path);
	ck_assert_int_eq(ct_sh("%s convert -O raw '%s' '%s'", ct_qemu_img(), path, out), 0);
	d = ct_read_file(out, len);
	ck_assert_ptr_nonnull(d);
	unlink(out);
	return d;
}

static int qemu_info(const char *path)
{
	return ct_sh("%s info '%s'", ct_qemu_img(), path);
}

/* base <- top, both qemu-img v3 images patched to header_length 104. */
static uint8_t *make_chain_hl104(char *b, char *t, const char *tag, size_t size)
{
	char bn[64], tn[64];
	size_t n = 0;
	uint8_t *model;

	snprintf(bn, sizeof(bn), "%s-base.qcow2", tag);
	snprintf(tn, sizeof(tn), "%s-top.qcow2", tag);
	ct_path(b, bn);
	ct_path(t, tn);
	ck_assert_int_eq(ct_sh("%s create -f qcow2 -o compat=1.1 '%s' %zu", ct_qemu_img(), b,
			       size), 0);
	ck_assert_int_eq(ct_sh("%s -c 'write -P 0x41 0 4M' '%s'", ct_qemu_io(), b), 0);
	ck_assert_int_eq(ct_sh("cd '%s' && %s create -f qcow2 -o compat=1.1 -b %s -F qcow2 %s",
			       ct_dir(), ct_qemu_img(), bn, tn), 0);
	ck_assert_int_eq(ct_sh("%s -c 'write -P 0x42 1M 1M' -c 'write -z 3M 64k' '%s'",
			       ct_qemu_io(), t), 0);
	make_hl104(b);
	make_hl104(t);
	/* The patched layout is what old QEMU wrote: today's still opens it. */
	ck_assert_int_eq(qemu_info(b), 0);
	ck_assert_int_eq(qemu_info(t), 0);
	ck_assert_int_eq(ct_qemu_check(t), 0);
	model = qemu_raw(t, &n);
	ck_assert_uint_eq(n, size);
	return model;
}

START_TEST(flatten_hl104)
{
	char b[PATH_MAX], t[PATH_MAX];
	size_t size = 8u << 20;
	uint8_t *model = make_chain_hl104(b, t, "f", size);
	uint32_t len = 0;
	vsm_image *img;

	CT_OK(vsm_image_open(&img, t, NULL));
	CT_OK(vsm_image_flatten(img, 0));
	CT_OK(vsm_image_close(img));
	/* It used to come back with header_length 112 and an extension
	 * magic as compression type: "unknown compression type". */
	ck_assert_int_eq(qemu_info(t), 0);
	ck_assert_uint_eq(header_length(t), 104);
	ck_assert_int_eq(ct_qemu_check(t), 0);
	ck_assert_int_eq(ct_sh("%s info '%s' | grep -q 'backing file'", ct_qemu_img(), t), 1);
	/* qemu-img's feature table survives. */
	ck_assert_uint_ne(find_ext(t, 0x6803f857u, &len), 0);
	ck_assert(ct_qemu_matches(t, model, size));
	ck_assert(ct_vsm_matches(t, model, size));
	free(model);
}
END_TEST

START_TEST(commit_hl104)
{
	char b[PATH_MAX], t[PATH_MAX];
	size_t size = 8u << 20;
	uint8_t *model = make_chain_hl104(b, t, "c", size);
	vsm_image *img;

	CT_OK(vsm_image_open(&img, t, NULL));
	CT_OK(vsm_image_commit(img, 0));
	CT_OK(vsm_image_close(img));
	ck_assert_uint_eq(header_length(t), 104);
	ck_assert_uint_eq(header_length(b), 104);
	ck_assert_int_eq(qemu_info(t), 0);
	ck_assert_int_eq(qemu_info(b), 0);
	ck_assert_int_eq(ct_qemu_check(t), 0);
	ck_assert_int_eq(ct_qemu_check(b), 0);
	ck_assert(ct_qemu_matches(t, model, size));
	ck_assert(ct_qemu_matches(b, model, size));
	ck_assert(ct_vsm_matches(t, model, size));
	free(model);
}
END_TEST

START_TEST(rebase_hl104)
{
	char b[PATH_MAX], t[PATH_MAX], b2[PATH_MAX];
	size_t size = 8u << 20;
	uint8_t *model = make_chain_hl104(b, t, "r", size);
	uint32_t len = 0;
	vsm_bdev *bd;

	/* A copy of the base under another name reads the same. */
	ct_path(b2, "r-base2.qcow2");
	ck_assert_int_eq(ct_sh("cp '%s' '%s'", b, b2), 0);
	CT_OK(vsm_bdev_open_path(&bd, t, 0));
	CT_OK(vsm_cow_rebase_header(bd, "layer 'r-top'", "r-base2.qcow2", "qcow2"));
	vsm_bdev_close(bd);
	ck_assert_uint_eq(header_length(t), 104);
	ck_assert_int_eq(qemu_info(t), 0);
	ck_assert_int_eq(ct_sh("%s info '%s' | grep -q 'backing file: r-base2.qcow2'",
			       ct_qemu_img(), t), 0);
	ck_assert_int_eq(ct_sh("%s info '%s' | grep -q 'backing file format: qcow2'",
			       ct_qemu_img(), t), 0);
	ck_assert_int_eq(ct_qemu_check(t), 0);
	ck_assert_uint_ne(find_ext(t, 0x6803f857u, &len), 0);
	ck_assert(ct_qemu_matches(t, model, size));
	ck_assert(ct_vsm_matches(t, model, size));
	free(model);
}
END_TEST

/*
 * A 512-byte-cluster layer qemu-img made, with an unknown extension added
 * that leaves @room bytes free after the end-of-extensions marker (and
 * the backing name, which moves to the end).
 */
static void make_crowded(const char *path, const char *backing, size_t room)
{
	size_t cs, hl, p, blen = strlen(backing), elen;
	uint8_t *h, *nh;

	ck_assert_int_eq(ct_sh("cd '%s' && %s create -f qcow2 -o cluster_size=512 -b %s -F qcow2 "
			       "-u '%s' 1M", ct_dir(), ct_qemu_img(), backing, path), 0);
	h = read_cluster(path, &cs);
	ck_assert_uint_eq(cs, 512);
	hl = vsm__get_be32(h + 100);
	nh = calloc(1, cs);
	ck_assert_ptr_nonnull(nh);
	memcpy(nh, h, hl);
	/* qemu-img's extensions, verbatim */
	for (p = hl; vsm__get_be32(h + p) != 0;)
		p += 8 + ((vsm__get_be32(h + p + 4) + 7u) & ~7u);
	memcpy(nh + hl, h + hl, p - hl);
	ck_assert_uint_ge(cs - p - 8 - 8 - blen, room + 8);
	elen = (cs - p - 8 - 8 - blen - room) & ~(size_t)7;
	vsm__put_be32(nh + p, EXT_UNKNOWN);
	vsm__put_be32(nh + p + 4, (uint32_t)elen);
	memset(nh + p + 8, 0x5a, elen);
	p += 8 + elen + 8; /* and the end marker */
	memcpy(nh + p, backing, blen);
	vsm__put_be64(nh + 8, p);
	vsm__put_be32(nh + 16, (uint32_t)blen);
	write_cluster(path, nh, cs);
	free(h);
	free(nh);
}

START_TEST(rebase_crowded_refused)
{
	char t[PATH_MAX], longname[400];
	size_t n0 = 0, n1 = 0;
	uint8_t *before, *after;
	uint32_t len = 0;
	vsm_bdev *bd;
	int rc;

	ct_path(t, "crowded.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s/a.qcow2' 1M", ct_qemu_img(), ct_dir()), 0);
	make_crowded(t, "a.qcow2", 0);
	ck_assert_int_eq(qemu_info(t), 0);
	ck_assert_uint_ne(find_ext(t, EXT_UNKNOWN, &len), 0);
	before = ct_read_file(t, &n0);

	memset(longname, 'b', sizeof(longname) - 1);
	memcpy(longname + sizeof(longname) - 7, ".qcow2", 7);
	CT_OK(vsm_bdev_open_path(&bd, t, 0));
	rc = vsm_cow_rebase_header(bd, "layer 'crowded'", longname, "qcow2");
	ck_assert_int_eq(rc, -VSM_ENOSPC);
	ck_assert_ptr_nonnull(vsm_error_last());
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, "layer 'crowded'"));
	/* Even a shorter name no longer fits next to the format extension. */
	rc = vsm_cow_rebase_header(bd, "layer 'crowded'", "bbbbbbbbbbbbbbbb.qcow2", "qcow2");
	ck_assert_int_eq(rc, -VSM_ENOSPC);
	vsm_bdev_close(bd);

	after = ct_read_file(t, &n1);
	ck_assert_uint_eq(n0, n1);
	ck_assert_mem_eq(before, after, n0);
	ck_assert_int_eq(qemu_info(t), 0);
	ck_assert_int_eq(ct_sh("%s info '%s' | grep -q 'backing file: a.qcow2'",
			       ct_qemu_img(), t), 0);
	free(before);
	free(after);
}
END_TEST

START_TEST(rebase_crowded_fits)
{
	char t[PATH_MAX];
	uint32_t len = 0, elen = 0;
	vsm_bdev *bd;

	ct_path(t, "tight.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s/a.qcow2' 1M", ct_qemu_img(), ct_dir()), 0);
	ck_assert_int_eq(ct_sh("cp '%s/a.qcow2' '%s/bb.qcow2'", ct_dir(), ct_dir()), 0);
	/* Room for exactly one more byte of backing name. */
	make_crowded(t, "a.qcow2", 0);
	ck_assert_uint_ne(find_ext(t, EXT_UNKNOWN, &elen), 0);
	CT_OK(vsm_bdev_open_path(&bd, t, 0));
	CT_OK(vsm_cow_rebase_header(bd, "layer 'tight'", "bb.qcow2", "qcow2"));
	vsm_bdev_close(bd);
	ck_assert_int_eq(qemu_info(t), 0);
	ck_assert_int_eq(ct_sh("%s info '%s' | grep -q 'backing file: bb.qcow2'",
			       ct_qemu_img(), t), 0);
	ck_assert_int_eq(ct_qemu_check(t), 0);
	ck_assert_uint_ne(find_ext(t, EXT_UNKNOWN, &len), 0);
	ck_assert_uint_eq(len, elen);

	CT_OK(vsm_bdev_open_path(&bd, t, 0));
	CT_OK(vsm_cow_rebase_header(bd, "layer 'tight'", NULL, NULL));
	vsm_bdev_close(bd);
	ck_assert_int_eq(qemu_info(t), 0);
	ck_assert_int_eq(ct_sh("%s info '%s' | grep -q 'backing file'", ct_qemu_img(), t), 1);
	ck_assert_int_eq(ct_qemu_check(t), 0);
	/* The format extension went with the name; the unknown one stays. */
	ck_assert_uint_eq(find_ext(t, 0xe2792acau, &len), 0);
	ck_assert_uint_ne(find_ext(t, EXT_UNKNOWN, &len), 0);
	ck_assert_uint_eq(len, elen);
}
END_TEST

/* Extensions that fill the cluster to its last byte, no end marker and no
 * backing name: the format extension alone cannot be added. */
START_TEST(rebase_full_cluster)
{
	char t[PATH_MAX];
	size_t cs, hl, p, n0 = 0, n1 = 0;
	uint8_t *h, *before, *after;
	vsm_bdev *bd;

	ct_path(t, "full.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 -o cluster_size=512 '%s' 1M", ct_qemu_img(),
			       t), 0);
	h = read_cluster(t, &cs);
	hl = vsm__get_be32(h + 100);
	for (p = hl; vsm__get_be32(h + p) != 0;)
		p += 8 + ((vsm__get_be32(h + p + 4) + 7u) & ~7u);
	vsm__put_be32(h + p, EXT_UNKNOWN);
	vsm__put_be32(h + p + 4, (uint32_t)(cs - p - 8));
	memset(h + p + 8, 0x5a, cs - p - 8);
	write_cluster(t, h, cs);
	free(h);
	before = ct_read_file(t, &n0);
	CT_OK(vsm_bdev_open_path(&bd, t, 0));
	ck_assert_int_eq(vsm_cow_rebase_header(bd, "layer 'full'", "a.qcow2", "qcow2"),
			 -VSM_ENOSPC);
	vsm_bdev_close(bd);
	after = ct_read_file(t, &n1);
	ck_assert_uint_eq(n0, n1);
	ck_assert_mem_eq(before, after, n0);
	free(before);
	free(after);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cow-header");
	TCase *tc = tcase_create("header");

	tcase_add_unchecked_fixture(tc, ct_setup, ct_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, flatten_hl104);
	tcase_add_test(tc, commit_hl104);
	tcase_add_test(tc, rebase_hl104);
	tcase_add_test(tc, rebase_crowded_refused);
	tcase_add_test(tc, rebase_crowded_fits);
	tcase_add_test(tc, rebase_full_cluster);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ct_run(suite());
}
