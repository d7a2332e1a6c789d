/*
 * cow-overlap: the allocator never writes over metadata, whatever the
 * refcounts say. An image whose refcounts leave a piece of its metadata
 * unaccounted for (a refcount-table entry of 0, a refcount of 0 for the
 * L1 table or an L2 table) stays readable; a change is refused with the
 * reason and leaves every byte as it was; `check --repair` makes it
 * writable again. (Before: the first write looped for ever writing
 * refcount blocks over the header, or put guest data on the L1 table and
 * returned 0.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cowtest.h"

#define MiB (1024 * 1024)

/* A 64 MiB qcow2 image (64 KiB clusters) with 1 MiB of 0x5a at 0. */
static void make(char *out, const char *name)
{
	ct_path(out, name);
	ck_assert_int_eq(ct_sh("%s create -q -f qcow2 '%s' 64M", ct_qemu_img(), out), 0);
	ck_assert_int_eq(ct_sh("%s -c 'write -P 0x5a 0 1M' '%s' >/dev/null", ct_qemu_io(), out), 0);
}

/* The refcount entry (16 bits) of cluster @cl, through refcount block 0. */
static uint64_t rc_entry_off(const char *p, uint64_t cl)
{
	uint64_t rt = ct_get_be(p, 48, 8), rb = ct_get_be(p, rt, 8);

	ck_assert_uint_ne(rb, 0);
	return rb + 2 * cl;
}

/* A write is refused naming @what; the file is byte for byte as before,
 * qemu-img still sees a qcow2 image, and what was there reads back. */
static void write_refused(const char *p, const char *what)
{
	size_t n0 = 0, n1 = 0;
	uint8_t *before = ct_read_file(p, &n0), *after, buf[4096], want[4096];
	vsm_image *img = NULL;
	const vsm_error *e;
	int rc;

	memset(buf, 0xc3, sizeof(buf));
	CT_OK(vsm_image_open(&img, p, NULL));
	rc = vsm_image_write(img, buf, sizeof(buf), 8 * MiB, 0);
	e = vsm_error_last();
	ck_assert_msg(rc == -VSM_ECORRUPT, "write over damaged refcounts gave %d (%s)", rc,
		      e ? e->message : "");
	ck_assert_msg(e && strstr(e->message, "inconsistent") && strstr(e->message, what),
		      "message does not name %s: %s", what, e ? e->message : "");
	/* Refused again, not retried into damage. */
	ck_assert_int_eq(vsm_image_write(img, buf, sizeof(buf), 0, 0), -VSM_ECORRUPT);
	CT_OK(vsm_image_read(img, buf, sizeof(buf), 4096));
	memset(want, 0x5a, sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));
	CT_OK(vsm_image_close(img));
	after = ct_read_file(p, &n1);
	ck_assert_uint_eq(n0, n1);
	ck_assert_msg(memcmp(before, after, n0) == 0, "a refused write changed '%s'", p);
	free(before);
	free(after);
	ck_assert_int_eq(ct_sh("%s info '%s' | grep -q 'file format: qcow2'", ct_qemu_img(), p), 0);
}

/* After a repair, writes work and qemu-img agrees with what was written. */
static void repaired_then_writes(const char *p)
{
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image_check_result cr = VSM_IMAGE_CHECK_RESULT_INIT;
	vsm_image *img = NULL;
	uint8_t buf[4096];

	CT_OK(vsm_image_open(&img, p, &oo));
	CT_OK(vsm_image_check(&cr, img, VSM_IMAGE_CHECK_REPAIR));
	memset(buf, 0xc3, sizeof(buf));
	CT_OK(vsm_image_write(img, buf, sizeof(buf), 8 * MiB, 0));
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(p), 0);
	ck_assert_int_eq(ct_sh("%s -c 'read -P 0xc3 8M 4k' -c 'read -P 0x5a 0 1M' '%s' "
			       "| grep -q -v 'Pattern verification failed'", ct_qemu_io(), p), 0);
	ck_assert_int_ne(ct_sh("%s -c 'read -P 0xc3 8M 4k' -c 'read -P 0x5a 0 1M' '%s' "
			       "| grep -q 'Pattern verification failed'", ct_qemu_io(), p), 0);
}

START_TEST(refcount_table_entry_zero)
{
	char p[PATH_MAX];

	make(p, "rt0.qcow2");
	ct_put_be(p, ct_get_be(p, 48, 8), 0, 8);
	write_refused(p, "the header");
}
END_TEST

START_TEST(l1_table_refcount_zero)
{
	char p[PATH_MAX];
	uint64_t l1 = 0;

	make(p, "l1.qcow2");
	l1 = ct_get_be(p, 40, 8);
	ct_put_be(p, rc_entry_off(p, l1 / 65536), 0, 2);
	write_refused(p, "the L1 table");
	repaired_then_writes(p);
}
END_TEST

START_TEST(l2_table_refcount_zero)
{
	char p[PATH_MAX];
	uint64_t l1, l2;

	make(p, "l2.qcow2");
	l1 = ct_get_be(p, 40, 8);
	l2 = ct_get_be(p, l1, 8) & 0x00fffffffffffe00ull;
	ck_assert_uint_ne(l2, 0);
	ct_put_be(p, rc_entry_off(p, l2 / 65536), 0, 2);
	write_refused(p, "L2 table");
	repaired_then_writes(p);
}
END_TEST

START_TEST(refcount_block_refcount_zero)
{
	char p[PATH_MAX];
	uint64_t rt, rb;

	make(p, "rb.qcow2");
	rt = ct_get_be(p, 48, 8);
	rb = ct_get_be(p, rt, 8);
	ct_put_be(p, rc_entry_off(p, rb / 65536), 0, 2);
	write_refused(p, "refcount block 0");
	repaired_then_writes(p);
}
END_TEST

/* A refcount-table entry naming a block past the end of the file: the
 * write is refused (the block cannot be read), and check --repair forgets
 * the entry and writes a new block for its range (it used to leave the
 * error in place, so the image could never be written again). */
START_TEST(refcount_table_entry_past_end)
{
	char p[PATH_MAX];
	vsm_image *img = NULL;
	uint8_t buf[4096];
	const vsm_error *e;
	int rc;

	make(p, "rtend.qcow2");
	ct_put_be(p, ct_get_be(p, 48, 8), 0x40000000ull, 8);
	memset(buf, 0xc3, sizeof(buf));
	CT_OK(vsm_image_open(&img, p, NULL));
	rc = vsm_image_write(img, buf, sizeof(buf), 8 * MiB, 0);
	e = vsm_error_last();
	ck_assert_msg(rc == -VSM_ECORRUPT && e && strstr(e->message, "past end of file"),
		      "write with a refcount block past the end gave %d (%s)", rc,
		      e ? e->message : "");
	CT_OK(vsm_image_close(img));
	repaired_then_writes(p);
}
END_TEST

START_TEST(consistent_image_writes)
{
	char p[PATH_MAX];
	vsm_image *img = NULL;
	uint8_t buf[4096];

	/* The check costs nothing to a sound image: writes go on. */
	make(p, "ok.qcow2");
	memset(buf, 0xc3, sizeof(buf));
	CT_OK(vsm_image_open(&img, p, NULL));
	CT_OK(vsm_image_write(img, buf, sizeof(buf), 8 * MiB, 0));
	CT_OK(vsm_image_write(img, buf, sizeof(buf), 40 * MiB, 0));
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(p), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cow-overlap");
	TCase *tc = tcase_create("overlap");

	tcase_add_unchecked_fixture(tc, ct_setup, ct_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, refcount_table_entry_zero);
	tcase_add_test(tc, l1_table_refcount_zero);
	tcase_add_test(tc, l2_table_refcount_zero);
	tcase_add_test(tc, refcount_block_refcount_zero);
	tcase_add_test(tc, refcount_table_entry_past_end);
	tcase_add_test(tc, consistent_image_writes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ct_run(suite());
}
