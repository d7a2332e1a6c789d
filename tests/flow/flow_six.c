/*
 * The six-step template the transaction cases run (create, attach,
 * deploy root, deploy data, checkpoint, backup) and what "done" and "no
 * trace" mean for it.
 */
#include <stdio.h>
#include <stdlib.h>

#include "flow_util.h"

const char *const six_ids[6] = { "create", "attach", "root", "data", "cp", "backup" };

const char six_tpl[] =
	"{\"name\": \"six\", \"params\": {\"name\": {\"type\": \"string\"}, "
	"\"bk\": {\"type\": \"string\"}, \"host\": {\"type\": \"string\", \"default\": \"h\"}},"
	" \"steps\": ["
	"{\"id\": \"create\", \"op\": \"container.create\", \"args\": {\"name\": \"${param.name}\","
	" \"datastore\": \"ds\", \"devices\": [{\"name\": \"root\", \"size\": \"1M\"}, "
	"{\"name\": \"data\", \"size\": \"1M\", \"format\": \"qcow2\"}]}},"
	"{\"id\": \"attach\", \"op\": \"container.attach\", \"args\": {\"container\": "
	"\"${steps.create.name}\", \"datastore\": \"ds\", \"host\": \"${param.host}\"}},"
	"{\"id\": \"root\", \"op\": \"device.deploy\", \"args\": {\"container\": "
	"\"${steps.create.name}\", \"datastore\": \"ds\", \"device\": \"root\"}},"
	"{\"id\": \"data\", \"op\": \"device.deploy\", \"args\": {\"container\": "
	"\"${steps.create.name}\", \"datastore\": \"ds\", \"device\": \"data\"}},"
	"{\"id\": \"cp\", \"op\": \"checkpoint.create\", \"args\": {\"container\": "
	"\"${steps.create.name}\", \"datastore\": \"ds\", \"name\": \"cp1\", \"stopped\": true}},"
	"{\"id\": \"backup\", \"op\": \"backup.create\", \"args\": {\"container\": "
	"\"${steps.create.name}\", \"datastore\": \"ds\", \"path\": \"${param.bk}\", "
	"\"checkpoint\": \"${steps.cp.checkpoint}\"}}]}";

int six_run(vsm_ctx *ctx, const char *name, const char *bk, const char *host,
	    vsm_workflow_run_opts *o, char *id)
{
	vsm_workflow_run_opts dflt = VSM_WORKFLOW_RUN_OPTS_INIT;
	char *p[3] = { NULL, NULL, NULL };
	vsm_workflow *wf = NULL;
	int rc;

	if (!o)
		o = &dflt;
	if ((rc = vsm_workflow_parse(&wf, ctx, six_tpl, NULL)) < 0)
		return rc;
	if (asprintf(&p[0], "name=%s", name) < 0 || asprintf(&p[1], "bk=%s", bk) < 0 ||
	    asprintf(&p[2], "host=%s", host ? host : "h") < 0)
		abort();
	o->params = (const char *const *)p;
	o->n_params = 3;
	id[0] = '\0';
	rc = vsm_workflow_run(wf, o, id);
	vsm_workflow_free(wf);
	free(p[0]);
	free(p[1]);
	free(p[2]);
	return rc;
}

char *six_bk(const fx *f, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s.bk", f->bkdir, name) < 0)
		abort();
	return p;
}

/* Why container @name is not all there (NULL: it is). */
char *six_problem_done(vsm_ctx *ctx, const fx *f, const char *name, const char *host)
{
	vsm_container *c = NULL;
	vsm_checkpoint *cp = NULL;
	char *bk = six_bk(f, name), *why = NULL;
	const vsm_device *root, *data;
	int rc;

	if ((rc = vsm_container_lookup(&c, ctx, "ds", name)) < 0) {
		if (asprintf(&why, "container '%s' missing (%d)", name, rc) < 0)
			abort();
		goto out;
	}
	root = vsm_container_device_by_name(c, "root");
	data = vsm_container_device_by_name(c, "data");
	if (!vsm_container_attached_host(c) || strcmp(vsm_container_attached_host(c), host))
		why = strdup("not attached to its host");
	else if (!root || !data || !vsm_device_locator(root) || !vsm_device_locator(data))
		why = strdup("a device is missing or not deployed");
	else if (vsm_checkpoint_lookup(&cp, c, "cp1") < 0)
		why = strdup("checkpoint cp1 missing");
	else if (!tu_exists(bk))
		why = strdup("backup file missing");
out:
	vsm_checkpoint_free(cp);
	vsm_container_free(c);
	free(bk);
	return why;
}

/* Why container @name left a trace (NULL: none). Only @name is looked
 * at, and the datastore's files must number @files. */
char *six_problem_gone(vsm_ctx *ctx, const fx *f, const char *name, int files, int leases)
{
	vsm_container *c = NULL;
	char *bk = six_bk(f, name), *why = NULL;
	int n, held;

	if (vsm_container_lookup(&c, ctx, "ds", name) != -VSM_ENOTFOUND) {
		if (asprintf(&why, "container '%s' is still there (%s)", name, tu_msg()) < 0)
			abort();
	} else if ((n = tu_count_files(f->dsdir)) != files) {
		if (asprintf(&why, "%d files on the datastore, expected %d", n, files) < 0)
			abort();
	} else if ((held = flow_leases_held(ctx)) != leases) {
		if (asprintf(&why, "%d leases held, expected %d", held, leases) < 0)
			abort();
	} else if (tu_exists(bk)) {
		why = strdup("backup file left");
	}
	vsm_container_free(c);
	free(bk);
	return why;
}
