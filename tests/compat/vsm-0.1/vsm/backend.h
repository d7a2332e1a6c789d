/*
 * libvsm - the southbound interface: what a storage system provides.
 *
 * A backend fills one struct vsm_backend_ops and registers it with
 * vsm_backend_register(). The built-in backends (file, libvirt, iscsi) use
 * this same header. The core never looks inside a backend's handles; it
 * calls back with them.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_BACKEND_H
#define VSM_BACKEND_H

#include "common.h"
#include "errors.h"
#include "context.h"
#include "container.h"

VSM_BEGIN_DECL

/** A backend's open datastore; the backend defines the struct. Since: 0.1 */
typedef struct vsm_backend_ds vsm_backend_ds;
/** A backend's open block device; the backend defines the struct. Since: 0.1 */
typedef struct vsm_backend_bdev vsm_backend_bdev;

/** Longest device key a backend may return, including the NUL. Since: 0.1 */
#define VSM_BACKEND_KEY_MAX 256

/**
 * Version of struct vsm_backend_ops in this header. Fields are only ever
 * appended; each addition bumps this number. Since: 0.1
 */
#define VSM_BACKEND_OPS_VERSION 1

/** Event kinds a backend may report through vsm_backend_open_args.notify. Since: 0.1 */
typedef enum {
	VSM_BACKEND_EVENT_CHANGED = 1, /**< the storage changed under us */
	VSM_BACKEND_EVENT_LOST = 2,    /**< the storage became unreachable */
} vsm_backend_event;

/** Version of vsm_backend_open_args. Since: 0.1 */
#define VSM_BACKEND_OPEN_ARGS_VERSION 1

/** What the core hands to open(). Since: 0.1 */
typedef struct {
	uint32_t version;      /**< VSM_BACKEND_OPEN_ARGS_VERSION */
	const char *name;      /**< the datastore's name, for messages */
	void *payload;         /**< as given to vsm_backend_register() */
	/** Report a change or loss seen by the backend itself (may be called
	 *  from any thread while the datastore is open). */
	void (*notify)(void *cookie, int event, const char *detail);
	void *notify_cookie;
} vsm_backend_open_args;

/** Version of vsm_backend_device_spec. Since: 0.1 */
#define VSM_BACKEND_DEVICE_SPEC_VERSION 1

/** Flag in vsm_backend_device_spec.flags: space need not be reserved. Since: 0.1 */
#define VSM_BACKEND_DEVICE_THIN (1u << 0)

/** What the core asks device_create() to make. Since: 0.1 */
typedef struct {
	uint32_t version;     /**< VSM_BACKEND_DEVICE_SPEC_VERSION */
	const char *name;     /**< chosen by the core: unique on the datastore,
	                       *   [A-Za-z0-9._-], at most 128 chars */
	uint64_t size;        /**< bytes of storage wanted (for qcow2: the
	                       *   virtual size; the image grows into it) */
	const char *format;   /**< "raw" or "qcow2": how the core will use it */
	const char *backing_key;    /**< qcow2 only: backing device, or NULL */
	const char *backing_format; /**< format of @backing_key */
	unsigned int flags;   /**< VSM_BACKEND_DEVICE_* */
} vsm_backend_device_spec;

/** device_create() out-flag: the backend wrote the image format itself. Since: 0.1 */
#define VSM_BACKEND_CREATED_FORMATTED (1u << 0)

/** Version of vsm_backend_deploy_req. Since: 0.1 */
#define VSM_BACKEND_DEPLOY_REQ_VERSION 1

/** What the core asks device_deploy()/device_undeploy() to do. Since: 0.1 */
typedef struct {
	uint32_t version;      /**< VSM_BACKEND_DEPLOY_REQ_VERSION */
	const char *host;      /**< host name */
	const char *host_uri;  /**< the host's hypervisor URI, or NULL */
	const char *domain;    /**< domain to hot-(un)plug into, or NULL */
	const char *format;    /**< "raw" or "qcow2" */
	const char *target;    /**< guest target name, e.g. "vdb" */
	const char *bus;       /**< "virtio", "scsi", ... */
	/** Backing chain below the device, nearest first (keys on this
	 *  datastore and their formats); empty for raw devices. */
	const char *const *chain_keys;
	const char *const *chain_formats;
	size_t chain_len;
} vsm_backend_deploy_req;

/** Flags for device_open() and meta_open(). Since: 0.1 */
#define VSM_BDEV_RDONLY (1u << 0)
/** meta_open(): create the metadata device if it does not exist. Since: 0.1 */
#define VSM_BDEV_CREATE (1u << 1)

/**
 * The backend vtable, version 1.
 *
 * Every callback returns 0 or a negative VSM_E* code and, on failure,
 * sets the message with vsm_error_set(). Callbacks marked optional may be
 * NULL; the core then answers the public call with -VSM_ENOTSUP. The
 * bdev_* callbacks may be called from several threads at once on the same
 * handle: a backend that can keep several commands in flight (iSCSI) gets
 * its queue depth from concurrent callers.
 *
 * Since: 0.1
 */
struct vsm_backend_ops {
	uint32_t version; /**< VSM_BACKEND_OPS_VERSION the backend was built for */
	uint32_t size;    /**< sizeof(struct vsm_backend_ops) as built */
	const char *scheme;      /**< URI scheme served, e.g. "file" */
	const char *description; /**< one line for listings */

	/* --- datastore --- */
	/** Open the datastore at @uri (required). */
	int (*open)(vsm_backend_ds **out, const char *uri,
		    const vsm_backend_open_args *args);
	/** Close it (required). */
	void (*close)(vsm_backend_ds *ds);
	/** Capacity and free space in bytes (required). */
	int (*capacity)(vsm_backend_ds *ds, uint64_t *total, uint64_t *free_bytes);
	/**
	 * Open the datastore's metadata device, where the core keeps its
	 * records and lease area (required). With VSM_BDEV_CREATE, make it of
	 * at least @min_size bytes if missing; without, -VSM_ENOTFOUND if missing.
	 */
	int (*meta_open)(vsm_backend_bdev **out, vsm_backend_ds *ds,
			 uint64_t min_size, unsigned int flags);

	/* --- devices --- */
	/**
	 * Create a device (required). Writes its key (at most
	 * VSM_BACKEND_KEY_MAX bytes with the NUL) into @key; the core stores
	 * the key and uses it in every later call. Sets
	 * VSM_BACKEND_CREATED_FORMATTED in @out_flags if the backend wrote
	 * the image format; otherwise the core formats the device itself
	 * through bdev I/O. -VSM_EEXISTS if @spec->name exists.
	 */
	int (*device_create)(vsm_backend_ds *ds, const vsm_backend_device_spec *spec,
			     char *key, size_t key_size, unsigned int *out_flags);
	/** Delete a device; -VSM_ENOTFOUND if it is gone (required). */
	int (*device_delete)(vsm_backend_ds *ds, const char *key, unsigned int flags);
	/** Grow a device's storage (optional). */
	int (*device_resize)(vsm_backend_ds *ds, const char *key, uint64_t size,
			     unsigned int flags);

	/* --- hosts --- */
	/** Make the datastore usable on @host (required; may do nothing). */
	int (*host_attach)(vsm_backend_ds *ds, const char *host,
			   const char *host_uri, unsigned int flags);
	/** Undo host_attach (required; may do nothing). */
	int (*host_detach)(vsm_backend_ds *ds, const char *host,
			   const char *host_uri, unsigned int flags);
	/** Deploy a device on a host; fill @out with vsm_locator_set() (required). */
	int (*device_deploy)(vsm_backend_ds *ds, const char *key,
			     const vsm_backend_deploy_req *req, vsm_locator *out);
	/** Undo device_deploy (required). */
	int (*device_undeploy)(vsm_backend_ds *ds, const char *key,
			       const vsm_backend_deploy_req *req);

	/* --- block I/O --- */
	/** Open a device for block I/O (required). */
	int (*device_open)(vsm_backend_bdev **out, vsm_backend_ds *ds,
			   const char *key, unsigned int flags);
	/** Close a bdev from device_open() or meta_open() (required). */
	void (*bdev_close)(vsm_backend_bdev *bdev);
	/** Read exactly @len bytes at @off; bytes past the end read as 0 (required). */
	int (*bdev_read)(vsm_backend_bdev *bdev, void *buf, size_t len, uint64_t off);
	/** Write exactly @len bytes at @off; files may grow, fixed devices
	 *  answer -VSM_ENOSPC past their end (required). */
	int (*bdev_write)(vsm_backend_bdev *bdev, const void *buf, size_t len,
			  uint64_t off);
	/** Make completed writes durable (required). */
	int (*bdev_flush)(vsm_backend_bdev *bdev);
	/** Current size in bytes (required). */
	int (*bdev_size)(vsm_backend_bdev *bdev, uint64_t *out);
	/**
	 * Atomically: if the @len bytes at @off equal @expected, write @buf
	 * there; otherwise change nothing and return -VSM_EMISMATCH
	 * (optional; leases use it for their one-I/O fast path).
	 */
	int (*bdev_compare_and_write)(vsm_backend_bdev *bdev, const void *expected,
				      const void *buf, size_t len, uint64_t off);
	/** Release a range; it then reads as zeros (optional). */
	int (*bdev_discard)(vsm_backend_bdev *bdev, uint64_t off, uint64_t len);
	/** Logical block size, 512 or 4096 (optional; 512 assumed). */
	int (*bdev_block_size)(vsm_backend_bdev *bdev, uint32_t *out);
};

/**
 * Register a backend with a context. The core checks @ops->version
 * (-VSM_EVERSION for 0 or newer than this library), @ops->size, and that
 * every required callback is set (-VSM_EINVAL), and copies the table, so
 * @ops need not outlive the call. Registering a scheme that is already
 * served gives -VSM_EEXISTS.
 *
 * @payload: handed to open() in vsm_backend_open_args
 * Since: 0.1
 */
VSM_API int vsm_backend_register(vsm_ctx *ctx, const struct vsm_backend_ops *ops,
				 void *payload);

/**
 * Set the calling thread's last error; returns -@code so a backend can
 * write `return vsm_error_set(VSM_EIO, "...")`. @code may be given negated.
 * Since: 0.1
 */
VSM_API int vsm_error_set(int code, const char *fmt, ...) VSM_PRINTF(2, 3);

/**
 * Fill a locator from device_deploy(). @uri is required; @path may be NULL
 * for devices with no local path; @disk_xml is the libvirt <disk> element.
 * The strings are copied.
 * Since: 0.1
 */
VSM_API int vsm_locator_set(vsm_locator *loc, const char *uri, const char *path,
			    const char *disk_xml);

VSM_END_DECL

#endif /* VSM_BACKEND_H */
