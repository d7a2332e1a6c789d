/*
 * Names of the device formats (VSM_FORMAT_*), in one place: the record
 * codec, the engine and the public API all spell them through these.
 */
#include <string.h>

#include "internal.h"

VSM_API const char *vsm_format_name(int format)
{
	switch (format) {
	case VSM_FORMAT_RAW: return "raw";
	case VSM_FORMAT_QCOW2: return "qcow2";
	}
	return NULL;
}

VSM_API int vsm_format_parse(int *out, const char *name)
{
	if (name && !strcmp(name, "raw"))
		*out = VSM_FORMAT_RAW;
	else if (name && !strcmp(name, "qcow2"))
		*out = VSM_FORMAT_QCOW2;
	else
		return vsm_err(VSM_EINVAL, "unknown format '%s' (expected raw or qcow2)",
			       name ? name : "");
	return 0;
}

VSM_API uint64_t vsm_backend_device_bytes(const vsm_backend_device_spec *spec)
{
	if (!spec)
		return 0;
	if (spec->format && !strcmp(spec->format, "qcow2"))
		return spec->size + spec->size / 64 + (16ull << 20);
	return spec->size;
}
