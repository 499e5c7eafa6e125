#include "tests.h"
#include "util/path.h"
#include "util/buf.h"

static void clean_like_go(void **state)
{
	(void)state;
	static const char *cases[][2] = {
		{"", "."}, {".", "."}, {"/", "/"}, {"//", "/"}, {"a/b/", "a/b"},
		{"a//b", "a/b"}, {"./a/./b", "a/b"}, {"a/../b", "b"}, {"a/..", "."},
		{"..", ".."}, {"../..", "../.."}, {"../a/../..", "../.."}, {"/..", "/"},
		{"/../a", "/a"}, {"/a/b/../../..", "/"}, {"abc/def/../ghi", "abc/ghi"},
		{"**/", "**"}, {"a/b/c/../../d", "a/d"}, {"./", "."}, {"a/./..", "."},
	};
	ib_buf b = IB_BUF_INIT;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(ib_path_clean(&b, cases[i][0]), 0);
		if (strcmp(b.ptr, cases[i][1]) != 0)
			fail_msg("clean(`%s`) = `%s`, want `%s`", cases[i][0], b.ptr, cases[i][1]);
	}
	ib_buf_dispose(&b);
}

static void join_in_root_accepts_inside(void **state)
{
	(void)state;
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_path_join_in_root(&b, "/root", "a/b"), 0);
	assert_string_equal(b.ptr, "/root/a/b");
	assert_int_equal(ib_path_join_in_root(&b, "/root/", "a/../c/./d/"), 0);
	assert_string_equal(b.ptr, "/root/c/d");
	assert_int_equal(ib_path_join_in_root(&b, "/root", "."), 0);
	assert_string_equal(b.ptr, "/root");
	assert_int_equal(ib_path_join_in_root(&b, "/root", "a/.."), 0);
	assert_string_equal(b.ptr, "/root");
	ib_buf_dispose(&b);
}

static void join_in_root_refuses_escapes(void **state)
{
	(void)state;
	ib_buf b = IB_BUF_INIT;
	ib_assert_error_contains(ib_path_join_in_root(&b, "/root", ".."), "leaves `/root`");
	assert_int_equal(ib_error_last()->code, IB_EINVALID);
	ib_assert_error_contains(ib_path_join_in_root(&b, "/root", "../etc/passwd"), "`../etc/passwd`");
	ib_assert_error_contains(ib_path_join_in_root(&b, "/root", "a/../../x"), "..");
	ib_assert_error_contains(ib_path_join_in_root(&b, "/root", "/etc/passwd"), "absolute");
	assert_null(b.ptr); /* nothing written on refusal */
	ib_buf_dispose(&b);
}

static void scope_clamps(void **state)
{
	(void)state;
	static const char *cases[][2] = {
		{"/../etc", "etc"}, {"../../x/y", "x/y"}, {"/", "."}, {"", "."},
		{"a/b/../c", "a/c"}, {"/a/./b/", "a/b"}, {"..", "."},
	};
	ib_buf b = IB_BUF_INIT;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(ib_path_scope(&b, cases[i][0]), 0);
		if (strcmp(b.ptr, cases[i][1]) != 0)
			fail_msg("scope(`%s`) = `%s`, want `%s`", cases[i][0], b.ptr, cases[i][1]);
	}
	ib_buf_dispose(&b);
}

static void join_plain(void **state)
{
	(void)state;
	ib_buf b = IB_BUF_INIT;
	ib_path_join(&b, "/a/", "/b");
	assert_string_equal(b.ptr, "/a/b");
	ib_path_join(&b, "/", "b");
	assert_string_equal(b.ptr, "/b");
	ib_path_join(&b, "a", "");
	assert_string_equal(b.ptr, "a");
	ib_buf_dispose(&b);
}

DEFINE_GROUP(path_tests,
	cmocka_unit_test(clean_like_go),
	cmocka_unit_test(join_in_root_accepts_inside),
	cmocka_unit_test(join_in_root_refuses_escapes),
	cmocka_unit_test(scope_clamps),
	cmocka_unit_test(join_plain))
