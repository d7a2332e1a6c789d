/*
 * `vsmctl device add|remove|resize ...`: the devices of an existing
 * container (vsm_device_add, vsm_device_remove, vsm_device_resize).
 */
#ifndef VSMCTL_DEVICE_H
#define VSMCTL_DEVICE_H

#include <vsm/context.h>

/* argv[0] is "device". @json: --json was given before the command.
 * Returns the process exit status: 0 on success, 1 when the library
 * refused or failed, 2 on bad usage. */
int vsmctl_device_main(vsm_ctx *ctx, int argc, char **argv, int json);

#endif
