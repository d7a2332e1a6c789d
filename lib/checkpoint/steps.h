/*
 * Private interface of the checkpoint calls (create, revert, delete,
 * clone, list): the steps they share (steps.c), the state blobs
 * (state.c), the handle (list.c) and a device's new top (revert.c).
 */
#ifndef VSM_CKPT_STEPS_H
#define VSM_CKPT_STEPS_H

#include <stdbool.h>
#include <stdint.h>

#include "ckpt.h"
#include "vsm/checkpoint.h"

/* The buffer of blob copies. */
#define CK_BUF (1u << 20)
/* A state blob size not known in advance: read to the end. */
#define STATE_UNKNOWN UINT64_MAX

/* The container's datastore and a private copy of its current record. */
int ck_fresh(vsm_container *c, vsm_dstore **ds, vsm_record **out);
/* Refuse deployed devices, or (VSM_CHECKPOINT_STOPPED) undeploy them into @saved. */
int ck_undeploy_for(vsm_container *c, unsigned int flags, char ***saved, size_t *n_saved);
/* Deploy again what ck_undeploy_for saved (failures logged); frees @saved. */
void ck_redeploy(vsm_container *c, char **saved, size_t n);
/* Log the last error (after @what) as a warning and clear it. */
void ck_warn(vsm_ctx *ctx, const char *what);
/* The record write of create, revert and delete; 0: committed. */
int ck_commit_record(vsm_ctx *ctx, vsm_dstore *ds, vsm_record *r);
/* After a commit point: forget the journal entry, or leave it for later. */
void ck_wf_finish(vsm_ctx *ctx, vsm_wf *wf, bool tidy);
/* Refresh the handle, or log that it shows the committed state. */
void ck_refresh_or_warn(vsm_container *c);
/* Refuse an options struct version of 0 or above @max. */
int ck_check_opts_version(unsigned int v, unsigned int max, const char *what);

/* Stream a blob into a new raw device (*@size may be STATE_UNKNOWN). */
int ck_state_in(vsm_wf *wf, vsm_dstore *ds, const char *uuid, int fd,
		vsm_state_read_fn fn, void *payload, uint64_t *size,
		char key[VSM_BACKEND_KEY_MAX], uint64_t *sum_out);
/* Read a checkpoint's blob back to @fd or @fn, checking its sum. */
int ck_state_out(vsm_dstore *ds, const char *container, const vsm_rec_checkpoint *cp,
		 int fd, vsm_state_write_fn fn, void *payload);

/* A new handle for checkpoint @c of record @r. */
int ck_handle_new(vsm_checkpoint **out, vsm_dstore *ds, const vsm_record *r,
		  const vsm_rec_checkpoint *c);

/* The layer checkpoint @cp froze for @device, or NULL. */
const char *ck_layer_for(const vsm_rec_checkpoint *cp, const char *device);
/* Point @d at @top standing on frozen layer @base (chain from @r's table). */
int ck_set_top(vsm_record *r, vsm_rec_device *d, const char *top, const char *base);

#endif /* VSM_CKPT_STEPS_H */
