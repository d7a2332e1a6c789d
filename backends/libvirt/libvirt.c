/*
 * libvirt backend: a datastore is a libvirt storage pool named by
 * libvirt:///POOL?connect=URI; devices are volumes of that pool, keyed by
 * volume name; the core's metadata is the raw volume "vsm-meta". Block
 * I/O goes through a volume's local path with the file backend's bdev
 * (so compare-and-write keeps its OFD locks); pools whose volumes have no
 * local path answer block I/O with -VSM_ENOTSUP. Deploying into a domain
 * hot-attaches the device's <disk> on the host's hypervisor connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/virterror.h>

#include "lv-int.h"
#include "../common/fileuri.h"

/* How long undeploy waits for a guest to let go of a detached disk. */
#define DETACH_WAIT_MS 10000

static const struct {
	const char *type;
	lv_access access;
} pool_types[] = {
	{ "dir", LV_ACCESS_FILE },      { "fs", LV_ACCESS_FILE },
	{ "netfs", LV_ACCESS_FILE },    { "vstorage", LV_ACCESS_FILE },
	{ "logical", LV_ACCESS_BLOCK }, { "disk", LV_ACCESS_BLOCK },
	{ "iscsi", LV_ACCESS_BLOCK },   { "scsi", LV_ACCESS_BLOCK },
	{ "mpath", LV_ACCESS_BLOCK },   { "zfs", LV_ACCESS_BLOCK },
};

static lv_access access_of(const char *type)
{
	size_t i;

	for (i = 0; i < sizeof(pool_types) / sizeof(pool_types[0]); i++)
		if (!strcmp(pool_types[i].type, type))
			return pool_types[i].access;
	return LV_ACCESS_NETWORK; /* rbd, gluster, sheepdog, iscsi-direct, ... */
}

/* Keys are volume names of the same alphabet as the core's device names;
 * the metadata volume is never a device. */
static bool key_alphabet(const char *key)
{
	size_t i, len = key ? strlen(key) : 0;

	if (len == 0 || len > 200 || !strcmp(key, ".") || !strcmp(key, ".."))
		return false;
	for (i = 0; i < len; i++) {
		char c = key[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int check_key(const vsm_backend_ds *ds, const char *key)
{
	if (!key_alphabet(key))
		return vsm_error_set(VSM_EINVAL, "pool '%s': device key '%s' is not a plain "
				     "volume name", ds->pool_name, key ? key : "");
	if (!strcmp(key, VSM_LV_META_VOLUME))
		return vsm_error_set(VSM_EINVAL, "pool '%s': '%s' is the metadata volume, "
				     "not a device", ds->pool_name, key);
	return 0;
}

/* Look a volume up; on a miss, refresh once, since another host may have
 * created it on shared storage behind this daemon's back. */
static int vol_get(vsm_backend_ds *ds, const char *name, virStorageVolPtr *out)
{
	virStorageVolPtr v = virStorageVolLookupByName(ds->pool, name);

	if (!v && lv_last_code() == VIR_ERR_NO_STORAGE_VOL) {
		virResetLastError();
		if (virStoragePoolRefresh(ds->pool, 0) < 0)
			virResetLastError();
		v = virStorageVolLookupByName(ds->pool, name);
	}
	if (!v)
		return lv_error("pool '%s': volume '%s'", ds->pool_name, name);
	*out = v;
	return 0;
}

static int vol_path(vsm_backend_ds *ds, virStorageVolPtr v, const char *name, char **out)
{
	if (!(*out = virStorageVolGetPath(v)))
		return lv_error("pool '%s': volume '%s' has no path", ds->pool_name, name);
	return 0;
}

/* --- datastore --- */

static void lv_close(vsm_backend_ds *ds)
{
	if (!ds)
		return;
	if (ds->conn)
		lv_watch_stop(ds);
	if (ds->pool)
		virStoragePoolFree(ds->pool);
	if (ds->conn)
		virConnectClose(ds->conn);
	/* After the close, so the loop's last turn frees what it dropped. */
	if (ds->loop_ref)
		lv_loop_unref();
	free(ds->name);
	free(ds->pool_name);
	free(ds->connect_uri);
	free(ds);
}

static int lv_open(vsm_backend_ds **out, const char *uri,
		   const vsm_backend_open_args *args)
{
	const char *name = args && args->name ? args->name : uri;
	vsm_backend_ds *ds = calloc(1, sizeof(*ds));
	char *xml = NULL, *type = NULL, who[200];
	int rc, active;

	if (!ds)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	ds->cb_ids[0] = ds->cb_ids[1] = -1;
	if ((rc = lv_uri_parse(uri, &ds->pool_name, &ds->connect_uri)) < 0)
		goto fail;
	if (!(ds->name = strdup(name))) {
		rc = vsm_error_set(VSM_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = lv_loop_ref(&ds->loop_ref)) < 0)
		goto fail;
	snprintf(who, sizeof(who), "pool '%s'", ds->pool_name);
	if ((rc = lv_connect(&ds->conn, ds->connect_uri, who)) < 0)
		goto fail;
	if (!(ds->pool = virStoragePoolLookupByName(ds->conn, ds->pool_name))) {
		rc = lv_error("pool '%s' on '%s'", ds->pool_name, ds->connect_uri);
		goto fail;
	}
	/* A defined but stopped pool is started: its volumes hold our data. */
	if ((active = virStoragePoolIsActive(ds->pool)) < 0 ||
	    (active == 0 && virStoragePoolCreate(ds->pool, 0) < 0)) {
		rc = lv_error("pool '%s' on '%s': cannot start it", ds->pool_name,
			      ds->connect_uri);
		goto fail;
	}
	if (!(xml = virStoragePoolGetXMLDesc(ds->pool, 0))) {
		rc = lv_error("pool '%s'", ds->pool_name);
		goto fail;
	}
	if (!(type = lv_xml_root_attr(xml, "type")) || strlen(type) >= sizeof(ds->pool_type)) {
		rc = vsm_error_set(VSM_EIO, "pool '%s': libvirt described it without a usable "
				   "type", ds->pool_name);
		goto fail;
	}
	strcpy(ds->pool_type, type);
	ds->access = access_of(type);
	lv_watch_start(ds, args);
	free(xml);
	free(type);
	*out = ds;
	return 0;
fail:
	free(xml);
	free(type);
	lv_close(ds);
	return rc;
}

static int lv_capacity(vsm_backend_ds *ds, uint64_t *total, uint64_t *free_bytes)
{
	virStoragePoolInfo info;

	if (virStoragePoolGetInfo(ds->pool, &info) < 0)
		return lv_error("pool '%s': cannot read its capacity", ds->pool_name);
	if (total)
		*total = info.capacity;
	if (free_bytes)
		*free_bytes = info.available;
	return 0;
}

/* Open a volume's local path through the file backend. */
static int open_path(vsm_bdev_io **out, vsm_backend_ds *ds, virStorageVolPtr v,
		     const char *name, unsigned int flags)
{
	char *path = NULL;
	int rc;

	if (ds->access == LV_ACCESS_NETWORK)
		return vsm_error_set(VSM_ENOTSUP, "pool '%s': block I/O is not supported on "
				     "pool type %s (volume '%s' has no local path)",
				     ds->pool_name, ds->pool_type, name);
	if ((rc = vol_path(ds, v, name, &path)) < 0)
		return rc;
	rc = vsm_file_bdev_open(out, path, flags & VSM_BDEV_RDONLY);
	if (rc == -VSM_ENOTFOUND)
		rc = vsm_error_set(VSM_ENOTSUP, "pool '%s': volume '%s' is at '%s', which is not "
				   "present on this machine (remote or simulated storage); block "
				   "I/O needs the pool's storage to be local", ds->pool_name, name,
				   path);
	free(path);
	return rc;
}

static int create_volume(vsm_backend_ds *ds, const char *name, uint64_t size,
			 uint64_t allocation, const char *format,
			 const char *backing_path, const char *backing_format)
{
	/* Only file pools know raw as a format; the others are raw anyway. */
	char *xml = NULL;
	virStorageVolPtr v;
	int rc = lv_volume_xml(&xml, name, size, allocation, format,
			       ds->access == LV_ACCESS_FILE, backing_path, backing_format);

	if (rc < 0)
		return rc;
	v = virStorageVolCreateXML(ds->pool, xml, 0);
	free(xml);
	if (!v)
		return lv_error("pool '%s': cannot create %s volume '%s'", ds->pool_name, format,
				name);
	virStorageVolFree(v);
	return 0;
}

static int lv_meta_open(vsm_bdev_io **out, vsm_backend_ds *ds, uint64_t min_size,
			unsigned int flags)
{
	virStorageVolPtr v = NULL;
	virStorageVolInfo info;
	bool created = false;
	int rc;

	/* Refuse before creating anything: a failed open changes nothing. */
	if (ds->access == LV_ACCESS_NETWORK)
		return vsm_error_set(VSM_ENOTSUP, "pool '%s': block I/O is not supported on "
				     "pool type %s, and the datastore's metadata needs it",
				     ds->pool_name, ds->pool_type);
	rc = vol_get(ds, VSM_LV_META_VOLUME, &v);
	if (rc == -VSM_ENOTFOUND) {
		if (!(flags & VSM_BDEV_CREATE))
			return vsm_error_set(VSM_ENOTFOUND, "pool '%s' has no metadata (no volume "
					     "'%s')", ds->pool_name, VSM_LV_META_VOLUME);
		if ((rc = create_volume(ds, VSM_LV_META_VOLUME, min_size, 0, "raw", NULL,
					NULL)) < 0 ||
		    (rc = vol_get(ds, VSM_LV_META_VOLUME, &v)) < 0)
			return rc;
		created = true;
	} else if (rc < 0) {
		return rc;
	}
	if ((flags & VSM_BDEV_CREATE) && !(flags & VSM_BDEV_RDONLY)) {
		if (virStorageVolGetInfo(v, &info) < 0) {
			rc = lv_error("pool '%s': volume '%s'", ds->pool_name, VSM_LV_META_VOLUME);
			goto out;
		}
		if (info.capacity < min_size && virStorageVolResize(v, min_size, 0) < 0) {
			rc = lv_error("pool '%s': cannot grow volume '%s'", ds->pool_name,
				      VSM_LV_META_VOLUME);
			goto out;
		}
	}
	rc = open_path(out, ds, v, VSM_LV_META_VOLUME, flags);
out:
	if (rc < 0 && created && virStorageVolDelete(v, 0) < 0)
		virResetLastError(); /* keep the error that matters */
	virStorageVolFree(v);
	return rc;
}

/* --- devices --- */

static int lv_device_create(vsm_backend_ds *ds, const vsm_backend_device_spec *spec,
			    char *key, size_t key_size, unsigned int *out_flags)
{
	virStorageVolPtr v, b = NULL;
	char *bpath = NULL;
	bool qcow2;
	int rc;

	if ((rc = check_key(ds, spec->name)) < 0)
		return rc;
	if (strlen(spec->name) >= key_size)
		return vsm_error_set(VSM_EINVAL, "device name '%s' is too long", spec->name);
	if (!spec->format || (strcmp(spec->format, "raw") && strcmp(spec->format, "qcow2")))
		return vsm_error_set(VSM_EINVAL, "pool '%s': device '%s': unknown format '%s'",
				     ds->pool_name, spec->name, spec->format ? spec->format : "");
	qcow2 = !strcmp(spec->format, "qcow2");
	if (spec->backing_key && !qcow2)
		return vsm_error_set(VSM_EINVAL, "pool '%s': device '%s': only qcow2 devices "
				     "have a backing device", ds->pool_name, spec->name);
	if ((v = virStorageVolLookupByName(ds->pool, spec->name))) {
		virStorageVolFree(v);
		return vsm_error_set(VSM_EEXISTS, "pool '%s' already has a volume '%s'",
				     ds->pool_name, spec->name);
	}
	virResetLastError();
	if (spec->backing_key) {
		if ((rc = check_key(ds, spec->backing_key)) < 0 ||
		    (rc = vol_get(ds, spec->backing_key, &b)) < 0)
			return rc;
		/* In a file pool the backing reference is the volume's name,
		 * relative to the overlay's directory: that is the key the core
		 * reads back from the qcow2 header, and the pool stays movable.
		 * libvirt resolves it against the pool's directory itself. */
		if (ds->access == LV_ACCESS_FILE && !(bpath = strdup(spec->backing_key)))
			rc = vsm_error_set(VSM_ENOMEM, "out of memory");
		else if (ds->access != LV_ACCESS_FILE)
			rc = vol_path(ds, b, spec->backing_key, &bpath);
		virStorageVolFree(b);
		if (rc < 0)
			return rc;
	}
	/* qcow2 grows into its virtual size; raw is reserved unless thin. */
	rc = create_volume(ds, spec->name, spec->size,
			   qcow2 || (spec->flags & VSM_BACKEND_DEVICE_THIN) ? 0 : spec->size,
			   spec->format, bpath,
			   spec->backing_format ? spec->backing_format : "raw");
	free(bpath);
	if (rc < 0)
		return rc;
	strcpy(key, spec->name);
	/* libvirt ran qemu-img for a qcow2 volume: the image is formatted. */
	*out_flags = qcow2 ? VSM_BACKEND_CREATED_FORMATTED : 0;
	return 0;
}

static int lv_device_delete(vsm_backend_ds *ds, const char *key, unsigned int flags)
{
	virStorageVolPtr v = NULL;
	int rc;

	(void)flags;
	if ((rc = check_key(ds, key)) < 0 || (rc = vol_get(ds, key, &v)) < 0)
		return rc;
	if (virStorageVolDelete(v, 0) < 0)
		rc = lv_error("pool '%s': cannot delete volume '%s'", ds->pool_name, key);
	virStorageVolFree(v);
	return rc;
}

static int lv_device_resize(vsm_backend_ds *ds, const char *key, uint64_t size,
			    unsigned int flags)
{
	virStorageVolInfo info;
	virStorageVolPtr v = NULL;
	int rc;

	(void)flags;
	if ((rc = check_key(ds, key)) < 0 || (rc = vol_get(ds, key, &v)) < 0)
		return rc;
	if (virStorageVolGetInfo(v, &info) < 0)
		rc = lv_error("pool '%s': volume '%s'", ds->pool_name, key);
	else if (size < info.capacity)
		rc = vsm_error_set(VSM_EINVAL, "pool '%s': volume '%s': shrinking is not "
				   "supported", ds->pool_name, key);
	else if (size > info.capacity && virStorageVolResize(v, size, 0) < 0)
		rc = lv_error("pool '%s': cannot resize volume '%s'", ds->pool_name, key);
	virStorageVolFree(v);
	return rc;
}

static int lv_device_open(vsm_bdev_io **out, vsm_backend_ds *ds, const char *key,
			  unsigned int flags)
{
	virStorageVolPtr v = NULL;
	int rc;

	if ((rc = check_key(ds, key)) < 0 || (rc = vol_get(ds, key, &v)) < 0)
		return rc;
	rc = open_path(out, ds, v, key, flags);
	virStorageVolFree(v);
	return rc;
}

/* Every volume whose name could be a key, the metadata volume left out.
 * The pool is refreshed first: this daemon sees volumes another host made
 * on shared storage only after a refresh (a failed refresh leaves the
 * listing as libvirt last knew it, which is still safe to report). */
static int lv_device_list(vsm_backend_ds *ds, vsm_backend_device_cb cb, void *payload)
{
	virStorageVolPtr *vols = NULL;
	int i, n, rc = 0;

	if (virStoragePoolRefresh(ds->pool, 0) < 0)
		virResetLastError();
	if ((n = virStoragePoolListAllVolumes(ds->pool, &vols, 0)) < 0)
		return lv_error("pool '%s': cannot list volumes", ds->pool_name);
	for (i = 0; i < n && rc == 0; i++) {
		vsm_backend_device_info info = { VSM_BACKEND_DEVICE_INFO_VERSION, NULL, NULL, 0, 0 };
		const char *name = virStorageVolGetName(vols[i]);
		virStorageVolInfo vi;
		char *xml;

		if (!key_alphabet(name) || !strcmp(name, VSM_LV_META_VOLUME))
			continue;
		if (virStorageVolGetInfo(vols[i], &vi) < 0) {
			/* Deleted since the listing: not there any more. */
			if (lv_last_code() == VIR_ERR_NO_STORAGE_VOL) {
				virResetLastError();
				continue;
			}
			rc = lv_error("pool '%s': volume '%s'", ds->pool_name, name);
			break;
		}
		if ((xml = virStorageVolGetXMLDesc(vols[i], 0))) {
			info.mtime = lv_xml_vol_mtime(xml);
			free(xml);
		} else {
			virResetLastError();
		}
		info.key = name;
		info.size = vi.capacity;
		rc = cb(&info, payload);
	}
	for (i = 0; i < n; i++)
		virStorageVolFree(vols[i]);
	free(vols);
	return rc;
}

/* --- hosts --- */

/* The host's hypervisor connection, or the datastore's when it has none
 * or names the same URI. *@owned says whether the caller closes it. */
static int host_conn(vsm_backend_ds *ds, const char *host, const char *host_uri,
		     virConnectPtr *out, bool *owned)
{
	char who[200];

	*owned = false;
	if (!host_uri || !strcmp(host_uri, ds->connect_uri)) {
		*out = ds->conn;
		return 0;
	}
	snprintf(who, sizeof(who), "host '%s'", host);
	*owned = true;
	return lv_connect(out, host_uri, who);
}

static const char *conn_uri(vsm_backend_ds *ds, const char *host_uri)
{
	return host_uri ? host_uri : ds->connect_uri;
}

static int lv_host_attach(vsm_backend_ds *ds, const char *host, const char *host_uri,
			  unsigned int flags)
{
	virStoragePoolPtr p;
	virConnectPtr conn;
	bool owned;
	int rc = 0, active;

	(void)flags;
	if ((rc = host_conn(ds, host, host_uri, &conn, &owned)) < 0)
		return rc;
	if (owned) {
		/* Another daemon: the pool may have to be made there. */
		rc = lv_hostpool_attach(ds, conn, host, host_uri);
		virConnectClose(conn);
		return rc;
	}
	/* The datastore's own connection: its pool is there. Start a
	 * stopped pool; refresh a running one so it sees volumes made
	 * elsewhere. */
	if (!(p = virStoragePoolLookupByName(conn, ds->pool_name)))
		return lv_error("host '%s': pool '%s' on '%s'", host, ds->pool_name,
				conn_uri(ds, host_uri));
	if ((active = virStoragePoolIsActive(p)) < 0)
		rc = lv_error("host '%s': pool '%s'", host, ds->pool_name);
	else if (active == 0 && virStoragePoolCreate(p, 0) < 0)
		rc = lv_error("host '%s': cannot start pool '%s' on '%s'", host, ds->pool_name,
			      conn_uri(ds, host_uri));
	else if (active == 1 && virStoragePoolRefresh(p, 0) < 0)
		rc = lv_error("host '%s': cannot refresh pool '%s' on '%s'", host,
			      ds->pool_name, conn_uri(ds, host_uri));
	virStoragePoolFree(p);
	return rc;
}

static int lv_host_detach(vsm_backend_ds *ds, const char *host, const char *host_uri,
			  unsigned int flags)
{
	virConnectPtr conn;
	bool owned;
	int rc;

	(void)flags;
	/* On the datastore's own connection the pool stays active: other
	 * datastores or guests may use it. */
	if (!host_uri || !strcmp(host_uri, ds->connect_uri))
		return 0;
	if ((rc = host_conn(ds, host, host_uri, &conn, &owned)) < 0)
		return rc;
	rc = lv_hostpool_detach(ds, conn, host, host_uri);
	if (owned)
		virConnectClose(conn);
	return rc;
}

/* --- deploy --- */

typedef struct {
	lv_layer *layers;
	char **paths;
	size_t n;
} layer_set;

static void layers_free(layer_set *ls)
{
	size_t i;

	for (i = 0; ls->paths && i < ls->n; i++)
		free(ls->paths[i]);
	free(ls->paths);
	free(ls->layers);
}

/* Describe @key (and, when @req has one, its backing chain) as layers. */
static int layers_get(layer_set *ls, vsm_backend_ds *ds, const char *key,
		      const vsm_backend_deploy_req *req, bool with_chain)
{
	size_t n = 1 + (with_chain ? req->chain_len : 0), i;
	int rc = 0;

	memset(ls, 0, sizeof(*ls));
	if (!(ls->layers = calloc(n, sizeof(*ls->layers))) ||
	    !(ls->paths = calloc(n, sizeof(*ls->paths)))) {
		layers_free(ls);
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	}
	ls->n = n;
	for (i = 0; i < n && rc == 0; i++) {
		const char *k = i == 0 ? key : req->chain_keys[i - 1];
		lv_layer *l = &ls->layers[i];
		virStorageVolPtr v = NULL;

		if ((rc = check_key(ds, k)) < 0 || (rc = vol_get(ds, k, &v)) < 0)
			break;
		l->access = ds->access;
		l->pool = ds->pool_name;
		l->volume = k;
		l->format = i == 0 ? (req->format ? req->format : "raw")
				   : (req->chain_formats[i - 1] ? req->chain_formats[i - 1] : "raw");
		if (ds->access != LV_ACCESS_NETWORK && (rc = vol_path(ds, v, k, &ls->paths[i])) == 0)
			l->path = ls->paths[i];
		virStorageVolFree(v);
	}
	if (rc < 0)
		layers_free(ls);
	return rc;
}

static int get_domain(virConnectPtr conn, const char *host, const char *name,
		      virDomainPtr *out)
{
	if (!(*out = virDomainLookupByName(conn, name)))
		return lv_error("host '%s': domain '%s'", host, name);
	return 0;
}

static int lv_device_deploy(vsm_backend_ds *ds, const char *key,
			    const vsm_backend_deploy_req *req, struct vsm_locator *out)
{
	virConnectPtr conn = NULL;
	virDomainPtr dom = NULL;
	char *xml = NULL, *uri = NULL;
	bool owned = false, attached = false;
	layer_set ls;
	int rc, active;

	if ((rc = layers_get(&ls, ds, key, req, true)) < 0)
		return rc;
	if ((rc = lv_disk_xml(&xml, ls.layers, ls.n, req->target, req->bus)) < 0)
		goto out;
	if (ls.layers[0].path) {
		if ((rc = vsm__fileuri_from_path(&uri, ls.layers[0].path)) < 0)
			goto out;
	} else if (asprintf(&uri, "libvirt:///%s/%s?connect=%s", ds->pool_name, key,
			    ds->connect_uri) < 0) {
		uri = NULL;
		rc = vsm_error_set(VSM_ENOMEM, "out of memory");
		goto out;
	}
	if (req->domain) {
		if ((rc = host_conn(ds, req->host, req->host_uri, &conn, &owned)) < 0 ||
		    (rc = get_domain(conn, req->host, req->domain, &dom)) < 0)
			goto out;
		if ((active = virDomainIsActive(dom)) < 0) {
			rc = lv_error("host '%s': domain '%s'", req->host, req->domain);
			goto out;
		}
		if (active == 0) {
			rc = vsm_error_set(VSM_ESTATE, "host '%s': domain '%s' is not running; "
					   "hot-attach needs a running domain", req->host,
					   req->domain);
			goto out;
		}
		if (virDomainAttachDeviceFlags(dom, xml, VIR_DOMAIN_AFFECT_LIVE) < 0) {
			rc = lv_error("host '%s': cannot hot-attach volume '%s' to domain '%s'",
				      req->host, key, req->domain);
			goto out;
		}
		attached = true;
	}
	rc = vsm_locator_set(out, uri, ls.layers[0].path, xml);
	if (rc < 0 && attached &&
	    virDomainDetachDeviceFlags(dom, xml, VIR_DOMAIN_AFFECT_LIVE) < 0)
		virResetLastError();
out:
	if (dom)
		virDomainFree(dom);
	if (owned)
		virConnectClose(conn);
	layers_free(&ls);
	free(xml);
	free(uri);
	return rc;
}

typedef struct {
	virDomainPtr dom;
	const char *name; /* fetched up front: every libvirt call resets its error */
	const char *host;
	const char *key;
} detach_ctx;

static int detach_one(const char *disk_xml, void *payload)
{
	detach_ctx *d = payload;

	if (virDomainDetachDeviceFlags(d->dom, disk_xml, VIR_DOMAIN_AFFECT_LIVE) < 0)
		return lv_error("host '%s': cannot detach volume '%s' from domain '%s'", d->host,
				d->key, d->name);
	return 0;
}

static int count_only(const char *disk_xml, void *payload)
{
	(void)disk_xml;
	(void)payload;
	return 0;
}

/* How many disks of @dom's live XML use @layer: <0 on error, and a
 * domain that has gone away uses none. */
static int disks_using(virDomainPtr dom, const char *name, const lv_layer *layer,
		       detach_ctx *detach, const char *host)
{
	char *xml = virDomainGetXMLDesc(dom, 0);
	int rc;

	if (!xml) {
		int code = lv_last_code();

		if (code == VIR_ERR_NO_DOMAIN || code == VIR_ERR_OPERATION_INVALID) {
			virResetLastError();
			return 0;
		}
		return lv_error("host '%s': domain '%s'", host, name);
	}
	rc = lv_domain_disks_matching(xml, layer, detach ? detach_one : count_only, detach);
	free(xml);
	return rc;
}

static int detach_from(virDomainPtr dom, const lv_layer *layer, const char *host,
		       const char *key)
{
	const char *name = virDomainGetName(dom);
	detach_ctx d = { dom, name ? name : "?", host, key };
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	int rc, waited;

	if ((rc = disks_using(dom, d.name, layer, &d, host)) <= 0)
		return rc;
	/* Unplug completes when the guest lets go; SCSI and a guest without
	 * an OS are quick, virtio needs the guest's driver. */
	for (waited = 0; waited < DETACH_WAIT_MS; waited += 100) {
		if ((rc = disks_using(dom, d.name, layer, NULL, host)) <= 0)
			return rc;
		nanosleep(&pause, NULL);
	}
	return vsm_error_set(VSM_EBUSY, "host '%s': domain '%s' has not released volume '%s' "
			     "(the guest must acknowledge the unplug); undeploy again later",
			     host, d.name, key);
}

static int lv_device_undeploy(vsm_backend_ds *ds, const char *key,
			      const vsm_backend_deploy_req *req)
{
	virDomainPtr *doms = NULL, dom = NULL;
	virConnectPtr conn;
	bool owned;
	layer_set ls;
	lv_layer gone;
	int rc, n = 0, i;

	rc = layers_get(&ls, ds, key, req, false);
	if (rc == -VSM_ENOTFOUND) {
		/* The volume went away under us: its path is unknown, but a
		 * disk naming it as a pool volume can still be let go of, and
		 * a forced detach must not stall on it. */
		memset(&gone, 0, sizeof(gone));
		gone.access = LV_ACCESS_NETWORK;
		gone.pool = ds->pool_name;
		gone.volume = key;
		if (!(ls.layers = malloc(sizeof(*ls.layers))))
			return vsm_error_set(VSM_ENOMEM, "out of memory");
		ls.layers[0] = gone;
		ls.paths = NULL;
		ls.n = 1;
		vsm_error_clear();
		rc = 0;
	}
	if (rc < 0)
		return rc;
	if ((rc = host_conn(ds, req->host, req->host_uri, &conn, &owned)) < 0)
		goto out;
	if (req->domain) {
		rc = get_domain(conn, req->host, req->domain, &dom);
		if (rc == -VSM_ENOTFOUND) /* the domain is gone, and the disk with it */
			rc = 0;
		else if (rc == 0)
			rc = detach_from(dom, &ls.layers[0], req->host, key);
		goto out;
	}
	/* The core does not record which domain a deploy went into, so look
	 * for the volume in every running domain of the host. */
	if ((n = virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE)) < 0) {
		rc = lv_error("host '%s': cannot list domains on '%s'", req->host,
			      conn_uri(ds, req->host_uri));
		n = 0;
		goto out;
	}
	for (i = 0; i < n && rc == 0; i++)
		rc = detach_from(doms[i], &ls.layers[0], req->host, key);
out:
	for (i = 0; i < n; i++)
		virDomainFree(doms[i]);
	free(doms);
	if (dom)
		virDomainFree(dom);
	if (owned)
		virConnectClose(conn);
	layers_free(&ls);
	return rc < 0 ? rc : 0;
}

/* Fencing a domain's I/O for a consistency group's checkpoint
 * (doc/groups.md): pause/resume, or freeze/thaw through the guest agent. */
static int lv_domain_fence(vsm_backend_ds *ds, const char *host, const char *host_uri,
			   const char *domain, unsigned int op)
{
	virConnectPtr conn = NULL;
	virDomainPtr dom = NULL;
	bool owned = false;
	int rc, state = 0, reason = 0;

	if ((rc = host_conn(ds, host, host_uri, &conn, &owned)) < 0)
		return rc;
	if ((rc = get_domain(conn, host, domain, &dom)) < 0)
		goto out;
	if (virDomainGetState(dom, &state, &reason, 0) < 0) {
		rc = lv_error("host '%s': domain '%s': cannot read its state", host, domain);
		goto out;
	}
	switch (op) {
	case VSM_BACKEND_FENCE_PAUSE:
		if (state == VIR_DOMAIN_PAUSED)
			break;
		if (state != VIR_DOMAIN_RUNNING) {
			rc = vsm_error_set(VSM_ESTATE, "host '%s': domain '%s' is not running",
					   host, domain);
			break;
		}
		if (virDomainSuspend(dom) < 0)
			rc = lv_error("host '%s': domain '%s': cannot pause it", host, domain);
		break;
	case VSM_BACKEND_FENCE_RESUME:
		if (state == VIR_DOMAIN_PAUSED && virDomainResume(dom) < 0)
			rc = lv_error("host '%s': domain '%s': cannot resume it", host, domain);
		break;
	case VSM_BACKEND_FENCE_FREEZE:
		if (virDomainFSFreeze(dom, NULL, 0, 0) < 0)
			rc = lv_error("host '%s': domain '%s': the guest agent cannot freeze its "
				      "filesystems", host, domain);
		break;
	case VSM_BACKEND_FENCE_THAW:
		if (virDomainFSThaw(dom, NULL, 0, 0) < 0)
			rc = lv_error("host '%s': domain '%s': the guest agent cannot thaw its "
				      "filesystems", host, domain);
		break;
	default:
		rc = vsm_error_set(VSM_EINVAL, "unknown fence operation %u", op);
	}
out:
	if (dom)
		virDomainFree(dom);
	if (owned)
		virConnectClose(conn);
	return rc < 0 ? rc : 0;
}

/* Block I/O: volumes with a local path are files or block devices, so
 * device_open() and meta_open() hand out the file backend's device
 * handles, which carry the file backend's block I/O table. */

const struct vsm_datastore_ops vsm__libvirt_backend_ops = VSM_DATASTORE_OPS_INIT(
	.scheme = "libvirt",
	.description = "libvirt storage pool; devices are its volumes",
	.open = lv_open,
	.close = lv_close,
	.capacity = lv_capacity,
	.meta_open = lv_meta_open,
	.device_create = lv_device_create,
	.device_delete = lv_device_delete,
	.device_resize = lv_device_resize,
	.host_attach = lv_host_attach,
	.host_detach = lv_host_detach,
	.device_deploy = lv_device_deploy,
	.device_undeploy = lv_device_undeploy,
	.device_list = lv_device_list,
	.device_open = lv_device_open,
	.domain_fence = lv_domain_fence,
);
