/*
 * Live migration of a container whose devices are deployed into a
 * running domain: the hypervisor's block copy moves the top layer onto a
 * target chain prepared by chain copy (doc/migration.md).
 */
#include "migrate_int.h"

bool ck_mig_has_deployment(vsm_container *c)
{
	(void)c;
	return false;
}

int ck_mig_live_domain(vsm_container *c, const char *datastore, const vsm_migrate_opts *opts)
{
	(void)opts;
	return vsm_err(VSM_ENOTSUP, "live migration of deployed container '%s' to datastore "
		       "'%s' is not built yet", vsm_container_name(c), datastore);
}
