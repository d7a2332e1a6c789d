/*
 * A backend whose device keys hold '/' (and whatever else a test puts in
 * the prefix): it wraps the file backend and maps key PREFIX + NAME to
 * file NAME, as a backend with a namespace of its own would ("lun3/x").
 * It also fails its Nth call on demand, every call counted (SQLite's
 * test_vfs again), so a test can walk a public call through every
 * failure point.
 */
#ifndef VSM_SLASH_BACKEND_H
#define VSM_SLASH_BACKEND_H

#include <stdbool.h>

#include <vsm/backend.h>
#include <vsm/context.h>

typedef struct {
	const char *prefix; /* keys are PREFIX + file name; "sub/" when NULL */
	int fail_at;        /* the Nth call after slash_arm() fails; 0: none */
	bool fail_after;    /* writes and compare-and-writes do their work
	                     * before failing (a lost completion); flushes
	                     * sync nothing, and fail only as a call */
	int calls;          /* calls since slash_arm() */
	char fired[32];     /* the call that failed, "" if none yet */
} slash_config;

extern slash_config slash;

/* Register the "slash" scheme (slash:///DIR) with @ctx. */
int slash_register(vsm_ctx *ctx);

/* Count calls from now on and fail the @n-th (0: never). */
void slash_arm(int n, bool after);

#endif
