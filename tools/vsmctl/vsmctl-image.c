/*
 * `vsmctl image ...`: create, inspect, read, write, map, check, commit,
 * flatten, convert and resize disk images through the public
 * <vsm/image.h> API only (copy, freeze and cid: vsmctl-image-copy.c), local files or images on a datastore
 * (see address_parse() for how an argument is told apart), and import and
 * export golden images. Errors print "vsmctl: <message>" and exit 1;
 * check exits 0 clean, 2 corrupt, 3 leaks only.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <vsm/vsm.h>
#include <vsm/image.h>

#include "vsmctl-util.h"
#include "vsmctl-image.h"

static const char usage_text[] =
	"usage: vsmctl image create PATH SIZE [--cluster-size N] [--backing PATH [--backing-format raw|qcow2]]\n"
	"       vsmctl image info IMAGE [--json]\n"
	"       vsmctl image write IMAGE OFFSET        (data from stdin)\n"
	"       vsmctl image read IMAGE OFFSET LENGTH  (data to stdout)\n"
	"       vsmctl image map IMAGE [--json]\n"
	"       vsmctl image check IMAGE [--repair]\n"
	"       vsmctl image commit PATH | flatten PATH | resize PATH SIZE\n"
	"       vsmctl image convert SRC DST --format raw|qcow2 [--bitmaps]\n"
	"       vsmctl image copy SRC DST [--reuse-parents DIR] [--json]\n"
	"       vsmctl image freeze PATH | cid PATH     (content IDs)\n"
	"       vsmctl image bitmap add|remove|clear|enable|disable IMAGE NAME [--granularity N]\n"
	"       vsmctl image bitmap list IMAGE [--json]\n"
	"       vsmctl image import DS NAME FILE [--format raw|qcow2]\n"
	"       vsmctl image export DS NAME FILE [--format raw|qcow2]\n"
	"IMAGE is a local path, DS/CONTAINER:DEVICE (a container's device) or DS:NAME\n"
	"(a golden image on datastore DS). An argument is a local path if it starts\n"
	"with '/' or '.', has no ':', or names an existing file; write ./a:b for a\n"
	"file named a:b. Images on a datastore open read-only, except for write\n"
	"and check --repair. create, convert and resize take local paths only.\n";

static int usage(const char *why)
{
	if (why)
		fprintf(stderr, "vsmctl: %s\n", why);
	fputs(usage_text, stderr);
	return 1;
}

/* Bytes, with an optional K/M/G/T/P suffix (powers of 1024). */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	case 'p': case 'P': shift = 50; break;
	default: return -1;
	}
	if (*end && end[1] && !(end[1] == 'i' && end[2] == 'B' && !end[3]) &&
	    !(end[1] == 'B' && !end[2]))
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* Positional arguments after the subcommand, with the flags taken out. */
struct args {
	const char *pos[4];
	int npos;
	int json, repair, bitmaps;
	const char *cluster_size, *backing, *backing_format, *format, *granularity;
};

static int parse_args(struct args *a, int argc, char **argv)
{
	int i;

	for (i = 2; i < argc; i++) {
		const char *s = argv[i];
		const char **val = NULL;

		if (!strcmp(s, "--json"))
			a->json = 1;
		else if (!strcmp(s, "--repair"))
			a->repair = 1;
		else if (!strcmp(s, "--bitmaps"))
			a->bitmaps = 1;
		else if (!strcmp(s, "--granularity"))
			val = &a->granularity;
		else if (!strcmp(s, "--cluster-size"))
			val = &a->cluster_size;
		else if (!strcmp(s, "--backing"))
			val = &a->backing;
		else if (!strcmp(s, "--backing-format"))
			val = &a->backing_format;
		else if (!strcmp(s, "--format"))
			val = &a->format;
		else if (s[0] == '-' && s[1] == '-') {
			fprintf(stderr, "vsmctl: unknown option '%s'\n", s);
			return -1;
		} else if (a->npos < 4)
			a->pos[a->npos++] = s;
		else {
			fprintf(stderr, "vsmctl: too many arguments\n");
			return -1;
		}
		if (val) {
			if (i + 1 >= argc) {
				fprintf(stderr, "vsmctl: %s needs a value\n", s);
				return -1;
			}
			*val = argv[++i];
		}
	}
	return 0;
}

/* The context for images on a datastore, opened on first use. */
static const vsm_ctx_opts *g_ctx_opts;
static vsm_ctx *g_ctx;

static int get_ctx(vsm_ctx **out)
{
	if (!g_ctx && vsm_ctx_open(&g_ctx, g_ctx_opts) < 0)
		return -1;
	*out = g_ctx;
	return 0;
}

/* An image argument, split. */
struct address {
	int local;               /* a path; the fields below are unused */
	char ds[256], container[256], device[256];  /* device empty: a golden image */
};

static int bad_address(const char *arg, const char *why)
{
	fprintf(stderr, "vsmctl: bad image address '%s': %s (want DS/CONTAINER:DEVICE, "
		"DS:NAME or a local path)\n", arg, why);
	return -1;
}

static int part_check(const char *arg, const char *what, const char *p, size_t n)
{
	char msg[128];

	if (n == 0) {
		snprintf(msg, sizeof(msg), "the %s is empty", what);
		return bad_address(arg, msg);
	}
	if (n >= 256) {
		snprintf(msg, sizeof(msg), "the %s is too long", what);
		return bad_address(arg, msg);
	}
	if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
		snprintf(msg, sizeof(msg), "the %s may not be '.' or '..'", what);
		return bad_address(arg, msg);
	}
	if (memchr(p, '/', n) || memchr(p, ':', n)) {
		snprintf(msg, sizeof(msg), "the %s may not hold '/' or ':'", what);
		return bad_address(arg, msg);
	}
	return 0;
}

/*
 * The rule: an argument that starts with '/' or '.', holds no ':', or
 * names an existing file is a local path (so every use from before
 * datastore addresses stays valid). Otherwise the part before the first
 * ':' is DS or DS/CONTAINER and the rest is the golden image's NAME or
 * the DEVICE.
 */
static int address_parse(struct address *a, const char *arg)
{
	const char *colon = strchr(arg, ':'), *slash;
	struct stat st;

	memset(a, 0, sizeof(*a));
	if (arg[0] == '/' || arg[0] == '.' || !colon || lstat(arg, &st) == 0) {
		a->local = 1;
		return 0;
	}
	slash = memchr(arg, '/', (size_t)(colon - arg));
	if (slash) {
		if (part_check(arg, "datastore", arg, (size_t)(slash - arg)) < 0 ||
		    part_check(arg, "container", slash + 1, (size_t)(colon - slash - 1)) < 0 ||
		    part_check(arg, "device", colon + 1, strlen(colon + 1)) < 0)
			return -1;
		memcpy(a->ds, arg, (size_t)(slash - arg));
		memcpy(a->container, slash + 1, (size_t)(colon - slash - 1));
		strcpy(a->device, colon + 1);
	} else {
		if (part_check(arg, "datastore", arg, (size_t)(colon - arg)) < 0 ||
		    part_check(arg, "image name", colon + 1, strlen(colon + 1)) < 0)
			return -1;
		memcpy(a->ds, arg, (size_t)(colon - arg));
		strcpy(a->container, colon + 1);
	}
	return 0;
}

/* Open a local path, a container's device or a golden image; returns 0,
 * or -1 with the message printed (by vsmctl_fail() when the library said it).
 * @repair lets a dirty lazy-refcounts image open read-write (check
 * --repair repairs it). */
static int open_image(vsm_image **img, const char *arg, int rdonly, int repair)
{
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	unsigned int extra = repair ? VSM_IMAGE_OPEN_REPAIR : 0;
	struct address a;
	vsm_ctx *ctx;

	if (address_parse(&a, arg) < 0)
		return -2;
	if (a.local) {
		o.flags = (rdonly ? VSM_IMAGE_OPEN_RDONLY : 0) | extra;
		return vsm_image_open(img, arg, &o);
	}
	o.flags = (rdonly ? VSM_IMAGE_OPEN_RDONLY : VSM_IMAGE_OPEN_RDWR) | extra;
	if (get_ctx(&ctx) < 0)
		return -1;
	if (a.device[0])
		return vsm_image_open_device(img, ctx, a.ds, a.container, a.device, &o);
	return vsm_image_open_golden(img, ctx, a.ds, a.container, &o);
}

/* vsmctl_fail() for open_image(): its own message was printed already. */
static int open_fail(int rc)
{
	return rc == -2 ? 1 : vsmctl_fail();
}

static int cmd_create(struct args *a)
{
	vsm_image_create_opts co = VSM_IMAGE_CREATE_OPTS_INIT;
	uint64_t v;

	if (a->npos != 2 && !(a->npos == 1 && a->backing))
		return usage("image create needs PATH and SIZE");
	if (a->npos == 2 && parse_size(a->pos[1], &co.size) < 0)
		return usage("SIZE is not a size");
	if (a->cluster_size) {
		if (parse_size(a->cluster_size, &v) < 0 || v > UINT32_MAX)
			return usage("--cluster-size is not a size");
		co.cluster_size = (uint32_t)v;
	}
	if (a->backing_format && !a->backing)
		return usage("--backing-format needs --backing");
	co.backing = a->backing;
	co.backing_format = a->backing_format;
	if (vsm_image_create(a->pos[0], &co, 0) < 0)
		return vsmctl_fail();
	return 0;
}

static int cmd_info(struct args *a)
{
	json_object *arr = NULL;
	vsm_image_info *inf;
	vsm_image *img;
	unsigned int d;
	int rc = 0;

	if (a->npos != 1)
		return usage("image info needs PATH");
	if ((rc = open_image(&img, a->pos[0], 1, 0)) < 0)
		return open_fail(rc);
	if (a->json)
		arr = json_object_new_array();
	for (d = 0; ; d++) {
		const char *fmt;

		rc = vsm_image_info_get(&inf, img, d);
		if (rc == -VSM_ENOTFOUND) {
			rc = 0;
			break;
		}
		if (rc < 0) {
			rc = vsmctl_fail();
			break;
		}
		fmt = inf->format == VSM_IMAGE_FORMAT_QCOW2 ? "qcow2" : "raw";
		if (arr) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "filename", json_object_new_string(inf->filename));
			json_object_object_add(o, "format", json_object_new_string(fmt));
			json_object_object_add(o, "depth", json_object_new_int((int)d));
			json_object_object_add(o, "virtual-size", json_object_new_uint64(inf->virtual_size));
			if (inf->cluster_size)
				json_object_object_add(o, "cluster-size",
						       json_object_new_uint64(inf->cluster_size));
			if (inf->qcow2_version) {
				json_object_object_add(o, "qcow2-version",
						       json_object_new_int((int)inf->qcow2_version));
				json_object_object_add(o, "refcount-bits",
						       json_object_new_int((int)inf->refcount_bits));
				json_object_object_add(o, "snapshots",
						       json_object_new_int((int)inf->snapshots));
				json_object_object_add(o, "dirty", json_object_new_boolean(inf->dirty));
				json_object_object_add(o, "corrupt", json_object_new_boolean(inf->corrupt));
			}
			json_object_object_add(o, "file-size", json_object_new_uint64(inf->file_size));
			json_object_object_add(o, "allocated-bytes",
					       json_object_new_uint64(inf->allocated_bytes));
			if (inf->backing)
				json_object_object_add(o, "backing-filename",
						       json_object_new_string(inf->backing));
			if (inf->backing_format)
				json_object_object_add(o, "backing-format",
						       json_object_new_string(inf->backing_format));
			json_object_array_add(arr, o);
		} else {
			if (d)
				printf("\n");
			printf("image: %s\n", inf->filename);
			printf("depth: %u\n", d);
			printf("format: %s\n", fmt);
			printf("virtual size: %" PRIu64 "\n", inf->virtual_size);
			if (inf->cluster_size)
				printf("cluster size: %u\n", inf->cluster_size);
			if (inf->qcow2_version)
				printf("qcow2 version: %u\nrefcount bits: %u\nsnapshots: %u\n"
				       "dirty: %s\ncorrupt: %s\n", inf->qcow2_version,
				       inf->refcount_bits, inf->snapshots,
				       inf->dirty ? "yes" : "no", inf->corrupt ? "yes" : "no");
			printf("file size: %" PRIu64 "\n", inf->file_size);
			printf("allocated bytes: %" PRIu64 "\n", inf->allocated_bytes);
			if (inf->backing)
				printf("backing file: %s\n", inf->backing);
			if (inf->backing_format)
				printf("backing format: %s\n", inf->backing_format);
		}
		vsm_image_info_free(inf);
	}
	if (arr) {
		if (rc == 0)
			vsmctl_print_json(arr);
		else
			json_object_put(arr);
	}
	vsm_image_close(img);
	return rc;
}

static int cmd_write(struct args *a)
{
	uint64_t off;
	size_t cap = 1 << 20, len = 0;
	char *buf = NULL, *nb;
	vsm_image *img;
	int rc = 0;

	if (a->npos != 2 || parse_size(a->pos[1], &off) < 0)
		return usage("image write needs PATH and OFFSET");
	buf = malloc(cap);
	if (!buf)
		return usage("out of memory");
	for (;;) {
		size_t n;

		if (len == cap) {
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				fprintf(stderr, "vsmctl: out of memory\n");
				return 1;
			}
			buf = nb;
			cap *= 2;
		}
		n = fread(buf + len, 1, cap - len, stdin);
		if (n == 0)
			break;
		len += n;
	}
	if (ferror(stdin)) {
		free(buf);
		fprintf(stderr, "vsmctl: cannot read standard input\n");
		return 1;
	}
	if ((rc = open_image(&img, a->pos[0], 0, 0)) < 0) {
		free(buf);
		return open_fail(rc);
	}
	if (vsm_image_write(img, buf, len, off, 0) < 0 || vsm_image_flush(img) < 0)
		rc = vsmctl_fail();
	free(buf);
	if (vsm_image_close(img) < 0 && rc == 0)
		rc = vsmctl_fail();
	return rc;
}

static int cmd_read(struct args *a)
{
	uint64_t off, len;
	vsm_image *img;
	char *buf;
	int rc = 0;

	if (a->npos != 3 || parse_size(a->pos[1], &off) < 0 || parse_size(a->pos[2], &len) < 0)
		return usage("image read needs PATH, OFFSET and LENGTH");
	if ((rc = open_image(&img, a->pos[0], 1, 0)) < 0)
		return open_fail(rc);
	buf = malloc(1 << 20);
	while (rc == 0 && len && buf) {
		size_t n = len < (1u << 20) ? (size_t)len : (1u << 20);

		if (vsm_image_read(img, buf, n, off) < 0) {
			rc = vsmctl_fail();
			break;
		}
		if (fwrite(buf, 1, n, stdout) != n) {
			fprintf(stderr, "vsmctl: cannot write standard output\n");
			rc = 1;
		}
		off += n;
		len -= n;
	}
	if (!buf)
		rc = usage("out of memory");
	free(buf);
	vsm_image_close(img);
	return rc;
}

static int cmd_map(struct args *a)
{
	vsm_image_extent *map;
	vsm_image *img;
	size_t n, i;
	int rc;

	if (a->npos != 1)
		return usage("image map needs PATH");
	if ((rc = open_image(&img, a->pos[0], 1, 0)) < 0)
		return open_fail(rc);
	if (vsm_image_map(&map, &n, img) < 0) {
		rc = vsmctl_fail();

		vsm_image_close(img);
		return rc;
	}
	if (a->json) {
		json_object *arr = json_object_new_array();

		for (i = 0; i < n; i++) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "start", json_object_new_uint64(map[i].start));
			json_object_object_add(o, "length", json_object_new_uint64(map[i].length));
			json_object_object_add(o, "depth", json_object_new_int((int)map[i].depth));
			json_object_object_add(o, "present", json_object_new_boolean(map[i].present));
			json_object_object_add(o, "zero", json_object_new_boolean(map[i].zero));
			json_object_object_add(o, "data", json_object_new_boolean(map[i].data));
			if (map[i].compressed)
				json_object_object_add(o, "compressed", json_object_new_boolean(1));
			if (map[i].offset != UINT64_MAX)
				json_object_object_add(o, "offset", json_object_new_uint64(map[i].offset));
			json_object_array_add(arr, o);
		}
		vsmctl_print_json(arr);
	} else {
		printf("%-20s %-20s %-5s %s\n", "start", "length", "depth", "kind");
		for (i = 0; i < n; i++)
			printf("%-20" PRIu64 " %-20" PRIu64 " %-5u %s\n", map[i].start, map[i].length,
			       map[i].depth, map[i].data ? (map[i].compressed ? "compressed" : "data") :
			       map[i].present ? "zero" : "unallocated");
	}
	vsm_image_extent_list_free(map);
	vsm_image_close(img);
	return 0;
}

static int cmd_check(struct args *a)
{
	vsm_image_check_result r = VSM_IMAGE_CHECK_RESULT_INIT;
	vsm_image *img;
	uint64_t corrupt, leaks;
	int rc;

	if (a->npos != 1)
		return usage("image check needs PATH");
	rc = open_image(&img, a->pos[0], !a->repair, a->repair);
	if (rc < 0) {
		open_fail(rc);
		return rc == -VSM_ECORRUPT ? 2 : 1;
	}
	rc = vsm_image_check(&r, img, a->repair ? VSM_IMAGE_CHECK_REPAIR : 0);
	if (rc < 0) {
		vsmctl_fail();
		vsm_image_close(img);
		return rc == -VSM_ECORRUPT ? 2 : 1;
	}
	if (vsm_image_close(img) < 0)
		return vsmctl_fail();
	corrupt = r.corruptions - r.corruptions_fixed;
	leaks = r.leaks - r.leaks_fixed;
	if (a->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "filename", json_object_new_string(a->pos[0]));
		json_object_object_add(o, "corruptions", json_object_new_uint64(r.corruptions));
		json_object_object_add(o, "leaks", json_object_new_uint64(r.leaks));
		json_object_object_add(o, "corruptions-fixed", json_object_new_uint64(r.corruptions_fixed));
		json_object_object_add(o, "leaks-fixed", json_object_new_uint64(r.leaks_fixed));
		json_object_object_add(o, "allocated-clusters", json_object_new_uint64(r.allocated_clusters));
		json_object_object_add(o, "image-end-offset", json_object_new_uint64(r.image_end));
		vsmctl_print_json(o);
	} else {
		if (r.corruptions_fixed || r.leaks_fixed)
			printf("repaired: %" PRIu64 " corruptions, %" PRIu64 " leaked clusters\n",
			       r.corruptions_fixed, r.leaks_fixed);
		if (corrupt)
			printf("%" PRIu64 " errors were found on the image\n", corrupt);
		if (leaks)
			printf("%" PRIu64 " leaked clusters were found on the image\n", leaks);
		if (!corrupt && !leaks)
			printf("no errors were found on the image\n");
		printf("allocated clusters: %" PRIu64 "\nimage end offset: %" PRIu64 "\n",
		       r.allocated_clusters, r.image_end);
	}
	return corrupt ? 2 : leaks ? 3 : 0;
}

static int cmd_simple(struct args *a, const char *what)
{
	vsm_image *img;
	uint64_t size = 0;
	int rc = 0;

	if (!strcmp(what, "resize")) {
		if (a->npos != 2 || parse_size(a->pos[1], &size) < 0)
			return usage("image resize needs PATH and SIZE");
	} else if (a->npos != 1) {
		return usage("this command needs PATH");
	}
	if ((rc = open_image(&img, a->pos[0], 0, 0)) < 0)
		return open_fail(rc);
	if (!strcmp(what, "commit"))
		rc = vsm_image_commit(img, 0);
	else if (!strcmp(what, "flatten"))
		rc = vsm_image_flatten(img, 0);
	else
		rc = vsm_image_resize(img, size, 0);
	if (rc < 0) {
		rc = vsmctl_fail();
		vsm_image_close(img);
		return rc;
	}
	if (vsm_image_close(img) < 0)
		return vsmctl_fail();
	return 0;
}

/* import DS NAME FILE / export DS NAME FILE */
static int cmd_golden(struct args *a, int import)
{
	vsm_image_convert_opts o = VSM_IMAGE_CONVERT_OPTS_INIT;
	vsm_ctx *ctx;
	int rc;

	if (a->npos != 3)
		return usage(import ? "image import needs DS, NAME and FILE" :
			     "image export needs DS, NAME and FILE");
	if (!a->pos[0][0] || !a->pos[1][0] || !a->pos[2][0])
		return usage("DS, NAME and FILE may not be empty");
	o.format = a->format; /* NULL: keep the source's */
	if (get_ctx(&ctx) < 0)
		return vsmctl_fail();
	rc = import ? vsm_image_import(ctx, a->pos[0], a->pos[1], a->pos[2], &o, 0) :
		      vsm_image_export(ctx, a->pos[0], a->pos[1], a->pos[2], &o, 0);
	return rc < 0 ? vsmctl_fail() : 0;
}

static int cmd_convert(struct args *a)
{
	vsm_image_convert_opts o = VSM_IMAGE_CONVERT_OPTS_INIT;

	if (a->npos != 2 || !a->format)
		return usage("image convert needs SRC, DST and --format raw|qcow2");
	o.format = a->format;
	if (a->bitmaps)
		o.flags |= VSM_IMAGE_CONVERT_BITMAPS;
	if (vsm_image_convert(a->pos[0], a->pos[1], &o) < 0)
		return vsmctl_fail();
	return 0;
}

static int bitmap_list(vsm_image *img, int json)
{
	vsm_image_bitmap_info *l = NULL;
	json_object *arr;
	size_t n = 0, i;

	if (vsm_image_bitmap_list(&l, &n, img) < 0)
		return vsmctl_fail();
	if (json) {
		arr = json_object_new_array();
		for (i = 0; i < n; i++) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "name", json_object_new_string(l[i].name));
			json_object_object_add(o, "granularity",
					       json_object_new_uint64(l[i].granularity));
			json_object_object_add(o, "enabled", json_object_new_boolean(l[i].enabled));
			json_object_object_add(o, "in-use", json_object_new_boolean(l[i].in_use));
			json_object_array_add(arr, o);
		}
		vsmctl_print_json(arr);
	} else {
		for (i = 0; i < n; i++)
			printf("%s granularity=%u %s%s\n", l[i].name, l[i].granularity,
			       l[i].enabled ? "enabled" : "disabled",
			       l[i].in_use ? " in-use" : "");
	}
	vsm_image_bitmap_list_free(l, n);
	return 0;
}

/* bitmap add|remove|clear|enable|disable IMAGE NAME, bitmap list IMAGE */
static int cmd_bitmap(struct args *a)
{
	vsm_image_bitmap_opts bo = VSM_IMAGE_BITMAP_OPTS_INIT;
	const char *sub = a->npos ? a->pos[0] : "";
	int list = !strcmp(sub, "list"), rc;
	vsm_image *img;
	uint64_t g;

	if (!list && strcmp(sub, "add") && strcmp(sub, "remove") && strcmp(sub, "clear") &&
	    strcmp(sub, "enable") && strcmp(sub, "disable"))
		return usage("image bitmap needs add, remove, clear, enable, disable or list");
	if (a->npos != (list ? 2 : 3))
		return usage(list ? "image bitmap list needs IMAGE" :
			     "image bitmap needs IMAGE and NAME");
	if (a->granularity) {
		if (strcmp(sub, "add"))
			return usage("--granularity goes with image bitmap add");
		if (parse_size(a->granularity, &g) < 0 || g > UINT32_MAX)
			return usage("bad --granularity");
		bo.granularity = (uint32_t)g;
	}
	if ((rc = open_image(&img, a->pos[1], list, 0)) < 0)
		return open_fail(rc);
	if (list)
		rc = bitmap_list(img, a->json);
	else if (!strcmp(sub, "add"))
		rc = vsm_image_bitmap_add(img, a->pos[2], &bo, 0);
	else if (!strcmp(sub, "remove"))
		rc = vsm_image_bitmap_remove(img, a->pos[2], 0);
	else if (!strcmp(sub, "clear"))
		rc = vsm_image_bitmap_clear(img, a->pos[2], 0);
	else
		rc = vsm_image_bitmap_enable(img, a->pos[2], !strcmp(sub, "enable"), 0);
	if (rc < 0) {
		rc = list ? rc : vsmctl_fail();
		vsm_image_close(img);
		return list ? 1 : rc;
	}
	if (vsm_image_close(img) < 0)
		return vsmctl_fail();
	return 0;
}

static int image_main(int argc, char **argv, int json);

int vsmctl_image_main(int argc, char **argv, int json, const vsm_ctx_opts *ctx_opts)
{
	int rc;

	g_ctx_opts = ctx_opts;
	rc = image_main(argc, argv, json);
	vsm_ctx_free(g_ctx);
	g_ctx = NULL;
	return rc;
}

static int image_main(int argc, char **argv, int json)
{
	struct args a;
	const char *cmd;

	memset(&a, 0, sizeof(a));
	if (argc < 2)
		return usage(NULL);
	cmd = argv[1];
	if (!strcmp(cmd, "copy") || !strcmp(cmd, "freeze") || !strcmp(cmd, "cid"))
		return vsmctl_image_copy_main(argc, argv, json);
	if (parse_args(&a, argc, argv) < 0)
		return usage(NULL);
	a.json |= json;
	if (!strcmp(cmd, "create"))
		return cmd_create(&a);
	if (!strcmp(cmd, "info"))
		return cmd_info(&a);
	if (!strcmp(cmd, "write"))
		return cmd_write(&a);
	if (!strcmp(cmd, "read"))
		return cmd_read(&a);
	if (!strcmp(cmd, "map"))
		return cmd_map(&a);
	if (!strcmp(cmd, "check"))
		return cmd_check(&a);
	if (!strcmp(cmd, "commit") || !strcmp(cmd, "flatten") || !strcmp(cmd, "resize"))
		return cmd_simple(&a, cmd);
	if (!strcmp(cmd, "convert"))
		return cmd_convert(&a);
	if (!strcmp(cmd, "bitmap"))
		return cmd_bitmap(&a);
	if (!strcmp(cmd, "import") || !strcmp(cmd, "export"))
		return cmd_golden(&a, !strcmp(cmd, "import"));
	fprintf(stderr, "vsmctl: unknown image command '%s'\n", cmd);
	return usage(NULL);
}
