/* Word expansion: ib_expand_word(), ib_expand_words(). */
#include "tests.h"

static const char *const test_env[] = {
	"HOME=/home/me", "EMPTY=", "FILE=archive.tar.gz", "PATHS=/a/b/c",
	"SPACED=  one  two ", "NOVALUE", "X=first", "X=second", "이름=값", NULL
};

/* Expand `word` with test_env and escape `esc`; assert the result. */
static void check_esc(const char *word, const char *want, char esc)
{
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
	ib_buf out = IB_BUF_INIT;

	o.env = test_env;
	o.escape = esc;
	if (ib_expand_word(&out, word, &o) < 0)
		fail_msg("`%s` failed: %s", word, ib_error_last()->message);
	if (strcmp(out.ptr, want) != 0)
		fail_msg("`%s` gave `%s`, want `%s`", word, out.ptr, want);
	ib_buf_dispose(&out);
}

static void check(const char *word, const char *want)
{
	check_esc(word, want, 0);
}

static int expand_fails(const char *word)
{
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
	ib_buf out = IB_BUF_INIT;
	int rc;

	o.env = test_env;
	rc = ib_expand_word(&out, word, &o);
	ib_buf_dispose(&out);
	return rc;
}

static void test_plain_variables(void **state)
{
	(void)state;
	check("$HOME/x", "/home/me/x");
	check("${HOME}x", "/home/mex");
	check("$UNSET-$EMPTY-", "--");
	check("$NOVALUE.", ".");
	check("$X", "second");      /* a later entry wins */
	check("$이름!", "값!");       /* Unicode names */
	check("$1x $@y", "x y");    /* positional and special parameters are never set */
	check("a$", "a$");
	check("\xEF\xBB\xBF$HOME", "/home/me"); /* a leading BOM is dropped, as by Go's scanner */
	check("$.", "$.");
}

static void test_default_and_alternative(void **state)
{
	(void)state;
	check("${UNSET:-def}", "def");
	check("${EMPTY:-def}", "def");
	check("${EMPTY-def}", "");
	check("${UNSET-def}", "def");
	check("${HOME:-def}", "/home/me");
	check("${UNSET:-${HOME:-x}}", "/home/me");   /* the word is expanded too */
	check("${HOME:+alt}", "alt");
	check("${EMPTY:+alt}", "");
	check("${EMPTY+alt}", "alt");
	check("${UNSET+alt}", "");
	check("${HOME:?must}", "/home/me");
	check("${EMPTY?must}", "");
}

static void test_required_errors(void **state)
{
	ib_buf out = IB_BUF_INIT;
	(void)state;
	ib_assert_error_contains(expand_fails("${UNSET:?give it a $HOME}"), "UNSET: give it a /home/me");
	assert_int_equal(ib_error_last()->code, IB_EINVALID);
	ib_assert_error_contains(expand_fails("${EMPTY:?}"), "EMPTY: is not allowed to be empty");
	ib_assert_error_contains(expand_fails("${UNSET?}"), "UNSET: is not allowed to be unset");
	/* the message names the word */
	ib_assert_error_contains(expand_fails("pre ${UNSET?}"), "`pre ${UNSET?}`");
	ib_buf_dispose(&out);
}

static void test_trim_patterns(void **state)
{
	(void)state;
	check("${FILE#*.}", "tar.gz");
	check("${FILE##*.}", "gz");
	check("${FILE%.*}", "archive.tar");
	check("${FILE%%.*}", "archive");
	check("${FILE#nomatch}", "archive.tar.gz");
	check("${FILE#?r}", "chive.tar.gz");
	check("${PATHS#/}", "a/b/c");
	check("${UNSET%%x}", "");
}

static void test_replace(void **state)
{
	(void)state;
	check("${PATHS/\\//:}", ":a/b/c");
	check("${PATHS//\\//:}", ":a:b:c");
	check("${FILE/.*/}", "archive");
	check("${FILE//a/A}", "Archive.tAr.gz");
	check("${FILE/zzz/y}", "archive.tar.gz");
	check("${FILE//r?/R}", "aRhive.taRgz");
}

static void test_quotes_and_escapes(void **state)
{
	(void)state;
	check("'$HOME'", "$HOME");
	check("\"$HOME\"", "/home/me");
	check("\"a\\\"b\\$c\\d\"", "a\"b$c\\d");
	check("\\$HOME", "$HOME");
	check("a\\ b", "a b");
	check("end\\", "end");
	/* with the backtick escape, a backslash is an ordinary character */
	check_esc("C:\\$HOME", "C:\\/home/me", '`');
	check_esc("`$HOME", "$HOME", '`');
	check_esc("\"a`\"b\"", "a\"b", '`');
}

static void test_syntax_errors(void **state)
{
	static const char *bad[] = {
		"'open", "\"open", "${", "${HOME", "${}", "${:-x}", "${{x}", "${HOME:=x}",
		"${HOME=x}", "${HOME:#x}", "${HOME//x}", "${HOME#\\x}", "${HOME.}",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = expand_fails(bad[i]);
		if (rc != IB_ESYNTAX)
			fail_msg("`%s` gave %d, want IB_ESYNTAX", bad[i], rc);
		if (!strstr(ib_error_last()->message, bad[i]))
			fail_msg("`%s`: message `%s` does not name the word", bad[i],
				 ib_error_last()->message);
	}
}

static void check_words(const char *word, const char *const *want, size_t n)
{
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
	ib_strarray words = IB_STRARRAY_INIT;

	o.env = test_env;
	if (ib_expand_words(&words, word, &o) < 0)
		fail_msg("`%s` failed: %s", word, ib_error_last()->message);
	assert_int_equal(words.count, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(words.strings[i], want[i]);
	ib_strarray_dispose(&words);
}

static void test_words(void **state)
{
	static const char *w1[] = { "a", "one", "two", "b" };
	static const char *w2[] = { "a   one  two b" };
	static const char *w3[] = { "x y", "z" };
	(void)state;
	check_words("a $SPACED b", w1, 4);
	check_words("\"a $SPACED\"b", w2, 1);
	check_words("x\\ y\t z ", w3, 2);
	check_words("  ", NULL, 0);
	check_words("$UNSET", NULL, 0);
}

static void test_words_replace_output(void **state)
{
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
	ib_strarray words = IB_STRARRAY_INIT;
	(void)state;

	o.env = test_env;
	assert_int_equal(ib_expand_words(&words, "a b", &o), 0);
	assert_int_equal(words.count, 2);
	/* the old list is freed and replaced (ASan checks the leak) */
	assert_int_equal(ib_expand_words(&words, "c", &o), 0);
	assert_int_equal(words.count, 1);
	assert_string_equal(words.strings[0], "c");
	/* a failure leaves it alone */
	assert_true(ib_expand_words(&words, "'", &o) < 0);
	assert_int_equal(words.count, 1);
	ib_strarray_dispose(&words);
	ib_strarray_dispose(&words);
	assert_null(words.strings);
}

static void test_buffer_ownership(void **state)
{
	ib_buf out = IB_BUF_INIT;
	(void)state;

	assert_int_equal(ib_buf_puts(&out, "old"), 0);
	assert_true(ib_expand_word(&out, "${x", NULL) < 0);
	assert_string_equal(out.ptr, "old");           /* untouched on failure */
	assert_int_equal(ib_expand_word(&out, "", NULL), 0);
	assert_non_null(out.ptr);                       /* never NULL on success */
	assert_string_equal(out.ptr, "");
	assert_int_equal(ib_expand_word(&out, "$HOME", NULL), 0);  /* NULL options: empty env */
	assert_string_equal(out.ptr, "");
	ib_buf_dispose(&out);
}

static void test_bad_options(void **state)
{
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
	ib_buf out = IB_BUF_INIT;
	(void)state;

	o.escape = '^';
	ib_assert_error_contains(ib_expand_word(&out, "x", &o), "escape");
	assert_int_equal(ib_error_last()->code, IB_EINVALID);
	o.escape = 0;
	o.version = 99;
	assert_int_equal(ib_expand_word(&out, "x", &o), IB_EINVALID);
	assert_int_equal(ib_expand_options_init(&o, 99), IB_EINVALID);
	assert_int_equal(ib_expand_options_init(&o, IB_EXPAND_OPTIONS_VERSION), 0);
	assert_int_equal(o.version, IB_EXPAND_OPTIONS_VERSION);
	assert_null(o.env);
	assert_int_equal(ib_expand_word(&out, NULL, &o), IB_EINVALID);
	assert_null(out.ptr);
}

typedef struct {
	char seen[256];
	int stop_at; /* stop on this call (1-based), 0 never */
	int calls;
} lookup_log;

static int on_lookup(const char *name, int found, void *payload)
{
	lookup_log *l = payload;
	size_t n = strlen(l->seen);
	snprintf(l->seen + n, sizeof(l->seen) - n, "%s%s=%d", n ? " " : "", name, found);
	return ++l->calls == l->stop_at ? IB_EUSER : 0;
}

static void test_lookup_callback(void **state)
{
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
	ib_buf out = IB_BUF_INIT;
	lookup_log l = { "", 0, 0 };
	(void)state;

	o.env = test_env;
	o.lookup = on_lookup;
	o.payload = &l;
	assert_int_equal(ib_expand_word(&out, "$HOME ${NOPE:-$EMPTY}", &o), 0);
	assert_string_equal(l.seen, "HOME=1 EMPTY=1 NOPE=0");
	/* a non-zero return stops the expansion, which returns it */
	memset(&l, 0, sizeof(l));
	l.stop_at = 2;
	assert_int_equal(ib_expand_word(&out, "$A $B $C", &o), IB_EUSER);
	assert_string_equal(l.seen, "A=0 B=0");
	assert_int_equal(ib_error_last()->code, IB_EUSER);
	ib_buf_dispose(&out);
}

static void test_flags(void **state)
{
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
	ib_buf out = IB_BUF_INIT;
	(void)state;

	o.env = test_env;
	o.flags = IB_EXPAND_KEEP_UNSET;
	assert_int_equal(ib_expand_word(&out, "$HOME $NOPE ${NOPE} ${NOPE:-d} ${NOPE/a/b}", &o), 0);
	assert_string_equal(out.ptr, "/home/me $NOPE ${NOPE} ${NOPE:-d} ${NOPE/a/b}");
	o.flags = IB_EXPAND_RAW_QUOTES;
	assert_int_equal(ib_expand_word(&out, "'a b'\"$EMPTY\"", &o), 0);
	assert_string_equal(out.ptr, "'a b'\"\"");
	o.flags = IB_EXPAND_RAW_ESCAPES;
	assert_int_equal(ib_expand_word(&out, "a\\ b\\$HOME", &o), 0);
	assert_string_equal(out.ptr, "a\\ b\\$HOME");
	ib_buf_dispose(&out);
}

static void test_patterns_newlines_and_size(void **state)
{
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
	ib_buf out = IB_BUF_INIT;
	size_t n = 200000;
	char *big = malloc(n + 3);
	const char *env[] = { "NL=a\nb\nc", big, NULL };
	(void)state;

	/* as in buildkit (Go regexps), `*` and `?` never match a newline */
	o.env = env;
	assert_int_equal(ib_expand_word(&out, "${NL#*\n}", &o), 0);
	assert_string_equal(out.ptr, "b\nc");
	assert_int_equal(ib_expand_word(&out, "${NL##*\n}", &o), 0);
	assert_string_equal(out.ptr, "b\nc");
	assert_int_equal(ib_expand_word(&out, "${NL%\n*}", &o), 0);
	assert_string_equal(out.ptr, "a\nb");
	assert_int_equal(ib_expand_word(&out, "${NL//?/x}", &o), 0);
	assert_string_equal(out.ptr, "x\nx\nx");
	/* many stars against a long value stay linear (this would take minutes) */
	memcpy(big, "B=", 2);
	memset(big + 2, 'a', n);
	big[n + 2] = '\0';
	assert_int_equal(ib_expand_word(&out, "${B#*a*a*a*a*a*a*b}", &o), 0);
	assert_int_equal(out.size, n);
	assert_int_equal(ib_expand_word(&out, "${B%%*a*a*a*a*a*b}", &o), 0);
	assert_int_equal(out.size, n);
	assert_int_equal(ib_expand_word(&out, "${B//a*a*a*b/x}", &o), 0);
	assert_int_equal(out.size, n);
	assert_int_equal(ib_expand_word(&out, "${B##*a}", &o), 0);
	assert_int_equal(out.size, 0);
	ib_buf_dispose(&out);
	free(big);
}

/*
 * Nested replacements multiply: each level copies the inner word once per
 * character of the value. The result is bounded (IB_EXPAND_MAX_RESULT past
 * the word's length) and the expansion stops there, quickly, with an error
 * and `out` untouched. (A fuzz finding: 12 levels in 129 bytes ran the
 * memory out.)
 */
static void test_nested_growth_is_bounded(void **state)
{
	char v[2 + 64 + 1], *quoted = malloc(64), *big = malloc(2 + 200000 + 1);
	const char *env[] = { v, big, NULL };
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
	ib_buf out = IB_BUF_INIT, word = IB_BUF_INIT;
	ib_strarray words = IB_STRARRAY_INIT;
	(void)state;

	memcpy(v, "V=", 2);
	memset(v + 2, 'v', 64);
	v[66] = '\0';
	memcpy(big, "B=", 2);
	memset(big + 2, 'b', 200000);
	big[200002] = '\0';
	o.env = env;
	/* three levels: 64^3 = 256 KiB, allowed */
	assert_int_equal(ib_expand_word(&out, "${V//?/${V//?/${V//?/x}}}", &o), 0);
	assert_int_equal(out.size, 64 * 64 * 64);
	/* four: 16 MiB, refused at the limit */
	assert_int_equal(ib_expand_word(&out, "${V//?/${V//?/${V//?/${V//?/x}}}}", &o), IB_EUNSUPPORTED);
	assert_non_null(strstr(ib_error_last()->message, "grows past"));
	assert_int_equal(out.size, 64 * 64 * 64); /* untouched */
	assert_int_equal(ib_expand_words(&words, "${V//?/${V//?/${V//?/${V//?/x}}}}", &o), IB_EUNSUPPORTED);
	assert_int_equal(words.count, 0);
	/* twelve levels: 64^12 bytes unless stopped early */
	for (int i = 0; i < 12; i++)
		ib_buf_puts(&word, "${V//?/");
	ib_buf_puts(&word, "x");
	for (int i = 0; i < 12; i++)
		ib_buf_puts(&word, "}");
	assert_int_equal(ib_expand_word(&out, word.ptr, &o), IB_EUNSUPPORTED);
	/* the sum counts too: five copies of 200 000 bytes fit, six do not */
	strcpy(quoted, "\"$B$B$B$B$B\"");
	assert_int_equal(ib_expand_word(&out, quoted, &o), 0);
	assert_int_equal(out.size, 1000000);
	strcpy(quoted, "\"$B$B$B$B$B$B\"");
	assert_int_equal(ib_expand_word(&out, quoted, &o), IB_EUNSUPPORTED);
	assert_int_equal(ib_expand_word(&out, "$B$B$B$B$B$B", &o), IB_EUNSUPPORTED);
	assert_int_equal(ib_expand_word(&out, "${B:+$B$B$B$B$B$B}", &o), IB_EUNSUPPORTED);
	assert_int_equal(ib_expand_word(&out, "${V//?/$B}", &o), IB_EUNSUPPORTED);
	assert_int_equal(ib_expand_word(&out, "${V/?/$B}", &o), 0);
	assert_int_equal(out.size, 200000 + 63);
	ib_buf_dispose(&out);
	ib_buf_dispose(&word);
	free(quoted);
	free(big);
}

DEFINE_GROUP(expand_tests,
	cmocka_unit_test(test_plain_variables),
	cmocka_unit_test(test_default_and_alternative),
	cmocka_unit_test(test_required_errors),
	cmocka_unit_test(test_trim_patterns),
	cmocka_unit_test(test_replace),
	cmocka_unit_test(test_quotes_and_escapes),
	cmocka_unit_test(test_syntax_errors),
	cmocka_unit_test(test_words),
	cmocka_unit_test(test_words_replace_output),
	cmocka_unit_test(test_buffer_ownership),
	cmocka_unit_test(test_bad_options),
	cmocka_unit_test(test_lookup_callback),
	cmocka_unit_test(test_flags),
	cmocka_unit_test(test_patterns_newlines_and_size),
	cmocka_unit_test(test_nested_growth_is_bounded),
)
