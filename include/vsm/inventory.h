/*
 * libvsm - the inventory: datastores, hosts, and which hosts reach which
 * datastores.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_INVENTORY_H
#define VSM_INVENTORY_H

#include "common.h"
#include "context.h"

VSM_BEGIN_DECL

/** A registered datastore (snapshot). Since: 0.1 */
typedef struct vsm_datastore vsm_datastore;
/** A registered host (snapshot). Since: 0.1 */
typedef struct vsm_host vsm_host;

/**
 * Register a datastore under @name and open it. A datastore seen for the
 * first time is formatted (its metadata area is created); one that already
 * holds libvsm records is adopted and its containers become visible
 * (rescan). The storage itself must exist (for file:// the directory),
 * unless @flags has VSM_DATASTORE_ADD_CREATE: a mistyped path is refused
 * rather than silently made empty.
 *
 * @name: 1-64 characters of [A-Za-z0-9._-], not "." or ".."
 * @uri: backend URI, e.g. "file:///var/lib/vsm/ds1"; file URIs are
 *       percent-decoded ("file:///srv/my%20ds"), and %00, malformed escapes
 *       and ".." path components are refused
 * @flags: 0 or VSM_DATASTORE_ADD_CREATE
 *
 * Returns 0, -VSM_EEXISTS if the name is taken, -VSM_ENOTSUP if no
 * backend handles the URI's scheme, -VSM_ENOTFOUND if the storage does not
 * exist, or another negative VSM_E* code.
 * Since: 0.1
 */
VSM_API int vsm_datastore_add(vsm_ctx *ctx, const char *name, const char *uri,
			      unsigned int flags);
/**
 * Flag for vsm_datastore_add(): make the storage if it is missing (for a
 * file datastore, the directory and its parents).
 * Since: 0.2
 */
#define VSM_DATASTORE_ADD_CREATE (1u << 0)

/**
 * Forget a datastore. Nothing on it is deleted. Refused with -VSM_EBUSY
 * while one of its containers is attached, unless @flags has
 * VSM_DATASTORE_REMOVE_FORCE.
 *
 * Since: 0.1
 */
VSM_API int vsm_datastore_remove(vsm_ctx *ctx, const char *name,
				 unsigned int flags);
/** Flag for vsm_datastore_remove(). Since: 0.1 */
#define VSM_DATASTORE_REMOVE_FORCE (1u << 0)

/** Look up a datastore by name; -VSM_ENOTFOUND if none. Since: 0.1 */
VSM_API int vsm_datastore_lookup(vsm_datastore **out, vsm_ctx *ctx,
				 const char *name);

/**
 * All registered datastores, sorted by name.
 * Free with vsm_datastore_list_free().
 * Since: 0.1
 */
VSM_API int vsm_datastore_list(vsm_datastore ***out, size_t *count,
			       vsm_ctx *ctx);
/** Free a list from vsm_datastore_list(); NULL is ignored. Since: 0.1 */
VSM_API void vsm_datastore_list_free(vsm_datastore **list, size_t count);
/** Free a datastore handle; NULL is ignored. Since: 0.1 */
VSM_API void vsm_datastore_free(vsm_datastore *ds);

/** Name (owned by @ds, valid until it is freed). Since: 0.1 */
VSM_API const char *vsm_datastore_name(const vsm_datastore *ds);
/** Backend URI (owned by @ds, valid until it is freed). Since: 0.1 */
VSM_API const char *vsm_datastore_uri(const vsm_datastore *ds);
/** UUID written on the datastore when it was formatted (owned by @ds,
 *  valid until it is freed). Since: 0.1 */
VSM_API const char *vsm_datastore_uuid(const vsm_datastore *ds);
/** The datastore's change generation when the handle was made. Since: 0.1 */
VSM_API uint64_t vsm_datastore_generation(const vsm_datastore *ds);

/**
 * Ask the storage for its capacity now.
 *
 * @total: receives the size in bytes (may be NULL)
 * @free_bytes: receives the free space in bytes (may be NULL)
 * Since: 0.1
 */
VSM_API int vsm_datastore_capacity(vsm_ctx *ctx, const char *name,
				   uint64_t *total, uint64_t *free_bytes);

/** Version of vsm_host_opts understood by this header. Since: 0.1 */
#define VSM_HOST_OPTS_VERSION 1

/** Settings for vsm_host_add(). Since: 0.1 */
typedef struct {
	unsigned int version;       /**< VSM_HOST_OPTS_VERSION */
	const char *hypervisor_uri; /**< e.g. "qemu:///system"; NULL if none */
} vsm_host_opts;

/** Default host settings. Since: 0.1 */
#define VSM_HOST_OPTS_INIT { VSM_HOST_OPTS_VERSION, NULL }

/**
 * Register a host (a machine whose hypervisor will use devices).
 *
 * @opts: NULL for the defaults
 * Returns 0, -VSM_EEXISTS, -VSM_EINVAL.
 * Since: 0.1
 */
VSM_API int vsm_host_add(vsm_ctx *ctx, const char *name,
			 const vsm_host_opts *opts);

/**
 * Forget a host. Refused with -VSM_EBUSY while a container is attached
 * to it.
 * Since: 0.1
 */
VSM_API int vsm_host_remove(vsm_ctx *ctx, const char *name, unsigned int flags);

/**
 * Record that @host can reach @datastore. A container attaches only to a
 * host linked to its datastore.
 * Since: 0.1
 */
VSM_API int vsm_host_link(vsm_ctx *ctx, const char *host,
			  const char *datastore, unsigned int flags);

/** Remove a link; -VSM_EBUSY while containers there are attached to the host. Since: 0.1 */
VSM_API int vsm_host_unlink(vsm_ctx *ctx, const char *host,
			    const char *datastore, unsigned int flags);

/** Look up a host by name; -VSM_ENOTFOUND if none. Since: 0.1 */
VSM_API int vsm_host_lookup(vsm_host **out, vsm_ctx *ctx, const char *name);
/** All hosts, sorted by name; free with vsm_host_list_free(). Since: 0.1 */
VSM_API int vsm_host_list(vsm_host ***out, size_t *count, vsm_ctx *ctx);
/** Free a list from vsm_host_list(); NULL is ignored. Since: 0.1 */
VSM_API void vsm_host_list_free(vsm_host **list, size_t count);
/** Free a host handle; NULL is ignored. Since: 0.1 */
VSM_API void vsm_host_free(vsm_host *host);

/** Name (owned by @host, valid until it is freed). Since: 0.1 */
VSM_API const char *vsm_host_name(const vsm_host *host);
/** Hypervisor URI or NULL (owned by @host, valid until it is freed). Since: 0.1 */
VSM_API const char *vsm_host_hypervisor_uri(const vsm_host *host);
/** Number of datastores the host is linked to. Since: 0.1 */
VSM_API size_t vsm_host_datastore_count(const vsm_host *host);
/** Name of the @i-th linked datastore, sorted; NULL past the end (owned
 *  by @host, valid until it is freed). Since: 0.1 */
VSM_API const char *vsm_host_datastore(const vsm_host *host, size_t i);

VSM_END_DECL

#endif /* VSM_INVENTORY_H */
