/*
 * Group checkpoints (doc/groups.md): create (every member or none, at
 * one cut behind the write barrier), revert, delete and clone, each a
 * journalled workflow on the group's datastore whose steps name the
 * members by UUID; and the journal actions ("grp_*") that roll them
 * back or finish them after a failure or a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "becall.h"
#include "catalog.h"
#include "group_int.h"

#define DEFAULT_TIMEOUT_MS 7000u

/* A domain a member's devices are hot-plugged into, fenced around a
 * group checkpoint through its datastore's backend (domain_fence). */
typedef struct {
	vsm_dstore *ds;
	char *host, *host_uri, *domain;
	bool fenced;
} fence_dom;

typedef struct {
	fence_dom *v;
	size_t n;
	bool freeze;
} fence_set;

static void fence_free(fence_set *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].host);
		free(f->v[i].host_uri);
		free(f->v[i].domain);
	}
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

static char *host_uri(vsm_ctx *ctx, const char *host)
{
	char **v = NULL, *uri = NULL;
	size_t n = 0;

	if (vsm_catalog_strings(ctx->cat, &v, &n, "SELECT hypervisor_uri FROM hosts WHERE "
				"name = ? AND hypervisor_uri IS NOT NULL", "s", host) == 0 && n)
		uri = vsm__strdup(v[0]);
	else
		vsm__error_reset();
	vsm_strv_free(v, n);
	return uri;
}

/* The domains container @c's deployed devices are in, added to @f.
 * *@domains_only: every deployed device went into a domain (and can be
 * fenced); false when one is deployed without a domain. */
static int fence_collect(fence_set *f, vsm_ctx *ctx, vsm_container *c, bool *any,
			 const char **bare_dev)
{
	const vsm_record *r;
	vsm_dstore *ds;
	size_t i, j;
	int rc;

	*any = false;
	*bare_dev = NULL;
	if ((rc = vsm__ds_get(&ds, ctx, vsm_container_datastore(c))) < 0 ||
	    (rc = vsm__ds_refresh(ctx, ds)) < 0)
		return rc;
	if (!(r = vsm__ds_find(ds, NULL, vsm_container_uuid(c))))
		return vsm_err(VSM_ENOTFOUND, "container '%s' no longer exists",
			       vsm_container_name(c));
	for (i = 0; i < r->n_deploys; i++) {
		const vsm_rec_deploy *d = &r->deploys[i];
		fence_dom *grown;

		if (!d->domain || !vsm__be_can_fence(ds)) {
			*bare_dev = d->device;
			return 0;
		}
		*any = true;
		for (j = 0; j < f->n; j++)
			if (!strcmp(f->v[j].host, d->host) && !strcmp(f->v[j].domain, d->domain))
				break;
		if (j < f->n)
			continue;
		if (!(grown = realloc(f->v, (f->n + 1) * sizeof(*grown))))
			return vsm_err(VSM_ENOMEM, "out of memory");
		f->v = grown;
		memset(&f->v[f->n], 0, sizeof(f->v[f->n]));
		f->v[f->n].ds = ds;
		f->v[f->n].host_uri = host_uri(ctx, d->host);
		if (!(f->v[f->n].host = vsm__strdup(d->host)) ||
		    !(f->v[f->n].domain = vsm__strdup(d->domain))) {
			free(f->v[f->n].host);
			free(f->v[f->n].host_uri);
			return -VSM_ENOMEM;
		}
		f->n++;
	}
	return 0;
}

/* Pause (or freeze) every domain; the first failure stops (what was
 * fenced is released by fence_release). */
static int fence_all(fence_set *f)
{
	unsigned int op = f->freeze ? VSM_BACKEND_FENCE_FREEZE : VSM_BACKEND_FENCE_PAUSE;
	int rc;

	for (size_t i = 0; i < f->n; i++) {
		if ((rc = vsm__be_domain_fence(f->v[i].ds, f->v[i].host, f->v[i].host_uri,
					       f->v[i].domain, op)) < 0)
			return rc;
		f->v[i].fenced = true;
	}
	return 0;
}

/* Resume (or thaw) every domain fenced; failures are logged (the caller's
 * result stands) and counted. */
static size_t fence_release(vsm_ctx *ctx, fence_set *f)
{
	unsigned int op = f->freeze ? VSM_BACKEND_FENCE_THAW : VSM_BACKEND_FENCE_RESUME;
	vsm__saved_error saved;
	size_t bad = 0;

	vsm__error_save(&saved);
	for (size_t i = 0; i < f->n; i++) {
		if (!f->v[i].fenced)
			continue;
		if (vsm__be_domain_fence(f->v[i].ds, f->v[i].host, f->v[i].host_uri,
					 f->v[i].domain, op) < 0) {
			vsm__log(ctx, VSM_LOG_ERROR, "host '%s': domain '%s' not %s: %s",
				 f->v[i].host, f->v[i].domain, f->freeze ? "thawed" : "resumed",
				 vsm_error_last()->message);
			bad++;
		} else {
			f->v[i].fenced = false;
		}
	}
	vsm__error_restore(&saved);
	return bad;
}

static const char *gname(const vsm_record *r)
{
	return r->name + strlen(VSM_REC_GROUP_PREFIX);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A tag of a device key that fits a journal argument (keys may hold
 * spaces): FNV-1a 64, in hex. */
static void key_tag(const char *key, char out[17])
{
	uint64_t h = UINT64_C(1469598103934665603);

	for (; *key; key++) {
		h ^= (unsigned char)*key;
		h *= UINT64_C(1099511628211);
	}
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static void handles_free(vsm_container **cs, size_t n)
{
	size_t i;

	if (!cs)
		return;
	for (i = 0; i < n; i++)
		vsm_container_free(cs[i]);
	free(cs);
}

static bool deployed(const vsm_container *c, const char **dev)
{
	size_t i;

	for (i = 0; i < vsm_container_device_count(c); i++) {
		const vsm_device *d = vsm_container_device(c, i);

		if (vsm_device_locator(d)) {
			*dev = vsm_device_name(d);
			return true;
		}
	}
	return false;
}

/* Handles of @n members named by UUID (@uuids[i]) with their names for
 * messages; each must exist, not be deployed, and have checkpoint @name
 * (@want_ckpt) or not have it (!@want_ckpt). */
static int members_check(vsm_container ***out, vsm_ctx *ctx, const vsm_record *r,
			 const char *const *uuids, size_t n, const char *name, bool want_ckpt,
			 bool refuse_deployed)
{
	vsm_container **cs = vsm__calloc(n ? n : 1, sizeof(*cs));
	vsm_checkpoint *cp = NULL;
	const char *dev;
	size_t i;
	int rc = 0;

	if (!cs)
		return -VSM_ENOMEM;
	for (i = 0; i < n && rc == 0; i++) {
		if ((rc = vsm_container_lookup_by_uuid(&cs[i], ctx, uuids[i])) < 0) {
			const vsm_rec_gmember *m = grp_member_by_uuid(r, uuids[i]);

			vsm__error_prefix("group '%s': member '%s'", gname(r), m ? m->name : uuids[i]);
			break;
		}
		rc = vsm_checkpoint_lookup(&cp, cs[i], name);
		vsm_checkpoint_free(cp);
		cp = NULL;
		if (rc == 0 && !want_ckpt)
			rc = vsm_err(VSM_EEXISTS, "group '%s': member '%s' already has a checkpoint "
				     "'%s'", gname(r), vsm_container_name(cs[i]), name);
		else if (rc == -VSM_ENOTFOUND && !want_ckpt)
			rc = 0;
		else if (rc < 0)
			vsm__error_prefix("group '%s'", gname(r));
		if (rc == 0 && refuse_deployed && deployed(cs[i], &dev))
			rc = vsm_err(VSM_EBUSY, "group '%s': member '%s': device '%s' is deployed "
				     "(a hypervisor may be writing it)", gname(r),
				     vsm_container_name(cs[i]), dev);
	}
	if (rc < 0) {
		handles_free(cs, n);
		return rc;
	}
	*out = cs;
	return 0;
}

static int gckpt_append(vsm_record *r, const char *name, vsm_container *const *cs, size_t n)
{
	vsm_rec_gckpt *grown, *c;
	size_t i;

	if (!(grown = realloc(r->group->ckpts, (r->group->n_ckpts + 1) * sizeof(*grown))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	r->group->ckpts = grown;
	c = &r->group->ckpts[r->group->n_ckpts++];
	memset(c, 0, sizeof(*c));
	c->ctime = (int64_t)time(NULL);
	if (!(c->name = vsm__strdup(name)) ||
	    (n && !(c->members = vsm__calloc(n, sizeof(*c->members)))))
		return -VSM_ENOMEM;
	for (i = 0; i < n; i++) {
		memcpy(c->members[i].uuid, vsm_container_uuid(cs[i]), VSM_UUID_STRLEN + 1);
		if (!(c->members[i].checkpoint = vsm__strdup(name)))
			return -VSM_ENOMEM;
		c->n_members = i + 1;
	}
	return 0;
}

/* Write the new group checkpoint into a fresh copy of the record (the
 * group may have changed meanwhile: a member added by another process). */
static int gckpt_commit(vsm_group *g, const char *name, vsm_container *const *cs, size_t n)
{
	vsm_record *r = NULL;
	vsm_dstore *ds;
	int rc;

	if ((rc = vsm__ds_get(&ds, g->ctx, g->datastore)) < 0 ||
	    (rc = vsm__ds_change_begin(g->ctx, ds)) < 0)
		return rc;
	if ((rc = grp_fresh(g, &ds, &r)) == 0) {
		if (grp_ckpt(r, name))
			rc = vsm_err(VSM_EEXISTS, "group '%s': checkpoint '%s' was created meanwhile",
				     gname(r), name);
		else if ((rc = gckpt_append(r, name, cs, n)) == 0 &&
			 (rc = grp_commit(g->ctx, ds, r)) == 0) {
			grp_handle_set(g, r);
			r = NULL;
		}
	}
	vsm__ds_change_end(g->ctx, ds);
	vsm_record_free(r);
	return rc;
}

VSM_API int vsm_group_checkpoint_create(vsm_group *g, const char *name,
					const vsm_group_checkpoint_opts *opts)
{
	unsigned int timeout;
	fence_set fence = { NULL, 0, false };
	bool *in_dom = NULL;
	const char **uuids = NULL;
	vsm_container **cs = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	bool wf_on = false;
	int64_t t0;
	char arg[3 * 80];
	size_t i, n = 0;
	int rc;

	vsm__error_reset();
	if (!g)
		return vsm_err(VSM_EINVAL, "vsm_group_checkpoint_create: NULL argument");
	if (opts && (opts->version == 0 || opts->version > VSM_GROUP_CHECKPOINT_OPTS_VERSION))
		return vsm_err(VSM_EVERSION, "vsm_group_checkpoint_opts version %u is not "
			       "supported", opts->version);
	if (opts && (opts->flags & ~VSM_GROUP_CHECKPOINT_FREEZE))
		return vsm_err(VSM_EINVAL, "vsm_group_checkpoint_create: unknown flags 0x%x",
			       opts->flags);
	fence.freeze = opts && (opts->flags & VSM_GROUP_CHECKPOINT_FREEZE);
	if ((rc = vsm__name_check("checkpoint", name)) < 0)
		return rc;
	timeout = opts && opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
	/* The barrier before the context's lock: writers never take the
	 * latter while they hold the former. */
	if ((rc = grp_barrier_up(g)) < 0) {
		grp_barrier_down(g);
		return rc;
	}
	t0 = mono_ms();
	vsm__ctx_lock(g->ctx);
	if ((rc = grp_fresh(g, &ds, &r)) < 0)
		goto out;
	if (grp_ckpt(r, name)) {
		rc = vsm_err(VSM_EEXISTS, "group '%s': checkpoint '%s' already exists", gname(r),
			     name);
		goto out;
	}
	n = r->group->n_members;
	if (!n) {
		rc = vsm_err(VSM_EINVAL, "group '%s' has no members", gname(r));
		goto out;
	}
	if (!(uuids = vsm__calloc(n, sizeof(*uuids)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		uuids[i] = r->group->members[i].uuid;
	/* Refused up front, nothing changed: a member gone, deployed
	 * without a domain to fence, or with a checkpoint of that name. */
	if ((rc = members_check(&cs, g->ctx, r, uuids, n, name, false, false)) < 0)
		goto out;
	if (!(in_dom = vsm__calloc(n, sizeof(*in_dom)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *bare = NULL;

		if ((rc = fence_collect(&fence, g->ctx, cs[i], &in_dom[i], &bare)) < 0)
			goto out;
		if (bare) {
			rc = vsm_err(VSM_EBUSY, "group '%s': member '%s': device '%s' is deployed "
				     "without a domain libvsm can pause (a hypervisor may be writing "
				     "it)", gname(r), vsm_container_name(cs[i]), bare);
			goto out;
		}
	}
	/* VMs under libvirt: every domain's I/O stops before the first
	 * member's checkpoint and resumes after the last (or the undo). */
	if ((rc = fence_all(&fence)) < 0)
		goto out;
	if ((rc = vsm__wf_begin(&wf, g->ctx, "group-checkpoint", g->datastore, gname(r))) < 0)
		goto out;
	wf_on = true;
	for (i = 0; i < n; i++) {
		/* The undo is journalled before the step: a crash after the
		 * member's checkpoint but before the group record names it
		 * rolls it back. */
		vsm_checkpoint_opts co = VSM_CHECKPOINT_OPTS_INIT;

		/* A fenced domain is stopped as far as its disks go: the
		 * devices move to their new tops (undeployed and deployed
		 * again into the same domain) while it is paused. */
		if (in_dom[i])
			co.flags = VSM_CHECKPOINT_STOPPED;
		snprintf(arg, sizeof(arg), "%s %s %s", r->uuid, name, uuids[i]);
		if ((rc = vsm__wf_undo(&wf, GRP_WF_CKPT_UNDO, arg)) < 0 ||
		    (rc = vsm_checkpoint_create(NULL, cs[i], name, &co)) < 0) {
			vsm__error_prefix("group '%s': member '%s'", gname(r),
					  vsm_container_name(cs[i]));
			goto out;
		}
		if (mono_ms() - t0 > (int64_t)timeout) {
			rc = vsm_err(VSM_EBUSY, "group '%s': checkpoint '%s' held the writers longer "
				     "than %u ms (%zu of %zu members done); every member's "
				     "checkpoint is undone", gname(r), name, timeout, i + 1, n);
			goto out;
		}
	}
	/* The commit point: the group record names the checkpoint. */
	if ((rc = gckpt_commit(g, name, cs, n)) < 0)
		goto out;
	wf_on = false;
	if (vsm__wf_end(&wf) < 0) {
		vsm__log(g->ctx, VSM_LOG_WARN, "group '%s': the journal keeps a finished "
			 "checkpoint workflow (%s); the next context forgets it", gname(r),
			 vsm_error_last()->message);
		vsm__error_reset();
	}
	vsm__log(g->ctx, VSM_LOG_INFO, "group '%s': checkpoint '%s' created (%zu members)",
		 gname(r), name, n);
out:
	if (wf_on)
		vsm__wf_abort(&wf); /* deletes each member's checkpoint made */
	if (fence_release(g->ctx, &fence) && rc == 0)
		vsm__log(g->ctx, VSM_LOG_WARN, "group '%s': checkpoint '%s' made, but a domain "
			 "is still paused (see above)", vsm_group_name(g), name);
	fence_free(&fence);
	free(in_dom);
	handles_free(cs, n);
	free(uuids);
	vsm_record_free(r);
	vsm__ctx_unlock(g->ctx);
	grp_barrier_down(g);
	return rc;
}

VSM_API int vsm_group_checkpoint_revert(vsm_group *g, const char *name, unsigned int flags)
{
	const char **uuids = NULL;
	vsm_container **cs = NULL;
	const vsm_rec_gckpt *gc;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	char *arg = NULL, failed[256] = "";
	size_t i, n = 0, n_failed = 0;
	int rc, first_rc = 0;

	vsm__error_reset();
	if (!g || !name)
		return vsm_err(VSM_EINVAL, "vsm_group_checkpoint_revert: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_group_checkpoint_revert: unknown flags 0x%x", flags);
	if ((rc = grp_barrier_up(g)) < 0) {
		grp_barrier_down(g);
		return rc;
	}
	vsm__ctx_lock(g->ctx);
	if ((rc = grp_fresh(g, &ds, &r)) < 0)
		goto out;
	if (!(gc = grp_ckpt(r, name))) {
		rc = vsm_err(VSM_ENOTFOUND, "group '%s' has no checkpoint '%s'", gname(r), name);
		goto out;
	}
	n = gc->n_members;
	if (!(uuids = vsm__calloc(n ? n : 1, sizeof(*uuids)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		uuids[i] = gc->members[i].uuid;
	/* Members' checkpoints are all named @name (gckpt_append). */
	if ((rc = members_check(&cs, g->ctx, r, uuids, n, name, true, true)) < 0)
		goto out;
	/* Past the checks the call finishes forward: one redo step names
	 * every member (written at once, so a crash never leaves a journal
	 * that knows only some of them) before the first revert runs, with
	 * the key of its first device's top now: a revert gives it a new
	 * top, so the step reverts only members not reverted yet (replayed
	 * after a revert went through, it must not drop what was written
	 * since). */
	if (!(arg = vsm__calloc(n + 1, VSM_UUID_STRLEN + 17 + strlen(name) + 3))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	strcpy(arg, name);
	for (i = 0; i < n; i++) {
		const vsm_device *d = vsm_container_device(cs[i], 0);
		char tag[17];

		key_tag(d ? vsm_device_key(d) : "", tag);
		strcat(arg, " ");
		strcat(arg, uuids[i]);
		strcat(arg, " ");
		strcat(arg, tag);
	}
	if ((rc = vsm__wf_begin(&wf, g->ctx, "group-revert", g->datastore, gname(r))) < 0)
		goto out;
	if ((rc = vsm__wf_redo(&wf, GRP_WF_REVERT, arg)) < 0) {
		vsm__wf_end(&wf); /* nothing ran yet */
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (vsm_checkpoint_revert(cs[i], name, NULL) == 0)
			continue;
		if (!first_rc)
			first_rc = -vsm_error_last()->code;
		vsm__log(g->ctx, VSM_LOG_ERROR, "group '%s': member '%s' not reverted to '%s': %s",
			 gname(r), vsm_container_name(cs[i]), name, vsm_error_last()->message);
		snprintf(failed + strlen(failed), sizeof(failed) - strlen(failed), "%s'%s'",
			 n_failed++ ? ", " : "", vsm_container_name(cs[i]));
	}
	if (n_failed) {
		rc = vsm_err(first_rc ? -first_rc : VSM_EIO, "group '%s': revert to '%s': member(s) "
			     "%s not reverted now; the journal finishes them (vsm_ctx_recover, or "
			     "the next context)", gname(r), name, failed);
		goto out;
	}
	rc = 0;
	if (vsm__wf_end(&wf) < 0)
		vsm__error_reset();
	vsm__log(g->ctx, VSM_LOG_INFO, "group '%s': reverted to checkpoint '%s'", gname(r), name);
out:
	free(arg);
	handles_free(cs, n);
	free(uuids);
	vsm_record_free(r);
	vsm__ctx_unlock(g->ctx);
	grp_barrier_down(g);
	return rc;
}

VSM_API int vsm_group_checkpoint_delete(vsm_group *g, const char *name, unsigned int flags)
{
	vsm_record *r = NULL;
	vsm_rec_gckpt gc = {0};
	vsm_dstore *ds;
	vsm_wf wf = {0};
	bool locked = false, wf_on = false;
	char arg[3 * 80];
	size_t i, k, left = 0;
	int rc;

	vsm__error_reset();
	if (!g || !name)
		return vsm_err(VSM_EINVAL, "vsm_group_checkpoint_delete: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_group_checkpoint_delete: unknown flags 0x%x", flags);
	/* A delete merges layers: a top may change under an open handle. */
	if ((rc = grp_barrier_up(g)) < 0) {
		grp_barrier_down(g);
		return rc;
	}
	vsm__ctx_lock(g->ctx);
	if ((rc = vsm__ds_get(&ds, g->ctx, g->datastore)) < 0 ||
	    (rc = vsm__ds_change_begin(g->ctx, ds)) < 0)
		goto out;
	locked = true;
	if ((rc = grp_fresh(g, &ds, &r)) < 0)
		goto out;
	{
		vsm_rec_gckpt *p = grp_ckpt(r, name);

		if (!p) {
			rc = vsm_err(VSM_ENOTFOUND, "group '%s' has no checkpoint '%s'", gname(r),
				     name);
			goto out;
		}
		/* Take it out of the record (ownership moves to @gc). */
		k = (size_t)(p - r->group->ckpts);
		gc = *p;
		memmove(p, p + 1, (r->group->n_ckpts - k - 1) * sizeof(*p));
		r->group->n_ckpts--;
	}
	/* The redo steps check that the group record no longer names the
	 * checkpoint before they delete anything: a crash before the
	 * record write below leaves the group checkpoint whole. */
	if ((rc = vsm__wf_begin(&wf, g->ctx, "group-checkpoint-delete", g->datastore,
				gname(r))) < 0)
		goto out;
	wf_on = true;
	for (i = 0; i < gc.n_members; i++) {
		snprintf(arg, sizeof(arg), "%s %s %s", r->uuid, gc.members[i].checkpoint,
			 gc.members[i].uuid);
		if ((rc = vsm__wf_redo(&wf, GRP_WF_CKPT_DELETE, arg)) < 0)
			goto out;
	}
	if ((rc = grp_commit(g->ctx, ds, r)) < 0)
		goto out;
	wf_on = false;
	grp_handle_set(g, r);
	r = NULL;
	vsm__ds_change_end(g->ctx, ds);
	locked = false;
	/* Committed: finish forward. */
	for (i = 0; i < gc.n_members; i++) {
		vsm_container *c = NULL;

		if (vsm_container_lookup_by_uuid(&c, g->ctx, gc.members[i].uuid) == -VSM_ENOTFOUND)
			continue;
		if (!c || vsm_checkpoint_delete(c, gc.members[i].checkpoint, 0) < 0) {
			if (vsm__error_code() != VSM_ENOTFOUND) {
				vsm__log(g->ctx, VSM_LOG_WARN, "group '%s': checkpoint '%s' of "
					 "member %s not deleted now (%s); the journal finishes it",
					 vsm_group_name(g), gc.members[i].checkpoint,
					 c ? vsm_container_name(c) : gc.members[i].uuid,
					 vsm_error_last()->message);
				left++;
			}
		}
		vsm_container_free(c);
	}
	vsm__error_reset();
	if (!left && vsm__wf_end(&wf) < 0)
		vsm__error_reset();
	vsm__log(g->ctx, VSM_LOG_INFO, "group '%s': checkpoint '%s' deleted", vsm_group_name(g),
		 name);
	rc = 0;
out:
	if (wf_on) {
		/* Nothing was deleted: forget the steps (none is an undo). */
		vsm__saved_error saved;

		vsm__error_save(&saved);
		vsm__wf_end(&wf);
		vsm__error_restore(&saved);
	}
	if (locked)
		vsm__ds_change_end(g->ctx, ds);
	free(gc.name);
	for (i = 0; i < gc.n_members; i++)
		free(gc.members[i].checkpoint);
	free(gc.members);
	vsm_record_free(r);
	vsm__ctx_unlock(g->ctx);
	grp_barrier_down(g);
	return rc;
}

/* --- clone --- */

VSM_API int vsm_group_clone(vsm_group **out, vsm_group *g, const char *checkpoint,
			    const char *new_name, unsigned int flags)
{
	vsm_container **src = NULL, **clones = NULL;
	const vsm_rec_gmember **from = NULL;
	const char **uuids = NULL;
	const vsm_rec_gckpt *gc;
	vsm_record *r = NULL, *nr = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	bool wf_on = false, locked = false;
	char cname[200], rname[80];
	size_t i, j, k, n = 0;
	int rc;

	vsm__error_reset();
	if (out)
		*out = NULL;
	if (!g || !checkpoint)
		return vsm_err(VSM_EINVAL, "vsm_group_clone: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_group_clone: unknown flags 0x%x", flags);
	if ((rc = grp_name_check(new_name)) < 0)
		return rc;
	vsm__ctx_lock(g->ctx);
	if ((rc = grp_fresh(g, &ds, &r)) < 0)
		goto out;
	if (!(gc = grp_ckpt(r, checkpoint))) {
		rc = vsm_err(VSM_ENOTFOUND, "group '%s' has no checkpoint '%s'", gname(r),
			     checkpoint);
		goto out;
	}
	n = gc->n_members;
	if (!(uuids = vsm__calloc(n + 1, sizeof(*uuids))) ||
	    !(clones = vsm__calloc(n + 1, sizeof(*clones))) ||
	    !(from = vsm__calloc(n + 1, sizeof(*from)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		uuids[i] = gc->members[i].uuid;
	if ((rc = members_check(&src, g->ctx, r, uuids, n, checkpoint, true, false)) < 0)
		goto out;
	grp_rec_name(rname, sizeof(rname), new_name);
	if ((rc = vsm__wf_begin(&wf, g->ctx, "group-clone", g->datastore, new_name)) < 0)
		goto out;
	wf_on = true;
	for (i = 0; i < n; i++) {
		snprintf(cname, sizeof(cname), "%s-%s", vsm_container_name(src[i]), new_name);
		if ((rc = vsm__name_check("container", cname)) < 0 ||
		    (rc = vsm_checkpoint_clone(&clones[i], src[i], gc->members[i].checkpoint, cname,
					       0)) < 0) {
			vsm__error_prefix("group '%s': clone of member '%s'", gname(r),
					  vsm_container_name(src[i]));
			goto out;
		}
		if ((rc = vsm__wf_undo(&wf, GRP_WF_CLONE_UNDO, vsm_container_uuid(clones[i]))) < 0)
			goto out;
		from[i] = grp_member_by_uuid(r, uuids[i]);
	}
	/* The new group's record, with the plan of the members cloned. */
	if (!(nr = vsm__calloc(1, sizeof(*nr))) || !(nr->group = vsm__calloc(1, sizeof(*nr->group))) ||
	    !(nr->name = vsm__strdup(rname)) ||
	    !(nr->group->members = vsm__calloc(n + 1, sizeof(*nr->group->members)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	vsm__uuid_new(nr->uuid);
	nr->ctime = (int64_t)time(NULL);
	for (i = 0; i < n; i++) {
		vsm_rec_gmember *m = &nr->group->members[i];
		const vsm_rec_gmember *f = from[i];
		vsm_dstore *mds;

		nr->group->n_members = i + 1;
		m->prefix = -1;
		if ((rc = vsm__ds_get(&mds, g->ctx, vsm_container_datastore(clones[i]))) < 0)
			goto out;
		memcpy(m->ds_uuid, mds->meta->geom.uuid, sizeof(m->ds_uuid));
		memcpy(m->uuid, vsm_container_uuid(clones[i]), sizeof(m->uuid));
		if (!(m->datastore = vsm__strdup(mds->name)) ||
		    !(m->name = vsm__strdup(vsm_container_name(clones[i])))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
		if (!f)
			continue; /* left the group since: no plan */
		m->priority = f->priority;
		m->prefix = f->prefix;
		if ((f->mac && !(m->mac = vsm__strdup(f->mac))) ||
		    (f->network && !(m->network = vsm__strdup(f->network))) ||
		    (f->ip && !(m->ip = vsm__strdup(f->ip))) ||
		    (f->gateway && !(m->gateway = vsm__strdup(f->gateway))) ||
		    (f->dns && !(m->dns = vsm__strdup(f->dns))) ||
		    (f->n_after && !(m->after = vsm__calloc(f->n_after, sizeof(char *))))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
		/* "after" names the clones of the members named. */
		for (j = 0; j < f->n_after; j++)
			for (k = 0; k < n; k++)
				if (from[k] && !strcmp(from[k]->name, f->after[j])) {
					snprintf(cname, sizeof(cname), "%s-%s", f->after[j], new_name);
					if (!(m->after[m->n_after] = vsm__strdup(cname))) {
						rc = -VSM_ENOMEM;
						goto out;
					}
					m->n_after++;
				}
	}
	if ((rc = vsm__ds_change_begin(g->ctx, ds)) < 0)
		goto out;
	locked = true;
	if (vsm__ds_find(ds, rname, NULL)) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': group '%s' already exists", ds->name,
			     new_name);
		goto out;
	}
	if ((rc = vsm__wf_undo(&wf, VSM_WF_UUID_FREE, nr->uuid)) < 0 ||
	    (rc = grp_insert(g->ctx, ds, nr)) < 0)
		goto out;
	/* The commit point: forgetting the journal entry (while it is there,
	 * recovery would remove the new group and its clones: so a failure
	 * to forget it is a failure of the call, rolled back). */
	if ((rc = vsm__wf_end(&wf)) < 0)
		goto out;
	wf_on = false;
	vsm__log(g->ctx, VSM_LOG_INFO, "group '%s': cloned from checkpoint '%s' of group '%s'",
		 new_name, checkpoint, gname(r));
	if (out && grp_handle_new(out, g->ctx, ds->name, nr) < 0) {
		*out = NULL;
		vsm__log(g->ctx, VSM_LOG_WARN, "group '%s' created, but no handle: out of memory",
			 new_name);
		vsm__error_reset();
	}
	rc = 0;
out:
	if (wf_on)
		vsm__wf_abort(&wf);
	if (locked)
		vsm__ds_change_end(g->ctx, ds);
	handles_free(src, n);
	handles_free(clones, n);
	free(from);
	free(uuids);
	vsm_record_free(r);
	vsm_record_free(nr);
	vsm__ctx_unlock(g->ctx);
	return rc;
}

/* --- journal actions --- */

static int parse3(const char *arg, char a[80], char b[80], char c[80])
{
	if (sscanf(arg, "%79s %79s %79s", a, b, c) != 3)
		return vsm_err(VSM_ECORRUPT, "journal: bad group step argument '%s'", arg);
	return 0;
}

/* Does group @guuid on @ds list checkpoint @name? (A group gone: no.) */
static int group_lists(vsm_ctx *ctx, vsm_dstore *ds, const char *guuid, const char *name,
		       bool *out)
{
	const vsm_record *r;
	int rc;

	*out = false;
	if ((rc = vsm__ds_refresh(ctx, ds)) < 0)
		return rc;
	r = vsm__ds_find(ds, NULL, guuid);
	*out = r && r->group && grp_ckpt(r, name);
	return 0;
}

static int delete_member_ckpt(vsm_ctx *ctx, const char *uuid, const char *name)
{
	vsm_container *c = NULL;
	int rc = vsm_container_lookup_by_uuid(&c, ctx, uuid);

	if (rc == -VSM_ENOTFOUND) {
		vsm__error_reset();
		return 0;
	}
	if (rc == 0 && (rc = vsm_checkpoint_delete(c, name, 0)) == -VSM_ENOTFOUND) {
		vsm__error_reset();
		rc = 0;
	}
	vsm_container_free(c);
	return rc;
}

int vsm__group_wf_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action, const char *arg)
{
	char a[80], b[80], c[80];
	bool listed;
	int rc;

	if (!strcmp(action, GRP_WF_CKPT_UNDO) || !strcmp(action, GRP_WF_CKPT_DELETE)) {
		/* Undo of a create: only while the record does not name the
		 * group checkpoint (then it was never committed). Redo of a
		 * delete: only once the record no longer names it. Either way:
		 * delete the member's checkpoint when the record does not
		 * name the group checkpoint. */
		if ((rc = parse3(arg, a, b, c)) < 0 || (rc = group_lists(ctx, ds, a, b, &listed)) < 0)
			return rc;
		return listed ? 0 : delete_member_ckpt(ctx, c, b);
	}
	if (!strcmp(action, GRP_WF_REVERT)) {
		char key[32], tag[17];
		const char *p = arg;
		int first = 0, len = 0;

		/* "NAME UUID TAG...": revert each member still there whose
		 * first device's top still has key tag TAG (not reverted yet). */
		if (sscanf(p, "%79s%n", b, &len) != 1)
			return vsm_err(VSM_ECORRUPT, "journal: bad group step argument '%s'", arg);
		for (p += len; sscanf(p, "%79s %31s%n", a, key, &len) == 2; p += len) {
			vsm_container *ct = NULL;
			const vsm_device *d;

			if ((rc = vsm_container_lookup_by_uuid(&ct, ctx, a)) == -VSM_ENOTFOUND) {
				vsm__error_reset();
				continue;
			}
			if (rc == 0 && (d = vsm_container_device(ct, 0))) {
				key_tag(vsm_device_key(d), tag);
				if (!strcmp(tag, key))
					rc = vsm_checkpoint_revert(ct, b, NULL);
			}
			vsm_container_free(ct);
			if (rc < 0 && !first)
				first = rc;
		}
		return first;
	}
	if (!strcmp(action, GRP_WF_CLONE_UNDO)) {
		vsm_container *ct = NULL;

		if ((rc = vsm_container_lookup_by_uuid(&ct, ctx, arg)) == -VSM_ENOTFOUND) {
			vsm__error_reset();
			return 0;
		}
		if (rc == 0)
			rc = vsm_container_destroy(ct, VSM_CONTAINER_DESTROY_FORCE);
		vsm_container_free(ct);
		return rc;
	}
	return vsm_err(VSM_ECORRUPT, "journal names unknown group action '%s'", action);
}
