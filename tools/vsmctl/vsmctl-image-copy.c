/*
 * `vsmctl image copy|freeze|cid`: content IDs of local images and the
 * chain copy that reuses parents by them (<vsm/image.h>, public API only;
 * doc/chain-copy.md). Errors print "vsmctl: <message>" and exit 1.
 */
#include <stdio.h>
#include <string.h>

#include <vsm/vsm.h>
#include <vsm/image.h>

#include "vsmctl-util.h"
#include "vsmctl-image.h"

static int copy_usage(const char *why)
{
	fprintf(stderr, "vsmctl: %s\n"
		"usage: vsmctl image copy SRC DST [--reuse-parents DIR] [--json]\n"
		"       vsmctl image freeze PATH\n"
		"       vsmctl image cid PATH\n", why);
	return 1;
}

/* copy SRC DST [--reuse-parents DIR] */
static int cmd_copy(int argc, char **argv, int json)
{
	vsm_image_copy_opts o = VSM_IMAGE_COPY_OPTS_INIT;
	vsm_image_copy_stats st = VSM_IMAGE_COPY_STATS_INIT;
	const char *pos[2];
	int npos = 0, i;

	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--reuse-parents")) {
			if (i + 1 >= argc)
				return copy_usage("--reuse-parents needs a directory");
			o.reuse_dir = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1] == '-') {
			fprintf(stderr, "vsmctl: unknown option '%s'\n", argv[i]);
			return copy_usage("image copy takes --reuse-parents and --json");
		} else if (npos < 2) {
			pos[npos++] = argv[i];
		} else {
			return copy_usage("too many arguments");
		}
	}
	if (npos != 2)
		return copy_usage("image copy needs SRC and DST");
	o.progress = vsmctl_progress;
	o.payload = (void *)"copy";
	if (vsm_image_copy(pos[0], pos[1], &o, &st) < 0)
		return vsmctl_fail();
	if (json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "bytes-copied", json_object_new_uint64(st.bytes_copied));
		json_object_object_add(j, "layers-copied", json_object_new_int((int)st.layers_copied));
		json_object_object_add(j, "parents-reused", json_object_new_int((int)st.layers_reused));
		vsmctl_print_json(j);
	} else {
		char h[32];

		vsmctl_human(h, sizeof(h), st.bytes_copied);
		printf("copied %llu bytes (%s), %u layers copied, %u parents reused\n",
		       (unsigned long long)st.bytes_copied, h, st.layers_copied,
		       st.layers_reused);
	}
	return 0;
}

/* freeze PATH (read-write) or cid PATH (read-only): print the ID. */
static int cmd_cid(int argc, char **argv, int freeze)
{
	vsm_image_open_opts oo = VSM_IMAGE_OPEN_OPTS_INIT;
	char cid[VSM_IMAGE_CID_STRLEN + 1];
	vsm_image *img;

	if (argc != 3)
		return copy_usage(freeze ? "image freeze needs PATH" : "image cid needs PATH");
	oo.flags = freeze ? 0 : VSM_IMAGE_OPEN_RDONLY | VSM_IMAGE_OPEN_NO_BACKING;
	if (vsm_image_open(&img, argv[2], &oo) < 0)
		return vsmctl_fail();
	if ((freeze && vsm_image_freeze(img, 0) < 0) || vsm_image_cid_get(img, cid) < 0) {
		int rc = vsmctl_fail();

		vsm_image_close(img);
		return rc;
	}
	if (vsm_image_close(img) < 0)
		return vsmctl_fail();
	printf("%s\n", cid);
	return 0;
}

int vsmctl_image_copy_main(int argc, char **argv, int json)
{
	if (!strcmp(argv[1], "copy"))
		return cmd_copy(argc, argv, json);
	return cmd_cid(argc, argv, !strcmp(argv[1], "freeze"));
}
