/*
 * Hosts and host<->datastore links, host tags and container limits: pure
 * catalog state, checked by attach and by placement (lib/place).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

struct vsm_host {
	char *name;
	char *hypervisor_uri;
	char **datastores;
	size_t n_datastores;
	char **tags;            /* "KEY" or "KEY=VALUE", sorted by KEY */
	size_t n_tags;
	size_t max_containers;  /* 0: no limit */
};

#define TAG_KEY_MAX 64
#define TAG_VALUE_MAX 128

static bool tag_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '-';
}

int vsm__host_tag_check(const char *tag, size_t *key_len)
{
	size_t k = 0, v = 0;
	const char *p;

	if (!tag)
		return vsm_err(VSM_EINVAL, "host tag is NULL");
	for (p = tag; *p && *p != '='; p++, k++)
		if (!tag_char(*p))
			goto bad;
	if (k == 0 || k > TAG_KEY_MAX)
		goto bad;
	if (*p == '=')
		for (p++; *p; p++, v++)
			if (!tag_char(*p) || v >= TAG_VALUE_MAX)
				goto bad;
	*key_len = k;
	return 0;
bad:
	return vsm_err(VSM_EINVAL, "bad host tag '%s' (want KEY or KEY=VALUE: KEY 1-%d and "
		       "VALUE 0-%d characters of A-Z a-z 0-9 . _ -)", tag, TAG_KEY_MAX,
		       TAG_VALUE_MAX);
}

static int host_exists(vsm_ctx *ctx, const char *name)
{
	int64_t n = 0;
	int rc = vsm_catalog_count(ctx->cat, &n, "SELECT 1 FROM hosts WHERE name = ?", "s", name);

	if (rc < 0)
		return rc;
	return n ? 0 : vsm_err(VSM_ENOTFOUND, "host '%s' does not exist", name);
}

static int ds_exists(vsm_ctx *ctx, const char *name)
{
	int64_t n = 0;
	int rc = vsm_catalog_count(ctx->cat, &n, "SELECT 1 FROM datastores WHERE name = ?",
				   "s", name);

	if (rc < 0)
		return rc;
	return n ? 0 : vsm_err(VSM_ENOTFOUND, "datastore '%s' is not registered", name);
}

/* Containers attached to @host, on @datastore or anywhere when NULL. */
static int attached_somewhere(vsm_ctx *ctx, const char *host, const char *datastore,
			      char **container_out)
{
	char **names = NULL;
	size_t n = 0, i, j;
	int rc;

	if ((rc = vsm_catalog_strings(ctx->cat, &names, &n, "SELECT name FROM datastores",
				      NULL)) < 0)
		return rc;
	for (i = 0; i < n && rc == 0; i++) {
		vsm_dstore *ds;

		if (datastore && strcmp(datastore, names[i]))
			continue;
		if (vsm__ds_get(&ds, ctx, names[i]) < 0 || vsm__ds_refresh(ctx, ds) < 0) {
			/* An unreachable datastore cannot prove the host idle. */
			vsm__error_prefix("cannot check whether host '%s' is in use", host);
			rc = -vsm__error_code();
			break;
		}
		for (j = 0; j < ds->n_recs; j++) {
			if (ds->recs[j]->attached_host &&
			    !strcmp(ds->recs[j]->attached_host, host)) {
				*container_out = vsm__strdup(ds->recs[j]->name);
				rc = 1;
				break;
			}
		}
	}
	vsm_strv_free(names, n);
	return rc;
}

VSM_API int vsm_host_add(vsm_ctx *ctx, const char *name, const vsm_host_opts *opts)
{
	vsm_host_opts defaults = VSM_HOST_OPTS_INIT;
	int64_t n = 0;
	int rc;

	vsm__error_reset();
	if (!ctx)
		return vsm_err(VSM_EINVAL, "vsm_host_add: ctx is NULL");
	if (!opts)
		opts = &defaults;
	if (opts->version == 0 || opts->version > VSM_HOST_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_host_opts version %u is not supported",
			       opts->version);
	if ((rc = vsm__name_check("host", name)) < 0)
		return rc;
	vsm__ctx_lock(ctx);
	if ((rc = vsm_catalog_count(ctx->cat, &n, "SELECT 1 FROM hosts WHERE name = ?",
				    "s", name)) == 0) {
		if (n)
			rc = vsm_err(VSM_EEXISTS, "host '%s' already exists", name);
		else
			rc = vsm_catalog_exec(ctx->cat, "INSERT INTO hosts VALUES(?, ?)", "ss",
					      name, opts->hypervisor_uri);
	}
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_host_remove(vsm_ctx *ctx, const char *name, unsigned int flags)
{
	char *busy = NULL;
	int rc;

	vsm__error_reset();
	if (!ctx || !name)
		return vsm_err(VSM_EINVAL, "vsm_host_remove: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_host_remove: unknown flags 0x%x", flags);
	vsm__ctx_lock(ctx);
	if ((rc = host_exists(ctx, name)) < 0)
		goto out;
	if ((rc = attached_somewhere(ctx, name, NULL, &busy)) != 0) {
		if (rc > 0)
			rc = vsm_err(VSM_EBUSY, "host '%s': container '%s' is attached to it",
				     name, busy ? busy : "?");
		goto out;
	}
	if ((rc = vsm_catalog_begin(ctx->cat)) < 0)
		goto out;
	if ((rc = vsm_catalog_exec(ctx->cat, "DELETE FROM links WHERE host = ?", "s", name)) < 0 ||
	    (rc = vsm_catalog_exec(ctx->cat, "DELETE FROM host_tags WHERE host = ?", "s",
				   name)) < 0 ||
	    (rc = vsm_catalog_exec(ctx->cat, "DELETE FROM host_limits WHERE host = ?", "s",
				   name)) < 0 ||
	    (rc = vsm_catalog_exec(ctx->cat, "DELETE FROM hosts WHERE name = ?", "s", name)) < 0) {
		vsm_catalog_rollback(ctx->cat);
		goto out;
	}
	rc = vsm_catalog_commit(ctx->cat);
out:
	free(busy);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_host_link(vsm_ctx *ctx, const char *host, const char *datastore,
			  unsigned int flags)
{
	int rc;

	vsm__error_reset();
	if (!ctx || !host || !datastore)
		return vsm_err(VSM_EINVAL, "vsm_host_link: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_host_link: unknown flags 0x%x", flags);
	vsm__ctx_lock(ctx);
	if ((rc = host_exists(ctx, host)) == 0 && (rc = ds_exists(ctx, datastore)) == 0)
		rc = vsm_catalog_exec(ctx->cat, "INSERT OR IGNORE INTO links VALUES(?, ?)", "ss",
				      host, datastore);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_host_unlink(vsm_ctx *ctx, const char *host, const char *datastore,
			    unsigned int flags)
{
	char *busy = NULL;
	int64_t n = 0;
	int rc;

	vsm__error_reset();
	if (!ctx || !host || !datastore)
		return vsm_err(VSM_EINVAL, "vsm_host_unlink: NULL argument");
	if (flags)
		return vsm_err(VSM_EINVAL, "vsm_host_unlink: unknown flags 0x%x", flags);
	vsm__ctx_lock(ctx);
	if ((rc = vsm_catalog_count(ctx->cat, &n, "SELECT 1 FROM links WHERE host = ? AND "
				    "datastore = ?", "ss", host, datastore)) < 0)
		goto out;
	if (!n) {
		rc = vsm_err(VSM_ENOTFOUND, "host '%s' is not linked to datastore '%s'", host,
			     datastore);
		goto out;
	}
	if ((rc = attached_somewhere(ctx, host, datastore, &busy)) != 0) {
		if (rc > 0)
			rc = vsm_err(VSM_EBUSY, "host '%s': container '%s' on datastore '%s' is "
				     "attached to it", host, busy ? busy : "?", datastore);
		goto out;
	}
	rc = vsm_catalog_exec(ctx->cat, "DELETE FROM links WHERE host = ? AND datastore = ?",
			      "ss", host, datastore);
out:
	free(busy);
	vsm__ctx_unlock(ctx);
	return rc;
}

static int host_row(void *payload, int ncol, const char *const *cols)
{
	vsm_host *h = payload;

	(void)ncol;
	if (!(h->name = vsm__strdup(cols[0])))
		return -VSM_ENOMEM;
	if (cols[1] && !(h->hypervisor_uri = vsm__strdup(cols[1])))
		return -VSM_ENOMEM;
	return 1;
}

static int limit_row(void *payload, int ncol, const char *const *cols)
{
	(void)ncol;
	*(size_t *)payload = cols[0] ? (size_t)strtoull(cols[0], NULL, 10) : 0;
	return 0;
}

static int host_new(vsm_host **out, vsm_ctx *ctx, const char *name)
{
	vsm_host *h = vsm__calloc(1, sizeof(*h));
	int rc;

	if (!h)
		return -VSM_ENOMEM;
	rc = vsm_catalog_query(ctx->cat, host_row, h, "SELECT name, hypervisor_uri FROM "
			       "hosts WHERE name = ?", "s", name);
	if (rc == 0)
		rc = vsm_err(VSM_ENOTFOUND, "host '%s' does not exist", name);
	if (rc > 0)
		rc = vsm_catalog_strings(ctx->cat, &h->datastores, &h->n_datastores,
					 "SELECT datastore FROM links WHERE host = ? ORDER BY "
					 "datastore", "s", name);
	if (rc == 0)
		rc = vsm_catalog_strings(ctx->cat, &h->tags, &h->n_tags,
					 "SELECT CASE WHEN value IS NULL THEN key ELSE "
					 "key || '=' || value END FROM host_tags WHERE host = ? "
					 "ORDER BY key", "s", name);
	if (rc == 0)
		rc = vsm_catalog_query(ctx->cat, limit_row, &h->max_containers,
				       "SELECT max_containers FROM host_limits WHERE host = ?",
				       "s", name);
	if (rc < 0) {
		vsm_host_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

VSM_API int vsm_host_lookup(vsm_host **out, vsm_ctx *ctx, const char *name)
{
	int rc;

	vsm__error_reset();
	if (!out || !ctx || !name)
		return vsm_err(VSM_EINVAL, "vsm_host_lookup: NULL argument");
	vsm__ctx_lock(ctx);
	rc = host_new(out, ctx, name);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_host_list(vsm_host ***out, size_t *count, vsm_ctx *ctx)
{
	char **names = NULL;
	size_t n = 0, i;
	vsm_host **list = NULL;
	int rc;

	vsm__error_reset();
	if (!out || !count || !ctx)
		return vsm_err(VSM_EINVAL, "vsm_host_list: NULL argument");
	vsm__ctx_lock(ctx);
	if ((rc = vsm_catalog_strings(ctx->cat, &names, &n, "SELECT name FROM hosts ORDER BY "
				      "name", NULL)) < 0)
		goto out;
	if (!(list = vsm__calloc(n, sizeof(*list)))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((rc = host_new(&list[i], ctx, names[i])) < 0) {
			vsm_host_list_free(list, i);
			goto out;
		}
	}
	*out = list;
	*count = n;
out:
	vsm_strv_free(names, n);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API void vsm_host_free(vsm_host *h)
{
	if (!h)
		return;
	free(h->name);
	free(h->hypervisor_uri);
	vsm_strv_free(h->datastores, h->n_datastores);
	vsm_strv_free(h->tags, h->n_tags);
	free(h);
}

VSM_API void vsm_host_list_free(vsm_host **list, size_t count)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < count; i++)
		vsm_host_free(list[i]);
	free(list);
}

VSM_API const char *vsm_host_name(const vsm_host *h)
{
	return h ? h->name : NULL;
}

VSM_API const char *vsm_host_hypervisor_uri(const vsm_host *h)
{
	return h ? h->hypervisor_uri : NULL;
}

VSM_API size_t vsm_host_datastore_count(const vsm_host *h)
{
	return h ? h->n_datastores : 0;
}

VSM_API const char *vsm_host_datastore(const vsm_host *h, size_t i)
{
	return h && i < h->n_datastores ? h->datastores[i] : NULL;
}

VSM_API size_t vsm_host_tag_count(const vsm_host *h)
{
	return h ? h->n_tags : 0;
}

VSM_API const char *vsm_host_tag(const vsm_host *h, size_t i)
{
	return h && i < h->n_tags ? h->tags[i] : NULL;
}

VSM_API size_t vsm_host_max_containers(const vsm_host *h)
{
	return h ? h->max_containers : 0;
}

/* --- tags and limits --- */

VSM_API int vsm_host_tag_add(vsm_ctx *ctx, const char *host, const char *tag)
{
	char key[TAG_KEY_MAX + 1];
	size_t klen = 0;
	int rc;

	vsm__error_reset();
	if (!ctx || !host || !tag)
		return vsm_err(VSM_EINVAL, "vsm_host_tag_add: NULL argument");
	if ((rc = vsm__host_tag_check(tag, &klen)) < 0)
		return rc;
	memcpy(key, tag, klen);
	key[klen] = '\0';
	vsm__ctx_lock(ctx);
	if ((rc = host_exists(ctx, host)) == 0)
		rc = vsm_catalog_exec(ctx->cat, "INSERT OR REPLACE INTO host_tags VALUES(?, ?, ?)",
				      "sss", host, key, tag[klen] == '=' ? tag + klen + 1 : NULL);
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_host_tag_remove(vsm_ctx *ctx, const char *host, const char *key)
{
	int64_t n = 0;
	int rc;

	vsm__error_reset();
	if (!ctx || !host || !key)
		return vsm_err(VSM_EINVAL, "vsm_host_tag_remove: NULL argument");
	vsm__ctx_lock(ctx);
	if ((rc = host_exists(ctx, host)) < 0 ||
	    (rc = vsm_catalog_count(ctx->cat, &n, "SELECT 1 FROM host_tags WHERE host = ? AND "
				    "key = ?", "ss", host, key)) < 0)
		goto out;
	if (!n) {
		rc = vsm_err(VSM_ENOTFOUND, "host '%s' has no tag '%s'", host, key);
		goto out;
	}
	rc = vsm_catalog_exec(ctx->cat, "DELETE FROM host_tags WHERE host = ? AND key = ?", "ss",
			      host, key);
out:
	vsm__ctx_unlock(ctx);
	return rc;
}

VSM_API int vsm_host_set_max_containers(vsm_ctx *ctx, const char *host, size_t max)
{
	int rc;

	vsm__error_reset();
	if (!ctx || !host)
		return vsm_err(VSM_EINVAL, "vsm_host_set_max_containers: NULL argument");
	if ((uint64_t)max > (uint64_t)INT64_MAX)
		return vsm_err(VSM_EINVAL, "host '%s': limit %zu is too large", host, max);
	vsm__ctx_lock(ctx);
	if ((rc = host_exists(ctx, host)) == 0)
		rc = max ? vsm_catalog_exec(ctx->cat, "INSERT OR REPLACE INTO host_limits "
					    "VALUES(?, ?)", "si", host, (int64_t)max)
			 : vsm_catalog_exec(ctx->cat, "DELETE FROM host_limits WHERE host = ?",
					    "s", host);
	vsm__ctx_unlock(ctx);
	return rc;
}
