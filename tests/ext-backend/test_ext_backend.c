/*
 * The out-of-tree backend of ext-backend.c, built only against libvsm
 * 0.1's backend.h, used through today's public API: registered by hand
 * (both schemes: with and without compare-and-write) for the whole life
 * of a container, and loaded as a module by vsm_ctx_open().
 *
 * usage: test-ext-backend MODULE_DIR (the directory holding ext-backend.so)
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vsm/vsm.h>
#include <vsm/image.h>

#include "ext-backend.h"

static const char *module_dir;
static char tmp[64];

#define ck_vsm(call) do { \
	int rc_ = (call); \
	ck_assert_msg(rc_ == 0, "%s: %d %s", #call, rc_, \
		      vsm_error_last() && vsm_error_last()->message ? \
		      vsm_error_last()->message : ""); \
} while (0)

static void setup(void)
{
	strcpy(tmp, "/tmp/vsm-ext.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	ck_assert_int_eq(system(cmd), 0);
}

static char *tpath(const char *name)
{
	static char buf[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmp, name);
	return buf[i];
}

/* Log lines of the context, joined, for assertions. */
static char logbuf[16384];

static void log_cb(int level, const char *msg, void *payload)
{
	(void)payload;
	if (strlen(logbuf) + strlen(msg) + 16 < sizeof(logbuf))
		snprintf(logbuf + strlen(logbuf), sizeof(logbuf) - strlen(logbuf), "%d %s\n",
			 level, msg);
}

static vsm_ctx *open_ctx(const char *state, const char *backend_dir)
{
	vsm_ctx_opts opts = VSM_CTX_OPTS_INIT;
	vsm_ctx *ctx = NULL;

	opts.state_dir = state;
	opts.backend_dir = backend_dir;
	opts.log_cb = log_cb;
	opts.log_level = VSM_LOG_DEBUG;
	ck_vsm(vsm_ctx_open(&ctx, &opts));
	return ctx;
}

static void pattern(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed * 31 + i * 7);
}

static void image_write(const char *path, unsigned seed, uint64_t off)
{
	static unsigned char buf[65536];
	vsm_image *img;

	pattern(buf, sizeof(buf), seed);
	ck_vsm(vsm_image_open(&img, path, NULL));
	ck_vsm(vsm_image_write(img, buf, sizeof(buf), off, 0));
	ck_vsm(vsm_image_close(img));
}

static void image_expect(const char *path, unsigned seed, uint64_t off)
{
	static unsigned char want[65536], got[65536];
	vsm_image_check_result res = VSM_IMAGE_CHECK_RESULT_INIT;
	vsm_image *img;

	pattern(want, sizeof(want), seed);
	ck_vsm(vsm_image_open(&img, path, NULL));
	ck_vsm(vsm_image_read(img, got, sizeof(got), off));
	ck_vsm(vsm_image_check(&res, img, 0));
	ck_vsm(vsm_image_close(img));
	ck_assert_msg(memcmp(want, got, sizeof(got)) == 0, "%s: data at %llu differs", path,
		      (unsigned long long)off);
	ck_assert_uint_eq(res.corruptions, 0);
	ck_assert_uint_eq(res.leaks, 0);
}

/* Entries of @dir not starting with '.' (the metadata file does). */
static int visible_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static const char *root_path(vsm_container *c)
{
	const vsm_device *d = vsm_container_device_by_name(c, "root");
	const vsm_locator *loc;

	ck_assert_ptr_nonnull(d);
	loc = vsm_device_locator(d);
	ck_assert_ptr_nonnull(loc);
	ck_assert_ptr_nonnull(vsm_locator_path(loc));
	return vsm_locator_path(loc);
}

/* create -> attach -> deploy -> qcow2 writes -> checkpoint -> more
 * writes -> destroy, on a datastore of @scheme. */
static void life(const char *scheme)
{
	vsm_device_spec root = VSM_DEVICE_SPEC_INIT, data = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *devs[] = {&root, &data};
	vsm_container_opts copts = VSM_CONTAINER_OPTS_INIT;
	vsm_checkpoint_opts cpopts = VSM_CHECKPOINT_OPTS_INIT;
	vsm_checkpoint **cps = NULL;
	vsm_container *c = NULL, *again = NULL;
	vsm_locator *loc = NULL;
	char uri[PATH_MAX + 32], dir[PATH_MAX];
	size_t n = 0;
	vsm_ctx *ctx;

	snprintf(dir, sizeof(dir), "%s", tpath("ds"));
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(uri, sizeof(uri), "%s://%s", scheme, dir);
	logbuf[0] = '\0';
	ctx = open_ctx(tpath("state"), "");
	ck_vsm(ext_backend_register(ctx));
	ck_vsm(vsm_backend_lookup(ctx, uri));
	ck_vsm(vsm_datastore_add(ctx, "ext1", uri, 0));
	ck_vsm(vsm_host_add(ctx, "h1", NULL));
	ck_vsm(vsm_host_link(ctx, "h1", "ext1", 0));

	root.name = "root";
	root.size = 64u << 20;
	root.format = VSM_FORMAT_QCOW2;
	data.name = "data";
	data.size = 8u << 20;
	copts.devices = devs;
	copts.n_devices = 2;
	ck_vsm(vsm_container_create(&c, ctx, "ext1", "web", &copts));
	ck_vsm(vsm_attach(c, "h1", 0));
	ck_vsm(vsm_device_deploy(&loc, c, "root", NULL));
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "<source file='"));
	ck_assert_str_eq(vsm_locator_path(loc), root_path(c));

	/* The guest writes through the deployed path. */
	image_write(vsm_locator_path(loc), 1, 1u << 20);
	image_expect(vsm_locator_path(loc), 1, 1u << 20);

	cpopts.flags = VSM_CHECKPOINT_STOPPED;
	ck_vsm(vsm_checkpoint_create(NULL, c, "cp1", &cpopts));
	ck_vsm(vsm_checkpoint_list(&cps, &n, c));
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(vsm_checkpoint_name(cps[0]), "cp1");
	vsm_checkpoint_list_free(cps, n);

	/* A new top layer over the frozen one: old data through the
	 * backing chain, new data on top. */
	image_expect(root_path(c), 1, 1u << 20);
	image_write(root_path(c), 2, 2u << 20);
	image_expect(root_path(c), 2, 2u << 20);
	image_expect(root_path(c), 1, 1u << 20);

	/* A second context reads the container back from the datastore. */
	{
		vsm_ctx *ctx2 = open_ctx(tpath("state2"), "");

		ck_vsm(ext_backend_register(ctx2));
		ck_vsm(vsm_datastore_add(ctx2, "ext1", uri, 0));
		ck_vsm(vsm_container_lookup(&again, ctx2, "ext1", "web"));
		ck_assert_str_eq(vsm_container_attached_host(again), "h1");
		vsm_container_free(again);
		vsm_ctx_free(ctx2);
	}

	ck_vsm(vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE));
	ck_assert_int_eq(visible_files(dir), 0);
	/* Leases worked on both (compare-and-write, or Disk Paxos without). */
	ck_assert_msg(!strstr(logbuf, "no lease area open"), "log: %s", logbuf);
	vsm_locator_free(loc);
	vsm_container_free(c);
	vsm_ctx_free(ctx);
}

START_TEST(life_caw)
{
	life("extfile");
}
END_TEST

START_TEST(life_nocaw)
{
	life("extfile-nocaw");
}
END_TEST

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0755);
	ssize_t n;

	ck_assert_int_ge(in, 0);
	ck_assert_int_ge(out, 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	ck_assert_int_eq(n, 0);
	close(in);
	close(out);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* A module directory: the module, a broken "module" sorted before it, the
 * same file again through a link, a file that is not "*.so"; a second
 * directory with a copy of the module (its schemes are taken by then). */
START_TEST(module_dirs)
{
	char so[PATH_MAX], dirs[2 * PATH_MAX + 2], bad[PATH_MAX], copy[PATH_MAX];
	vsm_ctx *ctx;

	snprintf(so, sizeof(so), "%s/ext-backend.so", module_dir);
	ck_assert_int_eq(access(so, R_OK), 0);
	ck_assert_int_eq(mkdir(tpath("m1"), 0755), 0);
	ck_assert_int_eq(mkdir(tpath("m2"), 0755), 0);
	ck_assert_int_eq(symlink(so, tpath("m1/b-ext.so")), 0);
	ck_assert_int_eq(symlink(so, tpath("m1/c-same.so")), 0);
	snprintf(bad, sizeof(bad), "%s", tpath("m1/a-broken.so"));
	write_text(bad, "not an ELF file\n");
	write_text(tpath("m1/README"), "not a module\n");
	write_text(tpath("m1/x.so.1"), "not a module either\n");
	snprintf(copy, sizeof(copy), "%s", tpath("m2/ext-copy.so"));
	copy_file(so, copy);
	snprintf(dirs, sizeof(dirs), "%s:%s", tpath("m1"), tpath("m2"));

	logbuf[0] = '\0';
	ctx = open_ctx(tpath("state"), dirs);
	ck_vsm(vsm_backend_lookup(ctx, "extfile:///x"));
	ck_vsm(vsm_backend_lookup(ctx, "extfile-nocaw:///x"));
	ck_vsm(vsm_backend_lookup(ctx, "file:///x"));
	/* The broken one is named with dlopen's reason; the open went on. */
	ck_assert_msg(strstr(logbuf, bad) && strstr(logbuf, "not loaded"), "log: %s", logbuf);
	/* The copy could not take the schemes the first load registered. */
	ck_assert_msg(strstr(logbuf, copy) && strstr(logbuf, "already registered"), "log: %s",
		      logbuf);
	ck_assert_msg(!strstr(logbuf, "README") && !strstr(logbuf, "x.so.1"), "log: %s", logbuf);
	/* Sorted: the broken module was tried before the good one. */
	ck_assert(strstr(logbuf, "a-broken.so") < strstr(logbuf, "b-ext.so"));
	vsm_ctx_free(ctx);
}
END_TEST

/* "" loads nothing; a missing directory is logged, not fatal; a caller
 * built against 0.1's vsm_ctx_opts (version 1) has no backend_dir and
 * gets $VSM_BACKEND_DIR. */
START_TEST(module_dir_choices)
{
	vsm_ctx_opts opts = VSM_CTX_OPTS_INIT;
	vsm_ctx *ctx;

	ctx = open_ctx(tpath("state"), "");
	ck_assert_int_eq(vsm_backend_lookup(ctx, "extfile:///x"), -VSM_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(vsm_error_last()->message, "'extfile' not loaded"));
	vsm_ctx_free(ctx);

	logbuf[0] = '\0';
	ctx = open_ctx(tpath("state"), tpath("nowhere"));
	ck_assert_msg(strstr(logbuf, tpath("nowhere")) != NULL, "log: %s", logbuf);
	vsm_ctx_free(ctx);

	ck_assert_int_eq(setenv("VSM_BACKEND_DIR", module_dir, 1), 0);
	opts.version = 1;
	opts.state_dir = tpath("state");
	opts.backend_dir = "/must/not/be/read"; /* past a version 1 struct */
	opts.log_cb = log_cb;
	opts.log_level = VSM_LOG_DEBUG;
	logbuf[0] = '\0';
	ck_vsm(vsm_ctx_open(&ctx, &opts));
	ck_vsm(vsm_backend_lookup(ctx, "extfile:///x"));
	ck_assert_msg(!strstr(logbuf, "/must/not"), "log: %s", logbuf);
	vsm_ctx_free(ctx);
	unsetenv("VSM_BACKEND_DIR");
}
END_TEST

/* A datastore whose backend is gone is still in the inventory: listing
 * leaves it out with a warning, and vsm_backend_lookup() says why. */
START_TEST(backend_not_loaded)
{
	vsm_container **list = NULL;
	vsm_datastore **dss = NULL;
	char uri[PATH_MAX + 32];
	size_t n = 0, nds = 0;
	vsm_ctx *ctx;

	ck_assert_int_eq(mkdir(tpath("ds"), 0755), 0);
	snprintf(uri, sizeof(uri), "extfile://%s", tpath("ds"));
	ctx = open_ctx(tpath("state"), module_dir);
	ck_vsm(vsm_datastore_add(ctx, "ext1", uri, 0));
	vsm_ctx_free(ctx);

	logbuf[0] = '\0';
	ctx = open_ctx(tpath("state"), "");
	ck_vsm(vsm_datastore_list(&dss, &nds, ctx));
	ck_assert_uint_eq(nds, 1);
	ck_assert_int_eq(vsm_backend_lookup(ctx, vsm_datastore_uri(dss[0])), -VSM_ENOTFOUND);
	ck_vsm(vsm_container_list(&list, &n, ctx, NULL));
	ck_assert_uint_eq(n, 0);
	ck_assert_msg(strstr(logbuf, "extfile") != NULL, "log: %s", logbuf);
	vsm_container_list_free(list, n);
	vsm_datastore_list_free(dss, nds);
	vsm_ctx_free(ctx);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("ext-backend");
	TCase *tc = tcase_create("ext-backend");
	SRunner *sr;
	int failed;

	if (argc < 2) {
		fprintf(stderr, "usage: %s MODULE_DIR\n", argv[0]);
		return 2;
	}
	module_dir = argv[1];
	unsetenv("VSM_BACKEND_DIR");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, life_caw);
	tcase_add_test(tc, life_nocaw);
	tcase_add_test(tc, module_dirs);
	tcase_add_test(tc, module_dir_choices);
	tcase_add_test(tc, backend_not_loaded);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
