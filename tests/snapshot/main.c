#include "tests.h"

int main(void)
{
	int failed = 0;
	failed += _cmocka_run_group_tests("apply", apply_tests, apply_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("diff", diff_tests, diff_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("registry", registry_tests, registry_tests_count, NULL, NULL);
	return failed ? 1 : 0;
}
