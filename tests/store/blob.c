#include "tests.h"

#include <dirent.h>
#include <unistd.h>

static int tmp_entries(test_store *t)
{
	char *p = ts_path(t, "store/tmp");
	DIR *d = opendir(p);
	free(p);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void test_put_get(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "blob");
	ib_digest d, want;
	ib_digest_of(&want, "hello", 5);
	assert_int_equal(ib_store_blob_has(t.store, &want), 0);
	assert_int_equal(ib_store_blob_put(&d, t.store, "hello", 5), 0);
	assert_true(ib_digest_equal(&d, &want));
	assert_int_equal(ib_store_blob_has(t.store, &d), 1);
	uint64_t size;
	assert_int_equal(ib_store_blob_size(&size, t.store, &d), 0);
	assert_int_equal(size, 5);
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_store_blob_read(&b, t.store, &d), 0);
	assert_string_equal(b.ptr, "hello");
	ib_buf_dispose(&b);
	int fd;
	assert_int_equal(ib_store_blob_open(&fd, t.store, &d), 0);
	char buf[8] = { 0 };
	assert_int_equal(read(fd, buf, sizeof buf), 5);
	close(fd);
	/* same content again: deduplicated */
	assert_int_equal(ib_store_blob_put(&d, t.store, "hello", 5), 0);
	assert_int_equal(ts_count_blobs(&t), 1);
	ib_digest none;
	ib_digest_of(&none, "nope", 4);
	ib_assert_error_contains(ib_store_blob_size(&size, t.store, &none), "not found");
	assert_int_equal(ib_error_last()->code, IB_ENOTFOUND);
	assert_int_equal(tmp_entries(&t), 0);
	ts_close(&t);
}

static void test_writer(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "blobw");
	ib_blob_writer *w;
	assert_int_equal(ib_store_blob_writer(&w, t.store), 0);
	assert_int_equal(ib_blob_writer_write(w, "hel", 3), 0);
	/* not visible until committed */
	assert_int_equal(ts_count_blobs(&t), 0);
	assert_int_equal(ib_blob_writer_write(w, "lo", 2), 0);
	ib_digest d, want;
	uint64_t size;
	ib_digest_of(&want, "hello", 5);
	assert_int_equal(ib_blob_writer_commit(w, &d, &size, &want), 0);
	assert_true(ib_digest_equal(&d, &want));
	assert_int_equal(size, 5);

	/* a wrong expected digest stores nothing and names both digests */
	assert_int_equal(ib_store_blob_writer(&w, t.store), 0);
	assert_int_equal(ib_blob_writer_write(w, "other", 5), 0);
	ib_assert_error_contains(ib_blob_writer_commit(w, NULL, NULL, &want), "does not match its digest");
	assert_int_equal(ib_error_last()->code, IB_EINVALID);
	assert_int_equal(ts_count_blobs(&t), 1);

	/* abort leaves nothing behind */
	assert_int_equal(ib_store_blob_writer(&w, t.store), 0);
	assert_int_equal(ib_blob_writer_write(w, "x", 1), 0);
	ib_blob_writer_abort(w);
	ib_blob_writer_abort(NULL);
	assert_int_equal(tmp_entries(&t), 0);
	assert_int_equal(ts_count_blobs(&t), 1);
	ts_close(&t);
}

static void test_open_layout(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "layout");
	char *p = ts_path(&t, "store/oci-layout");
	char *text = ts_read_file(p);
	assert_non_null(strstr(text, "\"imageLayoutVersion\":\"1.0.0\""));
	free(text);
	free(p);
	p = ts_path(&t, "store/index.json");
	text = ts_read_file(p);
	assert_non_null(strstr(text, "\"manifests\":[]"));
	free(text);
	free(p);
	assert_non_null(strstr(ib_store_root(t.store), "store"));
	/* IMAGEBUILD_ROOT is the default root */
	char *alt = ts_path(&t, "alt");
	setenv("IMAGEBUILD_ROOT", alt, 1);
	ib_store *s2;
	assert_int_equal(ib_store_open(&s2, NULL, NULL), 0);
	assert_string_equal(ib_store_root(s2), alt);
	ib_store_free(s2);
	unsetenv("IMAGEBUILD_ROOT");
	/* a bad oci-layout is refused */
	char *bad = ts_path(&t, "alt/oci-layout");
	ts_write_file(bad, "{\"imageLayoutVersion\":\"9\"}");
	ib_assert_error_contains(ib_store_open(&s2, alt, NULL), "unsupported imageLayoutVersion");
	free(bad);
	free(alt);
	ib_store_options o = { 99, 0 };
	ib_assert_error_contains(ib_store_open(&s2, "/nonexistent-x", &o), "version 99");
	ts_close(&t);
}

DEFINE_GROUP(blob_tests,
	cmocka_unit_test(test_put_get),
	cmocka_unit_test(test_writer),
	cmocka_unit_test(test_open_layout))
