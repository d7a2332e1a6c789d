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

/**
 * A container: a snapshot of its record, owned by the caller.
 *
 * Lifetime of what its getters return: every pointer a getter hands out
 * (strings, vsm_device, vsm_locator and the locator's strings) stays
 * valid, with the value it had, until vsm_container_free(), also across
 * calls that update the handle (vsm_attach(), vsm_detach(),
 * vsm_device_deploy(), vsm_device_undeploy(), vsm_container_refresh(),
 * vsm_container_destroy(), the checkpoint calls, vsm_device_add(),
 * vsm_device_remove(), vsm_device_resize()). Such a call swaps in
 * the new state, so a getter called again gives the new value, but it
 * frees nothing handed out before. Passing the handle's own strings back
 * into a call on it is therefore always safe, e.g.
 * `vsm_device_deploy(&loc, c, vsm_device_name(vsm_container_device(c, 0)), NULL)`.
 * A handle grows by the new values its updates bring (new keys after a
 * checkpoint, a locator per deployment); a long-lived program that
 * updates one handle very often may look it up afresh now and then.
 * A handle is not safe for use by several threads at once.
 *
 * Other hosts and processes may change the same datastore at the same
 * time: every change of a container's record is made under the
 * datastore's metadata lock against the record as it is on the datastore.
 * A call whose change is based on a record that another process changed
 * since this handle's last update answers -VSM_EBUSY ("changed by another
 * process meanwhile; try again") and changes nothing; call it again.
 *
 * Since: 0.1
 */
typedef struct vsm_container vsm_container;
/** A device of a container handle, owned by the handle: valid until
 *  vsm_container_free(), also after the device is gone from the
 *  container. Its getters read the state of the handle's last update.
 *  Since: 0.1 */
typedef struct vsm_device vsm_device;
/** Where a hypervisor finds a deployed device: owned by the container
 *  handle when it comes from vsm_device_locator() (valid until
 *  vsm_container_free(), never changed), by the caller when it comes from
 *  vsm_device_deploy() (valid until vsm_locator_free()). Since: 0.1 */
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
	size_t n_devices;                      /**< entries in @devices */
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
 * The name is unique on the datastore across every host: of two creates
 * of one name at once, on any hosts, one succeeds and the other gets
 * -VSM_EEXISTS with nothing left behind. Once it returns 0 the container
 * is on the datastore and in every host's next listing.
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
 * The handle stays valid (for its getters, and what they returned before
 * the call) and must still be freed. Of several destroys of one container
 * at once (on any hosts), the one that removes the record returns 0 and
 * the others -VSM_ENOTFOUND; a destroy that a dead process began is
 * finished by the next one.
 * Since: 0.1
 */
VSM_API int vsm_container_destroy(vsm_container *c, unsigned int flags);

/**
 * Look up a container by name. @datastore may be NULL to search every
 * registered datastore; a name found on several gives -VSM_EINVAL
 * ("ambiguous"). -VSM_ENOTFOUND if none. A datastore holding two records
 * of that name (written by libvsm 0.1's racing creates) gives
 * -VSM_EEXISTS naming both UUIDs: look them up by UUID.
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
/** Free a container handle and everything its getters returned; NULL is
 *  ignored. Since: 0.1 */
VSM_API void vsm_container_free(vsm_container *c);

/** Re-read the container's record from its datastore into @c; what @c's
 *  getters returned before stays valid (see vsm_container). Since: 0.1 */
VSM_API int vsm_container_refresh(vsm_container *c);

/** Name; owned by @c, valid until vsm_container_free(). Since: 0.1 */
VSM_API const char *vsm_container_name(const vsm_container *c);
/** UUID in canonical text form; owned by @c, valid until
 *  vsm_container_free(). Since: 0.1 */
VSM_API const char *vsm_container_uuid(const vsm_container *c);
/** Name of the datastore holding it; owned by @c, valid until
 *  vsm_container_free(). Since: 0.1 */
VSM_API const char *vsm_container_datastore(const vsm_container *c);
/** Host it is attached to, or NULL; owned by @c, valid until
 *  vsm_container_free() (also after a detach). Since: 0.1 */
VSM_API const char *vsm_container_attached_host(const vsm_container *c);
/** Size of the VM-state area in bytes. Since: 0.1 */
VSM_API uint64_t vsm_container_state_size(const vsm_container *c);
/** Creation time, seconds since the epoch. Since: 0.1 */
VSM_API int64_t vsm_container_ctime(const vsm_container *c);
/** Number of devices. Since: 0.1 */
VSM_API size_t vsm_container_device_count(const vsm_container *c);
/** The @i-th device in creation order, NULL past the end; owned by @c,
 *  valid until vsm_container_free(). Since: 0.1 */
VSM_API const vsm_device *vsm_container_device(const vsm_container *c, size_t i);
/** A device by name, NULL if none; owned by @c, valid until
 *  vsm_container_free(). Since: 0.1 */
VSM_API const vsm_device *vsm_container_device_by_name(const vsm_container *c,
							const char *name);

/** Device name; owned by the device's container handle, valid until
 *  vsm_container_free(). Since: 0.1 */
VSM_API const char *vsm_device_name(const vsm_device *d);
/** Virtual size in bytes. Since: 0.1 */
VSM_API uint64_t vsm_device_size(const vsm_device *d);
/** A vsm_format. Since: 0.1 */
VSM_API int vsm_device_format(const vsm_device *d);
/** The backend's key for the device's storage (opaque to callers; see
 *  backend.h); owned by the device's container handle, valid until
 *  vsm_container_free(), also after a checkpoint gave the device a new
 *  key. Since: 0.1 */
VSM_API const char *vsm_device_key(const vsm_device *d);
/** Locator while deployed, else NULL; owned by the device's container
 *  handle, valid (and unchanged) until vsm_container_free(), also after
 *  an undeploy. Since: 0.1 */
VSM_API const vsm_locator *vsm_device_locator(const vsm_device *d);

/** Flag for vsm_device_add(): allow the device to be larger than the
 *  datastore's free space. Since: 0.2 */
#define VSM_DEVICE_ADD_THIN (1u << 0)

/**
 * Add a device to an existing container, attached or detached. The new
 * device starts undeployed. @spec is checked as vsm_container_create()
 * checks each device: a valid name (1-64 chars of [A-Za-z0-9._-]) not
 * already used in the container (-VSM_EEXISTS), a size > 0 (or 0 with
 * @spec->base), a known format, qcow2 when it has a golden @spec->base.
 * Without VSM_DEVICE_ADD_THIN the datastore's free space must hold the
 * whole size (-VSM_ENOSPC). A container has at most 64 devices.
 *
 * The device is made under the journal first; the container's record
 * is then changed under the datastore's metadata lock against the record
 * as it is on the datastore at that moment, so that adds by several
 * processes or hosts at once all land (a device name two of them add at
 * once goes to one; the other gets -VSM_EEXISTS). The record write is the
 * commit point: a call that fails before it, or a process that dies
 * before it (rolled back by the next vsm_ctx_open() on the same state
 * directory), leaves neither the device's storage nor a change to the
 * record. Updates @c (what its getters returned stays valid: see
 * vsm_container).
 *
 * Returns 0, -VSM_EINVAL, -VSM_EEXISTS, -VSM_ENOSPC, -VSM_ENOTFOUND (the
 * container is gone), -VSM_ESTATE (being destroyed), -VSM_EIO, ...
 * Since: 0.2
 */
VSM_API int vsm_device_add(vsm_container *c, const vsm_device_spec *spec,
			   unsigned int flags);

/**
 * Remove device @name from a container and delete its storage (a golden
 * base image it was a linked clone of is kept). Refused, with nothing
 * changed:
 * - -VSM_ENOTFOUND when the container has no such device;
 * - -VSM_EBUSY while the device is deployed (undeploy it first);
 * - -VSM_EBUSY when the container has checkpoints: their frozen layers
 *   reference the device (delete the checkpoints first);
 * - -VSM_ESTATE for the container's last device: a container keeps at
 *   least one (destroy the container instead).
 * The record write (under the datastore's metadata lock) is the point of
 * no return; the storage is deleted after it, and a process that dies in
 * between has it deleted by the next vsm_ctx_open(). @flags: 0. Updates
 * @c (what its getters returned, the removed device included, stays
 * valid: see vsm_container).
 * Since: 0.2
 */
VSM_API int vsm_device_remove(vsm_container *c, const char *name, unsigned int flags);

/**
 * Grow device @name to @size bytes of virtual size. Only growing is
 * allowed: a @size below the current one is refused with -VSM_EINVAL
 * (shrinking would cut off guest data); the same size is a no-op.
 * Refused with -VSM_EBUSY while the device is deployed (the hypervisor
 * holds it open at its old size), and with -VSM_EBUSY when the container
 * has checkpoints (their layers keep the old size, and a revert would
 * bring it back). A qcow2 device that is a linked clone of a golden base
 * may grow: the base reads as zeros past its end. A raw device needs a
 * backend that can resize devices (-VSM_ENOTSUP otherwise). A container
 * created thick (without VSM_CONTAINER_CREATE_THIN) needs the growth in
 * free space (-VSM_ENOSPC).
 *
 * Not undoable: the device grows first, under the journal, then the
 * record says the new size; a process that dies in between has the
 * record finished by the next vsm_ctx_open(). @flags: 0. Updates @c (what
 * its getters returned stays valid: see vsm_container).
 * Since: 0.2
 */
VSM_API int vsm_device_resize(vsm_container *c, const char *name, uint64_t size,
			      unsigned int flags);

/** Flag for vsm_attach(): reserved for lease takeover. Since: 0.1 */
#define VSM_ATTACH_TAKEOVER (1u << 0)

/**
 * Attach a container to a host: the host must be linked to the
 * container's datastore and the container must not be attached elsewhere
 * (-VSM_EBUSY). Attaching again to the same host is a no-op.
 * Updates @c (what its getters returned stays
 * valid: see vsm_container).
 * Since: 0.1
 */
VSM_API int vsm_attach(vsm_container *c, const char *host, unsigned int flags);

/** Flag for vsm_detach(): undeploy deployed devices first. Since: 0.1 */
#define VSM_DETACH_FORCE (1u << 0)

/**
 * Detach a container from its host. Refused with -VSM_EBUSY while a
 * device is deployed, unless VSM_DETACH_FORCE. Updates @c (what its
 * getters returned stays valid: see vsm_container).
 * Since: 0.1
 */
VSM_API int vsm_detach(vsm_container *c, unsigned int flags);

/** Version of vsm_deploy_opts understood by this header. Since: 0.1 */
#define VSM_DEPLOY_OPTS_VERSION 1

/** Settings for vsm_device_deploy(). Since: 0.1 */
typedef struct {
	unsigned int version; /**< VSM_DEPLOY_OPTS_VERSION */
	const char *domain;   /**< hot-attach to this running domain; NULL: none */
	/** guest target name ("vdb", "sda"); NULL: derived. Must be a libvirt
	 *  disk name: fd, hd, sd, vd, xvd or ubd, then letters a-z, then
	 *  optional digits, at most 32 characters. */
	const char *target;
	/** one of "virtio", "scsi", "sata", "ide", "usb", "xen", "sd", "fdc";
	 *  NULL: "virtio" */
	const char *bus;
	unsigned int flags;   /**< 0 */
} vsm_deploy_opts;

/** Default deploy settings. Since: 0.1 */
#define VSM_DEPLOY_OPTS_INIT { VSM_DEPLOY_OPTS_VERSION, NULL, NULL, NULL, 0 }

/**
 * Deploy a device so the hypervisor of the container's host can use it.
 * The container must be attached (-VSM_ESTATE otherwise). Deploying an
 * already deployed device returns its locator again. A target or bus
 * outside the grammar above is refused with -VSM_EINVAL naming it, before
 * any backend is called (the check of vsm_disk_target_check() and
 * vsm_disk_bus_check() in vsm/backend.h).
 *
 * @out: receives a copy of the locator; may be NULL. Updates @c (what
 *       its getters returned stays valid: see vsm_container).
 * @opts: NULL for the defaults
 * Since: 0.1
 */
VSM_API int vsm_device_deploy(vsm_locator **out, vsm_container *c,
			      const char *device, const vsm_deploy_opts *opts);

/** Undo vsm_device_deploy(). Updates @c (what its getters returned stays
 *  valid: see vsm_container). Since: 0.1 */
VSM_API int vsm_device_undeploy(vsm_container *c, const char *device,
				unsigned int flags);

/** URI a hypervisor opens: "file:///...", "iscsi://...". Owned by @loc:
 *  valid as long as @loc is (see vsm_locator). Since: 0.1 */
VSM_API const char *vsm_locator_uri(const vsm_locator *loc);
/** Local path, or NULL when the device has none. Owned by @loc: valid as
 *  long as @loc is. Since: 0.1 */
VSM_API const char *vsm_locator_path(const vsm_locator *loc);
/** The libvirt <disk> element. Owned by @loc: valid as long as @loc is.
 *  Since: 0.1 */
VSM_API const char *vsm_locator_disk_xml(const vsm_locator *loc);
/** Host the device is deployed on. Owned by @loc: valid as long as @loc
 *  is. Since: 0.1 */
VSM_API const char *vsm_locator_host(const vsm_locator *loc);
/** Free a locator returned by vsm_device_deploy(); NULL is ignored. Since: 0.1 */
VSM_API void vsm_locator_free(vsm_locator *loc);

VSM_END_DECL

#endif /* VSM_CONTAINER_H */
