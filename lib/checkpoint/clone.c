/*
 * vsm_checkpoint_clone: a new container from a checkpoint, linked (new
 * tops over its layers) or full (copies), with a copy of its state blob.
 */
#include <stdlib.h>
#include <time.h>

#include "ckpt.h"
#include "steps.h"

#define DEFAULT_STATE_SIZE (4u << 20)

static int copy_blob(vsm_dstore *ds, const char *from, const char *to, uint64_t size)
{
	vsm_bdev *a = NULL, *b = NULL;
	uint8_t *buf = NULL;
	uint64_t off = 0;
	int rc;

	if ((rc = vsm__ds_open_device(ds, from, VSM_BDEV_RDONLY, &a)) < 0 ||
	    (rc = vsm__ds_open_device(ds, to, 0, &b)) < 0)
		goto out;
	if (!(buf = malloc(CK_BUF))) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	while (off < size && rc == 0) {
		size_t n = size - off < CK_BUF ? (size_t)(size - off) : CK_BUF;

		if ((rc = vsm_bdev_read(a, buf, n, off)) == 0)
			rc = vsm_bdev_write(b, buf, n, off);
		off += n;
	}
	if (rc == 0)
		rc = vsm_bdev_flush(b);
out:
	free(buf);
	if (a)
		vsm_bdev_close(a);
	if (b)
		vsm_bdev_close(b);
	return rc;
}

/* Copy what layer @src (of vsm_format @format, with its chain) reads
 * into the new qcow2 device @dst. */
static int full_copy(vsm_dstore *ds, const char *src, int format, const char *dst)
{
	vsm_cow *s = NULL, *d = NULL;
	int rc;

	if ((rc = ck_cow_open(&s, ds, src, format, true, false)) < 0)
		return rc;
	if ((rc = ck_cow_open(&d, ds, dst, VSM_FORMAT_QCOW2, false, false)) == 0) {
		rc = ck_copy_view(s, d, NULL);
		if (vsm_cow_close(d) < 0 && rc == 0)
			rc = -vsm__error_code();
	}
	vsm_cow_close(s);
	return rc;
}

VSM_API int vsm_checkpoint_clone(vsm_container **out, vsm_container *src,
				 const char *checkpoint, const char *name, unsigned int flags)
{
	char key[VSM_BACKEND_KEY_MAX], dev_name[VSM_BACKEND_KEY_MAX];
	const vsm_rec_checkpoint *cp;
	vsm_record *r = NULL, *n = NULL;
	vsm_container *h = NULL;
	bool full = flags & VSM_CLONE_FULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	vsm_ctx *ctx;
	size_t i;
	int rc;

	vsm__error_reset();
	if (!src || !checkpoint)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_clone: NULL argument");
	if (flags & ~VSM_CLONE_FULL)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_clone: unknown flags 0x%x", flags);
	if ((rc = vsm__name_check("container", name)) < 0)
		return rc;
	ctx = vsm__container_ctx(src);
	vsm__ctx_lock(ctx);
	if ((rc = ck_fresh(src, &ds, &r)) < 0)
		goto out;
	if (!(cp = ck_find(r, checkpoint))) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name,
			     checkpoint);
		goto out;
	}
	if (vsm__ds_find(ds, name, NULL)) {
		rc = vsm_err(VSM_EEXISTS, "datastore '%s': container '%s' already exists", ds->name,
			     name);
		goto out;
	}
	if (!(n = vsm__calloc(1, sizeof(*n))) ||
	    !(n->devices = vsm__calloc(r->n_devices, sizeof(*n->devices))) ||
	    !(n->name = vsm__strdup(name))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	vsm__uuid_new(n->uuid);
	n->ctime = (int64_t)time(NULL);
	n->state_size = cp->state_key && cp->state_size > DEFAULT_STATE_SIZE ? cp->state_size :
			DEFAULT_STATE_SIZE;
	if ((rc = vsm__wf_begin(&wf, ctx, "checkpoint-clone", ds->name, name)) < 0)
		goto out;
	for (i = 0; i < r->n_devices; i++) {
		const char *base = ck_layer_for(cp, r->devices[i].name);
		const vsm_rec_frozen *l = ck_layer(r, base);
		vsm_rec_device *d = &n->devices[i];

		n->n_devices = i + 1;
		d->size = r->devices[i].size;
		d->format = VSM_FORMAT_QCOW2;
		if (!base || !l) {
			rc = vsm_err(VSM_ECORRUPT, "container '%s': checkpoint '%s' has no layer for "
				     "device '%s'", r->name, checkpoint, r->devices[i].name);
			goto abort;
		}
		if (!(d->name = vsm__strdup(r->devices[i].name)) || !(d->key = vsm__strdup(""))) {
			rc = -VSM_ENOMEM;
			goto abort;
		}
		ck_name(dev_name, sizeof(dev_name), n->uuid, d->name, "qcow2");
		if ((rc = ck_device_create(&wf, ds, dev_name, d->size, "qcow2", full ? NULL : base,
					   l->format, key)) < 0)
			goto abort;
		if (full) {
			free(d->key);
			if (!(d->key = vsm__strdup(key))) {
				rc = -VSM_ENOMEM;
				goto abort;
			}
			if ((rc = full_copy(ds, base, l->format, key)) < 0)
				goto abort;
		} else if ((rc = ck_set_top(r, d, key, base)) < 0 ||
			   (rc = ck_table_copy(n, r, base)) < 0) {
			goto abort;
		}
	}
	ck_name(dev_name, sizeof(dev_name), n->uuid, "state", "raw");
	if ((rc = ck_device_create(&wf, ds, dev_name, n->state_size, "raw", NULL, 0, key)) < 0 ||
	    !(n->state_key = vsm__strdup(key))) {
		rc = rc < 0 ? rc : -VSM_ENOMEM;
		goto abort;
	}
	if (cp->state_key && (rc = copy_blob(ds, cp->state_key, key, cp->state_size)) < 0)
		goto abort;
	/* The name is claimed under the datastore's metadata lock (of two
	 * hosts cloning to it at once, one gets EEXISTS and rolls back); until
	 * the journal forgets the step, a failure (or the next context)
	 * releases it: that is the commit point. */
	if ((rc = vsm__wf_undo(&wf, VSM_WF_UUID_FREE, n->uuid)) < 0 ||
	    (rc = vsm__ds_insert_record(ctx, ds, n)) < 0 ||
	    (out && (rc = vsm__container_new(&h, ctx, ds->name, n)) < 0) ||
	    (rc = vsm__wf_end(&wf)) < 0)
		goto abort;
	vsm__log(ctx, VSM_LOG_INFO, "container '%s': %s clone '%s' of checkpoint '%s'", r->name,
		 full ? "full" : "linked", name, checkpoint);
	if (out) {
		*out = h;
		h = NULL;
	}
	goto out;
abort:
	vsm__wf_abort(&wf);
out:
	vsm_container_free(h);
	vsm_record_free(n);
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}
