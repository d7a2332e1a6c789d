/*
 * What the files of lib/lease share: the state of a context's leases
 * (heartbeats written, leases held, owner sectors cached) and the
 * helpers more than one file calls. Private to lib/lease.
 *   observe.c    time, sector I/O, what the heartbeat area and a lease say
 *   heartbeat.c  heartbeats, the renewal thread, opening a lease area
 *   paxos.c      Disk Paxos rounds; the metadata lock's register
 *   acquire.c    container leases: acquire, release, fence, status
 *   handover.c   host migration: handing a lease over to another host
 */
#ifndef VSM_LEASE_PRIV_H
#define VSM_LEASE_PRIV_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "events.h"
#include "meta.h"
#include "record.h"
#include "lease.h"
#include "sector.h"

/* What this process has seen of one heartbeat slot. */
typedef struct {
	int state;          /* 1 valid, 0 blank, -1 unreadable */
	vsm_hbrec rec;
	int64_t first_seen; /* completion of the first read that returned rec */
	int64_t last_start; /* start of the latest read that still returned rec */
	bool moved;         /* a change of this slot has been seen */
} hb_obs;

/* A heartbeat this context writes (one per host and datastore). */
typedef struct lease_hb {
	char host[LS_NAME_MAX + 1];
	uint32_t slot;
	uint64_t gen, counter, nonce;
	int64_t deadline; /* monotonic ms until which our leases are ours; 0: none */
	bool stolen;      /* another host claimed the slot: never write it again */
	struct lease_hb *next;
} lease_hb;

/* A container lease this context acquired. */
typedef struct lease_held {
	uint32_t slot; /* container record slot (lease index slot + 1) */
	char uuid[VSM_UUID_STRLEN + 1];
	char *container;
	lease_hb *hb;
	uint64_t lver;
	bool lost;
	int ho;          /* HO_* : our part in a handover of this lease */
	uint8_t *mine;   /* owner sector as we wrote it (compare-and-write) */
	struct lease_held *next;
} lease_held;

/* Owner sectors as this context last wrote them on release: the next
 * acquisition of the same lease tries them as its expectation, which
 * makes an uncontended acquire one atomic I/O. */
typedef struct lease_cache {
	uint32_t idx;
	uint8_t *bytes;
	struct lease_cache *next;
} lease_cache;

struct vsm_lease_ds {
	vsm_lease_mgr *mgr;
	char *name;         /* the datastore's, for messages and events */
	char *scheme;       /* its backend's, for messages */
	vsm_meta *meta;
	vsm_bdev *bdev;
	bool plain;
	uint32_t format;    /* of the lease area header (LS_FORMAT_MAX) */
	uint32_t timeout, renew, margin;
	uint32_t max_hosts, lb;
	uint64_t gen_off, hb_off, areas_off, area_bytes;
	hb_obs *obs;
	bool watched_once;
	lease_hb *hbs;
	lease_held *held;
	lease_cache *cache;
	uint64_t seen_gen;
	int64_t next_due;
	struct vsm_lease_ds *next;
};

struct vsm_lease_mgr {
	vsm_lease_env env;  /* state directory, event hub, log */
	pthread_mutex_t lock; /* everything above; held during lease I/O */
	pthread_cond_t cond;
	pthread_t thread;
	bool running, stopping, manual;
	vsm_lease_ds *list;
	uint64_t list_gen;  /* moves when a datastore leaves the list */
	unsigned int seed;
};

enum { J_FREE, J_OURS, J_LIVE, J_STOPPED, J_DEAD };
enum { HO_NONE, HO_SOURCE, HO_TARGET };
enum { PX_OK = 0, PX_AGAIN = 1 };

/* observe.c */
int64_t ls_mono_ms(void);
int64_t ls_wall_ms(void);
void ls_sleep_ms(int64_t ms);
void ls_fmt_time(char *buf, size_t size, int64_t ms);
void ls_lease_log(const vsm_lease_mgr *m, int level, const char *fmt, ...)
	VSM_PRINTF(3, 4);
uint64_t ls_rand64(vsm_lease_mgr *m);
uint64_t ls_area_off(const vsm_lease_ds *l, uint32_t idx);
uint8_t *ls_sector_buf(const vsm_lease_ds *l);
int ls_obs_refresh(vsm_lease_ds *l, uint64_t *gen_out);
int ls_judge(const vsm_lease_ds *l, const vsm_lv *v, const char *uuid,
		 const lease_hb *me, int64_t *stopped_ms);
int ls_lease_read(vsm_lease_ds *l, uint32_t idx, vsm_lv *cur, uint8_t **raw,
		      uint64_t *inst_max);
bool ls_lv_same(const vsm_lv *a, const vsm_lv *b);

int ls_judge_slot(const vsm_lease_ds *l, uint32_t slot, uint64_t gen, const char *name,
		  int64_t *stopped_ms);

/* handover.c: the renewal pass's look at handovers this context is in */
void ls_handover_tick(vsm_lease_ds *l);
bool ls_handover_source_holds(vsm_lease_ds *l, lease_held *e);
/* acquire.c, shared with handover.c */
lease_held *ls_held_find(vsm_lease_ds *l, uint32_t slot, const char *uuid);
int ls_held_set(vsm_lease_ds *l, const struct vsm_record *r, lease_hb *hb, uint64_t lver);

/* heartbeat.c */
bool ls_state_host_known(const vsm_lease_mgr *m, const char *host);
int ls_hb_join(vsm_lease_ds *l, const char *host, lease_hb **out);

/* paxos.c */
int ls_paxos(vsm_lease_ds *l, uint32_t idx, const lease_hb *me, uint64_t inst,
		 const vsm_lv *prop, const vsm_lv *dec, vsm_lv *chosen);

/* observe.c */
int ls_read_settled(vsm_lease_ds *l, uint8_t *buf, size_t len, uint64_t off,
			int (*bad)(vsm_lease_ds *l, const uint8_t *buf, size_t len));

/* observe.c: refuse a damaged owner sector / lease area (read_settled) */
int ls_owner_bad(vsm_lease_ds *l, const uint8_t *buf, size_t len);
int ls_area_bad(vsm_lease_ds *l, const uint8_t *buf, size_t len);

#endif /* VSM_LEASE_PRIV_H */
