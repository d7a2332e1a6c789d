/*
 * The one writer of libvirt <disk> elements (every backend's deploy goes
 * through it) and the public helpers of include/vsm/backend.h built on
 * it: escaping, and the disk target and bus grammars. The grammars follow
 * libvirt's domain schema (domaincommon.rng: diskTargetDev, diskTarget's
 * bus, diskSource's types, storagecommon.rng's formats), narrowed where
 * the schema is looser than what libvirt's parser accepts for a disk.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diskxml.h"

#define TARGET_MAX 32
#define NAME_MAX_LEN 64
#define LAYERS_MAX 256
#define DEPTH_MAX 8

/* Longest prefix first, so "xvd" is not read as something shorter. */
static const char *const target_prefixes[] = { "xvd", "ubd", "fd", "hd", "sd", "vd", NULL };
static const char *const buses[] = {
	"virtio", "scsi", "sata", "ide", "usb", "xen", "sd", "fdc", NULL
};
#define BUS_LIST "virtio, scsi, sata, ide, usb, xen, sd, fdc"
static const char *const disk_types[] = {
	"file", "block", "dir", "network", "volume", "nvme", "vhostuser", NULL
};
static const char *const formats[] = {
	"raw", "qcow2", "qcow", "qed", "vmdk", "cow", "dir", "bochs", "cloop", "dmg",
	"iso", "vpc", "vdi", "fat", "vhd", "ploop", "luks", NULL
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

static int oom(void)
{
	return vsm_error_set(VSM_ENOMEM, "out of memory");
}

int vsm__diskxml_target_check(const char *target)
{
	size_t i = 0, letters;
	int k;

	if (!target)
		return vsm_error_set(VSM_EINVAL, "deploy: no target given");
	for (k = 0; target_prefixes[k]; k++) {
		size_t plen = strlen(target_prefixes[k]);

		if (!strncmp(target, target_prefixes[k], plen)) {
			i = plen;
			break;
		}
	}
	if (!target_prefixes[k])
		goto bad;
	for (letters = i; target[i] >= 'a' && target[i] <= 'z'; i++)
		;
	if (i == letters)
		goto bad;
	while (target[i] >= '0' && target[i] <= '9')
		i++;
	if (target[i] != '\0' || i > TARGET_MAX)
		goto bad;
	return 0;
bad:
	return vsm_error_set(VSM_EINVAL, "deploy: target '%s' is not a disk name libvirt "
			     "accepts (fd, hd, sd, vd, xvd or ubd, then letters a-z, then "
			     "optional digits; at most %d characters)", target, TARGET_MAX);
}

int vsm__diskxml_bus_check(const char *bus)
{
	if (!bus)
		return vsm_error_set(VSM_EINVAL, "deploy: no bus given");
	if (!in_list(buses, bus))
		return vsm_error_set(VSM_EINVAL, "deploy: bus '%s' is not one of " BUS_LIST, bus);
	return 0;
}

/* Length of the UTF-8 sequence at @p that encodes an XML 1.0 Char, or 0
 * if it is malformed or not a Char. */
static size_t xml_char_len(const unsigned char *p)
{
	unsigned char c = p[0];
	uint32_t cp;
	size_t n, i;

	if (c < 0x80)
		return (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') ? 1 : 0;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	/* Overlong forms, UTF-16 surrogates, past U+10FFFF, and the two
	 * non-characters XML excludes. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF)
		return 0;
	return n;
}

/* Write @s escaped to @f; on a character XML cannot carry, set *bad to its
 * byte offset and return -1 without writing the rest. */
static int escape_to(FILE *f, const char *s, size_t *bad)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = xml_char_len(p);

		if (n == 0) {
			*bad = (size_t)(p - (const unsigned char *)s);
			return -1;
		}
		switch (*p) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '\'': fputs("&apos;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\t': fputs("&#9;", f); break;
		case '\n': fputs("&#10;", f); break;
		case '\r': fputs("&#13;", f); break;
		default: fwrite(p, 1, n, f); break;
		}
		p += n;
	}
	return 0;
}

/* The value itself is not echoed: it may be what made the message unprintable. */
static int bad_value(const char *what, const char *s, size_t at)
{
	unsigned char c = (unsigned char)s[at];

	if (c < 0x20)
		return vsm_error_set(VSM_EINVAL, "%s holds control character 0x%02x at byte %zu, "
				     "which XML cannot carry", what ? what : "value", c, at);
	return vsm_error_set(VSM_EINVAL, "%s is not valid UTF-8 (or holds a character XML "
			     "cannot carry) at byte %zu", what ? what : "value", at);
}

int vsm__diskxml_escape(char **out, const char *s, const char *what)
{
	char *buf = NULL;
	size_t size = 0, bad = 0;
	FILE *f;
	int r;

	if (!out || !s)
		return vsm_error_set(VSM_EINVAL, "vsm_disk_xml_escape: NULL argument");
	if (!(f = open_memstream(&buf, &size)))
		return oom();
	r = escape_to(f, s, &bad);
	if (fclose(f) != 0) {
		free(buf);
		return oom();
	}
	if (r < 0) {
		free(buf);
		return bad_value(what, s, bad);
	}
	*out = buf;
	return 0;
}

/* An XML name we are willing to write: ASCII, no namespace colon. */
static bool is_name(const char *s)
{
	size_t i;

	if (!s || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (i = 1; s[i]; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return i <= NAME_MAX_LEN;
}

typedef struct {
	FILE *f;
	size_t layer;
} writer;

static int put_attrs(writer *w, const char *elem, const char *const *attrs)
{
	size_t i, j;

	for (i = 0; attrs && attrs[i]; i += 2) {
		const char *name = attrs[i], *value = attrs[i + 1];
		char what[160];
		size_t bad = 0;

		if (!is_name(name))
			return vsm_error_set(VSM_EINVAL, "disk XML: layer %zu: <%s> has an attribute "
					     "named '%s', which is not an XML name", w->layer, elem,
					     name);
		for (j = 0; j < i; j += 2)
			if (!strcmp(attrs[j], name))
				return vsm_error_set(VSM_EINVAL, "disk XML: layer %zu: <%s> attribute "
						     "'%s' is given twice", w->layer, elem, name);
		if (!value)
			continue;
		fprintf(w->f, " %s='", name);
		if (escape_to(w->f, value, &bad) < 0) {
			snprintf(what, sizeof(what), "disk XML: layer %zu: <%s> attribute '%s'",
				 w->layer, elem, name);
			return bad_value(what, value, bad);
		}
		fputc('\'', w->f);
	}
	return 0;
}

static int put_elem(writer *w, const char *name, const char *const *attrs,
		    const vsm_disk_xml_elem *children, size_t n_children, int indent,
		    int depth)
{
	size_t i;
	int rc;

	if (!is_name(name))
		return vsm_error_set(VSM_EINVAL, "disk XML: layer %zu: element name '%s' is not "
				     "an XML name", w->layer, name ? name : "(null)");
	if (depth > DEPTH_MAX)
		return vsm_error_set(VSM_EINVAL, "disk XML: layer %zu: <%s> is nested more than "
				     "%d deep", w->layer, name, DEPTH_MAX);
	if (n_children && !children)
		return vsm_error_set(VSM_EINVAL, "disk XML: layer %zu: <%s> has %zu children "
				     "but no array", w->layer, name, n_children);
	fprintf(w->f, "%*s<%s", indent, "", name);
	if ((rc = put_attrs(w, name, attrs)) < 0)
		return rc;
	if (n_children == 0) {
		fputs("/>\n", w->f);
		return 0;
	}
	fputs(">\n", w->f);
	for (i = 0; i < n_children; i++)
		if ((rc = put_elem(w, children[i].name, children[i].attrs, children[i].children,
				   children[i].n_children, indent + 2, depth + 1)) < 0)
			return rc;
	fprintf(w->f, "%*s</%s>\n", indent, "", name);
	return 0;
}

static int layer_check(const vsm_disk_xml_layer *l, size_t i)
{
	if (!l->type || !in_list(disk_types, l->type))
		return vsm_error_set(VSM_EINVAL, "disk XML: layer %zu: type '%s' is not one of "
				     "file, block, dir, network, volume, nvme, vhostuser", i,
				     l->type ? l->type : "(null)");
	if (!l->format || !in_list(formats, l->format))
		return vsm_error_set(VSM_EINVAL, "disk XML: layer %zu: format '%s' is not an "
				     "image format libvirt knows", i,
				     l->format ? l->format : "(null)");
	return 0;
}

int vsm__diskxml_build(char **out, const vsm_disk_xml_layer *layers, size_t n_layers,
		       const char *target, const char *bus, unsigned int flags)
{
	writer w = { NULL, 0 };
	char *buf = NULL;
	size_t size = 0, i;
	int rc;

	if (!out || !layers)
		return vsm_error_set(VSM_EINVAL, "vsm_disk_xml_build: NULL argument");
	if (flags)
		return vsm_error_set(VSM_EINVAL, "vsm_disk_xml_build: unknown flags 0x%x", flags);
	if (n_layers == 0 || n_layers > LAYERS_MAX)
		return vsm_error_set(VSM_EINVAL, "disk XML: %zu layers (1 to %d allowed)",
				     n_layers, LAYERS_MAX);
	if ((rc = vsm__diskxml_target_check(target)) < 0 ||
	    (bus && (rc = vsm__diskxml_bus_check(bus)) < 0))
		return rc;
	for (i = 0; i < n_layers; i++)
		if ((rc = layer_check(&layers[i], i)) < 0)
			return rc;
	if (!(w.f = open_memstream(&buf, &size)))
		return oom();
	fprintf(w.f, "<disk type='%s' device='disk'>\n"
		     "  <driver name='qemu' type='%s'/>\n", layers[0].type, layers[0].format);
	rc = put_elem(&w, "source", layers[0].source_attrs, layers[0].source_children,
		      layers[0].n_source_children, 2, 1);
	for (i = 1; i < n_layers && rc == 0; i++) {
		int ind = (int)(2 * i);

		w.layer = i;
		fprintf(w.f, "%*s<backingStore type='%s'>\n%*s  <format type='%s'/>\n",
			ind, "", layers[i].type, ind, "", layers[i].format);
		rc = put_elem(&w, "source", layers[i].source_attrs, layers[i].source_children,
			      layers[i].n_source_children, ind + 2, 1);
	}
	if (rc == 0) {
		/* An empty <backingStore/> says the chain ends here. */
		fprintf(w.f, "%*s<backingStore/>\n", (int)(2 * n_layers), "");
		for (i = n_layers - 1; i > 0; i--)
			fprintf(w.f, "%*s</backingStore>\n", (int)(2 * i), "");
		/* Both values were checked against grammars without quotes. */
		fprintf(w.f, "  <target dev='%s'", target);
		if (bus)
			fprintf(w.f, " bus='%s'", bus);
		fputs("/>\n</disk>\n", w.f);
	}
	if (fclose(w.f) != 0 && rc == 0)
		rc = oom();
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

/* --- the public forms: each public call clears the thread's error first --- */

VSM_API int vsm_disk_xml_build(char **out, const vsm_disk_xml_layer *layers,
			       size_t n_layers, const char *target, const char *bus,
			       unsigned int flags)
{
	vsm_error_clear();
	return vsm__diskxml_build(out, layers, n_layers, target, bus, flags);
}

VSM_API int vsm_disk_xml_escape(char **out, const char *s)
{
	vsm_error_clear();
	return vsm__diskxml_escape(out, s, NULL);
}

VSM_API int vsm_disk_target_check(const char *target)
{
	vsm_error_clear();
	return vsm__diskxml_target_check(target);
}

VSM_API int vsm_disk_bus_check(const char *bus)
{
	vsm_error_clear();
	return vsm__diskxml_bus_check(bus);
}
