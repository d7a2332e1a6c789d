/*
 * The copy passes of a live migration (migrate_live.h): ranges of a
 * device's source top copied to its target top, read through the engine
 * of an open handle of the device (the writer's own view, whose caches
 * are current) or, when none is open, through our own view; and the
 * re-pointing of the handles at the switch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate_live.h"

/* The engine to read device @d's source top through (registry locked). */
static int source_view(lmig *m, ldev *d, vsm_cow **out)
{
	vsm__imgreg_ent *e, *any = NULL;
	int rc;

	for (e = vsm__imgreg_first(m->ctx); e; e = e->next) {
		if (strcmp(e->uuid, m->s->uuid) || strcmp(e->device, d->name))
			continue;
		if (vsm__image_writable(e->img)) {
			any = e;
			break;
		}
		if (!any)
			any = e;
	}
	if (any) {
		d->own_stale = true;
		*out = vsm__image_cow(any->img);
		return 0;
	}
	/* A handle that wrote flushed before it let go: a fresh view sees it. */
	if (d->own && d->own_stale) {
		vsm_cow_close(d->own);
		d->own = NULL;
	}
	if (!d->own && (rc = ck_cow_open(&d->own, m->sds, d->skey, d->format, true, false)) < 0)
		return rc;
	d->own_stale = false;
	*out = d->own;
	return 0;
}

/* Copy [@off, @off+@len) of @d; @full: only what the top itself holds
 * (the target top is empty, over the same chain), else all it reads. */
static int copy_range(lmig *m, ldev *d, uint8_t *buf, uint64_t off, uint64_t len, bool full,
		      bool held, uint64_t *copied)
{
	vsm_cow *src = NULL;
	bool mu = false;
	uint64_t p = 0, pnum;
	int rc;

	if (!held) {
		vsm__ctx_lock(m->ctx);
		vsm__imgreg_lock(m->ctx);
		/* Synchronous: no mirrored write of the range interleaves. */
		if (d->live.mirror) {
			pthread_mutex_lock(&d->live.mu);
			mu = true;
		}
	}
	if ((rc = source_view(m, d, &src)) < 0)
		goto out;
	while (p < len && rc == 0) {
		vsm_cow_status st;
		uint64_t n = len - p;

		if (full) {
			if ((rc = vsm_cow_block_status(src, off + p, n, &pnum, &st)) < 0)
				break;
			if (pnum < n)
				n = pnum;
			if (st.depth != 0 || !st.present) {
				p += n;
				continue;
			}
			if (!st.data) {
				rc = vsm_cow_write_zeroes(d->tcow, off + p, n, false);
				*copied += n;
				p += n;
				continue;
			}
		}
		if ((rc = vsm_cow_read(src, buf, (size_t)n, off + p)) < 0)
			break;
		if (ck_all_zero(buf, (size_t)n)) {
			/* A fresh raw top reads zeros already. */
			if (!(full && d->format == VSM_FORMAT_RAW))
				rc = vsm_cow_write_zeroes(d->tcow, off + p, n, false);
		} else {
			rc = vsm_cow_write(d->tcow, buf, (size_t)n, off + p);
		}
		*copied += n;
		p += n;
	}
out:
	if (!held) {
		if (mu)
			pthread_mutex_unlock(&d->live.mu);
		vsm__imgreg_unlock(m->ctx);
		vsm__ctx_unlock(m->ctx);
	}
	if (rc < 0)
		vsm__error_prefix("container '%s' device '%s'", m->s->name, d->name);
	return rc;
}

int ck_live_full_pass(lmig *m, ldev *d, uint64_t *bytes)
{
	uint8_t *buf = malloc(CK_LIVE_COPY_MAX);
	uint64_t off, t0 = ck_live_now_us(), copied = 0;
	int rc = 0;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (off = 0; off < d->size && rc == 0; off += CK_LIVE_COPY_MAX) {
		uint64_t len = d->size - off < CK_LIVE_COPY_MAX ? d->size - off : CK_LIVE_COPY_MAX;

		if ((rc = copy_range(m, d, buf, off, len, true, false, &copied)) == 0) {
			m->done += len;
			rc = ck_live_report(m);
		}
	}
	free(buf);
	m->copied += copied;
	m->copy_us += ck_live_now_us() - t0;
	m->pass_bytes += copied;
	*bytes += copied;
	return rc;
}

int ck_live_dirty_pass(lmig *m, ldev *d, bool held, uint64_t *bytes)
{
	uint64_t *bits = NULL, ndirty = 0, b = 0, t0 = ck_live_now_us(), copied = 0;
	uint64_t gran = 1ull << CK_LIVE_GRAN_BITS, per = CK_LIVE_COPY_MAX / gran;
	uint8_t *buf;
	int rc = 0;

	if ((rc = vsm__image_live_take(&d->live, &bits, &ndirty)) < 0)
		return rc;
	if (!ndirty) {
		free(bits);
		return 0;
	}
	if (!(buf = malloc(CK_LIVE_COPY_MAX))) {
		free(bits);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	if (!held)
		m->total += ndirty * gran;
	while (b < d->live.nbits && rc == 0) {
		uint64_t first, n = 0, off, len;

		if (!(bits[b / 64] & (1ull << (b % 64)))) {
			b++;
			continue;
		}
		first = b;
		while (b < d->live.nbits && n < per && (bits[b / 64] & (1ull << (b % 64)))) {
			n++;
			b++;
		}
		off = first * gran;
		len = n * gran;
		if (off + len > d->size)
			len = d->size - off;
		if ((rc = copy_range(m, d, buf, off, len, false, held, &copied)) == 0 && !held) {
			m->done += n * gran;
			rc = ck_live_report(m);
		}
	}
	free(buf);
	/* What was not copied is still to do (a failure undoes it all, but
	 * a cancel is no reason to lose the count). */
	free(bits);
	if (!held) {
		m->copied += copied;
		m->copy_us += ck_live_now_us() - t0;
		m->pass_bytes += copied;
	}
	*bytes += copied;
	return rc;
}

static ldev *dev_of(lmig *m, const char *device)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (!strcmp(m->d[i].name, device))
			return &m->d[i];
	return NULL;
}

void ck_live_repoint(lmig *m)
{
	vsm__imgreg_ent *e;
	vsm_cow **old;
	size_t n_old = 0, i, cap = 0;
	uint64_t t0;
	ldev *d;

	for (e = vsm__imgreg_first(m->ctx); e; e = e->next)
		cap++;
	old = vsm__calloc(cap ? cap : 1, sizeof(*old));
	vsm__imgreg_lock(m->ctx);
	t0 = ck_live_now_us();
	ck_live_hold_all(m, true);
	/* What the passes and the mirrors wrote is on the device before
	 * another engine opens it. */
	for (i = 0; i < m->n; i++)
		if (vsm_cow_flush(m->d[i].tcow) < 0)
			vsm__error_reset(); /* the open below says what is wrong */
	for (e = vsm__imgreg_first(m->ctx); e; e = e->next) {
		vsm_cow *cow = NULL;
		char *name = NULL, *ds;
		bool rw;

		if (strcmp(e->uuid, m->s->uuid) || !(d = dev_of(m, e->device)))
			continue;
		rw = vsm__image_writable(e->img);
		vsm__image_set_live(e->img, NULL);
		/* The first writer takes the passes' engine; any other handle
		 * (a reader, mostly) gets one of its own. */
		if (rw && !d->handed) {
			cow = d->tcow;
			d->handed = true;
		} else if (ck_cow_open(&cow, m->tds, d->tkey, d->format, !rw, false) < 0) {
			cow = NULL;
		}
		if (!cow || !old) {
			vsm__log(m->ctx, VSM_LOG_WARN, "container '%s' device '%s': a handle could "
				 "not be moved to datastore '%s': %s", m->s->name, e->device, m->dst,
				 vsm_error_last() ? vsm_error_last()->message : "out of memory");
			vsm_cow_close(cow);
			continue;
		}
		if (asprintf(&name, "%s/%s:%s", m->dst, m->s->name, e->device) < 0)
			name = NULL;
		old[n_old++] = vsm__image_swap(e->img, cow, name);
		if ((ds = vsm__strdup(m->dst))) {
			free(e->datastore);
			e->datastore = ds;
		}
	}
	ck_live_hold_all(m, false);
	m->pause_us += ck_live_now_us() - t0;
	vsm__imgreg_mig_remove(m->ctx, &m->reg);
	m->registered = false;
	vsm__imgreg_unlock(m->ctx);
	for (i = 0; i < n_old; i++)
		vsm_cow_close(old[i]);
	free(old);
	for (i = 0; i < m->n; i++) {
		vsm_cow_close(m->d[i].own);
		m->d[i].own = NULL;
		if (!m->d[i].handed)
			vsm_cow_close(m->d[i].tcow);
		m->d[i].tcow = NULL;
	}
	vsm__error_reset();
}
