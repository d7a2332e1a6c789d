/*
 * `vsmctl send` and `vsmctl receive`: cross-site transfer over a byte
 * stream through <vsm/transfer.h>.
 */
#ifndef VSMCTL_SEND_H
#define VSMCTL_SEND_H

#include <vsm/vsm.h>

/* argv[0] is "send" or "receive". @json: --json was given before the
 * command. Returns the process exit status. */
int vsmctl_send_main(vsm_ctx *ctx, int argc, char **argv, int json);

#endif
