/*
 * The group's image handles and their write barrier (doc/groups.md).
 * Every write, read and flush through a vsm_group_image holds the read
 * side of the group's barrier (a writer-preferring rwlock); a group
 * checkpoint, revert or checkpoint delete takes the write side: new
 * writes wait, those in flight have finished, and each handle is then
 * flushed and closed, so no layer a checkpoint freezes is written after
 * the cut. When the work is done each handle is opened again on its
 * member's current top and the writes go on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group_int.h"

static int open_top(vsm_group_image *gi)
{
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	const vsm_rec_gmember *m = grp_member_by_uuid(gi->g->rec, gi->member_uuid);

	if (!m)
		return vsm_err(VSM_ENOTFOUND, "group '%s': image '%s': the member left the group",
			       vsm_group_name(gi->g), gi->label);
	o.flags = VSM_IMAGE_OPEN_RDWR;
	return vsm_image_open_device(&gi->img, gi->g->ctx, m->datastore, m->name, gi->device, &o);
}

static void gi_free(vsm_group_image *gi)
{
	free(gi->member_uuid);
	free(gi->device);
	free(gi->label);
	free(gi);
}

VSM_API int vsm_group_image_open(vsm_group_image **out, vsm_group *g, const char *member,
				 const char *device, unsigned int flags)
{
	const vsm_rec_gmember *m;
	vsm_group_image *gi = NULL, **grown;
	int rc;

	vsm__error_reset();
	if (!out || !g || !member || !device)
		return vsm_err(VSM_EINVAL, "vsm_group_image_open: NULL argument");
	*out = NULL;
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_group_image_open: unknown flags 0x%x", flags);
	if (!(m = grp_member(g->rec, member)))
		return vsm_err(VSM_ENOTFOUND, "group '%s' has no member '%s'", vsm_group_name(g),
			       member);
	if (!(gi = vsm__calloc(1, sizeof(*gi))) || !(gi->member_uuid = vsm__strdup(m->uuid)) ||
	    !(gi->device = vsm__strdup(device)) ||
	    asprintf(&gi->label, "%s:%s", member, device) < 0) {
		if (gi)
			gi->label = NULL;
		rc = -VSM_ENOMEM;
		goto fail;
	}
	gi->g = g;
	/* Not while a checkpoint holds the barrier: it would miss us. */
	pthread_rwlock_rdlock(&g->barrier);
	rc = open_top(gi);
	if (rc == 0) {
		pthread_mutex_lock(&g->imgs_lock);
		grown = realloc(g->imgs, (g->n_imgs + 1) * sizeof(*grown));
		if (grown) {
			g->imgs = grown;
			g->imgs[g->n_imgs++] = gi;
		}
		pthread_mutex_unlock(&g->imgs_lock);
		if (!grown) {
			vsm_image_close(gi->img);
			rc = vsm_err(VSM_ENOMEM, "out of memory");
		}
	}
	pthread_rwlock_unlock(&g->barrier);
	if (rc < 0)
		goto fail;
	*out = gi;
	return 0;
fail:
	if (gi)
		gi_free(gi);
	return rc;
}

static int gone(const vsm_group_image *gi)
{
	return vsm_err(VSM_ESTATE, "group '%s': image '%s' could not be opened again on the "
		       "member's new top after a group checkpoint or revert; close it",
		       vsm_group_name(gi->g), gi->label);
}

VSM_API int vsm_group_image_read(vsm_group_image *gi, void *buf, size_t len, uint64_t off)
{
	int rc;

	vsm__error_reset();
	if (!gi || (len && !buf))
		return vsm_err(VSM_EINVAL, "vsm_group_image_read: NULL argument");
	pthread_rwlock_rdlock(&gi->g->barrier);
	rc = gi->img ? vsm_image_read(gi->img, buf, len, off) : gone(gi);
	pthread_rwlock_unlock(&gi->g->barrier);
	return rc;
}

VSM_API int vsm_group_image_write(vsm_group_image *gi, const void *buf, size_t len,
				  uint64_t off)
{
	int rc;

	vsm__error_reset();
	if (!gi || (len && !buf))
		return vsm_err(VSM_EINVAL, "vsm_group_image_write: NULL argument");
	pthread_rwlock_rdlock(&gi->g->barrier);
	rc = gi->img ? vsm_image_write(gi->img, buf, len, off, 0) : gone(gi);
	pthread_rwlock_unlock(&gi->g->barrier);
	return rc;
}

VSM_API int vsm_group_image_flush(vsm_group_image *gi)
{
	int rc;

	vsm__error_reset();
	if (!gi)
		return vsm_err(VSM_EINVAL, "vsm_group_image_flush: NULL argument");
	pthread_rwlock_rdlock(&gi->g->barrier);
	rc = gi->img ? vsm_image_flush(gi->img) : gone(gi);
	pthread_rwlock_unlock(&gi->g->barrier);
	return rc;
}

VSM_API int vsm_group_image_close(vsm_group_image *gi)
{
	vsm_group *g;
	size_t i;
	int rc = 0;

	vsm__error_reset();
	if (!gi)
		return 0;
	g = gi->g;
	pthread_rwlock_rdlock(&g->barrier);
	pthread_mutex_lock(&g->imgs_lock);
	for (i = 0; i < g->n_imgs; i++) {
		if (g->imgs[i] == gi) {
			memmove(&g->imgs[i], &g->imgs[i + 1], (g->n_imgs - i - 1) * sizeof(gi));
			g->n_imgs--;
			break;
		}
	}
	pthread_mutex_unlock(&g->imgs_lock);
	if (gi->img)
		rc = vsm_image_close(gi->img);
	pthread_rwlock_unlock(&g->barrier);
	gi_free(gi);
	return rc;
}

bool grp_has_images(vsm_group *g)
{
	bool any;

	pthread_mutex_lock(&g->imgs_lock);
	any = g->n_imgs > 0;
	pthread_mutex_unlock(&g->imgs_lock);
	return any;
}

int grp_barrier_up(vsm_group *g)
{
	size_t i;
	int rc = 0, r;

	pthread_rwlock_wrlock(&g->barrier);
	/* No write is in flight now, and none starts until barrier_down. */
	for (i = 0; i < g->n_imgs; i++) {
		vsm_group_image *gi = g->imgs[i];

		if (!gi->img)
			continue;
		r = vsm_image_flush(gi->img);
		if (vsm_image_close(gi->img) < 0 && r == 0)
			r = -vsm_error_last()->code;
		gi->img = NULL;
		if (r < 0 && rc == 0) {
			rc = r;
			vsm__error_prefix("group '%s': image '%s'", vsm_group_name(g), gi->label);
		}
	}
	return rc;
}

void grp_barrier_down(vsm_group *g)
{
	vsm__saved_error saved;
	size_t i;

	vsm__error_save(&saved);
	for (i = 0; i < g->n_imgs; i++) {
		vsm_group_image *gi = g->imgs[i];

		if (gi->img)
			continue;
		if (open_top(gi) < 0) {
			gi->img = NULL;
			vsm__log(g->ctx, VSM_LOG_ERROR, "group '%s': image '%s' not opened again: "
				 "%s", vsm_group_name(g), gi->label, vsm_error_last()->message);
		}
	}
	vsm__error_restore(&saved);
	pthread_rwlock_unlock(&g->barrier);
}
