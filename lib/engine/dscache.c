/*
 * The cache of a datastore's container records and the one way they
 * change.
 *
 * Reading: the cache is tagged with the generation it was read at. When
 * the generation moves, the change ring names the slot each generation
 * changed, so a refresh re-reads only those slots; a ring that has moved
 * on past what the cache knows (or was damaged) means a full rescan. A new
 * process starts from the catalog's copy and catches up the same way.
 *
 * Writing: every change runs under the metadata lock, with the cache
 * refreshed after the lock was taken, so name checks and slot choices see
 * every other host's changes. A change writes the ring entry for the next
 * generation (its intent), the slot, then the generation. A holder that
 * dies between leaves an intent that the next holder announces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx.h"
#include "dslock.h"
#include "lease.h"

#define READ_TRIES 50

/* --- the in-memory cache --- */

static int slots_ensure(vsm_dstore *ds, uint32_t n)
{
	vsm_record **b;
	uint32_t *p;
	uint8_t *u;

	if (n <= ds->n_slots)
		return 0;
	if (!(b = realloc(ds->by_slot, n * sizeof(*b))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	ds->by_slot = b;
	if (!(p = realloc(ds->pos, n * sizeof(*p))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	ds->pos = p;
	if (!(u = realloc(ds->use, n)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	ds->use = u;
	memset(ds->by_slot + ds->n_slots, 0, (n - ds->n_slots) * sizeof(*b));
	memset(ds->pos + ds->n_slots, 0, (n - ds->n_slots) * sizeof(*p));
	memset(ds->use + ds->n_slots, 0, n - ds->n_slots);
	ds->n_slots = n;
	return 0;
}

void vsm__ds_cache_clear(vsm_dstore *ds)
{
	size_t i;

	for (i = 0; i < ds->n_recs; i++)
		vsm_record_free(ds->recs[i]);
	free(ds->recs);
	ds->recs = NULL;
	ds->n_recs = ds->cap_recs = 0;
	free(ds->by_slot);
	free(ds->pos);
	free(ds->use);
	ds->by_slot = NULL;
	ds->pos = NULL;
	ds->use = NULL;
	ds->n_slots = 0;
	ds->free_hint = 0;
	vsm_strmap_clear(&ds->names);
	vsm_strmap_clear(&ds->uuids);
	vsm_strmap_clear(&ds->dup_names);
	for (i = 0; i < ds->n_damaged; i++)
		free(ds->damaged_why[i]);
	free(ds->damaged);
	free(ds->damaged_why);
	ds->damaged = NULL;
	ds->damaged_why = NULL;
	ds->n_damaged = 0;
	free(ds->dirty);
	ds->dirty = NULL;
	ds->n_dirty = ds->cap_dirty = 0;
	ds->gen = 0;
}

static int dirty_add(vsm_dstore *ds, uint32_t slot)
{
	if (ds->n_dirty == ds->cap_dirty) {
		size_t cap = ds->cap_dirty ? ds->cap_dirty * 2 : 64;
		uint32_t *d = realloc(ds->dirty, cap * sizeof(*d));

		if (!d)
			return vsm_err(VSM_ENOMEM, "out of memory");
		ds->dirty = d;
		ds->cap_dirty = cap;
	}
	ds->dirty[ds->n_dirty++] = slot;
	return 0;
}

static void names_remove(vsm_dstore *ds, const vsm_record *r)
{
	uint32_t n = 0, at;

	if (vsm_strmap_get(&ds->dup_names, r->name, &n)) {
		if (n <= 2)
			vsm_strmap_del(&ds->dup_names, r->name);
		else
			vsm_strmap_put(&ds->dup_names, r->name, n - 1);
		/* Point the name at a bearer that stays (r is still listed). */
		if (vsm_strmap_get(&ds->names, r->name, &at) && at == r->slot) {
			size_t i;

			for (i = 0; i < ds->n_recs; i++)
				if (ds->recs[i] != r && !strcmp(ds->recs[i]->name, r->name))
					vsm_strmap_put(&ds->names, r->name, ds->recs[i]->slot);
		}
		return;
	}
	vsm_strmap_del(&ds->names, r->name);
}

static void damaged_remove(vsm_dstore *ds, uint32_t slot)
{
	size_t i;

	for (i = 0; i < ds->n_damaged; i++) {
		if (ds->damaged[i] == slot) {
			free(ds->damaged_why[i]);
			ds->damaged[i] = ds->damaged[ds->n_damaged - 1];
			ds->damaged_why[i] = ds->damaged_why[ds->n_damaged - 1];
			ds->n_damaged--;
			return;
		}
	}
}

static void slot_release(vsm_dstore *ds, uint32_t slot)
{
	ds->use[slot] = VSM_DS_SLOT_FREE;
	if (slot < ds->free_hint)
		ds->free_hint = slot;
}

/* Forget whatever the cache holds at @slot. */
static void cache_drop(vsm_dstore *ds, uint32_t slot)
{
	vsm_record *r;
	uint32_t i, last;

	if (slot >= ds->n_slots)
		return;
	if (ds->use[slot] == VSM_DS_SLOT_DAMAGED)
		damaged_remove(ds, slot);
	if (ds->use[slot] != VSM_DS_SLOT_PIECE)
		slot_release(ds, slot);
	if (!(r = ds->by_slot[slot]))
		return;
	names_remove(ds, r);
	vsm_strmap_del(&ds->uuids, r->uuid);
	for (i = 0; i < r->n_cont; i++)
		if (r->cont[i] < ds->n_slots && ds->use[r->cont[i]] == VSM_DS_SLOT_PIECE)
			slot_release(ds, r->cont[i]);
	last = (uint32_t)ds->n_recs - 1;
	ds->recs[ds->pos[slot]] = ds->recs[last];
	ds->pos[ds->recs[last]->slot] = ds->pos[slot];
	ds->n_recs--;
	ds->by_slot[slot] = NULL;
	vsm_record_free(r);
}

/* Take @r into the cache at r->slot. */
static int cache_put(vsm_dstore *ds, vsm_record *r)
{
	uint32_t i, n = 0, other;
	int rc;

	if ((rc = slots_ensure(ds, r->slot + 1)) < 0)
		goto fail;
	for (i = 0; i < r->n_cont; i++)
		if ((rc = slots_ensure(ds, r->cont[i] + 1)) < 0)
			goto fail;
	cache_drop(ds, r->slot);
	if (ds->n_recs == ds->cap_recs) {
		size_t cap = ds->cap_recs ? ds->cap_recs * 2 : 64;
		vsm_record **g = realloc(ds->recs, cap * sizeof(*g));

		if (!g) {
			rc = vsm_err(VSM_ENOMEM, "out of memory");
			goto fail;
		}
		ds->recs = g;
		ds->cap_recs = cap;
	}
	if (vsm_strmap_get(&ds->names, r->name, &other)) {
		vsm_strmap_get(&ds->dup_names, r->name, &n);
		rc = vsm_strmap_put(&ds->dup_names, r->name, n ? n + 1 : 2);
	} else {
		rc = vsm_strmap_put(&ds->names, r->name, r->slot);
	}
	if (rc < 0 || (rc = vsm_strmap_put(&ds->uuids, r->uuid, r->slot)) < 0)
		goto fail;
	ds->pos[r->slot] = (uint32_t)ds->n_recs;
	ds->recs[ds->n_recs++] = r;
	ds->by_slot[r->slot] = r;
	ds->use[r->slot] = VSM_DS_SLOT_RECORD;
	for (i = 0; i < r->n_cont; i++)
		ds->use[r->cont[i]] = VSM_DS_SLOT_PIECE;
	return 0;
fail:
	vsm_record_free(r);
	/* A cache that lost track of a slot is rebuilt on the next use. */
	ds->gen = 0;
	return rc;
}

static int cache_put_damaged(vsm_dstore *ds, uint32_t slot, const char *why)
{
	uint32_t *s;
	char **w;
	int rc;

	if ((rc = slots_ensure(ds, slot + 1)) < 0)
		return rc;
	cache_drop(ds, slot);
	if (!(s = realloc(ds->damaged, (ds->n_damaged + 1) * sizeof(*s))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	ds->damaged = s;
	if (!(w = realloc(ds->damaged_why, (ds->n_damaged + 1) * sizeof(*w))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	ds->damaged_why = w;
	if (!(w[ds->n_damaged] = vsm__strdup(why ? why : "unreadable")))
		return -VSM_ENOMEM;
	s[ds->n_damaged++] = slot;
	ds->use[slot] = VSM_DS_SLOT_DAMAGED;
	return 0;
}

/* Apply what a read of @slot found. Takes @si's buffers. */
static int cache_apply(vsm_ctx *ctx, vsm_dstore *ds, uint32_t slot, vsm_slot_info *si,
		       bool announce)
{
	char what[128];
	vsm_record *r = NULL;
	int rc = 0;

	snprintf(what, sizeof(what), "datastore '%s': container record in slot %u",
		 ds->name, slot);
	if ((rc = slots_ensure(ds, slot + 1)) < 0)
		goto out;
	switch (si->state) {
	case VSM_SLOT_USED:
		if (vsm_record_decode(&r, si->payload, si->len, what) < 0) {
			/* Checksum fine but contents refused: as damaged. */
			rc = cache_put_damaged(ds, slot, vsm_error_last()->message);
			vsm__error_reset();
			break;
		}
		r->slot = slot;
		r->seq = si->seq;
		r->stamp = si->stamp;
		r->cont = si->cont;
		r->n_cont = si->n_cont;
		si->cont = NULL;
		rc = cache_put(ds, r);
		break;
	case VSM_SLOT_DAMAGED:
		if (announce)
			vsm__log(ctx, VSM_LOG_WARN, "%s is damaged (%s); it is skipped and never "
				 "reused", what, si->reason ? si->reason : "?");
		rc = cache_put_damaged(ds, slot, si->reason);
		break;
	case VSM_SLOT_CONT:
		/* A piece belongs to whichever head names it; if none does,
		 * it is free. Pieces never appear in the ring. */
		if (ds->use[slot] != VSM_DS_SLOT_PIECE)
			cache_drop(ds, slot);
		break;
	default:
		cache_drop(ds, slot);
		break;
	}
	/* A slot never written has no row to bring up to date. */
	if (rc == 0 && si->state != VSM_SLOT_EMPTY)
		rc = dirty_add(ds, slot);
out:
	vsm_slot_info_clear(si);
	return rc;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Read @slot, waiting out a record that is being rewritten as we read. */
static int slot_read(vsm_dstore *ds, uint32_t slot, vsm_slot_info *si)
{
	int rc, tries;

	for (tries = 0; ; tries++) {
		rc = vsm_meta_slot_read(ds->meta, slot, si);
		if (rc != -VSM_EBUSY || tries >= READ_TRIES)
			break;
		vsm__error_reset();
		sleep_ms(1 + tries / 5);
	}
	if (rc == -VSM_EBUSY) {
		/* Still not whole after the writer had every chance: damaged. */
		vsm__error_reset();
		memset(si, 0, sizeof(*si));
		si->state = VSM_SLOT_DAMAGED;
		if (!(si->reason = vsm__strdup("its continuation pieces do not match it")))
			return -VSM_ENOMEM;
		rc = 0;
	}
	return rc;
}

static int slot_reload(vsm_ctx *ctx, vsm_dstore *ds, uint32_t slot, bool announce)
{
	vsm_slot_info si;
	int rc = slot_read(ds, slot, &si);

	return rc < 0 ? rc : cache_apply(ctx, ds, slot, &si, announce);
}

/* --- the catalog's copy --- */

static char *cont_text(const vsm_record *r)
{
	size_t len = (size_t)r->n_cont * 11 + 1, at = 0;
	char *s = malloc(len);
	uint32_t i;

	if (!s)
		return NULL;
	s[0] = '\0';
	for (i = 0; i < r->n_cont; i++)
		at += (size_t)snprintf(s + at, len - at, i ? ",%u" : "%u", r->cont[i]);
	return s;
}

/* Write the rows of the slots that changed since the last save. Rows are
 * never deleted, and a row only moves forward (by the generation its slot
 * was written at), so processes of one state directory saving what they
 * read at different times never put an older row over a newer one. */
static int catalog_save(vsm_ctx *ctx, vsm_dstore *ds)
{
	size_t i;
	int rc;

	if ((rc = vsm_catalog_begin(ctx->cat)) < 0)
		return rc;
	for (i = 0; i < ds->n_dirty; i++) {
		uint32_t slot = ds->dirty[i];
		const vsm_record *r = slot < ds->n_slots ? ds->by_slot[slot] : NULL;
		uint8_t use = slot < ds->n_slots ? ds->use[slot] : 0;
		char *json = NULL, *cont = NULL;
		const char *why = NULL;
		size_t k;

		if (r && ((rc = vsm_record_encode(&json, r)) < 0 || !(cont = cont_text(r)))) {
			free(json);
			rc = rc < 0 ? rc : -VSM_ENOMEM;
			goto fail;
		}
		for (k = 0; use == VSM_DS_SLOT_DAMAGED && k < ds->n_damaged; k++)
			if (ds->damaged[k] == slot)
				why = ds->damaged_why[k];
		rc = vsm_catalog_exec(ctx->cat,
			"INSERT INTO records(datastore, slot, state, name, uuid, record, seq, "
			"stamp, cont, reason) VALUES(?,?,?,?,?,?,?,?,?,?) "
			"ON CONFLICT(datastore, slot) DO UPDATE SET state = excluded.state, "
			"name = excluded.name, uuid = excluded.uuid, record = excluded.record, "
			"seq = excluded.seq, stamp = excluded.stamp, cont = excluded.cont, "
			"reason = excluded.reason WHERE excluded.stamp >= records.stamp",
			"siisssiiss", ds->name, (int64_t)slot,
			(int64_t)(r ? VSM_DS_SLOT_RECORD : use == VSM_DS_SLOT_DAMAGED ?
				  VSM_DS_SLOT_DAMAGED : VSM_DS_SLOT_FREE),
			r ? r->name : NULL, r ? r->uuid : NULL, json,
			(int64_t)(r ? r->seq : 0), (int64_t)(r ? r->stamp : ds->gen), cont, why);
		free(json);
		free(cont);
		if (rc < 0)
			goto fail;
	}
	if ((rc = vsm_catalog_exec(ctx->cat, "UPDATE datastores SET generation = ? WHERE "
				   "name = ? AND generation < ?", "isi", (int64_t)ds->gen,
				   ds->name, (int64_t)ds->gen)) < 0)
		goto fail;
	if ((rc = vsm_catalog_commit(ctx->cat)) < 0)
		goto fail;
	ds->n_dirty = 0;
	ds->cat_gen = ds->gen;
	return 0;
fail:
	vsm_catalog_rollback(ctx->cat);
	return rc;
}

/* The catalog is only a cache: a failure to update it costs the next
 * process a rescan, never a wrong answer. */
static void catalog_sync(vsm_ctx *ctx, vsm_dstore *ds)
{
	if (!ds->n_dirty && ds->cat_gen == ds->gen)
		return;
	if (catalog_save(ctx, ds) < 0) {
		vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': catalog cache not updated: %s",
			 ds->name, vsm_error_last()->message);
		vsm__error_reset();
	}
}

typedef struct {
	vsm_dstore *ds;
	vsm_ctx *ctx;
} load_state;

static int load_row(void *payload, int ncol, const char *const *cols)
{
	load_state *st = payload;
	uint32_t slot = (uint32_t)strtoul(cols[0], NULL, 10);
	vsm_record *r = NULL;
	char what[128];
	const char *p;
	int rc;

	(void)ncol;
	if (atoi(cols[1]) == VSM_DS_SLOT_DAMAGED)
		return cache_put_damaged(st->ds, slot, cols[4]);
	if (atoi(cols[1]) != VSM_DS_SLOT_RECORD || !cols[2])
		return 0;
	snprintf(what, sizeof(what), "catalog cache of datastore '%s' slot %u",
		 st->ds->name, slot);
	if ((rc = vsm_record_decode(&r, cols[2], strlen(cols[2]), what)) < 0)
		return rc;
	r->slot = slot;
	r->seq = strtoull(cols[3], NULL, 10);
	r->stamp = strtoull(cols[5], NULL, 10);
	for (p = cols[6]; p && *p; ) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		uint32_t *g = realloc(r->cont, (r->n_cont + 1) * sizeof(*g));

		if (!g || end == p) {
			vsm_record_free(r);
			return g ? vsm_err(VSM_ECORRUPT, "%s: bad continuation list", what)
				 : vsm_err(VSM_ENOMEM, "out of memory");
		}
		r->cont = g;
		r->cont[r->n_cont++] = (uint32_t)v;
		p = *end == ',' ? end + 1 : end;
	}
	return cache_put(st->ds, r);
}

/* Take the catalog's copy: 1 if there was one (ds->gen set), else 0. */
static int catalog_load(vsm_ctx *ctx, vsm_dstore *ds)
{
	load_state st = {ds, ctx};
	char **gen = NULL;
	size_t n = 0;
	uint64_t g;
	int rc;

	if ((rc = vsm_catalog_strings(ctx->cat, &gen, &n, "SELECT generation FROM datastores "
				      "WHERE name = ?", "s", ds->name)) < 0)
		return rc;
	g = n ? strtoull(gen[0], NULL, 10) : 0;
	vsm_strv_free(gen, n);
	if (!g)
		return 0;
	vsm__ds_cache_clear(ds);
	rc = vsm_catalog_query(ctx->cat, load_row, &st, "SELECT slot, state, record, seq, "
			       "reason, stamp, cont FROM records WHERE datastore = ?", "s",
			       ds->name);
	if (rc < 0) {
		vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': catalog cache unreadable (%s), "
			 "rescanning", ds->name, vsm_error_last()->message);
		vsm__error_reset();
		vsm__ds_cache_clear(ds);
		return 0;
	}
	ds->gen = g;
	ds->cat_gen = g;
	return 1;
}

/* --- reading the datastore --- */

/* Rebuild the cache from every slot on the datastore. */
static int rescan(vsm_ctx *ctx, vsm_dstore *ds, uint64_t gen)
{
	uint32_t slot;
	int rc;

	vsm__ds_cache_clear(ds);
	if ((rc = vsm_meta_reload(ds->meta)) < 0 ||
	    (rc = slots_ensure(ds, ds->meta->geom.slot_count)) < 0)
		goto fail;
	for (slot = 0; slot < ds->meta->geom.slot_count; slot++)
		if ((rc = slot_reload(ctx, ds, slot, true)) < 0)
			goto fail;
	ds->gen = gen;
	return 0;
fail:
	vsm__ds_cache_clear(ds);
	return rc;
}

/* Catch up from ds->gen to @gen through the ring; 1 if the ring no longer
 * covers that span (the caller rescans). */
static int catch_up(vsm_ctx *ctx, vsm_dstore *ds, uint64_t gen)
{
	uint32_t *slots, slot;
	uint64_t g, n = gen - ds->gen;
	size_t k = 0, i;
	int rc = 0, got;

	if (gen < ds->gen || n > ds->meta->geom.ring_entries || ds->meta->geom.version < 2)
		return 1;
	if (!(slots = malloc((size_t)n * sizeof(*slots))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	/* First every entry, then the slots: an entry overwritten while we
	 * read the slots would otherwise go unnoticed. */
	for (g = ds->gen + 1; g <= gen; g++) {
		if ((got = vsm_meta_ring_get(ds->meta, g, &slot)) <= 0) {
			rc = got < 0 ? got : 1;
			goto out;
		}
		if (slot != UINT32_MAX)
			slots[k++] = slot;
	}
	for (i = 0; i < k; i++)
		if ((rc = slot_reload(ctx, ds, slots[i], true)) < 0)
			goto out;
	ds->gen = gen;
out:
	free(slots);
	return rc;
}

/* Bring the cache to generation @gen, just read from the datastore. */
static int refresh_to(vsm_ctx *ctx, vsm_dstore *ds, uint64_t gen)
{
	int rc;

	if (gen == ds->gen)
		return 0;
	/* A change we did not make ourselves (ours update ds->gen), unless
	 * the lease renewal already announced it. */
	if (ds->gen != 0 && vsm__lease_gen_unseen(ds->lease, gen))
		vsm__event_emit(ctx->events, VSM_EVENT_DATASTORE_CHANGED, ds->name, NULL, NULL,
				"generation moved", gen);
	if (ds->gen == 0 && (rc = catalog_load(ctx, ds)) < 0)
		return rc;
	rc = ds->gen ? catch_up(ctx, ds, gen) : 1;
	if (rc == 1)
		rc = rescan(ctx, ds, gen);
	if (rc < 0) {
		vsm__ds_cache_clear(ds);
		return rc;
	}
	vsm__lease_note_gen(ds->lease, gen);
	catalog_sync(ctx, ds);
	return 0;
}

int vsm__ds_refresh(vsm_ctx *ctx, vsm_dstore *ds)
{
	uint64_t gen;
	int rc = vsm_meta_generation(ds->meta, &gen);

	return rc < 0 ? rc : refresh_to(ctx, ds, gen);
}

/* --- changing it --- */

int vsm__ds_change_begin(vsm_ctx *ctx, vsm_dstore *ds)
{
	uint64_t gen;
	uint32_t slot;
	int rc;

	/* What a dead process left half done here is finished before this
	 * context's first change of the datastore (vsm_ctx_open already did
	 * it for the backends registered then). Once per open datastore:
	 * what cannot be finished now waits for the next context. */
	if (ds->lock_depth == 0 && !ds->recovered && !ds->recovering) {
		ds->recovered = true;
		ds->recovering = true;
		vsm__wf_recover(ctx, ds->name, false);
		ds->recovering = false;
	}
	if (ds->lock_depth++ > 0)
		return 0;
	if (!ds->lock && (rc = vsm__dslock_open(&ds->lock, ds->meta, ds->lease, ds->name,
							   ctx->state_dir)) < 0)
		goto fail;
	if (!ds->lease && !ds->warned_no_caw) {
		ds->warned_no_caw = true;
		vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': no lease area open; metadata "
			 "changes are serialised among the processes of this host only",
			 ds->name);
	}
	if ((rc = vsm__dslock_acquire(ds->lock)) < 0)
		goto fail;
	if (ds->meta->geom.version < 2 && (rc = vsm_meta_upgrade(ds->meta)) < 0)
		goto unlock;
	/* A holder that died between its intent and its generation write
	 * left the intent: announce it, the slot may have changed. */
	if ((rc = vsm_meta_generation(ds->meta, &gen)) < 0 ||
	    (rc = vsm_meta_ring_get(ds->meta, gen + 1, &slot)) < 0)
		goto unlock;
	if (rc == 1 && ((rc = vsm__dslock_check(ds->lock)) < 0 ||
			(rc = vsm_meta_set_generation(ds->meta, ++gen)) < 0))
		goto unlock;
	/* Under the lock nobody else moves the generation: no need to read
	 * it again. */
	if ((rc = refresh_to(ctx, ds, gen)) < 0)
		goto unlock;
	return 0;
unlock:
	vsm__dslock_release(ds->lock);
fail:
	ds->lock_depth = 0;
	return rc;
}

void vsm__ds_change_end(vsm_ctx *ctx, vsm_dstore *ds)
{
	if (ds->lock_depth <= 0 || --ds->lock_depth > 0)
		return;
	vsm__dslock_release(ds->lock);
	catalog_sync(ctx, ds);
}

/* Free slots for @n pieces of a record, growing the area as needed. */
static int pick_slots(vsm_dstore *ds, uint32_t *out, uint32_t n)
{
	uint32_t got = 0, s;
	int rc;

	while (got < n) {
		if ((rc = slots_ensure(ds, ds->meta->geom.slot_count)) < 0)
			return rc;
		for (s = ds->free_hint; s < ds->meta->geom.slot_count && got < n; s++) {
			if (ds->use[s] != VSM_DS_SLOT_FREE)
				continue;
			if (got == 0)
				ds->free_hint = s;
			out[got++] = s;
		}
		if (got < n) {
			if (got == 0)
				ds->free_hint = ds->meta->geom.slot_count;
			if ((rc = vsm__dslock_check(ds->lock)) < 0 ||
			    (rc = vsm_meta_grow(ds->meta)) < 0)
				return rc;
			got = 0;
		}
	}
	return 0;
}

/*
 * Write @json (NULL: a tombstone) to @slot as the next generation. The
 * commit point is the slot write: before it nothing changed; after it the
 * change stands, and a failure to move the generation is left for the
 * next lock holder to finish (it finds our intent in the ring).
 */
static int commit(vsm_ctx *ctx, vsm_dstore *ds, uint32_t slot, const char *json,
		  vsm_record *r)
{
	uint64_t gen = ds->gen + 1, seq = 0;
	uint32_t n_cont = json ? vsm_meta_cont_needed(ds->meta, strlen(json)) : 0;
	uint32_t *cont = NULL;
	vsm_record *copy = NULL;
	int rc;

	if (n_cont) {
		if (!(cont = calloc(n_cont, sizeof(*cont))))
			return vsm_err(VSM_ENOMEM, "out of memory");
		/* The head's own slot is taken already (or is the record's). */
		ds->use[slot] = VSM_DS_SLOT_RECORD;
		rc = pick_slots(ds, cont, n_cont);
		if (!ds->by_slot[slot])
			slot_release(ds, slot);
		if (rc < 0)
			goto out;
	}
	if (r && !(copy = vsm_record_dup(r))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if ((rc = vsm__dslock_check(ds->lock)) < 0 ||
	    (rc = vsm_meta_ring_put(ds->meta, gen, slot)) < 0 ||
	    (rc = vsm__dslock_check(ds->lock)) < 0 ||
	    (rc = vsm_meta_slot_write(ds->meta, slot, json, json ? strlen(json) : 0, gen,
				      cont, n_cont, &seq)) < 0)
		goto out;
	/* Committed. */
	if (vsm_meta_set_generation(ds->meta, gen) < 0 || vsm_bdev_flush(ds->meta->bdev) < 0) {
		vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': record written, generation not "
			 "moved (%s); the next change announces it", ds->name,
			 vsm_error_last()->message);
		vsm__error_reset();
		ds->gen = 0;
	} else {
		ds->gen = gen;
		vsm__lease_note_gen(ds->lease, gen);
	}
	if (r) {
		r->seq = seq;
		r->stamp = gen;
	}
	if (copy) {
		copy->seq = seq;
		copy->stamp = gen;
		free(copy->cont);
		copy->cont = cont;
		copy->n_cont = n_cont;
		cont = NULL;
		rc = cache_put(ds, copy); /* takes @copy, also on failure */
		copy = NULL;
		if (rc < 0)
			vsm__error_reset(); /* ds->gen = 0: rebuilt on next use */
	} else {
		cache_drop(ds, slot);
	}
	if (dirty_add(ds, slot) < 0)
		vsm__error_reset();
	rc = 0;
out:
	vsm_record_free(copy);
	free(cont);
	return rc;
}

/* An attached container's record is written only under its lease, and
 * carries the lease version as its fencing token (lib/lease). */
static int fence(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r, vsm_record **fenced)
{
	const vsm_record *prev = r->slot < ds->n_slots ? ds->by_slot[r->slot] : NULL;
	vsm_record *probe = NULL;
	uint64_t lver = 0;
	int rc;

	*fenced = NULL;
	if (prev && strcmp(prev->uuid, r->uuid) != 0)
		prev = NULL;
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
	if ((rc = vsm__lease_fence(ds->lease, probe, &lver)) < 0)
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

int vsm__ds_put_record(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r)
{
	vsm_record *fenced = NULL, *cur;
	char *json = NULL;
	int rc;

	if ((rc = vsm__ds_change_begin(ctx, ds)) < 0)
		return rc;
	cur = r->slot < ds->n_slots ? ds->by_slot[r->slot] : NULL;
	if (!cur || strcmp(cur->uuid, r->uuid) != 0) {
		rc = vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' no longer exists",
			     ds->name, r->name);
		goto out;
	}
	/* Lost updates: the record must be the version the caller read. */
	if (r->seq && cur->seq != r->seq) {
		rc = vsm_err(VSM_EBUSY, "datastore '%s': container '%s' was changed by another "
			     "process meanwhile; try again", ds->name, r->name);
		goto out;
	}
	if ((rc = fence(ctx, ds, r, &fenced)) < 0)
		goto out;
	if ((rc = vsm_record_encode(&json, fenced ? fenced : r)) < 0)
		goto out;
	if ((rc = commit(ctx, ds, r->slot, json, fenced ? fenced : r)) == 0 && fenced) {
		r->seq = fenced->seq;
		r->stamp = fenced->stamp;
		r->lease_version = fenced->lease_version;
	}
out:
	free(json);
	vsm_record_free(fenced);
	vsm__ds_change_end(ctx, ds);
	return rc;
}

int vsm__ds_insert_record(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r)
{
	char *json = NULL;
	uint32_t slot;
	int rc;

	if ((rc = vsm__ds_change_begin(ctx, ds)) < 0)
		return rc;
	if (vsm_strmap_get(&ds->names, r->name, NULL)) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': container '%s' already exists",
			     ds->name, r->name);
		goto out;
	}
	if (vsm_strmap_get(&ds->uuids, r->uuid, NULL)) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': container %s already exists",
			     ds->name, r->uuid);
		goto out;
	}
	if ((rc = pick_slots(ds, &slot, 1)) < 0)
		goto out;
	r->slot = slot;
	r->seq = 0;
	free(r->cont);
	r->cont = NULL;
	r->n_cont = 0;
	if ((rc = vsm_record_encode(&json, r)) < 0)
		goto out;
	rc = commit(ctx, ds, slot, json, r);
out:
	free(json);
	vsm__ds_change_end(ctx, ds);
	return rc;
}

int vsm__ds_free_slot(vsm_ctx *ctx, vsm_dstore *ds, uint32_t slot, const char *uuid)
{
	const vsm_record *cur;
	int rc;

	if ((rc = vsm__ds_change_begin(ctx, ds)) < 0)
		return rc;
	cur = slot < ds->n_slots ? ds->by_slot[slot] : NULL;
	if (cur && !strcmp(cur->uuid, uuid) && (rc = commit(ctx, ds, slot, NULL, NULL)) == 0)
		rc = 1;
	vsm__ds_change_end(ctx, ds);
	return rc;
}

int vsm__ds_free_uuid(vsm_ctx *ctx, vsm_dstore *ds, const char *uuid)
{
	uint32_t slot;
	int rc;

	if ((rc = vsm__ds_change_begin(ctx, ds)) < 0)
		return rc;
	if (vsm_strmap_get(&ds->uuids, uuid, &slot))
		rc = commit(ctx, ds, slot, NULL, NULL);
	vsm__ds_change_end(ctx, ds);
	return rc;
}

int vsm__ds_touch(vsm_ctx *ctx, vsm_dstore *ds)
{
	/* Taking the lock announces whatever a dead holder left undone. */
	int rc = vsm__ds_change_begin(ctx, ds);

	if (rc == 0)
		vsm__ds_change_end(ctx, ds);
	return rc;
}

vsm_record *vsm__ds_find(vsm_dstore *ds, const char *name, const char *uuid)
{
	uint32_t slot;

	if (name) {
		if (vsm_strmap_get(&ds->dup_names, name, NULL) ||
		    !vsm_strmap_get(&ds->names, name, &slot))
			return NULL;
	} else if (!uuid || !vsm_strmap_get(&ds->uuids, uuid, &slot)) {
		return NULL;
	}
	return slot < ds->n_slots ? ds->by_slot[slot] : NULL;
}

int vsm__ds_find_name(vsm_dstore *ds, const char *name, vsm_record **out)
{
	char *list = NULL;
	size_t len = 0, i;
	unsigned int n = 0;
	FILE *f;

	*out = NULL;
	if (!vsm_strmap_get(&ds->dup_names, name, NULL)) {
		if (!(*out = vsm__ds_find(ds, name, NULL)))
			return vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' does not "
				       "exist", ds->name, name);
		return 0;
	}
	if (!(f = open_memstream(&list, &len)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (i = 0; i < ds->n_recs; i++)
		if (!strcmp(ds->recs[i]->name, name))
			fprintf(f, "%s%s in slot %u", n++ ? ", " : "", ds->recs[i]->uuid,
				ds->recs[i]->slot);
	fclose(f);
	vsm_err(VSM_EEXISTS, "datastore '%s': %u containers are named '%s' (%s); refusing "
		"to guess which one is meant: look it up by UUID", ds->name, n, name,
		list ? list : "");
	free(list);
	return -VSM_EEXISTS;
}

int vsm__ds_read_record(vsm_ctx *ctx, vsm_dstore *ds, uint32_t slot, const char *uuid,
			vsm_record **out)
{
	vsm_slot_info si;
	char what[128];
	int rc;

	(void)ctx;
	if ((rc = slot_read(ds, slot, &si)) < 0)
		return rc;
	snprintf(what, sizeof(what), "datastore '%s': container record in slot %u",
		 ds->name, slot);
	if (si.state == VSM_SLOT_DAMAGED)
		rc = vsm_err(VSM_ECORRUPT, "%s is damaged (%s)", what, si.reason ? si.reason : "?");
	else if (si.state != VSM_SLOT_USED)
		rc = -VSM_ENOTFOUND;
	else if ((rc = vsm_record_decode(out, si.payload, si.len, what)) == 0) {
		(*out)->slot = slot;
		(*out)->seq = si.seq;
		(*out)->stamp = si.stamp;
		if (uuid && strcmp((*out)->uuid, uuid)) {
			vsm_record_free(*out);
			*out = NULL;
			rc = -VSM_ENOTFOUND;
		}
	}
	if (rc == -VSM_ENOTFOUND)
		vsm_err(VSM_ENOTFOUND, "datastore '%s': container %s no longer exists",
			ds->name, uuid ? uuid : "");
	vsm_slot_info_clear(&si);
	return rc;
}
