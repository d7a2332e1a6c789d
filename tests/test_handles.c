/*
 * Suite "handles": what a container handle's getters return stays valid
 * until the handle is freed, across every call that updates the handle,
 * and can be passed back into those calls. Each test keeps the pointers
 * from before a call, hands some of them to the call, and reads all of
 * them after it. ASan catches a use after free; in a plain build glibc
 * scribbles over freed memory (M_PERTURB), so the comparisons fail too.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

static char *state, *dsdir, *uri;
static vsm_ctx *ctx;

static void setup(void)
{
	state = tu_dir("state");
	dsdir = tu_dir("ds");
	uri = tu_uri(dsdir);
	ctx = tu_ctx(state);
	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	ck_vsm(vsm_host_add(ctx, "h1", NULL));
	ck_vsm(vsm_host_link(ctx, "h1", "ds1", 0));
}

static void teardown(void)
{
	vsm_ctx_free(ctx);
	free(state);
	free(dsdir);
	free(uri);
}

/* Pointers a caller kept, each with a private copy of what it read. */
#define KEEP_MAX 64
typedef struct {
	const char *str[KEEP_MAX];
	char *want[KEEP_MAX];
	size_t n;
	const vsm_device *dev[KEEP_MAX];
	char *dev_name[KEEP_MAX];
	size_t n_dev;
	const vsm_locator *loc[KEEP_MAX];
	char *loc_uri[KEEP_MAX];
	size_t n_loc;
	/* Named pointers the tests pass back into calls. */
	const char *name, *host, *dname[8];
} kept;

static void keep(kept *k, const char *s)
{
	if (!s)
		return;
	ck_assert(k->n < KEEP_MAX);
	k->str[k->n] = s;
	k->want[k->n] = strdup(s);
	ck_assert_ptr_nonnull(k->want[k->n]);
	k->n++;
}

static void keep_all(kept *k, const vsm_container *c)
{
	size_t i;

	memset(k, 0, sizeof(*k));
	keep(k, k->name = vsm_container_name(c));
	keep(k, vsm_container_uuid(c));
	keep(k, vsm_container_datastore(c));
	keep(k, k->host = vsm_container_attached_host(c));
	ck_assert_uint_le(vsm_container_device_count(c), 8);
	for (i = 0; i < vsm_container_device_count(c); i++) {
		const vsm_device *d = vsm_container_device(c, i);
		const vsm_locator *l = vsm_device_locator(d);

		ck_assert_ptr_eq(vsm_container_device_by_name(c, vsm_device_name(d)), d);
		keep(k, k->dname[i] = vsm_device_name(d));
		keep(k, vsm_device_key(d));
		k->dev[k->n_dev] = d;
		k->dev_name[k->n_dev++] = strdup(vsm_device_name(d));
		if (!l)
			continue;
		keep(k, vsm_locator_uri(l));
		keep(k, vsm_locator_path(l));
		keep(k, vsm_locator_disk_xml(l));
		keep(k, vsm_locator_host(l));
		k->loc[k->n_loc] = l;
		k->loc_uri[k->n_loc++] = strdup(vsm_locator_uri(l));
	}
}

/* Everything kept still reads as it did, then is forgotten. */
static void check_kept(kept *k)
{
	size_t i;

	for (i = 0; i < k->n; i++) {
		ck_assert_str_eq(k->str[i], k->want[i]);
		free(k->want[i]);
	}
	for (i = 0; i < k->n_dev; i++) {
		ck_assert_str_eq(vsm_device_name(k->dev[i]), k->dev_name[i]);
		ck_assert_ptr_nonnull(vsm_device_key(k->dev[i]));
		free(k->dev_name[i]);
	}
	for (i = 0; i < k->n_loc; i++) {
		ck_assert_str_eq(vsm_locator_uri(k->loc[i]), k->loc_uri[i]);
		ck_assert_ptr_nonnull(vsm_locator_disk_xml(k->loc[i]));
		free(k->loc_uri[i]);
	}
	memset(k, 0, sizeof(*k));
}

static vsm_container *make(void)
{
	vsm_container *c = NULL;

	ck_vsm(tu_create(&c, ctx, "ds1", "vm1", 2, 1 << 20));
	return c;
}

static void deploy_all(vsm_container *c)
{
	size_t i;

	for (i = 0; i < vsm_container_device_count(c); i++)
		ck_vsm(vsm_device_deploy(NULL, c, vsm_device_name(vsm_container_device(c, i)),
					 NULL));
}

START_TEST(attach_keeps_pointers)
{
	vsm_container *c = make();
	kept k;

	ck_vsm(vsm_attach(c, "h1", 0));
	/* Again, to the host the handle names: the same-host path. */
	keep_all(&k, c);
	ck_vsm(vsm_attach(c, k.host, 0));
	check_kept(&k);
	ck_assert_str_eq(vsm_container_attached_host(c), "h1");
	/* Detach, then attach with the host string from before. */
	keep_all(&k, c);
	ck_vsm(vsm_detach(c, 0));
	ck_assert_ptr_null(vsm_container_attached_host(c));
	ck_vsm(vsm_attach(c, k.host, 0));
	check_kept(&k);
	ck_assert_str_eq(vsm_container_attached_host(c), "h1");
	vsm_container_free(c);
}
END_TEST

START_TEST(detach_keeps_pointers)
{
	vsm_container *c = make();
	kept k;

	ck_vsm(vsm_attach(c, "h1", 0));
	deploy_all(c);
	keep_all(&k, c);
	ck_assert_uint_eq(k.n_loc, 2);
	ck_vsm(vsm_detach(c, VSM_DETACH_FORCE));
	check_kept(&k);
	ck_assert_ptr_null(vsm_container_attached_host(c));
	ck_assert_ptr_null(vsm_device_locator(vsm_container_device(c, 0)));
	vsm_container_free(c);
}
END_TEST

START_TEST(deploy_keeps_pointers)
{
	vsm_container *c = make();
	vsm_locator *loc = NULL;
	kept k;
	size_t i;

	ck_vsm(vsm_attach(c, "h1", 0));
	keep_all(&k, c);
	/* The call every caller writes: the device's own name passed back. */
	for (i = 0; i < vsm_container_device_count(c); i++) {
		ck_vsm(vsm_device_deploy(&loc, c, vsm_device_name(vsm_container_device(c, i)),
					 NULL));
		ck_assert_str_eq(vsm_locator_host(loc), "h1");
		vsm_locator_free(loc);
		loc = NULL;
	}
	/* Deployed already: the names from before the first deploy. */
	ck_vsm(vsm_device_deploy(&loc, c, k.dname[0], NULL));
	vsm_locator_free(loc);
	check_kept(&k);
	/* And once more with every locator of the handle kept. */
	keep_all(&k, c);
	ck_assert_uint_eq(k.n_loc, 2);
	ck_vsm(vsm_device_deploy(NULL, c, k.dname[1], NULL));
	check_kept(&k);
	vsm_container_free(c);
}
END_TEST

START_TEST(undeploy_keeps_pointers)
{
	vsm_container *c = make();
	kept k;

	ck_vsm(vsm_attach(c, "h1", 0));
	deploy_all(c);
	keep_all(&k, c);
	ck_assert_uint_eq(k.n_loc, 2);
	ck_vsm(vsm_device_undeploy(c, k.dname[0], 0));
	ck_vsm(vsm_device_undeploy(c, k.dname[1], 0));
	check_kept(&k);
	ck_assert_ptr_null(vsm_device_locator(vsm_container_device(c, 1)));
	/* Deployed again: the old locators are still readable. */
	keep_all(&k, c);
	deploy_all(c);
	check_kept(&k);
	vsm_container_free(c);
}
END_TEST

START_TEST(refresh_keeps_pointers)
{
	vsm_container *c = make(), *other = NULL;
	kept k;

	ck_vsm(vsm_attach(c, "h1", 0));
	deploy_all(c);
	keep_all(&k, c);
	ck_vsm(vsm_container_refresh(c));
	check_kept(&k);
	/* A change made through another handle, then a refresh. */
	keep_all(&k, c);
	ck_vsm(vsm_container_lookup(&other, ctx, vsm_container_datastore(c),
				    vsm_container_name(c)));
	ck_vsm(vsm_device_undeploy(other, k.dname[0], 0));
	ck_vsm(vsm_container_refresh(c));
	check_kept(&k);
	ck_assert_ptr_null(vsm_device_locator(vsm_container_device(c, 0)));
	vsm_container_free(other);
	vsm_container_free(c);
}
END_TEST

START_TEST(checkpoint_create_keeps_pointers)
{
	vsm_checkpoint_opts o = VSM_CHECKPOINT_OPTS_INIT;
	vsm_container *c = make();
	vsm_checkpoint *cp = NULL;
	kept k;

	o.flags = VSM_CHECKPOINT_STOPPED;
	ck_vsm(vsm_attach(c, "h1", 0));
	deploy_all(c);
	keep_all(&k, c);
	/* The devices are undeployed and deployed again inside the call,
	 * each an update of @c, while it still reads the name it was given. */
	ck_vsm(vsm_checkpoint_create(&cp, c, k.name, &o));
	check_kept(&k);
	ck_assert_str_eq(vsm_checkpoint_name(cp), "vm1");
	/* New tops: the keys changed, the old ones are still readable. */
	ck_assert_str_ne(vsm_device_key(vsm_container_device(c, 0)),
			 vsm_checkpoint_layer_key(cp, 0));
	vsm_checkpoint_free(cp);
	vsm_container_free(c);
}
END_TEST

START_TEST(checkpoint_revert_keeps_pointers)
{
	vsm_checkpoint_opts o = VSM_CHECKPOINT_OPTS_INIT;
	vsm_revert_opts ro = VSM_REVERT_OPTS_INIT;
	vsm_container *c = make();
	vsm_checkpoint *cp = NULL;
	kept k;

	o.flags = ro.flags = VSM_CHECKPOINT_STOPPED;
	ck_vsm(vsm_checkpoint_create(NULL, c, vsm_container_name(c), &o));
	ck_vsm(vsm_attach(c, "h1", 0));
	deploy_all(c);
	keep_all(&k, c);
	ck_vsm(vsm_checkpoint_revert(c, k.name, &ro));
	check_kept(&k);
	/* A checkpoint handle's name, while the container handle changes. */
	ck_vsm(vsm_checkpoint_lookup(&cp, c, "vm1"));
	keep_all(&k, c);
	ck_vsm(vsm_checkpoint_revert(c, vsm_checkpoint_name(cp), &ro));
	check_kept(&k);
	ck_assert_str_eq(vsm_checkpoint_name(cp), "vm1");
	vsm_checkpoint_free(cp);
	vsm_container_free(c);
}
END_TEST

START_TEST(checkpoint_delete_keeps_pointers)
{
	vsm_checkpoint_opts o = VSM_CHECKPOINT_OPTS_INIT;
	vsm_container *c = make();
	size_t n = 1;
	vsm_checkpoint **list = NULL;
	kept k;

	o.flags = VSM_CHECKPOINT_STOPPED;
	ck_vsm(vsm_checkpoint_create(NULL, c, vsm_container_name(c), &o));
	ck_vsm(vsm_checkpoint_create(NULL, c, "second", &o));
	ck_vsm(vsm_attach(c, "h1", 0));
	deploy_all(c);
	keep_all(&k, c);
	ck_vsm(vsm_checkpoint_delete(c, k.name, VSM_CHECKPOINT_STOPPED));
	check_kept(&k);
	ck_vsm(vsm_checkpoint_list(&list, &n, c));
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(vsm_checkpoint_name(list[0]), "second");
	vsm_checkpoint_list_free(list, n);
	vsm_container_free(c);
}
END_TEST

START_TEST(checkpoint_clone_keeps_pointers)
{
	vsm_container *c = make(), *copy = NULL;
	kept k;

	ck_vsm(vsm_checkpoint_create(NULL, c, vsm_container_name(c), NULL));
	keep_all(&k, c);
	ck_vsm(vsm_checkpoint_clone(&copy, c, k.name, "copy", 0));
	check_kept(&k);
	ck_assert_str_eq(vsm_container_name(copy), "copy");
	vsm_container_free(copy);
	vsm_container_free(c);
}
END_TEST

START_TEST(destroy_keeps_pointers)
{
	vsm_container *c = make();
	kept k;

	ck_vsm(vsm_attach(c, "h1", 0));
	deploy_all(c);
	keep_all(&k, c);
	ck_vsm(vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE));
	check_kept(&k);
	ck_assert_str_eq(vsm_container_name(c), "vm1");
	vsm_container_free(c);
}
END_TEST

/* The pointers outlive failed calls too. */
START_TEST(refused_calls_keep_pointers)
{
	vsm_container *c = make();
	kept k;

	ck_vsm(vsm_attach(c, "h1", 0));
	deploy_all(c);
	keep_all(&k, c);
	ck_vsm_refused(vsm_detach(c, 0), VSM_EBUSY, "deployed");
	ck_vsm_refused(vsm_device_deploy(NULL, c, k.host, NULL), VSM_ENOTFOUND, "h1");
	ck_vsm_refused(vsm_checkpoint_create(NULL, c, k.name, NULL), VSM_EBUSY, "deployed");
	check_kept(&k);
	vsm_container_free(c);
}
END_TEST

static Suite *handles_suite(void)
{
	Suite *s = suite_create("handles");
	TCase *tc = tcase_create("lifetime");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, attach_keeps_pointers);
	tcase_add_test(tc, detach_keeps_pointers);
	tcase_add_test(tc, deploy_keeps_pointers);
	tcase_add_test(tc, undeploy_keeps_pointers);
	tcase_add_test(tc, refresh_keeps_pointers);
	tcase_add_test(tc, checkpoint_create_keeps_pointers);
	tcase_add_test(tc, checkpoint_revert_keeps_pointers);
	tcase_add_test(tc, checkpoint_delete_keeps_pointers);
	tcase_add_test(tc, checkpoint_clone_keeps_pointers);
	tcase_add_test(tc, destroy_keeps_pointers);
	tcase_add_test(tc, refused_calls_keep_pointers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	/* Freed memory is overwritten, so a stale read shows without ASan
	 * (which ignores this and poisons freed memory itself). */
	mallopt(M_PERTURB, 0xa5);
	return tu_run(handles_suite());
}
