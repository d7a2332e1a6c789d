/*
 * qcow2 persistent bitmaps on disk (QEMU docs/interop/qcow2.txt, "Bitmaps
 * extension"): reading and validating the extension, directory, tables
 * and data at open, and storing them back.
 *
 * A store never overwrites what the header points at: changed bitmaps get
 * new data clusters and a new table, the directory a new place; then the
 * refcounts and data are flushed, the header extension is switched in one
 * write, and only then are the old clusters freed. A crash leaves the old
 * directory (and at worst leaked clusters). The in_use protocol (doc/
 * bitmaps.md) covers the bits that change between stores: before the
 * first change of an image, its enabled bitmaps are stored in_use; a clean
 * store (flush, close) writes their bits and clears it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow_int.h"

static uint64_t up8(uint64_t v)
{
	return (v + 7) & ~7ull;
}

static int bm_corrupt(struct qcow2 *q, const char *fmt, ...) VSM_PRINTF(2, 3);
static int bm_corrupt(struct qcow2 *q, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return vsm_err(VSM_ECORRUPT, "%s: bitmaps: %s", q->label, msg);
}

static void bm_release(struct qc_bitmap *b)
{
	qc_bm_free_bits(b);
	free(b->name);
	free(b->extra);
	free(b->table);
	memset(b, 0, sizeof(*b));
}

void qc_bm_free_all(struct qcow2 *q)
{
	uint32_t i;

	for (i = 0; i < q->nbm; i++)
		bm_release(&q->bm[i]);
	free(q->bm);
	q->bm = NULL;
	q->nbm = 0;
}

struct qc_bitmap *qc_bm_find(struct qcow2 *q, const char *name)
{
	uint32_t i;

	for (i = 0; i < q->nbm; i++)
		if (!strcmp(q->bm[i].name, name))
			return &q->bm[i];
	return NULL;
}

/* ---- reading ---- */

/* Clusters of bitmap metadata and data, to find overlaps. */
struct clist {
	uint64_t *c;
	size_t n, cap;
};

static int clist_add(struct clist *l, uint64_t off, uint64_t bytes, uint64_t cs)
{
	uint64_t c;

	for (c = off / cs; bytes && c <= (off + bytes - 1) / cs; c++) {
		if (l->n == l->cap) {
			size_t ncap = l->cap ? l->cap * 2 : 64;
			uint64_t *nc = realloc(l->c, ncap * sizeof(*nc));

			if (!nc)
				return vsm_err(VSM_ENOMEM, "out of memory");
			l->c = nc;
			l->cap = ncap;
		}
		l->c[l->n++] = c;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool range_meets(uint64_t c, uint64_t off, uint64_t bytes, uint64_t cs)
{
	return bytes && c >= off / cs && c <= (off + bytes - 1) / cs;
}

/* No cluster named twice, none on the header, L1 table, refcount table
 * or snapshot table. */
static int clist_check(struct qcow2 *q, struct clist *l)
{
	size_t i;

	qsort(l->c, l->n, sizeof(uint64_t), cmp_u64);
	for (i = 0; i < l->n; i++) {
		uint64_t c = l->c[i];

		if (i && l->c[i - 1] == c)
			return bm_corrupt(q, "cluster 0x%llx is used twice by the bitmaps",
					  (unsigned long long)(c * q->cs));
		if (c == 0 || range_meets(c, q->l1_offset, (uint64_t)q->l1_size * 8, q->cs) ||
		    range_meets(c, q->rt_offset, (uint64_t)q->rt_clusters * q->cs, q->cs) ||
		    (q->nb_snapshots && c == q->snapshots_offset / q->cs))
			return bm_corrupt(q, "bitmap cluster 0x%llx overlaps the image's own "
					  "metadata", (unsigned long long)(c * q->cs));
	}
	return 0;
}

/* Table entry @e of bitmap @name at index @i: refuse what is not valid. */
static int check_entry(struct qcow2 *q, const char *name, uint64_t i, uint64_t e)
{
	uint64_t off = e & QC_OFFSET_MASK;

	if (e & QC_BMT_RESERVED)
		return bm_corrupt(q, "bitmap '%s': table entry %llu has reserved bits set",
				  name, (unsigned long long)i);
	if (off && (e & 1))
		return bm_corrupt(q, "bitmap '%s': table entry %llu has an offset and the "
				  "all-ones bit", name, (unsigned long long)i);
	if (off && (off & (q->cs - 1)))
		return bm_corrupt(q, "bitmap '%s': data cluster of entry %llu is not aligned",
				  name, (unsigned long long)i);
	if (off && off + q->cs > q->file_end)
		return bm_corrupt(q, "bitmap '%s': data cluster 0x%llx is past the end of "
				  "the file", name, (unsigned long long)off);
	return 0;
}

/* Read and check the table of @b (already described by its entry). */
static int load_table(struct qcow2 *q, struct qc_bitmap *b, struct clist *l)
{
	uint64_t bytes = (uint64_t)b->table_size * 8, i;
	uint8_t *raw;
	int rc;

	if (!b->table_size)
		return 0;
	raw = malloc(bytes);
	b->table = vsm__calloc(b->table_size, sizeof(uint64_t));
	if (!raw || !b->table) {
		free(raw);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	rc = vsm_bdev_read(q->bdev, raw, bytes, b->table_off);
	for (i = 0; rc == 0 && i < b->table_size; i++) {
		b->table[i] = vsm__get_be64(raw + 8 * i);
		rc = check_entry(q, b->name, i, b->table[i]);
		if (rc == 0 && (b->table[i] & QC_OFFSET_MASK))
			rc = clist_add(l, b->table[i] & QC_OFFSET_MASK, q->cs, q->cs);
	}
	free(raw);
	if (rc == 0)
		rc = clist_add(l, b->table_off, bytes, q->cs);
	return rc;
}

/* The bits of a trusted bitmap into memory. Entries of 0 read nothing. */
static int load_bits(struct qcow2 *q, struct qc_bitmap *b)
{
	uint64_t i, last_bits;
	int rc = qc_bm_init_bits(q, b, q->size);

	if (rc < 0)
		return rc;
	for (i = 0; i < b->nchunks && i < b->table_size; i++) {
		uint64_t e = b->table[i], off = e & QC_OFFSET_MASK;

		if (!off && !(e & 1))
			continue;
		/* All ones: shared, except a last chunk whose tail is masked. */
		if (!off && (i + 1 < b->nchunks || !(b->nbits % (q->cs * 8)))) {
			b->chunk[i] = QC_BM_ONES;
			continue;
		}
		b->chunk[i] = malloc(q->cs);
		if (!b->chunk[i])
			return vsm_err(VSM_ENOMEM, "out of memory");
		if (!off) {
			memset(b->chunk[i], 0xff, q->cs);
		} else {
			rc = vsm_bdev_read(q->bdev, b->chunk[i], q->cs, off);
			if (rc < 0)
				return rc;
		}
	}
	/* Bits past the end of the disk are not part of the bitmap: keep
	 * them 0, so that stores and merges never carry garbage. */
	last_bits = b->nbits % (q->cs * 8);
	if (last_bits && b->nchunks && b->chunk[b->nchunks - 1]) {
		uint8_t *c = b->chunk[b->nchunks - 1];
		uint64_t byte = last_bits >> 3;

		/* Bit j is bit (j & 7) of byte j >> 3: keep the low bits of
		 * the byte the end falls in, zero the bytes after it (a loop
		 * per bit cost half a million steps per open of a 1 GiB disk). */
		if (last_bits & 7)
			c[byte++] &= (uint8_t)((1u << (last_bits & 7)) - 1);
		memset(c + byte, 0, q->cs - byte);
	}
	return 0;
}

/* Parse one directory entry at @p (@avail bytes left). */
static int parse_entry(struct qcow2 *q, const uint8_t *p, uint64_t avail,
		       struct qc_bitmap *b, uint64_t *used)
{
	uint32_t flags, esz, nsz, gb, type;
	uint64_t nbits, want;

	if (avail < 24)
		return bm_corrupt(q, "directory entry runs past the directory");
	b->table_off = vsm__get_be64(p);
	b->table_size = vsm__get_be32(p + 8);
	flags = vsm__get_be32(p + 12);
	type = p[16];
	gb = p[17];
	nsz = vsm__get_be16(p + 18);
	esz = vsm__get_be32(p + 20);
	*used = up8(24ull + esz + nsz);
	if (24ull + esz + nsz > avail)
		return bm_corrupt(q, "directory entry runs past the directory");
	if (nsz == 0 || nsz > QC_BM_MAX_NAME)
		return bm_corrupt(q, "bitmap name size %u is not 1..1023", nsz);
	b->name = calloc(1, nsz + 1);
	if (!b->name)
		return vsm_err(VSM_ENOMEM, "out of memory");
	memcpy(b->name, p + 24 + esz, nsz);
	if (strlen(b->name) != nsz)
		return bm_corrupt(q, "a bitmap name contains a NUL byte");
	if (type != 1)
		return bm_corrupt(q, "bitmap '%s' has type %u, not 1 (dirty tracking)",
				  b->name, type);
	if (gb < QC_BM_MIN_GRAN_BITS || gb > QC_BM_MAX_GRAN_BITS)
		return bm_corrupt(q, "bitmap '%s' has granularity 2^%u, not 2^9..2^31",
				  b->name, gb);
	if (flags & ~(QC_BME_IN_USE | QC_BME_AUTO | QC_BME_EXTRA_COMPAT))
		return bm_corrupt(q, "bitmap '%s' has reserved flags 0x%x", b->name, flags);
	if (esz) {
		if (!(flags & QC_BME_EXTRA_COMPAT))
			return vsm_err(VSM_ENOTSUP, "%s: bitmaps: bitmap '%s' has extra data "
				       "this library does not know", q->label, b->name);
		b->extra = malloc(esz);
		if (!b->extra)
			return vsm_err(VSM_ENOMEM, "out of memory");
		memcpy(b->extra, p + 24, esz);
		b->extra_size = esz;
	}
	b->gran_bits = gb;
	b->enabled = (flags & QC_BME_AUTO) != 0;
	b->bad = (flags & QC_BME_IN_USE) != 0;
	nbits = (q->size >> gb) + ((q->size & ((1ull << gb) - 1)) != 0);
	if (nbits / 8 > QC_BM_MAX_BYTES)
		return bm_corrupt(q, "bitmap '%s' would take more than 512 MiB", b->name);
	want = (nbits + q->cs * 8 - 1) / (q->cs * 8);
	if (b->table_size > QC_BM_MAX_TABLE)
		return bm_corrupt(q, "bitmap '%s': table of %u entries is too large",
				  b->name, b->table_size);
	/* An in_use bitmap may be one a resize did not get to store: its
	 * content is not used, its table only freed. */
	if (b->table_size != want && !b->bad)
		return bm_corrupt(q, "bitmap '%s': table has %u entries, the disk size "
				  "needs %llu", b->name, b->table_size, (unsigned long long)want);
	if ((b->table_off & (q->cs - 1)) || (b->table_size && !b->table_off) ||
	    (!b->table_size && b->table_off))
		return bm_corrupt(q, "bitmap '%s': table offset 0x%llx is invalid", b->name,
				  (unsigned long long)b->table_off);
	if (b->table_size && b->table_off + (uint64_t)b->table_size * 8 > q->file_end)
		return bm_corrupt(q, "bitmap '%s': table is past the end of the file", b->name);
	return 0;
}

/* The bitmaps extension in the header cluster, or NULL. */
static const uint8_t *find_ext(struct qcow2 *q, uint32_t *len)
{
	uint64_t p = q->version == 3 ? q->header_length : 72, limit = q->cs;
	uint64_t boff = vsm__get_be64(q->hdr + 8);

	if (boff && boff < limit)
		limit = boff;
	while (p + 8 <= limit) {
		uint32_t type = vsm__get_be32(q->hdr + p), l = vsm__get_be32(q->hdr + p + 4);

		if (type == QC_EXT_END || p + 8 + l > limit)
			return NULL;
		if (type == QC_EXT_BITMAPS) {
			*len = l;
			return q->hdr + p + 8;
		}
		p += 8 + up8(l);
	}
	return NULL;
}

int qc_bm_load(struct qcow2 *q)
{
	const uint8_t *ext;
	uint32_t len = 0, nb, i, j;
	uint64_t dsize, doff, p = 0, used = 0;
	struct clist l = { NULL, 0, 0 };
	uint8_t *dir = NULL;
	int rc;

	ext = find_ext(q, &len);
	if (!ext)
		return 0;
	/* Without the autoclear bit, a program that does not know bitmaps
	 * changed the image: the extension is stale and ignored, as QEMU
	 * does (its clusters are then leaks). */
	if (q->version != 3 || !(q->autoclear & QC_AUTOCLEAR_BITMAPS))
		return 0;
	if (len != 24)
		return bm_corrupt(q, "extension is %u bytes long, not 24", len);
	nb = vsm__get_be32(ext);
	dsize = vsm__get_be64(ext + 8);
	doff = vsm__get_be64(ext + 16);
	if (vsm__get_be32(ext + 4))
		return bm_corrupt(q, "reserved field of the extension is not zero");
	if (nb == 0 || nb > QC_BM_MAX_BITMAPS)
		return bm_corrupt(q, "%u bitmaps is not 1..65535", nb);
	if (dsize < 24ull * nb || dsize > QC_BM_MAX_DIR_BYTES)
		return bm_corrupt(q, "directory size %llu is invalid for %u bitmaps",
				  (unsigned long long)dsize, nb);
	if (!doff || (doff & (q->cs - 1)) || doff + dsize > q->file_end)
		return bm_corrupt(q, "directory offset 0x%llx is invalid",
				  (unsigned long long)doff);
	dir = malloc(dsize);
	q->bm = vsm__calloc(nb, sizeof(*q->bm));
	if (!dir || !q->bm) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto fail;
	}
	rc = vsm_bdev_read(q->bdev, dir, dsize, doff);
	if (rc < 0)
		goto fail;
	if ((rc = clist_add(&l, doff, dsize, q->cs)) < 0)
		goto fail;
	for (i = 0; i < nb; i++) {
		q->nbm = i + 1;
		rc = parse_entry(q, dir + p, dsize - p, &q->bm[i], &used);
		if (rc < 0)
			goto fail;
		for (j = 0; j < i; j++)
			if (!strcmp(q->bm[j].name, q->bm[i].name)) {
				rc = bm_corrupt(q, "two bitmaps are named '%s'", q->bm[i].name);
				goto fail;
			}
		p += used;
		if (p > dsize) {
			rc = bm_corrupt(q, "directory entry runs past the directory");
			goto fail;
		}
	}
	if (p != dsize) {
		rc = bm_corrupt(q, "directory is %llu bytes, its %u entries take %llu",
				(unsigned long long)dsize, nb, (unsigned long long)p);
		goto fail;
	}
	for (i = 0; i < nb; i++)
		if ((rc = load_table(q, &q->bm[i], &l)) < 0)
			goto fail;
	if ((rc = clist_check(q, &l)) < 0)
		goto fail;
	for (i = 0; i < nb; i++)
		if (!q->bm[i].bad && (rc = load_bits(q, &q->bm[i])) < 0)
			goto fail;
	q->bm_dir_off = doff;
	q->bm_dir_size = dsize;
	free(dir);
	free(l.c);
	return 0;
fail:
	free(dir);
	free(l.c);
	qc_bm_free_all(q);
	return rc;
}

/* ---- storing ---- */

struct newtab {
	bool write;          /* this bitmap gets new data and a new table */
	uint64_t off;        /* new table */
	uint64_t *table;
};

static bool all_ones(const struct qcow2 *q, const uint8_t *c)
{
	uint64_t i;

	for (i = 0; i < q->cs; i += 8)
		if (vsm__get_le64(c + i) != UINT64_MAX)
			return false;
	return true;
}

/* Release what a table names (and the table). */
static int free_table(struct qcow2 *q, uint64_t off, const uint64_t *t, uint32_t n)
{
	uint32_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < n; i++)
		if (t[i] & QC_OFFSET_MASK)
			rc = qc_defer_free(q, t[i] & QC_OFFSET_MASK, q->cs);
	if (rc == 0 && n)
		rc = qc_defer_free(q, off, (uint64_t)n * 8);
	return rc;
}

static int write_bitmap(struct qcow2 *q, struct qc_bitmap *b, struct newtab *nt)
{
	uint64_t i, n = b->nchunks, bytes = n * 8, alloc = (bytes + q->cs - 1) / q->cs;
	uint8_t *raw;
	int rc = 0;

	nt->table = vsm__calloc(n ? n : 1, sizeof(uint64_t));
	if (!nt->table)
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		const uint8_t *c = b->chunk ? b->chunk[i] : NULL;

		if (!c || qc_bm_chunk_empty(q, c))
			continue;
		if (c == QC_BM_ONES || all_ones(q, c)) {
			nt->table[i] = 1;
			continue;
		}
		if ((rc = qc_alloc(q, 1, &nt->table[i], NULL)) < 0)
			return rc;
		if ((rc = qc_bwrite(q, c, q->cs, nt->table[i])) < 0)
			return rc;
	}
	if (!n)
		return 0;
	if ((rc = qc_alloc(q, alloc, &nt->off, NULL)) < 0)
		return rc;
	raw = calloc(1, alloc * q->cs);
	if (!raw)
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (i = 0; i < n; i++)
		vsm__put_be64(raw + 8 * i, nt->table[i]);
	rc = qc_bwrite(q, raw, alloc * q->cs, nt->off);
	free(raw);
	return rc;
}

int qc_bm_store(struct qcow2 *q, bool writing)
{
	struct newtab *nt = NULL;
	uint64_t dsize = 0, doff = 0, p = 0, dclusters = 0;
	uint8_t ext[24], *dir = NULL;
	bool any_inuse = false, issued = false, uncertain;
	uint32_t i;
	int rc;

	if (q->readonly)
		return 0;
	if ((rc = qc_mark_dirty(q)) < 0)
		return rc;
	nt = vsm__calloc(q->nbm ? q->nbm : 1, sizeof(*nt));
	if (!nt)
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (i = 0; i < q->nbm; i++) {
		struct qc_bitmap *b = &q->bm[i];
		bool covered = writing && b->enabled;

		/* Bits not covered by in_use on disk must be on disk; a new or
		 * resized bitmap needs a table of the right size. */
		nt[i].write = !b->bad && ((b->changed && !covered) || b->table_size != b->nchunks ||
					  (b->nchunks && !b->table_off));
		if (nt[i].write && (rc = write_bitmap(q, b, &nt[i])) < 0)
			goto undo;
		dsize += up8(24ull + b->extra_size + strlen(b->name));
	}
	if (q->nbm) {
		dclusters = (dsize + q->cs - 1) / q->cs;
		dir = calloc(1, dclusters * q->cs);
		if (!dir) {
			rc = vsm_err(VSM_ENOMEM, "out of memory");
			goto undo;
		}
		for (i = 0; i < q->nbm; i++) {
			struct qc_bitmap *b = &q->bm[i];
			size_t nl = strlen(b->name);
			uint32_t fl = 0;

			if (b->bad || (writing && b->enabled))
				fl |= QC_BME_IN_USE;
			any_inuse |= writing && b->enabled && !b->bad;
			if (b->enabled)
				fl |= QC_BME_AUTO;
			if (b->extra_size)
				fl |= QC_BME_EXTRA_COMPAT;
			vsm__put_be64(dir + p, nt[i].write ? nt[i].off : b->table_off);
			vsm__put_be32(dir + p + 8, nt[i].write ? (uint32_t)b->nchunks : b->table_size);
			vsm__put_be32(dir + p + 12, fl);
			dir[p + 16] = 1;
			dir[p + 17] = (uint8_t)b->gran_bits;
			vsm__put_be16(dir + p + 18, (uint16_t)nl);
			vsm__put_be32(dir + p + 20, b->extra_size);
			if (b->extra_size)
				memcpy(dir + p + 24, b->extra, b->extra_size);
			memcpy(dir + p + 24 + b->extra_size, b->name, nl);
			p += up8(24ull + b->extra_size + nl);
		}
		if ((rc = qc_alloc(q, dclusters, &doff, NULL)) < 0)
			goto undo;
		if ((rc = qc_bwrite(q, dir, dclusters * q->cs, doff)) < 0)
			goto undo;
	}
	/* Everything new (and its refcounts) durable before the switch. */
	if ((rc = qc_flush(q)) < 0)
		goto undo;
	vsm__put_be32(ext, q->nbm);
	vsm__put_be32(ext + 4, 0);
	vsm__put_be64(ext + 8, dsize);
	vsm__put_be64(ext + 16, doff);
	if (q->nbm)
		q->autoclear |= QC_AUTOCLEAR_BITMAPS;
	else
		q->autoclear &= ~QC_AUTOCLEAR_BITMAPS;
	rc = qc_write_header_ext(q, QC_EXT_BITMAPS, q->nbm ? ext : NULL, 24, &issued);
	if (rc < 0 && !issued)
		goto undo;
	/*
	 * Switched, or (after a failed header write) maybe switched: then
	 * the disk may name the old directory or the new one. Memory goes on
	 * with the new one and nothing is freed (the loser leaks, which check
	 * reports); in_use must be stored again before the next write, since
	 * the disk may say the bitmaps are clean.
	 */
	uncertain = rc < 0;
	if (q->bm_dir_off && !uncertain)
		rc = qc_defer_free(q, q->bm_dir_off, q->bm_dir_size);
	q->bm_dir_off = doff;
	q->bm_dir_size = dsize;
	for (i = 0; i < q->nbm; i++) {
		struct qc_bitmap *b = &q->bm[i];

		if (!nt[i].write)
			continue;
		if (rc == 0 && !uncertain)
			rc = free_table(q, b->table_off, b->table, b->table_size);
		free(b->table);
		b->table = nt[i].table;
		nt[i].table = NULL;
		b->table_off = nt[i].off;
		b->table_size = (uint32_t)b->nchunks;
		b->changed = false;
	}
	q->bm_inuse_stored = any_inuse && !uncertain;
	q->bm_changed = uncertain;
	for (i = 0; i < q->nbm; i++)
		if (q->bm[i].changed)
			q->bm_changed = true;
	if (rc == 0)
		rc = qc_flush_all(q);
	free(dir);
	free(nt);
	return rc;
undo:
	/* Nothing durable names the new clusters: give them back. */
	for (i = 0; i < q->nbm; i++) {
		if (nt[i].table && nt[i].write) {
			uint64_t k;

			for (k = 0; k < q->bm[i].nchunks; k++)
				if (nt[i].table[k] & QC_OFFSET_MASK)
					qc_defer_free(q, nt[i].table[k] & QC_OFFSET_MASK, q->cs);
			if (nt[i].off)
				qc_defer_free(q, nt[i].off, q->bm[i].nchunks * 8);
		}
		free(nt[i].table);
	}
	if (doff)
		qc_defer_free(q, doff, dsize);
	free(dir);
	free(nt);
	return rc;
}

int qc_bm_before_write(struct qcow2 *q)
{
	uint32_t i;

	if (q->bm_inuse_stored || q->readonly)
		return 0;
	for (i = 0; i < q->nbm; i++)
		if (q->bm[i].enabled && !q->bm[i].bad)
			return qc_bm_store(q, true);
	return 0;
}

/* qcow2_overlap.c: every stored bitmap cluster must have a refcount. */
int qc_bm_verify_refs(struct qcow2 *q,
		      int (*need)(struct qcow2 *, const char *, uint64_t, uint64_t))
{
	uint32_t i, k;
	int rc;

	if (q->bm_dir_off && (rc = need(q, "the bitmap directory", q->bm_dir_off,
					q->bm_dir_size)) < 0)
		return rc;
	for (i = 0; i < q->nbm; i++) {
		struct qc_bitmap *b = &q->bm[i];

		if (b->table_size && (rc = need(q, "a bitmap table", b->table_off,
						(uint64_t)b->table_size * 8)) < 0)
			return rc;
		for (k = 0; k < b->table_size; k++)
			if ((b->table[k] & QC_OFFSET_MASK) &&
			    (rc = need(q, "a bitmap data cluster", b->table[k] & QC_OFFSET_MASK,
				       q->cs)) < 0)
				return rc;
	}
	return 0;
}

/* Before a resize to @size: in_use bitmaps are refused, as QEMU does,
 * and so is a size whose bitmaps would not fit QEMU's limit. */
int qc_bm_resize_check(struct qcow2 *q, uint64_t size)
{
	uint32_t i;

	for (i = 0; i < q->nbm; i++) {
		struct qc_bitmap *b = &q->bm[i];

		if (b->bad)
			return vsm_err(VSM_ESTATE, "%s: bitmap '%s' is inconsistent (in use "
				       "when the image was opened); remove it before resizing",
				       q->label, b->name);
		if ((size >> b->gran_bits) / 8 > QC_BM_MAX_BYTES)
			return vsm_err(VSM_EINVAL, "%s: bitmap '%s' would take more than "
				       "512 MiB at %llu bytes", q->label, b->name,
				       (unsigned long long)size);
	}
	return 0;
}

/* Grow every bitmap with the disk (qemu-img resize does the same); the
 * new range is clean. Stored at once. */
int qc_bm_resize(struct qcow2 *q, uint64_t size)
{
	uint32_t i;
	int rc;

	if (!q->nbm)
		return 0;
	for (i = 0; i < q->nbm; i++) {
		rc = qc_bm_init_bits(q, &q->bm[i], size);
		if (rc < 0)
			return rc;
		q->bm[i].changed = true;
	}
	return qc_bm_store(q, q->bm_inuse_stored);
}
