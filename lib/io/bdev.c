/*
 * Core block-device handle: forwards to the backend's bdev callbacks and
 * adds the device's label to every error so a message says which device.
 */
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "internal.h"
#include "../backends/file/file.h"

int vsm_bdev_wrap(vsm_bdev **out, const struct vsm_backend_ops *ops,
		  vsm_backend_bdev *h, const char *label, bool readonly)
{
	vsm_bdev *b = vsm__calloc(1, sizeof(*b));

	if (!b || !(b->label = vsm__strdup(label ? label : "device"))) {
		free(b);
		ops->bdev_close(h);
		return -VSM_ENOMEM;
	}
	b->ops = ops;
	b->h = h;
	b->readonly = readonly;
	*out = b;
	return 0;
}

void vsm_bdev_close(vsm_bdev *b)
{
	if (!b)
		return;
	b->ops->bdev_close(b->h);
	free(b->label);
	free(b);
}

static int labelled(vsm_bdev *b, int rc)
{
	if (rc < 0)
		vsm__error_prefix("%s", b->label);
	return rc;
}

int vsm_bdev_read(vsm_bdev *b, void *buf, size_t len, uint64_t off)
{
	if (len == 0)
		return 0;
	return labelled(b, b->ops->bdev_read(b->h, buf, len, off));
}

int vsm_bdev_write(vsm_bdev *b, const void *buf, size_t len, uint64_t off)
{
	if (b->readonly)
		return vsm_err(VSM_EPERM, "%s: opened read-only", b->label);
	if (len == 0)
		return 0;
	return labelled(b, b->ops->bdev_write(b->h, buf, len, off));
}

int vsm_bdev_flush(vsm_bdev *b)
{
	if (b->readonly)
		return 0;
	return labelled(b, b->ops->bdev_flush(b->h));
}

int vsm_bdev_size(vsm_bdev *b, uint64_t *out)
{
	return labelled(b, b->ops->bdev_size(b->h, out));
}

bool vsm_bdev_has_compare_and_write(const vsm_bdev *b)
{
	return b->ops->bdev_compare_and_write != NULL;
}

int vsm_bdev_compare_and_write(vsm_bdev *b, const void *expected,
			       const void *buf, size_t len, uint64_t off)
{
	int rc;

	if (b->readonly)
		return vsm_err(VSM_EPERM, "%s: opened read-only", b->label);
	if (!b->ops->bdev_compare_and_write)
		return vsm_err(VSM_ENOTSUP, "%s: backend '%s' has no compare-and-write",
			       b->label, b->ops->scheme);
	rc = b->ops->bdev_compare_and_write(b->h, expected, buf, len, off);
	/* A mismatch is an answer, not a failure worth a label. */
	return rc == -VSM_EMISMATCH ? rc : labelled(b, rc);
}

int vsm_bdev_discard(vsm_bdev *b, uint64_t off, uint64_t len)
{
	if (b->readonly)
		return vsm_err(VSM_EPERM, "%s: opened read-only", b->label);
	if (!b->ops->bdev_discard)
		return vsm_err(VSM_ENOTSUP, "%s: backend '%s' cannot discard",
			       b->label, b->ops->scheme);
	if (len == 0)
		return 0;
	return labelled(b, b->ops->bdev_discard(b->h, off, len));
}

uint32_t vsm_bdev_block_size(vsm_bdev *b)
{
	uint32_t bs = 512;

	if (b->ops->bdev_block_size && b->ops->bdev_block_size(b->h, &bs) < 0)
		bs = 512;
	return bs;
}

int vsm_bdev_open_path(vsm_bdev **out, const char *path, unsigned int flags)
{
	vsm_backend_bdev *h = NULL;
	int rc = vsm__file_bdev_open_path(&h, path, flags);

	if (rc < 0)
		return rc;
	return vsm_bdev_wrap(out, &vsm__file_backend_ops, h, path,
			     (flags & VSM_BDEV_RDONLY) != 0);
}
