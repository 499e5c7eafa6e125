#ifndef TESTS_UTIL_H
#define TESTS_UTIL_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "ib_test.h"

#define DECLARE(group) extern const struct CMUnitTest group[]; extern const size_t group##_count;
DECLARE(error_tests)
DECLARE(buffer_tests)
DECLARE(digest_tests)
DECLARE(json_tests)
DECLARE(path_tests)
DECLARE(fs_tests)
DECLARE(backend_tests)
DECLARE(bigio_tests)
#define DEFINE_GROUP(group, ...) \
	const struct CMUnitTest group[] = { __VA_ARGS__ }; \
	const size_t group##_count = sizeof(group) / sizeof(group[0]);
#endif
