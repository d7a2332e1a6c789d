/*
 * `vsmctl changes`, `vsmctl backup` and `vsmctl restore`, through the
 * public <vsm/backup.h> API only. Errors print "vsmctl: <message>" and
 * exit 1; usage errors exit 2. Backups and restores draw a progress bar
 * on stderr when it is a terminal.
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vsm/vsm.h>
#include <vsm/backup.h>

#include "vsmctl-util.h"
#include "vsmctl-backup.h"

static const char usage_text[] =
	"usage: vsmctl changes CONTAINER DEVICE --since CHECKPOINT [--until CHECKPOINT] [--json]\n"
	"       vsmctl backup CONTAINER FILE [--incremental-from CHECKPOINT] [--checkpoint NAME]\n"
	"                     [--stopped]\n"
	"       vsmctl restore FILE [FILE...] --datastore DS [--name NEW]\n"
	"changes: the extents of DEVICE written since CHECKPOINT (up to --until, or now).\n"
	"backup: takes a checkpoint (NAME, or backup-<time>) and writes it to FILE: all\n"
	"  of it, or what changed since an earlier backup's checkpoint.\n"
	"restore: a new container from a full backup and the incrementals after it, in\n"
	"  order.\n";

static int usage(const char *why, const char *arg)
{
	fprintf(stderr, "vsmctl: ");
	fprintf(stderr, why, arg);
	fprintf(stderr, "\n%s", usage_text);
	return 2;
}

int vsmctl_changes_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	const char *since = NULL, *until = NULL;
	vsm_change_extent *v = NULL;
	vsm_container *c = NULL;
	size_t n = 0, i;
	uint64_t total = 0;
	int a, rc = 0;

	if (argc < 3)
		return usage("changes needs CONTAINER DEVICE%s", "");
	for (a = 3; a < argc; a++) {
		if (!strcmp(argv[a], "--since") && a + 1 < argc)
			since = argv[++a];
		else if (!strcmp(argv[a], "--until") && a + 1 < argc)
			until = argv[++a];
		else if (!strcmp(argv[a], "--json"))
			json = 1;
		else
			return usage("unknown option '%s'", argv[a]);
	}
	if (!since)
		return usage("changes needs --since CHECKPOINT%s", "");
	if (vsmctl_find_container(&c, ctx, argv[1]) < 0 ||
	    vsm_changes(&v, &n, c, argv[2], since, until) < 0) {
		rc = vsmctl_fail();
	} else if (json) {
		json_object *j = json_object_new_object(), *arr = json_object_new_array();

		for (i = 0; i < n; i++) {
			json_object *e = json_object_new_object();

			json_object_object_add(e, "offset", json_object_new_uint64(v[i].offset));
			json_object_object_add(e, "length", json_object_new_uint64(v[i].length));
			json_object_array_add(arr, e);
			total += v[i].length;
		}
		json_object_object_add(j, "device", json_object_new_string(argv[2]));
		json_object_object_add(j, "since", json_object_new_string(since));
		json_object_object_add(j, "until", until ? json_object_new_string(until) : NULL);
		json_object_object_add(j, "bytes", json_object_new_uint64(total));
		json_object_object_add(j, "extents", arr);
		vsmctl_print_json(j);
	} else {
		printf("%-20s %-20s\n", "OFFSET", "LENGTH");
		for (i = 0; i < n; i++) {
			printf("%-20" PRIu64 " %-20" PRIu64 "\n", v[i].offset, v[i].length);
			total += v[i].length;
		}
		printf("%zu extents, %" PRIu64 " bytes changed since '%s'\n", n, total, since);
	}
	vsm_change_extents_free(v);
	vsm_container_free(c);
	return rc;
}

int vsmctl_backup_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_backup_opts o = VSM_BACKUP_OPTS_INIT;
	vsm_checkpoint_opts co = VSM_CHECKPOINT_OPTS_INIT;
	vsm_backup_stats st;
	vsm_container *c = NULL;
	char a1[32], a2[32];
	int a, rc = 0;

	if (argc < 3)
		return usage("backup needs CONTAINER FILE%s", "");
	for (a = 3; a < argc; a++) {
		if (!strcmp(argv[a], "--incremental-from") && a + 1 < argc)
			o.incremental_from = argv[++a];
		else if (!strcmp(argv[a], "--checkpoint") && a + 1 < argc)
			o.checkpoint = argv[++a];
		else if (!strcmp(argv[a], "--stopped"))
			co.flags |= VSM_CHECKPOINT_STOPPED;
		else if (!strcmp(argv[a], "--json"))
			json = 1;
		else
			return usage("unknown option '%s'", argv[a]);
	}
	o.checkpoint_opts = &co;
	o.progress = vsmctl_progress;
	o.payload = "backup";
	o.stats = &st;
	if (vsmctl_find_container(&c, ctx, argv[1]) < 0 || vsm_backup(c, argv[2], &o) < 0) {
		rc = vsmctl_fail();
	} else if (json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "checkpoint", json_object_new_string(st.checkpoint));
		json_object_object_add(j, "type", json_object_new_string(o.incremental_from ?
									 "incremental" : "full"));
		json_object_object_add(j, "data_bytes", json_object_new_uint64(st.data_bytes));
		json_object_object_add(j, "extents", json_object_new_uint64(st.extents));
		json_object_object_add(j, "file_bytes", json_object_new_uint64(st.file_bytes));
		vsmctl_print_json(j);
	} else {
		vsmctl_human(a1, sizeof(a1), st.data_bytes);
		vsmctl_human(a2, sizeof(a2), st.file_bytes);
		printf("%s backup of '%s' at checkpoint '%s'%s%s written to '%s': %s of data, "
		       "file %s\n", o.incremental_from ? "incremental" : "full", argv[1],
		       st.checkpoint, o.incremental_from ? " since " : "",
		       o.incremental_from ? o.incremental_from : "", argv[2], a1, a2);
	}
	vsm_container_free(c);
	return rc;
}

int vsmctl_restore_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_restore_opts o = VSM_RESTORE_OPTS_INIT;
	vsm_backup_stats st;
	vsm_container *c = NULL;
	const char *ds = NULL, **files;
	size_t n = 0;
	char a1[32];
	int a, rc = 0;

	if (!(files = calloc((size_t)argc, sizeof(*files))))
		return vsmctl_fail();
	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--datastore") && a + 1 < argc) {
			ds = argv[++a];
		} else if (!strcmp(argv[a], "--name") && a + 1 < argc) {
			o.name = argv[++a];
		} else if (!strcmp(argv[a], "--json")) {
			json = 1;
		} else if (argv[a][0] == '-' && argv[a][1] == '-') {
			free(files);
			return usage("unknown option '%s'", argv[a]);
		} else {
			files[n++] = argv[a];
		}
	}
	if (!n || !ds) {
		free(files);
		return usage("restore needs FILE... and --datastore DS%s", "");
	}
	o.progress = vsmctl_progress;
	o.payload = "restore";
	o.stats = &st;
	if (vsm_restore(&c, ctx, files, n, ds, &o) < 0) {
		rc = vsmctl_fail();
	} else if (json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "name", json_object_new_string(vsm_container_name(c)));
		json_object_object_add(j, "checkpoint", json_object_new_string(st.checkpoint));
		json_object_object_add(j, "files", json_object_new_uint64(n));
		json_object_object_add(j, "data_bytes", json_object_new_uint64(st.data_bytes));
		vsmctl_print_json(j);
	} else {
		vsmctl_human(a1, sizeof(a1), st.data_bytes);
		printf("restored container '%s' into datastore '%s' from %zu backup file(s), at "
		       "checkpoint '%s': %s written\n", vsm_container_name(c), ds, n,
		       st.checkpoint, a1);
	}
	vsm_container_free(c);
	free(files);
	return rc;
}
