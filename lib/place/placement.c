/*
 * Placement: the answer object and the scoring both phases share.
 * Weighers are normalised as Nova's filter scheduler does: each one's raw
 * values are scaled to 0..1 over the candidates still kept, so that a
 * weigher measuring bytes and one counting containers can be added with
 * their multipliers and neither drowns the other.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "place_int.h"

int vsm__cand_reject(vsm__cand *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->reason)
		return 0;
	va_start(ap, fmt);
	n = vasprintf(&c->reason, fmt, ap);
	va_end(ap);
	if (n < 0) {
		c->reason = NULL;
		return -VSM_ENOMEM;
	}
	return 0;
}

int vsm__cand_filter(vsm__cand *cands, size_t n, const vsm_place_filter *const *filters,
		     size_t n_filters, bool ds_phase)
{
	char why[256];
	size_t i, f;
	int rc;

	for (f = 0; f < n_filters; f++) {
		const vsm_place_filter *flt = filters[f];

		if (!flt || flt->version < 1)
			return vsm_err(VSM_EINVAL, "placement filter %zu: NULL or version %u",
				       f, flt ? flt->version : 0);
		for (i = 0; i < n; i++) {
			if (cands[i].reason)
				continue;
			why[0] = '\0';
			if (ds_phase)
				rc = flt->datastore ? flt->datastore(cands[i].info, why, sizeof(why),
								     flt->payload) : 0;
			else
				rc = flt->host ? flt->host(cands[i].info, why, sizeof(why),
							   flt->payload) : 0;
			why[sizeof(why) - 1] = '\0';
			if (rc && vsm__cand_reject(&cands[i], "%s: %s", flt->name ? flt->name : "filter",
						   why[0] ? why : "rejected") < 0)
				return -VSM_ENOMEM;
		}
	}
	return 0;
}

/* Add one weigher's scaled values times @mult to the kept candidates. */
static void add_scaled(vsm__cand *cands, size_t n, const double *raw, double mult)
{
	double lo = INFINITY, hi = -INFINITY;
	size_t i;

	for (i = 0; i < n; i++) {
		if (cands[i].reason || !isfinite(raw[i]))
			continue;
		lo = raw[i] < lo ? raw[i] : lo;
		hi = raw[i] > hi ? raw[i] : hi;
	}
	for (i = 0; i < n; i++) {
		if (cands[i].reason || !isfinite(raw[i]))
			continue;
		/* All equal: the weigher cannot tell them apart. */
		cands[i].score += mult * (hi > lo ? (raw[i] - lo) / (hi - lo) : 0.0);
	}
}

int vsm__cand_score(vsm__cand *cands, size_t n, double (*builtin)(const vsm__cand *c),
		    const vsm_place_weigher *const *weighers, size_t n_weighers, bool ds_phase)
{
	double *raw;
	size_t i, w;

	if (!(raw = vsm__calloc(n ? n : 1, sizeof(*raw))))
		return -VSM_ENOMEM;
	for (i = 0; i < n; i++) {
		cands[i].score = 0;
		raw[i] = cands[i].reason ? 0 : builtin(&cands[i]);
	}
	add_scaled(cands, n, raw, 1.0);
	for (w = 0; w < n_weighers; w++) {
		const vsm_place_weigher *wt = weighers[w];
		double (*fn_ds)(const vsm_place_ds_info *, void *) = wt ? wt->datastore : NULL;
		double (*fn_host)(const vsm_place_host_info *, void *) = wt ? wt->host : NULL;

		if (!wt || wt->version < 1) {
			free(raw);
			return vsm_err(VSM_EINVAL, "placement weigher %zu: NULL or version %u",
				       w, wt ? wt->version : 0);
		}
		if (ds_phase ? !fn_ds : !fn_host)
			continue;
		for (i = 0; i < n; i++)
			raw[i] = cands[i].reason ? 0 :
				 ds_phase ? fn_ds(cands[i].info, wt->payload) :
					    fn_host(cands[i].info, wt->payload);
		add_scaled(cands, n, raw, wt->multiplier != 0 ? wt->multiplier : 1.0);
	}
	free(raw);
	return 0;
}

static int by_score(const void *a, const void *b)
{
	const vsm__cand *x = *(const vsm__cand *const *)a, *y = *(const vsm__cand *const *)b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int by_name(const void *a, const void *b)
{
	const vsm__cand *x = *(const vsm__cand *const *)a, *y = *(const vsm__cand *const *)b;

	return strcmp(x->name, y->name);
}

int vsm__placement_build(vsm_placement **out, const vsm__cand *cands, size_t n)
{
	const vsm__cand **kept = NULL, **rej = NULL;
	vsm_placement *p;
	size_t i, nk = 0, nr = 0;
	int rc = -VSM_ENOMEM;

	if (!(p = vsm__calloc(1, sizeof(*p))) ||
	    !(kept = vsm__calloc(n ? n : 1, sizeof(*kept))) ||
	    !(rej = vsm__calloc(n ? n : 1, sizeof(*rej))))
		goto fail;
	for (i = 0; i < n; i++) {
		if (cands[i].reason)
			rej[nr++] = &cands[i];
		else
			kept[nk++] = &cands[i];
	}
	qsort(kept, nk, sizeof(*kept), by_score);
	qsort(rej, nr, sizeof(*rej), by_name);
	if (!(p->names = vsm__calloc(nk ? nk : 1, sizeof(char *))) ||
	    !(p->scores = vsm__calloc(nk ? nk : 1, sizeof(double))) ||
	    !(p->available = vsm__calloc(nk ? nk : 1, sizeof(uint64_t))) ||
	    !(p->rej_names = vsm__calloc(nr ? nr : 1, sizeof(char *))) ||
	    !(p->rej_reasons = vsm__calloc(nr ? nr : 1, sizeof(char *))))
		goto fail;
	for (i = 0; i < nk; i++, p->n++) {
		if (!(p->names[i] = vsm__strdup(kept[i]->name)))
			goto fail;
		p->scores[i] = kept[i]->score;
		p->available[i] = kept[i]->available;
	}
	for (i = 0; i < nr; i++, p->n_rej++) {
		if (!(p->rej_names[i] = vsm__strdup(rej[i]->name)) ||
		    !(p->rej_reasons[i] = vsm__strdup(rej[i]->reason))) {
			free(p->rej_names[i]);
			goto fail;
		}
	}
	*out = p;
	p = NULL;
	rc = 0;
fail:
	free(kept);
	free(rej);
	vsm_placement_free(p);
	return rc;
}

void vsm__cands_free(vsm__cand *cands, size_t n)
{
	size_t i;

	for (i = 0; cands && i < n; i++) {
		free(cands[i].name);
		free(cands[i].reason);
	}
	free(cands);
}

size_t vsm_placement_count(const vsm_placement *p)
{
	return p ? p->n : 0;
}

const char *vsm_placement_name(const vsm_placement *p, size_t i)
{
	return p && i < p->n ? p->names[i] : NULL;
}

double vsm_placement_score(const vsm_placement *p, size_t i)
{
	return p && i < p->n ? p->scores[i] : 0.0;
}

uint64_t vsm_placement_available(const vsm_placement *p, size_t i)
{
	return p && i < p->n ? p->available[i] : 0;
}

size_t vsm_placement_rejected_count(const vsm_placement *p)
{
	return p ? p->n_rej : 0;
}

const char *vsm_placement_rejected_name(const vsm_placement *p, size_t i)
{
	return p && i < p->n_rej ? p->rej_names[i] : NULL;
}

const char *vsm_placement_rejected_reason(const vsm_placement *p, size_t i)
{
	return p && i < p->n_rej ? p->rej_reasons[i] : NULL;
}

void vsm_placement_free(vsm_placement *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->n; i++)
		free(p->names[i]);
	for (i = 0; i < p->n_rej; i++) {
		free(p->rej_names[i]);
		free(p->rej_reasons[i]);
	}
	free(p->names);
	free(p->scores);
	free(p->available);
	free(p->rej_names);
	free(p->rej_reasons);
	free(p);
}
