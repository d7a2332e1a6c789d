/*
 * Metadata device layout and its atomic record replacement.
 *
 * Records are replaced A/B style: each slot has two copies; a new version
 * goes to the copy not holding the newest valid version, with a higher
 * sequence number and a CRC over header and payload. A crash mid-write
 * leaves a copy whose CRC fails, and readers fall back to the other copy:
 * old or new, never torn. A slot where no copy is valid but one is not
 * blank was damaged by something other than our own writes; it is
 * reported and never reused. A record larger than a slot continues in
 * other slots, written before the slot that names them, so the switch to
 * the new version is still one write.
 *
 * Only the holder of the metadata lock (lib/dslock.c) writes here; the
 * change ring tells other hosts which slot each generation changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "meta.h"

#define SB_MAGIC "VSMDSMT1"
#define GEN_MAGIC "VSMGEN01"
#define REC_MAGIC "VSMREC01"
#define SB_LEN 256
#define SB_CRC_OFF 252
#define REC_HDR1 40            /* layout-1 copy header */
#define REC_HDR2 80            /* layout-2 copy header */
#define REC_FLAG_TOMBSTONE 1u
#define REC_FLAG_CONT 2u
#define RING_ENTRY 32
#define RING_MAGIC 0x56524e47u /* "GNRV" */

#define DEFAULT_SLOTS 512
#define DEFAULT_HOSTS 64
#define CHUNK_SLOTS 1024
#define MAX_CHUNKS 1024        /* about a million containers */
#define LOCK_OFF (16 * 1024)
#define RING_OFF (32 * 1024)
#define RING_ENTRIES 1024      /* 32 KiB, up to lease_off */
#define ALIGN_MB (1024 * 1024)

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static uint64_t chunk_lease_bytes(const vsm_meta_geom *g)
{
	return align_up((uint64_t)g->chunk_slots * VSM_META_LEASE_BYTES(g), ALIGN_MB);
}

static uint64_t chunk_bytes(const vsm_meta_geom *g)
{
	return chunk_lease_bytes(g) + (uint64_t)g->chunk_slots * 2 * g->record_size;
}

/* The layout-2 fields for a geometry whose first area is laid out. */
static void geom_v2(vsm_meta_geom *g)
{
	g->version = 2;
	g->lock_off = LOCK_OFF;
	g->ring_off = RING_OFF;
	g->ring_entries = RING_ENTRIES;
	g->chunk_slots = CHUNK_SLOTS;
	g->chunk_off = align_up(g->total_size, ALIGN_MB);
	g->n_chunks = 0;
	g->max_chunks = MAX_CHUNKS;
	g->slot_count = g->base_slots;
}

static void geom_layout(vsm_meta_geom *g, uint32_t block_size, uint32_t slots)
{
	g->block = 4096;
	g->gen_off = 2 * 4096;
	g->lease_off = 64 * 1024;
	g->max_hosts = DEFAULT_HOSTS;
	g->lease_block = block_size > 512 ? block_size : 512;
	g->base_slots = slots;
	g->lease_timeout_ms = 8000;
	g->renew_interval_ms = 1000;
	g->record_size = 64 * 1024;
	g->record_off = align_up(g->lease_off + (uint64_t)g->lease_block * g->max_hosts +
				 VSM_META_LEASE_BYTES(g) * (slots + 1), ALIGN_MB);
	g->total_size = g->record_off + (uint64_t)slots * 2 * g->record_size;
	geom_v2(g);
}

uint64_t vsm_meta_default_size(uint32_t block_size)
{
	vsm_meta_geom g;

	geom_layout(&g, block_size, DEFAULT_SLOTS);
	return g.total_size;
}

uint64_t vsm_meta_lease_area_off(const vsm_meta_geom *g, uint32_t idx)
{
	uint64_t first = g->lease_off + (uint64_t)g->lease_block * g->max_hosts;
	uint32_t s, c, j;

	if (idx <= g->base_slots)
		return first + (uint64_t)idx * VSM_META_LEASE_BYTES(g);
	s = idx - 1 - g->base_slots;
	c = s / g->chunk_slots;
	j = s % g->chunk_slots;
	return g->chunk_off + (uint64_t)c * chunk_bytes(g) + (uint64_t)j * VSM_META_LEASE_BYTES(g);
}

static uint64_t copy_off(const vsm_meta *m, uint32_t slot, int copy)
{
	const vsm_meta_geom *g = &m->geom;
	uint32_t s, c, j;

	if (slot < g->base_slots)
		return g->record_off + ((uint64_t)slot * 2 + (uint64_t)copy) * g->record_size;
	s = slot - g->base_slots;
	c = s / g->chunk_slots;
	j = s % g->chunk_slots;
	return g->chunk_off + (uint64_t)c * chunk_bytes(g) + chunk_lease_bytes(g) +
	       ((uint64_t)j * 2 + (uint64_t)copy) * g->record_size;
}

static void sb_encode(uint8_t *b, const vsm_meta_geom *g, uint64_t seq)
{
	memset(b, 0, SB_LEN);
	memcpy(b, SB_MAGIC, 8);
	vsm__put_le32(b + 8, g->version);
	vsm__put_le32(b + 12, SB_LEN);
	vsm__put_le64(b + 16, seq);
	memcpy(b + 24, g->uuid, VSM_UUID_STRLEN);
	vsm__put_le64(b + 64, (uint64_t)g->ctime);
	vsm__put_le32(b + 72, g->block);
	vsm__put_le32(b + 76, g->base_slots);
	vsm__put_le64(b + 80, g->record_off);
	vsm__put_le32(b + 88, g->record_size);
	vsm__put_le32(b + 92, g->max_hosts);
	vsm__put_le64(b + 96, g->lease_off);
	vsm__put_le32(b + 104, g->lease_block);
	vsm__put_le32(b + 108, g->lease_timeout_ms);
	vsm__put_le32(b + 112, g->renew_interval_ms);
	vsm__put_le32(b + 116, g->base_slots + 1);
	vsm__put_le64(b + 120, g->gen_off);
	vsm__put_le64(b + 128, g->total_size);
	if (g->version >= 2) {
		vsm__put_le64(b + 136, g->lock_off);
		vsm__put_le64(b + 144, g->ring_off);
		vsm__put_le32(b + 152, g->ring_entries);
		vsm__put_le32(b + 156, g->chunk_slots);
		vsm__put_le64(b + 160, g->chunk_off);
		vsm__put_le32(b + 168, g->n_chunks);
		vsm__put_le32(b + 172, g->max_chunks);
	}
	vsm__put_le32(b + SB_CRC_OFF, vsm__crc32(b, SB_CRC_OFF));
}

static bool all_zero(const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* The layout-2 fields of @t are sane for its first area. */
static bool v2_sane(const vsm_meta_geom *t)
{
	uint64_t first_leases = t->lease_off + (uint64_t)t->lease_block * t->max_hosts;

	(void)first_leases;
	return t->lock_off >= t->gen_off + 4096 && t->lock_off % 4096 == 0 &&
	       t->lock_off + t->lease_block <= t->ring_off && t->ring_off % 512 == 0 &&
	       t->ring_entries >= 64 && t->ring_entries <= 65536 &&
	       t->ring_off + (uint64_t)t->ring_entries * RING_ENTRY <= t->lease_off &&
	       t->chunk_slots >= 16 && t->chunk_slots <= 65536 &&
	       t->chunk_off >= t->total_size && t->chunk_off % 4096 == 0 &&
	       t->max_chunks <= MAX_CHUNKS && t->n_chunks <= t->max_chunks &&
	       (uint64_t)t->base_slots + (uint64_t)t->n_chunks * t->chunk_slots < UINT32_MAX;
}

/* 1: valid, 0: blank, <0: damaged (reason set in *why). */
static int sb_decode(const uint8_t *b, vsm_meta_geom *g, uint64_t *seq, const char **why)
{
	vsm_meta_geom t;

	if (all_zero(b, SB_LEN))
		return 0;
	if (memcmp(b, SB_MAGIC, 8) != 0) {
		*why = "bad magic";
		return -1;
	}
	if (vsm__get_le32(b + SB_CRC_OFF) != vsm__crc32(b, SB_CRC_OFF)) {
		*why = "checksum mismatch";
		return -1;
	}
	memset(&t, 0, sizeof(t));
	t.version = vsm__get_le32(b + 8);
	if (t.version < 1 || t.version > VSM_META_LAYOUT_VERSION) {
		*why = "unsupported layout version";
		return -2;
	}
	memcpy(t.uuid, b + 24, VSM_UUID_STRLEN);
	t.ctime = (int64_t)vsm__get_le64(b + 64);
	t.block = vsm__get_le32(b + 72);
	t.base_slots = vsm__get_le32(b + 76);
	t.record_off = vsm__get_le64(b + 80);
	t.record_size = vsm__get_le32(b + 88);
	t.max_hosts = vsm__get_le32(b + 92);
	t.lease_off = vsm__get_le64(b + 96);
	t.lease_block = vsm__get_le32(b + 104);
	t.lease_timeout_ms = vsm__get_le32(b + 108);
	t.renew_interval_ms = vsm__get_le32(b + 112);
	t.gen_off = vsm__get_le64(b + 120);
	t.total_size = vsm__get_le64(b + 128);
	/* The CRC only proves we wrote it; still refuse a geometry we would
	 * never have written, since it steers every later offset. */
	if (!vsm__uuid_valid(t.uuid) || t.block != 4096 || t.base_slots == 0 ||
	    t.base_slots > 65536 || t.record_size < 4096 || t.record_size > (16u << 20) ||
	    t.record_size % 4096 || t.lease_block < 512 || t.lease_block > 4096 ||
	    t.max_hosts == 0 || t.max_hosts > 4096 ||
	    vsm__get_le32(b + 116) != t.base_slots + 1 ||
	    t.gen_off < 8192 || t.gen_off + 4096 > t.lease_off ||
	    t.record_off < t.lease_off + (uint64_t)t.lease_block * t.max_hosts +
			   VSM_META_LEASE_BYTES(&t) * (t.base_slots + 1) ||
	    t.total_size != t.record_off + (uint64_t)t.base_slots * 2 * t.record_size) {
		*why = "impossible geometry";
		return -1;
	}
	if (t.version == 1) {
		/* Upgraded in memory only; vsm_meta_upgrade() writes it. */
		geom_v2(&t);
		t.version = 1;
	} else {
		t.lock_off = vsm__get_le64(b + 136);
		t.ring_off = vsm__get_le64(b + 144);
		t.ring_entries = vsm__get_le32(b + 152);
		t.chunk_slots = vsm__get_le32(b + 156);
		t.chunk_off = vsm__get_le64(b + 160);
		t.n_chunks = vsm__get_le32(b + 168);
		t.max_chunks = vsm__get_le32(b + 172);
		if (!v2_sane(&t)) {
			*why = "impossible geometry";
			return -1;
		}
	}
	t.slot_count = t.base_slots + t.n_chunks * t.chunk_slots;
	*g = t;
	*seq = vsm__get_le64(b + 16);
	return 1;
}

static int gen_write(vsm_meta *m, uint64_t gen)
{
	uint8_t blk[512];

	memset(blk, 0, sizeof(blk));
	memcpy(blk, GEN_MAGIC, 8);
	vsm__put_le64(blk + 8, gen);
	vsm__put_le32(blk + 16, vsm__crc32(blk, 16));
	return vsm_bdev_write(m->bdev, blk, sizeof(blk), m->geom.gen_off);
}

/* Write the superblock copy that does not hold the one in force. */
static int sb_write(vsm_meta *m, const vsm_meta_geom *g)
{
	uint8_t sb[SB_LEN];
	uint64_t seq = m->sb_seq + 1;
	int rc;

	sb_encode(sb, g, seq);
	/* Odd sequences live in copy A, even ones in B: the copy in force is
	 * never the one overwritten. */
	if ((rc = vsm_bdev_write(m->bdev, sb, SB_LEN, (seq & 1) ? 0 : 4096)) < 0 ||
	    (rc = vsm_bdev_flush(m->bdev)) < 0)
		return rc;
	m->sb_seq = seq;
	m->geom = *g;
	return 0;
}

static int format(vsm_meta *m)
{
	uint8_t sb[SB_LEN];
	uint64_t size = 0;
	uint32_t slots = DEFAULT_SLOTS;
	int rc;

	if ((rc = vsm_bdev_size(m->bdev, &size)) < 0)
		return rc;
	geom_layout(&m->geom, vsm_bdev_block_size(m->bdev), slots);
	/* A fixed-size device (a LUN) gets as many slots as fit. */
	while (m->geom.total_size > size && slots > 16)
		geom_layout(&m->geom, vsm_bdev_block_size(m->bdev), slots /= 2);
	if (m->geom.total_size > size)
		return vsm_err(VSM_ENOSPC, "datastore '%s': metadata device holds %llu bytes, "
			       "needs at least %llu", m->ds_name, (unsigned long long)size,
			       (unsigned long long)m->geom.total_size);
	vsm__uuid_new(m->geom.uuid);
	m->geom.ctime = (int64_t)time(NULL);
	/* Generation first: a superblock is only ever visible with a valid
	 * generation block behind it. */
	if ((rc = gen_write(m, 1)) < 0 || (rc = vsm_bdev_flush(m->bdev)) < 0)
		return rc;
	sb_encode(sb, &m->geom, 1);
	if ((rc = vsm_bdev_write(m->bdev, sb, SB_LEN, 0)) < 0 ||
	    (rc = vsm_bdev_write(m->bdev, sb, SB_LEN, 4096)) < 0 ||
	    (rc = vsm_bdev_flush(m->bdev)) < 0)
		return rc;
	m->sb_seq = 1;
	return 0;
}

/* Read both superblock copies; 1 valid geometry in @g, 0 blank. */
static int sb_load(vsm_meta *m, vsm_meta_geom *g, uint64_t *seq)
{
	uint8_t a[SB_LEN], b[SB_LEN];
	vsm_meta_geom ga, gb;
	uint64_t sa = 0, sb = 0;
	const char *wa = NULL, *wb = NULL;
	int ra, rb, rc;

	if ((rc = vsm_bdev_read(m->bdev, a, SB_LEN, 0)) < 0 ||
	    (rc = vsm_bdev_read(m->bdev, b, SB_LEN, 4096)) < 0)
		return rc;
	ra = sb_decode(a, &ga, &sa, &wa);
	rb = sb_decode(b, &gb, &sb, &wb);
	if (ra == -2 || rb == -2)
		return vsm_err(VSM_EVERSION, "datastore '%s': metadata layout version %u is not "
			       "supported (this library knows 1 to %d)", m->ds_name,
			       vsm__get_le32(ra == -2 ? a + 8 : b + 8), VSM_META_LAYOUT_VERSION);
	if (ra == 1 && (rb != 1 || sa >= sb)) {
		*g = ga;
		*seq = sa;
	} else if (rb == 1) {
		*g = gb;
		*seq = sb;
	} else if (ra == 0 && rb == 0) {
		return 0;
	} else {
		return vsm_err(VSM_ECORRUPT, "datastore '%s': metadata superblock is damaged (%s)",
			       m->ds_name, wa ? wa : wb);
	}
	if ((ra == 1 && rb == 1) && strcmp(ga.uuid, gb.uuid) != 0)
		return vsm_err(VSM_ECORRUPT, "datastore '%s': the two superblock copies name "
			       "different datastores", m->ds_name);
	return 1;
}

int vsm_meta_open(vsm_meta **out, vsm_bdev *bdev, const char *ds_name, bool do_format)
{
	vsm_meta *m;
	int rc;

	if (!(m = vsm__calloc(1, sizeof(*m))) || !(m->ds_name = vsm__strdup(ds_name))) {
		free(m);
		vsm_bdev_close(bdev);
		return -VSM_ENOMEM;
	}
	m->bdev = bdev;
	if ((rc = sb_load(m, &m->geom, &m->sb_seq)) < 0)
		goto fail;
	if (rc == 0) {
		if (!do_format) {
			rc = vsm_err(VSM_ENOTFOUND, "datastore '%s' is not formatted", ds_name);
			goto fail;
		}
		if ((rc = format(m)) < 0)
			goto fail;
	}
	*out = m;
	return 0;
fail:
	vsm_meta_close(m);
	return rc;
}

void vsm_meta_close(vsm_meta *m)
{
	if (!m)
		return;
	vsm_bdev_close(m->bdev);
	free(m->ds_name);
	free(m);
}

int vsm_meta_reload(vsm_meta *m)
{
	vsm_meta_geom g;
	uint64_t seq = 0;
	int rc = sb_load(m, &g, &seq);

	if (rc == 0)
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': metadata superblock vanished",
			     m->ds_name);
	if (rc < 0)
		return rc;
	if (strcmp(g.uuid, m->geom.uuid) != 0)
		return vsm_err(VSM_ECORRUPT, "datastore '%s' now holds datastore %s, not %s",
			       m->ds_name, g.uuid, m->geom.uuid);
	/* Geometry only ever grows: keep what this process already knows if a
	 * read raced a rewrite. */
	if (seq >= m->sb_seq) {
		m->geom = g;
		m->sb_seq = seq;
	}
	return 0;
}

/* The change ring holds nothing but entries we write (or zeros): what a
 * torn earlier upgrade left there is ours, anything else is not. */
static bool ring_ours(const uint8_t *area, uint64_t len)
{
	uint64_t at;

	for (at = 0; at + RING_ENTRY <= len; at += RING_ENTRY) {
		const uint8_t *e = area + at;

		if (all_zero(e, RING_ENTRY))
			continue;
		if (vsm__get_le32(e + 12) != RING_MAGIC || vsm__get_le32(e + 28) != vsm__crc32(e, 28))
			return false;
	}
	return true;
}

int vsm_meta_upgrade(vsm_meta *m)
{
	vsm_meta_geom g;
	uint8_t *area;
	uint64_t len;
	int rc;

	if ((rc = vsm_meta_reload(m)) < 0 || m->geom.version >= 2)
		return rc;
	/* Layout 1 never wrote between the generation block and the
	 * heartbeats; only the lock this upgrade runs under, and the ring of
	 * an upgrade whose superblock write was torn, may be there. */
	len = (uint64_t)m->geom.ring_entries * RING_ENTRY;
	if (!(area = calloc(1, len)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	rc = vsm_bdev_read(m->bdev, area, len, m->geom.ring_off);
	if (rc == 0 && !ring_ours(area, len))
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': cannot upgrade the metadata layout: "
			     "the area it needs holds data libvsm did not write", m->ds_name);
	free(area);
	if (rc < 0)
		return rc;
	g = m->geom;
	g.version = 2;
	return sb_write(m, &g);
}

int vsm_meta_grow(vsm_meta *m)
{
	vsm_meta_geom g;
	uint8_t blk[4096];
	uint64_t end;
	int rc;

	if ((rc = vsm_meta_reload(m)) < 0)
		return rc;
	g = m->geom;
	if (g.version < 2)
		return vsm_err(VSM_EINTERNAL, "datastore '%s': grow before upgrade", m->ds_name);
	if (g.n_chunks >= g.max_chunks)
		return vsm_err(VSM_ENOSPC, "datastore '%s': all %u container slots are in use",
			       m->ds_name, g.slot_count);
	/* Make sure the device can hold the chunk before anyone is told it
	 * exists: a file grows, a LUN that is too small says ENOSPC. */
	end = g.chunk_off + (uint64_t)(g.n_chunks + 1) * chunk_bytes(&g);
	memset(blk, 0, sizeof(blk));
	if ((rc = vsm_bdev_write(m->bdev, blk, sizeof(blk), end - sizeof(blk))) < 0) {
		if (rc == -VSM_ENOSPC)
			return vsm_err(VSM_ENOSPC, "datastore '%s': all %u container slots are in "
				       "use and the metadata device has no room for more",
				       m->ds_name, g.slot_count);
		return rc;
	}
	g.n_chunks++;
	g.slot_count = g.base_slots + g.n_chunks * g.chunk_slots;
	return sb_write(m, &g);
}

static int gen_read(vsm_meta *m, uint64_t *out)
{
	uint8_t blk[512];
	int rc = vsm_bdev_read(m->bdev, blk, 512, m->geom.gen_off);

	if (rc < 0)
		return rc;
	if (memcmp(blk, GEN_MAGIC, 8) != 0 || vsm__get_le32(blk + 16) != vsm__crc32(blk, 16))
		return vsm_err(VSM_ECORRUPT, "datastore '%s': generation block is damaged",
			       m->ds_name);
	*out = vsm__get_le64(blk + 8);
	return 0;
}

int vsm_meta_generation(vsm_meta *m, uint64_t *out)
{
	return gen_read(m, out);
}

int vsm_meta_set_generation(vsm_meta *m, uint64_t gen)
{
	return gen_write(m, gen);
}

/* --- the change ring --- */

static uint64_t ring_sector(const vsm_meta *m, uint64_t gen, size_t *at)
{
	uint64_t i = gen % m->geom.ring_entries;

	*at = (size_t)(i % (512 / RING_ENTRY)) * RING_ENTRY;
	return m->geom.ring_off + i / (512 / RING_ENTRY) * 512;
}

int vsm_meta_ring_put(vsm_meta *m, uint64_t gen, uint32_t slot)
{
	uint8_t sec[512], *e;
	size_t at;
	uint64_t off = ring_sector(m, gen, &at);
	int rc;

	if ((rc = vsm_bdev_read(m->bdev, sec, sizeof(sec), off)) < 0)
		return rc;
	e = sec + at;
	memset(e, 0, RING_ENTRY);
	vsm__put_le64(e, gen);
	vsm__put_le32(e + 8, slot);
	vsm__put_le32(e + 12, RING_MAGIC);
	vsm__put_le32(e + 28, vsm__crc32(e, 28));
	return vsm_bdev_write(m->bdev, sec, sizeof(sec), off);
}

int vsm_meta_ring_get(vsm_meta *m, uint64_t gen, uint32_t *slot)
{
	uint8_t sec[512], *e;
	size_t at;
	int rc = vsm_bdev_read(m->bdev, sec, sizeof(sec), ring_sector(m, gen, &at));

	if (rc < 0)
		return rc;
	e = sec + at;
	if (vsm__get_le32(e + 12) != RING_MAGIC || vsm__get_le32(e + 28) != vsm__crc32(e, 28) ||
	    vsm__get_le64(e) != gen)
		return 0;
	*slot = vsm__get_le32(e + 8);
	return 1;
}

/* --- record slots --- */

typedef struct {
	int state; /* 0 blank, 1 valid, -1 damaged */
	uint32_t version;
	uint64_t seq;
	uint32_t flags;
	uint32_t len;       /* payload bytes in this copy */
	uint32_t hdr;       /* bytes before the payload */
	uint32_t n_cont;
	uint64_t stamp;
	uint32_t total_len, total_crc;
	uint32_t owner, piece;
	uint64_t owner_seq;
	const char *why;
} copy_info;

/* Read one copy into @buf (record_size bytes) and judge it. */
static int copy_read(vsm_meta *m, uint32_t slot, int copy, uint8_t *buf, copy_info *ci)
{
	uint32_t first = m->geom.record_size < 4096 ? m->geom.record_size : 4096, crc;
	uint64_t off = copy_off(m, slot, copy);
	int rc;

	memset(ci, 0, sizeof(*ci));
	if ((rc = vsm_bdev_read(m->bdev, buf, first, off)) < 0)
		return rc;
	if (all_zero(buf, REC_HDR1))
		return 0;
	ci->state = -1;
	if (memcmp(buf, REC_MAGIC, 8) != 0) {
		ci->why = "bad magic";
		return 0;
	}
	ci->version = vsm__get_le32(buf + 8);
	if (ci->version != 1 && ci->version != 2) {
		ci->why = "unsupported record format version";
		return 0;
	}
	ci->flags = vsm__get_le32(buf + 12);
	ci->seq = vsm__get_le64(buf + 16);
	ci->len = vsm__get_le32(buf + 28);
	ci->hdr = REC_HDR1;
	if (vsm__get_le32(buf + 24) != slot) {
		ci->why = "record belongs to another slot";
		return 0;
	}
	if (ci->version == 2) {
		ci->n_cont = vsm__get_le32(buf + 36);
		ci->stamp = vsm__get_le64(buf + 40);
		ci->total_len = vsm__get_le32(buf + 48);
		ci->total_crc = vsm__get_le32(buf + 52);
		ci->owner = vsm__get_le32(buf + 56);
		ci->piece = vsm__get_le32(buf + 60);
		ci->owner_seq = vsm__get_le64(buf + 64);
		if (ci->n_cont > (m->geom.record_size - REC_HDR2) / 4) {
			ci->why = "continuation list past the slot";
			return 0;
		}
		ci->hdr = REC_HDR2 + 4 * ci->n_cont;
	}
	if (ci->len > m->geom.record_size - ci->hdr) {
		ci->why = "payload length past the slot";
		return 0;
	}
	if (ci->hdr + ci->len > first &&
	    (rc = vsm_bdev_read(m->bdev, buf + first, ci->hdr + ci->len - first, off + first)) < 0)
		return rc;
	crc = vsm__get_le32(buf + 32);
	vsm__put_le32(buf + 32, 0);
	if (crc != vsm__crc32(buf, ci->hdr + ci->len)) {
		ci->why = "checksum mismatch";
		return 0;
	}
	if (ci->version == 1)
		ci->total_len = ci->len;
	ci->state = 1;
	return 0;
}

/* Which copy holds the newest valid version: 0/1, or -1 if none. */
static int newest(const copy_info ci[2])
{
	if (ci[0].state == 1 && (ci[1].state != 1 || ci[0].seq >= ci[1].seq))
		return 0;
	return ci[1].state == 1 ? 1 : -1;
}

static int slot_check(vsm_meta *m, uint32_t slot)
{
	if (slot >= m->geom.slot_count && vsm_meta_reload(m) < 0)
		return -vsm__error_code();
	if (slot >= m->geom.slot_count)
		return vsm_err(VSM_EINVAL, "datastore '%s': slot %u out of range",
			       m->ds_name, slot);
	return 0;
}

void vsm_slot_info_clear(vsm_slot_info *si)
{
	free(si->cont);
	free(si->payload);
	free(si->reason);
	memset(si, 0, sizeof(*si));
}

/* Read both copies of @slot; *@k the one in force (-1 none). */
static int slot_copies(vsm_meta *m, uint32_t slot, uint8_t *buf[2], copy_info ci[2], int *k)
{
	int c, rc;

	for (c = 0; c < 2; c++) {
		if (!buf[c] && !(buf[c] = malloc(m->geom.record_size)))
			return vsm_err(VSM_ENOMEM, "out of memory");
		if ((rc = copy_read(m, slot, c, buf[c], &ci[c])) < 0)
			return rc;
	}
	*k = newest(ci);
	return 0;
}

/* Append the pieces a record continues into; -VSM_EBUSY if one does not
 * belong to this version (the record is being rewritten). */
static int gather(vsm_meta *m, uint32_t slot, const copy_info *head, const uint8_t *hbuf,
		  vsm_slot_info *out)
{
	uint8_t *buf[2] = {NULL, NULL};
	copy_info ci[2];
	size_t have = head->len;
	uint32_t i;
	int rc = 0, k;

	if (head->len > head->total_len ||
	    head->total_len > (size_t)(head->n_cont + 1) * m->geom.record_size)
		return vsm_err(VSM_EBUSY, "record length past its pieces");
	if (!(out->payload = malloc((size_t)head->total_len + 1)) ||
	    (head->n_cont && !(out->cont = calloc(head->n_cont, sizeof(uint32_t)))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	memcpy(out->payload, hbuf + head->hdr, head->len);
	for (i = 0; i < head->n_cont && rc == 0; i++) {
		uint32_t cs = vsm__get_le32(hbuf + REC_HDR2 + 4 * i);
		const copy_info *p;

		out->cont[i] = cs;
		out->n_cont = i + 1;
		if (cs == slot || (rc = slot_check(m, cs)) < 0 ||
		    (rc = slot_copies(m, cs, buf, ci, &k)) < 0)
			break;
		p = k >= 0 ? &ci[k] : NULL;
		if (!p || p->version != 2 || !(p->flags & REC_FLAG_CONT) || p->owner != slot ||
		    p->owner_seq != head->seq || p->piece != i + 1 ||
		    have + p->len > head->total_len) {
			rc = vsm_err(VSM_EBUSY, "piece %u of the record is not in slot %u", i + 1,
				     cs);
			break;
		}
		memcpy(out->payload + have, buf[k] + p->hdr, p->len);
		have += p->len;
	}
	free(buf[0]);
	free(buf[1]);
	if (rc < 0)
		return rc;
	if (have != head->total_len ||
	    (head->version == 2 && vsm__crc32(out->payload, have) != head->total_crc))
		return vsm_err(VSM_EBUSY, "record pieces do not add up");
	out->payload[have] = '\0';
	out->len = have;
	return 0;
}

int vsm_meta_slot_read(vsm_meta *m, uint32_t slot, vsm_slot_info *out)
{
	uint8_t *buf[2] = {NULL, NULL};
	copy_info ci[2];
	int rc, k = -1;

	memset(out, 0, sizeof(*out));
	if ((rc = slot_check(m, slot)) < 0 || (rc = slot_copies(m, slot, buf, ci, &k)) < 0)
		goto out;
	if (k < 0) {
		bool damaged = ci[0].state < 0 || ci[1].state < 0;

		out->state = damaged ? VSM_SLOT_DAMAGED : VSM_SLOT_EMPTY;
		if (damaged && !(out->reason = vsm__strdup(ci[0].state < 0 ? ci[0].why
									   : ci[1].why)))
			rc = -VSM_ENOMEM;
		goto out;
	}
	out->seq = ci[k].seq;
	out->stamp = ci[k].stamp;
	if (ci[k].flags & REC_FLAG_TOMBSTONE) {
		out->state = VSM_SLOT_FREE;
	} else if (ci[k].flags & REC_FLAG_CONT) {
		out->state = VSM_SLOT_CONT;
		out->owner = ci[k].owner;
		out->owner_seq = ci[k].owner_seq;
	} else {
		out->state = VSM_SLOT_USED;
		rc = gather(m, slot, &ci[k], buf[k], out);
	}
out:
	free(buf[0]);
	free(buf[1]);
	if (rc < 0) {
		vsm_slot_info_clear(out);
		if (rc == -VSM_EBUSY)
			vsm_err(VSM_EBUSY, "datastore '%s': the record in slot %u changed while "
				"it was read", m->ds_name, slot);
	}
	return rc;
}

size_t vsm_meta_slot_capacity(const vsm_meta *m, uint32_t n_cont)
{
	return m->geom.record_size - REC_HDR2 - 4 * (size_t)n_cont;
}

uint32_t vsm_meta_cont_needed(const vsm_meta *m, size_t len)
{
	size_t per = m->geom.record_size - REC_HDR2;
	uint32_t n = 0;

	/* The head gives 4 bytes of its room to each piece it names. */
	while (len > vsm_meta_slot_capacity(m, n) + (size_t)n * per)
		n++;
	return n;
}

typedef struct {
	uint32_t flags;
	uint64_t stamp;
	const uint32_t *cont;
	uint32_t n_cont;
	uint32_t total_len, total_crc;
	uint32_t owner, piece;
	uint64_t owner_seq;
} copy_hdr;

/* Where the next version of @slot goes: the copy not in force, with the
 * next sequence number. Refuses a slot no copy of which is readable. */
typedef struct {
	int target;
	uint64_t seq;
} copy_plan;

static int copy_plan_for(vsm_meta *m, uint32_t slot, copy_plan *plan)
{
	uint8_t *buf[2] = {NULL, NULL};
	copy_info ci[2];
	int rc, k = -1;

	if ((rc = slot_check(m, slot)) < 0 || (rc = slot_copies(m, slot, buf, ci, &k)) < 0)
		goto out;
	if (k < 0 && (ci[0].state < 0 || ci[1].state < 0)) {
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': record slot %u is damaged; "
			     "refusing to overwrite it", m->ds_name, slot);
		goto out;
	}
	plan->target = k < 0 ? 0 : 1 - k;
	plan->seq = k < 0 ? 1 : ci[k].seq + 1;
out:
	free(buf[0]);
	free(buf[1]);
	return rc;
}

/* Write one copy of @slot as @plan says. */
static int copy_write(vsm_meta *m, uint32_t slot, const copy_plan *plan, const copy_hdr *h,
		      const char *data, size_t len)
{
	uint32_t hdr = REC_HDR2 + 4 * h->n_cont, i;
	uint8_t *buf = malloc(hdr + len);
	int rc;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	memset(buf, 0, hdr);
	memcpy(buf, REC_MAGIC, 8);
	vsm__put_le32(buf + 8, 2);
	vsm__put_le32(buf + 12, h->flags);
	vsm__put_le64(buf + 16, plan->seq);
	vsm__put_le32(buf + 24, slot);
	vsm__put_le32(buf + 28, (uint32_t)len);
	vsm__put_le32(buf + 36, h->n_cont);
	vsm__put_le64(buf + 40, h->stamp);
	vsm__put_le32(buf + 48, h->total_len);
	vsm__put_le32(buf + 52, h->total_crc);
	vsm__put_le32(buf + 56, h->owner);
	vsm__put_le32(buf + 60, h->piece);
	vsm__put_le64(buf + 64, h->owner_seq);
	for (i = 0; i < h->n_cont; i++)
		vsm__put_le32(buf + REC_HDR2 + 4 * i, h->cont[i]);
	if (len)
		memcpy(buf + hdr, data, len);
	vsm__put_le32(buf + 32, vsm__crc32(buf, hdr + len));
	rc = vsm_bdev_write(m->bdev, buf, hdr + len, copy_off(m, slot, plan->target));
	free(buf);
	return rc;
}

int vsm_meta_slot_write(vsm_meta *m, uint32_t slot, const char *payload, size_t len,
			uint64_t stamp, const uint32_t *cont, uint32_t n_cont, uint64_t *seq)
{
	copy_plan head, piece_plan;
	copy_hdr h;
	size_t head_len, per = m->geom.record_size - REC_HDR2, at;
	uint32_t i;
	int rc;

	if (!payload)
		len = 0;
	if (len > UINT32_MAX / 2)
		return vsm_err(VSM_EINVAL, "datastore '%s': record of %zu bytes is too large",
			       m->ds_name, len);
	if (vsm_meta_cont_needed(m, len) != n_cont)
		return vsm_err(VSM_EINTERNAL, "datastore '%s': record of %zu bytes needs %u "
			       "continuation slots, %u given", m->ds_name, len,
			       vsm_meta_cont_needed(m, len), n_cont);
	/* The head is read once: its next sequence number is what the pieces
	 * must name, and a damaged head is refused before anything is written. */
	if ((rc = copy_plan_for(m, slot, &head)) < 0)
		return rc;
	head_len = len < vsm_meta_slot_capacity(m, n_cont) ? len
							   : vsm_meta_slot_capacity(m, n_cont);
	for (i = 0, at = head_len; i < n_cont; i++) {
		size_t piece = len - at < per ? len - at : per;

		if (cont[i] == slot)
			return vsm_err(VSM_EINTERNAL, "continuation in the head slot");
		memset(&h, 0, sizeof(h));
		h.flags = REC_FLAG_CONT;
		h.stamp = stamp;
		h.owner = slot;
		h.piece = i + 1;
		h.owner_seq = head.seq;
		if ((rc = copy_plan_for(m, cont[i], &piece_plan)) < 0 ||
		    (rc = copy_write(m, cont[i], &piece_plan, &h, payload + at, piece)) < 0)
			return rc;
		at += piece;
	}
	memset(&h, 0, sizeof(h));
	h.flags = payload ? 0 : REC_FLAG_TOMBSTONE;
	h.stamp = stamp;
	h.cont = cont;
	h.n_cont = n_cont;
	h.total_len = (uint32_t)len;
	h.total_crc = vsm__crc32(payload ? payload : "", len);
	if ((rc = copy_write(m, slot, &head, &h, payload, head_len)) < 0)
		return rc;
	if (seq)
		*seq = head.seq;
	return 0;
}
