/*
 * `vsmctl group ...`: consistency groups (doc/groups.md), through the
 * public <vsm/group.h> API only. Errors print "vsmctl: <message>" and
 * exit 1; usage errors exit 2.
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vsm/vsm.h>

#include "vsmctl-util.h"
#include "vsmctl-group.h"

static const char usage_text[] =
	"usage: vsmctl group create GROUP CONTAINER... [--datastore DS]\n"
	"       vsmctl group add|remove GROUP CONTAINER\n"
	"       vsmctl group list [--json]\n"
	"       vsmctl group show GROUP [--json]\n"
	"       vsmctl group checkpoint GROUP NAME [--timeout SEC] [--freeze]\n"
	"       vsmctl group revert GROUP NAME\n"
	"       vsmctl group delete-checkpoint GROUP NAME\n"
	"       vsmctl group clone GROUP CHECKPOINT NEW\n"
	"       vsmctl group plan GROUP --boot CONTAINER:PRIORITY[:AFTER=C2[,C3...]] ...\n"
	"                               [--net CONTAINER:MAC,NETWORK[,IP/PREFIX,GW,DNS]] ...\n"
	"       vsmctl group destroy GROUP\n"
	"GROUP and CONTAINER may be given as DATASTORE/NAME.\n"
	"--timeout: bound on the time writers and domains are held (default 7).\n"
	"--freeze: members' domains are frozen by the guest agent, not paused.\n";

static int usage(const char *why, const char *arg)
{
	fprintf(stderr, "vsmctl: ");
	fprintf(stderr, why, arg);
	fprintf(stderr, "\n%s", usage_text);
	return 2;
}

static void split(const char *spec, char *ds, size_t size, const char **name)
{
	const char *slash = strchr(spec, '/');

	ds[0] = '\0';
	*name = spec;
	if (slash) {
		snprintf(ds, size, "%.*s", (int)(slash - spec), spec);
		*name = slash + 1;
	}
}

static int group_find(vsm_group **out, vsm_ctx *ctx, const char *spec)
{
	char ds[128];
	const char *name;

	split(spec, ds, sizeof(ds), &name);
	return vsm_group_lookup(out, ctx, ds[0] ? ds : NULL, name);
}

static int container_find(vsm_container **out, vsm_ctx *ctx, const char *spec)
{
	char ds[128];
	const char *name;

	split(spec, ds, sizeof(ds), &name);
	return vsm_container_lookup(out, ctx, ds[0] ? ds : NULL, name);
}

static int cmd_create(vsm_ctx *ctx, int argc, char **argv)
{
	vsm_group_opts o = VSM_GROUP_OPTS_INIT;
	vsm_container **cs;
	vsm_group *g = NULL;
	const char *name = NULL;
	size_t n = 0;
	int a, rc = 0;

	if (!(cs = calloc((size_t)argc + 1, sizeof(*cs))))
		return 1;
	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--datastore") && a + 1 < argc) {
			o.datastore = argv[++a];
		} else if (argv[a][0] == '-') {
			rc = usage("unknown option '%s'", argv[a]);
			goto out;
		} else if (!name) {
			name = argv[a];
		} else if (container_find(&cs[n++], ctx, argv[a]) < 0) {
			rc = vsmctl_fail();
			goto out;
		}
	}
	if (!name || (!n && !o.datastore)) {
		rc = usage("group create needs a GROUP and at least one CONTAINER%s", "");
		goto out;
	}
	if (vsm_group_create(&g, ctx, name, cs, n, &o) < 0) {
		rc = vsmctl_fail();
		goto out;
	}
	printf("group '%s' created on datastore '%s' with %zu member(s)\n", vsm_group_name(g),
	       vsm_group_datastore(g), vsm_group_member_count(g));
out:
	for (size_t i = 0; i < n; i++)
		vsm_container_free(cs[i]);
	free(cs);
	vsm_group_free(g);
	return rc;
}

static int cmd_member(vsm_ctx *ctx, int argc, char **argv, bool add)
{
	vsm_container *c = NULL;
	vsm_group *g = NULL;
	char ds[128];
	const char *name;
	int rc = 0;

	if (argc != 4)
		return usage("group %s needs GROUP CONTAINER", add ? "add" : "remove");
	if (group_find(&g, ctx, argv[2]) < 0)
		return vsmctl_fail();
	if (add) {
		if (container_find(&c, ctx, argv[3]) < 0 || vsm_group_member_add(g, c, 0) < 0)
			rc = vsmctl_fail();
	} else {
		split(argv[3], ds, sizeof(ds), &name);
		if (vsm_group_member_remove(g, name, 0) < 0)
			rc = vsmctl_fail();
	}
	if (rc == 0)
		printf("group '%s': member '%s' %s\n", vsm_group_name(g), argv[3],
		       add ? "added" : "removed");
	vsm_container_free(c);
	vsm_group_free(g);
	return rc;
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *group_json(const vsm_group *g)
{
	json_object *o = json_object_new_object(), *ms = json_object_new_array(),
		    *cs = json_object_new_array();
	size_t i, j;

	json_object_object_add(o, "name", jstr(vsm_group_name(g)));
	json_object_object_add(o, "uuid", jstr(vsm_group_uuid(g)));
	json_object_object_add(o, "datastore", jstr(vsm_group_datastore(g)));
	json_object_object_add(o, "ctime", json_object_new_int64(vsm_group_ctime(g)));
	for (i = 0; i < vsm_group_member_count(g); i++) {
		vsm_group_plan_entry p = VSM_GROUP_PLAN_ENTRY_INIT;
		json_object *m = json_object_new_object(), *boot = json_object_new_object(),
			    *after = json_object_new_array();

		vsm_group_plan_get(g, i, &p);
		json_object_object_add(m, "name", jstr(vsm_group_member_name(g, i)));
		json_object_object_add(m, "uuid", jstr(vsm_group_member_uuid(g, i)));
		json_object_object_add(m, "datastore", jstr(vsm_group_member_datastore(g, i)));
		json_object_object_add(boot, "priority", json_object_new_int64(p.priority));
		for (j = 0; j < p.n_after; j++)
			json_object_array_add(after, jstr(p.after[j]));
		json_object_object_add(boot, "after", after);
		json_object_object_add(m, "boot", boot);
		if (p.mac) {
			json_object *net = json_object_new_object();

			json_object_object_add(net, "mac", jstr(p.mac));
			json_object_object_add(net, "network", jstr(p.network));
			json_object_object_add(net, "ip", jstr(p.ip));
			json_object_object_add(net, "prefix",
					       p.ip ? json_object_new_int(p.prefix) : NULL);
			json_object_object_add(net, "gateway", jstr(p.gateway));
			json_object_object_add(net, "dns", jstr(p.dns));
			json_object_object_add(m, "net", net);
		} else {
			json_object_object_add(m, "net", NULL);
		}
		json_object_array_add(ms, m);
	}
	for (i = 0; i < vsm_group_checkpoint_count(g); i++) {
		json_object *c = json_object_new_object(), *cm = json_object_new_array();

		json_object_object_add(c, "name", jstr(vsm_group_checkpoint_name(g, i)));
		json_object_object_add(c, "ctime",
				       json_object_new_int64(vsm_group_checkpoint_ctime(g, i)));
		for (j = 0; j < vsm_group_checkpoint_member_count(g, i); j++) {
			json_object *e = json_object_new_object();

			json_object_object_add(e, "uuid",
					       jstr(vsm_group_checkpoint_member_uuid(g, i, j)));
			json_object_object_add(e, "checkpoint",
					       jstr(vsm_group_checkpoint_member_checkpoint(g, i, j)));
			json_object_array_add(cm, e);
		}
		json_object_object_add(c, "members", cm);
		json_object_array_add(cs, c);
	}
	json_object_object_add(o, "members", ms);
	json_object_object_add(o, "checkpoints", cs);
	return o;
}

static const char *member_name_of(const vsm_group *g, const char *uuid)
{
	size_t i;

	for (i = 0; i < vsm_group_member_count(g); i++)
		if (!strcmp(vsm_group_member_uuid(g, i), uuid))
			return vsm_group_member_name(g, i);
	return uuid; /* left the group since */
}

static void group_print(const vsm_group *g)
{
	size_t i, j;

	printf("group %s (%s) on datastore %s\n", vsm_group_name(g), vsm_group_uuid(g),
	       vsm_group_datastore(g));
	printf("members:\n");
	for (i = 0; i < vsm_group_member_count(g); i++) {
		vsm_group_plan_entry p = VSM_GROUP_PLAN_ENTRY_INIT;

		vsm_group_plan_get(g, i, &p);
		printf("  %-20s %-12s boot priority %u", vsm_group_member_name(g, i),
		       vsm_group_member_datastore(g, i), p.priority);
		for (j = 0; j < p.n_after; j++)
			printf("%s%s", j ? "," : " after ", p.after[j]);
		if (p.mac) {
			printf(" net %s,%s", p.mac, p.network);
			if (p.ip)
				printf(",%s/%d,%s,%s", p.ip, p.prefix, p.gateway ? p.gateway : "",
				       p.dns ? p.dns : "");
		}
		putchar('\n');
	}
	printf("checkpoints:\n");
	for (i = 0; i < vsm_group_checkpoint_count(g); i++) {
		printf("  %-20s %" PRId64 " ", vsm_group_checkpoint_name(g, i),
		       vsm_group_checkpoint_ctime(g, i));
		for (j = 0; j < vsm_group_checkpoint_member_count(g, i); j++)
			printf("%s%s:%s", j ? " " : "",
			       member_name_of(g, vsm_group_checkpoint_member_uuid(g, i, j)),
			       vsm_group_checkpoint_member_checkpoint(g, i, j));
		putchar('\n');
	}
}

static int cmd_show(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_group *g = NULL;
	const char *name = NULL;
	int a;

	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--json"))
			json = 1;
		else if (!name && argv[a][0] != '-')
			name = argv[a];
		else
			return usage("unexpected argument '%s'", argv[a]);
	}
	if (!name)
		return usage("group show needs GROUP%s", "");
	if (group_find(&g, ctx, name) < 0)
		return vsmctl_fail();
	if (json)
		vsmctl_print_json(group_json(g));
	else
		group_print(g);
	vsm_group_free(g);
	return 0;
}

static int cmd_list(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_group **list = NULL;
	size_t n = 0, i;
	int a;

	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--json"))
			json = 1;
		else
			return usage("unexpected argument '%s'", argv[a]);
	}
	if (vsm_group_list(&list, &n, ctx) < 0)
		return vsmctl_fail();
	if (json) {
		json_object *arr = json_object_new_array();

		for (i = 0; i < n; i++)
			json_object_array_add(arr, group_json(list[i]));
		vsmctl_print_json(arr);
	} else {
		for (i = 0; i < n; i++)
			printf("%-12s %-20s %zu member(s), %zu checkpoint(s)\n",
			       vsm_group_datastore(list[i]), vsm_group_name(list[i]),
			       vsm_group_member_count(list[i]), vsm_group_checkpoint_count(list[i]));
	}
	vsm_group_list_free(list, n);
	return 0;
}

static int cmd_checkpoint(vsm_ctx *ctx, int argc, char **argv)
{
	vsm_group_checkpoint_opts o = VSM_GROUP_CHECKPOINT_OPTS_INIT;
	const char *pos[2] = { NULL, NULL };
	vsm_group *g = NULL;
	int a, np = 0, rc = 0;

	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--timeout") && a + 1 < argc) {
			if (vsmctl_timeout_ms(argv[++a], &o.timeout_ms) < 0)
				return usage("--timeout '%s' is not a number of seconds (0-3600]",
					     argv[a]);
		} else if (!strcmp(argv[a], "--freeze")) {
			o.flags |= VSM_GROUP_CHECKPOINT_FREEZE;
		} else if (argv[a][0] != '-' && np < 2) {
			pos[np++] = argv[a];
		} else {
			return usage("unexpected argument '%s'", argv[a]);
		}
	}
	if (np != 2)
		return usage("group checkpoint needs GROUP NAME%s", "");
	if (group_find(&g, ctx, pos[0]) < 0)
		return vsmctl_fail();
	if (vsm_group_checkpoint_create(g, pos[1], &o) < 0)
		rc = vsmctl_fail();
	else
		printf("group '%s': checkpoint '%s' created in %zu member(s)\n", vsm_group_name(g),
		       pos[1], vsm_group_member_count(g));
	vsm_group_free(g);
	return rc;
}

static int cmd_ckpt_op(vsm_ctx *ctx, int argc, char **argv, bool revert)
{
	vsm_group *g = NULL;
	int rc = 0;

	if (argc != 4)
		return usage("group %s needs GROUP NAME", revert ? "revert" : "delete-checkpoint");
	if (group_find(&g, ctx, argv[2]) < 0)
		return vsmctl_fail();
	if ((revert ? vsm_group_checkpoint_revert(g, argv[3], 0)
		    : vsm_group_checkpoint_delete(g, argv[3], 0)) < 0)
		rc = vsmctl_fail();
	else
		printf("group '%s': %s checkpoint '%s'\n", vsm_group_name(g),
		       revert ? "reverted to" : "deleted", argv[3]);
	vsm_group_free(g);
	return rc;
}

static int cmd_clone(vsm_ctx *ctx, int argc, char **argv)
{
	vsm_group *g = NULL, *ng = NULL;
	int rc = 0;

	if (argc != 5)
		return usage("group clone needs GROUP CHECKPOINT NEW%s", "");
	if (group_find(&g, ctx, argv[2]) < 0)
		return vsmctl_fail();
	if (vsm_group_clone(&ng, g, argv[3], argv[4], 0) < 0)
		rc = vsmctl_fail();
	else
		printf("group '%s' cloned from checkpoint '%s' of group '%s' (%zu member(s))\n",
		       argv[4], argv[3], vsm_group_name(g), ng ? vsm_group_member_count(ng) : 0);
	vsm_group_free(ng);
	vsm_group_free(g);
	return rc;
}

static int cmd_destroy(vsm_ctx *ctx, int argc, char **argv)
{
	vsm_group *g = NULL;
	int rc = 0;

	if (argc != 3)
		return usage("group destroy needs GROUP%s", "");
	if (group_find(&g, ctx, argv[2]) < 0)
		return vsmctl_fail();
	if (vsm_group_destroy(g, 0) < 0)
		rc = vsmctl_fail();
	else
		printf("group '%s' destroyed\n", vsm_group_name(g));
	vsm_group_free(g);
	return rc;
}

/* One member's plan as vsmctl edits it: strings it owns. */
typedef struct {
	vsm_group_plan_entry e;
	char *after_buf, *net_buf;
	const char **after;
	bool boot_given, net_given;
} plan_edit;

static plan_edit *edit_for(plan_edit *v, size_t n, const vsm_group *g, const char *member)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(vsm_group_member_name(g, i), member))
			return &v[i];
	return NULL;
}

/* CONTAINER:PRIORITY[:AFTER=C2[,C3...]] */
static int parse_boot(plan_edit *v, size_t n, const vsm_group *g, const char *arg)
{
	char *copy = strdup(arg), *colon, *prio, *after = NULL, *end, *tok;
	plan_edit *p;
	long pr;
	size_t k = 0;
	int rc = 0;

	if (!copy)
		return 1;
	if (!(colon = strchr(copy, ':'))) {
		rc = usage("--boot '%s' is not CONTAINER:PRIORITY[:AFTER=C2]", arg);
		goto out;
	}
	*colon = '\0';
	prio = colon + 1;
	if ((colon = strchr(prio, ':'))) {
		*colon = '\0';
		after = colon + 1;
		if (strncmp(after, "AFTER=", 6) && strncmp(after, "after=", 6)) {
			rc = usage("--boot '%s': the third field is AFTER=CONTAINER", arg);
			goto out;
		}
		after += 6;
	}
	pr = strtol(prio, &end, 10);
	if (!*prio || *end || pr < 0 || pr > 1000000) {
		rc = usage("--boot '%s': PRIORITY is a number 0-1000000", arg);
		goto out;
	}
	if (!(p = edit_for(v, n, g, copy))) {
		fprintf(stderr, "vsmctl: group '%s' has no member '%s'\n", vsm_group_name(g), copy);
		rc = 1;
		goto out;
	}
	p->e.priority = (unsigned int)pr;
	p->boot_given = true;
	free(p->after_buf);
	free(p->after);
	p->after_buf = NULL;
	p->after = NULL;
	p->e.after = NULL;
	p->e.n_after = 0;
	if (after && *after) {
		if (!(p->after_buf = strdup(after)) ||
		    !(p->after = calloc(strlen(after) + 1, sizeof(char *)))) {
			rc = 1;
			goto out;
		}
		for (tok = strtok(p->after_buf, ","); tok; tok = strtok(NULL, ","))
			p->after[k++] = tok;
		p->e.after = p->after;
		p->e.n_after = k;
	}
out:
	free(copy);
	return rc;
}

/* CONTAINER:MAC,NETWORK[,IP/PREFIX,GW,DNS] */
static int parse_net(plan_edit *v, size_t n, const vsm_group *g, const char *arg)
{
	char *colon = strchr(arg, ':'), *f[5] = { NULL }, *slash, *end, member[128];
	plan_edit *p;
	int nf = 0;
	long pre;

	if (!colon || (size_t)(colon - arg) >= sizeof(member))
		return usage("--net '%s' is not CONTAINER:MAC,NETWORK[,IP/PREFIX,GW,DNS]", arg);
	snprintf(member, sizeof(member), "%.*s", (int)(colon - arg), arg);
	if (!(p = edit_for(v, n, g, member))) {
		fprintf(stderr, "vsmctl: group '%s' has no member '%s'\n", vsm_group_name(g),
			member);
		return 1;
	}
	free(p->net_buf);
	/* The MAC has ':' in it: everything after the first ':' is the list. */
	if (!(p->net_buf = strdup(colon + 1)))
		return 1;
	for (char *s = p->net_buf; s && nf < 5; nf++) {
		f[nf] = s;
		if ((s = strchr(s, ',')))
			*s++ = '\0';
	}
	if (nf != 2 && nf != 5)
		return usage("--net '%s': give MAC,NETWORK or MAC,NETWORK,IP/PREFIX,GW,DNS", arg);
	p->e.mac = f[0];
	p->e.network = f[1];
	p->e.ip = NULL;
	p->e.prefix = -1;
	p->e.gateway = p->e.dns = NULL;
	if (nf == 5) {
		if (!(slash = strchr(f[2], '/')))
			return usage("--net '%s': the address is IP/PREFIX", arg);
		*slash = '\0';
		pre = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || pre < 0 || pre > 128)
			return usage("--net '%s': PREFIX is a number 0-128", arg);
		p->e.ip = f[2];
		p->e.prefix = (int)pre;
		p->e.gateway = *f[3] ? f[3] : NULL;
		p->e.dns = *f[4] ? f[4] : NULL;
	}
	p->net_given = true;
	return 0;
}

static int cmd_plan(vsm_ctx *ctx, int argc, char **argv)
{
	vsm_group_plan_entry *out = NULL;
	plan_edit *v = NULL;
	vsm_group *g = NULL;
	size_t n, i, k = 0;
	int a, rc = 0;

	if (argc < 3 || argv[2][0] == '-')
		return usage("group plan needs GROUP%s", "");
	if (group_find(&g, ctx, argv[2]) < 0)
		return vsmctl_fail();
	n = vsm_group_member_count(g);
	if (!(v = calloc(n + 1, sizeof(*v))) || !(out = calloc(n + 1, sizeof(*out)))) {
		rc = 1;
		goto out;
	}
	/* Start from the plan there is: a flag changes only what it names. */
	for (i = 0; i < n; i++) {
		vsm_group_plan_entry e = VSM_GROUP_PLAN_ENTRY_INIT;

		vsm_group_plan_get(g, i, &e);
		v[i].e = e;
	}
	for (a = 3; a < argc && rc == 0; a++) {
		if (!strcmp(argv[a], "--boot") && a + 1 < argc)
			rc = parse_boot(v, n, g, argv[++a]);
		else if (!strcmp(argv[a], "--net") && a + 1 < argc)
			rc = parse_net(v, n, g, argv[++a]);
		else
			rc = usage("unexpected argument '%s'", argv[a]);
	}
	if (rc)
		goto out;
	for (i = 0; i < n; i++)
		if (v[i].boot_given || v[i].net_given)
			out[k++] = v[i].e;
	if (!k) {
		rc = usage("group plan needs --boot or --net%s", "");
		goto out;
	}
	if (vsm_group_plan_set(g, out, k, 0) < 0) {
		rc = vsmctl_fail();
		goto out;
	}
	printf("group '%s': plan set for %zu member(s)\n", vsm_group_name(g), k);
out:
	for (i = 0; v && i < n; i++) {
		free(v[i].after_buf);
		free(v[i].after);
		free(v[i].net_buf);
	}
	free(v);
	free(out);
	vsm_group_free(g);
	return rc;
}

int vsmctl_group_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (!sub)
		return usage("group needs a subcommand%s", "");
	if (!strcmp(sub, "create"))
		return cmd_create(ctx, argc, argv);
	if (!strcmp(sub, "add"))
		return cmd_member(ctx, argc, argv, true);
	if (!strcmp(sub, "remove"))
		return cmd_member(ctx, argc, argv, false);
	if (!strcmp(sub, "list"))
		return cmd_list(ctx, argc, argv, json);
	if (!strcmp(sub, "show"))
		return cmd_show(ctx, argc, argv, json);
	if (!strcmp(sub, "checkpoint"))
		return cmd_checkpoint(ctx, argc, argv);
	if (!strcmp(sub, "revert"))
		return cmd_ckpt_op(ctx, argc, argv, true);
	if (!strcmp(sub, "delete-checkpoint"))
		return cmd_ckpt_op(ctx, argc, argv, false);
	if (!strcmp(sub, "clone"))
		return cmd_clone(ctx, argc, argv);
	if (!strcmp(sub, "plan"))
		return cmd_plan(ctx, argc, argv);
	if (!strcmp(sub, "destroy"))
		return cmd_destroy(ctx, argc, argv);
	return usage("unknown group subcommand '%s'", sub);
}
