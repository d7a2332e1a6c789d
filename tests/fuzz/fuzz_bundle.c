/*
 * Fuzz target: bundle import (lib/checkpoint/bundle_import.c and the
 * section readers of bundle_format.c). The input is a bundle file. Its
 * checksums are re-sealed first (doc/checkpoints.md, "Bundle format"):
 * the header CRC, the manifest checksum, each layer section's running
 * checksum in its end record, and the trailer's offset and checksum, so
 * the manifest parser and the section readers see what the fuzzer made
 * instead of stopping at the first checksum. State blob sums live in the
 * manifest and are not re-sealed. The sealed bundle is imported into a
 * file datastore in a temporary directory (one context per process); the
 * import must succeed or fail cleanly, and a container it made is
 * destroyed so the datastore does not grow.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include <zlib.h>

#include "vsm/vsm.h"
#include "fuzz_util.h"

#define HDR 64
#define REC 24
#define CHUNK (1u << 20)

static vsm_ctx *ctx;
static char bundle_path[4200];
static char ds_dir[4200];

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* The CRC-32/Adler-32 pair of lib/checkpoint/sum.c, of @b[0..@n). */
static uint64_t sum(const uint8_t *b, size_t n)
{
	uLong c = crc32(0L, Z_NULL, 0), a = adler32(0L, Z_NULL, 0);

	c = crc32(c, b, (uInt)n);
	a = adler32(a, b, (uInt)n);
	return (uint64_t)(uint32_t)c << 32 | (uint32_t)a;
}

static void setup(void)
{
	vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
	char state[4200], uri[4300];

	snprintf(state, sizeof(state), "%s/state", fz_tmpdir());
	snprintf(ds_dir, sizeof(ds_dir), "%s/ds", fz_tmpdir());
	snprintf(uri, sizeof(uri), "file://%s", ds_dir);
	snprintf(bundle_path, sizeof(bundle_path), "%s/in.bundle", fz_tmpdir());
	o.state_dir = state;
	if (vsm_ctx_open(&ctx, &o) < 0 ||
	    vsm_datastore_add(ctx, "ds", uri, VSM_DATASTORE_ADD_CREATE) < 0) {
		fprintf(stderr, "fuzz_bundle: cannot open a context and datastore in %s\n",
			fz_tmpdir());
		abort();
	}
}

static void close_ctx(void)
{
	vsm_ctx_free(ctx);
	ctx = NULL;
}

/* Layers and blob sizes from the manifest (0 layers if it does not parse). */
static void manifest_counts(const uint8_t *m, size_t n, size_t *layers, uint64_t **blobs,
			    size_t *nb)
{
	json_tokener *t = json_tokener_new();
	json_object *o, *a;
	size_t i;

	*layers = 0;
	*blobs = NULL;
	*nb = 0;
	if (!t)
		return;
	o = json_tokener_parse_ex(t, (const char *)m, (int)n);
	json_tokener_free(t);
	if (!o)
		return;
	if (json_object_object_get_ex(o, "layers", &a) && json_object_is_type(a, json_type_array))
		*layers = json_object_array_length(a);
	if (json_object_object_get_ex(o, "blobs", &a) && json_object_is_type(a, json_type_array) &&
	    json_object_array_length(a) > 0 &&
	    (*blobs = calloc(json_object_array_length(a), sizeof(uint64_t)))) {
		*nb = json_object_array_length(a);
		for (i = 0; i < *nb; i++)
			(*blobs)[i] = (uint64_t)json_object_get_int64(json_object_array_get_idx(a, i));
	}
	json_object_put(o);
}

/* Re-seal the bundle in @b (@n bytes) in place. */
static void reseal(uint8_t *b, size_t n)
{
	uint64_t mlen, pos, *blobs = NULL;
	size_t layers, nb, i;

	if (n < HDR)
		return;
	mlen = get64(b + 16);
	if (mlen <= n - HDR)
		put64(b + 24, sum(b + HDR, (size_t)mlen));
	put32(b + 56, (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, 56));
	if (mlen > n - HDR)
		return;
	pos = HDR + mlen;
	manifest_counts(b + HDR, (size_t)mlen, &layers, &blobs, &nb);
	for (i = 0; i < layers && pos + REC <= n; i++) {
		for (;;) {
			uint32_t kind;
			uint64_t len;

			if (pos + REC > n)
				break;
			kind = get32(b + pos);
			len = get64(b + pos + 16);
			pos += REC;
			if (kind == 3) {
				if (pos + 8 <= n)
					put64(b + pos, sum(b, (size_t)pos));
				pos += 8;
				break;
			}
			if (kind == 1) {
				if (len > CHUNK || len > n - pos) {
					pos = n;
					break;
				}
				pos += len;
			} else if (kind != 2) {
				break;
			}
		}
	}
	for (i = 0; i < nb && pos <= n; i++) {
		if (blobs[i] > n - pos) {
			pos = n + 1;
			break;
		}
		pos += blobs[i];
	}
	free(blobs);
	if (pos + REC <= n) {
		put64(b + pos + 8, pos);
		put64(b + pos + 16, sum(b, (size_t)pos));
	}
}

/* A failed import leaves nothing behind, and a destroy removes what the
 * import made: the datastore directory holds only its metadata. */
static void ds_empty(const char *after)
{
	DIR *d = opendir(ds_dir);
	struct dirent *e;
	int left = 0;

	if (!d)
		abort();
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, ".vsm")) {
			fprintf(stderr, "fuzz_bundle: '%s' left on the datastore after %s\n",
				e->d_name, after);
			left++;
		}
	closedir(d);
	if (left)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vsm_container *c = NULL;
	uint8_t *b;
	int rc;

	if (!ctx) {
		setup();
		atexit(close_ctx);
	}
	if (!(b = malloc(size ? size : 1)))
		return 0;
	memcpy(b, data, size);
	reseal(b, size);
	fz_write_file(bundle_path, b, size);
	free(b);
	rc = vsm_bundle_import(&c, ctx, bundle_path, "ds", NULL, NULL);
	fz_debug("import", rc);
	if (rc == 0) {
		if (vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE) < 0) {
			const vsm_error *e = vsm_error_last();

			fprintf(stderr, "fuzz_bundle: cannot destroy an imported container: %s\n",
				e && e->message ? e->message : "?");
			abort();
		}
		vsm_container_free(c);
		ds_empty("a destroy");
	} else {
		ds_empty("a failed import");
	}
	return 0;
}
