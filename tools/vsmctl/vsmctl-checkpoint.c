/*
 * `vsmctl checkpoint create|list|revert|delete`, `vsmctl container clone`,
 * `vsmctl export` and `vsmctl import`, through the public
 * <vsm/checkpoint.h> API only. Errors print "vsmctl: <message>" and exit
 * 1; usage errors exit 2. Long copies draw a progress bar on stderr when
 * it is a terminal.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vsm/vsm.h>
#include <vsm/checkpoint.h>

#include "vsmctl-util.h"
#include "vsmctl-checkpoint.h"

static const char usage_text[] =
	"usage: vsmctl checkpoint create CONTAINER NAME [--state-file F] [--stopped]\n"
	"       vsmctl checkpoint list CONTAINER\n"
	"       vsmctl checkpoint revert CONTAINER NAME [--state-file F] [--stopped]\n"
	"       vsmctl checkpoint delete CONTAINER NAME [--stopped]\n"
	"       vsmctl container clone SRC NEW --checkpoint NAME [--full]\n"
	"       vsmctl export CONTAINER FILE [--checkpoint NAME]\n"
	"       vsmctl import FILE --datastore DS [--name NEW]\n"
	"--state-file: create reads the VM-state blob from F; revert writes it to F.\n"
	"--stopped: the VM is stopped; deployed devices may change.\n";

static int usage(const char *why, const char *arg)
{
	fprintf(stderr, "vsmctl: ");
	fprintf(stderr, why, arg);
	fprintf(stderr, "\n%s", usage_text);
	return 2;
}

static int cmd_create(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_checkpoint_opts o = VSM_CHECKPOINT_OPTS_INIT;
	vsm_container *c = NULL;
	vsm_checkpoint *cp = NULL;
	const char *state = NULL;
	int a, rc;

	for (a = 4; a < argc; a++) {
		if (!strcmp(argv[a], "--state-file") && a + 1 < argc)
			state = argv[++a];
		else if (!strcmp(argv[a], "--stopped"))
			o.flags |= VSM_CHECKPOINT_STOPPED;
		else
			return usage("unknown option '%s'", argv[a]);
	}
	if (state && (o.state_fd = open(state, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "vsmctl: cannot open state file '%s'\n", state);
		return 1;
	}
	if (vsmctl_find_container(&c, ctx, argv[2]) < 0) {
		rc = vsmctl_fail();
		goto out;
	}
	if (vsm_checkpoint_create(&cp, c, argv[3], &o) < 0) {
		rc = vsmctl_fail();
		goto out;
	}
	rc = 0;
	if (json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "name", json_object_new_string(vsm_checkpoint_name(cp)));
		json_object_object_add(j, "state_size",
				       json_object_new_uint64(vsm_checkpoint_state_size(cp)));
		vsmctl_print_json(j);
	} else {
		printf("checkpoint '%s' of container '%s' created\n", argv[3], argv[2]);
	}
out:
	if (o.state_fd >= 0)
		close(o.state_fd);
	vsm_checkpoint_free(cp);
	vsm_container_free(c);
	return rc;
}

static void print_tree(vsm_checkpoint **list, size_t n, const char *parent, int depth)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		const char *p = vsm_checkpoint_parent(list[i]);
		uint64_t bytes = 0;
		char when[32], size[32], state[32];
		time_t t = (time_t)vsm_checkpoint_ctime(list[i]);
		struct tm tm;

		/* Roots when @parent is NULL, else the children of @parent. */
		if (parent ? !p || strcmp(p, parent) != 0 : p != NULL)
			continue;
		for (j = 0; j < vsm_checkpoint_layer_count(list[i]); j++)
			bytes += vsm_checkpoint_layer_size(list[i], j);
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		vsmctl_human(size, sizeof(size), bytes);
		vsmctl_human(state, sizeof(state), vsm_checkpoint_state_size(list[i]));
		printf("%*s%s%-*s %s  layers %-10s state %-10s%s\n", depth * 2, "",
		       depth ? "`- " : "", 24 - depth * 2, vsm_checkpoint_name(list[i]), when,
		       size, state, vsm_checkpoint_is_current(list[i]) ? "  <- current" : "");
		print_tree(list, n, vsm_checkpoint_name(list[i]), depth + 1);
	}
}

static int cmd_list(vsm_ctx *ctx, const char *container, int json)
{
	vsm_container *c = NULL;
	vsm_checkpoint **list = NULL;
	size_t n, i, j;

	if (vsmctl_find_container(&c, ctx, container) < 0 || vsm_checkpoint_list(&list, &n, c) < 0) {
		vsm_container_free(c);
		return vsmctl_fail();
	}
	if (json) {
		json_object *arr = json_object_new_array();

		for (i = 0; i < n; i++) {
			json_object *e = json_object_new_object(), *lays = json_object_new_array();
			const char *p = vsm_checkpoint_parent(list[i]);

			json_object_object_add(e, "name", json_object_new_string(vsm_checkpoint_name(list[i])));
			json_object_object_add(e, "parent", p ? json_object_new_string(p) : NULL);
			json_object_object_add(e, "ctime", json_object_new_int64(vsm_checkpoint_ctime(list[i])));
			json_object_object_add(e, "state_size",
					       json_object_new_uint64(vsm_checkpoint_state_size(list[i])));
			json_object_object_add(e, "current",
					       json_object_new_boolean(vsm_checkpoint_is_current(list[i])));
			for (j = 0; j < vsm_checkpoint_layer_count(list[i]); j++) {
				json_object *l = json_object_new_object();

				json_object_object_add(l, "device",
						       json_object_new_string(vsm_checkpoint_layer_device(list[i], j)));
				json_object_object_add(l, "key",
						       json_object_new_string(vsm_checkpoint_layer_key(list[i], j)));
				json_object_object_add(l, "cid",
						       json_object_new_string(vsm_checkpoint_layer_cid(list[i], j)));
				json_object_object_add(l, "size",
						       json_object_new_uint64(vsm_checkpoint_layer_size(list[i], j)));
				json_object_array_add(lays, l);
			}
			json_object_object_add(e, "layers", lays);
			json_object_array_add(arr, e);
		}
		vsmctl_print_json(arr);
	} else if (n == 0) {
		printf("container '%s' has no checkpoints\n", container);
	} else {
		print_tree(list, n, NULL, 0);
	}
	vsm_checkpoint_list_free(list, n);
	vsm_container_free(c);
	return 0;
}

static int cmd_revert(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_revert_opts o = VSM_REVERT_OPTS_INIT;
	vsm_container *c = NULL;
	const char *state = NULL;
	int a, rc = 0;

	for (a = 4; a < argc; a++) {
		if (!strcmp(argv[a], "--state-file") && a + 1 < argc)
			state = argv[++a];
		else if (!strcmp(argv[a], "--stopped"))
			o.flags |= VSM_CHECKPOINT_STOPPED;
		else
			return usage("unknown option '%s'", argv[a]);
	}
	if (state && (o.state_fd = open(state, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
					0600)) < 0) {
		fprintf(stderr, "vsmctl: cannot create state file '%s'\n", state);
		return 1;
	}
	if (vsmctl_find_container(&c, ctx, argv[2]) < 0 || vsm_checkpoint_revert(c, argv[3], &o) < 0)
		rc = vsmctl_fail();
	else if (json)
		vsmctl_print_json(json_object_new_object());
	else
		printf("container '%s' reverted to checkpoint '%s'\n", argv[2], argv[3]);
	if (o.state_fd >= 0)
		close(o.state_fd);
	vsm_container_free(c);
	return rc;
}

static int cmd_delete(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_container *c = NULL;
	unsigned int flags = 0;
	int a, rc = 0;

	for (a = 4; a < argc; a++) {
		if (!strcmp(argv[a], "--stopped"))
			flags |= VSM_CHECKPOINT_STOPPED;
		else
			return usage("unknown option '%s'", argv[a]);
	}
	if (vsmctl_find_container(&c, ctx, argv[2]) < 0 || vsm_checkpoint_delete(c, argv[3], flags) < 0)
		rc = vsmctl_fail();
	else if (json)
		vsmctl_print_json(json_object_new_object());
	else
		printf("checkpoint '%s' of container '%s' deleted\n", argv[3], argv[2]);
	vsm_container_free(c);
	return rc;
}

int vsmctl_checkpoint_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	if (argc >= 4 && !strcmp(argv[1], "create"))
		return cmd_create(ctx, argc, argv, json);
	if (argc == 3 && !strcmp(argv[1], "list"))
		return cmd_list(ctx, argv[2], json);
	if (argc >= 4 && !strcmp(argv[1], "revert"))
		return cmd_revert(ctx, argc, argv, json);
	if (argc >= 4 && !strcmp(argv[1], "delete"))
		return cmd_delete(ctx, argc, argv, json);
	return usage("unknown or incomplete checkpoint command%s", "");
}

int vsmctl_clone_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_clone_opts o = VSM_CLONE_OPTS_INIT;
	vsm_clone_stats st;
	vsm_container *src = NULL, *clone = NULL;
	const char *checkpoint = NULL;
	int a, rc = 0;

	if (argc < 4)
		return usage("container clone needs SRC and NEW%s", "");
	for (a = 4; a < argc; a++) {
		if (!strcmp(argv[a], "--checkpoint") && a + 1 < argc)
			checkpoint = argv[++a];
		else if (!strcmp(argv[a], "--datastore") && a + 1 < argc)
			o.datastore = argv[++a];
		else if (!strcmp(argv[a], "--full"))
			o.flags |= VSM_CLONE_FULL;
		else
			return usage("unknown option '%s'", argv[a]);
	}
	if (!checkpoint)
		return usage("container clone needs --checkpoint NAME%s", "");
	o.stats = &st;
	if (o.datastore) {
		o.progress = vsmctl_progress;
		o.payload = "clone";
	}
	if (vsmctl_find_container(&src, ctx, argv[2]) < 0 ||
	    vsm_checkpoint_clone_to(&clone, src, checkpoint, argv[3], &o) < 0) {
		rc = vsmctl_fail();
	} else if (json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "datastore",
				       json_object_new_string(vsm_container_datastore(clone)));
		json_object_object_add(j, "bytes-copied", json_object_new_uint64(st.bytes_copied));
		json_object_object_add(j, "layers-copied",
				       json_object_new_uint64(st.layers_copied));
		json_object_object_add(j, "layers-reused",
				       json_object_new_uint64(st.layers_reused));
		vsmctl_print_json(j);
	} else if (o.datastore && strcmp(o.datastore, vsm_container_datastore(src))) {
		printf("container '%s' on datastore '%s' is a clone of '%s' at checkpoint '%s': "
		       "%llu layer(s) copied, %llu reused, %llu bytes copied\n", argv[3],
		       o.datastore, argv[2], checkpoint, (unsigned long long)st.layers_copied,
		       (unsigned long long)st.layers_reused, (unsigned long long)st.bytes_copied);
	} else {
		printf("container '%s' is a %s clone of '%s' at checkpoint '%s'\n", argv[3],
		       o.flags ? "full" : "linked", argv[2], checkpoint);
	}
	vsm_container_free(clone);
	vsm_container_free(src);
	return rc;
}

int vsmctl_export_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_bundle_opts o = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats st;
	vsm_container *c = NULL;
	const char *checkpoint = NULL;
	char size[32];
	int a, rc = 0;

	if (argc < 3)
		return usage("export needs CONTAINER FILE%s", "");
	for (a = 3; a < argc; a++) {
		if (!strcmp(argv[a], "--checkpoint") && a + 1 < argc)
			checkpoint = argv[++a];
		else
			return usage("unknown option '%s'", argv[a]);
	}
	o.progress = vsmctl_progress;
	o.payload = "export";
	o.stats = &st;
	if (vsmctl_find_container(&c, ctx, argv[1]) < 0 ||
	    vsm_bundle_export(c, checkpoint, argv[2], &o) < 0) {
		rc = vsmctl_fail();
	} else if (json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "layers", json_object_new_uint64(st.layers));
		json_object_object_add(j, "bytes", json_object_new_uint64(st.bundle_bytes));
		vsmctl_print_json(j);
	} else {
		vsmctl_human(size, sizeof(size), st.bundle_bytes);
		printf("exported %s%s%s to '%s': %" PRIu64 " layers, %s\n", argv[1],
		       checkpoint ? " at checkpoint " : "", checkpoint ? checkpoint : "", argv[2],
		       st.layers, size);
	}
	vsm_container_free(c);
	return rc;
}

int vsmctl_import_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_bundle_opts o = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats st;
	vsm_container *c = NULL;
	const char *ds = NULL, *name = NULL;
	char size[32];
	int a, rc = 0;

	if (argc < 2)
		return usage("import needs FILE%s", "");
	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--datastore") && a + 1 < argc)
			ds = argv[++a];
		else if (!strcmp(argv[a], "--name") && a + 1 < argc)
			name = argv[++a];
		else
			return usage("unknown option '%s'", argv[a]);
	}
	if (!ds)
		return usage("import needs --datastore DS%s", "");
	o.progress = vsmctl_progress;
	o.payload = "import";
	o.stats = &st;
	if (vsm_bundle_import(&c, ctx, argv[1], ds, name, &o) < 0) {
		rc = vsmctl_fail();
	} else if (json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "name", json_object_new_string(vsm_container_name(c)));
		json_object_object_add(j, "layers", json_object_new_uint64(st.layers));
		json_object_object_add(j, "layers_skipped", json_object_new_uint64(st.layers_skipped));
		json_object_object_add(j, "bytes_written", json_object_new_uint64(st.bytes_written));
		vsmctl_print_json(j);
	} else {
		vsmctl_human(size, sizeof(size), st.bytes_written);
		printf("imported container '%s' into datastore '%s': %" PRIu64 " layers (%" PRIu64
		       " already there), %s written\n", vsm_container_name(c), ds, st.layers,
		       st.layers_skipped, size);
	}
	vsm_container_free(c);
	return rc;
}
