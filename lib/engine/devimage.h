/*
 * Glue between containers and the COW engine: devices whose format is
 * qcow2 are written through the engine over the backend's block I/O, and
 * backing references inside images are keys on the same datastore.
 */
#ifndef VSM_DEVIMAGE_H
#define VSM_DEVIMAGE_H

#include "ctx.h"
#include "workflow.h"

/* vsm_cow_backing_fn for images on a datastore (@payload: vsm_dstore *).
 * A backing name is a device key on that datastore, verbatim, and
 * nothing else; the backend refuses one that names none of its devices
 * (see VSM_BACKEND_KEY_MAX). */
int vsm__ds_backing_open(struct vsm_bdev **out, const char *name, bool readonly,
			 void *payload);

/* Create a device under the journal: @undo_action (with the name, then
 * the key once known) is journalled before the backend is asked, and a
 * qcow2 device the backend did not format is formatted here, as an
 * overlay of @backing (a key on the same datastore) when not NULL. */
int vsm__dev_create(vsm_wf *wf, const char *undo_action, vsm_dstore *ds,
		    const char *name, uint64_t size, const char *format,
		    const char *backing, const char *backing_format, unsigned int flags,
		    char key[VSM_BACKEND_KEY_MAX]);

/* The persistent dirty bitmap of changed-block tracking (lib/backup):
 * every overlay the core formats gets it, enabled, so that it records
 * what is written to the layer from its first write on. */
#define VSM_CBT_BITMAP "libvsm-cbt"

/* Write an empty qcow2 image of @size onto device @key, as an overlay of
 * @base (a key on the same datastore) when it is not NULL; an overlay
 * gets the VSM_CBT_BITMAP bitmap. */
int vsm__dev_format_qcow2(vsm_dstore *ds, const char *key, uint64_t size,
			  const char *base, const char *base_format);

/* A layer opened for writing whose VSM_CBT_BITMAP a dead writer left in
 * use gets it rebuilt from the layer's own allocation map: the layer
 * started empty above a checkpoint, so what it holds is a superset of
 * what was written to it, and no change is lost. 1 when it was rebuilt. */
struct vsm_cow;
int vsm__dev_cbt_repair(struct vsm_cow *c);

/* What the image at @key says of itself: virtual size, format and
 * backing chain (keys and formats, nearest first; free with
 * vsm__layers_free). @format NULL probes it. */
int vsm__dev_probe(vsm_dstore *ds, const char *key, const char *format, uint64_t *size,
		   int *format_out, vsm_rec_layer **chain, size_t *chain_len);
void vsm__layers_free(vsm_rec_layer *chain, size_t n);

#endif /* VSM_DEVIMAGE_H */
