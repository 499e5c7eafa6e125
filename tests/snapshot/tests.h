#ifndef TESTS_SNAPSHOT_H
#define TESTS_SNAPSHOT_H
#include "helpers.h"
#define DECLARE(group) extern const struct CMUnitTest group[]; extern const size_t group##_count;
DECLARE(apply_tests)
DECLARE(diff_tests)
DECLARE(registry_tests)
#define DEFINE_GROUP(group, ...) \
	const struct CMUnitTest group[] = { __VA_ARGS__ }; \
	const size_t group##_count = sizeof(group) / sizeof(group[0]);
#endif
