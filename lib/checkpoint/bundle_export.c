/*
 * vsm_bundle_export: a container or one checkpoint as a single
 * self-describing bundle file: the layers to carry, bottom first, and the
 * manifest that describes them, with each layer's digest (a first, dry
 * pass over the layers: the manifest comes before the sections).
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "ckpt.h"
#include "cow.h"
#include "vsm/checkpoint.h"

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
		const char *backing, bool top, bool empty)
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
	if (backing && (below = xadd(l, ds, r, backing, 0, NULL, false, false)) < 0)
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
	l->v[l->n].golden = !top && f && !f->managed && below < 0;
	l->n++;
	if ((rc = ck_cow_open(&c, ds, key, format, true, true)) < 0)
		return rc;
	rc = vsm_cow_get_info(c, &info);
	vsm_cow_close(c);
	if (rc < 0)
		return rc;
	l->v[l->n - 1].size = info.virtual_size;
	l->v[l->n - 1].alloc = empty ? 0 : info.allocated_bytes;
	l->v[l->n - 1].empty = empty;
	return (int)(l->n - 1);
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

static int export(vsm_container *c, const char *checkpoint, const char *path,
		  const vsm_bundle_opts *opts, int empty_tops)
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
	if (!(r = vsm_record_dup(cached)) || (rc = ck_table_fill(ds, r)) < 0) {
		rc = rc < 0 ? rc : -VSM_ENOMEM;
		goto out;
	}
	if (checkpoint && !(only = ck_find(r, checkpoint))) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name,
			     checkpoint);
		goto out;
	}
	if (r->n_deploys && !only && !empty_tops) {
		rc = vsm_err(VSM_EBUSY, "container '%s': device '%s' is deployed; undeploy it "
			     "before exporting the container", r->name, r->deploys[0].device);
		goto out;
	}
	/* Layers bottom first, each after the one it stands on. */
	for (i = 0; i < r->n_ckpts; i++) {
		if (only && only != &r->ckpts[i])
			continue;
		for (j = 0; j < r->ckpts[i].n_layers; j++)
			if ((rc = xadd(&L, ds, r, r->ckpts[i].layers[j].key, 0, NULL, false,
				       false)) < 0)
				goto out;
	}
	for (i = 0; !only && i < r->n_devices; i++) {
		const vsm_rec_device *d = &r->devices[i];

		bool empty = empty_tops == CK_EXPORT_EMPTY_TOPS ||
			     (empty_tops == CK_EXPORT_EMPTY_DEPLOYED &&
			      vsm_record_deploy(r, d->name));

		if ((rc = xadd(&L, ds, r, d->key, d->format,
			       d->chain_len ? d->chain[0].key : NULL, true, empty)) < 0)
			goto out;
	}
	if (r->n_ckpts + 1 > 1024) {
		rc = vsm_err(VSM_EINVAL, "container '%s' has too many checkpoints", r->name);
		goto out;
	}
	f.path = path;
	for (i = 0; i < L.n; i++)
		if ((rc = ck_export_layer(&f, ds, &L.v[i], true)) < 0)
			goto out;

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
		json_object_object_add(e, "digest", jstr(L.v[i].digest));
		if (L.v[i].golden) {
			/* Optional (readers before 0.2 ignore it): the name an
			 * import looks for first (doc/chain-copy.md). */
			const char *slash = strrchr(L.v[i].key, '/');

			json_object_object_add(e, "golden", jstr(slash ? slash + 1 : L.v[i].key));
		}
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
	if ((rc = ck_bundle_write(&f, hdr, sizeof(hdr))) < 0 ||
	    (rc = ck_bundle_write(&f, json, strlen(json))) < 0)
		goto fail;
	for (i = 0; i < L.n; i++)
		if ((rc = ck_export_layer(&f, ds, &L.v[i], false)) < 0)
			goto fail;
	for (i = 0; i < nb; i++)
		if ((rc = ck_export_blob(&f, ds, blobs[i].key, blobs[i].size)) < 0)
			goto fail;
	memcpy(trailer, B_END, 8);
	vsm__put_le64(trailer + 8, f.pos);
	vsm__put_le64(trailer + 16, ck_sum_value(&f.sum));
	if ((rc = ck_bundle_write(&f, trailer, sizeof(trailer))) < 0)
		goto fail;
	if (fsync(f.fd) < 0) {
		rc = vsm_err(VSM_EIO, "bundle '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (f.progress && f.done < f.total && (rc = ck_bundle_tick(&f, f.total - f.done)) < 0)
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

VSM_API int vsm_bundle_export(vsm_container *c, const char *checkpoint, const char *path,
			      const vsm_bundle_opts *opts)
{
	return export(c, checkpoint, path, opts, 0);
}

int ck_export(vsm_container *c, const char *path, const vsm_bundle_opts *opts, int empty_tops)
{
	return export(c, NULL, path, opts, empty_tops);
}
