/* Unpacking layers: every kind of entry, compression, whiteouts, hostile layers. */
#include "tests.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include "imagebuild/snapshot.h"
#include "util/buf.h"

static int apply_into(const char *root, int tarfd, ib_whiteout_mode mode)
{
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	int rc = ib_snapshot_apply_tar(dfd, tarfd, mode, "sha256:test");
	close(dfd);
	close(tarfd);
	return rc;
}

static tb *basic_layer(void)
{
	tb *t = tb_new();
	TB(t, .path = "etc", .type = 'd');
	TB(t, .path = "etc/passwd", .data = "root:x:0:0", .mtime = 1234567);
	TB(t, .path = "./bin/su", .data = "su", .mode = 04755);
	TB(t, .path = "tmp/", .type = 'd', .mode = 01777);
	TB(t, .path = "g", .type = 'd', .mode = 02750);
	TB(t, .path = "etc/link", .type = 'l', .link = "passwd");
	TB(t, .path = "etc/hl", .type = 'h', .link = "etc/passwd");
	TB(t, .path = "run/fifo", .type = 'p', .mode = 0600);
	TB(t, .path = "etc/x", .data = "xattr", .xname = "user.test", .xvalue = "hello");
	return t;
}

static void expected_basic(ib_buf *out)
{
	unsigned u = getuid(), g = getgid();
	ib_buf_clear(out);
	ib_buf_printf(out,
		"bin d 0755 %u:%u\n"
		"bin/su f 4755 %u:%u 2 [su] t=1000000\n"
		"etc d 0755 %u:%u\n"
		"etc/hl f 0644 %u:%u 10 [root:x:0:0] t=1234567\n"
		"etc/link l 0777 %u:%u -> passwd t=1000000\n"
		"etc/passwd f 0644 %u:%u 10 [root:x:0:0] =etc/hl t=1234567\n"
		"etc/x f 0644 %u:%u 5 [xattr] x:user.test=hello t=1000000\n"
		"g d 2750 %u:%u\n"
		"run d 0755 %u:%u\n"
		"run/fifo p 0600 %u:%u t=1000000\n"
		"tmp d 1777 %u:%u\n",
		u, g, u, g, u, g, u, g, u, g, u, g, u, g, u, g, u, g, u, g, u, g);
}

static void check_basic(const char *filter)
{
	char *root = ib_test_tmpdir("apply");
	tb *t = basic_layer();
	assert_int_equal(apply_into(root, tb_fd(t, filter), IB_WHITEOUT_DELETE), 0);
	tb_free(t);
	ib_buf got = IB_BUF_INIT, exp = IB_BUF_INIT;
	tree_dump(&got, root, 0);
	expected_basic(&exp);
	assert_string_equal(got.ptr, exp.ptr);
	/* directory times are restored after their children are written */
	struct stat st;
	char *etc = pjoin(root, "etc");
	assert_int_equal(lstat(etc, &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, 1000000);
	free(etc);
	ib_buf_dispose(&got);
	ib_buf_dispose(&exp);
	rm_tree(root);
	free(root);
}

static void test_apply_plain(void **state)
{
	(void)state;
	check_basic(NULL);
}

static void test_apply_gzip(void **state)
{
	(void)state;
	check_basic("gzip");
}

static void test_apply_zstd(void **state)
{
	(void)state;
	check_basic("zstd");
}

static void test_apply_whiteouts_delete(void **state)
{
	(void)state;
	char *root = ib_test_tmpdir("wh");
	tb *t = tb_new();
	TB(t, .path = "a/1", .data = "1");
	TB(t, .path = "a/2", .data = "2");
	TB(t, .path = "b/1", .data = "1");
	TB(t, .path = "c", .data = "c");
	TB(t, .path = "d/deep/x", .data = "x");
	assert_int_equal(apply_into(root, tb_fd(t, NULL), IB_WHITEOUT_DELETE), 0);
	tb_free(t);
	t = tb_new();
	TB(t, .path = "a/3", .data = "3");        /* before the opaque marker: must survive */
	TB(t, .path = "a/.wh..wh..opq");
	TB(t, .path = "b/.wh.1");
	TB(t, .path = ".wh.c");
	TB(t, .path = ".wh.d");
	TB(t, .path = "nothere/.wh.x");           /* nothing to delete, nothing created */
	TB(t, .path = ".wh..wh.plnk");            /* aufs bookkeeping: ignored */
	assert_int_equal(apply_into(root, tb_fd(t, NULL), IB_WHITEOUT_DELETE), 0);
	tb_free(t);
	ib_buf got = IB_BUF_INIT;
	tree_dump(&got, root, 0);
	unsigned u = getuid(), g = getgid();
	char exp[1024];
	snprintf(exp, sizeof exp,
		 "a d 0755 %u:%u\na/3 f 0644 %u:%u 1 [3] t=1000000\nb d 0755 %u:%u\n",
		 u, g, u, g, u, g);
	assert_string_equal(got.ptr, exp);
	ib_buf_dispose(&got);
	rm_tree(root);
	free(root);
}

/*
 * A hardlink to a file of a layer below: refused alike by the whole-tree
 * apply (the copy backend) and the one-layer apply (the overlay backend),
 * with the same reason; a link to a file of the same layer is fine.
 */
static void test_hardlink_to_lower_layer(void **state)
{
	(void)state;
	for (int mode = IB_WHITEOUT_DELETE; mode <= IB_WHITEOUT_OVERLAY; mode++) {
		if (mode == IB_WHITEOUT_OVERLAY && geteuid() != 0)
			continue; /* overlay whiteouts are char devices */
		char *root = ib_test_tmpdir("hl");
		tb *t = tb_new();
		TB(t, .path = "f", .data = "below");
		assert_int_equal(apply_into(root, tb_fd(t, NULL), IB_WHITEOUT_DELETE), 0);
		tb_free(t);
		ib_buf before = IB_BUF_INIT, after = IB_BUF_INIT;
		tree_dump(&before, root, 0);
		t = tb_new();
		TB(t, .path = "h", .type = 'h', .link = "f");
		int rc = apply_into(root, tb_fd(t, NULL), (ib_whiteout_mode)mode);
		tb_free(t);
		if (rc >= 0)
			fail_msg("mode %d: a link to a lower layer's file was accepted", mode);
		const char *m = ib_error_last()->message;
		if (!strstr(m, "hardlink target `f` is not a file of this layer"))
			fail_msg("mode %d: error `%s`", mode, m);
		tree_dump(&after, root, 0);
		assert_string_equal(after.ptr, before.ptr);
		/* the same link to a file of its own layer */
		t = tb_new();
		TB(t, .path = "g", .data = "mine");
		TB(t, .path = "h", .type = 'h', .link = "g");
		assert_int_equal(apply_into(root, tb_fd(t, NULL), (ib_whiteout_mode)mode), 0);
		tb_free(t);
		ib_buf_dispose(&before);
		ib_buf_dispose(&after);
		rm_tree(root);
		free(root);
	}
}

static void test_apply_replaces(void **state)
{
	(void)state;
	char *root = ib_test_tmpdir("repl");
	tb *t = tb_new();
	TB(t, .path = "d/x", .data = "x");
	TB(t, .path = "f", .data = "f");
	TB(t, .path = "d", .data = "now a file");  /* a file replaces a directory */
	TB(t, .path = "f/y", .data = "y");         /* ... and the other way round via a parent */
	int rc = apply_into(root, tb_fd(t, NULL), IB_WHITEOUT_DELETE);
	tb_free(t);
	/* f is a file: f/y cannot be created below it */
	assert_true(rc < 0);
	assert_non_null(strstr(ib_error_last()->message, "entry `f/y`"));
	ib_buf got = IB_BUF_INIT;
	tree_dump(&got, root, 0);
	assert_non_null(strstr(got.ptr, "d f 0644"));
	ib_buf_dispose(&got);
	rm_tree(root);
	free(root);
}

/* ---- hostile layers ---- */

typedef struct {
	char *sandbox, *root, *outside;
} box;

static void box_new(box *b)
{
	b->sandbox = ib_test_tmpdir("hostile");
	b->root = pjoin(b->sandbox, "root");
	b->outside = pjoin(b->sandbox, "outside");
	assert_int_equal(mkdir(b->root, 0755), 0);
	assert_int_equal(mkdir(b->outside, 0755), 0);
	put_file(b->outside, "secret", "s3cret", 0600);
}

/* Outside holds exactly its secret, unchanged and not linked from anywhere. */
static void box_check(box *b)
{
	ib_buf got = IB_BUF_INIT;
	tree_dump(&got, b->outside, 0);
	char *secret = pjoin(b->outside, "secret");
	struct stat st;
	assert_int_equal(lstat(secret, &st), 0);
	assert_int_equal(st.st_nlink, 1);
	char exp[256];
	snprintf(exp, sizeof exp, "secret f 0600 %u:%u 6 [s3cret] t=%lld\n", st.st_uid, st.st_gid,
		 (long long)st.st_mtim.tv_sec);
	assert_string_equal(got.ptr, exp);
	free(secret);
	ib_buf_dispose(&got);
}

static void box_free(box *b)
{
	rm_tree(b->sandbox);
	free(b->sandbox);
	free(b->root);
	free(b->outside);
}

/* Apply a layer; when `reason` is not NULL it must fail with it. */
static void hostile(box *b, tb *t, const char *reason)
{
	int rc = apply_into(b->root, tb_fd(t, NULL), IB_WHITEOUT_DELETE);
	tb_free(t);
	if (reason) {
		if (rc >= 0)
			fail_msg("hostile layer accepted; expected `%s`", reason);
		const char *m = ib_error_last()->message;
		if (!strstr(m, reason))
			fail_msg("error `%s` lacks `%s`", m, reason);
		assert_non_null(strstr(m, "layer sha256:test: entry `"));
	}
	box_check(b);
}

static void test_hostile_paths(void **state)
{
	(void)state;
	box b;
	box_new(&b);
	tb *t = tb_new();
	TB(t, .path = "../outside/x", .data = "pwned");
	hostile(&b, t, "climbs out with `..`");
	t = tb_new();
	TB(t, .path = "a/../../outside/x", .data = "pwned");
	hostile(&b, t, "climbs out with `..`");
	t = tb_new();
	char abs[4200];
	snprintf(abs, sizeof abs, "%s/x", b.outside);
	TB(t, .path = abs, .data = "pwned");
	hostile(&b, t, "absolute path");
	t = tb_new();
	TB(t, .path = "../.wh.secret");
	hostile(&b, t, "climbs out");
	t = tb_new();
	TB(t, .path = ".wh..");
	hostile(&b, t, "whiteout names no file");
	box_free(&b);
}

static void test_hostile_symlinks(void **state)
{
	(void)state;
	box b;
	box_new(&b);
	/* a symlinked parent, relative and absolute */
	tb *t = tb_new();
	TB(t, .path = "esc", .type = 'l', .link = "../outside");
	TB(t, .path = "esc/x", .data = "pwned");
	hostile(&b, t, NULL);
	t = tb_new();
	TB(t, .path = "abs", .type = 'l', .link = b.outside);
	TB(t, .path = "abs/x", .data = "pwned");
	hostile(&b, t, NULL);
	/* a chain of symlinks */
	t = tb_new();
	TB(t, .path = "l1", .type = 'l', .link = "l2");
	TB(t, .path = "l2", .type = 'l', .link = "../../../../outside");
	TB(t, .path = "l1/x", .data = "pwned");
	hostile(&b, t, NULL);
	/* a directory replaced by a symlink, then written through */
	t = tb_new();
	TB(t, .path = "d", .type = 'd');
	TB(t, .path = "d/ok", .data = "ok");
	TB(t, .path = "d", .type = 'l', .link = "../outside");
	TB(t, .path = "d/x", .data = "pwned");
	TB(t, .path = "d/secret", .data = "pwned");
	hostile(&b, t, NULL);
	/* a symlink from a lower layer, used by the next one */
	t = tb_new();
	TB(t, .path = "low", .type = 'l', .link = "/../outside");
	hostile(&b, t, NULL);
	t = tb_new();
	TB(t, .path = "low/x", .data = "pwned");
	TB(t, .path = "low/.wh.secret");
	hostile(&b, t, NULL);
	/* the final component is never followed: a file entry replaces the symlink */
	t = tb_new();
	TB(t, .path = "fin", .type = 'l', .link = "../outside/secret");
	TB(t, .path = "fin", .data = "replaced");
	hostile(&b, t, NULL);
	ib_buf got = IB_BUF_INIT;
	tree_dump(&got, b.root, 0);
	assert_non_null(strstr(got.ptr, "fin f 0644"));
	ib_buf_dispose(&got);
	box_free(&b);
}

static void test_hostile_hardlinks(void **state)
{
	(void)state;
	box b;
	box_new(&b);
	tb *t = tb_new();
	TB(t, .path = "h", .type = 'h', .link = "../outside/secret");
	hostile(&b, t, "climbs out");
	t = tb_new();
	char abs[4200];
	snprintf(abs, sizeof abs, "%s/secret", b.outside);
	TB(t, .path = "h", .type = 'h', .link = abs);
	hostile(&b, t, "absolute path");
	t = tb_new();
	TB(t, .path = "esc", .type = 'l', .link = "../outside");
	TB(t, .path = "h", .type = 'h', .link = "esc/secret");
	hostile(&b, t, "hardlink target");
	t = tb_new();
	TB(t, .path = "self", .type = 'h', .link = "self");
	hostile(&b, t, "hardlink to `itself`");
	box_free(&b);
}

static void test_hostile_headers(void **state)
{
	(void)state;
	box b;
	box_new(&b);
	char *longname = malloc(5000);
	memset(longname, 'a', 4999);
	for (int i = 200; i < 4999; i += 200)
		longname[i] = '/';
	longname[4999] = '\0';
	tb *t = tb_new();
	TB(t, .path = longname, .data = "x");
	hostile(&b, t, NULL); /* longer than PATH_MAX is fine (tests/snapshot/deep.c has the limits) */
	memset(longname, 'b', 300);
	longname[300] = '\0';
	t = tb_new();
	TB(t, .path = longname, .data = "x");
	hostile(&b, t, "component longer than 255");
	free(longname);
	t = tb_new();
	TB(t, .path = "huge", .size = (int64_t)1 << 50);
	hostile(&b, t, "absurd size");
	t = tb_new();
	TB(t, .path = "owner", .data = "x", .own = 1, .uid = 0x7fffffff, .gid = 0);
	/* 0x7fffffff is fine; 2^32-1 (the "no owner" id) is refused */
	int rc = apply_into(b.root, tb_fd(t, NULL), IB_WHITEOUT_DELETE);
	tb_free(t);
	if (getuid() == 0)
		assert_int_equal(rc, 0);
	t = tb_new();
	TB(t, .path = "noowner", .data = "x", .own = 1, .uid = 0xffffffffLL, .gid = 0);
	hostile(&b, t, "absurd owner");
	/* garbage */
	char junk[4096];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 7 + 3);
	int dfd = open(b.root, O_RDONLY | O_DIRECTORY);
	int fd = mem_fd(junk, sizeof junk);
	ib_assert_error_contains(ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_DELETE, "sha256:junk"),
				 "layer sha256:junk");
	close(fd);
	/* a truncated stream */
	t = tb_new();
	TB(t, .path = "big", .data = "0123456789012345678901234567890123456789");
	ib_buf bytes = IB_BUF_INIT;
	tb_bytes(t, &bytes);
	tb_free(t);
	fd = mem_fd(bytes.ptr, 600);
	ib_assert_error_contains(ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_DELETE, "sha256:cut"),
				 "layer sha256:cut");
	close(fd);
	close(dfd);
	ib_buf_dispose(&bytes);
	box_check(&b);
	box_free(&b);
}

DEFINE_GROUP(apply_tests,
	cmocka_unit_test(test_apply_plain),
	cmocka_unit_test(test_apply_gzip),
	cmocka_unit_test(test_apply_zstd),
	cmocka_unit_test(test_apply_whiteouts_delete),
	cmocka_unit_test(test_apply_replaces),
	cmocka_unit_test(test_hardlink_to_lower_layer),
	cmocka_unit_test(test_hostile_paths),
	cmocka_unit_test(test_hostile_symlinks),
	cmocka_unit_test(test_hostile_hardlinks),
	cmocka_unit_test(test_hostile_headers),
)
