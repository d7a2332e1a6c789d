/*
 * vsm_container_migrate: offline migration of a detached container to
 * another datastore (doc/migration.md). The copy rides the bundle path:
 * export to a temporary bundle in the state directory, import into the
 * target as a hidden ("incoming") record with the same UUID, read both
 * sides back and compare, then commit (migrate_finish.c). One journalled
 * workflow on the target datastore covers it all.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"
#include "migrate_int.h"
#include "vsm/migrate.h"

#define PHASES 3 /* export, import, verify */

typedef struct {
	vsm_progress_fn fn;
	void *payload;
	int phase;
	uint64_t unit;   /* bytes of one phase, from the export's total */
	bool cancelled;
} mig_prog;

static int tick(mig_prog *p, uint64_t done, uint64_t total)
{
	uint64_t part;

	if (!p->fn || p->cancelled)
		return p->cancelled ? -VSM_ECANCELED : 0;
	if (!p->unit)
		p->unit = total ? total : 1;
	part = total ? (uint64_t)((double)done / (double)total * (double)p->unit) : p->unit;
	if (part > p->unit)
		part = p->unit;
	if (p->fn((uint64_t)p->phase * p->unit + part, PHASES * p->unit, p->payload) != 0) {
		p->cancelled = true;
		return -VSM_ECANCELED;
	}
	return 0;
}

static int bundle_tick(uint64_t done, uint64_t total, void *payload)
{
	return tick(payload, done, total);
}

/* Compare the first @size bytes of what @skey on @sds and @tkey on @tds
 * read (through their chains). */
static int compare(vsm_dstore *sds, const char *skey, int sfmt, vsm_dstore *tds,
		   const char *tkey, int tfmt, uint64_t size, const char *what, uint64_t *done)
{
	vsm_cow *a = NULL, *b = NULL;
	vsm_cow_info ia, ib;
	uint8_t *x = NULL, *y = NULL;
	uint64_t off;
	int rc;

	if ((rc = ck_cow_open(&a, sds, skey, sfmt, true, false)) < 0 ||
	    (rc = ck_cow_open(&b, tds, tkey, tfmt, true, false)) < 0 ||
	    (rc = vsm_cow_get_info(a, &ia)) < 0 || (rc = vsm_cow_get_info(b, &ib)) < 0)
		goto out;
	if (!size)
		size = ia.virtual_size;
	if (ia.virtual_size < size || ib.virtual_size < size) {
		rc = vsm_err(VSM_ECORRUPT, "%s: sizes differ (%llu and %llu bytes)", what,
			     (unsigned long long)ia.virtual_size,
			     (unsigned long long)ib.virtual_size);
		goto out;
	}
	if (!(x = malloc(CK_CHUNK)) || !(y = malloc(CK_CHUNK))) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	for (off = 0; off < size; off += CK_CHUNK) {
		size_t n = size - off < CK_CHUNK ? (size_t)(size - off) : CK_CHUNK;

		if ((rc = vsm_cow_read(a, x, n, off)) < 0 || (rc = vsm_cow_read(b, y, n, off)) < 0)
			goto out;
		if (memcmp(x, y, n)) {
			rc = vsm_err(VSM_ECORRUPT, "%s: the copy differs at offset %llu", what,
				     (unsigned long long)off);
			goto out;
		}
		*done += n;
	}
out:
	free(x);
	free(y);
	vsm_cow_close(a);
	vsm_cow_close(b);
	return rc;
}

/* The target copy @t against the source @s: every device's view, every
 * checkpoint layer's view, the VM-state area (blobs were checked against
 * their sums by the import). */
static int verify(vsm_dstore *sds, const vsm_record *s, vsm_dstore *tds, const vsm_record *t,
		  mig_prog *p, uint64_t *bytes, bool tops)
{
	char what[512];
	size_t i, j;
	int rc;

	if (s->n_devices != t->n_devices || s->n_ckpts != t->n_ckpts)
		return vsm_err(VSM_ECORRUPT, "container '%s': the copy on datastore '%s' has "
			       "other devices or checkpoints", s->name, tds->name);
	for (i = 0; i < s->n_devices; i++) {
		const vsm_rec_device *a = &s->devices[i], *b = vsm_record_device(t, a->name);

		snprintf(what, sizeof(what), "container '%s' device '%s'", s->name, a->name);
		if (!b || b->size != a->size)
			return vsm_err(VSM_ECORRUPT, "%s: missing or resized on datastore '%s'",
				       what, tds->name);
		if (tops && (rc = compare(sds, a->key, a->format, tds, b->key, b->format, a->size,
					  what, bytes)) < 0)
			return rc;
		if ((rc = tick(p, (uint64_t)i + 1, s->n_devices + s->n_ckpts + 1)) < 0)
			return rc;
	}
	for (i = 0; i < s->n_ckpts; i++) {
		const vsm_rec_checkpoint *a = &s->ckpts[i], *b = ck_find(t, a->name);

		if (!b || b->n_layers != a->n_layers ||
		    ((a->parent || b->parent) && !ck_eq(a->parent, b->parent)))
			return vsm_err(VSM_ECORRUPT, "container '%s' checkpoint '%s': missing or "
				       "different on datastore '%s'", s->name, a->name, tds->name);
		for (j = 0; j < a->n_layers; j++) {
			const vsm_rec_frozen *la = ck_layer(s, a->layers[j].key);
			const vsm_rec_frozen *lb = ck_layer(t, b->layers[j].key);

			snprintf(what, sizeof(what), "container '%s' checkpoint '%s' device '%s'",
				 s->name, a->name, a->layers[j].device);
			if (!la || !lb || strcmp(a->layers[j].device, b->layers[j].device))
				return vsm_err(VSM_ECORRUPT, "%s: layer missing", what);
			if ((rc = compare(sds, la->key, la->format, tds, lb->key, lb->format, 0,
					  what, bytes)) < 0)
				return rc;
		}
		if ((rc = tick(p, s->n_devices + (uint64_t)i + 1,
			       s->n_devices + s->n_ckpts + 1)) < 0)
			return rc;
	}
	if (s->state_key && t->state_key &&
	    (rc = compare(sds, s->state_key, VSM_FORMAT_RAW, tds, t->state_key, VSM_FORMAT_RAW,
			  s->state_size < t->state_size ? s->state_size : t->state_size,
			  "VM-state area", bytes)) < 0) {
		vsm__error_prefix("container '%s'", s->name);
		return rc;
	}
	return tick(p, 1, 1);
}

int ck_mig_verify_frozen(vsm_dstore *sds, const vsm_record *s, vsm_dstore *tds,
			 const vsm_record *t, uint64_t *bytes)
{
	mig_prog none = {0};

	return verify(sds, s, tds, t, &none, bytes, false);
}

/* Why @r (on @sds) may not leave now, or 0. */
static int refuse(vsm_ctx *ctx, vsm_dstore *sds, const vsm_record *r)
{
	return ck_mig_refuse(ctx, sds, r, false);
}

int ck_mig_refuse(vsm_ctx *ctx, vsm_dstore *sds, const vsm_record *r, bool live)
{
	if (r->migration)
		return vsm_err(VSM_EBUSY, "container '%s' is being migrated already", r->name);
	if (r->attached_host && !live)
		return vsm_err(VSM_EBUSY, "container '%s' is attached to host '%s'; detach it "
			       "before migrating it offline", r->name, r->attached_host);
	if (r->n_deploys)
		return vsm_err(VSM_EBUSY, "container '%s': device '%s' is deployed", r->name,
			       r->deploys[0].device);
	/* A group member would lose its group (the destroy check says). */
	if (ctx->destroy_check) {
		int rc = ctx->destroy_check(ctx, sds->name, r);

		if (rc < 0) {
			vsm__error_prefix("cannot migrate");
			return rc;
		}
	}
	return 0;
}

/* The migration of a detached container (the only kind before 0.2's
 * live migration); @opts is checked by the caller. */
static int migrate_offline(vsm_container *c, const char *datastore,
			   const vsm_migrate_opts *opts)
{
	vsm_bundle_opts bo = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats bs;
	mig_prog prog = {0};
	vsm_record *s = NULL, *t = NULL;
	const vsm_record *cur;
	vsm_dstore *sds, *tds;
	char *src = NULL, *path = NULL, arg[VSM_UUID_STRLEN + 256];
	uint64_t seq, verified = 0;
	vsm_wf wf = {0};
	bool began = false;
	vsm_ctx *ctx;
	int rc;

	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if (!(src = vsm__strdup(vsm_container_datastore(c)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if (!strcmp(src, datastore)) {
		rc = vsm_err(VSM_EINVAL, "container '%s' is on datastore '%s' already",
			     vsm_container_name(c), datastore);
		goto out;
	}
	if ((rc = vsm__ds_get(&tds, ctx, datastore)) < 0 || (rc = vsm__ds_refresh(ctx, tds)) < 0 ||
	    (rc = vsm__ds_get(&sds, ctx, src)) < 0 || (rc = vsm__ds_refresh(ctx, sds)) < 0)
		goto out;
	if (!(cur = vsm__ds_find(sds, NULL, vsm_container_uuid(c))) || cur->destroying) {
		rc = vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' no longer exists", src,
			     vsm_container_name(c));
		goto out;
	}
	if (!(s = vsm_record_dup(cur))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	seq = s->seq;
	if ((rc = refuse(ctx, sds, s)) < 0)
		goto out;
	if (vsm__ds_find(tds, s->name, NULL) || vsm__ds_find(tds, NULL, s->uuid)) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': container '%s' already exists", datastore,
			     s->name);
		goto out;
	}
	if ((rc = ck_mig_bundle_path(ctx, s->uuid, &path)) < 0)
		goto out;
	unlink(path); /* a leftover no journal entry owns any more */
	if ((rc = vsm__wf_begin(&wf, ctx, "migrate", datastore, s->name)) < 0)
		goto out;
	began = true;
	if ((rc = vsm__wf_undo(&wf, MIG_WF_UNLINK, s->uuid)) < 0)
		goto abort;

	prog.fn = opts->progress;
	prog.payload = opts->payload;
	bo.progress = bundle_tick;
	bo.payload = &prog;
	if ((rc = vsm_bundle_export(c, NULL, path, &bo)) < 0)
		goto cancel_or_abort;
	prog.phase = 1;
	bo.stats = &bs;
	{
		ck_import_how how = { &wf, s->uuid, VSM_REC_MIG_INCOMING, s->ctime, s->thick };

		if ((rc = ck_import(NULL, ctx, path, datastore, s->name, &bo, &how)) < 0)
			goto cancel_or_abort;
	}
	if (prog.cancelled) { /* the import's last report is not checked */
		rc = -VSM_ECANCELED;
		goto cancel_or_abort;
	}
	prog.phase = 2;
	if ((rc = vsm__ds_refresh(ctx, tds)) < 0)
		goto abort;
	if (!(cur = vsm__ds_find(tds, NULL, s->uuid)) || !(t = vsm_record_dup(cur))) {
		rc = cur ? -VSM_ENOMEM : vsm_err(VSM_ESTATE, "datastore '%s': the copy of "
						 "container '%s' went away", datastore, s->name);
		goto abort;
	}
	if ((rc = verify(sds, s, tds, t, &prog, &verified, true)) < 0)
		goto cancel_or_abort;
	/* The source must still be what was copied: checked, committed and
	 * hidden under the source's metadata lock, so no change of it from
	 * another process slips in between. */
	if ((rc = vsm__ds_change_begin(ctx, sds)) < 0)
		goto abort;
	if (!(cur = vsm__ds_find(sds, NULL, s->uuid)) || cur->seq != seq) {
		vsm__ds_change_end(ctx, sds);
		rc = vsm_err(VSM_EBUSY, "container '%s' was changed by another process meanwhile; "
			     "try again", s->name);
		goto abort;
	}
	/* Commit point: from here the journal finishes the move. */
	snprintf(arg, sizeof(arg), "%s %s", s->uuid, src);
	if ((rc = vsm__wf_redo(&wf, MIG_WF_FINISH, arg)) < 0) {
		vsm__ds_change_end(ctx, sds);
		goto abort;
	}
	began = false;
	rc = ck_mig_hide_source(ctx, sds, s->uuid);
	vsm__ds_change_end(ctx, sds);
	if (rc < 0 || (rc = ck_mig_finish(ctx, tds, s->uuid, src)) < 0) {
		vsm__log(ctx, VSM_LOG_WARN, "container '%s' moved to datastore '%s', but the rest "
			 "is left to the journal: %s", s->name, datastore,
			 vsm_error_last() ? vsm_error_last()->message : "?");
	} else if (vsm__wf_end(&wf) < 0) {
		vsm__log(ctx, VSM_LOG_WARN, "container '%s' moved; its journal entry stays",
			 s->name);
	}
	vsm__error_reset();
	rc = 0;
	if (vsm__ds_refresh(ctx, tds) == 0 && (cur = vsm__ds_find(tds, NULL, s->uuid)))
		vsm__container_move(c, datastore, cur);
	vsm__error_reset();
	if (opts->stats) {
		ck_mig_stats_clear(opts);
		opts->stats->layers = bs.layers;
		opts->stats->layers_reused = bs.layers_skipped;
		opts->stats->bytes_written = bs.bytes_written;
		opts->stats->bytes_verified = verified;
	}
	vsm__log(ctx, VSM_LOG_INFO, "container '%s' migrated from datastore '%s' to '%s'",
		 s->name, src, datastore);
	goto out;
cancel_or_abort:
	if (prog.cancelled) {
		vsm__error_reset();
		rc = vsm_err(VSM_ECANCELED, "migration of container '%s' to datastore '%s' was "
			     "cancelled by the progress callback", s->name, datastore);
	}
abort:
	if (began)
		vsm__wf_abort(&wf);
out:
	free(path);
	free(src);
	vsm_record_free(s);
	vsm_record_free(t);
	vsm__ctx_unlock(ctx);
	return rc;
}

void ck_mig_stats_clear(const vsm_migrate_opts *opts)
{
	/* A caller built against version 1 has the shorter struct. */
	if (opts->version >= 2)
		memset(opts->stats, 0, sizeof(*opts->stats));
	else
		memset(opts->stats, 0, offsetof(vsm_migrate_stats, passes));
}

VSM_API int vsm_container_migrate(vsm_container *c, const char *datastore,
				  const vsm_migrate_opts *opts)
{
	vsm_migrate_opts defaults = VSM_MIGRATE_OPTS_INIT;
	unsigned int known = VSM_MIGRATE_LIVE;

	vsm__error_reset();
	if (!c || !datastore)
		return vsm_err(VSM_EINVAL, "vsm_container_migrate: NULL argument");
	if (!opts)
		opts = &defaults;
	if (opts->version == 0 || opts->version > VSM_MIGRATE_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_migrate_opts version %u is not supported",
			       opts->version);
	if (opts->version < 2)
		known = 0;
	if (opts->flags & ~known)
		return vsm_err(VSM_EINVAL, "vsm_container_migrate: unknown flags 0x%x", opts->flags);
	if ((opts->flags & VSM_MIGRATE_LIVE) &&
	    opts->on_no_converge != VSM_MIGRATE_NO_CONVERGE_SYNC &&
	    opts->on_no_converge != VSM_MIGRATE_NO_CONVERGE_ABORT)
		return vsm_err(VSM_EINVAL, "vsm_container_migrate: unknown on_no_converge %d",
			       opts->on_no_converge);
	if ((opts->flags & VSM_MIGRATE_LIVE) && vsm_container_attached_host(c)) {
		if (ck_mig_has_deployment(c))
			return ck_mig_live_domain(c, datastore, opts);
		return ck_mig_live_image(c, datastore, opts);
	}
	return migrate_offline(c, datastore, opts);
}
