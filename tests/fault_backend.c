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

static int fault_bdev_write(vsm_backend_bdev *b, const void *buf, size_t len, uint64_t off)
{
	fault.writes++;
	if (fault.write_fail_at == fault.writes)
		return vsm_error_set(VSM_EIO, "injected write error at offset %llu",
				     (unsigned long long)off);
	return vsm__file_backend_ops.bdev_write(b, buf, len, off);
}

static int fault_device_deploy(vsm_backend_ds *ds, const char *key,
			       const vsm_backend_deploy_req *req, vsm_locator *out)
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
	struct vsm_backend_ops ops = vsm__file_backend_ops;

	ops.scheme = "fault";
	ops.description = "file backend with injected faults";
	ops.open = fault_open;
	ops.device_create = fault_device_create;
	ops.device_delete = fault_device_delete;
	ops.bdev_write = fault_bdev_write;
	ops.device_deploy = fault_device_deploy;
	/* Without compare-and-write the generation bump takes the plain
	 * write path, which goes through fault_bdev_write. */
	ops.bdev_compare_and_write = NULL;
	return vsm_backend_register(ctx, &ops, NULL);
}
