/*
 * `vsmctl host tag HOST TAG[=VALUE]`, `host untag HOST TAG`,
 * `host limit HOST --max-containers N` and `host show HOST`: host tags
 * and container limits, stored in the state directory's catalog and read
 * by placement phase 2 (`vsmctl attach CONTAINER auto`).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsmctl-util.h"
#include "vsmctl-host.h"

static int bad_usage(const char *what)
{
	fprintf(stderr, "vsmctl: host %s\n", what);
	return 2;
}

static void done(int json, const char *fmt, const char *a, const char *b)
{
	if (json) {
		json_object *o = json_object_new_object();

		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_SPACED));
		json_object_put(o);
	} else {
		printf(fmt, a, b);
	}
}

bool vsmctl_host_handles(int argc, char **argv)
{
	return argc >= 2 && (!strcmp(argv[1], "tag") || !strcmp(argv[1], "untag") ||
			     !strcmp(argv[1], "limit") || !strcmp(argv[1], "show"));
}

void vsmctl_host_json_add(json_object *o, const vsm_host *h)
{
	json_object *tags = json_object_new_array();
	size_t i;

	for (i = 0; i < vsm_host_tag_count(h); i++)
		json_object_array_add(tags, json_object_new_string(vsm_host_tag(h, i)));
	json_object_object_add(o, "tags", tags);
	json_object_object_add(o, "max_containers",
			       json_object_new_uint64(vsm_host_max_containers(h)));
}

void vsmctl_host_print_extra(const vsm_host *h)
{
	size_t i;

	for (i = 0; i < vsm_host_tag_count(h); i++)
		printf("%s%s", i ? "," : " tags=", vsm_host_tag(h, i));
	if (vsm_host_max_containers(h))
		printf(" limit=%zu", vsm_host_max_containers(h));
}

static int host_show(vsm_ctx *ctx, const char *name, int json)
{
	vsm_host *h = NULL;
	size_t i;

	if (vsm_host_lookup(&h, ctx, name) < 0)
		return vsmctl_fail();
	if (json) {
		json_object *o = json_object_new_object(), *arr = json_object_new_array();
		const char *hv = vsm_host_hypervisor_uri(h);

		json_object_object_add(o, "name", json_object_new_string(vsm_host_name(h)));
		json_object_object_add(o, "hypervisor_uri", hv ? json_object_new_string(hv) : NULL);
		for (i = 0; i < vsm_host_datastore_count(h); i++)
			json_object_array_add(arr, json_object_new_string(vsm_host_datastore(h, i)));
		json_object_object_add(o, "datastores", arr);
		vsmctl_host_json_add(o, h);
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_SPACED));
		json_object_put(o);
	} else {
		printf("name:           %s\n", vsm_host_name(h));
		printf("hypervisor:     %s\n", vsm_host_hypervisor_uri(h) ?
		       vsm_host_hypervisor_uri(h) : "-");
		printf("datastores:    ");
		for (i = 0; i < vsm_host_datastore_count(h); i++)
			printf("%s%s", i ? "," : " ", vsm_host_datastore(h, i));
		printf("%s\ntags:          ", vsm_host_datastore_count(h) ? "" : " -");
		for (i = 0; i < vsm_host_tag_count(h); i++)
			printf("%s%s", i ? "," : " ", vsm_host_tag(h, i));
		printf("%s\n", vsm_host_tag_count(h) ? "" : " -");
		if (vsm_host_max_containers(h))
			printf("max containers: %zu\n", vsm_host_max_containers(h));
		else
			printf("max containers: -\n");
	}
	vsm_host_free(h);
	return 0;
}

int vsmctl_host_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	if (!strcmp(argv[1], "show")) {
		if (argc != 3)
			return bad_usage("show needs: HOST");
		return host_show(ctx, argv[2], json);
	}
	if (!strcmp(argv[1], "tag")) {
		if (argc != 4)
			return bad_usage("tag needs: HOST TAG[=VALUE]");
		if (vsm_host_tag_add(ctx, argv[2], argv[3]) < 0)
			return vsmctl_fail();
		done(json, "host '%s' tagged '%s'\n", argv[2], argv[3]);
		return 0;
	}
	if (!strcmp(argv[1], "untag")) {
		if (argc != 4)
			return bad_usage("untag needs: HOST TAG");
		if (vsm_host_tag_remove(ctx, argv[2], argv[3]) < 0)
			return vsmctl_fail();
		done(json, "host '%s' untagged '%s'\n", argv[2], argv[3]);
		return 0;
	}
	if (!strcmp(argv[1], "limit")) {
		unsigned long long n;
		char *end;

		if (argc != 5 || strcmp(argv[3], "--max-containers"))
			return bad_usage("limit needs: HOST --max-containers N (0: no limit)");
		errno = 0;
		n = strtoull(argv[4], &end, 10);
		if (errno || end == argv[4] || *end || argv[4][0] == '-' || n > SIZE_MAX)
			return bad_usage("limit: --max-containers wants a number");
		if (vsm_host_set_max_containers(ctx, argv[2], (size_t)n) < 0)
			return vsmctl_fail();
		done(json, "host '%s': max containers %s\n", argv[2], argv[4]);
		return 0;
	}
	return bad_usage("unknown command");
}
