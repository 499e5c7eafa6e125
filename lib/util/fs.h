/* File-system helpers: whole-file reads, atomic writes, trees, safe opens in a root. */
#ifndef IB_UTIL_FS_H
#define IB_UTIL_FS_H

#include <stdint.h>
#include <sys/types.h>
#include "imagebuild/buffer.h"

/* Read a whole (small) file into `out`. IB_ENOTFOUND when missing. */
int ib_read_file(ib_buf *out, const char *path);

/*
 * Read what `fd` yields until EOF into `out` (replacing it). More than
 * `max` bytes (0: no limit) is IB_EINVALID; `what` names the file in
 * errors. Does not close `fd`.
 */
int ib_read_fd(ib_buf *out, int fd, size_t max, const char *what);

/*
 * Read a file the host reads as configuration (registries.conf; a build
 * context's files use ib_read_regular_file_in): only a regular file is
 * opened and read (symlinks are followed). A FIFO, device, socket or
 * directory is refused without reading it, so nothing blocks; more than
 * `max` bytes is refused before reading. Both IB_EINVALID, naming `path`.
 * IB_ENOTFOUND when it does not exist.
 */
int ib_read_regular_file(ib_buf *out, const char *path, size_t max);
/*
 * The same for `name` inside the directory `dir`, resolved as BuildKit
 * resolves a context's files: every component and symlink inside `dir`
 * as if it were "/" (ib_open_in_root), so a link to `../secret` or
 * `/etc/shadow` names `dir/secret` or `dir/etc/shadow`, never a file
 * outside. Errors name `dir/name`.
 */
int ib_read_regular_file_in(ib_buf *out, const char *dir, const char *name, size_t max);

/* write(2) all of it, retrying on EINTR and short writes. */
int ib_write_all(int fd, const void *data, size_t len);
/*
 * read(2) / pread(2) at `off` up to `len` bytes, retrying on EINTR and short
 * reads: fewer only at the end of the file. -1 with errno set (no error set).
 */
ssize_t ib_read_full(int fd, void *buf, size_t len);
ssize_t ib_pread_full(int fd, void *buf, size_t len, off_t off);

/* fsync a directory, so a rename or unlink in it is durable. */
int ib_fsync_dir(const char *dir);

/*
 * An atomic file: written to a temporary file beside `path`, then fsynced
 * and renamed over it at commit. Until commit the target is untouched; an
 * abort (or a crash) leaves at worst a `.tmp-*` file that nothing reads.
 */
typedef struct {
	int fd;
	char *path;
	char *tmp;
} ib_atomic_file;

int ib_atomic_open(ib_atomic_file *af, const char *path, mode_t mode);
int ib_atomic_commit(ib_atomic_file *af); /* fsync, rename, fsync dir; closes */
void ib_atomic_abort(ib_atomic_file *af); /* close and unlink the temp file; idempotent */

/* The whole of it in one call. */
int ib_atomic_write(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Replace `path` (0644) with `data` for a cache that checks itself (a sum):
 * written to a temporary file beside it and renamed over it, not fsynced (a
 * torn one fails its check and is made again). 0, or IB_ERROR with the
 * error set and the temporary file gone.
 */
int ib_cache_write(const char *path, const void *data, size_t len);

/* Test hook: called at each step of an atomic write ("open", "write", "fsync", "rename"). */
typedef void (*ib_fs_hook)(const char *step, const char *path);
void ib_fs_set_hook(ib_fs_hook hook);
void ib_fs__hook(const char *step, const char *path);

/* mkdir -p. Existing directories are fine. */
int ib_mkdir_p(const char *path, mode_t mode);

/* rm -rf without following symlinks and without crossing into other mounts' trees by name. ENOENT is fine. */
int ib_rm_rf(const char *path);

/*
 * Open `path` relative to the directory `rootfd`, resolving every component
 * (symlinks and ".." included) as if `rootfd` were "/": nothing outside can
 * be reached. Uses openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS).
 * `flags` and `mode` as for openat(2). Returns the fd or < 0 with the error set.
 */
int ib_open_in_root(int rootfd, const char *path, int flags, mode_t mode);

/*
 * A new private directory $TMPDIR/<tag>-XXXXXX (/tmp without TMPDIR), as
 * mkdtemp(3) makes it (mode 0700). Returns its path (free() it) or NULL
 * with the error set.
 */
char *ib_tmpdir_new(const char *tag);

/* 1 if `path` exists (lstat), 0 if not. */
int ib_path_exists(const char *path);

struct stat;
/* 1 when `a` and `b` are the same file, unchanged: device, inode, size, mtime and ctime (to the ns). */
int ib_stat_same(const struct stat *a, const struct stat *b);
/*
 * 1 when both its mtime and ctime are more than `ns` in the past: a change
 * within the timestamps' granularity could otherwise leave them as they
 * were (git's "racily clean" rule; ctime cannot be set by a user).
 */
int ib_stat_settled(const struct stat *st, long long ns);

#endif
