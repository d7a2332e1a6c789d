/*
 * Datastores: registration in the catalog, opening through their backend,
 * and the cache of container records kept in step with the datastore's
 * generation counter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "ctx.h"
#include "lease/lease.h"

struct vsm_datastore {
	char *name;
	char *uri;
	char *uuid;
	uint64_t generation;
};

static void cache_clear(vsm_dstore *ds)
{
	size_t i;

	for (i = 0; i < ds->n_recs; i++)
		vsm_record_free(ds->recs[i]);
	free(ds->recs);
	ds->recs = NULL;
	ds->n_recs = 0;
	for (i = 0; i < ds->n_damaged; i++)
		free(ds->damaged_why[i]);
	free(ds->damaged);
	free(ds->damaged_why);
	ds->damaged = NULL;
	ds->damaged_why = NULL;
	ds->n_damaged = 0;
	ds->gen = 0;
}

void vsm__ds_close(vsm_dstore *ds)
{
	if (!ds)
		return;
	cache_clear(ds);
	vsm__lease_ds_close(ds);
	vsm_meta_close(ds->meta);
	if (ds->h)
		ds->be->ops.close(ds->h);
	free(ds->name);
	free(ds->uri);
	free(ds);
}

void vsm__ds_forget(vsm_ctx *ctx, const char *name)
{
	vsm_dstore **pp;

	for (pp = &ctx->open; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->name, name)) {
			vsm_dstore *ds = *pp;

			*pp = ds->next;
			vsm__ds_close(ds);
			return;
		}
	}
}

/* A backend saw its storage change or vanish: tell the caller. */
static void backend_notify(void *cookie, int event, const char *detail)
{
	vsm_dstore *ds = cookie;

	vsm__event_emit(ds->ctx->events, event == VSM_BACKEND_EVENT_LOST ?
			VSM_EVENT_DATASTORE_LOST : VSM_EVENT_DATASTORE_CHANGED,
			ds->name, NULL, NULL, detail, 0);
}

/* Open a datastore's backend and metadata; @format makes a blank one,
 * @open_flags (VSM_BACKEND_OPEN_*) go to the backend. */
static int ds_open(vsm_dstore **out, vsm_ctx *ctx, const char *name, const char *uri,
		   bool format, unsigned int open_flags)
{
	vsm_backend_open_args args = { VSM_BACKEND_OPEN_ARGS_VERSION, name, NULL, NULL, NULL,
				       open_flags };
	vsm_backend_bdev *mh = NULL;
	vsm_bdev *mb = NULL;
	vsm_dstore *ds;
	char label[160];
	int rc;

	if (!(ds = vsm__calloc(1, sizeof(*ds))))
		return -VSM_ENOMEM;
	if (!(ds->name = vsm__strdup(name)) || !(ds->uri = vsm__strdup(uri))) {
		rc = -VSM_ENOMEM;
		goto fail;
	}
	if (!(ds->be = vsm__backend_for_uri(ctx, uri))) {
		rc = -vsm__error_code();
		goto fail;
	}
	args.payload = ds->be->payload;
	args.notify = backend_notify;
	args.notify_cookie = ds;
	ds->ctx = ctx;
	if ((rc = ds->be->ops.open(&ds->h, uri, &args)) < 0)
		goto fail;
	rc = ds->be->ops.meta_open(&mh, ds->h, vsm_meta_default_size(512),
				   format ? VSM_BDEV_CREATE : 0);
	if (rc < 0)
		goto fail;
	snprintf(label, sizeof(label), "datastore '%s' metadata", name);
	if ((rc = vsm_bdev_wrap(&mb, &ds->be->ops, mh, label, false)) < 0)
		goto fail;
	if ((rc = vsm_meta_open(&ds->meta, mb, name, format)) < 0 ||
	    (rc = vsm__lease_ds_open(ctx, ds)) < 0)
		goto fail;
	*out = ds;
	return 0;
fail:
	vsm__error_prefix("datastore '%s'", name);
	vsm__ds_close(ds);
	return rc;
}

typedef struct {
	char *uri;
	char *uuid;
} ds_row;

static int ds_row_cb(void *payload, int ncol, const char *const *cols)
{
	ds_row *r = payload;

	(void)ncol;
	if (!(r->uri = vsm__strdup(cols[0])) || !(r->uuid = vsm__strdup(cols[1])))
		return -VSM_ENOMEM;
	return 1;
}

static int ds_row_get(vsm_ctx *ctx, const char *name, ds_row *row)
{
	int rc;

	memset(row, 0, sizeof(*row));
	rc = vsm_catalog_query(ctx->cat, ds_row_cb, row,
			       "SELECT uri, uuid FROM datastores WHERE name = ?", "s", name);
	if (rc < 0) {
		free(row->uri);
		free(row->uuid);
		return rc;
	}
	if (rc == 0)
		return vsm_err(VSM_ENOTFOUND, "datastore '%s' is not registered", name);
	return 0;
}

static int cache_load(vsm_ctx *ctx, vsm_dstore *ds, uint64_t gen);

int vsm__ds_get(vsm_dstore **out, vsm_ctx *ctx, const char *name)
{
	vsm_dstore *ds;
	ds_row row;
	int rc;

	for (ds = ctx->open; ds; ds = ds->next) {
		if (!strcmp(ds->name, name)) {
			*out = ds;
			return 0;
		}
	}
	if ((rc = ds_row_get(ctx, name, &row)) < 0)
		return rc;
	rc = ds_open(&ds, ctx, name, row.uri, false, 0);
	if (rc == 0 && strcmp(ds->meta->geom.uuid, row.uuid) != 0) {
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': '%s' now holds datastore %s, not "
			     "the registered %s", name, row.uri, ds->meta->geom.uuid, row.uuid);
		vsm__ds_close(ds);
	}
	free(row.uri);
	free(row.uuid);
	if (rc < 0)
		return rc;
	ds->next = ctx->open;
	ctx->open = ds;
	*out = ds;
	/* Finish what a dead process left half done here before anyone
	 * reads the datastore. */
	if (!ds->recovering) {
		ds->recovering = true;
		vsm__wf_recover(ctx, name);
		ds->recovering = false;
	}
	return 0;
}

/* --- the record cache --- */

static int cache_add(vsm_dstore *ds, vsm_record *r)
{
	vsm_record **grown = realloc(ds->recs, (ds->n_recs + 1) * sizeof(*grown));

	if (!grown)
		return vsm_err(VSM_ENOMEM, "out of memory");
	ds->recs = grown;
	ds->recs[ds->n_recs++] = r;
	return 0;
}

static int cache_add_damaged(vsm_dstore *ds, uint32_t slot, const char *why)
{
	uint32_t *s = realloc(ds->damaged, (ds->n_damaged + 1) * sizeof(*s));
	char **w;

	if (!s)
		return vsm_err(VSM_ENOMEM, "out of memory");
	ds->damaged = s;
	w = realloc(ds->damaged_why, (ds->n_damaged + 1) * sizeof(*w));
	if (!w)
		return vsm_err(VSM_ENOMEM, "out of memory");
	ds->damaged_why = w;
	ds->damaged[ds->n_damaged] = slot;
	if (!(ds->damaged_why[ds->n_damaged] = vsm__strdup(why ? why : "unreadable")))
		return -VSM_ENOMEM;
	ds->n_damaged++;
	return 0;
}

static void cache_remove_slot(vsm_dstore *ds, uint32_t slot)
{
	size_t i;

	for (i = 0; i < ds->n_recs; i++) {
		if (ds->recs[i]->slot == slot) {
			vsm_record_free(ds->recs[i]);
			memmove(&ds->recs[i], &ds->recs[i + 1],
				(ds->n_recs - i - 1) * sizeof(*ds->recs));
			ds->n_recs--;
			return;
		}
	}
}

/* Persist the in-memory cache to the catalog, so a new process whose
 * datastore has not changed need not rescan. */
static int cache_save(vsm_ctx *ctx, vsm_dstore *ds)
{
	size_t i;
	int rc;

	if ((rc = vsm_catalog_begin(ctx->cat)) < 0)
		return rc;
	if ((rc = vsm_catalog_exec(ctx->cat, "DELETE FROM containers WHERE datastore = ?",
				   "s", ds->name)) < 0 ||
	    (rc = vsm_catalog_exec(ctx->cat, "DELETE FROM damaged WHERE datastore = ?",
				   "s", ds->name)) < 0)
		goto fail;
	for (i = 0; i < ds->n_recs; i++) {
		char *json = NULL;

		if ((rc = vsm_record_encode(&json, ds->recs[i])) < 0)
			goto fail;
		rc = vsm_catalog_exec(ctx->cat, "INSERT INTO containers VALUES(?,?,?,?,?,?)",
				      "sisssi", ds->name, (int64_t)ds->recs[i]->slot,
				      ds->recs[i]->name, ds->recs[i]->uuid, json,
				      (int64_t)ds->gen);
		free(json);
		if (rc < 0)
			goto fail;
	}
	for (i = 0; i < ds->n_damaged; i++)
		if ((rc = vsm_catalog_exec(ctx->cat, "INSERT INTO damaged VALUES(?,?,?)", "sis",
					   ds->name, (int64_t)ds->damaged[i],
					   ds->damaged_why[i])) < 0)
			goto fail;
	if ((rc = vsm_catalog_exec(ctx->cat, "UPDATE datastores SET generation = ? WHERE "
				   "name = ?", "is", (int64_t)ds->gen, ds->name)) < 0)
		goto fail;
	return vsm_catalog_commit(ctx->cat);
fail:
	vsm_catalog_rollback(ctx->cat);
	return rc;
}

typedef struct {
	vsm_dstore *ds;
	int rc;
} load_state;

static int load_row(void *payload, int ncol, const char *const *cols)
{
	load_state *st = payload;
	vsm_record *r = NULL;
	char what[128];
	int rc;

	(void)ncol;
	snprintf(what, sizeof(what), "catalog cache of datastore '%s' slot %s",
		 st->ds->name, cols[0]);
	if ((rc = vsm_record_decode(&r, cols[1], strlen(cols[1]), what)) < 0)
		return rc;
	r->slot = (uint32_t)strtoul(cols[0], NULL, 10);
	if ((rc = cache_add(st->ds, r)) < 0)
		vsm_record_free(r);
	return rc;
}

static int damaged_row(void *payload, int ncol, const char *const *cols)
{
	load_state *st = payload;

	(void)ncol;
	return cache_add_damaged(st->ds, (uint32_t)strtoul(cols[0], NULL, 10), cols[1]);
}

/* Rebuild the cache from every slot on the datastore. */
static int rescan(vsm_ctx *ctx, vsm_dstore *ds, uint64_t gen)
{
	uint32_t slot;
	int rc;

	cache_clear(ds);
	for (slot = 0; slot < ds->meta->geom.slot_count; slot++) {
		vsm_slot_state st;
		char *payload = NULL, *why = NULL, what[128];
		size_t len = 0;
		vsm_record *r = NULL;

		if ((rc = vsm_meta_slot_read(ds->meta, slot, &st, &payload, &len, &why)) < 0)
			goto fail;
		snprintf(what, sizeof(what), "datastore '%s': container record in slot %u",
			 ds->name, slot);
		if (st == VSM_SLOT_USED) {
			rc = vsm_record_decode(&r, payload, len, what);
			if (rc == 0) {
				r->slot = slot;
				rc = cache_add(ds, r);
				if (rc < 0)
					vsm_record_free(r);
			} else {
				/* Checksum fine but contents refused: as damaged. */
				const vsm_error *e = vsm_error_last();

				rc = cache_add_damaged(ds, slot, e ? e->message : "unreadable");
			}
		} else if (st == VSM_SLOT_DAMAGED) {
			vsm__log(ctx, VSM_LOG_WARN, "%s is damaged (%s); it is skipped and "
				 "never reused", what, why ? why : "?");
			rc = cache_add_damaged(ds, slot, why);
		}
		free(payload);
		free(why);
		if (rc < 0)
			goto fail;
	}
	ds->gen = gen;
	return cache_save(ctx, ds);
fail:
	cache_clear(ds);
	return rc;
}

/* Use the catalog's copy if it was read at @gen, else rescan. */
static int cache_load(vsm_ctx *ctx, vsm_dstore *ds, uint64_t gen)
{
	load_state st = {ds, 0};
	int64_t same = 0;
	int rc;

	rc = vsm_catalog_count(ctx->cat, &same, "SELECT 1 FROM datastores WHERE name = ? "
			       "AND generation = ?", "si", ds->name, (int64_t)gen);
	if (rc == 0 && same) {
		cache_clear(ds);
		rc = vsm_catalog_query(ctx->cat, load_row, &st, "SELECT slot, record FROM "
				       "containers WHERE datastore = ?", "s", ds->name);
		if (rc == 0)
			rc = vsm_catalog_query(ctx->cat, damaged_row, &st, "SELECT slot, reason "
					       "FROM damaged WHERE datastore = ?", "s", ds->name);
		if (rc == 0) {
			ds->gen = gen;
			return 0;
		}
		/* An unreadable cache is only a cache. */
		vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': catalog cache unreadable, "
			 "rescanning", ds->name);
	}
	return rescan(ctx, ds, gen);
}

int vsm__ds_refresh(vsm_ctx *ctx, vsm_dstore *ds)
{
	uint64_t gen;
	int rc = vsm_meta_generation(ds->meta, &gen);

	if (rc < 0)
		return rc;
	if (gen == ds->gen)
		return 0;
	/* A change we did not make ourselves (ours update ds->gen), unless
	 * the lease renewal already announced it. */
	if (ds->gen != 0 && vsm__lease_gen_unseen(ds, gen))
		vsm__event_emit(ctx->events, VSM_EVENT_DATASTORE_CHANGED, ds->name, NULL, NULL,
				"generation moved", gen);
	return cache_load(ctx, ds, gen);
}

vsm_record *vsm__ds_find(vsm_dstore *ds, const char *name, const char *uuid)
{
	size_t i;

	for (i = 0; i < ds->n_recs; i++) {
		if (name && !strcmp(ds->recs[i]->name, name))
			return ds->recs[i];
		if (uuid && !strcmp(ds->recs[i]->uuid, uuid))
			return ds->recs[i];
	}
	return NULL;
}

int vsm__ds_read_record(vsm_ctx *ctx, vsm_dstore *ds, uint32_t slot, const char *uuid,
			vsm_record **out)
{
	vsm_slot_state st;
	char *payload = NULL, *why = NULL, what[128];
	size_t len = 0;
	int rc;

	(void)ctx;
	if ((rc = vsm_meta_slot_read(ds->meta, slot, &st, &payload, &len, &why)) < 0)
		return rc;
	snprintf(what, sizeof(what), "datastore '%s': container record in slot %u",
		 ds->name, slot);
	if (st == VSM_SLOT_DAMAGED)
		rc = vsm_err(VSM_ECORRUPT, "%s is damaged (%s)", what, why ? why : "?");
	else if (st != VSM_SLOT_USED)
		rc = -VSM_ENOTFOUND;
	else if ((rc = vsm_record_decode(out, payload, len, what)) == 0) {
		(*out)->slot = slot;
		if (uuid && strcmp((*out)->uuid, uuid)) {
			vsm_record_free(*out);
			*out = NULL;
			rc = -VSM_ENOTFOUND;
		}
	}
	if (rc == -VSM_ENOTFOUND)
		vsm_err(VSM_ENOTFOUND, "datastore '%s': container %s no longer exists",
			ds->name, uuid ? uuid : "");
	free(payload);
	free(why);
	return rc;
}

/*
 * A record change moves the generation twice: once before the slot is
 * written and once after. A process killed between the slot write and a
 * single bump would leave the disk changed under an unchanged generation,
 * and every cache read at that generation stale for good; with the first
 * bump, any cache taken before the change is already invalid. Returns in
 * @expect the generation our cache can claim after the second bump, or 0
 * if someone else's change slipped in first.
 */
static int begin_change(vsm_dstore *ds, uint64_t *expect)
{
	uint64_t prev = 0, now = 0;
	int rc = vsm_meta_bump_generation(ds->meta, &prev, &now);

	if (rc < 0)
		return rc;
	*expect = prev == ds->gen ? now : 0;
	return 0;
}

static int commit_change(vsm_ctx *ctx, vsm_dstore *ds, uint64_t expect)
{
	uint64_t prev = 0, now = 0;
	int rc = vsm_meta_bump_generation(ds->meta, &prev, &now);

	if (rc < 0)
		return rc;
	vsm__lease_note_gen(ds, now);
	/* If someone else changed the datastore since we last read it, our
	 * cache misses their change: rescan on next use. */
	if (expect && prev == expect) {
		ds->gen = now;
		/* The change is on the datastore; a catalog that failed to
		 * record it only costs the next process a rescan. */
		if (cache_save(ctx, ds) < 0) {
			vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': catalog cache not updated: %s",
				 ds->name, vsm_error_last()->message);
			vsm__error_reset();
		}
		return 0;
	}
	ds->gen = 0;
	return 0;
}

/* Journal recovery changed the datastore on behalf of a dead process that
 * may have died between its two bumps: move the generation on. */
int vsm__ds_touch(vsm_ctx *ctx, vsm_dstore *ds)
{
	uint64_t expect = 0;
	int rc = begin_change(ds, &expect);

	return rc < 0 ? rc : commit_change(ctx, ds, expect);
}

/* An attached container's record is written only under its lease, and
 * carries the lease version as its fencing token (lib/lease). */
static int fence(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r, vsm_record **fenced)
{
	const vsm_record *prev = NULL;
	vsm_record *probe = NULL;
	uint64_t lver = 0;
	size_t i;
	int rc;

	*fenced = NULL;
	for (i = 0; i < ds->n_recs; i++)
		if (ds->recs[i]->slot == r->slot && !strcmp(ds->recs[i]->uuid, r->uuid))
			prev = ds->recs[i];
	if (!r->attached_host && !(prev && prev->attached_host))
		return 0;
	/* Check against the host the write is for: the new one on attach,
	 * the old one on detach; the newest token seen on disk must not be
	 * above ours. */
	if (!(probe = vsm_record_dup(r)))
		return -VSM_ENOMEM;
	if (!r->attached_host) {
		rc = vsm_record_set_host(probe, prev->attached_host);
		if (rc < 0)
			goto out;
	}
	if (prev && prev->lease_version > probe->lease_version)
		probe->lease_version = prev->lease_version;
	if ((rc = vsm__lease_fence(ctx, ds, probe, &lver)) < 0)
		goto out;
	if (!(*fenced = vsm_record_dup(r))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	(*fenced)->lease_version = lver;
out:
	vsm_record_free(probe);
	return rc;
}

int vsm__ds_put_record(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r)
{
	vsm_record *copy, *fenced = NULL;
	char *json = NULL;
	uint64_t expect = 0;
	int rc;

	if ((rc = fence(ctx, ds, r, &fenced)) < 0)
		return rc;
	if (fenced)
		r = fenced;
	rc = vsm_record_encode(&json, r);
	if (rc < 0 || (rc = begin_change(ds, &expect)) < 0) {
		free(json);
		vsm_record_free(fenced);
		return rc;
	}
	rc = vsm_meta_slot_write(ds->meta, r->slot, json, strlen(json));
	free(json);
	if (rc < 0) {
		vsm_record_free(fenced);
		return rc;
	}
	cache_remove_slot(ds, r->slot);
	if ((copy = vsm_record_dup(r)) && cache_add(ds, copy) < 0)
		vsm_record_free(copy);
	if (!copy)
		ds->gen = 0;
	vsm_record_free(fenced);
	return commit_change(ctx, ds, expect);
}

int vsm__ds_free_slot(vsm_ctx *ctx, vsm_dstore *ds, uint32_t slot, const char *uuid)
{
	uint64_t expect = 0;
	vsm_record *cur = NULL;
	int rc = vsm__ds_read_record(ctx, ds, slot, uuid, &cur);

	if (rc == -VSM_ENOTFOUND) {
		vsm__error_reset();
		return 0;
	}
	if (rc < 0)
		return rc;
	vsm_record_free(cur);
	if ((rc = begin_change(ds, &expect)) < 0 ||
	    (rc = vsm_meta_slot_write(ds->meta, slot, NULL, 0)) < 0)
		return rc;
	cache_remove_slot(ds, slot);
	return commit_change(ctx, ds, expect);
}

int vsm__ds_alloc_slot(vsm_ctx *ctx, vsm_dstore *ds, uint32_t *out)
{
	uint32_t slot;
	size_t i;
	int rc;

	(void)ctx;
	for (slot = 0; slot < ds->meta->geom.slot_count; slot++) {
		bool taken = false;
		vsm_slot_state st;

		for (i = 0; i < ds->n_recs && !taken; i++)
			taken = ds->recs[i]->slot == slot;
		for (i = 0; i < ds->n_damaged && !taken; i++)
			taken = ds->damaged[i] == slot;
		if (taken)
			continue;
		/* The cache may be behind the disk; the disk decides. */
		if ((rc = vsm_meta_slot_read(ds->meta, slot, &st, NULL, NULL, NULL)) < 0)
			return rc;
		if (st == VSM_SLOT_EMPTY || st == VSM_SLOT_FREE) {
			*out = slot;
			return 0;
		}
	}
	return vsm_err(VSM_ENOSPC, "datastore '%s': all %u container slots are in use",
		       ds->name, ds->meta->geom.slot_count);
}

int vsm__ds_open_device(vsm_dstore *ds, const char *key, unsigned int flags,
			vsm_bdev **out)
{
	vsm_backend_bdev *h = NULL;
	char label[VSM_BACKEND_KEY_MAX + 64];
	int rc = ds->be->ops.device_open(&h, ds->h, key, flags);

	if (rc < 0)
		return rc;
	snprintf(label, sizeof(label), "datastore '%s' device '%s'", ds->name, key);
	return vsm_bdev_wrap(out, &ds->be->ops, h, label, (flags & VSM_BDEV_RDONLY) != 0);
}

/* --- public API --- */

VSM_API int vsm_datastore_add(vsm_ctx *ctx, const char *name, const char *uri,
			      unsigned int flags)
{
	vsm_dstore *ds = NULL;
	char **same = NULL;
	size_t n_same = 0;
	int64_t exists = 0;
	int rc;

	vsm__error_reset();
	if (!ctx || !uri)
		return vsm_err(VSM_EINVAL, "vsm_datastore_add: ctx or uri is NULL");
	if (flags & ~VSM_DATASTORE_ADD_CREATE)
		return vsm_err(VSM_EINVAL, "vsm_datastore_add: unknown flags 0x%x", flags);
	if ((rc = vsm__name_check("datastore", name)) < 0)
		return rc;
	vsm__ctx_lock(ctx);
	if ((rc = vsm_catalog_count(ctx->cat, &exists, "SELECT 1 FROM datastores WHERE "
				    "name = ?", "s", name)) < 0)
		goto out;
	if (exists) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s' already exists", name);
		goto out;
	}
	if ((rc = ds_open(&ds, ctx, name, uri, true, (flags & VSM_DATASTORE_ADD_CREATE) ?
			  VSM_BACKEND_OPEN_CREATE : 0)) < 0)
		goto out;
	if ((rc = vsm_catalog_strings(ctx->cat, &same, &n_same, "SELECT name FROM datastores "
				      "WHERE uuid = ?", "s", ds->meta->geom.uuid)) < 0)
		goto out;
	if (n_same) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': '%s' is already registered as "
			     "datastore '%s'", name, uri, same[0]);
		goto out;
	}
	if ((rc = vsm_catalog_exec(ctx->cat, "INSERT INTO datastores(name, uri, uuid) "
				   "VALUES(?,?,?)", "sss", name, uri, ds->meta->geom.uuid)) < 0)
		goto out;
	ds->next = ctx->open;
	ctx->open = ds;
	/* Adopt whatever the datastore already holds. */
	if ((rc = vsm__ds_refresh(ctx, ds)) < 0) {
		vsm__saved_error saved;

		vsm__error_save(&saved);
		vsm__ds_forget(ctx, name);
		vsm_catalog_exec(ctx->cat, "DELETE FROM datastores WHERE name = ?", "s", name);
		vsm__error_restore(&saved);
		ds = NULL;
		goto out;
	}
	vsm__log(ctx, VSM_LOG_INFO, "datastore '%s' added (%s, %zu containers)", name, uri,
		 ds->n_recs);
	ds = NULL;
out:
	vsm_strv_free(same, n_same);
	vsm__ds_close(ds);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_datastore_remove(vsm_ctx *ctx, const char *name, unsigned int flags)
{
	vsm_dstore *ds;
	size_t i;
	int rc;

	vsm__error_reset();
	if (!ctx || !name)
		return vsm_err(VSM_EINVAL, "vsm_datastore_remove: ctx or name is NULL");
	if (flags & ~VSM_DATASTORE_REMOVE_FORCE)
		return vsm_err(VSM_EINVAL, "vsm_datastore_remove: unknown flags 0x%x", flags);
	vsm__ctx_lock(ctx);
	rc = vsm__ds_get(&ds, ctx, name);
	if (rc == 0 && !(flags & VSM_DATASTORE_REMOVE_FORCE)) {
		if ((rc = vsm__ds_refresh(ctx, ds)) < 0)
			goto out;
		for (i = 0; i < ds->n_recs; i++) {
			if (ds->recs[i]->attached_host) {
				rc = vsm_err(VSM_EBUSY, "datastore '%s': container '%s' is attached "
					     "to host '%s'", name, ds->recs[i]->name,
					     ds->recs[i]->attached_host);
				goto out;
			}
		}
	} else if (rc == -VSM_ENOTFOUND) {
		goto out;
	} else if (rc < 0 && !(flags & VSM_DATASTORE_REMOVE_FORCE)) {
		goto out;
	}
	vsm__ds_forget(ctx, name);
	if ((rc = vsm_catalog_begin(ctx->cat)) < 0)
		goto out;
	if ((rc = vsm_catalog_exec(ctx->cat, "DELETE FROM datastores WHERE name = ?", "s", name)) < 0 ||
	    (rc = vsm_catalog_exec(ctx->cat, "DELETE FROM links WHERE datastore = ?", "s", name)) < 0 ||
	    (rc = vsm_catalog_exec(ctx->cat, "DELETE FROM containers WHERE datastore = ?", "s", name)) < 0 ||
	    (rc = vsm_catalog_exec(ctx->cat, "DELETE FROM damaged WHERE datastore = ?", "s", name)) < 0) {
		vsm_catalog_rollback(ctx->cat);
		goto out;
	}
	rc = vsm_catalog_commit(ctx->cat);
	vsm__error_reset();
out:
	vsm__ctx_unlock(ctx);
	return rc;
}

static int handle_new(vsm_datastore **out, vsm_ctx *ctx, const char *name)
{
	vsm_datastore *h;
	ds_row row;
	int rc;

	if ((rc = ds_row_get(ctx, name, &row)) < 0)
		return rc;
	if (!(h = vsm__calloc(1, sizeof(*h))) || !(h->name = vsm__strdup(name))) {
		free(h);
		free(row.uri);
		free(row.uuid);
		return -VSM_ENOMEM;
	}
	h->uri = row.uri;
	h->uuid = row.uuid;
	for (vsm_dstore *ds = ctx->open; ds; ds = ds->next)
		if (!strcmp(ds->name, name))
			h->generation = ds->gen;
	*out = h;
	return 0;
}

VSM_API int vsm_datastore_lookup(vsm_datastore **out, vsm_ctx *ctx, const char *name)
{
	int rc;

	vsm__error_reset();
	if (!out || !ctx || !name)
		return vsm_err(VSM_EINVAL, "vsm_datastore_lookup: NULL argument");
	vsm__ctx_lock(ctx);
	rc = handle_new(out, ctx, name);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_datastore_list(vsm_datastore ***out, size_t *count, vsm_ctx *ctx)
{
	char **names = NULL;
	size_t n = 0, i;
	vsm_datastore **list = NULL;
	int rc;

	vsm__error_reset();
	if (!out || !count || !ctx)
		return vsm_err(VSM_EINVAL, "vsm_datastore_list: NULL argument");
	vsm__ctx_lock(ctx);
	if ((rc = vsm_catalog_strings(ctx->cat, &names, &n, "SELECT name FROM datastores "
				      "ORDER BY name", NULL)) < 0)
		goto out;
	if (!(list = vsm__calloc(n, sizeof(*list)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((rc = handle_new(&list[i], ctx, names[i])) < 0) {
			vsm_datastore_list_free(list, i);
			list = NULL;
			goto out;
		}
	}
	*out = list;
	*count = n;
out:
	vsm_strv_free(names, n);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API void vsm_datastore_free(vsm_datastore *ds)
{
	if (!ds)
		return;
	free(ds->name);
	free(ds->uri);
	free(ds->uuid);
	free(ds);
}

VSM_API void vsm_datastore_list_free(vsm_datastore **list, size_t count)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < count; i++)
		vsm_datastore_free(list[i]);
	free(list);
}

VSM_API const char *vsm_datastore_name(const vsm_datastore *ds)
{
	return ds ? ds->name : NULL;
}

VSM_API const char *vsm_datastore_uri(const vsm_datastore *ds)
{
	return ds ? ds->uri : NULL;
}

VSM_API const char *vsm_datastore_uuid(const vsm_datastore *ds)
{
	return ds ? ds->uuid : NULL;
}

VSM_API uint64_t vsm_datastore_generation(const vsm_datastore *ds)
{
	return ds ? ds->generation : 0;
}

VSM_API int vsm_datastore_capacity(vsm_ctx *ctx, const char *name, uint64_t *total,
				   uint64_t *free_bytes)
{
	vsm_dstore *ds;
	uint64_t t = 0, f = 0;
	int rc;

	vsm__error_reset();
	if (!ctx || !name)
		return vsm_err(VSM_EINVAL, "vsm_datastore_capacity: NULL argument");
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, name)) == 0 &&
	    (rc = ds->be->ops.capacity(ds->h, &t, &f)) < 0)
		vsm__error_prefix("datastore '%s'", name);
	vsm__ctx_unlock(ctx);
	if (rc == 0) {
		if (total)
			*total = t;
		if (free_bytes)
			*free_bytes = f;
	}
	return rc;
}
