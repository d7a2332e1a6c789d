/*
 * libvsm - containers (the storage of one VM instance) and their devices
 * (virtual disks): create, attach to a host, deploy for the hypervisor.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_CONTAINER_H
#define VSM_CONTAINER_H

#include "common.h"
#include "context.h"

VSM_BEGIN_DECL

/** A container (snapshot of its record, owned by the caller). Since: 0.1 */
typedef struct vsm_container vsm_container;
/** A device inside a container handle (borrowed from it). Since: 0.1 */
typedef struct vsm_device vsm_device;
/** Where a hypervisor finds a deployed device. Since: 0.1 */
typedef struct vsm_locator vsm_locator;

/** Image format of a device. Since: 0.1 */
typedef enum {
	VSM_FORMAT_RAW = 0,
	VSM_FORMAT_QCOW2 = 1,
} vsm_format;

/** "raw" or "qcow2"; NULL for an unknown value. Since: 0.1 */
VSM_API const char *vsm_format_name(int format);
/** Parse "raw"/"qcow2"; -VSM_EINVAL otherwise. Since: 0.1 */
VSM_API int vsm_format_parse(int *out, const char *name);

/** Version of vsm_device_spec understood by this header. Since: 0.1 */
#define VSM_DEVICE_SPEC_VERSION 1

/** One device to create. Since: 0.1 */
typedef struct {
	unsigned int version; /**< VSM_DEVICE_SPEC_VERSION */
	const char *name;     /**< 1-64 chars of [A-Za-z0-9._-], unique in the container */
	uint64_t size;        /**< virtual size in bytes; > 0, or 0 with @base
	                       *   to take the base image's size */
	int format;           /**< a vsm_format */
	/** A golden image on the same datastore (its backend key, e.g. a file
	 *  name in a file datastore's directory) to make this device a linked
	 *  clone of: a qcow2 overlay, O(1) in the image's size. NULL: none. */
	const char *base;
} vsm_device_spec;

/** Default device spec. Since: 0.1 */
#define VSM_DEVICE_SPEC_INIT { VSM_DEVICE_SPEC_VERSION, NULL, 0, VSM_FORMAT_RAW, NULL }

/** Version of vsm_container_opts understood by this header. Since: 0.1 */
#define VSM_CONTAINER_OPTS_VERSION 1

/** Flag: allow the devices to add up to more than the free space. Since: 0.1 */
#define VSM_CONTAINER_CREATE_THIN (1u << 0)

/**
 * Settings for vsm_container_create(). @devices is an array of pointers so
 * that vsm_device_spec can grow without changing the array's stride.
 *
 * Since: 0.1
 */
typedef struct {
	unsigned int version;                  /**< VSM_CONTAINER_OPTS_VERSION */
	const vsm_device_spec *const *devices; /**< at least one */
	size_t n_devices;
	uint64_t state_size; /**< size of the VM-state area; 0 = default (4 MiB) */
	unsigned int flags;  /**< VSM_CONTAINER_CREATE_* */
} vsm_container_opts;

/** Default container settings. Since: 0.1 */
#define VSM_CONTAINER_OPTS_INIT { VSM_CONTAINER_OPTS_VERSION, NULL, 0, 0, 0 }

/**
 * Create a container with its devices and its VM-state area on a
 * datastore. All or nothing: if any step fails, what was made is removed
 * and no record remains; if the process dies mid-way, the next
 * vsm_ctx_open() on the same state directory finishes the rollback.
 *
 * @out: receives the new container; may be NULL
 * Returns 0, -VSM_EEXISTS, -VSM_EINVAL, -VSM_ENOSPC, -VSM_EIO, ...
 * Since: 0.1
 */
VSM_API int vsm_container_create(vsm_container **out, vsm_ctx *ctx,
				 const char *datastore, const char *name,
				 const vsm_container_opts *opts);

/** Flag for vsm_container_destroy(): detach and undeploy first. Since: 0.1 */
#define VSM_CONTAINER_DESTROY_FORCE (1u << 0)

/**
 * Delete a container, its devices and its record. Refused with
 * -VSM_EBUSY while attached unless VSM_CONTAINER_DESTROY_FORCE is given.
 * The handle stays valid (for its getters) and must still be freed.
 * Since: 0.1
 */
VSM_API int vsm_container_destroy(vsm_container *c, unsigned int flags);

/**
 * Look up a container by name. @datastore may be NULL to search every
 * registered datastore; a name found on several gives -VSM_EINVAL
 * ("ambiguous"). -VSM_ENOTFOUND if none.
 * Since: 0.1
 */
VSM_API int vsm_container_lookup(vsm_container **out, vsm_ctx *ctx,
				 const char *datastore, const char *name);

/** Look up a container by its UUID on every datastore. Since: 0.1 */
VSM_API int vsm_container_lookup_by_uuid(vsm_container **out, vsm_ctx *ctx,
					 const char *uuid);

/**
 * Containers on @datastore (or on all when NULL), sorted by datastore then
 * name. Free with vsm_container_list_free().
 * Since: 0.1
 */
VSM_API int vsm_container_list(vsm_container ***out, size_t *count,
			       vsm_ctx *ctx, const char *datastore);
/** Free a list from vsm_container_list(); NULL is ignored. Since: 0.1 */
VSM_API void vsm_container_list_free(vsm_container **list, size_t count);
/** Free a container handle; NULL is ignored. Since: 0.1 */
VSM_API void vsm_container_free(vsm_container *c);

/** Re-read the container's record from its datastore into @c. Since: 0.1 */
VSM_API int vsm_container_refresh(vsm_container *c);

/** Name (borrowed). Since: 0.1 */
VSM_API const char *vsm_container_name(const vsm_container *c);
/** UUID in canonical text form (borrowed). Since: 0.1 */
VSM_API const char *vsm_container_uuid(const vsm_container *c);
/** Name of the datastore holding it (borrowed). Since: 0.1 */
VSM_API const char *vsm_container_datastore(const vsm_container *c);
/** Host it is attached to, or NULL (borrowed). Since: 0.1 */
VSM_API const char *vsm_container_attached_host(const vsm_container *c);
/** Size of the VM-state area in bytes. Since: 0.1 */
VSM_API uint64_t vsm_container_state_size(const vsm_container *c);
/** Creation time, seconds since the epoch. Since: 0.1 */
VSM_API int64_t vsm_container_ctime(const vsm_container *c);
/** Number of devices. Since: 0.1 */
VSM_API size_t vsm_container_device_count(const vsm_container *c);
/** The @i-th device in creation order, NULL past the end (borrowed). Since: 0.1 */
VSM_API const vsm_device *vsm_container_device(const vsm_container *c, size_t i);
/** A device by name, NULL if none (borrowed). Since: 0.1 */
VSM_API const vsm_device *vsm_container_device_by_name(const vsm_container *c,
							const char *name);

/** Device name (borrowed). Since: 0.1 */
VSM_API const char *vsm_device_name(const vsm_device *d);
/** Virtual size in bytes. Since: 0.1 */
VSM_API uint64_t vsm_device_size(const vsm_device *d);
/** A vsm_format. Since: 0.1 */
VSM_API int vsm_device_format(const vsm_device *d);
/** The backend's key for the device's storage (borrowed). Since: 0.1 */
VSM_API const char *vsm_device_key(const vsm_device *d);
/** Locator while deployed, else NULL (borrowed from the container). Since: 0.1 */
VSM_API const vsm_locator *vsm_device_locator(const vsm_device *d);

/** Flag for vsm_attach(): reserved for lease takeover. Since: 0.1 */
#define VSM_ATTACH_TAKEOVER (1u << 0)

/**
 * Attach a container to a host: the host must be linked to the
 * container's datastore and the container must not be attached elsewhere
 * (-VSM_EBUSY). Attaching again to the same host is a no-op.
 * Updates @c.
 * Since: 0.1
 */
VSM_API int vsm_attach(vsm_container *c, const char *host, unsigned int flags);

/** Flag for vsm_detach(): undeploy deployed devices first. Since: 0.1 */
#define VSM_DETACH_FORCE (1u << 0)

/**
 * Detach a container from its host. Refused with -VSM_EBUSY while a
 * device is deployed, unless VSM_DETACH_FORCE. Updates @c.
 * Since: 0.1
 */
VSM_API int vsm_detach(vsm_container *c, unsigned int flags);

/** Version of vsm_deploy_opts understood by this header. Since: 0.1 */
#define VSM_DEPLOY_OPTS_VERSION 1

/** Settings for vsm_device_deploy(). Since: 0.1 */
typedef struct {
	unsigned int version; /**< VSM_DEPLOY_OPTS_VERSION */
	const char *domain;   /**< hot-attach to this running domain; NULL: none */
	const char *target;   /**< guest target name ("vdb", "sda"); NULL: derived */
	const char *bus;      /**< "virtio", "scsi", ...; NULL: "virtio" */
	unsigned int flags;   /**< 0 */
} vsm_deploy_opts;

/** Default deploy settings. Since: 0.1 */
#define VSM_DEPLOY_OPTS_INIT { VSM_DEPLOY_OPTS_VERSION, NULL, NULL, NULL, 0 }

/**
 * Deploy a device so the hypervisor of the container's host can use it.
 * The container must be attached (-VSM_ESTATE otherwise). Deploying an
 * already deployed device returns its locator again.
 *
 * @out: receives a copy of the locator; may be NULL. Updates @c.
 * @opts: NULL for the defaults
 * Since: 0.1
 */
VSM_API int vsm_device_deploy(vsm_locator **out, vsm_container *c,
			      const char *device, const vsm_deploy_opts *opts);

/** Undo vsm_device_deploy(). Updates @c. Since: 0.1 */
VSM_API int vsm_device_undeploy(vsm_container *c, const char *device,
				unsigned int flags);

/** URI a hypervisor opens: "file:///...", "iscsi://..." (borrowed). Since: 0.1 */
VSM_API const char *vsm_locator_uri(const vsm_locator *loc);
/** Local path, or NULL when the device has none (borrowed). Since: 0.1 */
VSM_API const char *vsm_locator_path(const vsm_locator *loc);
/** The libvirt <disk> element (borrowed). Since: 0.1 */
VSM_API const char *vsm_locator_disk_xml(const vsm_locator *loc);
/** Host the device is deployed on (borrowed). Since: 0.1 */
VSM_API const char *vsm_locator_host(const vsm_locator *loc);
/** Free a locator returned by vsm_device_deploy(); NULL is ignored. Since: 0.1 */
VSM_API void vsm_locator_free(vsm_locator *loc);

VSM_END_DECL

#endif /* VSM_CONTAINER_H */
