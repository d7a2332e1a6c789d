/*
 * Container handles: what their getters hand out and how long it lives
 * (strings interned, device and locator objects kept until the handle is
 * freed), staged updates, and the getters themselves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "becall.h"
#include "container_int.h"
#include "devimage.h"
#include "lease.h"
#include "workflow.h"

/* --- handles --- */

void vsm__locator_free(vsm_locator *loc)
{
	if (!loc)
		return;
	free(loc->uri);
	free(loc->path);
	free(loc->xml);
	free(loc->host);
	free(loc);
}

vsm_locator *vsm__locator_from(const vsm_rec_deploy *d)
{
	vsm_locator *loc = vsm__calloc(1, sizeof(*loc));

	if (!loc)
		return NULL;
	if (!(loc->uri = vsm__strdup(d->uri)) || !(loc->xml = vsm__strdup(d->xml)) ||
	    !(loc->host = vsm__strdup(d->host)) || (d->path && !(loc->path = vsm__strdup(d->path)))) {
		vsm__locator_free(loc);
		return NULL;
	}
	return loc;
}

/* @v (of *@cap elements of @elem bytes) with room for element @n. */
static void *room(void *v, size_t n, size_t *cap, size_t elem)
{
	size_t want = *cap ? 2 * *cap : 8;
	void *p;

	if (n < *cap)
		return v;
	if (!(p = realloc(v, want * elem))) {
		vsm_err(VSM_ENOMEM, "out of memory");
		return NULL;
	}
	*cap = want;
	return p;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* The handle's copy of @s (NULL for NULL): found, or made and kept. */
static int intern(vsm_container *c, const char *s, const char **out)
{
	char *copy, **v;
	size_t i;

	*out = NULL;
	if (!s)
		return 0;
	for (i = 0; i < c->n_strs; i++)
		if (!strcmp(c->strs[i], s)) {
			*out = c->strs[i];
			return 0;
		}
	if (!(v = room(c->strs, c->n_strs, &c->cap_strs, sizeof(*v))))
		return -VSM_ENOMEM;
	c->strs = v;
	if (!(copy = vsm__strdup(s)))
		return -VSM_ENOMEM;
	*out = c->strs[c->n_strs++] = copy;
	return 0;
}

/* The handle's locator for deployment @d (NULL for NULL), likewise. */
static int intern_locator(vsm_container *c, const vsm_rec_deploy *d, const vsm_locator **out)
{
	vsm_locator *loc, **v;
	size_t i;

	*out = NULL;
	if (!d)
		return 0;
	for (i = 0; i < c->n_locs; i++) {
		loc = c->locs[i];
		if (str_eq(loc->uri, d->uri) && str_eq(loc->path, d->path) &&
		    str_eq(loc->xml, d->xml) && str_eq(loc->host, d->host)) {
			*out = loc;
			return 0;
		}
	}
	if (!(v = room(c->locs, c->n_locs, &c->cap_locs, sizeof(*v))))
		return -VSM_ENOMEM;
	c->locs = v;
	if (!(loc = vsm__locator_from(d)))
		return -VSM_ENOMEM;
	*out = c->locs[c->n_locs++] = loc;
	return 0;
}

/* The handle's device object named @name, made if it has none. */
static int device_obj(vsm_container *c, const char *name, vsm_device **out)
{
	vsm_device *d, **v;
	size_t i;
	int rc;

	for (i = 0; i < c->n_all; i++)
		if (!strcmp(c->all[i]->name, name)) {
			*out = c->all[i];
			return 0;
		}
	if (!(v = room(c->all, c->n_all, &c->cap_all, sizeof(*v))))
		return -VSM_ENOMEM;
	c->all = v;
	if (!(d = vsm__calloc(1, sizeof(*d))))
		return -VSM_ENOMEM;
	if ((rc = intern(c, name, &d->name)) < 0) {
		free(d);
		return rc;
	}
	*out = c->all[c->n_all++] = d;
	return 0;
}

/* A copy of a record made ready to be the handle's state: everything
 * allocated, so that applying it cannot fail. */
struct vsm__handle_stage {
	vsm_record *rec;
	const char *name, *uuid, *host;
	vsm_device **devs; /* the handle's device objects, in record order */
	vsm_device *vals;  /* what each of them will read */
	size_t n;
};

void vsm__container_unstage(vsm__handle_stage *st)
{
	if (!st)
		return;
	vsm_record_free(st->rec);
	free(st->devs);
	free(st->vals);
	free(st);
}

/* Staging interns strings and may add device objects to the handle,
 * but changes nothing its getters show. */
int vsm__container_stage(vsm__handle_stage **out, vsm_container *c, const vsm_record *r)
{
	vsm__handle_stage *st = vsm__calloc(1, sizeof(*st));
	size_t i;
	int rc = -VSM_ENOMEM;

	*out = NULL;
	if (!st || !(st->rec = vsm_record_dup(r)))
		goto fail;
	st->n = st->rec->n_devices;
	if ((st->n && (!(st->devs = vsm__calloc(st->n, sizeof(*st->devs))) ||
		       !(st->vals = vsm__calloc(st->n, sizeof(*st->vals))))) ||
	    (rc = intern(c, st->rec->name, &st->name)) < 0 ||
	    (rc = intern(c, st->rec->uuid, &st->uuid)) < 0 ||
	    (rc = intern(c, st->rec->attached_host, &st->host)) < 0)
		goto fail;
	for (i = 0; i < st->n; i++) {
		const vsm_rec_device *rd = &st->rec->devices[i];
		vsm_device *v = &st->vals[i];

		if ((rc = device_obj(c, rd->name, &st->devs[i])) < 0 ||
		    (rc = intern(c, rd->key, &v->key)) < 0 ||
		    (rc = intern_locator(c, vsm_record_deploy(st->rec, rd->name), &v->loc)) < 0)
			goto fail;
		v->name = st->devs[i]->name;
		v->size = rd->size;
		v->format = rd->format;
	}
	*out = st;
	return 0;
fail:
	vsm__container_unstage(st);
	return rc;
}

void vsm__container_apply(vsm_container *c, vsm__handle_stage *st)
{
	size_t i;

	if (!st)
		return;
	for (i = 0; i < st->n; i++)
		*st->devs[i] = st->vals[i];
	free(c->devs);
	vsm_record_free(c->rec);
	c->rec = st->rec;
	c->devs = st->devs;
	c->n_devs = st->n;
	c->name = st->name;
	c->uuid = st->uuid;
	c->host = st->host;
	free(st->vals);
	free(st);
}

/* Make a copy of @r the handle's state; on failure it reads as before. */
int vsm__handle_set(vsm_container *c, const vsm_record *r)
{
	vsm__handle_stage *st;
	int rc = vsm__container_stage(&st, c, r);

	if (rc == 0)
		vsm__container_apply(c, st);
	return rc;
}

int vsm__container_new(vsm_container **out, vsm_ctx *ctx, const char *datastore,
		       const vsm_record *r)
{
	vsm_container *c = vsm__calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -VSM_ENOMEM;
	c->ctx = ctx;
	if (!(c->datastore = vsm__strdup(datastore)) || (rc = vsm__handle_set(c, r)) < 0) {
		vsm_container_free(c);
		return -VSM_ENOMEM;
	}
	*out = c;
	return 0;
}

int vsm__handle_new(vsm_container **out, vsm_ctx *ctx, const char *datastore,
		      const vsm_record *r)
{
	return vsm__container_new(out, ctx, datastore, r);
}

VSM_API void vsm_container_free(vsm_container *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n_all; i++)
		free(c->all[i]);
	for (i = 0; i < c->n_locs; i++)
		vsm__locator_free(c->locs[i]);
	for (i = 0; i < c->n_strs; i++)
		free(c->strs[i]);
	free(c->all);
	free(c->locs);
	free(c->strs);
	free(c->devs);
	vsm_record_free(c->rec);
	free(c->datastore);
	free(c);
}

VSM_API void vsm_container_list_free(vsm_container **list, size_t count)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < count; i++)
		vsm_container_free(list[i]);
	free(list);
}

/* --- getters --- */

vsm_ctx *vsm__container_ctx(const vsm_container *c)
{
	return c->ctx;
}

VSM_API const char *vsm_container_name(const vsm_container *c)
{
	return c ? c->name : NULL;
}

VSM_API const char *vsm_container_uuid(const vsm_container *c)
{
	return c ? c->uuid : NULL;
}

VSM_API const char *vsm_container_datastore(const vsm_container *c)
{
	return c ? c->datastore : NULL;
}

VSM_API const char *vsm_container_attached_host(const vsm_container *c)
{
	return c ? c->host : NULL;
}

VSM_API uint64_t vsm_container_state_size(const vsm_container *c)
{
	return c ? c->rec->state_size : 0;
}

VSM_API int64_t vsm_container_ctime(const vsm_container *c)
{
	return c ? c->rec->ctime : 0;
}

VSM_API size_t vsm_container_device_count(const vsm_container *c)
{
	return c ? c->n_devs : 0;
}

VSM_API const vsm_device *vsm_container_device(const vsm_container *c, size_t i)
{
	return c && i < c->n_devs ? c->devs[i] : NULL;
}

VSM_API const vsm_device *vsm_container_device_by_name(const vsm_container *c,
							const char *name)
{
	size_t i;

	for (i = 0; c && name && i < c->n_devs; i++)
		if (!strcmp(c->devs[i]->name, name))
			return c->devs[i];
	return NULL;
}

VSM_API const char *vsm_device_name(const vsm_device *d)
{
	return d ? d->name : NULL;
}

VSM_API uint64_t vsm_device_size(const vsm_device *d)
{
	return d ? d->size : 0;
}

VSM_API int vsm_device_format(const vsm_device *d)
{
	return d ? d->format : -1;
}

VSM_API const char *vsm_device_key(const vsm_device *d)
{
	return d ? d->key : NULL;
}

VSM_API const vsm_locator *vsm_device_locator(const vsm_device *d)
{
	return d ? d->loc : NULL;
}

VSM_API const char *vsm_locator_uri(const vsm_locator *loc)
{
	return loc ? loc->uri : NULL;
}

VSM_API const char *vsm_locator_path(const vsm_locator *loc)
{
	return loc ? loc->path : NULL;
}

VSM_API const char *vsm_locator_disk_xml(const vsm_locator *loc)
{
	return loc ? loc->xml : NULL;
}

VSM_API const char *vsm_locator_host(const vsm_locator *loc)
{
	return loc ? loc->host : NULL;
}

VSM_API void vsm_locator_free(vsm_locator *loc)
{
	vsm__locator_free(loc);
}

VSM_API int vsm_locator_set(vsm_locator *loc, const char *uri, const char *path,
			    const char *disk_xml)
{
	char *u = NULL, *p = NULL, *x = NULL;

	if (!loc || !uri || !disk_xml)
		return vsm_err(VSM_EINVAL, "vsm_locator_set: uri and disk_xml are required");
	if (!(u = vsm__strdup(uri)) || (path && !(p = vsm__strdup(path))) ||
	    !(x = vsm__strdup(disk_xml))) {
		free(u);
		free(p);
		return -VSM_ENOMEM;
	}
	free(loc->uri);
	free(loc->path);
	free(loc->xml);
	loc->uri = u;
	loc->path = p;
	loc->xml = x;
	return 0;
}

int vsm__container_move(vsm_container *c, const char *datastore, const vsm_record *r)
{
	vsm__handle_stage *st = NULL;
	char *name, **v;
	int rc;

	if ((rc = vsm__container_stage(&st, c, r)) < 0)
		return rc;
	if (!(v = room(c->strs, c->n_strs, &c->cap_strs, sizeof(*v))) ||
	    !(name = vsm__strdup(datastore))) {
		if (v)
			c->strs = v;
		vsm__container_unstage(st);
		return -VSM_ENOMEM;
	}
	/* The old name stays valid for whoever holds it, until the free. */
	c->strs = v;
	c->strs[c->n_strs++] = c->datastore;
	c->datastore = name;
	vsm__container_apply(c, st);
	return 0;
}
