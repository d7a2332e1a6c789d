/*
 * libvsm - common definitions shared by every public header.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_COMMON_H
#define VSM_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Only symbols marked VSM_API are exported; the library is built with
 * hidden visibility and a version script, so everything else stays private. */
#if defined(__GNUC__) && __GNUC__ >= 4
# define VSM_API __attribute__((visibility("default")))
# define VSM_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
# define VSM_API
# define VSM_PRINTF(fmt, args)
#endif

#ifdef __cplusplus
# define VSM_BEGIN_DECL extern "C" {
# define VSM_END_DECL }
#else
# define VSM_BEGIN_DECL
# define VSM_END_DECL
#endif

/** Length of a UUID in its canonical text form, without the NUL. Since: 0.1 */
#define VSM_UUID_STRLEN 36

#endif /* VSM_COMMON_H */
