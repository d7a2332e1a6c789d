/*
 * libvsm - compile-time and run-time version.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_VERSION_H
#define VSM_VERSION_H

#include "common.h"

VSM_BEGIN_DECL

/** Version of the headers in use. Since: 0.1 */
#define VSM_VERSION_MAJOR 0
#define VSM_VERSION_MINOR 1
#define VSM_VERSION_PATCH 0
#define VSM_VERSION_STRING "0.1.0"
/** MAJOR*10000 + MINOR*100 + PATCH, for preprocessor comparisons. Since: 0.1 */
#define VSM_VERSION_NUMBER \
	(VSM_VERSION_MAJOR * 10000 + VSM_VERSION_MINOR * 100 + VSM_VERSION_PATCH)

/**
 * Version of the library actually loaded, as VSM_VERSION_NUMBER would
 * give it; @major, @minor and @patch may each be NULL.
 *
 * Since: 0.1
 */
VSM_API int vsm_version(int *major, int *minor, int *patch);

VSM_END_DECL

#endif /* VSM_VERSION_H */
