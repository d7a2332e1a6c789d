/*
 * Private interface of the checkpoint module: the layer graph of a
 * datastore (derived from every container record on it, graph.c),
 * journal actions (hooks.c), merges (merge.c), device helpers
 * (device.c) and checksums (sum.c) shared by every file of the module.
 */
#ifndef VSM_CKPT_H
#define VSM_CKPT_H

#include <stdbool.h>
#include <stdint.h>

#include "bdev.h"
#include "cow.h"
#include "ops.h"
#include "vsm/checkpoint.h"
#include "workflow.h"

/* Journal action: delete device KEY unless a record on the datastore
 * references it (and never an unmanaged layer). The same step serves
 * rollback and roll-forward: which record version is on disk decides. */
#define CK_WF_DELETE_UNREF "ckpt_delete_unref"
/* Journal action (redo): "T X DIR CID" merge layer T with its only
 * child X, DIR "commit" (X into T) or "stream" (T into X). */
#define CK_WF_MERGE "ckpt_merge"
/* Journal action (redo): "UUID" compact the datastore as a checkpoint
 * delete of container UUID does after its record write
 * (ck_compact_rounds with @self UUID): what a failed merge left is done
 * by recovery, not only by some later call. */
#define CK_WF_COMPACT "ckpt_compact"

/* 64-bit checksum: zlib's CRC-32 and Adler-32 side by side. It finds
 * damage, not tampering (a bundle is not signed). */
typedef struct {
	uint32_t crc, adler;
} ck_sum;
void ck_sum_init(ck_sum *s);
void ck_sum_add(ck_sum *s, const void *buf, size_t len);
uint64_t ck_sum_value(const ck_sum *s);

/* Every record of a datastore, as private copies we can edit. */
typedef struct {
	vsm_record **v;
	size_t n;
	bool *dirty;
} ck_recs;
int ck_recs_load(ck_recs *rs, vsm_ctx *ctx, vsm_dstore *ds);
int ck_recs_store(ck_recs *rs, vsm_ctx *ctx, vsm_dstore *ds); /* dirty ones */
void ck_recs_free(ck_recs *rs);
vsm_record *ck_recs_find(ck_recs *rs, const char *uuid);

/* Record helpers. */
vsm_rec_checkpoint *ck_find(const vsm_record *r, const char *name);
vsm_rec_frozen *ck_layer(const vsm_record *r, const char *key);
int ck_layer_put(vsm_record *r, const vsm_rec_frozen *l); /* copy in, or replace */
void ck_layer_remove(vsm_record *r, const char *key);
/* Backing chain of @key from @r's layer table, nearest first (not
 * including @key). Free with vsm__layers_free. */
int ck_chain_of(const vsm_record *r, const char *key, vsm_rec_layer **chain, size_t *n);
/* Make sure every layer of every device chain is in the layer table
 * (records from before checkpoints have none), and, with @ds, that
 * every golden image's entry has the content ID its header holds. */
int ck_table_fill(vsm_dstore *ds, vsm_record *r);
/* Copy @key's table entry and those below it from @from into @to. */
int ck_table_copy(vsm_record *to, const vsm_record *from, const char *key);

/* Both non-NULL and equal. */
bool ck_eq(const char *a, const char *b);

/* Who references @key: a device top, a chain, a checkpoint layer, a
 * state area or blob, or a table entry's backing. */
bool ck_referenced(const ck_recs *rs, const char *key);
bool ck_rec_references(const vsm_record *r, const char *key);
/* Distinct layers standing directly on @key (up to @max written). */
size_t ck_children(const ck_recs *rs, const char *key, const char **out, size_t max);
bool ck_is_top(const ck_recs *rs, const char *key, const vsm_record **owner,
	       const char **device);
bool ck_is_ckpt_layer(const ck_recs *rs, const char *key);
bool ck_is_managed(const ck_recs *rs, const char *key);

/* A fresh device name: "<uuid>-<what>.<8 hex>.<ext>". */
void ck_name(char *buf, size_t size, const char *uuid, const char *what, const char *ext);
/* Create a device under the journal (undo: CK_WF_DELETE_UNREF), qcow2
 * formatted over @backing when @format is "qcow2". */
int ck_device_create(vsm_wf *wf, vsm_dstore *ds, const char *name, uint64_t size,
		     const char *format, const char *backing, int backing_format,
		     char key[VSM_BACKEND_KEY_MAX]);
/* Delete @key unless referenced (see CK_WF_DELETE_UNREF). */
int ck_delete_unref(vsm_ctx *ctx, vsm_dstore *ds, const char *key);
/* Allocated bytes stored in the layer @key (of vsm_format @format) itself. */
int ck_layer_alloc(vsm_dstore *ds, const char *key, int format, uint64_t *out);
/* Open @key with its chain on @ds, as the vsm_format @format the record
 * gives it: a raw layer holds a guest's bytes, which must never be
 * probed for an image format (a guest could write a qcow2 header into
 * its raw disk). */
struct vsm_cow;
int ck_cow_open(struct vsm_cow **out, vsm_dstore *ds, const char *key, int format,
		bool rdonly, bool no_backing);
/* Write content ID @cid (text) into qcow2 layer @key's header (raw:
 * nothing), unless it holds it already. */
int ck_stamp_cid(vsm_dstore *ds, const char *key, int format, const char *cid);
/* The content ID in @key's header into @out: 1, or 0 when it has none
 * ("" in @out; always for raw). */
int ck_header_cid(vsm_dstore *ds, const char *key, int format, char out[VSM_UUID_STRLEN + 1]);
/* After a commit point: give every managed qcow2 layer of @r's table
 * whose header lacks it the record's content ID; a failure is logged
 * (the record stays the truth; the layer is then copied, never reused). */
void ck_stamp_layers(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r);
/* The same for the one layer @key. */
void ck_stamp_layer(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r, const char *key);
/* The copy unit of ck_copy_view and of merges. */
#define CK_CHUNK (1u << 20)
/* Are the @n bytes at @p all zero? */
bool ck_all_zero(const uint8_t *p, size_t n);
/* Copy what @src (opened with its chain) reads into @dst, skipping
 * zeros; progress is reported through @prog. */
int ck_copy_view(struct vsm_cow *src, struct vsm_cow *dst, uint64_t *written);

/* Point qcow2 layer @key at @backing (NULL: none), data untouched. */
int ck_rebase(vsm_dstore *ds, const char *key, const char *backing, int backing_format);

/* Merge anonymous layers that have one child and delete those with
 * none, on the whole datastore. @self: the caller's container (its
 * record may be rewritten while attached), or NULL; @stopped: its
 * deployed devices may change too (its VM is stopped). Layers read by
 * other attached containers or their deployed tops are left alone. */
int ck_compact(vsm_ctx *ctx, vsm_dstore *ds, const char *self, bool stopped);
/* ck_compact without its first part: finishing the merges and deletes
 * this context left in the journal (ck_finish_left). */
int ck_compact_rounds(vsm_ctx *ctx, vsm_dstore *ds, const char *self, bool stopped);
/* Finish the checkpoint merges and deletes this context began on @ds
 * and left in the journal after a failure (logged when some cannot). */
void ck_finish_left(vsm_ctx *ctx, vsm_dstore *ds);
/* One merge of layer @t and its only child @x (@dir "commit" or
 * "stream"), idempotent: the journal action reruns it after a crash,
 * with @again (clusters the cut-short copy leaked are freed first). */
int ck_merge(vsm_ctx *ctx, vsm_dstore *ds, const char *t, const char *x,
	     const char *dir, const char *cid, bool again);
/* Next field of a merge step's argument (*@p), unescaped into @out. */
bool ck_merge_arg_get(const char **p, char *out, size_t size);

/* vsm_checkpoint_create, giving the new checkpoint the backup point ID
 * @point (a UUID; NULL: none). lib/backup takes its backup points so, in
 * the checkpoint's one record write. create.c. */
int ck_create(vsm_checkpoint **out, vsm_container *c, const char *name,
	      const vsm_checkpoint_opts *opts, const char *point);

/* The backup point ID of checkpoint @name of @c, given one (a record
 * write) if it has none yet. create.c. */
int ck_point_of(vsm_container *c, const char *name, char point[VSM_UUID_STRLEN + 1]);

/* What lib/open.c registers for this module: its journal actions
 * ("ckpt_*") and its part of a container destroy (before the record goes,
 * @after false, it deletes blobs and layers only @r reads; after, it
 * merges what is left). hooks.c. */
int vsm__ckpt_wf_action(vsm_ctx *ctx, vsm_dstore *ds, const char *action, const char *arg);
int vsm__ckpt_destroy_hook(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r, bool after);

#endif /* VSM_CKPT_H */
