/*
 * The ib_buf rule (buffer.h): a function that gives its output in a
 * caller's ib_buf replaces what the buffer held, never appends. Each public
 * one is called on a buffer holding junk, and its output must equal what a
 * fresh buffer gets.
 */
#include "tests.h"
#include "imagebuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JUNK "junk from before\n"

/* `call` (using `buf`) on a fresh buffer and on one holding JUNK: the same output. */
#define SAME_OUTPUT(buf, call) do { \
		ib_buf buf = IB_BUF_INIT; \
		int rc_ = (call); \
		if (rc_ < 0) \
			print_message("%s: %s\n", #call, ib_error_last()->message); \
		assert_int_equal(rc_, 0); \
		char *fresh_ = strdup(buf.ptr ? buf.ptr : ""); \
		assert_int_equal(ib_buf_set(&buf, JUNK, strlen(JUNK)), 0); \
		assert_int_equal((call), 0); \
		assert_string_equal(buf.ptr ? buf.ptr : "", fresh_); \
		free(fresh_); \
		ib_buf_dispose(&buf); \
	} while (0)

static void put(const char *dir, const char *name, const char *text)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_outputs_replace(void **state)
{
	(void)state;
	char *root = ib_test_tmpdir("bufrule");
	char ctx[4096], st[4096];
	snprintf(ctx, sizeof ctx, "%s/ctx", root);
	snprintf(st, sizeof st, "%s/store", root);
	assert_int_equal(mkdir(ctx, 0755), 0);
	char df_text[256];
	snprintf(df_text, sizeof df_text, "FROM scratch\nCOPY --chown=%u:%u f /f\nRUN <<-EOT\n\thello\nEOT\n",
		 (unsigned)getuid(), (unsigned)getgid());
	put(ctx, "Dockerfile", df_text);
	put(ctx, "f", "data\n");

	/* parse */
	ib_dockerfile *df = NULL;
	assert_int_equal(ib_dockerfile_parse(&df, df_text, strlen(df_text), NULL), 0);
	const ib_node *run = ib_dockerfile_node(df, 2);
	assert_int_equal(ib_node_heredoc_count(run), 1);
	SAME_OUTPUT(b, ib_dockerfile_dump(&b, df));
	SAME_OUTPUT(b, ib_node_dump(&b, run));
	SAME_OUTPUT(b, ib_heredoc_chomp(&b, ib_node_heredoc(run, 0)));
	SAME_OUTPUT(b, ib_expand_word(&b, "a$x", NULL));
	ib_dockerfile_free(df);

	/* plan (through build) and execute */
	ib_build_options o = IB_BUILD_OPTIONS_INIT;
	o.context = ctx;
	o.snapshotter = "copy";
	SAME_OUTPUT(b, ib_build_plan_print(&b, &o));
	SAME_OUTPUT(b, ib_isolation_list(&b));

	/* store: an image of the first two steps */
	snprintf(df_text, sizeof df_text, "FROM scratch\nCOPY --chown=%u:%u f /f\n", (unsigned)getuid(),
		 (unsigned)getgid());
	put(ctx, "Dockerfile", df_text);
	ib_store *store = NULL;
	assert_int_equal(ib_store_open(&store, st, NULL), 0);
	const char *const tags[] = { "a", "b", NULL };
	o.tags = tags;
	ib_digest id;
	int rc = ib_build(&id, store, &o);
	if (rc < 0)
		print_message("build: %s\n", ib_error_last()->message);
	assert_int_equal(rc, 0);
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, store, "a"), 0);
	SAME_OUTPUT(b, ib_reference_normalize(&b, "a"));
	SAME_OUTPUT(b, ib_image_config_to_json(&b, ib_image_config_of(img)));
	SAME_OUTPUT(b, ib_store_blob_read(&b, store, &id));
	SAME_OUTPUT(b, ib_image_inspect_json(&b, img));
	SAME_OUTPUT(b, ib_store_container_dir(&b, store, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
	SAME_OUTPUT(b, ib_store_fsck(&b, store));
	ib_image_free(img);
	static const char index_json[] =
		"{\"manifests\":["
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"size\":1,"
		"\"digest\":\"sha256:0000000000000000000000000000000000000000000000000000000000000000\","
		"\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"size\":1,"
		"\"digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
		"\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}}]}";
#if defined(__x86_64__) || defined(__aarch64__)
	ib_digest pd;
	SAME_OUTPUT(b, ib_store_index_platform(&pd, &b, index_json, strlen(index_json)));
#else
	(void)index_json;
#endif
	/* a report of one removal: "Untagged: b:latest" only */
	ib_buf r = IB_BUF_INIT;
	assert_int_equal(ib_buf_set(&r, JUNK, strlen(JUNK)), 0);
	assert_int_equal(ib_store_image_remove(store, "b", 0, &r), 0);
	assert_string_equal(r.ptr, "Untagged: b:latest\n");
	ib_buf_dispose(&r);

	/* snapshot */
	ib_snapshotter *snap = NULL;
	assert_int_equal(ib_snapshotter_open(&snap, store, "copy", NULL), 0);
	assert_int_equal(ib_snapshot_prepare(snap, "k", NULL, 0), 0);
	SAME_OUTPUT(b, ib_snapshot_mount(&b, snap, "k"));
	assert_int_equal(ib_snapshot_unmount(snap, "k"), 0);
	assert_int_equal(ib_snapshot_remove(snap, "k"), 0);
	SAME_OUTPUT(b, ib_snapshotter_fsck(&b, snap));
	ib_snapshotter_free(snap);

	ib_store_free(store);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	free(root);
}

DEFINE_GROUP(buf_rule_tests, cmocka_unit_test(test_outputs_replace))
