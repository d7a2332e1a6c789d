/*
 * iSCSI backend: hosts. Attaching checks the session reaches the target;
 * deploying a device gives the host a locator (URI and libvirt disk XML)
 * through which QEMU logs in to the LUNs itself.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isc-int.h"
#include "../common/diskxml.h"

int isc_host_attach(vsm_backend_ds *ds, const char *host, const char *host_uri,
		    unsigned int flags)
{
	int rc;

	(void)host_uri;
	(void)flags;
	/* This process's session is the host's path to the target: make
	 * sure it answers (reconnecting if it must). */
	pthread_mutex_lock(&ds->lock);
	rc = isc_scan_luns(ds);
	pthread_mutex_unlock(&ds->lock);
	if (rc < 0) {
		char pre[300];

		snprintf(pre, sizeof(pre), "datastore '%s': host '%s' cannot use the target",
			 ds->name, host);
		return isc_prefix_error(rc, pre);
	}
	return 0;
}

int isc_host_detach(vsm_backend_ds *ds, const char *host, const char *host_uri,
		    unsigned int flags)
{
	(void)ds; (void)host; (void)host_uri; (void)flags;
	return 0;
}

int isc_device_deploy(vsm_backend_ds *ds, const char *key,
		      const vsm_backend_deploy_req *req, struct vsm_locator *out)
{
	size_t n = req->chain_len + 1, i;
	lun_info *luns = NULL;
	vsm_disk_xml_layer *layers = NULL;
	const char **attrs = NULL;
	char **names = NULL, *uri = NULL, *xml = NULL, *usage = NULL, port[16];
	int rc;

	snprintf(port, sizeof(port), "%u", ds->u.port);
	if (ds->u.user) {
		/* The libvirt secret holding the CHAP password, by usage name. */
		if (ds->u.auth_secret)
			usage = strdup(ds->u.auth_secret);
		else if (asprintf(&usage, "libvsm/%s", ds->u.iqn) < 0)
			usage = NULL;
		if (!usage)
			return isc_oom();
	}
	{
		/* Every layer is a LUN of the same target: one set of children. */
		const char *host_a[] = { "name", ds->u.host, "port", port, NULL };
		const char *iqn_a[] = { "name", ds->u.initiator, NULL };
		const char *auth_a[] = { "username", ds->u.user, NULL };
		const char *secret_a[] = { "type", "iscsi", "usage", usage, NULL };
		const vsm_disk_xml_elem iqn = { "iqn", iqn_a, NULL, 0 };
		const vsm_disk_xml_elem secret = { "secret", secret_a, NULL, 0 };
		const vsm_disk_xml_elem kids[3] = {
			{ "host", host_a, NULL, 0 },
			{ "initiator", NULL, &iqn, 1 },
			{ "auth", auth_a, &secret, 1 },
		};

		luns = calloc(n, sizeof(*luns));
		layers = calloc(n, sizeof(*layers));
		attrs = calloc(5 * n, sizeof(*attrs));
		names = calloc(n, sizeof(*names));
		if (!luns || !layers || !attrs || !names) {
			rc = isc_oom();
			goto out;
		}
		for (i = 0; i < n; i++) {
			if ((rc = isc_resolve(ds, i ? req->chain_keys[i - 1] : key, &luns[i])) < 0)
				goto out;
			if (asprintf(&names[i], "%s/%d", ds->u.iqn, luns[i].lun) < 0) {
				names[i] = NULL;
				rc = isc_oom();
				goto out;
			}
			attrs[5 * i] = "protocol";
			attrs[5 * i + 1] = "iscsi";
			attrs[5 * i + 2] = "name";
			attrs[5 * i + 3] = names[i];
			layers[i].type = "network";
			layers[i].format = i ? req->chain_formats[i - 1] : req->format;
			layers[i].source_attrs = &attrs[5 * i];
			layers[i].source_children = kids;
			layers[i].n_source_children = ds->u.user ? 3 : 2;
		}
		if ((rc = vsm__diskxml_build(&xml, layers, n, req->target, req->bus, 0)) < 0)
			goto out;
	}
	if (asprintf(&uri, strchr(ds->u.host, ':') ? "iscsi://[%s]:%u/%s/%d" :
		     "iscsi://%s:%u/%s/%d", ds->u.host, ds->u.port, ds->u.iqn, luns[0].lun) < 0) {
		uri = NULL;
		rc = isc_oom();
		goto out;
	}
	rc = vsm_locator_set(out, uri, NULL, xml);
out:
	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	free(attrs);
	free(layers);
	free(luns);
	free(usage);
	free(uri);
	free(xml);
	return rc;
}

int isc_device_undeploy(vsm_backend_ds *ds, const char *key,
			const vsm_backend_deploy_req *req)
{
	const char *name;
	int lun;

	(void)req;
	/* Nothing was set up on the host: QEMU logs in by itself. */
	return isc_parse_key(ds, key, &lun, &name);
}
