/*
 * cow-copy: content IDs and chain copy (vsm_image_freeze, _cid_get,
 * _copy). A chain of four qcow2 layers (base, l1, l2, top), each with
 * its own data, is copied whole, then onto parents already in the target
 * directory; qemu-img is the oracle for what the copies read and for
 * their metadata. Refusals, cancel and damaged sources leave nothing.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cowtest.h"

#define CS 65536u
#define SIZE (8u << 20)

/* Clusters of data each layer writes (and holds itself). */
static const struct { const char *name; uint64_t first, n; } layer[] = {
	{ "base.qcow2", 0, 8 }, { "l1.qcow2", 16, 4 }, { "l2.qcow2", 32, 3 },
	{ "top.qcow2", 48, 2 },
};

/* The test cases share the fixture's directory: each works in its own
 * subdirectories, named after the case. */
static char pfx[64];

static void scope(const char *name, int i)
{
	snprintf(pfx, sizeof(pfx), "%s%d", name, i);
}

static void dpath(char *out, const char *dir)
{
	char n[128];

	snprintf(n, sizeof(n), "%s-%s", pfx, dir);
	ct_path(out, n);
	mkdir(out, 0755);
}

static void sub(char *out, const char *dir, const char *name)
{
	dpath(out, dir);
	strncat(out, "/", PATH_MAX - strlen(out) - 1);
	strncat(out, name, PATH_MAX - strlen(out) - 1);
}

static void fill(vsm_image *img, int id, uint64_t first, uint64_t n)
{
	uint8_t *buf = malloc(CS);
	uint64_t i;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < n; i++) {
		memset(buf, 1 + (id * 31 + (int)i) % 250, CS);
		CT_OK(vsm_image_write(img, buf, CS, (first + i) * CS, 0));
	}
	free(buf);
}

/* The chain in @dir; base, l1 and l2 frozen, the top not. l1 also makes
 * base's first cluster read as zeros (a zero cluster that must survive)
 * and writes a cluster of zero bytes over base's second one (data that
 * reads as zeros: it must still hide base's data in the copy). */
static void make_chain(const char *dir, int seed)
{
	char p[PATH_MAX];
	int i;

	for (i = 0; i < 4; i++) {
		vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
		vsm_image *img;

		sub(p, dir, layer[i].name);
		co.size = SIZE;
		co.cluster_size = CS;
		co.backing = i ? layer[i - 1].name : NULL;
		co.backing_format = i ? "qcow2" : NULL;
		CT_OK(vsm_image_create(p, &co, 0));
		CT_OK(vsm_image_open(&img, p, NULL));
		fill(img, i + seed, layer[i].first, layer[i].n);
		if (i == 1) {
			uint8_t *z = calloc(1, CS);

			ck_assert_ptr_nonnull(z);
			CT_OK(vsm_image_write_zeroes(img, 0, CS, 0));
			CT_OK(vsm_image_write(img, z, CS, CS, 0));
			free(z);
		}
		if (i < 3)
			CT_OK(vsm_image_freeze(img, 0));
		CT_OK(vsm_image_close(img));
	}
}

static int cid_of(const char *path, char out[VSM_IMAGE_CID_STRLEN + 1])
{
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img;
	int rc;

	oo.flags = VSM_IMAGE_OPEN_RDONLY | VSM_IMAGE_OPEN_NO_BACKING;
	CT_OK(vsm_image_open(&img, path, &oo));
	rc = vsm_image_cid_get(img, out);
	vsm_image_close(img);
	return rc;
}

static uint64_t allocated(const char *path)
{
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image_info *inf;
	vsm_image *img;
	uint64_t n;

	oo.flags = VSM_IMAGE_OPEN_RDONLY | VSM_IMAGE_OPEN_NO_BACKING;
	CT_OK(vsm_image_open(&img, path, &oo));
	CT_OK(vsm_image_info_get(&inf, img, 0));
	n = inf->allocated_bytes;
	vsm_image_info_free(inf);
	vsm_image_close(img);
	return n;
}

static int qcompare(const char *a, const char *b)
{
	return ct_sh("%s compare '%s' '%s'", ct_qemu_img(), a, b);
}

/* The sorted names in @dir, joined with spaces. */
static void listing(const char *dir, char *out, size_t len)
{
	char d[PATH_MAX];
	struct dirent **ents;
	int n, i;

	dpath(d, dir);
	out[0] = '\0';
	n = scandir(d, &ents, NULL, alphasort);
	ck_assert_int_ge(n, 0);
	for (i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.') {
			strncat(out, ents[i]->d_name, len - strlen(out) - 2);
			strcat(out, " ");
		}
		free(ents[i]);
	}
	free(ents);
}

/* The whole chain is copied when nothing can be reused. */
START_TEST(copy_whole_chain)
{
	vsm_image_copy_stats st = VSM_IMAGE_COPY_STATS_INIT;
	char src[PATH_MAX], dst[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	char c1[VSM_IMAGE_CID_STRLEN + 1], c2[VSM_IMAGE_CID_STRLEN + 1];
	uint64_t want = 0;
	int i;

	scope("copy_whole_chain", _i);

	make_chain("a", 0);
	sub(src, "a", "top.qcow2");
	sub(dst, "b", "copy.qcow2");
	CT_OK(vsm_image_copy(src, dst, NULL, &st));
	ck_assert_uint_eq(st.layers_copied, 4);
	ck_assert_uint_eq(st.layers_reused, 0);
	for (i = 0; i < 4; i++)
		want += layer[i].n * CS;
	ck_assert_uint_eq(st.bytes_copied, want);
	ck_assert_int_eq(qcompare(src, dst), 0);
	ck_assert_int_eq(ct_qemu_check(dst), 0);
	for (i = 0; i < 3; i++) {
		sub(a, "a", layer[i].name);
		sub(b, "b", layer[i].name);
		ck_assert_int_eq(ct_qemu_check(b), 0);
		/* A copied layer keeps its content ID and holds what its source holds. */
		CT_OK(cid_of(a, c1));
		CT_OK(cid_of(b, c2));
		ck_assert_str_eq(c1, c2);
		ck_assert_uint_eq(allocated(b), layer[i].n * CS);
	}
	/* The top was never frozen: its copy has no ID either. */
	ck_assert_int_eq(cid_of(dst, c2), -VSM_ENOTFOUND);
	/* The zero cluster l1 put over base's data is still there, and its
	 * cluster of zero bytes became one. */
	sub(a, "a", "l1.qcow2");
	sub(b, "b", "l1.qcow2");
	ck_assert_int_eq(ct_sh("%s map --output=json '%s' | grep -q "
			       "'\"start\": 65536, \"length\": 65536, \"depth\": 0, \"present\": true, "
			       "\"zero\": false, \"data\": true'", ct_qemu_img(), a), 0);
	ck_assert_int_eq(ct_sh("%s map --output=json '%s' | grep -q "
			       "'\"start\": 0, \"length\": 131072, \"depth\": 0, \"present\": true, "
			       "\"zero\": true'", ct_qemu_img(), b), 0);
	/* The target is refused once it exists. */
	ck_assert_int_eq(vsm_image_copy(src, dst, NULL, NULL), -VSM_EEXISTS);
}
END_TEST

/* Copy l1 (with base) first, then the top: only l2 and the top are written. */
START_TEST(reuse_lower_two)
{
	vsm_image_copy_opts o = VSM_IMAGE_COPY_OPTS_INIT;
	vsm_image_copy_stats st = VSM_IMAGE_COPY_STATS_INIT;
	char src[PATH_MAX], l1[PATH_MAX], dst[PATH_MAX], bl1[PATH_MAX], bdir[PATH_MAX], p[PATH_MAX];
	uint8_t *before, *after;
	size_t n1, n2;

	scope("reuse_lower_two", _i);

	make_chain("a", 0);
	sub(src, "a", "top.qcow2");
	sub(l1, "a", "l1.qcow2");
	sub(bl1, "b", "l1.qcow2");
	CT_OK(vsm_image_copy(l1, bl1, NULL, &st));
	ck_assert_uint_eq(st.layers_copied, 2);
	before = ct_read_file(bl1, &n1);
	ck_assert_ptr_nonnull(before);

	dpath(bdir, "b");
	sub(dst, "b", "top.qcow2");
	o.reuse_dir = bdir;
	memset(&st, 0, sizeof(st));
	st.version = VSM_IMAGE_COPY_STATS_VERSION;
	CT_OK(vsm_image_copy(src, dst, &o, &st));
	ck_assert_uint_eq(st.layers_copied, 2);
	ck_assert_uint_eq(st.layers_reused, 2);
	sub(p, "a", "l2.qcow2");
	ck_assert_uint_eq(st.bytes_copied, allocated(p) + allocated(src));
	ck_assert_uint_eq(st.bytes_copied, (layer[2].n + layer[3].n) * CS);
	ck_assert_int_eq(qcompare(src, dst), 0);
	ck_assert_int_eq(ct_qemu_check(dst), 0);
	sub(p, "b", "l2.qcow2");
	ck_assert_int_eq(ct_qemu_check(p), 0);
	/* qemu-img follows the relinked chain: top -> l2 -> the l1 already there. */
	ck_assert_int_eq(ct_sh("%s info --backing-chain '%s' | grep -q '^image: %s$'",
			       ct_qemu_img(), dst, bl1), 0);
	ck_assert_int_eq(ct_sh("%s info '%s' | grep -Eq '^backing file: l1.qcow2( |$)'",
			       ct_qemu_img(), p), 0);
	/* The reused layer was not written. */
	after = ct_read_file(bl1, &n2);
	ck_assert_ptr_nonnull(after);
	ck_assert_uint_eq(n1, n2);
	ck_assert(memcmp(before, after, n1) == 0);
	free(before);
	free(after);
}
END_TEST

/* A parent is found by its content ID under another name. */
START_TEST(reuse_other_name)
{
	vsm_image_copy_opts o = VSM_IMAGE_COPY_OPTS_INIT;
	vsm_image_copy_stats st = VSM_IMAGE_COPY_STATS_INIT;
	char src[PATH_MAX], l2[PATH_MAX], dst[PATH_MAX], other[PATH_MAX], bdir[PATH_MAX];
	char p[PATH_MAX];

	scope("reuse_other_name", _i);

	make_chain("a", 0);
	sub(src, "a", "top.qcow2");
	sub(l2, "a", "l2.qcow2");
	sub(other, "b", "renamed-l2.qcow2");
	CT_OK(vsm_image_copy(l2, other, NULL, &st));
	ck_assert_uint_eq(st.layers_copied, 3);
	dpath(bdir, "b");
	sub(dst, "b", "top.qcow2");
	o.reuse_dir = bdir;
	CT_OK(vsm_image_copy(src, dst, &o, &st));
	ck_assert_uint_eq(st.layers_copied, 1);
	ck_assert_uint_eq(st.layers_reused, 3);
	ck_assert_uint_eq(st.bytes_copied, layer[3].n * CS);
	ck_assert_int_eq(qcompare(src, dst), 0);
	ck_assert_int_eq(ct_sh("%s info '%s' | grep -Eq '^backing file: renamed-l2.qcow2( |$)'",
			       ct_qemu_img(), dst), 0);
	/* Nothing was copied under the source's own name. */
	sub(p, "b", "l2.qcow2");
	ck_assert_int_ne(access(p, F_OK), 0);
}
END_TEST

/* Same data and names, other content IDs: never taken for the parent. */
START_TEST(other_cid_not_reused)
{
	vsm_image_copy_opts o = VSM_IMAGE_COPY_OPTS_INIT;
	vsm_image_copy_stats st = VSM_IMAGE_COPY_STATS_INIT;
	char src[PATH_MAX], dst[PATH_MAX], bdir[PATH_MAX], bl1[PATH_MAX], before[4096];
	char now[4096];
	uint8_t *f1, *f2;
	size_t n1, n2;

	scope("other_cid_not_reused", _i);

	make_chain("a", 0);
	make_chain("b", 0); /* the same bytes, frozen again: new IDs */
	sub(src, "a", "top.qcow2");
	sub(bl1, "b", "l1.qcow2");
	dpath(bdir, "b");
	sub(dst, "b", "copy.qcow2");
	o.reuse_dir = bdir;
	listing("b", before, sizeof(before));
	f1 = ct_read_file(bl1, &n1);
	ck_assert_int_eq(vsm_image_copy(src, dst, &o, &st), -VSM_EEXISTS);
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, "l2.qcow2"));
	listing("b", now, sizeof(now));
	ck_assert_str_eq(before, now);
	f2 = ct_read_file(bl1, &n2);
	ck_assert(n1 == n2 && memcmp(f1, f2, n1) == 0);
	free(f1);
	free(f2);
}
END_TEST

/* A layer with the right ID on the wrong chain below is not reused: l2's
 * ID on a base with another ID (relinked by qemu-img, which keeps our
 * extension). */
START_TEST(wrong_chain_below_not_reused)
{
	vsm_image_copy_opts o = VSM_IMAGE_COPY_OPTS_INIT;
	vsm_image_copy_stats st = VSM_IMAGE_COPY_STATS_INIT;
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	char src[PATH_MAX], l2[PATH_MAX], m2[PATH_MAX], dst[PATH_MAX], bdir[PATH_MAX];
	char p[PATH_MAX], c1[VSM_IMAGE_CID_STRLEN + 1], c2[VSM_IMAGE_CID_STRLEN + 1];
	vsm_image *img;

	scope("wrong_chain_below_not_reused", _i);

	make_chain("a", 0);
	sub(src, "a", "top.qcow2");
	sub(l2, "a", "l2.qcow2");
	sub(m2, "b", "m2.qcow2");
	CT_OK(vsm_image_copy(l2, m2, NULL, &st));
	sub(p, "b", "stranger.qcow2");
	co.size = SIZE;
	co.cluster_size = CS;
	CT_OK(vsm_image_create(p, &co, 0));
	CT_OK(vsm_image_open(&img, p, NULL));
	CT_OK(vsm_image_freeze(img, 0));
	CT_OK(vsm_image_close(img));
	dpath(bdir, "b");
	ck_assert_int_eq(ct_sh("cd '%s' && %s rebase -u -b stranger.qcow2 -F qcow2 m2.qcow2",
			       bdir, ct_qemu_img()), 0);
	CT_OK(cid_of(l2, c1));
	CT_OK(cid_of(m2, c2));
	ck_assert_str_eq(c1, c2);
	/* Move the real copies of l1 and base out of the way. */
	sub(p, "b", "l1.qcow2");
	ck_assert_int_eq(remove(p), 0);
	sub(p, "b", "base.qcow2");
	ck_assert_int_eq(remove(p), 0);

	sub(dst, "b", "top.qcow2");
	o.reuse_dir = bdir;
	CT_OK(vsm_image_copy(src, dst, &o, &st));
	ck_assert_uint_eq(st.layers_copied, 4);
	ck_assert_uint_eq(st.layers_reused, 0);
	ck_assert_int_eq(qcompare(src, dst), 0);
}
END_TEST

/* l1's own name in the target is taken by another layer (other IDs), but
 * a copy of l1 (with l1's IDs down the chain) is there under another
 * name: that one is used. */
START_TEST(own_name_taken_other_found)
{
	vsm_image_copy_opts o = VSM_IMAGE_COPY_OPTS_INIT;
	vsm_image_copy_stats st = VSM_IMAGE_COPY_STATS_INIT;
	char src[PATH_MAX], dst[PATH_MAX], bdir[PATH_MAX], p[PATH_MAX], q[PATH_MAX];

	scope("own_name_taken_other_found", _i);
	make_chain("a", 0);
	make_chain("b", 0);
	sub(p, "b", "l2.qcow2");
	ck_assert_int_eq(remove(p), 0);
	sub(p, "b", "top.qcow2");
	ck_assert_int_eq(remove(p), 0);
	dpath(bdir, "b");
	o.reuse_dir = bdir;
	/* A chain of one: the copied top keeps base's ID. */
	sub(p, "a", "base.qcow2");
	sub(q, "b", "alt-base.qcow2");
	CT_OK(vsm_image_copy(p, q, NULL, &st));
	ck_assert_uint_eq(st.layers_copied, 1);
	sub(p, "a", "l1.qcow2");
	sub(q, "b", "alt-l1.qcow2");
	CT_OK(vsm_image_copy(p, q, &o, &st));
	ck_assert_uint_eq(st.layers_copied, 1);
	ck_assert_uint_eq(st.layers_reused, 1);
	ck_assert_int_eq(ct_sh("%s info '%s' | grep -Eq '^backing file: alt-base.qcow2( |$)'",
			       ct_qemu_img(), q), 0);

	sub(src, "a", "top.qcow2");
	sub(dst, "b", "copy.qcow2");
	CT_OK(vsm_image_copy(src, dst, &o, &st));
	ck_assert_uint_eq(st.layers_copied, 2);
	ck_assert_uint_eq(st.layers_reused, 2);
	ck_assert_int_eq(qcompare(src, dst), 0);
	sub(p, "b", "l2.qcow2");
	ck_assert_int_eq(ct_sh("%s info '%s' | grep -Eq '^backing file: alt-l1.qcow2( |$)'",
			       ct_qemu_img(), p), 0);
}
END_TEST

/* A copy within the source's own directory stands on the same parents. */
START_TEST(copy_within_dir)
{
	vsm_image_copy_stats st = VSM_IMAGE_COPY_STATS_INIT;
	char src[PATH_MAX], dst[PATH_MAX];

	scope("copy_within_dir", _i);
	make_chain("a", 0);
	sub(src, "a", "top.qcow2");
	sub(dst, "a", "top2.qcow2");
	CT_OK(vsm_image_copy(src, dst, NULL, &st));
	ck_assert_uint_eq(st.layers_copied, 1);
	ck_assert_uint_eq(st.layers_reused, 3);
	ck_assert_uint_eq(st.bytes_copied, layer[3].n * CS);
	ck_assert_int_eq(qcompare(src, dst), 0);
	ck_assert_int_eq(ct_qemu_check(dst), 0);
}
END_TEST

/* A raw base is copied as a sparse raw file; having no ID, it (and what
 * stands on it) is never reused. */
START_TEST(raw_base)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	vsm_image_copy_opts o = VSM_IMAGE_COPY_OPTS_INIT;
	vsm_image_copy_stats st = VSM_IMAGE_COPY_STATS_INIT;
	char base[PATH_MAX], l1[PATH_MAX], dst[PATH_MAX], bdir[PATH_MAX], p[PATH_MAX];
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img;
	struct stat sb;
	FILE *f;
	uint8_t blk[8192];

	scope("raw_base", _i);
	sub(base, "a", "base.raw");
	f = fopen(base, "wb");
	ck_assert_ptr_nonnull(f);
	memset(blk, 0x5a, sizeof(blk));
	ck_assert_int_eq(fseek(f, 1 << 20, SEEK_SET), 0);
	ck_assert_uint_eq(fwrite(blk, 1, sizeof(blk), f), sizeof(blk));
	ck_assert_int_eq(ftruncate(fileno(f), SIZE), 0);
	fclose(f);
	sub(l1, "a", "l1.qcow2");
	co.cluster_size = CS;
	co.backing = "base.raw";
	co.backing_format = "raw";
	CT_OK(vsm_image_create(l1, &co, 0));
	CT_OK(vsm_image_open(&img, l1, NULL));
	fill(img, 3, 4, 2);
	CT_OK(vsm_image_freeze(img, 0));
	CT_OK(vsm_image_close(img));

	sub(dst, "b", "l1.qcow2");
	CT_OK(vsm_image_copy(l1, dst, NULL, &st));
	ck_assert_uint_eq(st.layers_copied, 2);
	ck_assert_uint_eq(st.bytes_copied, sizeof(blk) + 2 * CS);
	ck_assert_int_eq(qcompare(l1, dst), 0);
	ck_assert_int_eq(ct_qemu_check(dst), 0);
	sub(p, "b", "base.raw");
	ck_assert_int_eq(stat(p, &sb), 0);
	ck_assert_uint_eq((uint64_t)sb.st_size, SIZE);
	ck_assert_uint_lt((uint64_t)sb.st_blocks * 512, SIZE / 2); /* sparse */
	oo.flags = VSM_IMAGE_OPEN_RDONLY;
	oo.format = "raw";
	CT_OK(vsm_image_open(&img, p, &oo));
	vsm_image_close(img);

	dpath(bdir, "b");
	o.reuse_dir = bdir;
	sub(dst, "b", "again.qcow2");
	ck_assert_int_eq(vsm_image_copy(l1, dst, &o, &st), -VSM_EEXISTS);
	ck_assert_int_ne(access(dst, F_OK), 0);
}
END_TEST

struct cancel { int at; int calls; uint64_t last_total; };

static int cancel_cb(uint64_t done, uint64_t total, void *payload)
{
	struct cancel *c = payload;

	c->last_total = total;
	ck_assert_uint_le(done, total);
	/* at 0: the first call; 1: once some data is done; 2: the last call */
	if (c->at == 0 || (c->at == 1 && done > 0) || (c->at == 2 && done == total && c->calls))
		return 1;
	c->calls++;
	return 0;
}

START_TEST(cancel_leaves_nothing)
{
	vsm_image_copy_opts o = VSM_IMAGE_COPY_OPTS_INIT;
	struct cancel c = { _i, 0, 0 };
	char src[PATH_MAX], dst[PATH_MAX], before[4096], now[4096];

	scope("cancel_leaves_nothing", _i);

	make_chain("a", 0);
	sub(src, "a", "top.qcow2");
	sub(dst, "b", "top.qcow2");
	listing("b", before, sizeof(before));
	o.progress = cancel_cb;
	o.payload = &c;
	ck_assert_int_eq(vsm_image_copy(src, dst, &o, NULL), -VSM_ECANCELED);
	ck_assert_int_eq(vsm_error_last()->code, VSM_ECANCELED);
	listing("b", now, sizeof(now));
	ck_assert_str_eq(before, now);
	ck_assert_uint_eq(c.last_total, 18 * CS); /* data read, zero bytes included */
	/* Without the cancel it goes through. */
	o.progress = NULL;
	CT_OK(vsm_image_copy(src, dst, &o, NULL));
	ck_assert_int_eq(qcompare(src, dst), 0);
}
END_TEST

/* A damaged layer is refused with its name, and nothing is created. */
START_TEST(damaged_source_refused)
{
	char src[PATH_MAX], dst[PATH_MAX], l2[PATH_MAX], before[4096], now[4096];
	const vsm_error *e;

	scope("damaged_source_refused", _i);

	make_chain("a", 0);
	sub(src, "a", "top.qcow2");
	sub(l2, "a", "l2.qcow2");
	sub(dst, "b", "top.qcow2");
	if (_i == 0) {
		/* The refcount of the header cluster: 0 while it is in use. */
		uint64_t rt = ct_get_be(l2, 48, 8), rb = ct_get_be(l2, rt, 8);

		ct_put_be(l2, rb, 0, 2);
	} else {
		/* An L1 table offset that is not cluster aligned. */
		ct_put_be(l2, 40, ct_get_be(l2, 40, 8) + 512, 8);
	}
	ck_assert_int_ne(ct_qemu_check(l2), 0);
	listing("b", before, sizeof(before));
	ck_assert_int_eq(vsm_image_copy(src, dst, NULL, NULL), -VSM_ECORRUPT);
	e = vsm_error_last();
	ck_assert_ptr_nonnull(e);
	ck_assert_msg(strstr(e->message, "l2.qcow2") != NULL, "message: %s", e->message);
	listing("b", now, sizeof(now));
	ck_assert_str_eq(before, now);
}
END_TEST

/* The content-ID rule on one image, and QEMU's view of the extension. */
START_TEST(cid_rules)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	char p[PATH_MAX], c1[VSM_IMAGE_CID_STRLEN + 1], c2[VSM_IMAGE_CID_STRLEN + 1];
	vsm_image *img;
	uint8_t buf[512];

	scope("cid_rules", _i);

	sub(p, "a", "one.qcow2");
	co.size = SIZE;
	CT_OK(vsm_image_create(p, &co, 0));
	ck_assert_int_eq(cid_of(p, c1), -VSM_ENOTFOUND);
	CT_OK(vsm_image_open(&img, p, NULL));
	CT_OK(vsm_image_freeze(img, 0));
	CT_OK(vsm_image_cid_get(img, c1));
	CT_OK(vsm_image_freeze(img, 0)); /* keeps the one it has */
	CT_OK(vsm_image_cid_get(img, c2));
	ck_assert_str_eq(c1, c2);
	ck_assert_int_eq(vsm_image_freeze(img, 1), -VSM_EINVAL);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(ct_qemu_check(p), 0);
	ck_assert_int_eq(ct_sh("%s info '%s'", ct_qemu_img(), p), 0);
	/* qemu-io writes keep it (QEMU keeps unknown extensions)... */
	ck_assert_int_eq(ct_sh("%s -c 'write -P 7 0 4k' '%s'", ct_qemu_io(), p), 0);
	CT_OK(cid_of(p, c2));
	ck_assert_str_eq(c1, c2);
	/* ...a write through libvsm removes it, durably. */
	CT_OK(vsm_image_open(&img, p, NULL));
	memset(buf, 9, sizeof(buf));
	CT_OK(vsm_image_write(img, buf, sizeof(buf), 0, 0));
	ck_assert_int_eq(vsm_image_cid_get(img, c2), -VSM_ENOTFOUND);
	CT_OK(vsm_image_close(img));
	ck_assert_int_eq(cid_of(p, c2), -VSM_ENOTFOUND);
	ck_assert_int_eq(ct_qemu_check(p), 0);
	/* Refreezing gives a new one. */
	CT_OK(vsm_image_open(&img, p, NULL));
	CT_OK(vsm_image_freeze(img, 0));
	CT_OK(vsm_image_cid_get(img, c2));
	ck_assert_str_ne(c1, c2);
	CT_OK(vsm_image_close(img));
}
END_TEST

/* Options and stats are checked before anything happens. */
START_TEST(bad_arguments)
{
	vsm_image_copy_opts o = VSM_IMAGE_COPY_OPTS_INIT;
	vsm_image_copy_stats st = VSM_IMAGE_COPY_STATS_INIT;
	char src[PATH_MAX], dst[PATH_MAX], cdir[PATH_MAX], before[4096], now[4096];

	scope("bad_arguments", _i);

	make_chain("a", 0);
	sub(src, "a", "top.qcow2");
	sub(dst, "b", "top.qcow2");
	listing("b", before, sizeof(before));
	o.version = 99;
	ck_assert_int_eq(vsm_image_copy(src, dst, &o, NULL), -VSM_EVERSION);
	o.version = VSM_IMAGE_COPY_OPTS_VERSION;
	o.flags = 4;
	ck_assert_int_eq(vsm_image_copy(src, dst, &o, NULL), -VSM_EINVAL);
	o.flags = 0;
	st.version = 0;
	ck_assert_int_eq(vsm_image_copy(src, dst, &o, &st), -VSM_EVERSION);
	/* A reuse directory that is not the target's. */
	dpath(cdir, "c");
	o.reuse_dir = cdir;
	ck_assert_int_eq(vsm_image_copy(src, dst, &o, NULL), -VSM_EINVAL);
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, "reuse directory"));
	listing("b", now, sizeof(now));
	ck_assert_str_eq(before, now);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cow-copy");
	TCase *tc = tcase_create("copy");

	tcase_add_unchecked_fixture(tc, ct_setup, ct_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, copy_whole_chain);
	tcase_add_test(tc, reuse_lower_two);
	tcase_add_test(tc, reuse_other_name);
	tcase_add_test(tc, other_cid_not_reused);
	tcase_add_test(tc, wrong_chain_below_not_reused);
	tcase_add_test(tc, own_name_taken_other_found);
	tcase_add_test(tc, copy_within_dir);
	tcase_add_test(tc, raw_base);
	tcase_add_loop_test(tc, cancel_leaves_nothing, 0, 3);
	tcase_add_loop_test(tc, damaged_source_refused, 0, 2);
	tcase_add_test(tc, cid_rules);
	tcase_add_test(tc, bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ct_run(suite());
}
