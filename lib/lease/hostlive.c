/*
 * Leases: whether hosts are alive, judged by their heartbeats on a lease
 * area (placement phase 2 asks). The observations are the renewal
 * pass's own (ls_obs_refresh); this file only reads them and, for a
 * fresh context that has not watched long enough, watches once more.
 * doc/leases.md gives the protocol.
 */
#include "lease_priv.h"

/* Our own, still valid heartbeat in slot @h of @l. */
static bool ours(const vsm_lease_ds *l, uint32_t h)
{
	const lease_hb *hb;

	for (hb = l->hbs; hb; hb = hb->next)
		if (hb->slot == h && !hb->stolen && !strcmp(hb->host, l->obs[h].rec.name))
			return true;
	return false;
}

/* How much longer slot @h must be watched before it can be judged: a
 * heartbeat seen standing still for less than a renewal and a half may
 * simply not have been renewed since we first looked. */
static int64_t unjudged_ms(const vsm_lease_ds *l, uint32_t h)
{
	const hb_obs *o = &l->obs[h];
	int64_t seen = o->last_start - o->first_seen, need = 3 * (int64_t)l->renew / 2 + 1;

	if (o->state != 1 || o->moved || ours(l, h) || seen >= need)
		return 0;
	return need - seen;
}

static int judge(const vsm_lease_ds *l, uint32_t h, int64_t now, int64_t *stopped)
{
	const hb_obs *o = &l->obs[h];

	*stopped = 0;
	if (ours(l, h))
		return VSM__HB_LIVE;
	*stopped = o->last_start - o->first_seen;
	if (*stopped < 0)
		*stopped = 0;
	if (*stopped >= (int64_t)l->timeout)
		return VSM__HB_DEAD;
	/* As ls_judge: seen moving within the last few renewals. */
	if (o->moved && now - o->first_seen < 3 * (int64_t)l->renew)
		return VSM__HB_LIVE;
	return VSM__HB_STOPPED;
}

int vsm__lease_hosts_scan(vsm_lease_ds *const *ls, size_t n, bool watch, vsm__hb_cb cb,
			  void *payload)
{
	vsm_lease_mgr *m;
	int64_t wait = 0, now;
	size_t i;
	uint32_t h;
	int rc = 0;

	if (!n)
		return 0;
	m = ls[0]->mgr;
	pthread_mutex_lock(&m->lock);
	/* The renewal pass looks at every open area each renewal interval:
	 * an observation younger than that is as good as a new read. */
	now = ls_mono_ms();
	for (i = 0; i < n && rc == 0; i++)
		if (watch || now - ls[i]->obs[0].last_start >= (int64_t)ls[i]->renew)
			rc = ls_obs_refresh(ls[i], NULL);
	for (i = 0; rc == 0 && watch && i < n; i++)
		for (h = 0; h < ls[i]->max_hosts; h++) {
			int64_t w = unjudged_ms(ls[i], h);

			wait = w > wait ? w : wait;
		}
	if (rc == 0 && wait > 0) {
		/* Once for every area and host: the renewal thread keeps
		 * renewing our own heartbeats meanwhile. */
		pthread_mutex_unlock(&m->lock);
		ls_sleep_ms(wait);
		pthread_mutex_lock(&m->lock);
		for (i = 0; i < n && rc == 0; i++)
			rc = ls_obs_refresh(ls[i], NULL);
	}
	now = ls_mono_ms();
	for (i = 0; rc == 0 && i < n; i++)
		for (h = 0; h < ls[i]->max_hosts; h++) {
			int64_t stopped;
			int st;

			if (ls[i]->obs[h].state != 1 || !ls[i]->obs[h].rec.name[0])
				continue;
			st = judge(ls[i], h, now, &stopped);
			cb(payload, i, ls[i]->obs[h].rec.name, st, stopped);
		}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int vsm__lease_acted_hosts(const vsm_lease_mgr *m, char ***out, size_t *count)
{
	char path[4096], line[LS_NAME_MAX + 8];
	char **v = NULL, **grown;
	size_t n = 0;
	FILE *f;

	*out = NULL;
	*count = 0;
	snprintf(path, sizeof(path), "%s/lease-hosts", m->env.state_dir);
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		if (!(grown = realloc(v, (n + 1) * sizeof(*v))) || !(grown[n] = vsm__strdup(line))) {
			if (grown)
				v = grown;
			fclose(f);
			while (n)
				free(v[--n]);
			free(v);
			return vsm_err(VSM_ENOMEM, "out of memory");
		}
		v = grown;
		n++;
	}
	fclose(f);
	*out = v;
	*count = n;
	return 0;
}
