/*
 * extfile: a file-backed backend kept out of tree, compiled only against
 * libvsm 0.1's backend.h (tests/compat/vsm-0.1). A datastore is
 * a directory; every device is a file named by its key; the metadata
 * device is the file ".vsm-meta". URIs: extfile:///abs/dir (with
 * compare-and-write) and extfile-nocaw:///abs/dir (without). A v1 table
 * fixes compare-and-write per table, so the choice is made by scheme.
 *
 * Built twice: linked into test_ext_backend (registered by hand) and as
 * the module ext-backend.so (vsm_backend_module_init).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
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

#include "ext-backend.h"

#define META_NAME ".vsm-meta"

struct vsm_backend_ds {
	char *dir;
	char *name;
};

struct vsm_backend_bdev {
	int fd;
	char *path;
	pthread_mutex_t caw; /* OFD locks do not exclude threads sharing the fd */
};

static int sys_err(const char *what, const char *path)
{
	int e = errno;
	int code = e == ENOENT ? VSM_ENOTFOUND : e == EEXIST ? VSM_EEXISTS :
		   e == ENOSPC ? VSM_ENOSPC : e == EACCES || e == EPERM ? VSM_EPERM : VSM_EIO;

	return vsm_error_set(code, "extfile: %s '%s': %s", what, path, strerror(e));
}

/* A key is a plain file name in the directory: no '/', not hidden (the
 * metadata file is), printable. */
static int check_key(const char *key)
{
	size_t i, n = key ? strlen(key) : 0;

	if (n == 0 || n >= VSM_BACKEND_KEY_MAX || key[0] == '.')
		goto bad;
	for (i = 0; i < n; i++)
		if (key[i] == '/' || (unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			goto bad;
	return 0;
bad:
	return vsm_error_set(VSM_EINVAL, "extfile: '%s' is not a device of this datastore",
			     key ? key : "(null)");
}

static char *path_of(const vsm_backend_ds *ds, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", ds->dir, name) < 0) {
		vsm_error_set(VSM_ENOMEM, "extfile: out of memory");
		return NULL;
	}
	return p;
}

/* --- datastore --- */

static int ext_open(vsm_backend_ds **out, const char *uri, const vsm_backend_open_args *args)
{
	const char *p = strstr(uri, "://");
	vsm_backend_ds *ds;
	struct stat st;

	if (!p || p[3] != '/')
		return vsm_error_set(VSM_EINVAL, "extfile: '%s' is not extfile:///ABSOLUTE/DIR", uri);
	p += 3;
	if (stat(p, &st) < 0)
		return sys_err("cannot open datastore directory", p);
	if (!S_ISDIR(st.st_mode))
		return vsm_error_set(VSM_EINVAL, "extfile: '%s' is not a directory", p);
	if (!(ds = calloc(1, sizeof(*ds))) || !(ds->dir = strdup(p)) ||
	    !(ds->name = strdup(args && args->name ? args->name : "?"))) {
		if (ds)
			free(ds->dir);
		free(ds);
		return vsm_error_set(VSM_ENOMEM, "extfile: out of memory");
	}
	*out = ds;
	return 0;
}

static void ext_close(vsm_backend_ds *ds)
{
	if (!ds)
		return;
	free(ds->dir);
	free(ds->name);
	free(ds);
}

static int ext_capacity(vsm_backend_ds *ds, uint64_t *total, uint64_t *free_bytes)
{
	struct statvfs sv;

	if (statvfs(ds->dir, &sv) < 0)
		return sys_err("cannot stat", ds->dir);
	/* The core passes NULL for what it does not want (0.1's header does
	 * not say so: vsm_container_create asks for free space only). */
	if (total)
		*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	if (free_bytes)
		*free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

static int bdev_new(vsm_backend_bdev **out, int fd, char *path)
{
	vsm_backend_bdev *b = calloc(1, sizeof(*b));

	if (!b) {
		close(fd);
		free(path);
		return vsm_error_set(VSM_ENOMEM, "extfile: out of memory");
	}
	b->fd = fd;
	b->path = path;
	pthread_mutex_init(&b->caw, NULL);
	*out = b;
	return 0;
}

static int open_file(vsm_backend_bdev **out, vsm_backend_ds *ds, const char *name,
		     unsigned int flags, uint64_t min_size)
{
	int oflags = (flags & VSM_BDEV_RDONLY ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	char *path = path_of(ds, name);
	struct stat st;
	int fd, rc;

	if (!path)
		return -VSM_ENOMEM;
	if (flags & VSM_BDEV_CREATE)
		oflags |= O_CREAT;
	if ((fd = open(path, oflags, 0644)) < 0) {
		rc = sys_err("cannot open", path);
		free(path);
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		rc = vsm_error_set(VSM_EINVAL, "extfile: '%s' is not a regular file", path);
		free(path);
		return rc;
	}
	if ((flags & VSM_BDEV_CREATE) && (uint64_t)st.st_size < min_size &&
	    ftruncate(fd, (off_t)min_size) < 0) {
		rc = sys_err("cannot size", path);
		close(fd);
		free(path);
		return rc;
	}
	return bdev_new(out, fd, path);
}

static int ext_meta_open(vsm_backend_bdev **out, vsm_backend_ds *ds, uint64_t min_size,
			 unsigned int flags)
{
	return open_file(out, ds, META_NAME, flags, min_size);
}

/* --- devices --- */

static int ext_device_create(vsm_backend_ds *ds, const vsm_backend_device_spec *spec,
			     char *key, size_t key_size, unsigned int *out_flags)
{
	uint64_t size;
	char *path;
	int fd, rc = 0;

	if ((rc = check_key(spec->name)) < 0)
		return rc;
	if (strlen(spec->name) >= key_size)
		return vsm_error_set(VSM_EINVAL, "extfile: device name '%s' is too long",
				     spec->name);
	if (!(path = path_of(ds, spec->name)))
		return -VSM_ENOMEM;
	if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		rc = sys_err("cannot create device", path);
		free(path);
		return rc;
	}
	/* raw: a sparse file of its size; qcow2: empty, the core formats it. */
	size = strcmp(spec->format, "raw") == 0 ? spec->size : 0;
	if (ftruncate(fd, (off_t)size) < 0) {
		rc = sys_err("cannot size device", path);
		unlink(path);
	}
	close(fd);
	free(path);
	if (rc == 0) {
		strcpy(key, spec->name);
		*out_flags = 0;
	}
	return rc;
}

static int ext_device_delete(vsm_backend_ds *ds, const char *key, unsigned int flags)
{
	char *path;
	int rc = 0;

	(void)flags;
	if ((rc = check_key(key)) < 0)
		return rc;
	if (!(path = path_of(ds, key)))
		return -VSM_ENOMEM;
	if (unlink(path) < 0)
		rc = sys_err("cannot delete device", path);
	free(path);
	return rc;
}

static int ext_device_resize(vsm_backend_ds *ds, const char *key, uint64_t size,
			     unsigned int flags)
{
	struct stat st;
	char *path;
	int rc = 0;

	(void)flags;
	if ((rc = check_key(key)) < 0)
		return rc;
	if (!(path = path_of(ds, key)))
		return -VSM_ENOMEM;
	if (stat(path, &st) < 0)
		rc = sys_err("cannot resize device", path);
	else if ((uint64_t)st.st_size < size && truncate(path, (off_t)size) < 0)
		rc = sys_err("cannot resize device", path);
	free(path);
	return rc;
}

/* --- hosts: a directory every host reaches by the same path --- */

static int ext_host_attach(vsm_backend_ds *ds, const char *host, const char *host_uri,
			   unsigned int flags)
{
	(void)ds, (void)host, (void)host_uri, (void)flags;
	return 0;
}

static int ext_host_detach(vsm_backend_ds *ds, const char *host, const char *host_uri,
			   unsigned int flags)
{
	(void)ds, (void)host, (void)host_uri, (void)flags;
	return 0;
}

/* Append @s to @buf escaped for an XML attribute; 0.1 has no helper. */
static void xml_put(char *buf, size_t size, const char *s)
{
	size_t n = strlen(buf);

	for (; *s && n + 7 < size; s++) {
		const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" :
				  *s == '\'' ? "&apos;" : *s == '"' ? "&quot;" : NULL;

		if (rep) {
			strcpy(buf + n, rep);
			n += strlen(rep);
		} else {
			buf[n++] = *s;
		}
	}
	buf[n] = '\0';
}

static int ext_device_deploy(vsm_backend_ds *ds, const char *key,
			     const vsm_backend_deploy_req *req, vsm_locator *out)
{
	char xml[4096] = "", *path, *uri = NULL;
	struct stat st;
	int rc;

	if ((rc = check_key(key)) < 0)
		return rc;
	if (!(path = path_of(ds, key)))
		return -VSM_ENOMEM;
	if (stat(path, &st) < 0) {
		rc = sys_err("cannot deploy device", path);
		free(path);
		return rc;
	}
	strcat(xml, "<disk type='file' device='disk'>\n  <driver name='qemu' type='");
	xml_put(xml, sizeof(xml), req->format ? req->format : "raw");
	strcat(xml, "'/>\n  <source file='");
	xml_put(xml, sizeof(xml), path);
	strcat(xml, "'/>\n  <target dev='");
	xml_put(xml, sizeof(xml), req->target ? req->target : "vdb");
	strcat(xml, "' bus='");
	xml_put(xml, sizeof(xml), req->bus ? req->bus : "virtio");
	strcat(xml, "'/>\n</disk>\n");
	if (asprintf(&uri, "file://%s", path) < 0) {
		free(path);
		return vsm_error_set(VSM_ENOMEM, "extfile: out of memory");
	}
	rc = vsm_locator_set(out, uri, path, xml);
	free(uri);
	free(path);
	return rc;
}

static int ext_device_undeploy(vsm_backend_ds *ds, const char *key,
			       const vsm_backend_deploy_req *req)
{
	(void)ds, (void)req;
	return check_key(key);
}

/* --- block I/O --- */

static int ext_device_open(vsm_backend_bdev **out, vsm_backend_ds *ds, const char *key,
			   unsigned int flags)
{
	int rc;

	if ((rc = check_key(key)) < 0)
		return rc;
	return open_file(out, ds, key, flags & VSM_BDEV_RDONLY, 0);
}

static void ext_bdev_close(vsm_backend_bdev *b)
{
	if (!b)
		return;
	close(b->fd);
	pthread_mutex_destroy(&b->caw);
	free(b->path);
	free(b);
}

static int read_at(vsm_backend_bdev *b, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(b->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sys_err("cannot read", b->path);
		if (n == 0) { /* past the end reads as zeros */
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int write_at(vsm_backend_bdev *b, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(b->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return sys_err("cannot write", b->path);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int ext_bdev_read(vsm_backend_bdev *b, void *buf, size_t len, uint64_t off)
{
	return read_at(b, buf, len, off);
}

static int ext_bdev_write(vsm_backend_bdev *b, const void *buf, size_t len, uint64_t off)
{
	return write_at(b, buf, len, off);
}

static int ext_bdev_flush(vsm_backend_bdev *b)
{
	if (fdatasync(b->fd) < 0)
		return sys_err("cannot flush", b->path);
	return 0;
}

static int ext_bdev_size(vsm_backend_bdev *b, uint64_t *out)
{
	struct stat st;

	if (fstat(b->fd, &st) < 0)
		return sys_err("cannot stat", b->path);
	*out = (uint64_t)st.st_size;
	return 0;
}

static int ofd_lock(vsm_backend_bdev *b, short type, uint64_t off, size_t len)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)off;
	fl.l_len = (off_t)len;
	while (fcntl(b->fd, F_OFD_SETLKW, &fl) < 0) {
		if (errno != EINTR)
			return sys_err("cannot lock", b->path);
	}
	return 0;
}

/* The range is locked against every other open file description (other
 * processes, other opens in this one) and, by the mutex, against the
 * other threads using this one. */
static int ext_bdev_compare_and_write(vsm_backend_bdev *b, const void *expected,
				      const void *buf, size_t len, uint64_t off)
{
	char *cur = malloc(len ? len : 1);
	int rc;

	if (!cur)
		return vsm_error_set(VSM_ENOMEM, "extfile: out of memory");
	pthread_mutex_lock(&b->caw);
	if ((rc = ofd_lock(b, F_WRLCK, off, len)) == 0) {
		if ((rc = read_at(b, cur, len, off)) == 0) {
			if (memcmp(cur, expected, len) != 0)
				rc = vsm_error_set(VSM_EMISMATCH, "extfile: '%s': compare-and-write "
						   "at %llu found other data", b->path,
						   (unsigned long long)off);
			else
				rc = write_at(b, buf, len, off);
		}
		int urc = ofd_lock(b, F_UNLCK, off, len);

		if (rc == 0)
			rc = urc;
	}
	pthread_mutex_unlock(&b->caw);
	free(cur);
	return rc;
}

static int ext_bdev_block_size(vsm_backend_bdev *b, uint32_t *out)
{
	(void)b;
	*out = 512;
	return 0;
}

#define EXT_OPS(name, desc, caw) {                                           \
	.version = VSM_BACKEND_OPS_VERSION, /* 1: this is the 0.1 header */ \
	.size = sizeof(struct vsm_backend_ops),                              \
	.scheme = name,                                                      \
	.description = desc,                                                 \
	.open = ext_open,                                                    \
	.close = ext_close,                                                  \
	.capacity = ext_capacity,                                            \
	.meta_open = ext_meta_open,                                          \
	.device_create = ext_device_create,                                  \
	.device_delete = ext_device_delete,                                  \
	.device_resize = ext_device_resize,                                  \
	.host_attach = ext_host_attach,                                      \
	.host_detach = ext_host_detach,                                      \
	.device_deploy = ext_device_deploy,                                  \
	.device_undeploy = ext_device_undeploy,                              \
	.device_open = ext_device_open,                                      \
	.bdev_close = ext_bdev_close,                                        \
	.bdev_read = ext_bdev_read,                                          \
	.bdev_write = ext_bdev_write,                                        \
	.bdev_flush = ext_bdev_flush,                                        \
	.bdev_size = ext_bdev_size,                                          \
	.bdev_compare_and_write = caw,                                       \
	.bdev_discard = NULL,                                                \
	.bdev_block_size = ext_bdev_block_size,                              \
}

static const struct vsm_backend_ops ext_ops =
	EXT_OPS("extfile", "out-of-tree file backend (0.1 ABI, compare-and-write)",
		ext_bdev_compare_and_write);
static const struct vsm_backend_ops ext_nocaw_ops =
	EXT_OPS("extfile-nocaw", "out-of-tree file backend (0.1 ABI, no compare-and-write)",
		NULL);

int ext_backend_register(vsm_ctx *ctx)
{
	int rc = vsm_backend_register(ctx, &ext_ops, NULL);

	if (rc == 0)
		rc = vsm_backend_register(ctx, &ext_nocaw_ops, NULL);
	return rc;
}

#ifdef EXT_BACKEND_MODULE
int vsm_backend_module_init(vsm_ctx *ctx, uint32_t abi_version)
{
	if (abi_version != 1)
		return vsm_error_set(VSM_EVERSION, "extfile: module ABI %u is not 1",
				     (unsigned)abi_version);
	return ext_backend_register(ctx);
}
#endif
