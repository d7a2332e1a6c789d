/*
 * file:// URIs for the backends that hand out local paths: decoding the
 * datastore URI a caller gives, encoding the locator URI we give back.
 */
#ifndef VSM_BACKENDS_COMMON_FILEURI_H
#define VSM_BACKENDS_COMMON_FILEURI_H

/*
 * "file:///ABS/PATH" -> "/ABS/PATH" with %XX escapes decoded. Refused
 * with -VSM_EINVAL (message naming the URI, without a datastore prefix):
 * another scheme or a host part, a malformed escape, %00, and a ".."
 * path component (also when spelled %2e%2e). Caller frees *out.
 */
int vsm__fileuri_to_path(char **out, const char *uri);

/* "/ABS/PATH" -> "file:///ABS/PATH", every byte but A-Z a-z 0-9 - . _ ~ /
 * percent-encoded. Caller frees *out. */
int vsm__fileuri_from_path(char **out, const char *path);

#endif /* VSM_BACKENDS_COMMON_FILEURI_H */
