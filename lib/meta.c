/*
 * Metadata device layout and its atomic record replacement.
 *
 * Records are replaced A/B style: each slot has two copies; a new version
 * goes to the copy not holding the newest valid version, with a higher
 * sequence number and a CRC over header and payload. A crash mid-write
 * leaves a copy whose CRC fails, and readers fall back to the other copy:
 * old or new, never torn. A slot where no copy is valid but one is not
 * blank was damaged by something other than our own writes; it is
 * reported and never reused.
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
#define REC_HDR 40
#define REC_FORMAT_VERSION 1
#define REC_FLAG_TOMBSTONE 1u

#define DEFAULT_SLOTS 512
#define DEFAULT_HOSTS 64
#define ALIGN_MB (1024 * 1024)

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static void geom_layout(vsm_meta_geom *g, uint32_t block_size, uint32_t slots)
{
	g->block = 4096;
	g->gen_off = 2 * 4096;
	g->lease_off = 64 * 1024;
	g->max_hosts = DEFAULT_HOSTS;
	g->lease_block = block_size > 512 ? block_size : 512;
	g->slot_count = slots;
	g->n_leases = slots + 1;
	g->lease_timeout_ms = 8000;
	g->renew_interval_ms = 1000;
	g->record_size = 64 * 1024;
	g->record_off = align_up(g->lease_off + (uint64_t)g->lease_block * g->max_hosts +
				 VSM_META_LEASE_BYTES(g) * g->n_leases, ALIGN_MB);
	g->total_size = g->record_off + (uint64_t)g->slot_count * 2 * g->record_size;
}

uint64_t vsm_meta_default_size(uint32_t block_size)
{
	vsm_meta_geom g;

	geom_layout(&g, block_size, DEFAULT_SLOTS);
	return g.total_size;
}

static void sb_encode(uint8_t *b, const vsm_meta_geom *g, uint64_t seq)
{
	memset(b, 0, SB_LEN);
	memcpy(b, SB_MAGIC, 8);
	vsm__put_le32(b + 8, VSM_META_LAYOUT_VERSION);
	vsm__put_le32(b + 12, SB_LEN);
	vsm__put_le64(b + 16, seq);
	memcpy(b + 24, g->uuid, VSM_UUID_STRLEN);
	vsm__put_le64(b + 64, (uint64_t)g->ctime);
	vsm__put_le32(b + 72, g->block);
	vsm__put_le32(b + 76, g->slot_count);
	vsm__put_le64(b + 80, g->record_off);
	vsm__put_le32(b + 88, g->record_size);
	vsm__put_le32(b + 92, g->max_hosts);
	vsm__put_le64(b + 96, g->lease_off);
	vsm__put_le32(b + 104, g->lease_block);
	vsm__put_le32(b + 108, g->lease_timeout_ms);
	vsm__put_le32(b + 112, g->renew_interval_ms);
	vsm__put_le32(b + 116, g->n_leases);
	vsm__put_le64(b + 120, g->gen_off);
	vsm__put_le64(b + 128, g->total_size);
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
	if (vsm__get_le32(b + 8) != VSM_META_LAYOUT_VERSION) {
		*why = "unsupported layout version";
		return -2;
	}
	memset(&t, 0, sizeof(t));
	memcpy(t.uuid, b + 24, VSM_UUID_STRLEN);
	t.ctime = (int64_t)vsm__get_le64(b + 64);
	t.block = vsm__get_le32(b + 72);
	t.slot_count = vsm__get_le32(b + 76);
	t.record_off = vsm__get_le64(b + 80);
	t.record_size = vsm__get_le32(b + 88);
	t.max_hosts = vsm__get_le32(b + 92);
	t.lease_off = vsm__get_le64(b + 96);
	t.lease_block = vsm__get_le32(b + 104);
	t.lease_timeout_ms = vsm__get_le32(b + 108);
	t.renew_interval_ms = vsm__get_le32(b + 112);
	t.n_leases = vsm__get_le32(b + 116);
	t.gen_off = vsm__get_le64(b + 120);
	t.total_size = vsm__get_le64(b + 128);
	/* The CRC only proves we wrote it; still refuse a geometry we would
	 * never have written, since it steers every later offset. */
	if (!vsm__uuid_valid(t.uuid) || t.block != 4096 || t.slot_count == 0 ||
	    t.slot_count > 65536 || t.record_size < 4096 || t.record_size > (16u << 20) ||
	    t.record_size % 4096 || t.lease_block < 512 || t.lease_block > 65536 ||
	    t.max_hosts == 0 || t.max_hosts > 4096 || t.n_leases != t.slot_count + 1 ||
	    t.gen_off < 8192 || t.gen_off + 4096 > t.lease_off ||
	    t.record_off < t.lease_off +
			   (uint64_t)t.lease_block * t.max_hosts + VSM_META_LEASE_BYTES(&t) * t.n_leases ||
	    t.total_size != t.record_off + (uint64_t)t.slot_count * 2 * t.record_size) {
		*why = "impossible geometry";
		return -1;
	}
	*g = t;
	*seq = vsm__get_le64(b + 16);
	return 1;
}

static int gen_write(vsm_meta *m, uint64_t gen, const uint8_t *expect)
{
	uint8_t blk[512];

	memset(blk, 0, sizeof(blk));
	memcpy(blk, GEN_MAGIC, 8);
	vsm__put_le64(blk + 8, gen);
	vsm__put_le32(blk + 16, vsm__crc32(blk, 16));
	if (expect)
		return vsm_bdev_compare_and_write(m->bdev, expect, blk, sizeof(blk),
						  m->geom.gen_off);
	return vsm_bdev_write(m->bdev, blk, sizeof(blk), m->geom.gen_off);
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
	if ((rc = gen_write(m, 1, NULL)) < 0 || (rc = vsm_bdev_flush(m->bdev)) < 0)
		return rc;
	sb_encode(sb, &m->geom, 1);
	if ((rc = vsm_bdev_write(m->bdev, sb, SB_LEN, 0)) < 0 ||
	    (rc = vsm_bdev_write(m->bdev, sb, SB_LEN, 4096)) < 0 ||
	    (rc = vsm_bdev_flush(m->bdev)) < 0)
		return rc;
	return 0;
}

int vsm_meta_open(vsm_meta **out, vsm_bdev *bdev, const char *ds_name, bool do_format)
{
	uint8_t a[SB_LEN], b[SB_LEN];
	vsm_meta_geom ga, gb;
	uint64_t sa = 0, sb = 0;
	const char *wa = NULL, *wb = NULL;
	vsm_meta *m;
	int ra, rb, rc;

	if (!(m = vsm__calloc(1, sizeof(*m))) || !(m->ds_name = vsm__strdup(ds_name))) {
		free(m);
		vsm_bdev_close(bdev);
		return -VSM_ENOMEM;
	}
	m->bdev = bdev;
	if ((rc = vsm_bdev_read(bdev, a, SB_LEN, 0)) < 0 ||
	    (rc = vsm_bdev_read(bdev, b, SB_LEN, 4096)) < 0)
		goto fail;
	ra = sb_decode(a, &ga, &sa, &wa);
	rb = sb_decode(b, &gb, &sb, &wb);
	if (ra == -2 || rb == -2) {
		rc = vsm_err(VSM_EVERSION, "datastore '%s': metadata layout version %u is not "
			     "supported (this library knows %d)", ds_name,
			     vsm__get_le32(ra == -2 ? a + 8 : b + 8), VSM_META_LAYOUT_VERSION);
		goto fail;
	}
	if (ra == 1 && (rb != 1 || sa >= sb))
		m->geom = ga;
	else if (rb == 1)
		m->geom = gb;
	else if (ra == 0 && rb == 0) {
		if (!do_format) {
			rc = vsm_err(VSM_ENOTFOUND, "datastore '%s' is not formatted", ds_name);
			goto fail;
		}
		if ((rc = format(m)) < 0)
			goto fail;
	} else {
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': metadata superblock is damaged (%s)",
			     ds_name, wa ? wa : wb);
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

static int gen_read(vsm_meta *m, uint8_t blk[512], uint64_t *out)
{
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
	uint8_t blk[512];

	return gen_read(m, blk, out);
}

int vsm_meta_bump_generation(vsm_meta *m, uint64_t *prev, uint64_t *now)
{
	uint8_t blk[512];
	uint64_t gen;
	int rc, tries;

	/* With compare-and-write, concurrent writers on other hosts cannot
	 * lose each other's increments; without it the counter may skip a
	 * change notification but never goes backwards. */
	for (tries = 0; tries < 1000; tries++) {
		if ((rc = gen_read(m, blk, &gen)) < 0)
			return rc;
		rc = gen_write(m, gen + 1,
			       vsm_bdev_has_compare_and_write(m->bdev) ? blk : NULL);
		if (rc == -VSM_EMISMATCH)
			continue;
		if (rc < 0 || (rc = vsm_bdev_flush(m->bdev)) < 0)
			return rc;
		if (prev)
			*prev = gen;
		if (now)
			*now = gen + 1;
		return 0;
	}
	return vsm_err(VSM_EBUSY, "datastore '%s': generation keeps changing", m->ds_name);
}

/* --- record slots --- */

typedef struct {
	int state; /* 0 blank, 1 valid, -1 damaged */
	uint64_t seq;
	uint32_t flags;
	uint32_t len;
	const char *why;
} copy_info;

static uint64_t copy_off(const vsm_meta *m, uint32_t slot, int copy)
{
	return m->geom.record_off + ((uint64_t)slot * 2 + (uint64_t)copy) * m->geom.record_size;
}

/* Read one copy into @buf (record_size bytes) and judge it. */
static int copy_read(vsm_meta *m, uint32_t slot, int copy, uint8_t *buf, copy_info *ci)
{
	uint32_t first = m->geom.record_size < 4096 ? m->geom.record_size : 4096, crc;
	uint64_t off = copy_off(m, slot, copy);
	int rc;

	memset(ci, 0, sizeof(*ci));
	if ((rc = vsm_bdev_read(m->bdev, buf, first, off)) < 0)
		return rc;
	if (all_zero(buf, REC_HDR))
		return 0;
	ci->state = -1;
	if (memcmp(buf, REC_MAGIC, 8) != 0) {
		ci->why = "bad magic";
		return 0;
	}
	if (vsm__get_le32(buf + 8) != REC_FORMAT_VERSION) {
		ci->why = "unsupported record format version";
		return 0;
	}
	ci->flags = vsm__get_le32(buf + 12);
	ci->seq = vsm__get_le64(buf + 16);
	ci->len = vsm__get_le32(buf + 28);
	if (vsm__get_le32(buf + 24) != slot) {
		ci->why = "record belongs to another slot";
		return 0;
	}
	if (ci->len > m->geom.record_size - REC_HDR) {
		ci->why = "payload length past the slot";
		return 0;
	}
	if (REC_HDR + ci->len > first &&
	    (rc = vsm_bdev_read(m->bdev, buf + first, REC_HDR + ci->len - first, off + first)) < 0)
		return rc;
	crc = vsm__get_le32(buf + 32);
	vsm__put_le32(buf + 32, 0);
	if (crc != vsm__crc32(buf, REC_HDR + ci->len)) {
		ci->why = "checksum mismatch";
		return 0;
	}
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
	if (slot >= m->geom.slot_count)
		return vsm_err(VSM_EINVAL, "datastore '%s': slot %u out of range",
			       m->ds_name, slot);
	return 0;
}

int vsm_meta_slot_read(vsm_meta *m, uint32_t slot, vsm_slot_state *state,
		       char **payload, size_t *len, char **reason)
{
	uint8_t *buf[2] = {NULL, NULL};
	copy_info ci[2];
	int rc, k, c;

	if ((rc = slot_check(m, slot)) < 0)
		return rc;
	for (c = 0; c < 2; c++) {
		if (!(buf[c] = malloc(m->geom.record_size))) {
			rc = vsm_err(VSM_ENOMEM, "out of memory");
			goto out;
		}
		if ((rc = copy_read(m, slot, c, buf[c], &ci[c])) < 0)
			goto out;
	}
	k = newest(ci);
	if (k < 0) {
		bool damaged = ci[0].state < 0 || ci[1].state < 0;

		*state = damaged ? VSM_SLOT_DAMAGED : VSM_SLOT_EMPTY;
		if (damaged && reason) {
			const char *why = ci[0].state < 0 ? ci[0].why : ci[1].why;

			if (asprintf(reason, "%s", why) < 0)
				*reason = NULL;
		}
	} else if (ci[k].flags & REC_FLAG_TOMBSTONE) {
		*state = VSM_SLOT_FREE;
	} else {
		*state = VSM_SLOT_USED;
		if (payload) {
			if (!(*payload = malloc(ci[k].len + 1))) {
				rc = vsm_err(VSM_ENOMEM, "out of memory");
				goto out;
			}
			memcpy(*payload, buf[k] + REC_HDR, ci[k].len);
			(*payload)[ci[k].len] = '\0';
		}
		if (len)
			*len = ci[k].len;
	}
out:
	free(buf[0]);
	free(buf[1]);
	return rc;
}

int vsm_meta_slot_write(vsm_meta *m, uint32_t slot, const char *payload, size_t len)
{
	uint8_t *buf = NULL;
	copy_info ci[2];
	int rc, k, target, c;
	uint64_t seq;

	if ((rc = slot_check(m, slot)) < 0)
		return rc;
	if (len > m->geom.record_size - REC_HDR)
		return vsm_err(VSM_EINVAL, "datastore '%s': record of %zu bytes exceeds the "
			       "slot size %u", m->ds_name, len, m->geom.record_size - REC_HDR);
	if (!(buf = malloc(m->geom.record_size)))
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (c = 0; c < 2; c++)
		if ((rc = copy_read(m, slot, c, buf, &ci[c])) < 0)
			goto out;
	k = newest(ci);
	if (k < 0 && (ci[0].state < 0 || ci[1].state < 0)) {
		rc = vsm_err(VSM_ECORRUPT, "datastore '%s': record slot %u is damaged; "
			     "refusing to overwrite it", m->ds_name, slot);
		goto out;
	}
	target = k < 0 ? 0 : 1 - k;
	seq = k < 0 ? 1 : ci[k].seq + 1;
	memset(buf, 0, REC_HDR);
	memcpy(buf, REC_MAGIC, 8);
	vsm__put_le32(buf + 8, REC_FORMAT_VERSION);
	vsm__put_le32(buf + 12, payload ? 0 : REC_FLAG_TOMBSTONE);
	vsm__put_le64(buf + 16, seq);
	vsm__put_le32(buf + 24, slot);
	vsm__put_le32(buf + 28, payload ? (uint32_t)len : 0);
	if (payload)
		memcpy(buf + REC_HDR, payload, len);
	vsm__put_le32(buf + 32, vsm__crc32(buf, REC_HDR + (payload ? len : 0)));
	if ((rc = vsm_bdev_write(m->bdev, buf, REC_HDR + (payload ? len : 0),
				 copy_off(m, slot, target))) < 0)
		goto out;
	rc = vsm_bdev_flush(m->bdev);
out:
	free(buf);
	return rc;
}
