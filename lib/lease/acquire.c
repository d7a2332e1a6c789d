/*
 * Leases: container leases: acquire (one compare-and-write, or Disk Paxos),
 * release, fence before a write, and the status the public calls report.
 * doc/leases.md gives the protocol.
 */
#include "lease_priv.h"

/* -------------------------------------------------------------- acquire */

lease_held *ls_held_find(vsm_lease_ds *l, uint32_t slot, const char *uuid)
{
	lease_held *e;

	for (e = l->held; e; e = e->next)
		if (e->slot == slot && !strcmp(e->uuid, uuid))
			return e;
	return NULL;
}

static void held_drop(vsm_lease_ds *l, lease_held *gone)
{
	lease_held **pp;

	for (pp = &l->held; *pp; pp = &(*pp)->next) {
		if (*pp == gone) {
			*pp = gone->next;
			free(gone->container);
			free(gone->mine);
			free(gone);
			return;
		}
	}
}

int ls_held_set(vsm_lease_ds *l, const vsm_record *r, lease_hb *hb, uint64_t lver)
{
	lease_held *e = ls_held_find(l, r->slot, r->uuid);

	if (!e) {
		if (!(e = vsm__calloc(1, sizeof(*e))) || !(e->container = vsm__strdup(r->name))) {
			free(e);
			return -VSM_ENOMEM;
		}
		e->slot = r->slot;
		memcpy(e->uuid, r->uuid, sizeof(e->uuid));
		e->next = l->held;
		l->held = e;
	}
	e->hb = hb;
	e->lver = lver;
	e->lost = false;
	return 0;
}

static int held_by_error(int code, const vsm_record *r, const vsm_lv *cur, int j,
			 int64_t stopped, uint32_t timeout)
{
	char when[40];

	ls_fmt_time(when, sizeof(when), cur->since_ms);
	if (j == J_LIVE)
		return vsm_err(code, "container '%s' lease is held by host '%s' since %s "
			       "(heartbeat moving)", r->name, cur->owner, when);
	return vsm_err(code, "container '%s' lease is held by host '%s' since %s (heartbeat "
		       "stopped for %.1fs; it may be taken over after %.1fs)", r->name,
		       cur->owner, when, (double)stopped / 1000, (double)timeout / 1000);
}

/* Take (and forget) the cached owner sector of lease @idx, or NULL. */
static uint8_t *cache_take(vsm_lease_ds *l, uint32_t idx)
{
	lease_cache **pp, *k;
	uint8_t *b;

	for (pp = &l->cache; (k = *pp); pp = &k->next) {
		if (k->idx == idx) {
			*pp = k->next;
			b = k->bytes;
			free(k);
			return b;
		}
	}
	return NULL;
}

static void cache_put(vsm_lease_ds *l, uint32_t idx, uint8_t *bytes)
{
	lease_cache *k;
	int n = 0;

	free(cache_take(l, idx));
	for (k = l->cache; k; k = k->next)
		n++;
	if (n >= 64 || !(k = calloc(1, sizeof(*k)))) {
		free(bytes);
		return;
	}
	k->idx = idx;
	k->bytes = bytes;
	k->next = l->cache;
	l->cache = k;
}

/* Called with the manager locked; may unlock it while watching. */
static int acquire_locked(vsm_lease_ds *l, const vsm_record *r, const char *host,
			  unsigned int flags, uint64_t *lver, bool *took_over)
{
	uint32_t idx = r->slot + 1;
	int64_t watch_until = 0;
	lease_hb *me;
	int tries, rc;

	if (r->slot >= l->meta->geom.slot_count && vsm_meta_reload(l->meta) < 0)
		return -vsm__error_code();
	if (r->slot >= l->meta->geom.slot_count)
		return vsm_err(VSM_EINVAL, "datastore '%s': no lease for slot %u", l->name,
			       r->slot);
	for (tries = 0; tries < 200; tries++) {
		uint8_t *raw = NULL, *mine = NULL;
		uint64_t inst_max = 0;
		vsm_lv cur, want, chosen;
		int64_t stopped = 0;
		lease_held *e;
		int j;

		if ((rc = ls_hb_join(l, host, &me)) < 0)
			return rc;
		/* What we last wrote ourselves, if anything: compare-and-write
		 * checks it is still there. */
		if (!l->plain && (raw = cache_take(l, idx)) && ls_owner_decode(raw, &cur) != 1) {
			free(raw);
			raw = NULL;
		}
		/* Read the lease first, then the heartbeats: a holder that
		 * renewed before our read of the lease is seen moving. */
		if (!raw && (rc = ls_lease_read(l, idx, &cur, &raw, &inst_max)) < 0)
			return rc;
		j = ls_judge(l, &cur, r->uuid, me, &stopped);
		if (j != J_FREE && j != J_OURS) {
			if ((rc = ls_obs_refresh(l, NULL)) < 0) {
				free(raw);
				return rc;
			}
			j = ls_judge(l, &cur, r->uuid, me, &stopped);
		}
		if ((flags & VSM__LEASE_SAME_HOST) && j != J_FREE && j != J_OURS) {
			free(raw);
			return held_by_error(VSM_ESTALE, r, &cur, j, stopped, l->timeout);
		}
		if (j == J_STOPPED || (j == J_LIVE && (flags & VSM__LEASE_WAIT))) {
			int64_t now = ls_mono_ms();

			/* A holder we have not watched long enough: watch a little
			 * (or, asked to take over, until the timeout has passed). */
			if (!watch_until)
				watch_until = now + ((flags & VSM__LEASE_WAIT) ? 3 * (int64_t)l->timeout :
						     3 * (int64_t)l->renew / 2 + 1);
			if (now < watch_until) {
				free(raw);
				pthread_mutex_unlock(&l->mgr->lock);
				ls_sleep_ms(l->renew / 2 + 1);
				pthread_mutex_lock(&l->mgr->lock);
				tries--;
				continue;
			}
		}
		if ((j == J_LIVE || j == J_STOPPED) && cur.ho_state == LV_HO_ACCEPTED) {
			free(raw);
			return vsm_err(VSM_ELEASE, "container '%s' is being handed over from host "
				       "'%s' to host '%s'; complete or cancel the handover",
				       r->name, cur.owner, cur.ho_host);
		}
		if (j == J_LIVE || j == J_STOPPED) {
			free(raw);
			return held_by_error(VSM_ELEASE, r, &cur, j, stopped, l->timeout);
		}
		memset(&want, 0, sizeof(want));
		want.lver = cur.lver + 1;
		want.owner_slot = me->slot;
		want.owner_gen = me->gen;
		want.since_ms = ls_wall_ms();
		snprintf(want.owner, sizeof(want.owner), "%s", host);
		memcpy(want.uuid, r->uuid, sizeof(want.uuid));
		/* Taking our own lease up again keeps a handover it is in; a
		 * takeover (holder and target dead) ends it. */
		if (j == J_OURS && cur.ho_state != LV_HO_NONE) {
			want.ho_state = cur.ho_state;
			want.ho_slot = cur.ho_slot;
			want.ho_gen = cur.ho_gen;
			memcpy(want.ho_host, cur.ho_host, sizeof(want.ho_host));
		}
		if (!l->plain) {
			uint8_t *buf = ls_sector_buf(l);

			if (!buf) {
				free(raw);
				return -VSM_ENOMEM;
			}
			ls_owner_encode(buf, &want);
			rc = vsm_bdev_compare_and_write(l->bdev, raw, buf, l->lb, ls_area_off(l, idx));
			free(raw);
			if (rc == -VSM_EMISMATCH) {
				free(buf);
				vsm__error_reset();
				continue;
			}
			/* No flush: a completed write is what other hosts see
			 * (doc/leases.md, "Limits"). */
			if (rc < 0) {
				free(buf);
				return rc;
			}
			chosen = want;
			mine = buf;
		} else {
			free(raw);
			if (inst_max > cur.lver)
				want.lver = inst_max; /* finish (or win) the open instance */
			rc = ls_paxos(l, idx, me, want.lver, &want, &cur, &chosen);
			if (rc < 0)
				return rc;
			if (rc == PX_AGAIN || !ls_lv_same(&chosen, &want)) {
				ls_sleep_ms((int64_t)(ls_rand64(l->mgr) % 3));
				continue; /* someone else's value: judge it afresh */
			}
		}
		if ((rc = ls_held_set(l, r, me, chosen.lver)) < 0) {
			free(mine);
			return rc;
		}
		e = ls_held_find(l, r->slot, r->uuid);
		free(e->mine);
		e->mine = mine;
		*lver = chosen.lver;
		if (took_over)
			*took_over = j == J_DEAD;
		return 0;
	}
	return vsm_err(VSM_ELEASE, "container '%s' lease is contended; try again", r->name);
}

int vsm__lease_acquire(vsm_lease_ds *l, const vsm_record *r, const char *host,
		       unsigned int flags, uint64_t *lver, bool *took_over)
{
	int rc;

	if (!l)
		return vsm_err(VSM_ENOTSUP, "the datastore has no lease area open");
	if (strlen(host) > LS_NAME_MAX)
		return vsm_err(VSM_EINVAL, "host name '%s' is too long for a lease", host);
	pthread_mutex_lock(&l->mgr->lock);
	rc = acquire_locked(l, r, host, flags, lver, took_over);
	pthread_mutex_unlock(&l->mgr->lock);
	return rc;
}

int vsm__lease_release(vsm_lease_ds *l, const vsm_record *r)
{
	uint32_t idx = r->slot + 1;
	lease_held *e;
	int rc = 0, tries;

	if (!l)
		return 0;
	pthread_mutex_lock(&l->mgr->lock);
	if (!(e = ls_held_find(l, r->slot, r->uuid)))
		goto out;
	if (!l->plain && e->mine) {
		/* Still exactly what we wrote? Then one compare-and-write frees it. */
		uint8_t *buf = ls_sector_buf(l);
		vsm_lv want;

		if (!buf) {
			rc = -VSM_ENOMEM;
			goto drop;
		}
		memset(&want, 0, sizeof(want));
		want.lver = e->lver + 1;
		want.flags = LV_FREE;
		want.owner_slot = UINT32_MAX;
		want.since_ms = ls_wall_ms();
		memcpy(want.uuid, r->uuid, sizeof(want.uuid));
		ls_owner_encode(buf, &want);
		rc = vsm_bdev_compare_and_write(l->bdev, e->mine, buf, l->lb, ls_area_off(l, idx));
		if (rc == 0) {
			cache_put(l, idx, buf);
			goto drop;
		}
		free(buf);
		if (rc != -VSM_EMISMATCH)
			goto drop;
		vsm__error_reset();
		rc = 0;
	}
	for (tries = 0; tries < 50; tries++) {
		uint8_t *raw = NULL;
		uint64_t inst_max = 0;
		vsm_lv cur, want, chosen;

		if ((rc = ls_lease_read(l, idx, &cur, &raw, &inst_max)) < 0)
			break;
		/* Only our own acquisition is ours to release. */
		if (cur.lver != e->lver || cur.owner_slot != e->hb->slot ||
		    cur.owner_gen != e->hb->gen || (cur.flags & LV_FREE)) {
			free(raw);
			break;
		}
		memset(&want, 0, sizeof(want));
		want.lver = cur.lver + 1;
		want.flags = LV_FREE;
		want.owner_slot = UINT32_MAX;
		want.since_ms = ls_wall_ms();
		memcpy(want.uuid, r->uuid, sizeof(want.uuid));
		if (!l->plain) {
			uint8_t *buf = ls_sector_buf(l);

			if (!buf) {
				free(raw);
				rc = -VSM_ENOMEM;
				break;
			}
			ls_owner_encode(buf, &want);
			rc = vsm_bdev_compare_and_write(l->bdev, raw, buf, l->lb, ls_area_off(l, idx));
			free(buf);
			free(raw);
			if (rc == -VSM_EMISMATCH) {
				vsm__error_reset();
				rc = 0;
				continue;
			}
			break;
		}
		free(raw);
		if (inst_max > cur.lver)
			want.lver = inst_max;
		rc = ls_paxos(l, idx, e->hb, want.lver, &want, &cur, &chosen);
		if (rc < 0)
			break;
		if (rc == PX_OK && ls_lv_same(&chosen, &want))
			break;
		rc = 0;
	}
drop:
	held_drop(l, e);
out:
	pthread_mutex_unlock(&l->mgr->lock);
	return rc;
}

bool vsm__lease_held(vsm_lease_ds *l, const vsm_record *r, const char *host, uint64_t *lver)
{
	lease_held *e;
	bool ok;

	if (!l)
		return false;
	pthread_mutex_lock(&l->mgr->lock);
	e = ls_held_find(l, r->slot, r->uuid);
	ok = e && !e->lost && !strcmp(e->hb->host, host) && ls_mono_ms() < e->hb->deadline;
	if (ok)
		*lver = e->lver;
	pthread_mutex_unlock(&l->mgr->lock);
	return ok;
}

bool vsm__lease_acts_for(const vsm_lease_mgr *m, const char *host)
{
	return ls_state_host_known(m, host);
}

int vsm__lease_fence(vsm_lease_ds *l, const vsm_record *cur, uint64_t *lver)
{
	const char *host = cur->attached_host;
	lease_held *e;
	int rc;

	if (!l || !host)
		return vsm_err(VSM_EINTERNAL, "lease fence on a detached container");
	pthread_mutex_lock(&l->mgr->lock);
	e = ls_held_find(l, cur->slot, cur->uuid);
	/* A newer token on disk means someone acquired after us (another
	 * process of this host, or a takeover): ours is no good any more. */
	/* A source in a handover checks the lease itself: a complete moves
	 * it without telling us (doc/host-migration.md). */
	if (e && !e->lost && !strcmp(e->hb->host, host) && ls_mono_ms() < e->hb->deadline &&
	    cur->lease_version <= e->lver &&
	    (e->ho != HO_SOURCE || ls_handover_source_holds(l, e))) {
		*lver = e->lver;
		pthread_mutex_unlock(&l->mgr->lock);
		return 0;
	}
	pthread_mutex_unlock(&l->mgr->lock);
	/* Not held here (another process of this host acquired it, or our
	 * heartbeat lapsed): take it up again, but only from this very host. */
	if (!ls_state_host_known(l->mgr, host))
		return vsm_err(VSM_ESTALE, "container '%s' is attached to host '%s', which this "
			       "context does not act for", cur->name, host);
	rc = vsm__lease_acquire(l, cur, host, VSM__LEASE_SAME_HOST, lver, NULL);
	if (rc == -VSM_ESTALE)
		vsm__error_prefix("container '%s': this host's lease was lost", cur->name);
	if (rc == 0 && cur->lease_version > *lver)
		rc = vsm_err(VSM_ESTALE, "container '%s': lease version %llu was superseded",
			     cur->name, (unsigned long long)*lver);
	return rc;
}

/* ------------------------------------------ for the public calls (ops) */

int vsm__lease_status(vsm_lease_ds *l, const vsm_record *const *recs, size_t n, bool watch,
		      vsm__lease_view *out)
{
	size_t i;
	int rc;

	pthread_mutex_lock(&l->mgr->lock);
	rc = ls_obs_refresh(l, NULL);
	if (rc == 0 && watch) {
		pthread_mutex_unlock(&l->mgr->lock);
		ls_sleep_ms(3 * (int64_t)l->renew / 2 + 1);
		pthread_mutex_lock(&l->mgr->lock);
		rc = ls_obs_refresh(l, NULL);
	}
	for (i = 0; rc == 0 && i < n; i++) {
		const vsm_record *r = recs[i];
		vsm__lease_view *x = &out[i];
		lease_held *e;
		vsm_lv cur;
		int j;

		memset(x, 0, sizeof(*x));
		if ((rc = ls_lease_read(l, r->slot + 1, &cur, NULL, NULL)) < 0)
			break;
		j = ls_judge(l, &cur, r->uuid, NULL, &x->stopped);
		x->version = cur.lver;
		if (j == J_FREE) {
			x->state = VSM_LEASE_FREE;
			continue;
		}
		x->since = cur.since_ms;
		snprintf(x->owner, sizeof(x->owner), "%s", cur.owner);
		x->state = j == J_LIVE ? VSM_LEASE_LIVE : j == J_DEAD ? VSM_LEASE_DEAD :
			   VSM_LEASE_STOPPED;
		e = ls_held_find(l, r->slot, r->uuid);
		x->mine = e && !e->lost && e->lver == cur.lver && ls_mono_ms() < e->hb->deadline;
		if (x->mine)
			x->state = VSM_LEASE_LIVE;
	}
	pthread_mutex_unlock(&l->mgr->lock);
	return rc;
}
