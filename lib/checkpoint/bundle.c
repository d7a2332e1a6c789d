/*
 * Bundles: a container or one checkpoint as a single self-describing
 * file (doc/checkpoints.md has the layout), and loading one into a
 * datastore. Import is one journalled workflow whose only commit point
 * is the record write, so a bad bundle or a crash leaves nothing behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "cow.h"
#include "devimage.h"
#include "vsm/checkpoint.h"

#define B_MAGIC "VSMBNDL1"
#define B_END "VSMBEND1"
#define B_VERSION 1
#define B_HDR 64
#define B_MANIFEST_MAX (64u << 20)
#define B_CHUNK (1u << 20)
#define REC_DATA 1
#define REC_ZERO 2
#define REC_END 3
#define DEFAULT_STATE_SIZE (4u << 20)

/* --- the file, with a running checksum of every byte --- */

typedef struct {
	int fd;
	const char *path;
	ck_sum sum;     /* of every byte so far */
	uint64_t pos;
	vsm_progress_fn progress;
	void *payload;
	uint64_t done, total;
} bfile;

static int b_write(bfile *f, const void *buf, size_t n)
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

static int b_read(bfile *f, void *buf, size_t n)
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

static int tick(bfile *f, uint64_t n)
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

static void put_rec(uint8_t h[24], uint32_t kind, uint64_t off, uint64_t len)
{
	memset(h, 0, 24);
	vsm__put_le32(h, kind);
	vsm__put_le64(h + 8, off);
	vsm__put_le64(h + 16, len);
}

/* --- export --- */

typedef struct {
	char *key;
	int format;
	int backing;   /* index, or -1 */
	bool top;
	char *cid;     /* may be NULL */
	uint64_t size, alloc;
} xlayer;

typedef struct {
	xlayer *v;
	size_t n;
} xlayers;

static void xlayers_free(xlayers *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].cid);
	}
	free(l->v);
}

static int xfind(const xlayers *l, const char *key)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].key, key))
			return (int)i;
	return -1;
}

/* Add @key after everything below it; returns its index. */
static int xadd(xlayers *l, vsm_dstore *ds, const vsm_record *r, const char *key, int format,
		const char *backing, bool top)
{
	const vsm_rec_frozen *f = ck_layer(r, key);
	int below = -1, i = xfind(l, key);
	xlayer *grown;
	vsm_cow *c = NULL;
	vsm_cow_info info;
	int rc;

	if (i >= 0)
		return i;
	if (!top && f) {
		format = f->format;
		backing = f->backing;
	}
	if (backing && (below = xadd(l, ds, r, backing, 0, NULL, false)) < 0)
		return below;
	if (!(grown = realloc(l->v, (l->n + 1) * sizeof(*grown))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	l->v = grown;
	memset(&l->v[l->n], 0, sizeof(*l->v));
	l->v[l->n].format = format;
	l->v[l->n].backing = below;
	l->v[l->n].top = top;
	if (!(l->v[l->n].key = vsm__strdup(key)) ||
	    (!top && f && f->cid && !(l->v[l->n].cid = vsm__strdup(f->cid))))
		return -VSM_ENOMEM;
	l->n++;
	if ((rc = ck_cow_open(&c, ds, key, true, true)) < 0)
		return rc;
	rc = vsm_cow_get_info(c, &info);
	vsm_cow_close(c);
	if (rc < 0)
		return rc;
	l->v[l->n - 1].size = info.virtual_size;
	l->v[l->n - 1].alloc = info.allocated_bytes;
	return (int)(l->n - 1);
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
static int export_layer(bfile *f, vsm_dstore *ds, const xlayer *l)
{
	bool bottom = l->backing < 0;
	uint64_t off = 0, pnum, size, data = 0;
	uint8_t *buf = malloc(B_CHUNK), h[24], tail[8];
	vsm_cow *c = NULL;
	ck_sum start;
	int rc;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	if ((rc = ck_cow_open(&c, ds, l->key, true, true)) < 0) {
		free(buf);
		return rc;
	}
	start = f->sum;
	size = vsm_cow_size(c);
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
					rc = b_write(f, h, sizeof(h));
				} else if (!z) {
					put_rec(h, REC_DATA, off + p, run);
					if ((rc = b_write(f, h, sizeof(h))) == 0 &&
					    (rc = b_write(f, buf + p, (size_t)run)) == 0)
						data += run;
				}
				p += run;
			}
			if (rc == 0)
				rc = tick(f, pnum);
		} else if (st.present && !bottom) {
			put_rec(h, REC_ZERO, off, pnum);
			rc = b_write(f, h, sizeof(h));
		}
		off += pnum;
	}
	vsm_cow_close(c);
	free(buf);
	if (rc < 0)
		return rc;
	/* The end record carries the section's own checksum. */
	(void)start;
	put_rec(h, REC_END, data, 0);
	if ((rc = b_write(f, h, sizeof(h))) < 0)
		return rc;
	vsm__put_le64(tail, ck_sum_value(&f->sum));
	return b_write(f, tail, sizeof(tail));
}

static int export_blob(bfile *f, vsm_dstore *ds, const char *key, uint64_t size)
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

		if ((rc = vsm_bdev_read(b, buf, n, off)) == 0 && (rc = b_write(f, buf, n)) == 0)
			rc = tick(f, n);
		off += n;
	}
	vsm_bdev_close(b);
	free(buf);
	return rc;
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : json_object_new_null();
}

static json_object *jidx(int i)
{
	return i >= 0 ? json_object_new_int(i) : json_object_new_null();
}

typedef struct {
	const char *key;
	uint64_t size;
} xblob;

VSM_API int vsm_bundle_export(vsm_container *c, const char *checkpoint, const char *path,
			      const vsm_bundle_opts *opts)
{
	vsm_bundle_opts defaults = VSM_BUNDLE_OPTS_INIT;
	xlayers L = {NULL, 0};
	xblob blobs[1024];
	size_t nb = 0, i, j;
	const vsm_rec_checkpoint *only = NULL;
	json_object *m = NULL, *arr;
	vsm_record *r = NULL, *cached;
	vsm_dstore *ds;
	bfile f = { .fd = -1 };
	uint8_t hdr[B_HDR], trailer[24];
	const char *json;
	char sumhex[17];
	int state_area = -1, rc;
	vsm_ctx *ctx;

	vsm__error_reset();
	if (!c || !path)
		return vsm_err(VSM_EINVAL, "vsm_bundle_export: NULL argument");
	if (!opts)
		opts = &defaults;
	if (opts->version == 0 || opts->version > VSM_BUNDLE_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_bundle_opts version %u is not supported",
			       opts->version);
	if (opts->flags)
		return vsm_err(VSM_EINVAL, "vsm_bundle_export: unknown flags 0x%x", opts->flags);
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, vsm_container_datastore(c))) < 0 ||
	    (rc = vsm__ds_refresh(ctx, ds)) < 0)
		goto out;
	if (!(cached = vsm__ds_find(ds, NULL, vsm_container_uuid(c)))) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' no longer exists", vsm_container_name(c));
		goto out;
	}
	if (!(r = vsm_record_dup(cached)) || (rc = ck_table_fill(r)) < 0) {
		rc = rc < 0 ? rc : -VSM_ENOMEM;
		goto out;
	}
	if (checkpoint && !(only = ck_find(r, checkpoint))) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name,
			     checkpoint);
		goto out;
	}
	if (r->n_deploys && !only) {
		rc = vsm_err(VSM_EBUSY, "container '%s': device '%s' is deployed; undeploy it "
			     "before exporting the container", r->name, r->deploys[0].device);
		goto out;
	}
	/* Layers bottom first, each after the one it stands on. */
	for (i = 0; i < r->n_ckpts; i++) {
		if (only && only != &r->ckpts[i])
			continue;
		for (j = 0; j < r->ckpts[i].n_layers; j++)
			if ((rc = xadd(&L, ds, r, r->ckpts[i].layers[j].key, 0, NULL, false)) < 0)
				goto out;
	}
	for (i = 0; !only && i < r->n_devices; i++) {
		const vsm_rec_device *d = &r->devices[i];

		if ((rc = xadd(&L, ds, r, d->key, d->format,
			       d->chain_len ? d->chain[0].key : NULL, true)) < 0)
			goto out;
	}
	if (r->n_ckpts + 1 > 1024) {
		rc = vsm_err(VSM_EINVAL, "container '%s' has too many checkpoints", r->name);
		goto out;
	}

	m = json_object_new_object();
	json_object_object_add(m, "format", jstr("libvsm-bundle"));
	json_object_object_add(m, "version", json_object_new_int(B_VERSION));
	json_object_object_add(m, "created", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(m, "kind", jstr(only ? "checkpoint" : "container"));
	json_object_object_add(m, "name", jstr(r->name));
	json_object_object_add(m, "source_uuid", jstr(r->uuid));
	json_object_object_add(m, "state_size", json_object_new_uint64(r->state_size));
	arr = json_object_new_array();
	for (i = 0; i < L.n; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "cid", jstr(L.v[i].cid));
		json_object_object_add(e, "format", jstr(vsm_format_name(L.v[i].format)));
		json_object_object_add(e, "size", json_object_new_uint64(L.v[i].size));
		json_object_object_add(e, "backing", jidx(L.v[i].backing));
		json_object_object_add(e, "top", json_object_new_boolean(L.v[i].top));
		json_object_object_add(e, "allocated", json_object_new_uint64(L.v[i].alloc));
		json_object_array_add(arr, e);
		f.total += L.v[i].alloc;
	}
	json_object_object_add(m, "layers", arr);
	arr = json_object_new_array();
	for (i = 0; i < r->n_devices; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "name", jstr(r->devices[i].name));
		json_object_object_add(e, "size", json_object_new_uint64(r->devices[i].size));
		json_object_object_add(e, "top", jidx(only ? -1 : xfind(&L, r->devices[i].key)));
		json_object_array_add(arr, e);
	}
	json_object_object_add(m, "devices", arr);
	arr = json_object_new_array();
	for (i = 0; i < r->n_ckpts; i++) {
		const vsm_rec_checkpoint *k = &r->ckpts[i];
		json_object *e, *lays;

		if (only && only != k)
			continue;
		e = json_object_new_object();
		lays = json_object_new_array();
		json_object_object_add(e, "name", jstr(k->name));
		json_object_object_add(e, "parent", jstr(only ? NULL : k->parent));
		json_object_object_add(e, "ctime", json_object_new_int64(k->ctime));
		if (k->state_key) {
			blobs[nb].key = k->state_key;
			blobs[nb].size = k->state_size;
			f.total += k->state_size;
			snprintf(sumhex, sizeof(sumhex), "%016llx", (unsigned long long)k->state_sum);
			json_object_object_add(e, "state", json_object_new_int((int)nb));
			json_object_object_add(e, "state_sum", jstr(sumhex));
			nb++;
		} else {
			json_object_object_add(e, "state", json_object_new_null());
			json_object_object_add(e, "state_sum", json_object_new_null());
		}
		for (j = 0; j < k->n_layers; j++) {
			json_object *le = json_object_new_object();

			json_object_object_add(le, "device", jstr(k->layers[j].device));
			json_object_object_add(le, "layer", jidx(xfind(&L, k->layers[j].key)));
			json_object_array_add(lays, le);
		}
		json_object_object_add(e, "layers", lays);
		json_object_array_add(arr, e);
	}
	json_object_object_add(m, "checkpoints", arr);
	json_object_object_add(m, "current", jstr(only ? only->name : r->ckpt_current));
	if (!only && r->state_key) {
		state_area = (int)nb;
		blobs[nb].key = r->state_key;
		blobs[nb].size = r->state_size;
		f.total += r->state_size;
		nb++;
	}
	json_object_object_add(m, "state_area", jidx(state_area));
	arr = json_object_new_array();
	for (i = 0; i < nb; i++)
		json_object_array_add(arr, json_object_new_uint64(blobs[i].size));
	json_object_object_add(m, "blobs", arr);
	json = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN);

	f.path = path;
	f.progress = opts->progress;
	f.payload = opts->payload;
	ck_sum_init(&f.sum);
	if ((f.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		rc = vsm_err(errno == EEXIST ? VSM_EEXISTS : VSM_EIO, "bundle '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	{
		ck_sum ms;

		ck_sum_init(&ms);
		ck_sum_add(&ms, json, strlen(json));
		memset(hdr, 0, sizeof(hdr));
		memcpy(hdr, B_MAGIC, 8);
		vsm__put_le32(hdr + 8, B_VERSION);
		vsm__put_le32(hdr + 12, B_HDR);
		vsm__put_le64(hdr + 16, strlen(json));
		vsm__put_le64(hdr + 24, ck_sum_value(&ms));
		vsm__put_le32(hdr + 56, vsm__crc32(hdr, 56));
	}
	if ((rc = b_write(&f, hdr, sizeof(hdr))) < 0 || (rc = b_write(&f, json, strlen(json))) < 0)
		goto fail;
	for (i = 0; i < L.n; i++)
		if ((rc = export_layer(&f, ds, &L.v[i])) < 0)
			goto fail;
	for (i = 0; i < nb; i++)
		if ((rc = export_blob(&f, ds, blobs[i].key, blobs[i].size)) < 0)
			goto fail;
	memcpy(trailer, B_END, 8);
	vsm__put_le64(trailer + 8, f.pos);
	vsm__put_le64(trailer + 16, ck_sum_value(&f.sum));
	if ((rc = b_write(&f, trailer, sizeof(trailer))) < 0)
		goto fail;
	if (fsync(f.fd) < 0) {
		rc = vsm_err(VSM_EIO, "bundle '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (f.progress && f.done < f.total && (rc = tick(&f, f.total - f.done)) < 0)
		goto fail;
	if (opts->stats) {
		memset(opts->stats, 0, sizeof(*opts->stats));
		opts->stats->layers = L.n;
		opts->stats->bundle_bytes = f.pos;
	}
	vsm__log(ctx, VSM_LOG_INFO, "container '%s': exported %s to '%s' (%zu layers)", r->name,
		 only ? "a checkpoint" : "everything", path, L.n);
	goto out;
fail:
	unlink(path);
out:
	if (f.fd >= 0)
		close(f.fd);
	if (m)
		json_object_put(m);
	xlayers_free(&L);
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}

/* --- import --- */

typedef struct {
	char *cid;
	int format;
	uint64_t size;
	int backing;
	bool top;
	char key[VSM_BACKEND_KEY_MAX];
	bool have;   /* found on the datastore: section skipped */
	char from[VSM_UUID_STRLEN + 1]; /* the record whose table describes it */
} ilayer;

static int bad(const char *path, const char *what)
{
	return vsm_err(VSM_ECORRUPT, "bundle '%s': manifest is not valid: %s", path, what);
}

static json_object *jget(json_object *o, const char *k, json_type t, bool nullable)
{
	json_object *v;

	(void)nullable;
	if (!json_object_object_get_ex(o, k, &v) || !v)
		return NULL;
	return json_object_is_type(v, t) ? v : NULL;
}

/* A nullable integer index in [-1, limit). */
static int jindex(json_object *o, const char *k, int limit, int *out)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v))
		return -1;
	if (!v) {
		*out = -1;
		return 0;
	}
	if (!json_object_is_type(v, json_type_int))
		return -1;
	*out = json_object_get_int(v);
	return *out >= 0 && *out < limit ? 0 : -1;
}

static const char *jstrv(json_object *o, const char *k)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !v || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int import_layer(bfile *f, vsm_dstore *ds, ilayer *l, bool write, uint64_t *written)
{
	uint8_t h[24], tail[8], *buf = malloc(B_CHUNK);
	vsm_cow *c = NULL;
	uint64_t data = 0;
	int rc = 0;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	if (write && (rc = ck_cow_open(&c, ds, l->key, false, false)) < 0) {
		free(buf);
		return rc;
	}
	for (;;) {
		uint32_t kind;
		uint64_t off, len;

		if ((rc = b_read(f, h, sizeof(h))) < 0)
			break;
		kind = vsm__get_le32(h);
		off = vsm__get_le64(h + 8);
		len = vsm__get_le64(h + 16);
		if (kind == REC_END) {
			ck_sum at = f->sum;

			if ((rc = b_read(f, tail, sizeof(tail))) < 0)
				break;
			if (vsm__get_le64(tail) != ck_sum_value(&at) || off != data || len)
				rc = vsm_err(VSM_ECORRUPT, "bundle '%s': a layer section fails its "
					     "checksum", f->path);
			break;
		}
		if ((kind != REC_DATA && kind != REC_ZERO) || off > l->size || len > l->size - off ||
		    (kind == REC_DATA && len > B_CHUNK) || len == 0) {
			rc = vsm_err(VSM_ECORRUPT, "bundle '%s': a layer section has a bad record",
				     f->path);
			break;
		}
		if (kind == REC_ZERO) {
			if (write)
				rc = vsm_cow_write_zeroes(c, off, len, false);
		} else {
			if ((rc = b_read(f, buf, (size_t)len)) < 0)
				break;
			data += len;
			if (write) {
				rc = vsm_cow_write(c, buf, (size_t)len, off);
				*written += len;
			}
			if (rc == 0)
				rc = tick(f, len);
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

static int import_blob(bfile *f, vsm_dstore *ds, const char *key, uint64_t size,
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

		if ((rc = b_read(f, buf, n)) == 0 && (rc = vsm_bdev_write(b, buf, n, off)) == 0)
			rc = tick(f, n);
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

/* A layer with content ID @cid somewhere on the datastore. */
static const vsm_record *cid_holder(vsm_dstore *ds, const char *cid, const char **key)
{
	size_t i, j;

	for (i = 0; cid && i < ds->n_recs; i++) {
		const vsm_record *r = ds->recs[i];

		if (r->destroying)
			continue;
		for (j = 0; j < r->n_layers; j++)
			if (r->layers[j].cid && !strcmp(r->layers[j].cid, cid)) {
				*key = r->layers[j].key;
				return r;
			}
	}
	return NULL;
}

static int set_chain(vsm_rec_device *d, ilayer *L, int top)
{
	int i;
	size_t n = 0;

	for (i = L[top].backing; i >= 0; i = L[i].backing)
		n++;
	if (n && !(d->chain = vsm__calloc(n, sizeof(*d->chain))))
		return -VSM_ENOMEM;
	for (i = L[top].backing; i >= 0; i = L[i].backing) {
		d->chain[d->chain_len].format = L[i].format;
		if (!(d->chain[d->chain_len++].key = vsm__strdup(L[i].key)))
			return -VSM_ENOMEM;
	}
	return 0;
}

VSM_API int vsm_bundle_import(vsm_container **out, vsm_ctx *ctx, const char *path,
			      const char *datastore, const char *name,
			      const vsm_bundle_opts *opts)
{
	vsm_bundle_opts defaults = VSM_BUNDLE_OPTS_INIT;
	uint8_t hdr[B_HDR], trailer[24], extra;
	char *json = NULL, dev_name[VSM_BACKEND_KEY_MAX], key[VSM_BACKEND_KEY_MAX];
	json_object *m = NULL, *jl, *jd, *jc, *jb;
	ilayer *L = NULL;
	char **blob_keys = NULL;
	uint64_t *blob_sizes = NULL, *blob_sums = NULL, mlen, written = 0;
	size_t nl = 0, nd, nc, nb = 0, i, j;
	int state_area = -1, rc;
	bfile f = { .fd = -1 };
	vsm_container *h = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	bool began = false;

	vsm__error_reset();
	if (!ctx || !path || !datastore)
		return vsm_err(VSM_EINVAL, "vsm_bundle_import: NULL argument");
	if (!opts)
		opts = &defaults;
	if (opts->version == 0 || opts->version > VSM_BUNDLE_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_bundle_opts version %u is not supported",
			       opts->version);
	if (opts->flags)
		return vsm_err(VSM_EINVAL, "vsm_bundle_import: unknown flags 0x%x", opts->flags);
	if (name && (rc = vsm__name_check("container", name)) < 0)
		return rc;
	f.path = path;
	f.progress = opts->progress;
	f.payload = opts->payload;
	ck_sum_init(&f.sum);
	if ((f.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return vsm_err(errno == ENOENT ? VSM_ENOTFOUND : VSM_EIO, "bundle '%s': %s", path,
			       strerror(errno));
	vsm__ctx_lock(ctx);
	/* Everything about the manifest is checked before anything is made. */
	if ((rc = b_read(&f, hdr, 8)) == 0 && memcmp(hdr, B_MAGIC, 8))
		rc = vsm_err(VSM_EINVAL, "'%s' is not a libvsm bundle", path);
	if (rc < 0 || (rc = b_read(&f, hdr + 8, sizeof(hdr) - 8)) < 0)
		goto out;
	if (vsm__get_le32(hdr + 56) != vsm__crc32(hdr, 56)) {
		rc = vsm_err(VSM_ECORRUPT, "bundle '%s': header is damaged", path);
		goto out;
	}
	if (vsm__get_le32(hdr + 8) != B_VERSION || vsm__get_le32(hdr + 12) != B_HDR) {
		rc = vsm_err(VSM_EVERSION, "bundle '%s': format version %u is not supported", path,
			     vsm__get_le32(hdr + 8));
		goto out;
	}
	mlen = vsm__get_le64(hdr + 16);
	if (mlen == 0 || mlen > B_MANIFEST_MAX) {
		rc = vsm_err(VSM_ECORRUPT, "bundle '%s': header is damaged", path);
		goto out;
	}
	if (!(json = vsm__calloc(1, (size_t)mlen + 1))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if ((rc = b_read(&f, json, (size_t)mlen)) < 0)
		goto out;
	{
		ck_sum ms;

		ck_sum_init(&ms);
		ck_sum_add(&ms, json, (size_t)mlen);
		if (ck_sum_value(&ms) != vsm__get_le64(hdr + 24)) {
			rc = vsm_err(VSM_ECORRUPT, "bundle '%s': manifest fails its checksum", path);
			goto out;
		}
	}
	m = json_tokener_parse(json);
	if (!m || !json_object_is_type(m, json_type_object) ||
	    !jstrv(m, "format") || strcmp(jstrv(m, "format"), "libvsm-bundle") ||
	    !jget(m, "version", json_type_int, false) ||
	    json_object_get_int(jget(m, "version", json_type_int, false)) != B_VERSION) {
		rc = bad(path, "not a JSON object of format libvsm-bundle version 1");
		goto out;
	}
	if (!name)
		name = jstrv(m, "name");
	if ((rc = vsm__name_check("container", name)) < 0)
		goto out;
	if (!(jl = jget(m, "layers", json_type_array, false)) ||
	    !(jd = jget(m, "devices", json_type_array, false)) ||
	    !(jc = jget(m, "checkpoints", json_type_array, false)) ||
	    !(jb = jget(m, "blobs", json_type_array, false)) ||
	    jindex(m, "state_area", (int)json_object_array_length(jb), &state_area) < 0) {
		rc = bad(path, "a top-level field is missing or has the wrong type");
		goto out;
	}
	nl = json_object_array_length(jl);
	nd = json_object_array_length(jd);
	nc = json_object_array_length(jc);
	nb = json_object_array_length(jb);
	if (nd == 0 || nd > 64 || nl > 65536 || nb > 65536) {
		rc = bad(path, "device, layer or blob count out of range");
		goto out;
	}
	if (!(L = vsm__calloc(nl ? nl : 1, sizeof(*L))) ||
	    !(blob_keys = vsm__calloc(nb ? nb : 1, sizeof(char *))) ||
	    !(blob_sizes = vsm__calloc(nb ? nb : 1, sizeof(uint64_t))) ||
	    !(blob_sums = vsm__calloc(nb ? nb : 1, sizeof(uint64_t)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < nl; i++) {
		json_object *e = json_object_array_get_idx(jl, i), *v;
		const char *cid = jstrv(e, "cid"), *fmt = jstrv(e, "format");

		if (!json_object_is_type(e, json_type_object) || !fmt ||
		    vsm_format_parse(&L[i].format, fmt) < 0 ||
		    jindex(e, "backing", (int)i, &L[i].backing) < 0 ||
		    !(v = jget(e, "size", json_type_int, false)) ||
		    (L[i].size = json_object_get_uint64(v)) == 0 || L[i].size > (UINT64_C(1) << 56) ||
		    !(v = jget(e, "top", json_type_boolean, false)) ||
		    (cid && !vsm__uuid_valid(cid)) ||
		    (L[i].backing >= 0 && L[i].format != VSM_FORMAT_QCOW2)) {
			vsm__error_reset();
			rc = bad(path, "a layer entry is malformed");
			goto out;
		}
		L[i].top = json_object_get_boolean(v);
		if (cid && !(L[i].cid = vsm__strdup(cid))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < nb; i++) {
		json_object *e = json_object_array_get_idx(jb, i);

		if (!json_object_is_type(e, json_type_int) || json_object_get_int64(e) < 0) {
			rc = bad(path, "a blob size is malformed");
			goto out;
		}
		blob_sizes[i] = json_object_get_uint64(e);
	}
	if (!(r = vsm__calloc(1, sizeof(*r))) ||
	    !(r->devices = vsm__calloc(nd, sizeof(*r->devices))) || !(r->name = vsm__strdup(name))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < nd; i++) {
		json_object *e = json_object_array_get_idx(jd, i), *v;
		const char *dn = jstrv(e, "name");
		int top;

		r->n_devices = i + 1;
		if (!json_object_is_type(e, json_type_object) || vsm__name_check("device", dn) < 0 ||
		    !(v = jget(e, "size", json_type_int, false)) ||
		    jindex(e, "top", (int)nl, &top) < 0 || (top >= 0 && !L[top].top) ||
		    (r->devices[i].size = json_object_get_uint64(v)) == 0) {
			vsm__error_reset();
			rc = bad(path, "a device entry is malformed");
			goto out;
		}
		if (!(r->devices[i].name = vsm__strdup(dn))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
		r->devices[i].format = top; /* the top's index until keys are known */
	}
	if (!(r->ckpts = vsm__calloc(nc ? nc : 1, sizeof(*r->ckpts)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < nc; i++) {
		json_object *e = json_object_array_get_idx(jc, i), *lays, *v;
		vsm_rec_checkpoint *k = &r->ckpts[i];
		const char *cn = jstrv(e, "name"), *parent = jstrv(e, "parent"), *sum;
		int st;

		r->n_ckpts = i + 1;
		if (!json_object_is_type(e, json_type_object) || vsm__name_check("checkpoint", cn) < 0 ||
		    !(v = jget(e, "ctime", json_type_int, false)) ||
		    jindex(e, "state", (int)nb, &st) < 0 ||
		    !(lays = jget(e, "layers", json_type_array, false)) ||
		    json_object_array_length(lays) != nd) {
			vsm__error_reset();
			rc = bad(path, "a checkpoint entry is malformed");
			goto out;
		}
		k->ctime = json_object_get_int64(v);
		if (!(k->name = vsm__strdup(cn)) || (parent && !(k->parent = vsm__strdup(parent))) ||
		    !(k->layers = vsm__calloc(nd, sizeof(*k->layers)))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
		if (st >= 0) {
			char *end;

			sum = jstrv(e, "state_sum");
			if (!sum || strlen(sum) != 16) {
				rc = bad(path, "a state checksum is malformed");
				goto out;
			}
			k->state_sum = strtoull(sum, &end, 16);
			if (*end) {
				rc = bad(path, "a state checksum is malformed");
				goto out;
			}
			k->state_size = blob_sizes[st];
			blob_sums[st] = k->state_sum;
			k->state_key = (char *)(intptr_t)(st + 1); /* patched below */
		}
		for (j = 0; j < nd; j++) {
			json_object *le = json_object_array_get_idx(lays, j);
			const char *dn = jstrv(le, "device");
			int li;

			k->n_layers = j + 1;
			if (!dn || !vsm_record_device(r, dn) || jindex(le, "layer", (int)nl, &li) < 0 ||
			    li < 0 || L[li].top) {
				vsm__error_reset();
				rc = bad(path, "a checkpoint layer entry is malformed");
				goto out;
			}
			if (!(k->layers[j].device = vsm__strdup(dn))) {
				rc = -VSM_ENOMEM;
				goto out;
			}
			k->layers[j].key = (char *)(intptr_t)(li + 1); /* patched below */
		}
	}
	if (jstrv(m, "current") && !(r->ckpt_current = vsm__strdup(jstrv(m, "current")))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	{
		json_object *v = jget(m, "state_size", json_type_int, false);

		r->state_size = v ? json_object_get_uint64(v) : 0;
		if (!r->state_size)
			r->state_size = DEFAULT_STATE_SIZE;
	}

	/* The target. */
	if ((rc = vsm__ds_get(&ds, ctx, datastore)) < 0 || (rc = vsm__ds_refresh(ctx, ds)) < 0)
		goto out;
	if (vsm__ds_find(ds, name, NULL)) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': container '%s' already exists", datastore,
			     name);
		goto out;
	}
	for (i = 0; i < nl; i++) {
		const char *k = NULL;

		const vsm_record *holder;
		json_object *e = json_object_array_get_idx(jl, i), *v;

		if (!L[i].top && (holder = cid_holder(ds, L[i].cid, &k))) {
			L[i].have = true;
			snprintf(L[i].key, sizeof(L[i].key), "%s", k);
			memcpy(L[i].from, holder->uuid, sizeof(L[i].from));
		}
		if (json_object_object_get_ex(e, "allocated", &v) && v &&
		    json_object_is_type(v, json_type_int))
			f.total += json_object_get_uint64(v);
	}
	for (i = 0; i < nb; i++)
		f.total += blob_sizes[i];
	vsm__uuid_new(r->uuid);
	r->ctime = (int64_t)time(NULL);
	if ((rc = vsm__wf_begin(&wf, ctx, "bundle-import", datastore, name)) < 0)
		goto out;
	began = true;
	for (i = 0; i < nl; i++) {
		if (!L[i].have) {
			ck_name(dev_name, sizeof(dev_name), r->uuid, L[i].top ? "top" : "layer",
				vsm_format_name(L[i].format));
			if ((rc = ck_device_create(&wf, ds, dev_name, L[i].size,
						   vsm_format_name(L[i].format),
						   L[i].backing >= 0 ? L[L[i].backing].key : NULL,
						   L[i].backing >= 0 ? L[L[i].backing].format : 0,
						   L[i].key)) < 0)
				goto abort;
		}
		if ((rc = import_layer(&f, ds, &L[i], !L[i].have, &written)) < 0)
			goto abort;
	}
	for (i = 0; i < nb; i++) {
		uint64_t sum = 0;

		ck_name(dev_name, sizeof(dev_name), r->uuid, (int)i == state_area ? "state" : "blob",
			"raw");
		if ((rc = ck_device_create(&wf, ds, dev_name, blob_sizes[i] ? blob_sizes[i] : 1, "raw",
					   NULL, 0, key)) < 0 ||
		    !(blob_keys[i] = vsm__strdup(key))) {
			rc = rc < 0 ? rc : -VSM_ENOMEM;
			goto abort;
		}
		if ((rc = import_blob(&f, ds, key, blob_sizes[i], &sum, &written)) < 0)
			goto abort;
		if ((int)i != state_area && sum != blob_sums[i]) {
			rc = vsm_err(VSM_ECORRUPT, "bundle '%s': a state blob fails its checksum", path);
			goto abort;
		}
	}
	/* The trailer vouches for every byte before it, and nothing may follow. */
	{
		ck_sum at = f.sum;
		uint64_t pos = f.pos;

		if ((rc = b_read(&f, trailer, sizeof(trailer))) < 0)
			goto abort;
		if (memcmp(trailer, B_END, 8) || vsm__get_le64(trailer + 8) != pos ||
		    vsm__get_le64(trailer + 16) != ck_sum_value(&at) ||
		    read(f.fd, &extra, 1) != 0) {
			rc = vsm_err(VSM_ECORRUPT, "bundle '%s' fails its checksum (altered or "
				     "damaged)", path);
			goto abort;
		}
	}

	/* The record: keys are known now. */
	for (i = 0; i < nl; i++) {
		vsm_rec_frozen fl = {0};

		if (L[i].top)
			continue;
		if (L[i].have) {
			const vsm_record *holder = vsm__ds_find(ds, NULL, L[i].from);

			if (!holder) {
				rc = vsm_err(VSM_ESTATE, "datastore '%s': the container holding layer "
					     "'%s' went away during the import", datastore, L[i].key);
				goto abort;
			}
			if ((rc = ck_table_copy(r, holder, L[i].key)) < 0)
				goto abort;
			continue;
		}
		fl.key = L[i].key;
		fl.format = L[i].format;
		fl.backing = L[i].backing >= 0 ? L[L[i].backing].key : NULL;
		fl.backing_format = L[i].backing >= 0 ? L[L[i].backing].format : 0;
		fl.managed = true;
		{
			char fresh_cid[VSM_UUID_STRLEN + 1];

			vsm__uuid_new(fresh_cid);
			fl.cid = L[i].cid ? L[i].cid : fresh_cid;
			if ((rc = ck_layer_put(r, &fl)) < 0)
				goto abort;
		}
	}
	for (i = 0; i < nc; i++) {
		vsm_rec_checkpoint *k = &r->ckpts[i];

		if (k->state_key) {
			size_t b = (size_t)(intptr_t)k->state_key - 1;

			k->state_key = NULL;
			if (!(k->state_key = vsm__strdup(blob_keys[b]))) {
				rc = -VSM_ENOMEM;
				goto abort;
			}
		}
		for (j = 0; j < k->n_layers; j++) {
			size_t li = (size_t)(intptr_t)k->layers[j].key - 1;

			k->layers[j].key = NULL;
			if (!(k->layers[j].key = vsm__strdup(L[li].key))) {
				rc = -VSM_ENOMEM;
				goto abort;
			}
		}
	}
	for (i = 0; i < nd; i++) {
		vsm_rec_device *d = &r->devices[i];
		int top = d->format;

		if (top >= 0) {
			d->format = L[top].format;
			if (!(d->key = vsm__strdup(L[top].key)) || (rc = set_chain(d, L, top)) < 0) {
				rc = rc < 0 ? rc : -VSM_ENOMEM;
				goto abort;
			}
			continue;
		}
		/* A checkpoint bundle: a new empty overlay on the current
		 * checkpoint's layer. */
		{
			const vsm_rec_checkpoint *cur = ck_find(r, r->ckpt_current);
			const char *base = NULL;
			int bi = -1;

			for (j = 0; cur && j < cur->n_layers; j++)
				if (!strcmp(cur->layers[j].device, d->name))
					base = cur->layers[j].key;
			for (j = 0; base && j < nl; j++)
				if (!strcmp(L[j].key, base))
					bi = (int)j;
			if (bi < 0) {
				rc = bad(path, "a device has neither a top nor a current checkpoint");
				goto abort;
			}
			ck_name(dev_name, sizeof(dev_name), r->uuid, d->name, "qcow2");
			if ((rc = ck_device_create(&wf, ds, dev_name, d->size, "qcow2", base,
						   L[bi].format, key)) < 0)
				goto abort;
			d->format = VSM_FORMAT_QCOW2;
			if (!(d->key = vsm__strdup(key))) {
				rc = -VSM_ENOMEM;
				goto abort;
			}
			{
				vsm_rec_layer *below = NULL;
				size_t nbl = 0;

				if ((rc = ck_chain_of(r, base, &below, &nbl)) < 0)
					goto abort;
				if (!(d->chain = vsm__calloc(nbl + 1, sizeof(*d->chain))) ||
				    !(d->chain[0].key = vsm__strdup(base))) {
					vsm__layers_free(below, nbl);
					rc = -VSM_ENOMEM;
					goto abort;
				}
				d->chain[0].format = L[bi].format;
				if (nbl)
					memcpy(&d->chain[1], below, nbl * sizeof(*below));
				free(below);
				d->chain_len = nbl + 1;
			}
		}
	}
	if (state_area >= 0) {
		r->state_key = blob_keys[state_area];
		blob_keys[state_area] = NULL;
		r->state_size = blob_sizes[state_area];
	} else {
		ck_name(dev_name, sizeof(dev_name), r->uuid, "state", "raw");
		if ((rc = ck_device_create(&wf, ds, dev_name, r->state_size, "raw", NULL, 0,
					   key)) < 0 || !(r->state_key = vsm__strdup(key))) {
			rc = rc < 0 ? rc : -VSM_ENOMEM;
			goto abort;
		}
	}
	/* Same checks as any record we read back. */
	{
		char *enc = NULL;
		vsm_record *check = NULL;

		if ((rc = vsm_record_encode(&enc, r)) == 0 &&
		    (rc = vsm_record_decode(&check, enc, strlen(enc), "imported record")) < 0)
			vsm__error_prefix("bundle '%s'", path);
		free(enc);
		vsm_record_free(check);
		if (rc < 0)
			goto abort;
	}
	/* As for a clone: the name is claimed under the metadata lock, and
	 * the import is committed once the journal forgets the step. */
	if ((rc = vsm__wf_undo(&wf, VSM_WF_UUID_FREE, r->uuid)) < 0 ||
	    (rc = vsm__ds_insert_record(ctx, ds, r)) < 0 ||
	    (out && (rc = vsm__container_new(&h, ctx, datastore, r)) < 0) ||
	    (rc = vsm__wf_end(&wf)) < 0)
		goto abort;
	began = false;
	if (f.progress && f.done < f.total)
		tick(&f, f.total - f.done);
	if (opts->stats) {
		memset(opts->stats, 0, sizeof(*opts->stats));
		opts->stats->layers = nl;
		for (i = 0; i < nl; i++)
			opts->stats->layers_skipped += L[i].have;
		opts->stats->bytes_written = written;
		opts->stats->bundle_bytes = f.pos;
	}
	vsm__log(ctx, VSM_LOG_INFO, "datastore '%s': container '%s' imported from '%s'",
		 datastore, name, path);
	if (out) {
		*out = h;
		h = NULL;
	}
	goto out;
abort:
	if (began)
		vsm__wf_abort(&wf);
out:
	vsm_container_free(h);
	if (r) {
		/* Placeholders that were never patched must not be freed. */
		for (i = 0; i < r->n_ckpts; i++) {
			if ((uintptr_t)r->ckpts[i].state_key <= 65536)
				r->ckpts[i].state_key = NULL;
			for (j = 0; j < r->ckpts[i].n_layers; j++)
				if ((uintptr_t)r->ckpts[i].layers[j].key <= 65536)
					r->ckpts[i].layers[j].key = NULL;
		}
		vsm_record_free(r);
	}
	for (i = 0; i < nl && L; i++)
		free(L[i].cid);
	free(L);
	for (i = 0; i < nb && blob_keys; i++)
		free(blob_keys[i]);
	free(blob_keys);
	free(blob_sizes);
	free(blob_sums);
	free(json);
	if (m)
		json_object_put(m);
	close(f.fd);
	vsm__ctx_unlock(ctx);
	return rc;
}
