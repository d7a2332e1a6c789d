/*
 * The executor: a run as a transaction. Each step is logged in the
 * catalog with its resolved args and what undo needs (pre) before its op
 * runs, and with its results after; a failure or a cancel undoes the
 * logged steps newest first. The log is what recovery (recover.c) reads
 * when the process died.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "flow.h"
#include "workflow.h"

int (*vsm__flow_test_fail)(const char *run_id, size_t step, const char *phase);

const char *const flow_state_names[] = {
	[FLOW_S_PENDING] = "pending", [FLOW_S_RUNNING] = "running", [FLOW_S_DONE] = "done",
	[FLOW_S_FAILED] = "failed",   [FLOW_S_UNDONE] = "undone",   [FLOW_S_SKIPPED] = "skipped",
};

int flow_state_parse(const char *s)
{
	int i;

	for (i = FLOW_S_PENDING; s && i <= FLOW_S_SKIPPED; i++)
		if (!strcmp(flow_state_names[i], s))
			return i;
	return -1;
}

int flow_exec_init(flow_exec *x, vsm_ctx *ctx, vsm_workflow *wf)
{
	size_t n = wf->n_steps;

	memset(x, 0, sizeof(*x));
	x->ctx = ctx;
	x->wf = wf;
	if (!(x->args = vsm__calloc(n, sizeof(*x->args))) ||
	    !(x->pre = vsm__calloc(n, sizeof(*x->pre))) ||
	    !(x->results = vsm__calloc(n, sizeof(*x->results))) ||
	    !(x->state = vsm__calloc(n, sizeof(*x->state)))) {
		flow_exec_free(x);
		return -VSM_ENOMEM;
	}
	return 0;
}

void flow_exec_free(flow_exec *x)
{
	size_t i;

	for (i = 0; x->wf && i < x->wf->n_steps; i++) {
		if (x->args)
			json_object_put(x->args[i]);
		if (x->pre)
			json_object_put(x->pre[i]);
		if (x->results)
			json_object_put(x->results[i]);
	}
	free(x->args);
	free(x->pre);
	free(x->results);
	free(x->state);
	json_object_put(x->params);
	x->args = x->pre = x->results = NULL;
	x->state = NULL;
	x->params = NULL;
}

static const char *text(json_object *o)
{
	return o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
}

static int log_step(flow_exec *x, size_t i, const char *error)
{
	return vsm_catalog_exec(x->ctx->cat, "UPDATE flow_steps SET state = ?, args = ?, pre = ?, "
				"result = ?, error = ? WHERE run = ? AND idx = ?", "ssssssi",
				flow_state_names[x->state[i]], text(x->args[i]), text(x->pre[i]),
				text(x->results[i]), error, x->id, (int64_t)i);
}

int flow_log_run(flow_exec *x, const char *state, const char *error, bool end)
{
	if (end)
		return vsm_catalog_exec(x->ctx->cat, "UPDATE flow_runs SET state = ?, error = "
					"COALESCE(?, error), ended = ? WHERE id = ?", "ssis", state,
					error, (int64_t)time(NULL), x->id);
	return vsm_catalog_exec(x->ctx->cat, "UPDATE flow_runs SET state = ?, error = "
				"COALESCE(?, error) WHERE id = ?", "sss", state, error, x->id);
}

static int progress(flow_exec *x, size_t i, const char *event)
{
	if (!x->progress)
		return 0;
	return x->progress(x->id, i, x->wf->n_steps, x->wf->steps[i].id, event, x->opaque);
}

/* A cancel asked for by vsm_run_cancel() (any process). */
static bool cancel_asked(flow_exec *x)
{
	int64_t n = 0;

	return vsm_catalog_count(x->ctx->cat, &n, "SELECT 1 FROM flow_runs WHERE id = ? AND "
				 "cancel != 0", "s", x->id) == 0 && n > 0;
}

/* Past a step that cannot be undone nothing is rolled back. */
static bool past_no_return(const flow_exec *x)
{
	size_t i;

	for (i = 0; i < x->wf->n_steps; i++)
		if ((x->state[i] == FLOW_S_DONE || x->state[i] == FLOW_S_RUNNING) &&
		    !flow_step_undoable(&x->wf->steps[i]))
			return true;
	return false;
}

/* Run step @i: resolve, log as running, run, log as done. On failure,
 * *@in_flight says whether the op's effect may be there (the test hook
 * after it). */
static int run_step(flow_exec *x, size_t i, bool again, bool *in_flight)
{
	const flow_step *s = &x->wf->steps[i];
	char where[96];
	json_object *result = NULL;
	int rc;

	*in_flight = false;
	if (!again) {
		snprintf(where, sizeof(where), "steps[%zu].args", i);
		json_object_put(x->args[i]);
		x->args[i] = NULL;
		json_object_put(x->pre[i]);
		x->pre[i] = NULL;
		if ((rc = flow_args_resolve(x->wf, s->op, s->args, x->params, x->results, where,
					    &x->args[i])) < 0)
			return rc;
		if (s->op->pre && (rc = s->op->pre(s->op, x->ctx, x->args[i], &x->pre[i])) < 0)
			return rc;
	}
	/* The undo's facts are in the catalog before anything changes. */
	x->state[i] = FLOW_S_RUNNING;
	if ((rc = log_step(x, i, NULL)) < 0) {
		x->state[i] = FLOW_S_PENDING;
		return rc;
	}
	if (vsm__flow_test_fail && (rc = vsm__flow_test_fail(x->id, i, "before")) < 0) {
		x->state[i] = FLOW_S_PENDING;
		log_step(x, i, NULL);
		return vsm_err(-rc, "injected failure before the op");
	}
	rc = s->op->run(s->op, x->ctx, x->args[i], x->pre[i], again, &result);
	if (rc == 0 && vsm__flow_test_fail && (rc = vsm__flow_test_fail(x->id, i, "after")) < 0) {
		json_object_put(result);
		*in_flight = true;
		return vsm_err(-rc, "injected failure after the op");
	}
	if (rc < 0) {
		json_object_put(result);
		x->state[i] = FLOW_S_PENDING;
		return rc;
	}
	x->results[i] = result ? result : json_object_new_object();
	x->state[i] = FLOW_S_DONE;
	return log_step(x, i, NULL);
}

/* Roll the run back as cancelled (by vsm_run_cancel() or the progress
 * callback), @when "before" or "after" step @s. */
static int cancel(flow_exec *x, const char *when, const flow_step *s)
{
	vsm__saved_error saved;
	int rc;

	rc = vsm_err(VSM_ECANCELED, "run '%s' of template '%s' was cancelled %s step '%s'",
		     x->id, x->wf->name, when, s->id);
	vsm__error_save(&saved);
	flow_exec_rollback(x, "cancelled");
	vsm__error_restore(&saved);
	return rc;
}

int flow_exec_forward(flow_exec *x, size_t from, bool again)
{
	vsm__saved_error saved;
	size_t i;
	int rc = 0;

	for (i = from; i < x->wf->n_steps; i++) {
		const flow_step *s = &x->wf->steps[i];
		bool in_flight = false, stop;
		char msg[1024];

		/* Every step is announced; past a step that cannot be undone
		 * a cancel is not honoured (the run can only go forward). */
		stop = progress(x, i, "step") != 0;
		if (!past_no_return(x) && (stop || cancel_asked(x)))
			return cancel(x, "before", s);
		if ((rc = run_step(x, i, again && i == from, &in_flight)) == 0) {
			/* A cancel from the callback after the last step still
			 * rolls back: the run is not "done" until logged so. */
			if (progress(x, i, "done") && !past_no_return(x))
				return cancel(x, "after", s);
			continue;
		}
		snprintf(msg, sizeof(msg), "%s", vsm_error_last() && vsm_error_last()->message ?
			 vsm_error_last()->message : vsm_strerror(rc));
		if (!in_flight)
			x->state[i] = FLOW_S_FAILED;
		log_step(x, i, msg);
		if (progress(x, i, "failed") && s->keep_going && !past_no_return(x))
			return cancel(x, "after", s);
		if (s->keep_going) {
			/* Allowed to fail: the run goes on, the log keeps why. */
			vsm__log(x->ctx, VSM_LOG_WARN, "run '%s': step '%s' (%s) failed and the run "
				 "goes on (on_error continue): %s", x->id, s->id, s->op_name, msg);
			if (in_flight) {
				x->state[i] = FLOW_S_FAILED;
				log_step(x, i, msg);
			}
			vsm__error_reset();
			rc = 0;
			continue;
		}
		vsm__error_prefix("template '%s', step '%s' (%s)", x->wf->name, s->id, s->op_name);
		vsm__error_save(&saved);
		flow_log_run(x, "rolling-back", vsm_error_last() ? vsm_error_last()->message : msg,
			     false);
		flow_exec_rollback(x, "rolled-back");
		vsm__error_restore(&saved);
		return rc;
	}
	if ((rc = flow_log_run(x, "done", NULL, true)) < 0)
		return rc;
	return 0;
}

/* Undo step @i (done, or in flight when its result is NULL). */
static int undo_step_once(flow_exec *x, size_t i)
{
	const flow_step *s = &x->wf->steps[i];
	json_object *cargs = NULL, *res = NULL;
	char where[96];
	int rc;

	if (s->comp && x->results[i]) {
		snprintf(where, sizeof(where), "steps[%zu].compensate.args", i);
		if ((rc = flow_args_resolve(x->wf, s->comp, s->comp_args, x->params, x->results,
					    where, &cargs)) < 0)
			return rc;
		rc = s->comp->run(s->comp, x->ctx, cargs, NULL, false, &res);
		json_object_put(cargs);
		json_object_put(res);
		return rc;
	}
	if (s->op->undo)
		return s->op->undo(s->op, x->ctx, x->args[i], x->pre[i],
				   x->state[i] == FLOW_S_DONE ? x->results[i] : NULL);
	/* In flight with only a compensate, which needs the results: the op
	 * failed or never ran as far as the log can tell. */
	return 0;
}

/*
 * An undo that met a record another process (or this context's own
 * lease work) changed between its read and its write is refused with
 * -VSM_EBUSY and "try again": it is, a few times. Undos are written to
 * be run twice, so a retry is safe.
 */
static int undo_step(flow_exec *x, size_t i)
{
	int rc, tries;

	for (tries = 0;; tries++) {
		rc = undo_step_once(x, i);
		if (rc != -VSM_EBUSY || tries >= 4)
			return rc;
		vsm__log(x->ctx, VSM_LOG_INFO, "run '%s': undo of step '%s' meets a busy object; "
			 "trying again: %s", x->id, x->wf->steps[i].id,
			 vsm_error_last() && vsm_error_last()->message ?
			 vsm_error_last()->message : vsm_strerror(rc));
		vsm__error_reset();
	}
}

int flow_exec_rollback(flow_exec *x, const char *final)
{
	vsm__saved_error saved;
	size_t i;
	int rc;

	vsm__error_save(&saved);
	flow_log_run(x, "rolling-back", NULL, false);
	for (i = x->wf->n_steps; i-- > 0;) {
		if (x->state[i] != FLOW_S_DONE && x->state[i] != FLOW_S_RUNNING)
			continue;
		progress(x, i, "undo");
		if ((rc = undo_step(x, i)) < 0) {
			char msg[1024];

			snprintf(msg, sizeof(msg), "undo failed: %s", vsm_error_last() &&
				 vsm_error_last()->message ? vsm_error_last()->message :
				 vsm_strerror(rc));
			log_step(x, i, msg);
			vsm__log(x->ctx, VSM_LOG_ERROR, "run '%s': undo of step '%s' failed; the "
				 "run stays rolling-back for vsm_workflow_recover(): %s", x->id,
				 x->wf->steps[i].id, msg);
			/* Ended: this call is done with it, recovery may retry.
			 * The undo's error is the one to report (recovery logs
			 * it); the one before the rollback is dropped. */
			flow_log_run(x, "rolling-back", NULL, true);
			vsm__error_restore(&saved);
			vsm_err(-rc, "%s", msg);
			return rc;
		}
		x->state[i] = FLOW_S_UNDONE;
		log_step(x, i, NULL);
		progress(x, i, "undone");
	}
	for (i = 0; i < x->wf->n_steps; i++)
		if (x->state[i] == FLOW_S_PENDING) {
			x->state[i] = FLOW_S_SKIPPED;
			log_step(x, i, NULL);
		}
	rc = flow_log_run(x, final, NULL, true);
	vsm__error_restore(&saved);
	return rc;
}

/* The run row and a pending row per step, in one transaction. */
static int log_start_locked(flow_exec *x, const char *params)
{
	char owner[128];
	size_t i;
	int rc;

	vsm__wf_owner(x->ctx, owner, sizeof(owner));
	if ((rc = vsm_catalog_begin(x->ctx->cat)) < 0)
		return rc;
	rc = vsm_catalog_exec(x->ctx->cat, "INSERT INTO flow_runs(id, seq, template, doc, params, "
			      "state, owner, started) VALUES(?1, (SELECT COALESCE(MAX(seq), 0) + 1 "
			      "FROM flow_runs), ?2, ?3, ?4, 'running', ?5, ?6)", "sssssi", x->id,
			      x->wf->name, x->wf->text, params, owner, (int64_t)time(NULL));
	for (i = 0; rc == 0 && i < x->wf->n_steps; i++)
		rc = vsm_catalog_exec(x->ctx->cat, "INSERT INTO flow_steps(run, idx, id, op, state) "
				      "VALUES(?, ?, ?, ?, 'pending')", "siss", x->id, (int64_t)i,
				      x->wf->steps[i].id, x->wf->steps[i].op_name);
	if (rc < 0) {
		vsm_catalog_rollback(x->ctx->cat);
		return rc;
	}
	return vsm_catalog_commit(x->ctx->cat);
}

/* Under the context's lock: a transaction on the catalog's connection
 * would take in the statements of another thread of this context. */
static int log_start(flow_exec *x, const char *params)
{
	int rc;

	vsm__ctx_lock(x->ctx);
	rc = log_start_locked(x, params);
	vsm__ctx_unlock(x->ctx);
	return rc;
}

VSM_API int vsm_workflow_run(vsm_workflow *wf, const vsm_workflow_run_opts *opts, char *run_id)
{
	flow_exec x;
	int rc;

	vsm__error_reset();
	if (!wf)
		return vsm_err(VSM_EINVAL, "vsm_workflow_run: wf is NULL");
	if (opts && opts->version != VSM_WORKFLOW_RUN_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_workflow_run_opts: version %u is unknown (this "
			       "library knows %u)", opts->version, VSM_WORKFLOW_RUN_OPTS_VERSION);
	if (opts && opts->flags)
		return vsm_err(VSM_EINVAL, "vsm_workflow_run: unknown flags 0x%x", opts->flags);
	if (opts && opts->n_params && !opts->params)
		return vsm_err(VSM_EINVAL, "vsm_workflow_run: n_params without params");
	if ((rc = flow_exec_init(&x, wf->ctx, wf)) < 0)
		return rc;
	if ((rc = flow_params_resolve(wf, opts ? opts->params : NULL, opts ? opts->n_params : 0,
				      &x.params)) < 0)
		goto out;
	vsm__uuid_new(x.id);
	x.progress = opts ? opts->progress : NULL;
	x.opaque = opts ? opts->opaque : NULL;
	if ((rc = log_start(&x, text(x.params))) < 0)
		goto out;
	if (run_id)
		memcpy(run_id, x.id, sizeof(x.id));
	vsm__log(wf->ctx, VSM_LOG_INFO, "run '%s' of template '%s' begins (%zu steps)", x.id,
		 wf->name, wf->n_steps);
	rc = flow_exec_forward(&x, 0, false);
out:
	flow_exec_free(&x);
	return rc;
}
