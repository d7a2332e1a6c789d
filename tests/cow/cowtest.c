/*
 * Helpers shared by the COW suites (see cowtest.h).
 */
#include <fcntl.h>
#include <ftw.h>
#include <libqcow.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cowtest.h"

static char tmpdir[PATH_MAX];
bool ct_writes_only;

void ct_setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/vsm-cow-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		abort();
	}
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

void ct_teardown(void)
{
	if (tmpdir[0] && getenv("CT_KEEP"))
		fprintf(stderr, "kept %s\n", tmpdir);
	else if (tmpdir[0])
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	tmpdir[0] = '\0';
}

const char *ct_dir(void)
{
	return tmpdir;
}

void ct_path(char *out, const char *name)
{
	size_t n = strlen(tmpdir);

	memcpy(out, tmpdir, n);
	out[n] = '/';
	strncpy(out + n + 1, name, PATH_MAX - n - 2);
	out[PATH_MAX - 1] = '\0';
}

const char *ct_qemu_img(void)
{
	const char *p = getenv("QEMU_IMG");

	return p && *p ? p : "qemu-img";
}

const char *ct_qemu_io(void)
{
	const char *p = getenv("QEMU_IO");

	return p && *p ? p : "qemu-io";
}

int ct_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	strcpy(cmd, "( ");
	va_start(ap, fmt);
	vsnprintf(cmd + 2, sizeof(cmd) - 40, fmt, ap);
	va_end(ap);
	strcat(cmd, " )");
	if (!getenv("CT_VERBOSE"))
		strcat(cmd, " >/dev/null 2>&1");
	else
		fprintf(stderr, "+ %s\n", cmd);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

int ct_qemu_check(const char *path)
{
	int rc = ct_sh("%s check -f qcow2 '%s'", ct_qemu_img(), path);

	if (rc != 0 && getenv("CT_VERBOSE"))
		ct_sh("%s check -f qcow2 '%s' 1>&2", ct_qemu_img(), path);
	return rc;
}

uint8_t *ct_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n ? (size_t)n : 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static bool cmp_report(const uint8_t *a, const uint8_t *b, size_t len, const char *who)
{
	size_t i;

	if (memcmp(a, b, len) == 0)
		return true;
	for (i = 0; i < len && a[i] == b[i]; i++)
		;
	fprintf(stderr, "%s: first difference at byte %zu (0x%02x vs model 0x%02x)\n",
		who, i, a[i], b[i]);
	return false;
}

bool ct_qemu_matches(const char *path, const uint8_t *model, size_t len)
{
	char out[PATH_MAX + 8];
	uint8_t *data;
	size_t n = 0;
	bool ok;

	snprintf(out, sizeof(out), "%s.raw", path);
	if (ct_sh("%s convert -O raw '%s' '%s'", ct_qemu_img(), path, out) != 0)
		return false;
	data = ct_read_file(out, &n);
	remove(out);
	ok = data && n == len && cmp_report(data, model, len, "qemu-img");
	if (data && n != len)
		fprintf(stderr, "qemu-img: size %zu, model %zu\n", n, len);
	free(data);
	return ok;
}

bool ct_vsm_matches(const char *path, const uint8_t *model, size_t len)
{
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img = NULL;
	uint8_t *buf;
	bool ok;

	o.flags = VSM_IMAGE_OPEN_RDONLY;
	if (vsm_image_open(&img, path, &o) < 0) {
		fprintf(stderr, "open %s: %s\n", path, vsm_error_last()->message);
		return false;
	}
	buf = malloc(len ? len : 1);
	ok = buf && vsm_image_size(img) == len &&
	     vsm_image_read(img, buf, len, 0) == 0 && cmp_report(buf, model, len, "libvsm");
	free(buf);
	vsm_image_close(img);
	return ok;
}

bool ct_libqcow_matches(const char *const *chain, const uint8_t *model, size_t len)
{
	libqcow_file_t *files[16] = { 0 };
	libqcow_error_t *err = NULL;
	size64_t msize = 0;
	uint8_t *buf = malloc(len ? len : 1);
	size_t n, i, done = 0;
	bool ok = false;

	for (n = 0; chain[n] && n < 16; n++) {
		if (libqcow_file_initialize(&files[n], &err) != 1 ||
		    libqcow_file_open(files[n], chain[n], LIBQCOW_OPEN_READ, &err) != 1)
			goto out;
	}
	for (i = 0; i + 1 < n; i++)
		if (libqcow_file_set_parent_file(files[i], files[i + 1], &err) != 1)
			goto out;
	if (libqcow_file_get_media_size(files[0], &msize, &err) != 1 || msize != len)
		goto out;
	while (done < len) {
		/* libqcow 20201213 mixes up clusters of a read that spans
		 * several of an overlay's clusters: go one sector at a time. */
		size_t step = len - done < 512 ? len - done : 512;
		ssize_t r = libqcow_file_read_buffer_at_offset(files[0], buf + done, step,
							       (off64_t)done, &err);

		if (r != (ssize_t)step)
			goto out;
		done += step;
	}
	ok = cmp_report(buf, model, len, "libqcow");
out:
	if (err) {
		libqcow_error_fprint(err, stderr);
		libqcow_error_free(&err);
	}
	for (i = 0; i < 16; i++)
		if (files[i]) {
			libqcow_file_close(files[i], NULL);
			libqcow_file_free(&files[i], NULL);
		}
	free(buf);
	return ok;
}

uint64_t ct_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

int ct_random_op(vsm_image *img, uint8_t *model, size_t size, uint64_t *rs,
		 uint32_t max_len)
{
	uint64_t off = ct_rand(rs) % size, len = 1 + ct_rand(rs) % max_len, i;
	int kind = ct_writes_only ? 0 : (int)(ct_rand(rs) % 10);
	uint8_t *buf;

	if (ct_rand(rs) % 2)
		off &= ~4095ull; /* mostly aligned, sometimes not */
	if (off + len > size)
		len = size - off;
	if (kind < 6) {
		uint8_t v = (uint8_t)(1 + ct_rand(rs) % 250);

		buf = malloc(len);
		ck_assert_ptr_nonnull(buf);
		for (i = 0; i < len; i++)
			buf[i] = (uint8_t)(v + i / 512);
		CT_OK(vsm_image_write(img, buf, len, off, 0));
		memcpy(model + off, buf, len);
		free(buf);
		return 0;
	}
	if (kind < 8)
		CT_OK(vsm_image_write_zeroes(img, off, len, kind == 7 ? VSM_IMAGE_ZERO_UNMAP : 0));
	else
		CT_OK(vsm_image_discard(img, off, len, 0));
	memset(model + off, 0, len);
	return kind < 8 ? 1 : 2;
}

void ct_put_be(const char *path, uint64_t off, uint64_t v, int bytes)
{
	uint8_t b[8];
	int i, fd = open(path, O_WRONLY);

	ck_assert_int_ge(fd, 0);
	for (i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	ck_assert_int_eq(pwrite(fd, b, (size_t)bytes, (off_t)off), bytes);
	close(fd);
}

uint64_t ct_get_be(const char *path, uint64_t off, int bytes)
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

int ct_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
