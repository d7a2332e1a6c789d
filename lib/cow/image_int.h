/*
 * The vsm_image handle for callers inside the library that open an image
 * on something else than a path (lib/imageds.c: a datastore's device or
 * golden image). Not exported.
 */
#ifndef VSM_COW_IMAGE_INT_H
#define VSM_COW_IMAGE_INT_H

#include "vsm/image.h"
#include "cow.h"

/* Calls a wrapped handle refuses (vsm__image_wrap_opts.refuse). */
#define VSM__IMAGE_NO_COMMIT  (1u << 0)
#define VSM__IMAGE_NO_FLATTEN (1u << 1)
#define VSM__IMAGE_NO_RESIZE  (1u << 2)

typedef struct {
	const char *name;        /* what info reports as filename and messages name */
	const char *format;      /* "raw", "qcow2", or NULL to probe */
	unsigned int cow_flags;  /* VSM_COW_* */
	uint64_t cache_max;
	vsm_cow_backing_fn open_backing;
	void *payload;
	unsigned int refuse;     /* VSM__IMAGE_NO_* */
	const char *refuse_why;  /* appended to the refusal, e.g. "use checkpoints" */
} vsm__image_wrap_opts;

/* A handle over an already open core bdev, which the handle owns from
 * here on (closed also when this fails). @o->payload must outlive the
 * handle. */
int vsm__image_wrap(vsm_image **out, vsm_bdev *bdev, const vsm__image_wrap_opts *o);

/* Close after a failure, keeping the thread's error (NULL ignored). */
void vsm__image_drop(vsm_image *img);

/* The engine behind a handle (borrowed). */
vsm_cow *vsm__image_cow(vsm_image *img);

#endif /* VSM_COW_IMAGE_INT_H */
