#ifndef TESTS_BUILD_H
#define TESTS_BUILD_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "ib_test.h"

#define DECLARE(group) extern const struct CMUnitTest group[]; extern const size_t group##_count;
DECLARE(copy_tests)
DECLARE(git_tests)
DECLARE(meta_tests)
DECLARE(orchestrator_tests)
DECLARE(sde_tests)
DECLARE(buf_rule_tests)
DECLARE(volume_tests)
DECLARE(extras_tests)
DECLARE(jobs_tests)
#define DEFINE_GROUP(group, ...) \
	const struct CMUnitTest group[] = { __VA_ARGS__ }; \
	const size_t group##_count = sizeof(group) / sizeof(group[0]);
#endif
