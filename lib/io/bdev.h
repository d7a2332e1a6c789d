/*
 * The core's handle on one block device: a backend's bdev plus the ops
 * that drive it. Records, leases and the COW engine are written over this
 * interface only, so they work the same on a file, a LUN or a volume.
 */
#ifndef VSM_BDEV_H
#define VSM_BDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsm/backend.h"

typedef struct vsm_bdev vsm_bdev;

struct vsm_bdev {
	const struct vsm_backend_ops *ops;
	vsm_backend_bdev *h;
	char *label;   /* names the device in error messages */
	bool readonly;
};

/* Take ownership of a backend handle; @label is copied. On failure the
 * handle is closed. */
int vsm_bdev_wrap(vsm_bdev **out, const struct vsm_backend_ops *ops,
		  vsm_backend_bdev *h, const char *label, bool readonly);
void vsm_bdev_close(vsm_bdev *b);

/* Each returns 0 or a negative VSM_E* code with the error set, the
 * message prefixed with the device's label. */
int vsm_bdev_read(vsm_bdev *b, void *buf, size_t len, uint64_t off);
int vsm_bdev_write(vsm_bdev *b, const void *buf, size_t len, uint64_t off);
int vsm_bdev_flush(vsm_bdev *b);
int vsm_bdev_size(vsm_bdev *b, uint64_t *out);
/* -VSM_ENOTSUP when the backend has no compare-and-write. */
int vsm_bdev_compare_and_write(vsm_bdev *b, const void *expected,
			       const void *buf, size_t len, uint64_t off);
bool vsm_bdev_has_compare_and_write(const vsm_bdev *b);
/* -VSM_ENOTSUP when the backend cannot discard. */
int vsm_bdev_discard(vsm_bdev *b, uint64_t off, uint64_t len);
uint32_t vsm_bdev_block_size(vsm_bdev *b);

/* Open a plain file as a bdev through the file backend (for images named
 * by path, e.g. `vsmctl image`). Flags: VSM_BDEV_RDONLY, VSM_BDEV_CREATE
 * (create the file if missing, mode 0644). */
int vsm_bdev_open_path(vsm_bdev **out, const char *path, unsigned int flags);

#endif /* VSM_BDEV_H */
