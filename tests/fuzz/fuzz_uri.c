/*
 * Fuzz target: datastore URI parsers. The input up to its first NUL is a
 * URI; the bytes after it are the content of a CHAP secret file. The URI
 * goes through
 *  - the iSCSI URI parser (backends/iscsi/uri.c, isc_uri_parse), when
 *    the iSCSI backend is built (VSM_FUZZ_ISCSI). "secret-file=@" in the
 *    input names the secret file this target writes; any other
 *    secret-file value is not parsed (the fuzzer must not read the
 *    machine's files). The VSM_ISCSI_* variables are unset so the
 *    environment does not change what is parsed;
 *  - the file URI decoder (backends/common/fileuri.c): a URI it accepts
 *    encodes back to one that decodes to the same path, and a path the
 *    encoder takes decodes back to itself unless the decoder refuses it.
 * The RBD backend (and its URI parser) does not exist yet; see
 * doc/fuzzing.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsm/backend.h"
#include "../../backends/common/fileuri.h"
#include "fuzz_util.h"
#ifdef VSM_FUZZ_ISCSI
#include "isc-int.h"
#endif

static void file_uri(const char *s)
{
	char *path = NULL, *uri = NULL, *again = NULL;

	if (vsm__fileuri_to_path(&path, s) == 0) {
		if (vsm__fileuri_from_path(&uri, path) < 0 ||
		    vsm__fileuri_to_path(&again, uri) < 0 || strcmp(again, path) != 0) {
			fprintf(stderr, "fuzz_uri: '%s' -> '%s' does not round-trip\n", s, path);
			abort();
		}
		free(path);
		free(uri);
		free(again);
		path = uri = again = NULL;
	}
	/* The input as a path. */
	if (vsm__fileuri_from_path(&uri, s) == 0) {
		if (vsm__fileuri_to_path(&path, uri) == 0 && strcmp(path, s) != 0) {
			fprintf(stderr, "fuzz_uri: path '%s' comes back as '%s'\n", s, path);
			abort();
		}
		free(path);
		free(uri);
	}
}

#ifdef VSM_FUZZ_ISCSI
static void iscsi_uri(const char *s, const uint8_t *secret, size_t secret_len)
{
	static char secret_path[4200];
	const char *sf = s, *tag = "secret-file=";
	char *uri = NULL, *q;
	isc_uri u;
	size_t n = 0;

	if (!secret_path[0])
		snprintf(secret_path, sizeof(secret_path), "%s/secret", fz_tmpdir());
	/* Rewrite each "secret-file=@" to our file; refuse any other value. */
	while ((sf = strstr(sf, tag))) {
		sf += strlen(tag);
		if (*sf != '@')
			return;
		n++;
	}
	if (!(uri = malloc(strlen(s) + n * strlen(secret_path) + 1)))
		return;
	q = uri;
	for (sf = s; *sf;) {
		const char *hit = strstr(sf, tag);

		if (!hit) {
			strcpy(q, sf);
			q += strlen(sf);
			break;
		}
		hit += strlen(tag);
		memcpy(q, sf, (size_t)(hit - sf));
		q += hit - sf;
		strcpy(q, secret_path);
		q += strlen(secret_path);
		sf = hit + 1;
	}
	*q = '\0';
	if (n)
		fz_write_file(secret_path, secret, secret_len);
	if (isc_uri_parse(&u, uri, "fuzz") == 0)
		isc_uri_clear(&u);
	free(uri);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int env_done;
	const uint8_t *nul = memchr(data, 0, size);
	size_t n = nul ? (size_t)(nul - data) : size;
	char *s;

	if (!env_done) {
		unsetenv("VSM_ISCSI_USER");
		unsetenv("VSM_ISCSI_PASSWORD");
		unsetenv("VSM_ISCSI_INITIATOR");
		env_done = 1;
	}
	if (!(s = malloc(n + 1)))
		return 0;
	memcpy(s, data, n);
	s[n] = '\0';
	file_uri(s);
#ifdef VSM_FUZZ_ISCSI
	iscsi_uri(s, nul ? nul + 1 : data + size, nul ? size - n - 1 : 0);
#endif
	free(s);
	return 0;
}
