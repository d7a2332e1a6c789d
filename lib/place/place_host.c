/*
 * Placement phase 2 (include/vsm/placement.h): the hosts a container can
 * run on. A host qualifies when it is linked to every datastore the
 * container uses, alive by its heartbeats on each of them (or acted for
 * by this state directory, whose attach starts its heartbeat there),
 * below its container limit, carrying the tags asked for, and not
 * hosting a container it must stay apart from.
 *
 * The candidates are the hosts linked to at least one of the datastores
 * concerned; a host linked to none of them is not in the answer (with
 * ten thousand hosts, listing each as "not linked" would cost more than
 * the decision itself). The catalog answers in a handful of indexed
 * queries per decision: the hosts linked to the first datastore with
 * their limits and attached containers (records_by_host), the links of
 * each other datastore, their tags, and one per anti-affinity name. Only
 * the datastores concerned are opened, for their heartbeats.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lease.h"
#include "ops.h"
#include "place_host.h"
#include "place_int.h"

/* Everything phase 2 learns of one host. */
typedef struct {
	vsm_place_host_info info; /* name: the candidate's; tags: @tags */
	char **tags;
	size_t cap_tags;
	int *hb;                  /* [n_ds]: best VSM__HB_* seen there */
	int64_t *stopped;         /* [n_ds] */
} host_ent;

typedef struct {
	vsm_ctx *ctx;
	const vsm_host_request *req;
	vsm_dstore **ds;           /* the datastores concerned */
	size_t n_ds;
	char **names;              /* while loading; then owned by the candidates */
	size_t *limits, *counts;
	size_t *linked;            /* datastores concerned linked, counted in order */
	size_t n, cap;
	host_ent *h;
	vsm_strmap idx;            /* host name -> index */
	size_t cur;                /* a datastore's index while its links load */
	int *hb_all;
	int64_t *stopped_all;
	const char *anti_name;     /* the anti-affinity name being loaded */
	const char **anti_of;      /* [n]: a container the host holds that it must not */
	char *cur_host;            /* the container's current host (vsm_place_host) */
	bool found_self;
} phase2;

static bool host_index(const phase2 *p, const char *name, size_t *i)
{
	uint32_t v;

	if (!name || !vsm_strmap_get(&p->idx, name, &v))
		return false;
	*i = v;
	return true;
}

static bool grow(void **v, size_t cap, size_t size)
{
	void *g = realloc(*v, cap * size);

	if (g)
		*v = g;
	return g != NULL;
}

/* A host linked to the datastore being loaded (p->cur); the first one's
 * rows also bring its limit and the containers attached to it. */
static int host_row(void *payload, int ncol, const char *const *cols)
{
	phase2 *p = payload;
	size_t i;

	(void)ncol;
	if (host_index(p, cols[0], &i)) {
		/* Counted only when linked to every datastore before this one. */
		if (p->linked[i] == p->cur)
			p->linked[i]++;
		return 0;
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;

		if (!grow((void **)&p->names, cap, sizeof(*p->names)) ||
		    !grow((void **)&p->limits, cap, sizeof(*p->limits)) ||
		    !grow((void **)&p->counts, cap, sizeof(*p->counts)) ||
		    !grow((void **)&p->linked, cap, sizeof(*p->linked)))
			return -VSM_ENOMEM;
		p->cap = cap;
	}
	if (!(p->names[p->n] = vsm__strdup(cols[0])))
		return -VSM_ENOMEM;
	p->limits[p->n] = p->cur == 0 && cols[1] ? (size_t)strtoull(cols[1], NULL, 10) : 0;
	p->counts[p->n] = p->cur == 0 && cols[2] ? (size_t)strtoull(cols[2], NULL, 10) : 0;
	p->linked[p->n] = p->cur == 0 ? 1 : 0;
	if (vsm_strmap_put(&p->idx, cols[0], (uint32_t)p->n) < 0) {
		free(p->names[p->n]);
		return -VSM_ENOMEM;
	}
	p->n++;
	return 0;
}

static int tag_row(void *payload, int ncol, const char *const *cols)
{
	phase2 *p = payload;
	host_ent *e;
	size_t i;
	char *t;

	(void)ncol;
	if (!host_index(p, cols[0], &i) || !cols[1])
		return 0;
	e = &p->h[i];
	if (e->info.n_tags == e->cap_tags) {
		size_t cap = e->cap_tags ? 2 * e->cap_tags : 4;
		char **grown = realloc(e->tags, cap * sizeof(*grown));

		if (!grown)
			return -VSM_ENOMEM;
		e->tags = grown;
		e->cap_tags = cap;
	}
	if (asprintf(&t, "%s%s%s", cols[1], cols[2] ? "=" : "", cols[2] ? cols[2] : "") < 0)
		return -VSM_ENOMEM;
	e->tags[e->info.n_tags++] = t;
	e->info.tags = (const char *const *)e->tags;
	return 0;
}

static int anti_row(void *payload, int ncol, const char *const *cols)
{
	phase2 *p = payload;
	size_t i;

	(void)ncol;
	if (host_index(p, cols[0], &i) && !p->anti_of[i])
		p->anti_of[i] = p->anti_name;
	return 0;
}

static int self_row(void *payload, int ncol, const char *const *cols)
{
	phase2 *p = payload;

	(void)ncol;
	p->found_self = true;
	if (cols[0] && !(p->cur_host = vsm__strdup(cols[0])))
		return -VSM_ENOMEM;
	return 1;
}

static void hb_seen(void *payload, size_t area, const char *host, int state, int64_t stopped)
{
	phase2 *p = payload;
	host_ent *e;
	size_t i;
	int old;

	if (!host_index(p, host, &i))
		return;
	e = &p->h[i];
	old = e->hb[area];
	/* Several slots with one name (an old incarnation): the best counts. */
	if (old == VSM__HB_NONE || state == VSM__HB_LIVE ||
	    (state == VSM__HB_STOPPED && old == VSM__HB_DEAD)) {
		e->hb[area] = state;
		e->stopped[area] = stopped;
	}
}

static double spread(const vsm__cand *c)
{
	return -(double)((const vsm_place_host_info *)c->info)->containers;
}

static double pack(const vsm__cand *c)
{
	return (double)((const vsm_place_host_info *)c->info)->containers;
}

static int request_check(const vsm_host_request *req, bool for_container)
{
	size_t i, klen;
	int rc;

	if (req->version == 0 || req->version > VSM_HOST_REQUEST_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_host_request version %u is not supported",
			       req->version);
	if (req->flags & ~(VSM_PLACE_HOST_MIGRATE | VSM_PLACE_HOST_WATCH))
		return vsm_err(VSM_EINVAL, "host placement: unknown flags 0x%x", req->flags);
	if ((req->flags & VSM_PLACE_HOST_MIGRATE) && !for_container)
		return vsm_err(VSM_EINVAL, "host placement: VSM_PLACE_HOST_MIGRATE needs a "
			       "container (vsm_place_host)");
	if (req->weigher && strcmp(req->weigher, "spread") && strcmp(req->weigher, "pack"))
		return vsm_err(VSM_EINVAL, "host placement: unknown weigher '%s' (built in: "
			       "spread, pack)", req->weigher);
	if ((req->n_tags && !req->tags) || (req->n_anti_affinity && !req->anti_affinity) ||
	    (req->n_filters && !req->filters) || (req->n_weighers && !req->weighers))
		return vsm_err(VSM_EINVAL, "host placement: a list has a count but no array");
	for (i = 0; i < req->n_tags; i++)
		if ((rc = vsm__host_tag_check(req->tags[i], &klen)) < 0)
			return rc;
	for (i = 0; i < req->n_anti_affinity; i++)
		if (!req->anti_affinity[i])
			return vsm_err(VSM_EINVAL, "host placement: anti-affinity name %zu is NULL",
				       i);
	return 0;
}

/* Whether @e carries the tag @want ("KEY" matches any value). */
static bool has_tag(const host_ent *e, const char *want)
{
	size_t klen = strcspn(want, "="), i;

	for (i = 0; i < e->info.n_tags; i++) {
		const char *t = e->tags[i];

		if (want[klen] == '=' ? !strcmp(t, want)
				      : !strncmp(t, want, klen) && (t[klen] == '\0' || t[klen] == '='))
			return true;
	}
	return false;
}

static void phase2_free(phase2 *p, vsm__cand *cands)
{
	size_t i, j;

	for (i = 0; p->h && i < p->n; i++) {
		for (j = 0; j < p->h[i].info.n_tags; j++)
			free(p->h[i].tags[j]);
		free(p->h[i].tags);
	}
	if (cands) {
		vsm__cands_free(cands, p->n);
	} else {
		for (i = 0; p->names && i < p->n; i++)
			free(p->names[i]);
	}
	free(p->names);
	free(p->limits);
	free(p->counts);
	free(p->linked);
	free(p->h);
	free(p->hb_all);
	free(p->stopped_all);
	free(p->anti_of);
	free(p->ds);
	free(p->cur_host);
	vsm_strmap_clear(&p->idx);
}

/* Judge every host; the built-in filters in order of cost. */
static int judge_hosts(phase2 *p, vsm__cand *cands, const char *const *acted, size_t n_acted)
{
	const vsm_host_request *req = p->req;
	size_t i, j, k;

	for (i = 0; i < p->n; i++) {
		host_ent *e = &p->h[i];
		vsm__cand *c = &cands[i];
		bool acts = false;
		int rc = 0;

		if (p->linked[i] < p->n_ds) {
			rc = vsm__cand_reject(c, "not linked to datastore '%s'",
					      p->ds[p->linked[i]]->name);
			goto next;
		}
		if ((req->flags & VSM_PLACE_HOST_MIGRATE) && p->cur_host &&
		    !strcmp(p->cur_host, c->name)) {
			rc = vsm__cand_reject(c, "is the container's current host");
			goto next;
		}
		for (k = 0; k < n_acted && !acts; k++)
			acts = !strcmp(acted[k], c->name);
		e->info.live = 1;
		for (j = 0; j < p->n_ds && !acts; j++) {
			const char *dn = p->ds[j]->name;
			double s = (double)e->stopped[j] / 1000.0;

			if (!p->ds[j]->lease || e->hb[j] == VSM__HB_LIVE)
				continue;
			e->info.live = 0;
			if (e->hb[j] == VSM__HB_DEAD)
				rc = vsm__cand_reject(c, "heartbeat on datastore '%s' is dead "
						      "(stopped %.1f s)", dn, s);
			else if (e->hb[j] == VSM__HB_STOPPED)
				rc = vsm__cand_reject(c, "heartbeat on datastore '%s' is not seen "
						      "moving (still for %.1f s)", dn, s);
			else
				rc = vsm__cand_reject(c, "no heartbeat on datastore '%s'", dn);
			goto next;
		}
		if (e->info.max_containers && e->info.containers >= e->info.max_containers) {
			rc = vsm__cand_reject(c, "has %zu containers attached, limit %zu",
					      e->info.containers, e->info.max_containers);
			goto next;
		}
		for (k = 0; k < req->n_tags; k++) {
			if (!has_tag(e, req->tags[k])) {
				rc = vsm__cand_reject(c, "lacks tag '%s'", req->tags[k]);
				goto next;
			}
		}
		if (p->anti_of && p->anti_of[i])
			rc = vsm__cand_reject(c, "hosts '%s' (anti-affinity)", p->anti_of[i]);
next:
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * Phase 2 over @datastores; @self_uuid: the container placed (its
 * current host is found, and it never counts against itself), or NULL.
 */
static int phase2_run(vsm_placement **out, vsm_ctx *ctx, const char *const *datastores,
		      size_t n_datastores, const char *self_uuid, const vsm_host_request *req)
{
	phase2 p;
	vsm__cand *cands = NULL;
	vsm_lease_ds **ls = NULL;
	char **acted = NULL;
	size_t n_acted = 0, i, j, n_ls = 0;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	p.ctx = ctx;
	p.req = req;
	if (!(p.ds = vsm__calloc(n_datastores, sizeof(*p.ds))) ||
	    !(ls = vsm__calloc(n_datastores, sizeof(*ls)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	/* Only the datastores concerned are opened: their records must be
	 * current (counts, the current host) and their heartbeats judged. */
	for (i = 0; i < n_datastores; i++) {
		vsm_dstore *ds;

		if (!datastores[i]) {
			rc = vsm_err(VSM_EINVAL, "host placement: datastore %zu is NULL", i);
			goto out;
		}
		for (j = 0; j < p.n_ds && strcmp(p.ds[j]->name, datastores[i]); j++)
			;
		if (j < p.n_ds)
			continue;
		if ((rc = vsm__ds_get(&ds, ctx, datastores[i])) < 0 ||
		    (rc = vsm__ds_refresh(ctx, ds)) < 0)
			goto out;
		p.ds[p.n_ds++] = ds;
		if (ds->lease)
			ls[n_ls++] = ds->lease;
	}
	if (self_uuid) {
		if ((rc = vsm_catalog_query(ctx->cat, self_row, &p, "SELECT json_extract(record, "
					    "'$.attached_host') FROM records WHERE datastore = ? "
					    "AND uuid = ? AND state = 1", "ss", p.ds[0]->name,
					    self_uuid)) < 0)
			goto out;
		if (!p.found_self) {
			rc = vsm_err(VSM_ENOTFOUND, "no longer exists on datastore '%s' (uuid %s)",
				     p.ds[0]->name, self_uuid);
			goto out;
		}
	}
	/* The hosts of the first datastore, with their limits and the
	 * containers attached to them on every registered datastore (the
	 * record cache holds each slot's record as last read; "+l.host"
	 * lets the lookup use the records_by_host index). */
	p.cur = 0;
	if ((rc = vsm_catalog_query(ctx->cat, host_row, &p, "SELECT l.host, hl.max_containers, "
				    "(SELECT count(*) FROM records WHERE state = 1 AND "
				    "json_extract(record, '$.attached_host') = +l.host AND "
				    "+datastore IN (SELECT name FROM datastores)) FROM links l "
				    "JOIN hosts h ON h.name = l.host LEFT JOIN host_limits hl ON "
				    "hl.host = l.host WHERE l.datastore = ?", "s",
				    p.ds[0]->name)) < 0)
		goto out;
	/* Those of the others: linked to every one, or rejected. */
	for (p.cur = 1; p.cur < p.n_ds; p.cur++)
		if ((rc = vsm_catalog_query(ctx->cat, host_row, &p, "SELECT l.host FROM links l "
					    "JOIN hosts h ON h.name = l.host WHERE l.datastore = ?",
					    "s", p.ds[p.cur]->name)) < 0)
			goto out;
	/* The candidates take the names over only once all is allocated. */
	if (!(p.h = vsm__calloc(p.n ? p.n : 1, sizeof(*p.h))) ||
	    !(p.hb_all = vsm__calloc(p.n * p.n_ds + 1, sizeof(*p.hb_all))) ||
	    !(p.stopped_all = vsm__calloc(p.n * p.n_ds + 1, sizeof(*p.stopped_all))) ||
	    !(cands = vsm__calloc(p.n ? p.n : 1, sizeof(*cands)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < p.n; i++) {
		host_ent *e = &p.h[i];

		cands[i].name = p.names[i];
		cands[i].info = &e->info;
		e->info.version = VSM_PLACE_HOST_INFO_VERSION;
		e->info.name = p.names[i];
		e->info.max_containers = p.limits[i];
		e->info.containers = p.counts[i];
		e->hb = p.hb_all + i * p.n_ds;
		e->stopped = p.stopped_all + i * p.n_ds;
	}
	/* Tags of the hosts that can qualify (linked to the first one). */
	if ((rc = vsm_catalog_query(ctx->cat, tag_row, &p, "SELECT t.host, t.key, t.value FROM "
				    "links l JOIN host_tags t ON t.host = l.host WHERE "
				    "l.datastore = ? ORDER BY t.host, t.key", "s",
				    p.ds[0]->name)) < 0)
		goto out;
	/* The container never counts against itself where it is. */
	if (p.cur_host && host_index(&p, p.cur_host, &i) && p.h[i].info.containers)
		p.h[i].info.containers--;
	if (req->n_anti_affinity) {
		if (!(p.anti_of = vsm__calloc(p.n ? p.n : 1, sizeof(*p.anti_of)))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
		for (i = 0; i < req->n_anti_affinity; i++) {
			p.anti_name = req->anti_affinity[i];
			if ((rc = vsm_catalog_query(ctx->cat, anti_row, &p, "SELECT "
						    "json_extract(record, '$.attached_host') FROM "
						    "records WHERE state = 1 AND name = ? AND uuid IS "
						    "NOT ? AND +datastore IN (SELECT name FROM "
						    "datastores)", "ss", p.anti_name, self_uuid)) < 0)
				goto out;
		}
	}
	if ((rc = vsm__lease_hosts_scan(ls, n_ls, (req->flags & VSM_PLACE_HOST_WATCH) != 0,
					hb_seen, &p)) < 0 ||
	    (rc = vsm__lease_acted_hosts(ctx->leases, &acted, &n_acted)) < 0)
		goto out;
	/* hb_seen indexed by lease area; map back to the datastores. */
	if (n_ls != p.n_ds) {
		for (i = 0; i < p.n; i++) {
			int *hb = p.h[i].hb;
			int64_t *st = p.h[i].stopped;
			size_t a = n_ls;

			for (j = p.n_ds; j-- > 0;) {
				if (!p.ds[j]->lease)
					continue;
				a--;
				hb[j] = hb[a];
				st[j] = st[a];
			}
		}
	}
	if ((rc = judge_hosts(&p, cands, (const char *const *)acted, n_acted)) < 0 ||
	    (rc = vsm__cand_filter(cands, p.n, req->filters, req->n_filters, false)) < 0 ||
	    (rc = vsm__cand_score(cands, p.n, req->weigher && !strcmp(req->weigher, "pack") ?
				  pack : spread, req->weighers, req->n_weighers, false)) < 0)
		goto out;
	rc = vsm__placement_build(out, cands, p.n);
out:
	vsm_strv_free(acted, n_acted);
	free(ls);
	phase2_free(&p, cands);
	return rc;
}

VSM_API int vsm_place_host_for(vsm_placement **out, vsm_ctx *ctx,
			       const char *const *datastores, size_t n_datastores,
			       const vsm_host_request *req)
{
	vsm_host_request defaults = VSM_HOST_REQUEST_INIT;
	int rc;

	vsm__error_reset();
	if (!out || !ctx || !datastores || !n_datastores)
		return vsm_err(VSM_EINVAL, "vsm_place_host_for: NULL argument or no datastore");
	if (!req)
		req = &defaults;
	if ((rc = request_check(req, false)) < 0)
		return rc;
	vsm__ctx_lock(ctx);
	rc = phase2_run(out, ctx, datastores, n_datastores, NULL, req);
	vsm__ctx_unlock(ctx);
	return rc;
}

static int place_container(vsm_placement **out, vsm_container *c, const vsm_host_request *req)
{
	vsm_ctx *ctx = vsm__container_ctx(c);
	const char *ds = vsm_container_datastore(c);
	int rc;

	if ((rc = request_check(req, true)) < 0)
		return rc;
	vsm__ctx_lock(ctx);
	rc = phase2_run(out, ctx, &ds, 1, vsm_container_uuid(c), req);
	if (rc < 0)
		vsm__error_prefix("container '%s'", vsm_container_name(c));
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_place_host(vsm_placement **out, vsm_container *c, const vsm_host_request *req)
{
	vsm_host_request defaults = VSM_HOST_REQUEST_INIT;

	vsm__error_reset();
	if (!out || !c)
		return vsm_err(VSM_EINVAL, "vsm_place_host: NULL argument");
	return place_container(out, c, req ? req : &defaults);
}

/* How many reasons an error message lists before "and N more". */
#define PICK_REASONS_MAX 16

int vsm__place_host_pick(char **host_out, vsm_container *c)
{
	vsm_host_request req = VSM_HOST_REQUEST_INIT;
	vsm_placement *p = NULL;
	char *msg = NULL;
	size_t len = 0, i, nr;
	FILE *f;
	int rc;

	/* A fresh context watches once, so that hosts alive elsewhere count. */
	req.flags = VSM_PLACE_HOST_WATCH;
	if ((rc = place_container(&p, c, &req)) < 0)
		return rc;
	if (vsm_placement_count(p) > 0) {
		rc = (*host_out = vsm__strdup(vsm_placement_name(p, 0))) ? 0 : -VSM_ENOMEM;
		vsm_placement_free(p);
		return rc;
	}
	nr = vsm_placement_rejected_count(p);
	if ((f = open_memstream(&msg, &len))) {
		for (i = 0; i < nr && i < PICK_REASONS_MAX; i++)
			fprintf(f, "%s host '%s': %s", i ? ";" : "", vsm_placement_rejected_name(p, i),
				vsm_placement_rejected_reason(p, i));
		if (nr > PICK_REASONS_MAX)
			fprintf(f, "; and %zu more", nr - PICK_REASONS_MAX);
		fclose(f);
	}
	if (nr)
		rc = vsm_err(VSM_ENOSPC, "container '%s': no host qualifies:%s",
			     vsm_container_name(c), msg ? msg : " (out of memory)");
	else
		rc = vsm_err(VSM_ENOSPC, "container '%s': no host is linked to datastore '%s'",
			     vsm_container_name(c), vsm_container_datastore(c));
	free(msg);
	vsm_placement_free(p);
	return rc;
}
