/*
 * Container devices through the COW engine (see devimage.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/cow.h"
#include "devimage.h"

int vsm__ds_backing_open(vsm_bdev **out, const char *name, bool readonly, void *payload)
{
	vsm_dstore *ds = payload;

	/* Keys are single names in the datastore's namespace; anything that
	 * looks like a path could point outside it. */
	if (!name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return vsm_err(VSM_EINVAL, "datastore '%s': backing reference '%s' is not a "
			       "device of this datastore", ds->name, name);
	return vsm__ds_open_device(ds, name, readonly ? VSM_BDEV_RDONLY : 0, out);
}

int vsm__dev_format_qcow2(vsm_dstore *ds, const char *key, uint64_t size,
			  const char *base, const char *base_format)
{
	vsm_cow_create_opts opts = {0};
	vsm_bdev *b = NULL;
	char label[VSM_BACKEND_KEY_MAX + 64];
	int rc;

	if ((rc = vsm__ds_open_device(ds, key, 0, &b)) < 0)
		return rc;
	snprintf(label, sizeof(label), "datastore '%s' device '%s'", ds->name, key);
	opts.size = size;
	opts.backing = base;
	opts.backing_format = base_format;
	opts.open_backing = vsm__ds_backing_open;
	opts.payload = ds;
	rc = vsm_cow_create_qcow2(b, label, &opts);
	if (rc == 0)
		rc = vsm_bdev_flush(b);
	vsm_bdev_close(b);
	return rc;
}

void vsm__layers_free(vsm_rec_layer *chain, size_t n)
{
	size_t i;

	for (i = 0; chain && i < n; i++)
		free(chain[i].key);
	free(chain);
}

int vsm__dev_probe(vsm_dstore *ds, const char *key, const char *format, uint64_t *size,
		   int *format_out, vsm_rec_layer **chain_out, size_t *chain_len)
{
	vsm_cow_open_opts opts = {0};
	vsm_rec_layer *chain = NULL;
	vsm_cow *c = NULL, *layer;
	vsm_bdev *b = NULL;
	char label[VSM_BACKEND_KEY_MAX + 64];
	size_t n = 0;
	int rc;

	if ((rc = vsm__ds_backing_open(&b, key, true, ds)) < 0)
		return rc;
	snprintf(label, sizeof(label), "datastore '%s' image '%s'", ds->name, key);
	opts.format = format;
	opts.flags = VSM_COW_RDONLY;
	opts.open_backing = vsm__ds_backing_open;
	opts.payload = ds;
	if ((rc = vsm_cow_open(&c, b, label, &opts)) < 0)
		return rc;
	*size = vsm_cow_size(c);
	if (format_out)
		*format_out = vsm_cow_format(c) == VSM_COW_QCOW2 ? VSM_FORMAT_QCOW2 : VSM_FORMAT_RAW;
	for (layer = c; layer; layer = vsm_cow_backing(layer)) {
		vsm_cow_info info;
		vsm_rec_layer *grown;
		int fmt;

		if (!vsm_cow_backing(layer))
			break;
		if ((rc = vsm_cow_get_info(layer, &info)) < 0)
			goto fail;
		fmt = vsm_cow_format(vsm_cow_backing(layer)) == VSM_COW_QCOW2 ?
		      VSM_FORMAT_QCOW2 : VSM_FORMAT_RAW;
		if (!(grown = realloc(chain, (n + 1) * sizeof(*grown)))) {
			rc = vsm_err(VSM_ENOMEM, "out of memory");
			goto fail;
		}
		chain = grown;
		chain[n].format = fmt;
		if (!(chain[n].key = vsm__strdup(info.backing))) {
			rc = -VSM_ENOMEM;
			goto fail;
		}
		n++;
	}
	vsm_cow_close(c);
	*chain_out = chain;
	*chain_len = n;
	return 0;
fail:
	vsm__layers_free(chain, n);
	vsm_cow_close(c);
	return rc;
}
