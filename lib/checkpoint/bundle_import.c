/*
 * vsm_bundle_import: loading a bundle into a datastore. Import is one
 * journalled workflow whose only commit point is the record write, so a
 * bad bundle or a crash leaves nothing behind. Here: checking the
 * manifest (its syntax, then what it means), reusing layers already on the
 * datastore only when their recorded digest and chain match, checking each
 * layer's data against its digest, and the new record.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "ckpt.h"
#include "devimage.h"
#include "vsm/checkpoint.h"

#define DEFAULT_STATE_SIZE (4u << 20)
/* The largest device the engine creates (lib/ops/create.c). */
#define MAX_DEVICE_SIZE (UINT64_C(1) << 56)

static int bad(const char *path, const char *what)
{
	return vsm_err(VSM_ECORRUPT, "bundle '%s': manifest is not valid: %s", path, what);
}

static int badf(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int badf(const char *path, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return bad(path, what);
}

static bool hex_digest(const char *s)
{
	size_t i;

	for (i = 0; s && i < B_DIGEST_HEX; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s && s[B_DIGEST_HEX] == '\0';
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

/* The rule of golden image names (lib/ops/imageds.c): 1-64 characters
 * of [A-Za-z0-9._-], not "." or "..". */
static bool golden_name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/* A layer on the datastore that bundle layer @i may be replaced by: the
 * same content ID, a recorded digest equal to the manifest's (verified
 * against the data when the section is read), the same format, and the
 * same chain below it — it stands on the layer that bundle layer i's
 * backing became, which was itself reused, or on nothing when layer i is
 * a bottom. A layer without a recorded digest (older records, version 1
 * bundles) is never reused: its cid was trusted, not verified. */
static const vsm_record *reusable(vsm_dstore *ds, const ilayer *L, size_t i, const char **key)
{
	const ilayer *l = &L[i], *below = l->backing >= 0 ? &L[l->backing] : NULL;
	size_t r, j;

	if (l->top || !l->cid || !l->digest[0] || (below && !below->have))
		return NULL;
	for (r = 0; r < ds->n_recs; r++) {
		const vsm_record *rec = ds->recs[r];

		if (rec->destroying)
			continue;
		for (j = 0; j < rec->n_layers; j++) {
			const vsm_rec_frozen *e = &rec->layers[j];

			if (!e->cid || strcmp(e->cid, l->cid) || strcmp(e->digest, l->digest) ||
			    e->format != l->format)
				continue;
			if (below ? !e->backing || strcmp(e->backing, below->key) ||
					    e->backing_format != below->format
				  : e->backing != NULL)
				continue;
			*key = e->key;
			return rec;
		}
	}
	return NULL;
}

/* Does golden image @key of @ds hold exactly what content ID @cid names?
 * Its header must carry @cid and what it reads must hash to it: a
 * golden image written after its import (QEMU keeps the header
 * extension) is caught here, and is not reused. */
static bool golden_holds(vsm_ctx *ctx, vsm_dstore *ds, const char *key, const char *cid)
{
	uint8_t want[VSM_COW_CID_LEN], got[VSM_COW_CID_LEN];
	char had[VSM_UUID_STRLEN + 1];
	vsm_cow *c = NULL;
	int rc;

	if (ck_header_cid(ds, key, VSM_FORMAT_QCOW2, had) != 1 || strcmp(had, cid)) {
		vsm__error_reset();
		return false;
	}
	if (!vsm_cow_cid_parse(cid, want) ||
	    (rc = ck_cow_open(&c, ds, key, VSM_FORMAT_QCOW2, true, false)) < 0) {
		vsm__error_reset();
		return false;
	}
	rc = vsm_cow_content_cid(c, got);
	vsm_cow_close(c);
	if (rc < 0 || memcmp(got, want, sizeof(got))) {
		vsm__error_reset();
		vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': golden image '%s' carries content ID "
			 "%s but does not read what it names (written since its import?); not "
			 "reused, the bundle's copy is imported", ds->name, key, cid);
		return false;
	}
	return true;
}

/* A golden image on @ds that bundle layer @l (a bottom with a
 * content-derived ID) can be relinked to: the one of the manifest's
 * name first, then any golden image a record's layer table lists under
 * that ID. */
static bool golden_found(vsm_ctx *ctx, vsm_dstore *ds, const ilayer *l, char *key, size_t ksize)
{
	size_t r, j;

	if (!l->content || l->format != VSM_FORMAT_QCOW2)
		return false;
	if (l->golden && golden_holds(ctx, ds, l->golden, l->cid)) {
		snprintf(key, ksize, "%s", l->golden);
		return true;
	}
	for (r = 0; r < ds->n_recs; r++) {
		const vsm_record *rec = ds->recs[r];

		for (j = 0; j < rec->n_layers; j++) {
			const vsm_rec_frozen *e = &rec->layers[j];

			if (e->managed || !e->cid || strcmp(e->cid, l->cid) || e->backing ||
			    e->format != VSM_FORMAT_QCOW2)
				continue;
			if (golden_holds(ctx, ds, e->key, l->cid)) {
				snprintf(key, ksize, "%s", e->key);
				return true;
			}
		}
	}
	return false;
}

/* What the manifest means, checked before anything is made: chains
 * (complete and acyclic by construction: a backing is an earlier layer),
 * writable tops (each the top of exactly one device, under no layer),
 * device sizes, checkpoint references and blobs. */
static int check_meaning(const char *path, const vsm_record *r, const ilayer *L, size_t nl,
			 int state_area, size_t nb)
{
	size_t i, j, k;
	int *owner = NULL, *blob_user = NULL, rc = 0;
	const vsm_rec_checkpoint *cur = NULL;

	if (!(owner = vsm__calloc(nl ? nl : 1, sizeof(int))) ||
	    !(blob_user = vsm__calloc(nb ? nb : 1, sizeof(int)))) {
		free(owner);
		return -VSM_ENOMEM;
	}
	for (i = 0; i < nl; i++)
		if (L[i].backing >= 0 && L[L[i].backing].top) {
			rc = badf(path, "layer %zu stands on layer %d, a writable top", i,
				  L[i].backing);
			goto out;
		}
	if (r->ckpt_current && !(cur = ck_find(r, r->ckpt_current))) {
		rc = badf(path, "current checkpoint '%s' is not in the bundle", r->ckpt_current);
		goto out;
	}
	for (i = 0; i < r->n_devices; i++) {
		const vsm_rec_device *d = &r->devices[i];
		int t = d->format; /* the top's index, until keys are known */

		if (d->size > MAX_DEVICE_SIZE) {
			rc = badf(path, "device '%s': size %llu is larger than the largest device "
				  "(%llu bytes)", d->name, (unsigned long long)d->size,
				  (unsigned long long)MAX_DEVICE_SIZE);
			goto out;
		}
		for (j = 0; j < i; j++)
			if (!strcmp(r->devices[j].name, d->name)) {
				rc = badf(path, "device '%s' is named twice", d->name);
				goto out;
			}
		if (t >= 0) {
			if (owner[t]) {
				rc = badf(path, "devices '%s' and '%s' have the same top layer %d",
					  r->devices[owner[t] - 1].name, d->name, t);
				goto out;
			}
			owner[t] = (int)i + 1;
			if (d->size > L[t].size) {
				rc = badf(path, "device '%s': size %llu is larger than its top layer "
					  "%d (%llu bytes)", d->name, (unsigned long long)d->size,
					  t, (unsigned long long)L[t].size);
				goto out;
			}
			continue;
		}
		/* No top: a fresh overlay on the current checkpoint's layer. */
		for (k = 0; cur && k < cur->n_layers; k++)
			if (!strcmp(cur->layers[k].device, d->name))
				break;
		if (!cur || k == cur->n_layers) {
			rc = badf(path, "device '%s' has neither a top nor a current checkpoint",
				  d->name);
			goto out;
		}
	}
	for (i = 0; i < nl; i++)
		if (L[i].top && !owner[i]) {
			rc = badf(path, "layer %zu is a writable top of no device", i);
			goto out;
		}
	if (state_area >= 0)
		blob_user[state_area] = -1;
	for (i = 0; i < r->n_ckpts; i++) {
		const vsm_rec_checkpoint *c = &r->ckpts[i];
		const vsm_rec_checkpoint *p = c;
		size_t steps = 0;

		for (j = 0; j < i; j++)
			if (!strcmp(r->ckpts[j].name, c->name)) {
				rc = badf(path, "checkpoint '%s' is named twice", c->name);
				goto out;
			}
		if (c->parent && !ck_find(r, c->parent)) {
			rc = badf(path, "checkpoint '%s': parent '%s' is not in the bundle", c->name,
				  c->parent);
			goto out;
		}
		while (p && p->parent && steps++ <= r->n_ckpts)
			p = ck_find(r, p->parent);
		if (p && p->parent) {
			rc = badf(path, "checkpoint '%s': its parents form a cycle", c->name);
			goto out;
		}
		for (j = 0; j < c->n_layers; j++)
			for (k = 0; k < j; k++)
				if (!strcmp(c->layers[j].device, c->layers[k].device)) {
					rc = badf(path, "checkpoint '%s' names device '%s' twice",
						  c->name, c->layers[j].device);
					goto out;
				}
		if (c->state_key) {
			size_t b = (size_t)(intptr_t)c->state_key - 1;

			if (blob_user[b]) {
				rc = badf(path, "checkpoint '%s': state blob %zu is used twice",
					  c->name, b);
				goto out;
			}
			blob_user[b] = (int)i + 1;
		}
	}
out:
	free(owner);
	free(blob_user);
	return rc;
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

int ck_import(vsm_container **out, vsm_ctx *ctx, const char *path, const char *datastore,
	      const char *name, const vsm_bundle_opts *opts, const ck_import_how *how)
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
	uint32_t version;
	bfile f = { .fd = -1 };
	vsm_container *h = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_wf own = {0}, *wf = how && how->wf ? how->wf : &own;
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
	if ((rc = ck_bundle_read(&f, hdr, 8)) == 0 && memcmp(hdr, B_MAGIC, 8))
		rc = vsm_err(VSM_EINVAL, "'%s' is not a libvsm bundle", path);
	if (rc < 0 || (rc = ck_bundle_read(&f, hdr + 8, sizeof(hdr) - 8)) < 0)
		goto out;
	if (vsm__get_le32(hdr + 56) != vsm__crc32(hdr, 56)) {
		rc = vsm_err(VSM_ECORRUPT, "bundle '%s': header is damaged", path);
		goto out;
	}
	version = vsm__get_le32(hdr + 8);
	if (version < B_VERSION_MIN || version > B_VERSION || vsm__get_le32(hdr + 12) != B_HDR) {
		rc = vsm_err(VSM_EVERSION, "bundle '%s': format version %u is not supported", path,
			     version);
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
	if ((rc = ck_bundle_read(&f, json, (size_t)mlen)) < 0)
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
	    json_object_get_int(jget(m, "version", json_type_int, false)) != (int)version) {
		rc = badf(path, "not a JSON object of format libvsm-bundle version %u", version);
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
		/* Version 2 on: every layer's digest; before, none. */
		if (version >= 2) {
			const char *dg = jstrv(e, "digest");

			if (!hex_digest(dg)) {
				rc = badf(path, "layer %zu: digest is missing or is not 64 lowercase "
					  "hex digits", i);
				goto out;
			}
			memcpy(L[i].digest, dg, sizeof(L[i].digest));
		}
		if (cid && !(L[i].cid = vsm__strdup(cid))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
		/* A bottom layer whose ID is derived from its content: the
		 * section must hash to it, and a golden image of the target
		 * with that ID may stand in for it. */
		{
			uint8_t bin[VSM_COW_CID_LEN];

			L[i].content = cid && L[i].backing < 0 && !L[i].top &&
				       vsm_cow_cid_parse(cid, bin) && vsm_cow_cid_is_content(bin);
		}
		if (json_object_object_get_ex(e, "golden", NULL)) {
			const char *gn = jstrv(e, "golden");

			/* Only a bottom layer is a golden image, and its name is
			 * one vsm_image_import accepts: never a path. */
			if (!gn || !golden_name_ok(gn) || L[i].backing >= 0 || L[i].top) {
				rc = badf(path, "layer %zu: 'golden' is not a golden image name of a "
					  "bottom layer", i);
				goto out;
			}
			if (!(L[i].golden = vsm__strdup(gn))) {
				rc = -VSM_ENOMEM;
				goto out;
			}
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
		    /* A device added after the checkpoint has no layer in it. */
		    json_object_array_length(lays) == 0 || json_object_array_length(lays) > nd) {
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
		for (j = 0; j < json_object_array_length(lays); j++) {
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
	if ((rc = check_meaning(path, r, L, nl, state_area, nb)) < 0)
		goto out;

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

		if ((holder = reusable(ds, L, i, &k))) {
			L[i].have = true;
			snprintf(L[i].key, sizeof(L[i].key), "%s", k);
			memcpy(L[i].from, holder->uuid, sizeof(L[i].from));
		} else if (golden_found(ctx, ds, &L[i], L[i].key, sizeof(L[i].key))) {
			L[i].have = true;
			L[i].reused_golden = true;
		}
		if (json_object_object_get_ex(e, "allocated", &v) && v &&
		    json_object_is_type(v, json_type_int))
			f.total += json_object_get_uint64(v);
	}
	for (i = 0; i < nb; i++)
		f.total += blob_sizes[i];
	vsm__uuid_new(r->uuid);
	r->ctime = (int64_t)time(NULL);
	if (how && how->uuid) {
		memcpy(r->uuid, how->uuid, sizeof(r->uuid));
		r->migration = how->migration;
		r->ctime = how->ctime;
		r->thick = how->thick;
		if (vsm__ds_find(ds, NULL, r->uuid)) {
			rc = vsm_err(VSM_EEXISTS, "datastore '%s': container %s is already there",
				     datastore, r->uuid);
			goto out;
		}
	}
	if (wf == &own) {
		if ((rc = vsm__wf_begin(wf, ctx, "bundle-import", datastore, name)) < 0)
			goto out;
		began = true;
	}
	for (i = 0; i < nl; i++) {
		if (!L[i].have) {
			ck_name(dev_name, sizeof(dev_name), r->uuid, L[i].top ? "top" : "layer",
				vsm_format_name(L[i].format));
			if ((rc = ck_device_create(wf, ds, dev_name, L[i].size,
						   vsm_format_name(L[i].format),
						   L[i].backing >= 0 ? L[L[i].backing].key : NULL,
						   L[i].backing >= 0 ? L[L[i].backing].format : 0,
						   L[i].key)) < 0)
				goto abort;
		}
		if ((rc = ck_import_layer(&f, ds, &L[i], !L[i].have, &written)) < 0)
			goto abort;
		/* A reused layer was chosen for this digest: now it is verified. */
		if (L[i].digest[0] && strcmp(L[i].digest, L[i].got)) {
			rc = vsm_err(VSM_ECORRUPT, "bundle '%s': layer %zu (content ID %s) does not "
				     "match its digest", path, i, L[i].cid ? L[i].cid : "none");
			goto abort;
		}
		if (L[i].content && !L[i].content_ok) {
			rc = vsm_err(VSM_ECORRUPT, "bundle '%s': layer %zu claims the content-derived "
				     "ID %s, which its data does not hash to", path, i, L[i].cid);
			goto abort;
		}
		/* A new device, deleted if the import fails: its header may
		 * take the ID now. */
		if (!L[i].have && !L[i].top && L[i].cid &&
		    (rc = ck_stamp_cid(ds, L[i].key, L[i].format, L[i].cid)) < 0)
			goto abort;
	}
	for (i = 0; i < nb; i++) {
		uint64_t sum = 0;

		ck_name(dev_name, sizeof(dev_name), r->uuid, (int)i == state_area ? "state" : "blob",
			"raw");
		if ((rc = ck_device_create(wf, ds, dev_name, blob_sizes[i] ? blob_sizes[i] : 1, "raw",
					   NULL, 0, key)) < 0 ||
		    !(blob_keys[i] = vsm__strdup(key))) {
			rc = rc < 0 ? rc : -VSM_ENOMEM;
			goto abort;
		}
		if ((rc = ck_import_blob(&f, ds, key, blob_sizes[i], &sum, &written)) < 0)
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

		if ((rc = ck_bundle_read(&f, trailer, sizeof(trailer))) < 0)
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
		if (L[i].reused_golden) {
			/* The target's own golden image, as any container on it
			 * records one: unmanaged, never deleted by libvsm. */
			fl.key = L[i].key;
			fl.format = VSM_FORMAT_QCOW2;
			fl.cid = L[i].cid;
			if ((rc = ck_layer_put(r, &fl)) < 0)
				goto abort;
			continue;
		}
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
			/* What was written, bound to the cid it came with: a
			 * later import may reuse it (also from a version 1
			 * bundle: the digest is of the data, not the claim). */
			if (L[i].cid)
				memcpy(fl.digest, L[i].got, sizeof(fl.digest));
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
			if ((rc = ck_device_create(wf, ds, dev_name, d->size, "qcow2", base,
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
		if ((rc = ck_device_create(wf, ds, dev_name, r->state_size, "raw", NULL, 0,
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
	if ((rc = vsm__wf_undo(wf, VSM_WF_UUID_FREE, r->uuid)) < 0 ||
	    (rc = vsm__ds_insert_record(ctx, ds, r)) < 0 ||
	    (out && (rc = vsm__container_new(&h, ctx, datastore, r)) < 0) ||
	    (wf == &own && (rc = vsm__wf_end(wf)) < 0))
		goto abort;
	began = false;
	if (f.progress && f.done < f.total)
		ck_bundle_tick(&f, f.total - f.done);
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
		vsm__wf_abort(wf);
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
	for (i = 0; i < nl && L; i++) {
		free(L[i].cid);
		free(L[i].golden);
	}
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

VSM_API int vsm_bundle_import(vsm_container **out, vsm_ctx *ctx, const char *path,
			      const char *datastore, const char *name,
			      const vsm_bundle_opts *opts)
{
	return ck_import(out, ctx, path, datastore, name, opts, NULL);
}
