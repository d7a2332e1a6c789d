/*
 * The built-in hypervisor driver (include/vsm/hypervisor.h) over libvirt:
 * defines, starts, pauses, resumes and removes domains on any URI libvirt
 * opens with a scheme listed below, and builds the domain XML for a
 * vsm_hv_domain_spec. Each op opens its own connection and closes it
 * before returning, so the driver keeps no state and any thread may call
 * it; a connection costs a round trip to the daemon, which is nothing
 * beside defining or starting a domain.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "lv-int.h"
#include "../common/diskxml.h"

#define WHO "libvirt hypervisor driver"

/* Schemes of the libvirt drivers whose domains the XML below suits
 * (hvm guests), with qemu's remote transports. "libvirt://" is the
 * storage backend's, not a hypervisor's. */
static const char *const schemes[] = {
	"qemu", "qemu+unix", "qemu+ssh", "qemu+libssh", "qemu+libssh2", "qemu+tcp",
	"qemu+tls", "test", "xen", "lxc", NULL
};

static int hv_handles(const char *uri)
{
	const char *sep;
	size_t len, i;

	if (!uri || !(sep = strstr(uri, "://")))
		return 0;
	len = (size_t)(sep - uri);
	for (i = 0; schemes[i]; i++)
		if (strlen(schemes[i]) == len && !strncmp(schemes[i], uri, len))
			return 1;
	return 0;
}

/* --- checks of what goes into the XML --- */

#define NAME_MAX_LEN 64
#define MEM_DEFAULT_MIB 128
#define MEM_MIN_MIB 16
#define MEM_MAX_MIB (UINT64_C(16) << 20) /* 16 TiB */
#define VCPUS_MAX 4096

/* A domain name we write and look up: 1-64 of [A-Za-z0-9._-], starting
 * with a letter or digit (libvirt takes more; what it takes differs by
 * driver, and names reach file names on the host). */
static int name_check(const char *name)
{
	size_t i;

	if (!name || !name[0])
		return vsm_error_set(VSM_EINVAL, "no domain name given");
	for (i = 0; name[i]; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			break;
	}
	if (name[i] || i > NAME_MAX_LEN)
		return vsm_error_set(VSM_EINVAL, "domain name '%s' is not 1-%d characters of "
				     "[A-Za-z0-9._-] starting with a letter or digit",
				     name, NAME_MAX_LEN);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* xx:xx:xx:xx:xx:xx, unicast (libvirt refuses a multicast MAC). */
static int mac_check(const char *dom, const char *mac)
{
	size_t i;

	for (i = 0; i < 17; i++) {
		if (i % 3 == 2 ? mac[i] != ':' : hexval(mac[i]) < 0)
			break;
	}
	if (i < 17 || mac[17])
		return vsm_error_set(VSM_EINVAL, "domain '%s': MAC address '%s' is not "
				     "xx:xx:xx:xx:xx:xx", dom, mac);
	if (hexval(mac[1]) & 1)
		return vsm_error_set(VSM_EINVAL, "domain '%s': MAC address '%s' is multicast",
				     dom, mac);
	return 0;
}

/* @xml is one well-formed element named @want (NULL: any name, which
 * must then be in a namespace), so that nothing but that element reaches
 * the domain XML. */
static int element_check(const char *dom, const char *what, const char *xml,
			 const char *want)
{
	xmlDocPtr doc;
	xmlNodePtr root;
	int rc = 0;

	/* No entity substitution, no network: the text is checked, not used. */
	doc = xmlReadMemory(xml, (int)strnlen(xml, 1 << 30), NULL, NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc || !(root = xmlDocGetRootElement(doc)))
		rc = vsm_error_set(VSM_EINVAL, "domain '%s': %s is not well-formed XML",
				   dom, what);
	else if (doc->intSubset || doc->extSubset || !strncmp(xml, "<?", 2))
		rc = vsm_error_set(VSM_EINVAL, "domain '%s': %s has a DOCTYPE or an XML "
				   "declaration; give the element alone", dom, what);
	else if (want && strcmp((const char *)root->name, want) != 0)
		rc = vsm_error_set(VSM_EINVAL, "domain '%s': %s is a <%s> element, not <%s>",
				   dom, what, (const char *)root->name, want);
	else if (!want && (!root->ns || !root->ns->href || !root->ns->href[0]))
		rc = vsm_error_set(VSM_EINVAL, "domain '%s': %s element <%s> has no "
				   "namespace (libvirt keeps only namespaced metadata)",
				   dom, what, (const char *)root->name);
	xmlFreeDoc(doc);
	return rc;
}

static int spec_check(const vsm_hv_domain_spec *spec)
{
	int rc;
	size_t i;

	if (!spec)
		return vsm_error_set(VSM_EINVAL, "no domain spec given");
	if (spec->version == 0 || spec->version > VSM_HV_DOMAIN_SPEC_VERSION)
		return vsm_error_set(VSM_EVERSION, "domain spec version %u is not supported "
				     "(this library knows 1..%d)", spec->version,
				     VSM_HV_DOMAIN_SPEC_VERSION);
	if ((rc = name_check(spec->name)) < 0)
		return rc;
	if (spec->memory_mib && (spec->memory_mib < MEM_MIN_MIB || spec->memory_mib > MEM_MAX_MIB))
		return vsm_error_set(VSM_EINVAL, "domain '%s': memory %llu MiB is outside "
				     "%d..%llu MiB", spec->name,
				     (unsigned long long)spec->memory_mib, MEM_MIN_MIB,
				     (unsigned long long)MEM_MAX_MIB);
	if (spec->vcpus > VCPUS_MAX)
		return vsm_error_set(VSM_EINVAL, "domain '%s': %u vCPUs is outside 1..%d",
				     spec->name, spec->vcpus, VCPUS_MAX);
	if (spec->n_disks && !spec->disks_xml)
		return vsm_error_set(VSM_EINVAL, "domain '%s': %zu disks but no disk XML",
				     spec->name, spec->n_disks);
	for (i = 0; i < spec->n_disks; i++) {
		char what[32];

		snprintf(what, sizeof(what), "disk %zu", i);
		if (!spec->disks_xml[i])
			return vsm_error_set(VSM_EINVAL, "domain '%s': %s is NULL", spec->name,
					     what);
		if ((rc = element_check(spec->name, what, spec->disks_xml[i], "disk")) < 0)
			return rc;
	}
	if (spec->mac) {
		if ((rc = mac_check(spec->name, spec->mac)) < 0)
			return rc;
		if (!spec->network || !spec->network[0] ||
		    !strcmp(spec->network, "bridge:"))
			return vsm_error_set(VSM_EINVAL, "domain '%s': an interface (MAC %s) "
					     "needs a network or \"bridge:NAME\"", spec->name,
					     spec->mac);
	}
	if (spec->metadata_xml &&
	    (rc = element_check(spec->name, "metadata", spec->metadata_xml, NULL)) < 0)
		return rc;
	return 0;
}

/* --- the domain XML --- */

/* libvirt's <domain type=...> for the hypervisor behind @conn. For QEMU
 * it is "qemu" (TCG), never "kvm", even where /dev/kvm is there: the
 * same definition then runs the same way on every host and in CI
 * without /dev/kvm; a caller who wants KVM registers its own driver. */
static int domain_type(virConnectPtr conn, const char *uri, char *out, size_t size)
{
	const char *t = virConnectGetType(conn);
	size_t i;

	if (!t)
		return lv_error("cannot get the hypervisor type of '%s'", uri);
	for (i = 0; t[i] && i + 1 < size; i++)
		out[i] = (char)(t[i] >= 'A' && t[i] <= 'Z' ? t[i] - 'A' + 'a' : t[i]);
	out[i] = '\0';
	return 0;
}

static void put_escaped(FILE *f, const char *s, int *rc, const char *dom, const char *what)
{
	char *e = NULL;

	if (*rc < 0)
		return;
	if ((*rc = vsm__diskxml_escape(&e, s, what)) < 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", vsm_error_last()->message);
		*rc = vsm_error_set(VSM_EINVAL, "domain '%s': %s", dom, why);
		return;
	}
	fputs(e, f);
	free(e);
}

static int build_xml(char **out, const vsm_hv_domain_spec *spec, const char *type)
{
	uint64_t mem = spec->memory_mib ? spec->memory_mib : MEM_DEFAULT_MIB;
	unsigned int vcpus = spec->vcpus ? spec->vcpus : 1;
	const char *n = spec->name;
	char *buf = NULL;
	size_t size = 0, i;
	int rc = 0;
	FILE *f;

	*out = NULL;
	if (!(f = open_memstream(&buf, &size)))
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	fprintf(f, "<domain type='");
	put_escaped(f, type, &rc, n, "domain type");
	fprintf(f, "'>\n  <name>");
	put_escaped(f, n, &rc, n, "name");
	fprintf(f, "</name>\n  <memory unit='MiB'>%llu</memory>\n  <vcpu>%u</vcpu>\n",
		(unsigned long long)mem, vcpus);
	if (spec->metadata_xml)
		fprintf(f, "  <metadata>\n%s\n  </metadata>\n", spec->metadata_xml);
	/* hvm on x86_64: what the test driver knows and qemu runs under TCG;
	 * the emulator and machine type are libvirt's defaults for it. */
	fprintf(f, "  <os>\n    <type arch='x86_64'>hvm</type>\n    <boot dev='hd'/>\n"
		"  </os>\n  <features><acpi/></features>\n  <devices>\n");
	for (i = 0; i < spec->n_disks; i++)
		fprintf(f, "%s\n", spec->disks_xml[i]);
	if (spec->mac) {
		bool bridge = !strncmp(spec->network, "bridge:", 7);

		fprintf(f, "    <interface type='%s'>\n      <mac address='",
			bridge ? "bridge" : "network");
		put_escaped(f, spec->mac, &rc, n, "MAC");
		fprintf(f, "'/>\n      <source %s='", bridge ? "bridge" : "network");
		put_escaped(f, bridge ? spec->network + 7 : spec->network, &rc, n, "network");
		fprintf(f, "'/>\n      <model type='virtio'/>\n    </interface>\n");
	}
	/* No graphics, no balloon: a headless guest that TCG starts fast. */
	fprintf(f, "    <memballoon model='none'/>\n  </devices>\n</domain>\n");
	if (fclose(f) != 0) {
		free(buf);
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	}
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

/* --- connections and lookups --- */

/* Connect to @uri, and look @name up when @dom is given. With @missing_ok
 * a domain that does not exist leaves *@dom NULL and returns 0. On
 * failure nothing stays open. */
static int open_dom(virConnectPtr *conn, virDomainPtr *dom, const char *uri, const char *name,
		    bool missing_ok)
{
	int rc;

	*conn = NULL;
	if (dom)
		*dom = NULL;
	if ((rc = name_check(name)) < 0)
		return rc;
	if ((rc = lv_connect(conn, uri, WHO)) < 0)
		return rc;
	if (!dom)
		return 0;
	if ((*dom = virDomainLookupByName(*conn, name)))
		return 0;
	if (missing_ok && lv_last_code() == VIR_ERR_NO_DOMAIN) {
		virResetLastError();
		return 0;
	}
	rc = lv_error("domain '%s'", name);
	virConnectClose(*conn);
	*conn = NULL;
	return rc;
}

static void close_dom(virConnectPtr conn, virDomainPtr dom)
{
	if (dom)
		virDomainFree(dom);
	if (conn)
		virConnectClose(conn);
}

/* --- the ops --- */

static int hv_define(const char *uri, const vsm_hv_domain_spec *spec)
{
	virConnectPtr conn;
	virDomainPtr dom;
	char type[32], *xml = NULL;
	int rc;

	if ((rc = spec_check(spec)) < 0)
		return rc;
	if ((rc = open_dom(&conn, &dom, uri, spec->name, true)) < 0)
		return rc;
	/* Looked up first: libvirt would otherwise take a definition without
	 * a UUID as an update of the domain of that name. */
	if (dom) {
		rc = vsm_error_set(VSM_EEXISTS, "domain '%s' already exists", spec->name);
		goto out;
	}
	if ((rc = domain_type(conn, uri, type, sizeof(type))) < 0 ||
	    (rc = build_xml(&xml, spec, type)) < 0)
		goto out;
	if (!(dom = virDomainDefineXML(conn, xml)))
		rc = lv_error("domain '%s': cannot define it", spec->name);
out:
	free(xml);
	close_dom(conn, dom);
	return rc;
}

static int hv_start(const char *uri, const char *name)
{
	virConnectPtr conn;
	virDomainPtr dom;
	int rc, active;

	if ((rc = open_dom(&conn, &dom, uri, name, false)) < 0)
		return rc;
	/* Starting a running domain is done already (a recovery that runs
	 * twice must not fail on the domains the first run started). */
	if ((active = virDomainIsActive(dom)) < 0)
		rc = lv_error("domain '%s'", name);
	else if (active == 0 && virDomainCreate(dom) < 0)
		rc = lv_error("domain '%s': cannot start it", name);
	close_dom(conn, dom);
	return rc;
}

static int map_state(int st)
{
	switch (st) {
	case VIR_DOMAIN_RUNNING:
	case VIR_DOMAIN_BLOCKED: /* running, waiting on a resource */
		return VSM_HV_RUNNING;
	case VIR_DOMAIN_PAUSED:
		return VSM_HV_PAUSED;
	case VIR_DOMAIN_SHUTOFF:
		return VSM_HV_SHUTOFF;
	default: /* no state, shutting down, crashed, suspended to RAM */
		return VSM_HV_OTHER;
	}
}

static int get_state(virDomainPtr dom, const char *name)
{
	int st = 0, reason = 0;

	if (virDomainGetState(dom, &st, &reason, 0) < 0)
		return lv_error("domain '%s': cannot get its state", name);
	return map_state(st);
}

static int hv_state(const char *uri, const char *name)
{
	virConnectPtr conn;
	virDomainPtr dom;
	int rc;

	if ((rc = open_dom(&conn, &dom, uri, name, true)) < 0)
		return rc;
	rc = dom ? get_state(dom, name) : VSM_HV_NONE;
	close_dom(conn, dom);
	return rc;
}

/* Pause and resume are idempotent: fencing a group pauses each domain
 * once, and a retry after a partial failure pauses the rest. */
static int hv_pause(const char *uri, const char *name)
{
	virConnectPtr conn;
	virDomainPtr dom;
	int rc;

	if ((rc = open_dom(&conn, &dom, uri, name, false)) < 0)
		return rc;
	if ((rc = get_state(dom, name)) >= 0) {
		if (rc == VSM_HV_PAUSED)
			rc = 0;
		else if (rc != VSM_HV_RUNNING)
			rc = vsm_error_set(VSM_ESTATE, "domain '%s' is not running; cannot "
					   "pause it", name);
		else if (virDomainSuspend(dom) < 0)
			rc = lv_error("domain '%s': cannot pause it", name);
		else
			rc = 0;
	}
	close_dom(conn, dom);
	return rc;
}

static int hv_resume(const char *uri, const char *name)
{
	virConnectPtr conn;
	virDomainPtr dom;
	int rc;

	if ((rc = open_dom(&conn, &dom, uri, name, false)) < 0)
		return rc;
	if ((rc = get_state(dom, name)) >= 0) {
		if (rc == VSM_HV_RUNNING)
			rc = 0;
		else if (rc != VSM_HV_PAUSED)
			rc = vsm_error_set(VSM_ESTATE, "domain '%s' is not paused; cannot "
					   "resume it", name);
		else if (virDomainResume(dom) < 0)
			rc = lv_error("domain '%s': cannot resume it", name);
		else
			rc = 0;
	}
	close_dom(conn, dom);
	return rc;
}

/* Undefine with what a domain of ours may have left beside its
 * definition; a driver that does not know a flag refuses it, so the
 * flags are dropped until one is accepted. */
static int undefine(virDomainPtr dom, const char *name)
{
	static const unsigned int tries[] = {
		VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
		VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM,
		VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
		0,
	};
	size_t i;

	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		int code;

		if (virDomainUndefineFlags(dom, tries[i]) == 0)
			return 0;
		code = lv_last_code();
		if (code == VIR_ERR_NO_DOMAIN) { /* gone meanwhile */
			virResetLastError();
			return 0;
		}
		if (code != VIR_ERR_INVALID_ARG && code != VIR_ERR_NO_SUPPORT &&
		    code != VIR_ERR_ARGUMENT_UNSUPPORTED)
			break;
	}
	return lv_error("domain '%s': cannot undefine it", name);
}

static int hv_remove(const char *uri, const char *name)
{
	virConnectPtr conn;
	virDomainPtr dom;
	int rc, active, persistent;

	if ((rc = open_dom(&conn, &dom, uri, name, true)) < 0)
		return rc;
	if (!dom)
		goto out;
	if ((active = virDomainIsActive(dom)) < 0) {
		rc = lv_error("domain '%s'", name);
		goto out;
	}
	/* Stopped meanwhile (OPERATION_INVALID) is what we wanted. */
	if (active == 1 && virDomainDestroy(dom) < 0) {
		if (lv_last_code() != VIR_ERR_OPERATION_INVALID &&
		    lv_last_code() != VIR_ERR_NO_DOMAIN) {
			rc = lv_error("domain '%s': cannot stop it", name);
			goto out;
		}
		virResetLastError();
	}
	/* A transient domain is gone once stopped. */
	if ((persistent = virDomainIsPersistent(dom)) < 0) {
		if (lv_last_code() == VIR_ERR_NO_DOMAIN)
			virResetLastError();
		else
			rc = lv_error("domain '%s'", name);
		goto out;
	}
	if (persistent == 1)
		rc = undefine(dom, name);
out:
	close_dom(conn, dom);
	return rc;
}

static int hv_xml(const char *uri, const char *name, char **xml)
{
	virConnectPtr conn;
	virDomainPtr dom;
	int rc;

	if (!xml)
		return vsm_error_set(VSM_EINVAL, "domain '%s': no place for the XML",
				     name ? name : "");
	*xml = NULL;
	if ((rc = open_dom(&conn, &dom, uri, name, false)) < 0)
		return rc;
	/* libvirt's strings are freed with free(), as the caller does. */
	if (!(*xml = virDomainGetXMLDesc(dom, 0)))
		rc = lv_error("domain '%s': cannot get its XML", name);
	close_dom(conn, dom);
	return rc;
}

static const vsm_hypervisor_ops hv_ops = {
	.version = VSM_HYPERVISOR_OPS_VERSION,
	.name = "libvirt",
	.handles = hv_handles,
	.domain_define = hv_define,
	.domain_start = hv_start,
	.domain_state = hv_state,
	.domain_pause = hv_pause,
	.domain_resume = hv_resume,
	.domain_remove = hv_remove,
	.domain_xml = hv_xml,
	.block_copy_start = lv_hv_copy_start,
	.block_copy_wait = lv_hv_copy_wait,
	.block_copy_end = lv_hv_copy_end,
	.block_copy_cancel = lv_hv_copy_cancel,
	.disk_source = lv_hv_disk_source,
};

const vsm_hypervisor_ops *vsm__libvirt_hypervisor_ops(void)
{
	return &hv_ops;
}
