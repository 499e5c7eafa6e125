/*
 * Iterative walks of directory trees, and the limits every tree walk shares.
 *
 * A tree a build makes may be far deeper than PATH_MAX (a RUN can make
 * 10,000 nested directories), so walks hold no recursion and no whole
 * paths for system calls: every call is fd-relative, one component at a
 * time, with at most IB_WALK_FDS directories open; an ancestor whose fd was
 * closed is reopened through ".." and checked by device and inode.
 */
#ifndef IB_UTIL_WALK_H
#define IB_UTIL_WALK_H

#include <stddef.h>
#include <sys/stat.h>

/*
 * What a layer may hold, shared by the diff that writes layers and the
 * apply that reads them, so every layer written can be read back:
 * IB_TREE_MAX_DEPTH directories deep, components of IB_TREE_MAX_NAME bytes
 * (NAME_MAX), whole paths of IB_TREE_MAX_PATH bytes: a PAX header holds
 * the path and a hardlink's target (and xattrs), and libarchive reads at
 * most 1 MiB of it. 16,384 levels of 15-byte names fit.
 */
#define IB_TREE_MAX_DEPTH 16384
#define IB_TREE_MAX_NAME 255
#define IB_TREE_MAX_PATH ((size_t)256 << 10)

/* The fds a walk holds open at most (besides the ones it was given); a walk of two trees side by side keeps IB_WALK_FDS / 2 levels. */
#define IB_WALK_FDS 32

/*
 * The sorted names of the directory `fd` (without . and ..), in a new array of
 * new strings: free with ib_dir_names_free. Errors name `shown` (may be NULL).
 */
int ib_dir_names(char ***out, size_t *n, int fd, int layer, const char *shown);
void ib_dir_names_free(char **names, size_t n);

/*
 * Check a relative path ("a/b/c") against the limits above. 0, or
 * IB_EINVALID with the error naming `what`, the start of the path and the limit.
 */
int ib_tree_check(const char *path, size_t len, int layer, const char *what);
/* The same when the caller knows the path's depth (components) and its longest component. */
int ib_tree_check_entry(const char *path, size_t len, size_t depth, size_t name_len, int layer,
			const char *what);

typedef struct {
	int dirfd;             /* the entry's parent directory */
	const char *name;      /* its name in dirfd */
	const char *path;      /* relative to the root of the walk, "a/b/name" */
	size_t path_len;
	const struct stat *st; /* lstat of the entry */
	size_t depth;          /* 1 for the root's own entries */
} ib_walk_entry;

/* < 0 stops the walk (the error set); 1 from `pre` on a directory skips its entries. */
typedef int (*ib_walk_cb)(const ib_walk_entry *e, void *payload);

typedef struct {
	ib_walk_cb pre;  /* every entry; a directory before its entries */
	ib_walk_cb post; /* a directory after its entries; NULL: none */
	void *payload;
	int same_fs;     /* refuse to enter another file system (a mount point) */
	size_t max_depth; /* deeper is IB_EINVALID; 0: no limit (removal must reach everything) */
	int layer;       /* IB_LAYER_* for errors */
} ib_walk_options;

/*
 * Walk the tree below the directory `rootfd` depth first, the entries of
 * each directory in byte order of their names. Entries that vanish are skipped.
 */
int ib_walk(int rootfd, const ib_walk_options *o);

/* rm -rf of `name` in `dirfd` (iterative, never following symlinks, never into another mount). ENOENT is fine. */
int ib_rm_at(int dirfd, const char *name, int layer);

#endif
