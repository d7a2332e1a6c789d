/*
 * vsm_backup: take a checkpoint (the backup point) and write what the
 * devices read there — all of it, or only the extents changed since an
 * earlier backup point — to a backup file, with the checkpoint tree's
 * description and the VM-state. Only reads after the checkpoint, which
 * is frozen: a VM may go on writing its new top meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bk.h"
#include "cow.h"

/* The directory of @path, so that the new file's name is durable too. */
static int sync_dir(const char *path)
{
	char dir[4096];
	char *slash;
	int fd, rc = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	if (!(slash = strrchr(dir, '/')))
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return vsm_err(VSM_EIO, "backup '%s': its directory: %s", path, strerror(errno));
	if (fsync(fd) < 0)
		rc = vsm_err(VSM_EIO, "backup '%s': its directory: %s", path, strerror(errno));
	close(fd);
	return rc;
}

/* A name for the backup point from the time, unique in the record. */
static void point_name(char *buf, size_t size, const vsm_record *r)
{
	char base[64];
	time_t now = time(NULL);
	struct tm tm;
	int i;

	gmtime_r(&now, &tm);
	strftime(base, sizeof(base), "backup-%Y%m%dT%H%M%SZ", &tm);
	snprintf(buf, size, "%s", base);
	for (i = 2; ck_find(r, buf); i++)
		snprintf(buf, size, "%s-%d", base, i);
}

/* What a full backup carries of a device: the ranges that read data
 * through the chain (zeros and holes are left out). */
static int view_data(vsm_cow *v, bk_extents *out)
{
	uint64_t off = 0, size = vsm_cow_size(v), pnum;
	int rc;

	while (off < size) {
		vsm_cow_status st;

		if ((rc = vsm_cow_block_status(v, off, size - off, &pnum, &st)) < 0)
			return rc;
		if (!pnum)
			return vsm_err(VSM_EIO, "%s: block status made no progress",
				       vsm_cow_label(v));
		if (st.data && (rc = bk_extents_add(out, off, pnum)) < 0)
			return rc;
		off += pnum;
	}
	return 0;
}

static void put_rec(uint8_t h[24], uint32_t kind, uint64_t off, uint64_t len)
{
	memset(h, 0, 24);
	vsm__put_le32(h, kind);
	vsm__put_le64(h + 8, off);
	vsm__put_le64(h + 16, len);
}

/* One device's section (a bundle layer section): the extents as data
 * records, in runs of 64 KiB pieces. A piece of zeros is left out of a
 * full backup (the restored device starts empty) and is a zero record
 * in an incremental one (it must overwrite what the base holds). */
typedef int (*read_fn)(void *src, void *buf, size_t len, uint64_t off);

static int read_cow(void *src, void *buf, size_t len, uint64_t off)
{
	return vsm_cow_read(src, buf, len, off);
}

static int read_bdev(void *src, void *buf, size_t len, uint64_t off)
{
	return vsm_bdev_read(src, buf, len, off);
}

static int write_section(bfile *f, read_fn rd, void *src, const bk_extents *e,
			 bool incremental, vsm_backup_stats *st)
{
	uint8_t *buf = malloc(B_CHUNK), h[24], tail[8];
	uint64_t data = 0;
	size_t i;
	int rc = 0;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (i = 0; i < e->n && rc == 0; i++) {
		uint64_t off = e->v[i].offset, end = off + e->v[i].length;

		while (off < end && rc == 0) {
			uint64_t len = end - off < B_CHUNK ? end - off : B_CHUNK, p = 0;

			if ((rc = rd(src, buf, (size_t)len, off)) < 0)
				break;
			while (p < len && rc == 0) {
				uint64_t run = 0;
				bool z = ck_all_zero(buf + p, (size_t)(len - p < 65536 ? len - p : 65536));

				while (p + run < len) {
					uint64_t k = len - p - run < 65536 ? len - p - run : 65536;

					if (ck_all_zero(buf + p + run, (size_t)k) != z)
						break;
					run += k;
				}
				if (z && incremental) {
					put_rec(h, REC_ZERO, off + p, run);
					rc = ck_bundle_write(f, h, sizeof(h));
					st->extents++;
				} else if (!z) {
					put_rec(h, REC_DATA, off + p, run);
					if ((rc = ck_bundle_write(f, h, sizeof(h))) == 0 &&
					    (rc = ck_bundle_write(f, buf + p, (size_t)run)) == 0) {
						data += run;
						st->extents++;
					}
				}
				p += run;
			}
			if (rc == 0)
				rc = ck_bundle_tick(f, len);
			off += len;
		}
	}
	free(buf);
	if (rc < 0)
		return rc;
	st->data_bytes += data;
	put_rec(h, REC_END, data, 0);
	if ((rc = ck_bundle_write(f, h, sizeof(h))) < 0)
		return rc;
	vsm__put_le64(tail, ck_sum_value(&f->sum));
	return ck_bundle_write(f, tail, sizeof(tail));
}

/* The manifest's description of the record at the backup point. */
static int describe(bk_manifest *m, const vsm_record *r, const vsm_rec_checkpoint *cp,
		    const vsm_rec_checkpoint *base)
{
	size_t i;

	m->incremental = base != NULL;
	m->created = (int64_t)time(NULL);
	memcpy(m->source, r->uuid, sizeof(m->source));
	memcpy(m->point, cp->point, sizeof(m->point));
	m->ctime = cp->ctime;
	m->state_size = cp->state_key ? cp->state_size : 0;
	m->state_sum = cp->state_sum;
	m->state_area = r->state_key ? r->state_size : 0;
	if (base)
		memcpy(m->base, base->point, sizeof(m->base));
	if (!(m->container = strdup(r->name)) || !(m->checkpoint = strdup(cp->name)) ||
	    (base && !(m->base_checkpoint = strdup(base->name))) ||
	    !(m->devs = calloc(cp->n_layers, sizeof(*m->devs))) ||
	    (r->n_ckpts && !(m->tree = calloc(r->n_ckpts, sizeof(*m->tree)))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (i = 0; i < r->n_ckpts; i++) {
		bk_mckpt *t = &m->tree[i];

		m->n_tree = i + 1;
		t->ctime = r->ckpts[i].ctime;
		memcpy(t->point, r->ckpts[i].point, sizeof(t->point));
		if (!(t->name = strdup(r->ckpts[i].name)) ||
		    (r->ckpts[i].parent && !(t->parent = strdup(r->ckpts[i].parent))))
			return vsm_err(VSM_ENOMEM, "out of memory");
	}
	return 0;
}

/* Everything after the checkpoint: the views, the manifest, the file. */
static int write_backup(bfile *f, vsm_dstore *ds, const vsm_record *r,
			const vsm_rec_checkpoint *cp, const vsm_rec_checkpoint *base,
			vsm_backup_stats *st)
{
	bk_manifest m = {0};
	vsm_cow *views[64] = {0};
	bk_extents ext[64] = {{0}};
	vsm_backup_stats dummy = {0};
	size_t i, n = cp->n_layers;
	int rc;

	if (n > 64)
		return vsm_err(VSM_EINVAL, "container '%s' has too many devices", r->name);
	if ((rc = describe(&m, r, cp, base)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		bk_mdev *d = &m.devs[i];
		const vsm_rec_frozen *l;
		size_t j;

		m.n_devs = i + 1;
		if (!(d->name = strdup(cp->layers[i].device))) {
			rc = vsm_err(VSM_ENOMEM, "out of memory");
			goto out;
		}
		if (!(l = ck_layer(r, cp->layers[i].key))) {
			rc = vsm_err(VSM_ECORRUPT, "container '%s': layer '%s' is in no layer table",
				     r->name, cp->layers[i].key);
			goto out;
		}
		if ((rc = ck_cow_open(&views[i], ds, l->key, l->format, true, false)) < 0)
			goto out;
		d->size = vsm_cow_size(views[i]);
		rc = base ? bk_changes(ds, r, d->name, base->name, cp->name, &ext[i]) :
			    view_data(views[i], &ext[i]);
		if (rc < 0)
			goto out;
		for (j = 0; j < ext[i].n; j++) {
			/* A layer larger than the device (a resize) is clipped. */
			if (ext[i].v[j].offset >= d->size) {
				ext[i].n = j;
				break;
			}
			if (ext[i].v[j].length > d->size - ext[i].v[j].offset)
				ext[i].v[j].length = d->size - ext[i].v[j].offset;
			d->changed += ext[i].v[j].length;
		}
		d->extents = ext[i].n;
		f->total += d->changed;
	}
	if ((rc = bk_write_head(f, &m)) < 0)
		goto out;
	for (i = 0; i < n && rc == 0; i++)
		rc = write_section(f, read_cow, views[i], &ext[i], base != NULL, st);
	if (rc == 0 && m.state_size)
		rc = ck_export_blob(f, ds, cp->state_key, m.state_size);
	/* The state area is mostly empty: a sparse section, its zeros said
	 * in a word so that a restore overwrites what the last one left. */
	if (rc == 0 && m.state_area) {
		bk_extents all = {0};
		vsm_bdev *sa = NULL;

		/* Raw by definition: its bytes are the VM's, never probed. */
		if ((rc = vsm__ds_open_device(ds, r->state_key, VSM_BDEV_RDONLY, &sa)) == 0 &&
		    (rc = bk_extents_add(&all, 0, m.state_area)) == 0)
			rc = write_section(f, read_bdev, sa, &all, true, &dummy);
		if (sa)
			vsm_bdev_close(sa);
		bk_extents_free(&all);
	}
	if (rc == 0)
		rc = bk_write_trailer(f);
out:
	for (i = 0; i < 64; i++) {
		vsm_cow_close(views[i]);
		bk_extents_free(&ext[i]);
	}
	bk_manifest_free(&m);
	return rc;
}

VSM_API int vsm_backup(vsm_container *c, const char *path, const vsm_backup_opts *opts)
{
	vsm_backup_opts defaults = VSM_BACKUP_OPTS_INIT;
	char name[256], point[VSM_UUID_STRLEN + 1];
	const vsm_rec_checkpoint *cp, *base = NULL;
	vsm_backup_stats st = { 0 };
	vsm_record *r = NULL;
	bool made = false;
	bfile f = { .fd = -1 };
	vsm_dstore *ds;
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!c || !path)
		return vsm_err(VSM_EINVAL, "vsm_backup: NULL argument");
	if (!opts)
		opts = &defaults;
	if ((rc = ck_check_opts_version(opts->version, VSM_BACKUP_OPTS_VERSION,
					"vsm_backup_opts")) < 0)
		return rc;
	if (opts->checkpoint && (rc = vsm__name_check("checkpoint", opts->checkpoint)) < 0)
		return rc;
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = ck_fresh(c, &ds, &r)) < 0)
		goto out;
	if (opts->incremental_from) {
		if (!(base = ck_find(r, opts->incremental_from))) {
			rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'",
				     r->name, opts->incremental_from);
			goto out;
		}
		if (!base->point[0]) {
			rc = vsm_err(VSM_EINVAL, "container '%s': checkpoint '%s' is not a backup "
				     "point (no backup was taken at it): an incremental backup "
				     "needs one as its base", r->name, base->name);
			goto out;
		}
	}
	if (opts->flags & ~VSM_BACKUP_AT_CHECKPOINT) {
		rc = vsm_err(VSM_EINVAL, "vsm_backup: unknown flags 0x%x", opts->flags);
		goto out;
	}
	if ((opts->flags & VSM_BACKUP_AT_CHECKPOINT) && !opts->checkpoint) {
		rc = vsm_err(VSM_EINVAL, "vsm_backup: VSM_BACKUP_AT_CHECKPOINT needs the "
			     "checkpoint's name");
		goto out;
	}
	if (opts->checkpoint)
		snprintf(name, sizeof(name), "%s", opts->checkpoint);
	else
		point_name(name, sizeof(name), r);
	if ((opts->flags & VSM_BACKUP_AT_CHECKPOINT) && !ck_find(r, name)) {
		rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'", r->name,
			     name);
		goto out;
	}
	if (!(opts->flags & VSM_BACKUP_AT_CHECKPOINT) && ck_find(r, name)) {
		rc = vsm_err(VSM_EEXISTS, "container '%s': checkpoint '%s' already exists",
			     r->name, name);
		goto out;
	}
	f.path = path;
	f.progress = opts->progress;
	f.payload = opts->payload;
	ck_sum_init(&f.sum);
	if ((f.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		rc = vsm_err(errno == EEXIST ? VSM_EEXISTS : VSM_EIO, "backup '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	if (opts->flags & VSM_BACKUP_AT_CHECKPOINT) {
		if ((rc = ck_point_of(c, name, point)) < 0)
			goto out;
	} else {
		vsm__uuid_new(point);
		if ((rc = ck_create(NULL, c, name, opts->checkpoint_opts, point)) < 0)
			goto out;
		made = true;
	}
	vsm_record_free(r);
	r = NULL;
	if ((rc = ck_fresh(c, &ds, &r)) < 0 || (rc = ck_table_fill(NULL, r)) < 0)
		goto out;
	if (!(cp = ck_find(r, name)) || strcmp(cp->point, point) ||
	    (opts->incremental_from && !(base = ck_find(r, opts->incremental_from)))) {
		rc = vsm_err(VSM_ESTATE, "container '%s' changed while it was backed up",
			     r->name);
		goto out;
	}
	if ((rc = write_backup(&f, ds, r, cp, base, &st)) < 0)
		goto out;
	if (fsync(f.fd) < 0)
		rc = vsm_err(VSM_EIO, "backup '%s': %s", path, strerror(errno));
	else
		rc = sync_dir(path);
out:
	if (f.fd >= 0) {
		if (close(f.fd) < 0 && rc == 0)
			rc = vsm_err(VSM_EIO, "backup '%s': %s", path, strerror(errno));
		if (rc < 0)
			unlink(path);
	}
	if (rc < 0 && made) {
		/* Keep the error that matters: the backup's, not the tidy-up's. */
		vsm__saved_error saved;

		vsm__error_save(&saved);

		if (vsm_checkpoint_delete(c, name, opts->checkpoint_opts ?
					  opts->checkpoint_opts->flags : 0) < 0)
			ck_warn(ctx, "removing the backup point after a failed backup");
		vsm__error_restore(&saved);
	}
	if (rc == 0) {
		st.file_bytes = f.pos;
		snprintf(st.checkpoint, sizeof(st.checkpoint), "%s", name);
		if (opts->stats)
			*opts->stats = st;
		vsm__log(ctx, VSM_LOG_INFO, "container '%s': %s backup at checkpoint '%s' "
			 "written to '%s'", vsm_container_name(c),
			 opts->incremental_from ? "incremental" : "full", name, path);
	}
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}
