#ifndef TESTS_PARSE_DOCKERFILE_H
#define TESTS_PARSE_DOCKERFILE_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "ib_test.h"
#include "imagebuild/parse.h"

#define DECLARE(group) extern const struct CMUnitTest group[]; extern const size_t group##_count;
DECLARE(tree_tests)
DECLARE(typed_tests)
#define DEFINE_GROUP(group, ...) \
	const struct CMUnitTest group[] = { __VA_ARGS__ }; \
	const size_t group##_count = sizeof(group) / sizeof(group[0]);

/* Parse a NUL-terminated Dockerfile; fails the test on error. */
static inline ib_dockerfile *parse_ok(const char *text)
{
	ib_dockerfile *df = NULL;
	if (ib_dockerfile_parse(&df, text, strlen(text), NULL) < 0)
		fail_msg("parse failed: %s", ib_error_last()->message);
	return df;
}

/* The dump of a Dockerfile as a malloc'd string. */
static inline char *dump_of(const char *text)
{
	ib_dockerfile *df = parse_ok(text);
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_dockerfile_dump(&b, df), 0);
	char *s = strdup(b.ptr ? b.ptr : "");
	ib_buf_dispose(&b);
	ib_dockerfile_free(df);
	return s;
}

#define assert_dump(text, want) do { \
		char *got__ = dump_of(text); \
		assert_string_equal(got__, want); \
		free(got__); \
	} while (0)
#endif
