/*
 * Point a qcow2 layer at another backing image without touching its data
 * (what `qemu-img rebase -u` does). Merges need it: when a layer leaves
 * the middle of a chain, the layers standing on it must name the one
 * below instead. Only the header cluster changes; the caller guarantees
 * the new backing reads the same as the old one.
 */
#include <stdlib.h>
#include <string.h>

#include "checkpoint/ckpt.h"

#define QC_MAGIC 0x514649fbu
#define EXT_BACKING_FMT 0xe2792acau

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint64_t up8(uint64_t v)
{
	return (v + 7) & ~(uint64_t)7;
}

int ck_rebase(vsm_dstore *ds, const char *key, const char *backing, int backing_format)
{
	uint8_t *old = NULL, *nh = NULL;
	uint64_t cs, hl, p, q, used, boff;
	uint32_t bits, version, blen;
	const char *fmt = backing ? vsm_format_name(backing_format) : NULL;
	vsm_bdev *b = NULL;
	size_t nlen = backing ? strlen(backing) : 0;
	uint8_t first[512];
	int rc;

	if ((rc = vsm__ds_open_device(ds, key, 0, &b)) < 0)
		return rc;
	if ((rc = vsm_bdev_read(b, first, sizeof(first), 0)) < 0)
		goto out;
	version = be32(first + 4);
	bits = be32(first + 20);
	if (be32(first) != QC_MAGIC || (version != 2 && version != 3) || bits < 9 || bits > 21) {
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': layer '%s' is not a qcow2 image we "
			     "can rebase", ds->name, key);
		goto out;
	}
	cs = (uint64_t)1 << bits;
	hl = version == 3 ? be32(first + 100) : 72;
	if (!(old = calloc(1, cs)) || !(nh = calloc(1, cs))) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = vsm_bdev_read(b, old, cs, 0)) < 0)
		goto out;
	boff = be64(old + 8);
	blen = be32(old + 16);
	if (hl < 72 || hl > cs - 8 || (boff && (boff >= cs || boff + blen > cs))) {
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': layer '%s' has a bad header", ds->name,
			     key);
		goto out;
	}
	used = boff ? boff + blen : 0;
	memcpy(nh, old, hl);
	q = hl;
	/* Keep every extension but the backing format, which is rewritten. */
	for (p = hl; p + 8 <= cs;) {
		uint32_t type = be32(old + p), len = be32(old + p + 4);
		uint64_t total = 8 + up8(len);

		if (type == 0) {
			if (p + 8 > used)
				used = p + 8;
			break;
		}
		if (p + total > cs) {
			rc = vsm_err(VSM_ECORRUPT, "datastore '%s': layer '%s' has a bad header "
				     "extension", ds->name, key);
			goto out;
		}
		if (type != EXT_BACKING_FMT) {
			memcpy(nh + q, old + p, total);
			q += total;
		}
		p += total;
	}
	if (fmt) {
		size_t flen = strlen(fmt);

		put_be32(nh + q, EXT_BACKING_FMT);
		put_be32(nh + q + 4, (uint32_t)flen);
		memcpy(nh + q + 8, fmt, flen);
		q += 8 + up8(flen);
	}
	q += 8; /* end of extensions (zeros) */
	if (q + nlen > cs || nlen > 1023) {
		rc = vsm_err(VSM_EINVAL, "datastore '%s': backing name '%s' does not fit in the "
			     "header of '%s'", ds->name, backing, key);
		goto out;
	}
	if (backing) {
		memcpy(nh + q, backing, nlen);
		put_be64(nh + 8, q);
		put_be32(nh + 16, (uint32_t)nlen);
		q += nlen;
	} else {
		put_be64(nh + 8, 0);
		put_be32(nh + 16, 0);
	}
	if (q > used)
		used = q;
	used = (used + 511) & ~(uint64_t)511;
	if ((rc = vsm_bdev_write(b, nh, (size_t)used, 0)) == 0)
		rc = vsm_bdev_flush(b);
out:
	free(old);
	free(nh);
	vsm_bdev_close(b);
	return rc;
}
