/*
 * Container record <-> JSON. The JSON is the payload of a checksummed
 * record slot (see meta.c); here we only care that it is well formed and
 * that every name, key and size in it is one we would have written.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "record.h"

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
}

void vsm_record_free(vsm_record *r)
{
	size_t i;

	if (!r)
		return;
	free(r->name);
	free(r->state_key);
	for (i = 0; i < r->n_devices; i++)
		rec_device_clear(&r->devices[i]);
	free(r->devices);
	for (i = 0; i < r->n_deploys; i++)
		rec_deploy_clear(&r->deploys[i]);
	free(r->deploys);
	free(r->attached_host);
	free(r);
}

/* Copy through the encoder: one code path for every field, and a dup
 * only happens on metadata updates, never on the I/O path. */
vsm_record *vsm_record_dup(const vsm_record *r)
{
	vsm_record *copy = NULL;
	char *json = NULL;

	if (vsm_record_encode(&json, r) < 0)
		return NULL;
	if (vsm_record_decode(&copy, json, strlen(json), "record copy") == 0)
		copy->slot = r->slot;
	free(json);
	return copy;
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : json_object_new_null();
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
		json_object_array_add(deps, jd);
	}
	json_object_object_add(o, "deployments", deps);
	json_object_object_add(o, "destroying", json_object_new_boolean(r->destroying));
	json_object_object_add(o, "lease_version", json_object_new_uint64(r->lease_version));

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
	json_object *v;

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
	json_object *v;
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
	json_object *v;
	int rc = get_field(&v, o, field, json_type_int, false, what);

	if (rc < 0)
		return rc;
	if (json_object_get_int64(v) < 0 && json_object_get_uint64(v) == 0)
		return vsm_err(VSM_ECORRUPT, "%s: field '%s' is negative", what, field);
	*out = json_object_get_uint64(v);
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
	return 0;
}

int vsm_record_decode(vsm_record **out, const char *json, size_t len, const char *what)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = NULL, *v, *arr;
	vsm_record *r = NULL;
	char *uuid = NULL;
	uint64_t ver, ctime;
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
	    (rc = check_name("container", r->name, what)) < 0 ||
	    (rc = get_str(&uuid, o, "uuid", false, what)) < 0)
		goto out;
	if (!vsm__uuid_valid(uuid)) {
		rc = vsm_err(VSM_ECORRUPT, "%s: uuid '%s' is malformed", what, uuid);
		goto out;
	}
	memcpy(r->uuid, uuid, VSM_UUID_STRLEN + 1);
	if ((rc = get_u64(&ctime, o, "ctime", what)) < 0 ||
	    (rc = get_str(&r->state_key, o, "state_key", true, what)) < 0 ||
	    (rc = get_u64(&r->state_size, o, "state_size", what)) < 0 ||
	    (rc = get_str(&r->attached_host, o, "attached_host", true, what)) < 0 ||
	    (rc = get_u64(&r->lease_version, o, "lease_version", what)) < 0)
		goto out;
	r->ctime = (int64_t)ctime;
	if ((rc = get_field(&v, o, "destroying", json_type_boolean, false, what)) < 0)
		goto out;
	r->destroying = json_object_get_boolean(v);
	if ((rc = get_field(&arr, o, "devices", json_type_array, false, what)) < 0)
		goto out;
	n = json_object_array_length(arr);
	if (n == 0) {
		rc = vsm_err(VSM_ECORRUPT, "%s: container '%s' has no devices", what, r->name);
		goto out;
	}
	if (!(r->devices = vsm__calloc(n, sizeof(*r->devices)))) {
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
	    !(copy.xml = vsm__strdup(d->xml))) {
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
