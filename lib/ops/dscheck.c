/*
 * Datastore checks (include/vsm/check.h): list a datastore's devices
 * through the backend, tell apart the ones that nothing references and
 * that libvsm named, and remove those past the grace period when asked.
 * The rules and why they are safe: doc/datastore-layout.md, "Orphans".
 *
 * Of the datastore module it uses only vsm__ds_get, vsm__ds_refresh and
 * the cached records (ds->recs), plus ds->n_damaged (see unsure()).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "becall.h"
#include "ops.h"

struct vsm_orphan {
	char *key;
	uint64_t size;
	int64_t age; /* -1: unknown */
	int state;
	char *reason;
};

struct vsm_check_report {
	char *datastore;
	size_t devices, referenced, foreign;
	vsm_orphan *orphans;
	size_t n_orphans;
};

/* --- a sorted set of strings --- */

typedef struct {
	char **v;
	size_t n, cap;
} strset;

static int set_add(strset *s, const char *str)
{
	if (!str || !*str)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		char **grown = realloc(s->v, cap * sizeof(*grown));

		if (!grown)
			return vsm_err(VSM_ENOMEM, "out of memory");
		s->v = grown;
		s->cap = cap;
	}
	if (!(s->v[s->n] = vsm__strdup(str)))
		return -VSM_ENOMEM;
	s->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void set_seal(strset *s)
{
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_str);
}

static bool set_has(const strset *s, const char *str)
{
	return str && s->n && bsearch(&str, s->v, s->n, sizeof(*s->v), cmp_str) != NULL;
}

static void set_clear(strset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* --- what libvsm names its devices --- */

static bool uuid_shaped(const char *s)
{
	size_t i;

	for (i = 0; i < VSM_UUID_STRLEN; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	return true;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && !strcmp(s + n - t, tail);
}

/*
 * The core names every device it creates after the container's UUID
 * (lower case, as vsm__uuid_new writes it):
 *   <uuid>.state                          a container's VM-state area
 *   <uuid>-<device>.<raw|qcow2>           a container's device
 *   <uuid>-<device>-<8 hex>.<raw|qcow2>   a device added later (devices.c)
 *   <uuid>-<what>.<8 hex>.<raw|qcow2>     checkpoint layers, blobs, bundles
 * Only such names can be orphans; anything else on a datastore is a
 * user's (a golden image, a file put there by hand) and is never touched.
 * A name of this shape outside those rules (no device part) is not ours
 * either.
 */
static bool libvsm_named(const char *name)
{
	const char *rest;
	size_t i;

	if (strlen(name) <= VSM_UUID_STRLEN || !uuid_shaped(name))
		return false;
	rest = name + VSM_UUID_STRLEN;
	if (!strcmp(rest, ".state"))
		return true;
	if (rest[0] != '-')
		return false;
	for (i = 1; rest[i]; i++) {
		char c = rest[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	/* At least one character of device name before the extension. */
	return (ends_with(rest, ".raw") && strlen(rest) > 1 + 4) ||
	       (ends_with(rest, ".qcow2") && strlen(rest) > 1 + 6);
}

/* --- what is referenced --- */

typedef struct {
	strset keys;  /* keys and names */
	strset uuids; /* containers a journalled workflow works on */
} refs;

static void refs_clear(refs *r)
{
	set_clear(&r->keys);
	set_clear(&r->uuids);
}

static int refs_add_record(refs *r, const vsm_record *rec)
{
	size_t i, j;
	int rc = 0;

	/* A reservation is no container: it names no device, but a create
	 * in progress (maybe on another host) makes devices named after its
	 * uuid, which are not orphans while it stands. */
	if (rec->resv)
		return set_add(&r->uuids, rec->uuid);
	if (rec->group)
		return 0; /* a consistency group names no device */
	for (i = 0; rc == 0 && i < rec->n_devices; i++) {
		rc = set_add(&r->keys, rec->devices[i].key);
		for (j = 0; rc == 0 && j < rec->devices[i].chain_len; j++)
			rc = set_add(&r->keys, rec->devices[i].chain[j].key);
	}
	if (rc == 0)
		rc = set_add(&r->keys, rec->state_key);
	for (i = 0; rc == 0 && i < rec->n_ckpts; i++) {
		rc = set_add(&r->keys, rec->ckpts[i].state_key);
		for (j = 0; rc == 0 && j < rec->ckpts[i].n_layers; j++)
			rc = set_add(&r->keys, rec->ckpts[i].layers[j].key);
	}
	for (i = 0; rc == 0 && i < rec->n_layers; i++) {
		rc = set_add(&r->keys, rec->layers[i].key);
		if (rc == 0)
			rc = set_add(&r->keys, rec->layers[i].backing);
	}
	return rc;
}

/* A journal step's argument is a key, a name, "SLOT UUID" or a few such
 * words (lib/workflow.h, lib/checkpoint/ckpt.h): every word counts, and
 * a word that is a UUID protects every device of that container. */
static int step_arg_row(void *payload, int ncol, const char *const *cols)
{
	refs *r = payload;
	const char *p = cols[0];
	char word[VSM_BACKEND_KEY_MAX];
	int rc = 0;

	(void)ncol;
	while (p && *p && rc == 0) {
		size_t n = strcspn(p, " ");

		if (n > 0 && n < sizeof(word)) {
			memcpy(word, p, n);
			word[n] = '\0';
			rc = set_add(&r->keys, word);
			if (rc == 0 && n == VSM_UUID_STRLEN && uuid_shaped(word))
				rc = set_add(&r->uuids, word);
		}
		p += n;
		p += strspn(p, " ");
	}
	return rc;
}

/*
 * Everything referenced right now. The journal is read before the records:
 * a create writes its journal step before it makes the device, and its
 * record before it drops the step, so a device that was listed is seen
 * in one or the other (within this state directory; other hosts are
 * covered by the grace period).
 */
static int refs_load(refs *r, vsm_ctx *ctx, vsm_dstore *ds)
{
	size_t i;
	int rc;

	memset(r, 0, sizeof(*r));
	/* Every workflow of the journal, not only this datastore's: a key
	 * is unique to its datastore anyway, and more protection is safe. */
	if ((rc = vsm_catalog_query(ctx->cat, step_arg_row, r, "SELECT arg FROM workflow_steps",
				    "")) < 0 ||
	    (rc = vsm__ds_refresh(ctx, ds)) < 0)
		goto fail;
	for (i = 0; i < ds->n_recs; i++)
		if ((rc = refs_add_record(r, ds->recs[i])) < 0)
			goto fail;
	set_seal(&r->keys);
	set_seal(&r->uuids);
	return 0;
fail:
	refs_clear(r);
	return rc;
}

/* Why @key/@name is referenced, or NULL. */
static const char *referenced_by(const refs *r, const char *key, const char *name)
{
	char uuid[VSM_UUID_STRLEN + 1];

	if (set_has(&r->keys, key) || set_has(&r->keys, name))
		return "a container record or a running workflow names it";
	if (strlen(name) > VSM_UUID_STRLEN) {
		memcpy(uuid, name, VSM_UUID_STRLEN);
		uuid[VSM_UUID_STRLEN] = '\0';
		if (set_has(&r->uuids, uuid))
			return "a running workflow or a reservation works on its container";
	}
	return NULL;
}

/* Records in damaged slots may name any device; while there are some,
 * nothing can be called an orphan for sure. */
static size_t unsure(const vsm_dstore *ds)
{
	return ds->n_damaged;
}

/* --- listing --- */

typedef struct {
	char *key;
	char *name; /* NULL: the key */
	uint64_t size;
	int64_t mtime;
} listed;

typedef struct {
	listed *v;
	size_t n;
} listing;

static int list_cb(const vsm_backend_device_info *info, void *payload)
{
	listing *l = payload;
	listed *grown, *d;

	if (!info || info->version < 1 || !info->key || !info->key[0])
		return vsm_err(VSM_EINTERNAL, "device_list reported a device without a key");
	if (!(grown = realloc(l->v, (l->n + 1) * sizeof(*grown))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	l->v = grown;
	d = &l->v[l->n];
	memset(d, 0, sizeof(*d));
	if (!(d->key = vsm__strdup(info->key)) ||
	    (info->name && !(d->name = vsm__strdup(info->name)))) {
		free(d->key);
		return -VSM_ENOMEM;
	}
	d->size = info->size;
	d->mtime = info->mtime;
	l->n++;
	return 0;
}

static void listing_clear(listing *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].name);
	}
	free(l->v);
}

/* --- the report --- */

static int orphan_add(vsm_check_report *rep, const listed *d, int64_t age, int state,
		      char *reason)
{
	vsm_orphan *grown = realloc(rep->orphans, (rep->n_orphans + 1) * sizeof(*grown));
	vsm_orphan *o;

	if (!grown || !reason) {
		free(reason);
		if (grown)
			rep->orphans = grown;
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	rep->orphans = grown;
	o = &rep->orphans[rep->n_orphans];
	if (!(o->key = vsm__strdup(d->key))) {
		free(reason);
		return -VSM_ENOMEM;
	}
	o->size = d->size;
	o->age = age;
	o->state = state;
	o->reason = reason;
	rep->n_orphans++;
	return 0;
}

static char *fmt(const char *f, ...) VSM_PRINTF(1, 2);
static char *fmt(const char *f, ...)
{
	char *s = NULL;
	va_list ap;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* Remove one orphan past its grace period: look at the records and the
 * journal once more first, since another process may have come to use
 * it since the listing. Earlier orphans may be gone already, so nothing
 * here fails the call: what cannot be done is reported on the orphan. */
static void repair_one(vsm_ctx *ctx, vsm_dstore *ds, const listed *d, int *state, char **reason)
{
	const char *name = d->name ? d->name : d->key;
	const char *why;
	refs r;
	int rc;

	if (refs_load(&r, ctx, ds) < 0) {
		*state = VSM_ORPHAN_FAILED;
		*reason = fmt("kept: the records could not be read again before removing it: %s",
			      vsm_error_last() && vsm_error_last()->message ?
			      vsm_error_last()->message : "?");
		vsm__error_reset();
		return;
	}
	why = referenced_by(&r, d->key, name);
	if (!why && unsure(ds)) {
		*state = VSM_ORPHAN_UNSURE;
		*reason = fmt("kept: %zu record slots became damaged", unsure(ds));
		refs_clear(&r);
		return;
	}
	refs_clear(&r);
	if (why) {
		*state = VSM_ORPHAN_REFERENCED;
		*reason = fmt("kept: %s now", why);
		return;
	}
	rc = vsm__be_device_delete(ds, d->key, 0);
	if (rc == 0 || rc == -VSM_ENOTFOUND) {
		*state = VSM_ORPHAN_REMOVED;
		*reason = fmt(rc == 0 ? "removed" : "already gone");
		vsm__log(ctx, VSM_LOG_INFO, "datastore '%s': removed orphan device '%s'", ds->name,
			 d->key);
		vsm__error_reset();
		return;
	}
	*state = VSM_ORPHAN_FAILED;
	*reason = fmt("removal failed: %s", vsm_error_last() && vsm_error_last()->message ?
		      vsm_error_last()->message : vsm_strerror(rc));
	vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': cannot remove orphan device '%s': %s",
		 ds->name, d->key, *reason ? *reason : "?");
	vsm__error_reset();
}

static int cmp_orphan(const void *a, const void *b)
{
	return strcmp(((const vsm_orphan *)a)->key, ((const vsm_orphan *)b)->key);
}

static int classify(vsm_check_report *rep, vsm_ctx *ctx, vsm_dstore *ds, const listing *l,
		    const vsm_check_opts *opts)
{
	bool repair = opts->flags & VSM_CHECK_REPAIR;
	int64_t now = (int64_t)time(NULL);
	refs r;
	size_t i;
	int rc;

	if ((rc = refs_load(&r, ctx, ds)) < 0)
		return rc;
	for (i = 0; i < l->n && rc == 0; i++) {
		const listed *d = &l->v[i];
		const char *name = d->name ? d->name : d->key;
		/* Written "in the future" is another clock's doing: as young as
		 * can be. */
		int64_t age = d->mtime <= 0 ? -1 : d->mtime > now ? 0 : now - d->mtime;
		int state;
		char *reason;

		if (referenced_by(&r, d->key, name)) {
			rep->referenced++;
			continue;
		}
		if (!libvsm_named(name)) {
			rep->foreign++;
			continue;
		}
		if (age < 0 && opts->grace_seconds > 0) {
			state = VSM_ORPHAN_YOUNG;
			reason = fmt("kept: the backend cannot tell its age (grace period %llu s)",
				     (unsigned long long)opts->grace_seconds);
		} else if (age >= 0 && (uint64_t)age < opts->grace_seconds) {
			state = VSM_ORPHAN_YOUNG;
			reason = fmt("kept: last written %lld s ago, within the grace period of "
				     "%llu s (a create may still be running)", (long long)age,
				     (unsigned long long)opts->grace_seconds);
		} else if (unsure(ds)) {
			state = VSM_ORPHAN_UNSURE;
			reason = fmt("kept: %zu record slots of the datastore are damaged and may "
				     "name it", unsure(ds));
		} else if (!repair) {
			state = VSM_ORPHAN_FOUND;
			reason = fmt("no container record or running workflow references it");
		} else {
			repair_one(ctx, ds, d, &state, &reason);
		}
		rc = orphan_add(rep, d, age, state, reason);
	}
	refs_clear(&r);
	if (rc == 0 && rep->n_orphans > 1)
		qsort(rep->orphans, rep->n_orphans, sizeof(*rep->orphans), cmp_orphan);
	return rc;
}

VSM_API int vsm_datastore_check(vsm_check_report **out, vsm_ctx *ctx, const char *datastore,
				const vsm_check_opts *opts)
{
	static const vsm_check_opts defaults = VSM_CHECK_OPTS_INIT;
	vsm_check_report *rep = NULL;
	listing l = { NULL, 0 };
	vsm_dstore *ds;
	int rc;

	vsm__error_reset();
	if (!out || !ctx || !datastore)
		return vsm_err(VSM_EINVAL, "vsm_datastore_check: NULL argument");
	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (opts->version == 0 || opts->version > VSM_CHECK_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "datastore '%s': vsm_check_opts version %u is not "
			       "supported", datastore, opts->version);
	if (opts->flags & ~VSM_CHECK_REPAIR)
		return vsm_err(VSM_EINVAL, "datastore '%s': unknown check flags 0x%x", datastore,
			       opts->flags & ~VSM_CHECK_REPAIR);
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, datastore)) < 0)
		goto out;
	if (!vsm__be_can_list(ds)) {
		rc = vsm_err(VSM_ENOTSUP, "datastore '%s': backend '%s' cannot list its devices "
			     "(its vtable has no device_list)", datastore, vsm__be_scheme(ds));
		goto out;
	}
	if (!(rep = vsm__calloc(1, sizeof(*rep))) || !(rep->datastore = vsm__strdup(datastore))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	/* List first, then read what is referenced (see refs_load). */
	rc = vsm__be_device_list(ds, list_cb, &l);
	if (rc < 0) {
		vsm__error_prefix("datastore '%s'", datastore);
		goto out;
	}
	rep->devices = l.n;
	if ((rc = classify(rep, ctx, ds, &l, opts)) < 0)
		goto out;
	*out = rep;
	rep = NULL;
out:
	listing_clear(&l);
	vsm_check_report_free(rep);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API void vsm_check_report_free(vsm_check_report *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n_orphans; i++) {
		free(r->orphans[i].key);
		free(r->orphans[i].reason);
	}
	free(r->orphans);
	free(r->datastore);
	free(r);
}

VSM_API const char *vsm_check_report_datastore(const vsm_check_report *r)
{
	return r ? r->datastore : NULL;
}

VSM_API size_t vsm_check_report_devices(const vsm_check_report *r)
{
	return r ? r->devices : 0;
}

VSM_API size_t vsm_check_report_referenced(const vsm_check_report *r)
{
	return r ? r->referenced : 0;
}

VSM_API size_t vsm_check_report_foreign(const vsm_check_report *r)
{
	return r ? r->foreign : 0;
}

VSM_API size_t vsm_check_report_orphan_count(const vsm_check_report *r)
{
	return r ? r->n_orphans : 0;
}

VSM_API const vsm_orphan *vsm_check_report_orphan(const vsm_check_report *r, size_t i)
{
	return r && i < r->n_orphans ? &r->orphans[i] : NULL;
}

VSM_API size_t vsm_check_report_count(const vsm_check_report *r, int state)
{
	size_t i, n = 0;

	for (i = 0; r && i < r->n_orphans; i++)
		n += r->orphans[i].state == state;
	return n;
}

VSM_API size_t vsm_check_report_remaining(const vsm_check_report *r)
{
	return vsm_check_report_orphan_count(r) - vsm_check_report_count(r, VSM_ORPHAN_REMOVED) -
	       vsm_check_report_count(r, VSM_ORPHAN_REFERENCED);
}

VSM_API const char *vsm_orphan_key(const vsm_orphan *o)
{
	return o ? o->key : NULL;
}

VSM_API uint64_t vsm_orphan_size(const vsm_orphan *o)
{
	return o ? o->size : 0;
}

VSM_API int64_t vsm_orphan_age(const vsm_orphan *o)
{
	return o ? o->age : -1;
}

VSM_API int vsm_orphan_state_of(const vsm_orphan *o)
{
	return o ? o->state : 0;
}

VSM_API const char *vsm_orphan_reason(const vsm_orphan *o)
{
	return o ? o->reason : NULL;
}

VSM_API const char *vsm_orphan_state_name(int state)
{
	switch (state) {
	case VSM_ORPHAN_FOUND: return "found";
	case VSM_ORPHAN_YOUNG: return "young";
	case VSM_ORPHAN_REMOVED: return "removed";
	case VSM_ORPHAN_FAILED: return "failed";
	case VSM_ORPHAN_REFERENCED: return "referenced";
	case VSM_ORPHAN_UNSURE: return "unsure";
	}
	return NULL;
}
