/* Diffs of whole trees (the copy backend's way): every kind of change, entry by entry. */
#include "tests.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "imagebuild/snapshot.h"
#include "util/buf.h"

static void unpack(const char *root, tb *t)
{
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	int fd = tb_fd(t, NULL);
	assert_int_equal(ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_DELETE, "base"), 0);
	close(fd);
	close(dfd);
}

static void make_tree(const char *root)
{
	tb *t = snapshot_test_base_layer();
	unpack(root, t);
	tb_free(t);
}

static void test_diff_kinds(void **state)
{
	(void)state;
	char *sb = ib_test_tmpdir("diff");
	char *par = pjoin(sb, "parent"), *chg = pjoin(sb, "changed"), *again = pjoin(sb, "again");
	mkdir(par, 0755);
	mkdir(chg, 0755);
	mkdir(again, 0755);
	make_tree(par);
	make_tree(chg);
	make_tree(again);
	sleep(0); /* mtimes of the changes are "now", later than the layer's */
	snapshot_test_changes(chg);
	const ib_diff_options sde = SDE_OPTS(2000000);
	ib_buf tar = IB_BUF_INIT, tar2 = IB_BUF_INIT, list = IB_BUF_INIT, exp = IB_BUF_INIT;
	assert_int_equal(diff_paths_opts(&tar, chg, par, 0, &sde), 0);
	tar_listing(&list, tar.ptr, tar.size);
	snapshot_test_expected(&exp, getuid(), getgid());
	assert_string_equal(list.ptr, exp.ptr);
	/* deterministic */
	assert_int_equal(diff_paths_opts(&tar2, chg, par, 0, &sde), 0);
	assert_int_equal(tar.size, tar2.size);
	assert_memory_equal(tar.ptr, tar2.ptr, tar.size);
	/* applying the diff to the parent gives the changed tree (without the clamp) */
	assert_int_equal(diff_paths(&tar, chg, par, 0), 0);
	int dfd = open(again, O_RDONLY | O_DIRECTORY);
	int fd = mem_fd(tar.ptr, tar.size);
	assert_int_equal(ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_DELETE, "diff"), 0);
	close(fd);
	close(dfd);
	/* a/same was rewritten with the same bytes: no change, so it keeps its old time */
	char *same = pjoin(chg, "a/same");
	struct timespec ts[2] = { { 1000000, 0 }, { 1000000, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, same, ts, 0), 0);
	free(same);
	ib_buf d1 = IB_BUF_INIT, d2 = IB_BUF_INIT;
	tree_dump(&d1, chg, 0);
	tree_dump(&d2, again, 0);
	assert_string_equal(d2.ptr, d1.ptr);
	ib_buf_dispose(&d1);
	ib_buf_dispose(&d2);
	ib_buf_dispose(&tar);
	ib_buf_dispose(&tar2);
	ib_buf_dispose(&list);
	ib_buf_dispose(&exp);
	rm_tree(sb);
	free(sb);
	free(par);
	free(chg);
	free(again);
}

static void test_diff_clamp(void **state)
{
	(void)state;
	char *sb = ib_test_tmpdir("clamp");
	put_file(sb, "new", "n", 0644);
	put_file(sb, "old", "o", 0644);
	char *old = pjoin(sb, "old");
	struct timespec ts[2] = { { 5, 0 }, { 5, 123 } };
	assert_int_equal(utimensat(AT_FDCWD, old, ts, 0), 0);
	/* the environment is not read: only the options clamp */
	setenv("SOURCE_DATE_EPOCH", "100", 1);
	ib_buf tar = IB_BUF_INIT;
	assert_int_equal(diff_paths(&tar, sb, NULL, 0), 0);
	unsetenv("SOURCE_DATE_EPOCH");
	int efd = mem_fd(tar.ptr, tar.size);
	char *eout = ib_test_tmpdir("clamp-env");
	int edfd = open(eout, O_RDONLY | O_DIRECTORY);
	assert_int_equal(ib_snapshot_apply_tar(edfd, efd, IB_WHITEOUT_DELETE, "e"), 0);
	close(efd);
	struct stat est;
	assert_int_equal(fstatat(edfd, "new", &est, 0), 0);
	assert_true(est.st_mtim.tv_sec > 100);
	close(edfd);
	rm_tree(eout);
	free(eout);
	const ib_diff_options sde = SDE_OPTS(100);
	assert_int_equal(diff_paths_opts(&tar, sb, NULL, 0, &sde), 0);
	/* read the times back */
	char *p = pjoin(sb, "x");
	free(p);
	int fd = mem_fd(tar.ptr, tar.size);
	char *out = ib_test_tmpdir("clamp-out");
	int dfd = open(out, O_RDONLY | O_DIRECTORY);
	assert_int_equal(ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_DELETE, "c"), 0);
	close(fd);
	struct stat st;
	assert_int_equal(fstatat(dfd, "new", &st, 0), 0);
	assert_int_equal(st.st_mtim.tv_sec, 100);
	assert_int_equal(st.st_mtim.tv_nsec, 0);
	assert_int_equal(fstatat(dfd, "old", &st, 0), 0);
	assert_int_equal(st.st_mtim.tv_sec, 5);
	assert_int_equal(st.st_mtim.tv_nsec, 0); /* layers keep whole seconds */
	close(dfd);
	const ib_diff_options neg = SDE_OPTS(-1);
	ib_assert_error_contains(diff_paths_opts(&tar, sb, NULL, 0, &neg), "SOURCE_DATE_EPOCH -1 is negative");
	ib_diff_options bad = SDE_OPTS(1);
	bad.version = 99;
	ib_assert_error_contains(diff_paths_opts(&tar, sb, NULL, 0, &bad), "version 99");
	ib_buf_dispose(&tar);
	rm_tree(sb);
	rm_tree(out);
	free(sb);
	free(out);
	free(old);
}

static void test_diff_nothing(void **state)
{
	(void)state;
	char *sb = ib_test_tmpdir("same");
	char *a = pjoin(sb, "a"), *b = pjoin(sb, "b");
	mkdir(a, 0755);
	mkdir(b, 0755);
	make_tree(a);
	make_tree(b);
	ib_buf tar = IB_BUF_INIT, list = IB_BUF_INIT;
	assert_int_equal(diff_paths(&tar, a, b, 0), 0);
	tar_listing(&list, tar.ptr, tar.size);
	assert_string_equal(ib_buf_cstr(&list), "");
	assert_true(tar.size > 0 && tar.size <= 10240);
	ib_buf_dispose(&tar);
	ib_buf_dispose(&list);
	rm_tree(sb);
	free(sb);
	free(a);
	free(b);
}

static int cancel_cb(const void *data, size_t len, void *payload)
{
	(void)data;
	(void)len;
	(void)payload;
	return IB_EUSER;
}

static void test_diff_cancel(void **state)
{
	(void)state;
	char *sb = ib_test_tmpdir("cancel");
	make_tree(sb);
	int fd = open(sb, O_RDONLY | O_DIRECTORY);
	assert_int_equal(ib_snapshot_diff_trees(fd, -1, IB_DIFF_TREE, NULL, cancel_cb, NULL), IB_EUSER);
	close(fd);
	rm_tree(sb);
	free(sb);
}

DEFINE_GROUP(diff_tests,
	cmocka_unit_test(test_diff_kinds),
	cmocka_unit_test(test_diff_clamp),
	cmocka_unit_test(test_diff_nothing),
	cmocka_unit_test(test_diff_cancel),
)
