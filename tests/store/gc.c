#include "tests.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int wait_exit(pid_t pid);
static const char *KEY = "ab00000000000000000000000000000000000000000000000000000000000000";

static void test_gc_basic(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "gc");
	ts_import(&t, "keep", "keep");
	int kept = ts_count_blobs(&t);
	ib_digest orphan;
	assert_int_equal(ib_store_blob_put(&orphan, t.store, "orphan", 6), 0);
	char *stale = ts_path(&t, "store/tmp/blob-stale");
	ts_write_file(stale, "half a blob");
	ib_store_gc_stats st = IB_STORE_GC_STATS_INIT;
	ib_store_gc_stats old;
	memset(&old, 0, sizeof old); /* unversioned: refused, not overrun */
	ib_assert_error_contains(ib_store_gc(&old, t.store, NULL), "ib_store_gc_stats version 0");
	assert_int_equal(ib_store_gc(&st, t.store, NULL), 0);
	assert_int_equal(st.blobs_removed, 1);
	assert_int_equal(st.bytes_freed, 6);
	assert_int_equal(ib_store_blob_has(t.store, &orphan), 0);
	assert_int_equal(ts_count_blobs(&t), kept);
	assert_false(access(stale, F_OK) == 0);
	free(stale);
	ib_image *img;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "keep"), 0);
	ib_image_free(img);
	assert_int_equal(ib_store_fsck(NULL, t.store), 0);
	/* a handle holding a lease cannot GC (it would wait for itself) */
	assert_int_equal(ib_store_lease_acquire(t.store), 0);
	ib_assert_error_contains(ib_store_gc(NULL, t.store, NULL), "holds a lease");
	/* another handle sees the lease: busy with nowait */
	ib_store *other;
	assert_int_equal(ib_store_open(&other, ib_store_root(t.store), NULL), 0);
	ib_store_gc_options go = IB_STORE_GC_OPTIONS_INIT;
	go.nowait = 1;
	int rc = ib_store_gc(NULL, other, &go);
	assert_int_equal(rc, IB_EEXISTS);
	ib_store_lease_release(t.store);
	assert_int_equal(ib_store_gc(NULL, other, &go), 0);
	ib_store_free(other);
	ts_close(&t);
}

static void test_variants(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "variants");
	char *tar = ts_path(&t, "variant.tar");
	const char *files[] = { "etc/hello", "variant", NULL };
	ts_make_tar(tar, files, 0);
	ib_import_options o = IB_IMPORT_OPTIONS_INIT;
	o.name = "img";
	ib_digest id;
	assert_int_equal(ib_store_import(&id, t.store, tar, &o), 0);
	ib_image *img;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "img"), 0);
	ib_digest diff = ib_image_layer(img, 0)->diff_id;
	ib_image_free(img);
	/* a variant is recorded only when it is the layer compressed */
	ib_digest gz = ts_put_file(&t, tar, 1), got;
	unlink(tar);
	free(tar);
	uint64_t size, gz_size;
	assert_int_equal(ib_store_blob_size(&gz_size, t.store, &gz), 0);
	ib_assert_error_contains(ib_store_variant_get(&got, &size, t.store, &diff, IB_MEDIA_TYPE_OCI_LAYER_GZIP), "no ");
	assert_int_equal(ib_error_last()->code, IB_ENOTFOUND);
	assert_int_equal(ib_store_variant_put(t.store, &diff, &gz, IB_MEDIA_TYPE_OCI_LAYER_GZIP), 0);
	assert_int_equal(ib_store_variant_get(&got, &size, t.store, &diff, IB_MEDIA_TYPE_OCI_LAYER_GZIP), 0);
	assert_true(ib_digest_equal(&got, &gz));
	assert_int_equal(size, gz_size);
	assert_int_equal(ib_store_variant_get(&got, NULL, t.store, &diff, IB_MEDIA_TYPE_OCI_LAYER_ZSTD), IB_ENOTFOUND);
	ib_digest missing;
	ib_digest_of(&missing, "m", 1);
	ib_assert_error_contains(ib_store_variant_put(t.store, &diff, &missing, IB_MEDIA_TYPE_OCI_LAYER_ZSTD), "not found");
	/* kept while its layer is */
	assert_int_equal(ib_store_gc(NULL, t.store, NULL), 0);
	assert_int_equal(ib_store_blob_has(t.store, &gz), 1);
	assert_int_equal(ib_store_fsck(NULL, t.store), 0);
	/* and goes with it */
	assert_int_equal(ib_store_untag(t.store, "img"), 0);
	assert_int_equal(ib_store_gc(NULL, t.store, NULL), 0);
	assert_int_equal(ib_store_blob_has(t.store, &gz), 0);
	assert_int_equal(ts_count_blobs(&t), 0);
	assert_int_equal(ib_store_variant_get(&got, NULL, t.store, &diff, IB_MEDIA_TYPE_OCI_LAYER_GZIP), IB_ENOTFOUND);
	ts_close(&t);
}

/* A record's source naming `chain` (digests), as the snapshot layer writes it. */
static void put_record(ib_store *s, ib_digest *out, const char *name, const ib_digest *const *chain, size_t n)
{
	ib_digest_of(out, name, strlen(name));
	char src[1024] = "{\"chain\":[";
	for (size_t i = 0; i < n; i++) {
		char ds[IB_DIGEST_STRLEN];
		ib_digest_fmt(ds, chain[i]);
		snprintf(src + strlen(src), sizeof src - strlen(src), "%s\"%s\"", i ? "," : "", ds);
	}
	snprintf(src + strlen(src), sizeof src - strlen(src), "],\"snapshotter\":\"overlay\"}");
	assert_int_equal(ib_store_layer_source_put(s, out, 1024, src), 0);
}

/*
 * A layer kept only unpacked is regenerated against the layers its record's
 * chain names, which need not be layers of the images (or cache entries)
 * that use it: the same diff made on another base is recorded once. GC keeps
 * them, and theirs in turn, as long as the record lives (a prune used to
 * drop them: the layer could no longer be pushed or saved).
 */
static void test_record_chain(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "chain");
	ib_digest base, mid, top, opaque, cfg, orphan;
	assert_int_equal(ib_store_blob_put(&base, t.store, "the base layer's tar", 20), 0);
	const ib_digest *c1[] = { &base };
	put_record(t.store, &mid, "mid", c1, 1);
	const ib_digest *c2[] = { &mid };
	put_record(t.store, &top, "top", c2, 1);
	ib_digest_of(&opaque, "opaque", 6); /* a source that is not JSON: opaque, needs nothing */
	assert_int_equal(ib_store_layer_source_put(t.store, &opaque, 10, "not json ["), 0);
	assert_int_equal(ib_store_blob_put(&cfg, t.store, "{}", 2), 0);
	assert_int_equal(ib_store_blob_put(&orphan, t.store, "nobody's", 8), 0);
	assert_int_equal(ib_store_cache_put(t.store, KEY, &top, &cfg), 0);
	assert_int_equal(ib_store_cache_put(t.store, "cd00000000000000000000000000000000000000000000000000000000000000",
					    &opaque, &cfg), 0);
	ib_store_gc_stats st = IB_STORE_GC_STATS_INIT;
	assert_int_equal(ib_store_gc(&st, t.store, NULL), 0);
	assert_int_equal(st.blobs_removed, 1);
	assert_int_equal(ib_store_blob_has(t.store, &orphan), 0);
	assert_int_equal(ib_store_layer_source_has(t.store, &top), 1);
	assert_int_equal(ib_store_layer_source_has(t.store, &mid), 1); /* through top's chain */
	assert_int_equal(ib_store_blob_has(t.store, &base), 1);        /* through mid's */
	assert_int_equal(ib_store_layer_source_has(t.store, &opaque), 1);
	/* the chain goes with the last record standing on it */
	assert_int_equal(ib_store_cache_remove(t.store, KEY), 0);
	assert_int_equal(ib_store_gc(&st, t.store, NULL), 0);
	assert_int_equal(ib_store_layer_source_has(t.store, &top), 0);
	assert_int_equal(ib_store_layer_source_has(t.store, &mid), 0);
	assert_int_equal(ib_store_blob_has(t.store, &base), 0);
	assert_int_equal(ib_store_layer_source_has(t.store, &opaque), 1);
	ts_close(&t);
}

/* Several processes write one store at once: every name lands, the store stays sound. */
static void test_concurrent_writers(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "concurrent");
	char *tar = ts_path(&t, "c.tar");
	pid_t pids[4];
	for (int p = 0; p < 4; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0) {
			ib_store *s;
			if (ib_store_open(&s, ib_store_root(t.store), NULL) < 0)
				_exit(1);
			for (int i = 0; i < 3; i++) {
				char name[32], content[32], path[4200];
				snprintf(name, sizeof name, "w%d-%d", p, i);
				snprintf(content, sizeof content, "content %d %d", p, i);
				snprintf(path, sizeof path, "%s.%d", tar, p);
				const char *files[] = { "f", content, NULL };
				ts_make_tar(path, files, 0);
				ib_import_options o = IB_IMPORT_OPTIONS_INIT;
				o.name = name;
				if (ib_store_import(NULL, s, path, &o) < 0 || ib_store_tag(s, name, "shared") < 0)
					_exit(2);
				if (p == 0 && ib_store_gc(NULL, s, NULL) < 0)
					_exit(3);
			}
			ib_store_free(s);
			_exit(0);
		}
	}
	for (int p = 0; p < 4; p++)
		assert_int_equal(wait_exit(pids[p]), 0);
	ib_image_list *l;
	assert_int_equal(ib_store_images(&l, t.store), 0);
	int named = 0;
	for (size_t i = 0; i < ib_image_list_count(l); i++)
		named += ib_image_list_get(l, i)->name != NULL;
	assert_int_equal(named, 13); /* 12 + "shared" */
	ib_image_list_free(l);
	assert_int_equal(ib_store_fsck(NULL, t.store), 0);
	free(tar);
	ts_close(&t);
}

/* ---- a writer and a GC, paused at each other's steps ---- */

typedef struct {
	int report_fd;  /* child → parent: step names */
	int go_fd;      /* parent → child: one byte per step */
} pauser;

static pauser the_pauser;

static void pause_hook(const char *point, void *payload)
{
	(void)payload;
	char line[64];
	snprintf(line, sizeof line, "%-63s", point);
	if (write(the_pauser.report_fd, line, 64) != 64)
		_exit(3);
	char c;
	if (read(the_pauser.go_fd, &c, 1) != 1)
		_exit(4);
}

/* A build step: layer and config blobs, then a cache entry naming them, under one lease. */
static int writer_body(const char *root)
{
	ib_store *s;
	if (ib_store_open(&s, root, NULL) < 0)
		return 10;
	ib_digest layer, config;
	int rc = ib_store_lease_acquire(s);
	if (rc == 0)
		rc = ib_store_blob_put(&layer, s, "fresh layer bytes", 17);
	if (rc == 0)
		rc = ib_store_blob_put(&config, s, "{\"fresh\":\"config\"}", 18);
	if (rc == 0)
		rc = ib_store_cache_put(s, KEY, &layer, &config);
	ib_store_lease_release(s);
	ib_store_free(s);
	return rc < 0 ? 11 : 0;
}

static int gc_body(const char *root)
{
	ib_store *s;
	if (ib_store_open(&s, root, NULL) < 0)
		return 20;
	int rc = ib_store_gc(NULL, s, NULL);
	ib_store_free(s);
	return rc < 0 ? 21 : 0;
}

static pid_t spawn(int (*body)(const char *), const char *root, int paused, pauser *p)
{
	int rep[2], go[2];
	if (paused) {
		assert_int_equal(pipe(rep), 0);
		assert_int_equal(pipe(go), 0);
	}
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (paused) {
			close(rep[0]);
			close(go[1]);
			the_pauser.report_fd = rep[1];
			the_pauser.go_fd = go[0];
			ib_store__set_hook(pause_hook, NULL);
		} else {
			ib_store__set_hook(NULL, NULL);
		}
		_exit(body(root));
	}
	if (paused) {
		close(rep[1]);
		close(go[0]);
		p->report_fd = rep[0];
		p->go_fd = go[1];
	}
	return pid;
}

/* Next step name from a paused child, or 0 when it ended. */
static int next_step(pauser *p, char out[64])
{
	char line[64];
	ssize_t n = read(p->report_fd, line, 64);
	if (n != 64)
		return 0;
	memcpy(out, line, 64);
	out[63] = 0;
	for (int i = 62; i >= 0 && out[i] == ' '; i--)
		out[i] = 0;
	return 1;
}

static void resume(pauser *p)
{
	char c = 'g';
	if (write(p->go_fd, &c, 1) != 1)
		fail_msg("resume child");
}

static int wait_exit(pid_t pid)
{
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int still_running(pid_t pid)
{
	struct timespec ts = { 0, 80 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	int status;
	return waitpid(pid, &status, WNOHANG) == 0;
}

static void check_written(test_store *t)
{
	ib_digest layer, config;
	int has = 0;
	if (ib_store_cache_get(&layer, &has, &config, t->store, KEY) < 0)
		fail_msg("the writer's cache entry lost its blobs: %s", ib_error_last()->message);
	assert_int_equal(has, 1);
	ib_buf rep = IB_BUF_INIT;
	if (ib_store_fsck(&rep, t->store) < 0)
		fail_msg("fsck: %s", rep.ptr);
	ib_buf_dispose(&rep);
}

/* GC starts at every step of the writer. */
static void test_gc_during_writer(void **state)
{
	(void)state;
	for (int target = 0;; target++) {
		test_store t;
		ts_open(&t, "gcw");
		ts_import(&t, "base", "base");
		pauser p;
		pid_t w = spawn(writer_body, ib_store_root(t.store), 1, &p);
		char step[64];
		int i = 0, reached = 0, leased = 0;
		pid_t g = -1;
		while (next_step(&p, step)) {
			if (!strcmp(step, "lease"))
				leased = 1;
			if (i++ == target) {
				reached = 1;
				g = spawn(gc_body, ib_store_root(t.store), 0, NULL);
				/* while the writer holds its lease, GC must wait */
				if (leased && !still_running(g))
					fail_msg("GC finished while the writer held its lease (at step `%s`)", step);
			}
			if (!strcmp(step, "unlease"))
				leased = 0;
			resume(&p);
		}
		close(p.report_fd);
		close(p.go_fd);
		assert_int_equal(wait_exit(w), 0);
		if (g > 0)
			assert_int_equal(wait_exit(g), 0);
		/* and a GC now, with the cache entry in place, keeps everything */
		assert_int_equal(ib_store_gc(NULL, t.store, NULL), 0);
		check_written(&t);
		ts_close(&t);
		if (!reached)
			break;
	}
}

/* The writer starts at every step of a GC. */
static void test_writer_during_gc(void **state)
{
	(void)state;
	for (int target = 0;; target++) {
		test_store t;
		ts_open(&t, "wgc");
		ts_import(&t, "base", "base");
		ib_digest orphan;
		assert_int_equal(ib_store_blob_put(&orphan, t.store, "orphan", 6), 0);
		pauser p;
		pid_t g = spawn(gc_body, ib_store_root(t.store), 1, &p);
		char step[64];
		int i = 0, reached = 0, locked = 0;
		pid_t w = -1;
		while (next_step(&p, step)) {
			if (!strcmp(step, "gc-locked"))
				locked = 1;
			if (!strcmp(step, "gc-done"))
				locked = 0;
			if (i++ == target) {
				reached = 1;
				w = spawn(writer_body, ib_store_root(t.store), 0, NULL);
				if (locked && !still_running(w))
					fail_msg("the writer finished while GC held the store (at step `%s`)", step);
			}
			resume(&p);
		}
		close(p.report_fd);
		close(p.go_fd);
		assert_int_equal(wait_exit(g), 0);
		if (w > 0)
			assert_int_equal(wait_exit(w), 0);
		assert_int_equal(ib_store_blob_has(t.store, &orphan), 0);
		if (w > 0)
			check_written(&t);
		ts_close(&t);
		if (!reached)
			break;
	}
}

DEFINE_GROUP(gc_tests,
	cmocka_unit_test(test_gc_basic),
	cmocka_unit_test(test_variants),
	cmocka_unit_test(test_record_chain),
	cmocka_unit_test(test_concurrent_writers),
	cmocka_unit_test(test_gc_during_writer),
	cmocka_unit_test(test_writer_during_gc))
