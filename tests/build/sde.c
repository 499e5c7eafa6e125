/*
 * SOURCE_DATE_EPOCH reaches a build through ib_build_options only: the
 * process environment changes nothing (the CLI maps it, as buildx does).
 * A FROM scratch + COPY --chown=<us> build needs no isolation and no root.
 */
#include "tests.h"
#include "imagebuild/build.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void put(const char *dir, const char *name, const char *text)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The mtime of entry `name` of the image's first layer. */
static int64_t layer_mtime(ib_store *store, const ib_image *img, const char *name)
{
	assert_int_equal(ib_image_layer_count(img), 1);
	ib_buf tar = IB_BUF_INIT;
	assert_int_equal(ib_store_blob_read(&tar, store, &ib_image_layer(img, 0)->digest), 0);
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, tar.ptr, tar.size), ARCHIVE_OK);
	struct archive_entry *e;
	int64_t t = -1;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK)
		if (!strcmp(archive_entry_pathname(e), name))
			t = archive_entry_mtime(e);
	archive_read_free(a);
	ib_buf_dispose(&tar);
	assert_true(t >= 0);
	return t;
}

/* ib_build_options version 5 (callbacks by value, a cancel field), as programs built against it have it. */
typedef struct {
	unsigned int version;
	const char *context;
	const char *dockerfile;
	const char *dockerfile_content;
	size_t dockerfile_len;
	const char *const *tags;
	const char *const *build_args;
	const char *target;
	int no_cache;
	const char *isolation;
	const char *snapshotter;
	const char *platform;
	ib_network_mode network;
	struct {
		unsigned int version;
		ib_progress_cb progress;
		ib_log_cb log;
		void *payload;
	} callbacks;
	ib_pull_policy pull;
	const ib_registry_options *registry;
	const char *const *secrets;
	const volatile int *cancel;
	const char *const *allow;
	int use_source_date_epoch;
	int64_t source_date_epoch;
} build_options_v5;

/*
 * Build the context (with a version 5 struct when `v5`); check created,
 * history and the layer's file time against `want` (-1: now).
 */
static void build_and_check_as(ib_store *store, const char *ctx, int use, int64_t epoch, const char *want,
			       int v5)
{
	ib_build_options o = IB_BUILD_OPTIONS_INIT;
	o.context = ctx;
	o.snapshotter = "copy";
	o.use_source_date_epoch = use;
	o.source_date_epoch = epoch;
	build_options_v5 old;
	assert_int_equal(ib_build_options_init((ib_build_options *)(void *)&old, 5), 0);
	assert_int_equal(old.version, 5u);
	old.context = ctx;
	old.snapshotter = "copy";
	old.use_source_date_epoch = use;
	old.source_date_epoch = epoch;
	ib_digest id;
	int rc = ib_build(&id, store, v5 ? (const ib_build_options *)(const void *)&old : &o);
	if (rc < 0)
		print_message("build: %s\n", ib_error_last()->message);
	assert_int_equal(rc, 0);
	char hex[IB_DIGEST_STRLEN];
	ib_digest_fmt(hex, &id);
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, store, hex), 0);
	const ib_image_config *c = ib_image_config_of(img);
	const char *created = ib_image_config_get(c, IB_CONFIG_CREATED);
	assert_non_null(created);
	size_t nh = ib_image_config_history_count(c);
	assert_true(nh >= 1);
	int64_t mt = layer_mtime(store, img, "f");
	if (want) {
		assert_string_equal(created, want);
		for (size_t i = 0; i < nh; i++) {
			ib_history_entry h = IB_HISTORY_ENTRY_INIT;
			assert_int_equal(ib_image_config_history_get(&h, c, i), 0);
			assert_string_equal(h.created, want);
		}
		assert_int_equal(mt, epoch);
	} else {
		assert_string_not_equal(created, "1970-01-02T00:00:00Z");
		assert_true(mt > 86400);
	}
	ib_image_free(img);
}

static void build_and_check(ib_store *store, const char *ctx, int use, int64_t epoch, const char *want)
{
	build_and_check_as(store, ctx, use, epoch, want, 0);
}

static void test_source_date_epoch_from_options_only(void **state)
{
	(void)state;
	char *root = ib_test_tmpdir("sde");
	char ctx[4096], st[4096];
	snprintf(ctx, sizeof ctx, "%s/ctx", root);
	snprintf(st, sizeof st, "%s/store", root);
	assert_int_equal(mkdir(ctx, 0755), 0);
	/* owned by us, so that the copy needs no privilege */
	char df[128];
	snprintf(df, sizeof df, "FROM scratch\nCOPY --chown=%u:%u f /f\n", (unsigned)getuid(), (unsigned)getgid());
	put(ctx, "Dockerfile", df);
	put(ctx, "f", "data\n");
	ib_store *store = NULL;
	assert_int_equal(ib_store_open(&store, st, NULL), 0);

	/* the environment alone changes nothing */
	setenv("SOURCE_DATE_EPOCH", "86400", 1);
	build_and_check(store, ctx, 0, 0, NULL);
	unsetenv("SOURCE_DATE_EPOCH");
	/* the option sets created, every history entry, and clamps the layer's times */
	build_and_check(store, ctx, 1, 86400, "1970-01-02T00:00:00Z");
	/* another epoch is another cache key: not the cached layer of the first */
	build_and_check(store, ctx, 1, 172800, "1970-01-03T00:00:00Z");
	/* a program built against version 5 (the older layout) gets the same */
	build_and_check_as(store, ctx, 1, 259200, "1970-01-04T00:00:00Z", 1);

	/* refused, not ignored */
	ib_build_options o = IB_BUILD_OPTIONS_INIT;
	o.context = ctx;
	o.snapshotter = "copy";
	o.use_source_date_epoch = 1;
	o.source_date_epoch = -3;
	ib_digest id;
	ib_assert_error_contains(ib_build(&id, store, &o), "SOURCE_DATE_EPOCH -3 is negative");
	/* a version 3 caller has no such field: its struct (the older layout) is read as before */
	build_options_v5 v3;
	memset(&v3, 0x5a, sizeof v3);
	assert_int_equal(ib_build_options_init((ib_build_options *)(void *)&v3, 3), 0);
	assert_int_equal(v3.version, 3u);
	assert_int_equal(v3.callbacks.version, 1u);
	/* only version 3's size is written */
	assert_int_equal(*(const unsigned char *)&v3.allow, 0x5a);
	ib_store_free(store);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	free(root);
}

DEFINE_GROUP(sde_tests, cmocka_unit_test(test_source_date_epoch_from_options_only))
