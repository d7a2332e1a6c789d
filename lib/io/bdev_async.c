/*
 * Asynchronous batches on a core bdev: hand them to the device's native
 * submit() where it has one, and run them here where it has not.
 *
 * The emulation is synchronous, on the submitting thread: each request
 * goes through read()/write()/flush() in turn and its done is called
 * before vsm_bdev_submit() returns. A device without native submission
 * (a file, a libvirt volume through the file helper, a 0.1 backend) gets
 * no queue depth from a private thread pool anyway (the page cache
 * answers, or the backend serialises), and a library that starts threads
 * on its own behind every device pays for them in every process that
 * embeds it; callers that want parallelism on such devices already have
 * their own threads, and the bdev calls are thread-safe.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "fault.h"
#include "internal.h"

static int req_check(vsm_bdev *b, const vsm_bdev_req *r)
{
	switch (r->op) {
	case VSM_BDEV_OP_READ:
	case VSM_BDEV_OP_FLUSH:
		return 0;
	case VSM_BDEV_OP_WRITE:
		if (b->readonly)
			return vsm_err(VSM_EPERM, "%s: opened read-only", b->label);
		return 0;
	}
	return vsm_err(VSM_EINVAL, "%s: request kind %u is not a read, a write or a flush",
		       b->label, r->op);
}

static int run_one(vsm_bdev *b, vsm_bdev_req *r)
{
	bool fua = (r->flags & VSM_BDEV_WRITE_FUA) != 0;
	bool native_fua = fua && (b->caps.flags & VSM_BDEV_CAP_FUA);
	int rc;

	switch (r->op) {
	case VSM_BDEV_OP_READ:
		if (r->len && (rc = vsm__fault_check(b->label, VSM_FAULT_READ)) < 0)
			return rc;
		return r->len ? b->ops.read(b->io, r->buf, r->len, r->off) : 0;
	case VSM_BDEV_OP_WRITE:
		if (r->len == 0)
			return 0;
		if ((rc = vsm__fault_check(b->label, VSM_FAULT_WRITE)) < 0)
			return rc;
		rc = b->ops.write(b->io, r->buf, r->len, r->off,
				  native_fua ? VSM_BDEV_WRITE_FUA : 0);
		if (rc == 0 && fua && !native_fua)
			rc = b->ops.flush(b->io);
		return rc;
	default:
		if (b->readonly)
			return 0;
		if ((rc = vsm__fault_check(b->label, VSM_FAULT_FLUSH)) < 0)
			return rc;
		return b->ops.flush(b->io);
	}
}

int vsm_bdev_submit(vsm_bdev *b, vsm_bdev_req *const *reqs, size_t n)
{
	bool native = vsm_bdev_has_native_async(b);
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if ((rc = req_check(b, reqs[i])) < 0)
			return rc;
		/* FUA the device cannot do natively needs a flush after the
		 * write completes: the emulation below does that. */
		if ((reqs[i]->flags & VSM_BDEV_WRITE_FUA) && reqs[i]->op == VSM_BDEV_OP_WRITE &&
		    !(b->caps.flags & VSM_BDEV_CAP_FUA))
			native = false;
	}
	if (n == 0)
		return 0;
	/* Injected faults are decided request by request, here. */
	if (vsm__fault_armed())
		native = false;
	if (native) {
		if ((rc = b->ops.submit(b->io, reqs, n)) < 0)
			vsm__error_prefix("%s", b->label);
		return rc;
	}
	for (i = 0; i < n; i++) {
		reqs[i]->result = run_one(b, reqs[i]);
		reqs[i]->done(reqs[i]);
	}
	return 0;
}

/* ---------------------------------------------------------- run and wait */

typedef struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t left;
	int first_rc;
	char msg[512];
} waiter;

static void run_done(vsm_bdev_req *r)
{
	waiter *w = r->payload;

	pthread_mutex_lock(&w->lock);
	if (r->result < 0 && w->first_rc == 0) {
		const vsm_error *e = vsm_error_last();

		w->first_rc = r->result;
		snprintf(w->msg, sizeof(w->msg), "%s", e && e->message ? e->message :
			 "I/O failed");
	}
	if (--w->left == 0)
		pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int vsm_bdev_run(vsm_bdev *b, vsm_bdev_req *reqs, size_t n)
{
	vsm_bdev_req *one[1], **ptrs = n <= 1 ? one : vsm__calloc(n, sizeof(*ptrs));
	waiter w;
	size_t i;
	int rc;

	if (n == 0)
		return 0;
	if (!ptrs)
		return -VSM_ENOMEM;
	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	w.left = n;
	for (i = 0; i < n; i++) {
		reqs[i].done = run_done;
		reqs[i].payload = &w;
		reqs[i].result = 0;
		ptrs[i] = &reqs[i];
	}
	rc = vsm_bdev_submit(b, ptrs, n);
	if (rc == 0) {
		pthread_mutex_lock(&w.lock);
		while (w.left > 0)
			pthread_cond_wait(&w.cond, &w.lock);
		pthread_mutex_unlock(&w.lock);
		if (w.first_rc < 0)
			rc = vsm_err(w.first_rc, "%s: %s", b->label, w.msg);
	}
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	if (ptrs != one)
		free(ptrs);
	return rc;
}
