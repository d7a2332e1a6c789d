/*
 * The thread-local last error: every public call clears it on entry and
 * every failure path sets it with a message naming the object.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* One per thread; freed only when the thread's next error replaces it,
 * so the message pointer handed out stays valid until the next call. */
static _Thread_local vsm_error tls_error;
static _Thread_local char *tls_message;
static _Thread_local bool tls_set;

/* Frees a thread's last message when the thread exits. */
static pthread_key_t message_key;
static pthread_once_t message_once = PTHREAD_ONCE_INIT;

static void make_key(void)
{
	pthread_key_create(&message_key, free);
}

static void own_message(char *msg)
{
	free(tls_message);
	tls_message = msg;
	pthread_once(&message_once, make_key);
	pthread_setspecific(message_key, msg);
}

static void set_message(int code, char *msg)
{
	own_message(msg);
	tls_error.code = code < 0 ? -code : code;
	tls_error.message = msg ? msg : vsm_strerror(code);
	tls_set = true;
}

VSM_API const vsm_error *vsm_error_last(void)
{
	return tls_set ? &tls_error : NULL;
}

VSM_API void vsm_error_clear(void)
{
	own_message(NULL);
	tls_error.code = 0;
	tls_error.message = NULL;
	tls_set = false;
}

void vsm__error_reset(void)
{
	if (tls_set)
		vsm_error_clear();
}

int vsm__error_code(void)
{
	return tls_set ? tls_error.code : 0;
}

VSM_API int vsm_error_set(int code, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	if (code < 0)
		code = -code;
	if (code == 0)
		code = VSM_EINTERNAL;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	set_message(code, msg);
	return -code;
}

/*
 * The core names the object a message is about, and a backend (or a lower
 * layer) may have named it already: "datastore 'u1': datastore 'u1': ..."
 * helps nobody. When @msg starts with the first part of @prefix (up to its
 * first ": "), that part is dropped from @msg.
 */
static const char *skip_repeat(const char *prefix, const char *msg)
{
	const char *colon = strstr(prefix, ": ");
	size_t head = colon ? (size_t)(colon - prefix) : strlen(prefix);

	if (msg && head > 0 && !strncmp(msg, prefix, head) && !strncmp(msg + head, ": ", 2))
		return msg + head + 2;
	return msg ? msg : "";
}

void vsm__error_prefix(const char *fmt, ...)
{
	char *prefix = NULL, *msg = NULL;
	va_list ap;

	if (!tls_set)
		return;
	va_start(ap, fmt);
	if (vasprintf(&prefix, fmt, ap) < 0)
		prefix = NULL;
	va_end(ap);
	if (!prefix)
		return;
	if (asprintf(&msg, "%s: %s", prefix, skip_repeat(prefix, tls_error.message)) >= 0)
		set_message(tls_error.code, msg);
	free(prefix);
}

void vsm__error_save(vsm__saved_error *s)
{
	s->code = tls_set ? tls_error.code : 0;
	s->message = tls_set && tls_error.message ? strdup(tls_error.message) : NULL;
}

void vsm__error_restore(vsm__saved_error *s)
{
	if (s->code)
		set_message(s->code, s->message);
	else {
		free(s->message);
		vsm_error_clear();
	}
	s->message = NULL;
}

VSM_API const char *vsm_strerror(int code)
{
	switch (code < 0 ? -code : code) {
	case VSM_OK: return "success";
	case VSM_EINVAL: return "invalid argument";
	case VSM_ENOMEM: return "out of memory";
	case VSM_ENOTFOUND: return "not found";
	case VSM_EEXISTS: return "already exists";
	case VSM_EBUSY: return "in use";
	case VSM_ENOSPC: return "no space left on datastore";
	case VSM_EIO: return "I/O error";
	case VSM_ECORRUPT: return "damaged data refused";
	case VSM_ENOTSUP: return "not supported";
	case VSM_EVERSION: return "unsupported version";
	case VSM_ESTATE: return "not allowed in the current state";
	case VSM_EMISMATCH: return "compare failed";
	case VSM_ELEASE: return "lease held by another host";
	case VSM_ESTALE: return "lease lost";
	case VSM_EPERM: return "permission denied";
	case VSM_EINTERNAL: return "internal error";
	case VSM_ECANCELED: return "cancelled";
	case VSM_ETIMEDOUT: return "deadline passed";
	}
	return "unknown error";
}

VSM_API const char *vsm_error_name(int code)
{
	static const char *const names[] = {
		[VSM_OK] = "OK", [VSM_EINVAL] = "EINVAL", [VSM_ENOMEM] = "ENOMEM",
		[VSM_ENOTFOUND] = "ENOTFOUND", [VSM_EEXISTS] = "EEXISTS", [VSM_EBUSY] = "EBUSY",
		[VSM_ENOSPC] = "ENOSPC", [VSM_EIO] = "EIO", [VSM_ECORRUPT] = "ECORRUPT",
		[VSM_ENOTSUP] = "ENOTSUP", [VSM_EVERSION] = "EVERSION", [VSM_ESTATE] = "ESTATE",
		[VSM_EMISMATCH] = "EMISMATCH", [VSM_ELEASE] = "ELEASE", [VSM_ESTALE] = "ESTALE",
		[VSM_EPERM] = "EPERM", [VSM_EINTERNAL] = "EINTERNAL",
		[VSM_ECANCELED] = "ECANCELED", [VSM_ETIMEDOUT] = "ETIMEDOUT",
	};
	unsigned int c = code < 0 ? (unsigned int)-(long)code : (unsigned int)code;

	return c < sizeof(names) / sizeof(names[0]) ? names[c] : NULL;
}
