/*
 * iSCSI backend: the vtable. A datastore is one target; devices are its
 * LUNs. The metadata LUN starts with a claim table (1 MiB, one block per
 * LUN number) that says which LUN belongs to which device, so every host
 * agrees; the core's metadata layout follows it, and the core only sees
 * the LUN from that offset on. doc/iscsi.md describes the bytes.
 *
 * Pool mode hands out the target's existing LUNs; managed mode (a local
 * tgtd) makes a file-backed LUN per device with tgtadm.
 *
 * This file owns the datastore (open, close, capacity), the ops table and
 * the error helpers the backend's other files share; isc-int.h says which
 * file owns the rest.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "iscsi-backend.h"
#include "isc-int.h"

/* ----------------------------------------------------------- helpers */

int isc_oom(void)
{
	return vsm_error_set(VSM_ENOMEM, "out of memory");
}

/* Put "@prefix: " before the thread's current error message. */
int isc_prefix_error(int rc, const char *prefix)
{
	const vsm_error *e = vsm_error_last();
	char msg[768];

	snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : vsm_strerror(rc));
	return vsm_error_set(rc, "%s: %s", prefix, msg);
}

/* ------------------------------------------------------------- datastore */

static int isc_open(vsm_backend_ds **out, const char *uri, const vsm_backend_open_args *args)
{
	bool caw_scheme = !strncmp(uri, "iscsi-caw:", 10);
	const char *name = args && args->name ? args->name : uri;
	vsm_backend_ds *ds = calloc(1, sizeof(*ds));
	int rc;

	if (!ds)
		return isc_oom();
	ds->meta_lun = -1;
	ds->caw_scheme = caw_scheme;
	pthread_mutex_init(&ds->lock, NULL);
	if (!(ds->name = strdup(name))) {
		rc = isc_oom();
		goto fail;
	}
	if ((rc = isc_uri_parse(&ds->u, uri, name)) < 0)
		goto fail;
	if (ds->u.mode == ISC_MODE_MANAGED) {
		struct stat st;

		if (stat(ds->u.dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			rc = vsm_error_set(VSM_ENOTFOUND, "datastore '%s': managed iSCSI backing "
					   "directory '%s' does not exist", name, ds->u.dir);
			goto fail;
		}
	}
	if ((rc = isc_sess_open(&ds->s, &ds->u, name, args ? args->notify : NULL,
				args ? args->notify_cookie : NULL)) < 0)
		goto fail;
	if ((rc = isc_scan_luns(ds)) < 0) {
		char pre[200];

		snprintf(pre, sizeof(pre), "datastore '%s'", name);
		isc_prefix_error(rc, pre);
		goto fail;
	}
	*out = ds;
	return 0;
fail:
	isc_sess_close(ds->s);
	isc_uri_clear(&ds->u);
	pthread_mutex_destroy(&ds->lock);
	free(ds->luns);
	free(ds->name);
	free(ds);
	return rc;
}

static void isc_close(vsm_backend_ds *ds)
{
	if (!ds)
		return;
	isc_sess_close(ds->s);
	isc_uri_clear(&ds->u);
	pthread_mutex_destroy(&ds->lock);
	free(ds->luns);
	free(ds->name);
	free(ds);
}

/* ------------------------------------------------------------- capacity */

static int isc_capacity(vsm_backend_ds *ds, uint64_t *total, uint64_t *free_bytes)
{
	isc_dev *v = NULL;
	uint8_t *table = NULL;
	uint64_t t = 0, f = 0;
	size_t i;
	int rc = 0;

	if (ds->u.mode == ISC_MODE_MANAGED) {
		struct statvfs sv;

		if (statvfs(ds->u.dir, &sv) < 0)
			return vsm_error_set(VSM_EIO, "datastore '%s': cannot stat '%s': %s",
					     ds->name, ds->u.dir, strerror(errno));
		if (total)
			*total = (uint64_t)sv.f_blocks * sv.f_frsize;
		if (free_bytes)
			*free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
		return 0;
	}
	pthread_mutex_lock(&ds->lock);
	if ((rc = isc_scan_luns(ds)) < 0)
		goto out;
	if (ds->meta_lun >= 0 && ((rc = isc_claim_view(ds, &v)) < 0 ||
				  (rc = isc_table_read(ds, v, &table)) < 0))
		goto out;
	for (i = 0; i < ds->n_luns; i++) {
		const lun_info *li = &ds->luns[i];
		uint64_t bytes = li->nblocks * li->bs;
		claim c = { 0 };

		if (!isc_is_data_lun(li) || li->lun == ds->meta_lun)
			continue;
		t += bytes;
		if (table && (uint32_t)li->lun < isc_max_entries(v) &&
		    (rc = isc_entry_decode(table + (size_t)(li->lun + 1) * v->li.bs, (uint32_t)li->lun,
				       &c, ds->name)) < 0)
			goto out;
		if (!c.claimed)
			f += bytes;
	}
	if (total)
		*total = t;
	if (free_bytes)
		*free_bytes = f;
out:
	pthread_mutex_unlock(&ds->lock);
	isc_bdev_close(v);
	free(table);
	return rc;
}

/* ------------------------------------------------------------- tables */

static const char *const isc_aliases[] = { "iscsi-caw", NULL };

const struct vsm_datastore_ops vsm__iscsi_backend_ops = VSM_DATASTORE_OPS_INIT(
	.scheme = "iscsi",
	.description = "iSCSI target through libiscsi; LUNs are devices",
	.scheme_aliases = isc_aliases,
	.open = isc_open,
	.close = isc_close,
	.capacity = isc_capacity,
	.meta_open = isc_meta_open,
	.device_create = isc_device_create,
	.device_delete = isc_device_delete,
	.device_resize = isc_device_resize,
	.host_attach = isc_host_attach,
	.host_detach = isc_host_detach,
	.device_deploy = isc_device_deploy,
	.device_undeploy = isc_device_undeploy,
	.device_list = isc_device_list,
	.device_open = isc_device_open,
);
