/*
 * The one codec for on-disk integers and checksums: little-endian for our
 * own structures (records, leases, the metadata device), big-endian for
 * qcow2. Every layer that encodes bytes uses these, so there is one place
 * to get a shift wrong.
 */
#ifndef VSM_CODEC_H
#define VSM_CODEC_H

#include <stddef.h>
#include <stdint.h>

static inline void vsm__put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void vsm__put_le64(uint8_t *p, uint64_t v)
{
	vsm__put_le32(p, (uint32_t)v);
	vsm__put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t vsm__get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline uint64_t vsm__get_le64(const uint8_t *p)
{
	return (uint64_t)vsm__get_le32(p) | (uint64_t)vsm__get_le32(p + 4) << 32;
}

static inline uint16_t vsm__get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t vsm__get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static inline uint64_t vsm__get_be64(const uint8_t *p)
{
	return (uint64_t)vsm__get_be32(p) << 32 | vsm__get_be32(p + 4);
}
static inline void vsm__put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v;
}
static inline void vsm__put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void vsm__put_be64(uint8_t *p, uint64_t v)
{
	vsm__put_be32(p, (uint32_t)(v >> 32));
	vsm__put_be32(p + 4, (uint32_t)v);
}

/* CRC-32 (zlib's polynomial) of a buffer. */
uint32_t vsm__crc32(const void *buf, size_t len);

#endif /* VSM_CODEC_H */
