/*
 * The backup file (doc/backup.md): a bundle's framing with its own magic
 * — a 64-byte header, a JSON manifest, one sparse section per device in
 * the layer-section format of bundles, the blobs, a trailer — and the
 * strict reading of its manifest: a backup from elsewhere is checked in
 * full before anything is made from it.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bk.h"

#define BK_SIZE_MAX (1ull << 56)  /* the qcow2 engine's limit */
#define BK_DEVICES_MAX 64

void bk_manifest_free(bk_manifest *m)
{
	size_t i;

	free(m->container);
	free(m->checkpoint);
	free(m->base_checkpoint);
	for (i = 0; i < m->n_devs; i++)
		free(m->devs[i].name);
	free(m->devs);
	for (i = 0; i < m->n_tree; i++) {
		free(m->tree[i].name);
		free(m->tree[i].parent);
	}
	free(m->tree);
	memset(m, 0, sizeof(*m));
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *jsum(uint64_t v)
{
	char hex[17];

	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)v);
	return json_object_new_string(hex);
}

static json_object *encode(const bk_manifest *m)
{
	json_object *o = json_object_new_object(), *p = json_object_new_object();
	json_object *devs = json_object_new_array(), *tree = json_object_new_array();
	size_t i;

	json_object_object_add(o, "format", jstr(BK_FORMAT));
	json_object_object_add(o, "version", json_object_new_int(BK_VERSION));
	json_object_object_add(o, "type", jstr(m->incremental ? "incremental" : "full"));
	json_object_object_add(o, "created", json_object_new_int64(m->created));
	json_object_object_add(o, "container", jstr(m->container));
	json_object_object_add(o, "source_uuid", jstr(m->source));
	json_object_object_add(p, "id", jstr(m->point));
	json_object_object_add(p, "checkpoint", jstr(m->checkpoint));
	json_object_object_add(p, "ctime", json_object_new_int64(m->ctime));
	json_object_object_add(p, "state_size", json_object_new_uint64(m->state_size));
	json_object_object_add(p, "state_sum", jsum(m->state_sum));
	json_object_object_add(o, "point", p);
	if (m->incremental) {
		json_object *b = json_object_new_object();

		json_object_object_add(b, "id", jstr(m->base));
		json_object_object_add(b, "checkpoint", jstr(m->base_checkpoint));
		json_object_object_add(o, "base", b);
	} else {
		json_object_object_add(o, "base", NULL);
	}
	json_object_object_add(o, "state_area", json_object_new_uint64(m->state_area));
	for (i = 0; i < m->n_devs; i++) {
		json_object *d = json_object_new_object();

		json_object_object_add(d, "name", jstr(m->devs[i].name));
		json_object_object_add(d, "size", json_object_new_uint64(m->devs[i].size));
		json_object_object_add(d, "changed", json_object_new_uint64(m->devs[i].changed));
		json_object_object_add(d, "extents", json_object_new_uint64(m->devs[i].extents));
		json_object_array_add(devs, d);
	}
	json_object_object_add(o, "devices", devs);
	for (i = 0; i < m->n_tree; i++) {
		json_object *t = json_object_new_object();

		json_object_object_add(t, "name", jstr(m->tree[i].name));
		json_object_object_add(t, "parent", jstr(m->tree[i].parent));
		json_object_object_add(t, "ctime", json_object_new_int64(m->tree[i].ctime));
		json_object_object_add(t, "point", m->tree[i].point[0] ? jstr(m->tree[i].point) :
					       NULL);
		json_object_array_add(tree, t);
	}
	json_object_object_add(o, "checkpoints", tree);
	return o;
}

int bk_write_head(bfile *f, const bk_manifest *m)
{
	json_object *o = encode(m);
	const char *json = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	uint8_t hdr[B_HDR] = {0};
	ck_sum ms;
	int rc;

	ck_sum_init(&ms);
	ck_sum_add(&ms, json, strlen(json));
	memcpy(hdr, BK_MAGIC, 8);
	vsm__put_le32(hdr + 8, BK_VERSION);
	vsm__put_le32(hdr + 12, B_HDR);
	vsm__put_le64(hdr + 16, strlen(json));
	vsm__put_le64(hdr + 24, ck_sum_value(&ms));
	vsm__put_le32(hdr + 56, vsm__crc32(hdr, 56));
	if ((rc = ck_bundle_write(f, hdr, sizeof(hdr))) == 0)
		rc = ck_bundle_write(f, json, strlen(json));
	json_object_put(o);
	return rc;
}

/* Decoding: every field present with its type, every value in range. */
typedef struct {
	const char *path;
	int rc;
} dec;

static int bad(dec *d, const char *what)
{
	if (d->rc == 0)
		d->rc = vsm_err(VSM_ECORRUPT, "backup '%s': manifest is not valid: %s", d->path,
				what);
	return d->rc;
}

static json_object *field(dec *d, json_object *o, const char *k, json_type t, bool null_ok)
{
	json_object *v = NULL;

	if (d->rc)
		return NULL;
	if (!json_object_object_get_ex(o, k, &v)) {
		char msg[96];

		snprintf(msg, sizeof(msg), "field '%s' is missing", k);
		bad(d, msg);
		return NULL;
	}
	if (!v && null_ok)
		return NULL;
	if (!json_object_is_type(v, t)) {
		char msg[96];

		snprintf(msg, sizeof(msg), "field '%s' has the wrong type", k);
		bad(d, msg);
		return NULL;
	}
	return v;
}

static char *dstr(dec *d, json_object *o, const char *k, bool null_ok)
{
	json_object *v = field(d, o, k, json_type_string, null_ok);
	char *s;

	if (!v)
		return NULL;
	if (!(s = strdup(json_object_get_string(v))))
		bad(d, "out of memory");
	return s;
}

/* A non-negative integer below @max (json-c saturates larger ones). */
static uint64_t dnum(dec *d, json_object *o, const char *k, uint64_t max)
{
	json_object *v = field(d, o, k, json_type_int, false);
	char msg[96];

	if (!v)
		return 0;
	if (json_object_get_int64(v) < 0 || json_object_get_uint64(v) > max ||
	    json_object_get_uint64(v) == UINT64_MAX) {
		snprintf(msg, sizeof(msg), "field '%s' is out of range", k);
		bad(d, msg);
		return 0;
	}
	return json_object_get_uint64(v);
}

static void duuid(dec *d, json_object *o, const char *k, char out[VSM_UUID_STRLEN + 1],
		  bool null_ok)
{
	char *s = dstr(d, o, k, null_ok);

	out[0] = '\0';
	if (s && !vsm__uuid_valid(s)) {
		char msg[96];

		snprintf(msg, sizeof(msg), "field '%s' is not a UUID", k);
		bad(d, msg);
	} else if (s) {
		memcpy(out, s, VSM_UUID_STRLEN + 1);
	}
	free(s);
}

static void dname(dec *d, const char *kind, const char *name)
{
	if (d->rc == 0 && name && vsm__name_check(kind, name) < 0) {
		char msg[160];

		snprintf(msg, sizeof(msg), "%s", vsm_error_last()->message);
		bad(d, msg);
	}
}

static uint64_t dsum(dec *d, json_object *o, const char *k)
{
	char *s = dstr(d, o, k, false), *end = NULL;
	uint64_t v = 0;

	if (s) {
		v = strtoull(s, &end, 16);
		if (strlen(s) != 16 || *end)
			bad(d, "a checksum is not 16 hex digits");
	}
	free(s);
	return v;
}

static void decode(dec *d, json_object *o, bk_manifest *m)
{
	json_object *p, *b, *arr;
	char *type;
	size_t i, j, n;

	type = dstr(d, o, "type", false);
	if (type && strcmp(type, "full") && strcmp(type, "incremental"))
		bad(d, "type is neither 'full' nor 'incremental'");
	m->incremental = type && !strcmp(type, "incremental");
	free(type);
	m->created = (int64_t)dnum(d, o, "created", INT64_MAX);
	m->container = dstr(d, o, "container", false);
	dname(d, "container", m->container);
	duuid(d, o, "source_uuid", m->source, false);
	if ((p = field(d, o, "point", json_type_object, false))) {
		duuid(d, p, "id", m->point, false);
		m->checkpoint = dstr(d, p, "checkpoint", false);
		dname(d, "checkpoint", m->checkpoint);
		m->ctime = (int64_t)dnum(d, p, "ctime", INT64_MAX);
		m->state_size = dnum(d, p, "state_size", BK_SIZE_MAX);
		m->state_sum = dsum(d, p, "state_sum");
	}
	b = field(d, o, "base", json_type_object, true);
	if (d->rc == 0 && !!b != m->incremental)
		bad(d, m->incremental ? "an incremental backup has no base" :
		    "a full backup has a base");
	if (b) {
		duuid(d, b, "id", m->base, false);
		m->base_checkpoint = dstr(d, b, "checkpoint", false);
		dname(d, "checkpoint", m->base_checkpoint);
		if (d->rc == 0 && !strcmp(m->base, m->point))
			bad(d, "the base is the backup point itself");
	}
	m->state_area = dnum(d, o, "state_area", BK_SIZE_MAX);
	if ((arr = field(d, o, "devices", json_type_array, false))) {
		n = json_object_array_length(arr);
		if (n == 0 || n > BK_DEVICES_MAX)
			bad(d, "the device count is out of range");
		else if (!(m->devs = calloc(n, sizeof(*m->devs))))
			bad(d, "out of memory");
		for (i = 0; d->rc == 0 && i < n; i++) {
			json_object *e = json_object_array_get_idx(arr, i);
			bk_mdev *v = &m->devs[i];

			m->n_devs = i + 1;
			if (!json_object_is_type(e, json_type_object)) {
				bad(d, "a device is not an object");
				break;
			}
			v->name = dstr(d, e, "name", false);
			dname(d, "device", v->name);
			v->size = dnum(d, e, "size", BK_SIZE_MAX);
			v->changed = dnum(d, e, "changed", v->size);
			v->extents = dnum(d, e, "extents", BK_SIZE_MAX);
			if (d->rc == 0 && v->size == 0)
				bad(d, "a device has size 0");
			for (j = 0; d->rc == 0 && j < i; j++)
				if (!strcmp(m->devs[j].name, v->name))
					bad(d, "two devices have the same name");
		}
	}
	if ((arr = field(d, o, "checkpoints", json_type_array, false))) {
		n = json_object_array_length(arr);
		if (n > 65536)
			bad(d, "too many checkpoints");
		else if (n && !(m->tree = calloc(n, sizeof(*m->tree))))
			bad(d, "out of memory");
		for (i = 0; d->rc == 0 && i < n; i++) {
			json_object *e = json_object_array_get_idx(arr, i);
			bk_mckpt *t = &m->tree[i];

			m->n_tree = i + 1;
			if (!json_object_is_type(e, json_type_object)) {
				bad(d, "a checkpoint is not an object");
				break;
			}
			t->name = dstr(d, e, "name", false);
			dname(d, "checkpoint", t->name);
			t->parent = dstr(d, e, "parent", true);
			dname(d, "checkpoint", t->parent);
			t->ctime = (int64_t)dnum(d, e, "ctime", INT64_MAX);
			duuid(d, e, "point", t->point, true);
		}
	}
}

int bk_read_head(bfile *f, bk_manifest *m)
{
	uint8_t hdr[B_HDR];
	uint64_t mlen;
	char *json = NULL;
	json_object *o = NULL, *v;
	dec d = { f->path, 0 };
	ck_sum ms;
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = ck_bundle_read(f, hdr, 8)) < 0)
		return rc;
	if (!memcmp(hdr, B_MAGIC, 8))
		return vsm_err(VSM_EINVAL, "'%s' is a bundle, not a backup: import it "
			       "(vsm_bundle_import, vsmctl import)", f->path);
	if (memcmp(hdr, BK_MAGIC, 8))
		return vsm_err(VSM_EINVAL, "'%s' is not a libvsm backup", f->path);
	if ((rc = ck_bundle_read(f, hdr + 8, sizeof(hdr) - 8)) < 0)
		return rc;
	if (vsm__get_le32(hdr + 56) != vsm__crc32(hdr, 56))
		return vsm_err(VSM_ECORRUPT, "backup '%s': header is damaged", f->path);
	if (vsm__get_le32(hdr + 8) != BK_VERSION || vsm__get_le32(hdr + 12) != B_HDR)
		return vsm_err(VSM_EVERSION, "backup '%s': format version %u is not supported",
			       f->path, vsm__get_le32(hdr + 8));
	mlen = vsm__get_le64(hdr + 16);
	if (mlen == 0 || mlen > B_MANIFEST_MAX)
		return vsm_err(VSM_ECORRUPT, "backup '%s': header is damaged", f->path);
	if (!(json = calloc(1, (size_t)mlen + 1)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	if ((rc = ck_bundle_read(f, json, (size_t)mlen)) < 0)
		goto out;
	ck_sum_init(&ms);
	ck_sum_add(&ms, json, (size_t)mlen);
	if (ck_sum_value(&ms) != vsm__get_le64(hdr + 24)) {
		rc = vsm_err(VSM_ECORRUPT, "backup '%s': manifest fails its checksum", f->path);
		goto out;
	}
	o = json_tokener_parse(json);
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "format", &v) || !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), BK_FORMAT) ||
	    !json_object_object_get_ex(o, "version", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) != BK_VERSION) {
		rc = vsm_err(VSM_ECORRUPT, "backup '%s': manifest is not a JSON object of format "
			     "%s version %d", f->path, BK_FORMAT, BK_VERSION);
		goto out;
	}
	decode(&d, o, m);
	rc = d.rc;
out:
	json_object_put(o);
	free(json);
	if (rc < 0)
		bk_manifest_free(m);
	return rc;
}

int bk_write_trailer(bfile *f)
{
	uint8_t t[24];

	memcpy(t, B_END, 8);
	vsm__put_le64(t + 8, f->pos);
	vsm__put_le64(t + 16, ck_sum_value(&f->sum));
	return ck_bundle_write(f, t, sizeof(t));
}

int bk_read_trailer(bfile *f)
{
	uint64_t pos = f->pos;
	ck_sum at = f->sum;
	uint8_t t[24], extra;
	ssize_t n;
	int rc;

	if ((rc = ck_bundle_read(f, t, sizeof(t))) < 0)
		return rc;
	if (memcmp(t, B_END, 8) || vsm__get_le64(t + 8) != pos ||
	    vsm__get_le64(t + 16) != ck_sum_value(&at))
		return vsm_err(VSM_ECORRUPT, "backup '%s': trailer does not match the file",
			       f->path);
	while ((n = read(f->fd, &extra, 1)) < 0 && errno == EINTR)
		;
	if (n != 0)
		return vsm_err(VSM_ECORRUPT, "backup '%s' has bytes after its trailer", f->path);
	return 0;
}
