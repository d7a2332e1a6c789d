/*
 * Private interface of live migration through the image API
 * (migrate_live.c: the protocol; migrate_pass.c: the copy passes and
 * the re-pointing of the handles).
 */
#ifndef VSM_CKPT_MIGRATE_LIVE_H
#define VSM_CKPT_MIGRATE_LIVE_H

#include <stdarg.h>

#include "imgreg.h"
#include "migrate_int.h"

/* Dirty tracking granularity: 64 KiB. */
#define CK_LIVE_GRAN_BITS 16
/* The most one copy step reads and writes. */
#define CK_LIVE_COPY_MAX (1u << 20)

typedef struct {
	const char *name;        /* borrowed from the source record */
	const char *skey, *tkey; /* borrowed from the records */
	int format;
	uint64_t size;
	vsm__image_live live;
	bool inited;
	vsm_cow *tcow;           /* the target top, written by the passes */
	vsm_cow *own;            /* our view of the source top when no handle has one */
	bool own_stale;          /* a handle wrote through its own view since */
	bool handed;             /* @tcow went to a handle at the switch */
} ldev;

typedef struct {
	vsm_ctx *ctx;
	vsm_container *c;
	const vsm_migrate_opts *opts;
	vsm_record *s, *t;
	vsm_dstore *sds, *tds;
	char *src;               /* source datastore name */
	const char *dst;
	char *path;              /* the temporary bundle */
	uint64_t seq;
	ldev *d;
	size_t n;
	const char **names;
	vsm__image_live **lives;
	vsm__imgreg_mig reg;
	bool registered, began, attached, committed, cancelled, sync;
	vsm_wf wf;
	/* progress */
	uint64_t done, total, frozen_unit, frozen_base;
	/* measured */
	uint64_t start_us, copied, copy_us, passes, pause_us;
	uint64_t pass_bytes;     /* written to the target tops by the passes */
	uint64_t layers, layers_reused, written, verified;
} lmig;

uint64_t ck_live_now_us(void);
void ck_live_event(lmig *m, const char *fmt, ...) VSM_PRINTF(2, 3);
/* Report progress; -VSM_ECANCELED when the callback said stop. */
int ck_live_report(lmig *m);
/* Hold (or release) every handle of the container; registry locked. */
void ck_live_hold_all(lmig *m, bool hold);

/* Pass 1 of device @d: what its source top holds. */
int ck_live_full_pass(lmig *m, ldev *d, uint64_t *bytes);
/* A pass over what is dirty on @d now. @held: the switchover's last
 * pass, with the context's lock, the registry's lock and every handle
 * held by the caller (no progress is reported then). */
int ck_live_dirty_pass(lmig *m, ldev *d, bool held, uint64_t *bytes);
/* Committed, context locked: every handle of the container re-pointed
 * to the target, unwatched; the time it held them is added to the pause. */
void ck_live_repoint(lmig *m);

#endif /* VSM_CKPT_MIGRATE_LIVE_H */
