/*
 * The module's checksum (ck_sum): zlib's CRC-32 and Adler-32 side by
 * side, for state blobs and bundles.
 */
#include <zlib.h>

#include "ckpt.h"

void ck_sum_init(ck_sum *s)
{
	s->crc = (uint32_t)crc32(0L, Z_NULL, 0);
	s->adler = (uint32_t)adler32(0L, Z_NULL, 0);
}

void ck_sum_add(ck_sum *s, const void *buf, size_t len)
{
	const Bytef *p = buf;

	while (len) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		s->crc = (uint32_t)crc32(s->crc, p, n);
		s->adler = (uint32_t)adler32(s->adler, p, n);
		p += n;
		len -= n;
	}
}

uint64_t ck_sum_value(const ck_sum *s)
{
	return (uint64_t)s->crc << 32 | s->adler;
}
