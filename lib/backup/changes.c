/*
 * Changed-block tracking. A checkpoint freezes each device's top and
 * puts an empty overlay on it, so what was written to a device since
 * checkpoint A is exactly what the layers above A's frozen layer hold:
 * walk the chain from the later point (checkpoint B's layer, or the
 * current top) down to A's layer and take the union of each layer's
 * changes. A layer's changes are its dirty bitmap when it has a
 * consistent one, else its allocation map (the bitmap's conservative
 * rebuild: a layer that started empty holds only what was written to it).
 * Merges keep this true: they join a layer with its only child, so the
 * layers above A still hold everything written since A.
 * Both sources cost what is allocated or dirty, not the device's size.
 */
#include <stdlib.h>
#include <string.h>

#include "bk.h"
#include "cow.h"

int bk_extents_add(bk_extents *e, uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
	/* Adjacent to the last one (the usual case: extents come in order). */
	if (e->n && e->v[e->n - 1].offset + e->v[e->n - 1].length == off) {
		e->v[e->n - 1].length += len;
		return 0;
	}
	if (e->n == e->cap) {
		size_t cap = e->cap ? 2 * e->cap : 64;
		vsm_change_extent *v = realloc(e->v, cap * sizeof(*v));

		if (!v)
			return vsm_err(VSM_ENOMEM, "out of memory");
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n].offset = off;
	e->v[e->n].length = len;
	e->n++;
	return 0;
}

static int cmp_extent(const void *a, const void *b)
{
	const vsm_change_extent *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

void bk_extents_normalize(bk_extents *e)
{
	size_t i, j = 0;

	if (e->n < 2)
		return;
	qsort(e->v, e->n, sizeof(*e->v), cmp_extent);
	for (i = 1; i < e->n; i++) {
		vsm_change_extent *last = &e->v[j];
		uint64_t end = last->offset + last->length;

		if (e->v[i].offset <= end) {
			uint64_t e2 = e->v[i].offset + e->v[i].length;

			if (e2 > end)
				last->length = e2 - last->offset;
		} else {
			e->v[++j] = e->v[i];
		}
	}
	e->n = j + 1;
}

void bk_extents_free(bk_extents *e)
{
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}

static int add_cb(uint64_t off, uint64_t len, void *payload)
{
	return bk_extents_add(payload, off, len);
}

/* The layer's own dirty bitmap, when it has one that can be trusted:
 * 1 and its extents added, 0 when there is none (or its writer died). */
static int layer_bitmap(vsm_cow *c, bk_extents *out)
{
	vsm_cow_bitmap_info *list = NULL;
	size_t n = 0, i;
	int rc, found = 0;

	if ((rc = vsm_cow_bitmap_list(c, &list, &n)) < 0)
		return rc;
	for (i = 0; i < n; i++)
		if (!strcmp(list[i].name, BK_BITMAP) && !list[i].in_use)
			found = 1;
	vsm_cow_bitmap_list_free(list, n);
	if (!found)
		return 0;
	rc = vsm_cow_bitmap_extents(c, BK_BITMAP, 0, vsm_cow_size(c), add_cb, out);
	return rc < 0 ? rc : 1;
}

/* What the layer itself holds (allocated clusters, data or zero). */
static int layer_allocation(vsm_cow *c, bk_extents *out)
{
	uint64_t off = 0, size = vsm_cow_size(c), pnum;
	int rc = 0;

	while (off < size) {
		vsm_cow_status st;

		if ((rc = vsm_cow_block_status(c, off, size - off, &pnum, &st)) < 0)
			return rc;
		if (!pnum)
			return vsm_err(VSM_EIO, "%s: block status made no progress at %llu",
				       vsm_cow_label(c), (unsigned long long)off);
		if (st.present && st.depth == 0 && (rc = bk_extents_add(out, off, pnum)) < 0)
			return rc;
		off += pnum;
	}
	return 0;
}

static int layer_changes(vsm_dstore *ds, const char *key, int format, bk_extents *out)
{
	vsm_cow *c = NULL;
	int rc;

	if ((rc = ck_cow_open(&c, ds, key, format, true, true)) < 0)
		return rc;
	if (vsm_cow_format(c) != VSM_COW_QCOW2)
		/* A raw layer above a checkpoint cannot be; all of it, then. */
		rc = bk_extents_add(out, 0, vsm_cow_size(c));
	else if ((rc = layer_bitmap(c, out)) == 0)
		rc = layer_allocation(c, out);
	vsm_cow_close(c);
	return rc < 0 ? rc : 0;
}

/* The layer @key stands on, from the record (device chains and the
 * layer table), NULL for a bottom layer; and @key's own format. */
static const char *below(const vsm_record *r, const char *key, int *format)
{
	const vsm_rec_frozen *l;
	size_t i;

	*format = 0;
	for (i = 0; i < r->n_devices; i++)
		if (!strcmp(r->devices[i].key, key)) {
			*format = r->devices[i].format;
			return r->devices[i].chain_len ? r->devices[i].chain[0].key : NULL;
		}
	if (!(l = ck_layer(r, key)))
		return NULL;
	*format = l->format;
	return l->backing;
}

int bk_changes(vsm_dstore *ds, const vsm_record *r, const char *device, const char *since,
	       const char *until, bk_extents *out)
{
	const vsm_rec_checkpoint *a, *b = NULL;
	const char *stop, *key = NULL;
	size_t i, guard;
	int rc, format;

	if (!(a = ck_find(r, since)))
		return vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name,
			       since);
	if (until && !(b = ck_find(r, until)))
		return vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name,
			       until);
	if (b) {
		key = ck_layer_for(b, device);
	} else {
		for (i = 0; i < r->n_devices; i++)
			if (!strcmp(r->devices[i].name, device))
				key = r->devices[i].key;
	}
	if (!key)
		return vsm_err(VSM_ENOTFOUND, "container '%s' has no device '%s'%s%s", r->name,
			       device, b ? " at checkpoint " : "", b ? until : "");
	if (!(stop = ck_layer_for(a, device)))
		return vsm_err(VSM_EINVAL, "container '%s': device '%s' did not exist at "
			       "checkpoint '%s'", r->name, device, since);
	/* The chain is acyclic (the record decoder checks the table); the
	 * guard only bounds a walk over a table edited in memory. */
	for (guard = 0; strcmp(key, stop); guard++) {
		if (guard > r->n_layers + r->n_devices)
			return vsm_err(VSM_ECORRUPT, "container '%s': the layer chain of device "
				       "'%s' loops", r->name, device);
		const char *next = below(r, key, &format);

		if ((rc = layer_changes(ds, key, format, out)) < 0)
			return rc;
		if (!(key = next))
			return vsm_err(VSM_EINVAL, "container '%s': checkpoint '%s' is not an "
				       "ancestor of %s%s%s", r->name, since,
				       b ? "checkpoint '" : "the current state",
				       b ? until : "", b ? "'" : "");
	}
	bk_extents_normalize(out);
	return 0;
}

VSM_API int vsm_changes(vsm_change_extent **out, size_t *count, vsm_container *c,
			const char *device, const char *since, const char *until)
{
	bk_extents e = {0};
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!out || !count || !c || !device || !since)
		return vsm_err(VSM_EINVAL, "vsm_changes: NULL argument");
	*out = NULL;
	*count = 0;
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = ck_fresh(c, &ds, &r)) == 0 && (rc = ck_table_fill(NULL, r)) == 0)
		rc = bk_changes(ds, r, device, since, until, &e);
	vsm__ctx_unlock(ctx);
	vsm_record_free(r);
	if (rc < 0) {
		bk_extents_free(&e);
		return rc;
	}
	*out = e.v;
	*count = e.n;
	return 0;
}

VSM_API void vsm_change_extents_free(vsm_change_extent *list)
{
	free(list);
}
