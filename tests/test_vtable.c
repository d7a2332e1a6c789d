/*
 * Suite "vtable": vtable v2 (struct vsm_datastore_ops, struct
 * vsm_bdev_io_ops): a 0.1 table through the shim, capabilities decided
 * per device, asynchronous batches emulated and native, the initialiser
 * macros, and the version and size checks of both tables.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "bdev.h"
#include "ctx.h"
#include "cow/cow.h"
#include "backends/file/file.h"
#include "v01_backend.h"

static vsm_ctx *ctx;
static char *state;

static void setup(void)
{
	state = tu_dir("state");
	ctx = tu_ctx(state);
}

static void teardown(void)
{
	vsm_ctx_free(ctx);
	free(state);
}

static char *uri_for(const char *scheme, const char *dirname)
{
	char *dir = tu_dir(dirname), *u = malloc(strlen(dir) + 64);

	sprintf(u, "%s://%s", scheme, dir);
	free(dir);
	return u;
}

static vsm_bdev *open_dev(const char *ds_name, const vsm_container *c, size_t i)
{
	vsm_dstore *ds;
	vsm_bdev *b = NULL;

	ck_vsm(vsm__ds_get(&ds, ctx, ds_name));
	ck_vsm(vsm__ds_open_device(ds, vsm_device_key(vsm_container_device(c, i)), 0, &b));
	return b;
}

/* ------------------------------------------------------------ 0.1 shim */

static void v01_flow(int with_caw)
{
	const char *scheme = with_caw ? "v01" : "v01nocaw";
	char *uri = uri_for(scheme, with_caw ? "v01" : "v01n");
	vsm_container *c = NULL;
	uint8_t w[4096], r[4096], x[512];
	vsm_bdev *b;

	ck_vsm(v01_backend_register(ctx, with_caw));
	ck_vsm(vsm_datastore_add(ctx, "old", uri, VSM_DATASTORE_ADD_CREATE));
	ck_vsm(tu_create(&c, ctx, "old", "web", 2, 1 << 20));
	ck_assert_uint_eq(vsm_container_device_count(c), 2);
	b = open_dev("old", c, 1);
	ck_assert_int_eq(vsm_bdev_has_compare_and_write(b), with_caw);
	ck_assert_int_eq(vsm_bdev_has_native_async(b), 0);
	ck_assert_uint_eq(vsm_bdev_block_size(b), 512);
	for (size_t i = 0; i < sizeof(w); i++)
		w[i] = (uint8_t)(i * 7 + 1);
	ck_vsm(vsm_bdev_write(b, w, sizeof(w), 8192));
	ck_vsm(vsm_bdev_read(b, r, sizeof(r), 8192));
	ck_assert(memcmp(w, r, sizeof(w)) == 0);
	memset(x, 0x5a, sizeof(x));
	if (with_caw) {
		ck_vsm(vsm_bdev_compare_and_write(b, w, x, sizeof(x), 8192));
		ck_assert_int_eq(vsm_bdev_compare_and_write(b, w, x, sizeof(x), 8192),
				 -VSM_EMISMATCH);
		ck_vsm(vsm_bdev_read(b, r, sizeof(x), 8192));
		ck_assert(memcmp(r, x, sizeof(x)) == 0);
	} else {
		ck_vsm_refused(vsm_bdev_compare_and_write(b, w, x, sizeof(x), 8192),
			       VSM_ENOTSUP, "compare-and-write");
	}
	ck_vsm(vsm_bdev_flush(b));
	vsm_bdev_close(b);
	ck_vsm(vsm_container_destroy(c, 0));
	vsm_container_free(c);
	free(uri);
}

START_TEST(v01_table_works_through_shim)
{
	v01_flow(1);
}
END_TEST

START_TEST(v01_table_without_caw_works)
{
	v01_flow(0);
}
END_TEST

/* ------------------------------------------ a v2 backend, caps per device */

/* Device d1 of a container (key "...-d1...") has no compare-and-write: the
 * same table, different answers from query(). Everything else is the
 * file backend's. */
typedef struct {
	vsm_bdev_io io;
	vsm_bdev_io *in;
	bool caw;
} mixed_dev;

#define IN(io) (((mixed_dev *)(io))->in)

static void m_close(vsm_bdev_io *io)
{
	IN(io)->ops->close(IN(io));
	free(io);
}

static int m_read(vsm_bdev_io *io, void *buf, size_t len, uint64_t off)
{
	return IN(io)->ops->read(IN(io), buf, len, off);
}

static int m_write(vsm_bdev_io *io, const void *buf, size_t len, uint64_t off,
		   unsigned int flags)
{
	return IN(io)->ops->write(IN(io), buf, len, off, flags);
}

static int m_flush(vsm_bdev_io *io)
{
	return IN(io)->ops->flush(IN(io));
}

static int m_size(vsm_bdev_io *io, uint64_t *out)
{
	return IN(io)->ops->get_size(IN(io), out);
}

static int m_query(vsm_bdev_io *io, vsm_bdev_caps *out)
{
	out->flags = ((mixed_dev *)io)->caw ? VSM_BDEV_CAP_COMPARE_AND_WRITE : 0;
	out->logical_block_size = 512;
	return 0;
}

static int m_caw(vsm_bdev_io *io, const void *e, const void *buf, size_t len, uint64_t off)
{
	if (!((mixed_dev *)io)->caw)
		return vsm_error_set(VSM_ENOTSUP, "this device has no compare-and-write");
	return IN(io)->ops->compare_and_write(IN(io), e, buf, len, off);
}

static const struct vsm_bdev_io_ops mixed_io = VSM_BDEV_IO_OPS_INIT(
	.close = m_close, .read = m_read, .write = m_write, .flush = m_flush,
	.get_size = m_size, .query = m_query, .compare_and_write = m_caw);

static int m_wrap(vsm_bdev_io **out, int rc, vsm_bdev_io *in, bool caw)
{
	mixed_dev *d;

	if (rc < 0)
		return rc;
	d = calloc(1, sizeof(*d));
	d->io.ops = &mixed_io;
	d->in = in;
	d->caw = caw;
	*out = &d->io;
	return 0;
}

static int m_open(vsm_backend_ds **out, const char *uri, const vsm_backend_open_args *args)
{
	char u[4200];

	snprintf(u, sizeof(u), "file%s", strchr(uri, ':'));
	return vsm__file_backend_ops.open(out, u, args);
}

static int m_device_open(vsm_bdev_io **out, vsm_backend_ds *ds, const char *key,
			 unsigned int flags)
{
	vsm_bdev_io *in = NULL;
	bool odd = strstr(key, "-d1") != NULL;

	int rc = vsm__file_backend_ops.device_open(&in, ds, key, flags);

	return m_wrap(out, rc, in, !odd);
}

/* The metadata device has no CAW either: leases and the metadata lock
 * take Disk Paxos on it. */
static int m_meta_open(vsm_bdev_io **out, vsm_backend_ds *ds, uint64_t min, unsigned int flags)
{
	vsm_bdev_io *in = NULL;

	int rc = vsm__file_backend_ops.meta_open(&in, ds, min, flags);

	return m_wrap(out, rc, in, false);
}

static const char *const mixed_aliases[] = { "mixed-alias", NULL };

static struct vsm_datastore_ops mixed_ops(void)
{
	struct vsm_datastore_ops o = vsm__file_backend_ops;

	o.scheme = "mixed";
	o.scheme_aliases = mixed_aliases;
	o.open = m_open;
	o.device_open = m_device_open;
	o.meta_open = m_meta_open;
	return o;
}

START_TEST(caps_are_per_device)
{
	struct vsm_datastore_ops o = mixed_ops();
	char *uri = uri_for("mixed", "mixed");
	vsm_container *c = NULL;
	vsm_dstore *ds;
	vsm_bdev *b0, *b1;

	ck_vsm(vsm_datastore_ops_register(ctx, &o, NULL));
	ck_vsm(vsm_datastore_add(ctx, "m", uri, VSM_DATASTORE_ADD_CREATE));
	ck_vsm(tu_create(&c, ctx, "m", "web", 2, 1 << 20));
	b0 = open_dev("m", c, 0);
	b1 = open_dev("m", c, 1);
	ck_assert(vsm_bdev_has_compare_and_write(b0));
	ck_assert(!vsm_bdev_has_compare_and_write(b1));
	ck_vsm_refused(vsm_bdev_compare_and_write(b1, "a", "b", 1, 0), VSM_ENOTSUP,
		       "compare-and-write");
	ck_vsm(vsm__ds_get(&ds, ctx, "m"));
	ck_assert(!vsm_bdev_has_compare_and_write(ds->meta->bdev));
	vsm_bdev_close(b0);
	vsm_bdev_close(b1);
	ck_vsm(vsm_container_destroy(c, 0));
	vsm_container_free(c);
	free(uri);
}
END_TEST

START_TEST(scheme_alias_reaches_the_table)
{
	struct vsm_datastore_ops o = mixed_ops();
	char *uri = uri_for("mixed-alias", "alias");

	ck_vsm(vsm_datastore_ops_register(ctx, &o, NULL));
	ck_vsm(vsm_datastore_add(ctx, "a", uri, VSM_DATASTORE_ADD_CREATE));
	o.scheme = "other";
	ck_vsm_refused(vsm_datastore_ops_register(ctx, &o, NULL), VSM_EEXISTS, "mixed-alias");
	free(uri);
}
END_TEST

/* ------------------------------------------------------ async batches */

/* A memory device: with native submit, batches are run by a thread of
 * its own, last request first, to show the core needs neither ordering
 * nor completion on the submitting thread. */
typedef struct {
	vsm_bdev_io io;
	uint8_t data[1 << 20];
	int flushes;
	pthread_t worker;
	bool worker_started;
} mem_dev;

static int mem_read(vsm_bdev_io *io, void *buf, size_t len, uint64_t off)
{
	mem_dev *m = (mem_dev *)io;

	if (off + len > sizeof(m->data))
		return vsm_error_set(VSM_EIO, "read past the end");
	memcpy(buf, m->data + off, len);
	return 0;
}

static int mem_write(vsm_bdev_io *io, const void *buf, size_t len, uint64_t off,
		     unsigned int flags)
{
	mem_dev *m = (mem_dev *)io;

	ck_assert_uint_eq(flags, 0); /* no FUA capability: never asked */
	if (off + len > sizeof(m->data))
		return vsm_error_set(VSM_ENOSPC, "write past the end");
	memcpy(m->data + off, buf, len);
	return 0;
}

static int mem_flush(vsm_bdev_io *io)
{
	((mem_dev *)io)->flushes++;
	return 0;
}

static int mem_size(vsm_bdev_io *io, uint64_t *out)
{
	*out = sizeof(((mem_dev *)io)->data);
	return 0;
}

static void mem_close(vsm_bdev_io *io)
{
	mem_dev *m = (mem_dev *)io;

	if (m->worker_started)
		pthread_join(m->worker, NULL);
	free(m);
}

typedef struct {
	mem_dev *m;
	vsm_bdev_req **reqs;
	size_t n;
} batch;

static void *mem_worker(void *arg)
{
	batch *b = arg;

	for (size_t i = b->n; i-- > 0;) {
		vsm_bdev_req *r = b->reqs[i];

		r->result = r->op == VSM_BDEV_OP_READ ? mem_read(&b->m->io, r->buf, r->len, r->off) :
			    r->op == VSM_BDEV_OP_WRITE ?
			    mem_write(&b->m->io, r->buf, r->len, r->off, 0) : mem_flush(&b->m->io);
		r->done(r);
	}
	free(b->reqs);
	free(b);
	return NULL;
}

static size_t max_batch;

static int mem_submit(vsm_bdev_io *io, vsm_bdev_req *const *reqs, size_t n)
{
	mem_dev *m = (mem_dev *)io;
	batch *b = calloc(1, sizeof(*b));

	if (n > max_batch)
		max_batch = n;
	if (m->worker_started)
		pthread_join(m->worker, NULL);
	b->m = m;
	b->n = n;
	b->reqs = calloc(n, sizeof(*b->reqs));
	memcpy(b->reqs, reqs, n * sizeof(*reqs));
	m->worker_started = pthread_create(&m->worker, NULL, mem_worker, b) == 0;
	return m->worker_started ? 0 : vsm_error_set(VSM_ENOMEM, "no thread");
}

static int mem_query(vsm_bdev_io *io, vsm_bdev_caps *out)
{
	out->flags = io->ops->submit ? VSM_BDEV_CAP_NATIVE_ASYNC : 0;
	return 0;
}

static const struct vsm_bdev_io_ops mem_sync_ops = VSM_BDEV_IO_OPS_INIT(
	.close = mem_close, .read = mem_read, .write = mem_write, .flush = mem_flush,
	.get_size = mem_size, .query = mem_query);
static const struct vsm_bdev_io_ops mem_async_ops = VSM_BDEV_IO_OPS_INIT(
	.close = mem_close, .read = mem_read, .write = mem_write, .flush = mem_flush,
	.get_size = mem_size, .query = mem_query, .submit = mem_submit);

static vsm_bdev *mem_open(const struct vsm_bdev_io_ops *ops)
{
	mem_dev *m = calloc(1, sizeof(*m));
	vsm_bdev *b = NULL;

	m->io.ops = ops;
	ck_vsm(vsm_bdev_wrap(&b, &m->io, "mem", false));
	return b;
}

/* The same pattern of non-overlapping writes, a flush, and reads. */
static void pattern(vsm_bdev *b, uint8_t *out)
{
	enum { N = 32, LEN = 8192 };
	vsm_bdev_req reqs[N + 1];
	static uint8_t bufs[N][LEN];
	uint32_t seed = 12345;

	memset(reqs, 0, sizeof(reqs));
	for (int i = 0; i < N; i++) {
		for (int j = 0; j < LEN; j++) {
			seed = seed * 1103515245 + 12345;
			bufs[i][j] = (uint8_t)(seed >> 16);
		}
		reqs[i].op = VSM_BDEV_OP_WRITE;
		reqs[i].off = (uint64_t)((i * 13) % N) * LEN + (uint64_t)(i % 3) * 100;
		reqs[i].buf = bufs[i];
		reqs[i].len = LEN - 300;
	}
	reqs[N].op = VSM_BDEV_OP_FLUSH;
	ck_vsm(vsm_bdev_run(b, reqs, N));
	ck_vsm(vsm_bdev_run(b, &reqs[N], 1));
	memset(reqs, 0, sizeof(reqs));
	for (int i = 0; i < N; i++) {
		reqs[i].op = VSM_BDEV_OP_READ;
		reqs[i].off = (uint64_t)i * LEN;
		reqs[i].buf = out + (size_t)i * LEN;
		reqs[i].len = LEN;
	}
	ck_vsm(vsm_bdev_run(b, reqs, N));
}

START_TEST(submit_emulated_and_native_agree)
{
	vsm_bdev *e = mem_open(&mem_sync_ops), *n = mem_open(&mem_async_ops);
	uint8_t *de = calloc(1, 32 * 8192), *dn = calloc(1, 32 * 8192);
	vsm_bdev_req bad = { .op = VSM_BDEV_OP_READ, .off = 2u << 20, .len = 512 };
	uint8_t buf[512];

	ck_assert(!vsm_bdev_has_native_async(e));
	ck_assert(vsm_bdev_has_native_async(n));
	pattern(e, de);
	pattern(n, dn);
	ck_assert(memcmp(de, dn, 32 * 8192) == 0);
	ck_assert_int_eq(((mem_dev *)e->io)->flushes, 1);
	ck_assert_int_eq(((mem_dev *)n->io)->flushes, 1);
	/* A failed request's message reaches the waiter, labelled. */
	bad.buf = buf;
	ck_vsm_refused(vsm_bdev_run(n, &bad, 1), VSM_EIO, "mem: read past the end");
	ck_vsm_refused(vsm_bdev_run(e, &bad, 1), VSM_EIO, "mem: read past the end");
	/* FUA on a device without it: the core adds a flush. */
	ck_vsm(vsm_bdev_write_flags(e, buf, sizeof(buf), 0, VSM_BDEV_WRITE_FUA));
	ck_assert_int_eq(((mem_dev *)e->io)->flushes, 2);
	vsm_bdev_close(e);
	vsm_bdev_close(n);
	free(de);
	free(dn);
}
END_TEST

/* The qcow2 engine: clusters written in reverse order land at host
 * offsets in reverse order, so one guest read of them all is several
 * discontiguous extents, which go to the device as one batch. */
static void qcow2_scatter(const struct vsm_bdev_io_ops *ops, uint8_t *out)
{
	vsm_cow_create_opts co = { 0 };
	vsm_bdev *b = mem_open(ops);
	vsm_cow *c = NULL;
	uint8_t *w = malloc(256 << 10);

	co.size = 256 << 10;
	co.cluster_size = 16 << 10;
	ck_vsm(vsm_cow_create_qcow2(b, "mem", &co));
	ck_vsm(vsm_cow_open(&c, b, "mem", NULL));
	for (int i = 0; i < (256 << 10); i++)
		w[i] = (uint8_t)(i * 31 + (i >> 12));
	for (int k = 15; k >= 0; k -= 2)
		ck_vsm(vsm_cow_write(c, w + k * (16 << 10), 16 << 10, (uint64_t)k * (16 << 10)));
	/* One write over all of it: half overwrites in place, half allocates. */
	ck_vsm(vsm_cow_write(c, w + 100, (256 << 10) - 200, 100));
	ck_vsm(vsm_cow_read(c, out, 256 << 10, 0));
	ck_assert(memcmp(out + 100, w + 100, (256 << 10) - 200) == 0);
	ck_vsm(vsm_cow_close(c));
	free(w);
}

START_TEST(qcow2_batches_discontiguous_extents)
{
	uint8_t *a = malloc(256 << 10), *n = malloc(256 << 10);

	max_batch = 0;
	qcow2_scatter(&mem_sync_ops, a);
	ck_assert_uint_eq(max_batch, 0);
	qcow2_scatter(&mem_async_ops, n);
	ck_assert_msg(max_batch > 1, "largest batch %zu", max_batch);
	ck_assert(memcmp(a, n, 256 << 10) == 0);
	free(a);
	free(n);
}
END_TEST

START_TEST(submit_refuses_writes_on_readonly)
{
	mem_dev *m = calloc(1, sizeof(*m));
	vsm_bdev *b = NULL;
	uint8_t buf[512] = { 0 };
	vsm_bdev_req w = { .op = VSM_BDEV_OP_WRITE, .buf = buf, .len = 512 };

	m->io.ops = &mem_async_ops;
	ck_vsm(vsm_bdev_wrap(&b, &m->io, "ro", true));
	ck_vsm_refused(vsm_bdev_run(b, &w, 1), VSM_EPERM, "read-only");
	vsm_bdev_close(b);
}
END_TEST

/* ------------------------------------------- macros, versions, sizes */

START_TEST(init_macros_set_version_and_size)
{
	static const struct vsm_bdev_io_ops io = VSM_BDEV_IO_OPS_INIT(.close = mem_close);
	static const struct vsm_datastore_ops ds = VSM_DATASTORE_OPS_INIT(.scheme = "x");
	static const struct vsm_backend_ops v1 = VSM_BACKEND_OPS_INIT(.scheme = "y");

	ck_assert_uint_eq(io.version, VSM_BDEV_IO_OPS_VERSION);
	ck_assert_uint_eq(io.size, sizeof(struct vsm_bdev_io_ops));
	ck_assert(io.close == mem_close);
	ck_assert_uint_eq(ds.version, VSM_DATASTORE_OPS_VERSION);
	ck_assert_uint_eq(ds.size, sizeof(struct vsm_datastore_ops));
	ck_assert_str_eq(ds.scheme, "x");
	ck_assert_uint_eq(v1.version, VSM_BACKEND_OPS_VERSION);
	ck_assert_uint_eq(v1.size, sizeof(struct vsm_backend_ops));
}
END_TEST

START_TEST(datastore_ops_version_and_size_checked)
{
	struct vsm_datastore_ops o = mixed_ops();
	union {
		struct vsm_datastore_ops ops;
		unsigned char bytes[sizeof(struct vsm_datastore_ops) + 64];
	} u;

	o.version = 0;
	ck_vsm_refused(vsm_datastore_ops_register(ctx, &o, NULL), VSM_EVERSION, "mixed");
	o.version = VSM_DATASTORE_OPS_VERSION + 1;
	ck_vsm_refused(vsm_datastore_ops_register(ctx, &o, NULL), VSM_EVERSION, "not supported");
	o.version = VSM_DATASTORE_OPS_VERSION;
	o.size = 16;
	ck_vsm_refused(vsm_datastore_ops_register(ctx, &o, NULL), VSM_EINVAL, "size");
	o = mixed_ops();
	o.device_open = NULL;
	ck_vsm_refused(vsm_datastore_ops_register(ctx, &o, NULL), VSM_EINVAL, "device_open");
	/* Longer than this library knows: only the known part is read. */
	memset(u.bytes, 0xA5, sizeof(u.bytes));
	u.ops = mixed_ops();
	u.ops.size = (uint32_t)sizeof(u.bytes);
	ck_vsm(vsm_datastore_ops_register(ctx, &u.ops, NULL));
}
END_TEST

static int closes;

static void count_close(vsm_bdev_io *io)
{
	closes++;
	free(io);
}

START_TEST(bdev_io_ops_version_and_size_checked)
{
	struct vsm_bdev_io_ops ops = mem_sync_ops;
	vsm_bdev_io *io;
	vsm_bdev *b = NULL;

	ops.close = count_close;
	ops.version = 0;
	io = calloc(1, sizeof(*io));
	io->ops = &ops;
	ck_vsm_refused(vsm_bdev_wrap(&b, io, "dev0", false), VSM_EVERSION, "dev0");
	ck_assert_int_eq(closes, 1);
	ops.version = VSM_BDEV_IO_OPS_VERSION + 1;
	io = calloc(1, sizeof(*io));
	io->ops = &ops;
	ck_vsm_refused(vsm_bdev_wrap(&b, io, "dev1", false), VSM_EVERSION, "not supported");
	ck_assert_int_eq(closes, 2);
	ops.version = VSM_BDEV_IO_OPS_VERSION;
	ops.size = 16;
	io = calloc(1, sizeof(*io));
	io->ops = &ops;
	ck_vsm_refused(vsm_bdev_wrap(&b, io, "dev2", false), VSM_EINVAL, "size");
	ops.size = sizeof(ops);
	ops.read = NULL;
	io = calloc(1, sizeof(*io));
	io->ops = &ops;
	ck_vsm_refused(vsm_bdev_wrap(&b, io, "dev3", false), VSM_EINVAL, "'read'");
	ck_assert_int_eq(closes, 4);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vtable");
	TCase *t = tcase_create("vtable");

	tcase_add_unchecked_fixture(t, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, v01_table_works_through_shim);
	tcase_add_test(t, v01_table_without_caw_works);
	tcase_add_test(t, caps_are_per_device);
	tcase_add_test(t, scheme_alias_reaches_the_table);
	tcase_add_test(t, submit_emulated_and_native_agree);
	tcase_add_test(t, submit_refuses_writes_on_readonly);
	tcase_add_test(t, qcow2_batches_discontiguous_extents);
	tcase_add_test(t, init_macros_set_version_and_size);
	tcase_add_test(t, datastore_ops_version_and_size_checked);
	tcase_add_test(t, bdev_io_ops_version_and_size_checked);
	suite_add_tcase(s, t);
	return tu_run(s);
}
