/*
 * vsm_image_copy: copy a chain layer by layer, stopping at the first
 * parent whose content-ID chain is already in the target directory (the
 * plan, image_copy_plan.c, is made before anything is written), bottom
 * up, sparse; every file the copy creates is removed again when it fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vsm/image.h"
#include "cow_int.h"
#include "image_int.h"
#include "image_copy.h"

#define COPY_CHUNK (4u << 20)
#define RAW_GRAIN 4096u

static int dir_of(const char *path, char **out)
{
	char *d = vsm__strdup(path), *slash;

	if (!d)
		return -VSM_ENOMEM;
	slash = strrchr(d, '/');
	if (slash == d)
		d[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(d, ".");
	*out = realpath(d, NULL);
	if (!*out) {
		int e = errno;

		vsm_err(e == ENOENT ? VSM_ENOTFOUND : VSM_EIO, "image copy: directory '%s' of "
			"'%s': %s", d, path, strerror(e));
		free(d);
		return e == ENOENT ? -VSM_ENOTFOUND : -VSM_EIO;
	}
	free(d);
	return 0;
}

/* Refuse a damaged layer before anything is created. */
static int check_sources(struct copy_job *j)
{
	vsm_cow_check_result r;
	size_t i;
	int rc;

	for (i = 0; i < j->ncopy; i++) {
		if ((rc = vsm_cow_check(j->L[i].c, &r, false)) < 0) {
			vsm__error_prefix("image copy: source layer '%s'", j->L[i].path);
			return rc;
		}
		if (r.corruptions)
			return vsm_err(VSM_ECORRUPT, "image copy: source layer '%s' has %llu "
				       "corruptions (run vsm_image_check); refused", j->L[i].path,
				       (unsigned long long)r.corruptions);
	}
	return 0;
}

/* Data bytes a layer holds itself (what its copy reads). */
static int own_data(vsm_cow *c, uint64_t *out)
{
	uint64_t off = 0, size = vsm_cow_size(c), pnum;
	vsm_cow_status st;
	int rc;

	*out = 0;
	while (off < size) {
		if ((rc = vsm_cow_block_status(c, off, size - off, &pnum, &st)) < 0)
			return rc;
		if (st.depth == 0 && st.data)
			*out += pnum;
		off += pnum;
	}
	return 0;
}

static int progress(struct copy_job *j)
{
	if (j->o->progress && j->o->progress(j->done, j->total, j->o->payload))
		return vsm_err(VSM_ECANCELED, "image copy to '%s': cancelled by the progress "
			       "callback", j->dst);
	return 0;
}

static bool zeros(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Create @path exclusively, so that an existing file is never taken. */
static int create_excl(struct copy_job *j, const char *path)
{
	char **nm = realloc(j->made, (j->nmade + 1) * sizeof(*nm));
	int fd;

	if (!nm)
		return vsm_err(VSM_ENOMEM, "out of memory");
	j->made = nm;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return vsm_err(errno == EEXIST ? VSM_EEXISTS : VSM_EIO, "image copy: cannot "
			       "create '%s': %s", path, strerror(errno));
	close(fd);
	if (!(j->made[j->nmade] = vsm__strdup(path))) {
		unlink(path);
		return -VSM_ENOMEM;
	}
	j->nmade++;
	return 0;
}

/* The empty file of layer @i: a qcow2 image on @below (or on nothing),
 * or a raw file of the layer's size. */
static int make_layer(struct copy_job *j, size_t i, const char *below, int below_fmt)
{
	vsm_cow_info ci;
	vsm_cow_create_opts co;
	vsm_bdev *b = NULL;
	char label[PATH_MAX + 16];
	int rc;

	if ((rc = vsm_cow_get_info(j->L[i].c, &ci)) < 0)
		return rc;
	if ((rc = create_excl(j, j->target[i])) < 0)
		return rc;
	if ((rc = vsm_bdev_open_path(&b, j->target[i], 0)) < 0)
		return rc;
	snprintf(label, sizeof(label), "image '%s'", j->target[i]);
	if (ci.format == VSM_COW_RAW) {
		uint8_t z = 0;

		rc = ci.virtual_size ? vsm_bdev_write(b, &z, 1, ci.virtual_size - 1) : 0;
	} else {
		memset(&co, 0, sizeof(co));
		co.size = ci.virtual_size;
		co.cluster_size = ci.cluster_size;
		co.refcount_bits = ci.refcount_bits;
		co.backing = below;
		co.backing_format = below ? (below_fmt == VSM_COW_RAW ? "raw" : "qcow2") : NULL;
		rc = vsm_cow_create_qcow2(b, label, &co);
	}
	vsm_bdev_close(b);
	return rc;
}

/* Write [off, off+len) of @buf into @d: non-zero grains as data, zero
 * grains as zero clusters where a backing image could show through. */
static int put(struct copy_job *j, vsm_cow *d, const uint8_t *buf, uint64_t len, uint64_t off,
	       uint32_t grain, bool shadow)
{
	uint64_t p = 0, run = 0;
	int rc = 0;

	while (rc == 0 && p < len) {
		uint64_t step = grain - ((off + p) % grain);

		if (step > len - p)
			step = len - p;
		if (!zeros(buf + p, (size_t)step)) {
			run += step;
		} else {
			if (run) {
				rc = vsm_cow_write(d, buf + p - run, run, off + p - run);
				j->st.bytes_copied += rc == 0 ? run : 0;
				run = 0;
			}
			if (rc == 0 && shadow)
				rc = vsm_cow_write_zeroes(d, off + p, step, false);
		}
		p += step;
	}
	if (rc == 0 && run) {
		rc = vsm_cow_write(d, buf + p - run, run, off + p - run);
		j->st.bytes_copied += rc == 0 ? run : 0;
	}
	return rc;
}

static int copy_data(struct copy_job *j, vsm_cow *s, vsm_cow *d)
{
	uint64_t off = 0, size = vsm_cow_size(s), pnum;
	bool shadow = vsm_cow_backing(d) != NULL;
	uint32_t grain = d->q ? (uint32_t)d->q->cs : RAW_GRAIN;
	vsm_cow_status st;
	int rc;

	while (off < size) {
		uint64_t len = size - off < COPY_CHUNK ? size - off : COPY_CHUNK;

		if ((rc = vsm_cow_block_status(s, off, len, &pnum, &st)) < 0)
			return rc;
		if (st.depth == 0 && st.data) {
			rc = vsm_cow_read(s, j->buf, (size_t)pnum, off);
			if (rc == 0)
				rc = put(j, d, j->buf, pnum, off, grain, shadow);
			if (rc < 0)
				return rc;
			j->done += pnum;
			if ((rc = progress(j)) < 0)
				return rc;
		} else if (st.depth == 0 && st.present && shadow) {
			if ((rc = vsm_cow_write_zeroes(d, off, pnum, false)) < 0)
				return rc;
		}
		off += pnum;
	}
	return 0;
}

static int copy_layer(struct copy_job *j, size_t i, const char *below, int below_fmt)
{
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *d = NULL;
	int rc, r2;

	if ((rc = make_layer(j, i, below, below_fmt)) < 0)
		return rc;
	oo.format = vsm_cow_format(j->L[i].c) == VSM_COW_RAW ? "raw" : "qcow2";
	if ((rc = vsm_image_open(&d, j->target[i], &oo)) < 0)
		return rc;
	rc = copy_data(j, j->L[i].c, vsm__image_cow(d));
	/* After the data: the copy's own writes would remove it. */
	if (rc == 0 && j->L[i].has_cid)
		rc = vsm_cow_set_cid(vsm__image_cow(d), j->L[i].cid);
	if (rc == 0)
		rc = vsm_cow_flush(vsm__image_cow(d));
	if (rc < 0) {
		vsm__image_drop(d);
		return rc;
	}
	r2 = vsm_image_close(d);
	if (r2 == 0)
		j->st.layers_copied++;
	return r2;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0 || fsync(fd) < 0)
		rc = vsm_err(VSM_EIO, "image copy: cannot flush directory '%s': %s", dir,
			     strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

static int run(struct copy_job *j)
{
	uint64_t b;
	size_t i;
	int rc;

	if ((rc = vsm__image_copy_plan(j)) < 0 || (rc = check_sources(j)) < 0)
		return rc;
	for (i = 0; i < j->ncopy; i++) {
		if ((rc = own_data(j->L[i].c, &b)) < 0)
			return rc;
		j->total += b;
	}
	if (!(j->buf = malloc(COPY_CHUNK)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	if ((rc = progress(j)) < 0)
		return rc;
	/* Bottom up: each new layer is created on the one below it. */
	for (i = j->ncopy; i-- > 0;) {
		bool lowest = i + 1 == j->ncopy;
		const char *below = lowest ? j->below : vsm__image_copy_base(j->target[i + 1]);
		int fmt = lowest ? j->below_fmt : vsm_cow_format(j->L[i + 1].c);

		if ((rc = copy_layer(j, i, below, fmt)) < 0)
			return rc;
	}
	j->st.layers_reused = (unsigned int)(j->n - j->ncopy);
	if ((rc = sync_dir(j->dir)) < 0)
		return rc;
	j->done = j->total;
	return progress(j);
}

static int open_source(struct copy_job *j, vsm_image **src, const char *path)
{
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_cow *c;
	size_t i;
	int rc;

	oo.flags = VSM_IMAGE_OPEN_RDONLY;
	if ((rc = vsm_image_open(src, path, &oo)) < 0)
		return rc;
	for (c = vsm__image_cow(*src); c; c = vsm_cow_backing(c))
		j->n++;
	if (!(j->L = vsm__calloc(j->n, sizeof(*j->L))))
		return -VSM_ENOMEM;
	for (i = 0, c = vsm__image_cow(*src); c; c = vsm_cow_backing(c), i++) {
		j->L[i].c = c;
		j->L[i].path = i ? c->bdev->label : path;
		j->L[i].base = vsm__image_copy_base(j->L[i].path);
		j->L[i].has_cid = vsm_cow_cid(c, j->L[i].cid);
	}
	return 0;
}

static void job_free(struct copy_job *j)
{
	size_t i;

	for (i = 0; j->target && i < j->ncopy; i++)
		free(j->target[i]);
	for (i = 0; i < j->ncand; i++)
		free(j->cand[i].name);
	for (i = 0; i < j->nmade; i++)
		free(j->made[i]);
	free(j->target);
	free(j->cand);
	free(j->made);
	free(j->below);
	free(j->dir);
	free(j->L);
	free(j->buf);
}

static int check_args(const char *src, const char *dst, const vsm_image_copy_opts *o,
		      const vsm_image_copy_stats *stats)
{
	if (!src || !dst || !*src || !*dst)
		return vsm_err(VSM_EINVAL, "image copy: source and target are required");
	if (o->version == 0 || o->version > VSM_IMAGE_COPY_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "image copy: options version %u is unknown",
			       o->version);
	if (o->flags)
		return vsm_err(VSM_EINVAL, "image copy: unknown flags 0x%x", o->flags);
	if (stats && (stats->version == 0 || stats->version > VSM_IMAGE_COPY_STATS_VERSION))
		return vsm_err(VSM_EVERSION, "image copy: stats version %u is unknown",
			       stats->version);
	return 0;
}

VSM_API int vsm_image_copy(const char *src, const char *dst, const vsm_image_copy_opts *opts,
			   vsm_image_copy_stats *stats)
{
	static const vsm_image_copy_opts defaults = VSM_IMAGE_COPY_OPTS_INIT;
	const vsm_image_copy_opts *o = opts ? opts : &defaults;
	struct copy_job j;
	vsm_image *s = NULL;
	struct stat sb;
	char *rdir = NULL;
	size_t i;
	int rc;

	vsm__error_reset();
	if ((rc = check_args(src, dst, o, stats)) < 0)
		return rc;
	memset(&j, 0, sizeof(j));
	j.o = o;
	j.dst = dst;
	if (lstat(dst, &sb) == 0)
		return vsm_err(VSM_EEXISTS, "image copy: target '%s' already exists", dst);
	if ((rc = dir_of(dst, &j.dir)) < 0)
		return rc;
	if (o->reuse_dir) {
		rdir = realpath(o->reuse_dir, NULL);
		if (!rdir || strcmp(rdir, j.dir)) {
			rc = vsm_err(VSM_EINVAL, "image copy: reuse directory '%s' is not the "
				     "directory of the target '%s' (a chain of path images "
				     "stays in one directory)", o->reuse_dir, dst);
			goto out;
		}
	}
	if ((rc = open_source(&j, &s, src)) < 0)
		goto out;
	rc = run(&j);
	if (rc < 0) {
		vsm__saved_error e;

		vsm__error_save(&e);
		for (i = j.nmade; i-- > 0;)
			unlink(j.made[i]);
		vsm__error_restore(&e);
	} else if (stats) {
		stats->bytes_copied = j.st.bytes_copied;
		stats->layers_copied = j.st.layers_copied;
		stats->layers_reused = j.st.layers_reused;
	}
out:
	if (s) {
		vsm__saved_error e;

		vsm__error_save(&e);
		vsm_image_close(s);
		vsm__error_restore(&e);
	}
	free(rdir);
	job_free(&j);
	return rc;
}
