/*
 * vsmctl's global options and help, as virsh, qemu-img and rbd users
 * expect them: global options anywhere on the line, `--` ending them,
 * `--version`, `help [COMMAND]` and `COMMAND --help`.
 */
#ifndef VSMCTL_ARGS_H
#define VSMCTL_ARGS_H

#include <stdbool.h>
#include <stdio.h>

typedef struct {
	const char *state_dir; /* --state DIR; NULL: the default */
	bool json;             /* --json: machine-readable output, errors too */
	bool quiet;            /* --quiet / -q: no progress bars */
	bool help;             /* --help / -h anywhere */
	bool version;          /* --version / -V */
} vsmctl_globals;

/* Take the global options out of @argv (wherever they are, up to a `--`,
 * which is dropped; what follows it is the command's, verbatim and
 * positional) and shift the rest down so that argv[0] is the command,
 * its positional arguments in their order first, then its options (with
 * their values), as GNU getopt_long permutes them: `attach --takeover c1
 * h2` reads as `attach c1 h2 --takeover`. Returns the new argc
 * (0: no command), or -1 after printing what was wrong (a --state without
 * its directory). */
int vsmctl_take_globals(int argc, char **argv, vsmctl_globals *g);

/* Print the lines of @usage that document @command (NULL: all of it) to
 * @out. Returns 0, or 2 when no line documents @command. */
int vsmctl_help(FILE *out, const char *usage, const char *command);

/* "vsmctl X.Y.Z (libvsm A.B.C)": the tool's version and the library's
 * it runs with, which may be newer than the one it was built against. */
void vsmctl_print_version(FILE *out);

#endif
