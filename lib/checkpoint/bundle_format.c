/*
 * The bundle file format (doc/checkpoints.md has the layout): reading and
 * writing with a running checksum of every byte and progress reports,
 * and the sections that carry a layer (sparse records, own checksum) or
 * a blob, written on export and read back into a device on import,
 * and the layer digest that ties a section to its manifest entry.
 */
#include <errno.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"
#include "ckpt.h"
#include "cow.h"

int ck_bundle_write(bfile *f, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	ck_sum_add(&f->sum, buf, n);
	f->pos += n;
	while (n) {
		ssize_t w = write(f->fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return vsm_err(VSM_EIO, "bundle '%s': write failed: %s", f->path,
				       strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int ck_bundle_read(bfile *f, void *buf, size_t n)
{
	uint8_t *p = buf;
	size_t want = n;

	while (n) {
		ssize_t r = read(f->fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return vsm_err(VSM_EIO, "bundle '%s': read failed: %s", f->path,
				       strerror(errno));
		if (r == 0)
			return vsm_err(VSM_ECORRUPT, "bundle '%s' is truncated at byte %llu",
				       f->path, (unsigned long long)(f->pos + (want - n)));
		p += r;
		n -= (size_t)r;
	}
	ck_sum_add(&f->sum, buf, want);
	f->pos += want;
	return 0;
}

int ck_bundle_tick(bfile *f, uint64_t n)
{
	int rc;

	f->done += n;
	if (f->progress && (rc = f->progress(f->done, f->total, f->payload)) != 0) {
		if (rc > 0)
			rc = -VSM_EINVAL;
		return vsm_err(-rc, "bundle '%s': cancelled by the progress callback", f->path);
	}
	return 0;
}

/* The layer digest (doc/checkpoints.md): SHA-256 of a 64-byte head —
 * "libvsm-layer-v2" and a NUL, the content ID's 36 characters (zeros
 * without one), u32 format (0 raw, 1 qcow2), u64 virtual size — then the
 * section's data and zero records exactly as the bundle carries them
 * (headers and data), without the end record. Export and import compute
 * it from the same bytes, import while it reads them. The cid is in it so
 * that a digest recorded for a layer says nothing about a layer that got
 * a new cid (a merge) or about other data given the same cid. */
static void digest_begin(struct sha256_ctx *d, const char *cid, int format, uint64_t size)
{
	uint8_t head[64] = "libvsm-layer-v2";

	if (cid && strlen(cid) == 36)
		memcpy(head + 16, cid, 36);
	vsm__put_le32(head + 52, (uint32_t)format);
	vsm__put_le64(head + 56, size);
	sha256_init(d);
	sha256_update(d, sizeof(head), head);
}

static void digest_end(struct sha256_ctx *d, char out[B_DIGEST_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t v[SHA256_DIGEST_SIZE];
	size_t i;

	sha256_digest(d, sizeof(v), v);
	for (i = 0; i < sizeof(v); i++) {
		out[2 * i] = hex[v[i] >> 4];
		out[2 * i + 1] = hex[v[i] & 15];
	}
	out[B_DIGEST_HEX] = '\0';
}

/* Bytes of a layer's records: into its digest, and into the bundle
 * unless this is the dry pass. */
static int emit(bfile *f, struct sha256_ctx *d, bool dry, const void *buf, size_t n)
{
	sha256_update(d, n, buf);
	return dry ? 0 : ck_bundle_write(f, buf, n);
}

static void put_rec(uint8_t h[24], uint32_t kind, uint64_t off, uint64_t len)
{
	memset(h, 0, 24);
	vsm__put_le32(h, kind);
	vsm__put_le64(h + 8, off);
	vsm__put_le64(h + 16, len);
}

static bool zero_buf(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* One layer's section: its own clusters only, sparse. */
int ck_export_layer(bfile *f, vsm_dstore *ds, xlayer *l, bool dry)
{
	bool bottom = l->backing < 0;
	uint64_t off = 0, pnum, size, data = 0;
	uint8_t *buf = malloc(B_CHUNK), h[24], tail[8];
	char digest[B_DIGEST_HEX + 1];
	struct sha256_ctx d;
	vsm_cow *c = NULL;
	ck_sum start;
	int rc;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	if ((rc = ck_cow_open(&c, ds, l->key, l->format, true, true)) < 0) {
		free(buf);
		return rc;
	}
	start = f->sum;
	size = vsm_cow_size(c);
	digest_begin(&d, l->cid, l->format, l->size);
	if (l->empty)
		size = 0;
	while (off < size && rc == 0) {
		vsm_cow_status st;
		uint64_t len = size - off < B_CHUNK ? size - off : B_CHUNK, p;

		if ((rc = vsm_cow_block_status(c, off, len, &pnum, &st)) < 0)
			break;
		if (pnum > len)
			pnum = len;
		if (st.present && st.data) {
			if ((rc = vsm_cow_read(c, buf, (size_t)pnum, off)) < 0)
				break;
			/* Runs of non-zero 64 KiB pieces make one data record;
			 * zero pieces are left out (bottom) or said in a word. */
			for (p = 0; p < pnum && rc == 0;) {
				uint64_t n = pnum - p < 65536 ? pnum - p : 65536, run = 0;
				bool z = zero_buf(buf + p, (size_t)n);

				while (p + run < pnum) {
					uint64_t k = pnum - p - run < 65536 ? pnum - p - run : 65536;

					if (zero_buf(buf + p + run, (size_t)k) != z)
						break;
					run += k;
				}
				if (z && !bottom) {
					put_rec(h, REC_ZERO, off + p, run);
					rc = emit(f, &d, dry, h, sizeof(h));
				} else if (!z) {
					put_rec(h, REC_DATA, off + p, run);
					if ((rc = emit(f, &d, dry, h, sizeof(h))) == 0 &&
					    (rc = emit(f, &d, dry, buf + p, (size_t)run)) == 0)
						data += run;
				}
				p += run;
			}
			if (rc == 0 && !dry)
				rc = ck_bundle_tick(f, pnum);
		} else if (st.present && !bottom) {
			put_rec(h, REC_ZERO, off, pnum);
			rc = emit(f, &d, dry, h, sizeof(h));
		}
		off += pnum;
	}
	vsm_cow_close(c);
	free(buf);
	if (rc < 0)
		return rc;
	digest_end(&d, digest);
	if (dry) {
		memcpy(l->digest, digest, sizeof(digest));
		return 0;
	}
	/* The manifest promised the dry pass's digest. */
	if (strcmp(digest, l->digest))
		return vsm_err(VSM_ESTATE, "bundle '%s': layer '%s' changed while it was "
			       "exported", f->path, l->key);
	/* The end record carries the section's own checksum. */
	(void)start;
	put_rec(h, REC_END, data, 0);
	if ((rc = ck_bundle_write(f, h, sizeof(h))) < 0)
		return rc;
	vsm__put_le64(tail, ck_sum_value(&f->sum));
	return ck_bundle_write(f, tail, sizeof(tail));
}

int ck_export_blob(bfile *f, vsm_dstore *ds, const char *key, uint64_t size)
{
	uint8_t *buf = malloc(B_CHUNK);
	vsm_bdev *b = NULL;
	uint64_t off = 0;
	int rc;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	if ((rc = vsm__ds_open_device(ds, key, VSM_BDEV_RDONLY, &b)) < 0) {
		free(buf);
		return rc;
	}
	while (off < size && rc == 0) {
		size_t n = size - off < B_CHUNK ? (size_t)(size - off) : B_CHUNK;

		if ((rc = vsm_bdev_read(b, buf, n, off)) == 0 &&
		    (rc = ck_bundle_write(f, buf, n)) == 0)
			rc = ck_bundle_tick(f, n);
		off += n;
	}
	vsm_bdev_close(b);
	free(buf);
	return rc;
}

int ck_import_layer(bfile *f, vsm_dstore *ds, ilayer *l, bool write, uint64_t *written)
{
	uint8_t h[24], tail[8], *buf = malloc(B_CHUNK);
	struct sha256_ctx d;
	vsm_cow *c = NULL;
	uint64_t data = 0;
	int rc = 0;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	if (write && (rc = ck_cow_open(&c, ds, l->key, l->format, false, false)) < 0) {
		free(buf);
		return rc;
	}
	digest_begin(&d, l->cid, l->format, l->size);
	for (;;) {
		uint32_t kind;
		uint64_t off, len;

		if ((rc = ck_bundle_read(f, h, sizeof(h))) < 0)
			break;
		kind = vsm__get_le32(h);
		off = vsm__get_le64(h + 8);
		len = vsm__get_le64(h + 16);
		if (kind == REC_END) {
			ck_sum at = f->sum;

			if ((rc = ck_bundle_read(f, tail, sizeof(tail))) < 0)
				break;
			if (vsm__get_le64(tail) != ck_sum_value(&at) || off != data || len)
				rc = vsm_err(VSM_ECORRUPT, "bundle '%s': a layer section fails its "
					     "checksum", f->path);
			digest_end(&d, l->got);
			break;
		}
		if ((kind != REC_DATA && kind != REC_ZERO) || off > l->size || len > l->size - off ||
		    (kind == REC_DATA && len > B_CHUNK) || len == 0) {
			rc = vsm_err(VSM_ECORRUPT, "bundle '%s': a layer section has a bad record",
				     f->path);
			break;
		}
		sha256_update(&d, sizeof(h), h);
		if (kind == REC_ZERO) {
			if (write)
				rc = vsm_cow_write_zeroes(c, off, len, false);
		} else {
			if ((rc = ck_bundle_read(f, buf, (size_t)len)) < 0)
				break;
			sha256_update(&d, (size_t)len, buf);
			data += len;
			if (write) {
				rc = vsm_cow_write(c, buf, (size_t)len, off);
				*written += len;
			}
			if (rc == 0)
				rc = ck_bundle_tick(f, len);
		}
		if (rc < 0)
			break;
	}
	free(buf);
	if (c) {
		if (rc == 0)
			rc = vsm_cow_close(c);
		else
			vsm_cow_close(c);
	}
	return rc;
}

int ck_import_blob(bfile *f, vsm_dstore *ds, const char *key, uint64_t size,
		   uint64_t *sum_out, uint64_t *written)
{
	uint8_t *buf = malloc(B_CHUNK);
	vsm_bdev *b = NULL;
	uint64_t off = 0;
	ck_sum sum;
	int rc;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	if ((rc = vsm__ds_open_device(ds, key, 0, &b)) < 0) {
		free(buf);
		return rc;
	}
	ck_sum_init(&sum);
	while (off < size && rc == 0) {
		size_t n = size - off < B_CHUNK ? (size_t)(size - off) : B_CHUNK;

		if ((rc = ck_bundle_read(f, buf, n)) == 0 &&
		    (rc = vsm_bdev_write(b, buf, n, off)) == 0)
			rc = ck_bundle_tick(f, n);
		ck_sum_add(&sum, buf, n);
		*written += n;
		off += n;
	}
	if (rc == 0)
		rc = vsm_bdev_flush(b);
	vsm_bdev_close(b);
	free(buf);
	*sum_out = ck_sum_value(&sum);
	return rc;
}
