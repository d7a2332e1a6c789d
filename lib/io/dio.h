/*
 * Direct I/O for the file backend's metadata device: opening with
 * O_DIRECT (or falling back to O_DSYNC where the filesystem refuses it),
 * finding the alignment, and reads/writes of any offset and length done
 * through an aligned bounce buffer. Private to backends/file/.
 */
#ifndef VSM_BACKEND_FILE_DIO_H
#define VSM_BACKEND_FILE_DIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
	/* Alignment of offsets and lengths for O_DIRECT; 0 when the
	 * descriptor is not O_DIRECT (then I/O is plain pread/pwrite). */
	uint32_t align;
	uint32_t mem_align; /* of buffers handed to the kernel */
	/* Partial blocks read back to complete a write (read-modify-write);
	 * counted for tests. */
	unsigned long rmw_reads;
} vsm__filedio;

/*
 * Open @path for the metadata device with @oflags (O_RDWR or O_RDONLY,
 * maybe O_CREAT) plus O_DIRECT, and fill @d. Where the filesystem refuses
 * O_DIRECT (EINVAL at open or at the first read), open it with O_DSYNC
 * instead, set d->align to 0 and *fell_back. Returns the descriptor, or
 * -1 with errno set.
 */
int vsm__filedio_open(const char *path, int oflags, vsm__filedio *d, bool *fell_back);

/* The block-aligned range [*lo, *lo + *n) that I/O on [off, off+len) touches. */
void vsm__filedio_span(const vsm__filedio *d, uint64_t off, size_t len, uint64_t *lo,
		       uint64_t *n);

/* Exactly @len bytes at @off; bytes past the end read as zeros.
 * 0, or -1 with errno set. */
int vsm__filedio_read(int fd, const vsm__filedio *d, void *buf, size_t len, uint64_t off);

/*
 * Exactly @len bytes at @off. Partial blocks at the head and tail are
 * read back first (read-modify-write), so the caller must exclude other
 * writers of the blocks of vsm__filedio_span() - threads and other hosts
 * alike - for the duration. A write that ends inside a block past the end
 * of the file leaves the file @off + @len long, not block-rounded.
 * 0, or -1 with errno set.
 */
int vsm__filedio_write(int fd, vsm__filedio *d, const void *buf, size_t len, uint64_t off);

#endif /* VSM_BACKEND_FILE_DIO_H */
