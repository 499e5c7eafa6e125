#include <archive.h>
#include <archive_entry.h>
#include "tests.h"
#include <sys/stat.h>

#include <unistd.h>

static ib_digest commit_two_layers(test_store *t, const char *name, ib_digest *manifest)
{
	ib_layer layers[2];
	memset(layers, 0, sizeof layers);
	layers[0].digest = ts_layer(t, "one");
	layers[1].digest = ts_layer(t, "two");
	ib_image_config *c;
	assert_int_equal(ib_image_config_new(&c), 0);
	ib_history_entry h[] = {
		{ IB_HISTORY_ENTRY_VERSION, "2024-01-01T00:00:00Z", "ADD one /", NULL, NULL, 0 },
		{ IB_HISTORY_ENTRY_VERSION, "2024-01-01T00:00:01Z", "ENV A=1", NULL, NULL, 1 },
		{ IB_HISTORY_ENTRY_VERSION, "2024-01-01T00:00:02Z", "RUN two", "me", "hi", 0 },
	};
	for (int i = 0; i < 3; i++)
		assert_int_equal(ib_image_config_history_add(c, &h[i]), 0);
	assert_int_equal(ib_image_config_diff_id_add(c, &layers[0].digest), 0);
	assert_int_equal(ib_image_config_diff_id_add(c, &layers[1].digest), 0);
	assert_int_equal(ib_image_config_env_set(c, "A", "1"), 0);
	ib_image_commit_options o = IB_IMAGE_COMMIT_OPTIONS_INIT;
	o.name = name;
	ib_digest id;
	if (ib_store_image_commit(&id, manifest, t->store, c, layers, 2, &o) < 0)
		fail_msg("commit: %s", ib_error_last()->message);
	ib_image_config_free(c);
	return id;
}

static void test_commit_lookup(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "image");
	ib_digest md;
	ib_digest id = commit_two_layers(&t, "app:1", &md);
	ib_image *img;
	char ids[IB_DIGEST_STRLEN], mds[IB_DIGEST_STRLEN], hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_fmt(ids, &id);
	ib_digest_fmt(mds, &md);
	ib_digest_hex(hex, &id);
	char shortid[16];
	snprintf(shortid, sizeof shortid, "%.12s", hex);
	const char *queries[] = { "app:1", "docker.io/library/app:1", ids, mds, shortid, hex };
	for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
		if (ib_store_image_lookup(&img, t.store, queries[i]) < 0)
			fail_msg("lookup `%s`: %s", queries[i], ib_error_last()->message);
		assert_true(ib_digest_equal(ib_image_id(img), &id));
		assert_true(ib_digest_equal(ib_image_manifest_digest(img), &md));
		ib_image_free(img);
	}
	char byd[200];
	snprintf(byd, sizeof byd, "app@%s", mds);
	assert_int_equal(ib_store_image_lookup(&img, t.store, byd), 0);
	assert_int_equal(ib_image_layer_count(img), 2);
	assert_string_equal(ib_image_layer(img, 0)->media_type, IB_MEDIA_TYPE_OCI_LAYER);
	assert_true(ib_digest_equal(&ib_image_layer(img, 1)->digest, &ib_image_layer(img, 1)->diff_id));
	assert_int_equal(ib_image_name_count(img), 1);
	assert_string_equal(ib_image_name(img, 0), "docker.io/library/app:1");
	assert_string_equal(ib_image_config_env_get(ib_image_config_of(img), "A"), "1");
	assert_true(ib_image_size(img) == ib_image_layer(img, 0)->size + ib_image_layer(img, 1)->size);
	/* history: newest first, layers matched to non-empty entries */
	assert_int_equal(ib_image_history_count(img), 3);
	ib_image_history_item it = IB_IMAGE_HISTORY_ITEM_INIT;
	ib_image_history_item unversioned;
	memset(&unversioned, 0, sizeof unversioned);
	ib_assert_error_contains(ib_image_history_get(&unversioned, img, 0), "ib_image_history_item version 0");
	assert_int_equal(ib_image_history_get(&it, img, 0), 0);
	assert_string_equal(it.created_by, "RUN two");
	assert_int_equal(it.has_layer, 1);
	assert_true(ib_digest_equal(&it.layer, &ib_image_layer(img, 1)->diff_id));
	assert_true(it.size == ib_image_layer(img, 1)->size);
	assert_int_equal(ib_image_history_get(&it, img, 1), 0);
	assert_int_equal(it.empty_layer, 1);
	assert_int_equal(it.size, 0);
	assert_int_equal(ib_image_history_get(&it, img, 2), 0);
	assert_string_equal(it.created_by, "ADD one /");
	assert_true(ib_digest_equal(&it.layer, &ib_image_layer(img, 0)->diff_id));
	ib_buf j = IB_BUF_INIT;
	assert_int_equal(ib_image_inspect_json(&j, img), 0);
	assert_non_null(strstr(j.ptr, "\"app:1\""));
	assert_non_null(strstr(j.ptr, ids));
	ib_buf_dispose(&j);
	ib_image_free(img);

	ib_assert_error_contains(ib_store_image_lookup(&img, t.store, "nothere"), "No such image: nothere");
	assert_int_equal(ib_error_last()->code, IB_ENOTFOUND);
	ib_assert_error_contains(ib_store_image_lookup(&img, t.store, "ffffffffffff"), "No such image");
	ts_close(&t);
}

static void test_commit_errors(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "commit");
	ib_image_config *c;
	assert_int_equal(ib_image_config_new(&c), 0);
	ib_layer l;
	memset(&l, 0, sizeof l);
	ib_digest_of(&l.digest, "missing", 7);
	ib_assert_error_contains(ib_store_image_commit(NULL, NULL, t.store, c, &l, 1, NULL), "1 layers but the config has 0");
	assert_int_equal(ib_image_config_diff_id_add(c, &l.digest), 0);
	ib_assert_error_contains(ib_store_image_commit(NULL, NULL, t.store, c, &l, 1, NULL), "not found");
	l.digest = ts_layer(&t, "x");
	ib_assert_error_contains(ib_store_image_commit(NULL, NULL, t.store, c, &l, 1, NULL), "does not match the config's diff_id");
	ib_image_commit_options o = IB_IMAGE_COMMIT_OPTIONS_INIT;
	o.name = "Bad:Name";
	ib_assert_error_contains(ib_store_image_commit(NULL, NULL, t.store, c, NULL, 0, &o), "must be lowercase");
	ib_image_config_free(c);
	ts_close(&t);
}

/* history shows a layer's size, not its compressed blob's (as docker history) */
static void test_history_uncompressed_sizes(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "histsize");
	char *plain = ts_path(&t, "l.tar"), *gz = ts_path(&t, "l.tar.gz");
	char big[20000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	const char *files[] = { "f", big, NULL };
	ts_make_tar(plain, files, 0);
	ts_make_tar(gz, files, 1);
	struct stat ps, gs;
	stat(plain, &ps);
	stat(gz, &gs);
	ib_digest diff_id, blob;
	uint64_t unused;
	char *pd = ts_read_file(plain), *gd = ts_read_file(gz);
	ib_digest_of(&diff_id, pd, (size_t)ps.st_size);
	assert_int_equal(ib_store_blob_put(&blob, t.store, gd, (size_t)gs.st_size), 0);
	assert_int_equal(ib_store_layer_uncompress(t.store, &blob, IB_MEDIA_TYPE_DOCKER_LAYER_GZIP, &diff_id), 0);
	assert_int_equal(ib_store_blob_size(&unused, t.store, &diff_id), 0);
	ib_image_config *c;
	assert_int_equal(ib_image_config_new(&c), 0);
	ib_image_config_diff_id_add(c, &diff_id);
	ib_layer l = { blob, (uint64_t)gs.st_size, IB_MEDIA_TYPE_DOCKER_LAYER_GZIP, diff_id };
	ib_image_commit_options co = IB_IMAGE_COMMIT_OPTIONS_INIT;
	co.name = "gzipped";
	assert_int_equal(ib_store_image_commit(NULL, NULL, t.store, c, &l, 1, &co), 0);
	ib_image *img;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "gzipped"), 0);
	ib_image_history_item it = IB_IMAGE_HISTORY_ITEM_INIT;
	assert_int_equal(ib_image_history_get(&it, img, 0), 0);
	assert_int_equal(it.size, (uint64_t)ps.st_size);
	assert_true(it.size > (uint64_t)gs.st_size);
	ib_image_free(img);
	ib_image_config_free(c);
	free(pd);
	free(gd);
	free(plain);
	free(gz);
	ts_close(&t);
}

/* docker history's layer size: file content (a hardlink group once) and symlink targets */
static void test_layer_content_size(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "contentsize");
	static char tar[16384];
	size_t used = 0;
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_memory(a, tar, sizeof tar, &used), ARCHIVE_OK);
	struct { const char *path; int type; const char *data, *link; } es[] = {
		{ "d", AE_IFDIR, NULL, NULL },
		{ "d/a", AE_IFREG, "12345", NULL },
		{ "d/b", AE_IFREG, NULL, "d/a" },  /* a hardlink: its header says 0 */
		{ "s", AE_IFLNK, NULL, "d/a" },    /* 3 bytes of target */
		{ "f", AE_IFIFO, NULL, NULL },
		{ ".wh.gone", AE_IFREG, "", NULL },
	};
	for (size_t i = 0; i < sizeof es / sizeof es[0]; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, es[i].path);
		archive_entry_set_filetype(e, (unsigned)es[i].type);
		archive_entry_set_perm(e, 0644);
		if (es[i].type == AE_IFLNK)
			archive_entry_set_symlink(e, es[i].link);
		else if (es[i].link)
			archive_entry_set_hardlink(e, es[i].link);
		archive_entry_set_size(e, es[i].data ? (la_int64_t)strlen(es[i].data) : 0);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (es[i].data && *es[i].data)
			archive_write_data(a, es[i].data, strlen(es[i].data));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	ib_digest d;
	assert_int_equal(ib_store_blob_put(&d, t.store, tar, used), 0);
	uint64_t size = 99;
	assert_int_equal(ib_store_layer_content_size(&size, t.store, &d), 0);
	assert_int_equal(size, 5 + 3);
	/* not a tar: an error naming the layer */
	assert_int_equal(ib_store_blob_put(&d, t.store, "not a tar at all", 16), 0);
	ib_assert_error_contains(ib_store_layer_content_size(&size, t.store, &d), "layer sha256:");
	assert_int_equal(size, 0);
	ts_close(&t);
}

static void test_names(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "names");
	ib_digest a = ts_import(&t, "a", "A");
	ib_digest b = ts_import(&t, "b", "B");
	assert_false(ib_digest_equal(&a, &b));
	assert_int_equal(ib_store_tag(t.store, "a", "quay.io/x/a:v1"), 0);
	ib_image *img;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "quay.io/x/a:v1"), 0);
	assert_true(ib_digest_equal(ib_image_id(img), &a));
	assert_int_equal(ib_image_name_count(img), 2);
	ib_image_free(img);
	ib_assert_error_contains(ib_store_tag(t.store, "nothere", "c"), "No such image");
	ib_assert_error_contains(ib_store_tag(t.store, "a", "c@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
				 "digest reference");

	/* moving a name leaves the old image untagged (dangling) */
	assert_int_equal(ib_store_tag(t.store, "a", "b"), 0);
	ib_image_list *list;
	assert_int_equal(ib_store_images(&list, t.store), 0);
	assert_int_equal(ib_image_list_count(list), 4);
	const ib_image_summary *last = ib_image_list_get(list, 3);
	assert_null(last->name);
	assert_true(ib_digest_equal(&last->id, &b));
	assert_string_equal(ib_image_list_get(list, 0)->name, "docker.io/library/a:latest");
	assert_non_null(ib_image_list_get(list, 0)->created);
	assert_true(ib_image_list_get(list, 0)->size > 0);
	ib_image_list_free(list);

	/* rmi by id with several names needs force */
	char ids[IB_DIGEST_STRLEN];
	ib_digest_fmt(ids, &a);
	ib_assert_error_contains(ib_store_image_remove(t.store, ids, 0, NULL), "referenced in multiple repositories");
	/* rmi by name only untags while other names remain */
	ib_buf rep = IB_BUF_INIT;
	assert_int_equal(ib_store_image_remove(t.store, "b", 0, &rep), 0);
	assert_string_equal(rep.ptr, "Untagged: b:latest\n");
	ib_buf_clear(&rep);
	assert_int_equal(ib_store_untag(t.store, "quay.io/x/a:v1"), 0);
	ib_assert_error_contains(ib_store_untag(t.store, "quay.io/x/a:v1"), "No such image");
	assert_int_equal(ib_store_image_remove(t.store, "a", 0, &rep), 0);
	assert_non_null(strstr(rep.ptr, "Untagged: a:latest\nDeleted: sha256:"));
	ib_buf_dispose(&rep);
	/* (by its full name: "a" alone is also a valid short id, which the id of b may start with) */
	ib_assert_error_contains(ib_store_image_lookup(&img, t.store, "docker.io/library/a:latest"), "No such image");
	/* the dangling b is still there, by id */
	ib_digest_fmt(ids, &b);
	assert_int_equal(ib_store_image_lookup(&img, t.store, ids), 0);
	ib_image_free(img);
	ib_store_gc_options go = IB_STORE_GC_OPTIONS_INIT;
	go.prune_dangling = 1;
	ib_store_gc_stats st = IB_STORE_GC_STATS_INIT;
	assert_int_equal(ib_store_gc(&st, t.store, &go), 0);
	assert_int_equal(st.images_removed, 1);
	assert_int_equal(ts_count_blobs(&t), 0);
	ts_close(&t);
}

/* names sorted as docker's reference store sorts them; repository digests recorded, kept, dropped */
static void test_sorted_names_repo_digests(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "repodigests");
	ib_digest a = ts_import(&t, "zz:9", "A");
	const char *tags[] = { "yy:1", "quay.io/q/x:1", "mm:2", "bb:1", "docker.io/user/r:1", "aa:3" };
	for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
		assert_int_equal(ib_store_tag(t.store, "zz:9", tags[i]), 0);
	const char *sorted[] = { "docker.io/library/aa:3", "docker.io/library/bb:1", "docker.io/library/mm:2",
				 "docker.io/library/yy:1", "docker.io/library/zz:9", "docker.io/user/r:1", "quay.io/q/x:1" };
	ib_image *img;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "zz:9"), 0);
	assert_int_equal(ib_image_name_count(img), 7);
	for (size_t i = 0; i < 7; i++)
		assert_string_equal(ib_image_name(img, i), sorted[i]);
	assert_int_equal(ib_image_repo_digest_count(img), 0);
	assert_null(ib_image_repo_digest(img, 0));
	ib_image_free(img);

	const char *d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
	const char *d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	char r1[200], r2[200], r3[200];
	snprintf(r1, sizeof r1, "127.0.0.1:5000/x@%s", d1);
	snprintf(r2, sizeof r2, "busybox@%s", d2);
	snprintf(r3, sizeof r3, "docker.io/library/busybox@%s", d2);
	assert_int_equal(ib_store_repo_digest_add(t.store, "zz:9", r2), 0);
	assert_int_equal(ib_store_repo_digest_add(t.store, "mm:2", r1), 0);
	assert_int_equal(ib_store_repo_digest_add(t.store, "yy:1", r3), 0); /* the same, normalised */
	ib_assert_error_contains(ib_store_repo_digest_add(t.store, "zz:9", "busybox:1"), "not a repository digest");
	ib_assert_error_contains(ib_store_repo_digest_add(t.store, "nothere", r1), "No such image");
	assert_int_equal(ib_store_image_lookup(&img, t.store, "bb:1"), 0);
	assert_int_equal(ib_image_repo_digest_count(img), 2);
	assert_string_equal(ib_image_repo_digest(img, 0), r1);
	assert_string_equal(ib_image_repo_digest(img, 1), r3);
	ib_buf js = IB_BUF_INIT;
	assert_int_equal(ib_image_inspect_json(&js, img), 0);
	char want[300];
	snprintf(want, sizeof want, "\"RepoDigests\": [\n    \"127.0.0.1:5000/x@%s\",\n    \"busybox@%s\"\n  ]", d1, d2);
	if (!strstr(js.ptr, want))
		fail_msg("inspect: no %s in %s", want, js.ptr);
	ib_buf_dispose(&js);
	ib_image_free(img);
	/* a repository digest finds the image */
	assert_int_equal(ib_store_image_lookup(&img, t.store, r1), 0);
	assert_true(ib_digest_equal(ib_image_id(img), &a));
	ib_image_free(img);
	/* untagging the names whose entries hold them keeps them, while the image stays */
	assert_int_equal(ib_store_untag(t.store, "zz:9"), 0);
	assert_int_equal(ib_store_untag(t.store, "mm:2"), 0);
	assert_int_equal(ib_store_tag(t.store, "aa:3", "yy:1"), 0); /* again: replaces its entry */
	ib_digest other = ts_import(&t, "other", "B");
	assert_int_equal(ib_store_tag(t.store, "other", "bb:1"), 0); /* a name moves away */
	assert_int_equal(ib_store_image_lookup(&img, t.store, "aa:3"), 0);
	assert_int_equal(ib_image_name_count(img), 4);
	assert_int_equal(ib_image_repo_digest_count(img), 2);
	ib_image_free(img);
	assert_int_equal(ib_store_image_lookup(&img, t.store, "other"), 0);
	assert_true(ib_digest_equal(ib_image_id(img), &other));
	assert_int_equal(ib_image_repo_digest_count(img), 0);
	ib_image_free(img);
	/* removing the image drops them (docker rmi reports them) */
	char ids[IB_DIGEST_STRLEN];
	ib_digest_fmt(ids, &a);
	ib_buf rep = IB_BUF_INIT;
	assert_int_equal(ib_store_image_remove(t.store, ids, IB_STORE_REMOVE_FORCE, &rep), 0);
	snprintf(want, sizeof want, "Untagged: busybox@%s\n", d2);
	if (!strstr(rep.ptr, want) || !strstr(rep.ptr, "Untagged: 127.0.0.1:5000/x@"))
		fail_msg("rmi report: %s", rep.ptr);
	ib_buf_dispose(&rep);
	ib_assert_error_contains(ib_store_image_lookup(&img, t.store, r1), "No such image");
	/* the same image again: no repository digest of the removed one comes back */
	assert_int_equal(ib_store_tag(t.store, "other", "zz:9"), 0);
	assert_true(ib_digest_equal(&a, &a));
	ts_close(&t);
}

static void test_ambiguous(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "ambig");
	/* import until two ids share a first hex digit */
	char seen[16] = { 0 };
	char content[16];
	for (int i = 0; i < 17; i++) {
		snprintf(content, sizeof content, "c%d", i);
		ib_digest id = ts_import(&t, NULL, content);
		char hex[IB_DIGEST_HEXLEN + 1];
		ib_digest_hex(hex, &id);
		int k = hex[0] <= '9' ? hex[0] - '0' : hex[0] - 'a' + 10;
		if (seen[k]) {
			char q[2] = { hex[0], 0 };
			ib_image *img;
			ib_assert_error_contains(ib_store_image_lookup(&img, t.store, q), "ambiguous");
			break;
		}
		seen[k] = 1;
	}
	ts_close(&t);
}

static void test_import_compressed(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "importgz");
	char *gz = ts_path(&t, "in.tar.gz"), *plain = ts_path(&t, "in.tar");
	const char *files[] = { "bin/x", "content", "etc/y", "more", NULL };
	ts_make_tar(gz, files, 1);
	ts_make_tar(plain, files, 0);
	ib_import_options o = IB_IMPORT_OPTIONS_INIT;
	ib_image_config *c;
	assert_int_equal(ib_image_config_new(&c), 0);
	const char *cmd[] = { "/bin/x" };
	assert_int_equal(ib_image_config_list_set(c, IB_CONFIG_CMD, cmd, 1), 0);
	o.config = c;
	o.name = "imported";
	o.comment = "from a test";
	ib_digest id;
	assert_int_equal(ib_store_import(&id, t.store, gz, &o), 0);
	ib_image *img;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "imported"), 0);
	/* the layer is stored uncompressed: the plain tar's digest */
	ib_digest want;
	uint64_t size;
	char *data = ts_read_file(plain);
	FILE *f = fopen(plain, "rb");
	fseek(f, 0, SEEK_END);
	size = (uint64_t)ftell(f);
	fclose(f);
	ib_digest_of(&want, data, (size_t)size);
	free(data);
	assert_true(ib_digest_equal(&ib_image_layer(img, 0)->digest, &want));
	assert_true(ib_digest_equal(&ib_image_layer(img, 0)->diff_id, &want));
	assert_string_equal(ib_image_config_list_get(ib_image_config_of(img), IB_CONFIG_CMD, 0), "/bin/x");
	ib_image_history_item it = IB_IMAGE_HISTORY_ITEM_INIT;
	assert_int_equal(ib_image_history_get(&it, img, 0), 0);
	assert_string_equal(it.comment, "from a test");
	ib_image_free(img);
	ib_image_config_free(c);
	/* not a tar */
	char *junk = ts_path(&t, "junk");
	ts_write_file(junk, "this is not a tarball at all, just some text that is long enough");
	ib_assert_error_contains(ib_store_import(NULL, t.store, junk, NULL), "junk");
	ib_assert_error_contains(ib_store_import(NULL, t.store, "/nonexistent/x.tar", NULL), "/nonexistent/x.tar");
	free(junk);
	free(gz);
	free(plain);
	ts_close(&t);
}

static void test_tag_manifest(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "tagman");
	/* a Docker schema 2 manifest, as a pull would store it */
	ib_digest layer = ts_layer(&t, "docker");
	uint64_t lsize;
	assert_int_equal(ib_store_blob_size(&lsize, t.store, &layer), 0);
	char ls[IB_DIGEST_STRLEN], cs[IB_DIGEST_STRLEN], ms[IB_DIGEST_STRLEN];
	ib_digest_fmt(ls, &layer);
	char cfg[512];
	snprintf(cfg, sizeof cfg, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"]},"
				  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}", ls);
	ib_digest cd, md;
	assert_int_equal(ib_store_blob_put(&cd, t.store, cfg, strlen(cfg)), 0);
	ib_digest_fmt(cs, &cd);
	char man[1024];
	snprintf(man, sizeof man, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"size\":%zu,"
				  "\"digest\":\"%s\"},\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar\","
				  "\"size\":%llu,\"digest\":\"%s\"}]}", IB_MEDIA_TYPE_DOCKER_MANIFEST, IB_MEDIA_TYPE_DOCKER_CONFIG,
		 strlen(cfg), cs, (unsigned long long)lsize, ls);
	assert_int_equal(ib_store_blob_put(&md, t.store, man, strlen(man)), 0);
	ib_digest_fmt(ms, &md);
	/* and a manifest list naming it */
	char list[1024];
	snprintf(list, sizeof list, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\",\"size\":%zu,"
				    "\"digest\":\"%s\",\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
				    "{\"mediaType\":\"%s\",\"size\":%zu,\"digest\":\"%s\",\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}}]}",
		 IB_MEDIA_TYPE_DOCKER_LIST, IB_MEDIA_TYPE_DOCKER_MANIFEST, strlen(man), ms, IB_MEDIA_TYPE_DOCKER_MANIFEST,
		 strlen(man), ms);
	ib_digest ld;
	assert_int_equal(ib_store_blob_put(&ld, t.store, list, strlen(list)), 0);
	assert_int_equal(ib_store_tag_manifest(t.store, "pulled:1", &md), 0);
	assert_int_equal(ib_store_tag_manifest(t.store, "multi", &ld), 0);
	ib_image *img;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "multi"), 0);
	assert_true(ib_digest_equal(ib_image_id(img), &cd));
	assert_true(ib_digest_equal(ib_image_manifest_digest(img), &md));
	assert_string_equal(ib_image_manifest_media_type(img), IB_MEDIA_TYPE_DOCKER_MANIFEST);
	assert_int_equal(ib_image_name_count(img), 2);
	assert_string_equal(ib_image_config_list_get(ib_image_config_of(img), IB_CONFIG_CMD, 0), "sh");
	/* a new image on top of it (as build/commit do) */
	ib_image_config *c;
	assert_int_equal(ib_image_config_dup(&c, ib_image_config_of(img)), 0);
	ib_layer layers[2] = { *ib_image_layer(img, 0), { ts_layer(&t, "top"), 0, NULL, { { 0 } } } };
	assert_int_equal(ib_image_config_diff_id_add(c, &layers[1].digest), 0);
	ib_image_commit_options o = IB_IMAGE_COMMIT_OPTIONS_INIT;
	o.name = "child";
	assert_int_equal(ib_store_image_commit(NULL, NULL, t.store, c, layers, 2, &o), 0);
	ib_image_config_free(c);
	ib_image_free(img);
	assert_int_equal(ib_store_image_lookup(&img, t.store, "child"), 0);
	assert_int_equal(ib_image_layer_count(img), 2);
	assert_string_equal(ib_image_layer(img, 0)->media_type, IB_MEDIA_TYPE_OCI_LAYER);
	ib_image_free(img);
	/* a manifest naming a missing blob is refused */
	char bad[1024];
	snprintf(bad, sizeof bad, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"size\":3,"
				  "\"digest\":\"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"},\"layers\":[]}",
		 IB_MEDIA_TYPE_OCI_MANIFEST, IB_MEDIA_TYPE_OCI_CONFIG);
	ib_digest bd;
	assert_int_equal(ib_store_blob_put(&bd, t.store, bad, strlen(bad)), 0);
	ib_assert_error_contains(ib_store_tag_manifest(t.store, "bad", &bd), "sha256:0123456789abcdef");
	assert_int_equal(ib_error_last()->code, IB_ENOTFOUND);
	ts_close(&t);
}

static void test_pins(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "pins");
	ib_digest id = ts_import(&t, "base", "pinned");
	const char *cid = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	ib_container_record rec = { IB_CONTAINER_RECORD_VERSION, cid, "web", id, "base", "sh", "created", NULL,
				    "{\"snapshot\":\"x\"}" };
	assert_int_equal(ib_store_container_put(t.store, &rec), 0);
	ib_container_record *got;
	assert_int_equal(ib_store_container_get(&got, t.store, "web"), 0);
	assert_string_equal(got->id, cid);
	assert_true(ib_digest_equal(&got->image_id, &id));
	assert_string_equal(got->extra_json, "{\"snapshot\":\"x\"}");
	assert_non_null(got->created);
	ib_container_record_free(got);
	assert_int_equal(ib_store_container_get(&got, t.store, "0011"), 0);
	ib_container_record_free(got);
	ib_assert_error_contains(ib_store_container_get(&got, t.store, "nope"), "No such container");
	/* the list: opaque, count/get/free */
	ib_container_list *cl = NULL;
	assert_int_equal(ib_store_container_list(&cl, t.store), 0);
	assert_int_equal(ib_container_list_count(cl), 1);
	assert_string_equal(ib_container_list_get(cl, 0)->name, "web");
	assert_null(ib_container_list_get(cl, 1));
	ib_container_list_free(cl);
	ib_buf dir = IB_BUF_INIT;
	assert_int_equal(ib_store_container_dir(&dir, t.store, cid), 0);
	assert_non_null(strstr(dir.ptr, "/containers/0011"));
	ib_buf_dispose(&dir);
	rec.id = "../../etc";
	ib_assert_error_contains(ib_store_container_put(t.store, &rec), "not 64 hex digits");

	/* a used image cannot be removed without force, and GC keeps its blobs */
	ib_assert_error_contains(ib_store_image_remove(t.store, "base", 0, NULL), "is using its referenced image");
	assert_int_equal(ib_store_untag(t.store, "base"), 0);
	int before = ts_count_blobs(&t);
	assert_int_equal(ib_store_gc(NULL, t.store, NULL), 0);
	assert_int_equal(ts_count_blobs(&t), before - 1); /* the manifest went; config and layer stay */
	assert_int_equal(ib_store_fsck(NULL, t.store), 0);

	/* cache entries */
	const char *key = "aa00000000000000000000000000000000000000000000000000000000000000";
	ib_digest layer = ts_layer(&t, "cached"), l2, c2;
	int has;
	assert_int_equal(ib_store_cache_put(t.store, key, &layer, &id), 0);
	assert_int_equal(ib_store_cache_get(&l2, &has, &c2, t.store, key), 0);
	assert_int_equal(has, 1);
	assert_true(ib_digest_equal(&l2, &layer));
	assert_true(ib_digest_equal(&c2, &id));
	const char *key2 = "bb00000000000000000000000000000000000000000000000000000000000000";
	assert_int_equal(ib_store_cache_put(t.store, key2, NULL, &id), 0);
	assert_int_equal(ib_store_cache_get(NULL, &has, &c2, t.store, key2), 0);
	assert_int_equal(has, 0);
	ib_assert_error_contains(ib_store_cache_get(NULL, NULL, &c2, t.store,
						    "cc00000000000000000000000000000000000000000000000000000000000000"),
				 "no cache entry");
	ib_digest missing;
	ib_digest_of(&missing, "m", 1);
	ib_assert_error_contains(ib_store_cache_put(t.store, key, &missing, &id), "is not in the store");
	before = ts_count_blobs(&t);
	assert_int_equal(ib_store_gc(NULL, t.store, NULL), 0);
	assert_int_equal(ts_count_blobs(&t), before);

	/* without pins everything goes */
	assert_int_equal(ib_store_container_remove(t.store, cid), 0);
	ib_container_list *list;
	assert_int_equal(ib_store_container_list(&list, t.store), 0);
	assert_int_equal(ib_container_list_count(list), 0);
	assert_null(ib_container_list_get(list, 0));
	ib_container_list_free(list);
	assert_int_equal(ib_store_cache_remove(t.store, key), 0);
	assert_int_equal(ib_store_cache_clear(t.store), 0);
	assert_int_equal(ib_store_gc(NULL, t.store, NULL), 0);
	assert_int_equal(ts_count_blobs(&t), 0);
	ts_close(&t);
}

/* The root is 0700, new or opened (a 0755 one from before is tightened); blobs are behind it. */
static void test_root_private(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "store-private");
	struct stat st;
	char *root = ts_path(&t, "store");
	assert_int_equal(stat(root, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	ts_import(&t, "secret", "0600 file");
	ib_store_free(t.store);
	assert_int_equal(chmod(root, 0755), 0);
	assert_int_equal(ib_store_open(&t.store, root, NULL), 0);
	assert_int_equal(stat(root, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	ib_image *img;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "secret"), 0);
	ib_image_free(img);
	/* a root inside a missing directory: the parents are made too, the root 0700 */
	ib_store_free(t.store);
	char *deep = ts_path(&t, "a/b/store");
	assert_int_equal(ib_store_open(&t.store, deep, NULL), 0);
	assert_int_equal(stat(deep, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	free(deep);
	free(root);
	ts_close(&t);
}

/* import takes SOURCE_DATE_EPOCH from its options (version 2), never from the environment */
static void test_import_source_date_epoch(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "import-sde");
	char *tar = ts_path(&t, "in.tar");
	const char *files[] = { "etc/hello", "x", NULL };
	ts_make_tar(tar, files, 0);
	ib_digest id;
	ib_image *img = NULL;
	setenv("SOURCE_DATE_EPOCH", "86400", 1);
	assert_int_equal(ib_store_import(&id, t.store, tar, NULL), 0);
	unsetenv("SOURCE_DATE_EPOCH");
	char hex[IB_DIGEST_STRLEN];
	ib_digest_fmt(hex, &id);
	assert_int_equal(ib_store_image_lookup(&img, t.store, hex), 0);
	assert_string_not_equal(ib_image_config_get(ib_image_config_of(img), IB_CONFIG_CREATED), "1970-01-02T00:00:00Z");
	ib_image_free(img);
	ib_import_options o = IB_IMPORT_OPTIONS_INIT;
	o.use_source_date_epoch = 1;
	o.source_date_epoch = 86400;
	assert_int_equal(ib_store_import(&id, t.store, tar, &o), 0);
	ib_digest_fmt(hex, &id);
	assert_int_equal(ib_store_image_lookup(&img, t.store, hex), 0);
	const ib_image_config *c = ib_image_config_of(img);
	assert_string_equal(ib_image_config_get(c, IB_CONFIG_CREATED), "1970-01-02T00:00:00Z");
	ib_history_entry h = IB_HISTORY_ENTRY_INIT;
	assert_int_equal(ib_image_config_history_get(&h, c, 0), 0);
	assert_string_equal(h.created, "1970-01-02T00:00:00Z");
	ib_image_free(img);
	/* a version 2 struct ends before `callbacks`: what lies after it is not read */
	ib_import_options v2;
	memset(&v2, 0x5a, sizeof v2);
	assert_int_equal(ib_import_options_init(&v2, 2), 0);
	v2.use_source_date_epoch = 1;
	v2.source_date_epoch = 172800;
	assert_int_equal(ib_store_import(&id, t.store, tar, &v2), 0);
	ib_digest_fmt(hex, &id);
	assert_int_equal(ib_store_image_lookup(&img, t.store, hex), 0);
	assert_string_equal(ib_image_config_get(ib_image_config_of(img), IB_CONFIG_CREATED), "1970-01-03T00:00:00Z");
	ib_image_free(img);
	/* version 1 had no value to give: asking for it is refused, not read from the environment */
	ib_import_options v1;
	assert_int_equal(ib_import_options_init(&v1, 1), 0);
	v1.use_source_date_epoch = 1;
	assert_int_equal(ib_store_import(&id, t.store, tar, &v1), IB_EUNSUPPORTED);
	o.source_date_epoch = -1;
	ib_assert_error_contains(ib_store_import(&id, t.store, tar, &o), "negative");
	free(tar);
	ts_close(&t);
}

/* Version 2 of the commit options: the manifest's annotations; version 1 reads no further. */
static void test_commit_annotations(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "image-annotations");
	ib_layer layer;
	memset(&layer, 0, sizeof layer);
	layer.digest = ts_layer(&t, "one");
	ib_image_config *c;
	assert_int_equal(ib_image_config_new(&c), 0);
	assert_int_equal(ib_image_config_diff_id_add(c, &layer.digest), 0);
	const char *an[] = { "org.example.a=1", "org.example.b=x=y", "org.example.a=2", NULL };
	ib_image_commit_options o = IB_IMAGE_COMMIT_OPTIONS_INIT;
	o.annotations = an;
	ib_digest md;
	if (ib_store_image_commit(NULL, &md, t.store, c, &layer, 1, &o) < 0)
		fail_msg("commit: %s", ib_error_last()->message);
	ib_buf raw = IB_BUF_INIT;
	assert_int_equal(ib_store_blob_read(&raw, t.store, &md), 0);
	char *text = strndup(raw.ptr, raw.size);
	assert_non_null(strstr(text, "\"annotations\":{"));
	assert_non_null(strstr(text, "\"org.example.a\":\"2\""));
	assert_non_null(strstr(text, "\"org.example.b\":\"x=y\""));
	free(text);
	ib_buf_dispose(&raw);
	/* a version 1 struct followed by garbage: no annotations read */
	union { ib_image_commit_options o; unsigned char b[sizeof(ib_image_commit_options)]; } v1;
	memset(v1.b, 0xff, sizeof v1.b);
	assert_int_equal(ib_image_commit_options_init(&v1.o, 1), 0);
	assert_int_equal(v1.o.version, 1u);
	for (size_t i = offsetof(ib_image_commit_options, annotations); i < sizeof v1.b; i++)
		assert_int_equal(v1.b[i], 0xff);
	if (ib_store_image_commit(NULL, &md, t.store, c, &layer, 1, &v1.o) < 0)
		fail_msg("commit v1: %s", ib_error_last()->message);
	assert_int_equal(ib_store_blob_read(&raw, t.store, &md), 0);
	text = strndup(raw.ptr, raw.size);
	assert_null(strstr(text, "annotations"));
	free(text);
	ib_buf_dispose(&raw);
	const char *bad[] = { "novalue", NULL };
	o.annotations = bad;
	ib_assert_error_contains(ib_store_image_commit(NULL, &md, t.store, c, &layer, 1, &o), "expected KEY=VALUE");
	ib_image_config_free(c);
	ts_close(&t);
}

DEFINE_GROUP(image_tests,
	cmocka_unit_test(test_commit_annotations),
	cmocka_unit_test(test_root_private),
	cmocka_unit_test(test_commit_lookup),
	cmocka_unit_test(test_commit_errors),
	cmocka_unit_test(test_names),
	cmocka_unit_test(test_sorted_names_repo_digests),
	cmocka_unit_test(test_history_uncompressed_sizes),
	cmocka_unit_test(test_layer_content_size),
	cmocka_unit_test(test_ambiguous),
	cmocka_unit_test(test_import_compressed),
	cmocka_unit_test(test_tag_manifest),
	cmocka_unit_test(test_pins),
	cmocka_unit_test(test_import_source_date_epoch))
