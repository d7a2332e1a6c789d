/*
 * Container devices through the COW engine (see devimage.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "becall.h"
#include "cow.h"
#include "devimage.h"

int vsm__ds_backing_open(vsm_bdev **out, const char *name, bool readonly, void *payload)
{
	vsm_dstore *ds = payload;
	const char *why;

	/* A backing reference is a key, verbatim and opaque ('/' included):
	 * only the backend knows whether it names one of its devices, and
	 * it refuses a key that does not (a path out of its namespace). */
	if ((why = vsm__key_invalid(name)))
		return vsm_err(VSM_EINVAL, "datastore '%s': backing reference '%s' is not a "
			       "device of this datastore (%s)", ds->name, name, why);
	return vsm__ds_open_device(ds, name, readonly ? VSM_BDEV_RDONLY : 0, out);
}

int vsm__dev_create(vsm_wf *wf, const char *undo_action, vsm_dstore *ds,
		    const char *name, uint64_t size, const char *format,
		    const char *backing, const char *backing_format, unsigned int flags,
		    char key[VSM_BACKEND_KEY_MAX])
{
	vsm_backend_device_spec spec = {
		VSM_BACKEND_DEVICE_SPEC_VERSION, name, size, format, backing,
		backing ? backing_format : NULL, flags,
	};
	unsigned int out_flags = 0;
	const char *why;
	int rc;

	if ((rc = vsm__wf_undo(wf, undo_action, name)) < 0)
		return rc;
	memset(key, 0, VSM_BACKEND_KEY_MAX);
	rc = vsm__be_device_create(ds, &spec, key, VSM_BACKEND_KEY_MAX, &out_flags);
	if (rc < 0) {
		vsm__error_prefix("datastore '%s'", ds->name);
		return rc;
	}
	if (!key[0] || memchr(key, '\0', VSM_BACKEND_KEY_MAX) == NULL)
		return vsm_err(VSM_EINTERNAL, "datastore '%s': backend '%s' returned no key for "
			       "device '%s'", ds->name, vsm__be_scheme(ds), name);
	if (strcmp(key, name) && (rc = vsm__wf_update(wf, key)) < 0)
		return rc;
	/* Refused before any record names it; the journal deletes it. */
	if ((why = vsm__key_invalid(key)))
		return vsm_err(VSM_EINTERNAL, "datastore '%s': backend '%s' returned key '%s' "
			       "for device '%s', which is not a valid key: %s (see backend.h)",
			       ds->name, vsm__be_scheme(ds), key, name, why);
	/* The core writes the image format itself unless the backend did. */
	if (!strcmp(format, "qcow2") && !(out_flags & VSM_BACKEND_CREATED_FORMATTED))
		return vsm__dev_format_qcow2(ds, key, size, spec.backing_key,
					     spec.backing_format);
	return 0;
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
	if (rc == 0 && base) {
		vsm_cow_open_opts o = {0};
		vsm_cow *c = NULL;

		/* The engine owns @b from here on. */
		o.format = "qcow2";
		o.flags = VSM_COW_NO_BACKING;
		if ((rc = vsm_cow_open(&c, b, label, &o)) == 0 &&
		    (rc = vsm_cow_bitmap_add(c, VSM_CBT_BITMAP, 0, true)) == 0)
			rc = vsm_cow_close(c);
		else
			vsm_cow_close(c);
		return rc;
	}
	vsm_bdev_close(b);
	return rc;
}

static int cbt_set(uint64_t off, uint64_t len, void *payload)
{
	return vsm_cow_bitmap_set(payload, VSM_CBT_BITMAP, off, len);
}

int vsm__dev_cbt_repair(struct vsm_cow *c)
{
	vsm_cow_bitmap_info *list = NULL;
	uint64_t off = 0, size, pnum;
	uint32_t gran = 0;
	size_t n = 0, i;
	bool stale = false;
	int rc;

	if (vsm_cow_format(c) != VSM_COW_QCOW2)
		return 0;
	if ((rc = vsm_cow_bitmap_list(c, &list, &n)) < 0)
		return rc;
	for (i = 0; i < n; i++)
		if (!strcmp(list[i].name, VSM_CBT_BITMAP) && list[i].in_use) {
			stale = true;
			gran = list[i].granularity;
		}
	vsm_cow_bitmap_list_free(list, n);
	if (!stale)
		return 0;
	if ((rc = vsm_cow_bitmap_remove(c, VSM_CBT_BITMAP)) < 0 ||
	    (rc = vsm_cow_bitmap_add(c, VSM_CBT_BITMAP, gran, true)) < 0)
		return rc;
	size = vsm_cow_size(c);
	while (off < size) {
		vsm_cow_status st;

		if ((rc = vsm_cow_block_status(c, off, size - off, &pnum, &st)) < 0)
			return rc;
		if (!pnum)
			return vsm_err(VSM_EIO, "%s: block status made no progress",
				       vsm_cow_label(c));
		if (st.present && st.depth == 0 && (rc = cbt_set(off, pnum, c)) < 0)
			return rc;
		off += pnum;
	}
	return 1;
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
