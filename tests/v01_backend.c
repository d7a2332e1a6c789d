/*
 * A 0.1 backend (see v01_backend.h): compiled with tests/compat/vsm-0.1
 * ahead of include/, so <vsm/backend.h> here is the 0.1 header as
 * released; only POSIX calls and the 0.1 API are used.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <vsm/backend.h>

#include "v01_backend.h"

#if VSM_BACKEND_OPS_VERSION != 1
#error "v01_backend.c must be built against the 0.1 header"
#endif

struct vsm_backend_ds {
	char *dir;
};

struct vsm_backend_bdev {
	int fd;
	pthread_mutex_t lock;
};

static int sys(const char *what, const char *path)
{
	int e = errno;

	return vsm_error_set(e == ENOENT ? VSM_ENOTFOUND : e == EEXIST ? VSM_EEXISTS : VSM_EIO,
			     "%s '%s': %s", what, path, strerror(e));
}

static char *path_of(vsm_backend_ds *ds, const char *name)
{
	char *p = malloc(strlen(ds->dir) + strlen(name) + 2);

	if (p)
		sprintf(p, "%s/%s", ds->dir, name);
	return p;
}

static int v_open(vsm_backend_ds **out, const char *uri, const vsm_backend_open_args *args)
{
	const char *p = strstr(uri, "://");
	vsm_backend_ds *ds;

	(void)args;
	if (!p || p[3] != '/')
		return vsm_error_set(VSM_EINVAL, "'%s': want SCHEME:///abs/dir", uri);
	if (mkdir(p + 3, 0755) < 0 && errno != EEXIST)
		return sys("cannot make", p + 3);
	if (!(ds = calloc(1, sizeof(*ds))) || !(ds->dir = strdup(p + 3))) {
		free(ds);
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	}
	*out = ds;
	return 0;
}

static void v_close(vsm_backend_ds *ds)
{
	free(ds->dir);
	free(ds);
}

static int v_capacity(vsm_backend_ds *ds, uint64_t *total, uint64_t *free_bytes)
{
	struct statvfs sv;

	if (statvfs(ds->dir, &sv) < 0)
		return sys("cannot stat", ds->dir);
	if (total)
		*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	if (free_bytes)
		*free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

static int bdev_open(vsm_backend_bdev **out, const char *path, int oflags)
{
	vsm_backend_bdev *b;
	int fd = open(path, oflags | O_CLOEXEC, 0644);

	if (fd < 0)
		return sys("cannot open", path);
	if (!(b = calloc(1, sizeof(*b)))) {
		close(fd);
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	}
	b->fd = fd;
	pthread_mutex_init(&b->lock, NULL);
	*out = b;
	return 0;
}

static int v_meta_open(vsm_backend_bdev **out, vsm_backend_ds *ds, uint64_t min_size,
		       unsigned int flags)
{
	char *path = path_of(ds, ".meta");
	struct stat st;
	int rc;

	if (!path)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	rc = bdev_open(out, path, (flags & VSM_BDEV_CREATE) ? O_RDWR | O_CREAT : O_RDWR);
	if (rc == 0 && fstat((*out)->fd, &st) == 0 && (uint64_t)st.st_size < min_size &&
	    (flags & VSM_BDEV_CREATE) && ftruncate((*out)->fd, (off_t)min_size) < 0)
		rc = sys("cannot size", path);
	free(path);
	return rc;
}

static int v_device_create(vsm_backend_ds *ds, const vsm_backend_device_spec *spec,
			   char *key, size_t key_size, unsigned int *out_flags)
{
	char *path = path_of(ds, spec->name);
	int fd, rc = 0;

	*out_flags = 0;
	if (!path)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		rc = sys("cannot create", path);
	} else {
		if (!strcmp(spec->format, "raw") && ftruncate(fd, (off_t)spec->size) < 0) {
			rc = sys("cannot size", path);
			unlink(path);
		}
		close(fd);
	}
	free(path);
	if (rc == 0)
		snprintf(key, key_size, "%s", spec->name);
	return rc;
}

static int v_device_delete(vsm_backend_ds *ds, const char *key, unsigned int flags)
{
	char *path = path_of(ds, key);
	int rc = 0;

	(void)flags;
	if (!path)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	if (strchr(key, '/') || unlink(path) < 0)
		rc = strchr(key, '/') ? vsm_error_set(VSM_EINVAL, "'%s' is not a device", key) :
		     sys("cannot delete", path);
	free(path);
	return rc;
}

static int v_device_resize(vsm_backend_ds *ds, const char *key, uint64_t size,
			   unsigned int flags)
{
	char *path = path_of(ds, key);
	int rc = 0;

	(void)flags;
	if (!path)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	if (truncate(path, (off_t)size) < 0)
		rc = sys("cannot resize", path);
	free(path);
	return rc;
}

static int v_host(vsm_backend_ds *ds, const char *host, const char *host_uri,
		  unsigned int flags)
{
	(void)ds, (void)host, (void)host_uri, (void)flags;
	return 0;
}

static int v_device_deploy(vsm_backend_ds *ds, const char *key,
			   const vsm_backend_deploy_req *req, vsm_locator *out)
{
	char *path = path_of(ds, key), uri[4200], xml[8400];
	int rc;

	if (!path)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	snprintf(uri, sizeof(uri), "file://%s", path);
	snprintf(xml, sizeof(xml), "<disk type='file' device='disk'><driver name='qemu' "
		 "type='%s'/><source file='%s'/><target dev='%s'/></disk>", req->format, path,
		 req->target);
	rc = vsm_locator_set(out, uri, path, xml);
	free(path);
	return rc;
}

static int v_device_undeploy(vsm_backend_ds *ds, const char *key,
			     const vsm_backend_deploy_req *req)
{
	(void)ds, (void)key, (void)req;
	return 0;
}

static int v_device_open(vsm_backend_bdev **out, vsm_backend_ds *ds, const char *key,
			 unsigned int flags)
{
	char *path;
	int rc;

	if (strchr(key, '/'))
		return vsm_error_set(VSM_EINVAL, "'%s' is not a device of this datastore", key);
	if (!(path = path_of(ds, key)))
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	rc = bdev_open(out, path, (flags & VSM_BDEV_RDONLY) ? O_RDONLY : O_RDWR);
	free(path);
	return rc;
}

static void v_bdev_close(vsm_backend_bdev *b)
{
	close(b->fd);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static int v_bdev_read(vsm_backend_bdev *b, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(b->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vsm_error_set(VSM_EIO, "read: %s", strerror(errno));
		if (n == 0) {
			memset(p, 0, len);
			break;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int v_bdev_write(vsm_backend_bdev *b, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(b->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vsm_error_set(VSM_EIO, "write: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int v_bdev_flush(vsm_backend_bdev *b)
{
	return fdatasync(b->fd) < 0 ? vsm_error_set(VSM_EIO, "flush: %s", strerror(errno)) : 0;
}

static int v_bdev_size(vsm_backend_bdev *b, uint64_t *out)
{
	struct stat st;

	if (fstat(b->fd, &st) < 0)
		return vsm_error_set(VSM_EIO, "stat: %s", strerror(errno));
	*out = (uint64_t)st.st_size;
	return 0;
}

/* Atomic within this process, which is all the tests share. */
static int v_bdev_caw(vsm_backend_bdev *b, const void *expected, const void *buf, size_t len,
		      uint64_t off)
{
	uint8_t *cur = malloc(len ? len : 1);
	int rc;

	if (!cur)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	pthread_mutex_lock(&b->lock);
	rc = v_bdev_read(b, cur, len, off);
	if (rc == 0 && memcmp(cur, expected, len) != 0)
		rc = -VSM_EMISMATCH;
	if (rc == 0)
		rc = v_bdev_write(b, buf, len, off);
	pthread_mutex_unlock(&b->lock);
	free(cur);
	return rc;
}

#define V01_COMMON                                   \
	.version = VSM_BACKEND_OPS_VERSION,          \
	.size = sizeof(struct vsm_backend_ops),      \
	.open = v_open,                              \
	.close = v_close,                            \
	.capacity = v_capacity,                      \
	.meta_open = v_meta_open,                    \
	.device_create = v_device_create,            \
	.device_delete = v_device_delete,            \
	.device_resize = v_device_resize,            \
	.host_attach = v_host,                       \
	.host_detach = v_host,                       \
	.device_deploy = v_device_deploy,            \
	.device_undeploy = v_device_undeploy,        \
	.device_open = v_device_open,                \
	.bdev_close = v_bdev_close,                  \
	.bdev_read = v_bdev_read,                    \
	.bdev_write = v_bdev_write,                  \
	.bdev_flush = v_bdev_flush,                  \
	.bdev_size = v_bdev_size

static const struct vsm_backend_ops v01_caw = {
	V01_COMMON,
	.scheme = "v01",
	.description = "0.1 test backend with compare-and-write",
	.bdev_compare_and_write = v_bdev_caw,
};

static const struct vsm_backend_ops v01_nocaw = {
	V01_COMMON,
	.scheme = "v01nocaw",
	.description = "0.1 test backend without compare-and-write",
};

const struct vsm_backend_ops *v01_backend_ops(int with_caw)
{
	return with_caw ? &v01_caw : &v01_nocaw;
}

int v01_backend_register(struct vsm_ctx *ctx, int with_caw)
{
	return vsm_backend_register(ctx, v01_backend_ops(with_caw), NULL);
}
