/*
 * Internals shared by the iSCSI backend's files: the parsed datastore URI,
 * the session (one libiscsi context serviced by an event thread), the SCSI
 * commands the backend issues through it, the tgtadm helper for
 * managed mode, and the datastore's state and the functions its files
 * (iscsi.c, lun.c, bdev.c, claims.c, managed.c, meta.c, devices.c,
 * hosts.c) share.
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

/* ------------------------------------------------------------ datastore */

#define CLAIM_AREA (1024 * 1024)  /* claim table; the core's view starts here */
#define ENTRY_BYTES 512            /* used bytes of each (block-sized) entry */
#define ENTRY_NAME_MAX 136
#define ENTRY_FLAG_MANAGED 1u

typedef struct {
	int lun;
	int type;          /* SCSI peripheral device type; 0 = disk */
	uint32_t bs;
	uint64_t nblocks;
	uint32_t max_xfer; /* bytes per command */
	uint32_t max_cmp;  /* blocks per COMPARE AND WRITE; 0 = none */
	bool caw;          /* COMPARE AND WRITE works */
	bool caw_probed;
	bool unmap;
	bool lbprz;        /* unmapped blocks read as zeros */
} lun_info;

struct vsm_backend_ds {
	char *name;
	isc_uri u;
	isc_sess *s;
	bool caw_scheme;      /* opened as iscsi-caw://: the metadata LUN must have CAW */
	pthread_mutex_t lock; /* luns, and claim-table updates from this process */
	lun_info *luns;
	size_t n_luns;
	int meta_lun;         /* -1 until meta_open */
};

/* An open LUN (or a view of one): the v2 device handle comes first. */
typedef struct isc_dev {
	vsm_bdev_io io;
	vsm_backend_ds *ds;
	lun_info li;
	uint64_t base;   /* byte offset of the view in the LUN */
	uint64_t size;   /* bytes in the view */
	bool readonly;
	pthread_mutex_t rmw; /* serializes read-modify-write of partial blocks */
} isc_dev;

typedef struct {
	bool claimed;
	uint32_t lun, flags;
	uint64_t size;
	uint64_t lun_bytes; /* read back only; entry_encode takes it as an argument */
	int64_t when;       /* claim time, read back only; entry_encode writes now */
	char name[ENTRY_NAME_MAX];
} claim;

/* iscsi.c */
/* Set the error to "out of memory" and return -VSM_ENOMEM. */
int isc_oom(void);
/* Put "@prefix: " before the thread's current error message. */
int isc_prefix_error(int rc, const char *prefix);

/* lun.c */
/* The LUN numbered @lun in ds->luns, or NULL. */
lun_info *isc_find_lun(vsm_backend_ds *ds, int lun);
/* Run a command that must end GOOD; otherwise set the error. */
int isc_run_good(vsm_backend_ds *ds, const isc_cmd *c, isc_result *res, const char *what);
/* Is @li a connected disk with blocks. */
bool isc_is_data_lun(const lun_info *li);
/* REPORT LUNS and probe each; replaces ds->luns. Caller holds ds->lock. */
int isc_scan_luns(vsm_backend_ds *ds);
/* Find out once whether COMPARE AND WRITE works on @li (sets li->caw). */
int isc_probe_caw(vsm_backend_ds *ds, lun_info *li, uint64_t probe_lba);

/* bdev.c */
/* A device on @li whose view starts at byte @base (VSM_BDEV_RDONLY in @flags). */
int isc_bdev_new(isc_dev **out, vsm_backend_ds *ds, const lun_info *li,
		 uint64_t base, unsigned int flags);
/* Free a device from isc_bdev_new(); NULL is fine. */
void isc_bdev_close(isc_dev *b);
/* Read or write whole blocks at LUN byte offset @loff, ignoring the view. */
int isc_xfer(isc_dev *b, bool write, uint8_t *buf, size_t len, uint64_t loff);
/* SYNCHRONIZE CACHE on the device's LUN. */
int isc_bdev_flush(isc_dev *b);
/* Write zeros over @len bytes at @off of the view. */
int isc_write_zeros(isc_dev *b, uint64_t off, uint64_t len);
/* Make @len bytes at @off of the view read as zeros, by UNMAP where it can. */
int isc_bdev_discard(isc_dev *b, uint64_t off, uint64_t len);
/* COMPARE AND WRITE whole blocks at LUN byte @lstart; -VSM_EMISMATCH on a miscompare. */
int isc_caw_blocks(isc_dev *b, uint8_t *both, uint64_t lstart, size_t n_bytes);

/* claims.c */
/* Is every one of @n bytes at @p zero (an empty entry). */
bool isc_all_zero(const uint8_t *p, size_t n);
/* How many LUN entries the claim table of @meta has room for. */
uint32_t isc_max_entries(const isc_dev *meta);
/* A raw view of the claim area (base 0) of the metadata LUN. */
int isc_claim_view(vsm_backend_ds *ds, isc_dev **out);
/* Decode the entry of @lun at @e into @c (unclaimed when all zeros). */
int isc_entry_decode(const uint8_t *e, uint32_t lun, claim *c, const char *ds_name);
/* Check a table header at @h; @present is false when it is all zeros. */
int isc_header_check(vsm_backend_ds *ds, const uint8_t *h, uint32_t bs, bool *present);
/* Read the whole claim table. @table gets CLAIM_AREA bytes. */
int isc_table_read(vsm_backend_ds *ds, isc_dev *v, uint8_t **table);
/* isc_claim_view() and isc_table_read() together; nothing is left open on failure. */
int isc_with_table(vsm_backend_ds *ds, isc_dev **v, uint8_t **table);
/* 1 with @out set when a claim names @name, 0 when none does. */
int isc_table_find_name(vsm_backend_ds *ds, isc_dev *v, const uint8_t *table,
			const char *name, claim *out);
/* Replace the entry of @lun if it still holds @old; -VSM_EMISMATCH if not. */
int isc_entry_replace(vsm_backend_ds *ds, isc_dev *v, uint32_t lun,
		      const uint8_t *old, const claim *now_c, uint64_t lun_bytes);

/* managed.c */
/* tgtadm: add LUN @lun backed by the file @path. */
int isc_managed_add_lun(vsm_backend_ds *ds, int lun, const char *path);
/* tgtadm: remove LUN @lun. */
int isc_managed_del_lun(vsm_backend_ds *ds, int lun);
/* Lowest LUN number the target does not have and no claim names. */
int isc_lowest_free_lun(vsm_backend_ds *ds, const uint8_t *table, uint32_t bs, uint32_t max);
/* Create the file @path (it must not exist) of @size bytes; -errno on failure. */
int isc_make_file(const char *path, uint64_t size);
/* Make the metadata file and its LUN. Caller holds ds->lock. */
int isc_managed_make_meta(vsm_backend_ds *ds, uint64_t min_size);
/* Put the metadata LUN back after a tgtd restart. Caller holds ds->lock. */
int isc_managed_restore_meta(vsm_backend_ds *ds);
/* Put back the LUNs of managed devices the target lost. Caller holds ds->lock. */
int isc_managed_restore_devices(vsm_backend_ds *ds);

/* meta.c */
/* The ops' meta_open: the metadata LUN past its claim area. */
int isc_meta_open(vsm_bdev_io **out, vsm_backend_ds *ds, uint64_t min_size,
		  unsigned int flags);

/* devices.c */
/* Split a key "lun<N>/<name>" (@lun -1 for a bare name) and check the name. */
int isc_parse_key(const vsm_backend_ds *ds, const char *key, int *lun, const char **name);
/* Find the LUN behind a key, checking the claim. */
int isc_resolve(vsm_backend_ds *ds, const char *key, lun_info *out);
/* The ops' device_create: claim (or, managed, make) a LUN. */
int isc_device_create(vsm_backend_ds *ds, const vsm_backend_device_spec *spec,
		      char *key, size_t key_size, unsigned int *out_flags);
/* The ops' device_delete: wipe or remove the LUN, then free its claim. */
int isc_device_delete(vsm_backend_ds *ds, const char *key, unsigned int flags);
/* The ops' device_list: every claimed LUN. */
int isc_device_list(vsm_backend_ds *ds, vsm_backend_device_cb cb, void *payload);
/* The ops' device_open. */
int isc_device_open(vsm_bdev_io **out, vsm_backend_ds *ds, const char *key,
		    unsigned int flags);
/* The ops' device_resize: only within the LUN's size. */
int isc_device_resize(vsm_backend_ds *ds, const char *key, uint64_t size,
		      unsigned int flags);

/* hosts.c */
/* The ops' host_attach: check the session reaches the target. */
int isc_host_attach(vsm_backend_ds *ds, const char *host, const char *host_uri,
		    unsigned int flags);
/* The ops' host_detach: nothing to undo. */
int isc_host_detach(vsm_backend_ds *ds, const char *host, const char *host_uri,
		    unsigned int flags);
/* The ops' device_deploy: an iscsi:// URI and disk XML naming the chain's LUNs. */
int isc_device_deploy(vsm_backend_ds *ds, const char *key,
		      const vsm_backend_deploy_req *req, struct vsm_locator *out);
/* The ops' device_undeploy: nothing was set up on the host. */
int isc_device_undeploy(vsm_backend_ds *ds, const char *key,
			const vsm_backend_deploy_req *req);

#endif /* VSM_ISC_INT_H */
