/*
 * The vsm_image handle for callers inside the library that open an image
 * on something else than a path (lib/imageds.c: a datastore's device or
 * golden image). Not exported.
 */
#ifndef VSM_COW_IMAGE_INT_H
#define VSM_COW_IMAGE_INT_H

#include <pthread.h>

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

/*
 * Live migration of a handle's device (lib/checkpoint/migrate_live.c).
 * The migration owns one vsm__image_live per device and points every
 * open handle of the device at it: each write, write_zeroes and discard
 * through the handle then marks its range dirty (after the change), or,
 * once @mirror is set (synchronous mirroring, and the switchover's
 * commit), goes to @mirror too, under @mu, which the migration's own
 * copy of a range also holds. Reads and flushes, and those changes, hold
 * the handle's gate shared; the migration holds it exclusive (hold,
 * release) to pause the handle, and only then sets @live, @mirror or
 * swaps the engine under the handle.
 */
typedef struct {
	pthread_mutex_t mu;
	uint32_t gran_bits;      /* a bit covers 1 << gran_bits bytes */
	uint64_t nbits;
	uint64_t *bits;
	uint64_t ndirty;         /* bits set */
	vsm_cow *mirror;         /* set: every change also goes here (borrowed) */
	int mirror_rc;           /* the first failure of a mirrored change */
	uint64_t mirrored;       /* bytes written to both sides */
} vsm__image_live;

int vsm__image_live_init(vsm__image_live *lv, uint64_t size, uint32_t gran_bits);
void vsm__image_live_fini(vsm__image_live *lv); /* twice is harmless */
/* How many bits are set now. */
uint64_t vsm__image_live_dirty(vsm__image_live *lv);
/* The dirty bits (a copy the caller frees) and their count; clears them. */
int vsm__image_live_take(vsm__image_live *lv, uint64_t **out, uint64_t *ndirty);

/* Pause the handle's guest I/O (waits for calls in flight), resume it. */
void vsm__image_hold(vsm_image *img);
void vsm__image_release(vsm_image *img);
/* While held: watch the handle with @lv (NULL: no more). */
void vsm__image_set_live(vsm_image *img, vsm__image_live *lv);
/* While held: put engine @cow under the handle (it owns it from here)
 * and, unless NULL, the new name @name (malloc'd, taken); returns the
 * engine it had, which the caller closes. */
vsm_cow *vsm__image_swap(vsm_image *img, vsm_cow *cow, char *name);
/* Was the handle opened for writing? */
bool vsm__image_writable(vsm_image *img);

/* Called once by vsm_image_close() of a handle, after its data was
 * flushed and before its engine closes (a registry of open handles
 * forgets it there). */
typedef void (*vsm__image_close_fn)(vsm_image *img, void *payload);
void vsm__image_set_close_hook(vsm_image *img, vsm__image_close_fn fn, void *payload);

#endif /* VSM_COW_IMAGE_INT_H */
