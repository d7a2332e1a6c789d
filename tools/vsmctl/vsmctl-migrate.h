/*
 * `vsmctl migrate CONTAINER --datastore DS [--json]`: offline migration
 * through <vsm/migrate.h>.
 */
#ifndef VSMCTL_MIGRATE_H
#define VSMCTL_MIGRATE_H

#include <vsm/vsm.h>

/* argv[0] is "migrate". @json: --json was given before the command.
 * Returns the process exit status. */
int vsmctl_migrate_main(vsm_ctx *ctx, int argc, char **argv, int json);

#endif
