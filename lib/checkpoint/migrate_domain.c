/*
 * Live migration of a container whose devices are deployed into a
 * running domain (doc/migration.md, "Live migration of a deployed
 * container"): the frozen layers, the devices nobody writes and the
 * VM-state area travel as in an offline migration (a bundle, the
 * deployed tops carried empty) into a hidden target copy; the
 * hypervisor's block copy then fills each deployed top on the target
 * from the running domain, libvirt says when it is ready, the disk is
 * pivoted, and the record is committed. Until the pivot an abort leaves
 * the domain on its source.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "becall.h"
#include "bundle.h"
#include "hyper.h"
#include "lease.h"
#include "migrate_int.h"
#include "vsm/migrate.h"

#define PHASES 3 /* export, import, block copy */
#define WAIT_SLICE_MS 200

/* One deployed device and its block copy. */
typedef struct {
	const vsm_rec_deploy *dep; /* the source's, borrowed from the record */
	char disk[40];             /* its target in the domain ("vdb") */
	char bus[16];
	const vsm_rec_device *tdev; /* the target copy's device */
	vsm_locator *loc;          /* the target top deployed on the host */
	vsm__hv_job *job;
	bool ready;
	uint64_t cur, end;
} dd;

typedef struct {
	vsm_progress_fn fn;
	void *payload;
	int phase;
	uint64_t unit;
	bool cancelled;
} dprog;

static int tick(dprog *p, uint64_t done, uint64_t total)
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

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void event(vsm_ctx *ctx, const char *datastore, const char *name, const char *fmt, ...)
	VSM_PRINTF(4, 5);

static void event(vsm_ctx *ctx, const char *datastore, const char *name, const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	vsm__event_emit(ctx->events, VSM_EVENT_MIGRATION, datastore, name, NULL, detail, 0);
}

static char *host_uri(vsm_ctx *ctx, const char *host)
{
	char **v = NULL, *uri = NULL;
	size_t n = 0;

	if (vsm_catalog_strings(ctx->cat, &v, &n, "SELECT hypervisor_uri FROM hosts WHERE "
				"name = ? AND hypervisor_uri IS NOT NULL", "s", host) == 0 && n)
		uri = vsm__strdup(v[0]);
	else
		vsm__error_reset();
	vsm_strv_free(v, n);
	return uri;
}

/* The value of attribute @attr of the first <@elem> in @xml (a disk
 * element a backend built), into @out; "" when there is none. */
static void xml_attr(const char *xml, const char *elem, const char *attr, char *out,
		     size_t size)
{
	char open[32], key[32];
	const char *p, *end, *v;
	size_t n;

	out[0] = '\0';
	snprintf(open, sizeof(open), "<%s ", elem);
	snprintf(key, sizeof(key), " %s=", attr);
	if (!xml || !(p = strstr(xml, open)) || !(end = strchr(p, '>')) ||
	    !(v = strstr(p, key)) || v > end)
		return;
	v += strlen(key);
	if (*v != '\'' && *v != '"')
		return;
	n = strcspn(v + 1, *v == '\'' ? "'" : "\"");
	if (n < size) {
		memcpy(out, v + 1, n);
		out[n] = '\0';
	}
}

bool ck_mig_has_deployment(vsm_container *c)
{
	size_t i, n = c ? vsm_container_device_count(c) : 0;

	/* The handle's view; the call checks the record again. */
	for (i = 0; i < n; i++)
		if (vsm_device_locator(vsm_container_device(c, i)))
			return true;
	return false;
}

/* Deploy the target copy's top of @d on @host (no domain: the block copy
 * opens it), for the destination of the copy. */
static int deploy_target(vsm_dstore *tds, const vsm_record *t, dd *d, const char *host,
			 const char *hv)
{
	const char *keys[64], *formats[64];
	vsm_backend_deploy_req req;
	size_t i;
	int rc;

	if (d->tdev->chain_len > 64)
		return vsm_err(VSM_EINVAL, "device '%s': backing chain too deep", d->tdev->name);
	memset(&req, 0, sizeof(req));
	req.version = VSM_BACKEND_DEPLOY_REQ_VERSION;
	req.host = host;
	req.host_uri = hv;
	req.format = vsm_format_name(d->tdev->format);
	for (i = 0; i < d->tdev->chain_len; i++) {
		keys[i] = d->tdev->chain[i].key;
		formats[i] = vsm_format_name(d->tdev->chain[i].format);
	}
	req.chain_keys = keys;
	req.chain_formats = formats;
	req.chain_len = d->tdev->chain_len;
	req.target = d->disk;
	req.bus = d->bus[0] ? d->bus : "virtio";
	if (!(d->loc = vsm__calloc(1, sizeof(*d->loc))))
		return -VSM_ENOMEM;
	if ((rc = vsm__be_device_deploy(tds, d->tdev->key, &req, d->loc)) < 0) {
		vsm__error_prefix("datastore '%s': container '%s' device '%s'", tds->name,
				  t->name, d->tdev->name);
		return rc;
	}
	if (!d->loc->uri || !d->loc->xml)
		return vsm_err(VSM_EINTERNAL, "datastore '%s': device '%s' deployed without a "
			       "locator", tds->name, d->tdev->name);
	return 0;
}

static void undeploy_target(vsm_dstore *tds, dd *d, const char *host, const char *hv)
{
	vsm_backend_deploy_req req;
	vsm__saved_error saved;

	if (!d->loc || !d->loc->uri)
		return;
	memset(&req, 0, sizeof(req));
	req.version = VSM_BACKEND_DEPLOY_REQ_VERSION;
	req.host = host;
	req.host_uri = hv;
	req.format = vsm_format_name(d->tdev->format);
	req.target = d->disk;
	vsm__error_save(&saved);
	vsm__be_device_undeploy(tds, d->tdev->key, &req);
	vsm__error_restore(&saved);
}

/* Why @s (on @sds, attached to @host) cannot move live to @tds now. */
static int refuse(vsm_ctx *ctx, vsm_dstore *sds, vsm_dstore *tds, const vsm_record *s,
		  const char *hv)
{
	uint64_t lver = 0;
	int64_t n = 0;
	size_t i;
	int rc;

	if (s->migration)
		return vsm_err(VSM_EBUSY, "container '%s' is being migrated already", s->name);
	if (s->destroying)
		return vsm_err(VSM_ESTATE, "container '%s' is being destroyed", s->name);
	if ((rc = vsm__lease_fence(sds->lease, s, &lver)) < 0)
		return rc;
	if (ctx->destroy_check && (rc = ctx->destroy_check(ctx, sds->name, s)) < 0) {
		vsm__error_prefix("cannot migrate");
		return rc;
	}
	if (vsm__ds_find(tds, s->name, NULL) || vsm__ds_find(tds, NULL, s->uuid))
		return vsm_err(VSM_EEXISTS, "datastore '%s': container '%s' already exists",
			       tds->name, s->name);
	if ((rc = vsm_catalog_count(ctx->cat, &n, "SELECT 1 FROM links WHERE host = ? AND "
				    "datastore = ?", "ss", s->attached_host, tds->name)) < 0)
		return rc;
	if (!n)
		return vsm_err(VSM_ESTATE, "container '%s' cannot move live to datastore '%s': "
			       "its host '%s' is not linked to it", s->name, tds->name,
			       s->attached_host);
	if (!hv)
		return vsm_err(VSM_ESTATE, "container '%s': host '%s' has no hypervisor URI; "
			       "its domain cannot copy the devices", s->name, s->attached_host);
	for (i = 0; i < s->n_deploys; i++)
		if (!s->deploys[i].domain)
			return vsm_err(VSM_EBUSY, "container '%s': device '%s' is deployed but "
				       "not into a domain; nothing can move it while it is "
				       "used", s->name, s->deploys[i].device);
	return 0;
}

/* Abort every copy still running; the domain stays on its source. */
static void abort_jobs(dd *v, size_t n)
{
	vsm__saved_error saved;
	size_t i;

	vsm__error_save(&saved);
	for (i = 0; i < n; i++) {
		if (v[i].job && vsm__hv_copy_end(v[i].job, false) < 0)
			vsm__error_reset();
		v[i].job = NULL;
	}
	vsm__error_restore(&saved);
}

static int start_jobs(vsm_ctx *ctx, const char *hv, dd *v, size_t n, bool sync)
{
	unsigned int flags = VSM_HV_COPY_SHALLOW | VSM_HV_COPY_REUSE | (sync ? VSM_HV_COPY_SYNC : 0);
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if (v[i].job)
			continue;
		v[i].ready = false;
		if ((rc = vsm__hv_copy_start(&v[i].job, ctx, hv, v[i].dep->domain, v[i].disk,
					     v[i].loc->xml, flags)) < 0)
			return rc;
	}
	return 0;
}

/* Wait until every copy is ready (1), or the deadline passed (0), or
 * something failed or the callback cancelled (< 0). */
static int wait_ready(dd *v, size_t n, dprog *p, uint64_t deadline)
{
	for (;;) {
		uint64_t cur = 0, end = 0, t = now_ms();
		unsigned int slice = n == 1 ? WAIT_SLICE_MS : WAIT_SLICE_MS / 4;
		size_t i, ready = 0;
		int rc;

		/* Never past the deadline (a copy not ready in time must not
		 * finish because one wait was long). */
		if (deadline)
			slice = t >= deadline ? 0 : (unsigned int)(deadline - t < slice ?
								   deadline - t : slice);
		for (i = 0; i < n; i++) {
			if (!v[i].ready) {
				if ((rc = vsm__hv_copy_wait(v[i].job, slice, &v[i].cur,
							    &v[i].end)) < 0)
					return rc;
				v[i].ready = rc == 1;
			}
			ready += v[i].ready;
			cur += v[i].cur;
			end += v[i].end;
		}
		/* cur/end only feed the report: readiness is the event's. */
		if ((rc = tick(p, ready == n ? 1 : (end ? cur : 0), ready == n ? 1 :
			       (end ? end + 1 : 1))) < 0)
			return rc;
		if (ready == n)
			return 1;
		if (deadline && now_ms() >= deadline)
			return 0;
	}
}

/* Fill the hidden target record @t for the switchover: attached to
 * @host under a lease on the target datastore, each deployed device
 * recorded with its new locator and domain. Still hidden. */
static int prepare_target(vsm_ctx *ctx, vsm_dstore *tds, vsm_record *t, const char *host,
			  dd *v, size_t n, bool *leased)
{
	uint64_t lver = 0;
	bool took = false;
	size_t i;
	int rc;

	if ((rc = vsm__lease_acquire(tds->lease, t, host, VSM__LEASE_SAME_HOST, &lver,
				     &took)) < 0)
		return rc;
	*leased = true;
	t->lease_version = lver;
	if ((rc = vsm_record_set_host(t, host)) < 0)
		return rc;
	for (i = 0; i < n; i++) {
		vsm_rec_deploy dep = {0};

		dep.device = v[i].dep->device;
		dep.host = (char *)host;
		dep.uri = v[i].loc->uri;
		dep.path = v[i].loc->path;
		dep.xml = v[i].loc->xml;
		dep.domain = v[i].dep->domain;
		if ((rc = vsm_record_set_deploy(t, &dep)) < 0)
			return rc;
	}
	return vsm__ds_put_record(ctx, tds, t);
}

/* --- the committed half: which side the domain reads decides --- */

/* How many deployed disks of the target copy @t the domains read from
 * the target (*@on_t) and from the source @s (*@on_s); a disk reading
 * neither is an error (the caller then leaves the work to the journal). */
static int sides(vsm_ctx *ctx, const vsm_record *t, const vsm_record *s, size_t *on_t,
		 size_t *on_s)
{
	char *hv = t->attached_host ? host_uri(ctx, t->attached_host) : NULL;
	size_t i;
	int rc = 0;

	*on_t = *on_s = 0;
	for (i = 0; i < t->n_deploys && rc == 0; i++) {
		const vsm_rec_deploy *d = &t->deploys[i];
		const vsm_rec_deploy *sd = s ? vsm_record_deploy(s, d->device) : NULL;
		char disk[40], *src = NULL;

		xml_attr(d->xml, "target", "dev", disk, sizeof(disk));
		if (!hv || !d->domain || !disk[0] || !d->path) {
			rc = vsm_err(VSM_ESTATE, "container '%s': the deployment of device '%s' "
				     "on the target names no domain disk", t->name, d->device);
			break;
		}
		if ((rc = vsm__hv_disk_source(ctx, hv, d->domain, disk, &src)) < 0)
			break;
		if (!strcmp(src, d->path))
			(*on_t)++;
		else if (sd && sd->path && !strcmp(src, sd->path))
			(*on_s)++;
		else
			rc = vsm_err(VSM_ESTATE, "container '%s': disk '%s' of domain '%s' reads "
				     "'%s', neither side of the migration", t->name, disk,
				     d->domain, src);
		free(src);
	}
	free(hv);
	return rc;
}

/* Finish a live domain migration of @uuid from @source to @tds after its
 * redo step was written: forward when some disk reads the target (hide
 * and destroy the source, as mig_finish), back when every disk still
 * reads the source (abort what copy jobs run, destroy the hidden
 * target copy). *@forward says which; done already is done. */
static int settle(vsm_ctx *ctx, vsm_dstore *tds, const char *uuid, const char *source,
		  bool *forward)
{
	const vsm_record *t, *s;
	vsm_record *tc = NULL, *sc = NULL;
	vsm_dstore *sds;
	size_t on_t = 0, on_s = 0, i;
	int rc;

	*forward = true;
	if ((rc = vsm__ds_get(&sds, ctx, source)) < 0 || (rc = vsm__ds_refresh(ctx, sds)) < 0 ||
	    (rc = vsm__ds_refresh(ctx, tds)) < 0)
		return rc;
	t = vsm__ds_find(tds, NULL, uuid);
	s = vsm__ds_find(sds, NULL, uuid);
	if (!t) {
		*forward = false; /* rolled back already */
		return 0;
	}
	/* Revealed, or the source hidden or gone: it went forward. */
	if (t->migration != VSM_REC_MIG_INCOMING || !s || s->migration == VSM_REC_MIG_OUTGOING)
		return ck_mig_finish(ctx, tds, uuid, source);
	if (!(tc = vsm_record_dup(t)) || !(sc = vsm_record_dup(s))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if ((rc = sides(ctx, tc, sc, &on_t, &on_s)) < 0)
		goto out;
	/* Some disks switched, some not: destroying either side would take
	 * data a running disk reads. Left to the journal (and the log). */
	if (on_t && on_s) {
		rc = vsm_err(VSM_ESTATE, "container '%s': %zu disk(s) of its domain read "
			     "datastore '%s' and %zu still read '%s'; both copies are kept",
			     tc->name, on_t, tds->name, on_s, source);
		goto out;
	}
	if (on_t) {
		if ((rc = vsm__ds_change_begin(ctx, sds)) < 0)
			goto out;
		rc = ck_mig_hide_source(ctx, sds, uuid);
		vsm__ds_change_end(ctx, sds);
		if (rc < 0 || (rc = ck_mig_finish(ctx, tds, uuid, source)) < 0)
			goto out;
		if (vsm__lease_release(sds->lease, sc) < 0)
			vsm__error_reset();
		goto out;
	}
	/* Every disk reads the source: the switchover never happened. */
	*forward = false;
	for (i = 0; i < tc->n_deploys; i++) {
		char disk[40], *hv = host_uri(ctx, tc->attached_host);

		xml_attr(tc->deploys[i].xml, "target", "dev", disk, sizeof(disk));
		rc = hv && disk[0] ? vsm__hv_copy_cancel(ctx, hv, tc->deploys[i].domain, disk) : 0;
		free(hv);
		if (rc < 0)
			goto out;
	}
	if (vsm__lease_release(tds->lease, tc) < 0)
		vsm__error_reset();
	rc = vsm__container_finish_destroy(ctx, tds, tc->slot, uuid);
	if (rc > 0)
		rc = 0;
out:
	vsm_record_free(tc);
	vsm_record_free(sc);
	return rc;
}

/* Undo of the copy jobs' start: abort whatever copy job runs on the
 * deployed disks of @uuid's source record (a process that died while
 * they ran left them mirroring into files the rest of the undo
 * deletes). No job is no error. */
static int cancel_jobs(vsm_ctx *ctx, const char *uuid, const char *source)
{
	const vsm_record *s;
	vsm_record *sc;
	vsm_dstore *sds;
	char *hv;
	size_t i;
	int rc;

	if ((rc = vsm__ds_get(&sds, ctx, source)) < 0 || (rc = vsm__ds_refresh(ctx, sds)) < 0)
		return rc;
	if (!(s = vsm__ds_find(sds, NULL, uuid)) || !s->attached_host)
		return 0;
	if (!(sc = vsm_record_dup(s)))
		return -VSM_ENOMEM;
	hv = host_uri(ctx, sc->attached_host);
	for (i = 0; hv && i < sc->n_deploys && rc == 0; i++) {
		char disk[40];

		xml_attr(sc->deploys[i].xml, "target", "dev", disk, sizeof(disk));
		if (sc->deploys[i].domain && disk[0])
			rc = vsm__hv_copy_cancel(ctx, hv, sc->deploys[i].domain, disk);
	}
	free(hv);
	vsm_record_free(sc);
	return rc;
}

int vsm__migrate_domain_wf_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action,
				  const char *arg)
{
	char uuid[VSM_UUID_STRLEN + 1];
	bool forward;

	if (strlen(arg) < VSM_UUID_STRLEN + 2 || arg[VSM_UUID_STRLEN] != ' ')
		return vsm_err(VSM_ECORRUPT, "journal step argument '%s' is malformed", arg);
	memcpy(uuid, arg, VSM_UUID_STRLEN);
	uuid[VSM_UUID_STRLEN] = '\0';
	if (!vsm__uuid_valid(uuid))
		return vsm_err(VSM_ECORRUPT, "journal step argument '%s' is malformed", arg);
	if (!strcmp(action, MIG_WF_DOMAIN))
		return settle(ctx, ds, uuid, arg + VSM_UUID_STRLEN + 1, &forward);
	if (!strcmp(action, MIG_WF_DOMAIN_CANCEL))
		return cancel_jobs(ctx, uuid, arg + VSM_UUID_STRLEN + 1);
	return vsm_err(VSM_ECORRUPT, "journal names unknown action '%s'", action);
}

int ck_mig_live_domain(vsm_container *c, const char *datastore, const vsm_migrate_opts *opts)
{
	vsm_bundle_opts bo = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats bs;
	dprog prog = {0};
	vsm_record *s = NULL, *t = NULL;
	const vsm_record *cur;
	vsm_dstore *sds, *tds;
	char *src = NULL, *path = NULL, *hv = NULL, arg[VSM_UUID_STRLEN + 256];
	uint64_t seq, deadline = 0, t0, pause_us = 0, mirrored = 0;
	vsm__saved_error pivot_err = {0, NULL};
	vsm_wf wf = {0};
	bool began = false, leased = false, sync = false, forward = false;
	dd *v = NULL;
	size_t n = 0, i;
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
	if (!s->attached_host || !s->n_deploys) {
		/* Changed since the dispatch looked: nothing runs on it. */
		rc = vsm_err(VSM_ESTATE, "container '%s' is no longer deployed; migrate it "
			     "again", s->name);
		goto out;
	}
	hv = host_uri(ctx, s->attached_host);
	if ((rc = refuse(ctx, sds, tds, s, hv)) < 0)
		goto out;
	if (!(v = vsm__calloc(s->n_deploys, sizeof(*v)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (n = 0; n < s->n_deploys; n++) {
		v[n].dep = &s->deploys[n];
		xml_attr(v[n].dep->xml, "target", "dev", v[n].disk, sizeof(v[n].disk));
		xml_attr(v[n].dep->xml, "target", "bus", v[n].bus, sizeof(v[n].bus));
		if (!v[n].disk[0] || vsm_disk_target_check(v[n].disk) < 0 ||
		    (v[n].bus[0] && vsm_disk_bus_check(v[n].bus) < 0)) {
			vsm__error_reset();
			rc = vsm_err(VSM_ECORRUPT, "container '%s': the deployment of device '%s' "
				     "names no usable disk target", s->name, v[n].dep->device);
			n++;
			goto out;
		}
	}

	if ((rc = ck_mig_bundle_path(ctx, s->uuid, &path)) < 0)
		goto out;
	unlink(path); /* a leftover no journal entry owns any more */
	if ((rc = vsm__wf_begin(&wf, ctx, "migrate", datastore, s->name)) < 0)
		goto out;
	began = true;
	if ((rc = vsm__wf_undo(&wf, MIG_WF_UNLINK, s->uuid)) < 0)
		goto abort;
	event(ctx, datastore, s->name, "start live domain %s", v[0].dep->domain);

	/* 1. Everything but the running tops, into a hidden copy. */
	prog.fn = opts->progress;
	prog.payload = opts->payload;
	bo.progress = bundle_tick;
	bo.payload = &prog;
	if ((rc = ck_export(c, path, &bo, CK_EXPORT_EMPTY_DEPLOYED)) < 0)
		goto cancel_or_abort;
	prog.phase = 1;
	bo.stats = &bs;
	{
		ck_import_how how = { &wf, s->uuid, VSM_REC_MIG_INCOMING, s->ctime, s->thick };

		if ((rc = ck_import(NULL, ctx, path, datastore, s->name, &bo, &how)) < 0)
			goto cancel_or_abort;
	}
	unlink(path); /* not needed any more; the undo step stays harmless */
	if (prog.cancelled) {
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

	/* 2. The target tops, reachable by the host. */
	if ((rc = vsm__be_host_attach(tds, s->attached_host, hv, 0)) < 0) {
		vsm__error_prefix("datastore '%s'", datastore);
		goto abort;
	}
	for (i = 0; i < n; i++) {
		if (!(v[i].tdev = vsm_record_device(t, v[i].dep->device))) {
			rc = vsm_err(VSM_ECORRUPT, "container '%s': device '%s' is missing from "
				     "its copy", s->name, v[i].dep->device);
			goto abort;
		}
		if ((rc = deploy_target(tds, t, &v[i], s->attached_host, hv)) < 0)
			goto abort;
	}

	/* 3. The block copies, until libvirt says they are ready. Should
	 * this process die, recovery aborts them before it deletes what
	 * they write into. */
	snprintf(arg, sizeof(arg), "%s %s", s->uuid, src);
	if ((rc = vsm__wf_undo(&wf, MIG_WF_DOMAIN_CANCEL, arg)) < 0)
		goto abort;
	t0 = now_ms();
	if (opts->deadline_ms)
		deadline = t0 + opts->deadline_ms;
	if ((rc = start_jobs(ctx, hv, v, n, false)) < 0)
		goto jobs_abort;
	event(ctx, datastore, s->name, "pass 1 0");
	rc = wait_ready(v, n, &prog, deadline);
	if (rc == 0 && opts->on_no_converge == VSM_MIGRATE_NO_CONVERGE_ABORT) {
		event(ctx, datastore, s->name, "abort timeout");
		abort_jobs(v, n);
		rc = vsm_err(VSM_ETIMEDOUT, "container '%s': the copy into datastore '%s' was "
			     "not ready within %u ms; it stays on datastore '%s'", s->name,
			     datastore, opts->deadline_ms, src);
		goto abort;
	}
	if (rc == 0) {
		/* libvirt cannot switch a running copy to synchronous writes:
		 * the copies not ready yet start again in that mode, which
		 * converges whatever the guest writes. */
		for (i = 0; i < n; i++)
			if (!v[i].ready && v[i].job) {
				vsm__hv_job *j = v[i].job;

				v[i].job = NULL;
				if ((rc = vsm__hv_copy_end(j, false)) < 0)
					goto jobs_abort;
			}
		sync = true;
		event(ctx, datastore, s->name, "sync");
		if ((rc = start_jobs(ctx, hv, v, n, true)) < 0)
			goto jobs_abort;
		event(ctx, datastore, s->name, "pass 2 0");
		rc = wait_ready(v, n, &prog, 0);
	}
	if (rc < 0)
		goto jobs_cancel_or_abort;
	for (i = 0; i < n; i++)
		mirrored += v[i].end;

	/* 4. The target record for the switchover, still hidden; the source
	 * must still be what was copied. */
	if ((rc = prepare_target(ctx, tds, t, s->attached_host, v, n, &leased)) < 0)
		goto jobs_abort;
	if ((rc = vsm__ds_refresh(ctx, sds)) < 0)
		goto jobs_abort;
	if (!(cur = vsm__ds_find(sds, NULL, s->uuid)) || cur->seq != seq) {
		rc = vsm_err(VSM_EBUSY, "container '%s' was changed by another process meanwhile; "
			     "try again", s->name);
		goto jobs_abort;
	}

	/* 5. Commit point: from here the journal settles the move by what
	 * the domain reads (settle()), whatever happens to this process. */
	snprintf(arg, sizeof(arg), "%s %s", s->uuid, src);
	if ((rc = vsm__wf_redo(&wf, MIG_WF_DOMAIN, arg)) < 0)
		goto jobs_abort;
	began = false;
	leased = false; /* settle() releases what it must */

	/* 6. Pivot. A disk that cannot switch over keeps reading the
	 * source; if none switched, the move is undone. */
	t0 = now_ms();
	for (i = 0; i < n; i++) {
		vsm__hv_job *j = v[i].job;

		v[i].job = NULL;
		if (vsm__hv_copy_end(j, true) < 0) {
			if (!pivot_err.code)
				vsm__error_save(&pivot_err);
			vsm__log(ctx, VSM_LOG_ERROR, "container '%s': disk '%s' of domain '%s' "
				 "could not switch over: %s", s->name, v[i].disk,
				 v[i].dep->domain, pivot_err.message ? pivot_err.message : "?");
			vsm__error_reset();
			if (i == 0) {
				abort_jobs(v, n);
				break;
			}
		}
	}
	pause_us = (now_ms() - t0) * 1000u;
	if ((rc = settle(ctx, tds, s->uuid, src, &forward)) < 0) {
		vsm__log(ctx, VSM_LOG_WARN, "container '%s': the migration to datastore '%s' is "
			 "left to the journal: %s", s->name, datastore,
			 vsm_error_last() ? vsm_error_last()->message : "?");
	} else if (vsm__wf_end(&wf) < 0) {
		vsm__log(ctx, VSM_LOG_WARN, "container '%s': its journal entry stays", s->name);
	}
	vsm__error_reset();
	if (!forward || (rc < 0 && pivot_err.code)) {
		event(ctx, datastore, s->name, "abort error %d", -pivot_err.code);
		vsm__error_restore(&pivot_err);
		rc = pivot_err.code ? -pivot_err.code : rc;
		goto out;
	}
	free(pivot_err.message);
	pivot_err.message = NULL;
	event(ctx, datastore, s->name, "switchover %llu", (unsigned long long)pause_us);
	rc = 0;
	if (vsm__ds_refresh(ctx, tds) == 0 && (cur = vsm__ds_find(tds, NULL, s->uuid)))
		vsm__container_move(c, datastore, cur);
	vsm__error_reset();
	if (opts->stats) {
		ck_mig_stats_clear(opts);
		opts->stats->layers = bs.layers;
		opts->stats->layers_reused = bs.layers_skipped;
		opts->stats->bytes_written = bs.bytes_written;
		if (opts->version >= 2) {
			opts->stats->passes = sync ? 2 : 1;
			opts->stats->pause_us = pause_us;
			opts->stats->bytes_mirrored = sync ? mirrored : 0;
			opts->stats->synchronous = sync;
		}
	}
	event(ctx, datastore, s->name, "complete passes=%d%s", sync ? 2 : 1,
	      sync ? " synchronous" : "");
	vsm__log(ctx, VSM_LOG_INFO, "container '%s' migrated live from datastore '%s' to '%s' "
		 "(domain '%s')", s->name, src, datastore, v[0].dep->domain);
	goto out;

jobs_cancel_or_abort:
	abort_jobs(v, n);
cancel_or_abort:
	if (prog.cancelled) {
		vsm__error_reset();
		rc = vsm_err(VSM_ECANCELED, "migration of container '%s' to datastore '%s' was "
			     "cancelled by the progress callback", s->name, datastore);
	}
	goto abort;
jobs_abort:
	abort_jobs(v, n);
abort:
	if (rc != -VSM_ETIMEDOUT && rc != -VSM_ECANCELED)
		event(ctx, datastore, s->name, "abort error %d", rc);
	else if (rc == -VSM_ECANCELED)
		event(ctx, datastore, s->name, "abort cancelled");
	for (i = 0; i < n; i++)
		if (v[i].tdev)
			undeploy_target(tds, &v[i], s->attached_host, hv);
	if (leased) {
		vsm__saved_error saved;

		vsm__error_save(&saved);
		vsm__lease_release(tds->lease, t);
		vsm__error_restore(&saved);
	}
	if (began)
		vsm__wf_abort(&wf);
out:
	free(pivot_err.message);
	for (i = 0; v && i < n; i++) {
		if (v[i].job)
			vsm__hv_copy_end(v[i].job, false);
		vsm_locator_free(v[i].loc);
	}
	free(v);
	free(hv);
	free(path);
	free(src);
	vsm_record_free(s);
	vsm_record_free(t);
	vsm__ctx_unlock(ctx);
	return rc;
}
