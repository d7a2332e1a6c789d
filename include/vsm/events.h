/*
 * libvsm - events: what the library tells the caller without being asked
 * (another host changed a datastore, this host lost a lease, ...).
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_EVENTS_H
#define VSM_EVENTS_H

#include "common.h"
#include "context.h"

VSM_BEGIN_DECL

/** Kinds of event. Since: 0.1 */
typedef enum {
	/** A datastore's metadata changed (another host, or the storage system). */
	VSM_EVENT_DATASTORE_CHANGED = 1,
	/** This context may have lost a container's lease: stop using it now. */
	VSM_EVENT_LEASE_LOST = 2,
	/** A datastore became unreachable. */
	VSM_EVENT_DATASTORE_LOST = 3,
	/**
	 * A migration of a container moved on (since 0.2). vsm_event_detail()
	 * starts with the phase: "start", "pass N BYTES" (pass N copied
	 * BYTES), "switchover PAUSE_US" (writes were paused PAUSE_US
	 * microseconds), "sync" (escalated to synchronous mirroring),
	 * "complete", "abort REASON"; further words may follow.
	 * vsm_event_datastore() is the target datastore, vsm_event_host()
	 * the target host of a host migration.
	 */
	VSM_EVENT_MIGRATION = 4,
} vsm_event_type;

/** One event, valid only during the callback. Since: 0.1 */
typedef struct vsm_event vsm_event;

/**
 * Receives events. It may run on a library thread (heartbeat renewal, a
 * backend's event loop) and must not block for long; it may call the
 * library.
 * Since: 0.1
 */
typedef void (*vsm_event_cb)(const vsm_event *ev, void *payload);

/**
 * Register @cb; @out_id (may be NULL) receives an id for
 * vsm_event_unregister().
 * Since: 0.1
 */
VSM_API int vsm_event_register(vsm_ctx *ctx, vsm_event_cb cb, void *payload, int *out_id);
/** Stop delivering to callback @id; -VSM_ENOTFOUND if unknown. Since: 0.1 */
VSM_API int vsm_event_unregister(vsm_ctx *ctx, int id);

/** The kind, a vsm_event_type. Since: 0.1 */
VSM_API int vsm_event_type_of(const vsm_event *ev);
/** "datastore-changed", "lease-lost", "datastore-lost", "migration". Since: 0.1 */
VSM_API const char *vsm_event_type_name(int type);
/** Datastore concerned (owned by @ev, valid during the callback), or NULL. Since: 0.1 */
VSM_API const char *vsm_event_datastore(const vsm_event *ev);
/** Container concerned (owned by @ev, valid during the callback), or NULL. Since: 0.1 */
VSM_API const char *vsm_event_container(const vsm_event *ev);
/** Host concerned (owned by @ev, valid during the callback), or NULL. Since: 0.1 */
VSM_API const char *vsm_event_host(const vsm_event *ev);
/** Free text from the source (owned by @ev, valid during the callback), or NULL. Since: 0.1 */
VSM_API const char *vsm_event_detail(const vsm_event *ev);
/** Datastore generation the event refers to, or 0. Since: 0.1 */
VSM_API uint64_t vsm_event_generation(const vsm_event *ev);

VSM_END_DECL

#endif /* VSM_EVENTS_H */
