/*
 * The iSCSI datastore URI:
 *
 *   iscsi://[USER[%PASSWORD]@]HOST[:PORT]/TARGET-IQN[?OPTION=VALUE&...]
 *
 * and where CHAP credentials come from when the URI does not carry them
 * (a secret file, then the environment). doc/iscsi.md lists the options.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "isc-int.h"

#define DEFAULT_PORT 3260
#define DEFAULT_TIMEOUT 10
#define INITIATOR_PREFIX "iqn.2026-01.org.libvsm:"

void isc_uri_clear(isc_uri *u)
{
	if (!u)
		return;
	free(u->host);
	free(u->portal);
	free(u->iqn);
	free(u->user);
	if (u->password) {
		memset(u->password, 0, strlen(u->password));
		free(u->password);
	}
	free(u->initiator);
	free(u->dir);
	free(u->tgtadm);
	free(u->auth_secret);
	memset(u, 0, sizeof(*u));
}

static int bad(const char *ds, const char *uri, const char *why)
{
	return vsm_error_set(VSM_EINVAL, "datastore '%s': iSCSI URI '%s': %s "
			     "(expected iscsi://[USER[%%PASSWORD]@]HOST[:PORT]/TARGET-IQN[?options])",
			     ds, uri, why);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!*s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

/* An IQN or EUI name: printable, no spaces, no URI delimiters. */
static bool name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 223)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(isalnum(c) || c == '.' || c == '-' || c == ':' || c == '_'))
			return false;
	}
	return true;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* A secret file holds "user=NAME" and "password=SECRET" lines. */
static int read_secret_file(isc_uri *u, const char *path, const char *ds)
{
	char line[512];
	FILE *f;
	int rc = 0;

	if (path[0] != '/')
		return vsm_error_set(VSM_EINVAL, "datastore '%s': secret-file '%s' is not an "
				     "absolute path", ds, path);
	if (!(f = fopen(path, "re")))
		return vsm_error_set(errno == ENOENT ? VSM_ENOTFOUND : VSM_EPERM,
				     "datastore '%s': cannot read CHAP secret file '%s': %s",
				     ds, path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *l = trim(line), *eq = strchr(l, '=');
		char **dst;

		if (!*l || *l == '#')
			continue;
		if (!eq) {
			rc = vsm_error_set(VSM_EINVAL, "datastore '%s': secret file '%s': line "
					   "'%.40s' is not KEY=VALUE", ds, path, l);
			break;
		}
		*eq = '\0';
		if (!strcmp(trim(l), "user"))
			dst = &u->user;
		else if (!strcmp(trim(l), "password"))
			dst = &u->password;
		else
			continue;
		if (*dst)
			continue; /* the URI wins */
		if (!(*dst = strdup(trim(eq + 1)))) {
			rc = vsm_error_set(VSM_ENOMEM, "out of memory");
			break;
		}
	}
	memset(line, 0, sizeof(line));
	fclose(f);
	return rc;
}

static int set_str(char **dst, const char *v)
{
	free(*dst);
	if (!(*dst = strdup(v)))
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	return 0;
}

static int parse_option(isc_uri *u, char *opt, const char *uri, const char *ds,
			char **secret_file)
{
	char *eq = strchr(opt, '=');
	const char *k = opt, *v;
	unsigned long n;
	char msg[200];

	if (!eq) {
		snprintf(msg, sizeof(msg), "option '%s' has no value", opt);
		return bad(ds, uri, msg);
	}
	*eq = '\0';
	v = eq + 1;
	if (!strcmp(k, "meta-lun")) {
		if (parse_uint(v, 16383, &n) < 0)
			goto badval;
		u->meta_lun = (int)n;
	} else if (!strcmp(k, "mode")) {
		if (!strcmp(v, "pool"))
			u->mode = ISC_MODE_POOL;
		else if (!strcmp(v, "managed"))
			u->mode = ISC_MODE_MANAGED;
		else
			goto badval;
	} else if (!strcmp(k, "tid")) {
		if (parse_uint(v, 65535, &n) < 0 || n == 0)
			goto badval;
		u->tid = (int)n;
	} else if (!strcmp(k, "dir")) {
		if (v[0] != '/' || strstr(v, "/../") || strlen(v) > PATH_MAX / 2)
			goto badval;
		return set_str(&u->dir, v);
	} else if (!strcmp(k, "control-port")) {
		if (parse_uint(v, 65535, &n) < 0)
			goto badval;
		u->control_port = (int)n;
	} else if (!strcmp(k, "tgtadm")) {
		if (v[0] != '/')
			goto badval;
		return set_str(&u->tgtadm, v);
	} else if (!strcmp(k, "initiator")) {
		if (!name_ok(v))
			goto badval;
		return set_str(&u->initiator, v);
	} else if (!strcmp(k, "timeout")) {
		if (parse_uint(v, 3600, &n) < 0 || n == 0)
			goto badval;
		u->timeout = (unsigned)n;
	} else if (!strcmp(k, "wipe")) {
		if (!strcmp(v, "none"))
			u->wipe = ISC_WIPE_NONE;
		else if (!strcmp(v, "unmap"))
			u->wipe = ISC_WIPE_UNMAP;
		else if (!strcmp(v, "zero"))
			u->wipe = ISC_WIPE_ZERO;
		else
			goto badval;
	} else if (!strcmp(k, "secret-file")) {
		return set_str(secret_file, v);
	} else if (!strcmp(k, "auth-secret")) {
		if (!*v)
			goto badval;
		return set_str(&u->auth_secret, v);
	} else {
		snprintf(msg, sizeof(msg), "unknown option '%s'", k);
		return bad(ds, uri, msg);
	}
	return 0;
badval:
	snprintf(msg, sizeof(msg), "option %s has a bad value '%s'", k, v);
	return bad(ds, uri, msg);
}

int isc_uri_parse(isc_uri *u, const char *uri, const char *ds)
{
	char *copy = NULL, *p, *at, *slash, *query, *hostport, *colon, *secret_file = NULL;
	const char *env;
	size_t copy_len = 0;
	unsigned long port = DEFAULT_PORT;
	int rc = 0;

	memset(u, 0, sizeof(*u));
	u->meta_lun = -1;
	u->control_port = -1;
	u->timeout = DEFAULT_TIMEOUT;
	if (!strncmp(uri, "iscsi://", 8))
		p = (char *)uri + 8;
	else if (!strncmp(uri, "iscsi-caw://", 12))
		p = (char *)uri + 12;
	else
		return bad(ds, uri, "scheme is not iscsi:// or iscsi-caw://");
	if (!(copy = strdup(p)))
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	copy_len = strlen(copy);
	p = copy;
	if ((query = strchr(p, '?')))
		*query++ = '\0';
	if (!(slash = strchr(p, '/'))) {
		rc = bad(ds, uri, "no target IQN after the portal");
		goto out;
	}
	*slash = '\0';
	at = strrchr(p, '@');
	hostport = at ? at + 1 : p;
	if (at) {
		char *pct;

		*at = '\0';
		if ((pct = strchr(p, '%'))) {
			*pct = '\0';
			if (!(u->password = strdup(pct + 1))) {
				rc = vsm_error_set(VSM_ENOMEM, "out of memory");
				goto out;
			}
		}
		if (!*p) {
			rc = bad(ds, uri, "empty CHAP user name");
			goto out;
		}
		if (!(u->user = strdup(p))) {
			rc = vsm_error_set(VSM_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (hostport[0] == '[') {
		char *close = strchr(hostport, ']');

		if (!close) {
			rc = bad(ds, uri, "unterminated [IPv6] address");
			goto out;
		}
		*close = '\0';
		u->host = strdup(hostport + 1);
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] && !colon) {
			rc = bad(ds, uri, "junk after [IPv6] address");
			goto out;
		}
	} else {
		colon = strchr(hostport, ':');
		if (colon)
			*colon = '\0';
		u->host = strdup(hostport);
	}
	if (!u->host) {
		rc = vsm_error_set(VSM_ENOMEM, "out of memory");
		goto out;
	}
	if (!u->host[0]) {
		rc = bad(ds, uri, "no host");
		goto out;
	}
	if (colon && (parse_uint(colon + 1, 65535, &port) < 0 || port == 0)) {
		rc = bad(ds, uri, "port is not a number from 1 to 65535");
		goto out;
	}
	u->port = (unsigned)port;
	if (!name_ok(slash + 1)) {
		rc = bad(ds, uri, "target IQN is empty or has characters an iSCSI name cannot have");
		goto out;
	}
	if (!(u->iqn = strdup(slash + 1))) {
		rc = vsm_error_set(VSM_ENOMEM, "out of memory");
		goto out;
	}
	while (query && *query) {
		char *amp = strchr(query, '&');

		if (amp)
			*amp++ = '\0';
		if ((rc = parse_option(u, query, uri, ds, &secret_file)) < 0)
			goto out;
		query = amp;
	}
	if (secret_file && (rc = read_secret_file(u, secret_file, ds)) < 0)
		goto out;
	if (!u->user && (env = getenv("VSM_ISCSI_USER")) && *env && !(u->user = strdup(env))) {
		rc = vsm_error_set(VSM_ENOMEM, "out of memory");
		goto out;
	}
	if (u->user && !u->password && (env = getenv("VSM_ISCSI_PASSWORD")) &&
	    !(u->password = strdup(env))) {
		rc = vsm_error_set(VSM_ENOMEM, "out of memory");
		goto out;
	}
	if (u->user && !u->password) {
		rc = vsm_error_set(VSM_EINVAL, "datastore '%s': CHAP user '%s' has no secret "
				   "(give USER%%PASSWORD, secret-file= or VSM_ISCSI_PASSWORD)",
				   ds, u->user);
		goto out;
	}
	if (!u->initiator) {
		char hn[HOST_NAME_MAX + 1] = "localhost";
		char *q;

		if ((env = getenv("VSM_ISCSI_INITIATOR")) && *env) {
			if (!name_ok(env)) {
				rc = vsm_error_set(VSM_EINVAL, "datastore '%s': VSM_ISCSI_INITIATOR "
						   "'%s' is not an iSCSI name", ds, env);
				goto out;
			}
			u->initiator = strdup(env);
		} else {
			gethostname(hn, sizeof(hn) - 1);
			for (q = hn; *q; q++)
				if (!(isalnum((unsigned char)*q) || *q == '.' || *q == '-'))
					*q = '-';
				else
					*q = (char)tolower((unsigned char)*q);
			if (asprintf(&u->initiator, INITIATOR_PREFIX "%s", hn) < 0)
				u->initiator = NULL;
		}
		if (!u->initiator) {
			rc = vsm_error_set(VSM_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (u->mode == ISC_MODE_MANAGED && (!u->tid || !u->dir)) {
		rc = bad(ds, uri, "mode=managed needs tid=N and dir=/PATH");
		goto out;
	}
	if (u->mode == ISC_MODE_POOL && (u->dir || u->tid || u->control_port >= 0)) {
		rc = bad(ds, uri, "tid=, dir= and control-port= belong to mode=managed");
		goto out;
	}
	if (!u->tgtadm && !(u->tgtadm = strdup("tgtadm"))) {
		rc = vsm_error_set(VSM_ENOMEM, "out of memory");
		goto out;
	}
	if (asprintf(&u->portal, strchr(u->host, ':') ? "[%s]:%u" : "%s:%u", u->host,
		     u->port) < 0) {
		u->portal = NULL;
		rc = vsm_error_set(VSM_ENOMEM, "out of memory");
		goto out;
	}
out:
	if (copy) {
		memset(copy, 0, copy_len);
		free(copy);
	}
	free(secret_file);
	if (rc < 0)
		isc_uri_clear(u);
	return rc;
}
