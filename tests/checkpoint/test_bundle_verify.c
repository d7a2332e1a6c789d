/*
 * Suite "bundle-verify": import checks what a bundle means, not only its
 * checksums. Bad bundles are crafted by editing a real export and sealing
 * it again (the helper below knows the format of doc/checkpoints.md), so
 * every refusal here is one the checksums alone would not give.
 */
#include <fcntl.h>
#include <json-c/json.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"
#include <vsm/checkpoint.h>
#include <vsm/image.h>

#define MiB (1u << 20)

static char *state, *dsdir, *ds2dir, *refdir;
static vsm_ctx *ctx;

static void setup(void)
{
	char *u;

	state = tu_dir("state");
	dsdir = tu_dir("ds");
	ds2dir = tu_dir("ds2");
	refdir = tu_dir("ref");
	ctx = tu_ctx(state);
	u = tu_uri(dsdir);
	ck_vsm(vsm_datastore_add(ctx, "ds1", u, 0));
	free(u);
	u = tu_uri(ds2dir);
	ck_vsm(vsm_datastore_add(ctx, "ds2", u, 0));
	free(u);
}

static void teardown(void)
{
	vsm_ctx_free(ctx);
	ctx = NULL;
	free(state);
	free(dsdir);
	free(ds2dir);
	free(refdir);
}

static char *file_in(const char *name)
{
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/%s", refdir, name) > 0);
	return p;
}

/* A container of @n qcow2 devices d0.. of @size on ds1. */
static vsm_container *mk(const char *name, size_t n, uint64_t size)
{
	vsm_device_spec specs[2];
	const vsm_device_spec *ptrs[2];
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	static const char *names[] = { "d0", "d1" };
	vsm_container *c = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		vsm_device_spec d = VSM_DEVICE_SPEC_INIT;

		d.name = names[i];
		d.size = size;
		d.format = VSM_FORMAT_QCOW2;
		specs[i] = d;
		ptrs[i] = &specs[i];
	}
	opts.devices = ptrs;
	opts.n_devices = n;
	opts.flags = VSM_CONTAINER_CREATE_THIN;
	ck_vsm(vsm_container_create(&c, ctx, "ds1", name, &opts));
	return c;
}

/* Write 64 KiB of pattern @seed at @off of device @dev, and into @ref. */
static void put(const char *cname, const char *dev, uint64_t off, unsigned seed, uint8_t *ref)
{
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img = NULL;
	uint8_t buf[65536];
	size_t i;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(seed * 37 + i * 7 + (i >> 8) + 1);
	o.flags = VSM_IMAGE_OPEN_RDWR;
	ck_vsm(vsm_image_open_device(&img, ctx, "ds1", cname, dev, &o));
	ck_vsm(vsm_image_write(img, buf, sizeof(buf), off, 0));
	ck_vsm(vsm_image_close(img));
	memcpy(ref + off, buf, sizeof(buf));
}

/* Device @dev of @cname on @ds reads exactly @ref (@size bytes). */
static void reads_as(const char *ds, const char *cname, const char *dev, const uint8_t *ref,
		     uint64_t size)
{
	vsm_image *img = NULL;
	uint8_t *buf = malloc(size);
	uint64_t i;

	ck_assert(buf);
	ck_vsm(vsm_image_open_device(&img, ctx, ds, cname, dev, NULL));
	ck_vsm(vsm_image_read(img, buf, (size_t)size, 0));
	ck_vsm(vsm_image_close(img));
	for (i = 0; i < size; i++)
		if (buf[i] != ref[i])
			break;
	ck_assert_msg(i == size, "%s/%s/%s differs from what was written at byte %llu", ds, cname,
		      dev, (unsigned long long)i);
	free(buf);
}

static void ckpt(vsm_container *c, const char *name)
{
	ck_vsm(vsm_checkpoint_create(NULL, c, name, NULL));
}

/* --- the bundle, taken apart and sealed again --- */

typedef struct {
	json_object *m;
	size_t nl;
	uint8_t **sec;      /* each layer's records, without the end record */
	size_t *sec_len;
	uint8_t *blobs;
	size_t blobs_len;
} bun;

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put32(uint8_t *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *b;
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	b = malloc((size_t)st.st_size);
	ck_assert(b);
	ck_assert_int_eq(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static bun *bun_load(const char *path)
{
	size_t len, pos, i, nb;
	uint8_t *f = slurp(path, &len);
	bun *b = calloc(1, sizeof(*b));
	uint64_t mlen = le64(f + 16);
	char *js = strndup((char *)f + 64, (size_t)mlen);
	json_object *jl, *jb;

	ck_assert(b && js);
	b->m = json_tokener_parse(js);
	free(js);
	ck_assert(b->m);
	ck_assert(json_object_object_get_ex(b->m, "layers", &jl));
	b->nl = json_object_array_length(jl);
	b->sec = calloc(b->nl + 1, sizeof(*b->sec));
	b->sec_len = calloc(b->nl + 1, sizeof(*b->sec_len));
	pos = 64 + (size_t)mlen;
	for (i = 0; i < b->nl; i++) {
		size_t start = pos;

		for (;;) {
			uint32_t kind = f[pos] | (uint32_t)f[pos + 1] << 8;

			if (kind == 3)
				break;
			pos += 24 + (kind == 1 ? (size_t)le64(f + pos + 16) : 0);
		}
		b->sec_len[i] = pos - start;
		b->sec[i] = malloc(b->sec_len[i] + 1);
		memcpy(b->sec[i], f + start, b->sec_len[i]);
		pos += 24 + 8;
	}
	ck_assert(json_object_object_get_ex(b->m, "blobs", &jb));
	nb = json_object_array_length(jb);
	for (i = 0; i < nb; i++)
		b->blobs_len += (size_t)json_object_get_uint64(json_object_array_get_idx(jb, i));
	b->blobs = malloc(b->blobs_len + 1);
	memcpy(b->blobs, f + pos, b->blobs_len);
	ck_assert_uint_eq(pos + b->blobs_len + 24, len);
	free(f);
	return b;
}

static void bun_free(bun *b)
{
	size_t i;

	for (i = 0; i < b->nl; i++)
		free(b->sec[i]);
	free(b->sec);
	free(b->sec_len);
	free(b->blobs);
	json_object_put(b->m);
	free(b);
}

static json_object *layer(bun *b, size_t i)
{
	json_object *jl;

	ck_assert(json_object_object_get_ex(b->m, "layers", &jl));
	return json_object_array_get_idx(jl, i);
}

static json_object *device(bun *b, size_t i)
{
	json_object *jd;

	ck_assert(json_object_object_get_ex(b->m, "devices", &jd));
	return json_object_array_get_idx(jd, i);
}

static const char *sfield(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : NULL;
}

/* The layer digest as doc/checkpoints.md defines it (format version 2). */
static void digest_hex(bun *b, size_t i, char out[65])
{
	struct sha256_ctx s;
	uint8_t head[64] = "libvsm-layer-v2", d[SHA256_DIGEST_SIZE];
	json_object *e = layer(b, i), *v;
	const char *cid = sfield(e, "cid"), *fmt = sfield(e, "format");
	int k;

	if (cid)
		memcpy(head + 16, cid, 36);
	put32(head + 52, !strcmp(fmt, "qcow2") ? VSM_FORMAT_QCOW2 : VSM_FORMAT_RAW);
	ck_assert(json_object_object_get_ex(e, "size", &v));
	put64(head + 56, json_object_get_uint64(v));
	sha256_init(&s);
	sha256_update(&s, sizeof(head), head);
	sha256_update(&s, b->sec_len[i], b->sec[i]);
	sha256_digest(&s, sizeof(d), d);
	for (k = 0; k < 32; k++)
		snprintf(out + 2 * k, 3, "%02x", d[k]);
}

/* Recompute the digests the manifest carries (an attacker can). */
static void bun_redigest(bun *b)
{
	size_t i;

	for (i = 0; i < b->nl; i++) {
		char hex[65];

		if (!json_object_object_get_ex(layer(b, i), "digest", NULL))
			continue;
		digest_hex(b, i, hex);
		json_object_object_add(layer(b, i), "digest", json_object_new_string(hex));
	}
}

typedef struct {
	uLong crc, adler;
	uint64_t pos;
	FILE *fp;
} sealer;

static void sw(sealer *s, const void *p, size_t n)
{
	s->crc = crc32(s->crc, p, (uInt)n);
	s->adler = adler32(s->adler, p, (uInt)n);
	s->pos += n;
	ck_assert_uint_eq(fwrite(p, 1, n, s->fp), n);
}

/* Write @b to @path with every checksum right for what it now holds. */
static void bun_save(bun *b, const char *path)
{
	const char *js = json_object_to_json_string_ext(b->m, JSON_C_TO_STRING_PLAIN);
	json_object *v;
	sealer s = { crc32(0, Z_NULL, 0), adler32(0, Z_NULL, 0), 0, fopen(path, "w") };
	uint8_t hdr[64] = "VSMBNDL1", rec[24], tail[24];
	size_t i;

	ck_assert(s.fp);
	ck_assert(json_object_object_get_ex(b->m, "version", &v));
	put32(hdr + 8, (uint32_t)json_object_get_int(v));
	put32(hdr + 12, 64);
	put64(hdr + 16, strlen(js));
	put64(hdr + 24, (uint64_t)crc32(crc32(0, Z_NULL, 0), (const Bytef *)js,
					(uInt)strlen(js)) << 32 |
		   adler32(adler32(0, Z_NULL, 0), (const Bytef *)js, (uInt)strlen(js)));
	put32(hdr + 56, (uint32_t)crc32(crc32(0, Z_NULL, 0), hdr, 56));
	sw(&s, hdr, sizeof(hdr));
	sw(&s, js, strlen(js));
	for (i = 0; i < b->nl; i++) {
		size_t p = 0;
		uint64_t data = 0;

		while (p < b->sec_len[i]) {
			uint32_t kind = b->sec[i][p];
			uint64_t n = le64(b->sec[i] + p + 16);

			data += kind == 1 ? n : 0;
			p += 24 + (kind == 1 ? (size_t)n : 0);
		}
		sw(&s, b->sec[i], b->sec_len[i]);
		memset(rec, 0, sizeof(rec));
		put32(rec, 3);
		put64(rec + 8, data);
		sw(&s, rec, sizeof(rec));
		put64(tail, (uint64_t)s.crc << 32 | s.adler);
		sw(&s, tail, 8);
	}
	sw(&s, b->blobs, b->blobs_len);
	memcpy(tail, "VSMBEND1", 8);
	put64(tail + 8, s.pos);
	put64(tail + 16, (uint64_t)s.crc << 32 | s.adler);
	sw(&s, tail, sizeof(tail));
	ck_assert_int_eq(fclose(s.fp), 0);
}

/* The import of @path into ds2 is refused with @code naming @what, and
 * leaves nothing on ds2. */
static void refused(const char *path, int code, const char *what)
{
	int files = tu_count_files(ds2dir);

	ck_vsm_refused(vsm_bundle_import(NULL, ctx, path, "ds2", "x", NULL), code, what);
	ck_assert_int_eq(tu_count_files(ds2dir), files);
}

/* --- tests --- */

/* vm: d0 with data in c1, more in c2, more in the top. */
static vsm_container *three_states(uint8_t *c1, uint8_t *c2, uint64_t size)
{
	vsm_container *c = mk("vm", 1, size);

	memset(c1, 0, size);
	put("vm", "d0", 0, 1, c1);
	put("vm", "d0", MiB, 2, c1);
	ckpt(c, "c1");
	memcpy(c2, c1, size);
	put("vm", "d0", MiB, 3, c2);
	put("vm", "d0", 2 * MiB, 4, c2);
	ckpt(c, "c2");
	return c;
}

START_TEST(genuine_reimport_dedups)
{
	uint64_t size = 4 * MiB;
	uint8_t *c1 = malloc(size), *c2 = malloc(size);
	vsm_container *c = three_states(c1, c2, size);
	char *f = file_in("c2.bundle"), *g = file_in("resealed.bundle");
	vsm_bundle_opts bo = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats st;
	bun *b;

	bo.stats = &st;
	ck_vsm(vsm_bundle_export(c, "c2", f, NULL));
	ck_vsm(vsm_bundle_import(NULL, ctx, f, "ds2", "a", &bo));
	ck_assert_uint_eq(st.layers, 2);
	ck_assert_uint_eq(st.layers_skipped, 0);
	/* The digests the import recorded are read back from the datastore. */
	vsm_container_free(c);
	c = NULL;
	vsm_ctx_free(ctx);
	ctx = tu_ctx(state);
	/* The helper's own seal is accepted: what the other tests refuse is
	 * the edit, not the sealing. */
	b = bun_load(f);
	bun_save(b, g);
	bun_free(b);
	ck_vsm(vsm_bundle_import(NULL, ctx, g, "ds2", "b", &bo));
	ck_assert_uint_eq(st.layers_skipped, 2);
	ck_assert_uint_eq(st.bytes_written, 0);
	reads_as("ds2", "a", "d0", c2, size);
	reads_as("ds2", "b", "d0", c2, size);
	vsm_container_free(c);
	free(c1);
	free(c2);
	free(f);
	free(g);
}
END_TEST

START_TEST(old_format_copies)
{
	uint64_t size = 4 * MiB;
	uint8_t *c1 = malloc(size), *c2 = malloc(size);
	vsm_container *c = three_states(c1, c2, size);
	char *f = file_in("c2.bundle"), *g = file_in("v1.bundle");
	vsm_bundle_opts bo = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats st;
	bun *b;
	size_t i;

	bo.stats = &st;
	ck_vsm(vsm_bundle_export(c, "c2", f, NULL));
	b = bun_load(f);
	json_object_object_add(b->m, "version", json_object_new_int(1));
	for (i = 0; i < b->nl; i++)
		json_object_object_del(layer(b, i), "digest");
	bun_save(b, g);
	bun_free(b);
	ck_vsm(vsm_bundle_import(NULL, ctx, g, "ds2", "a", &bo));
	ck_assert_uint_eq(st.layers_skipped, 0);
	/* No digest: nothing is reused, not even what the first import made. */
	ck_vsm(vsm_bundle_import(NULL, ctx, g, "ds2", "b", &bo));
	ck_assert_uint_eq(st.layers_skipped, 0);
	reads_as("ds2", "a", "d0", c2, size);
	reads_as("ds2", "b", "d0", c2, size);
	vsm_container_free(c);
	free(c1);
	free(c2);
	free(f);
	free(g);
}
END_TEST

START_TEST(data_not_matching_digest)
{
	uint64_t size = 4 * MiB;
	uint8_t *c1 = malloc(size), *c2 = malloc(size);
	vsm_container *c = three_states(c1, c2, size);
	char *f = file_in("c2.bundle"), *g = file_in("bad.bundle");
	json_object *v;
	bun *b;
	char *hex;

	ck_vsm(vsm_bundle_export(c, "c2", f, NULL));
	/* One data byte of layer 1 changed, every checksum sealed again. */
	b = bun_load(f);
	ck_assert_uint_gt(b->sec_len[1], 24);
	ck_assert_int_eq(b->sec[1][0], 1);
	b->sec[1][24 + 100] ^= 0x55;
	bun_save(b, g);
	bun_free(b);
	refused(g, VSM_ECORRUPT, "layer 1");
	/* The manifest's digest edited, sealed again. */
	b = bun_load(f);
	ck_assert(json_object_object_get_ex(layer(b, 0), "digest", &v));
	hex = strdup(json_object_get_string(v));
	hex[0] = hex[0] == '0' ? '1' : '0';
	json_object_object_add(layer(b, 0), "digest", json_object_new_string(hex));
	free(hex);
	bun_save(b, g);
	bun_free(b);
	refused(g, VSM_ECORRUPT, "layer 0");
	/* A digest that is not one. */
	b = bun_load(f);
	json_object_object_add(layer(b, 0), "digest", json_object_new_string("xyz"));
	bun_save(b, g);
	bun_free(b);
	refused(g, VSM_ECORRUPT, "digest");
	ck_vsm(vsm_bundle_import(NULL, ctx, f, "ds2", "fine", NULL));
	vsm_container_free(c);
	free(c1);
	free(c2);
	free(f);
	free(g);
}
END_TEST

/* A bundle that gives the genuine layer's content ID to other data,
 * imported first, does not capture the genuine import. */
START_TEST(planted_cid_is_not_reused)
{
	uint64_t size = 4 * MiB;
	uint8_t *good = calloc(1, size), *evil = calloc(1, size);
	vsm_container *g = mk("good", 1, size), *e = mk("evil", 1, size);
	char *fg = file_in("good.bundle"), *fe = file_in("evil.bundle"),
	     *fp = file_in("planted.bundle");
	vsm_bundle_opts bo = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats st;
	bun *bg, *be;

	bo.stats = &st;
	put("good", "d0", 0, 10, good);
	put("good", "d0", MiB, 11, good);
	put("evil", "d0", 0, 20, evil);
	put("evil", "d0", MiB, 21, evil);
	ckpt(g, "c1");
	ckpt(e, "c1");
	ck_vsm(vsm_bundle_export(g, "c1", fg, NULL));
	ck_vsm(vsm_bundle_export(e, "c1", fe, NULL));
	bg = bun_load(fg);
	be = bun_load(fe);
	ck_assert_uint_eq(bg->nl, 1);
	ck_assert_uint_eq(be->nl, 1);
	json_object_object_add(layer(be, 0), "cid",
			       json_object_new_string(sfield(layer(bg, 0), "cid")));
	bun_redigest(be);
	bun_save(be, fp);
	ck_vsm(vsm_bundle_import(NULL, ctx, fp, "ds2", "planted", &bo));
	reads_as("ds2", "planted", "d0", evil, size);
	ck_vsm(vsm_bundle_import(NULL, ctx, fg, "ds2", "genuine", &bo));
	reads_as("ds2", "genuine", "d0", good, size);
	ck_assert_uint_eq(st.layers_skipped, 0);
	/* A second genuine import reuses the genuine copy, not the plant. */
	ck_vsm(vsm_bundle_import(NULL, ctx, fg, "ds2", "again", &bo));
	ck_assert_uint_eq(st.layers_skipped, 1);
	reads_as("ds2", "again", "d0", good, size);
	bun_free(bg);
	bun_free(be);
	vsm_container_free(g);
	vsm_container_free(e);
	free(good);
	free(evil);
	free(fg);
	free(fe);
	free(fp);
}
END_TEST

/* A layer with the genuine ID and data but no backing, imported first:
 * the genuine import must not reuse it and lose the base's data. */
START_TEST(truncated_chain_is_not_reused)
{
	uint64_t size = 4 * MiB;
	uint8_t *c1 = malloc(size), *c2 = malloc(size);
	vsm_container *c = three_states(c1, c2, size);
	char *f = file_in("c2.bundle"), *p = file_in("cut.bundle");
	vsm_bundle_opts bo = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats st;
	bun *b;

	bo.stats = &st;
	ck_vsm(vsm_bundle_export(c, "c2", f, NULL));
	b = bun_load(f);
	ck_assert_uint_eq(b->nl, 2);
	json_object_object_add(layer(b, 1), "backing", NULL);
	bun_redigest(b);
	bun_save(b, p);
	bun_free(b);
	ck_vsm(vsm_bundle_import(NULL, ctx, p, "ds2", "cut", &bo));
	ck_vsm(vsm_bundle_import(NULL, ctx, f, "ds2", "whole", &bo));
	/* The base is the same layer and may be reused; c2's layer is not. */
	reads_as("ds2", "whole", "d0", c2, size);
	ck_assert_uint_le(st.layers_skipped, 1);
	vsm_container_free(c);
	free(c1);
	free(c2);
	free(f);
	free(p);
}
END_TEST

START_TEST(devices_share_a_top)
{
	vsm_container *c = mk("vm", 2, 4 * MiB);
	char *f = file_in("vm.bundle"), *g = file_in("bad.bundle");
	json_object *v;
	bun *b;
	int t0, t1;

	ck_vsm(vsm_bundle_export(c, NULL, f, NULL));
	b = bun_load(f);
	ck_assert(json_object_object_get_ex(device(b, 0), "top", &v));
	t0 = json_object_get_int(v);
	ck_assert(json_object_object_get_ex(device(b, 1), "top", &v));
	t1 = json_object_get_int(v);
	json_object_object_add(device(b, 1), "top", json_object_new_int(t0));
	bun_save(b, g);
	bun_free(b);
	refused(g, VSM_ECORRUPT, "top");
	/* A writable top under another layer. */
	unlink(g);
	b = bun_load(f);
	json_object_object_add(layer(b, (size_t)(t0 > t1 ? t0 : t1)), "backing",
			       json_object_new_int(t0 < t1 ? t0 : t1));
	bun_redigest(b);
	bun_save(b, g);
	bun_free(b);
	refused(g, VSM_ECORRUPT, "writable");
	ck_vsm(vsm_bundle_import(NULL, ctx, f, "ds2", "fine", NULL));
	vsm_container_free(c);
	free(f);
	free(g);
}
END_TEST

START_TEST(device_size_beyond_its_layer)
{
	vsm_container *c = mk("vm", 1, MiB);
	char *f = file_in("vm.bundle"), *g = file_in("bad.bundle");
	bun *b;

	ck_vsm(vsm_bundle_export(c, NULL, f, NULL));
	b = bun_load(f);
	json_object_object_add(device(b, 0), "size",
			       json_object_new_uint64(UINT64_C(1) << 63));
	bun_save(b, g);
	bun_free(b);
	refused(g, VSM_ECORRUPT, "size");
	unlink(g);
	b = bun_load(f);
	json_object_object_add(device(b, 0), "size", json_object_new_uint64(2 * MiB));
	bun_save(b, g);
	bun_free(b);
	refused(g, VSM_ECORRUPT, "size");
	ck_vsm(vsm_bundle_import(NULL, ctx, f, "ds2", "fine", NULL));
	vsm_container_free(c);
	free(f);
	free(g);
}
END_TEST

static json_object *checkpoint(bun *b, size_t i)
{
	json_object *jc;

	ck_assert(json_object_object_get_ex(b->m, "checkpoints", &jc));
	return json_object_array_get_idx(jc, i);
}

/* Checkpoint references that name nothing, loop, or share a blob. */
START_TEST(checkpoint_references)
{
	uint64_t size = 4 * MiB;
	uint8_t *c1 = malloc(size), *c2 = malloc(size);
	vsm_container *c = three_states(c1, c2, size);
	char *f = file_in("vm.bundle"), *g = file_in("bad.bundle");
	json_object *v;
	bun *b;

	ck_vsm(vsm_bundle_export(c, NULL, f, NULL));
	b = bun_load(f);
	json_object_object_add(b->m, "current", json_object_new_string("nope"));
	bun_save(b, g);
	bun_free(b);
	refused(g, VSM_ECORRUPT, "current checkpoint 'nope'");
	b = bun_load(f);
	json_object_object_add(checkpoint(b, 1), "parent", json_object_new_string("nope"));
	bun_save(b, g);
	bun_free(b);
	refused(g, VSM_ECORRUPT, "parent 'nope'");
	b = bun_load(f);
	json_object_object_add(checkpoint(b, 0), "parent", json_object_new_string("c2"));
	bun_save(b, g);
	bun_free(b);
	refused(g, VSM_ECORRUPT, "cycle");
	b = bun_load(f);
	ck_assert(json_object_object_get_ex(b->m, "state_area", &v) && v);
	json_object_object_add(checkpoint(b, 0), "state",
			       json_object_new_int(json_object_get_int(v)));
	json_object_object_add(checkpoint(b, 0), "state_sum",
			       json_object_new_string("0000000100000001"));
	bun_save(b, g);
	bun_free(b);
	refused(g, VSM_ECORRUPT, "blob");
	ck_vsm(vsm_bundle_import(NULL, ctx, f, "ds2", "fine", NULL));
	reads_as("ds2", "fine", "d0", c2, size);
	vsm_container_free(c);
	free(c1);
	free(c2);
	free(f);
	free(g);
}
END_TEST

/* A golden image "gold" made of @ref (@size bytes) on datastore @ds. */
static void golden(const char *ds, const uint8_t *ref, uint64_t size)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	vsm_image *img = NULL;
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/gold-%s.qcow2", refdir, ds) > 0);
	co.size = size;
	ck_vsm(vsm_image_create(p, &co, 0));
	ck_vsm(vsm_image_open(&img, p, NULL));
	ck_vsm(vsm_image_write(img, ref, (size_t)size, 0, 0));
	ck_vsm(vsm_image_close(img));
	ck_vsm(vsm_image_import(ctx, ds, "gold", p, NULL, 0));
	free(p);
}

/* A container on a golden image, exported and imported onto a datastore
 * with the same golden image, relinks to it; a bundle whose golden layer
 * was edited (digests and checksums sealed again) no longer hashes to its
 * content-derived ID and is refused. */
START_TEST(golden_layer_relinked_or_refused)
{
	uint64_t size = 4 * MiB;
	uint8_t *base = calloc(1, size), *ref;
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *ptrs[1] = { &d };
	vsm_bundle_opts bo = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats st;
	vsm_container *c = NULL, *in = NULL;
	vsm_layer_info *l = NULL;
	char *f = file_in("golden.bundle"), *g = file_in("golden-edited.bundle");
	size_t i, n = 0;
	bun *b;

	for (i = 0; i < 3 * MiB; i++)
		base[i] = (uint8_t)(i * 13 + (i >> 12));
	golden("ds1", base, size);
	golden("ds2", base, size);
	ref = malloc(size);
	memcpy(ref, base, size);
	d.name = "d0";
	d.format = VSM_FORMAT_QCOW2;
	d.base = "gold";
	opts.devices = ptrs;
	opts.n_devices = 1;
	opts.flags = VSM_CONTAINER_CREATE_THIN;
	ck_vsm(vsm_container_create(&c, ctx, "ds1", "vm", &opts));
	put("vm", "d0", MiB, 5, ref);
	ckpt(c, "c1");
	ck_vsm(vsm_bundle_export(c, "c1", f, NULL));

	bo.stats = &st;
	ck_vsm(vsm_bundle_import(&in, ctx, f, "ds2", "a", &bo));
	ck_assert_uint_eq(st.layers, 2);
	ck_assert_uint_eq(st.layers_skipped, 1);
	ck_assert_uint_lt(st.bytes_written, MiB);
	reads_as("ds2", "a", "d0", ref, size);
	ck_vsm(vsm_device_chain(&l, &n, in, "d0", 0));
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(l[2].key, "gold");
	ck_assert(l[2].golden && l[2].cid && !l[0].cid && l[0].writable);
	ck_assert_str_eq(l[1].checkpoint, "c1");
	vsm_layer_info_list_free(l, n);
	vsm_container_free(in);

	b = bun_load(f);
	ck_assert_uint_eq(b->nl, 2);
	ck_assert(sfield(layer(b, 0), "golden") && !strcmp(sfield(layer(b, 0), "golden"), "gold"));
	ck_assert_int_eq(b->sec[0][0], 1);
	b->sec[0][24 + 100] ^= 0x55;
	bun_redigest(b);
	bun_save(b, g);
	bun_free(b);
	refused(g, VSM_ECORRUPT, "content-derived");

	vsm_container_free(c);
	free(base);
	free(ref);
	free(f);
	free(g);
}
END_TEST

/* vsm_checkpoint_clone_to: to another datastore, the chain is copied
 * (nothing to reuse on an empty ds2) and reads the same; bad settings
 * are refused before anything is made. */
START_TEST(clone_to_other_datastore)
{
	uint64_t size = 4 * MiB;
	uint8_t *c1 = malloc(size), *c2 = malloc(size);
	vsm_container *c = three_states(c1, c2, size), *k = NULL;
	vsm_clone_opts o = VSM_CLONE_OPTS_INIT;
	vsm_clone_stats st;
	int files = tu_count_files(ds2dir);

	o.datastore = "ds2";
	o.flags = VSM_CLONE_FULL;
	ck_vsm_refused(vsm_checkpoint_clone_to(&k, c, "c2", "k", &o), VSM_EINVAL,
		       "same datastore");
	o.flags = 0;
	o.version = 0;
	ck_vsm_refused(vsm_checkpoint_clone_to(&k, c, "c2", "k", &o), VSM_EVERSION, "version");
	o.version = VSM_CLONE_OPTS_VERSION;
	ck_vsm_refused(vsm_checkpoint_clone_to(&k, c, "nope", "k", &o), VSM_ENOTFOUND, "nope");
	ck_assert_int_eq(tu_count_files(ds2dir), files);
	o.stats = &st;
	ck_vsm(vsm_checkpoint_clone_to(&k, c, "c2", "k", &o));
	ck_assert_str_eq(vsm_container_datastore(k), "ds2");
	ck_assert_uint_eq(st.layers_copied, 2);
	ck_assert_uint_eq(st.layers_reused, 0);
	ck_assert_uint_ge(st.bytes_copied, 3 * 65536);
	reads_as("ds2", "k", "d0", c2, size);
	/* Again: both layers are on ds2 now, with their digests. */
	vsm_container_free(k);
	k = NULL;
	ck_vsm(vsm_checkpoint_clone_to(&k, c, "c2", "k2", &o));
	ck_assert_uint_eq(st.layers_copied, 0);
	ck_assert_uint_eq(st.layers_reused, 2);
	reads_as("ds2", "k2", "d0", c2, size);
	vsm_container_free(k);
	vsm_container_free(c);
	free(c1);
	free(c2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bundle-verify");
	TCase *t = tcase_create("verify");

	tcase_add_unchecked_fixture(t, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, genuine_reimport_dedups);
	tcase_add_test(t, old_format_copies);
	tcase_add_test(t, data_not_matching_digest);
	tcase_add_test(t, planted_cid_is_not_reused);
	tcase_add_test(t, truncated_chain_is_not_reused);
	tcase_add_test(t, devices_share_a_top);
	tcase_add_test(t, device_size_beyond_its_layer);
	tcase_add_test(t, checkpoint_references);
	tcase_add_test(t, golden_layer_relinked_or_refused);
	tcase_add_test(t, clone_to_other_datastore);
	suite_add_tcase(s, t);
	return tu_run(s);
}
