#include "tests.h"

int main(void)
{
	int failed = 0;
	failed += _cmocka_run_group_tests("unit", unit_tests, unit_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("client", client_tests, client_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("gzip", gzip_tests, gzip_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("creds", creds_tests, creds_tests_count, NULL, NULL);
	return failed ? 1 : 0;
}
