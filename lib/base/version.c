/*
 * Run-time version of the loaded library.
 */
#include "internal.h"

VSM_API int vsm_version(int *major, int *minor, int *patch)
{
	if (major)
		*major = VSM_VERSION_MAJOR;
	if (minor)
		*minor = VSM_VERSION_MINOR;
	if (patch)
		*patch = VSM_VERSION_PATCH;
	return VSM_VERSION_NUMBER;
}
