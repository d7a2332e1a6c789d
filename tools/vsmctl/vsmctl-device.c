/*
 * `vsmctl device add|remove|resize`: change the devices of an existing
 * container. Public API only; the rules are the library's (container.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsmctl-device.h"
#include "vsmctl-util.h"

static const char device_usage[] =
	"usage: vsmctl device add CONTAINER NAME:SIZE[:FORMAT] [--thin]\n"
	"       vsmctl device remove CONTAINER NAME\n"
	"       vsmctl device resize CONTAINER NAME SIZE   (grow only)\n"
	"SIZE: bytes, or a number with K, M, G, T or P (powers of 1024); FORMAT: raw\n"
	"(default) or qcow2. A deployed device is neither removed nor resized.\n";

static int bad_usage(const char *fmt, const char *arg)
{
	fputs("vsmctl: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	fputs(device_usage, stderr);
	return 2;
}

/* Bytes with an optional K/M/G/T/P suffix, optionally followed by "iB". */
static int size_parse(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end) {
		const char *units = "KMGTP", *u = strchr(units, *end & ~0x20);

		if (!u || !*u)
			return -1;
		shift = 10 * (unsigned int)(u - units + 1);
		end++;
		if (*end && strcmp(end, "iB"))
			return -1;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* What the command left: the device as the updated handle has it. */
static void report(const vsm_container *c, const char *name, const char *what, int json)
{
	const vsm_device *d = vsm_container_device_by_name(c, name);
	char human[32];

	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "container", json_object_new_string(vsm_container_name(c)));
		json_object_object_add(o, "device", json_object_new_string(name));
		json_object_object_add(o, "action", json_object_new_string(what));
		if (d) {
			json_object_object_add(o, "size", json_object_new_int64((int64_t)vsm_device_size(d)));
			json_object_object_add(o, "format",
					       json_object_new_string(vsm_format_name(vsm_device_format(d))));
		}
		json_object_object_add(o, "devices",
				       json_object_new_int64((int64_t)vsm_container_device_count(c)));
		vsmctl_print_json(o);
		return;
	}
	if (!d) {
		printf("container '%s': device '%s' %s\n", vsm_container_name(c), name, what);
		return;
	}
	vsmctl_human(human, sizeof(human), vsm_device_size(d));
	printf("container '%s': device '%s' %s (%s, %s)\n", vsm_container_name(c), name, what,
	       human, vsm_format_name(vsm_device_format(d)));
}

static int device_add(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_device_spec spec = VSM_DEVICE_SPEC_INIT;
	vsm_container *c = NULL;
	unsigned int flags = 0;
	char *name = NULL, *c1, *c2;
	int a, rc = 1;

	if (argc < 4)
		return bad_usage("device add: %s", "CONTAINER and NAME:SIZE[:FORMAT] are required");
	for (a = 4; a < argc; a++) {
		if (!strcmp(argv[a], "--thin"))
			flags |= VSM_DEVICE_ADD_THIN;
		else
			return bad_usage("unknown option '%s'", argv[a]);
	}
	if (!(c1 = strchr(argv[3], ':')))
		return bad_usage("bad device '%s' (want NAME:SIZE[:raw|qcow2])", argv[3]);
	if (!(name = strndup(argv[3], (size_t)(c1 - argv[3]))))
		return vsmctl_fail();
	if ((c2 = strchr(c1 + 1, ':')))
		*c2 = '\0';
	if (size_parse(c1 + 1, &spec.size) < 0 ||
	    (c2 && vsm_format_parse(&spec.format, c2 + 1) < 0)) {
		if (c2)
			*c2 = ':';
		free(name);
		return bad_usage("bad device '%s' (want NAME:SIZE[:raw|qcow2])", argv[3]);
	}
	if (c2)
		*c2 = ':';
	spec.name = name;
	if (vsmctl_find_container(&c, ctx, argv[2]) < 0 || vsm_device_add(c, &spec, flags) < 0) {
		rc = vsmctl_fail();
	} else {
		report(c, name, "added", json);
		rc = 0;
	}
	vsm_container_free(c);
	free(name);
	return rc;
}

static int device_remove(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_container *c = NULL;
	int rc = 0;

	if (argc != 4)
		return bad_usage("device remove: %s", "CONTAINER and NAME are required");
	if (vsmctl_find_container(&c, ctx, argv[2]) < 0 || vsm_device_remove(c, argv[3], 0) < 0)
		rc = vsmctl_fail();
	else
		report(c, argv[3], "removed", json);
	vsm_container_free(c);
	return rc;
}

static int device_resize(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_container *c = NULL;
	uint64_t size = 0;
	int rc = 0;

	if (argc != 5)
		return bad_usage("device resize: %s", "CONTAINER, NAME and SIZE are required");
	if (size_parse(argv[4], &size) < 0)
		return bad_usage("bad size '%s'", argv[4]);
	if (vsmctl_find_container(&c, ctx, argv[2]) < 0 ||
	    vsm_device_resize(c, argv[3], size, 0) < 0)
		rc = vsmctl_fail();
	else
		report(c, argv[3], "resized", json);
	vsm_container_free(c);
	return rc;
}

int vsmctl_device_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	if (argc < 2)
		return bad_usage("device: %s", "add, remove or resize?");
	if (!strcmp(argv[1], "add"))
		return device_add(ctx, argc, argv, json);
	if (!strcmp(argv[1], "remove"))
		return device_remove(ctx, argc, argv, json);
	if (!strcmp(argv[1], "resize"))
		return device_resize(ctx, argc, argv, json);
	return bad_usage("unknown device command '%s'", argv[1]);
}
