/*
 * Containers and devices: create (a journalled workflow), destroy,
 * lookups, attach/detach, deploy/undeploy, and the handle getters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "becall.h"
#include "ops.h"
#include "devimage.h"
#include "lease.h"
#include "workflow.h"

#define DEFAULT_STATE_SIZE (4u << 20)

/* What a handle hands out through its getters. A call that updates the
 * handle (attach, deploy, refresh, a checkpoint, ...) swaps in new state
 * but never frees anything a getter returned: strings are interned in
 * the handle (an unchanged value keeps its pointer, a new one is added),
 * and device and locator objects are kept, so that a caller may hold
 * them, and pass them back into calls on the same handle, until the
 * handle is freed. A handle grows only by the distinct values it has
 * seen (new keys after a checkpoint, a new locator per deployment). */
struct vsm_device {
	const char *name; /* interned in the handle */
	const char *key;  /* interned in the handle */
	uint64_t size;
	int format;
	const vsm_locator *loc; /* NULL unless deployed; owned by the handle */
};

struct vsm_container {
	vsm_ctx *ctx;
	char *datastore;
	vsm_record *rec;     /* current record; internal, never handed out */
	/* The getters' view of @rec. */
	const char *name, *uuid, *host;
	vsm_device **devs;   /* current devices, in record order */
	size_t n_devs;
	/* Everything ever handed out, freed with the handle. */
	char **strs;
	size_t n_strs, cap_strs;
	vsm_locator **locs;
	size_t n_locs, cap_locs;
	vsm_device **all;
	size_t n_all, cap_all;
};

/* --- handles --- */

static void locator_free(vsm_locator *loc)
{
	if (!loc)
		return;
	free(loc->uri);
	free(loc->path);
	free(loc->xml);
	free(loc->host);
	free(loc);
}

static vsm_locator *locator_from(const vsm_rec_deploy *d)
{
	vsm_locator *loc = vsm__calloc(1, sizeof(*loc));

	if (!loc)
		return NULL;
	if (!(loc->uri = vsm__strdup(d->uri)) || !(loc->xml = vsm__strdup(d->xml)) ||
	    !(loc->host = vsm__strdup(d->host)) || (d->path && !(loc->path = vsm__strdup(d->path)))) {
		locator_free(loc);
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
	if (!(loc = locator_from(d)))
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
static int handle_set(vsm_container *c, const vsm_record *r)
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
	if (!(c->datastore = vsm__strdup(datastore)) || (rc = handle_set(c, r)) < 0) {
		vsm_container_free(c);
		return -VSM_ENOMEM;
	}
	*out = c;
	return 0;
}

static int handle_new(vsm_container **out, vsm_ctx *ctx, const char *datastore,
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
		locator_free(c->locs[i]);
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

/* --- validation --- */

static int check_opts(const vsm_container_opts *o, const char *name)
{
	size_t i, j;
	int rc;

	if (o->version == 0 || o->version > VSM_CONTAINER_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "container '%s': vsm_container_opts version %u is "
			       "not supported", name, o->version);
	if (o->flags & ~VSM_CONTAINER_CREATE_THIN)
		return vsm_err(VSM_EINVAL, "container '%s': unknown flags 0x%x", name, o->flags);
	if (o->n_devices == 0 || !o->devices)
		return vsm_err(VSM_EINVAL, "container '%s' needs at least one device", name);
	if (o->n_devices > 64)
		return vsm_err(VSM_EINVAL, "container '%s': %zu devices is more than 64", name,
			       o->n_devices);
	for (i = 0; i < o->n_devices; i++) {
		const vsm_device_spec *d = o->devices[i];

		if (!d)
			return vsm_err(VSM_EINVAL, "container '%s': device %zu is NULL", name, i);
		if (d->version == 0 || d->version > VSM_DEVICE_SPEC_VERSION)
			return vsm_err(VSM_EVERSION, "container '%s': vsm_device_spec version %u "
				       "is not supported", name, d->version);
		if ((rc = vsm__name_check("device", d->name)) < 0) {
			vsm__error_prefix("container '%s'", name);
			return rc;
		}
		if (d->size == 0 && !d->base)
			return vsm_err(VSM_EINVAL, "container '%s': device '%s' has size 0", name,
				       d->name);
		if (d->size > (UINT64_C(1) << 56))
			return vsm_err(VSM_EINVAL, "container '%s': device '%s' is larger than "
				       "64 PiB", name, d->name);
		if (!vsm_format_name(d->format))
			return vsm_err(VSM_EINVAL, "container '%s': device '%s' has unknown "
				       "format %d", name, d->name, d->format);
		if (d->base && d->format != VSM_FORMAT_QCOW2)
			return vsm_err(VSM_EINVAL, "container '%s': device '%s' has a base image, "
				       "so it must be qcow2", name, d->name);
		for (j = 0; j < i; j++)
			if (!strcmp(o->devices[j]->name, d->name))
				return vsm_err(VSM_EEXISTS, "container '%s': device '%s' is given "
					       "twice", name, d->name);
	}
	return 0;
}

/* --- create --- */

/* Create one backend device under the journal: the undo step is written
 * with the name before the device exists, then updated with its key. */
static int create_device(vsm_wf *wf, vsm_dstore *ds, const char *dev_name,
			 uint64_t size, const char *format, const vsm_rec_layer *base,
			 unsigned int flags, char key[VSM_BACKEND_KEY_MAX])
{
	return vsm__dev_create(wf, VSM_WF_DEVICE_DELETE, ds, dev_name, size, format,
			       base ? base->key : NULL,
			       base ? vsm_format_name(base->format) : NULL, flags, key);
}

/* A device's size and backing chain, resolved before anything is made:
 * with a base image the chain is the base and whatever it stands on. */
typedef struct {
	uint64_t size;
	vsm_rec_layer *chain;
	size_t chain_len;
} planned_device;

static int plan_device(vsm_dstore *ds, const char *container, const vsm_device_spec *d,
		       planned_device *p)
{
	vsm_rec_layer *below = NULL;
	uint64_t base_size = 0;
	size_t n = 0;
	int fmt = VSM_FORMAT_RAW, rc;

	memset(p, 0, sizeof(*p));
	p->size = d->size;
	if (!d->base)
		return 0;
	if ((rc = vsm__dev_probe(ds, d->base, NULL, &base_size, &fmt, &below, &n)) < 0) {
		vsm__error_prefix("container '%s': device '%s': base image '%s'", container,
				  d->name, d->base);
		return rc;
	}
	if (!(p->chain = vsm__calloc(n + 1, sizeof(*p->chain))) ||
	    !(p->chain[0].key = vsm__strdup(d->base))) {
		vsm__layers_free(below, n);
		return -VSM_ENOMEM;
	}
	p->chain[0].format = fmt;
	if (n)
		memcpy(&p->chain[1], below, n * sizeof(*below));
	free(below);
	p->chain_len = n + 1;
	if (p->size == 0)
		p->size = base_size;
	if (p->size < base_size)
		return vsm_err(VSM_EINVAL, "container '%s': device '%s' (%llu bytes) is smaller "
			       "than its base image '%s' (%llu bytes)", container, d->name,
			       (unsigned long long)p->size, d->base,
			       (unsigned long long)base_size);
	return 0;
}

/* The record takes over @p's chain. */
static int rec_add_device(vsm_record *r, const char *name, const char *key, int format,
			  planned_device *p)
{
	vsm_rec_device *d = &r->devices[r->n_devices];

	memset(d, 0, sizeof(*d));
	r->n_devices++;
	d->size = p->size;
	d->format = format;
	d->chain = p->chain;
	d->chain_len = p->chain_len;
	p->chain = NULL;
	p->chain_len = 0;
	if (!(d->name = vsm__strdup(name)) || !(d->key = vsm__strdup(key)))
		return -VSM_ENOMEM;
	return 0;
}

VSM_API int vsm_container_create(vsm_container **out, vsm_ctx *ctx, const char *datastore,
				 const char *name, const vsm_container_opts *opts)
{
	char key[VSM_BACKEND_KEY_MAX], dev_name[160];
	planned_device plan[64];
	vsm_record *r = NULL;
	vsm_container *h = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	uint64_t need, free_bytes = 0;
	size_t i, planned = 0;
	int rc;

	vsm__error_reset();
	if (!ctx || !datastore || !opts)
		return vsm_err(VSM_EINVAL, "vsm_container_create: NULL argument");
	if ((rc = vsm__name_check("container", name)) < 0 || (rc = check_opts(opts, name)) < 0)
		return rc;
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, datastore)) < 0 || (rc = vsm__ds_refresh(ctx, ds)) < 0)
		goto out;
	if (vsm__ds_find(ds, name, NULL)) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': container '%s' already exists",
			     datastore, name);
		goto out;
	}
	need = opts->state_size ? opts->state_size : DEFAULT_STATE_SIZE;
	for (i = 0; i < opts->n_devices; i++) {
		rc = plan_device(ds, name, opts->devices[i], &plan[i]);
		planned = i + 1;
		if (rc < 0)
			goto out;
		need += plan[i].size;
	}
	if (!(opts->flags & VSM_CONTAINER_CREATE_THIN)) {
		if ((rc = vsm__be_capacity(ds, NULL, &free_bytes)) < 0) {
			vsm__error_prefix("datastore '%s'", datastore);
			goto out;
		}
		if (need > free_bytes) {
			rc = vsm_err(VSM_ENOSPC, "datastore '%s': container '%s' needs %llu bytes "
				     "but only %llu are free (ask for thin provisioning to "
				     "overcommit)", datastore, name, (unsigned long long)need,
				     (unsigned long long)free_bytes);
			goto out;
		}
	}
	if (!(r = vsm__calloc(1, sizeof(*r))) ||
	    !(r->devices = vsm__calloc(opts->n_devices, sizeof(*r->devices))) ||
	    !(r->name = vsm__strdup(name))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	vsm__uuid_new(r->uuid);
	r->ctime = (int64_t)time(NULL);
	r->state_size = opts->state_size ? opts->state_size : DEFAULT_STATE_SIZE;

	if ((rc = vsm__wf_begin(&wf, ctx, "container-create", datastore, name)) < 0)
		goto out;
	for (i = 0; i < opts->n_devices; i++) {
		const vsm_device_spec *d = opts->devices[i];

		snprintf(dev_name, sizeof(dev_name), "%s-%s.%s", r->uuid, d->name,
			 vsm_format_name(d->format));
		if ((rc = create_device(&wf, ds, dev_name, plan[i].size, vsm_format_name(d->format),
					plan[i].chain_len ? &plan[i].chain[0] : NULL,
					VSM_BACKEND_DEVICE_THIN, key)) < 0 ||
		    (rc = rec_add_device(r, d->name, key, d->format, &plan[i])) < 0)
			goto abort;
	}
	snprintf(dev_name, sizeof(dev_name), "%s.state", r->uuid);
	if ((rc = create_device(&wf, ds, dev_name, r->state_size, "raw", NULL,
				VSM_BACKEND_DEVICE_THIN, key)) < 0)
		goto abort;
	if (!(r->state_key = vsm__strdup(key))) {
		rc = -VSM_ENOMEM;
		goto abort;
	}
	/* The name is claimed here, under the datastore's metadata lock: of
	 * two hosts creating it at once, one gets EEXISTS and rolls back. */
	/* Until the journal forgets the steps, a failure (or the next
	 * context) removes it all again: forgetting them is the commit point,
	 * so the handle is made before it. */
	if ((rc = vsm__wf_undo(&wf, VSM_WF_UUID_FREE, r->uuid)) < 0 ||
	    (rc = vsm__ds_insert_record(ctx, ds, r)) < 0 ||
	    (out && (rc = handle_new(&h, ctx, datastore, r)) < 0) ||
	    (rc = vsm__wf_end(&wf)) < 0)
		goto abort;
	vsm__log(ctx, VSM_LOG_INFO, "datastore '%s': container '%s' created (%s)", datastore,
		 name, r->uuid);
	if (out) {
		*out = h;
		h = NULL;
	}
	goto out;
abort:
	vsm__wf_abort(&wf);
out:
	vsm_container_free(h);
	for (i = 0; i < planned; i++)
		vsm__layers_free(plan[i].chain, plan[i].chain_len);
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}

/* --- lookups --- */

/* Datastores to search: the one named, or all registered. */
static int ds_names(vsm_ctx *ctx, const char *datastore, char ***names, size_t *n)
{
	if (datastore) {
		vsm_dstore *ds;
		int rc = vsm__ds_get(&ds, ctx, datastore);

		if (rc < 0)
			return rc;
		if (!(*names = vsm__calloc(1, sizeof(char *))) ||
		    !((*names)[0] = vsm__strdup(datastore))) {
			free(*names);
			return -VSM_ENOMEM;
		}
		*n = 1;
		return 0;
	}
	return vsm_catalog_strings(ctx->cat, names, n, "SELECT name FROM datastores ORDER BY "
				   "name", NULL);
}

/* Open and refresh one of the datastores a search walks. When the caller
 * named it, failure is the answer; when walking all of them, one
 * unreachable datastore must not hide the others: log it and return 1. */
static int walk_open(vsm_dstore **out, vsm_ctx *ctx, const char *name, bool named)
{
	int rc;

	if ((rc = vsm__ds_get(out, ctx, name)) == 0 && (rc = vsm__ds_refresh(ctx, *out)) == 0)
		return 0;
	if (named)
		return rc;
	vsm__log(ctx, VSM_LOG_WARN, "%s", vsm_error_last()->message);
	vsm__error_reset();
	return 1;
}

static int lookup(vsm_container **out, vsm_ctx *ctx, const char *datastore,
		  const char *name, const char *uuid)
{
	char **names = NULL, *damaged = NULL;
	size_t n = 0, i;
	vsm_record *found = NULL;
	const char *found_ds = NULL;
	int rc;

	if ((rc = ds_names(ctx, datastore, &names, &n)) < 0)
		return rc;
	for (i = 0; i < n; i++) {
		vsm_dstore *ds;
		vsm_record *r;

		if ((rc = walk_open(&ds, ctx, names[i], datastore != NULL)) < 0)
			goto out;
		if (rc > 0) {
			rc = 0;
			continue;
		}
		/* Two records bearing the name (0.1's races): say so, name
		 * both, and pick neither. */
		if (name && vsm__ds_find_name(ds, name, &r) == -VSM_EEXISTS) {
			rc = -VSM_EEXISTS;
			goto out;
		}
		vsm__error_reset();
		if ((r = vsm__ds_find(ds, name, uuid))) {
			if (found) {
				rc = vsm_err(VSM_EINVAL, "container name '%s' is ambiguous: it exists "
					     "on datastores '%s' and '%s'", name, found_ds, names[i]);
				goto out;
			}
			found = r;
			found_ds = names[i];
		} else if (ds->n_damaged && !damaged &&
			   asprintf(&damaged, "datastore '%s': container record in slot %u is "
				    "damaged (%s)", ds->name, ds->damaged[0],
				    ds->damaged_why[0]) < 0) {
			damaged = NULL;
		}
	}
	if (!found) {
		/* The container may be the one whose record we cannot read. */
		if (damaged)
			rc = vsm_err(VSM_ECORRUPT, "container '%s' not found; %s", name ? name : uuid,
				     damaged);
		else
			rc = vsm_err(VSM_ENOTFOUND, "container '%s' does not exist%s%s",
				     name ? name : uuid, datastore ? " on datastore " : "",
				     datastore ? datastore : "");
		goto out;
	}
	rc = handle_new(out, ctx, found_ds, found);
out:
	free(damaged);
	vsm_strv_free(names, n);
	return rc;
}

VSM_API int vsm_container_lookup(vsm_container **out, vsm_ctx *ctx, const char *datastore,
				 const char *name)
{
	int rc;

	vsm__error_reset();
	if (!out || !ctx || !name)
		return vsm_err(VSM_EINVAL, "vsm_container_lookup: NULL argument");
	vsm__ctx_lock(ctx);
	rc = lookup(out, ctx, datastore, name, NULL);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_container_lookup_by_uuid(vsm_container **out, vsm_ctx *ctx,
					 const char *uuid)
{
	int rc;

	vsm__error_reset();
	if (!out || !ctx || !uuid)
		return vsm_err(VSM_EINVAL, "vsm_container_lookup_by_uuid: NULL argument");
	if (!vsm__uuid_valid(uuid))
		return vsm_err(VSM_EINVAL, "'%s' is not a UUID", uuid);
	vsm__ctx_lock(ctx);
	rc = lookup(out, ctx, NULL, NULL, uuid);
	vsm__ctx_unlock(ctx);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	const vsm_container *x = *(vsm_container *const *)a, *y = *(vsm_container *const *)b;
	int c = strcmp(x->datastore, y->datastore);

	return c ? c : strcmp(x->rec->name, y->rec->name);
}

VSM_API int vsm_container_list(vsm_container ***out, size_t *count, vsm_ctx *ctx,
			       const char *datastore)
{
	char **names = NULL;
	size_t n = 0, i, j, total = 0;
	vsm_container **list = NULL, **grown;
	int rc;

	vsm__error_reset();
	if (!out || !count || !ctx)
		return vsm_err(VSM_EINVAL, "vsm_container_list: NULL argument");
	vsm__ctx_lock(ctx);
	if ((rc = ds_names(ctx, datastore, &names, &n)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		vsm_dstore *ds;

		if ((rc = walk_open(&ds, ctx, names[i], datastore != NULL)) < 0)
			goto fail;
		if (rc > 0) {
			rc = 0;
			continue;
		}
		for (j = 0; j < ds->n_damaged; j++)
			vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': container record in slot %u "
				 "is damaged (%s) and not listed", ds->name, ds->damaged[j],
				 ds->damaged_why[j]);
		if (!(grown = realloc(list, (total + ds->n_recs + 1) * sizeof(*grown)))) {
			rc = vsm_err(VSM_ENOMEM, "out of memory");
			goto fail;
		}
		list = grown;
		for (j = 0; j < ds->n_recs; j++) {
			if ((rc = handle_new(&list[total], ctx, ds->name, ds->recs[j])) < 0)
				goto fail;
			total++;
		}
	}
	if (total)
		qsort(list, total, sizeof(*list), by_name);
	*out = list ? list : vsm__calloc(1, sizeof(*list));
	*count = total;
	if (!*out)
		rc = -VSM_ENOMEM;
	goto out;
fail:
	vsm_container_list_free(list, total);
out:
	vsm_strv_free(names, n);
	vsm__ctx_unlock(ctx);
	return rc;
}

/* The container's current record, straight from its datastore. */
static int fresh(vsm_container *c, vsm_dstore **ds_out, vsm_record **out)
{
	vsm_record *r;
	int rc;

	if ((rc = vsm__ds_get(ds_out, c->ctx, c->datastore)) < 0 ||
	    (rc = vsm__ds_refresh(c->ctx, *ds_out)) < 0)
		return rc;
	r = vsm__ds_find(*ds_out, NULL, c->rec->uuid);
	if (!r)
		return vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' no longer exists",
			       c->datastore, c->rec->name);
	if (!(*out = vsm_record_dup(r)))
		return -VSM_ENOMEM;
	return 0;
}

VSM_API int vsm_container_refresh(vsm_container *c)
{
	vsm_dstore *ds;
	vsm_record *r = NULL;
	int rc;

	vsm__error_reset();
	if (!c)
		return vsm_err(VSM_EINVAL, "vsm_container_refresh: NULL argument");
	vsm__ctx_lock(c->ctx);
	if ((rc = fresh(c, &ds, &r)) == 0)
		rc = handle_set(c, r);
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

/* --- deploy / undeploy --- */

static char *host_uri(vsm_ctx *ctx, const char *host)
{
	char **v = NULL;
	size_t n = 0;
	char *uri = NULL;

	if (vsm_catalog_strings(ctx->cat, &v, &n, "SELECT hypervisor_uri FROM hosts WHERE "
				"name = ? AND hypervisor_uri IS NOT NULL", "s", host) == 0 && n)
		uri = vsm__strdup(v[0]);
	vsm_strv_free(v, n);
	return uri;
}

static void deploy_req_init(vsm_backend_deploy_req *req, const vsm_record *r,
			    const vsm_rec_device *d, const char *host, const char *hv_uri,
			    const char **keys, const char **formats)
{
	size_t i;

	memset(req, 0, sizeof(*req));
	req->version = VSM_BACKEND_DEPLOY_REQ_VERSION;
	req->host = host;
	req->host_uri = hv_uri;
	req->format = vsm_format_name(d->format);
	for (i = 0; i < d->chain_len; i++) {
		keys[i] = d->chain[i].key;
		formats[i] = vsm_format_name(d->chain[i].format);
	}
	req->chain_keys = keys;
	req->chain_formats = formats;
	req->chain_len = d->chain_len;
	(void)r;
}

static int undeploy_one(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r, const char *device)
{
	const vsm_rec_deploy *dep = vsm_record_deploy(r, device);
	const vsm_rec_device *d = vsm_record_device(r, device);
	const char *keys[64], *formats[64];
	vsm_backend_deploy_req req;
	char *hv;
	int rc;

	if (!dep || !d)
		return 0;
	if (d->chain_len > 64)
		return vsm_err(VSM_EINVAL, "device '%s': backing chain too deep", device);
	hv = host_uri(ctx, dep->host);
	deploy_req_init(&req, r, d, dep->host, hv, keys, formats);
	req.domain = dep->domain; /* unplug from where it was plugged */
	rc = vsm__be_device_undeploy(ds, d->key, &req);
	free(hv);
	if (rc < 0) {
		vsm__error_prefix("datastore '%s': container '%s' device '%s'", ds->name,
				  r->name, device);
		return rc;
	}
	vsm_record_remove_deploy(r, device);
	return 0;
}

VSM_API int vsm_device_deploy(vsm_locator **out, vsm_container *c, const char *device,
			      const vsm_deploy_opts *opts)
{
	vsm_deploy_opts defaults = VSM_DEPLOY_OPTS_INIT;
	const char *keys[64], *formats[64];
	vsm_backend_deploy_req req;
	const vsm_rec_device *d;
	vsm_rec_deploy dep = {0};
	vsm_locator *loc = NULL, *copy = NULL;
	vsm__handle_stage *st = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	char target[8], *hv = NULL;
	size_t idx;
	int rc;

	vsm__error_reset();
	if (!c || !device)
		return vsm_err(VSM_EINVAL, "vsm_device_deploy: NULL argument");
	if (!opts)
		opts = &defaults;
	if (opts->version == 0 || opts->version > VSM_DEPLOY_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_deploy_opts version %u is not supported",
			       opts->version);
	/* Checked here for every backend, not only by the ones that build XML. */
	if ((opts->target && (rc = vsm_disk_target_check(opts->target)) < 0) ||
	    (opts->bus && (rc = vsm_disk_bus_check(opts->bus)) < 0))
		return rc;
	vsm__ctx_lock(c->ctx);
	if ((rc = fresh(c, &ds, &r)) < 0)
		goto out;
	if (!(d = vsm_record_device(r, device))) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no device '%s'", r->name, device);
		goto out;
	}
	if (r->destroying) {
		rc = vsm_err(VSM_ESTATE, "container '%s' is being destroyed", r->name);
		goto out;
	}
	if (!r->attached_host) {
		rc = vsm_err(VSM_ESTATE, "container '%s' is not attached to a host; attach it "
			     "before deploying device '%s'", r->name, device);
		goto out;
	}
	/* Deploy only while the container's lease is ours (doc/leases.md). */
	{
		uint64_t lver = 0;

		if ((rc = vsm__lease_fence(ds->lease, r, &lver)) < 0)
			goto out;
	}
	if (!vsm_record_deploy(r, device)) {
		if (d->chain_len > 64) {
			rc = vsm_err(VSM_EINVAL, "device '%s': backing chain too deep", device);
			goto out;
		}
		idx = (size_t)(d - r->devices);
		snprintf(target, sizeof(target), "vd%c", (char)('a' + idx % 26));
		hv = host_uri(c->ctx, r->attached_host);
		deploy_req_init(&req, r, d, r->attached_host, hv, keys, formats);
		req.domain = opts->domain;
		req.target = opts->target ? opts->target : target;
		req.bus = opts->bus ? opts->bus : "virtio";
		if (!(loc = vsm__calloc(1, sizeof(*loc)))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
		if ((rc = vsm__be_device_deploy(ds, d->key, &req, loc)) < 0) {
			vsm__error_prefix("datastore '%s': container '%s' device '%s'",
					  ds->name, r->name, device);
			goto out;
		}
		if (!loc->uri || !loc->xml) {
			rc = vsm_err(VSM_EINTERNAL, "datastore '%s': backend '%s' deployed device "
				     "'%s' without a locator", ds->name, vsm__be_scheme(ds), device);
			vsm__be_device_undeploy(ds, d->key, &req);
			goto out;
		}
		dep.device = (char *)device;
		dep.host = r->attached_host;
		dep.uri = loc->uri;
		dep.path = loc->path;
		dep.xml = loc->xml;
		dep.domain = (char *)opts->domain;
		/* The record write commits: what follows it cannot fail. */
		if ((rc = vsm_record_set_deploy(r, &dep)) < 0 ||
		    (rc = vsm__container_stage(&st, c, r)) < 0 ||
		    (out && !(copy = locator_from(vsm_record_deploy(r, device))) &&
		     (rc = -VSM_ENOMEM) < 0) ||
		    (rc = vsm__ds_put_record(c->ctx, ds, r)) < 0) {
			vsm__saved_error saved;

			vsm__error_save(&saved);
			vsm__be_device_undeploy(ds, d->key, &req);
			vsm__error_restore(&saved);
			goto out;
		}
	} else if ((rc = vsm__container_stage(&st, c, r)) < 0 ||
		   (out && !(copy = locator_from(vsm_record_deploy(r, device))) &&
		    (rc = -VSM_ENOMEM) < 0)) {
		goto out;
	}
	vsm__container_apply(c, st);
	st = NULL;
	if (out) {
		*out = copy;
		copy = NULL;
	}
out:
	vsm__container_unstage(st);
	locator_free(copy);
	locator_free(loc);
	free(hv);
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

VSM_API int vsm_device_undeploy(vsm_container *c, const char *device, unsigned int flags)
{
	vsm__handle_stage *st = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	int rc;

	vsm__error_reset();
	if (!c || !device)
		return vsm_err(VSM_EINVAL, "vsm_device_undeploy: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_device_undeploy: unknown flags 0x%x", flags);
	vsm__ctx_lock(c->ctx);
	if ((rc = fresh(c, &ds, &r)) < 0)
		goto out;
	if (!vsm_record_device(r, device)) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no device '%s'", r->name, device);
		goto out;
	}
	if (!vsm_record_deploy(r, device)) {
		rc = vsm_err(VSM_ESTATE, "container '%s': device '%s' is not deployed", r->name,
			     device);
		goto out;
	}
	if (r->attached_host) {
		uint64_t lver = 0;

		if ((rc = vsm__lease_fence(ds->lease, r, &lver)) < 0)
			goto out;
	}
	if ((rc = undeploy_one(c->ctx, ds, r, device)) < 0 ||
	    (rc = vsm__container_stage(&st, c, r)) < 0 ||
	    (rc = vsm__ds_put_record(c->ctx, ds, r)) < 0)
		goto out;
	vsm__container_apply(c, st);
	st = NULL;
out:
	vsm__container_unstage(st);
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

/* --- attach / detach --- */

VSM_API int vsm_attach(vsm_container *c, const char *host, unsigned int flags)
{
	vsm__handle_stage *st = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	int64_t n = 0;
	char *hv = NULL;
	bool took_over = false, same, acquired = false;
	uint64_t lver = 0;
	int rc;

	vsm__error_reset();
	if (!c || !host)
		return vsm_err(VSM_EINVAL, "vsm_attach: NULL argument");
	if (flags & ~VSM_ATTACH_TAKEOVER)
		return vsm_err(VSM_EINVAL, "vsm_attach: unknown flags 0x%x", flags);
	vsm__ctx_lock(c->ctx);
	if ((rc = fresh(c, &ds, &r)) < 0)
		goto out;
	if ((rc = vsm_catalog_count(c->ctx->cat, &n, "SELECT 1 FROM hosts WHERE name = ?",
				    "s", host)) < 0)
		goto out;
	if (!n) {
		rc = vsm_err(VSM_ENOTFOUND, "host '%s' does not exist", host);
		goto out;
	}
	if ((rc = vsm_catalog_count(c->ctx->cat, &n, "SELECT 1 FROM links WHERE host = ? AND "
				    "datastore = ?", "ss", host, c->datastore)) < 0)
		goto out;
	if (!n) {
		rc = vsm_err(VSM_ESTATE, "container '%s' cannot attach to host '%s': the host is "
			     "not linked to datastore '%s'", r->name, host, c->datastore);
		goto out;
	}
	if (r->destroying) {
		rc = vsm_err(VSM_ESTATE, "container '%s' is being destroyed", r->name);
		goto out;
	}
	same = r->attached_host && !strcmp(r->attached_host, host);
	/* Attached to another host this context itself manages: a local
	 * conflict, not a lease question. */
	if (r->attached_host && !same && vsm__lease_acts_for(c->ctx->leases, r->attached_host)) {
		rc = vsm_err(VSM_EBUSY, "container '%s' is attached to host '%s'; detach "
			     "it first", r->name, r->attached_host);
		goto out;
	}
	if (same && vsm__lease_held(ds->lease, r, host, &lver) && lver == r->lease_version) {
		rc = handle_set(c, r);
		goto out;
	}
	/* The lease decides: free, ours, or its holder dead (doc/leases.md). */
	if ((rc = vsm__lease_acquire(ds->lease, r, host, (flags & VSM_ATTACH_TAKEOVER) ?
				     VSM__LEASE_WAIT : 0, &lver, &took_over)) < 0)
		goto out;
	acquired = true;
	if (r->attached_host && !same && !took_over) {
		/* Attached without a lease (a datastore from before leases):
		 * only its host may let go of it. */
		rc = vsm_err(VSM_EBUSY, "container '%s' is attached to host '%s'; detach "
			     "it first", r->name, r->attached_host);
		goto out;
	}
	if (!same) {
		hv = host_uri(c->ctx, host);
		if ((rc = vsm__be_host_attach(ds, host, hv, 0)) < 0) {
			vsm__error_prefix("datastore '%s'", ds->name);
			goto out;
		}
	}
	if (took_over) {
		/* The dead host's deployments died with it. */
		vsm__log(c->ctx, VSM_LOG_WARN, "datastore '%s': container '%s' taken over from "
			 "dead host '%s'", ds->name, r->name, r->attached_host);
		while (r->n_deploys)
			vsm_record_remove_deploy(r, r->deploys[0].device);
	}
	r->lease_version = lver;
	/* After a takeover the record is written twice, so that a late write
	 * the old holder had in flight can never be the newest copy. */
	if ((rc = vsm_record_set_host(r, host)) < 0 ||
	    (rc = vsm__container_stage(&st, c, r)) < 0 ||
	    (rc = vsm__ds_put_record(c->ctx, ds, r)) < 0 ||
	    (took_over && (rc = vsm__ds_put_record(c->ctx, ds, r)) < 0)) {
		vsm__saved_error saved;

		vsm__error_save(&saved);
		if (!same)
			vsm__be_host_detach(ds, host, hv, 0);
		vsm__error_restore(&saved);
		goto out;
	}
	acquired = false;
	vsm__container_apply(c, st);
	st = NULL;
out:
	vsm__container_unstage(st);
	if (acquired && !same) {
		vsm__saved_error saved;

		vsm__error_save(&saved);
		vsm__lease_release(ds->lease, r);
		vsm__error_restore(&saved);
	}
	free(hv);
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

/* Undeploy everything (when forced) and clear the attachment in @r. */
static int detach_record(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r, bool force)
{
	char *hv;
	int rc;

	if (r->n_deploys && !force)
		return vsm_err(VSM_EBUSY, "container '%s': device '%s' is deployed; undeploy it "
			       "first", r->name, r->deploys[0].device);
	while (r->n_deploys)
		if ((rc = undeploy_one(ctx, ds, r, r->deploys[0].device)) < 0)
			return rc;
	hv = host_uri(ctx, r->attached_host);
	rc = vsm__be_host_detach(ds, r->attached_host, hv, 0);
	free(hv);
	if (rc < 0) {
		vsm__error_prefix("datastore '%s'", ds->name);
		return rc;
	}
	return vsm_record_set_host(r, NULL);
}

VSM_API int vsm_detach(vsm_container *c, unsigned int flags)
{
	vsm__handle_stage *st = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	uint64_t lver = 0;
	int rc;

	vsm__error_reset();
	if (!c)
		return vsm_err(VSM_EINVAL, "vsm_detach: NULL argument");
	if (flags & ~VSM_DETACH_FORCE)
		return vsm_err(VSM_EINVAL, "vsm_detach: unknown flags 0x%x", flags);
	vsm__ctx_lock(c->ctx);
	if ((rc = fresh(c, &ds, &r)) < 0)
		goto out;
	if (!r->attached_host) {
		rc = vsm_err(VSM_ESTATE, "container '%s' is not attached", r->name);
		goto out;
	}
	/* Only the lease holder touches the host's side. */
	if ((rc = vsm__lease_fence(ds->lease, r, &lver)) < 0)
		goto out;
	if ((rc = detach_record(c->ctx, ds, r, flags & VSM_DETACH_FORCE)) < 0 ||
	    (rc = vsm__container_stage(&st, c, r)) < 0 ||
	    (rc = vsm__ds_put_record(c->ctx, ds, r)) < 0)
		goto out;
	/* The record says detached: a failed release only delays others
	 * until our heartbeat stops. */
	if (vsm__lease_release(ds->lease, r) < 0) {
		vsm__log(c->ctx, VSM_LOG_WARN, "%s", vsm_error_last()->message);
		vsm__error_reset();
	}
	vsm__container_apply(c, st);
	st = NULL;
out:
	vsm__container_unstage(st);
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
}

/* --- destroy --- */

int vsm__container_finish_destroy(vsm_ctx *ctx, vsm_dstore *ds, uint32_t slot,
				  const char *uuid)
{
	vsm_record *r = NULL;
	size_t i;
	int rc = vsm__ds_read_record(ctx, ds, slot, uuid, &r);

	if (rc == -VSM_ENOTFOUND) { /* already gone */
		vsm__error_reset();
		return 0;
	}
	if (rc < 0)
		return rc;
	for (i = 0; i < r->n_devices && rc == 0; i++) {
		rc = vsm__be_device_delete(ds, r->devices[i].key, 0);
		if (rc == -VSM_ENOTFOUND) {
			vsm__error_reset();
			rc = 0;
		}
	}
	if (rc == 0 && r->state_key) {
		rc = vsm__be_device_delete(ds, r->state_key, 0);
		if (rc == -VSM_ENOTFOUND) {
			vsm__error_reset();
			rc = 0;
		}
	}
	for (size_t h = 0; rc == 0 && h < ctx->n_destroy_hooks; h++)
		rc = ctx->destroy_hooks[h](ctx, ds, r, false);
	if (rc == 0)
		rc = vsm__ds_free_slot(ctx, ds, slot, uuid);
	else
		vsm__error_prefix("datastore '%s': destroying container '%s'", ds->name, r->name);
	/* Only the call that removed the record merges what it left. */
	if (rc == 1)
		for (size_t h = 0; h < ctx->n_destroy_hooks; h++)
			ctx->destroy_hooks[h](ctx, ds, r, true);
	vsm_record_free(r);
	return rc;
}

int vsm__container_destroy_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action,
				  const char *arg)
{
	char uuid[VSM_UUID_STRLEN + 1];
	uint32_t slot = 0;
	int rc;

	(void)action;
	if ((rc = vsm__wf_parse_slot_uuid(arg, &slot, uuid)) < 0)
		return rc;
	rc = vsm__container_finish_destroy(ctx, ds, slot, uuid);
	return rc < 0 ? rc : 0;
}

VSM_API int vsm_container_destroy(vsm_container *c, unsigned int flags)
{
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	uint64_t lver = 0;
	char arg[64];
	int rc, tries, removed;

	vsm__error_reset();
	if (!c)
		return vsm_err(VSM_EINVAL, "vsm_container_destroy: NULL argument");
	if (flags & ~VSM_CONTAINER_DESTROY_FORCE)
		return vsm_err(VSM_EINVAL, "vsm_container_destroy: unknown flags 0x%x", flags);
	vsm__ctx_lock(c->ctx);
	for (tries = 0; ; tries++) {
		vsm_record_free(r);
		r = NULL;
		if ((rc = fresh(c, &ds, &r)) < 0)
			goto out;
		/* Another process began destroying it (or died doing so):
		 * help finish; whoever removes the record reports success. */
		if (r->destroying)
			break;
		if (r->attached_host) {
			if (!(flags & VSM_CONTAINER_DESTROY_FORCE)) {
				rc = vsm_err(VSM_EBUSY, "container '%s' is attached to host '%s'; "
					     "detach it or force the destroy", r->name,
					     r->attached_host);
				goto out;
			}
			/* Only the lease holder may undeploy and detach it. */
			if ((rc = vsm__lease_fence(ds->lease, r, &lver)) < 0 ||
			    (rc = detach_record(c->ctx, ds, r, true)) < 0)
				goto out;
		}
		/* Past this point the container is going away: mark the record
		 * so nobody deploys it again, and journal the rest as
		 * roll-forward. A record changed meanwhile is read again. */
		r->destroying = true;
		rc = vsm__ds_put_record(c->ctx, ds, r);
		if (rc == 0)
			break;
		if (rc != -VSM_EBUSY || tries >= 20)
			goto out;
	}
	snprintf(arg, sizeof(arg), "%u %s", r->slot, r->uuid);
	if ((rc = vsm__wf_begin(&wf, c->ctx, "container-destroy", ds->name, r->name)) < 0 ||
	    (rc = vsm__wf_redo(&wf, VSM_WF_CONTAINER_DESTROY, arg)) < 0)
		goto out;
	if (vsm__lease_release(ds->lease, r) < 0)
		vsm__error_reset(); /* a lease of a gone container is free anyway */
	if ((removed = vsm__container_finish_destroy(c->ctx, ds, r->slot, r->uuid)) < 0) {
		rc = removed;
		goto out; /* stays journalled; the next open finishes it */
	}
	if ((rc = vsm__wf_end(&wf)) < 0)
		goto out;
	if (!removed) {
		rc = vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' was destroyed by "
			     "another process meanwhile", ds->name, r->name);
		goto out;
	}
	vsm__log(c->ctx, VSM_LOG_INFO, "datastore '%s': container '%s' destroyed", ds->name,
		 r->name);
	handle_set(c, r);
out:
	vsm_record_free(r);
	vsm__ctx_unlock(c->ctx);
	return rc;
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
	locator_free(loc);
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
