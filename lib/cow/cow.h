/*
 * The COW engine's internal API: an image (raw or qcow2, with its backing
 * chain) over any backend's block I/O. The container code uses this on a
 * vsm_bdev from device_open(); the public vsm_image_* calls (image.c) use
 * it over files named by path.
 *
 * None of these functions clear the thread's error; they set it on failure.
 */
#ifndef VSM_COW_H
#define VSM_COW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdev.h"

typedef struct vsm_cow vsm_cow;

enum { VSM_COW_RAW = 1, VSM_COW_QCOW2 = 2 };

/*
 * Open the backing image recorded as @name in an overlay. @name is the
 * string exactly as stored in the image; the callback decides what it
 * means (a path under the image's directory, a device key on the same
 * datastore) and must refuse names that would leave that namespace.
 * @readonly is false only when the engine commits into the backing image.
 * The engine takes ownership of *out.
 */
typedef int (*vsm_cow_backing_fn)(vsm_bdev **out, const char *name,
				  bool readonly, void *payload);

/* Open flags. */
#define VSM_COW_RDONLY     (1u << 0)
/* Do not open the backing chain (info about one layer, check). */
#define VSM_COW_NO_BACKING (1u << 1)
/* A dirty image with lazy refcounts opens read-write; it is repaired by
 * check with repair, or else before its first change. */
#define VSM_COW_REPAIR     (1u << 2)

typedef struct {
	const char *format;   /* "raw", "qcow2", or NULL to probe the magic */
	unsigned int flags;   /* VSM_COW_* */
	uint64_t cache_max;   /* bound for the L2 + refcount caches; 0 = 64 MiB */
	vsm_cow_backing_fn open_backing; /* NULL: an image with a backing
	                                  * reference fails to open */
	void *payload;        /* handed to open_backing */
} vsm_cow_open_opts;

/*
 * Open the image on @bdev. The engine owns @bdev from here on, also when
 * this fails. @label names the image in messages ("image '/x/a.qcow2'").
 */
int vsm_cow_open(vsm_cow **out, vsm_bdev *bdev, const char *label,
		 const vsm_cow_open_opts *opts);
/* Flush, clear the dirty bit, close the chain. Returns the first error;
 * @c is freed in every case. NULL is ignored. */
int vsm_cow_close(vsm_cow *c);

typedef struct {
	uint64_t size;            /* virtual size; 0 = the backing image's */
	uint32_t cluster_size;    /* 512..2 MiB power of two; 0 = 64 KiB */
	unsigned int refcount_bits; /* 1..64 power of two; 0 = 16 */
	const char *backing;      /* backing reference as it will be stored */
	const char *backing_format; /* "raw"/"qcow2"; NULL = probe it */
	vsm_cow_backing_fn open_backing; /* to read the backing's size/format */
	void *payload;
} vsm_cow_create_opts;

/*
 * Write a new, empty qcow2 v3 image onto @bdev (which the caller keeps).
 * Only the header, refcount structures and L1 table are written, so an
 * overlay is O(1) in the size of its backing image.
 */
int vsm_cow_create_qcow2(vsm_bdev *bdev, const char *label,
			 const vsm_cow_create_opts *opts);

/* Guest I/O. Reads go through the backing chain. */
int vsm_cow_read(vsm_cow *c, void *buf, size_t len, uint64_t off);
int vsm_cow_write(vsm_cow *c, const void *buf, size_t len, uint64_t off);
/* Make [off, off+len) read as zeros; with @unmap, release storage. */
int vsm_cow_write_zeroes(vsm_cow *c, uint64_t off, uint64_t len, bool unmap);
int vsm_cow_flush(vsm_cow *c);

/* Block status of the range at @off: how many bytes (*pnum, > 0) share
 * the answer. */
typedef struct {
	bool data;        /* reads data stored in some layer */
	bool zero;        /* reads as zeros */
	bool present;     /* allocated (data or zero flag) in some layer */
	unsigned int depth; /* layer that answers: 0 = this image */
	uint64_t offset;  /* host offset in that layer, or UINT64_MAX */
	bool compressed;
} vsm_cow_status;
int vsm_cow_block_status(vsm_cow *c, uint64_t off, uint64_t len,
			 uint64_t *pnum, vsm_cow_status *st);

typedef struct {
	uint64_t corruptions;
	uint64_t leaks;
	uint64_t corruptions_fixed;
	uint64_t leaks_fixed;
	uint64_t allocated_clusters;
	uint64_t image_end;
} vsm_cow_check_result;
/* qcow2 only: verify refcounts, COPIED flags and table offsets; with
 * @repair, fix refcounts and flags. Raw images are always clean. */
int vsm_cow_check(vsm_cow *c, vsm_cow_check_result *res, bool repair);

/* Copy the overlay's data into its backing image, then empty the overlay. */
int vsm_cow_commit(vsm_cow *c);
/* Copy up everything read through the backing chain and drop the
 * backing reference. */
int vsm_cow_flatten(vsm_cow *c);
/* Grow the virtual size. */
int vsm_cow_resize(vsm_cow *c, uint64_t size);

/* Accessors. @depth 0 is @c itself. NULL past the end of the chain. */
vsm_cow *vsm_cow_backing(vsm_cow *c);
int vsm_cow_format(const vsm_cow *c);
uint64_t vsm_cow_size(const vsm_cow *c);
const char *vsm_cow_label(const vsm_cow *c);

typedef struct {
	int format;
	uint64_t virtual_size;
	uint32_t cluster_size;     /* 0 for raw */
	unsigned int qcow2_version;
	unsigned int refcount_bits;
	unsigned int nb_snapshots;
	bool dirty, corrupt, readonly;
	uint64_t file_size;        /* bytes the device holds */
	uint64_t allocated_bytes;  /* guest-visible bytes stored in this layer */
	const char *backing;       /* borrowed from @c */
	const char *backing_format;
} vsm_cow_info;
int vsm_cow_get_info(vsm_cow *c, vsm_cow_info *out);

/*
 * Persistent dirty bitmaps (qcow2 only, QEMU's on-disk format; see
 * doc/bitmaps.md). Enabled bitmaps are kept in memory while the image is
 * open: every write, write_zeroes and discard through the engine (and
 * commit's writes into its backing image) sets their bits; flatten's
 * copy-up does not. They are stored at vsm_cow_flush() and at close; before
 * the first change after a store, the enabled ones are marked in_use on
 * disk, so a writer that dies leaves them in_use (untrusted). The calls
 * below that change a bitmap have stored the change when they return.
 * Names are matched exactly; a missing one is -VSM_ENOTFOUND; clear, set,
 * merge and extents refuse an in_use bitmap with -VSM_ECORRUPT.
 */
typedef struct {
	char *name;
	uint32_t granularity;   /* bytes, power of two, 512 .. 2 GiB */
	bool enabled;           /* the 'auto' flag: writes through this engine set its bits */
	bool in_use;            /* the in_use flag was set on disk when this image was opened:
	                         * a writer did not close it; its content cannot be trusted */
} vsm_cow_bitmap_info;
int  vsm_cow_bitmap_list(vsm_cow *c, vsm_cow_bitmap_info **out, size_t *n);
void vsm_cow_bitmap_list_free(vsm_cow_bitmap_info *list, size_t n);
/* granularity 0 = the image's cluster size; refused on a raw image, on a
 * read-only open, for a duplicate name, a name longer than 1023 bytes,
 * a bad granularity, or more than 65535 bitmaps. */
int  vsm_cow_bitmap_add(vsm_cow *c, const char *name, uint32_t granularity, bool enabled);
int  vsm_cow_bitmap_remove(vsm_cow *c, const char *name);      /* also allowed for an in_use one */
int  vsm_cow_bitmap_clear(vsm_cow *c, const char *name);
int  vsm_cow_bitmap_enable(vsm_cow *c, const char *name, bool enable);
/* dst |= src (src may be in another open image, or the same; granularities may differ:
 * a src bit sets every dst bit that overlaps its range). */
int  vsm_cow_bitmap_merge(vsm_cow *dst, const char *dst_name, vsm_cow *src, const char *src_name);
/* Mark [off, off+len) dirty (used to rebuild a bitmap from an allocation map). */
int  vsm_cow_bitmap_set(vsm_cow *c, const char *name, uint64_t off, uint64_t len);
typedef int (*vsm_cow_extent_fn)(uint64_t off, uint64_t len, void *payload);
/* Call @fn for each maximal dirty extent within [off, off+len), in order,
 * clipped to the virtual size. Cost must be O(table entries + dirty bitmap
 * clusters): bitmap-table entries that are 0 (all zeros) are skipped without
 * reading anything. An in_use bitmap gives -VSM_ECORRUPT with a message
 * naming the bitmap and saying its writer did not close the image.
 * A non-zero return of @fn stops the walk and is returned. */
int  vsm_cow_bitmap_extents(vsm_cow *c, const char *name, uint64_t off, uint64_t len,
			    vsm_cow_extent_fn fn, void *payload);

/*
 * Point the qcow2 image on @b at another backing image (@backing of format
 * @fmt, or none when @backing is NULL) without touching its data, as
 * `qemu-img rebase -u` does. Only the header cluster is rewritten; the
 * caller guarantees the new backing reads as the old one did. @label
 * names the image in messages. (rebase.c)
 */
int vsm_cow_rebase_header(vsm_bdev *b, const char *label, const char *backing,
			  const char *fmt);

/*
 * Content IDs (qcow2_cid.c): a 128-bit ID in libvsm's header extension.
 * A change through the engine of what the layer reads (write, zero,
 * discard, commit into it or out of it, resize) removes the ID first.
 * vsm_cow_cid is true and fills @out when @c itself has one (always false
 * for raw). vsm_cow_set_cid flushes @c's data, then stores @cid; qcow2
 * open read-write only.
 */
#define VSM_COW_CID_LEN 16
bool vsm_cow_cid(vsm_cow *c, uint8_t out[VSM_COW_CID_LEN]);
int vsm_cow_set_cid(vsm_cow *c, const uint8_t cid[VSM_COW_CID_LEN]);

/*
 * Content-derived IDs (content_cid.c), for layers without a backing
 * image (golden images): the first 16 bytes of a SHA-256 over the
 * virtual size and every 4 KiB grain of the guest view that is not all
 * zeros, with its offset, stamped as a version 8 UUID. Two bottom layers
 * of the same size that read the same bytes get the same ID, however
 * their clusters are laid out and wherever they were imported.
 * Feed data in ascending, non-overlapping order; ranges not fed read as
 * zeros.
 */
#include <nettle/sha2.h>
#define VSM_COW_GRAIN 4096u
typedef struct {
	struct sha256_ctx sha;
	uint64_t grain;      /* offset of the grain in buf, UINT64_MAX: none */
	uint8_t buf[VSM_COW_GRAIN];
} vsm_cow_chash;
void vsm_cow_chash_begin(vsm_cow_chash *h, uint64_t size);
void vsm_cow_chash_data(vsm_cow_chash *h, uint64_t off, const uint8_t *p, size_t n);
void vsm_cow_chash_end(vsm_cow_chash *h, uint8_t cid[VSM_COW_CID_LEN]);
/* Whether @cid is a content-derived ID (its version nibble is 8). */
bool vsm_cow_cid_is_content(const uint8_t cid[VSM_COW_CID_LEN]);
/* The content-derived ID of what @c reads (through its chain). */
int vsm_cow_content_cid(vsm_cow *c, uint8_t cid[VSM_COW_CID_LEN]);
/* An ID as the 36 characters of a UUID, and back (false: not one). */
void vsm_cow_cid_text(const uint8_t cid[VSM_COW_CID_LEN], char out[37]);
bool vsm_cow_cid_parse(const char *s, uint8_t cid[VSM_COW_CID_LEN]);

#endif /* VSM_COW_H */
