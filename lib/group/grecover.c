/*
 * Group recovery (doc/groups.md): a group rebuilt from the backup sets of
 * a directory. Every manifest is read and the chain of sets checked
 * before anything is made; then each member is restored, the group is
 * made again with its plan, and the members are attached and deployed on
 * a host and their domains started in boot order. A journal entry on the
 * target datastore names each thing made (its undo), so a failure, or a
 * crash seen by the next context, leaves nothing behind.
 */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vsm/backup.h"
#include "vsm/recovery.h"
#include "gbackup.h"
#include "grecover.h"
#include "group_int.h"

void gr_set_free(gr_set *s)
{
	size_t i, j;

	free(s->file);
	free(s->group);
	free(s->point);
	free(s->base);
	for (i = 0; i < s->n_members; i++) {
		free(s->members[i].name);
		free(s->members[i].file);
		free(s->members[i].mac);
		free(s->members[i].network);
		free(s->members[i].ip);
		free(s->members[i].gateway);
		free(s->members[i].dns);
		for (j = 0; j < s->members[i].n_after; j++)
			free(s->members[i].after[j]);
		free(s->members[i].after);
	}
	free(s->members);
	memset(s, 0, sizeof(*s));
}

/* Strict reading of one manifest: every field with its type. */
typedef struct {
	const char *path;
	int rc;
} rd;

static void bad(rd *d, const char *what, const char *field)
{
	if (d->rc == 0)
		d->rc = vsm_err(VSM_ECORRUPT, "group backup manifest '%s' is not valid: %s%s%s",
				d->path, what, field ? " " : "", field ? field : "");
}

static json_object *get(rd *d, json_object *o, const char *k, json_type t, bool null_ok)
{
	json_object *v = NULL;

	if (d->rc)
		return NULL;
	if (!json_object_object_get_ex(o, k, &v)) {
		bad(d, "missing field", k);
		return NULL;
	}
	if (!v && null_ok)
		return NULL;
	if (!json_object_is_type(v, t)) {
		bad(d, "wrong type of field", k);
		return NULL;
	}
	return v;
}

static char *str(rd *d, json_object *o, const char *k, bool null_ok)
{
	json_object *v = get(d, o, k, json_type_string, null_ok);
	char *s;

	if (!v)
		return NULL;
	if (!(s = strdup(json_object_get_string(v))))
		bad(d, "out of memory", NULL);
	return s;
}

static void name_ok(rd *d, const char *kind, const char *s)
{
	if (d->rc == 0 && s && vsm__name_check(kind, s) < 0)
		bad(d, vsm_error_last()->message, NULL);
}

static void member(rd *d, json_object *e, gr_member *m)
{
	if (!json_object_is_type(e, json_type_object)) {
		bad(d, "a member is not an object", NULL);
		return;
	}
	m->name = str(d, e, "name", false);
	name_ok(d, "container", m->name);
	if ((m->file = str(d, e, "file", false)) && (strchr(m->file, '/') || m->file[0] == '.'))
		bad(d, "a member file is not a plain file name:", m->file);
	{
		char *u = str(d, e, "uuid", false);

		if (u && !vsm__uuid_valid(u))
			bad(d, "a member UUID is not a UUID", NULL);
		else if (u)
			memcpy(m->uuid, u, sizeof(m->uuid));
		free(u);
	}
}

static void plan(rd *d, json_object *e, gr_set *s)
{
	json_object *after;
	gr_member *m = NULL;
	char *name;
	size_t i, n;
	int64_t v;

	if (!json_object_is_type(e, json_type_object)) {
		bad(d, "a plan entry is not an object", NULL);
		return;
	}
	if (!(name = str(d, e, "member", false)))
		return;
	for (i = 0; i < s->n_members; i++)
		if (!strcmp(s->members[i].name, name))
			m = &s->members[i];
	free(name);
	if (!m) {
		bad(d, "a plan entry names no member", NULL);
		return;
	}
	if ((after = get(d, e, "priority", json_type_int, false))) {
		v = json_object_get_int64(after);
		if (v < 0 || v > 1000000)
			bad(d, "a boot priority is out of range", NULL);
		m->priority = (unsigned int)v;
	}
	if ((after = get(d, e, "prefix", json_type_int, false))) {
		v = json_object_get_int64(after);
		if (v < -1 || v > 128)
			bad(d, "a prefix length is out of range", NULL);
		m->prefix = (int)v;
	}
	m->mac = str(d, e, "mac", true);
	m->network = str(d, e, "network", true);
	m->ip = str(d, e, "ip", true);
	m->gateway = str(d, e, "gateway", true);
	m->dns = str(d, e, "dns", true);
	if ((after = get(d, e, "after", json_type_array, false))) {
		n = json_object_array_length(after);
		if (n > 1024 || (n && !(m->after = calloc(n, sizeof(*m->after))))) {
			bad(d, "too many boot dependencies", NULL);
			return;
		}
		for (i = 0; i < n && d->rc == 0; i++) {
			json_object *a = json_object_array_get_idx(after, i);

			if (!json_object_is_type(a, json_type_string)) {
				bad(d, "a boot dependency is not a name", NULL);
				break;
			}
			if (!(m->after[i] = strdup(json_object_get_string(a))))
				bad(d, "out of memory", NULL);
			m->n_after = i + 1;
			name_ok(d, "container", m->after[i]);
		}
	}
}

int gr_set_read(gr_set *s, const char *dir, const char *file)
{
	char path[4096];
	json_object *o = NULL, *arr, *v;
	rd d = { path, 0 };
	size_t i, j, n;

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (!(s->file = strdup(file)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	if (!(o = json_object_from_file(path))) {
		gr_set_free(s);
		return vsm_err(VSM_ECORRUPT, "group backup manifest '%s' is not JSON", path);
	}
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "format", &v) || !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), GB_FORMAT) ||
	    !json_object_object_get_ex(o, "version", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) != GB_VERSION)
		bad(&d, "not format " GB_FORMAT " version 1", NULL);
	s->group = str(&d, o, "group", false);
	{
		char *u = str(&d, o, "group_uuid", false);

		if (u && !vsm__uuid_valid(u))
			bad(&d, "group_uuid is not a UUID", NULL);
		else if (u)
			memcpy(s->group_uuid, u, sizeof(s->group_uuid));
		free(u);
	}
	s->point = str(&d, o, "point", false);
	name_ok(&d, "checkpoint", s->point);
	s->base = str(&d, o, "base", true);
	name_ok(&d, "checkpoint", s->base);
	if ((v = get(&d, o, "created", json_type_int, false)))
		s->created = json_object_get_int64(v);
	if ((arr = get(&d, o, "members", json_type_array, false))) {
		n = json_object_array_length(arr);
		if (n == 0 || n > 4096)
			bad(&d, "the member count is out of range", NULL);
		else if (!(s->members = calloc(n, sizeof(*s->members))))
			bad(&d, "out of memory", NULL);
		for (i = 0; i < n && d.rc == 0; i++) {
			s->n_members = i + 1;
			s->members[i].prefix = -1;
			member(&d, json_object_array_get_idx(arr, i), &s->members[i]);
			for (j = 0; j < i && d.rc == 0; j++)
				if (!strcmp(s->members[j].name, s->members[i].name) ||
				    !strcmp(s->members[j].uuid, s->members[i].uuid))
					bad(&d, "two members have the same name or UUID", NULL);
		}
	}
	if ((arr = get(&d, o, "plan", json_type_array, false)))
		for (i = 0; i < json_object_array_length(arr) && d.rc == 0; i++)
			plan(&d, json_object_array_get_idx(arr, i), s);
	json_object_put(o);
	if (d.rc < 0)
		gr_set_free(s);
	return d.rc;
}

static bool is_manifest(const char *name)
{
	size_t n = strlen(name), k = strlen(GB_SUFFIX);

	return name[0] != '.' && n > k && !strcmp(name + n - k, GB_SUFFIX);
}

int gr_sets_load(gr_set **out, size_t *count, const char *dir)
{
	struct dirent *e;
	gr_set *v = NULL;
	size_t n = 0, i;
	DIR *dp;
	int rc = 0;

	*out = NULL;
	*count = 0;
	if (!(dp = opendir(dir)))
		return vsm_err(errno == ENOENT ? VSM_ENOTFOUND : VSM_EIO, "group backups '%s': %s",
			       dir, strerror(errno));
	while (rc == 0 && (e = readdir(dp))) {
		gr_set *grown;

		if (!is_manifest(e->d_name))
			continue;
		if (!(grown = realloc(v, (n + 1) * sizeof(*v)))) {
			rc = vsm_err(VSM_ENOMEM, "out of memory");
			break;
		}
		v = grown;
		if ((rc = gr_set_read(&v[n], dir, e->d_name)) == 0)
			n++;
	}
	closedir(dp);
	for (i = 1; rc == 0 && i < n; i++)
		if (strcmp(v[i].group_uuid, v[0].group_uuid))
			rc = vsm_err(VSM_EINVAL, "'%s' holds backups of several groups ('%s' and "
				     "'%s'); give each group its own directory", dir, v[0].group,
				     v[i].group);
	if (rc == 0 && n == 0)
		rc = vsm_err(VSM_ENOTFOUND, "'%s' holds no group backup (no *%s)", dir, GB_SUFFIX);
	if (rc < 0) {
		for (i = 0; i < n; i++)
			gr_set_free(&v[i]);
		free(v);
		return rc;
	}
	*out = v;
	*count = n;
	return 0;
}

static gr_set *by_point(gr_set *v, size_t n, const char *point)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(v[i].point, point))
			return &v[i];
	return NULL;
}

int gr_chain(gr_set ***chain, size_t *len, gr_set *v, size_t n, const char *point,
	     const char *dir)
{
	gr_set *t = NULL, **c;
	size_t i, j, k;

	if (point && !(t = by_point(v, n, point)))
		return vsm_err(VSM_ENOTFOUND, "'%s' holds no group backup at point '%s'", dir,
			       point);
	/* The newest set no other set was taken since. */
	for (i = 0; !point && i < n; i++) {
		for (j = 0; j < n; j++)
			if (v[j].base && !strcmp(v[j].base, v[i].point))
				break;
		if (j == n && (!t || v[i].created > t->created))
			t = &v[i];
	}
	if (!t)
		return vsm_err(VSM_EINVAL, "'%s': the group backups form a loop", dir);
	if (!(c = calloc(n, sizeof(*c))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (k = 0; t; k++) {
		if (k == n) {
			free(c);
			return vsm_err(VSM_EINVAL, "'%s': the group backups form a loop", dir);
		}
		c[k] = t;
		if (!t->base)
			break;
		if (!(t = by_point(v, n, t->base))) {
			vsm_err(VSM_ENOTFOUND, "'%s': group backup '%s' was taken since point '%s', "
				"whose backup set is not there", dir, c[k]->file, c[k]->base);
			free(c);
			return -VSM_ENOTFOUND;
		}
	}
	/* Oldest (the full set) first. */
	for (i = 0; i < (k + 1) / 2; i++) {
		gr_set *x = c[i];

		c[i] = c[k - i];
		c[k - i] = x;
	}
	*chain = c;
	*len = k + 1;
	return 0;
}
