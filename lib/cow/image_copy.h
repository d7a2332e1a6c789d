/*
 * What the two halves of vsm_image_copy share: the job, planned in
 * image_copy_plan.c (which parents are reused, where the others go) and
 * carried out in image_copy.c. Not exported.
 */
#ifndef VSM_COW_IMAGE_COPY_H
#define VSM_COW_IMAGE_COPY_H

#include "vsm/image.h"
#include "cow.h"

struct copy_layer {
	vsm_cow *c;            /* borrowed from the open source chain */
	const char *path;      /* the file, as opened */
	const char *base;      /* its last component */
	bool has_cid;
	uint8_t cid[VSM_COW_CID_LEN];
};

struct copy_cand {
	char *name;
	uint8_t cid[VSM_COW_CID_LEN];
};

struct copy_job {
	const vsm_image_copy_opts *o;
	struct copy_layer *L;
	size_t n, ncopy;       /* layers 0 .. ncopy-1 are copied */
	char *dir;             /* realpath of the target's directory */
	const char *dst;
	char **target;         /* per copied layer: the file it becomes */
	char *below;           /* the reused layer's name in dir, or NULL */
	int below_fmt;
	struct copy_cand *cand;     /* qcow2 images of the reuse directory with an ID */
	size_t ncand;
	char **made;           /* files created, in order */
	size_t nmade;
	uint64_t total, done;
	vsm_image_copy_stats st;
	uint8_t *buf;
};

/* Fill j->target, j->ncopy, j->below and j->below_fmt from the open
 * source chain; nothing is written. */
int vsm__image_copy_plan(struct copy_job *j);
/* The last component of @p. */
const char *vsm__image_copy_base(const char *p);
/* dir/name, malloc'd; NULL (error set) when out of memory. */
char *vsm__image_copy_join(const char *dir, const char *name);

#endif /* VSM_COW_IMAGE_COPY_H */
