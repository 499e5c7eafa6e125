/*
 * Trees far deeper than PATH_MAX: diff, apply and removal walk them
 * iteratively with few open fds (the test lowers RLIMIT_NOFILE to 64) and
 * share one limit, so every layer the diff writes is one apply reads.
 */
#include "tests.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#include "imagebuild/snapshot.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/walk.h"

#define DEPTH 5000 /* 10,000 bytes of path: beyond PATH_MAX, and 5,000 levels of recursion before */

/* `levels` directories "d" below `root`, and a file "f" with `content` at the bottom. */
static void make_chain(const char *root, int levels, const char *content)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	for (int i = 0; i < levels; i++) {
		assert_int_equal(mkdirat(fd, "d", 0755), 0);
		int sub = openat(fd, "d", O_RDONLY | O_DIRECTORY);
		assert_true(sub >= 0);
		close(fd);
		fd = sub;
	}
	int f = openat(fd, "f", O_WRONLY | O_CREAT, 0644);
	assert_true(f >= 0);
	assert_int_equal(write(f, content, strlen(content)), (ssize_t)strlen(content));
	close(f);
	close(fd);
}

/* How deep the chain of "d" below `root` goes; the bottom file's content into `out`. */
static int chain_depth(const char *root, char *out, size_t size)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY), n = 0;
	assert_true(fd >= 0);
	for (;;) {
		int sub = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		if (sub < 0)
			break;
		close(fd);
		fd = sub;
		n++;
	}
	int f = openat(fd, "f", O_RDONLY);
	ssize_t got = f >= 0 ? read(f, out, size - 1) : -1;
	out[got > 0 ? got : 0] = '\0';
	if (f >= 0)
		close(f);
	close(fd);
	return n;
}

static int discard(const void *data, size_t len, void *payload)
{
	(void)data, (void)len, (void)payload;
	return 0;
}

static int to_fd(const void *data, size_t len, void *payload)
{
	return ib_write_all(*(int *)payload, data, len) < 0 ? -1 : 0;
}

/* diff `changed` against `parent` into the file `tar`. */
static int diff_to(const char *changed, const char *parent, const char *tar)
{
	int out = tar ? open(tar, O_RDWR | O_CREAT | O_TRUNC, 0600) : 0;
	int cfd = open(changed, O_RDONLY | O_DIRECTORY), pfd = open(parent, O_RDONLY | O_DIRECTORY);
	assert_true(out >= 0 && cfd >= 0 && pfd >= 0);
	int rc = ib_snapshot_diff_trees(cfd, pfd, IB_DIFF_TREE, NULL, tar ? to_fd : discard, &out);
	if (tar)
		close(out);
	close(cfd);
	close(pfd);
	return rc;
}

static int apply_from(const char *root, const char *tar)
{
	int dfd = open(root, O_RDONLY | O_DIRECTORY), fd = open(tar, O_RDONLY);
	assert_true(dfd >= 0 && fd >= 0);
	int rc = ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_DELETE, "deep");
	close(dfd);
	close(fd);
	return rc;
}

static void same_file(const char *a, const char *b)
{
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
	assert_true(fa >= 0 && fb >= 0);
	static char ba[65536], bb[65536];
	for (;;) {
		ssize_t na = read(fa, ba, sizeof ba), nb = read(fb, bb, sizeof bb);
		assert_int_equal(na, nb);
		if (na <= 0)
			break;
		assert_memory_equal(ba, bb, (size_t)na);
	}
	close(fa);
	close(fb);
}

static struct rlimit saved;
static void few_fds(void)
{
	getrlimit(RLIMIT_NOFILE, &saved);
	struct rlimit low = { 64, saved.rlim_max };
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
}
static void all_fds(void)
{
	setrlimit(RLIMIT_NOFILE, &saved);
}

static void test_deep_round_trip(void **state)
{
	(void)state;
	char *sb = ib_test_tmpdir("deep");
	char *chg = pjoin(sb, "changed"), *par = pjoin(sb, "parent"), *again = pjoin(sb, "again");
	char *tar = pjoin(sb, "layer.tar"), *tar2 = pjoin(sb, "again.tar");
	mkdir(chg, 0755);
	mkdir(par, 0755);
	mkdir(again, 0755);
	make_chain(chg, DEPTH, "bottom");
	few_fds();
	if (diff_to(chg, par, tar) < 0)
		fail_msg("diff: %s", ib_error_last()->message);
	if (apply_from(again, tar) < 0)
		fail_msg("apply: %s", ib_error_last()->message);
	char got[64];
	assert_int_equal(chain_depth(again, got, sizeof got), DEPTH);
	assert_string_equal(got, "bottom");
	/* the unpacked tree gives the very same layer */
	assert_int_equal(diff_to(again, par, tar2), 0);
	same_file(tar, tar2);
	assert_int_equal(ib_rm_rf(sb), 0);
	all_fds();
	assert_false(ib_path_exists(sb));
	free(chg); free(par); free(again); free(tar); free(tar2); free(sb);
}

/*
 * One limit on both sides: deeper than IB_TREE_MAX_DEPTH, or a path longer
 * than IB_TREE_MAX_PATH, is refused by the diff and by apply, naming the path.
 */
static void test_deep_limit(void **state)
{
	(void)state;
	char *sb = ib_test_tmpdir("deeplimit");
	char *chg = pjoin(sb, "changed"), *par = pjoin(sb, "parent"), *tar = pjoin(sb, "layer.tar");
	mkdir(chg, 0755);
	mkdir(par, 0755);
	make_chain(chg, IB_TREE_MAX_DEPTH, "too deep");
	few_fds();
	ib_assert_error_contains(diff_to(chg, par, NULL), "more than 16384 levels deep");
	ib_assert_error_contains(diff_to(chg, par, NULL), "`d/d/d/d/");
	/* a tar entry as deep, and one with a too long path */
	size_t n = (size_t)(IB_TREE_MAX_DEPTH + 1) * 2;
	char *deep = malloc(n + 1);
	for (size_t i = 0; i < n; i += 2)
		deep[i] = 'd', deep[i + 1] = '/';
	deep[n - 1] = '\0';
	tb *t = tb_new();
	TB(t, .path = deep, .data = "x");
	int fd = tb_fd(t, NULL);
	tb_free(t);
	int dfd = open(par, O_RDONLY | O_DIRECTORY);
	ib_assert_error_contains(ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_DELETE, "deep"),
				 "more than 16384 levels deep");
	close(fd);
	n = IB_TREE_MAX_PATH + 256;
	char *longp = malloc(n + 1);
	memset(longp, 'a', n);
	for (size_t i = 200; i < n; i += 200)
		longp[i] = '/';
	longp[n] = '\0';
	t = tb_new();
	TB(t, .path = longp, .data = "x");
	fd = tb_fd(t, NULL);
	tb_free(t);
	ib_assert_error_contains(ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_DELETE, "deep"), "longer than 262144 bytes");
	close(fd);
	close(dfd);
	/* the same path length limit on the diff side: 1,100 levels of 250-byte names (275,000 bytes) */
	char *wide = pjoin(sb, "wide");
	mkdir(wide, 0755);
	char name[251];
	memset(name, 'n', 250);
	name[250] = '\0';
	int wfd = open(wide, O_RDONLY | O_DIRECTORY);
	assert_true(wfd >= 0);
	for (int i = 0; i < 1100; i++) {
		assert_int_equal(mkdirat(wfd, name, 0755), 0);
		int sub = openat(wfd, name, O_RDONLY | O_DIRECTORY);
		assert_true(sub >= 0);
		close(wfd);
		wfd = sub;
	}
	close(wfd);
	ib_assert_error_contains(diff_to(wide, par, NULL), "longer than 262144 bytes");
	free(wide);
	assert_int_equal(ib_rm_rf(sb), 0);
	all_fds();
	assert_false(ib_path_exists(sb));
	free(deep); free(longp); free(chg); free(par); free(tar); free(sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deep_round_trip),
		cmocka_unit_test(test_deep_limit),
	};
	return cmocka_run_group_tests_name("deep", tests, NULL, NULL);
}
