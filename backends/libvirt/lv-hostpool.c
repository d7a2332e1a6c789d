/*
 * The datastore's pool on a host's own hypervisor connection: host attach
 * makes it usable there, host detach of the last attachment undoes what
 * attach did.
 *
 * When the host's daemon has no pool of the datastore's name, attach
 * creates one there from the datastore pool's own XML, transiently
 * (virStoragePoolCreateXML), so nothing libvsm made outlives that daemon
 * or needs undefining. Which hosts got such a pool, and how many
 * attachments each holds, is kept in the datastore itself, shared by
 * every process and host: one empty marker volume per attachment, named
 * "vsm-host@<hex of the host name>@<random>". '@' is outside the device
 * key alphabet, so markers never pass for devices or orphans. A pool the
 * host had before (persistent or not) gets no markers and is never
 * destroyed by libvsm.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/virterror.h>

#include "lv-int.h"

#define MARK "vsm-host@"

/* "vsm-host@<hex(host)>@" */
static char *marker_prefix(const char *host)
{
	size_t n = strlen(host), i;
	char *p = malloc(strlen(MARK) + 2 * n + 2);

	if (!p)
		return NULL;
	strcpy(p, MARK);
	for (i = 0; i < n; i++)
		sprintf(p + strlen(MARK) + 2 * i, "%02x", (unsigned char)host[i]);
	strcat(p, "@");
	return p;
}

/* Count this host's markers; *@one (when given) gets one of them. */
static int markers(vsm_backend_ds *ds, const char *prefix, virStorageVolPtr *one)
{
	virStorageVolPtr *vols = NULL;
	int n, i, count = 0;

	if (one)
		*one = NULL;
	if (virStoragePoolRefresh(ds->pool, 0) < 0)
		virResetLastError();
	if ((n = virStoragePoolListAllVolumes(ds->pool, &vols, 0)) < 0)
		return lv_error("pool '%s': cannot list volumes", ds->pool_name);
	for (i = 0; i < n; i++) {
		if (!strncmp(virStorageVolGetName(vols[i]), prefix, strlen(prefix))) {
			count++;
			if (one && !*one) {
				*one = vols[i];
				continue;
			}
		}
		virStorageVolFree(vols[i]);
	}
	free(vols);
	return count;
}

static int marker_add(vsm_backend_ds *ds, const char *prefix, const char *host)
{
	unsigned char r[8];
	char name[512], *xml = NULL;
	virStorageVolPtr v;
	size_t i;
	int fd, rc;

	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) < 0 ||
	    read(fd, r, sizeof(r)) != (ssize_t)sizeof(r)) {
		if (fd >= 0)
			close(fd);
		return vsm_error_set(VSM_EIO, "host '%s': cannot read /dev/urandom", host);
	}
	close(fd);
	if (strlen(prefix) + 2 * sizeof(r) >= sizeof(name))
		return vsm_error_set(VSM_EINVAL, "host '%s': name too long", host);
	strcpy(name, prefix);
	for (i = 0; i < sizeof(r); i++)
		sprintf(name + strlen(prefix) + 2 * i, "%02x", r[i]);
	if ((rc = lv_volume_xml(&xml, name, 0, 0, "raw", ds->access == LV_ACCESS_FILE,
				NULL, NULL)) < 0)
		return rc;
	v = virStorageVolCreateXML(ds->pool, xml, 0);
	free(xml);
	if (!v)
		return lv_error("host '%s': pool '%s': cannot record the attachment", host,
				ds->pool_name);
	virStorageVolFree(v);
	return 0;
}

int lv_hostpool_attach(vsm_backend_ds *ds, virConnectPtr conn, const char *host,
		       const char *uri)
{
	virStoragePoolPtr p;
	char *prefix, *xml;
	bool created = false;
	int rc = 0, active, persistent, n;

	if (!(prefix = marker_prefix(host)))
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	if (!(p = virStoragePoolLookupByName(conn, ds->pool_name))) {
		if (lv_last_code() != VIR_ERR_NO_STORAGE_POOL) {
			rc = lv_error("host '%s': pool '%s' on '%s'", host, ds->pool_name, uri);
			goto out;
		}
		virResetLastError();
		if (!(xml = virStoragePoolGetXMLDesc(ds->pool, 0))) {
			rc = lv_error("host '%s': cannot read the definition of pool '%s'", host,
				      ds->pool_name);
			goto out;
		}
		p = virStoragePoolCreateXML(conn, xml, 0);
		free(xml);
		if (!p) {
			rc = lv_error("host '%s': cannot create pool '%s' on '%s'", host,
				      ds->pool_name, uri);
			goto out;
		}
		created = true;
	} else if ((active = virStoragePoolIsActive(p)) < 0) {
		rc = lv_error("host '%s': pool '%s' on '%s'", host, ds->pool_name, uri);
		goto out;
	} else if (active == 0 && virStoragePoolCreate(p, 0) < 0) {
		rc = lv_error("host '%s': cannot start pool '%s' on '%s'", host, ds->pool_name,
			      uri);
		goto out;
	} else if (active == 1 && virStoragePoolRefresh(p, 0) < 0) {
		/* Refresh so it sees volumes made elsewhere. */
		rc = lv_error("host '%s': cannot refresh pool '%s' on '%s'", host,
			      ds->pool_name, uri);
		goto out;
	}
	if (!created) {
		/* One more attachment to a pool libvsm created here earlier? */
		if ((persistent = virStoragePoolIsPersistent(p)) < 0) {
			rc = lv_error("host '%s': pool '%s' on '%s'", host, ds->pool_name, uri);
			goto out;
		}
		if (persistent)
			goto out;
		if ((n = markers(ds, prefix, NULL)) <= 0) {
			rc = n < 0 ? n : 0;
			goto out;
		}
	}
	if ((rc = marker_add(ds, prefix, host)) < 0 && created &&
	    virStoragePoolDestroy(p) < 0)
		virResetLastError();
out:
	if (p)
		virStoragePoolFree(p);
	free(prefix);
	return rc;
}

int lv_hostpool_detach(vsm_backend_ds *ds, virConnectPtr conn, const char *host,
		       const char *uri)
{
	virStorageVolPtr mine = NULL;
	virStoragePoolPtr p = NULL;
	char *prefix;
	int rc = 0, n, persistent;

	if (!(prefix = marker_prefix(host)))
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	if ((n = markers(ds, prefix, &mine)) <= 0) {
		/* Not a pool libvsm created: it stays. */
		rc = n < 0 ? n : 0;
		goto out;
	}
	if (n == 1) {
		/* The last attachment: destroy the transient pool, unless
		 * someone made it persistent since. Done before the marker
		 * goes, so a failure here leaves everything as it was. */
		if (!(p = virStoragePoolLookupByName(conn, ds->pool_name))) {
			if (lv_last_code() != VIR_ERR_NO_STORAGE_POOL) {
				rc = lv_error("host '%s': pool '%s' on '%s'", host,
					      ds->pool_name, uri);
				goto out;
			}
			virResetLastError();
		} else if ((persistent = virStoragePoolIsPersistent(p)) < 0) {
			rc = lv_error("host '%s': pool '%s' on '%s'", host, ds->pool_name, uri);
			goto out;
		} else if (!persistent && virStoragePoolDestroy(p) < 0) {
			rc = lv_error("host '%s': cannot destroy transient pool '%s' on '%s'",
				      host, ds->pool_name, uri);
			goto out;
		}
	}
	if (virStorageVolDelete(mine, 0) < 0 && lv_last_code() != VIR_ERR_NO_STORAGE_VOL)
		rc = lv_error("host '%s': pool '%s': cannot drop the attachment record", host,
			      ds->pool_name);
	virResetLastError();
out:
	if (mine)
		virStorageVolFree(mine);
	if (p)
		virStoragePoolFree(p);
	free(prefix);
	return rc;
}
