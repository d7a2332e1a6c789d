/*
 * Leases over the datastore's lease area: heartbeat slots, the
 * compare-and-write and Disk Paxos acquisition protocols, the renewal
 * thread, change notification, fencing of metadata writes and the public
 * status/renew/keep calls. doc/leases.md states the protocol and why it
 * is safe; the comments here point at the rules it relies on.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "lease/lease.h"
#include "lease/sector.h"

/* ---------------------------------------------------------------- state */

/* What this process has seen of one heartbeat slot. */
typedef struct {
	int state;          /* 1 valid, 0 blank, -1 unreadable */
	vsm_hbrec rec;
	int64_t first_seen; /* completion of the first read that returned rec */
	int64_t last_start; /* start of the latest read that still returned rec */
	bool moved;         /* a change of this slot has been seen */
} hb_obs;

/* A heartbeat this context writes (one per host and datastore). */
typedef struct lease_hb {
	char host[LS_NAME_MAX + 1];
	uint32_t slot;
	uint64_t gen, counter, nonce;
	int64_t deadline; /* monotonic ms until which our leases are ours; 0: none */
	bool stolen;      /* another host claimed the slot: never write it again */
	struct lease_hb *next;
} lease_hb;

/* A container lease this context acquired. */
typedef struct lease_held {
	uint32_t slot; /* container record slot (lease index slot + 1) */
	char uuid[VSM_UUID_STRLEN + 1];
	char *container;
	lease_hb *hb;
	uint64_t lver;
	bool lost;
	uint8_t *mine;   /* owner sector as we wrote it (compare-and-write) */
	struct lease_held *next;
} lease_held;

/* Owner sectors as this context last wrote them on release: the next
 * acquisition of the same lease tries them as its expectation, which
 * makes an uncontended acquire one atomic I/O. */
typedef struct lease_cache {
	uint32_t idx;
	uint8_t *bytes;
	struct lease_cache *next;
} lease_cache;

struct vsm_lease_ds {
	vsm_lease_mgr *mgr;
	vsm_dstore *ds;
	vsm_bdev *bdev;
	bool plain;
	uint32_t timeout, renew, margin;
	uint32_t max_hosts, lb;
	uint64_t gen_off, hb_off, areas_off, area_bytes;
	hb_obs *obs;
	bool watched_once;
	lease_hb *hbs;
	lease_held *held;
	lease_cache *cache;
	uint64_t seen_gen;
	int64_t next_due;
	struct vsm_lease_ds *next;
};

struct vsm_lease_mgr {
	vsm_ctx *ctx;
	pthread_mutex_t lock; /* everything above; held during lease I/O */
	pthread_cond_t cond;
	pthread_t thread;
	bool running, stopping, manual;
	vsm_lease_ds *list;
	unsigned int seed;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void fmt_time(char *buf, size_t size, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "an unknown time");
}

static uint64_t rand64(vsm_lease_mgr *m)
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
static uint64_t area_off(const vsm_lease_ds *l, uint32_t idx)
{
	return vsm_meta_lease_area_off(&l->ds->meta->geom, idx);
}

static uint8_t *sector_buf(const vsm_lease_ds *l)
{
	return vsm__calloc(1, l->lb);
}

/* Read @len bytes at @off until every sector of it that @decode accepts
 * or finds blank is whole: a read racing a write may see it torn. */
static int read_settled(vsm_lease_ds *l, uint8_t *buf, size_t len, uint64_t off,
			int (*bad)(vsm_lease_ds *l, const uint8_t *buf, size_t len))
{
	int rc, tries;

	for (tries = 0; ; tries++) {
		if ((rc = vsm_bdev_read(l->bdev, buf, len, off)) < 0)
			return rc;
		if (!bad || !bad(l, buf, len) || tries >= 4)
			return 0;
		sleep_ms(1);
	}
}

static int owner_bad(vsm_lease_ds *l, const uint8_t *buf, size_t len)
{
	vsm_lv v;

	(void)l;
	(void)len;
	return ls_owner_decode(buf, &v) < 0;
}

static int area_bad(vsm_lease_ds *l, const uint8_t *buf, size_t len)
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
static int obs_refresh(vsm_lease_ds *l, uint64_t *gen_out)
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

		t0 = mono_ms();
		if ((rc = vsm_bdev_read(l->bdev, buf, len, l->gen_off)) < 0)
			goto out;
		t1 = mono_ms();
		for (h = 0; h < l->max_hosts && !torn; h++) {
			vsm_hbrec r;

			torn = ls_hb_decode(buf + (l->hb_off - l->gen_off) + (size_t)h * l->lb, &r) < 0;
		}
		if (!torn)
			break;
		sleep_ms(1);
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
			     l->ds->name);
out:
	free(buf);
	return rc;
}

enum { J_FREE, J_OURS, J_LIVE, J_STOPPED, J_DEAD };

/* Judge the holder of @v from our observations; @me: our heartbeat. */
static int judge(const vsm_lease_ds *l, const vsm_lv *v, const char *uuid,
		 const lease_hb *me, int64_t *stopped_ms)
{
	const hb_obs *o;

	*stopped_ms = 0;
	if (v->lver == 0 || (v->flags & LV_FREE) || strcmp(v->uuid, uuid))
		return J_FREE;
	if (me && v->owner_slot == me->slot && v->owner_gen == me->gen)
		return J_OURS;
	if (v->owner_slot >= l->max_hosts)
		return J_DEAD;
	o = &l->obs[v->owner_slot];
	/* The slot now belongs to another incarnation: the holder is gone. */
	if (o->state != 1 || o->rec.gen != v->owner_gen || strcmp(o->rec.name, v->owner))
		return o->state < 0 ? J_STOPPED : J_DEAD;
	*stopped_ms = o->last_start - o->first_seen;
	if (*stopped_ms < 0)
		*stopped_ms = 0;
	if (*stopped_ms >= (int64_t)l->timeout)
		return J_DEAD;
	/* Seen moving within the last few renewals: live. Longer still is
	 * "stopped", which only the full timeout turns into dead. */
	if (o->moved && mono_ms() - o->first_seen < 3 * (int64_t)l->renew)
		return J_LIVE;
	return J_STOPPED;
}

/* ----------------------------------------------------------- heartbeats */

static void emit_lost(vsm_lease_ds *l, lease_held *e, const char *why)
{
	e->lost = true;
	vsm__log(l->mgr->ctx, VSM_LOG_WARN, "datastore '%s': container '%s' may have lost its "
		 "lease for host '%s': %s", l->ds->name, e->container, e->hb->host, why);
	vsm__event_emit(l->mgr->ctx->events, VSM_EVENT_LEASE_LOST, l->ds->name, e->container,
			e->hb->host, why, 0);
}

static void lose_all(vsm_lease_ds *l, lease_hb *hb, const char *why)
{
	lease_held *e;

	for (e = l->held; e; e = e->next)
		if (e->hb == hb && !e->lost)
			emit_lost(l, e, why);
}

/* Write our heartbeat once. Validity extends only when the write
 * completes before the validity it renews ran out (doc: rule H2). */
static int hb_write(vsm_lease_ds *l, lease_hb *hb)
{
	uint8_t *buf = sector_buf(l);
	const hb_obs *o = &l->obs[hb->slot];
	vsm_hbrec r;
	int64_t ts, te;
	int rc;

	if (!buf)
		return -VSM_ENOMEM;
	memset(&r, 0, sizeof(r));
	r.slot = hb->slot;
	r.gen = hb->gen;
	/* Another process of the same host may write the slot too. */
	r.counter = (o->state == 1 && o->rec.counter > hb->counter ? o->rec.counter : hb->counter) + 1;
	r.nonce = hb->nonce;
	r.wall_ms = wall_ms();
	snprintf(r.name, sizeof(r.name), "%s", hb->host);
	ls_hb_encode(buf, &r);
	ts = mono_ms();
	rc = vsm_bdev_write(l->bdev, buf, l->lb, l->hb_off + (uint64_t)hb->slot * l->lb);
	te = mono_ms();
	free(buf);
	if (rc < 0)
		return rc;
	hb->counter = r.counter;
	if (hb->deadline && te >= hb->deadline)
		lose_all(l, hb, "heartbeat renewal completed too late");
	hb->deadline = ts + (int64_t)l->timeout - (int64_t)l->margin;
	return 0;
}

/* The hosts this state directory acts for (STATE/lease-hosts): the
 * processes sharing a state directory are one host. */
static bool state_host_known(vsm_ctx *ctx, const char *host)
{
	char path[4096], line[LS_NAME_MAX + 8];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/lease-hosts", ctx->state_dir);
	if (!(f = fopen(path, "r")))
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		found = !strcmp(line, host);
	}
	fclose(f);
	return found;
}

static void state_host_add(vsm_ctx *ctx, const char *host)
{
	char path[4096];
	FILE *f;

	if (state_host_known(ctx, host))
		return;
	snprintf(path, sizeof(path), "%s/lease-hosts", ctx->state_dir);
	if ((f = fopen(path, "a"))) {
		fprintf(f, "%s\n", host);
		fclose(f);
	}
}

static lease_hb *hb_find(vsm_lease_ds *l, const char *host)
{
	lease_hb *hb;

	for (hb = l->hbs; hb; hb = hb->next)
		if (!strcmp(hb->host, host))
			return hb;
	return NULL;
}

static void start_thread(vsm_lease_mgr *m);

/* Claim a blank slot for @host. With compare-and-write the claim is one
 * atomic I/O; without, it is a delta lease: write, wait, read back. */
static int hb_claim(vsm_lease_ds *l, const char *host, uint32_t *slot, uint64_t *gen,
		    uint64_t *nonce)
{
	uint32_t start = (uint32_t)(rand64(l->mgr) % l->max_hosts), i;
	uint8_t *old = sector_buf(l), *buf = sector_buf(l);
	uint32_t dead = 0;
	int rc = 0, pass;

	if (!old || !buf) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	/* Blank slots first; then slots of hosts we have watched stand still
	 * for the whole timeout (a new generation makes their leases dead). */
	for (pass = 0, i = 0; pass < 2; i = (i + 1) % l->max_hosts, pass += i == 0) {
		uint32_t h = (start + i) % l->max_hosts;
		uint64_t off = l->hb_off + (uint64_t)h * l->lb;
		const hb_obs *o = &l->obs[h];
		vsm_hbrec r, now;

		if (pass == 0 && o->state != 0)
			continue;
		if (pass == 1) {
			if (o->state != 1 || o->last_start - o->first_seen < (int64_t)l->timeout)
				continue;
			dead++;
			/* Still exactly what we watched? */
			if ((rc = vsm_bdev_read(l->bdev, old, l->lb, off)) < 0)
				goto out;
			if (ls_hb_decode(old, &now) != 1 || now.gen != o->rec.gen ||
			    now.counter != o->rec.counter)
				continue;
		} else {
			memset(old, 0, l->lb);
		}
		memset(&r, 0, sizeof(r));
		r.slot = h;
		r.gen = pass == 1 ? o->rec.gen + 1 : 1;
		r.counter = 1;
		r.nonce = rand64(l->mgr) | 1;
		r.wall_ms = wall_ms();
		snprintf(r.name, sizeof(r.name), "%s", host);
		ls_hb_encode(buf, &r);
		if (!l->plain) {
			rc = vsm_bdev_compare_and_write(l->bdev, old, buf, l->lb, off);
			if (rc == -VSM_EMISMATCH) {
				vsm__error_reset();
				continue;
			}
			if (rc < 0)
				goto out;
		} else {
			vsm_hbrec back;

			if ((rc = vsm_bdev_write(l->bdev, buf, l->lb, off)) < 0)
				goto out;
			/* Anyone who read the slot blank before our write has
			 * written by now, or sees ours first (doc: rule C). The
			 * renewals of our other heartbeats go on meanwhile; the
			 * caller's context lock keeps @l open. */
			pthread_mutex_unlock(&l->mgr->lock);
			sleep_ms(2 * (int64_t)l->renew);
			pthread_mutex_lock(&l->mgr->lock);
			if ((rc = vsm_bdev_read(l->bdev, old, l->lb, off)) < 0)
				goto out;
			if (ls_hb_decode(old, &back) != 1 || back.nonce != r.nonce)
				continue;
		}
		*slot = h;
		*gen = r.gen;
		*nonce = r.nonce;
		goto out;
	}
	rc = vsm_err(VSM_ENOSPC, "datastore '%s': all %u heartbeat slots are taken by live "
		     "hosts (%u watched dead for the timeout could not be claimed)", l->ds->name,
		     l->max_hosts, dead);
out:
	free(old);
	free(buf);
	return rc;
}

/* Our heartbeat for @host on @l, joining or claiming its slot. */
static int hb_join(vsm_lease_ds *l, const char *host, lease_hb **out)
{
	lease_hb *hb = hb_find(l, host);
	uint32_t h;
	int rc;

	if (!hb) {
		if (!(hb = vsm__calloc(1, sizeof(*hb))))
			return -VSM_ENOMEM;
		snprintf(hb->host, sizeof(hb->host), "%s", host);
		if ((rc = obs_refresh(l, NULL)) < 0)
			goto fail;
		for (h = 0; h < l->max_hosts; h++)
			if (l->obs[h].state == 1 && !strcmp(l->obs[h].rec.name, host))
				break;
		if (h < l->max_hosts) {
			/* The host's slot already exists: processes of one host
			 * share it, and its generation. */
			hb->slot = h;
			hb->gen = l->obs[h].rec.gen;
			hb->nonce = l->obs[h].rec.nonce;
			hb->counter = l->obs[h].rec.counter;
		} else if ((rc = hb_claim(l, host, &hb->slot, &hb->gen, &hb->nonce)) < 0) {
			goto fail;
		} else {
			hb->counter = 1;
		}
		hb->next = l->hbs;
		l->hbs = hb;
		state_host_add(l->mgr->ctx, host);
		start_thread(l->mgr);
	}
	if (hb->stolen)
		return vsm_err(VSM_ESTATE, "datastore '%s': host '%s' lost its heartbeat slot to "
			       "another host; open a new context", l->ds->name, host);
	/* Lease decisions need plenty of validity ahead. */
	if (hb->deadline - mono_ms() < (int64_t)l->timeout / 2 && (rc = hb_write(l, hb)) < 0)
		return rc;
	*out = hb;
	return 0;
fail:
	free(hb);
	return rc;
}

/* ------------------------------------------------------ the renewal pass */

static void tick(vsm_lease_ds *l)
{
	uint64_t gen = 0;
	lease_hb *hb;
	int64_t now = mono_ms();
	int rc;

	l->next_due = now + l->renew;
	rc = obs_refresh(l, &gen);
	if (rc == 0 && gen > l->seen_gen) {
		bool first = l->seen_gen == 0;

		l->seen_gen = gen;
		if (!first)
			vsm__event_emit(l->mgr->ctx->events, VSM_EVENT_DATASTORE_CHANGED,
					l->ds->name, NULL, NULL, "generation moved", gen);
	}
	for (hb = l->hbs; hb; hb = hb->next) {
		const hb_obs *o = &l->obs[hb->slot];

		if (hb->stolen)
			continue;
		if (rc == 0 && (o->state == 0 || (o->state == 1 && (strcmp(o->rec.name, hb->host) ||
								    o->rec.gen != hb->gen)))) {
			/* Lost a plain-protocol claim race: never write another's slot. */
			lose_all(l, hb, "heartbeat slot was taken by another host");
			hb->deadline = 0;
			hb->stolen = true;
			continue;
		}
		if (hb->deadline && mono_ms() >= hb->deadline) {
			lose_all(l, hb, "heartbeat was not renewed within the lease timeout");
			hb->deadline = 0;
		}
		if (hb_write(l, hb) < 0)
			vsm__error_reset();
	}
	vsm__error_reset();
}

static void *renewer(void *arg)
{
	vsm_lease_mgr *m = arg;

	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		int64_t now = mono_ms(), next = now + 1000;
		struct timespec ts;
		vsm_lease_ds *l;

		for (l = m->list; l; l = l->next) {
			if (now >= l->next_due)
				tick(l);
			if (l->next_due < next)
				next = l->next_due;
		}
		ts.tv_sec = (time_t)(next / 1000);
		ts.tv_nsec = (long)(next % 1000) * 1000000L;
		if (!m->stopping)
			pthread_cond_timedwait(&m->cond, &m->lock, &ts);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

static void start_thread(vsm_lease_mgr *m)
{
	sigset_t all, old;

	if (m->running || m->manual || m->stopping)
		return;
	/* A library thread must never be the one the process's signals
	 * (SIGTERM to an agent, ...) are delivered to. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&m->thread, NULL, renewer, m) == 0)
		m->running = true;
	else
		vsm__log(m->ctx, VSM_LOG_ERROR, "cannot start the lease renewal thread");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int vsm__lease_mgr_new(vsm_lease_mgr **out, vsm_ctx *ctx, bool manual)
{
	vsm_lease_mgr *m = vsm__calloc(1, sizeof(*m));
	pthread_condattr_t ca;

	if (!m)
		return -VSM_ENOMEM;
	m->ctx = ctx;
	m->manual = manual;
	m->seed = (unsigned int)(wall_ms() ^ (int64_t)getpid() << 16 ^ (int64_t)(uintptr_t)m);
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = m;
	return 0;
}

void vsm__lease_mgr_stop(vsm_lease_mgr *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (m->running)
		pthread_join(m->thread, NULL);
	m->running = false;
}

static void lds_free(vsm_lease_ds *l)
{
	while (l->hbs) {
		lease_hb *hb = l->hbs;

		l->hbs = hb->next;
		free(hb);
	}
	while (l->held) {
		lease_held *e = l->held;

		l->held = e->next;
		free(e->container);
		free(e->mine);
		free(e);
	}
	while (l->cache) {
		lease_cache *k = l->cache;

		l->cache = k->next;
		free(k->bytes);
		free(k);
	}
	free(l->obs);
	free(l);
}

void vsm__lease_mgr_free(vsm_lease_mgr *m)
{
	if (!m)
		return;
	vsm__lease_mgr_stop(m);
	while (m->list) {
		vsm_lease_ds *l = m->list;

		m->list = l->next;
		l->ds->lease = NULL;
		lds_free(l);
	}
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

/* ----------------------------------------------------- datastore open */

static uint32_t env_ms(const char *name, uint32_t dflt)
{
	const char *v = getenv(name);
	char *end;
	unsigned long n;

	if (!v || !*v)
		return dflt;
	n = strtoul(v, &end, 10);
	return *end || n == 0 || n > 3600000 ? dflt : (uint32_t)n;
}

static int env_plain(void)
{
	const char *v = getenv("VSM_LEASE_PROTOCOL");

	if (!v || !*v)
		return -1;
	return !strcmp(v, "plain") ? 1 : 0;
}

/* Read the lease area header; write it when the area is blank. */
static int header_load(vsm_lease_ds *l, const vsm_meta_geom *g)
{
	uint8_t *buf = sector_buf(l), *zero = sector_buf(l);
	bool caw = vsm_bdev_has_compare_and_write(l->bdev);
	int want_plain = env_plain(), rc, st;
	vsm_lhdr h;

	if (!buf || !zero) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if ((rc = read_settled(l, buf, l->lb, area_off(l, 0), NULL)) < 0)
		goto out;
	st = ls_hdr_decode(buf, &h);
	if (st == 0) {
		h.mode = caw && want_plain != 1 ? LS_MODE_CAW : LS_MODE_PLAIN;
		h.timeout_ms = env_ms("VSM_LEASE_TIMEOUT_MS", g->lease_timeout_ms);
		h.renew_ms = env_ms("VSM_LEASE_RENEW_MS", h.timeout_ms == g->lease_timeout_ms ?
				    g->renew_interval_ms : h.timeout_ms / 8);
		if (h.renew_ms == 0 || h.timeout_ms < 2 * h.renew_ms)
			h.renew_ms = h.timeout_ms / 4 ? h.timeout_ms / 4 : 1;
		ls_hdr_encode(buf, &h);
		if (caw) {
			rc = vsm_bdev_compare_and_write(l->bdev, zero, buf, l->lb, area_off(l, 0));
			if (rc == -VSM_EMISMATCH)
				vsm__error_reset();
			else if (rc < 0)
				goto out;
		} else if ((rc = vsm_bdev_write(l->bdev, buf, l->lb, area_off(l, 0))) < 0) {
			goto out;
		}
		if ((rc = vsm_bdev_flush(l->bdev)) < 0 ||
		    (rc = read_settled(l, buf, l->lb, area_off(l, 0), NULL)) < 0)
			goto out;
		st = ls_hdr_decode(buf, &h);
	}
	if (st != 1) {
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': lease area header is damaged",
			     l->ds->name);
		goto out;
	}
	if (h.mode == LS_MODE_CAW && !caw) {
		rc = vsm_err(VSM_ENOTSUP, "datastore '%s': its leases use compare-and-write, "
			     "which its metadata device (backend '%s') does not offer",
			     l->ds->name, l->ds->be->ops.scheme);
		goto out;
	}
	if (h.mode == LS_MODE_CAW && want_plain == 1) {
		rc = vsm_err(VSM_ESTATE, "datastore '%s': its leases use compare-and-write; "
			     "VSM_LEASE_PROTOCOL=plain cannot be honoured", l->ds->name);
		goto out;
	}
	l->plain = h.mode == LS_MODE_PLAIN;
	l->timeout = h.timeout_ms;
	l->renew = h.renew_ms;
	l->margin = l->timeout / 16;
out:
	free(buf);
	free(zero);
	return rc;
}

int vsm__lease_ds_open(vsm_ctx *ctx, vsm_dstore *ds)
{
	const vsm_meta_geom *g = &ds->meta->geom;
	vsm_lease_mgr *m = ctx->leases;
	vsm_lease_ds *l;
	int rc;

	if (!m || ds->lease)
		return 0;
	if (!(l = vsm__calloc(1, sizeof(*l))))
		return -VSM_ENOMEM;
	l->mgr = m;
	l->ds = ds;
	l->bdev = ds->meta->bdev;
	l->max_hosts = g->max_hosts;
	l->lb = g->lease_block;
	l->gen_off = g->gen_off;
	l->hb_off = g->lease_off;
	l->areas_off = g->lease_off + (uint64_t)g->lease_block * g->max_hosts;
	l->area_bytes = VSM_META_LEASE_BYTES(g);
	if (l->lb < LS_SECTOR) {
		free(l);
		return vsm_err(VSM_ECORRUPT, "datastore '%s': lease block too small", ds->name);
	}
	if (!(l->obs = vsm__calloc(l->max_hosts, sizeof(*l->obs)))) {
		free(l);
		return -VSM_ENOMEM;
	}
	pthread_mutex_lock(&m->lock);
	rc = header_load(l, g);
	if (rc == 0)
		rc = obs_refresh(l, &l->seen_gen);
	if (rc < 0) {
		pthread_mutex_unlock(&m->lock);
		lds_free(l);
		return rc;
	}
	l->next_due = mono_ms() + l->renew;
	l->next = m->list;
	m->list = l;
	ds->lease = l;
	start_thread(m);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void vsm__lease_ds_close(vsm_dstore *ds)
{
	vsm_lease_ds *l = ds->lease, **pp;
	vsm_lease_mgr *m;

	if (!l)
		return;
	m = l->mgr;
	pthread_mutex_lock(&m->lock);
	for (pp = &m->list; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
	ds->lease = NULL;
	lds_free(l);
}

void vsm__lease_note_gen(vsm_dstore *ds, uint64_t gen)
{
	vsm_lease_ds *l = ds->lease;

	if (!l)
		return;
	pthread_mutex_lock(&l->mgr->lock);
	if (gen > l->seen_gen)
		l->seen_gen = gen;
	pthread_mutex_unlock(&l->mgr->lock);
}

bool vsm__lease_gen_unseen(vsm_dstore *ds, uint64_t gen)
{
	vsm_lease_ds *l = ds->lease;
	bool unseen;

	if (!l)
		return true;
	pthread_mutex_lock(&l->mgr->lock);
	unseen = gen > l->seen_gen;
	if (unseen)
		l->seen_gen = gen;
	pthread_mutex_unlock(&l->mgr->lock);
	return unseen;
}

/* ------------------------------------------------- the lease value now */

/* The current value of lease @idx. For the plain protocol also the
 * ballots (@area, caller frees) and the highest instance begun (@inst_max). */
static int lease_read(vsm_lease_ds *l, uint32_t idx, vsm_lv *cur, uint8_t **raw,
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
	if ((rc = read_settled(l, buf, len, area_off(l, idx), l->plain ? area_bad : owner_bad)) < 0)
		goto fail;
	if (!l->plain) {
		st = ls_owner_decode(buf, cur);
		if (st < 0) {
			rc = vsm_err(VSM_ECORRUPT, "datastore '%s': lease %u is damaged",
				     l->ds->name, idx);
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

static bool lv_same(const vsm_lv *a, const vsm_lv *b)
{
	return a->lver == b->lver && a->flags == b->flags && a->owner_slot == b->owner_slot &&
	       a->owner_gen == b->owner_gen && a->since_ms == b->since_ms &&
	       !strcmp(a->owner, b->owner) && !strcmp(a->uuid, b->uuid);
}

/* ------------------------------------------------------------ Disk Paxos */

enum { PX_OK = 0, PX_AGAIN = 1 };

static int ballot_write(vsm_lease_ds *l, uint32_t idx, const vsm_ballot *b)
{
	uint8_t *buf = sector_buf(l);
	int rc;

	if (!buf)
		return -VSM_ENOMEM;
	ls_ballot_encode(buf, b);
	rc = vsm_bdev_write(l->bdev, buf, l->lb, area_off(l, idx) + (uint64_t)(1 + b->slot) * l->lb);
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
	if ((rc = read_settled(l, buf, (size_t)l->area_bytes, area_off(l, idx), area_bad)) < 0)
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
static int paxos(vsm_lease_ds *l, uint32_t idx, const lease_hb *me, uint64_t inst,
		 const vsm_lv *prop, const vsm_lv *dec, vsm_lv *chosen)
{
	uint64_t max_mbal = 0, best_bal, acc_bal = 0;
	uint8_t *own = sector_buf(l);
	vsm_ballot b, prev;
	vsm_lv best, acc;
	int tries, rc;

	/* A ballot keeps what it accepted earlier in this instance (Disk
	 * Paxos: a block is only ever replaced by its owner, never emptied). */
	memset(&acc, 0, sizeof(acc));
	if (!own)
		return -VSM_ENOMEM;
	rc = vsm_bdev_read(l->bdev, own, l->lb, area_off(l, idx) + (uint64_t)(1 + me->slot) * l->lb);
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
			sleep_ms(1 + (int64_t)(rand64(l->mgr) % (l->renew / 4 + 2)));
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
			sleep_ms(1 + (int64_t)(rand64(l->mgr) % (l->renew / 4 + 2)));
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

/* -------------------------------------------------------------- acquire */

static lease_held *held_find(vsm_lease_ds *l, uint32_t slot, const char *uuid)
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

static int held_set(vsm_lease_ds *l, const vsm_record *r, lease_hb *hb, uint64_t lver)
{
	lease_held *e = held_find(l, r->slot, r->uuid);

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

	fmt_time(when, sizeof(when), cur->since_ms);
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

	if (r->slot >= l->ds->meta->geom.slot_count && vsm_meta_reload(l->ds->meta) < 0)
		return -vsm__error_code();
	if (r->slot >= l->ds->meta->geom.slot_count)
		return vsm_err(VSM_EINVAL, "datastore '%s': no lease for slot %u", l->ds->name,
			       r->slot);
	for (tries = 0; tries < 200; tries++) {
		uint8_t *raw = NULL, *mine = NULL;
		uint64_t inst_max = 0;
		vsm_lv cur, want, chosen;
		int64_t stopped = 0;
		lease_held *e;
		int j;

		if ((rc = hb_join(l, host, &me)) < 0)
			return rc;
		/* What we last wrote ourselves, if anything: compare-and-write
		 * checks it is still there. */
		if (!l->plain && (raw = cache_take(l, idx)) && ls_owner_decode(raw, &cur) != 1) {
			free(raw);
			raw = NULL;
		}
		/* Read the lease first, then the heartbeats: a holder that
		 * renewed before our read of the lease is seen moving. */
		if (!raw && (rc = lease_read(l, idx, &cur, &raw, &inst_max)) < 0)
			return rc;
		j = judge(l, &cur, r->uuid, me, &stopped);
		if (j != J_FREE && j != J_OURS) {
			if ((rc = obs_refresh(l, NULL)) < 0) {
				free(raw);
				return rc;
			}
			j = judge(l, &cur, r->uuid, me, &stopped);
		}
		if ((flags & VSM__LEASE_SAME_HOST) && j != J_FREE && j != J_OURS) {
			free(raw);
			return held_by_error(VSM_ESTALE, r, &cur, j, stopped, l->timeout);
		}
		if (j == J_STOPPED || (j == J_LIVE && (flags & VSM__LEASE_WAIT))) {
			int64_t now = mono_ms();

			/* A holder we have not watched long enough: watch a little
			 * (or, asked to take over, until the timeout has passed). */
			if (!watch_until)
				watch_until = now + ((flags & VSM__LEASE_WAIT) ? 3 * (int64_t)l->timeout :
						     3 * (int64_t)l->renew / 2 + 1);
			if (now < watch_until) {
				free(raw);
				pthread_mutex_unlock(&l->mgr->lock);
				sleep_ms(l->renew / 2 + 1);
				pthread_mutex_lock(&l->mgr->lock);
				tries--;
				continue;
			}
		}
		if (j == J_LIVE || j == J_STOPPED) {
			free(raw);
			return held_by_error(VSM_ELEASE, r, &cur, j, stopped, l->timeout);
		}
		memset(&want, 0, sizeof(want));
		want.lver = cur.lver + 1;
		want.owner_slot = me->slot;
		want.owner_gen = me->gen;
		want.since_ms = wall_ms();
		snprintf(want.owner, sizeof(want.owner), "%s", host);
		memcpy(want.uuid, r->uuid, sizeof(want.uuid));
		if (!l->plain) {
			uint8_t *buf = sector_buf(l);

			if (!buf) {
				free(raw);
				return -VSM_ENOMEM;
			}
			ls_owner_encode(buf, &want);
			rc = vsm_bdev_compare_and_write(l->bdev, raw, buf, l->lb, area_off(l, idx));
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
			rc = paxos(l, idx, me, want.lver, &want, &cur, &chosen);
			if (rc < 0)
				return rc;
			if (rc == PX_AGAIN || !lv_same(&chosen, &want)) {
				sleep_ms((int64_t)(rand64(l->mgr) % 3));
				continue; /* someone else's value: judge it afresh */
			}
		}
		if ((rc = held_set(l, r, me, chosen.lver)) < 0) {
			free(mine);
			return rc;
		}
		e = held_find(l, r->slot, r->uuid);
		free(e->mine);
		e->mine = mine;
		*lver = chosen.lver;
		if (took_over)
			*took_over = j == J_DEAD;
		return 0;
	}
	return vsm_err(VSM_ELEASE, "container '%s' lease is contended; try again", r->name);
}

int vsm__lease_acquire(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r, const char *host,
		       unsigned int flags, uint64_t *lver, bool *took_over)
{
	vsm_lease_ds *l = ds->lease;
	int rc;

	if (!l)
		return vsm_err(VSM_ENOTSUP, "datastore '%s' has no lease area open", ds->name);
	if (strlen(host) > LS_NAME_MAX)
		return vsm_err(VSM_EINVAL, "host name '%s' is too long for a lease", host);
	(void)ctx;
	pthread_mutex_lock(&l->mgr->lock);
	rc = acquire_locked(l, r, host, flags, lver, took_over);
	pthread_mutex_unlock(&l->mgr->lock);
	return rc;
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
bool vsm__lease_plain(const vsm_dstore *ds)
{
	return ds->lease && ds->lease->plain;
}

uint32_t vsm__lease_timeout_ms(const vsm_dstore *ds)
{
	return ds->lease ? ds->lease->timeout : ds->meta->geom.lease_timeout_ms;
}

int vsm__lease_lock_read(vsm_dstore *ds, vsm__lease_lockval *out)
{
	vsm_lease_ds *l = ds->lease;
	vsm_lv cur;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!l)
		return vsm_err(VSM_ENOTSUP, "datastore '%s' has no lease area open", ds->name);
	pthread_mutex_lock(&l->mgr->lock);
	rc = lease_read(l, 0, &cur, NULL, NULL);
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

int vsm__lease_lock_propose(vsm_dstore *ds, const char *node, const vsm__lease_lockval *cur,
			    bool take, bool *same_node)
{
	vsm_lease_ds *l = ds->lease;
	char name[LS_NAME_MAX + 1];
	vsm_lv prop, dec, chosen;
	lease_hb *me = NULL;
	struct timespec ts;
	int rc;

	if (!l)
		return vsm_err(VSM_ENOTSUP, "datastore '%s' has no lease area open", ds->name);
	snprintf(name, sizeof(name), "node-%s", node);
	pthread_mutex_lock(&l->mgr->lock);
	if ((rc = hb_join(l, name, &me)) < 0)
		goto out;
	if (same_node)
		*same_node = cur->held && cur->slot == me->slot && cur->gen == me->gen;
	memset(&dec, 0, sizeof(dec));
	if ((rc = lease_read(l, 0, &dec, NULL, NULL)) < 0)
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
	rc = paxos(l, 0, me, prop.lver, &prop, &dec, &chosen);
	if (rc == PX_AGAIN || (rc == PX_OK && !lv_same(&chosen, &prop)))
		rc = -VSM_EMISMATCH;
out:
	pthread_mutex_unlock(&l->mgr->lock);
	return rc;
}

int vsm__lease_release(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r)
{
	vsm_lease_ds *l = ds->lease;
	uint32_t idx = r->slot + 1;
	lease_held *e;
	int rc = 0, tries;

	(void)ctx;
	if (!l)
		return 0;
	pthread_mutex_lock(&l->mgr->lock);
	if (!(e = held_find(l, r->slot, r->uuid)))
		goto out;
	if (!l->plain && e->mine) {
		/* Still exactly what we wrote? Then one compare-and-write frees it. */
		uint8_t *buf = sector_buf(l);
		vsm_lv want;

		if (!buf) {
			rc = -VSM_ENOMEM;
			goto drop;
		}
		memset(&want, 0, sizeof(want));
		want.lver = e->lver + 1;
		want.flags = LV_FREE;
		want.owner_slot = UINT32_MAX;
		want.since_ms = wall_ms();
		memcpy(want.uuid, r->uuid, sizeof(want.uuid));
		ls_owner_encode(buf, &want);
		rc = vsm_bdev_compare_and_write(l->bdev, e->mine, buf, l->lb, area_off(l, idx));
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

		if ((rc = lease_read(l, idx, &cur, &raw, &inst_max)) < 0)
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
		want.since_ms = wall_ms();
		memcpy(want.uuid, r->uuid, sizeof(want.uuid));
		if (!l->plain) {
			uint8_t *buf = sector_buf(l);

			if (!buf) {
				free(raw);
				rc = -VSM_ENOMEM;
				break;
			}
			ls_owner_encode(buf, &want);
			rc = vsm_bdev_compare_and_write(l->bdev, raw, buf, l->lb, area_off(l, idx));
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
		rc = paxos(l, idx, e->hb, want.lver, &want, &cur, &chosen);
		if (rc < 0)
			break;
		if (rc == PX_OK && lv_same(&chosen, &want))
			break;
		rc = 0;
	}
drop:
	held_drop(l, e);
out:
	pthread_mutex_unlock(&l->mgr->lock);
	return rc;
}

bool vsm__lease_held(vsm_dstore *ds, const vsm_record *r, const char *host, uint64_t *lver)
{
	vsm_lease_ds *l = ds->lease;
	lease_held *e;
	bool ok;

	if (!l)
		return false;
	pthread_mutex_lock(&l->mgr->lock);
	e = held_find(l, r->slot, r->uuid);
	ok = e && !e->lost && !strcmp(e->hb->host, host) && mono_ms() < e->hb->deadline;
	if (ok)
		*lver = e->lver;
	pthread_mutex_unlock(&l->mgr->lock);
	return ok;
}

bool vsm__lease_acts_for(vsm_ctx *ctx, const char *host)
{
	return state_host_known(ctx, host);
}

int vsm__lease_fence(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *cur, uint64_t *lver)
{
	vsm_lease_ds *l = ds->lease;
	const char *host = cur->attached_host;
	lease_held *e;
	int rc;

	if (!l || !host)
		return vsm_err(VSM_EINTERNAL, "lease fence on a detached container");
	pthread_mutex_lock(&l->mgr->lock);
	e = held_find(l, cur->slot, cur->uuid);
	/* A newer token on disk means someone acquired after us (another
	 * process of this host, or a takeover): ours is no good any more. */
	if (e && !e->lost && !strcmp(e->hb->host, host) && mono_ms() < e->hb->deadline &&
	    cur->lease_version <= e->lver) {
		*lver = e->lver;
		pthread_mutex_unlock(&l->mgr->lock);
		return 0;
	}
	pthread_mutex_unlock(&l->mgr->lock);
	/* Not held here (another process of this host acquired it, or our
	 * heartbeat lapsed): take it up again, but only from this very host. */
	if (!state_host_known(ctx, host))
		return vsm_err(VSM_ESTALE, "container '%s' is attached to host '%s', which this "
			       "context does not act for", cur->name, host);
	rc = vsm__lease_acquire(ctx, ds, cur, host, VSM__LEASE_SAME_HOST, lver, NULL);
	if (rc == -VSM_ESTALE)
		vsm__error_prefix("container '%s': this host's lease was lost", cur->name);
	if (rc == 0 && cur->lease_version > *lver)
		rc = vsm_err(VSM_ESTALE, "container '%s': lease version %llu was superseded",
			     cur->name, (unsigned long long)*lver);
	return rc;
}

/* ------------------------------------------------------------- public */

struct vsm_lease {
	char *container;
	char *host;
	int state;
	int64_t since;
	uint64_t version;
	int64_t stopped;
	int mine;
};

static void lease_free(vsm_lease *x)
{
	if (!x)
		return;
	free(x->container);
	free(x->host);
	free(x);
}

VSM_API void vsm_lease_list_free(vsm_lease **list, size_t count)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < count; i++)
		lease_free(list[i]);
	free(list);
}

static int by_container(const void *a, const void *b)
{
	return strcmp((*(vsm_lease *const *)a)->container, (*(vsm_lease *const *)b)->container);
}

VSM_API int vsm_lease_status(vsm_lease ***out, size_t *count, vsm_ctx *ctx,
			     const char *datastore, unsigned int flags)
{
	vsm_lease **list = NULL;
	vsm_lease_ds *l;
	vsm_dstore *ds;
	size_t i, n = 0;
	int rc;

	vsm__error_reset();
	if (!out || !count || !ctx || !datastore)
		return vsm_err(VSM_EINVAL, "vsm_lease_status: NULL argument");
	if (flags & ~VSM_LEASE_STATUS_WATCH)
		return vsm_err(VSM_EINVAL, "vsm_lease_status: unknown flags 0x%x", flags);
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, datastore)) < 0 || (rc = vsm__ds_refresh(ctx, ds)) < 0)
		goto out;
	if (!(l = ds->lease)) {
		rc = vsm_err(VSM_ENOTSUP, "datastore '%s' has no lease area open", datastore);
		goto out;
	}
	if (!(list = vsm__calloc(ds->n_recs + 1, sizeof(*list)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&l->mgr->lock);
	rc = obs_refresh(l, NULL);
	if (rc == 0 && (flags & VSM_LEASE_STATUS_WATCH)) {
		pthread_mutex_unlock(&l->mgr->lock);
		sleep_ms(3 * (int64_t)l->renew / 2 + 1);
		pthread_mutex_lock(&l->mgr->lock);
		rc = obs_refresh(l, NULL);
	}
	for (i = 0; rc == 0 && i < ds->n_recs; i++) {
		const vsm_record *r = ds->recs[i];
		vsm_lease *x;
		lease_held *e;
		vsm_lv cur;
		int j;

		if ((rc = lease_read(l, r->slot + 1, &cur, NULL, NULL)) < 0)
			break;
		if (!(x = vsm__calloc(1, sizeof(*x))) || !(x->container = vsm__strdup(r->name))) {
			free(x);
			rc = -VSM_ENOMEM;
			break;
		}
		list[n++] = x;
		j = judge(l, &cur, r->uuid, NULL, &x->stopped);
		x->version = cur.lver;
		if (j == J_FREE) {
			x->state = VSM_LEASE_FREE;
			continue;
		}
		x->since = cur.since_ms;
		if (!(x->host = vsm__strdup(cur.owner))) {
			rc = -VSM_ENOMEM;
			break;
		}
		x->state = j == J_LIVE ? VSM_LEASE_LIVE : j == J_DEAD ? VSM_LEASE_DEAD :
			   VSM_LEASE_STOPPED;
		e = held_find(l, r->slot, r->uuid);
		x->mine = e && !e->lost && e->lver == cur.lver && mono_ms() < e->hb->deadline;
		if (x->mine)
			x->state = VSM_LEASE_LIVE;
	}
	pthread_mutex_unlock(&l->mgr->lock);
	if (rc < 0)
		goto out;
	qsort(list, n, sizeof(*list), by_container);
	*out = list;
	*count = n;
	list = NULL;
out:
	vsm_lease_list_free(list, n);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API const char *vsm_lease_container(const vsm_lease *l)
{
	return l ? l->container : NULL;
}

VSM_API const char *vsm_lease_host(const vsm_lease *l)
{
	return l ? l->host : NULL;
}

VSM_API int vsm_lease_state_of(const vsm_lease *l)
{
	return l ? l->state : VSM_LEASE_FREE;
}

VSM_API const char *vsm_lease_state_name(int state)
{
	switch (state) {
	case VSM_LEASE_FREE: return "free";
	case VSM_LEASE_LIVE: return "live";
	case VSM_LEASE_STOPPED: return "stopped";
	case VSM_LEASE_DEAD: return "dead";
	}
	return NULL;
}

VSM_API int64_t vsm_lease_since(const vsm_lease *l)
{
	return l ? l->since : 0;
}

VSM_API uint64_t vsm_lease_version(const vsm_lease *l)
{
	return l ? l->version : 0;
}

VSM_API int64_t vsm_lease_stopped_ms(const vsm_lease *l)
{
	return l ? l->stopped : 0;
}

VSM_API int vsm_lease_is_mine(const vsm_lease *l)
{
	return l ? l->mine : 0;
}

VSM_API int vsm_lease_keep(vsm_ctx *ctx, const char *host, unsigned int flags)
{
	char **names = NULL;
	size_t n = 0, i;
	int rc;

	vsm__error_reset();
	if (!ctx || !host)
		return vsm_err(VSM_EINVAL, "vsm_lease_keep: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_lease_keep: unknown flags 0x%x", flags);
	vsm__ctx_lock(ctx);
	if ((rc = vsm_catalog_strings(ctx->cat, &names, &n, "SELECT datastore FROM links "
				      "WHERE host = ? ORDER BY datastore", "s", host)) < 0)
		goto out;
	if (n == 0) {
		int64_t exists = 0;

		if ((rc = vsm_catalog_count(ctx->cat, &exists, "SELECT 1 FROM hosts WHERE "
					    "name = ?", "s", host)) < 0)
			goto out;
		if (!exists) {
			rc = vsm_err(VSM_ENOTFOUND, "host '%s' does not exist", host);
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		vsm_dstore *ds;
		lease_hb *hb;

		if ((rc = vsm__ds_get(&ds, ctx, names[i])) < 0)
			goto out;
		if (!ds->lease) {
			rc = vsm_err(VSM_ENOTSUP, "datastore '%s' has no lease area open", ds->name);
			goto out;
		}
		pthread_mutex_lock(&ctx->leases->lock);
		rc = hb_join(ds->lease, host, &hb);
		pthread_mutex_unlock(&ctx->leases->lock);
		if (rc < 0)
			goto out;
	}
	state_host_add(ctx, host);
out:
	vsm_strv_free(names, n);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_lease_renew(vsm_ctx *ctx, unsigned int flags)
{
	vsm_lease_mgr *m;
	vsm_lease_ds *l;
	int64_t next, now;

	vsm__error_reset();
	if (!ctx)
		return vsm_err(VSM_EINVAL, "vsm_lease_renew: ctx is NULL");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_lease_renew: unknown flags 0x%x", flags);
	m = ctx->leases;
	pthread_mutex_lock(&m->lock);
	now = mono_ms();
	next = now + 1000;
	for (l = m->list; l; l = l->next) {
		tick(l);
		if (l->next_due < next)
			next = l->next_due;
	}
	pthread_mutex_unlock(&m->lock);
	now = mono_ms();
	return next > now ? (int)(next - now) : 0;
}
