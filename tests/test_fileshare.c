/*
 * Suite "fileshare": the file backend's metadata device as hosts sharing
 * a directory see it. It is opened O_DIRECT (devices are not); reads and
 * writes of any offset and length round-trip byte-exactly through the
 * aligned bounce buffer; two processes with their own descriptors see
 * each other's completed writes at once; and two processes writing
 * different bytes of the same blocks lose nothing to read-modify-write.
 * Expected counts of mismatches and lost updates are zero.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "backends/file/file.h"
#include "filebdev.h"

#define O vsm__file_backend_ops
#define META_SIZE (4u << 20)

typedef struct {
	vsm_backend_ds *ds;
	vsm_bdev_io *meta;
} share;

static char *dir;

static void setup(void)
{
	dir = tu_dir("share");
}

static void teardown(void)
{
	free(dir);
}

static int share_open(share *s, bool create)
{
	vsm_backend_open_args a = { VSM_BACKEND_OPEN_ARGS_VERSION, "share", NULL, NULL, NULL, 0 };
	char *uri = NULL;
	int rc;

	if (asprintf(&uri, "file://%s", dir) < 0)
		return -VSM_ENOMEM;
	rc = O.open(&s->ds, uri, &a);
	free(uri);
	if (rc == 0 && (rc = O.meta_open(&s->meta, s->ds, META_SIZE,
					 create ? VSM_BDEV_CREATE : 0)) < 0)
		O.close(s->ds);
	return rc;
}

static void share_close(share *s)
{
	s->meta->ops->close(s->meta);
	O.close(s->ds);
}

/* The open flags of this process's descriptor for @path (-1 if none). */
static long fd_flags(const char *path)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long flags = -1;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) && flags < 0) {
		char link[300], target[PATH_MAX], info[300], line[128];
		ssize_t n;
		FILE *f;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		if ((n = readlink(link, target, sizeof(target) - 1)) < 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, path))
			continue;
		snprintf(info, sizeof(info), "/proc/self/fdinfo/%s", e->d_name);
		if (!(f = fopen(info, "r")))
			continue;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "flags:", 6))
				flags = strtol(line + 6, NULL, 8);
		fclose(f);
	}
	closedir(d);
	return flags;
}

/* Whether this directory's filesystem takes O_DIRECT at all. */
static bool fs_takes_direct(void)
{
	char *p = NULL;
	void *buf = NULL;
	bool ok = false;
	int fd;

	ck_assert(asprintf(&p, "%s/probe", dir) > 0);
	fd = open(p, O_RDWR | O_CREAT | O_DIRECT, 0600);
	if (fd >= 0) {
		ck_assert_int_eq(posix_memalign(&buf, 4096, 4096), 0);
		memset(buf, 0, 4096);
		ok = pwrite(fd, buf, 4096, 0) == 4096;
		close(fd);
		free(buf);
	}
	unlink(p);
	free(p);
	return ok;
}

START_TEST(metadata_is_direct_devices_are_not)
{
	vsm_backend_device_spec spec = { VSM_BACKEND_DEVICE_SPEC_VERSION, "dev0", 1 << 20,
					 "raw", NULL, NULL, 0 };
	char key[VSM_BACKEND_KEY_MAX], *meta_path = NULL, *dev_path = NULL;
	vsm_bdev_io *dev = NULL;
	unsigned int cflags = 0;
	share s;
	long fl;

	if (!fs_takes_direct()) {
		/* The fallback: still usable, O_DSYNC instead. */
		ck_vsm(share_open(&s, true));
		ck_assert_uint_eq(vsm__file_bdev_dio_align(s.meta), 0);
		share_close(&s);
		return;
	}
	ck_vsm(share_open(&s, true));
	ck_assert(asprintf(&meta_path, "%s/.vsm/meta", dir) > 0);
	fl = fd_flags(meta_path);
	ck_assert_msg(fl >= 0, "no descriptor for %s", meta_path);
	ck_assert_msg(fl & O_DIRECT, "metadata opened without O_DIRECT (flags 0%lo)", fl);
	ck_assert_uint_ge(vsm__file_bdev_dio_align(s.meta), 512);
	ck_assert_uint_eq(vsm__file_bdev_dio_align(s.meta) & (vsm__file_bdev_dio_align(s.meta) - 1), 0);

	ck_vsm(O.device_create(s.ds, &spec, key, sizeof(key), &cflags));
	ck_vsm(O.device_open(&dev, s.ds, key, 0));
	ck_assert(asprintf(&dev_path, "%s/%s", dir, key) > 0);
	fl = fd_flags(dev_path);
	ck_assert_msg(fl >= 0 && !(fl & O_DIRECT), "device flags 0%lo", fl);
	dev->ops->close(dev);
	share_close(&s);
	free(meta_path);
	free(dev_path);
}
END_TEST

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* Writes and reads at awkward offsets and lengths, checked against a
 * shadow copy and against a second, buffered descriptor. */
static void round_trips(share *s, const char *meta_path)
{
	static const uint64_t offs[] = { 0, 1, 511, 512, 513, 4095, 4096, 4097, 8191, 65536 + 3 };
	static const size_t lens[] = { 1, 2, 511, 512, 513, 4095, 4096, 4097, 10000, 3 * 4096 };
	const size_t region = 256 * 1024;
	uint8_t *shadow = calloc(1, region), *buf = malloc(region), *plain = malloc(region);
	int pfd = open(meta_path, O_RDONLY);
	uint32_t seed = 7;
	size_t i, j;

	ck_assert(shadow && buf && plain && pfd >= 0);
	ck_vsm(s->meta->ops->write(s->meta, shadow, region, 0, 0));
	for (i = 0; i < sizeof(offs) / sizeof(*offs); i++) {
		for (j = 0; j < sizeof(lens) / sizeof(*lens); j++) {
			uint64_t off = offs[i] + 4096 * j;
			size_t len = lens[j];

			ck_assert(off + len <= region);
			fill(shadow + off, len, seed++);
			/* From an unaligned pointer, too. */
			memcpy(buf + (j & 1), shadow + off, len);
			ck_vsm(s->meta->ops->write(s->meta, buf + (j & 1), len, off, 0));
			memset(buf, 0xEE, region);
			ck_vsm(s->meta->ops->read(s->meta, buf + 3, len, off));
			ck_assert_msg(!memcmp(buf + 3, shadow + off, len), "read back off %llu len %zu",
				      (unsigned long long)off, len);
		}
	}
	/* The whole region, through the direct descriptor in odd windows and
	 * through a buffered one: every byte, nothing around it disturbed. */
	ck_vsm(s->meta->ops->read(s->meta, buf, region, 0));
	ck_assert(!memcmp(buf, shadow, region));
	for (i = 1; i < region; i += 4093) {
		size_t len = region - i < 9001 ? region - i : 9001;

		ck_vsm(s->meta->ops->read(s->meta, buf, len, i));
		ck_assert_msg(!memcmp(buf, shadow + i, len), "window at %zu", i);
	}
	ck_assert_int_eq(pread(pfd, plain, region, 0), (ssize_t)region);
	ck_assert_msg(!memcmp(plain, shadow, region), "a buffered reader sees other bytes");
	close(pfd);
	free(shadow);
	free(buf);
	free(plain);
}

START_TEST(unaligned_io_round_trips)
{
	char *meta_path = NULL;
	share s;

	ck_vsm(share_open(&s, true));
	ck_assert(asprintf(&meta_path, "%s/.vsm/meta", dir) > 0);
	round_trips(&s, meta_path);
	if (vsm__file_bdev_dio_align(s.meta)) {
		/* Again with 4 KiB blocks (NFS and unknown filesystems get it). */
		if (vsm__file_bdev_dio_align(s.meta) < 4096)
			ck_vsm(vsm__file_bdev_dio_force_align(s.meta, 4096));
		round_trips(&s, meta_path);
		ck_vsm(vsm__file_bdev_dio_force_align(s.meta, 65536));
		round_trips(&s, meta_path);
	}
	share_close(&s);
	free(meta_path);
}
END_TEST

START_TEST(large_and_past_the_end)
{
	size_t big = (1u << 20) * 2 + 12345;
	uint8_t *a = malloc(big), *b = malloc(big);
	char *meta_path = NULL;
	struct stat st;
	share s;

	ck_assert(a && b);
	ck_vsm(share_open(&s, true));
	ck_assert(asprintf(&meta_path, "%s/.vsm/meta", dir) > 0);
	/* More than one bounce buffer's worth, unaligned at both ends. */
	fill(a, big, 99);
	ck_vsm(s.meta->ops->write(s.meta, a, big, 7, 0));
	ck_vsm(s.meta->ops->read(s.meta, b, big, 7));
	ck_assert(!memcmp(a, b, big));
	/* A write across the end grows the file to exactly its end ... */
	ck_vsm(s.meta->ops->write(s.meta, a, 15, META_SIZE - 10, 0));
	ck_assert_int_eq(stat(meta_path, &st), 0);
	ck_assert_int_eq(st.st_size, META_SIZE + 5);
	/* ... and bytes past the end read as zeros. */
	memset(b, 0xAA, 100);
	ck_vsm(s.meta->ops->read(s.meta, b, 100, META_SIZE - 10));
	ck_assert(!memcmp(b, a, 15));
	for (size_t i = 15; i < 100; i++)
		ck_assert_uint_eq(b[i], 0);
	share_close(&s);
	free(meta_path);
	free(a);
	free(b);
}
END_TEST

/* The core's own writes: lease sectors (512 bytes, 512-aligned) and whole
 * 4 KiB blocks need no read-back when the device takes 512-byte blocks;
 * a partial block does. */
START_TEST(sector_writes_need_no_rmw)
{
	uint8_t *buf = malloc(65536 + 8);
	unsigned long before;
	uint32_t a;
	share s;
	int i;

	ck_vsm(share_open(&s, true));
	a = vsm__file_bdev_dio_align(s.meta);
	if (a == 0) { /* the O_DSYNC fallback: no blocks to complete */
		ck_assert(!fs_takes_direct());
		share_close(&s);
		free(buf);
		return;
	}
	fill(buf, 65536 + 8, 5);
	before = vsm__file_bdev_rmw_reads(s.meta);
	for (i = 0; i < 16; i++) /* whole blocks, from a misaligned buffer */
		ck_vsm(s.meta->ops->write(s.meta, buf + 1, a, 1048576 + (uint64_t)a * (uint64_t)i, 0));
	if (a == 512) {
		for (i = 0; i < 64; i++) {
			ck_vsm(s.meta->ops->write(s.meta, buf + 1, 512, 65536 + 512 * (uint64_t)i, 0));
			ck_vsm(s.meta->ops->write(s.meta, buf, 4096, 1048576 + 4096 * (uint64_t)i, 0));
			ck_vsm(s.meta->ops->compare_and_write(s.meta, buf + 1, buf + 3, 512,
							65536 + 512 * (uint64_t)i));
		}
	}
	ck_assert_uint_eq(vsm__file_bdev_rmw_reads(s.meta), before);
	/* A partial block is read back once; one spanning two, twice. */
	ck_vsm(s.meta->ops->write(s.meta, buf, 40, 1048576, 0));
	ck_assert_uint_eq(vsm__file_bdev_rmw_reads(s.meta), before + 1);
	ck_vsm(s.meta->ops->write(s.meta, buf, a, 1048576 + 7, 0));
	ck_assert_uint_eq(vsm__file_bdev_rmw_reads(s.meta), before + 3);
	share_close(&s);
	free(buf);
}
END_TEST

/* --- two processes, two descriptors, one file --- */

#define PING_ROUNDS 3000

typedef struct {
	uint64_t off;
	uint32_t len;
	uint32_t round;
} ping;

static void ping_for(ping *p, uint32_t r)
{
	/* Aligned and unaligned places, small and multi-block sizes. */
	static const uint32_t lens[] = { 512, 1, 4096, 700, 9000, 512 };

	p->round = r;
	p->len = lens[r % 6];
	p->off = 65536 + (uint64_t)(r % 97) * 4096 + ((r % 3) ? (r * 7) % 512 : 0);
}

static bool read_all(int fd, void *p, size_t n)
{
	return read(fd, p, n) == (ssize_t)n;
}

/*
 * One side of the ping-pong: on even rounds the parent writes and the
 * child reads, on odd rounds the other way round. The reader is told
 * only after the write returned, and reads at once through its own
 * descriptor. Returns the number of mismatches it saw.
 */
static int ping_pong(share *s, bool parent, int rfd, int wfd)
{
	uint8_t want[9000], got[9000];
	int mismatches = 0;
	uint32_t r;

	for (r = 0; r < PING_ROUNDS; r++) {
		bool writer = (r % 2 == 0) == parent;
		ping p;

		ping_for(&p, r);
		fill(want, p.len, r * 2654435761u);
		if (writer) {
			if (s->meta->ops->write(s->meta, want, p.len, p.off, 0) < 0)
				return -1;
			if (write(wfd, &p, sizeof(p)) != (ssize_t)sizeof(p))
				return -1;
			if (!read_all(rfd, &p, sizeof(p))) /* the reader is done */
				return -1;
		} else {
			ping told;

			if (!read_all(rfd, &told, sizeof(told)) || told.round != r)
				return -1;
			if (s->meta->ops->read(s->meta, got, p.len, p.off) < 0)
				return -1;
			if (memcmp(got, want, p.len))
				mismatches++;
			if (write(wfd, &told, sizeof(told)) != (ssize_t)sizeof(told))
				return -1;
		}
	}
	return mismatches;
}

START_TEST(two_processes_see_each_others_writes)
{
	int to_child[2], to_parent[2], status = 0, mine;
	share s;
	pid_t pid;

	ck_vsm(share_open(&s, true));
	share_close(&s);
	ck_assert_int_eq(pipe(to_child), 0);
	ck_assert_int_eq(pipe(to_parent), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int n;

		if (share_open(&s, false) < 0)
			_exit(100);
		n = ping_pong(&s, false, to_child[0], to_parent[1]);
		share_close(&s);
		_exit(n < 0 ? 101 : n > 99 ? 99 : n);
	}
	ck_vsm(share_open(&s, false));
	mine = ping_pong(&s, true, to_parent[0], to_child[1]);
	share_close(&s);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(mine == 0, "parent read %d stale or wrong blocks (-1: I/O failed)", mine);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child: %d mismatches (100+: could not run)", WEXITSTATUS(status));
	close(to_child[0]);
	close(to_child[1]);
	close(to_parent[0]);
	close(to_parent[1]);
}
END_TEST

#define SLICE 100
#define SLICES 80      /* two owners interleaved over about two 4 KiB blocks */
#define SLICE_BASE (2 * 1048576 + 300)
#define RMW_ROUNDS 300

static void slice_for(uint8_t *p, uint32_t r, int k)
{
	memset(p, 0, 8);
	p[0] = (uint8_t)r;
	p[1] = (uint8_t)(r >> 8);
	p[2] = (uint8_t)k;
	fill(p + 8, SLICE - 8, r * 31 + (uint32_t)k);
}

/* Owner @who (0 or 1) keeps the slices k with k % 2 == who, stamped with
 * its round; before each round it checks they still hold the last one. */
static int slices_writer(share *s, int who, int go_fd)
{
	uint8_t slice[SLICE], want[SLICE];
	int lost = 0, k;
	uint32_t r;
	char c;

	if (read(go_fd, &c, 1) != 1) /* start together */
		return -1;
	for (r = 1; r <= RMW_ROUNDS + 1; r++) {
		for (k = who; k < SLICES; k += 2) {
			uint64_t off = SLICE_BASE + (uint64_t)k * SLICE;

			if (r > 1) {
				if (s->meta->ops->read(s->meta, slice, SLICE, off) < 0)
					return -1;
				slice_for(want, r - 1, k);
				if (memcmp(slice, want, SLICE))
					lost++;
			}
			if (r > RMW_ROUNDS)
				continue; /* the last pass only checks */
			slice_for(slice, r, k);
			if (s->meta->ops->write(s->meta, slice, SLICE, off, 0) < 0)
				return -1;
		}
	}
	return lost;
}

/* Different bytes of the same blocks, written at once by two processes:
 * each write is a read-modify-write of 4 KiB blocks, and none may bring
 * back the other process's old bytes. */
START_TEST(two_processes_lose_no_partial_block_update)
{
	int go[2], status = 0, mine;
	share s;
	pid_t pid;

	ck_vsm(share_open(&s, true));
	share_close(&s);
	ck_assert_int_eq(pipe(go), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int n;

		if (share_open(&s, false) < 0)
			_exit(100);
		if (vsm__file_bdev_dio_align(s.meta) && vsm__file_bdev_dio_align(s.meta) < 4096 &&
		    vsm__file_bdev_dio_force_align(s.meta, 4096) < 0)
			_exit(102);
		n = slices_writer(&s, 1, go[0]);
		share_close(&s);
		_exit(n < 0 ? 101 : n > 99 ? 99 : n);
	}
	ck_vsm(share_open(&s, false));
	if (vsm__file_bdev_dio_align(s.meta) && vsm__file_bdev_dio_align(s.meta) < 4096)
		ck_vsm(vsm__file_bdev_dio_force_align(s.meta, 4096));
	ck_assert_int_eq(write(go[1], "gg", 2), 2);
	mine = slices_writer(&s, 0, go[0]);
	share_close(&s);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(mine == 0, "parent lost %d slice updates (-1: I/O failed)", mine);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child lost %d slice updates (100+: could not run)", WEXITSTATUS(status));
	close(go[0]);
	close(go[1]);
}
END_TEST

static Suite *fileshare_suite(void)
{
	Suite *s = suite_create("fileshare");
	TCase *tc = tcase_create("meta");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, metadata_is_direct_devices_are_not);
	tcase_add_test(tc, unaligned_io_round_trips);
	tcase_add_test(tc, large_and_past_the_end);
	tcase_add_test(tc, sector_writes_need_no_rmw);
	tcase_add_test(tc, two_processes_see_each_others_writes);
	tcase_add_test(tc, two_processes_lose_no_partial_block_update);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(fileshare_suite());
}
