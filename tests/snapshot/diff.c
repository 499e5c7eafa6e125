/* Diffs of whole trees (the copy backend's way): every kind of change, entry by entry. */
#include "tests.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <string.h>
#include <sys/stat.h>
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

/* A file of `len` bytes of `fill` (9 MiB: a big file for the diff), made at `path`. */
static void big_file(const char *path, size_t len, int fill)
{
	char *b = malloc(len);
	assert_non_null(b);
	memset(b, fill, len);
	b[len / 2] = 'x';
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, len), (ssize_t)len);
	close(fd);
	free(b);
}

typedef struct {
	const char *give; /* the file whose fd content_source returns, or NULL */
	int asked;
	ib_diff_file seen;
	char path[256];
} source_ask;

static int give_source(const ib_diff_file *file, void *payload)
{
	source_ask *a = payload;
	a->asked++;
	a->seen = *file;
	snprintf(a->path, sizeof a->path, "%s", file->path);
	return a->give ? open(a->give, O_RDONLY | O_CLOEXEC) : -1;
}

/*
 * ib_diff_options.content_source: asked about big regular files only, with
 * the file's path, inode, size and mtime; the bytes of what it gives make
 * the layer (the same bytes: the same layer), one of another size is not
 * used, and -1 leaves the file's own. A version 1 options struct is still
 * served.
 */
static void test_diff_content_source(void **state)
{
	(void)state;
	char *sb = ib_test_tmpdir("diff-source");
	char *chg = pjoin(sb, "changed"), *big = pjoin(chg, "big.bin"), *twin = pjoin(sb, "twin.bin");
	char *other = pjoin(sb, "other.bin"), *shorter = pjoin(sb, "short.bin"), *small = pjoin(chg, "small");
	size_t len = 9u << 20;
	mkdir(chg, 0755);
	big_file(big, len, 'a');
	big_file(twin, len, 'a');
	big_file(other, len, 'b');
	big_file(shorter, len - 1, 'a');
	big_file(small, 100, 'c');
	struct stat st;
	assert_int_equal(lstat(big, &st), 0);
	ib_buf plain = IB_BUF_INIT, got = IB_BUF_INIT;
	assert_int_equal(diff_paths(&plain, chg, NULL, 0), 0);
	ib_diff_options o = IB_DIFF_OPTIONS_INIT;
	source_ask a = { twin, 0, { 0 }, "" };
	o.content_source = give_source;
	o.content_payload = &a;
	assert_int_equal(diff_paths_opts(&got, chg, NULL, 0, &o), 0);
	assert_int_equal(a.asked, 1); /* big.bin, not small */
	assert_string_equal(a.path, "big.bin");
	assert_int_equal(a.seen.ino, (uint64_t)st.st_ino);
	assert_int_equal(a.seen.size, (uint64_t)len);
	assert_int_equal(a.seen.mtime_sec, (int64_t)st.st_mtim.tv_sec);
	assert_int_equal(a.seen.mtime_nsec, st.st_mtim.tv_nsec);
	assert_int_equal(got.size, plain.size);
	assert_memory_equal(got.ptr, plain.ptr, plain.size);
	/* another size: not used */
	a.give = shorter;
	assert_int_equal(diff_paths_opts(&got, chg, NULL, 0, &o), 0);
	assert_memory_equal(got.ptr, plain.ptr, plain.size);
	/* none */
	a.give = NULL;
	assert_int_equal(diff_paths_opts(&got, chg, NULL, 0, &o), 0);
	assert_memory_equal(got.ptr, plain.ptr, plain.size);
	/* its bytes are what the layer holds: the caller vouches for them */
	a.give = other;
	assert_int_equal(diff_paths_opts(&got, chg, NULL, 0, &o), 0);
	assert_int_equal(got.size, plain.size);
	assert_true(memcmp(got.ptr, plain.ptr, plain.size) != 0);
	/* version 1: the first three members, nothing asked */
	struct { unsigned int version; int use; int64_t epoch; } v1 = { 1, 0, 0 };
	a.asked = 0;
	assert_int_equal(diff_paths_opts(&got, chg, NULL, 0, (const ib_diff_options *)&v1), 0);
	assert_memory_equal(got.ptr, plain.ptr, plain.size);
	assert_int_equal(a.asked, 0);
	ib_buf_dispose(&plain);
	ib_buf_dispose(&got);
	rm_tree(sb);
	free(sb);
	free(chg);
	free(big);
	free(twin);
	free(other);
	free(shorter);
	free(small);
}

DEFINE_GROUP(diff_tests,
	cmocka_unit_test(test_diff_kinds),
	cmocka_unit_test(test_diff_clamp),
	cmocka_unit_test(test_diff_nothing),
	cmocka_unit_test(test_diff_cancel),
	cmocka_unit_test(test_diff_content_source),
)
