/*
 * The built-in file backend: a datastore is a directory, devices are
 * sparse files in it. Exposed to the core only for registration and for
 * opening plain image paths.
 */
#ifndef VSM_BACKEND_FILE_H
#define VSM_BACKEND_FILE_H

#include "vsm/backend.h"

extern const struct vsm_backend_ops vsm__file_backend_ops;

/* Open a file by path as a bdev of vsm__file_backend_ops.
 * Flags: VSM_BDEV_RDONLY, VSM_BDEV_CREATE. */
int vsm__file_bdev_open_path(vsm_backend_bdev **out, const char *path,
			     unsigned int flags);

#endif /* VSM_BACKEND_FILE_H */
