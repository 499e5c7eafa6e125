/*
 * Paths that come from outside (Dockerfiles, contexts, layers) are never
 * trusted. These helpers work lexically; to follow symlinks safely inside a
 * root use ib_open_in_root() of util/fs.h, which lets the kernel resolve.
 */
#ifndef IB_UTIL_PATH_H
#define IB_UTIL_PATH_H

#include "imagebuild/buffer.h"

/*
 * Go's filepath.Clean: collapse "//", drop "." elements, resolve "a/..",
 * drop a trailing "/"; "" becomes ".". "/.." is "/".
 */
int ib_path_clean(ib_buf *out, const char *path);

/*
 * Join a relative path under `root`, refusing what would leave it: an
 * absolute `rel`, or ".." that climbs above the root. IB_EINVALID names the
 * path. The result is `root` + "/" + clean(rel) ("." joins to `root`).
 */
int ib_path_join_in_root(ib_buf *out, const char *root, const char *rel);

/*
 * Docker's scoping: interpret `path` as if `/` were the root, so "..",
 * leading "/" and "../.." cannot climb out ("/../etc" -> "etc"). The result
 * is relative, without a leading "/", "." for the root itself.
 */
int ib_path_scope(ib_buf *out, const char *path);

/* Plain join with exactly one "/" between the parts. */
int ib_path_join(ib_buf *out, const char *a, const char *b);

#endif
