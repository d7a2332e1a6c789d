/*
 * The attachment's share of a live migration (lib/checkpoint/
 * migrate_live.c): the hidden target record is attached to the host
 * the source is attached to, with this context taking its lease on the
 * target datastore, before the switch; the source's host side and lease
 * are let go after it.
 */
#include <stdlib.h>
#include <string.h>

#include "becall.h"
#include "container_int.h"
#include "lease.h"

int vsm__attach_incoming(vsm_ctx *ctx, vsm_dstore *tds, const char *uuid, const char *host)
{
	const vsm_record *cur;
	vsm_record *r = NULL;
	uint64_t lver = 0;
	bool took_over = false;
	char *hv = NULL;
	int rc;

	if ((rc = vsm__ds_refresh(ctx, tds)) < 0)
		return rc;
	if (!(cur = vsm__ds_find(tds, NULL, uuid)))
		return vsm_err(VSM_ESTATE, "datastore '%s': the copy of container %s went away",
			       tds->name, uuid);
	if (!(r = vsm_record_dup(cur)))
		return -VSM_ENOMEM;
	if ((rc = vsm__lease_acquire(tds->lease, r, host, VSM__LEASE_SAME_HOST, &lver,
				     &took_over)) < 0)
		goto out;
	hv = vsm__host_uri(ctx, host);
	if ((rc = vsm__be_host_attach(tds, host, hv, 0)) < 0) {
		vsm__error_prefix("datastore '%s'", tds->name);
		goto release;
	}
	r->lease_version = lver;
	if ((rc = vsm_record_set_host(r, host)) < 0 || (rc = vsm__ds_put_record(ctx, tds, r)) < 0) {
		vsm__saved_error e;

		vsm__error_save(&e);
		vsm__be_host_detach(tds, host, hv, 0);
		vsm__error_restore(&e);
		goto release;
	}
	goto out;
release:
	{
		vsm__saved_error e;

		vsm__error_save(&e);
		vsm__lease_release(tds->lease, r);
		vsm__error_restore(&e);
	}
out:
	free(hv);
	vsm_record_free(r);
	return rc;
}

void vsm__attach_let_go(vsm_ctx *ctx, vsm_dstore *ds, const vsm_record *r)
{
	vsm__saved_error e;
	char *hv;

	if (!r->attached_host)
		return;
	vsm__error_save(&e);
	hv = vsm__host_uri(ctx, r->attached_host);
	if (vsm__be_host_detach(ds, r->attached_host, hv, 0) < 0 ||
	    vsm__lease_release(ds->lease, r) < 0)
		vsm__log(ctx, VSM_LOG_WARN, "datastore '%s': container '%s': %s", ds->name,
			 r->name, vsm_error_last() ? vsm_error_last()->message : "?");
	free(hv);
	vsm__error_restore(&e);
}
