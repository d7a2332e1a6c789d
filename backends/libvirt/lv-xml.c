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
#include "../../lib/xml.h"

static const char *type_name(lv_access a)
{
	switch (a) {
	case LV_ACCESS_FILE: return "file";
	case LV_ACCESS_BLOCK: return "block";
	default: return "volume";
	}
}

/* <source .../> for one layer; false if out of memory. */
static bool put_source(FILE *f, int indent, const lv_layer *l)
{
	char *a, *b = NULL;

	if (l->access == LV_ACCESS_NETWORK) {
		a = vsm__xml_escape(l->pool);
		b = vsm__xml_escape(l->volume);
		if (a && b)
			fprintf(f, "%*s<source pool='%s' volume='%s'/>\n", indent, "", a, b);
	} else {
		a = vsm__xml_escape(l->path);
		if (a)
			fprintf(f, "%*s<source %s='%s'/>\n", indent, "",
				l->access == LV_ACCESS_FILE ? "file" : "dev", a);
	}
	free(b);
	free(a);
	return a != NULL && (l->access != LV_ACCESS_NETWORK || b != NULL);
}

char *lv_disk_xml(const lv_layer *layers, size_t n, const char *target,
		  const char *bus)
{
	char *buf = NULL, *t = NULL, *bs = NULL;
	size_t size = 0, i;
	bool ok = true;
	FILE *f;

	if (n == 0 || !(f = open_memstream(&buf, &size)))
		return NULL;
	t = vsm__xml_escape(target ? target : "vdb");
	bs = vsm__xml_escape(bus ? bus : "virtio");
	fprintf(f, "<disk type='%s' device='disk'>\n"
		   "  <driver name='qemu' type='%s'/>\n",
		type_name(layers[0].access), layers[0].format);
	ok = put_source(f, 2, &layers[0]);
	/* The whole chain is spelled out so libvirt never probes formats. */
	for (i = 1; i < n && ok; i++) {
		int ind = (int)(2 * i);

		fprintf(f, "%*s<backingStore type='%s'>\n"
			   "%*s  <format type='%s'/>\n",
			ind, "", type_name(layers[i].access), ind, "", layers[i].format);
		ok = put_source(f, ind + 2, &layers[i]);
	}
	fprintf(f, "%*s<backingStore/>\n", (int)(2 * n), "");
	for (i = n - 1; i > 0; i--)
		fprintf(f, "%*s</backingStore>\n", (int)(2 * i), "");
	fprintf(f, "  <target dev='%s' bus='%s'/>\n</disk>\n", t ? t : "", bs ? bs : "");
	if (fclose(f) != 0 || !ok || !t || !bs) {
		free(buf);
		buf = NULL;
	}
	free(t);
	free(bs);
	return buf;
}

char *lv_volume_xml(const char *name, uint64_t size, uint64_t allocation,
		    const char *format, bool with_format,
		    const char *backing_path, const char *backing_format)
{
	char *buf = NULL, *n = vsm__xml_escape(name), *bp = NULL;
	bool qcow2 = !strcmp(format, "qcow2");
	size_t len = 0;
	FILE *f;

	if (!n || (backing_path && !(bp = vsm__xml_escape(backing_path))) ||
	    !(f = open_memstream(&buf, &len))) {
		free(n);
		free(bp);
		return NULL;
	}
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
	free(n);
	free(bp);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
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
