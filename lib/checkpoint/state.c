/*
 * The VM-state blobs of checkpoints: streaming one in from an fd or a
 * callback, reading one back with its checksum checked, and
 * vsm_checkpoint_state_read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "becall.h"
#include "ckpt.h"
#include "steps.h"

#define STATE_FIRST (64u << 20)

/* Stream a blob from fd or callback into a new raw device; sets its
 * checksum. *@size may be STATE_UNKNOWN: then the source is read to its
 * end, the device grows as needed, and *@size becomes the length. */
int ck_state_in(vsm_wf *wf, vsm_dstore *ds, const char *uuid, int fd,
		vsm_state_read_fn fn, void *payload, uint64_t *size,
		char key[VSM_BACKEND_KEY_MAX], uint64_t *sum_out)
{
	char name[VSM_BACKEND_KEY_MAX];
	uint8_t *buf = NULL, extra;
	vsm_bdev *b = NULL;
	bool unknown = *size == STATE_UNKNOWN;
	uint64_t done = 0, cap = unknown ? STATE_FIRST : *size;
	ck_sum sum;
	int rc;

	ck_name(name, sizeof(name), uuid, "state", "raw");
	if ((rc = ck_device_create(wf, ds, name, cap ? cap : 1, "raw", NULL, 0, key)) < 0 ||
	    (rc = vsm__ds_open_device(ds, key, 0, &b)) < 0)
		return rc;
	if (!(buf = malloc(CK_BUF))) {
		vsm_bdev_close(b);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	ck_sum_init(&sum);
	while (unknown || done < *size) {
		size_t want = unknown || *size - done >= CK_BUF ? CK_BUF : (size_t)(*size - done);
		size_t got = 0;

		if (fd >= 0) {
			ssize_t n = read(fd, buf, want);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = vsm_err(VSM_EIO, "reading the state blob: %s", strerror(errno));
				break;
			}
			got = (size_t)n;
		} else if ((rc = fn(buf, want, &got, payload)) < 0) {
			if (!vsm__error_code())
				vsm_err(-rc, "the state source failed (%d)", rc);
			break;
		}
		if (got == 0 && unknown)
			break;
		if (got == 0 || got > want) {
			rc = vsm_err(VSM_EINVAL, "the state blob ended after %llu of %llu bytes",
				     (unsigned long long)done, (unsigned long long)*size);
			break;
		}
		if (done + got > cap) {
			/* Grow the device (reopened so no handle sees the old size). */
			vsm_bdev_close(b);
			b = NULL;
			while (cap < done + got)
				cap *= 2;
			if ((rc = vsm__be_device_resize(ds, key, cap, 0)) < 0 ||
			    (rc = vsm__ds_open_device(ds, key, 0, &b)) < 0)
				break;
		}
		ck_sum_add(&sum, buf, got);
		if ((rc = vsm_bdev_write(b, buf, got, done)) < 0)
			break;
		done += got;
	}
	/* A source with more than it announced is a caller's mistake. */
	if (rc == 0 && !unknown && fd >= 0 && read(fd, &extra, 1) == 1)
		rc = vsm_err(VSM_EINVAL, "the state blob is longer than the %llu bytes announced",
			     (unsigned long long)*size);
	if (rc == 0)
		rc = vsm_bdev_flush(b);
	free(buf);
	if (b)
		vsm_bdev_close(b);
	*sum_out = ck_sum_value(&sum);
	if (rc == 0)
		*size = done;
	return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return vsm_err(VSM_EIO, "writing the state blob: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read a checkpoint's blob back, checking its sum; to @fd or @fn (or
 * only checked when both are absent). */
int ck_state_out(vsm_dstore *ds, const char *container, const vsm_rec_checkpoint *cp,
		 int fd, vsm_state_write_fn fn, void *payload)
{
	vsm_bdev *b = NULL;
	uint8_t *buf;
	uint64_t done = 0;
	ck_sum sum;
	int rc;

	if (!cp->state_key)
		return 0;
	if ((rc = vsm__ds_open_device(ds, cp->state_key, VSM_BDEV_RDONLY, &b)) < 0)
		return rc;
	if (!(buf = malloc(CK_BUF))) {
		vsm_bdev_close(b);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	ck_sum_init(&sum);
	while (done < cp->state_size && rc == 0) {
		size_t n = cp->state_size - done < CK_BUF ? (size_t)(cp->state_size - done) : CK_BUF;

		if ((rc = vsm_bdev_read(b, buf, n, done)) < 0)
			break;
		ck_sum_add(&sum, buf, n);
		if (fd >= 0)
			rc = write_all(fd, buf, n);
		else if (fn && (rc = fn(buf, n, payload)) < 0 && !vsm__error_code())
			vsm_err(-rc, "the state sink failed (%d)", rc);
		done += n;
	}
	free(buf);
	vsm_bdev_close(b);
	if (rc == 0 && ck_sum_value(&sum) != cp->state_sum)
		rc = vsm_err(VSM_ECORRUPT, "container '%s': checkpoint '%s': the state blob does "
			     "not match its checksum", container, cp->name);
	return rc;
}

VSM_API int vsm_checkpoint_state_read(vsm_container *c, const char *name, int fd,
				      vsm_state_write_fn write, void *payload)
{
	vsm_record *r = NULL;
	vsm_rec_checkpoint *cp;
	vsm_dstore *ds;
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!c || !name || (fd < 0 && !write))
		return vsm_err(VSM_EINVAL, "vsm_checkpoint_state_read: NULL argument");
	ctx = vsm__container_ctx(c);
	vsm__ctx_lock(ctx);
	if ((rc = ck_fresh(c, &ds, &r)) == 0) {
		if (!(cp = ck_find(r, name)))
			rc = vsm_err(VSM_ENOTFOUND, "container '%s' has no checkpoint '%s'",
				     r->name, name);
		else
			rc = ck_state_out(ds, r->name, cp, fd, write, payload);
	}
	vsm_record_free(r);
	vsm__ctx_unlock(ctx);
	return rc;
}
