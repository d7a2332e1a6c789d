/*
 * The datastore's metadata lock: one holder at a time, across the
 * processes of one host and across hosts, for every change of the
 * datastore's records. doc/leases.md ("The metadata lock") gives the
 * protocol and why it is safe.
 */
#ifndef VSM_DSLOCK_H
#define VSM_DSLOCK_H

#include "lease.h"
#include "meta.h"

typedef struct vsm_dslock vsm_dslock;

/* The lock of the datastore @ds_name whose metadata device is @m.
 * @state_dir holds the host's node id and the local lock files. @lease is
 * the datastore's lease area (its protocol picks the lock's: Disk Paxos
 * when plain), or NULL when none is open (compare-and-write or nothing). */
int vsm__dslock_open(vsm_dslock **out, vsm_meta *m, vsm_lease_ds *lease,
		     const char *ds_name, const char *state_dir);
void vsm__dslock_close(vsm_dslock *l);

/* Wait for the lock (a holder whose lock stood still for the timeout is
 * dead and loses it); -VSM_EBUSY after a bounded wait, naming the holder. */
int vsm__dslock_acquire(vsm_dslock *l);
/* Before each write under the lock: still ours and within its deadline
 * (renewed when half of it is gone); -VSM_ESTALE if it was broken. */
int vsm__dslock_check(vsm_dslock *l);
void vsm__dslock_release(vsm_dslock *l);

#endif /* VSM_DSLOCK_H */
