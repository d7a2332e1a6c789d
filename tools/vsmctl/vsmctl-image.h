/*
 * `vsmctl image ...`: the COW engine for people.
 */
#ifndef VSMCTL_IMAGE_H
#define VSMCTL_IMAGE_H

/* argv[0] is "image", argv[1] the subcommand. @json: --json was given
 * before the command. Returns the process exit status. */
int vsmctl_image_main(int argc, char **argv, int json);

#endif
