/*
 * Leases: the core's view of the on-datastore lease area (heartbeats,
 * per-container lease records) and of the leases this context holds.
 * doc/leases.md gives the layout, the two protocols and the safety
 * argument. Nothing here is exported.
 */
#ifndef VSM_LEASE_INT_H
#define VSM_LEASE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsm/lease.h"

struct vsm_record;
struct vsm_meta;
struct vsm_event_hub;

typedef struct vsm_lease_mgr vsm_lease_mgr;
typedef struct vsm_lease_ds vsm_lease_ds;

/* What the lease layer needs of its context, given once: the state
 * directory (which hosts this directory acts for), where to send events,
 * and a log sink. */
typedef struct {
	const char *state_dir;
	struct vsm_event_hub *events;
	void (*log)(void *cookie, int level, const char *msg);
	void *log_cookie;
} vsm_lease_env;

/* The lease manager of a context: renewal thread and the leases held. */
int vsm__lease_mgr_new(vsm_lease_mgr **out, const vsm_lease_env *env, bool manual);
void vsm__lease_mgr_stop(vsm_lease_mgr *m);
/* After every datastore's vsm__lease_ds_close. */
void vsm__lease_mgr_free(vsm_lease_mgr *m);

/* The lease area of one open datastore, on its metadata device @meta
 * (which must outlive it). @name and @scheme are for messages. */
int vsm__lease_ds_open(vsm_lease_ds **out, vsm_lease_mgr *m, struct vsm_meta *meta,
		       const char *name, const char *scheme);
void vsm__lease_ds_close(vsm_lease_ds *l); /* NULL ignored */

/* Generations seen through heartbeats: note one; or note it and say
 * whether it was new (true also without a lease area, @l NULL). */
void vsm__lease_note_gen(vsm_lease_ds *l, uint64_t gen);
bool vsm__lease_gen_unseen(vsm_lease_ds *l, uint64_t gen);

#define VSM__LEASE_WAIT (1u << 0)       /* watch a stopped holder until dead */
#define VSM__LEASE_SAME_HOST (1u << 1)  /* only from a free lease or one of @host */

/* Container leases, by the record's slot and UUID. */
int vsm__lease_acquire(vsm_lease_ds *l, const struct vsm_record *r, const char *host,
		       unsigned int flags, uint64_t *lver, bool *took_over);
bool vsm__lease_held(vsm_lease_ds *l, const struct vsm_record *r, const char *host,
		     uint64_t *lver); /* false for @l NULL */
bool vsm__lease_acts_for(const vsm_lease_mgr *m, const char *host);
int vsm__lease_release(vsm_lease_ds *l, const struct vsm_record *r); /* @l NULL: 0 */
int vsm__lease_fence(vsm_lease_ds *l, const struct vsm_record *cur, uint64_t *lver);

/* Host migration (lease/handover.c, doc/host-migration.md): the steps,
 * run by @host (the source for BEGIN and CANCEL, the target for ACCEPT
 * and COMPLETE). *lver: the lease version after the step. @peer (may be
 * NULL) receives the other host's name. */
enum { VSM__HO_BEGIN = 1, VSM__HO_ACCEPT, VSM__HO_COMPLETE, VSM__HO_CANCEL };
int vsm__lease_handover(vsm_lease_ds *l, const struct vsm_record *r, const char *host, int op,
			const char *target, uint64_t *lver, char *peer, size_t peer_size);
/* 0 no handover (or a free lease), 1 begun, 2 accepted; the holder and the
 * target in @source and @target (either may be NULL); < 0 error. */
int vsm__lease_handover_state(vsm_lease_ds *l, const struct vsm_record *r, char *source,
			      char *target, size_t size);
/* This context is the admitted target of @r's handover, with a valid
 * heartbeat: it may write the container's devices (not its record). */
bool vsm__lease_admitted(vsm_lease_ds *l, const struct vsm_record *r);
/* This context held @r's lease and lost it (handed over, taken over). */
bool vsm__lease_was_held(vsm_lease_ds *l, const struct vsm_record *r);

typedef struct {
	uint64_t lver;      /* instance of the value in force (0: never used) */
	bool held;
	uint32_t slot;      /* heartbeat slot of the holding state directory */
	uint64_t gen;
	char node[65];
} vsm__lease_lockval;

/* The metadata lock's Disk Paxos register (lease/dslock.c). */
bool vsm__lease_plain(const vsm_lease_ds *l);
uint32_t vsm__lease_timeout_ms(const vsm_lease_ds *l);
int vsm__lease_lock_read(vsm_lease_ds *l, vsm__lease_lockval *out);
int vsm__lease_lock_propose(vsm_lease_ds *l, const char *node,
			    const vsm__lease_lockval *cur, bool take, bool *same_node);

/* What vsm_lease_status reports of one container (ops/leases.c). */
typedef struct {
	int state;          /* VSM_LEASE_* */
	int64_t since, stopped;
	uint64_t version;
	int mine;
	char owner[65];
} vsm__lease_view;

/* Judge the leases of @recs (one view each, in @out); @watch waits out
 * a renewal period first to tell stopped holders from live ones. */
int vsm__lease_status(vsm_lease_ds *l, const struct vsm_record *const *recs, size_t n,
		      bool watch, vsm__lease_view *out);
/* Join @host's heartbeat on @l now (vsm_lease_keep). */
int vsm__lease_keep(vsm_lease_ds *l, const char *host);
/* Remember that this state directory acts for @host. */
void vsm__lease_host_note(vsm_lease_mgr *m, const char *host);
/* Whether hosts are alive by their heartbeats (hostlive.c). */
enum {
	VSM__HB_NONE = 0,    /* no heartbeat slot bears the name */
	VSM__HB_LIVE = 1,    /* seen moving within the timeout, or renewed by us */
	VSM__HB_STOPPED = 2, /* present, not (yet) judged dead */
	VSM__HB_DEAD = 3,    /* seen standing still for the whole timeout */
};
/* Called for every named heartbeat slot of lease area @area (an index
 * in the caller's array); a host may bear several slots (an old
 * incarnation): the caller keeps the best. */
typedef void (*vsm__hb_cb)(void *payload, size_t area, const char *host, int state,
			   int64_t stopped_ms);
/* Look at the heartbeats of the lease areas @ls (of one context) and
 * judge each. @watch: when some heartbeat has not been watched long
 * enough to be judged (a fresh context), wait once, for every area
 * together, up to a renewal interval and a half, and look again. */
int vsm__lease_hosts_scan(vsm_lease_ds *const *ls, size_t n, bool watch, vsm__hb_cb cb,
			  void *payload);
/* The hosts this state directory acts for, read once (vsm__lease_acts_for
 * asks for one). */
int vsm__lease_acted_hosts(const vsm_lease_mgr *m, char ***out, size_t *count);
/* One renewal pass (manual mode); ms until the next one is due. */
int vsm__lease_renew_all(vsm_lease_mgr *m);

#endif /* VSM_LEASE_INT_H */
