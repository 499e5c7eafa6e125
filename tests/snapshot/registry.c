/* Registry and argument checks that need no store. */
#include "tests.h"
#include "imagebuild/sys/snapshotter.h"

static int dummy_ctor(ib_snapshotter **out, const char *dir, void *param)
{
	(void)out;
	(void)dir;
	(void)param;
	return -1;
}

static void test_register(void **state)
{
	(void)state;
	assert_int_equal(ib_snapshotter_register("mine", dummy_ctor, NULL), 0);
	assert_int_equal(ib_snapshotter_unregister("mine"), 0);
	ib_assert_error_contains(ib_snapshotter_unregister("mine"), "no snapshotter named `mine`");
	ib_assert_error_contains(ib_snapshotter_register("Bad Name", dummy_ctor, NULL), "[a-z0-9_-]");
	ib_assert_error_contains(ib_snapshotter_register("x", NULL, NULL), "no constructor");
	ib_snapshotter_options o;
	assert_int_equal(ib_snapshotter_options_init(&o, IB_SNAPSHOTTER_OPTIONS_VERSION), 0);
	ib_assert_error_contains(ib_snapshotter_options_init(&o, 99), "version 99");
}

DEFINE_GROUP(registry_tests,
	cmocka_unit_test(test_register),
)
