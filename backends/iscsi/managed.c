/*
 * iSCSI backend, managed mode: file-backed LUNs added and removed with
 * tgtadm, the metadata file, and putting the LUNs back after tgtd
 * restarts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "isc-int.h"

#define META_FILE "vsm-meta.img"

int isc_managed_add_lun(vsm_backend_ds *ds, int lun, const char *path)
{
	char tid[16], ln[16];
	const char *argv[] = { "--mode", "logicalunit", "--op", "new", "--tid", tid, "--lun", ln,
			       "--backing-store", path, NULL };

	snprintf(tid, sizeof(tid), "%d", ds->u.tid);
	snprintf(ln, sizeof(ln), "%d", lun);
	return isc_tgtadm(&ds->u, argv);
}

int isc_managed_del_lun(vsm_backend_ds *ds, int lun)
{
	char tid[16], ln[16];
	const char *argv[] = { "--mode", "logicalunit", "--op", "delete", "--tid", tid, "--lun",
			       ln, NULL };

	snprintf(tid, sizeof(tid), "%d", ds->u.tid);
	snprintf(ln, sizeof(ln), "%d", lun);
	return isc_tgtadm(&ds->u, argv);
}

/* Lowest LUN number the target does not have and no claim names. */
int isc_lowest_free_lun(vsm_backend_ds *ds, const uint8_t *table, uint32_t bs, uint32_t max)
{
	uint32_t n;

	for (n = 1; n < max; n++) {
		if (isc_find_lun(ds, (int)n))
			continue;
		if (table && !isc_all_zero(table + (size_t)(n + 1) * bs, ENTRY_BYTES))
			continue;
		return (int)n;
	}
	return -1;
}

int isc_make_file(const char *path, uint64_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int e;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		e = errno;
		close(fd);
		unlink(path);
		return -e;
	}
	close(fd);
	return 0;
}

int isc_managed_make_meta(vsm_backend_ds *ds, uint64_t min_size)
{
	char *path = NULL;
	int lun = ds->u.meta_lun >= 0 ? ds->u.meta_lun : isc_lowest_free_lun(ds, NULL, 512, 2048);
	uint64_t size = min_size + CLAIM_AREA;
	int rc;

	if (size < 64ull << 20)
		size = 64ull << 20;
	if (asprintf(&path, "%s/%s", ds->u.dir, META_FILE) < 0)
		return isc_oom();
	if ((rc = isc_make_file(path, size)) < 0) {
		rc = vsm_error_set(rc == -EEXIST ? VSM_EEXISTS : VSM_EIO, "datastore '%s': cannot "
				   "create metadata file '%s': %s", ds->name, path, strerror(-rc));
		free(path);
		return rc;
	}
	if ((rc = isc_managed_add_lun(ds, lun, path)) < 0 || (rc = isc_scan_luns(ds)) < 0) {
		unlink(path);
		free(path);
		return rc;
	}
	free(path);
	return 0;
}

/*
 * tgtd forgets its LUNs when it restarts. In managed mode the backing
 * files and the claim table say what was exported: put the metadata LUN
 * back when the target has no disk LUN at all (as the lowest LUN, or
 * meta-lun=), and, once the claim table is readable, every managed
 * device whose LUN is missing. Caller holds ds->lock.
 */
int isc_managed_restore_meta(vsm_backend_ds *ds)
{
	char *path = NULL;
	struct stat st;
	size_t i;
	int rc = 0;

	for (i = 0; i < ds->n_luns; i++)
		if (isc_is_data_lun(&ds->luns[i]))
			return 0;
	if (asprintf(&path, "%s/%s", ds->u.dir, META_FILE) < 0)
		return isc_oom();
	if (stat(path, &st) == 0 &&
	    (rc = isc_managed_add_lun(ds, ds->u.meta_lun >= 0 ? ds->u.meta_lun : 1, path)) == 0)
		rc = isc_scan_luns(ds);
	free(path);
	return rc;
}

int isc_managed_restore_devices(vsm_backend_ds *ds)
{
	isc_dev *v = NULL;
	uint8_t *table = NULL;
	uint32_t n;
	bool added = false;
	int rc;

	if ((rc = isc_with_table(ds, &v, &table)) < 0)
		return rc;
	for (n = 0; n < isc_max_entries(v) && rc == 0; n++) {
		const uint8_t *e = table + (size_t)(n + 1) * v->li.bs;
		char *path = NULL;
		struct stat st;
		claim c;

		if (isc_all_zero(e, ENTRY_BYTES) || isc_find_lun(ds, (int)n))
			continue;
		if ((rc = isc_entry_decode(e, n, &c, ds->name)) < 0)
			break;
		if (!c.claimed || !(c.flags & ENTRY_FLAG_MANAGED))
			continue;
		if (asprintf(&path, "%s/%s", ds->u.dir, c.name) < 0)
			rc = isc_oom();
		else if (stat(path, &st) == 0 && (rc = isc_managed_add_lun(ds, (int)n, path)) == 0)
			added = true;
		free(path);
	}
	if (rc == 0 && added)
		rc = isc_scan_luns(ds);
	isc_bdev_close(v);
	free(table);
	return rc;
}
