/*
 * Encoding of the lease area's sectors (layout in doc/leases.md). All
 * integers are little-endian; every sector ends its 512 data bytes with
 * a CRC-32 over the bytes before it.
 */
#include <string.h>

#include "internal.h"
#include "sector.h"

#define CRC_OFF (LS_SECTOR - 4)
#define LV_LEN 144

static void seal(uint8_t *b)
{
	vsm__put_le32(b + CRC_OFF, vsm__crc32(b, CRC_OFF));
}

static bool blank(const uint8_t *b)
{
	size_t i;

	for (i = 0; i < LS_SECTOR; i++)
		if (b[i])
			return false;
	return true;
}

/* 1 valid, 0 blank, -1 foreign or torn. */
static int check(const uint8_t *b, const char *magic)
{
	if (blank(b))
		return 0;
	if (memcmp(b, magic, 8) != 0 || vsm__get_le32(b + CRC_OFF) != vsm__crc32(b, CRC_OFF))
		return -1;
	return 1;
}

static void put_str(uint8_t *p, const char *s, size_t max)
{
	size_t n = s ? strnlen(s, max) : 0;

	memcpy(p, s, n);
}

static void get_str(char *out, const uint8_t *p, size_t max)
{
	memcpy(out, p, max);
	out[max] = '\0';
}

static void lv_put(uint8_t *p, const vsm_lv *v)
{
	vsm__put_le64(p, v->lver);
	vsm__put_le32(p + 8, v->flags);
	vsm__put_le32(p + 12, v->owner_slot);
	vsm__put_le64(p + 16, v->owner_gen);
	vsm__put_le64(p + 24, (uint64_t)v->since_ms);
	put_str(p + 32, v->owner, LS_NAME_MAX);
	put_str(p + 32 + LS_NAME_MAX, v->uuid, VSM_UUID_STRLEN);
}

static void lv_get(const uint8_t *p, vsm_lv *v)
{
	v->lver = vsm__get_le64(p);
	v->flags = vsm__get_le32(p + 8);
	v->owner_slot = vsm__get_le32(p + 12);
	v->owner_gen = vsm__get_le64(p + 16);
	v->since_ms = (int64_t)vsm__get_le64(p + 24);
	get_str(v->owner, p + 32, LS_NAME_MAX);
	get_str(v->uuid, p + 32 + LS_NAME_MAX, VSM_UUID_STRLEN);
}

void ls_hdr_encode(uint8_t *b, const vsm_lhdr *h)
{
	memset(b, 0, LS_SECTOR);
	memcpy(b, "VSMLH001", 8);
	vsm__put_le32(b + 8, 1);
	vsm__put_le32(b + 12, h->mode);
	vsm__put_le32(b + 16, h->timeout_ms);
	vsm__put_le32(b + 20, h->renew_ms);
	seal(b);
}

int ls_hdr_decode(const uint8_t *b, vsm_lhdr *h)
{
	int rc = check(b, "VSMLH001");

	if (rc <= 0)
		return rc;
	if (vsm__get_le32(b + 8) != 1)
		return -1;
	h->mode = vsm__get_le32(b + 12);
	h->timeout_ms = vsm__get_le32(b + 16);
	h->renew_ms = vsm__get_le32(b + 20);
	if ((h->mode != LS_MODE_CAW && h->mode != LS_MODE_PLAIN) || h->renew_ms == 0 ||
	    h->timeout_ms < 2 * h->renew_ms)
		return -1;
	return 1;
}

void ls_hb_encode(uint8_t *b, const vsm_hbrec *h)
{
	memset(b, 0, LS_SECTOR);
	memcpy(b, "VSMHB001", 8);
	vsm__put_le32(b + 8, h->slot);
	vsm__put_le64(b + 16, h->gen);
	vsm__put_le64(b + 24, h->counter);
	vsm__put_le64(b + 32, h->nonce);
	vsm__put_le64(b + 40, (uint64_t)h->wall_ms);
	put_str(b + 48, h->name, LS_NAME_MAX);
	seal(b);
}

int ls_hb_decode(const uint8_t *b, vsm_hbrec *h)
{
	int rc = check(b, "VSMHB001");

	if (rc <= 0)
		return rc;
	h->slot = vsm__get_le32(b + 8);
	h->gen = vsm__get_le64(b + 16);
	h->counter = vsm__get_le64(b + 24);
	h->nonce = vsm__get_le64(b + 32);
	h->wall_ms = (int64_t)vsm__get_le64(b + 40);
	get_str(h->name, b + 48, LS_NAME_MAX);
	return 1;
}

void ls_owner_encode(uint8_t *b, const vsm_lv *v)
{
	memset(b, 0, LS_SECTOR);
	memcpy(b, "VSMLO001", 8);
	lv_put(b + 8, v);
	seal(b);
}

int ls_owner_decode(const uint8_t *b, vsm_lv *v)
{
	int rc = check(b, "VSMLO001");

	if (rc <= 0)
		return rc;
	lv_get(b + 8, v);
	return 1;
}

void ls_ballot_encode(uint8_t *b, const vsm_ballot *v)
{
	memset(b, 0, LS_SECTOR);
	memcpy(b, "VSMBL001", 8);
	vsm__put_le32(b + 8, v->slot);
	vsm__put_le64(b + 16, v->gen);
	vsm__put_le64(b + 24, v->lver);
	vsm__put_le64(b + 32, v->mbal);
	vsm__put_le64(b + 40, v->bal);
	lv_put(b + 48, &v->inp);
	lv_put(b + 48 + LV_LEN, &v->dec);
	seal(b);
}

int ls_ballot_decode(const uint8_t *b, vsm_ballot *v)
{
	int rc = check(b, "VSMBL001");

	if (rc <= 0)
		return rc;
	v->slot = vsm__get_le32(b + 8);
	v->gen = vsm__get_le64(b + 16);
	v->lver = vsm__get_le64(b + 24);
	v->mbal = vsm__get_le64(b + 32);
	v->bal = vsm__get_le64(b + 40);
	lv_get(b + 48, &v->inp);
	lv_get(b + 48 + LV_LEN, &v->dec);
	return 1;
}

int ls_gen_decode(const uint8_t *b, uint64_t *gen)
{
	if (memcmp(b, "VSMGEN01", 8) != 0 || vsm__get_le32(b + 16) != vsm__crc32(b, 16))
		return -1;
	*gen = vsm__get_le64(b + 8);
	return 1;
}
