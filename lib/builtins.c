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
	int rc = vsm_backend_register(ctx, &vsm__file_backend_ops, NULL);

#if VSM_BUILTIN_LIBVIRT
	if (rc == 0)
		rc = vsm_backend_register(ctx, &vsm__libvirt_backend_ops, NULL);
#endif
#if VSM_BUILTIN_ISCSI
	/* Two schemes, because vtable v1 fixes compare-and-write per table:
	 * "iscsi" works on any target (leases take the plain protocol),
	 * "iscsi-caw" maps to SCSI COMPARE AND WRITE and refuses targets
	 * without it (doc/iscsi.md). */
	if (rc == 0)
		rc = vsm_backend_register(ctx, &vsm__iscsi_backend_ops, NULL);
	if (rc == 0)
		rc = vsm_backend_register(ctx, &vsm__iscsi_caw_backend_ops, NULL);
#endif
	return rc;
}
