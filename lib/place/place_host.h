/*
 * Placement phase 2 as the composition root wires it into vsm_attach
 * (ctx->place_host, set by lib/open.c).
 */
#ifndef VSM_PLACE_HOST_H
#define VSM_PLACE_HOST_H

#include "vsm/placement.h"

/* The best host for @c by the default host request (watching heartbeats
 * first when this context cannot judge some yet): *@host_out is
 * malloc'd. -VSM_ENOSPC when no host qualifies, with every host's reason
 * in the message (the first few of them when there are many). */
int vsm__place_host_pick(char **host_out, vsm_container *c);

#endif /* VSM_PLACE_HOST_H */
