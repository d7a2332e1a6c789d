/*
 * libvsm - the library context: one open instance with its catalog,
 * registered backends and datastores.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_CONTEXT_H
#define VSM_CONTEXT_H

#include "common.h"

VSM_BEGIN_DECL

/**
 * An open library instance.
 *
 * Thread safety: a context may be used from several threads at once; every
 * call that reaches the catalog or a datastore is serialized inside the
 * context. Handles returned by the library (containers, datastores, hosts,
 * locators) are snapshots owned by the caller: one handle must not be used
 * by two threads at the same time, but different handles may.
 *
 * Since: 0.1
 */
typedef struct vsm_ctx vsm_ctx;

/** Log levels passed to the log callback. Since: 0.1 */
typedef enum {
	VSM_LOG_DEBUG = 0,
	VSM_LOG_INFO = 1,
	VSM_LOG_WARN = 2,
	VSM_LOG_ERROR = 3,
} vsm_log_level;

/** Receives the library's log lines. Since: 0.1 */
typedef void (*vsm_log_cb)(int level, const char *message, void *payload);

/**
 * Version of vsm_ctx_opts understood by this header: 1 in 0.1; 2 since
 * 0.2 (adds backend_dir). The library reads a field only when the
 * caller's version says it is there, so callers built against 0.1 keep
 * working. Since: 0.1
 */
#define VSM_CTX_OPTS_VERSION 2

/**
 * Settings for vsm_ctx_open(). Initialize with VSM_CTX_OPTS_INIT so that
 * fields added later keep their defaults.
 *
 * Since: 0.1
 */
typedef struct {
	unsigned int version;  /**< VSM_CTX_OPTS_VERSION */
	const char *state_dir; /**< directory for the catalog; created if missing.
	                        *   NULL: $VSM_STATE_DIR, else ~/.local/state/vsm */
	vsm_log_cb log_cb;     /**< NULL: log lines are dropped */
	void *log_payload;     /**< passed back to @log_cb */
	int log_level;         /**< lowest vsm_log_level delivered */
	unsigned int flags;    /**< VSM_CTX_* */
	/**
	 * Directories to load backend modules from, separated by ':'
	 * (doc/backends.md). NULL: $VSM_BACKEND_DIR if set, else the
	 * directory the library was built with ($libdir/vsm/backends).
	 * "" loads no modules. Version >= 2 only. Since: 0.2
	 */
	const char *backend_dir;
} vsm_ctx_opts;

/**
 * Flag for vsm_ctx_opts.flags: start no lease renewal thread; the
 * embedder calls vsm_lease_renew() itself, at least as often as it asks.
 * Since: 0.1
 */
#define VSM_CTX_LEASE_MANUAL (1u << 0)

/** Default settings. Since: 0.1 */
#define VSM_CTX_OPTS_INIT { VSM_CTX_OPTS_VERSION, NULL, NULL, NULL, VSM_LOG_INFO, 0, NULL }

/**
 * Open a context on a state directory. Opening also finishes (rolls back)
 * any workflow that a previous process left half done in that directory's
 * journal, on every datastore whose backend is known at open (built in,
 * or loaded as a module). Work on datastores of a backend registered
 * later is finished by vsm_ctx_recover(), or by the first change this
 * context makes to such a datastore. Lookups and listings never run it.
 * Since 0.2 opening first loads the backend modules of the module
 * directories (vsm_ctx_opts.backend_dir; doc/backends.md); a module that
 * fails to load is logged, never fatal.
 *
 * @out: receives the context; free it with vsm_ctx_free()
 * @opts: settings, or NULL for the defaults
 *
 * Returns 0 or a negative VSM_E* code.
 * Since: 0.1
 */
VSM_API int vsm_ctx_open(vsm_ctx **out, const vsm_ctx_opts *opts);

/**
 * Finish the workflows that dead processes left half done in the journal
 * (roll back, or forward past their point of no return), on @datastore,
 * or on every registered datastore when it is NULL. Call it after
 * registering a backend with vsm_backend_register() to finish interrupted
 * work on that backend's datastores now rather than at their first change.
 *
 * @flags: 0
 *
 * Returns how many interrupted workflows could not be finished yet (their
 * backend is missing, their storage unreachable; they stay in the journal),
 * or a negative VSM_E* code.
 * Since: 0.2
 */
VSM_API int vsm_ctx_recover(vsm_ctx *ctx, const char *datastore, unsigned int flags);

/** Close a context and everything it holds open; NULL is ignored. Since: 0.1 */
VSM_API void vsm_ctx_free(vsm_ctx *ctx);

/** The context's state directory (owned by @ctx, valid until it is freed). Since: 0.1 */
VSM_API const char *vsm_ctx_state_dir(const vsm_ctx *ctx);

/**
 * Whether @ctx has a backend for @uri's scheme: built in, registered with
 * vsm_backend_register(), or loaded from a module (doc/backends.md).
 * A datastore whose backend is missing is registered in the catalog but
 * cannot be opened; vsm_container_list() on all datastores leaves it out
 * with a warning in the log, so a caller that lists asks this to say so.
 *
 * @uri: a datastore URI ("file:///srv/ds1"); only its scheme is looked at
 *
 * Returns 0 if a backend serves it, -VSM_ENOTFOUND if none does (with a
 * message naming the scheme), -VSM_EINVAL for a NULL @ctx or a @uri
 * without a scheme.
 * Since: 0.2
 */
VSM_API int vsm_backend_lookup(vsm_ctx *ctx, const char *uri);

VSM_END_DECL

#endif /* VSM_CONTEXT_H */
