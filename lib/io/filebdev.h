/*
 * POSIX file devices (filebdev.c): the public vsm_file_bdev_open() is in
 * backend.h; this header adds what tests reach inside an open one.
 */
#ifndef VSM_FILEBDEV_H
#define VSM_FILEBDEV_H

#include <stdint.h>

#include "vsm/backend.h"

/* For tests: a VSM_BDEV_DIRECT device's O_DIRECT alignment (0 when it is
 * not O_DIRECT) and how many partial blocks its writes have read back. */
uint32_t vsm__file_bdev_dio_align(const vsm_bdev_io *b);
unsigned long vsm__file_bdev_rmw_reads(const vsm_bdev_io *b);
/* For tests: use a coarser alignment (a multiple of the current one,
 * at most 64 KiB) to reach the read-modify-write paths. */
int vsm__file_bdev_dio_force_align(vsm_bdev_io *b, uint32_t align);

#endif /* VSM_FILEBDEV_H */
