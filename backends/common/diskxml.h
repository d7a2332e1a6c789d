/*
 * What the built-in backends share for deployment: the one writer of
 * libvirt <disk> elements, with the target and bus checked against
 * libvirt's grammar and every value escaped. The public entry points
 * (vsm_disk_xml_build and friends in include/vsm/backend.h) are thin
 * wrappers over these; the internal forms do not clear the thread's
 * error, so a backend may call them in the middle of its own work.
 */
#ifndef VSM_BACKENDS_COMMON_DISKXML_H
#define VSM_BACKENDS_COMMON_DISKXML_H

#include "vsm/backend.h"

/* Same contract as vsm_disk_xml_build(). */
int vsm__diskxml_build(char **out, const vsm_disk_xml_layer *layers, size_t n_layers,
		       const char *target, const char *bus, unsigned int flags);

/* Same contract as vsm_disk_xml_escape(); @what names the value in a
 * refusal ("<source> attribute 'file'"), NULL for "value". */
int vsm__diskxml_escape(char **out, const char *s, const char *what);

/* Same contracts as vsm_disk_target_check() / vsm_disk_bus_check(). */
int vsm__diskxml_target_check(const char *target);
int vsm__diskxml_bus_check(const char *bus);

#endif /* VSM_BACKENDS_COMMON_DISKXML_H */
