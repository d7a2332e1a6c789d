/*
 * The hypervisor seam (include/vsm/hypervisor.h): registration checks,
 * the choice of a driver for a URI (newest first), and the built-in
 * libvirt driver against libvirt's in-process test driver.
 *
 * test:///default is one state per process, shared by every connection
 * open at the same time, and dropped when the last one closes: the
 * fixture keeps a connection of its own open for the whole case, so the
 * driver's short-lived connections and the test's checks see the same
 * domains. Each case runs in its own process (Check's fork mode), so
 * each starts from the driver's fresh state: one domain, "test",
 * running.
 *
 * With HV_REAL_URI set (real-daemon.sh: qemu:///session of its own
 * unprivileged libvirtd) it runs one case there instead: a TCG domain
 * with a disk and metadata defined, started, paused, resumed and removed
 * through the driver. No interface: a session daemon has no network.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "vsm/vsm.h"
#include "vsm/hypervisor.h"
#include "backends/libvirt/libvirt-backend.h"
#include "hyper.h"

#define TEST_URI "test:///default"
#define MAC "52:54:00:12:34:56"
#define META "<ip:plan xmlns:ip='urn:x-vsm:test'><ip:addr>10.0.0.5/24</ip:addr></ip:plan>"
#define DISK "<disk type='file' device='disk'><driver name='qemu' type='raw'/>" \
	     "<source file='/var/lib/vsm/web-root.raw'/><target dev='vda' bus='virtio'/></disk>"

static virConnectPtr tc;
static vsm_ctx *ctx;
static char tmpdir[256];

static void quiet(void *p, virErrorPtr e)
{
	(void)p;
	(void)e;
}

static const char *emsg(void)
{
	const vsm_error *e = vsm_error_last();

	return e && e->message ? e->message : "(no message)";
}

#define ck_assert_rc(call, want)                                                       \
	do {                                                                           \
		int rc_ = (call);                                                      \
		ck_assert_msg(rc_ == (want), "%s = %d, want %d: %s", #call, rc_, (want), \
			      rc_ < 0 ? emsg() : "");                                  \
	} while (0)

#define ck_assert_msg_has(needle)                                                      \
	ck_assert_msg(strstr(emsg(), (needle)) != NULL, "message '%s' lacks '%s'", emsg(), \
		      (needle))

static void setup(void)
{
	vsm_ctx_opts o = VSM_CTX_OPTS_INIT;

	virSetErrorFunc(NULL, quiet);
	tc = virConnectOpen(TEST_URI);
	ck_assert_msg(tc != NULL, "cannot connect: %s", virGetLastErrorMessage());
	snprintf(tmpdir, sizeof(tmpdir), "%s/vsm-hv.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	o.state_dir = tmpdir;
	ck_assert_rc(vsm_ctx_open(&ctx, &o), 0);
}

static void teardown(void)
{
	char cmd[600];

	vsm_ctx_free(ctx);
	ctx = NULL;
	if (tc)
		virConnectClose(tc);
	tc = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

static vsm_hv_domain_spec spec_of(const char *name)
{
	static const char *disks[] = { DISK };
	vsm_hv_domain_spec s = { VSM_HV_DOMAIN_SPEC_VERSION, name, 0, 0, disks, 1, MAC,
				 "default", META };

	return s;
}

/* The domain as the test's own connection sees it, or NULL. */
static char *seen_xml(const char *name)
{
	virDomainPtr d = virDomainLookupByName(tc, name);
	char *xml = d ? virDomainGetXMLDesc(d, 0) : NULL;

	if (d)
		virDomainFree(d);
	virResetLastError();
	return xml;
}

/* --- a fake driver that records its calls --- */

static char calls[1024];

static void record(const char *op, const char *uri, const char *name)
{
	size_t n = strlen(calls);

	snprintf(calls + n, sizeof(calls) - n, "%s(%s,%s);", op, uri, name ? name : "-");
}

static int fake_handles(const char *uri)
{
	return !strncmp(uri, "test:///", 8) || !strncmp(uri, "fake://", 7);
}

static int fake_define(const char *uri, const vsm_hv_domain_spec *s)
{
	record("define", uri, s->name);
	return 0;
}

static int fake_start(const char *uri, const char *name)
{
	record("start", uri, name);
	/* A failure without a message: the core still says something. */
	return !strcmp(name, "broken") ? -VSM_EIO : 0;
}

static int fake_state(const char *uri, const char *name)
{
	record("state", uri, name);
	return VSM_HV_PAUSED;
}

static int fake_pause(const char *uri, const char *name)
{
	record("pause", uri, name);
	return 0;
}

static int fake_resume(const char *uri, const char *name)
{
	record("resume", uri, name);
	return vsm_error_set(VSM_ESTATE, "domain '%s' is not paused", name);
}

static int fake_remove(const char *uri, const char *name)
{
	record("remove", uri, name);
	return 0;
}

static int fake_xml(const char *uri, const char *name, char **xml)
{
	record("xml", uri, name);
	*xml = strdup("<domain type='fake'/>");
	return *xml ? 0 : -VSM_ENOMEM;
}

/* A version-1 table, as a driver built against the older header fills
 * it: no block-copy ops. */
static const vsm_hypervisor_ops fake = {
	1, "fake", fake_handles, fake_define, fake_start, fake_state,
	fake_pause, fake_resume, fake_remove, fake_xml, NULL, NULL, NULL, NULL, NULL,
};

/* --- registration and lookup --- */

START_TEST(register_checks)
{
	vsm_hypervisor_ops o = fake;

	ck_assert_rc(vsm_hypervisor_register(NULL, &fake), -VSM_EINVAL);
	ck_assert_rc(vsm_hypervisor_register(ctx, NULL), -VSM_EINVAL);
	o.version = 0;
	ck_assert_rc(vsm_hypervisor_register(ctx, &o), -VSM_EVERSION);
	o.version = VSM_HYPERVISOR_OPS_VERSION + 1;
	ck_assert_rc(vsm_hypervisor_register(ctx, &o), -VSM_EVERSION);
	ck_assert_msg_has("ops version 3");
	o = fake;
	o.domain_xml = NULL;
	ck_assert_rc(vsm_hypervisor_register(ctx, &o), -VSM_EINVAL);
	ck_assert_msg_has("'domain_xml'");
	o = fake;
	o.handles = NULL;
	ck_assert_rc(vsm_hypervisor_register(ctx, &o), -VSM_EINVAL);
	ck_assert_msg_has("'handles'");
	o = fake;
	o.name = "";
	ck_assert_rc(vsm_hypervisor_register(ctx, &o), -VSM_EINVAL);
	/* None of the refused tables was kept: the built-in still answers. */
	{
		const vsm_hypervisor_ops *hv;

		ck_assert_rc(vsm__hv_for(ctx, TEST_URI, &hv), 0);
		ck_assert_str_eq(hv->name, "libvirt");
	}
	ck_assert_rc(vsm_hypervisor_register(ctx, &fake), 0);
	ck_assert_ptr_null(vsm_error_last());
}
END_TEST

START_TEST(lookup)
{
	const vsm_hypervisor_ops *hv = NULL;
	static const char *const ours[] = { TEST_URI, "qemu:///session", "qemu:///system",
		"qemu+ssh://root@h1/system", "qemu+unix:///session?socket=/x", "xen:///system",
		"lxc:///system", NULL };
	static const char *const not_ours[] = { "file:///x", "libvirt:///pool",
		"iscsi://h/t/0", "qemu", "qemu:/session", "qemux:///system", "test", NULL };
	size_t i;

	for (i = 0; ours[i]; i++) {
		ck_assert_rc(vsm__hv_for(ctx, ours[i], &hv), 0);
		ck_assert_ptr_eq(hv, vsm__libvirt_hypervisor_ops());
	}
	for (i = 0; not_ours[i]; i++) {
		ck_assert_rc(vsm__hv_for(ctx, not_ours[i], &hv), -VSM_ENOTSUP);
		ck_assert_ptr_null(hv);
		ck_assert_msg_has(not_ours[i]);
	}
	ck_assert_rc(vsm__hv_for(ctx, NULL, &hv), -VSM_EINVAL);
	ck_assert_rc(vsm__hv_for(ctx, "", &hv), -VSM_EINVAL);
	/* The wrappers refuse it the same way. */
	ck_assert_rc(vsm__hv_state(ctx, "file:///x", "web"), -VSM_ENOTSUP);
	ck_assert_msg_has("file:///x");
}
END_TEST

START_TEST(newest_driver_first)
{
	const vsm_hypervisor_ops *hv;
	vsm_hv_domain_spec s = spec_of("web");
	char *xml = NULL;

	ck_assert_rc(vsm_hypervisor_register(ctx, &fake), 0);
	ck_assert_rc(vsm__hv_for(ctx, TEST_URI, &hv), 0);
	ck_assert_ptr_eq(hv, &fake);
	ck_assert_rc(vsm__hv_for(ctx, "fake://h1", &hv), 0);
	ck_assert_ptr_eq(hv, &fake);
	/* URIs the fake does not take still go to the built-in. */
	ck_assert_rc(vsm__hv_for(ctx, "qemu:///session", &hv), 0);
	ck_assert_ptr_eq(hv, vsm__libvirt_hypervisor_ops());

	calls[0] = '\0';
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), 0);
	ck_assert_rc(vsm__hv_start(ctx, TEST_URI, "web"), 0);
	ck_assert_rc(vsm__hv_state(ctx, TEST_URI, "web"), VSM_HV_PAUSED);
	ck_assert_rc(vsm__hv_pause(ctx, TEST_URI, "web"), 0);
	ck_assert_rc(vsm__hv_xml(ctx, TEST_URI, "web", &xml), 0);
	ck_assert_str_eq(xml, "<domain type='fake'/>");
	free(xml);
	ck_assert_rc(vsm__hv_remove(ctx, TEST_URI, "web"), 0);
	ck_assert_str_eq(calls, "define(test:///default,web);start(test:///default,web);"
			 "state(test:///default,web);pause(test:///default,web);"
			 "xml(test:///default,web);remove(test:///default,web);");
	/* Nothing reached libvirt. */
	ck_assert_ptr_null(seen_xml("web"));

	/* The driver's message, prefixed once with the URI. */
	ck_assert_rc(vsm__hv_resume(ctx, TEST_URI, "web"), -VSM_ESTATE);
	ck_assert_str_eq(emsg(), "hypervisor 'test:///default': domain 'web' is not paused");
	/* An earlier error (an undo path calls in after a failure) survives
	 * a successful op ... */
	vsm_error_set(VSM_ENOSPC, "the first failure");
	ck_assert_rc(vsm__hv_pause(ctx, TEST_URI, "web"), 0);
	ck_assert_str_eq(emsg(), "the first failure");
	/* ... and a failure the driver left without a message still gets
	 * one of its own, not the earlier one. */
	ck_assert_rc(vsm__hv_start(ctx, TEST_URI, "broken"), -VSM_EIO);
	ck_assert_msg_has("hypervisor 'test:///default': domain 'broken': start failed");
	/* A name is required before any driver is asked. */
	calls[0] = '\0';
	ck_assert_rc(vsm__hv_start(ctx, TEST_URI, ""), -VSM_EINVAL);
	ck_assert_rc(vsm__hv_state(ctx, TEST_URI, NULL), -VSM_EINVAL);
	ck_assert_str_eq(calls, "");
}
END_TEST

/* --- the libvirt driver on the test driver --- */

START_TEST(lifecycle)
{
	vsm_hv_domain_spec s = spec_of("web");
	char *xml = NULL, *seen;

	ck_assert_rc(vsm__hv_state(ctx, TEST_URI, "web"), VSM_HV_NONE);
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), 0);
	/* The test's own connection sees what the driver's defined. */
	seen = seen_xml("web");
	ck_assert_msg(seen != NULL, "the test connection does not see domain 'web'");
	free(seen);
	ck_assert_rc(vsm__hv_state(ctx, TEST_URI, "web"), VSM_HV_SHUTOFF);
	ck_assert_rc(vsm__hv_start(ctx, TEST_URI, "web"), 0);
	ck_assert_rc(vsm__hv_state(ctx, TEST_URI, "web"), VSM_HV_RUNNING);
	ck_assert_rc(vsm__hv_start(ctx, TEST_URI, "web"), 0); /* running: done */
	ck_assert_rc(vsm__hv_pause(ctx, TEST_URI, "web"), 0);
	ck_assert_rc(vsm__hv_state(ctx, TEST_URI, "web"), VSM_HV_PAUSED);
	ck_assert_rc(vsm__hv_pause(ctx, TEST_URI, "web"), 0); /* paused: done */
	ck_assert_rc(vsm__hv_resume(ctx, TEST_URI, "web"), 0);
	ck_assert_rc(vsm__hv_state(ctx, TEST_URI, "web"), VSM_HV_RUNNING);
	ck_assert_rc(vsm__hv_resume(ctx, TEST_URI, "web"), 0);

	ck_assert_rc(vsm__hv_xml(ctx, TEST_URI, "web", &xml), 0);
	ck_assert_ptr_nonnull(xml);
	ck_assert_msg(strstr(xml, "<domain type='test'"), "%s", xml);
	ck_assert_msg(strstr(xml, "<mac address='" MAC "'/>"), "%s", xml);
	ck_assert_msg(strstr(xml, "<source network='default'"), "%s", xml);
	ck_assert_msg(strstr(xml, "<model type='virtio'/>"), "%s", xml);
	ck_assert_msg(strstr(xml, "/var/lib/vsm/web-root.raw"), "%s", xml);
	ck_assert_msg(strstr(xml, "<target dev='vda' bus='virtio'/>"), "%s", xml);
	ck_assert_msg(strstr(xml, "<metadata>"), "%s", xml);
	ck_assert_msg(strstr(xml, "urn:x-vsm:test"), "%s", xml);
	ck_assert_msg(strstr(xml, "10.0.0.5/24"), "%s", xml);
	ck_assert_msg(strstr(xml, "<memory unit='KiB'>131072</memory>"), "%s", xml);
	ck_assert_msg(strstr(xml, ">1</vcpu>"), "%s", xml);
	free(xml);

	ck_assert_rc(vsm__hv_remove(ctx, TEST_URI, "web"), 0);
	ck_assert_rc(vsm__hv_state(ctx, TEST_URI, "web"), VSM_HV_NONE);
	ck_assert_ptr_null(seen_xml("web"));
	ck_assert_rc(vsm__hv_remove(ctx, TEST_URI, "web"), 0); /* gone: not an error */
}
END_TEST

START_TEST(define_twice)
{
	vsm_hv_domain_spec s = spec_of("web");

	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), 0);
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), -VSM_EEXISTS);
	ck_assert_str_eq(emsg(), "hypervisor 'test:///default': domain 'web' already exists");
	/* The test driver's own domain, running. */
	s.name = "test";
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), -VSM_EEXISTS);
	ck_assert_rc(vsm__hv_state(ctx, TEST_URI, "test"), VSM_HV_RUNNING);
}
END_TEST

START_TEST(sizes_and_bridge)
{
	vsm_hv_domain_spec s = spec_of("db");
	char *xml = NULL;

	s.memory_mib = 512;
	s.vcpus = 2;
	s.network = "bridge:br0";
	s.disks_xml = NULL;
	s.n_disks = 0;
	s.metadata_xml = NULL;
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), 0);
	ck_assert_rc(vsm__hv_xml(ctx, TEST_URI, "db", &xml), 0);
	ck_assert_msg(strstr(xml, "<interface type='bridge'>"), "%s", xml);
	ck_assert_msg(strstr(xml, "<source bridge='br0'/>"), "%s", xml);
	ck_assert_msg(strstr(xml, "<memory unit='KiB'>524288</memory>"), "%s", xml);
	ck_assert_msg(strstr(xml, ">2</vcpu>"), "%s", xml);
	ck_assert_msg(!strstr(xml, "<disk"), "%s", xml);
	free(xml);

	/* No MAC: no interface. A network name is escaped. */
	s = spec_of("plain");
	s.mac = NULL;
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), 0);
	ck_assert_rc(vsm__hv_xml(ctx, TEST_URI, "plain", &xml), 0);
	ck_assert_msg(!strstr(xml, "<interface"), "%s", xml);
	free(xml);
	s = spec_of("quoted");
	s.network = "n'<&\"x";
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), 0);
	ck_assert_rc(vsm__hv_xml(ctx, TEST_URI, "quoted", &xml), 0);
	ck_assert_msg(strstr(xml, "<source network='n&apos;&lt;&amp;&quot;x'"), "%s", xml);
	free(xml);
}
END_TEST

START_TEST(bad_input)
{
	static const char *const bad_macs[] = { "52:54:00:12:34", "52:54:00:12:34:5g",
		"52-54-00-12-34-56", "52:54:00:12:34:56:", "01:00:5e:00:00:01", "", NULL };
	static const char *const bad_names[] = { "", "a b", "../x", "-x", ".x", "x/y", "x'y",
		"0123456789012345678901234567890123456789012345678901234567890123456789",
		NULL };
	static const char *const bad_disks[] = { "<interface type='network'/>",
		"<disk type='file'/></devices><devices>", "<disk", "",
		"<!DOCTYPE disk [<!ENTITY e 'x'>]><disk>&e;</disk>", NULL };
	vsm_hv_domain_spec s;
	const char *d[1];
	size_t i;

	for (i = 0; bad_macs[i]; i++) {
		s = spec_of("web");
		s.mac = bad_macs[i];
		ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), -VSM_EINVAL);
		ck_assert_msg_has("MAC address");
	}
	for (i = 0; bad_names[i]; i++) {
		s = spec_of(bad_names[i]);
		ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), -VSM_EINVAL);
		ck_assert_rc(vsm__hv_state(ctx, TEST_URI, bad_names[i]), -VSM_EINVAL);
	}
	for (i = 0; bad_disks[i]; i++) {
		s = spec_of("web");
		d[0] = bad_disks[i];
		s.disks_xml = d;
		ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), -VSM_EINVAL);
		ck_assert_msg_has("disk 0");
	}
	s = spec_of("web");
	s.metadata_xml = "<plan><ip>10.0.0.5</ip></plan>";
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), -VSM_EINVAL);
	ck_assert_msg_has("namespace");
	s = spec_of("web");
	s.network = NULL;
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), -VSM_EINVAL);
	s.network = "bridge:";
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), -VSM_EINVAL);
	s = spec_of("web");
	s.memory_mib = 1;
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), -VSM_EINVAL);
	s.memory_mib = 0;
	s.vcpus = 100000;
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), -VSM_EINVAL);
	s = spec_of("web");
	s.version = 2;
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), -VSM_EVERSION);
	/* Nothing was defined by any of them. */
	ck_assert_rc(vsm__hv_state(ctx, TEST_URI, "web"), VSM_HV_NONE);
}
END_TEST

START_TEST(missing_and_wrong_state)
{
	vsm_hv_domain_spec s = spec_of("web");
	char *xml = (char *)"unchanged";

	ck_assert_rc(vsm__hv_start(ctx, TEST_URI, "nosuch"), -VSM_ENOTFOUND);
	ck_assert_msg_has("domain 'nosuch'");
	ck_assert_rc(vsm__hv_pause(ctx, TEST_URI, "nosuch"), -VSM_ENOTFOUND);
	ck_assert_rc(vsm__hv_xml(ctx, TEST_URI, "nosuch", &xml), -VSM_ENOTFOUND);
	ck_assert_ptr_null(xml);
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), 0);
	ck_assert_rc(vsm__hv_pause(ctx, TEST_URI, "web"), -VSM_ESTATE);
	ck_assert_msg_has("not running");
	ck_assert_rc(vsm__hv_resume(ctx, TEST_URI, "web"), -VSM_ESTATE);
	/* Removing a stopped, defined domain undefines it. */
	ck_assert_rc(vsm__hv_remove(ctx, TEST_URI, "web"), 0);
	ck_assert_rc(vsm__hv_state(ctx, TEST_URI, "web"), VSM_HV_NONE);
	/* A URI nobody serves fails in the connection, with libvirt's words. */
	ck_assert(vsm__hv_state(ctx, "test:///nonexistent/file.xml", "web") < 0);
	ck_assert_msg_has("cannot connect");
}
END_TEST

/* The driver alone, as an out-of-tree caller of the table would use it. */
/* A version-1 driver registers and serves its eight ops; the block
 * copy is refused, without reading past its table. */
START_TEST(v1_driver_no_copy)
{
	vsm__hv_job *j = NULL;
	char *src = NULL;

	ck_assert_rc(vsm_hypervisor_register(ctx, &fake), 0);
	ck_assert_rc(vsm__hv_copy_start(&j, ctx, "fake://h1", "web", "vdb", "<disk/>", 0),
		     -VSM_ENOTSUP);
	ck_assert_ptr_null(j);
	ck_assert_msg_has("cannot copy a running domain's disk");
	ck_assert_rc(vsm__hv_copy_cancel(ctx, "fake://h1", "web", "vdb"), -VSM_ENOTSUP);
	ck_assert_rc(vsm__hv_disk_source(ctx, "fake://h1", "web", "vdb", &src), -VSM_ENOTSUP);
	ck_assert_ptr_null(src);
	ck_assert_rc(vsm__hv_copy_start(&j, ctx, "fake://h1", "web", NULL, "<disk/>", 0),
		     -VSM_EINVAL);
	ck_assert_int_eq(vsm__hv_copy_end(NULL, false), 0);
}
END_TEST

/* The built-in driver's version-2 ops against the test driver: a
 * missing domain or disk is said so; a destination that is not one
 * <disk> is refused before libvirt is asked. */
START_TEST(copy_ops_test_driver)
{
	const vsm_hypervisor_ops *o = vsm__libvirt_hypervisor_ops();
	vsm_hv_domain_spec s = spec_of("cp");
	vsm_hv_copy *job = NULL;
	vsm__hv_job *hj = NULL;
	char *src = NULL;

	ck_assert_ptr_nonnull(o->block_copy_start);
	ck_assert_ptr_nonnull(o->disk_source);
	ck_assert_rc(vsm__hv_copy_start(&hj, ctx, TEST_URI, "cp", "vda", "<domain/>", 0),
		     -VSM_EINVAL);
	ck_assert_ptr_null(hj);
	ck_assert_msg_has("not one <disk> element");
	ck_assert_rc(o->block_copy_start(&job, TEST_URI, "no-such", "vda",
					  "<disk type='file'><source file='/x'/></disk>", 0),
		     -VSM_ENOTFOUND);
	ck_assert_ptr_null(job);
	ck_assert_rc(vsm__hv_define(ctx, TEST_URI, &s), 0);
	ck_assert_rc(vsm__hv_disk_source(ctx, TEST_URI, "cp", "vdz", &src), -VSM_ENOTFOUND);
	ck_assert_msg_has("has no disk 'vdz'");
	ck_assert_rc(vsm__hv_copy_cancel(ctx, TEST_URI, "gone", "vda"), 0);
	ck_assert_rc(vsm__hv_remove(ctx, TEST_URI, "cp"), 0);
}
END_TEST

START_TEST(driver_table)
{
	const vsm_hypervisor_ops *o = vsm__libvirt_hypervisor_ops();
	vsm_hv_domain_spec s = spec_of("solo");

	ck_assert_uint_eq(o->version, VSM_HYPERVISOR_OPS_VERSION);
	ck_assert_str_eq(o->name, "libvirt");
	ck_assert_int_eq(o->handles(NULL), 0);
	ck_assert_int_eq(o->handles("file:///x"), 0);
	ck_assert_int_eq(o->handles(TEST_URI), 1);
	ck_assert_rc(o->domain_define(TEST_URI, &s), 0);
	ck_assert_rc(o->domain_define(TEST_URI, NULL), -VSM_EINVAL);
	ck_assert_rc(o->domain_state(TEST_URI, "solo"), VSM_HV_SHUTOFF);
	ck_assert_rc(o->domain_remove(TEST_URI, "solo"), 0);
	ck_assert_rc(o->domain_xml(TEST_URI, "solo", NULL), -VSM_EINVAL);
}
END_TEST

/* --- a real session daemon --- */

#define REAL_DOM "vsm-hv-real"

static void setup_real(void)
{
	vsm_ctx_opts o = VSM_CTX_OPTS_INIT;

	virSetErrorFunc(NULL, quiet);
	snprintf(tmpdir, sizeof(tmpdir), "%s/vsm-hv.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	o.state_dir = tmpdir;
	ck_assert_rc(vsm_ctx_open(&ctx, &o), 0);
}

static void teardown_real(void)
{
	/* Whatever the case reached, the domain goes (its qemu too). */
	if (ctx && vsm__hv_remove(ctx, getenv("HV_REAL_URI"), REAL_DOM) < 0)
		fprintf(stderr, "cannot remove %s: %s\n", REAL_DOM, emsg());
	teardown();
}

START_TEST(real_tcg_domain)
{
	const char *uri = getenv("HV_REAL_URI");
	char disk[1024], img[300], *xml = NULL;
	const char *disks[1] = { disk };
	vsm_hv_domain_spec s = { VSM_HV_DOMAIN_SPEC_VERSION, REAL_DOM, 64, 1, disks, 1, NULL,
				 NULL, META };
	FILE *f;

	snprintf(img, sizeof(img), "%s/root.raw", tmpdir);
	ck_assert_ptr_nonnull(f = fopen(img, "w"));
	ck_assert_int_eq(ftruncate(fileno(f), 16 << 20), 0);
	fclose(f);
	snprintf(disk, sizeof(disk), "<disk type='file' device='disk'><driver name='qemu' "
		 "type='raw'/><source file='%s'/><target dev='vda' bus='virtio'/></disk>", img);

	ck_assert_rc(vsm__hv_state(ctx, uri, REAL_DOM), VSM_HV_NONE);
	ck_assert_rc(vsm__hv_define(ctx, uri, &s), 0);
	ck_assert_rc(vsm__hv_define(ctx, uri, &s), -VSM_EEXISTS);
	ck_assert_rc(vsm__hv_state(ctx, uri, REAL_DOM), VSM_HV_SHUTOFF);
	ck_assert_rc(vsm__hv_start(ctx, uri, REAL_DOM), 0);
	ck_assert_rc(vsm__hv_state(ctx, uri, REAL_DOM), VSM_HV_RUNNING);
	ck_assert_rc(vsm__hv_pause(ctx, uri, REAL_DOM), 0);
	ck_assert_rc(vsm__hv_state(ctx, uri, REAL_DOM), VSM_HV_PAUSED);
	ck_assert_rc(vsm__hv_resume(ctx, uri, REAL_DOM), 0);
	ck_assert_rc(vsm__hv_state(ctx, uri, REAL_DOM), VSM_HV_RUNNING);
	ck_assert_rc(vsm__hv_xml(ctx, uri, REAL_DOM, &xml), 0);
	ck_assert_msg(strstr(xml, "<domain type='qemu'"), "%s", xml);
	ck_assert_msg(strstr(xml, img), "%s", xml);
	ck_assert_msg(strstr(xml, "urn:x-vsm:test"), "%s", xml);
	free(xml);
	ck_assert_rc(vsm__hv_remove(ctx, uri, REAL_DOM), 0);
	ck_assert_rc(vsm__hv_state(ctx, uri, REAL_DOM), VSM_HV_NONE);
}
END_TEST

static Suite *real_suite(void)
{
	Suite *s = suite_create("hypervisor-real-daemon");
	TCase *t = tcase_create("session");

	tcase_add_checked_fixture(t, setup_real, teardown_real);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, real_tcg_domain);
	suite_add_tcase(s, t);
	return s;
}

static Suite *hyper_suite(void)
{
	Suite *s = suite_create("hypervisor");
	TCase *t = tcase_create("seam");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, register_checks);
	tcase_add_test(t, lookup);
	tcase_add_test(t, newest_driver_first);
	tcase_add_test(t, lifecycle);
	tcase_add_test(t, define_twice);
	tcase_add_test(t, sizes_and_bridge);
	tcase_add_test(t, bad_input);
	tcase_add_test(t, missing_and_wrong_state);
	tcase_add_test(t, driver_table);
	tcase_add_test(t, v1_driver_no_copy);
	tcase_add_test(t, copy_ops_test_driver);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	const char *real = getenv("HV_REAL_URI");
	SRunner *sr = srunner_create(real && real[0] ? real_suite() : hyper_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
