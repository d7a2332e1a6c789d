/*
 * libvirt <disk> XML for deployed devices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xml.h"

char *vsm__xml_escape(const char *s)
{
	size_t len = 1;
	const char *p;
	char *out, *o;

	for (p = s; *p; p++)
		len += (*p == '&') ? 5 : (*p == '<' || *p == '>') ? 4 :
		       (*p == '\'' || *p == '"') ? 6 : 1;
	if (!(out = malloc(len)))
		return NULL;
	for (p = s, o = out; *p; p++) {
		const char *rep = NULL;

		switch (*p) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '\'': rep = "&apos;"; break;
		case '"': rep = "&quot;"; break;
		}
		if (rep) {
			strcpy(o, rep);
			o += strlen(rep);
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

char *vsm__disk_xml_file(const char *path, const char *format,
			 const char *target, const char *bus,
			 const char *const *chain_paths,
			 const char *const *chain_formats, size_t chain_len)
{
	char *buf = NULL, *esc;
	size_t size = 0, i;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return NULL;
	esc = vsm__xml_escape(path);
	fprintf(f, "<disk type='file' device='disk'>\n"
		   "  <driver name='qemu' type='%s'/>\n"
		   "  <source file='%s'/>\n",
		format, esc ? esc : "");
	free(esc);
	/* Spell the whole chain so libvirt does not probe formats itself. */
	for (i = 0; i < chain_len; i++) {
		esc = vsm__xml_escape(chain_paths[i]);
		fprintf(f, "%*s<backingStore type='file'>\n"
			   "%*s  <format type='%s'/>\n"
			   "%*s  <source file='%s'/>\n",
			(int)(2 + 2 * i), "", (int)(2 + 2 * i), "", chain_formats[i],
			(int)(2 + 2 * i), "", esc ? esc : "");
		free(esc);
	}
	fprintf(f, "%*s<backingStore/>\n", (int)(2 + 2 * chain_len), "");
	for (i = chain_len; i > 0; i--)
		fprintf(f, "%*s</backingStore>\n", (int)(2 * i), "");
	fprintf(f, "  <target dev='%s' bus='%s'/>\n</disk>\n",
		target ? target : "vdb", bus ? bus : "virtio");
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
