/*
 * libvsm - disk images: qcow2 (v2 and v3) and raw, with backing chains.
 *
 * The same copy-on-write engine that serves container devices, over
 * image files named by path. A backing reference stored in an image is
 * resolved relative to the directory of the image that was opened (the
 * top of the chain) and may not leave that directory: names with ".."
 * components, and absolute names outside it, are refused.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_IMAGE_H
#define VSM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "context.h"
#include "errors.h"

VSM_BEGIN_DECL

/** An open image with its backing chain. Since: 0.1 */
typedef struct vsm_image vsm_image;

/** Version of vsm_image_create_opts. Since: 0.1 */
#define VSM_IMAGE_CREATE_OPTS_VERSION 1

/** How vsm_image_create() makes a qcow2 image. Since: 0.1 */
typedef struct {
	unsigned int version;       /**< VSM_IMAGE_CREATE_OPTS_VERSION */
	uint64_t size;              /**< virtual size in bytes; 0 = the backing image's */
	uint32_t cluster_size;      /**< 512..2097152, a power of two; 0 = 65536 */
	unsigned int refcount_bits; /**< 1, 2, 4, ..., 64; 0 = 16 */
	const char *backing;        /**< backing image reference, stored as given; NULL for none */
	const char *backing_format; /**< "raw" or "qcow2"; NULL = probe the backing image */
} vsm_image_create_opts;

/** Initializer for vsm_image_create_opts. Since: 0.1 */
#define VSM_IMAGE_CREATE_OPTS_INIT { VSM_IMAGE_CREATE_OPTS_VERSION, 0, 0, 0, NULL, NULL }

/**
 * Create a new qcow2 v3 image at @path, which must not exist. Creating an
 * overlay writes only its header and empty tables: it takes the same time
 * whatever the size of the backing image.
 *
 * @opts: NULL is not allowed (a size or a backing image is required)
 * @flags: 0
 * Returns 0, -VSM_EEXISTS if @path exists, -VSM_EINVAL for bad options,
 * -VSM_ENOTFOUND if the backing image cannot be found.
 * Since: 0.1
 */
VSM_API int vsm_image_create(const char *path, const vsm_image_create_opts *opts,
			     unsigned int flags);

/** Open flag: read-only. Since: 0.1 */
#define VSM_IMAGE_OPEN_RDONLY (1u << 0)
/** Open flag: do not open the backing chain (reads of unallocated
 *  clusters then fail). Since: 0.1 */
#define VSM_IMAGE_OPEN_NO_BACKING (1u << 1)

/** Open flag: read-write. Images named by path open read-write unless
 *  VSM_IMAGE_OPEN_RDONLY is given, so this changes nothing for them;
 *  images on a datastore (vsm_image_open_device(),
 *  vsm_image_open_golden()) open read-only unless it is given. Giving
 *  both RDONLY and RDWR is -VSM_EINVAL. Since: 0.2 */
#define VSM_IMAGE_OPEN_RDWR (1u << 2)

/** Open flag: allow repair. A qcow2 image with lazy refcounts whose
 *  writer did not close it (the dirty bit is set, as QEMU leaves it when
 *  killed) has refcounts that cannot be trusted: it reads correctly, but
 *  a read-write open of it fails with -VSM_ESTATE unless this flag is
 *  given. With it, the image opens read-write and is repaired (refcounts
 *  rebuilt from the tables, leaks freed, dirty bit cleared) before the
 *  first change made through the handle, as QEMU does on open; or at once
 *  by vsm_image_check() with VSM_IMAGE_CHECK_REPAIR, which then reports
 *  what it found. A change fails with the repair's error (and changes
 *  nothing) when the repair fails. Ignored for an image that needs no
 *  repair and for read-only opens. Since: 0.2 */
#define VSM_IMAGE_OPEN_REPAIR (1u << 3)

/** Version of vsm_image_open_opts. Since: 0.1 */
#define VSM_IMAGE_OPEN_OPTS_VERSION 1

/** How vsm_image_open() opens an image. Since: 0.1 */
typedef struct {
	unsigned int version;  /**< VSM_IMAGE_OPEN_OPTS_VERSION */
	unsigned int flags;    /**< VSM_IMAGE_OPEN_* */
	const char *format;    /**< "raw", "qcow2", or NULL to probe */
	uint64_t cache_max;    /**< memory bound in bytes for the metadata caches
	                        *   of each image in the chain; 0 = 64 MiB. The L2
	                        *   cache covers the whole image when it fits. */
} vsm_image_open_opts;

/** Initializer for vsm_image_open_opts. Since: 0.1 */
#define VSM_IMAGE_OPEN_OPTS_INIT { VSM_IMAGE_OPEN_OPTS_VERSION, 0, NULL, 0 }

/**
 * Open the image at @path and its backing chain. An image marked corrupt
 * opens read-only. Images using features this library does not support
 * (encryption, external data files, extended L2 entries, zstd, unknown
 * incompatible bits) are refused with -VSM_ENOTSUP naming the feature;
 * damaged ones with -VSM_ECORRUPT.
 *
 * @out: receives the handle, freed with vsm_image_close()
 * @opts: NULL for defaults
 * Since: 0.1
 */
VSM_API int vsm_image_open(vsm_image **out, const char *path,
			   const vsm_image_open_opts *opts);

/**
 * Flush, mark the image clean and close it with its chain. The handle is
 * freed even when the final flush fails. NULL is ignored.
 *
 * Returns 0 or the error of the final flush.
 * Since: 0.1
 */
VSM_API int vsm_image_close(vsm_image *img);

/** Virtual size in bytes (0 for NULL). Since: 0.1 */
VSM_API uint64_t vsm_image_size(vsm_image *img);

/**
 * Read @len bytes at guest offset @off, through the backing chain.
 * Since: 0.1
 */
VSM_API int vsm_image_read(vsm_image *img, void *buf, size_t len, uint64_t off);

/**
 * Write @len bytes at guest offset @off. Durable after vsm_image_flush().
 * @flags: 0
 * Since: 0.1
 */
VSM_API int vsm_image_write(vsm_image *img, const void *buf, size_t len,
			    uint64_t off, unsigned int flags);

/** vsm_image_write_zeroes() flag: release the storage too. Since: 0.1 */
#define VSM_IMAGE_ZERO_UNMAP (1u << 0)

/**
 * Make [@off, @off+@len) read as zeros. Whole clusters become zero
 * clusters (qcow2 v3) without data being written.
 * Since: 0.1
 */
VSM_API int vsm_image_write_zeroes(vsm_image *img, uint64_t off, uint64_t len,
				   unsigned int flags);

/**
 * Discard [@off, @off+@len): the range then reads as zeros and whole
 * clusters release their storage.
 * @flags: 0
 * Since: 0.1
 */
VSM_API int vsm_image_discard(vsm_image *img, uint64_t off, uint64_t len,
			      unsigned int flags);

/** Make every completed write durable. Since: 0.1 */
VSM_API int vsm_image_flush(vsm_image *img);

/** Image formats. Since: 0.1 */
typedef enum {
	VSM_IMAGE_FORMAT_RAW = 1,
	VSM_IMAGE_FORMAT_QCOW2 = 2,
} vsm_image_format;

/** Version of vsm_image_info. Since: 0.1 */
#define VSM_IMAGE_INFO_VERSION 1

/** What vsm_image_info_get() reports about one image of a chain. Since: 0.1 */
typedef struct {
	unsigned int version;       /**< VSM_IMAGE_INFO_VERSION */
	const char *filename;       /**< the image's path */
	int format;                 /**< vsm_image_format */
	uint64_t virtual_size;      /**< bytes */
	uint32_t cluster_size;      /**< bytes; 0 for raw */
	unsigned int qcow2_version; /**< 2 or 3; 0 for raw */
	unsigned int refcount_bits; /**< 0 for raw */
	unsigned int snapshots;     /**< internal snapshots (kept untouched) */
	int dirty;                  /**< the dirty bit is set */
	int corrupt;                /**< the corrupt bit is set */
	uint64_t file_size;         /**< bytes of the image file */
	uint64_t allocated_bytes;   /**< guest bytes stored in this image */
	const char *backing;        /**< backing reference as stored, or NULL */
	const char *backing_format; /**< as stored, or NULL */
} vsm_image_info;

/**
 * Describe the image at @depth in the chain (0 = @img itself, 1 = its
 * backing image, ...).
 *
 * @out: receives the description, freed with vsm_image_info_free()
 * Returns -VSM_ENOTFOUND past the end of the chain.
 * Since: 0.1
 */
VSM_API int vsm_image_info_get(vsm_image_info **out, vsm_image *img,
			       unsigned int depth);

/** Free an info from vsm_image_info_get(); NULL is ignored. Since: 0.1 */
VSM_API void vsm_image_info_free(vsm_image_info *info);

/** One range of the guest disk, as vsm_image_map() reports it. Since: 0.1 */
typedef struct {
	uint64_t start;        /**< guest offset */
	uint64_t length;       /**< bytes */
	unsigned int depth;    /**< chain depth that answers (0 = this image) */
	int present;           /**< allocated in some image of the chain */
	int data;              /**< reads stored data */
	int zero;              /**< reads as zeros */
	int compressed;        /**< stored as compressed clusters */
	uint64_t offset;       /**< host offset of the data at @depth, or UINT64_MAX */
} vsm_image_extent;

/**
 * Map the whole guest disk into ranges of like status (similar to
 * `qemu-img map`). Adjacent ranges of the same status are merged.
 *
 * @out: receives the array, freed with vsm_image_extent_list_free()
 * @out_count: number of entries
 * Since: 0.1
 */
VSM_API int vsm_image_map(vsm_image_extent **out, size_t *out_count, vsm_image *img);

/** Free a list from vsm_image_map(); NULL is ignored. Since: 0.1 */
VSM_API void vsm_image_extent_list_free(vsm_image_extent *list);

/** vsm_image_check() flag: repair what is found. Since: 0.1 */
#define VSM_IMAGE_CHECK_REPAIR (1u << 0)

/** Version of vsm_image_check_result. Since: 0.1 */
#define VSM_IMAGE_CHECK_RESULT_VERSION 1

/** What vsm_image_check() found. Since: 0.1 */
typedef struct {
	unsigned int version;        /**< VSM_IMAGE_CHECK_RESULT_VERSION, set by the caller */
	uint64_t corruptions;        /**< refcounts too low, wrong COPIED flags, bad offsets */
	uint64_t leaks;              /**< clusters counted but not referenced */
	uint64_t corruptions_fixed;  /**< corruptions a repair fixed */
	uint64_t leaks_fixed;        /**< leaks a repair fixed */
	uint64_t allocated_clusters; /**< clusters in use (metadata and data) */
	uint64_t image_end;          /**< bytes: end of the last cluster in use */
} vsm_image_check_result;

/** Initializer for vsm_image_check_result. Since: 0.1 */
#define VSM_IMAGE_CHECK_RESULT_INIT { VSM_IMAGE_CHECK_RESULT_VERSION, 0, 0, 0, 0, 0, 0 }

/**
 * Check the image's metadata (qcow2; raw images are always clean). With
 * VSM_IMAGE_CHECK_REPAIR (image open read-write), fix leaks, refcounts
 * and COPIED flags; when everything found was fixed, the image is marked
 * clean (its dirty bit cleared). A dirty image with lazy refcounts must
 * have been opened with VSM_IMAGE_OPEN_REPAIR to be opened read-write.
 *
 * @out: filled in; its version must be set (VSM_IMAGE_CHECK_RESULT_INIT)
 * Since: 0.1
 */
VSM_API int vsm_image_check(vsm_image_check_result *out, vsm_image *img,
			    unsigned int flags);

/**
 * Write the image's own data into its backing image (opened read-write
 * for the purpose), then empty the image, which keeps reading the same.
 * @flags: 0
 * Since: 0.1
 */
VSM_API int vsm_image_commit(vsm_image *img, unsigned int flags);

/**
 * Copy into the image everything it reads through its backing chain, and
 * drop the backing reference. Zeros are not copied.
 * @flags: 0
 * Since: 0.1
 */
VSM_API int vsm_image_flatten(vsm_image *img, unsigned int flags);

/**
 * Grow the virtual size to @size bytes. Shrinking gives -VSM_ENOTSUP.
 * @flags: 0
 * Since: 0.1
 */
VSM_API int vsm_image_resize(vsm_image *img, uint64_t size, unsigned int flags);

/** Version of vsm_image_convert_opts (2 adds flags). Since: 0.1 */
#define VSM_IMAGE_CONVERT_OPTS_VERSION 2

/** vsm_image_convert_opts.flags: copy the source's persistent bitmaps
 *  to the qcow2 target, like `qemu-img convert --bitmaps`. Since: 0.2 */
#define VSM_IMAGE_CONVERT_BITMAPS (1u << 0)

/** How vsm_image_convert() writes its target. Since: 0.1 */
typedef struct {
	unsigned int version;  /**< VSM_IMAGE_CONVERT_OPTS_VERSION */
	const char *format;    /**< target format: "raw" or "qcow2" */
	uint32_t cluster_size; /**< qcow2 target; 0 = 65536 */
	unsigned int flags;    /**< VSM_IMAGE_CONVERT_*; version 2 and later (Since: 0.2).
	                        *   vsm_image_import() and vsm_image_export() ignore it. */
} vsm_image_convert_opts;

/** Initializer for vsm_image_convert_opts. Since: 0.1 */
#define VSM_IMAGE_CONVERT_OPTS_INIT { VSM_IMAGE_CONVERT_OPTS_VERSION, "qcow2", 0, 0 }

/**
 * Copy what the image at @src reads (through its chain) into a new image
 * at @dst, which must not exist. Unallocated and zero ranges are not
 * written, so the target stays sparse. On failure @dst is removed.
 * With VSM_IMAGE_CONVERT_BITMAPS (qcow2 to qcow2), the persistent bitmaps
 * of @src itself (not of its backing images) are copied with their names,
 * granularities, enabled state and bits; the copy's own writes do not
 * dirty them. A source bitmap that is in use (inconsistent) fails the
 * convert with -VSM_ECORRUPT, as qemu-img does.
 * Since: 0.1
 */
VSM_API int vsm_image_convert(const char *src, const char *dst,
			      const vsm_image_convert_opts *opts);

/*
 * Persistent dirty bitmaps (Since: 0.2), in QEMU's qcow2 format: the
 * bitmaps `qemu-img bitmap` makes and lists, and the other way round. An
 * enabled bitmap gets a bit set for every range written, zeroed or
 * discarded through libvsm (also by vsm_image_commit() into the backing
 * image; vsm_image_flatten() does not dirty). Bits are stored at
 * vsm_image_flush() and vsm_image_close(); a writer that dies before
 * leaves the bitmaps it kept in_use: they are listed with in_use set,
 * their extents are refused, and they can only be removed. See
 * doc/bitmaps.md. The calls below need a qcow2 v3 image; those that change
 * a bitmap need it open read-write, and have changed it on disk when they
 * return.
 */

/** Version of vsm_image_bitmap_opts. Since: 0.2 */
#define VSM_IMAGE_BITMAP_OPTS_VERSION 1

/** How vsm_image_bitmap_add() makes a bitmap. Since: 0.2 */
typedef struct {
	unsigned int version;  /**< VSM_IMAGE_BITMAP_OPTS_VERSION */
	uint32_t granularity;  /**< bytes per bit: a power of two, 512..2^31;
	                        *   0 = the image's cluster size */
	int disabled;          /**< non-zero: writes do not set its bits */
} vsm_image_bitmap_opts;

/** Initializer for vsm_image_bitmap_opts. Since: 0.2 */
#define VSM_IMAGE_BITMAP_OPTS_INIT { VSM_IMAGE_BITMAP_OPTS_VERSION, 0, 0 }

/**
 * Add an empty bitmap @name (1..1023 bytes) to @img.
 * @opts: NULL for defaults (cluster granularity, enabled)
 * @flags: 0
 * Returns 0, -VSM_EEXISTS, -VSM_EINVAL (bad name or granularity),
 * -VSM_ENOSPC (65535 bitmaps), -VSM_ENOTSUP (raw or qcow2 v2), -VSM_EPERM
 * (read-only).
 * Since: 0.2
 */
VSM_API int vsm_image_bitmap_add(vsm_image *img, const char *name,
				 const vsm_image_bitmap_opts *opts, unsigned int flags);

/**
 * Remove bitmap @name, also one that is in use (inconsistent).
 * @flags: 0
 * Returns 0 or -VSM_ENOTFOUND.
 * Since: 0.2
 */
VSM_API int vsm_image_bitmap_remove(vsm_image *img, const char *name, unsigned int flags);

/**
 * Clear every bit of bitmap @name.
 * @flags: 0
 * Since: 0.2
 */
VSM_API int vsm_image_bitmap_clear(vsm_image *img, const char *name, unsigned int flags);

/**
 * Enable (@enable non-zero) or disable bitmap @name: only enabled bitmaps
 * record writes.
 * @flags: 0
 * Since: 0.2
 */
VSM_API int vsm_image_bitmap_enable(vsm_image *img, const char *name, int enable,
				    unsigned int flags);

/**
 * Set in bitmap @dst_name of @dst every bit that bitmap @src_name of @src
 * has set (@src may be @dst). Granularities may differ: a source bit sets
 * every destination bit whose range meets its own.
 * @flags: 0
 * Since: 0.2
 */
VSM_API int vsm_image_bitmap_merge(vsm_image *dst, const char *dst_name, vsm_image *src,
				   const char *src_name, unsigned int flags);

/** One bitmap, as vsm_image_bitmap_list() reports it. Since: 0.2 */
typedef struct {
	char *name;            /**< owned by the list */
	uint32_t granularity;  /**< bytes per bit */
	int enabled;           /**< writes set its bits (the 'auto' flag) */
	int in_use;            /**< inconsistent: a writer did not close the image */
} vsm_image_bitmap_info;

/**
 * List the bitmaps of @img (not of its backing images), in stored order.
 * @out: receives the array (NULL when there is none), freed with
 *       vsm_image_bitmap_list_free()
 * @out_count: number of entries
 * Since: 0.2
 */
VSM_API int vsm_image_bitmap_list(vsm_image_bitmap_info **out, size_t *out_count,
				  vsm_image *img);

/** Free a list from vsm_image_bitmap_list(); NULL is ignored. Since: 0.2 */
VSM_API void vsm_image_bitmap_list_free(vsm_image_bitmap_info *list, size_t count);

/**
 * The dirty ranges of bitmap @name: maximal ranges, in order, clipped to
 * the virtual size. Only start and length are meaningful (present and
 * data are 1, offset UINT64_MAX). Cost: the bitmap's dirty clusters.
 * @out: receives the array, freed with vsm_image_extent_list_free()
 * @out_count: number of entries
 * Returns 0, -VSM_ENOTFOUND, or -VSM_ECORRUPT for a bitmap in use.
 * Since: 0.2
 */
VSM_API int vsm_image_bitmap_extents(vsm_image_extent **out, size_t *out_count,
				     vsm_image *img, const char *name);

/*
 * Images on a datastore (Since: 0.2). A container's device or a golden
 * image is opened through the datastore's backend (device_open), so the
 * calls above work on it whatever the storage is: a file, an iSCSI LUN,
 * a libvirt volume or a third-party backend's device. What works on such
 * a handle: vsm_image_size, _read, _write, _write_zeroes, _discard,
 * _flush, _info_get, _map, _check (with VSM_IMAGE_CHECK_REPAIR when open
 * read-write) and _close. _commit, _flatten and _resize answer
 * -VSM_ENOTSUP: they would change a layer or a size that the datastore's
 * records describe (use checkpoints and the container calls for that).
 * A backing reference inside such an image is a device key on the same
 * datastore, opened read-only. The handle uses @ctx's open datastore:
 * close it before vsm_ctx_free() and before removing the datastore. A
 * handle is used by one thread at a time, like every vsm_image; its I/O
 * does not hold @ctx's lock.
 */

/**
 * Open device @device of container @container on datastore @datastore as
 * an image, in the device's recorded format (never probed: a raw device
 * whose guest wrote a qcow2 header stays raw).
 *
 * Read-only unless @opts->flags has VSM_IMAGE_OPEN_RDWR. A read-write
 * open is refused with -VSM_EBUSY when the device is deployed (a
 * hypervisor may be writing it) or when the container is attached to a
 * host whose lease this context does not hold (another host owns it), and
 * with -VSM_ESTATE while the container is being destroyed. A detached
 * container has no owner: the check is made at open, and a host that
 * attaches the container later is not kept out while the handle is open.
 *
 * @out: receives the handle, freed with vsm_image_close()
 * @opts: NULL for defaults (read-only); VSM_IMAGE_OPEN_NO_BACKING and
 *        cache_max apply, format must be NULL or the recorded one
 * Returns 0, -VSM_ENOTFOUND (no such datastore, container or device),
 * -VSM_EINVAL (an empty name), -VSM_EBUSY, -VSM_ESTATE, or what the
 * backend and the qcow2 engine answer.
 * Since: 0.2
 */
VSM_API int vsm_image_open_device(vsm_image **out, vsm_ctx *ctx, const char *datastore,
				  const char *container, const char *device,
				  const vsm_image_open_opts *opts);

/**
 * Open the golden image @name on datastore @datastore: the device whose
 * key (or name given at creation) is @name, as vsm_device_spec.base names
 * it, and as vsm_image_import() makes it. Its format is probed.
 *
 * Read-only unless @opts->flags has VSM_IMAGE_OPEN_RDWR; a read-write open
 * is refused with -VSM_EBUSY while any container record on the datastore
 * references the image (a device stands on it: changing it would change
 * what that device reads).
 *
 * @out: receives the handle, freed with vsm_image_close()
 * @opts: NULL for defaults (read-only)
 * Returns 0, -VSM_ENOTFOUND, -VSM_EINVAL (a name that is not 1-64
 * characters of [A-Za-z0-9._-], or is "." or ".."), -VSM_EBUSY, or what the
 * backend and the qcow2 engine answer.
 * Since: 0.2
 */
VSM_API int vsm_image_open_golden(vsm_image **out, vsm_ctx *ctx, const char *datastore,
				  const char *name, const vsm_image_open_opts *opts);

/**
 * Copy the local image at @path (raw or qcow2, probed) onto datastore
 * @datastore as the golden image @name, which
 * `vsm_device_spec.base = @name` then makes devices linked clones of, on
 * every backend. A qcow2 image with a backing chain is flattened: what
 * the chain reads is copied, and the golden image has no backing
 * reference. Unallocated and zero ranges are not written.
 *
 * The device is created through the backend under the workflow journal:
 * if the copy fails (or the process dies during it), the device is
 * deleted again, and nothing is left on the datastore. Other calls on
 * @ctx wait while the copy runs.
 *
 * @opts: NULL or @opts->format NULL keeps the source's format; else
 *        "raw" or "qcow2". A qcow2 golden image gets the engine's default
 *        cluster size (cluster_size is ignored). A raw golden image on a
 *        fixed-size device larger than the source reads as large as the
 *        device, zeros past the source's end: prefer qcow2 there.
 * @flags: 0
 * Returns 0, -VSM_EEXISTS if the datastore has a device named @name,
 * -VSM_EINVAL for a bad name, -VSM_ENOSPC, or what opening @path answers.
 * Since: 0.2
 */
VSM_API int vsm_image_import(vsm_ctx *ctx, const char *datastore, const char *name,
			     const char *path, const vsm_image_convert_opts *opts,
			     unsigned int flags);

/**
 * Write the golden image @name of datastore @datastore into a new local
 * image at @path, which must not exist (removed again on failure). The
 * file is sparse: unallocated and zero ranges are not written.
 *
 * @opts: NULL keeps the golden image's format (and cluster size); else
 *        @opts->format and cluster_size give the file's
 * @flags: 0
 * Since: 0.2
 */
VSM_API int vsm_image_export(vsm_ctx *ctx, const char *datastore, const char *name,
			     const char *path, const vsm_image_convert_opts *opts,
			     unsigned int flags);

/*
 * Content IDs and chain copy (Since: 0.2). A qcow2 layer may carry a
 * content ID: 128 bits in a header extension of libvsm's own, which QEMU
 * keeps and ignores. The rule: two layers with the same content ID read
 * the same bytes. A layer has none until it is frozen
 * (vsm_image_freeze()); the first change through libvsm of what it reads
 * (write, zeroes, discard, commit, resize, a flatten that copies data
 * up) removes it, so a writable top normally has none. A layer written by another program
 * (QEMU) after it was frozen breaks the rule: freeze only layers that
 * nothing writes any more, as backing images are. See doc/chain-copy.md.
 */

/** Length of a content ID in text form (a UUID), without the NUL. Since: 0.2 */
#define VSM_IMAGE_CID_STRLEN 36

/**
 * The content ID of @img itself (not of its backing images), as 36
 * lower-case characters and a NUL in @out.
 * Returns 0, or -VSM_ENOTFOUND when it has none (never frozen, changed
 * since, or raw).
 * Since: 0.2
 */
VSM_API int vsm_image_cid_get(vsm_image *img, char out[VSM_IMAGE_CID_STRLEN + 1]);

/**
 * Freeze @img (qcow2, open read-write): give it a new random content ID,
 * unless it already has one, which it keeps. Its data is flushed first.
 * @flags: 0
 * Returns 0, -VSM_ENOTSUP (raw), -VSM_EPERM (read-only), or the flush's
 * error.
 * Since: 0.2
 */
VSM_API int vsm_image_freeze(vsm_image *img, unsigned int flags);

/**
 * Called by vsm_image_copy() as it copies: @done of @total data bytes of
 * the layers being copied have been handled (@total does not change
 * during one copy; the last call has @done == @total). A non-zero return
 * cancels the copy, which then undoes its work and answers
 * -VSM_ECANCELED.
 * Since: 0.2
 */
typedef int (*vsm_image_copy_progress_fn)(uint64_t done, uint64_t total, void *payload);

/** Version of vsm_image_copy_opts. Since: 0.2 */
#define VSM_IMAGE_COPY_OPTS_VERSION 1

/** How vsm_image_copy() copies a chain. Since: 0.2 */
typedef struct {
	unsigned int version;                /**< VSM_IMAGE_COPY_OPTS_VERSION */
	unsigned int flags;                  /**< 0 */
	const char *reuse_dir;               /**< where parents may already be, by content
	                                      *   ID; must be the directory of the target
	                                      *   (a chain of path images stays in one
	                                      *   directory); NULL: copy every parent */
	vsm_image_copy_progress_fn progress; /**< NULL for none */
	void *payload;                       /**< handed to @progress */
} vsm_image_copy_opts;

/** Initializer for vsm_image_copy_opts. Since: 0.2 */
#define VSM_IMAGE_COPY_OPTS_INIT { VSM_IMAGE_COPY_OPTS_VERSION, 0, NULL, NULL, NULL }

/** Version of vsm_image_copy_stats. Since: 0.2 */
#define VSM_IMAGE_COPY_STATS_VERSION 1

/** What vsm_image_copy() did. Since: 0.2 */
typedef struct {
	unsigned int version;       /**< VSM_IMAGE_COPY_STATS_VERSION, set by the caller */
	uint64_t bytes_copied;      /**< data bytes written into the new layers */
	unsigned int layers_copied; /**< new layers, the top included */
	unsigned int layers_reused; /**< parents found in place (the first one found
	                             *   and the layers below it) */
} vsm_image_copy_stats;

/** Initializer for vsm_image_copy_stats. Since: 0.2 */
#define VSM_IMAGE_COPY_STATS_INIT { VSM_IMAGE_COPY_STATS_VERSION, 0, 0, 0 }

/**
 * Copy the image chain whose top is @src to a new top @dst, which must
 * not exist, layer by layer (not flattened): each new layer has the
 * format, virtual size, cluster size, data and zero clusters of its
 * source layer, and keeps its content ID.
 *
 * The top is always copied. Going down the chain, each parent is looked
 * for in @opts->reuse_dir: a qcow2 image there whose content ID, and the
 * content IDs of the whole chain below it, equal those of the parent and
 * the chain below the parent (same virtual sizes too) is used instead:
 * that parent and the layers below it are not copied, and the layer above
 * is created on the image found. A parent that is not found is copied
 * next to @dst under its own file name (its last path component). A file
 * of that name that is the parent itself (the same file) is used in
 * place; any other existing file there is refused with -VSM_EEXISTS and
 * left as it was. Layers without a content ID are never matched.
 *
 * Every layer about to be copied is checked first: one with corruptions
 * is refused with -VSM_ECORRUPT. Unallocated clusters are not written;
 * zero clusters stay zero clusters; data clusters that read as zeros
 * become zero clusters. The new files are flushed (and their directory)
 * before the call returns. On any failure, and on cancel through
 * @opts->progress (-VSM_ECANCELED), every file the call created is
 * removed; existing files are never written. A process that dies during
 * the copy may leave the files it had created.
 *
 * @opts: NULL for defaults (no reuse, no progress)
 * @stats: NULL, or filled in (its version set by the caller)
 * Returns 0, -VSM_EEXISTS, -VSM_EINVAL (bad options, a reuse directory
 * that is not @dst's, two layers of the same file name), -VSM_ECANCELED,
 * -VSM_ECORRUPT, or what opening @src answers.
 * Since: 0.2
 */
VSM_API int vsm_image_copy(const char *src, const char *dst, const vsm_image_copy_opts *opts,
			   vsm_image_copy_stats *stats);

VSM_END_DECL

#endif /* VSM_IMAGE_H */
