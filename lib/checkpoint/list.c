/*
 * The checkpoint handle (vsm_checkpoint) and its getters, and the calls
 * that hand them out: vsm_checkpoint_list and vsm_checkpoint_lookup.
 */
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "steps.h"
#include "vsm/checkpoint.h"

struct vsm_checkpoint {
	char *name;
	char *parent;
	int64_t ctime;
	uint64_t state_size;
	bool current;
	size_t n;
	char **dev, **key, **cid;
	uint64_t *size;
};

VSM_API void vsm_checkpoint_free(vsm_checkpoint *cp)
{
	size_t i;

	if (!cp)
		return;
	for (i = 0; i < cp->n; i++) {
		free(cp->dev[i]);
		free(cp->key[i]);
		free(cp->cid[i]);
	}
	free(cp->dev);
	free(cp->key);
	free(cp->cid);
	free(cp->size);
	free(cp->name);
	free(cp->parent);
	free(cp);
}

VSM_API void vsm_checkpoint_list_free(vsm_checkpoint **list, size_t count)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < count; i++)
		vsm_checkpoint_free(list[i]);
	free(list);
}

int ck_handle_new(vsm_checkpoint **out, vsm_dstore *ds, const vsm_record *r,
		  const vsm_rec_checkpoint *c)
{
	vsm_checkpoint *cp = vsm__calloc(1, sizeof(*cp));
	size_t i;
	int rc;

	if (!cp)
		return -VSM_ENOMEM;
	cp->ctime = c->ctime;
	cp->state_size = c->state_key ? c->state_size : 0;
	cp->current = r->ckpt_current && !strcmp(r->ckpt_current, c->name);
	if (!(cp->name = vsm__strdup(c->name)) || (c->parent && !(cp->parent = vsm__strdup(c->parent))) ||
	    !(cp->dev = vsm__calloc(c->n_layers, sizeof(char *))) ||
	    !(cp->key = vsm__calloc(c->n_layers, sizeof(char *))) ||
	    !(cp->cid = vsm__calloc(c->n_layers, sizeof(char *))) ||
	    !(cp->size = vsm__calloc(c->n_layers, sizeof(uint64_t)))) {
		vsm_checkpoint_free(cp);
		return -VSM_ENOMEM;
	}
	for (i = 0; i < c->n_layers; i++) {
		const vsm_rec_frozen *l = ck_layer(r, c->layers[i].key);

		cp->n = i + 1;
		if (!(cp->dev[i] = vsm__strdup(c->layers[i].device)) ||
		    !(cp->key[i] = vsm__strdup(c->layers[i].key)) ||
		    (l && l->cid && !(cp->cid[i] = vsm__strdup(l->cid)))) {
			vsm_checkpoint_free(cp);
			return -VSM_ENOMEM;
		}
		if (!l) {
			vsm_checkpoint_free(cp);
			return vsm_err(VSM_ECORRUPT, "container '%s': layer '%s' is in no layer table",
				       r->name, c->layers[i].key);
		}
		if ((rc = ck_layer_alloc(ds, l->key, l->format, &cp->size[i])) < 0) {
			vsm_checkpoint_free(cp);
			return rc;
		}
	}
	*out = cp;
	return 0;
}

VSM_API const char *vsm_checkpoint_name(const vsm_checkpoint *cp)
{
	return cp ? cp->name : NULL;
}

VSM_API const char *vsm_checkpoint_parent(const vsm_checkpoint *cp)
{
	return cp ? cp->parent : NULL;
}

VSM_API int64_t vsm_checkpoint_ctime(const vsm_checkpoint *cp)
{
	return cp ? cp->ctime : 0;
}

VSM_API uint64_t vsm_checkpoint_state_size(const vsm_checkpoint *cp)
{
	return cp ? cp->state_size : 0;
}

VSM_API int vsm_checkpoint_is_current(const vsm_checkpoint *cp)
{
	return cp && cp->current;
}

VSM_API size_t vsm_checkpoint_layer_count(const vsm_checkpoint *cp)
{
	return cp ? cp->n : 0;
}

VSM_API const char *vsm_checkpoint_layer_device(const vsm_checkpoint *cp, size_t i)
{
	return cp && i < cp->n ? cp->dev[i] : NULL;
}

VSM_API const char *vsm_checkpoint_layer_key(const vsm_checkpoint *cp, size_t i)
{
	return cp && i < cp->n ? cp->key[i] : NULL;
}

VSM_API const char *vsm_checkpoint_layer_cid(const vsm_checkpoint *cp, size_t i)
{
	return cp && i < cp->n ? cp->cid[i] : NULL;
}

VSM_API uint64_t vsm_checkpoint_layer_size(const vsm_checkpoint *cp, size_t i)
{
	return cp && i < cp->n ? cp->size[i] : 0;
}

VSM_API int vsm_checkpoint_list(vsm_checkpoint ***out, size_t *count, vsm_container *c)
{
	vsm_checkpoint **list = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_ctx *ctx;
	size_t i;
	int rc;

	vsm__error_reset();
	if (!out || !count || !c)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_list: NULL argument");
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	*out = NULL;
	*count = 0;
	if ((rc = ck_fresh(c, &ds, &r)) < 0)
		goto out;
	if (!(list = vsm__calloc(r->n_ckpts, sizeof(*list)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < r->n_ckpts; i++)
		if ((rc = ck_handle_new(&list[i], ds, r, &r->ckpts[i])) < 0) {
			vsm_checkpoint_list_free(list, i);
			goto out;
		}
	*out = list;
	*count = r->n_ckpts;
out:
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_checkpoint_lookup(vsm_checkpoint **out, vsm_container *c, const char *name)
{
	vsm_record *r = NULL;
	vsm_rec_checkpoint *cp;
	vsm_dstore *ds;
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!out || !c || !name)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_lookup: NULL argument");
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = ck_fresh(c, &ds, &r)) == 0) {
		if (!(cp = ck_find(r, name)))
			rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'",
				     r->name, name);
		else
			rc = ck_handle_new(out, ds, r, cp);
	}
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}
