/*
 * The built-in libvirt backend: a datastore is a libvirt storage pool,
 * devices are its volumes. Exposed to the core only for registration; the
 * tests also reach the volume name of the metadata device.
 */
#ifndef VSM_BACKEND_LIBVIRT_H
#define VSM_BACKEND_LIBVIRT_H

#include "vsm/backend.h"

extern const struct vsm_datastore_ops vsm__libvirt_backend_ops;

/* Name of the pool volume that holds the datastore's metadata. */
#define VSM_LV_META_VOLUME "vsm-meta"

#endif /* VSM_BACKEND_LIBVIRT_H */
