/*
 * The libvirt backend's plumbing: datastore URI parsing, libvirt's
 * process-wide setup and event loop thread, turning libvirt errors into
 * ours, and the pool event watch that feeds the core's notify callback.
 *
 * libvirt's error handler and event loop are process-wide by libvirt's
 * design, so this file keeps the only process-wide state of the backend:
 * the event loop thread is shared by every datastore of every context
 * and runs while at least one libvirt datastore is open.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/virterror.h>
#include <libxml/parser.h>

#include "lv-int.h"

#define SCHEME "libvirt://"
#define DEFAULT_CONNECT "qemu:///system"

/* --- URI --- */

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

int lv_uri_parse(const char *uri, char **pool, char **connect)
{
	const char *p, *q;
	char *out, *o;

	*pool = *connect = NULL;
	if (!uri || strncmp(uri, SCHEME, strlen(SCHEME)) != 0)
		return vsm_error_set(VSM_EINVAL, "URI '%s' is not "
				     "libvirt:///POOL[?connect=URI]", uri ? uri : "");
	p = uri + strlen(SCHEME);
	if (*p != '/')
		return vsm_error_set(VSM_EINVAL, "URI '%s' names a host; give "
				     "it in the connection instead "
				     "(libvirt:///POOL?connect=qemu+ssh://HOST/system)", uri);
	p++;
	q = strchr(p, '?');
	if (!q)
		q = p + strlen(p);
	if (q == p)
		return vsm_error_set(VSM_EINVAL, "URI '%s' names no pool", uri);
	if (!(out = malloc((size_t)(q - p) + 1)))
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	/* The pool name may be percent-encoded; nothing else is decoded. */
	for (o = out; p < q; p++) {
		if (*p == '%' && q - p >= 3 && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
			*o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
			p += 2;
		} else if (*p == '/') {
			free(out);
			return vsm_error_set(VSM_EINVAL, "URI '%s': the pool name "
					     "may not contain '/'", uri);
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	if (!out[0]) {
		free(out);
		return vsm_error_set(VSM_EINVAL, "URI '%s' names no pool", uri);
	}
	if (*q == '?') {
		/* The connection URI has queries of its own (?socket=...), so
		 * connect= must come alone and takes the rest verbatim. */
		if (strncmp(q + 1, "connect=", 8) != 0 || !q[9]) {
			free(out);
			return vsm_error_set(VSM_EINVAL, "URI '%s': expected "
					     "'?connect=URI' after the pool name", uri);
		}
		*connect = strdup(q + 9);
	} else {
		*connect = strdup(DEFAULT_CONNECT);
	}
	if (!*connect) {
		free(out);
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	}
	*pool = out;
	return 0;
}

/* --- errors --- */

static void quiet_error(void *payload, virErrorPtr err)
{
	(void)payload;
	(void)err;
}

static int map_code(const virError *e)
{
	if (!e)
		return VSM_EIO;
	switch (e->code) {
	case VIR_ERR_NO_STORAGE_POOL:
	case VIR_ERR_NO_STORAGE_VOL:
	case VIR_ERR_NO_DOMAIN:
	case VIR_ERR_DEVICE_MISSING:
		return VSM_ENOTFOUND;
	case VIR_ERR_STORAGE_VOL_EXIST:
	case VIR_ERR_DOM_EXIST:
		return VSM_EEXISTS;
	case VIR_ERR_NO_SUPPORT:
	case VIR_ERR_OPERATION_UNSUPPORTED:
	case VIR_ERR_ARGUMENT_UNSUPPORTED:
	case VIR_ERR_CONFIG_UNSUPPORTED:
		return VSM_ENOTSUP;
	case VIR_ERR_AUTH_FAILED:
	case VIR_ERR_AUTH_CANCELLED:
	case VIR_ERR_AUTH_UNAVAILABLE:
	case VIR_ERR_ACCESS_DENIED:
	case VIR_ERR_OPERATION_DENIED:
		return VSM_EPERM;
	case VIR_ERR_OPERATION_INVALID:
		return VSM_ESTATE;
	case VIR_ERR_INVALID_ARG:
	case VIR_ERR_XML_ERROR:
	case VIR_ERR_XML_DETAIL:
	case VIR_ERR_INVALID_STORAGE_POOL:
	case VIR_ERR_INVALID_STORAGE_VOL:
		return VSM_EINVAL;
	case VIR_ERR_NO_MEMORY:
		return VSM_ENOMEM;
	case VIR_ERR_OPERATION_TIMEOUT:
	case VIR_ERR_AGENT_UNRESPONSIVE:
		return VSM_EBUSY;
	case VIR_ERR_SYSTEM_ERROR:
		/* libvirt keeps the errno of system errors in int1. */
		switch (e->int1) {
		case ENOSPC: case EDQUOT: return VSM_ENOSPC;
		case EEXIST: return VSM_EEXISTS;
		case ENOENT: return VSM_ENOTFOUND;
		case EACCES: case EPERM: case EROFS: return VSM_EPERM;
		}
		return VSM_EIO;
	default:
		return VSM_EIO;
	}
}

int lv_last_code(void)
{
	virErrorPtr e = virGetLastError();

	return e ? e->code : VIR_ERR_OK;
}

int lv_error(const char *fmt, ...)
{
	virErrorPtr e = virGetLastError();
	char *ours = NULL;
	va_list ap;
	int code = map_code(e), n;

	va_start(ap, fmt);
	n = vasprintf(&ours, fmt, ap);
	va_end(ap);
	if (n < 0)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	n = vsm_error_set(code, "%s: %s", ours, virGetLastErrorMessage());
	free(ours);
	virResetLastError();
	return n;
}

/* --- process-wide setup and the event loop thread --- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_failed;
static bool own_loop; /* we registered libvirt's default event loop */

static pthread_mutex_t loop_lock = PTHREAD_MUTEX_INITIALIZER;
static int loop_users;
static bool loop_running;
static pthread_t loop_thread;
static atomic_bool loop_quit;

static void noop_timeout(int timer, void *opaque)
{
	(void)timer;
	(void)opaque;
}

static void global_init(void)
{
	int t;

	if (virInitialize() < 0) {
		init_failed = 1;
		return;
	}
	virSetErrorFunc(NULL, quiet_error);
	xmlInitParser();
	/* An application with its own libvirt event loop (libvirt-glib, ...)
	 * keeps it: adding a timer works only when some loop is registered. */
	t = virEventAddTimeout(-1, noop_timeout, NULL, NULL);
	if (t >= 0) {
		virEventRemoveTimeout(t);
		own_loop = false;
		return;
	}
	virResetLastError();
	if (virEventRegisterDefaultImpl() < 0) {
		init_failed = 1;
		return;
	}
	own_loop = true;
}

static void *loop_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&loop_quit)) {
		if (virEventRunDefaultImpl() < 0)
			usleep(100 * 1000); /* do not spin on a broken loop */
	}
	return NULL;
}

static void wake_timeout(int timer, void *opaque)
{
	(void)opaque;
	virEventRemoveTimeout(timer);
}

int lv_init(void)
{
	pthread_once(&init_once, global_init);
	if (init_failed)
		return lv_error("cannot initialise libvirt");
	return 0;
}

int lv_loop_ref(bool *ref)
{
	int rc;

	*ref = false;
	if ((rc = lv_init()) < 0)
		return rc;
	if (!own_loop)
		return 0;
	pthread_mutex_lock(&loop_lock);
	if (!loop_running) {
		atomic_store(&loop_quit, false);
		if ((rc = pthread_create(&loop_thread, NULL, loop_main, NULL)) != 0) {
			pthread_mutex_unlock(&loop_lock);
			return vsm_error_set(VSM_ENOMEM, "cannot start the libvirt event loop "
					     "thread: %s", strerror(rc));
		}
		loop_running = true;
	}
	loop_users++;
	*ref = true;
	pthread_mutex_unlock(&loop_lock);
	return 0;
}

void lv_loop_unref(void)
{
	pthread_mutex_lock(&loop_lock);
	if (--loop_users == 0 && loop_running) {
		atomic_store(&loop_quit, true);
		/* A new timer interrupts the loop's poll; its iteration also
		 * releases what closed connections removed from the loop. */
		if (virEventAddTimeout(0, wake_timeout, NULL, NULL) < 0)
			virResetLastError();
		pthread_join(loop_thread, NULL);
		loop_running = false;
	}
	pthread_mutex_unlock(&loop_lock);
}

/* libvirt's test driver keeps its domains only while a connection to it
 * is open, and each call here opens and closes its own: a domain that one
 * call defines would be gone for the next (vsmctl's `group recover
 * --start` defines, then starts). So the first connection to a test URI
 * stays open for the life of the process and every later one is a new
 * reference to it; the caller's virConnectClose drops only that
 * reference. Any other driver keeps its state itself. */
static pthread_mutex_t test_lock = PTHREAD_MUTEX_INITIALIZER;
static virConnectPtr test_conn;
static char *test_uri;

static int test_connect(virConnectPtr *out, const char *uri, const char *who)
{
	pthread_mutex_lock(&test_lock);
	if (!test_conn) {
		if (!(test_uri = strdup(uri))) {
			pthread_mutex_unlock(&test_lock);
			return vsm_error_set(VSM_ENOMEM, "%s: out of memory", who);
		}
		if (!(test_conn = virConnectOpen(uri))) {
			free(test_uri);
			test_uri = NULL;
			pthread_mutex_unlock(&test_lock);
			return lv_error("%s: cannot connect to '%s'", who, uri);
		}
	}
	if (strcmp(test_uri, uri) != 0) {
		/* Another test URI (a driver file): no sharing, as before. */
		pthread_mutex_unlock(&test_lock);
		if (!(*out = virConnectOpen(uri)))
			return lv_error("%s: cannot connect to '%s'", who, uri);
		return 0;
	}
	virConnectRef(test_conn);
	*out = test_conn;
	pthread_mutex_unlock(&test_lock);
	return 0;
}

int lv_connect(virConnectPtr *out, const char *uri, const char *who)
{
	int rc;

	/* Setup must precede the first connection: the remote driver only
	 * delivers events when a loop was registered before it connected. */
	if ((rc = lv_init()) < 0)
		return rc;
	if (strncmp(uri, "test:", 5) == 0)
		return test_connect(out, uri, who);
	*out = virConnectOpen(uri);
	if (!*out)
		return lv_error("%s: cannot connect to '%s'", who, uri);
	return 0;
}

/* --- pool events --- */

struct lv_watch {
	pthread_mutex_t lock;
	int refs;
	bool alive; /* false once the datastore closes */
	void (*notify)(void *cookie, int event, const char *detail);
	void *cookie;
	char *pool;
};

static void watch_unref(void *opaque)
{
	struct lv_watch *w = opaque;
	int left;

	pthread_mutex_lock(&w->lock);
	left = --w->refs;
	pthread_mutex_unlock(&w->lock);
	if (left)
		return;
	pthread_mutex_destroy(&w->lock);
	free(w->pool);
	free(w);
}

static void watch_fire(struct lv_watch *w, int event, const char *what)
{
	char detail[300];

	snprintf(detail, sizeof(detail), "libvirt pool '%s' %s", w->pool, what);
	/* Held across the call so close cannot free the core's cookie under us. */
	pthread_mutex_lock(&w->lock);
	if (w->alive)
		w->notify(w->cookie, event, detail);
	pthread_mutex_unlock(&w->lock);
}

static void on_lifecycle(virConnectPtr conn, virStoragePoolPtr pool, int event,
			 int detail, void *opaque)
{
	(void)conn;
	(void)pool;
	(void)detail;
	switch (event) {
	case VIR_STORAGE_POOL_EVENT_STOPPED:
		watch_fire(opaque, VSM_BACKEND_EVENT_LOST, "stopped");
		break;
	case VIR_STORAGE_POOL_EVENT_UNDEFINED:
		watch_fire(opaque, VSM_BACKEND_EVENT_LOST, "undefined");
		break;
	case VIR_STORAGE_POOL_EVENT_DELETED:
		watch_fire(opaque, VSM_BACKEND_EVENT_LOST, "deleted");
		break;
	case VIR_STORAGE_POOL_EVENT_STARTED:
		watch_fire(opaque, VSM_BACKEND_EVENT_CHANGED, "started");
		break;
	case VIR_STORAGE_POOL_EVENT_DEFINED:
		watch_fire(opaque, VSM_BACKEND_EVENT_CHANGED, "defined");
		break;
	default:
		watch_fire(opaque, VSM_BACKEND_EVENT_CHANGED, "changed");
		break;
	}
}

static void on_refresh(virConnectPtr conn, virStoragePoolPtr pool, void *opaque)
{
	(void)conn;
	(void)pool;
	watch_fire(opaque, VSM_BACKEND_EVENT_CHANGED, "refreshed");
}

void lv_watch_start(vsm_backend_ds *ds, const vsm_backend_open_args *args)
{
	struct lv_watch *w;

	ds->cb_ids[0] = ds->cb_ids[1] = -1;
	if (!args || !args->notify || !(w = calloc(1, sizeof(*w))))
		return;
	if (!(w->pool = strdup(ds->pool_name))) {
		free(w);
		return;
	}
	pthread_mutex_init(&w->lock, NULL);
	w->refs = 1;
	w->alive = true;
	w->notify = args->notify;
	w->cookie = args->notify_cookie;
	ds->watch = w;
	w->refs++;
	ds->cb_ids[0] = virConnectStoragePoolEventRegisterAny(
		ds->conn, ds->pool, VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE,
		VIR_STORAGE_POOL_EVENT_CALLBACK(on_lifecycle), w, watch_unref);
	if (ds->cb_ids[0] < 0)
		w->refs--;
	w->refs++;
	ds->cb_ids[1] = virConnectStoragePoolEventRegisterAny(
		ds->conn, ds->pool, VIR_STORAGE_POOL_EVENT_ID_REFRESH,
		VIR_STORAGE_POOL_EVENT_CALLBACK(on_refresh), w, watch_unref);
	if (ds->cb_ids[1] < 0)
		w->refs--;
	virResetLastError();
}

void lv_watch_stop(vsm_backend_ds *ds)
{
	struct lv_watch *w = ds->watch;
	int i;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->alive = false;
	pthread_mutex_unlock(&w->lock);
	for (i = 0; i < 2; i++)
		if (ds->cb_ids[i] >= 0 &&
		    virConnectStoragePoolEventDeregisterAny(ds->conn, ds->cb_ids[i]) < 0)
			virResetLastError();
	ds->watch = NULL;
	watch_unref(w);
}
