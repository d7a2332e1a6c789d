/*
 * Space on a datastore for placement (doc/placement.md): the figures a
 * datastore's records and backend give (free, reserved, committed,
 * provisioned), and reservations, records on the datastore that hold a
 * container's name and its bytes until the create commits or they
 * expire. The place layer ranks with these; container create consumes a
 * reservation (create.c). Never included below lib/ops.
 */
#ifndef VSM_RESERVE_H
#define VSM_RESERVE_H

#include "ctx.h"

/* What a thin device needs now, besides its VM-state area: room for the
 * qcow2 header, L1/L2 and refcount tables it writes at once (also
 * counted for a raw device, whose sparse file needs no more). */
#define VSM__THIN_DEVICE_ALLOWANCE (UINT64_C(1) << 20)

/* A datastore's figures (include/vsm/placement.h, vsm_place_ds_info). */
typedef struct {
	uint64_t total, free_bytes, reserved, committed, provisioned;
	size_t containers;
	bool caw;
} vsm__space;

/* free - reserved - committed, saturating at 0. */
uint64_t vsm__space_available(const vsm__space *s);
/* Whether a request needing @need fits: a thick one in the available
 * bytes, a thin one in free - reserved. */
bool vsm__space_fits(const vsm__space *s, uint64_t need, bool thick);

/* Why a request of @need does not fit, in @buf: "needs 96.0 MiB, 40.0 MiB
 * available (free 100.0 MiB, reserved 60.0 MiB, committed 0 B)". */
const char *vsm__space_why(char *buf, size_t size, const vsm__space *s, uint64_t need,
			  bool thick);

/* Bytes a request needs: thick, every device's size and the VM-state
 * area; thin, the VM-state area and VSM__THIN_DEVICE_ALLOWANCE a device.
 * @sizes[i]: size of device i. @state_size 0: the default. */
uint64_t vsm__space_need(bool thick, uint64_t state_size, const uint64_t *sizes, size_t n);

/* The figures now, from the backend and the cached records (refreshed
 * first); also recorded in the catalog's ds_space table for
 * VSM_PLACE_CACHED. The context's lock is held by the caller. */
int vsm__space_live(vsm_ctx *ctx, vsm_dstore *ds, vsm__space *out);

/* Whether a reservation record still counts at @now_ms: not expired,
 * and not held by a dead process of this state directory. */
bool vsm__resv_live(vsm_ctx *ctx, const vsm_record *r, int64_t now_ms);

/* Milliseconds since the epoch (wall clock: other hosts compare it). */
int64_t vsm__now_ms(void);

struct vsm_reservation {
	vsm_ctx *ctx;
	char *datastore;
	char *name;
	char uuid[VSM_UUID_STRLEN + 1];
	uint64_t bytes;
	int64_t expires_ms;
	bool thick;
	bool done;          /* committed by a create, or aborted */
};

/* Under @ds_name's metadata lock: recompute its figures live, tombstone
 * expired reservations, and record a reservation of @bytes for container
 * @name if they still fit (-VSM_ENOSPC with the figures if not;
 * -VSM_EEXISTS if the name is taken there). */
int vsm__reserve(vsm_reservation **out, vsm_ctx *ctx, const char *ds_name, const char *name,
		 uint64_t bytes, bool thick, int64_t ttl_ms);

/* Whether @rec is the reservation @r made. */
bool vsm__resv_is(const vsm_reservation *r, const vsm_record *rec);

/* Format @bytes as "96.0 MiB" into @buf. */
const char *vsm__space_fmt(char *buf, size_t size, uint64_t bytes);

#endif /* VSM_RESERVE_H */
