/*
 * The image handles a context has open on its datastores' devices
 * (vsm_image_open_device), and the live migrations that watch them: a
 * live migration finds the writers of a container here, and a handle
 * opened while one runs is watched from its first write.
 */
#ifndef VSM_ENGINE_IMGREG_H
#define VSM_ENGINE_IMGREG_H

#include <stdbool.h>

#include "ctx.h"
#include "image_int.h"

typedef struct vsm__imgreg_ent {
	vsm_image *img;
	char *datastore;   /* where its device is now */
	char uuid[VSM_UUID_STRLEN + 1];
	char *device;
	struct vsm__imgreg *reg;
	struct vsm__imgreg_ent *next;
} vsm__imgreg_ent;

/* A live migration of container @uuid: device @devices[i] is watched
 * with @live[i]. Owned by the migration; the registry only points at it. */
typedef struct vsm__imgreg_mig {
	const char *uuid;
	size_t n;
	const char *const *devices;
	vsm__image_live *const *live;
	struct vsm__imgreg_mig *next;
} vsm__imgreg_mig;

typedef struct vsm__imgreg {
	pthread_mutex_t mu;
	vsm__imgreg_ent *ents;
	vsm__imgreg_mig *migs;
} vsm__imgreg;

int vsm__imgreg_new(vsm__imgreg **out);
/* The handles outlive the context only as callers' mistakes: they are
 * told to forget it. */
void vsm__imgreg_free(vsm__imgreg *reg);

/* Remember @img, opened on device @device of container @uuid on
 * @datastore; closing it forgets it. A migration of that container that
 * runs watches it from here on. */
int vsm__imgreg_add(vsm_ctx *ctx, vsm_image *img, const char *datastore, const char *uuid,
		    const char *device);

/* The registry's lock: held while a migration walks ->ents, installs or
 * removes itself (mig_add, mig_remove), or changes what an entry says. */
void vsm__imgreg_lock(vsm_ctx *ctx);
void vsm__imgreg_unlock(vsm_ctx *ctx);
vsm__imgreg_ent *vsm__imgreg_first(vsm_ctx *ctx);
/* Locked: watch the handles of @m->uuid now open (each paused for a
 * moment) and those opened later. */
void vsm__imgreg_mig_add(vsm_ctx *ctx, vsm__imgreg_mig *m);
/* Locked: stop watching (every handle of the container is paused for a
 * moment and unhooked). */
void vsm__imgreg_mig_remove(vsm_ctx *ctx, vsm__imgreg_mig *m);

#endif /* VSM_ENGINE_IMGREG_H */
