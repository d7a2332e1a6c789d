/*
 * Injected I/O faults for tests (lib/io/fault.h). One rule per process,
 * counted with atomics so that I/O from several threads (a lease renewal
 * thread, async batches) is numbered consistently.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "internal.h"

#ifdef VSM_TEST_FAULTS

#define FAULT_ANY 3

static struct {
	pthread_mutex_t lock;
	bool loaded;      /* the environment was read */
	bool active;
	int op;           /* VSM_FAULT_* or FAULT_ANY */
	uint64_t nth;
	bool sticky;
	int err;          /* positive VSM_E* code */
	char match[128];
} rule = { PTHREAD_MUTEX_INITIALIZER, false, false, 0, 0, false, VSM_EIO, "" };

static atomic_uint_fast64_t counts[4];
static atomic_uint_fast64_t failed;

static int parse(const char *spec)
{
	char buf[128], *save = NULL, *tok;
	int field = 0;

	rule.active = false;
	rule.sticky = false;
	rule.err = VSM_EIO;
	if (!spec || !*spec)
		return 0;
	snprintf(buf, sizeof(buf), "%s", spec);
	for (tok = strtok_r(buf, ":", &save); tok; tok = strtok_r(NULL, ":", &save), field++) {
		char *end = NULL;

		if (field == 0) {
			if (!strcmp(tok, "read"))
				rule.op = VSM_FAULT_READ;
			else if (!strcmp(tok, "write"))
				rule.op = VSM_FAULT_WRITE;
			else if (!strcmp(tok, "flush"))
				rule.op = VSM_FAULT_FLUSH;
			else if (!strcmp(tok, "any"))
				rule.op = FAULT_ANY;
			else
				goto bad;
		} else if (field == 1) {
			rule.nth = strtoull(tok, &end, 10);
			if (!end || *end || rule.nth == 0)
				goto bad;
		} else if (!strcmp(tok, "sticky")) {
			rule.sticky = true;
		} else if (!strcmp(tok, "transient")) {
			rule.sticky = false;
		} else if (!strcmp(tok, "enospc")) {
			rule.err = VSM_ENOSPC;
		} else if (!strcmp(tok, "eio")) {
			rule.err = VSM_EIO;
		} else {
			goto bad;
		}
	}
	if (field < 2)
		goto bad;
	rule.active = true;
	return 0;
bad:
	rule.active = false;
	return vsm_err(VSM_EINVAL, "fault rule '%s' is not OP:N[:transient|sticky][:eio|enospc]",
		       spec);
}

static void restart(void)
{
	int i;

	for (i = 0; i < 4; i++)
		atomic_store(&counts[i], 0);
	atomic_store(&failed, 0);
}

int vsm__fault_set(const char *spec, const char *match)
{
	int rc;

	pthread_mutex_lock(&rule.lock);
	rule.loaded = true;
	snprintf(rule.match, sizeof(rule.match), "%s", match ? match : "");
	rc = parse(spec);
	restart();
	pthread_mutex_unlock(&rule.lock);
	return rc;
}

static void load_env(void)
{
	const char *m;

	pthread_mutex_lock(&rule.lock);
	if (!rule.loaded) {
		rule.loaded = true;
		m = getenv("VSM_FAULT_MATCH");
		snprintf(rule.match, sizeof(rule.match), "%s", m ? m : "");
		if (parse(getenv("VSM_FAULT")) < 0)
			fprintf(stderr, "libvsm: ignoring VSM_FAULT: %s\n",
				vsm_error_last()->message);
	}
	pthread_mutex_unlock(&rule.lock);
}

int vsm__fault_check(const char *label, int op)
{
	uint64_t n;

	if (!rule.loaded)
		load_env();
	if (!rule.active)
		return 0;
	if (rule.match[0] && (!label || !strstr(label, rule.match)))
		return 0;
	if (rule.op != FAULT_ANY && rule.op != op)
		return 0;
	n = atomic_fetch_add(&counts[rule.op], 1) + 1;
	if (n != rule.nth && !(rule.sticky && n > rule.nth))
		return 0;
	atomic_fetch_add(&failed, 1);
	return vsm_err(rule.err, "%s: injected %s fault (%s #%llu)", label ? label : "bdev",
		       rule.err == VSM_ENOSPC ? "ENOSPC" : "I/O",
		       op == VSM_FAULT_READ ? "read" : op == VSM_FAULT_WRITE ? "write" : "flush",
		       (unsigned long long)n);
}

bool vsm__fault_armed(void)
{
	if (!rule.loaded)
		load_env();
	return rule.active;
}

uint64_t vsm__fault_count(int op)
{
	return op >= 0 && op < 4 ? atomic_load(&counts[op]) : 0;
}

uint64_t vsm__fault_failed(void)
{
	return atomic_load(&failed);
}

#else
/* A translation unit must not be empty (ISO C). */
typedef int vsm__fault_unused;
#endif
