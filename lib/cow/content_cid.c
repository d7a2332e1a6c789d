/*
 * Content-derived IDs of bottom layers (golden images): a hash of what
 * the layer reads, so that the same image imported on two datastores
 * gets the same ID there and a chain copy can find it (doc/chain-copy.md).
 * Also the text form of every content ID.
 */
#include <stdlib.h>
#include <string.h>

#include "cow.h"
#include "internal.h"

#define CHASH_WINDOW (1u << 20)

static void put64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static bool grain_zero(const uint8_t *p)
{
	return p[0] == 0 && memcmp(p, p + 1, VSM_COW_GRAIN - 1) == 0;
}

static void grain_flush(vsm_cow_chash *h)
{
	uint8_t o[8];

	if (h->grain == UINT64_MAX)
		return;
	if (!grain_zero(h->buf)) {
		put64(o, h->grain);
		sha256_update(&h->sha, sizeof(o), o);
		sha256_update(&h->sha, VSM_COW_GRAIN, h->buf);
	}
	h->grain = UINT64_MAX;
}

void vsm_cow_chash_begin(vsm_cow_chash *h, uint64_t size)
{
	static const char head[16] = "libvsm-cid-v1";
	uint8_t s[8];

	sha256_init(&h->sha);
	sha256_update(&h->sha, sizeof(head), (const uint8_t *)head);
	put64(s, size);
	sha256_update(&h->sha, sizeof(s), s);
	h->grain = UINT64_MAX;
}

void vsm_cow_chash_data(vsm_cow_chash *h, uint64_t off, const uint8_t *p, size_t n)
{
	while (n) {
		uint64_t g = off - off % VSM_COW_GRAIN;
		size_t in = (size_t)(off - g), step = VSM_COW_GRAIN - in;

		if (step > n)
			step = n;
		if (g != h->grain) {
			grain_flush(h);
			h->grain = g;
			memset(h->buf, 0, sizeof(h->buf));
		}
		memcpy(h->buf + in, p, step);
		off += step;
		p += step;
		n -= step;
	}
}

void vsm_cow_chash_end(vsm_cow_chash *h, uint8_t cid[VSM_COW_CID_LEN])
{
	uint8_t d[SHA256_DIGEST_SIZE];

	grain_flush(h);
	sha256_digest(&h->sha, sizeof(d), d);
	memcpy(cid, d, VSM_COW_CID_LEN);
	cid[6] = (uint8_t)((cid[6] & 0x0f) | 0x80); /* version 8: custom */
	cid[8] = (uint8_t)((cid[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

bool vsm_cow_cid_is_content(const uint8_t cid[VSM_COW_CID_LEN])
{
	return (cid[6] & 0xf0) == 0x80;
}

int vsm_cow_content_cid(vsm_cow *c, uint8_t cid[VSM_COW_CID_LEN])
{
	uint64_t size = vsm_cow_size(c), off = 0;
	vsm_cow_chash h;
	uint8_t *buf = malloc(CHASH_WINDOW);
	int rc = 0;

	if (!buf)
		return vsm_err(VSM_ENOMEM, "out of memory");
	vsm_cow_chash_begin(&h, size);
	/* Windows where nothing reads data are skipped without a read. */
	while (off < size && rc == 0) {
		uint64_t len = size - off < CHASH_WINDOW ? size - off : CHASH_WINDOW, pnum = 0;
		uint64_t p = 0;
		vsm_cow_status st;
		bool data = false;

		while (p < len && !data) {
			if ((rc = vsm_cow_block_status(c, off + p, len - p, &pnum, &st)) < 0)
				break;
			data = st.data && !st.zero;
			p += pnum;
		}
		if (rc == 0 && data && (rc = vsm_cow_read(c, buf, (size_t)len, off)) == 0)
			vsm_cow_chash_data(&h, off, buf, (size_t)len);
		off += len;
	}
	free(buf);
	if (rc == 0)
		vsm_cow_chash_end(&h, cid);
	return rc;
}

void vsm_cow_cid_text(const uint8_t cid[VSM_COW_CID_LEN], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < VSM_COW_CID_LEN; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[cid[i] >> 4];
		out[o++] = hex[cid[i] & 15];
	}
	out[o] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool vsm_cow_cid_parse(const char *s, uint8_t cid[VSM_COW_CID_LEN])
{
	size_t i = 0, o = 0;

	if (!s || strlen(s) != 36)
		return false;
	while (o < VSM_COW_CID_LEN) {
		int a, b;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return false;
			continue;
		}
		if ((a = hexval(s[i])) < 0 || (b = hexval(s[i + 1])) < 0)
			return false;
		cid[o++] = (uint8_t)(a << 4 | b);
		i += 2;
	}
	return true;
}
