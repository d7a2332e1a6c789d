/*
 * The plan of a chain copy (vsm_image_copy): going down from the top's
 * parent, the first parent already in the target directory — the same
 * file, or an image whose content-ID chain equals the parent's — ends
 * the walk; the layers above it are copied under their own names, which
 * must be free. Reads only.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cow_int.h"
#include "image_int.h"
#include "image_copy.h"

const char *vsm__image_copy_base(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

char *vsm__image_copy_join(const char *dir, const char *name)
{
	char *s = malloc(strlen(dir) + strlen(name) + 2);

	if (!s) {
		vsm_err(VSM_ENOMEM, "out of memory");
		return NULL;
	}
	sprintf(s, "%s/%s", dir, name);
	return s;
}

/* Does the image at @path (in the target directory) stand on a chain with
 * the content IDs and sizes of source layers @i and below? Anything that
 * cannot be opened or read is simply no match. */
static bool chain_match(struct copy_job *j, const char *path, size_t i)
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
	return strcmp(((const struct copy_cand *)a)->name, ((const struct copy_cand *)b)->name);
}

/* The qcow2 images of the target directory that have a content ID, in
 * name order (so the choice among equal ones does not depend on the
 * directory's order). */
static int scan_reuse_dir(struct copy_job *j)
{
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	DIR *d = opendir(j->dir);
	struct dirent *e;
	struct copy_cand *nc;
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
		if (!(p = vsm__image_copy_join(j->dir, e->d_name))) {
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
static int find_in_place(struct copy_job *j, size_t i, const char **name)
{
	struct stat a, b;
	size_t k;
	char *p = vsm__image_copy_join(j->dir, j->L[i].base);

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
		if (!(p = vsm__image_copy_join(j->dir, j->cand[k].name)))
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
int vsm__image_copy_plan(struct copy_job *j)
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
		j->target[i] = i ? vsm__image_copy_join(j->dir, j->L[i].base) : vsm__strdup(j->dst);
		if (!j->target[i])
			return -VSM_ENOMEM;
		if (lstat(j->target[i], &sb) == 0)
			return vsm_err(VSM_EEXISTS, "image copy: '%s' already exists%s",
				       j->target[i], i ? " and is neither the source's layer "
				       "itself nor (with a reuse directory) an image with its "
				       "content IDs" : "");
		for (k = 0; k < i; k++)
			if (!strcmp(vsm__image_copy_base(j->target[k]), vsm__image_copy_base(j->target[i])))
				return vsm_err(VSM_EINVAL, "image copy: layers '%s' and '%s' of "
					       "the chain would both be copied to '%s'",
					       j->L[k].path, j->L[i].path, j->target[i]);
	}
	return 0;
}
