/*
 * qcow2 persistent bitmaps in memory: the bits of each bitmap, kept in
 * the shape of its on-disk table (one cluster-sized chunk per table entry,
 * NULL while it is all zeros), setting ranges dirty on guest writes, and
 * walking dirty extents. Nothing here does I/O: a write through the engine
 * only touches memory (qcow2_bitmap.c stores the chunks).
 *
 * Bit order is QEMU's: bit n of a bitmap is bit (n % 8) of byte n / 8, and
 * covers guest bytes [n << gran_bits, (n + 1) << gran_bits).
 */
#include <stdlib.h>
#include <string.h>

#include "cow_int.h"

const uint8_t qc_bm_ones_marker = 0xff;

static uint64_t chunk_bits(const struct qcow2 *q)
{
	return q->cs * 8;
}

int qc_bm_init_bits(struct qcow2 *q, struct qc_bitmap *b, uint64_t size)
{
	uint64_t nbits = (size >> b->gran_bits) + ((size & ((1ull << b->gran_bits) - 1)) != 0);
	uint64_t nchunks = (nbits + chunk_bits(q) - 1) / chunk_bits(q);
	uint8_t **nc;

	if (nchunks < b->nchunks)
		return vsm_err(VSM_EINVAL, "%s: bitmap '%s' cannot shrink", q->label, b->name);
	if (nchunks > b->nchunks || !b->chunk) {
		nc = realloc(b->chunk, (nchunks ? nchunks : 1) * sizeof(*nc));
		if (!nc)
			return vsm_err(VSM_ENOMEM, "out of memory");
		memset(nc + b->nchunks, 0, (nchunks - b->nchunks) * sizeof(*nc));
		b->chunk = nc;
	}
	b->nchunks = nchunks;
	b->nbits = nbits;
	return 0;
}

void qc_bm_free_bits(struct qc_bitmap *b)
{
	uint64_t i;

	for (i = 0; b->chunk && i < b->nchunks; i++)
		if (b->chunk[i] != QC_BM_ONES)
			free(b->chunk[i]);
	free(b->chunk);
	b->chunk = NULL;
	b->nchunks = 0;
}

bool qc_bm_chunk_empty(const struct qcow2 *q, const uint8_t *chunk)
{
	uint64_t i;

	if (chunk == QC_BM_ONES)
		return false;
	for (i = 0; i < q->cs; i += 8)
		if (vsm__get_le64(chunk + i))
			return false;
	return true;
}

/* Set bits [first, last] of chunk @ci (bit numbers within the chunk). */
static int set_in_chunk(struct qcow2 *q, struct qc_bitmap *b, uint64_t ci,
			uint64_t first, uint64_t last)
{
	uint8_t *c = b->chunk[ci];

	if (c == QC_BM_ONES)
		return 0;
	if (!c) {
		c = calloc(1, q->cs);
		if (!c)
			return vsm_err(VSM_ENOMEM, "out of memory");
		b->chunk[ci] = c;
	}
	while (first <= last && (first & 7)) {
		c[first >> 3] |= (uint8_t)(1u << (first & 7));
		first++;
	}
	if (first + 8 <= last + 1) {
		uint64_t bytes = (last + 1 - first) >> 3;

		memset(c + (first >> 3), 0xff, (size_t)bytes);
		first += bytes << 3;
	}
	while (first <= last) {
		c[first >> 3] |= (uint8_t)(1u << (first & 7));
		first++;
	}
	return 0;
}

/* Every bit whose range meets [off, off+len) becomes 1. */
int qc_bm_set_range(struct qcow2 *q, struct qc_bitmap *b, uint64_t off, uint64_t len)
{
	uint64_t first, last, cb = chunk_bits(q), ci;
	int rc;

	if (len == 0 || b->nbits == 0)
		return 0;
	first = off >> b->gran_bits;
	last = (off + len - 1) >> b->gran_bits;
	if (first >= b->nbits)
		return 0;
	if (last >= b->nbits)
		last = b->nbits - 1;
	for (ci = first / cb; ci <= last / cb; ci++) {
		uint64_t lo = ci * cb > first ? 0 : first - ci * cb;
		uint64_t hi = (ci + 1) * cb - 1 < last ? cb - 1 : last - ci * cb;

		rc = set_in_chunk(q, b, ci, lo, hi);
		if (rc < 0)
			return rc;
	}
	b->changed = true;
	q->bm_changed = true;
	return 0;
}

/* A guest write: the enabled, trusted bitmaps. An allocation failure here
 * cannot be reported as the write's; the bitmap is marked bad instead
 * (in_use stays set on disk, as after a crash), never silently short. */
void qc_bm_mark_write(struct qcow2 *q, uint64_t off, uint64_t len)
{
	uint32_t i;

	for (i = 0; i < q->nbm; i++) {
		struct qc_bitmap *b = &q->bm[i];

		if (!b->enabled || b->bad)
			continue;
		if (qc_bm_set_range(q, b, off, len) < 0) {
			vsm_error_clear();
			b->bad = true;
		}
	}
}

struct walk {
	uint64_t lo, hi;         /* clip range, bytes */
	uint64_t start, end;     /* pending extent, bytes; end == 0: none */
	vsm_cow_extent_fn fn;
	void *payload;
};

static int emit(struct walk *w)
{
	int rc = 0;

	if (w->end > w->start)
		rc = w->fn(w->start, w->end - w->start, w->payload);
	w->start = w->end = 0;
	return rc;
}

/* Bits [a, b) are dirty. */
static int run(struct walk *w, uint32_t gb, uint64_t a, uint64_t b)
{
	uint64_t s = a << gb, e = b << gb;

	if (s < w->lo)
		s = w->lo;
	if (e > w->hi)
		e = w->hi;
	if (s >= e)
		return 0;
	if (w->end && w->end == s) {
		w->end = e;
		return 0;
	}
	if (w->end) {
		int rc = emit(w);

		if (rc)
			return rc;
	}
	w->start = s;
	w->end = e;
	return 0;
}

int qc_bm_walk(struct qcow2 *q, struct qc_bitmap *b, uint64_t off, uint64_t len,
	       vsm_cow_extent_fn fn, void *payload)
{
	uint64_t cb = chunk_bits(q), first, last, ci, size = q->size;
	struct walk w;
	int rc;

	if (off >= size || len == 0 || b->nbits == 0)
		return 0;
	if (len > size - off)
		len = size - off;
	memset(&w, 0, sizeof(w));
	w.lo = off;
	w.hi = off + len;
	w.fn = fn;
	w.payload = payload;
	first = off >> b->gran_bits;
	last = (off + len - 1) >> b->gran_bits;
	if (last >= b->nbits)
		last = b->nbits - 1;
	for (ci = first / cb; ci <= last / cb; ci++) {
		const uint8_t *c = b->chunk[ci];
		uint64_t base = ci * cb, i = base > first ? 0 : first - base;
		uint64_t stop = (ci + 1) * cb - 1 < last ? cb : last - base + 1;
		uint64_t rs = UINT64_MAX;

		if (!c)
			continue;  /* all zeros: nothing read */
		if (c == QC_BM_ONES) {
			rs = i;
			i = stop;
		}
		while (i < stop) {
			uint64_t word = vsm__get_le64(c + ((i >> 6) << 3));
			uint64_t wbase = i & ~63ull;

			word >>= (i & 63);
			/* Whole words of one value go in one step. */
			if (rs == UINT64_MAX && word == 0) {
				i = wbase + 64;
				continue;
			}
			if (rs != UINT64_MAX && (i & 63) == 0 && word == UINT64_MAX) {
				i += 64;
				continue;
			}
			if (word & 1) {
				if (rs == UINT64_MAX)
					rs = i;
			} else if (rs != UINT64_MAX) {
				if ((rc = run(&w, b->gran_bits, base + rs, base + i)))
					return rc;
				rs = UINT64_MAX;
			}
			i++;
		}
		if (rs != UINT64_MAX) {
			if (stop < i)
				i = stop;
			if ((rc = run(&w, b->gran_bits, base + rs, base + i)))
				return rc;
		}
	}
	return emit(&w);
}
