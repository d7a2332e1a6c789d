/*
 * Helpers for the COW engine's suites: a temp directory per test case
 * (removed by an unchecked fixture even when tests fail), running
 * qemu-img/qemu-io, an in-memory model of the guest disk, and libqcow as
 * an independent reader.
 */
#ifndef VSM_COWTEST_H
#define VSM_COWTEST_H

#include <check.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsm/vsm.h"
#include "vsm/image.h"

#define CT_OK(expr) do { \
	int ct_rc_ = (expr); \
	const vsm_error *ct_e_ = vsm_error_last(); \
	ck_assert_msg(ct_rc_ >= 0, "%s -> %d (%s)", #expr, ct_rc_, \
		      ct_e_ ? ct_e_->message : "no message"); \
} while (0)

/* Run @s (each suite's main): EXIT_SUCCESS when no check failed. */
int ct_run(Suite *s);

/* Unchecked fixture pair: make and remove the test case's directory. */
void ct_setup(void);
void ct_teardown(void);
const char *ct_dir(void);
/* @out (PATH_MAX) = dir/name */
void ct_path(char *out, const char *name);

/* Run a shell command (output hidden); returns its exit status. The
 * strings QEMU_IMG / QEMU_IO in @fmt's arguments come from ct_qemu_img(). */
int ct_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *ct_qemu_img(void);
const char *ct_qemu_io(void);
/* qemu-img check exit status: 0 clean, 2 corrupt, 3 leaks. */
int ct_qemu_check(const char *path);

/* Read a whole file; NULL-safe free with free(). */
/* Big-endian @bytes-wide integer at @off of the file @path, for crafting
 * damaged images (the file is not otherwise changed). */
void ct_put_be(const char *path, uint64_t off, uint64_t v, int bytes);
uint64_t ct_get_be(const char *path, uint64_t off, int bytes);
uint8_t *ct_read_file(const char *path, size_t *len);
/* qemu-img convert -O raw @path and compare with @model of @len bytes. */
bool ct_qemu_matches(const char *path, const uint8_t *model, size_t len);
/* Read through our engine and compare. */
bool ct_vsm_matches(const char *path, const uint8_t *model, size_t len);
/* Read with libqcow (chain given top first, NULL-terminated). */
bool ct_libqcow_matches(const char *const *chain, const uint8_t *model, size_t len);

/* Deterministic random numbers. */
uint64_t ct_rand(uint64_t *state);

/* libqcow (20201213) reads v3 zero clusters as data at offset 0, so
 * sequences checked with it write only. */
extern bool ct_writes_only;

/* Apply a random write/zero/discard to @img and to @model; returns the
 * kind (0 write, 1 zero, 2 discard). */
int ct_random_op(vsm_image *img, uint8_t *model, size_t size, uint64_t *rs,
		 uint32_t max_len);

#endif
