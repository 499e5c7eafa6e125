/*
 * Cache mounts in the cache artifact (docs/cache.md, `cache-mounts=`): a
 * RUN --mount=type=cache instance of the store (step_run.c) packed as an
 * uncompressed layer tar into a store blob, and a layer of the artifact
 * unpacked into a new instance. The tar is ib_snapshot_diff_trees()'s (the
 * whole tree against nothing), the unpacking ib_snapshot_apply_tar()'s
 * (nothing written outside the directory: no `..`, absolute or symlink
 * escapes). What the records say and which mounts go where is
 * cache_export.c's.
 */
#include "build/internal.h"
#include "build/cache.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int to_writer(const void *data, size_t len, void *payload)
{
	return ib_blob_writer_write(payload, data, len);
}

int ib_build__cache_mount_pack(ib_digest *diff_id, uint64_t *size, unsigned long *uid, unsigned long *gid,
			       unsigned long *mode, builder *b, const char *dir)
{
	/* the instance is not written under us by a locked or private user (shared users may write) */
	ib_lock held = IB_LOCK_INIT;
	char *lk = ib_sprintf("%s.lock-instance", dir);
	int rc = lk ? ib_lock_acquire(&held, lk, IB_LOCK_SHARED) : IB_ERROR;
	free(lk);
	if (rc < 0)
		return rc;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	ib_blob_writer *w = NULL;
	if (fd < 0 || fstat(fd, &st) < 0)
		rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", dir);
	if (rc == 0)
		rc = ib_store_blob_writer(&w, b->store);
	if (rc == 0)
		rc = ib_snapshot_diff_trees(fd, -1, IB_DIFF_TREE, NULL, to_writer, w);
	if (rc == 0)
		rc = ib_blob_writer_commit(w, diff_id, size, NULL);
	else if (w)
		ib_blob_writer_abort(w);
	if (rc == 0) {
		*uid = (unsigned long)st.st_uid;
		*gid = (unsigned long)st.st_gid;
		*mode = (unsigned long)(st.st_mode & 07777);
	}
	if (fd >= 0)
		close(fd);
	ib_lock_release(&held);
	if (rc == 0 && *size > IB_BUILD__CACHE_MOUNT_MAX)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "%llu bytes: larger than the %llu a cache mount may have",
				   (unsigned long long)*size, (unsigned long long)IB_BUILD__CACHE_MOUNT_MAX);
	return rc;
}

int ib_build__cache_mount_unpack(builder *b, const ib_digest *diff_id, const char *dir, unsigned long uid,
				 unsigned long gid, unsigned long mode, const char *label)
{
	int dfd = -1, tfd = -1, rc = 0;
	if (mkdir(dir, 0700) < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "mkdir `%s`", dir);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", dir);
	/* the blob was checked against its digest and diff_id when it was fetched (fetch_layer) */
	if (rc == 0)
		rc = ib_store_blob_open(&tfd, b->store, diff_id);
	if (rc == 0)
		rc = ib_snapshot_apply_tar(dfd, tfd, IB_WHITEOUT_DELETE, label);
	if (rc == 0 && (fchown(dfd, (uid_t)uid, (gid_t)gid) < 0 || fchmod(dfd, (mode_t)(mode & 07777)) < 0))
		rc = ib_error_set_os(IB_LAYER_BUILD, "the owner and mode of `%s`", dir);
	if (tfd >= 0)
		close(tfd);
	if (dfd >= 0)
		close(dfd);
	if (rc < 0)
		ib_rm_rf(dir);
	return rc;
}
