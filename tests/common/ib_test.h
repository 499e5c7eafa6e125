/*
 * What every cmocka test of the project shares. Include after the cmocka
 * prerequisites (stdarg.h, stddef.h, stdint.h, setjmp.h).
 */
#ifndef IB_TEST_H
#define IB_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "imagebuild/errors.h"

/*
 * A test that cannot run here (no root, no overlayfs, missing tool) calls
 * this. It exits 77 (meson's "skipped"), or fails when IB_TEST_STRICT=1, as
 * on CI, so nothing is skipped quietly there.
 */
static inline void ib_test_skip_or_fail(const char *why)
{
	const char *strict = getenv("IB_TEST_STRICT");
	if (strict && strcmp(strict, "1") == 0) {
		fprintf(stderr, "FAIL (IB_TEST_STRICT=1 forbids skipping): %s\n", why);
		exit(1);
	}
	fprintf(stderr, "SKIP: %s\n", why);
	exit(77);
}

/* A fresh directory under $TMPDIR, removed by the caller (or left for debugging). */
static inline char *ib_test_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/ibtest-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (!mkdtemp(p)) {
		perror("mkdtemp");
		exit(1);
	}
	return p;
}

/* Assert a call failed and its message contains `needle`. */
#define ib_assert_error_contains(call, needle) do { \
		int rc__ = (call); \
		assert_true(rc__ < 0); \
		const char *m__ = ib_error_last()->message; \
		if (!strstr(m__, needle)) \
			fail_msg("error message `%s` lacks `%s`", m__, needle); \
	} while (0)

#endif
