/*
 * The files of COPY and ADD: walking a source tree (a build context or
 * another stage's root filesystem) safely, hashing it for the cache key, and
 * copying it into a root filesystem with Docker's rules. Every path is
 * resolved inside its root: nothing outside a context or a rootfs is read or
 * written, whatever symlinks or ".." the paths hold.
 */
#ifndef IB_BUILD_COPY_H
#define IB_BUILD_COPY_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include "imagebuild/snapshot.h"
#include "util/hash.h"
#include "util/strlist.h"

/* What the walk does with a path (relative to the source root, no leading "/"). */
#define IB_WALK_INCLUDE 0
#define IB_WALK_EXCLUDE 1         /* skip it (and, for a directory, all below) */
#define IB_WALK_EXCLUDE_DESCEND 2 /* skip the directory itself, but look below: an exception may re-include */

typedef int (*ib_build__walk_filter)(void *payload, const char *rel, int is_dir);

/*
 * A symbolic mode as `COPY --chmod=u+x,g-w` takes it: chmod(1)'s clauses
 * ([ugoa]*[+-=][rwxXst]* or [+-=][ugo], several actions a clause, clauses
 * separated by commas), with BSD setmode's semantics and a umask of 0, as
 * BuildKit applies it (fsutil, dchapes-mode) to each file copied.
 */
typedef struct {
	struct ib_build__modecmd {
		char cmd;          /* '+', '-', 'X', or 'u'/'g'/'o' (copy a class) */
		unsigned char set, clear, classes; /* for a copy: what to do, to which classes (4 u, 2 g, 1 o) */
		unsigned bits;
	} cmds[64];
	size_t n;
} ib_build__modeset;

/* Parse; 0, or -1 for a string that is not a symbolic mode (nothing set). */
int ib_build__modeset_parse(ib_build__modeset *out, const char *s);
/* The permission bits (07777) of a file of mode `st_mode` after the changes. */
mode_t ib_build__modeset_apply(const ib_build__modeset *ms, mode_t st_mode);

typedef struct {
	int set_owner;         /* 1: every entry gets uid:gid; 0: keep the source's */
	uid_t uid;
	gid_t gid;
	int set_mode;          /* 1: files and directories get `mode` (permission bits) */
	mode_t mode;
	const ib_build__modeset *modeset; /* with set_mode: changes applied to each mode instead */
	ib_build__walk_filter filter; /* NULL: everything */
	void *filter_payload;
	int source_date_epoch_set; /* not used for copies; mtimes are kept */
	/*
	 * Optional: told of each regular file of IB_BIGIO_MIN bytes or more
	 * once copied whole and its metadata set, with the source and the copy
	 * open. `before`: the source as it was looked at before the copy.
	 */
	void (*copied)(int in, const struct stat *before, int out, void *payload);
	void *copied_payload;
} ib_build__copy_opts;

/*
 * Where the big files a COPY took from the build context are, for the
 * commit's diff to read them there (ib_diff_options.content_source): the
 * context is in the page cache (it was just hashed), while the copies went
 * straight to the disk, and reading them back from there waits behind the
 * commit's own flush. A copy is known by its inode, size and mtime; its
 * source by an fd held open, whose identity (size, mtime, ctime) must not
 * change between the copy and the commit. A source changed less than
 * `settle_ns` before its copy is not remembered: a change within the
 * timestamps' granularity could leave them as they were (util/fs.h).
 */
#define IB_BUILD__COPIED_SETTLE_NS 1000000000LL
typedef struct {
	struct ib_build__copied {
		uint64_t ino, size;        /* the copy */
		struct timespec mtime;
		int fd;                    /* the source */
		struct stat src;           /* the source when it was copied */
	} *items;
	size_t n, cap;
	long long settle_ns;       /* IB_BUILD__COPIED_SETTLE_NS (tests: less) */
} ib_build__copied_list;
/* ib_build__copy_opts.copied, with an ib_build__copied_list as the payload. */
void ib_build__copied_add(int in, const struct stat *before, int out, void *payload);
/* ib_diff_options.content_source, with the list as the payload: a dup of the source's fd, or -1. */
int ib_build__copied_source(const ib_diff_file *file, void *payload);
/* Close the fds, free the list. */
void ib_build__copied_free(ib_build__copied_list *l);

/*
 * The checksum cache of a context (sums.c): file digests remembered with
 * their stat data, so unchanged files are not read again. A NULL cache is
 * fine everywhere (nothing remembered).
 */
typedef struct ib_build__sums ib_build__sums;
int ib_build__sums_open(ib_build__sums **out, const char *file);
/* Report the bytes hashed from now on as BYTES "context" to `cb` (borrowed), and poll its cancel flag. */
void ib_build__sums_set_callbacks(ib_build__sums *s, const ib_callbacks *cb);
/* `bytes` more were hashed: report (every MiB) and poll the cancel flag; < 0 stops. */
int ib_build__sums_hashed(ib_build__sums *s, uint64_t bytes);
/* 1 and *out when `path` (relative to the context) is remembered as it is now, else 0. */
int ib_build__sums_get(ib_build__sums *s, const char *path, const struct stat *st, ib_digest *out);
int ib_build__sums_put(ib_build__sums *s, const char *path, const struct stat *st, const ib_digest *d);
int ib_build__sums_save(ib_build__sums *s);
void ib_build__sums_free(ib_build__sums *s);
/* Tests: how recent (seconds) a change must be not to be remembered (default 2). */
void ib_build__sums_set_racy(ib_build__sums *s, int seconds);

/*
 * Expand one COPY source (a path, or a pattern with * ? [ ]) in the tree at
 * `rootfd` into the matching relative paths, sorted. The source is scoped
 * (Docker: "../x" and "/x" mean "x"). Excluded paths (filter) do not match.
 * No match is IB_ENOTFOUND naming the source.
 */
int ib_build__glob(ib_strlist *out, int rootfd, const char *source,
		   ib_build__walk_filter filter, void *payload);

/*
 * Feed what the cache key needs of one source into `h`: for every entry
 * (the source itself, and below it for a directory, in byte order): its
 * path relative to the source, type, mode, owner, symlink target and
 * content digest. Not mtimes.
 */
/* `owners`: hash uid/gid too (a stage's or image's files); 0 for the context, whose owners are this
 * machine's and never reach the image (copies from it are 0:0), so the key is the same on every machine.
 * `scope`: NULL for the context; for a stage's or image's files, what their paths are prefixed with in
 * the checksum cache `sums` (it starts with '/', which no context path does: see sums.c) */
int ib_build__hash_source(ib_sha256 *h, int rootfd, const char *rel, ib_build__walk_filter filter,
			  void *payload, ib_build__sums *sums, int owners, const char *scope);

/*
 * Copy one source into the rootfs at `dst_rootfd`: a directory's contents go
 * into `dst`; a file goes to `dst` itself, or to `dst/<basename>` when
 * `dst_is_dir`. A symlink named as the source is followed (inside the
 * source root); symlinks inside a copied directory are kept. Missing parent
 * directories of `dst` are created (0755, owned like the copy). Hard links
 * within one copy are kept as hard links. Mtimes are kept.
 */
int ib_build__copy(int src_rootfd, const char *src_rel, int dst_rootfd, const char *dst,
		   int dst_is_dir, const ib_build__copy_opts *o);

/* mkdir -p of an absolute path inside a rootfs; created directories get uid:gid and 0755. */
int ib_build__mkdir_in_root(int rootfd, const char *path, uid_t uid, gid_t gid, int *created);

#endif
