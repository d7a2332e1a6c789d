/*
 * Container records: the in-memory form of what the datastore stores for
 * each container, and its JSON encoding. Decoding validates every field,
 * so a record that passed its checksum but holds nonsense is still refused.
 */
#ifndef VSM_RECORD_H
#define VSM_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsm/common.h"

/* Version of the JSON payload layout inside a record. */
#define VSM_RECORD_PAYLOAD_VERSION 1

/* Hex digits of a frozen layer's digest (a SHA-256). */
#define VSM_REC_DIGEST_LEN 64

typedef struct {
	char *key;
	int format;
} vsm_rec_layer;

typedef struct {
	char *name;
	char *key;          /* backend key of the top (writable) layer */
	uint64_t size;      /* virtual size */
	int format;         /* vsm_format of the top layer */
	vsm_rec_layer *chain; /* backing layers, nearest first */
	size_t chain_len;
} vsm_rec_device;

typedef struct {
	char *device;
	char *host;
	char *uri;
	char *path; /* may be NULL */
	char *xml;
	char *domain; /* domain it was hot-plugged into, or NULL */
} vsm_rec_deploy;

/* A checkpoint's frozen layer for one device. */
typedef struct {
	char *device;
	char *key;
} vsm_rec_ckpt_layer;

/* A checkpoint (lib/checkpoint): a frozen layer per device and an
 * optional VM-state blob in a device of its own. */
typedef struct {
	char *name;
	char *parent;       /* NULL for a root */
	int64_t ctime;
	char *state_key;    /* NULL: no blob */
	uint64_t state_size;
	uint64_t state_sum; /* CRC-32 << 32 | Adler-32 of the blob */
	vsm_rec_ckpt_layer *layers;
	size_t n_layers;
	/* Backup point ID (lib/backup): a UUID given to the checkpoint a
	 * backup was taken at, and to the checkpoint a restore rebuilt from
	 * it, so that an incremental backup finds its base; "" for none
	 * (optional in the JSON). Inline, so a copy by value copies it. */
	char point[VSM_UUID_STRLEN + 1];
} vsm_rec_checkpoint;

/* A read-only layer below some top that the record references, with its
 * own backing (so the whole layer graph is known without opening
 * images). @managed: libvsm froze it and deletes it once no record on the
 * datastore references it; an unmanaged layer (a golden image) is never
 * deleted. */
typedef struct {
	char *key;
	int format;
	char *backing;      /* NULL: none */
	int backing_format;
	char *cid;          /* content ID (a UUID), NULL for unmanaged layers */
	bool managed;
	/* SHA-256 (hex) of the layer as the bundle that brought it carried
	 * it, bound to @cid (doc/checkpoints.md); "" when unknown (optional
	 * in the JSON, absent in older records). Held inline so that copying
	 * the entry by value copies it. */
	char digest[VSM_REC_DIGEST_LEN + 1];
} vsm_rec_frozen;

/* A placement's hold on a datastore (lib/ops/reserve.c): a record with no
 * devices that keeps the container name and counts @bytes against the
 * datastore's space until @expires_ms (wall clock, ms since the epoch). */
typedef struct {
	uint64_t bytes;
	int64_t expires_ms;
	char *owner;        /* "NODE/PID:START/CONTEXT" */
	bool thick;
} vsm_rec_reservation;

/* A consistency group (lib/group, doc/groups.md): a record with no
 * devices, named "group:NAME" (':' is never in a container name, so a
 * group and a container of the same name do not collide). Its codec is
 * store/grouprec.c. */
typedef struct {
	char *datastore;     /* name of the member's datastore when added */
	char ds_uuid[VSM_UUID_STRLEN + 1];
	char uuid[VSM_UUID_STRLEN + 1]; /* the container's */
	char *name;          /* the container's; unique in the group */
	/* Recovery plan (doc/groups.md); priority 0 and no network when unset. */
	int64_t priority;
	char **after;        /* member names that boot first */
	size_t n_after;
	char *mac, *network, *ip, *gateway, *dns; /* NULL: unset */
	int64_t prefix;      /* -1 with no ip */
} vsm_rec_gmember;

/* A group checkpoint: the checkpoint each member got. */
typedef struct {
	char uuid[VSM_UUID_STRLEN + 1]; /* member container */
	char *checkpoint;
} vsm_rec_gckpt_member;

typedef struct {
	char *name;
	int64_t ctime;
	vsm_rec_gckpt_member *members;
	size_t n_members;
} vsm_rec_gckpt;

typedef struct vsm_rec_group {
	vsm_rec_gmember *members;
	size_t n_members;
	vsm_rec_gckpt *ckpts;
	size_t n_ckpts;
} vsm_rec_group;

/* Prefix of a group record's name. */
#define VSM_REC_GROUP_PREFIX "group:"

typedef struct vsm_record {
	/* Where it lives on the datastore (not in the JSON): its slot, the
	 * slots its JSON continues in, the slot's sequence number when read
	 * (a write based on an older one is refused) and the generation the
	 * copy was written at. */
	uint32_t slot;
	uint32_t *cont;
	uint32_t n_cont;
	uint64_t seq;
	uint64_t stamp;
	char uuid[VSM_UUID_STRLEN + 1];
	char *name;
	int64_t ctime;
	char *state_key;
	uint64_t state_size;
	vsm_rec_device *devices;
	size_t n_devices;
	char *attached_host; /* NULL when detached */
	vsm_rec_deploy *deploys;
	size_t n_deploys;
	bool destroying;       /* destroy began; finish it, never use it */
	uint64_t lease_version; /* fencing token, owned by the lease module */
	/* Checkpoints (optional in the JSON; absent in older records). */
	vsm_rec_checkpoint *ckpts;
	size_t n_ckpts;
	char *ckpt_current;  /* checkpoint the tops descend from, or NULL */
	vsm_rec_frozen *layers;
	size_t n_layers;
	/* Thick: created without VSM_CONTAINER_CREATE_THIN, so its devices'
	 * provisioned bytes are promised (optional in the JSON; absent =
	 * thin, as every 0.1 record). */
	bool thick;
	/* Non-NULL: not a container but a reservation holding its name
	 * (then n_devices == 0). */
	vsm_rec_reservation *resv;
	/* Non-NULL: not a container but a consistency group (then
	 * n_devices == 0 and name is "group:NAME"). */
	vsm_rec_group *group;
	/* Offline migration (lib/checkpoint/migrate.c, doc/migration.md):
	 * VSM_REC_MIG_INCOMING on the target's copy while it is being
	 * written, VSM_REC_MIG_OUTGOING on the source's once the migration
	 * is committed. Either hides the record from lookups and listings;
	 * the name stays taken. Optional in the JSON ("migration"). */
	int migration;
} vsm_record;

#define VSM_REC_MIG_NONE 0
#define VSM_REC_MIG_INCOMING 1
#define VSM_REC_MIG_OUTGOING 2

/* Group record codec (grouprec.c), used by the record codec. */
struct json_object;
void vsm_rec_group_free(vsm_rec_group *g);
void vsm_rec_gmember_clear(vsm_rec_gmember *m); /* its fields */
vsm_rec_group *vsm_rec_group_dup(const vsm_rec_group *g);
struct json_object *vsm_rec_group_encode(const vsm_rec_group *g);
int vsm_rec_group_decode(vsm_rec_group **out, struct json_object *o, const char *what);
/* The plan's network fields of @m checked together (-VSM_ECORRUPT). */
int vsm_rec_group_net_check(const vsm_rec_gmember *m, const char *what);
/* Whether @r's name is a group record's ("group:" + a valid name). */
bool vsm_record_is_group_name(const char *name);

void vsm_record_free(vsm_record *r);
vsm_record *vsm_record_dup(const vsm_record *r);

/* Encode to a NUL-terminated JSON string (malloc'd). */
int vsm_record_encode(char **out, const vsm_record *r);
/* Decode and validate; @what names the record in messages
 * ("datastore 'ds1' slot 3"). */
int vsm_record_decode(vsm_record **out, const char *json, size_t len,
		      const char *what);

const vsm_rec_device *vsm_record_device(const vsm_record *r, const char *name);
const vsm_rec_deploy *vsm_record_deploy(const vsm_record *r, const char *device);
/* Add or replace the deployment of @d->device (copies the strings). */
int vsm_record_set_deploy(vsm_record *r, const vsm_rec_deploy *d);
void vsm_record_remove_deploy(vsm_record *r, const char *device);
int vsm_record_set_host(vsm_record *r, const char *host);

#endif /* VSM_RECORD_H */
