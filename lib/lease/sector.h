/*
 * The byte layout of the lease area's sectors: header, heartbeat,
 * owner (compare-and-write protocol) and ballot (Disk Paxos protocol).
 * Each sector is self-checking (magic + CRC), so a torn or foreign
 * sector is never mistaken for a valid one.
 */
#ifndef VSM_LEASE_SECTOR_H
#define VSM_LEASE_SECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsm/common.h"

/* Bytes of a sector that carry data; the rest of a lease_block is zero. */
#define LS_SECTOR 512
#define LS_NAME_MAX 64

#define LS_MODE_CAW 1
#define LS_MODE_PLAIN 2

/* A lease's value: who holds it since when, at which version; and the
 * host migration under way, if any (doc/host-migration.md). */
#define LV_FREE 1u
#define LV_HO_NONE 0u     /* no handover */
#define LV_HO_BEGUN 1u    /* the holder named a target; only the holder writes */
#define LV_HO_ACCEPTED 2u /* the target is admitted too (ho_slot, ho_gen) */
typedef struct {
	uint64_t lver;       /* version (Paxos instance) this value belongs to */
	uint32_t flags;      /* LV_FREE */
	uint32_t owner_slot; /* heartbeat slot of the holder */
	uint64_t owner_gen;  /* generation of that slot when acquired */
	int64_t since_ms;    /* holder's wall clock at acquisition */
	char owner[LS_NAME_MAX + 1];
	char uuid[VSM_UUID_STRLEN + 1]; /* container the lease is for */
	uint32_t ho_state;   /* LV_HO_*; the fields below are zero without one */
	uint32_t ho_slot;    /* target's heartbeat slot once accepted */
	uint64_t ho_gen;     /* its generation when it accepted */
	char ho_host[LS_NAME_MAX + 1]; /* target host */
} vsm_lv;

/* Lease area format: 2 once a handover has been begun on the datastore
 * (sectors may then be version 2, which 0.1 readers refuse). */
#define LS_FORMAT_MAX 2
typedef struct {
	uint32_t format;     /* 1 or 2; 0 encodes as 1 */
	uint32_t mode;       /* LS_MODE_* */
	uint32_t timeout_ms;
	uint32_t renew_ms;
} vsm_lhdr;

typedef struct {
	uint32_t slot;
	uint64_t gen;        /* bumped each time a host claims the slot anew */
	uint64_t counter;    /* moves on every renewal */
	uint64_t nonce;      /* claimer's random tag (plain-protocol claims) */
	int64_t wall_ms;     /* writer's wall clock, for display only */
	char name[LS_NAME_MAX + 1];
} vsm_hbrec;

typedef struct {
	uint32_t slot;       /* writer's heartbeat slot (= sector index) */
	uint64_t gen;
	uint64_t lver;       /* instance the ballot fields belong to */
	uint64_t mbal, bal;
	vsm_lv inp;          /* value accepted at @bal */
	vsm_lv dec;          /* latest value this writer knows decided (dec.lver) */
} vsm_ballot;

/* Decoders return 1 for a valid sector, 0 for a blank one, -1 otherwise. */
void ls_hdr_encode(uint8_t *b, const vsm_lhdr *h);
int ls_hdr_decode(const uint8_t *b, vsm_lhdr *h);
void ls_hb_encode(uint8_t *b, const vsm_hbrec *h);
int ls_hb_decode(const uint8_t *b, vsm_hbrec *h);
void ls_owner_encode(uint8_t *b, const vsm_lv *v);
int ls_owner_decode(const uint8_t *b, vsm_lv *v);
void ls_ballot_encode(uint8_t *b, const vsm_ballot *v);
int ls_ballot_decode(const uint8_t *b, vsm_ballot *v);

/* The generation block as meta.c writes it (read with the heartbeats). */
int ls_gen_decode(const uint8_t *b, uint64_t *gen);

#endif /* VSM_LEASE_SECTOR_H */
