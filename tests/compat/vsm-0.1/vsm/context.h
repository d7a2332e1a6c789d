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

/** Version of vsm_ctx_opts understood by this header. Since: 0.1 */
#define VSM_CTX_OPTS_VERSION 1

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
} vsm_ctx_opts;

/**
 * Flag for vsm_ctx_opts.flags: start no lease renewal thread; the
 * embedder calls vsm_lease_renew() itself, at least as often as it asks.
 * Since: 0.1
 */
#define VSM_CTX_LEASE_MANUAL (1u << 0)

/** Default settings. Since: 0.1 */
#define VSM_CTX_OPTS_INIT { VSM_CTX_OPTS_VERSION, NULL, NULL, NULL, VSM_LOG_INFO, 0 }

/**
 * Open a context on a state directory. Opening also finishes (rolls back)
 * any workflow that a previous process left half done in that directory's
 * journal.
 *
 * @out: receives the context; free it with vsm_ctx_free()
 * @opts: settings, or NULL for the defaults
 *
 * Returns 0 or a negative VSM_E* code.
 * Since: 0.1
 */
VSM_API int vsm_ctx_open(vsm_ctx **out, const vsm_ctx_opts *opts);

/** Close a context and everything it holds open; NULL is ignored. Since: 0.1 */
VSM_API void vsm_ctx_free(vsm_ctx *ctx);

/** The context's state directory (borrowed). Since: 0.1 */
VSM_API const char *vsm_ctx_state_dir(const vsm_ctx *ctx);

VSM_END_DECL

#endif /* VSM_CONTEXT_H */
