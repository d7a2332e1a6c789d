/*
 * The "group" object of a consistency group's record (doc/groups.md):
 * members, their recovery plan and the group checkpoints taken. Decoding
 * is as strict as the container record's: every field is checked for
 * type and grammar, and a record that holds nonsense is refused with
 * -VSM_ECORRUPT naming the field, never half read.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "record.h"
#include "strmap.h"

void vsm_rec_gmember_clear(vsm_rec_gmember *m)
{
	size_t i;

	free(m->datastore);
	free(m->name);
	for (i = 0; i < m->n_after; i++)
		free(m->after[i]);
	free(m->after);
	free(m->mac);
	free(m->network);
	free(m->ip);
	free(m->gateway);
	free(m->dns);
}

static void ckpt_clear(vsm_rec_gckpt *c)
{
	size_t i;

	free(c->name);
	for (i = 0; i < c->n_members; i++)
		free(c->members[i].checkpoint);
	free(c->members);
}

void vsm_rec_group_free(vsm_rec_group *g)
{
	size_t i;

	if (!g)
		return;
	for (i = 0; i < g->n_members; i++)
		vsm_rec_gmember_clear(&g->members[i]);
	free(g->members);
	for (i = 0; i < g->n_ckpts; i++)
		ckpt_clear(&g->ckpts[i]);
	free(g->ckpts);
	free(g);
}

static bool dstr(char **dst, const char *src)
{
	*dst = NULL;
	return !src || (*dst = strdup(src)) != NULL;
}

vsm_rec_group *vsm_rec_group_dup(const vsm_rec_group *g)
{
	vsm_rec_group *c = calloc(1, sizeof(*c));
	size_t i, j;

	if (!c)
		goto fail;
	if (g->n_members && !(c->members = calloc(g->n_members, sizeof(*c->members))))
		goto fail;
	for (i = 0; i < g->n_members; i++) {
		const vsm_rec_gmember *s = &g->members[i];
		vsm_rec_gmember *d = &c->members[i];

		c->n_members = i + 1;
		memcpy(d->ds_uuid, s->ds_uuid, sizeof(d->ds_uuid));
		memcpy(d->uuid, s->uuid, sizeof(d->uuid));
		d->priority = s->priority;
		d->prefix = s->prefix;
		if (!dstr(&d->datastore, s->datastore) || !dstr(&d->name, s->name) ||
		    !dstr(&d->mac, s->mac) || !dstr(&d->network, s->network) ||
		    !dstr(&d->ip, s->ip) || !dstr(&d->gateway, s->gateway) ||
		    !dstr(&d->dns, s->dns))
			goto fail;
		if (s->n_after && !(d->after = calloc(s->n_after, sizeof(char *))))
			goto fail;
		for (j = 0; j < s->n_after; j++) {
			d->n_after = j + 1;
			if (!dstr(&d->after[j], s->after[j]))
				goto fail;
		}
	}
	if (g->n_ckpts && !(c->ckpts = calloc(g->n_ckpts, sizeof(*c->ckpts))))
		goto fail;
	for (i = 0; i < g->n_ckpts; i++) {
		const vsm_rec_gckpt *s = &g->ckpts[i];
		vsm_rec_gckpt *d = &c->ckpts[i];

		c->n_ckpts = i + 1;
		d->ctime = s->ctime;
		if (!dstr(&d->name, s->name))
			goto fail;
		if (s->n_members && !(d->members = calloc(s->n_members, sizeof(*d->members))))
			goto fail;
		for (j = 0; j < s->n_members; j++) {
			d->n_members = j + 1;
			memcpy(d->members[j].uuid, s->members[j].uuid, sizeof(d->members[j].uuid));
			if (!dstr(&d->members[j].checkpoint, s->members[j].checkpoint))
				goto fail;
		}
	}
	return c;
fail:
	vsm_rec_group_free(c);
	vsm_err(VSM_ENOMEM, "out of memory");
	return NULL;
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : json_object_new_null();
}

json_object *vsm_rec_group_encode(const vsm_rec_group *g)
{
	json_object *o = json_object_new_object(), *ms = json_object_new_array(),
		    *cs = json_object_new_array();
	size_t i, j;

	for (i = 0; i < g->n_members; i++) {
		const vsm_rec_gmember *m = &g->members[i];
		json_object *jm = json_object_new_object(), *boot = json_object_new_object(),
			    *after = json_object_new_array();

		json_object_object_add(jm, "datastore", jstr(m->datastore));
		json_object_object_add(jm, "datastore_uuid", jstr(m->ds_uuid));
		json_object_object_add(jm, "uuid", jstr(m->uuid));
		json_object_object_add(jm, "name", jstr(m->name));
		json_object_object_add(boot, "priority", json_object_new_int64(m->priority));
		for (j = 0; j < m->n_after; j++)
			json_object_array_add(after, jstr(m->after[j]));
		json_object_object_add(boot, "after", after);
		json_object_object_add(jm, "boot", boot);
		if (m->mac) {
			json_object *net = json_object_new_object();

			json_object_object_add(net, "mac", jstr(m->mac));
			json_object_object_add(net, "network", jstr(m->network));
			json_object_object_add(net, "ip", jstr(m->ip));
			json_object_object_add(net, "prefix", json_object_new_int64(m->prefix));
			json_object_object_add(net, "gateway", jstr(m->gateway));
			json_object_object_add(net, "dns", jstr(m->dns));
			json_object_object_add(jm, "net", net);
		} else {
			json_object_object_add(jm, "net", NULL);
		}
		json_object_array_add(ms, jm);
	}
	for (i = 0; i < g->n_ckpts; i++) {
		const vsm_rec_gckpt *c = &g->ckpts[i];
		json_object *jc = json_object_new_object(), *cm = json_object_new_array();

		json_object_object_add(jc, "name", jstr(c->name));
		json_object_object_add(jc, "ctime", json_object_new_int64(c->ctime));
		for (j = 0; j < c->n_members; j++) {
			json_object *e = json_object_new_object();

			json_object_object_add(e, "uuid", jstr(c->members[j].uuid));
			json_object_object_add(e, "checkpoint", jstr(c->members[j].checkpoint));
			json_object_array_add(cm, e);
		}
		json_object_object_add(jc, "members", cm);
		json_object_array_add(cs, jc);
	}
	json_object_object_add(o, "members", ms);
	json_object_object_add(o, "checkpoints", cs);
	return o;
}

/* --- decoding --- */

static int field(json_object **out, json_object *o, const char *name, json_type type,
		 bool nullable, const char *what)
{
	json_object *v = NULL;

	if (!json_object_is_type(o, json_type_object))
		return vsm_err(VSM_ECORRUPT, "%s: group: an entry is not an object", what);
	if (!json_object_object_get_ex(o, name, &v) || (!v && !nullable))
		return vsm_err(VSM_ECORRUPT, "%s: group: field '%s' is missing", what, name);
	if (v && !json_object_is_type(v, type))
		return vsm_err(VSM_ECORRUPT, "%s: group: field '%s' has the wrong type", what, name);
	*out = v;
	return 0;
}

static int str(char **out, json_object *o, const char *name, bool nullable, const char *what)
{
	json_object *v = NULL;
	int rc = field(&v, o, name, json_type_string, nullable, what);

	*out = NULL;
	if (rc < 0)
		return rc;
	if (v && !(*out = vsm__strdup(json_object_get_string(v))))
		return -VSM_ENOMEM;
	if (v && (!**out || strlen(*out) > 255))
		return vsm_err(VSM_ECORRUPT, "%s: group: field '%s' is empty or too long", what,
			       name);
	return 0;
}

static int uuid_field(char out[VSM_UUID_STRLEN + 1], json_object *o, const char *name,
		      const char *what)
{
	char *s = NULL;
	int rc = str(&s, o, name, false, what);

	if (rc == 0 && !vsm__uuid_valid(s))
		rc = vsm_err(VSM_ECORRUPT, "%s: group: field '%s' is not a UUID", what, name);
	if (rc == 0)
		memcpy(out, s, VSM_UUID_STRLEN + 1);
	free(s);
	return rc;
}

static int int_field(int64_t *out, json_object *o, const char *name, int64_t lo, int64_t hi,
		     const char *what)
{
	json_object *v = NULL;
	int rc = field(&v, o, name, json_type_int, false, what);

	if (rc < 0)
		return rc;
	*out = json_object_get_int64(v);
	if (*out < lo || *out > hi)
		return vsm_err(VSM_ECORRUPT, "%s: group: field '%s' is out of range", what, name);
	return 0;
}

static int name_field(char **out, json_object *o, const char *field_name, const char *kind,
		      const char *what)
{
	int rc = str(out, o, field_name, false, what);

	if (rc == 0 && vsm__name_check(kind, *out) < 0)
		rc = vsm_err(VSM_ECORRUPT, "%s: group: %s", what, vsm_error_last()->message);
	return rc;
}

/* "52:54:00:12:34:56" */
static bool mac_valid(const char *s)
{
	size_t i;

	if (strlen(s) != 17)
		return false;
	for (i = 0; i < 17; i++) {
		char c = s[i];

		if (i % 3 == 2 ? c != ':' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
					       (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

/* Printable text without quotes, angle brackets or backslashes (it
 * reaches XML and shell scripts on the recovery site). */
static bool text_valid(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || *s == 0x7f || strchr("\"'<>&\\", *s))
			return false;
	return true;
}

/* The plan's network fields of member @m, checked together. */
int vsm_rec_group_net_check(const vsm_rec_gmember *m, const char *what)
{
	if (!m->mac)
		return 0;
	if (!mac_valid(m->mac))
		return vsm_err(VSM_ECORRUPT, "%s: member '%s': MAC '%s' is not six hex pairs "
			       "separated by ':'", what, m->name, m->mac);
	if (!m->network || !text_valid(m->network))
		return vsm_err(VSM_ECORRUPT, "%s: member '%s': bad network name", what, m->name);
	if ((m->ip && !text_valid(m->ip)) || (m->gateway && !text_valid(m->gateway)) ||
	    (m->dns && !text_valid(m->dns)))
		return vsm_err(VSM_ECORRUPT, "%s: member '%s': bad IP, gateway or DNS text", what,
			       m->name);
	if (m->ip ? (m->prefix < 0 || m->prefix > 128) : m->prefix != -1)
		return vsm_err(VSM_ECORRUPT, "%s: member '%s': bad prefix length", what, m->name);
	return 0;
}

static int decode_member(vsm_rec_gmember *m, json_object *jm, const char *what)
{
	json_object *boot = NULL, *after = NULL, *net = NULL;
	size_t i, n;
	int rc;

	m->prefix = -1;
	if ((rc = str(&m->datastore, jm, "datastore", false, what)) < 0 ||
	    (rc = uuid_field(m->ds_uuid, jm, "datastore_uuid", what)) < 0 ||
	    (rc = uuid_field(m->uuid, jm, "uuid", what)) < 0 ||
	    (rc = name_field(&m->name, jm, "name", "container", what)) < 0 ||
	    (rc = field(&boot, jm, "boot", json_type_object, false, what)) < 0 ||
	    (rc = int_field(&m->priority, boot, "priority", 0, 1000000, what)) < 0 ||
	    (rc = field(&after, boot, "after", json_type_array, false, what)) < 0 ||
	    (rc = field(&net, jm, "net", json_type_object, true, what)) < 0)
		return rc;
	n = json_object_array_length(after);
	if (n && !(m->after = vsm__calloc(n, sizeof(char *))))
		return -VSM_ENOMEM;
	for (i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(after, i);

		if (!json_object_is_type(v, json_type_string) ||
		    vsm__name_check("container", json_object_get_string(v)) < 0)
			return vsm_err(VSM_ECORRUPT, "%s: group: member '%s' has a bad 'after' "
				       "entry", what, m->name);
		m->n_after = i + 1;
		if (!(m->after[i] = vsm__strdup(json_object_get_string(v))))
			return -VSM_ENOMEM;
	}
	if (!net)
		return 0;
	if ((rc = str(&m->mac, net, "mac", false, what)) < 0 ||
	    (rc = str(&m->network, net, "network", false, what)) < 0 ||
	    (rc = str(&m->ip, net, "ip", true, what)) < 0 ||
	    (rc = int_field(&m->prefix, net, "prefix", -1, 128, what)) < 0 ||
	    (rc = str(&m->gateway, net, "gateway", true, what)) < 0 ||
	    (rc = str(&m->dns, net, "dns", true, what)) < 0)
		return rc;
	return vsm_rec_group_net_check(m, what);
}

static int decode_ckpt(vsm_rec_gckpt *c, json_object *jc, const char *what)
{
	json_object *arr = NULL;
	size_t i, n;
	int rc;

	if ((rc = name_field(&c->name, jc, "name", "checkpoint", what)) < 0 ||
	    (rc = int_field(&c->ctime, jc, "ctime", 0, INT64_MAX, what)) < 0 ||
	    (rc = field(&arr, jc, "members", json_type_array, false, what)) < 0)
		return rc;
	n = json_object_array_length(arr);
	if (n && !(c->members = vsm__calloc(n, sizeof(*c->members))))
		return -VSM_ENOMEM;
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);

		c->n_members = i + 1;
		if ((rc = uuid_field(c->members[i].uuid, e, "uuid", what)) < 0 ||
		    (rc = name_field(&c->members[i].checkpoint, e, "checkpoint", "checkpoint",
				     what)) < 0)
			return rc;
	}
	return 0;
}

/* Names and UUIDs unique, 'after' naming other members, no boot cycle. */
static int cross_check(const vsm_rec_group *g, const char *what)
{
	vsm_strmap names = {0}, uuids = {0}, cks = {0};
	size_t i, j, k, round;
	int rc = 0;

	for (i = 0; i < g->n_members && rc == 0; i++) {
		if (vsm_strmap_get(&names, g->members[i].name, NULL) ||
		    vsm_strmap_get(&uuids, g->members[i].uuid, NULL))
			rc = vsm_err(VSM_ECORRUPT, "%s: group: member '%s' is listed twice", what,
				     g->members[i].name);
		else if ((rc = vsm_strmap_put(&names, g->members[i].name, (uint32_t)i)) == 0)
			rc = vsm_strmap_put(&uuids, g->members[i].uuid, (uint32_t)i);
	}
	for (i = 0; i < g->n_members && rc == 0; i++)
		for (j = 0; j < g->members[i].n_after && rc == 0; j++)
			if (!vsm_strmap_get(&names, g->members[i].after[j], NULL) ||
			    !strcmp(g->members[i].after[j], g->members[i].name))
				rc = vsm_err(VSM_ECORRUPT, "%s: group: member '%s' boots after '%s', "
					     "which is not another member", what,
					     g->members[i].name, g->members[i].after[j]);
	/* No cycle: n rounds of relaxing "depth(after) < depth(member)". */
	if (rc == 0 && g->n_members) {
		size_t *depth = vsm__calloc(g->n_members, sizeof(*depth));
		bool changed = true;

		if (!depth)
			rc = -VSM_ENOMEM;
		for (round = 0; rc == 0 && changed && round <= g->n_members; round++) {
			changed = false;
			for (i = 0; i < g->n_members; i++)
				for (j = 0; j < g->members[i].n_after; j++) {
					uint32_t a = 0;

					vsm_strmap_get(&names, g->members[i].after[j], &a);
					if (depth[i] <= depth[a]) {
						depth[i] = depth[a] + 1;
						changed = true;
					}
				}
		}
		if (rc == 0 && changed)
			rc = vsm_err(VSM_ECORRUPT, "%s: group: the boot order has a cycle", what);
		free(depth);
	}
	for (i = 0; i < g->n_ckpts && rc == 0; i++) {
		if (vsm_strmap_get(&cks, g->ckpts[i].name, NULL))
			rc = vsm_err(VSM_ECORRUPT, "%s: group: checkpoint '%s' is listed twice", what,
				     g->ckpts[i].name);
		else
			rc = vsm_strmap_put(&cks, g->ckpts[i].name, (uint32_t)i);
		for (j = 0; j < g->ckpts[i].n_members && rc == 0; j++)
			for (k = 0; k < j && rc == 0; k++)
				if (!strcmp(g->ckpts[i].members[j].uuid, g->ckpts[i].members[k].uuid))
					rc = vsm_err(VSM_ECORRUPT, "%s: group: checkpoint '%s' lists a "
						     "member twice", what, g->ckpts[i].name);
	}
	vsm_strmap_clear(&names);
	vsm_strmap_clear(&uuids);
	vsm_strmap_clear(&cks);
	return rc;
}

int vsm_rec_group_decode(vsm_rec_group **out, json_object *o, const char *what)
{
	json_object *ms = NULL, *cs = NULL;
	vsm_rec_group *g;
	size_t i, n;
	int rc;

	*out = NULL;
	if (!(g = vsm__calloc(1, sizeof(*g))))
		return -VSM_ENOMEM;
	if ((rc = field(&ms, o, "members", json_type_array, false, what)) < 0 ||
	    (rc = field(&cs, o, "checkpoints", json_type_array, false, what)) < 0)
		goto out;
	n = json_object_array_length(ms);
	if (n > 4096) {
		rc = vsm_err(VSM_ECORRUPT, "%s: group: too many members", what);
		goto out;
	}
	if (n && !(g->members = vsm__calloc(n, sizeof(*g->members)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		g->n_members = i + 1;
		if ((rc = decode_member(&g->members[i], json_object_array_get_idx(ms, i), what)) < 0)
			goto out;
	}
	n = json_object_array_length(cs);
	if (n && !(g->ckpts = vsm__calloc(n, sizeof(*g->ckpts)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		json_object *jc = json_object_array_get_idx(cs, i);

		g->n_ckpts = i + 1;
		if (!json_object_is_type(jc, json_type_object)) {
			rc = vsm_err(VSM_ECORRUPT, "%s: group: a checkpoint is not an object", what);
			goto out;
		}
		if ((rc = decode_ckpt(&g->ckpts[i], jc, what)) < 0)
			goto out;
	}
	if ((rc = cross_check(g, what)) < 0)
		goto out;
	*out = g;
	g = NULL;
out:
	vsm_rec_group_free(g);
	return rc;
}

bool vsm_record_is_group_name(const char *name)
{
	size_t n = strlen(VSM_REC_GROUP_PREFIX);
	vsm__saved_error saved;
	bool ok;

	if (!name || strncmp(name, VSM_REC_GROUP_PREFIX, n))
		return false;
	vsm__error_save(&saved);
	ok = vsm__name_check("group", name + n) == 0;
	vsm__error_restore(&saved);
	return ok;
}
