/*
 * `vsmctl changes`, `vsmctl backup` and `vsmctl restore`: changed-block
 * tracking and incremental backups through <vsm/backup.h>.
 */
#ifndef VSMCTL_BACKUP_H
#define VSMCTL_BACKUP_H

#include <vsm/vsm.h>

/* argv[0] is the command. @json: --json was given. Each returns the
 * process exit status. */
int vsmctl_changes_main(vsm_ctx *ctx, int argc, char **argv, int json);
int vsmctl_backup_main(vsm_ctx *ctx, int argc, char **argv, int json);
int vsmctl_restore_main(vsm_ctx *ctx, int argc, char **argv, int json);

#endif
