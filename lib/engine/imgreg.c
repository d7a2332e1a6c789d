/*
 * The registry of a context's open device handles (imgreg.h): what a
 * live migration of a container finds its writers in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgreg.h"

int vsm__imgreg_new(vsm__imgreg **out)
{
	vsm__imgreg *reg = vsm__calloc(1, sizeof(*reg));

	if (!reg)
		return -VSM_ENOMEM;
	pthread_mutex_init(&reg->mu, NULL);
	*out = reg;
	return 0;
}

static void ent_free(vsm__imgreg_ent *e)
{
	free(e->datastore);
	free(e->device);
	free(e);
}

void vsm__imgreg_free(vsm__imgreg *reg)
{
	vsm__imgreg_ent *e, *next;

	if (!reg)
		return;
	for (e = reg->ents; e; e = next) {
		next = e->next;
		vsm__image_set_close_hook(e->img, NULL, NULL);
		ent_free(e);
	}
	pthread_mutex_destroy(&reg->mu);
	free(reg);
}

static vsm__image_live *mig_live(const vsm__imgreg_mig *m, const char *device)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (!strcmp(m->devices[i], device))
			return m->live[i];
	return NULL;
}

static void on_close(vsm_image *img, void *payload)
{
	vsm__imgreg_ent *e = payload, **pp;
	vsm__imgreg *reg = e->reg;

	pthread_mutex_lock(&reg->mu);
	for (pp = &reg->ents; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	pthread_mutex_unlock(&reg->mu);
	vsm__image_set_live(img, NULL);
	ent_free(e);
}

int vsm__imgreg_add(vsm_ctx *ctx, vsm_image *img, const char *datastore, const char *uuid,
		    const char *device)
{
	vsm__imgreg *reg = ctx->imgreg;
	vsm__imgreg_ent *e = vsm__calloc(1, sizeof(*e));
	vsm__imgreg_mig *m;

	if (!e || !(e->datastore = vsm__strdup(datastore)) || !(e->device = vsm__strdup(device))) {
		if (e)
			ent_free(e);
		return -VSM_ENOMEM;
	}
	e->img = img;
	e->reg = reg;
	snprintf(e->uuid, sizeof(e->uuid), "%s", uuid);
	pthread_mutex_lock(&reg->mu);
	for (m = reg->migs; m; m = m->next)
		if (!strcmp(m->uuid, uuid))
			vsm__image_set_live(img, mig_live(m, device)); /* not handed out yet */
	vsm__image_set_close_hook(img, on_close, e);
	e->next = reg->ents;
	reg->ents = e;
	pthread_mutex_unlock(&reg->mu);
	return 0;
}

void vsm__imgreg_lock(vsm_ctx *ctx)
{
	pthread_mutex_lock(&ctx->imgreg->mu);
}

void vsm__imgreg_unlock(vsm_ctx *ctx)
{
	pthread_mutex_unlock(&ctx->imgreg->mu);
}

vsm__imgreg_ent *vsm__imgreg_first(vsm_ctx *ctx)
{
	return ctx->imgreg->ents;
}

void vsm__imgreg_mig_add(vsm_ctx *ctx, vsm__imgreg_mig *m)
{
	vsm__imgreg *reg = ctx->imgreg;
	vsm__imgreg_ent *e;

	m->next = reg->migs;
	reg->migs = m;
	for (e = reg->ents; e; e = e->next) {
		if (strcmp(e->uuid, m->uuid))
			continue;
		vsm__image_hold(e->img);
		vsm__image_set_live(e->img, mig_live(m, e->device));
		vsm__image_release(e->img);
	}
}

void vsm__imgreg_mig_remove(vsm_ctx *ctx, vsm__imgreg_mig *m)
{
	vsm__imgreg *reg = ctx->imgreg;
	vsm__imgreg_mig **pp;
	vsm__imgreg_ent *e;

	for (pp = &reg->migs; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	for (e = reg->ents; e; e = e->next) {
		if (strcmp(e->uuid, m->uuid))
			continue;
		vsm__image_hold(e->img);
		vsm__image_set_live(e->img, NULL);
		vsm__image_release(e->img);
	}
}
