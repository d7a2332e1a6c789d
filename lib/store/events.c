/*
 * Event queue and dispatcher thread (see events.h for why a thread).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "events.h"

struct vsm_event {
	int type;
	char *datastore;
	char *container;
	char *host;
	char *detail;
	uint64_t generation;
	struct vsm_event *next;
};

typedef struct sub {
	int id;
	vsm_event_cb cb;
	void *payload;
	struct sub *next;
} sub;

struct vsm_event_hub {
	pthread_mutex_t lock;     /* queue and subscriber list */
	pthread_cond_t cond;      /* queue grew, or stopping */
	pthread_cond_t idle;      /* queue drained */
	pthread_mutex_t deliver;  /* held while callbacks run */
	pthread_t thread;
	bool running;
	bool stopping;
	bool busy;
	struct vsm_event *head, *tail;
	sub *subs;
	int next_id;
};

static void event_free(struct vsm_event *ev)
{
	free(ev->datastore);
	free(ev->container);
	free(ev->host);
	free(ev->detail);
	free(ev);
}

static void *dispatcher(void *arg)
{
	vsm_event_hub *hub = arg;

	pthread_mutex_lock(&hub->lock);
	for (;;) {
		struct vsm_event *ev;

		while (!hub->head && !hub->stopping)
			pthread_cond_wait(&hub->cond, &hub->lock);
		if (!hub->head)
			break;
		ev = hub->head;
		hub->head = ev->next;
		if (!hub->head)
			hub->tail = NULL;
		hub->busy = true;
		pthread_mutex_unlock(&hub->lock);

		pthread_mutex_lock(&hub->deliver);
		pthread_mutex_lock(&hub->lock);
		for (sub *s = hub->subs; s; s = s->next) {
			vsm_event_cb cb = s->cb;
			void *payload = s->payload;

			/* Unlocked during the call so the callback may register
			 * more; unregister waits on 'deliver' instead. */
			pthread_mutex_unlock(&hub->lock);
			cb(ev, payload);
			pthread_mutex_lock(&hub->lock);
		}
		pthread_mutex_unlock(&hub->lock);
		pthread_mutex_unlock(&hub->deliver);
		event_free(ev);

		pthread_mutex_lock(&hub->lock);
		hub->busy = false;
		if (!hub->head)
			pthread_cond_broadcast(&hub->idle);
	}
	pthread_cond_broadcast(&hub->idle);
	pthread_mutex_unlock(&hub->lock);
	return NULL;
}

int vsm__events_init(vsm_event_hub **out)
{
	vsm_event_hub *hub = vsm__calloc(1, sizeof(*hub));

	if (!hub)
		return -VSM_ENOMEM;
	pthread_mutex_init(&hub->lock, NULL);
	pthread_mutex_init(&hub->deliver, NULL);
	pthread_cond_init(&hub->cond, NULL);
	pthread_cond_init(&hub->idle, NULL);
	hub->next_id = 1;
	*out = hub;
	return 0;
}

void vsm__events_free(vsm_event_hub *hub)
{
	struct vsm_event *ev;

	if (!hub)
		return;
	pthread_mutex_lock(&hub->lock);
	hub->stopping = true;
	pthread_cond_broadcast(&hub->cond);
	pthread_mutex_unlock(&hub->lock);
	if (hub->running)
		pthread_join(hub->thread, NULL);
	while ((ev = hub->head)) {
		hub->head = ev->next;
		event_free(ev);
	}
	while (hub->subs) {
		sub *s = hub->subs;

		hub->subs = s->next;
		free(s);
	}
	pthread_mutex_destroy(&hub->lock);
	pthread_mutex_destroy(&hub->deliver);
	pthread_cond_destroy(&hub->cond);
	pthread_cond_destroy(&hub->idle);
	free(hub);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

void vsm__event_emit(vsm_event_hub *hub, int type, const char *datastore,
		     const char *container, const char *host, const char *detail,
		     uint64_t generation)
{
	struct vsm_event *ev;

	if (!hub)
		return;
	pthread_mutex_lock(&hub->lock);
	/* Nobody listening: nothing to queue. */
	if (!hub->subs || hub->stopping || !(ev = calloc(1, sizeof(*ev)))) {
		pthread_mutex_unlock(&hub->lock);
		return;
	}
	ev->type = type;
	ev->datastore = dup_or_null(datastore);
	ev->container = dup_or_null(container);
	ev->host = dup_or_null(host);
	ev->detail = dup_or_null(detail);
	ev->generation = generation;
	if (hub->tail)
		hub->tail->next = ev;
	else
		hub->head = ev;
	hub->tail = ev;
	pthread_cond_signal(&hub->cond);
	pthread_mutex_unlock(&hub->lock);
}

void vsm__events_drain(vsm_event_hub *hub)
{
	if (!hub)
		return;
	pthread_mutex_lock(&hub->lock);
	while (hub->running && (hub->head || hub->busy) &&
	       !pthread_equal(pthread_self(), hub->thread))
		pthread_cond_wait(&hub->idle, &hub->lock);
	pthread_mutex_unlock(&hub->lock);
}

int vsm__events_subscribe(vsm_event_hub *hub, vsm_event_cb cb, void *payload, int *out_id)
{
	sub *s;
	int rc = 0;

	if (!(s = vsm__calloc(1, sizeof(*s))))
		return -VSM_ENOMEM;
	pthread_mutex_lock(&hub->lock);
	if (!hub->running) {
		if (pthread_create(&hub->thread, NULL, dispatcher, hub) != 0) {
			pthread_mutex_unlock(&hub->lock);
			free(s);
			return vsm_err(VSM_ENOMEM, "cannot start the event thread");
		}
		hub->running = true;
	}
	s->id = hub->next_id++;
	s->cb = cb;
	s->payload = payload;
	s->next = hub->subs;
	hub->subs = s;
	if (out_id)
		*out_id = s->id;
	pthread_mutex_unlock(&hub->lock);
	return rc;
}

int vsm__events_unsubscribe(vsm_event_hub *hub, int id)
{
	bool on_dispatcher;
	sub **pp, *found = NULL;

	/* Once this returns the callback is not running and never will:
	 * wait for a delivery in progress (unless we are that delivery). */
	on_dispatcher = hub->running && pthread_equal(pthread_self(), hub->thread);
	if (!on_dispatcher)
		pthread_mutex_lock(&hub->deliver);
	pthread_mutex_lock(&hub->lock);
	for (pp = &hub->subs; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			found = *pp;
			*pp = found->next;
			break;
		}
	}
	pthread_mutex_unlock(&hub->lock);
	if (!on_dispatcher)
		pthread_mutex_unlock(&hub->deliver);
	if (!found)
		return vsm_err(VSM_ENOTFOUND, "event callback %d is not registered", id);
	free(found);
	return 0;
}

VSM_API int vsm_event_type_of(const vsm_event *ev)
{
	return ev ? ev->type : 0;
}

VSM_API const char *vsm_event_type_name(int type)
{
	switch (type) {
	case VSM_EVENT_DATASTORE_CHANGED: return "datastore-changed";
	case VSM_EVENT_LEASE_LOST: return "lease-lost";
	case VSM_EVENT_DATASTORE_LOST: return "datastore-lost";
	case VSM_EVENT_MIGRATION: return "migration";
	}
	return NULL;
}

VSM_API const char *vsm_event_datastore(const vsm_event *ev)
{
	return ev ? ev->datastore : NULL;
}

VSM_API const char *vsm_event_container(const vsm_event *ev)
{
	return ev ? ev->container : NULL;
}

VSM_API const char *vsm_event_host(const vsm_event *ev)
{
	return ev ? ev->host : NULL;
}

VSM_API const char *vsm_event_detail(const vsm_event *ev)
{
	return ev ? ev->detail : NULL;
}

VSM_API uint64_t vsm_event_generation(const vsm_event *ev)
{
	return ev ? ev->generation : 0;
}
