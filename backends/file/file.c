/*
 * File backend: a datastore is a directory named by file:///ABS/PATH.
 * Devices are sparse files directly inside it, named by the core-chosen
 * device name (which is also the key); the core's metadata device is
 * .vsm/meta. Compare-and-write takes an OFD byte-range lock around
 * read-compare-write, so it is atomic across processes and hosts sharing
 * the directory (over NFS with lock support as well).
 *
 * The metadata device is opened O_DIRECT (dio.c) so that a completed
 * write is what every other host reads next, NFS included; writes to it
 * that are not block-aligned are read-modify-write under the same OFD
 * lock. Devices stay buffered: one host owns a device at a time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "dio.h"
#include "file.h"
#include "../common/diskxml.h"
#include "../common/fileuri.h"

#define META_DIR ".vsm"
#define META_FILE ".vsm/meta"

struct vsm_backend_ds {
	char *dir;  /* absolute, no trailing slash */
	char *name; /* datastore name for messages */
};

/* An open file: the v2 device handle the core sees comes first. */
typedef struct file_dev {
	vsm_bdev_io io;
	int fd;
	char *path;
	/* OFD locks do not exclude threads sharing one descriptor, so
	 * compare-and-write, and every write of an O_DIRECT device, also
	 * takes this mutex. */
	pthread_mutex_t lock;
	vsm__filedio dio; /* dio.align == 0: plain buffered (or O_DSYNC) I/O */
} file_dev;

static const struct vsm_bdev_io_ops file_io_ops;

static file_dev *dev_of(vsm_bdev_io *io)
{
	return (file_dev *)io;
}

static int errno_code(int e)
{
	switch (e) {
	case ENOENT: return VSM_ENOTFOUND;
	case EEXIST: return VSM_EEXISTS;
	case ENOSPC: case EDQUOT: case EFBIG: return VSM_ENOSPC;
	case EACCES: case EPERM: case EROFS: return VSM_EPERM;
	case ENOMEM: return VSM_ENOMEM;
	case EINVAL: return VSM_EINVAL;
	case EOPNOTSUPP: return VSM_ENOTSUP;
	default: return VSM_EIO;
	}
}

static int sys_error(const char *what, const char *path)
{
	int e = errno;

	return vsm_error_set(errno_code(e), "%s '%s': %s", what, path, strerror(e));
}

/* A key is a single path component of the same alphabet as names, so no
 * key can reach outside the datastore directory. Keys come back from
 * image headers (backing references) too, which the core passes on
 * verbatim: this check is what keeps them inside. */
static bool key_ok(const char *key)
{
	size_t i, len = key ? strlen(key) : 0;

	if (len == 0 || len > 200 || !strcmp(key, ".") || !strcmp(key, ".."))
		return false;
	for (i = 0; i < len; i++) {
		char c = key[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int check_key(const vsm_backend_ds *ds, const char *key)
{
	if (key_ok(key))
		return 0;
	return vsm_error_set(VSM_EINVAL, "datastore '%s': '%s' is not a device of this datastore "
			     "(a key is a plain file name)", ds->name, key ? key : "");
}

static char *ds_path(const vsm_backend_ds *ds, const char *rel)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", ds->dir, rel) < 0) {
		vsm_error_set(VSM_ENOMEM, "out of memory");
		return NULL;
	}
	return p;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path), i;

	if (len >= sizeof(buf))
		return vsm_error_set(VSM_EINVAL, "path '%s' is too long", path);
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return sys_error("cannot create directory", buf);
		buf[i] = path[i];
	}
	return 0;
}

/* Messages leave out the datastore: the core prefixes "datastore 'NAME': ". */
static int file_open(vsm_backend_ds **out, const char *uri,
		     const vsm_backend_open_args *args)
{
	const char *name = args && args->name ? args->name : uri;
	/* open_args before version 2 had no flags: create nothing then. */
	unsigned int flags = args && args->version >= 2 ? args->flags : 0;
	vsm_backend_ds *ds;
	char *path = NULL;
	struct stat st;
	size_t len;
	int rc;

	if ((rc = vsm__fileuri_to_path(&path, uri)) < 0)
		return rc;
	if (stat(path, &st) < 0 && errno == ENOENT) {
		if (!(flags & VSM_BACKEND_OPEN_CREATE)) {
			rc = vsm_error_set(VSM_ENOTFOUND, "directory '%s' does not exist (pass "
					   "VSM_DATASTORE_ADD_CREATE / --create to make it)", path);
			goto fail;
		}
		if ((rc = mkdir_p(path)) < 0)
			goto fail;
	}
	if (stat(path, &st) < 0) {
		rc = sys_error("cannot open datastore directory", path);
		goto fail;
	}
	if (!S_ISDIR(st.st_mode)) {
		rc = vsm_error_set(VSM_EINVAL, "'%s' is not a directory", path);
		goto fail;
	}
	ds = calloc(1, sizeof(*ds));
	if (!ds || !(ds->name = strdup(name))) {
		free(ds);
		rc = vsm_error_set(VSM_ENOMEM, "out of memory");
		goto fail;
	}
	ds->dir = path;
	len = strlen(ds->dir);
	while (len > 1 && ds->dir[len - 1] == '/')
		ds->dir[--len] = '\0';
	*out = ds;
	return 0;
fail:
	free(path);
	return rc;
}

static void file_close(vsm_backend_ds *ds)
{
	if (!ds)
		return;
	free(ds->dir);
	free(ds->name);
	free(ds);
}

static int file_capacity(vsm_backend_ds *ds, uint64_t *total, uint64_t *free_bytes)
{
	struct statvfs sv;

	if (statvfs(ds->dir, &sv) < 0)
		return sys_error("cannot stat datastore directory", ds->dir);
	if (total)
		*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	if (free_bytes)
		*free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

static int bdev_from_fd(file_dev **out, int fd, const char *path)
{
	file_dev *b = calloc(1, sizeof(*b));

	if (!b || !(b->path = strdup(path))) {
		free(b);
		close(fd);
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	}
	b->io.ops = &file_io_ops;
	b->fd = fd;
	pthread_mutex_init(&b->lock, NULL);
	*out = b;
	return 0;
}

int vsm__file_bdev_open_path(vsm_bdev_io **out, const char *path,
			     unsigned int flags)
{
	file_dev *b = NULL;
	int rc;

	int oflags = (flags & VSM_BDEV_RDONLY) ? O_RDONLY : O_RDWR;
	struct stat st;
	int fd;

	if (flags & VSM_BDEV_CREATE)
		oflags |= O_CREAT;
	fd = open(path, oflags | O_CLOEXEC, 0644);
	if (fd < 0)
		return sys_error("cannot open", path);
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		close(fd);
		return vsm_error_set(VSM_EINVAL, "'%s' is not a regular file or block device",
				     path);
	}
	if ((rc = bdev_from_fd(&b, fd, path)) == 0)
		*out = &b->io;
	return rc;
}

static int file_meta_open(vsm_bdev_io **out, vsm_backend_ds *ds,
			  uint64_t min_size, unsigned int flags)
{
	char *dir = ds_path(ds, META_DIR), *path = ds_path(ds, META_FILE);
	int oflags = (flags & VSM_BDEV_RDONLY) ? O_RDONLY : O_RDWR;
	file_dev *b = NULL;
	vsm__filedio dio;
	bool fell_back;
	struct stat st;
	int fd, rc;

	if (!dir || !path) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if (!(flags & VSM_BDEV_CREATE) && access(path, F_OK) < 0) {
		rc = vsm_error_set(VSM_ENOTFOUND, "no metadata at '%s' (not a datastore yet?)",
				   path);
		goto out;
	}
	if ((flags & VSM_BDEV_CREATE) && mkdir(dir, 0755) < 0 && errno != EEXIST) {
		rc = sys_error("cannot create", dir);
		goto out;
	}
	if (flags & VSM_BDEV_CREATE)
		oflags |= O_CREAT;
	/* Without O_DIRECT (see doc/datastore-layout.md, "Visibility across
	 * hosts") writes are O_DSYNC and reads may come from this host's page
	 * cache: fine for one host, not for several over NFS. */
	if ((fd = vsm__filedio_open(path, oflags, &dio, &fell_back)) < 0) {
		rc = sys_error("cannot open", path);
		goto out;
	}
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		close(fd);
		rc = vsm_error_set(VSM_EINVAL, "'%s' is not a regular file or block device", path);
		goto out;
	}
	if ((rc = bdev_from_fd(&b, fd, path)) < 0)
		goto out;
	b->dio = dio;
	if ((flags & VSM_BDEV_CREATE) && S_ISREG(st.st_mode) && (uint64_t)st.st_size < min_size &&
	    ftruncate(b->fd, (off_t)min_size) < 0) {
		rc = sys_error("cannot size", path);
		goto out;
	}
	*out = &b->io;
	b = NULL;
out:
	if (b) {
		close(b->fd);
		pthread_mutex_destroy(&b->lock);
		free(b->path);
		free(b);
	}
	free(dir);
	free(path);
	return rc;
}

static int file_device_create(vsm_backend_ds *ds, const vsm_backend_device_spec *spec,
			      char *key, size_t key_size, unsigned int *out_flags)
{
	char *path;
	int fd, rc = 0;
	uint64_t size;

	if ((rc = check_key(ds, spec->name)) < 0)
		return rc;
	if (strlen(spec->name) >= key_size)
		return vsm_error_set(VSM_EINVAL, "device name '%s' is too long", spec->name);
	if (!(path = ds_path(ds, spec->name)))
		return -VSM_ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = sys_error("cannot create device", path);
		free(path);
		return rc;
	}
	/* A raw device is a sparse file of its full size; a qcow2 image
	 * starts empty and grows as the core writes it. */
	size = strcmp(spec->format, "raw") == 0 ? spec->size : 0;
	if (ftruncate(fd, (off_t)size) < 0) {
		rc = sys_error("cannot size device", path);
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

static int file_device_delete(vsm_backend_ds *ds, const char *key, unsigned int flags)
{
	char *path;
	int rc = 0;

	(void)flags;
	if ((rc = check_key(ds, key)) < 0)
		return rc;
	if (!(path = ds_path(ds, key)))
		return -VSM_ENOMEM;
	if (unlink(path) < 0)
		rc = sys_error("cannot delete device", path);
	free(path);
	return rc;
}

static int file_device_resize(vsm_backend_ds *ds, const char *key, uint64_t size,
			      unsigned int flags)
{
	char *path;
	struct stat st;
	int rc = 0;

	(void)flags;
	if ((rc = check_key(ds, key)) < 0)
		return rc;
	if (!(path = ds_path(ds, key)))
		return -VSM_ENOMEM;
	if (stat(path, &st) < 0)
		rc = sys_error("cannot resize device", path);
	else if ((uint64_t)st.st_size > size)
		rc = vsm_error_set(VSM_EINVAL, "device '%s': shrinking is not supported", key);
	else if (truncate(path, (off_t)size) < 0)
		rc = sys_error("cannot resize device", path);
	free(path);
	return rc;
}

/* Every plain file of the directory whose name could be a key: the
 * metadata lives in .vsm/, which is not one, and neither are a user's
 * subdirectories or names outside the key alphabet. */
static int file_device_list(vsm_backend_ds *ds, vsm_backend_device_cb cb, void *payload)
{
	DIR *d = opendir(ds->dir);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return sys_error("cannot list datastore directory", ds->dir);
	for (;;) {
		vsm_backend_device_info info = { VSM_BACKEND_DEVICE_INFO_VERSION, NULL, NULL, 0, 0 };
		struct stat st;

		errno = 0;
		if (!(e = readdir(d))) {
			if (errno)
				rc = sys_error("cannot list datastore directory", ds->dir);
			break;
		}
		if (e->d_name[0] == '.' && (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
					    !strcmp(e->d_name, META_DIR)))
			continue;
		if (!key_ok(e->d_name))
			continue;
		/* Gone since readdir (another host deleted it): not there. */
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			rc = sys_error("cannot stat device", e->d_name);
			break;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		info.key = e->d_name;
		info.size = (uint64_t)st.st_size;
		info.mtime = (int64_t)st.st_mtime;
		if ((rc = cb(&info, payload)) != 0)
			break;
	}
	closedir(d);
	return rc;
}

static int file_host_attach(vsm_backend_ds *ds, const char *host,
			    const char *host_uri, unsigned int flags)
{
	(void)host_uri;
	(void)flags;
	/* The directory is all a host needs; make sure it is still there. */
	if (access(ds->dir, R_OK | W_OK | X_OK) < 0) {
		int e = errno;

		return vsm_error_set(errno_code(e), "datastore '%s': host '%s' cannot use '%s': %s",
				     ds->name, host, ds->dir, strerror(e));
	}
	return 0;
}

static int file_host_detach(vsm_backend_ds *ds, const char *host,
			    const char *host_uri, unsigned int flags)
{
	(void)ds; (void)host; (void)host_uri; (void)flags;
	return 0;
}

static int file_device_deploy(vsm_backend_ds *ds, const char *key,
			      const vsm_backend_deploy_req *req, struct vsm_locator *out)
{
	size_t n = req->chain_len + 1, i;
	vsm_disk_xml_layer *layers = NULL;
	const char **attrs = NULL;
	char **paths = NULL, *uri = NULL, *xml = NULL;
	int rc;

	if ((rc = check_key(ds, key)) < 0)
		return rc;
	layers = calloc(n, sizeof(*layers));
	attrs = calloc(3 * n, sizeof(*attrs));
	paths = calloc(n, sizeof(*paths));
	if (!layers || !attrs || !paths) {
		rc = vsm_error_set(VSM_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *k = i ? req->chain_keys[i - 1] : key;

		if (i && (rc = check_key(ds, k)) < 0)
			goto out;
		if (!(paths[i] = ds_path(ds, k))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
		attrs[3 * i] = "file";
		attrs[3 * i + 1] = paths[i];
		layers[i].type = "file";
		layers[i].format = i ? req->chain_formats[i - 1] : req->format;
		layers[i].source_attrs = &attrs[3 * i];
	}
	if (access(paths[0], R_OK | W_OK) < 0) {
		rc = sys_error("cannot deploy device", paths[0]);
		goto out;
	}
	if ((rc = vsm__fileuri_from_path(&uri, paths[0])) < 0 ||
	    (rc = vsm__diskxml_build(&xml, layers, n, req->target, req->bus, 0)) < 0)
		goto out;
	rc = vsm_locator_set(out, uri, paths[0], xml);
out:
	for (i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
	free(attrs);
	free(layers);
	free(uri);
	free(xml);
	return rc;
}

static int file_device_undeploy(vsm_backend_ds *ds, const char *key,
				const vsm_backend_deploy_req *req)
{
	(void)req;
	/* Nothing was set up for a local file; only check the key. */
	return check_key(ds, key);
}

static int file_device_open(vsm_bdev_io **out, vsm_backend_ds *ds,
			    const char *key, unsigned int flags)
{
	char *path;
	int rc;

	if ((rc = check_key(ds, key)) < 0)
		return rc;
	if (!(path = ds_path(ds, key)))
		return -VSM_ENOMEM;
	rc = vsm__file_bdev_open_path(out, path, flags & VSM_BDEV_RDONLY);
	free(path);
	return rc;
}

static void file_bdev_close(vsm_bdev_io *io)
{
	file_dev *b = dev_of(io);
	if (!b)
		return;
	close(b->fd);
	pthread_mutex_destroy(&b->lock);
	free(b->path);
	free(b);
}

static int plain_read(file_dev *b, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(b->fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sys_error("read failed on", b->path);
		}
		if (n == 0) { /* past the end: reads as zeros */
			memset(p, 0, len);
			break;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int plain_write(file_dev *b, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(b->fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sys_error("write failed on", b->path);
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int file_bdev_read(vsm_bdev_io *io, void *buf, size_t len, uint64_t off)
{
	file_dev *b = dev_of(io);
	if (!b->dio.align)
		return plain_read(b, buf, len, off);
	if (vsm__filedio_read(b->fd, &b->dio, buf, len, off) < 0)
		return sys_error("read failed on", b->path);
	return 0;
}

static int ofd_lock(int fd, short type, uint64_t off, uint64_t len)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET,
		.l_start = (off_t)off, .l_len = (off_t)len,
	};

	while (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

/* Lock every block a write of [off, off+len) touches, on this handle
 * (threads) and on the file (other processes and hosts): a read-modify-
 * write of a partial block must not lose another writer's bytes. */
static int write_lock(file_dev *b, uint64_t off, size_t len, uint64_t *lo,
		      uint64_t *n)
{
	pthread_mutex_lock(&b->lock);
	if (b->dio.align)
		vsm__filedio_span(&b->dio, off, len, lo, n);
	else {
		*lo = off;
		*n = len;
	}
	if (ofd_lock(b->fd, F_WRLCK, *lo, *n) < 0) {
		int rc = sys_error("cannot lock range of", b->path);

		pthread_mutex_unlock(&b->lock);
		return rc;
	}
	return 0;
}

static void write_unlock(file_dev *b, uint64_t lo, uint64_t n)
{
	ofd_lock(b->fd, F_UNLCK, lo, n);
	pthread_mutex_unlock(&b->lock);
}

/* The write itself; for an O_DIRECT device, with write_lock() held. */
static int do_write(file_dev *b, const void *buf, size_t len, uint64_t off)
{
	if (!b->dio.align)
		return plain_write(b, buf, len, off);
	if (vsm__filedio_write(b->fd, &b->dio, buf, len, off) < 0)
		return sys_error("write failed on", b->path);
	return 0;
}

static int file_bdev_write(vsm_bdev_io *io, const void *buf, size_t len,
			   uint64_t off, unsigned int flags)
{
	file_dev *b = dev_of(io);
	uint64_t lo, n;
	int rc;

	/* A buffered device has one writer at a time (its owner): no lock. */
	if (!b->dio.align || len == 0)
		return plain_write(b, buf, len, off);
	if ((rc = write_lock(b, off, len, &lo, &n)) < 0)
		return rc;
	rc = do_write(b, buf, len, off);
	write_unlock(b, lo, n);
	return rc;
}

static int file_bdev_flush(vsm_bdev_io *io)
{
	file_dev *b = dev_of(io);
	if (fdatasync(b->fd) < 0)
		return sys_error("flush failed on", b->path);
	return 0;
}

static int file_bdev_size(vsm_bdev_io *io, uint64_t *out)
{
	file_dev *b = dev_of(io);
	struct stat st;

	if (fstat(b->fd, &st) < 0)
		return sys_error("cannot stat", b->path);
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(b->fd, 0, SEEK_END);

		if (end < 0)
			return sys_error("cannot size", b->path);
		*out = (uint64_t)end;
	} else {
		*out = (uint64_t)st.st_size;
	}
	return 0;
}

static int file_bdev_caw(vsm_bdev_io *io, const void *expected,
			 const void *buf, size_t len, uint64_t off)
{
	file_dev *b = dev_of(io);
	uint8_t *cur = malloc(len ? len : 1);
	uint64_t lo, n;
	int rc;

	if (!cur)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	if ((rc = write_lock(b, off, len ? len : 1, &lo, &n)) < 0)
		goto out;
	rc = file_bdev_read(&b->io, cur, len, off);
	if (rc == 0 && memcmp(cur, expected, len) != 0)
		rc = -VSM_EMISMATCH;
	if (rc == 0)
		rc = do_write(b, buf, len, off);
	write_unlock(b, lo, n);
out:
	free(cur);
	return rc;
}

static int file_bdev_discard(vsm_bdev_io *io, uint64_t off, uint64_t len)
{
	file_dev *b = dev_of(io);
	if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) < 0)
		return sys_error("cannot discard on", b->path);
	return 0;
}

static int file_bdev_query(vsm_bdev_io *io, vsm_bdev_caps *out)
{
	(void)io;
	out->flags = VSM_BDEV_CAP_COMPARE_AND_WRITE | VSM_BDEV_CAP_DISCARD;
	out->logical_block_size = 512;
	return 0;
}

static const struct vsm_bdev_io_ops file_io_ops = VSM_BDEV_IO_OPS_INIT(
	.close = file_bdev_close,
	.read = file_bdev_read,
	.write = file_bdev_write,
	.flush = file_bdev_flush,
	.get_size = file_bdev_size,
	.query = file_bdev_query,
	.compare_and_write = file_bdev_caw,
	.discard = file_bdev_discard,
);

uint32_t vsm__file_bdev_dio_align(const vsm_bdev_io *io)
{
	const file_dev *b = (const file_dev *)io;

	return b->dio.align;
}

unsigned long vsm__file_bdev_rmw_reads(const vsm_bdev_io *io)
{
	const file_dev *b = (const file_dev *)io;

	return b->dio.rmw_reads;
}

int vsm__file_bdev_dio_force_align(vsm_bdev_io *io, uint32_t align)
{
	file_dev *b = dev_of(io);

	if (!b->dio.align || align < b->dio.align || align % b->dio.align ||
	    (align & (align - 1)) || align > 65536)
		return vsm_error_set(VSM_EINVAL, "alignment %u does not fit '%s' (now %u)", align,
				     b->path, b->dio.align);
	b->dio.align = align;
	return 0;
}

const struct vsm_datastore_ops vsm__file_backend_ops = VSM_DATASTORE_OPS_INIT(
	.scheme = "file",
	.description = "directory of sparse image files",
	.open = file_open,
	.close = file_close,
	.capacity = file_capacity,
	.meta_open = file_meta_open,
	.device_create = file_device_create,
	.device_delete = file_device_delete,
	.device_resize = file_device_resize,
	.host_attach = file_host_attach,
	.host_detach = file_host_detach,
	.device_deploy = file_device_deploy,
	.device_undeploy = file_device_undeploy,
	.device_list = file_device_list,
	.device_open = file_device_open,
);
