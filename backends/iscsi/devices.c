/*
 * iSCSI backend: devices, each a claimed LUN. Keys, create (claiming a
 * LUN, or making one in managed mode), delete (wiping or removing it),
 * list, open and resize.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "isc-int.h"

static int check_name(const vsm_backend_ds *ds, const char *name)
{
	size_t i, n = name ? strlen(name) : 0;

	if (n == 0 || n >= ENTRY_NAME_MAX - 1)
		goto bad;
	for (i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			goto bad;
	}
	return 0;
bad:
	return vsm_error_set(VSM_EINVAL, "datastore '%s': device name '%s' is not 1-%d "
			     "characters of [A-Za-z0-9._-]", ds->name, name ? name : "",
			     ENTRY_NAME_MAX - 2);
}

/* A key is "lun<N>/<name>"; a bare name (the journal's undo of a create
 * whose key was never recorded) is looked up in the claim table. */
int isc_parse_key(const vsm_backend_ds *ds, const char *key, int *lun, const char **name)
{
	char *end;
	unsigned long n;

	*lun = -1;
	*name = key;
	if (!key || strncmp(key, "lun", 3) != 0 || !strchr(key, '/'))
		return check_name(ds, key);
	n = strtoul(key + 3, &end, 10);
	if (end == key + 3 || *end != '/' || n > 16383)
		return vsm_error_set(VSM_EINVAL, "datastore '%s': '%s' is not an iSCSI device key "
				     "(lun<N>/<name>)", ds->name, key);
	*lun = (int)n;
	*name = end + 1;
	return check_name(ds, *name);
}

/* Find the claim of a key; -VSM_ENOTFOUND when there is none. */
static int lookup(vsm_backend_ds *ds, isc_dev *v, const uint8_t *table, const char *key,
		  claim *out)
{
	const char *name;
	int lun, rc;

	if ((rc = isc_parse_key(ds, key, &lun, &name)) < 0)
		return rc;
	if (lun < 0) {
		if ((rc = isc_table_find_name(ds, v, table, name, out)) < 0)
			return rc;
		if (rc == 1)
			return 0;
	} else if ((uint32_t)lun < isc_max_entries(v)) {
		if ((rc = isc_entry_decode(table + (size_t)(lun + 1) * v->li.bs, (uint32_t)lun, out,
				       ds->name)) < 0)
			return rc;
		if (out->claimed && !strcmp(out->name, name))
			return 0;
	}
	return vsm_error_set(VSM_ENOTFOUND, "datastore '%s': device '%s' is not claimed on %s",
			     ds->name, key, isc_sess_label(ds->s));
}

static uint64_t managed_file_size(const vsm_backend_device_spec *spec)
{
	/* qcow2 needs room for its tables beyond the virtual size. */
	return vsm_backend_device_bytes(spec);
}

int isc_device_create(vsm_backend_ds *ds, const vsm_backend_device_spec *spec,
		      char *key, size_t key_size, unsigned int *out_flags)
{
	isc_dev *v = NULL;
	uint8_t *table = NULL;
	char *path = NULL;
	claim c, found;
	int rc, tries, lun = -1;
	bool file_made = false, lun_made = false;

	if ((rc = check_name(ds, spec->name)) < 0)
		return rc;
	if (strlen(spec->name) + 12 >= key_size)
		return vsm_error_set(VSM_EINVAL, "device name '%s' is too long", spec->name);
	pthread_mutex_lock(&ds->lock);
	for (tries = 0; tries < 100; tries++) {
		const lun_info *best = NULL;
		size_t i;

		free(table);
		table = NULL;
		isc_bdev_close(v);
		v = NULL;
		if ((rc = isc_scan_luns(ds)) < 0 || (rc = isc_with_table(ds, &v, &table)) < 0)
			goto out;
		if ((rc = isc_table_find_name(ds, v, table, spec->name, &found)) < 0)
			goto out;
		if (rc == 1) {
			rc = vsm_error_set(VSM_EEXISTS, "datastore '%s': device '%s' already "
					   "exists (LUN %u)", ds->name, spec->name, found.lun);
			goto out;
		}
		if (ds->u.mode == ISC_MODE_MANAGED) {
			if (!path) {
				if (asprintf(&path, "%s/%s", ds->u.dir, spec->name) < 0) {
					path = NULL;
					rc = isc_oom();
					goto out;
				}
				if ((rc = isc_make_file(path, managed_file_size(spec))) < 0) {
					rc = vsm_error_set(rc == -EEXIST ? VSM_EEXISTS :
							   rc == -ENOSPC ? VSM_ENOSPC : VSM_EIO,
							   "datastore '%s': cannot create backing "
							   "file '%s': %s", ds->name, path,
							   strerror(-rc));
					goto out;
				}
				file_made = true;
			}
			if (!lun_made) {
				if ((lun = isc_lowest_free_lun(ds, table, v->li.bs, isc_max_entries(v))) < 0) {
					rc = vsm_error_set(VSM_ENOSPC, "datastore '%s': no free LUN "
							   "number on %s", ds->name,
							   isc_sess_label(ds->s));
					goto out;
				}
				if ((rc = isc_managed_add_lun(ds, lun, path)) < 0)
					goto out;
				lun_made = true;
				if ((rc = isc_scan_luns(ds)) < 0)
					goto out;
			}
			best = isc_find_lun(ds, lun);
			if (!best || !isc_is_data_lun(best)) {
				rc = vsm_error_set(VSM_EIO, "datastore '%s': tgtadm added LUN %d "
						   "but the target does not report it", ds->name, lun);
				goto out;
			}
		} else {
			for (i = 0; i < ds->n_luns; i++) {
				const lun_info *li = &ds->luns[i];
				uint64_t bytes = li->nblocks * li->bs;
				claim cur;

				if (!isc_is_data_lun(li) || li->lun == ds->meta_lun ||
				    (uint32_t)li->lun >= isc_max_entries(v) || bytes < spec->size)
					continue;
				if ((rc = isc_entry_decode(table + (size_t)(li->lun + 1) * v->li.bs,
						       (uint32_t)li->lun, &cur, ds->name)) < 0)
					goto out;
				if (cur.claimed)
					continue;
				if (!best || bytes < best->nblocks * best->bs)
					best = li;
			}
			if (!best) {
				rc = vsm_error_set(VSM_ENOSPC, "datastore '%s': %s has no unclaimed "
						   "LUN of at least %llu bytes for device '%s'",
						   ds->name, isc_sess_label(ds->s),
						   (unsigned long long)spec->size, spec->name);
				goto out;
			}
		}
		memset(&c, 0, sizeof(c));
		c.claimed = true;
		c.lun = (uint32_t)best->lun;
		c.size = spec->size;
		c.flags = ds->u.mode == ISC_MODE_MANAGED ? ENTRY_FLAG_MANAGED : 0;
		snprintf(c.name, sizeof(c.name), "%s", spec->name);
		rc = isc_entry_replace(ds, v, c.lun, table + (size_t)(c.lun + 1) * v->li.bs, &c,
				   best->nblocks * best->bs);
		if (rc == -VSM_EMISMATCH)
			continue; /* another host took it: look again */
		if (rc < 0)
			goto out;
		snprintf(key, key_size, "lun%u/%s", c.lun, spec->name);
		*out_flags = 0;
		file_made = lun_made = false;
		break;
	}
	if (tries == 100)
		rc = vsm_error_set(VSM_EBUSY, "datastore '%s': LUN claims keep changing under "
				   "device '%s'", ds->name, spec->name);
out:
	if (lun_made)
		isc_managed_del_lun(ds, lun);
	if (file_made)
		unlink(path);
	pthread_mutex_unlock(&ds->lock);
	isc_bdev_close(v);
	free(table);
	free(path);
	return rc;
}

/* Zero a whole LUN: WRITE SAME(16) of a zero block where the target has
 * it, plain writes of zeros where it does not. */
static int zero_lun(vsm_backend_ds *ds, isc_dev *b)
{
	const lun_info *li = &b->li;
	uint8_t *zero = calloc(1, li->bs);
	uint64_t lba = 0;
	int rc = 0;

	if (!zero)
		return isc_oom();
	while (lba < li->nblocks && rc == 0) {
		uint64_t n = li->nblocks - lba > 32768 ? 32768 : li->nblocks - lba;
		isc_cmd c = { .kind = ISC_CMD_WRITE_SAME_ZERO, .lun = li->lun, .lba = lba,
			      .nblocks = (uint32_t)n, .block_size = li->bs, .buf = zero,
			      .len = li->bs, .retry_conflict = true };
		isc_result r;

		if ((rc = isc_sess_run(ds->s, &c, &r)) < 0)
			break;
		if (r.status == SCSI_STATUS_CHECK_CONDITION && r.sense_key == 0x5 && lba == 0) {
			free(zero);
			return isc_write_zeros(b, 0, b->size); /* no WRITE SAME here */
		}
		if (r.status != SCSI_STATUS_GOOD)
			rc = isc_result_error(ds->s, &r, li->lun, "WRITE SAME(16) on");
		lba += n;
	}
	free(zero);
	return rc;
}

static int wipe_lun(vsm_backend_ds *ds, const lun_info *li)
{
	isc_dev *b = NULL;
	int rc;

	if (ds->u.wipe == ISC_WIPE_NONE)
		return 0;
	if ((rc = isc_bdev_new(&b, ds, li, 0, 0)) < 0)
		return rc;
	if (ds->u.wipe == ISC_WIPE_UNMAP && li->unmap)
		rc = isc_bdev_discard(b, 0, b->size);
	else
		rc = zero_lun(ds, b);
	if (rc == 0)
		rc = isc_bdev_flush(b);
	isc_bdev_close(b);
	return rc;
}

int isc_device_delete(vsm_backend_ds *ds, const char *key, unsigned int flags)
{
	isc_dev *v = NULL;
	uint8_t *table = NULL;
	char *path = NULL;
	claim c, freed = { 0 };
	lun_info *li;
	int rc;

	(void)flags;
	pthread_mutex_lock(&ds->lock);
	if ((rc = isc_scan_luns(ds)) < 0 || (rc = isc_with_table(ds, &v, &table)) < 0 ||
	    (rc = lookup(ds, v, table, key, &c)) < 0)
		goto out;
	li = isc_find_lun(ds, (int)c.lun);
	if (c.flags & ENTRY_FLAG_MANAGED) {
		if (ds->u.mode != ISC_MODE_MANAGED) {
			rc = vsm_error_set(VSM_ENOTSUP, "datastore '%s': device '%s' is a managed "
					   "LUN; delete it through a mode=managed URI", ds->name, key);
			goto out;
		}
		if (li && (rc = isc_managed_del_lun(ds, (int)c.lun)) < 0)
			goto out;
	} else if (li && (rc = wipe_lun(ds, li)) < 0) {
		goto out;
	}
	freed.lun = c.lun;
	rc = isc_entry_replace(ds, v, c.lun, table + (size_t)(c.lun + 1) * v->li.bs, &freed, 0);
	/* Claims change only by a create or a delete: one that changed under
	 * us no longer names this device, which another host (finishing the
	 * same destroy) released first. Deleting is idempotent: say it is gone. */
	if (rc == -VSM_EMISMATCH)
		rc = vsm_error_set(VSM_ENOTFOUND, "datastore '%s': device '%s' was released by "
				   "another host meanwhile", ds->name, key);
	if (rc == 0 && (c.flags & ENTRY_FLAG_MANAGED)) {
		if (asprintf(&path, "%s/%s", ds->u.dir, c.name) < 0)
			path = NULL;
		else if (unlink(path) < 0 && errno != ENOENT)
			rc = vsm_error_set(VSM_EIO, "datastore '%s': cannot remove '%s': %s",
					   ds->name, path, strerror(errno));
		isc_scan_luns(ds);
	}
out:
	pthread_mutex_unlock(&ds->lock);
	isc_bdev_close(v);
	free(table);
	free(path);
	return rc;
}

/* Every claimed LUN is a device: claims are what all hosts share, so the
 * table is read afresh and reported after the lock is dropped. A claim's
 * time is when its device was created (on the claiming host's clock). */
int isc_device_list(vsm_backend_ds *ds, vsm_backend_device_cb cb, void *payload)
{
	isc_dev *v = NULL;
	uint8_t *table = NULL;
	claim *found = NULL;
	size_t n = 0, i;
	uint32_t lun, max;
	int rc;

	pthread_mutex_lock(&ds->lock);
	if ((rc = isc_with_table(ds, &v, &table)) < 0)
		goto unlock;
	max = isc_max_entries(v);
	if (!(found = calloc(max, sizeof(*found)))) {
		rc = isc_oom();
		goto unlock;
	}
	for (lun = 0; lun < max; lun++) {
		const uint8_t *e = table + (size_t)(lun + 1) * v->li.bs;

		if (isc_all_zero(e, ENTRY_BYTES))
			continue;
		if ((rc = isc_entry_decode(e, lun, &found[n], ds->name)) < 0)
			goto unlock;
		if (found[n].claimed)
			n++;
	}
unlock:
	pthread_mutex_unlock(&ds->lock);
	isc_bdev_close(v);
	free(table);
	for (i = 0; rc == 0 && i < n; i++) {
		vsm_backend_device_info info = { VSM_BACKEND_DEVICE_INFO_VERSION, NULL, NULL, 0, 0 };
		char key[ENTRY_NAME_MAX + 16];

		snprintf(key, sizeof(key), "lun%u/%s", found[i].lun, found[i].name);
		info.key = key;
		info.name = found[i].name;
		info.size = found[i].lun_bytes ? found[i].lun_bytes : found[i].size;
		info.mtime = found[i].when > 0 ? found[i].when : 0;
		rc = cb(&info, payload);
	}
	free(found);
	return rc;
}

/* Find the LUN behind a key, checking the claim. */
int isc_resolve(vsm_backend_ds *ds, const char *key, lun_info *out)
{
	isc_dev *v = NULL;
	uint8_t *table = NULL;
	lun_info *li;
	claim c;
	int rc;

	pthread_mutex_lock(&ds->lock);
	if ((rc = isc_with_table(ds, &v, &table)) < 0 || (rc = lookup(ds, v, table, key, &c)) < 0)
		goto out;
	/* The target may have dropped or renumbered LUNs since we looked. */
	li = (rc = isc_scan_luns(ds)) == 0 ? isc_find_lun(ds, (int)c.lun) : NULL;
	if (rc == 0 && (!li || !isc_is_data_lun(li)))
		rc = vsm_error_set(VSM_ENOTFOUND, "datastore '%s': device '%s': LUN %u is gone "
				   "from %s", ds->name, key, c.lun, isc_sess_label(ds->s));
	if (rc == 0)
		*out = *li;
out:
	pthread_mutex_unlock(&ds->lock);
	isc_bdev_close(v);
	free(table);
	return rc;
}

int isc_device_open(vsm_bdev_io **out, vsm_backend_ds *ds, const char *key,
		    unsigned int flags)
{
	isc_dev *b = NULL;
	lun_info li;
	int rc;

	if ((rc = isc_resolve(ds, key, &li)) < 0)
		return rc;
	/* Capabilities are per LUN: find out whether this one has CAW. */
	if ((rc = isc_probe_caw(ds, &li, 0)) < 0)
		return rc;
	if ((rc = isc_bdev_new(&b, ds, &li, 0, flags & VSM_BDEV_RDONLY)) == 0)
		*out = &b->io;
	return rc;
}

int isc_device_resize(vsm_backend_ds *ds, const char *key, uint64_t size,
		      unsigned int flags)
{
	lun_info li;
	int rc;

	(void)flags;
	if ((rc = isc_resolve(ds, key, &li)) < 0)
		return rc;
	if (size > li.nblocks * li.bs)
		return vsm_error_set(VSM_ENOSPC, "datastore '%s': device '%s' lives on LUN %d of "
				     "%llu bytes and cannot grow to %llu", ds->name, key, li.lun,
				     (unsigned long long)(li.nblocks * li.bs),
				     (unsigned long long)size);
	return 0;
}
