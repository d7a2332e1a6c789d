/*
 * One iSCSI session per open datastore: a libiscsi context owned by an
 * event thread. Callers on any thread queue commands and wait; the event
 * thread submits them through libiscsi's async API, so concurrent callers
 * keep that many commands in flight on the one session (queue depth).
 *
 * libiscsi's own reconnect blocks and retries forever, which would hang a
 * caller (and a lease renewal) for as long as the portal is away. It is
 * turned off: when the connection drops or a command overstays its time,
 * the event thread tears the context down, logs in again, and resubmits
 * what was in flight, as long as each command's deadline (the URI's
 * timeout) has not passed; after that the caller gets -VSM_EIO naming the
 * portal and what went wrong.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "isc-int.h"

typedef struct isc_req isc_req;

struct isc_req {
	isc_sess *s;
	const isc_cmd *cmd;
	isc_result *res;
	struct scsi_task *task;
	struct scsi_iovec iov;
	struct unmap_list um;
	uint64_t deadline_ms;   /* CLOCK_MONOTONIC */
	uint64_t not_before_ms; /* backoff for a retried command */
	int ua_retries;
	int rc;                 /* 0, or -VSM_E* when not delivered */
	char why[320];
	atomic_int *remaining;  /* the caller's count of unfinished commands;
	                         * NULL for a command of isc_sess_start() */
	isc_req *next, *prev;
};

/* A command started with isc_sess_start(): the request, its own copy of
 * the command and result, and whom to tell. */
typedef struct {
	isc_req r;
	isc_cmd cmd;
	isc_result res;
	isc_done_fn fn;
	void *arg;
} isc_async;

typedef struct {
	isc_req *head, *tail;
} req_list;

struct isc_sess {
	char *portal, *iqn, *user, *password, *initiator, *label, *ds_name;
	unsigned timeout;
	uint32_t isid;               /* kept across reconnects */
	pthread_mutex_t lock;
	pthread_t thread;
	bool thread_started;
	int evfd;
	struct iscsi_context *iscsi; /* event thread only, once started */
	req_list pending;            /* under lock */
	bool closing;                /* under lock */
	bool driving;                /* under lock: some thread is the driver */
	pthread_cond_t idle_cond;    /* the event thread waits here */
	/* A caller that queued work wakes the driver only when it may be
	 * asleep in poll(): queue_gen counts queueings, polling is set
	 * around the poll; each side stores, then loads the other's. */
	atomic_uint queue_gen;
	atomic_bool polling;
	/* The rest belongs to the driver: the one thread (a caller or the
	 * event thread) that has set @driving and so may call libiscsi. */
	req_list retry;
	req_list inflight;
	bool broken;
	char last_error[320];
	uint64_t last_attempt_ms;
	void (*notify)(void *cookie, int event, const char *detail);
	void *notify_cookie;
};

/* The session the calling thread drives right now (inside drive_once),
 * so that a completion that starts the next command hands it to libiscsi
 * at once instead of through the pending queue and another turn. */
static _Thread_local isc_sess *tls_driving;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void list_push(req_list *l, isc_req *r)
{
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
}

static void list_remove(req_list *l, isc_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->next = r->prev = NULL;
}

/* A caller waits on the count of its commands still running, with a
 * futex: no mutex is taken on either side for a completion. The wake may
 * reach the address after the caller has seen zero and returned; a futex
 * wake on stale memory touches nothing and waiters tolerate it. */
static void futex_wait_int(atomic_int *addr, int val)
{
	syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(atomic_int *addr)
{
	syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static void complete(isc_sess *s, isc_req *r, int rc)
{
	atomic_int *left = r->remaining;

	(void)s;
	r->rc = rc;
	if (!left) {
		/* Started by isc_sess_start(): r is the first member. */
		isc_async *a = (isc_async *)r;

		if (rc < 0) {
			snprintf(a->res.error, sizeof(a->res.error), "%.190s", r->why);
			a->res.status = SCSI_STATUS_ERROR;
		}
		a->fn(a->arg, rc, &a->res);
		free(a);
		return;
	}
	if (atomic_fetch_sub(left, 1) == 1)
		futex_wake_all(left);
}

const char *isc_sess_label(const isc_sess *s)
{
	return s->label;
}

/* ------------------------------------------------------------- results */

void isc_result_clear(isc_result *r)
{
	if (!r)
		return;
	free(r->data);
	memset(r, 0, sizeof(*r));
}

static const char *sense_key_words(int key)
{
	switch (key) {
	case 0x0: return "NO SENSE";
	case 0x1: return "RECOVERED ERROR";
	case 0x2: return "NOT READY";
	case 0x3: return "MEDIUM ERROR";
	case 0x4: return "HARDWARE ERROR";
	case 0x5: return "ILLEGAL REQUEST";
	case 0x6: return "UNIT ATTENTION";
	case 0x7: return "DATA PROTECT";
	case 0x8: return "BLANK CHECK";
	case 0x9: return "VENDOR SPECIFIC";
	case 0xa: return "COPY ABORTED";
	case 0xb: return "ABORTED COMMAND";
	case 0xd: return "VOLUME OVERFLOW";
	case 0xe: return "MISCOMPARE";
	}
	return "unknown sense key";
}

/* The additional sense codes a storage administrator is likely to meet;
 * the rest are printed as numbers. */
static const char *asc_words(int ascq)
{
	switch (ascq) {
	case 0x0000: return "no additional sense information";
	case 0x0401: return "logical unit is becoming ready";
	case 0x0402: return "logical unit not ready, initializing command required";
	case 0x0403: return "logical unit not ready, manual intervention required";
	case 0x0800: return "logical unit communication failure";
	case 0x0c00: return "write error";
	case 0x1100: return "unrecovered read error";
	case 0x1a00: return "parameter list length error";
	case 0x1d00: return "miscompare during verify operation";
	case 0x2000: return "invalid command operation code";
	case 0x2100: return "logical block address out of range";
	case 0x2400: return "invalid field in CDB";
	case 0x2500: return "logical unit not supported";
	case 0x2600: return "invalid field in parameter list";
	case 0x2700: return "write protected";
	case 0x2701: return "hardware write protected";
	case 0x2702: return "logical unit software write protected";
	case 0x2800: return "not ready to ready change, medium may have changed";
	case 0x2900: return "power on, reset, or bus device reset occurred";
	case 0x2907: return "I_T nexus loss occurred";
	case 0x2a01: return "mode parameters changed";
	case 0x2a09: return "capacity data has changed";
	case 0x3a00: return "medium not present";
	case 0x3e03: return "logical unit failed self-test";
	case 0x3f0e: return "reported LUNs data has changed";
	case 0x4400: return "internal target failure";
	case 0x5300: return "media load or eject failed";
	case 0x5501: return "system buffer full";
	}
	return NULL;
}

void isc_result_describe(const isc_result *r, char *buf, size_t size)
{
	const char *words;

	switch (r->status) {
	case SCSI_STATUS_GOOD:
		snprintf(buf, size, "good status");
		return;
	case SCSI_STATUS_CHECK_CONDITION:
		words = asc_words(r->ascq);
		snprintf(buf, size, "%s: %s (sense key 0x%x, ASC/ASCQ 0x%02x/0x%02x)",
			 sense_key_words(r->sense_key),
			 words ? words : "additional sense code not known to libvsm",
			 r->sense_key, (r->ascq >> 8) & 0xff, r->ascq & 0xff);
		return;
	case SCSI_STATUS_BUSY:
		snprintf(buf, size, "target is busy");
		return;
	case SCSI_STATUS_RESERVATION_CONFLICT:
		snprintf(buf, size, "reservation conflict (another initiator reserved the LUN)");
		return;
	case SCSI_STATUS_TASK_SET_FULL:
		snprintf(buf, size, "task set full");
		return;
	case SCSI_STATUS_TASK_ABORTED:
		snprintf(buf, size, "task aborted");
		return;
	}
	snprintf(buf, size, "%s", r->error[0] ? r->error : "transport error");
}

int isc_result_error(const isc_sess *s, const isc_result *r, int lun, const char *what)
{
	char desc[320];
	int code = VSM_EIO;

	isc_result_describe(r, desc, sizeof(desc));
	if (r->status == SCSI_STATUS_CHECK_CONDITION) {
		if (r->sense_key == 0x5 && (r->ascq == 0x2000 || r->ascq == 0x2400))
			code = VSM_ENOTSUP;
		else if (r->sense_key == 0x5 && r->ascq == 0x2100)
			code = VSM_ENOSPC;
		else if (r->sense_key == 0x5 && r->ascq == 0x2500)
			code = VSM_ENOTFOUND;
		else if (r->sense_key == 0x7)
			code = VSM_EPERM;
		else if (r->sense_key == 0xe)
			code = VSM_EMISMATCH;
	} else if (r->status == SCSI_STATUS_RESERVATION_CONFLICT) {
		code = VSM_EBUSY;
	}
	return vsm_error_set(code, "%s LUN %d of %s: %s", what, lun, s->label, desc);
}

/* ------------------------------------------------------------- login */

typedef struct {
	bool done;
	int status;
} login_state;

static void login_cb(struct iscsi_context *iscsi, int status, void *data, void *priv)
{
	login_state *st = priv;

	(void)iscsi;
	(void)data;
	st->done = true;
	st->status = status;
}

static void connect_cb(struct iscsi_context *iscsi, int status, void *data, void *priv)
{
	login_state *st = priv;

	(void)data;
	if (status != 0 || iscsi_login_async(iscsi, login_cb, st) != 0) {
		st->done = true;
		st->status = status ? status : SCSI_STATUS_ERROR;
	}
}

/* Classify libiscsi's login failure text into a code and our words. */
static int login_error_code(const char *err)
{
	if (strstr(err, "uthentication"))
		return VSM_EPERM;
	if (strstr(err, "uthorization") || strstr(err, "orbidden"))
		return VSM_EPERM;
	if (strstr(err, "ot found") || strstr(err, "emoved"))
		return VSM_ENOTFOUND;
	return VSM_EIO;
}

/* Connect and log in within the session's timeout. On failure returns a
 * negative code and leaves the reason in @err. */
static int sess_login(isc_sess *s, struct iscsi_context **out, char *err, size_t errlen)
{
	struct iscsi_context *c;
	login_state st = { false, 0 };
	uint64_t deadline = now_ms() + (uint64_t)s->timeout * 1000;

	*out = NULL;
	if (!(c = iscsi_create_context(s->initiator))) {
		snprintf(err, errlen, "cannot create an iSCSI context");
		return -VSM_ENOMEM;
	}
	/* Every session has its own ISID (two sessions of one initiator name
	 * with the same ISID would make the target drop the older), and
	 * keeps it when it logs in again: the target then reinstates the
	 * session, ending the old I_T nexus and what it held (an SPC-2
	 * reservation of the claim table) at once. */
	iscsi_set_isid_random(c, s->isid, 0);
	iscsi_set_targetname(c, s->iqn);
	iscsi_set_session_type(c, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(c, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	iscsi_set_noautoreconnect(c, 1);
	iscsi_set_timeout(c, (int)s->timeout);
	if (s->user && iscsi_set_initiator_username_pwd(c, s->user, s->password ? s->password : "") != 0) {
		snprintf(err, errlen, "cannot set CHAP credentials: %s", iscsi_get_error(c));
		iscsi_destroy_context(c);
		return -VSM_EINVAL;
	}
	if (iscsi_connect_async(c, s->portal, connect_cb, &st) != 0) {
		snprintf(err, errlen, "cannot connect: %s", iscsi_get_error(c));
		iscsi_destroy_context(c);
		return -VSM_EIO;
	}
	while (!st.done) {
		struct pollfd pfd = { iscsi_get_fd(c), (short)iscsi_which_events(c), 0 };
		uint64_t now = now_ms();
		int wait;

		if (now >= deadline) {
			snprintf(err, errlen, "no answer within %u s", s->timeout);
			iscsi_destroy_context(c);
			return -VSM_EIO;
		}
		wait = (int)(deadline - now < 100 ? deadline - now : 100);
		if (pfd.events == 0) {
			usleep((useconds_t)wait * 1000);
			continue;
		}
		if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
			break;
		if (iscsi_service(c, pfd.revents) < 0 && !st.done) {
			st.done = true;
			st.status = SCSI_STATUS_ERROR;
		}
	}
	if (st.status != 0 || !iscsi_is_logged_in(c)) {
		const char *e = iscsi_get_error(c);
		int code = login_error_code(e ? e : "");

		if (code == VSM_EPERM && s->user)
			snprintf(err, errlen, "login refused: CHAP authentication as '%s' failed "
				 "(wrong user or secret?): %s", s->user, e);
		else if (code == VSM_EPERM)
			snprintf(err, errlen, "login refused (the target may require CHAP "
				 "credentials or not allow this initiator '%s'): %s",
				 s->initiator, e);
		else
			snprintf(err, errlen, "login failed: %s", e && *e ? e : "connection closed");
		iscsi_destroy_context(c);
		return -code;
	}
	*out = c;
	return 0;
}

/* ------------------------------------------------------------- commands */

static void cmd_cb(struct iscsi_context *iscsi, int status, void *data, void *priv);

static int submit(isc_sess *s, isc_req *r)
{
	struct iscsi_context *c = s->iscsi;
	const isc_cmd *m = r->cmd;
	struct scsi_task *t = NULL;
	uint32_t bs = m->block_size;

	switch (m->kind) {
	case ISC_CMD_READ:
		r->iov.iov_base = m->buf;
		r->iov.iov_len = m->len;
		t = iscsi_read16_iov_task(c, m->lun, m->lba, (uint32_t)m->len, (int)bs, 0, 0, 0, 0,
					  0, cmd_cb, r, &r->iov, 1);
		break;
	case ISC_CMD_WRITE:
		r->iov.iov_base = m->buf;
		r->iov.iov_len = m->len;
		t = iscsi_write16_iov_task(c, m->lun, m->lba, NULL, (uint32_t)m->len, (int)bs, 0,
					   0, m->fua ? 1 : 0, 0, 0, cmd_cb, r, &r->iov, 1);
		break;
	case ISC_CMD_SYNC:
		t = iscsi_synchronizecache16_task(c, m->lun, 0, 0, 0, 0, cmd_cb, r);
		break;
	case ISC_CMD_UNMAP:
		r->um.lba = m->lba;
		r->um.num = m->nblocks;
		t = iscsi_unmap_task(c, m->lun, 0, 0, &r->um, 1, cmd_cb, r);
		break;
	case ISC_CMD_CAW:
		t = iscsi_compareandwrite_task(c, m->lun, m->lba, m->buf, (uint32_t)m->len,
					       (int)bs, 0, 0, 0, 0, 0, cmd_cb, r);
		break;
	case ISC_CMD_INQUIRY:
		t = iscsi_inquiry_task(c, m->lun, m->evpd, m->page, (int)m->alloc_len, cmd_cb, r);
		break;
	case ISC_CMD_RC16:
		t = iscsi_readcapacity16_task(c, m->lun, cmd_cb, r);
		break;
	case ISC_CMD_REPORT_LUNS:
		t = iscsi_reportluns_task(c, 0, (int)m->alloc_len, cmd_cb, r);
		break;
	case ISC_CMD_RSOC:
		t = iscsi_report_supported_opcodes_task(c, m->lun, 0, 1, m->page, m->evpd,
							m->alloc_len, cmd_cb, r);
		break;
	case ISC_CMD_RESERVE6:
		t = iscsi_reserve6_task(c, m->lun, cmd_cb, r);
		break;
	case ISC_CMD_RELEASE6:
		t = iscsi_release6_task(c, m->lun, cmd_cb, r);
		break;
	case ISC_CMD_WRITE_SAME_ZERO:
		t = iscsi_writesame16_task(c, m->lun, m->lba, m->buf, bs, m->nblocks, 0, 0, 0, 0,
					   cmd_cb, r);
		break;
	}
	if (!t) {
		snprintf(r->why, sizeof(r->why), "cannot queue the command: %s",
			 iscsi_get_error(c));
		return -1;
	}
	r->task = t;
	list_push(&s->inflight, r);
	return 0;
}

static void retry_later(isc_sess *s, isc_req *r, uint64_t delay_ms)
{
	r->not_before_ms = now_ms() + delay_ms;
	list_push(&s->retry, r);
}

static void cmd_cb(struct iscsi_context *iscsi, int status, void *data, void *priv)
{
	isc_req *r = priv;
	isc_sess *s = r->s;
	struct scsi_task *t = r->task;
	isc_result *res = r->res;
	uint64_t now = now_ms();

	(void)data;
	list_remove(&s->inflight, r);
	r->task = NULL;
	if (status == SCSI_STATUS_CANCELLED || status == SCSI_STATUS_ERROR ||
	    status == SCSI_STATUS_TIMEOUT) {
		const char *e = iscsi_get_error(iscsi);

		snprintf(r->why, sizeof(r->why), "%.300s",
			 status == SCSI_STATUS_TIMEOUT ? "command timed out" :
			 e && *e ? e : "connection lost");
		snprintf(s->last_error, sizeof(s->last_error), "%.300s", r->why);
		s->broken = true;
		if (t)
			scsi_free_scsi_task(t);
		if (now < r->deadline_ms)
			retry_later(s, r, 0);
		else
			complete(s, r, -VSM_EIO);
		return;
	}
	if (status == SCSI_STATUS_RESERVATION_CONFLICT && r->cmd->retry_conflict &&
	    now < r->deadline_ms) {
		scsi_free_scsi_task(t);
		retry_later(s, r, 5);
		return;
	}
	/* After a reconnect the target reports a unit attention (reset,
	 * nexus loss); the command itself was not run, so run it again. */
	if (status == SCSI_STATUS_CHECK_CONDITION && t && t->sense.key == SCSI_SENSE_UNIT_ATTENTION &&
	    r->ua_retries++ < 8 && now < r->deadline_ms) {
		scsi_free_scsi_task(t);
		retry_later(s, r, 0);
		return;
	}
	if ((status == SCSI_STATUS_BUSY || status == SCSI_STATUS_TASK_SET_FULL) &&
	    now < r->deadline_ms) {
		scsi_free_scsi_task(t);
		retry_later(s, r, 10);
		return;
	}
	res->status = status;
	if (t && status == SCSI_STATUS_CHECK_CONDITION) {
		res->sense_key = t->sense.key;
		res->ascq = t->sense.ascq;
	}
	if (t && status == SCSI_STATUS_GOOD && r->cmd->kind >= ISC_CMD_INQUIRY &&
	    r->cmd->kind <= ISC_CMD_RSOC && t->datain.size > 0) {
		res->data = malloc((size_t)t->datain.size);
		if (res->data) {
			memcpy(res->data, t->datain.data, (size_t)t->datain.size);
			res->data_len = (size_t)t->datain.size;
		}
	}
	if (t)
		scsi_free_scsi_task(t);
	complete(s, r, 0);
}

/* Fail or keep every request that has no live session to go to. */
static void fail_expired(isc_sess *s, req_list *l, bool closing)
{
	uint64_t now = now_ms();
	isc_req *r, *next;

	for (r = l->head; r; r = next) {
		next = r->next;
		if (now >= r->deadline_ms || closing) {
			list_remove(l, r);
			if (!r->why[0])
				snprintf(r->why, sizeof(r->why), "%.300s", s->last_error[0] ?
					 s->last_error : "not connected");
			complete(s, r, -VSM_EIO);
		}
	}
}

static void drop_session(isc_sess *s)
{
	isc_req *r;

	if (!s->iscsi)
		return;
	/* Callbacks of what was in flight run from here (or not at all,
	 * depending on the libiscsi version); anything left is ours. */
	iscsi_destroy_context(s->iscsi);
	s->iscsi = NULL;
	while ((r = s->inflight.head)) {
		list_remove(&s->inflight, r);
		if (r->task)
			scsi_free_scsi_task(r->task);
		r->task = NULL;
		if (!r->why[0])
			snprintf(r->why, sizeof(r->why), "connection lost");
		list_push(&s->retry, r);
	}
	s->broken = false;
	if (s->notify) {
		char detail[700];

		snprintf(detail, sizeof(detail), "%s: %s; reconnecting", s->label,
			 s->last_error[0] ? s->last_error : "connection lost");
		s->notify(s->notify_cookie, VSM_BACKEND_EVENT_LOST, detail);
	}
}

/*
 * One turn of the session, by the thread that holds the driver role:
 * take queued commands, (re)connect if needed, submit, wait up to
 * @max_wait_ms for the socket, and run libiscsi's callbacks.
 */
static void drive_once(isc_sess *s, bool closing, int max_wait_ms)
{
	req_list work = { NULL, NULL };
	struct pollfd pfd[2];
	int nfds = 1, wait = max_wait_ms, prc;
	unsigned gen = atomic_load(&s->queue_gen);
	uint64_t now;
	isc_req *r, *next;

	pthread_mutex_lock(&s->lock);
	while ((r = s->pending.head)) {
		list_remove(&s->pending, r);
		list_push(&work, r);
	}
	pthread_mutex_unlock(&s->lock);
	now = now_ms();
	for (r = s->retry.head; r; r = next) {
		next = r->next;
		if (r->not_before_ms <= now || closing) {
			list_remove(&s->retry, r);
			list_push(&work, r);
		}
	}
	if (!s->iscsi && work.head && !closing && now - s->last_attempt_ms >= 500) {
		char err[200];

		s->last_attempt_ms = now;
		if (sess_login(s, &s->iscsi, err, sizeof(err)) < 0)
			snprintf(s->last_error, sizeof(s->last_error),
				 "reconnect failed: %.280s", err);
	}
	if (!s->iscsi || closing) {
		/* Nowhere to send them: fail the expired, keep the rest. */
		while ((r = work.head)) {
			list_remove(&work, r);
			list_push(&s->retry, r);
		}
		fail_expired(s, &s->retry, closing);
	} else {
		while ((r = work.head)) {
			list_remove(&work, r);
			r->why[0] = '\0';
			if (submit(s, r) < 0) {
				s->broken = true;
				list_push(&s->retry, r);
			}
		}
	}
	if (s->retry.head && wait > 20)
		wait = 20;
	pfd[0].fd = s->evfd;
	pfd[0].events = POLLIN;
	pfd[0].revents = 0;
	if (s->iscsi) {
		pfd[1].fd = iscsi_get_fd(s->iscsi);
		pfd[1].events = (short)iscsi_which_events(s->iscsi);
		pfd[1].revents = 0;
		nfds = 2;
	}
	atomic_store(&s->polling, true);
	if (atomic_load(&s->queue_gen) != gen)
		wait = 0; /* queued meanwhile: do not sleep on it */
	prc = poll(pfd, (nfds_t)nfds, wait);
	atomic_store(&s->polling, false);
	if (prc > 0 && (pfd[0].revents & POLLIN)) {
		uint64_t v;

		if (read(s->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN) {
			/* nothing to do: the counter is only a wake-up */
		}
	}
	if (!s->iscsi)
		return;
	tls_driving = s;
	prc = iscsi_service(s->iscsi, nfds == 2 && prc > 0 ? pfd[1].revents : 0);
	tls_driving = NULL;
	if (prc < 0) {
		const char *e = iscsi_get_error(s->iscsi);

		snprintf(s->last_error, sizeof(s->last_error), "%.300s",
			 e && *e ? e : "connection lost");
		s->broken = true;
	}
	/* A command that overstays its deadline means the path is gone
	 * even if TCP has not noticed. */
	now = now_ms();
	for (r = s->inflight.head; r; r = r->next)
		if (now > r->deadline_ms + 1000) {
			snprintf(s->last_error, sizeof(s->last_error), "no answer within %u s",
				 s->timeout);
			s->broken = true;
			break;
		}
	if (s->broken)
		drop_session(s);
}

static bool has_work(const isc_sess *s)
{
	return s->pending.head || s->retry.head || s->inflight.head;
}

/* The event thread drives whenever there is work and no caller does:
 * commands of callers that stopped driving, retries, reconnects. */
static void *event_thread(void *arg)
{
	isc_sess *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		bool closing = s->closing, work = has_work(s);
		struct timespec ts;

		if (closing && !s->driving && !work)
			break;
		if (s->driving || !work) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&s->idle_cond, &s->lock, &ts);
			continue;
		}
		s->driving = true;
		pthread_mutex_unlock(&s->lock);
		drive_once(s, closing, 250);
		pthread_mutex_lock(&s->lock);
		s->driving = false;
	}
	pthread_mutex_unlock(&s->lock);
	if (s->iscsi) {
		iscsi_logout_sync(s->iscsi);
		iscsi_destroy_context(s->iscsi);
		s->iscsi = NULL;
	}
	return NULL;
}

/* ------------------------------------------------------------- public */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void sess_free(isc_sess *s)
{
	if (!s)
		return;
	if (s->evfd >= 0)
		close(s->evfd);
	pthread_cond_destroy(&s->idle_cond);
	pthread_mutex_destroy(&s->lock);
	free(s->portal);
	free(s->iqn);
	free(s->user);
	if (s->password) {
		memset(s->password, 0, strlen(s->password));
		free(s->password);
	}
	free(s->initiator);
	free(s->label);
	free(s->ds_name);
	free(s);
}

int isc_sess_open(isc_sess **out, const isc_uri *u, const char *ds_name,
		  void (*notify)(void *cookie, int event, const char *detail),
		  void *notify_cookie)
{
	isc_sess *s = calloc(1, sizeof(*s));
	char err[256];
	int rc;

	if (!s)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	s->evfd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle_cond, NULL);
	if (getrandom(&s->isid, sizeof(s->isid), 0) != (ssize_t)sizeof(s->isid))
		s->isid = (uint32_t)now_ms() ^ (uint32_t)getpid() << 12;
	s->isid &= 0xffffff;
	s->timeout = u->timeout;
	s->notify = notify;
	s->notify_cookie = notify_cookie;
	if (!(s->portal = strdup(u->portal)) || !(s->iqn = strdup(u->iqn)) ||
	    !(s->initiator = strdup(u->initiator)) || !(s->ds_name = strdup(ds_name)) ||
	    (u->user && !(s->user = strdup(u->user))) ||
	    (u->password && !(s->password = dup_or_null(u->password))) ||
	    asprintf(&s->label, "iSCSI target '%s' at %s", u->iqn, u->portal) < 0) {
		s->label = NULL;
		sess_free(s);
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	}
	if ((s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		rc = vsm_error_set(VSM_EIO, "datastore '%s': eventfd: %s", ds_name,
				   strerror(errno));
		sess_free(s);
		return rc;
	}
	if ((rc = sess_login(s, &s->iscsi, err, sizeof(err))) < 0) {
		rc = vsm_error_set(rc, "datastore '%s': %s: %s", ds_name, s->label, err);
		sess_free(s);
		return rc;
	}
	if ((rc = pthread_create(&s->thread, NULL, event_thread, s)) != 0) {
		iscsi_logout_sync(s->iscsi);
		iscsi_destroy_context(s->iscsi);
		sess_free(s);
		return vsm_error_set(VSM_ENOMEM, "datastore '%s': cannot start the iSCSI "
				     "event thread: %s", ds_name, strerror(rc));
	}
	s->thread_started = true;
	*out = s;
	return 0;
}

static void wake(isc_sess *s)
{
	uint64_t one = 1;

	if (write(s->evfd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the thread is awake anyway */
	}
}

void isc_sess_close(isc_sess *s)
{
	if (!s)
		return;
	if (s->thread_started) {
		pthread_mutex_lock(&s->lock);
		s->closing = true;
		pthread_cond_signal(&s->idle_cond);
		pthread_mutex_unlock(&s->lock);
		wake(s);
		pthread_join(s->thread, NULL);
	}
	sess_free(s);
}

int isc_sess_run_many(isc_sess *s, const isc_cmd *cmds, isc_result *res, size_t n)
{
	isc_req one, *r = n == 1 ? &one : calloc(n, sizeof(*r));
	uint64_t deadline = now_ms() + (uint64_t)s->timeout * 1000;
	atomic_int remaining;
	bool drive;
	size_t i;
	int rc = 0, left;

	if (!r)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	memset(r, 0, n * sizeof(*r));
	memset(res, 0, n * sizeof(*res));
	atomic_init(&remaining, (int)n);
	pthread_mutex_lock(&s->lock);
	if (s->closing) {
		pthread_mutex_unlock(&s->lock);
		rc = vsm_error_set(VSM_ESTATE, "%s: session is closing", s->label);
		goto out;
	}
	for (i = 0; i < n; i++) {
		r[i].s = s;
		r[i].cmd = &cmds[i];
		r[i].res = &res[i];
		r[i].remaining = &remaining;
		r[i].deadline_ms = deadline;
		list_push(&s->pending, &r[i]);
	}
	/* An idle session is driven by its caller: no hand-over to another
	 * thread and back for each command. A busy one is woken instead. */
	drive = !s->driving;
	if (drive)
		s->driving = true;
	atomic_fetch_add(&s->queue_gen, 1);
	pthread_mutex_unlock(&s->lock);
	if (!drive && atomic_load(&s->polling))
		wake(s);
	if (drive) {
		while (atomic_load(&remaining) > 0)
			drive_once(s, false, 100);
		pthread_mutex_lock(&s->lock);
		s->driving = false;
		if (has_work(s))
			pthread_cond_signal(&s->idle_cond);
		pthread_mutex_unlock(&s->lock);
	} else {
		while ((left = atomic_load(&remaining)) > 0)
			futex_wait_int(&remaining, left);
	}
	for (i = 0; i < n; i++) {
		if (r[i].rc < 0) {
			snprintf(res[i].error, sizeof(res[i].error), "%.190s", r[i].why);
			res[i].status = SCSI_STATUS_ERROR;
			if (rc == 0)
				rc = vsm_error_set(r[i].rc, "%s: I/O to LUN %d not delivered "
						   "within %u s: %s", s->label, cmds[i].lun,
						   s->timeout, r[i].why);
		}
	}
out:
	if (r != &one)
		free(r);
	return rc;
}

int isc_sess_start(isc_sess *s, const isc_cmd *cmd, isc_done_fn fn, void *arg)
{
	isc_async *a = calloc(1, sizeof(*a));
	bool idle;

	if (!a)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	a->cmd = *cmd;
	a->fn = fn;
	a->arg = arg;
	a->r.s = s;
	a->r.cmd = &a->cmd;
	a->r.res = &a->res;
	a->r.deadline_ms = now_ms() + (uint64_t)s->timeout * 1000;
	/* From a completion on the driving thread: straight to libiscsi. */
	if (tls_driving == s && s->iscsi && !s->broken) {
		if (submit(s, &a->r) == 0)
			return 0;
		s->broken = true;
		list_push(&s->retry, &a->r);
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	if (s->closing) {
		pthread_mutex_unlock(&s->lock);
		free(a);
		return vsm_error_set(VSM_ESTATE, "%s: session is closing", s->label);
	}
	list_push(&s->pending, &a->r);
	/* Nobody drives: the event thread takes it. A driver (the event
	 * thread, or a caller of isc_sess_run_many()) finds it on its next
	 * turn; when it is asleep in poll(), the eventfd wakes it. */
	idle = !s->driving;
	if (idle)
		pthread_cond_signal(&s->idle_cond);
	atomic_fetch_add(&s->queue_gen, 1);
	pthread_mutex_unlock(&s->lock);
	if (!idle && atomic_load(&s->polling))
		wake(s);
	return 0;
}

int isc_sess_run(isc_sess *s, const isc_cmd *cmd, isc_result *res)
{
	return isc_sess_run_many(s, cmd, res, 1);
}
