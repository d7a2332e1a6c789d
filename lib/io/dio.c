/*
 * Direct I/O for the file backend's metadata device (see dio.h). O_DIRECT
 * is what makes a completed write visible to every host that shares the
 * directory, NFS included: the page cache of neither the writer nor the
 * reader is in the way. It needs aligned offsets, lengths and memory, so
 * every read and write goes through an aligned bounce buffer, and only
 * the partial blocks at the head and tail of a write are read back.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dio.h"

#define DEFAULT_ALIGN 4096u
#define BOUNCE_MAX (1024u * 1024u) /* a multiple of any alignment we accept */

static bool pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* The logical block size for a block device; the filesystem's direct-I/O
 * alignment where statx reports it; 4096 (safe everywhere) otherwise. */
static void find_alignment(int fd, vsm__filedio *d)
{
	uint32_t a = 0, m = 0;
	struct stat st;

	if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode)) {
		int ss = 0;

		if (ioctl(fd, BLKSSZGET, &ss) == 0 && ss > 0)
			a = m = (uint32_t)ss;
	}
#ifdef STATX_DIOALIGN
	if (!a) {
		struct statx sx;

		if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
		    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align) {
			a = sx.stx_dio_offset_align;
			m = sx.stx_dio_mem_align;
		}
	}
#endif
	if (!pow2(a) || a > BOUNCE_MAX)
		a = DEFAULT_ALIGN;
	if (!pow2(m) || m > BOUNCE_MAX)
		m = a;
	if (m < sizeof(void *))
		m = sizeof(void *);
	d->align = a;
	d->mem_align = m;
}

static uint64_t round_down(const vsm__filedio *d, uint64_t v)
{
	return v & ~(uint64_t)(d->align - 1);
}

static uint64_t round_up(const vsm__filedio *d, uint64_t v)
{
	return round_down(d, v + d->align - 1);
}

void vsm__filedio_span(const vsm__filedio *d, uint64_t off, size_t len, uint64_t *lo,
		       uint64_t *n)
{
	*lo = round_down(d, off);
	*n = round_up(d, off + len) - *lo;
}

static uint8_t *bounce_alloc(const vsm__filedio *d, size_t size)
{
	size_t a = d->align > d->mem_align ? d->align : d->mem_align;
	void *p = NULL;
	int e;

	if ((e = posix_memalign(&p, a, size)) != 0) {
		errno = e;
		return NULL;
	}
	return p;
}

/* Read whole blocks; bytes past the end of the file read as zeros. */
static int read_blocks(int fd, const vsm__filedio *d, uint8_t *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
		/* A direct read stops inside a block only at the end of the
		 * file; asking again from there would be unaligned. */
		if (done % d->align)
			break;
	}
	memset(buf + done, 0, len - done);
	return 0;
}

static int write_blocks(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, len - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

int vsm__filedio_open(const char *path, int oflags, vsm__filedio *d, bool *fell_back)
{
	int fd, e;

	memset(d, 0, sizeof(*d));
	*fell_back = false;
	fd = open(path, oflags | O_DIRECT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		uint8_t *probe;

		find_alignment(fd, d);
		/* Some filesystems take the flag and refuse the I/O instead. */
		if (!(probe = bounce_alloc(d, d->align))) {
			e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		e = read_blocks(fd, d, probe, d->align, 0) < 0 ? errno : 0;
		free(probe);
		if (e == 0)
			return fd;
		close(fd);
		if (e != EINVAL) {
			errno = e;
			return -1;
		}
	} else if (errno != EINVAL) {
		return -1;
	}
	/* No O_DIRECT here (tmpfs before Linux 6.6, some FUSE filesystems):
	 * writes are still synchronous, reads go through the page cache. */
	memset(d, 0, sizeof(*d));
	fd = open(path, oflags | O_DSYNC | O_CLOEXEC, 0644);
	if (fd >= 0)
		*fell_back = true;
	return fd;
}

static bool aligned(const vsm__filedio *d, const void *buf, size_t len, uint64_t off)
{
	return off % d->align == 0 && len % d->align == 0 &&
	       (uintptr_t)buf % d->mem_align == 0;
}

static size_t bounce_size(const vsm__filedio *d, size_t len, uint64_t off)
{
	uint64_t lo, n;

	vsm__filedio_span(d, off, len, &lo, &n);
	return n < BOUNCE_MAX ? (size_t)n : BOUNCE_MAX;
}

int vsm__filedio_read(int fd, const vsm__filedio *d, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf, *bounce;
	size_t cap;

	if (len == 0)
		return 0;
	if (aligned(d, buf, len, off))
		return read_blocks(fd, d, buf, len, off);
	cap = bounce_size(d, len, off);
	if (!(bounce = bounce_alloc(d, cap)))
		return -1;
	while (len > 0) {
		uint64_t lo = round_down(d, off);
		size_t head = (size_t)(off - lo), span, take;

		span = (size_t)round_up(d, head + (uint64_t)len);
		if (span > cap)
			span = cap;
		take = span - head < len ? span - head : len;
		if (read_blocks(fd, d, bounce, span, lo) < 0) {
			int e = errno;

			free(bounce);
			errno = e;
			return -1;
		}
		memcpy(p, bounce + head, take);
		p += take;
		off += take;
		len -= take;
	}
	free(bounce);
	return 0;
}

int vsm__filedio_write(int fd, vsm__filedio *d, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	uint64_t end = off + len, old_size = 0;
	bool trim = false;
	uint8_t *bounce;
	size_t cap;
	int e;

	if (len == 0)
		return 0;
	if (aligned(d, buf, len, off))
		return write_blocks(fd, buf, len, off);
	if (end % d->align) {
		struct stat st;

		if (fstat(fd, &st) < 0)
			return -1;
		old_size = (uint64_t)st.st_size;
		trim = round_up(d, end) > old_size;
	}
	cap = bounce_size(d, len, off);
	if (!(bounce = bounce_alloc(d, cap)))
		return -1;
	while (len > 0) {
		uint64_t lo = round_down(d, off);
		size_t head = (size_t)(off - lo), span, take;

		span = (size_t)round_up(d, head + (uint64_t)len);
		if (span > cap)
			span = cap;
		take = span - head < len ? span - head : len;
		/* Only a partial first or last block is read back; a chunk cut
		 * at the bounce size ends on a block boundary. */
		if (head) {
			if (read_blocks(fd, d, bounce, d->align, lo) < 0)
				goto fail;
			d->rmw_reads++;
		}
		if ((head + take) % d->align && !(head && span == d->align)) {
			if (read_blocks(fd, d, bounce + span - d->align, d->align,
					lo + span - d->align) < 0)
				goto fail;
			d->rmw_reads++;
		}
		memcpy(bounce + head, p, take);
		if (write_blocks(fd, bounce, span, lo) < 0)
			goto fail;
		p += take;
		off += take;
		len -= take;
	}
	free(bounce);
	/* The last block went out whole; a file that ended before it ends
	 * where the caller's write did, as a plain pwrite would leave it. */
	if (trim && ftruncate(fd, (off_t)(end > old_size ? end : old_size)) < 0)
		return -1;
	return 0;
fail:
	e = errno;
	free(bounce);
	errno = e;
	return -1;
}
