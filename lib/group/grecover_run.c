/*
 * vsm_group_recover: restore every member of a group backup chain, make
 * the group again with its plan, attach and deploy the members on a
 * host, and define and start their domains in boot order. Each thing
 * made is journalled (its undo) on the target datastore before the next
 * step, so a failure — or a crash, at the next vsm_ctx_open() — takes
 * the recovery back out; each step is reported to the caller.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vsm/backup.h"
#include "vsm/hypervisor.h"
#include "vsm/recovery.h"
#include "gbackup.h"
#include "grecover.h"
#include "group_int.h"
#include "hyper.h"

#define DEFAULT_TIER_MS 60000u

typedef struct {
	const vsm_group_recover_opts *o;
	vsm_ctx *ctx;
	const char *dir;
	gr_set *target;            /* the chain's last set */
	vsm_container **cs;        /* restored members, in target order */
	bool *deployed;            /* some device of member i is deployed */
	bool *attached;
	bool *defined;             /* its domain was defined */
	vsm_group *g;
	const char *hv_uri;
	const vsm_hypervisor_ops *hv;
	vsm_wf wf;                 /* on the target datastore */
	bool wf_on;
} recovery;

static void step(recovery *rv, const char *member, const char *what, const char *fmt, ...)
	VSM_PRINTF(4, 5);
static void step(recovery *rv, const char *member, const char *what, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	vsm__log(rv->ctx, VSM_LOG_INFO, "group recovery: %s%s%s: %s", member ? member : "",
		 member ? " " : "", what, detail);
	if (rv->o->step)
		rv->o->step(member, what, detail, rv->o->payload);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Journal the undo of something just made: the container or group
 * record @uuid on the target datastore. A crash between the making and
 * this write leaves that one thing behind (vsm_restore and
 * vsm_group_create are each whole or nothing; they return what they
 * made only once it is on the datastore). */
static int journal(recovery *rv, const char *action, const char *uuid)
{
	char arg[128];
	vsm_record *r;
	vsm_dstore *ds;
	int rc;

	vsm__ctx_lock(rv->ctx);
	if ((rc = vsm__ds_get(&ds, rv->ctx, rv->o->datastore)) == 0 &&
	    (rc = vsm__ds_refresh(rv->ctx, ds)) == 0) {
		if (!(r = vsm__ds_find(ds, NULL, uuid)))
			rc = vsm_err(VSM_ESTATE, "group recovery: '%s' vanished from datastore '%s'",
				     uuid, ds->name);
		else if (!strcmp(action, VSM_WF_CONTAINER_DESTROY))
			snprintf(arg, sizeof(arg), "%u %s", r->slot, r->uuid);
		else
			snprintf(arg, sizeof(arg), "%s", r->uuid);
		if (rc == 0 && !rv->wf_on &&
		    (rc = vsm__wf_begin(&rv->wf, rv->ctx, "group-recover", ds->name,
					rv->target->group)) == 0)
			rv->wf_on = true;
		if (rc == 0)
			rc = vsm__wf_undo(&rv->wf, action, arg);
	}
	vsm__ctx_unlock(rv->ctx);
	return rc;
}

/* Restore member @i from the files of @chain. */
static int restore_member(recovery *rv, gr_set **chain, size_t len, size_t i)
{
	const gr_member *m = &rv->target->members[i];
	vsm_restore_opts ro = VSM_RESTORE_OPTS_INIT;
	const char **files = calloc(len, sizeof(*files));
	char **paths = calloc(len, sizeof(*paths));
	size_t k, j;
	int rc = 0;

	if (!files || !paths) {
		free(files);
		free(paths);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	for (k = 0; k < len && rc == 0; k++) {
		const gr_member *f = NULL;

		for (j = 0; j < chain[k]->n_members; j++)
			if (!strcmp(chain[k]->members[j].uuid, m->uuid))
				f = &chain[k]->members[j];
		if (!f)
			rc = vsm_err(VSM_EINVAL, "group backup '%s' has no backup of member '%s', "
				     "which '%s' has: the member joined the group after it; take "
				     "a full group backup", chain[k]->file, m->name,
				     rv->target->file);
		else if (asprintf(&paths[k], "%s/%s", rv->dir, f->file) < 0)
			rc = vsm_err(VSM_ENOMEM, "out of memory");
		files[k] = paths[k];
	}
	if (rc == 0) {
		ro.name = m->name;
		rc = vsm_restore(&rv->cs[i], rv->ctx, files, len, rv->o->datastore, &ro);
	}
	if (rc == 0)
		rc = journal(rv, VSM_WF_CONTAINER_DESTROY, vsm_container_uuid(rv->cs[i]));
	if (rc == 0)
		step(rv, m->name, "restore", "restored from %zu backup file(s) onto datastore '%s'",
		     len, rv->o->datastore);
	for (k = 0; k < len; k++)
		free(paths[k]);
	free(paths);
	free(files);
	return rc;
}

/* The boot order: members sorted by priority (lower first), a member
 * after those it names. Tier t holds the members whose order[] is t. */
static int boot_tiers(recovery *rv, size_t *tier, size_t *n_tiers)
{
	const gr_set *s = rv->target;
	size_t n = s->n_members, i, j, k, done = 0, t = 0;
	bool *placed = calloc(n, sizeof(*placed));

	if (!placed)
		return vsm_err(VSM_ENOMEM, "out of memory");
	while (done < n) {
		unsigned int best = UINT32_MAX;
		size_t added = 0;
		bool *now = calloc(n, sizeof(*now));

		if (!now) {
			free(placed);
			return vsm_err(VSM_ENOMEM, "out of memory");
		}
		/* The lowest priority among members whose dependencies boot
		 * in earlier tiers. */
		for (i = 0; i < n; i++) {
			bool ready = !placed[i];

			for (j = 0; ready && j < s->members[i].n_after; j++)
				for (k = 0; k < n; k++)
					if (!strcmp(s->members[k].name, s->members[i].after[j]) &&
					    !placed[k])
						ready = false;
			if (ready && s->members[i].priority < best)
				best = s->members[i].priority;
			now[i] = ready;
		}
		for (i = 0; i < n; i++)
			if (now[i] && s->members[i].priority == best) {
				tier[i] = t;
				added++;
			}
		for (i = 0; i < n; i++)
			if (now[i] && s->members[i].priority == best)
				placed[i] = true;
		free(now);
		if (!added) {
			free(placed);
			return vsm_err(VSM_EINVAL, "group backup '%s': the boot order has a cycle",
				       s->file);
		}
		done += added;
		t++;
	}
	free(placed);
	*n_tiers = t;
	return 0;
}

static char *xml_escaped(const char *s)
{
	char *out = NULL;

	return s && vsm_disk_xml_escape(&out, s) == 0 ? out : NULL;
}

/* The plan's IP settings, for the guest, in the domain's metadata. */
static char *net_metadata(const gr_set *s, const gr_member *m)
{
	char *g = xml_escaped(s->group), *ip = xml_escaped(m->ip ? m->ip : "");
	char *gw = xml_escaped(m->gateway ? m->gateway : "");
	char *dns = xml_escaped(m->dns ? m->dns : ""), *out = NULL;

	if (g && ip && gw && dns &&
	    asprintf(&out, "<vsm:recovery xmlns:vsm='https://libvsm.org/xmlns/recovery/1' "
		     "group='%s' priority='%u'><vsm:net ip='%s' prefix='%d' gateway='%s' "
		     "dns='%s'/></vsm:recovery>", g, m->priority, ip, m->ip ? m->prefix : -1,
		     gw, dns) < 0)
		out = NULL;
	free(g);
	free(ip);
	free(gw);
	free(dns);
	return out;
}

/* Define member @i's domain: its deployed devices' disks, its network. */
static int define_domain(recovery *rv, size_t i)
{
	const gr_member *m = &rv->target->members[i];
	vsm_hv_domain_spec spec;
	vsm_container *c = rv->cs[i];
	size_t n = vsm_container_device_count(c), d;
	const char **disks = calloc(n, sizeof(*disks));
	char *meta = net_metadata(rv->target, m);
	int rc;

	if (!disks || !meta) {
		free(disks);
		free(meta);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	memset(&spec, 0, sizeof(spec));
	spec.version = VSM_HV_DOMAIN_SPEC_VERSION;
	for (d = 0; d < n; d++)
		disks[d] = vsm_locator_disk_xml(vsm_device_locator(vsm_container_device(c, d)));
	spec.name = m->name;
	spec.disks_xml = disks;
	spec.n_disks = n;
	spec.mac = m->mac;
	spec.network = m->network;
	spec.metadata_xml = meta;
	if ((rc = vsm__hv_define(rv->ctx, rv->hv_uri, &spec)) == 0) {
		rv->defined[i] = true;
		step(rv, m->name, "define", "domain defined on '%s' (%zu disks%s%s)", rv->hv_uri, n,
		     m->mac ? ", interface " : "", m->mac ? m->mac : "");
	}
	free(disks);
	free(meta);
	return rc;
}

/* Start the members tier by tier, each tier waiting for its domains. */
static int start_domains(recovery *rv)
{
	size_t n = rv->target->n_members, *tier = calloc(n, sizeof(*tier)), t, n_tiers = 0, i;
	unsigned int bound = rv->o->tier_timeout_ms ? rv->o->tier_timeout_ms : DEFAULT_TIER_MS;
	int rc;

	if (!tier)
		return vsm_err(VSM_ENOMEM, "out of memory");
	if ((rc = boot_tiers(rv, tier, &n_tiers)) < 0)
		goto out;
	for (i = 0; i < n && rc == 0; i++)
		rc = define_domain(rv, i);
	for (t = 0; t < n_tiers && rc == 0; t++) {
		int64_t until = mono_ms() + bound;
		bool all;

		step(rv, NULL, "tier", "starting boot tier %zu of %zu", t + 1, n_tiers);
		for (i = 0; i < n && rc == 0; i++)
			if (tier[i] == t && (rc = vsm__hv_start(rv->ctx, rv->hv_uri,
								   rv->target->members[i].name)) == 0)
				step(rv, rv->target->members[i].name, "start", "domain started");
		for (all = false; rc == 0 && !all;) {
			all = true;
			for (i = 0; i < n && rc >= 0; i++) {
				if (tier[i] != t)
					continue;
				rc = vsm__hv_state(rv->ctx, rv->hv_uri, rv->target->members[i].name);
				if (rc >= 0 && rc != VSM_HV_RUNNING)
					all = false;
			}
			if (rc > 0)
				rc = 0;
			if (rc == 0 && !all) {
				if (mono_ms() > until) {
					rc = vsm_err(VSM_EBUSY, "boot tier %zu did not run within %u ms",
						     t + 1, bound);
					break;
				}
				usleep(20000);
			}
		}
		for (i = 0; i < n && rc == 0; i++)
			if (tier[i] == t)
				step(rv, rv->target->members[i].name, "running", "domain runs");
	}
out:
	free(tier);
	return rc;
}

/* Undo what the recovery made, newest first; failures are logged. */
static void undo(recovery *rv)
{
	size_t n = rv->target->n_members, i, d;

	for (i = 0; i < n; i++)
		if (rv->defined[i] && vsm__hv_remove(rv->ctx, rv->hv_uri, rv->target->members[i].name) < 0)
			vsm__log(rv->ctx, VSM_LOG_WARN, "group recovery: removing domain '%s': %s",
				 rv->target->members[i].name, vsm_error_last()->message);
	for (i = 0; i < n; i++) {
		vsm_container *c = rv->cs[i];

		if (!c)
			continue;
		for (d = 0; rv->deployed[i] && d < vsm_container_device_count(c); d++)
			if (vsm_device_locator(vsm_container_device(c, d)))
				vsm_device_undeploy(c, vsm_device_name(vsm_container_device(c, d)), 0);
		if (rv->attached[i])
			vsm_detach(c, 0);
	}
	/* The journal removes the group record, then the containers (its
	 * steps run newest first). */
	if (rv->wf_on) {
		vsm__ctx_lock(rv->ctx);
		vsm__wf_abort(&rv->wf);
		vsm__ctx_unlock(rv->ctx);
		rv->wf_on = false;
	}
}

static int plan_set(recovery *rv)
{
	const gr_set *s = rv->target;
	vsm_group_plan_entry *e = calloc(s->n_members, sizeof(*e));
	size_t i;
	int rc;

	if (!e)
		return vsm_err(VSM_ENOMEM, "out of memory");
	for (i = 0; i < s->n_members; i++) {
		vsm_group_plan_entry x = VSM_GROUP_PLAN_ENTRY_INIT;
		const gr_member *m = &s->members[i];

		x.member = m->name;
		x.priority = m->priority;
		x.after = (const char *const *)m->after;
		x.n_after = m->n_after;
		x.mac = m->mac;
		x.network = m->network;
		x.ip = m->ip;
		x.prefix = m->prefix;
		x.gateway = m->gateway;
		x.dns = m->dns;
		e[i] = x;
	}
	rc = vsm_group_plan_set(rv->g, e, s->n_members, 0);
	free(e);
	return rc;
}

static int run(recovery *rv, gr_set **chain, size_t len)
{
	vsm_group_opts go = VSM_GROUP_OPTS_INIT;
	size_t n = rv->target->n_members, i, d;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++)
		rc = restore_member(rv, chain, len, i);
	if (rc < 0)
		return rc;
	go.datastore = rv->o->datastore;
	if ((rc = vsm_group_create(&rv->g, rv->ctx,
				   rv->o->name ? rv->o->name : rv->target->group, rv->cs, n,
				   &go)) < 0)
		return rc;
	if ((rc = journal(rv, VSM_WF_UUID_FREE, vsm_group_uuid(rv->g))) < 0)
		return rc;
	step(rv, NULL, "group", "group '%s' made on datastore '%s' with %zu members",
	     vsm_group_name(rv->g), rv->o->datastore, n);
	if ((rc = plan_set(rv)) < 0)
		return rc;
	step(rv, NULL, "plan", "recovery plan set");
	if (!rv->o->host)
		return 0;
	for (i = 0; i < n && rc == 0; i++) {
		vsm_container *c = rv->cs[i];

		if ((rc = vsm_attach(c, rv->o->host, 0)) < 0)
			break;
		rv->attached[i] = true;
		step(rv, vsm_container_name(c), "attach", "attached to host '%s'", rv->o->host);
		for (d = 0; d < vsm_container_device_count(c) && rc == 0; d++) {
			vsm_deploy_opts dop = VSM_DEPLOY_OPTS_INIT;
			vsm_locator *loc = NULL;
			char target[16];
			const char *dev = vsm_device_name(vsm_container_device(c, d));

			/* Targets in device order: the first device boots. */
			snprintf(target, sizeof(target), "vd%c", (char)('a' + d % 26));
			dop.target = target;
			if ((rc = vsm_device_deploy(&loc, c, dev, &dop)) == 0) {
				rv->deployed[i] = true;
				step(rv, vsm_container_name(c), "deploy", "device '%s' deployed (%s)",
				     dev, vsm_locator_uri(loc));
			}
			vsm_locator_free(loc);
		}
		if (rc == 0)
			rc = vsm_container_refresh(c);
	}
	if (rc < 0 || !(rv->o->flags & VSM_GROUP_RECOVER_START))
		return rc;
	return start_domains(rv);
}

VSM_API int vsm_group_recover(vsm_group **out, vsm_ctx *ctx, const char *dir,
			      const vsm_group_recover_opts *opts)
{
	gr_set *sets = NULL, **chain = NULL;
	size_t n_sets = 0, len = 0, i;
	recovery rv = {0};
	vsm_host *host = NULL;
	int rc;

	vsm__error_reset();
	if (out)
		*out = NULL;
	if (!ctx || !dir || !opts || !opts->datastore)
		return vsm_err(VSM_EINVAL, "vsm_group_recover: NULL argument or no datastore");
	if (opts->version == 0 || opts->version > VSM_GROUP_RECOVER_OPTS_VERSION)
		return vsm_err(VSM_EVERSION, "vsm_group_recover_opts version %u is not supported",
			       opts->version);
	if (opts->flags & ~VSM_GROUP_RECOVER_START)
		return vsm_err(VSM_EINVAL, "vsm_group_recover: unknown flags 0x%x", opts->flags);
	rv.o = opts;
	rv.ctx = ctx;
	rv.dir = dir;
	if (opts->flags & VSM_GROUP_RECOVER_START) {
		/* Everything the start needs is checked before anything is made. */
		if (!opts->host)
			return vsm_err(VSM_EINVAL, "vsm_group_recover: starting the domains needs "
				       "a host");
		if ((rc = vsm_host_lookup(&host, ctx, opts->host)) < 0)
			return rc;
		if (!vsm_host_hypervisor_uri(host)) {
			rc = vsm_err(VSM_ENOTSUP, "host '%s' has no hypervisor URI: its domains "
				     "cannot be started", opts->host);
			goto out;
		}
		rv.hv_uri = vsm_host_hypervisor_uri(host);
		if ((rc = vsm__hv_for(ctx, rv.hv_uri, &rv.hv)) < 0)
			goto out;
	}
	if ((rc = gr_sets_load(&sets, &n_sets, dir)) < 0 ||
	    (rc = gr_chain(&chain, &len, sets, n_sets, opts->point, dir)) < 0)
		goto out;
	rv.target = chain[len - 1];
	if (!(rv.cs = calloc(rv.target->n_members, sizeof(*rv.cs))) ||
	    !(rv.deployed = calloc(rv.target->n_members, sizeof(bool))) ||
	    !(rv.attached = calloc(rv.target->n_members, sizeof(bool))) ||
	    !(rv.defined = calloc(rv.target->n_members, sizeof(bool)))) {
		rc = vsm_err(VSM_ENOMEM, "out of memory");
		goto out;
	}
	step(&rv, NULL, "chain", "group '%s' at point '%s': %zu backup set(s)",
	     rv.target->group, rv.target->point, len);
	rc = run(&rv, chain, len);
	/* The commit point: the journal entry goes. Left in place it would
	 * undo the recovery at the next open, so failing to end it fails. */
	if (rc == 0 && rv.wf_on) {
		vsm__ctx_lock(ctx);
		if ((rc = vsm__wf_end(&rv.wf)) == 0)
			rv.wf_on = false;
		vsm__ctx_unlock(ctx);
	}
	if (rc < 0) {
		vsm__saved_error saved;

		vsm__error_save(&saved);
		undo(&rv);
		vsm__error_restore(&saved);
		goto out;
	}
	if (out) {
		*out = rv.g;
		rv.g = NULL;
	}
out:
	vsm_group_free(rv.g);
	for (i = 0; rv.cs && rv.target && i < rv.target->n_members; i++)
		vsm_container_free(rv.cs[i]);
	free(rv.cs);
	free(rv.deployed);
	free(rv.attached);
	free(rv.defined);
	free(chain);
	for (i = 0; i < n_sets; i++)
		gr_set_free(&sets[i]);
	free(sets);
	vsm_host_free(host);
	return rc;
}
