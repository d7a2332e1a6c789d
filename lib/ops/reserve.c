/*
 * Datastore space for placement and the reservation records that hold it
 * (reserve.h). A reservation is an ordinary record slot written under the
 * metadata lock, so every process and host that changes the datastore
 * counts it; it carries its expiry, so a holder that dies frees it by
 * waiting, and its owner, so that this state directory frees at once what
 * its own dead processes held.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "becall.h"
#include "container_int.h"
#include "reserve.h"
#include "workflow.h"

int64_t vsm__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *vsm__space_fmt(char *buf, size_t size, uint64_t bytes)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, "%.1f %s", v, unit[u]);
	return buf;
}

const char *vsm__space_why(char *buf, size_t size, const vsm__space *s, uint64_t need,
			  bool thick)
{
	char a[32], b[32], c[32], d[32], e[32];

	if (thick)
		snprintf(buf, size, "needs %s, %s available (free %s, reserved %s, committed %s)",
			 vsm__space_fmt(a, sizeof(a), need),
			 vsm__space_fmt(b, sizeof(b), vsm__space_available(s)),
			 vsm__space_fmt(c, sizeof(c), s->free_bytes),
			 vsm__space_fmt(d, sizeof(d), s->reserved),
			 vsm__space_fmt(e, sizeof(e), s->committed));
	else
		snprintf(buf, size, "needs %s (thin), %s free and %s reserved",
			 vsm__space_fmt(a, sizeof(a), need),
			 vsm__space_fmt(b, sizeof(b), s->free_bytes),
			 vsm__space_fmt(c, sizeof(c), s->reserved));
	return buf;
}

uint64_t vsm__space_available(const vsm__space *s)
{
	uint64_t held = s->reserved + s->committed;

	return s->free_bytes > held ? s->free_bytes - held : 0;
}

bool vsm__space_fits(const vsm__space *s, uint64_t need, bool thick)
{
	if (thick)
		return need <= vsm__space_available(s);
	return s->free_bytes >= s->reserved && need <= s->free_bytes - s->reserved;
}

uint64_t vsm__space_need(bool thick, uint64_t state_size, const uint64_t *sizes, size_t n)
{
	uint64_t need = state_size ? state_size : DEFAULT_STATE_SIZE;
	size_t i;

	for (i = 0; i < n; i++)
		need += thick ? sizes[i] : VSM__THIN_DEVICE_ALLOWANCE;
	return need;
}

/* The state directory's node id (lib/lease/dslock.c publishes it before
 * any change of a datastore), or "" when there is none yet. */
static void node_of(const vsm_ctx *ctx, char out[VSM_UUID_STRLEN + 1])
{
	char path[4096];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "%s/node-id", ctx->state_dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, out, VSM_UUID_STRLEN);
		close(fd);
	}
	out[n == VSM_UUID_STRLEN ? n : 0] = '\0';
}

/* Owner strings are "NODE/PID:START/CONTEXT". */
static bool owner_dead_here(const char *owner, const char *node)
{
	size_t len = strlen(node);

	if (!len || strncmp(owner, node, len) != 0 || owner[len] != '/')
		return false;
	return !vsm__wf_owner_alive(owner + len + 1);
}

static bool resv_live_node(const vsm_record *r, int64_t now_ms, const char *node)
{
	return r->resv && r->resv->expires_ms >= now_ms && !owner_dead_here(r->resv->owner, node);
}

bool vsm__resv_live(vsm_ctx *ctx, const vsm_record *r, int64_t now_ms)
{
	char node[VSM_UUID_STRLEN + 1];

	node_of(ctx, node);
	return resv_live_node(r, now_ms, node);
}

/* What a thick container may still write: provisioned minus occupied. */
static uint64_t thick_committed(vsm_dstore *ds, const vsm_record *r, uint64_t prov)
{
	uint64_t occupied = 0, b;
	size_t i;

	if (!vsm__be_can_allocated(ds))
		return prov;
	for (i = 0; i < r->n_devices; i++) {
		b = 0;
		if (vsm__be_device_allocated(ds, r->devices[i].key, &b) == 0)
			occupied += b;
		else
			vsm__error_reset(); /* counted as occupying nothing: safe */
	}
	if (r->state_key) {
		b = 0;
		if (vsm__be_device_allocated(ds, r->state_key, &b) == 0)
			occupied += b;
		else
			vsm__error_reset();
	}
	return prov > occupied ? prov - occupied : 0;
}

int vsm__space_live(vsm_ctx *ctx, vsm_dstore *ds, vsm__space *out)
{
	char node[VSM_UUID_STRLEN + 1];
	int64_t now = vsm__now_ms();
	size_t i, j;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = vsm__ds_refresh(ctx, ds)) < 0 ||
	    (rc = vsm__be_capacity(ds, &out->total, &out->free_bytes)) < 0)
		return rc;
	out->caw = ds->meta && vsm_bdev_has_compare_and_write(ds->meta->bdev);
	node_of(ctx, node);
	for (i = 0; i < ds->n_recs; i++) {
		const vsm_record *r = ds->recs[i];
		uint64_t prov;

		if (r->resv) {
			if (resv_live_node(r, now, node))
				out->reserved += r->resv->bytes;
			continue;
		}
		if (r->group)
			continue;
		out->containers++;
		prov = r->state_size;
		for (j = 0; j < r->n_devices; j++)
			prov += r->devices[j].size;
		out->provisioned += prov;
		if (r->thick)
			out->committed += thick_committed(ds, r, prov);
	}
	/* Only a cache for VSM_PLACE_CACHED: a failure to record it is no
	 * failure of the figures. */
	if (vsm_catalog_exec(ctx->cat, "INSERT OR REPLACE INTO ds_space(datastore, total, free, "
			     "reserved, committed, provisioned, containers, caw, updated_ms) "
			     "VALUES(?,?,?,?,?,?,?,?,?)", "siiiiiiii", ds->name,
			     (int64_t)out->total, (int64_t)out->free_bytes,
			     (int64_t)out->reserved, (int64_t)out->committed,
			     (int64_t)out->provisioned, (int64_t)out->containers,
			     (int64_t)out->caw, now) < 0)
		vsm__error_reset();
	return 0;
}

bool vsm__resv_is(const vsm_reservation *r, const vsm_record *rec)
{
	return rec && rec->resv && !strcmp(rec->uuid, r->uuid) && !strcmp(rec->name, r->name);
}

/* Tombstone every reservation that no longer counts (under the lock). */
static int sweep(vsm_ctx *ctx, vsm_dstore *ds)
{
	char node[VSM_UUID_STRLEN + 1];
	int64_t now = vsm__now_ms();
	uint32_t *slots = NULL;
	char (*uuids)[VSM_UUID_STRLEN + 1] = NULL;
	size_t i, n = 0;
	int rc = 0;

	node_of(ctx, node);
	for (i = 0; i < ds->n_recs; i++)
		if (ds->recs[i]->resv && !resv_live_node(ds->recs[i], now, node))
			n++;
	if (!n)
		return 0;
	/* Freeing a slot reorders recs[]: collect first. */
	if (!(slots = vsm__calloc(n, sizeof(*slots))) || !(uuids = vsm__calloc(n, sizeof(*uuids)))) {
		free(slots);
		return -VSM_ENOMEM;
	}
	for (i = 0, n = 0; i < ds->n_recs; i++) {
		const vsm_record *r = ds->recs[i];

		if (r->resv && !resv_live_node(r, now, node)) {
			slots[n] = r->slot;
			memcpy(uuids[n++], r->uuid, VSM_UUID_STRLEN + 1);
		}
	}
	for (i = 0; i < n && rc >= 0; i++) {
		rc = vsm__ds_free_slot(ctx, ds, slots[i], uuids[i]);
		if (rc > 0)
			vsm__log(ctx, VSM_LOG_INFO, "datastore '%s': expired reservation %s freed",
				 ds->name, uuids[i]);
	}
	free(slots);
	free(uuids);
	return rc < 0 ? rc : 0;
}

int vsm__reserve(vsm_reservation **out, vsm_ctx *ctx, const char *ds_name, const char *name,
		 uint64_t bytes, bool thick, int64_t ttl_ms)
{
	char owner[VSM_UUID_STRLEN + 2 + 128], a[32];
	vsm_reservation *res = NULL;
	vsm_record *rec = NULL;
	vsm_dstore *ds;
	vsm__space sp;
	vsm_wf wf = {0};
	bool locked = false, wf_on = false;
	int rc;

	*out = NULL;
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, ds_name)) < 0 || (rc = vsm__ds_change_begin(ctx, ds)) < 0)
		goto out;
	locked = true;
	if ((rc = sweep(ctx, ds)) < 0 || (rc = vsm__space_live(ctx, ds, &sp)) < 0)
		goto out;
	if (vsm__ds_find(ds, name, NULL)) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': container '%s' already exists or is "
			     "reserved by a placement in progress", ds_name, name);
		goto out;
	}
	if (!vsm__space_fits(&sp, bytes, thick)) {
		char why[256];

		rc = vsm_err(VSM_ENOSPC, "%s", vsm__space_why(why, sizeof(why), &sp, bytes, thick));
		goto out;
	}
	if (!(rec = vsm__calloc(1, sizeof(*rec))) || !(rec->resv = vsm__calloc(1, sizeof(*rec->resv))) ||
	    !(rec->name = vsm__strdup(name)) ||
	    !(res = vsm__calloc(1, sizeof(*res))) || !(res->datastore = vsm__strdup(ds_name)) ||
	    !(res->name = vsm__strdup(name))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	node_of(ctx, owner);
	owner[strlen(owner) + 1] = '\0';
	owner[strlen(owner)] = '/';
	vsm__wf_owner(ctx, owner + strlen(owner), sizeof(owner) - strlen(owner));
	vsm__uuid_new(rec->uuid);
	rec->ctime = (int64_t)time(NULL);
	rec->resv->bytes = bytes;
	rec->resv->expires_ms = vsm__now_ms() + ttl_ms;
	rec->resv->thick = thick;
	if (!(rec->resv->owner = vsm__strdup(owner))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	/* Journalled like a create's record: if the insert fails half-way
	 * (record written, generation not), the rollback removes it, and if
	 * even that fails the journal keeps it for vsm_ctx_recover or the
	 * next context rather than leaving the name held until the expiry. */
	if ((rc = vsm__wf_begin(&wf, ctx, "reserve", ds_name, name)) < 0)
		goto out;
	wf_on = true;
	if ((rc = vsm__wf_undo(&wf, VSM_WF_UUID_FREE, rec->uuid)) < 0 ||
	    (rc = vsm__ds_insert_record(ctx, ds, rec)) < 0 || (rc = vsm__wf_end(&wf)) < 0)
		goto out;
	wf_on = false;
	res->ctx = ctx;
	memcpy(res->uuid, rec->uuid, sizeof(res->uuid));
	res->bytes = bytes;
	res->expires_ms = rec->resv->expires_ms;
	res->thick = thick;
	vsm__log(ctx, VSM_LOG_INFO, "datastore '%s': %s reserved for container '%s' (%s)",
		 ds_name, vsm__space_fmt(a, sizeof(a), bytes), name, rec->uuid);
	*out = res;
	res = NULL;
out:
	if (wf_on)
		vsm__wf_abort(&wf);
	if (locked)
		vsm__ds_change_end(ctx, ds);
	vsm_record_free(rec);
	if (res) {
		free(res->datastore);
		free(res->name);
		free(res);
	}
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API const char *vsm_reservation_datastore(const vsm_reservation *r)
{
	return r ? r->datastore : NULL;
}

VSM_API const char *vsm_reservation_name(const vsm_reservation *r)
{
	return r ? r->name : NULL;
}

VSM_API uint64_t vsm_reservation_bytes(const vsm_reservation *r)
{
	return r ? r->bytes : 0;
}

VSM_API int64_t vsm_reservation_expires(const vsm_reservation *r)
{
	return r ? r->expires_ms : 0;
}

VSM_API int vsm_reservation_abort(vsm_reservation *r)
{
	vsm_wf wf = {0};
	vsm_dstore *ds;
	int rc;

	vsm__error_reset();
	if (!r)
		return vsm_err(VSM_EINVAL, "vsm_reservation_abort: NULL argument");
	if (r->done)
		return 0;
	vsm__ctx_lock(r->ctx);
	/*
	 * The removal is a journal rollback, written before any I/O: if the
	 * storage fails it (or the lock cannot be had), the step stays in
	 * the journal for vsm_ctx_recover or the next context, rather than
	 * the name and the space staying held until the expiry. The journal
	 * frees whatever holds the reservation's UUID; that is only ever the
	 * reservation, as the handle is spent from here on (a create can no
	 * longer commit it into a container with that UUID).
	 */
	if ((rc = vsm__wf_begin(&wf, r->ctx, "reservation-abort", r->datastore, r->name)) < 0)
		goto out;
	if ((rc = vsm__wf_undo(&wf, VSM_WF_UUID_FREE, r->uuid)) < 0) {
		vsm__wf_end(&wf);
		goto out;
	}
	r->done = true;
	vsm__wf_abort(&wf);
	/* Say whether it is gone now. */
	if ((rc = vsm__ds_get(&ds, r->ctx, r->datastore)) == 0 &&
	    (rc = vsm__ds_change_begin(r->ctx, ds)) == 0) {
		if (vsm__resv_is(r, vsm__ds_find(ds, NULL, r->uuid)))
			rc = -VSM_EIO;
		vsm__ds_change_end(r->ctx, ds);
	}
	if (rc < 0)
		rc = vsm_err(-rc, "datastore '%s': the reservation for container '%s' could not "
			     "be removed now; the journal removes it (vsm_ctx_recover, or the "
			     "next context)", r->datastore, r->name);
out:
	vsm__ctx_unlock(r->ctx);
	return rc;
}

VSM_API void vsm_reservation_free(vsm_reservation *r)
{
	vsm__saved_error saved;

	if (!r)
		return;
	if (!r->done) {
		vsm__error_save(&saved);
		if (vsm_reservation_abort(r) < 0)
			vsm__log(r->ctx, VSM_LOG_WARN, "datastore '%s': reservation for '%s' not "
				 "freed (%s); it expires by itself", r->datastore, r->name,
				 vsm_error_last()->message);
		vsm__error_restore(&saved);
	}
	free(r->datastore);
	free(r->name);
	free(r);
}
