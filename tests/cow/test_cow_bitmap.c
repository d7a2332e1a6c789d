/*
 * cow-bitmap: qcow2 persistent dirty bitmaps. qemu-img/qemu-io are the
 * oracle both ways (bitmaps we make are listed and checked clean by
 * qemu-img; bitmaps qemu made are read and kept up to date by us, and
 * QEMU then keeps updating ours), an independent parser of the on-disk
 * format here checks the stored bits, and a reference model checks the
 * extents after random writes, zeroes and discards.
 */
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cowtest.h"
#include "cow.h"
#include "fault.h"

/* ---- helpers ---- */

struct ext {
	uint64_t start, len;
};

struct extlist {
	struct ext e[4096];
	size_t n;
};

/* Our extents of bitmap @name through the public API. */
static int our_extents(vsm_image *img, const char *name, struct extlist *out)
{
	vsm_image_extent *l = NULL;
	size_t n = 0, i;
	int rc = vsm_image_bitmap_extents(&l, &n, img, name);

	out->n = 0;
	if (rc < 0)
		return rc;
	ck_assert_uint_le(n, 4096);
	for (i = 0; i < n; i++) {
		out->e[i].start = l[i].start;
		out->e[i].len = l[i].length;
	}
	out->n = n;
	vsm_image_extent_list_free(l);
	return 0;
}

static void open_rw(vsm_image **img, const char *path)
{
	CT_OK(vsm_image_open(img, path, NULL));
}

/* Extents from a bit array (one byte per bit) of granularity @g. */
static void from_bits(const uint8_t *bits, uint64_t nbits, uint64_t g, uint64_t size,
		      struct extlist *out)
{
	uint64_t i = 0;

	out->n = 0;
	while (i < nbits) {
		uint64_t j;

		if (!bits[i]) {
			i++;
			continue;
		}
		for (j = i; j < nbits && bits[j]; j++)
			;
		ck_assert_uint_lt(out->n, 4096);
		out->e[out->n].start = i * g;
		out->e[out->n].len = (j * g < size ? j * g : size) - i * g;
		out->n++;
		i = j;
	}
}

static void same(const struct extlist *a, const struct extlist *b, const char *what)
{
	size_t i;

	for (i = 0; i < a->n && i < b->n; i++)
		ck_assert_msg(a->e[i].start == b->e[i].start && a->e[i].len == b->e[i].len,
			      "%s: extent %zu differs: %llu+%llu vs %llu+%llu", what, i,
			      (unsigned long long)a->e[i].start, (unsigned long long)a->e[i].len,
			      (unsigned long long)b->e[i].start, (unsigned long long)b->e[i].len);
	ck_assert_msg(a->n == b->n, "%s: %zu extents vs %zu", what, a->n, b->n);
}

static void expect(vsm_image *img, const char *name, const struct ext *want, size_t n)
{
	struct extlist got, w;

	memset(&w, 0, sizeof(w));
	if (n)
		memcpy(w.e, want, n * sizeof(*want));
	w.n = n;
	CT_OK(our_extents(img, name, &got));
	same(&got, &w, name);
}

static uint64_t be_at(const uint8_t *f, uint64_t o, int n)
{
	uint64_t v = 0;
	int j;

	for (j = 0; j < n; j++)
		v = v << 8 | f[o + j];
	return v;
}

/*
 * The independent reader: the bits of bitmap @name as stored in the file,
 * one byte per bit, parsed from the specification (not with our code).
 * Returns the number of bits, 0 if the bitmap is not there.
 */
static uint64_t disk_bits(const char *path, const char *name, uint8_t **bits, uint64_t *gran,
			  uint32_t *flags)
{
	size_t flen;
	uint8_t *f = ct_read_file(path, &flen);
	uint64_t cs, size, p, doff, dsize, d = 0, i;
	uint32_t nb, k;

	ck_assert_ptr_nonnull(f);
#define BE(o, n) be_at(f, (o), (n))
	cs = 1ull << BE(20, 4);
	size = BE(24, 8);
	p = BE(100, 4);
	*bits = NULL;
	if (!(BE(88, 8) & 1)) {
		free(f);
		return 0;
	}
	for (;;) {
		uint32_t t = (uint32_t)BE(p, 4), l = (uint32_t)BE(p + 4, 4);

		if (t == 0) {
			free(f);
			return 0;
		}
		if (t == 0x23852875u)
			break;
		p += 8 + ((l + 7) & ~7u);
	}
	nb = (uint32_t)BE(p + 8, 4);
	dsize = BE(p + 16, 8);
	doff = BE(p + 24, 8);
	for (k = 0; k < nb; k++) {
		uint64_t e = doff + d, toff = BE(e, 8);
		uint32_t tsz = (uint32_t)BE(e + 8, 4), esz = (uint32_t)BE(e + 20, 4);
		uint32_t nsz = (uint32_t)BE(e + 18, 2), gb = f[e + 17];
		uint64_t nbits;

		d += (24 + esz + nsz + 7) & ~7ull;
		if (nsz != strlen(name) || memcmp(f + e + 24 + esz, name, nsz))
			continue;
		*gran = 1ull << gb;
		*flags = (uint32_t)BE(e + 12, 4);
		nbits = (size + *gran - 1) / *gran;
		ck_assert_uint_eq(tsz, (nbits + cs * 8 - 1) / (cs * 8));
		*bits = calloc(nbits + 1, 1);
		for (i = 0; i < nbits; i++) {
			uint64_t te = BE(toff + 8 * (i / (cs * 8)), 8), bi = i % (cs * 8);
			uint64_t doff2 = te & 0x00fffffffffffe00ull;

			if (doff2)
				(*bits)[i] = (f[doff2 + bi / 8] >> (bi % 8)) & 1;
			else
				(*bits)[i] = te & 1;
		}
		ck_assert_uint_le(d, dsize);
		free(f);
		return nbits;
	}
#undef BE
	free(f);
	return 0;
}

static void disk_matches(const char *path, const char *name, const struct extlist *want)
{
	uint8_t *bits;
	uint64_t g = 0, n, size = ct_get_be(path, 24, 8);
	uint32_t fl = 0;
	struct extlist got;

	n = disk_bits(path, name, &bits, &g, &fl);
	ck_assert_msg(n > 0, "bitmap '%s' is not on disk", name);
	ck_assert_msg(!(fl & 1), "bitmap '%s' is in_use on disk after close", name);
	from_bits(bits, n, g, size, &got);
	free(bits);
	same(&got, want, "on disk");
}

/* qemu-img info's bitmaps: name -> "granularity:flags" checks. */
static json_object *qemu_bitmaps(const char *path, json_object **root)
{
	char cmd[PATH_MAX + 64], *buf = malloc(1 << 20);
	size_t n;
	FILE *p;
	json_object *fs, *data, *bms;

	snprintf(cmd, sizeof(cmd), "%s info --output=json '%s'", ct_qemu_img(), path);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(buf, 1, (1 << 20) - 1, p);
	buf[n] = 0;
	ck_assert_int_eq(pclose(p), 0);
	*root = json_tokener_parse(buf);
	free(buf);
	ck_assert_ptr_nonnull(*root);
	if (!json_object_object_get_ex(*root, "format-specific", &fs) ||
	    !json_object_object_get_ex(fs, "data", &data) ||
	    !json_object_object_get_ex(data, "bitmaps", &bms))
		return NULL;
	return bms;
}

/* qemu-img lists bitmap @name with granularity @g and exactly the flags
 * "auto" (when @autof) and "in-use" (when @in_use). */
static void qemu_lists(const char *path, const char *name, uint64_t g, bool autof,
		       bool in_use)
{
	json_object *root, *bms = qemu_bitmaps(path, &root);
	size_t i, j;
	bool found = false;

	ck_assert_msg(bms != NULL, "qemu-img lists no bitmaps in %s", path);
	for (i = 0; i < json_object_array_length(bms); i++) {
		json_object *b = json_object_array_get_idx(bms, i), *v, *fl;
		bool a = false, u = false;

		json_object_object_get_ex(b, "name", &v);
		if (strcmp(json_object_get_string(v), name))
			continue;
		found = true;
		json_object_object_get_ex(b, "granularity", &v);
		ck_assert_uint_eq((uint64_t)json_object_get_int64(v), g);
		json_object_object_get_ex(b, "flags", &fl);
		for (j = 0; j < json_object_array_length(fl); j++) {
			const char *f = json_object_get_string(json_object_array_get_idx(fl, j));

			if (!strcmp(f, "auto"))
				a = true;
			else if (!strcmp(f, "in-use"))
				u = true;
			else
				ck_abort_msg("unexpected flag %s", f);
		}
		ck_assert_int_eq(a, autof);
		ck_assert_int_eq(u, in_use);
	}
	json_object_put(root);
	ck_assert_msg(found, "qemu-img does not list bitmap '%s'", name);
}

static size_t qemu_count(const char *path)
{
	json_object *root, *bms = qemu_bitmaps(path, &root);
	size_t n = bms ? json_object_array_length(bms) : 0;

	json_object_put(root);
	return n;
}

static uint64_t ext_at(const char *path);

/* ---- tests ---- */

/* Bitmaps we make are what qemu-img lists, and the image checks clean. */
START_TEST(ours_listed_by_qemu)
{
	char path[PATH_MAX];
	vsm_image *img;
	vsm_image_bitmap_opts o = VSM_IMAGE_BITMAP_OPTS_INIT;
	vsm_image_bitmap_info *l;
	size_t n;
	uint8_t buf[4096];

	ct_path(path, "a.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s' 64M", ct_qemu_img(), path), 0);
	open_rw(&img, path);
	CT_OK(vsm_image_bitmap_add(img, "b0", NULL, 0));
	o.granularity = 512;
	CT_OK(vsm_image_bitmap_add(img, "fine", &o, 0));
	o.granularity = 1u << 31;
	o.disabled = 1;
	CT_OK(vsm_image_bitmap_add(img, "coarse-off", &o, 0));
	memset(buf, 0x5a, sizeof(buf));
	CT_OK(vsm_image_write(img, buf, sizeof(buf), 3u << 20, 0));
	CT_OK(vsm_image_bitmap_list(&l, &n, img));
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(l[1].name, "fine");
	ck_assert_uint_eq(l[1].granularity, 512);
	ck_assert_int_eq(l[2].enabled, 0);
	vsm_image_bitmap_list_free(l, n);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(path), 0);
	qemu_lists(path, "b0", 65536, true, false);
	qemu_lists(path, "fine", 512, true, false);
	qemu_lists(path, "coarse-off", 1ull << 31, false, false);
	/* Bits as stored, read by the independent parser. */
	{
		struct extlist w = { .n = 1 };

		w.e[0].start = 3u << 20;
		w.e[0].len = 65536;
		disk_matches(path, "b0", &w);
		w.e[0].len = 4096;
		disk_matches(path, "fine", &w);
		w.n = 0;
		disk_matches(path, "coarse-off", &w);
	}
	/* The autoclear bit stayed: QEMU keeps the bitmaps. */
	ck_assert_uint_eq(ct_get_be(path, 88, 8) & 1, 1);
}
END_TEST

/* Bitmaps qemu-img made (add, merge, disable) read right; our writes
 * update the enabled ones; QEMU then reads and updates what we stored. */
START_TEST(qemu_made_read_and_updated)
{
	char path[PATH_MAX];
	vsm_image *img;
	uint8_t buf[10] = { 1 };
	struct ext e1[] = { { 0, 65536 } };
	struct ext e2[] = { { 0, 65536 }, { 1u << 20, 65536 } };
	struct ext e3[] = { { 0, 65536 }, { 1u << 20, 65536 }, { 2u << 20, 65536 } };
	struct ext f1[] = { { 0, 4096 } };

	ct_path(path, "q.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s' 16M && %s bitmap --add '%s' b0 && "
			       "%s bitmap --add -g 512 '%s' fine && "
			       "%s -c 'write 0 4k' '%s' && "
			       "%s bitmap --add --merge b0 '%s' m && "
			       "%s bitmap --disable '%s' fine",
			       ct_qemu_img(), path, ct_qemu_img(), path, ct_qemu_img(), path,
			       ct_qemu_io(), path, ct_qemu_img(), path, ct_qemu_img(), path), 0);
	open_rw(&img, path);
	expect(img, "b0", e1, 1);
	expect(img, "fine", f1, 1);
	expect(img, "m", e1, 1);
	CT_OK(vsm_image_write(img, buf, sizeof(buf), (1u << 20) + 100, 0));
	expect(img, "b0", e2, 2);
	expect(img, "m", e2, 2);
	expect(img, "fine", f1, 1);   /* disabled: not updated */
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(path), 0);
	ck_assert_uint_eq(qemu_count(path), 3);
	qemu_lists(path, "fine", 512, false, false);
	qemu_lists(path, "m", 65536, true, false);
	/* QEMU loads what we stored and keeps updating it. */
	ck_assert_int_eq(ct_sh("%s -c 'write 2M 4k' '%s'", ct_qemu_io(), path), 0);
	ck_assert_int_eq(ct_qemu_check(path), 0);
	CT_OK(vsm_image_open(&img, path, NULL));
	expect(img, "b0", e3, 3);
	expect(img, "m", e3, 3);
	CT_OK(vsm_image_close(img));
	/* qemu-img --clear and --enable on what we stored. */
	ck_assert_int_eq(ct_sh("%s bitmap --clear '%s' m && %s bitmap --enable '%s' fine",
			       ct_qemu_img(), path, ct_qemu_img(), path), 0);
	CT_OK(vsm_image_open(&img, path, NULL));
	expect(img, "m", NULL, 0);
	expect(img, "fine", f1, 1);
	CT_OK(vsm_image_write(img, buf, 1, 6u << 20, 0));
	{
		struct ext f2[] = { { 0, 4096 }, { 6u << 20, 512 } };
		struct ext m1[] = { { 6u << 20, 65536 } };

		expect(img, "fine", f2, 2);
		expect(img, "m", m1, 1);
	}
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(path), 0);
	qemu_lists(path, "fine", 512, true, false);
}
END_TEST

/* Unknown autoclear bits go on our first change; the bitmaps bit stays. */
START_TEST(autoclear_bits)
{
	char path[PATH_MAX];
	vsm_image *img;
	uint8_t b = 1;

	ct_path(path, "ac.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s' 1M && %s bitmap --add '%s' b0",
			       ct_qemu_img(), path, ct_qemu_img(), path), 0);
	ct_put_be(path, 88, 1 | (1u << 5), 8);
	open_rw(&img, path);
	CT_OK(vsm_image_write(img, &b, 1, 0, 0));
	CT_OK(vsm_image_close(img));
	ck_assert_uint_eq(ct_get_be(path, 88, 8), 1);
	ck_assert_int_eq(ct_qemu_check(path), 0);
	qemu_lists(path, "b0", 65536, true, false);
}
END_TEST

/* A bitmap extension without the autoclear bit is stale: ignored, as by
 * QEMU. */
START_TEST(stale_extension_ignored)
{
	char path[PATH_MAX];
	vsm_image *img;
	vsm_image_bitmap_info *l;
	size_t n = 9;

	ct_path(path, "st.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s' 1M && %s bitmap --add '%s' b0",
			       ct_qemu_img(), path, ct_qemu_img(), path), 0);
	ct_put_be(path, 88, 0, 8);
	CT_OK(vsm_image_open(&img, path, NULL));
	CT_OK(vsm_image_bitmap_list(&l, &n, img));
	ck_assert_uint_eq(n, 0);
	vsm_image_bitmap_list_free(l, n);
	CT_OK(vsm_image_close(img));
}
END_TEST

#define RSIZE (24u << 20)

struct model {
	uint8_t sect[RSIZE / 512];  /* touched 512-byte sectors */
};

static void model_touch(struct model *m, uint64_t off, uint64_t len)
{
	uint64_t s;

	for (s = off / 512; s <= (off + len - 1) / 512; s++)
		m->sect[s] = 1;
}

static void model_extents(const struct model *m, uint64_t g, struct extlist *out)
{
	uint64_t nbits = (RSIZE + g - 1) / g, i, s, per = g / 512;
	uint8_t *bits = calloc(nbits, 1);

	for (i = 0; i < nbits; i++)
		for (s = i * per; s < (i + 1) * per && s < RSIZE / 512; s++)
			if (m->sect[s]) {
				bits[i] = 1;
				break;
			}
	from_bits(bits, nbits, g, RSIZE, out);
	free(bits);
}

static void check_model(vsm_image *img, const struct model *m, const char *name, uint64_t g)
{
	struct extlist want, got;

	model_extents(m, g, &want);
	CT_OK(our_extents(img, name, &got));
	same(&got, &want, name);
}

/* Random writes, zeroes and discards (unaligned, crossing granularity
 * boundaries) with three bitmaps, one disabled: the extents equal a
 * reference model, before and after close, and on disk. */
START_TEST(random_against_model)
{
	char path[PATH_MAX];
	vsm_image *img;
	vsm_image_bitmap_opts o = VSM_IMAGE_BITMAP_OPTS_INIT;
	struct model *m = calloc(1, sizeof(*m)), *none = calloc(1, sizeof(*none));
	struct extlist want;
	uint64_t rs = 0x1234 + (uint64_t)_i;
	uint8_t *buf = malloc(300000);
	int i;

	ct_path(path, "r.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 -o cluster_size=4096 '%s' %u", ct_qemu_img(),
			       path, RSIZE), 0);
	open_rw(&img, path);
	o.granularity = 512;
	CT_OK(vsm_image_bitmap_add(img, "g512", &o, 0));
	o.granularity = 65536;
	CT_OK(vsm_image_bitmap_add(img, "g64k", &o, 0));
	o.granularity = 1u << 20;
	o.disabled = 1;
	CT_OK(vsm_image_bitmap_add(img, "off", &o, 0));
	memset(buf, 0x33, 300000);
	for (i = 0; i < 400; i++) {
		uint64_t off = ct_rand(&rs) % RSIZE, len = 1 + ct_rand(&rs) % 300000;
		int kind = (int)(ct_rand(&rs) % 4);

		if (ct_rand(&rs) % 3 == 0)
			off &= ~65535ull;
		if (off + len > RSIZE)
			len = RSIZE - off;
		if (kind < 2)
			CT_OK(vsm_image_write(img, buf, len, off, 0));
		else if (kind == 2)
			CT_OK(vsm_image_write_zeroes(img, off, len, 0));
		else
			CT_OK(vsm_image_discard(img, off, len, 0));
		model_touch(m, off, len);
		if (i == 200) {
			/* A flush stores the bits; later writes set in_use again. */
			CT_OK(vsm_image_flush(img));
			ck_assert_int_eq(ct_qemu_check(path), 0);
			check_model(img, m, "g512", 512);
		}
	}
	check_model(img, m, "g512", 512);
	check_model(img, m, "g64k", 65536);
	check_model(img, none, "off", 1u << 20);
	/* dst |= src across granularities. */
	CT_OK(vsm_image_bitmap_merge(img, "off", img, "g512", 0));
	check_model(img, m, "off", 1u << 20);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(path), 0);
	model_extents(m, 512, &want);
	disk_matches(path, "g512", &want);
	model_extents(m, 65536, &want);
	disk_matches(path, "g64k", &want);
	CT_OK(vsm_image_open(&img, path, NULL));
	check_model(img, m, "g512", 512);
	check_model(img, m, "off", 1u << 20);
	CT_OK(vsm_image_bitmap_clear(img, "g64k", 0));
	check_model(img, none, "g64k", 65536);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(path), 0);
	free(m);
	free(none);
	free(buf);
}
END_TEST

/* A writer killed before close leaves its enabled bitmaps in_use: they
 * are reported, their extents refused with a message, and they can be
 * removed; qemu-img check finds at most leaks. */
START_TEST(killed_writer)
{
	char path[PATH_MAX];
	vsm_image *img;
	vsm_image_bitmap_opts o = VSM_IMAGE_BITMAP_OPTS_INIT;
	vsm_image_bitmap_info *l;
	vsm_image_extent *x;
	struct ext e[] = { { 0, 65536 } };
	size_t n;
	int fds[2], st, rc;
	pid_t pid;
	char c;

	ct_path(path, "k.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s' 8M", ct_qemu_img(), path), 0);
	open_rw(&img, path);
	CT_OK(vsm_image_bitmap_add(img, "on", NULL, 0));
	o.disabled = 1;
	CT_OK(vsm_image_bitmap_add(img, "off", &o, 0));
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		uint8_t buf[8192] = { 7 };

		close(fds[0]);
		if (vsm_image_open(&img, path, NULL) < 0 ||
		    vsm_image_write(img, buf, sizeof(buf), 0, 0) < 0 ||
		    vsm_image_flush(img) < 0 ||
		    vsm_image_write(img, buf, sizeof(buf), 5u << 20, 0) < 0)
			_exit(1);
		if (write(fds[1], "w", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	close(fds[0]);
	ck_assert(WIFSIGNALED(st));
	rc = ct_qemu_check(path);
	ck_assert_msg(rc == 0 || rc == 3, "qemu-img check: %d", rc);
	qemu_lists(path, "on", 65536, true, true);
	qemu_lists(path, "off", 65536, false, false);
	open_rw(&img, path);
	CT_OK(vsm_image_bitmap_list(&l, &n, img));
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(l[0].in_use, 1);
	ck_assert_int_eq(l[1].in_use, 0);
	vsm_image_bitmap_list_free(l, n);
	ck_assert_int_eq(vsm_image_bitmap_extents(&x, &n, img, "on"), -VSM_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, "'on'"));
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, "did not close"));
	ck_assert_int_eq(vsm_image_bitmap_clear(img, "on", 0), -VSM_ECORRUPT);
	ck_assert_int_eq(vsm_image_bitmap_merge(img, "off", img, "on", 0), -VSM_ECORRUPT);
	expect(img, "off", NULL, 0);
	/* A resize would have to grow an untrusted bitmap: refused, as QEMU does. */
	ck_assert_int_eq(vsm_image_resize(img, 16u << 20, 0), -VSM_ESTATE);
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, "'on'"));
	ck_assert_uint_eq(vsm_image_size(img), 8u << 20);
	/* Still in_use after our own writes and close (untrusted stays). */
	CT_OK(vsm_image_write(img, "x", 1, 0, 0));
	CT_OK(vsm_image_close(img));
	qemu_lists(path, "on", 65536, true, true);
	open_rw(&img, path);
	CT_OK(vsm_image_bitmap_remove(img, "on", 0));
	CT_OK(vsm_image_bitmap_add(img, "on", NULL, 0));
	CT_OK(vsm_image_write(img, "x", 1, 0, 0));
	expect(img, "on", e, 1);
	CT_OK(vsm_image_close(img));
	rc = ct_qemu_check(path);
	ck_assert_msg(rc == 0 || rc == 3, "qemu-img check: %d", rc);
	qemu_lists(path, "on", 65536, true, false);
	ck_assert_uint_eq(qemu_count(path), 2);
}
END_TEST

/* commit dirties the base's enabled bitmaps; flatten's copy-up dirties
 * nothing; convert with the flag carries the bitmaps, without it not. */
START_TEST(commit_flatten_convert)
{
	char base[PATH_MAX], top[PATH_MAX], top2[PATH_MAX], conv[PATH_MAX], conv2[PATH_MAX];
	vsm_image *img;
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	vsm_image_convert_opts cv = VSM_IMAGE_CONVERT_OPTS_INIT;
	uint8_t buf[4096];
	struct ext one[] = { { 1u << 20, 65536 } };
	struct ext both[] = { { 1u << 20, 65536 }, { 3u << 20, 65536 } };

	ct_path(base, "base.qcow2");
	ct_path(top, "top.qcow2");
	ct_path(top2, "top2.qcow2");
	ct_path(conv, "conv.qcow2");
	ct_path(conv2, "conv2.qcow2");
	memset(buf, 0x77, sizeof(buf));
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s' 8M && %s bitmap --add '%s' bb && "
			       "%s -c 'write 3M 4k' '%s'", ct_qemu_img(), base, ct_qemu_img(),
			       base, ct_qemu_io(), base), 0);
	co.backing = "base.qcow2";
	co.backing_format = "qcow2";
	CT_OK(vsm_image_create(top, &co, 0));
	open_rw(&img, top);
	CT_OK(vsm_image_bitmap_add(img, "tb", NULL, 0));
	CT_OK(vsm_image_write(img, buf, sizeof(buf), 1u << 20, 0));
	CT_OK(vsm_image_commit(img, 0));
	expect(img, "tb", one, 1);   /* emptying the overlay is not a change */
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(base), 0);
	ck_assert_int_eq(ct_qemu_check(top), 0);
	CT_OK(vsm_image_open(&img, base, NULL));
	expect(img, "bb", both, 2);
	CT_OK(vsm_image_close(img));

	CT_OK(vsm_image_create(top2, &co, 0));
	open_rw(&img, top2);
	CT_OK(vsm_image_bitmap_add(img, "t2", NULL, 0));
	CT_OK(vsm_image_flatten(img, 0));
	expect(img, "t2", NULL, 0);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(top2), 0);
	qemu_lists(top2, "t2", 65536, true, false);

	cv.flags = VSM_IMAGE_CONVERT_BITMAPS;
	CT_OK(vsm_image_convert(base, conv, &cv));
	ck_assert_int_eq(ct_qemu_check(conv), 0);
	qemu_lists(conv, "bb", 65536, true, false);
	disk_matches(conv, "bb", &(struct extlist){ .n = 2, .e = { { 1u << 20, 65536 },
								   { 3u << 20, 65536 } } });
	cv.flags = 0;
	CT_OK(vsm_image_convert(base, conv2, &cv));
	ck_assert_uint_eq(qemu_count(conv2), 0);
	/* A version-1 caller has no flags member: nothing is copied. */
	cv.version = 1;
	cv.flags = VSM_IMAGE_CONVERT_BITMAPS;
	unlink(conv2);
	CT_OK(vsm_image_convert(base, conv2, &cv));
	ck_assert_uint_eq(qemu_count(conv2), 0);
}
END_TEST

/* resize grows the bitmaps (as qemu-img resize does); the new range is
 * clean, and writes there are recorded. */
START_TEST(resize_grows)
{
	char path[PATH_MAX];
	vsm_image *img;
	struct ext e[] = { { (1u << 20) - 512, 512 }, { 5u << 20, 512 } };
	vsm_image_bitmap_opts o = VSM_IMAGE_BITMAP_OPTS_INIT;

	ct_path(path, "rs.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s' 1M", ct_qemu_img(), path), 0);
	open_rw(&img, path);
	o.granularity = 512;
	CT_OK(vsm_image_bitmap_add(img, "b", &o, 0));
	CT_OK(vsm_image_write(img, "a", 1, (1u << 20) - 1, 0));
	CT_OK(vsm_image_resize(img, 64u << 20, 0));
	expect(img, "b", e, 1);
	CT_OK(vsm_image_write(img, "a", 1, 5u << 20, 0));
	expect(img, "b", e, 2);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(path), 0);
	qemu_lists(path, "b", 512, true, false);
	disk_matches(path, "b", &(struct extlist){ .n = 2, .e = { { (1u << 20) - 512, 512 },
								  { 5u << 20, 512 } } });
	ck_assert_int_eq(ct_sh("%s -c 'write 60M 512' '%s'", ct_qemu_io(), path), 0);
	ck_assert_int_eq(ct_qemu_check(path), 0);
}
END_TEST

/* What the calls refuse, with the image unchanged. */
START_TEST(refusals)
{
	char path[PATH_MAX], raw[PATH_MAX], name[1100];
	vsm_image *img;
	vsm_image_open_opts ro = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image_bitmap_opts o = VSM_IMAGE_BITMAP_OPTS_INIT;
	vsm_image_extent *x;
	size_t n;

	ct_path(path, "f.qcow2");
	ct_path(raw, "f.raw");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s' 1M && %s create -f raw '%s' 1M",
			       ct_qemu_img(), path, ct_qemu_img(), raw), 0);
	open_rw(&img, raw);
	ck_assert_int_eq(vsm_image_bitmap_add(img, "b", NULL, 0), -VSM_ENOTSUP);
	CT_OK(vsm_image_close(img));
	open_rw(&img, path);
	CT_OK(vsm_image_bitmap_add(img, "b", NULL, 0));
	ck_assert_int_eq(vsm_image_bitmap_add(img, "b", NULL, 0), -VSM_EEXISTS);
	memset(name, 'n', 1024);
	name[1024] = 0;
	ck_assert_int_eq(vsm_image_bitmap_add(img, name, NULL, 0), -VSM_EINVAL);
	name[1023] = 0;
	CT_OK(vsm_image_bitmap_add(img, name, NULL, 0));
	o.granularity = 256;
	ck_assert_int_eq(vsm_image_bitmap_add(img, "g", &o, 0), -VSM_EINVAL);
	o.granularity = 3000;
	ck_assert_int_eq(vsm_image_bitmap_add(img, "g", &o, 0), -VSM_EINVAL);
	o.version = 99;
	ck_assert_int_eq(vsm_image_bitmap_add(img, "g", &o, 0), -VSM_EVERSION);
	ck_assert_int_eq(vsm_image_bitmap_remove(img, "nope", 0), -VSM_ENOTFOUND);
	ck_assert_int_eq(vsm_image_bitmap_extents(&x, &n, img, "nope"), -VSM_ENOTFOUND);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(path), 0);
	qemu_lists(path, name, 65536, true, false);
	ro.flags = VSM_IMAGE_OPEN_RDONLY;
	CT_OK(vsm_image_open(&img, path, &ro));
	ck_assert_int_eq(vsm_image_bitmap_add(img, "c", NULL, 0), -VSM_EPERM);
	ck_assert_int_eq(vsm_image_bitmap_remove(img, "b", 0), -VSM_EPERM);
	CT_OK(vsm_image_bitmap_extents(&x, &n, img, "b"));
	ck_assert_uint_eq(n, 0);
	vsm_image_extent_list_free(x);
	CT_OK(vsm_image_close(img));
	ck_assert_uint_eq(qemu_count(path), 2);
}
END_TEST

/* The engine calls the layer above uses: set (rebuild from a map), merge
 * from another open image with another granularity, extents clipped to a
 * range and stopped by the callback. */
static int collect(uint64_t off, uint64_t len, void *payload)
{
	struct extlist *l = payload;

	l->e[l->n].start = off;
	l->e[l->n].len = len;
	return ++l->n == 3 ? 42 : 0;
}

static vsm_cow *cow_open(const char *path)
{
	vsm_bdev *b;
	vsm_cow *c;

	CT_OK(vsm_bdev_open_path(&b, path, 0));
	CT_OK(vsm_cow_open(&c, b, path, NULL));
	return c;
}

START_TEST(engine_set_merge_extents)
{
	char a[PATH_MAX], b[PATH_MAX];
	vsm_cow *ca, *cb;
	struct extlist l;

	ct_path(a, "a.qcow2");
	ct_path(b, "b.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s' 10M && %s create -f qcow2 '%s' 4M",
			       ct_qemu_img(), a, ct_qemu_img(), b), 0);
	ca = cow_open(a);
	cb = cow_open(b);
	CT_OK(vsm_cow_bitmap_add(ca, "fine", 4096, false));
	CT_OK(vsm_cow_bitmap_add(cb, "coarse", 1u << 20, true));
	CT_OK(vsm_cow_bitmap_set(ca, "fine", 4095, 2));       /* bits 0 and 1 */
	CT_OK(vsm_cow_bitmap_set(ca, "fine", 3u << 20, 4096));
	CT_OK(vsm_cow_bitmap_set(ca, "fine", (9u << 20) + 5, 10)); /* past b's size */
	ck_assert_int_eq(vsm_cow_bitmap_set(ca, "fine", 10u << 20, 1), -VSM_EINVAL);
	memset(&l, 0, sizeof(l));
	CT_OK(vsm_cow_bitmap_extents(ca, "fine", 0, 10u << 20, collect, &l));
	ck_assert_uint_eq(l.n, 2 + 1);
	ck_assert_uint_eq(l.e[0].start, 0);
	ck_assert_uint_eq(l.e[0].len, 8192);
	/* Clipped to the range asked. */
	memset(&l, 0, sizeof(l));
	CT_OK(vsm_cow_bitmap_extents(ca, "fine", 100, 4000, collect, &l));
	ck_assert_uint_eq(l.n, 1);
	ck_assert_uint_eq(l.e[0].start, 100);
	ck_assert_uint_eq(l.e[0].len, 4000);
	CT_OK(vsm_cow_bitmap_merge(cb, "coarse", ca, "fine"));
	memset(&l, 0, sizeof(l));
	CT_OK(vsm_cow_bitmap_extents(cb, "coarse", 0, 4u << 20, collect, &l));
	ck_assert_uint_eq(l.n, 2);
	ck_assert_uint_eq(l.e[0].start, 0);
	ck_assert_uint_eq(l.e[0].len, 1u << 20);
	ck_assert_uint_eq(l.e[1].start, 3u << 20);
	ck_assert_uint_eq(l.e[1].len, 1u << 20);
	/* A callback's non-zero answer stops the walk and is returned. */
	CT_OK(vsm_cow_bitmap_set(cb, "coarse", 2u << 20, 1));
	CT_OK(vsm_cow_bitmap_clear(ca, "fine"));
	CT_OK(vsm_cow_bitmap_enable(ca, "fine", true));
	CT_OK(vsm_cow_write(ca, "z", 1, 0));
	CT_OK(vsm_cow_write(ca, "z", 1, 8192));
	CT_OK(vsm_cow_write(ca, "z", 1, 16384));
	CT_OK(vsm_cow_write(ca, "z", 1, 32768));
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(vsm_cow_bitmap_extents(ca, "fine", 0, 10u << 20, collect, &l), 42);
	CT_OK(vsm_cow_close(ca));
	CT_OK(vsm_cow_close(cb));
	ck_assert_int_eq(ct_qemu_check(a), 0);
	ck_assert_int_eq(ct_qemu_check(b), 0);
	qemu_lists(a, "fine", 4096, true, false);
	disk_matches(b, "coarse", &(struct extlist){ .n = 2, .e = { { 0, 1u << 20 },
								   { 2u << 20, 2u << 20 } } });
}
END_TEST

/* A bitmap-table cluster of all ones is stored as entry 1 (no data
 * cluster), read back as ones, and further writes and merges work on it. */
START_TEST(all_ones_entries)
{
	char a[PATH_MAX];
	vsm_cow *c;
	struct extlist l;
	uint64_t e, doff, toff;

	ct_path(a, "ones.qcow2");
	ck_assert_int_eq(ct_sh("%s create -f qcow2 -o cluster_size=512 '%s' 5M", ct_qemu_img(),
			       a), 0);
	c = cow_open(a);
	/* 512-byte clusters, 512-byte granularity: one entry covers 2 MiB. */
	CT_OK(vsm_cow_bitmap_add(c, "b", 512, true));
	CT_OK(vsm_cow_bitmap_set(c, "b", 0, 2u << 20));
	CT_OK(vsm_cow_close(c));
	ck_assert_int_eq(ct_qemu_check(a), 0);
	e = ext_at(a);
	doff = ct_get_be(a, e + 16, 8);
	toff = ct_get_be(a, doff, 8);
	ck_assert_uint_eq(ct_get_be(a, toff, 8), 1);
	ck_assert_uint_eq(ct_get_be(a, toff + 8, 8), 0);
	disk_matches(a, "b", &(struct extlist){ .n = 1, .e = { { 0, 2u << 20 } } });
	c = cow_open(a);
	CT_OK(vsm_cow_write(c, "x", 1, 100));          /* inside the ones */
	CT_OK(vsm_cow_write(c, "x", 1, (2u << 20)));   /* joins them */
	CT_OK(vsm_cow_bitmap_add(c, "copy", 1u << 20, false));
	CT_OK(vsm_cow_bitmap_merge(c, "copy", c, "b"));
	memset(&l, 0, sizeof(l));
	CT_OK(vsm_cow_bitmap_extents(c, "b", 0, 5u << 20, collect, &l));
	ck_assert_uint_eq(l.n, 1);
	ck_assert_uint_eq(l.e[0].len, (2u << 20) + 512);
	memset(&l, 0, sizeof(l));
	CT_OK(vsm_cow_bitmap_extents(c, "copy", 0, 5u << 20, collect, &l));
	ck_assert_uint_eq(l.n, 1);
	ck_assert_uint_eq(l.e[0].len, 3u << 20);
	CT_OK(vsm_cow_close(c));
	ck_assert_int_eq(ct_qemu_check(a), 0);
	disk_matches(a, "b", &(struct extlist){ .n = 1, .e = { { 0, (2u << 20) + 512 } } });
	/* QEMU reads entry 1 as ones too: a merge through qemu-img (its
	 * default granularity is at least 4 KiB). */
	ck_assert_int_eq(ct_sh("%s bitmap --add -g 512 --merge b '%s' q", ct_qemu_img(), a), 0);
	disk_matches(a, "q", &(struct extlist){ .n = 1, .e = { { 0, (2u << 20) + 512 } } });
}
END_TEST

/*
 * A fault campaign over a session that writes, flushes, adds and removes
 * bitmaps: the Nth I/O of the image fails and so does every later one (a
 * crash at that point, as far as the disk can tell), for every N. After
 * each: QEMU and we open the image, qemu-img check finds no corruption
 * (leaks allowed), and a bitmap that is not in_use on disk holds the bits
 * of every write that returned success.
 */
struct step {
	int kind;          /* 0 write, 1 flush, 2 add "new", 3 remove "b1" */
	uint64_t off;
};

static const struct step session[] = {
	{ 0, 0 }, { 1, 0 }, { 0, 1u << 20 }, { 2, 0 }, { 0, 2u << 20 }, { 3, 0 },
	{ 1, 0 }, { 0, 3u << 20 }, { 0, 5u << 20 },
};

/* The session under the rule; the writes that returned success are
 * marked in @ok. Without @close the process just stops (killed). */
static void run_session(const char *path, bool close, bool *ok)
{
	vsm_image *img = NULL;
	uint8_t buf[4096];
	size_t i;

	memset(buf, 0x42, sizeof(buf));
	if (vsm_image_open(&img, path, NULL) < 0)
		return;
	for (i = 0; i < sizeof(session) / sizeof(session[0]); i++) {
		const struct step *st = &session[i];

		if (st->kind == 0)
			ok[i] = vsm_image_write(img, buf, sizeof(buf), st->off, 0) == 0;
		else if (st->kind == 1)
			vsm_image_flush(img);
		else if (st->kind == 2)
			vsm_image_bitmap_add(img, "new", NULL, 0);
		else
			vsm_image_bitmap_remove(img, "b1", 0);
	}
	if (close)
		vsm_image_close(img);
}

/*
 * @crash 0: the Nth I/O and all later ones fail (sticky), then close.
 * @crash 1: only the Nth fails (transient), and the writer is killed
 * before close (a child process that exits without closing).
 */
static uint64_t fault_run(uint64_t n, int crash, int *checked)
{
	char path[PATH_MAX], rule[64];
	vsm_image *img = NULL;
	vsm_image_bitmap_info *l;
	bool *ok;
	uint64_t hit;
	size_t i, cnt;
	int rc, st;

	ok = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(ok != MAP_FAILED);
	ct_path(path, "fb.qcow2");
	unlink(path);
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s' 8M && %s bitmap --add '%s' b0 && "
			       "%s bitmap --add '%s' b1 && %s -c 'write 7M 4k' '%s'",
			       ct_qemu_img(), path, ct_qemu_img(), path, ct_qemu_img(), path,
			       ct_qemu_io(), path), 0);
	snprintf(rule, sizeof(rule), "any:%llu:%s", (unsigned long long)n,
		 crash ? "transient" : "sticky");
	if (crash) {
		pid_t pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			vsm__fault_set(rule, "fb.qcow2");
			run_session(path, false, ok);
			/* The fault count travels in the last byte of the page. */
			((uint8_t *)ok)[4095] = vsm__fault_failed() ? 1 : 0;
			_exit(0);
		}
		waitpid(pid, &st, 0);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		hit = ((uint8_t *)ok)[4095];
	} else {
		ck_assert_int_eq(vsm__fault_set(rule, "fb.qcow2"), 0);
		run_session(path, true, ok);
		hit = vsm__fault_failed();
		vsm__fault_set(NULL, NULL);
	}
	rc = ct_qemu_check(path);
	ck_assert_msg(rc == 0 || rc == 3, "fault %llu/%d: qemu-img check gave %d",
		      (unsigned long long)n, crash, rc);
	ck_assert_msg(ct_sh("%s info '%s'", ct_qemu_img(), path) == 0,
		      "fault %llu/%d: qemu-img info fails", (unsigned long long)n, crash);
	CT_OK(vsm_image_open(&img, path, NULL));
	CT_OK(vsm_image_bitmap_list(&l, &cnt, img));
	ck_assert_str_eq(l[0].name, "b0");
	if (!l[0].in_use) {
		struct extlist got;
		size_t k;

		CT_OK(our_extents(img, "b0", &got));
		for (i = 0; i < sizeof(session) / sizeof(session[0]); i++) {
			bool found = false;

			if (!ok[i])
				continue;
			for (k = 0; k < got.n; k++)
				found |= got.e[k].start <= session[i].off &&
					 session[i].off < got.e[k].start + got.e[k].len;
			ck_assert_msg(found, "fault %llu/%d: b0 is trusted but misses the write "
				      "at %llu", (unsigned long long)n, crash,
				      (unsigned long long)session[i].off);
		}
		(*checked)++;
	}
	vsm_image_bitmap_list_free(l, cnt);
	CT_OK(vsm_image_close(img));
	munmap(ok, 4096);
	return hit;
}

START_TEST(fault_campaign)
{
	uint64_t n;
	int checked = 0;

	for (n = 1; n < 2000; n++)
		if (fault_run(n, _i, &checked) == 0)
			break;
	ck_assert_msg(n > 10 && n < 2000, "campaign ended at %llu", (unsigned long long)n);
	/* Some runs ended with b0 trusted (late faults, and the clean run). */
	ck_assert_int_gt(checked, 0);
}
END_TEST

/* ---- damaged images ---- */

/* Offset of the bitmaps extension's data in the header of @path. */
static uint64_t ext_at(const char *path)
{
	uint64_t p = ct_get_be(path, 100, 4);

	for (;;) {
		uint32_t t = (uint32_t)ct_get_be(path, p, 4), l = (uint32_t)ct_get_be(path, p + 4, 4);

		ck_assert_uint_ne(t, 0);
		if (t == 0x23852875u)
			return p + 8;
		p += 8 + ((l + 7) & ~7u);
	}
}

static void damaged_image(char *path, const char *name)
{
	ct_path(path, name);
	ck_assert_int_eq(ct_sh("%s create -f qcow2 '%s' 8M && %s bitmap --add '%s' b0 && "
			       "%s bitmap --add '%s' b1 && %s -c 'write 0 4k' -c 'write 4M 4k' '%s'",
			       ct_qemu_img(), path, ct_qemu_img(), path, ct_qemu_img(), path,
			       ct_qemu_io(), path), 0);
}

static void refused_with(const char *path, const char *what)
{
	vsm_image *img = NULL;
	vsm_image_open_opts ro = VSM_IMAGE_OPEN_OPTS_INIT;
	int rc;

	ro.flags = VSM_IMAGE_OPEN_RDONLY;
	rc = vsm_image_open(&img, path, &ro);
	ck_assert_msg(rc == -VSM_ECORRUPT, "%s: open gave %d", what, rc);
	ck_assert_msg(strstr(vsm_error_last()->message, "bitmap") != NULL,
		      "%s: message '%s' does not say bitmap", what, vsm_error_last()->message);
}

START_TEST(damaged_refused)
{
	char path[PATH_MAX];
	uint64_t e, doff, toff, rt;
	int k = _i;

	damaged_image(path, "d.qcow2");
	e = ext_at(path);
	doff = ct_get_be(path, e + 16, 8);
	toff = ct_get_be(path, doff, 8);   /* b0's table */
	rt = ct_get_be(path, 48, 8);
	switch (k) {
	case 0: ct_put_be(path, e, 0, 4); break;                        /* no bitmaps */
	case 1: ct_put_be(path, e, 70000, 4); break;                    /* too many */
	case 2: ct_put_be(path, e + 8, 1ull << 40, 8); break;           /* dir too large */
	case 3: ct_put_be(path, e + 16, doff + 512, 8); break;          /* dir unaligned */
	case 4: ct_put_be(path, e + 16, 1ull << 40, 8); break;          /* dir past EOF */
	case 5: ct_put_be(path, doff, rt, 8); break;                    /* table on refcounts */
	case 6: ct_put_be(path, doff, ct_get_be(path, doff + 32, 8), 8); break; /* shared */
	case 7: ct_put_be(path, doff + 8, 5, 4); break;                 /* table size */
	case 8: ct_put_be(path, doff + 17, 40, 1); break;               /* granularity */
	case 9: ct_put_be(path, doff + 12, 1u << 7, 4); break;          /* reserved flag */
	case 10: ct_put_be(path, doff + 18, 0, 2); break;               /* empty name */
	case 11: ct_put_be(path, toff, (1ull << 40) | 0, 8); break;     /* data past EOF */
	case 12: ct_put_be(path, toff, 0x10000ull | 2, 8); break;       /* reserved bit */
	case 13: ct_put_be(path, toff, 0, 8); ct_put_be(path, doff, 0, 8); break; /* no table */
	case 14: ct_put_be(path, e - 4, 16, 4); break;                  /* ext length */
	case 15: ct_put_be(path, doff + 16, 2, 1); break;               /* type */
	case 16: ct_put_be(path, toff, 0, 8);                           /* data on L1 */
		 ct_put_be(path, toff, ct_get_be(path, 40, 8), 8); break;
	default: break;
	}
	refused_with(path, "damaged");
}
END_TEST

/* A name with a NUL byte and two bitmaps of one name are refused too. */
START_TEST(damaged_names)
{
	char path[PATH_MAX];
	uint64_t doff;

	damaged_image(path, "n.qcow2");
	doff = ct_get_be(path, ext_at(path) + 16, 8);
	ct_put_be(path, doff + 24, 0, 1);
	refused_with(path, "nul");
	damaged_image(path, "n2.qcow2");
	doff = ct_get_be(path, ext_at(path) + 16, 8);
	ct_put_be(path, doff + 24 + 1, '0', 1);   /* "b0" */
	ct_put_be(path, doff + 32 + 24 + 1, '0', 1); /* "b1" -> "b0" */
	refused_with(path, "duplicate");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cow-bitmap");
	TCase *tc = tcase_create("bitmap");

	tcase_add_unchecked_fixture(tc, ct_setup, ct_teardown);
	tcase_set_timeout(tc, 200);
	tcase_add_test(tc, ours_listed_by_qemu);
	tcase_add_test(tc, qemu_made_read_and_updated);
	tcase_add_test(tc, autoclear_bits);
	tcase_add_test(tc, stale_extension_ignored);
	tcase_add_loop_test(tc, random_against_model, 0, 3);
	tcase_add_test(tc, killed_writer);
	tcase_add_test(tc, commit_flatten_convert);
	tcase_add_test(tc, resize_grows);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, engine_set_merge_extents);
	tcase_add_test(tc, all_ones_entries);
	tcase_add_loop_test(tc, fault_campaign, 0, 2);
	tcase_add_loop_test(tc, damaged_refused, 0, 17);
	tcase_add_test(tc, damaged_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ct_run(suite());
}
