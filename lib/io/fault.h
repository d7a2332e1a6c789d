/*
 * Injected I/O faults, for tests only: compiled in when the build has
 * tests (meson option `tests`, which defines VSM_TEST_FAULTS); a release
 * build has none of it and never reads the environment for it.
 *
 * Every core bdev, whatever backend is below it, asks before each read,
 * write (also within batches) and flush whether that I/O is to fail. The
 * rule comes from VSM_FAULT in the environment (read at the first I/O),
 * or from vsm__fault_set() in a test program:
 *
 *   OP:N[:MODE][:ERR]   OP   read | write | flush | any
 *                       N    the Nth I/O of that kind in this process
 *                            fails (1-based)
 *                       MODE transient (only that one, the default) or
 *                            sticky (that one and every later one)
 *                       ERR  eio (the default) or enospc
 *
 * VSM_FAULT_MATCH (or the @match argument), when set, limits the count to
 * bdevs whose label contains it.
 */
#ifndef VSM_FAULT_H
#define VSM_FAULT_H

#include <stdbool.h>
#include <stdint.h>

enum { VSM_FAULT_READ = 0, VSM_FAULT_WRITE = 1, VSM_FAULT_FLUSH = 2 };

#ifdef VSM_TEST_FAULTS
/* 0, or the negative VSM_E* code this I/O fails with (error set). */
int vsm__fault_check(const char *label, int op);
/* A rule is set (batches then run request by request). */
bool vsm__fault_armed(void);
/* Set the rule (NULL: none) and restart the counts; -VSM_EINVAL for a
 * rule that does not parse. */
int vsm__fault_set(const char *spec, const char *match);
/* How many I/Os of @op were counted, and how many failed, since the
 * rule was set. */
uint64_t vsm__fault_count(int op);
uint64_t vsm__fault_failed(void);
#else
static inline int vsm__fault_check(const char *label, int op)
{
	(void)label;
	(void)op;
	return 0;
}

static inline bool vsm__fault_armed(void)
{
	return false;
}
#endif

#endif /* VSM_FAULT_H */
