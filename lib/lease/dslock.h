/*
 * The datastore's metadata lock: one holder at a time, across the
 * processes of one host and across hosts, for every change of the
 * datastore's records. doc/leases.md ("The metadata lock") gives the
 * protocol and why it is safe.
 */
#ifndef VSM_DSLOCK_H
#define VSM_DSLOCK_H

#include "meta.h"

struct vsm_dstore;
typedef struct vsm_dslock vsm_dslock;

/* @state_dir holds the host's node id and the local lock files. The
 * datastore's lease area must be open (its protocol picks the lock's). */
int vsm__dslock_open(vsm_dslock **out, struct vsm_dstore *ds, const char *state_dir);
void vsm__dslock_close(vsm_dslock *l);

/* Wait for the lock (a holder whose lock stood still for the timeout is
 * dead and loses it); -VSM_EBUSY after a bounded wait, naming the holder. */
int vsm__dslock_acquire(vsm_dslock *l);
/* Before each write under the lock: still ours and within its deadline
 * (renewed when half of it is gone); -VSM_ESTALE if it was broken. */
int vsm__dslock_check(vsm_dslock *l);
void vsm__dslock_release(vsm_dslock *l);

#endif /* VSM_DSLOCK_H */
