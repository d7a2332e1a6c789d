/*
 * Point a qcow2 layer at another backing image without touching its data
 * (what `qemu-img rebase -u` does). Merges need it: when a layer leaves
 * the middle of a chain, the layers standing on it must name the one
 * below instead. Only the header cluster changes; the caller guarantees
 * the new backing reads the same as the old one. The header itself is
 * built by qc_header_compose, like every header rewrite.
 */
#include <stdlib.h>

#include "cow_int.h"

int vsm_cow_rebase_header(vsm_bdev *b, const char *label, const char *backing,
			  const char *fmt)
{
	uint8_t *old = NULL, *nh = NULL;
	uint64_t cs, end;
	uint32_t bits;
	uint8_t first[512];
	int rc;

	if ((rc = vsm_bdev_read(b, first, sizeof(first), 0)) < 0)
		return rc;
	bits = vsm__get_be32(first + 20);
	if (vsm__get_be32(first) != QCOW_MAGIC || bits < 9 || bits > 21)
		return vsm_err(VSM_ECORRUPT, "%s is not a qcow2 image we can rebase", label);
	cs = (uint64_t)1 << bits;
	if (!(old = malloc(cs)) || !(nh = malloc(cs))) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = vsm_bdev_read(b, old, cs, 0)) < 0)
		goto out;
	/* Built in full before anything is written: a header that does not
	 * fit is refused with the image untouched. */
	if ((rc = qc_header_compose(nh, old, cs, label, backing, fmt, &end)) < 0)
		goto out;
	end = (end + 511) & ~(uint64_t)511;
	if ((rc = vsm_bdev_write(b, nh, (size_t)end, 0)) == 0)
		rc = vsm_bdev_flush(b);
out:
	free(old);
	free(nh);
	return rc;
}
