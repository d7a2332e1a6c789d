/*
 * vsm_restore: a new container from a full backup and a chain of
 * incrementals. Every manifest is read and the chain checked before
 * anything is made; then the container is created under a journal entry
 * whose undo destroys it, and each backup in turn is written into the
 * devices' tops and frozen as a checkpoint carrying its backup point ID
 * (so a later incremental finds its base). Any failure, a damaged
 * section found late included, removes the whole container; so does the
 * next vsm_ctx_open() after a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bk.h"
#include "cow.h"

static int open_backup(bfile *f, const char *path, const vsm_restore_opts *o)
{
	memset(f, 0, sizeof(*f));
	f->path = path;
	f->progress = o->progress;
	f->payload = o->payload;
	ck_sum_init(&f->sum);
	if ((f->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return vsm_err(errno == ENOENT ? VSM_ENOTFOUND : VSM_EIO, "backup '%s': %s", path,
			       strerror(errno));
	return 0;
}

static const bk_mdev *mdev(const bk_manifest *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->n_devs; i++)
		if (!strcmp(m->devs[i].name, name))
			return &m->devs[i];
	return NULL;
}

/* @m (file @path) may follow @prev (file @ppath) in a restore chain. */
static int check_link(const bk_manifest *first, const bk_manifest *prev, const char *ppath,
		      const bk_manifest *m, const char *path, size_t i)
{
	size_t j;

	if (i == 0 && m->incremental)
		return vsm_err(VSM_EINVAL, "backup '%s' is incremental (since checkpoint '%s'): "
			       "a restore starts from a full backup", path, m->base_checkpoint);
	if (i == 0)
		return 0;
	if (!m->incremental)
		return vsm_err(VSM_EINVAL, "backup '%s' is a full backup: only the first file of "
			       "a restore may be one", path);
	/* Backup point IDs link the chain. A container restored from a
	 * chain goes on with it under its own UUID: its points carry the
	 * IDs of the ones it was restored from, which hold the same data. */
	if (strcmp(m->base, prev->point) && strcmp(m->source, prev->source))
		return vsm_err(VSM_EINVAL, "backup '%s' is of container '%s' (%s), not of the "
			       "container of '%s' before it, '%s' (%s)", path, m->container,
			       m->source, ppath, prev->container, prev->source);
	if (strcmp(m->base, prev->point))
		return vsm_err(VSM_EINVAL, "backup '%s' was taken since checkpoint '%s' (backup "
			       "point %s), but '%s' before it is at checkpoint '%s' (%s): a backup "
			       "of the chain is missing or out of order", path, m->base_checkpoint,
			       m->base, ppath, prev->checkpoint, prev->point);
	if (m->n_devs != first->n_devs)
		return vsm_err(VSM_EINVAL, "backup '%s' has %zu devices, the full backup %zu",
			       path, m->n_devs, first->n_devs);
	for (j = 0; j < m->n_devs; j++) {
		const bk_mdev *d = mdev(first, m->devs[j].name);

		if (!d)
			return vsm_err(VSM_EINVAL, "backup '%s' has device '%s', which the full "
				       "backup has not", path, m->devs[j].name);
		if (d->size != m->devs[j].size)
			return vsm_err(VSM_ENOTSUP, "backup '%s': device '%s' was resized since the "
				       "full backup (%llu to %llu bytes); take a new full backup",
				       path, d->name, (unsigned long long)d->size,
				       (unsigned long long)m->devs[j].size);
	}
	return 0;
}

/* Read every manifest and check the chain, before anything is made. */
static int check_chain(bk_manifest *ms, const char *const *paths, size_t n,
		       const vsm_restore_opts *o)
{
	size_t i, j;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		bfile f;

		if ((rc = open_backup(&f, paths[i], o)) < 0)
			break;
		rc = bk_read_head(&f, &ms[i]);
		close(f.fd);
		if (rc == 0)
			rc = check_link(&ms[0], i ? &ms[i - 1] : NULL, i ? paths[i - 1] : NULL,
					&ms[i], paths[i], i);
		for (j = 0; rc == 0 && j < i; j++)
			if (!strcmp(ms[j].checkpoint, ms[i].checkpoint))
				rc = vsm_err(VSM_EINVAL, "backups '%s' and '%s' are both at a "
					     "checkpoint named '%s'", paths[j], paths[i],
					     ms[i].checkpoint);
	}
	return rc;
}

static int make_container(vsm_container **out, vsm_ctx *ctx, const char *datastore,
			  const char *name, const bk_manifest *m)
{
	vsm_device_spec specs[64], *ptrs[64];
	vsm_container_opts co = VSM_CONTAINER_OPTS_INIT;
	size_t i;

	for (i = 0; i < m->n_devs; i++) {
		vsm_device_spec s = VSM_DEVICE_SPEC_INIT;

		s.name = m->devs[i].name;
		s.size = m->devs[i].size;
		s.format = VSM_FORMAT_QCOW2;
		specs[i] = s;
		ptrs[i] = &specs[i];
	}
	co.devices = (const vsm_device_spec *const *)ptrs;
	co.n_devices = m->n_devs;
	co.state_size = m->state_area;
	/* The devices are written sparse: only the data the backups hold. */
	co.flags = VSM_CONTAINER_CREATE_THIN;
	return vsm_container_create(out, ctx, datastore, name, &co);
}

/* The state blob, streamed from the backup into the checkpoint. */
typedef struct {
	bfile *f;
	uint64_t left;
} blob_src;

static int blob_read(void *buf, size_t len, size_t *got, void *payload)
{
	blob_src *s = payload;
	size_t n = len < s->left ? len : (size_t)s->left;
	int rc;

	*got = 0;
	if (n && (rc = ck_bundle_read(s->f, buf, n)) < 0)
		return rc;
	s->left -= n;
	*got = n;
	return 0;
}

/* A section (data and zero records, then the end record with the
 * running checksum) into raw device @key: the state area, whose bytes are
 * the VM's and so never probed for an image format. */
static int read_raw_section(bfile *f, vsm_dstore *ds, const char *key, uint64_t size)
{
	uint8_t h[24], tail[8], *buf = malloc(B_CHUNK);
	uint64_t data = 0;
	vsm_bdev *b = NULL;
	int rc;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	if ((rc = vsm__ds_open_device(ds, key, 0, &b)) < 0) {
		free(buf);
		return rc;
	}
	for (;;) {
		uint32_t kind;
		uint64_t off, len;

		if ((rc = ck_bundle_read(f, h, sizeof(h))) < 0)
			break;
		kind = vsm__get_le32(h);
		off = vsm__get_le64(h + 8);
		len = vsm__get_le64(h + 16);
		if (kind == REC_END) {
			ck_sum at = f->sum;

			if ((rc = ck_bundle_read(f, tail, sizeof(tail))) == 0 &&
			    (vsm__get_le64(tail) != ck_sum_value(&at) || off != data || len))
				rc = vsm_err(VSM_ECORRUPT, "backup '%s': the state area section fails "
					     "its checksum", f->path);
			break;
		}
		if ((kind != REC_DATA && kind != REC_ZERO) || off > size || len > size - off ||
		    len == 0 || (kind == REC_DATA && len > B_CHUNK)) {
			rc = vsm_err(VSM_ECORRUPT, "backup '%s': the state area section has a bad "
				     "record", f->path);
			break;
		}
		if (kind == REC_DATA) {
			if ((rc = ck_bundle_read(f, buf, (size_t)len)) == 0)
				rc = vsm_bdev_write(b, buf, (size_t)len, off);
			data += len;
		} else {
			memset(buf, 0, B_CHUNK);
			while (rc == 0 && len) {
				size_t n = len < B_CHUNK ? (size_t)len : B_CHUNK;

				rc = vsm_bdev_write(b, buf, n, off);
				off += n;
				len -= n;
			}
		}
		if (rc < 0)
			break;
	}
	if (rc == 0)
		rc = vsm_bdev_flush(b);
	vsm_bdev_close(b);
	free(buf);
	return rc;
}

/* Apply one backup file: its sections into the tops, then the
 * checkpoint with its blob and point ID, then the state area. */
static int apply(vsm_container *c, const char *path, const bk_manifest *want,
		 const vsm_restore_opts *o, vsm_backup_stats *st)
{
	vsm_checkpoint_opts co = VSM_CHECKPOINT_OPTS_INIT;
	const vsm_rec_checkpoint *cp;
	bk_manifest m = {0};
	vsm_record *r = NULL;
	blob_src src;
	vsm_dstore *ds;
	bfile f;
	size_t i, j;
	int rc;

	if ((rc = open_backup(&f, path, o)) < 0)
		return rc;
	if ((rc = bk_read_head(&f, &m)) < 0)
		goto out;
	/* The file is the one the chain was checked with. */
	if (strcmp(m.point, want->point) || m.incremental != want->incremental ||
	    strcmp(m.base, want->base) || m.n_devs != want->n_devs) {
		rc = vsm_err(VSM_ESTATE, "backup '%s' changed during the restore", path);
		goto out;
	}
	if ((rc = ck_fresh(c, &ds, &r)) < 0)
		goto out;
	for (i = 0; i < m.n_devs; i++)
		f.total += m.devs[i].changed;
	for (i = 0; i < m.n_devs; i++) {
		ilayer l = {0};

		for (j = 0; j < r->n_devices; j++)
			if (!strcmp(r->devices[j].name, m.devs[i].name))
				break;
		if (j == r->n_devices) {
			rc = vsm_err(VSM_EINVAL, "backup '%s': no device '%s' to restore into",
				     path, m.devs[i].name);
			goto out;
		}
		snprintf(l.key, sizeof(l.key), "%s", r->devices[j].key);
		l.format = VSM_FORMAT_QCOW2;
		l.size = m.devs[i].size;
		l.backing = -1;
		if ((rc = ck_import_layer(&f, ds, &l, true, &st->data_bytes)) < 0)
			goto out;
	}
	src.f = &f;
	src.left = m.state_size;
	if (m.state_size) {
		co.state_read = blob_read;
		co.state_payload = &src;
		co.state_size = m.state_size;
	}
	if ((rc = ck_create(NULL, c, m.checkpoint, &co, m.point)) < 0)
		goto out;
	vsm_record_free(r);
	r = NULL;
	if ((rc = ck_fresh(c, &ds, &r)) < 0)
		goto out;
	if (!(cp = ck_find(r, m.checkpoint)) || (m.state_size && cp->state_sum != m.state_sum)) {
		rc = vsm_err(VSM_ECORRUPT, "backup '%s': the VM-state blob fails its checksum",
			     path);
		goto out;
	}
	if (m.state_area) {
		if (!r->state_key || r->state_size < m.state_area) {
			rc = vsm_err(VSM_EINVAL, "backup '%s': the state area (%llu bytes) does not "
				     "fit the container's", path, (unsigned long long)m.state_area);
			goto out;
		}
		if ((rc = read_raw_section(&f, ds, r->state_key, m.state_area)) < 0)
			goto out;
	}
	if ((rc = bk_read_trailer(&f)) < 0)
		goto out;
	st->file_bytes += f.pos;
	snprintf(st->checkpoint, sizeof(st->checkpoint), "%s", m.checkpoint);
out:
	close(f.fd);
	vsm_record_free(r);
	bk_manifest_free(&m);
	return rc;
}

VSM_API int vsm_restore(vsm_container **out, vsm_ctx *ctx, const char *const *paths,
			size_t n_paths, const char *datastore, const vsm_restore_opts *opts)
{
	vsm_restore_opts defaults = VSM_RESTORE_OPTS_INIT;
	vsm_backup_stats st = { 0 };
	vsm_container *c = NULL;
	bk_manifest *ms = NULL;
	vsm_record *r = NULL;
	vsm_dstore *ds;
	vsm_wf wf = {0};
	char arg[128];
	size_t i;
	int rc;

	vsm__error_reset();
	if (out)
		*out = NULL;
	if (!ctx || !paths || !n_paths || !datastore)
		return vsm_err(VSM_EINVAL, "vsm_restore: NULL argument or no backup file");
	for (i = 0; i < n_paths; i++)
		if (!paths[i])
			return vsm_err(VSM_EINVAL, "vsm_restore: NULL path");
	if (!opts)
		opts = &defaults;
	if ((rc = ck_check_opts_version(opts->version, VSM_RESTORE_OPTS_VERSION,
					"vsm_restore_opts")) < 0)
		return rc;
	if (opts->name && (rc = vsm__name_check("container", opts->name)) < 0)
		return rc;
	if (!(ms = calloc(n_paths, sizeof(*ms))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	if ((rc = check_chain(ms, paths, n_paths, opts)) < 0)
		goto out;
	if ((rc = make_container(&c, ctx, datastore, opts->name ? opts->name : ms[0].container,
				 &ms[0])) < 0)
		goto out;
	/* From here a failure or a crash destroys the new container. */
	vsm__ctx_lock(ctx);
	if ((rc = ck_fresh(c, &ds, &r)) == 0 &&
	    (rc = vsm__wf_begin(&wf, ctx, "backup-restore", ds->name, r->name)) == 0) {
		snprintf(arg, sizeof(arg), "%u %s", r->slot, r->uuid);
		rc = vsm__wf_undo(&wf, VSM_WF_CONTAINER_DESTROY, arg);
		if (rc < 0)
			vsm__wf_abort(&wf);
	}
	vsm__ctx_unlock(ctx);
	if (rc < 0) {
		vsm__saved_error saved;

		vsm__error_save(&saved);
		vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE);
		vsm__error_restore(&saved);
		goto out;
	}
	for (i = 0; i < n_paths && rc == 0; i++)
		rc = apply(c, paths[i], &ms[i], opts, &st);
	vsm__ctx_lock(ctx);
	if (rc < 0)
		vsm__wf_abort(&wf);
	else if ((rc = vsm__wf_end(&wf)) < 0)
		vsm__wf_abort(&wf);
	vsm__ctx_unlock(ctx);
	if (rc == 0 && (rc = vsm_container_refresh(c)) == 0) {
		vsm__log(ctx, VSM_LOG_INFO, "container '%s' restored from %zu backup file(s), "
			 "at checkpoint '%s'", vsm_container_name(c), n_paths, st.checkpoint);
		if (opts->stats)
			*opts->stats = st;
		if (out) {
			*out = c;
			c = NULL;
		}
	}
out:
	vsm_container_free(c);
	vsm_record_free(r);
	for (i = 0; ms && i < n_paths; i++)
		bk_manifest_free(&ms[i]);
	free(ms);
	return rc;
}
