/*
 * The hypervisor drivers a context knows (include/vsm/hypervisor.h), and
 * the core's way to them: find the driver for a hypervisor URI, and call
 * its ops with the error prefixed once, by the URI and the domain.
 */
#ifndef VSM_HYPER_H
#define VSM_HYPER_H

#include "vsm/hypervisor.h"

struct vsm_ctx;

/* The registered drivers, newest last (struct vsm_ctx.hv). */
typedef struct vsm__hv_list {
	const vsm_hypervisor_ops **ops;
	size_t n;
} vsm__hv_list;

void vsm__hv_list_free(vsm__hv_list *l);

/* The driver for @uri: the last registered one whose handles(@uri) is 1.
 * -VSM_EINVAL for a NULL or empty @uri; -VSM_ENOTSUP, with a message
 * naming @uri, when no driver handles it. Takes the context's lock. */
int vsm__hv_for(struct vsm_ctx *ctx, const char *uri, const vsm_hypervisor_ops **out);

/* The ops through the driver for @uri. A failure's message reads
 * "hypervisor '<uri>': domain '<name>': <the driver's words>". */
int vsm__hv_define(struct vsm_ctx *ctx, const char *uri, const vsm_hv_domain_spec *spec);
int vsm__hv_start(struct vsm_ctx *ctx, const char *uri, const char *name);
/* VSM_HV_* (VSM_HV_NONE when there is no such domain), or < 0. */
int vsm__hv_state(struct vsm_ctx *ctx, const char *uri, const char *name);
int vsm__hv_pause(struct vsm_ctx *ctx, const char *uri, const char *name);
int vsm__hv_resume(struct vsm_ctx *ctx, const char *uri, const char *name);
int vsm__hv_remove(struct vsm_ctx *ctx, const char *uri, const char *name);
/* *@xml: malloc'd, the caller frees it. */
int vsm__hv_xml(struct vsm_ctx *ctx, const char *uri, const char *name, char **xml);

#endif /* VSM_HYPER_H */
