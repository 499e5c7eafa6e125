#include "tests.h"

int main(void)
{
	int failed = 0;
	failed += _cmocka_run_group_tests("reference", reference_tests, reference_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("config", config_tests, config_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("blob", blob_tests, blob_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("image", image_tests, image_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("gc", gc_tests, gc_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("bad", bad_tests, bad_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("crash", crash_tests, crash_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("transfer", transfer_tests, transfer_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("trust", trust_tests, trust_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("memo", memo_tests, memo_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("names", names_tests, names_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("platform", platform_tests, platform_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("remote", remote_tests, remote_tests_count, NULL, NULL);
	return failed ? 1 : 0;
}
