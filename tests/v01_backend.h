/*
 * A backend built only against the 0.1 header (tests/compat/vsm-0.1): a
 * directory of plain files behind a version 1 struct vsm_backend_ops, to
 * show that such a table still registers and works with this library.
 * This header names no libvsm type by its new definition, so either
 * header may be in scope where it is included.
 */
#ifndef VSM_TEST_V01_BACKEND_H
#define VSM_TEST_V01_BACKEND_H

struct vsm_ctx;
struct vsm_backend_ops;

/* The 0.1 table, with or without bdev_compare_and_write; its scheme is
 * "v01" or "v01nocaw" (URIs SCHEME:///abs/dir). */
const struct vsm_backend_ops *v01_backend_ops(int with_caw);
/* Register it through vsm_backend_register(). */
int v01_backend_register(struct vsm_ctx *ctx, int with_caw);

#endif
