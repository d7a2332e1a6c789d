/*
 * Leases: host migration. A lease is handed over from its holder (the
 * source) to a named target host, which is admitted before the lease
 * becomes its own: begin, accept, complete, cancel as lease transitions
 * (one compare-and-write or one Disk Paxos instance each), the renewal
 * pass's fallback to the source when an admitted target dies, and what
 * the public calls ask of a handover. doc/host-migration.md gives the
 * protocol and its state table.
 */
#include "lease_priv.h"

static bool lv_owned_by(const vsm_lv *v, const lease_hb *hb)
{
	return v->lver && !(v->flags & LV_FREE) && v->owner_slot == hb->slot &&
	       v->owner_gen == hb->gen;
}

static bool lv_admits(const vsm_lv *v, const lease_hb *hb)
{
	return v->lver && !(v->flags & LV_FREE) && v->ho_state == LV_HO_ACCEPTED &&
	       v->ho_slot == hb->slot && v->ho_gen == hb->gen;
}

static void lv_ho_clear(vsm_lv *v)
{
	v->ho_state = LV_HO_NONE;
	v->ho_slot = 0;
	v->ho_gen = 0;
	memset(v->ho_host, 0, sizeof(v->ho_host));
}

/*
 * Replace the value @cur (read as @raw for compare-and-write; @inst_max
 * the highest Paxos instance begun) by @want, writing as @me. 0: done
 * (*mine: the owner sector written, compare-and-write only); 1: someone
 * changed the lease first, read it again; < 0: error.
 */
static int propose(vsm_lease_ds *l, uint32_t idx, const lease_hb *me, const vsm_lv *cur,
		   const uint8_t *raw, uint64_t inst_max, vsm_lv *want, uint8_t **mine)
{
	vsm_lv chosen;
	int rc;

	*mine = NULL;
	if (!l->plain) {
		uint8_t *buf = ls_sector_buf(l);

		if (!buf)
			return -VSM_ENOMEM;
		ls_owner_encode(buf, want);
		rc = vsm_bdev_compare_and_write(l->bdev, raw, buf, l->lb, ls_area_off(l, idx));
		if (rc < 0) {
			free(buf);
			if (rc != -VSM_EMISMATCH)
				return rc;
			vsm__error_reset();
			return 1;
		}
		*mine = buf;
		return 0;
	}
	/* An instance begun and not decided is finished first (Paxos keeps
	 * a value already accepted); then ours is judged afresh. */
	if (inst_max > cur->lver)
		want->lver = inst_max;
	rc = ls_paxos(l, idx, me, want->lver, want, cur, &chosen);
	if (rc < 0)
		return rc;
	if (rc == PX_AGAIN || !ls_lv_same(&chosen, want)) {
		ls_sleep_ms((int64_t)(ls_rand64(l->mgr) % 3));
		return 1;
	}
	return 0;
}

/* The lease area becomes format 2 before its first version 2 sector:
 * from then on 0.1 refuses to open it instead of misreading a lease in
 * handover. The header's other fields never change, so rewriting it is
 * idempotent. */
static int header_upgrade(vsm_lease_ds *l)
{
	uint8_t *old = ls_sector_buf(l), *buf = ls_sector_buf(l);
	vsm_lhdr h;
	int rc, tries;

	if (l->format >= 2)
		goto done;
	if (!old || !buf) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (tries = 0; tries < 10; tries++) {
		if ((rc = ls_read_settled(l, old, l->lb, ls_area_off(l, 0), NULL)) < 0)
			goto out;
		if (ls_hdr_decode(old, &h) != 1) {
			rc = vsm_err(VSM_ECORRUPT, "datastore '%s': lease area header is damaged",
				     l->name);
			goto out;
		}
		if (h.format >= 2)
			break;
		h.format = 2;
		ls_hdr_encode(buf, &h);
		if (l->plain)
			rc = vsm_bdev_write(l->bdev, buf, l->lb, ls_area_off(l, 0));
		else
			rc = vsm_bdev_compare_and_write(l->bdev, old, buf, l->lb, ls_area_off(l, 0));
		if (rc == -VSM_EMISMATCH) {
			vsm__error_reset();
			continue;
		}
		if (rc < 0)
			goto out;
		break;
	}
	l->format = 2;
done:
	rc = 0;
out:
	free(old);
	free(buf);
	return rc;
}

/* Build the value @op moves @cur to; 1: nothing to do (already done),
 * 0: propose *want, < 0: refused. */
static int transition(vsm_lease_ds *l, const vsm_record *r, const char *host, int op,
		      const char *target, const lease_hb *me, const vsm_lv *cur, vsm_lv *want)
{
	bool free_ = !cur->lver || (cur->flags & LV_FREE) || strcmp(cur->uuid, r->uuid);

	*want = *cur;
	want->lver = cur->lver + 1;
	switch (op) {
	case VSM__HO_BEGIN:
		if (free_)
			return vsm_err(VSM_ESTALE, "container '%s': host '%s' does not hold its "
				       "lease (it is free)", r->name, host);
		if (!lv_owned_by(cur, me))
			return vsm_err(VSM_ESTALE, "container '%s': host '%s' does not hold its "
				       "lease (host '%s' does)", r->name, host, cur->owner);
		if (cur->ho_state != LV_HO_NONE) {
			if (!strcmp(cur->ho_host, target))
				return 1;
			return vsm_err(VSM_ESTATE, "container '%s' is already being handed over "
				       "to host '%s'", r->name, cur->ho_host);
		}
		want->ho_state = LV_HO_BEGUN;
		want->ho_slot = 0;
		want->ho_gen = 0;
		memset(want->ho_host, 0, sizeof(want->ho_host));
		snprintf(want->ho_host, sizeof(want->ho_host), "%s", target);
		return 0;
	case VSM__HO_ACCEPT:
		if (!free_ && lv_admits(cur, me))
			return 1;
		if (!free_ && lv_owned_by(cur, me) && cur->ho_state == LV_HO_NONE)
			return vsm_err(VSM_ESTATE, "container '%s': host '%s' already holds its "
				       "lease", r->name, host);
		if (free_ || cur->ho_state == LV_HO_NONE || strcmp(cur->ho_host, host))
			return vsm_err(VSM_ESTATE, "container '%s' is not being handed over to "
				       "host '%s'%s%s%s", r->name, host,
				       !free_ && cur->ho_state ? " (the target is '" : "",
				       !free_ && cur->ho_state ? cur->ho_host : "",
				       !free_ && cur->ho_state ? "')" : "");
		want->ho_state = LV_HO_ACCEPTED;
		want->ho_slot = me->slot;
		want->ho_gen = me->gen;
		return 0;
	case VSM__HO_COMPLETE:
		if (!free_ && lv_owned_by(cur, me) && cur->ho_state == LV_HO_NONE)
			return 1;
		if (free_ || !lv_admits(cur, me))
			return vsm_err(cur->ho_state == LV_HO_BEGUN && !strcmp(cur->ho_host, host) ?
				       VSM_ESTATE : VSM_ESTALE, "container '%s': host '%s' is not "
				       "admitted to its lease (%s)", r->name, host,
				       free_ ? "the lease is free" :
				       cur->ho_state == LV_HO_NONE ? "no handover: it was cancelled "
				       "or fell back to the source" :
				       cur->ho_state == LV_HO_BEGUN && !strcmp(cur->ho_host, host) ?
				       "accept the handover first" : "another host was admitted");
		want->flags = 0;
		want->owner_slot = me->slot;
		want->owner_gen = me->gen;
		want->since_ms = ls_wall_ms();
		memset(want->owner, 0, sizeof(want->owner));
		snprintf(want->owner, sizeof(want->owner), "%s", host);
		lv_ho_clear(want);
		return 0;
	case VSM__HO_CANCEL:
		if (free_ || !lv_owned_by(cur, me))
			return vsm_err(VSM_ESTALE, "container '%s': host '%s' does not hold its "
				       "lease", r->name, host);
		if (cur->ho_state == LV_HO_NONE)
			return vsm_err(VSM_ESTATE, "container '%s' is not being handed over",
				       r->name);
		lv_ho_clear(want);
		return 0;
	}
	return vsm_err(VSM_EINTERNAL, "unknown handover step %d", op);
}

static int handover_locked(vsm_lease_ds *l, const vsm_record *r, const char *host, int op,
			   const char *target, uint64_t *lver, char *peer, size_t peer_size)
{
	uint32_t idx = r->slot + 1;
	int tries, rc;

	if (r->slot >= l->meta->geom.slot_count && vsm_meta_reload(l->meta) < 0)
		return -vsm__error_code();
	if (r->slot >= l->meta->geom.slot_count)
		return vsm_err(VSM_EINVAL, "datastore '%s': no lease for slot %u", l->name,
			       r->slot);
	if (op == VSM__HO_BEGIN && (rc = header_upgrade(l)) < 0)
		return rc;
	for (tries = 0; tries < 200; tries++) {
		uint8_t *raw = NULL, *mine = NULL;
		uint64_t inst_max = 0;
		lease_hb *me;
		lease_held *e;
		vsm_lv cur, want;

		/* Our heartbeat with plenty of validity ahead (rule H1). */
		if ((rc = ls_hb_join(l, host, &me)) < 0)
			return rc;
		if ((rc = ls_lease_read(l, idx, &cur, &raw, &inst_max)) < 0)
			return rc;
		if (peer)
			snprintf(peer, peer_size, "%s", op == VSM__HO_BEGIN ? target :
				 op == VSM__HO_CANCEL ? cur.ho_host : cur.owner);
		rc = transition(l, r, host, op, target, me, &cur, &want);
		if (rc == 1) {
			want = cur; /* already done: take it up as it stands */
			rc = 0;
		} else if (rc == 0 && (rc = propose(l, idx, me, &cur, raw, inst_max, &want,
						    &mine)) == 1) {
			free(raw);
			continue;
		}
		free(raw);
		if (rc < 0)
			return rc;
		if ((rc = ls_held_set(l, r, me, want.lver)) < 0) {
			free(mine);
			return rc;
		}
		e = ls_held_find(l, r->slot, r->uuid);
		if (mine || l->plain) {
			free(e->mine);
			e->mine = mine;
		}
		e->ho = op == VSM__HO_BEGIN ? HO_SOURCE : op == VSM__HO_ACCEPT ? HO_TARGET : HO_NONE;
		*lver = want.lver;
		return 0;
	}
	return vsm_err(VSM_ELEASE, "container '%s' lease is contended; try again", r->name);
}

int vsm__lease_handover(vsm_lease_ds *l, const vsm_record *r, const char *host, int op,
			const char *target, uint64_t *lver, char *peer, size_t peer_size)
{
	int rc;

	if (!l)
		return vsm_err(VSM_ENOTSUP, "the datastore has no lease area open");
	if (strlen(host) > LS_NAME_MAX || (target && strlen(target) > LS_NAME_MAX))
		return vsm_err(VSM_EINVAL, "host name is too long for a lease");
	if (op == VSM__HO_BEGIN && (!target || !strcmp(target, host)))
		return vsm_err(VSM_EINVAL, "container '%s': a handover needs another host as "
			       "its target", r->name);
	pthread_mutex_lock(&l->mgr->lock);
	rc = handover_locked(l, r, host, op, target, lver, peer, peer_size);
	pthread_mutex_unlock(&l->mgr->lock);
	return rc;
}

int vsm__lease_handover_state(vsm_lease_ds *l, const vsm_record *r, char *source,
			      char *target, size_t size)
{
	vsm_lv cur;
	int rc;

	if (!l)
		return 0;
	pthread_mutex_lock(&l->mgr->lock);
	rc = ls_lease_read(l, r->slot + 1, &cur, NULL, NULL);
	pthread_mutex_unlock(&l->mgr->lock);
	if (rc < 0)
		return rc;
	if (!cur.lver || (cur.flags & LV_FREE) || strcmp(cur.uuid, r->uuid))
		return 0;
	if (source)
		snprintf(source, size, "%s", cur.owner);
	if (target)
		snprintf(target, size, "%s", cur.ho_host);
	return (int)cur.ho_state;
}

bool vsm__lease_admitted(vsm_lease_ds *l, const vsm_record *r)
{
	lease_held *e;
	vsm_lv cur;
	bool ok = false;

	if (!l)
		return false;
	pthread_mutex_lock(&l->mgr->lock);
	e = ls_held_find(l, r->slot, r->uuid);
	if (e && e->ho == HO_TARGET && !e->lost && ls_mono_ms() < e->hb->deadline &&
	    ls_lease_read(l, r->slot + 1, &cur, NULL, NULL) == 0)
		ok = lv_admits(&cur, e->hb) && !strcmp(cur.uuid, r->uuid);
	vsm__error_reset();
	pthread_mutex_unlock(&l->mgr->lock);
	return ok;
}

bool vsm__lease_was_held(vsm_lease_ds *l, const vsm_record *r)
{
	lease_held *e;
	bool was;

	if (!l)
		return false;
	pthread_mutex_lock(&l->mgr->lock);
	e = ls_held_find(l, r->slot, r->uuid);
	was = e && (e->lost || !r->attached_host || strcmp(e->hb->host, r->attached_host));
	pthread_mutex_unlock(&l->mgr->lock);
	return was;
}

/* For the fence: a source still holds a lease it began to hand over
 * only while the lease on disk says so (a complete may have moved it). */
bool ls_handover_source_holds(vsm_lease_ds *l, lease_held *e)
{
	vsm_lv cur;

	if (ls_lease_read(l, e->slot + 1, &cur, NULL, NULL) < 0) {
		vsm__error_reset();
		return false;
	}
	if (lv_owned_by(&cur, e->hb) && !strcmp(cur.uuid, e->uuid))
		return true;
	e->lost = true;
	e->ho = HO_NONE;
	return false;
}

static void emit(vsm_lease_ds *l, lease_held *e, const char *host, const char *detail)
{
	vsm__event_emit(l->mgr->env.events, VSM_EVENT_MIGRATION, l->name, e->container, host,
			detail, 0);
}

/* One handover this context takes part in, looked at by the renewal
 * pass (called with the manager locked). */
static void tick_one(vsm_lease_ds *l, lease_held *e)
{
	uint32_t idx = e->slot + 1;
	uint8_t *raw = NULL, *mine = NULL;
	uint64_t inst_max = 0;
	int64_t stopped;
	vsm_lv cur, want;
	int rc;

	if (ls_mono_ms() >= e->hb->deadline || ls_lease_read(l, idx, &cur, &raw, &inst_max) < 0)
		goto out;
	if (e->ho == HO_TARGET) {
		if (lv_admits(&cur, e->hb))
			goto out;
		if (lv_owned_by(&cur, e->hb)) {
			e->ho = HO_NONE; /* another process of this host completed */
			e->lver = cur.lver;
			goto out;
		}
		e->lost = true;
		e->ho = HO_NONE;
		ls_lease_log(l->mgr, VSM_LOG_WARN, "datastore '%s': container '%s': the handover "
			     "to host '%s' was cancelled by its source", l->name, e->container,
			     e->hb->host);
		emit(l, e, e->hb->host, "abort cancelled by the source");
		goto out;
	}
	/* The source. */
	if (!lv_owned_by(&cur, e->hb) || strcmp(cur.uuid, e->uuid)) {
		bool done = cur.lver && !(cur.flags & LV_FREE) && !strcmp(cur.uuid, e->uuid);

		e->lost = true;
		e->ho = HO_NONE;
		ls_lease_log(l->mgr, VSM_LOG_INFO, "datastore '%s': container '%s' was handed "
			     "over to host '%s'", l->name, e->container, done ? cur.owner : "?");
		emit(l, e, done ? cur.owner : NULL, "complete (the source lets go)");
		goto out;
	}
	if (cur.ho_state == LV_HO_NONE) {
		e->ho = HO_NONE; /* cancelled by another process of this host */
		e->lver = cur.lver;
		goto out;
	}
	if (cur.ho_state != LV_HO_ACCEPTED ||
	    ls_judge_slot(l, cur.ho_slot, cur.ho_gen, cur.ho_host, &stopped) != J_DEAD)
		goto out;
	/* The admitted target stood still for the whole timeout: by rule H1
	 * it writes no more, and the lease falls back to the source alone. */
	want = cur;
	want.lver = cur.lver + 1;
	lv_ho_clear(&want);
	rc = propose(l, idx, e->hb, &cur, raw, inst_max, &want, &mine);
	if (rc != 0)
		goto out; /* changed meanwhile (a complete?): the next pass sees it */
	e->lver = want.lver;
	e->ho = HO_NONE;
	if (mine || l->plain) {
		free(e->mine);
		e->mine = mine;
	}
	ls_lease_log(l->mgr, VSM_LOG_WARN, "datastore '%s': container '%s': target host '%s' "
		     "died during the handover; the lease fell back to host '%s'", l->name,
		     e->container, cur.ho_host, e->hb->host);
	emit(l, e, cur.ho_host, "abort target-lost: the lease fell back to the source");
out:
	free(raw);
	vsm__error_reset();
}

void ls_handover_tick(vsm_lease_ds *l)
{
	lease_held *e;

	for (e = l->held; e; e = e->next)
		if (e->ho != HO_NONE && !e->lost)
			tick_one(l, e);
}
