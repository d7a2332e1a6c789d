/*
 * Fuzz target: the lease area's sector codecs (lib/lease/sector.c). The
 * input fills a 512-byte sector (zero padded); every decoder runs on it
 * as it is and again with its CRC set right (so the field checks after
 * the CRC are reached, whatever the magic), and on the generation-block
 * layout. A sector that decodes is encoded again: the encoding must
 * decode to the same values (decode(encode(decode(s))) == decode(s)),
 * the handover fields of version 2 sectors included.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sector.h"
#include "fuzz_util.h"

#define CRC_OFF (LS_SECTOR - 4)

static void lv_same(const vsm_lv *a, const vsm_lv *b)
{
	if (a->lver != b->lver || a->flags != b->flags || a->owner_slot != b->owner_slot ||
	    a->owner_gen != b->owner_gen || a->since_ms != b->since_ms ||
	    strcmp(a->owner, b->owner) || strcmp(a->uuid, b->uuid) ||
	    a->ho_state != b->ho_state || a->ho_slot != b->ho_slot || a->ho_gen != b->ho_gen ||
	    strcmp(a->ho_host, b->ho_host))
		abort();
}

static void all_decoders(const uint8_t *s)
{
	uint8_t e[LS_SECTOR];
	vsm_lhdr h, h2;
	vsm_hbrec hb, hb2;
	vsm_lv lv, lv2;
	vsm_ballot bl, bl2;
	uint64_t gen;

	memset(&h, 0, sizeof(h));
	memset(&hb, 0, sizeof(hb));
	memset(&lv, 0, sizeof(lv));
	memset(&bl, 0, sizeof(bl));
	if (ls_hdr_decode(s, &h) == 1) {
		ls_hdr_encode(e, &h);
		if (ls_hdr_decode(e, &h2) != 1 || h2.format != h.format || h2.mode != h.mode ||
		    h2.timeout_ms != h.timeout_ms || h2.renew_ms != h.renew_ms)
			abort();
	}
	if (ls_hb_decode(s, &hb) == 1) {
		ls_hb_encode(e, &hb);
		if (ls_hb_decode(e, &hb2) != 1 || hb2.slot != hb.slot || hb2.gen != hb.gen ||
		    hb2.counter != hb.counter || hb2.nonce != hb.nonce ||
		    hb2.wall_ms != hb.wall_ms || strcmp(hb2.name, hb.name))
			abort();
	}
	if (ls_owner_decode(s, &lv) == 1) {
		ls_owner_encode(e, &lv);
		if (ls_owner_decode(e, &lv2) != 1)
			abort();
		lv_same(&lv, &lv2);
	}
	if (ls_ballot_decode(s, &bl) == 1) {
		ls_ballot_encode(e, &bl);
		if (ls_ballot_decode(e, &bl2) != 1 || bl2.slot != bl.slot || bl2.gen != bl.gen ||
		    bl2.lver != bl.lver || bl2.mbal != bl.mbal || bl2.bal != bl.bal)
			abort();
		lv_same(&bl.inp, &bl2.inp);
		lv_same(&bl.dec, &bl2.dec);
	}
	ls_gen_decode(s, &gen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t s[LS_SECTOR];

	memset(s, 0, sizeof(s));
	memcpy(s, data, size < sizeof(s) ? size : sizeof(s));
	all_decoders(s);
	vsm__put_le32(s + CRC_OFF, vsm__crc32(s, CRC_OFF));
	all_decoders(s);
	memset(s + 20, 0, 4);
	vsm__put_le32(s + 16, vsm__crc32(s, 16));
	all_decoders(s);
	return 0;
}
