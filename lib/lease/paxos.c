/*
 * Leases: Disk Paxos rounds over a lease area's ballot sectors (the plain
 * protocol, for storage without compare-and-write), and the metadata
 * lock's register built on them (lease/dslock.c uses it).
 * doc/leases.md gives the protocol.
 */
#include "lease_priv.h"

/* ------------------------------------------------------------ Disk Paxos */


static int ballot_write(vsm_lease_ds *l, uint32_t idx, const vsm_ballot *b)
{
	uint8_t *buf = ls_sector_buf(l);
	int rc;

	if (!buf)
		return -VSM_ENOMEM;
	ls_ballot_encode(buf, b);
	rc = vsm_bdev_write(l->bdev, buf, l->lb, ls_area_off(l, idx) + (uint64_t)(1 + b->slot) * l->lb);
	free(buf);
	return rc;
}

/* Read every ballot; PX_AGAIN if instance @inst is decided or passed, or
 * someone holds a higher ballot (*max_mbal), else the accepted value with
 * the highest ballot in *best (best_bal 0: none). */
static int ballots_scan(vsm_lease_ds *l, uint32_t idx, const vsm_ballot *mine,
			uint64_t *max_mbal, vsm_lv *best, uint64_t *best_bal)
{
	uint8_t *buf = malloc((size_t)l->area_bytes);
	uint32_t h;
	int rc;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	if ((rc = ls_read_settled(l, buf, (size_t)l->area_bytes, ls_area_off(l, idx), ls_area_bad)) < 0)
		goto out;
	*best_bal = 0;
	for (h = 0; h < l->max_hosts; h++) {
		vsm_ballot b;

		if (ls_ballot_decode(buf + (size_t)(1 + h) * l->lb, &b) != 1)
			continue;
		if (h == mine->slot) {
			/* Our own sector must still be ours. */
			if (b.gen != mine->gen || b.mbal != mine->mbal || b.lver != mine->lver) {
				rc = PX_AGAIN;
				goto out;
			}
		} else if (b.dec.lver >= mine->lver || b.lver > mine->lver) {
			rc = PX_AGAIN;
			goto out;
		} else if (b.lver == mine->lver && b.mbal > mine->mbal) {
			if (b.mbal > *max_mbal)
				*max_mbal = b.mbal;
			rc = PX_AGAIN;
			goto out;
		}
		if (b.lver == mine->lver && b.bal > *best_bal) {
			*best_bal = b.bal;
			*best = b.inp;
		}
	}
	rc = PX_OK;
out:
	free(buf);
	return rc;
}

/*
 * One Disk Paxos run of instance @inst on lease @idx proposing @prop
 * (whose lver is @inst). @dec: the value decided at @inst - 1, which our
 * sector carries along. On PX_OK *chosen is the value decided at @inst.
 */
int ls_paxos(vsm_lease_ds *l, uint32_t idx, const lease_hb *me, uint64_t inst,
		 const vsm_lv *prop, const vsm_lv *dec, vsm_lv *chosen)
{
	uint64_t max_mbal = 0, best_bal, acc_bal = 0;
	uint8_t *own = ls_sector_buf(l);
	vsm_ballot b, prev;
	vsm_lv best, acc;
	int tries, rc;

	/* A ballot keeps what it accepted earlier in this instance (Disk
	 * Paxos: a block is only ever replaced by its owner, never emptied). */
	memset(&acc, 0, sizeof(acc));
	if (!own)
		return -VSM_ENOMEM;
	rc = vsm_bdev_read(l->bdev, own, l->lb, ls_area_off(l, idx) + (uint64_t)(1 + me->slot) * l->lb);
	if (rc == 0 && ls_ballot_decode(own, &prev) == 1 && prev.lver == inst) {
		max_mbal = prev.mbal;
		acc_bal = prev.bal;
		acc = prev.inp;
	}
	free(own);
	if (rc < 0)
		return rc;
	for (tries = 0; tries < 40; tries++) {
		memset(&b, 0, sizeof(b));
		b.slot = me->slot;
		b.gen = me->gen;
		b.lver = inst;
		b.mbal = (max_mbal / l->max_hosts + 1 + (uint64_t)tries) * l->max_hosts + me->slot + 1;
		b.bal = acc_bal;
		b.inp = acc;
		b.dec = *dec;
		/* Phase 1: announce our ballot, learn what was accepted. */
		if ((rc = ballot_write(l, idx, &b)) < 0 ||
		    (rc = ballots_scan(l, idx, &b, &max_mbal, &best, &best_bal)) < 0)
			return rc;
		if (rc == PX_AGAIN) {
			if (max_mbal <= b.mbal)
				return PX_AGAIN;    /* decided or overtaken: re-read */
			ls_sleep_ms(1 + (int64_t)(ls_rand64(l->mgr) % (l->renew / 4 + 2)));
			continue;
		}
		/* Phase 2: accept the value Paxos allows us to propose. */
		b.bal = b.mbal;
		b.inp = best_bal ? best : *prop;
		acc_bal = b.bal;
		acc = b.inp;
		if ((rc = ballot_write(l, idx, &b)) < 0 ||
		    (rc = ballots_scan(l, idx, &b, &max_mbal, &best, &best_bal)) < 0)
			return rc;
		if (rc == PX_AGAIN) {
			if (max_mbal <= b.mbal)
				return PX_AGAIN;
			ls_sleep_ms(1 + (int64_t)(ls_rand64(l->mgr) % (l->renew / 4 + 2)));
			continue;
		}
		/* Chosen. Record the decision in our sector: it is the commit. */
		*chosen = b.inp;
		b.dec = b.inp;
		if ((rc = ballot_write(l, idx, &b)) < 0)
			return rc;
		return PX_OK;
	}
	return PX_AGAIN;
}

/* ------------------------------------------- the metadata lock, plainly */

/*
 * On a datastore without compare-and-write the metadata lock
 * (lib/dslock.c) is a register decided by Disk Paxos over lease area 0's
 * ballot sectors, which no container lease uses. Each state directory
 * takes part through a heartbeat slot of its own (named after its node
 * id), so each ballot sector keeps a single writer: processes of one
 * state directory take turns under their local lock first.
 */
bool vsm__lease_plain(const vsm_lease_ds *l)
{
	return l->plain;
}

uint32_t vsm__lease_timeout_ms(const vsm_lease_ds *l)
{
	return l->timeout;
}

int vsm__lease_lock_read(vsm_lease_ds *l, vsm__lease_lockval *out)
{
	vsm_lv cur;
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&l->mgr->lock);
	rc = ls_lease_read(l, 0, &cur, NULL, NULL);
	pthread_mutex_unlock(&l->mgr->lock);
	if (rc < 0)
		return rc;
	out->lver = cur.lver;
	out->held = cur.lver && !(cur.flags & LV_FREE);
	out->slot = cur.owner_slot;
	out->gen = cur.owner_gen;
	snprintf(out->node, sizeof(out->node), "%s", cur.owner);
	return 0;
}

int vsm__lease_lock_propose(vsm_lease_ds *l, const char *node, const vsm__lease_lockval *cur,
			    bool take, bool *same_node)
{
	char name[LS_NAME_MAX + 1];
	vsm_lv prop, dec, chosen;
	lease_hb *me = NULL;
	struct timespec ts;
	int rc;

	snprintf(name, sizeof(name), "node-%s", node);
	pthread_mutex_lock(&l->mgr->lock);
	if ((rc = ls_hb_join(l, name, &me)) < 0)
		goto out;
	if (same_node)
		*same_node = cur->held && cur->slot == me->slot && cur->gen == me->gen;
	memset(&dec, 0, sizeof(dec));
	if ((rc = ls_lease_read(l, 0, &dec, NULL, NULL)) < 0)
		goto out;
	if (dec.lver != cur->lver) {
		rc = -VSM_EMISMATCH;
		goto out;
	}
	memset(&prop, 0, sizeof(prop));
	prop.lver = cur->lver + 1;
	prop.flags = take ? 0 : LV_FREE;
	prop.owner_slot = me->slot;
	prop.owner_gen = me->gen;
	clock_gettime(CLOCK_REALTIME, &ts);
	prop.since_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	snprintf(prop.owner, sizeof(prop.owner), "%s", name);
	rc = ls_paxos(l, 0, me, prop.lver, &prop, &dec, &chosen);
	if (rc == PX_AGAIN || (rc == PX_OK && !ls_lv_same(&chosen, &prop)))
		rc = -VSM_EMISMATCH;
out:
	pthread_mutex_unlock(&l->mgr->lock);
	return rc;
}
