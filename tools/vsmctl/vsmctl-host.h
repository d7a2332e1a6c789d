/*
 * `vsmctl host tag|untag|limit|show ...`: host tags and container limits
 * (placement phase 2, <vsm/placement.h>), and what `host list` shows of
 * them.
 */
#ifndef VSMCTL_HOST_H
#define VSMCTL_HOST_H

#include <json-c/json.h>
#include <stdbool.h>
#include <vsm/vsm.h>

/* Whether argv[1] is one of the commands vsmctl_host_main runs. */
bool vsmctl_host_handles(int argc, char **argv);
/* argv[0] is "host"; @json: --json was given. Returns the exit status. */
int vsmctl_host_main(vsm_ctx *ctx, int argc, char **argv, int json);
/* Add "tags" and "max_containers" to a host's JSON object. */
void vsmctl_host_json_add(json_object *o, const vsm_host *h);
/* Print " tags=A,B=C limit=N" (only what is set) for `host list`. */
void vsmctl_host_print_extra(const vsm_host *h);

#endif
