/*
 * The workflow journal and its recovery.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "becall.h"
#include "workflow.h"

void (*vsm__wf_test_hook)(const char *action);

/* "PID:STARTTIME" of this process: a pid alone can be reused. */
static void owner_of(pid_t pid, char *buf, size_t size)
{
	char path[64], line[1024], *p;
	unsigned long long start = 0;
	FILE *f;
	int field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	buf[0] = '\0';
	if (!(f = fopen(path, "r")))
		return;
	if (fgets(line, sizeof(line), f) && (p = strrchr(line, ')'))) {
		char state = p[2];

		/* Fields after the command: state is 3rd, starttime 22nd. */
		for (field = 3, p += 2; *p && field < 22; p++)
			if (*p == ' ')
				field++;
		start = strtoull(p, NULL, 10);
		if (state != 'Z' && state != 'X')
			snprintf(buf, size, "%d:%llu", (int)pid, start);
	}
	fclose(f);
}

/* An owner is "PID:START/CONTEXT" (0.1 wrote "PID:START"): the process,
 * told from a later one with its pid by its start time, and the context
 * within it that began the workflow. */
bool vsm__wf_owner_alive(const char *owner)
{
	char now[64];
	int pid = atoi(owner);
	size_t len = strcspn(owner, "/");

	if (pid <= 0)
		return false;
	owner_of((pid_t)pid, now, sizeof(now));
	return now[0] && strlen(now) == len && !strncmp(now, owner, len);
}

static bool owner_is(const vsm_ctx *ctx, const char *owner)
{
	const char *slash = strchr(owner, '/');

	return vsm__wf_owner_alive(owner) && slash && !strcmp(slash + 1, ctx->wf_nonce);
}

void vsm__wf_owner(const vsm_ctx *ctx, char *buf, size_t size)
{
	size_t len;

	owner_of(getpid(), buf, size < 64 ? size : 64);
	len = strlen(buf);
	snprintf(buf + len, size - len, "/%s", ctx->wf_nonce);
}

int vsm__wf_begin(vsm_wf *wf, vsm_ctx *ctx, const char *kind, const char *datastore,
		  const char *subject)
{
	char owner[64 + sizeof(ctx->wf_nonce)];
	int rc;

	vsm__wf_owner(ctx, owner, sizeof(owner));
	wf->ctx = ctx;
	wf->seq = 0;
	rc = vsm_catalog_exec(ctx->cat, "INSERT INTO workflows(kind, datastore, subject, "
			      "started, owner) VALUES(?,?,?,?,?)", "sssis", kind, datastore,
			      subject, (int64_t)time(NULL), owner);
	wf->id = rc < 0 ? 0 : vsm_catalog_last_id(ctx->cat);
	return rc;
}

static int step(vsm_wf *wf, const char *mode, const char *action, const char *arg)
{
	int rc = vsm_catalog_exec(wf->ctx->cat, "INSERT INTO workflow_steps VALUES(?,?,?,?,?)",
				  "iisss", wf->id, wf->seq + 1, mode, action, arg);

	if (rc == 0) {
		wf->seq++;
		if (vsm__wf_test_hook)
			vsm__wf_test_hook(action);
	}
	return rc;
}

int vsm__wf_undo(vsm_wf *wf, const char *action, const char *arg)
{
	return step(wf, "undo", action, arg);
}

int vsm__wf_redo(vsm_wf *wf, const char *action, const char *arg)
{
	return step(wf, "redo", action, arg);
}

int vsm__wf_update(vsm_wf *wf, const char *arg)
{
	return vsm_catalog_exec(wf->ctx->cat, "UPDATE workflow_steps SET arg = ? WHERE "
				"workflow = ? AND seq = ?", "sii", arg, wf->id, wf->seq);
}

static int forget(vsm_ctx *ctx, int64_t id)
{
	int rc;

	if ((rc = vsm_catalog_begin(ctx->cat)) < 0)
		return rc;
	if ((rc = vsm_catalog_exec(ctx->cat, "DELETE FROM workflow_steps WHERE workflow = ?",
				   "i", id)) < 0 ||
	    (rc = vsm_catalog_exec(ctx->cat, "DELETE FROM workflows WHERE id = ?", "i", id)) < 0) {
		vsm_catalog_rollback(ctx->cat);
		return rc;
	}
	return vsm_catalog_commit(ctx->cat);
}

int vsm__wf_end(vsm_wf *wf)
{
	return forget(wf->ctx, wf->id);
}

int vsm__wf_parse_slot_uuid(const char *arg, uint32_t *slot, char uuid[VSM_UUID_STRLEN + 1])
{
	char *end;
	unsigned long s = strtoul(arg, &end, 10);

	if (*end != ' ' || !vsm__uuid_valid(end + 1))
		return vsm_err(VSM_ECORRUPT, "journal step argument '%s' is malformed", arg);
	*slot = (uint32_t)s;
	memcpy(uuid, end + 1, VSM_UUID_STRLEN + 1);
	return 0;
}

static int run_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action, const char *arg)
{
	char uuid[VSM_UUID_STRLEN + 1];
	uint32_t slot = 0;
	int rc;

	if (!strcmp(action, VSM_WF_DEVICE_DELETE)) {
		rc = vsm__be_device_delete(ds, arg, 0);
		if (rc == -VSM_ENOTFOUND) { /* never created, or already gone */
			vsm__error_reset();
			rc = 0;
		}
		return rc;
	}
	if (!strcmp(action, VSM_WF_SLOT_FREE)) {
		if ((rc = vsm__wf_parse_slot_uuid(arg, &slot, uuid)) < 0)
			return rc;
		rc = vsm__ds_free_slot(ctx, ds, slot, uuid);
		return rc < 0 ? rc : 0;
	}
	if (!strcmp(action, VSM_WF_UUID_FREE)) {
		if (!vsm__uuid_valid(arg))
			return vsm_err(VSM_ECORRUPT, "journal step argument '%s' is malformed", arg);
		return vsm__ds_free_uuid(ctx, ds, arg);
	}
	{
		/* The exact name, else the longest prefix: "mig_dom_x" goes to
		 * "mig_dom_" even when "mig_" was registered first. */
		size_t i, best = ctx->n_wf_actions, best_len = 0;

		for (i = 0; i < ctx->n_wf_actions; i++) {
			const char *name = ctx->wf_actions[i].name;
			size_t len = strlen(name);

			if (!strcmp(action, name))
				return ctx->wf_actions[i].fn(ctx, ds, action, arg);
			if (len > best_len && name[len - 1] == '_' && !strncmp(action, name, len)) {
				best = i;
				best_len = len;
			}
		}
		if (best < ctx->n_wf_actions)
			return ctx->wf_actions[best].fn(ctx, ds, action, arg);
	}
	return vsm_err(VSM_ECORRUPT, "journal names unknown action '%s'", action);
}

typedef struct {
	char *mode;
	char *action;
	char *arg;
} wf_step;

typedef struct {
	wf_step *v;
	size_t n;
} step_list;

static int step_row(void *payload, int ncol, const char *const *cols)
{
	step_list *l = payload;
	wf_step *grown = realloc(l->v, (l->n + 1) * sizeof(*grown));

	(void)ncol;
	if (!grown)
		return vsm_err(VSM_ENOMEM, "out of memory");
	l->v = grown;
	l->v[l->n].mode = vsm__strdup(cols[0]);
	l->v[l->n].action = vsm__strdup(cols[1]);
	l->v[l->n].arg = vsm__strdup(cols[2]);
	l->n++;
	return 0;
}

static void steps_free(step_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].mode);
		free(l->v[i].action);
		free(l->v[i].arg);
	}
	free(l->v);
}

/* Undo steps newest first; if any redo step exists, the workflow passed
 * its point of no return and is finished forward instead. */
static int replay(vsm_ctx *ctx, vsm_dstore *ds, int64_t id)
{
	step_list l = {NULL, 0};
	size_t i;
	bool forward = false;
	int rc;

	if ((rc = vsm_catalog_query(ctx->cat, step_row, &l, "SELECT mode, action, arg FROM "
				    "workflow_steps WHERE workflow = ? ORDER BY seq", "i", id)) < 0)
		goto out;
	for (i = 0; i < l.n; i++)
		if (l.v[i].mode && !strcmp(l.v[i].mode, "redo"))
			forward = true;
	for (i = 0; i < l.n && rc == 0; i++) {
		wf_step *s = forward ? &l.v[i] : &l.v[l.n - 1 - i];

		if (!s->mode || !s->action || !s->arg) {
			rc = vsm_err(VSM_ENOMEM, "out of memory");
			break;
		}
		if (!strcmp(s->mode, forward ? "redo" : "undo"))
			rc = run_action(ctx, ds, s->action, s->arg);
	}
	/* The dead process may have changed a record without moving the
	 * generation; make every cache of this datastore look again. */
	if (rc == 0 && l.n)
		rc = vsm__ds_touch(ctx, ds);
	if (rc == 0)
		rc = forget(ctx, id);
out:
	steps_free(&l);
	return rc;
}

void vsm__wf_abort(vsm_wf *wf)
{
	vsm__saved_error saved;
	char *ds_name = NULL;
	char **names = NULL;
	size_t n = 0;
	vsm_dstore *ds;

	vsm__error_save(&saved);
	if (vsm_catalog_strings(wf->ctx->cat, &names, &n, "SELECT datastore FROM workflows "
				"WHERE id = ?", "i", wf->id) == 0 && n == 1)
		ds_name = names[0];
	if (ds_name && vsm__ds_get(&ds, wf->ctx, ds_name) == 0) {
		if (replay(wf->ctx, ds, wf->id) < 0)
			vsm__log(wf->ctx, VSM_LOG_ERROR, "rollback of workflow %lld failed: %s; "
				 "it stays in the journal", (long long)wf->id,
				 vsm_error_last() ? vsm_error_last()->message : "?");
	}
	vsm_strv_free(names, n);
	vsm__error_restore(&saved);
}

typedef struct {
	int64_t id;
	char *datastore;
	char *kind;
	char *subject;
	char *owner;
} wf_row;

typedef struct {
	wf_row *v;
	size_t n;
} wf_list;

static int wf_row_cb(void *payload, int ncol, const char *const *cols)
{
	wf_list *l = payload;
	wf_row *grown = realloc(l->v, (l->n + 1) * sizeof(*grown));

	(void)ncol;
	if (!grown)
		return vsm_err(VSM_ENOMEM, "out of memory");
	l->v = grown;
	l->v[l->n].id = strtoll(cols[0], NULL, 10);
	l->v[l->n].datastore = vsm__strdup(cols[1]);
	l->v[l->n].kind = vsm__strdup(cols[2]);
	l->v[l->n].subject = vsm__strdup(cols[3]);
	l->v[l->n].owner = vsm__strdup(cols[4] ? cols[4] : "");
	l->n++;
	return 0;
}

/* @kind: only workflows of that kind, and only those this context left
 * or a dead process did (another live owner's are still running). */
static int recover(vsm_ctx *ctx, const char *datastore, bool mine, const char *kind)
{
	wf_list l = {NULL, 0};
	size_t i;
	int rc, failed = 0;

	rc = vsm_catalog_query(ctx->cat, wf_row_cb, &l, "SELECT id, datastore, kind, subject, "
			       "owner FROM workflows WHERE ?1 IS NULL OR datastore = ?1 "
			       "ORDER BY id", "s", datastore);
	for (i = 0; rc == 0 && i < l.n; i++) {
		wf_row *w = &l.v[i];
		vsm_dstore *ds;

		if (!w->datastore || !w->kind || !w->subject || !w->owner)
			continue;
		if (kind && (strcmp(w->kind, kind) ||
			     (vsm__wf_owner_alive(w->owner) && !owner_is(ctx, w->owner))))
			continue;
		/* A live process (this one included) is still running it; but
		 * with @mine, one this context began and left is finished too. */
		if (vsm__wf_owner_alive(w->owner) && !(mine && owner_is(ctx, w->owner)))
			continue;
		if (vsm__ds_get(&ds, ctx, w->datastore) < 0)
			ds = NULL;
		else
			ds->recovered = true;
		if (!ds || replay(ctx, ds, w->id) < 0) {
			vsm__log(ctx, VSM_LOG_WARN, "interrupted %s of '%s' on datastore '%s' "
				 "cannot be finished yet: %s", w->kind, w->subject, w->datastore,
				 vsm_error_last() ? vsm_error_last()->message : "?");
			failed++;
			continue;
		}
		vsm__log(ctx, VSM_LOG_INFO, "finished interrupted %s of '%s' on datastore '%s'",
			 w->kind, w->subject, w->datastore);
	}
	for (i = 0; i < l.n; i++) {
		free(l.v[i].datastore);
		free(l.v[i].kind);
		free(l.v[i].subject);
		free(l.v[i].owner);
	}
	free(l.v);
	vsm__error_reset();
	return rc < 0 ? rc : failed;
}

int vsm__wf_recover(vsm_ctx *ctx, const char *datastore, bool mine)
{
	return recover(ctx, datastore, mine, NULL);
}

int vsm__wf_finish_left(vsm_ctx *ctx, const char *datastore, const char *kind)
{
	return recover(ctx, datastore, true, kind);
}

int vsm__wf_register_action(vsm_ctx *ctx, const char *name, vsm_wf_action_fn fn)
{
	vsm__wf_action *grown;

	grown = realloc(ctx->wf_actions, (ctx->n_wf_actions + 1) * sizeof(*grown));
	if (!grown)
		return vsm_err(VSM_ENOMEM, "out of memory");
	ctx->wf_actions = grown;
	ctx->wf_actions[ctx->n_wf_actions].name = name;
	ctx->wf_actions[ctx->n_wf_actions].fn = fn;
	ctx->n_wf_actions++;
	return 0;
}
