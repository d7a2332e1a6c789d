/*
 * The layer graph of a datastore and its upkeep. Nothing stores a
 * reference count: who reads a layer is derived from every container
 * record on the datastore (tops, chains, checkpoint layers, the layer
 * tables' backing links), so counts cannot drift from the truth. Here
 * too: merging a layer into its only child (compaction), deleting
 * layers nobody reads, and the journal actions that finish both after
 * a crash.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "becall.h"
#include "ckpt.h"
#include "cow.h"
#include "devimage.h"

int ck_rebase(vsm_dstore *ds, const char *key, const char *backing, int backing_format)
{
	vsm_bdev *b = NULL;
	char label[VSM_BACKEND_KEY_MAX + 64];
	int rc;

	if ((rc = vsm__ds_open_device(ds, key, 0, &b)) < 0)
		return rc;
	snprintf(label, sizeof(label), "datastore '%s': layer '%s'", ds->name, key);
	rc = vsm_cow_rebase_header(b, label, backing,
				   backing ? vsm_format_name(backing_format) : NULL);
	vsm_bdev_close(b);
	return rc;
}

/* --- checksums --- */

void ck_sum_init(ck_sum *s)
{
	s->crc = (uint32_t)crc32(0L, Z_NULL, 0);
	s->adler = (uint32_t)adler32(0L, Z_NULL, 0);
}

void ck_sum_add(ck_sum *s, const void *buf, size_t len)
{
	const Bytef *p = buf;

	while (len) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		s->crc = (uint32_t)crc32(s->crc, p, n);
		s->adler = (uint32_t)adler32(s->adler, p, n);
		p += n;
		len -= n;
	}
}

uint64_t ck_sum_value(const ck_sum *s)
{
	return (uint64_t)s->crc << 32 | s->adler;
}

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

int ck_table_fill(vsm_record *r)
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

static bool eq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

bool ck_rec_references(const vsm_record *r, const char *key)
{
	size_t i, j;

	if (r->destroying)
		return false; /* its devices are going away */
	if (eq(r->state_key, key))
		return true;
	for (i = 0; i < r->n_devices; i++) {
		if (eq(r->devices[i].key, key))
			return true;
		for (j = 0; j < r->devices[i].chain_len; j++)
			if (eq(r->devices[i].chain[j].key, key))
				return true;
	}
	for (i = 0; i < r->n_ckpts; i++) {
		if (eq(r->ckpts[i].state_key, key))
			return true;
		for (j = 0; j < r->ckpts[i].n_layers; j++)
			if (eq(r->ckpts[i].layers[j].key, key))
				return true;
	}
	for (i = 0; i < r->n_layers; i++)
		if (eq(r->layers[i].backing, key))
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

			if (d->chain_len && eq(d->chain[0].key, key))
				n = add_child(out, n, max, d->key);
		}
		for (j = 0; j < r->n_layers; j++)
			if (eq(r->layers[j].backing, key))
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
			if (eq(rs->v[i]->devices[j].key, key)) {
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
				if (eq(rs->v[i]->ckpts[j].layers[k].key, key))
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

/* --- devices --- */

void ck_name(char *buf, size_t size, const char *uuid, const char *what, const char *ext)
{
	char id[VSM_UUID_STRLEN + 1];

	vsm__uuid_new(id);
	snprintf(buf, size, "%s-%s.%.8s.%s", uuid, what, id, ext);
}

int ck_device_create(vsm_wf *wf, vsm_dstore *ds, const char *name, uint64_t size,
		     const char *format, const char *backing, int backing_format,
		     char key[VSM_BACKEND_KEY_MAX])
{
	/* Undone only if no record came to reference it (see doc). */
	return vsm__dev_create(wf, CK_WF_DELETE_UNREF, ds, name, size, format, backing,
			       backing ? vsm_format_name(backing_format) : NULL,
			       VSM_BACKEND_DEVICE_THIN, key);
}

int ck_delete_unref(vsm_ctx *ctx, vsm_dstore *ds, const char *key)
{
	ck_recs rs;
	size_t i;
	bool managed, listed = false;
	int rc;

	if ((rc = ck_recs_load(&rs, ctx, ds)) < 0)
		return rc;
	if (ck_referenced(&rs, key)) {
		ck_recs_free(&rs);
		return 0;
	}
	managed = ck_is_managed(&rs, key);
	for (i = 0; i < rs.n; i++)
		if (ck_layer(rs.v[i], key))
			listed = true;
	/* A golden image someone else put there is never ours to delete. */
	if (managed || !listed) {
		rc = vsm__be_device_delete(ds, key, 0);
		if (rc == -VSM_ENOTFOUND) {
			vsm__error_reset();
			rc = 0;
		}
		if (rc < 0) {
			vsm__error_prefix("datastore '%s'", ds->name);
			goto out;
		}
	}
	/* Table entries go after the device, so a crash in between leaves
	 * an entry that the next run removes, never an orphaned device. */
	for (i = 0; i < rs.n; i++)
		if (ck_layer(rs.v[i], key)) {
			ck_layer_remove(rs.v[i], key);
			rs.dirty[i] = true;
		}
	rc = ck_recs_store(&rs, ctx, ds);
out:
	ck_recs_free(&rs);
	return rc;
}

int ck_cow_open(vsm_cow **out, vsm_dstore *ds, const char *key, bool rdonly, bool no_backing)
{
	vsm_cow_open_opts o = {0};
	vsm_bdev *b = NULL;
	char label[VSM_BACKEND_KEY_MAX + 64];
	int rc;

	if ((rc = vsm__ds_backing_open(&b, key, rdonly, ds)) < 0)
		return rc;
	snprintf(label, sizeof(label), "datastore '%s' layer '%s'", ds->name, key);
	o.flags = (rdonly ? VSM_COW_RDONLY : 0) | (no_backing ? VSM_COW_NO_BACKING : 0);
	o.open_backing = vsm__ds_backing_open;
	o.payload = ds;
	return vsm_cow_open(out, b, label, &o);
}

int ck_layer_alloc(vsm_dstore *ds, const char *key, uint64_t *out)
{
	vsm_cow *c = NULL;
	vsm_cow_info info;
	int rc;

	if ((rc = ck_cow_open(&c, ds, key, true, true)) < 0)
		return rc;
	rc = vsm_cow_get_info(c, &info);
	vsm_cow_close(c);
	if (rc == 0)
		*out = info.allocated_bytes;
	return rc;
}

#define CK_CHUNK (1u << 20)

static bool all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int ck_copy_view(vsm_cow *src, vsm_cow *dst, uint64_t *written)
{
	uint64_t size = vsm_cow_size(src), off = 0, pnum;
	uint8_t *buf = malloc(CK_CHUNK);
	int rc = 0;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	while (off < size && rc == 0) {
		vsm_cow_status st;
		uint64_t len = size - off < CK_CHUNK ? size - off : CK_CHUNK, p;

		if ((rc = vsm_cow_block_status(src, off, len, &pnum, &st)) < 0)
			break;
		if (pnum > len)
			pnum = len;
		if (st.data && !st.zero) {
			if ((rc = vsm_cow_read(src, buf, (size_t)pnum, off)) < 0)
				break;
			for (p = 0; p < pnum && rc == 0; p += 65536) {
				size_t n = (size_t)(pnum - p < 65536 ? pnum - p : 65536);

				if (all_zero(buf + p, n))
					continue;
				rc = vsm_cow_write(dst, buf + p, n, off + p);
				if (written)
					*written += n;
			}
		}
		off += pnum;
	}
	free(buf);
	if (rc == 0)
		rc = vsm_cow_flush(dst);
	return rc;
}

/* --- merging --- */

/* In every record: X (the committed child) is replaced by T, which now
 * holds X's view. */
static int rename_child(ck_recs *rs, const char *t, const char *x, const char *cid)
{
	size_t i, j, k;
	int rc;

	for (i = 0; i < rs->n; i++) {
		vsm_record *r = rs->v[i];
		vsm_rec_frozen *lx = ck_layer(r, x), *lt = ck_layer(r, t);
		bool touched = false;

		for (j = 0; j < r->n_devices; j++) {
			vsm_rec_device *d = &r->devices[j];

			if (eq(d->key, x) && d->chain_len && eq(d->chain[0].key, t)) {
				free(d->key);
				d->key = d->chain[0].key;
				d->format = d->chain[0].format;
				memmove(&d->chain[0], &d->chain[1],
					(d->chain_len - 1) * sizeof(*d->chain));
				d->chain_len--;
				/* T is a writable top now: no longer a table layer. */
				ck_layer_remove(r, t);
				lt = NULL;
				lx = ck_layer(r, x);
				touched = true;
			}
			for (k = 0; k + 1 < d->chain_len; k++)
				if (eq(d->chain[k].key, x) && eq(d->chain[k + 1].key, t)) {
					free(d->chain[k].key);
					memmove(&d->chain[k], &d->chain[k + 1],
						(d->chain_len - k - 1) * sizeof(*d->chain));
					d->chain_len--;
					touched = true;
				}
		}
		for (j = 0; j < r->n_ckpts; j++)
			for (k = 0; k < r->ckpts[j].n_layers; k++)
				if (eq(r->ckpts[j].layers[k].key, x)) {
					char *copy = vsm__strdup(t);

					if (!copy)
						return -VSM_ENOMEM;
					free(r->ckpts[j].layers[k].key);
					r->ckpts[j].layers[k].key = copy;
					touched = true;
				}
		if (lx) {
			/* Layers on X stand on T now; T takes X's place. */
			for (j = 0; j < r->n_layers; j++)
				if (eq(r->layers[j].backing, x)) {
					char *copy = vsm__strdup(t);

					if (!copy)
						return -VSM_ENOMEM;
					free(r->layers[j].backing);
					r->layers[j].backing = copy;
					r->layers[j].backing_format = lt ? lt->format :
								     r->layers[j].backing_format;
				}
			if (lt) {
				char *c = vsm__strdup(cid);

				if (!c)
					return -VSM_ENOMEM;
				free(lt->cid);
				lt->cid = c;
				lt->managed = true;
			}
			ck_layer_remove(r, x);
			touched = true;
		}
		if (touched)
			rs->dirty[i] = true;
	}
	(void)rc;
	return 0;
}

/* In every record: T (streamed into X) leaves the chains; X stands on
 * what T stood on. */
static int drop_streamed(ck_recs *rs, const char *t, const char *x, const char *cid)
{
	size_t i, j, k;

	for (i = 0; i < rs->n; i++) {
		vsm_record *r = rs->v[i];
		vsm_rec_frozen *lx = ck_layer(r, x), *lt = ck_layer(r, t);
		bool touched = false;

		for (j = 0; j < r->n_devices; j++) {
			vsm_rec_device *d = &r->devices[j];

			for (k = 0; k < d->chain_len; k++)
				if (eq(d->chain[k].key, t)) {
					free(d->chain[k].key);
					memmove(&d->chain[k], &d->chain[k + 1],
						(d->chain_len - k - 1) * sizeof(*d->chain));
					d->chain_len--;
					k--;
					touched = true;
				}
		}
		if (lx && eq(lx->backing, t)) {
			char *c = vsm__strdup(cid), *b = NULL;

			if (!c || (lt && lt->backing && !(b = vsm__strdup(lt->backing)))) {
				free(c);
				return -VSM_ENOMEM;
			}
			free(lx->backing);
			lx->backing = b;
			lx->backing_format = lt ? lt->backing_format : 0;
			free(lx->cid);
			lx->cid = c;
			touched = true;
		}
		if (lt) {
			ck_layer_remove(r, t);
			touched = true;
		}
		if (touched)
			rs->dirty[i] = true;
	}
	return 0;
}

/* Copy into X what T itself holds and X does not (one level of
 * streaming: what is below T stays below). */
static int stream_one(vsm_cow *x, bool bottom)
{
	uint64_t size = vsm_cow_size(x), off = 0, pnum;
	uint8_t *buf = malloc(CK_CHUNK);
	int rc = 0;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	while (off < size && rc == 0) {
		vsm_cow_status st;
		uint64_t len = size - off < CK_CHUNK ? size - off : CK_CHUNK, p;

		if ((rc = vsm_cow_block_status(x, off, len, &pnum, &st)) < 0)
			break;
		if (pnum > len)
			pnum = len;
		if (st.present && st.depth == 1) {
			if (st.zero && !st.data) {
				if (!bottom)
					rc = vsm_cow_write_zeroes(x, off, pnum, false);
			} else if ((rc = vsm_cow_read(x, buf, (size_t)pnum, off)) == 0) {
				for (p = 0; p < pnum && rc == 0; p += 65536) {
					size_t n = (size_t)(pnum - p < 65536 ? pnum - p : 65536);

					/* With nothing below T, zeros read as zeros anyway. */
					if (bottom && all_zero(buf + p, n))
						continue;
					rc = vsm_cow_write(x, buf + p, n, off + p);
				}
			}
		}
		off += pnum;
	}
	free(buf);
	if (rc == 0)
		rc = vsm_cow_flush(x);
	return rc;
}

static const vsm_rec_frozen *find_any(const ck_recs *rs, const char *key)
{
	const vsm_rec_frozen *l = NULL;
	size_t i;

	for (i = 0; i < rs->n && !l; i++)
		l = ck_layer(rs->v[i], key);
	return l;
}

/* Is @key's image still standing on @on? */
static int backing_is(vsm_cow *c, const char *on, bool *out)
{
	vsm_cow_info info;
	int rc = vsm_cow_get_info(c, &info);

	*out = rc == 0 && info.backing && !strcmp(info.backing, on);
	return rc;
}

/*
 * One merge, idempotent: run again after a crash at any point, it ends
 * in the same place. Images change first (the data copy, then the
 * backing references of the layers above), records next, and the layer
 * that went away is deleted last, once no record names it.
 */
static int merge(vsm_ctx *ctx, vsm_dstore *ds, const char *t, const char *x,
		 const char *dir, const char *cid)
{
	ck_recs rs;
	vsm_cow *c = NULL;
	bool commit = !strcmp(dir, "commit"), on;
	const char *gone = commit ? x : t;
	const char **kids = NULL;
	const vsm_rec_frozen *lt;
	size_t n, i;
	int rc;

	if ((rc = ck_recs_load(&rs, ctx, ds)) < 0)
		return rc;
	if (!ck_referenced(&rs, gone))
		goto done;
	if (!(lt = find_any(&rs, t))) {
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': layer '%s' is in no layer table",
			     ds->name, t);
		goto out;
	}
	if ((rc = ck_cow_open(&c, ds, x, false, false)) < 0)
		goto out;
	if ((rc = backing_is(c, t, &on)) == 0 && on)
		rc = commit ? vsm_cow_commit(c) : stream_one(c, lt->backing == NULL);
	if (rc == 0)
		rc = vsm_cow_close(c);
	else
		vsm_cow_close(c);
	if (rc == 0 && commit) {
		/* Whatever stood on X stands on T now. */
		size_t cap = 0;

		for (i = 0; i < rs.n; i++)
			cap += rs.v[i]->n_devices + rs.v[i]->n_layers;
		if (!(kids = vsm__calloc(cap + 1, sizeof(*kids)))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
		n = ck_children(&rs, x, kids, cap + 1);
		for (i = 0; i < n && rc == 0; i++)
			rc = ck_rebase(ds, kids[i], t, lt->format);
	} else if (rc == 0) {
		rc = ck_rebase(ds, x, lt->backing, lt->backing_format);
	}
	if (rc < 0) {
		vsm__error_prefix("datastore '%s': merging layer '%s' into '%s'", ds->name,
				  commit ? x : t, commit ? t : x);
		goto out;
	}
	rc = commit ? rename_child(&rs, t, x, cid) : drop_streamed(&rs, t, x, cid);
	if (rc == 0)
		rc = ck_recs_store(&rs, ctx, ds);
	if (rc < 0)
		goto out;
done:
	free(kids);
	ck_recs_free(&rs);
	return ck_delete_unref(ctx, ds, gone);
out:
	free(kids);
	ck_recs_free(&rs);
	return rc;
}

/* A merge rewrites every record naming T or X; a container attached
 * somewhere is fenced by its lease, so only its own host (the caller,
 * @self) may rewrite it. */
static bool attached_reader(const ck_recs *rs, const char *key, const char *self)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		if (rs->v[i]->attached_host && (!self || strcmp(rs->v[i]->uuid, self)) &&
		    ck_rec_references(rs->v[i], key))
			return true;
	return false;
}

static bool deployed_top(const ck_recs *rs, const char *key, const char *allow)
{
	const vsm_record *owner = NULL;
	const char *dev = NULL;

	if (!ck_is_top(rs, key, &owner, &dev))
		return false;
	if (allow && !strcmp(owner->uuid, allow))
		return false;
	return vsm_record_deploy(owner, dev) != NULL;
}

/* Find one thing to do: an anonymous managed layer with no child (to
 * delete) or one child (to merge). */
static int next_job(const ck_recs *rs, const char *self, bool stopped, char **t, char **x)
{
	size_t i, j;

	for (i = 0; i < rs->n; i++) {
		for (j = 0; j < rs->v[i]->n_layers; j++) {
			const vsm_rec_frozen *l = &rs->v[i]->layers[j];
			const char *kids[2];
			size_t n;

			if (!l->managed || ck_is_ckpt_layer(rs, l->key) ||
			    ck_is_top(rs, l->key, NULL, NULL))
				continue;
			n = ck_children(rs, l->key, kids, 2);
			if (n >= 2 || (n == 1 && (deployed_top(rs, kids[0], stopped ? self : NULL) ||
						  attached_reader(rs, l->key, self) ||
						  attached_reader(rs, kids[0], self))))
				continue;
			if (!(*t = vsm__strdup(l->key)))
				return -VSM_ENOMEM;
			*x = NULL;
			if (n == 1 && !(*x = vsm__strdup(kids[0]))) {
				free(*t);
				return -VSM_ENOMEM;
			}
			return 1;
		}
	}
	return 0;
}

/* A merge step's argument is "T X DIR CID". Keys may hold spaces (they
 * are opaque), so in the argument '%', controls, space and DEL are
 * written as %XX; a key with none of them reads as itself, as in
 * journals written before keys were escaped. */
#define MERGE_ARG_MAX (2 * 3 * VSM_BACKEND_KEY_MAX + 64)

static void arg_put(char *buf, size_t size, const char *key)
{
	size_t n = strlen(buf);
	const unsigned char *p;

	for (p = (const unsigned char *)key; *p && n + 4 < size; p++) {
		if (*p <= ' ' || *p == '%' || *p == 0x7f)
			n += (size_t)snprintf(buf + n, size - n, "%%%02X", *p);
		else
			buf[n++] = (char)*p;
	}
	buf[n] = '\0';
}

/* Next space-separated field of *@p, unescaped into @out; false when
 * there is none or it does not fit. */
static bool arg_get(const char **p, char *out, size_t size)
{
	const char *s = *p;
	size_t n = 0;

	while (*s && *s != ' ') {
		unsigned int v;
		char c = *s;

		if (c == '%') {
			if (sscanf(s + 1, "%2X", &v) != 1 || !isxdigit((unsigned char)s[1]) ||
			    !isxdigit((unsigned char)s[2]) || v == 0)
				return false;
			c = (char)v;
			s += 2;
		}
		if (n + 1 >= size)
			return false;
		out[n++] = c;
		s++;
	}
	out[n] = '\0';
	if (!n)
		return false;
	*p = *s ? s + 1 : s;
	return true;
}

int ck_compact(vsm_ctx *ctx, vsm_dstore *ds, const char *self, bool stopped)
{
	int rounds, rc = 0;

	for (rounds = 0; rounds < 1024; rounds++) {
		ck_recs rs;
		char *t = NULL, *x = NULL, arg[MERGE_ARG_MAX], cid[VSM_UUID_STRLEN + 1];
		uint64_t cost_commit = 0, cost_stream = UINT64_MAX;
		const vsm_rec_frozen *lt = NULL;
		bool stream;
		vsm_wf wf = {0};
		size_t i;

		if ((rc = ck_recs_load(&rs, ctx, ds)) < 0)
			return rc;
		rc = next_job(&rs, self, stopped, &t, &x);
		if (rc <= 0) {
			ck_recs_free(&rs);
			return rc;
		}
		for (i = 0; i < rs.n && !lt; i++)
			lt = ck_layer(rs.v[i], t);
		if (!x) {
			ck_recs_free(&rs);
			if ((rc = vsm__wf_begin(&wf, ctx, "checkpoint-merge", ds->name, t)) < 0 ||
			    (rc = vsm__wf_redo(&wf, CK_WF_DELETE_UNREF, t)) < 0 ||
			    (rc = ck_delete_unref(ctx, ds, t)) < 0 || (rc = vsm__wf_end(&wf)) < 0) {
				free(t);
				return rc;
			}
			free(t);
			continue;
		}
		/* Whichever copies less: X's own data into T, or T's into X. */
		stream = false;
		if ((rc = ck_layer_alloc(ds, x, &cost_commit)) == 0 && lt &&
		    ck_layer_alloc(ds, t, &cost_stream) == 0)
			stream = cost_stream < cost_commit;
		ck_recs_free(&rs);
		if (rc < 0) {
			free(t);
			free(x);
			return rc;
		}
		vsm__uuid_new(cid);
		arg_put(arg, sizeof(arg), t);
		strcat(arg, " ");
		arg_put(arg, sizeof(arg), x);
		snprintf(arg + strlen(arg), sizeof(arg) - strlen(arg), " %s %s",
			 stream ? "stream" : "commit", cid);
		vsm__log(ctx, VSM_LOG_INFO, "datastore '%s': merging layer '%s' into '%s'",
			 ds->name, stream ? t : x, stream ? x : t);
		if ((rc = vsm__wf_begin(&wf, ctx, "checkpoint-merge", ds->name, t)) < 0 ||
		    (rc = vsm__wf_redo(&wf, CK_WF_MERGE, arg)) < 0 ||
		    (rc = merge(ctx, ds, t, x, stream ? "stream" : "commit", cid)) < 0 ||
		    (rc = vsm__wf_end(&wf)) < 0) {
			/* Stays in the journal: the next open finishes it. */
			free(t);
			free(x);
			return rc;
		}
		free(t);
		free(x);
	}
	return rc;
}

/* --- journal actions (workflow.c hands us every "ckpt_" step) --- */

int vsm__ckpt_wf_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action, const char *arg)
{
	if (!strcmp(action, CK_WF_DELETE_UNREF))
		return ck_delete_unref(ctx, ds, arg);
	if (!strcmp(action, CK_WF_MERGE)) {
		char t[VSM_BACKEND_KEY_MAX], x[VSM_BACKEND_KEY_MAX], dir[16], cid[40];
		const char *p = arg;

		if (!arg_get(&p, t, sizeof(t)) || !arg_get(&p, x, sizeof(x)) ||
		    !arg_get(&p, dir, sizeof(dir)) || !arg_get(&p, cid, sizeof(cid)) || *p ||
		    (strcmp(dir, "commit") && strcmp(dir, "stream")) || !vsm__uuid_valid(cid))
			return vsm_err(VSM_ECORRUPT, "journal step argument '%s' is malformed", arg);
		return merge(ctx, ds, t, x, dir, cid);
	}
	return vsm_err(VSM_ECORRUPT, "journal names unknown action '%s'", action);
}

/* Container destroy: blobs and layers only this record read go with it;
 * layers a linked clone still reads stay, and are merged into it. */
int vsm__ckpt_destroy_hook(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r, bool after)
{
	ck_recs rs;
	size_t i, j;
	int rc;

	if (after)
		return ck_compact(ctx, ds, NULL, false) < 0 ? (vsm__error_reset(), 0) : 0;
	if (!r->n_ckpts && !r->n_layers)
		return 0;
	if ((rc = ck_recs_load(&rs, ctx, ds)) < 0)
		return rc;
	for (i = 0; i < rs.n; i++)
		if (!strcmp(rs.v[i]->uuid, r->uuid))
			rs.v[i]->destroying = true; /* reads nothing any more */
	for (i = 0; i < r->n_ckpts && rc == 0; i++)
		if (r->ckpts[i].state_key && !ck_referenced(&rs, r->ckpts[i].state_key)) {
			rc = vsm__be_device_delete(ds, r->ckpts[i].state_key, 0);
			if (rc == -VSM_ENOTFOUND) {
				vsm__error_reset();
				rc = 0;
			}
		}
	/* The destroyed record counts for nothing (it is marked destroying),
	 * so a layer goes when no other record names it: not in a chain, a
	 * checkpoint, a table's backing link, nor its own table. */
	for (i = 0; i < r->n_layers && rc == 0; i++) {
		const vsm_rec_frozen *l = &r->layers[i];
		bool others = false;

		if (!l->managed)
			continue;
		for (j = 0; j < rs.n; j++)
			if (strcmp(rs.v[j]->uuid, r->uuid) && ck_layer(rs.v[j], l->key))
				others = true;
		if (others || ck_referenced(&rs, l->key))
			continue;
		rc = vsm__be_device_delete(ds, l->key, 0);
		if (rc == -VSM_ENOTFOUND) {
			vsm__error_reset();
			rc = 0;
		}
	}
	ck_recs_free(&rs);
	if (rc < 0)
		vsm__error_prefix("datastore '%s': destroying container '%s'", ds->name, r->name);
	return rc;
}
