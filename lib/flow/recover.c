/*
 * Runs a dead process left behind, rebuilt from the run log and rolled
 * back (or, past a step that cannot be undone, finished forward); cancel;
 * and the run handles of the public API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "flow.h"
#include "workflow.h"

/* --- reading the log --- */

typedef struct {
	char *id, *op, *state, *args, *pre, *result, *error;
} step_row;

struct vsm_run {
	char *id, *template, *doc, *params, *state, *owner, *error;
	int64_t started, ended;
	step_row *steps;
	size_t n_steps;
};

static void step_row_free(step_row *s)
{
	free(s->id);
	free(s->op);
	free(s->state);
	free(s->args);
	free(s->pre);
	free(s->result);
	free(s->error);
}

VSM_API void vsm_run_free(vsm_run *run)
{
	size_t i;

	if (!run)
		return;
	free(run->id);
	free(run->template);
	free(run->doc);
	free(run->params);
	free(run->state);
	free(run->owner);
	free(run->error);
	for (i = 0; i < run->n_steps; i++)
		step_row_free(&run->steps[i]);
	free(run->steps);
	free(run);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

typedef struct {
	vsm_run **v;
	size_t n;
} run_list;

static int run_row(void *payload, int ncol, const char *const *c)
{
	run_list *l = payload;
	vsm_run *r = calloc(1, sizeof(*r)), **grown;

	(void)ncol;
	if (!r || !(grown = realloc(l->v, (l->n + 1) * sizeof(*grown)))) {
		free(r);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	l->v = grown;
	l->v[l->n++] = r;
	r->id = dup_or_null(c[0]);
	r->template = dup_or_null(c[1]);
	r->doc = dup_or_null(c[2]);
	r->params = dup_or_null(c[3]);
	r->state = dup_or_null(c[4]);
	r->owner = dup_or_null(c[5]);
	r->started = c[6] ? strtoll(c[6], NULL, 10) : 0;
	r->ended = c[7] ? strtoll(c[7], NULL, 10) : 0;
	r->error = dup_or_null(c[8]);
	if (!r->id || !r->template || !r->doc || !r->params || !r->state || !r->owner)
		return vsm_err(VSM_ENOMEM, "out of memory");
	return 0;
}

static int step_row_cb(void *payload, int ncol, const char *const *c)
{
	vsm_run *r = payload;
	step_row *grown = realloc(r->steps, (r->n_steps + 1) * sizeof(*grown)), *s;

	(void)ncol;
	if (!grown)
		return vsm_err(VSM_ENOMEM, "out of memory");
	r->steps = grown;
	s = &r->steps[r->n_steps++];
	s->id = dup_or_null(c[0]);
	s->op = dup_or_null(c[1]);
	s->state = dup_or_null(c[2]);
	s->args = dup_or_null(c[3]);
	s->pre = dup_or_null(c[4]);
	s->result = dup_or_null(c[5]);
	s->error = dup_or_null(c[6]);
	if (!s->id || !s->op || !s->state)
		return vsm_err(VSM_ENOMEM, "out of memory");
	return 0;
}

#define RUN_COLS "id, template, doc, params, state, owner, started, ended, error"

/* Runs matching @where (SQL after WHERE, one optional text argument). */
static int load_runs(vsm_ctx *ctx, run_list *l, const char *where, const char *arg)
{
	char sql[256];
	size_t i;
	int rc;

	l->v = NULL;
	l->n = 0;
	snprintf(sql, sizeof(sql), "SELECT " RUN_COLS " FROM flow_runs WHERE %s ORDER BY seq",
		 where);
	rc = arg ? vsm_catalog_query(ctx->cat, run_row, l, sql, "s", arg)
		 : vsm_catalog_query(ctx->cat, run_row, l, sql, NULL);
	for (i = 0; rc == 0 && i < l->n; i++)
		rc = vsm_catalog_query(ctx->cat, step_row_cb, l->v[i], "SELECT id, op, state, "
				       "args, pre, result, error FROM flow_steps WHERE run = ? "
				       "ORDER BY idx", "s", l->v[i]->id);
	if (rc < 0) {
		for (i = 0; i < l->n; i++)
			vsm_run_free(l->v[i]);
		free(l->v);
		l->v = NULL;
		l->n = 0;
	}
	return rc;
}

static void runs_free(run_list *l)
{
	vsm_run_list_free(l->v, l->n);
}

/* --- recovery --- */

static json_object *parse_or_null(const char *s)
{
	return s ? json_tokener_parse(s) : NULL;
}

/* Take the run over from its dead owner, unless another process got
 * there first. */
static int claim_locked(vsm_ctx *ctx, const vsm_run *r, bool *got)
{
	char mine[128];
	int64_t n = 0;
	int rc;

	*got = false;
	vsm__wf_owner(ctx, mine, sizeof(mine));
	if ((rc = vsm_catalog_begin(ctx->cat)) < 0)
		return rc;
	if ((rc = vsm_catalog_count(ctx->cat, &n, "SELECT 1 FROM flow_runs WHERE id = ? AND "
				    "owner = ?", "ss", r->id, r->owner)) == 0 && n)
		rc = vsm_catalog_exec(ctx->cat, "UPDATE flow_runs SET owner = ? WHERE id = ?", "ss",
				      mine, r->id);
	if (rc < 0) {
		vsm_catalog_rollback(ctx->cat);
		return rc;
	}
	*got = n > 0;
	return vsm_catalog_commit(ctx->cat);
}

/* Under the context's lock: a transaction on the catalog's connection
 * would take in the statements of another thread of this context. */
static int claim(vsm_ctx *ctx, const vsm_run *r, bool *got)
{
	int rc;

	vsm__ctx_lock(ctx);
	rc = claim_locked(ctx, r, got);
	vsm__ctx_unlock(ctx);
	return rc;
}

/* Finish one run from its log. */
static int finish(vsm_ctx *ctx, const vsm_run *r)
{
	vsm_workflow *wf = NULL;
	flow_exec x;
	size_t i, from;
	long pivot = -1;
	int rc;

	bool got = false;

	/* Parsed before it is claimed: a run whose ops are not registered
	 * yet stays its dead owner's, for whoever registers them. */
	if ((rc = vsm_workflow_parse(&wf, ctx, r->doc, r->template)) < 0)
		return rc;
	if ((rc = claim(ctx, r, &got)) < 0 || !got) {
		vsm_workflow_free(wf);
		vsm__error_reset();
		return 0;
	}
	if (wf->n_steps != r->n_steps) {
		vsm_workflow_free(wf);
		return vsm_err(VSM_ECORRUPT, "run '%s': its log has %zu steps, its template %zu",
			       r->id, r->n_steps, wf->n_steps);
	}
	if ((rc = flow_exec_init(&x, ctx, wf)) < 0) {
		vsm_workflow_free(wf);
		return rc;
	}
	memcpy(x.id, r->id, sizeof(x.id) - 1);
	x.params = parse_or_null(r->params);
	for (i = 0; i < r->n_steps; i++) {
		int st = flow_state_parse(r->steps[i].state);

		if (st < 0 || strcmp(r->steps[i].op, wf->steps[i].op_name)) {
			rc = vsm_err(VSM_ECORRUPT, "run '%s': step %zu of its log is damaged", r->id,
				     i);
			goto out;
		}
		x.state[i] = (flow_state)st;
		x.args[i] = parse_or_null(r->steps[i].args);
		x.pre[i] = parse_or_null(r->steps[i].pre);
		x.results[i] = parse_or_null(r->steps[i].result);
		if ((st == FLOW_S_DONE || st == FLOW_S_RUNNING) && !flow_step_undoable(&wf->steps[i]))
			pivot = (long)i;
	}
	if (!strcmp(r->state, "rolling-back") || pivot < 0) {
		int64_t cancelled = 0;

		if (!r->error)
			flow_log_run(&x, "rolling-back", "the process running it died; the next "
				     "context rolled it back", false);
		vsm_catalog_count(ctx->cat, &cancelled, "SELECT 1 FROM flow_runs WHERE id = ? AND "
				  "cancel != 0", "s", r->id);
		rc = flow_exec_rollback(&x, cancelled ? "cancelled" : "rolled-back");
		if (rc == 0)
			vsm__log(ctx, VSM_LOG_INFO, "run '%s' of template '%s', left by a process "
				 "that died, is rolled back", r->id, r->template);
		goto out;
	}
	/* Past its point of no return: forward. An in-flight step that can
	 * be undone is undone first and run again; the one that cannot is
	 * run again as it is. */
	for (from = 0; from < wf->n_steps && (x.state[from] == FLOW_S_DONE ||
					      x.state[from] == FLOW_S_FAILED); from++)
		;
	if (from < wf->n_steps && x.state[from] == FLOW_S_RUNNING &&
	    flow_step_undoable(&wf->steps[from])) {
		json_object_put(x.results[from]);
		x.results[from] = NULL;
		if (wf->steps[from].op->undo &&
		    (rc = wf->steps[from].op->undo(wf->steps[from].op, ctx, x.args[from],
						   x.pre[from], NULL)) < 0)
			goto out;
		x.state[from] = FLOW_S_PENDING;
	}
	rc = flow_exec_forward(&x, from, from < wf->n_steps && x.state[from] == FLOW_S_RUNNING);
	if (rc == 0)
		vsm__log(ctx, VSM_LOG_INFO, "run '%s' of template '%s', left by a process that died "
			 "past a step that cannot be undone, is finished", r->id, r->template);
out:
	flow_exec_free(&x);
	vsm_workflow_free(wf);
	return rc;
}

int flow_recover(vsm_ctx *ctx, const char *only_id)
{
	run_list l;
	char mine[128];
	size_t i;
	int rc, left = 0;

	vsm__wf_owner(ctx, mine, sizeof(mine));
	if ((rc = load_runs(ctx, &l, only_id ? "id = ? AND state IN ('running', 'rolling-back')"
					     : "state IN ('running', 'rolling-back')",
			    only_id)) < 0)
		return rc;
	for (i = 0; i < l.n; i++) {
		vsm_run *r = l.v[i];

		/* A live process runs it still; so may another call of this
		 * one, unless the call ended with its rollback unfinished. */
		if (vsm__wf_owner_alive(r->owner) && !(!strcmp(r->owner, mine) && r->ended))
			continue;
		if ((rc = finish(ctx, r)) < 0) {
			vsm__log(ctx, VSM_LOG_WARN, "run '%s' of template '%s' cannot be finished "
				 "yet: %s", r->id, r->template, vsm_error_last() &&
				 vsm_error_last()->message ? vsm_error_last()->message : "?");
			left++;
		}
	}
	runs_free(&l);
	vsm__error_reset();
	return left;
}

VSM_API int vsm_workflow_recover(vsm_ctx *ctx)
{
	vsm__error_reset();
	if (!ctx)
		return vsm_err(VSM_EINVAL, "vsm_workflow_recover: ctx is NULL");
	return flow_recover(ctx, NULL);
}

VSM_API int vsm_run_cancel(vsm_ctx *ctx, const char *id)
{
	vsm_run *r = NULL;
	int rc;

	vsm__error_reset();
	if (!ctx || !id)
		return vsm_err(VSM_EINVAL, "vsm_run_cancel: ctx and id are required");
	if ((rc = vsm_run_lookup(&r, ctx, id)) < 0)
		return rc;
	if (strcmp(r->state, "running") && strcmp(r->state, "rolling-back")) {
		rc = vsm_err(VSM_ESTATE, "run '%s' has ended (%s)", id, r->state);
		vsm_run_free(r);
		return rc;
	}
	rc = vsm_catalog_exec(ctx->cat, "UPDATE flow_runs SET cancel = 1 WHERE id = ?", "s", id);
	if (rc == 0 && !vsm__wf_owner_alive(r->owner)) {
		/* Nobody will notice the flag: do it now. */
		rc = flow_recover(ctx, id);
		rc = rc > 0 ? vsm_err(VSM_ESTATE, "run '%s' cannot be rolled back yet (see the "
				      "log)", id) : rc;
	}
	vsm_run_free(r);
	return rc;
}

/* --- handles --- */

VSM_API int vsm_run_lookup(vsm_run **out, vsm_ctx *ctx, const char *id)
{
	run_list l;
	int rc;

	vsm__error_reset();
	if (!out || !ctx || !id)
		return vsm_err(VSM_EINVAL, "vsm_run_lookup: out, ctx and id are required");
	*out = NULL;
	if ((rc = load_runs(ctx, &l, "id = ?", id)) < 0)
		return rc;
	if (!l.n) {
		free(l.v);
		return vsm_err(VSM_ENOTFOUND, "no workflow run '%s'", id);
	}
	*out = l.v[0];
	free(l.v);
	return 0;
}

VSM_API int vsm_run_list(vsm_run ***out, size_t *count, vsm_ctx *ctx)
{
	run_list l;
	int rc;

	vsm__error_reset();
	if (!out || !count || !ctx)
		return vsm_err(VSM_EINVAL, "vsm_run_list: out, count and ctx are required");
	*out = NULL;
	*count = 0;
	if ((rc = load_runs(ctx, &l, "1", NULL)) < 0)
		return rc;
	*out = l.v;
	*count = l.n;
	return 0;
}

VSM_API void vsm_run_list_free(vsm_run **list, size_t count)
{
	size_t i;

	for (i = 0; list && i < count; i++)
		vsm_run_free(list[i]);
	free(list);
}

VSM_API const char *vsm_run_id(const vsm_run *run)
{
	return run ? run->id : NULL;
}

VSM_API const char *vsm_run_template(const vsm_run *run)
{
	return run ? run->template : NULL;
}

VSM_API const char *vsm_run_state(const vsm_run *run)
{
	return run ? run->state : NULL;
}

VSM_API const char *vsm_run_params(const vsm_run *run)
{
	return run ? run->params : NULL;
}

VSM_API const char *vsm_run_error(const vsm_run *run)
{
	return run ? run->error : NULL;
}

VSM_API int64_t vsm_run_started(const vsm_run *run)
{
	return run ? run->started : 0;
}

VSM_API int64_t vsm_run_ended(const vsm_run *run)
{
	return run ? run->ended : 0;
}

VSM_API size_t vsm_run_step_count(const vsm_run *run)
{
	return run ? run->n_steps : 0;
}

#define STEP_FIELD(fn, field)                                        \
	VSM_API const char *fn(const vsm_run *run, size_t i)           \
	{                                                              \
		return run && i < run->n_steps ? run->steps[i].field : NULL; \
	}

STEP_FIELD(vsm_run_step_id, id)
STEP_FIELD(vsm_run_step_op, op)
STEP_FIELD(vsm_run_step_state, state)
STEP_FIELD(vsm_run_step_args, args)
STEP_FIELD(vsm_run_step_result, result)
STEP_FIELD(vsm_run_step_error, error)
