/*
 * Suite "xml": the libvirt <disk> elements deploy hands out. Every value
 * comes back unchanged through a real XML parser (libxml2), hostile
 * targets and buses are refused (by the public helpers, by the builder
 * and by vsm_device_deploy before any backend runs), and a refused deploy
 * changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <vsm/backend.h>

#include "fault_backend.h"
#include "testutil.h"

/* Hostile strings a target or bus must never be (each also used as a
 * value that must survive escaping). */
static const char *const hostile[] = {
	"virtio'/><source file='/etc/shadow'/><x a='",
	"vd'a",
	"vda' bus='ide",
	"vda\"",
	"sd<a>",
	"vd&amp;a",
	"vda\n",
	"vda ",
	" vda",
	"vd\tb",
	"",
};

static xmlDocPtr parse(const char *xml)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "disk.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);

	ck_assert_msg(doc != NULL, "libxml2 cannot parse:\n%s", xml);
	return doc;
}

static xmlNodePtr child(xmlNodePtr n, const char *name, int *count)
{
	xmlNodePtr found = NULL;

	if (count)
		*count = 0;
	for (n = n ? n->children : NULL; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, name))
			continue;
		if (!found)
			found = n;
		if (count)
			(*count)++;
	}
	return found;
}

static void ck_prop(xmlNodePtr n, const char *attr, const char *want)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)attr);

	ck_assert_msg(v != NULL, "<%s> has no attribute '%s'", n->name, attr);
	ck_assert_msg(!strcmp((const char *)v, want), "<%s %s='%s'>, want '%s'", n->name, attr,
		      (const char *)v, want);
	xmlFree(v);
}

static int elem_count(xmlNodePtr n)
{
	int c = 0;

	for (n = n ? n->children : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE)
			c++;
	return c;
}

/* Check a <disk> of @n file layers: exactly one <source> at each level,
 * with the path given, and the target given. */
static void ck_file_disk(const char *xml, const char *const *paths, size_t n,
			 const char *target, const char *bus)
{
	xmlDocPtr doc = parse(xml);
	xmlNodePtr disk = xmlDocGetRootElement(doc), level = disk, t;
	size_t i;
	int count;

	ck_assert_str_eq((const char *)disk->name, "disk");
	ck_prop(disk, "type", "file");
	for (i = 0; i < n; i++) {
		xmlNodePtr src = child(level, "source", &count), bs;

		ck_assert_msg(count == 1, "level %zu has %d <source> elements:\n%s", i, count, xml);
		ck_prop(src, "file", paths[i]);
		ck_assert_int_eq(elem_count(src), 0);
		bs = child(level, "backingStore", &count);
		ck_assert_msg(count == 1, "level %zu has %d <backingStore>:\n%s", i, count, xml);
		level = bs;
	}
	ck_assert_int_eq(elem_count(level), 0); /* the chain's end */
	t = child(disk, "target", &count);
	ck_assert_int_eq(count, 1);
	ck_prop(t, "dev", target);
	if (bus)
		ck_prop(t, "bus", bus);
	else
		ck_assert_ptr_null(xmlHasProp(t, (const xmlChar *)"bus"));
	/* Nothing smuggled in next to them. */
	child(disk, "driver", &count);
	ck_assert_int_eq(count, 1);
	ck_assert_int_eq(elem_count(disk), 4);
	xmlFreeDoc(doc);
}

/* --- the public helpers --- */

START_TEST(targets_follow_libvirt_grammar)
{
	static const char *const good[] = {
		"vda", "vdb", "vdz", "vdaa", "sda", "sdb1", "hdc", "fda", "xvda", "ubdb",
		"vdzz9", "vdabcdefghijklmnopqrstuvwxyzabcd" /* 32 */,
	};
	static const char *const bad[] = {
		"vd", "sd", "xvd", "vda'", "VDA", "Vda", "nvme0n1", "vd1", "vda/../x", "vda-1",
		"ioemu:hda", "vdabcdefghijklmnopqrstuvwxyzabcde" /* 33 */, "vd\xc3\xa9", "da",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(*good); i++)
		ck_vsm(vsm_disk_target_check(good[i]));
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		ck_vsm_refused(vsm_disk_target_check(bad[i]), VSM_EINVAL, bad[i]);
	for (i = 0; i < sizeof(hostile) / sizeof(*hostile); i++) {
		ck_assert_int_eq(vsm_disk_target_check(hostile[i]), -VSM_EINVAL);
		ck_assert_ptr_nonnull(strstr(tu_msg(), "is not a disk name"));
	}
	ck_vsm_refused(vsm_disk_target_check(NULL), VSM_EINVAL, "no target");
	/* A public call starts with a clean error. */
	ck_vsm(vsm_disk_target_check("vda"));
	ck_assert_ptr_null(vsm_error_last());
}
END_TEST

START_TEST(buses_from_a_known_list)
{
	static const char *const good[] = {
		"virtio", "scsi", "sata", "ide", "usb", "xen", "sd", "fdc",
	};
	static const char *const bad[] = { "VIRTIO", "virtio ", "uml", "nvme", "pci", "virtio-blk" };
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(*good); i++)
		ck_vsm(vsm_disk_bus_check(good[i]));
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		ck_vsm_refused(vsm_disk_bus_check(bad[i]), VSM_EINVAL, bad[i]);
	for (i = 0; i < sizeof(hostile) / sizeof(*hostile); i++)
		ck_vsm_refused(vsm_disk_bus_check(hostile[i]), VSM_EINVAL,
			       "is not one of virtio, scsi, sata, ide, usb, xen, sd, fdc");
	ck_vsm_refused(vsm_disk_bus_check(NULL), VSM_EINVAL, "no bus");
}
END_TEST

START_TEST(escape_round_trips_through_libxml2)
{
	static const char *const values[] = {
		"plain", "a'b", "a\"b", "a&b", "a<b>c", "&amp;", "]]>", "<!--x-->",
		"tab\there", "line\nfeed", "cr\rx", "  spaces  ", "caf\xc3\xa9",
		"\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x92\xbe", "\x7f",
		"virtio'/><source file='/etc/shadow'/><x a='",
	};
	size_t i;

	for (i = 0; i < sizeof(values) / sizeof(*values); i++) {
		char *esc = NULL, *doc_text = NULL;
		xmlDocPtr doc;
		xmlNodePtr root;
		xmlChar *text;

		ck_vsm(vsm_disk_xml_escape(&esc, values[i]));
		ck_assert_ptr_null(strchr(esc, '\''));
		ck_assert_ptr_null(strchr(esc, '"'));
		ck_assert_ptr_null(strchr(esc, '<'));
		ck_assert(asprintf(&doc_text, "<a v='%s' w=\"%s\">%s</a>", esc, esc, esc) > 0);
		doc = parse(doc_text);
		root = xmlDocGetRootElement(doc);
		ck_prop(root, "v", values[i]);
		ck_prop(root, "w", values[i]);
		ck_assert_int_eq(elem_count(root), 0);
		text = xmlNodeGetContent(root);
		ck_assert_str_eq((const char *)text, values[i]);
		xmlFree(text);
		xmlFreeDoc(doc);
		free(doc_text);
		free(esc);
	}
}
END_TEST

START_TEST(escape_refuses_what_xml_cannot_carry)
{
	static const char *const bad[] = {
		"\x01", "a\x1b[0m", "\x0b", "\xff", "\xc0\xaf" /* overlong '/' */,
		"\xe0\x80\xaf", "\xed\xa0\x80" /* surrogate */, "\xef\xbf\xbe" /* U+FFFE */,
		"\xf4\x90\x80\x80" /* past U+10FFFF */, "caf\xc3", "\xc3(",
	};
	size_t i;
	char *esc = NULL;

	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		ck_assert_msg(vsm_disk_xml_escape(&esc, bad[i]) == -VSM_EINVAL,
			      "value %zu was escaped as '%s'", i, esc ? esc : "");
		ck_assert_ptr_null(esc);
		ck_assert_ptr_nonnull(strstr(tu_msg(), "at byte"));
	}
	ck_vsm_refused(vsm_disk_xml_escape(&esc, NULL), VSM_EINVAL, "NULL");
}
END_TEST

/* --- the builder --- */

START_TEST(builder_hostile_paths_round_trip)
{
	static const char *const paths[] = {
		"/d/it's & <mine> \"quoted\"/a.qcow2",
		"/d/]]>/line\nbreak\ttab/b.qcow2",
		"/d/caf\xc3\xa9 &amp; co/c.raw",
	};
	const char *attrs[3][3];
	vsm_disk_xml_layer layers[3];
	char *xml = NULL;
	size_t i;

	memset(layers, 0, sizeof(layers));
	for (i = 0; i < 3; i++) {
		attrs[i][0] = "file";
		attrs[i][1] = paths[i];
		attrs[i][2] = NULL;
		layers[i].type = "file";
		layers[i].format = i < 2 ? "qcow2" : "raw";
		layers[i].source_attrs = attrs[i];
	}
	for (i = 1; i <= 3; i++) {
		ck_vsm(vsm_disk_xml_build(&xml, layers, i, "vdb", "virtio", 0));
		ck_file_disk(xml, paths, i, "vdb", "virtio");
		free(xml);
		xml = NULL;
	}
	/* Without a bus, libvirt derives it from the target. */
	ck_vsm(vsm_disk_xml_build(&xml, layers, 1, "sdc", NULL, 0));
	ck_file_disk(xml, paths, 1, "sdc", NULL);
	free(xml);
}
END_TEST

START_TEST(builder_network_source_with_children)
{
	const char *host_a[] = { "name", "h'<&>\"", "port", "3260", NULL };
	const char *iqn_a[] = { "name", "iqn.2026-01.org.example:ini'x", NULL };
	const char *auth_a[] = { "username", "u&<>'\"", NULL };
	const char *secret_a[] = { "type", "iscsi", "usage", "libvsm/iqn'&", NULL };
	const char *skipped_a[] = { "name", "x", "absent", NULL, "port", "1", NULL };
	const vsm_disk_xml_elem iqn = { "iqn", iqn_a, NULL, 0 };
	const vsm_disk_xml_elem secret = { "secret", secret_a, NULL, 0 };
	const vsm_disk_xml_elem kids[] = {
		{ "host", host_a, NULL, 0 },
		{ "initiator", NULL, &iqn, 1 },
		{ "auth", auth_a, &secret, 1 },
	};
	const char *src_a[] = { "protocol", "iscsi", "name", "iqn.2026-01.org.example:t'&/3", NULL };
	const char *pool_a[] = { "pool", "my pool & <co>", "volume", "vol'1", NULL };
	vsm_disk_xml_layer layers[2] = {
		{ "network", "qcow2", src_a, kids, 3 },
		{ "volume", "raw", pool_a, NULL, 0 },
	};
	xmlNodePtr disk, src, n, bs;
	xmlDocPtr doc;
	char *xml = NULL;
	int count;

	ck_vsm(vsm_disk_xml_build(&xml, layers, 2, "sda", "scsi", 0));
	doc = parse(xml);
	disk = xmlDocGetRootElement(doc);
	ck_prop(disk, "type", "network");
	src = child(disk, "source", &count);
	ck_assert_int_eq(count, 1);
	ck_prop(src, "protocol", "iscsi");
	ck_prop(src, "name", "iqn.2026-01.org.example:t'&/3");
	ck_assert_int_eq(elem_count(src), 3);
	ck_prop(child(src, "host", NULL), "name", "h'<&>\"");
	ck_prop(child(src, "host", NULL), "port", "3260");
	ck_prop(child(child(src, "initiator", NULL), "iqn", NULL), "name",
		"iqn.2026-01.org.example:ini'x");
	n = child(src, "auth", NULL);
	ck_prop(n, "username", "u&<>'\"");
	ck_prop(child(n, "secret", NULL), "usage", "libvsm/iqn'&");
	bs = child(disk, "backingStore", &count);
	ck_assert_int_eq(count, 1);
	ck_prop(bs, "type", "volume");
	ck_prop(child(bs, "format", NULL), "type", "raw");
	src = child(bs, "source", &count);
	ck_assert_int_eq(count, 1);
	ck_prop(src, "pool", "my pool & <co>");
	ck_prop(src, "volume", "vol'1");
	ck_prop(child(disk, "target", NULL), "dev", "sda");
	ck_prop(child(disk, "target", NULL), "bus", "scsi");
	xmlFreeDoc(doc);
	free(xml);

	/* A pair with a NULL value is left out. */
	{
		const vsm_disk_xml_elem one = { "host", skipped_a, NULL, 0 };
		vsm_disk_xml_layer l = { "network", "raw", src_a, &one, 1 };

		ck_vsm(vsm_disk_xml_build(&xml, &l, 1, "vda", NULL, 0));
		doc = parse(xml);
		n = child(child(xmlDocGetRootElement(doc), "source", NULL), "host", NULL);
		ck_prop(n, "port", "1");
		ck_assert_ptr_null(xmlHasProp(n, (const xmlChar *)"absent"));
		xmlFreeDoc(doc);
		free(xml);
	}
}
END_TEST

START_TEST(builder_refusals)
{
	const char *ok_a[] = { "file", "/x", NULL };
	const char *badname_a[] = { "file='/etc/shadow' x", "/x", NULL };
	const char *dup_a[] = { "file", "/x", "file", "/etc/shadow", NULL };
	const char *ctl_a[] = { "file", "/x\x01y", NULL };
	const char *utf_a[] = { "file", "/x\xff", NULL };
	const vsm_disk_xml_elem badelem = { "host><x", NULL, NULL, 0 };
	const vsm_disk_xml_elem nochildren = { "auth", NULL, NULL, 2 };
	vsm_disk_xml_layer l = { "file", "raw", ok_a, NULL, 0 };
	char *xml = NULL;
	size_t i;

	for (i = 0; i < sizeof(hostile) / sizeof(*hostile); i++) {
		ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 1, hostile[i], "virtio", 0),
			       VSM_EINVAL, "is not a disk name");
		ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 1, "vdb", hostile[i], 0),
			       VSM_EINVAL, "is not one of");
	}
	ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 1, NULL, "virtio", 0), VSM_EINVAL,
		       "no target");
	ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 0, "vda", NULL, 0), VSM_EINVAL, "0 layers");
	ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 1, "vda", NULL, 1), VSM_EINVAL, "flags");
	ck_vsm_refused(vsm_disk_xml_build(NULL, &l, 1, "vda", NULL, 0), VSM_EINVAL, "NULL");

	l.type = "file' x='y";
	ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 1, "vda", NULL, 0), VSM_EINVAL, "type");
	l.type = "file";
	l.format = "qcow2'/><x";
	ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 1, "vda", NULL, 0), VSM_EINVAL, "format");
	l.format = NULL;
	ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 1, "vda", NULL, 0), VSM_EINVAL, "format");
	l.format = "raw";
	l.source_attrs = badname_a;
	ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 1, "vda", NULL, 0), VSM_EINVAL,
		       "not an XML name");
	l.source_attrs = dup_a;
	ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 1, "vda", NULL, 0), VSM_EINVAL, "twice");
	l.source_attrs = ctl_a;
	ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 1, "vda", NULL, 0), VSM_EINVAL,
		       "attribute 'file'");
	l.source_attrs = utf_a;
	ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 1, "vda", NULL, 0), VSM_EINVAL, "UTF-8");
	l.source_attrs = ok_a;
	l.source_children = &badelem;
	l.n_source_children = 1;
	ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 1, "vda", NULL, 0), VSM_EINVAL,
		       "not an XML name");
	l.source_children = &nochildren;
	ck_vsm_refused(vsm_disk_xml_build(&xml, &l, 1, "vda", NULL, 0), VSM_EINVAL,
		       "no array");
	ck_assert_ptr_null(xml);
}
END_TEST

/* --- through vsm_device_deploy on a file datastore, and vsmctl's view of it --- */

static char *state, *dsdir, *uri;
static vsm_ctx *ctx;

/* A datastore directory whose path holds every character XML escapes. */
static void deploy_setup(void)
{
	char *parent = tu_dir("xml");

	state = tu_dir("state");
	ck_assert(asprintf(&dsdir, "%s/it's & <ds> \"one\"", parent) > 0);
	ck_assert_int_eq(mkdir(dsdir, 0700), 0);
	uri = tu_uri(dsdir);
	free(parent);
	ctx = tu_ctx(state);
	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	ck_vsm(vsm_host_add(ctx, "h1", NULL));
	ck_vsm(vsm_host_link(ctx, "h1", "ds1", 0));
}

static void deploy_teardown(void)
{
	vsm_ctx_free(ctx);
	free(state);
	free(dsdir);
	free(uri);
}

static char *device_path(vsm_container *c, const char *dev)
{
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/%s", dsdir,
			   vsm_device_key(vsm_container_device_by_name(c, dev))) > 0);
	return p;
}

START_TEST(deploy_xml_parses_back)
{
	vsm_deploy_opts opts = VSM_DEPLOY_OPTS_INIT;
	vsm_container *c = NULL;
	vsm_locator *loc = NULL;
	char *p0, *p1;
	const char *paths[1];

	ck_vsm(tu_create(&c, ctx, "ds1", "web", 2, 1 << 20));
	ck_vsm(vsm_attach(c, "h1", 0));
	p0 = device_path(c, "d0");
	p1 = device_path(c, "d1");

	ck_vsm(vsm_device_deploy(&loc, c, "d0", NULL));
	ck_assert_str_eq(vsm_locator_path(loc), p0);
	paths[0] = p0;
	ck_file_disk(vsm_locator_disk_xml(loc), paths, 1, "vda", "virtio");
	/* The locator URI is percent-encoded: no raw quote, space or '<'. */
	ck_assert_int_eq(strncmp(vsm_locator_uri(loc), "file:///", 8), 0);
	ck_assert_ptr_null(strpbrk(vsm_locator_uri(loc), "'\"<>& "));
	vsm_locator_free(loc);

	opts.target = "sdc";
	opts.bus = "scsi";
	ck_vsm(vsm_device_deploy(&loc, c, "d1", &opts));
	paths[0] = p1;
	ck_file_disk(vsm_locator_disk_xml(loc), paths, 1, "sdc", "scsi");
	vsm_locator_free(loc);
	/* The record keeps the same XML: a fresh handle sees it parse too. */
	ck_vsm(vsm_container_refresh(c));
	ck_file_disk(vsm_locator_disk_xml(vsm_device_locator(vsm_container_device_by_name(c, "d1"))),
		     paths, 1, "sdc", "scsi");
	vsm_container_free(c);
	free(p0);
	free(p1);
}
END_TEST

START_TEST(deploy_refuses_hostile_target_and_bus)
{
	vsm_deploy_opts opts = VSM_DEPLOY_OPTS_INIT;
	vsm_container *c = NULL, *again = NULL;
	vsm_locator *loc = NULL;
	size_t i;

	ck_vsm(tu_create(&c, ctx, "ds1", "web", 1, 1 << 20));
	ck_vsm(vsm_attach(c, "h1", 0));
	for (i = 0; i < sizeof(hostile) / sizeof(*hostile); i++) {
		opts.target = NULL;
		opts.bus = hostile[i];
		ck_assert_int_eq(vsm_device_deploy(&loc, c, "d0", &opts), -VSM_EINVAL);
		ck_assert_msg(strstr(tu_msg(), "deploy: bus '") &&
			      strstr(tu_msg(), "' is not one of virtio, scsi"), "%s", tu_msg());
		ck_assert_ptr_null(loc);
		opts.bus = "virtio";
		opts.target = hostile[i];
		ck_assert_int_eq(vsm_device_deploy(&loc, c, "d0", &opts), -VSM_EINVAL);
		ck_assert_msg(strstr(tu_msg(), "deploy: target '") &&
			      strstr(tu_msg(), "is not a disk name"), "%s", tu_msg());
		ck_assert_ptr_null(loc);
	}
	opts.target = "vd'a";
	ck_vsm_refused(vsm_device_deploy(&loc, c, "d0", &opts), VSM_EINVAL, "'vd'a'");
	/* Nothing was deployed: not in this handle, not on the datastore. */
	ck_assert_ptr_null(vsm_device_locator(vsm_container_device_by_name(c, "d0")));
	ck_vsm(vsm_container_lookup(&again, ctx, "ds1", "web"));
	ck_assert_ptr_null(vsm_device_locator(vsm_container_device_by_name(again, "d0")));
	vsm_container_free(again);
	ck_vsm(vsm_detach(c, 0)); /* would be refused if anything were deployed */
	vsm_container_free(c);
}
END_TEST

START_TEST(deploy_chain_parses_back)
{
	vsm_container *c = NULL;
	vsm_locator *loc = NULL;
	xmlDocPtr doc;
	xmlNodePtr disk, bs;
	int count;

	ck_vsm(tu_create(&c, ctx, "ds1", "web", 1, 1 << 20));
	ck_vsm(vsm_checkpoint_create(NULL, c, "c1", NULL));
	ck_vsm(vsm_attach(c, "h1", 0));
	ck_vsm(vsm_device_deploy(&loc, c, "d0", NULL));
	doc = parse(vsm_locator_disk_xml(loc));
	disk = xmlDocGetRootElement(doc);
	child(disk, "source", &count);
	ck_assert_int_eq(count, 1);
	ck_prop(child(disk, "source", NULL), "file", vsm_locator_path(loc));
	bs = child(disk, "backingStore", &count);
	ck_assert_int_eq(count, 1);
	ck_prop(bs, "type", "file");
	ck_prop(child(bs, "format", NULL), "type", "raw");
	child(bs, "source", &count);
	ck_assert_int_eq(count, 1);
	{
		xmlChar *f = xmlGetProp(child(bs, "source", NULL), (const xmlChar *)"file");

		ck_assert_ptr_nonnull(f);
		/* The backing layer lives in the same hostile directory. */
		ck_assert_int_eq(strncmp((const char *)f, dsdir, strlen(dsdir)), 0);
		ck_assert(tu_exists((const char *)f));
		xmlFree(f);
	}
	xmlFreeDoc(doc);
	vsm_locator_free(loc);
	vsm_container_free(c);
}
END_TEST

/* The core checks before any backend runs, so a backend that builds its
 * XML by other means still never sees a hostile target or bus. */
START_TEST(core_checks_before_the_backend)
{
	vsm_deploy_opts opts = VSM_DEPLOY_OPTS_INIT;
	char *fstate = tu_dir("fstate"), *fdir = tu_dir("fds"), *furi = NULL;
	vsm_ctx *fctx = tu_ctx(fstate);
	vsm_container *c = NULL;
	size_t i;

	ck_assert(asprintf(&furi, "fault://%s", fdir) > 0);
	ck_vsm(fault_register(fctx));
	ck_vsm(vsm_datastore_add(fctx, "fds", furi, 0));
	ck_vsm(vsm_host_add(fctx, "h1", NULL));
	ck_vsm(vsm_host_link(fctx, "h1", "fds", 0));
	ck_vsm(tu_create(&c, fctx, "fds", "web", 1, 1 << 20));
	ck_vsm(vsm_attach(c, "h1", 0));
	memset(&fault, 0, sizeof(fault));
	for (i = 0; i < sizeof(hostile) / sizeof(*hostile); i++) {
		opts.target = "vdb";
		opts.bus = hostile[i];
		ck_assert_int_eq(vsm_device_deploy(NULL, c, "d0", &opts), -VSM_EINVAL);
		/* Refused by the core: no backend prefix in front. */
		ck_assert_msg(!strncmp(tu_msg(), "deploy: bus '", 13), "%s", tu_msg());
		opts.target = hostile[i];
		opts.bus = NULL;
		ck_assert_int_eq(vsm_device_deploy(NULL, c, "d0", &opts), -VSM_EINVAL);
		ck_assert_msg(!strncmp(tu_msg(), "deploy: target '", 16), "%s", tu_msg());
	}
	ck_assert_int_eq(fault.deploys, 0);
	opts.target = "vdb";
	opts.bus = "virtio";
	ck_vsm(vsm_device_deploy(NULL, c, "d0", &opts));
	ck_assert_int_eq(fault.deploys, 1);
	vsm_container_free(c);
	vsm_ctx_free(fctx);
	free(furi);
	free(fdir);
	free(fstate);
}
END_TEST

static Suite *xml_suite(void)
{
	Suite *s = suite_create("xml");
	TCase *h = tcase_create("helpers");
	TCase *d = tcase_create("deploy");

	tcase_add_test(h, targets_follow_libvirt_grammar);
	tcase_add_test(h, buses_from_a_known_list);
	tcase_add_test(h, escape_round_trips_through_libxml2);
	tcase_add_test(h, escape_refuses_what_xml_cannot_carry);
	tcase_add_test(h, builder_hostile_paths_round_trip);
	tcase_add_test(h, builder_network_source_with_children);
	tcase_add_test(h, builder_refusals);
	suite_add_tcase(s, h);

	tcase_add_unchecked_fixture(d, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(d, deploy_setup, deploy_teardown);
	tcase_set_timeout(d, 60);
	tcase_add_test(d, deploy_xml_parses_back);
	tcase_add_test(d, deploy_refuses_hostile_target_and_bus);
	tcase_add_test(d, deploy_chain_parses_back);
	tcase_add_test(d, core_checks_before_the_backend);
	suite_add_tcase(s, d);
	return s;
}

int main(void)
{
	return tu_run(xml_suite());
}
