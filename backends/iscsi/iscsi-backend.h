/*
 * The built-in iSCSI backend: a datastore is an iSCSI target reached
 * through libiscsi, devices are its LUNs. doc/iscsi.md describes the URI,
 * the two modes and what the metadata LUN holds.
 */
#ifndef VSM_BACKEND_ISCSI_H
#define VSM_BACKEND_ISCSI_H

#include "vsm/backend.h"

/* Scheme "iscsi", alias "iscsi-caw": one table for any target. Each LUN
 * is probed for SCSI COMPARE AND WRITE when it is opened and reports it
 * in its own capabilities, so leases and the metadata lock take the
 * one-I/O path where a LUN has it and Disk Paxos where it has not. An
 * iscsi-caw:// datastore refuses a metadata LUN without it. */
extern const struct vsm_datastore_ops vsm__iscsi_backend_ops;

#endif /* VSM_BACKEND_ISCSI_H */
