/*
 * `vsmctl checkpoint ...`, `vsmctl container clone`, `vsmctl export` and
 * `vsmctl import`: checkpoints and bundles through <vsm/checkpoint.h>.
 */
#ifndef VSMCTL_CHECKPOINT_H
#define VSMCTL_CHECKPOINT_H

#include <vsm/vsm.h>

/* argv[0] is the command ("checkpoint", "export", "import"; "container"
 * for clone, with argv[1] "clone"). @json: --json was given. Each
 * returns the process exit status. */
int vsmctl_checkpoint_main(vsm_ctx *ctx, int argc, char **argv, int json);
int vsmctl_clone_main(vsm_ctx *ctx, int argc, char **argv, int json);
int vsmctl_export_main(vsm_ctx *ctx, int argc, char **argv, int json);
int vsmctl_import_main(vsm_ctx *ctx, int argc, char **argv, int json);

#endif
