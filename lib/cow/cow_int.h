/*
 * Private structures of the COW engine: the qcow2 state (header fields,
 * L1 and refcount tables, the L2 and refcount-block caches) and the
 * qcow2 constants (integers go through base/codec.h). Shared by the files of lib/cow only.
 */
#ifndef VSM_COW_INT_H
#define VSM_COW_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cow.h"
#include "internal.h"

#define QCOW_MAGIC 0x514649fbu
#define QCOW_V3_HEADER_LEN 104u

#define QC_INCOMPAT_DIRTY      (1ull << 0)
#define QC_INCOMPAT_CORRUPT    (1ull << 1)
#define QC_INCOMPAT_DATA_FILE  (1ull << 2)
#define QC_INCOMPAT_COMPRESSION (1ull << 3)
#define QC_INCOMPAT_EXTL2      (1ull << 4)
#define QC_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QC_AUTOCLEAR_BITMAPS (1ull << 0)

/* Bitmaps extension (QEMU docs/interop/qcow2.txt): directory entry flags
 * and the limits QEMU enforces. */
#define QC_BME_IN_USE        (1u << 0)
#define QC_BME_AUTO          (1u << 1)
#define QC_BME_EXTRA_COMPAT  (1u << 2)
#define QC_BM_MAX_BITMAPS    65535u
#define QC_BM_MAX_DIR_BYTES  (64ull << 20)
#define QC_BM_MAX_NAME       1023u
#define QC_BM_MAX_TABLE      0x8000000u        /* entries */
#define QC_BM_MAX_BYTES      0x20000000ull     /* bitmap data in memory */
#define QC_BM_MIN_GRAN_BITS  9u
#define QC_BM_MAX_GRAN_BITS  31u
#define QC_BMT_RESERVED      0xff000000000001feull

#define QC_EXT_END          0x00000000u
#define QC_EXT_BACKING_FMT  0xe2792acau
#define QC_EXT_FEATURES     0x6803f857u
#define QC_EXT_BITMAPS      0x23852875u
#define QC_EXT_CRYPTO       0x0537be77u
#define QC_EXT_DATA_FILE    0x44415441u
/* libvsm's own: the layer's content ID (qcow2_cid.c). Not an incompatible
 * feature: QEMU keeps unknown extensions and ignores them. */
#define QC_EXT_VSM_CID      0x76736d63u
#define QC_CID_LEN          16

#define QC_OFLAG_COPIED     (1ull << 63)
#define QC_OFLAG_COMPRESSED (1ull << 62)
#define QC_OFLAG_ZERO       (1ull << 0)
#define QC_OFFSET_MASK      0x00fffffffffffe00ull
#define QC_L1_RESERVED      0x7f000000000001ffull
#define QC_L2_STD_RESERVED  0x3f000000000001feull
#define QC_RT_RESERVED      0x00000000000001ffull
#define QC_MAX_HOST_OFFSET  (1ull << 56)   /* first byte no entry can name */

/* Largest L1 / refcount table we accept (QEMU's limits). */
#define QC_MAX_L1_BYTES (32u << 20)
#define QC_MAX_RT_BYTES (8u << 20)

/* One cached table (an L2 table or a refcount block). */
struct cow_slot {
	uint8_t *buf;
	uint64_t key;    /* L1 index or refcount-table index */
	uint64_t off;    /* where it lives in the image */
	uint64_t tick;
	bool used;
	bool dirty;
};

struct cow_cache {
	struct cow_slot *slots;
	unsigned int nslots, maxslots;
	int32_t *map;      /* key -> slot, -1 when not cached */
	uint64_t map_len;
	uint64_t tick;
	unsigned int ndirty;
};

/*
 * One persistent dirty bitmap (qcow2_bitmap.c, qcow2_bitmap_mem.c). The
 * bits live in memory in the shape of the on-disk table: one chunk of one
 * cluster per table entry, NULL for a chunk of zeros, so that a sparse
 * bitmap costs its dirty clusters and extents skip empty chunks.
 */
struct qc_bitmap {
	char *name;
	uint32_t gran_bits;
	bool enabled;             /* the 'auto' flag */
	bool bad;                 /* in_use when opened: content untrusted */
	bool changed;             /* memory differs from the stored data */
	uint8_t *extra;           /* extra data kept verbatim (compatible) */
	uint32_t extra_size;
	uint64_t table_off;       /* stored table, 0 if none yet */
	uint32_t table_size;      /* entries of the stored table */
	uint64_t *table;          /* the stored table, host order */
	uint64_t nbits;           /* ceil(size / granularity) */
	uint64_t nchunks;
	uint8_t **chunk;          /* cluster-sized pieces, NULL = zeros,
	                           * QC_BM_ONES = ones (never written to) */
};

/* A chunk of all ones, as a table entry of 1 says: shared, not allocated,
 * so a small image cannot make us allocate its whole bitmap. */
extern const uint8_t qc_bm_ones_marker;
#define QC_BM_ONES ((uint8_t *)(uintptr_t)&qc_bm_ones_marker)

struct qcow2 {
	vsm_bdev *bdev;
	const char *label;        /* borrowed from the vsm_cow */
	bool readonly;

	uint32_t version;
	uint32_t cluster_bits;
	uint64_t cs;              /* cluster size */
	uint32_t l2_bits;         /* log2 of entries per L2 table */
	uint64_t size;
	uint64_t incompat, compat, autoclear;
	uint32_t header_length;
	uint32_t refcount_order;
	uint32_t rc_bits;
	uint64_t rc_max;
	uint32_t rb_bits;         /* log2 of entries per refcount block */

	uint64_t l1_offset;
	uint32_t l1_size;
	uint64_t *l1;             /* host byte order */
	uint8_t *l1_dirty;        /* one flag per 512 entries */

	uint64_t rt_offset;
	uint32_t rt_clusters;
	uint64_t rt_entries;      /* capacity in memory (may exceed disk) */
	uint64_t *rt;
	uint8_t *rt_dirty;        /* one flag per rt cluster */
	bool rt_moved;            /* new table location not yet in the header */

	uint32_t nb_snapshots;
	uint64_t snapshots_offset;

	uint8_t *hdr;             /* the first cluster as read/written */
	char *backing;
	char *backing_format;

	struct cow_cache l2c, rbc;

	uint64_t file_end;        /* bytes: past every cluster in use */
	uint64_t free_hint;       /* lowest cluster that may be free */
	uint64_t fresh_from;      /* clusters >= this never written: read 0 */
	uint64_t res_start, res_end; /* clusters being allocated */
	uint64_t *guard;    /* during repair: clusters in use */
	uint64_t guard_len;

	uint64_t *pend;           /* clusters to unreference after L1 sync */
	size_t npend, pend_cap;

	bool unflushed;           /* writes since the last bdev flush */
	bool marked_dirty;        /* header dirty bit written by us */
	/* A whole-cluster header write failed: the disk may hold the old
	 * header or the new one (hdr). Until a whole-cluster write of hdr
	 * succeeds, no write of the fixed fields alone may mix the two. */
	bool hdr_uncertain;
	bool need_repair;         /* dirty with lazy refcounts: repair before
	                           * any change (VSM_COW_REPAIR) */
	bool zero_extent;         /* file must end at file_end */
	bool meta_verified;       /* qc_meta_verify passed since open */
	bool has_cid;             /* the content-ID extension is present */
	uint8_t cid[QC_CID_LEN];
	char *inconsistent;       /* why no change is allowed (overlap), or NULL */

	struct qc_bitmap *bm;     /* persistent bitmaps (consistent ones) */
	uint32_t nbm;
	uint64_t bm_dir_off, bm_dir_size; /* the stored directory */
	bool bm_inuse_stored;     /* the stored directory marks the enabled
	                           * bitmaps in_use (writes may follow) */
	bool bm_changed;          /* bits or flags to store */

	uint8_t *cbuf;            /* last decompressed cluster */
	uint64_t cbuf_entry;
	bool cbuf_valid;
	uint8_t *tmp;             /* one cluster of scratch */
	uint8_t *ztmp;            /* compressed bytes scratch (2 clusters) */
};

struct vsm_cow {
	int format;
	vsm_bdev *bdev;
	char *label;
	bool readonly;
	uint64_t size;            /* virtual size */
	struct qcow2 *q;          /* qcow2 only */
	vsm_cow *backing;
	vsm_cow_backing_fn open_backing;
	void *payload;
	char *name;               /* the name the overlay recorded, or NULL */
	pthread_mutex_t lock;
	uint64_t cache_max;
	unsigned int depth;
};

/* qcow2_overlap.c: the allocator kept off metadata. Run before the
 * first change (qc_mark_dirty), and on every allocation. */
int qc_meta_verify(struct qcow2 *q);
/* Repair only: forget refcount-table entry @rti (its block is unusable). */
void qc_rt_clear(struct qcow2 *q, uint64_t rti);
int qc_alloc_check(struct qcow2 *q, uint64_t start, uint64_t n);
int qc_refuse_inconsistent(const struct qcow2 *q);

/* qcow2.c */
int qc_open(struct qcow2 **out, vsm_bdev *bdev, const char *label,
	    bool readonly, unsigned int flags, uint64_t cache_max);
int qc_close(struct qcow2 *q);   /* flush + clean; frees */
void qc_free(struct qcow2 *q);
int qc_write_header(struct qcow2 *q, bool full);
int qc_mark_dirty(struct qcow2 *q);
int qc_resize(struct qcow2 *q, uint64_t size);
int qc_drop_backing(struct qcow2 *q);
/* Rewrite the header cluster with extension @type replaced by @ext (NULL:
 * dropped), and flush. *@issued is set once the write was attempted: from
 * then on q->hdr is the new header, and after a failure the disk may hold
 * either one. */
int qc_write_header_ext(struct qcow2 *q, uint32_t type, const uint8_t *ext, uint32_t len,
			bool *issued);
int qc_create(vsm_bdev *bdev, const char *label, const vsm_cow_create_opts *o);

/* qcow2_cid.c: qc_mark_dirty() for a change of what the layer reads; the
 * content ID goes (on disk) before the first such change. */
int qc_content_change(struct qcow2 *q);
void qc_cid_parse(struct qcow2 *q, const uint8_t *ext, uint32_t len);

/*
 * qcow2_header.c: build the header cluster @out (@cs bytes) from the
 * image's current one, @old: @old's first header_length bytes, its
 * extensions other than the backing format verbatim, a backing-format
 * extension for @bfmt, the end marker, then @backing (NULL: no backing
 * name and no format). *@end (may be NULL) is how many leading bytes of
 * @out a caller must write to replace the old header's content. Refuses
 * (-VSM_ENOSPC) what does not fit, and a damaged @old (-VSM_ECORRUPT),
 * with a message naming @label; @out is untouched then.
 */
int qc_header_compose(uint8_t *out, const uint8_t *old, uint64_t cs, const char *label,
		      const char *backing, const char *bfmt, uint64_t *end);

int qc_header_compose_ext(uint8_t *out, const uint8_t *old, uint64_t cs, const char *label,
			  const char *backing, const char *bfmt, uint64_t *end,
			  uint32_t ext_type, const uint8_t *ext, uint32_t ext_len);

/* qcow2_bitmap.c: the directory and tables on disk */
int qc_bm_load(struct qcow2 *q);
void qc_bm_free_all(struct qcow2 *q);
/* Store bitmaps: with @writing, only mark the enabled ones in_use (before
 * a change); without, write changed bits and clear in_use (flush, close). */
int qc_bm_store(struct qcow2 *q, bool writing);
/* Before a guest write: in_use on disk for the enabled bitmaps. */
int qc_bm_before_write(struct qcow2 *q);
int qc_bm_verify_refs(struct qcow2 *q,
		      int (*need)(struct qcow2 *, const char *, uint64_t, uint64_t));
int qc_bm_resize_check(struct qcow2 *q, uint64_t size);
int qc_bm_resize(struct qcow2 *q, uint64_t size);
struct qc_bitmap *qc_bm_find(struct qcow2 *q, const char *name);

/* qcow2_bitmap_mem.c: bits in memory */
int qc_bm_init_bits(struct qcow2 *q, struct qc_bitmap *b, uint64_t size);
void qc_bm_free_bits(struct qc_bitmap *b);
int qc_bm_set_range(struct qcow2 *q, struct qc_bitmap *b, uint64_t off, uint64_t len);
void qc_bm_mark_write(struct qcow2 *q, uint64_t off, uint64_t len);
int qc_bm_walk(struct qcow2 *q, struct qc_bitmap *b, uint64_t off, uint64_t len,
	       vsm_cow_extent_fn fn, void *payload);
bool qc_bm_chunk_empty(const struct qcow2 *q, const uint8_t *chunk);

/* cow.c: unlocked I/O on any layer (the chain below the top). */
int cow_do_read(vsm_cow *c, uint8_t *buf, uint64_t len, uint64_t off);
int cow_do_write(vsm_cow *c, const uint8_t *buf, uint64_t len, uint64_t off);
int cow_do_zero(vsm_cow *c, uint64_t off, uint64_t len, bool unmap);

/* qcow2_meta.c: caches, refcounts, allocation, ordered flush */
int qc_cache_init(struct qcow2 *q, uint64_t cache_max);
void qc_cache_free(struct qcow2 *q);
int qc_l2_get(struct qcow2 *q, uint64_t l1i, bool write, uint64_t **tbl,
	      struct cow_slot **slot);
int qc_rc_get(struct qcow2 *q, uint64_t cluster, uint64_t *out);
int qc_rc_set(struct qcow2 *q, uint64_t cluster, uint64_t val);
int qc_rc_add(struct qcow2 *q, uint64_t cluster, int delta);
int qc_alloc(struct qcow2 *q, uint64_t n, uint64_t *out_off, bool *fresh);
int qc_defer_free(struct qcow2 *q, uint64_t off, uint64_t len);
int qc_free_entry(struct qcow2 *q, uint64_t l2e);
int qc_flush(struct qcow2 *q);
void qc_l2_mark(struct qcow2 *q, struct cow_slot *s);
bool qc_l2_may_evict(const struct qcow2 *q, uint64_t l1i);
int qc_flush_all(struct qcow2 *q);
int qc_bwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t off);
int qc_grow_map(struct cow_cache *c, uint64_t len);
uint64_t qc_rb_get_entry(const struct qcow2 *q, const uint8_t *rb, uint64_t i);
void qc_rb_set_entry(const struct qcow2 *q, uint8_t *rb, uint64_t i, uint64_t v);

/* qcow2_io.c */
int qc_read(vsm_cow *c, uint8_t *buf, uint64_t len, uint64_t off);
int qc_write(vsm_cow *c, const uint8_t *buf, uint64_t len, uint64_t off);
int qc_zero(vsm_cow *c, uint64_t off, uint64_t len, bool unmap);
int qc_status(vsm_cow *c, uint64_t off, uint64_t len, uint64_t *pnum,
	      uint64_t *entry);
int qc_read_compressed(struct qcow2 *q, uint64_t entry, uint8_t *out);
void qc_compressed_range(const struct qcow2 *q, uint64_t entry,
			 uint64_t *off, uint64_t *len);
int qc_make_empty(vsm_cow *c);

/* qcow2_check.c */
int qc_check(struct qcow2 *q, vsm_cow_check_result *res, bool repair);

/* helpers */
static inline uint64_t qc_l2_entries(const struct qcow2 *q)
{
	return 1ull << q->l2_bits;
}

#endif /* VSM_COW_INT_H */
