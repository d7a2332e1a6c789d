/*
 * Container record <-> JSON. The JSON is the payload of a checksummed
 * record slot (see meta.c); here we only care that it is well formed and
 * that every name, key and size in it is one we would have written.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "record.h"
#include "strmap.h"

static void rec_device_clear(vsm_rec_device *d)
{
	size_t i;

	free(d->name);
	free(d->key);
	for (i = 0; i < d->chain_len; i++)
		free(d->chain[i].key);
	free(d->chain);
}

static void rec_deploy_clear(vsm_rec_deploy *d)
{
	free(d->device);
	free(d->host);
	free(d->uri);
	free(d->path);
	free(d->xml);
	free(d->domain);
}

static void rec_ckpt_clear(vsm_rec_checkpoint *c)
{
	size_t i;

	free(c->name);
	free(c->parent);
	free(c->state_key);
	for (i = 0; i < c->n_layers; i++) {
		free(c->layers[i].device);
		free(c->layers[i].key);
	}
	free(c->layers);
}

static void rec_frozen_clear(vsm_rec_frozen *l)
{
	free(l->key);
	free(l->backing);
	free(l->cid);
}

void vsm_record_free(vsm_record *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n_ckpts; i++)
		rec_ckpt_clear(&r->ckpts[i]);
	free(r->ckpts);
	free(r->ckpt_current);
	for (i = 0; i < r->n_layers; i++)
		rec_frozen_clear(&r->layers[i]);
	free(r->layers);
	free(r->name);
	free(r->state_key);
	for (i = 0; i < r->n_devices; i++)
		rec_device_clear(&r->devices[i]);
	free(r->devices);
	for (i = 0; i < r->n_deploys; i++)
		rec_deploy_clear(&r->deploys[i]);
	free(r->deploys);
	free(r->attached_host);
	free(r->cont);
	if (r->resv)
		free(r->resv->owner);
	free(r->resv);
	vsm_rec_group_free(r->group);
	free(r);
}

/* Field by field: listings and every metadata update copy records, and a
 * record with a long checkpoint tree is large. A field added to the
 * record must be added here too (test_records checks that a copy encodes
 * to the same JSON as its original). */
static bool dup_str(char **dst, const char *src)
{
	return !src || (*dst = strdup(src)) != NULL;
}

static void *dup_array(const void *src, size_t n, size_t size)
{
	void *p;

	if (!n)
		return NULL;
	if ((p = calloc(n, size)))
		memcpy(p, src, n * size);
	return p;
}

static bool copy_device(vsm_rec_device *d, const vsm_rec_device *s)
{
	size_t i;

	*d = *s;
	d->name = d->key = NULL;
	d->chain = NULL;
	d->chain_len = 0;
	if (!dup_str(&d->name, s->name) || !dup_str(&d->key, s->key))
		return false;
	if (s->chain_len && !(d->chain = calloc(s->chain_len, sizeof(*d->chain))))
		return false;
	for (d->chain_len = 0; d->chain_len < s->chain_len; d->chain_len++) {
		i = d->chain_len;
		d->chain[i].format = s->chain[i].format;
		if (!dup_str(&d->chain[i].key, s->chain[i].key))
			return false;
	}
	return true;
}

static bool copy_deploy(vsm_rec_deploy *d, const vsm_rec_deploy *s)
{
	memset(d, 0, sizeof(*d));
	return dup_str(&d->device, s->device) && dup_str(&d->host, s->host) &&
	       dup_str(&d->uri, s->uri) && dup_str(&d->path, s->path) &&
	       dup_str(&d->xml, s->xml) && dup_str(&d->domain, s->domain);
}

static bool copy_ckpt(vsm_rec_checkpoint *d, const vsm_rec_checkpoint *s)
{
	*d = *s;
	d->name = d->parent = d->state_key = NULL;
	d->layers = NULL;
	d->n_layers = 0;
	if (!dup_str(&d->name, s->name) || !dup_str(&d->parent, s->parent) ||
	    !dup_str(&d->state_key, s->state_key))
		return false;
	if (s->n_layers && !(d->layers = calloc(s->n_layers, sizeof(*d->layers))))
		return false;
	for (d->n_layers = 0; d->n_layers < s->n_layers; d->n_layers++) {
		vsm_rec_ckpt_layer *l = &d->layers[d->n_layers];

		if (!dup_str(&l->device, s->layers[d->n_layers].device) ||
		    !dup_str(&l->key, s->layers[d->n_layers].key)) {
			d->n_layers++;
			return false;
		}
	}
	return true;
}

static bool copy_frozen(vsm_rec_frozen *d, const vsm_rec_frozen *s)
{
	*d = *s;
	d->key = d->backing = d->cid = NULL;
	return dup_str(&d->key, s->key) && dup_str(&d->backing, s->backing) &&
	       dup_str(&d->cid, s->cid);
}

vsm_record *vsm_record_dup(const vsm_record *r)
{
	vsm_record *c = calloc(1, sizeof(*c));
	bool ok;

	if (!c) {
		vsm_err(VSM_ENOMEM, "out of memory");
		return NULL;
	}
	*c = *r;
	c->cont = NULL;
	c->name = c->state_key = c->attached_host = c->ckpt_current = NULL;
	c->devices = NULL;
	c->deploys = NULL;
	c->ckpts = NULL;
	c->layers = NULL;
	c->resv = NULL;
	c->group = NULL;
	c->n_devices = c->n_deploys = c->n_ckpts = c->n_layers = 0;
	if (r->group && !(c->group = vsm_rec_group_dup(r->group))) {
		vsm_record_free(c);
		return NULL;
	}
	if (r->resv) {
		ok = (c->resv = calloc(1, sizeof(*c->resv))) != NULL;
		if (ok) {
			*c->resv = *r->resv;
			c->resv->owner = NULL;
			ok = dup_str(&c->resv->owner, r->resv->owner);
		}
		if (!ok) {
			vsm_record_free(c);
			vsm_err(VSM_ENOMEM, "out of memory");
			return NULL;
		}
	}
	ok = dup_str(&c->name, r->name) && dup_str(&c->state_key, r->state_key) &&
	     dup_str(&c->attached_host, r->attached_host) &&
	     dup_str(&c->ckpt_current, r->ckpt_current) &&
	     (!r->n_cont || (c->cont = dup_array(r->cont, r->n_cont, sizeof(*r->cont))));
	if (ok && r->n_devices)
		ok = (c->devices = calloc(r->n_devices, sizeof(*c->devices))) != NULL;
	for (; ok && c->n_devices < r->n_devices; c->n_devices++)
		ok = copy_device(&c->devices[c->n_devices], &r->devices[c->n_devices]);
	if (ok && r->n_deploys)
		ok = (c->deploys = calloc(r->n_deploys, sizeof(*c->deploys))) != NULL;
	for (; ok && c->n_deploys < r->n_deploys; c->n_deploys++)
		ok = copy_deploy(&c->deploys[c->n_deploys], &r->deploys[c->n_deploys]);
	if (ok && r->n_ckpts)
		ok = (c->ckpts = calloc(r->n_ckpts, sizeof(*c->ckpts))) != NULL;
	for (; ok && c->n_ckpts < r->n_ckpts; c->n_ckpts++)
		ok = copy_ckpt(&c->ckpts[c->n_ckpts], &r->ckpts[c->n_ckpts]);
	if (ok && r->n_layers)
		ok = (c->layers = calloc(r->n_layers, sizeof(*c->layers))) != NULL;
	for (; ok && c->n_layers < r->n_layers; c->n_layers++)
		ok = copy_frozen(&c->layers[c->n_layers], &r->layers[c->n_layers]);
	if (!ok) {
		/* The counts include an element that failed half-way; its
		 * unset fields are NULL, which frees. */
		vsm_record_free(c);
		vsm_err(VSM_ENOMEM, "out of memory");
		return NULL;
	}
	return c;
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : json_object_new_null();
}

static void encode_checkpoints(json_object *o, const vsm_record *r)
{
	json_object *cps = json_object_new_array(), *lays = json_object_new_array();
	char sum[17];
	size_t i, j;

	for (i = 0; i < r->n_ckpts; i++) {
		const vsm_rec_checkpoint *c = &r->ckpts[i];
		json_object *jc = json_object_new_object(), *jl = json_object_new_array();

		json_object_object_add(jc, "name", jstr(c->name));
		json_object_object_add(jc, "parent", jstr(c->parent));
		json_object_object_add(jc, "ctime", json_object_new_int64(c->ctime));
		json_object_object_add(jc, "state_key", jstr(c->state_key));
		json_object_object_add(jc, "state_size", json_object_new_uint64(c->state_size));
		snprintf(sum, sizeof(sum), "%016llx", (unsigned long long)c->state_sum);
		json_object_object_add(jc, "state_sum", jstr(sum));
		if (c->point[0])
			json_object_object_add(jc, "point", jstr(c->point));
		for (j = 0; j < c->n_layers; j++) {
			json_object *e = json_object_new_object();

			json_object_object_add(e, "device", jstr(c->layers[j].device));
			json_object_object_add(e, "key", jstr(c->layers[j].key));
			json_object_array_add(jl, e);
		}
		json_object_object_add(jc, "layers", jl);
		json_object_array_add(cps, jc);
	}
	for (i = 0; i < r->n_layers; i++) {
		const vsm_rec_frozen *l = &r->layers[i];
		json_object *e = json_object_new_object();

		json_object_object_add(e, "key", jstr(l->key));
		json_object_object_add(e, "format", jstr(vsm_format_name(l->format)));
		json_object_object_add(e, "backing", jstr(l->backing));
		json_object_object_add(e, "backing_format",
				       jstr(l->backing ? vsm_format_name(l->backing_format) : NULL));
		json_object_object_add(e, "cid", jstr(l->cid));
		json_object_object_add(e, "managed", json_object_new_boolean(l->managed));
		if (l->digest[0])
			json_object_object_add(e, "digest", jstr(l->digest));
		json_object_array_add(lays, e);
	}
	json_object_object_add(o, "checkpoints", cps);
	json_object_object_add(o, "current_checkpoint", jstr(r->ckpt_current));
	json_object_object_add(o, "layers", lays);
}

int vsm_record_encode(char **out, const vsm_record *r)
{
	json_object *o = json_object_new_object(), *devs, *deps;
	size_t i, j;
	int rc = 0;

	if (!o)
		return vsm_err(VSM_ENOMEM, "out of memory");
	json_object_object_add(o, "version", json_object_new_int(VSM_RECORD_PAYLOAD_VERSION));
	json_object_object_add(o, "name", jstr(r->name));
	json_object_object_add(o, "uuid", jstr(r->uuid));
	json_object_object_add(o, "ctime", json_object_new_int64(r->ctime));
	json_object_object_add(o, "state_key", jstr(r->state_key));
	json_object_object_add(o, "state_size", json_object_new_uint64(r->state_size));
	devs = json_object_new_array();
	for (i = 0; i < r->n_devices; i++) {
		const vsm_rec_device *d = &r->devices[i];
		json_object *jd = json_object_new_object(), *chain = json_object_new_array();

		json_object_object_add(jd, "name", jstr(d->name));
		json_object_object_add(jd, "key", jstr(d->key));
		json_object_object_add(jd, "size", json_object_new_uint64(d->size));
		json_object_object_add(jd, "format", jstr(vsm_format_name(d->format)));
		for (j = 0; j < d->chain_len; j++) {
			json_object *jl = json_object_new_object();

			json_object_object_add(jl, "key", jstr(d->chain[j].key));
			json_object_object_add(jl, "format",
					       jstr(vsm_format_name(d->chain[j].format)));
			json_object_array_add(chain, jl);
		}
		json_object_object_add(jd, "chain", chain);
		json_object_array_add(devs, jd);
	}
	json_object_object_add(o, "devices", devs);
	json_object_object_add(o, "attached_host", jstr(r->attached_host));
	deps = json_object_new_array();
	for (i = 0; i < r->n_deploys; i++) {
		const vsm_rec_deploy *d = &r->deploys[i];
		json_object *jd = json_object_new_object();

		json_object_object_add(jd, "device", jstr(d->device));
		json_object_object_add(jd, "host", jstr(d->host));
		json_object_object_add(jd, "uri", jstr(d->uri));
		json_object_object_add(jd, "path", jstr(d->path));
		json_object_object_add(jd, "xml", jstr(d->xml));
		json_object_object_add(jd, "domain", jstr(d->domain));
		json_object_array_add(deps, jd);
	}
	json_object_object_add(o, "deployments", deps);
	json_object_object_add(o, "destroying", json_object_new_boolean(r->destroying));
	json_object_object_add(o, "lease_version", json_object_new_uint64(r->lease_version));
	/* Checkpoint fields only when there is something to say, so records
	 * of containers that never had a checkpoint stay as they were. */
	if (r->n_ckpts || r->n_layers || r->ckpt_current)
		encode_checkpoints(o, r);
	/* Optional fields only when set, so older records stay as they were. */
	if (r->thick)
		json_object_object_add(o, "thick", json_object_new_boolean(1));
	if (r->migration)
		json_object_object_add(o, "migration", json_object_new_string(
			r->migration == VSM_REC_MIG_INCOMING ? "incoming" : "outgoing"));
	if (r->resv) {
		json_object *jr = json_object_new_object();

		json_object_object_add(jr, "bytes", json_object_new_uint64(r->resv->bytes));
		json_object_object_add(jr, "expires_ms", json_object_new_int64(r->resv->expires_ms));
		json_object_object_add(jr, "owner", jstr(r->resv->owner));
		json_object_object_add(jr, "thick", json_object_new_boolean(r->resv->thick));
		json_object_object_add(o, "reservation", jr);
	}
	if (r->group)
		json_object_object_add(o, "group", vsm_rec_group_encode(r->group));

	*out = vsm__strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	if (!*out)
		rc = -VSM_ENOMEM;
	json_object_put(o);
	return rc;
}

/* --- decoding: every accessor checks the type and names the field --- */

static int get_field(json_object **out, json_object *o, const char *field,
		     json_type type, bool nullable, const char *what)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, field, &v) || (!v && !nullable))
		return vsm_err(VSM_ECORRUPT, "%s: field '%s' is missing", what, field);
	if (!v) {
		*out = NULL;
		return 0;
	}
	if (!json_object_is_type(v, type))
		return vsm_err(VSM_ECORRUPT, "%s: field '%s' has the wrong type", what, field);
	*out = v;
	return 0;
}

static int get_str(char **out, json_object *o, const char *field, bool nullable,
		   const char *what)
{
	json_object *v = NULL;
	int rc = get_field(&v, o, field, json_type_string, nullable, what);

	if (rc < 0)
		return rc;
	*out = NULL;
	if (v && !(*out = vsm__strdup(json_object_get_string(v))))
		return -VSM_ENOMEM;
	return 0;
}

static int get_u64(uint64_t *out, json_object *o, const char *field, const char *what)
{
	json_object *v = NULL;
	int rc = get_field(&v, o, field, json_type_int, false, what);

	if (rc < 0)
		return rc;
	if (json_object_get_int64(v) < 0 && json_object_get_uint64(v) == 0)
		return vsm_err(VSM_ECORRUPT, "%s: field '%s' is negative", what, field);
	*out = json_object_get_uint64(v);
	return 0;
}

/* A time in seconds: not negative, and within int64 (json-c saturates a
 * number too large for 64 bits, which would come back as -1 and be
 * refused by the next decode after a rewrite). */
static int get_time(int64_t *out, json_object *o, const char *field, const char *what)
{
	uint64_t v = 0;
	int rc = get_u64(&v, o, field, what);

	if (rc < 0)
		return rc;
	if (v > (uint64_t)INT64_MAX)
		return vsm_err(VSM_ECORRUPT, "%s: field '%s' is out of range", what, field);
	*out = (int64_t)v;
	return 0;
}

static int get_format(int *out, json_object *o, const char *field, const char *what)
{
	char *s = NULL;
	int rc = get_str(&s, o, field, false, what);

	if (rc == 0 && vsm_format_parse(out, s) < 0)
		rc = vsm_err(VSM_ECORRUPT, "%s: unknown format '%s'", what, s);
	free(s);
	return rc;
}

static int check_name(const char *kind, const char *name, const char *what)
{
	if (vsm__name_check(kind, name) < 0) {
		vsm__error_prefix("%s", what);
		return vsm_err(VSM_ECORRUPT, "%s", vsm_error_last()->message);
	}
	return 0;
}

static int decode_device(vsm_rec_device *d, json_object *jd, const char *what)
{
	json_object *chain;
	size_t i, n;
	int rc;

	if (!json_object_is_type(jd, json_type_object))
		return vsm_err(VSM_ECORRUPT, "%s: a device is not an object", what);
	if ((rc = get_str(&d->name, jd, "name", false, what)) < 0 ||
	    (rc = check_name("device", d->name, what)) < 0 ||
	    (rc = get_str(&d->key, jd, "key", false, what)) < 0 ||
	    (rc = get_u64(&d->size, jd, "size", what)) < 0 ||
	    (rc = get_format(&d->format, jd, "format", what)) < 0 ||
	    (rc = get_field(&chain, jd, "chain", json_type_array, false, what)) < 0)
		return rc;
	if (d->size == 0)
		return vsm_err(VSM_ECORRUPT, "%s: device '%s' has size 0", what, d->name);
	n = json_object_array_length(chain);
	if (n && !(d->chain = vsm__calloc(n, sizeof(*d->chain))))
		return -VSM_ENOMEM;
	for (i = 0; i < n; i++) {
		json_object *jl = json_object_array_get_idx(chain, i);

		d->chain_len = i + 1;
		if (!json_object_is_type(jl, json_type_object))
			return vsm_err(VSM_ECORRUPT, "%s: a chain layer is not an object", what);
		if ((rc = get_str(&d->chain[i].key, jl, "key", false, what)) < 0 ||
		    (rc = get_format(&d->chain[i].format, jl, "format", what)) < 0)
			return rc;
	}
	return 0;
}

static int decode_deploy(vsm_rec_deploy *d, json_object *jd, const char *what)
{
	int rc;

	if (!json_object_is_type(jd, json_type_object))
		return vsm_err(VSM_ECORRUPT, "%s: a deployment is not an object", what);
	if ((rc = get_str(&d->device, jd, "device", false, what)) < 0 ||
	    (rc = get_str(&d->host, jd, "host", false, what)) < 0 ||
	    (rc = get_str(&d->uri, jd, "uri", false, what)) < 0 ||
	    (rc = get_str(&d->path, jd, "path", true, what)) < 0 ||
	    (rc = get_str(&d->xml, jd, "xml", false, what)) < 0)
		return rc;
	/* Absent in records written before hot-plug was recorded. */
	if (json_object_object_get_ex(jd, "domain", NULL) &&
	    (rc = get_str(&d->domain, jd, "domain", true, what)) < 0)
		return rc;
	return 0;
}

static bool digest_valid(const char *s)
{
	size_t i;

	for (i = 0; i < VSM_REC_DIGEST_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[i] == '\0';
}

static int decode_frozen(vsm_rec_frozen *l, json_object *jl, const char *what)
{
	json_object *v = NULL;
	char *bf = NULL;
	int rc;

	if (!json_object_is_type(jl, json_type_object))
		return vsm_err(VSM_ECORRUPT, "%s: a layer is not an object", what);
	if ((rc = get_str(&l->key, jl, "key", false, what)) < 0 ||
	    (rc = get_format(&l->format, jl, "format", what)) < 0 ||
	    (rc = get_str(&l->backing, jl, "backing", true, what)) < 0 ||
	    (rc = get_str(&bf, jl, "backing_format", true, what)) < 0 ||
	    (rc = get_str(&l->cid, jl, "cid", true, what)) < 0 ||
	    (rc = get_field(&v, jl, "managed", json_type_boolean, false, what)) < 0)
		goto out;
	l->managed = json_object_get_boolean(v);
	if (!l->key[0] || (l->backing && !l->backing[0])) {
		rc = vsm_err(VSM_ECORRUPT, "%s: a layer has an empty key", what);
		goto out;
	}
	if (!!l->backing != !!bf || (bf && vsm_format_parse(&l->backing_format, bf) < 0)) {
		rc = vsm_err(VSM_ECORRUPT, "%s: layer '%s' has a bad backing format", what, l->key);
		goto out;
	}
	if ((l->cid && !vsm__uuid_valid(l->cid)) || (l->managed && !l->cid)) {
		rc = vsm_err(VSM_ECORRUPT, "%s: layer '%s' has a bad content ID", what, l->key);
		goto out;
	}
	/* Absent in records written before bundles carried digests. */
	if (json_object_object_get_ex(jl, "digest", NULL)) {
		if ((rc = get_field(&v, jl, "digest", json_type_string, false, what)) < 0)
			goto out;
		if (!digest_valid(json_object_get_string(v)) || !l->cid) {
			rc = vsm_err(VSM_ECORRUPT, "%s: layer '%s' has a bad digest", what, l->key);
			goto out;
		}
		memcpy(l->digest, json_object_get_string(v), VSM_REC_DIGEST_LEN + 1);
	}
out:
	free(bf);
	return rc;
}

static int decode_ckpt(vsm_rec_checkpoint *c, json_object *jc, const char *what)
{
	json_object *arr = NULL;
	char *sum = NULL, *end;
	size_t i, n;
	int rc;

	if (!json_object_is_type(jc, json_type_object))
		return vsm_err(VSM_ECORRUPT, "%s: a checkpoint is not an object", what);
	if ((rc = get_str(&c->name, jc, "name", false, what)) < 0 ||
	    (rc = check_name("checkpoint", c->name, what)) < 0 ||
	    (rc = get_str(&c->parent, jc, "parent", true, what)) < 0 ||
	    (rc = get_time(&c->ctime, jc, "ctime", what)) < 0 ||
	    (rc = get_str(&c->state_key, jc, "state_key", true, what)) < 0 ||
	    (rc = get_u64(&c->state_size, jc, "state_size", what)) < 0 ||
	    (rc = get_str(&sum, jc, "state_sum", false, what)) < 0 ||
	    (rc = get_field(&arr, jc, "layers", json_type_array, false, what)) < 0)
		goto out;
	c->state_sum = strtoull(sum, &end, 16);
	if (strlen(sum) != 16 || *end) {
		rc = vsm_err(VSM_ECORRUPT, "%s: checkpoint '%s' has a bad state checksum", what,
			     c->name);
		goto out;
	}
	/* Absent in records older than backups, and for checkpoints no
	 * backup was taken at. */
	if (json_object_object_get_ex(jc, "point", NULL)) {
		json_object *v = NULL;

		if ((rc = get_field(&v, jc, "point", json_type_string, false, what)) < 0)
			goto out;
		if (!vsm__uuid_valid(json_object_get_string(v))) {
			rc = vsm_err(VSM_ECORRUPT, "%s: checkpoint '%s' has a bad backup point ID",
				     what, c->name);
			goto out;
		}
		memcpy(c->point, json_object_get_string(v), VSM_UUID_STRLEN + 1);
	}
	n = json_object_array_length(arr);
	if (n && !(c->layers = vsm__calloc(n, sizeof(*c->layers)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);

		c->n_layers = i + 1;
		if (!json_object_is_type(e, json_type_object)) {
			rc = vsm_err(VSM_ECORRUPT, "%s: a checkpoint layer is not an object", what);
			goto out;
		}
		if ((rc = get_str(&c->layers[i].device, e, "device", false, what)) < 0 ||
		    (rc = get_str(&c->layers[i].key, e, "key", false, what)) < 0)
			goto out;
	}
out:
	free(sum);
	return rc;
}

/* The optional checkpoint fields, checked against each other: parents
 * exist and form no cycle, every frozen layer is in the layer table. */
static int decode_checkpoints(vsm_record *r, json_object *o, const char *what)
{
	vsm_strmap keys = {0}, names = {0};
	uint32_t *parent = NULL;
	uint8_t *mark = NULL;
	json_object *arr = NULL, *v = NULL;
	size_t i, j, n;
	int rc;

	if (!json_object_object_get_ex(o, "checkpoints", &arr) &&
	    !json_object_object_get_ex(o, "layers", &v) &&
	    !json_object_object_get_ex(o, "current_checkpoint", &v))
		return 0; /* a record from before checkpoints */
	if ((rc = get_field(&arr, o, "layers", json_type_array, false, what)) < 0)
		return rc;
	n = json_object_array_length(arr);
	if (n && !(r->layers = vsm__calloc(n, sizeof(*r->layers))))
		return -VSM_ENOMEM;
	/* Long checkpoint trees are checked in linear time: names and keys
	 * are found through maps, ancestry walked once per checkpoint. */
	for (i = 0; i < n; i++) {
		r->n_layers = i + 1;
		if ((rc = decode_frozen(&r->layers[i], json_object_array_get_idx(arr, i), what)) < 0)
			goto out;
		if (vsm_strmap_get(&keys, r->layers[i].key, NULL)) {
			rc = vsm_err(VSM_ECORRUPT, "%s: layer '%s' is listed twice", what,
				     r->layers[i].key);
			goto out;
		}
		if ((rc = vsm_strmap_put(&keys, r->layers[i].key, (uint32_t)i)) < 0)
			goto out;
	}
	if ((rc = get_field(&arr, o, "checkpoints", json_type_array, false, what)) < 0 ||
	    (rc = get_str(&r->ckpt_current, o, "current_checkpoint", true, what)) < 0)
		goto out;
	n = json_object_array_length(arr);
	if (n && (!(r->ckpts = vsm__calloc(n, sizeof(*r->ckpts))) ||
		  !(parent = vsm__calloc(n, sizeof(*parent))) ||
		  !(mark = vsm__calloc(n, 1)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		r->n_ckpts = i + 1;
		if ((rc = decode_ckpt(&r->ckpts[i], json_object_array_get_idx(arr, i), what)) < 0)
			goto out;
		if (vsm_strmap_get(&names, r->ckpts[i].name, NULL)) {
			rc = vsm_err(VSM_ECORRUPT, "%s: checkpoint '%s' is listed twice", what,
				     r->ckpts[i].name);
			goto out;
		}
		if ((rc = vsm_strmap_put(&names, r->ckpts[i].name, (uint32_t)i)) < 0)
			goto out;
	}
	for (i = 0; i < r->n_ckpts; i++) {
		const vsm_rec_checkpoint *c = &r->ckpts[i];

		parent[i] = UINT32_MAX;
		if (c->parent && !vsm_strmap_get(&names, c->parent, &parent[i])) {
			rc = vsm_err(VSM_ECORRUPT, "%s: checkpoint '%s' has an unknown ancestor",
				     what, c->name);
			goto out;
		}
		for (j = 0; j < c->n_layers; j++) {
			if (!vsm_record_device(r, c->layers[j].device) ||
			    !vsm_strmap_get(&keys, c->layers[j].key, NULL)) {
				rc = vsm_err(VSM_ECORRUPT, "%s: checkpoint '%s' names an unknown "
					     "device or layer", what, c->name);
				goto out;
			}
		}
	}
	/* mark: 0 not seen, 1 on the path being walked, 2 reaches a root. */
	for (i = 0; i < r->n_ckpts; i++) {
		uint32_t k = (uint32_t)i;

		while (k != UINT32_MAX && mark[k] == 0) {
			mark[k] = 1;
			k = parent[k];
		}
		if (k != UINT32_MAX && mark[k] == 1) {
			rc = vsm_err(VSM_ECORRUPT, "%s: checkpoint '%s' is its own ancestor", what,
				     r->ckpts[k].name);
			goto out;
		}
		for (k = (uint32_t)i; k != UINT32_MAX && mark[k] == 1; k = parent[k])
			mark[k] = 2;
	}
	if (r->ckpt_current && !vsm_strmap_get(&names, r->ckpt_current, NULL)) {
		rc = vsm_err(VSM_ECORRUPT, "%s: current checkpoint '%s' does not exist", what,
			     r->ckpt_current);
		goto out;
	}
	for (i = 0; i < r->n_layers; i++) {
		if (r->layers[i].backing && !vsm_strmap_get(&keys, r->layers[i].backing, NULL)) {
			rc = vsm_err(VSM_ECORRUPT, "%s: layer '%s' stands on unknown layer '%s'",
				     what, r->layers[i].key, r->layers[i].backing);
			goto out;
		}
	}
	rc = 0;
out:
	vsm_strmap_clear(&keys);
	vsm_strmap_clear(&names);
	free(parent);
	free(mark);
	return rc;
}

/* The optional "thick" flag and "reservation" object. */
static int decode_optional(vsm_record *r, json_object *o, const char *what)
{
	json_object *v = NULL, *jr = NULL;
	int rc;

	if (json_object_object_get_ex(o, "thick", &v)) {
		if ((rc = get_field(&v, o, "thick", json_type_boolean, false, what)) < 0)
			return rc;
		r->thick = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(o, "migration", &v)) {
		const char *m;

		if ((rc = get_field(&v, o, "migration", json_type_string, false, what)) < 0)
			return rc;
		m = json_object_get_string(v);
		if (!strcmp(m, "incoming"))
			r->migration = VSM_REC_MIG_INCOMING;
		else if (!strcmp(m, "outgoing"))
			r->migration = VSM_REC_MIG_OUTGOING;
		else
			return vsm_err(VSM_ECORRUPT, "%s: migration state '%s' is unknown", what, m);
	}
	if (json_object_object_get_ex(o, "group", &jr)) {
		if ((rc = get_field(&jr, o, "group", json_type_object, false, what)) < 0 ||
		    (rc = vsm_rec_group_decode(&r->group, jr, what)) < 0)
			return rc;
		if (json_object_object_get_ex(o, "reservation", NULL))
			return vsm_err(VSM_ECORRUPT, "%s: a group record holds a reservation", what);
	}
	if (!json_object_object_get_ex(o, "reservation", &jr))
		return 0;
	if ((rc = get_field(&jr, o, "reservation", json_type_object, false, what)) < 0)
		return rc;
	if (!(r->resv = vsm__calloc(1, sizeof(*r->resv))))
		return -VSM_ENOMEM;
	if ((rc = get_u64(&r->resv->bytes, jr, "bytes", what)) < 0 ||
	    (rc = get_time(&r->resv->expires_ms, jr, "expires_ms", what)) < 0 ||
	    (rc = get_str(&r->resv->owner, jr, "owner", false, what)) < 0 ||
	    (rc = get_field(&v, jr, "thick", json_type_boolean, false, what)) < 0)
		return rc;
	r->resv->thick = json_object_get_boolean(v);
	return 0;
}

int vsm_record_decode(vsm_record **out, const char *json, size_t len, const char *what)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = NULL, *v = NULL, *arr = NULL;
	vsm_record *r = NULL;
	char *uuid = NULL;
	uint64_t ver;
	size_t i, n;
	int rc;

	if (!tok)
		return vsm_err(VSM_ENOMEM, "out of memory");
	o = json_tokener_parse_ex(tok, json, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object)) {
		rc = vsm_err(VSM_ECORRUPT, "%s: payload is not a JSON object", what);
		goto out;
	}
	if ((rc = get_u64(&ver, o, "version", what)) < 0)
		goto out;
	if (ver != VSM_RECORD_PAYLOAD_VERSION) {
		rc = vsm_err(VSM_EVERSION, "%s: payload version %llu is not supported (this "
			     "library reads %d)", what, (unsigned long long)ver,
			     VSM_RECORD_PAYLOAD_VERSION);
		goto out;
	}
	if (!(r = vsm__calloc(1, sizeof(*r)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if ((rc = get_str(&r->name, o, "name", false, what)) < 0 ||
	    (!vsm_record_is_group_name(r->name) &&
	     (rc = check_name("container", r->name, what)) < 0) ||
	    (rc = get_str(&uuid, o, "uuid", false, what)) < 0)
		goto out;
	if (!vsm__uuid_valid(uuid)) {
		rc = vsm_err(VSM_ECORRUPT, "%s: uuid '%s' is malformed", what, uuid);
		goto out;
	}
	memcpy(r->uuid, uuid, VSM_UUID_STRLEN + 1);
	if ((rc = get_time(&r->ctime, o, "ctime", what)) < 0 ||
	    (rc = get_str(&r->state_key, o, "state_key", true, what)) < 0 ||
	    (rc = get_u64(&r->state_size, o, "state_size", what)) < 0 ||
	    (rc = get_str(&r->attached_host, o, "attached_host", true, what)) < 0 ||
	    (rc = get_u64(&r->lease_version, o, "lease_version", what)) < 0)
		goto out;
	if ((rc = get_field(&v, o, "destroying", json_type_boolean, false, what)) < 0)
		goto out;
	r->destroying = json_object_get_boolean(v);
	if ((rc = decode_optional(r, o, what)) < 0)
		goto out;
	if ((rc = get_field(&arr, o, "devices", json_type_array, false, what)) < 0)
		goto out;
	n = json_object_array_length(arr);
	if (!!r->group != vsm_record_is_group_name(r->name)) {
		rc = vsm_err(VSM_ECORRUPT, "%s: record '%s': its name and its group data disagree",
			     what, r->name);
		goto out;
	}
	if (r->group && (n || r->destroying || r->attached_host)) {
		rc = vsm_err(VSM_ECORRUPT, "%s: group record '%s' has devices or a host", what,
			     r->name);
		goto out;
	}
	if (r->resv && n) {
		rc = vsm_err(VSM_ECORRUPT, "%s: reservation '%s' has devices", what, r->name);
		goto out;
	}
	if (n == 0 && !r->resv && !r->group) {
		rc = vsm_err(VSM_ECORRUPT, "%s: container '%s' has no devices", what, r->name);
		goto out;
	}
	if (n && !(r->devices = vsm__calloc(n, sizeof(*r->devices)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		r->n_devices = i + 1;
		if ((rc = decode_device(&r->devices[i], json_object_array_get_idx(arr, i), what)) < 0)
			goto out;
	}
	if ((rc = get_field(&arr, o, "deployments", json_type_array, false, what)) < 0)
		goto out;
	n = json_object_array_length(arr);
	if (n && !(r->deploys = vsm__calloc(n, sizeof(*r->deploys)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		r->n_deploys = i + 1;
		if ((rc = decode_deploy(&r->deploys[i], json_object_array_get_idx(arr, i), what)) < 0)
			goto out;
		if (!vsm_record_device(r, r->deploys[i].device)) {
			rc = vsm_err(VSM_ECORRUPT, "%s: deployment names unknown device '%s'",
				     what, r->deploys[i].device);
			goto out;
		}
	}
	if ((rc = decode_checkpoints(r, o, what)) < 0)
		goto out;
	*out = r;
	r = NULL;
out:
	free(uuid);
	vsm_record_free(r);
	if (o)
		json_object_put(o);
	json_tokener_free(tok);
	return rc;
}

const vsm_rec_device *vsm_record_device(const vsm_record *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->n_devices; i++)
		if (!strcmp(r->devices[i].name, name))
			return &r->devices[i];
	return NULL;
}

const vsm_rec_deploy *vsm_record_deploy(const vsm_record *r, const char *device)
{
	size_t i;

	for (i = 0; i < r->n_deploys; i++)
		if (!strcmp(r->deploys[i].device, device))
			return &r->deploys[i];
	return NULL;
}

int vsm_record_set_deploy(vsm_record *r, const vsm_rec_deploy *d)
{
	vsm_rec_deploy copy = {0}, *grown;

	if (!(copy.device = vsm__strdup(d->device)) || !(copy.host = vsm__strdup(d->host)) ||
	    !(copy.uri = vsm__strdup(d->uri)) || (d->path && !(copy.path = vsm__strdup(d->path))) ||
	    !(copy.xml = vsm__strdup(d->xml)) ||
	    (d->domain && !(copy.domain = vsm__strdup(d->domain)))) {
		rec_deploy_clear(&copy);
		return -VSM_ENOMEM;
	}
	vsm_record_remove_deploy(r, d->device);
	grown = realloc(r->deploys, (r->n_deploys + 1) * sizeof(*grown));
	if (!grown) {
		rec_deploy_clear(&copy);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	r->deploys = grown;
	r->deploys[r->n_deploys++] = copy;
	return 0;
}

void vsm_record_remove_deploy(vsm_record *r, const char *device)
{
	size_t i;

	for (i = 0; i < r->n_deploys; i++) {
		if (strcmp(r->deploys[i].device, device))
			continue;
		rec_deploy_clear(&r->deploys[i]);
		memmove(&r->deploys[i], &r->deploys[i + 1],
			(r->n_deploys - i - 1) * sizeof(*r->deploys));
		r->n_deploys--;
		return;
	}
}

int vsm_record_set_host(vsm_record *r, const char *host)
{
	char *copy = NULL;

	if (host && !(copy = vsm__strdup(host)))
		return -VSM_ENOMEM;
	free(r->attached_host);
	r->attached_host = copy;
	return 0;
}
