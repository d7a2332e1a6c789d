/*
 * Suite "store": the record area beyond 0.1's limits. A 0.1 datastore
 * (tests/data/datastore-0.1.tar.xz, made by libvsm 0.1's vsmctl) opens and
 * is upgraded in place, also when the upgrade is torn; containers past the
 * first 512 slots attach and deploy (their leases live in grown chunks); a
 * record of 500 checkpoints continues over several slots; two records
 * bearing one name (as 0.1's races left them) are reported, not guessed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"
#include "bdev.h"
#include "meta.h"

static const char *tarball;

/* Extract the 0.1 datastore; returns its directory. */
static char *old_datastore(void)
{
	char *dir = tu_dir("old"), *cmd = NULL, *ds = NULL;

	ck_assert(asprintf(&cmd, "tar -xJf '%s' -C '%s'", tarball, dir) > 0);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert(asprintf(&ds, "%s/ds", dir) > 0);
	free(cmd);
	free(dir);
	return ds;
}

/* Layout versions of the two superblock copies of @ds. */
static void sb_versions(const char *ds, uint32_t v[2])
{
	char *mp = NULL;
	unsigned char b[4];
	int fd, i;

	ck_assert(asprintf(&mp, "%s/.vsm/meta", ds) > 0);
	ck_assert_int_ge(fd = open(mp, O_RDONLY), 0);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(pread(fd, b, 4, i * 4096 + 8), 4);
		v[i] = b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
	}
	close(fd);
	free(mp);
}

static void poke(const char *ds, off_t off)
{
	char *mp = NULL;
	unsigned char c;
	int fd;

	ck_assert(asprintf(&mp, "%s/.vsm/meta", ds) > 0);
	ck_assert_int_ge(fd = open(mp, O_RDWR), 0);
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 0xa5;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
	free(mp);
}

static vsm_ctx *fresh_ctx(const char *ds)
{
	char *state = tu_dir("state"), *uri = tu_uri(ds);
	vsm_ctx *ctx = tu_ctx(state);

	ck_vsm(vsm_datastore_add(ctx, "ds", uri, 0));
	free(uri);
	free(state);
	return ctx;
}

static void expect_names(vsm_ctx *ctx, const char *const *names, size_t n)
{
	vsm_container **list = NULL;
	size_t count = 0, i;

	ck_vsm(vsm_container_list(&list, &count, ctx, "ds"));
	ck_assert_uint_eq(count, n);
	for (i = 0; i < n; i++)
		ck_assert_str_eq(vsm_container_name(list[i]), names[i]);
	vsm_container_list_free(list, count);
}

START_TEST(old_datastore_upgrades_in_place)
{
	char *ds = old_datastore();
	const char *before[] = { "db", "web" }, *after[] = { "db", "new1", "web" };
	vsm_container *c = NULL;
	vsm_checkpoint **cps = NULL;
	size_t n = 0;
	uint32_t v[2];
	vsm_ctx *ctx;

	/* Opening and reading change nothing on disk. */
	ctx = fresh_ctx(ds);
	expect_names(ctx, before, 2);
	ck_vsm(vsm_container_lookup(&c, ctx, "ds", "web"));
	ck_assert_uint_eq(vsm_container_device_count(c), 2);
	ck_vsm(vsm_checkpoint_list(&cps, &n, c));
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(vsm_checkpoint_name(cps[0]), "c1");
	vsm_checkpoint_list_free(cps, n);
	vsm_container_free(c);
	sb_versions(ds, v);
	ck_assert_uint_eq(v[0], 1);
	ck_assert_uint_eq(v[1], 1);
	/* The first change upgrades: one copy is layout 2, the other stays
	 * the 0.1 superblock until the next rewrite. */
	ck_vsm(tu_create(NULL, ctx, "ds", "new1", 1, 1 << 20));
	sb_versions(ds, v);
	ck_assert_uint_eq(v[0] + v[1], 3);
	vsm_ctx_free(ctx);
	/* Another host sees all three, and 0.1's records still work. */
	ctx = fresh_ctx(ds);
	expect_names(ctx, after, 3);
	ck_vsm(vsm_container_lookup(&c, ctx, "ds", "web"));
	ck_vsm(vsm_checkpoint_create(NULL, c, "c2", NULL));
	ck_vsm(vsm_checkpoint_revert(c, "c1", NULL));
	ck_vsm(vsm_container_destroy(c, 0));
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	ctx = fresh_ctx(ds);
	expect_names(ctx, (const char *[]){ "db", "new1" }, 2);
	vsm_ctx_free(ctx);
	free(ds);
}
END_TEST

START_TEST(torn_upgrade_falls_back_to_old_layout)
{
	char *ds = old_datastore();
	const char *after[] = { "db", "new1", "web" };
	uint32_t v[2];
	int upgraded;
	vsm_ctx *ctx;

	ctx = fresh_ctx(ds);
	ck_vsm(tu_create(NULL, ctx, "ds", "new1", 1, 1 << 20));
	vsm_ctx_free(ctx);
	sb_versions(ds, v);
	upgraded = v[0] == 2 ? 0 : 1;
	ck_assert_uint_eq(v[upgraded], 2);
	/* As if the machine died while that superblock was written. */
	poke(ds, upgraded * 4096 + 200);
	ctx = fresh_ctx(ds);
	expect_names(ctx, after, 3);
	ck_vsm(tu_create(NULL, ctx, "ds", "new2", 1, 1 << 20));
	vsm_ctx_free(ctx);
	sb_versions(ds, v);
	ck_assert_uint_eq(v[upgraded], 2);
	ctx = fresh_ctx(ds);
	expect_names(ctx, (const char *[]){ "db", "new1", "new2", "web" }, 4);
	vsm_ctx_free(ctx);
	free(ds);
}
END_TEST

START_TEST(slots_past_the_first_area_attach_and_deploy)
{
	char *ds = tu_dir("ds"), *state = tu_dir("state"), *uri = tu_uri(ds);
	vsm_ctx *ctx = tu_ctx(state), *other;
	vsm_container *c = NULL;
	vsm_locator *loc = NULL;
	vsm_container **list = NULL;
	size_t n = 0;
	char name[32];
	int i;

	ck_vsm(vsm_datastore_add(ctx, "ds", uri, 0));
	ck_vsm(vsm_host_add(ctx, "h1", NULL));
	ck_vsm(vsm_host_link(ctx, "h1", "ds", 0));
	for (i = 0; i < 600; i++) {
		snprintf(name, sizeof(name), "c%03d", i);
		ck_vsm(tu_create(NULL, ctx, "ds", name, 1, 1 << 20));
	}
	/* c599 lives in the first grown chunk: its lease is there too. */
	ck_vsm(vsm_container_lookup(&c, ctx, "ds", "c599"));
	ck_vsm(vsm_attach(c, "h1", 0));
	ck_vsm(vsm_device_deploy(&loc, c, "d0", NULL));
	ck_assert_ptr_nonnull(vsm_locator_path(loc));
	vsm_locator_free(loc);
	ck_vsm(vsm_device_undeploy(c, "d0", 0));
	ck_vsm(vsm_detach(c, 0));
	vsm_container_free(c);
	/* Another host reads all 600 back. */
	{
		char *s2 = tu_dir("state2");

		other = tu_ctx(s2);
		ck_vsm(vsm_datastore_add(other, "ds", uri, 0));
		ck_vsm(vsm_container_list(&list, &n, other, "ds"));
		ck_assert_uint_eq(n, 600);
		ck_assert_str_eq(vsm_container_name(list[599]), "c599");
		vsm_container_list_free(list, n);
		vsm_ctx_free(other);
		free(s2);
	}
	vsm_ctx_free(ctx);
	free(uri);
	free(state);
	free(ds);
}
END_TEST

START_TEST(five_hundred_checkpoints_of_four_devices)
{
	char *ds = tu_dir("ds"), *state = tu_dir("state"), *uri = tu_uri(ds), cp[32];
	vsm_ctx *ctx = tu_ctx(state);
	vsm_container *c = NULL;
	vsm_checkpoint **cps = NULL;
	size_t n = 0;
	int i, n_ckpts = getenv("VSM_TEST_CHECKPOINTS") ? atoi(getenv("VSM_TEST_CHECKPOINTS")) : 500;

	ck_vsm(vsm_datastore_add(ctx, "ds", uri, 0));
	ck_vsm(tu_create(&c, ctx, "ds", "big", 4, 1 << 20));
	for (i = 0; i < n_ckpts; i++) {
		snprintf(cp, sizeof(cp), "checkpoint-%03d", i);
		ck_vsm(vsm_checkpoint_create(NULL, c, cp, NULL));
	}
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	/* A host that never saw it reads the whole tree. */
	free(state);
	state = tu_dir("state2");
	ctx = tu_ctx(state);
	ck_vsm(vsm_datastore_add(ctx, "ds", uri, 0));
	ck_vsm(vsm_container_lookup(&c, ctx, "ds", "big"));
	ck_vsm(vsm_checkpoint_list(&cps, &n, c));
	ck_assert_uint_eq(n, (size_t)n_ckpts);
	snprintf(cp, sizeof(cp), "checkpoint-%03d", n_ckpts - 1);
	ck_assert_str_eq(vsm_checkpoint_name(cps[n_ckpts - 1]), cp);
	vsm_checkpoint_list_free(cps, n);
	ck_vsm(vsm_checkpoint_revert(c, "checkpoint-001", NULL));
	ck_vsm(vsm_container_destroy(c, 0));
	vsm_container_free(c);
	ck_assert_int_eq(tu_count_files(ds), 0);
	vsm_ctx_free(ctx);
	free(uri);
	free(state);
	free(ds);
}
END_TEST

START_TEST(two_records_one_name_refused)
{
	char *ds = tu_dir("ds"), *state = tu_dir("state"), *uri = tu_uri(ds), *mp = NULL;
	vsm_ctx *ctx = tu_ctx(state);
	vsm_container *c = NULL, *a = NULL, *b = NULL;
	vsm_slot_info si;
	vsm_bdev *bd = NULL;
	vsm_meta *m = NULL;
	uint64_t gen = 0;
	char *json;

	ck_vsm(vsm_datastore_add(ctx, "ds", uri, 0));
	ck_vsm(tu_create(&a, ctx, "ds", "web", 1, 1 << 20));
	ck_vsm(tu_create(&b, ctx, "ds", "other", 1, 1 << 20));
	vsm_ctx_free(ctx);
	/* What 0.1's races left: the record of 'other' renamed to 'web'. */
	ck_assert(asprintf(&mp, "%s/.vsm/meta", ds) > 0);
	ck_vsm(vsm_bdev_open_path(&bd, mp, 0));
	ck_vsm(vsm_meta_open(&m, bd, "ds", false));
	ck_vsm(vsm_meta_slot_read(m, 1, &si));
	ck_assert_int_eq(si.state, VSM_SLOT_USED);
	json = strstr(si.payload, "\"other\"");
	ck_assert_ptr_nonnull(json);
	memcpy(json, "\"web\"  ", 7);
	ck_vsm(vsm_meta_slot_write(m, 1, si.payload, si.len, 99, NULL, 0, NULL));
	ck_vsm(vsm_meta_generation(m, &gen));
	ck_vsm(vsm_meta_set_generation(m, gen + 1));
	vsm_slot_info_clear(&si);
	vsm_meta_close(m);
	ctx = tu_ctx(state);
	ck_vsm_refused(vsm_container_lookup(&c, ctx, "ds", "web"), VSM_EEXISTS,
		       vsm_container_uuid(b));
	ck_assert_ptr_nonnull(strstr(tu_msg(), vsm_container_uuid(a)));
	ck_assert_ptr_nonnull(strstr(tu_msg(), "refusing to guess"));
	/* Either can be named by UUID and destroyed; then the name is one. */
	ck_vsm(vsm_container_lookup_by_uuid(&c, ctx, vsm_container_uuid(b)));
	ck_vsm(vsm_container_destroy(c, 0));
	vsm_container_free(c);
	ck_vsm(vsm_container_lookup(&c, ctx, "ds", "web"));
	ck_assert_str_eq(vsm_container_uuid(c), vsm_container_uuid(a));
	vsm_container_free(c);
	/* And a new container cannot take the name either. */
	ck_vsm_refused(tu_create(NULL, ctx, "ds", "web", 1, 1 << 20), VSM_EEXISTS,
		       "already exists");
	vsm_container_free(a);
	vsm_container_free(b);
	vsm_ctx_free(ctx);
	free(mp);
	free(uri);
	free(state);
	free(ds);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("upgrade"), *grow = tcase_create("grow");
	TCase *big = tcase_create("checkpoints"), *dups = tcase_create("dups");

	if (argc < 2) {
		fprintf(stderr, "usage: test-store DATASTORE-0.1.tar.xz\n");
		return 2;
	}
	tarball = argv[1];
	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_test(tc, old_datastore_upgrades_in_place);
	tcase_add_test(tc, torn_upgrade_falls_back_to_old_layout);
	tcase_add_unchecked_fixture(grow, tu_root_setup, tu_root_teardown);
	tcase_set_timeout(grow, 300);
	tcase_add_test(grow, slots_past_the_first_area_attach_and_deploy);
	tcase_add_unchecked_fixture(big, tu_root_setup, tu_root_teardown);
	tcase_set_timeout(big, 600);
	tcase_add_test(big, five_hundred_checkpoints_of_four_devices);
	tcase_add_unchecked_fixture(dups, tu_root_setup, tu_root_teardown);
	tcase_add_test(dups, two_records_one_name_refused);
	suite_add_tcase(s, grow);
	suite_add_tcase(s, big);
	suite_add_tcase(s, dups);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
