/*
 * Mount points and directories made inside a root for one run. Everything
 * is resolved inside the root with openat2(RESOLVE_IN_ROOT), so a symlink in
 * an image (/etc -> /, /proc -> /host/x) cannot make us create or remove
 * anything outside it.
 */
#include "execute/internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/path.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* openat2 in the root without setting an error: the fd or -errno. */
static int in_root(int rootfd, const char *rel, int flags)
{
	struct open_how how;
	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	for (;;) {
		long fd = syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof how);
		if (fd >= 0)
			return (int)fd;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

static int record(ib_execute__created *c, const char *rel, int dir)
{
	char **p = ib_realloc(c->paths, (c->count + 1) * sizeof *p);
	if (!p)
		return IB_ERROR;
	c->paths = p;
	int *d = ib_realloc(c->is_dir, (c->count + 1) * sizeof *d);
	if (!d)
		return IB_ERROR;
	c->is_dir = d;
	if (!(c->paths[c->count] = ib_strdup(rel)))
		return IB_ERROR;
	c->is_dir[c->count++] = dir;
	return 0;
}

/*
 * Create the last component of `rel` (whose parent exists) inside the
 * root. O_EXCL / mkdirat never follow a final symlink.
 */
static int create_one(ib_execute__created *c, int rootfd, const char *rel, int dir)
{
	const char *slash = strrchr(rel, '/');
	char *parent = slash ? ib_strndup(rel, (size_t)(slash - rel)) : ib_strdup("");
	if (!parent)
		return IB_ERROR;
	const char *name = slash ? slash + 1 : rel;
	int pfd = in_root(rootfd, parent, O_PATH | O_DIRECTORY);
	int rc = 0;
	if (pfd < 0) {
		errno = -pfd;
		rc = ib_error_set_os(IB_LAYER_EXECUTE, "open `/%s` in the root filesystem", parent);
	} else if (dir) {
		int r = mkdirat(pfd, name, 0755);
		if (r < 0 && errno != EEXIST)
			rc = ib_error_set_os(IB_LAYER_EXECUTE, "create directory `/%s` in the root filesystem", rel);
		else if (r == 0)
			rc = record(c, rel, 1);
	} else {
		int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0 && errno != EEXIST)
			rc = ib_error_set_os(IB_LAYER_EXECUTE, "create `/%s` in the root filesystem", rel);
		else if (fd >= 0) {
			close(fd);
			rc = record(c, rel, 0);
		}
	}
	if (pfd >= 0)
		close(pfd);
	free(parent);
	return rc;
}

/* 1 when the last component of `rel` is a symlink (its parent resolved in the root). */
static int is_symlink(int rootfd, const char *rel)
{
	const char *slash = strrchr(rel, '/');
	char *parent = slash ? ib_strndup(rel, (size_t)(slash - rel)) : ib_strdup("");
	int pfd = parent ? in_root(rootfd, parent, O_PATH | O_DIRECTORY) : -1;
	struct stat st;
	int link = pfd >= 0 && fstatat(pfd, slash ? slash + 1 : rel, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		   S_ISLNK(st.st_mode);
	if (pfd >= 0)
		close(pfd);
	free(parent);
	return link;
}

int ib_execute__ensure_path(ib_execute__created *c, int rootfd, const char *path, int flags)
{
	int dir = flags & IB_ENSURE_DIR, optional = flags & IB_ENSURE_OPTIONAL;
	ib_buf clean = IB_BUF_INIT;
	int rc = ib_path_scope(&clean, path);
	if (rc < 0)
		return rc;
	char *rel = clean.ptr;
	if (strcmp(rel, ".") == 0) {
		ib_buf_dispose(&clean);
		return dir ? 0 : ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE,
					       "`%s` is the root directory, not a file", path);
	}
	/* every parent, then the path itself */
	for (size_t i = 0; rc == 0 && i <= clean.size; i++) {
		if (i != clean.size && rel[i] != '/')
			continue;
		int last = i == clean.size;
		char save = rel[i];
		rel[i] = '\0';
		if (last && (flags & IB_ENSURE_NO_SYMLINK) && is_symlink(rootfd, rel)) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE,
					   "`/%s` in the root filesystem is a symlink; refusing to mount on it", rel);
			break;
		}
		int fd = in_root(rootfd, rel, O_PATH);
		if (fd >= 0) {
			struct stat st;
			if (fstat(fd, &st) < 0)
				rc = ib_error_set_os(IB_LAYER_EXECUTE, "stat `/%s` in the root filesystem", rel);
			else if (!last && !S_ISDIR(st.st_mode))
				rc = optional ? 1 : ib_error_setc(IB_EEXISTS, IB_LAYER_EXECUTE,
					"`/%s` in the root filesystem is not a directory", rel);
			else if (last && (dir ? !S_ISDIR(st.st_mode) : S_ISDIR(st.st_mode)))
				rc = optional ? 1 : ib_error_setc(IB_EEXISTS, IB_LAYER_EXECUTE,
					"`/%s` in the root filesystem is %s", rel,
					dir ? "not a directory" : "a directory");
			close(fd);
		} else if (fd == -ENOENT) {
			/* missing, or a dangling symlink (then create_one finds it exists) */
			struct stat st;
			int pfd = -1;
			const char *slash = strrchr(rel, '/');
			char *parent = slash ? ib_strndup(rel, (size_t)(slash - rel)) : ib_strdup("");
			if (!parent) {
				rc = IB_ERROR;
			} else if ((pfd = in_root(rootfd, parent, O_PATH | O_DIRECTORY)) >= 0 &&
				   fstatat(pfd, slash ? slash + 1 : rel, &st, AT_SYMLINK_NOFOLLOW) == 0) {
				rc = optional ? 1 : ib_error_setc(IB_EEXISTS, IB_LAYER_EXECUTE,
					"`/%s` in the root filesystem is a dangling symlink", rel);
			} else {
				rc = create_one(c, rootfd, rel, last ? dir : 1);
			}
			if (pfd >= 0)
				close(pfd);
			free(parent);
		} else {
			errno = -fd;
			rc = ib_error_set_os(IB_LAYER_EXECUTE, "open `/%s` in the root filesystem", rel);
		}
		rel[i] = save;
	}
	ib_buf_dispose(&clean);
	return rc;
}

void ib_execute__created_undo(ib_execute__created *c, int rootfd)
{
	for (size_t i = c->count; i-- > 0;) {
		const char *rel = c->paths[i];
		const char *slash = strrchr(rel, '/');
		char *parent = slash ? ib_strndup(rel, (size_t)(slash - rel)) : ib_strdup("");
		int pfd = parent && rootfd >= 0 ? in_root(rootfd, parent, O_PATH | O_DIRECTORY) : -1;
		if (pfd >= 0) {
			const char *name = slash ? slash + 1 : rel;
			struct stat st;
			if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
				if (c->is_dir[i] && S_ISDIR(st.st_mode))
					unlinkat(pfd, name, AT_REMOVEDIR); /* fails if not empty: fine */
				else if (!c->is_dir[i] && S_ISREG(st.st_mode) && st.st_size == 0)
					unlinkat(pfd, name, 0);
			}
			close(pfd);
		}
		free(parent);
		free(c->paths[i]);
	}
	free(c->paths);
	free(c->is_dir);
	memset(c, 0, sizeof *c);
}

/* Where the directory `fd` (inside the root `rootfd`) really is, relative to the root. */
static int place_in_root(ib_buf *out, int rootfd, int fd)
{
	char link[64], root[4096], dir[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", rootfd);
	ssize_t rn = readlink(link, root, sizeof root - 1);
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t dn = readlink(link, dir, sizeof dir - 1);
	if (rn < 0 || dn < 0)
		return ib_error_set_os(IB_LAYER_EXECUTE, "readlink `%s`", link);
	root[rn] = dir[dn] = '\0';
	size_t len = strcmp(root, "/") == 0 ? 0 : (size_t)rn;
	if (strncmp(dir, root, len) != 0 || (dir[len] != '/' && dir[len] != '\0'))
		return ib_error_setc(IB_ERROR, IB_LAYER_EXECUTE,
				     "`%s` resolved outside the root filesystem `%s`", dir, root);
	return ib_path_scope(out, dir + len);
}

int ib_execute__ensure_file_followed(ib_execute__created *c, int rootfd, const char *path)
{
	ib_buf cur = IB_BUF_INIT, next = IB_BUF_INIT, dir = IB_BUF_INIT;
	int rc = ib_path_scope(&cur, path);
	for (int hops = 0; rc == 0; hops++) {
		if (hops > 40) {
			rc = 1; /* a loop: left alone, like a dangling symlink */
			break;
		}
		const char *rel = cur.ptr;
		const char *slash = strrchr(rel, '/');
		char *parent = slash ? ib_strndup(rel, (size_t)(slash - rel)) : ib_strdup("");
		if (!parent) {
			rc = IB_ERROR;
			break;
		}
		const char *name = slash ? slash + 1 : rel;
		int pfd = in_root(rootfd, parent, O_PATH | O_DIRECTORY);
		free(parent);
		struct stat st;
		if (pfd < 0 || fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode)) {
			/* not a symlink (or missing, parents too): the file itself */
			if (pfd >= 0)
				close(pfd);
			rc = ib_execute__ensure_path(c, rootfd, rel, IB_ENSURE_OPTIONAL);
			break;
		}
		char target[4096];
		ssize_t n = readlinkat(pfd, name, target, sizeof target - 1);
		if (n < 0) {
			rc = ib_error_set_os(IB_LAYER_EXECUTE, "readlink `/%s` in the root filesystem", rel);
			close(pfd);
			break;
		}
		target[n] = '\0';
		/* relative to where the link's directory really is (its parents may be symlinks too) */
		ib_buf_clear(&dir);
		ib_buf_clear(&next);
		if (target[0] != '/')
			rc = place_in_root(&dir, rootfd, pfd);
		close(pfd);
		if (rc == 0)
			rc = target[0] == '/' ? ib_buf_puts(&next, target)
					      : ib_buf_printf(&next, "%s/%s", dir.ptr, target);
		if (rc == 0) {
			ib_buf_clear(&cur);
			rc = ib_path_scope(&cur, next.ptr);
		}
		if (rc == 0 && strcmp(cur.ptr, ".") == 0)
			rc = 1; /* a link to the root directory */
	}
	ib_buf_dispose(&cur);
	ib_buf_dispose(&next);
	ib_buf_dispose(&dir);
	return rc;
}
