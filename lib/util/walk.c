/* Iterative, fd-relative tree walks with a bounded number of open directories. */
#include "util/walk.h"
#include "util/buf.h"
#include "util/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ib_tree_check_entry(const char *path, size_t len, size_t depth, size_t name_len, int layer,
			const char *what)
{
	if (name_len > IB_TREE_MAX_NAME)
		return ib_error_setc(IB_EINVALID, layer, "%s `%.200s%s`: a name is longer than %d bytes", what,
				     path, len > 200 ? "…" : "", IB_TREE_MAX_NAME);
	if (depth > IB_TREE_MAX_DEPTH)
		return ib_error_setc(IB_EINVALID, layer,
				     "%s `%.200s…`: more than %d levels deep (the limit of a layer)", what,
				     path, IB_TREE_MAX_DEPTH);
	if (len > IB_TREE_MAX_PATH)
		return ib_error_setc(IB_EINVALID, layer,
				     "%s `%.200s…`: longer than %zu bytes (the limit of a layer)", what, path,
				     IB_TREE_MAX_PATH);
	return 0;
}

int ib_tree_check(const char *path, size_t len, int layer, const char *what)
{
	size_t depth = 0, longest = 0, i = 0;
	while (i < len) {
		size_t start = i;
		while (i < len && path[i] != '/')
			i++;
		if (i - start > longest)
			longest = i - start;
		depth += i > start;
		while (i < len && path[i] == '/')
			i++;
	}
	return ib_tree_check_entry(path, len, depth, longest, layer, what);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void ib_dir_names_free(char **names, size_t n)
{
	if (!names)
		return;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int add_name(char ***names, size_t *n, size_t *cap, const char *name)
{
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		char **nn = ib_realloc(*names, ncap * sizeof *nn);
		if (!nn)
			return IB_ERROR;
		*names = nn;
		*cap = ncap;
	}
	if (!((*names)[*n] = ib_strdup(name)))
		return IB_ERROR;
	(*n)++;
	return 0;
}

/*
 * The names of the directory `fd`. `own`: the fd is the caller's alone (a
 * walk's), so it is read itself, from its start, with getdents64; else a
 * description of its own is opened, which leaves the caller's offset be.
 */
static int dir_names(char ***out, size_t *nout, int fd, int own, int layer, const char *shown)
{
	*out = NULL;
	*nout = 0;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	if (own) {
		char buf[32768];
		if (lseek(fd, 0, SEEK_SET) < 0)
			rc = -1;
		for (ssize_t got; rc == 0 && (got = getdents64(fd, buf, sizeof buf)) != 0;) {
			if (got < 0) {
				rc = -1;
				break;
			}
			for (ssize_t at = 0; rc == 0 && at < got;) {
				struct dirent64 *de = (struct dirent64 *)(void *)(buf + at);
				rc = add_name(&names, &n, &cap, de->d_name);
				at += de->d_reclen;
			}
		}
		if (rc == -1)
			rc = shown ? ib_error_set_os(layer, "read directory `%.200s`", shown)
				   : ib_error_set_os(layer, "read directory");
	} else {
		int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
		if (!d) {
			if (dfd >= 0)
				close(dfd);
			return shown ? ib_error_set_os(layer, "open directory `%.200s`", shown)
				     : ib_error_set_os(layer, "open directory");
		}
		struct dirent *de;
		for (;;) {
			errno = 0;
			if (!(de = readdir(d))) {
				if (errno)
					rc = shown ? ib_error_set_os(layer, "read directory `%.200s`", shown)
						   : ib_error_set_os(layer, "read directory");
				break;
			}
			if ((rc = add_name(&names, &n, &cap, de->d_name)) < 0)
				break;
		}
		closedir(d);
	}
	if (rc < 0) {
		ib_dir_names_free(names, n);
		return rc;
	}
	if (n)
		qsort(names, n, sizeof *names, cmp_names);
	*out = names;
	*nout = n;
	return 0;
}

int ib_dir_names(char ***out, size_t *nout, int fd, int layer, const char *shown)
{
	return dir_names(out, nout, fd, 0, layer, shown);
}

typedef struct {
	int fd;         /* -1 while closed (reopened through ".." of the child) */
	struct stat st; /* of this directory */
	char *name;     /* in its parent (NULL for the root) */
	size_t keep;    /* the path's length without this directory */
	char **names;
	size_t n, i;
} frame;

/* Reopen the directory of frame `f` through ".." of `child_fd`, checked by device and inode. */
static int reopen_parent(frame *f, int child_fd, int layer, const char *shown)
{
	int fd = openat(child_fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return ib_error_set_os(layer, "reopen the parent of `%.200s`", shown);
	if (fstat(fd, &st) < 0 || st.st_dev != f->st.st_dev || st.st_ino != f->st.st_ino) {
		close(fd);
		return ib_error_setc(IB_ERROR, layer, "`%.200s…`: the tree was moved while being walked", shown);
	}
	f->fd = fd;
	return 0;
}

int ib_walk(int rootfd, const ib_walk_options *o)
{
	frame *stack = NULL;
	size_t depth = 0, cap = 0;
	ib_buf path = IB_BUF_INIT;
	int rc = 0, layer = o->layer;
	if (ib_buf_puts(&path, "") < 0)
		return IB_ERROR;
	if (!(stack = ib_calloc(cap = 64, sizeof *stack))) {
		ib_buf_dispose(&path);
		return IB_ERROR;
	}
	stack[0].fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (stack[0].fd < 0 || fstat(stack[0].fd, &stack[0].st) < 0)
		rc = ib_error_set_os(layer, "open the root of a walk");
	else
		rc = dir_names(&stack[0].names, &stack[0].n, stack[0].fd, 1, layer, ".");
	while (rc == 0) {
		frame *f = &stack[depth];
		if (f->i == f->n) { /* this directory is done */
			if (depth == 0)
				break;
			frame *up = &stack[depth - 1];
			if (up->fd < 0 && (rc = reopen_parent(up, f->fd, layer, path.ptr)) < 0)
				break;
			close(f->fd);
			f->fd = -1;
			ib_dir_names_free(f->names, f->n);
			f->names = NULL;
			if (o->post) {
				ib_walk_entry e = { up->fd, f->name, path.ptr, path.size, &f->st, depth };
				rc = o->post(&e, o->payload);
			}
			ib_buf_truncate(&path, f->keep);
			free(f->name);
			f->name = NULL;
			depth--;
			continue;
		}
		const char *name = f->names[f->i++];
		struct stat st;
		if (fstatat(f->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			rc = ib_error_set_os(layer, "stat `%.200s/%s`", path.ptr, name);
			break;
		}
		size_t keep = path.size;
		if ((keep && ib_buf_putc(&path, '/') < 0) || ib_buf_puts(&path, name) < 0) {
			rc = IB_ERROR;
			break;
		}
		ib_walk_entry e = { f->fd, name, path.ptr, path.size, &st, depth + 1 };
		int r = o->pre(&e, o->payload);
		if (r < 0) {
			rc = r;
			break;
		}
		if (r == 1 || !S_ISDIR(st.st_mode)) {
			ib_buf_truncate(&path, keep);
			continue;
		}
		if (o->max_depth && depth + 1 > o->max_depth) {
			rc = ib_error_setc(IB_EINVALID, layer, "`%.200s…`: deeper than %zu directories", path.ptr,
					   o->max_depth);
			break;
		}
		if (o->same_fs && st.st_dev != stack[0].st.st_dev) {
			rc = ib_error_setc(IB_EINVALID, layer, "`%.200s`: a mount point (another file system)", path.ptr);
			break;
		}
		int sub = openat(f->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat in;
		if (sub < 0) {
			rc = ib_error_set_os(layer, "open directory `%.200s`", path.ptr);
			break;
		}
		if (fstat(sub, &in) < 0 || in.st_dev != st.st_dev || in.st_ino != st.st_ino) {
			close(sub);
			rc = ib_error_setc(IB_ERROR, layer, "`%.200s`: changed while being walked", path.ptr);
			break;
		}
		if (depth + 1 == cap) {
			frame *ns = ib_realloc(stack, 2 * cap * sizeof *ns);
			if (!ns) {
				close(sub);
				rc = IB_ERROR;
				break;
			}
			stack = ns;
			memset(stack + cap, 0, cap * sizeof *stack);
			cap *= 2;
			f = &stack[depth];
		}
		frame *c = &stack[++depth];
		memset(c, 0, sizeof *c);
		c->fd = sub;
		c->st = st;
		c->keep = keep;
		if (!(c->name = ib_strdup(name))) {
			rc = IB_ERROR;
			break;
		}
		/* bounded fds: the ancestor IB_WALK_FDS levels up is closed, reopened through ".." */
		if (depth >= IB_WALK_FDS && stack[depth - IB_WALK_FDS].fd >= 0) {
			close(stack[depth - IB_WALK_FDS].fd);
			stack[depth - IB_WALK_FDS].fd = -1;
		}
		rc = dir_names(&c->names, &c->n, sub, 1, layer, path.ptr);
	}
	for (size_t i = 0; i <= depth && stack; i++) {
		if (stack[i].fd >= 0)
			close(stack[i].fd);
		ib_dir_names_free(stack[i].names, stack[i].n);
		free(stack[i].name);
	}
	free(stack);
	ib_buf_dispose(&path);
	return rc;
}

static int rm_pre(const ib_walk_entry *e, void *payload)
{
	int layer = *(int *)payload;
	if (S_ISDIR(e->st->st_mode))
		return 0;
	if (unlinkat(e->dirfd, e->name, 0) < 0 && errno != ENOENT)
		return ib_error_set_os(layer, "remove `%.200s`", e->path);
	return 0;
}

static int rm_post(const ib_walk_entry *e, void *payload)
{
	int layer = *(int *)payload;
	if (unlinkat(e->dirfd, e->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return ib_error_set_os(layer, "remove directory `%.200s`", e->path);
	return 0;
}

int ib_rm_at(int dirfd, const char *name, int layer)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : ib_error_set_os(layer, "stat `%s`", name);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return ib_error_set_os(layer, "remove `%s`", name);
		return 0;
	}
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : ib_error_set_os(layer, "open directory `%s`", name);
	struct stat in;
	if (fstat(fd, &in) < 0 || in.st_dev != st.st_dev || in.st_ino != st.st_ino) {
		close(fd);
		return ib_error_set(layer, "remove `%s`: it changed while being removed", name);
	}
	ib_walk_options o = { .pre = rm_pre, .post = rm_post, .payload = &layer, .same_fs = 1, .layer = layer };
	int rc = ib_walk(fd, &o);
	close(fd);
	if (rc < 0) {
		ib_error_prefix("remove `%s`", name);
		return rc;
	}
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return ib_error_set_os(layer, "remove directory `%s`", name);
	return 0;
}
