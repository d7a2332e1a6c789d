/*
 * bench_lease: what a lease costs and how long a dead holder blocks its
 * container, for libvsm (compare-and-write protocol and plain Disk Paxos
 * protocol) and for sanlock, all on files in the same directory.
 *
 *   join+acquire   a fresh host joins (heartbeat slot / add_lockspace)
 *                  and acquires one lease
 *   acq+rel        an uncontended acquire followed by a release (mean)
 *   attach+detach  libvsm only: vsm_attach + vsm_detach, which also
 *                  write the container record under the lease
 *   takeover       from SIGKILL of the holder (its process for libvsm,
 *                  its sanlock daemon for sanlock) to the lease acquired
 *                  by another host
 *
 * libvsm runs with its default datastore timings (8 s timeout, 1 s
 * renewal); sanlock with io_timeout 1 s, its smallest, and no watchdog.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "../backends/file/file.h"
#include "internal.h"
#include "lease/lease.h"

#ifdef HAVE_SANLOCK
#include <sanlock.h>
#include <sanlock_admin.h>
#include <sanlock_resource.h>
#endif

typedef struct {
	const char *name;
	double join_ms, acq_rel_ms, attach_ms, takeover_ms;
	double alt_ms, io_same, io_alt; /* libvsm only */
	bool ok;
} row;

/* libvsm's datastores are reached through "count://DIR", the file
 * backend with its block I/O counted, so the table can say how many I/Os
 * an operation takes: page-cache latencies say little about a LUN. */
static long n_io;

static int cnt_open(vsm_backend_ds **out, const char *uri, const vsm_backend_open_args *args)
{
	char u[4200];

	snprintf(u, sizeof(u), "file%s", uri + strlen("count"));
	return vsm__file_backend_ops.open(out, u, args);
}

/* The file backend's devices with their table swapped for a counting copy. */
static struct vsm_bdev_io_ops cnt_io;
static const struct vsm_bdev_io_ops *file_io;

static int cnt_read(vsm_bdev_io *b, void *buf, size_t len, uint64_t off)
{
	__atomic_add_fetch(&n_io, 1, __ATOMIC_RELAXED);
	return file_io->read(b, buf, len, off);
}

static int cnt_write(vsm_bdev_io *b, const void *buf, size_t len, uint64_t off,
		     unsigned int flags)
{
	__atomic_add_fetch(&n_io, 1, __ATOMIC_RELAXED);
	return file_io->write(b, buf, len, off, flags);
}

static int cnt_caw(vsm_bdev_io *b, const void *exp, const void *buf, size_t len,
		   uint64_t off)
{
	__atomic_add_fetch(&n_io, 1, __ATOMIC_RELAXED);
	return file_io->compare_and_write(b, exp, buf, len, off);
}

static int cnt_wrap(vsm_bdev_io **out, int rc)
{
	if (rc < 0)
		return rc;
	if (!file_io) {
		file_io = (*out)->ops;
		cnt_io = *file_io;
		cnt_io.read = cnt_read;
		cnt_io.write = cnt_write;
		cnt_io.compare_and_write = cnt_caw;
	}
	(*out)->ops = &cnt_io;
	return 0;
}

static int cnt_device_open(vsm_bdev_io **out, vsm_backend_ds *ds, const char *key,
			   unsigned int flags)
{
	return cnt_wrap(out, vsm__file_backend_ops.device_open(out, ds, key, flags));
}

static int cnt_meta_open(vsm_bdev_io **out, vsm_backend_ds *ds, uint64_t min,
			 unsigned int flags)
{
	return cnt_wrap(out, vsm__file_backend_ops.meta_open(out, ds, min, flags));
}

static long io_now(void)
{
	return __atomic_load_n(&n_io, __ATOMIC_RELAXED);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static char bench_root[800];
static pid_t main_pid;

static void rm_tree(const char *dir)
{
	char cmd[1000];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_lease: could not remove %s\n", dir);
}

static void die(const char *what)
{
	const vsm_error *e = vsm_error_last();

	fprintf(stderr, "bench_lease: %s: %s\n", what, e && e->message ? e->message : strerror(errno));
	if (bench_root[0] && getpid() == main_pid)
		rm_tree(bench_root);
	exit(1);
}

static vsm_ctx *host_ctx(const char *root, const char *host, const char *uri)
{
	vsm_ctx_opts o = VSM_CTX_OPTS_INIT;
	char dir[4096];
	vsm_ctx *ctx;
	int rc;

	struct vsm_datastore_ops ops = vsm__file_backend_ops;

	snprintf(dir, sizeof(dir), "%s/state-%s", root, host);
	o.state_dir = dir;
	if (vsm_ctx_open(&ctx, &o) < 0)
		die("context");
	ops.scheme = "count";
	ops.open = cnt_open;
	ops.device_open = cnt_device_open;
	ops.meta_open = cnt_meta_open;
	if (vsm_datastore_ops_register(ctx, &ops, NULL) < 0)
		die("register");
	rc = vsm_datastore_add(ctx, "ds", uri, 0);
	if ((rc < 0 && rc != -VSM_EEXISTS) || vsm_host_add(ctx, host, NULL) < 0 ||
	    vsm_host_link(ctx, host, "ds", 0) < 0)
		die("host setup");
	return ctx;
}

static vsm_record *record_of(vsm_ctx *ctx, vsm_container *c, vsm_dstore **ds)
{
	vsm_record *r;

	if (vsm__ds_get(ds, ctx, "ds") < 0 || vsm__ds_refresh(ctx, *ds) < 0 ||
	    !(r = vsm__ds_find(*ds, NULL, vsm_container_uuid(c))))
		die("record");
	return r;
}

static int create(vsm_ctx *ctx, const char *name, vsm_container **out)
{
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *dp = &d;
	vsm_container_opts o = VSM_CONTAINER_OPTS_INIT;

	d.name = "d0";
	d.size = 1 << 20;
	o.devices = &dp;
	o.n_devices = 1;
	o.flags = VSM_CONTAINER_CREATE_THIN;
	return vsm_container_create(out, ctx, "ds", name, &o);
}

static void bench_vsm(row *rw, const char *root, bool plain, int iters)
{
	char dir[4096], uri[4200];
	vsm_container *c = NULL, *c2 = NULL;
	vsm_ctx *a, *a2, *b;
	vsm_dstore *ds, *ds2;
	vsm_record *r, *r2;
	long io;
	uint64_t lver;
	double t0;
	int pipefd[2], i;
	pid_t pid;
	char byte;

	snprintf(dir, sizeof(dir), "%s/vsm-%s", root, plain ? "plain" : "caw");
	snprintf(uri, sizeof(uri), "count://%s", dir);
	mkdir(dir, 0700);
	setenv("VSM_LEASE_PROTOCOL", plain ? "plain" : "caw", 1);
	unsetenv("VSM_LEASE_TIMEOUT_MS");
	unsetenv("VSM_LEASE_RENEW_MS");

	/* Join + first acquire, the analogue of add_lockspace + acquire. */
	a = host_ctx(root, plain ? "pa" : "ca", uri);
	if (create(a, "web", &c) < 0 || create(a, "bench", NULL) < 0)
		die("create");
	r = record_of(a, c, &ds);
	t0 = now_ms();
	if (vsm__lease_acquire(ds->lease, r, plain ? "pa" : "ca", 0, &lver, NULL) < 0)
		die("first acquire");
	rw->join_ms = now_ms() - t0;
	if (vsm__lease_release(ds->lease, r) < 0)
		die("release");

	io = io_now();
	t0 = now_ms();
	for (i = 0; i < iters; i++)
		if (vsm__lease_acquire(ds->lease, r, plain ? "pa" : "ca", 0, &lver, NULL) < 0 ||
		    vsm__lease_release(ds->lease, r) < 0)
			die("acquire/release");
	rw->acq_rel_ms = (now_ms() - t0) / iters;
	rw->io_same = (double)(io_now() - io) / iters;

	/* Two hosts taking turns: each acquisition follows the other host's
	 * release, so nothing this context wrote itself can be reused. */
	a2 = host_ctx(root, plain ? "px" : "cx", uri);
	{
		vsm_container *cx = NULL;

		if (vsm_container_lookup(&cx, a2, "ds", "web") < 0)
			die("lookup");
		r2 = record_of(a2, cx, &ds2);
		vsm_container_free(cx);
	}
	if (vsm__lease_acquire(ds2->lease, r2, plain ? "px" : "cx", 0, &lver, NULL) < 0 ||
	    vsm__lease_release(ds2->lease, r2) < 0)
		die("second host");
	io = io_now();
	t0 = now_ms();
	for (i = 0; i < iters; i++)
		if (vsm__lease_acquire(ds->lease, r, plain ? "pa" : "ca", 0, &lver, NULL) < 0 ||
		    vsm__lease_release(ds->lease, r) < 0 ||
		    vsm__lease_acquire(ds2->lease, r2, plain ? "px" : "cx", 0, &lver, NULL) < 0 ||
		    vsm__lease_release(ds2->lease, r2) < 0)
			die("alternating acquire/release");
	rw->alt_ms = (now_ms() - t0) / (2.0 * iters);
	rw->io_alt = (double)(io_now() - io) / (2.0 * iters);
	vsm_ctx_free(a2);

	t0 = now_ms();
	for (i = 0; i < iters; i++)
		if (vsm_attach(c, plain ? "pa" : "ca", 0) < 0 || vsm_detach(c, 0) < 0)
			die("attach/detach");
	rw->attach_ms = (now_ms() - t0) / iters;
	vsm_container_free(c);
	vsm_ctx_free(a);

	/* Takeover: a holder process is killed; another host waits it out. */
	if (pipe(pipefd) < 0)
		die("pipe");
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		vsm_ctx *h;
		vsm_container *hc = NULL;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		h = host_ctx(root, plain ? "ph" : "ch", uri);
		if (vsm_container_lookup(&hc, h, "ds", "bench") < 0 ||
		    vsm_attach(hc, plain ? "ph" : "ch", 0) < 0)
			_exit(2);
		byte = 'R';
		if (write(pipefd[1], &byte, 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	if (read(pipefd[0], &byte, 1) != 1)
		die("holder");
	b = host_ctx(root, plain ? "pb" : "cb", uri);
	if (vsm_container_lookup(&c2, b, "ds", "bench") < 0)
		die("lookup");
	sleep(2); /* let b watch the live holder for a while */
	kill(pid, SIGKILL);
	t0 = now_ms();
	waitpid(pid, NULL, 0);
	if (vsm_attach(c2, plain ? "pb" : "cb", VSM_ATTACH_TAKEOVER) < 0)
		die("takeover");
	rw->takeover_ms = now_ms() - t0;
	vsm_container_free(c2);
	vsm_ctx_free(b);
	close(pipefd[0]);
	close(pipefd[1]);
	unsetenv("VSM_LEASE_PROTOCOL");
	rw->ok = true;
}

#ifdef HAVE_SANLOCK
static pid_t daemon_start(const char *run_dir)
{
	char pidfile[4200], sock[4200];
	pid_t pid;
	int i;

	mkdir(run_dir, 0700);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("SANLOCK_RUN_DIR", run_dir, 1);
		setenv("SANLOCK_PRIVILEGED", "0", 1);
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		execlp("sanlock", "sanlock", "daemon", "-D", "-w", "0", (char *)NULL);
		_exit(127);
	}
	snprintf(pidfile, sizeof(pidfile), "%s/sanlock.pid", run_dir);
	snprintf(sock, sizeof(sock), "%s/sanlock.sock", run_dir);
	for (i = 0; i < 500 && access(sock, F_OK) < 0; i++)
		usleep(10000);
	usleep(100000);
	return pid;
}

static void use_daemon(const char *run_dir)
{
	setenv("SANLOCK_RUN_DIR", run_dir, 1);
}

static struct sanlk_resource *res_new(const char *path)
{
	/* @path is shorter than SANLK_PATH_LEN: the caller builds it so. */
	struct sanlk_resource *res = calloc(1, sizeof(*res) + sizeof(struct sanlk_disk));

	snprintf(res->lockspace_name, SANLK_NAME_LEN, "benchls");
	snprintf(res->name, SANLK_NAME_LEN, "benchres");
	res->num_disks = 1;
	snprintf(res->disks[0].path, SANLK_PATH_LEN, "%s", path);
	return res;
}

/* libsanlock picks its daemon from SANLOCK_RUN_DIR once per process, so
 * each sanlock host is played by its own child process; they report
 * times (CLOCK_MONOTONIC is shared) through a pipe. */
static void send_d(int fd, double v)
{
	if (write(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		_exit(5);
}

static bool recv_d(int fd, double *v)
{
	return read(fd, v, sizeof(*v)) == (ssize_t)sizeof(*v);
}

static int sl_host1(const char *run, const char *lsf, const char *rsf, int iters, int out)
{
	struct sanlk_lockspace ls;
	struct sanlk_resource *res = res_new(rsf);
	double t0;
	int s, rc, i;

	use_daemon(run);
	memset(&ls, 0, sizeof(ls));
	snprintf(ls.name, SANLK_NAME_LEN, "benchls");
	snprintf(ls.host_id_disk.path, SANLK_PATH_LEN, "%s", lsf);
	ls.host_id = 1;
	if ((rc = sanlock_write_lockspace(&ls, 0, 0, 1)) < 0 ||
	    (rc = sanlock_write_resource(res, 0, 0, 0)) < 0) {
		fprintf(stderr, "bench_lease: sanlock init: %d\n", rc);
		return 2;
	}
	t0 = now_ms();
	if ((rc = sanlock_add_lockspace_timeout(&ls, 0, 1)) < 0 || (s = sanlock_register()) < 0 ||
	    (rc = sanlock_acquire(s, -1, 0, 1, &res, NULL)) < 0) {
		fprintf(stderr, "bench_lease: sanlock host 1: %d\n", rc);
		return 3;
	}
	send_d(out, now_ms() - t0);
	if ((rc = sanlock_release(s, -1, 0, 1, &res)) < 0)
		return 4;
	t0 = now_ms();
	for (i = 0; i < iters; i++)
		if ((rc = sanlock_acquire(s, -1, 0, 1, &res, NULL)) < 0 ||
		    (rc = sanlock_release(s, -1, 0, 1, &res)) < 0) {
			fprintf(stderr, "bench_lease: sanlock acq/rel: %d\n", rc);
			return 4;
		}
	send_d(out, (now_ms() - t0) / iters);
	if ((rc = sanlock_acquire(s, -1, 0, 1, &res, NULL)) < 0)
		return 6;
	send_d(out, 1);
	for (;;)
		pause();
}

static int sl_host2(const char *run, const char *lsf, const char *rsf, int in, int out)
{
	struct sanlk_lockspace ls;
	struct sanlk_resource *res = res_new(rsf);
	double go;
	int s, rc;

	use_daemon(run);
	memset(&ls, 0, sizeof(ls));
	snprintf(ls.name, SANLK_NAME_LEN, "benchls");
	snprintf(ls.host_id_disk.path, SANLK_PATH_LEN, "%s", lsf);
	ls.host_id = 2;
	if ((rc = sanlock_add_lockspace_timeout(&ls, 0, 1)) < 0 || (s = sanlock_register()) < 0) {
		fprintf(stderr, "bench_lease: sanlock host 2: %d\n", rc);
		return 2;
	}
	send_d(out, 1);
	if (!recv_d(in, &go))
		return 3;
	while ((rc = sanlock_acquire(s, -1, 0, 1, &res, NULL)) != 0) {
		if (now_ms() - go > 300000) {
			fprintf(stderr, "bench_lease: sanlock takeover gave up: %d\n", rc);
			return 4;
		}
		usleep(50000);
	}
	send_d(out, now_ms());
	sanlock_release(s, -1, 0, 1, &res);
	return 0;
}

static pid_t child(int (*fn)(void *), void *arg)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(arg));
	}
	return pid;
}

typedef struct {
	const char *run, *lsf, *rsf;
	int iters, in, out;
} sl_args;

static int sl_host1_main(void *p)
{
	sl_args *a = p;

	return sl_host1(a->run, a->lsf, a->rsf, a->iters, a->out);
}

static int sl_host2_main(void *p)
{
	sl_args *a = p;

	return sl_host2(a->run, a->lsf, a->rsf, a->in, a->out);
}

static void bench_sanlock(row *rw, const char *root, int iters)
{
	char d1[900], d2[900], lsf[900], rsf[900];
	int p1[2], p2[2], c2[2], i;
	pid_t dm1, dm2, h1 = 0, h2 = 0;
	sl_args a1, a2;
	double v, t_kill, t_acq;
	FILE *f;

	snprintf(d1, sizeof(d1), "%s/sanlock-run1", root);
	snprintf(d2, sizeof(d2), "%s/sanlock-run2", root);
	snprintf(lsf, sizeof(lsf), "%s/sanlock-lockspace", root);
	snprintf(rsf, sizeof(rsf), "%s/sanlock-resource", root);
	for (i = 0; i < 2; i++) {
		if (!(f = fopen(i ? rsf : lsf, "w")) || ftruncate(fileno(f), 1 << 20) < 0)
			die("sanlock files");
		fclose(f);
	}
	if (pipe(p1) < 0 || pipe(p2) < 0 || pipe(c2) < 0)
		die("pipe");
	dm1 = daemon_start(d1);
	dm2 = daemon_start(d2);
	a1 = (sl_args){ d1, lsf, rsf, iters, -1, p1[1] };
	a2 = (sl_args){ d2, lsf, rsf, iters, c2[0], p2[1] };
	h1 = child(sl_host1_main, &a1);
	if (!recv_d(p1[0], &rw->join_ms) || !recv_d(p1[0], &rw->acq_rel_ms) || !recv_d(p1[0], &v))
		goto out;
	h2 = child(sl_host2_main, &a2);
	if (!recv_d(p2[0], &v))
		goto out;
	sleep(2);
	kill(dm1, SIGKILL);
	t_kill = now_ms();
	waitpid(dm1, NULL, 0);
	dm1 = 0;
	send_d(c2[1], t_kill);
	if (!recv_d(p2[0], &t_acq))
		goto out;
	rw->takeover_ms = t_acq - t_kill;
	rw->ok = true;
out:
	for (i = 0; i < 2; i++) {
		pid_t p = i ? h2 : h1;

		if (p > 0) {
			kill(p, SIGKILL);
			waitpid(p, NULL, 0);
		}
	}
	if (dm1 > 0) {
		kill(dm1, SIGKILL);
		waitpid(dm1, NULL, 0);
	}
	kill(dm2, SIGKILL);
	waitpid(dm2, NULL, 0);
	for (i = 0; i < 2; i++) {
		close(p1[i]);
		close(p2[i]);
		close(c2[i]);
	}
}
#endif

int main(int argc, char **argv)
{
	row rows[3] = { { "libvsm CAW", 0, 0, 0, 0, 0, 0, 0, false },
			{ "libvsm plain", 0, 0, 0, 0, 0, 0, 0, false },
			{ "sanlock", 0, 0, 0, 0, 0, 0, 0, false } };
	const char *parent = "/tmp";
	bool with_sanlock = true;
	int iters = 200, i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			parent = argv[++i];
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-sanlock"))
			with_sanlock = false;
		else {
			fprintf(stderr, "usage: bench_lease [--dir DIR] [--iters N] [--no-sanlock]\n");
			return 2;
		}
	}
	if (iters < 1)
		iters = 1;
	main_pid = getpid();
	snprintf(bench_root, sizeof(bench_root), "%s/bench-lease.XXXXXX", parent);
	if (!mkdtemp(bench_root))
		die("mkdtemp");
	bench_vsm(&rows[0], bench_root, false, iters);
	bench_vsm(&rows[1], bench_root, true, iters);
#ifdef HAVE_SANLOCK
	if (with_sanlock)
		bench_sanlock(&rows[2], bench_root, iters);
#else
	(void)with_sanlock;
#endif
	rm_tree(bench_root);

	printf("\n%-14s %14s %22s %22s %16s %12s\n", "", "join+acquire",
	       "acq+rel same host", "acq+rel 2 hosts", "attach+detach", "takeover");
	for (i = 0; i < 3; i++) {
		if (!rows[i].ok) {
			printf("%-14s %14s %22s %22s %16s %12s\n", rows[i].name, "n/a", "n/a", "n/a",
			       "n/a", "n/a");
			continue;
		}
		printf("%-14s %11.2f ms ", rows[i].name, rows[i].join_ms);
		if (i < 2)
			printf("%9.3f ms (%4.1f I/O) %9.3f ms (%4.1f I/O) %13.3f ms ",
			       rows[i].acq_rel_ms, rows[i].io_same, rows[i].alt_ms, rows[i].io_alt,
			       rows[i].attach_ms);
		else
			printf("%9.3f ms %12s %22s %16s ", rows[i].acq_rel_ms, "", "-", "-");
		printf("%9.0f ms\n", rows[i].takeover_ms);
	}
	if (rows[2].ok) {
		printf("\nsanlock / libvsm (higher: libvsm faster)\n");
		for (i = 0; i < 2; i++)
			printf("%-14s join+acquire x%.1f   acq+rel x%.1f (2 hosts x%.1f)   "
			       "takeover x%.1f\n", rows[i].name, rows[2].join_ms / rows[i].join_ms,
			       rows[2].acq_rel_ms / rows[i].acq_rel_ms,
			       rows[2].acq_rel_ms / rows[i].alt_ms,
			       rows[2].takeover_ms / rows[i].takeover_ms);
	}
	printf("(%d iterations; libvsm timeout 8 s / renew 1 s; sanlock io_timeout 1 s, no watchdog;\n"
	       " libvsm's file backend does buffered I/O, sanlock O_DIRECT: compare I/O counts\n"
	       " too, not only latencies)\n", iters);
	return 0;
}
