/*
 * `vsmctl group backup` and `vsmctl group recover`: group backup sets and
 * disaster recovery through <vsm/recovery.h>.
 */
#ifndef VSMCTL_RECOVERY_H
#define VSMCTL_RECOVERY_H

#include <vsm/vsm.h>

/* argv[0] is "group", argv[1] "backup" or "recover". @json: --json was
 * given. Returns the process exit status. */
int vsmctl_group_recovery_main(vsm_ctx *ctx, int argc, char **argv, int json);

#endif
