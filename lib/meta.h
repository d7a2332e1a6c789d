/*
 * The datastore's metadata device: superblock, generation counter, lease
 * area and container record slots, all written through block I/O so the
 * same layout serves a directory, a LUN and a libvirt volume.
 * doc/datastore-layout.md describes the bytes.
 */
#ifndef VSM_META_H
#define VSM_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdev.h"
#include "vsm/common.h"

#define VSM_META_LAYOUT_VERSION 1

typedef struct {
	char uuid[VSM_UUID_STRLEN + 1];
	int64_t ctime;
	uint32_t block;        /* alignment of every area, 4096 */
	uint64_t gen_off;      /* generation block */
	uint64_t lease_off;    /* heartbeats, then leases */
	uint32_t max_hosts;    /* heartbeat slots */
	uint32_t lease_block;  /* bytes per lease sector (>= device block size) */
	uint32_t n_leases;     /* lease 0 guards the datastore; lease i+1 is slot i */
	uint32_t lease_timeout_ms;
	uint32_t renew_interval_ms;
	uint64_t record_off;
	uint32_t record_size;  /* bytes per record copy; each slot has two copies */
	uint32_t slot_count;
	uint64_t total_size;
} vsm_meta_geom;

/* Bytes of one lease record area: an owner sector plus one ballot sector
 * per host (for the Disk-Paxos path on devices without compare-and-write). */
#define VSM_META_LEASE_BYTES(g) ((uint64_t)(g)->lease_block * (1 + (g)->max_hosts))

typedef struct vsm_meta {
	vsm_bdev *bdev;
	char *ds_name;
	vsm_meta_geom geom;
} vsm_meta;

typedef enum {
	VSM_SLOT_EMPTY = 0,   /* never written */
	VSM_SLOT_FREE = 1,    /* newest copy is a tombstone */
	VSM_SLOT_USED = 2,
	VSM_SLOT_DAMAGED = 3, /* no copy is readable: never reused */
} vsm_slot_state;

/* Size the metadata device needs with the default geometry on a device
 * of the given logical block size. */
uint64_t vsm_meta_default_size(uint32_t block_size);

/* Read (or, when the device is blank and @format is true, write) the
 * superblock. Takes ownership of @bdev, also on failure. */
int vsm_meta_open(vsm_meta **out, vsm_bdev *bdev, const char *ds_name, bool format);
void vsm_meta_close(vsm_meta *m);

int vsm_meta_generation(vsm_meta *m, uint64_t *out);
/* Add one to the generation; @prev receives the value replaced. */
int vsm_meta_bump_generation(vsm_meta *m, uint64_t *prev, uint64_t *now);

/* Read a slot. For USED, @payload receives the JSON (malloc'd, NUL
 * terminated); for DAMAGED, @reason receives why (malloc'd). */
int vsm_meta_slot_read(vsm_meta *m, uint32_t slot, vsm_slot_state *state,
		       char **payload, size_t *len, char **reason);
/* Replace a slot's record atomically (@payload NULL: tombstone). Refuses
 * a DAMAGED slot. */
int vsm_meta_slot_write(vsm_meta *m, uint32_t slot, const char *payload, size_t len);

#endif /* VSM_META_H */
