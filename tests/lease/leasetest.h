/*
 * Helpers for the lease suites: a datastore shared by several "hosts"
 * (each a context with its own state directory, possibly in a child
 * process), short lease timings, and a watcher that reads a host's
 * heartbeat sector straight from the metadata file.
 */
#ifndef VSM_LEASETEST_H
#define VSM_LEASETEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "testutil.h"

#define LT_TIMEOUT_MS 400
#define LT_RENEW_MS 50

/* Set the lease timings and protocol used by datastores formatted from
 * now on in this process (and its children). */
void lt_env(bool plain);

/* Open a context for @host with state dir @dir, register the datastore
 * "ds" at @uri (formatting it if blank), add and link the host. */
vsm_ctx *lt_host_ctx(const char *dir, const char *uri, const char *host);
/* The same without Check assertions, for child processes: NULL on error. */
vsm_ctx *lt_host_ctx_nock(const char *dir, const char *uri, const char *host,
			  unsigned int ctx_flags);

int64_t lt_now_ms(void);
void lt_sleep_ms(int64_t ms);

/* Fork a child that dies with its parent; returns its pid in the parent
 * and runs @fn(@arg) then _exit(its return) in the child. */
pid_t lt_fork(int (*fn)(void *arg), void *arg);
/* Reap @pid; its exit status (or 128+signal). */
int lt_reap(pid_t pid);

/* Watch @host's heartbeat sector in the metadata file of datastore
 * directory @dsdir on a thread, every millisecond. */
typedef struct lt_watch lt_watch;
lt_watch *lt_watch_start(const char *dsdir, const char *host);
/* Start time (monotonic ms) of the last read that did not yet show the
 * counter value shown now: the newest write became visible after it. */
int64_t lt_watch_before_last_change(lt_watch *w);
void lt_watch_stop(lt_watch *w);

#endif
