/*
 * Helpers shared by the core's Check suites: temp directories that are
 * removed even when a test fails, contexts on them, and assertions that
 * print the library's message.
 */
#ifndef VSM_TESTUTIL_H
#define VSM_TESTUTIL_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <vsm/vsm.h>

/* The suite's temp root, made by tu_root_setup (unchecked fixture, runs
 * in the parent) and removed by tu_root_teardown whatever the tests did. */
extern char *tu_root;
void tu_root_setup(void);
void tu_root_teardown(void);

/* A fresh directory under the root; caller frees the string. */
char *tu_dir(const char *name);
char *tu_uri(const char *dir);            /* "file://DIR" */
void tu_rmrf(const char *path);
vsm_ctx *tu_ctx(const char *state_dir);   /* asserts success */
int tu_count_files(const char *dir);      /* entries, without . .. .vsm */
bool tu_exists(const char *path);

/* Create container @name on @ds with devices "d0".."d{n-1}" of @size. */
int tu_create(vsm_container **out, vsm_ctx *ctx, const char *ds, const char *name,
	      size_t n, uint64_t size);

const char *tu_msg(void);

#define ck_vsm(call) do { \
		int rc_ = (call); \
		ck_assert_msg(rc_ == 0, "%s returned %d: %s", #call, rc_, tu_msg()); \
	} while (0)

/* The call fails with -code and its message contains @substr. */
#define ck_vsm_refused(call, code, substr) do { \
		int rc_ = (call); \
		ck_assert_msg(rc_ == -(code), "%s returned %d (%s), expected -%s", #call, \
			      rc_, tu_msg(), #code); \
		ck_assert_msg(strstr(tu_msg(), (substr)) != NULL, \
			      "%s: message '%s' does not mention '%s'", #call, tu_msg(), \
			      (substr)); \
	} while (0)

int tu_run(Suite *s);

#endif
