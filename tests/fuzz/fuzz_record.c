/*
 * Fuzz target: container records. The input is a record's JSON payload:
 *  1. vsm_record_decode() on it directly (a copy of exactly its bytes,
 *     no NUL after it); a record that decodes is encoded again and the
 *     encoding must decode (the codec round-trips what it accepts);
 *  2. written into slot 0 of a formatted metadata device by
 *     vsm_meta_slot_write() (continuation slots when it is larger than
 *     one slot), read back through vsm_meta_slot_read() and decoded.
 * An input that starts with the copy magic "VSMREC01" is instead a raw
 * slot copy (a second magic further on starts the second copy): its slot
 * index and CRCs are set right (doc/datastore-layout.md, "Record slots")
 * and it is written into slot 2 so the copy parser and the continuation
 * gathering in lib/store/meta.c see any header.
 * The metadata device is a sparse file formatted once per process; the
 * slots an input used are zeroed after it, so every input starts from
 * the same device.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "internal.h"
#include "meta.h"
#include "record.h"
#include "fuzz_util.h"

static const char *errmsg(void)
{
	const vsm_error *e = vsm_error_last();

	return e && e->message ? e->message : "";
}

#define RAW_SLOT 2
#define HDR1 40
#define HDR2 80

static vsm_meta *meta;
static uint8_t *zeros;

static void meta_setup(void)
{
	char path[4200];
	vsm_bdev *b = NULL;
	int fd;

	snprintf(path, sizeof(path), "%s/meta", fz_tmpdir());
	fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)vsm_meta_default_size(512)) != 0)
		abort();
	close(fd);
	if (vsm_bdev_open_path(&b, path, 0) < 0 || vsm_meta_open(&meta, b, "fuzz", true) < 0) {
		fprintf(stderr, "fuzz_record: cannot format %s: %s\n", path, errmsg());
		abort();
	}
	zeros = calloc(2, meta->geom.record_size);
	if (!zeros)
		abort();
}

static void slot_zero(uint32_t slot)
{
	uint64_t off = meta->geom.record_off + (uint64_t)slot * 2 * meta->geom.record_size;

	if (vsm_bdev_write(meta->bdev, zeros, 2 * (size_t)meta->geom.record_size, off) < 0)
		abort();
}

static void decode(const char *json, size_t len, bool roundtrip)
{
	vsm_record *r = NULL, *r2 = NULL;
	char *enc = NULL;
	int rc = vsm_record_decode(&r, json, len, "fuzz");

	fz_debug(roundtrip ? "decode" : "decode from slot", rc);
	if (rc < 0)
		return;
	if (roundtrip) {
		if (vsm_record_encode(&enc, r) < 0)
			abort(); /* nothing in a decoded record may be unencodable */
		if (vsm_record_decode(&r2, enc, strlen(enc), "fuzz re-encoded") < 0) {
			fprintf(stderr, "fuzz_record: the encoding of a decoded record is refused: "
				"%s\n%s\n", errmsg(), enc);
			abort();
		}
		vsm_record_free(r2);
		free(enc);
	}
	vsm_record_free(r);
}

static void read_back(uint32_t slot)
{
	vsm_slot_info si;

	memset(&si, 0, sizeof(si));
	fz_debug("slot read", vsm_meta_slot_read(meta, slot, &si));
	fz_debug("slot state", (int)si.state);
	if (si.state == VSM_SLOT_USED && si.payload)
		decode(si.payload, si.len, false);
	vsm_slot_info_clear(&si);
}

/* Set the slot index and the CRCs of the copy in @b (record_size bytes). */
static void seal_copy(uint8_t *b, uint32_t slot)
{
	uint32_t rs = meta->geom.record_size, version, hdr, len, n_cont;

	vsm__put_le32(b + 24, slot);
	version = vsm__get_le32(b + 8);
	hdr = HDR1;
	if (version == 2) {
		n_cont = vsm__get_le32(b + 36);
		if (n_cont > (rs - HDR2) / 4)
			return;
		hdr = HDR2 + 4 * n_cont;
	}
	len = vsm__get_le32(b + 28);
	if (len > rs - hdr)
		return;
	if (version == 2 && vsm__get_le32(b + 48) == len)
		vsm__put_le32(b + 52, vsm__crc32(b + hdr, len));
	vsm__put_le32(b + 32, 0);
	vsm__put_le32(b + 32, vsm__crc32(b, hdr + len));
}

static void raw_copies(const uint8_t *data, size_t size)
{
	uint32_t rs = meta->geom.record_size;
	const uint8_t *second = size > 8 ? memmem(data + 8, size - 8, "VSMREC01", 8) : NULL;
	size_t n0 = second ? (size_t)(second - data) : size;
	uint8_t *buf = calloc(2, rs);
	uint64_t off = meta->geom.record_off + (uint64_t)RAW_SLOT * 2 * rs;

	if (!buf)
		return;
	memcpy(buf, data, n0 < rs ? n0 : rs);
	seal_copy(buf, RAW_SLOT);
	if (second) {
		size_t n1 = size - n0;

		memcpy(buf + rs, second, n1 < rs ? n1 : rs);
		seal_copy(buf + rs, RAW_SLOT);
	}
	if (vsm_bdev_write(meta->bdev, buf, 2 * (size_t)rs, off) < 0)
		abort();
	free(buf);
	read_back(RAW_SLOT);
	slot_zero(RAW_SLOT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t cont[8], need, i;
	char *copy;

	if (!meta)
		meta_setup();
	if (size >= 8 && !memcmp(data, "VSMREC01", 8)) {
		raw_copies(data, size);
		return 0;
	}
	/* Exactly the input's bytes: a read past @len is an ASan report. */
	if (!(copy = malloc(size ? size : 1)))
		return 0;
	memcpy(copy, data, size);
	decode(copy, size, true);
	free(copy);

	need = vsm_meta_cont_needed(meta, size);
	if (need > 8)
		return 0;
	for (i = 0; i < need; i++)
		cont[i] = 10 + i;
	if (vsm_meta_slot_write(meta, 0, (const char *)data, size, 1, cont, need, NULL) == 0)
		read_back(0);
	slot_zero(0);
	for (i = 0; i < need; i++)
		slot_zero(cont[i]);
	return 0;
}
