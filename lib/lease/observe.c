/*
 * Leases: time, sector I/O on the lease area, and what it says: the heartbeat
 * slots observed (obs_refresh), a lease judged (free, live, stopped, dead),
 * a lease value read.
 * doc/leases.md gives the protocol.
 */
#include "lease_priv.h"

int64_t ls_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ls_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ls_sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void ls_fmt_time(char *buf, size_t size, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "an unknown time");
}

void ls_lease_log(const vsm_lease_mgr *m, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!m->env.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	m->env.log(m->env.log_cookie, level, msg);
}

uint64_t ls_rand64(vsm_lease_mgr *m)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 4; i++)
		v = v << 16 ^ (uint64_t)(rand_r(&m->seed) & 0xffff);
	return v;
}

/* ------------------------------------------------------------ sector I/O */

/* Lease areas of slots past the first record area live in the chunks the
 * record area grew by (lib/meta.c knows where). */
uint64_t ls_area_off(const vsm_lease_ds *l, uint32_t idx)
{
	return vsm_meta_lease_area_off(&l->meta->geom, idx);
}

uint8_t *ls_sector_buf(const vsm_lease_ds *l)
{
	return vsm__calloc(1, l->lb);
}

/* Read @len bytes at @off until every sector of it that @decode accepts
 * or finds blank is whole: a read racing a write may see it torn. */
int ls_read_settled(vsm_lease_ds *l, uint8_t *buf, size_t len, uint64_t off,
			int (*bad)(vsm_lease_ds *l, const uint8_t *buf, size_t len))
{
	int rc, tries;

	for (tries = 0; ; tries++) {
		if ((rc = vsm_bdev_read(l->bdev, buf, len, off)) < 0)
			return rc;
		if (!bad || !bad(l, buf, len) || tries >= 4)
			return 0;
		ls_sleep_ms(1);
	}
}

int ls_owner_bad(vsm_lease_ds *l, const uint8_t *buf, size_t len)
{
	vsm_lv v;

	(void)l;
	(void)len;
	return ls_owner_decode(buf, &v) < 0;
}

int ls_area_bad(vsm_lease_ds *l, const uint8_t *buf, size_t len)
{
	vsm_ballot b;
	uint32_t h;

	(void)len;
	for (h = 0; h < l->max_hosts; h++)
		if (ls_ballot_decode(buf + (size_t)(1 + h) * l->lb, &b) < 0)
			return 1;
	return 0;
}

/* --------------------------------------------------------- observations */

/* One read of the generation block and every heartbeat slot. */
int ls_obs_refresh(vsm_lease_ds *l, uint64_t *gen_out)
{
	size_t len = (size_t)(l->hb_off + (uint64_t)l->max_hosts * l->lb - l->gen_off);
	uint8_t *buf = malloc(len);
	int64_t t0, t1;
	uint32_t h;
	int rc = 0, tries;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (tries = 0; tries < 5; tries++) {
		bool torn = false;

		t0 = ls_mono_ms();
		if ((rc = vsm_bdev_read(l->bdev, buf, len, l->gen_off)) < 0)
			goto out;
		t1 = ls_mono_ms();
		for (h = 0; h < l->max_hosts && !torn; h++) {
			vsm_hbrec r;

			torn = ls_hb_decode(buf + (l->hb_off - l->gen_off) + (size_t)h * l->lb, &r) < 0;
		}
		if (!torn)
			break;
		ls_sleep_ms(1);
	}
	for (h = 0; h < l->max_hosts; h++) {
		hb_obs *o = &l->obs[h];
		vsm_hbrec r;
		int st;

		memset(&r, 0, sizeof(r));
		st = ls_hb_decode(buf + (l->hb_off - l->gen_off) + (size_t)h * l->lb, &r);
		if (st != o->state || (st == 1 && (r.gen != o->rec.gen || r.counter != o->rec.counter ||
						  strcmp(r.name, o->rec.name)))) {
			/* A new value: the watch for it starts when the read that
			 * brought it completed (late is the safe side). */
			o->moved = o->first_seen != 0;
			o->first_seen = t1;
		}
		o->state = st;
		o->rec = r;
		o->last_start = t0;
	}
	l->watched_once = true;
	if (gen_out && ls_gen_decode(buf, gen_out) < 0)
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': generation block is damaged",
			     l->name);
out:
	free(buf);
	return rc;
}


/* Judge the host on heartbeat @slot, incarnation @gen, named @name. */
int ls_judge_slot(const vsm_lease_ds *l, uint32_t slot, uint64_t gen, const char *name,
		  int64_t *stopped_ms)
{
	const hb_obs *o;

	*stopped_ms = 0;
	if (slot >= l->max_hosts)
		return J_DEAD;
	o = &l->obs[slot];
	/* The slot now belongs to another incarnation: the holder is gone. */
	if (o->state != 1 || o->rec.gen != gen || strcmp(o->rec.name, name))
		return o->state < 0 ? J_STOPPED : J_DEAD;
	*stopped_ms = o->last_start - o->first_seen;
	if (*stopped_ms < 0)
		*stopped_ms = 0;
	if (*stopped_ms >= (int64_t)l->timeout)
		return J_DEAD;
	/* Seen moving within the last few renewals: live. Longer still is
	 * "stopped", which only the full timeout turns into dead. */
	if (o->moved && ls_mono_ms() - o->first_seen < 3 * (int64_t)l->renew)
		return J_LIVE;
	return J_STOPPED;
}

/* Judge the holder of @v from our observations; @me: our heartbeat. A
 * lease whose target was admitted in a handover is dead only when both
 * its holder and its target are (doc/host-migration.md). */
int ls_judge(const vsm_lease_ds *l, const vsm_lv *v, const char *uuid,
		 const lease_hb *me, int64_t *stopped_ms)
{
	int64_t t_stopped = 0;
	int j, jt;

	*stopped_ms = 0;
	if (v->lver == 0 || (v->flags & LV_FREE) || strcmp(v->uuid, uuid))
		return J_FREE;
	if (me && v->owner_slot == me->slot && v->owner_gen == me->gen)
		return J_OURS;
	j = ls_judge_slot(l, v->owner_slot, v->owner_gen, v->owner, stopped_ms);
	if (v->ho_state != LV_HO_ACCEPTED)
		return j;
	if (me && v->ho_slot == me->slot && v->ho_gen == me->gen)
		jt = J_LIVE; /* the admitted target is us: not ours to take */
	else
		jt = ls_judge_slot(l, v->ho_slot, v->ho_gen, v->ho_host, &t_stopped);
	if (jt == J_LIVE || (jt == J_STOPPED && j == J_DEAD)) {
		*stopped_ms = t_stopped;
		return jt;
	}
	return j;
}

/* ------------------------------------------------- the lease value now */

/* The current value of lease @idx. For the plain protocol also the
 * ballots (@area, caller frees) and the highest instance begun (@inst_max). */
int ls_lease_read(vsm_lease_ds *l, uint32_t idx, vsm_lv *cur, uint8_t **raw,
		      uint64_t *inst_max)
{
	size_t len = l->plain ? (size_t)l->area_bytes : l->lb;
	uint8_t *buf = malloc(len);
	uint32_t h;
	int rc, st;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	memset(cur, 0, sizeof(*cur));
	if (inst_max)
		*inst_max = 0;
	if ((rc = ls_read_settled(l, buf, len, ls_area_off(l, idx), l->plain ? ls_area_bad : ls_owner_bad)) < 0)
		goto fail;
	if (!l->plain) {
		st = ls_owner_decode(buf, cur);
		if (st < 0) {
			rc = vsm_err(VSM_ECORRUPT, "datastore '%s': lease %u is damaged",
				     l->name, idx);
			goto fail;
		}
	} else {
		/* The decided value is the newest any host recorded; each
		 * ballot sector has one writer, so it never goes back. */
		for (h = 0; h < l->max_hosts; h++) {
			vsm_ballot b;

			if (ls_ballot_decode(buf + (size_t)(1 + h) * l->lb, &b) != 1)
				continue;
			if (b.dec.lver > cur->lver)
				*cur = b.dec;
			if (inst_max && b.lver > *inst_max)
				*inst_max = b.lver;
		}
	}
	if (raw)
		*raw = buf;
	else
		free(buf);
	return 0;
fail:
	free(buf);
	return rc;
}

bool ls_lv_same(const vsm_lv *a, const vsm_lv *b)
{
	return a->lver == b->lver && a->flags == b->flags && a->owner_slot == b->owner_slot &&
	       a->owner_gen == b->owner_gen && a->since_ms == b->since_ms &&
	       !strcmp(a->owner, b->owner) && !strcmp(a->uuid, b->uuid) &&
	       a->ho_state == b->ho_state && a->ho_slot == b->ho_slot && a->ho_gen == b->ho_gen &&
	       !strcmp(a->ho_host, b->ho_host);
}
