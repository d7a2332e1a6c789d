/*
 * Leases: heartbeats: claiming and writing a slot per host and datastore,
 * the renewal thread and its pass, the lease manager, and opening and
 * closing a datastore's lease area.
 * doc/leases.md gives the protocol.
 */
#include <sched.h>

#include "lease_priv.h"

/* ----------------------------------------------------------- heartbeats */

static void emit_lost(vsm_lease_ds *l, lease_held *e, const char *why)
{
	e->lost = true;
	ls_lease_log(l->mgr, VSM_LOG_WARN, "datastore '%s': container '%s' may have lost its "
		 "lease for host '%s': %s", l->name, e->container, e->hb->host, why);
	vsm__event_emit(l->mgr->env.events, VSM_EVENT_LEASE_LOST, l->name, e->container,
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
	uint8_t *buf = ls_sector_buf(l);
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
	r.wall_ms = ls_wall_ms();
	snprintf(r.name, sizeof(r.name), "%s", hb->host);
	ls_hb_encode(buf, &r);
	ts = ls_mono_ms();
	rc = vsm_bdev_write(l->bdev, buf, l->lb, l->hb_off + (uint64_t)hb->slot * l->lb);
	te = ls_mono_ms();
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
bool ls_state_host_known(const vsm_lease_mgr *m, const char *host)
{
	char path[4096], line[LS_NAME_MAX + 8];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/lease-hosts", m->env.state_dir);
	if (!(f = fopen(path, "r")))
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		found = !strcmp(line, host);
	}
	fclose(f);
	return found;
}

static void state_host_add(const vsm_lease_mgr *m, const char *host)
{
	char path[4096];
	FILE *f;

	if (ls_state_host_known(m, host))
		return;
	snprintf(path, sizeof(path), "%s/lease-hosts", m->env.state_dir);
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
	uint32_t start = (uint32_t)(ls_rand64(l->mgr) % l->max_hosts), i;
	uint8_t *old = ls_sector_buf(l), *buf = ls_sector_buf(l);
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
		r.nonce = ls_rand64(l->mgr) | 1;
		r.wall_ms = ls_wall_ms();
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
			ls_sleep_ms(2 * (int64_t)l->renew);
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
		     "hosts (%u watched dead for the timeout could not be claimed)", l->name,
		     l->max_hosts, dead);
out:
	free(old);
	free(buf);
	return rc;
}

/* Our heartbeat for @host on @l, joining or claiming its slot. */
int ls_hb_join(vsm_lease_ds *l, const char *host, lease_hb **out)
{
	lease_hb *hb = hb_find(l, host);
	uint32_t h;
	int rc;

	if (!hb) {
		if (!(hb = vsm__calloc(1, sizeof(*hb))))
			return -VSM_ENOMEM;
		snprintf(hb->host, sizeof(hb->host), "%s", host);
		if ((rc = ls_obs_refresh(l, NULL)) < 0)
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
		state_host_add(l->mgr, host);
		start_thread(l->mgr);
	}
	if (hb->stolen)
		return vsm_err(VSM_ESTATE, "datastore '%s': host '%s' lost its heartbeat slot to "
			       "another host; open a new context", l->name, host);
	/* Lease decisions need plenty of validity ahead. */
	if (hb->deadline - ls_mono_ms() < (int64_t)l->timeout / 2 && (rc = hb_write(l, hb)) < 0)
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
	int64_t now = ls_mono_ms();
	int rc;

	l->next_due = now + l->renew;
	rc = ls_obs_refresh(l, &gen);
	if (rc == 0 && gen > l->seen_gen) {
		bool first = l->seen_gen == 0;

		l->seen_gen = gen;
		if (!first)
			vsm__event_emit(l->mgr->env.events, VSM_EVENT_DATASTORE_CHANGED,
					l->name, NULL, NULL, "generation moved", gen);
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
		if (hb->deadline && ls_mono_ms() >= hb->deadline) {
			lose_all(l, hb, "heartbeat was not renewed within the lease timeout");
			hb->deadline = 0;
		}
		if (hb_write(l, hb) < 0)
			vsm__error_reset();
	}
	ls_handover_tick(l);
	vsm__error_reset();
}

static void *renewer(void *arg)
{
	vsm_lease_mgr *m = arg;

	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		int64_t now = ls_mono_ms(), next = now + 1000;
		struct timespec ts;
		vsm_lease_ds *l;

		for (l = m->list; l; l = l->next) {
			if (now >= l->next_due) {
				uint64_t gen = m->list_gen;

				tick(l);
				/* Let callers waiting for the lock (a placement
				 * reading the observations) in between datastores:
				 * with many open, a whole pass is long. A datastore
				 * closed meanwhile ends this pass early; the next
				 * one starts from the list's head. */
				pthread_mutex_unlock(&m->lock);
				sched_yield();
				pthread_mutex_lock(&m->lock);
				if (m->list_gen != gen || m->stopping) {
					next = now;
					break;
				}
			}
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
		ls_lease_log(m, VSM_LOG_ERROR, "cannot start the lease renewal thread");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int vsm__lease_mgr_new(vsm_lease_mgr **out, const vsm_lease_env *env, bool manual)
{
	vsm_lease_mgr *m = vsm__calloc(1, sizeof(*m));
	pthread_condattr_t ca;

	if (!m)
		return -VSM_ENOMEM;
	m->env = *env;
	if (!(m->env.state_dir = vsm__strdup(env->state_dir))) {
		free(m);
		return -VSM_ENOMEM;
	}
	m->manual = manual;
	m->seed = (unsigned int)(ls_wall_ms() ^ (int64_t)getpid() << 16 ^ (int64_t)(uintptr_t)m);
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
	free(l->name);
	free(l->scheme);
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
		lds_free(l);
	}
	free((char *)m->env.state_dir);
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
	uint8_t *buf = ls_sector_buf(l), *zero = ls_sector_buf(l);
	bool caw = vsm_bdev_has_compare_and_write(l->bdev);
	int want_plain = env_plain(), rc, st;
	vsm_lhdr h;

	if (!buf || !zero) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if ((rc = ls_read_settled(l, buf, l->lb, ls_area_off(l, 0), NULL)) < 0)
		goto out;
	st = ls_hdr_decode(buf, &h);
	if (st == 0) {
		memset(&h, 0, sizeof(h));
		h.format = 1;
		h.mode = caw && want_plain != 1 ? LS_MODE_CAW : LS_MODE_PLAIN;
		h.timeout_ms = env_ms("VSM_LEASE_TIMEOUT_MS", g->lease_timeout_ms);
		h.renew_ms = env_ms("VSM_LEASE_RENEW_MS", h.timeout_ms == g->lease_timeout_ms ?
				    g->renew_interval_ms : h.timeout_ms / 8);
		if (h.renew_ms == 0 || h.timeout_ms < 2 * h.renew_ms)
			h.renew_ms = h.timeout_ms / 4 ? h.timeout_ms / 4 : 1;
		ls_hdr_encode(buf, &h);
		if (caw) {
			rc = vsm_bdev_compare_and_write(l->bdev, zero, buf, l->lb, ls_area_off(l, 0));
			if (rc == -VSM_EMISMATCH)
				vsm__error_reset();
			else if (rc < 0)
				goto out;
		} else if ((rc = vsm_bdev_write(l->bdev, buf, l->lb, ls_area_off(l, 0))) < 0) {
			goto out;
		}
		if ((rc = vsm_bdev_flush(l->bdev)) < 0 ||
		    (rc = ls_read_settled(l, buf, l->lb, ls_area_off(l, 0), NULL)) < 0)
			goto out;
		st = ls_hdr_decode(buf, &h);
	}
	if (st != 1) {
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': lease area header is damaged",
			     l->name);
		goto out;
	}
	if (h.mode == LS_MODE_CAW && !caw) {
		rc = vsm_err(VSM_ENOTSUP, "datastore '%s': its leases use compare-and-write, "
			     "which its metadata device (backend '%s') does not offer",
			     l->name, l->scheme);
		goto out;
	}
	if (h.mode == LS_MODE_CAW && want_plain == 1) {
		rc = vsm_err(VSM_ESTATE, "datastore '%s': its leases use compare-and-write; "
			     "VSM_LEASE_PROTOCOL=plain cannot be honoured", l->name);
		goto out;
	}
	l->plain = h.mode == LS_MODE_PLAIN;
	l->format = h.format;
	l->timeout = h.timeout_ms;
	l->renew = h.renew_ms;
	l->margin = l->timeout / 16;
out:
	free(buf);
	free(zero);
	return rc;
}

int vsm__lease_ds_open(vsm_lease_ds **out, vsm_lease_mgr *m, vsm_meta *meta,
		       const char *name, const char *scheme)
{
	const vsm_meta_geom *g = &meta->geom;
	vsm_lease_ds *l;
	int rc;

	if (!(l = vsm__calloc(1, sizeof(*l))))
		return -VSM_ENOMEM;
	l->mgr = m;
	l->meta = meta;
	if (!(l->name = vsm__strdup(name)) || !(l->scheme = vsm__strdup(scheme))) {
		free(l->name);
		free(l);
		return -VSM_ENOMEM;
	}
	l->bdev = meta->bdev;
	l->max_hosts = g->max_hosts;
	l->lb = g->lease_block;
	l->gen_off = g->gen_off;
	l->hb_off = g->lease_off;
	l->areas_off = g->lease_off + (uint64_t)g->lease_block * g->max_hosts;
	l->area_bytes = VSM_META_LEASE_BYTES(g);
	if (l->lb < LS_SECTOR) {
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': lease block too small", name);
		lds_free(l);
		return rc;
	}
	if (!(l->obs = vsm__calloc(l->max_hosts, sizeof(*l->obs)))) {
		lds_free(l);
		return -VSM_ENOMEM;
	}
	pthread_mutex_lock(&m->lock);
	rc = header_load(l, g);
	if (rc == 0)
		rc = ls_obs_refresh(l, &l->seen_gen);
	if (rc < 0) {
		pthread_mutex_unlock(&m->lock);
		lds_free(l);
		return rc;
	}
	l->next_due = ls_mono_ms() + l->renew;
	l->next = m->list;
	m->list = l;
	*out = l;
	start_thread(m);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void vsm__lease_ds_close(vsm_lease_ds *l)
{
	vsm_lease_ds **pp;
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
	m->list_gen++;
	pthread_mutex_unlock(&m->lock);
	lds_free(l);
}

void vsm__lease_note_gen(vsm_lease_ds *l, uint64_t gen)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mgr->lock);
	if (gen > l->seen_gen)
		l->seen_gen = gen;
	pthread_mutex_unlock(&l->mgr->lock);
}

bool vsm__lease_gen_unseen(vsm_lease_ds *l, uint64_t gen)
{
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

int vsm__lease_keep(vsm_lease_ds *l, const char *host)
{
	lease_hb *hb;
	int rc;

	pthread_mutex_lock(&l->mgr->lock);
	rc = ls_hb_join(l, host, &hb);
	pthread_mutex_unlock(&l->mgr->lock);
	return rc;
}

void vsm__lease_host_note(vsm_lease_mgr *m, const char *host)
{
	state_host_add(m, host);
}

int vsm__lease_renew_all(vsm_lease_mgr *m)
{
	vsm_lease_ds *l;
	int64_t next, now;

	pthread_mutex_lock(&m->lock);
	now = ls_mono_ms();
	next = now + 1000;
	for (l = m->list; l; l = l->next) {
		tick(l);
		if (l->next_due < next)
			next = l->next_due;
	}
	pthread_mutex_unlock(&m->lock);
	now = ls_mono_ms();
	return next > now ? (int)(next - now) : 0;
}
