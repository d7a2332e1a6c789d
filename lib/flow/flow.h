/*
 * Workflow templates inside the library (include/vsm/workflow.h is the
 * caller's side; doc/workflows.md the format and the guarantee).
 *
 *   template.c  parse, validate, resolve references and parameters
 *   ops.c       the table of operations: built-in and registered
 *   ops_*.c     the built-in operations (pre, run, undo of each)
 *   run.c       the executor: the run log, rollback, cancel
 *   recover.c   runs a dead process left; vsm_run_* getters
 *
 * Steps pass JSON between them as json-c objects.
 */
#ifndef VSM_FLOW_H
#define VSM_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "ctx.h"
#include "vsm/workflow.h"

/* Argument types of the schema. */
typedef enum {
	FLOW_T_STRING,
	FLOW_T_INTEGER,
	FLOW_T_SIZE,    /* bytes: an integer or "16M"; resolved to an integer */
	FLOW_T_BOOLEAN,
	FLOW_T_DEVICES, /* [{"name", "size", "format"?, "base"?}, ...] */
	FLOW_T_ANY,
} flow_type;

typedef struct {
	const char *name;
	flow_type type;
	bool required;
} flow_arg;

typedef struct flow_op flow_op;

/*
 * Before a step runs: what undo will need to know of the state it is
 * about to change (that a name was free, the host a container was
 * attached to). *@pre: a JSON object or NULL. Written to the run log
 * with the step, before the step runs.
 */
typedef int (*flow_pre_fn)(const flow_op *op, vsm_ctx *ctx, json_object *args,
			   json_object **pre);
/* Run the step; *@result: a JSON object with the op's result fields.
 * @pre: what pre() gave (may be NULL). @again: recovery runs a step that
 * cannot be undone a second time (the first may or may not have taken
 * effect): an effect already there is success. */
typedef int (*flow_run_fn)(const flow_op *op, vsm_ctx *ctx, json_object *args,
			   json_object *pre, bool again, json_object **result);
/*
 * Undo a step. @result NULL: the process died while the step ran, and
 * whether it took effect is to be found out (with @pre's help). Must
 * succeed when the step's effect is already gone (run twice).
 */
typedef int (*flow_undo_fn)(const flow_op *op, vsm_ctx *ctx, json_object *args,
			    json_object *pre, json_object *result);

struct flow_op {
	const char *name;
	const flow_arg *args;     /* schema */
	size_t n_args;
	const char *const *results; /* result fields, NULL-terminated; NULL: any */
	flow_pre_fn pre;          /* NULL: nothing to remember */
	flow_run_fn run;
	/* NULL: cannot be undone. A step of such an op that began is a
	 * point of no return: recovery runs it again (with @again) and
	 * finishes the run forward. An op with nothing to undo (a query)
	 * has an undo that does nothing. */
	flow_undo_fn undo;
	/* Registered ops (vsm_workflow_op_register): the caller's table. */
	vsm_workflow_op user;
};

/* --- template.c: a parsed template --- */

typedef struct {
	char *name;
	flow_type type;
	json_object *dflt;  /* NULL: required; owned */
	char *dflt_text;
} flow_param;

typedef struct {
	char *id;
	char *op_name;
	const flow_op *op;
	json_object *args;       /* as written (borrowed from the document) */
	bool keep_going;         /* "on_error": "continue" */
	char *comp_name;         /* "compensate": op and args, or NULL */
	const flow_op *comp;
	json_object *comp_args;
} flow_step;

struct vsm_workflow {
	vsm_ctx *ctx;
	json_object *doc;        /* the whole document */
	char *text;              /* as kept in the run log */
	char *name;
	flow_param *params;
	size_t n_params;
	flow_step *steps;
	size_t n_steps;
};

/* Can step @s be undone (its op's undo, or a compensate step)? */
bool flow_step_undoable(const flow_step *s);

/* The parameter values of a run: each declared one from "KEY=VALUE"
 * @kv or its default, typed (sizes as integers). *@out: an object. */
int flow_params_resolve(const vsm_workflow *wf, const char *const *kv, size_t n,
			json_object **out);

/* @v (a step's args or a compensate's) with every reference replaced:
 * parameters from @params, step results from @results (indexed like the
 * steps; NULL where there are none); then coerced to @op's schema (sizes
 * to integers). @where names it in messages ("steps[2].args"). */
int flow_args_resolve(const vsm_workflow *wf, const flow_op *op, json_object *v,
		      json_object *params, json_object *const *results, const char *where,
		      json_object **out);

/* --- ops.c --- */

/* The op called @name: built in, or registered on @ctx; NULL if none. */
const flow_op *flow_op_find(vsm_ctx *ctx, const char *name);

/* --- ops_*.c: the built-in ops, each table NULL-terminated --- */
extern const flow_op *const flow_container_ops[];
extern const flow_op *const flow_checkpoint_ops[];
extern const flow_op *const flow_other_ops[];
extern const flow_op *const flow_device_ops[];
extern const flow_op *const flow_migrate_ops[];

/* --- helpers for the ops (ops.c) --- */

/* The string / integer / boolean argument @name, or @dflt when absent. */
const char *flow_str(json_object *args, const char *name);
int64_t flow_int(json_object *args, const char *name, int64_t dflt);
bool flow_bool(json_object *args, const char *name, bool dflt);
/* A size: an integer, or a string with an optional K/M/G/T suffix
 * (powers of 1024). */
int flow_parse_size(json_object *v, uint64_t *out);
/* A new result object {"name": ..., ...}: string fields from pairs of
 * (key, value) ending with NULL. */
json_object *flow_result(const char *key, ...);

/* --- run.c: the executor, shared with recovery --- */

typedef enum {
	FLOW_S_PENDING,
	FLOW_S_RUNNING, /* logged before the op runs: in flight if found later */
	FLOW_S_DONE,
	FLOW_S_FAILED,  /* the op failed (it undoes itself): nothing to undo */
	FLOW_S_UNDONE,
	FLOW_S_SKIPPED,
} flow_state;

extern const char *const flow_state_names[];
int flow_state_parse(const char *s);

typedef struct {
	vsm_ctx *ctx;
	vsm_workflow *wf;
	char id[VSM_WORKFLOW_RUN_ID_LEN + 1];
	json_object *params;
	/* Per step: resolved args, pre, results (NULL: none), state. */
	json_object **args;
	json_object **pre;
	json_object **results;
	flow_state *state;
	vsm_workflow_progress_fn progress;
	void *opaque;
} flow_exec;

/* Arrays for @wf's steps; x->ctx, x->wf set. */
int flow_exec_init(flow_exec *x, vsm_ctx *ctx, vsm_workflow *wf);
void flow_exec_free(flow_exec *x);
/* Run steps @from.. to the end; the first with @again (recovery re-runs
 * a step that cannot be undone). On a failure of an "abort" step (or a
 * cancel) the run is rolled back. Returns 0 or the failure's code. */
int flow_exec_forward(flow_exec *x, size_t from, bool again);
/* Undo the done and in-flight steps, newest first; the run ends in
 * @final ("rolled-back" or "cancelled"). */
int flow_exec_rollback(flow_exec *x, const char *final);
/* Record the run's state (and error, ended time when @end). */
int flow_log_run(flow_exec *x, const char *state, const char *error, bool end);

/* --- recover.c --- */

/* Roll back (or finish forward) the runs of dead owners; @only_id: the
 * one run to act on now (a cancel), NULL for all. Returns how many are
 * left, or a negative code. */
int flow_recover(vsm_ctx *ctx, const char *only_id);

/* Tests only: called with @phase "before" (the step is logged as
 * running, its op has not run) and "after" (the op succeeded, its result
 * is not logged yet); a negative return fails the step with that code. */
extern int (*vsm__flow_test_fail)(const char *run_id, size_t step, const char *phase);

#endif /* VSM_FLOW_H */
