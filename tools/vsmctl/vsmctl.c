/*
 * vsmctl - command-line client of libvsm. It uses only the public API:
 * anything it can do, a management tool linking libvsm can do too.
 *
 * The command set and output are a contract scripts rely on: exit status
 * 0 on success; otherwise non-zero with "vsmctl: <library message>" on
 * stderr. `datastore check` also exits 1 when orphans remain (listed on
 * stdout, nothing on stderr).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vsm/vsm.h>

#include "vsmctl-args.h"
#include "vsmctl-util.h"
#ifdef VSMCTL_HAVE_IMAGE
#include "vsmctl-image.h"
#endif
#ifdef VSMCTL_HAVE_CHECKPOINT
#include "vsmctl-backup.h"
#include "vsmctl-checkpoint.h"
#endif
#include "vsmctl-place.h"
#include "vsmctl-group.h"
#include "vsmctl-recovery.h"
#include "vsmctl-device.h"
#include "vsmctl-handover.h"
#include "vsmctl-host.h"
#include "vsmctl-migrate.h"
#include "vsmctl-send.h"
#include "vsmctl-workflow.h"

static int json_out;

static const char usage[] =
	"usage: vsmctl [--state DIR] [--json] COMMAND ...\n"
	"  datastore add NAME URI [--create] | datastore list | datastore show NAME\n"
	"  datastore remove NAME [--force]\n"
	"  datastore check NAME [--repair] [--grace SEC] [--json]\n"
	"                   orphans: devices nothing references (grace 3600 s; removed\n"
	"                   only with --repair); exits 0 if none remain, 1 if some do\n"
	"  host add NAME [--hypervisor URI] | host link HOST DATASTORE\n"
	"  host unlink HOST DATASTORE | host list | host show NAME | host remove NAME\n"
	"  host tag HOST TAG[=VALUE] | host untag HOST TAG\n"
	"  host limit HOST --max-containers N   (0: no limit)\n"
	"  container create NAME --datastore DS|auto --disk DEV:SIZE[:FORMAT] [--disk ...]\n"
	"                   [--base DEV=IMAGE] [--state-size SIZE] [--thin]\n"
	"                   (auto: placement chooses the datastore and reserves there)\n"
	"  place --disk DEV:SIZE[:FORMAT] [--disk ...] [--base DEV=IMAGE] [--thin]\n"
	"                   [--host-tag TAG] [--json]   the datastore, then the host\n"
	"  container list [--datastore DS] | container show NAME [--json]\n"
	"                   (a datastore whose backend is not loaded is named, and\n"
	"                   the exit status is 1)\n"
	"  container destroy NAME [--force]\n"
	"  attach CONTAINER HOST|auto [--takeover] | detach CONTAINER [--force]\n"
	"                   (auto: the best host by placement phase 2)\n"
	"  deploy CONTAINER DEVICE [--domain NAME] [--target DEV] [--bus BUS]\n"
	"  undeploy CONTAINER DEVICE\n"
	"  device add CONTAINER NAME:SIZE[:FORMAT] [--thin] | device remove CONTAINER NAME\n"
	"  device resize CONTAINER NAME SIZE   (grow only; the device undeployed)\n"
	"  lease status DATASTORE [--json]\n"
	"  agent [--host HOST ...]   keep heartbeats alive, print events as JSON lines\n"
	"  demo [DIR]\n"
#ifdef VSMCTL_HAVE_IMAGE
	"  image create|info|write|read|map|check|commit|flatten|convert|resize ...\n"
	"  image import|export DS NAME FILE   (IMAGE: PATH, DS/CONTAINER:DEVICE or DS:NAME)\n"
#endif
#ifdef VSMCTL_HAVE_CHECKPOINT
	"  checkpoint create|list|revert|delete CONTAINER [NAME] [--state-file F] [--stopped]\n"
	"  container clone SRC NEW --checkpoint NAME [--full | --datastore DS]\n"
	"  group create GROUP CONTAINER... | group add|remove GROUP CONTAINER | group list\n"
	"  group show GROUP [--json] | group checkpoint GROUP NAME [--timeout SEC]\n"
	"  group revert GROUP NAME | group delete-checkpoint GROUP NAME\n"
	"  group clone GROUP CHECKPOINT NEW | group destroy GROUP\n"
	"  group plan GROUP --boot CONTAINER:PRIORITY[:AFTER=C2] ...\n"
	"             [--net CONTAINER:MAC,NETWORK[,IP/PREFIX,GW,DNS]]\n"
	"  group backup GROUP DIR [--incremental-from NAME]\n"
	"  group recover DIR --datastore DS [--host HOST] [--start]\n"
	"  export CONTAINER FILE [--checkpoint NAME] | import FILE --datastore DS [--name NEW]\n"
	"  migrate CONTAINER --datastore DS [--live [--downtime-ms N] [--deadline SEC]\n"
	"          [--on-no-converge sync|abort]] [--json]   move a container\n"
	"  migrate CONTAINER --host HOST [--begin-only] [--json]   host migration\n"
	"  handover begin|accept CONTAINER HOST | handover complete|cancel|status CONTAINER\n"
	"  send CONTAINER [--to CMD] | receive --datastore DS   cross-site transfer\n"
	"  changes CONTAINER DEVICE --since CHECKPOINT [--until CHECKPOINT]\n"
	"  backup CONTAINER FILE [--incremental-from CHECKPOINT] [--checkpoint NAME] [--stopped]\n"
	"  restore FILE [FILE...] --datastore DS [--name NEW]\n"
#endif
	"  workflow validate FILE | workflow run FILE [--param KEY=VALUE ...] [--json]\n"
	"                   (prints the run ID, each step, the outcome; exit 0 only when\n"
	"                   the run is done; Ctrl-C cancels it and rolls it back)\n"
	"  workflow list [--json] | workflow show RUN-ID | workflow cancel RUN-ID\n"
	"  version\n"
	"CONTAINER may be written DATASTORE/NAME when the name exists on several.\n"
	"DIR defaults to $VSM_STATE_DIR, else ~/.local/state/vsm.\n";

static int usage_error(const char *fmt, const char *arg)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, arg);
	return vsmctl_usage_fail(msg, usage);
}

/* Sizes: an integer with an optional K/M/G/T/P suffix (powers of 1024). */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	if (!s || !*s || *s == '-')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case '\0': break;
	case 'K': case 'k': shift = 10; break;
	case 'M': case 'm': shift = 20; break;
	case 'G': case 'g': shift = 30; break;
	case 'T': case 't': shift = 40; break;
	case 'P': case 'p': shift = 50; break;
	default: return -1;
	}
	if (*end && end[1] != '\0' && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : json_object_new_null();
}

/* --- datastores --- */

static json_object *datastore_json(vsm_ctx *ctx, const vsm_datastore *ds)
{
	json_object *o = json_object_new_object();
	uint64_t total = 0, free_bytes = 0;

	json_object_object_add(o, "name", jstr(vsm_datastore_name(ds)));
	json_object_object_add(o, "uri", jstr(vsm_datastore_uri(ds)));
	json_object_object_add(o, "uuid", jstr(vsm_datastore_uuid(ds)));
	if (vsm_datastore_capacity(ctx, vsm_datastore_name(ds), &total, &free_bytes) == 0) {
		json_object_object_add(o, "capacity", json_object_new_uint64(total));
		json_object_object_add(o, "free", json_object_new_uint64(free_bytes));
	}
	return o;
}

/* `datastore check NAME [--repair] [--grace SEC] [--json]`: 0 when no
 * orphan is left on the datastore, 1 when some are (as for an error). */
static int cmd_datastore_check(vsm_ctx *ctx, int argc, char **argv)
{
	vsm_check_opts opts = VSM_CHECK_OPTS_INIT;
	vsm_check_report *rep = NULL;
	bool as_json = json_out;
	size_t i, n, remaining;
	int a;

	for (a = 3; a < argc; a++) {
		if (!strcmp(argv[a], "--repair")) {
			opts.flags |= VSM_CHECK_REPAIR;
		} else if (!strcmp(argv[a], "--json")) {
			as_json = true;
		} else if (!strcmp(argv[a], "--grace") && a + 1 < argc) {
			char *end;

			errno = 0;
			if (argv[a + 1][0] < '0' || argv[a + 1][0] > '9')
				return usage_error("bad --grace '%s' (want seconds)", argv[a + 1]);
			opts.grace_seconds = strtoull(argv[++a], &end, 10);
			if (errno || *end)
				return usage_error("bad --grace '%s' (want seconds)", argv[a]);
		} else {
			return usage_error("unknown option '%s'", argv[a]);
		}
	}
	if (vsm_datastore_check(&rep, ctx, argv[2], &opts) < 0)
		return vsmctl_fail();
	n = vsm_check_report_orphan_count(rep);
	remaining = vsm_check_report_remaining(rep);
	if (as_json) {
		json_object *o = json_object_new_object(), *arr = json_object_new_array();

		json_object_object_add(o, "datastore", jstr(vsm_check_report_datastore(rep)));
		json_object_object_add(o, "devices",
				       json_object_new_uint64(vsm_check_report_devices(rep)));
		json_object_object_add(o, "referenced",
				       json_object_new_uint64(vsm_check_report_referenced(rep)));
		json_object_object_add(o, "foreign",
				       json_object_new_uint64(vsm_check_report_foreign(rep)));
		json_object_object_add(o, "remaining", json_object_new_uint64(remaining));
		for (i = 0; i < n; i++) {
			const vsm_orphan *orph = vsm_check_report_orphan(rep, i);
			json_object *j = json_object_new_object();

			json_object_object_add(j, "key", jstr(vsm_orphan_key(orph)));
			json_object_object_add(j, "size", json_object_new_uint64(vsm_orphan_size(orph)));
			json_object_object_add(j, "age", vsm_orphan_age(orph) < 0 ?
					       json_object_new_null() :
					       json_object_new_int64(vsm_orphan_age(orph)));
			json_object_object_add(j, "state",
					       jstr(vsm_orphan_state_name(vsm_orphan_state_of(orph))));
			json_object_object_add(j, "reason", jstr(vsm_orphan_reason(orph)));
			json_object_array_add(arr, j);
		}
		json_object_object_add(o, "orphans", arr);
		vsmctl_print_json(o);
	} else {
		printf("datastore '%s': %zu devices, %zu referenced, %zu not made by libvsm, "
		       "%zu orphans\n", vsm_check_report_datastore(rep),
		       vsm_check_report_devices(rep), vsm_check_report_referenced(rep),
		       vsm_check_report_foreign(rep), n);
		if (n)
			printf("%-52s %12s %8s %-10s %s\n", "KEY", "SIZE", "AGE", "STATE", "REASON");
		for (i = 0; i < n; i++) {
			const vsm_orphan *orph = vsm_check_report_orphan(rep, i);
			char age[32] = "?";

			if (vsm_orphan_age(orph) >= 0)
				snprintf(age, sizeof(age), "%" PRId64 "s", vsm_orphan_age(orph));
			printf("%-52s %12" PRIu64 " %8s %-10s %s\n", vsm_orphan_key(orph),
			       vsm_orphan_size(orph), age,
			       vsm_orphan_state_name(vsm_orphan_state_of(orph)),
			       vsm_orphan_reason(orph));
		}
		if (remaining)
			printf("%zu orphans remain\n", remaining);
	}
	vsm_check_report_free(rep);
	return remaining ? 1 : 0;
}

static int cmd_datastore(vsm_ctx *ctx, int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "check"))
		return cmd_datastore_check(ctx, argc, argv);
	if (argc >= 4 && !strcmp(argv[1], "add")) {
		unsigned int flags = 0;
		int a;

		for (a = 4; a < argc; a++) {
			if (!strcmp(argv[a], "--create"))
				flags |= VSM_DATASTORE_ADD_CREATE;
			else
				return usage_error("unknown option '%s'", argv[a]);
		}
		if (vsm_datastore_add(ctx, argv[2], argv[3], flags) < 0)
			return vsmctl_fail();
		if (json_out) {
			vsm_datastore *ds;

			if (vsm_datastore_lookup(&ds, ctx, argv[2]) < 0)
				return vsmctl_fail();
			vsmctl_print_json(datastore_json(ctx, ds));
			vsm_datastore_free(ds);
		} else {
			printf("datastore '%s' added\n", argv[2]);
		}
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "remove")) {
		unsigned int flags = argc >= 4 && !strcmp(argv[3], "--force") ?
				     VSM_DATASTORE_REMOVE_FORCE : 0;

		if (vsm_datastore_remove(ctx, argv[2], flags) < 0)
			return vsmctl_fail();
		if (!json_out)
			printf("datastore '%s' removed\n", argv[2]);
		else
			vsmctl_print_json(json_object_new_object());
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "list")) {
		vsm_datastore **list;
		size_t n, i;
		json_object *arr = json_object_new_array();

		if (vsm_datastore_list(&list, &n, ctx) < 0) {
			json_object_put(arr);
			return vsmctl_fail();
		}
		for (i = 0; i < n; i++) {
			if (json_out)
				json_object_array_add(arr, datastore_json(ctx, list[i]));
			else
				printf("%-20s %s\n", vsm_datastore_name(list[i]),
				       vsm_datastore_uri(list[i]));
		}
		if (json_out)
			vsmctl_print_json(arr);
		else
			json_object_put(arr);
		vsm_datastore_list_free(list, n);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "show")) {
		vsm_datastore *ds;
		json_object *o;

		if (vsm_datastore_lookup(&ds, ctx, argv[2]) < 0)
			return vsmctl_fail();
		o = datastore_json(ctx, ds);
		if (json_out) {
			vsmctl_print_json(o);
		} else {
			json_object *v;

			printf("name:     %s\nuri:      %s\nuuid:     %s\n", vsm_datastore_name(ds),
			       vsm_datastore_uri(ds), vsm_datastore_uuid(ds));
			if (json_object_object_get_ex(o, "capacity", &v))
				printf("capacity: %" PRIu64 "\n", json_object_get_uint64(v));
			if (json_object_object_get_ex(o, "free", &v))
				printf("free:     %" PRIu64 "\n", json_object_get_uint64(v));
			json_object_put(o);
		}
		vsm_datastore_free(ds);
		return 0;
	}
	return usage_error("unknown datastore command%s", "");
}

/* --- hosts --- */

static json_object *host_json(const vsm_host *h)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	size_t i;

	json_object_object_add(o, "name", jstr(vsm_host_name(h)));
	json_object_object_add(o, "hypervisor_uri", jstr(vsm_host_hypervisor_uri(h)));
	for (i = 0; i < vsm_host_datastore_count(h); i++)
		json_object_array_add(arr, jstr(vsm_host_datastore(h, i)));
	json_object_object_add(o, "datastores", arr);
	vsmctl_host_json_add(o, h);
	return o;
}

static int cmd_host(vsm_ctx *ctx, int argc, char **argv)
{
	if (vsmctl_host_handles(argc, argv))
		return vsmctl_host_main(ctx, argc, argv, json_out);
	if (argc >= 3 && !strcmp(argv[1], "add")) {
		vsm_host_opts opts = VSM_HOST_OPTS_INIT;
		int i;

		for (i = 3; i < argc; i++) {
			if (!strcmp(argv[i], "--hypervisor") && i + 1 < argc)
				opts.hypervisor_uri = argv[++i];
			else
				return usage_error("unknown option '%s'", argv[i]);
		}
		if (vsm_host_add(ctx, argv[2], &opts) < 0)
			return vsmctl_fail();
		if (json_out) {
			vsm_host *h;

			if (vsm_host_lookup(&h, ctx, argv[2]) < 0)
				return vsmctl_fail();
			vsmctl_print_json(host_json(h));
			vsm_host_free(h);
		} else {
			printf("host '%s' added\n", argv[2]);
		}
		return 0;
	}
	if (argc >= 4 && (!strcmp(argv[1], "link") || !strcmp(argv[1], "unlink"))) {
		bool link = !strcmp(argv[1], "link");

		if ((link ? vsm_host_link(ctx, argv[2], argv[3], 0)
			  : vsm_host_unlink(ctx, argv[2], argv[3], 0)) < 0)
			return vsmctl_fail();
		if (json_out)
			vsmctl_print_json(json_object_new_object());
		else
			printf("host '%s' %s datastore '%s'\n", argv[2],
			       link ? "linked to" : "unlinked from", argv[3]);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "remove")) {
		if (vsm_host_remove(ctx, argv[2], 0) < 0)
			return vsmctl_fail();
		if (json_out)
			vsmctl_print_json(json_object_new_object());
		else
			printf("host '%s' removed\n", argv[2]);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "list")) {
		vsm_host **list;
		size_t n, i, j;
		json_object *arr = json_object_new_array();

		if (vsm_host_list(&list, &n, ctx) < 0) {
			json_object_put(arr);
			return vsmctl_fail();
		}
		for (i = 0; i < n; i++) {
			if (json_out) {
				json_object_array_add(arr, host_json(list[i]));
				continue;
			}
			printf("%-20s", vsm_host_name(list[i]));
			for (j = 0; j < vsm_host_datastore_count(list[i]); j++)
				printf("%s%s", j ? "," : " ", vsm_host_datastore(list[i], j));
			if (vsm_host_hypervisor_uri(list[i]))
				printf(" (%s)", vsm_host_hypervisor_uri(list[i]));
			vsmctl_host_print_extra(list[i]);
			printf("\n");
		}
		if (json_out)
			vsmctl_print_json(arr);
		else
			json_object_put(arr);
		vsm_host_list_free(list, n);
		return 0;
	}
	return usage_error("unknown host command%s", "");
}

/* --- containers --- */

#ifdef VSMCTL_HAVE_CHECKPOINT
/* A device's chain, top first: key, format, content ID, checkpoint; null
 * when it cannot be read (the error is printed). */
static json_object *chain_json(vsm_container *c, const char *device)
{
	vsm_layer_info *l = NULL;
	json_object *arr;
	size_t n = 0, i;

	if (vsm_device_chain(&l, &n, c, device, 0) < 0) {
		fprintf(stderr, "vsmctl: %s\n", vsm_error_last()->message);
		return NULL;
	}
	arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "key", jstr(l[i].key));
		json_object_object_add(e, "format", jstr(vsm_format_name(l[i].format)));
		json_object_object_add(e, "cid", jstr(l[i].cid));
		json_object_object_add(e, "checkpoint", jstr(l[i].checkpoint));
		json_object_object_add(e, "writable", json_object_new_boolean(l[i].writable));
		json_object_object_add(e, "golden", json_object_new_boolean(l[i].golden));
		json_object_array_add(arr, e);
	}
	vsm_layer_info_list_free(l, n);
	return arr;
}

static void chain_print(vsm_container *c, const char *device)
{
	vsm_layer_info *l = NULL;
	size_t n = 0, i;

	if (vsm_device_chain(&l, &n, c, device, 0) < 0) {
		fprintf(stderr, "vsmctl: %s\n", vsm_error_last()->message);
		return;
	}
	for (i = 0; i < n; i++)
		printf("    %s %-6s %-36s %s%s%s\n", i ? "<-" : "  ", vsm_format_name(l[i].format),
		       l[i].cid ? l[i].cid : "-", l[i].key,
		       l[i].checkpoint ? " checkpoint " : l[i].golden ? " golden" :
		       l[i].writable ? " (top)" : "",
		       l[i].checkpoint ? l[i].checkpoint : "");
	vsm_layer_info_list_free(l, n);
}
#else
static json_object *chain_json(vsm_container *c, const char *device)
{
	(void)c;
	(void)device;
	return NULL;
}

static void chain_print(vsm_container *c, const char *device)
{
	(void)c;
	(void)device;
}
#endif

static json_object *container_json_full(const vsm_container *c, bool with_chain)
{
	json_object *o = json_object_new_object(), *devs = json_object_new_array();
	size_t i;

	json_object_object_add(o, "name", jstr(vsm_container_name(c)));
	json_object_object_add(o, "uuid", jstr(vsm_container_uuid(c)));
	json_object_object_add(o, "datastore", jstr(vsm_container_datastore(c)));
	json_object_object_add(o, "attached_host", jstr(vsm_container_attached_host(c)));
	json_object_object_add(o, "state_size", json_object_new_uint64(vsm_container_state_size(c)));
	json_object_object_add(o, "ctime", json_object_new_int64(vsm_container_ctime(c)));
	for (i = 0; i < vsm_container_device_count(c); i++) {
		const vsm_device *d = vsm_container_device(c, i);
		const vsm_locator *loc = vsm_device_locator(d);
		json_object *jd = json_object_new_object();

		json_object_object_add(jd, "name", jstr(vsm_device_name(d)));
		json_object_object_add(jd, "size", json_object_new_uint64(vsm_device_size(d)));
		json_object_object_add(jd, "format", jstr(vsm_format_name(vsm_device_format(d))));
		json_object_object_add(jd, "locator", jstr(loc ? vsm_locator_uri(loc) : NULL));
		if (loc)
			json_object_object_add(jd, "disk_xml", jstr(vsm_locator_disk_xml(loc)));
		if (with_chain)
			json_object_object_add(jd, "chain", chain_json((vsm_container *)c,
								       vsm_device_name(d)));
		json_object_array_add(devs, jd);
	}
	json_object_object_add(o, "devices", devs);
	return o;
}

static json_object *container_json(const vsm_container *c)
{
	return container_json_full(c, false);
}

static void container_print(const vsm_container *c)
{
	size_t i;

	printf("name:      %s\nuuid:      %s\ndatastore: %s\nattached:  %s\n",
	       vsm_container_name(c), vsm_container_uuid(c), vsm_container_datastore(c),
	       vsm_container_attached_host(c) ? vsm_container_attached_host(c) : "-");
	printf("devices:\n");
	for (i = 0; i < vsm_container_device_count(c); i++) {
		const vsm_device *d = vsm_container_device(c, i);
		const vsm_locator *loc = vsm_device_locator(d);

		printf("  %-12s %14" PRIu64 " %-6s %s\n", vsm_device_name(d), vsm_device_size(d),
		       vsm_format_name(vsm_device_format(d)), loc ? vsm_locator_uri(loc) : "-");
		chain_print((vsm_container *)c, vsm_device_name(d));
	}
}

/* "NAME" or "DATASTORE/NAME". */
static int container_find(vsm_container **out, vsm_ctx *ctx, const char *arg)
{
	const char *slash = strchr(arg, '/');
	char *ds;
	int rc;

	if (!slash)
		return vsm_container_lookup(out, ctx, NULL, arg);
	if (!(ds = strndup(arg, (size_t)(slash - arg))))
		return -1;
	rc = vsm_container_lookup(out, ctx, ds, slash + 1);
	free(ds);
	return rc;
}

static int cmd_container_create(vsm_ctx *ctx, int argc, char **argv)
{
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	vsm_device_spec specs[64];
	const vsm_device_spec *ptrs[64];
	char *names[64];
	bool format_given[64];
	const char *datastore = NULL, *bases[64];
	size_t n_bases = 0;
	vsm_container *c = NULL;
	size_t n = 0, i;
	int a, rc = 2;

	for (a = 3; a < argc; a++) {
		if (!strcmp(argv[a], "--datastore") && a + 1 < argc) {
			datastore = argv[++a];
		} else if (!strcmp(argv[a], "--thin")) {
			opts.flags |= VSM_CONTAINER_CREATE_THIN;
		} else if (!strcmp(argv[a], "--state-size") && a + 1 < argc) {
			if (parse_size(argv[++a], &opts.state_size) < 0) {
				rc = usage_error("bad size '%s'", argv[a]);
				goto out;
			}
		} else if (!strcmp(argv[a], "--base") && a + 1 < argc) {
			if (n_bases == 64 || !strchr(argv[a + 1], '=')) {
				rc = usage_error("bad --base '%s' (want DEV=IMAGE)", argv[a + 1]);
				goto out;
			}
			bases[n_bases++] = argv[++a];
		} else if (!strcmp(argv[a], "--disk") && a + 1 < argc) {
			char *spec = argv[++a], *c1 = strchr(spec, ':'), *c2;
			vsm_device_spec d = VSM_DEVICE_SPEC_INIT;

			if (n == 64 || !c1) {
				rc = usage_error("bad --disk '%s' (want DEV:SIZE[:FORMAT])", spec);
				goto out;
			}
			names[n] = strndup(spec, (size_t)(c1 - spec));
			c2 = strchr(c1 + 1, ':');
			if (c2)
				*c2 = '\0';
			if (!names[n] || parse_size(c1 + 1, &d.size) < 0 ||
			    (c2 && vsm_format_parse(&d.format, c2 + 1) < 0)) {
				free(names[n]);
				if (c2)
					*c2 = ':';
				rc = usage_error("bad --disk '%s' (want DEV:SIZE[:raw|qcow2])", spec);
				goto out;
			}
			if (c2)
				*c2 = ':';
			d.name = names[n];
			format_given[n] = c2 != NULL;
			specs[n] = d;
			n++;
		} else {
			rc = usage_error("unknown option '%s'", argv[a]);
			goto out;
		}
	}
	/* --base DEV=IMAGE makes DEV a qcow2 overlay of IMAGE, a golden image
	 * on the datastore; without a --disk for DEV it takes IMAGE's size. */
	for (i = 0; i < n_bases; i++) {
		const char *eq = strchr(bases[i], '=');
		size_t j, len = (size_t)(eq - bases[i]);

		for (j = 0; j < n; j++)
			if (strlen(specs[j].name) == len && !strncmp(specs[j].name, bases[i], len))
				break;
		if (j == n) {
			vsm_device_spec d = VSM_DEVICE_SPEC_INIT;

			if (n == 64 || !(names[n] = strndup(bases[i], len))) {
				rc = usage_error("too many devices%s", "");
				goto out;
			}
			d.name = names[n];
			format_given[n] = false;
			specs[n++] = d;
		}
		specs[j].base = eq + 1;
		if (!format_given[j])
			specs[j].format = VSM_FORMAT_QCOW2;
	}
	if (!datastore || n == 0) {
		rc = usage_error("container create needs --datastore and at least one --disk%s", "");
		goto out;
	}
	for (i = 0; i < n; i++)
		ptrs[i] = &specs[i];
	opts.devices = ptrs;
	opts.n_devices = n;
	if (!strcmp(datastore, "auto")) {
		opts.flags |= VSM_CONTAINER_CREATE_PLACE;
		datastore = NULL;
	}
	if (vsm_container_create(&c, ctx, datastore, argv[2], &opts) < 0) {
		rc = vsmctl_fail();
		goto out;
	}
	if (json_out)
		vsmctl_print_json(container_json(c));
	else
		printf("container '%s' created on datastore '%s' (%s)\n", argv[2],
		       vsm_container_datastore(c), vsm_container_uuid(c));
	rc = 0;
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	vsm_container_free(c);
	return rc;
}

/*
 * Datastores (@only, or all) whose backend is not loaded: the library
 * cannot read their containers and leaves them out of a listing. Name
 * each one on stdout where its containers would be (not in --json, whose
 * array holds containers only) and warn on stderr. Returns how many, or
 * -1 on error. `container list` then exits 1, as ls does when it could
 * not read everything: the listing is incomplete.
 */
static int not_loaded(vsm_ctx *ctx, const char *only)
{
	vsm_datastore **list = NULL;
	size_t n = 0, i;
	int missing = 0;

	if (vsm_datastore_list(&list, &n, ctx) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		const char *name = vsm_datastore_name(list[i]), *uri = vsm_datastore_uri(list[i]);
		int len = (int)strcspn(uri, ":");

		if ((only && strcmp(only, name)) || vsm_backend_lookup(ctx, uri) == 0)
			continue;
		missing++;
		if (!json_out)
			printf("%-20s (backend '%.*s' not loaded)\n", name, len, uri);
		fprintf(stderr, "vsmctl: warning: containers of datastore '%s' not listed: "
			"backend '%.*s' not loaded (not built in, and no module in the module "
			"directories serves it)\n", name, len, uri);
	}
	vsm_datastore_list_free(list, n);
	vsm_error_clear();
	return missing;
}

static int cmd_container(vsm_ctx *ctx, int argc, char **argv)
{
	vsm_container *c = NULL;
	int rc;

	if (argc >= 3 && !strcmp(argv[1], "create"))
		return cmd_container_create(ctx, argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "list")) {
		const char *ds = argc >= 4 && !strcmp(argv[2], "--datastore") ? argv[3] : NULL;
		json_object *arr = json_object_new_array();
		vsm_container **list;
		size_t n, i;

		int missing = 0;

		/* Its containers cannot be read, so the listing would skip it. */
		if ((ds && (missing = not_loaded(ctx, ds)) != 0) ||
		    vsm_container_list(&list, &n, ctx, ds) < 0) {
			json_object_put(arr);
			return missing > 0 ? 1 : vsmctl_fail();
		}
		for (i = 0; i < n; i++) {
			if (json_out)
				json_object_array_add(arr, container_json(list[i]));
			else
				printf("%-20s %-16s %-16s %zu device(s)\n", vsm_container_name(list[i]),
				       vsm_container_datastore(list[i]),
				       vsm_container_attached_host(list[i]) ?
				       vsm_container_attached_host(list[i]) : "-",
				       vsm_container_device_count(list[i]));
		}
		if (!ds && (missing = not_loaded(ctx, NULL)) < 0) {
			json_object_put(arr);
			vsm_container_list_free(list, n);
			return vsmctl_fail();
		}
		if (json_out)
			vsmctl_print_json(arr);
		else
			json_object_put(arr);
		vsm_container_list_free(list, n);
		return missing > 0 ? 1 : 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "show")) {
		if (container_find(&c, ctx, argv[2]) < 0)
			return vsmctl_fail();
		if (json_out || (argc >= 4 && !strcmp(argv[3], "--json")))
			vsmctl_print_json(container_json_full(c, true));
		else
			container_print(c);
		vsm_container_free(c);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "destroy")) {
		unsigned int flags = argc >= 4 && !strcmp(argv[3], "--force") ?
				     VSM_CONTAINER_DESTROY_FORCE : 0;

		if (container_find(&c, ctx, argv[2]) < 0)
			return vsmctl_fail();
		rc = vsm_container_destroy(c, flags);
		vsm_container_free(c);
		if (rc < 0)
			return vsmctl_fail();
		if (json_out)
			vsmctl_print_json(json_object_new_object());
		else
			printf("container '%s' destroyed\n", argv[2]);
		return 0;
	}
#ifdef VSMCTL_HAVE_CHECKPOINT
	if (argc >= 2 && !strcmp(argv[1], "clone"))
		return vsmctl_clone_main(ctx, argc, argv, json_out);
#endif
	return usage_error("unknown container command%s", "");
}

static int cmd_attach(vsm_ctx *ctx, int argc, char **argv, bool attach)
{
	vsm_container *c;
	int rc;

	if (argc < (attach ? 3 : 2))
		return usage_error("%s needs its arguments", argv[0]);
	if (container_find(&c, ctx, argv[1]) < 0)
		return vsmctl_fail();
	if (attach)
		/* --takeover: wait out a stopped holder's timeout and take over;
		 * "auto": placement phase 2 chooses the host. */
		rc = vsm_attach(c, argv[2], (argc >= 4 && !strcmp(argv[3], "--takeover") ?
				VSM_ATTACH_TAKEOVER : 0) |
				(!strcmp(argv[2], "auto") ? VSM_ATTACH_PLACE : 0));
	else
		rc = vsm_detach(c, argc >= 3 && !strcmp(argv[2], "--force") ? VSM_DETACH_FORCE : 0);
	if (rc < 0) {
		vsm_container_free(c);
		return vsmctl_fail();
	}
	if (json_out)
		vsmctl_print_json(container_json(c));
	else if (attach)
		printf("container '%s' attached to host '%s'\n", vsm_container_name(c),
		       vsm_container_attached_host(c));
	else
		printf("container '%s' detached\n", vsm_container_name(c));
	vsm_container_free(c);
	return 0;
}

/* --- leases --- */

static void iso_time(char *buf, size_t size, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "-");
}

static int cmd_lease(vsm_ctx *ctx, int argc, char **argv)
{
	vsm_lease **list = NULL;
	size_t n = 0, i;
	bool as_json = json_out || (argc >= 4 && !strcmp(argv[3], "--json"));
	json_object *arr;

	if (argc < 3 || strcmp(argv[1], "status"))
		return usage_error("lease needs: status DATASTORE%s", "");
	/* A fresh process has watched nobody yet: watch one renewal. */
	if (vsm_lease_status(&list, &n, ctx, argv[2], VSM_LEASE_STATUS_WATCH) < 0)
		return vsmctl_fail();
	arr = json_object_new_array();
	if (!as_json && n)
		printf("%-24s %-16s %-8s %-8s %-21s %s\n", "CONTAINER", "HOST", "STATE", "VERSION",
		       "SINCE", "STOPPED");
	for (i = 0; i < n; i++) {
		const vsm_lease *l = list[i];
		char since[40];

		iso_time(since, sizeof(since), vsm_lease_since(l));
		if (as_json) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "container", jstr(vsm_lease_container(l)));
			json_object_object_add(o, "host", jstr(vsm_lease_host(l)));
			json_object_object_add(o, "state", jstr(vsm_lease_state_name(vsm_lease_state_of(l))));
			json_object_object_add(o, "version", json_object_new_uint64(vsm_lease_version(l)));
			json_object_object_add(o, "since", vsm_lease_since(l) ? jstr(since) :
					       json_object_new_null());
			json_object_object_add(o, "stopped_ms", json_object_new_int64(vsm_lease_stopped_ms(l)));
			json_object_array_add(arr, o);
		} else {
			int st = vsm_lease_state_of(l);
			char stopped[32] = "-";

			if (st == VSM_LEASE_STOPPED || st == VSM_LEASE_DEAD)
				snprintf(stopped, sizeof(stopped), "%.1fs",
					 (double)vsm_lease_stopped_ms(l) / 1000);
			printf("%-24s %-16s %-8s %-8" PRIu64 " %-21s %s\n", vsm_lease_container(l),
			       vsm_lease_host(l) ? vsm_lease_host(l) : "-", vsm_lease_state_name(st),
			       vsm_lease_version(l), since, stopped);
		}
	}
	if (as_json)
		vsmctl_print_json(arr);
	else
		json_object_put(arr);
	vsm_lease_list_free(list, n);
	return 0;
}

static void agent_event(const vsm_event *ev, void *payload)
{
	json_object *o = json_object_new_object();

	(void)payload;
	json_object_object_add(o, "event", jstr(vsm_event_type_name(vsm_event_type_of(ev))));
	json_object_object_add(o, "datastore", jstr(vsm_event_datastore(ev)));
	json_object_object_add(o, "container", jstr(vsm_event_container(ev)));
	json_object_object_add(o, "host", jstr(vsm_event_host(ev)));
	json_object_object_add(o, "detail", jstr(vsm_event_detail(ev)));
	json_object_object_add(o, "generation", json_object_new_uint64(vsm_event_generation(ev)));
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
}

/* Keep this host's heartbeats (and so its leases) alive until SIGTERM. */
static int cmd_agent(vsm_ctx *ctx, int argc, char **argv)
{
	sigset_t set;
	vsm_host **hosts = NULL;
	size_t n = 0, i, kept = 0;
	int a, sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Also blocked in main() before the context (and its threads) exist. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (vsm_event_register(ctx, agent_event, NULL, NULL) < 0)
		return vsmctl_fail();
	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--host") && a + 1 < argc) {
			if (vsm_lease_keep(ctx, argv[++a], 0) < 0)
				return vsmctl_fail();
			kept++;
		} else {
			return usage_error("agent: unknown argument '%s'", argv[a]);
		}
	}
	if (!kept) {
		if (vsm_host_list(&hosts, &n, ctx) < 0)
			return vsmctl_fail();
		for (i = 0; i < n; i++) {
			if (!vsm_host_datastore_count(hosts[i]))
				continue;
			if (vsm_lease_keep(ctx, vsm_host_name(hosts[i]), 0) < 0) {
				vsm_host_list_free(hosts, n);
				return vsmctl_fail();
			}
			kept++;
		}
		vsm_host_list_free(hosts, n);
	}
	fprintf(stderr, "vsmctl agent: keeping %zu host%s alive; SIGTERM stops\n", kept,
		kept == 1 ? "" : "s");
	while (sigwait(&set, &sig) != 0)
		;
	fprintf(stderr, "vsmctl agent: signal %d, stopping\n", sig);
	return 0;
}

static int cmd_deploy(vsm_ctx *ctx, int argc, char **argv)
{
	vsm_deploy_opts opts = VSM_DEPLOY_OPTS_INIT;
	vsm_container *c;
	vsm_locator *loc = NULL;
	int a;

	if (argc < 3)
		return usage_error("deploy needs CONTAINER DEVICE%s", "");
	for (a = 3; a < argc; a++) {
		if (!strcmp(argv[a], "--domain") && a + 1 < argc)
			opts.domain = argv[++a];
		else if (!strcmp(argv[a], "--target") && a + 1 < argc)
			opts.target = argv[++a];
		else if (!strcmp(argv[a], "--bus") && a + 1 < argc)
			opts.bus = argv[++a];
		else
			return usage_error("unknown option '%s'", argv[a]);
	}
	if (container_find(&c, ctx, argv[1]) < 0)
		return vsmctl_fail();
	if (vsm_device_deploy(&loc, c, argv[2], &opts) < 0) {
		vsm_container_free(c);
		return vsmctl_fail();
	}
	if (json_out) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "container", jstr(vsm_container_name(c)));
		json_object_object_add(o, "device", jstr(argv[2]));
		json_object_object_add(o, "host", jstr(vsm_locator_host(loc)));
		json_object_object_add(o, "locator", jstr(vsm_locator_uri(loc)));
		json_object_object_add(o, "path", jstr(vsm_locator_path(loc)));
		json_object_object_add(o, "disk_xml", jstr(vsm_locator_disk_xml(loc)));
		vsmctl_print_json(o);
	} else {
		printf("%s\n", vsm_locator_uri(loc));
	}
	vsm_locator_free(loc);
	vsm_container_free(c);
	return 0;
}

static int cmd_undeploy(vsm_ctx *ctx, int argc, char **argv)
{
	vsm_container *c;
	int rc;

	if (argc < 3)
		return usage_error("undeploy needs CONTAINER DEVICE%s", "");
	if (container_find(&c, ctx, argv[1]) < 0)
		return vsmctl_fail();
	rc = vsm_device_undeploy(c, argv[2], 0);
	vsm_container_free(c);
	if (rc < 0)
		return vsmctl_fail();
	if (json_out)
		vsmctl_print_json(json_object_new_object());
	else
		printf("device '%s' of container '%s' undeployed\n", argv[2], argv[1]);
	return 0;
}

/* --- demo: the library's main job, end to end, on a file datastore --- */

#define STEP(...) do { printf("==> " __VA_ARGS__); printf("\n"); fflush(stdout); } while (0)
#define CHECK(call) do { if ((call) < 0) { rc = vsmctl_fail(); goto out; } } while (0)

static int cmd_demo(int argc, char **argv)
{
	vsm_ctx_opts opts = VSM_CTX_OPTS_INIT;
	vsm_device_spec root = VSM_DEVICE_SPEC_INIT, data = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *devs[] = {&root, &data};
	vsm_container_opts copts = VSM_CONTAINER_OPTS_INIT;
	vsm_ctx *ctx = NULL, *ctx2 = NULL;
	vsm_container *c = NULL;
	vsm_container **list = NULL;
	vsm_locator *loc = NULL;
	size_t n = 0, i;
	char tmpl[] = "/tmp/vsm-demo.XXXXXX", *dir, *state = NULL, *state2 = NULL, *uri = NULL;
	int rc = 0;

	if (argc >= 2) {
		dir = argv[1];
	} else if (!(dir = mkdtemp(tmpl))) {
		perror("vsmctl: mkdtemp");
		return 1;
	}
	if (asprintf(&state, "%s/state", dir) < 0 || asprintf(&state2, "%s/state2", dir) < 0 ||
	    asprintf(&uri, "file://%s/datastore", dir) < 0)
		return 1;
	if (uri[7] != '/') {
		fprintf(stderr, "vsmctl: demo DIR must be an absolute path\n");
		return 2;
	}
	STEP("open a context with its catalog in %s", state);
	opts.state_dir = state;
	CHECK(vsm_ctx_open(&ctx, &opts));
	STEP("register datastore 'ds1' at %s", uri);
	CHECK(vsm_datastore_add(ctx, "ds1", uri, VSM_DATASTORE_ADD_CREATE));
	STEP("register host 'host1' and link it to 'ds1'");
	CHECK(vsm_host_add(ctx, "host1", NULL));
	CHECK(vsm_host_link(ctx, "host1", "ds1", 0));

	root.name = "root";
	root.size = 1ull << 30;
	data.name = "data";
	data.size = 512ull << 20;
	copts.devices = devs;
	copts.n_devices = 2;
	STEP("create container 'web' with devices root (1 GiB) and data (512 MiB), raw");
	CHECK(vsm_container_create(&c, ctx, "ds1", "web", &copts));
	printf("    uuid %s\n", vsm_container_uuid(c));

	STEP("attach 'web' to 'host1'");
	CHECK(vsm_attach(c, "host1", 0));
	STEP("deploy device 'root' for the hypervisor on 'host1'");
	CHECK(vsm_device_deploy(&loc, c, "root", NULL));
	printf("    locator: %s\n    libvirt disk:\n", vsm_locator_uri(loc));
	printf("%s", vsm_locator_disk_xml(loc));

	STEP("a second context on a fresh catalog finds 'web' by rescanning 'ds1'");
	opts.state_dir = state2;
	CHECK(vsm_ctx_open(&ctx2, &opts));
	CHECK(vsm_datastore_add(ctx2, "ds1", uri, 0));
	CHECK(vsm_container_list(&list, &n, ctx2, NULL));
	for (i = 0; i < n; i++)
		printf("    found '%s' attached to '%s'\n", vsm_container_name(list[i]),
		       vsm_container_attached_host(list[i]) ? vsm_container_attached_host(list[i])
							    : "-");

	STEP("undeploy 'root', detach, destroy 'web'");
	CHECK(vsm_device_undeploy(c, "root", 0));
	CHECK(vsm_detach(c, 0));
	CHECK(vsm_container_destroy(c, 0));
	STEP("done: every step succeeded");
out:
	vsm_container_list_free(list, n);
	vsm_locator_free(loc);
	vsm_container_free(c);
	vsm_ctx_free(ctx2);
	vsm_ctx_free(ctx);
	free(state);
	free(state2);
	free(uri);
	return rc;
}

int main(int argc, char **argv)
{
	vsm_ctx_opts opts = VSM_CTX_OPTS_INIT;
	vsmctl_globals g;
	vsm_ctx *ctx = NULL;
	int rc;

	/* Options anywhere on the line, as in virsh and qemu-img. */
	if ((argc = vsmctl_take_globals(argc, argv, &g)) < 0)
		return 2;
	json_out = g.json;
	vsmctl_set_output(g.json, g.quiet);
	opts.state_dir = g.state_dir;
	if (g.version || (argc > 0 && !strcmp(argv[0], "version"))) {
		vsmctl_print_version(stdout);
		return 0;
	}
	if (argc > 0 && !strcmp(argv[0], "help"))
		return vsmctl_help(stdout, usage, argc > 1 ? argv[1] : NULL);
	if (g.help)
		return vsmctl_help(stdout, usage, argc > 0 ? argv[0] : NULL);
	if (argc == 0)
		return usage_error("no command given%s", "");
	if (!strcmp(argv[0], "demo"))
		return cmd_demo(argc, argv);
#ifdef VSMCTL_HAVE_IMAGE
	if (!strcmp(argv[0], "image"))
		return vsmctl_image_main(argc, argv, json_out, &opts);
#endif
	if (!strcmp(argv[0], "agent")) {
		sigset_t stop;

		/* Every thread the library starts inherits this: the agent
		 * takes SIGTERM/SIGINT with sigwait(). */
		sigemptyset(&stop);
		sigaddset(&stop, SIGTERM);
		sigaddset(&stop, SIGINT);
		pthread_sigmask(SIG_BLOCK, &stop, NULL);
	}
	if (vsm_ctx_open(&ctx, &opts) < 0)
		return vsmctl_fail();
	if (!strcmp(argv[0], "datastore"))
		rc = cmd_datastore(ctx, argc, argv);
	else if (!strcmp(argv[0], "host"))
		rc = cmd_host(ctx, argc, argv);
	else if (!strcmp(argv[0], "container"))
		rc = cmd_container(ctx, argc, argv);
	else if (!strcmp(argv[0], "attach"))
		rc = cmd_attach(ctx, argc, argv, true);
	else if (!strcmp(argv[0], "detach"))
		rc = cmd_attach(ctx, argc, argv, false);
	else if (!strcmp(argv[0], "deploy"))
		rc = cmd_deploy(ctx, argc, argv);
	else if (!strcmp(argv[0], "undeploy"))
		rc = cmd_undeploy(ctx, argc, argv);
	else if (!strcmp(argv[0], "device"))
		rc = vsmctl_device_main(ctx, argc, argv, json_out);
#ifdef VSMCTL_HAVE_CHECKPOINT
	else if (!strcmp(argv[0], "checkpoint"))
		rc = vsmctl_checkpoint_main(ctx, argc, argv, json_out);
	else if (!strcmp(argv[0], "export"))
		rc = vsmctl_export_main(ctx, argc, argv, json_out);
	else if (!strcmp(argv[0], "import"))
		rc = vsmctl_import_main(ctx, argc, argv, json_out);
	else if (!strcmp(argv[0], "changes"))
		rc = vsmctl_changes_main(ctx, argc, argv, json_out);
	else if (!strcmp(argv[0], "backup"))
		rc = vsmctl_backup_main(ctx, argc, argv, json_out);
	else if (!strcmp(argv[0], "restore"))
		rc = vsmctl_restore_main(ctx, argc, argv, json_out);
	else if (!strcmp(argv[0], "migrate"))
		rc = vsmctl_migrate_main(ctx, argc, argv, json_out);
	else if (!strcmp(argv[0], "send") || !strcmp(argv[0], "receive"))
		rc = vsmctl_send_main(ctx, argc, argv, json_out);
#endif
	else if (!strcmp(argv[0], "group") && argc > 1 &&
		 (!strcmp(argv[1], "backup") || !strcmp(argv[1], "recover")))
		rc = vsmctl_group_recovery_main(ctx, argc, argv, json_out);
	else if (!strcmp(argv[0], "group"))
		rc = vsmctl_group_main(ctx, argc, argv, json_out);
	else if (!strcmp(argv[0], "place"))
		rc = vsmctl_place_main(ctx, argc, argv, json_out);
	else if (!strcmp(argv[0], "workflow"))
		rc = vsmctl_workflow_main(ctx, argc, argv, json_out);
	else if (!strcmp(argv[0], "lease"))
		rc = cmd_lease(ctx, argc, argv);
	else if (!strcmp(argv[0], "handover"))
		rc = vsmctl_handover_main(ctx, argc, argv, json_out);
	else if (!strcmp(argv[0], "agent"))
		rc = cmd_agent(ctx, argc, argv);
	else
		rc = usage_error("unknown command '%s'", argv[0]);
	vsm_ctx_free(ctx);
	return rc;
}
