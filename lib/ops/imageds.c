/*
 * The image API on datastores (include/vsm/image.h, Since 0.2): a
 * container's device or a golden image opened as a vsm_image through the
 * datastore's backend, and golden images copied onto (import) and off
 * (export) any datastore. Ops layer: it uses the engine's datastore calls
 * (vsm__ds_get, vsm__ds_open_device, the journal) and the qcow2 engine,
 * and decides what a caller may open read-write (see open_device_rw_ok).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vsm/image.h"
#include "cow.h"
#include "image_int.h"
#include "becall.h"
#include "ops.h"
#include "devimage.h"
#include "imgreg.h"
#include "lease.h"
#include "workflow.h"

#define COPY_CHUNK (4u << 20)

/* --- names --- */

static bool uuid_prefixed(const char *s)
{
	size_t i;

	if (strlen(s) < VSM_UUID_STRLEN)
		return false;
	for (i = 0; i < VSM_UUID_STRLEN; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}

/* A golden image's name: what every backend accepts as a device name
 * (the iSCSI backend's rule is the narrowest), never a path, and never
 * one of the names libvsm gives its own devices (a datastore check would
 * take an unreferenced one for an orphan). */
static int golden_name_check(const char *ds, const char *name)
{
	size_t i, n = name ? strlen(name) : 0;

	if (n == 0 || n > 64)
		goto bad;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			goto bad;
	}
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		goto bad;
	if (uuid_prefixed(name))
		return vsm_err(VSM_EINVAL, "datastore '%s': golden image name '%s' starts with a "
			       "UUID, which libvsm keeps for the devices of containers", ds, name);
	return 0;
bad:
	return vsm_err(VSM_EINVAL, "datastore '%s': golden image name '%s' is not 1-64 "
		       "characters of [A-Za-z0-9._-] (and not '.' or '..')", ds,
		       name ? name : "");
}

static int need_name(const char *what, const char *v)
{
	if (!v || !*v)
		return vsm_err(VSM_EINVAL, "image: %s name is empty", what);
	return 0;
}

/* Open flags of a datastore image: read-only unless RDWR is asked for. */
static int ds_open_flags(const vsm_image_open_opts *opts, const char *what, bool *rw,
			 unsigned int *cow_flags)
{
	unsigned int f = opts ? opts->flags : 0;

	if (opts && (opts->version == 0 || opts->version > VSM_IMAGE_OPEN_OPTS_VERSION))
		return vsm_err(VSM_EVERSION, "image '%s': open options version %u is unknown",
			       what, opts->version);
	if (f & ~(VSM_IMAGE_OPEN_RDONLY | VSM_IMAGE_OPEN_NO_BACKING | VSM_IMAGE_OPEN_RDWR |
		  VSM_IMAGE_OPEN_REPAIR))
		return vsm_err(VSM_EINVAL, "image '%s': unknown open flags 0x%x", what, f);
	if ((f & VSM_IMAGE_OPEN_RDONLY) && (f & VSM_IMAGE_OPEN_RDWR))
		return vsm_err(VSM_EINVAL, "image '%s': open flags RDONLY and RDWR exclude each "
			       "other", what);
	*rw = (f & VSM_IMAGE_OPEN_RDWR) != 0;
	*cow_flags = (*rw ? 0 : VSM_COW_RDONLY) | ((f & VSM_IMAGE_OPEN_NO_BACKING) ?
						    VSM_COW_NO_BACKING : 0) |
		     ((f & VSM_IMAGE_OPEN_REPAIR) ? VSM_COW_REPAIR : 0);
	return 0;
}

static int wrap_on_ds(vsm_image **out, vsm_dstore *ds, const char *key, const char *label,
		      const char *format, unsigned int cow_flags, uint64_t cache_max)
{
	vsm__image_wrap_opts o;
	vsm_bdev *b = NULL;
	int rc;

	rc = vsm__ds_open_device(ds, key, (cow_flags & VSM_COW_RDONLY) ? VSM_BDEV_RDONLY : 0, &b);
	if (rc < 0)
		return rc;
	memset(&o, 0, sizeof(o));
	o.name = label;
	o.format = format;
	o.cow_flags = cow_flags;
	o.cache_max = cache_max;
	o.open_backing = vsm__ds_backing_open;
	o.payload = ds;
	o.refuse = VSM__IMAGE_NO_COMMIT | VSM__IMAGE_NO_FLATTEN | VSM__IMAGE_NO_RESIZE;
	o.refuse_why = "it is on a datastore, whose records describe its chain and size "
		       "(use checkpoints and the container calls)";
	return vsm__image_wrap(out, b, &o);
}

/*
 * May this context write device @d of @r? Not while the container is
 * being destroyed, not while the device is deployed (a hypervisor may be
 * writing it), and, when the container is attached, only while this
 * context holds its lease (the fence re-acquires it for a host this state
 * directory acts for, as deploy does). A detached container has no owner.
 */
static int open_device_rw_ok(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r,
			     const char *device)
{
	const vsm_rec_deploy *dep;
	uint64_t lver = 0;
	int rc;

	if (r->destroying)
		return vsm_err(VSM_ESTATE, "datastore '%s': container '%s' is being destroyed",
			       ds->name, r->name);
	if ((dep = vsm_record_deploy(r, device)))
		return vsm_err(VSM_EBUSY, "datastore '%s': container '%s': device '%s' is deployed "
			       "on host '%s', where a hypervisor may be writing it; undeploy it "
			       "or open it read-only", ds->name, r->name, device,
			       dep->host ? dep->host : "?");
	if (!r->attached_host)
		return 0;
	if ((rc = vsm__lease_fence(ds->lease, r, &lver)) < 0) {
		/* The fence's own message names the container again; say it once. */
		return vsm_err(VSM_EBUSY, "datastore '%s': container '%s' is attached to host "
			       "'%s', whose lease this context does not hold; refusing to open "
			       "device '%s' read-write (detach it there, or open it read-only)",
			       ds->name, r->name, r->attached_host, device);
	}
	return 0;
}

VSM_API int vsm_image_open_device(vsm_image **out, vsm_ctx *ctx, const char *datastore,
				  const char *container, const char *device,
				  const vsm_image_open_opts *opts)
{
	const vsm_rec_device *d;
	vsm_dstore *ds = NULL;
	vsm_record *r = NULL;
	unsigned int cow_flags = 0;
	char *label = NULL;
	bool rw = false;
	int rc;

	vsm__error_reset();
	if (!out || !ctx)
		return vsm_err(VSM_EINVAL, "vsm_image_open_device: out and ctx are required");
	if ((rc = need_name("datastore", datastore)) < 0 ||
	    (rc = need_name("container", container)) < 0 ||
	    (rc = need_name("device", device)) < 0)
		return rc;
	if (asprintf(&label, "%s/%s:%s", datastore, container, device) < 0)
		return vsm_err(VSM_ENOMEM, "out of memory");
	if ((rc = ds_open_flags(opts, label, &rw, &cow_flags)) < 0)
		goto out_free;
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, datastore)) < 0 || (rc = vsm__ds_refresh(ctx, ds)) < 0 ||
	    (rc = vsm__ds_find_name(ds, container, &r)) < 0)
		goto out;
	if (!(d = vsm_record_device(r, device))) {
		rc = vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' has no device '%s'",
			     datastore, container, device);
		goto out;
	}
	if (opts && opts->format && strcmp(opts->format, vsm_format_name(d->format))) {
		rc = vsm_err(VSM_EINVAL, "image '%s': the device is %s, not %s", label,
			     vsm_format_name(d->format), opts->format);
		goto out;
	}
	if (rw && (rc = open_device_rw_ok(ctx, ds, r, device)) < 0)
		goto out;
	rc = wrap_on_ds(out, ds, d->key, label, vsm_format_name(d->format), cow_flags,
			opts ? opts->cache_max : 0);
	/* A writer that died left the tracking bitmap in use: rebuild it
	 * before this one writes (doc/backup.md). */
	if (rc == 0 && rw && (rc = vsm__dev_cbt_repair(vsm__image_cow(*out))) != 0) {
		if (rc > 0) {
			vsm__log(ctx, VSM_LOG_WARN, "%s: the changed-block bitmap its last "
				 "writer left in use was rebuilt from the layer's allocation", label);
			rc = 0;
		} else {
			vsm__image_drop(*out);
			*out = NULL;
		}
	}
	/* Known to the context, for a live migration of the container
	 * (still under the context's lock: none can switch it meanwhile). */
	if (rc == 0 && (rc = vsm__imgreg_add(ctx, *out, datastore, r->uuid, device)) < 0) {
		vsm__image_drop(*out);
		*out = NULL;
	}
out:
	vsm__ctx_unlock(ctx);
out_free:
	free(label);
	return rc;
}

static bool same_image(const char *ref, const char *key, const char *name)
{
	const char *slash;

	if (!ref)
		return false;
	if (!strcmp(ref, key) || !strcmp(ref, name))
		return true;
	/* Keys such as the iSCSI backend's "lun<N>/<name>" name it too. */
	slash = strrchr(ref, '/');
	return slash && !strcmp(slash + 1, name);
}

/* The first container on @ds whose record reads the image @name, or NULL. */
static const vsm_record *golden_user(vsm_dstore *ds, const char *name)
{
	size_t i, j, k;

	for (i = 0; i < ds->n_recs; i++) {
		const vsm_record *r = ds->recs[i];

		for (j = 0; j < r->n_devices; j++) {
			if (same_image(r->devices[j].key, name, name))
				return r;
			for (k = 0; k < r->devices[j].chain_len; k++)
				if (same_image(r->devices[j].chain[k].key, name, name))
					return r;
		}
		for (j = 0; j < r->n_layers; j++)
			if (same_image(r->layers[j].key, name, name) ||
			    same_image(r->layers[j].backing, name, name))
				return r;
		if (same_image(r->state_key, name, name))
			return r;
	}
	return NULL;
}

static int open_golden(vsm_image **out, vsm_ctx *ctx, const char *datastore,
		       const char *name, bool rw, unsigned int cow_flags, const char *format,
		       uint64_t cache_max)
{
	const vsm_record *user;
	vsm_dstore *ds = NULL;
	char *label = NULL;
	int rc;

	if ((rc = need_name("datastore", datastore)) < 0 ||
	    (rc = golden_name_check(datastore, name)) < 0)
		return rc;
	if (asprintf(&label, "%s:%s", datastore, name) < 0)
		return vsm_err(VSM_ENOMEM, "out of memory");
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, datastore)) < 0)
		goto out;
	if (rw) {
		if ((rc = vsm__ds_refresh(ctx, ds)) < 0)
			goto out;
		if ((user = golden_user(ds, name))) {
			rc = vsm_err(VSM_EBUSY, "datastore '%s': golden image '%s' is read by "
				     "container '%s'; refusing to open it read-write", datastore,
				     name, user->name);
			goto out;
		}
	}
	rc = wrap_on_ds(out, ds, name, label, format, cow_flags, cache_max);
out:
	vsm__ctx_unlock(ctx);
	free(label);
	return rc;
}

VSM_API int vsm_image_open_golden(vsm_image **out, vsm_ctx *ctx, const char *datastore,
				  const char *name, const vsm_image_open_opts *opts)
{
	unsigned int cow_flags = 0;
	bool rw = false;
	int rc;

	vsm__error_reset();
	if (!out || !ctx)
		return vsm_err(VSM_EINVAL, "vsm_image_open_golden: out and ctx are required");
	if ((rc = ds_open_flags(opts, name ? name : "", &rw, &cow_flags)) < 0)
		return rc;
	return open_golden(out, ctx, datastore, name, rw, cow_flags, opts ? opts->format : NULL,
			   opts ? opts->cache_max : 0);
}

/* --- copying --- */

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/*
 * Copy what @src reads (through its chain) into @dst, @gran bytes at a
 * time for the zero test. Zero and unallocated ranges are skipped unless
 * @zero_fill (a raw target on a device that may hold old data), which
 * writes zeros there and up to @dst's end.
 */
static int copy_image(vsm_cow *src, vsm_cow *dst, uint32_t gran, bool zero_fill)
{
	uint64_t size = vsm_cow_size(src), dsize = vsm_cow_size(dst), off = 0, pnum;
	vsm_cow_status st;
	uint8_t *buf = malloc(COPY_CHUNK);
	int rc = 0;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	while (off < size && rc == 0) {
		uint64_t len = size - off < COPY_CHUNK ? size - off : COPY_CHUNK, p = 0, run = 0;

		if ((rc = vsm_cow_block_status(src, off, len, &pnum, &st)) < 0)
			break;
		if (!st.data) {
			if (zero_fill)
				rc = vsm_cow_write_zeroes(dst, off, pnum, false);
			off += pnum;
			continue;
		}
		if ((rc = vsm_cow_read(src, buf, pnum, off)) < 0)
			break;
		/* Zero grains are skipped; the grains between them go out as one write. */
		while (rc == 0 && p < pnum) {
			uint64_t step = gran - ((off + p) % gran);

			if (step > pnum - p)
				step = pnum - p;
			if (!all_zero(buf + p, (size_t)step)) {
				run += step;
			} else {
				if (run)
					rc = vsm_cow_write(dst, buf + p - run, run, off + p - run);
				run = 0;
				if (rc == 0 && zero_fill)
					rc = vsm_cow_write_zeroes(dst, off + p, step, false);
			}
			p += step;
		}
		if (rc == 0 && run)
			rc = vsm_cow_write(dst, buf + p - run, run, off + p - run);
		off += pnum;
	}
	if (rc == 0 && zero_fill && dsize > size)
		rc = vsm_cow_write_zeroes(dst, size, dsize - size, false);
	if (rc == 0)
		rc = vsm_cow_flush(dst);
	free(buf);
	return rc;
}

static int pick_format(const vsm_image_convert_opts *opts, vsm_cow *src, const char *what,
		       const char **format, uint32_t *cluster)
{
	vsm_cow_info info;
	int rc;

	if (opts && (opts->version == 0 || opts->version > VSM_IMAGE_CONVERT_OPTS_VERSION))
		return vsm_err(VSM_EVERSION, "%s: options version %u is unknown", what,
			       opts->version);
	if ((rc = vsm_cow_get_info(src, &info)) < 0)
		return rc;
	if (opts && opts->format) {
		if (strcmp(opts->format, "raw") && strcmp(opts->format, "qcow2"))
			return vsm_err(VSM_EINVAL, "%s: format '%s' is not raw or qcow2", what,
				       opts->format);
		*format = !strcmp(opts->format, "raw") ? "raw" : "qcow2";
	} else {
		*format = info.format == VSM_COW_QCOW2 ? "qcow2" : "raw";
	}
	*cluster = opts && opts->cluster_size ? opts->cluster_size :
		   info.format == VSM_COW_QCOW2 && !strcmp(*format, "qcow2") ? info.cluster_size : 0;
	return 0;
}

VSM_API int vsm_image_import(vsm_ctx *ctx, const char *datastore, const char *name,
			     const char *path, const vsm_image_convert_opts *opts,
			     unsigned int flags)
{
	vsm_image_open_opts so = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *src = NULL, *dst = NULL;
	vsm__image_wrap_opts wo;
	char key[VSM_BACKEND_KEY_MAX], *label = NULL;
	const char *format;
	vsm_dstore *ds = NULL;
	vsm_bdev *b = NULL;
	uint32_t cluster;
	uint64_t size;
	vsm_wf wf;
	bool began = false;
	int rc;

	vsm__error_reset();
	if (!ctx || !path)
		return vsm_err(VSM_EINVAL, "vsm_image_import: ctx and path are required");
	if ((rc = need_name("datastore", datastore)) < 0 ||
	    (rc = golden_name_check(datastore, name)) < 0)
		return rc;
	if (flags)
		return vsm_err(VSM_EINVAL, "datastore '%s': unknown import flags 0x%x", datastore,
			       flags);
	if (asprintf(&label, "%s:%s", datastore, name) < 0)
		return vsm_err(VSM_ENOMEM, "out of memory");
	so.flags = VSM_IMAGE_OPEN_RDONLY;
	if ((rc = vsm_image_open(&src, path, &so)) < 0)
		goto out_free;
	if ((rc = pick_format(opts, vsm__image_cow(src), label, &format, &cluster)) < 0)
		goto out_free;
	size = vsm_image_size(src);
	if (size == 0) {
		rc = vsm_err(VSM_EINVAL, "image '%s' is empty: nothing to import", path);
		goto out_free;
	}
	vsm__ctx_lock(ctx);
	if ((rc = vsm__ds_get(&ds, ctx, datastore)) < 0)
		goto out;
	/* An image of that name is refused before the journal is involved:
	 * its undo step deletes the device by name. */
	rc = vsm__ds_open_device(ds, name, VSM_BDEV_RDONLY, &b);
	if (rc == 0) {
		vsm_bdev_close(b);
		b = NULL;
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': golden image '%s' already exists",
			     datastore, name);
		goto out;
	}
	if (rc != -VSM_ENOTFOUND)
		goto out;
	vsm__error_reset();
	b = NULL;
	if ((rc = vsm__wf_begin(&wf, ctx, "image_import", datastore, name)) < 0)
		goto out;
	began = true;
	/* The journal deletes the device if the copy does not finish. The
	 * engine formats a qcow2 device with its default cluster size. */
	(void)cluster;
	rc = vsm__dev_create(&wf, VSM_WF_DEVICE_DELETE, ds, name, size, format, NULL, NULL,
			     0, key);
	if (rc == -VSM_EEXISTS) {
		/* Another host made one of that name meanwhile: nothing of
		 * ours to undo, and the undo step would delete theirs. */
		vsm__saved_error e;

		vsm__error_save(&e);
		vsm__wf_end(&wf);
		vsm__error_restore(&e);
		began = false;
	}
	if (rc < 0)
		goto out;
	if ((rc = vsm__ds_open_device(ds, key, 0, &b)) < 0)
		goto out;
	memset(&wo, 0, sizeof(wo));
	wo.name = label;
	wo.format = format;
	wo.open_backing = vsm__ds_backing_open;
	wo.payload = ds;
	if ((rc = vsm__image_wrap(&dst, b, &wo)) < 0)
		goto out;
	if (vsm_cow_size(vsm__image_cow(dst)) < size) {
		rc = vsm_err(VSM_ENOSPC, "image '%s': the device holds %llu bytes, not the %llu "
			     "of '%s'", label, (unsigned long long)vsm_cow_size(vsm__image_cow(dst)),
			     (unsigned long long)size, path);
		goto out;
	}
	if ((rc = copy_image(vsm__image_cow(src), vsm__image_cow(dst), 4096,
			     !strcmp(format, "raw"))) < 0)
		goto out;
	rc = vsm_image_close(dst);
	dst = NULL;
	if (rc == 0)
		rc = vsm__wf_end(&wf);
	if (rc == 0)
		vsm__log(ctx, VSM_LOG_INFO, "datastore '%s': imported '%s' as golden image '%s' "
			 "(%s, key '%s')", datastore, path, name, format, key);
out:
	vsm__image_drop(dst);
	if (rc < 0 && began)
		vsm__wf_abort(&wf);
	vsm__ctx_unlock(ctx);
out_free:
	if (rc < 0)
		vsm__image_drop(src);
	else
		rc = vsm_image_close(src);
	free(label);
	return rc;
}

VSM_API int vsm_image_export(vsm_ctx *ctx, const char *datastore, const char *name,
			     const char *path, const vsm_image_convert_opts *opts,
			     unsigned int flags)
{
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *src = NULL, *dst = NULL;
	const char *format;
	uint32_t cluster;
	uint64_t size;
	struct stat st;
	bool made = false;
	int rc;

	vsm__error_reset();
	if (!ctx || !path)
		return vsm_err(VSM_EINVAL, "vsm_image_export: ctx and path are required");
	if (flags)
		return vsm_err(VSM_EINVAL, "datastore '%s': unknown export flags 0x%x",
			       datastore ? datastore : "", flags);
	if ((rc = open_golden(&src, ctx, datastore, name, false, VSM_COW_RDONLY, NULL, 0)) < 0)
		return rc;
	if ((rc = pick_format(opts, vsm__image_cow(src), path, &format, &cluster)) < 0)
		goto out;
	if (lstat(path, &st) == 0) {
		rc = vsm_err(VSM_EEXISTS, "image '%s' already exists", path);
		goto out;
	}
	size = vsm_image_size(src);
	if (!strcmp(format, "qcow2")) {
		vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;

		co.size = size;
		co.cluster_size = cluster;
		if ((rc = vsm_image_create(path, &co, 0)) < 0)
			goto out;
	} else {
		vsm_bdev *b = NULL;
		uint8_t z = 0;

		if ((rc = vsm_bdev_open_path(&b, path, VSM_BDEV_CREATE)) < 0)
			goto out;
		rc = size ? vsm_bdev_write(b, &z, 1, size - 1) : 0;
		vsm_bdev_close(b);
	}
	made = true;
	oo.format = format;
	if (rc == 0)
		rc = vsm_image_open(&dst, path, &oo);
	if (rc == 0)
		rc = copy_image(vsm__image_cow(src), vsm__image_cow(dst),
				cluster ? cluster : 65536, false);
	if (dst) {
		if (rc == 0)
			rc = vsm_image_close(dst);
		else
			vsm__image_drop(dst);
	}
out:
	if (rc < 0 && made)
		unlink(path);
	vsm__image_drop(src);
	return rc;
}
