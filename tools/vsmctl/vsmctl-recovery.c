/*
 * `vsmctl group backup GROUP DIR [--incremental-from NAME] [--checkpoint NAME]
 * [--timeout SEC]` and `vsmctl group recover DIR --datastore DS [--host HOST]
 * [--start] [--name NEW] [--point NAME]`, through the public
 * <vsm/recovery.h> API only. Errors print "vsmctl: <message>" and exit 1;
 * usage errors exit 2. recover prints each step as it happens (a JSON
 * line per step with --json).
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vsm/vsm.h>
#include <vsm/recovery.h>

#include "vsmctl-util.h"
#include "vsmctl-recovery.h"

static const char usage_text[] =
	"usage: vsmctl group backup GROUP DIR [--incremental-from NAME] [--checkpoint NAME]\n"
	"                           [--timeout SEC]\n"
	"       vsmctl group recover DIR --datastore DS [--host HOST] [--start] [--name NEW]\n"
	"                            [--point NAME]\n"
	"backup: a group checkpoint (NAME, or backup-<time>) and each member's backup of it\n"
	"  in DIR, with the group's recovery plan.\n"
	"recover: the group rebuilt from the sets in DIR; with --host its members are\n"
	"  attached and deployed there; --start defines and starts their domains in boot\n"
	"  order on the host's hypervisor.\n";

static int usage(const char *why, const char *arg)
{
	fprintf(stderr, "vsmctl: ");
	fprintf(stderr, why, arg);
	fprintf(stderr, "\n%s", usage_text);
	return 2;
}

/* GROUP or DATASTORE/GROUP. */
static int find(vsm_group **out, vsm_ctx *ctx, const char *spec)
{
	const char *slash = strchr(spec, '/');
	char ds[128];

	if (!slash)
		return vsm_group_lookup(out, ctx, NULL, spec);
	snprintf(ds, sizeof(ds), "%.*s", (int)(slash - spec), spec);
	return vsm_group_lookup(out, ctx, ds, slash + 1);
}

static int backup(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_group_backup_opts o = VSM_GROUP_BACKUP_OPTS_INIT;
	vsm_group *g = NULL;
	int a, rc = 0;

	if (argc < 4)
		return usage("group backup needs GROUP DIR%s", "");
	for (a = 4; a < argc; a++) {
		if (!strcmp(argv[a], "--incremental-from") && a + 1 < argc)
			o.incremental_from = argv[++a];
		else if (!strcmp(argv[a], "--checkpoint") && a + 1 < argc)
			o.checkpoint = argv[++a];
		else if (!strcmp(argv[a], "--timeout") && a + 1 < argc) {
			if (vsmctl_timeout_ms(argv[++a], &o.timeout_ms) < 0)
				return usage("--timeout '%s' is not a number of seconds (0-3600]",
					     argv[a]);
		} else if (!strcmp(argv[a], "--json"))
			json = 1;
		else
			return usage("unknown option '%s'", argv[a]);
	}
	if (find(&g, ctx, argv[2]) < 0 || vsm_group_backup(g, argv[3], &o) < 0) {
		rc = vsmctl_fail();
	} else if (json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "group", json_object_new_string(vsm_group_name(g)));
		json_object_object_add(j, "dir", json_object_new_string(argv[3]));
		json_object_object_add(j, "type", json_object_new_string(o.incremental_from ?
									 "incremental" : "full"));
		puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY));
		json_object_put(j);
	} else {
		printf("%s backup of group '%s' (%zu members) written to '%s'\n",
		       o.incremental_from ? "incremental" : "full", vsm_group_name(g),
		       vsm_group_member_count(g), argv[3]);
	}
	vsm_group_free(g);
	return rc;
}

static void print_step(const char *member, const char *step, const char *detail, void *payload)
{
	if (*(int *)payload) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "member", member ? json_object_new_string(member) : NULL);
		json_object_object_add(j, "step", json_object_new_string(step));
		json_object_object_add(j, "detail", json_object_new_string(detail));
		puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
	} else {
		printf("%-8s %-16s %s\n", step, member ? member : "-", detail);
	}
	fflush(stdout);
}

static int recover(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_group_recover_opts o = VSM_GROUP_RECOVER_OPTS_INIT;
	vsm_group *g = NULL;
	int a, rc = 0;

	if (argc < 3)
		return usage("group recover needs DIR%s", "");
	for (a = 3; a < argc; a++) {
		if (!strcmp(argv[a], "--datastore") && a + 1 < argc)
			o.datastore = argv[++a];
		else if (!strcmp(argv[a], "--host") && a + 1 < argc)
			o.host = argv[++a];
		else if (!strcmp(argv[a], "--name") && a + 1 < argc)
			o.name = argv[++a];
		else if (!strcmp(argv[a], "--point") && a + 1 < argc)
			o.point = argv[++a];
		else if (!strcmp(argv[a], "--start"))
			o.flags |= VSM_GROUP_RECOVER_START;
		else if (!strcmp(argv[a], "--json"))
			json = 1;
		else
			return usage("unknown option '%s'", argv[a]);
	}
	if (!o.datastore)
		return usage("group recover needs --datastore DS%s", "");
	o.step = print_step;
	o.payload = &json;
	if (vsm_group_recover(&g, ctx, argv[2], &o) < 0)
		rc = vsmctl_fail();
	else if (!json)
		printf("group '%s' recovered onto datastore '%s' (%zu members)\n", vsm_group_name(g),
		       o.datastore, vsm_group_member_count(g));
	vsm_group_free(g);
	return rc;
}

int vsmctl_group_recovery_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	if (!strcmp(argv[1], "backup"))
		return backup(ctx, argc, argv, json);
	return recover(ctx, argc, argv, json);
}
