/*
 * Helpers of the "flow" suite: a state directory with one file datastore
 * ("ds") and two hosts linked to it, templates run from text, the run
 * log checked step by step, ops the tests register, and a description of
 * the whole world (containers, devices, leases, checkpoints, groups,
 * files) to compare before and after a run.
 */
#ifndef VSM_TEST_FLOW_UTIL_H
#define VSM_TEST_FLOW_UTIL_H

#include <vsm/backend.h>
#include <vsm/workflow.h>

#include "testutil.h"

typedef struct {
	char *state;  /* state directory */
	char *dsdir;  /* datastore "ds" */
	char *bkdir;  /* where backups go */
	vsm_ctx *ctx;
} fx;

/* A fresh state directory, datastore "ds" (created), hosts "h" and "h2"
 * linked to it, and the test ops registered (flow_ops_register). */
void fx_init(fx *f);
/* Another state directory (another host, @host) on @f's datastore. */
vsm_ctx *fx_join(const fx *f, const char *state, const char *host);
void fx_free(fx *f);

/* "test.fail": always fails with -VSM_EIO (args: "tag" any).
 * "test.count": results {"token": "tok-N"}; its undo counts calls
 *   (args: "tag" string; undo gets the result or NULL).
 * "test.final": like test.count with no undo (a point of no return).
 * "test.snap": notes flow_world() of the datastore in flow_snap, then
 *   fails with -VSM_EIO. */
void flow_ops_register(vsm_ctx *ctx);
extern int flow_count_runs, flow_count_undos, flow_count_undo_null;
extern char flow_last_undo_result[256];
extern char *flow_snap;
extern const fx *flow_snap_fx;

/* Parse @json on @ctx (asserted) and run it with @params (NULL-ended
 * "K=V" list); @id gets the run ID (or ""). Returns the run's code. */
int flow_run(vsm_ctx *ctx, const char *json, const char *const *params, char *id);
int flow_run_opts(vsm_ctx *ctx, const char *json, vsm_workflow_run_opts *o, char *id);

/* Run @id has state @state and its steps the states in @steps
 * (space-separated, e.g. "undone failed skipped"). */
void ck_run_states(vsm_ctx *ctx, const char *id, const char *state, const char *steps);
/* The step's result (JSON text) as a json-c lookup: field @field of
 * step @i's result, as a string (malloc'd), or NULL. */
char *run_step_field(vsm_ctx *ctx, const char *id, size_t i, const char *what,
		     const char *field);

/* Everything on datastore "ds" and in the backup directory, as text. */
char *flow_world(vsm_ctx *ctx, const fx *f);
/* Leases held on "ds" (a host named). */
int flow_leases_held(vsm_ctx *ctx);
/* Runs in the catalog. */
size_t flow_run_count(vsm_ctx *ctx);
/* Runs in the catalog of state directory @state (a context of its own). */
size_t flow_run_count_at(const char *state);

/* --- the six-step template (flow_six.c) --- */
extern const char *const six_ids[6];
extern const char six_tpl[];
/* Run it for container @name, backup file @bk, attached to @host (NULL:
 * "h"); @o may be NULL. No Check calls (children use it). */
int six_run(vsm_ctx *ctx, const char *name, const char *bk, const char *host,
	    vsm_workflow_run_opts *o, char *id);
/* The backup path of @name (malloc'd). */
char *six_bk(const fx *f, const char *name);
/* NULL when @name is all there (attached to @host) / has left no trace
 * (and the datastore has @files files, @leases leases held); else why
 * not (malloc'd). */
char *six_problem_done(vsm_ctx *ctx, const fx *f, const char *name, const char *host);
char *six_problem_gone(vsm_ctx *ctx, const fx *f, const char *name, int files, int leases);

/* The test cases of the other files. */
TCase *flow_ops_tcase(void);
TCase *flow_tx_tcase(void);
TCase *flow_crash_tcase(void);
TCase *flow_dead_tcase(void);

#endif
