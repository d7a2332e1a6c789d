/*
 * The metadata lock. Two levels:
 *
 * - Processes of one host (one state directory) first take an OFD lock on
 *   a local file; the kernel drops it when a process dies, so a holder
 *   that crashed is known dead at once by its own host.
 * - Hosts then compete for the lock sector on the datastore with
 *   compare-and-write. A holder's value carries a counter that changes on
 *   every renewal; a waiter that has watched the same value for the
 *   timeout T on its own monotonic clock judges the holder dead and breaks
 *   the lock (the delta-lease rule of doc/leases.md). The holder acts only
 *   until (start of its last successful compare-and-write) + T - T/16.
 *
 * On a datastore whose leases use the plain protocol (no compare-and-write)
 * the second level is a register decided by Disk Paxos (lib/lease/lease.c,
 * vsm__lease_lock_*), with the same holder rules; its value's instance
 * number plays the counter's part.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "dslock.h"
#include "lease.h"

#define LOCK_MAGIC "VSMDL001"
#define LOCK_CRC_OFF 508
#define LOCK_BYTES 512
#define MAX_WAIT_MS 120000

struct vsm_dslock {
	vsm_meta *m;
	vsm_lease_ds *lease; /* the datastore's lease area; NULL: none open */
	bool plain;          /* Disk Paxos register instead of the sector */
	uint64_t lver;       /* plain: instance of our value while held */
	char node_name[VSM_UUID_STRLEN + 8];
	char *ds_name;
	char node[VSM_UUID_STRLEN + 1];
	char host[64];
	int local_fd;
	bool caw;
	uint32_t timeout_ms;
	uint32_t len;        /* bytes written: one lease block */
	uint8_t *mine;       /* our value, as on disk, while held */
	int64_t deadline;    /* monotonic ms */
	uint64_t counter;
	unsigned int seed;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/*
 * The state directory's node id: made once, shared by its processes.  The
 * id is written and synced in a private file first and then published with
 * link(), which fails if another process got there first; so a reader never
 * sees the file before it is whole (creating it with O_EXCL and writing
 * afterwards let a racing process read it empty).
 */
static int node_id(const char *state_dir, char out[VSM_UUID_STRLEN + 1])
{
	char path[4096], tmp[4200], fresh[VSM_UUID_STRLEN + 1], buf[VSM_UUID_STRLEN + 2];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/node-id", state_dir);
	if (access(path, F_OK) < 0) {
		vsm__uuid_new(fresh);
		snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return vsm_err(VSM_EIO, "cannot create '%s': %s", tmp, strerror(errno));
		n = write(fd, fresh, VSM_UUID_STRLEN);
		if (n != VSM_UUID_STRLEN || fsync(fd) < 0) {
			int e = n < 0 ? errno : EIO;

			close(fd);
			unlink(tmp);
			return vsm_err(VSM_EIO, "cannot write '%s': %s", tmp, strerror(e));
		}
		close(fd);
		if (link(tmp, path) < 0 && errno != EEXIST) {
			int e = errno;

			unlink(tmp);
			return vsm_err(VSM_EIO, "cannot create '%s': %s", path, strerror(e));
		}
		unlink(tmp);
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return vsm_err(VSM_EIO, "cannot read '%s': %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	if (n != VSM_UUID_STRLEN || !vsm__uuid_valid(buf))
		return vsm_err(VSM_ECORRUPT, "'%s' does not hold a node id", path);
	memcpy(out, buf, VSM_UUID_STRLEN + 1);
	return 0;
}

int vsm__dslock_open(vsm_dslock **out, vsm_meta *m, vsm_lease_ds *lease,
		     const char *ds_name, const char *state_dir)
{
	char path[4096];
	vsm_dslock *l;
	int rc;

	if (!(l = vsm__calloc(1, sizeof(*l))))
		return -VSM_ENOMEM;
	l->local_fd = -1;
	l->m = m;
	l->lease = lease;
	l->plain = lease && vsm__lease_plain(lease);
	l->caw = !l->plain && vsm_bdev_has_compare_and_write(m->bdev);
	l->timeout_ms = lease ? vsm__lease_timeout_ms(lease) : m->geom.lease_timeout_ms;
	l->len = m->geom.lease_block;
	l->seed = (unsigned int)(getpid() ^ mono_ms());
	if (gethostname(l->host, sizeof(l->host) - 1) < 0)
		strcpy(l->host, "?");
	if (!(l->ds_name = vsm__strdup(ds_name)) || !(l->mine = vsm__calloc(1, l->len))) {
		rc = -VSM_ENOMEM;
		goto fail;
	}
	if ((rc = node_id(state_dir, l->node)) < 0)
		goto fail;
	snprintf(l->node_name, sizeof(l->node_name), "node-%s", l->node);
	snprintf(path, sizeof(path), "%s/locks", state_dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		rc = vsm_err(VSM_EIO, "cannot make '%s': %s", path, strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/locks/%s", state_dir, m->geom.uuid);
	if ((l->local_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		rc = vsm_err(VSM_EIO, "cannot open '%s': %s", path, strerror(errno));
		goto fail;
	}
	*out = l;
	return 0;
fail:
	vsm__dslock_close(l);
	return rc;
}

void vsm__dslock_close(vsm_dslock *l)
{
	if (!l)
		return;
	if (l->local_fd >= 0)
		close(l->local_fd);
	free(l->mine);
	free(l->ds_name);
	free(l);
}

static int local_lock(vsm_dslock *l, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

	while (fcntl(l->local_fd, F_OFD_SETLKW, &fl) < 0) {
		if (errno != EINTR)
			return vsm_err(VSM_EIO, "datastore '%s': local metadata lock: %s",
				       l->ds_name, strerror(errno));
	}
	return 0;
}

typedef struct {
	bool held;
	char node[VSM_UUID_STRLEN + 1];
	char host[65];
	uint32_t pid;
	int64_t since_ms;
} lock_value;

/* 1: a value we wrote (free or held), 0: blank, -1: not ours. */
static int decode(const uint8_t *b, lock_value *v)
{
	size_t i;

	memset(v, 0, sizeof(*v));
	for (i = 0; i < LOCK_BYTES && !b[i]; i++)
		;
	if (i == LOCK_BYTES)
		return 0;
	if (memcmp(b, LOCK_MAGIC, 8) != 0 ||
	    vsm__get_le32(b + LOCK_CRC_OFF) != vsm__crc32(b, LOCK_CRC_OFF))
		return -1;
	v->held = vsm__get_le32(b + 8) == 1;
	v->pid = vsm__get_le32(b + 12);
	memcpy(v->node, b + 32, VSM_UUID_STRLEN);
	memcpy(v->host, b + 72, 64);
	v->since_ms = (int64_t)vsm__get_le64(b + 136);
	return 1;
}

static void encode(vsm_dslock *l, uint8_t *b, bool held, uint64_t counter)
{
	struct timespec ts;

	memset(b, 0, l->len);
	memcpy(b, LOCK_MAGIC, 8);
	vsm__put_le32(b + 8, held ? 1 : 0);
	vsm__put_le32(b + 12, (uint32_t)getpid());
	vsm__put_le64(b + 16, counter);
	vsm__put_le64(b + 24, ((uint64_t)rand_r(&l->seed) << 32) ^ (uint64_t)rand_r(&l->seed));
	memcpy(b + 32, l->node, VSM_UUID_STRLEN);
	memcpy(b + 72, l->host, strnlen(l->host, 63));
	clock_gettime(CLOCK_REALTIME, &ts);
	vsm__put_le64(b + 136, (uint64_t)((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
	vsm__put_le32(b + LOCK_CRC_OFF, vsm__crc32(b, LOCK_CRC_OFF));
}

/* One compare-and-write from @expect to a value held by us; on success
 * the deadline counts from the start of that write. */
static int take(vsm_dslock *l, const uint8_t *expect)
{
	uint8_t *want = vsm__calloc(1, l->len);
	int64_t start = mono_ms();
	int rc;

	if (!want)
		return -VSM_ENOMEM;
	encode(l, want, true, vsm__get_le64(expect + 16) + 1);
	rc = vsm_bdev_compare_and_write(l->m->bdev, expect, want, l->len, l->m->geom.lock_off);
	if (rc == 0) {
		memcpy(l->mine, want, l->len);
		l->counter = vsm__get_le64(want + 16);
		l->deadline = start + l->timeout_ms - l->timeout_ms / 16;
	}
	free(want);
	return rc;
}

static int busy_error(vsm_dslock *l, const lock_value *v)
{
	return vsm_err(VSM_EBUSY, "datastore '%s': metadata lock is held by host '%s' "
		       "(process %u) and keeps changing hands; gave up after %d s",
		       l->ds_name, v->host, v->pid, MAX_WAIT_MS / 1000);
}

/* The plain path: watch the register's instance as the sector's bytes. */
static int plain_acquire(vsm_dslock *l)
{
	int64_t first_seen = 0, begin = mono_ms();
	uint64_t seen = UINT64_MAX;
	long backoff = 500;
	vsm__lease_lockval cur;
	int rc;

	for (;;) {
		int64_t t0 = mono_ms(), t1, start;

		if ((rc = vsm__lease_lock_read(l->lease, &cur)) < 0)
			return rc;
		t1 = mono_ms();
		if (cur.held && strcmp(cur.node, l->node_name) != 0) {
			if (cur.lver != seen) {
				seen = cur.lver;
				first_seen = t1;
				goto wait;
			}
			if (t0 - first_seen < l->timeout_ms)
				goto wait;
		}
		start = mono_ms();
		rc = vsm__lease_lock_propose(l->lease, l->node, &cur, true, NULL);
		if (rc == 0) {
			l->lver = cur.lver + 1;
			l->deadline = start + l->timeout_ms - l->timeout_ms / 16;
			return 0;
		}
		if (rc != -VSM_EMISMATCH)
			return rc;
		vsm__error_reset();
		continue;
wait:
		if (mono_ms() - begin > MAX_WAIT_MS)
			return vsm_err(VSM_EBUSY, "datastore '%s': metadata lock is held by '%s' and "
				       "keeps changing hands; gave up after %d s", l->ds_name,
				       cur.node, MAX_WAIT_MS / 1000);
		sleep_us(backoff / 2 + rand_r(&l->seed) % (backoff + 1));
		if (backoff < 20000)
			backoff += backoff / 2;
	}
}

/* Replace our value (instance l->lver) by the next: still held, or free. */
static int plain_next(vsm_dslock *l, bool take)
{
	vsm__lease_lockval cur;
	int64_t start = mono_ms();
	int rc;

	memset(&cur, 0, sizeof(cur));
	cur.lver = l->lver;
	cur.held = true;
	snprintf(cur.node, sizeof(cur.node), "%s", l->node_name);
	rc = vsm__lease_lock_propose(l->lease, l->node, &cur, take, NULL);
	if (rc == 0) {
		l->lver++;
		l->deadline = start + l->timeout_ms - l->timeout_ms / 16;
	}
	return rc;
}

int vsm__dslock_acquire(vsm_dslock *l)
{
	uint8_t *cur = NULL, *seen = NULL;
	int64_t first_seen = 0, begin = mono_ms();
	long backoff = 200;
	lock_value v;
	int rc;

	if ((rc = local_lock(l, F_WRLCK)) < 0)
		return rc;
	if (l->plain) {
		if ((rc = plain_acquire(l)) < 0)
			local_lock(l, F_UNLCK);
		return rc;
	}
	if (!l->caw) {
		l->deadline = INT64_MAX;
		return 0;
	}
	if (!(cur = vsm__calloc(1, l->len)) || !(seen = vsm__calloc(1, l->len))) {
		rc = -VSM_ENOMEM;
		goto out;
	}
	for (;;) {
		int64_t t0 = mono_ms(), t1;
		int st;

		if ((rc = vsm_bdev_read(l->m->bdev, cur, l->len, l->m->geom.lock_off)) < 0)
			goto out;
		t1 = mono_ms();
		st = decode(cur, &v);
		/* Another process of this host cannot hold it while we hold
		 * the local lock: it died holding it. Another host's hold, or
		 * a sector that looks torn (a read racing a write), is waited
		 * out until it has stood still for the timeout. */
		if (st < 0 || (st == 1 && v.held && strcmp(v.node, l->node) != 0)) {
			if (memcmp(cur, seen, l->len) != 0) {
				memcpy(seen, cur, l->len);
				first_seen = t1;
				goto wait;
			}
			if (t0 - first_seen < l->timeout_ms)
				goto wait;
		}
		rc = take(l, cur);
		if (rc == 0)
			goto out;
		if (rc != -VSM_EMISMATCH)
			goto out;
		vsm__error_reset();
		continue;
wait:
		if (mono_ms() - begin > MAX_WAIT_MS) {
			rc = busy_error(l, &v);
			goto out;
		}
		sleep_us(backoff / 2 + rand_r(&l->seed) % (backoff + 1));
		if (backoff < 20000)
			backoff += backoff / 2;
	}
out:
	free(cur);
	free(seen);
	if (rc < 0)
		local_lock(l, F_UNLCK);
	return rc;
}

int vsm__dslock_check(vsm_dslock *l)
{
	int64_t now = mono_ms();
	int rc;

	if (!l->caw && !l->plain)
		return 0;
	/* Renew well before the deadline, so that a long change (a record
	 * continued over many slots) never runs into it. */
	if (now < l->deadline - (int64_t)l->timeout_ms / 2)
		return 0;
	if (now >= l->deadline)
		return vsm_err(VSM_ESTALE, "datastore '%s': held the metadata lock past its "
			       "deadline; it may have been broken", l->ds_name);
	rc = l->plain ? plain_next(l, true) : take(l, l->mine);
	if (rc == -VSM_EMISMATCH)
		return vsm_err(VSM_ESTALE, "datastore '%s': the metadata lock was broken by "
			       "another host", l->ds_name);
	return rc;
}

void vsm__dslock_release(vsm_dslock *l)
{
	uint8_t *free_v;

	if (l->plain) {
		vsm__saved_error saved;

		/* Not ours any more (broken): nothing to give back. */
		vsm__error_save(&saved);
		plain_next(l, false);
		vsm__error_restore(&saved);
	} else if (l->caw && (free_v = vsm__calloc(1, l->len))) {
		vsm__saved_error saved;

		vsm__error_save(&saved);
		encode(l, free_v, false, l->counter + 1);
		/* A mismatch means it was broken: nothing of ours to undo. */
		vsm_bdev_compare_and_write(l->m->bdev, l->mine, free_v, l->len,
					   l->m->geom.lock_off);
		free(free_v);
		vsm__error_restore(&saved);
	}
	local_lock(l, F_UNLCK);
}
