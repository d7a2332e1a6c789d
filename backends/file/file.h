/*
 * The built-in file backend: a datastore is a directory, devices are
 * sparse files in it. Exposed to the core only for registration and for
 * opening plain image paths.
 */
#ifndef VSM_BACKEND_FILE_H
#define VSM_BACKEND_FILE_H

#include "vsm/backend.h"

extern const struct vsm_datastore_ops vsm__file_backend_ops;

/* Open a file by path as a device of the file backend.
 * Flags: VSM_BDEV_RDONLY, VSM_BDEV_CREATE. */
int vsm__file_bdev_open_path(vsm_bdev_io **out, const char *path,
			     unsigned int flags);

/* For tests: a metadata device's O_DIRECT alignment (0 when it is not
 * O_DIRECT) and how many partial blocks its writes have read back. */
uint32_t vsm__file_bdev_dio_align(const vsm_bdev_io *b);
unsigned long vsm__file_bdev_rmw_reads(const vsm_bdev_io *b);
/* For tests: use a coarser alignment (a multiple of the current one,
 * at most 64 KiB) to reach the read-modify-write paths. */
int vsm__file_bdev_dio_force_align(vsm_bdev_io *b, uint32_t align);

#endif /* VSM_BACKEND_FILE_H */
