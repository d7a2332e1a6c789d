/*
 * What the fuzz targets share: a temporary directory made once per
 * process (removed at exit), writing an input to a file there, and a
 * small deterministic hash to derive offsets from an input.
 */
#ifndef VSM_FUZZ_UTIL_H
#define VSM_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The process's temporary directory (made on first use; aborts if it
 * cannot be made). */
const char *fz_tmpdir(void);
/* Write @size bytes to @path, replacing it. Aborts on failure. */
void fz_write_file(const char *path, const uint8_t *data, size_t size);
/* With VSM_FUZZ_DEBUG set: print what @rc of @what was, and the error. */
void fz_debug(const char *what, int rc);
/* FNV-1a of @data, for choosing offsets deterministically. */
uint64_t fz_hash(const uint8_t *data, size_t size);
/* Next value of a splitmix64 sequence seeded by *@state. */
uint64_t fz_next(uint64_t *state);

#endif /* VSM_FUZZ_UTIL_H */
