/*
 * Core block-device handle: checks a device's v2 block I/O table once,
 * keeps its capabilities, forwards to it, and adds the device's label to
 * every error so a message says which device. Batches: lib/bdev_async.c.
 */
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "fault.h"
#include "internal.h"

/* What version 1 of struct vsm_bdev_io_ops needs to hold. */
#define IO_OPS_V1_SIZE (offsetof(struct vsm_bdev_io_ops, submit) + \
			sizeof(((struct vsm_bdev_io_ops *)0)->submit))

static int io_ops_check(struct vsm_bdev_io_ops *copy, const struct vsm_bdev_io_ops *ops,
			const char *label)
{
	const char *missing = NULL;

	if (ops->version == 0 || ops->version > VSM_BDEV_IO_OPS_VERSION)
		return vsm_err(VSM_EVERSION, "%s: block I/O ops version %u is not supported "
			       "(this library knows 1..%d)", label, ops->version,
			       VSM_BDEV_IO_OPS_VERSION);
	if (ops->size < IO_OPS_V1_SIZE)
		return vsm_err(VSM_EINVAL, "%s: block I/O ops size %u is smaller than version "
			       "1 needs (%zu)", label, ops->size, (size_t)IO_OPS_V1_SIZE);
	memset(copy, 0, sizeof(*copy));
	memcpy(copy, ops, ops->size < sizeof(*copy) ? ops->size : sizeof(*copy));
	if (!copy->close)
		missing = "close";
	else if (!copy->read)
		missing = "read";
	else if (!copy->write)
		missing = "write";
	else if (!copy->flush)
		missing = "flush";
	else if (!copy->get_size)
		missing = "get_size";
	if (missing)
		return vsm_err(VSM_EINVAL, "%s: required block I/O callback '%s' is missing",
			       label, missing);
	return 0;
}

static int caps_ask(vsm_bdev *b)
{
	vsm_bdev_caps c;
	int rc;

	memset(&b->caps, 0, sizeof(b->caps));
	if (b->ops.query) {
		memset(&c, 0, sizeof(c));
		c.version = VSM_BDEV_CAPS_VERSION;
		c.size = sizeof(c);
		if ((rc = b->ops.query(b->io, &c)) < 0)
			return rc;
		b->caps = c;
	}
	b->caps.version = VSM_BDEV_CAPS_VERSION;
	b->caps.size = sizeof(b->caps);
	if (b->caps.logical_block_size != 4096)
		b->caps.logical_block_size = 512;
	/* A flag without its callback is not a capability. */
	if (!b->ops.compare_and_write)
		b->caps.flags &= ~VSM_BDEV_CAP_COMPARE_AND_WRITE;
	if (!b->ops.discard)
		b->caps.flags &= ~VSM_BDEV_CAP_DISCARD;
	if (!b->ops.write_zeroes)
		b->caps.flags &= ~VSM_BDEV_CAP_WRITE_ZEROES;
	if (!b->ops.submit)
		b->caps.flags &= ~VSM_BDEV_CAP_NATIVE_ASYNC;
	return 0;
}

int vsm_bdev_wrap(vsm_bdev **out, vsm_bdev_io *io, const char *label, bool readonly)
{
	vsm_bdev *b = vsm__calloc(1, sizeof(*b));
	const char *l = label ? label : "device";
	int rc;

	if (!b || !(b->label = vsm__strdup(l))) {
		rc = -VSM_ENOMEM;
		goto fail;
	}
	if (!io || !io->ops) {
		rc = vsm_err(VSM_EINVAL, "%s: backend returned a device without block I/O ops", l);
		goto fail;
	}
	if ((rc = io_ops_check(&b->ops, io->ops, l)) < 0)
		goto fail;
	b->io = io;
	b->readonly = readonly;
	if ((rc = caps_ask(b)) < 0) {
		vsm__error_prefix("%s: capability query", l);
		goto fail;
	}
	*out = b;
	return 0;
fail:
	/* Close through the backend's own table if it has a close at all:
	 * fields are only ever appended, so close sits where it does in
	 * every version of the table. */
	if (io && io->ops &&
	    io->ops->size >= offsetof(struct vsm_bdev_io_ops, close) + sizeof(void *) &&
	    io->ops->close)
		io->ops->close(io);
	if (b)
		free(b->label);
	free(b);
	return rc;
}

void vsm_bdev_close(vsm_bdev *b)
{
	if (!b)
		return;
	b->ops.close(b->io);
	free(b->label);
	free(b);
}

static int labelled(vsm_bdev *b, int rc)
{
	if (rc < 0)
		vsm__error_prefix("%s", b->label);
	return rc;
}

static int refuse_ro(vsm_bdev *b)
{
	return vsm_err(VSM_EPERM, "%s: opened read-only", b->label);
}

int vsm_bdev_read(vsm_bdev *b, void *buf, size_t len, uint64_t off)
{
	int rc;

	if (len == 0)
		return 0;
	if ((rc = vsm__fault_check(b->label, VSM_FAULT_READ)) < 0)
		return rc;
	return labelled(b, b->ops.read(b->io, buf, len, off));
}

int vsm_bdev_write_flags(vsm_bdev *b, const void *buf, size_t len, uint64_t off,
			 unsigned int flags)
{
	bool fua = (flags & VSM_BDEV_WRITE_FUA) != 0;
	bool native = fua && (b->caps.flags & VSM_BDEV_CAP_FUA);
	int rc;

	if (b->readonly)
		return refuse_ro(b);
	if (len == 0)
		return 0;
	if ((rc = vsm__fault_check(b->label, VSM_FAULT_WRITE)) < 0)
		return rc;
	rc = b->ops.write(b->io, buf, len, off, native ? VSM_BDEV_WRITE_FUA : 0);
	if (rc == 0 && fua && !native)
		rc = b->ops.flush(b->io);
	return labelled(b, rc);
}

int vsm_bdev_write(vsm_bdev *b, const void *buf, size_t len, uint64_t off)
{
	return vsm_bdev_write_flags(b, buf, len, off, 0);
}

int vsm_bdev_flush(vsm_bdev *b)
{
	int rc;

	if (b->readonly)
		return 0;
	if ((rc = vsm__fault_check(b->label, VSM_FAULT_FLUSH)) < 0)
		return rc;
	return labelled(b, b->ops.flush(b->io));
}

int vsm_bdev_size(vsm_bdev *b, uint64_t *out)
{
	return labelled(b, b->ops.get_size(b->io, out));
}

const vsm_bdev_caps *vsm_bdev_caps_get(const vsm_bdev *b)
{
	return &b->caps;
}

bool vsm_bdev_has_compare_and_write(const vsm_bdev *b)
{
	return (b->caps.flags & VSM_BDEV_CAP_COMPARE_AND_WRITE) != 0;
}

bool vsm_bdev_can_discard(const vsm_bdev *b)
{
	return (b->caps.flags & VSM_BDEV_CAP_DISCARD) != 0;
}

bool vsm_bdev_has_native_async(const vsm_bdev *b)
{
	return (b->caps.flags & VSM_BDEV_CAP_NATIVE_ASYNC) != 0;
}

int vsm_bdev_compare_and_write(vsm_bdev *b, const void *expected,
			       const void *buf, size_t len, uint64_t off)
{
	int rc;

	if (b->readonly)
		return refuse_ro(b);
	if (!vsm_bdev_has_compare_and_write(b))
		return vsm_err(VSM_ENOTSUP, "%s: device has no compare-and-write", b->label);
	rc = b->ops.compare_and_write(b->io, expected, buf, len, off);
	/* A mismatch is an answer, not a failure worth a label. */
	return rc == -VSM_EMISMATCH ? rc : labelled(b, rc);
}

int vsm_bdev_discard(vsm_bdev *b, uint64_t off, uint64_t len)
{
	if (b->readonly)
		return refuse_ro(b);
	if (!vsm_bdev_can_discard(b))
		return vsm_err(VSM_ENOTSUP, "%s: device cannot discard", b->label);
	if (len == 0)
		return 0;
	return labelled(b, b->ops.discard(b->io, off, len));
}

int vsm_bdev_write_zeroes(vsm_bdev *b, uint64_t off, uint64_t len)
{
	size_t chunk = 1024 * 1024;
	uint8_t *z;
	int rc = 0;

	if (b->readonly)
		return refuse_ro(b);
	if (len == 0)
		return 0;
	if (b->caps.flags & VSM_BDEV_CAP_WRITE_ZEROES)
		return labelled(b, b->ops.write_zeroes(b->io, off, len, 0));
	if (len < chunk)
		chunk = (size_t)len;
	if (!(z = vsm__calloc(1, chunk)))
		return -VSM_ENOMEM;
	while (len > 0 && rc == 0) {
		size_t l = len < chunk ? (size_t)len : chunk;

		rc = b->ops.write(b->io, z, l, off, 0);
		off += l;
		len -= l;
	}
	free(z);
	return labelled(b, rc);
}

uint32_t vsm_bdev_block_size(vsm_bdev *b)
{
	return b->caps.logical_block_size;
}

int vsm_bdev_open_path(vsm_bdev **out, const char *path, unsigned int flags)
{
	vsm_bdev_io *io = NULL;
	int rc = vsm_file_bdev_open(&io, path, flags);

	if (rc < 0)
		return rc;
	return vsm_bdev_wrap(out, io, path, (flags & VSM_BDEV_RDONLY) != 0);
}
