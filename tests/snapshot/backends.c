/*
 * The snapshotters on a real store (privileged: root, overlayfs, mounts):
 * both backends give the same layer for the same changes, committing and
 * re-applying gives the same tree, deep chains mount, remove/list/prune.
 */
#include "helpers.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include "imagebuild/sys/snapshotter.h"
#include "util/buf.h"

static char *store_dir;
static ib_store *store;

static void need_privileges(void)
{
	if (geteuid() != 0)
		ib_test_skip_or_fail("snapshot backend tests need root");
	FILE *f = fopen("/proc/filesystems", "r");
	char line[256];
	int ok = 0;
	while (f && fgets(line, sizeof line, f))
		ok |= strstr(line, "\toverlay\n") != NULL;
	if (f)
		fclose(f);
	if (!ok && system("modprobe overlay >/dev/null 2>&1") != 0)
		ib_test_skip_or_fail("overlayfs is not available");
}

static int setup(void **state)
{
	(void)state;
	store_dir = ib_test_tmpdir("snapstore");
	if (ib_store_open(&store, store_dir, NULL) < 0)
		fail_msg("store: %s", ib_error_last()->message);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	/* whatever a failed test left mounted */
	char cmd[4400];
	snprintf(cmd, sizeof cmd,
		 "awk '{print $2}' /proc/mounts | grep '^%s/' | sort -r | while read m; do umount -l \"$m\"; done",
		 store_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not unmount leftovers\n");
	ib_store_free(store);
	rm_tree(store_dir);
	free(store_dir);
	return 0;
}

static ib_snapshotter *open_snap(const char *name)
{
	ib_snapshotter *s = NULL;
	if (ib_snapshotter_open(&s, store, name, NULL) < 0)
		fail_msg("open %s: %s", name, ib_error_last()->message);
	assert_string_equal(ib_snapshotter_name(s), name);
	return s;
}

static ib_digest put_layer(tb *t)
{
	ib_buf b = IB_BUF_INIT;
	tb_bytes(t, &b);
	tb_free(t);
	ib_digest d;
	assert_int_equal(ib_store_blob_put(&d, store, b.ptr, b.size), 0);
	ib_buf_dispose(&b);
	return d;
}

#define OK(call) do { if ((call) < 0) fail_msg("%s: %s", #call, ib_error_last()->message); } while (0)

/* What only root can change: owners, devices, fifos, capabilities, trusted xattrs. */
static void privileged_changes(const char *r)
{
	char *p = pjoin(r, "dev");
	OK(mkdir(p, 0755));
	free(p);
	p = pjoin(r, "dev/null");
	OK(mknod(p, S_IFCHR | 0666, makedev(1, 3)));
	OK(chmod(p, 0666));
	free(p);
	p = pjoin(r, "dev/fifo");
	OK(mkfifo(p, 0600));
	free(p);
	p = pjoin(r, "hb");
	OK(chown(p, 1234, 5678));
	free(p);
	put_file(r, "cap", "ping", 0755);
	p = pjoin(r, "cap");
	/* vfs_cap_data v2, effective, permitted = CAP_NET_RAW (13) */
	unsigned char cap[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00 };
	OK(lsetxattr(p, "security.capability", cap, sizeof cap, 0));
	OK(lsetxattr(p, "trusted.t", "1", 1, 0));
	free(p);
	p = pjoin(r, "suid");
	put_file(r, "suid", "s", 0755);
	OK(chmod(p, 04755 | 02000));
	free(p);
}


/* Run the shared changes on `name`; return its diff and leave `key2` prepared on the commit. */
static void run_backend(const char *name, ib_buf *tar, ib_buf *tree, ib_buf *again)
{
	ib_snapshotter *s = open_snap(name);
	ib_digest base = put_layer(snapshot_test_base_layer());
	ib_buf root = IB_BUF_INIT, list = IB_BUF_INIT, exp = IB_BUF_INIT;
	OK(ib_snapshot_prepare(s, "k1", &base, 1));
	assert_int_equal(ib_snapshot_prepare(s, "k1", &base, 1), IB_EEXISTS);
	OK(ib_snapshot_mount(&root, s, "k1"));
	snapshot_test_changes(root.ptr);
	privileged_changes(root.ptr);
	{
		const ib_diff_options sde = SDE_OPTS(2000000);
		OK(ib_snapshot_diff(s, "k1", &sde, buf_write_cb, tar));
	}
	tar_listing(&list, tar->ptr, tar->size);
	/* the shared expectations (changes.c), with the privileged entries in their places */
	snapshot_test_expected(&exp, 0, 0);
	ib_buf merged = IB_BUF_INIT;
	char *shared = exp.ptr;
	for (char *l = strtok(shared, "\n"); l; l = strtok(NULL, "\n")) {
		if (!strncmp(l, "d2f ", 4))
			ib_buf_puts(&merged, "cap f 0755 0:0 4 [ping] x:security.capability=\001 x:trusted.t=1\n");
		if (!strncmp(l, "f2d/ ", 5))
			ib_buf_puts(&merged, "dev/ d 0755 0:0 0\ndev/fifo p 0600 0:0 0\ndev/null c 0666 0:0 0 1,3\n");
		if (!strncmp(l, "lk ", 3))
			ib_buf_puts(&merged, "hb f 0644 1234:5678 1 [h]\n");
		ib_buf_printf(&merged, "%s\n", l);
	}
	ib_buf_puts(&merged, "suid f 6755 0:0 1 [s]\n");
	if (strcmp(list.ptr, merged.ptr))
		fail_msg("%s: layer entries differ\n--- got:\n%s--- expected:\n%s", name, list.ptr, merged.ptr);

	/* commit: the blob is the diff (unclamped now), digest = diff_id */
	ib_digest layer;
	uint64_t size = 0;
	OK(ib_snapshot_commit(&layer, &size, s, "k1", NULL));
	ib_buf blob = IB_BUF_INIT;
	OK(ib_store_blob_read(&blob, store, &layer));
	assert_int_equal(blob.size, size);
	ib_digest check;
	OK(ib_digest_of(&check, blob.ptr, blob.size));
	assert_true(ib_digest_equal(&check, &layer));

	/* the parent + the layer gives the changed tree */
	char *same = pjoin(root.ptr, "a/same");
	struct timespec ts[2] = { { 1000000, 0 }, { 1000000, 0 } };
	OK(utimensat(AT_FDCWD, same, ts, 0));
	free(same);
	tree_dump(tree, root.ptr, 1);
	ib_digest chain[2] = { base, layer };
	ib_buf root2 = IB_BUF_INIT;
	OK(ib_snapshot_prepare(s, "k2", chain, 2));
	OK(ib_snapshot_mount(&root2, s, "k2"));
	tree_dump(again, root2.ptr, 1);
	if (strcmp(tree->ptr, again->ptr))
		fail_msg("%s: re-applied tree differs\n--- changed:\n%s--- re-applied:\n%s", name, tree->ptr,
			 again->ptr);
	/* unchanged snapshot on the commit: empty diff */
	ib_buf empty = IB_BUF_INIT;
	OK(ib_snapshot_diff(s, "k2", NULL, buf_write_cb, &empty));
	tar_listing(&list, empty.ptr, empty.size);
	assert_string_equal(ib_buf_cstr(&list), "");

	OK(ib_snapshot_unmount(s, "k1"));
	OK(ib_snapshot_unmount(s, "k2"));
	OK(ib_snapshot_unmount(s, "k2")); /* twice is fine */
	OK(ib_snapshot_remove(s, "k1"));
	OK(ib_snapshot_remove(s, "k2"));
	assert_int_equal(ib_snapshot_exists(s, "k1"), 0);
	ib_buf_dispose(&empty);
	ib_buf_dispose(&blob);
	ib_buf_dispose(&merged);
	ib_buf_dispose(&root);
	ib_buf_dispose(&root2);
	ib_buf_dispose(&list);
	ib_buf_dispose(&exp);
	ib_snapshotter_free(s);
}

static void test_backends_agree(void **state)
{
	(void)state;
	need_privileges();
	ib_buf t1 = IB_BUF_INIT, t2 = IB_BUF_INIT, a1 = IB_BUF_INIT, a2 = IB_BUF_INIT;
	ib_buf b1 = IB_BUF_INIT, b2 = IB_BUF_INIT;
	run_backend("overlay", &t1, &a1, &b1);
	run_backend("copy", &t2, &a2, &b2);
	assert_int_equal(t1.size, t2.size);
	assert_memory_equal(t1.ptr, t2.ptr, t1.size);
	/* (the trees themselves hold the times of two runs; each was checked against its re-application) */
	ib_buf_dispose(&t1);
	ib_buf_dispose(&t2);
	ib_buf_dispose(&a1);
	ib_buf_dispose(&a2);
	ib_buf_dispose(&b1);
	ib_buf_dispose(&b2);
}

static void test_overlay_whiteout_format(void **state)
{
	(void)state;
	need_privileges();
	char *dir = ib_test_tmpdir("owh");
	tb *t = tb_new();
	TB(t, .path = "d/.wh..wh..opq");
	TB(t, .path = "d/new", .data = "n");
	TB(t, .path = ".wh.gone");
	int fd = tb_fd(t, "gzip");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	OK(ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_OVERLAY, "wh"));
	close(fd);
	tb_free(t);
	struct stat st;
	OK(fstatat(dfd, "gone", &st, AT_SYMLINK_NOFOLLOW));
	assert_true(S_ISCHR(st.st_mode) && st.st_rdev == 0);
	char v[4] = "";
	char *d = pjoin(dir, "d");
	assert_int_equal(lgetxattr(d, "trusted.overlay.opaque", v, sizeof v), 1);
	assert_int_equal(v[0], 'y');
	OK(fstatat(dfd, "d/new", &st, AT_SYMLINK_NOFOLLOW));
	/* a whiteout and a new directory of that name in one layer: an opaque directory */
	t = tb_new();
	TB(t, .path = ".wh.again");
	TB(t, .path = "again", .type = 'd');
	fd = tb_fd(t, NULL);
	OK(ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_OVERLAY, "again"));
	close(fd);
	tb_free(t);
	char *again = pjoin(dir, "again");
	memset(v, 0, sizeof v);
	assert_int_equal(lgetxattr(again, "trusted.overlay.opaque", v, sizeof v), 1);
	free(again);
	/* a layer cannot set overlay's own xattrs */
	t = tb_new();
	TB(t, .path = "r", .type = 'd', .xname = "trusted.overlay.redirect", .xvalue = "/etc");
	fd = tb_fd(t, NULL);
	OK(ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_OVERLAY, "redirect"));
	close(fd);
	tb_free(t);
	char *r = pjoin(dir, "r");
	assert_true(lgetxattr(r, "trusted.overlay.redirect", v, sizeof v) < 0);
	close(dfd);
	free(r);
	free(d);
	rm_tree(dir);
	free(dir);
}

static void chain_of(ib_digest *chain, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		tb *t = tb_new();
		char p[64], data[32];
		snprintf(p, sizeof p, "common/f%02zu", i);
		snprintf(data, sizeof data, "%zu", i);
		TB(t, .path = p, .data = data);
		snprintf(p, sizeof p, "l%02zu", i);
		TB(t, .path = p, .data = data);
		if (i) {
			snprintf(p, sizeof p, ".wh.l%02zu", i - 1);
			TB(t, .path = p);
		}
		chain[i] = put_layer(t);
	}
}

static void test_deep_chain(void **state)
{
	(void)state;
	need_privileges();
	enum { N = 64 };
	ib_digest chain[N];
	chain_of(chain, N);
	ib_buf tars[2] = { IB_BUF_INIT, IB_BUF_INIT };
	const char *names[2] = { "overlay", "copy" };
	for (int b = 0; b < 2; b++) {
		ib_snapshotter *s = open_snap(names[b]);
		ib_buf root = IB_BUF_INIT, dump = IB_BUF_INIT;
		OK(ib_snapshot_prepare(s, "deep", chain, N));
		OK(ib_snapshot_mount(&root, s, "deep"));
		if (b == 0) /* more than one page of lowerdir paths */
			assert_true(N * (strlen(store_dir) + 100) > 4096);
		tree_dump(&dump, root.ptr, 1);
		assert_non_null(strstr(dump.ptr, "common/f00 f"));
		assert_non_null(strstr(dump.ptr, "common/f63 f"));
		assert_non_null(strstr(dump.ptr, "\nl63 f"));
		assert_null(strstr(dump.ptr, "\nl62 f"));
		put_file(root.ptr, "common/new", "new", 0644);
		char *gone = pjoin(root.ptr, "l63");
		OK(unlink(gone));
		free(gone);
		{
			const ib_diff_options sde = SDE_OPTS(2000000);
			OK(ib_snapshot_diff(s, "deep", &sde, buf_write_cb, &tars[b]));
		}
		ib_buf list = IB_BUF_INIT;
		tar_listing(&list, tars[b].ptr, tars[b].size);
		const char *exp[] = { ".wh.l63 f 0000 0:0 0", "common/ d 0755 0:0 0",
				      "common/new f 0644 0:0 3 [new]", NULL };
		assert_listing(&list, exp);
		OK(ib_snapshot_unmount(s, "deep"));
		OK(ib_snapshot_remove(s, "deep"));
		ib_buf_dispose(&list);
		ib_buf_dispose(&root);
		ib_buf_dispose(&dump);
		ib_snapshotter_free(s);
	}
	assert_int_equal(tars[0].size, tars[1].size);
	assert_memory_equal(tars[0].ptr, tars[1].ptr, tars[0].size);
	ib_buf_dispose(&tars[0]);
	ib_buf_dispose(&tars[1]);
}

/* The same layer twice in a chain (empty layers often are): a layer in between must lose. */
static void test_repeated_layer(void **state)
{
	(void)state;
	need_privileges();
	tb *t = tb_new();
	TB(t, .path = "f", .data = "A");
	TB(t, .path = "d/a", .data = "A");
	ib_digest a = put_layer(t);
	t = tb_new();
	TB(t, .path = "f", .data = "BB");
	TB(t, .path = "d/b", .data = "B");
	TB(t, .path = "g", .data = "B");
	ib_digest b = put_layer(t);
	ib_digest chain[3] = { a, b, a };
	ib_buf dumps[2] = { IB_BUF_INIT, IB_BUF_INIT }, tars[2] = { IB_BUF_INIT, IB_BUF_INIT };
	const char *names[2] = { "overlay", "copy" };
	for (int k = 0; k < 2; k++) {
		ib_snapshotter *s = open_snap(names[k]);
		ib_buf root = IB_BUF_INIT;
		OK(ib_snapshot_prepare(s, "rep", chain, 3));
		OK(ib_snapshot_mount(&root, s, "rep"));
		tree_dump(&dumps[k], root.ptr, 1);
		assert_non_null(strstr(dumps[k].ptr, "\nf f 0644 0:0 1 [A]"));
		assert_non_null(strstr(dumps[k].ptr, "d/b f"));
		put_file(root.ptr, "g", "changed", 0644);
		{
			const ib_diff_options sde = SDE_OPTS(2000000);
			OK(ib_snapshot_diff(s, "rep", &sde, buf_write_cb, &tars[k]));
		}
		OK(ib_snapshot_unmount(s, "rep"));
		OK(ib_snapshot_remove(s, "rep"));
		ib_buf_dispose(&root);
		ib_snapshotter_free(s);
	}
	assert_string_equal(dumps[0].ptr, dumps[1].ptr);
	assert_int_equal(tars[0].size, tars[1].size);
	assert_memory_equal(tars[0].ptr, tars[1].ptr, tars[0].size);
	ib_buf list = IB_BUF_INIT;
	tar_listing(&list, tars[0].ptr, tars[0].size);
	const char *exp[] = { "g f 0644 0:0 7 [changed]", NULL };
	assert_listing(&list, exp);
	ib_buf_dispose(&list);
	for (int k = 0; k < 2; k++) {
		ib_buf_dispose(&dumps[k]);
		ib_buf_dispose(&tars[k]);
	}
}

static int collect_keys(const char *key, void *payload)
{
	ib_buf_printf(payload, "%s,", key);
	return 0;
}

static int count_layers(const ib_digest *d, void *payload)
{
	(void)d;
	(*(int *)payload)++;
	return 0;
}

static void test_remove_list_prune(void **state)
{
	(void)state;
	need_privileges();
	ib_snapshotter *s = open_snap("overlay");
	ib_digest chain[3];
	chain_of(chain, 3);
	ib_buf root = IB_BUF_INIT, keys = IB_BUF_INIT;
	/* a clean slate: earlier tests' layers go */
	OK(ib_snapshotter_prune(NULL, s, NULL, 0, NULL, 0));
	OK(ib_snapshot_prepare(s, "busy", chain, 2));
	OK(ib_snapshot_prepare(s, "idle", chain, 3));
	OK(ib_snapshot_prepare(s, "kept", chain, 1));
	/* persistent (as containers' are): not this process's active state, which prune would keep */
	OK(ib_snapshot_persist(s, "busy"));
	OK(ib_snapshot_persist(s, "idle"));
	OK(ib_snapshot_persist(s, "kept"));
	assert_int_equal(ib_snapshot_persist(s, "nope"), IB_ENOTFOUND);
	OK(ib_snapshot_mount(&root, s, "busy"));
	ib_assert_error_contains(ib_snapshot_remove(s, "busy"), "in use");
	assert_int_equal(ib_snapshot_remove(s, "nope"), IB_ENOTFOUND);
	ib_assert_error_contains(ib_snapshot_prepare(s, "../x", chain, 1), "snapshot key");
	ib_assert_error_contains(ib_snapshot_mount(&root, s, "a/b"), "snapshot key");
	OK(ib_snapshot_list(s, collect_keys, &keys));
	assert_string_equal(keys.ptr, "busy,idle,kept,");
	int n = 0;
	OK(ib_snapshot_layer_list(s, count_layers, &n));
	assert_int_equal(n, 3);
	const char *keep[] = { "kept" };
	size_t freed = 0;
	OK(ib_snapshotter_prune(&freed, s, NULL, 0, keep, 1));
	/* idle and chain[2] went; busy (mounted) and its layers stayed */
	assert_int_equal(freed, 2);
	ib_buf_clear(&keys);
	OK(ib_snapshot_list(s, collect_keys, &keys));
	assert_string_equal(keys.ptr, "busy,kept,");
	OK(ib_snapshot_unmount(s, "busy"));
	OK(ib_snapshotter_prune(&freed, s, &chain[1], 1, NULL, 0));
	assert_int_equal(freed, 3); /* busy, kept, chain[0] */
	n = 0;
	OK(ib_snapshot_layer_list(s, count_layers, &n));
	assert_int_equal(n, 1);
	OK(ib_snapshotter_prune(&freed, s, NULL, 0, NULL, 0));
	ib_buf_dispose(&root);
	ib_buf_dispose(&keys);
	ib_snapshotter_free(s);
}

static void test_crash_mid_unpack(void **state)
{
	(void)state;
	need_privileges();
	ib_snapshotter *s = open_snap("overlay");
	ib_digest d;
	chain_of(&d, 1);
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, &d);
	char p[4200];
	snprintf(p, sizeof p, "%s/snapshots/overlay/layers/%s/fs", store_dir, hex);
	ib_buf b = IB_BUF_INIT;
	ib_buf_puts(&b, p);
	OK(ib_snapshot_layer_ensure(s, &d));
	/* a crash after unpacking part of it: no ready marker */
	char ready[4200];
	snprintf(ready, sizeof ready, "%s/snapshots/overlay/layers/%s/ready", store_dir, hex);
	OK(unlink(ready));
	put_file(p, "junk", "half-unpacked", 0644);
	OK(ib_snapshot_layer_ensure(s, &d));
	ib_buf dump = IB_BUF_INIT;
	tree_dump(&dump, p, 0);
	assert_null(strstr(dump.ptr, "junk"));
	assert_non_null(strstr(dump.ptr, "l00 f"));
	/* a hostile layer: a clear error, nothing marked ready */
	tb *t = tb_new();
	TB(t, .path = "../../../../escape", .data = "x");
	ib_digest bad = put_layer(t);
	ib_assert_error_contains(ib_snapshot_prepare(s, "bad", &bad, 1), "climbs out");
	char bs[IB_DIGEST_STRLEN];
	ib_digest_fmt(bs, &bad);
	assert_non_null(strstr(ib_error_last()->message, bs));
	assert_int_equal(ib_snapshot_exists(s, "bad"), 0);
	OK(ib_snapshotter_prune(NULL, s, NULL, 0, NULL, 0));
	ib_buf_dispose(&b);
	ib_buf_dispose(&dump);
	ib_snapshotter_free(s);
}

/*
 * A process killed inside a layer's unpack or removal leaves layers/<hex>
 * without `ready` (or tmp/<hex>-XXXXXX): the layer listing skips it, so the
 * prune never removed it and its files stayed for good. Now the prune
 * removes both (a layer in use is unpacked again when next needed).
 */
static void test_prune_half_removed_layer(void **state)
{
	(void)state;
	need_privileges();
	ib_snapshotter *s = open_snap("overlay");
	ib_digest d;
	chain_of(&d, 1);
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, &d);
	char dir[4200], ready[4300], tmpd[4300];
	snprintf(dir, sizeof dir, "%s/snapshots/overlay/layers/%s", store_dir, hex);
	snprintf(ready, sizeof ready, "%s/ready", dir);
	snprintf(tmpd, sizeof tmpd, "%s/snapshots/overlay/tmp/%s-AbC123", store_dir, hex);
	OK(ib_snapshot_layer_ensure(s, &d));
	OK(unlink(ready)); /* killed between unlinking `ready` and removing the files */
	OK(mkdir(tmpd, 0700)); /* killed mid-unpack */
	size_t freed = 0;
	OK(ib_snapshotter_prune(&freed, s, NULL, 0, NULL, 0));
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(access(tmpd, F_OK), -1);
	assert_true(freed >= 2);
	/* a complete layer nobody keeps goes as before; one kept stays; a half-made one kept is redone */
	OK(ib_snapshot_layer_ensure(s, &d));
	OK(ib_snapshotter_prune(NULL, s, &d, 1, NULL, 0));
	assert_int_equal(access(ready, F_OK), 0);
	OK(unlink(ready));
	OK(ib_snapshotter_prune(NULL, s, &d, 1, NULL, 0));
	OK(ib_snapshot_layer_ensure(s, &d));
	assert_int_equal(access(ready, F_OK), 0);
	ib_snapshotter_free(s);
}

static int sha_write(const void *data, size_t len, void *payload)
{
	return ib_buf_put(payload, data, len);
}

static ib_digest diff_digest(ib_snapshotter *s, const char *key)
{
	ib_buf b = IB_BUF_INIT;
	OK(ib_snapshot_diff(s, key, NULL, sha_write, &b));
	ib_digest d;
	OK(ib_digest_of(&d, b.ptr, b.size));
	ib_buf_dispose(&b);
	return d;
}

static void set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };
	OK(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW));
}

/* 1 when /proc/locks shows a process blocked on a lock of inode `ino` */
static int lock_waiter(unsigned long ino)
{
	FILE *f = fopen("/proc/locks", "r");
	char line[256], want[40];
	int found = 0;
	snprintf(want, sizeof want, ":%lu ", ino);
	while (f && !found && fgets(line, sizeof line, f))
		found = strstr(line, "->") && strstr(line, want);
	if (f)
		fclose(f);
	return found;
}

/*
 * Two processes commit the same diff on different chains at once: both look,
 * find no layer, hash with their own chain as the source; A adopts first, B's
 * adopt finds the layer there. B recorded its chain C2 for A's files (made on
 * C1), and the diff depends on the parent (unchanged entries are left out):
 * the layer no longer regenerated to its digest (fsck, push, save failed).
 * Here the other process is a child holding the layer's lock: B's adopt
 * waits for it while it moves A's files into place, as A's adopt would.
 */
static void test_commit_remove_race_other_chain(void **state)
{
	(void)state;
	need_privileges();
	ib_snapshotter *s = open_snap("overlay");
	tb *t1 = tb_new();
	TB(t1, .path = "etc", .type = 'd', .mode = 0755, .mtime = 1000000);
	TB(t1, .path = "etc/f", .data = "v\n", .mode = 0644, .mtime = 1000000);
	ib_digest c1 = put_layer(t1);
	tb *t2 = tb_new();
	TB(t2, .path = "other", .data = "o\n", .mode = 0644);
	ib_digest c2 = put_layer(t2);
	OK(ib_snapshot_prepare(s, "raceA", &c1, 1));
	OK(ib_snapshot_prepare(s, "raceB", &c2, 1));
	char a[4200], b[4200], p[4400];
	snprintf(a, sizeof a, "%s/snapshots/overlay/active/raceA/upper", store_dir);
	snprintf(b, sizeof b, "%s/snapshots/overlay/active/raceB/upper", store_dir);
	/* A: /new, and /etc/f copied up unchanged (as a chmod to its own mode does): not in A's diff */
	snprintf(p, sizeof p, "%s/etc", a);
	OK(mkdir(p, 0755));
	put_file(a, "etc/f", "v\n", 0644);
	put_file(a, "new", "n\n", 0644);
	snprintf(p, sizeof p, "%s/etc/f", a);
	set_mtime(p, 1000000);
	snprintf(p, sizeof p, "%s/etc", a);
	set_mtime(p, 1000000);
	snprintf(p, sizeof p, "%s/new", a);
	set_mtime(p, 2000000);
	/* B: the same /new on C2 */
	put_file(b, "new", "n\n", 0644);
	snprintf(p, sizeof p, "%s/new", b);
	set_mtime(p, 2000000);
	ib_digest d = diff_digest(s, "raceA");
	ib_digest db = diff_digest(s, "raceB");
	assert_true(ib_digest_equal(&d, &db)); /* one diff_id on two chains */
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, &d);
	char lockp[4400], layer[4400], ready[4500], fs[4500];
	snprintf(lockp, sizeof lockp, "%s/snapshots/overlay/locks/%s", store_dir, hex);
	snprintf(layer, sizeof layer, "%s/snapshots/overlay/layers/%s", store_dir, hex);
	snprintf(ready, sizeof ready, "%s/ready", layer);
	snprintf(fs, sizeof fs, "%s/fs", layer);
	int lfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(lfd >= 0);
	struct stat lst;
	assert_int_equal(fstat(lfd, &lst), 0);
	int sync[2];
	assert_int_equal(pipe(sync), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int cfd = open(lockp, O_RDWR | O_CLOEXEC);
		if (cfd < 0 || flock(cfd, LOCK_EX) < 0 || write(sync[1], "x", 1) != 1)
			_exit(1);
		/* B has looked (no layer) and waits for the lock in its adopt */
		int waited = 0;
		while (!lock_waiter((unsigned long)lst.st_ino) && waited++ < 4000)
			usleep(5000);
		if (mkdir(layer, 0700) < 0 || rename(a, fs) < 0)
			_exit(2);
		int r = open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (r < 0)
			_exit(3);
		close(r);
		_exit(waited < 4000 ? 0 : 4);
	}
	close(lfd);
	char c;
	assert_int_equal(read(sync[0], &c, 1), 1);
	ib_digest got;
	int rc = ib_snapshot_commit_remove(&got, NULL, s, "raceB", NULL);
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	OK(rc);
	assert_true(ib_digest_equal(&got, &d));
	/* the layer leaves as itself (what push, save and fsck read) */
	int fd = -1;
	OK(ib_store_blob_open(&fd, store, &d));
	ib_digest again;
	OK(ib_digest_of(&again, "", 0));
	ib_buf all = IB_BUF_INIT;
	char chunk[65536];
	ssize_t k;
	while ((k = read(fd, chunk, sizeof chunk)) > 0)
		ib_buf_put(&all, chunk, (size_t)k);
	close(fd);
	OK(ib_digest_of(&again, all.ptr, all.size));
	assert_true(ib_digest_equal(&again, &d));
	ib_buf_dispose(&all);
	close(sync[0]);
	close(sync[1]);
	OK(ib_snapshot_remove(s, "raceA"));
	ib_snapshotter_free(s);
}

/* 1 when something is mounted on `path` in our mount namespace. */
static int mounted_at(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192], mp[4200];
	int found = 0;
	while (f && !found && fgets(line, sizeof line, f))
		found = sscanf(line, "%*s %*s %*s %*s %4199s", mp) == 1 && !strcmp(mp, path);
	if (f)
		fclose(f);
	return found;
}

/* In a child killed with SIGKILL halfway: what a killed build and a killed container run leave. */
static void killed_child(const char *name, const ib_digest *chain)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ib_snapshotter *s = NULL;
		ib_buf root = IB_BUF_INIT;
		int ok = ib_snapshotter_open(&s, store, name, NULL) == 0 &&
			 ib_snapshot_prepare(s, "dead-run", chain, 2) == 0 && ib_snapshot_mount(&root, s, "dead-run") == 0 &&
			 ib_snapshot_prepare(s, "dead-idle", chain, 1) == 0 &&
			 ib_snapshot_prepare(s, "ctr", chain, 2) == 0 && ib_snapshot_persist(s, "ctr") == 0 &&
			 ib_snapshot_mount(&root, s, "ctr") == 0;
		if (!ok) {
			fprintf(stderr, "child: %s\n", ib_error_last()->message);
			_exit(1);
		}
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		fail_msg("%s: the child did not get as far as being killed (status %d)", name, st);
}

static char *merged_of(const char *name, const char *key)
{
	char p[4400];
	snprintf(p, sizeof p, "%s/snapshots/%s/active/%s/%s", store_dir ? store_dir : "", name, key,
		 strcmp(name, "overlay") ? "fs" : "merged");
	return strdup(p);
}

/* A process killed with snapshots prepared and mounted: prune (and open) clean up, fsck reports it first. */
static void test_dead_owner(void **state)
{
	(void)state;
	need_privileges();
	ib_digest chain[2];
	chain_of(chain, 2);
	const char *names[2] = { "overlay", "copy" };
	for (int b = 0; b < 2; b++) {
		const char *name = names[b];
		ib_snapshotter_options so = IB_SNAPSHOTTER_OPTIONS_INIT;
		so.flags = IB_SNAPSHOTTER_KEEP_STALE;
		ib_snapshotter *s = NULL;
		OK(ib_snapshotter_open(&s, store, name, &so));
		killed_child(name, chain);
		/* ours: the active state of a live process, unmounted, in no keep list */
		OK(ib_snapshot_prepare(s, "mine", chain, 2));
		char *run = merged_of(name, "dead-run"), *ctr = merged_of(name, "ctr");
		if (!strcmp(name, "overlay")) {
			assert_true(mounted_at(run));
			assert_true(mounted_at(ctr));
		}
		assert_int_equal(ib_snapshot_stale(s, "dead-run"), 1);
		assert_int_equal(ib_snapshot_stale(s, "dead-idle"), 1);
		assert_int_equal(ib_snapshot_stale(s, "ctr"), 1); /* mounted by the dead process */
		assert_int_equal(ib_snapshot_stale(s, "mine"), 0);
		ib_buf report = IB_BUF_INIT;
		ib_assert_error_contains(ib_snapshotter_fsck(&report, s), "which is gone");
		assert_non_null(strstr(ib_buf_cstr(&report), "`dead-run` was left by process"));
		assert_non_null(strstr(ib_buf_cstr(&report), "`ctr` is still mounted by process"));
		assert_null(strstr(ib_buf_cstr(&report), "mine"));
		const char *keep[] = { "ctr" };
		size_t freed = 0;
		OK(ib_snapshotter_prune(&freed, s, chain, 2, keep, 1));
		assert_int_equal(freed, 2); /* dead-run, dead-idle */
		assert_int_equal(ib_snapshot_exists(s, "dead-run"), 0);
		assert_int_equal(ib_snapshot_exists(s, "dead-idle"), 0);
		assert_false(mounted_at(run));
		assert_int_equal(ib_snapshot_exists(s, "ctr"), 1); /* a container's: unmounted, kept */
		assert_false(mounted_at(ctr));
		assert_int_equal(ib_snapshot_stale(s, "ctr"), 0);
		assert_int_equal(ib_snapshot_exists(s, "mine"), 1);
		ib_buf_clear(&report);
		OK(ib_snapshotter_fsck(&report, s));
		assert_string_equal(ib_buf_cstr(&report), "");
		/* the container runs again (mounts) and its files are there */
		ib_buf root = IB_BUF_INIT;
		OK(ib_snapshot_mount(&root, s, "ctr"));
		char *f = pjoin(root.ptr, "l01");
		assert_int_equal(access(f, F_OK), 0);
		free(f);
		OK(ib_snapshot_unmount(s, "ctr"));
		OK(ib_snapshot_remove(s, "ctr"));
		/* opening a snapshotter cleans up too */
		killed_child(name, chain);
		ib_snapshotter *again = open_snap(name);
		assert_int_equal(ib_snapshot_exists(again, "dead-run"), 0);
		assert_int_equal(ib_snapshot_exists(again, "dead-idle"), 0);
		assert_false(mounted_at(run));
		assert_false(mounted_at(ctr));
		assert_int_equal(ib_snapshot_exists(again, "ctr"), 1); /* persistent: prune's keep list decides */
		OK(ib_snapshot_remove(again, "ctr"));
		OK(ib_snapshot_remove(again, "mine"));
		ib_snapshotter_free(again);
		free(run);
		free(ctr);
		ib_buf_dispose(&root);
		ib_buf_dispose(&report);
		ib_snapshotter_free(s);
	}
}

/*
 * A container is created in two steps (lib/build/container.c): its record,
 * then ib_snapshot_persist. A `run` killed between them left the record and
 * an owner record naming a dead process: the next open's reaper removed the
 * container's snapshot, files and all (exec then failed: "no snapshot").
 */
static void test_dead_owner_container(void **state)
{
	(void)state;
	need_privileges();
	ib_digest chain[2];
	chain_of(chain, 2);
	const char *names[2] = { "overlay", "copy" };
	static const char *const id = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
	for (int b = 0; b < 2; b++) {
		const char *name = names[b];
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			ib_snapshotter *s = NULL;
			ib_snapshotter_options so = IB_SNAPSHOTTER_OPTIONS_INIT;
			so.flags = IB_SNAPSHOTTER_KEEP_STALE;
			ib_container_record rec = IB_CONTAINER_RECORD_INIT;
			rec.id = id;
			rec.image_id = chain[0];
			rec.state = "created";
			int ok = ib_snapshotter_open(&s, store, name, &so) == 0 && ib_snapshot_prepare(s, id, chain, 2) == 0 &&
				 ib_store_container_put(store, &rec) == 0;
			if (!ok) {
				fprintf(stderr, "child: %s\n", ib_error_last()->message);
				_exit(1);
			}
			kill(getpid(), SIGKILL); /* before ib_snapshot_persist */
			_exit(2);
		}
		int st = 0;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
			fail_msg("%s: the child did not get as far as being killed (status %d)", name, st);
		/* an open reaps what dead processes left, but not a container's snapshot */
		ib_snapshotter *s = open_snap(name);
		assert_int_equal(ib_snapshot_exists(s, id), 1);
		assert_int_equal(ib_snapshot_stale(s, id), 0); /* the reaper made it persistent */
		/* a prune keeps it as ib_prune does, by the containers' ids */
		size_t freed = 0;
		const char *keep[] = { id };
		OK(ib_snapshotter_prune(&freed, s, chain, 2, keep, 1));
		assert_int_equal(ib_snapshot_exists(s, id), 1);
		ib_buf root = IB_BUF_INIT;
		OK(ib_snapshot_mount(&root, s, id));
		char *f = pjoin(root.ptr, "l01");
		assert_int_equal(access(f, F_OK), 0);
		free(f);
		OK(ib_snapshot_unmount(s, id));
		/* once the record goes, the snapshot is garbage like any other */
		OK(ib_store_container_remove(store, id));
		OK(ib_snapshotter_prune(&freed, s, chain, 2, NULL, 0));
		assert_int_equal(ib_snapshot_exists(s, id), 0);
		ib_buf_dispose(&root);
		ib_snapshotter_free(s);
	}
}

static int find_layer(const ib_digest *d, void *payload)
{
	return ib_digest_equal(d, payload) ? 1 : 0;
}

/* overlay's own xattrs (origin on a copied-up file, impure on its directory...) found in a tree, but the opaque mark */
static int ovl_xattrs_left;
static int count_ovl_xattrs(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	char list[4096];
	ssize_t len = llistxattr(path, list, sizeof list);
	for (char *x = list; len > 0 && x < list + len; x += strlen(x) + 1)
		if (!strncmp(x, "trusted.overlay.", 16) && strcmp(x, "trusted.overlay.opaque")) {
			print_message("left on %s: %s\n", path, x);
			ovl_xattrs_left++;
		}
	return 0;
}

/* commit_remove gives the same layer as commit, and the next snapshot sees the same tree;
 * overlay keeps the snapshot's files as the unpacked layer instead of unpacking the blob */
static void commit_remove_on(const char *name)
{
	ib_snapshotter *s = open_snap(name);
	ib_digest base = put_layer(snapshot_test_base_layer());
	ib_buf root = IB_BUF_INIT, root2 = IB_BUF_INIT, tree = IB_BUF_INIT, again = IB_BUF_INIT;
	ib_buf tar = IB_BUF_INIT;
	OK(ib_snapshot_prepare(s, "cr1", &base, 1));
	OK(ib_snapshot_mount(&root, s, "cr1"));
	snapshot_test_changes(root.ptr);
	char *same = pjoin(root.ptr, "a/same");
	struct timespec ts[2] = { { 1000000, 0 }, { 1000000, 0 } };
	OK(utimensat(AT_FDCWD, same, ts, 0));
	free(same);
	tree_dump(&tree, root.ptr, 1);
	OK(ib_snapshot_diff(s, "cr1", NULL, buf_write_cb, &tar));
	assert_int_equal(ib_snapshot_commit_remove(NULL, NULL, s, "cr1", NULL), IB_EEXISTS); /* mounted */
	OK(ib_snapshot_unmount(s, "cr1"));
	ib_digest layer, expect;
	uint64_t size = 0;
	OK(ib_snapshot_commit_remove(&layer, &size, s, "cr1", NULL));
	OK(ib_digest_of(&expect, tar.ptr, tar.size));
	assert_true(ib_digest_equal(&layer, &expect));
	assert_int_equal(size, tar.size);
	assert_int_equal(ib_snapshot_exists(s, "cr1"), 0);
	if (!strcmp(name, "overlay")) {
		assert_int_equal(ib_snapshot_layer_list(s, find_layer, &layer), 1); /* adopted, not unpacked */
		/* the changes copied lower files up (chmod, links): overlay marked them, the layer keeps none of it */
		char hex[IB_DIGEST_STRLEN];
		ib_digest_fmt(hex, &layer);
		char *fs = ib_sprintf("%s/snapshots/overlay/layers/%s/fs", store_dir, strchr(hex, ':') + 1);
		struct stat lst_;
		assert_int_equal(lstat(fs, &lst_), 0);
		ovl_xattrs_left = 0;
		assert_int_equal(nftw(fs, count_ovl_xattrs, 16, FTW_PHYS), 0);
		assert_int_equal(ovl_xattrs_left, 0);
		free(fs);
	}
	ib_digest chain[2] = { base, layer };
	OK(ib_snapshot_prepare(s, "cr2", chain, 2));
	OK(ib_snapshot_mount(&root2, s, "cr2"));
	tree_dump(&again, root2.ptr, 1);
	if (strcmp(tree.ptr, again.ptr))
		fail_msg("%s: the tree on the kept layer differs\n--- changed:\n%s--- next:\n%s", name, tree.ptr,
			 again.ptr);
	/* nothing of overlay's bookkeeping reached the layer: its diff is empty */
	ib_buf empty = IB_BUF_INIT, list = IB_BUF_INIT;
	OK(ib_snapshot_diff(s, "cr2", NULL, buf_write_cb, &empty));
	tar_listing(&list, empty.ptr, empty.size);
	assert_string_equal(ib_buf_cstr(&list), "");
	OK(ib_snapshot_unmount(s, "cr2"));
	OK(ib_snapshot_remove(s, "cr2"));
	ib_buf_dispose(&empty);
	ib_buf_dispose(&list);
	ib_buf_dispose(&root);
	ib_buf_dispose(&root2);
	ib_buf_dispose(&tree);
	ib_buf_dispose(&again);
	ib_buf_dispose(&tar);
	ib_snapshotter_free(s);
}

/*
 * ib_snapshot_adopt: a persistent snapshot (a container's) becomes the
 * caller's again. While the adopter lives, a prune that keeps nothing keeps
 * it (a container's removal adopts before dropping the record, so a prune
 * in between does not remove the snapshot under the remover); once the
 * adopter is gone, the next prune removes it.
 */
static void test_adopt(void **state)
{
	(void)state;
	need_privileges();
	ib_digest chain[1];
	chain_of(chain, 1);
	const char *names[2] = { "overlay", "copy" };
	for (int b = 0; b < 2; b++) {
		ib_snapshotter *s = open_snap(names[b]);
		OK(ib_snapshot_prepare(s, "adopted", chain, 1));
		OK(ib_snapshot_persist(s, "adopted"));
		OK(ib_snapshot_adopt(s, "adopted"));
		size_t freed = 0;
		OK(ib_snapshotter_prune(&freed, s, NULL, 0, NULL, 0));
		assert_int_equal(ib_snapshot_exists(s, "adopted"), 1);
		OK(ib_snapshot_remove(s, "adopted"));
		assert_int_equal(ib_snapshot_exists(s, "adopted"), 0);
		assert_int_equal(ib_snapshot_adopt(s, "adopted"), IB_ENOTFOUND);
		ib_assert_error_contains(ib_snapshot_adopt(s, "../x"), "snapshot key");
		/* adopted by a process that is gone: the next prune removes it */
		OK(ib_snapshot_prepare(s, "orphan", chain, 1));
		OK(ib_snapshot_persist(s, "orphan"));
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(ib_snapshot_adopt(s, "orphan") == 0 ? 0 : 1);
		int st = 0;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		assert_int_equal(ib_snapshot_stale(s, "orphan"), 1);
		OK(ib_snapshotter_prune(&freed, s, NULL, 0, NULL, 0));
		assert_int_equal(ib_snapshot_exists(s, "orphan"), 0);
		ib_snapshotter_free(s);
	}
}

static void test_commit_remove(void **state)
{
	(void)state;
	need_privileges();
	commit_remove_on("overlay");
	commit_remove_on("copy");
}

/* The super options of the mount at `path` (/proc/self/mountinfo), "" when not mounted. */
static void mount_options(char *out, size_t size, const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192];
	assert_non_null(f);
	out[0] = '\0';
	while (fgets(line, sizeof line, f)) {
		char mnt[4096];
		/* id parent major:minor root mountpoint ... - fstype source super-options */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 || strcmp(mnt, path))
			continue;
		const char *dash = strstr(line, " - ");
		const char *opts = dash ? strrchr(dash, ' ') : NULL;
		snprintf(out, size, "%s", opts ? opts + 1 : "");
	}
	fclose(f);
}

static int has_option(const char *opts, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = opts; (p = strstr(p, name)) != NULL; p += n)
		if ((p == opts || p[-1] == ',') && (p[n] == ',' || p[n] == '\n' || p[n] == '\0'))
			return 1;
	return 0;
}

/* Linux 6.x shows the flag as `fsync=volatile`, earlier ones as `volatile`. */
static int is_volatile(const char *opts)
{
	return has_option(opts, "volatile") || has_option(opts, "fsync=volatile");
}

/*
 * A snapshot that is this process's active state (a build step's) is
 * mounted volatile (overlay.c: no sync at unmount, fsyncs inside return at
 * once); one that was persisted (a container's) is not. overlayfs refuses
 * to mount a volatile upper again unless its mark goes: our own snapshot
 * mounts again (its files still there), a persisted one after a volatile
 * mount is synced at unmount and mounts again, and one whose mark is left
 * (the machine stopped while it was mounted volatile) is refused, with a
 * reason. The commit of a volatile snapshot gives the same layer.
 */
static void test_volatile_mounts(void **state)
{
	(void)state;
	need_privileges();
	ib_snapshotter *s = open_snap("overlay");
	ib_digest base = put_layer(snapshot_test_base_layer());
	ib_buf root = IB_BUF_INIT;
	char opts[4096], mark[4096], path[4096];

	OK(ib_snapshot_prepare(s, "vol", &base, 1));
	OK(ib_snapshot_mount(&root, s, "vol"));
	mount_options(opts, sizeof opts, root.ptr);
	if (!is_volatile(opts))
		fail_msg("not volatile: `%s` (%s)", opts, root.ptr);
	put_file(root.ptr, "f", "kept\n", 0644);
	int fd = open(ib_buf_cstr(&root), O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(syncfs(fd), 0);
	close(fd);
	OK(ib_snapshot_unmount(s, "vol"));
	snprintf(mark, sizeof mark, "%s/snapshots/overlay/active/vol/work/work/incompat/volatile", store_dir);
	assert_true(access(mark, F_OK) == 0); /* overlayfs left its mark... */
	OK(ib_snapshot_mount(&root, s, "vol")); /* ...and we mount our own snapshot again */
	snprintf(path, sizeof path, "%s/f", root.ptr);
	assert_true(access(path, F_OK) == 0);
	OK(ib_snapshot_unmount(s, "vol"));
	ib_digest layer;
	OK(ib_snapshot_commit_remove(&layer, NULL, s, "vol", NULL));

	/* persisted before the mount: as before */
	OK(ib_snapshot_prepare(s, "kept", &base, 1));
	OK(ib_snapshot_persist(s, "kept"));
	OK(ib_snapshot_mount(&root, s, "kept"));
	mount_options(opts, sizeof opts, root.ptr);
	assert_true(opts[0] != '\0');
	assert_false(is_volatile(opts));
	OK(ib_snapshot_unmount(s, "kept"));
	OK(ib_snapshot_remove(s, "kept"));

	/* persisted while mounted volatile: synced at the unmount, its mark gone, mounts again (not volatile) */
	OK(ib_snapshot_prepare(s, "late", &base, 1));
	OK(ib_snapshot_mount(&root, s, "late"));
	mount_options(opts, sizeof opts, root.ptr);
	assert_true(is_volatile(opts));
	put_file(root.ptr, "g", "late\n", 0644);
	OK(ib_snapshot_persist(s, "late"));
	OK(ib_snapshot_unmount(s, "late"));
	snprintf(mark, sizeof mark, "%s/snapshots/overlay/active/late/work/work/incompat/volatile", store_dir);
	assert_true(access(mark, F_OK) < 0);
	OK(ib_snapshot_mount(&root, s, "late"));
	mount_options(opts, sizeof opts, root.ptr);
	assert_false(is_volatile(opts));
	snprintf(path, sizeof path, "%s/g", root.ptr);
	assert_true(access(path, F_OK) == 0);
	OK(ib_snapshot_unmount(s, "late"));
	/* a mark nobody removed (the machine stopped while it was mounted volatile): refused, named */
	snprintf(path, sizeof path, "%s/snapshots/overlay/active/late/work/work", store_dir);
	assert_int_equal(mkdir(path, 0700) == 0 || errno == EEXIST, 1);
	strcat(path, "/incompat");
	assert_int_equal(mkdir(path, 0700) == 0 || errno == EEXIST, 1);
	assert_int_equal(mkdir(mark, 0700), 0);
	ib_assert_error_contains(ib_snapshot_mount(&root, s, "late"), "mounted volatile");
	OK(ib_snapshot_remove(s, "late"));
	ib_buf_dispose(&root);
	ib_snapshotter_free(s);
}

/* the store's test hook (lib/store/internal.h) */
void ib_store__set_hook(void (*hook)(const char *point, void *payload), void *payload);

typedef struct {
	ib_snapshotter *snap;
	int layers_at_lease; /* unpacked layers when the commit took its store lease */
	int leases;
} lease_watch;

static void watch_lease(const char *point, void *payload)
{
	lease_watch *w = payload;
	if (strcmp(point, "lease") || w->leases++)
		return;
	int n = 0;
	OK(ib_snapshot_layer_list(w->snap, count_layers, &n));
	w->layers_at_lease = n;
}

/*
 * ib_snapshot_commit_remove alone (no lease of the caller's): the layer is
 * adopted under a store lease, so no GC and no ib_prune runs between the
 * adopt and the record. Before, its first lease was the record's: a prune
 * in between removed the just adopted directory (no blob, no record yet),
 * and the record then stood for a layer that was gone.
 */
static void test_commit_remove_leased(void **state)
{
	(void)state;
	need_privileges();
	ib_snapshotter *s = open_snap("overlay");
	ib_digest base = put_layer(snapshot_test_base_layer());
	ib_buf root = IB_BUF_INIT;
	OK(ib_snapshot_prepare(s, "lease1", &base, 1));
	OK(ib_snapshot_mount(&root, s, "lease1"));
	put_file(root.ptr, "leased-file", "leased\n", 0644);
	OK(ib_snapshot_unmount(s, "lease1"));
	int before = 0;
	OK(ib_snapshot_layer_list(s, count_layers, &before));
	lease_watch w = { s, 0, 0 };
	ib_store__set_hook(watch_lease, &w);
	ib_digest d;
	int rc = ib_snapshot_commit_remove(&d, NULL, s, "lease1", NULL);
	ib_store__set_hook(NULL, NULL);
	OK(rc);
	assert_true(w.leases > 0);
	assert_int_equal(w.layers_at_lease, before); /* not adopted yet when the lease was taken */
	int after = 0;
	OK(ib_snapshot_layer_list(s, count_layers, &after));
	assert_int_equal(after, before + 1);
	assert_int_equal(ib_store_layer_source_has(store, &d), 1);
	ib_buf_dispose(&root);
	ib_snapshotter_free(s);
}

/*
 * A layer built here whose diff_id the store knew only as a remote layer (a
 * registry cache's record): the commit records it as held here (a record of
 * the unpacked layer), as it would any other. It took the remote record for
 * the layer itself and recorded nothing: save needed the registry, and once
 * the remote record went the image lacked the layer (fsck, save, push failed).
 */
static void test_commit_remove_remote_known(void **state)
{
	(void)state;
	need_privileges();
	ib_snapshotter *s = open_snap("overlay");
	ib_digest base = put_layer(snapshot_test_base_layer());
	ib_buf root = IB_BUF_INIT, tar = IB_BUF_INIT;
	OK(ib_snapshot_prepare(s, "remote1", &base, 1));
	OK(ib_snapshot_mount(&root, s, "remote1"));
	put_file(root.ptr, "built-here", "built here, known remote\n", 0644);
	OK(ib_snapshot_unmount(s, "remote1"));
	OK(ib_snapshot_diff(s, "remote1", NULL, buf_write_cb, &tar));
	ib_store_remote_layer r;
	memset(&r, 0, sizeof r);
	OK(ib_digest_of(&r.diff_id, tar.ptr, tar.size));
	r.size = tar.size;
	OK(ib_digest_of(&r.blob, "not fetched", 11));
	r.blob_size = 11;
	strcpy(r.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
	strcpy(r.registry, "registry.invalid");
	strcpy(r.repository, "cache/remote1");
	OK(ib_store_remote_layer_put(store, &r));
	assert_int_equal(ib_store_remote_layer_get(NULL, store, &r.diff_id), 0);
	ib_digest d;
	OK(ib_snapshot_commit_remove(&d, NULL, s, "remote1", NULL));
	assert_true(ib_digest_equal(&d, &r.diff_id));
	assert_int_equal(ib_store_layer_source_has(store, &d), 1);
	assert_int_equal(ib_store_remote_layer_get(NULL, store, &d), IB_ENOTFOUND); /* held here now */
	ib_error_clear();
	/* and it leaves as itself: regenerated from the unpacked files, no fetch */
	int fd = -1;
	OK(ib_store_blob_open(&fd, store, &d));
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, tar.size);
	close(fd);
	ib_buf_dispose(&tar);
	ib_buf_dispose(&root);
	ib_snapshotter_free(s);
}

/*
 * A link to one file of a link group of the layer below. Each backend's
 * layer is what its RUN saw: overlayfs (index=off) copies `g1` up alone, so
 * the new link joins it and `g2` stays apart, and the layer holds g1 + g3
 * (Docker 20.10 on overlay2 gives the same); on a whole tree the three are one
 * group and all go in the layer.
 */
static void link_into_lower_group_on(const char *name, const char *want)
{
	ib_snapshotter *s = open_snap(name);
	tb *t = tb_new();
	TB(t, .path = "g1", .data = "grp");
	TB(t, .path = "g2", .type = 'h', .link = "g1");
	ib_digest base = put_layer(t);
	ib_buf root = IB_BUF_INIT, tar = IB_BUF_INIT, list = IB_BUF_INIT;
	OK(ib_snapshot_prepare(s, "lg", &base, 1));
	OK(ib_snapshot_mount(&root, s, "lg"));
	char *l1 = pjoin(root.ptr, "g1"), *l3 = pjoin(root.ptr, "g3");
	OK(link(l1, l3));
	free(l1);
	free(l3);
	OK(ib_snapshot_diff(s, "lg", NULL, buf_write_cb, &tar));
	tar_listing(&list, tar.ptr, tar.size);
	if (strcmp(list.ptr, want))
		fail_msg("%s: layer entries differ\n--- got:\n%s--- expected:\n%s", name, list.ptr, want);
	OK(ib_snapshot_unmount(s, "lg"));
	OK(ib_snapshot_remove(s, "lg"));
	ib_buf_dispose(&root);
	ib_buf_dispose(&tar);
	ib_buf_dispose(&list);
	ib_snapshotter_free(s);
}

static void test_link_into_lower_group(void **state)
{
	(void)state;
	need_privileges();
	link_into_lower_group_on("overlay", "g1 f 0644 0:0 3 [grp]\ng3 h 0644 0:0 0 -> g1\n");
	link_into_lower_group_on("copy", "g1 f 0644 0:0 3 [grp]\ng2 h 0644 0:0 0 -> g1\ng3 h 0644 0:0 0 -> g1\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backends_agree),
		cmocka_unit_test(test_overlay_whiteout_format),
		cmocka_unit_test(test_deep_chain),
		cmocka_unit_test(test_repeated_layer),
		cmocka_unit_test(test_remove_list_prune),
		cmocka_unit_test(test_crash_mid_unpack),
		cmocka_unit_test(test_dead_owner),
		cmocka_unit_test(test_dead_owner_container),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_commit_remove),
		cmocka_unit_test(test_volatile_mounts),
		cmocka_unit_test(test_commit_remove_leased),
		cmocka_unit_test(test_commit_remove_remote_known),
		cmocka_unit_test(test_prune_half_removed_layer),
		cmocka_unit_test(test_commit_remove_race_other_chain),
		cmocka_unit_test(test_link_into_lower_group),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
