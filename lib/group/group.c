/*
 * Consistency groups (doc/groups.md): the group record on its datastore
 * (create, lookup, list, destroy), its members and its recovery plan,
 * and the handle. Checkpoints of a group are gckpt.c; its image handles
 * and write barrier gimage.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "becall.h"
#include "catalog.h"
#include "group_int.h"

int grp_name_check(const char *name)
{
	int rc = vsm__name_check("group", name);

	if (rc == 0 && strlen(name) > 64 - strlen(VSM_REC_GROUP_PREFIX))
		rc = vsm_err(VSM_EINVAL, "group name '%s' is longer than %zu characters", name,
			     64 - strlen(VSM_REC_GROUP_PREFIX));
	return rc;
}

int grp_rec_name(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s%s", VSM_REC_GROUP_PREFIX, name);
	return 0;
}

static const char *gname(const vsm_record *r)
{
	return r->name + strlen(VSM_REC_GROUP_PREFIX);
}

/* --- the handle --- */

int grp_handle_new(vsm_group **out, vsm_ctx *ctx, const char *ds, const vsm_record *r)
{
	vsm_group *g = vsm__calloc(1, sizeof(*g));
	pthread_rwlockattr_t ra;

	if (!g)
		return -VSM_ENOMEM;
	if (!(g->datastore = vsm__strdup(ds)) || !(g->rec = vsm_record_dup(r))) {
		free(g->datastore);
		free(g);
		return -VSM_ENOMEM;
	}
	g->ctx = ctx;
	pthread_mutex_init(&g->imgs_lock, NULL);
	/* Writer-preferring: a checkpoint waiting for the barrier is not
	 * starved by a writer that writes as fast as it can. */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&g->barrier, &ra);
	pthread_rwlockattr_destroy(&ra);
	*out = g;
	return 0;
}

void grp_handle_set(vsm_group *g, vsm_record *r)
{
	vsm_record **grown = realloc(g->old, (g->n_old + 1) * sizeof(*grown));

	if (!grown) {
		/* Keep the old copy (the getters' pointers) rather than lose
		 * it: the handle then shows the older state. */
		vsm_record_free(r);
		vsm__log(g->ctx, VSM_LOG_WARN, "group handle not updated: out of memory");
		return;
	}
	g->old = grown;
	g->old[g->n_old++] = g->rec;
	g->rec = r;
}

VSM_API void vsm_group_free(vsm_group *g)
{
	size_t i;

	if (!g)
		return;
	if (g->n_imgs)
		vsm__log(g->ctx, VSM_LOG_WARN, "group '%s' freed with %zu image handles open",
			 gname(g->rec), g->n_imgs);
	for (i = 0; i < g->n_old; i++)
		vsm_record_free(g->old[i]);
	free(g->old);
	vsm_record_free(g->rec);
	free(g->datastore);
	free(g->imgs);
	pthread_mutex_destroy(&g->imgs_lock);
	pthread_rwlock_destroy(&g->barrier);
	free(g);
}

VSM_API void vsm_group_list_free(vsm_group **list, size_t count)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < count; i++)
		vsm_group_free(list[i]);
	free(list);
}

VSM_API const char *vsm_group_name(const vsm_group *g)
{
	return g ? gname(g->rec) : NULL;
}

VSM_API const char *vsm_group_uuid(const vsm_group *g)
{
	return g ? g->rec->uuid : NULL;
}

VSM_API const char *vsm_group_datastore(const vsm_group *g)
{
	return g ? g->datastore : NULL;
}

VSM_API int64_t vsm_group_ctime(const vsm_group *g)
{
	return g ? g->rec->ctime : 0;
}

VSM_API size_t vsm_group_member_count(const vsm_group *g)
{
	return g ? g->rec->group->n_members : 0;
}

static const vsm_rec_gmember *member_at(const vsm_group *g, size_t i)
{
	return g && i < g->rec->group->n_members ? &g->rec->group->members[i] : NULL;
}

VSM_API const char *vsm_group_member_name(const vsm_group *g, size_t i)
{
	const vsm_rec_gmember *m = member_at(g, i);

	return m ? m->name : NULL;
}

VSM_API const char *vsm_group_member_uuid(const vsm_group *g, size_t i)
{
	const vsm_rec_gmember *m = member_at(g, i);

	return m ? m->uuid : NULL;
}

VSM_API const char *vsm_group_member_datastore(const vsm_group *g, size_t i)
{
	const vsm_rec_gmember *m = member_at(g, i);

	return m ? m->datastore : NULL;
}

static const vsm_rec_gckpt *ckpt_at(const vsm_group *g, size_t i)
{
	return g && i < g->rec->group->n_ckpts ? &g->rec->group->ckpts[i] : NULL;
}

VSM_API size_t vsm_group_checkpoint_count(const vsm_group *g)
{
	return g ? g->rec->group->n_ckpts : 0;
}

VSM_API const char *vsm_group_checkpoint_name(const vsm_group *g, size_t i)
{
	const vsm_rec_gckpt *c = ckpt_at(g, i);

	return c ? c->name : NULL;
}

VSM_API int64_t vsm_group_checkpoint_ctime(const vsm_group *g, size_t i)
{
	const vsm_rec_gckpt *c = ckpt_at(g, i);

	return c ? c->ctime : 0;
}

VSM_API size_t vsm_group_checkpoint_member_count(const vsm_group *g, size_t i)
{
	const vsm_rec_gckpt *c = ckpt_at(g, i);

	return c ? c->n_members : 0;
}

VSM_API const char *vsm_group_checkpoint_member_uuid(const vsm_group *g, size_t i, size_t j)
{
	const vsm_rec_gckpt *c = ckpt_at(g, i);

	return c && j < c->n_members ? c->members[j].uuid : NULL;
}

VSM_API const char *vsm_group_checkpoint_member_checkpoint(const vsm_group *g, size_t i,
							   size_t j)
{
	const vsm_rec_gckpt *c = ckpt_at(g, i);

	return c && j < c->n_members ? c->members[j].checkpoint : NULL;
}

/* --- record helpers --- */

vsm_rec_gmember *grp_member(const vsm_record *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->group->n_members; i++)
		if (!strcmp(r->group->members[i].name, name))
			return &r->group->members[i];
	return NULL;
}

vsm_rec_gmember *grp_member_by_uuid(const vsm_record *r, const char *uuid)
{
	size_t i;

	for (i = 0; i < r->group->n_members; i++)
		if (!strcmp(r->group->members[i].uuid, uuid))
			return &r->group->members[i];
	return NULL;
}

vsm_rec_gckpt *grp_ckpt(const vsm_record *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->group->n_ckpts; i++)
		if (!strcmp(r->group->ckpts[i].name, name))
			return &r->group->ckpts[i];
	return NULL;
}

int grp_fresh(vsm_group *g, vsm_dstore **ds, vsm_record **out)
{
	vsm_record *r;
	int rc;

	*out = NULL;
	if ((rc = vsm__ds_get(ds, g->ctx, g->datastore)) < 0 ||
	    (rc = vsm__ds_refresh(g->ctx, *ds)) < 0)
		return rc;
	if (!(r = vsm__ds_find(*ds, NULL, g->rec->uuid)) || !r->group)
		return vsm_err(VSM_ENOTFOUND, "datastore '%s': group '%s' no longer exists",
			       g->datastore, gname(g->rec));
	if (!(*out = vsm_record_dup(r)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	return 0;
}

/* The record codec's decoder is the one judge of what a group record
 * may hold: a changed record is checked by encoding and decoding it
 * before it is written, so input the reader would refuse is refused
 * (as -VSM_EINVAL) and never reaches the datastore. */
static int check_by_codec(const vsm_record *r)
{
	vsm_record *back = NULL;
	char *json = NULL;
	int rc;

	if ((rc = vsm_record_encode(&json, r)) < 0)
		return rc;
	rc = vsm_record_decode(&back, json, strlen(json), "group");
	free(json);
	vsm_record_free(back);
	if (rc == -VSM_ECORRUPT)
		return vsm_err(VSM_EINVAL, "%s", vsm_error_last()->message);
	return rc;
}

int grp_commit(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r)
{
	int rc;

	if ((rc = check_by_codec(r)) < 0)
		return rc;
	return vsm__ds_put_record(ctx, ds, r);
}

int grp_insert(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r)
{
	int rc;

	if ((rc = check_by_codec(r)) < 0)
		return rc;
	return vsm__ds_insert_record(ctx, ds, r);
}

/* Names of the datastores to walk: @only, or every registered one. */
static int ds_names(vsm_ctx *ctx, const char *only, char ***names, size_t *n)
{
	if (only) {
		if (!(*names = vsm__calloc(1, sizeof(char *))) ||
		    !((*names)[0] = vsm__strdup(only))) {
			free(*names);
			return -VSM_ENOMEM;
		}
		*n = 1;
		return 0;
	}
	return vsm_catalog_strings(ctx->cat, names, n, "SELECT name FROM datastores ORDER BY "
				   "name", NULL);
}

/* One datastore of a walk, refreshed; 1 when it cannot be opened and the
 * walk covers every datastore (logged and skipped). */
static int walk_open(vsm_dstore **out, vsm_ctx *ctx, const char *name, bool named)
{
	int rc;

	if ((rc = vsm__ds_get(out, ctx, name)) == 0 && (rc = vsm__ds_refresh(ctx, *out)) == 0)
		return 0;
	if (named)
		return rc;
	vsm__log(ctx, VSM_LOG_WARN, "%s", vsm_error_last()->message);
	vsm__error_reset();
	return 1;
}

int grp_find_membership(vsm_ctx *ctx, const char *uuid, const char *except, char *group_out,
			size_t size)
{
	char **names = NULL;
	size_t n = 0, i, j;
	vsm_dstore *ds;
	int rc;

	group_out[0] = '\0';
	if ((rc = ds_names(ctx, NULL, &names, &n)) < 0)
		return rc;
	for (i = 0; i < n && !group_out[0]; i++) {
		if (walk_open(&ds, ctx, names[i], false))
			continue;
		for (j = 0; j < ds->n_recs && !group_out[0]; j++) {
			const vsm_record *r = ds->recs[j];

			if (r->group && (!except || strcmp(r->uuid, except)) &&
			    grp_member_by_uuid(r, uuid))
				snprintf(group_out, size, "%s", gname(r));
		}
	}
	vsm_strv_free(names, n);
	return 0;
}

int grp_member_open(vsm_container **out, vsm_ctx *ctx, const vsm_rec_gmember *m)
{
	int rc = vsm_container_lookup_by_uuid(out, ctx, m->uuid);

	if (rc < 0)
		vsm__error_prefix("member '%s' (datastore '%s')", m->name, m->datastore);
	return rc;
}

/* Fill @m from container @c. */
static int member_from(vsm_rec_gmember *m, vsm_ctx *ctx, vsm_container *c)
{
	vsm_dstore *ds;
	int rc;

	memset(m, 0, sizeof(*m));
	m->prefix = -1;
	if ((rc = vsm__ds_get(&ds, ctx, vsm_container_datastore(c))) < 0)
		return rc;
	if (!ds->meta)
		return vsm_err(VSM_ESTATE, "datastore '%s' has no metadata", ds->name);
	memcpy(m->ds_uuid, ds->meta->geom.uuid, sizeof(m->ds_uuid));
	memcpy(m->uuid, vsm_container_uuid(c), sizeof(m->uuid));
	if (!(m->datastore = vsm__strdup(vsm_container_datastore(c))) ||
	    !(m->name = vsm__strdup(vsm_container_name(c))))
		return -VSM_ENOMEM;
	return 0;
}

static void member_free_fields(vsm_rec_gmember *m)
{
	vsm_rec_gmember_clear(m);
	memset(m, 0, sizeof(*m));
}

/* Append a member for @c to @r, refusing a duplicate name or container,
 * or a container that another group holds. */
static int member_append(vsm_ctx *ctx, vsm_record *r, vsm_container *c)
{
	char other[80];
	vsm_rec_gmember m, *grown;
	int rc;

	if (grp_member_by_uuid(r, vsm_container_uuid(c)))
		return vsm_err(VSM_EEXISTS, "group '%s': container '%s' is a member already",
			       gname(r), vsm_container_name(c));
	if (grp_member(r, vsm_container_name(c)))
		return vsm_err(VSM_EEXISTS, "group '%s': a member is named '%s' already (member "
			       "names are unique in a group)", gname(r), vsm_container_name(c));
	if ((rc = grp_find_membership(ctx, vsm_container_uuid(c), r->uuid, other,
				      sizeof(other))) < 0)
		return rc;
	if (other[0])
		return vsm_err(VSM_EBUSY, "container '%s' is a member of group '%s' (a container "
			       "belongs to at most one group)", vsm_container_name(c), other);
	if ((rc = member_from(&m, ctx, c)) < 0) {
		member_free_fields(&m);
		return rc;
	}
	if (!(grown = realloc(r->group->members, (r->group->n_members + 1) * sizeof(*grown)))) {
		member_free_fields(&m);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	r->group->members = grown;
	r->group->members[r->group->n_members++] = m;
	return 0;
}

VSM_API int vsm_group_create(vsm_group **out, vsm_ctx *ctx, const char *name,
			     vsm_container *const *members, size_t n,
			     const vsm_group_opts *opts)
{
	char rname[80];
	const char *ds_name;
	vsm_record *r = NULL;
	vsm_group *g = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	bool locked = false;
	size_t i;
	int rc;

	vsm__error_reset();
	if (out)
		*out = NULL;
	if (!ctx || (n && !members))
		return vsm_err(VSM_EINVAL, "vsm_group_create: NULL argument");
	if (opts && (opts->version == 0 || opts->version > VSM_GROUP_OPTS_VERSION))
		return vsm_err(VSM_EVERSION, "vsm_group_opts version %u is not supported",
			       opts->version);
	if (opts && opts->flags)
		return vsm_err(VSM_EINVAL, "vsm_group_create: unknown flags 0x%x", opts->flags);
	if ((rc = grp_name_check(name)) < 0)
		return rc;
	ds_name = opts && opts->datastore ? opts->datastore : n ? vsm_container_datastore(members[0])
								: NULL;
	if (!ds_name)
		return vsm_err(VSM_EINVAL, "group '%s': no member and no datastore given", name);
	for (i = 0; i < n; i++)
		if (!members[i])
			return vsm_err(VSM_EINVAL, "vsm_group_create: member %zu is NULL", i);
	grp_rec_name(rname, sizeof(rname), name);
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, ds_name)) < 0 || (rc = vsm__ds_change_begin(ctx, ds)) < 0)
		goto out;
	locked = true;
	if (vsm__ds_find(ds, rname, NULL)) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': group '%s' already exists", ds_name, name);
		goto out;
	}
	if (!(r = vsm__calloc(1, sizeof(*r))) || !(r->group = vsm__calloc(1, sizeof(*r->group))) ||
	    !(r->name = vsm__strdup(rname))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	vsm__uuid_new(r->uuid);
	r->ctime = (int64_t)time(NULL);
	for (i = 0; i < n; i++) {
		/* Each member's record is current (it may have been renamed or
		 * destroyed since the caller's handle was made). */
		if ((rc = vsm_container_refresh(members[i])) < 0 ||
		    (rc = member_append(ctx, r, members[i])) < 0)
			goto out;
	}
	/* The group's datastore may have been walked (refreshed) above;
	 * it is still under our lock, so its name is still free. */
	if ((rc = check_by_codec(r)) < 0 ||
	    (rc = vsm__wf_begin(&wf, ctx, "group-create", ds_name, name)) < 0)
		goto out;
	if ((rc = vsm__wf_undo(&wf, VSM_WF_UUID_FREE, r->uuid)) < 0 ||
	    (rc = vsm__ds_insert_record(ctx, ds, r)) < 0 || (rc = vsm__wf_end(&wf)) < 0) {
		vsm__wf_abort(&wf);
		goto out;
	}
	vsm__log(ctx, VSM_LOG_INFO, "datastore '%s': group '%s' created with %zu members",
		 ds_name, name, n);
	if (out && (rc = grp_handle_new(&g, ctx, ds_name, r)) == 0)
		*out = g;
out:
	if (locked)
		vsm__ds_change_end(ctx, ds);
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}

/* Lookup over the datastores: @name or every group (@all). */
static int find(vsm_group ***found, size_t *n_found, vsm_ctx *ctx, const char *datastore,
		const char *name)
{
	char **names = NULL, *damaged = NULL, rname[80];
	vsm_group **list = NULL, **grown;
	size_t n = 0, i, j, total = 0;
	int rc;

	if (name)
		grp_rec_name(rname, sizeof(rname), name);
	if ((rc = ds_names(ctx, datastore, &names, &n)) < 0)
		return rc;
	for (i = 0; i < n; i++) {
		vsm_dstore *ds;

		if ((rc = walk_open(&ds, ctx, names[i], datastore != NULL)) < 0)
			goto fail;
		if (rc > 0) {
			rc = 0;
			continue;
		}
		if (!(grown = realloc(list, (total + ds->n_recs + 1) * sizeof(*grown)))) {
			rc = -VSM_ENOMEM;
			goto fail;
		}
		list = grown;
		for (j = 0; j < ds->n_recs; j++) {
			const vsm_record *r = ds->recs[j];

			if (!r->group || (name && strcmp(r->name, rname)))
				continue;
			if ((rc = grp_handle_new(&list[total], ctx, ds->name, r)) < 0)
				goto fail;
			total++;
		}
		if (ds->n_damaged && !damaged &&
		    asprintf(&damaged, "datastore '%s': the record in slot %u is damaged (%s)",
			     ds->name, ds->damaged[0], ds->damaged_why[0]) < 0)
			damaged = NULL;
	}
	if (name && !total) {
		/* The group may be the one whose record we cannot read. */
		if (damaged)
			rc = vsm_err(VSM_ECORRUPT, "group '%s' not found; %s", name, damaged);
		else
			rc = vsm_err(VSM_ENOTFOUND, "group '%s' does not exist%s%s", name,
				     datastore ? " on datastore " : "", datastore ? datastore : "");
		goto fail;
	}
	free(damaged);
	vsm_strv_free(names, n);
	*found = list;
	*n_found = total;
	return 0;
fail:
	free(damaged);
	vsm_strv_free(names, n);
	vsm_group_list_free(list, total);
	return rc;
}

VSM_API int vsm_group_lookup(vsm_group **out, vsm_ctx *ctx, const char *datastore,
			     const char *name)
{
	vsm_group **list = NULL;
	size_t n = 0;
	int rc;

	vsm__error_reset();
	if (!out || !ctx || !name)
		return vsm_err(VSM_EINVAL, "vsm_group_lookup: NULL argument");
	*out = NULL;
	if ((rc = grp_name_check(name)) < 0)
		return rc;
	vsm__ctx_lock(ctx);
	rc = find(&list, &n, ctx, datastore, name);
	vsm__ctx_unlock(ctx);
	if (rc < 0)
		return rc;
	if (n > 1) {
		rc = vsm_err(VSM_EEXISTS, "group name '%s' is ambiguous: it exists on datastores "
			     "'%s' and '%s'; name the datastore", name, list[0]->datastore,
			     list[1]->datastore);
		vsm_group_list_free(list, n);
		return rc;
	}
	*out = list[0];
	free(list);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	const vsm_group *x = *(vsm_group *const *)a, *y = *(vsm_group *const *)b;
	int c = strcmp(x->datastore, y->datastore);

	return c ? c : strcmp(x->rec->name, y->rec->name);
}

VSM_API int vsm_group_list(vsm_group ***out, size_t *count, vsm_ctx *ctx)
{
	int rc;

	vsm__error_reset();
	if (!out || !count || !ctx)
		return vsm_err(VSM_EINVAL, "vsm_group_list: NULL argument");
	*out = NULL;
	*count = 0;
	vsm__ctx_lock(ctx);
	rc = find(out, count, ctx, NULL, NULL);
	vsm__ctx_unlock(ctx);
	if (rc == 0 && *count)
		qsort(*out, *count, sizeof(**out), by_name);
	return rc;
}

VSM_API int vsm_group_refresh(vsm_group *g)
{
	vsm_record *r = NULL;
	vsm_dstore *ds;
	int rc;

	vsm__error_reset();
	if (!g)
		return vsm_err(VSM_EINVAL, "vsm_group_refresh: NULL argument");
	vsm__ctx_lock(g->ctx);
	if ((rc = grp_fresh(g, &ds, &r)) == 0)
		grp_handle_set(g, r);
	vsm__ctx_unlock(g->ctx);
	return rc;
}

/* A change of the group record under its datastore's metadata lock:
 * @fn edits a fresh copy; it is written and swapped into the handle. */
typedef int (*edit_fn)(vsm_group *g, vsm_record *r, void *payload);

static int edit(vsm_group *g, edit_fn fn, void *payload)
{
	vsm_record *r = NULL;
	vsm_dstore *ds;
	int rc;

	vsm__ctx_lock(g->ctx);
	if ((rc = vsm__ds_get(&ds, g->ctx, g->datastore)) < 0 ||
	    (rc = vsm__ds_change_begin(g->ctx, ds)) < 0)
		goto out;
	if ((rc = grp_fresh(g, &ds, &r)) == 0 && (rc = fn(g, r, payload)) == 0 &&
	    (rc = grp_commit(g->ctx, ds, r)) == 0) {
		grp_handle_set(g, r);
		r = NULL;
	}
	vsm__ds_change_end(g->ctx, ds);
out:
	vsm_record_free(r);
	vsm__ctx_unlock(g->ctx);
	return rc;
}

static int add_fn(vsm_group *g, vsm_record *r, void *payload)
{
	vsm_container *c = payload;
	int rc;

	if ((rc = vsm_container_refresh(c)) < 0 || (rc = member_append(g->ctx, r, c)) < 0)
		return rc;
	vsm__log(g->ctx, VSM_LOG_INFO, "group '%s': member '%s' added", gname(r),
		 vsm_container_name(c));
	return 0;
}

VSM_API int vsm_group_member_add(vsm_group *g, vsm_container *c, unsigned int flags)
{
	vsm__error_reset();
	if (!g || !c)
		return vsm_err(VSM_EINVAL, "vsm_group_member_add: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_group_member_add: unknown flags 0x%x", flags);
	return edit(g, add_fn, c);
}

static void strv_remove(char **v, size_t *n, const char *s)
{
	size_t i;

	for (i = 0; i < *n; i++) {
		if (strcmp(v[i], s))
			continue;
		free(v[i]);
		memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
		(*n)--;
		return;
	}
}

static int remove_fn(vsm_group *g, vsm_record *r, void *payload)
{
	const char *name = payload;
	vsm_rec_gmember *m = grp_member(r, name);
	size_t i;

	if (!m)
		return vsm_err(VSM_ENOTFOUND, "group '%s' has no member '%s'", gname(r), name);
	i = (size_t)(m - r->group->members);
	member_free_fields(m);
	memmove(&r->group->members[i], &r->group->members[i + 1],
		(r->group->n_members - i - 1) * sizeof(*m));
	r->group->n_members--;
	for (i = 0; i < r->group->n_members; i++)
		strv_remove(r->group->members[i].after, &r->group->members[i].n_after, name);
	vsm__log(g->ctx, VSM_LOG_INFO, "group '%s': member '%s' removed", gname(r), name);
	return 0;
}

VSM_API int vsm_group_member_remove(vsm_group *g, const char *name, unsigned int flags)
{
	vsm__error_reset();
	if (!g || !name)
		return vsm_err(VSM_EINVAL, "vsm_group_member_remove: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_group_member_remove: unknown flags 0x%x", flags);
	return edit(g, remove_fn, (void *)name);
}

VSM_API int vsm_group_destroy(vsm_group *g, unsigned int flags)
{
	vsm_record *r = NULL;
	vsm_dstore *ds;
	int rc;

	vsm__error_reset();
	if (!g)
		return vsm_err(VSM_EINVAL, "vsm_group_destroy: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_group_destroy: unknown flags 0x%x", flags);
	if (grp_has_images(g))
		return vsm_err(VSM_EBUSY, "group '%s': image handles are open through it",
			       gname(g->rec));
	vsm__ctx_lock(g->ctx);
	if ((rc = vsm__ds_get(&ds, g->ctx, g->datastore)) < 0 ||
	    (rc = vsm__ds_change_begin(g->ctx, ds)) < 0)
		goto out;
	if ((rc = grp_fresh(g, &ds, &r)) == 0 &&
	    (rc = vsm__ds_free_slot(g->ctx, ds, r->slot, r->uuid)) >= 0) {
		rc = 0;
		vsm__log(g->ctx, VSM_LOG_INFO, "datastore '%s': group '%s' destroyed", ds->name,
			 gname(r));
	}
	vsm__ds_change_end(g->ctx, ds);
out:
	vsm_record_free(r);
	vsm__ctx_unlock(g->ctx);
	return rc;
}

/* --- the recovery plan --- */

static int dup_opt(char **dst, const char *src)
{
	free(*dst);
	*dst = NULL;
	return !src || (*dst = vsm__strdup(src)) ? 0 : -VSM_ENOMEM;
}

typedef struct {
	const vsm_group_plan_entry *e;
	size_t n;
} plan_args;

static int plan_fn(vsm_group *g, vsm_record *r, void *payload)
{
	plan_args *a = payload;
	size_t i, j;
	int rc;

	(void)g;
	for (i = 0; i < a->n; i++) {
		const vsm_group_plan_entry *e = &a->e[i];
		vsm_rec_gmember *m;

		if (e->version == 0 || e->version > VSM_GROUP_PLAN_ENTRY_VERSION)
			return vsm_err(VSM_EVERSION, "vsm_group_plan_entry version %u is not "
				       "supported", e->version);
		if (!e->member || !(m = grp_member(r, e->member)))
			return vsm_err(VSM_ENOTFOUND, "group '%s' has no member '%s'", gname(r),
				       e->member ? e->member : "(null)");
		if (e->priority > 1000000)
			return vsm_err(VSM_EINVAL, "group '%s': member '%s': priority %u is above "
				       "1000000", gname(r), e->member, e->priority);
		if (e->n_after && !e->after)
			return vsm_err(VSM_EINVAL, "group '%s': member '%s': after is NULL",
				       gname(r), e->member);
		if (!e->mac && (e->network || e->ip || e->gateway || e->dns))
			return vsm_err(VSM_EINVAL, "group '%s': member '%s': network settings need "
				       "a MAC", gname(r), e->member);
		if (e->ip && (e->prefix < 0 || e->prefix > 128))
			return vsm_err(VSM_EINVAL, "group '%s': member '%s': prefix length %d is "
				       "not 0-128", gname(r), e->member, e->prefix);
		m->priority = e->priority;
		for (j = 0; j < m->n_after; j++)
			free(m->after[j]);
		free(m->after);
		m->after = NULL;
		m->n_after = 0;
		if (e->n_after && !(m->after = vsm__calloc(e->n_after, sizeof(char *))))
			return -VSM_ENOMEM;
		for (j = 0; j < e->n_after; j++) {
			if (!e->after[j])
				return vsm_err(VSM_EINVAL, "group '%s': member '%s': after[%zu] is "
					       "NULL", gname(r), e->member, j);
			if (!(m->after[j] = vsm__strdup(e->after[j])))
				return -VSM_ENOMEM;
			m->n_after = j + 1;
		}
		if ((rc = dup_opt(&m->mac, e->mac)) < 0 ||
		    (rc = dup_opt(&m->network, e->mac ? e->network : NULL)) < 0 ||
		    (rc = dup_opt(&m->ip, e->mac ? e->ip : NULL)) < 0 ||
		    (rc = dup_opt(&m->gateway, e->mac ? e->gateway : NULL)) < 0 ||
		    (rc = dup_opt(&m->dns, e->mac ? e->dns : NULL)) < 0)
			return rc;
		m->prefix = e->mac && e->ip ? e->prefix : -1;
	}
	/* MACs, names of dependencies and cycles: the record's decoder
	 * checks them when grp_commit writes it. */
	return 0;
}

VSM_API int vsm_group_plan_set(vsm_group *g, const vsm_group_plan_entry *entries, size_t n,
			       unsigned int flags)
{
	plan_args a = { entries, n };

	vsm__error_reset();
	if (!g || (n && !entries))
		return vsm_err(VSM_EINVAL, "vsm_group_plan_set: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_group_plan_set: unknown flags 0x%x", flags);
	return edit(g, plan_fn, &a);
}

VSM_API int vsm_group_plan_get(const vsm_group *g, size_t i, vsm_group_plan_entry *out)
{
	const vsm_rec_gmember *m;

	vsm__error_reset();
	if (!g || !out)
		return vsm_err(VSM_EINVAL, "vsm_group_plan_get: NULL argument");
	if (out->version == 0 || out->version > VSM_GROUP_PLAN_ENTRY_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_group_plan_entry version %u is not supported",
			       out->version);
	if (!(m = member_at(g, i)))
		return vsm_err(VSM_ENOTFOUND, "group '%s' has no member %zu", gname(g->rec), i);
	out->member = m->name;
	out->priority = (unsigned int)m->priority;
	out->after = (const char *const *)m->after;
	out->n_after = m->n_after;
	out->mac = m->mac;
	out->network = m->network;
	out->ip = m->ip;
	out->prefix = (int)m->prefix;
	out->gateway = m->gateway;
	out->dns = m->dns;
	return 0;
}

/* --- the destroy check (lib/open.c sets ctx->destroy_check) --- */

int vsm__group_destroy_check(vsm_ctx *ctx, const char *ds_name, const vsm_record *r)
{
	char other[80];
	int rc;

	(void)ds_name;
	if ((rc = grp_find_membership(ctx, r->uuid, NULL, other, sizeof(other))) < 0)
		return rc;
	if (other[0])
		return vsm_err(VSM_EBUSY, "container '%s' is a member of group '%s'; remove it "
			       "from the group first", r->name, other);
	return 0;
}
