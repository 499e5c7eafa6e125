/* Big files around the page cache: see bigio.h for why. */
#include "util/bigio.h"
#include "util/error.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

void ib_bigio_init(ib_bigio *b, int fd)
{
	b->fd = fd;
	b->direct = 0;
	b->nodirect = 0;
	b->cache = BIGIO_UNKNOWN;
}

/* O_DIRECT on or off for the fd; 0, or -1 when the file system will not have it (then never again). */
static int set_direct(ib_bigio *b, int on)
{
	if (b->direct == on)
		return 0;
	if (on && b->nodirect)
		return -1;
	int fl = fcntl(b->fd, F_GETFL);
	if (fl < 0 || fcntl(b->fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) < 0) {
		if (on)
			b->nodirect = 1;
		return -1;
	}
	b->direct = on;
	return 0;
}

void ib_bigio_done(ib_bigio *b)
{
	int saved = errno;
	set_direct(b, 0);
	errno = saved;
}

void *ib_bigio_alloc(size_t len)
{
	void *p = NULL;
	if (posix_memalign(&p, IB_BIGIO_ALIGN, len ? len : IB_BIGIO_ALIGN) != 0) {
		ib_error_oom();
		return NULL;
	}
	return p;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void *ib_bigio_alloc_filled(size_t len)
{
	void *p = ib_bigio_alloc(len);
	size_t whole = len - len % IB_BIGIO_ALIGN;
	if (p && whole)
		madvise(p, whole, MADV_POPULATE_WRITE); /* (EINVAL before 5.14: the faults come one by one, as before) */
	return p;
}

static int aligned(const void *buf, size_t len, off_t off)
{
	return ((uintptr_t)buf | len | (uint64_t)off) % IB_BIGIO_ALIGN == 0;
}

/* A plain pread, whole unless at the end of the file. */
static ssize_t pread_plain(ib_bigio *b, char *buf, size_t len, off_t off)
{
	if (set_direct(b, 0) < 0)
		return -1;
	return ib_pread_full(b->fd, buf, len, off);
}

/* The kernel's own answer to "how much of this range is in the page cache" (Linux 6.5). */
#ifndef __NR_cachestat
#define __NR_cachestat 451 /* the same number on every architecture (the unified table) */
#endif
struct bigio_cachestat_range {
	uint64_t off, len;
};
struct bigio_cachestat {
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

/* Pages of [off, off+len) in the page cache (len 0: to the end of the file); -1: the kernel cannot say. */
static long cached_pages(int fd, off_t off, size_t len)
{
	struct bigio_cachestat_range r = { (uint64_t)off, len };
	struct bigio_cachestat cs;
	if (syscall(__NR_cachestat, fd, &r, &cs, 0) < 0)
		return -1;
	return (long)cs.nr_cache;
}

static long pages_of(uint64_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		page = 4096;
	return (long)((len + (uint64_t)page - 1) / (uint64_t)page);
}

/*
 * How to read the file, asked once for all the rest of it (a cachestat per
 * piece costs more than it saves): none of it cached, all of it, or some
 * (then asked per piece).
 */
static void look(ib_bigio *b, off_t off)
{
	struct stat st;
	long have = fstat(b->fd, &st) == 0 && S_ISREG(st.st_mode) ? cached_pages(b->fd, off, 0) : -1;
	if (have < 0)
		b->cache = BIGIO_PLAIN; /* (before Linux 6.5): plain reads, as before */
	else if (have == 0)
		b->cache = BIGIO_DISK;
	else if (st.st_size <= off || have >= pages_of((uint64_t)(st.st_size - off)))
		b->cache = BIGIO_PLAIN;
	else
		b->cache = BIGIO_PIECES;
}

ssize_t ib_bigio_pread(ib_bigio *b, void *buf, size_t len, off_t off)
{
	char *p = buf;
	size_t got = 0;
	/*
	 * What the page cache holds is read from it; else straight from the disk
	 * (the kernel writes back what is dirty in the range first). (RWF_NOWAIT
	 * cannot tell: it starts a readahead, and then waits on it.)
	 */
	if (b->cache == BIGIO_UNKNOWN)
		look(b, off);
	int disk = b->cache == BIGIO_DISK;
	if (b->cache == BIGIO_PIECES) {
		long have = cached_pages(b->fd, off, len);
		disk = have >= 0 && have < pages_of(len);
	}
	while (disk && !b->nodirect && aligned(p, len, off) && got < len) {
		if (set_direct(b, 1) < 0)
			break;
		ssize_t k = pread(b->fd, p + got, len - got, off + (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EINVAL) { /* not for this file after all */
			b->nodirect = 1;
			break;
		}
		if (k < 0)
			return -1;
		if (k == 0)
			return (ssize_t)got;
		got += (size_t)k;
		if (got % IB_BIGIO_ALIGN) /* the end of the file */
			return (ssize_t)got;
	}
	ssize_t n = pread_plain(b, p + got, len - got, off + (off_t)got);
	return n < 0 ? -1 : (ssize_t)got + n;
}

int ib_bigio_write(ib_bigio *b, const void *buf, size_t len)
{
	const char *p = buf;
	/* the fd's position moved by aligned direct writes only, so a buffer and length aligned is a write aligned */
	while (len && !b->nodirect && aligned(p, len, 0)) {
		if (set_direct(b, 1) < 0)
			break;
		ssize_t n = write(b->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL) { /* the file system's alignment is not ours: plain writes */
			b->nodirect = 1;
			break;
		}
		if (n < 0)
			return ib_error_set_os(IB_LAYER_UTIL, "write");
		p += n;
		len -= (size_t)n;
		if ((size_t)n % IB_BIGIO_ALIGN) { /* a short write left the position unaligned */
			b->nodirect = 1;
			break;
		}
	}
	if (!len)
		return 0;
	int saved = errno;
	set_direct(b, 0);
	errno = saved;
	if (b->direct) /* O_DIRECT would not go off: an unaligned write would fail */
		return ib_error_set_os(IB_LAYER_UTIL, "write (O_DIRECT stays on)");
	return ib_write_all(b->fd, p, len);
}

/* ---- a big file's copy: read here, written by two threads ---- */

/*
 * Direct writes wait for the disk: one at a time they leave it half idle
 * (719 MB/s against 1.1 GB/s for two at once on the reference machine). So
 * the copy's pieces go to a ring of buffers that two writer threads empty,
 * each piece with pwrite at its own offset, while this thread reads the
 * next ones. The file gets its final size first (fallocate), so the writes
 * overwrite allocated blocks and ext4 lets them run side by side. The file's
 * last bytes after a multiple of 4 KiB go through the cache once the
 * threads are done.
 */
#define COPY_SLOTS 4
#define COPY_WRITERS 2

typedef struct {
	char *buf;
	size_t len;
	off_t off;
	int full; /* handed to the writers, not yet written */
} copy_slot;

typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t work, freed;
	copy_slot slot[COPY_SLOTS];
	int nslots;    /* no more than the file has pieces */
	int fd;
	int stop;      /* no more pieces will come */
	int err;       /* a write's errno (the first) */
	size_t queued; /* pieces full or being written */
} copy_pool;

static void *copy_writer(void *arg)
{
	copy_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		copy_slot *sl = NULL;
		for (int i = 0; i < p->nslots && !p->err; i++)
			if (p->slot[i].full == 1) {
				sl = &p->slot[i];
				break;
			}
		if (!sl) {
			if (p->stop || p->err)
				break;
			pthread_cond_wait(&p->work, &p->mu);
			continue;
		}
		sl->full = 2; /* being written */
		pthread_mutex_unlock(&p->mu);
		size_t done = 0;
		int err = 0;
		while (done < sl->len) {
			ssize_t n = pwrite(p->fd, sl->buf + done, sl->len - done, sl->off + (off_t)done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				err = n < 0 ? errno : EIO;
				break;
			}
			done += (size_t)n;
		}
		pthread_mutex_lock(&p->mu);
		if (err && !p->err)
			p->err = err;
		sl->full = 0;
		p->queued--;
		pthread_cond_broadcast(&p->freed);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Plain copy from `off` (no threads, through the cache): what a file system without O_DIRECT gets. */
static int copy_plain(ib_bigio *r, ib_bigio *w, char *buf, off_t off, off_t end, off_t *done)
{
	while (off < end) {
		size_t want = end - off < (off_t)IB_BIGIO_CHUNK ? (size_t)(end - off) : IB_BIGIO_CHUNK;
		ssize_t n = ib_bigio_pread(r, buf, want, off);
		if (n < 0)
			return ib_error_set_os(IB_LAYER_UTIL, "read");
		if (n == 0)
			break;
		size_t put = 0;
		while (put < (size_t)n) {
			ssize_t k = pwrite(w->fd, buf + put, (size_t)n - put, off + (off_t)put);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return ib_error_set_os(IB_LAYER_UTIL, "write");
			put += (size_t)k;
		}
		off += n;
	}
	*done = off;
	return 0;
}

int ib_bigio_copy(int in, int out, off_t off, off_t end, off_t *copied)
{
	const off_t start = off;
	*copied = off;
	ib_bigio r, w;
	ib_bigio_init(&r, in);
	ib_bigio_init(&w, out);
	copy_pool p;
	memset(&p, 0, sizeof p);
	p.fd = out;
	/*
	 * No more buffers than the file has pieces, and only those that will be
	 * filled whole are populated at once (fresh memory is dear: see
	 * ib_bigio_alloc_filled); a 9 MiB file touches 9 MiB of them, not 16.
	 */
	uint64_t len = end > off ? (uint64_t)(end - off) : 0;
	uint64_t pieces = (len + IB_BIGIO_CHUNK - 1) / IB_BIGIO_CHUNK;
	p.nslots = pieces >= COPY_SLOTS ? COPY_SLOTS : pieces ? (int)pieces : 1;
	for (int i = 0; i < p.nslots; i++) {
		int whole = pieces > (uint64_t)p.nslots || i + 1 < p.nslots || len % IB_BIGIO_CHUNK == 0;
		if (!(p.slot[i].buf = whole ? ib_bigio_alloc_filled(IB_BIGIO_CHUNK) : ib_bigio_alloc(IB_BIGIO_CHUNK))) {
			for (int j = 0; j < i; j++)
				free(p.slot[j].buf);
			return IB_ERROR;
		}
	}
	int rc = 0;
	pthread_t th[COPY_WRITERS];
	int nth = 0;
	if (off % IB_BIGIO_ALIGN == 0 && set_direct(&w, 1) == 0) {
		/* the final size first: the writes then overwrite blocks already allocated (run side by side) */
		if (fallocate(out, 0, off, end - off) < 0 && errno != EOPNOTSUPP && errno != ENOSYS)
			rc = ib_error_set_os(IB_LAYER_UTIL, "fallocate");
		pthread_mutex_init(&p.mu, NULL);
		pthread_cond_init(&p.work, NULL);
		pthread_cond_init(&p.freed, NULL);
		for (; rc == 0 && nth < COPY_WRITERS; nth++)
			if (pthread_create(&th[nth], NULL, copy_writer, &p) != 0)
				break;
	}
	char *tail = NULL; /* the unaligned end of the last piece: written after the threads */
	size_t tail_len = 0;
	off_t tail_off = 0;
	while (rc == 0 && nth && off < end) {
		pthread_mutex_lock(&p.mu);
		copy_slot *sl = NULL;
		while (!p.err && !sl) {
			for (int i = 0; i < p.nslots; i++)
				if (!p.slot[i].full) {
					sl = &p.slot[i];
					break;
				}
			if (!sl)
				pthread_cond_wait(&p.freed, &p.mu);
		}
		int err = p.err;
		pthread_mutex_unlock(&p.mu);
		if (err)
			break;
		size_t want = end - off < (off_t)IB_BIGIO_CHUNK ? (size_t)(end - off) : IB_BIGIO_CHUNK;
		ssize_t n = ib_bigio_pread(&r, sl->buf, want, off);
		if (n < 0) {
			rc = ib_error_set_os(IB_LAYER_UTIL, "read");
			break;
		}
		if (n == 0)
			break;
		sl->len = (size_t)n - (size_t)n % IB_BIGIO_ALIGN;
		sl->off = off;
		if (sl->len < (size_t)n) { /* the end of the file: its last bytes (after the threads) */
			tail = sl->buf + sl->len;
			tail_len = (size_t)n - sl->len;
			tail_off = off + (off_t)sl->len;
		}
		off += n;
		if (sl->len) {
			pthread_mutex_lock(&p.mu);
			sl->full = 1;
			p.queued++;
			pthread_cond_signal(&p.work);
			pthread_mutex_unlock(&p.mu);
		}
		if (tail || (size_t)n < want) /* the end (of the file, or of what it has now) */
			break;
	}
	int werr = 0;
	if (nth) {
		pthread_mutex_lock(&p.mu);
		p.stop = 1;
		pthread_cond_broadcast(&p.work);
		while (p.queued && !p.err)
			pthread_cond_wait(&p.freed, &p.mu);
		werr = p.err;
		pthread_mutex_unlock(&p.mu);
		for (int i = 0; i < nth; i++)
			pthread_join(th[i], NULL);
		pthread_mutex_destroy(&p.mu);
		pthread_cond_destroy(&p.work);
		pthread_cond_destroy(&p.freed);
	}
	ib_bigio_done(&w); /* O_DIRECT off: the tail and any plain rewrite go through the cache */
	if (rc == 0 && werr == EINVAL) {
		/* the file system's alignment is not ours after all: all of it again, plainly */
		tail = NULL;
		rc = copy_plain(&r, &w, p.slot[0].buf, start, end, &off);
	} else if (rc == 0 && werr) {
		errno = werr;
		rc = ib_error_set_os(IB_LAYER_UTIL, "write");
	} else if (rc == 0 && !nth) {
		rc = copy_plain(&r, &w, p.slot[0].buf, off, end, &off);
	}
	if (rc == 0 && tail) {
		size_t put = 0;
		while (rc == 0 && put < tail_len) {
			ssize_t k = pwrite(out, tail + put, tail_len - put, tail_off + (off_t)put);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				rc = ib_error_set_os(IB_LAYER_UTIL, "write");
			else
				put += (size_t)k;
		}
	}
	/* a file that shrank while it was copied: what it had (the allocation beyond goes) */
	if (rc == 0 && off < end && ftruncate(out, off) < 0)
		rc = ib_error_set_os(IB_LAYER_UTIL, "truncate");
	ib_bigio_done(&r);
	for (int i = 0; i < p.nslots; i++)
		free(p.slot[i].buf);
	*copied = off;
	return rc;
}

/* ---- reads running ahead ---- */

#define AHEAD_NBUF 3

struct ib_bigio_ahead {
	ib_bigio io;
	off_t size, next_off; /* the file's size; where the thread reads next */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *buf[AHEAD_NBUF];
	ssize_t len[AHEAD_NBUF]; /* bytes read into buf[i]; -1: the read failed (err) */
	int err;
	unsigned head, tail; /* the thread fills buf[head % N]; the caller holds buf[tail % N] while tail < head */
	int held;            /* the caller holds buf[tail % N] */
	int stop, done;
	int running, inited; /* a thread is reading; mu and cv exist */
};

static void *ahead_main(void *arg)
{
	ib_bigio_ahead *a = arg;
	pthread_mutex_lock(&a->mu);
	while (!a->stop && !a->done) {
		while (!a->stop && a->head - a->tail >= AHEAD_NBUF)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->stop)
			break;
		unsigned i = a->head % AHEAD_NBUF;
		off_t off = a->next_off;
		size_t want = a->size - off < (off_t)IB_BIGIO_CHUNK ? (size_t)(a->size - off) : IB_BIGIO_CHUNK;
		pthread_mutex_unlock(&a->mu);
		ssize_t n = want ? ib_bigio_pread(&a->io, a->buf[i], want, off) : 0;
		int err = errno;
		pthread_mutex_lock(&a->mu);
		a->len[i] = n;
		a->err = err;
		if (n <= 0 || (size_t)n < want)
			a->done = 1; /* the end, a file that shrank, or an error */
		a->next_off += n > 0 ? n : 0;
		a->head++;
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

ib_bigio_ahead *ib_bigio_ahead_new(void)
{
	ib_bigio_ahead *a = ib_calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	for (int i = 0; i < AHEAD_NBUF; i++) {
		if (!(a->buf[i] = ib_bigio_alloc(IB_BIGIO_CHUNK))) {
			ib_bigio_ahead_free(a);
			return NULL;
		}
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	a->inited = 1;
	return a;
}

int ib_bigio_ahead_begin(ib_bigio_ahead *a, int fd, off_t size)
{
	ib_bigio_init(&a->io, fd);
	a->size = size;
	a->next_off = 0;
	a->head = a->tail = 0;
	a->held = a->stop = a->done = 0;
	a->err = 0;
	if (pthread_create(&a->thread, NULL, ahead_main, a) != 0)
		return ib_error_set(IB_LAYER_UTIL, "read ahead: no thread");
	a->running = 1;
	return 0;
}

const void *ib_bigio_ahead_next(ib_bigio_ahead *a, size_t *len)
{
	pthread_mutex_lock(&a->mu);
	if (a->held) { /* the caller is done with the last one: the thread may refill it */
		a->held = 0;
		a->tail++;
		pthread_cond_broadcast(&a->cv);
	}
	while (a->tail == a->head && !a->done)
		pthread_cond_wait(&a->cv, &a->mu);
	const void *p = NULL;
	*len = 0;
	if (a->tail != a->head) {
		unsigned i = a->tail % AHEAD_NBUF;
		if (a->len[i] < 0) {
			errno = a->err;
		} else {
			p = a->buf[i];
			*len = (size_t)a->len[i];
			a->held = 1;
		}
	} else {
		p = a->buf[0]; /* the end: nothing more */
	}
	pthread_mutex_unlock(&a->mu);
	return p;
}

void ib_bigio_ahead_end(ib_bigio_ahead *a)
{
	if (!a || !a->running)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = 1;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thread, NULL);
	a->running = 0;
	ib_bigio_done(&a->io);
}

void ib_bigio_ahead_free(ib_bigio_ahead *a)
{
	if (!a)
		return;
	ib_bigio_ahead_end(a);
	for (int i = 0; i < AHEAD_NBUF; i++)
		free(a->buf[i]);
	if (a->inited) {
		pthread_mutex_destroy(&a->mu);
		pthread_cond_destroy(&a->cv);
	}
	free(a);
}
