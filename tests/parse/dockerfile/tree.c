/* The syntax tree: nodes, flags, forms, directives, continuations, heredocs, errors. */
#include "tests.h"

static void error_has(const char *text, const char *needle)
{
	ib_dockerfile *df = (ib_dockerfile *)1;
	ib_assert_error_contains(ib_dockerfile_parse(&df, text, strlen(text), NULL), needle);
	assert_int_equal(ib_error_last()->code, IB_ESYNTAX);
	assert_null(df);
}

static void nodes_and_accessors(void **state)
{
	(void)state;
	ib_dockerfile *df = parse_ok("# syntax=docker/dockerfile:1\n"
				     "FROM alpine AS Build\n"
				     "Run --mount=type=cache,target=/c \\\n  apk add curl\n"
				     "CMD [\"a\", \"b c\"]\n"
				     "ONBUILD COPY --chown=1 x /y\n");
	assert_int_equal(ib_dockerfile_node_count(df), 4);
	assert_string_equal(ib_dockerfile_directive(df, "syntax"), "docker/dockerfile:1");
	assert_null(ib_dockerfile_directive(df, "check"));
	assert_int_equal(ib_dockerfile_escape(df), '\\');
	assert_int_equal(ib_dockerfile_start_line(df), 2);
	assert_int_equal(ib_dockerfile_end_line(df), 6);

	const ib_node *from = ib_dockerfile_node(df, 0);
	assert_string_equal(ib_node_keyword(from), "from");
	assert_int_equal(ib_node_arg_count(from), 3);
	assert_string_equal(ib_node_arg(from, 2, NULL), "Build");

	const ib_node *run = ib_dockerfile_node(df, 1);
	assert_string_equal(ib_node_keyword(run), "run");
	assert_string_equal(ib_node_keyword_raw(run), "Run");
	assert_int_equal(ib_node_flag_count(run), 1);
	assert_string_equal(ib_node_flag(run, 0), "--mount=type=cache,target=/c");
	assert_null(ib_node_flag(run, 1));
	assert_int_equal(ib_node_arg_count(run), 1);
	assert_string_equal(ib_node_arg(run, 0, NULL), "apk add curl");
	assert_false(ib_node_is_json(run));
	assert_int_equal(ib_node_start_line(run), 3);
	assert_int_equal(ib_node_end_line(run), 4);
	assert_string_equal(ib_node_original(run), "Run --mount=type=cache,target=/c   apk add curl");

	const ib_node *cmd = ib_dockerfile_node(df, 2);
	assert_true(ib_node_is_json(cmd));
	size_t len = 0;
	assert_string_equal(ib_node_arg(cmd, 1, &len), "b c");
	assert_int_equal(len, 3);
	assert_null(ib_node_arg(cmd, 2, &len));

	const ib_node *onb = ib_dockerfile_node(df, 3);
	const ib_node *nested = ib_node_nested(onb);
	assert_non_null(nested);
	assert_string_equal(ib_node_keyword(nested), "copy");
	assert_string_equal(ib_node_flag(nested, 0), "--chown=1");
	assert_null(ib_dockerfile_node(df, 4));
	ib_dockerfile_free(df);
	ib_dockerfile_free(NULL);
}

static void readme_worked_example(void **state)
{
	(void)state;
	assert_dump("# escape=\\\n"
		    "ARG BASE=busybox\n"
		    "FROM ${BASE} AS build\n"
		    "COPY --chown=1:1 [\"a b\", \"/dst/\"]\n"
		    "ENV A=1 B=\"x y\"\n"
		    "LABEL version 1.0\n"
		    "# a comment\n"
		    "RUN apk add \\\n"
		    "    # comment inside a continuation is dropped\n"
		    "    curl   \\\n"
		    "\tgit\n"
		    "ONBUILD RUN echo hi\n"
		    "HEALTHCHECK --interval=5s CMD [\"curl\", \"-f\", \"http://localhost/\"]\n",
		    "(arg \"BASE=busybox\")\n"
		    "(from \"${BASE}\" \"AS\" \"build\")\n"
		    "(copy [\"--chown=1:1\"] \"a b\" \"/dst/\")\n"
		    "(env \"A\" \"1\" \"=\" \"B\" \"\\\"x y\\\"\" \"=\")\n"
		    "(label \"version\" \"1.0\" \"\")\n"
		    "(run \"apk add     curl   \\tgit\")\n"
		    "(onbuild (run \"echo hi\"))\n"
		    "(healthcheck [\"--interval=5s\"] \"CMD\" \"curl\" \"-f\" \"http://localhost/\")\n");
}

static void json_and_shell_forms(void **state)
{
	(void)state;
	assert_dump("CMD ['a']\n", "(cmd \"['a']\")\n");
	assert_dump("CMD [\"a\",]\n", "(cmd \"[\\\"a\\\",]\")\n");
	assert_dump("CMD [\"a\"] x\n", "(cmd \"[\\\"a\\\"] x\")\n");
	assert_dump("COPY [\"a\" b\n", "(copy \"[\\\"a\\\"\" \"b\")\n");
	assert_dump("CMD [\"\\u00e9\\ud83d\\ude00\\ud800\"]\n", "(cmd \"é😀\xEF\xBF\xBD\")\n");
	assert_dump("CMD []\n", "(cmd)\n");
	error_has("CMD [1]\n", "Dockerfile:1: when using JSON array syntax");
	error_has("FROM a\nRUN [\"a\", {\"b\": 1}]\n", "Dockerfile:2:");
	error_has("FROM a\nENTRYPOINT [\"a\", null]\n", "arrays must be comprised of strings only");
}

static void flags_and_words(void **state)
{
	(void)state;
	assert_dump("RUN --mount=a=b,c=\"d e\" --network=none echo\n",
		    "(run [\"--mount=a=b,c=d e\" \"--network=none\"] \"echo\")\n");
	assert_dump("COPY -- --x /y\n", "(copy \"--x\" \"/y\")\n");
	assert_dump("ARG abc=\"123 456\" def\n", "(arg \"abc=\\\"123 456\\\"\" \"def\")\n");
	assert_dump("ARG a=\"\" b=''\n", "(arg \"a=\\\"\\\"\" \"b=''\")\n");
	assert_dump("ENV a b  c\n", "(env \"a\" \"b  c\" \"\")\n");
	assert_dump("FOO bar\n", "(foo \"\")\n");
	assert_dump("expose 80/tcp\t443\n", "(expose \"80/tcp\" \"443\")\n");
	error_has("FROM a\nENV x=1 y\n", "Dockerfile:2: Syntax error - can't find = in \"y\"");
	error_has("FROM a\nLABEL x\n", "LABEL must have two arguments");
}

static void directives_and_escape(void **state)
{
	(void)state;
	ib_dockerfile *df = parse_ok("# EScape = `\n#check=skip=all\nFROM a\nRUN a `\n  b\n");
	assert_int_equal(ib_dockerfile_escape(df), '`');
	assert_string_equal(ib_dockerfile_directive(df, "escape"), "`");
	assert_string_equal(ib_dockerfile_directive(df, "check"), "skip=all");
	assert_string_equal(ib_node_arg(ib_dockerfile_node(df, 1), 0, NULL), "a   b");
	ib_dockerfile_free(df);
	/* a comment first: no more directives; backslash keeps being the escape */
	df = parse_ok("# hello\n# escape=`\nFROM a\nRUN a \\\n b\n");
	assert_int_equal(ib_dockerfile_escape(df), '\\');
	assert_int_equal(ib_dockerfile_node_count(df), 2);
	ib_dockerfile_free(df);
	error_has("# escape=x\nFROM a\n", "Dockerfile:1: invalid escape token 'x'");
	error_has("# syntax=a\n# syntax=b\nFROM a\n", "Dockerfile:2: only one syntax parser directive");
	/* BOM and CRLF */
	assert_dump("\xEF\xBB\xBF" "FROM a\r\nRUN x \\\r\n y\r\n", "(from \"a\")\n(run \"x  y\")\n");
}

static void continuations(void **state)
{
	(void)state;
	assert_dump("RUN a \\\\\nRUN b\n", "(run \"a \\\\\\\\\")\n(run \"b\")\n");
	assert_dump("RUN a \\\n", "(run \"a\")\n");
	ib_dockerfile *df = parse_ok("FROM a\nRUN a \\\n\n  b \\\n # c\n  d\n");
	assert_int_equal(ib_dockerfile_warning_count(df), 1);
	const ib_parse_warning *w = ib_dockerfile_warning(df, 0);
	assert_non_null(strstr(w->message, "Empty continuation line found in: RUN a   b   d"));
	assert_int_equal(w->line, 6);
	assert_null(ib_dockerfile_warning(df, 1));
	assert_int_equal(ib_node_end_line(ib_dockerfile_node(df, 1)), 6);
	ib_dockerfile_free(df);
}

static void heredocs(void **state)
{
	(void)state;
	ib_dockerfile *df = parse_ok("FROM a\n"
				     "COPY <<A 3<<-'B' /dst\n"
				     "one $X\n"
				     "A\n"
				     "\ttwo\n"
				     "\tB\n"
				     "RUN [\"<<C\"]\n"
				     "ONBUILD RUN <<EOF\n"
				     "x\n"
				     "EOF\n");
	const ib_node *cp = ib_dockerfile_node(df, 1);
	assert_int_equal(ib_node_heredoc_count(cp), 2);
	const ib_heredoc *a = ib_node_heredoc(cp, 0), *b = ib_node_heredoc(cp, 1);
	assert_string_equal(a->name, "A");
	assert_string_equal(a->content, "one $X\n");
	assert_true(a->expand);
	assert_false(a->chomp);
	assert_int_equal(a->fd, 0);
	assert_string_equal(b->name, "B");
	assert_string_equal(b->content, "\ttwo\n");
	assert_false(b->expand);
	assert_true(b->chomp);
	assert_int_equal(b->fd, 3);
	assert_null(ib_node_heredoc(cp, 2));
	ib_buf chomped = IB_BUF_INIT;
	assert_int_equal(ib_heredoc_chomp(&chomped, b), 0);
	assert_string_equal(chomped.ptr, "two\n");
	ib_buf_dispose(&chomped);
	assert_int_equal(ib_node_start_line(cp), 2);
	assert_int_equal(ib_node_end_line(cp), 6);
	assert_int_equal(ib_node_heredoc_count(ib_dockerfile_node(df, 2)), 0);
	assert_int_equal(ib_node_heredoc_count(ib_dockerfile_node(df, 3)), 1);
	assert_int_equal(ib_dockerfile_node_count(df), 4);
	ib_dockerfile_free(df);
	error_has("FROM a\nRUN <<EOF\nx\n", "Dockerfile:2: unterminated heredoc");
}

static void errors_with_lines(void **state)
{
	(void)state;
	error_has("", "Dockerfile:1: file with no instructions");
	error_has("# a\n\n# b\n", "file with no instructions");
	error_has("FROM a\n\n\nENV PATH\n", "Dockerfile:4: ENV must have two arguments");
	char *big = malloc(70000);
	memcpy(big, "RUN ", 4);
	memset(big + 4, 'x', 65540);
	strcpy(big + 65544, "\n");
	error_has(big, "greater than max allowed size of 65535");
	free(big);

	ib_parse_options opts = IB_PARSE_OPTIONS_INIT;
	opts.filename = "app.Dockerfile";
	ib_dockerfile *df;
	ib_assert_error_contains(ib_dockerfile_parse(&df, "CMD [1]", 7, &opts), "app.Dockerfile:1:");
	opts.version = 99;
	assert_int_equal(ib_dockerfile_parse(&df, "FROM a", 6, &opts), IB_EINVALID);
	assert_int_equal(ib_parse_options_init(&opts, IB_PARSE_OPTIONS_VERSION), 0);
	assert_null(opts.filename);
	assert_int_equal(ib_parse_options_init(&opts, 0), IB_EINVALID);
	assert_int_equal(ib_dockerfile_parse(NULL, "x", 1, NULL), IB_EINVALID);
}

static void no_newline_and_nul(void **state)
{
	(void)state;
	ib_dockerfile *df = NULL;
	static const char text[] = "CMD [\"a\\u0000b\"]";
	assert_int_equal(ib_dockerfile_parse(&df, text, sizeof(text) - 1, NULL), 0);
	size_t len;
	const char *arg = ib_node_arg(ib_dockerfile_node(df, 0), 0, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(arg, "a\0b", 3);
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_dockerfile_dump(&b, df), 0);
	assert_string_equal(b.ptr, "(cmd \"a\\x00b\")\n");
	ib_buf_clear(&b);
	assert_int_equal(ib_node_dump(&b, ib_dockerfile_node(df, 0)), 0);
	assert_string_equal(b.ptr, "cmd \"a\\x00b\"");
	ib_buf_dispose(&b);
	ib_dockerfile_free(df);
}

DEFINE_GROUP(tree_tests,
	cmocka_unit_test(nodes_and_accessors),
	cmocka_unit_test(readme_worked_example),
	cmocka_unit_test(json_and_shell_forms),
	cmocka_unit_test(flags_and_words),
	cmocka_unit_test(directives_and_escape),
	cmocka_unit_test(continuations),
	cmocka_unit_test(heredocs),
	cmocka_unit_test(errors_with_lines),
	cmocka_unit_test(no_newline_and_nul))
