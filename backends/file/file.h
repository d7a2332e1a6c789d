/*
 * The built-in file backend: a datastore is a directory, devices are
 * sparse files in it (their I/O is vsm_file_bdev_open()'s, in lib/io).
 * Exposed to the composition root only, for registration.
 */
#ifndef VSM_BACKEND_FILE_H
#define VSM_BACKEND_FILE_H

#include "vsm/backend.h"

extern const struct vsm_datastore_ops vsm__file_backend_ops;

#endif /* VSM_BACKEND_FILE_H */
