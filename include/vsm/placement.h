/*
 * libvsm - storage-aware placement in two phases: choose the datastore
 * for a new container and reserve its space there (phase 1), then choose
 * the host that can reach every datastore the container uses (phase 2).
 * doc/placement.md describes the filters, the weighers, the reservation
 * record and how to write a filter or weigher of your own.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_PLACEMENT_H
#define VSM_PLACEMENT_H

#include "common.h"
#include "context.h"
#include "container.h"
#include "inventory.h"

VSM_BEGIN_DECL

/* ------------------------------------------------------------ candidates */

/** Version of vsm_place_ds_info. Since: 0.2 */
#define VSM_PLACE_DS_INFO_VERSION 1

/**
 * What phase 1 knows of one datastore, handed to filters and weighers
 * (owned by the library, valid during the callback only).
 *
 * Space: @available = @free_bytes - @reserved - @committed, where
 * @committed is what thick containers already on the datastore may still
 * write (their provisioned bytes minus what they occupy) and @reserved is
 * the sum of the live reservations of placements in progress.
 * Since: 0.2
 */
typedef struct {
	unsigned int version;   /**< VSM_PLACE_DS_INFO_VERSION */
	const char *name;       /**< the datastore's registered name */
	const char *uri;        /**< its URI */
	uint64_t total;         /**< bytes the storage has */
	uint64_t free_bytes;    /**< bytes the storage reports free */
	uint64_t reserved;      /**< held by live reservations */
	uint64_t committed;     /**< promised to thick containers, not yet written */
	uint64_t provisioned;   /**< virtual bytes of every container (thin and thick) */
	uint64_t available;     /**< what a thick request may still take */
	size_t containers;      /**< containers on it */
	int has_compare_and_write; /**< its metadata device has compare-and-write */
	int holds_base;         /**< it holds every base image the request names */
	/** Bytes the request needs there (thick: all of it; thin: the
	 *  VM-state area and metadata). */
	uint64_t need;
} vsm_place_ds_info;

/** Version of vsm_place_host_info. Since: 0.2 */
#define VSM_PLACE_HOST_INFO_VERSION 1

/** What phase 2 knows of one host (owned by the library, valid during the
 *  callback only). Since: 0.2 */
typedef struct {
	unsigned int version;   /**< VSM_PLACE_HOST_INFO_VERSION */
	const char *name;       /**< the host's registered name */
	const char *const *tags; /**< "KEY" or "KEY=VALUE", sorted */
	size_t n_tags;          /**< entries in @tags */
	size_t containers;      /**< containers attached to it now */
	size_t max_containers;  /**< its limit; 0 = none */
	int live;               /**< its heartbeat is live on every datastore
	                         *   concerned, or this state directory acts for it */
} vsm_place_host_info;

/* ------------------------------------------------- filters and weighers */

/** Version of vsm_place_filter. Since: 0.2 */
#define VSM_PLACE_FILTER_VERSION 1

/**
 * A caller's filter. A callback returns 0 to keep the candidate, or
 * non-zero to reject it after writing why into @reason (NUL-terminated,
 * at most @reason_size bytes). Either callback may be NULL.
 * Callbacks run with the context's lock held: they must not call libvsm.
 * Since: 0.2
 */
typedef struct {
	unsigned int version; /**< VSM_PLACE_FILTER_VERSION */
	const char *name;     /**< shown in rejections: "NAME: REASON" */
	/** 1 keeps datastore @ds, 0 rejects it with @reason; NULL: keeps all. */
	int (*datastore)(const vsm_place_ds_info *ds, char *reason, size_t reason_size,
			 void *payload);
	/** 1 keeps host @host, 0 rejects it with @reason; NULL: keeps all. */
	int (*host)(const vsm_place_host_info *host, char *reason, size_t reason_size,
		    void *payload);
	void *payload;        /**< passed to both callbacks */
} vsm_place_filter;

/** Version of vsm_place_weigher. Since: 0.2 */
#define VSM_PLACE_WEIGHER_VERSION 1

/**
 * A caller's weigher: a higher score ranks a candidate first. The scores
 * of every weigher (built-in and the caller's), each scaled to 0..1 over
 * the candidates and multiplied by its @multiplier, are summed. Either
 * callback may be NULL. Callbacks must not call libvsm.
 * Since: 0.2
 */
typedef struct {
	unsigned int version; /**< VSM_PLACE_WEIGHER_VERSION */
	const char *name;     /**< shown in the ranking's explanation */
	/** The score of datastore @ds (higher is better); NULL: 0 for all. */
	double (*datastore)(const vsm_place_ds_info *ds, void *payload);
	/** The score of host @host (higher is better); NULL: 0 for all. */
	double (*host)(const vsm_place_host_info *host, void *payload);
	double multiplier;    /**< 0 is taken as 1 */
	void *payload;        /**< passed to both callbacks */
} vsm_place_weigher;

/* --------------------------------------------------------------- phase 1 */

/** Version of vsm_place_request. Since: 0.2 */
#define VSM_PLACE_REQUEST_VERSION 1

/** Flag: the devices are thin (only the VM-state area and metadata need
 *  room now); as VSM_CONTAINER_CREATE_THIN. Since: 0.2 */
#define VSM_PLACE_THIN (1u << 0)
/** Flag: only datastores whose metadata device has compare-and-write (the
 *  one-I/O lease path). Since: 0.2 */
#define VSM_PLACE_REQUIRE_CAW (1u << 1)
/** Flag: rank from the figures the catalog last recorded, without asking
 *  the storage (the reservation still checks the chosen datastore live).
 *  Since: 0.2 */
#define VSM_PLACE_CACHED (1u << 2)

/**
 * What a new container needs. Built-in filters always run: room for the
 * request (see vsm_place_ds_info), the base images present, and the
 * flags. Built-in weighers: "free" (most available space first, the
 * default), "pack" (least available space that fits first), "spread"
 * (fewest containers first).
 * Since: 0.2
 */
typedef struct {
	unsigned int version;                  /**< VSM_PLACE_REQUEST_VERSION */
	const vsm_device_spec *const *devices; /**< at least one */
	size_t n_devices;                      /**< entries in @devices */
	uint64_t state_size;  /**< 0 = the default VM-state size */
	unsigned int flags;   /**< VSM_PLACE_* */
	const char *weigher;  /**< built-in weigher; NULL = "free" */
	/** Consider only these datastores (NULL = every registered one). */
	const char *const *datastores;
	size_t n_datastores;  /**< entries in @datastores */
	const vsm_place_filter *const *filters; /**< the caller's filters, after the built-in ones */
	size_t n_filters;     /**< entries in @filters */
	const vsm_place_weigher *const *weighers; /**< the caller's weighers, added to the built-in one */
	size_t n_weighers;    /**< entries in @weighers */
	/** How long a reservation lives unless committed or aborted, in ms;
	 *  0 = 10 minutes. */
	int64_t reservation_ttl_ms;
} vsm_place_request;

/** Default request. Since: 0.2 */
#define VSM_PLACE_REQUEST_INIT { VSM_PLACE_REQUEST_VERSION, NULL, 0, 0, 0, NULL, \
				 NULL, 0, NULL, 0, NULL, 0, 0 }

/** The answer of a placement phase: ranked candidates and the rejected
 *  ones, each with its reason. Since: 0.2 */
typedef struct vsm_placement vsm_placement;

/**
 * Phase 1 without reserving: rank the datastores that can hold the
 * request and say why each other one cannot.
 *
 * Returns 0 (also when no datastore qualifies: the list is then empty and
 * every datastore is among the rejected), or a negative VSM_E* code for a
 * bad request.
 * Since: 0.2
 */
VSM_API int vsm_place_datastore(vsm_placement **out, vsm_ctx *ctx,
				const vsm_place_request *req);

/** Ranked candidates (best first). Since: 0.2 */
VSM_API size_t vsm_placement_count(const vsm_placement *p);
/** Name of the @i-th candidate; NULL past the end (owned by @p). Since: 0.2 */
VSM_API const char *vsm_placement_name(const vsm_placement *p, size_t i);
/** Score of the @i-th candidate (higher is better). Since: 0.2 */
VSM_API double vsm_placement_score(const vsm_placement *p, size_t i);
/** Free bytes a datastore candidate has for a thick request (its
 *  vsm_place_ds_info.available); for a host, 0. Since: 0.2 */
VSM_API uint64_t vsm_placement_available(const vsm_placement *p, size_t i);
/** Rejected candidates, sorted by name. Since: 0.2 */
VSM_API size_t vsm_placement_rejected_count(const vsm_placement *p);
/** Name of the @i-th rejected candidate (owned by @p). Since: 0.2 */
VSM_API const char *vsm_placement_rejected_name(const vsm_placement *p, size_t i);
/** Why it was rejected (owned by @p). Since: 0.2 */
VSM_API const char *vsm_placement_rejected_reason(const vsm_placement *p, size_t i);
/** Free; NULL is ignored. Since: 0.2 */
VSM_API void vsm_placement_free(vsm_placement *p);

/**
 * Space held on a datastore for a container being created: recorded on
 * the datastore itself under its metadata lock, so that placements from
 * any process or host count it. It becomes the container's own allocation
 * when vsm_container_create() commits with it, and vanishes when aborted,
 * when the create fails, or when its expiry passes (its owner died).
 * Since: 0.2
 */
typedef struct vsm_reservation vsm_reservation;

/**
 * Phase 1 and its reservation: rank the datastores as
 * vsm_place_datastore() does, then reserve on the best one that still
 * has room when its metadata lock is held (another placement may have
 * taken the space meanwhile; the next candidate is tried). The
 * reservation also holds the container @name on that datastore.
 *
 * Returns 0, -VSM_ENOSPC when no datastore qualifies (the message gives
 * every datastore's reason), -VSM_EEXISTS if @name is taken there, or
 * another negative VSM_E* code.
 * Since: 0.2
 */
VSM_API int vsm_place_reserve(vsm_reservation **out, vsm_ctx *ctx, const char *name,
			      const vsm_place_request *req);
/** The datastore it holds space on (owned by @r). Since: 0.2 */
VSM_API const char *vsm_reservation_datastore(const vsm_reservation *r);
/** The container name it holds (owned by @r). Since: 0.2 */
VSM_API const char *vsm_reservation_name(const vsm_reservation *r);
/** Bytes held. Since: 0.2 */
VSM_API uint64_t vsm_reservation_bytes(const vsm_reservation *r);
/** When it expires: ms since the epoch. Since: 0.2 */
VSM_API int64_t vsm_reservation_expires(const vsm_reservation *r);
/** Give the space back now; 0 also when it was gone already. Since: 0.2 */
VSM_API int vsm_reservation_abort(vsm_reservation *r);
/** Free the handle; a reservation not committed by a create is aborted
 *  first. NULL is ignored. Since: 0.2 */
VSM_API void vsm_reservation_free(vsm_reservation *r);

/**
 * Flag for vsm_container_create(): @datastore may be NULL (or "auto"):
 * run phase 1 with the container's devices, reserve, and create there.
 * Since: 0.2
 */
#define VSM_CONTAINER_CREATE_PLACE (1u << 1)

/**
 * Create a container in the space @r holds (vsm_container_create() on
 * vsm_reservation_datastore(@r), named vsm_reservation_name(@r)); the
 * reservation becomes the container's allocation. On failure the
 * reservation is gone too. @opts->devices must fit the bytes reserved.
 * Since: 0.2
 */
VSM_API int vsm_container_create_reserved(vsm_container **out, vsm_reservation *r,
					  const vsm_container_opts *opts);

/* --------------------------------------------------------------- phase 2 */

/** Version of vsm_host_request. Since: 0.2 */
#define VSM_HOST_REQUEST_VERSION 1

/** Flag: the container is moving: exclude the host it is attached to.
 *  Since: 0.2 */
#define VSM_PLACE_HOST_MIGRATE (1u << 0)
/** Flag: watch heartbeats first, once for every host, for up to a renewal
 *  interval and a half and only while some heartbeat has not been watched
 *  that long, so that a fresh context can tell live hosts from stopped
 *  ones. Since: 0.2 */
#define VSM_PLACE_HOST_WATCH (1u << 1)

/**
 * Where a container can run. Built-in filters always run: linked to
 * every datastore concerned, alive by its heartbeats there (or acted for
 * by this state directory), below its container limit, carrying every
 * tag asked for, and not hosting a container named in @anti_affinity.
 * Built-in weighers: "spread" (fewest containers first, the default) and
 * "pack" (most containers first).
 * Since: 0.2
 */
typedef struct {
	unsigned int version;   /**< VSM_HOST_REQUEST_VERSION */
	unsigned int flags;     /**< VSM_PLACE_HOST_* */
	/** Required tags: "KEY" (any value) or "KEY=VALUE". */
	const char *const *tags;
	size_t n_tags;          /**< entries in @tags */
	/** Containers (names, on any registered datastore) that must not
	 *  share a host with this one. */
	const char *const *anti_affinity;
	size_t n_anti_affinity; /**< entries in @anti_affinity */
	const char *weigher;    /**< NULL = "spread" */
	const vsm_place_filter *const *filters; /**< the caller's filters, after the built-in ones */
	size_t n_filters;       /**< entries in @filters */
	const vsm_place_weigher *const *weighers; /**< the caller's weighers, added to the built-in one */
	size_t n_weighers;      /**< entries in @weighers */
} vsm_host_request;

/** Default host request. Since: 0.2 */
#define VSM_HOST_REQUEST_INIT { VSM_HOST_REQUEST_VERSION, 0, NULL, 0, NULL, 0, NULL, \
				NULL, 0, NULL, 0 }

/**
 * Phase 2 for an existing container: rank the hosts it can be attached
 * to. With VSM_PLACE_HOST_MIGRATE, its current host is excluded. The
 * candidates of phase 2 are the hosts linked to at least one of the
 * datastores concerned: those that do not qualify are among the rejected
 * with their reason; a host linked to none of them is not in the answer.
 * @req: NULL for the defaults.
 *
 * Returns 0 (also when no host qualifies), -VSM_ENOTFOUND when the
 * container or a datastore is gone, -VSM_EINVAL or -VSM_EVERSION for a
 * bad request.
 * Since: 0.2
 */
VSM_API int vsm_place_host(vsm_placement **out, vsm_container *c,
			   const vsm_host_request *req);

/**
 * Phase 2 before a container exists: rank the hosts linked to every one
 * of @datastores (as `vsmctl place` does after phase 1). As
 * vsm_place_host(), without VSM_PLACE_HOST_MIGRATE (-VSM_EINVAL).
 * Since: 0.2
 */
VSM_API int vsm_place_host_for(vsm_placement **out, vsm_ctx *ctx,
			       const char *const *datastores, size_t n_datastores,
			       const vsm_host_request *req);

/**
 * Flag for vsm_attach(): @host may be NULL (or "auto"): run phase 2 with
 * the default request, plus VSM_PLACE_HOST_WATCH (a context that has not
 * watched the heartbeats long enough waits once, up to a renewal interval
 * and a half), and attach to the best host. -VSM_ENOSPC when no host
 * qualifies: the message gives the hosts' reasons.
 * Since: 0.2
 */
#define VSM_ATTACH_PLACE (1u << 1)

/* ----------------------------------------------------- host tags, limits */

/**
 * Tag a host: @tag is "KEY" or "KEY=VALUE" (KEY: 1-64 characters of
 * [A-Za-z0-9._-]; VALUE: 0-128 of the same). A tag with the same KEY is
 * replaced. Stored in this state directory's catalog with the host.
 * Since: 0.2
 */
VSM_API int vsm_host_tag_add(vsm_ctx *ctx, const char *host, const char *tag);
/** Remove the tag with KEY @key; -VSM_ENOTFOUND if the host has none. Since: 0.2 */
VSM_API int vsm_host_tag_remove(vsm_ctx *ctx, const char *host, const char *key);
/** Set the most containers @host may have attached (0: no limit). Since: 0.2 */
VSM_API int vsm_host_set_max_containers(vsm_ctx *ctx, const char *host, size_t max);
/** Number of tags of a host handle. Since: 0.2 */
VSM_API size_t vsm_host_tag_count(const vsm_host *host);
/** The @i-th tag, sorted, as "KEY" or "KEY=VALUE"; NULL past the end
 *  (owned by @host). Since: 0.2 */
VSM_API const char *vsm_host_tag(const vsm_host *host, size_t i);
/** The host's container limit (0: none). Since: 0.2 */
VSM_API size_t vsm_host_max_containers(const vsm_host *host);

VSM_END_DECL

#endif /* VSM_PLACEMENT_H */
