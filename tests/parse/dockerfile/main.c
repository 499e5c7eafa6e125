#include "tests.h"

int main(void)
{
	int failed = 0;
	failed += _cmocka_run_group_tests("tree", tree_tests, tree_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("typed", typed_tests, typed_tests_count, NULL, NULL);
	return failed ? 1 : 0;
}
