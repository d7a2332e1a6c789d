/*
 * Managed mode's only contact with tgtd: running tgtadm (the target's own
 * management tool) with an argument vector, never through a shell, and
 * turning its complaint into our error.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "isc-int.h"

extern char **environ;

int isc_tgtadm(const isc_uri *u, const char *const *argv)
{
	const char *args[40];
	char port[16], out[1024];
	posix_spawn_file_actions_t fa;
	size_t n = 0, i, got = 0;
	int pipefd[2], status = 0, rc;
	pid_t pid;

	args[n++] = u->tgtadm;
	if (u->control_port >= 0) {
		snprintf(port, sizeof(port), "%d", u->control_port);
		args[n++] = "-C";
		args[n++] = port;
	}
	args[n++] = "--lld";
	args[n++] = "iscsi";
	for (i = 0; argv[i] && n < sizeof(args) / sizeof(args[0]) - 1; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return vsm_error_set(VSM_EIO, "tgtadm: pipe: %s", strerror(errno));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	rc = posix_spawnp(&pid, u->tgtadm, &fa, NULL, (char *const *)args, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (rc != 0) {
		close(pipefd[0]);
		return vsm_error_set(rc == ENOENT ? VSM_ENOTSUP : VSM_EIO,
				     "managed iSCSI mode: cannot run '%s': %s", u->tgtadm,
				     strerror(rc));
	}
	for (;;) {
		ssize_t r = read(pipefd[0], out + got, sizeof(out) - 1 - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == sizeof(out) - 1) {
			char sink[256];

			while (read(pipefd[0], sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	out[got] = '\0';
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	while (got > 0 && (out[got - 1] == '\n' || out[got - 1] == ' '))
		out[--got] = '\0';
	{
		char cmd[300] = "";

		for (i = 3 + (u->control_port >= 0 ? 2 : 0); args[i]; i++) {
			strncat(cmd, args[i], sizeof(cmd) - strlen(cmd) - 2);
			strncat(cmd, " ", sizeof(cmd) - strlen(cmd) - 1);
		}
		return vsm_error_set(strstr(out, "exist") ? VSM_EEXISTS :
				     strstr(out, "can't find") ? VSM_ENOTFOUND : VSM_EIO,
				     "tgtadm %s(target %d) failed: %s", cmd, u->tid,
				     got ? out : "no output");
	}
}
