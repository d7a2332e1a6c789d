/*
 * Content IDs of path images (vsm_image_cid_get, vsm_image_freeze) and
 * the chain copy that uses them (vsm_image_copy): copy a chain layer by
 * layer, stopping at the first parent whose content-ID chain is already
 * in the target directory. The plan is made before anything is written;
 * every file the copy creates is removed again when it fails.
 */
#include <dirent.h>
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

#define COPY_CHUNK (4u << 20)
#define RAW_GRAIN 4096u

/* ---- content IDs ---- */

static void cid_text(const uint8_t *cid, char out[VSM_IMAGE_CID_STRLEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < VSM_COW_CID_LEN; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[cid[i] >> 4];
		out[o++] = hex[cid[i] & 15];
	}
	out[o] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A fresh random ID: the base layer's UUID (libuuid), as bytes. */
static void cid_new(uint8_t cid[VSM_COW_CID_LEN])
{
	char s[VSM_UUID_STRLEN + 1];
	size_t i = 0, o = 0;

	vsm__uuid_new(s);
	while (s[i] && o < VSM_COW_CID_LEN) {
		if (s[i] == '-') {
			i++;
			continue;
		}
		cid[o++] = (uint8_t)(hexval(s[i]) << 4 | hexval(s[i + 1]));
		i += 2;
	}
}

VSM_API int vsm_image_cid_get(vsm_image *img, char out[VSM_IMAGE_CID_STRLEN + 1])
{
	uint8_t cid[VSM_COW_CID_LEN];

	vsm__error_reset();
	if (!img || !out)
		return vsm_err(VSM_EINVAL, "image: handle and out are required");
	if (!vsm_cow_cid(vsm__image_cow(img), cid))
		return vsm_err(VSM_ENOTFOUND, "%s has no content ID",
			       vsm_cow_label(vsm__image_cow(img)));
	cid_text(cid, out);
	return 0;
}

VSM_API int vsm_image_freeze(vsm_image *img, unsigned int flags)
{
	uint8_t cid[VSM_COW_CID_LEN];
	vsm_cow *c;

	vsm__error_reset();
	if (!img)
		return vsm_err(VSM_EINVAL, "image handle is NULL");
	c = vsm__image_cow(img);
	if (flags)
		return vsm_err(VSM_EINVAL, "%s: unknown freeze flags 0x%x", vsm_cow_label(c), flags);
	if (vsm_cow_cid(c, cid))
		return 0;
	cid_new(cid);
	return vsm_cow_set_cid(c, cid);
}

/* ---- chain copy ---- */

struct layer {
	vsm_cow *c;            /* borrowed from the open source chain */
	const char *path;      /* the file, as opened */
	const char *base;      /* its last component */
	bool has_cid;
	uint8_t cid[VSM_COW_CID_LEN];
};

struct cand {
	char *name;
	uint8_t cid[VSM_COW_CID_LEN];
};

struct job {
	const vsm_image_copy_opts *o;
	struct layer *L;
	size_t n, ncopy;       /* layers 0 .. ncopy-1 are copied */
	char *dir;             /* realpath of the target's directory */
	const char *dst;
	char **target;         /* per copied layer: the file it becomes */
	char *below;           /* the reused layer's name in dir, or NULL */
	int below_fmt;
	struct cand *cand;     /* qcow2 images of the reuse directory with an ID */
	size_t ncand;
	char **made;           /* files created, in order */
	size_t nmade;
	uint64_t total, done;
	vsm_image_copy_stats st;
	uint8_t *buf;
};

static const char *last_part(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

static char *join(const char *dir, const char *name)
{
	char *s = malloc(strlen(dir) + strlen(name) + 2);

	if (!s) {
		vsm_err(VSM_ENOMEM, "out of memory");
		return NULL;
	}
	sprintf(s, "%s/%s", dir, name);
	return s;
}

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

/* Does the image at @path (in the target directory) stand on a chain with
 * the content IDs and sizes of source layers @i and below? Anything that
 * cannot be opened or read is simply no match. */
static bool chain_match(struct job *j, const char *path, size_t i)
{
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img = NULL;
	vsm_cow *c;
	uint8_t cid[VSM_COW_CID_LEN];
	bool ok = true;

	oo.flags = VSM_IMAGE_OPEN_RDONLY;
	if (vsm_image_open(&img, path, &oo) < 0) {
		vsm__error_reset();
		return false;
	}
	for (c = vsm__image_cow(img); ok && i < j->n; i++, c = vsm_cow_backing(c)) {
		ok = c && j->L[i].has_cid && vsm_cow_cid(c, cid) &&
		     !memcmp(cid, j->L[i].cid, sizeof(cid)) &&
		     vsm_cow_size(c) == vsm_cow_size(j->L[i].c);
	}
	ok = ok && c == NULL;
	vsm_image_close(img);
	return ok;
}

static int cand_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cand *)a)->name, ((const struct cand *)b)->name);
}

/* The qcow2 images of the target directory that have a content ID, in
 * name order (so the choice among equal ones does not depend on the
 * directory's order). */
static int scan_reuse_dir(struct job *j)
{
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	DIR *d = opendir(j->dir);
	struct dirent *e;
	struct cand *nc;
	int rc = 0;

	if (!d)
		return vsm_err(VSM_EIO, "image copy: cannot read directory '%s': %s", j->dir,
			       strerror(errno));
	oo.flags = VSM_IMAGE_OPEN_RDONLY | VSM_IMAGE_OPEN_NO_BACKING;
	oo.format = "qcow2";
	while (rc == 0 && (e = readdir(d))) {
		vsm_image *img = NULL;
		struct stat sb;
		uint8_t cid[VSM_COW_CID_LEN];
		char *p;

		if (e->d_name[0] == '.')
			continue;
		if (!(p = join(j->dir, e->d_name))) {
			rc = -VSM_ENOMEM;
			break;
		}
		if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode) && vsm_image_open(&img, p, &oo) == 0 &&
		    vsm_cow_cid(vsm__image_cow(img), cid)) {
			nc = realloc(j->cand, (j->ncand + 1) * sizeof(*nc));
			if (!nc || !(nc[j->ncand].name = vsm__strdup(e->d_name))) {
				if (nc)
					j->cand = nc;
				rc = vsm_err(VSM_ENOMEM, "out of memory");
			} else {
				j->cand = nc;
				memcpy(nc[j->ncand++].cid, cid, sizeof(cid));
			}
		}
		vsm_image_close(img);
		vsm__error_reset();
		free(p);
	}
	closedir(d);
	if (j->ncand)
		qsort(j->cand, j->ncand, sizeof(*j->cand), cand_cmp);
	return rc;
}

/* Parent @i is already in the target directory: its own name there if
 * that is the same file or a match, else the first matching candidate
 * (another name; plan() then refuses a different file of its own name
 * only if it has to be copied). */
static int find_in_place(struct job *j, size_t i, const char **name)
{
	struct stat a, b;
	size_t k;
	char *p = join(j->dir, j->L[i].base);

	*name = NULL;
	if (!p)
		return -VSM_ENOMEM;
	if (lstat(p, &a) == 0) {
		if (stat(p, &a) == 0 && stat(j->L[i].path, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino)
			*name = j->L[i].base;
		else if (j->o->reuse_dir && chain_match(j, p, i))
			*name = j->L[i].base;
	}
	free(p);
	if (*name)
		return 0;
	for (k = 0; j->o->reuse_dir && j->L[i].has_cid && k < j->ncand; k++) {
		if (memcmp(j->cand[k].cid, j->L[i].cid, VSM_COW_CID_LEN))
			continue;
		if (!(p = join(j->dir, j->cand[k].name)))
			return -VSM_ENOMEM;
		if (chain_match(j, p, i))
			*name = j->cand[k].name;
		free(p);
		if (*name)
			break;
	}
	return 0;
}

/* Decide which layers are copied, where they go, and what the lowest
 * copied layer stands on. Nothing is written. */
static int plan(struct job *j)
{
	size_t i, k;
	struct stat sb;
	int rc;

	if (j->o->reuse_dir && (rc = scan_reuse_dir(j)) < 0)
		return rc;
	j->ncopy = j->n;
	for (i = 1; i < j->n; i++) {
		const char *name = NULL;

		if ((rc = find_in_place(j, i, &name)) < 0)
			return rc;
		if (name) {
			if (!(j->below = vsm__strdup(name)))
				return -VSM_ENOMEM;
			j->below_fmt = vsm_cow_format(j->L[i].c);
			j->ncopy = i;
			break;
		}
	}
	if (!(j->target = vsm__calloc(j->ncopy, sizeof(char *))))
		return -VSM_ENOMEM;
	for (i = 0; i < j->ncopy; i++) {
		j->target[i] = i ? join(j->dir, j->L[i].base) : vsm__strdup(j->dst);
		if (!j->target[i])
			return -VSM_ENOMEM;
		if (lstat(j->target[i], &sb) == 0)
			return vsm_err(VSM_EEXISTS, "image copy: '%s' already exists%s",
				       j->target[i], i ? " and is neither the source's layer "
				       "itself nor (with a reuse directory) an image with its "
				       "content IDs" : "");
		for (k = 0; k < i; k++)
			if (!strcmp(last_part(j->target[k]), last_part(j->target[i])))
				return vsm_err(VSM_EINVAL, "image copy: layers '%s' and '%s' of "
					       "the chain would both be copied to '%s'",
					       j->L[k].path, j->L[i].path, j->target[i]);
	}
	return 0;
}

/* Refuse a damaged layer before anything is created. */
static int check_sources(struct job *j)
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

static int progress(struct job *j)
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
static int create_excl(struct job *j, const char *path)
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
static int make_layer(struct job *j, size_t i, const char *below, int below_fmt)
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
static int put(struct job *j, vsm_cow *d, const uint8_t *buf, uint64_t len, uint64_t off,
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

static int copy_data(struct job *j, vsm_cow *s, vsm_cow *d)
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

static int copy_layer(struct job *j, size_t i, const char *below, int below_fmt)
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

static int run(struct job *j)
{
	uint64_t b;
	size_t i;
	int rc;

	if ((rc = plan(j)) < 0 || (rc = check_sources(j)) < 0)
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
		const char *below = i + 1 < j->ncopy ? last_part(j->target[i + 1]) : j->below;
		int fmt = i + 1 < j->ncopy ? vsm_cow_format(j->L[i + 1].c) : j->below_fmt;

		if ((rc = copy_layer(j, i, below, fmt)) < 0)
			return rc;
	}
	j->st.layers_reused = (unsigned int)(j->n - j->ncopy);
	if ((rc = sync_dir(j->dir)) < 0)
		return rc;
	j->done = j->total;
	return progress(j);
}

static int open_source(struct job *j, vsm_image **src, const char *path)
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
		j->L[i].base = last_part(j->L[i].path);
		j->L[i].has_cid = vsm_cow_cid(c, j->L[i].cid);
	}
	return 0;
}

static void job_free(struct job *j)
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
	struct job j;
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
