/*
 * The built-in iSCSI backend: a datastore is an iSCSI target reached
 * through libiscsi, devices are its LUNs. doc/iscsi.md describes the URI,
 * the two modes and what the metadata LUN holds.
 */
#ifndef VSM_BACKEND_ISCSI_H
#define VSM_BACKEND_ISCSI_H

#include "vsm/backend.h"

/* Scheme "iscsi": works with any target; no compare-and-write callback,
 * so leases and the generation counter use their plain read/write
 * protocol. Registered with every context. */
extern const struct vsm_backend_ops vsm__iscsi_backend_ops;

/* Scheme "iscsi-caw": the same backend with bdev_compare_and_write mapped
 * to SCSI COMPARE AND WRITE. Opening a datastore through it fails unless
 * the metadata LUN supports the command. Vtable version 1 has no way to
 * make an optional callback depend on the target, hence two tables. */
extern const struct vsm_backend_ops vsm__iscsi_caw_backend_ops;

#endif /* VSM_BACKEND_ISCSI_H */
