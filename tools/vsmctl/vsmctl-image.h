/*
 * `vsmctl image ...`: the COW engine for people.
 */
#ifndef VSMCTL_IMAGE_H
#define VSMCTL_IMAGE_H

#include <vsm/context.h>

/* argv[0] is "image", argv[1] the subcommand. @json: --json was given
 * before the command. @ctx_opts: how to open a context, which is done
 * only for images on a datastore. Returns the process exit status. */
int vsmctl_image_main(int argc, char **argv, int json, const vsm_ctx_opts *ctx_opts);

/* `image copy|freeze|cid` (vsmctl-image-copy.c); argv as above. */
int vsmctl_image_copy_main(int argc, char **argv, int json);

#endif
