/*
 * Internals shared by the iSCSI backend's files: the parsed datastore URI,
 * the session (one libiscsi context serviced by an event thread), the SCSI
 * commands the backend issues through it, and the tgtadm helper for
 * managed mode.
 */
#ifndef VSM_ISC_INT_H
#define VSM_ISC_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsm/backend.h"

/* ------------------------------------------------------------------ URI */

typedef enum { ISC_MODE_POOL = 0, ISC_MODE_MANAGED = 1 } isc_mode;
typedef enum { ISC_WIPE_NONE = 0, ISC_WIPE_UNMAP = 1, ISC_WIPE_ZERO = 2 } isc_wipe;

typedef struct {
	char *host;        /* as written: name, IPv4, or [IPv6] without brackets */
	unsigned port;
	char *portal;      /* "host:port" (IPv6 bracketed) for libiscsi */
	char *iqn;
	char *user;        /* CHAP user, or NULL */
	char *password;    /* CHAP secret, or NULL */
	char *initiator;   /* initiator IQN */
	int meta_lun;      /* -1: lowest data LUN */
	isc_mode mode;
	int tid;           /* managed: tgt target id */
	char *dir;         /* managed: where backing files go */
	int control_port;  /* managed: tgtadm -C; -1 for tgtd's default */
	char *tgtadm;      /* managed: path of tgtadm */
	unsigned timeout;  /* seconds an I/O may take, reconnects included */
	isc_wipe wipe;
	char *auth_secret; /* libvirt secret usage name for <auth> */
} isc_uri;

/* Parse @uri (scheme "iscsi" or "iscsi-caw"); sets the error on failure. */
int isc_uri_parse(isc_uri *out, const char *uri, const char *ds_name);
void isc_uri_clear(isc_uri *u);

/* -------------------------------------------------------------- session */

typedef struct isc_sess isc_sess;

/* Log in (with CHAP when the URI has credentials) and start the event
 * thread. Errors name the portal and the target. */
int isc_sess_open(isc_sess **out, const isc_uri *u, const char *ds_name,
		  void (*notify)(void *cookie, int event, const char *detail),
		  void *notify_cookie);
void isc_sess_close(isc_sess *s);
/* The session's label for messages: "iSCSI target IQN at HOST:PORT". */
const char *isc_sess_label(const isc_sess *s);

/* Result of one SCSI command. */
typedef struct {
	int status;          /* SCSI status, or SCSI_STATUS_{ERROR,CANCELLED,TIMEOUT} */
	int sense_key;
	int ascq;            /* ASC << 8 | ASCQ */
	uint8_t *data;       /* data-in copied out (only with ISC_CMD_COPY_IN) */
	size_t data_len;
	char error[200];     /* transport error text, if any */
} isc_result;

typedef enum {
	ISC_CMD_READ,        /* READ(16) into buf */
	ISC_CMD_WRITE,       /* WRITE(16) from buf */
	ISC_CMD_SYNC,        /* SYNCHRONIZE CACHE(16), whole LUN */
	ISC_CMD_UNMAP,       /* UNMAP lba/nblocks */
	ISC_CMD_CAW,         /* COMPARE AND WRITE: buf holds compare then write data */
	ISC_CMD_INQUIRY,     /* INQUIRY (evpd/page), copied out */
	ISC_CMD_RC16,        /* READ CAPACITY(16), copied out */
	ISC_CMD_REPORT_LUNS, /* REPORT LUNS, copied out */
	ISC_CMD_RSOC,        /* REPORT SUPPORTED OPCODES for one opcode, copied out */
	ISC_CMD_RESERVE6,
	ISC_CMD_RELEASE6,
	ISC_CMD_WRITE_SAME_ZERO, /* WRITE SAME(16) of zeros over lba/nblocks */
} isc_cmd_kind;

typedef struct {
	isc_cmd_kind kind;
	int lun;
	uint64_t lba;
	uint32_t nblocks;
	uint32_t block_size;
	uint8_t *buf;        /* READ/WRITE/CAW data */
	size_t len;          /* bytes of buf (CAW: 2 * nblocks * block_size) */
	int evpd, page;      /* INQUIRY; RSOC: page = opcode, evpd = service action */
	uint32_t alloc_len;  /* data-in commands */
	bool retry_conflict; /* retry RESERVATION CONFLICT until the deadline */
	bool fua;            /* WRITE: Force Unit Access */
} isc_cmd;

/* Run one command, waiting for it; may be called from any thread, many at
 * once (they are in flight together). Returns 0 when the command got a
 * SCSI status (check @res->status), or a negative VSM_E* code with the
 * error set when it could not be delivered before the deadline. */
int isc_sess_run(isc_sess *s, const isc_cmd *cmd, isc_result *res);
/* The same for @n commands put in flight together; returns the first
 * delivery failure, and each result says how its command ended. */
int isc_sess_run_many(isc_sess *s, const isc_cmd *cmds, isc_result *res, size_t n);
void isc_result_clear(isc_result *r);

/* Completion of isc_sess_start(): @rc is 0 when the command got a SCSI
 * status (see @res->status; @res->data is the callee's to free with
 * isc_result_clear()), or a negative VSM_E* code when it could not be
 * delivered before the deadline (@res->error says why). Runs on the
 * session's driving thread; it may start more commands. */
typedef void (*isc_done_fn)(void *arg, int rc, isc_result *res);
/* Queue one command without waiting; @cmd is copied, its buffer is
 * not. The event thread (or whichever thread drives the session) sends
 * it; @fn runs once when it ends. Returns 0, or a negative code (and @fn
 * is not called) when the session is closing or memory is short. */
int isc_sess_start(isc_sess *s, const isc_cmd *cmd, isc_done_fn fn, void *arg);

/* A message fragment in words for a failed command: "ILLEGAL REQUEST:
 * invalid field in CDB (ASC/ASCQ 0x24/0x00)" or a transport error. */
void isc_result_describe(const isc_result *r, char *buf, size_t size);
/* Map a failed result to a VSM_E* code and set the error:
 * "<what> LUN <lun> of <label>: <description>". */
int isc_result_error(const isc_sess *s, const isc_result *r, int lun, const char *what);

/* --------------------------------------------------------------- tgtadm */

/* Run tgtadm with @argv (NULL-terminated, without the program and the
 * control port); on failure sets the error with tgtadm's own words. */
int isc_tgtadm(const isc_uri *u, const char *const *argv);

#endif /* VSM_ISC_INT_H */
