/*
 * Small helpers: allocation that reports errors, name rules, UUIDs, CRCs.
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
