#include "tests.h"

int main(void)
{
	int failed = 0;
	failed += _cmocka_run_group_tests("error", error_tests, error_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("buffer", buffer_tests, buffer_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("digest", digest_tests, digest_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("json", json_tests, json_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("path", path_tests, path_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("fs", fs_tests, fs_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("backend", backend_tests, backend_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("bigio", bigio_tests, bigio_tests_count, NULL, NULL);
	return failed ? 1 : 0;
}
