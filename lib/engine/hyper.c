/*
 * Hypervisor drivers (include/vsm/hypervisor.h): their registration on a
 * context, the choice of a driver for a hypervisor URI, and the core's
 * calls of their ops. Like storage backends, drivers are registered
 * through the public door (lib/open.c adds the built-in libvirt one);
 * unlike them they are chosen by asking each, newest first, whether it
 * handles a URI, so that a driver registered later can take URIs from a
 * built-in one (a test's fake, a management tool's own driver).
 */
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "hyper.h"

void vsm__hv_list_free(vsm__hv_list *l)
{
	free(l->ops);
	l->ops = NULL;
	l->n = 0;
}

VSM_API int vsm_hypervisor_register(vsm_ctx *ctx, const vsm_hypervisor_ops *ops)
{
	const vsm_hypervisor_ops **grown;
	const char *missing = NULL;

	vsm__error_reset();
	if (!ctx || !ops)
		return vsm_err(VSM_EINVAL, "vsm_hypervisor_register: ctx or ops is NULL");
	/* A version-1 table has no size: only the version says what it holds. */
	if (ops->version == 0 || ops->version > VSM_HYPERVISOR_OPS_VERSION)
		return vsm_err(VSM_EVERSION, "hypervisor driver '%s': ops version %u is not "
			       "supported (this library knows 1..%d)",
			       ops->name ? ops->name : "?", ops->version,
			       VSM_HYPERVISOR_OPS_VERSION);
	if (!ops->name || !ops->name[0])
		return vsm_err(VSM_EINVAL, "hypervisor driver: no name");
#define REQUIRE(f) if (!missing && !ops->f) missing = #f
	REQUIRE(handles);
	REQUIRE(domain_define);
	REQUIRE(domain_start);
	REQUIRE(domain_state);
	REQUIRE(domain_pause);
	REQUIRE(domain_resume);
	REQUIRE(domain_remove);
	REQUIRE(domain_xml);
#undef REQUIRE
	if (missing)
		return vsm_err(VSM_EINVAL, "hypervisor driver '%s': required op '%s' is missing",
			       ops->name, missing);
	vsm__ctx_lock(ctx);
	grown = realloc(ctx->hv.ops, (ctx->hv.n + 1) * sizeof(*grown));
	if (!grown) {
		vsm__ctx_unlock(ctx);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	grown[ctx->hv.n] = ops;
	ctx->hv.ops = grown;
	ctx->hv.n++;
	vsm__ctx_unlock(ctx);
	return 0;
}

int vsm__hv_for(vsm_ctx *ctx, const char *uri, const vsm_hypervisor_ops **out)
{
	const vsm_hypervisor_ops *found = NULL;
	size_t i;

	*out = NULL;
	if (!uri || !uri[0])
		return vsm_err(VSM_EINVAL, "no hypervisor URI given");
	vsm__ctx_lock(ctx);
	for (i = ctx->hv.n; i > 0 && !found; i--)
		if (ctx->hv.ops[i - 1]->handles(uri) == 1)
			found = ctx->hv.ops[i - 1];
	vsm__ctx_unlock(ctx);
	if (!found)
		return vsm_err(VSM_ENOTSUP, "no hypervisor driver handles URI '%s'", uri);
	*out = found;
	return 0;
}

/* Around each op: the thread's error is cleared for the driver (so that
 * a failure without a message is told apart from an older error) and put
 * back when the op succeeds, so that an undo path calling in after a
 * failure keeps the first error. A driver's failure without a message
 * still gets one; either way it is prefixed with the URI (the driver
 * names the domain). */
static void hv_enter(vsm__saved_error *saved)
{
	vsm__error_save(saved);
	vsm__error_reset();
}

static int hv_fail(vsm__saved_error *saved, int rc, const char *uri, const char *op,
		   const char *name)
{
	if (rc >= 0) {
		vsm__error_restore(saved);
		return rc;
	}
	free(saved->message);
	saved->message = NULL;
	if (vsm__error_code() == 0)
		vsm_err(-rc, "domain '%s': %s failed (code %d)", name ? name : "?", op, rc);
	vsm__error_prefix("hypervisor '%s'", uri);
	return rc;
}

#define HV_GET(ctx, uri, hv)                                      \
	do {                                                      \
		int rc_ = vsm__hv_for((ctx), (uri), &(hv));       \
		if (rc_ < 0)                                      \
			return rc_;                               \
	} while (0)

static int name_given(const char *uri, const char *name)
{
	if (!name || !name[0])
		return vsm_err(VSM_EINVAL, "hypervisor '%s': no domain name given",
			       uri ? uri : "");
	return 0;
}

int vsm__hv_define(vsm_ctx *ctx, const char *uri, const vsm_hv_domain_spec *spec)
{
	const vsm_hypervisor_ops *hv;
	vsm__saved_error saved;
	int rc;

	if (!spec || spec->version == 0 || spec->version > VSM_HV_DOMAIN_SPEC_VERSION)
		return vsm_err(spec ? VSM_EVERSION : VSM_EINVAL,
			       "hypervisor '%s': domain spec %s", uri ? uri : "",
			       spec ? "version not supported" : "is NULL");
	if ((rc = name_given(uri, spec->name)) < 0)
		return rc;
	HV_GET(ctx, uri, hv);
	hv_enter(&saved);
	return hv_fail(&saved, hv->domain_define(uri, spec), uri, "define", spec->name);
}

/* The ops that take only a domain name. */
#define HV_NAME_OP(fn, op, label)                                                 \
	int fn(vsm_ctx *ctx, const char *uri, const char *name)                   \
	{                                                                         \
		const vsm_hypervisor_ops *hv;                                     \
		vsm__saved_error saved;                                           \
		int rc;                                                           \
                                                                                  \
		if ((rc = name_given(uri, name)) < 0)                             \
			return rc;                                                \
		HV_GET(ctx, uri, hv);                                             \
		hv_enter(&saved);                                                 \
		return hv_fail(&saved, hv->op(uri, name), uri, label, name);      \
	}

HV_NAME_OP(vsm__hv_start, domain_start, "start")
HV_NAME_OP(vsm__hv_state, domain_state, "state")
HV_NAME_OP(vsm__hv_pause, domain_pause, "pause")
HV_NAME_OP(vsm__hv_resume, domain_resume, "resume")
HV_NAME_OP(vsm__hv_remove, domain_remove, "remove")

int vsm__hv_xml(vsm_ctx *ctx, const char *uri, const char *name, char **xml)
{
	const vsm_hypervisor_ops *hv;
	vsm__saved_error saved;
	int rc;

	*xml = NULL;
	if ((rc = name_given(uri, name)) < 0)
		return rc;
	HV_GET(ctx, uri, hv);
	hv_enter(&saved);
	rc = hv->domain_xml(uri, name, xml);
	if (rc < 0) {
		free(*xml);
		*xml = NULL;
	}
	return hv_fail(&saved, rc, uri, "xml", name);
}

/* --- block copy (ops version 2) --- */

/* The version-2 op @field of @hv, or NULL: a version-1 table is shorter
 * and must not be read past its end. */
#define HV_OP2(hv, field) ((hv)->version >= 2 ? (hv)->field : NULL)

struct vsm__hv_job {
	const vsm_hypervisor_ops *hv;
	vsm_hv_copy *job;
	char *uri, *domain, *disk;
};

static int no_copy(const vsm_hypervisor_ops *hv, const char *uri)
{
	return vsm_err(VSM_ENOTSUP, "hypervisor '%s': driver '%s' cannot copy a running "
		       "domain's disk", uri, hv->name);
}

int vsm__hv_copy_start(vsm__hv_job **out, vsm_ctx *ctx, const char *uri, const char *domain,
		       const char *disk, const char *dest_xml, unsigned int flags)
{
	const vsm_hypervisor_ops *hv;
	vsm__saved_error saved;
	vsm__hv_job *j;
	int rc;

	*out = NULL;
	if ((rc = name_given(uri, domain)) < 0)
		return rc;
	if (!disk || !disk[0] || !dest_xml)
		return vsm_err(VSM_EINVAL, "hypervisor '%s': domain '%s': no disk or destination "
			       "given", uri, domain);
	HV_GET(ctx, uri, hv);
	if (!HV_OP2(hv, block_copy_start) || !HV_OP2(hv, block_copy_wait) ||
	    !HV_OP2(hv, block_copy_end))
		return no_copy(hv, uri);
	if (!(j = calloc(1, sizeof(*j))) || !(j->uri = vsm__strdup(uri)) ||
	    !(j->domain = vsm__strdup(domain)) || !(j->disk = vsm__strdup(disk))) {
		if (j) {
			free(j->uri);
			free(j->domain);
		}
		free(j);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	j->hv = hv;
	hv_enter(&saved);
	rc = hv->block_copy_start(&j->job, uri, domain, disk, dest_xml, flags);
	if (rc < 0 || !j->job) {
		if (rc >= 0)
			rc = vsm_err(VSM_EINTERNAL, "domain '%s': disk '%s': the driver started "
				     "no job", domain, disk);
		free(j->uri);
		free(j->domain);
		free(j->disk);
		free(j);
		return hv_fail(&saved, rc, uri, "block copy", domain);
	}
	*out = j;
	return hv_fail(&saved, 0, uri, "block copy", domain);
}

int vsm__hv_copy_wait(vsm__hv_job *j, unsigned int timeout_ms, uint64_t *cur, uint64_t *end)
{
	vsm__saved_error saved;

	hv_enter(&saved);
	return hv_fail(&saved, j->hv->block_copy_wait(j->job, timeout_ms, cur, end), j->uri,
		       "block copy", j->domain);
}

int vsm__hv_copy_end(vsm__hv_job *j, bool pivot)
{
	vsm__saved_error saved;
	int rc;

	if (!j)
		return 0;
	hv_enter(&saved);
	rc = hv_fail(&saved, j->hv->block_copy_end(j->job, pivot ? 1 : 0), j->uri,
		     pivot ? "pivot" : "block copy abort", j->domain);
	free(j->uri);
	free(j->domain);
	free(j->disk);
	free(j);
	return rc;
}

int vsm__hv_copy_cancel(vsm_ctx *ctx, const char *uri, const char *domain, const char *disk)
{
	const vsm_hypervisor_ops *hv;
	vsm__saved_error saved;
	int rc;

	if ((rc = name_given(uri, domain)) < 0)
		return rc;
	HV_GET(ctx, uri, hv);
	if (!HV_OP2(hv, block_copy_cancel))
		return no_copy(hv, uri);
	hv_enter(&saved);
	return hv_fail(&saved, hv->block_copy_cancel(uri, domain, disk), uri,
		       "block copy abort", domain);
}

int vsm__hv_disk_source(vsm_ctx *ctx, const char *uri, const char *domain, const char *disk,
			char **source)
{
	const vsm_hypervisor_ops *hv;
	vsm__saved_error saved;
	int rc;

	*source = NULL;
	if ((rc = name_given(uri, domain)) < 0)
		return rc;
	HV_GET(ctx, uri, hv);
	if (!HV_OP2(hv, disk_source))
		return vsm_err(VSM_ENOTSUP, "hypervisor '%s': driver '%s' cannot tell a disk's "
			       "source", uri, hv->name);
	hv_enter(&saved);
	rc = hv->disk_source(uri, domain, disk, source);
	if (rc < 0) {
		free(*source);
		*source = NULL;
	}
	return hv_fail(&saved, rc, uri, "disk source", domain);
}
