/*
 * Private interface of the bundle files: the file format's constants, the
 * bundle file with its running checksum, the layer tables of export and
 * import, and the section readers and writers of bundle_format.c.
 */
#ifndef VSM_CKPT_BUNDLE_H
#define VSM_CKPT_BUNDLE_H

#include <stdbool.h>
#include <stdint.h>

#include "ckpt.h"
#include "vsm/checkpoint.h"

#define B_MAGIC "VSMBNDL1"
#define B_END "VSMBEND1"
#define B_VERSION 2       /* what export writes: layers carry a digest */
#define B_VERSION_MIN 1   /* oldest import reads: no digests, no reuse */
#define B_DIGEST_HEX 64
#define B_HDR 64
#define B_MANIFEST_MAX (64u << 20)
#define B_CHUNK (1u << 20)
#define REC_DATA 1
#define REC_ZERO 2
#define REC_END 3

typedef struct {
	int fd;
	const char *path;
	ck_sum sum;     /* of every byte so far */
	uint64_t pos;
	vsm_progress_fn progress;
	void *payload;
	uint64_t done, total;
} bfile;

typedef struct {
	char *key;
	int format;
	int backing;   /* index, or -1 */
	bool top;
	char *cid;     /* may be NULL */
	uint64_t size, alloc;
	bool empty;    /* carried without its data (a live top, copied apart) */
	char digest[B_DIGEST_HEX + 1];
	bool golden;   /* an unmanaged layer: a golden image, named by its key */
} xlayer;

typedef struct {
	char *cid;
	int format;
	uint64_t size;
	int backing;
	bool top;
	char key[VSM_BACKEND_KEY_MAX];
	bool have;   /* found on the datastore: section skipped */
	char from[VSM_UUID_STRLEN + 1]; /* the record whose table describes it */
	char digest[B_DIGEST_HEX + 1]; /* the manifest's; "" in a version 1 bundle */
	char got[B_DIGEST_HEX + 1];    /* of what the section held */
	/* A bottom layer with a content-derived ID (a golden image's): the
	 * ID is checked against what the section holds (content_ok). */
	bool content;
	bool content_ok;
	char *golden;  /* the manifest's golden image name, or NULL */
	bool reused_golden; /* @key is a golden image of the target */
} ilayer;

/* Write @n bytes to the bundle, adding them to its running checksum. */
int ck_bundle_write(bfile *f, const void *buf, size_t n);
/* Read exactly @n bytes (a short file is corrupt), adding them to the sum. */
int ck_bundle_read(bfile *f, void *buf, size_t n);
/* Count @n bytes done and report progress; the callback may cancel. */
int ck_bundle_tick(bfile *f, uint64_t n);
/* Write layer @l's section: its own clusters only, sparse. With @dry,
 * nothing is written: only @l->digest is computed (the manifest, which
 * carries the digests, comes before the sections). */
int ck_export_layer(bfile *f, vsm_dstore *ds, xlayer *l, bool dry);
/* Write the @size bytes of blob @key as its section. */
int ck_export_blob(bfile *f, vsm_dstore *ds, const char *key, uint64_t size);
/* Read layer @l's section, into its device when @write (else only
 * checked); the digest of what it held goes to @l->got. */
int ck_import_layer(bfile *f, vsm_dstore *ds, ilayer *l, bool write, uint64_t *written);
/* Read a blob's section into device @key; its checksum goes to @sum_out. */
int ck_import_blob(bfile *f, vsm_dstore *ds, const char *key, uint64_t size,
		   uint64_t *sum_out, uint64_t *written);

/* How ck_import differs from vsm_bundle_import (NULL: not at all): the
 * steps go into the caller's workflow @wf (begun on the target; the
 * caller ends or aborts it), the record gets @uuid and the migration
 * state @migration, the creation time @ctime and the @thick flag of the
 * container it came from (lib/checkpoint/migrate.c). */
typedef struct {
	vsm_wf *wf;
	const char *uuid;
	int migration;
	int64_t ctime;
	bool thick;
} ck_import_how;
/* vsm_bundle_export of the whole container @c, with @empty_tops: the
 * device tops carried as empty layers (a live migration copies what
 * they hold itself, while they are written). */
int ck_export(vsm_container *c, const char *path, const vsm_bundle_opts *opts,
	      int empty_tops);
/* ck_export()'s @empty_tops: every device top (true), or only those of
 * deployed devices (a running domain's block copy fills them). */
#define CK_EXPORT_EMPTY_TOPS 1
#define CK_EXPORT_EMPTY_DEPLOYED 2
int ck_import(vsm_container **out, vsm_ctx *ctx, const char *path, const char *datastore,
	      const char *name, const vsm_bundle_opts *opts, const ck_import_how *how);

#endif /* VSM_CKPT_BUNDLE_H */
