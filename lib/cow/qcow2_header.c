/*
 * The one serialiser of the qcow2 header cluster. Every path that
 * rewrites more than the fixed fields (create, flatten, rebase) builds
 * the new cluster here, from the image's own header: its header_length
 * and the bytes up to it (so unknown trailing header fields and the
 * compression type survive), its extensions verbatim and in order
 * except the backing format, which is rewritten or dropped, then the
 * backing name. A result that does not fit in the header cluster is
 * refused before anything is built or written.
 */
#include <string.h>

#include "cow_int.h"

static uint64_t up8(uint64_t v)
{
	return (v + 7) & ~(uint64_t)7;
}

int qc_header_compose(uint8_t *out, const uint8_t *old, uint64_t cs, const char *label,
		      const char *backing, const char *bfmt, uint64_t *end)
{
	return qc_header_compose_ext(out, old, cs, label, backing, bfmt, end, 0, NULL, 0);
}

/* The same, with the extension of type @ext_type (not 0) replaced by
 * @ext_len bytes of @ext, or dropped when @ext is NULL (the bitmaps
 * extension changes this way). */
int qc_header_compose_ext(uint8_t *out, const uint8_t *old, uint64_t cs, const char *label,
			  const char *backing, const char *bfmt, uint64_t *end,
			  uint32_t ext_type, const uint8_t *ext, uint32_t xlen)
{
	uint64_t hl, limit, p, boff, ext_len = 0, old_end, need, q;
	uint32_t version, blen;
	size_t nlen = backing ? strlen(backing) : 0, flen;

	if (!backing)
		bfmt = NULL;
	flen = bfmt ? strlen(bfmt) : 0;
	version = vsm__get_be32(old + 4);
	if (vsm__get_be32(old) != QCOW_MAGIC || (version != 2 && version != 3) ||
	    ((uint64_t)1 << vsm__get_be32(old + 20)) != cs)
		return vsm_err(VSM_ECORRUPT, "%s: not a qcow2 header we can rewrite", label);
	hl = version == 3 ? vsm__get_be32(old + 100) : 72;
	if (hl < (version == 3 ? QCOW_V3_HEADER_LEN : 72) || (hl & 7) || hl + 8 > cs)
		return vsm_err(VSM_ECORRUPT, "%s: header length %llu is invalid", label,
			       (unsigned long long)hl);
	boff = vsm__get_be64(old + 8);
	blen = vsm__get_be32(old + 16);
	if (boff && (boff < hl || boff >= cs || blen > cs - boff))
		return vsm_err(VSM_ECORRUPT, "%s: backing file name is out of the header cluster",
			       label);
	/* Extensions end at the backing name, if there is one (as in QEMU). */
	limit = boff ? boff : cs;
	old_end = boff ? boff + blen : 0;
	for (p = hl; p + 8 <= limit;) {
		uint32_t type = vsm__get_be32(old + p), len = vsm__get_be32(old + p + 4);

		if (type == QC_EXT_END) {
			p += 8;
			break;
		}
		if (len > limit - p - 8)
			return vsm_err(VSM_ECORRUPT, "%s: header extension 0x%08x runs past the "
				       "header", label, type);
		if (type != QC_EXT_BACKING_FMT && (!ext_type || type != ext_type))
			ext_len += 8 + up8(len);
		p += 8 + up8(len);
	}
	if (p > old_end)
		old_end = p < cs ? p : cs;

	if (nlen > 1023)
		return vsm_err(VSM_EINVAL, "%s: backing name is longer than 1023 bytes", label);
	if (backing && nlen == 0)
		return vsm_err(VSM_EINVAL, "%s: backing name is empty", label);
	if (ext_type && ext)
		ext_len += 8 + up8(xlen);
	need = hl + (bfmt ? 8 + up8(flen) : 0) + ext_len + 8 + nlen;
	if (need > cs)
		return vsm_err(VSM_ENOSPC, "%s: header (%llu bytes with its extensions%s%s%s) "
			       "does not fit in the %llu-byte header cluster", label,
			       (unsigned long long)need, backing ? " and backing name '" : "",
			       backing ? backing : "", backing ? "'" : "",
			       (unsigned long long)cs);

	memset(out, 0, cs);
	memcpy(out, old, hl);
	q = hl;
	if (bfmt) {
		vsm__put_be32(out + q, QC_EXT_BACKING_FMT);
		vsm__put_be32(out + q + 4, (uint32_t)flen);
		memcpy(out + q + 8, bfmt, flen);
		q += 8 + up8(flen);
	}
	if (ext_type && ext) {
		vsm__put_be32(out + q, ext_type);
		vsm__put_be32(out + q + 4, xlen);
		memcpy(out + q + 8, ext, xlen);
		q += 8 + up8(xlen);
	}
	for (p = hl; p + 8 <= limit;) {
		uint32_t type = vsm__get_be32(old + p), len = vsm__get_be32(old + p + 4);

		if (type == QC_EXT_END)
			break;
		if (type != QC_EXT_BACKING_FMT && (!ext_type || type != ext_type)) {
			/* Padding past the name's offset is not copied: it is zeros. */
			memcpy(out + q, old + p, 8 + (size_t)len);
			q += 8 + up8(len);
		}
		p += 8 + up8(len);
	}
	q += 8; /* end of extensions */
	if (backing) {
		memcpy(out + q, backing, nlen);
		vsm__put_be64(out + 8, q);
		vsm__put_be32(out + 16, (uint32_t)nlen);
		q += nlen;
	} else {
		vsm__put_be64(out + 8, 0);
		vsm__put_be32(out + 16, 0);
	}
	if (end)
		*end = q > old_end ? q : old_end;
	return 0;
}
