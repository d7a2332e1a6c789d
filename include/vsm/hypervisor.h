/*
 * libvsm - the hypervisor seam (southbound): what the library asks of a
 * host's hypervisor when a caller wants domains made, started, paused or
 * looked at — recovering a group (define and start in boot order),
 * fencing a group's I/O for a group checkpoint (pause and resume).
 * Storage backends stay storage only; a hypervisor driver answers for
 * the hypervisor URIs it knows ("qemu:///session", "test:///default" for
 * the built-in libvirt driver). The core never talks to a hypervisor
 * but through this table.
 *
 * Copyright (C) 2026 The libvsm authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VSM_HYPERVISOR_H
#define VSM_HYPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

VSM_BEGIN_DECL

struct vsm_ctx;

/** Version of vsm_hv_domain_spec. Since: 0.2 */
#define VSM_HV_DOMAIN_SPEC_VERSION 1

/**
 * A domain to define: what libvsm knows of a VM — its disks and one
 * network interface — and defaults for the rest. The driver chooses the
 * domain type its hypervisor runs ("qemu" for TCG, "kvm", "test").
 * Since: 0.2
 */
typedef struct {
	uint32_t version;             /**< VSM_HV_DOMAIN_SPEC_VERSION */
	const char *name;             /**< domain name */
	uint64_t memory_mib;          /**< 0: 128 */
	unsigned int vcpus;           /**< 0: 1 */
	/** The disks, as libvirt <disk> elements (vsm_locator_disk_xml()),
	 *  each with its <target>. */
	const char *const *disks_xml;
	size_t n_disks;               /**< entries in @disks_xml */
	const char *mac;              /**< interface MAC; NULL: no interface */
	/** Network to plug the interface into: a network name, or
	 *  "bridge:NAME" for a host bridge. */
	const char *network;
	/** One XML element in its own namespace, kept in the domain's
	 *  <metadata> (the recovery plan's IP settings for the guest); NULL:
	 *  none. */
	const char *metadata_xml;
} vsm_hv_domain_spec;

/** Domain states vsm_hypervisor_ops.domain_state() reports. Since: 0.2 */
enum {
	VSM_HV_NONE = 0,      /**< no such domain */
	VSM_HV_SHUTOFF = 1,   /**< defined, not running */
	VSM_HV_RUNNING = 2,
	VSM_HV_PAUSED = 3,
	VSM_HV_OTHER = 4      /**< starting, crashed, ... */
};

/** Version of vsm_hypervisor_ops: 2 appended the block-copy ops.
 *  Since: 0.2 */
#define VSM_HYPERVISOR_OPS_VERSION 2

/** block_copy_start() flag: copy only the top layer of the disk; the
 *  destination stands on a backing chain that already reads as the
 *  source's. Since: 0.2 */
#define VSM_HV_COPY_SHALLOW (1u << 0)
/** block_copy_start() flag: the destination exists (the caller made it,
 *  with its backing chain); use it as it is. Since: 0.2 */
#define VSM_HV_COPY_REUSE (1u << 1)
/** block_copy_start() flag: synchronous writes: every guest write
 *  reaches both sides before it completes, so the copy converges
 *  whatever the guest writes. Since: 0.2 */
#define VSM_HV_COPY_SYNC (1u << 2)

/** A driver's running block-copy job (the driver defines the struct).
 *  Since: 0.2 */
typedef struct vsm_hv_copy vsm_hv_copy;

/**
 * A hypervisor driver. Every op returns 0 (or the value it says) or a
 * negative VSM_E* code with the message set by vsm_error_set(). Ops may be
 * called from any thread; a driver opens what connections it needs.
 * Since: 0.2
 */
typedef struct vsm_hypervisor_ops {
	uint32_t version;             /**< VSM_HYPERVISOR_OPS_VERSION */
	const char *name;             /**< e.g. "libvirt" */
	/** 1 if this driver answers for hypervisor URI @uri, else 0. */
	int (*handles)(const char *uri);
	/** Define (persistently) domain @spec on @uri; -VSM_EEXISTS when a
	 *  domain of that name exists. */
	int (*domain_define)(const char *uri, const vsm_hv_domain_spec *spec);
	/** Start defined domain @name. */
	int (*domain_start)(const char *uri, const char *name);
	/** The state of domain @name: VSM_HV_*. */
	int (*domain_state)(const char *uri, const char *name);
	/** Pause (suspend) running domain @name. */
	int (*domain_pause)(const char *uri, const char *name);
	/** Resume paused domain @name. */
	int (*domain_resume)(const char *uri, const char *name);
	/** Stop it if it runs and undefine it (undoing define + start); a
	 *  domain that does not exist is not an error. */
	int (*domain_remove)(const char *uri, const char *name);
	/** The domain's XML as the hypervisor describes it (*@xml malloc'd,
	 *  freed by the caller). */
	int (*domain_xml)(const char *uri, const char *name, char **xml);

	/* --- version 2 (Since: 0.2): live storage migration of a running
	 * domain's disk. Optional: NULL makes the live migration of a
	 * deployed container fail with -VSM_ENOTSUP. A version-1 table ends
	 * above; the core reads these fields only from a version-2 table. */
	/** Start copying disk @disk (its target name, "vdb") of running
	 *  domain @domain into @dest_xml, a libvirt <disk> element naming
	 *  the destination (what the driver does not need of it, such as
	 *  its <target> or <backingStore>, is ignored), with
	 *  VSM_HV_COPY_* @flags. The job keeps writing the guest's writes
	 *  to both sides until block_copy_end(). *@out belongs to the
	 *  driver until block_copy_end(). */
	int (*block_copy_start)(vsm_hv_copy **out, const char *uri, const char *domain,
				const char *disk, const char *dest_xml, unsigned int flags);
	/** Wait up to @timeout_ms for the job to be ready to switch over
	 *  (both sides equal, writes mirrored): 1 ready, 0 not yet, < 0 the
	 *  job failed or went away. Readiness is what the hypervisor
	 *  announces, not a byte count. *@cur and *@end (may be NULL)
	 *  receive the job's progress, for reports only. */
	int (*block_copy_wait)(vsm_hv_copy *job, unsigned int timeout_ms, uint64_t *cur,
			       uint64_t *end);
	/** End the job: with @pivot 1 switch the disk over to the
	 *  destination (only after block_copy_wait() said ready); with 0
	 *  abort it, the disk staying on its source. Frees @job whatever it
	 *  returns. */
	int (*block_copy_end)(vsm_hv_copy *job, int pivot);
	/** Abort whatever copy job runs on @disk of @domain, without its
	 *  handle (recovery after a crash); no job is not an error. */
	int (*block_copy_cancel)(const char *uri, const char *domain, const char *disk);
	/** The source of disk @disk of running domain @domain: its path (or
	 *  a network disk's name), malloc'd into *@source. */
	int (*disk_source)(const char *uri, const char *domain, const char *disk,
			   char **source);
} vsm_hypervisor_ops;

/**
 * Add a hypervisor driver to @ctx (the built-in libvirt driver is there
 * when libvsm is built with libvirt). @ops must stay valid as long as
 * @ctx. The driver registered last is asked first which URIs it handles.
 * Returns 0; -VSM_EINVAL for a NULL @ctx or @ops, a NULL op or an empty
 * name; -VSM_EVERSION for an ops version this library does not know (0,
 * or above VSM_HYPERVISOR_OPS_VERSION). A version-1 table (built against
 * the older header, without the block-copy ops) is taken as it is.
 * See doc/hypervisors.md.
 * Since: 0.2
 */
VSM_API int vsm_hypervisor_register(struct vsm_ctx *ctx, const vsm_hypervisor_ops *ops);

VSM_END_DECL

#endif /* VSM_HYPERVISOR_H */
