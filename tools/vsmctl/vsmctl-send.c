/*
 * `vsmctl send CONTAINER [--checkpoint NAME] [--passes N] [--have FILE]
 * [--to CMD [--remove-source]] [--json]` writes the container to stdout
 * (or to CMD's stdin, reading CMD's answers from its stdout: two-way);
 * `vsmctl receive --datastore DS [--name NEW] [--json]` reads it from
 * stdin (answers on stdout when the sender asks for them);
 * `vsmctl receive --datastore DS --list-have` prints what a one-way
 * sender may leave out; `vsmctl receive --abort [UUID]` drops partial
 * transfers. Public API only. Since stdout carries the stream, send's
 * --json report goes to stderr.
 */
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vsm/vsm.h>
#include <vsm/transfer.h>

#include "vsmctl-util.h"
#include "vsmctl-send.h"

static const char usage_text[] =
	"usage: vsmctl send CONTAINER [--checkpoint NAME] [--passes N] [--have FILE]\n"
	"                  [--to CMD [--remove-source]] [--json]\n"
	"       vsmctl receive --datastore DS [--name NEW] [--json]\n"
	"       vsmctl receive --datastore DS --list-have\n"
	"       vsmctl receive --abort [UUID]\n"
	"  send writes the container to stdout (or to CMD, run by sh, two-way);\n"
	"  receive reads it from stdin. A broken transfer resumes when both run again.\n";

static int usage(const char *why, const char *arg)
{
	fprintf(stderr, "vsmctl: ");
	fprintf(stderr, why, arg);
	fprintf(stderr, "\n%s", usage_text);
	return 2;
}

static void report(FILE *to, const char *event, const char *name, const char *uuid,
		   const vsm_transfer_stats *st)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "event", json_object_new_string(event));
	if (name)
		json_object_object_add(j, "container", json_object_new_string(name));
	if (uuid)
		json_object_object_add(j, "uuid", json_object_new_string(uuid));
	json_object_object_add(j, "bytes", json_object_new_uint64(st->bytes));
	json_object_object_add(j, "layers", json_object_new_uint64(st->layers));
	json_object_object_add(j, "layers_skipped", json_object_new_uint64(st->layers_skipped));
	json_object_object_add(j, "sections", json_object_new_uint64(st->sections));
	json_object_object_add(j, "sections_resumed",
			       json_object_new_uint64(st->sections_resumed));
	json_object_object_add(j, "passes", json_object_new_uint64(st->passes));
	fprintf(to, "%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(to);
	json_object_put(j);
}

/* Run CMD with sh, its stdin and stdout piped to us. */
static int spawn(const char *cmd, pid_t *pid, int *to, int *from)
{
	int a[2], b[2];

	if (pipe(a) < 0)
		return -1;
	if (pipe(b) < 0) {
		close(a[0]);
		close(a[1]);
		return -1;
	}
	if ((*pid = fork()) < 0) {
		close(a[0]);
		close(a[1]);
		close(b[0]);
		close(b[1]);
		return -1;
	}
	if (*pid == 0) {
		dup2(a[0], 0);
		dup2(b[1], 1);
		close(a[0]);
		close(a[1]);
		close(b[0]);
		close(b[1]);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(a[0]);
	close(b[1]);
	*to = a[1];
	*from = b[0];
	return 0;
}

static int cmd_send(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_send_opts o = VSM_SEND_OPTS_INIT;
	vsm_transfer_stats st;
	vsm_container *c = NULL;
	const char *to = NULL;
	char name[256], uuid[64];
	int a, rc = 0, out = 1, in = -1, status;
	pid_t pid = -1;

	if (argc < 2 || argv[1][0] == '-')
		return usage("send needs CONTAINER%s", "");
	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--checkpoint") && a + 1 < argc) {
			o.checkpoint = argv[++a];
		} else if (!strcmp(argv[a], "--passes") && a + 1 < argc) {
			char *e;
			long n = strtol(argv[++a], &e, 10);

			if (*e || n < 1 || n > 100)
				return usage("--passes wants 1 to 100, not '%s'", argv[a]);
			o.passes = (unsigned int)n;
		} else if (!strcmp(argv[a], "--have") && a + 1 < argc) {
			o.have = argv[++a];
		} else if (!strcmp(argv[a], "--to") && a + 1 < argc) {
			to = argv[++a];
		} else if (!strcmp(argv[a], "--remove-source")) {
			o.flags |= VSM_SEND_REMOVE_SOURCE;
		} else if (!strcmp(argv[a], "--json")) {
			json = 1;
		} else {
			return usage("unknown option '%s'", argv[a]);
		}
	}
	if ((o.flags & VSM_SEND_REMOVE_SOURCE) && !to)
		return usage("--remove-source needs --to CMD (the receiver's acknowledgement)%s", "");
	if (!to && isatty(1))
		return usage("send writes a binary stream: pipe its output, or give --to CMD%s", "");
	/* A broken pipe is an error to report, not a signal to die of. */
	signal(SIGPIPE, SIG_IGN);
	o.stats = &st;
	o.progress = json ? NULL : vsmctl_progress;
	o.payload = (void *)"send";
	if (vsmctl_find_container(&c, ctx, argv[1]) < 0)
		return vsmctl_fail();
	snprintf(name, sizeof(name), "%s", vsm_container_name(c));
	snprintf(uuid, sizeof(uuid), "%s", vsm_container_uuid(c));
	if (to && spawn(to, &pid, &out, &in) < 0) {
		fprintf(stderr, "vsmctl: cannot run '%s': %s\n", to, strerror(errno));
		vsm_container_free(c);
		return 1;
	}
	if (vsm_container_send(c, out, in, &o) < 0)
		rc = vsmctl_fail();
	if (to) {
		close(out);
		close(in);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
			fprintf(stderr, "vsmctl: '%s' failed\n", to);
			rc = 1;
		}
	}
	if (rc == 0 && json)
		report(stderr, "sent", name, uuid, &st);
	else if (rc == 0) {
		char h[32];

		vsmctl_human(h, sizeof(h), st.bytes);
		fprintf(stderr, "container '%s' sent (%s, %llu of %llu layers left out, %llu "
			"sections resumed)%s\n", name, h, (unsigned long long)st.layers_skipped,
			(unsigned long long)st.layers, (unsigned long long)st.sections_resumed,
			(o.flags & VSM_SEND_REMOVE_SOURCE) ? "; source removed" : "");
	}
	vsm_container_free(c);
	return rc;
}

static int cmd_receive(vsm_ctx *ctx, int argc, char **argv, int json)
{
	vsm_receive_opts o = VSM_RECEIVE_OPTS_INIT;
	vsm_transfer_stats st;
	vsm_container *c = NULL;
	const char *ds = NULL, *abort_uuid = NULL;
	int a, rc = 0, list = 0, abort_all = 0;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--datastore") && a + 1 < argc)
			ds = argv[++a];
		else if (!strcmp(argv[a], "--name") && a + 1 < argc)
			o.name = argv[++a];
		else if (!strcmp(argv[a], "--list-have"))
			list = 1;
		else if (!strcmp(argv[a], "--abort")) {
			abort_all = 1;
			if (a + 1 < argc && argv[a + 1][0] != '-')
				abort_uuid = argv[++a];
		} else if (!strcmp(argv[a], "--json"))
			json = 1;
		else if (argv[a][0] != '-' && !abort_uuid)
			abort_uuid = argv[a]; /* `--abort UUID`, options moved after it */
		else
			return usage("unknown option '%s'", argv[a]);
	}
	if (abort_uuid && !abort_all)
		return usage("'%s': only --abort takes a UUID", abort_uuid);
	if (abort_all) {
		if (vsm_receive_abort(ctx, abort_uuid, 0) < 0)
			return vsmctl_fail();
		if (!json)
			printf("partial transfer%s discarded\n", abort_uuid ? "" : "s");
		return 0;
	}
	if (!ds)
		return usage("receive needs --datastore DS%s", "");
	if (list) {
		fflush(stdout);
		return vsm_receive_list_have(ctx, ds, 1, 0) < 0 ? vsmctl_fail() : 0;
	}
	o.stats = &st;
	o.progress = json ? NULL : vsmctl_progress;
	o.payload = (void *)"receive";
	fflush(stdout);
	if (vsm_container_receive(&c, ctx, 0, 1, ds, &o) < 0)
		return vsmctl_fail();
	/* The sender has had its answers: stdout is ours again. */
	if (json)
		report(stdout, "received", vsm_container_name(c), vsm_container_uuid(c), &st);
	else
		fprintf(stderr, "container '%s' received into datastore '%s' (%llu of %llu layers "
			"held already, %llu sections resumed)\n", vsm_container_name(c), ds,
			(unsigned long long)st.layers_skipped, (unsigned long long)st.layers,
			(unsigned long long)st.sections_resumed);
	vsm_container_free(c);
	return rc;
}

int vsmctl_send_main(vsm_ctx *ctx, int argc, char **argv, int json)
{
	if (!strcmp(argv[0], "send"))
		return cmd_send(ctx, argc, argv, json);
	return cmd_receive(ctx, argc, argv, json);
}
