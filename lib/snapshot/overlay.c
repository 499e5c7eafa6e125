/*
 * The `overlay` backend: kernel overlayfs.
 *
 *   <dir>/layers/<hex>/fs      a layer, unpacked once (overlay whiteouts)
 *   <dir>/layers/<hex>/ready   written last: without it the layer is redone
 *                              (and prune removes it: ib_snapshot__overlay_sweep)
 *   <dir>/active/<key>/{chain,upper,work,merged}
 *   <dir>/empty                the lower dir of a snapshot on no layer
 *   <dir>/tmp/, <dir>/locks/
 *
 * Mounts use the fsopen/fsconfig API with one `lowerdir+` per layer
 * (Linux >= 6.8), which has no page-size limit on the option string, so
 * deep chains mount. The parent view a diff compares against is a read-only
 * overlay of the chain that is never attached to the tree (its fd is used
 * directly), so nothing is left mounted if we die.
 *
 * Volatile mounts. A snapshot that is the active state of this very process
 * (a build step's: never persisted) is mounted with overlayfs' `volatile`:
 * the unmount then does not sync the upper directory's file system (for a
 * 2 GiB COPY it waited ~1 s on the disk cache flush) and the fsyncs of what
 * runs in it (dpkg fsyncs every file it unpacks) return at once. Nothing
 * durable depends on it: if the process dies the snapshot is garbage (the
 * reaper removes it), and a commit makes the files durable itself
 * (ib_snapshot__overlay_flush while it hashes them, then layer_adopt's
 * syncfs). overlayfs leaves a mark in the work directory
 * (work/incompat/volatile) and refuses to mount that upper again; we remove
 * it before mounting our own snapshot again (we are alive: the page cache
 * still holds whatever the unmount did not write). Other snapshots
 * (containers) are mounted as before; one that was persisted while mounted
 * volatile is synced at its unmount, and its mark removed then.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "snapshot/internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/walk.h"
#include "util/lock.h"
#include "util/rootless.h"

typedef ib_snapshot__backend overlay;

int ib_snapshot__overlay_supported(void)
{
	if (geteuid() != 0)
		return 0;
	ib_buf b = IB_BUF_INIT;
	int ok = ib_read_file(&b, "/proc/filesystems") == 0 && strstr(ib_buf_cstr(&b), "\toverlay\n");
	ib_buf_dispose(&b);
	if (!ok) {
		ib_error_clear();
		/* maybe a module not loaded yet: fsopen loads it */
		int fd = fsopen("overlay", FSOPEN_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			ok = 1;
		}
	}
	return ok;
}

static char *path_of(overlay *o, const char *fmt, const char *a, const char *b)
{
	return ib_sprintf(fmt, o->dir, a, b ? b : "");
}

static void hex_of(char hex[IB_DIGEST_HEXLEN + 1], const ib_digest *d)
{
	ib_digest_hex(hex, d);
}

static int ov_layer_has(ib_snapshotter *self, const ib_digest *id)
{
	overlay *o = (overlay *)self;
	char hex[IB_DIGEST_HEXLEN + 1];
	hex_of(hex, id);
	char *p = path_of(o, "%s/layers/%s/ready%s", hex, NULL);
	if (!p)
		return -1;
	int has = ib_path_exists(p);
	free(p);
	return has;
}

static int ov_layer_unpack(ib_snapshotter *self, const ib_digest *id, int tar_fd)
{
	overlay *o = (overlay *)self;
	char hex[IB_DIGEST_HEXLEN + 1], label[IB_DIGEST_STRLEN];
	hex_of(hex, id);
	ib_digest_fmt(label, id);
	char *lockp = path_of(o, "%s/locks/%s%s", hex, NULL);
	char *final = path_of(o, "%s/layers/%s%s", hex, NULL);
	char *ready = path_of(o, "%s/layers/%s/ready%s", hex, NULL);
	char *tmp = path_of(o, "%s/tmp/%s-XXXXXX%s", hex, NULL);
	char *fs = NULL;
	ib_lock lock = IB_LOCK_INIT;
	int rc = -1, fsfd = -1;
	if (!lockp || !final || !ready || !tmp)
		goto out;
	if ((rc = ib_lock_acquire(&lock, lockp, IB_LOCK_EXCLUSIVE)) < 0)
		goto out;
	if (ib_path_exists(ready))
		goto out; /* another process did it */
	if ((rc = ib_rm_rf(final)) < 0) /* a crash mid-unpack */
		goto out;
	if (!mkdtemp(tmp)) {
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "mkdtemp `%s`", tmp);
		goto out;
	}
	rc = -1;
	if (!(fs = ib_sprintf("%s/fs", tmp)))
		goto out;
	if (mkdir(fs, 0755) < 0 || (fsfd = open(fs, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "create `%s`", fs);
		goto out;
	}
	if ((rc = ib_snapshot_apply_tar(fsfd, tar_fd, IB_WHITEOUT_OVERLAY, label)) < 0)
		goto out;
	if (syncfs(fsfd) < 0) {
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "syncfs `%s`", fs);
		goto out;
	}
	if (rename(tmp, final) < 0) {
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "rename `%s` to `%s`", tmp, final);
		goto out;
	}
	rc = ib_atomic_write(ready, "", 0, 0644);
out:
	if (fsfd >= 0)
		close(fsfd);
	if (rc < 0 && tmp && strstr(tmp, "XXXXXX") == NULL) {
		ib_error_saved s;
		ib_error_save(&s);
		ib_rm_rf(tmp);
		ib_error_restore(&s);
	}
	ib_lock_release(&lock);
	free(lockp);
	free(final);
	free(ready);
	free(tmp);
	free(fs);
	return rc;
}

/* Drop overlayfs' own bookkeeping (origin, impure...) but the opaque mark from one entry. */
static int strip_one(int dirfd, const char *name, const char *shown)
{
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_SNAPSHOT, "open `%.200s`", shown);
	char proc[64], list[4096];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? ib_error_set_os(IB_LAYER_SNAPSHOT, "stat `%.200s`", shown) : 0;
	ssize_t len = rc == 0 && !S_ISLNK(st.st_mode) ? listxattr(proc, list, sizeof list) : 0;
	for (char *x = list; rc == 0 && len > 0 && x < list + len; x += strlen(x) + 1)
		if (ib_snapshot__ovl_xattr(x) && strcmp(x, ib_snapshot__ovl_opaque()) != 0 &&
		    removexattr(proc, x) < 0 && errno != ENODATA)
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "remove xattr `%s` of `%.200s`", x, shown);
	close(fd);
	return rc;
}

/*
 * An entry of the walk: its xattrs listed by path (one call; most entries
 * have none), through the directory's fd. The walk's lstat says what it is:
 * a symlink has none of overlay's, and the l* calls do not follow one.
 */
static int strip_entry(const ib_walk_entry *e, void *payload)
{
	(void)payload;
	if (S_ISLNK(e->st->st_mode))
		return 0;
	char path[64 + 4096], small[4096], *list = small, *heap = NULL;
	ib_snapshot__proc_path(path, sizeof path, e->dirfd, e->name);
	ssize_t len = llistxattr(path, small, sizeof small);
	if (len < 0 && errno == ERANGE) { /* names past 4 KiB: asked for their size */
		ssize_t need = llistxattr(path, NULL, 0);
		if (need > 0 && (heap = malloc((size_t)need)))
			len = llistxattr(path, list = heap, (size_t)need);
	}
	int rc = 0;
	if (len < 0 && errno != ENOTSUP && errno != EOPNOTSUPP)
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "list xattrs of `%.200s`", e->path);
	for (char *x = list; rc == 0 && len > 0 && x < list + len; x += strlen(x) + 1)
		if (ib_snapshot__ovl_xattr(x) && strcmp(x, ib_snapshot__ovl_opaque()) != 0 &&
		    lremovexattr(path, x) < 0 && errno != ENODATA)
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "remove xattr `%s` of `%.200s`", x, e->path);
	free(heap);
	return rc;
}

/* The same for a whole tree that becomes a lower layer (iterative: a RUN can make it 10,000 levels deep). */
static int strip_overlay_xattrs(const char *dir)
{
	int rc = strip_one(AT_FDCWD, dir, dir);
	int fd = rc < 0 ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rc == 0 && fd < 0)
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "open `%s`", dir);
	if (rc == 0) {
		ib_walk_options o = { .pre = strip_entry, .layer = IB_LAYER_SNAPSHOT };
		if ((rc = ib_walk(fd, &o)) < 0)
			ib_error_prefix("`%s`", dir);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * The upper directory of a committed snapshot is that layer in the very
 * format of an unpacked one (whiteouts as 0/0 devices, opaque xattrs): move
 * it into layers/ instead of unpacking the blob again.
 */
static int ov_layer_adopt(ib_snapshotter *self, const char *key, const ib_digest *id)
{
	overlay *o = (overlay *)self;
	char hex[IB_DIGEST_HEXLEN + 1];
	hex_of(hex, id);
	char *lockp = path_of(o, "%s/locks/%s%s", hex, NULL);
	char *final = path_of(o, "%s/layers/%s%s", hex, NULL);
	char *ready = path_of(o, "%s/layers/%s/ready%s", hex, NULL);
	char *tmp = path_of(o, "%s/tmp/%s-XXXXXX%s", hex, NULL);
	char *upper = ib_snapshot__active(o, key, "upper");
	char *fs = NULL;
	ib_lock lock = IB_LOCK_INIT;
	int rc = IB_ERROR, made = 0;
	if (!lockp || !final || !ready || !tmp || !upper)
		goto out;
	if ((rc = ib_lock_acquire(&lock, lockp, IB_LOCK_EXCLUSIVE)) < 0)
		goto out;
	if (ib_path_exists(ready)) {
		rc = 1; /* unpacked already (by another process, maybe from another chain): not our files */
		goto out;
	}
	if ((rc = ib_rm_rf(final)) < 0)
		goto out;
	if (!mkdtemp(tmp)) {
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "mkdtemp `%s`", tmp);
		goto out;
	}
	made = 1;
	if (!(fs = ib_sprintf("%s/fs", tmp))) {
		rc = IB_ERROR;
		goto out;
	}
	if (rename(upper, fs) < 0) {
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "move `%s` to `%s`", upper, fs);
		goto out;
	}
	if ((rc = strip_overlay_xattrs(fs)) < 0)
		goto out;
	int fsfd = open(fs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fsfd < 0 || syncfs(fsfd) < 0)
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "syncfs `%s`", fs);
	if (fsfd >= 0)
		close(fsfd);
	if (rc == 0 && rename(tmp, final) < 0)
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "rename `%s` to `%s`", tmp, final);
	if (rc == 0) {
		made = 0;
		rc = ib_atomic_write(ready, "", 0, 0644);
	}
out:
	if (rc < 0 && made) {
		ib_error_saved sv;
		ib_error_save(&sv);
		ib_rm_rf(tmp);
		ib_error_restore(&sv);
	}
	ib_lock_release(&lock);
	free(lockp);
	free(final);
	free(ready);
	free(tmp);
	free(upper);
	free(fs);
	return rc;
}

static int is_hex_name(const char *s)
{
	if (strlen(s) != IB_DIGEST_HEXLEN)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

static int ov_layer_list(ib_snapshotter *self, ib_snapshot_layer_cb cb, void *payload)
{
	overlay *o = (overlay *)self;
	char *dir = path_of(o, "%s/layers%s%s", "", NULL);
	char **names;
	size_t n;
	if (!dir)
		return -1;
	int rc = ib_snapshot__list_dir(&names, &n, dir);
	free(dir);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		ib_digest d;
		char s[IB_DIGEST_STRLEN];
		if (!is_hex_name(names[i]))
			continue;
		snprintf(s, sizeof s, "sha256:%s", names[i]);
		if (ib_digest_parse(&d, s) < 0 || ov_layer_has(self, &d) <= 0) {
			ib_error_clear();
			continue;
		}
		rc = cb(&d, payload);
	}
	ib_snapshot__names_free(names, n);
	return rc;
}

static int ov_layer_remove(ib_snapshotter *self, const ib_digest *id)
{
	overlay *o = (overlay *)self;
	char hex[IB_DIGEST_HEXLEN + 1];
	hex_of(hex, id);
	char *ready = path_of(o, "%s/layers/%s/ready%s", hex, NULL);
	char *dir = path_of(o, "%s/layers/%s%s", hex, NULL);
	char *lockp = path_of(o, "%s/locks/%s%s", hex, NULL);
	ib_lock lock = IB_LOCK_INIT;
	int rc = -1;
	/* under the layer's lock: never while another process unpacks or adopts it */
	if (ready && dir && lockp && (rc = ib_lock_acquire(&lock, lockp, IB_LOCK_EXCLUSIVE)) == 0) {
		/* not ready first: a half-removed layer is never used */
		if (unlink(ready) < 0 && errno != ENOENT)
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "remove `%s`", ready);
		else
			rc = ib_rm_rf(dir);
	}
	ib_lock_release(&lock);
	free(ready);
	free(dir);
	free(lockp);
	return rc;
}

/*
 * What a process killed inside ov_layer_unpack, ov_layer_adopt or
 * ov_layer_remove left: a layers/<hex> without `ready` (killed between the
 * rename and `ready`, or between unlinking `ready` and the rm -rf) and
 * tmp/<hex>-XXXXXX. Both are made and undone only under locks/<hex>, so
 * with that lock held they are garbage. ov_layer_list skips a layer
 * without `ready`, so the prune never removed one: its files stayed for
 * good (unless the same layer was unpacked again).
 */
static int sweep_one(overlay *o, const char *hex, const char *path, int is_tmp, size_t *count)
{
	char *lockp = path_of(o, "%s/locks/%s%s", hex, NULL);
	char *ready = is_tmp ? NULL : path_of(o, "%s/%s/ready%s", path, NULL);
	ib_lock lock = IB_LOCK_INIT;
	int rc = 0;
	if (!lockp || (!is_tmp && !ready)) {
		rc = IB_ERROR;
	} else if (ib_lock_acquire(&lock, lockp, IB_LOCK_EXCLUSIVE | IB_LOCK_NOWAIT) == 0) {
		/* busy (an unpack or an adopt now): theirs; free: ours to remove */
		if (is_tmp || !ib_path_exists(ready)) {
			char *full = ib_sprintf("%s/%s", o->dir, path);
			if (!full)
				rc = IB_ERROR;
			else if ((rc = ib_rm_rf(full)) == 0)
				(*count)++;
			free(full);
		}
	}
	ib_error_clear();
	ib_lock_release(&lock);
	free(lockp);
	free(ready);
	return rc == IB_ERROR ? rc : 0;
}

int ib_snapshot__overlay_sweep(ib_snapshotter *self, size_t *count)
{
	overlay *o = (overlay *)self;
	static const char *const subs[] = { "layers", "tmp" };
	int rc = 0;
	for (size_t k = 0; rc == 0 && k < 2; k++) {
		char *dir = path_of(o, "%s/%s%s", subs[k], NULL);
		char **names = NULL;
		size_t n = 0;
		if (!dir || ib_snapshot__list_dir(&names, &n, dir) < 0) {
			ib_error_clear();
			free(dir);
			continue;
		}
		for (size_t i = 0; rc == 0 && i < n; i++) {
			char hex[IB_DIGEST_HEXLEN + 1], rel[IB_DIGEST_HEXLEN + 80];
			size_t len = strlen(names[i]);
			if (len < IB_DIGEST_HEXLEN || (k == 0 && len != IB_DIGEST_HEXLEN) ||
			    (k == 1 && (len != IB_DIGEST_HEXLEN + 7 || names[i][IB_DIGEST_HEXLEN] != '-')))
				continue;
			memcpy(hex, names[i], IB_DIGEST_HEXLEN);
			hex[IB_DIGEST_HEXLEN] = 0;
			if (!is_hex_name(hex))
				continue;
			snprintf(rel, sizeof rel, "%s/%s", subs[k], names[i]);
			char *ready = k == 0 ? path_of(o, "%s/layers/%s/ready", names[i], NULL) : NULL;
			int complete = ready && ib_path_exists(ready);
			free(ready);
			if (!complete)
				rc = sweep_one(o, hex, rel, k == 1, count);
		}
		ib_snapshot__names_free(names, n);
		free(dir);
	}
	return rc;
}

static int ov_prepare(ib_snapshotter *self, const char *key, const ib_digest *chain, size_t n)
{
	overlay *o = (overlay *)self;
	char *base = ib_snapshot__active(o, key, NULL);
	char *chainp = ib_snapshot__active(o, key, "chain");
	int rc = -1;
	if (!base || !chainp)
		goto out;
	if (mkdir(base, 0700) < 0) {
		rc = errno == EEXIST ? ib_error_setc(IB_EEXISTS, IB_LAYER_SNAPSHOT,
						      "snapshot `%s` exists already", key)
				     : ib_error_set_os(IB_LAYER_SNAPSHOT, "create `%s`", base);
		goto out;
	}
	static const char *const subs[] = { "upper", "work", "merged" };
	for (size_t i = 0; i < 3; i++) {
		char *p = ib_snapshot__active(o, key, subs[i]);
		if (!p)
			goto out;
		int r = mkdir(p, i == 0 ? 0755 : 0700);
		if (r < 0)
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "create `%s`", p);
		free(p);
		if (r < 0)
			goto out;
	}
	rc = ib_snapshot__chain_write(chainp, chain, n);
out:
	if (rc < 0 && base && ib_error_current() != IB_EEXISTS) {
		ib_error_saved s;
		ib_error_save(&s);
		ib_rm_rf(base);
		ib_error_restore(&s);
	}
	free(base);
	free(chainp);
	return rc;
}

/* 1 when `path` is the root of a mount other than its parent's, 0 if not. */
static int is_mount_root(const char *path)
{
	struct stat a, b;
	char *up = ib_sprintf("%s/..", path);
	if (!up)
		return -1;
	int r = stat(path, &a) == 0 && stat(up, &b) == 0 && (a.st_dev != b.st_dev || a.st_ino == b.st_ino);
	free(up);
	return r;
}

static int ov_mounted(ib_snapshotter *self, const char *key)
{
	overlay *o = (overlay *)self;
	char *base = ib_snapshot__active(o, key, NULL), *merged = ib_snapshot__active(o, key, "merged");
	int rc = -1;
	if (base && merged) {
		if (!ib_path_exists(base))
			rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_SNAPSHOT, "no snapshot `%s`", key);
		else
			rc = is_mount_root(merged);
	}
	free(base);
	free(merged);
	return rc;
}

static int set_opt(int fsfd, const char *k, const char *v, const char *what)
{
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, k, v, 0) < 0)
		return ib_error_set_os(IB_LAYER_SNAPSHOT, "overlay %s: option %s=%s", what, k, v);
	return 0;
}

/*
 * A configured overlay of the chain's layers (top first), with `upper`/
 * `work` when not NULL. Returns the mount fd (detached) or < 0.
 */
static int overlay_fd(overlay *o, const ib_digest *chain, size_t n, const char *upper,
		      const char *work, int vol, const char *what)
{
	int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return ib_error_set_os(IB_LAYER_SNAPSHOT, "overlay %s: fsopen", what);
	int rc = 0;
	size_t used = 0;
	for (size_t i = n; rc == 0 && i-- > 0;) {
		/*
		 * A layer that comes again higher up adds nothing here (the higher
		 * copy has the same files and whiteouts, winning), and overlayfs
		 * refuses a directory twice: keep the topmost one.
		 */
		int again = 0;
		for (size_t k = i + 1; k < n && !again; k++)
			again = ib_digest_equal(&chain[k], &chain[i]);
		if (again)
			continue;
		used++;
		char hex[IB_DIGEST_HEXLEN + 1];
		hex_of(hex, &chain[i]);
		char *p = path_of(o, "%s/layers/%s/fs%s", hex, NULL);
		if (!p) {
			rc = -1;
			break;
		}
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", p, 0) < 0)
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT,
					     "overlay %s: add lower layer %zu `%s` (lowerdir+ needs Linux >= 6.8)",
					     what, i, p);
		free(p);
	}
	/* no layer, or a read-only view of one (overlay wants two lowers without an upper) */
	if (rc == 0 && (used == 0 || (used == 1 && !upper))) {
		char *p = path_of(o, "%s/empty%s%s", "", NULL);
		rc = p ? set_opt(fsfd, "lowerdir+", p, what) : -1;
		free(p);
	}
	if (rc == 0 && upper)
		rc = set_opt(fsfd, "upperdir", upper, what);
	if (rc == 0 && work)
		rc = set_opt(fsfd, "workdir", work, what);
	/* keep the upper dir in the plain format the diff reads */
	if (rc == 0 && upper) {
		/* rootless (userxattr) wants nofollow, which neither creates redirects */
		rc = set_opt(fsfd, "redirect_dir", ib_userns_active() ? "nofollow" : "off", what);
		if (rc == 0)
			rc = set_opt(fsfd, "index", "off", what);
		if (rc == 0)
			rc = set_opt(fsfd, "metacopy", "off", what);
		if (rc == 0 && vol && fsconfig(fsfd, FSCONFIG_SET_FLAG, "volatile", NULL, 0) < 0)
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "overlay %s: option volatile", what);
	}
	/* rootless: overlay keeps its marks (opaque, ...) in user.overlay.*, as trusted.* is closed there */
	if (rc == 0 && ib_userns_active()) {
		if (fsconfig(fsfd, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "overlay %s: option userxattr (Linux >= 5.11)", what);
		/* userxattr refuses following redirects; our layers have none (unpacked by us, uppers without) */
		else if (!upper && rc == 0)
			rc = set_opt(fsfd, "redirect_dir", "nofollow", what);
	}
	if (rc == 0 && fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "overlay %s: create the mount", what);
	int mfd = -1;
	if (rc == 0 && (mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, upper ? 0 : MOUNT_ATTR_RDONLY)) < 0)
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "overlay %s: fsmount", what);
	close(fsfd);
	return rc < 0 ? rc : mfd;
}

/* The mark overlayfs leaves in the work directory of a volatile mount. */
static char *volatile_mark(overlay *o, const char *key)
{
	char *work = ib_snapshot__active(o, key, "work");
	char *mark = work ? ib_sprintf("%s/work/incompat/volatile", work) : NULL;
	free(work);
	return mark;
}

static int ov_mount(ib_snapshotter *self, ib_buf *rootfs, const char *key)
{
	overlay *o = (overlay *)self;
	char *chainp = ib_snapshot__active(o, key, "chain"), *upper = ib_snapshot__active(o, key, "upper");
	char *work = ib_snapshot__active(o, key, "work"), *merged = ib_snapshot__active(o, key, "merged");
	ib_digest *chain = NULL;
	size_t n = 0;
	int rc = -1;
	if (!chainp || !upper || !work || !merged)
		goto out;
	if ((rc = ov_mounted(self, key)) < 0)
		goto out;
	if (rc == 0) {
		if ((rc = ib_snapshot__chain_read(&chain, &n, chainp)) < 0)
			goto out;
		char what[200];
		snprintf(what, sizeof what, "snapshot `%s`", key);
		char *mark = volatile_mark(o, key);
		int vol = ib_snapshot__owner_is_self(self, key);
		if (!mark || vol < 0) {
			free(mark);
			rc = -1;
			goto out;
		}
		if (vol)
			rc = ib_rm_rf(mark); /* our own earlier mount's (see the top) */
		else if (ib_path_exists(mark))
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT,
					   "snapshot `%s` was mounted volatile and never unmounted (the machine "
					   "stopped?): its files may be incomplete; remove it", key);
		free(mark);
		if (rc < 0)
			goto out;
		int mfd = overlay_fd(o, chain, n, upper, work, vol, what);
		if (mfd < 0) {
			rc = mfd;
			goto out;
		}
		if (move_mount(mfd, "", AT_FDCWD, merged, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "mount snapshot `%s` on `%s`", key, merged);
		close(mfd);
		if (rc < 0)
			goto out;
	}
	rc = ib_buf_set(rootfs, merged, strlen(merged));
out:
	free(chain);
	free(chainp);
	free(upper);
	free(work);
	free(merged);
	return rc;
}

static int ov_unmount(ib_snapshotter *self, const char *key)
{
	overlay *o = (overlay *)self;
	int m = ov_mounted(self, key);
	if (m <= 0)
		return m;
	char *merged = ib_snapshot__active(o, key, "merged"), *mark = volatile_mark(o, key);
	char *upper = ib_snapshot__active(o, key, "upper");
	int rc = 0, persisted = 0;
	if (!merged || !mark || !upper) {
		rc = -1;
		goto out;
	}
	/*
	 * Mounted volatile, and persisted since (no owner record any more): its
	 * files must outlive us and the unmount will not sync them. (A snapshot
	 * with an owner, alive or dead, is garbage once that owner is gone.)
	 */
	persisted = ib_path_exists(mark) && ib_snapshot__owner_state(self, "owners", key, NULL) == IB_OWNER_NONE;
	if (persisted) {
		int ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (ufd < 0 || syncfs(ufd) < 0)
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "sync snapshot `%s` (`%s`)", key, upper);
		if (ufd >= 0)
			close(ufd);
		if (rc < 0)
			goto out;
	}
	/* the reaper detaches what a dead process left, busy or not */
	if (umount2(merged, UMOUNT_NOFOLLOW | (ib_snapshot__detach ? MNT_DETACH : 0)) < 0 && errno != EINVAL)
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "unmount snapshot `%s` from `%s`%s", key, merged,
				     errno == EBUSY ? " (in use)" : "");
	if (rc == 0 && persisted)
		rc = ib_rm_rf(mark);
out:
	free(merged);
	free(mark);
	free(upper);
	return rc;
}

static int ov_diff(ib_snapshotter *self, const char *key, const ib_diff_options *opts,
		   ib_snapshot_write_cb write, void *payload)
{
	overlay *o = (overlay *)self;
	char *chainp = ib_snapshot__active(o, key, "chain"), *upper = ib_snapshot__active(o, key, "upper");
	ib_digest *chain = NULL;
	size_t n = 0;
	int rc = -1, ufd = -1, pfd = -1;
	if (!chainp || !upper)
		goto out;
	if ((rc = ib_snapshot__chain_read(&chain, &n, chainp)) < 0)
		goto out;
	if ((ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "open `%s`", upper);
		goto out;
	}
	if (n > 0) {
		char what[200];
		snprintf(what, sizeof what, "parent view of snapshot `%s`", key);
		if ((pfd = overlay_fd(o, chain, n, NULL, NULL, 0, what)) < 0) {
			rc = pfd;
			goto out;
		}
	}
	rc = ib_snapshot_diff_trees(ufd, pfd, IB_DIFF_OVERLAY_UPPER, opts, write, payload);
out:
	if (ufd >= 0)
		close(ufd);
	if (pfd >= 0)
		close(pfd);
	free(chain);
	free(chainp);
	free(upper);
	return rc;
}

int ib_snapshot__overlay_is(const ib_snapshotter *snap)
{
	return snap && snap->diff == ov_diff;
}

struct ib_snapshot__flush {
	pthread_t thread;
	int fd;
};

static void *flush_main(void *arg)
{
	ib_snapshot__flush *f = arg;
	syncfs(f->fd);
	return NULL;
}

ib_snapshot__flush *ib_snapshot__overlay_flush(ib_snapshotter *self, const char *key)
{
	char *upper = ib_snapshot__active((overlay *)self, key, "upper");
	ib_snapshot__flush *f = upper ? malloc(sizeof(*f)) : NULL;
	if (f && (f->fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 &&
	    pthread_create(&f->thread, NULL, flush_main, f) != 0) {
		close(f->fd);
		f->fd = -1;
	}
	if (f && f->fd < 0) {
		free(f);
		f = NULL;
	}
	free(upper);
	ib_error_clear(); /* nothing started is not a failure */
	return f;
}

void ib_snapshot__overlay_flush_wait(ib_snapshot__flush *f)
{
	if (!f)
		return;
	pthread_join(f->thread, NULL);
	close(f->fd);
	free(f);
}

/*
 * The tar of an adopted layer made again: its files (layers/<hex>/fs, once
 * the snapshot's upper directory) against the parent view of `chain`, as
 * ov_diff read them when the snapshot was committed.
 */
int ib_snapshot__overlay_layer_diff(ib_snapshotter *self, const ib_digest *id, const ib_digest *chain, size_t n,
				    const ib_diff_options *opts, ib_snapshot_write_cb write, void *payload)
{
	overlay *o = (overlay *)self;
	char hex[IB_DIGEST_HEXLEN + 1];
	hex_of(hex, id);
	if (!ib_snapshot__overlay_is(self))
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_SNAPSHOT, "not the overlay snapshotter");
	int has = ov_layer_has(self, id);
	if (has < 0)
		return has;
	if (!has)
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_SNAPSHOT,
				     "the unpacked layer sha256:%s is gone from `%s/layers`", hex, o->dir);
	char *fs = path_of(o, "%s/layers/%s/fs%s", hex, NULL);
	int rc = fs ? 0 : -1, ufd = -1, pfd = -1;
	if (rc == 0 && (ufd = open(fs, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "open `%s`", fs);
	if (rc == 0 && n > 0) {
		char what[120];
		snprintf(what, sizeof what, "parent view of layer sha256:%.12s", hex);
		if ((pfd = overlay_fd(o, chain, n, NULL, NULL, 0, what)) < 0)
			rc = pfd;
	}
	if (rc == 0)
		rc = ib_snapshot_diff_trees(ufd, pfd, IB_DIFF_OVERLAY_UPPER, opts, write, payload);
	if (ufd >= 0)
		close(ufd);
	if (pfd >= 0)
		close(pfd);
	free(fs);
	return rc;
}

int ib_snapshot__overlay_new(ib_snapshotter **out, const char *dir, void *param)
{
	(void)param;
	*out = NULL;
	if (!ib_snapshot__overlay_supported())
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_SNAPSHOT,
				     "the overlay snapshotter needs root and overlayfs; use `copy`");
	overlay *o = ib_calloc(1, sizeof *o);
	if (!o)
		return -1;
	if (!(o->dir = ib_strdup(dir))) {
		free(o);
		return -1;
	}
	static const char *const subs[] = { "layers", "active", "empty", "tmp", "locks" };
	for (size_t i = 0; i < 5; i++) {
		char *p = ib_sprintf("%s/%s", dir, subs[i]);
		int rc = p ? ib_mkdir_p(p, 0700) : -1;
		free(p);
		if (rc < 0) {
			ib_snapshot__backend_free(&o->parent);
			return rc;
		}
	}
	o->parent.version = IB_SNAPSHOTTER_VERSION;
	o->parent.layer_adopt = ov_layer_adopt;
	o->parent.layer_has = ov_layer_has;
	o->parent.layer_unpack = ov_layer_unpack;
	o->parent.layer_list = ov_layer_list;
	o->parent.layer_remove = ov_layer_remove;
	o->parent.prepare = ov_prepare;
	o->parent.mount = ov_mount;
	o->parent.unmount = ov_unmount;
	o->parent.mounted = ov_mounted;
	o->parent.diff = ov_diff;
	o->parent.remove = ib_snapshot__backend_remove;
	o->parent.list = ib_snapshot__backend_list;
	o->parent.chain = ib_snapshot__backend_chain;
	o->parent.free = ib_snapshot__backend_free;
	*out = &o->parent;
	return 0;
}
