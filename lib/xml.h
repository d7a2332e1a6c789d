/*
 * Builders for the libvirt <disk> elements that deploy returns; shared by
 * the built-in backends so every one escapes and orders elements alike.
 */
#ifndef VSM_XML_H
#define VSM_XML_H

#include <stddef.h>

/* Escape a string for an XML attribute value; caller frees. */
char *vsm__xml_escape(const char *s);

/* <disk type='file'> for @path with a backing chain of local files
 * (@chain_paths nearest first). Returns a malloc'd string or NULL. */
char *vsm__disk_xml_file(const char *path, const char *format,
			 const char *target, const char *bus,
			 const char *const *chain_paths,
			 const char *const *chain_formats, size_t chain_len);

#endif /* VSM_XML_H */
