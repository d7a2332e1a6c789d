/*
 * cow-crash: a child process writes through libvsm and is killed at a
 * random point. Afterwards check finds leaks at most, repair clears them,
 * and every write acknowledged before the last completed flush reads back.
 * Also: a lazy-refcounts image whose QEMU writer was killed is repaired
 * (by check with repair, or before the first write) as QEMU repairs it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cowtest.h"

#define SIZE (16u << 20)

struct shared {
	volatile int64_t started;  /* op being done */
	volatile int64_t flushed;  /* every op <= this is durable */
};

struct op {
	uint64_t off, len;
	int kind;
	uint8_t val;
};

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void gen(uint64_t seed, int64_t i, struct op *o)
{
	uint64_t r = mix(seed * 1000003u + (uint64_t)i);

	o->off = mix(r) % SIZE;
	if (r & 1)
		o->off &= ~4095ull;
	o->len = 1 + mix(r + 1) % 200000;
	if (o->off + o->len > SIZE)
		o->len = SIZE - o->off;
	o->kind = (int)(mix(r + 2) % 10);
	o->val = (uint8_t)(1 + mix(r + 3) % 250);
}

static void fill(uint8_t *dst, const struct op *o)
{
	uint64_t j;

	for (j = 0; j < o->len; j++)
		dst[j] = (uint8_t)(o->val + (o->off + j) / 512);
}

static void child(const char *path, uint64_t seed, struct shared *sh)
{
	vsm_image *img;
	uint8_t *buf = malloc(200000);
	struct op o;
	int64_t i;

	if (!buf || vsm_image_open(&img, path, NULL) < 0)
		_exit(10);
	for (i = 0; i < 1000000; i++) {
		int rc;

		sh->started = i;
		gen(seed, i, &o);
		if (o.kind < 7) {
			fill(buf, &o);
			rc = vsm_image_write(img, buf, o.len, o.off, 0);
		} else if (o.kind < 9) {
			rc = vsm_image_write_zeroes(img, o.off, o.len, 0);
		} else {
			rc = vsm_image_discard(img, o.off, o.len, 0);
		}
		if (rc < 0)
			_exit(11);
		if (i % 7 == 6) {
			if (vsm_image_flush(img) < 0)
				_exit(12);
			sh->flushed = i;
		}
	}
	_exit(0);
}

static void run_crash(const char *path, const char *base_model_path, uint64_t seed,
		      useconds_t delay)
{
	struct shared *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	vsm_image_check_result cr = VSM_IMAGE_CHECK_RESULT_INIT;
	uint8_t *model, *uncertain, *got;
	vsm_image *img;
	struct op o;
	int64_t i, flushed, started;
	pid_t pid;
	int st, q;
	size_t n, j;

	ck_assert_ptr_ne(sh, MAP_FAILED);
	sh->started = -1;
	sh->flushed = -1;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		child(path, seed, sh);
	usleep(delay);
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFSIGNALED(st), "child ended by itself: status %d", st);
	flushed = sh->flushed;
	started = sh->started;
	munmap(sh, 4096);

	q = ct_qemu_check(path);
	ck_assert_msg(q == 0 || q == 3, "qemu-img check after crash: %d", q);
	CT_OK(vsm_image_open(&img, path, NULL));
	CT_OK(vsm_image_check(&cr, img, 0));
	ck_assert_uint_eq(cr.corruptions, 0);
	CT_OK(vsm_image_check(&cr, img, VSM_IMAGE_CHECK_REPAIR));
	ck_assert_uint_eq(cr.leaks_fixed, cr.leaks);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(path), 0);

	/* What the image must hold: the base, then every op up to the last
	 * flush; ops after it may or may not have landed. */
	if (base_model_path) {
		model = ct_read_file(base_model_path, &n);
		ck_assert_uint_eq(n, SIZE);
	} else {
		model = calloc(1, SIZE);
	}
	uncertain = calloc(1, SIZE);
	for (i = 0; i <= flushed; i++) {
		gen(seed, i, &o);
		if (o.kind < 7)
			fill(model + o.off, &o);
		else
			memset(model + o.off, 0, o.len);
	}
	for (i = flushed + 1; i <= started; i++) {
		gen(seed, i, &o);
		memset(uncertain + o.off, 1, o.len);
	}
	got = malloc(SIZE);
	{
		vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;

		oo.flags = VSM_IMAGE_OPEN_RDONLY;
		CT_OK(vsm_image_open(&img, path, &oo));
		CT_OK(vsm_image_read(img, got, SIZE, 0));
		vsm_image_close(img);
	}
	for (j = 0; j < SIZE; j++)
		if (!uncertain[j] && got[j] != model[j])
			break;
	ck_assert_msg(j == SIZE, "byte %zu differs after crash (ops flushed %lld, started %lld)",
		      j, (long long)flushed, (long long)started);
	free(model);
	free(uncertain);
	free(got);
}

START_TEST(kill_while_writing)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	char path[PATH_MAX], name[64];
	uint64_t rs = (uint64_t)time(NULL) ^ ((uint64_t)_i << 32);
	int k;

	snprintf(name, sizeof(name), "crash%d.qcow2", _i);
	ct_path(path, name);
	co.size = SIZE;
	co.cluster_size = _i == 0 ? 4096 : 65536;
	CT_OK(vsm_image_create(path, &co, 0));
	for (k = 0; k < 4; k++) {
		/* Each round starts from the state the previous crash left. */
		char keep[PATH_MAX + 8];
		useconds_t delay = (useconds_t)(20000 + ct_rand(&rs) % 200000);

		snprintf(keep, sizeof(keep), "%s.before", path);
		ck_assert_int_eq(ct_sh("%s convert -O raw '%s' '%s'", ct_qemu_img(), path, keep), 0);
		run_crash(path, keep, ct_rand(&rs), delay);
		remove(keep);
	}
}
END_TEST

START_TEST(kill_overlay)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	char base[PATH_MAX], ov[PATH_MAX], keep[PATH_MAX + 8];
	uint64_t rs = (uint64_t)time(NULL) * 31;

	ct_path(base, "cbase.raw");
	ct_path(ov, "cov.qcow2");
	ck_assert_int_eq(ct_sh("head -c %u /dev/urandom > '%s'", SIZE, base), 0);
	co.backing = "cbase.raw";
	co.backing_format = "raw";
	CT_OK(vsm_image_create(ov, &co, 0));
	snprintf(keep, sizeof(keep), "%s.before", ov);
	ck_assert_int_eq(ct_sh("cp '%s' '%s'", base, keep), 0);
	run_crash(ov, keep, ct_rand(&rs), (useconds_t)(30000 + ct_rand(&rs) % 150000));
	remove(keep);
}
END_TEST

#define QSIZE (16u << 20)

/* The dirty bit (incompatible feature bit 0) as it is on disk. */
static int dirty_bit(const char *path)
{
	FILE *f = fopen(path, "rb");
	int c;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 79, SEEK_SET), 0);
	c = fgetc(f);
	fclose(f);
	ck_assert_int_ne(c, EOF);
	return c & 1;
}

/*
 * A lazy_refcounts=on image as QEMU leaves it when killed: qemu-io writes
 * two ranges and is killed with SIGKILL while it sleeps. A real kill
 * rather than a patched header bit, because it gives the exact on-disk
 * state: qemu-io's default writethrough mode flushes after each write,
 * and a qcow2 flush with lazy refcounts writes the L2 tables but not the
 * refcount blocks, so the data clusters are referenced with refcount 0
 * and the dirty bit is set. That state is asserted, so the test cannot
 * pass on an image that needed no repair. stdbuf lets the script see
 * each "wrote" line before the kill. @model (QSIZE) gets the data.
 */
static void make_qemu_dirty(char *path, const char *name, uint8_t *model)
{
	ct_path(path, name);
	ck_assert_int_eq(ct_sh("%s create -q -f qcow2 -o lazy_refcounts=on '%s' %u",
			       ct_qemu_img(), path, QSIZE), 0);
	/* The output file is removed first: the background job's redirection
	 * may come after the first grep. */
	ck_assert_int_eq(ct_sh("cd '%s' && rm -f '%s.out' && { stdbuf -oL %s "
			       "-c 'write -P 0xab 0 2M' -c 'write -P 0xcd 8M 1M' "
			       "-c 'sleep 60000' '%s' > '%s.out' 2>&1 & pid=$!; i=0; "
			       "while [ \"$(grep -c wrote '%s.out' 2>/dev/null)\" != 2 ] && "
			       "[ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done; "
			       "kill -9 $pid; wait $pid; [ $i -lt 600 ]; }",
			       ct_dir(), name, ct_qemu_io(), path, name, name), 0);
	memset(model, 0, QSIZE);
	memset(model, 0xab, 2u << 20);
	memset(model + (8u << 20), 0xcd, 1u << 20);
	ck_assert_int_eq(dirty_bit(path), 1);
	ck_assert_int_eq(ct_qemu_check(path), 2);
}

/* Reads work before any repair; a read-write open without repair allowed
 * is refused and says how to repair. */
static void expect_needs_repair(const char *path, const uint8_t *model)
{
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img;

	ck_assert(ct_vsm_matches(path, model, QSIZE));
	ck_assert_int_eq(vsm_image_open(&img, path, NULL), -VSM_ESTATE);
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, "repair"));
	oo.flags = VSM_IMAGE_OPEN_RDWR;
	ck_assert_int_eq(vsm_image_open(&img, path, &oo), -VSM_ESTATE);
	ck_assert_int_eq(dirty_bit(path), 1);
}

/* Write @len bytes of @val at @off through a plain read-write open. */
static void write_after(const char *path, uint8_t *model, uint64_t off, size_t len,
			uint8_t val)
{
	vsm_image *img;
	uint8_t *buf = malloc(len);

	ck_assert_ptr_nonnull(buf);
	memset(buf, val, len);
	memset(model + off, val, len);
	CT_OK(vsm_image_open(&img, path, NULL));
	CT_OK(vsm_image_write(img, buf, len, off, 0));
	CT_OK(vsm_image_close(img));
	free(buf);
}

START_TEST(qemu_killed_check_repair)
{
	vsm_image_check_result cr = VSM_IMAGE_CHECK_RESULT_INIT;
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	uint8_t *model = malloc(QSIZE);
	char path[PATH_MAX];
	vsm_image *img;

	ck_assert_ptr_nonnull(model);
	make_qemu_dirty(path, "qdirty.qcow2", model);
	expect_needs_repair(path, model);

	oo.flags = VSM_IMAGE_OPEN_REPAIR;
	CT_OK(vsm_image_open(&img, path, &oo));
	CT_OK(vsm_image_check(&cr, img, 0));
	ck_assert_uint_gt(cr.corruptions, 0);
	CT_OK(vsm_image_check(&cr, img, VSM_IMAGE_CHECK_REPAIR));
	ck_assert_uint_gt(cr.corruptions_fixed, 0);
	ck_assert_uint_eq(cr.corruptions_fixed, cr.corruptions);
	ck_assert_uint_eq(cr.leaks_fixed, cr.leaks);
	/* Marked clean by the repair itself, not only at close. */
	ck_assert_int_eq(dirty_bit(path), 0);
	ck_assert_int_eq(ct_qemu_check(path), 0);
	CT_OK(vsm_image_check(&cr, img, 0));
	ck_assert_uint_eq(cr.corruptions + cr.leaks, 0);
	CT_OK(vsm_image_close(img));

	ck_assert_int_eq(ct_qemu_check(path), 0);
	ck_assert(ct_qemu_matches(path, model, QSIZE));
	/* Now it opens read-write like any image, and a write allocates
	 * without landing on the data QEMU wrote. */
	write_after(path, model, (4u << 20) + 512, 3u << 20, 0x5e);
	write_after(path, model, (1u << 20) - 100, 200, 0x17);
	ck_assert_int_eq(dirty_bit(path), 0);
	ck_assert_int_eq(ct_qemu_check(path), 0);
	ck_assert(ct_qemu_matches(path, model, QSIZE));
	ck_assert(ct_vsm_matches(path, model, QSIZE));
	free(model);
}
END_TEST

START_TEST(qemu_killed_write_repairs)
{
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	uint8_t *model = malloc(QSIZE), *buf = malloc(3u << 20);
	char path[PATH_MAX];
	vsm_image *img;

	ck_assert_ptr_nonnull(model);
	ck_assert_ptr_nonnull(buf);
	make_qemu_dirty(path, "qdirtyw.qcow2", model);
	expect_needs_repair(path, model);

	/* Opening and reading change nothing: the repair waits for a change. */
	oo.flags = VSM_IMAGE_OPEN_REPAIR;
	CT_OK(vsm_image_open(&img, path, &oo));
	CT_OK(vsm_image_read(img, buf, 1u << 20, 8u << 20));
	ck_assert(memcmp(buf, model + (8u << 20), 1u << 20) == 0);
	ck_assert_int_eq(ct_qemu_check(path), 2);
	/* New clusters: with the stale refcounts they would be allocated on
	 * top of QEMU's data. */
	memset(buf, 0x6d, 3u << 20);
	memset(model + (12u << 20), 0x6d, 3u << 20);
	CT_OK(vsm_image_write(img, buf, 3u << 20, 12u << 20, 0));
	memset(buf, 0x21, 4096);
	memset(model + 4096, 0x21, 4096);
	CT_OK(vsm_image_write(img, buf, 4096, 4096, 0));
	CT_OK(vsm_image_flush(img));
	ck_assert_int_eq(ct_qemu_check(path), 0);
	CT_OK(vsm_image_close(img));

	ck_assert_int_eq(dirty_bit(path), 0);
	ck_assert_int_eq(ct_qemu_check(path), 0);
	ck_assert(ct_qemu_matches(path, model, QSIZE));
	write_after(path, model, 10u << 20, 4096, 0x42);
	ck_assert_int_eq(ct_qemu_check(path), 0);
	ck_assert(ct_qemu_matches(path, model, QSIZE));
	free(buf);
	free(model);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cow-crash");
	TCase *tc = tcase_create("crash");

	tcase_add_unchecked_fixture(tc, ct_setup, ct_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, kill_while_writing, 0, 2);
	tcase_add_test(tc, kill_overlay);
	tcase_add_test(tc, qemu_killed_check_repair);
	tcase_add_test(tc, qemu_killed_write_repairs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ct_run(suite());
}
