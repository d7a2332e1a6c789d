/*
 * cow-bounds: hostile geometry. Every walk of an image (check) is
 * bounded by the file's size and the image's
 * allocated metadata, never by the virtual size or by how far a bad
 * table entry points. Each case runs in a child with an alarm() as a
 * hang detector (not a timing assertion): a walk that never ends fails.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cowtest.h"

#define HANG_GUARD 60

static void put_be(const char *path, uint64_t off, uint64_t v, int bytes)
{
	uint8_t b[8];
	int i, fd = open(path, O_WRONLY);

	ck_assert_int_ge(fd, 0);
	for (i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	ck_assert_int_eq(pwrite(fd, b, (size_t)bytes, (off_t)off), bytes);
	close(fd);
}

static uint64_t get_be(const char *path, uint64_t off, int bytes)
{
	uint8_t b[8];
	uint64_t v = 0;
	int i, fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, b, (size_t)bytes, (off_t)off), bytes);
	close(fd);
	for (i = 0; i < bytes; i++)
		v = v << 8 | b[i];
	return v;
}

/* Run @fn(@arg) in a child under the hang guard; it exits 0 on success. */
static void guarded(void (*fn)(const char *), const char *arg, const char *what)
{
	int st = 0;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Check's own SIGALRM handler, inherited, would kill the
		 * test's whole process group; the guard must only end us. */
		signal(SIGALRM, SIG_DFL);
		alarm(HANG_GUARD);
		fn(arg);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(!(WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM),
		      "%s on '%s' did not return (hang guard of %d s fired)", what, arg,
		      HANG_GUARD);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "%s on '%s' failed in the child (status 0x%x)", what, arg, st);
}

/* In the child: a failed check exits non-zero (Check's fork mode is not
 * in charge of this grandchild). */
#define CHILD_ASSERT(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		_exit(1); \
	} \
} while (0)

/* Open and check: the check returns and reports the damage. */
static void check_reports(const char *path)
{
	vsm_image_check_result cr = VSM_IMAGE_CHECK_RESULT_INIT;
	vsm_image *img = NULL;
	const vsm_error *e;
	int rc = vsm_image_open(&img, path, NULL);

	e = vsm_error_last();
	CHILD_ASSERT(rc == 0, "open: %d (%s)", rc, e ? e->message : "");
	rc = vsm_image_check(&cr, img, 0);
	e = vsm_error_last();
	CHILD_ASSERT(rc == 0, "check: %d (%s)", rc, e ? e->message : "");
	CHILD_ASSERT(cr.corruptions > 0, "check found no corruption");
	vsm_image_close(img);
}

/* Open is refused, naming the refcount table. */
static void open_refused(const char *path)
{
	vsm_image *img = NULL;
	const vsm_error *e;
	int rc = vsm_image_open(&img, path, NULL);

	e = vsm_error_last();
	CHILD_ASSERT(rc == -VSM_ECORRUPT, "open gave %d, wanted %d", rc, -VSM_ECORRUPT);
	CHILD_ASSERT(e && strstr(e->message, "refcount table entry 262000") &&
		     strstr(e->message, path), "message '%s'", e ? e->message : "");
}

static void make(char *out, const char *name, const char *opts)
{
	ct_path(out, name);
	ck_assert_int_eq(ct_sh("%s create -f qcow2 %s '%s' 4M", ct_qemu_img(), opts, out), 0);
	ck_assert_int_eq(ct_sh("%s -c 'write -P 0x5a 0 1M' '%s'", ct_qemu_io(), out), 0);
}

START_TEST(check_bounded_by_file)
{
	char p[PATH_MAX];
	vsm_image *img = NULL;
	uint64_t rt, rb;

	/* A refcount-table entry near the end of the table, pointing far
	 * past the end of the file (64 KiB clusters). */
	make(p, "rtfar.qcow2", "");
	rt = get_be(p, 48, 8);
	put_be(p, rt + 8 * 8000, 1ull << 40, 8);
	guarded(check_reports, p, "check");

	/* 2 MiB clusters, an entry at a large index naming a cluster that
	 * is already the first refcount block: one block counts 2^20
	 * clusters, so the covered range is ~2^35 clusters. */
	make(p, "rt2m.qcow2", "-o cluster_size=2M");
	rt = get_be(p, 48, 8);
	rb = get_be(p, rt, 8);
	put_be(p, rt + 8 * 30000, rb, 8);
	guarded(check_reports, p, "check");

	/* ... and at an index whose clusters lie past 2^56 bytes, where no
	 * qcow2 offset reaches: refused at open. */
	make(p, "rt2m-far.qcow2", "-o cluster_size=2M");
	rt = get_be(p, 48, 8);
	rb = get_be(p, rt, 8);
	put_be(p, rt + 8 * 262000, rb, 8);
	guarded(open_refused, p, "open");

	/* A block at a small index whose whole range lies past the end of
	 * the file, made of the data cluster (0x5a5a... refcounts): the
	 * nonzero counts past the end are leaks, the double use of the data
	 * cluster a corruption. */
	make(p, "rtdata.qcow2", "");
	rt = get_be(p, 48, 8);
	put_be(p, rt + 8 * 5, get_be(p, get_be(p, 40, 8), 8) & 0x00fffffffffffe00ull, 8);
	guarded(check_reports, p, "check");

	/* A snapshot table with more entries than the file can hold. */
	make(p, "snapfar.qcow2", "");
	put_be(p, 60, 60000, 4);
	put_be(p, 64, 65536 * 6, 8);
	ck_assert_int_eq(vsm_image_open(&img, p, NULL), -VSM_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, "snapshot table (60000 entries) "
				     "runs past end of file"));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cow-bounds");
	TCase *tc = tcase_create("bounds");

	tcase_add_unchecked_fixture(tc, ct_setup, ct_teardown);
	tcase_set_timeout(tc, 4 * HANG_GUARD);
	tcase_add_test(tc, check_bounded_by_file);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
