/*
 * Vtable v1 compatibility: a struct vsm_backend_ops built against the 0.1
 * header registers through vsm_backend_register() (same symbol, same ABI)
 * and its bdev_* callbacks are wrapped into a v2 device handle here, so
 * the rest of the core knows only struct vsm_datastore_ops and
 * struct vsm_bdev_io_ops. Capabilities of such a device are those of its
 * table: compare-and-write and discard when their callbacks are set.
 */
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "internal.h"

/* The part of version 1 every 0.1 backend provides. */
#define OPS_V1_SIZE (offsetof(struct vsm_backend_ops, bdev_block_size) + \
		     sizeof(((struct vsm_backend_ops *)0)->bdev_block_size))

typedef struct {
	vsm_bdev_io io;                 /* first: the core sees only this */
	const struct vsm_backend_ops *v1;
	vsm_backend_bdev *h;
} v1_dev;

static v1_dev *dev_of(vsm_bdev_io *io)
{
	return (v1_dev *)io;
}

static void v1_close(vsm_bdev_io *io)
{
	v1_dev *d = dev_of(io);

	d->v1->bdev_close(d->h);
	free(d);
}

static int v1_read(vsm_bdev_io *io, void *buf, size_t len, uint64_t off)
{
	return dev_of(io)->v1->bdev_read(dev_of(io)->h, buf, len, off);
}

static int v1_write(vsm_bdev_io *io, const void *buf, size_t len, uint64_t off,
		    unsigned int flags)
{
	(void)flags; /* no FUA capability: the core never asks */
	return dev_of(io)->v1->bdev_write(dev_of(io)->h, buf, len, off);
}

static int v1_flush(vsm_bdev_io *io)
{
	return dev_of(io)->v1->bdev_flush(dev_of(io)->h);
}

static int v1_size(vsm_bdev_io *io, uint64_t *out)
{
	return dev_of(io)->v1->bdev_size(dev_of(io)->h, out);
}

static int v1_query(vsm_bdev_io *io, vsm_bdev_caps *out)
{
	const struct vsm_backend_ops *v1 = dev_of(io)->v1;
	uint32_t bs = 512;

	if (v1->bdev_compare_and_write)
		out->flags |= VSM_BDEV_CAP_COMPARE_AND_WRITE;
	if (v1->bdev_discard)
		out->flags |= VSM_BDEV_CAP_DISCARD;
	if (v1->bdev_block_size && v1->bdev_block_size(dev_of(io)->h, &bs) == 0)
		out->logical_block_size = bs;
	return 0;
}

static int v1_caw(vsm_bdev_io *io, const void *expected, const void *buf, size_t len,
		  uint64_t off)
{
	return dev_of(io)->v1->bdev_compare_and_write(dev_of(io)->h, expected, buf, len, off);
}

static int v1_discard(vsm_bdev_io *io, uint64_t off, uint64_t len)
{
	return dev_of(io)->v1->bdev_discard(dev_of(io)->h, off, len);
}

static const struct vsm_bdev_io_ops v1_io_ops = VSM_BDEV_IO_OPS_INIT(
	.close = v1_close,
	.read = v1_read,
	.write = v1_write,
	.flush = v1_flush,
	.get_size = v1_size,
	.query = v1_query,
	.compare_and_write = v1_caw,
	.discard = v1_discard,
);

static int wrap(vsm_bdev_io **out, const struct vsm_backend_ops *v1, vsm_backend_bdev *h)
{
	v1_dev *d = vsm__calloc(1, sizeof(*d));

	if (!d) {
		v1->bdev_close(h);
		return -VSM_ENOMEM;
	}
	d->io.ops = &v1_io_ops;
	d->v1 = v1;
	d->h = h;
	*out = &d->io;
	return 0;
}

int vsm__backend_device_open(const vsm_backend_reg *be, vsm_bdev_io **out, vsm_backend_ds *h,
			     const char *key, unsigned int flags)
{
	vsm_backend_bdev *bh = NULL;
	int rc;

	if (!be->v1.version)
		return be->ops.device_open(out, h, key, flags);
	if ((rc = be->v1.device_open(&bh, h, key, flags)) < 0)
		return rc;
	return wrap(out, &be->v1, bh);
}

int vsm__backend_meta_open(const vsm_backend_reg *be, vsm_bdev_io **out, vsm_backend_ds *h,
			   uint64_t min_size, unsigned int flags)
{
	vsm_backend_bdev *bh = NULL;
	int rc;

	if (!be->v1.version)
		return be->ops.meta_open(out, h, min_size, flags);
	if ((rc = be->v1.meta_open(&bh, h, min_size, flags)) < 0)
		return rc;
	return wrap(out, &be->v1, bh);
}

VSM_API int vsm_backend_register(vsm_ctx *ctx, const struct vsm_backend_ops *ops,
				 void *payload)
{
	struct vsm_backend_ops copy;
	struct vsm_datastore_ops v2;
	const char *missing = NULL;

	vsm__error_reset();
	if (!ctx || !ops)
		return vsm_err(VSM_EINVAL, "vsm_backend_register: ctx or ops is NULL");
	if (ops->version == 0 || ops->version > VSM_BACKEND_OPS_VERSION)
		return vsm_err(VSM_EVERSION, "backend '%s': ops version %u is not supported "
			       "(this library knows 1..%d)", ops->scheme ? ops->scheme : "?",
			       ops->version, VSM_BACKEND_OPS_VERSION);
	if (ops->size < OPS_V1_SIZE)
		return vsm_err(VSM_EINVAL, "backend '%s': ops size %u is smaller than version "
			       "1 needs (%zu)", ops->scheme ? ops->scheme : "?", ops->size,
			       (size_t)OPS_V1_SIZE);
	/* Never read past what the backend says it has. */
	memset(&copy, 0, sizeof(copy));
	memcpy(&copy, ops, ops->size < sizeof(copy) ? ops->size : sizeof(copy));
#define REQUIRE(f) if (!missing && !copy.f) missing = #f
	REQUIRE(scheme);
	REQUIRE(device_open);
	REQUIRE(meta_open);
	REQUIRE(bdev_close);
	REQUIRE(bdev_read);
	REQUIRE(bdev_write);
	REQUIRE(bdev_flush);
	REQUIRE(bdev_size);
#undef REQUIRE
	if (missing)
		return vsm_err(VSM_EINVAL, "backend '%s': required callback '%s' is missing",
			       copy.scheme ? copy.scheme : "?", missing);
	/* The datastore callbacks have the same signatures in both tables. */
	memset(&v2, 0, sizeof(v2));
	v2.version = VSM_DATASTORE_OPS_VERSION;
	v2.size = sizeof(v2);
	v2.scheme = copy.scheme;
	v2.description = copy.description;
	v2.open = copy.open;
	v2.close = copy.close;
	v2.capacity = copy.capacity;
	v2.device_create = copy.device_create;
	v2.device_delete = copy.device_delete;
	v2.device_resize = copy.device_resize;
	v2.host_attach = copy.host_attach;
	v2.host_detach = copy.host_detach;
	v2.device_deploy = copy.device_deploy;
	v2.device_undeploy = copy.device_undeploy;
	v2.device_list = copy.device_list;
	/* device_open and meta_open stay NULL: vsm__backend_device_open()
	 * and vsm__backend_meta_open() reach them through the shim. */
	return vsm__backend_add(ctx, &v2, &copy, payload);
}
