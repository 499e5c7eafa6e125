#include "util/fs.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/path.h"
#include "util/walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static ib_fs_hook fs_hook;

void ib_fs_set_hook(ib_fs_hook hook)
{
	fs_hook = hook;
}

void ib_fs__hook(const char *step, const char *path)
{
	if (fs_hook)
		fs_hook(step, path);
}

int ib_read_fd(ib_buf *out, int fd, size_t max, const char *what)
{
	ib_buf_clear(out);
	/* a regular file: room for all of it at once, read in place (no regrowth, no copy) */
	struct stat st;
	size_t want = 65536;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && (!max || (uint64_t)st.st_size <= max))
		want = (size_t)st.st_size + 1; /* +1: the end is seen by a read of 0 without regrowing */
	for (;;) {
		if (out->asize < out->size + want + 1 && ib_buf_grow(out, out->size + want) < 0)
			return IB_ERROR;
		size_t room = out->asize - out->size - 1;
		if (max && room > max - out->size + 1)
			room = max - out->size + 1; /* one byte past max tells a larger file */
		ssize_t n = read(fd, out->ptr + out->size, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ib_error_set_os(IB_LAYER_UTIL, "read `%s`", what);
		if (n == 0)
			break;
		if (max && out->size + (size_t)n > max)
			return ib_error_setc(IB_EINVALID, IB_LAYER_UTIL, "`%s` is larger than %zu bytes", what, max);
		out->size += (size_t)n;
		out->ptr[out->size] = '\0';
		want = 65536;
	}
	return out->ptr ? 0 : ib_buf_grow(out, 0);
}

int ib_read_file(ib_buf *out, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_UTIL, "open `%s`", path);
	int rc = ib_read_fd(out, fd, 0, path);
	close(fd);
	return rc;
}

static const char *kind_of(mode_t m)
{
	return S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
	       : S_ISSOCK(m) ? "a socket" : S_ISDIR(m) ? "a directory" : "not a regular file";
}

int ib_read_regular_file(ib_buf *out, const char *path, size_t max)
{
	struct stat st, fst;
	if (stat(path, &st) < 0)
		return ib_error_set_os(IB_LAYER_UTIL, "read `%s`", path);
	if (!S_ISREG(st.st_mode))
		return ib_error_setc(IB_EINVALID, IB_LAYER_UTIL, "read `%s`: it is %s, not a regular file",
				     path, kind_of(st.st_mode));
	if (max && (uint64_t)st.st_size > max)
		return ib_error_setc(IB_EINVALID, IB_LAYER_UTIL, "read `%s`: it is larger than %zu bytes",
				     path, max);
	/* O_NONBLOCK: should it have become a FIFO since, open does not wait for a writer */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_UTIL, "open `%s`", path);
	int rc;
	if (fstat(fd, &fst) < 0)
		rc = ib_error_set_os(IB_LAYER_UTIL, "stat `%s`", path);
	else if (!S_ISREG(fst.st_mode) || fst.st_dev != st.st_dev || fst.st_ino != st.st_ino)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_UTIL, "read `%s`: it changed while being opened", path);
	else
		rc = ib_read_fd(out, fd, max, path);
	close(fd);
	return rc;
}

int ib_read_regular_file_in(ib_buf *out, const char *dir, const char *name, size_t max)
{
	ib_buf shown = IB_BUF_INIT;
	ib_path_join(&shown, dir, name);
	const char *path = ib_buf_cstr(&shown);
	int rc = 0, fd = -1, pfd = -1;
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat st, fst;
	if (dfd < 0) {
		rc = ib_error_set_os(IB_LAYER_UTIL, "read `%s`", path);
		goto out;
	}
	/* O_PATH: a device or FIFO is looked at, never opened */
	pfd = ib_open_in_root(dfd, name, O_PATH, 0);
	if (pfd < 0) {
		rc = pfd;
		ib_error_prefix("read `%s`", path);
		goto out;
	}
	if (fstat(pfd, &st) < 0) {
		rc = ib_error_set_os(IB_LAYER_UTIL, "stat `%s`", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_UTIL, "read `%s`: it is %s, not a regular file",
				   path, kind_of(st.st_mode));
		goto out;
	}
	if (max && (uint64_t)st.st_size > max) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_UTIL, "read `%s`: it is larger than %zu bytes", path, max);
		goto out;
	}
	/* reopen the very file the O_PATH descriptor names (no second lookup by name) */
	char self[64];
	snprintf(self, sizeof self, "/proc/self/fd/%d", pfd);
	fd = open(self, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		rc = ib_error_set_os(IB_LAYER_UTIL, "open `%s`", path);
	else if (fstat(fd, &fst) < 0)
		rc = ib_error_set_os(IB_LAYER_UTIL, "stat `%s`", path);
	else if (!S_ISREG(fst.st_mode) || fst.st_dev != st.st_dev || fst.st_ino != st.st_ino)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_UTIL, "read `%s`: it changed while being opened", path);
	else
		rc = ib_read_fd(out, fd, max, path);
out:
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	if (dfd >= 0)
		close(dfd);
	ib_buf_dispose(&shown);
	return rc;
}

int ib_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ib_error_set_os(IB_LAYER_UTIL, "write");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* pread(2) from `off` when `at`, else read(2) */
static ssize_t read_loop(int fd, void *buf, size_t len, int at, off_t off)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = at ? pread(fd, p + got, len - got, off + (off_t)got) : read(fd, p + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

ssize_t ib_read_full(int fd, void *buf, size_t len)
{
	return read_loop(fd, buf, len, 0, 0);
}

ssize_t ib_pread_full(int fd, void *buf, size_t len, off_t off)
{
	return read_loop(fd, buf, len, 1, off);
}

int ib_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_UTIL, "open directory `%s`", dir);
	int rc = 0;
	if (fsync(fd) < 0 && errno != EINVAL)
		rc = ib_error_set_os(IB_LAYER_UTIL, "fsync directory `%s`", dir);
	close(fd);
	return rc;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return ib_strdup(".");
	if (slash == path)
		return ib_strdup("/");
	return ib_strndup(path, (size_t)(slash - path));
}

/* A temporary name beside `path`, unique in the process and between processes. */
static char *tmp_name(const char *path)
{
	static unsigned long counter;
	return ib_sprintf("%s.tmp-%ld-%lu", path, (long)getpid(), __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
}

int ib_atomic_open(ib_atomic_file *af, const char *path, mode_t mode)
{
	af->fd = -1;
	af->path = ib_strdup(path);
	af->tmp = tmp_name(path);
	if (!af->path || !af->tmp) {
		free(af->path);
		free(af->tmp);
		af->path = af->tmp = NULL;
		return IB_ERROR;
	}
	ib_fs__hook("open", path);
	af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (af->fd < 0) {
		int rc = ib_error_set_os(IB_LAYER_UTIL, "create `%s`", af->tmp);
		free(af->path);
		free(af->tmp);
		af->path = af->tmp = NULL;
		return rc;
	}
	return 0;
}

int ib_atomic_commit(ib_atomic_file *af)
{
	int rc = 0;
	ib_fs__hook("fsync", af->path);
	if (fsync(af->fd) < 0)
		rc = ib_error_set_os(IB_LAYER_UTIL, "fsync `%s`", af->tmp);
	if (close(af->fd) < 0 && rc == 0)
		rc = ib_error_set_os(IB_LAYER_UTIL, "close `%s`", af->tmp);
	af->fd = -1;
	if (rc == 0) {
		ib_fs__hook("rename", af->path);
		if (rename(af->tmp, af->path) < 0)
			rc = ib_error_set_os(IB_LAYER_UTIL, "rename `%s` to `%s`", af->tmp, af->path);
	}
	if (rc == 0) {
		char *d = dir_of(af->path);
		rc = d ? ib_fsync_dir(d) : IB_ERROR;
		free(d);
		ib_fs__hook("done", af->path);
	} else {
		unlink(af->tmp);
	}
	free(af->path);
	free(af->tmp);
	af->path = af->tmp = NULL;
	return rc;
}

void ib_atomic_abort(ib_atomic_file *af)
{
	if (af->fd >= 0)
		close(af->fd);
	af->fd = -1;
	if (af->tmp)
		unlink(af->tmp);
	free(af->path);
	free(af->tmp);
	af->path = af->tmp = NULL;
}

int ib_cache_write(const char *path, const void *data, size_t len)
{
	char *tmp = tmp_name(path);
	if (!tmp)
		return IB_ERROR;
	int rc = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		rc = ib_error_set_os(IB_LAYER_UTIL, "create `%s`", tmp);
	else if (ib_write_all(fd, data, len) < 0)
		rc = IB_ERROR;
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = ib_error_set_os(IB_LAYER_UTIL, "close `%s`", tmp);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = ib_error_set_os(IB_LAYER_UTIL, "rename `%s`", tmp);
	if (rc < 0 && fd >= 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

int ib_atomic_write(const char *path, const void *data, size_t len, mode_t mode)
{
	ib_atomic_file af;
	int rc = ib_atomic_open(&af, path, mode);
	if (rc < 0)
		return rc;
	ib_fs__hook("write", path);
	if ((rc = ib_write_all(af.fd, data, len)) < 0) {
		ib_error_prefix("write `%s`", af.tmp);
		ib_atomic_abort(&af);
		return rc;
	}
	return ib_atomic_commit(&af);
}

int ib_mkdir_p(const char *path, mode_t mode)
{
	struct stat st0;
	if (stat(path, &st0) == 0 && S_ISDIR(st0.st_mode))
		return 0; /* the common case (a store opened again): one call, not one per component */
	ib_buf b = IB_BUF_INIT;
	if (ib_buf_puts(&b, path) < 0)
		return IB_ERROR;
	for (size_t i = 1; i <= b.size; i++) {
		if (i != b.size && b.ptr[i] != '/')
			continue;
		char c = b.ptr[i];
		b.ptr[i] = '\0';
		if (mkdir(b.ptr, mode) < 0 && errno != EEXIST) {
			int rc = ib_error_set_os(IB_LAYER_UTIL, "mkdir `%s`", b.ptr);
			ib_buf_dispose(&b);
			return rc;
		}
		b.ptr[i] = c;
	}
	struct stat st;
	int rc = 0;
	if (stat(path, &st) < 0)
		rc = ib_error_set_os(IB_LAYER_UTIL, "stat `%s`", path);
	else if (!S_ISDIR(st.st_mode))
		rc = ib_error_setc(IB_EEXISTS, IB_LAYER_UTIL, "`%s` exists and is not a directory", path);
	ib_buf_dispose(&b);
	return rc;
}

int ib_rm_rf(const char *path)
{
	return ib_rm_at(AT_FDCWD, path, IB_LAYER_UTIL);
}

int ib_open_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
	struct open_how how;
	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	if (flags & (O_CREAT | O_TMPFILE))
		how.mode = mode;
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	const char *p = path;
	while (*p == '/')
		p++;
	if (!*p)
		p = ".";
	for (;;) {
		long fd = syscall(SYS_openat2, rootfd, p, &how, sizeof how);
		if (fd >= 0)
			return (int)fd;
		if (errno == EAGAIN || errno == EINTR)
			continue;
		return ib_error_set_os(IB_LAYER_UTIL, "open `%s` inside the root", path);
	}
}

char *ib_tmpdir_new(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *dir = ib_sprintf("%s/%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (dir && !mkdtemp(dir)) {
		ib_error_set_os(IB_LAYER_UTIL, "mkdtemp `%s`", dir);
		free(dir);
		return NULL;
	}
	return dir;
}

int ib_path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int ib_stat_same(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int ib_stat_settled(const struct stat *st, long long ns)
{
	struct timespec now;
	if (clock_gettime(CLOCK_REALTIME, &now) < 0)
		return 0;
	long long n = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
	long long m = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	long long c = (long long)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
	return m < n - ns && c < n - ns;
}
