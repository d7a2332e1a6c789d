/*
 * Host migration from the command line (doc/host-migration.md):
 * `vsmctl migrate CONTAINER --host HOST [--json]` and
 * `vsmctl handover begin|accept|complete|cancel|status CONTAINER [HOST]`,
 * through <vsm/handover.h>.
 */
#ifndef VSMCTL_HANDOVER_H
#define VSMCTL_HANDOVER_H

#include <vsm/vsm.h>

/* argv[0] is "migrate" and --host is among the options. Returns the
 * process exit status. */
int vsmctl_migrate_host_main(vsm_ctx *ctx, int argc, char **argv, int json);
/* argv[0] is "handover". */
int vsmctl_handover_main(vsm_ctx *ctx, int argc, char **argv, int json);

#endif
