/*
 * cow-faults: a fault campaign over image writes. The Nth read, write or
 * flush of the image fails (lib/io/fault.h), for every N until a run
 * meets no fault, once as a transient fault and once sticky, with EIO and
 * with ENOSPC. Each run writes a fixed mix (allocating whole clusters,
 * partial clusters over data and over nothing, overwrites in place,
 * writes across an L2 table's range) with two flushes among them, and
 * closes. Afterwards, with the fault gone: qemu-img check finds no
 * corruption (leaks allowed: rc 0 or 3), and every byte an acknowledged
 * write put there reads back through qemu-img. Acknowledged means as for
 * a disk with a volatile cache: the write returned 0 and a later flush
 * (or the close) returned 0 too. Only the ranges of writes that failed,
 * or that no successful flush covered, may hold either old or new data. (Before: one failed data write left L2 entries pointing at
 * clusters never written, past the end of the file, and close cleared
 * the dirty bit over them.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cowtest.h"
#include "fault.h"

#define MiB (1024 * 1024)
#define IMG_SIZE (8 * MiB)

typedef struct {
	uint64_t off;
	uint32_t len;   /* 0: a flush */
	uint8_t pat;
} wr;

/* 4 KiB clusters so that 8 MiB spans two L2 tables (512 entries each). */
static const wr mix[] = {
	{ 0, 4096, 0x11 },             /* whole cluster over qemu's data */
	{ 6 * MiB, 16384, 0x22 },      /* four fresh clusters */
	{ 6 * MiB + 100, 300, 0x33 },  /* partial, over our own data */
	{ 0, 0, 0 },                   /* flush */
	{ 3 * MiB + 512, 1024, 0x44 }, /* partial, over nothing */
	{ 2 * MiB - 8192, 16384, 0x55 }, /* across the 2 MiB L2 boundary */
	{ 512 * 1024, 65536, 0x66 },   /* over qemu's data, many clusters */
	{ 0, 0, 0 },                   /* flush */
	{ 7 * MiB, 4096, 0x77 },
	{ 6 * MiB, 4096, 0x88 },       /* in place again */
};

typedef struct {
	uint8_t *model;   /* what acknowledged writes put there */
	uint8_t *unknown; /* 1: old or new data may be there */
	uint8_t *pending; /* 1: written, no flush since */
} disk;

static void model_init(disk *d)
{
	d->model = calloc(1, IMG_SIZE);
	d->unknown = calloc(1, IMG_SIZE);
	d->pending = calloc(1, IMG_SIZE);
	ck_assert(d->model && d->unknown && d->pending);
	memset(d->model, 0x5a, MiB);
}

/* A flush (or close) returned @rc: what it covered is acknowledged, or
 * may be lost. */
static void flushed(disk *d, int rc)
{
	size_t i;

	for (i = 0; rc < 0 && i < IMG_SIZE; i++)
		d->unknown[i] |= d->pending[i];
	memset(d->pending, 0, IMG_SIZE);
}

static void make(char *p)
{
	ct_path(p, "f.qcow2");
	ck_assert_int_eq(ct_sh("rm -f '%s' && %s create -q -f qcow2 -o cluster_size=4096 '%s' 8M",
			       p, ct_qemu_img(), p), 0);
	ck_assert_int_eq(ct_sh("%s -c 'write -P 0x5a 0 1M' '%s' >/dev/null", ct_qemu_io(), p), 0);
}

/* Does the image read back as the model, outside the unknown ranges? */
static void verify(const char *p, const disk *d, const char *run)
{
	char raw[PATH_MAX];
	uint8_t *got;
	size_t n = 0, i;
	int rc = ct_qemu_check(p);

	ck_assert_msg(rc == 0 || rc == 3, "%s: qemu-img check says %d (corrupt)", run, rc);
	ct_path(raw, "f.raw");
	ck_assert_int_eq(ct_sh("%s convert -O raw '%s' '%s'", ct_qemu_img(), p, raw), 0);
	got = ct_read_file(raw, &n);
	ck_assert_uint_eq(n, IMG_SIZE);
	for (i = 0; i < IMG_SIZE; i++)
		if (!d->unknown[i] && got[i] != d->model[i])
			ck_abort_msg("%s: byte %zu reads 0x%02x, acknowledged 0x%02x", run, i,
				     got[i], d->model[i]);
	free(got);
}

/* One run under @rule; returns how many faults it met. */
static uint64_t one_run(const char *rule, const char *run)
{
	char p[PATH_MAX];
	disk d;
	vsm_image *img = NULL;
	uint8_t buf[65536];
	uint64_t hit;
	size_t i;
	int rc;

	make(p);
	model_init(&d);
	ck_assert_int_eq(vsm__fault_set(rule, "f.qcow2"), 0);
	rc = vsm_image_open(&img, p, NULL);
	if (rc == 0) {
		for (i = 0; i < sizeof(mix) / sizeof(mix[0]); i++) {
			if (mix[i].len == 0) {
				flushed(&d, vsm_image_flush(img));
				continue;
			}
			memset(buf, mix[i].pat, mix[i].len);
			rc = vsm_image_write(img, buf, mix[i].len, mix[i].off, 0);
			if (rc == 0) {
				memcpy(d.model + mix[i].off, buf, mix[i].len);
				memset(d.pending + mix[i].off, 1, mix[i].len);
			} else {
				memset(d.unknown + mix[i].off, 1, mix[i].len);
			}
		}
		flushed(&d, vsm_image_close(img));
	}
	hit = vsm__fault_failed();
	vsm__fault_set(NULL, NULL);
	verify(p, &d, run);
	free(d.model);
	free(d.unknown);
	free(d.pending);
	return hit;
}

static void campaign(const char *op, const char *mode, const char *err)
{
	char rule[64], run[128];
	uint64_t n;

	for (n = 1; n < 10000; n++) {
		snprintf(rule, sizeof(rule), "%s:%llu:%s:%s", op, (unsigned long long)n, mode, err);
		snprintf(run, sizeof(run), "rule %s", rule);
		if (one_run(rule, run) == 0)
			break;
	}
	ck_assert_msg(n > 1, "%s: the first %s never happened", op, op);
	ck_assert_msg(n < 10000, "%s: faults went on past 10000 runs", rule);
	fprintf(stderr, "cow-faults: %s %s %s: %llu runs with a fault\n", op, mode, err,
		(unsigned long long)(n - 1));
}

START_TEST(write_transient_eio) { campaign("write", "transient", "eio"); } END_TEST
START_TEST(write_sticky_enospc) { campaign("write", "sticky", "enospc"); } END_TEST
START_TEST(flush_transient_eio) { campaign("flush", "transient", "eio"); } END_TEST
START_TEST(flush_sticky_eio) { campaign("flush", "sticky", "eio"); } END_TEST
START_TEST(read_transient_eio) { campaign("read", "transient", "eio"); } END_TEST
START_TEST(read_sticky_eio) { campaign("read", "sticky", "eio"); } END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cow-faults");
	TCase *tc = tcase_create("faults");

	tcase_add_unchecked_fixture(tc, ct_setup, ct_teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, write_transient_eio);
	tcase_add_test(tc, write_sticky_enospc);
	tcase_add_test(tc, flush_transient_eio);
	tcase_add_test(tc, flush_sticky_eio);
	tcase_add_test(tc, read_transient_eio);
	tcase_add_test(tc, read_sticky_eio);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ct_run(suite());
}
