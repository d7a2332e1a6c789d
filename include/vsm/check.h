/*
 * libvsm - datastore checks: finding the devices on a datastore that no
 * container record and no running workflow references (orphans), and,
 * when asked, removing them.
 *
 * Orphans are what interrupted work leaves behind: a create that crashed
 * after making a device but before writing its record, a destroy whose
 * backend failed to delete a device, races of older releases. Only
 * devices whose names have the shape libvsm gives its own devices are
 * considered; anything else on the datastore (a golden image, a user's
 * file) is never reported and never removed. doc/datastore-layout.md,
 * section "Orphans", has the rules and the safety argument.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_CHECK_H
#define VSM_CHECK_H

#include "common.h"
#include "context.h"

VSM_BEGIN_DECL

/** Version of vsm_check_opts. Since: 0.2 */
#define VSM_CHECK_OPTS_VERSION 1

/** Flag in vsm_check_opts.flags: remove the orphans that are older than
 *  the grace period. Since: 0.2 */
#define VSM_CHECK_REPAIR (1u << 0)

/** Default grace period of vsm_check_opts, in seconds. Since: 0.2 */
#define VSM_CHECK_GRACE_DEFAULT 3600

/** How vsm_datastore_check() works. Since: 0.2 */
typedef struct {
	unsigned int version;   /**< VSM_CHECK_OPTS_VERSION */
	unsigned int flags;     /**< VSM_CHECK_* */
	/**
	 * An orphan last written less than this many seconds ago is kept
	 * (another host may still be creating it; its record comes last).
	 * Must exceed the longest container or checkpoint create on any host
	 * that shares the datastore, plus the clock difference between the
	 * hosts and the storage. 0 removes orphans of any age.
	 */
	uint64_t grace_seconds;
} vsm_check_opts;

/** Default check settings: report only, one hour of grace. Since: 0.2 */
#define VSM_CHECK_OPTS_INIT { VSM_CHECK_OPTS_VERSION, 0, VSM_CHECK_GRACE_DEFAULT }

/** What became of one orphan. Since: 0.2 */
typedef enum {
	/** Older than the grace period; left in place (no repair asked). */
	VSM_ORPHAN_FOUND = 1,
	/** Younger than the grace period, or of unknown age: kept. */
	VSM_ORPHAN_YOUNG = 2,
	/** Removed by the repair. */
	VSM_ORPHAN_REMOVED = 3,
	/** The repair tried and the backend refused; the reason says why. */
	VSM_ORPHAN_FAILED = 4,
	/** A record or workflow came to reference it while the repair ran:
	 *  not an orphan after all, kept. */
	VSM_ORPHAN_REFERENCED = 5,
	/** Not removed because the datastore has damaged record slots, whose
	 *  devices cannot be known. */
	VSM_ORPHAN_UNSURE = 6,
} vsm_orphan_state;

/** The outcome of one check (owned by the caller). Since: 0.2 */
typedef struct vsm_check_report vsm_check_report;
/** One orphan of a report (owned by the report). Since: 0.2 */
typedef struct vsm_orphan vsm_orphan;

/**
 * Look for orphans on @datastore and, with VSM_CHECK_REPAIR, remove those
 * past the grace period.
 *
 * A device is referenced when any container record on the datastore
 * names it (a device's top layer or backing chain, a frozen or
 * checkpoint layer, a VM-state area or checkpoint blob), when any
 * workflow in this context's journal names it or the container it
 * belongs to, or when it is the datastore's metadata device. Before
 * removing an orphan the repair reads the records again and skips it
 * (VSM_ORPHAN_REFERENCED) if it became referenced.
 *
 * Devices are listed through the backend's device_list callback; a
 * backend without one (vtable version 1) gives -VSM_ENOTSUP.
 *
 * @out: the report; free it with vsm_check_report_free()
 * @opts: NULL for VSM_CHECK_OPTS_INIT
 *
 * Returns 0 whether or not orphans were found (see the report), or a
 * negative VSM_E* code: -VSM_ENOTFOUND for an unknown datastore,
 * -VSM_ENOTSUP when the backend cannot list devices, -VSM_EVERSION for
 * an unknown opts version, -VSM_EINVAL for unknown flags.
 * Since: 0.2
 */
VSM_API int vsm_datastore_check(vsm_check_report **out, vsm_ctx *ctx,
				const char *datastore, const vsm_check_opts *opts);

/** Free a report; NULL is ignored. Since: 0.2 */
VSM_API void vsm_check_report_free(vsm_check_report *r);

/** Name of the datastore checked (borrowed; lives as long as @r). Since: 0.2 */
VSM_API const char *vsm_check_report_datastore(const vsm_check_report *r);
/** How many devices the backend listed. Since: 0.2 */
VSM_API size_t vsm_check_report_devices(const vsm_check_report *r);
/** How many of them are referenced. Since: 0.2 */
VSM_API size_t vsm_check_report_referenced(const vsm_check_report *r);
/** How many were left alone because libvsm did not name them (user files,
 *  golden images nobody references yet). Since: 0.2 */
VSM_API size_t vsm_check_report_foreign(const vsm_check_report *r);

/** Number of orphans in the report, sorted by key. Since: 0.2 */
VSM_API size_t vsm_check_report_orphan_count(const vsm_check_report *r);
/** Orphan @i (borrowed; lives as long as @r), or NULL past the end. Since: 0.2 */
VSM_API const vsm_orphan *vsm_check_report_orphan(const vsm_check_report *r, size_t i);
/** Number of orphans in vsm_orphan_state @state. Since: 0.2 */
VSM_API size_t vsm_check_report_count(const vsm_check_report *r, int state);
/** Orphans still on the datastore: all but the removed and the
 *  referenced ones. Since: 0.2 */
VSM_API size_t vsm_check_report_remaining(const vsm_check_report *r);

/** The orphan's backend key (borrowed; lives as long as its report). Since: 0.2 */
VSM_API const char *vsm_orphan_key(const vsm_orphan *o);
/** Its size in bytes as the backend reports it (0: unknown). Since: 0.2 */
VSM_API uint64_t vsm_orphan_size(const vsm_orphan *o);
/** Seconds since it was created or last written, -1 when the backend
 *  cannot tell. Since: 0.2 */
VSM_API int64_t vsm_orphan_age(const vsm_orphan *o);
/** A vsm_orphan_state. Since: 0.2 */
VSM_API int vsm_orphan_state_of(const vsm_orphan *o);
/** Why it is in that state, one line (borrowed; lives as long as its
 *  report). Since: 0.2 */
VSM_API const char *vsm_orphan_reason(const vsm_orphan *o);
/** "found", "young", "removed", "failed", "referenced", "unsure"; NULL for
 *  an unknown value. Since: 0.2 */
VSM_API const char *vsm_orphan_state_name(int state);

VSM_END_DECL

#endif /* VSM_CHECK_H */
