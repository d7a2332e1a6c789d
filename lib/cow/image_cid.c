/*
 * Content IDs of path images: vsm_image_cid_get and vsm_image_freeze,
 * over the engine's header extension (qcow2_cid.c). See
 * doc/chain-copy.md for the rule an ID carries.
 */
#include <string.h>

#include "vsm/image.h"
#include "cow_int.h"
#include "image_int.h"

static void cid_text(const uint8_t *cid, char out[VSM_IMAGE_CID_STRLEN + 1])
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
	return -1;
}

/* A fresh random ID: the base layer's UUID (libuuid), as bytes. */
static void cid_new(uint8_t cid[VSM_COW_CID_LEN])
{
	char s[VSM_UUID_STRLEN + 1];
	size_t i = 0, o = 0;

	vsm__uuid_new(s);
	while (s[i] && o < VSM_COW_CID_LEN) {
		if (s[i] == '-') {
			i++;
			continue;
		}
		cid[o++] = (uint8_t)(hexval(s[i]) << 4 | hexval(s[i + 1]));
		i += 2;
	}
}

VSM_API int vsm_image_cid_get(vsm_image *img, char out[VSM_IMAGE_CID_STRLEN + 1])
{
	uint8_t cid[VSM_COW_CID_LEN];

	vsm__error_reset();
	if (!img || !out)
		return vsm_err(VSM_EINVAL, "image: handle and out are required");
	if (!vsm_cow_cid(vsm__image_cow(img), cid))
		return vsm_err(VSM_ENOTFOUND, "%s has no content ID",
			       vsm_cow_label(vsm__image_cow(img)));
	cid_text(cid, out);
	return 0;
}

VSM_API int vsm_image_freeze(vsm_image *img, unsigned int flags)
{
	uint8_t cid[VSM_COW_CID_LEN];
	vsm_cow *c;

	vsm__error_reset();
	if (!img)
		return vsm_err(VSM_EINVAL, "image handle is NULL");
	c = vsm__image_cow(img);
	if (flags)
		return vsm_err(VSM_EINVAL, "%s: unknown freeze flags 0x%x", vsm_cow_label(c), flags);
	if (vsm_cow_cid(c, cid))
		return 0;
	cid_new(cid);
	return vsm_cow_set_cid(c, cid);
}
