/*
 * Test helpers (see testutil.h).
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

char *tu_root;

void tu_root_setup(void)
{
	const char *tmp = getenv("TMPDIR");
	char *t = NULL;

	if (asprintf(&t, "%s/vsm-test.XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0 || !mkdtemp(t)) {
		perror("mkdtemp");
		abort();
	}
	tu_root = t;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tu_rmrf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_root_teardown(void)
{
	if (tu_root)
		tu_rmrf(tu_root);
	free(tu_root);
	tu_root = NULL;
}

char *tu_dir(const char *name)
{
	static int seq;
	char *d = NULL;

	/* Unique per call, also across forked tests (pid). */
	ck_assert(asprintf(&d, "%s/%s.%d.%d", tu_root, name, (int)getpid(), seq++) > 0);
	ck_assert_msg(mkdir(d, 0700) == 0, "mkdir %s", d);
	return d;
}

char *tu_uri(const char *dir)
{
	char *u = NULL;

	ck_assert(asprintf(&u, "file://%s", dir) > 0);
	return u;
}

/* Warnings and errors of the library go to the test's stderr (meson's
 * log), so a failure in CI shows what the library saw. */
static void tu_log(int level, const char *msg, void *payload)
{
	(void)payload;
	if (level >= VSM_LOG_WARN)
		fprintf(stderr, "[libvsm %s] %s\n", level >= VSM_LOG_ERROR ? "error" : "warn", msg);
}

vsm_ctx *tu_ctx(const char *state_dir)
{
	vsm_ctx_opts opts = VSM_CTX_OPTS_INIT;
	vsm_ctx *ctx = NULL;

	opts.state_dir = state_dir;
	opts.log_cb = tu_log;
	ck_vsm(vsm_ctx_open(&ctx, &opts));
	return ctx;
}

int tu_count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_msg(d != NULL, "opendir %s", dir);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, ".vsm"))
			n++;
	closedir(d);
	return n;
}

bool tu_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

int tu_create(vsm_container **out, vsm_ctx *ctx, const char *ds, const char *name,
	      size_t n, uint64_t size)
{
	vsm_device_spec specs[16];
	const vsm_device_spec *ptrs[16];
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	char names[16][8];
	size_t i;

	ck_assert(n <= 16);
	for (i = 0; i < n; i++) {
		vsm_device_spec d = VSM_DEVICE_SPEC_INIT;

		snprintf(names[i], sizeof(names[i]), "d%zu", i);
		d.name = names[i];
		d.size = size;
		specs[i] = d;
		ptrs[i] = &specs[i];
	}
	opts.devices = ptrs;
	opts.n_devices = n;
	return vsm_container_create(out, ctx, ds, name, &opts);
}

const char *tu_msg(void)
{
	const vsm_error *e = vsm_error_last();

	return e && e->message ? e->message : "(no error)";
}

int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
