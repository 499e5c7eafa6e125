/*
 * The `copy` backend: plain directories, for hosts without overlayfs.
 *
 *   <dir>/active/<key>/chain    the layers, lowest first
 *   <dir>/active/<key>/fs       the writable tree (the rootfs)
 *   <dir>/active/<key>/parent   the chain unpacked again: what the diff compares with
 *   <dir>/active/<key>/mounted  present while the snapshot is "mounted" (in use)
 *
 * It keeps no shared unpacked layers: every snapshot unpacks its chain from
 * the store.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

typedef ib_snapshot__backend copy_backend;

static int apply_chain(copy_backend *c, const char *dir, const ib_digest *chain, size_t n)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return ib_error_set_os(IB_LAYER_SNAPSHOT, "open `%s`", dir);
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char label[IB_DIGEST_STRLEN];
		int fd = -1;
		ib_digest_fmt(label, &chain[i]);
		if ((rc = ib_store_blob_open(&fd, c->parent.store, &chain[i])) < 0)
			break;
		rc = ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_DELETE, label);
		close(fd);
	}
	close(dfd);
	return rc;
}

static int cp_prepare(ib_snapshotter *self, const char *key, const ib_digest *chain, size_t n)
{
	copy_backend *c = (copy_backend *)self;
	char *base = ib_snapshot__active(c, key, NULL), *fs = ib_snapshot__active(c, key, "fs");
	char *par = ib_snapshot__active(c, key, "parent"), *chainp = ib_snapshot__active(c, key, "chain");
	int rc = -1;
	if (!base || !fs || !par || !chainp)
		goto out;
	if (mkdir(base, 0700) < 0) {
		rc = errno == EEXIST ? ib_error_setc(IB_EEXISTS, IB_LAYER_SNAPSHOT,
						      "snapshot `%s` exists already", key)
				     : ib_error_set_os(IB_LAYER_SNAPSHOT, "create `%s`", base);
		goto out;
	}
	if (mkdir(fs, 0755) < 0 || mkdir(par, 0755) < 0) {
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "create `%s`", fs);
		goto out;
	}
	if ((rc = apply_chain(c, fs, chain, n)) < 0 || (rc = apply_chain(c, par, chain, n)) < 0)
		goto out;
	rc = ib_snapshot__chain_write(chainp, chain, n);
out:
	if (rc < 0 && base && ib_error_current() != IB_EEXISTS) {
		ib_error_saved s;
		ib_error_save(&s);
		ib_rm_rf(base);
		ib_error_restore(&s);
	}
	free(base);
	free(fs);
	free(par);
	free(chainp);
	return rc;
}

static int cp_mounted(ib_snapshotter *self, const char *key)
{
	copy_backend *c = (copy_backend *)self;
	char *base = ib_snapshot__active(c, key, NULL), *m = ib_snapshot__active(c, key, "mounted");
	int rc = -1;
	if (base && m)
		rc = !ib_path_exists(base) ? ib_error_setc(IB_ENOTFOUND, IB_LAYER_SNAPSHOT,
							   "no snapshot `%s`", key)
					   : ib_path_exists(m);
	free(base);
	free(m);
	return rc;
}

static int cp_mount(ib_snapshotter *self, ib_buf *rootfs, const char *key)
{
	copy_backend *c = (copy_backend *)self;
	int rc = cp_mounted(self, key);
	if (rc < 0)
		return rc;
	char *m = ib_snapshot__active(c, key, "mounted"), *fs = ib_snapshot__active(c, key, "fs");
	rc = -1;
	if (m && fs && (rc = ib_atomic_write(m, "", 0, 0644)) == 0)
		rc = ib_buf_set(rootfs, fs, strlen(fs));
	free(m);
	free(fs);
	return rc;
}

static int cp_unmount(ib_snapshotter *self, const char *key)
{
	copy_backend *c = (copy_backend *)self;
	int rc = cp_mounted(self, key);
	if (rc <= 0)
		return rc;
	char *m = ib_snapshot__active(c, key, "mounted");
	if (!m)
		return -1;
	rc = unlink(m) < 0 && errno != ENOENT ? ib_error_set_os(IB_LAYER_SNAPSHOT, "remove `%s`", m) : 0;
	free(m);
	return rc;
}

static int cp_diff(ib_snapshotter *self, const char *key, const ib_diff_options *opts,
		   ib_snapshot_write_cb write, void *payload)
{
	copy_backend *c = (copy_backend *)self;
	char *fs = ib_snapshot__active(c, key, "fs"), *par = ib_snapshot__active(c, key, "parent");
	int rc = -1, cfd = -1, pfd = -1;
	if (!fs || !par)
		goto out;
	if ((cfd = open(fs, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (pfd = open(par, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "snapshot `%s`: open `%s`", key, cfd < 0 ? fs : par);
		goto out;
	}
	rc = ib_snapshot_diff_trees(cfd, pfd, IB_DIFF_TREE, opts, write, payload);
out:
	if (cfd >= 0)
		close(cfd);
	if (pfd >= 0)
		close(pfd);
	free(fs);
	free(par);
	return rc;
}

int ib_snapshot__copy_new(ib_snapshotter **out, const char *dir, void *param)
{
	(void)param;
	*out = NULL;
	copy_backend *c = ib_calloc(1, sizeof *c);
	if (!c)
		return -1;
	char *a = ib_sprintf("%s/active", dir);
	int rc = a ? ib_mkdir_p(a, 0700) : -1;
	free(a);
	if (rc < 0 || !(c->dir = ib_strdup(dir))) {
		free(c);
		return -1;
	}
	c->parent.version = IB_SNAPSHOTTER_VERSION;
	c->parent.prepare = cp_prepare;
	c->parent.mount = cp_mount;
	c->parent.unmount = cp_unmount;
	c->parent.mounted = cp_mounted;
	c->parent.diff = cp_diff;
	c->parent.remove = ib_snapshot__backend_remove;
	c->parent.list = ib_snapshot__backend_list;
	c->parent.chain = ib_snapshot__backend_chain;
	c->parent.free = ib_snapshot__backend_free;
	*out = &c->parent;
	return 0;
}
