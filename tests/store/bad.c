#include "tests.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_corrupt_index(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "badindex");
	ts_import(&t, "x", "x");
	int blobs = ts_count_blobs(&t);
	char *ip = ts_path(&t, "store/index.json");
	ts_write_file(ip, "{\"schemaVersion\":2,\"manifests\":[{\"digest\":");
	ib_image *img;
	ib_assert_error_contains(ib_store_image_lookup(&img, t.store, "x"), "index.json");
	ib_image_list *l;
	ib_assert_error_contains(ib_store_images(&l, t.store), "invalid JSON");
	ib_assert_error_contains(ib_store_tag(t.store, "x", "y"), "index.json");
	/* GC must not take a broken index for an empty one */
	ib_assert_error_contains(ib_store_gc(NULL, t.store, NULL), "nothing was removed");
	assert_int_equal(ts_count_blobs(&t), blobs);
	ib_buf rep = IB_BUF_INIT;
	ib_assert_error_contains(ib_store_fsck(&rep, t.store), "index.json");
	assert_non_null(strstr(rep.ptr, "index.json"));
	ib_buf_dispose(&rep);
	ts_write_file(ip, "{\"manifests\":[{\"digest\":\"sha256:xyz\",\"size\":1}]}");
	ib_assert_error_contains(ib_store_image_lookup(&img, t.store, "x"), "manifests[0]");
	free(ip);
	ts_close(&t);
}

static void test_corrupt_blob(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "badblob");
	ib_digest id = ts_import(&t, "x", "x");
	char hex[IB_DIGEST_HEXLEN + 1], ids[IB_DIGEST_STRLEN];
	ib_digest_hex(hex, &id);
	ib_digest_fmt(ids, &id);
	char rel[128];
	snprintf(rel, sizeof rel, "store/blobs/sha256/%s", hex);
	char *p = ts_path(&t, rel);
	chmod(p, 0644);
	ts_write_file(p, "{\"tampered\":true}");
	ib_buf b = IB_BUF_INIT;
	ib_assert_error_contains(ib_store_blob_read(&b, t.store, &id), "corrupt");
	ib_assert_error_contains(ib_store_blob_read(&b, t.store, &id), ids);
	ib_buf_dispose(&b);
	ib_image *img;
	ib_assert_error_contains(ib_store_image_lookup(&img, t.store, "x"), "corrupt");
	ib_buf rep = IB_BUF_INIT;
	ib_assert_error_contains(ib_store_fsck(&rep, t.store), "problem");
	char want[200];
	snprintf(want, sizeof want, "blob %s is corrupt", ids);
	if (!strstr(rep.ptr, want))
		fail_msg("fsck report lacks `%s`: %s", want, rep.ptr);
	ib_buf_dispose(&rep);
	/* a missing layer is named too */
	unlink(p);
	ib_assert_error_contains(ib_store_fsck(NULL, t.store), "is missing");
	free(p);
	ts_close(&t);
}

/* A tar with the given entries; type 'f' file, 'l' symlink (content = target). */
static void make_raw_tar(const char *path, const char *const *entries)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; entries[i]; i += 3) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, entries[i + 1]);
		if (entries[i][0] == 'l') {
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, entries[i + 2]);
			archive_entry_set_perm(e, 0777);
		} else {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0644);
			archive_entry_set_size(e, (la_int64_t)strlen(entries[i + 2]));
		}
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (entries[i][0] == 'f')
			archive_write_data(a, entries[i + 2], strlen(entries[i + 2]));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

static char *index_of(test_store *t)
{
	char *p = ts_path(t, "store/index.json");
	char *s = ts_read_file(p);
	free(p);
	return s;
}

static void expect_load_error(test_store *t, const char *path, const char *needle)
{
	char *before = index_of(t);
	ib_strarray loaded;
	int rc = ib_store_load(&loaded, t->store, path, NULL);
	if (rc >= 0)
		fail_msg("loading `%s` succeeded", path);
	if (!strstr(ib_error_last()->message, needle))
		fail_msg("load error `%s` lacks `%s`", ib_error_last()->message, needle);
	char *after = index_of(t);
	assert_string_equal(before, after);
	assert_int_equal(ib_store_fsck(NULL, t->store), 0);
	free(before);
	free(after);
}

static char *saved_layout(test_store *src, const char *name)
{
	char *out = ts_path(src, name);
	const char *names[] = { "img" };
	ib_save_options so = IB_SAVE_OPTIONS_INIT;
	assert_int_equal(ib_store_save(src->store, names, 1, out, &so), 0);
	return out;
}

static void test_hostile_load(void **state)
{
	(void)state;
	test_store src, t;
	ts_open(&src, "hostsrc");
	ts_open(&t, "hostile");
	ts_import(&t, "already", "already here");
	ib_digest id = ts_import(&src, "img", "payload");
	char hex[IB_DIGEST_HEXLEN + 1];

	/* paths outside the layout */
	char *tar = ts_path(&src, "evil.tar");
	const char *up[] = { "f", "oci-layout", "{}", "f", "../evil", "x", NULL };
	make_raw_tar(tar, up);
	expect_load_error(&t, tar, "outside the archive");
	char *evil = ts_path(&t, "store/evil");
	assert_false(access(evil, F_OK) == 0);
	free(evil);
	const char *abs[] = { "f", "/tmp/ib-evil-abs", "x", NULL };
	make_raw_tar(tar, abs);
	expect_load_error(&t, tar, "outside the archive");
	assert_false(access("/tmp/ib-evil-abs", F_OK) == 0);
	const char *through[] = { "l", "sub", "/tmp", "f", "sub/ib-evil-through", "x", NULL };
	make_raw_tar(tar, through);
	expect_load_error(&t, tar, "symlink");
	assert_false(access("/tmp/ib-evil-through", F_OK) == 0);
	const char *neither[] = { "f", "x", "y", NULL };
	make_raw_tar(tar, neither);
	expect_load_error(&t, tar, "neither an OCI layout");

	/* wrong size in a descriptor */
	char *layout = saved_layout(&src, "l1");
	char ip[4096];
	snprintf(ip, sizeof ip, "%s/index.json", layout);
	char *index = ts_read_file(ip);
	char *sz = strstr(index, "\"size\":");
	assert_non_null(sz);
	char fixed[4096];
	snprintf(fixed, sizeof fixed, "%.*s\"size\":9%s", (int)(sz - index), index, sz + 7);
	ts_write_file(ip, fixed);
	expect_load_error(&t, layout, "descriptor says");
	ts_write_file(ip, index);
	free(index);

	/* content that does not match its digest */
	ib_image *img;
	assert_int_equal(ib_store_image_lookup(&img, src.store, "img"), 0);
	ib_digest_hex(hex, &ib_image_layer(img, 0)->digest);
	ib_image_free(img);
	char lp[4096];
	snprintf(lp, sizeof lp, "%s/blobs/sha256/%s", layout, hex);
	char *outside = ts_path(&src, "outside-copy");
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", lp, outside);
	assert_int_equal(system(cmd), 0);
	ts_write_file(lp, "not the layer");
	expect_load_error(&t, layout, "does not match");
	/* a blob that is a symlink out of the layout resolves inside it: missing */
	unlink(lp);
	assert_int_equal(symlink(outside, lp), 0);
	expect_load_error(&t, layout, "missing");
	unlink(lp);
	expect_load_error(&t, layout, "missing");
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", outside, lp);
	assert_int_equal(system(cmd), 0);
	if (ib_store_load(NULL, t.store, layout, NULL) < 0)
		fail_msg("load of the repaired layout: %s", ib_error_last()->message);
	free(outside);

	/* a truncated archive */
	char *arch = ts_path(&src, "img.tar");
	const char *names[] = { "img" };
	ib_save_options so = IB_SAVE_OPTIONS_INIT;
	so.format = IB_ARCHIVE_OCI_ARCHIVE;
	assert_int_equal(ib_store_save(src.store, names, 1, arch, &so), 0);
	struct stat st;
	assert_int_equal(stat(arch, &st), 0);
	assert_int_equal(truncate(arch, st.st_size / 2), 0);
	ts_close(&t);
	ts_open(&t, "hostile2");
	expect_load_error(&t, arch, "img.tar");

	/* a docker-archive whose layer is not its diff_id */
	ib_digest_hex(hex, &id);
	char cfgname[100];
	snprintf(cfgname, sizeof cfgname, "%s.json", hex);
	char manifest[400];
	snprintf(manifest, sizeof manifest, "[{\"Config\":\"%s\",\"RepoTags\":[\"d:1\"],\"Layers\":[\"l/layer.tar\"]}]", cfgname);
	ib_buf cfg = IB_BUF_INIT;
	assert_int_equal(ib_store_blob_read(&cfg, src.store, &id), 0);
	const char *dock[] = { "f", "manifest.json", manifest, "f", cfgname, cfg.ptr, "f", "l/layer.tar", "garbage", NULL };
	make_raw_tar(tar, dock);
	expect_load_error(&t, tar, "does not match");
	ib_buf_dispose(&cfg);
	const char *dock2[] = { "f", "manifest.json", "{\"not\":\"a list\"}", NULL };
	make_raw_tar(tar, dock2);
	expect_load_error(&t, tar, "manifest.json");

	free(arch);
	free(layout);
	free(tar);
	ts_close(&src);
	ts_close(&t);
}

DEFINE_GROUP(bad_tests,
	cmocka_unit_test(test_corrupt_index),
	cmocka_unit_test(test_corrupt_blob),
	cmocka_unit_test(test_hostile_load))
