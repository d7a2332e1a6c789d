/*
 * Loadable backend modules: shared objects in a module directory that
 * register backends through vsm_backend_register() (doc/backends.md).
 * Uses only the public API; the context open/free call it.
 */
#ifndef VSM_MODULES_H
#define VSM_MODULES_H

#include "vsm/backend.h"
#include "vsm/context.h"

typedef struct vsm__modules vsm__modules;

/* How the loader reports: the context's log (vsm__log), passed in so that
 * this file needs nothing of the context's inside. */
typedef void (*vsm__modules_log_fn)(vsm_ctx *ctx, int level, const char *fmt, ...)
	VSM_PRINTF(3, 4);

/*
 * Load every "*.so" of each directory in @dirs (':'-separated, in that
 * order; within one directory in sorted order) and call its
 * vsm_backend_module_init() with @ctx. @dirs NULL: $VSM_BACKEND_DIR if
 * set, else @default_dirs (lib/open.c passes the build-time default,
 * VSM_BACKEND_DIR_DEFAULT in vsm-config.h); "" loads nothing. A module that fails to load or to
 * initialise is logged with its path and the reason and skipped: loading
 * never fails the open. *@out (NULL when nothing stayed loaded) owns the
 * modules' handles; free it after everything that may call into a module
 * (datastores, backends) is gone.
 */
void vsm__modules_load(vsm__modules **out, vsm_ctx *ctx, const char *dirs,
		       const char *default_dirs, vsm__modules_log_fn log);

/* Unload; NULL is ignored. */
void vsm__modules_free(vsm__modules *m);

#endif /* VSM_MODULES_H */
