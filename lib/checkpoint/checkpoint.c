/*
 * Checkpoints of a container: create, list, revert, delete, clone, and
 * the VM-state blobs. The tree lives in the container record (see
 * doc/checkpoints.md); every change of it is one atomic record write,
 * with the devices made before it journalled so that a crash on either
 * side of that write ends consistent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "becall.h"
#include "ckpt.h"
#include "cow.h"
#include "devimage.h"
#include "vsm/checkpoint.h"

#define CK_BUF (1u << 20)
#define DEFAULT_STATE_SIZE (4u << 20)

struct vsm_checkpoint {
	char *name;
	char *parent;
	int64_t ctime;
	uint64_t state_size;
	bool current;
	size_t n;
	char **dev, **key, **cid;
	uint64_t *size;
};

/* --- handles --- */

VSM_API void vsm_checkpoint_free(vsm_checkpoint *cp)
{
	size_t i;

	if (!cp)
		return;
	for (i = 0; i < cp->n; i++) {
		free(cp->dev[i]);
		free(cp->key[i]);
		free(cp->cid[i]);
	}
	free(cp->dev);
	free(cp->key);
	free(cp->cid);
	free(cp->size);
	free(cp->name);
	free(cp->parent);
	free(cp);
}

VSM_API void vsm_checkpoint_list_free(vsm_checkpoint **list, size_t count)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < count; i++)
		vsm_checkpoint_free(list[i]);
	free(list);
}

static int handle_new(vsm_checkpoint **out, vsm_dstore *ds, const vsm_record *r,
		      const vsm_rec_checkpoint *c)
{
	vsm_checkpoint *cp = vsm__calloc(1, sizeof(*cp));
	size_t i;
	int rc;

	if (!cp)
		return -VSM_ENOMEM;
	cp->ctime = c->ctime;
	cp->state_size = c->state_key ? c->state_size : 0;
	cp->current = r->ckpt_current && !strcmp(r->ckpt_current, c->name);
	if (!(cp->name = vsm__strdup(c->name)) || (c->parent && !(cp->parent = vsm__strdup(c->parent))) ||
	    !(cp->dev = vsm__calloc(c->n_layers, sizeof(char *))) ||
	    !(cp->key = vsm__calloc(c->n_layers, sizeof(char *))) ||
	    !(cp->cid = vsm__calloc(c->n_layers, sizeof(char *))) ||
	    !(cp->size = vsm__calloc(c->n_layers, sizeof(uint64_t)))) {
		vsm_checkpoint_free(cp);
		return -VSM_ENOMEM;
	}
	for (i = 0; i < c->n_layers; i++) {
		const vsm_rec_frozen *l = ck_layer(r, c->layers[i].key);

		cp->n = i + 1;
		if (!(cp->dev[i] = vsm__strdup(c->layers[i].device)) ||
		    !(cp->key[i] = vsm__strdup(c->layers[i].key)) ||
		    (l && l->cid && !(cp->cid[i] = vsm__strdup(l->cid)))) {
			vsm_checkpoint_free(cp);
			return -VSM_ENOMEM;
		}
		if ((rc = ck_layer_alloc(ds, c->layers[i].key, &cp->size[i])) < 0) {
			vsm_checkpoint_free(cp);
			return rc;
		}
	}
	*out = cp;
	return 0;
}

VSM_API const char *vsm_checkpoint_name(const vsm_checkpoint *cp)
{
	return cp ? cp->name : NULL;
}

VSM_API const char *vsm_checkpoint_parent(const vsm_checkpoint *cp)
{
	return cp ? cp->parent : NULL;
}

VSM_API int64_t vsm_checkpoint_ctime(const vsm_checkpoint *cp)
{
	return cp ? cp->ctime : 0;
}

VSM_API uint64_t vsm_checkpoint_state_size(const vsm_checkpoint *cp)
{
	return cp ? cp->state_size : 0;
}

VSM_API int vsm_checkpoint_is_current(const vsm_checkpoint *cp)
{
	return cp && cp->current;
}

VSM_API size_t vsm_checkpoint_layer_count(const vsm_checkpoint *cp)
{
	return cp ? cp->n : 0;
}

VSM_API const char *vsm_checkpoint_layer_device(const vsm_checkpoint *cp, size_t i)
{
	return cp && i < cp->n ? cp->dev[i] : NULL;
}

VSM_API const char *vsm_checkpoint_layer_key(const vsm_checkpoint *cp, size_t i)
{
	return cp && i < cp->n ? cp->key[i] : NULL;
}

VSM_API const char *vsm_checkpoint_layer_cid(const vsm_checkpoint *cp, size_t i)
{
	return cp && i < cp->n ? cp->cid[i] : NULL;
}

VSM_API uint64_t vsm_checkpoint_layer_size(const vsm_checkpoint *cp, size_t i)
{
	return cp && i < cp->n ? cp->size[i] : 0;
}

/* --- shared steps --- */

/* The container's datastore and a private copy of its current record. */
static int fresh(vsm_container *c, vsm_dstore **ds, vsm_record **out)
{
	vsm_ctx *ctx = vsm__container_ctx(c);
	vsm_record *r;
	int rc;

	if ((rc = vsm__ds_get(ds, ctx, vsm_container_datastore(c))) < 0 ||
	    (rc = vsm__ds_refresh(ctx, *ds)) < 0)
		return rc;
	if (!(r = vsm__ds_find(*ds, NULL, vsm_container_uuid(c))))
		return vsm_err(VSM_ENOTFOUND, "datastore '%s': container '%s' no longer exists",
			       vsm_container_datastore(c), vsm_container_name(c));
	if (r->destroying)
		return vsm_err(VSM_ESTATE, "container '%s' is being destroyed", r->name);
	if (!(*out = vsm_record_dup(r)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	return 0;
}

/* Deployed devices: refused, or (the VM being stopped) undeployed now
 * and listed in @saved to deploy again afterwards: pairs of device name
 * and the domain it was hot-plugged into (or NULL). */
static int undeploy_for(vsm_container *c, unsigned int flags, char ***saved, size_t *n_saved)
{
	vsm_dstore *ds;
	vsm_record *r = NULL;
	size_t i;
	int rc;

	*saved = NULL;
	*n_saved = 0;
	if ((rc = fresh(c, &ds, &r)) < 0)
		return rc;
	if (!r->n_deploys) {
		vsm_record_free(r);
		return 0;
	}
	if (!(flags & VSM_CHECKPOINT_STOPPED)) {
		rc = vsm_err(VSM_EBUSY, "container '%s': device '%s' is deployed; stop the VM "
			     "and say so (VSM_CHECKPOINT_STOPPED), or undeploy it", r->name,
			     r->deploys[0].device);
		vsm_record_free(r);
		return rc;
	}
	if (!(*saved = vsm__calloc(2 * r->n_deploys, sizeof(char *)))) {
		vsm_record_free(r);
		return -VSM_ENOMEM;
	}
	for (i = 0; i < r->n_deploys; i++) {
		const char *dom = r->deploys[i].domain;

		if (!((*saved)[2 * i] = vsm__strdup(r->deploys[i].device)) ||
		    (dom && !((*saved)[2 * i + 1] = vsm__strdup(dom)))) {
			free((*saved)[2 * i]);
			rc = -VSM_ENOMEM;
			break;
		}
		*n_saved = i + 1;
	}
	vsm_record_free(r);
	for (i = 0; rc == 0 && i < *n_saved; i++)
		rc = vsm_device_undeploy(c, (*saved)[2 * i], 0);
	return rc;
}

static void redeploy(vsm_container *c, char **saved, size_t n)
{
	vsm__saved_error err;
	size_t i;

	vsm__error_save(&err);
	for (i = 0; i < n; i++) {
		vsm_deploy_opts o = VSM_DEPLOY_OPTS_INIT;

		o.domain = saved[2 * i + 1];
		if (vsm_device_deploy(NULL, c, saved[2 * i], &o) < 0)
			vsm__log(vsm__container_ctx(c), VSM_LOG_WARN, "container '%s': could not "
				 "deploy device '%s' again: %s", vsm_container_name(c), saved[2 * i],
				 vsm_error_last()->message);
		free(saved[2 * i]);
		free(saved[2 * i + 1]);
	}
	free(saved);
	vsm__error_restore(&err);
}

/*
 * Commit points. Create, revert and delete each change the container in
 * one record write: before it, a failure undoes what was made (the
 * journal's undo steps delete only devices no record on the datastore
 * names, so they are right on either side of the write); after it, the
 * call has happened and only finishes forward, logging what it could
 * not tidy (a leftover journal entry, a merge left for later) and
 * reporting success. Clone adds a record with its slot journalled for
 * release: its commit point is forgetting that journal entry.
 */

static void warn(vsm_ctx *ctx, const char *what)
{
	vsm__log(ctx, VSM_LOG_WARN, "%s%s%s", what ? what : "", what ? ": " : "",
		 vsm_error_last() ? vsm_error_last()->message : "?");
	vsm__error_reset();
}

/* Is @r what the slot holds (but for the lease version, which the write
 * may have fenced)? */
static bool on_datastore(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r)
{
	vsm_record *disk = NULL, *want = NULL;
	char *a = NULL, *b = NULL;
	bool same = false;

	if (vsm__ds_read_record(ctx, ds, r->slot, r->uuid, &disk) == 0 &&
	    (want = vsm_record_dup(r))) {
		want->lease_version = disk->lease_version;
		same = vsm_record_encode(&a, want) == 0 && vsm_record_encode(&b, disk) == 0 &&
		       !strcmp(a, b);
	}
	free(a);
	free(b);
	vsm_record_free(want);
	vsm_record_free(disk);
	return same;
}

/* The record write of create, revert and delete. A write reported as
 * failed may still have reached the datastore (its completion lost, or
 * the generation bump after it failed): then the slot decides, and a
 * record that is there is committed. 0: committed. */
static int commit_record(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r)
{
	vsm__saved_error err;
	int rc = vsm__ds_put_record(ctx, ds, r);

	if (rc == 0)
		return 0;
	vsm__error_save(&err);
	if (!on_datastore(ctx, ds, r)) {
		vsm__error_restore(&err);
		return rc;
	}
	vsm__error_restore(&err);
	vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': container '%s': the record reached the "
		 "datastore although writing it failed (%s)", ds->name, r->name,
		 vsm_error_last()->message);
	vsm__error_reset();
	ds->gen = 0; /* the cache may have missed it: rescan */
	return 0;
}

/* After a commit point: forget the journal entry, or leave it for the
 * next context to finish (its steps only delete what no record names). */
static void wf_finish(vsm_ctx *ctx, vsm_wf *wf, bool tidy)
{
	if (!tidy) {
		vsm__log(ctx, VSM_LOG_WARN, "workflow %lld stays in the journal; the next "
			 "context to open the datastore finishes it", (long long)wf->id);
		return;
	}
	if (vsm__wf_end(wf) < 0)
		warn(ctx, "the journal keeps a finished workflow (the next context to open the "
		     "datastore forgets it)");
}

/* The handle shows the datastore's state, or (logged) the state the
 * call committed. */
static void refresh_or_warn(vsm_container *c)
{
	if (vsm_container_refresh(c) < 0)
		warn(vsm__container_ctx(c), "container handle not refreshed");
}

#define STATE_UNKNOWN UINT64_MAX
#define STATE_FIRST (64u << 20)

/* Stream a blob from fd or callback into a new raw device; sets its
 * checksum. *@size may be STATE_UNKNOWN: then the source is read to its
 * end, the device grows as needed, and *@size becomes the length. */
static int state_in(vsm_wf *wf, vsm_dstore *ds, const char *uuid, int fd,
		    vsm_state_read_fn fn, void *payload, uint64_t *size,
		    char key[VSM_BACKEND_KEY_MAX], uint64_t *sum_out)
{
	char name[VSM_BACKEND_KEY_MAX];
	uint8_t *buf = NULL, extra;
	vsm_bdev *b = NULL;
	bool unknown = *size == STATE_UNKNOWN;
	uint64_t done = 0, cap = unknown ? STATE_FIRST : *size;
	ck_sum sum;
	int rc;

	ck_name(name, sizeof(name), uuid, "state", "raw");
	if ((rc = ck_device_create(wf, ds, name, cap ? cap : 1, "raw", NULL, 0, key)) < 0 ||
	    (rc = vsm__ds_open_device(ds, key, 0, &b)) < 0)
		return rc;
	if (!(buf = malloc(CK_BUF))) {
		vsm_bdev_close(b);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	ck_sum_init(&sum);
	while (unknown || done < *size) {
		size_t want = unknown || *size - done >= CK_BUF ? CK_BUF : (size_t)(*size - done);
		size_t got = 0;

		if (fd >= 0) {
			ssize_t n = read(fd, buf, want);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = vsm_err(VSM_EIO, "reading the state blob: %s", strerror(errno));
				break;
			}
			got = (size_t)n;
		} else if ((rc = fn(buf, want, &got, payload)) < 0) {
			if (!vsm__error_code())
				vsm_err(-rc, "the state source failed (%d)", rc);
			break;
		}
		if (got == 0 && unknown)
			break;
		if (got == 0 || got > want) {
			rc = vsm_err(VSM_EINVAL, "the state blob ended after %llu of %llu bytes",
				     (unsigned long long)done, (unsigned long long)*size);
			break;
		}
		if (done + got > cap) {
			/* Grow the device (reopened so no handle sees the old size). */
			vsm_bdev_close(b);
			b = NULL;
			while (cap < done + got)
				cap *= 2;
			if ((rc = vsm__be_device_resize(ds, key, cap, 0)) < 0 ||
			    (rc = vsm__ds_open_device(ds, key, 0, &b)) < 0)
				break;
		}
		ck_sum_add(&sum, buf, got);
		if ((rc = vsm_bdev_write(b, buf, got, done)) < 0)
			break;
		done += got;
	}
	/* A source with more than it announced is a caller's mistake. */
	if (rc == 0 && !unknown && fd >= 0 && read(fd, &extra, 1) == 1)
		rc = vsm_err(VSM_EINVAL, "the state blob is longer than the %llu bytes announced",
			     (unsigned long long)*size);
	if (rc == 0)
		rc = vsm_bdev_flush(b);
	free(buf);
	if (b)
		vsm_bdev_close(b);
	*sum_out = ck_sum_value(&sum);
	if (rc == 0)
		*size = done;
	return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return vsm_err(VSM_EIO, "writing the state blob: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read a checkpoint's blob back, checking its sum; to @fd or @fn (or
 * only checked when both are absent). */
static int state_out(vsm_dstore *ds, const char *container, const vsm_rec_checkpoint *cp,
		     int fd, vsm_state_write_fn fn, void *payload)
{
	vsm_bdev *b = NULL;
	uint8_t *buf;
	uint64_t done = 0;
	ck_sum sum;
	int rc;

	if (!cp->state_key)
		return 0;
	if ((rc = vsm__ds_open_device(ds, cp->state_key, VSM_BDEV_RDONLY, &b)) < 0)
		return rc;
	if (!(buf = malloc(CK_BUF))) {
		vsm_bdev_close(b);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	ck_sum_init(&sum);
	while (done < cp->state_size && rc == 0) {
		size_t n = cp->state_size - done < CK_BUF ? (size_t)(cp->state_size - done) : CK_BUF;

		if ((rc = vsm_bdev_read(b, buf, n, done)) < 0)
			break;
		ck_sum_add(&sum, buf, n);
		if (fd >= 0)
			rc = write_all(fd, buf, n);
		else if (fn && (rc = fn(buf, n, payload)) < 0 && !vsm__error_code())
			vsm_err(-rc, "the state sink failed (%d)", rc);
		done += n;
	}
	free(buf);
	vsm_bdev_close(b);
	if (rc == 0 && ck_sum_value(&sum) != cp->state_sum)
		rc = vsm_err(VSM_ECORRUPT, "container '%s': checkpoint '%s': the state blob does "
			     "not match its checksum", container, cp->name);
	return rc;
}

static int check_opts_version(unsigned int v, unsigned int max, const char *what)
{
	if (v == 0 || v > max)
		return vsm_err(VSM_EVERSION, "%s version %u is not supported", what, v);
	return 0;
}

/* --- create --- */

static int state_size_of(const vsm_checkpoint_opts *o, uint64_t *out)
{
	struct stat st;

	*out = 0;
	if (o->state_fd < 0 && !o->state_read)
		return 0;
	if (o->state_fd >= 0 && o->state_read)
		return vsm_err(VSM_EINVAL, "give the state blob as an fd or a callback, not both");
	if (o->state_size) {
		*out = o->state_size;
		return 0;
	}
	if (o->state_fd >= 0 && fstat(o->state_fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t pos = lseek(o->state_fd, 0, SEEK_CUR);

		*out = (uint64_t)st.st_size - (pos > 0 ? (uint64_t)pos : 0);
		return 0;
	}
	*out = STATE_UNKNOWN; /* read to the end; needs a resizable device */
	return 0;
}

/* Freeze @d's top as a table layer with a new content ID and put @top
 * (an overlay on it) in its place. */
static int freeze(vsm_record *r, vsm_rec_device *d, const char *top)
{
	vsm_rec_frozen l = {0};
	vsm_rec_layer *chain;
	char cid[VSM_UUID_STRLEN + 1], *k;
	int rc;

	vsm__uuid_new(cid);
	l.key = d->key;
	l.format = d->format;
	l.backing = d->chain_len ? d->chain[0].key : NULL;
	l.backing_format = d->chain_len ? d->chain[0].format : 0;
	l.cid = cid;
	l.managed = true;
	if ((rc = ck_layer_put(r, &l)) < 0)
		return rc;
	if (!(k = vsm__strdup(top)) ||
	    !(chain = realloc(d->chain, (d->chain_len + 1) * sizeof(*chain)))) {
		free(k);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	memmove(&chain[1], &chain[0], d->chain_len * sizeof(*chain));
	chain[0].key = d->key;
	chain[0].format = d->format;
	d->chain = chain;
	d->chain_len++;
	d->key = k;
	d->format = VSM_FORMAT_QCOW2;
	return 0;
}

static int ckpt_append(vsm_record *r, const char *name, const char *state_key,
		       uint64_t state_size, uint64_t sum, char **frozen)
{
	vsm_rec_checkpoint *grown, *c;
	size_t i;

	if (!(grown = realloc(r->ckpts, (r->n_ckpts + 1) * sizeof(*grown))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	r->ckpts = grown;
	c = &r->ckpts[r->n_ckpts++];
	memset(c, 0, sizeof(*c));
	c->ctime = (int64_t)time(NULL);
	c->state_size = state_key ? state_size : 0;
	c->state_sum = sum;
	if (!(c->name = vsm__strdup(name)) ||
	    (r->ckpt_current && !(c->parent = vsm__strdup(r->ckpt_current))) ||
	    (state_key && !(c->state_key = vsm__strdup(state_key))) ||
	    !(c->layers = vsm__calloc(r->n_devices, sizeof(*c->layers))))
		return -VSM_ENOMEM;
	for (i = 0; i < r->n_devices; i++) {
		c->n_layers = i + 1;
		if (!(c->layers[i].device = vsm__strdup(r->devices[i].name)) ||
		    !(c->layers[i].key = vsm__strdup(frozen[i])))
			return -VSM_ENOMEM;
	}
	free(r->ckpt_current);
	return (r->ckpt_current = vsm__strdup(name)) ? 0 : -VSM_ENOMEM;
}

VSM_API int vsm_checkpoint_create(vsm_checkpoint **out, vsm_container *c, const char *name,
				  const vsm_checkpoint_opts *opts)
{
	vsm_checkpoint_opts defaults = VSM_CHECKPOINT_OPTS_INIT;
	char key[VSM_BACKEND_KEY_MAX], state_key[VSM_BACKEND_KEY_MAX] = "";
	char dev_name[VSM_BACKEND_KEY_MAX], *frozen[64] = {0}, **saved = NULL;
	uint64_t size = 0, sum = 0;
	size_t i, n_saved = 0;
	vsm_checkpoint *cp = NULL;
	vsm__handle_stage *st = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!c)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_create: NULL argument");
	if (!opts)
		opts = &defaults;
	if ((rc = vsm__name_check("checkpoint", name)) < 0 ||
	    (rc = check_opts_version(opts->version, VSM_CHECKPOINT_OPTS_VERSION,
				     "vsm_checkpoint_opts")) < 0)
		return rc;
	if (opts->flags & ~VSM_CHECKPOINT_STOPPED)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_create: unknown flags 0x%x", opts->flags);
	if ((rc = state_size_of(opts, &size)) < 0)
		return rc;
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = fresh(c, &ds, &r)) < 0)
		goto out;
	if (ck_find(r, name)) {
		rc = vsm_err(VSM_EEXISTS, "container '%s': checkpoint '%s' already exists",
			     r->name, name);
		goto out;
	}
	if (r->n_devices > 64) {
		rc = vsm_err(VSM_EINVAL, "container '%s' has too many devices", r->name);
		goto out;
	}
	vsm_record_free(r);
	r = NULL;
	if ((rc = undeploy_for(c, opts->flags, &saved, &n_saved)) < 0 ||
	    (rc = fresh(c, &ds, &r)) < 0 || (rc = ck_table_fill(r)) < 0)
		goto out;
	if ((rc = vsm__wf_begin(&wf, ctx, "checkpoint-create", ds->name, r->name)) < 0)
		goto out;
	if (size == STATE_UNKNOWN && !vsm__be_can_resize(ds)) {
		rc = vsm_err(VSM_ENOTSUP, "datastore '%s' cannot grow a device: give the size of "
			     "the state blob (state_size)", ds->name);
		goto abort;
	}
	if ((opts->state_fd >= 0 || opts->state_read) &&
	    (rc = state_in(&wf, ds, r->uuid, opts->state_fd, opts->state_read,
			   opts->state_payload, &size, state_key, &sum)) < 0)
		goto abort;
	for (i = 0; i < r->n_devices; i++) {
		vsm_rec_device *d = &r->devices[i];

		ck_name(dev_name, sizeof(dev_name), r->uuid, d->name, "qcow2");
		if ((rc = ck_device_create(&wf, ds, dev_name, d->size, "qcow2", d->key, d->format,
					   key)) < 0)
			goto abort;
		if (!(frozen[i] = vsm__strdup(d->key)) || (rc = freeze(r, d, key)) < 0) {
			rc = rc < 0 ? rc : -VSM_ENOMEM;
			goto abort;
		}
	}
	/* Everything the caller gets is made before the commit point. */
	if ((rc = ckpt_append(r, name, state_key[0] ? state_key : NULL, size, sum, frozen)) < 0 ||
	    (out && (rc = handle_new(&cp, ds, r, ck_find(r, name))) < 0) ||
	    (rc = vsm__container_stage(&st, c, r)) < 0 ||
	    (rc = commit_record(ctx, ds, r)) < 0)
		goto abort;
	wf_finish(ctx, &wf, true);
	vsm__log(ctx, VSM_LOG_INFO, "container '%s': checkpoint '%s' created", r->name, name);
	vsm__container_apply(c, st);
	st = NULL;
	if (out) {
		*out = cp;
		cp = NULL;
	}
	goto out;
abort:
	vsm__wf_abort(&wf);
out:
	for (i = 0; i < 64; i++)
		free(frozen[i]);
	vsm_checkpoint_free(cp);
	vsm__container_unstage(st);
	vsm_record_free(r);
	if (n_saved)
		redeploy(c, saved, n_saved);
	vsm__ctx_unlock(ctx);
	return rc;
}

/* --- list --- */

VSM_API int vsm_checkpoint_list(vsm_checkpoint ***out, size_t *count, vsm_container *c)
{
	vsm_checkpoint **list = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_ctx *ctx;
	size_t i;
	int rc;

	vsm__error_reset();
	if (!out || !count || !c)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_list: NULL argument");
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	*out = NULL;
	*count = 0;
	if ((rc = fresh(c, &ds, &r)) < 0)
		goto out;
	if (!(list = vsm__calloc(r->n_ckpts, sizeof(*list)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < r->n_ckpts; i++)
		if ((rc = handle_new(&list[i], ds, r, &r->ckpts[i])) < 0) {
			vsm_checkpoint_list_free(list, i);
			goto out;
		}
	*out = list;
	*count = r->n_ckpts;
out:
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_checkpoint_lookup(vsm_checkpoint **out, vsm_container *c, const char *name)
{
	vsm_record *r = NULL;
	vsm_rec_checkpoint *cp;
	vsm_dstore *ds;
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!out || !c || !name)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_lookup: NULL argument");
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = fresh(c, &ds, &r)) == 0) {
		if (!(cp = ck_find(r, name)))
			rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'",
				     r->name, name);
		else
			rc = handle_new(out, ds, r, cp);
	}
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_checkpoint_state_read(vsm_container *c, const char *name, int fd,
				      vsm_state_write_fn write, void *payload)
{
	vsm_record *r = NULL;
	vsm_rec_checkpoint *cp;
	vsm_dstore *ds;
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!c || !name || (fd < 0 && !write))
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_state_read: NULL argument");
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = fresh(c, &ds, &r)) == 0) {
		if (!(cp = ck_find(r, name)))
			rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'",
				     r->name, name);
		else
			rc = state_out(ds, r->name, cp, fd, write, payload);
	}
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}

/* --- revert --- */

static const char *layer_for(const vsm_rec_checkpoint *cp, const char *device)
{
	size_t i;

	for (i = 0; i < cp->n_layers; i++)
		if (!strcmp(cp->layers[i].device, device))
			return cp->layers[i].key;
	return NULL;
}

/* Point @d at @top standing on frozen layer @base (chain from @r's table). */
static int set_top(vsm_record *r, vsm_rec_device *d, const char *top, const char *base)
{
	const vsm_rec_frozen *l = ck_layer(r, base);
	vsm_rec_layer *below = NULL, *chain;
	size_t n = 0;
	char *k;
	int rc;

	if (!l)
		return vsm_err(VSM_ECORRUPT, "container '%s': layer '%s' is not in its layer "
			       "table", r->name, base);
	if ((rc = ck_chain_of(r, base, &below, &n)) < 0)
		return rc;
	if (!(chain = vsm__calloc(n + 1, sizeof(*chain))) || !(k = vsm__strdup(top)) ||
	    !(chain[0].key = vsm__strdup(base))) {
		if (chain)
			free(chain[0].key);
		free(chain);
		vsm__layers_free(below, n);
		return -VSM_ENOMEM;
	}
	chain[0].format = l->format;
	if (n)
		memcpy(&chain[1], below, n * sizeof(*below));
	free(below);
	vsm__layers_free(d->chain, d->chain_len);
	free(d->key);
	d->key = k;
	d->format = VSM_FORMAT_QCOW2;
	d->chain = chain;
	d->chain_len = n + 1;
	return 0;
}

VSM_API int vsm_checkpoint_revert(vsm_container *c, const char *name,
				  const vsm_revert_opts *opts)
{
	vsm_revert_opts defaults = VSM_REVERT_OPTS_INIT;
	char key[VSM_BACKEND_KEY_MAX], dev_name[VSM_BACKEND_KEY_MAX];
	char *old[64] = {0}, **saved = NULL;
	const vsm_rec_checkpoint *cp;
	size_t i, n_saved = 0;
	vsm__handle_stage *st = NULL;
	bool tidy = true;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!c || !name)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_revert: NULL argument");
	if (!opts)
		opts = &defaults;
	if ((rc = check_opts_version(opts->version, VSM_REVERT_OPTS_VERSION,
				     "vsm_revert_opts")) < 0)
		return rc;
	if (opts->flags & ~VSM_CHECKPOINT_STOPPED)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_revert: unknown flags 0x%x", opts->flags);
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = fresh(c, &ds, &r)) < 0)
		goto out;
	if (!ck_find(r, name)) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name, name);
		goto out;
	}
	vsm_record_free(r);
	r = NULL;
	if ((rc = undeploy_for(c, opts->flags, &saved, &n_saved)) < 0 ||
	    (rc = fresh(c, &ds, &r)) < 0)
		goto out;
	/* The blob goes out before the switch, which is the last thing
	 * that may fail; the caller drops it if the call fails. */
	if (!(cp = ck_find(r, name))) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name, name);
		goto out;
	}
	if ((opts->state_fd >= 0 || opts->state_write) &&
	    (rc = state_out(ds, r->name, cp, opts->state_fd, opts->state_write,
			    opts->state_payload)) < 0)
		goto out;
	if ((rc = vsm__wf_begin(&wf, ctx, "checkpoint-revert", ds->name, r->name)) < 0)
		goto out;
	for (i = 0; i < r->n_devices && i < 64; i++) {
		vsm_rec_device *d = &r->devices[i];
		const char *base = layer_for(cp, d->name);
		const vsm_rec_frozen *l = ck_layer(r, base);

		if (!base || !l) {
			rc = vsm_err(VSM_ECORRUPT, "container '%s': checkpoint '%s' has no layer for "
				     "device '%s'", r->name, name, d->name);
			goto abort;
		}
		ck_name(dev_name, sizeof(dev_name), r->uuid, d->name, "qcow2");
		if ((rc = ck_device_create(&wf, ds, dev_name, d->size, "qcow2", base, l->format,
					   key)) < 0)
			goto abort;
		/* The old top goes once the record no longer names it. */
		if (!(old[i] = vsm__strdup(d->key)) ||
		    (rc = vsm__wf_undo(&wf, CK_WF_DELETE_UNREF, d->key)) < 0 ||
		    (rc = set_top(r, d, key, base)) < 0) {
			rc = rc < 0 ? rc : -VSM_ENOMEM;
			goto abort;
		}
	}
	free(r->ckpt_current);
	if (!(r->ckpt_current = vsm__strdup(name))) {
		rc = -VSM_ENOMEM;
		goto abort;
	}
	if ((rc = vsm__container_stage(&st, c, r)) < 0 || (rc = commit_record(ctx, ds, r)) < 0)
		goto abort;
	/* Reverted. The old tops go now, or with the journal entry later. */
	for (i = 0; i < 64 && old[i]; i++)
		if (ck_delete_unref(ctx, ds, old[i]) < 0) {
			warn(ctx, NULL);
			tidy = false;
		}
	wf_finish(ctx, &wf, tidy);
	vsm__log(ctx, VSM_LOG_INFO, "container '%s': reverted to checkpoint '%s'", r->name, name);
	if (ck_compact(ctx, ds, r->uuid, false) < 0)
		warn(ctx, NULL);
	vsm__container_apply(c, st);
	st = NULL;
	goto out;
abort:
	vsm__wf_abort(&wf);
out:
	for (i = 0; i < 64; i++)
		free(old[i]);
	vsm__container_unstage(st);
	vsm_record_free(r);
	if (n_saved)
		redeploy(c, saved, n_saved);
	if (rc == 0)
		refresh_or_warn(c);
	vsm__ctx_unlock(ctx);
	return rc;
}

/* --- delete --- */

VSM_API int vsm_checkpoint_delete(vsm_container *c, const char *name, unsigned int flags)
{
	vsm_rec_checkpoint *cp;
	char *state_key = NULL, **saved = NULL, uuid[VSM_UUID_STRLEN + 1];
	size_t i, n_saved = 0;
	vsm__handle_stage *st = NULL;
	bool tidy = true;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!c || !name)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_delete: NULL argument");
	if (flags & ~VSM_CHECKPOINT_STOPPED)
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_delete: unknown flags 0x%x", flags);
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = fresh(c, &ds, &r)) < 0)
		goto out;
	if (!ck_find(r, name)) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name, name);
		goto out;
	}
	/* A stopped VM's devices are undeployed before the commit point, so
	 * that the merges after it may reach them. */
	if (flags & VSM_CHECKPOINT_STOPPED) {
		vsm_record_free(r);
		r = NULL;
		if ((rc = undeploy_for(c, flags, &saved, &n_saved)) < 0 ||
		    (rc = fresh(c, &ds, &r)) < 0)
			goto out;
	}
	if (!(cp = ck_find(r, name))) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name, name);
		goto out;
	}
	memcpy(uuid, r->uuid, sizeof(uuid));
	/* Drop the entry in one record write; the layers it froze become
	 * anonymous and the merges below tidy them up. */
	for (i = 0; i < r->n_ckpts; i++) {
		vsm_rec_checkpoint *k = &r->ckpts[i];

		if (k->parent && !strcmp(k->parent, name)) {
			free(k->parent);
			k->parent = NULL;
			if (cp->parent && !(k->parent = vsm__strdup(cp->parent))) {
				rc = -VSM_ENOMEM;
				goto out;
			}
		}
	}
	if (r->ckpt_current && !strcmp(r->ckpt_current, name)) {
		free(r->ckpt_current);
		r->ckpt_current = NULL;
		if (cp->parent && !(r->ckpt_current = vsm__strdup(cp->parent))) {
			rc = -VSM_ENOMEM;
			goto out;
		}
	}
	state_key = cp->state_key;
	cp->state_key = NULL;
	{
		vsm_rec_checkpoint gone = *cp;
		size_t at = (size_t)(cp - r->ckpts);

		memmove(&r->ckpts[at], &r->ckpts[at + 1], (r->n_ckpts - at - 1) * sizeof(gone));
		r->n_ckpts--;
		cp = NULL;
		free(gone.name);
		free(gone.parent);
		for (i = 0; i < gone.n_layers; i++) {
			free(gone.layers[i].device);
			free(gone.layers[i].key);
		}
		free(gone.layers);
	}
	if ((rc = vsm__wf_begin(&wf, ctx, "checkpoint-delete", ds->name, r->name)) < 0)
		goto out;
	if ((state_key && (rc = vsm__wf_undo(&wf, CK_WF_DELETE_UNREF, state_key)) < 0) ||
	    (rc = vsm__container_stage(&st, c, r)) < 0 || (rc = commit_record(ctx, ds, r)) < 0) {
		vsm__wf_abort(&wf);
		goto out;
	}
	/* Deleted. The blob goes now, or with the journal entry later; a
	 * merge that fails is left for a later call or the journal. */
	if (state_key && ck_delete_unref(ctx, ds, state_key) < 0) {
		warn(ctx, NULL);
		tidy = false;
	}
	wf_finish(ctx, &wf, tidy);
	vsm__log(ctx, VSM_LOG_INFO, "container '%s': checkpoint '%s' deleted", r->name, name);
	if (ck_compact(ctx, ds, uuid, (flags & VSM_CHECKPOINT_STOPPED) != 0) < 0)
		warn(ctx, NULL);
	vsm__container_apply(c, st);
	st = NULL;
out:
	free(state_key);
	vsm__container_unstage(st);
	vsm_record_free(r);
	if (n_saved)
		redeploy(c, saved, n_saved);
	if (rc == 0)
		refresh_or_warn(c);
	vsm__ctx_unlock(ctx);
	return rc;
}

/* --- clone --- */

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

static int full_copy(vsm_dstore *ds, const char *src, const char *dst)
{
	vsm_cow *s = NULL, *d = NULL;
	int rc;

	if ((rc = ck_cow_open(&s, ds, src, true, false)) < 0)
		return rc;
	if ((rc = ck_cow_open(&d, ds, dst, false, false)) == 0) {
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
	if ((rc = fresh(src, &ds, &r)) < 0)
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
		const char *base = layer_for(cp, r->devices[i].name);
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
			if ((rc = full_copy(ds, base, key)) < 0)
				goto abort;
		} else if ((rc = set_top(r, d, key, base)) < 0 ||
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
