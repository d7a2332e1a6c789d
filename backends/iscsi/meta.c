/*
 * iSCSI backend: opening the metadata LUN. Which LUN it is, whether it
 * will do (a disk, big enough, COMPARE AND WRITE for iscsi-caw://), its
 * claim table header, and the core's view past the claim area.
 */
#include <pthread.h>
#include <stdlib.h>

#include "isc-int.h"

int isc_meta_open(vsm_bdev_io **out, vsm_backend_ds *ds, uint64_t min_size,
		  unsigned int flags)
{
	isc_dev *v = NULL;
	lun_info *li = NULL;
	uint8_t *hdr = NULL;
	bool present;
	size_t i;
	int rc;

	pthread_mutex_lock(&ds->lock);
	if (ds->u.mode == ISC_MODE_MANAGED && (rc = isc_managed_restore_meta(ds)) < 0)
		goto out;
	if (ds->u.meta_lun >= 0) {
		li = isc_find_lun(ds, ds->u.meta_lun);
	} else {
		for (i = 0; i < ds->n_luns; i++)
			if (isc_is_data_lun(&ds->luns[i]) && (!li || ds->luns[i].lun < li->lun))
				li = &ds->luns[i];
	}
	if (!li && ds->u.mode == ISC_MODE_MANAGED && (flags & VSM_BDEV_CREATE)) {
		if ((rc = isc_managed_make_meta(ds, min_size)) < 0)
			goto out;
		for (i = 0; i < ds->n_luns; i++)
			if (isc_is_data_lun(&ds->luns[i]) && (!li || ds->luns[i].lun < li->lun))
				li = &ds->luns[i];
	}
	if (!li) {
		rc = ds->u.meta_lun >= 0 ?
		     vsm_error_set(VSM_ENOTFOUND, "datastore '%s': %s has no LUN %d (meta-lun)",
				   ds->name, isc_sess_label(ds->s), ds->u.meta_lun) :
		     vsm_error_set(VSM_ENOTFOUND, "datastore '%s': %s has no disk LUN to keep "
				   "metadata on", ds->name, isc_sess_label(ds->s));
		goto out;
	}
	if (!isc_is_data_lun(li)) {
		rc = vsm_error_set(VSM_EINVAL, "datastore '%s': LUN %d of %s is not a disk "
				   "(peripheral type %d); it cannot hold metadata", ds->name,
				   li->lun, isc_sess_label(ds->s), li->type);
		goto out;
	}
	/* The core needs at least about 3 MiB to lay out 16 record slots. */
	if (li->nblocks * li->bs < CLAIM_AREA + (4u << 20)) {
		rc = vsm_error_set(VSM_ENOSPC, "datastore '%s': LUN %d of %s holds %llu bytes; "
				   "the metadata LUN needs at least %u", ds->name, li->lun,
				   isc_sess_label(ds->s),
				   (unsigned long long)(li->nblocks * li->bs),
				   CLAIM_AREA + (4u << 20));
		goto out;
	}
	ds->meta_lun = li->lun;
	/* Leases and the metadata lock take the one-I/O path when this LUN
	 * has COMPARE AND WRITE (the device's caps say so); iscsi-caw://
	 * insists on it. */
	if ((rc = isc_probe_caw(ds, li, 0)) < 0)
		goto out;
	if (ds->caw_scheme) {
		if (!li->caw) {
			rc = vsm_error_set(VSM_ENOTSUP, "datastore '%s': LUN %d of %s does not "
					   "support SCSI COMPARE AND WRITE; use an iscsi:// URI "
					   "for this target", ds->name, li->lun,
					   isc_sess_label(ds->s));
			goto out;
		}
	}
	if ((rc = isc_bdev_new(&v, ds, li, 0, 0)) < 0)
		goto out;
	if (!(hdr = aligned_alloc(li->bs, li->bs))) {
		rc = isc_oom();
		goto out;
	}
	if ((rc = isc_xfer(v, false, hdr, li->bs, 0)) < 0 ||
	    (rc = isc_header_check(ds, hdr, li->bs, &present)) < 0)
		goto out;
	isc_bdev_close(v);
	v = NULL;
	if (ds->u.mode == ISC_MODE_MANAGED && (rc = isc_managed_restore_devices(ds)) < 0)
		goto out;
	/* A rescan may have moved the LUN list: find the metadata LUN again. */
	if (!(li = isc_find_lun(ds, ds->meta_lun))) {
		rc = vsm_error_set(VSM_ENOTFOUND, "datastore '%s': metadata LUN %d vanished",
				   ds->name, ds->meta_lun);
		goto out;
	}
	if ((rc = isc_bdev_new(&v, ds, li, CLAIM_AREA, flags & VSM_BDEV_RDONLY)) < 0)
		goto out;
	*out = &v->io;
	v = NULL;
out:
	if (rc < 0)
		ds->meta_lun = -1;
	pthread_mutex_unlock(&ds->lock);
	isc_bdev_close(v);
	free(hdr);
	return rc;
}
