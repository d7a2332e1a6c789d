/*
 * Point a qcow2 layer at another backing image without touching its data
 * (what `qemu-img rebase -u` does). Merges need it: when a layer leaves
 * the middle of a chain, the layers standing on it must name the one
 * below instead. Only the header cluster changes; the caller guarantees
 * the new backing reads the same as the old one.
 */
#include <stdlib.h>
#include <string.h>

#include "cow_int.h"

static uint64_t up8(uint64_t v)
{
	return (v + 7) & ~(uint64_t)7;
}

int vsm_cow_rebase_header(vsm_bdev *b, const char *label, const char *backing,
			  const char *fmt)
{
	uint8_t *old = NULL, *nh = NULL;
	uint64_t cs, hl, p, q, used, boff;
	uint32_t bits, version, blen;
	size_t nlen = backing ? strlen(backing) : 0;
	uint8_t first[512];
	int rc;

	if (!backing)
		fmt = NULL;
	if ((rc = vsm_bdev_read(b, first, sizeof(first), 0)) < 0)
		goto out;
	version = vsm__get_be32(first + 4);
	bits = vsm__get_be32(first + 20);
	if (vsm__get_be32(first) != QCOW_MAGIC || (version != 2 && version != 3) || bits < 9 ||
	    bits > 21) {
		rc = vsm_err(VSM_ECORRUPT, "%s is not a qcow2 image we can rebase", label);
		goto out;
	}
	cs = (uint64_t)1 << bits;
	hl = version == 3 ? vsm__get_be32(first + 100) : 72;
	if (!(old = calloc(1, cs)) || !(nh = calloc(1, cs))) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = vsm_bdev_read(b, old, cs, 0)) < 0)
		goto out;
	boff = vsm__get_be64(old + 8);
	blen = vsm__get_be32(old + 16);
	if (hl < 72 || hl > cs - 8 || (boff && (boff >= cs || boff + blen > cs))) {
		rc = vsm_err(VSM_ECORRUPT, "%s has a bad header", label);
		goto out;
	}
	used = boff ? boff + blen : 0;
	memcpy(nh, old, hl);
	q = hl;
	/* Keep every extension but the backing format, which is rewritten. */
	for (p = hl; p + 8 <= cs;) {
		uint32_t type = vsm__get_be32(old + p), len = vsm__get_be32(old + p + 4);
		uint64_t total = 8 + up8(len);

		if (type == 0) {
			if (p + 8 > used)
				used = p + 8;
			break;
		}
		if (p + total > cs) {
			rc = vsm_err(VSM_ECORRUPT, "%s has a bad header extension", label);
			goto out;
		}
		if (type != QC_EXT_BACKING_FMT) {
			memcpy(nh + q, old + p, total);
			q += total;
		}
		p += total;
	}
	if (fmt) {
		size_t flen = strlen(fmt);

		vsm__put_be32(nh + q, QC_EXT_BACKING_FMT);
		vsm__put_be32(nh + q + 4, (uint32_t)flen);
		memcpy(nh + q + 8, fmt, flen);
		q += 8 + up8(flen);
	}
	q += 8; /* end of extensions (zeros) */
	if (q + nlen > cs || nlen > 1023) {
		rc = vsm_err(VSM_EINVAL, "backing name '%s' does not fit in the header of %s", backing,
			     label);
		goto out;
	}
	if (backing) {
		memcpy(nh + q, backing, nlen);
		vsm__put_be64(nh + 8, q);
		vsm__put_be32(nh + 16, (uint32_t)nlen);
		q += nlen;
	} else {
		vsm__put_be64(nh + 8, 0);
		vsm__put_be32(nh + 16, 0);
	}
	if (q > used)
		used = q;
	used = (used + 511) & ~(uint64_t)511;
	if ((rc = vsm_bdev_write(b, nh, (size_t)used, 0)) == 0)
		rc = vsm_bdev_flush(b);
out:
	free(old);
	free(nh);
	return rc;
}
