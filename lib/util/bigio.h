/*
 * Big files around the page cache (lib/util/bigio.c).
 *
 * A layer's big file is written once by COPY and read again only to hash
 * its tar (at the commit) and to make it again for a push. Going through
 * the page cache costs a copy into freshly allocated cache pages on every
 * write and on every read of what is not cached, and then the write-back:
 * on the reference machine (a VM) 3.1 s of system time per GiB written
 * buffered against 0.2 s with O_DIRECT, and 1.9 s per GiB read from the
 * disk buffered against 0.03 s direct. So the bytes of big files go
 * straight between our buffers and the disk (O_DIRECT) wherever the file
 * system allows it, and what the page cache already holds (a context just
 * read, a file a RUN step just wrote) is still read from it: the kernel is
 * asked (cachestat, Linux 6.5) whether the cache holds a piece whole, and
 * what it does not hold is read directly. A file system without O_DIRECT
 * (tmpfs before Linux 6.6, some FUSE) gets plain reads and writes, and so
 * does every read on a kernel without cachestat, as before. The results
 * are the same bytes either way.
 *
 * Buffers must be IB_BIGIO_ALIGN-aligned (ib_bigio_alloc) and pieces
 * multiples of IB_BIGIO_ALIGN but for a file's last one.
 */
#ifndef IB_UTIL_BIGIO_H
#define IB_UTIL_BIGIO_H

#include <stddef.h>
#include <sys/types.h>

/* Files from this size go around the page cache; smaller ones as before. */
#define IB_BIGIO_MIN (8u << 20)
/* The alignment of buffers, offsets and lengths O_DIRECT needs (a page: what every block size divides). */
#define IB_BIGIO_ALIGN 4096u
/* The piece a big file is read or written in. */
#define IB_BIGIO_CHUNK (4u << 20)

/* What the page cache holds of a file being read: not asked yet, nothing, all, some (asked per piece). */
enum { BIGIO_UNKNOWN, BIGIO_DISK, BIGIO_PLAIN, BIGIO_PIECES };

/* How an fd is being used: what was found out about its file system and cache. */
typedef struct {
	int fd;
	int direct;   /* O_DIRECT is on for fd now */
	int nodirect; /* the file system refused O_DIRECT: plain I/O from now on */
	int cache;    /* what the page cache holds of the file: BIGIO_* (bigio.c) */
} ib_bigio;

/* Start using `fd` (regular file, opened without O_DIRECT). */
void ib_bigio_init(ib_bigio *b, int fd);
/* O_DIRECT off again (so the fd can be used as it was); does not close it. */
void ib_bigio_done(ib_bigio *b);

/* An IB_BIGIO_ALIGN-aligned buffer of `len` bytes (free() it); NULL with the error set. */
void *ib_bigio_alloc(size_t len);
/*
 * The same for a buffer that will be written whole: its pages are made
 * present in one call (MADV_POPULATE_WRITE, Linux 5.14; a no-op before)
 * instead of one page fault each as it fills. On the reference VM a fault
 * on fresh memory costs ~18 us, a page populated in bulk ~12 us: 1 MiB
 * filled is ~4.5 ms of faults.
 */
void *ib_bigio_alloc_filled(size_t len);

/*
 * pread(2) of up to `len` bytes at `off` into `buf`: the cached part from
 * the page cache, the rest from the disk (O_DIRECT) when `buf`, `off` and
 * `len` are aligned. Short only at the end of the file; -1 with errno.
 */
ssize_t ib_bigio_pread(ib_bigio *b, void *buf, size_t len, off_t off);

/*
 * Append all of `buf` (at the fd's position, which earlier writes of this
 * writer moved by multiples of IB_BIGIO_ALIGN): directly when aligned, else
 * (a file's last piece) through the cache. 0, or IB_ERROR with the error set
 * (as ib_write_all).
 */
int ib_bigio_write(ib_bigio *b, const void *buf, size_t len);

/*
 * Copy [off, end) of `in` to the same offsets of `out` (new, its position
 * and size `off`): read here, written directly by two threads at once (see
 * bigio.c). Ends early at the end of `in` (a file that shrank: `out` is
 * truncated there). `copied`: where the copy ended. 0, or IB_ERROR with
 * the error set ("read: ...", "write: ...": the caller names the file).
 */
int ib_bigio_copy(int in, int out, off_t off, off_t end, off_t *copied);

/*
 * A big file read front to back with the reads running ahead: a thread of
 * its own reads the next pieces (ib_bigio_pread, IB_BIGIO_CHUNK each, a
 * few ahead) while the caller uses the current one, so the disk's latency
 * is not added to the caller's work per piece (the commit of a 2 GiB layer
 * read O_DIRECT one MiB at a time: 0.45 ms per read, then the hashing).
 * The fd must not be used by anything else until ib_bigio_ahead_stop.
 */
typedef struct ib_bigio_ahead ib_bigio_ahead;
/* The buffers (a few pieces, allocated once for many files); NULL with the error set. */
ib_bigio_ahead *ib_bigio_ahead_new(void);
/* Start reading [0, size) of `fd`; IB_ERROR with the error set (no thread). */
int ib_bigio_ahead_begin(ib_bigio_ahead *a, int fd, off_t size);
/*
 * The next piece: its bytes (valid until the next call) and *len; at the
 * end of the file (also when it shrank) *len is 0. NULL with errno set on a
 * read error.
 */
const void *ib_bigio_ahead_next(ib_bigio_ahead *a, size_t *len);
/* Stop reading; the fd is left as it was (open, O_DIRECT off). Without a begin, nothing. */
void ib_bigio_ahead_end(ib_bigio_ahead *a);
/* Free the buffers (after the end). NULL is fine. */
void ib_bigio_ahead_free(ib_bigio_ahead *a);

#endif
