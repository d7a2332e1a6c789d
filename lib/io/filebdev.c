/*
 * POSIX file I/O as a device: what the file backend's devices are, what
 * the libvirt backend's volumes with a local path are, and what the
 * path-based vsm_image_* calls open. Exported to backends as
 * vsm_file_bdev_open() (backend.h), so no backend borrows another's code.
 * VSM_BDEV_DIRECT devices (metadata other hosts read) use O_DIRECT through
 * dio.c, falling back to O_DSYNC where the filesystem refuses it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dio.h"
#include "filebdev.h"

/* An open file: the v2 device handle the core sees comes first. */
typedef struct file_dev {
	vsm_bdev_io io;
	int fd;
	char *path;
	/* OFD locks do not exclude threads sharing one descriptor, so
	 * compare-and-write, and every write of an O_DIRECT device, also
	 * takes this mutex. */
	pthread_mutex_t lock;
	vsm__filedio dio; /* dio.align == 0: plain buffered (or O_DSYNC) I/O */
} file_dev;

static const struct vsm_bdev_io_ops file_io_ops;

static file_dev *dev_of(vsm_bdev_io *io)
{
	return (file_dev *)io;
}

static int errno_code(int e)
{
	switch (e) {
	case ENOENT: return VSM_ENOTFOUND;
	case EEXIST: return VSM_EEXISTS;
	case ENOSPC: case EDQUOT: case EFBIG: return VSM_ENOSPC;
	case EACCES: case EPERM: case EROFS: return VSM_EPERM;
	case ENOMEM: return VSM_ENOMEM;
	case EINVAL: return VSM_EINVAL;
	case EOPNOTSUPP: return VSM_ENOTSUP;
	default: return VSM_EIO;
	}
}

static int sys_error(const char *what, const char *path)
{
	int e = errno;

	return vsm_error_set(errno_code(e), "%s '%s': %s", what, path, strerror(e));
}

static int bdev_from_fd(file_dev **out, int fd, const char *path)
{
	file_dev *b = calloc(1, sizeof(*b));

	if (!b || !(b->path = strdup(path))) {
		free(b);
		close(fd);
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	}
	b->io.ops = &file_io_ops;
	b->fd = fd;
	pthread_mutex_init(&b->lock, NULL);
	*out = b;
	return 0;
}

VSM_API int vsm_file_bdev_open(vsm_bdev_io **out, const char *path, unsigned int flags)
{
	int oflags = (flags & VSM_BDEV_RDONLY) ? O_RDONLY : O_RDWR;
	file_dev *b = NULL;
	vsm__filedio dio = {0};
	bool fell_back = false;
	struct stat st;
	int fd, rc;

	if (!out || !path)
		return vsm_error_set(VSM_EINVAL, "vsm_file_bdev_open: out and path are required");
	if (flags & ~(VSM_BDEV_RDONLY | VSM_BDEV_CREATE | VSM_BDEV_DIRECT))
		return vsm_error_set(VSM_EINVAL, "vsm_file_bdev_open: unknown flags 0x%x", flags);
	if (flags & VSM_BDEV_CREATE)
		oflags |= O_CREAT;
	/* Without O_DIRECT (see doc/datastore-layout.md, "Visibility across
	 * hosts") a direct device's writes are O_DSYNC and reads may come
	 * from this host's page cache: fine for one host, not for several. */
	if (flags & VSM_BDEV_DIRECT)
		fd = vsm__filedio_open(path, oflags, &dio, &fell_back);
	else
		fd = open(path, oflags | O_CLOEXEC, 0644);
	if (fd < 0)
		return sys_error("cannot open", path);
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		close(fd);
		return vsm_error_set(VSM_EINVAL, "'%s' is not a regular file or block device",
				     path);
	}
	if ((rc = bdev_from_fd(&b, fd, path)) < 0)
		return rc;
	b->dio = dio;
	*out = &b->io;
	return 0;
}

static void fb_close(vsm_bdev_io *io)
{
	file_dev *b = dev_of(io);
	if (!b)
		return;
	close(b->fd);
	pthread_mutex_destroy(&b->lock);
	free(b->path);
	free(b);
}

static int plain_read(file_dev *b, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(b->fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sys_error("read failed on", b->path);
		}
		if (n == 0) { /* past the end: reads as zeros */
			memset(p, 0, len);
			break;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int plain_write(file_dev *b, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(b->fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sys_error("write failed on", b->path);
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int file_bdev_read(vsm_bdev_io *io, void *buf, size_t len, uint64_t off)
{
	file_dev *b = dev_of(io);
	if (!b->dio.align)
		return plain_read(b, buf, len, off);
	if (vsm__filedio_read(b->fd, &b->dio, buf, len, off) < 0)
		return sys_error("read failed on", b->path);
	return 0;
}

static int ofd_lock(int fd, short type, uint64_t off, uint64_t len)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET,
		.l_start = (off_t)off, .l_len = (off_t)len,
	};

	while (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

/* Lock every block a write of [off, off+len) touches, on this handle
 * (threads) and on the file (other processes and hosts): a read-modify-
 * write of a partial block must not lose another writer's bytes. */
static int write_lock(file_dev *b, uint64_t off, size_t len, uint64_t *lo,
		      uint64_t *n)
{
	pthread_mutex_lock(&b->lock);
	if (b->dio.align)
		vsm__filedio_span(&b->dio, off, len, lo, n);
	else {
		*lo = off;
		*n = len;
	}
	if (ofd_lock(b->fd, F_WRLCK, *lo, *n) < 0) {
		int rc = sys_error("cannot lock range of", b->path);

		pthread_mutex_unlock(&b->lock);
		return rc;
	}
	return 0;
}

static void write_unlock(file_dev *b, uint64_t lo, uint64_t n)
{
	ofd_lock(b->fd, F_UNLCK, lo, n);
	pthread_mutex_unlock(&b->lock);
}

/* The write itself; for an O_DIRECT device, with write_lock() held. */
static int do_write(file_dev *b, const void *buf, size_t len, uint64_t off)
{
	if (!b->dio.align)
		return plain_write(b, buf, len, off);
	if (vsm__filedio_write(b->fd, &b->dio, buf, len, off) < 0)
		return sys_error("write failed on", b->path);
	return 0;
}

static int file_bdev_write(vsm_bdev_io *io, const void *buf, size_t len,
			   uint64_t off, unsigned int flags)
{
	file_dev *b = dev_of(io);
	uint64_t lo, n;
	int rc;

	/* A buffered device has one writer at a time (its owner): no lock. */
	if (!b->dio.align || len == 0)
		return plain_write(b, buf, len, off);
	if ((rc = write_lock(b, off, len, &lo, &n)) < 0)
		return rc;
	rc = do_write(b, buf, len, off);
	write_unlock(b, lo, n);
	return rc;
}

static int file_bdev_flush(vsm_bdev_io *io)
{
	file_dev *b = dev_of(io);
	if (fdatasync(b->fd) < 0)
		return sys_error("flush failed on", b->path);
	return 0;
}

static int file_bdev_size(vsm_bdev_io *io, uint64_t *out)
{
	file_dev *b = dev_of(io);
	struct stat st;

	if (fstat(b->fd, &st) < 0)
		return sys_error("cannot stat", b->path);
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(b->fd, 0, SEEK_END);

		if (end < 0)
			return sys_error("cannot size", b->path);
		*out = (uint64_t)end;
	} else {
		*out = (uint64_t)st.st_size;
	}
	return 0;
}

static int file_bdev_caw(vsm_bdev_io *io, const void *expected,
			 const void *buf, size_t len, uint64_t off)
{
	file_dev *b = dev_of(io);
	uint8_t *cur = malloc(len ? len : 1);
	uint64_t lo, n;
	int rc;

	if (!cur)
		return vsm_error_set(VSM_ENOMEM, "out of memory");
	if ((rc = write_lock(b, off, len ? len : 1, &lo, &n)) < 0)
		goto out;
	rc = file_bdev_read(&b->io, cur, len, off);
	if (rc == 0 && memcmp(cur, expected, len) != 0)
		rc = -VSM_EMISMATCH;
	if (rc == 0)
		rc = do_write(b, buf, len, off);
	write_unlock(b, lo, n);
out:
	free(cur);
	return rc;
}

static int file_bdev_discard(vsm_bdev_io *io, uint64_t off, uint64_t len)
{
	file_dev *b = dev_of(io);
	if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) < 0)
		return sys_error("cannot discard on", b->path);
	return 0;
}

static int file_bdev_query(vsm_bdev_io *io, vsm_bdev_caps *out)
{
	(void)io;
	out->flags = VSM_BDEV_CAP_COMPARE_AND_WRITE | VSM_BDEV_CAP_DISCARD;
	out->logical_block_size = 512;
	return 0;
}

static const struct vsm_bdev_io_ops file_io_ops = VSM_BDEV_IO_OPS_INIT(
	.close = fb_close,
	.read = file_bdev_read,
	.write = file_bdev_write,
	.flush = file_bdev_flush,
	.get_size = file_bdev_size,
	.query = file_bdev_query,
	.compare_and_write = file_bdev_caw,
	.discard = file_bdev_discard,
);

uint32_t vsm__file_bdev_dio_align(const vsm_bdev_io *io)
{
	const file_dev *b = (const file_dev *)io;

	return b->dio.align;
}

unsigned long vsm__file_bdev_rmw_reads(const vsm_bdev_io *io)
{
	const file_dev *b = (const file_dev *)io;

	return b->dio.rmw_reads;
}

int vsm__file_bdev_dio_force_align(vsm_bdev_io *io, uint32_t align)
{
	file_dev *b = dev_of(io);

	if (!b->dio.align || align < b->dio.align || align % b->dio.align ||
	    (align & (align - 1)) || align > 65536)
		return vsm_error_set(VSM_EINVAL, "alignment %u does not fit '%s' (now %u)", align,
				     b->path, b->dio.align);
	b->dio.align = align;
	return 0;
}

