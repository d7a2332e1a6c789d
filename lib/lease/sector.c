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
#define HO_LEN 80   /* handover extension of a value (version 2 sectors) */

/* A ballot's two values and their extensions fit before the CRC. */
_Static_assert(48 + 2 * LV_LEN + 2 * HO_LEN <= CRC_OFF, "ballot sector overflows");

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

/* 1 or 2 for a valid sector of either version of @magic ("VSMLO00"
 * without its last digit), 0 blank, -1 foreign, torn or newer. */
static int check_v(const uint8_t *b, const char *magic7)
{
	if (blank(b))
		return 0;
	if (memcmp(b, magic7, 7) != 0 || (b[7] != '1' && b[7] != '2') ||
	    vsm__get_le32(b + CRC_OFF) != vsm__crc32(b, CRC_OFF))
		return -1;
	return b[7] - '0';
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

/* The handover part of a value, written only in version 2 sectors. */
static void ho_put(uint8_t *p, const vsm_lv *v)
{
	vsm__put_le32(p, v->ho_state);
	vsm__put_le32(p + 4, v->ho_slot);
	vsm__put_le64(p + 8, v->ho_gen);
	put_str(p + 16, v->ho_host, LS_NAME_MAX);
}

static int ho_get(const uint8_t *p, vsm_lv *v)
{
	v->ho_state = vsm__get_le32(p);
	if (v->ho_state > LV_HO_ACCEPTED)
		return -1;
	if (v->ho_state == LV_HO_NONE) {
		/* Without a handover the other fields mean nothing. */
		v->ho_slot = 0;
		v->ho_gen = 0;
		v->ho_host[0] = '\0';
		return 0;
	}
	v->ho_slot = vsm__get_le32(p + 4);
	v->ho_gen = vsm__get_le64(p + 8);
	get_str(v->ho_host, p + 16, LS_NAME_MAX);
	return 0;
}

static void ho_clear(vsm_lv *v)
{
	v->ho_state = LV_HO_NONE;
	v->ho_slot = 0;
	v->ho_gen = 0;
	v->ho_host[0] = '\0';
}

void ls_hdr_encode(uint8_t *b, const vsm_lhdr *h)
{
	memset(b, 0, LS_SECTOR);
	memcpy(b, "VSMLH001", 8);
	vsm__put_le32(b + 8, h->format ? h->format : 1);
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
	h->format = vsm__get_le32(b + 8);
	if (h->format < 1 || h->format > LS_FORMAT_MAX)
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

/* Version 1 unless the value carries a handover: a lease that is not
 * being handed over stays readable by 0.1. */
void ls_owner_encode(uint8_t *b, const vsm_lv *v)
{
	bool v2 = v->ho_state != LV_HO_NONE;

	memset(b, 0, LS_SECTOR);
	memcpy(b, v2 ? "VSMLO002" : "VSMLO001", 8);
	lv_put(b + 8, v);
	if (v2)
		ho_put(b + 8 + LV_LEN, v);
	seal(b);
}

int ls_owner_decode(const uint8_t *b, vsm_lv *v)
{
	int rc = check_v(b, "VSMLO00");

	if (rc <= 0)
		return rc;
	lv_get(b + 8, v);
	ho_clear(v);
	if (rc == 2 && ho_get(b + 8 + LV_LEN, v) < 0)
		return -1;
	return 1;
}

void ls_ballot_encode(uint8_t *b, const vsm_ballot *v)
{
	bool v2 = v->inp.ho_state != LV_HO_NONE || v->dec.ho_state != LV_HO_NONE;

	memset(b, 0, LS_SECTOR);
	memcpy(b, v2 ? "VSMBL002" : "VSMBL001", 8);
	vsm__put_le32(b + 8, v->slot);
	vsm__put_le64(b + 16, v->gen);
	vsm__put_le64(b + 24, v->lver);
	vsm__put_le64(b + 32, v->mbal);
	vsm__put_le64(b + 40, v->bal);
	lv_put(b + 48, &v->inp);
	lv_put(b + 48 + LV_LEN, &v->dec);
	if (v2) {
		ho_put(b + 48 + 2 * LV_LEN, &v->inp);
		ho_put(b + 48 + 2 * LV_LEN + HO_LEN, &v->dec);
	}
	seal(b);
}

int ls_ballot_decode(const uint8_t *b, vsm_ballot *v)
{
	int rc = check_v(b, "VSMBL00");

	if (rc <= 0)
		return rc;
	v->slot = vsm__get_le32(b + 8);
	v->gen = vsm__get_le64(b + 16);
	v->lver = vsm__get_le64(b + 24);
	v->mbal = vsm__get_le64(b + 32);
	v->bal = vsm__get_le64(b + 40);
	lv_get(b + 48, &v->inp);
	lv_get(b + 48 + LV_LEN, &v->dec);
	ho_clear(&v->inp);
	ho_clear(&v->dec);
	if (rc == 2 && (ho_get(b + 48 + 2 * LV_LEN, &v->inp) < 0 ||
			ho_get(b + 48 + 2 * LV_LEN + HO_LEN, &v->dec) < 0))
		return -1;
	return 1;
}

int ls_gen_decode(const uint8_t *b, uint64_t *gen)
{
	if (memcmp(b, "VSMGEN01", 8) != 0 || vsm__get_le32(b + 16) != vsm__crc32(b, 16))
		return -1;
	*gen = vsm__get_le64(b + 8);
	return 1;
}
