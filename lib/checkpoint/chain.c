/*
 * vsm_device_chain: a device's backing chain as the record describes it,
 * with each layer's content ID and the checkpoint it belongs to (what
 * `vsmctl container show` prints).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "steps.h"
#include "vsm/checkpoint.h"

VSM_API void vsm_layer_info_list_free(vsm_layer_info *list, size_t count)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < count; i++) {
		free((char *)list[i].key);
		free((char *)list[i].cid);
		free((char *)list[i].checkpoint);
	}
	free(list);
}

static const char *ckpt_of(const vsm_record *r, const char *key)
{
	size_t i, j;

	for (i = 0; i < r->n_ckpts; i++)
		for (j = 0; j < r->ckpts[i].n_layers; j++)
			if (!strcmp(r->ckpts[i].layers[j].key, key))
				return r->ckpts[i].name;
	return NULL;
}

static int fill(vsm_layer_info *li, vsm_dstore *ds, const vsm_record *r, const char *key,
		int format, bool top)
{
	const vsm_rec_frozen *l = top ? NULL : ck_layer(r, key);
	const char *k = ckpt_of(r, key);
	char cid[VSM_UUID_STRLEN + 1] = "";
	int rc;

	li->version = VSM_LAYER_INFO_VERSION;
	li->format = format;
	li->writable = top;
	/* A chain layer outside the table is from before any checkpoint:
	 * the base given at create, and what stands below it. */
	li->golden = !top && (!l || !l->managed);
	if (l && l->cid) {
		snprintf(cid, sizeof(cid), "%s", l->cid);
	} else if (!top) {
		/* A golden image whose entry predates content IDs, or that no
		 * checkpoint has put in the table yet: its header says. */
		if ((rc = ck_header_cid(ds, key, format, cid)) < 0)
			return rc;
	}
	/* A writable top has none (doc/chain-copy.md), whatever its header
	 * holds: its bytes may change at any moment. */
	if (!(li->key = vsm__strdup(key)) || (cid[0] && !(li->cid = vsm__strdup(cid))) ||
	    (k && !(li->checkpoint = vsm__strdup(k))))
		return -VSM_ENOMEM;
	return 0;
}

VSM_API int vsm_device_chain(vsm_layer_info **out, size_t *out_count, vsm_container *c,
			     const char *device, unsigned int flags)
{
	const vsm_rec_device *d;
	vsm_layer_info *list = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	size_t n = 0, i;
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!out || !out_count || !c || !device)
		return vsm_err(VSM_EINVAL, "vsm_device_chain: out, out_count, container and "
			       "device are required");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_device_chain: unknown flags 0x%x", flags);
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = ck_fresh(c, &ds, &r)) < 0)
		goto out;
	if (!(d = vsm_record_device(r, device))) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no device '%s'", r->name, device);
		goto out;
	}
	if (!(list = vsm__calloc(d->chain_len + 1, sizeof(*list)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	n = 1;
	if ((rc = fill(&list[0], ds, r, d->key, d->format, true)) < 0)
		goto out;
	for (i = 0; i < d->chain_len; i++) {
		n++;
		if ((rc = fill(&list[i + 1], ds, r, d->chain[i].key, d->chain[i].format,
			       false)) < 0)
			goto out;
	}
	*out = list;
	*out_count = n;
	list = NULL;
out:
	vsm_layer_info_list_free(list, n);
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}
