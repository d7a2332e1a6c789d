"""C declarations of the libvsm public API that the binding uses.

The text below is the caller's API of include/vsm/*.h, without comments
and preprocessor lines, in the form cffi's cdef() takes. Constants given
with #define in the headers live in vsm._constants. tests/test_drift.py
compiles every declaration here against the real headers, so a struct or
a signature that drifts fails the test suite.
"""

# Headers covered, in include order.
HEADERS = (
    "errors.h", "version.h", "context.h", "inventory.h", "container.h",
    "events.h", "lease.h", "checkpoint.h", "image.h", "migrate.h",
    "check.h", "backup.h", "placement.h", "group.h", "recovery.h",
    "workflow.h",
)

# Declared from backend.h (not covered whole: it is the southbound API):
# what a workflow operation written in Python needs to report an error.
BACKEND_CALLS = ("vsm_error_set",)

CDEFS = r"""
/* errors.h */
typedef enum {
	VSM_OK = 0,
	VSM_EINVAL = 1,
	VSM_ENOMEM = 2,
	VSM_ENOTFOUND = 3,
	VSM_EEXISTS = 4,
	VSM_EBUSY = 5,
	VSM_ENOSPC = 6,
	VSM_EIO = 7,
	VSM_ECORRUPT = 8,
	VSM_ENOTSUP = 9,
	VSM_EVERSION = 10,
	VSM_ESTATE = 11,
	VSM_EMISMATCH = 12,
	VSM_ELEASE = 13,
	VSM_ESTALE = 14,
	VSM_EPERM = 15,
	VSM_EINTERNAL = 16,
	VSM_ECANCELED = 17,
	VSM_ETIMEDOUT = 18,
} vsm_error_code;
typedef struct {
	int code;
	const char *message;
} vsm_error;
const vsm_error *vsm_error_last(void);
void vsm_error_clear(void);
const char *vsm_strerror(int code);

/* version.h */
int vsm_version(int *major, int *minor, int *patch);

/* context.h */
typedef struct vsm_ctx vsm_ctx;
typedef enum {
	VSM_LOG_DEBUG = 0,
	VSM_LOG_INFO = 1,
	VSM_LOG_WARN = 2,
	VSM_LOG_ERROR = 3,
} vsm_log_level;
typedef void (*vsm_log_cb)(int level, const char *message, void *payload);
typedef struct {
	unsigned int version;
	const char *state_dir;
	vsm_log_cb log_cb;
	void *log_payload;
	int log_level;
	unsigned int flags;
	const char *backend_dir;
} vsm_ctx_opts;
int vsm_ctx_open(vsm_ctx **out, const vsm_ctx_opts *opts);
int vsm_ctx_recover(vsm_ctx *ctx, const char *datastore, unsigned int flags);
void vsm_ctx_free(vsm_ctx *ctx);
const char *vsm_ctx_state_dir(const vsm_ctx *ctx);
int vsm_backend_lookup(vsm_ctx *ctx, const char *uri);

/* inventory.h */
typedef struct vsm_datastore vsm_datastore;
typedef struct vsm_host vsm_host;
int vsm_datastore_add(vsm_ctx *ctx, const char *name, const char *uri,
			      unsigned int flags);
int vsm_datastore_remove(vsm_ctx *ctx, const char *name,
				 unsigned int flags);
int vsm_datastore_lookup(vsm_datastore **out, vsm_ctx *ctx,
				 const char *name);
int vsm_datastore_list(vsm_datastore ***out, size_t *count,
			       vsm_ctx *ctx);
void vsm_datastore_list_free(vsm_datastore **list, size_t count);
void vsm_datastore_free(vsm_datastore *ds);
const char *vsm_datastore_name(const vsm_datastore *ds);
const char *vsm_datastore_uri(const vsm_datastore *ds);
const char *vsm_datastore_uuid(const vsm_datastore *ds);
uint64_t vsm_datastore_generation(const vsm_datastore *ds);
int vsm_datastore_capacity(vsm_ctx *ctx, const char *name,
				   uint64_t *total, uint64_t *free_bytes);
typedef struct {
	unsigned int version;
	const char *hypervisor_uri;
} vsm_host_opts;
int vsm_host_add(vsm_ctx *ctx, const char *name,
			 const vsm_host_opts *opts);
int vsm_host_remove(vsm_ctx *ctx, const char *name, unsigned int flags);
int vsm_host_link(vsm_ctx *ctx, const char *host,
			  const char *datastore, unsigned int flags);
int vsm_host_unlink(vsm_ctx *ctx, const char *host,
			    const char *datastore, unsigned int flags);
int vsm_host_lookup(vsm_host **out, vsm_ctx *ctx, const char *name);
int vsm_host_list(vsm_host ***out, size_t *count, vsm_ctx *ctx);
void vsm_host_list_free(vsm_host **list, size_t count);
void vsm_host_free(vsm_host *host);
const char *vsm_host_name(const vsm_host *host);
const char *vsm_host_hypervisor_uri(const vsm_host *host);
size_t vsm_host_datastore_count(const vsm_host *host);
const char *vsm_host_datastore(const vsm_host *host, size_t i);

/* container.h */
typedef struct vsm_container vsm_container;
typedef struct vsm_device vsm_device;
typedef struct vsm_locator vsm_locator;
typedef enum {
	VSM_FORMAT_RAW = 0,
	VSM_FORMAT_QCOW2 = 1,
} vsm_format;
const char *vsm_format_name(int format);
int vsm_format_parse(int *out, const char *name);
typedef struct {
	unsigned int version;
	const char *name;
	uint64_t size;
	int format;
	const char *base;
} vsm_device_spec;
typedef struct {
	unsigned int version;
	const vsm_device_spec *const *devices;
	size_t n_devices;
	uint64_t state_size;
	unsigned int flags;
} vsm_container_opts;
int vsm_container_create(vsm_container **out, vsm_ctx *ctx,
				 const char *datastore, const char *name,
				 const vsm_container_opts *opts);
int vsm_container_destroy(vsm_container *c, unsigned int flags);
int vsm_container_lookup(vsm_container **out, vsm_ctx *ctx,
				 const char *datastore, const char *name);
int vsm_container_lookup_by_uuid(vsm_container **out, vsm_ctx *ctx,
					 const char *uuid);
int vsm_container_list(vsm_container ***out, size_t *count,
			       vsm_ctx *ctx, const char *datastore);
void vsm_container_list_free(vsm_container **list, size_t count);
void vsm_container_free(vsm_container *c);
int vsm_container_refresh(vsm_container *c);
const char *vsm_container_name(const vsm_container *c);
const char *vsm_container_uuid(const vsm_container *c);
const char *vsm_container_datastore(const vsm_container *c);
const char *vsm_container_attached_host(const vsm_container *c);
uint64_t vsm_container_state_size(const vsm_container *c);
int64_t vsm_container_ctime(const vsm_container *c);
size_t vsm_container_device_count(const vsm_container *c);
const vsm_device *vsm_container_device(const vsm_container *c, size_t i);
const vsm_device *vsm_container_device_by_name(const vsm_container *c,
							const char *name);
const char *vsm_device_name(const vsm_device *d);
uint64_t vsm_device_size(const vsm_device *d);
int vsm_device_format(const vsm_device *d);
const char *vsm_device_key(const vsm_device *d);
const vsm_locator *vsm_device_locator(const vsm_device *d);
int vsm_device_add(vsm_container *c, const vsm_device_spec *spec,
			   unsigned int flags);
int vsm_device_remove(vsm_container *c, const char *name, unsigned int flags);
int vsm_device_resize(vsm_container *c, const char *name, uint64_t size,
			      unsigned int flags);
int vsm_attach(vsm_container *c, const char *host, unsigned int flags);
int vsm_detach(vsm_container *c, unsigned int flags);
typedef struct {
	unsigned int version;
	const char *domain;
	const char *target;
	const char *bus;
	unsigned int flags;
} vsm_deploy_opts;
int vsm_device_deploy(vsm_locator **out, vsm_container *c,
			      const char *device, const vsm_deploy_opts *opts);
int vsm_device_undeploy(vsm_container *c, const char *device,
				unsigned int flags);
const char *vsm_locator_uri(const vsm_locator *loc);
const char *vsm_locator_path(const vsm_locator *loc);
const char *vsm_locator_disk_xml(const vsm_locator *loc);
const char *vsm_locator_host(const vsm_locator *loc);
void vsm_locator_free(vsm_locator *loc);

/* events.h */
typedef enum {
	VSM_EVENT_DATASTORE_CHANGED = 1,
	VSM_EVENT_LEASE_LOST = 2,
	VSM_EVENT_DATASTORE_LOST = 3,
	VSM_EVENT_MIGRATION = 4,
} vsm_event_type;
typedef struct vsm_event vsm_event;
typedef void (*vsm_event_cb)(const vsm_event *ev, void *payload);
int vsm_event_register(vsm_ctx *ctx, vsm_event_cb cb, void *payload, int *out_id);
int vsm_event_unregister(vsm_ctx *ctx, int id);
int vsm_event_type_of(const vsm_event *ev);
const char *vsm_event_type_name(int type);
const char *vsm_event_datastore(const vsm_event *ev);
const char *vsm_event_container(const vsm_event *ev);
const char *vsm_event_host(const vsm_event *ev);
const char *vsm_event_detail(const vsm_event *ev);
uint64_t vsm_event_generation(const vsm_event *ev);

/* lease.h */
typedef struct vsm_lease vsm_lease;
typedef enum {
	VSM_LEASE_FREE = 0,
	VSM_LEASE_LIVE = 1,
	VSM_LEASE_STOPPED = 2,
	VSM_LEASE_DEAD = 3,
} vsm_lease_state;
int vsm_lease_status(vsm_lease ***out, size_t *count, vsm_ctx *ctx,
			     const char *datastore, unsigned int flags);
void vsm_lease_list_free(vsm_lease **list, size_t count);
const char *vsm_lease_container(const vsm_lease *l);
const char *vsm_lease_host(const vsm_lease *l);
int vsm_lease_state_of(const vsm_lease *l);
const char *vsm_lease_state_name(int state);
int64_t vsm_lease_since(const vsm_lease *l);
uint64_t vsm_lease_version(const vsm_lease *l);
int64_t vsm_lease_stopped_ms(const vsm_lease *l);
int vsm_lease_is_mine(const vsm_lease *l);
int vsm_lease_keep(vsm_ctx *ctx, const char *host, unsigned int flags);
int vsm_lease_renew(vsm_ctx *ctx, unsigned int flags);

/* checkpoint.h */
typedef struct vsm_checkpoint vsm_checkpoint;
typedef int (*vsm_state_read_fn)(void *buf, size_t len, size_t *got, void *payload);
typedef int (*vsm_state_write_fn)(const void *buf, size_t len, void *payload);
typedef int (*vsm_progress_fn)(uint64_t done, uint64_t total, void *payload);
typedef struct {
	unsigned int version;
	int state_fd;
	vsm_state_read_fn state_read;
	void *state_payload;
	uint64_t state_size;
	unsigned int flags;
} vsm_checkpoint_opts;
int vsm_checkpoint_create(vsm_checkpoint **out, vsm_container *c,
				  const char *name, const vsm_checkpoint_opts *opts);
int vsm_checkpoint_list(vsm_checkpoint ***out, size_t *count, vsm_container *c);
int vsm_checkpoint_lookup(vsm_checkpoint **out, vsm_container *c,
				  const char *name);
void vsm_checkpoint_list_free(vsm_checkpoint **list, size_t count);
void vsm_checkpoint_free(vsm_checkpoint *cp);
const char *vsm_checkpoint_name(const vsm_checkpoint *cp);
const char *vsm_checkpoint_parent(const vsm_checkpoint *cp);
int64_t vsm_checkpoint_ctime(const vsm_checkpoint *cp);
uint64_t vsm_checkpoint_state_size(const vsm_checkpoint *cp);
int vsm_checkpoint_is_current(const vsm_checkpoint *cp);
size_t vsm_checkpoint_layer_count(const vsm_checkpoint *cp);
const char *vsm_checkpoint_layer_device(const vsm_checkpoint *cp, size_t i);
const char *vsm_checkpoint_layer_key(const vsm_checkpoint *cp, size_t i);
const char *vsm_checkpoint_layer_cid(const vsm_checkpoint *cp, size_t i);
uint64_t vsm_checkpoint_layer_size(const vsm_checkpoint *cp, size_t i);
int vsm_checkpoint_state_read(vsm_container *c, const char *name, int fd,
				      vsm_state_write_fn write, void *payload);
typedef struct {
	unsigned int version;
	int state_fd;
	vsm_state_write_fn state_write;
	void *state_payload;
	unsigned int flags;
} vsm_revert_opts;
int vsm_checkpoint_revert(vsm_container *c, const char *name,
				  const vsm_revert_opts *opts);
int vsm_checkpoint_delete(vsm_container *c, const char *name, unsigned int flags);
int vsm_checkpoint_clone(vsm_container **out, vsm_container *src,
				 const char *checkpoint, const char *name, unsigned int flags);
typedef struct {
	uint64_t layers;
	uint64_t layers_skipped;
	uint64_t bytes_written;
	uint64_t bundle_bytes;
} vsm_bundle_stats;
typedef struct {
	unsigned int version;
	vsm_progress_fn progress;
	void *payload;
	vsm_bundle_stats *stats;
	unsigned int flags;
} vsm_bundle_opts;
int vsm_bundle_export(vsm_container *c, const char *checkpoint, const char *path,
			      const vsm_bundle_opts *opts);
int vsm_bundle_import(vsm_container **out, vsm_ctx *ctx, const char *path,
			      const char *datastore, const char *name,
			      const vsm_bundle_opts *opts);

/* image.h */
typedef struct vsm_image vsm_image;
typedef struct {
	unsigned int version;
	uint64_t size;
	uint32_t cluster_size;
	unsigned int refcount_bits;
	const char *backing;
	const char *backing_format;
} vsm_image_create_opts;
int vsm_image_create(const char *path, const vsm_image_create_opts *opts,
			     unsigned int flags);
typedef struct {
	unsigned int version;
	unsigned int flags;
	const char *format;
	uint64_t cache_max;
} vsm_image_open_opts;
int vsm_image_open(vsm_image **out, const char *path,
			   const vsm_image_open_opts *opts);
int vsm_image_close(vsm_image *img);
uint64_t vsm_image_size(vsm_image *img);
int vsm_image_read(vsm_image *img, void *buf, size_t len, uint64_t off);
int vsm_image_write(vsm_image *img, const void *buf, size_t len,
			    uint64_t off, unsigned int flags);
int vsm_image_write_zeroes(vsm_image *img, uint64_t off, uint64_t len,
				   unsigned int flags);
int vsm_image_discard(vsm_image *img, uint64_t off, uint64_t len,
			      unsigned int flags);
int vsm_image_flush(vsm_image *img);
typedef enum {
	VSM_IMAGE_FORMAT_RAW = 1,
	VSM_IMAGE_FORMAT_QCOW2 = 2,
} vsm_image_format;
typedef struct {
	unsigned int version;
	const char *filename;
	int format;
	uint64_t virtual_size;
	uint32_t cluster_size;
	unsigned int qcow2_version;
	unsigned int refcount_bits;
	unsigned int snapshots;
	int dirty;
	int corrupt;
	uint64_t file_size;
	uint64_t allocated_bytes;
	const char *backing;
	const char *backing_format;
} vsm_image_info;
int vsm_image_info_get(vsm_image_info **out, vsm_image *img,
			       unsigned int depth);
void vsm_image_info_free(vsm_image_info *info);
typedef struct {
	uint64_t start;
	uint64_t length;
	unsigned int depth;
	int present;
	int data;
	int zero;
	int compressed;
	uint64_t offset;
} vsm_image_extent;
int vsm_image_map(vsm_image_extent **out, size_t *out_count, vsm_image *img);
void vsm_image_extent_list_free(vsm_image_extent *list);
typedef struct {
	unsigned int version;
	uint64_t corruptions;
	uint64_t leaks;
	uint64_t corruptions_fixed;
	uint64_t leaks_fixed;
	uint64_t allocated_clusters;
	uint64_t image_end;
} vsm_image_check_result;
int vsm_image_check(vsm_image_check_result *out, vsm_image *img,
			    unsigned int flags);
int vsm_image_commit(vsm_image *img, unsigned int flags);
int vsm_image_flatten(vsm_image *img, unsigned int flags);
int vsm_image_resize(vsm_image *img, uint64_t size, unsigned int flags);
typedef struct {
	unsigned int version;
	const char *format;
	uint32_t cluster_size;
	unsigned int flags;
} vsm_image_convert_opts;
int vsm_image_convert(const char *src, const char *dst,
			      const vsm_image_convert_opts *opts);
typedef struct {
	unsigned int version;
	uint32_t granularity;
	int disabled;
} vsm_image_bitmap_opts;
int vsm_image_bitmap_add(vsm_image *img, const char *name,
				 const vsm_image_bitmap_opts *opts, unsigned int flags);
int vsm_image_bitmap_remove(vsm_image *img, const char *name, unsigned int flags);
int vsm_image_bitmap_clear(vsm_image *img, const char *name, unsigned int flags);
int vsm_image_bitmap_enable(vsm_image *img, const char *name, int enable,
				    unsigned int flags);
int vsm_image_bitmap_merge(vsm_image *dst, const char *dst_name, vsm_image *src,
				   const char *src_name, unsigned int flags);
typedef struct {
	char *name;
	uint32_t granularity;
	int enabled;
	int in_use;
} vsm_image_bitmap_info;
int vsm_image_bitmap_list(vsm_image_bitmap_info **out, size_t *out_count,
				  vsm_image *img);
void vsm_image_bitmap_list_free(vsm_image_bitmap_info *list, size_t count);
int vsm_image_bitmap_extents(vsm_image_extent **out, size_t *out_count,
				     vsm_image *img, const char *name);
int vsm_image_open_device(vsm_image **out, vsm_ctx *ctx, const char *datastore,
				  const char *container, const char *device,
				  const vsm_image_open_opts *opts);
int vsm_image_open_golden(vsm_image **out, vsm_ctx *ctx, const char *datastore,
				  const char *name, const vsm_image_open_opts *opts);
int vsm_image_import(vsm_ctx *ctx, const char *datastore, const char *name,
			     const char *path, const vsm_image_convert_opts *opts,
			     unsigned int flags);
int vsm_image_export(vsm_ctx *ctx, const char *datastore, const char *name,
			     const char *path, const vsm_image_convert_opts *opts,
			     unsigned int flags);
int vsm_image_cid_get(vsm_image *img, char out[37]);
int vsm_image_freeze(vsm_image *img, unsigned int flags);
typedef int (*vsm_image_copy_progress_fn)(uint64_t done, uint64_t total, void *payload);
typedef struct {
	unsigned int version;
	unsigned int flags;
	const char *reuse_dir;
	vsm_image_copy_progress_fn progress;
	void *payload;
} vsm_image_copy_opts;
typedef struct {
	unsigned int version;
	uint64_t bytes_copied;
	unsigned int layers_copied;
	unsigned int layers_reused;
} vsm_image_copy_stats;
int vsm_image_copy(const char *src, const char *dst, const vsm_image_copy_opts *opts,
			   vsm_image_copy_stats *stats);

/* migrate.h */
typedef struct {
	uint64_t layers;
	uint64_t layers_reused;
	uint64_t bytes_written;
	uint64_t bytes_verified;
	uint64_t passes;
	uint64_t pause_us;
	uint64_t bytes_mirrored;
	unsigned int synchronous;
} vsm_migrate_stats;
typedef enum {
	VSM_MIGRATE_NO_CONVERGE_SYNC = 0,
	VSM_MIGRATE_NO_CONVERGE_ABORT = 1,
} vsm_migrate_no_converge;
typedef struct {
	unsigned int version;
	unsigned int flags;
	vsm_progress_fn progress;
	void *payload;
	vsm_migrate_stats *stats;
	unsigned int downtime_ms;
	unsigned int deadline_ms;
	unsigned int max_passes;
	int on_no_converge;
} vsm_migrate_opts;
int vsm_container_migrate(vsm_container *c, const char *datastore,
				  const vsm_migrate_opts *opts);

/* check.h */
typedef struct {
	unsigned int version;
	unsigned int flags;
	uint64_t grace_seconds;
} vsm_check_opts;
typedef enum {
	VSM_ORPHAN_FOUND = 1,
	VSM_ORPHAN_YOUNG = 2,
	VSM_ORPHAN_REMOVED = 3,
	VSM_ORPHAN_FAILED = 4,
	VSM_ORPHAN_REFERENCED = 5,
	VSM_ORPHAN_UNSURE = 6,
} vsm_orphan_state;
typedef struct vsm_check_report vsm_check_report;
typedef struct vsm_orphan vsm_orphan;
int vsm_datastore_check(vsm_check_report **out, vsm_ctx *ctx,
				const char *datastore, const vsm_check_opts *opts);
void vsm_check_report_free(vsm_check_report *r);
const char *vsm_check_report_datastore(const vsm_check_report *r);
size_t vsm_check_report_devices(const vsm_check_report *r);
size_t vsm_check_report_referenced(const vsm_check_report *r);
size_t vsm_check_report_foreign(const vsm_check_report *r);
size_t vsm_check_report_orphan_count(const vsm_check_report *r);
const vsm_orphan *vsm_check_report_orphan(const vsm_check_report *r, size_t i);
size_t vsm_check_report_count(const vsm_check_report *r, int state);
size_t vsm_check_report_remaining(const vsm_check_report *r);
const char *vsm_orphan_key(const vsm_orphan *o);
uint64_t vsm_orphan_size(const vsm_orphan *o);
int64_t vsm_orphan_age(const vsm_orphan *o);
int vsm_orphan_state_of(const vsm_orphan *o);
const char *vsm_orphan_reason(const vsm_orphan *o);
const char *vsm_orphan_state_name(int state);

/* backup.h */
typedef struct {
	uint64_t offset;
	uint64_t length;
} vsm_change_extent;
int vsm_changes(vsm_change_extent **out, size_t *count, vsm_container *c,
			const char *device, const char *since, const char *until);
void vsm_change_extents_free(vsm_change_extent *list);
typedef struct {
	uint64_t data_bytes;
	uint64_t extents;
	uint64_t file_bytes;
	char checkpoint[256];
} vsm_backup_stats;
typedef struct {
	unsigned int version;
	const char *incremental_from;
	const char *checkpoint;
	const vsm_checkpoint_opts *checkpoint_opts;
	vsm_progress_fn progress;
	void *payload;
	vsm_backup_stats *stats;
	unsigned int flags;
} vsm_backup_opts;
int vsm_backup(vsm_container *c, const char *path, const vsm_backup_opts *opts);
typedef struct {
	unsigned int version;
	const char *name;
	vsm_progress_fn progress;
	void *payload;
	vsm_backup_stats *stats;
} vsm_restore_opts;
int vsm_restore(vsm_container **out, vsm_ctx *ctx, const char *const *paths,
			size_t n_paths, const char *datastore, const vsm_restore_opts *opts);

/* placement.h */
typedef struct {
	unsigned int version;
	const char *name;
	const char *uri;
	uint64_t total;
	uint64_t free_bytes;
	uint64_t reserved;
	uint64_t committed;
	uint64_t provisioned;
	uint64_t available;
	size_t containers;
	int has_compare_and_write;
	int holds_base;
	uint64_t need;
} vsm_place_ds_info;
typedef struct {
	unsigned int version;
	const char *name;
	const char *const *tags;
	size_t n_tags;
	size_t containers;
	size_t max_containers;
	int live;
} vsm_place_host_info;
typedef struct {
	unsigned int version;
	const char *name;
	int (*datastore)(const vsm_place_ds_info *ds, char *reason, size_t reason_size,
			 void *payload);
	int (*host)(const vsm_place_host_info *host, char *reason, size_t reason_size,
		    void *payload);
	void *payload;
} vsm_place_filter;
typedef struct {
	unsigned int version;
	const char *name;
	double (*datastore)(const vsm_place_ds_info *ds, void *payload);
	double (*host)(const vsm_place_host_info *host, void *payload);
	double multiplier;
	void *payload;
} vsm_place_weigher;
typedef struct {
	unsigned int version;
	const vsm_device_spec *const *devices;
	size_t n_devices;
	uint64_t state_size;
	unsigned int flags;
	const char *weigher;
	const char *const *datastores;
	size_t n_datastores;
	const vsm_place_filter *const *filters;
	size_t n_filters;
	const vsm_place_weigher *const *weighers;
	size_t n_weighers;
	int64_t reservation_ttl_ms;
} vsm_place_request;
typedef struct vsm_placement vsm_placement;
int vsm_place_datastore(vsm_placement **out, vsm_ctx *ctx,
				const vsm_place_request *req);
size_t vsm_placement_count(const vsm_placement *p);
const char *vsm_placement_name(const vsm_placement *p, size_t i);
double vsm_placement_score(const vsm_placement *p, size_t i);
uint64_t vsm_placement_available(const vsm_placement *p, size_t i);
size_t vsm_placement_rejected_count(const vsm_placement *p);
const char *vsm_placement_rejected_name(const vsm_placement *p, size_t i);
const char *vsm_placement_rejected_reason(const vsm_placement *p, size_t i);
void vsm_placement_free(vsm_placement *p);
typedef struct vsm_reservation vsm_reservation;
int vsm_place_reserve(vsm_reservation **out, vsm_ctx *ctx, const char *name,
			      const vsm_place_request *req);
const char *vsm_reservation_datastore(const vsm_reservation *r);
const char *vsm_reservation_name(const vsm_reservation *r);
uint64_t vsm_reservation_bytes(const vsm_reservation *r);
int64_t vsm_reservation_expires(const vsm_reservation *r);
int vsm_reservation_abort(vsm_reservation *r);
void vsm_reservation_free(vsm_reservation *r);
int vsm_container_create_reserved(vsm_container **out, vsm_reservation *r,
					  const vsm_container_opts *opts);
typedef struct {
	unsigned int version;
	unsigned int flags;
	const char *const *tags;
	size_t n_tags;
	const char *const *anti_affinity;
	size_t n_anti_affinity;
	const char *weigher;
	const vsm_place_filter *const *filters;
	size_t n_filters;
	const vsm_place_weigher *const *weighers;
	size_t n_weighers;
} vsm_host_request;
int vsm_place_host(vsm_placement **out, vsm_container *c,
			   const vsm_host_request *req);
int vsm_place_host_for(vsm_placement **out, vsm_ctx *ctx,
			       const char *const *datastores, size_t n_datastores,
			       const vsm_host_request *req);
int vsm_host_tag_add(vsm_ctx *ctx, const char *host, const char *tag);
int vsm_host_tag_remove(vsm_ctx *ctx, const char *host, const char *key);
int vsm_host_set_max_containers(vsm_ctx *ctx, const char *host, size_t max);
size_t vsm_host_tag_count(const vsm_host *host);
const char *vsm_host_tag(const vsm_host *host, size_t i);
size_t vsm_host_max_containers(const vsm_host *host);

/* group.h */
typedef struct vsm_group vsm_group;
typedef struct {
	unsigned int version;
	const char *datastore;
	unsigned int flags;
} vsm_group_opts;
int vsm_group_create(vsm_group **out, vsm_ctx *ctx, const char *name,
			     vsm_container *const *members, size_t n,
			     const vsm_group_opts *opts);
int vsm_group_lookup(vsm_group **out, vsm_ctx *ctx, const char *datastore,
			     const char *name);
int vsm_group_list(vsm_group ***out, size_t *count, vsm_ctx *ctx);
void vsm_group_list_free(vsm_group **list, size_t count);
void vsm_group_free(vsm_group *g);
int vsm_group_refresh(vsm_group *g);
int vsm_group_destroy(vsm_group *g, unsigned int flags);
const char *vsm_group_name(const vsm_group *g);
const char *vsm_group_uuid(const vsm_group *g);
const char *vsm_group_datastore(const vsm_group *g);
int64_t vsm_group_ctime(const vsm_group *g);
size_t vsm_group_member_count(const vsm_group *g);
const char *vsm_group_member_name(const vsm_group *g, size_t i);
const char *vsm_group_member_uuid(const vsm_group *g, size_t i);
const char *vsm_group_member_datastore(const vsm_group *g, size_t i);
int vsm_group_member_add(vsm_group *g, vsm_container *c, unsigned int flags);
int vsm_group_member_remove(vsm_group *g, const char *name, unsigned int flags);
size_t vsm_group_checkpoint_count(const vsm_group *g);
const char *vsm_group_checkpoint_name(const vsm_group *g, size_t i);
int64_t vsm_group_checkpoint_ctime(const vsm_group *g, size_t i);
size_t vsm_group_checkpoint_member_count(const vsm_group *g, size_t i);
const char *vsm_group_checkpoint_member_uuid(const vsm_group *g, size_t i, size_t j);
const char *vsm_group_checkpoint_member_checkpoint(const vsm_group *g, size_t i,
							   size_t j);
typedef struct {
	unsigned int version;
	unsigned int timeout_ms;
	unsigned int flags;
} vsm_group_checkpoint_opts;
int vsm_group_checkpoint_create(vsm_group *g, const char *name,
					const vsm_group_checkpoint_opts *opts);
int vsm_group_checkpoint_revert(vsm_group *g, const char *name, unsigned int flags);
int vsm_group_checkpoint_delete(vsm_group *g, const char *name, unsigned int flags);
int vsm_group_clone(vsm_group **out, vsm_group *g, const char *checkpoint,
			    const char *new_name, unsigned int flags);
typedef struct {
	unsigned int version;
	const char *member;
	unsigned int priority;
	const char *const *after;
	size_t n_after;
	const char *mac;
	const char *network;
	const char *ip;
	int prefix;
	const char *gateway;
	const char *dns;
} vsm_group_plan_entry;
int vsm_group_plan_set(vsm_group *g, const vsm_group_plan_entry *entries, size_t n,
			       unsigned int flags);
int vsm_group_plan_get(const vsm_group *g, size_t i, vsm_group_plan_entry *out);
typedef struct vsm_group_image vsm_group_image;
int vsm_group_image_open(vsm_group_image **out, vsm_group *g, const char *member,
				 const char *device, unsigned int flags);
int vsm_group_image_read(vsm_group_image *gi, void *buf, size_t len, uint64_t off);
int vsm_group_image_write(vsm_group_image *gi, const void *buf, size_t len,
				  uint64_t off);
int vsm_group_image_flush(vsm_group_image *gi);
int vsm_group_image_close(vsm_group_image *gi);

/* recovery.h */
typedef struct {
	unsigned int version;
	const char *incremental_from;
	const char *checkpoint;
	unsigned int timeout_ms;
	vsm_progress_fn progress;
	void *payload;
	unsigned int flags;
} vsm_group_backup_opts;
int vsm_group_backup(vsm_group *g, const char *dir, const vsm_group_backup_opts *opts);
typedef void (*vsm_group_recover_step_fn)(const char *member, const char *step,
					  const char *detail, void *payload);
typedef struct {
	unsigned int version;
	const char *datastore;
	const char *name;
	const char *point;
	const char *host;
	unsigned int flags;
	unsigned int tier_timeout_ms;
	vsm_group_recover_step_fn step;
	void *payload;
} vsm_group_recover_opts;
int vsm_group_recover(vsm_group **out, vsm_ctx *ctx, const char *dir,
			      const vsm_group_recover_opts *opts);

/* workflow.h */
typedef struct vsm_workflow vsm_workflow;
int vsm_workflow_parse(vsm_workflow **out, vsm_ctx *ctx, const char *json,
			       const char *origin);
int vsm_workflow_load(vsm_workflow **out, vsm_ctx *ctx, const char *path);
void vsm_workflow_free(vsm_workflow *wf);
const char *vsm_workflow_name(const vsm_workflow *wf);
size_t vsm_workflow_param_count(const vsm_workflow *wf);
const char *vsm_workflow_param_name(const vsm_workflow *wf, size_t i);
const char *vsm_workflow_param_type(const vsm_workflow *wf, size_t i);
const char *vsm_workflow_param_default(const vsm_workflow *wf, size_t i);
size_t vsm_workflow_step_count(const vsm_workflow *wf);
const char *vsm_workflow_step_id(const vsm_workflow *wf, size_t i);
const char *vsm_workflow_step_op(const vsm_workflow *wf, size_t i);
typedef int (*vsm_workflow_progress_fn)(const char *run_id, size_t step, size_t n_steps,
					const char *step_id, const char *event, void *opaque);
typedef struct {
	unsigned int version;
	const char *const *params;
	size_t n_params;
	vsm_workflow_progress_fn progress;
	void *opaque;
	unsigned int flags;
} vsm_workflow_run_opts;
int vsm_workflow_run(vsm_workflow *wf, const vsm_workflow_run_opts *opts,
			     char *run_id);
int vsm_workflow_recover(vsm_ctx *ctx);
typedef struct vsm_run vsm_run;
int vsm_run_lookup(vsm_run **out, vsm_ctx *ctx, const char *id);
int vsm_run_list(vsm_run ***out, size_t *count, vsm_ctx *ctx);
void vsm_run_list_free(vsm_run **list, size_t count);
void vsm_run_free(vsm_run *run);
int vsm_run_cancel(vsm_ctx *ctx, const char *id);
const char *vsm_run_id(const vsm_run *run);
const char *vsm_run_template(const vsm_run *run);
const char *vsm_run_state(const vsm_run *run);
const char *vsm_run_params(const vsm_run *run);
const char *vsm_run_error(const vsm_run *run);
int64_t vsm_run_started(const vsm_run *run);
int64_t vsm_run_ended(const vsm_run *run);
size_t vsm_run_step_count(const vsm_run *run);
const char *vsm_run_step_id(const vsm_run *run, size_t i);
const char *vsm_run_step_op(const vsm_run *run, size_t i);
const char *vsm_run_step_state(const vsm_run *run, size_t i);
const char *vsm_run_step_args(const vsm_run *run, size_t i);
const char *vsm_run_step_result(const vsm_run *run, size_t i);
const char *vsm_run_step_error(const vsm_run *run, size_t i);
typedef int (*vsm_workflow_do_fn)(vsm_ctx *ctx, const char *args, char **result,
				  void *opaque);
typedef int (*vsm_workflow_undo_fn)(vsm_ctx *ctx, const char *args, const char *result,
				    void *opaque);
typedef struct {
	unsigned int version;
	const char *name;
	const char *schema;
	vsm_workflow_do_fn run;
	vsm_workflow_undo_fn undo;
	void *opaque;
} vsm_workflow_op;
int vsm_workflow_op_register(vsm_ctx *ctx, const vsm_workflow_op *op);

/* backend.h (only what BACKEND_CALLS names) */
int vsm_error_set(int code, const char *fmt, ...);
"""
