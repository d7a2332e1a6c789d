/*
 * Internal helpers shared by the core's files: error raising, allocation,
 * name validation. Nothing here is exported.
 */
#ifndef VSM_INTERNAL_H
#define VSM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "vsm/backend.h"
#include "vsm/vsm.h"

/* Set the thread's error and return the negated code (like vsm_error_set,
 * but usable on internal paths without the public entry clearing). */
#define vsm_err(code, ...) vsm_error_set((code), __VA_ARGS__)

/* Clear the thread's error on entry to a public call. */
void vsm__error_reset(void);

/* Prefix the current error message with "what: ", keeping its code. */
void vsm__error_prefix(const char *fmt, ...) VSM_PRINTF(1, 2);

/* Code of the last error (positive), or 0. */
int vsm__error_code(void);

/* Allocation that reports -VSM_ENOMEM in the thread error. */
void *vsm__calloc(size_t n, size_t size);
char *vsm__strdup(const char *s);
/* Saved/restored so cleanup after a failure keeps the first error. */
typedef struct { int code; char *message; } vsm__saved_error;
void vsm__error_save(vsm__saved_error *s);
void vsm__error_restore(vsm__saved_error *s);

/* Names of datastores, hosts, containers, devices: 1-64 characters of
 * [A-Za-z0-9._-], not "." or "..". @what names the kind in the message. */
int vsm__name_check(const char *what, const char *name);

/* Device keys are opaque to the core (see backend.h): 1 to
 * VSM_BACKEND_KEY_MAX - 1 bytes of UTF-8 without control characters,
 * '/' and all else allowed. NULL for a good key, else why it is not. */
const char *vsm__key_invalid(const char *key);

/* Format a UUID freshly generated (random). */
void vsm__uuid_new(char out[VSM_UUID_STRLEN + 1]);
bool vsm__uuid_valid(const char *s);

#endif /* VSM_INTERNAL_H */
