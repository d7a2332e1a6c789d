/*
 * `vsmctl group ...`: consistency groups (doc/groups.md).
 */
#ifndef VSMCTL_GROUP_H
#define VSMCTL_GROUP_H

#include <vsm/context.h>

/* argv[0] is "group". @json: --json was given before the command.
 * Returns the process exit status: 0, 1 on error, 2 on bad usage. */
int vsmctl_group_main(vsm_ctx *ctx, int argc, char **argv, int json);

#endif
