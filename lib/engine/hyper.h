/*
 * The hypervisor drivers a context knows (include/vsm/hypervisor.h), and
 * the core's way to them: find the driver for a hypervisor URI, and call
 * its ops with the error prefixed once, by the URI and the domain.
 */
#ifndef VSM_HYPER_H
#define VSM_HYPER_H

#include <stdbool.h>
#include <stdint.h>

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

/* Block copy of a running domain's disk (ops version 2; a driver
 * without them answers -VSM_ENOTSUP). A job holds its driver, URI,
 * domain and disk; vsm__hv_copy_end() pivots (@pivot) or aborts it and
 * frees it whatever it returns (NULL: nothing). _wait: 1 ready, 0 not
 * yet after @timeout_ms, < 0 failed. */
typedef struct vsm__hv_job vsm__hv_job;
int vsm__hv_copy_start(vsm__hv_job **out, struct vsm_ctx *ctx, const char *uri,
		       const char *domain, const char *disk, const char *dest_xml,
		       unsigned int flags);
int vsm__hv_copy_wait(vsm__hv_job *j, unsigned int timeout_ms, uint64_t *cur, uint64_t *end);
int vsm__hv_copy_end(vsm__hv_job *j, bool pivot);
/* Abort a copy job on @disk without its handle; none is 0. */
int vsm__hv_copy_cancel(struct vsm_ctx *ctx, const char *uri, const char *domain,
			const char *disk);
/* *@source: malloc'd path (or name) disk @disk of @domain reads. */
int vsm__hv_disk_source(struct vsm_ctx *ctx, const char *uri, const char *domain,
			const char *disk, char **source);

#endif /* VSM_HYPER_H */
