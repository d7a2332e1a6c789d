/*
 * `vsmctl migrate CONTAINER --datastore DS [--live [--downtime-ms N]
 * [--deadline SEC] [--on-no-converge sync|abort]] [--json]`, through the public
 * <vsm/migrate.h> API only. A progress bar on a terminal; with --json,
 * one JSON object per line on stdout: {"event":"progress",...} while it
 * runs, then {"event":"migrated",...}. Errors print "vsmctl: <message>"
 * and exit 1; usage errors exit 2.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vsm/vsm.h>
#include <vsm/migrate.h>

#include "vsmctl-util.h"
#include "vsmctl-migrate.h"

static const char usage_text[] =
	"usage: vsmctl migrate CONTAINER --datastore DS [--live [--downtime-ms N]\n"
	"                     [--deadline SEC] [--on-no-converge sync|abort]] [--json]\n"
	"  moves a detached container, with its checkpoints, to datastore DS (offline);\n"
	"  the copy is verified before the source is removed. --live also moves an\n"
	"  attached container while this process's image handles write it (a\n"
	"  detached one moves as offline): copy passes until the rest fits N ms\n"
	"  (default 300), then a short write pause and the switch; one that does not\n"
	"  converge within SEC seconds mirrors every write (sync, the default) or\n"
	"  gives up (abort).\n";

static int usage(const char *why, const char *arg)
{
	fprintf(stderr, "vsmctl: ");
	fprintf(stderr, why, arg);
	fprintf(stderr, "\n%s", usage_text);
	return 2;
}

static int json_progress(uint64_t done, uint64_t total, void *payload)
{
	json_object *j = json_object_new_object();

	(void)payload;
	json_object_object_add(j, "event", json_object_new_string("progress"));
	json_object_object_add(j, "done", json_object_new_uint64(done));
	json_object_object_add(j, "total", json_object_new_uint64(total));
	printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	json_object_put(j);
	return 0;
}

int vsmctl_migrate_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_migrate_opts o = VSM_MIGRATE_OPTS_INIT;
	vsm_migrate_stats st;
	vsm_container *c = NULL;
	const char *ds = NULL, *from;
	char from_buf[256], *end;
	int a, rc = 0, live_opt = 0;

	if (argc < 2 || argv[1][0] == '-')
		return usage("migrate needs CONTAINER%s", "");
	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--datastore") && a + 1 < argc)
			ds = argv[++a];
		else if (!strcmp(argv[a], "--json"))
			json = 1;
		else if (!strcmp(argv[a], "--live"))
			o.flags |= VSM_MIGRATE_LIVE;
		else if (!strcmp(argv[a], "--downtime-ms") && a + 1 < argc) {
			unsigned long v = strtoul(argv[++a], &end, 10);

			if (*end || !*argv[a] || argv[a][0] == '-' || v == 0 || v > 3600000)
				return usage("--downtime-ms wants 1..3600000, not '%s'", argv[a]);
			o.downtime_ms = (unsigned int)v;
			live_opt = 1;
		} else if (!strcmp(argv[a], "--deadline") && a + 1 < argc) {
			double v = strtod(argv[++a], &end);

			if (*end || !*argv[a] || !(v > 0) || v > 86400)
				return usage("--deadline wants seconds in (0, 86400], not '%s'",
					     argv[a]);
			o.deadline_ms = v * 1000 < 1 ? 1 : (unsigned int)(v * 1000);
			live_opt = 1;
		} else if (!strcmp(argv[a], "--on-no-converge") && a + 1 < argc) {
			a++;
			if (!strcmp(argv[a], "sync"))
				o.on_no_converge = VSM_MIGRATE_NO_CONVERGE_SYNC;
			else if (!strcmp(argv[a], "abort"))
				o.on_no_converge = VSM_MIGRATE_NO_CONVERGE_ABORT;
			else
				return usage("--on-no-converge wants sync or abort, not '%s'",
					     argv[a]);
			live_opt = 1;
		} else
			return usage("unknown option '%s'", argv[a]);
	}
	if (!ds)
		return usage("migrate needs --datastore DS%s", "");
	if (live_opt && !(o.flags & VSM_MIGRATE_LIVE))
		return usage("--downtime-ms, --deadline and --on-no-converge need --live%s", "");
	o.stats = &st;
	o.progress = json ? json_progress : vsmctl_progress;
	o.payload = json ? NULL : (void *)"migrate";
	if (vsmctl_find_container(&c, ctx, argv[1]) < 0)
		return vsmctl_fail();
	from = vsm_container_datastore(c);
	snprintf(from_buf, sizeof(from_buf), "%s", from);
	if (vsm_container_migrate(c, ds, &o) < 0) {
		rc = vsmctl_fail();
	} else if (json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "event", json_object_new_string("migrated"));
		json_object_object_add(j, "container", json_object_new_string(vsm_container_name(c)));
		json_object_object_add(j, "uuid", json_object_new_string(vsm_container_uuid(c)));
		json_object_object_add(j, "from", json_object_new_string(from_buf));
		json_object_object_add(j, "to", json_object_new_string(vsm_container_datastore(c)));
		json_object_object_add(j, "layers", json_object_new_uint64(st.layers));
		json_object_object_add(j, "layers_reused", json_object_new_uint64(st.layers_reused));
		json_object_object_add(j, "bytes_written", json_object_new_uint64(st.bytes_written));
		json_object_object_add(j, "bytes_verified",
				       json_object_new_uint64(st.bytes_verified));
		if (o.flags & VSM_MIGRATE_LIVE) {
			json_object_object_add(j, "passes", json_object_new_uint64(st.passes));
			json_object_object_add(j, "pause_us", json_object_new_uint64(st.pause_us));
			json_object_object_add(j, "bytes_mirrored",
					       json_object_new_uint64(st.bytes_mirrored));
			json_object_object_add(j, "synchronous",
					       json_object_new_boolean(st.synchronous != 0));
		}
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(j);
	} else {
		char h[32];

		vsmctl_human(h, sizeof(h), st.bytes_written);
		printf("container '%s' migrated from '%s' to '%s' (%llu layers, %s written, "
		       "verified)\n", vsm_container_name(c), from_buf, vsm_container_datastore(c),
		       (unsigned long long)st.layers, h);
		if (st.passes)
			printf("live: %llu passes, writes paused %llu us%s\n",
			       (unsigned long long)st.passes, (unsigned long long)st.pause_us,
			       st.synchronous ? ", synchronous mirroring" : "");
	}
	vsm_container_free(c);
	return rc;
}
