/*
 * Fault-injecting wrapper around the file backend (see fault_backend.h).
 * Only the calls the tests need to break are wrapped; the rest are the
 * file backend's own.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault_backend.h"
#include "backends/file/file.h"

fault_config fault;

static int fault_open(vsm_backend_ds **out, const char *uri, const vsm_backend_open_args *args)
{
	char *file_uri;
	int rc;

	if (strncmp(uri, "fault://", 8) != 0)
		return vsm_error_set(VSM_EINVAL, "not a fault URI: %s", uri);
	if (!(file_uri = malloc(strlen(uri) + 1)))
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	strcpy(file_uri, "file://");
	strcat(file_uri, uri + 8);
	rc = vsm__file_backend_ops.open(out, file_uri, args);
	free(file_uri);
	return rc;
}

static int fault_device_create(vsm_backend_ds *ds, const vsm_backend_device_spec *spec,
			       char *key, size_t key_size, unsigned int *out_flags)
{
	int rc;

	fault.creates++;
	if (fault.create_fail_at == fault.creates)
		return vsm_error_set(fault.create_fail_code, "injected failure creating '%s'",
				     spec->name);
	rc = vsm__file_backend_ops.device_create(ds, spec, key, key_size, out_flags);
	if (fault.create_crash_at == fault.creates)
		_exit(77);
	return rc;
}

/* A fault device wraps a file device and counts (and fails) its writes. */
typedef struct {
	vsm_bdev_io io;
	vsm_bdev_io *inner;
} fault_dev;

static vsm_bdev_io *inner(vsm_bdev_io *io)
{
	return ((fault_dev *)io)->inner;
}

static void fault_close(vsm_bdev_io *io)
{
	vsm_bdev_io *in = inner(io);

	in->ops->close(in);
	free(io);
}

static int fault_read(vsm_bdev_io *io, void *buf, size_t len, uint64_t off)
{
	return inner(io)->ops->read(inner(io), buf, len, off);
}

static int fault_bdev_write(vsm_bdev_io *io, const void *buf, size_t len, uint64_t off,
			    unsigned int flags)
{
	fault.writes++;
	if (fault.write_fail_at == fault.writes)
		return vsm_error_set(VSM_EIO, "injected write error at offset %llu",
				     (unsigned long long)off);
	return inner(io)->ops->write(inner(io), buf, len, off, flags);
}

static int fault_flush(vsm_bdev_io *io)
{
	return inner(io)->ops->flush(inner(io));
}

static int fault_size(vsm_bdev_io *io, uint64_t *out)
{
	return inner(io)->ops->get_size(inner(io), out);
}

static int fault_discard(vsm_bdev_io *io, uint64_t off, uint64_t len)
{
	return inner(io)->ops->discard(inner(io), off, len);
}

static int fault_query(vsm_bdev_io *io, vsm_bdev_caps *out)
{
	out->flags = VSM_BDEV_CAP_DISCARD;
	out->logical_block_size = 512;
	return 0;
}

/* Without compare-and-write the generation bump takes the plain write
 * path, which goes through fault_bdev_write. */
static const struct vsm_bdev_io_ops fault_io_ops = VSM_BDEV_IO_OPS_INIT(
	.close = fault_close,
	.read = fault_read,
	.write = fault_bdev_write,
	.flush = fault_flush,
	.get_size = fault_size,
	.query = fault_query,
	.discard = fault_discard,
);

static int wrap(vsm_bdev_io **out, int rc, vsm_bdev_io *in)
{
	fault_dev *d;

	if (rc < 0)
		return rc;
	if (!(d = calloc(1, sizeof(*d)))) {
		in->ops->close(in);
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	}
	d->io.ops = &fault_io_ops;
	d->inner = in;
	*out = &d->io;
	return 0;
}

static int fault_device_open(vsm_bdev_io **out, vsm_backend_ds *ds, const char *key,
			     unsigned int flags)
{
	vsm_bdev_io *in = NULL;

	int rc = vsm__file_backend_ops.device_open(&in, ds, key, flags);

	return wrap(out, rc, in);
}

static int fault_meta_open(vsm_bdev_io **out, vsm_backend_ds *ds, uint64_t min_size,
			   unsigned int flags)
{
	vsm_bdev_io *in = NULL;

	int rc = vsm__file_backend_ops.meta_open(&in, ds, min_size, flags);

	return wrap(out, rc, in);
}

static int fault_device_deploy(vsm_backend_ds *ds, const char *key,
			       const vsm_backend_deploy_req *req, struct vsm_locator *out)
{
	fault.deploys++;
	return vsm__file_backend_ops.device_deploy(ds, key, req, out);
}

static int fault_device_delete(vsm_backend_ds *ds, const char *key, unsigned int flags)
{
	fault.deletes++;
	if (fault.delete_hook)
		fault.delete_hook(key);
	if (fault.delete_fail_at == fault.deletes)
		return vsm_error_set(fault.delete_fail_code, "injected failure deleting '%s'", key);
	return vsm__file_backend_ops.device_delete(ds, key, flags);
}

int fault_register(vsm_ctx *ctx)
{
	struct vsm_datastore_ops ops = vsm__file_backend_ops;

	ops.scheme = "fault";
	ops.description = "file backend with injected faults";
	ops.open = fault_open;
	ops.device_create = fault_device_create;
	ops.device_delete = fault_device_delete;
	ops.device_deploy = fault_device_deploy;
	ops.device_open = fault_device_open;
	ops.meta_open = fault_meta_open;
	return vsm_datastore_ops_register(ctx, &ops, NULL);
}
