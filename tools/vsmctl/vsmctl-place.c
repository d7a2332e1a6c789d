/*
 * `vsmctl place --disk DEV:SIZE[:FORMAT] [--disk ...] [--base DEV=IMAGE]
 * [--thin] [--host-tag TAG] [--json]`: phase 1 (the datastore), then
 * phase 2 (the host) on the datastore chosen. Public API only.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vsm/vsm.h>

#include "vsmctl-place.h"

#define MAX_DEV 64

static int usage(const char *what, const char *arg)
{
	fprintf(stderr, "vsmctl: place: %s '%s'\nusage: vsmctl place --disk DEV:SIZE[:FORMAT] "
		"[--disk ...] [--base DEV=IMAGE] [--thin] [--host-tag TAG] [--json]\n", what,
		arg);
	return 2;
}

static int size_of(const char *s, uint64_t *out)
{
	static const char units[] = "KMGTP";
	unsigned long long v;
	const char *u;
	char *end;

	errno = 0;
	if (!s || !*s || *s == '-')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	*out = v;
	if (!*end)
		return 0;
	if (!(u = strchr(units, *end >= 'a' ? *end - 32 : *end)) ||
	    (end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B")))
		return -1;
	for (long i = 0; i <= u - units; i++) {
		if (*out > UINT64_MAX >> 10)
			return -1;
		*out <<= 10;
	}
	return 0;
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : json_object_new_null();
}

/* {"ranked": [{"name","score","available"}...], "rejected": [{"name","reason"}]} */
static json_object *placement_json(const vsm_placement *p, int with_available)
{
	json_object *o = json_object_new_object(), *r = json_object_new_array(),
		    *x = json_object_new_array();
	size_t i;

	for (i = 0; p && i < vsm_placement_count(p); i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "name", jstr(vsm_placement_name(p, i)));
		json_object_object_add(e, "score", json_object_new_double(vsm_placement_score(p, i)));
		if (with_available)
			json_object_object_add(e, "available",
					       json_object_new_uint64(vsm_placement_available(p, i)));
		json_object_array_add(r, e);
	}
	for (i = 0; p && i < vsm_placement_rejected_count(p); i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "name", jstr(vsm_placement_rejected_name(p, i)));
		json_object_object_add(e, "reason", jstr(vsm_placement_rejected_reason(p, i)));
		json_object_array_add(x, e);
	}
	json_object_object_add(o, "ranked", r);
	json_object_object_add(o, "rejected", x);
	return o;
}

/* "a: why; b: why" of a placement's rejected candidates (malloc'd). */
static char *reasons(const vsm_placement *p)
{
	size_t i, len = 1;
	char *s;

	for (i = 0; p && i < vsm_placement_rejected_count(p); i++)
		len += strlen(vsm_placement_rejected_name(p, i)) +
		       strlen(vsm_placement_rejected_reason(p, i)) + 4;
	if (!(s = calloc(1, len)))
		return NULL;
	for (i = 0; p && i < vsm_placement_rejected_count(p); i++) {
		if (i)
			strcat(s, "; ");
		strcat(s, vsm_placement_rejected_name(p, i));
		strcat(s, ": ");
		strcat(s, vsm_placement_rejected_reason(p, i));
	}
	return s;
}

static const char *host_error(void)
{
	return vsm_error_last()->message;
}

int vsmctl_place_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_place_request req = VSM_PLACE_REQUEST_INIT;
	vsm_host_request hreq = VSM_HOST_REQUEST_INIT;
	vsm_device_spec specs[MAX_DEV];
	const vsm_device_spec *ptrs[MAX_DEV];
	const char *tags[MAX_DEV], *ds = NULL, *host = NULL;
	char *names[MAX_DEV], *why = NULL;
	vsm_placement *pd = NULL, *ph = NULL;
	size_t n = 0, n_tags = 0, i;
	int a, rc = 2, hrc = 0;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--json")) {
			json = 1;
		} else if (!strcmp(argv[a], "--thin")) {
			req.flags |= VSM_PLACE_THIN;
		} else if (!strcmp(argv[a], "--cached")) {
			req.flags |= VSM_PLACE_CACHED;
		} else if (!strcmp(argv[a], "--weigher") && a + 1 < argc) {
			req.weigher = argv[++a];
		} else if (!strcmp(argv[a], "--host-tag") && a + 1 < argc) {
			if (n_tags == MAX_DEV) {
				rc = usage("too many tags at", argv[a + 1]);
				goto out;
			}
			tags[n_tags++] = argv[++a];
		} else if (!strcmp(argv[a], "--disk") && a + 1 < argc) {
			const char *spec = argv[++a], *c1 = strchr(spec, ':'), *c2;
			vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
			char size[64];

			c2 = c1 ? strchr(c1 + 1, ':') : NULL;
			if (n == MAX_DEV || !c1 || (size_t)((c2 ? c2 : c1 + strlen(c1)) - c1) >= sizeof(size)) {
				rc = usage("bad --disk (want DEV:SIZE[:FORMAT])", spec);
				goto out;
			}
			snprintf(size, sizeof(size), "%.*s", (int)((c2 ? c2 : c1 + strlen(c1)) - c1 - 1),
				 c1 + 1);
			if (size_of(size, &d.size) < 0 || (c2 && vsm_format_parse(&d.format, c2 + 1) < 0) ||
			    !(names[n] = strndup(spec, (size_t)(c1 - spec)))) {
				rc = usage("bad --disk (want DEV:SIZE[:raw|qcow2])", spec);
				goto out;
			}
			d.name = names[n];
			specs[n++] = d;
		} else if (!strcmp(argv[a], "--base") && a + 1 < argc) {
			const char *b = argv[++a], *eq = strchr(b, '=');

			for (i = 0; eq && i < n; i++)
				if (strlen(specs[i].name) == (size_t)(eq - b) &&
				    !strncmp(specs[i].name, b, (size_t)(eq - b)))
					break;
			if (!eq || i == n) {
				rc = usage("bad --base (want DEV=IMAGE, after DEV's --disk)", b);
				goto out;
			}
			specs[i].base = eq + 1;
			specs[i].format = VSM_FORMAT_QCOW2;
		} else {
			rc = usage("unknown option", argv[a]);
			goto out;
		}
	}
	if (n == 0) {
		rc = usage("needs at least one", "--disk");
		goto out;
	}
	for (i = 0; i < n; i++)
		ptrs[i] = &specs[i];
	req.devices = ptrs;
	req.n_devices = n;
	if (vsm_place_datastore(&pd, ctx, &req) < 0) {
		fprintf(stderr, "vsmctl: %s\n", vsm_error_last()->message);
		rc = 1;
		goto out;
	}
	ds = vsm_placement_name(pd, 0);
	if (ds) {
		hreq.tags = n_tags ? tags : NULL;
		hreq.n_tags = n_tags;
		hrc = vsm_place_host_for(&ph, ctx, &ds, 1, &hreq);
		host = hrc == 0 ? vsm_placement_name(ph, 0) : NULL;
	}
	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "datastores", placement_json(pd, 1));
		json_object_object_add(o, "hosts", ds && hrc == 0 ? placement_json(ph, 0) :
				       json_object_new_null());
		if (ds && hrc < 0)
			json_object_object_add(o, "hosts_error", jstr(host_error()));
		json_object_object_add(o, "datastore", jstr(ds));
		json_object_object_add(o, "host", jstr(host));
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else if (ds) {
		printf("datastore: %s\n", ds);
		if (host) {
			printf("host: %s\n", host);
		} else {
			why = hrc < 0 ? strdup(host_error()) : reasons(ph);
			printf("host: none (%s)\n", why && *why ? why : "no host is registered");
		}
	} else {
		why = reasons(pd);
		printf("datastore: none (%s)\n", why && *why ? why : "no datastore is registered");
	}
	rc = ds ? 0 : 1;
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(why);
	vsm_placement_free(pd);
	vsm_placement_free(ph);
	return rc;
}
