/*
 * Big files around the page cache (util/bigio.h): the same bytes whichever
 * way they go (cached, read directly, written directly by two threads, the
 * unaligned tail through the cache), and on a file system that takes
 * O_DIRECT the copy really is not left in the page cache.
 */
#include "tests.h"
#include "util/bigio.h"
#include "util/hash.h"
#include "imagebuild/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

/* Pages of [off, off+len) of `fd` in the page cache; -1 when the kernel cannot say (before 6.5). */
static long cached_range(int fd, off_t off, size_t len)
{
	struct {
		uint64_t off, len;
	} r = { (uint64_t)off, len };
	struct {
		uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
	} cs;
	if (syscall(__NR_cachestat, fd, &r, &cs, 0) < 0)
		return -1;
	return (long)cs.nr_cache;
}

static long cached_pages(int fd, size_t len)
{
	return cached_range(fd, 0, len);
}

/*
 * A fresh directory on a disk file system, where the cache bypass can be
 * seen: $TMPDIR's, else /var/tmp's when /tmp is tmpfs. `uncached`: it is
 * not tmpfs (whose files are all page cache).
 */
static char *disk_tmpdir(const char *tag, int *uncached)
{
	char *dir = ib_test_tmpdir(tag);
	struct statfs fs;
	assert_int_equal(statfs(dir, &fs), 0);
	if (fs.f_type == TMPFS_MAGIC && !getenv("TMPDIR")) {
		rmdir(dir);
		free(dir);
		if (!(dir = strdup("/var/tmp/ibtest-bigio-XXXXXX")))
			abort();
		assert_non_null(mkdtemp(dir));
		assert_int_equal(statfs(dir, &fs), 0);
	}
	*uncached = fs.f_type != TMPFS_MAGIC;
	return dir;
}

static int takes_direct(const char *dir);

/* Whether a bypass can be checked in `dir`; a machine that cannot is said (a failure under IB_TEST_STRICT). */
static int bypass_checkable(const char *dir, int fd)
{
	if (cached_pages(fd, 1) >= 0 && takes_direct(dir))
		return 1;
	const char *strict = getenv("IB_TEST_STRICT");
	if (strict && !strcmp(strict, "1"))
		fail_msg("cachestat or O_DIRECT unavailable in %s: the cache bypass is not checked", dir);
	print_message("SKIP (part): cachestat or O_DIRECT unavailable in %s\n", dir);
	return 0;
}

static unsigned char *pattern(size_t len, uint32_t seed)
{
	unsigned char *p = malloc(len);
	uint32_t x = seed;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (unsigned char)(x >> 16);
	}
	return p;
}

static char *make_file(const char *dir, const char *name, const unsigned char *data, size_t len)
{
	char *path = malloc(strlen(dir) + strlen(name) + 2);
	if (!path)
		abort();
	sprintf(path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	size_t put = 0;
	while (put < len) {
		ssize_t n = write(fd, data + put, len - put);
		assert_true(n > 0);
		put += (size_t)n;
	}
	assert_int_equal(fsync(fd), 0);
	close(fd);
	return path;
}

static void assert_file_is(const char *path, const unsigned char *data, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((size_t)st.st_size, len);
	unsigned char *back = malloc(len + 1);
	size_t got = 0;
	ssize_t n;
	while ((n = read(fd, back + got, len + 1 - got)) > 0)
		got += (size_t)n;
	assert_int_equal(got, len);
	assert_memory_equal(back, data, len);
	free(back);
	close(fd);
}

/* Does this directory's file system take O_DIRECT? */
static int takes_direct(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/probe", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	unlink(path);
	return fd >= 0;
}

/* `uncached`: the directory is on a disk file system (not tmpfs, whose files are all page cache) */
static void copy_in(const char *dir, size_t len, off_t claimed, off_t from, int uncached)
{
	unsigned char *data = pattern(len, (uint32_t)len);
	char *src = make_file(dir, "src", data, len);
	char dst[4096];
	snprintf(dst, sizeof dst, "%s/dst", dir);
	unlink(dst);
	int in = open(src, O_RDONLY | O_CLOEXEC);
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(in >= 0 && out >= 0);
	if (from) /* what a copy before it did */
		assert_int_equal(pwrite(out, data, (size_t)from, 0), from);
	off_t end = -1;
	assert_int_equal(ib_bigio_copy(in, out, from, claimed, &end), 0);
	size_t want = (size_t)claimed < len ? (size_t)claimed : len; /* a file that shrank: what it had */
	assert_int_equal(end, (off_t)want);
	assert_int_equal(fsync(out), 0);
	if (uncached && from % IB_BIGIO_ALIGN == 0) { /* (an unaligned start is copied plainly) */
		/* the pieces went around the cache: at most the last bytes and what `from` wrote are in it */
		if (bypass_checkable(dir, out)) {
			long pages = cached_pages(out, want);
			print_message("%zu bytes copied, %ld of %zu pages in the page cache\n", want, pages,
				      want / IB_BIGIO_ALIGN);
			assert_true(pages <= (long)(from / IB_BIGIO_ALIGN) + 2);
		}
	}
	close(in);
	close(out);
	assert_file_is(dst, data, want);
	unlink(src);
	unlink(dst);
	free(src);
	free(data);
}

static void test_copy_same_bytes(void **state)
{
	(void)state;
	int uncached;
	char *dir = disk_tmpdir("bigio", &uncached);
	copy_in(dir, 3 * IB_BIGIO_CHUNK + 5 * IB_BIGIO_ALIGN + 123, 3 * IB_BIGIO_CHUNK + 5 * IB_BIGIO_ALIGN + 123, 0, uncached);
	copy_in(dir, 4 * IB_BIGIO_CHUNK, 4 * IB_BIGIO_CHUNK, 0, uncached);            /* no tail */
	copy_in(dir, 2 * IB_BIGIO_CHUNK + 77, 2 * IB_BIGIO_CHUNK + 77, 4096, uncached); /* started by another copy */
	copy_in(dir, 2 * IB_BIGIO_CHUNK + 4000, 5 * IB_BIGIO_CHUNK, 0, uncached);      /* shrank since its stat */
	copy_in(dir, 3 * IB_BIGIO_CHUNK, 2 * IB_BIGIO_CHUNK + 9, 0, uncached);         /* grew: what it had */
	copy_in(dir, 2 * IB_BIGIO_CHUNK + 1, 2 * IB_BIGIO_CHUNK + 1, 13, uncached);   /* unaligned start: plainly */
	rmdir(dir);
	free(dir);
}

/* tmpfs: O_DIRECT or not (by kernel), the same bytes. */
static void test_copy_on_tmpfs(void **state)
{
	(void)state;
	char tmpl[] = "/dev/shm/ibtest-bigio-XXXXXX";
	char *dir = mkdtemp(tmpl);
	assert_non_null(dir);
	copy_in(dir, 2 * IB_BIGIO_CHUNK + 4097, 2 * IB_BIGIO_CHUNK + 4097, 0, 0);
	rmdir(dir);
}

/*
 * Reads: part of a file in the cache, part only on the disk; every offset
 * and length gives the file's bytes, and what was read from the disk is
 * still not cached after (read around the cache, not through it).
 */
static void test_pread_mixed(void **state)
{
	(void)state;
	int uncached;
	char *dir = disk_tmpdir("bigio-read", &uncached);
	size_t len = 3 * IB_BIGIO_CHUNK + 1000;
	unsigned char *data = pattern(len, 7);
	char *path = make_file(dir, "f", data, len);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	/* the middle piece out of the cache (written back by make_file's fsync) */
	assert_int_equal(posix_fadvise(fd, IB_BIGIO_CHUNK, IB_BIGIO_CHUNK, POSIX_FADV_DONTNEED), 0);
	unsigned char *buf = ib_bigio_alloc(IB_BIGIO_CHUNK);
	assert_non_null(buf);
	ib_bigio b;
	ib_bigio_init(&b, fd);
	for (off_t off = 0; off < (off_t)len; off += IB_BIGIO_CHUNK) {
		ssize_t n = ib_bigio_pread(&b, buf, IB_BIGIO_CHUNK, off);
		size_t want = len - (size_t)off < IB_BIGIO_CHUNK ? len - (size_t)off : IB_BIGIO_CHUNK;
		assert_int_equal(n, (ssize_t)want);
		assert_memory_equal(buf, data + off, want);
	}
	if (uncached && bypass_checkable(dir, fd))
		assert_int_equal(cached_range(fd, IB_BIGIO_CHUNK, IB_BIGIO_CHUNK), 0);
	/* unaligned: plainly, the same */
	assert_int_equal(ib_bigio_pread(&b, buf + 1, 5000, 3), 5000);
	assert_memory_equal(buf + 1, data + 3, 5000);
	/* at the end: nothing */
	assert_int_equal(ib_bigio_pread(&b, buf, IB_BIGIO_CHUNK, (off_t)len), 0);
	ib_bigio_done(&b);
	/* the fd is as it was (no O_DIRECT left on) */
	assert_int_equal(fcntl(fd, F_GETFL) & O_DIRECT, 0);
	/* a big file's digest (read around the cache) is its bytes' */
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	ib_digest d, want;
	uint64_t size = 0;
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(ib_sha256_fd(&d, fd, &size), 0);
	assert_int_equal(size, len);
	assert_int_equal(ib_digest_of(&want, data, len), 0);
	assert_true(ib_digest_equal(&d, &want));
	assert_int_equal(read(fd, buf, 1), 0); /* left at the end, as read(2) leaves it */
	if (uncached && bypass_checkable(dir, fd)) /* hashed around the cache too */
		assert_true(cached_pages(fd, len) <= 1);
	close(fd);
	free(buf);
	unlink(path);
	free(path);
	free(data);
	rmdir(dir);
	free(dir);
}

/* Read `fd` (of `size` bytes claimed) with the read-ahead; the bytes in `out`, their count returned. */
static size_t read_ahead_all(ib_bigio_ahead *a, int fd, off_t size, unsigned char *out)
{
	size_t got = 0, n = 1;
	assert_int_equal(ib_bigio_ahead_begin(a, fd, size), 0);
	while (n) {
		const void *p = ib_bigio_ahead_next(a, &n);
		assert_non_null(p);
		assert_true(got + n <= (size_t)size);
		memcpy(out + got, p, n);
		got += n;
	}
	ib_bigio_ahead_end(a);
	return got;
}

/*
 * Reads running ahead on a thread: the file's bytes in order, for sizes
 * around the piece size, the reader reused for several files; a file that
 * shrank ends early (the caller pads); the fd is left without O_DIRECT;
 * a read error is reported, not taken for the end.
 */
static void test_read_ahead(void **state)
{
	(void)state;
	int uncached;
	char *dir = disk_tmpdir("bigio-ahead", &uncached);
	ib_bigio_ahead *a = ib_bigio_ahead_new();
	assert_non_null(a);
	const size_t sizes[] = { 0, 1, IB_BIGIO_CHUNK, IB_BIGIO_CHUNK + 1, 5 * IB_BIGIO_CHUNK + 4097 };
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		size_t len = sizes[k];
		unsigned char *data = pattern(len ? len : 1, (int)k + 3), *back = malloc(len + 1);
		char *path = make_file(dir, "f", data, len);
		int fd = open(path, O_RDWR | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
		assert_int_equal(read_ahead_all(a, fd, (off_t)len, back), len);
		assert_memory_equal(back, data, len);
		assert_int_equal(fcntl(fd, F_GETFL) & O_DIRECT, 0);
		/* it shrank after the header was written: what is there, then the end */
		if (len > IB_BIGIO_CHUNK + 10) {
			assert_int_equal(ftruncate(fd, IB_BIGIO_CHUNK + 10), 0);
			assert_int_equal(read_ahead_all(a, fd, (off_t)len, back), IB_BIGIO_CHUNK + 10);
			assert_memory_equal(back, data, IB_BIGIO_CHUNK + 10);
		}
		close(fd);
		unlink(path);
		free(path);
		free(data);
		free(back);
	}
	/* a read that fails: NULL with errno, never a short file */
	int wfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(wfd >= 0);
	assert_int_equal(ib_bigio_ahead_begin(a, wfd, IB_BIGIO_CHUNK), 0);
	size_t n = 7;
	errno = 0;
	assert_null(ib_bigio_ahead_next(a, &n));
	assert_int_equal(errno, EISDIR);
	ib_bigio_ahead_end(a);
	close(wfd);
	ib_bigio_ahead_free(a);
	ib_bigio_ahead_free(NULL);
	rmdir(dir);
	free(dir);
}

DEFINE_GROUP(bigio_tests, cmocka_unit_test(test_copy_same_bytes), cmocka_unit_test(test_copy_on_tmpfs),
	     cmocka_unit_test(test_pread_mixed), cmocka_unit_test(test_read_ahead))
