/*
 * `vsmctl migrate CONTAINER --host HOST [--json]` (host migration: the
 * container's lease handed over to HOST) and the steps one by one for
 * scripts that run the two hosts' sides in different places:
 * `vsmctl handover begin CONTAINER HOST`, `accept CONTAINER HOST`,
 * `complete CONTAINER`, `cancel CONTAINER`, `status CONTAINER`, each
 * with --json. Public API only. Errors print "vsmctl: <message>" and exit
 * 1; usage errors exit 2.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vsm/vsm.h>
#include <vsm/handover.h>

#include "vsmctl-util.h"
#include "vsmctl-handover.h"

static const char usage_text[] =
	"usage: vsmctl migrate CONTAINER --host HOST [--begin-only] [--json]\n"
	"  hands an attached container over to HOST for a VM live migration: begin,\n"
	"  accept and complete when HOST is registered here, else begin only (HOST's\n"
	"  side then runs 'vsmctl handover accept' and 'complete').\n"
	"       vsmctl handover begin|accept CONTAINER HOST [--json]\n"
	"       vsmctl handover complete|cancel|status CONTAINER [--json]\n";

static int usage(const char *why, const char *arg)
{
	fprintf(stderr, "vsmctl: ");
	fprintf(stderr, why, arg);
	fprintf(stderr, "\n%s", usage_text);
	return 2;
}

static const char *state_name(int st)
{
	return st == VSM_HANDOVER_BEGUN ? "begun" : st == VSM_HANDOVER_ACCEPTED ? "accepted" :
	       "none";
}

/* One JSON line (or a sentence) saying where @c stands now. */
static int report(vsm_container *c, const char *event, const char *host, int json)
{
	char *target = NULL;
	int st = vsm_handover_state_of(c, &target);

	if (st < 0)
		return vsmctl_fail();
	if (json) {
		json_object *j = json_object_new_object();
		const char *att = vsm_container_attached_host(c);

		json_object_object_add(j, "event", json_object_new_string(event));
		json_object_object_add(j, "container", json_object_new_string(vsm_container_name(c)));
		json_object_object_add(j, "datastore",
				       json_object_new_string(vsm_container_datastore(c)));
		if (host)
			json_object_object_add(j, "host", json_object_new_string(host));
		json_object_object_add(j, "attached_host", att ? json_object_new_string(att) : NULL);
		json_object_object_add(j, "handover", json_object_new_string(state_name(st)));
		json_object_object_add(j, "target", target ? json_object_new_string(target) : NULL);
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(j);
	} else if (!strcmp(event, "status")) {
		printf("container '%s': attached to '%s', handover %s%s%s\n",
		       vsm_container_name(c), vsm_container_attached_host(c) ?
		       vsm_container_attached_host(c) : "-", state_name(st),
		       target ? " to " : "", target ? target : "");
	} else {
		printf("container '%s': %s (host '%s')\n", vsm_container_name(c), event,
		       host ? host : "?");
	}
	free(target);
	return 0;
}

int vsmctl_migrate_host_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_handover_opts o = VSM_HANDOVER_OPTS_INIT;
	vsm_container *c = NULL;
	const char *host = NULL;
	int a, rc;

	if (argc < 2 || argv[1][0] == '-')
		return usage("migrate needs CONTAINER%s", "");
	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--host") && a + 1 < argc)
			host = argv[++a];
		else if (!strcmp(argv[a], "--begin-only"))
			o.flags |= VSM_HANDOVER_BEGIN_ONLY;
		else if (!strcmp(argv[a], "--json"))
			json = 1;
		else
			return usage("unknown option '%s'", argv[a]);
	}
	if (!host)
		return usage("migrate needs --host HOST%s", "");
	if (vsmctl_find_container(&c, ctx, argv[1]) < 0)
		return vsmctl_fail();
	rc = vsm_container_migrate_host(c, host, &o);
	if (rc < 0) {
		rc = vsmctl_fail();
	} else if (rc == VSM_HANDOVER_BEGUN) {
		rc = report(c, "begun", host, json);
		if (!json && rc == 0)
			printf("host '%s' must now run: vsmctl handover accept %s %s; then "
			       "vsmctl handover complete %s\n", host, argv[1], host, argv[1]);
	} else {
		rc = report(c, "migrated", host, json);
	}
	vsm_container_free(c);
	return rc;
}

int vsmctl_handover_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_container *c = NULL;
	const char *step, *host = NULL, *pos[2] = { NULL, NULL };
	int a, n = 0, rc;

	if (argc < 3)
		return usage("handover needs a step and CONTAINER%s", "");
	step = argv[1];
	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--json"))
			json = 1;
		else if (argv[a][0] == '-' || n >= 2)
			return usage("unexpected argument '%s'", argv[a]);
		else
			pos[n++] = argv[a];
	}
	if (!pos[0])
		return usage("handover needs CONTAINER%s", "");
	host = pos[1];
	if ((!strcmp(step, "begin") || !strcmp(step, "accept")) && !host)
		return usage("handover %s needs CONTAINER HOST", step);
	if (strcmp(step, "begin") && strcmp(step, "accept") && strcmp(step, "complete") &&
	    strcmp(step, "cancel") && strcmp(step, "status"))
		return usage("unknown handover step '%s'", step);
	if (vsmctl_find_container(&c, ctx, pos[0]) < 0)
		return vsmctl_fail();
	if (!strcmp(step, "begin"))
		rc = vsm_handover_begin(c, host, NULL);
	else if (!strcmp(step, "accept"))
		rc = vsm_handover_accept(c, host, 0);
	else if (!strcmp(step, "complete"))
		rc = vsm_handover_complete(c, 0);
	else if (!strcmp(step, "cancel"))
		rc = vsm_handover_cancel(c, 0);
	else
		rc = 0;
	if (rc < 0)
		rc = vsmctl_fail();
	else
		rc = report(c, !strcmp(step, "begin") ? "begun" : !strcmp(step, "accept") ?
			    "accepted" : !strcmp(step, "complete") ? "completed" :
			    !strcmp(step, "cancel") ? "cancelled" : "status",
			    host ? host : vsm_container_attached_host(c), json);
	vsm_container_free(c);
	return rc;
}
