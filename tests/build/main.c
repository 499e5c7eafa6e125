#include "tests.h"

int main(void)
{
	int failed = 0;
	failed += _cmocka_run_group_tests("copy", copy_tests, copy_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("git", git_tests, git_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("sde", sde_tests, sde_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("buf-rule", buf_rule_tests, buf_rule_tests_count, NULL, NULL);
	return failed ? 1 : 0;
}
