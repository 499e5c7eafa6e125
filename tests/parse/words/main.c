#include "tests.h"

int main(void)
{
	int failed = 0;
	failed += _cmocka_run_group_tests("expand", expand_tests, expand_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("ignore", ignore_tests, ignore_tests_count, NULL, NULL);
	return failed ? 1 : 0;
}
