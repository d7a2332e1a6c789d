/*
 * Small helpers: allocation that reports errors, name and key rules,
 * UUIDs, CRCs.
 */
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>
#include <zlib.h>

#include "internal.h"

void *vsm__calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		vsm_err(VSM_ENOMEM, "out of memory");
	return p;
}

char *vsm__strdup(const char *s)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	if (!p)
		vsm_err(VSM_ENOMEM, "out of memory");
	return p;
}

int vsm__name_check(const char *what, const char *name)
{
	size_t len, i;

	if (!name || !*name)
		return vsm_err(VSM_EINVAL, "%s name is empty", what);
	len = strlen(name);
	if (len > 64)
		return vsm_err(VSM_EINVAL, "%s name '%.64s...' is longer than 64 characters",
			       what, name);
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return vsm_err(VSM_EINVAL, "%s name '%s' is reserved", what, name);
	for (i = 0; i < len; i++) {
		char c = name[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
			continue;
		return vsm_err(VSM_EINVAL,
			       "%s name '%s' has a character outside [A-Za-z0-9._-]",
			       what, name);
	}
	return 0;
}

/* Length of the UTF-8 sequence at @p (at most @n bytes), 0 if it is
 * not one: overlong forms, surrogates and code points past U+10FFFF
 * are not. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

const char *vsm__key_invalid(const char *key)
{
	const unsigned char *p = (const unsigned char *)key;
	size_t n, len;

	if (!key || !*key)
		return "it is empty";
	n = strlen(key);
	if (n >= VSM_BACKEND_KEY_MAX)
		return "it is longer than VSM_BACKEND_KEY_MAX - 1 bytes";
	while (n) {
		if (*p < 0x20 || *p == 0x7f)
			return "it holds a control character";
		if (!(len = utf8_len(p, n)))
			return "it is not UTF-8";
		p += len;
		n -= len;
	}
	return NULL;
}

void vsm__uuid_new(char out[VSM_UUID_STRLEN + 1])
{
	uuid_t u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

bool vsm__uuid_valid(const char *s)
{
	uuid_t u;

	return s && strlen(s) == VSM_UUID_STRLEN && uuid_parse(s, u) == 0;
}

uint32_t vsm__crc32(const void *buf, size_t len)
{
	uLong crc = crc32(0L, Z_NULL, 0);
	const Bytef *p = buf;

	/* zlib takes uInt lengths; feed large buffers in pieces. */
	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		crc = crc32(crc, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)crc;
}
