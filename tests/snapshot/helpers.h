#ifndef TESTS_SNAPSHOT_HELPERS_H
#define TESTS_SNAPSHOT_HELPERS_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sys/stat.h>
#include "ib_test.h"
#include "imagebuild/buffer.h"
#include "imagebuild/snapshot.h"

/* Tar building, in memory. */
typedef struct tb tb;
typedef struct {
	const char *path;
	char type;          /* 'f' file, 'd' dir, 'l' symlink, 'h' hardlink, 'p' fifo, 'c' char dev, 'b' block dev */
	unsigned mode;      /* permission bits (0 means 0644 / 0755) */
	const char *data;   /* file content */
	const char *link;   /* symlink or hardlink target */
	int64_t mtime;      /* 0 means 1000000 */
	int own;            /* 1: use uid/gid below, else the test's own ids */
	long long uid, gid; /* with own */
	const char *xname, *xvalue; /* one xattr */
	int64_t size;       /* override the header size (absurd headers) */
	unsigned rdev_major, rdev_minor;
} tentry;

tb *tb_new(void);
void tb_add(tb *t, const tentry *e);
/* Finish and return a memfd (seeked to 0) with the tar, compressed with "gzip", "zstd" or NULL. */
int tb_fd(tb *t, const char *filter);
/* Finish into a buffer. */
void tb_bytes(tb *t, ib_buf *out);
void tb_free(tb *t);
#define TB(t, ...) tb_add(t, &(tentry){ __VA_ARGS__ })

/* A memfd holding `len` bytes. */
int mem_fd(const void *data, size_t len);

/* The entries of a tar, one line each: "path type mode uid:gid size [-> link] [data] [x:name=value]". */
void tar_listing(ib_buf *out, const void *data, size_t len);
/* Assert that `listing` has exactly the lines of `expected` (NULL-terminated), in order. */
void assert_listing(const ib_buf *listing, const char *const *expected);

/*
 * A tree, one line per entry in sorted order: "path type mode uid:gid size content/target
 * [rdev] [xattrs] [mtime for non-directories] [=first path for hardlinks]".
 * Whiteout devices (0/0) are left out when `skip_whiteouts`.
 */
void tree_dump(ib_buf *out, const char *root, int skip_whiteouts);

/* Write a file (mkdir -p the parents). */
void put_file(const char *root, const char *rel, const char *data, unsigned mode);
char *pjoin(const char *a, const char *b);
void rm_tree(const char *path);
/* Collect the whole diff of `changed` vs `parent` (paths; parent may be NULL). */
int diff_paths(ib_buf *out, const char *changed, const char *parent, int overlay_upper);
/* The same with diff options (the SOURCE_DATE_EPOCH clamp). */
int diff_paths_opts(ib_buf *out, const char *changed, const char *parent, int overlay_upper,
		    const ib_diff_options *opts);
/* Diff options clamping file times to `epoch`. */
#define SDE_OPTS(epoch) { IB_DIFF_OPTIONS_VERSION, 1, (epoch) }
int buf_write_cb(const void *data, size_t len, void *payload);
int dir_is_empty(const char *path);
/* changes.c */
tb *snapshot_test_base_layer(void);
void snapshot_test_changes(const char *root);
void snapshot_test_expected(ib_buf *out, unsigned uid, unsigned gid);
#endif
