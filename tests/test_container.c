/*
 * Suite "container": the northbound flow end to end on the file backend,
 * rescans, and every refusal the API promises (with nothing changed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

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
	ck_vsm(vsm_host_add(ctx, "h2", NULL));
	ck_vsm(vsm_host_link(ctx, "h1", "ds1", 0));
	ck_vsm(vsm_host_link(ctx, "h2", "ds1", 0));
}

static void teardown(void)
{
	vsm_ctx_free(ctx);
	free(state);
	free(dsdir);
	free(uri);
}

START_TEST(full_flow)
{
	vsm_container *c = NULL, *again = NULL;
	vsm_locator *loc = NULL;
	const vsm_device *d;
	struct stat st;
	size_t i;

	ck_vsm(tu_create(&c, ctx, "ds1", "web", 3, 64 << 20));
	ck_assert_str_eq(vsm_container_name(c), "web");
	ck_assert_str_eq(vsm_container_datastore(c), "ds1");
	ck_assert_int_eq(strlen(vsm_container_uuid(c)), VSM_UUID_STRLEN);
	ck_assert_ptr_null(vsm_container_attached_host(c));
	ck_assert_uint_eq(vsm_container_device_count(c), 3);
	ck_assert_uint_eq(vsm_container_state_size(c), 4 << 20);
	ck_assert_int_gt(vsm_container_ctime(c), 0);
	/* Devices, then the state area, as sparse files of full size. */
	ck_assert_int_eq(tu_count_files(dsdir), 4);
	for (i = 0; i < 3; i++) {
		char *p = NULL;

		d = vsm_container_device(c, i);
		ck_assert_uint_eq(vsm_device_size(d), 64 << 20);
		ck_assert_int_eq(vsm_device_format(d), VSM_FORMAT_RAW);
		ck_assert_ptr_null(vsm_device_locator(d));
		ck_assert(asprintf(&p, "%s/%s", dsdir, vsm_device_key(d)) > 0);
		ck_assert_int_eq(stat(p, &st), 0);
		ck_assert_int_eq(st.st_size, 64 << 20);
		ck_assert_int_lt(st.st_blocks * 512, 1 << 20);
		free(p);
	}
	ck_assert_ptr_null(vsm_container_device(c, 3));
	ck_assert_ptr_nonnull(vsm_container_device_by_name(c, "d2"));
	ck_assert_ptr_null(vsm_container_device_by_name(c, "nope"));

	ck_vsm(vsm_attach(c, "h1", 0));
	ck_assert_str_eq(vsm_container_attached_host(c), "h1");
	ck_vsm(vsm_attach(c, "h1", 0)); /* same host again: no-op */
	ck_vsm(vsm_device_deploy(&loc, c, "d1", NULL));
	d = vsm_container_device_by_name(c, "d1");
	ck_assert_ptr_nonnull(vsm_device_locator(d));
	ck_assert_str_eq(vsm_locator_uri(vsm_device_locator(d)), vsm_locator_uri(loc));
	ck_assert_str_eq(vsm_locator_host(loc), "h1");
	ck_assert_ptr_nonnull(strstr(vsm_locator_path(loc), vsm_device_key(d)));
	ck_assert_int_eq(strncmp(vsm_locator_uri(loc), "file:///", 8), 0);
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "<disk type='file'"));
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "type='raw'"));
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), vsm_locator_path(loc)));
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "<target dev='vdb'"));
	vsm_locator_free(loc);
	loc = NULL;
	ck_vsm(vsm_device_deploy(&loc, c, "d1", NULL)); /* again: same locator */
	vsm_locator_free(loc);

	/* Another handle sees the same state from the datastore. */
	ck_vsm(vsm_container_lookup_by_uuid(&again, ctx, vsm_container_uuid(c)));
	ck_assert_str_eq(vsm_container_attached_host(again), "h1");
	ck_assert_ptr_nonnull(vsm_device_locator(vsm_container_device_by_name(again, "d1")));
	vsm_container_free(again);

	ck_vsm(vsm_device_undeploy(c, "d1", 0));
	ck_assert_ptr_null(vsm_device_locator(vsm_container_device_by_name(c, "d1")));
	ck_vsm(vsm_detach(c, 0));
	ck_assert_ptr_null(vsm_container_attached_host(c));
	ck_vsm(vsm_container_destroy(c, 0));
	ck_assert_int_eq(tu_count_files(dsdir), 0);
	ck_vsm_refused(vsm_container_lookup(&again, ctx, NULL, "web"), VSM_ENOTFOUND, "web");
	ck_vsm_refused(vsm_container_refresh(c), VSM_ENOTFOUND, "web");
	vsm_container_free(c);
}
END_TEST

START_TEST(lookups_and_lists)
{
	char *ds2 = tu_dir("ds2"), *uri2 = tu_uri(ds2);
	vsm_container *c = NULL, **list = NULL;
	vsm_datastore **dsl = NULL;
	vsm_host **hl = NULL;
	size_t n = 0;

	ck_vsm(vsm_datastore_add(ctx, "ds2", uri2, 0));
	ck_vsm(tu_create(NULL, ctx, "ds1", "b", 1, 1 << 20));
	ck_vsm(tu_create(NULL, ctx, "ds1", "a", 1, 1 << 20));
	ck_vsm(tu_create(NULL, ctx, "ds2", "a", 1, 1 << 20));
	ck_vsm(vsm_container_list(&list, &n, ctx, NULL));
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(vsm_container_datastore(list[0]), "ds1");
	ck_assert_str_eq(vsm_container_name(list[0]), "a");
	ck_assert_str_eq(vsm_container_name(list[1]), "b");
	ck_assert_str_eq(vsm_container_datastore(list[2]), "ds2");
	vsm_container_list_free(list, n);
	ck_vsm(vsm_container_list(&list, &n, ctx, "ds2"));
	ck_assert_uint_eq(n, 1);
	vsm_container_list_free(list, n);
	ck_vsm_refused(vsm_container_list(&list, &n, ctx, "nope"), VSM_ENOTFOUND, "nope");
	ck_vsm_refused(vsm_container_lookup(&c, ctx, NULL, "a"), VSM_EINVAL, "ambiguous");
	ck_vsm(vsm_container_lookup(&c, ctx, "ds2", "a"));
	ck_assert_str_eq(vsm_container_datastore(c), "ds2");
	vsm_container_free(c);
	ck_vsm(vsm_container_lookup(&c, ctx, NULL, "b"));
	vsm_container_free(c);
	ck_vsm_refused(vsm_container_lookup_by_uuid(&c, ctx, "not-a-uuid"), VSM_EINVAL, "UUID");
	ck_vsm_refused(vsm_container_lookup_by_uuid(&c, ctx,
		       "00000000-0000-4000-8000-000000000000"), VSM_ENOTFOUND, "00000000");

	ck_vsm(vsm_datastore_list(&dsl, &n, ctx));
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(vsm_datastore_name(dsl[1]), "ds2");
	ck_assert_str_eq(vsm_datastore_uri(dsl[1]), uri2);
	ck_assert_int_eq(strlen(vsm_datastore_uuid(dsl[1])), VSM_UUID_STRLEN);
	vsm_datastore_list_free(dsl, n);
	ck_vsm(vsm_host_list(&hl, &n, ctx));
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(vsm_host_name(hl[0]), "h1");
	ck_assert_uint_eq(vsm_host_datastore_count(hl[0]), 1);
	ck_assert_str_eq(vsm_host_datastore(hl[0], 0), "ds1");
	ck_assert_ptr_null(vsm_host_datastore(hl[0], 1));
	vsm_host_list_free(hl, n);
	free(uri2);
	free(ds2);
}
END_TEST

/* A lookup by bare name walks every datastore; one it cannot read is
 * skipped, and "not found" then says the container may be there instead
 * of that it does not exist. */
START_TEST(lookup_names_unreadable_datastore)
{
	char *ds2 = tu_dir("ds2"), *uri2 = tu_uri(ds2), *meta = NULL, *gone = NULL;
	vsm_container *c = NULL;
	int rc;

	ck_vsm(vsm_datastore_add(ctx, "ds2", uri2, 0));
	ck_vsm(tu_create(NULL, ctx, "ds1", "a", 1, 1 << 20));
	vsm_ctx_free(ctx);
	ck_assert(asprintf(&meta, "%s/.vsm", ds2) > 0 && asprintf(&gone, "%s/.vsm-gone", ds2) > 0);
	ck_assert_int_eq(rename(meta, gone), 0);
	ctx = tu_ctx(state);
	ck_vsm(vsm_container_lookup(&c, ctx, NULL, "a"));
	vsm_container_free(c);
	rc = vsm_container_lookup(&c, ctx, NULL, "zz");
	ck_assert_msg(rc < 0 && rc != -VSM_ENOTFOUND, "lookup returned %d: %s", rc, tu_msg());
	ck_assert_ptr_nonnull(strstr(tu_msg(), "could not be read"));
	ck_assert_ptr_nonnull(strstr(tu_msg(), "ds2"));
	/* Named, the datastore's own error; readable again, plain not found. */
	ck_assert_int_lt(vsm_container_lookup(&c, ctx, "ds2", "zz"), 0);
	ck_assert_int_eq(rename(gone, meta), 0);
	vsm_ctx_free(ctx);
	ctx = tu_ctx(state);
	ck_vsm_refused(vsm_container_lookup(&c, ctx, NULL, "zz"), VSM_ENOTFOUND, "does not exist");
	free(meta);
	free(gone);
	free(uri2);
	free(ds2);
}
END_TEST

START_TEST(capacity_reported)
{
	uint64_t total = 0, free_bytes = 0;

	ck_vsm(vsm_datastore_capacity(ctx, "ds1", &total, &free_bytes));
	ck_assert_uint_gt(total, 0);
	ck_assert_uint_le(free_bytes, total);
	ck_vsm_refused(vsm_datastore_capacity(ctx, "zz", &total, NULL), VSM_ENOTFOUND, "zz");
}
END_TEST

START_TEST(rescan_on_new_state_dir)
{
	char *state2 = tu_dir("state2");
	vsm_container *c = NULL;
	vsm_ctx *ctx2;
	vsm_locator *loc = NULL;

	ck_vsm(tu_create(&c, ctx, "ds1", "web", 2, 1 << 20));
	ck_vsm(vsm_attach(c, "h1", 0));
	ck_vsm(vsm_device_deploy(&loc, c, "d0", NULL));
	vsm_locator_free(loc);
	vsm_container_free(c);
	ck_vsm(tu_create(NULL, ctx, "ds1", "db", 1, 1 << 20));

	ctx2 = tu_ctx(state2);
	ck_vsm(vsm_datastore_add(ctx2, "other-name", uri, 0));
	ck_vsm(vsm_container_lookup(&c, ctx2, NULL, "web"));
	ck_assert_str_eq(vsm_container_datastore(c), "other-name");
	ck_assert_str_eq(vsm_container_attached_host(c), "h1");
	ck_assert_uint_eq(vsm_container_device_count(c), 2);
	ck_assert_ptr_nonnull(vsm_device_locator(vsm_container_device_by_name(c, "d0")));
	vsm_container_free(c);
	ck_vsm(vsm_container_lookup(&c, ctx2, NULL, "db"));
	vsm_container_free(c);
	/* The same datastore may not be registered twice in one catalog. */
	ck_vsm_refused(vsm_datastore_add(ctx2, "again", uri, 0), VSM_EEXISTS, "other-name");
	vsm_ctx_free(ctx2);

	/* Reopening the first catalog uses its cache; a change made by the
	 * second context is still seen (the generation moved). */
	ctx2 = tu_ctx(state2);
	ck_vsm(vsm_container_lookup(&c, ctx2, NULL, "db"));
	ck_vsm(vsm_container_destroy(c, 0));
	vsm_container_free(c);
	vsm_ctx_free(ctx2);
	ck_vsm_refused(vsm_container_lookup(&c, ctx, NULL, "db"), VSM_ENOTFOUND, "db");
	free(state2);
}
END_TEST

static int create_specs(vsm_container **out, const char *name, size_t n,
			const vsm_device_spec *specs, unsigned int flags)
{
	const vsm_device_spec *ptrs[8];
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	size_t i;

	for (i = 0; i < n; i++)
		ptrs[i] = &specs[i];
	opts.devices = ptrs;
	opts.n_devices = n;
	opts.flags = flags;
	return vsm_container_create(out, ctx, "ds1", name, &opts);
}

START_TEST(create_refusals_change_nothing)
{
	vsm_device_spec d[2] = { VSM_DEVICE_SPEC_INIT, VSM_DEVICE_SPEC_INIT };
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	vsm_container *c = NULL, **list = NULL;
	uint64_t free_bytes = 0;
	size_t n = 0;

	ck_vsm(tu_create(NULL, ctx, "ds1", "web", 1, 1 << 20));
	ck_assert_int_eq(tu_count_files(dsdir), 2);

	ck_vsm_refused(tu_create(&c, ctx, "ds1", "web", 1, 1 << 20), VSM_EEXISTS,
		       "datastore 'ds1': container 'web' already exists");
	ck_vsm_refused(tu_create(&c, ctx, "ds1", "bad/name", 1, 1 << 20), VSM_EINVAL,
		       "bad/name");
	ck_vsm_refused(tu_create(&c, ctx, "ds1", "..", 1, 1 << 20), VSM_EINVAL, "reserved");
	ck_vsm_refused(tu_create(&c, ctx, "nope", "x", 1, 1 << 20), VSM_ENOTFOUND, "nope");
	ck_vsm_refused(tu_create(&c, ctx, "ds1", "x", 0, 1 << 20), VSM_EINVAL,
		       "at least one device");
	ck_vsm_refused(tu_create(&c, ctx, "ds1", "x", 1, 0), VSM_EINVAL, "size 0");

	d[0].name = "disk";
	d[0].size = 1 << 20;
	d[1] = d[0];
	ck_vsm_refused(create_specs(&c, "x", 2, d, 0), VSM_EEXISTS, "'disk' is given twice");
	d[1].name = "../../etc/passwd";
	ck_vsm_refused(create_specs(&c, "x", 2, d, 0), VSM_EINVAL, "../../etc/passwd");
	d[1].name = "disk2";
	d[1].format = 7;
	ck_vsm_refused(create_specs(&c, "x", 2, d, 0), VSM_EINVAL, "unknown format");
	d[1].format = VSM_FORMAT_RAW;
	d[1].version = 0;
	ck_vsm_refused(create_specs(&c, "x", 2, d, 0), VSM_EVERSION, "vsm_device_spec");
	d[1].version = VSM_DEVICE_SPEC_VERSION;

	/* More than the free space, unless thin provisioning is asked. */
	ck_vsm(vsm_datastore_capacity(ctx, "ds1", NULL, &free_bytes));
	d[1].size = free_bytes + (1ull << 30);
	ck_vsm_refused(create_specs(&c, "x", 2, d, 0), VSM_ENOSPC, "free");
	ck_assert_int_eq(tu_count_files(dsdir), 2);
	ck_vsm(create_specs(&c, "thin", 2, d, VSM_CONTAINER_CREATE_THIN));
	ck_vsm(vsm_container_destroy(c, 0));
	vsm_container_free(c);

	opts.version = 99;
	ck_vsm_refused(vsm_container_create(&c, ctx, "ds1", "x", &opts), VSM_EVERSION,
		       "vsm_container_opts");
	ck_assert_int_eq(tu_count_files(dsdir), 2);
	ck_vsm(vsm_container_list(&list, &n, ctx, NULL));
	ck_assert_uint_eq(n, 1);
	vsm_container_list_free(list, n);
}
END_TEST

START_TEST(attach_refusals)
{
	vsm_container *c = NULL, *other = NULL;

	ck_vsm(vsm_host_add(ctx, "lonely", NULL));
	ck_vsm(tu_create(&c, ctx, "ds1", "web", 1, 1 << 20));
	ck_vsm_refused(vsm_attach(c, "ghost", 0), VSM_ENOTFOUND, "ghost");
	ck_vsm_refused(vsm_attach(c, "lonely", 0), VSM_ESTATE,
		       "host 'lonely': the host is not linked to datastore 'ds1'");
	ck_vsm_refused(vsm_detach(c, 0), VSM_ESTATE, "not attached");
	ck_vsm(vsm_attach(c, "h1", 0));
	/* A stale handle of the same container learns the truth. */
	ck_vsm(vsm_container_lookup(&other, ctx, "ds1", "web"));
	ck_vsm(vsm_detach(c, 0));
	ck_vsm(vsm_attach(c, "h2", 0));
	ck_vsm_refused(vsm_attach(other, "h1", 0), VSM_EBUSY, "attached to host 'h2'");
	/* A refused call leaves the handle as it was until refreshed. */
	ck_assert_str_eq(vsm_container_attached_host(other), "h1");
	ck_vsm(vsm_container_refresh(other));
	ck_assert_str_eq(vsm_container_attached_host(other), "h2");
	/* The inventory refuses to forget what is in use. */
	ck_vsm_refused(vsm_host_remove(ctx, "h2", 0), VSM_EBUSY, "web");
	ck_vsm_refused(vsm_host_unlink(ctx, "h2", "ds1", 0), VSM_EBUSY, "web");
	ck_vsm_refused(vsm_datastore_remove(ctx, "ds1", 0), VSM_EBUSY, "web");
	ck_vsm_refused(vsm_host_link(ctx, "h2", "nope", 0), VSM_ENOTFOUND, "nope");
	ck_vsm_refused(vsm_host_unlink(ctx, "lonely", "ds1", 0), VSM_ENOTFOUND, "not linked");
	ck_vsm(vsm_host_remove(ctx, "lonely", 0));
	vsm_container_free(other);
	vsm_container_free(c);
}
END_TEST

START_TEST(deploy_refusals)
{
	vsm_container *c = NULL;
	vsm_deploy_opts opts = VSM_DEPLOY_OPTS_INIT;
	vsm_locator *loc = NULL;

	ck_vsm(tu_create(&c, ctx, "ds1", "web", 2, 1 << 20));
	ck_vsm_refused(vsm_device_deploy(&loc, c, "d0", NULL), VSM_ESTATE,
		       "container 'web' is not attached");
	ck_vsm(vsm_attach(c, "h1", 0));
	ck_vsm_refused(vsm_device_deploy(&loc, c, "zz", NULL), VSM_ENOTFOUND,
		       "container 'web' has no device 'zz'");
	ck_vsm_refused(vsm_device_undeploy(c, "d0", 0), VSM_ESTATE, "not deployed");
	opts.version = 0;
	ck_vsm_refused(vsm_device_deploy(&loc, c, "d0", &opts), VSM_EVERSION, "vsm_deploy_opts");
	opts.version = VSM_DEPLOY_OPTS_VERSION;
	opts.target = "sdq";
	opts.bus = "scsi";
	ck_vsm(vsm_device_deploy(&loc, c, "d0", &opts));
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "<target dev='sdq' bus='scsi'/>"));
	vsm_locator_free(loc);
	ck_vsm_refused(vsm_detach(c, 0), VSM_EBUSY, "device 'd0' is deployed");
	ck_vsm_refused(vsm_container_destroy(c, 0), VSM_EBUSY, "attached to host 'h1'");
	ck_assert_int_eq(tu_count_files(dsdir), 3);
	ck_vsm(vsm_detach(c, VSM_DETACH_FORCE));
	ck_assert_ptr_null(vsm_device_locator(vsm_container_device(c, 0)));
	ck_vsm(vsm_attach(c, "h2", 0));
	ck_vsm(vsm_device_deploy(NULL, c, "d1", NULL));
	ck_vsm(vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE));
	ck_assert_int_eq(tu_count_files(dsdir), 0);
	vsm_container_free(c);
}
END_TEST

START_TEST(datastore_refusals)
{
	char *other = tu_dir("other"), *ouri = tu_uri(other);

	ck_vsm_refused(vsm_datastore_add(ctx, "ds1", ouri, 0), VSM_EEXISTS,
		       "datastore 'ds1' already exists");
	ck_vsm_refused(vsm_datastore_add(ctx, "dsX", uri, 0), VSM_EEXISTS, "'ds1'");
	ck_vsm_refused(vsm_datastore_add(ctx, "a b", ouri, 0), VSM_EINVAL, "a b");
	ck_vsm_refused(vsm_datastore_remove(ctx, "nope", 0), VSM_ENOTFOUND, "nope");
	ck_vsm(vsm_datastore_add(ctx, "ds2", ouri, 0));
	ck_vsm(vsm_datastore_remove(ctx, "ds2", 0));
	/* Forgetting a datastore keeps its data: it can come back. */
	ck_assert(tu_exists(other));
	ck_vsm(vsm_datastore_add(ctx, "ds2", ouri, 0));
	free(ouri);
	free(other);
}
END_TEST

START_TEST(null_arguments_refused)
{
	vsm_container *c = NULL;

	ck_vsm_refused(vsm_container_lookup(&c, NULL, NULL, "x"), VSM_EINVAL, "NULL");
	ck_vsm_refused(vsm_attach(NULL, "h1", 0), VSM_EINVAL, "NULL");
	ck_vsm_refused(vsm_device_deploy(NULL, NULL, "d", NULL), VSM_EINVAL, "NULL");
	ck_vsm_refused(vsm_container_create(&c, ctx, "ds1", "x", NULL), VSM_EINVAL, "NULL");
	ck_vsm_refused(vsm_datastore_add(ctx, "x", NULL, 0), VSM_EINVAL, "NULL");
	ck_vsm_refused(vsm_host_link(ctx, "h1", "ds1", 8), VSM_EINVAL, "flags");
	vsm_container_free(NULL);
	vsm_locator_free(NULL);
	vsm_ctx_free(NULL);
	ck_assert_ptr_null(vsm_container_name(NULL));
}
END_TEST


/* --- qcow2 devices and linked clones, checked by qemu-img --- */

static int sh(const char *fmt, const char *a, const char *b)
{
	char *cmd = NULL;
	int rc;

	ck_assert(asprintf(&cmd, fmt, a, b) > 0);
	rc = system(cmd);
	free(cmd);
	return rc;
}

static char *device_path(const vsm_container *c, const char *dev)
{
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/%s", dsdir,
			   vsm_device_key(vsm_container_device_by_name(c, dev))) > 0);
	return p;
}

START_TEST(qcow2_device_is_clean_qcow2)
{
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *ptrs[] = { &d };
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	vsm_container *c = NULL;
	vsm_locator *loc = NULL;
	char *p;

	d.name = "root";
	d.size = 1ull << 30;
	d.format = VSM_FORMAT_QCOW2;
	opts.devices = ptrs;
	opts.n_devices = 1;
	ck_vsm(vsm_container_create(&c, ctx, "ds1", "q", &opts));
	ck_assert_int_eq(vsm_device_format(vsm_container_device(c, 0)), VSM_FORMAT_QCOW2);
	p = device_path(c, "root");
	ck_assert_int_eq(sh("qemu-img check -q '%s'%s", p, ""), 0);
	ck_assert_int_eq(sh("qemu-img info --output=json '%s' | grep -q '\"virtual-size\": %s'",
			    p, "1073741824"), 0);
	ck_assert_int_eq(sh("qemu-img info '%s' | grep -q 'compat: 1.1'%s", p, ""), 0);
	ck_vsm(vsm_attach(c, "h1", 0));
	ck_vsm(vsm_device_deploy(&loc, c, "root", NULL));
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "<driver name='qemu' type='qcow2'/>"));
	vsm_locator_free(loc);
	ck_vsm(vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE));
	vsm_container_free(c);
	free(p);
}
END_TEST

START_TEST(linked_clone_of_golden_image)
{
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *ptrs[] = { &d };
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	vsm_container *c = NULL, *c2 = NULL;
	vsm_locator *loc = NULL;
	char *golden = NULL, *base = NULL, *p;
	const char *xml;

	/* A two-layer golden image made by qemu-img: base.raw <- golden.qcow2 */
	ck_assert(asprintf(&golden, "%s/golden.qcow2", dsdir) > 0);
	ck_assert(asprintf(&base, "%s/base.raw", dsdir) > 0);
	ck_assert_int_eq(sh("qemu-img create -q -f raw '%s' 64M && qemu-io -f raw -c "
			    "'write -P 0x11 0 1M' '%s' >/dev/null", base, base), 0);
	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 -b base.raw -F raw '%s' && qemu-io -c "
			    "'write -P 0x22 4M 1M' '%s' >/dev/null", golden, golden), 0);

	d.name = "root";
	d.format = VSM_FORMAT_QCOW2;
	d.base = "golden.qcow2";
	opts.devices = ptrs;
	opts.n_devices = 1;
	ck_vsm(vsm_container_create(&c, ctx, "ds1", "clone1", &opts));
	ck_assert_uint_eq(vsm_device_size(vsm_container_device(c, 0)), 64 << 20);
	d.size = 128 << 20; /* a clone may be larger than its base */
	ck_vsm(vsm_container_create(&c2, ctx, "ds1", "clone2", &opts));
	p = device_path(c, "root");
	ck_assert_int_eq(sh("qemu-img check -q '%s'%s", p, ""), 0);
	ck_assert_int_eq(sh("qemu-img compare -q '%s' '%s'", p, golden), 0);
	ck_assert_int_eq(sh("qemu-img info --backing-chain '%s' | grep -c '^image:' | "
			    "grep -qx 3%s", p, ""), 0);
	/* Linked, not copied: the overlay holds no data of its own. */
	ck_assert_int_eq(sh("test $(stat -c %%s '%s') -lt 1048576%s", p, ""), 0);

	ck_vsm(vsm_attach(c, "h1", 0));
	ck_vsm(vsm_device_deploy(&loc, c, "root", NULL));
	xml = vsm_locator_disk_xml(loc);
	ck_assert_ptr_nonnull(strstr(xml, "golden.qcow2'/>"));
	ck_assert_ptr_nonnull(strstr(xml, "<format type='raw'/>"));
	ck_assert_ptr_nonnull(strstr(xml, "base.raw'/>"));
	vsm_locator_free(loc);
	/* Destroying clones leaves the golden image alone. */
	ck_vsm(vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE));
	ck_vsm(vsm_container_destroy(c2, 0));
	ck_assert(tu_exists(golden));
	ck_assert_int_eq(tu_count_files(dsdir), 2);
	vsm_container_free(c);
	vsm_container_free(c2);
	free(p);
	free(golden);
	free(base);
}
END_TEST

START_TEST(base_image_refusals)
{
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *ptrs[] = { &d };
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	vsm_container *c = NULL;
	char *golden = NULL;

	ck_assert(asprintf(&golden, "%s/golden.qcow2", dsdir) > 0);
	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 '%s' 64M%s", golden, ""), 0);
	d.name = "root";
	d.format = VSM_FORMAT_QCOW2;
	opts.devices = ptrs;
	opts.n_devices = 1;
	d.base = "../golden.qcow2";
	ck_vsm_refused(vsm_container_create(&c, ctx, "ds1", "x", &opts), VSM_EINVAL,
		       "not a device of this datastore");
	d.base = "/etc/passwd";
	ck_vsm_refused(vsm_container_create(&c, ctx, "ds1", "x", &opts), VSM_EINVAL,
		       "not a device of this datastore");
	d.base = "missing.qcow2";
	ck_vsm_refused(vsm_container_create(&c, ctx, "ds1", "x", &opts), VSM_ENOTFOUND,
		       "missing.qcow2");
	d.base = "golden.qcow2";
	d.size = 1 << 20;
	ck_vsm_refused(vsm_container_create(&c, ctx, "ds1", "x", &opts), VSM_EINVAL,
		       "smaller than its base image");
	d.size = 0;
	d.format = VSM_FORMAT_RAW;
	ck_vsm_refused(vsm_container_create(&c, ctx, "ds1", "x", &opts), VSM_EINVAL,
		       "must be qcow2");
	ck_assert_int_eq(tu_count_files(dsdir), 1);
	free(golden);
}
END_TEST

static Suite *container_suite(void)
{
	Suite *s = suite_create("container");
	TCase *tc = tcase_create("api");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, full_flow);
	tcase_add_test(tc, lookups_and_lists);
	tcase_add_test(tc, lookup_names_unreadable_datastore);
	tcase_add_test(tc, capacity_reported);
	tcase_add_test(tc, rescan_on_new_state_dir);
	tcase_add_test(tc, create_refusals_change_nothing);
	tcase_add_test(tc, attach_refusals);
	tcase_add_test(tc, deploy_refusals);
	tcase_add_test(tc, datastore_refusals);
	tcase_add_test(tc, null_arguments_refused);
	suite_add_tcase(s, tc);

	TCase *q = tcase_create("qcow2");

	tcase_add_unchecked_fixture(q, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(q, setup, teardown);
	tcase_set_timeout(q, 60);
	tcase_add_test(q, qcow2_device_is_clean_qcow2);
	tcase_add_test(q, linked_clone_of_golden_image);
	tcase_add_test(q, base_image_refusals);
	suite_add_tcase(s, q);
	return s;
}

int main(void)
{
	return tu_run(container_suite());
}
