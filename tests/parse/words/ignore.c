/* .dockerignore: ib_ignore_read/new/parse/matches/descend/candidates. */
#include "tests.h"

static ib_ignore *compile(const char *const *pats, size_t n)
{
	ib_ignore *ig = NULL;
	if (ib_ignore_new(&ig, pats, n) < 0)
		fail_msg("ib_ignore_new: %s", ib_error_last()->message);
	return ig;
}

static void test_read(void **state)
{
	static const char file[] = "\xEF\xBB\xBF# comment\r\n"
				   "  /abs//dir/  \r\n"
				   "\n"
				   "  #not a comment\n"
				   "! ./keep/../kept\n"
				   "!\n"
				   "/\n"
				   "last";
	static const char *want[] = { "abs/dir", "#not a comment", "!kept", "!", "/", "last" };
	ib_strarray pats = IB_STRARRAY_INIT;
	(void)state;

	assert_int_equal(ib_ignore_read(&pats, file, sizeof(file) - 1), 0);
	assert_int_equal(pats.count, 6);
	for (size_t i = 0; i < pats.count; i++)
		assert_string_equal(pats.strings[i], want[i]);
	/* an empty file has no patterns */
	assert_int_equal(ib_ignore_read(&pats, "", 0), 0);
	assert_int_equal(pats.count, 0);
	ib_strarray_dispose(&pats);
}

static void test_matching(void **state)
{
	static const char *pats[] = { "*.md", "docs", "!docs/keep.md", "**/*.o", "build/**", "a?c" };
	ib_ignore *ig;
	(void)state;

	ig = compile(pats, 6);
	assert_int_equal(ib_ignore_matches(ig, "README.md"), 1);
	assert_int_equal(ib_ignore_matches(ig, "sub/README.md"), 0);   /* `*` stops at `/` */
	assert_int_equal(ib_ignore_matches(ig, "docs"), 1);
	assert_int_equal(ib_ignore_matches(ig, "docs/a.txt"), 1);      /* a parent matches */
	assert_int_equal(ib_ignore_matches(ig, "docs/keep.md"), 0);    /* the exception */
	assert_int_equal(ib_ignore_matches(ig, "x/y/z.o"), 1);
	assert_int_equal(ib_ignore_matches(ig, "z.o"), 1);
	assert_int_equal(ib_ignore_matches(ig, "build"), 0);           /* the pattern is for what is below it */
	assert_int_equal(ib_ignore_matches(ig, "build/out"), 1);
	assert_int_equal(ib_ignore_matches(ig, "abc"), 1);
	assert_int_equal(ib_ignore_matches(ig, "a/c"), 0);
	assert_int_equal(ib_ignore_matches(ig, "src/main.c"), 0);
	ib_ignore_free(ig);
}

static void test_classes_and_escapes(void **state)
{
	static const char *pats[] = { "[a-c]x", "[^0-9]y", "\\*z", "[α-ω]" };
	ib_ignore *ig;
	(void)state;

	ig = compile(pats, 4);
	assert_int_equal(ib_ignore_matches(ig, "bx"), 1);
	assert_int_equal(ib_ignore_matches(ig, "dx"), 0);
	assert_int_equal(ib_ignore_matches(ig, "ay"), 1);
	assert_int_equal(ib_ignore_matches(ig, "5y"), 0);
	assert_int_equal(ib_ignore_matches(ig, "*z"), 1);
	assert_int_equal(ib_ignore_matches(ig, "az"), 0);
	assert_int_equal(ib_ignore_matches(ig, "λ"), 1);             /* by code point */
	ib_ignore_free(ig);
}

static void test_accessors(void **state)
{
	static const char *pats[] = { "  ./a//b/ ", "", "!c", "   " };
	ib_ignore *ig;
	int exc = -1;
	(void)state;

	ig = compile(pats, 4);
	assert_int_equal(ib_ignore_count(ig), 2);      /* blank ones are skipped */
	assert_string_equal(ib_ignore_pattern(ig, 0, &exc), "a/b");
	assert_int_equal(exc, 0);
	assert_string_equal(ib_ignore_pattern(ig, 1, &exc), "c");
	assert_int_equal(exc, 1);
	assert_null(ib_ignore_pattern(ig, 2, NULL));
	ib_ignore_free(ig);
	ib_ignore_free(NULL);
	assert_int_equal(ib_ignore_count(NULL), 0);
}

static void test_errors(void **state)
{
	static const char *bang[] = { "a", "!" };
	static const char *bad[] = { "[", "a\\", "[]a]", "[x-]", "[a-b-c]", "[^bc" };
	static const char file[] = "ok\n# c\n\n[z\n";
	ib_ignore *ig = (ib_ignore *)&ig; /* reset to NULL on failure */
	(void)state;

	ib_assert_error_contains(ib_ignore_new(&ig, bang, 2), "illegal exclusion pattern: \"!\"");
	assert_int_equal(ib_error_last()->code, IB_ESYNTAX);
	assert_null(ig);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ib_assert_error_contains(ib_ignore_new(&ig, &bad[i], 1), bad[i]);
		assert_int_equal(ib_error_last()->code, IB_ESYNTAX);
	}
	/* a file's errors name the file and the line */
	ib_assert_error_contains(ib_ignore_parse(&ig, file, sizeof(file) - 1, "app.dockerignore"),
				 "`app.dockerignore`: line 4: invalid pattern `[z`");
	assert_int_equal(ib_ignore_matches(NULL, "x"), IB_EINVALID);
	assert_int_equal(ib_ignore_new(NULL, bang, 1), IB_EINVALID);
}

static void test_parse(void **state)
{
	static const char file[] = "*\n!src\n";
	ib_ignore *ig = NULL;
	(void)state;

	assert_int_equal(ib_ignore_parse(&ig, file, sizeof(file) - 1, NULL), 0);
	assert_int_equal(ib_ignore_matches(ig, "Makefile"), 1);
	assert_int_equal(ib_ignore_matches(ig, "src"), 0);
	assert_int_equal(ib_ignore_matches(ig, "src/a.c"), 0);
	ib_ignore_free(ig);
}

static void test_descend(void **state)
{
	static const char *none[] = { "vendor" };
	static const char *prefix[] = { "vendor", "!vendor/keep/**" };
	static const char *glob[] = { "vendor", "!**/*.go" };
	ib_ignore *ig;
	(void)state;

	ig = compile(none, 1);
	assert_int_equal(ib_ignore_descend(ig, "vendor"), 0);   /* no exceptions: skip */
	ib_ignore_free(ig);

	ig = compile(prefix, 2);
	assert_int_equal(ib_ignore_descend(ig, "vendor"), 1);
	assert_int_equal(ib_ignore_descend(ig, "vendor/keep"), 1);
	assert_int_equal(ib_ignore_descend(ig, "vendor/other"), 0);
	assert_int_equal(ib_ignore_descend(ig, "vend"), 0);
	ib_ignore_free(ig);

	ig = compile(glob, 2);
	assert_int_equal(ib_ignore_descend(ig, "vendor/anything"), 1); /* a glob could match below */
	ib_ignore_free(ig);
	assert_int_equal(ib_ignore_descend(NULL, "x"), IB_EINVALID);
}

static void test_candidates(void **state)
{
	ib_strarray c = IB_STRARRAY_INIT;
	(void)state;

	assert_int_equal(ib_ignore_candidates(&c, "docker/app.Dockerfile"), 0);
	assert_int_equal(c.count, 2);
	assert_string_equal(c.strings[0], "docker/app.Dockerfile.dockerignore");
	assert_string_equal(c.strings[1], ".dockerignore");
	assert_int_equal(ib_ignore_candidates(&c, "-"), 0);
	assert_int_equal(c.count, 1);
	assert_string_equal(c.strings[0], ".dockerignore");
	assert_int_equal(ib_ignore_candidates(&c, NULL), 0);
	assert_int_equal(c.count, 1);
	ib_assert_error_contains(ib_ignore_candidates(&c, "dir/"), "dir/");
	assert_int_equal(c.count, 1); /* untouched */
	ib_strarray_dispose(&c);
}

static void test_deep_paths_stay_fast(void **state)
{
	static const char *pats[] = { "*/**/*/**/*/**/b?", "a/**/a/**/a/**/b", "x**/a" };
	size_t depth = 2000;
	char *path = malloc(2 * depth + 1);
	ib_ignore *ig;
	(void)state;

	for (size_t i = 0; i < depth; i++)
		memcpy(path + 2 * i, "/a", 2);
	path[2 * depth] = '\0';
	ig = compile(pats, 3);
	/* "a/a/.../a": quadratic-per-prefix matching would take minutes here */
	assert_int_equal(ib_ignore_matches(ig, path + 1), 0);
	path[2 * depth - 1] = 'b';
	assert_int_equal(ib_ignore_matches(ig, path + 1), 1);
	ib_ignore_free(ig);
	free(path);
}

DEFINE_GROUP(ignore_tests,
	cmocka_unit_test(test_read),
	cmocka_unit_test(test_matching),
	cmocka_unit_test(test_classes_and_escapes),
	cmocka_unit_test(test_accessors),
	cmocka_unit_test(test_errors),
	cmocka_unit_test(test_parse),
	cmocka_unit_test(test_descend),
	cmocka_unit_test(test_candidates),
	cmocka_unit_test(test_deep_paths_stay_fast),
)
