/*
 * The core's handle on one block device: a backend's vsm_bdev_io, a copy
 * of its block I/O table (checked for version and size once), and the
 * device's capabilities as it reported them. Records, leases and the COW
 * engine are written over this interface only, so they work the same on
 * a file, a LUN or a volume.
 */
#ifndef VSM_BDEV_H
#define VSM_BDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsm/backend.h"

typedef struct vsm_bdev vsm_bdev;

struct vsm_bdev {
	vsm_bdev_io *io;
	struct vsm_bdev_io_ops ops; /* our copy, zero-filled past the backend's size */
	vsm_bdev_caps caps;         /* as query() answered, defaults filled in */
	char *label;   /* names the device in error messages */
	bool readonly;
};

/* Take ownership of a device handle; @label is copied. Checks its table
 * (version, size, required callbacks) and asks its capabilities. On
 * failure the handle is closed (when its table has a close). */
int vsm_bdev_wrap(vsm_bdev **out, vsm_bdev_io *io, const char *label, bool readonly);
void vsm_bdev_close(vsm_bdev *b);

/* Each returns 0 or a negative VSM_E* code with the error set, the
 * message prefixed with the device's label. */
int vsm_bdev_read(vsm_bdev *b, void *buf, size_t len, uint64_t off);
int vsm_bdev_write(vsm_bdev *b, const void *buf, size_t len, uint64_t off);
/* @flags: VSM_BDEV_WRITE_FUA (emulated with a flush where the device
 * has no FUA). */
int vsm_bdev_write_flags(vsm_bdev *b, const void *buf, size_t len, uint64_t off,
			 unsigned int flags);
int vsm_bdev_flush(vsm_bdev *b);
int vsm_bdev_size(vsm_bdev *b, uint64_t *out);
/* -VSM_ENOTSUP when the device has no compare-and-write. */
int vsm_bdev_compare_and_write(vsm_bdev *b, const void *expected,
			       const void *buf, size_t len, uint64_t off);
/* Decided per device, from its capabilities. */
bool vsm_bdev_has_compare_and_write(const vsm_bdev *b);
bool vsm_bdev_can_discard(const vsm_bdev *b);
/* True when submit() keeps requests in flight together. */
bool vsm_bdev_has_native_async(const vsm_bdev *b);
const vsm_bdev_caps *vsm_bdev_caps_get(const vsm_bdev *b);
/* -VSM_ENOTSUP when the device cannot discard. */
int vsm_bdev_discard(vsm_bdev *b, uint64_t off, uint64_t len);
/* Make a range read as zeros: write_zeroes() where the device has it,
 * zero buffers otherwise. */
int vsm_bdev_write_zeroes(vsm_bdev *b, uint64_t off, uint64_t len);
uint32_t vsm_bdev_block_size(vsm_bdev *b);

/*
 * Asynchronous batches (lib/bdev_async.c). vsm_bdev_submit() follows the
 * rules of vsm_bdev_io_ops.submit() (see vsm/backend.h): 0 and every
 * request's done called once, or a negative code and none called. Where
 * the device has no native submit, the batch runs on the calling thread,
 * one request after the other, before the call returns.
 *
 * vsm_bdev_run() submits @n requests (their done and payload are its
 * own) and waits for all of them; returns 0 or the first failure, its
 * message prefixed with the label. Requests the caller made read-only
 * violations of are refused before anything is submitted.
 */
int vsm_bdev_submit(vsm_bdev *b, vsm_bdev_req *const *reqs, size_t n);
int vsm_bdev_run(vsm_bdev *b, vsm_bdev_req *reqs, size_t n);

/* Open a plain file as a bdev through the file backend (for images named
 * by path, e.g. `vsmctl image`). Flags: VSM_BDEV_RDONLY, VSM_BDEV_CREATE
 * (create the file if missing, mode 0644). */
int vsm_bdev_open_path(vsm_bdev **out, const char *path, unsigned int flags);

#endif /* VSM_BDEV_H */
