/*
 * The libvirt backend against real libvirt.
 *
 * Without arguments it runs against the in-process test driver
 * (test:///default): URIs, pools, volumes, capacity, errors, events,
 * deploy XML, and the container API end to end with a rescan from a
 * second context. The test driver keeps volumes as bookkeeping only, so
 * the container-API case goes through a thin wrapper backend ("lvtest")
 * that creates the files a real dir pool would have created.
 *
 * With LV_REAL=1 (run by real-daemon.sh as an unprivileged user against
 * its own libvirtd) it runs the cases that need real storage and a real
 * domain, on LV_CONNECT / LV_POOL / LV_DOMAIN: qcow2 volumes checked by
 * qemu-img and virsh, block I/O through volume paths, hot-attach of a
 * qcow2 overlay into a running domain, and events over the remote driver.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "vsm/vsm.h"
#include "vsm/backend.h"
#include "backends/libvirt/lv-int.h"
#include "ctx.h" /* struct vsm_locator, which deploy fills */

static const struct vsm_datastore_ops *O = &vsm__libvirt_backend_ops;

#define TEST_URI "test:///default"
#define MiB (UINT64_C(1) << 20)

static virConnectPtr tc;  /* the test's own connection; keeps test:///default alive */
static char tmpdir[256];

static void quiet(void *p, virErrorPtr e)
{
	(void)p;
	(void)e;
}

static void rm_rf(const char *dir)
{
	char cmd[600];

	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
}

static const char *emsg(void)
{
	const vsm_error *e = vsm_error_last();

	return e && e->message ? e->message : "(no message)";
}

#define ck_assert_rc(call, want)                                                       \
	do {                                                                           \
		int rc_ = (call);                                                      \
		ck_assert_msg(rc_ == (want), "%s = %d, want %d: %s", #call, rc_, (want), \
			      rc_ < 0 ? emsg() : "");                                  \
	} while (0)

#define ck_assert_msg_has(needle)                                                      \
	ck_assert_msg(strstr(emsg(), (needle)) != NULL, "message '%s' lacks '%s'", emsg(), \
		      (needle))

/* --- notifications --- */

typedef struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int changed, lost;
	char last[300];
} notes;

static notes N = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, "" };

static void on_notify(void *cookie, int event, const char *detail)
{
	notes *n = cookie;

	pthread_mutex_lock(&n->lock);
	if (event == VSM_BACKEND_EVENT_LOST)
		n->lost++;
	else
		n->changed++;
	snprintf(n->last, sizeof(n->last), "%s", detail ? detail : "");
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
}

/* Wait until *@counter exceeds @before; false after 10 s. */
static bool wait_note(int *counter, int before)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&N.lock);
	while (*counter <= before &&
	       pthread_cond_timedwait(&N.cond, &N.lock, &until) == 0)
		;
	ok = *counter > before;
	pthread_mutex_unlock(&N.lock);
	return ok;
}

static int ds_open(vsm_backend_ds **out, const char *pool, const char *connect, bool notify)
{
	vsm_backend_open_args args = { VSM_BACKEND_OPEN_ARGS_VERSION, "t", NULL, NULL, NULL, 0 };
	char uri[512];

	if (notify) {
		args.notify = on_notify;
		args.notify_cookie = &N;
	}
	snprintf(uri, sizeof(uri), "libvirt:///%s?connect=%s", pool, connect);
	return O->open(out, uri, &args);
}

static char *vol_xml(const char *pool, const char *vol)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(tc, pool);
	virStorageVolPtr v = p ? virStorageVolLookupByName(p, vol) : NULL;
	char *xml = v ? virStorageVolGetXMLDesc(v, 0) : NULL;

	if (v)
		virStorageVolFree(v);
	if (p)
		virStoragePoolFree(p);
	return xml;
}

static bool vol_exists(const char *pool, const char *vol)
{
	char *x = vol_xml(pool, vol);

	free(x);
	virResetLastError();
	return x != NULL;
}

static int pool_vol_count(const char *pool)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(tc, pool);
	int n = p ? virStoragePoolNumOfVolumes(p) : -1;

	if (p)
		virStoragePoolFree(p);
	return n;
}

/* A transient pool of the test driver; @type "dir" gets @path. */
static void test_pool(const char *name, const char *type, const char *path)
{
	char xml[1024];
	virStoragePoolPtr p;

	if (!strcmp(type, "dir"))
		snprintf(xml, sizeof(xml), "<pool type='dir'><name>%s</name><target><path>%s"
			 "</path></target></pool>", name, path);
	else if (!strcmp(type, "logical"))
		snprintf(xml, sizeof(xml), "<pool type='logical'><name>%s</name><source><name>"
			 "%s</name><format type='lvm2'/></source><target><path>/dev/%s</path>"
			 "</target></pool>", name, name, name);
	else
		snprintf(xml, sizeof(xml), "<pool type='%s'><name>%s</name><source><name>%s"
			 "</name><host name='127.0.0.1'/></source></pool>", type, name, name);
	p = virStoragePoolCreateXML(tc, xml, 0);
	ck_assert_msg(p != NULL, "cannot create test pool: %s", virGetLastErrorMessage());
	virStoragePoolFree(p);
}

static void setup(void)
{
	virSetErrorFunc(NULL, quiet);
	tc = virConnectOpen(getenv("LV_CONNECT") ? getenv("LV_CONNECT") : TEST_URI);
	ck_assert_msg(tc != NULL, "cannot connect: %s", virGetLastErrorMessage());
	snprintf(tmpdir, sizeof(tmpdir), "%s/vsm-lvt.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	pthread_mutex_lock(&N.lock);
	N.changed = N.lost = 0;
	N.last[0] = '\0';
	pthread_mutex_unlock(&N.lock);
}

static void teardown(void)
{
	if (tc)
		virConnectClose(tc);
	tc = NULL;
	rm_rf(tmpdir);
}

/* --- test driver: URIs and opening --- */

START_TEST(uri_errors)
{
	static const char *bad[] = {
		"libvirt:///", "libvirt://host/pool", "libvirt:///pool?foo=bar",
		"libvirt:///pool?connect=", "libvirt:///a/b", "file:///x",
	};
	vsm_backend_ds *ds = NULL;
	char *pool, *connect;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vsm_backend_open_args args = { VSM_BACKEND_OPEN_ARGS_VERSION, "t", NULL, NULL,
					       NULL, 0 };

		ck_assert_rc(O->open(&ds, bad[i], &args), -VSM_EINVAL);
	}
	ck_assert_rc(lv_uri_parse("libvirt:///p%20q", &pool, &connect), 0);
	ck_assert_str_eq(pool, "p q");
	ck_assert_str_eq(connect, "qemu:///system");
	free(pool);
	free(connect);
	/* The connection URI passes through untouched, queries and all. */
	ck_assert_rc(lv_uri_parse("libvirt:///p?connect=storage:///system?socket=/x/y&z=1",
				  &pool, &connect), 0);
	ck_assert_str_eq(pool, "p");
	ck_assert_str_eq(connect, "storage:///system?socket=/x/y&z=1");
	free(pool);
	free(connect);
}
END_TEST

START_TEST(open_errors)
{
	vsm_backend_ds *ds = NULL;

	ck_assert_rc(ds_open(&ds, "nosuchpool", TEST_URI, false), -VSM_ENOTFOUND);
	ck_assert_msg_has("pool 'nosuchpool'");
	ck_assert_msg_has("no storage pool with matching name"); /* libvirt's words */
	ck_assert(ds_open(&ds, "p", "bogus:///nowhere", false) < 0);
	ck_assert_msg_has("cannot connect to 'bogus:///nowhere'");
}
END_TEST

START_TEST(capacity)
{
	vsm_backend_ds *ds;
	uint64_t total = 0, avail = 0;

	ck_assert_rc(ds_open(&ds, "default-pool", TEST_URI, false), 0);
	ck_assert_rc(O->capacity(ds, &total, &avail), 0);
	ck_assert_uint_eq(total, UINT64_C(107374182400)); /* the test driver's 100 GiB */
	ck_assert_uint_le(avail, total);
	O->close(ds);
}
END_TEST

/* --- test driver: volumes --- */

static vsm_backend_device_spec spec(const char *name, uint64_t size, const char *format,
				    const char *backing, const char *backing_format)
{
	vsm_backend_device_spec s = { VSM_BACKEND_DEVICE_SPEC_VERSION, name, size, format,
				      backing, backing_format, VSM_BACKEND_DEVICE_THIN };
	return s;
}

START_TEST(volumes)
{
	vsm_backend_device_spec s;
	vsm_backend_ds *ds;
	char key[VSM_BACKEND_KEY_MAX], *xml;
	unsigned int fl = 99;

	ck_assert_rc(ds_open(&ds, "default-pool", TEST_URI, false), 0);
	s = spec("t-base.raw", MiB, "raw", NULL, NULL);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	ck_assert_str_eq(key, "t-base.raw");
	ck_assert_uint_eq(fl, 0);
	xml = vol_xml("default-pool", "t-base.raw");
	ck_assert_ptr_nonnull(xml);
	ck_assert_ptr_nonnull(strstr(xml, "<capacity unit='bytes'>1048576</capacity>"));
	ck_assert_ptr_nonnull(strstr(xml, "<format type='raw'/>"));
	free(xml);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), -VSM_EEXISTS);

	s = spec("t-over.qcow2", 2 * MiB, "qcow2", "t-base.raw", "raw");
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	ck_assert_uint_eq(fl, VSM_BACKEND_CREATED_FORMATTED);
	xml = vol_xml("default-pool", "t-over.qcow2");
	ck_assert_ptr_nonnull(xml);
	ck_assert_ptr_nonnull(strstr(xml, "<format type='qcow2'/>"));
	ck_assert_ptr_nonnull(strstr(xml, "<backingStore>"));
	/* relative: the key the core reads back from the qcow2 header */
	ck_assert_ptr_nonnull(strstr(xml, "<path>t-base.raw</path>"));
	free(xml);

	/* bad requests change nothing */
	s = spec("t-bad.raw", MiB, "raw", "t-base.raw", "raw");
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), -VSM_EINVAL);
	s = spec("t-bad.qcow2", MiB, "qcow2", "nosuch", "raw");
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), -VSM_ENOTFOUND);
	ck_assert_msg_has("volume 'nosuch'");
	s = spec("../escape", MiB, "raw", NULL, NULL);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), -VSM_EINVAL);
	s = spec(VSM_LV_META_VOLUME, MiB, "raw", NULL, NULL);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), -VSM_EINVAL);
	s = spec("t-fmt", MiB, "vmdk", NULL, NULL);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), -VSM_EINVAL);
	ck_assert(!vol_exists("default-pool", "t-bad.raw"));
	ck_assert(!vol_exists("default-pool", "t-bad.qcow2"));

	/* resize: the test driver cannot, and says so through us */
	ck_assert_rc(O->device_resize(ds, "t-base.raw", MiB, 0), 0);
	ck_assert_rc(O->device_resize(ds, "t-base.raw", MiB / 2, 0), -VSM_EINVAL);
	ck_assert_msg_has("shrinking");
	ck_assert_rc(O->device_resize(ds, "t-base.raw", 4 * MiB, 0), -VSM_ENOTSUP);
	ck_assert_msg_has("cannot resize volume 't-base.raw'");
	ck_assert_msg_has("virStorageVolResize");
	ck_assert_rc(O->device_resize(ds, "nosuch", MiB, 0), -VSM_ENOTFOUND);

	ck_assert_rc(O->device_delete(ds, "t-over.qcow2", 0), 0);
	ck_assert_rc(O->device_delete(ds, "t-base.raw", 0), 0);
	ck_assert(!vol_exists("default-pool", "t-base.raw"));
	ck_assert_rc(O->device_delete(ds, "t-base.raw", 0), -VSM_ENOTFOUND);
	ck_assert_msg_has("no storage vol with matching name");
	ck_assert_rc(O->device_delete(ds, "", 0), -VSM_EINVAL);
	O->close(ds);
}
END_TEST

/* device_list: every volume but the metadata volume and names that are
 * no keys, with its capacity. */
typedef struct {
	char names[8][64];
	uint64_t sizes[8];
	int64_t mtimes[8];
	int n;
} seen_list;

static int collect(const vsm_backend_device_info *info, void *payload)
{
	seen_list *l = payload;

	ck_assert_int_eq(info->version, VSM_BACKEND_DEVICE_INFO_VERSION);
	ck_assert_ptr_null(info->name); /* keys are the names */
	ck_assert_int_lt(l->n, 8);
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", info->key);
	l->sizes[l->n] = info->size;
	l->mtimes[l->n] = info->mtime;
	l->n++;
	return 0;
}

static int stop_at_first(const vsm_backend_device_info *info, void *payload)
{
	(void)info;
	(*(int *)payload)++;
	return 42;
}

static int seen_index(const seen_list *l, const char *name)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->names[i], name))
			return i;
	return -1;
}

START_TEST(device_list)
{
	vsm_backend_device_spec s;
	vsm_backend_ds *ds;
	char key[VSM_BACKEND_KEY_MAX], dir[300], xml[300];
	unsigned int fl;
	seen_list l = { .n = 0 };
	virStoragePoolPtr p;
	virStorageVolPtr v;
	int i, calls = 0;

	snprintf(dir, sizeof(dir), "%s", tmpdir);
	test_pool("vsmlist", "dir", dir);
	ck_assert_rc(ds_open(&ds, "vsmlist", TEST_URI, false), 0);
	ck_assert_rc(O->device_list(ds, collect, &l), 0);
	ck_assert_int_eq(l.n, 0);
	s = spec("a.raw", MiB, "raw", NULL, NULL);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	s = spec("b.qcow2", 3 * MiB, "qcow2", NULL, NULL);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	/* The metadata volume, and a volume someone else made with a name no
	 * key can have. */
	p = virStoragePoolLookupByName(tc, "vsmlist");
	ck_assert_ptr_nonnull(p);
	for (i = 0; i < 2; i++) {
		snprintf(xml, sizeof(xml), "<volume><name>%s</name><capacity>1024</capacity>"
			 "</volume>", i ? "has space" : VSM_LV_META_VOLUME);
		v = virStorageVolCreateXML(p, xml, 0);
		ck_assert_msg(v != NULL, "%s", virGetLastErrorMessage());
		virStorageVolFree(v);
	}
	virStoragePoolFree(p);
	ck_assert_int_eq(pool_vol_count("vsmlist"), 4);

	ck_assert_rc(O->device_list(ds, collect, &l), 0);
	ck_assert_int_eq(l.n, 2);
	ck_assert_int_ge(seen_index(&l, "a.raw"), 0);
	ck_assert_int_ge(seen_index(&l, "b.qcow2"), 0);
	ck_assert_int_lt(seen_index(&l, VSM_LV_META_VOLUME), 0);
	ck_assert_uint_eq(l.sizes[seen_index(&l, "a.raw")], MiB);
	ck_assert_uint_eq(l.sizes[seen_index(&l, "b.qcow2")], 3 * MiB);
	/* The callback's answer stops the listing and comes back. */
	ck_assert_int_eq(O->device_list(ds, stop_at_first, &calls), 42);
	ck_assert_int_eq(calls, 1);
	O->close(ds);
}
END_TEST

START_TEST(meta_and_block_io_errors)
{
	vsm_bdev_io *b = NULL;
	vsm_backend_device_spec s;
	vsm_backend_ds *ds;
	char key[VSM_BACKEND_KEY_MAX];
	unsigned int fl;

	ck_assert_rc(ds_open(&ds, "default-pool", TEST_URI, false), 0);
	ck_assert_rc(O->meta_open(&b, ds, MiB, 0), -VSM_ENOTFOUND);
	ck_assert_msg_has("has no metadata");
	/* The test driver's default pool lives at /default-pool, which is
	 * not on this machine: block I/O is refused, and the volume made
	 * for it is removed again. */
	ck_assert_rc(O->meta_open(&b, ds, MiB, VSM_BDEV_CREATE), -VSM_ENOTSUP);
	ck_assert_msg_has("not present on this machine");
	ck_assert(!vol_exists("default-pool", VSM_LV_META_VOLUME));
	s = spec("t-io.raw", MiB, "raw", NULL, NULL);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	ck_assert_rc(O->device_open(&b, ds, key, 0), -VSM_ENOTSUP);
	O->close(ds);

	/* A pool type without local paths: everything but block I/O works. */
	test_pool("rbdp", "rbd", NULL);
	ck_assert_rc(ds_open(&ds, "rbdp", TEST_URI, false), 0);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	ck_assert_rc(O->device_open(&b, ds, key, 0), -VSM_ENOTSUP);
	ck_assert_msg_has("block I/O is not supported on pool type rbd");
	ck_assert_rc(O->meta_open(&b, ds, MiB, VSM_BDEV_CREATE), -VSM_ENOTSUP);
	ck_assert_msg_has("block I/O is not supported on pool type rbd");
	ck_assert(!vol_exists("rbdp", VSM_LV_META_VOLUME));
	ck_assert_rc(O->device_delete(ds, key, 0), 0);
	O->close(ds);
}
END_TEST

/* --- test driver: deploy --- */

static vsm_backend_deploy_req req_for(const char *format, const char *const *keys,
				      const char *const *formats, size_t n)
{
	vsm_backend_deploy_req r;

	memset(&r, 0, sizeof(r));
	r.version = VSM_BACKEND_DEPLOY_REQ_VERSION;
	r.host = "h1";
	r.format = format;
	r.target = "vdb";
	r.bus = "virtio";
	r.chain_keys = keys;
	r.chain_formats = formats;
	r.chain_len = n;
	return r;
}

static vsm_locator *locator_new(void)
{
	return calloc(1, sizeof(struct vsm_locator));
}

START_TEST(deploy_xml)
{
	static const char *const keys[] = { "d-base.raw" }, *const fmts[] = { "raw" };
	vsm_backend_device_spec s;
	vsm_backend_deploy_req r;
	vsm_backend_ds *ds;
	vsm_locator *loc = locator_new();
	char key[VSM_BACKEND_KEY_MAX];
	const char *x;
	unsigned int fl;

	ck_assert_rc(ds_open(&ds, "default-pool", TEST_URI, false), 0);
	s = spec("d-base.raw", MiB, "raw", NULL, NULL);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	s = spec("d-over.qcow2", MiB, "qcow2", "d-base.raw", "raw");
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);

	r = req_for("qcow2", keys, fmts, 1);
	ck_assert_rc(O->device_deploy(ds, "d-over.qcow2", &r, loc), 0);
	ck_assert_str_eq(vsm_locator_uri(loc), "file:///default-pool/d-over.qcow2");
	ck_assert_str_eq(vsm_locator_path(loc), "/default-pool/d-over.qcow2");
	x = vsm_locator_disk_xml(loc);
	ck_assert_ptr_nonnull(strstr(x, "<disk type='file' device='disk'>"));
	ck_assert_ptr_nonnull(strstr(x, "<driver name='qemu' type='qcow2'/>"));
	ck_assert_ptr_nonnull(strstr(x, "<source file='/default-pool/d-over.qcow2'/>"));
	ck_assert_ptr_nonnull(strstr(x, "<backingStore type='file'>"));
	ck_assert_ptr_nonnull(strstr(x, "<format type='raw'/>"));
	ck_assert_ptr_nonnull(strstr(x, "<source file='/default-pool/d-base.raw'/>"));
	ck_assert_ptr_nonnull(strstr(x, "<backingStore/>"));
	ck_assert_ptr_nonnull(strstr(x, "<target dev='vdb' bus='virtio'/>"));
	/* Not hot-attached anywhere: undeploy finds it in no domain. */
	ck_assert_rc(O->device_undeploy(ds, "d-over.qcow2", &r), 0);

	/* Two backing layers nest, and the result is well-formed XML. */
	{
		static const char *const k2[] = { "d-over.qcow2", "d-base.raw" },
				  *const f2[] = { "qcow2", "raw" };
		vsm_backend_deploy_req r2 = req_for("qcow2", k2, f2, 2);
		char *type;

		s = spec("d-top.qcow2", MiB, "qcow2", "d-over.qcow2", "qcow2");
		ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
		ck_assert_rc(O->device_deploy(ds, key, &r2, loc), 0);
		x = vsm_locator_disk_xml(loc);
		ck_assert_ptr_nonnull(strstr(x, "  <backingStore type='file'>\n"
					       "    <format type='qcow2'/>\n"
					       "    <source file='/default-pool/d-over.qcow2'/>\n"
					       "    <backingStore type='file'>\n"
					       "      <format type='raw'/>\n"
					       "      <source file='/default-pool/d-base.raw'/>\n"
					       "      <backingStore/>\n"
					       "    </backingStore>\n"
					       "  </backingStore>\n"));
		type = lv_xml_root_attr(x, "type");
		ck_assert_ptr_nonnull(type);
		ck_assert_str_eq(type, "file");
		free(type);
	}

	/* Hot-attach on the test driver: the domain must exist, and the
	 * driver's refusal comes back with libvirt's words. */
	r.domain = "nosuchdomain";
	ck_assert_rc(O->device_deploy(ds, "d-over.qcow2", &r, loc), -VSM_ENOTFOUND);
	ck_assert_msg_has("domain 'nosuchdomain'");
	ck_assert_msg_has("Domain not found"); /* libvirt's words */
	r.domain = "test";
	r.host_uri = TEST_URI;
	ck_assert_rc(O->device_deploy(ds, "d-over.qcow2", &r, loc), -VSM_ENOTSUP);
	ck_assert_msg_has("cannot hot-attach volume 'd-over.qcow2' to domain 'test'");
	ck_assert_msg_has("virDomainAttachDeviceFlags");
	r.domain = NULL;
	r.host_uri = "bogus:///nowhere";
	ck_assert(O->device_deploy(ds, "d-over.qcow2", &r, loc) == 0); /* no domain: no connection */
	r.domain = "test";
	ck_assert(O->device_deploy(ds, "d-over.qcow2", &r, loc) < 0);
	ck_assert_msg_has("host 'h1': cannot connect to 'bogus:///nowhere'");
	ck_assert_rc(O->device_deploy(ds, "nosuch", &r, loc), -VSM_ENOTFOUND);
	vsm_locator_free(loc);
	O->close(ds);
}
END_TEST

START_TEST(deploy_network_pool)
{
	vsm_backend_device_spec s = spec("n1", MiB, "raw", NULL, NULL);
	vsm_backend_deploy_req r = req_for("raw", NULL, NULL, 0);
	vsm_backend_ds *ds;
	vsm_locator *loc = locator_new();
	char key[VSM_BACKEND_KEY_MAX];
	unsigned int fl;

	test_pool("rbdp", "rbd", NULL);
	ck_assert_rc(ds_open(&ds, "rbdp", TEST_URI, false), 0);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	ck_assert_rc(O->device_deploy(ds, key, &r, loc), 0);
	ck_assert_str_eq(vsm_locator_uri(loc), "libvirt:///rbdp/n1?connect=" TEST_URI);
	ck_assert_ptr_null(vsm_locator_path(loc));
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "<disk type='volume' device='disk'>"));
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "<source pool='rbdp' volume='n1'/>"));
	ck_assert_rc(O->device_undeploy(ds, key, &r), 0);
	/* A volume deleted behind our back does not block undeploy. */
	ck_assert_rc(O->device_delete(ds, key, 0), 0);
	ck_assert_rc(O->device_undeploy(ds, key, &r), 0);
	vsm_locator_free(loc);
	O->close(ds);
}
END_TEST

START_TEST(deploy_block_pool)
{
	vsm_backend_device_spec s = spec("b1", MiB, "raw", NULL, NULL);
	vsm_backend_deploy_req r = req_for("raw", NULL, NULL, 0);
	vsm_backend_ds *ds;
	vsm_bdev_io *b;
	vsm_locator *loc = locator_new();
	char key[VSM_BACKEND_KEY_MAX];
	unsigned int fl;

	test_pool("vsmvg", "logical", NULL);
	ck_assert_rc(ds_open(&ds, "vsmvg", TEST_URI, false), 0);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	r.target = "sdb";
	r.bus = "scsi";
	ck_assert_rc(O->device_deploy(ds, key, &r, loc), 0);
	ck_assert_str_eq(vsm_locator_uri(loc), "file:///dev/vsmvg/b1");
	ck_assert_str_eq(vsm_locator_path(loc), "/dev/vsmvg/b1");
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "<disk type='block' device='disk'>"));
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "<source dev='/dev/vsmvg/b1'/>"));
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "<target dev='sdb' bus='scsi'/>"));
	/* The volume group is simulated: its device node is not here. */
	ck_assert_rc(O->device_open(&b, ds, key, 0), -VSM_ENOTSUP);
	ck_assert_msg_has("not present on this machine");
	ck_assert_rc(O->device_delete(ds, key, 0), 0);
	vsm_locator_free(loc);
	O->close(ds);
}
END_TEST

/* The test driver's "test" domain runs with /guest/diskimage1 as vda: a
 * pool over /guest makes that a volume of ours, so undeploy's search of
 * the host's domains must find it and ask libvirt to detach it. */
START_TEST(undeploy_finds_domain_disk)
{
	vsm_backend_device_spec s = spec("diskimage1", MiB, "raw", NULL, NULL);
	vsm_backend_deploy_req r = req_for("raw", NULL, NULL, 0);
	vsm_backend_ds *ds;
	char key[VSM_BACKEND_KEY_MAX];
	unsigned int fl;

	test_pool("guest", "dir", "/guest");
	ck_assert_rc(ds_open(&ds, "guest", TEST_URI, false), 0);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	ck_assert_rc(O->device_undeploy(ds, key, &r), -VSM_ENOTSUP);
	ck_assert_msg_has("cannot detach volume 'diskimage1' from domain 'test'");
	ck_assert_msg_has("virDomainDetachDeviceFlags");
	/* Naming a domain that is gone counts as detached. */
	r.domain = "gone";
	ck_assert_rc(O->device_undeploy(ds, key, &r), 0);
	O->close(ds);
}
END_TEST

/* --- test driver: hosts and events --- */

static int pool_active(const char *name)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(tc, name);
	int a = p ? virStoragePoolIsActive(p) : -1;

	if (p)
		virStoragePoolFree(p);
	return a;
}

static void pool_do(const char *name, int (*fn)(virStoragePoolPtr))
{
	virStoragePoolPtr p = virStoragePoolLookupByName(tc, name);

	ck_assert_ptr_nonnull(p);
	ck_assert_msg(fn(p) == 0, "pool operation failed: %s", virGetLastErrorMessage());
	virStoragePoolFree(p);
}

static int refresh(virStoragePoolPtr p) { return virStoragePoolRefresh(p, 0); }
static int start(virStoragePoolPtr p) { return virStoragePoolCreate(p, 0); }

START_TEST(host_attach)
{
	vsm_backend_ds *ds;

	ck_assert_rc(ds_open(&ds, "default-pool", TEST_URI, false), 0);
	ck_assert_rc(O->host_attach(ds, "h1", NULL, 0), 0);
	ck_assert_rc(O->host_attach(ds, "h1", TEST_URI, 0), 0);
	pool_do("default-pool", virStoragePoolDestroy);
	ck_assert_int_eq(pool_active("default-pool"), 0);
	ck_assert_rc(O->host_attach(ds, "h1", NULL, 0), 0);
	ck_assert_int_eq(pool_active("default-pool"), 1);
	ck_assert(O->host_attach(ds, "h2", "bogus:///nowhere", 0) < 0);
	ck_assert_msg_has("host 'h2': cannot connect to 'bogus:///nowhere'");
	ck_assert_rc(O->host_detach(ds, "h1", NULL, 0), 0);
	O->close(ds);

	/* Opening starts a stopped pool too. */
	pool_do("default-pool", virStoragePoolDestroy);
	ck_assert_rc(ds_open(&ds, "default-pool", TEST_URI, false), 0);
	ck_assert_int_eq(pool_active("default-pool"), 1);
	O->close(ds);
}
END_TEST

/* A host whose hypervisor is another libvirt (a second test-driver
 * instance from a config file) gets its own connection, and the
 * datastore's pool there when it has none. */
START_TEST(host_other_connection)
{
	vsm_backend_deploy_req r = req_for("raw", NULL, NULL, 0);
	vsm_backend_device_spec s = spec("o1", MiB, "raw", NULL, NULL);
	char empty[400], other[400], uri_e[420], uri_o[420], key[VSM_BACKEND_KEY_MAX];
	vsm_locator *loc = locator_new();
	seen_list l = { .n = 0 };
	vsm_backend_ds *ds;
	unsigned int fl;
	int nvol;
	FILE *f;

	snprintf(empty, sizeof(empty), "%s/empty.xml", tmpdir);
	snprintf(other, sizeof(other), "%s/other.xml", tmpdir);
	ck_assert_ptr_nonnull(f = fopen(empty, "w"));
	fputs("<node/>\n", f);
	fclose(f);
	ck_assert_ptr_nonnull(f = fopen(other, "w"));
	fputs("<node><pool type='dir'><name>default-pool</name><target><path>/elsewhere"
	      "</path></target></pool></node>\n", f);
	fclose(f);
	snprintf(uri_e, sizeof(uri_e), "test://%s", empty);
	snprintf(uri_o, sizeof(uri_o), "test://%s", other);

	ck_assert_rc(ds_open(&ds, "default-pool", TEST_URI, false), 0);
	/* A host without the pool gets it (transient; this test driver
	 * instance forgets it with its connection) and each attachment is
	 * recorded in the datastore as a marker volume, no device. */
	nvol = pool_vol_count("default-pool");
	ck_assert_rc(O->host_attach(ds, "h3", uri_e, 0), 0);
	ck_assert_rc(O->host_attach(ds, "h3", uri_e, 0), 0);
	ck_assert_int_eq(pool_vol_count("default-pool"), nvol + 2);
	ck_assert_rc(O->device_list(ds, collect, &l), 0);
	ck_assert_int_eq(l.n, 0);
	ck_assert_rc(O->host_detach(ds, "h3", uri_e, 0), 0);
	ck_assert_rc(O->host_detach(ds, "h3", uri_e, 0), 0);
	ck_assert_int_eq(pool_vol_count("default-pool"), nvol);
	/* A pool the host has already: used, never recorded. */
	ck_assert_rc(O->host_attach(ds, "h4", uri_o, 0), 0);
	ck_assert_int_eq(pool_vol_count("default-pool"), nvol);

	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	r.host = "h4";
	r.host_uri = uri_o;
	r.domain = "test"; /* runs on test:///default, not on h4 */
	ck_assert_rc(O->device_deploy(ds, key, &r, loc), -VSM_ENOTFOUND);
	ck_assert_msg_has("host 'h4': domain 'test'");
	r.domain = NULL;
	ck_assert_rc(O->device_undeploy(ds, key, &r), 0);
	ck_assert_rc(O->device_delete(ds, key, 0), 0);
	vsm_locator_free(loc);
	O->close(ds);
}
END_TEST

START_TEST(events)
{
	vsm_backend_ds *ds, *ds2;
	int before;

	ck_assert_rc(ds_open(&ds, "default-pool", TEST_URI, true), 0);
	before = N.changed;
	pool_do("default-pool", refresh);
	ck_assert_msg(wait_note(&N.changed, before), "no event for a pool refresh");
	ck_assert_str_eq(N.last, "libvirt pool 'default-pool' refreshed");
	before = N.lost;
	pool_do("default-pool", virStoragePoolDestroy);
	ck_assert_msg(wait_note(&N.lost, before), "no event for a stopped pool");
	ck_assert_str_eq(N.last, "libvirt pool 'default-pool' stopped");
	before = N.changed;
	pool_do("default-pool", start);
	ck_assert_msg(wait_note(&N.changed, before), "no event for a started pool");
	ck_assert_str_eq(N.last, "libvirt pool 'default-pool' started");

	/* A second datastore keeps the loop going after the first closes,
	 * and the closed one is never called again. */
	ck_assert_rc(ds_open(&ds2, "default-pool", TEST_URI, false), 0);
	O->close(ds);
	before = N.changed;
	pool_do("default-pool", refresh);
	usleep(300 * 1000);
	ck_assert_int_eq(N.changed, before);
	O->close(ds2);

	/* The loop thread starts again for the next datastore. */
	ck_assert_rc(ds_open(&ds, "default-pool", TEST_URI, true), 0);
	before = N.changed;
	pool_do("default-pool", refresh);
	ck_assert_msg(wait_note(&N.changed, before), "no event after the loop restarted");
	O->close(ds);
}
END_TEST

/* --- test driver: the container API through a file-making wrapper --- */

static struct vsm_datastore_ops wrap;

/* Create the file a real dir pool would have made for @vol. */
static int materialise(vsm_backend_ds *ds, const char *vol)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(tc, ds->pool_name);
	virStorageVolPtr v = p ? virStorageVolLookupByName(p, vol) : NULL;
	virStorageVolInfo info;
	char *path = v ? virStorageVolGetPath(v) : NULL;
	int fd, rc = -1;

	if (path && virStorageVolGetInfo(v, &info) == 0 &&
	    (fd = open(path, O_RDWR | O_CREAT, 0644)) >= 0) {
		rc = ftruncate(fd, (off_t)info.capacity);
		close(fd);
	}
	free(path);
	if (v)
		virStorageVolFree(v);
	if (p)
		virStoragePoolFree(p);
	return rc;
}

static int w_open(vsm_backend_ds **out, const char *uri, const vsm_backend_open_args *a)
{
	char real[600];

	snprintf(real, sizeof(real), "libvirt%s", uri + strlen("lvtest"));
	return vsm__libvirt_backend_ops.open(out, real, a);
}

static int w_meta_open(vsm_bdev_io **out, vsm_backend_ds *ds, uint64_t min,
		       unsigned int flags)
{
	int rc = vsm__libvirt_backend_ops.meta_open(out, ds, min, flags);

	/* The backend removed the volume it could not open; make it again,
	 * with its file this time. */
	if (rc == -VSM_ENOTSUP && (flags & VSM_BDEV_CREATE)) {
		virStoragePoolPtr p = virStoragePoolLookupByName(tc, ds->pool_name);
		char xml[300];

		snprintf(xml, sizeof(xml), "<volume><name>%s</name><capacity unit='bytes'>%llu"
			 "</capacity></volume>", VSM_LV_META_VOLUME, (unsigned long long)min);
		if (p) {
			virStorageVolPtr v = virStorageVolCreateXML(p, xml, 0);

			if (v)
				virStorageVolFree(v);
			virStoragePoolFree(p);
		}
	}
	if (rc == -VSM_ENOTSUP && materialise(ds, VSM_LV_META_VOLUME) == 0)
		rc = vsm__libvirt_backend_ops.meta_open(out, ds, min, flags);
	return rc;
}

static int w_create(vsm_backend_ds *ds, const vsm_backend_device_spec *s, char *key,
		    size_t key_size, unsigned int *fl)
{
	int rc = vsm__libvirt_backend_ops.device_create(ds, s, key, key_size, fl);

	if (rc == 0 && materialise(ds, key) < 0)
		rc = vsm_error_set(VSM_EIO, "test: cannot materialise %s", key);
	return rc;
}

static int w_delete(vsm_backend_ds *ds, const char *key, unsigned int flags)
{
	char path[600];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, key);
	if ((rc = vsm__libvirt_backend_ops.device_delete(ds, key, flags)) == 0)
		unlink(path);
	return rc;
}

static void wrap_init(void)
{
	wrap = vsm__libvirt_backend_ops;
	wrap.scheme = "lvtest";
	wrap.open = w_open;
	wrap.meta_open = w_meta_open;
	wrap.device_create = w_create;
	wrap.device_delete = w_delete;
}

/* Container "web" with one 8 MiB raw device "root". */
static int tu_create_one(vsm_container **out, vsm_ctx *ctx)
{
	vsm_device_spec root = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *devs[] = { &root };
	vsm_container_opts co = VSM_CONTAINER_OPTS_INIT;

	root.name = "root";
	root.size = 8 * MiB;
	co.devices = devs;
	co.n_devices = 1;
	co.flags = VSM_CONTAINER_CREATE_THIN;
	return vsm_container_create(out, ctx, "lv1", "web", &co);
}

typedef struct {
	pthread_mutex_t lock;
	int changed;
	bool right_ds; /* the last one named our datastore */
} api_events;

static void on_event(const vsm_event *ev, void *payload)
{
	api_events *a = payload;
	const char *ds = vsm_event_datastore(ev);

	pthread_mutex_lock(&a->lock);
	if (vsm_event_type_of(ev) == VSM_EVENT_DATASTORE_CHANGED) {
		a->changed++;
		a->right_ds = ds && !strcmp(ds, "lv1");
	}
	pthread_mutex_unlock(&a->lock);
}

static vsm_ctx *ctx_new(const char *sub)
{
	vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
	char dir[400];
	vsm_ctx *ctx = NULL;

	snprintf(dir, sizeof(dir), "%s/%s", tmpdir, sub);
	o.state_dir = dir;
	ck_assert_rc(vsm_ctx_open(&ctx, &o), 0);
	ck_assert_rc(vsm_datastore_ops_register(ctx, &wrap, NULL), 0);
	return ctx;
}

START_TEST(container_api)
{
	vsm_device_spec root = VSM_DEVICE_SPEC_INIT, data = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *devs[] = { &root, &data };
	vsm_container_opts co = VSM_CONTAINER_OPTS_INIT;
	vsm_host_opts ho = VSM_HOST_OPTS_INIT;
	vsm_deploy_opts dopts = VSM_DEPLOY_OPTS_INIT;
	api_events ev = { PTHREAD_MUTEX_INITIALIZER, 0, false };
	char pooldir[300], uri[400];
	vsm_container *c = NULL, *c2 = NULL;
	vsm_locator *loc = NULL;
	vsm_ctx *ctx, *ctx2;
	uint64_t total = 0, avail = 0;
	int i, seen;

	wrap_init();
	snprintf(pooldir, sizeof(pooldir), "%s", tmpdir);
	test_pool("vsmtp", "dir", pooldir);
	snprintf(uri, sizeof(uri), "lvtest:///vsmtp?connect=%s", TEST_URI);

	ctx = ctx_new("state1");
	ck_assert_rc(vsm_event_register(ctx, on_event, &ev, NULL), 0);
	ck_assert_rc(vsm_datastore_add(ctx, "lv1", uri, 0), 0);
	ck_assert(vol_exists("vsmtp", VSM_LV_META_VOLUME));
	ck_assert_rc(vsm_datastore_capacity(ctx, "lv1", &total, &avail), 0);
	ck_assert_uint_gt(total, 0);
	ho.hypervisor_uri = TEST_URI;
	ck_assert_rc(vsm_host_add(ctx, "h1", &ho), 0);
	ck_assert_rc(vsm_host_link(ctx, "h1", "lv1", 0), 0);

	root.name = "root";
	root.size = 8 * MiB;
	data.name = "data";
	data.size = 4 * MiB;
	co.devices = devs;
	co.n_devices = 2;
	co.flags = VSM_CONTAINER_CREATE_THIN;
	ck_assert_rc(vsm_container_create(&c, ctx, "lv1", "web", &co), 0);
	ck_assert_int_eq(pool_vol_count("vsmtp"), 4); /* meta, root, data, state */
	ck_assert(vol_exists("vsmtp", vsm_device_key(vsm_container_device_by_name(c, "data"))));

	ck_assert_rc(vsm_attach(c, "h1", 0), 0);
	ck_assert_rc(vsm_device_deploy(&loc, c, "data", &dopts), 0);
	ck_assert(strncmp(vsm_locator_uri(loc), "file://", 7) == 0);
	ck_assert(strncmp(vsm_locator_path(loc), tmpdir, strlen(tmpdir)) == 0);
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "<source file='"));
	ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "<driver name='qemu' type='raw'/>"));
	vsm_locator_free(loc);
	ck_assert_rc(vsm_device_undeploy(c, "data", 0), 0);
	ck_assert_rc(vsm_detach(c, 0), 0);

	/* The pool's refresh reaches the caller as datastore-changed. */
	pthread_mutex_lock(&ev.lock);
	seen = ev.changed;
	pthread_mutex_unlock(&ev.lock);
	pool_do("vsmtp", refresh);
	for (i = 0; i < 100; i++) {
		pthread_mutex_lock(&ev.lock);
		if (ev.changed > seen) {
			ck_assert(ev.right_ds);
			i = -1;
		}
		pthread_mutex_unlock(&ev.lock);
		if (i < 0)
			break;
		usleep(50 * 1000);
	}
	ck_assert_msg(i < 0, "no datastore-changed event for a pool refresh");

	/* A second context on another state directory rescans the pool. */
	ctx2 = ctx_new("state2");
	ck_assert_rc(vsm_datastore_add(ctx2, "lv1", uri, 0), 0);
	ck_assert_rc(vsm_container_lookup(&c2, ctx2, "lv1", "web"), 0);
	ck_assert_uint_eq(vsm_container_device_count(c2), 2);
	ck_assert_str_eq(vsm_device_key(vsm_container_device_by_name(c2, "root")),
			 vsm_device_key(vsm_container_device_by_name(c, "root")));
	ck_assert_rc(vsm_container_destroy(c2, 0), 0);
	ck_assert_int_eq(pool_vol_count("vsmtp"), 1);
	vsm_container_free(c2);
	vsm_ctx_free(ctx2);

	vsm_container_free(c);
	c = NULL;
	ck_assert_rc(vsm_container_lookup(&c, ctx, "lv1", "web"), -VSM_ENOTFOUND);
	vsm_ctx_free(ctx);
}
END_TEST

#define ORPHAN "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9-d0.raw"

/* vsm_datastore_check on a pool: an orphan volume made through the
 * backend with a name libvsm would give, next to a container's volumes
 * and a user's volume. The test driver keeps no timestamps, so ages are
 * unknown: kept under any grace, removed with none. */
START_TEST(orphans)
{
	vsm_check_opts o = VSM_CHECK_OPTS_INIT;
	vsm_check_report *r = NULL;
	vsm_backend_device_spec s;
	vsm_backend_ds *raw;
	vsm_container *c = NULL;
	char uri[400], key[VSM_BACKEND_KEY_MAX];
	unsigned int fl;
	vsm_ctx *ctx;
	const vsm_orphan *orph;

	wrap_init();
	test_pool("vsmtp", "dir", tmpdir);
	snprintf(uri, sizeof(uri), "lvtest:///vsmtp?connect=%s", TEST_URI);
	ctx = ctx_new("state1");
	ck_assert_rc(vsm_datastore_add(ctx, "lv1", uri, 0), 0);
	ck_assert_rc(tu_create_one(&c, ctx), 0);

	ck_assert_rc(ds_open(&raw, "vsmtp", TEST_URI, false), 0);
	s = spec(ORPHAN, MiB, "raw", NULL, NULL);
	ck_assert_rc(O->device_create(raw, &s, key, sizeof(key), &fl), 0);
	s = spec("golden.raw", MiB, "raw", NULL, NULL);
	ck_assert_rc(O->device_create(raw, &s, key, sizeof(key), &fl), 0);
	O->close(raw);

	ck_assert_rc(vsm_datastore_check(&r, ctx, "lv1", NULL), 0);
	ck_assert_uint_eq(vsm_check_report_devices(r), 4); /* root, state, orphan, golden */
	ck_assert_uint_eq(vsm_check_report_referenced(r), 2);
	ck_assert_uint_eq(vsm_check_report_foreign(r), 1);
	ck_assert_uint_eq(vsm_check_report_orphan_count(r), 1);
	orph = vsm_check_report_orphan(r, 0);
	ck_assert_str_eq(vsm_orphan_key(orph), ORPHAN);
	ck_assert_uint_eq(vsm_orphan_size(orph), MiB);
	ck_assert_int_eq(vsm_orphan_age(orph), -1);
	ck_assert_int_eq(vsm_orphan_state_of(orph), VSM_ORPHAN_YOUNG);
	vsm_check_report_free(r);

	o.flags = VSM_CHECK_REPAIR;
	ck_assert_rc(vsm_datastore_check(&r, ctx, "lv1", &o), 0);
	ck_assert_int_eq(vsm_orphan_state_of(vsm_check_report_orphan(r, 0)), VSM_ORPHAN_YOUNG);
	vsm_check_report_free(r);
	ck_assert(vol_exists("vsmtp", ORPHAN));

	o.grace_seconds = 0;
	ck_assert_rc(vsm_datastore_check(&r, ctx, "lv1", &o), 0);
	ck_assert_uint_eq(vsm_check_report_orphan_count(r), 1);
	ck_assert_int_eq(vsm_orphan_state_of(vsm_check_report_orphan(r, 0)), VSM_ORPHAN_REMOVED);
	ck_assert_uint_eq(vsm_check_report_remaining(r), 0);
	vsm_check_report_free(r);
	ck_assert(!vol_exists("vsmtp", ORPHAN));
	ck_assert(vol_exists("vsmtp", "golden.raw"));
	ck_assert(vol_exists("vsmtp", VSM_LV_META_VOLUME));
	ck_assert(vol_exists("vsmtp", vsm_device_key(vsm_container_device(c, 0))));
	ck_assert_int_eq(pool_vol_count("vsmtp"), 4); /* meta, root, state, golden */

	ck_assert_rc(vsm_container_destroy(c, 0), 0);
	vsm_container_free(c);
	vsm_ctx_free(ctx);
}
END_TEST

/* --- a real daemon (LV_REAL=1) --- */

static const char *real_uri(void) { return getenv("LV_CONNECT"); }
static const char *real_pool(void) { return getenv("LV_POOL"); }

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* The output of a command, malloc'd. */
static char *capture(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *capture(const char *fmt, ...)
{
	char cmd[2048], *buf = NULL;
	size_t size = 0, n;
	char chunk[4096];
	FILE *p, *out = open_memstream(&buf, &size);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_ptr_nonnull(out);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		fwrite(chunk, 1, n, out);
	pclose(p);
	fclose(out);
	return buf;
}

START_TEST(real_qcow2)
{
	vsm_backend_device_spec s;
	vsm_backend_ds *ds;
	vsm_bdev_io *b;
	char key[VSM_BACKEND_KEY_MAX], *out, *base_path, *over_path;
	uint8_t buf[4096], magic[4];
	unsigned int fl;

	ck_assert_rc(ds_open(&ds, real_pool(), real_uri(), false), 0);
	s = spec("r-base.raw", 16 * MiB, "raw", NULL, NULL);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	ck_assert_uint_eq(fl, 0);
	ck_assert_rc(O->device_open(&b, ds, key, 0), 0);
	memset(buf, 0xab, sizeof(buf));
	ck_assert_rc(b->ops->write(b, buf, sizeof(buf), 0, 0), 0);
	ck_assert_rc(b->ops->flush(b), 0);
	b->ops->close(b);

	s = spec("r-over.qcow2", 16 * MiB, "qcow2", "r-base.raw", "raw");
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	ck_assert_uint_eq(fl, VSM_BACKEND_CREATED_FORMATTED);
	ck_assert_rc(O->device_open(&b, ds, key, VSM_BDEV_RDONLY), 0);
	ck_assert_rc(b->ops->read(b, magic, 4, 0), 0);
	ck_assert(memcmp(magic, "QFI\xfb", 4) == 0);
	b->ops->close(b);

	out = capture("virsh -q -c '%s' vol-path --pool '%s' r-base.raw", real_uri(), real_pool());
	base_path = strndup(out, strcspn(out, "\n"));
	free(out);
	out = capture("virsh -q -c '%s' vol-path --pool '%s' r-over.qcow2", real_uri(), real_pool());
	over_path = strndup(out, strcspn(out, "\n"));
	free(out);

	ck_assert_int_eq(run("qemu-img check -q '%s'", over_path), 0);
	out = capture("qemu-img info --output=json '%s'", over_path);
	ck_assert_ptr_nonnull(strstr(out, "\"compat\": \"1.1\""));
	ck_assert_ptr_nonnull(strstr(out, "\"backing-filename-format\": \"raw\""));
	ck_assert_ptr_nonnull(strstr(out, base_path));
	free(out);
	out = capture("virsh -c '%s' vol-dumpxml --pool '%s' r-over.qcow2", real_uri(),
		      real_pool());
	/* The header names the base relative to the overlay: its key. */
	ck_assert_msg(strstr(out, "<backingStore>\n    <path>r-base.raw</path>\n"
				  "    <format type='raw'/>"),
		      "vol-dumpxml shows no backing chain:\n%s", out);
	free(out);

	/* libvirt resizes qcow2 through qemu-img: the virtual size moves. */
	ck_assert_rc(O->device_resize(ds, "r-over.qcow2", 32 * MiB, 0), 0);
	out = capture("qemu-img info --output=json '%s'", over_path);
	ck_assert_ptr_nonnull(strstr(out, "\"virtual-size\": 33554432"));
	free(out);
	ck_assert_int_eq(run("qemu-img check -q '%s'", over_path), 0);

	ck_assert_rc(O->device_delete(ds, "r-over.qcow2", 0), 0);
	ck_assert_rc(O->device_delete(ds, "r-base.raw", 0), 0);
	ck_assert(access(over_path, F_OK) < 0 && access(base_path, F_OK) < 0);
	free(base_path);
	free(over_path);
	O->close(ds);
}
END_TEST

START_TEST(real_block_io)
{
	vsm_backend_ds *ds;
	vsm_bdev_io *b;
	uint8_t a[512], z[512], r[512];
	uint64_t size = 0;

	ck_assert_rc(ds_open(&ds, real_pool(), real_uri(), false), 0);
	ck_assert_rc(O->meta_open(&b, ds, 2 * MiB, 0), -VSM_ENOTFOUND);
	ck_assert_rc(O->meta_open(&b, ds, 2 * MiB, VSM_BDEV_CREATE), 0);
	ck_assert_rc(b->ops->get_size(b, &size), 0);
	ck_assert_uint_ge(size, 2 * MiB);
	memset(z, 0, sizeof(z));
	memset(a, 0x5a, sizeof(a));
	ck_assert_rc(b->ops->compare_and_write(b, z, a, sizeof(a), 4096), 0);
	ck_assert_rc(b->ops->compare_and_write(b, z, a, sizeof(a), 4096), -VSM_EMISMATCH);
	ck_assert_rc(b->ops->read(b, r, sizeof(r), 4096), 0);
	ck_assert(memcmp(r, a, sizeof(a)) == 0);
	b->ops->close(b);
	/* Asking for more grows the existing metadata volume. */
	ck_assert_rc(O->meta_open(&b, ds, 4 * MiB, VSM_BDEV_CREATE), 0);
	ck_assert_rc(b->ops->get_size(b, &size), 0);
	ck_assert_uint_ge(size, 4 * MiB);
	ck_assert_rc(b->ops->read(b, r, sizeof(r), 4096), 0);
	ck_assert(memcmp(r, a, sizeof(a)) == 0);
	b->ops->close(b);
	O->close(ds);
}
END_TEST

static bool live_has(const char *domain, const char *what)
{
	virDomainPtr d = virDomainLookupByName(tc, domain);
	char *xml = d ? virDomainGetXMLDesc(d, 0) : NULL;
	bool has = xml && strstr(xml, what);

	ck_assert_ptr_nonnull(xml);
	free(xml);
	virDomainFree(d);
	return has;
}

START_TEST(real_hot_attach_qcow2)
{
	static const char *const keys[] = { "h-base.raw" }, *const fmts[] = { "raw" };
	const char *domain = getenv("LV_DOMAIN");
	vsm_backend_device_spec s;
	vsm_backend_deploy_req r;
	vsm_backend_ds *ds;
	vsm_locator *loc = locator_new();
	char key[VSM_BACKEND_KEY_MAX], over[600], base[600];
	unsigned int fl;

	ck_assert_ptr_nonnull(domain);
	ck_assert_rc(ds_open(&ds, real_pool(), real_uri(), false), 0);
	s = spec("h-base.raw", 8 * MiB, "raw", NULL, NULL);
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);
	s = spec("h-over.qcow2", 8 * MiB, "qcow2", "h-base.raw", "raw");
	ck_assert_rc(O->device_create(ds, &s, key, sizeof(key), &fl), 0);

	r = req_for("qcow2", keys, fmts, 1);
	r.domain = domain;
	r.host_uri = real_uri();
	r.target = "sdb";
	r.bus = "scsi";
	ck_assert_rc(O->device_deploy(ds, key, &r, loc), 0);
	snprintf(over, sizeof(over), "<source file='%s'", vsm_locator_path(loc));
	snprintf(base, sizeof(base), "%.*s/h-base.raw",
		 (int)(strrchr(vsm_locator_path(loc), '/') - vsm_locator_path(loc)),
		 vsm_locator_path(loc));
	ck_assert_msg(live_has(domain, over), "live XML lacks %s", over);
	ck_assert(live_has(domain, "<target dev='sdb' bus='scsi'/>"));
	ck_assert_msg(live_has(domain, base), "live XML lacks the backing file %s", base);
	/* Attaching the same target twice is libvirt's error, in our words. */
	ck_assert(O->device_deploy(ds, key, &r, loc) < 0);
	ck_assert_msg_has("cannot hot-attach volume 'h-over.qcow2'");

	/* Undeploy without naming the domain: the backend finds it. */
	r.domain = NULL;
	ck_assert_rc(O->device_undeploy(ds, key, &r), 0);
	ck_assert_msg(!live_has(domain, over), "disk still in the live XML");
	ck_assert_rc(O->device_delete(ds, "h-over.qcow2", 0), 0);
	ck_assert_rc(O->device_delete(ds, "h-base.raw", 0), 0);
	vsm_locator_free(loc);
	O->close(ds);
}
END_TEST

START_TEST(real_events)
{
	vsm_backend_ds *ds;
	int before;

	ck_assert_rc(ds_open(&ds, real_pool(), real_uri(), true), 0);
	before = N.changed;
	pool_do(real_pool(), refresh);
	ck_assert_msg(wait_note(&N.changed, before), "no event for a pool refresh over the "
		      "remote driver");
	ck_assert_str_eq(N.last + strlen(N.last) - strlen("refreshed"), "refreshed");
	O->close(ds);
}
END_TEST

static Suite *test_driver_suite(void)
{
	Suite *s = suite_create("libvirt-test-driver");
	TCase *t = tcase_create("backend");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, uri_errors);
	tcase_add_test(t, open_errors);
	tcase_add_test(t, capacity);
	tcase_add_test(t, volumes);
	tcase_add_test(t, device_list);
	tcase_add_test(t, meta_and_block_io_errors);
	tcase_add_test(t, deploy_xml);
	tcase_add_test(t, deploy_network_pool);
	tcase_add_test(t, deploy_block_pool);
	tcase_add_test(t, undeploy_finds_domain_disk);
	tcase_add_test(t, host_attach);
	tcase_add_test(t, host_other_connection);
	tcase_add_test(t, events);
	tcase_add_test(t, container_api);
	tcase_add_test(t, orphans);
	suite_add_tcase(s, t);
	return s;
}

/* Write @len bytes of @byte at @off of @ds/@name:root, or check them. */
static void stamp(vsm_ctx *ctx, const char *ds, const char *name, uint64_t off, int byte,
		  bool check)
{
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	vsm_image *img = NULL;
	unsigned char buf[65536], want[65536];

	memset(want, byte, sizeof(want));
	o.flags = check ? 0 : VSM_IMAGE_OPEN_RDWR;
	ck_assert_rc(vsm_image_open_device(&img, ctx, ds, name, "root", &o), 0);
	if (check) {
		ck_assert_rc(vsm_image_read(img, buf, sizeof(buf), off), 0);
		ck_assert_msg(!memcmp(buf, want, sizeof(buf)), "%s/%s at %llu: not 0x%02x",
			      ds, name, (unsigned long long)off, byte);
	} else {
		ck_assert_rc(vsm_image_write(img, want, sizeof(want), off, 0), 0);
	}
	ck_assert_rc(vsm_image_close(img), 0);
}

/* A consistency group across two backends: "gweb" on a pool of the daemon
 * (raw, so a checkpoint's overlay is a qcow2 volume libvirt makes) and
 * "gdb" on a file datastore. A group checkpoint, writes to both, the
 * changes since it on each, a group revert (both read as at the
 * checkpoint), a group checkpoint delete, and only libvsm's meta volume
 * left on the pool once the members are gone. */
START_TEST(real_group_across_backends)
{
	vsm_device_spec root = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *devs[] = { &root };
	vsm_container_opts co = VSM_CONTAINER_OPTS_INIT;
	vsm_container *m[2] = { NULL, NULL };
	vsm_change_extent *ext = NULL;
	vsm_group *g = NULL;
	char uri[400], fd[400], fduri[420], pool[400];
	virStoragePoolPtr p;
	size_t n = 0;
	vsm_ctx *ctx;
	int i;

	wrap_init();
	/* A pool of its own: the other real cases leave volumes behind. */
	snprintf(pool, sizeof(pool), "%s/gpool", tmpdir);
	ck_assert_int_eq(mkdir(pool, 0755), 0);
	test_pool("vsmgpool", "dir", pool);
	snprintf(uri, sizeof(uri), "libvirt:///vsmgpool?connect=%s", real_uri());
	snprintf(fd, sizeof(fd), "%s/fd", tmpdir);
	ck_assert_int_eq(mkdir(fd, 0700), 0);
	snprintf(fduri, sizeof(fduri), "file://%s", fd);
	ctx = ctx_new("gstate");
	ck_assert_rc(vsm_datastore_add(ctx, "lv1", uri, 0), 0);
	ck_assert_rc(vsm_datastore_add(ctx, "fd", fduri, 0), 0);
	root.name = "root";
	root.size = 8 * MiB;
	co.devices = devs;
	co.n_devices = 1;
	co.flags = VSM_CONTAINER_CREATE_THIN;
	ck_assert_rc(vsm_container_create(&m[0], ctx, "lv1", "gweb", &co), 0);
	root.format = VSM_FORMAT_QCOW2;
	co.flags = 0;
	ck_assert_rc(vsm_container_create(&m[1], ctx, "fd", "gdb", &co), 0);
	stamp(ctx, "lv1", "gweb", 0, 0xa1, false);
	stamp(ctx, "fd", "gdb", MiB, 0xa2, false);

	ck_assert_rc(vsm_group_create(&g, ctx, "g", m, 2, NULL), 0);
	ck_assert_str_eq(vsm_group_member_datastore(g, 0), "lv1");
	ck_assert_str_eq(vsm_group_member_datastore(g, 1), "fd");
	ck_assert_rc(vsm_group_checkpoint_create(g, "gc", NULL), 0);
	stamp(ctx, "lv1", "gweb", 0, 0xb1, false);
	stamp(ctx, "fd", "gdb", MiB, 0xb2, false);
	for (i = 0; i < 2; i++) {
		ck_assert_rc(vsm_container_refresh(m[i]), 0);
		ck_assert_rc(vsm_changes(&ext, &n, m[i], "root", "gc", NULL), 0);
		ck_assert_uint_eq(n, 1);
		ck_assert_uint_eq(ext[0].offset, i ? MiB : 0);
		vsm_change_extents_free(ext);
	}
	ck_assert_rc(vsm_group_checkpoint_revert(g, "gc", 0), 0);
	stamp(ctx, "lv1", "gweb", 0, 0xa1, true);
	stamp(ctx, "fd", "gdb", MiB, 0xa2, true);
	ck_assert_rc(vsm_group_checkpoint_delete(g, "gc", 0), 0);
	ck_assert_rc(vsm_group_refresh(g), 0);
	ck_assert_uint_eq(vsm_group_checkpoint_count(g), 0);
	stamp(ctx, "lv1", "gweb", 0, 0xa1, true);
	stamp(ctx, "fd", "gdb", MiB, 0xa2, true);

	ck_assert_rc(vsm_group_destroy(g, 0), 0);
	vsm_group_free(g);
	for (i = 0; i < 2; i++) {
		ck_assert_rc(vsm_container_refresh(m[i]), 0);
		ck_assert_rc(vsm_container_destroy(m[i], 0), 0);
		vsm_container_free(m[i]);
	}
	ck_assert_int_eq(pool_vol_count("vsmgpool"), 1); /* the meta volume */
	vsm_ctx_free(ctx);
	p = virStoragePoolLookupByName(tc, "vsmgpool");
	ck_assert_ptr_nonnull(p);
	virStoragePoolDestroy(p);
	virStoragePoolFree(p);
}
END_TEST

static Suite *real_suite(void)
{
	Suite *s = suite_create("libvirt-real-daemon");
	TCase *t = tcase_create("backend");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, real_block_io);
	tcase_add_test(t, real_qcow2);
	tcase_add_test(t, real_hot_attach_qcow2);
	tcase_add_test(t, real_events);
	tcase_add_test(t, real_group_across_backends);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	bool real = getenv("LV_REAL") && !strcmp(getenv("LV_REAL"), "1");
	SRunner *sr;
	int failed;

	if (real && (!real_uri() || !real_pool())) {
		fprintf(stderr, "LV_REAL=1 needs LV_CONNECT, LV_POOL and LV_DOMAIN\n");
		return 1;
	}
	sr = srunner_create(real ? real_suite() : test_driver_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
