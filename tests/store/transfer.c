#include "tests.h"

#include <sys/stat.h>
#include <unistd.h>

static void roundtrip(ib_archive_format fmt, const char *out_name)
{
	test_store a, b;
	ts_open(&a, "xfera");
	ts_open(&b, "xferb");
	ib_digest id = ts_import(&a, "quay.io/org/app:v1", "round trip");
	ib_image *img;
	assert_int_equal(ib_store_image_lookup(&img, a.store, "quay.io/org/app:v1"), 0);
	ib_digest md = *ib_image_manifest_digest(img);
	ib_image_free(img);
	char *index_path = ts_path(&a, "store/index.json");
	char *before = ts_read_file(index_path);
	int blobs_before = ts_count_blobs(&a);

	char *out = ts_path(&a, out_name);
	ib_save_options so = IB_SAVE_OPTIONS_INIT;
	so.format = fmt;
	const char *names[] = { "quay.io/org/app:v1" };
	if (ib_store_save(a.store, names, 1, out, &so) < 0)
		fail_msg("save: %s", ib_error_last()->message);
	/* export changes nothing */
	char *after = ts_read_file(index_path);
	assert_string_equal(before, after);
	assert_int_equal(ts_count_blobs(&a), blobs_before);

	ib_strarray loaded = { NULL, 0 };
	if (ib_store_load(&loaded, b.store, out, NULL) < 0)
		fail_msg("load: %s", ib_error_last()->message);
	assert_int_equal(loaded.count, 1);
	assert_string_equal(loaded.strings[0], "quay.io/org/app:v1");
	ib_strarray_dispose(&loaded);
	assert_int_equal(ib_store_image_lookup(&img, b.store, "quay.io/org/app:v1"), 0);
	assert_true(ib_digest_equal(ib_image_id(img), &id));
	assert_true(ib_digest_equal(ib_image_manifest_digest(img), &md));
	ib_image_free(img);
	assert_int_equal(ib_store_fsck(NULL, b.store), 0);
	/* loading again is harmless */
	assert_int_equal(ib_store_load(NULL, b.store, out, NULL), 0);
	free(before);
	free(after);
	free(index_path);
	free(out);
	ts_close(&a);
	ts_close(&b);
}

static void test_roundtrip_oci(void **state)
{
	(void)state;
	roundtrip(IB_ARCHIVE_OCI, "layout");
}

static void test_roundtrip_oci_archive(void **state)
{
	(void)state;
	roundtrip(IB_ARCHIVE_OCI_ARCHIVE, "image.oci.tar");
}

static void test_roundtrip_docker(void **state)
{
	(void)state;
	roundtrip(IB_ARCHIVE_DOCKER, "image.docker.tar");
}

static void test_save_options(void **state)
{
	(void)state;
	test_store a;
	ts_open(&a, "saveopt");
	ib_digest id = ts_import(&a, "app", "x");
	char *out = ts_path(&a, "layout");
	ib_save_options so = IB_SAVE_OPTIONS_INIT;
	so.ref_name = "short";
	const char *names[] = { "app" };
	assert_int_equal(ib_store_save(a.store, names, 1, out, &so), 0);
	char *ip = ts_path(&a, "layout/index.json");
	char *index = ts_read_file(ip);
	assert_non_null(strstr(index, "\"org.opencontainers.image.ref.name\":\"short\""));
	assert_non_null(strstr(index, "\"io.containerd.image.name\":\"docker.io/library/app:latest\""));
	free(index);
	/* an existing non-empty directory is refused */
	ib_assert_error_contains(ib_store_save(a.store, names, 1, out, &so), "not an empty directory");
	const char *bad[] = { "nothere" };
	char *out2 = ts_path(&a, "x.tar");
	so.format = IB_ARCHIVE_DOCKER;
	ib_assert_error_contains(ib_store_save(a.store, bad, 1, out2, &so), "No such image");
	assert_false(access(out2, F_OK) == 0);
	/* a bare ref.name with no containerd name: loaded under --repository, or untagged */
	test_store b;
	ts_open(&b, "loadrepo");
	free(ip);
	char *out3 = ts_path(&a, "layout2");
	so.format = IB_ARCHIVE_OCI;
	char hex[IB_DIGEST_STRLEN];
	ib_digest_fmt(hex, &id);
	const char *byid[] = { hex };
	assert_int_equal(ib_store_save(a.store, byid, 1, out3, &so), 0);
	ib_strarray loaded;
	assert_int_equal(ib_store_load(&loaded, b.store, out3, NULL), 0);
	assert_int_equal(loaded.count, 1);
	assert_string_equal(loaded.strings[0], hex);
	ib_strarray_dispose(&loaded);
	ib_load_options lo = IB_LOAD_OPTIONS_INIT;
	lo.repository = "myrepo";
	assert_int_equal(ib_store_load(&loaded, b.store, out3, &lo), 0);
	assert_string_equal(loaded.strings[0], "docker.io/library/myrepo:short");
	ib_strarray_dispose(&loaded);
	free(out);
	free(out2);
	free(out3);
	ts_close(&a);
	ts_close(&b);
}

DEFINE_GROUP(transfer_tests,
	cmocka_unit_test(test_roundtrip_oci),
	cmocka_unit_test(test_roundtrip_oci_archive),
	cmocka_unit_test(test_roundtrip_docker),
	cmocka_unit_test(test_save_options))
