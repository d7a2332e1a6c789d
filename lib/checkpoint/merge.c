/*
 * Compaction of the layer graph: merging an anonymous layer into its
 * only child (commit or stream, whichever copies less) and deleting
 * anonymous layers nobody reads, each step journalled; the merge itself
 * is idempotent so the journal action can finish it after a crash. Also
 * the codec of a merge step's journal argument.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "cow.h"

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

			if (ck_eq(d->key, x) && d->chain_len && ck_eq(d->chain[0].key, t)) {
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
				if (ck_eq(d->chain[k].key, x) && ck_eq(d->chain[k + 1].key, t)) {
					free(d->chain[k].key);
					memmove(&d->chain[k], &d->chain[k + 1],
						(d->chain_len - k - 1) * sizeof(*d->chain));
					d->chain_len--;
					touched = true;
				}
		}
		for (j = 0; j < r->n_ckpts; j++)
			for (k = 0; k < r->ckpts[j].n_layers; k++)
				if (ck_eq(r->ckpts[j].layers[k].key, x)) {
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
				if (ck_eq(r->layers[j].backing, x)) {
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
				if (ck_eq(d->chain[k].key, t)) {
					free(d->chain[k].key);
					memmove(&d->chain[k], &d->chain[k + 1],
						(d->chain_len - k - 1) * sizeof(*d->chain));
					d->chain_len--;
					k--;
					touched = true;
				}
		}
		if (lx && ck_eq(lx->backing, t)) {
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
					if (bottom && ck_all_zero(buf + p, n))
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
 * A merge cut short (a crash, a failed write) may have allocated
 * clusters in the layer it was copying into and never linked them: the
 * qcow2 engine orders its writes so that this is all a crash leaves.
 * Before the copy is run again, those leaks are given back, or every
 * interrupted merge would keep its share of the datastore for good.
 */
static int repair_leaks(vsm_ctx *ctx, vsm_dstore *ds, const char *key, int format)
{
	vsm_cow_check_result res;
	vsm_cow *c = NULL;
	int rc;

	if (format != VSM_FORMAT_QCOW2)
		return 0;
	if ((rc = ck_cow_open(&c, ds, key, format, false, true)) < 0)
		return rc;
	rc = vsm_cow_check(c, &res, true);
	if (rc == 0 && res.corruptions > res.corruptions_fixed)
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': layer '%s' is damaged (%llu "
			     "problems check cannot fix)", ds->name, key,
			     (unsigned long long)(res.corruptions - res.corruptions_fixed));
	if (rc == 0 && res.leaks_fixed)
		vsm__log(ctx, VSM_LOG_INFO, "datastore '%s': layer '%s': %llu cluster(s) an "
			 "interrupted merge left allocated are free again", ds->name, key,
			 (unsigned long long)res.leaks_fixed);
	if (rc == 0)
		return vsm_cow_close(c);
	vsm_cow_close(c);
	return rc;
}

/*
 * One merge, idempotent: run again after a crash at any point, it ends
 * in the same place. @again: this merge was begun before (the journal
 * replays it), so the layer it copies into may hold leaked clusters. Images change first (the data copy, then the
 * backing references of the layers above), records next, and the layer
 * that went away is deleted last, once no record names it.
 */
int ck_merge(vsm_ctx *ctx, vsm_dstore *ds, const char *t, const char *x,
	     const char *dir, const char *cid, bool again)
{
	ck_recs rs;
	vsm_cow *c = NULL;
	bool commit = !strcmp(dir, "commit"), on;
	const char *gone = commit ? x : t;
	const char **kids = NULL;
	const vsm_rec_frozen *lt;
	size_t n, i;
	int rc, t_format;

	if ((rc = ck_recs_load(&rs, ctx, ds)) < 0)
		return rc;
	if (!ck_referenced(&rs, gone))
		goto done;
	if (!(lt = find_any(&rs, t)) && !ck_referenced(&rs, t)) {
		/* T is gone from every table and chain: another merge of the
		 * same pair (a compaction that ran before this journal entry
		 * was replayed, in whichever direction it chose) finished it.
		 * Only T's device may be left to delete. */
		ck_recs_free(&rs);
		return ck_delete_unref(ctx, ds, t);
	}
	if (!lt) {
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': layer '%s' is in no layer table",
			     ds->name, t);
		goto out;
	}
	/* X stands on T: an overlay, so qcow2. */
	if ((rc = ck_cow_open(&c, ds, x, VSM_FORMAT_QCOW2, false, false)) < 0)
		goto out;
	if ((rc = backing_is(c, t, &on)) == 0 && on && again) {
		/* The copy is still to do (again): first the leaks of the
		 * one cut short, with X closed (a commit writes T). */
		vsm_cow_close(c);
		c = NULL;
		rc = commit ? repair_leaks(ctx, ds, t, lt->format) :
			      repair_leaks(ctx, ds, x, VSM_FORMAT_QCOW2);
		if (rc == 0)
			rc = ck_cow_open(&c, ds, x, VSM_FORMAT_QCOW2, false, false);
		if (rc < 0)
			goto out;
	}
	if (rc == 0 && on)
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
	t_format = lt->format;
	rc = commit ? rename_child(&rs, t, x, cid) : drop_streamed(&rs, t, x, cid);
	if (rc == 0)
		rc = ck_recs_store(&rs, ctx, ds);
	if (rc < 0)
		goto out;
	/* The merged layer's header takes the records' new content ID (the
	 * copy removed the old one before it wrote). */
	if (ck_stamp_cid(ds, commit ? t : x, commit ? t_format : VSM_FORMAT_QCOW2, cid) < 0) {
		vsm__log(ctx, VSM_LOG_WARN, "%s (its header keeps no content ID)",
			 vsm_error_last()->message);
		vsm__error_reset();
	}
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
bool ck_merge_arg_get(const char **p, char *out, size_t size)
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

/* A merge or delete of an earlier call that failed stays in the
 * journal, and after its record write only that entry knows what is
 * still to do (a merged layer no table lists any more). When its owner
 * is this context, which is alive, neither the first change of a
 * datastore nor a new context of this process would run it: it is
 * finished here. */
void ck_finish_left(vsm_ctx *ctx, vsm_dstore *ds)
{
	static const char *const kinds[] = { "checkpoint-merge", "checkpoint-delete" };
	size_t i;
	int rc;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if ((rc = vsm__wf_finish_left(ctx, ds->name, kinds[i])) != 0)
			vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': %d earlier %s workflow(s) "
				 "still cannot be finished", ds->name, rc, kinds[i]);
}

int ck_compact(vsm_ctx *ctx, vsm_dstore *ds, const char *self, bool stopped)
{
	ck_finish_left(ctx, ds);
	return ck_compact_rounds(ctx, ds, self, stopped);
}

int ck_compact_rounds(vsm_ctx *ctx, vsm_dstore *ds, const char *self, bool stopped)
{
	int rounds, rc;

	/* A merge left in the journal goes first, in the direction it
	 * chose: a new merge of the same pair in the other direction, on
	 * top of a half-done one, would rebase a layer onto one that goes
	 * away (a commit's children onto T, then T streamed and deleted),
	 * or give T a child that never got T's data. Recovery replays the
	 * delete that owes this compaction before the merges it began
	 * (journal order), so this is where that order is put right. Until
	 * they are done, nothing new starts. */
	if ((rc = vsm__wf_finish_left(ctx, ds->name, "checkpoint-merge")) != 0)
		return rc < 0 ? rc : vsm_err(VSM_ESTATE, "datastore '%s': %d earlier merge(s) "
					     "cannot be finished yet; layers are merged once "
					     "they are", ds->name, rc);

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
		/* A failed estimate fails the round: a guess would journal a
		 * direction that another merge of the pair may not take. */
		if ((rc = ck_layer_alloc(ds, x, VSM_FORMAT_QCOW2, &cost_commit)) == 0 && lt &&
		    (rc = ck_layer_alloc(ds, t, lt->format, &cost_stream)) == 0)
			stream = cost_stream < cost_commit;
		ck_recs_free(&rs);
		if (rc < 0) {
			free(t);
			free(x);
			return rc;
		}
		vsm__uuid_new(cid);
		/* arg_put appends: start from an empty string, or the journal
		 * step names stack garbage and its replay can never finish. */
		arg[0] = '\0';
		arg_put(arg, sizeof(arg), t);
		strcat(arg, " ");
		arg_put(arg, sizeof(arg), x);
		snprintf(arg + strlen(arg), sizeof(arg) - strlen(arg), " %s %s",
			 stream ? "stream" : "commit", cid);
		vsm__log(ctx, VSM_LOG_INFO, "datastore '%s': merging layer '%s' into '%s'",
			 ds->name, stream ? t : x, stream ? x : t);
		if ((rc = vsm__wf_begin(&wf, ctx, "checkpoint-merge", ds->name, t)) < 0 ||
		    (rc = vsm__wf_redo(&wf, CK_WF_MERGE, arg)) < 0 ||
		    (rc = ck_merge(ctx, ds, t, x, stream ? "stream" : "commit", cid, false)) < 0 ||
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
