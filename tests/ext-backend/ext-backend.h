/*
 * An out-of-tree backend written from libvsm 0.1's backend.h alone
 * (tests/compat/vsm-0.1/): what a third party would have built against 0.1.
 */
#ifndef EXT_BACKEND_H
#define EXT_BACKEND_H

#include <stdint.h>

#include <vsm/context.h>

/* Register both schemes: "extfile" (compare-and-write through an OFD
 * lock) and "extfile-nocaw" (none: the core takes Disk Paxos leases). */
int ext_backend_register(vsm_ctx *ctx);

/* The module entry point (vsm_backend_module_init in libvsm >= 0.2's
 * backend.h); declared here because the 0.1 header predates it. */
__attribute__((visibility("default")))
int vsm_backend_module_init(vsm_ctx *ctx, uint32_t abi_version);

#endif
