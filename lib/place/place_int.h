/*
 * Placement (include/vsm/placement.h): what its two phases share, the
 * ranked answer (vsm_placement) and the scoring of candidates. The place
 * layer sits above ops (it reserves through lib/ops/reserve.h) and beside
 * checkpoints; ops reaches it only through the hooks lib/open.c sets
 * (vsm_container_create and vsm_attach with their PLACE flags).
 */
#ifndef VSM_PLACE_INT_H
#define VSM_PLACE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "vsm/placement.h"

/* One candidate of a phase, while it is being judged. */
typedef struct {
	char *name;
	char *reason;   /* NULL while kept; set once rejected */
	double score;
	uint64_t available;
	const void *info; /* the phase's vsm_place_ds_info / vsm_place_host_info */
} vsm__cand;

struct vsm_placement {
	char **names;     /* ranked, best first */
	double *scores;
	uint64_t *available;
	size_t n;
	char **rej_names; /* sorted by name */
	char **rej_reasons;
	size_t n_rej;
};

/* Reject @c with a printf-style reason (the first reason wins). */
int vsm__cand_reject(vsm__cand *c, const char *fmt, ...) VSM_PRINTF(2, 3);

/* Run the caller's filters on the kept candidates: @ds_phase picks the
 * callback (datastore or host). */
int vsm__cand_filter(vsm__cand *cands, size_t n, const vsm_place_filter *const *filters,
		     size_t n_filters, bool ds_phase);

/* Score the kept candidates: each weigher's raw values are scaled to 0..1
 * over the kept candidates, multiplied and summed. @builtin gives the
 * built-in weigher's raw value of a candidate (higher is better). */
int vsm__cand_score(vsm__cand *cands, size_t n, double (*builtin)(const vsm__cand *c),
		    const vsm_place_weigher *const *weighers, size_t n_weighers, bool ds_phase);

/* Build the answer: kept candidates ranked by score (ties by name),
 * rejected ones sorted by name. Frees nothing of @cands. */
int vsm__placement_build(vsm_placement **out, const vsm__cand *cands, size_t n);

void vsm__cands_free(vsm__cand *cands, size_t n);

/* vsm_place_reserve without its argument checks: the hook lib/open.c
 * sets as ctx->place_reserve (place_ds.c). */
int vsm__place_reserve(vsm_reservation **out, vsm_ctx *ctx, const char *name,
		       const vsm_place_request *req);

#endif /* VSM_PLACE_INT_H */
