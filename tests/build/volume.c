/* Named volumes in the store, and the container run options' versions. */
#include "tests.h"
#include "imagebuild/container.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_volumes(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("volumes");
	ib_store *store = NULL;
	assert_int_equal(ib_store_open(&store, dir, NULL), 0);
	ib_buf b = IB_BUF_INIT;
	/* none yet: an empty list */
	assert_int_equal(ib_volume_list(&b, store), 0);
	assert_int_equal(b.size, 0);
	assert_int_equal(ib_volume_create(store, "zeta"), 0);
	assert_int_equal(ib_volume_create(store, "alpha.1"), 0);
	assert_int_equal(ib_volume_create(store, "zeta"), IB_EEXISTS);
	ib_assert_error_contains(ib_volume_create(store, "../escape"), "invalid volume name `../escape`");
	ib_assert_error_contains(ib_volume_create(store, "a/b"), "invalid volume name");
	assert_int_equal(ib_volume_list(&b, store), 0);
	assert_string_equal(b.ptr, "alpha.1\nzeta\n");
	/* its directory is volumes/NAME/_data in the store */
	assert_int_equal(ib_volume_path(&b, store, "zeta"), 0);
	char want[4200];
	snprintf(want, sizeof want, "%s/volumes/zeta/_data", ib_store_root(store));
	assert_string_equal(b.ptr, want);
	struct stat st;
	assert_int_equal(stat(b.ptr, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(ib_volume_path(&b, store, "nothere"), IB_ENOTFOUND);
	assert_int_equal(ib_volume_remove(store, "zeta"), 0);
	assert_int_equal(ib_volume_remove(store, "zeta"), IB_ENOTFOUND);
	assert_int_equal(ib_volume_list(&b, store), 0);
	assert_string_equal(b.ptr, "alpha.1\n");
	/* the store stays consistent with a volume in it */
	ib_buf_dispose(&b);
	ib_store_free(store);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

/* Versions 1 and 2 of ib_container_run_options end before `mounts`: nothing past them is written. */
static void test_run_options_versions(void **state)
{
	(void)state;
	ib_container_run_options o;
	memset(&o, 0x5a, sizeof o);
	assert_int_equal(ib_container_run_options_init(&o, 2), 0);
	assert_int_equal(o.version, 2);
	assert_int_equal(o.stdin_fd, -1);
	unsigned char *past = (unsigned char *)&o + offsetof(ib_container_run_options, mounts);
	for (size_t i = 0; i < sizeof o - offsetof(ib_container_run_options, mounts); i++)
		assert_int_equal(past[i], 0x5a);
	assert_int_equal(ib_container_run_options_init(&o, 3), 0);
	assert_null(o.mounts);
	assert_int_equal(o.init, 0);
	assert_null(o.init_path);
	assert_int_equal(ib_container_run_options_init(&o, 4), IB_EINVALID);
}

DEFINE_GROUP(volume_tests,
	cmocka_unit_test(test_volumes),
	cmocka_unit_test(test_run_options_versions),
)
