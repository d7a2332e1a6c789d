/*
 * libvsm - checkpoints: a container's disks and VM state as one point in
 * time. Create, list (a tree), revert, delete (merging layers), clone
 * from a checkpoint, and export/import a container or a checkpoint as one
 * self-describing bundle file.
 *
 * Every device keeps a plain qcow2 backing chain on its datastore: a
 * checkpoint freezes each device's top layer and puts an empty qcow2
 * overlay on it, so creating one is O(1) in the size of the disks.
 * See doc/checkpoints.md for the on-datastore format.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_CHECKPOINT_H
#define VSM_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "context.h"
#include "container.h"

VSM_BEGIN_DECL

/** One checkpoint of a container (a snapshot of its description, owned
 *  by the caller). No call updates it: what its getters return stays
 *  valid, and unchanged, until vsm_checkpoint_free() (or
 *  vsm_checkpoint_list_free()), whatever happens to the container.
 *  Since: 0.1 */
typedef struct vsm_checkpoint vsm_checkpoint;

/**
 * Source of a VM-state blob: fill @buf with up to @len bytes and set
 * *@got (0 only at the end). Return 0, or a negative VSM_E* code to
 * abort the call that reads it.
 * Since: 0.1
 */
typedef int (*vsm_state_read_fn)(void *buf, size_t len, size_t *got, void *payload);

/**
 * Sink of a VM-state blob: take @len bytes. Return 0 or a negative
 * VSM_E* code to abort.
 * Since: 0.1
 */
typedef int (*vsm_state_write_fn)(const void *buf, size_t len, void *payload);

/**
 * Progress of a long call: @done of @total bytes. Return 0 to go on, or
 * a negative VSM_E* code to cancel (the call then undoes its work).
 * Since: 0.1
 */
typedef int (*vsm_progress_fn)(uint64_t done, uint64_t total, void *payload);

/** Version of vsm_checkpoint_opts understood by this header. Since: 0.1 */
#define VSM_CHECKPOINT_OPTS_VERSION 1

/** Flag: the caller has stopped the VM; deployed devices may change (they
 *  are undeployed and deployed again around the call, into the domain
 *  they were hot-plugged into, with the target and bus they had (since
 *  0.2; the defaults before); one that
 *  cannot be deployed again is logged and left undeployed). Since: 0.1 */
#define VSM_CHECKPOINT_STOPPED (1u << 0)

/**
 * Settings for vsm_checkpoint_create(): where the VM-state blob comes
 * from. Give at most one of @state_fd and @state_read; none means the
 * checkpoint has no blob.
 *
 * Since: 0.1
 */
typedef struct {
	unsigned int version;         /**< VSM_CHECKPOINT_OPTS_VERSION */
	int state_fd;                 /**< read the blob from this fd; -1: none */
	vsm_state_read_fn state_read; /**< or from this callback; NULL: none */
	void *state_payload;          /**< for @state_read */
	/** Bytes of blob; 0: a regular file's size from its current offset,
	 *  otherwise the source is read to its end (a callback ends by
	 *  returning no bytes; this needs a backend that can resize). */
	uint64_t state_size;
	unsigned int flags;           /**< VSM_CHECKPOINT_* */
} vsm_checkpoint_opts;

/** Default checkpoint settings (no state blob). Since: 0.1 */
#define VSM_CHECKPOINT_OPTS_INIT { VSM_CHECKPOINT_OPTS_VERSION, -1, NULL, NULL, 0, 0 }

/**
 * Create checkpoint @name (unique in the container) of every device of
 * @c, with the VM-state blob that @opts supplies. All devices or none:
 * a failure removes what was made, and a crash is rolled back by the
 * next vsm_ctx_open() on the same state directory. Once the checkpoint
 * is recorded the call succeeds; what it cannot tidy after that is
 * logged as a warning and left to the journal. Refused with
 * -VSM_EBUSY while a device is deployed, unless VSM_CHECKPOINT_STOPPED.
 * The new checkpoint's parent is the one the devices descend from.
 *
 * @out: receives the new checkpoint; may be NULL. Updates @c (what its
 *       getters returned stays valid: see vsm_container).
 * @opts: NULL for no state blob
 * Returns 0, -VSM_EEXISTS, -VSM_EINVAL, -VSM_EBUSY, -VSM_EIO, ...
 * Since: 0.1
 */
VSM_API int vsm_checkpoint_create(vsm_checkpoint **out, vsm_container *c,
				  const char *name, const vsm_checkpoint_opts *opts);

/**
 * The checkpoints of @c, oldest first. Each carries the allocated size
 * of its layers (read from the images). Free with
 * vsm_checkpoint_list_free().
 * Since: 0.1
 */
VSM_API int vsm_checkpoint_list(vsm_checkpoint ***out, size_t *count, vsm_container *c);

/** One checkpoint by name; -VSM_ENOTFOUND if none. Since: 0.1 */
VSM_API int vsm_checkpoint_lookup(vsm_checkpoint **out, vsm_container *c,
				  const char *name);

/** Free a list from vsm_checkpoint_list(); NULL is ignored. Since: 0.1 */
VSM_API void vsm_checkpoint_list_free(vsm_checkpoint **list, size_t count);
/** Free a checkpoint handle; NULL is ignored. Since: 0.1 */
VSM_API void vsm_checkpoint_free(vsm_checkpoint *cp);

/** Name; owned by @cp, valid until it is freed. Since: 0.1 */
VSM_API const char *vsm_checkpoint_name(const vsm_checkpoint *cp);
/** Name of the parent checkpoint, NULL for a root; owned by @cp, valid
 *  until it is freed. Since: 0.1 */
VSM_API const char *vsm_checkpoint_parent(const vsm_checkpoint *cp);
/** Creation time, seconds since the epoch. Since: 0.1 */
VSM_API int64_t vsm_checkpoint_ctime(const vsm_checkpoint *cp);
/** Size of the VM-state blob in bytes (0: none). Since: 0.1 */
VSM_API uint64_t vsm_checkpoint_state_size(const vsm_checkpoint *cp);
/** Non-zero when the container's devices descend from it directly. Since: 0.1 */
VSM_API int vsm_checkpoint_is_current(const vsm_checkpoint *cp);
/** Number of frozen layers (one per device). Since: 0.1 */
VSM_API size_t vsm_checkpoint_layer_count(const vsm_checkpoint *cp);
/** Device of the @i-th layer, NULL past the end; owned by @cp, valid
 *  until it is freed. Since: 0.1 */
VSM_API const char *vsm_checkpoint_layer_device(const vsm_checkpoint *cp, size_t i);
/** Backend key of the @i-th layer; owned by @cp, valid until it is
 *  freed. Since: 0.1 */
VSM_API const char *vsm_checkpoint_layer_key(const vsm_checkpoint *cp, size_t i);
/** Content ID of the @i-th layer (a UUID); owned by @cp, valid until it
 *  is freed. Since: 0.1 */
VSM_API const char *vsm_checkpoint_layer_cid(const vsm_checkpoint *cp, size_t i);
/** Bytes of guest data stored in the @i-th layer itself. Since: 0.1 */
VSM_API uint64_t vsm_checkpoint_layer_size(const vsm_checkpoint *cp, size_t i);

/**
 * Copy checkpoint @name's VM-state blob out of the datastore, verifying
 * its checksum: to @fd when it is >= 0, else to @write. A blob whose
 * checksum fails gives -VSM_ECORRUPT (after part of it was written).
 * Since: 0.1
 */
VSM_API int vsm_checkpoint_state_read(vsm_container *c, const char *name, int fd,
				      vsm_state_write_fn write, void *payload);

/** Version of vsm_layer_info. Since: 0.2 */
#define VSM_LAYER_INFO_VERSION 1

/**
 * One layer of a device's backing chain, as vsm_device_chain() reports
 * it. Strings belong to the list and live until it is freed. Since: 0.2
 */
typedef struct {
	unsigned int version;   /**< VSM_LAYER_INFO_VERSION of the library that filled it */
	const char *key;        /**< backend key of the layer's device */
	int format;             /**< vsm_format of the layer */
	/** Content ID (a UUID's 36 characters): two layers with the same one
	 *  hold the same bytes (doc/chain-copy.md). NULL when the layer has
	 *  none: a writable top never has one, nor does a raw golden image or
	 *  one imported before 0.2. */
	const char *cid;
	/** Checkpoint whose frozen layer this is, NULL for none (a top, a
	 *  golden image, a layer whose checkpoint was deleted). */
	const char *checkpoint;
	int writable;           /**< non-zero for the device's top */
	int golden;             /**< non-zero for a golden image (never deleted by libvsm) */
} vsm_layer_info;

/**
 * The chain of device @device of @c, top first, down to its bottom
 * layer, read from the container's record on its datastore (and, for a
 * layer whose record entry has no content ID, from the layer's qcow2
 * header). @out is an array of @out_count entries; free it with
 * vsm_layer_info_list_free(). @flags: 0. -VSM_ENOTFOUND for an unknown
 * device. Since: 0.2
 */
VSM_API int vsm_device_chain(vsm_layer_info **out, size_t *out_count, vsm_container *c,
			     const char *device, unsigned int flags);
/** Free a list from vsm_device_chain(); NULL is ignored. Since: 0.2 */
VSM_API void vsm_layer_info_list_free(vsm_layer_info *list, size_t count);

/** Version of vsm_revert_opts understood by this header. Since: 0.1 */
#define VSM_REVERT_OPTS_VERSION 1

/** Settings for vsm_checkpoint_revert(): where the blob goes. Since: 0.1 */
typedef struct {
	unsigned int version;           /**< VSM_REVERT_OPTS_VERSION */
	int state_fd;                   /**< write the blob here; -1: not here */
	vsm_state_write_fn state_write; /**< or to this callback; NULL: not wanted */
	void *state_payload;            /**< for @state_write */
	unsigned int flags;             /**< VSM_CHECKPOINT_STOPPED */
} vsm_revert_opts;

/** Default revert settings (the blob is not handed back). Since: 0.1 */
#define VSM_REVERT_OPTS_INIT { VSM_REVERT_OPTS_VERSION, -1, NULL, NULL, 0 }

/**
 * Revert @c's devices to checkpoint @name: each gets a new empty overlay
 * on the checkpoint's layer, and what was written since the last
 * checkpoint is dropped. Other branches of the tree stay. Refused with
 * -VSM_EBUSY while a device is deployed, unless VSM_CHECKPOINT_STOPPED.
 * The blob is handed back (and its checksum verified) before the devices
 * are switched, which is the last step that may fail: when the call
 * fails, nothing was switched and what was handed back is to be
 * dropped; once they are switched the call succeeds, logging what it
 * could not tidy. Updates @c (what its getters returned stays valid: see
 * vsm_container).
 * Since: 0.1
 */
VSM_API int vsm_checkpoint_revert(vsm_container *c, const char *name,
				  const vsm_revert_opts *opts);

/**
 * Delete checkpoint @name. Its children take its parent. Each of its
 * layers is merged with its only child layer (the smaller into the
 * larger); a layer that several children, clones or other containers
 * read stays until the last of them goes. A merge interrupted by a crash
 * is finished by the next vsm_ctx_open(). A merge into a deployed device
 * is left for later (the checkpoint is gone either way), unless
 * VSM_CHECKPOINT_STOPPED. The call fails only while the checkpoint is
 * still there; a merge that fails after it is gone is logged and left
 * for a later call or the journal. Updates @c (what its getters returned stays
 * valid: see vsm_container).
 * Since: 0.1
 */
VSM_API int vsm_checkpoint_delete(vsm_container *c, const char *name, unsigned int flags);

/** Flag for vsm_checkpoint_clone(): copy the data (an independent
 *  container) instead of linking to the frozen layers. Since: 0.1 */
#define VSM_CLONE_FULL (1u << 0)

/**
 * Make container @name on @src's datastore from checkpoint @checkpoint
 * of @src: linked (qcow2 overlays on the frozen layers, O(1)) or with
 * VSM_CLONE_FULL flattened copies. The clone is a normal container with
 * no checkpoints; its VM-state area holds a copy of the checkpoint's
 * blob when it has one. A linked clone keeps the layers it reads alive
 * after the source or its checkpoint is deleted. All or nothing: a
 * failure leaves no clone and no device of it behind.
 *
 * @out: receives the clone; may be NULL
 * Since: 0.1
 */
VSM_API int vsm_checkpoint_clone(vsm_container **out, vsm_container *src,
				 const char *checkpoint, const char *name, unsigned int flags);

/** Version of vsm_clone_opts understood by this header. Since: 0.2 */
#define VSM_CLONE_OPTS_VERSION 1

/** What vsm_checkpoint_clone_to() copied (filled when it succeeds). Since: 0.2 */
typedef struct {
	uint64_t bytes_copied;    /**< guest and state bytes written on the target */
	uint64_t layers_copied;   /**< frozen layers copied to the target */
	uint64_t layers_reused;   /**< layers the target held already (same content ID) */
} vsm_clone_stats;

/** Settings for vsm_checkpoint_clone_to(). Since: 0.2 */
typedef struct {
	unsigned int version;     /**< VSM_CLONE_OPTS_VERSION */
	unsigned int flags;       /**< VSM_CLONE_FULL (same datastore only) */
	/** Target datastore; NULL or the source's: a clone on the same
	 *  datastore, as vsm_checkpoint_clone(). */
	const char *datastore;
	vsm_progress_fn progress; /**< NULL: none */
	void *payload;            /**< for @progress */
	vsm_clone_stats *stats;   /**< receives the counts; may be NULL */
} vsm_clone_opts;

/** Default clone settings. Since: 0.2 */
#define VSM_CLONE_OPTS_INIT { VSM_CLONE_OPTS_VERSION, 0, NULL, NULL, NULL, NULL }

/**
 * vsm_checkpoint_clone() with settings, among them a target datastore.
 * On another datastore the clone is a chain copy (doc/chain-copy.md):
 * each layer of the checkpoint's chains that the target already holds
 * with the same content ID (a layer a bundle brought, or a golden image
 * imported there too, verified against its ID) is relinked to, and only
 * the others are copied. The new container has the checkpoint as its
 * only one, current, under its name, with fresh empty tops; its layers
 * are its own (or shared on the target), independent of the source.
 * All or nothing, like an import. Since: 0.2
 */
VSM_API int vsm_checkpoint_clone_to(vsm_container **out, vsm_container *src,
				    const char *checkpoint, const char *name,
				    const vsm_clone_opts *opts);

/** Version of vsm_bundle_opts understood by this header. Since: 0.1 */
#define VSM_BUNDLE_OPTS_VERSION 1

/** What an export or import moved (filled when the call succeeds). Since: 0.1 */
typedef struct {
	uint64_t layers;          /**< layers in the bundle */
	uint64_t layers_skipped;  /**< import: already on the datastore */
	uint64_t bytes_written;   /**< guest and state bytes written */
	uint64_t bundle_bytes;    /**< size of the bundle file */
} vsm_bundle_stats;

/** Settings for vsm_bundle_export() and vsm_bundle_import(). Since: 0.1 */
typedef struct {
	unsigned int version;     /**< VSM_BUNDLE_OPTS_VERSION */
	vsm_progress_fn progress; /**< NULL: none */
	void *payload;            /**< for @progress */
	vsm_bundle_stats *stats;  /**< receives the counts; may be NULL */
	unsigned int flags;       /**< 0 */
} vsm_bundle_opts;

/** Default bundle settings. Since: 0.1 */
#define VSM_BUNDLE_OPTS_INIT { VSM_BUNDLE_OPTS_VERSION, NULL, NULL, NULL, 0 }

/**
 * Write container @c (its devices, checkpoint tree and state blobs) or,
 * when @checkpoint is not NULL, that one checkpoint (its layers and
 * blob) to a new bundle file at @path (refused if it exists). Layers are
 * stored sparse with their content IDs and checksums. Refused with
 * -VSM_EBUSY while a device is deployed. A failure removes the file.
 * Since: 0.1
 */
VSM_API int vsm_bundle_export(vsm_container *c, const char *checkpoint, const char *path,
			      const vsm_bundle_opts *opts);

/**
 * Load the bundle at @path into @datastore as container @name (NULL:
 * the name in the bundle). Layers whose content ID the datastore
 * already holds are not copied. Every checksum is verified; a truncated
 * or altered bundle is refused with -VSM_ECORRUPT and leaves nothing on
 * the datastore (a crash is rolled back by the next vsm_ctx_open()).
 *
 * @out: receives the new container; may be NULL
 * Since: 0.1
 */
VSM_API int vsm_bundle_import(vsm_container **out, vsm_ctx *ctx, const char *path,
			      const char *datastore, const char *name,
			      const vsm_bundle_opts *opts);

VSM_END_DECL

#endif /* VSM_CHECKPOINT_H */
