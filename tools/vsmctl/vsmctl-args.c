/*
 * vsmctl's global options and help (see vsmctl-args.h). Public API only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vsm/vsm.h>

#include "vsmctl-args.h"

/* The command options that take a value (`--datastore DS`): the word
 * after one of them is its value, not a positional argument. */
static const char *const value_options[] = {
	"--backing", "--backing-format", "--base", "--boot", "--bus", "--checkpoint",
	"--cluster-size", "--datastore", "--deadline", "--disk", "--domain",
	"--downtime-ms", "--format", "--function", "--grace", "--granularity",
	"--have", "--host", "--host-tag", "--hypervisor", "--incremental-from",
	"--max-containers", "--meta-data", "--name", "--net", "--network-config",
	"--on-no-converge", "--param", "--passes", "--point", "--reuse-parents",
	"--since", "--state-file", "--state-size", "--target", "--timeout", "--to",
	"--type", "--until", "--user-data", "--var", "--weigher",
};

static bool takes_value(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(value_options) / sizeof(value_options[0]); i++)
		if (!strcmp(s, value_options[i]))
			return true;
	return false;
}

static bool is_option(const char *s)
{
	return s[0] == '-' && s[1] != '\0';
}

int vsmctl_take_globals(int argc, char **argv, vsmctl_globals *g)
{
	char **pos, **opt;
	int r, npos = 0, nopt = 0, w = 0;

	memset(g, 0, sizeof(*g));
	pos = calloc((size_t)argc + 1, sizeof(*pos));
	opt = calloc((size_t)argc + 1, sizeof(*opt));
	if (!pos || !opt) {
		free(pos);
		free(opt);
		fprintf(stderr, "vsmctl: out of memory\n");
		return -1;
	}
	for (r = 1; r < argc; r++) {
		const char *s = argv[r];

		if (!strcmp(s, "--")) {
			/* The rest is the command's, verbatim and positional. */
			while (++r < argc)
				pos[npos++] = argv[r];
		} else if (!strcmp(s, "--json")) {
			g->json = true;
		} else if (!strcmp(s, "--quiet") || !strcmp(s, "-q")) {
			g->quiet = true;
		} else if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
			g->help = true;
		} else if (!strcmp(s, "--version") || !strcmp(s, "-V")) {
			g->version = true;
		} else if (!strcmp(s, "--state")) {
			if (r + 1 >= argc) {
				fprintf(stderr, "vsmctl: --state needs a directory\n");
				free(pos);
				free(opt);
				return -1;
			}
			g->state_dir = argv[++r];
		} else if (!strncmp(s, "--state=", 8)) {
			g->state_dir = s + 8;
		} else if (is_option(s)) {
			opt[nopt++] = argv[r];
			if (takes_value(s) && r + 1 < argc)
				opt[nopt++] = argv[++r];
		} else {
			pos[npos++] = argv[r];
		}
	}
	/* GNU getopt's order: every positional argument, then the options. */
	for (r = 0; r < npos; r++)
		argv[w++] = pos[r];
	for (r = 0; r < nopt; r++)
		argv[w++] = opt[r];
	argv[w] = NULL;
	free(pos);
	free(opt);
	return w;
}

/* A usage line that starts a command ("  NAME ..."), not a continuation. */
static bool is_head(const char *line)
{
	return line[0] == ' ' && line[1] == ' ' && line[2] != ' ';
}

/* Does head line @line (up to @end) document @command: it starts with
 * it, or names it after a " | " as a second form ("export ... | import")? */
static bool documents(const char *line, const char *end, const char *command)
{
	size_t n = strlen(command);
	const char *p;

	if ((size_t)(end - line) > n + 2 && !strncmp(line + 2, command, n) &&
	    (line[2 + n] == ' ' || line[2 + n] == '|' || line + 2 + n == end))
		return true;
	for (p = line; (p = strstr(p, "| ")) && p < end; p += 2) {
		if (!strncmp(p + 2, command, n) && (p[2 + n] == ' ' || p + 2 + n == end))
			return true;
	}
	return false;
}

int vsmctl_help(FILE *out, const char *usage, const char *command)
{
	const char *line = usage, *end;
	bool in = false, any = false;

	if (!command) {
		fputs(usage, out);
		return 0;
	}
	for (; *line; line = *end ? end + 1 : end) {
		if (!(end = strchr(line, '\n')))
			end = line + strlen(line);
		if (is_head(line))
			in = documents(line, end, command);
		else if (line[0] != ' ')
			in = false; /* the usage's first and last lines */
		if (in) {
			fprintf(out, "%.*s\n", (int)(end - line), line);
			any = true;
		}
	}
	if (!any) {
		fprintf(stderr, "vsmctl: no command '%s' (vsmctl help lists them)\n", command);
		return 2;
	}
	return 0;
}

void vsmctl_print_version(FILE *out)
{
	int major = 0, minor = 0, patch = 0;

	vsm_version(&major, &minor, &patch);
	fprintf(out, "vsmctl %s (libvsm %d.%d.%d)\n", VSM_VERSION_STRING, major, minor, patch);
}
