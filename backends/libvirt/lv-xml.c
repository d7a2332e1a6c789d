/*
 * XML the libvirt backend writes (<volume> for creation, <disk> for
 * deployment, including disks whose source is a pool volume) and reads
 * back from libvirt (a pool's type, a live domain's disks) with libxml2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "lv-int.h"
#include "../common/diskxml.h"

static const char *type_name(lv_access a)
{
	switch (a) {
	case LV_ACCESS_FILE: return "file";
	case LV_ACCESS_BLOCK: return "block";
	default: return "volume";
	}
}

int lv_disk_xml(char **out, const lv_layer *layers, size_t n, const char *target,
		const char *bus)
{
	vsm_disk_xml_layer *dl = calloc(n ? n : 1, sizeof(*dl));
	const char **attrs = calloc(5 * (n ? n : 1), sizeof(*attrs));
	size_t i;
	int rc;

	if (!dl || !attrs) {
		free(dl);
		free(attrs);
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		const char **a = &attrs[5 * i];

		if (layers[i].access == LV_ACCESS_NETWORK) {
			a[0] = "pool";
			a[1] = layers[i].pool;
			a[2] = "volume";
			a[3] = layers[i].volume;
		} else {
			a[0] = layers[i].access == LV_ACCESS_FILE ? "file" : "dev";
			a[1] = layers[i].path;
		}
		dl[i].type = type_name(layers[i].access);
		dl[i].format = layers[i].format;
		dl[i].source_attrs = a;
	}
	rc = vsm__diskxml_build(out, dl, n, target, bus, 0);
	free(dl);
	free(attrs);
	return rc;
}

int lv_volume_xml(char **out, const char *name, uint64_t size, uint64_t allocation,
		  const char *format, bool with_format, const char *backing_path,
		  const char *backing_format)
{
	char *buf = NULL, *n = NULL, *bp = NULL;
	bool qcow2 = !strcmp(format, "qcow2");
	size_t len = 0;
	FILE *f;
	int rc;

	if ((rc = vsm__diskxml_escape(&n, name, "volume name")) < 0 ||
	    (backing_path && (rc = vsm__diskxml_escape(&bp, backing_path, "backing path")) < 0))
		goto out;
	if (!(f = open_memstream(&buf, &len))) {
		rc = vsm_error_set(VSM_ENOMEM, "out of memory");
		goto out;
	}
	/* The formats come from the core ("raw", "qcow2"), never from a caller. */
	fprintf(f, "<volume>\n"
		   "  <name>%s</name>\n"
		   "  <capacity unit='bytes'>%llu</capacity>\n"
		   "  <allocation unit='bytes'>%llu</allocation>\n",
		n, (unsigned long long)size, (unsigned long long)allocation);
	if (qcow2)
		fprintf(f, "  <target>\n    <format type='qcow2'/>\n"
			   "    <compat>1.1</compat>\n  </target>\n");
	else if (with_format)
		fprintf(f, "  <target>\n    <format type='%s'/>\n  </target>\n", format);
	if (bp)
		fprintf(f, "  <backingStore>\n    <path>%s</path>\n"
			   "    <format type='%s'/>\n  </backingStore>\n",
			bp, backing_format ? backing_format : "raw");
	fprintf(f, "</volume>\n");
	if (fclose(f) != 0) {
		free(buf);
		rc = vsm_error_set(VSM_ENOMEM, "out of memory");
		goto out;
	}
	*out = buf;
out:
	free(n);
	free(bp);
	return rc;
}

static xmlDocPtr parse(const char *xml)
{
	return xmlReadMemory(xml, (int)strlen(xml), "libvirt.xml", NULL,
			     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

char *lv_xml_root_attr(const char *xml, const char *attr)
{
	xmlDocPtr doc = parse(xml);
	xmlNodePtr root;
	xmlChar *v;
	char *out = NULL;

	if (!doc)
		return NULL;
	if ((root = xmlDocGetRootElement(doc)) &&
	    (v = xmlGetProp(root, (const xmlChar *)attr))) {
		out = strdup((const char *)v);
		xmlFree(v);
	}
	xmlFreeDoc(doc);
	return out;
}

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
	for (n = n ? n->children : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name))
			return n;
	return NULL;
}

int64_t lv_xml_vol_mtime(const char *xml)
{
	xmlDocPtr doc = parse(xml);
	xmlNodePtr n;
	xmlChar *text;
	int64_t t = 0;

	if (!doc)
		return 0;
	n = child(child(child(xmlDocGetRootElement(doc), "target"), "timestamps"), "mtime");
	if (n && (text = xmlNodeGetContent(n))) {
		/* "SECONDS.NANOSECONDS"; the whole seconds are enough. */
		long long v = strtoll((const char *)text, NULL, 10);

		t = v > 0 ? (int64_t)v : 0;
		xmlFree(text);
	}
	xmlFreeDoc(doc);
	return t;
}

static bool prop_is(xmlNodePtr n, const char *attr, const char *want)
{
	xmlChar *v;
	bool eq;

	if (!want || !(v = xmlGetProp(n, (const xmlChar *)attr)))
		return false;
	eq = !strcmp((const char *)v, want);
	xmlFree(v);
	return eq;
}

static bool source_matches(xmlNodePtr src, const lv_layer *l)
{
	if (!src)
		return false;
	/* libvirt may have resolved a volume disk to its path or the other
	 * way round, so any spelling of the same volume counts. */
	if (l->path && (prop_is(src, "file", l->path) || prop_is(src, "dev", l->path)))
		return true;
	return l->pool && l->volume && prop_is(src, "pool", l->pool) &&
	       prop_is(src, "volume", l->volume);
}

int lv_domain_disks_matching(const char *domain_xml, const lv_layer *layer,
			     int (*cb)(const char *disk_xml, void *payload),
			     void *payload)
{
	xmlDocPtr doc = parse(domain_xml);
	xmlNodePtr devs, n;
	int found = 0, rc = 0;

	if (!doc)
		return vsm_error_set(VSM_EIO, "cannot parse the XML of a domain");
	devs = child(xmlDocGetRootElement(doc), "devices");
	for (n = devs ? devs->children : NULL; n && rc == 0; n = n->next) {
		xmlBufferPtr buf;

		if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "disk") ||
		    !source_matches(child(n, "source"), layer))
			continue;
		found++;
		if (!(buf = xmlBufferCreate())) {
			rc = vsm_error_set(VSM_ENOMEM, "out of memory");
			break;
		}
		if (xmlNodeDump(buf, doc, n, 0, 0) < 0)
			rc = vsm_error_set(VSM_ENOMEM, "cannot serialise a <disk> element");
		else
			rc = cb((const char *)xmlBufferContent(buf), payload);
		xmlBufferFree(buf);
	}
	xmlFreeDoc(doc);
	return rc < 0 ? rc : found;
}
