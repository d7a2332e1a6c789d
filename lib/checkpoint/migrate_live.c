/*
 * Live migration of an attached container written through this
 * context's vsm_image handles: the frozen part rides the offline path
 * (a bundle with empty tops, imported hidden), then iterative pre-copy
 * of the tops over dirty tracking, a switchover rule, synchronous
 * mirroring or abort when it does not converge (doc/migration.md).
 * The copy of ranges lives in migrate_pass.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "lease.h"
#include "migrate_live.h"

uint64_t ck_live_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void ck_live_event(lmig *m, const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	vsm__event_emit(m->ctx->events, VSM_EVENT_MIGRATION, m->dst, m->s->name, NULL, detail, 0);
}

int ck_live_report(lmig *m)
{
	uint64_t done = m->done, total = m->total;

	if (m->cancelled)
		return -VSM_ECANCELED;
	if (!m->opts->progress)
		return 0;
	if (done > total)
		total = done;
	if (m->opts->progress(done, total ? total : 1, m->opts->payload) != 0) {
		m->cancelled = true;
		return -VSM_ECANCELED;
	}
	return 0;
}

/* The bundle's progress: the export, then the import, each counted as
 * its own total. */
static int bundle_tick(uint64_t done, uint64_t total, void *payload)
{
	lmig *m = payload;

	if (!m->frozen_unit) {
		m->frozen_unit = total ? total : 1;
		m->total += 2 * m->frozen_unit;
	}
	if (total)
		m->done = m->frozen_base + (uint64_t)((double)done / (double)total *
						      (double)m->frozen_unit);
	return ck_live_report(m);
}

/* Hold every handle of the container (registry locked). */
void ck_live_hold_all(lmig *m, bool hold)
{
	vsm__imgreg_ent *e;

	for (e = vsm__imgreg_first(m->ctx); e; e = e->next) {
		if (strcmp(e->uuid, m->s->uuid))
			continue;
		if (hold)
			vsm__image_hold(e->img);
		else
			vsm__image_release(e->img);
	}
}

/* Every handle paused for a moment while the mirrors are set or unset. */
static void set_mirrors(lmig *m, bool on)
{
	size_t i;

	vsm__imgreg_lock(m->ctx);
	ck_live_hold_all(m, true);
	for (i = 0; i < m->n; i++)
		m->d[i].live.mirror = on ? m->d[i].tcow : NULL;
	ck_live_hold_all(m, false);
	vsm__imgreg_unlock(m->ctx);
}

/* Checks before anything is done; fills m->s, m->sds, m->tds. */
static int prepare(lmig *m, const char *datastore)
{
	const vsm_record *cur;
	uint64_t lver = 0;
	int64_t n = 0;
	int rc;

	if (!strcmp(m->src, datastore))
		return vsm_err(VSM_EINVAL, "container '%s' is on datastore '%s' already",
			       vsm_container_name(m->c), datastore);
	if ((rc = vsm__ds_get(&m->tds, m->ctx, datastore)) < 0 ||
	    (rc = vsm__ds_refresh(m->ctx, m->tds)) < 0 ||
	    (rc = vsm__ds_get(&m->sds, m->ctx, m->src)) < 0 ||
	    (rc = vsm__ds_refresh(m->ctx, m->sds)) < 0)
		return rc;
	if (!(cur = vsm__ds_find(m->sds, NULL, vsm_container_uuid(m->c))) || cur->destroying)
		return vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' no longer exists",
			       m->src, vsm_container_name(m->c));
	if (!(m->s = vsm_record_dup(cur)))
		return -VSM_ENOMEM;
	m->seq = m->s->seq;
	if ((rc = ck_mig_refuse(m->ctx, m->sds, m->s, true)) < 0)
		return rc;
	if (!m->s->attached_host)
		return vsm_err(VSM_ESTATE, "container '%s' is not attached", m->s->name);
	if (vsm__lease_fence(m->sds->lease, m->s, &lver) < 0)
		return vsm_err(VSM_EBUSY, "container '%s' is attached to host '%s', whose lease "
			       "this context does not hold; it cannot migrate it live",
			       m->s->name, m->s->attached_host);
	if ((rc = vsm_catalog_count(m->ctx->cat, &n, "SELECT 1 FROM links WHERE host = ? AND "
				    "datastore = ?", "ss", m->s->attached_host, datastore)) < 0)
		return rc;
	if (!n)
		return vsm_err(VSM_ESTATE, "container '%s' cannot migrate live to datastore '%s': "
			       "its host '%s' is not linked to it", m->s->name, datastore,
			       m->s->attached_host);
	if (vsm__ds_find(m->tds, m->s->name, NULL) || vsm__ds_find(m->tds, NULL, m->s->uuid))
		return vsm_err(VSM_EEXISTS, "datastore '%s': container '%s' already exists",
			       datastore, m->s->name);
	return 0;
}

/* One watch per device, installed on the open handles. */
static int watch(lmig *m)
{
	size_t i;
	int rc;

	m->n = m->s->n_devices;
	if (!(m->d = vsm__calloc(m->n ? m->n : 1, sizeof(*m->d))) ||
	    !(m->names = vsm__calloc(m->n ? m->n : 1, sizeof(*m->names))) ||
	    !(m->lives = vsm__calloc(m->n ? m->n : 1, sizeof(*m->lives))))
		return -VSM_ENOMEM;
	for (i = 0; i < m->n; i++) {
		const vsm_rec_device *sd = &m->s->devices[i];

		m->d[i].name = sd->name;
		m->d[i].skey = sd->key;
		m->d[i].format = sd->format;
		m->d[i].size = sd->size;
		if ((rc = vsm__image_live_init(&m->d[i].live, sd->size, CK_LIVE_GRAN_BITS)) < 0)
			return rc;
		m->d[i].inited = true;
		m->names[i] = sd->name;
		m->lives[i] = &m->d[i].live;
	}
	m->reg.uuid = m->s->uuid;
	m->reg.n = m->n;
	m->reg.devices = m->names;
	m->reg.live = m->lives;
	vsm__imgreg_lock(m->ctx);
	vsm__imgreg_mig_add(m->ctx, &m->reg);
	vsm__imgreg_unlock(m->ctx);
	m->registered = true;
	return 0;
}

/* Import done: the target record, its tops opened for writing. */
static int open_target(lmig *m)
{
	const vsm_record *cur;
	size_t i;
	int rc;

	if ((rc = vsm__ds_refresh(m->ctx, m->tds)) < 0)
		return rc;
	if (!(cur = vsm__ds_find(m->tds, NULL, m->s->uuid)))
		return vsm_err(VSM_ESTATE, "datastore '%s': the copy of container '%s' went away",
			       m->dst, m->s->name);
	if (!(m->t = vsm_record_dup(cur)))
		return -VSM_ENOMEM;
	for (i = 0; i < m->n; i++) {
		const vsm_rec_device *td = vsm_record_device(m->t, m->d[i].name);

		if (!td || td->size != m->d[i].size)
			return vsm_err(VSM_ECORRUPT, "container '%s' device '%s': missing or resized "
				       "on datastore '%s'", m->s->name, m->d[i].name, m->dst);
		m->d[i].tkey = td->key;
		if ((rc = ck_cow_open(&m->d[i].tcow, m->tds, td->key, td->format, false, false)) < 0)
			return rc;
	}
	return 0;
}

/* Undo everything before the commit: the handles go on on the source. */
static void undo(lmig *m)
{
	vsm__saved_error e;
	size_t i;

	vsm__error_save(&e);
	if (m->registered) {
		vsm__imgreg_lock(m->ctx);
		vsm__imgreg_mig_remove(m->ctx, &m->reg);
		vsm__imgreg_unlock(m->ctx);
		m->registered = false;
	}
	for (i = 0; i < m->n; i++) {
		vsm_cow_close(m->d[i].own);
		m->d[i].own = NULL;
		if (!m->d[i].handed)
			vsm_cow_close(m->d[i].tcow);
		m->d[i].tcow = NULL;
	}
	if (m->attached) {
		const vsm_record *cur;

		if (vsm__ds_refresh(m->ctx, m->tds) == 0 &&
		    (cur = vsm__ds_find(m->tds, NULL, m->s->uuid)))
			vsm__attach_let_go(m->ctx, m->tds, cur);
		m->attached = false;
	}
	if (m->began) {
		vsm__wf_abort(&m->wf);
		m->began = false;
	}
	vsm__error_restore(&e);
}

static void lmig_free(lmig *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->d[i].inited)
			vsm__image_live_fini(&m->d[i].live);
	free(m->d);
	free(m->names);
	free(m->lives);
	free(m->path);
	free(m->src);
	vsm_record_free(m->s);
	vsm_record_free(m->t);
}

static int frozen_part(lmig *m)
{
	vsm_bundle_opts bo = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats bs;
	uint64_t verified = 0;
	int rc;

	if ((rc = ck_mig_bundle_path(m->ctx, m->s->uuid, &m->path)) < 0)
		return rc;
	unlink(m->path);
	if ((rc = vsm__wf_begin(&m->wf, m->ctx, "migrate", m->dst, m->s->name)) < 0)
		return rc;
	m->began = true;
	if ((rc = vsm__wf_undo(&m->wf, MIG_WF_UNLINK, m->s->uuid)) < 0)
		return rc;
	bo.progress = bundle_tick;
	bo.payload = m;
	if ((rc = ck_export(m->c, m->path, &bo, true)) < 0)
		return rc;
	m->frozen_base = m->frozen_unit;
	bo.stats = &bs;
	{
		ck_import_how how = { &m->wf, m->s->uuid, VSM_REC_MIG_INCOMING, m->s->ctime,
				      m->s->thick };

		if ((rc = ck_import(NULL, m->ctx, m->path, m->dst, m->s->name, &bo, &how)) < 0)
			return rc;
	}
	if (m->cancelled)
		return -VSM_ECANCELED;
	m->layers = bs.layers;
	m->layers_reused = bs.layers_skipped;
	m->written += bs.bytes_written;
	m->done = m->frozen_base + m->frozen_unit;
	/* The bundle is not needed any more. */
	unlink(m->path);
	if ((rc = open_target(m)) < 0)
		return rc;
	if ((rc = ck_mig_verify_frozen(m->sds, m->s, m->tds, m->t, &verified)) < 0)
		return rc;
	m->verified = verified;
	if ((rc = vsm__attach_incoming(m->ctx, m->tds, m->s->uuid, m->s->attached_host)) < 0)
		return rc;
	m->attached = true;
	return ck_live_report(m);
}

/* How long what is dirty now would take to copy, at the rate measured. */
static uint64_t remaining(lmig *m, uint64_t *est_us)
{
	uint64_t bytes = 0;
	size_t i;

	for (i = 0; i < m->n; i++)
		bytes += vsm__image_live_dirty(&m->d[i].live) << CK_LIVE_GRAN_BITS;
	if (!m->copy_us || !m->copied)
		*est_us = bytes ? UINT64_MAX : 0;
	else
		*est_us = (uint64_t)((double)bytes * (double)m->copy_us / (double)m->copied);
	return bytes;
}

/*
 * The switchover: writes held, the last pass, the mirrors set so that
 * writes resumed meanwhile reach both sides; the commit; the handles
 * re-pointed to the target. Returns 0, or an error before the commit
 * point (nothing changed then).
 */
static int switch_over(lmig *m)
{
	uint64_t t0, t1, bytes = 0;
	char arg[VSM_UUID_STRLEN + 256];
	const vsm_record *cur;
	size_t i;
	int rc = 0;

	vsm__ctx_lock(m->ctx); /* no handle opens on the container meanwhile */
	vsm__imgreg_lock(m->ctx);
	t0 = ck_live_now_us();
	ck_live_hold_all(m, true);
	for (i = 0; i < m->n && rc == 0; i++)
		rc = ck_live_dirty_pass(m, &m->d[i], true, &bytes);
	for (i = 0; i < m->n && rc == 0; i++) {
		if (m->d[i].live.mirror_rc)
			rc = vsm_err(VSM_EIO, "container '%s' device '%s': a write mirrored to "
				     "datastore '%s' failed", m->s->name, m->d[i].name, m->dst);
		else
			rc = vsm_cow_flush(m->d[i].tcow);
	}
	if (rc == 0)
		for (i = 0; i < m->n; i++)
			m->d[i].live.mirror = m->d[i].tcow;
	ck_live_hold_all(m, false);
	t1 = ck_live_now_us();
	vsm__imgreg_unlock(m->ctx);
	m->pause_us += t1 - t0;
	m->pass_bytes += bytes;
	m->passes++;
	if (rc < 0)
		goto fail;
	ck_live_event(m, "pass %llu %llu", (unsigned long long)m->passes,
		      (unsigned long long)bytes);
	/* The source must still be what was copied (checked, committed and
	 * hidden under its metadata lock, as offline). */
	if ((rc = vsm__ds_change_begin(m->ctx, m->sds)) < 0)
		goto fail;
	if (!(cur = vsm__ds_find(m->sds, NULL, m->s->uuid)) || cur->seq != m->seq) {
		vsm__ds_change_end(m->ctx, m->sds);
		rc = vsm_err(VSM_EBUSY, "container '%s' was changed meanwhile; try again",
			     m->s->name);
		goto fail;
	}
	/* A write the mirror failed to copy since the pause was refused to
	 * its writer; the target then lacks what the source holds. */
	for (i = 0; i < m->n; i++) {
		pthread_mutex_lock(&m->d[i].live.mu);
		rc = m->d[i].live.mirror_rc;
		pthread_mutex_unlock(&m->d[i].live.mu);
		if (rc < 0) {
			vsm__ds_change_end(m->ctx, m->sds);
			rc = vsm_err(VSM_EIO, "container '%s' device '%s': a write mirrored to "
				     "datastore '%s' failed", m->s->name, m->d[i].name, m->dst);
			goto fail;
		}
	}
	snprintf(arg, sizeof(arg), "%s %s", m->s->uuid, m->src);
	if ((rc = vsm__wf_redo(&m->wf, MIG_WF_FINISH, arg)) < 0) {
		vsm__ds_change_end(m->ctx, m->sds);
		goto fail;
	}
	/* Committed: from here on only forward. */
	m->committed = true;
	rc = ck_mig_hide_source(m->ctx, m->sds, m->s->uuid);
	vsm__ds_change_end(m->ctx, m->sds);
	if (rc == 0)
		rc = ck_mig_show_target(m->ctx, m->tds, m->s->uuid, m->src);
	if (rc < 0) {
		vsm__log(m->ctx, VSM_LOG_WARN, "container '%s': the switch to datastore '%s' is "
			 "left to the journal: %s", m->s->name, m->dst,
			 vsm_error_last() ? vsm_error_last()->message : "?");
		vsm__error_reset();
	}
	ck_live_repoint(m);
	vsm__ctx_unlock(m->ctx);
	return 0;
fail:
	set_mirrors(m, false);
	vsm__ctx_unlock(m->ctx);
	return rc;
}

/* After the commit: the source goes, with its lease and host side. */
static void finish(lmig *m)
{
	vsm_record *old = m->s;

	if (ck_mig_drop_source(m->ctx, old->uuid, m->src) < 0 || vsm__wf_end(&m->wf) < 0) {
		vsm__log(m->ctx, VSM_LOG_WARN, "container '%s' moved to datastore '%s', but the "
			 "rest is left to the journal: %s", old->name, m->dst,
			 vsm_error_last() ? vsm_error_last()->message : "?");
	}
	m->began = false;
	vsm__attach_let_go(m->ctx, m->sds, old);
	vsm__error_reset();
}

static int passes(lmig *m)
{
	const vsm_migrate_opts *o = m->opts;
	unsigned int downtime = o->downtime_ms ? o->downtime_ms : 300;
	unsigned int max_passes = o->max_passes ? o->max_passes : 30;
	uint64_t bytes, est_us, left;
	size_t i;
	int rc;

	/* Pass 1: what the tops hold. */
	bytes = 0;
	for (i = 0; i < m->n; i++)
		m->total += m->d[i].size;
	for (i = 0; i < m->n; i++)
		if ((rc = ck_live_full_pass(m, &m->d[i], &bytes)) < 0)
			return rc;
	m->passes = 1;
	ck_live_event(m, "pass 1 %llu", (unsigned long long)bytes);
	for (;;) {
		left = remaining(m, &est_us);
		if (est_us <= (uint64_t)downtime * 1000u)
			return switch_over(m);
		if (m->passes >= max_passes ||
		    (o->deadline_ms && ck_live_now_us() - m->start_us >= (uint64_t)o->deadline_ms *
		     1000u)) {
			if (o->on_no_converge == VSM_MIGRATE_NO_CONVERGE_ABORT)
				return vsm_err(VSM_ETIMEDOUT, "container '%s': live migration to "
					       "datastore '%s' did not converge after %llu pass%s "
					       "and %llu ms (%llu bytes left, about %llu ms to copy; "
					       "%u ms allowed); aborted, it stays on datastore '%s'",
					       m->s->name, m->dst, (unsigned long long)m->passes,
					       m->passes == 1 ? "" : "es",
					       (unsigned long long)((ck_live_now_us() - m->start_us) /
								    1000),
					       (unsigned long long)left,
					       (unsigned long long)(est_us / 1000), downtime, m->src);
			/* Synchronous: every write reaches both sides from
			 * now on; what was dirty before is drained. */
			set_mirrors(m, true);
			m->sync = true;
			ck_live_event(m, "sync");
			bytes = 0;
			for (i = 0; i < m->n; i++)
				if ((rc = ck_live_dirty_pass(m, &m->d[i], false, &bytes)) < 0)
					return rc;
			m->passes++;
			ck_live_event(m, "pass %llu %llu", (unsigned long long)m->passes,
				      (unsigned long long)bytes);
			return switch_over(m);
		}
		bytes = 0;
		for (i = 0; i < m->n; i++)
			if ((rc = ck_live_dirty_pass(m, &m->d[i], false, &bytes)) < 0)
				return rc;
		m->passes++;
		ck_live_event(m, "pass %llu %llu", (unsigned long long)m->passes,
			      (unsigned long long)bytes);
	}
}

int ck_mig_live_image(vsm_container *c, const char *datastore, const vsm_migrate_opts *opts)
{
	lmig m;
	const vsm_record *cur;
	int rc;

	memset(&m, 0, sizeof(m));
	m.c = c;
	m.opts = opts;
	m.ctx = vsm__container_ctx(c);
	m.dst = datastore;
	m.start_us = ck_live_now_us();
	vsm__ctx_lock(m.ctx);
	if (!(m.src = vsm__strdup(vsm_container_datastore(c))))
		rc = -VSM_ENOMEM;
	else
		rc = prepare(&m, datastore);
	if (rc == 0)
		rc = watch(&m);
	vsm__ctx_unlock(m.ctx);
	if (rc < 0)
		goto out;
	ck_live_event(&m, "start");
	/* The context's lock is not held while data is copied: the bundle
	 * calls take it for their own length, the passes not at all. */
	if ((rc = frozen_part(&m)) < 0 || (rc = passes(&m)) < 0)
		goto fail;
	finish(&m);
	if (vsm__ds_refresh(m.ctx, m.tds) == 0 && (cur = vsm__ds_find(m.tds, NULL, m.s->uuid)))
		vsm__container_move(c, datastore, cur);
	vsm__error_reset();
	if (opts->stats) {
		size_t i;

		ck_mig_stats_clear(opts);
		opts->stats->layers = m.layers;
		opts->stats->layers_reused = m.layers_reused;
		opts->stats->bytes_written = m.written + m.pass_bytes;
		opts->stats->bytes_verified = m.verified;
		opts->stats->passes = m.passes;
		opts->stats->pause_us = m.pause_us;
		for (i = 0; i < m.n; i++)
			opts->stats->bytes_mirrored += m.d[i].live.mirrored;
		opts->stats->synchronous = m.sync;
	}
	ck_live_event(&m, "switchover %llu", (unsigned long long)m.pause_us);
	ck_live_event(&m, "complete passes=%llu%s", (unsigned long long)m.passes,
		      m.sync ? " synchronous" : "");
	vsm__log(m.ctx, VSM_LOG_INFO, "container '%s' migrated live from datastore '%s' to '%s' "
		 "(%llu passes, writes paused %llu us%s)", m.s->name, m.src, datastore,
		 (unsigned long long)m.passes, (unsigned long long)m.pause_us,
		 m.sync ? ", synchronous" : "");
	goto out;
fail:
	if (m.cancelled) {
		vsm__error_reset();
		rc = vsm_err(VSM_ECANCELED, "live migration of container '%s' to datastore '%s' "
			     "was cancelled by the progress callback", m.s->name, datastore);
	}
	undo(&m);
	ck_live_event(&m, "abort %s", rc == -VSM_ETIMEDOUT ? "timeout" :
		      rc == -VSM_ECANCELED ? "cancelled" : "error");
out:
	lmig_free(&m);
	return rc;
}
