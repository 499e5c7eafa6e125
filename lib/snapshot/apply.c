/*
 * Unpacking a layer tar into a directory, safely.
 *
 * Every path of an entry is resolved inside the root at the moment of use
 * (openat2 with RESOLVE_IN_ROOT for the parent directory, then *at() calls
 * that never follow the last component), so symlinks in the layer or below
 * it (also ones created earlier in the same layer, chains, symlinked
 * parents) cannot lead out. Nothing is cached across entries, so an entry
 * replacing a directory by a symlink cannot redirect later entries through
 * a stale resolution (containerd's CVE-2025-47290).
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/rootless.h"
#include "snapshot/internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/walk.h"

#define SYMLINK_MAX_LEN 4095 /* PATH_MAX with its NUL: what symlink(2) takes */
#define SIZE_MAX_ENTRY ((int64_t)1 << 42) /* 4 TiB: anything larger is an absurd header */
#define DATA_BUF (1 << 20)

/*
 * The paths this layer touched, as a trie of components (node 0 is the
 * root): memory in the sum of the names, not of the whole paths, which in
 * a tree 10,000 levels deep would be quadratic.
 */
typedef struct {
	uint32_t parent;
	uint32_t len;
	size_t name; /* offset in the arena */
	unsigned created : 1, timed : 1;
} pnode;

typedef struct {
	pnode *nodes;
	size_t n, cap;
	char *arena;
	size_t alen, acap;
	uint32_t *slots; /* node ids + 1, open addressing on (parent, name) */
	size_t scap;
} ptrie;

static uint64_t hash_comp(uint32_t parent, const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL ^ parent;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h ^ (h >> 29);
}

static int trie_rehash(ptrie *t, size_t ncap)
{
	uint32_t *ns = ib_calloc(ncap, sizeof *ns);
	if (!ns)
		return -1;
	for (size_t id = 1; id < t->n; id++) {
		pnode *nd = &t->nodes[id];
		size_t j = hash_comp(nd->parent, t->arena + nd->name, nd->len) & (ncap - 1);
		while (ns[j])
			j = (j + 1) & (ncap - 1);
		ns[j] = (uint32_t)id + 1;
	}
	free(t->slots);
	t->slots = ns;
	t->scap = ncap;
	return 0;
}

/* The child `s` of node `parent`: its id, 0 when missing (and not `create`), -1 on OOM. */
static long trie_child(ptrie *t, uint32_t parent, const char *s, size_t len, int create)
{
	if (t->scap) {
		for (size_t j = hash_comp(parent, s, len) & (t->scap - 1); t->slots[j]; j = (j + 1) & (t->scap - 1)) {
			pnode *nd = &t->nodes[t->slots[j] - 1];
			if (nd->parent == parent && nd->len == len && !memcmp(t->arena + nd->name, s, len))
				return (long)t->slots[j] - 1;
		}
	}
	if (!create)
		return 0;
	if (t->n >= UINT32_MAX - 1)
		return ib_error_oom();
	if ((t->n + 1) * 2 > t->scap && trie_rehash(t, t->scap ? t->scap * 2 : 256) < 0)
		return -1;
	if (t->n == t->cap) {
		pnode *nn = ib_realloc(t->nodes, 2 * t->cap * sizeof *nn);
		if (!nn)
			return -1;
		t->nodes = nn;
		t->cap *= 2;
	}
	if (t->alen + len > t->acap) {
		size_t ncap = t->acap ? t->acap * 2 : 4096;
		while (ncap < t->alen + len)
			ncap *= 2;
		char *na = ib_realloc(t->arena, ncap);
		if (!na)
			return -1;
		t->arena = na;
		t->acap = ncap;
	}
	memcpy(t->arena + t->alen, s, len);
	pnode *nd = &t->nodes[t->n];
	memset(nd, 0, sizeof *nd);
	nd->parent = parent;
	nd->len = (uint32_t)len;
	nd->name = t->alen;
	t->alen += len;
	size_t j = hash_comp(parent, s, len) & (t->scap - 1);
	while (t->slots[j])
		j = (j + 1) & (t->scap - 1);
	t->slots[j] = (uint32_t)t->n + 1;
	return (long)t->n++;
}

/* The node of a cleaned path ("" is the root, 0): 0 also when missing and not `create`; -1 on OOM. */
static long trie_find(ptrie *t, const char *path, int create)
{
	if (!t->n) { /* the root */
		if (!create)
			return 0;
		if (!(t->nodes = ib_calloc(t->cap = 64, sizeof *t->nodes)))
			return -1;
		t->n = 1;
	}
	long cur = 0;
	while (*path) {
		const char *e = strchr(path, '/');
		size_t n = e ? (size_t)(e - path) : strlen(path);
		cur = trie_child(t, (uint32_t)cur, path, n, create);
		if (cur <= 0)
			return cur;
		path += n;
		while (*path == '/')
			path++;
	}
	return cur;
}

static int trie_has(ptrie *t, const char *path, int created)
{
	if (!*path)
		return t->n && (created ? t->nodes[0].created : t->nodes[0].timed);
	long id = trie_find(t, path, 0);
	if (id <= 0)
		return 0;
	return created ? t->nodes[id].created : t->nodes[id].timed;
}

static int trie_mark(ptrie *t, const char *path, int created)
{
	long id = trie_find(t, path, 1);
	if (id < 0)
		return -1;
	if (created)
		t->nodes[id].created = 1;
	else
		t->nodes[id].timed = 1;
	return 0;
}

/* The path of node `id` into `out`. */
static int trie_path(ptrie *t, uint32_t id, ib_buf *out)
{
	size_t len = 0;
	for (uint32_t i = id; i; i = t->nodes[i].parent)
		len += t->nodes[i].len + 1;
	ib_buf_clear(out);
	if (ib_buf_grow(out, len + 1) < 0)
		return -1;
	size_t end = len ? len - 1 : 0;
	out->ptr[end] = '\0';
	for (uint32_t i = id; i; i = t->nodes[i].parent) {
		pnode *nd = &t->nodes[i];
		end -= nd->len;
		memcpy(out->ptr + end, t->arena + nd->name, nd->len);
		if (end)
			out->ptr[--end] = '/';
	}
	out->size = len ? len - 1 : 0;
	return 0;
}

static void trie_free(ptrie *t)
{
	free(t->nodes);
	free(t->arena);
	free(t->slots);
	memset(t, 0, sizeof *t);
}

typedef struct {
	uint32_t node;
	struct timespec times[2];
} dirtime;

typedef struct {
	int rootfd;
	/*
	 * The directory the last entry went into (a layer lists a directory's
	 * entries right after it): an entry below it is resolved from there,
	 * component by component without following symlinks, so a deep tree
	 * costs no whole-path resolution per entry. Dropped whenever anything
	 * is removed or replaced, so it never stands for a stale path.
	 */
	int cache_fd;
	ib_buf cache_path;
	ib_whiteout_mode mode;
	const char *label;
	struct archive *ar;
	ptrie paths;       /* created: made by this layer; timed: directories whose times are restored at the end */
	struct timespec entry_times[2];
	dirtime *dirs;
	size_t ndirs, capdirs;
	const char *entry; /* the name being applied, for errors */
} applier;

static int fail(applier *ap, int code, const char *fmt, ...) IB_PRINTF(3, 4);
static int fail(applier *ap, int code, const char *fmt, ...)
{
	char reason[512];
	va_list va;
	va_start(va, fmt);
	vsnprintf(reason, sizeof reason, fmt, va);
	va_end(va);
	return ib_error_setc(code, IB_LAYER_SNAPSHOT, "layer %s: entry `%.300s`: %s",
			     ap->label ? ap->label : "(stream)", ap->entry ? ap->entry : "", reason);
}

static int fail_os(applier *ap, const char *what)
{
	int e = errno;
	fail(ap, e == ENOENT ? IB_ENOTFOUND : IB_ERROR, "%s: %s", what, strerror(e));
	ib_error_note_errno(e);
	return ib_error_current();
}

/*
 * Remember the times a directory must have at the end: its entry's
 * (`explicit`), or, for a directory the layer only writes into, the ones it
 * had before, so unpacking the same layers twice gives the same tree.
 */
static int note_dir(applier *ap, const char *path, const struct timespec times[2], int explicit)
{
	if (!explicit && trie_has(&ap->paths, path, 0))
		return 0;
	long node = trie_find(&ap->paths, path, 1);
	if (node < 0)
		return -1;
	if (ap->ndirs == ap->capdirs) {
		size_t ncap = ap->capdirs ? ap->capdirs * 2 : 64;
		dirtime *nd = ib_realloc(ap->dirs, ncap * sizeof *nd);
		if (!nd)
			return -1;
		ap->dirs = nd;
		ap->capdirs = ncap;
	}
	ap->dirs[ap->ndirs].node = (uint32_t)node;
	memcpy(ap->dirs[ap->ndirs].times, times, 2 * sizeof *times);
	ap->ndirs++;
	ap->paths.nodes[node].timed = 1;
	return 0;
}

static int preserve_dir(applier *ap, const char *path, int fd)
{
	struct stat st;
	if (trie_has(&ap->paths, path, 0))
		return 0;
	if (fstat(fd, &st) < 0)
		return fail_os(ap, "stat parent directory");
	struct timespec ts[2] = { st.st_atim, st.st_mtim };
	return note_dir(ap, path, ts, 0);
}

/* openat2 inside the root; returns fd or -1 with errno. */
static int in_root(int rootfd, const char *path, int flags)
{
	struct open_how how;
	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
	if (!*path)
		path = ".";
	for (;;) {
		long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
		if (fd >= 0 || (errno != EAGAIN && errno != EINTR))
			return (int)fd;
	}
}

/*
 * Clean an entry name: strip "./" and trailing "/", refuse absolute paths,
 * "..", over-long names and components. "" stands for the root.
 */
static int clean_name(applier *ap, ib_buf *out, const char *raw, const char *what)
{
	ib_buf_clear(out);
	if (!raw)
		return fail(ap, IB_EINVALID, "%s is not valid in this locale", what);
	size_t len = strlen(raw);
	if (len > 2 * IB_TREE_MAX_PATH)
		return fail(ap, IB_EINVALID, "%s is longer than %zu bytes", what, IB_TREE_MAX_PATH);
	if (raw[0] == '/')
		return fail(ap, IB_EINVALID, "%s is an absolute path", what);
	const char *p = raw;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return fail(ap, IB_EINVALID, "%s climbs out with `..`", what);
		if (n > IB_TREE_MAX_NAME)
			return fail(ap, IB_EINVALID, "%s has a component longer than %d bytes", what,
				    IB_TREE_MAX_NAME);
		if (n && !(n == 1 && p[0] == '.')) {
			if (out->size && ib_buf_putc(out, '/') < 0)
				return -1;
			if (ib_buf_put(out, p, n) < 0)
				return -1;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	if (!out->ptr && ib_buf_puts(out, "") < 0)
		return -1;
	/* the limits the diff keeps when it writes a layer */
	if (ib_tree_check(out->ptr, out->size, IB_LAYER_SNAPSHOT, what) < 0) {
		ib_error_prefix("layer %s", ap->label ? ap->label : "(stream)");
		return IB_EINVALID;
	}
	return 0;
}

/* Split "a/b/c" into parent "a/b" (in dir) and base "c" (pointer into path). */
static const char *split(char *path)
{
	char *s = strrchr(path, '/');
	if (!s)
		return NULL;
	*s = '\0';
	return s + 1;
}

/* What one openat2 resolves at most (below PATH_MAX, at a component boundary). */
#define CHUNK 3072

/* openat2 below `fd`, never through a symlink: the components past the first CHUNK bytes. */
static int beneath(int fd, const char *path, int flags)
{
	struct open_how how;
	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
	for (;;) {
		long r = syscall(SYS_openat2, fd, path, &how, sizeof how);
		if (r >= 0 || (errno != EAGAIN && errno != EINTR))
			return (int)r;
	}
}

/* The length of the longest prefix of `path` of at most CHUNK bytes that ends before a '/'. */
static size_t chunk_of(const char *path, size_t len)
{
	if (len <= CHUNK)
		return len;
	size_t cut = CHUNK;
	while (cut > 0 && path[cut] != '/')
		cut--;
	return cut; /* components are at most 255 bytes: never 0 */
}

/* `rest` (cleaned, relative) below `fd` (consumed), chunk by chunk, no symlinks. -1 with errno. */
static int below(int fd, const char *rest)
{
	char buf[CHUNK + 1];
	size_t len = strlen(rest);
	while (fd >= 0 && *rest) {
		size_t cut = chunk_of(rest, len);
		memcpy(buf, rest, cut);
		buf[cut] = '\0';
		int nfd = beneath(fd, buf, O_PATH | O_DIRECTORY);
		int e = errno;
		close(fd);
		errno = e;
		fd = nfd;
		rest += cut;
		len -= cut;
		while (*rest == '/')
			rest++, len--;
	}
	return fd;
}

/*
 * Open the directory `path` (cleaned) inside the root, O_PATH. Its first
 * CHUNK bytes are one openat2 with RESOLVE_IN_ROOT (symlinks followed, inside
 * the root); a path longer than PATH_MAX (a tree thousands of levels deep)
 * goes on chunk by chunk below that, following no symlink (ELOOP). -1 with errno.
 */
static int open_in(int rootfd, const char *path)
{
	size_t len = strlen(path);
	if (len <= CHUNK)
		return in_root(rootfd, path, O_PATH | O_DIRECTORY);
	char buf[CHUNK + 1];
	size_t cut = chunk_of(path, len);
	memcpy(buf, path, cut);
	buf[cut] = '\0';
	path += cut;
	while (*path == '/')
		path++;
	return below(in_root(rootfd, buf, O_PATH | O_DIRECTORY), path);
}

static int fail_open(applier *ap, const char *dir, const char *what)
{
	if (errno == ELOOP && strlen(dir) > CHUNK)
		return fail(ap, IB_EUNSUPPORTED, "%s: a symlink among the parents past their first %d bytes "
			    "(not followed so deep)", what, CHUNK);
	return fail_os(ap, what);
}

static void cache_drop(applier *ap)
{
	if (ap->cache_fd >= 0)
		close(ap->cache_fd);
	ap->cache_fd = -1;
	ib_buf_clear(&ap->cache_path);
}

static void cache_set(applier *ap, const char *dir, int fd)
{
	cache_drop(ap);
	if (ib_buf_puts(&ap->cache_path, dir) < 0) {
		ib_error_clear();
		return;
	}
	ap->cache_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

/* open_in through the cache; -1 with errno. */
static int open_cached(applier *ap, const char *dir)
{
	size_t len = strlen(dir), cl = ap->cache_path.size;
	if (ap->cache_fd >= 0 && len >= cl && !memcmp(dir, ap->cache_path.ptr, cl) &&
	    (!cl || !dir[cl] || dir[cl] == '/')) {
		int fd = fcntl(ap->cache_fd, F_DUPFD_CLOEXEC, 0);
		if (fd >= 0 && dir[cl])
			fd = below(fd, dir + cl + (cl ? 1 : 0));
		if (fd >= 0) {
			if (dir[cl])
				cache_set(ap, dir, fd);
			return fd;
		}
		/* a symlink on the way, or missing: the whole way from the root */
	}
	int fd = open_in(ap->rootfd, dir);
	if (fd >= 0)
		cache_set(ap, dir, fd);
	return fd;
}

/* Open (creating when `create`) the directory `dir` inside the root. */
static int open_dir(applier *ap, const char *dir, int create)
{
	int fd = open_cached(ap, dir);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT || !create)
		return fail_open(ap, dir, "open parent directory");
	/*
	 * Create the missing components one by one, each opened below the last
	 * without following symlinks; a component that is a symlink is resolved
	 * again in the root (within the first CHUNK bytes).
	 */
	ib_buf prefix = IB_BUF_INIT;
	const char *p = dir;
	int cur = dup(ap->rootfd);
	int rc = cur < 0 ? fail_os(ap, "dup") : 0;
	while (rc == 0 && *p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char comp[IB_TREE_MAX_NAME + 1];
		memcpy(comp, p, n);
		comp[n] = '\0';
		if ((rc = preserve_dir(ap, ib_buf_cstr(&prefix), cur)) < 0)
			break;
		if ((prefix.size && ib_buf_putc(&prefix, '/') < 0) || ib_buf_put(&prefix, p, n) < 0) {
			rc = -1;
			break;
		}
		if (mkdirat(cur, comp, 0755) == 0) {
			/* an implicit parent: the entry's time, so it is the same every time */
			if ((rc = note_dir(ap, prefix.ptr, ap->entry_times, 1)) < 0)
				break;
		} else if (errno != EEXIST) {
			rc = fail_os(ap, "create parent directory");
			break;
		}
		int next = beneath(cur, comp, O_PATH | O_DIRECTORY);
		if (next < 0 && errno == ELOOP)
			next = open_in(ap->rootfd, prefix.ptr);
		close(cur);
		cur = next;
		if (cur < 0)
			rc = fail_open(ap, prefix.ptr, "open parent directory");
		p += n;
		while (*p == '/')
			p++;
	}
	ib_buf_dispose(&prefix);
	if (rc < 0) {
		if (cur >= 0)
			close(cur);
		return rc;
	}
	return cur;
}

static int set_xattrs(applier *ap, struct archive_entry *e, int dfd, const char *base)
{
	const char *name;
	const void *value;
	size_t size;
	char path[64 + 256];
	ib_snapshot__proc_path(path, sizeof path, dfd, base);
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (!name || !*name || ib_snapshot__ovl_xattr(name))
			continue; /* never let a layer steer overlayfs */
		if (lsetxattr(path, name, value, size, 0) < 0) {
			if (errno == ENOTSUP && strncmp(name, "security.", 9) && strncmp(name, "trusted.", 8))
				continue; /* user.* on a symlink, or a file system without xattrs */
			int err = errno;
			fail(ap, IB_ERROR, "set xattr %s: %s", name, strerror(err));
			ib_error_note_errno(err);
			return IB_ERROR;
		}
	}
	return 0;
}

static int set_meta(applier *ap, struct archive_entry *e, int dfd, const char *base, mode_t type)
{
	int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
	if (fchownat(dfd, base, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0) {
		int err = errno;
		int group = ib_userns_id_mapped(0, (unsigned long)uid);
		if (err == EINVAL && (!group || !ib_userns_id_mapped(1, (unsigned long)gid))) {
			/* rootless: an owner outside the mapped ids */
			ib_buf why = IB_BUF_INIT;
			ib_userns_describe(&why, group);
			fail(ap, IB_EUNSUPPORTED, "owner %s %lld is not mapped in this user namespace: %s",
			     group ? "gid" : "uid", (long long)(group ? gid : uid), ib_buf_cstr(&why));
			ib_buf_dispose(&why);
			ib_error_note_errno(err);
			return ib_error_current();
		}
		errno = err;
		return fail_os(ap, "chown");
	}
	if (set_xattrs(ap, e, dfd, base) < 0)
		return -1;
	if (type != S_IFLNK && fchmodat(dfd, base, archive_entry_perm(e) & 07777, 0) < 0)
		return fail_os(ap, "chmod");
	struct timespec ts[2] = {
		{ archive_entry_atime_is_set(e) ? archive_entry_atime(e) : archive_entry_mtime(e),
		  archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e) : archive_entry_mtime_nsec(e) },
		{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
	};
	if (type == S_IFDIR)
		return note_dir(ap, base[0] == '.' && !base[1] ? "" : ap->entry, ts, 1);
	if (utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return fail_os(ap, "set times");
	return 0;
}

static int write_data(applier *ap, int fd, int64_t size)
{
	const void *block;
	size_t len;
	la_int64_t off;
	int r;
	while ((r = archive_read_data_block(ap->ar, &block, &len, &off)) == ARCHIVE_OK) {
		if (off < 0 || (int64_t)len > size || off > size - (int64_t)len)
			return fail(ap, IB_EINVALID, "data beyond the entry's size");
		const char *p = block;
		while (len) {
			ssize_t w = pwrite(fd, p, len, off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return fail_os(ap, "write");
			}
			p += w;
			off += w;
			len -= (size_t)w;
		}
	}
	if (r != ARCHIVE_EOF)
		return fail(ap, IB_EINVALID, "read data: %s", archive_error_string(ap->ar));
	if (ftruncate(fd, size) < 0)
		return fail_os(ap, "truncate");
	return 0;
}

/* Remove what is at dfd/base unless it is a directory and `keep_dir`. */
static int clear_spot(applier *ap, int dfd, const char *base, int keep_dir)
{
	struct stat st;
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : fail_os(ap, "stat");
	if (keep_dir && S_ISDIR(st.st_mode))
		return 1;
	cache_drop(ap);
	if (ib_snapshot__rm_at(dfd, base) < 0) {
		ib_error_prefix("layer %s: entry `%.300s`", ap->label ? ap->label : "(stream)", ap->entry);
		return -1;
	}
	return 0;
}

static int apply_whiteout(applier *ap, int dfd, const char *dir, const char *base)
{
	cache_drop(ap);
	if (!strcmp(base, ".wh..wh..opq")) {
		if (ap->mode == IB_WHITEOUT_OVERLAY) {
			char path[64];
			ib_snapshot__proc_path(path, sizeof path, dfd, ".");
			if (lsetxattr(path, ib_snapshot__ovl_opaque(), "y", 1, 0) < 0)
				return fail_os(ap, "mark directory opaque");
			return 0;
		}
		char **names;
		size_t n;
		int wfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (wfd < 0)
			return fail_os(ap, "open directory");
		int rc = ib_snapshot__names(&names, &n, wfd);
		ib_buf p = IB_BUF_INIT;
		for (size_t i = 0; rc == 0 && i < n; i++) {
			ib_buf_clear(&p);
			if ((*dir && ib_buf_printf(&p, "%s/", dir) < 0) || ib_buf_puts(&p, names[i]) < 0)
				rc = -1;
			else if (!trie_has(&ap->paths, p.ptr, 1))
				rc = clear_spot(ap, wfd, names[i], 0);
		}
		ib_buf_dispose(&p);
		ib_snapshot__names_free(names, n);
		close(wfd);
		return rc;
	}
	if (!strncmp(base, ".wh..wh.", 8))
		return 0; /* aufs bookkeeping: nothing to do */
	const char *victim = base + 4;
	if (!*victim || !strcmp(victim, ".") || !strcmp(victim, ".."))
		return fail(ap, IB_EINVALID, "whiteout names no file");
	ib_buf p = IB_BUF_INIT;
	if ((*dir && ib_buf_printf(&p, "%s/", dir) < 0) || ib_buf_puts(&p, victim) < 0)
		return -1;
	int mine = trie_has(&ap->paths, p.ptr, 1);
	ib_buf_dispose(&p);
	if (mine)
		return 0; /* whiteouts hide lower layers only */
	if (clear_spot(ap, dfd, victim, 0) < 0)
		return -1;
	if (ap->mode == IB_WHITEOUT_OVERLAY && mknodat(dfd, victim, S_IFCHR | 0, makedev(0, 0)) < 0)
		return fail_os(ap, "create whiteout");
	return 0;
}

static int apply_hardlink(applier *ap, struct archive_entry *e, int dfd, const char *base,
			  const char *path)
{
	ib_buf t = IB_BUF_INIT;
	int tfd = -1, rc;
	const char *raw = archive_entry_hardlink(e);
	if ((rc = clean_name(ap, &t, raw, "hardlink target")) < 0)
		goto out;
	if (!*t.ptr || !strcmp(t.ptr, path)) {
		rc = fail(ap, IB_EINVALID, "hardlink to `%s`", *t.ptr ? "itself" : "the root");
		goto out;
	}
	/*
	 * Only a file of this same layer: a layer is unpacked on its own (the
	 * overlay backend keeps one unpacked copy per layer, whatever lies
	 * below), and a link into the layers below cannot be made there. The
	 * whole-tree backend refuses it too, so a layer unpacks the same way on
	 * both; so does containerd's overlayfs applier and Docker's overlay2.
	 */
	if (!trie_has(&ap->paths, t.ptr, 1)) {
		rc = fail(ap, IB_EINVALID, "hardlink target `%.300s` is not a file of this layer "
			  "(a link into the layers below is refused on every snapshotter)", t.ptr);
		goto out;
	}
	const char *tbase = split(t.ptr);
	const char *tdir = tbase ? t.ptr : "";
	if (!tbase)
		tbase = t.ptr;
	if ((tfd = open_in(ap->rootfd, tdir)) < 0) {
		rc = fail_open(ap, tdir, "hardlink target");
		goto out;
	}
	struct stat st;
	if (fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = fail_os(ap, "hardlink target");
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = fail(ap, IB_EINVALID, "hardlink to a directory");
		goto out;
	}
	if ((rc = clear_spot(ap, dfd, base, 0)) < 0)
		goto out;
	if (linkat(tfd, tbase, dfd, base, 0) < 0)
		rc = fail_os(ap, "hardlink");
out:
	if (tfd >= 0)
		close(tfd);
	ib_buf_dispose(&t);
	return rc;
}

static int create_node(applier *ap, struct archive_entry *e, int dfd, const char *base, mode_t type)
{
	struct stat old;
	int was_whiteout = ap->mode == IB_WHITEOUT_OVERLAY &&
			   fstatat(dfd, base, &old, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(old.st_mode) &&
			   old.st_rdev == 0;
	int rc = clear_spot(ap, dfd, base, type == S_IFDIR);
	if (rc < 0)
		return rc;
	switch (type) {
	case S_IFDIR:
		if (rc == 0 && mkdirat(dfd, base, 0700) < 0)
			return fail_os(ap, "mkdir");
		if (was_whiteout) {
			/* deleted from below, then made anew in this layer: hide what was below */
			char path[64 + 256];
			ib_snapshot__proc_path(path, sizeof path, dfd, base);
			if (lsetxattr(path, ib_snapshot__ovl_opaque(), "y", 1, 0) < 0)
				return fail_os(ap, "mark directory opaque");
		}
		return 0;
	case S_IFREG: {
		int64_t size = archive_entry_size(e);
		int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return fail_os(ap, "create");
		rc = write_data(ap, fd, size);
		close(fd);
		return rc;
	}
	case S_IFLNK: {
		const char *target = archive_entry_symlink(e);
		if (!target || !*target)
			return fail(ap, IB_EINVALID, "symlink without a target");
		if (strlen(target) > SYMLINK_MAX_LEN)
			return fail(ap, IB_EINVALID, "symlink target longer than %d bytes", SYMLINK_MAX_LEN);
		if (symlinkat(target, dfd, base) < 0)
			return fail_os(ap, "symlink");
		return 0;
	}
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
		/* rootless: no device node can be made (nor would it open); say so, as rootless BuildKit refuses */
		if (type != S_IFIFO && ib_userns_active())
			return fail(ap, IB_EUNSUPPORTED,
				    "a %s device node (%u:%u) cannot be created rootless (in a user namespace): "
				    "build as root, or leave device nodes out of the image",
				    type == S_IFCHR ? "character" : "block", major(archive_entry_rdev(e)),
				    minor(archive_entry_rdev(e)));
		if (mknodat(dfd, base, type | 0600, type == S_IFIFO ? 0 : archive_entry_rdev(e)) < 0)
			return fail_os(ap, "mknod");
		return 0;
	default:
		return fail(ap, IB_EUNSUPPORTED, "unsupported file type 0%o", (unsigned)type);
	}
}

static int check_header(applier *ap, struct archive_entry *e)
{
	int64_t size = archive_entry_size(e);
	if (archive_entry_size_is_set(e) && (size < 0 || size > SIZE_MAX_ENTRY))
		return fail(ap, IB_EINVALID, "absurd size %lld", (long long)size);
	int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
	if (uid < 0 || uid > 0xfffffffeLL || gid < 0 || gid > 0xfffffffeLL)
		return fail(ap, IB_EINVALID, "absurd owner %lld:%lld", (long long)uid, (long long)gid);
	return 0;
}

static int apply_entry(applier *ap, struct archive_entry *e, ib_buf *path)
{
	const char *raw = archive_entry_pathname(e);
	if (!raw)
		raw = archive_entry_pathname_utf8(e);
	ap->entry = raw ? raw : "?";
	int rc = clean_name(ap, path, raw, "name");
	if (rc < 0 || (rc = check_header(ap, e)) < 0)
		return rc;
	ap->entry = path->ptr;
	ap->entry_times[0].tv_sec = ap->entry_times[1].tv_sec = archive_entry_mtime(e);
	ap->entry_times[0].tv_nsec = ap->entry_times[1].tv_nsec = 0;
	mode_t type = archive_entry_filetype(e);
	int is_link = archive_entry_hardlink(e) != NULL;
	if (!*path->ptr) { /* the root itself */
		if (is_link || type != S_IFDIR)
			return fail(ap, IB_EINVALID, "the root must be a directory");
		return set_meta(ap, e, ap->rootfd, ".", S_IFDIR);
	}
	char *dir = ib_strdup(path->ptr);
	if (!dir)
		return -1;
	const char *base = split(dir);
	const char *parent = base ? dir : "";
	if (!base)
		base = dir;
	int whiteout = !strncmp(base, ".wh.", 4);
	int dfd = open_dir(ap, parent, !whiteout || ap->mode == IB_WHITEOUT_OVERLAY);
	if (dfd < 0) {
		free(dir);
		if (whiteout && ib_error_current() == IB_ENOTFOUND) {
			ib_error_clear();
			return 0; /* nothing to delete */
		}
		return -1;
	}
	if ((rc = preserve_dir(ap, parent, dfd)) < 0)
		;
	else if (whiteout)
		rc = apply_whiteout(ap, dfd, parent, base);
	else if (is_link)
		rc = apply_hardlink(ap, e, dfd, base, path->ptr);
	else if ((rc = create_node(ap, e, dfd, base, type)) == 0)
		rc = set_meta(ap, e, dfd, base, type);
	if (rc == 0 && !whiteout)
		rc = trie_mark(&ap->paths, path->ptr, 1);
	close(dfd);
	free(dir);
	return rc;
}

/* In order: an entry's times come after the ones kept for the same directory. */
static int restore_dir_times(applier *ap)
{
	ib_buf pb = IB_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < ap->ndirs; i++) {
		if (trie_path(&ap->paths, ap->dirs[i].node, &pb) < 0) {
			rc = -1;
			break;
		}
		char *p = pb.ptr;
		ap->entry = p;
		if (!*p) {
			if (utimensat(ap->rootfd, ".", ap->dirs[i].times, 0) < 0)
				rc = fail_os(ap, "set root directory times");
			continue;
		}
		const char *base = split(p);
		const char *parent = base ? p : "";
		if (!base)
			base = p;
		int dfd = open_cached(ap, parent);
		if (dfd < 0)
			continue; /* replaced later in the layer */
		struct stat st;
		if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
		    utimensat(dfd, base, ap->dirs[i].times, AT_SYMLINK_NOFOLLOW) < 0)
			rc = fail_os(ap, "set directory times");
		close(dfd);
	}
	ap->entry = NULL;
	ib_buf_dispose(&pb);
	return rc;
}

int ib_snapshot_apply_tar(int dir_fd, int tar_fd, ib_whiteout_mode mode, const char *label)
{
	if (mode != IB_WHITEOUT_DELETE && mode != IB_WHITEOUT_OVERLAY)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "unknown whiteout mode %d", (int)mode);
	applier ap;
	memset(&ap, 0, sizeof ap);
	ap.rootfd = dir_fd;
	ap.cache_fd = -1;
	ap.mode = mode;
	ap.label = label;
	ap.ar = archive_read_new();
	if (!ap.ar)
		return ib_error_oom();
	archive_read_support_filter_gzip(ap.ar);
	archive_read_support_filter_zstd(ap.ar);
	archive_read_support_format_tar(ap.ar);
	int rc = 0;
	if (archive_read_open_fd(ap.ar, tar_fd, 256 * 1024) != ARCHIVE_OK) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "layer %s: %s",
				   label ? label : "(stream)", archive_error_string(ap.ar));
		goto out;
	}
	ib_buf path = IB_BUF_INIT;
	struct archive_entry *e;
	size_t count = 0;
	for (;;) {
		int r = archive_read_next_header(ap.ar, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			ap.entry = NULL;
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "layer %s: after %zu entries: %s",
					   label ? label : "(stream)", count,
					   archive_error_string(ap.ar));
			break;
		}
		count++;
		if ((rc = apply_entry(&ap, e, &path)) < 0)
			break;
	}
	ib_buf_dispose(&path);
	if (rc == 0)
		rc = restore_dir_times(&ap);
out:
	archive_read_free(ap.ar);
	trie_free(&ap.paths);
	free(ap.dirs);
	cache_drop(&ap);
	ib_buf_dispose(&ap.cache_path);
	return rc;
}
