/*
 * Context lifetime, backend registration and logging.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctx.h"
#include "imgreg.h"
#include "lease.h"
#include "modules.h"

void vsm__ctx_lock(vsm_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
}

void vsm__ctx_unlock(vsm_ctx *ctx)
{
	pthread_mutex_unlock(&ctx->lock);
}

void vsm__log(vsm_ctx *ctx, int level, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	if (!ctx->log_cb || level < ctx->log_level)
		return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg)
		ctx->log_cb(level, msg, ctx->log_payload);
	free(msg);
}

static int mkdirs(const char *path)
{
	char *buf = vsm__strdup(path), *p;
	int rc = 0;

	if (!buf)
		return -VSM_ENOMEM;
	for (p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
			rc = vsm_err(errno == EACCES ? VSM_EPERM : VSM_EIO,
				     "cannot create state directory '%s': %s", buf, strerror(errno));
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(buf);
	return rc;
}

static char *default_state_dir(void)
{
	const char *env = getenv("VSM_STATE_DIR"), *home;
	char *dir = NULL;

	if (env && *env)
		return vsm__strdup(env);
	home = getenv("HOME");
	if (!home || !*home) {
		vsm_err(VSM_EINVAL, "no state directory given and neither VSM_STATE_DIR "
			"nor HOME is set");
		return NULL;
	}
	if (asprintf(&dir, "%s/.local/state/vsm", home) < 0) {
		vsm_err(VSM_ENOMEM, "out of memory");
		return NULL;
	}
	return dir;
}

/* The lease layer logs through the context without knowing it. */
static void lease_log(void *cookie, int level, const char *msg)
{
	vsm__log(cookie, level, "%s", msg);
}

int vsm__destroy_hook_register(vsm_ctx *ctx, vsm__destroy_hook fn)
{
	vsm__destroy_hook *grown;

	grown = realloc(ctx->destroy_hooks, (ctx->n_destroy_hooks + 1) * sizeof(*grown));
	if (!grown)
		return vsm_err(VSM_ENOMEM, "out of memory");
	ctx->destroy_hooks = grown;
	ctx->destroy_hooks[ctx->n_destroy_hooks++] = fn;
	return 0;
}

int vsm__ctx_new(vsm_ctx **out, const vsm_ctx_opts *opts)
{
	vsm_ctx_opts defaults = VSM_CTX_OPTS_INIT;
	pthread_mutexattr_t attr;
	vsm_lease_env lease_env;
	char *catalog_path = NULL;
	vsm_ctx *ctx;
	int rc;

	vsm__error_reset();
	if (!out)
		return vsm_err(VSM_EINVAL, "vsm_ctx_open: out is NULL");
	if (!opts)
		opts = &defaults;
	if (opts->version == 0 || opts->version > VSM_CTX_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_ctx_opts version %u is not supported",
			       opts->version);
	if (!(ctx = vsm__calloc(1, sizeof(*ctx))))
		return -VSM_ENOMEM;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&ctx->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	ctx->log_cb = opts->log_cb;
	ctx->log_payload = opts->log_payload;
	ctx->log_level = opts->log_level;
	{
		char u[VSM_UUID_STRLEN + 1];

		/* Names this context in the journal's owners (workflow.c). */
		vsm__uuid_new(u);
		snprintf(ctx->wf_nonce, sizeof(ctx->wf_nonce), "%.8s%.4s%.4s", u, u + 9, u + 14);
	}
	ctx->state_dir = opts->state_dir ? vsm__strdup(opts->state_dir) : default_state_dir();
	if (!ctx->state_dir) {
		rc = -vsm__error_code();
		goto fail;
	}
	if ((rc = mkdirs(ctx->state_dir)) < 0 || (rc = vsm__events_init(&ctx->events)) < 0 ||
	    (rc = vsm__imgreg_new(&ctx->imgreg)) < 0)
		goto fail;
	lease_env.state_dir = ctx->state_dir;
	lease_env.events = ctx->events;
	lease_env.log = lease_log;
	lease_env.log_cookie = ctx;
	if ((rc = vsm__lease_mgr_new(&ctx->leases, &lease_env,
				     (opts->flags & VSM_CTX_LEASE_MANUAL) != 0)) < 0)
		goto fail;
	if (asprintf(&catalog_path, "%s/catalog.db", ctx->state_dir) < 0) {
		catalog_path = NULL;
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = vsm_catalog_open(&ctx->cat, catalog_path)) < 0)
		goto fail;
	free(catalog_path);
	catalog_path = NULL;
	*out = ctx;
	vsm__error_reset();
	return 0;
fail:
	free(catalog_path);
	vsm__saved_error saved;

	vsm__error_save(&saved);
	vsm_ctx_free(ctx);
	vsm__error_restore(&saved);
	return rc;
}

VSM_API void vsm_ctx_free(vsm_ctx *ctx)
{
	vsm_dstore *ds, *next;

	if (!ctx)
		return;
	/* No renewal may touch a datastore while it closes. */
	vsm__lease_mgr_stop(ctx->leases);
	vsm__imgreg_free(ctx->imgreg);
	for (ds = ctx->open; ds; ds = next) {
		next = ds->next;
		vsm__ds_close(ds);
	}
	vsm__lease_mgr_free(ctx->leases);
	/* Stop event delivery before anything a callback might touch goes. */
	vsm__events_free(ctx->events);
	vsm_catalog_close(ctx->cat);
	for (size_t i = 0; i < ctx->n_backends; i++)
		free(ctx->backends[i]);
	free(ctx->backends);
	free(ctx->wf_actions);
	free(ctx->destroy_hooks);
	if (ctx->flow_free)
		ctx->flow_free(ctx->flow);
	vsm__hv_list_free(&ctx->hv);
	vsm__modules_free(ctx->modules); /* nothing may call into one now */
	free(ctx->state_dir);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
}

VSM_API const char *vsm_ctx_state_dir(const vsm_ctx *ctx)
{
	return ctx ? ctx->state_dir : NULL;
}

/* What version 1 of struct vsm_datastore_ops needs to hold. */
#define DS_OPS_V1_SIZE (offsetof(struct vsm_datastore_ops, device_open) + \
			sizeof(((struct vsm_datastore_ops *)0)->device_open))

static bool scheme_served(vsm_ctx *ctx, const char *scheme, size_t len)
{
	for (size_t i = 0; i < ctx->n_backends; i++) {
		const struct vsm_datastore_ops *o = &ctx->backends[i]->ops;

		if (strlen(o->scheme) == len && !strncmp(o->scheme, scheme, len))
			return true;
		for (size_t j = 0; o->scheme_aliases && o->scheme_aliases[j]; j++)
			if (strlen(o->scheme_aliases[j]) == len &&
			    !strncmp(o->scheme_aliases[j], scheme, len))
				return true;
	}
	return false;
}

int vsm__backend_add(vsm_ctx *ctx, const struct vsm_datastore_ops *ops,
		     const struct vsm_backend_ops *v1, void *payload)
{
	struct vsm_datastore_ops copy;
	vsm_backend_reg **grown, *reg;
	const char *missing = NULL;
	size_t i;
	int rc = 0;

	if (ops->version == 0 || ops->version > VSM_DATASTORE_OPS_VERSION)
		return vsm_err(VSM_EVERSION, "backend '%s': datastore ops version %u is not "
			       "supported (this library knows 1..%d)",
			       ops->scheme ? ops->scheme : "?", ops->version,
			       VSM_DATASTORE_OPS_VERSION);
	if (ops->size < DS_OPS_V1_SIZE)
		return vsm_err(VSM_EINVAL, "backend '%s': datastore ops size %u is smaller than "
			       "version 1 needs (%zu)", ops->scheme ? ops->scheme : "?",
			       ops->size, (size_t)DS_OPS_V1_SIZE);
	/* Never read past what the backend says it has. */
	memset(&copy, 0, sizeof(copy));
	memcpy(&copy, ops, ops->size < sizeof(copy) ? ops->size : sizeof(copy));
	copy.size = sizeof(copy);
	/* Fields a version-1 table does not know are not read from it, even
	 * when its size says there is something there. */
	if (ops->version < 2)
		copy.device_allocated = NULL;
	if (ops->version < 3)
		copy.domain_fence = NULL;
#define REQUIRE(f) if (!missing && !copy.f) missing = #f
	REQUIRE(scheme);
	REQUIRE(open);
	REQUIRE(close);
	REQUIRE(capacity);
	if (!v1) {
		REQUIRE(meta_open);
	}
	REQUIRE(device_create);
	REQUIRE(device_delete);
	REQUIRE(host_attach);
	REQUIRE(host_detach);
	REQUIRE(device_deploy);
	REQUIRE(device_undeploy);
	if (!v1) {
		REQUIRE(device_open);
	}
#undef REQUIRE
	if (missing)
		return vsm_err(VSM_EINVAL, "backend '%s': required callback '%s' is missing",
			       copy.scheme ? copy.scheme : "?", missing);
	if (vsm__name_check("backend scheme", copy.scheme) < 0)
		return -VSM_EINVAL;
	for (i = 0; copy.scheme_aliases && copy.scheme_aliases[i]; i++)
		if (vsm__name_check("backend scheme alias", copy.scheme_aliases[i]) < 0)
			return -VSM_EINVAL;
	vsm__ctx_lock(ctx);
	for (i = 0; i == 0 || (copy.scheme_aliases && copy.scheme_aliases[i - 1]); i++) {
		const char *sch = i == 0 ? copy.scheme : copy.scheme_aliases[i - 1];

		if (scheme_served(ctx, sch, strlen(sch))) {
			rc = vsm_err(VSM_EEXISTS, "backend for scheme '%s' is already registered",
				     sch);
			goto out;
		}
	}
	if (!(reg = vsm__calloc(1, sizeof(*reg)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	if (!(grown = realloc(ctx->backends, (ctx->n_backends + 1) * sizeof(*grown)))) {
		free(reg);
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	reg->ops = copy;
	if (v1)
		reg->v1 = *v1;
	reg->payload = payload;
	ctx->backends = grown;
	ctx->backends[ctx->n_backends++] = reg;
	/* Workflows left on datastores of this scheme are finished by the
	 * first change of each (vsm__ds_change_begin), not here. */
	vsm__error_reset();
out:
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_datastore_ops_register(vsm_ctx *ctx, const struct vsm_datastore_ops *ops,
				       void *payload)
{
	vsm__error_reset();
	if (!ctx || !ops)
		return vsm_err(VSM_EINVAL, "vsm_datastore_ops_register: ctx or ops is NULL");
	return vsm__backend_add(ctx, ops, NULL, payload);
}

const vsm_backend_reg *vsm__backend_for_uri(vsm_ctx *ctx, const char *uri)
{
	const char *colon = strchr(uri, ':');
	size_t i, len;

	if (!colon) {
		vsm_err(VSM_EINVAL, "'%s' is not a URI (no scheme)", uri);
		return NULL;
	}
	len = (size_t)(colon - uri);
	for (i = 0; i < ctx->n_backends; i++) {
		const struct vsm_datastore_ops *o = &ctx->backends[i]->ops;

		if (strlen(o->scheme) == len && !strncmp(o->scheme, uri, len))
			return ctx->backends[i];
		for (size_t j = 0; o->scheme_aliases && o->scheme_aliases[j]; j++)
			if (strlen(o->scheme_aliases[j]) == len &&
			    !strncmp(o->scheme_aliases[j], uri, len))
				return ctx->backends[i];
	}
	vsm_err(VSM_ENOTSUP, "no backend handles URI scheme '%.*s' (in '%s')", (int)len,
		uri, uri);
	return NULL;
}

VSM_API int vsm_event_register(vsm_ctx *ctx, vsm_event_cb cb, void *payload, int *out_id)
{
	vsm__error_reset();
	if (!ctx || !cb)
		return vsm_err(VSM_EINVAL, "vsm_event_register: ctx or callback is NULL");
	return vsm__events_subscribe(ctx->events, cb, payload, out_id);
}

VSM_API int vsm_event_unregister(vsm_ctx *ctx, int id)
{
	vsm__error_reset();
	if (!ctx)
		return vsm_err(VSM_EINVAL, "vsm_event_unregister: ctx is NULL");
	return vsm__events_unsubscribe(ctx->events, id);
}

VSM_API int vsm_backend_lookup(vsm_ctx *ctx, const char *uri)
{
	const vsm_backend_reg *be;

	vsm__error_reset();
	if (!ctx || !uri || !strchr(uri, ':'))
		return vsm_err(VSM_EINVAL, "vsm_backend_lookup: ctx is NULL or '%s' is not a URI",
			       uri ? uri : "(null)");
	vsm__ctx_lock(ctx);
	be = vsm__backend_for_uri(ctx, uri);
	vsm__ctx_unlock(ctx);
	if (be)
		return 0;
	return vsm_err(VSM_ENOTFOUND, "backend '%.*s' not loaded", (int)strcspn(uri, ":"), uri);
}
