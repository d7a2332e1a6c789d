/*
 * libvsm - workflow templates: declarative, parameterised sequences of
 * libvsm operations that run as one transaction (doc/workflows.md).
 *
 * A template is JSON: a name, typed parameters with defaults, and steps,
 * each one operation ("container.create", "container.attach", ...) whose
 * arguments may name parameters (${param.NAME}) and results of earlier
 * steps (${steps.ID.FIELD}). A run records each step's undo in the
 * context's catalog before the step runs; a failure, a cancel, or the
 * death of the process at any point ends with every step done or every
 * completed step undone (the next context decides for a dead owner).
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_WORKFLOW_H
#define VSM_WORKFLOW_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "context.h"

VSM_BEGIN_DECL

/** A parsed and validated template. Since: 0.2 */
typedef struct vsm_workflow vsm_workflow;

/**
 * Parse and validate template @json. Everything that can be checked
 * before a run is: the shape, parameter types and defaults, that every
 * op is known (built in or registered on @ctx), argument names and
 * literal types, required arguments, that every reference names a
 * declared parameter or a result field of an earlier step, and that a
 * step that cannot be undone is followed only by steps with
 * "on_error": "continue". A refusal's message starts with the path of
 * the offending field ("steps[1].args.container: ..."), after
 * "@origin: " when @origin is given.
 *
 * @origin: names the text in messages (a file name); may be NULL
 * Returns 0, -VSM_EINVAL (the message says what and where), -VSM_ENOMEM.
 * Since: 0.2
 */
VSM_API int vsm_workflow_parse(vsm_workflow **out, vsm_ctx *ctx, const char *json,
			       const char *origin);

/** vsm_workflow_parse() of the file at @path. Since: 0.2 */
VSM_API int vsm_workflow_load(vsm_workflow **out, vsm_ctx *ctx, const char *path);

/** Free a template; NULL is ignored. Since: 0.2 */
VSM_API void vsm_workflow_free(vsm_workflow *wf);

/** The template's name. Since: 0.2 */
VSM_API const char *vsm_workflow_name(const vsm_workflow *wf);
/** Its parameters, in the order the template declares them. Since: 0.2 */
VSM_API size_t vsm_workflow_param_count(const vsm_workflow *wf);
/** The name of parameter @i. Since: 0.2 */
VSM_API const char *vsm_workflow_param_name(const vsm_workflow *wf, size_t i);
/** "string", "integer", "size" or "boolean". Since: 0.2 */
VSM_API const char *vsm_workflow_param_type(const vsm_workflow *wf, size_t i);
/** The default as JSON text, or NULL when the parameter is required. Since: 0.2 */
VSM_API const char *vsm_workflow_param_default(const vsm_workflow *wf, size_t i);
/** Its steps, in order. Since: 0.2 */
VSM_API size_t vsm_workflow_step_count(const vsm_workflow *wf);
/** The id of step @i. Since: 0.2 */
VSM_API const char *vsm_workflow_step_id(const vsm_workflow *wf, size_t i);
/** The op step @i runs. Since: 0.2 */
VSM_API const char *vsm_workflow_step_op(const vsm_workflow *wf, size_t i);

/**
 * Progress of a run: called before and after each step, and for each
 * step undone by a rollback. @event is "step" (about to run), "done",
 * "failed", "undo" (about to be undone) or "undone". Return non-zero to
 * cancel the run (it is then rolled back).
 * Since: 0.2
 */
typedef int (*vsm_workflow_progress_fn)(const char *run_id, size_t step, size_t n_steps,
					const char *step_id, const char *event, void *opaque);

/** Version of vsm_workflow_run_opts understood by this header. Since: 0.2 */
#define VSM_WORKFLOW_RUN_OPTS_VERSION 1

/** Settings for vsm_workflow_run(). Since: 0.2 */
typedef struct {
	unsigned int version;               /**< VSM_WORKFLOW_RUN_OPTS_VERSION */
	/** Parameter values as "KEY=VALUE" (VALUE is read as the declared
	 *  type: "16M" for a size, "true"/"false" for a boolean). */
	const char *const *params;
	size_t n_params;                    /**< entries in @params */
	vsm_workflow_progress_fn progress;  /**< NULL: none */
	void *opaque;                       /**< handed to @progress */
	unsigned int flags;                 /**< 0 */
} vsm_workflow_run_opts;

/** Default run settings. Since: 0.2 */
#define VSM_WORKFLOW_RUN_OPTS_INIT { VSM_WORKFLOW_RUN_OPTS_VERSION, NULL, 0, NULL, NULL, 0 }

/** Length of a run ID (a UUID) without its NUL. Since: 0.2 */
#define VSM_WORKFLOW_RUN_ID_LEN 36

/**
 * Run @wf as one transaction. The run gets an ID (written to @run_id as
 * soon as it exists, also when the run then fails) and is kept in the
 * context's catalog with its state and per-step log
 * (vsm_run_lookup()).
 *
 * Returns 0 when every step is done (steps with "on_error": "continue"
 * may have failed: their log says so); otherwise the run is rolled back
 * and the call returns the failing step's code with a message naming
 * the step, -VSM_ECANCELED when it was cancelled (by @progress or by
 * vsm_run_cancel()), -VSM_EINVAL for a bad parameter (before anything
 * runs). When the rollback itself fails, the run stays "rolling-back"
 * and vsm_workflow_recover() retries it.
 *
 * @run_id: buffer of VSM_WORKFLOW_RUN_ID_LEN + 1 bytes; may be NULL
 * Since: 0.2
 */
VSM_API int vsm_workflow_run(vsm_workflow *wf, const vsm_workflow_run_opts *opts,
			     char *run_id);

/**
 * Finish the runs whose process died: roll back each one, or, past a
 * step that cannot be undone, run it forward to the end. vsm_ctx_open()
 * does this for runs whose ops are all built in; a program that
 * registers its own ops calls this after registering them.
 *
 * Returns how many runs are still left (each is logged), or a negative
 * code.
 * Since: 0.2
 */
VSM_API int vsm_workflow_recover(vsm_ctx *ctx);

/* --- runs --- */

/** A run as read from the catalog when the handle was made. Since: 0.2 */
typedef struct vsm_run vsm_run;

/** The run @id of this context's catalog. Returns 0, -VSM_ENOTFOUND. Since: 0.2 */
VSM_API int vsm_run_lookup(vsm_run **out, vsm_ctx *ctx, const char *id);
/** Every run in the catalog, oldest first. Since: 0.2 */
VSM_API int vsm_run_list(vsm_run ***out, size_t *count, vsm_ctx *ctx);
/** Free a list from vsm_run_list(); NULL is ignored. Since: 0.2 */
VSM_API void vsm_run_list_free(vsm_run **list, size_t count);
/** Free a run handle; NULL is ignored. Since: 0.2 */
VSM_API void vsm_run_free(vsm_run *run);

/**
 * Ask run @id to stop and roll back. A run of a live process notices
 * before its next step; a run whose process died is rolled back (or
 * finished forward past a step that cannot be undone) by this call.
 * Returns 0, -VSM_ENOTFOUND, -VSM_ESTATE (the run has ended).
 * Since: 0.2
 */
VSM_API int vsm_run_cancel(vsm_ctx *ctx, const char *id);

/** The run's ID. Since: 0.2 */
VSM_API const char *vsm_run_id(const vsm_run *run);
/** The name of the template it runs. Since: 0.2 */
VSM_API const char *vsm_run_template(const vsm_run *run);
/** "running", "rolling-back", "done", "rolled-back" (after a failure),
 *  or "cancelled" (rolled back on request). Since: 0.2 */
VSM_API const char *vsm_run_state(const vsm_run *run);
/** The parameters the run used, as a JSON object. Since: 0.2 */
VSM_API const char *vsm_run_params(const vsm_run *run);
/** Why it failed, or NULL. Since: 0.2 */
VSM_API const char *vsm_run_error(const vsm_run *run);
/** When it started (seconds since the epoch). Since: 0.2 */
VSM_API int64_t vsm_run_started(const vsm_run *run);
/** When it ended (seconds since the epoch), or 0 while it runs. Since: 0.2 */
VSM_API int64_t vsm_run_ended(const vsm_run *run);
/** Its steps, in the template's order. Since: 0.2 */
VSM_API size_t vsm_run_step_count(const vsm_run *run);
/** The id of step @i. Since: 0.2 */
VSM_API const char *vsm_run_step_id(const vsm_run *run, size_t i);
/** The op step @i runs. Since: 0.2 */
VSM_API const char *vsm_run_step_op(const vsm_run *run, size_t i);
/** "pending", "running", "done", "failed" (on_error continue),
 *  "undone", or "skipped". Since: 0.2 */
VSM_API const char *vsm_run_step_state(const vsm_run *run, size_t i);
/** The step's arguments as run (references resolved), JSON, or NULL
 *  before it ran. Since: 0.2 */
VSM_API const char *vsm_run_step_args(const vsm_run *run, size_t i);
/** The step's results, JSON, or NULL. Since: 0.2 */
VSM_API const char *vsm_run_step_result(const vsm_run *run, size_t i);
/** Why the step (or its undo) failed, or NULL. Since: 0.2 */
VSM_API const char *vsm_run_step_error(const vsm_run *run, size_t i);

/* --- operations an embedding program adds --- */

/**
 * Run one step. @args is the step's arguments as a JSON object, with
 * references resolved and checked against the schema. Put the results
 * (a JSON object, malloc'd) in *@result, or leave it NULL. Return 0 or a
 * negative VSM_E* code with the error set (vsm_error_set()).
 */
typedef int (*vsm_workflow_do_fn)(vsm_ctx *ctx, const char *args, char **result,
				  void *opaque);
/**
 * Undo one step. @result is what the step returned, or NULL when the
 * process died while the step ran (then undo whatever part of it
 * happened, and succeed when nothing did). Must succeed when run twice.
 */
typedef int (*vsm_workflow_undo_fn)(vsm_ctx *ctx, const char *args, const char *result,
				    void *opaque);

/** Version of vsm_workflow_op understood by this header. Since: 0.2 */
#define VSM_WORKFLOW_OP_VERSION 1

/** An operation for templates. Since: 0.2 */
typedef struct {
	unsigned int version;      /**< VSM_WORKFLOW_OP_VERSION */
	/** "NAMESPACE.VERB"; the namespaces of the built-in ops
	 *  (container, device, checkpoint, backup, group, place) are taken. */
	const char *name;
	/**
	 * Arguments and results, JSON: {"args": {"NAME": {"type": T,
	 * "required": BOOL}, ...}, "results": ["FIELD", ...]}, T one of
	 * "string", "integer", "size", "boolean", "any".
	 */
	const char *schema;
	vsm_workflow_do_fn run;    /**< required */
	/** NULL: the step cannot be undone (see vsm_workflow_parse()). */
	vsm_workflow_undo_fn undo;
	void *opaque;              /**< passed to @run and @undo */
} vsm_workflow_op;

/**
 * Make @op available to templates parsed on @ctx from now on. The
 * strings are copied. Returns 0, -VSM_EINVAL (bad name or schema),
 * -VSM_EEXISTS (the name is taken), -VSM_EVERSION.
 * Since: 0.2
 */
VSM_API int vsm_workflow_op_register(vsm_ctx *ctx, const vsm_workflow_op *op);

VSM_END_DECL

#endif /* VSM_WORKFLOW_H */
