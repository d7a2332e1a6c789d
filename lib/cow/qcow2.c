/*
 * qcow2 header: parsing and validating an image on open (refusing what
 * we do not support by name), writing the fixed header fields back (dirty
 * bit, table moves, size), dropping the backing reference, creating new v3
 * images, and growing the virtual size. Whole header clusters are built by
 * qc_header_compose (qcow2_header.c) only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow_int.h"

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static int corrupt(struct qcow2 *q, const char *what)
{
	return vsm_err(VSM_ECORRUPT, "%s: %s", q->label, what);
}

/* Name of an incompatible feature bit from the image's own table. */
static const char *feature_name(const uint8_t *hdr, uint64_t cs, uint32_t start,
				uint32_t bit, char *buf, size_t bufsz)
{
	uint64_t p = start;

	while (p + 8 <= cs) {
		uint32_t type = vsm__get_be32(hdr + p), len = vsm__get_be32(hdr + p + 4);

		if (type == QC_EXT_END || p + 8 + len > cs)
			break;
		if (type == QC_EXT_FEATURES) {
			uint32_t i;

			for (i = 0; i + 48 <= len; i += 48) {
				const uint8_t *e = hdr + p + 8 + i;

				if (e[0] == 0 && e[1] == bit) {
					snprintf(buf, bufsz, "%.46s", (const char *)e + 2);
					return buf;
				}
			}
		}
		p += 8 + round_up(len, 8);
	}
	return NULL;
}

static int parse_extensions(struct qcow2 *q)
{
	uint64_t p = q->header_length, limit = q->cs;

	if (q->version == 2)
		p = 72;
	if (vsm__get_be64(q->hdr + 8) && vsm__get_be64(q->hdr + 8) < limit)
		limit = vsm__get_be64(q->hdr + 8);
	while (p + 8 <= limit) {
		uint32_t type = vsm__get_be32(q->hdr + p), len = vsm__get_be32(q->hdr + p + 4);

		if (type == QC_EXT_END)
			break;
		if (p + 8 + len > limit)
			return corrupt(q, "header extension runs past the header cluster");
		switch (type) {
		case QC_EXT_BACKING_FMT:
			free(q->backing_format);
			q->backing_format = calloc(1, len + 1);
			if (!q->backing_format)
				return vsm_err(VSM_ENOMEM, "out of memory");
			memcpy(q->backing_format, q->hdr + p + 8, len);
			break;
		case QC_EXT_DATA_FILE:
			return vsm_err(VSM_ENOTSUP, "%s: external data files are not supported",
				       q->label);
		case QC_EXT_CRYPTO:
			return vsm_err(VSM_ENOTSUP, "%s: encryption is not supported",
				       q->label);
		case QC_EXT_VSM_CID:
			qc_cid_parse(q, q->hdr + p + 8, len);
			break;
		default:
			break;
		}
		p += 8 + round_up(len, 8);
	}
	return 0;
}

int qc_open(struct qcow2 **out, vsm_bdev *bdev, const char *label,
	    bool readonly, unsigned int flags, uint64_t cache_max)
{
	struct qcow2 *q = vsm__calloc(1, sizeof(*q));
	uint8_t h[QCOW_V3_HEADER_LEN];
	uint64_t fsize, l2_cover, need_l1, known, i, boff;
	uint32_t blen;
	uint8_t *buf = NULL;
	char name[64];
	int rc;

	if (!q)
		return -VSM_ENOMEM;
	q->bdev = bdev;
	q->label = label;
	q->readonly = readonly;
	rc = vsm_bdev_size(bdev, &fsize);
	if (rc < 0)
		goto fail;
	memset(h, 0, sizeof(h));
	rc = vsm_bdev_read(bdev, h, sizeof(h), 0);
	if (rc < 0)
		goto fail;
	rc = -VSM_ECORRUPT;
	if (vsm__get_be32(h) != QCOW_MAGIC) {
		rc = vsm_err(VSM_EINVAL, "%s: not a qcow2 image", label);
		goto fail;
	}
	q->version = vsm__get_be32(h + 4);
	if (q->version != 2 && q->version != 3) {
		rc = vsm_err(VSM_EVERSION, "%s: qcow2 version %u is not supported",
			     label, q->version);
		goto fail;
	}
	q->cluster_bits = vsm__get_be32(h + 20);
	if (q->cluster_bits < 9 || q->cluster_bits > 21) {
		rc = vsm_err(VSM_ECORRUPT, "%s: cluster size 2^%u is outside 512 B..2 MiB",
			     label, q->cluster_bits);
		goto fail;
	}
	q->cs = 1ull << q->cluster_bits;
	q->l2_bits = q->cluster_bits - 3;
	q->size = vsm__get_be64(h + 24);
	if (vsm__get_be32(h + 32) != 0) {
		rc = vsm_err(VSM_ENOTSUP, "%s: encryption (method %u) is not supported",
			     label, vsm__get_be32(h + 32));
		goto fail;
	}
	q->l1_size = vsm__get_be32(h + 36);
	q->l1_offset = vsm__get_be64(h + 40);
	q->rt_offset = vsm__get_be64(h + 48);
	q->rt_clusters = vsm__get_be32(h + 56);
	q->nb_snapshots = vsm__get_be32(h + 60);
	q->snapshots_offset = vsm__get_be64(h + 64);
	if (q->version == 3) {
		q->incompat = vsm__get_be64(h + 72);
		q->compat = vsm__get_be64(h + 80);
		q->autoclear = vsm__get_be64(h + 88);
		q->refcount_order = vsm__get_be32(h + 96);
		q->header_length = vsm__get_be32(h + 100);
		if (q->header_length < QCOW_V3_HEADER_LEN || (q->header_length & 7) ||
		    q->header_length > q->cs) {
			rc = vsm_err(VSM_ECORRUPT, "%s: header length %u is invalid",
				     label, q->header_length);
			goto fail;
		}
	} else {
		q->refcount_order = 4;
		q->header_length = 72;
	}
	q->hdr = calloc(1, q->cs);
	if (!q->hdr) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto fail;
	}
	rc = vsm_bdev_read(bdev, q->hdr, q->cs, 0);
	if (rc < 0)
		goto fail;
	rc = -VSM_ECORRUPT;
	if (q->incompat & QC_INCOMPAT_DATA_FILE) {
		rc = vsm_err(VSM_ENOTSUP, "%s: external data files are not supported", label);
		goto fail;
	}
	if (q->incompat & QC_INCOMPAT_EXTL2) {
		rc = vsm_err(VSM_ENOTSUP, "%s: extended L2 entries are not supported", label);
		goto fail;
	}
	if (q->incompat & QC_INCOMPAT_COMPRESSION) {
		uint8_t ct = q->header_length > 104 ? q->hdr[104] : 0;

		rc = vsm_err(VSM_ENOTSUP, "%s: compression type %s is not supported",
			     label, ct == 1 ? "zstd" : "unknown");
		goto fail;
	}
	known = QC_INCOMPAT_DIRTY | QC_INCOMPAT_CORRUPT;
	if (q->incompat & ~known) {
		for (i = 0; i < 64; i++)
			if ((q->incompat & ~known) & (1ull << i))
				break;
		if (feature_name(q->hdr, q->cs, q->header_length, (uint32_t)i, name, sizeof(name)))
			rc = vsm_err(VSM_ENOTSUP, "%s: unsupported incompatible feature '%s' (bit %llu)",
				     label, name, (unsigned long long)i);
		else
			rc = vsm_err(VSM_ENOTSUP, "%s: unknown incompatible feature bit %llu",
				     label, (unsigned long long)i);
		goto fail;
	}
	if (q->refcount_order > 6) {
		rc = vsm_err(VSM_ECORRUPT, "%s: refcount order %u is invalid", label,
			     q->refcount_order);
		goto fail;
	}
	q->rc_bits = 1u << q->refcount_order;
	q->rc_max = q->rc_bits == 64 ? UINT64_MAX : (1ull << q->rc_bits) - 1;
	q->rb_bits = q->cluster_bits + 3 - q->refcount_order;

	rc = parse_extensions(q);
	if (rc < 0)
		goto fail;
	rc = -VSM_ECORRUPT;
	boff = vsm__get_be64(h + 8);
	blen = vsm__get_be32(h + 16);
	if (boff) {
		if (blen == 0 || blen > 1023 || boff >= q->cs || boff + blen > q->cs) {
			corrupt(q, "backing file name is out of the header cluster or too long");
			goto fail;
		}
		q->backing = calloc(1, blen + 1);
		if (!q->backing) {
			rc = vsm_err(VSM_ENOMEM, "out of memory");
			goto fail;
		}
		memcpy(q->backing, q->hdr + boff, blen);
		if (strlen(q->backing) != blen) {
			corrupt(q, "backing file name contains a NUL byte");
			goto fail;
		}
	}

	/* Tables must lie inside the file and be sane in size. */
	if (fsize < q->cs) {
		corrupt(q, "image is shorter than one cluster");
		goto fail;
	}
	q->file_end = round_up(fsize, q->cs);
	l2_cover = q->cs * qc_l2_entries(q);
	need_l1 = q->size / l2_cover + (q->size % l2_cover != 0);
	if ((uint64_t)q->l1_size * 8 > QC_MAX_L1_BYTES) {
		rc = vsm_err(VSM_ECORRUPT, "%s: L1 table size %u is absurd", label, q->l1_size);
		goto fail;
	}
	if (q->l1_size < need_l1) {
		rc = vsm_err(VSM_ECORRUPT, "%s: L1 table (%u entries) is too small for %llu bytes",
			     label, q->l1_size, (unsigned long long)q->size);
		goto fail;
	}
	if (q->l1_offset & (q->cs - 1)) {
		corrupt(q, "L1 table offset is not cluster aligned");
		goto fail;
	}
	if (q->l1_size && (q->l1_offset == 0 || q->l1_offset + (uint64_t)q->l1_size * 8 > fsize)) {
		corrupt(q, "L1 table offset past end of file");
		goto fail;
	}
	if (q->rt_offset & (q->cs - 1) || q->rt_offset == 0) {
		corrupt(q, "refcount table offset is invalid");
		goto fail;
	}
	if (q->rt_clusters == 0 || (uint64_t)q->rt_clusters * q->cs > QC_MAX_RT_BYTES * 8ull) {
		rc = vsm_err(VSM_ECORRUPT, "%s: refcount table size %u clusters is absurd",
			     label, q->rt_clusters);
		goto fail;
	}
	if (q->rt_offset + (uint64_t)q->rt_clusters * q->cs > q->file_end) {
		corrupt(q, "refcount table offset past end of file");
		goto fail;
	}
	if (q->nb_snapshots > 65536) {
		corrupt(q, "too many snapshots");
		goto fail;
	}
	if (q->nb_snapshots && ((q->snapshots_offset & (q->cs - 1)) ||
				q->snapshots_offset >= fsize)) {
		corrupt(q, "snapshot table offset is invalid");
		goto fail;
	}
	/* Each snapshot entry takes at least 40 bytes. */
	if (q->nb_snapshots && (uint64_t)q->nb_snapshots * 40 > fsize - q->snapshots_offset) {
		rc = vsm_err(VSM_ECORRUPT, "%s: snapshot table (%u entries) runs past end of file",
			     label, q->nb_snapshots);
		goto fail;
	}

	q->l1 = vsm__calloc(q->l1_size ? q->l1_size : 1, sizeof(uint64_t));
	q->l1_dirty = vsm__calloc(((uint64_t)q->l1_size + 511) / 512 + 1, 1);
	buf = malloc(q->l1_size ? (size_t)q->l1_size * 8 : 8);
	if (!q->l1 || !q->l1_dirty || !buf) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto fail;
	}
	rc = vsm_bdev_read(bdev, buf, (size_t)q->l1_size * 8, q->l1_offset);
	if (rc < 0)
		goto fail;
	for (i = 0; i < q->l1_size; i++)
		q->l1[i] = vsm__get_be64(buf + 8 * i);
	free(buf);
	q->rt_entries = (uint64_t)q->rt_clusters * q->cs / 8;
	q->rt = vsm__calloc(q->rt_entries, sizeof(uint64_t));
	q->rt_dirty = vsm__calloc(q->rt_clusters, 1);
	buf = malloc((size_t)q->rt_clusters * q->cs);
	if (!q->rt || !q->rt_dirty || !buf) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto fail;
	}
	rc = vsm_bdev_read(bdev, buf, (size_t)q->rt_clusters * q->cs, q->rt_offset);
	if (rc < 0)
		goto fail;
	for (i = 0; i < q->rt_entries; i++)
		q->rt[i] = vsm__get_be64(buf + 8 * i);
	free(buf);
	buf = NULL;
	/* A refcount block for clusters no qcow2 offset (56 bits) can
	 * reach cannot be part of a valid image; walks over the blocks
	 * would otherwise span 2^68 bytes. */
	for (i = QC_MAX_HOST_OFFSET >> (q->rb_bits + q->cluster_bits); i < q->rt_entries; i++)
		if (q->rt[i]) {
			rc = vsm_err(VSM_ECORRUPT, "%s: refcount table entry %llu describes "
				     "clusters past the largest qcow2 offset (2^56)", label,
				     (unsigned long long)i);
			goto fail;
		}

	if (q->incompat & QC_INCOMPAT_CORRUPT)
		q->readonly = true;
	/* Lazy refcounts leave the refcounts of a dirty image stale: reads
	 * are right, but allocation would reuse clusters in use. */
	if (!q->readonly && (q->incompat & QC_INCOMPAT_DIRTY) &&
	    (q->compat & QC_COMPAT_LAZY_REFCOUNTS)) {
		if (!(flags & VSM_COW_REPAIR)) {
			rc = vsm_err(VSM_ESTATE, "%s: image with lazy refcounts was not closed "
				     "cleanly; open it read-only, or repair it "
				     "(check --repair, or open with repair allowed)", label);
			goto fail;
		}
		q->need_repair = true;
	}
	q->fresh_from = q->file_end / q->cs;
	q->free_hint = 1;
	q->tmp = malloc(q->cs);
	q->cbuf = malloc(q->cs);
	q->ztmp = malloc(2 * q->cs + 1024);
	if (!q->tmp || !q->cbuf || !q->ztmp) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto fail;
	}
	rc = qc_cache_init(q, cache_max);
	if (rc < 0)
		goto fail;
	rc = qc_bm_load(q);
	if (rc < 0)
		goto fail;
	*out = q;
	return 0;
fail:
	free(buf);
	qc_free(q);
	return rc;
}

void qc_free(struct qcow2 *q)
{
	if (!q)
		return;
	qc_cache_free(q);
	qc_bm_free_all(q);
	free(q->l1);
	free(q->l1_dirty);
	free(q->rt);
	free(q->rt_dirty);
	free(q->hdr);
	free(q->backing);
	free(q->backing_format);
	free(q->pend);
	free(q->tmp);
	free(q->cbuf);
	free(q->ztmp);
	free(q->inconsistent);
	free(q);
}

/* The fixed fields we change, from the in-memory state into q->hdr. */
static void sync_fixed(struct qcow2 *q)
{
	uint8_t *h = q->hdr;

	vsm__put_be64(h + 24, q->size);
	vsm__put_be32(h + 36, q->l1_size);
	vsm__put_be64(h + 40, q->l1_offset);
	vsm__put_be64(h + 48, q->rt_offset);
	vsm__put_be32(h + 56, q->rt_clusters);
	if (q->version == 3) {
		vsm__put_be64(h + 72, q->incompat);
		vsm__put_be64(h + 88, q->autoclear);
	}
}

/* Without @full, only the fixed fields (the first 104 or 72 bytes): never
 * the bytes up to header_length, the extensions or the backing name. A
 * new header cluster is built by qc_header_compose, never here. */
int qc_write_header(struct qcow2 *q, bool full)
{
	int rc;

	sync_fixed(q);
	full = full || q->hdr_uncertain;
	rc = qc_bwrite(q, q->hdr, full ? q->cs : (q->version == 3 ? QCOW_V3_HEADER_LEN : 72), 0);
	if (rc == 0 && full)
		q->hdr_uncertain = false;
	return rc;
}

int qc_mark_dirty(struct qcow2 *q)
{
	int rc;

	if (q->readonly)
		return vsm_err((q->incompat & QC_INCOMPAT_CORRUPT) ? VSM_ESTATE : VSM_EPERM,
			       "%s: image is %s", q->label,
			       (q->incompat & QC_INCOMPAT_CORRUPT) ?
			       "marked corrupt and open read-only" : "open read-only");
	if (q->inconsistent)
		return qc_refuse_inconsistent(q);
	if (q->need_repair) {
		vsm_cow_check_result r;

		rc = qc_check(q, &r, true);
		if (rc < 0)
			return rc;
		if (q->need_repair)
			return vsm_err(VSM_ECORRUPT, "%s: repair left %llu errors; the image "
				       "cannot be written", q->label,
				       (unsigned long long)(r.corruptions - r.corruptions_fixed));
	}
	if (q->marked_dirty)
		return 0;
	/* Not while a repair rebuilds the refcounts (guard set): what it
	 * writes is derived from the metadata itself. */
	if (!q->guard && (rc = qc_meta_verify(q)) < 0)
		return rc;
	if (q->version == 3) {
		q->incompat |= QC_INCOMPAT_DIRTY;
		/* The bitmaps bit stays while we keep the extension consistent
		 * (we maintain it); unknown auto-clear bits vouch for what we do
		 * not maintain, and go, as the specification says. */
		q->autoclear &= q->nbm ? QC_AUTOCLEAR_BITMAPS : 0;
		rc = qc_write_header(q, false);
		if (rc == 0)
			rc = vsm_bdev_flush(q->bdev);
		if (rc < 0)
			return rc;
		q->unflushed = false;
	}
	q->marked_dirty = true;
	return 0;
}

int qc_close(struct qcow2 *q)
{
	int rc = 0;

	if (!q)
		return 0;
	if (!q->readonly) {
		/* Bits first, in_use cleared: a clean close leaves them valid. */
		if (q->bm_changed || q->bm_inuse_stored)
			rc = qc_bm_store(q, false);
		if (rc == 0)
			rc = qc_flush_all(q);
		if (rc == 0 && q->marked_dirty && q->version == 3) {
			q->incompat &= ~QC_INCOMPAT_DIRTY;
			rc = qc_write_header(q, false);
			if (rc == 0)
				rc = vsm_bdev_flush(q->bdev);
		}
	}
	qc_free(q);
	return rc;
}

/* Flatten's last step: the same header without the backing name and
 * format (qcow2_header.c keeps everything else). The data is flushed
 * first; the header in memory changes only once the new one is written. */
int qc_drop_backing(struct qcow2 *q)
{
	uint8_t *nh;
	int rc;

	rc = qc_flush_all(q);
	if (rc < 0)
		return rc;
	nh = malloc(q->cs);
	if (!nh)
		return vsm_err(VSM_ENOMEM, "out of memory");
	sync_fixed(q);
	rc = qc_header_compose(nh, q->hdr, q->cs, q->label, NULL, NULL, NULL);
	if (rc == 0) {
		rc = qc_bwrite(q, nh, q->cs, 0);
		if (rc == 0)
			rc = vsm_bdev_flush(q->bdev);
		/* Failed: the disk may hold either header; hdr (the old one)
		 * goes out whole next time. */
		q->hdr_uncertain = rc < 0;
	}
	if (rc == 0) {
		q->unflushed = false;
		memcpy(q->hdr, nh, q->cs);
		free(q->backing);
		free(q->backing_format);
		q->backing = q->backing_format = NULL;
	}
	free(nh);
	return rc;
}

int qc_write_header_ext(struct qcow2 *q, uint32_t type, const uint8_t *ext, uint32_t len,
			bool *issued)
{
	uint8_t *nh = malloc(q->cs);
	int rc;

	*issued = false;
	if (!nh)
		return vsm_err(VSM_ENOMEM, "out of memory");
	sync_fixed(q);
	rc = qc_header_compose_ext(nh, q->hdr, q->cs, q->label, q->backing, q->backing_format,
				   NULL, type, ext, len);
	if (rc < 0) {
		free(nh);
		return rc;
	}
	/* From here the disk may hold either header, even if this fails. */
	*issued = true;
	rc = qc_bwrite(q, nh, q->cs, 0);
	if (rc == 0)
		rc = vsm_bdev_flush(q->bdev);
	if (rc == 0)
		q->unflushed = false;
	/* Failed: the next header write is of the whole cluster (hdr), so
	 * that the fixed fields never land on the other header's
	 * extensions and backing name. */
	q->hdr_uncertain = rc < 0;
	memcpy(q->hdr, nh, q->cs);
	free(nh);
	return rc;
}

int qc_resize(struct qcow2 *q, uint64_t size)
{
	uint64_t l2_cover = q->cs * qc_l2_entries(q), need, noff, old_off, i;
	uint32_t old_size = q->l1_size;
	uint64_t *nl1;
	uint8_t *nd, *buf;
	int rc;

	if (size < q->size)
		return vsm_err(VSM_ENOTSUP, "%s: shrinking is not supported", q->label);
	need = size / l2_cover + (size % l2_cover != 0);
	if (need * 8 > QC_MAX_L1_BYTES)
		return vsm_err(VSM_EINVAL, "%s: %llu bytes need an L1 table larger than %u MiB",
			       q->label, (unsigned long long)size, QC_MAX_L1_BYTES >> 20);
	rc = qc_bm_resize_check(q, size);
	if (rc == 0)
		rc = qc_content_change(q);
	if (rc < 0)
		return rc;
	if (need > q->l1_size) {
		uint64_t bytes = round_up(need * 8, q->cs);

		need = bytes / 8 < QC_MAX_L1_BYTES / 8 ? bytes / 8 : need;
		rc = qc_flush_all(q);
		if (rc < 0)
			return rc;
		nl1 = realloc(q->l1, need * sizeof(*nl1));
		if (!nl1)
			return vsm_err(VSM_ENOMEM, "out of memory");
		memset(nl1 + q->l1_size, 0, (need - q->l1_size) * sizeof(*nl1));
		q->l1 = nl1;
		nd = realloc(q->l1_dirty, (need + 511) / 512 + 1);
		if (!nd)
			return vsm_err(VSM_ENOMEM, "out of memory");
		q->l1_dirty = nd;
		memset(q->l1_dirty, 0, (need + 511) / 512 + 1);
		rc = qc_grow_map(&q->l2c, need);
		if (rc < 0)
			return rc;
		rc = qc_alloc(q, bytes / q->cs, &noff, NULL);
		if (rc < 0)
			return rc;
		buf = calloc(1, bytes);
		if (!buf)
			return vsm_err(VSM_ENOMEM, "out of memory");
		for (i = 0; i < need; i++)
			vsm__put_be64(buf + 8 * i, q->l1[i]);
		/* New table, refcounts for it, then the header switch. */
		rc = qc_bwrite(q, buf, bytes, noff);
		free(buf);
		if (rc == 0)
			rc = qc_flush(q);
		if (rc < 0)
			return rc;
		old_off = q->l1_offset;
		q->l1_offset = noff;
		q->l1_size = (uint32_t)need;
		q->size = size;
		rc = qc_write_header(q, false);
		if (rc == 0)
			rc = vsm_bdev_flush(q->bdev);
		if (rc < 0)
			return rc;
		rc = qc_defer_free(q, old_off, round_up((uint64_t)old_size * 8, q->cs));
		if (rc == 0)
			rc = qc_flush_all(q);
		return rc == 0 ? qc_bm_resize(q, size) : rc;
	}
	q->size = size;
	rc = qc_write_header(q, false);
	if (rc == 0)
		rc = vsm_bdev_flush(q->bdev);
	return rc == 0 ? qc_bm_resize(q, size) : rc;
}

int qc_create(vsm_bdev *bdev, const char *label, const vsm_cow_create_opts *o)
{
	uint64_t cs = o->cluster_size ? o->cluster_size : 65536, size = o->size;
	unsigned int rbits = o->refcount_bits ? o->refcount_bits : 16, order = 0;
	uint64_t l1_size, l1c, rtc = 1, rbc = 1, meta, rb_entries, i, l2_cover;
	uint32_t cbits = 0;
	uint8_t *h = NULL, *nh = NULL, *buf = NULL;
	size_t bytes;
	int rc;

	while ((1ull << cbits) < cs)
		cbits++;
	if ((1ull << cbits) != cs || cbits < 9 || cbits > 21)
		return vsm_err(VSM_EINVAL, "%s: cluster size %llu is not a power of two "
			       "between 512 and 2097152", label, (unsigned long long)cs);
	while ((1u << order) < rbits)
		order++;
	if ((1u << order) != rbits || order > 6)
		return vsm_err(VSM_EINVAL, "%s: refcount width %u is not 1, 2, 4, ..., 64 bits",
			       label, rbits);
	if (o->backing && strlen(o->backing) > 1023)
		return vsm_err(VSM_EINVAL, "%s: backing name is longer than 1023 bytes", label);
	if (o->backing && !*o->backing)
		return vsm_err(VSM_EINVAL, "%s: backing name is empty", label);
	if (o->backing_format && strcmp(o->backing_format, "raw") &&
	    strcmp(o->backing_format, "qcow2"))
		return vsm_err(VSM_EINVAL, "%s: backing format '%s' is not raw or qcow2",
			       label, o->backing_format);
	if (size == 0 && !o->backing)
		return vsm_err(VSM_EINVAL, "%s: a size is required without a backing image",
			       label);
	l2_cover = cs * (cs / 8);
	l1_size = size / l2_cover + (size % l2_cover != 0);
	if (l1_size == 0)
		l1_size = 1;
	if (l1_size * 8 > QC_MAX_L1_BYTES)
		return vsm_err(VSM_EINVAL, "%s: %llu bytes need an L1 table larger than 32 MiB "
			       "with %llu-byte clusters", label, (unsigned long long)size,
			       (unsigned long long)cs);
	l1c = round_up(l1_size * 8, cs) / cs;
	rb_entries = cs * 8 / rbits;
	for (;;) {
		uint64_t nrbc, nrtc;

		meta = 1 + rtc + rbc + l1c;
		nrbc = (meta + rb_entries - 1) / rb_entries;
		nrtc = round_up(nrbc * 8, cs) / cs;
		if (nrbc == rbc && nrtc == rtc)
			break;
		rbc = nrbc;
		rtc = nrtc;
	}
	bytes = (size_t)((rtc + rbc + l1c) * cs);
	buf = calloc(1, bytes);
	h = calloc(1, cs);
	nh = malloc(cs);
	if (!buf || !h || !nh) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	/* Layout: header | refcount table | refcount blocks | L1 table. */
	for (i = 0; i < rbc; i++)
		vsm__put_be64(buf + 8 * i, (1 + rtc + i) * cs);
	{
		struct qcow2 tmp;

		memset(&tmp, 0, sizeof(tmp));
		tmp.refcount_order = order;
		tmp.rc_bits = rbits;
		for (i = 0; i < meta; i++)
			qc_rb_set_entry(&tmp, buf + rtc * cs + (i / rb_entries) * cs,
					i % rb_entries, 1);
	}
	vsm__put_be32(h, QCOW_MAGIC);
	vsm__put_be32(h + 4, 3);
	vsm__put_be32(h + 20, cbits);
	vsm__put_be64(h + 24, size);
	vsm__put_be32(h + 36, (uint32_t)l1_size);
	vsm__put_be64(h + 40, (1 + rtc + rbc) * cs);
	vsm__put_be64(h + 48, cs);
	vsm__put_be32(h + 56, (uint32_t)rtc);
	vsm__put_be32(h + 96, order);
	vsm__put_be32(h + 100, 112);
	/* The fixed fields with no extensions, serialised like every rewrite. */
	rc = qc_header_compose(nh, h, cs, label, o->backing,
			       o->backing ? o->backing_format : NULL, NULL);
	if (rc < 0)
		goto out;
	/* Tables first, the header (which makes it an image) last. */
	rc = vsm_bdev_write(bdev, buf, bytes, cs);
	if (rc == 0)
		rc = vsm_bdev_flush(bdev);
	if (rc == 0)
		rc = vsm_bdev_write(bdev, nh, cs, 0);
	if (rc == 0)
		rc = vsm_bdev_flush(bdev);
out:
	free(h);
	free(nh);
	free(buf);
	return rc;
}
