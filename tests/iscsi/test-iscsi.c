/*
 * The iSCSI backend against a real tgtd that tgt-run.sh started: URIs,
 * block I/O on 512 B and 4 KiB LUNs (read-modify-write of partial blocks,
 * queue depth from many threads, discard), pool and managed mode through
 * the container API with raw and qcow2 devices (qemu-img checks the
 * qcow2 LUNs' backing files), claims from two hosts at once, CHAP, leases
 * with the plain protocol, and faults: an unreachable portal, a wrong
 * secret, a damaged metadata LUN, a LUN deleted mid-I/O, a connection
 * killed under I/O.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <vsm/vsm.h>
#include <vsm/lease.h>
#include <vsm/check.h>
#include "vsm/backend.h"
#include "backends/iscsi/iscsi-backend.h"
#include "bdev.h"
#include "cow/cow.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);

	ck_assert_msg(v && *v, "%s is not set: run this suite through tgt-run.sh", name);
	return v;
}

static const char *msg(void)
{
	const vsm_error *e = vsm_error_last();

	return e && e->message ? e->message : "(no message)";
}

#define ck_ok(call) do { \
		int rc_ = (call); \
		ck_assert_msg(rc_ == 0, "%s returned %d: %s", #call, rc_, msg()); \
	} while (0)

#define ck_refused(call, code, substr) do { \
		int rc_ = (call); \
		ck_assert_msg(rc_ == -(code), "%s returned %d (%s), expected -%s", #call, rc_, \
			      msg(), #code); \
		ck_assert_msg(strstr(msg(), (substr)) != NULL, "%s: message '%s' does not " \
			      "mention '%s'", #call, msg(), (substr)); \
	} while (0)

static char *uri_for(const char *target, const char *extra)
{
	char *u = NULL;

	ck_assert_int_ge(asprintf(&u, "iscsi://%s127.0.0.1:%s/%s:%s%s%s",
				  "", env("VSM_TEST_ISCSI_PORT"), env("VSM_TEST_IQN"), target,
				  extra && *extra ? "?" : "", extra ? extra : ""), 0);
	return u;
}

static char *tmpdir(const char *tag)
{
	char *d = NULL;

	ck_assert_int_ge(asprintf(&d, "%s/state-%s-%d", env("VSM_TEST_TGT_DIR"), tag,
				  (int)getpid()), 0);
	return d;
}

static vsm_ctx *ctx_on(const char *tag, unsigned int flags)
{
	vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
	char *dir = tmpdir(tag);
	vsm_ctx *ctx = NULL;

	o.state_dir = dir;
	o.flags = flags;
	ck_ok(vsm_ctx_open(&ctx, &o));
	free(dir);
	return ctx;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

/* ---------------------------------------------------------------- vtable */

typedef struct {
	const struct vsm_datastore_ops *ops;
	vsm_backend_ds *ds;
} bk;

/* A device's capabilities as the core would see them. */
static vsm_bdev_caps caps_of(vsm_bdev_io *d)
{
	vsm_bdev_caps c;

	memset(&c, 0, sizeof(c));
	c.version = VSM_BDEV_CAPS_VERSION;
	c.size = sizeof(c);
	ck_ok(d->ops->query(d, &c));
	return c;
}

static void bk_open(bk *b, const char *uri)
{
	vsm_backend_open_args a = { VSM_BACKEND_OPEN_ARGS_VERSION, "t", NULL, NULL, NULL, 0 };

	/* One table; iscsi-caw:// is an alias the backend reads from the URI. */
	b->ops = &vsm__iscsi_backend_ops;
	ck_ok(b->ops->open(&b->ds, uri, &a));
}

static void bk_meta(bk *b)
{
	vsm_bdev_io *m = NULL;

	ck_ok(b->ops->meta_open(&m, b->ds, 1 << 20, VSM_BDEV_CREATE));
	m->ops->close(m);
}

static int bk_open_rc(const char *uri)
{
	vsm_backend_open_args a = { VSM_BACKEND_OPEN_ARGS_VERSION, "t", NULL, NULL, NULL, 0 };
	vsm_backend_ds *ds = NULL;
	int rc = vsm__iscsi_backend_ops.open(&ds, uri, &a);

	if (rc == 0)
		vsm__iscsi_backend_ops.close(ds);
	return rc;
}

START_TEST(uri_refusals)
{
	char *u;

	ck_refused(bk_open_rc("iscsi://127.0.0.1:3260"), VSM_EINVAL, "no target IQN");
	ck_refused(bk_open_rc("iscsi://127.0.0.1:99999/iqn.x:y"), VSM_EINVAL, "port");
	ck_refused(bk_open_rc("iscsi://127.0.0.1/iqn.x:y?color=red"), VSM_EINVAL,
		   "unknown option 'color'");
	ck_refused(bk_open_rc("iscsi://127.0.0.1/iqn.x:y?mode=managed"), VSM_EINVAL,
		   "needs tid=N and dir=/PATH");
	ck_refused(bk_open_rc("iscsi://bob@127.0.0.1/iqn.x:y"), VSM_EINVAL, "has no secret");
	ck_refused(bk_open_rc("iscsi://127.0.0.1/iqn x"), VSM_EINVAL, "target IQN");
	ck_refused(bk_open_rc("iscsi://127.0.0.1/iqn.x:y?secret-file=/nonexistent/s"),
		   VSM_ENOTFOUND, "secret file");
	/* A target the portal does not have. */
	u = uri_for("nosuch", NULL);
	ck_assert_int_lt(bk_open_rc(u), 0);
	ck_assert_msg(strstr(msg(), "nosuch") != NULL, "%s", msg());
	free(u);
}
END_TEST

/* ---------------------------------------------------------------- block I/O */

typedef struct {
	bk *b;
	vsm_bdev_io *dev;
	int id;
	int rc;
	uint32_t bs;
} io_arg;

static void *io_thread(void *p)
{
	io_arg *a = p;
	uint8_t *w = malloc(4096), *r = malloc(4096);
	int i;

	for (i = 0; i < 32 && a->rc == 0; i++) {
		uint64_t off = ((uint64_t)a->id * 32 + (uint64_t)i) * 4096;

		fill(w, 4096, (unsigned)(a->id * 1000 + i));
		a->rc = a->dev->ops->write(a->dev, w, 4096, off, 0);
		if (a->rc == 0)
			a->rc = a->dev->ops->read(a->dev, r, 4096, off);
		if (a->rc == 0 && memcmp(w, r, 4096) != 0)
			a->rc = -9999;
	}
	free(w);
	free(r);
	return NULL;
}

static void block_io(const char *target, uint32_t want_bs)
{
	char *u = uri_for(target, NULL), key[VSM_BACKEND_KEY_MAX];
	vsm_backend_device_spec spec = { VSM_BACKEND_DEVICE_SPEC_VERSION, "blk-dev.raw",
					 4 << 20, "raw", NULL, NULL, 0 };
	vsm_bdev_io *d = NULL;
	unsigned int of = 0;
	uint8_t *w = malloc(1 << 20), *r = malloc(1 << 20), *ref = malloc(1 << 20);
	uint64_t size = 0;
	uint32_t bs = 0;
	pthread_t th[16];
	io_arg ia[16];
	bk b;
	int i;

	bk_open(&b, u);
	bk_meta(&b);
	ck_ok(b.ops->device_create(b.ds, &spec, key, sizeof(key), &of));
	ck_assert_msg(!strncmp(key, "lun", 3) && strstr(key, "/blk-dev.raw"), "key %s", key);
	ck_refused(b.ops->device_create(b.ds, &spec, key, sizeof(key), &of), VSM_EEXISTS,
		   "already exists");
	ck_ok(b.ops->device_open(&d, b.ds, key, 0));
	bs = caps_of(d).logical_block_size;
	ck_assert_uint_eq(bs, want_bs);
	ck_ok(d->ops->get_size(d, &size));
	ck_assert_uint_ge(size, 4 << 20);

	/* Whole blocks, several commands' worth. */
	fill(w, 1 << 20, 1);
	ck_ok(d->ops->write(d, w, 1 << 20, 0, 0));
	memset(r, 0, 1 << 20);
	ck_ok(d->ops->read(d, r, 1 << 20, 0));
	ck_assert(memcmp(w, r, 1 << 20) == 0);
	/* Partial blocks: read-modify-write keeps the neighbours. */
	fill(w, 777, 2);
	ck_ok(d->ops->write(d, w, 777, 4096 + 100, 0));
	ck_ok(d->ops->read(d, r, 16384, 0));
	fill(ref, 1 << 20, 1);
	ck_assert(memcmp(r, ref, 4096 + 100) == 0);
	ck_assert(memcmp(r + 4096 + 100, w, 777) == 0);
	ck_assert(memcmp(r + 4096 + 100 + 777, ref + 4096 + 100 + 777,
			 16384 - 4096 - 100 - 777) == 0);
	/* Unaligned read across blocks. */
	ck_ok(d->ops->read(d, r, 300, 4096 + 150));
	ck_assert(memcmp(r, w + 50, 300) == 0);
	/* Past the end: zeros on read, ENOSPC on write. */
	memset(r, 0xaa, 8192);
	ck_ok(d->ops->read(d, r, 8192, size - 4096));
	ck_assert(r[4096] == 0 && r[8191] == 0);
	ck_refused(d->ops->write(d, w, 8192, size - 4096, 0), VSM_ENOSPC, "passes its end");
	/* Discard reads back as zeros. */
	ck_ok(d->ops->discard(d, 8192, 65536 + 100));
	ck_ok(d->ops->read(d, r, 65536 + 100, 8192));
	for (i = 0; i < 65536 + 100; i++)
		ck_assert_msg(r[i] == 0, "byte %d not discarded", i);
	ck_ok(d->ops->flush(d));
	/* Many threads at once on one handle: each block ends as written. */
	for (i = 0; i < 16; i++) {
		ia[i] = (io_arg){ &b, d, i, 0, bs };
		pthread_create(&th[i], NULL, io_thread, &ia[i]);
	}
	for (i = 0; i < 16; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(ia[i].rc == 0, "thread %d: %d %s", i, ia[i].rc, msg());
	}
	/* tgt lists COMPARE AND WRITE but rejects it: the probe finds it
	 * missing on this LUN, and its capabilities say so. */
	ck_assert(!(caps_of(d).flags & VSM_BDEV_CAP_COMPARE_AND_WRITE));
	ck_assert(caps_of(d).flags & VSM_BDEV_CAP_NATIVE_ASYNC);
	d->ops->close(d);
	/* Deleting by name (the journal's undo) releases the claim. */
	ck_ok(b.ops->device_delete(b.ds, "blk-dev.raw", 0));
	ck_refused(b.ops->device_delete(b.ds, key, 0), VSM_ENOTFOUND, "not claimed");
	ck_refused(b.ops->device_open(&d, b.ds, key, 0), VSM_ENOTFOUND, "not claimed");
	b.ops->close(b.ds);
	free(u);
	free(w);
	free(r);
	free(ref);
}

/* Asynchronous batches on a LUN: whole-block requests go out as queued
 * SCSI commands (a 3 MiB one split at the transfer limit), partial blocks
 * and ranges past the end take the synchronous path; what reads back is
 * what the synchronous calls see. */
static void async_batch(const char *target)
{
	char *u = uri_for(target, NULL), key[VSM_BACKEND_KEY_MAX];
	vsm_backend_device_spec spec = { VSM_BACKEND_DEVICE_SPEC_VERSION, "async.raw",
					 8 << 20, "raw", NULL, NULL, 0 };
	static const struct { uint64_t off; size_t len; } w[] = {
		{ 0, 4096 }, { 8192, 512 }, { 65536 + 100, 777 }, { 1 << 20, 3 << 20 },
		{ 5 << 20, 65536 }, { (6 << 20) + 4096, 8192 },
	};
	enum { NW = sizeof(w) / sizeof(w[0]) };
	vsm_bdev_req reqs[NW + 1];
	uint8_t *want = calloc(1, 7 << 20), *got = malloc(7 << 20);
	vsm_bdev_io *d = NULL;
	vsm_bdev *vb = NULL;
	unsigned int of;
	size_t i;
	bk b;

	bk_open(&b, u);
	bk_meta(&b);
	ck_ok(b.ops->device_create(b.ds, &spec, key, sizeof(key), &of));
	ck_ok(b.ops->device_open(&d, b.ds, key, 0));
	ck_ok(vsm_bdev_wrap(&vb, d, "lun", false));
	ck_assert(vsm_bdev_has_native_async(vb));
	ck_ok(vsm_bdev_write(vb, want, 7 << 20, 0));
	memset(reqs, 0, sizeof(reqs));
	for (i = 0; i < NW; i++) {
		fill(want + w[i].off, w[i].len, (unsigned)i + 40);
		reqs[i].op = VSM_BDEV_OP_WRITE;
		reqs[i].off = w[i].off;
		reqs[i].buf = want + w[i].off;
		reqs[i].len = w[i].len;
		reqs[i].flags = i == 0 ? VSM_BDEV_WRITE_FUA : 0;
	}
	ck_ok(vsm_bdev_run(vb, reqs, NW));
	reqs[0].op = VSM_BDEV_OP_FLUSH;
	ck_ok(vsm_bdev_run(vb, reqs, 1));
	ck_ok(vsm_bdev_read(vb, got, 7 << 20, 0));
	ck_assert(memcmp(got, want, 7 << 20) == 0);
	memset(got, 0xEE, 7 << 20);
	for (i = 0; i < 7; i++) {
		reqs[i].op = VSM_BDEV_OP_READ;
		reqs[i].flags = 0;
		reqs[i].off = (uint64_t)(6 - i) << 20;
		reqs[i].buf = got + ((size_t)(6 - i) << 20);
		reqs[i].len = 1 << 20;
	}
	ck_ok(vsm_bdev_run(vb, reqs, 7));
	ck_assert(memcmp(got, want, 7 << 20) == 0);
	/* Past the end: refused like the synchronous write, with its words. */
	reqs[0].op = VSM_BDEV_OP_WRITE;
	reqs[0].off = 8 << 20;
	reqs[0].len = 4096;
	ck_refused(vsm_bdev_run(vb, reqs, 1), VSM_ENOSPC, "passes its end");
	vsm_bdev_close(vb);
	ck_ok(b.ops->device_delete(b.ds, key, 0));
	b.ops->close(b.ds);
	free(want);
	free(got);
	free(u);
}

START_TEST(async_batch_512)
{
	async_batch("pool");
}
END_TEST

START_TEST(block_io_512)
{
	block_io("pool", 512);
}
END_TEST

START_TEST(block_io_4k)
{
	block_io("fourk", 4096);
}
END_TEST

/* The core's qcow2 engine over the backend's bdev, on 512 B and 4 KiB
 * LUNs: scattered and unaligned guest writes, reopen, read back; then
 * qemu-img checks the image and converts it for a byte comparison. */
static void qcow2_on_lun(const char *target)
{
	char *u = uri_for(target, NULL), key[VSM_BACKEND_KEY_MAX], *cmd = NULL, *out = NULL;
	vsm_backend_device_spec spec = { VSM_BACKEND_DEVICE_SPEC_VERSION, "q.qcow2", 6 << 20,
					 "qcow2", NULL, NULL, 0 };
	vsm_cow_create_opts co = { 0 };
	vsm_bdev_io *h = NULL;
	vsm_bdev *vb = NULL;
	vsm_cow *c = NULL;
	uint8_t *want = calloc(1, 6 << 20), *got = malloc(6 << 20);
	static const struct { uint64_t off; size_t len; } w[] = {
		{ 0, 4096 }, { 12345, 1000 }, { 65536 - 100, 300 }, { 1 << 20, 131072 },
		{ (5 << 20) + 7, 5000 }, { (6 << 20) - 512, 512 },
	};
	unsigned int of;
	size_t i;
	FILE *f;
	bk b;

	bk_open(&b, u);
	bk_meta(&b);
	ck_ok(b.ops->device_create(b.ds, &spec, key, sizeof(key), &of));
	ck_ok(b.ops->device_open(&h, b.ds, key, 0));
	ck_ok(vsm_bdev_wrap(&vb, h, "lun", false));
	co.size = 6 << 20;
	ck_ok(vsm_cow_create_qcow2(vb, "lun", &co));
	ck_ok(vsm_cow_open(&c, vb, "lun", NULL));
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		fill(want + w[i].off, w[i].len, (unsigned)i + 10);
		ck_ok(vsm_cow_write(c, want + w[i].off, w[i].len, w[i].off));
	}
	ck_ok(vsm_cow_close(c));
	ck_ok(b.ops->device_open(&h, b.ds, key, VSM_BDEV_RDONLY));
	ck_ok(vsm_bdev_wrap(&vb, h, "lun", true));
	ck_ok(vsm_cow_open(&c, vb, "lun", NULL));
	ck_ok(vsm_cow_read(c, got, 6 << 20, 0));
	ck_assert(memcmp(got, want, 6 << 20) == 0);
	ck_ok(vsm_cow_close(c));
	/* qemu-img, an independent reader, on the LUN's backing file. */
	ck_assert_int_ge(asprintf(&out, "%s/conv-%d.raw", env("VSM_TEST_TGT_DIR"), (int)getpid()),
			 0);
	ck_assert_int_ge(asprintf(&cmd, "qemu-img check -q -f qcow2 %s/%s/lun%d.img && "
				  "qemu-img convert -f qcow2 -O raw %s/%s/lun%d.img %s",
				  env("VSM_TEST_TGT_DIR"), target, atoi(key + 3),
				  env("VSM_TEST_TGT_DIR"), target, atoi(key + 3), out), 0);
	ck_assert_msg(system(cmd) == 0, "'%s' failed", cmd);
	f = fopen(out, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(got, 1, 6 << 20, f), 6 << 20);
	fclose(f);
	ck_assert(memcmp(got, want, 6 << 20) == 0);
	unlink(out);
	ck_ok(b.ops->device_delete(b.ds, key, 0));
	b.ops->close(b.ds);
	free(cmd);
	free(out);
	free(want);
	free(got);
	free(u);
}

START_TEST(qcow2_on_512_lun)
{
	qcow2_on_lun("pool");
}
END_TEST

START_TEST(qcow2_on_4k_lun)
{
	qcow2_on_lun("fourk");
}
END_TEST

/* wipe=zero: a released LUN reads as zeros when it is claimed again. */
START_TEST(wipe_on_delete)
{
	char *u = uri_for("pool", "wipe=zero"), key[VSM_BACKEND_KEY_MAX], key2[VSM_BACKEND_KEY_MAX];
	vsm_backend_device_spec spec = { VSM_BACKEND_DEVICE_SPEC_VERSION, "w.raw", 4 << 20, "raw",
					 NULL, NULL, 0 };
	vsm_bdev_io *d = NULL;
	uint8_t *buf = malloc(1 << 20);
	unsigned int of;
	size_t i;
	bk b;

	bk_open(&b, u);
	bk_meta(&b);
	ck_ok(b.ops->device_create(b.ds, &spec, key, sizeof(key), &of));
	ck_ok(b.ops->device_open(&d, b.ds, key, 0));
	fill(buf, 1 << 20, 7);
	ck_ok(d->ops->write(d, buf, 1 << 20, 3 << 20, 0));
	d->ops->close(d);
	ck_ok(b.ops->device_delete(b.ds, key, 0));
	ck_ok(b.ops->device_create(b.ds, &spec, key2, sizeof(key2), &of));
	ck_assert_int_eq(atoi(key2 + 3), atoi(key + 3)); /* best fit: the same LUN */
	ck_ok(b.ops->device_open(&d, b.ds, key2, 0));
	ck_ok(d->ops->read(d, buf, 1 << 20, 3 << 20));
	for (i = 0; i < 1 << 20; i++)
		ck_assert_msg(buf[i] == 0, "byte %zu survived the wipe", i);
	d->ops->close(d);
	ck_ok(b.ops->device_delete(b.ds, key2, 0));
	b.ops->close(b.ds);
	free(buf);
	free(u);
}
END_TEST

/* ---------------------------------------------------------------- containers */

static const vsm_device_spec *specs2(vsm_device_spec *s)
{
	return s;
}

static int create2(vsm_container **out, vsm_ctx *ctx, const char *ds, const char *name,
		   uint64_t size, int fmt1)
{
	vsm_device_spec a = VSM_DEVICE_SPEC_INIT, b = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *list[2];
	vsm_container_opts o = VSM_CONTAINER_OPTS_INIT;

	a.name = "d0";
	a.size = size;
	b.name = "d1";
	b.size = size;
	b.format = fmt1;
	list[0] = specs2(&a);
	list[1] = &b;
	o.devices = list;
	o.n_devices = 2;
	return vsm_container_create(out, ctx, ds, name, &o);
}

static int create1(vsm_container **out, vsm_ctx *ctx, const char *ds, const char *name,
		   uint64_t size)
{
	vsm_device_spec a = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *list[1] = { &a };
	vsm_container_opts o = VSM_CONTAINER_OPTS_INIT;

	a.name = "d0";
	a.size = size;
	o.devices = list;
	o.n_devices = 1;
	return vsm_container_create(out, ctx, ds, name, &o);
}

static int lun_of_locator(const vsm_locator *l)
{
	const char *u = vsm_locator_uri(l), *slash = strrchr(u, '/');

	ck_assert_ptr_nonnull(slash);
	return atoi(slash + 1);
}

static void qemu_img_check(const char *target, int lun)
{
	char *cmd = NULL;

	ck_assert_int_ge(asprintf(&cmd, "qemu-img check -q -f qcow2 %s/%s/lun%d.img",
				  env("VSM_TEST_TGT_DIR"), target, lun), 0);
	ck_assert_msg(system(cmd) == 0, "'%s' found problems", cmd);
	free(cmd);
}

START_TEST(pool_containers)
{
	char *u = uri_for("pool", NULL), xmlsub[200];
	vsm_ctx *a = ctx_on("pool-a", 0), *b;
	vsm_container *c = NULL, *c2 = NULL;
	vsm_locator *l0 = NULL, *l1 = NULL;
	uint64_t total = 0, free0 = 0, free1 = 0;

	ck_ok(vsm_datastore_add(a, "san", u, 0));
	ck_ok(vsm_datastore_capacity(a, "san", &total, &free0));
	ck_assert_uint_eq(total, (64 + 8 + 8 + 8 + 32) << 20); /* LUN 1 holds metadata */
	ck_assert_uint_eq(free0, total);
	ck_ok(vsm_host_add(a, "h1", NULL));
	ck_ok(vsm_host_link(a, "h1", "san", 0));
	ck_ok(create2(&c, a, "san", "web", 8 << 20, VSM_FORMAT_QCOW2));
	ck_ok(vsm_datastore_capacity(a, "san", NULL, &free1));
	ck_assert_uint_eq(free1, free0 - 3 * (8 << 20)); /* best fit: three 8 MiB LUNs */
	ck_ok(vsm_attach(c, "h1", 0));
	ck_ok(vsm_device_deploy(&l0, c, "d0", NULL));
	ck_ok(vsm_device_deploy(&l1, c, "d1", NULL));
	ck_assert_msg(!strncmp(vsm_locator_uri(l0), "iscsi://127.0.0.1:", 18), "%s",
		      vsm_locator_uri(l0));
	snprintf(xmlsub, sizeof(xmlsub), "<source protocol='iscsi' name='%s:pool/%d'>",
		 env("VSM_TEST_IQN"), lun_of_locator(l1));
	ck_assert_msg(strstr(vsm_locator_disk_xml(l1), xmlsub), "%s", vsm_locator_disk_xml(l1));
	snprintf(xmlsub, sizeof(xmlsub), "<host name='127.0.0.1' port='%s'/>",
		 env("VSM_TEST_ISCSI_PORT"));
	ck_assert_msg(strstr(vsm_locator_disk_xml(l1), xmlsub), "%s", vsm_locator_disk_xml(l1));
	ck_assert(strstr(vsm_locator_disk_xml(l1), "type='qcow2'") != NULL);
	ck_assert(strstr(vsm_locator_disk_xml(l1), "<auth") == NULL);
	/* qemu-img reads the qcow2 the core wrote onto the LUN. */
	qemu_img_check("pool", lun_of_locator(l1));

	/* A second catalog finds the container on the target. */
	b = ctx_on("pool-b", 0);
	ck_ok(vsm_datastore_add(b, "san", u, 0));
	ck_ok(vsm_container_lookup(&c2, b, "san", "web"));
	ck_assert_uint_eq(vsm_container_device_count(c2), 2);
	vsm_container_free(c2);
	/* Nothing big enough: a clear refusal, and nothing claimed. */
	ck_refused(create1(NULL, a, "san", "huge", 100 << 20), VSM_ENOSPC, "");
	ck_ok(vsm_datastore_capacity(a, "san", NULL, &free1));
	ck_assert_uint_eq(free1, free0 - 3 * (8 << 20));

	ck_ok(vsm_device_undeploy(c, "d0", 0));
	ck_ok(vsm_device_undeploy(c, "d1", 0));
	ck_ok(vsm_detach(c, 0));
	ck_ok(vsm_container_destroy(c, 0));
	ck_ok(vsm_datastore_capacity(a, "san", NULL, &free1));
	ck_assert_uint_eq(free1, free0);
	vsm_locator_free(l0);
	vsm_locator_free(l1);
	vsm_container_free(c);
	vsm_ctx_free(b);
	vsm_ctx_free(a);
	free(u);
}
END_TEST

typedef struct {
	const char *uri;
	int id;
	int rc;
	char keys[4][VSM_BACKEND_KEY_MAX];
	char msg[600];
} claimer;

static void *claim_thread(void *p)
{
	claimer *cl = p;
	vsm_backend_open_args a = { VSM_BACKEND_OPEN_ARGS_VERSION, "t", NULL, NULL, NULL, 0 };
	vsm_backend_ds *ds = NULL;
	vsm_bdev_io *m = NULL;
	unsigned int of;
	int i;

	cl->rc = vsm__iscsi_backend_ops.open(&ds, cl->uri, &a);
	if (cl->rc == 0)
		cl->rc = vsm__iscsi_backend_ops.meta_open(&m, ds, 1 << 20, 0);
	if (m)
		m->ops->close(m);
	for (i = 0; i < 2 && cl->rc == 0; i++) {
		char name[32];
		vsm_backend_device_spec spec = { VSM_BACKEND_DEVICE_SPEC_VERSION, name, 1 << 20,
						 "raw", NULL, NULL, 0 };

		snprintf(name, sizeof(name), "host%d-dev%d", cl->id, i);
		cl->rc = vsm__iscsi_backend_ops.device_create(ds, &spec, cl->keys[i],
							      sizeof(cl->keys[i]), &of);
	}
	if (cl->rc < 0)
		snprintf(cl->msg, sizeof(cl->msg), "%s", msg());
	if (ds)
		vsm__iscsi_backend_ops.close(ds);
	return NULL;
}

/* Two hosts (two sessions) claim LUNs at the same moment: no LUN goes to
 * both. tgt has no COMPARE AND WRITE, so this is the RESERVE/RELEASE path. */
START_TEST(concurrent_claims)
{
	char *u = uri_for("pool", NULL);
	claimer c1 = { u, 1, 0, { "" }, "" }, c2 = { u, 2, 0, { "" }, "" };
	pthread_t t1, t2;
	bk b;
	int i, j;

	bk_open(&b, u);
	bk_meta(&b);
	pthread_create(&t1, NULL, claim_thread, &c1);
	pthread_create(&t2, NULL, claim_thread, &c2);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	ck_assert_msg(c1.rc == 0 && c2.rc == 0, "%d %d %s %s", c1.rc, c2.rc, c1.msg, c2.msg);
	for (i = 0; i < 2; i++)
		for (j = 0; j < 2; j++)
			ck_assert_msg(atoi(c1.keys[i] + 3) != atoi(c2.keys[j] + 3),
				      "LUN claimed twice: %s and %s", c1.keys[i], c2.keys[j]);
	for (i = 0; i < 2; i++) {
		ck_ok(b.ops->device_delete(b.ds, c1.keys[i], 0));
		ck_ok(b.ops->device_delete(b.ds, c2.keys[i], 0));
	}
	b.ops->close(b.ds);
	free(u);
}
END_TEST

static int count_files(const char *dir)
{
	char *cmd = NULL, buf[32] = "";
	FILE *f;

	ck_assert_int_ge(asprintf(&cmd, "ls -A %s | wc -l", dir), 0);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	pclose(f);
	free(cmd);
	return atoi(buf);
}

START_TEST(managed_mode)
{
	char *dir = NULL, *extra = NULL, *u;
	vsm_ctx *a = ctx_on("man", 0);
	vsm_container *c = NULL;
	vsm_locator *l = NULL;

	ck_assert_int_ge(asprintf(&dir, "%s/managed", env("VSM_TEST_TGT_DIR")), 0);
	ck_assert_int_ge(asprintf(&extra, "mode=managed&tid=3&dir=%s&control-port=%s", dir,
				  env("VSM_TEST_TGT_CPORT")), 0);
	u = uri_for("managed", extra);
	ck_ok(vsm_datastore_add(a, "tgt", u, 0));
	ck_assert_int_eq(count_files(dir), 1); /* vsm-meta.img, exported as LUN 1 */
	ck_ok(vsm_host_add(a, "h1", NULL));
	ck_ok(vsm_host_link(a, "h1", "tgt", 0));
	ck_ok(create2(&c, a, "tgt", "db", 16 << 20, VSM_FORMAT_QCOW2));
	ck_assert_int_eq(count_files(dir), 4);
	ck_ok(vsm_attach(c, "h1", 0));
	ck_ok(vsm_device_deploy(&l, c, "d1", NULL));
	ck_assert_int_ge(lun_of_locator(l), 2);
	{
		char *cmd = NULL;

		ck_assert_int_ge(asprintf(&cmd, "qemu-img check -q -f qcow2 %s/%s", dir,
					  strchr(vsm_device_key(vsm_container_device_by_name(c, "d1")),
						 '/') + 1), 0);
		ck_assert_msg(system(cmd) == 0, "%s", cmd);
		free(cmd);
	}
	vsm_locator_free(l);
	l = NULL;
	ck_ok(vsm_detach(c, VSM_DETACH_FORCE));
	vsm_container_free(c);
	c = NULL;
	vsm_ctx_free(a);

	/* tgtd restarted (it forgets LUNs): simulated by deleting all of the
	 * target's LUNs. Opening the datastore exports them again. */
	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "for l in $(tgtadm -C %s --lld iscsi --mode target "
			 "--op show --tid 3 | sed -n 's/^ *LUN: \\([1-9][0-9]*\\)$/\\1/p'); do "
			 "tgtadm -C %s --lld iscsi --mode logicalunit --op delete --tid 3 --lun $l "
			 "|| exit 1; done", env("VSM_TEST_TGT_CPORT"), env("VSM_TEST_TGT_CPORT"));
		ck_assert_int_eq(system(cmd), 0);
		snprintf(cmd, sizeof(cmd), "tgtadm -C %s --lld iscsi --mode target --op show "
			 "--tid 3 | grep -q 'LUN: [1-9]'", env("VSM_TEST_TGT_CPORT"));
		ck_assert_msg(system(cmd) != 0, "target 3 still has LUNs");
	}
	a = ctx_on("man-2", 0);
	ck_ok(vsm_datastore_add(a, "tgt", u, 0));
	ck_ok(vsm_container_lookup(&c, a, "tgt", "db"));
	ck_ok(vsm_host_add(a, "h1", NULL));
	ck_ok(vsm_host_link(a, "h1", "tgt", 0));
	ck_ok(vsm_attach(c, "h1", 0));
	ck_ok(vsm_device_deploy(&l, c, "d1", NULL));
	ck_ok(vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE));
	ck_assert_int_eq(count_files(dir), 1);
	vsm_locator_free(l);
	vsm_container_free(c);
	vsm_ctx_free(a);
	free(u);
	free(extra);
	free(dir);
}
END_TEST

/* ---------------------------------------------------------------- orphans */

#define ORPHAN "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9-d0.raw"

static int count_devices(const vsm_backend_device_info *info, void *payload)
{
	ck_assert_ptr_nonnull(info->name);
	ck_assert_msg(!strncmp(info->key, "lun", 3) && strstr(info->key, info->name),
		      "key '%s' for name '%s'", info->key, info->name);
	(*(int *)payload)++;
	return 0;
}

/* A claim made through the backend with a name libvsm would give and no
 * record: found by its name (the key is lun<N>/<name>), aged by its claim
 * time, released by the repair; a claim of another name is left alone. */
START_TEST(orphan_claims)
{
	char *u = uri_for("orphans", NULL), key[VSM_BACKEND_KEY_MAX], want[VSM_BACKEND_KEY_MAX];
	vsm_backend_device_spec spec = { VSM_BACKEND_DEVICE_SPEC_VERSION, ORPHAN, 4 << 20, "raw",
					 NULL, NULL, 0 };
	vsm_check_opts o = VSM_CHECK_OPTS_INIT;
	vsm_check_report *r = NULL;
	vsm_ctx *a = ctx_on("orph", 0);
	vsm_container *c = NULL;
	const vsm_orphan *orph;
	uint64_t free0 = 0, free1 = 0;
	unsigned int fl = 0;
	int listed = 0;
	bk b;

	ck_ok(vsm_datastore_add(a, "san", u, 0));
	ck_ok(create1(&c, a, "san", "web", 4 << 20));
	bk_open(&b, u);
	bk_meta(&b);
	ck_ok(b.ops->device_create(b.ds, &spec, key, sizeof(key), &fl));
	snprintf(want, sizeof(want), "%s", key);
	spec.name = "golden.raw";
	ck_ok(b.ops->device_create(b.ds, &spec, key, sizeof(key), &fl));
	ck_ok(b.ops->device_list(b.ds, count_devices, &listed));
	ck_assert_int_eq(listed, 4); /* web's d0 and state area, the orphan, golden */

	ck_ok(vsm_datastore_check(&r, a, "san", NULL));
	ck_assert_uint_eq(vsm_check_report_devices(r), 4);
	ck_assert_uint_eq(vsm_check_report_referenced(r), 2);
	ck_assert_uint_eq(vsm_check_report_foreign(r), 1);
	ck_assert_uint_eq(vsm_check_report_orphan_count(r), 1);
	orph = vsm_check_report_orphan(r, 0);
	ck_assert_str_eq(vsm_orphan_key(orph), want);
	ck_assert_uint_eq(vsm_orphan_size(orph), 8 << 20); /* the LUN it holds */
	ck_assert_int_ge(vsm_orphan_age(orph), 0);
	ck_assert_int_lt(vsm_orphan_age(orph), 600);
	ck_assert_int_eq(vsm_orphan_state_of(orph), VSM_ORPHAN_YOUNG);
	vsm_check_report_free(r);

	ck_ok(vsm_datastore_capacity(a, "san", NULL, &free0));
	o.flags = VSM_CHECK_REPAIR;
	o.grace_seconds = 0;
	ck_ok(vsm_datastore_check(&r, a, "san", &o));
	ck_assert_uint_eq(vsm_check_report_orphan_count(r), 1);
	ck_assert_int_eq(vsm_orphan_state_of(vsm_check_report_orphan(r, 0)), VSM_ORPHAN_REMOVED);
	vsm_check_report_free(r);
	ck_ok(vsm_datastore_capacity(a, "san", NULL, &free1));
	ck_assert_uint_eq(free1, free0 + (8 << 20));
	/* Left: web's two claims and golden's. */
	listed = 0;
	ck_ok(b.ops->device_list(b.ds, count_devices, &listed));
	ck_assert_int_eq(listed, 3);

	ck_ok(vsm_container_destroy(c, 0));
	ck_ok(b.ops->device_delete(b.ds, key, 0));
	listed = 0;
	ck_ok(b.ops->device_list(b.ds, count_devices, &listed));
	ck_assert_int_eq(listed, 0);
	b.ops->close(b.ds);
	vsm_container_free(c);
	vsm_ctx_free(a);
	free(u);
}
END_TEST

/* ---------------------------------------------------------------- CHAP */

START_TEST(chap_ok_and_deploy_auth)
{
	char *u = NULL, *path = NULL, *u2;
	vsm_ctx *a = ctx_on("chap", 0);
	vsm_container *c = NULL;
	vsm_locator *l = NULL;
	FILE *f;

	ck_assert_int_ge(asprintf(&u, "iscsi://vsmuser%%vsm-secret-12@127.0.0.1:%s/%s:chap",
				  env("VSM_TEST_ISCSI_PORT"), env("VSM_TEST_IQN")), 0);
	ck_assert_int_eq(bk_open_rc(u), 0);
	/* The same credentials from a secret file and from the environment. */
	ck_assert_int_ge(asprintf(&path, "%s/chap-secret-%d", env("VSM_TEST_TGT_DIR"),
				  (int)getpid()), 0);
	f = fopen(path, "w");
	fprintf(f, "# CHAP\nuser = vsmuser\npassword = vsm-secret-12\n");
	fclose(f);
	{
		char *extra = NULL, *u3;

		ck_assert_int_ge(asprintf(&extra, "secret-file=%s&auth-secret=san-chap", path), 0);
		u3 = uri_for("chap", extra);
		ck_ok(vsm_datastore_add(a, "chap", u3, 0));
		free(u3);
		free(extra);
	}
	setenv("VSM_ISCSI_USER", "vsmuser", 1);
	setenv("VSM_ISCSI_PASSWORD", "vsm-secret-12", 1);
	u2 = uri_for("chap", NULL);
	ck_assert_msg(bk_open_rc(u2) == 0, "%s", msg());
	unsetenv("VSM_ISCSI_USER");
	unsetenv("VSM_ISCSI_PASSWORD");
	ck_ok(vsm_host_add(a, "h1", NULL));
	ck_ok(vsm_host_link(a, "h1", "chap", 0));
	ck_ok(create1(&c, a, "chap", "vm", 4 << 20));
	ck_ok(vsm_attach(c, "h1", 0));
	ck_ok(vsm_device_deploy(&l, c, "d0", NULL));
	ck_assert_msg(strstr(vsm_locator_disk_xml(l), "<auth username='vsmuser'>") &&
		      strstr(vsm_locator_disk_xml(l), "<secret type='iscsi' usage='san-chap'/>") &&
		      !strstr(vsm_locator_disk_xml(l), "vsm-secret-12"),
		      "%s", vsm_locator_disk_xml(l));
	ck_assert(strstr(vsm_locator_uri(l), "vsm-secret-12") == NULL);
	ck_ok(vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE));
	vsm_locator_free(l);
	vsm_container_free(c);
	vsm_ctx_free(a);
	unlink(path);
	free(path);
	free(u);
	free(u2);
}
END_TEST

START_TEST(chap_refused)
{
	char *u = NULL;

	ck_assert_int_ge(asprintf(&u, "iscsi://vsmuser%%wrong-secret@127.0.0.1:%s/%s:chap",
				  env("VSM_TEST_ISCSI_PORT"), env("VSM_TEST_IQN")), 0);
	ck_refused(bk_open_rc(u), VSM_EPERM, "CHAP authentication as 'vsmuser' failed");
	free(u);
	u = uri_for("chap", NULL);
	ck_refused(bk_open_rc(u), VSM_EPERM, "may require CHAP");
	free(u);
}
END_TEST

/* ---------------------------------------------------------------- faults */

START_TEST(unreachable_portal)
{
	char *u = NULL;
	vsm_ctx *a = ctx_on("unreach", 0);
	char want[64];

	ck_assert_int_ge(asprintf(&u, "iscsi://127.0.0.1:%s/%s:pool?timeout=3",
				  env("VSM_TEST_CLOSED_PORT"), env("VSM_TEST_IQN")), 0);
	snprintf(want, sizeof(want), "127.0.0.1:%s", env("VSM_TEST_CLOSED_PORT"));
	ck_refused(vsm_datastore_add(a, "gone", u, 0), VSM_EIO, want);
	vsm_ctx_free(a);
	free(u);
}
END_TEST

static uint32_t file_crc(const char *path)
{
	uint8_t buf[65536];
	uint32_t c = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		c = (uint32_t)crc32(c, buf, (uInt)n);
	close(fd);
	return c;
}

static void poke(const char *path, off_t off, const char *bytes, size_t n)
{
	int fd = open(path, O_WRONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, bytes, n, off), (ssize_t)n);
	close(fd);
}

static void peek(const char *path, off_t off, char *bytes, size_t n)
{
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, bytes, n, off), (ssize_t)n);
	close(fd);
}

START_TEST(damaged_metadata_lun)
{
	char *u = uri_for("damaged", NULL), *meta = NULL, saved[4096];
	vsm_ctx *a = ctx_on("dmg-a", 0), *b;
	uint32_t before;

	ck_assert_int_ge(asprintf(&meta, "%s/damaged/lun1.img", env("VSM_TEST_TGT_DIR")), 0);
	ck_ok(vsm_datastore_add(a, "d", u, 0));
	ck_ok(create1(NULL, a, "d", "vm", 4 << 20));
	vsm_ctx_free(a);

	/* The claim table's header is garbage: refused, nothing written. */
	peek(meta, 0, saved, sizeof(saved));
	poke(meta, 0, "garbage!", 8);
	before = file_crc(meta);
	b = ctx_on("dmg-b", 0);
	ck_refused(vsm_datastore_add(b, "d", u, 0), VSM_ECORRUPT, "claim table");
	ck_assert_uint_eq(file_crc(meta), before);
	poke(meta, 0, saved, sizeof(saved));

	/* Both copies of the core's superblock damaged (after the 1 MiB
	 * claim area): the core's own refusal, nothing written. */
	peek(meta, 1 << 20, saved, sizeof(saved));
	poke(meta, (1 << 20) + 40, "XXXX", 4);
	poke(meta, (1 << 20) + 4096 + 40, "XXXX", 4);
	before = file_crc(meta);
	ck_refused(vsm_datastore_add(b, "d", u, 0), VSM_ECORRUPT, "superblock is damaged");
	ck_assert_uint_eq(file_crc(meta), before);
	poke(meta, 1 << 20, saved, sizeof(saved));
	{
		char s2[4096];

		/* copy B had the same bytes as A when written */
		memcpy(s2, saved, sizeof(s2));
		poke(meta, (1 << 20) + 4096, s2, sizeof(s2));
	}
	/* Repaired: usable again, the container is there. */
	ck_ok(vsm_datastore_add(b, "d", u, 0));
	{
		vsm_container *c = NULL;

		ck_ok(vsm_container_lookup(&c, b, "d", "vm"));
		ck_ok(vsm_container_destroy(c, 0));
		vsm_container_free(c);
	}
	vsm_ctx_free(b);
	free(meta);
	free(u);
}
END_TEST

typedef struct {
	bk *b;
	vsm_bdev_io *d;
	volatile int stop;
	int rc;
	char msg[600];
	long ok;
} writer_arg;

static void *writer(void *p)
{
	writer_arg *w = p;
	uint8_t buf[4096];
	uint64_t off = 0;

	fill(buf, sizeof(buf), 3);
	while (!w->stop) {
		int rc = w->d->ops->write(w->d, buf, sizeof(buf), off, 0);

		if (rc < 0) {
			w->rc = rc;
			snprintf(w->msg, sizeof(w->msg), "%s", msg());
			break;
		}
		w->ok++;
		off = (off + 4096) % (8 << 20);
	}
	return NULL;
}

START_TEST(lun_vanishes_mid_io)
{
	char *u = uri_for("vanish", "timeout=5"), key[VSM_BACKEND_KEY_MAX];
	vsm_backend_device_spec spec = { VSM_BACKEND_DEVICE_SPEC_VERSION, "v.raw", 8 << 20, "raw",
					 NULL, NULL, 0 };
	writer_arg w = { 0 };
	unsigned int of;
	pthread_t t;
	bk b;
	int i;

	bk_open(&b, u);
	bk_meta(&b);
	ck_ok(b.ops->device_create(b.ds, &spec, key, sizeof(key), &of));
	ck_ok(b.ops->device_open(&w.d, b.ds, key, 0));
	w.b = &b;
	pthread_create(&t, NULL, writer, &w);
	for (i = 0; i < 200 && w.ok < 20; i++)
		usleep(10000);
	/* tgt refuses while a command is running on the LUN: try again. */
	{
		char cmd[200];
		int tries;

		snprintf(cmd, sizeof(cmd), "tgtadm -C %s --lld iscsi --mode logicalunit --op "
			 "delete --tid 5 --lun %d 2>/dev/null", env("VSM_TEST_TGT_CPORT"),
			 atoi(key + 3));
		for (tries = 0; tries < 500 && system(cmd) != 0; tries++)
			usleep(10000);
		ck_assert_msg(tries < 500, "'%s' kept failing", cmd);
	}
	for (i = 0; i < 1000 && w.rc == 0; i++)
		usleep(10000);
	w.stop = 1;
	pthread_join(t, NULL);
	/* The sense, in words and numbers. */
	ck_assert_msg(w.rc == -VSM_ENOTFOUND, "rc %d: %s", w.rc, w.msg);
	ck_assert_msg(strstr(w.msg, "ILLEGAL REQUEST: logical unit not supported (sense key 0x5, "
			     "ASC/ASCQ 0x25/0x00)"), "%s", w.msg);
	ck_assert_msg(strstr(w.msg, "LUN") && strstr(w.msg, "iqn.2026-01.org.libvsm.test:vanish"),
		      "%s", w.msg);
	w.d->ops->close(w.d);
	/* The device is reported gone; deleting it releases the claim. */
	ck_refused(b.ops->device_open(&w.d, b.ds, key, 0), VSM_ENOTFOUND, "is gone");
	ck_ok(b.ops->device_delete(b.ds, key, 0));
	/* The metadata LUN is untouched and still serves. */
	{
		vsm_bdev_io *m = NULL;
		uint8_t sb[16];

		ck_ok(b.ops->meta_open(&m, b.ds, 1 << 20, 0));
		ck_ok(m->ops->read(m, sb, sizeof(sb), 0));
		m->ops->close(m);
	}
	b.ops->close(b.ds);
	free(u);
}
END_TEST

/* Kill the session's TCP connection from the target side while a writer
 * is busy: the backend logs in again and the writes go on. */
START_TEST(connection_killed_reconnects)
{
	char *u = uri_for("vanish", "timeout=20"), key[VSM_BACKEND_KEY_MAX];
	vsm_backend_device_spec spec = { VSM_BACKEND_DEVICE_SPEC_VERSION, "r.raw", 8 << 20, "raw",
					 NULL, NULL, 0 };
	writer_arg w = { 0 };
	unsigned int of;
	pthread_t t;
	long before;
	bk b;
	int i;
	char cmd[400];

	bk_open(&b, u);
	bk_meta(&b);
	ck_ok(b.ops->device_create(b.ds, &spec, key, sizeof(key), &of));
	ck_ok(b.ops->device_open(&w.d, b.ds, key, 0));
	w.b = &b;
	pthread_create(&t, NULL, writer, &w);
	for (i = 0; i < 200 && w.ok < 20; i++)
		usleep(10000);
	/* Every I_T nexus of target 5 is ours. */
	snprintf(cmd, sizeof(cmd), "tgtadm -C %s --lld iscsi --mode target --op show --tid 5 | "
		 "awk '/I_T nexus:/ {print $3}' | while read sid; do tgtadm -C %s --lld iscsi "
		 "--mode conn --op delete --tid 5 --sid $sid --cid 0; done",
		 env("VSM_TEST_TGT_CPORT"), env("VSM_TEST_TGT_CPORT"));
	ck_assert_int_eq(system(cmd), 0);
	before = w.ok;
	for (i = 0; i < 1000 && w.rc == 0 && w.ok < before + 50; i++)
		usleep(10000);
	w.stop = 1;
	pthread_join(t, NULL);
	ck_assert_msg(w.rc == 0, "writer failed after the connection was killed: %s", w.msg);
	ck_assert_int_ge(w.ok, before + 50);
	w.d->ops->close(w.d);
	ck_ok(b.ops->device_delete(b.ds, key, 0));
	b.ops->close(b.ds);
	free(u);
}
END_TEST

/* ---------------------------------------------------------------- leases */

/* A holder in a child process: attach, say so, then keep renewing until
 * killed. */
static int holder(const char *uri, int ready_fd)
{
	vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
	vsm_ctx *ctx = NULL;
	vsm_container *c = NULL;
	char *dir = tmpdir("holder");

	o.state_dir = dir;
	if (vsm_ctx_open(&ctx, &o) < 0 ||
	    vsm_datastore_add(ctx, "ds", uri, 0) < 0 ||
	    vsm_host_add(ctx, "h1", NULL) < 0 || vsm_host_link(ctx, "h1", "ds", 0) < 0 ||
	    vsm_container_lookup(&c, ctx, "ds", "web") < 0 || vsm_attach(c, "h1", 0) < 0) {
		fprintf(stderr, "holder: %s\n", msg());
		return 1;
	}
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	for (;;)
		pause();
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define LEASE_TIMEOUT_MS 2000
#define LEASE_RENEW_MS 200

void lease_scenario(const char *uri, const char *proto);
void lease_scenario(const char *uri, const char *proto)
{
	vsm_ctx *a, *b;
	vsm_container *c = NULL, *cb = NULL;
	int p[2], st, rc, refused = 0;
	int64_t t_kill, t_end;
	char ch;
	pid_t pid;

	setenv("VSM_LEASE_TIMEOUT_MS", "2000", 1);
	setenv("VSM_LEASE_RENEW_MS", "200", 1);
	setenv("VSM_LEASE_PROTOCOL", proto, 1);
	a = ctx_on("lease-a", 0);
	ck_ok(vsm_datastore_add(a, "ds", uri, 0));
	ck_ok(vsm_host_add(a, "h0", NULL));
	ck_ok(vsm_host_link(a, "h0", "ds", 0));
	ck_ok(create1(&c, a, "ds", "web", 4 << 20));
	/* Two contexts as two hosts: one wins, the other is refused. */
	b = ctx_on("lease-b", 0);
	ck_ok(vsm_datastore_add(b, "ds", uri, 0));
	ck_ok(vsm_host_add(b, "h2", NULL));
	ck_ok(vsm_host_link(b, "h2", "ds", 0));
	ck_ok(vsm_container_lookup(&cb, b, "ds", "web"));
	ck_ok(vsm_attach(c, "h0", 0));
	ck_refused(vsm_attach(cb, "h2", 0), VSM_ELEASE, "h0");
	ck_ok(vsm_detach(c, 0));
	vsm_container_free(c);
	vsm_ctx_free(a);

	/* A holder in another process; killed, its lease lapses and the
	 * other host takes over, never before the timeout. */
	ck_assert_int_eq(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(holder(uri, p[1]));
	ck_assert_int_eq(read(p[0], &ch, 1), 1);
	ck_refused(vsm_attach(cb, "h2", 0), VSM_ELEASE, "h1");
	t_kill = now_ms();
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	for (;;) {
		rc = vsm_attach(cb, "h2", 0);
		t_end = now_ms();
		if (rc == 0)
			break;
		ck_assert_msg(rc == -VSM_ELEASE, "attach: %d %s", rc, msg());
		refused++;
		ck_assert_msg(t_end - t_kill < 60000, "no takeover after 60 s");
		usleep(50000);
	}
	ck_assert_int_gt(refused, 0);
	/* The last heartbeat was at most one renewal before the kill. */
	ck_assert_msg(t_end - t_kill >= LEASE_TIMEOUT_MS - LEASE_RENEW_MS,
		      "taken over %lld ms after the holder died; timeout %d, renewal %d",
		      (long long)(t_end - t_kill), LEASE_TIMEOUT_MS, LEASE_RENEW_MS);
	ck_assert_str_eq(vsm_container_attached_host(cb), "h2");
	ck_ok(vsm_container_destroy(cb, VSM_CONTAINER_DESTROY_FORCE));
	vsm_container_free(cb);
	vsm_ctx_free(b);
	close(p[0]);
	close(p[1]);
}

START_TEST(lease_plain_on_tgt)
{
	char *u = uri_for("lease", NULL);

	lease_scenario(u, "plain");
	free(u);
}
END_TEST

/* ---------------------------------------------------------------- COMPARE AND WRITE */

static char *caw_uri(const char *scheme)
{
	char *u = NULL;

	ck_assert_int_ge(asprintf(&u, "%s://127.0.0.1:%s/%s:caw", scheme,
				  env("VSM_TEST_ISTGT_PORT"), env("VSM_TEST_IQN")), 0);
	return u;
}

START_TEST(caw_refused_on_tgt)
{
	char *u = NULL;
	vsm_ctx *a = ctx_on("caw-tgt", 0);

	ck_assert_int_ge(asprintf(&u, "iscsi-caw://127.0.0.1:%s/%s:lease",
				  env("VSM_TEST_ISCSI_PORT"), env("VSM_TEST_IQN")), 0);
	ck_refused(vsm_datastore_add(a, "x", u, 0), VSM_ENOTSUP,
		   "does not support SCSI COMPARE AND WRITE");
	vsm_ctx_free(a);
	free(u);
}
END_TEST

typedef struct {
	bk *b;
	vsm_bdev_io *d;
	int rc;
	int done;
} counter_arg;

/* Increment a counter in the middle of a block with compare-and-write
 * only: with many threads on it, no increment may be lost. */
static void *counter_thread(void *p)
{
	counter_arg *a = p;
	int i;

	for (i = 0; i < 25 && a->rc == 0; i++) {
		for (;;) {
			uint8_t cur[8], next[8];
			uint64_t v;

			if ((a->rc = a->d->ops->read(a->d, cur, 8, 700)) < 0)
				return NULL;
			memcpy(&v, cur, 8);
			v++;
			memcpy(next, &v, 8);
			a->rc = a->d->ops->compare_and_write(a->d, cur, next, 8, 700);
			if (a->rc == -VSM_EMISMATCH) {
				a->rc = 0;
				continue;
			}
			break;
		}
		a->done++;
	}
	return NULL;
}

START_TEST(caw_on_istgt)
{
	char *u = caw_uri("iscsi-caw"), key[VSM_BACKEND_KEY_MAX];
	vsm_backend_device_spec spec = { VSM_BACKEND_DEVICE_SPEC_VERSION, "c.raw", 1 << 20, "raw",
					 NULL, NULL, 0 };
	vsm_bdev_io *d = NULL;
	uint8_t a[512], bb[512], r[512];
	counter_arg ca[8];
	pthread_t th[8];
	unsigned int of;
	uint64_t v;
	bk b;
	int i;

	bk_open(&b, u);
	bk_meta(&b);
	ck_ok(b.ops->device_create(b.ds, &spec, key, sizeof(key), &of));
	ck_ok(b.ops->device_open(&d, b.ds, key, 0));
	/* Probed on this LUN, reported in its own capabilities. */
	ck_assert(caps_of(d).flags & VSM_BDEV_CAP_COMPARE_AND_WRITE);
	/* Whole block: match writes, mismatch changes nothing. */
	fill(a, 512, 1);
	fill(bb, 512, 2);
	ck_ok(d->ops->write(d, a, 512, 4096, 0));
	ck_ok(d->ops->compare_and_write(d, a, bb, 512, 4096));
	ck_ok(d->ops->read(d, r, 512, 4096));
	ck_assert(memcmp(r, bb, 512) == 0);
	ck_assert_int_eq(d->ops->compare_and_write(d, a, a, 512, 4096), -VSM_EMISMATCH);
	ck_ok(d->ops->read(d, r, 512, 4096));
	ck_assert(memcmp(r, bb, 512) == 0);
	/* Part of a block. */
	ck_ok(d->ops->compare_and_write(d, bb + 10, a + 10, 100, 4096 + 10));
	ck_ok(d->ops->read(d, r, 512, 4096));
	ck_assert(memcmp(r + 10, a + 10, 100) == 0 && memcmp(r, bb, 10) == 0 &&
		  memcmp(r + 110, bb + 110, 402) == 0);
	ck_assert_int_eq(d->ops->compare_and_write(d, bb + 10, a + 10, 100, 4096 + 10),
			 -VSM_EMISMATCH);
	/* Contention: 8 threads x 25 increments. */
	memset(r, 0, sizeof(r));
	ck_ok(d->ops->write(d, r, 512, 512, 0));
	for (i = 0; i < 8; i++) {
		ca[i] = (counter_arg){ &b, d, 0, 0 };
		pthread_create(&th[i], NULL, counter_thread, &ca[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(ca[i].rc == 0, "thread %d: %d %s", i, ca[i].rc, msg());
	}
	ck_ok(d->ops->read(d, &v, 8, 700));
	ck_assert_uint_eq(v, 8 * 25);
	d->ops->close(d);
	ck_ok(b.ops->device_delete(b.ds, key, 0));
	b.ops->close(b.ds);
	free(u);
}
END_TEST

START_TEST(lease_caw_on_istgt)
{
	char *u = caw_uri("iscsi-caw"), *plain = caw_uri("iscsi");
	vsm_ctx *x;

	lease_scenario(u, "caw");
	/* One scheme now: iscsi:// probes the same LUN, finds COMPARE AND
	 * WRITE in its capabilities, and uses the datastore as formatted. */
	x = ctx_on("caw-plain", 0);
	ck_ok(vsm_datastore_add(x, "p", plain, 0));
	vsm_ctx_free(x);
	free(u);
	free(plain);
}
END_TEST

static Suite *caw_suite(void)
{
	Suite *s = suite_create("iscsi-caw");
	TCase *t = tcase_create("istgt");

	tcase_set_timeout(t, 180);
	tcase_add_test(t, caw_on_istgt);
	tcase_add_test(t, lease_caw_on_istgt);
	suite_add_tcase(s, t);
	return s;
}

static Suite *suite(void)
{
	Suite *s = suite_create("iscsi");
	TCase *t;

	t = tcase_create("uri");
	tcase_add_test(t, uri_refusals);
	suite_add_tcase(s, t);

	t = tcase_create("io");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, block_io_512);
	tcase_add_test(t, async_batch_512);
	tcase_add_test(t, block_io_4k);
	tcase_add_test(t, qcow2_on_512_lun);
	tcase_add_test(t, qcow2_on_4k_lun);
	tcase_add_test(t, wipe_on_delete);
	suite_add_tcase(s, t);

	t = tcase_create("containers");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, pool_containers);
	tcase_add_test(t, concurrent_claims);
	tcase_add_test(t, managed_mode);
	tcase_add_test(t, orphan_claims);
	suite_add_tcase(s, t);

	t = tcase_create("chap");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, chap_ok_and_deploy_auth);
	tcase_add_test(t, chap_refused);
	suite_add_tcase(s, t);

	t = tcase_create("faults");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, unreachable_portal);
	tcase_add_test(t, damaged_metadata_lun);
	tcase_add_test(t, lun_vanishes_mid_io);
	tcase_add_test(t, connection_killed_reconnects);
	suite_add_tcase(s, t);

	t = tcase_create("lease");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, lease_plain_on_tgt);
	tcase_add_test(t, caw_refused_on_tgt);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	const char *istgt = getenv("VSM_TEST_ISTGT_PORT");
	SRunner *sr = srunner_create(istgt && *istgt ? caw_suite() : suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
