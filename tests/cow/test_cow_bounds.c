/*
 * cow-bounds: hostile geometry and huge sparse disks. Every walk of an
 * image (check, map, info) is bounded by the file's size and the image's
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
	rt = ct_get_be(p, 48, 8);
	ct_put_be(p, rt + 8 * 8000, 1ull << 40, 8);
	guarded(check_reports, p, "check");

	/* 2 MiB clusters, an entry at a large index naming a cluster that
	 * is already the first refcount block: one block counts 2^20
	 * clusters, so the covered range is ~2^35 clusters. */
	make(p, "rt2m.qcow2", "-o cluster_size=2M");
	rt = ct_get_be(p, 48, 8);
	rb = ct_get_be(p, rt, 8);
	ct_put_be(p, rt + 8 * 30000, rb, 8);
	guarded(check_reports, p, "check");

	/* ... and at an index whose clusters lie past 2^56 bytes, where no
	 * qcow2 offset reaches: refused at open. */
	make(p, "rt2m-far.qcow2", "-o cluster_size=2M");
	rt = ct_get_be(p, 48, 8);
	rb = ct_get_be(p, rt, 8);
	ct_put_be(p, rt + 8 * 262000, rb, 8);
	guarded(open_refused, p, "open");

	/* A block at a small index whose whole range lies past the end of
	 * the file, made of the L2 table: the double use of that cluster is
	 * a corruption, and the table is not read as counts. */
	make(p, "rtdata.qcow2", "");
	rt = ct_get_be(p, 48, 8);
	ct_put_be(p, rt + 8 * 5, ct_get_be(p, ct_get_be(p, 40, 8), 8) & 0x00fffffffffffe00ull, 8);
	guarded(check_reports, p, "check");

	/* A snapshot table with more entries than the file can hold. */
	make(p, "snapfar.qcow2", "");
	ct_put_be(p, 60, 60000, 4);
	ct_put_be(p, 64, 65536 * 6, 8);
	ck_assert_int_eq(vsm_image_open(&img, p, NULL), -VSM_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, "snapshot table (60000 entries) "
				     "runs past end of file"));
}
END_TEST

/* A huge sparse disk (1 PiB, about as large as qemu-img makes with 64
 * KiB clusters) with a few written clusters. */
#define HUGE_SIZE "1P"
#define HUGE_BYTES (1ull << 50)

static bool parse_u64(const char *line, const char *key, uint64_t *v)
{
	const char *p = strstr(line, key);

	if (!p)
		return false;
	*v = strtoull(p + strlen(key), NULL, 10);
	return true;
}

/* Append the data extents qemu-img map --output=json gives for
 * [@start, @start + @len) to @ext (@n used of @max); new count returned.
 * (qemu-img's own map of the whole petabyte takes a while, so it is
 * asked about a window around each write.) */
static size_t qemu_data_extents(const char *path, uint64_t start, uint64_t len,
				uint64_t (*ext)[3], size_t n, size_t max)
{
	char out[PATH_MAX + 8], line[1024];
	FILE *f;

	snprintf(out, sizeof(out), "%s.map", path);
	ck_assert_int_eq(ct_sh("%s map --output=json --start-offset=%llu --max-length=%llu "
			       "'%s' > '%s'", ct_qemu_img(), (unsigned long long)start,
			       (unsigned long long)len, path, out), 0);
	f = fopen(out, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		uint64_t s, l, o = UINT64_MAX;

		if (!strstr(line, "\"data\": true"))
			continue;
		ck_assert(parse_u64(line, "\"start\": ", &s));
		ck_assert(parse_u64(line, "\"length\": ", &l));
		(void)parse_u64(line, "\"offset\": ", &o);
		ck_assert_uint_lt(n, max);
		ext[n][0] = s;
		ext[n][1] = l;
		ext[n][2] = o;
		n++;
	}
	fclose(f);
	return n;
}

static const uint64_t written[][2] = {
	{ 0, 65536 },
	{ 1ull << 30, 2 * 65536 },
	{ 8ull << 40, 65536 },
	{ HUGE_BYTES - 65536, 65536 },
};
#define NWRITTEN (sizeof(written) / sizeof(written[0]))

static char map_qemu_path[PATH_MAX];
static uint64_t map_qemu[16][3];
static size_t map_qemu_n;

static void map_matches(const char *path)
{
	vsm_image_extent *ext = NULL;
	vsm_image_info *info = NULL;
	vsm_image *img = NULL;
	const vsm_error *e;
	size_t n = 0, i, nd = 0;
	uint64_t total = 0;
	int rc = vsm_image_open(&img, path, NULL);

	e = vsm_error_last();
	CHILD_ASSERT(rc == 0, "open: %d (%s)", rc, e ? e->message : "");
	rc = vsm_image_map(&ext, &n, img);
	e = vsm_error_last();
	CHILD_ASSERT(rc == 0, "map: %d (%s)", rc, e ? e->message : "");
	for (i = 0; i < n; i++) {
		total += ext[i].length;
		if (!ext[i].data)
			continue;
		CHILD_ASSERT(nd < map_qemu_n, "map has more data extents than qemu-img's %zu",
			     map_qemu_n);
		CHILD_ASSERT(ext[i].start == map_qemu[nd][0] &&
			     ext[i].length == map_qemu[nd][1] &&
			     ext[i].offset == map_qemu[nd][2],
			     "extent %zu: %llu+%llu@%llu, qemu-img says %llu+%llu@%llu", nd,
			     (unsigned long long)ext[i].start, (unsigned long long)ext[i].length,
			     (unsigned long long)ext[i].offset,
			     (unsigned long long)map_qemu[nd][0],
			     (unsigned long long)map_qemu[nd][1],
			     (unsigned long long)map_qemu[nd][2]);
		nd++;
	}
	CHILD_ASSERT(nd == map_qemu_n, "map has %zu data extents, qemu-img %zu", nd, map_qemu_n);
	CHILD_ASSERT(total == HUGE_BYTES, "map covers %llu bytes", (unsigned long long)total);
	vsm_image_extent_list_free(ext);
	rc = vsm_image_info_get(&info, img, 0);
	e = vsm_error_last();
	CHILD_ASSERT(rc == 0, "info: %d (%s)", rc, e ? e->message : "");
	CHILD_ASSERT(info->allocated_bytes == 5 * 65536, "info: %llu bytes allocated",
		     (unsigned long long)info->allocated_bytes);
	vsm_image_info_free(info);
	vsm_image_close(img);
}

START_TEST(map_sparse_huge)
{
	size_t i;

	ct_path(map_qemu_path, "huge.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s' " HUGE_SIZE, ct_qemu_img(),
			       map_qemu_path), 0);
	for (i = 0; i < NWRITTEN; i++)
		ck_assert_int_eq(ct_sh("%s -c 'write -P 0x%zx %llu %llu' '%s'", ct_qemu_io(),
				       i + 1, (unsigned long long)written[i][0],
				       (unsigned long long)written[i][1], map_qemu_path), 0);
	map_qemu_n = 0;
	for (i = 0; i < NWRITTEN; i++) {
		uint64_t s = written[i][0] >= 65536 ? written[i][0] - 65536 : 0;
		uint64_t e = written[i][0] + written[i][1] + 65536;

		if (e > HUGE_BYTES)
			e = HUGE_BYTES;
		map_qemu_n = qemu_data_extents(map_qemu_path, s, e - s, map_qemu, map_qemu_n, 16);
	}
	ck_assert_uint_eq(map_qemu_n, NWRITTEN);
	guarded(map_matches, map_qemu_path, "map and info");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cow-bounds");
	TCase *tc = tcase_create("bounds");

	tcase_add_unchecked_fixture(tc, ct_setup, ct_teardown);
	tcase_set_timeout(tc, 4 * HANG_GUARD);
	tcase_add_test(tc, check_bounded_by_file);
	tcase_add_test(tc, map_sparse_huge);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ct_run(suite());
}
