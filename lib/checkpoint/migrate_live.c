/*
 * Live migration of an attached container written through this
 * context's vsm_image handles: iterative pre-copy over dirty tracking,
 * a switchover rule, synchronous mirroring or abort when it does not
 * converge (doc/migration.md).
 */
#include "migrate_int.h"

int ck_mig_live_image(vsm_container *c, const char *datastore, const vsm_migrate_opts *opts)
{
	(void)opts;
	return vsm_err(VSM_ENOTSUP, "live migration of container '%s' to datastore '%s' "
		       "is not built yet", vsm_container_name(c), datastore);
}
