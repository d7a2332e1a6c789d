/*
 * Steps shared by the checkpoint calls: a fresh copy of the container's
 * record, undeploying and redeploying around a change, the commit point's
 * record write and what follows it, and the options version check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "steps.h"

/* The container's datastore and a private copy of its current record. */
int ck_fresh(vsm_container *c, vsm_dstore **ds, vsm_record **out)
{
	vsm_ctx *ctx = vsm__container_ctx(c);
	vsm_record *r;
	int rc;

	if ((rc = vsm__ds_get(ds, ctx, vsm_container_datastore(c))) < 0 ||
	    (rc = vsm__ds_refresh(ctx, *ds)) < 0)
		return rc;
	if (!(r = vsm__ds_find(*ds, NULL, vsm_container_uuid(c))))
		return vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' no longer exists",
			       vsm_container_datastore(c), vsm_container_name(c));
	if (r->destroying)
		return vsm_err(VSM_ESTATE, "container '%s' is being destroyed", r->name);
	if (!(*out = vsm_record_dup(r)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	return 0;
}

/* The value of attribute @attr of the <target> element of a deploy's
 * disk XML (what libvsm built: "<target dev='sda' bus='scsi'/>"), or NULL. */
static char *xml_target_attr(const char *xml, const char *attr)
{
	const char *t = xml ? strstr(xml, "<target ") : NULL, *end, *a, *q;
	char key[32];

	if (!t || !(end = strchr(t, '>')))
		return NULL;
	snprintf(key, sizeof(key), " %s=", attr);
	if (!(a = strstr(t, key)) || a > end)
		return NULL;
	a += strlen(key);
	if ((*a != '\'' && *a != '"') || !(q = strchr(a + 1, *a)) || q > end)
		return NULL;
	return strndup(a + 1, (size_t)(q - a - 1));
}

/* Deployed devices: refused, or (the VM being stopped) undeployed now
 * and listed in @saved to deploy again afterwards: quadruples of device
 * name, the domain it was hot-plugged into (or NULL), and its target and
 * bus (or NULL: the defaults), so that the guest sees the same disk. */
int ck_undeploy_for(vsm_container *c, unsigned int flags, char ***saved, size_t *n_saved)
{
	vsm_dstore *ds;
	vsm_record *r = NULL;
	size_t i;
	int rc;

	*saved = NULL;
	*n_saved = 0;
	if ((rc = ck_fresh(c, &ds, &r)) < 0)
		return rc;
	if (!r->n_deploys) {
		vsm_record_free(r);
		return 0;
	}
	if (!(flags & VSM_CHECKPOINT_STOPPED)) {
		rc = vsm_err(VSM_EBUSY, "container '%s': device '%s' is deployed; stop the VM "
			     "and say so (VSM_CHECKPOINT_STOPPED), or undeploy it", r->name,
			     r->deploys[0].device);
		vsm_record_free(r);
		return rc;
	}
	if (!(*saved = vsm__calloc(4 * r->n_deploys, sizeof(char *)))) {
		vsm_record_free(r);
		return -VSM_ENOMEM;
	}
	for (i = 0; i < r->n_deploys; i++) {
		const char *dom = r->deploys[i].domain;

		if (!((*saved)[4 * i] = vsm__strdup(r->deploys[i].device)) ||
		    (dom && !((*saved)[4 * i + 1] = vsm__strdup(dom)))) {
			free((*saved)[4 * i]);
			rc = -VSM_ENOMEM;
			break;
		}
		(*saved)[4 * i + 2] = xml_target_attr(r->deploys[i].xml, "dev");
		(*saved)[4 * i + 3] = xml_target_attr(r->deploys[i].xml, "bus");
		*n_saved = i + 1;
	}
	vsm_record_free(r);
	for (i = 0; rc == 0 && i < *n_saved; i++)
		rc = vsm_device_undeploy(c, (*saved)[4 * i], 0);
	return rc;
}

void ck_redeploy(vsm_container *c, char **saved, size_t n)
{
	vsm__saved_error err;
	size_t i;

	vsm__error_save(&err);
	for (i = 0; i < n; i++) {
		vsm_deploy_opts o = VSM_DEPLOY_OPTS_INIT;

		o.domain = saved[4 * i + 1];
		o.target = saved[4 * i + 2];
		o.bus = saved[4 * i + 3];
		if (vsm_device_deploy(NULL, c, saved[4 * i], &o) < 0)
			vsm__log(vsm__container_ctx(c), VSM_LOG_WARN, "container '%s': could not "
				 "deploy device '%s' again: %s", vsm_container_name(c), saved[4 * i],
				 vsm_error_last()->message);
		for (size_t k = 0; k < 4; k++)
			free(saved[4 * i + k]);
	}
	free(saved);
	vsm__error_restore(&err);
}

/*
 * Commit points. Create, revert and delete each change the container in
 * one record write: before it, a failure undoes what was made (the
 * journal's undo steps delete only devices no record on the datastore
 * names, so they are right on either side of the write); after it, the
 * call has happened and only finishes forward, logging what it could
 * not tidy (a leftover journal entry, a merge left for later) and
 * reporting success. Clone adds a record with its slot journalled for
 * release: its commit point is forgetting that journal entry.
 */

void ck_warn(vsm_ctx *ctx, const char *what)
{
	vsm__log(ctx, VSM_LOG_WARN, "%s%s%s", what ? what : "", what ? ": " : "",
		 vsm_error_last() ? vsm_error_last()->message : "?");
	vsm__error_reset();
}

/* Is @r what the slot holds (but for the lease version, which the write
 * may have fenced)? */
static bool on_datastore(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r)
{
	vsm_record *disk = NULL, *want = NULL;
	char *a = NULL, *b = NULL;
	bool same = false;

	if (vsm__ds_read_record(ctx, ds, r->slot, r->uuid, &disk) == 0 &&
	    (want = vsm_record_dup(r))) {
		want->lease_version = disk->lease_version;
		same = vsm_record_encode(&a, want) == 0 && vsm_record_encode(&b, disk) == 0 &&
		       !strcmp(a, b);
	}
	free(a);
	free(b);
	vsm_record_free(want);
	vsm_record_free(disk);
	return same;
}

/* The record write of create, revert and delete. A write reported as
 * failed may still have reached the datastore (its completion lost, or
 * the generation bump after it failed): then the slot decides, and a
 * record that is there is committed. 0: committed. */
int ck_commit_record(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r)
{
	vsm__saved_error err;
	int rc = vsm__ds_put_record(ctx, ds, r);

	if (rc == 0)
		return 0;
	vsm__error_save(&err);
	if (!on_datastore(ctx, ds, r)) {
		vsm__error_restore(&err);
		return rc;
	}
	vsm__error_restore(&err);
	vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': container '%s': the record reached the "
		 "datastore although writing it failed (%s)", ds->name, r->name,
		 vsm_error_last()->message);
	vsm__error_reset();
	ds->gen = 0; /* the cache may have missed it: rescan */
	return 0;
}

/* After a commit point: forget the journal entry, or leave it for the
 * next context to finish (its steps only delete what no record names). */
void ck_wf_finish(vsm_ctx *ctx, vsm_wf *wf, bool tidy)
{
	if (!tidy) {
		vsm__log(ctx, VSM_LOG_WARN, "workflow %lld stays in the journal; the next "
			 "context to open the datastore finishes it", (long long)wf->id);
		return;
	}
	if (vsm__wf_end(wf) < 0)
		ck_warn(ctx, "the journal keeps a finished workflow (the next context to open the "
		     "datastore forgets it)");
}

/* The handle shows the datastore's state, or (logged) the state the
 * call committed. */
void ck_refresh_or_warn(vsm_container *c)
{
	if (vsm_container_refresh(c) < 0)
		ck_warn(vsm__container_ctx(c), "container handle not refreshed");
}

int ck_check_opts_version(unsigned int v, unsigned int max, const char *what)
{
	if (v == 0 || v > max)
		return vsm_err(VSM_EVERSION, "%s version %u is not supported", what, v);
	return 0;
}
