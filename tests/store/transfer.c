#include "tests.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

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
	uint64_t size = ib_image_size(img);
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
	/* one image, one size in every store (docker inspect's Size) */
	assert_true(ib_image_size(img) == size);
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

/* The member `name` of the tar `path`, NUL-terminated (free it). */
static char *tar_member(const char *path, const char *name)
{
	struct archive *ar = archive_read_new();
	archive_read_support_format_tar(ar);
	assert_int_equal(archive_read_open_filename(ar, path, 1 << 16), ARCHIVE_OK);
	struct archive_entry *e;
	char *out = NULL;
	while (!out && archive_read_next_header(ar, &e) == ARCHIVE_OK) {
		if (strcmp(archive_entry_pathname(e), name))
			continue;
		size_t n = (size_t)archive_entry_size(e);
		out = calloc(1, n + 1);
		assert_non_null(out);
		assert_int_equal(archive_read_data(ar, out, n), (la_ssize_t)n);
	}
	archive_read_free(ar);
	assert_non_null(out);
	return out;
}

/* docker save writes RepoTags in the familiar form; load maps it back to the same names */
static void test_docker_archive_repo_tags(void **state)
{
	(void)state;
	test_store a, b;
	ts_open(&a, "repotags");
	ts_open(&b, "repotagsb");
	ib_digest id = ts_import(&a, "app:1", "familiar");
	assert_int_equal(ib_store_tag(a.store, "app:1", "user/x:1"), 0);
	assert_int_equal(ib_store_tag(a.store, "app:1", "localhost:5000/y/z:2"), 0);
	assert_int_equal(ib_store_tag(a.store, "app:1", "docker.io/library/w"), 0);
	char *out = ts_path(&a, "archive.tar");
	ib_save_options so = IB_SAVE_OPTIONS_INIT;
	so.format = IB_ARCHIVE_DOCKER;
	const char *names[] = { "app:1", "docker.io/user/x:1", "localhost:5000/y/z:2", "w" };
	assert_int_equal(ib_store_save(a.store, names, 4, out, &so), 0);
	char *manifest = tar_member(out, "manifest.json");
	const char *want[] = { "[\"app:1\"]", "[\"user/x:1\"]", "[\"localhost:5000/y/z:2\"]", "[\"w:latest\"]" };
	for (size_t i = 0; i < 4; i++)
		if (!strstr(manifest, want[i]))
			fail_msg("manifest.json has no RepoTags %s: %s", want[i], manifest);
	assert_null(strstr(manifest, "docker.io/"));
	free(manifest);
	ib_strarray loaded = { NULL, 0 };
	assert_int_equal(ib_store_load(&loaded, b.store, out, NULL), 0);
	assert_int_equal(loaded.count, 4);
	ib_strarray_dispose(&loaded);
	/* sorted as docker's reference store sorts them */
	const char *full[] = { "docker.io/library/app:1", "docker.io/library/w:latest", "docker.io/user/x:1",
			       "localhost:5000/y/z:2" };
	ib_image *img;
	assert_int_equal(ib_store_image_lookup(&img, b.store, "app:1"), 0);
	assert_true(ib_digest_equal(ib_image_id(img), &id));
	assert_int_equal(ib_image_name_count(img), 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(ib_image_name(img, i), full[i]);
	ib_image_free(img);
	free(out);
	ts_close(&a);
	ts_close(&b);
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
	cmocka_unit_test(test_docker_archive_repo_tags),
	cmocka_unit_test(test_save_options))
