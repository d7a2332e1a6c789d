/*
 * `vsmctl place ...`: placement for people (doc/placement.md).
 */
#ifndef VSMCTL_PLACE_H
#define VSMCTL_PLACE_H

#include <vsm/context.h>

/* argv[0] is "place". @json: --json was given before the command.
 * Returns the process exit status: 0 when a datastore qualifies, 1 when
 * none does (or on error), 2 on bad usage. */
int vsmctl_place_main(vsm_ctx *ctx, int argc, char **argv, int json);

#endif
