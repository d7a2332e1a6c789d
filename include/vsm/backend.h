/*
 * libvsm - the southbound interface: what a storage system provides.
 *
 * Since 0.2 a backend fills two kinds of tables (vtable v2):
 *
 *  - one struct vsm_datastore_ops per backend, registered with
 *    vsm_datastore_ops_register(): open a datastore, make and delete
 *    devices, deploy them, open them for block I/O;
 *  - one struct vsm_bdev_io_ops per kind of open device, reached from the
 *    device handle itself (struct vsm_bdev_io, which the backend embeds as
 *    the first member of its own device struct, the way SQLite's
 *    sqlite3_file carries pMethods): read, write, flush, size, a
 *    per-device capability query, and optional compare-and-write,
 *    discard, write-zeroes and asynchronous batch submission.
 *
 * Tables built against the 0.1 header (struct vsm_backend_ops) still
 * register with vsm_backend_register() and work unchanged: the core wraps
 * their bdev_* callbacks into a v2 device handle.
 *
 * The built-in backends (file, libvirt, iscsi) use this same header. The
 * core never looks inside a backend's handles; it calls back with them.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_BACKEND_H
#define VSM_BACKEND_H

#include "common.h"
#include "errors.h"

VSM_BEGIN_DECL

/* The context and locator types of the caller's API (vsm/context.h,
 * vsm/container.h), named by tag only, so that a backend author's header
 * does not pull the whole caller API in. */
struct vsm_ctx;
struct vsm_locator;

/** A backend's open datastore; the backend defines the struct. Since: 0.1 */
typedef struct vsm_backend_ds vsm_backend_ds;
/** A backend's open block device under a 0.1 table (struct
 *  vsm_backend_ops); the backend defines the struct. v2 backends use
 *  vsm_bdev_io instead. Since: 0.1 */
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
	/** Report a change or loss seen by the backend itself: @event is a
	 *  vsm_backend_event, @detail a short text or NULL (copied). It may
	 *  be called from any thread, with any of the backend's locks held:
	 *  it only queues an event, which the context delivers later on its
	 *  own thread, and it never calls back into the backend. Valid from
	 *  open() until close() begins; not after close() returns. */
	void (*notify)(void *cookie, int event, const char *detail);
	void *notify_cookie; /**< passed back to @notify */
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

/**
 * Bytes of storage a device for @spec needs: @spec->size for raw; for
 * qcow2 the virtual size plus room for what the core's qcow2 writes
 * beside the data (header, L1/L2 and refcount tables: about size/6500
 * with 64 KiB clusters; bitmaps and partly used clusters), bounded by
 * size + size/64 + 16 MiB. A backend whose devices have a fixed size
 * (a LUN, a volume) makes a qcow2 device at least this large; past its
 * end the device answers -VSM_ENOSPC and the caller's write fails.
 * Growable devices (files) need not reserve anything.
 * Since: 0.2
 */
VSM_API uint64_t vsm_backend_device_bytes(const vsm_backend_device_spec *spec);

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
	const char *const *chain_formats; /**< format of each chain_keys entry */
	size_t chain_len;                 /**< entries in chain_keys and chain_formats */
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
 * vsm_file_bdev_open(): bypass the page cache (O_DIRECT, with the
 * alignment handled inside; O_DSYNC writes where the filesystem refuses
 * O_DIRECT), for a file other hosts read, such as a metadata device on a
 * shared filesystem. Since: 0.2
 */
#define VSM_BDEV_DIRECT (1u << 2)

/**
 * The 0.1 backend vtable (versions 1 and 2), kept so that backends built
 * against the 0.1 header keep working: vsm_backend_register() takes it
 * and the core wraps its bdev_* callbacks into a vsm_bdev_io. New
 * backends fill struct vsm_datastore_ops and struct vsm_bdev_io_ops
 * instead. Such a table's capabilities are fixed per table:
 * compare-and-write is "bdev_compare_and_write is set".
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
			     const vsm_backend_deploy_req *req, struct vsm_locator *out);
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

/* ====================================================================
 * Vtable v2 (Since: 0.2)
 * ==================================================================== */

typedef struct vsm_bdev_io vsm_bdev_io;
struct vsm_bdev_io_ops;

/**
 * An open device as a v2 backend hands it to the core. The backend
 * allocates its own device struct with a vsm_bdev_io as its FIRST member
 * and sets @ops; the core only ever reads @ops and passes the pointer back
 * to the callbacks, which cast it to their own struct. @ops must stay
 * valid, and unchanged, until close() is called. Different devices of one
 * backend may carry different tables.
 *
 * Since: 0.2
 */
struct vsm_bdev_io {
	const struct vsm_bdev_io_ops *ops; /**< this device's block I/O table */
};

/** Version of struct vsm_bdev_caps in this header. Since: 0.2 */
#define VSM_BDEV_CAPS_VERSION 1

/** vsm_bdev_caps.flags: compare_and_write() works on this device. Since: 0.2 */
#define VSM_BDEV_CAP_COMPARE_AND_WRITE (1u << 0)
/** vsm_bdev_caps.flags: discard() releases space (discarded ranges read as zeros). Since: 0.2 */
#define VSM_BDEV_CAP_DISCARD           (1u << 1)
/** vsm_bdev_caps.flags: write_zeroes() is cheaper than writing zeros. Since: 0.2 */
#define VSM_BDEV_CAP_WRITE_ZEROES      (1u << 2)
/** vsm_bdev_caps.flags: writes honour VSM_BDEV_WRITE_FUA natively. Since: 0.2 */
#define VSM_BDEV_CAP_FUA               (1u << 3)
/** vsm_bdev_caps.flags: submit() keeps requests in flight together (the
 *  device gains from queue depth). Without it the core still accepts
 *  batches and runs them itself. Since: 0.2 */
#define VSM_BDEV_CAP_NATIVE_ASYNC      (1u << 4)
/** vsm_bdev_caps.flags: the device has a fixed size (a LUN, a volume):
 *  writes past its end fail with -VSM_ENOSPC instead of growing it. Since: 0.2 */
#define VSM_BDEV_CAP_FIXED_SIZE        (1u << 5)

/**
 * What one open device can do, filled by vsm_bdev_io_ops.query().
 * Capabilities belong to the device, not to the table: two LUNs of one
 * iSCSI target may differ in COMPARE AND WRITE.
 *
 * The core zero-fills the struct and sets @version and @size before the
 * call; the backend fills the fields it knows (a backend built against an
 * older header fills fewer, and the core reads only @size bytes of what
 * it asked for). Fields left 0 take the defaults named below.
 *
 * Since: 0.2
 */
typedef struct {
	uint32_t version;            /**< set by the core: VSM_BDEV_CAPS_VERSION */
	uint32_t size;               /**< set by the core: sizeof the struct */
	uint32_t flags;              /**< VSM_BDEV_CAP_* */
	uint32_t logical_block_size; /**< 512 or 4096; 0 means 512 */
	/** Largest transfer the device does in one command, in bytes; 0:
	 *  no limit. Advice for callers sizing I/O: read(), write() and
	 *  submit() still take any length (the backend splits). */
	uint64_t max_transfer;
	/** Largest compare_and_write() span in bytes (whole blocks
	 *  around the range); 0: one logical block. */
	uint32_t max_compare_and_write;
	/** Requests a native submit() keeps in flight at once before it
	 *  queues the rest; 0: unknown. Advice for callers sizing batches. */
	uint32_t max_queue_depth;
} vsm_bdev_caps;

/** Request kinds of struct vsm_bdev_req. Since: 0.2 */
typedef enum {
	VSM_BDEV_OP_READ = 1,  /**< read @len bytes at @off into @buf */
	VSM_BDEV_OP_WRITE = 2, /**< write @len bytes of @buf at @off */
	VSM_BDEV_OP_FLUSH = 3, /**< make completed writes durable; @off, @len, @buf unused */
} vsm_bdev_op;

/** Flag of write() and vsm_bdev_req.flags: the write is durable when it
 *  completes (Force Unit Access). A device without VSM_BDEV_CAP_FUA never
 *  sees it: the core follows the write with a flush instead. Since: 0.2 */
#define VSM_BDEV_WRITE_FUA (1u << 0)

typedef struct vsm_bdev_req vsm_bdev_req;

/**
 * Completion of one request of vsm_bdev_io_ops.submit(). Called exactly
 * once per request of an accepted batch, with @req->result set, from the
 * submitting thread (possibly before submit() returns) or from a thread
 * of the backend's own (the iSCSI backend's event thread). It must not
 * block for long: it runs on the thread that drives the device's other
 * requests. It may submit new requests on the same device.
 *
 * Since: 0.2
 */
typedef void (*vsm_bdev_req_done_cb)(vsm_bdev_req *req);

/**
 * One request of an asynchronous batch.
 *
 * Ownership: the caller owns the request and @buf; both must stay valid
 * and untouched (@buf of a write unchanged, of a read unread) from
 * submit() until @done is called for this request. The backend never
 * frees or keeps either after @done.
 *
 * Ordering: none between requests, within a batch or across batches: two
 * overlapping writes in flight together may land in either order, a read
 * overlapping an in-flight write may see either data. A FLUSH covers the
 * writes that had completed (their @done called) before the flush was
 * submitted; it says nothing of writes still in flight.
 *
 * Errors: @result is 0 or a negative VSM_E* code. Before calling @done
 * with a failure, the backend sets the message with vsm_error_set() on
 * the thread that calls @done; the core reads it there.
 *
 * Since: 0.2
 */
struct vsm_bdev_req {
	uint32_t op;          /**< vsm_bdev_op */
	uint32_t flags;       /**< VSM_BDEV_WRITE_FUA for writes; else 0 */
	uint64_t off;         /**< byte offset on the device */
	void *buf;            /**< data (read into it, or written from it) */
	size_t len;           /**< bytes; reads and writes follow the rules of
	                       *   read() and write() (any offset and length) */
	int result;           /**< set by the backend before @done */
	vsm_bdev_req_done_cb done; /**< set by the caller */
	void *payload;        /**< the caller's; the backend leaves it alone */
	/** The backend's scratch space while the request is in flight
	 *  (e.g. a link in its own queue); the caller leaves it alone. */
	void *backend_private[4];
};

/**
 * Version of struct vsm_bdev_io_ops in this header. Fields are only ever
 * appended; each addition bumps this number. Since: 0.2
 */
#define VSM_BDEV_IO_OPS_VERSION 1

/**
 * Block I/O on one open device (vtable v2).
 *
 * Every callback returns 0 or a negative VSM_E* code and on failure sets
 * the message with vsm_error_set(), naming the device as the backend
 * knows it ("LUN 3 of iSCSI target ..."); the core adds the device's
 * name in the core's words in front (backends do not prefix the
 * datastore's name). Every callback may be called from several threads
 * at once on the same device, except close(), which the core calls once
 * when no other call on the device is running.
 *
 * Read-only: a device opened with VSM_BDEV_RDONLY never sees write(),
 * flush(), compare_and_write(), discard(), write_zeroes() or a WRITE
 * request from the core (the core refuses them itself); a backend may
 * enforce it too.
 *
 * Since: 0.2
 */
struct vsm_bdev_io_ops {
	uint32_t version; /**< VSM_BDEV_IO_OPS_VERSION the backend was built for */
	uint32_t size;    /**< sizeof(struct vsm_bdev_io_ops) as built */

	/** Free the device (required). */
	void (*close)(vsm_bdev_io *io);
	/** Read exactly @len bytes at @off, any alignment; bytes past the
	 *  end read as 0 (required). */
	int (*read)(vsm_bdev_io *io, void *buf, size_t len, uint64_t off);
	/** Write exactly @len bytes at @off, any alignment; files may grow,
	 *  fixed-size devices answer -VSM_ENOSPC past their end. @flags:
	 *  VSM_BDEV_WRITE_FUA, only when query() reports VSM_BDEV_CAP_FUA
	 *  (required). */
	int (*write)(vsm_bdev_io *io, const void *buf, size_t len, uint64_t off,
		     unsigned int flags);
	/** Make completed writes durable (required). */
	int (*flush)(vsm_bdev_io *io);
	/** Current size in bytes (required; named get_size because @size
	 *  is the table's own). */
	int (*get_size)(vsm_bdev_io *io, uint64_t *out);
	/** Fill @out with this device's capabilities (optional: NULL means
	 *  no flags, 512-byte blocks, no transfer limit). Called once, when
	 *  the core takes the device; the answer must hold until close(). */
	int (*query)(vsm_bdev_io *io, vsm_bdev_caps *out);
	/**
	 * Atomically: if the @len bytes at @off equal @expected, write @buf
	 * there; otherwise change nothing and return -VSM_EMISMATCH
	 * (optional; used only when query() reports
	 * VSM_BDEV_CAP_COMPARE_AND_WRITE: leases then take their one-I/O
	 * path, otherwise Disk Paxos over plain reads and writes).
	 */
	int (*compare_and_write)(vsm_bdev_io *io, const void *expected, const void *buf,
				 size_t len, uint64_t off);
	/** Release a range; it then reads as zeros (optional; used with
	 *  VSM_BDEV_CAP_DISCARD). */
	int (*discard)(vsm_bdev_io *io, uint64_t off, uint64_t len);
	/** Make a range read as zeros, cheaper than writing them (optional;
	 *  used with VSM_BDEV_CAP_WRITE_ZEROES; the core writes zero
	 *  buffers otherwise). @flags: 0. */
	int (*write_zeroes)(vsm_bdev_io *io, uint64_t off, uint64_t len, unsigned int flags);
	/**
	 * Start @n requests (optional). Either accepts them all and returns
	 * 0 (then calls each one's done exactly once, see vsm_bdev_req), or
	 * accepts none and returns a negative code (then calls no done).
	 * Without it the core runs batches itself, one request after the
	 * other on the submitting thread, through read(), write() and
	 * flush(). With it, set VSM_BDEV_CAP_NATIVE_ASYNC in query().
	 */
	int (*submit)(vsm_bdev_io *io, vsm_bdev_req *const *reqs, size_t n);
};

/**
 * Initialiser for a static struct vsm_bdev_io_ops: sets version and size,
 * then the callbacks given as designated initialisers:
 *
 *     static const struct vsm_bdev_io_ops my_io = VSM_BDEV_IO_OPS_INIT(
 *             .close = my_close, .read = my_read, ...);
 *
 * Since: 0.2
 */
#define VSM_BDEV_IO_OPS_INIT(...) \
	{ .version = VSM_BDEV_IO_OPS_VERSION, .size = sizeof(struct vsm_bdev_io_ops), __VA_ARGS__ }

/**
 * Version of struct vsm_datastore_ops in this header. Fields are only
 * ever appended; each addition bumps this number. Since: 0.2
 */
#define VSM_DATASTORE_OPS_VERSION 3

/** domain_fence() operations. Since: 0.2 */
typedef enum {
	VSM_BACKEND_FENCE_PAUSE = 1,  /**< pause the domain (no guest I/O) */
	VSM_BACKEND_FENCE_RESUME = 2, /**< resume it */
	VSM_BACKEND_FENCE_FREEZE = 3, /**< freeze its filesystems (guest agent) */
	VSM_BACKEND_FENCE_THAW = 4,   /**< thaw them */
} vsm_backend_fence_op;

/**
 * The datastore table of vtable v2. The callbacks not named here keep the
 * names, signatures and meaning they have in struct vsm_backend_ops;
 * device_open() and meta_open() return a vsm_bdev_io, whose own table
 * does the block I/O. Every callback returns 0 or a negative VSM_E* code
 * and on failure sets the message with vsm_error_set(); optional
 * callbacks may be NULL (the public call then fails with -VSM_ENOTSUP).
 *
 * Messages: say what the backend knows ("LUN 3 of target X: ...") and do
 * not prefix the datastore's name; the core prefixes "datastore 'NAME'"
 * where it names the operation. Keys: see VSM_BACKEND_KEY_MAX.
 *
 * Since: 0.2
 */
struct vsm_datastore_ops {
	uint32_t version; /**< VSM_DATASTORE_OPS_VERSION the backend was built for */
	uint32_t size;    /**< sizeof(struct vsm_datastore_ops) as built */
	const char *scheme;      /**< URI scheme served, e.g. "file" (required) */
	const char *description; /**< one line for listings */
	/** Further schemes served by the same table, NULL-terminated, or
	 *  NULL ("iscsi-caw" for "iscsi"). open() sees the URI as written. */
	const char *const *scheme_aliases;

	/** Open the datastore at @uri (required). */
	int (*open)(vsm_backend_ds **out, const char *uri, const vsm_backend_open_args *args);
	/** Close it (required). */
	void (*close)(vsm_backend_ds *ds);
	/** Capacity and free space in bytes; either pointer may be NULL (required). */
	int (*capacity)(vsm_backend_ds *ds, uint64_t *total, uint64_t *free_bytes);
	/**
	 * Open the metadata device (required). With VSM_BDEV_CREATE make it
	 * of at least @min_size bytes when missing; without, -VSM_ENOTFOUND
	 * when missing. A device that exists but is smaller than @min_size
	 * (a LUN) is opened as it is: the core reads its size and lays out
	 * as many record slots as fit, or refuses it with -VSM_ENOSPC
	 * naming both sizes.
	 */
	int (*meta_open)(vsm_bdev_io **out, vsm_backend_ds *ds, uint64_t min_size,
			 unsigned int flags);
	/** As struct vsm_backend_ops.device_create (required). */
	int (*device_create)(vsm_backend_ds *ds, const vsm_backend_device_spec *spec,
			     char *key, size_t key_size, unsigned int *out_flags);
	/** As struct vsm_backend_ops.device_delete (required). */
	int (*device_delete)(vsm_backend_ds *ds, const char *key, unsigned int flags);
	/** As struct vsm_backend_ops.device_resize (optional). */
	int (*device_resize)(vsm_backend_ds *ds, const char *key, uint64_t size,
			     unsigned int flags);
	/** Make the datastore usable on @host; the core calls it from
	 *  vsm_attach() before it records the attachment, and calls
	 *  host_detach() if the attach fails later. @flags: 0 (required;
	 *  may do nothing). */
	int (*host_attach)(vsm_backend_ds *ds, const char *host, const char *host_uri,
			   unsigned int flags);
	/** Undo host_attach; from vsm_detach() and failed attaches (required). */
	int (*host_detach)(vsm_backend_ds *ds, const char *host, const char *host_uri,
			   unsigned int flags);
	/** As struct vsm_backend_ops.device_deploy (required). */
	int (*device_deploy)(vsm_backend_ds *ds, const char *key,
			     const vsm_backend_deploy_req *req, struct vsm_locator *out);
	/** As struct vsm_backend_ops.device_undeploy (required). */
	int (*device_undeploy)(vsm_backend_ds *ds, const char *key,
			       const vsm_backend_deploy_req *req);
	/** As struct vsm_backend_ops.device_list (optional). */
	int (*device_list)(vsm_backend_ds *ds, vsm_backend_device_cb cb, void *payload);
	/** Open device @key for block I/O; VSM_BDEV_RDONLY in @flags (required). */
	int (*device_open)(vsm_bdev_io **out, vsm_backend_ds *ds, const char *key,
			   unsigned int flags);

	/* ---- version 2 ---- */

	/**
	 * Bytes device @key occupies on its storage now (optional). Placement
	 * counts what a thick container may still write as its provisioned
	 * size minus this; without it the core counts a thick device as
	 * occupying nothing, which overestimates committed space and never
	 * overcommits. Never read from a table registered with version 1.
	 * Since: 0.2
	 */
	int (*device_allocated)(vsm_backend_ds *ds, const char *key, uint64_t *bytes);

	/* --- version 3 (Since: 0.2) --- */
	/**
	 * Fence the I/O of domain @domain on host @host, reached through
	 * @host_uri (NULL: the datastore's own connection): @op is a
	 * vsm_backend_fence_op. Pausing a paused domain, or resuming a running
	 * one, is no error. Consistency groups use it around a group
	 * checkpoint (doc/groups.md). Optional; never read from a table
	 * registered with a version below 3.
	 * Since: 0.2
	 */
	int (*domain_fence)(vsm_backend_ds *ds, const char *host, const char *host_uri,
			    const char *domain, unsigned int op);
};

/**
 * Initialiser for a static struct vsm_datastore_ops: sets version and
 * size, then the fields given as designated initialisers.
 *
 * Since: 0.2
 */
#define VSM_DATASTORE_OPS_INIT(...) \
	{ .version = VSM_DATASTORE_OPS_VERSION, .size = sizeof(struct vsm_datastore_ops), __VA_ARGS__ }

/**
 * Initialiser for a 0.1-style struct vsm_backend_ops (version and size
 * set to this header's). Since: 0.2
 */
#define VSM_BACKEND_OPS_INIT(...) \
	{ .version = VSM_BACKEND_OPS_VERSION, .size = sizeof(struct vsm_backend_ops), __VA_ARGS__ }

/**
 * Register a v2 backend with a context. The core checks @ops->version
 * (-VSM_EVERSION for 0 or newer than this library) and @ops->size (never
 * reading past it), that every required callback is set (-VSM_EINVAL,
 * naming it), and copies the table; the strings it points at (scheme,
 * description, aliases) must stay valid while the context is open.
 * Each device's vsm_bdev_io_ops is checked the same way when the device
 * is opened. A scheme or alias already served gives -VSM_EEXISTS.
 *
 * @payload: handed to open() in vsm_backend_open_args
 * Since: 0.2
 */
VSM_API int vsm_datastore_ops_register(struct vsm_ctx *ctx, const struct vsm_datastore_ops *ops,
				       void *payload);

/**
 * Register a 0.1-style backend (struct vsm_backend_ops) with a context.
 * New backends use vsm_datastore_ops_register(). The core checks @ops->version
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
VSM_API int vsm_backend_register(struct vsm_ctx *ctx, const struct vsm_backend_ops *ops,
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
VSM_API int vsm_locator_set(struct vsm_locator *loc, const char *uri, const char *path,
			    const char *disk_xml);

/* --- libvirt <disk> elements for device_deploy() --- */

/**
 * Open a file or block device by path as a device with libvsm's own POSIX
 * I/O: read, write (FUA as a write and a flush), flush, size,
 * compare-and-write (under a mutex and an OFD lock on the range, so it is
 * atomic among processes and threads of this host, and across hosts only
 * as far as the filesystem's locks reach) and discard (hole punching).
 * For backends whose devices are files or local block devices: return it
 * from device_open() or meta_open() instead of writing file I/O again.
 * The handle closes through its own ops (what the core does).
 *
 * @out: receives the device
 * @path: an existing regular file or block device (created with
 *        VSM_BDEV_CREATE)
 * @flags: VSM_BDEV_RDONLY, VSM_BDEV_CREATE, VSM_BDEV_DIRECT
 *
 * Returns 0 or a negative VSM_E* code (-VSM_ENOTFOUND for a missing path,
 * -VSM_EINVAL for a directory or another kind of file).
 * Since: 0.2
 */
VSM_API int vsm_file_bdev_open(vsm_bdev_io **out, const char *path, unsigned int flags);

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
VSM_API int vsm_backend_module_init(struct vsm_ctx *ctx, uint32_t abi_version);

/** Name of the entry symbol, for dlsym(). Since: 0.2 */
#define VSM_BACKEND_MODULE_INIT "vsm_backend_module_init"

VSM_END_DECL

#endif /* VSM_BACKEND_H */
