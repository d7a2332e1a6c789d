/*
 * file:// URIs (see fileuri.h): the only place a file URI is split into a
 * path or made from one, so every backend decodes and encodes alike.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vsm/backend.h"
#include "fileuri.h"

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

int vsm__fileuri_to_path(char **out, const char *uri)
{
	const char *p, *comp;
	char *path, *o;

	if (!uri || strncmp(uri, "file://", 7) != 0 || uri[7] != '/')
		return vsm_error_set(VSM_EINVAL, "URI '%s' is not file:///ABSOLUTE/PATH",
				     uri ? uri : "(null)");
	if (!(path = malloc(strlen(uri + 7) + 1)))
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	for (p = uri + 7, o = path; *p; p++) {
		int hi, lo;

		if (*p != '%') {
			*o++ = *p;
			continue;
		}
		if ((hi = hexval(p[1])) < 0 || (lo = hexval(p[2])) < 0) {
			free(path);
			return vsm_error_set(VSM_EINVAL, "URI '%s' has a malformed escape '%.3s' "
					     "(a '%%' must be followed by two hex digits)", uri, p);
		}
		if (hi == 0 && lo == 0) {
			free(path);
			return vsm_error_set(VSM_EINVAL, "URI '%s' encodes a NUL byte (%%00)", uri);
		}
		*o++ = (char)(hi << 4 | lo);
		p += 2;
	}
	*o = '\0';
	/* Checked after decoding, so %2e%2e cannot slip through. */
	for (comp = path; comp; comp = strchr(comp, '/')) {
		comp++;
		if (comp[0] == '.' && comp[1] == '.' && (comp[2] == '/' || comp[2] == '\0')) {
			free(path);
			return vsm_error_set(VSM_EINVAL, "URI '%s' has a '..' path component", uri);
		}
	}
	*out = path;
	return 0;
}

int vsm__fileuri_from_path(char **out, const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	char *uri, *o;

	if (!path || path[0] != '/')
		return vsm_error_set(VSM_EINVAL, "path '%s' is not absolute", path ? path : "(null)");
	if (!(uri = malloc(7 + 3 * strlen(path) + 1)))
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	memcpy(uri, "file://", 7);
	for (p = (const unsigned char *)path, o = uri + 7; *p; p++) {
		unsigned char c = *p;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	*out = uri;
	return 0;
}
