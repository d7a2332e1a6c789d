/*
 * Event delivery. Sources (datastore refresh, lease renewal, backends)
 * queue events from whatever thread and lock they run under; one
 * dispatcher thread per context delivers them holding no library lock, so
 * a callback may call back into the library without deadlock.
 */
#ifndef VSM_EVENTS_INT_H
#define VSM_EVENTS_INT_H

#include <stdint.h>

#include "vsm/events.h"

typedef struct vsm_event_hub vsm_event_hub;

int vsm__events_init(vsm_event_hub **out);
/* Deliver what is queued, stop the dispatcher, free. */
void vsm__events_free(vsm_event_hub *hub);
/* Queue an event (strings copied; any may be NULL). Never fails loudly:
 * an event that cannot be queued is dropped and logged to stderr-less void. */
void vsm__event_emit(vsm_event_hub *hub, int type, const char *datastore,
		     const char *container, const char *host, const char *detail,
		     uint64_t generation);
/* The public vsm_event_register/unregister over one hub (engine/context.c
 * finds the context's hub). */
int vsm__events_subscribe(vsm_event_hub *hub, vsm_event_cb cb, void *payload, int *out_id);
int vsm__events_unsubscribe(vsm_event_hub *hub, int id);
/* Wait until every event queued so far has been delivered. */
void vsm__events_drain(vsm_event_hub *hub);

#endif /* VSM_EVENTS_INT_H */
