/*
 * Private to the libvirt backend: the datastore handle, the process-wide
 * libvirt setup (error printing, event loop thread), error translation,
 * and the XML helpers.
 */
#ifndef VSM_LV_INT_H
#define VSM_LV_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

#include "libvirt-backend.h"

/* How volumes of a pool type are reached. */
typedef enum {
	LV_ACCESS_FILE,    /* a local file: dir, fs, netfs, vstorage */
	LV_ACCESS_BLOCK,   /* a local block device: logical, disk, iscsi, scsi, mpath, zfs */
	LV_ACCESS_NETWORK, /* no local path: rbd, gluster, sheepdog, iscsi-direct */
} lv_access;

struct lv_watch;

struct vsm_backend_ds {
	char *name;        /* datastore name, for messages */
	char *pool_name;
	char *connect_uri; /* passed to libvirt untouched */
	virConnectPtr conn;
	virStoragePoolPtr pool;
	char pool_type[32];
	lv_access access;
	struct lv_watch *watch; /* NULL when events are not available */
	int cb_ids[2];          /* -1 when not registered */
	bool loop_ref;          /* holds a reference on the event loop thread */
};

/* --- lv-conn.c --- */

/* Split libvirt:///POOL[?connect=URI]; everything after "connect=" is the
 * connection URI, verbatim. Caller frees both. */
int lv_uri_parse(const char *uri, char **pool, char **connect);

/* Once per process (lv_init): silence libvirt's stderr printing and,
 * unless the application registered its own event loop, register
 * libvirt's default one. Each open datastore then holds a reference on
 * the thread that runs that loop (started on the first reference, joined
 * on the last); @ref tells whether a reference was taken. */
int lv_init(void);
int lv_loop_ref(bool *ref);
void lv_loop_unref(void);

/* Map libvirt's last error on this thread to a VSM code and set our
 * message: "<ours>: <libvirt's>". Returns the negated code. */
int lv_error(const char *fmt, ...) VSM_PRINTF(1, 2);
/* libvirt's last error number on this thread (VIR_ERR_OK if none). */
int lv_last_code(void);

/* Open a connection, mapping failure with lv_error. */
int lv_connect(virConnectPtr *out, const char *uri, const char *who);

/* Pool lifecycle/refresh events -> args->notify. Failure to register is
 * not fatal: a driver without events just never reports. */
void lv_watch_start(vsm_backend_ds *ds, const vsm_backend_open_args *args);
void lv_watch_stop(vsm_backend_ds *ds);

/* --- lv-hostpool.c: the datastore's pool on another host's daemon --- */

/* Make the pool usable on @conn (@host's, at @uri): start or refresh the
 * pool there, or create it transiently from the datastore pool's XML and
 * record the attachment. */
int lv_hostpool_attach(vsm_backend_ds *ds, virConnectPtr conn, const char *host,
		       const char *uri);
/* Drop one attachment record; with the last, destroy the transient pool
 * libvsm created on @conn. A pool libvsm did not create stays. */
int lv_hostpool_detach(vsm_backend_ds *ds, virConnectPtr conn, const char *host,
		       const char *uri);

/* --- lv-blockcopy.c: the hypervisor driver's version-2 ops --- */

int lv_hv_copy_start(vsm_hv_copy **out, const char *uri, const char *domain, const char *disk,
		     const char *dest, unsigned int flags);
int lv_hv_copy_wait(vsm_hv_copy *j, unsigned int timeout_ms, uint64_t *cur, uint64_t *end);
int lv_hv_copy_end(vsm_hv_copy *j, int pivot);
int lv_hv_copy_cancel(const char *uri, const char *domain, const char *disk);
int lv_hv_disk_source(const char *uri, const char *domain, const char *disk, char **source);

/* --- lv-xml.c --- */

/* One layer of a disk: the device itself or a backing layer. */
typedef struct {
	lv_access access;
	const char *path;   /* FILE/BLOCK */
	const char *pool;   /* NETWORK: referenced as a pool volume */
	const char *volume;
	const char *format;
} lv_layer;

/* <disk> for @layers[0] with @layers[1..n-1] as its backing chain, built by
 * the common disk-XML writer (target and bus checked, values escaped). */
int lv_disk_xml(char **out, const lv_layer *layers, size_t n, const char *target,
		const char *bus);

/* <volume> for virStorageVolCreateXML. @with_format: spell a raw
 * volume's format (file pools); qcow2 always gets it, with compat 1.1. */
int lv_volume_xml(char **out, const char *name, uint64_t size, uint64_t allocation,
		  const char *format, bool with_format, const char *backing_path,
		  const char *backing_format);

/* A volume's <target><timestamps><mtime> in whole seconds since the
 * epoch, or 0 when the XML has none (pools that keep no times, the test
 * driver). */
int64_t lv_xml_vol_mtime(const char *xml);

/* The root element's @attr of an XML document, or NULL. Caller frees. */
char *lv_xml_root_attr(const char *xml, const char *attr);

/* For each <disk> of a domain's XML whose source is @layer, call @cb
 * with that element serialised. Returns the number found, or a negative
 * VSM code (message set) if the XML does not parse or @cb fails. */
int lv_domain_disks_matching(const char *domain_xml, const lv_layer *layer,
			     int (*cb)(const char *disk_xml, void *payload),
			     void *payload);

#endif /* VSM_LV_INT_H */
