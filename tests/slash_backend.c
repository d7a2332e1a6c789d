/*
 * The "slash" test backend (see slash_backend.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slash_backend.h"
#include "backends/file/file.h"

#define F vsm__file_backend_ops

slash_config slash;

void slash_arm(int n, bool after)
{
	slash.fail_at = n;
	slash.fail_after = after;
	slash.calls = 0;
	slash.fired[0] = '\0';
}

/* Count a call; non-zero when it is the one to fail. */
static bool hit(const char *op)
{
	if (!slash.fail_at || ++slash.calls != slash.fail_at)
		return false;
	snprintf(slash.fired, sizeof(slash.fired), "%s", op);
	return true;
}

static int injected(const char *op)
{
	return vsm_error_set(VSM_EIO, "injected failure of %s", op);
}

#define FAIL_BEFORE(op) do { if (hit(op)) return injected(op); } while (0)

static const char *prefix(void)
{
	return slash.prefix ? slash.prefix : "sub/";
}

/* The file name behind @key, or NULL with the error set. */
static const char *file_of(const char *key)
{
	size_t n = strlen(prefix());

	if (!key || strncmp(key, prefix(), n) != 0 || !key[n]) {
		vsm_error_set(VSM_EINVAL, "'%s' is not a device of this datastore (keys start "
			      "with '%s')", key ? key : "", prefix());
		return NULL;
	}
	return key + n;
}

static int s_open(vsm_backend_ds **out, const char *uri, const vsm_backend_open_args *args)
{
	char *file_uri = NULL;
	int rc;

	FAIL_BEFORE("open");
	if (strncmp(uri, "slash://", 8) != 0)
		return vsm_error_set(VSM_EINVAL, "not a slash URI: %s", uri);
	if (asprintf(&file_uri, "file://%s", uri + 8) < 0)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	rc = F.open(out, file_uri, args);
	free(file_uri);
	return rc;
}

static int s_capacity(vsm_backend_ds *ds, uint64_t *total, uint64_t *free_bytes)
{
	FAIL_BEFORE("capacity");
	return F.capacity(ds, total, free_bytes);
}

/* A slash device wraps a file device and fails its calls on demand. */
typedef struct {
	vsm_bdev_io io;
	vsm_bdev_io *in;
} s_dev;

static const struct vsm_bdev_io_ops s_io_ops;

static int s_wrap(vsm_bdev_io **out, int rc, vsm_bdev_io *in)
{
	s_dev *d;

	if (rc < 0)
		return rc;
	if (!(d = calloc(1, sizeof(*d)))) {
		in->ops->close(in);
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	}
	d->io.ops = &s_io_ops;
	d->in = in;
	*out = &d->io;
	return 0;
}

#define IN(io) (((s_dev *)(io))->in)

static int s_meta_open(vsm_bdev_io **out, vsm_backend_ds *ds, uint64_t min_size,
		       unsigned int flags)
{
	vsm_bdev_io *in = NULL;

	FAIL_BEFORE("meta_open");
	int rc = F.meta_open(&in, ds, min_size, flags);

	return s_wrap(out, rc, in);
}

static int s_device_create(vsm_backend_ds *ds, const vsm_backend_device_spec *spec,
			   char *key, size_t key_size, unsigned int *out_flags)
{
	vsm_backend_device_spec s = *spec;
	char name[VSM_BACKEND_KEY_MAX];
	int rc;

	FAIL_BEFORE("device_create");
	if (s.backing_key && !(s.backing_key = file_of(s.backing_key)))
		return -VSM_EINVAL;
	if ((rc = F.device_create(ds, &s, name, sizeof(name), out_flags)) < 0)
		return rc;
	if ((size_t)snprintf(key, key_size, "%s%s", prefix(), name) >= key_size) {
		F.device_delete(ds, name, 0);
		return vsm_error_set(VSM_EINVAL, "key for '%s' is too long", name);
	}
	return 0;
}

static int s_device_delete(vsm_backend_ds *ds, const char *key, unsigned int flags)
{
	const char *f;

	FAIL_BEFORE("device_delete");
	/* A key of another namespace names nothing here. */
	if (!(f = file_of(key)))
		return vsm_error_set(VSM_ENOTFOUND, "device '%s' does not exist", key);
	return F.device_delete(ds, f, flags);
}

static int s_device_resize(vsm_backend_ds *ds, const char *key, uint64_t size,
			   unsigned int flags)
{
	const char *f;

	FAIL_BEFORE("device_resize");
	if (!(f = file_of(key)))
		return -VSM_EINVAL;
	return F.device_resize(ds, f, size, flags);
}

static int s_host_attach(vsm_backend_ds *ds, const char *host, const char *uri,
			 unsigned int flags)
{
	FAIL_BEFORE("host_attach");
	return F.host_attach(ds, host, uri, flags);
}

static int s_host_detach(vsm_backend_ds *ds, const char *host, const char *uri,
			 unsigned int flags)
{
	FAIL_BEFORE("host_detach");
	return F.host_detach(ds, host, uri, flags);
}

/* @req with its chain keys mapped to file names (in @keys). */
static int map_req(vsm_backend_deploy_req *out, const vsm_backend_deploy_req *req,
		   const char **keys)
{
	size_t i;

	*out = *req;
	if (req->chain_len > 64)
		return vsm_error_set(VSM_EINVAL, "chain too long");
	for (i = 0; i < req->chain_len; i++)
		if (!(keys[i] = file_of(req->chain_keys[i])))
			return -VSM_EINVAL;
	out->chain_keys = keys;
	return 0;
}

static int s_device_deploy(vsm_backend_ds *ds, const char *key,
			   const vsm_backend_deploy_req *req, struct vsm_locator *loc)
{
	vsm_backend_deploy_req r;
	const char *keys[64], *f;
	int rc;

	FAIL_BEFORE("device_deploy");
	if (!(f = file_of(key)) || (rc = map_req(&r, req, keys)) < 0)
		return -VSM_EINVAL;
	return F.device_deploy(ds, f, &r, loc);
}

static int s_device_undeploy(vsm_backend_ds *ds, const char *key,
			     const vsm_backend_deploy_req *req)
{
	vsm_backend_deploy_req r;
	const char *keys[64], *f;
	int rc;

	FAIL_BEFORE("device_undeploy");
	if (!(f = file_of(key)) || (rc = map_req(&r, req, keys)) < 0)
		return -VSM_EINVAL;
	return F.device_undeploy(ds, f, &r);
}

static int s_device_open(vsm_bdev_io **out, vsm_backend_ds *ds, const char *key,
			 unsigned int flags)
{
	vsm_bdev_io *in = NULL;
	const char *f;

	FAIL_BEFORE("device_open");
	if (!(f = file_of(key)))
		return -VSM_EINVAL;
	int rc = F.device_open(&in, ds, f, flags);

	return s_wrap(out, rc, in);
}

static void s_close(vsm_bdev_io *io)
{
	IN(io)->ops->close(IN(io));
	free(io);
}

static int s_read(vsm_bdev_io *b, void *buf, size_t len, uint64_t off)
{
	FAIL_BEFORE("bdev_read");
	return IN(b)->ops->read(IN(b), buf, len, off);
}

/* A write or compare-and-write that fails either before doing anything
 * or after doing it all (its completion lost). */
static int s_write(vsm_bdev_io *b, const void *buf, size_t len, uint64_t off,
		   unsigned int flags)
{
	int rc;

	if (!hit("bdev_write"))
		return IN(b)->ops->write(IN(b), buf, len, off, flags);
	if (slash.fail_after && (rc = IN(b)->ops->write(IN(b), buf, len, off, flags)) < 0)
		return rc;
	return injected("bdev_write");
}

/* Power loss is not what this backend is for: a flush is only a point
 * to fail at (the file backend's fdatasync would make the fault walks
 * slow on a disk). */
static int s_flush(vsm_bdev_io *b)
{
	(void)b;
	if (hit("bdev_flush"))
		return injected("bdev_flush");
	return 0;
}

static int s_caw(vsm_bdev_io *b, const void *expected, const void *buf, size_t len,
		 uint64_t off)
{
	int rc;

	if (!hit("bdev_compare_and_write"))
		return IN(b)->ops->compare_and_write(IN(b), expected, buf, len, off);
	if (slash.fail_after &&
	    (rc = IN(b)->ops->compare_and_write(IN(b), expected, buf, len, off)) < 0)
		return rc;
	return injected("bdev_compare_and_write");
}

static int s_size(vsm_bdev_io *b, uint64_t *out)
{
	FAIL_BEFORE("bdev_size");
	return IN(b)->ops->get_size(IN(b), out);
}

static int s_discard(vsm_bdev_io *b, uint64_t off, uint64_t len)
{
	FAIL_BEFORE("bdev_discard");
	return IN(b)->ops->discard(IN(b), off, len);
}

static int s_query(vsm_bdev_io *b, vsm_bdev_caps *out)
{
	return IN(b)->ops->query(IN(b), out);
}

static const struct vsm_bdev_io_ops s_io_ops = VSM_BDEV_IO_OPS_INIT(
	.close = s_close,
	.read = s_read,
	.write = s_write,
	.flush = s_flush,
	.get_size = s_size,
	.query = s_query,
	.compare_and_write = s_caw,
	.discard = s_discard,
);

int slash_register(vsm_ctx *ctx)
{
	struct vsm_datastore_ops ops = F;

	ops.scheme = "slash";
	ops.description = "file backend whose keys hold '/', with injected faults";
	ops.open = s_open;
	ops.capacity = s_capacity;
	ops.meta_open = s_meta_open;
	ops.device_create = s_device_create;
	ops.device_delete = s_device_delete;
	ops.device_resize = s_device_resize;
	ops.host_attach = s_host_attach;
	ops.host_detach = s_host_detach;
	ops.device_deploy = s_device_deploy;
	ops.device_undeploy = s_device_undeploy;
	ops.device_open = s_device_open;
	return vsm_datastore_ops_register(ctx, &ops, NULL);
}
