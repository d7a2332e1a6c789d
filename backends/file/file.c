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

#include "file.h"
#include "../common/diskxml.h"
#include "../common/fileuri.h"

#define META_DIR ".vsm"
#define META_FILE ".vsm/meta"

struct vsm_backend_ds {
	char *dir;  /* absolute, no trailing slash */
	char *name; /* datastore name for messages */
};

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

static int file_device_allocated(vsm_backend_ds *ds, const char *key, uint64_t *bytes)
{
	struct stat st;
	char *path;
	int rc;

	if ((rc = check_key(ds, key)) < 0)
		return rc;
	if (!(path = ds_path(ds, key)))
		return -VSM_ENOMEM;
	if (stat(path, &st) < 0) {
		rc = sys_error("cannot stat device", path);
	} else {
		/* st_blocks counts 512-byte units whatever the block size. */
		*bytes = (uint64_t)st.st_blocks * 512;
	}
	free(path);
	return rc;
}

static int file_meta_open(vsm_bdev_io **out, vsm_backend_ds *ds,
			  uint64_t min_size, unsigned int flags)
{
	char *dir = ds_path(ds, META_DIR), *path = ds_path(ds, META_FILE);
	struct stat st;
	int rc;

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
	/* Other hosts read the metadata: past this host's page cache. */
	if ((rc = vsm_file_bdev_open(out, path, (flags & (VSM_BDEV_RDONLY | VSM_BDEV_CREATE)) |
				     VSM_BDEV_DIRECT)) < 0)
		goto out;
	if ((flags & VSM_BDEV_CREATE) && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size < min_size && truncate(path, (off_t)min_size) < 0) {
		rc = sys_error("cannot size", path);
		(*out)->ops->close(*out);
		*out = NULL;
	}
out:
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
	rc = vsm_file_bdev_open(out, path, flags & VSM_BDEV_RDONLY);
	free(path);
	return rc;
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
	.device_allocated = file_device_allocated,
);
