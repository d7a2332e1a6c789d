/*
 * Suite "transfer": vsm_container_send / vsm_container_receive between
 * two contexts that share nothing (two state directories, two file
 * datastores) over a socketpair, the receiver on a thread: a two-way
 * transfer compared with qemu-img and its migration events, a second
 * one that finds its parents on the receiver, a cancel that leaves
 * nothing visible and a partial transfer to abort, and the refusals.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include <vsm/transfer.h>

#define SIZE (4u << 20)

static char *st1, *st2, *d1, *d2;
static vsm_ctx *c1, *c2;

static void setup(void)
{
	char *u;

	st1 = tu_dir("state1");
	st2 = tu_dir("state2");
	d1 = tu_dir("ds1");
	d2 = tu_dir("ds2");
	c1 = tu_ctx(st1);
	c2 = tu_ctx(st2);
	u = tu_uri(d1);
	ck_vsm(vsm_datastore_add(c1, "ds1", u, 0));
	free(u);
	u = tu_uri(d2);
	ck_vsm(vsm_datastore_add(c2, "ds2", u, 0));
	free(u);
}

static void teardown(void)
{
	vsm_ctx_free(c1);
	vsm_ctx_free(c2);
	free(st1);
	free(st2);
	free(d1);
	free(d2);
}

typedef struct {
	int fd;
	const char *name;
	int rc;
	char msg[512];
	vsm_transfer_stats st;
	vsm_container *out;
} rx;

static void *receiver(void *arg)
{
	rx *r = arg;
	vsm_receive_opts o = VSM_RECEIVE_OPTS_INIT;

	o.name = r->name;
	o.stats = &r->st;
	r->rc = vsm_container_receive(&r->out, c2, r->fd, r->fd, "ds2", &o);
	snprintf(r->msg, sizeof(r->msg), "%s", tu_msg());
	return NULL;
}

/* Send @c over a socketpair to a receiver thread; returns send's rc. */
static int transfer(vsm_container *c, vsm_send_opts *so, rx *r)
{
	pthread_t t;
	int sv[2], rc;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	r->fd = sv[1];
	ck_assert_int_eq(pthread_create(&t, NULL, receiver, r), 0);
	rc = vsm_container_send(c, sv[0], sv[0], so);
	/* The receiver sees the end of the stream if the sender stopped. */
	shutdown(sv[0], SHUT_RDWR);
	pthread_join(t, NULL);
	close(sv[0]);
	close(sv[1]);
	return rc;
}

static void fill(vsm_container *c, const char *ds, unsigned int seed)
{
	char cmd[1024];
	size_t i;

	for (i = 0; i < vsm_container_device_count(c); i++) {
		vsm_image *img = NULL;
		char *p = NULL;
		uint8_t buf[65536];
		size_t j;

		ck_assert(asprintf(&p, "%s/%s", !strcmp(ds, "ds1") ? d1 : d2,
				   vsm_device_key(vsm_container_device(c, i))) > 0);
		for (j = 0; j < sizeof(buf); j++)
			buf[j] = (uint8_t)(seed + j * 7 + i);
		ck_vsm(vsm_image_open(&img, p, NULL));
		ck_vsm(vsm_image_write(img, buf, sizeof(buf), (seed % 32) * 65536, 0));
		ck_vsm(vsm_image_close(img));
		free(p);
	}
	(void)cmd;
}

/* Device @i of @a (on ds1) and of @b (on ds2) read the same. */
static void same(vsm_container *a, vsm_container *b)
{
	size_t i;

	ck_vsm(vsm_container_refresh(a));
	ck_vsm(vsm_container_refresh(b));
	ck_assert_uint_eq(vsm_container_device_count(a), vsm_container_device_count(b));
	for (i = 0; i < vsm_container_device_count(a); i++) {
		char *cmd = NULL;
		const vsm_device *x = vsm_container_device(a, i), *y = vsm_container_device(b, i);

		ck_assert(asprintf(&cmd, "qemu-img compare -q -f %s -F %s '%s/%s' '%s/%s'",
				   vsm_format_name(vsm_device_format(x)),
				   vsm_format_name(vsm_device_format(y)), d1, vsm_device_key(x),
				   d2, vsm_device_key(y)) > 0);
		ck_assert_msg(system(cmd) == 0, "device %zu differs: %s", i, cmd);
		free(cmd);
	}
}

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static char ev_seen[4096];

static void on_event(const vsm_event *ev, void *payload)
{
	(void)payload;
	if (vsm_event_type_of(ev) != VSM_EVENT_MIGRATION)
		return;
	pthread_mutex_lock(&ev_lock);
	if (strlen(ev_seen) + 64 < sizeof(ev_seen)) {
		strncat(ev_seen, vsm_event_detail(ev), 40);
		strcat(ev_seen, ";");
	}
	pthread_mutex_unlock(&ev_lock);
}

static bool saw(const char *what)
{
	int i;
	bool yes = false;

	for (i = 0; i < 200 && !yes; i++) {
		pthread_mutex_lock(&ev_lock);
		yes = strstr(ev_seen, what) != NULL;
		pthread_mutex_unlock(&ev_lock);
		if (!yes)
			usleep(10000);
	}
	return yes;
}

START_TEST(two_way)
{
	vsm_container *c = NULL, *w = NULL;
	vsm_send_opts so = VSM_SEND_OPTS_INIT;
	vsm_transfer_stats st;
	rx r = {0};
	int id;

	ev_seen[0] = '\0';
	ck_vsm(vsm_event_register(c1, on_event, NULL, &id));
	ck_vsm(tu_create(&c, c1, "ds1", "vm", 2, SIZE));
	fill(c, "ds1", 1);
	ck_vsm(vsm_checkpoint_create(NULL, c, "k1", NULL));
	fill(c, "ds1", 2);
	so.stats = &st;
	ck_vsm(transfer(c, &so, &r));
	ck_assert_msg(r.rc == 0, "receive: %s", r.msg);
	ck_assert_str_eq(vsm_container_uuid(r.out), vsm_container_uuid(c));
	ck_assert_str_eq(vsm_container_name(r.out), "vm");
	ck_assert_uint_eq(st.bytes, r.st.bytes);
	ck_assert_uint_eq(st.layers_skipped, 0);
	same(c, r.out);
	ck_assert_msg(saw("start;"), "events: %s", ev_seen);
	ck_assert_msg(saw("pass 1 "), "events: %s", ev_seen);
	ck_assert_msg(saw("complete;"), "events: %s", ev_seen);
	vsm_container_free(r.out);

	/* A linked clone of vm's k1: its base is on the receiver already. */
	ck_vsm(vsm_checkpoint_clone(&w, c, "k1", "web", 0));
	fill(w, "ds1", 3);
	memset(&r, 0, sizeof(r));
	ck_vsm(transfer(w, &so, &r));
	ck_assert_msg(r.rc == 0, "receive: %s", r.msg);
	ck_assert_uint_ge(st.layers_skipped, 1);
	ck_assert_uint_eq(st.layers_skipped, r.st.layers_skipped);
	ck_assert_uint_lt(st.bytes, r.st.bytes + 1);
	same(w, r.out);
	vsm_container_free(r.out);
	ck_vsm(vsm_event_unregister(c1, id));
	vsm_container_free(w);
	vsm_container_free(c);
}
END_TEST

static int stop_soon(uint64_t done, uint64_t total, void *payload)
{
	int *n = payload;

	(void)done;
	(void)total;
	return ++*n >= 2;
}

START_TEST(cancel_and_abort)
{
	vsm_container *c = NULL, *x = NULL;
	vsm_send_opts so = VSM_SEND_OPTS_INIT;
	rx r = {0};
	int n = 0;

	ck_vsm(tu_create(&c, c1, "ds1", "vm", 2, SIZE));
	fill(c, "ds1", 5);
	so.progress = stop_soon;
	so.payload = &n;
	ck_assert_int_eq(transfer(c, &so, &r), -VSM_ECANCELED);
	ck_assert_msg(r.rc == -VSM_ECANCELED || r.rc == -VSM_EIO, "receive: %d %s", r.rc, r.msg);
	ck_assert_int_eq(vsm_container_lookup(&x, c2, "ds2", "vm"), -VSM_ENOTFOUND);
	ck_vsm(vsm_receive_abort(c2, vsm_container_uuid(c), 0));
	ck_vsm_refused(vsm_receive_abort(c2, vsm_container_uuid(c), 0), VSM_ENOTFOUND, "no partial");
	/* Sent again, it arrives. */
	so.progress = NULL;
	memset(&r, 0, sizeof(r));
	ck_vsm(transfer(c, &so, &r));
	ck_assert_msg(r.rc == 0, "receive: %s", r.msg);
	same(c, r.out);
	vsm_container_free(r.out);
	vsm_container_free(c);
}
END_TEST

START_TEST(refusals)
{
	vsm_container *c = NULL;
	vsm_send_opts so = VSM_SEND_OPTS_INIT;
	vsm_receive_opts ro = VSM_RECEIVE_OPTS_INIT;
	int p[2];

	ck_vsm(tu_create(&c, c1, "ds1", "vm", 1, SIZE));
	ck_assert_int_eq(pipe(p), 0);
	so.version = 0;
	ck_vsm_refused(vsm_container_send(c, p[1], -1, &so), VSM_EVERSION, "version");
	so.version = VSM_TRANSFER_OPTS_VERSION;
	so.flags = 0x80;
	ck_vsm_refused(vsm_container_send(c, p[1], -1, &so), VSM_EINVAL, "flags");
	so.flags = VSM_SEND_REMOVE_SOURCE;
	ck_vsm_refused(vsm_container_send(c, p[1], -1, &so), VSM_EINVAL, "two-way");
	so.flags = 0;
	so.passes = 2;
	so.checkpoint = "k1";
	ck_vsm_refused(vsm_container_send(c, p[1], -1, &so), VSM_EINVAL, "one pass");
	so.checkpoint = NULL;
	so.passes = 101;
	ck_vsm_refused(vsm_container_send(c, p[1], -1, &so), VSM_EINVAL, "at most");
	ro.flags = 1;
	ck_vsm_refused(vsm_container_receive(NULL, c2, p[0], -1, "ds2", &ro), VSM_EINVAL, "flags");
	ck_vsm_refused(vsm_container_receive(NULL, c2, -1, -1, "ds2", NULL), VSM_EINVAL, "stream");
	close(p[0]);
	close(p[1]);
	vsm_container_free(c);
}
END_TEST

/* The writer between passes: at the first tick of each pass but the
 * last (the cut of that pass is exported then), write new data to the
 * source's tops through a vsm_image handle; it travels in the next pass.
 * With @stop_in set, cancel in that pass instead. */
typedef struct {
	vsm_container *c;
	unsigned int passes, pass, writes, stop_in;
	uint64_t last_total;
} writer;

static int write_between(uint64_t done, uint64_t total, void *payload)
{
	writer *w = payload;

	(void)done;
	if (total == w->last_total)
		return 0;
	w->last_total = total;
	w->pass++;
	if (w->stop_in && w->pass == w->stop_in)
		return 1;
	if (!w->stop_in && w->pass < w->passes) {
		ck_vsm(vsm_container_refresh(w->c));
		fill(w->c, "ds1", 20 + w->pass);
		w->writes++;
	}
	return 0;
}

/* Cumulative stream bytes after pass @k in the events seen. */
static uint64_t pass_bytes(unsigned int k)
{
	char key[32], *p;

	snprintf(key, sizeof(key), "pass %u ", k);
	pthread_mutex_lock(&ev_lock);
	p = strstr(ev_seen, key);
	pthread_mutex_unlock(&ev_lock);
	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static size_t count_ckpts(vsm_container *c, bool *temp)
{
	vsm_checkpoint **l = NULL;
	size_t n = 0, i;

	ck_vsm(vsm_checkpoint_list(&l, &n, c));
	*temp = false;
	for (i = 0; i < n; i++)
		if (!strncmp(vsm_checkpoint_name(l[i]), ".xfer-", 6))
			*temp = true;
	vsm_checkpoint_list_free(l, n);
	return n;
}

/* Raw copies of the source's devices, to find it unchanged later. */
static void save_raw(vsm_container *c, const char *tag)
{
	size_t i;

	ck_vsm(vsm_container_refresh(c));
	for (i = 0; i < vsm_container_device_count(c); i++) {
		char *cmd = NULL;
		const vsm_device *x = vsm_container_device(c, i);

		ck_assert(asprintf(&cmd, "qemu-img convert -O raw '%s/%s' '%s/%s-%zu.raw'", d1,
				   vsm_device_key(x), st1, tag, i) > 0);
		ck_assert_msg(system(cmd) == 0, "%s", cmd);
		free(cmd);
	}
}

static void same_raw(vsm_container *c, const char *tag)
{
	size_t i;

	ck_vsm(vsm_container_refresh(c));
	for (i = 0; i < vsm_container_device_count(c); i++) {
		char *cmd = NULL;
		const vsm_device *x = vsm_container_device(c, i);

		ck_assert(asprintf(&cmd, "qemu-img compare -q -F raw '%s/%s' '%s/%s-%zu.raw'", d1,
				   vsm_device_key(x), st1, tag, i) > 0);
		ck_assert_msg(system(cmd) == 0, "device %zu changed: %s", i, cmd);
		free(cmd);
	}
}

START_TEST(passes)
{
	vsm_container *c = NULL;
	vsm_send_opts so = VSM_SEND_OPTS_INIT;
	vsm_transfer_stats st;
	writer w = {0};
	rx r = {0};
	unsigned int seed;
	uint64_t b1, b2, b3;
	bool temp;
	int id;

	ev_seen[0] = '\0';
	ck_vsm(vsm_event_register(c1, on_event, NULL, &id));
	ck_vsm(tu_create(&c, c1, "ds1", "vm", 2, SIZE));
	for (seed = 1; seed <= 8; seed++)
		fill(c, "ds1", seed);
	ck_vsm(vsm_checkpoint_create(NULL, c, "k1", NULL));
	fill(c, "ds1", 9);

	/* Cancelled in pass 2: the source as it was, no temporary
	 * checkpoint, nothing on the receiver. */
	save_raw(c, "before");
	w.c = c;
	w.passes = 3;
	w.stop_in = 2;
	so.passes = 3;
	so.progress = write_between;
	so.payload = &w;
	ck_assert_int_eq(transfer(c, &so, &r), -VSM_ECANCELED);
	ck_assert_uint_eq(count_ckpts(c, &temp), 1);
	ck_assert(!temp);
	same_raw(c, "before");
	{
		vsm_container *x = NULL;

		ck_assert_int_eq(vsm_container_lookup(&x, c2, "ds2", "vm"), -VSM_ENOTFOUND);
	}
	ck_vsm(vsm_receive_abort(c2, vsm_container_uuid(c), 0));
	/* The cancelled send's events are in before the next send's. */
	ck_assert_msg(saw("abort "), "events: %s", ev_seen);

	/* Three passes, the source written between them. */
	memset(&w, 0, sizeof(w));
	memset(&r, 0, sizeof(r));
	w.c = c;
	w.passes = 3;
	so.stats = &st;
	ev_seen[0] = '\0';
	ck_vsm(transfer(c, &so, &r));
	ck_assert_msg(r.rc == 0, "receive: %s", r.msg);
	ck_assert_uint_eq(w.writes, 2);
	ck_assert_uint_eq(st.passes, 3);
	ck_assert_uint_eq(r.st.passes, 3);
	ck_assert_uint_eq(st.bytes, r.st.bytes);
	ck_assert_msg(saw("complete;"), "events: %s", ev_seen);
	b1 = pass_bytes(1);
	b2 = pass_bytes(2);
	b3 = pass_bytes(3);
	ck_assert_msg(b1 && b2 > b1 && b3 > b2 && b3 == st.bytes, "events: %s", ev_seen);
	/* The last pass carries what was written after the last cut only. */
	ck_assert_msg(b3 - b2 > 2 * 65536 && b3 - b2 < b1 / 4, "pass 1: %llu bytes, pass 3: %llu",
		      (unsigned long long)b1, (unsigned long long)(b3 - b2));
	fprintf(stderr, "passes: %llu %llu %llu bytes\n", (unsigned long long)b1,
		(unsigned long long)(b2 - b1), (unsigned long long)(b3 - b2));
	same(c, r.out);
	ck_assert_uint_eq(count_ckpts(c, &temp), 1);
	ck_assert(!temp);
	ck_assert_uint_eq(count_ckpts(r.out, &temp), 1);
	ck_assert(!temp);
	vsm_container_free(r.out);
	ck_vsm(vsm_event_unregister(c1, id));
	vsm_container_free(c);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("transfer");
	TCase *tc = tcase_create("transfer");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, two_way);
	tcase_add_test(tc, cancel_and_abort);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, passes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
