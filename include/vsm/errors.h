/*
 * libvsm - error codes and the thread-local last error.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_ERRORS_H
#define VSM_ERRORS_H

#include "common.h"

VSM_BEGIN_DECL

/**
 * Error codes. Functions return 0 on success and the *negated* code on
 * failure (for example -VSM_ENOTFOUND). The numbers are libvsm's own and
 * never change; they are not errno values.
 *
 * Since: 0.1
 */
typedef enum {
	VSM_OK = 0,
	VSM_EINVAL = 1,     /**< an argument is malformed or out of range */
	VSM_ENOMEM = 2,     /**< out of memory */
	VSM_ENOTFOUND = 3,  /**< the named object does not exist */
	VSM_EEXISTS = 4,    /**< an object of that name already exists */
	VSM_EBUSY = 5,      /**< the object is in use (attached, deployed, ...) */
	VSM_ENOSPC = 6,     /**< not enough space on the datastore */
	VSM_EIO = 7,        /**< the storage failed an I/O */
	VSM_ECORRUPT = 8,   /**< a record or image is damaged and was refused */
	VSM_ENOTSUP = 9,    /**< the backend or build does not support this */
	VSM_EVERSION = 10,  /**< a version (ABI, format) is unknown */
	VSM_ESTATE = 11,    /**< the object is not in a state that allows this */
	VSM_EMISMATCH = 12, /**< compare-and-write found different data */
	VSM_ELEASE = 13,    /**< a lease is held by another host */
	VSM_ESTALE = 14,    /**< this host's lease was lost; write fenced off */
	VSM_EPERM = 15,     /**< permission denied by the storage */
	VSM_EINTERNAL = 16, /**< a bug in libvsm */
	VSM_ECANCELED = 17, /**< the caller cancelled it; its work was undone (since 0.2) */
	VSM_ETIMEDOUT = 18, /**< a deadline the caller set passed; its work was undone (since 0.2) */
} vsm_error_code;

/** The last error of the calling thread. Since: 0.1 */
typedef struct {
	int code;            /**< a positive vsm_error_code, or 0 */
	const char *message; /**< human-readable text naming the object */
} vsm_error;

/**
 * The last error raised on the calling thread, or NULL if the last
 * public call succeeded. Every public call clears it on entry. The
 * pointer stays valid until the thread's next libvsm call.
 *
 * Since: 0.1
 */
VSM_API const vsm_error *vsm_error_last(void);

/** Forget the calling thread's last error. Since: 0.1 */
VSM_API void vsm_error_clear(void);

/**
 * A static description of a code; accepts the code negated or not.
 *
 * Since: 0.1
 */
VSM_API const char *vsm_strerror(int code);

/**
 * The code's symbolic name without the prefix ("ELEASE" for
 * VSM_ELEASE, "OK" for 0), for scripts and bindings that key on it;
 * accepts the code negated or not; NULL for a code this library does
 * not know.
 *
 * Since: 0.2
 */
VSM_API const char *vsm_error_name(int code);

VSM_END_DECL

#endif /* VSM_ERRORS_H */
