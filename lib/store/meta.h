/*
 * The datastore's metadata device: superblock, generation counter, the
 * metadata lock and change ring, lease area and container record slots,
 * all written through block I/O so the same layout serves a directory, a
 * LUN and a libvirt volume. doc/datastore-layout.md describes the bytes.
 */
#ifndef VSM_META_H
#define VSM_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdev.h"
#include "vsm/common.h"

/* Layout 1 (0.1) is read and upgraded in place to layout 2. */
#define VSM_META_LAYOUT_VERSION 2

typedef struct {
	char uuid[VSM_UUID_STRLEN + 1];
	int64_t ctime;
	uint32_t version;      /* layout version on disk */
	uint32_t block;        /* alignment of every area, 4096 */
	uint64_t gen_off;      /* generation block */
	uint64_t lease_off;    /* heartbeats, then leases */
	uint32_t max_hosts;    /* heartbeat slots */
	uint32_t lease_block;  /* bytes per lease sector (>= device block size) */
	uint32_t lease_timeout_ms;
	uint32_t renew_interval_ms;
	uint64_t record_off;
	uint32_t record_size;  /* bytes per record copy; each slot has two copies */
	uint32_t base_slots;   /* slots of the first record area */
	uint64_t total_size;   /* end of the first record area */
	/* Layout 2: the metadata lock, the change ring, and record chunks
	 * appended after the first area as the datastore fills. */
	uint64_t lock_off;
	uint64_t ring_off;
	uint32_t ring_entries;
	uint32_t chunk_slots;
	uint64_t chunk_off;
	uint32_t n_chunks;
	uint32_t max_chunks;
	/* Derived: every slot there is now (base_slots + chunks). */
	uint32_t slot_count;
} vsm_meta_geom;

/* Bytes of one lease record area: an owner sector plus one ballot sector
 * per host (for the Disk-Paxos path on devices without compare-and-write). */
#define VSM_META_LEASE_BYTES(g) ((uint64_t)(g)->lease_block * (1 + (g)->max_hosts))

typedef struct vsm_meta {
	vsm_bdev *bdev;
	char *ds_name;
	vsm_meta_geom geom;
	uint64_t sb_seq;       /* sequence of the superblock in force */
} vsm_meta;

typedef enum {
	VSM_SLOT_EMPTY = 0,   /* never written */
	VSM_SLOT_FREE = 1,    /* newest copy is a tombstone */
	VSM_SLOT_USED = 2,
	VSM_SLOT_DAMAGED = 3, /* no copy is readable: never reused */
	VSM_SLOT_CONT = 4,    /* holds a piece of the record of another slot */
} vsm_slot_state;

/* What a slot read found (vsm_meta_slot_read). */
typedef struct {
	vsm_slot_state state;
	uint64_t seq;        /* sequence number of the copy in force */
	uint64_t stamp;      /* generation the copy was written at (0: layout 1) */
	uint32_t owner;      /* CONT: the slot whose record this piece belongs to */
	uint64_t owner_seq;  /* CONT: that record's sequence number */
	uint32_t *cont;      /* USED: slots holding the rest of the record */
	uint32_t n_cont;
	char *payload;       /* USED: the whole record, NUL terminated */
	size_t len;
	char *reason;        /* DAMAGED: why */
} vsm_slot_info;

void vsm_slot_info_clear(vsm_slot_info *si);

/* Size the metadata device needs with the default geometry on a device
 * of the given logical block size. */
uint64_t vsm_meta_default_size(uint32_t block_size);

/* Read (or, when the device is blank and @format is true, write) the
 * superblock. Takes ownership of @bdev, also on failure. A layout-1
 * datastore opens read as it is; vsm_meta_upgrade() moves it on. */
int vsm_meta_open(vsm_meta **out, vsm_bdev *bdev, const char *ds_name, bool format);
void vsm_meta_close(vsm_meta *m);
/* Read the superblock again (another host may have grown the area). */
int vsm_meta_reload(vsm_meta *m);
/* Under the metadata lock: rewrite a layout-1 superblock as layout 2. */
int vsm_meta_upgrade(vsm_meta *m);
/* Under the metadata lock: append one chunk of record slots. */
int vsm_meta_grow(vsm_meta *m);

/* Byte offset of lease area @idx (0: the datastore, s+1: slot s). */
uint64_t vsm_meta_lease_area_off(const vsm_meta_geom *g, uint32_t idx);

int vsm_meta_generation(vsm_meta *m, uint64_t *out);
/* Write the generation (under the metadata lock). */
int vsm_meta_set_generation(vsm_meta *m, uint64_t gen);

/* The change ring: entry for generation @gen names the slot it changed.
 * vsm_meta_ring_get returns 1 and the slot when the entry for @gen is
 * there, 0 when it was overwritten or never written. */
int vsm_meta_ring_put(vsm_meta *m, uint64_t gen, uint32_t slot);
int vsm_meta_ring_get(vsm_meta *m, uint64_t gen, uint32_t *slot);

/* Read a slot: its state and, for USED, the whole record (continuation
 * pieces gathered and checked). A record being rewritten while read gives
 * -VSM_EAGAIN; the caller reads again. */
int vsm_meta_slot_read(vsm_meta *m, uint32_t slot, vsm_slot_info *out);
/* Bytes of payload one slot carries when it names @n_cont others. */
size_t vsm_meta_slot_capacity(const vsm_meta *m, uint32_t n_cont);
/* Replace a slot's record atomically (@payload NULL: tombstone), stamped
 * with generation @stamp. A payload larger than one slot goes to the
 * continuation slots @cont (free slots the caller chose), written first.
 * *@seq receives the new sequence number. Refuses a DAMAGED slot. */
int vsm_meta_slot_write(vsm_meta *m, uint32_t slot, const char *payload, size_t len,
			uint64_t stamp, const uint32_t *cont, uint32_t n_cont, uint64_t *seq);
/* Continuation slots a payload of @len bytes needs. */
uint32_t vsm_meta_cont_needed(const vsm_meta *m, size_t len);

#endif /* VSM_META_H */
