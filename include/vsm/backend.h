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

/**
 * Longest device key a backend may return, including the NUL.
 *
 * Device keys. device_create() names the device it made by a key of the
 * backend's choosing, and the core hands that key back, byte for byte, in
 * every later call. The core treats a key as opaque: it must be 1 to
 * VSM_BACKEND_KEY_MAX - 1 bytes of UTF-8 without control characters
 * (U+0000 to U+001F and U+007F), and may otherwise hold anything: '/',
 * spaces, '%', ':' and ".." included ("lun3/web-d0.raw" is a good key).
 * The core never splits, escapes into a path, or interprets a key. A key
 * that breaks these rules is refused when device_create() returns it,
 * before any record names it (the call fails with -VSM_EINTERNAL and the
 * device is deleted again).
 *
 * Where keys go: into the container records on the metadata device, into
 * the journal, to the caller (vsm_device_key()), and verbatim into qcow2
 * headers as backing file names: a qcow2 layer the core makes over device
 * K names K as its backing file, and a backing file name the core reads
 * from an image is a key on the same datastore. Whoever else reads the
 * images sees the key as a backing file name: QEMU and qemu-img resolve
 * it relative to the image's own location and give some prefixes a
 * meaning ("json:", "nbd:"). A backend whose images a hypervisor opens by
 * path should choose keys that resolve that way (the file backend's keys
 * are file names in the datastore's directory); any backend gets the
 * chain in vsm_backend_deploy_req.chain_keys to describe it explicitly.
 *
 * Keys also come from untrusted places: a backing file name read from an
 * image header (a golden image someone supplied, an imported bundle)
 * reaches device_open() as a key. Every callback that takes a key must
 * refuse one that names none of its devices (-VSM_EINVAL or
 * -VSM_ENOTFOUND, with a message saying it is "not a device of this
 * datastore") and never let a key reach outside its own namespace (the
 * file backend allows only plain file names).
 *
 * Since: 0.1
 */
#define VSM_BACKEND_KEY_MAX 256

/**
 * Version of struct vsm_backend_ops in this header. Fields are only ever
 * appended; each addition bumps this number. Version 2 (Since: 0.2)
 * appended device_list. Since: 0.1
 */
#define VSM_BACKEND_OPS_VERSION 2

/** Event kinds a backend may report through vsm_backend_open_args.notify. Since: 0.1 */
typedef enum {
	VSM_BACKEND_EVENT_CHANGED = 1, /**< the storage changed under us */
	VSM_BACKEND_EVENT_LOST = 2,    /**< the storage became unreachable */
} vsm_backend_event;

/**
 * Version of vsm_backend_open_args: 1 in 0.1; 2 since 0.2 (adds flags).
 * A backend reads a field only when @version says it is there.
 * Since: 0.1
 */
#define VSM_BACKEND_OPEN_ARGS_VERSION 2

/**
 * Flag in vsm_backend_open_args.flags: make the storage itself (a file
 * datastore's directory) if it does not exist. Without it a missing
 * storage is -VSM_ENOTFOUND. Backends whose storage cannot be made
 * (a target, a pool) ignore it.
 * Since: 0.2
 */
#define VSM_BACKEND_OPEN_CREATE (1u << 0)

/** What the core hands to open(). Since: 0.1 */
typedef struct {
	uint32_t version;      /**< VSM_BACKEND_OPEN_ARGS_VERSION */
	const char *name;      /**< the datastore's name, for messages */
	void *payload;         /**< as given to vsm_backend_register() */
	/** Report a change or loss seen by the backend itself (may be called
	 *  from any thread while the datastore is open). */
	void (*notify)(void *cookie, int event, const char *detail);
	void *notify_cookie;
	/** VSM_BACKEND_OPEN_* (version >= 2 only; treat as 0 below that).
	 *  Since: 0.2 */
	unsigned int flags;
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
	const char *backing_key;    /**< qcow2 only: backing device (its key,
	                             *   which is what the image's header names),
	                             *   or NULL */
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

/** Version of vsm_backend_device_info. Since: 0.2 */
#define VSM_BACKEND_DEVICE_INFO_VERSION 1

/**
 * One device as device_list() reports it. The strings belong to the
 * backend and need only live until the callback returns; the core copies
 * what it keeps.
 * Since: 0.2
 */
typedef struct {
	uint32_t version;  /**< VSM_BACKEND_DEVICE_INFO_VERSION */
	const char *key;   /**< the key device_create() returned for it */
	/** The name the core gave device_create() (vsm_backend_device_spec.name),
	 *  or NULL when the key is that name. */
	const char *name;
	uint64_t size;     /**< bytes: a file's length, a volume's capacity, a
	                    *   LUN's size; 0 when unknown */
	/** When it was created or last written, in seconds since the epoch,
	 *  whichever is later if the backend knows both; 0 when it cannot
	 *  tell. The core keeps a device that may still be being created by
	 *  comparing this with its grace period. */
	int64_t mtime;
} vsm_backend_device_info;

/**
 * Receives one device from device_list(). Returning non-zero stops the
 * listing; device_list() then returns that value.
 * Since: 0.2
 */
typedef int (*vsm_backend_device_cb)(const vsm_backend_device_info *info, void *payload);

/** Flags for device_open() and meta_open(). Since: 0.1 */
#define VSM_BDEV_RDONLY (1u << 0)
/** meta_open(): create the metadata device if it does not exist. Since: 0.1 */
#define VSM_BDEV_CREATE (1u << 1)

/**
 * The backend vtable, version 2.
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
	 * Create a device (required). Writes its key (see
	 * VSM_BACKEND_KEY_MAX for what a key may hold) into @key; the core
	 * stores the key and uses it in every later call. On failure nothing
	 * may be left behind. Sets
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

	/* --- version 2 (Since: 0.2) --- */
	/**
	 * Call @cb once for every device on the datastore, in any order; the
	 * metadata device and anything the backend would refuse as a key are
	 * left out (optional; without it vsm_datastore_check() answers
	 * -VSM_ENOTSUP). A device may appear or vanish while the listing runs
	 * (another host creating or deleting it): report what was seen. The
	 * core makes no other backend call on @ds from within @cb.
	 * Returns 0, a non-zero value @cb returned, or a negative VSM_E* code.
	 * Since: 0.2
	 */
	int (*device_list)(vsm_backend_ds *ds, vsm_backend_device_cb cb, void *payload);
};

/**
 * Register a backend with a context. The core checks @ops->version
 * (-VSM_EVERSION for 0 or newer than this library), @ops->size, and that
 * every required callback is set (-VSM_EINVAL), and copies the table, so
 * @ops need not outlive the call. It reads only @ops->size bytes: a
 * table built against an older header (version 1 ends at
 * bdev_block_size) works, its missing callbacks read as NULL. Registering
 * a scheme that is already served gives -VSM_EEXISTS.
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

/* --- libvirt <disk> elements for device_deploy() --- */

/**
 * An element inside a disk's <source> for vsm_disk_xml_build(), such as
 * libvirt's <host>, <initiator> or <auth>: a name, attributes and child
 * elements. The builder escapes every value; names are checked instead.
 *
 * Since: 0.2
 */
typedef struct vsm_disk_xml_elem {
	/** Element name: [A-Za-z_][A-Za-z0-9_.-]*, at most 64 characters. */
	const char *name;
	/** Attributes as name, value, name, value, ..., NULL (NULL for none).
	 *  A pair whose value is NULL is left out; a name given twice is refused. */
	const char *const *attrs;
	/** @n_children child elements, written in order (NULL when 0). */
	const struct vsm_disk_xml_elem *children;
	size_t n_children; /**< number of @children */
} vsm_disk_xml_elem;

/**
 * One layer of a disk for vsm_disk_xml_build(). Layer 0 is the deployed
 * device; layer i + 1 is the backing image of layer i.
 *
 * Since: 0.2
 */
typedef struct {
	/** libvirt disk type: "file", "block", "dir", "network", "volume",
	 *  "nvme" or "vhostuser". */
	const char *type;
	/** Image format as libvirt names it: "raw", "qcow2", ... */
	const char *format;
	/** Attributes of the <source> element, as in vsm_disk_xml_elem.attrs. */
	const char *const *source_attrs;
	/** Child elements of <source> (NULL when 0). */
	const vsm_disk_xml_elem *source_children;
	size_t n_source_children; /**< number of @source_children */
} vsm_disk_xml_layer;

/**
 * Build the libvirt <disk> element a device_deploy() returns, so that no
 * backend writes one by hand: one <source> per layer, the backing chain
 * spelled out as nested <backingStore> elements (so libvirt never probes
 * formats), and a <target>.
 *
 * @out: receives the element as a NUL-terminated string; free it with free()
 * @layers: the device, then its backing chain nearest first (1 to 256 layers)
 * @target: the guest device name, checked with vsm_disk_target_check()
 * @bus: checked with vsm_disk_bus_check(); NULL leaves the attribute out
 *       (libvirt then derives the bus from the target)
 * @flags: 0
 *
 * Every attribute value goes through vsm_disk_xml_escape(); types, formats
 * and names outside their grammar are refused. Returns 0, or -VSM_EINVAL
 * with a message naming the value that was refused, or -VSM_ENOMEM.
 * Since: 0.2
 */
VSM_API int vsm_disk_xml_build(char **out, const vsm_disk_xml_layer *layers,
			       size_t n_layers, const char *target, const char *bus,
			       unsigned int flags);

/**
 * Escape @s for use as an XML attribute value or text: & < > ' " become
 * entity references, and tab, line feed and carriage return become
 * character references so they survive attribute normalisation.
 *
 * @out: receives the escaped copy; free it with free()
 *
 * Returns 0, -VSM_EINVAL if @s is not UTF-8 or holds a character that
 * XML 1.0 cannot carry (other control characters, U+FFFE, U+FFFF), or
 * -VSM_ENOMEM.
 * Since: 0.2
 */
VSM_API int vsm_disk_xml_escape(char **out, const char *s);

/**
 * Check a guest disk target against libvirt's disk names: one of the
 * prefixes fd, hd, sd, vd, xvd, ubd, then one or more letters a-z, then
 * optional digits; at most 32 characters ("vdb", "sda", "xvdaa").
 *
 * Returns 0, or -VSM_EINVAL with a message naming @target.
 * Since: 0.2
 */
VSM_API int vsm_disk_target_check(const char *target);

/**
 * Check a disk bus against the ones libvirt accepts for disks: virtio,
 * scsi, sata, ide, usb, xen, sd, fdc.
 *
 * Returns 0, or -VSM_EINVAL with a message naming @bus.
 * Since: 0.2
 */
VSM_API int vsm_disk_bus_check(const char *bus);

/* --- loadable backend modules (Since: 0.2) --- */

/**
 * ABI of the module entry point: the value the library passes to
 * vsm_backend_module_init(). It changes only if the entry point's meaning
 * changes; new vtable fields are told apart by vsm_backend_ops.version.
 * Since: 0.2
 */
#define VSM_BACKEND_MODULE_ABI 1

/**
 * Entry point of a backend module: a shared object in a module directory
 * (vsm_ctx_opts.backend_dir, $VSM_BACKEND_DIR, or $libdir/vsm/backends)
 * that exports this symbol. Every vsm_ctx_open() calls it once, from the
 * opening thread, before the context is returned; it registers its
 * backends with vsm_backend_register() and returns 0, or a negative
 * VSM_E* code with vsm_error_set() (the library logs it and opens the
 * context anyway). It should refuse an @abi_version it does not know with
 * -VSM_EVERSION. The module stays loaded until the context is freed.
 * See doc/backends.md.
 *
 * @ctx: the context being opened; use it only to register backends
 * @abi_version: VSM_BACKEND_MODULE_ABI of the calling library
 * Since: 0.2
 */
VSM_API int vsm_backend_module_init(vsm_ctx *ctx, uint32_t abi_version);

/** Name of the entry symbol, for dlsym(). Since: 0.2 */
#define VSM_BACKEND_MODULE_INIT "vsm_backend_module_init"

VSM_END_DECL

#endif /* VSM_BACKEND_H */
