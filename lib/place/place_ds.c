/*
 * Placement phase 1: which datastore takes a new container
 * (vsm_place_datastore), and the reservation of its space there
 * (vsm_place_reserve). The figures come live from each datastore
 * (lib/ops/reserve.c), or with VSM_PLACE_CACHED from the catalog's
 * ds_space rows that the last live look recorded; the reservation itself
 * always checks live, under the datastore's metadata lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devimage.h"
#include "place_int.h"
#include "reserve.h"

#define DEFAULT_TTL_MS (10 * 60 * 1000)

/* One datastore being judged: its public view, and its uri. */
typedef struct {
	vsm_place_ds_info info;
	char *uri;
	bool cached;        /* a ds_space row was read */
	vsm__space sp;
} ds_view;

typedef struct {
	vsm__cand *cands;
	ds_view *views;
	size_t n, cap;
	const vsm_place_request *req;
	int rc;
} ds_list;

static bool wanted(const vsm_place_request *req, const char *name)
{
	size_t i;

	if (!req->datastores)
		return true;
	for (i = 0; i < req->n_datastores; i++)
		if (req->datastores[i] && !strcmp(req->datastores[i], name))
			return true;
	return false;
}

static uint64_t col_u64(const char *s)
{
	return s ? strtoull(s, NULL, 10) : 0;
}

/* One row: name, uri, then the ds_space columns (NULL when none). */
static int ds_row(void *payload, int ncol, const char *const *cols)
{
	ds_list *l = payload;
	ds_view *v;

	if (ncol < 9 || !cols[0] || !wanted(l->req, cols[0]))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		vsm__cand *c = realloc(l->cands, cap * sizeof(*c));

		if (c)
			l->cands = c;
		ds_view *w = c ? realloc(l->views, cap * sizeof(*w)) : NULL;

		if (!c || !w) {
			l->rc = vsm_err(VSM_ENOMEM, "out of memory");
			return 1;
		}
		l->views = w;
		l->cap = cap;
	}
	memset(&l->cands[l->n], 0, sizeof(l->cands[l->n]));
	v = &l->views[l->n];
	memset(v, 0, sizeof(*v));
	if (!(l->cands[l->n].name = vsm__strdup(cols[0])) ||
	    !(v->uri = vsm__strdup(cols[1] ? cols[1] : ""))) {
		free(l->cands[l->n].name);
		l->rc = -VSM_ENOMEM;
		return 1;
	}
	if (cols[2]) {
		v->cached = true;
		v->sp.total = col_u64(cols[2]);
		v->sp.free_bytes = col_u64(cols[3]);
		v->sp.reserved = col_u64(cols[4]);
		v->sp.committed = col_u64(cols[5]);
		v->sp.provisioned = col_u64(cols[6]);
		v->sp.containers = (size_t)col_u64(cols[7]);
		v->sp.caw = col_u64(cols[8]) != 0;
	}
	l->n++;
	return 0;
}

static bool needs_base(const vsm_place_request *req)
{
	size_t i;

	for (i = 0; i < req->n_devices; i++)
		if (req->devices[i]->base)
			return true;
	return false;
}

static int check_request(const vsm_place_request *req)
{
	size_t i;

	if (!req)
		return vsm_err(VSM_EINVAL, "placement: NULL request");
	if (req->version == 0 || req->version > VSM_PLACE_REQUEST_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_place_request version %u is not supported",
			       req->version);
	if (req->flags & ~(VSM_PLACE_THIN | VSM_PLACE_REQUIRE_CAW | VSM_PLACE_CACHED))
		return vsm_err(VSM_EINVAL, "placement: unknown flags 0x%x", req->flags);
	if (!req->devices || req->n_devices == 0 || req->n_devices > 64)
		return vsm_err(VSM_EINVAL, "placement: a request needs 1 to 64 devices");
	for (i = 0; i < req->n_devices; i++) {
		const vsm_device_spec *d = req->devices[i];

		if (!d || d->version == 0 || d->version > VSM_DEVICE_SPEC_VERSION)
			return vsm_err(VSM_EINVAL, "placement: device %zu is NULL or of an "
				       "unsupported version", i);
		if (d->size == 0 && !d->base)
			return vsm_err(VSM_EINVAL, "placement: device '%s' has size 0",
				       d->name ? d->name : "?");
	}
	if (req->datastores && req->n_datastores == 0)
		return vsm_err(VSM_EINVAL, "placement: an empty list of datastores");
	if (req->reservation_ttl_ms < 0)
		return vsm_err(VSM_EINVAL, "placement: negative reservation lifetime");
	return 0;
}

static double w_free(const vsm__cand *c)
{
	return (double)((const vsm_place_ds_info *)c->info)->available;
}

static double w_pack(const vsm__cand *c)
{
	return -(double)((const vsm_place_ds_info *)c->info)->available;
}

static double w_spread(const vsm__cand *c)
{
	return -(double)((const vsm_place_ds_info *)c->info)->containers;
}

/* Judge one datastore: its figures (live or cached), its base images,
 * and the built-in filters. @sizes: the request's device sizes, a size
 * 0 taken from the base image found there. */
static int judge(vsm_ctx *ctx, const vsm_place_request *req, vsm__cand *c, ds_view *v)
{
	uint64_t sizes[64];
	vsm_dstore *ds = NULL;
	bool thick = !(req->flags & VSM_PLACE_THIN);
	char why[256];
	size_t i;
	int rc;

	v->info.version = VSM_PLACE_DS_INFO_VERSION;
	v->info.name = c->name;
	v->info.uri = v->uri;
	v->info.holds_base = 1;
	for (i = 0; i < req->n_devices; i++)
		sizes[i] = req->devices[i]->size;
	if (!(req->flags & VSM_PLACE_CACHED) || !v->cached || needs_base(req)) {
		if ((rc = vsm__ds_get(&ds, ctx, c->name)) < 0) {
			if (rc == -VSM_ENOMEM)
				return rc;
			rc = vsm__cand_reject(c, "backend unreachable: %s", vsm_error_last()->message);
			vsm__error_reset();
			return rc;
		}
	}
	if (ds && (!(req->flags & VSM_PLACE_CACHED) || !v->cached)) {
		if ((rc = vsm__space_live(ctx, ds, &v->sp)) < 0) {
			if (rc == -VSM_ENOMEM)
				return rc;
			rc = vsm__cand_reject(c, "backend unreachable: %s", vsm_error_last()->message);
			vsm__error_reset();
			return rc;
		}
	}
	/* A base image is probed where it should be: the datastore that
	 * holds it is the one whose devices can stand on it. */
	for (i = 0; ds && i < req->n_devices; i++) {
		const vsm_device_spec *d = req->devices[i];
		vsm_rec_layer *chain = NULL;
		uint64_t bsize = 0;
		size_t n = 0;
		int fmt = 0;

		if (!d->base)
			continue;
		if (vsm__dev_probe(ds, d->base, NULL, &bsize, &fmt, &chain, &n) < 0) {
			vsm__error_reset();
			v->info.holds_base = 0;
			if ((rc = vsm__cand_reject(c, "does not hold base image '%s'", d->base)) < 0)
				return rc;
			continue;
		}
		vsm__layers_free(chain, n);
		if (sizes[i] < bsize)
			sizes[i] = bsize;
	}
	v->info.total = v->sp.total;
	v->info.free_bytes = v->sp.free_bytes;
	v->info.reserved = v->sp.reserved;
	v->info.committed = v->sp.committed;
	v->info.provisioned = v->sp.provisioned;
	v->info.available = vsm__space_available(&v->sp);
	v->info.containers = v->sp.containers;
	v->info.has_compare_and_write = v->sp.caw;
	v->info.need = vsm__space_need(thick, req->state_size, sizes, req->n_devices);
	c->available = v->info.available;
	c->info = &v->info;
	if ((req->flags & VSM_PLACE_REQUIRE_CAW) && !v->sp.caw &&
	    (rc = vsm__cand_reject(c, "no compare-and-write on its metadata device")) < 0)
		return rc;
	if (!vsm__space_fits(&v->sp, v->info.need, thick) &&
	    (rc = vsm__cand_reject(c, "%s", vsm__space_why(why, sizeof(why), &v->sp,
							     v->info.need, thick))) < 0)
		return rc;
	return 0;
}

static void list_free(ds_list *l)
{
	size_t i;

	for (i = 0; l->views && i < l->n; i++)
		free(l->views[i].uri);
	free(l->views);
	vsm__cands_free(l->cands, l->n);
	memset(l, 0, sizeof(*l));
}

/* Phase 1 into @l (ranked by the scores in l->cands). Context locked. */
static int rank(ds_list *l, vsm_ctx *ctx, const vsm_place_request *req)
{
	double (*builtin)(const vsm__cand *) = w_free;
	size_t i, j;
	int rc;

	memset(l, 0, sizeof(*l));
	l->req = req;
	if ((rc = check_request(req)) < 0)
		return rc;
	if (req->weigher && !strcmp(req->weigher, "pack"))
		builtin = w_pack;
	else if (req->weigher && !strcmp(req->weigher, "spread"))
		builtin = w_spread;
	else if (req->weigher && strcmp(req->weigher, "free") != 0)
		return vsm_err(VSM_EINVAL, "placement: unknown weigher '%s' (free, pack, spread)",
			       req->weigher);
	rc = vsm_catalog_query(ctx->cat, ds_row, l,
			       "SELECT d.name, d.uri, s.total, s.free, s.reserved, s.committed, "
			       "s.provisioned, s.containers, s.caw FROM datastores d LEFT JOIN "
			       "ds_space s ON s.datastore = d.name ORDER BY d.name", "");
	if (l->rc < 0)
		rc = l->rc;
	if (rc < 0)
		return rc;
	/* A datastore asked for by name that is not registered is named. */
	for (i = 0; req->datastores && i < req->n_datastores; i++) {
		for (j = 0; j < l->n && strcmp(l->cands[j].name, req->datastores[i]); j++)
			;
		if (j == l->n)
			return vsm_err(VSM_ENOTFOUND, "placement: datastore '%s' is not registered",
				       req->datastores[i] ? req->datastores[i] : "(null)");
	}
	/* The views do not move from here on: candidates point at them. */
	for (i = 0; i < l->n; i++)
		if ((rc = judge(ctx, req, &l->cands[i], &l->views[i])) < 0)
			return rc;
	if ((rc = vsm__cand_filter(l->cands, l->n, req->filters, req->n_filters, true)) < 0 ||
	    (rc = vsm__cand_score(l->cands, l->n, builtin, req->weighers, req->n_weighers,
				  true)) < 0)
		return rc;
	return 0;
}

VSM_API int vsm_place_datastore(vsm_placement **out, vsm_ctx *ctx, const vsm_place_request *req)
{
	ds_list l;
	int rc;

	vsm__error_reset();
	if (!out || !ctx)
		return vsm_err(VSM_EINVAL, "vsm_place_datastore: NULL argument");
	*out = NULL;
	vsm__ctx_lock(ctx);
	if ((rc = rank(&l, ctx, req)) == 0)
		rc = vsm__placement_build(out, l.cands, l.n);
	list_free(&l);
	vsm__ctx_unlock(ctx);
	return rc;
}

/* Append "; NAME: WHY" to *@msg. */
static int note(char **msg, const char *name, const char *why)
{
	char *grown;

	if (asprintf(&grown, "%s%s%s: %s", *msg ? *msg : "", *msg ? "; " : "", name, why) < 0)
		return -VSM_ENOMEM;
	free(*msg);
	*msg = grown;
	return 0;
}

static const ds_view *view_of(const ds_list *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->cands[i].name, name))
			return &l->views[i];
	return NULL;
}

int vsm__place_reserve(vsm_reservation **out, vsm_ctx *ctx, const char *name,
		       const vsm_place_request *req)
{
	vsm_placement *p = NULL;
	ds_list l;
	char *msg = NULL;
	bool thick;
	int64_t ttl;
	size_t i;
	int rc;

	*out = NULL;
	if ((rc = vsm__name_check("container", name)) < 0)
		return rc;
	vsm__ctx_lock(ctx);
	if ((rc = rank(&l, ctx, req)) < 0 || (rc = vsm__placement_build(&p, l.cands, l.n)) < 0)
		goto out;
	thick = !(req->flags & VSM_PLACE_THIN);
	ttl = req->reservation_ttl_ms ? req->reservation_ttl_ms : DEFAULT_TTL_MS;
	/* Best first; a datastore another placement filled meanwhile says
	 * so under its lock, and the next one is tried. */
	for (i = 0; i < p->n; i++) {
		const ds_view *v = view_of(&l, p->names[i]);

		rc = vsm__reserve(out, ctx, p->names[i], name, v->info.need, thick, ttl);
		if (rc == 0 || rc == -VSM_EEXISTS || rc == -VSM_ENOMEM)
			goto out;
		if ((rc = note(&msg, p->names[i], vsm_error_last()->message)) < 0)
			goto out;
		vsm__error_reset();
	}
	for (i = 0; i < p->n_rej; i++)
		if ((rc = note(&msg, p->rej_names[i], p->rej_reasons[i])) < 0)
			goto out;
	rc = vsm_err(VSM_ENOSPC, "no datastore can hold container '%s': %s", name,
		     msg ? msg : "no datastore is registered");
out:
	free(msg);
	vsm_placement_free(p);
	list_free(&l);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_place_reserve(vsm_reservation **out, vsm_ctx *ctx, const char *name,
			      const vsm_place_request *req)
{
	vsm__error_reset();
	if (!out || !ctx || !name)
		return vsm_err(VSM_EINVAL, "vsm_place_reserve: NULL argument");
	return vsm__place_reserve(out, ctx, name, req);
}
