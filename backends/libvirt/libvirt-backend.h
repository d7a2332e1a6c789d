/*
 * The built-in libvirt backend: a datastore is a libvirt storage pool,
 * devices are its volumes; and the built-in hypervisor driver. Exposed
 * to the core only for registration; the
 * tests also reach the volume name of the metadata device.
 */
#ifndef VSM_BACKEND_LIBVIRT_H
#define VSM_BACKEND_LIBVIRT_H

#include "vsm/backend.h"
#include "vsm/hypervisor.h"

extern const struct vsm_datastore_ops vsm__libvirt_backend_ops;

/* The built-in hypervisor driver (lv-hyper.c): domains on qemu, test,
 * xen and lxc URIs, registered by lib/open.c with
 * vsm_hypervisor_register(). */
const vsm_hypervisor_ops *vsm__libvirt_hypervisor_ops(void);

/* Name of the pool volume that holds the datastore's metadata. */
#define VSM_LV_META_VOLUME "vsm-meta"

#endif /* VSM_BACKEND_LIBVIRT_H */
