/*
 * The backends compiled into the library, registered with every new
 * context. Each registers through the public vsm_backend_register(), the
 * same door an out-of-tree backend uses.
 */
#include "vsm-config.h"

#include "ctx.h"
#include "../backends/file/file.h"
#if VSM_BUILTIN_LIBVIRT
#include "../backends/libvirt/libvirt-backend.h"
#endif
#if VSM_BUILTIN_ISCSI
#include "../backends/iscsi/iscsi-backend.h"
#endif

int vsm__register_builtins(vsm_ctx *ctx)
{
	int rc = vsm_datastore_ops_register(ctx, &vsm__file_backend_ops, NULL);

#if VSM_BUILTIN_LIBVIRT
	if (rc == 0)
		rc = vsm_datastore_ops_register(ctx, &vsm__libvirt_backend_ops, NULL);
#endif
#if VSM_BUILTIN_ISCSI
	/* One table: each LUN reports COMPARE AND WRITE in its own caps;
	 * "iscsi-caw" is an alias of "iscsi" (doc/iscsi.md). */
	if (rc == 0)
		rc = vsm_datastore_ops_register(ctx, &vsm__iscsi_backend_ops, NULL);
#endif
	return rc;
}
