/*
 * The layer graph of a datastore. Nothing stores a reference count: who
 * reads a layer is derived from every container record on the datastore
 * (tops, chains, checkpoint layers, the layer tables' backing links), so
 * counts cannot drift from the truth. Here: the record helpers for the
 * layer table and chains, the datastore's records as editable copies,
 * and the questions asked of them (who references a layer, its children).
 */
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "devimage.h"

/* --- record helpers --- */

vsm_rec_checkpoint *ck_find(const vsm_record *r, const char *name)
{
	size_t i;

	for (i = 0; name && i < r->n_ckpts; i++)
		if (!strcmp(r->ckpts[i].name, name))
			return &r->ckpts[i];
	return NULL;
}

vsm_rec_frozen *ck_layer(const vsm_record *r, const char *key)
{
	size_t i;

	for (i = 0; key && i < r->n_layers; i++)
		if (!strcmp(r->layers[i].key, key))
			return &r->layers[i];
	return NULL;
}

int ck_layer_put(vsm_record *r, const vsm_rec_frozen *l)
{
	vsm_rec_frozen copy = *l, *slot = ck_layer(r, l->key), *grown;

	copy.key = vsm__strdup(l->key);
	copy.backing = l->backing ? vsm__strdup(l->backing) : NULL;
	copy.cid = l->cid ? vsm__strdup(l->cid) : NULL;
	if (!copy.key || (l->backing && !copy.backing) || (l->cid && !copy.cid)) {
		free(copy.key);
		free(copy.backing);
		free(copy.cid);
		return -VSM_ENOMEM;
	}
	if (slot) {
		free(slot->key);
		free(slot->backing);
		free(slot->cid);
		*slot = copy;
		return 0;
	}
	if (!(grown = realloc(r->layers, (r->n_layers + 1) * sizeof(*grown)))) {
		free(copy.key);
		free(copy.backing);
		free(copy.cid);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	r->layers = grown;
	r->layers[r->n_layers++] = copy;
	return 0;
}

void ck_layer_remove(vsm_record *r, const char *key)
{
	vsm_rec_frozen *l = ck_layer(r, key);
	size_t i;

	if (!l)
		return;
	i = (size_t)(l - r->layers);
	free(l->key);
	free(l->backing);
	free(l->cid);
	memmove(&r->layers[i], &r->layers[i + 1], (r->n_layers - i - 1) * sizeof(*l));
	r->n_layers--;
}

int ck_chain_of(const vsm_record *r, const char *key, vsm_rec_layer **chain, size_t *n)
{
	const vsm_rec_frozen *l = ck_layer(r, key);
	vsm_rec_layer *v = NULL;
	size_t len = 0;

	while (l && l->backing) {
		vsm_rec_layer *grown;

		if (len > 256) {
			vsm__layers_free(v, len);
			return vsm_err(VSM_ECORRUPT, "container '%s': layer '%s' has a looping "
				       "chain", r->name, key);
		}
		if (!(grown = realloc(v, (len + 1) * sizeof(*grown)))) {
			vsm__layers_free(v, len);
			return vsm_err(VSM_ENOMEM, "out of memory");
		}
		v = grown;
		v[len].format = l->backing_format;
		if (!(v[len].key = vsm__strdup(l->backing))) {
			vsm__layers_free(v, len);
			return -VSM_ENOMEM;
		}
		len++;
		l = ck_layer(r, l->backing);
	}
	*chain = v;
	*n = len;
	return 0;
}

int ck_table_fill(vsm_dstore *ds, vsm_record *r)
{
	size_t i, j;
	int rc;

	for (i = 0; i < r->n_devices; i++) {
		const vsm_rec_device *d = &r->devices[i];

		for (j = 0; j < d->chain_len; j++) {
			vsm_rec_frozen l = {0};

			if (ck_layer(r, d->chain[j].key))
				continue;
			l.key = d->chain[j].key;
			l.format = d->chain[j].format;
			if (j + 1 < d->chain_len) {
				l.backing = d->chain[j + 1].key;
				l.backing_format = d->chain[j + 1].format;
			}
			if ((rc = ck_layer_put(r, &l)) < 0)
				return rc;
		}
	}
	/* A golden image (unmanaged, read-only while anything stands on
	 * it) keeps its content ID in its header since import; the record
	 * keeps a copy. One whose header has none (raw, or imported by an
	 * older libvsm) stays without. */
	for (i = 0; ds && i < r->n_layers; i++) {
		vsm_rec_frozen *l = &r->layers[i];
		char cid[VSM_UUID_STRLEN + 1];

		if (l->managed || l->cid || l->format != VSM_FORMAT_QCOW2)
			continue;
		/* Unreadable here: the entry stays without, as before 0.2;
		 * whoever reads the layer for real reports the error. */
		if ((rc = ck_header_cid(ds, l->key, l->format, cid)) < 0) {
			if (rc == -VSM_ENOMEM)
				return rc;
			vsm__error_reset();
			continue;
		}
		if (rc == 1 && !(l->cid = vsm__strdup(cid)))
			return -VSM_ENOMEM;
	}
	return 0;
}

int ck_table_copy(vsm_record *to, const vsm_record *from, const char *key)
{
	const vsm_rec_frozen *l = ck_layer(from, key);
	size_t guard = 0;
	int rc;

	for (; l && guard++ < 256; l = ck_layer(from, l->backing))
		if ((rc = ck_layer_put(to, l)) < 0)
			return rc;
	return 0;
}

/* --- the datastore's records --- */

int ck_recs_load(ck_recs *rs, vsm_ctx *ctx, vsm_dstore *ds)
{
	size_t i;
	int rc;

	memset(rs, 0, sizeof(*rs));
	if ((rc = vsm__ds_refresh(ctx, ds)) < 0)
		return rc;
	if (ds->n_damaged)
		/* A record we cannot read may reference any layer: deleting
		 * or merging on a guess could lose its data. */
		return vsm_err(VSM_ECORRUPT, "datastore '%s': container record in slot %u is "
			       "damaged (%s); layers are left alone until it is repaired",
			       ds->name, ds->damaged[0], ds->damaged_why[0]);
	rs->v = vsm__calloc(ds->n_recs, sizeof(*rs->v));
	rs->dirty = vsm__calloc(ds->n_recs, sizeof(*rs->dirty));
	if (!rs->v || !rs->dirty) {
		ck_recs_free(rs);
		return -VSM_ENOMEM;
	}
	for (i = 0; i < ds->n_recs; i++) {
		if (!(rs->v[i] = vsm_record_dup(ds->recs[i]))) {
			ck_recs_free(rs);
			return vsm_err(VSM_ENOMEM, "out of memory");
		}
		rs->n++;
	}
	return 0;
}

int ck_recs_store(ck_recs *rs, vsm_ctx *ctx, vsm_dstore *ds)
{
	size_t i;
	int rc;

	for (i = 0; i < rs->n; i++) {
		if (!rs->dirty[i])
			continue;
		if ((rc = vsm__ds_put_record(ctx, ds, rs->v[i])) < 0)
			return rc;
		rs->dirty[i] = false;
	}
	return 0;
}

void ck_recs_free(ck_recs *rs)
{
	size_t i;

	for (i = 0; rs->v && i < rs->n; i++)
		vsm_record_free(rs->v[i]);
	free(rs->v);
	free(rs->dirty);
	memset(rs, 0, sizeof(*rs));
}

vsm_record *ck_recs_find(ck_recs *rs, const char *uuid)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		if (!strcmp(rs->v[i]->uuid, uuid))
			return rs->v[i];
	return NULL;
}

/* --- references --- */

bool ck_eq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

bool ck_rec_references(const vsm_record *r, const char *key)
{
	size_t i, j;

	if (r->destroying)
		return false; /* its devices are going away */
	if (ck_eq(r->state_key, key))
		return true;
	for (i = 0; i < r->n_devices; i++) {
		if (ck_eq(r->devices[i].key, key))
			return true;
		for (j = 0; j < r->devices[i].chain_len; j++)
			if (ck_eq(r->devices[i].chain[j].key, key))
				return true;
	}
	for (i = 0; i < r->n_ckpts; i++) {
		if (ck_eq(r->ckpts[i].state_key, key))
			return true;
		for (j = 0; j < r->ckpts[i].n_layers; j++)
			if (ck_eq(r->ckpts[i].layers[j].key, key))
				return true;
	}
	for (i = 0; i < r->n_layers; i++)
		if (ck_eq(r->layers[i].backing, key))
			return true;
	return false;
}

bool ck_referenced(const ck_recs *rs, const char *key)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		if (ck_rec_references(rs->v[i], key))
			return true;
	return false;
}

static size_t add_child(const char **out, size_t n, size_t max, const char *k)
{
	size_t i;

	for (i = 0; i < n && i < max; i++)
		if (!strcmp(out[i], k))
			return n;
	if (n < max)
		out[n] = k;
	return n + 1;
}

size_t ck_children(const ck_recs *rs, const char *key, const char **out, size_t max)
{
	size_t i, j, n = 0;

	for (i = 0; i < rs->n; i++) {
		const vsm_record *r = rs->v[i];

		if (r->destroying)
			continue;
		for (j = 0; j < r->n_devices; j++) {
			const vsm_rec_device *d = &r->devices[j];

			if (d->chain_len && ck_eq(d->chain[0].key, key))
				n = add_child(out, n, max, d->key);
		}
		for (j = 0; j < r->n_layers; j++)
			if (ck_eq(r->layers[j].backing, key))
				n = add_child(out, n, max, r->layers[j].key);
	}
	return n;
}

bool ck_is_top(const ck_recs *rs, const char *key, const vsm_record **owner,
	       const char **device)
{
	size_t i, j;

	for (i = 0; i < rs->n; i++)
		for (j = 0; j < rs->v[i]->n_devices; j++)
			if (ck_eq(rs->v[i]->devices[j].key, key)) {
				if (owner)
					*owner = rs->v[i];
				if (device)
					*device = rs->v[i]->devices[j].name;
				return true;
			}
	return false;
}

bool ck_is_ckpt_layer(const ck_recs *rs, const char *key)
{
	size_t i, j, k;

	for (i = 0; i < rs->n; i++)
		for (j = 0; j < rs->v[i]->n_ckpts; j++)
			for (k = 0; k < rs->v[i]->ckpts[j].n_layers; k++)
				if (ck_eq(rs->v[i]->ckpts[j].layers[k].key, key))
					return true;
	return false;
}

bool ck_is_managed(const ck_recs *rs, const char *key)
{
	size_t i;

	for (i = 0; i < rs->n; i++) {
		const vsm_rec_frozen *l = ck_layer(rs->v[i], key);

		if (l && l->managed)
			return true;
	}
	return false;
}
