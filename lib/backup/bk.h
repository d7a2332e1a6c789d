/*
 * Private interface of the backup module: changed-block tracking over a
 * device's layers (changes.c), the backup file's manifest and header
 * (bk_format.c), backup (backup.c) and restore (restore.c).
 */
#ifndef VSM_BK_H
#define VSM_BK_H

#include <stdbool.h>
#include <stdint.h>

#include "bundle.h"
#include "ckpt.h"
#include "devimage.h"
#include "steps.h"
#include "vsm/backup.h"

/* The persistent bitmap libvsm keeps in every layer it puts on top of a
 * device (lib/engine/devimage.c creates it). */
#define BK_BITMAP VSM_CBT_BITMAP

/* A growable, sorted list of extents. */
typedef struct {
	vsm_change_extent *v;
	size_t n, cap;
} bk_extents;
int bk_extents_add(bk_extents *e, uint64_t off, uint64_t len);
/* Sort and merge extents that overlap or touch. */
void bk_extents_normalize(bk_extents *e);
void bk_extents_free(bk_extents *e);

/* The extents of @device written in the layers above checkpoint @since
 * up to checkpoint @until (NULL: the current top), from record @r of
 * datastore @ds. */
int bk_changes(vsm_dstore *ds, const vsm_record *r, const char *device, const char *since,
	       const char *until, bk_extents *out);

/* The backup file: header and trailer as a bundle's (doc/backup.md),
 * with its own magic. */
#define BK_MAGIC "VSMBKUP1"
#define BK_FORMAT "libvsm-backup"
#define BK_VERSION 1

typedef struct {
	char *name;
	uint64_t size;
	uint64_t changed;  /* bytes of the changed extents */
	uint64_t extents;  /* changed extents */
} bk_mdev;

typedef struct {
	char *name, *parent;
	int64_t ctime;
	char point[VSM_UUID_STRLEN + 1];
} bk_mckpt;

typedef struct {
	bool incremental;
	int64_t created;
	char *container;                      /* source name */
	char source[VSM_UUID_STRLEN + 1];     /* source uuid */
	char point[VSM_UUID_STRLEN + 1];      /* this backup point's ID */
	char *checkpoint;                     /* its checkpoint name */
	int64_t ctime;
	uint64_t state_size, state_sum;       /* the checkpoint's blob */
	char base[VSM_UUID_STRLEN + 1];       /* incremental: the base point */
	char *base_checkpoint;
	uint64_t state_area;                  /* bytes of the state area */
	bk_mdev *devs;
	size_t n_devs;
	bk_mckpt *tree;                       /* the source's checkpoints */
	size_t n_tree;
} bk_manifest;

void bk_manifest_free(bk_manifest *m);
/* Write the header and manifest at the start of @f. */
int bk_write_head(bfile *f, const bk_manifest *m);
/* Read and check the header and manifest (syntax and meaning). */
int bk_read_head(bfile *f, bk_manifest *m);
/* The trailer: write it / read and check it (nothing may follow). */
int bk_write_trailer(bfile *f);
int bk_read_trailer(bfile *f);

#endif /* VSM_BK_H */
