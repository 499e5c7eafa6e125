/*
 * The orchestrator (lib/build) without root: builds through the `copy`
 * snapshotter and the `fake` isolation backend (tests/common/fake_isolation.h),
 * which runs RUN's shell on the host with $IB_FAKE_ROOT naming the root.
 * Cache hits and misses, multi-stage COPY --from, ARG/ENV/WORKDIR/LABEL
 * metadata, a RUN's result in its layer, a failing RUN's error, and the
 * errors of backends that fail (with a message, and without one).
 */
#include "tests.h"
#include "fake_isolation.h"
#include "imagebuild/build.h"
#include "imagebuild/sys/errors.h"
#include "imagebuild/sys/snapshotter.h"

#include <fcntl.h>
#include <sys/stat.h>

static fake_isolation_counts counts;

typedef struct {
	char *dir;   /* removed at the end */
	char *ctx;
	ib_store *store;
	int ran, cached; /* STEP_DONE reports of the last build */
	char steps[4096]; /* "R" (ran) or "C" (cached) per step, in order */
} fixture;

static void rm_rf(const char *dir)
{
	char cmd[4400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static void put(const char *dir, const char *rel, const char *content)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", dir, rel);
	for (char *s = strchr(p + strlen(dir) + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		mkdir(p, 0755);
		*s = '/';
	}
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static int on_progress(const ib_progress *p, void *payload)
{
	fixture *f = payload;
	if (p->kind == IB_PROGRESS_STEP_DONE) {
		size_t n = strlen(f->steps);
		if (n + 1 < sizeof f->steps) {
			f->steps[n] = p->cached ? 'C' : 'R';
			f->steps[n + 1] = '\0';
		}
		if (p->cached)
			f->cached++;
		else
			f->ran++;
	}
	return 0;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->dir = ib_test_tmpdir("orchestrator");
	char p[4200];
	snprintf(p, sizeof p, "%s/store", f->dir);
	assert_int_equal(ib_store_open(&f->store, p, NULL), 0);
	snprintf(p, sizeof p, "%s/ctx", f->dir);
	mkdir(p, 0755);
	f->ctx = strdup(p);
	assert_int_equal(ib_isolation_register("fake", fake_isolation_new, &counts), 0);
	memset(&counts, 0, sizeof counts);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	ib_store_free(f->store);
	rm_rf(f->dir);
	free(f->dir);
	free(f->ctx);
	free(f);
	return 0;
}

/* One build of `dockerfile` in the fixture's context with the fake backend and copy snapshotter. */
static int build_ex(fixture *f, ib_digest *id, const char *dockerfile, const char *const *args,
		    const char *tag, const char *isolation, const char *snapshotter)
{
	const char *tags[] = { tag, NULL };
	ib_build_options o = IB_BUILD_OPTIONS_INIT;
	o.context = f->ctx;
	o.dockerfile_content = dockerfile;
	o.dockerfile_len = strlen(dockerfile);
	o.tags = tag ? tags : NULL;
	o.build_args = args;
	o.isolation = isolation;
	o.snapshotter = snapshotter;
	o.pull = IB_PULL_NEVER;
	ib_callbacks cb = IB_CALLBACKS_INIT;
	cb.progress = on_progress;
	cb.payload = f;
	o.callbacks = &cb;
	f->ran = f->cached = 0;
	f->steps[0] = '\0';
	return ib_build(id, f->store, &o);
}

static int build(fixture *f, ib_digest *id, const char *dockerfile, const char *const *args,
		 const char *tag)
{
	return build_ex(f, id, dockerfile, args, tag, "fake", "copy");
}

/* The content of `path` in image `ref`, read from the copy snapshotter (malloc()ed, NULL: none). */
static char *read_in_image(fixture *f, const char *ref, const char *path)
{
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, f->store, ref), 0);
	size_t n = ib_image_layer_count(img);
	ib_digest *chain = calloc(n + 1, sizeof *chain);
	for (size_t i = 0; i < n; i++)
		chain[i] = ib_image_layer(img, i)->diff_id;
	ib_snapshotter *snap = NULL;
	assert_int_equal(ib_snapshotter_open(&snap, f->store, "copy", NULL), 0);
	assert_int_equal(ib_snapshot_prepare(snap, "inspect", chain, n), 0);
	ib_buf root = IB_BUF_INIT;
	assert_int_equal(ib_snapshot_mount(&root, snap, "inspect"), 0);
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", root.ptr, path);
	char *content = NULL;
	FILE *fp = fopen(p, "r");
	if (fp) {
		content = calloc(1, 65536);
		size_t got = fread(content, 1, 65535, fp);
		content[got] = '\0';
		fclose(fp);
	}
	assert_int_equal(ib_snapshot_unmount(snap, "inspect"), 0);
	assert_int_equal(ib_snapshot_remove(snap, "inspect"), 0);
	ib_buf_dispose(&root);
	ib_snapshotter_free(snap);
	free(chain);
	ib_image_free(img);
	return content;
}

static void assert_content(fixture *f, const char *ref, const char *path, const char *want)
{
	char *got = read_in_image(f, ref, path);
	if (!got)
		fail_msg("%s has no %s", ref, path);
	if (strcmp(got, want) != 0)
		fail_msg("%s:%s is `%s`, not `%s`", ref, path, got, want);
	free(got);
}

static const char app_dockerfile[] =
	"FROM scratch\n"
	"ARG GREETING=hello\n"
	"ENV APP_DIR=/app MODE=$GREETING\n"
	"WORKDIR /app\n"
	"COPY a.txt ./\n"
	"RUN echo \"$MODE from $(pwd | sed \"s|^$IB_FAKE_ROOT||\"): $(cat a.txt)\" > \"$IB_FAKE_ROOT/app/run.txt\"\n"
	"LABEL stage=app\n";

static void test_cache_hits_and_misses(void **state)
{
	fixture *f = *state;
	put(f->ctx, "a.txt", "one");
	ib_digest id1, id2, id3, id4;
	if (build(f, &id1, app_dockerfile, NULL, "app:1") < 0)
		fail_msg("build: %s", ib_error_last()->message);
	assert_string_equal(f->steps, "RRRRRR");
	assert_int_equal(counts.starts, 1);
	assert_int_equal(counts.finishes, 1);
	assert_int_equal(counts.frees, counts.news);
	assert_string_equal(counts.last_cwd, "/app");
	assert_non_null(strstr(counts.last_env, "MODE=hello\n"));
	assert_non_null(strstr(counts.last_env, "APP_DIR=/app\n"));
	assert_content(f, "app:1", "app/run.txt", "hello from /app: one\n");
	assert_content(f, "app:1", "app/a.txt", "one");

	/* the same again: every step cached, no RUN, the same image */
	assert_int_equal(build(f, &id2, app_dockerfile, NULL, "app:2"), 0);
	assert_string_equal(f->steps, "CCCCCC");
	assert_int_equal(counts.starts, 1);
	assert_true(ib_digest_equal(&id1, &id2));

	/* a build arg the ENV uses: ARG and what follows it miss */
	const char *args[] = { "GREETING=howdy", NULL };
	assert_int_equal(build(f, &id3, app_dockerfile, args, "app:3"), 0);
	assert_string_equal(f->steps, "RRRRRR");
	assert_int_equal(counts.starts, 2);
	assert_false(ib_digest_equal(&id1, &id3));
	assert_content(f, "app:3", "app/run.txt", "howdy from /app: one\n");

	/* a changed source file: the steps before COPY hit, COPY and after miss */
	put(f->ctx, "a.txt", "two");
	assert_int_equal(build(f, &id4, app_dockerfile, NULL, "app:4"), 0);
	assert_string_equal(f->steps, "CCCRRR");
	assert_int_equal(counts.starts, 3);
	assert_content(f, "app:4", "app/run.txt", "hello from /app: two\n");

	assert_int_equal(counts.frees, counts.news);
}

static void test_metadata_steps(void **state)
{
	fixture *f = *state;
	const char df[] =
		"FROM scratch\n"
		"ARG VERSION=1.0\n"
		"ENV NAME=demo PATH=/bin\n"
		"ENV FULL=${NAME}-${VERSION}\n"
		"WORKDIR /srv/$NAME\n"
		"USER 1000:1000\n"
		"LABEL version=$VERSION\n"
		"EXPOSE 8080\n"
		"CMD [\"serve\"]\n";
	ib_digest id;
	const char *args[] = { "VERSION=2.5", NULL };
	if (build(f, &id, df, args, "meta") < 0)
		fail_msg("build: %s", ib_error_last()->message);
	assert_int_equal(counts.starts, 0);
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, f->store, "meta"), 0);
	const ib_image_config *c = ib_image_config_of(img);
	assert_string_equal(ib_image_config_env_get(c, "NAME"), "demo");
	assert_string_equal(ib_image_config_env_get(c, "FULL"), "demo-2.5");
	assert_null(ib_image_config_env_get(c, "VERSION")); /* an ARG is not in the image */
	assert_string_equal(ib_image_config_get(c, IB_CONFIG_WORKDIR), "/srv/demo");
	assert_string_equal(ib_image_config_get(c, IB_CONFIG_USER), "1000:1000");
	assert_string_equal(ib_image_config_label_get(c, "version"), "2.5");
	assert_int_equal(ib_image_config_list_count(c, IB_CONFIG_CMD), 1);
	assert_string_equal(ib_image_config_list_get(c, IB_CONFIG_CMD, 0), "serve");
	/* WORKDIR makes its directory (a layer); the others are empty layers in the history */
	assert_int_equal(ib_image_layer_count(img), 1);
	size_t empty = 0;
	for (size_t i = 0; i < ib_image_history_count(img); i++) {
		ib_image_history_item h = IB_IMAGE_HISTORY_ITEM_INIT;
		assert_int_equal(ib_image_history_get(&h, img, i), 0);
		empty += h.empty_layer != 0;
	}
	assert_int_equal(empty, 7); /* ARG, ENV, ENV, USER, LABEL, EXPOSE, CMD */
	ib_image_free(img);
}

static void test_multi_stage_copy_from(void **state)
{
	fixture *f = *state;
	put(f->ctx, "src/in.txt", "source\n");
	const char df[] =
		"FROM scratch AS builder\n"
		"COPY src/ /src/\n"
		"RUN cat \"$IB_FAKE_ROOT/src/in.txt\" > \"$IB_FAKE_ROOT/out.txt\" && echo built >> \"$IB_FAKE_ROOT/out.txt\"\n"
		"FROM scratch AS unused\n"
		"RUN echo never > \"$IB_FAKE_ROOT/never\"\n"
		"FROM scratch\n"
		"COPY --from=builder /out.txt /final.txt\n";
	ib_digest id;
	if (build(f, &id, df, NULL, "multi") < 0)
		fail_msg("build: %s", ib_error_last()->message);
	/* the unused stage is not built */
	assert_int_equal(counts.starts, 1);
	assert_content(f, "multi", "final.txt", "source\nbuilt\n");
	char *none = read_in_image(f, "multi", "src/in.txt");
	assert_null(none);
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, f->store, "multi"), 0);
	assert_int_equal(ib_image_layer_count(img), 1);
	ib_image_free(img);
	/* again: all cached */
	assert_int_equal(build(f, &id, df, NULL, "multi"), 0);
	assert_int_equal(counts.starts, 1);
	assert_int_equal(f->ran, 0);
}

static void test_failing_run(void **state)
{
	fixture *f = *state;
	const char df[] =
		"FROM scratch\n"
		"ENV X=1\n"
		"RUN echo \"about to fail\" >&2; exit 3\n"
		"LABEL after=yes\n";
	ib_digest id;
	ib_assert_error_contains(build(f, &id, df, NULL, "broken"), "exit code 3");
	const char *m = ib_error_last()->message;
	if (!strstr(m, "RUN") || !strstr(m, "about to fail"))
		fail_msg("the error does not name the step and show its output: %s", m);
	assert_int_equal(counts.starts, 1);
	assert_int_equal(counts.finishes, 1);
	assert_int_equal(counts.frees, counts.news);
	/* nothing is tagged */
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, f->store, "broken"), IB_ENOTFOUND);
	/* the step before it stays cached */
	const char fixed[] = "FROM scratch\nENV X=1\nRUN true\n";
	assert_int_equal(build(f, &id, fixed, NULL, "fixed"), 0);
	assert_string_equal(f->steps, "CR");
}

/* ---- backends that fail ---- */

static int failing_start(ib_isolation *self, ib_isolation_run **run, int *pid, ib_exit_status *st,
			 const ib_isolation_spec *s)
{
	(void)self, (void)run, (void)pid, (void)st, (void)s;
	return ib_error_set_str(IB_ERROR, "disk on fire (%d)", 451);
}

static int mute_start(ib_isolation *self, ib_isolation_run **run, int *pid, ib_exit_status *st,
		      const ib_isolation_spec *s)
{
	(void)self, (void)run, (void)pid, (void)st, (void)s;
	return -1;
}

static int mute_finish(ib_isolation *self, ib_isolation_run *run, int ws, ib_exit_status *out)
{
	(void)self, (void)run, (void)ws, (void)out;
	return 0;
}

static void plain_free(ib_isolation *self)
{
	free(self);
}

static int failing_iso_new(ib_isolation **out, const ib_execute_options *opts, void *param)
{
	(void)opts;
	ib_isolation tmpl = IB_ISOLATION_INIT;
	ib_isolation *iso = malloc(sizeof *iso);
	*iso = tmpl;
	iso->start = param ? failing_start : mute_start;
	iso->finish = mute_finish;
	iso->free = plain_free;
	iso->features = IB_ISOLATION_RO_NETWORK_FILES; /* it binds nothing */
	*out = iso;
	return 0;
}

static void test_isolation_errors(void **state)
{
	fixture *f = *state;
	const char df[] = "FROM scratch\nRUN true\n";
	ib_digest id;
	assert_int_equal(ib_isolation_register("on-fire", failing_iso_new, (void *)1), 0);
	assert_int_equal(ib_isolation_register("mute", failing_iso_new, NULL), 0);
	ib_assert_error_contains(build_ex(f, &id, df, NULL, NULL, "on-fire", "copy"), "disk on fire (451)");
	assert_int_equal(ib_error_last()->layer, IB_LAYER_EXECUTE);
	ib_assert_error_contains(build_ex(f, &id, df, NULL, NULL, "mute", "copy"),
				 "isolation backend `mute`: start failed without a reason");
	/* an error of an earlier call is not taken for the backend's */
	ib_error_set_str(IB_ENOTFOUND, "stale error");
	ib_assert_error_contains(build_ex(f, &id, df, NULL, NULL, "mute", "copy"), "without a reason");
	assert_null(strstr(ib_error_last()->message, "stale"));
	/* the registry: names, listing, unregistering */
	ib_buf names = IB_BUF_INIT;
	assert_int_equal(ib_isolation_list(&names), 0);
	assert_non_null(strstr(names.ptr, "on-fire,mute"));
	assert_int_equal(ib_isolation_unregister("on-fire"), 0);
	assert_int_equal(ib_isolation_unregister("mute"), 0);
	assert_int_equal(ib_isolation_list(&names), 0);
	assert_null(strstr(names.ptr, "mute"));
	ib_buf_dispose(&names);
	ib_assert_error_contains(build_ex(f, &id, df, NULL, NULL, "mute", "copy"),
				 "no isolation backend named `mute`");
	ib_assert_error_contains(ib_isolation_register("Mute!", failing_iso_new, NULL),
				 "isolation backend name `Mute!` is not 1..32 characters of [a-z0-9_-]");
	ib_isolation iso;
	ib_assert_error_contains(ib_isolation_init(&iso, 99), "version 99");
}

typedef struct {
	ib_snapshotter parent;
	int with_reason;
} failing_snap;

static int snap_prepare(ib_snapshotter *self, const char *key, const ib_digest *chain, size_t n)
{
	(void)key, (void)chain, (void)n;
	if (((failing_snap *)self)->with_reason)
		return ib_error_set_str(IB_ERROR, "disk on fire");
	return IB_ERROR;
}

static int snap_mounted(ib_snapshotter *self, const char *key)
{
	(void)self, (void)key;
	return IB_ENOTFOUND; /* never has any: a normal answer, not a failure */
}

static void snap_free(ib_snapshotter *self)
{
	free(self);
}

static int failing_snap_new(ib_snapshotter **out, const char *dir, void *param)
{
	(void)dir;
	failing_snap *s = calloc(1, sizeof *s);
	assert_int_equal(ib_snapshotter_init(&s->parent, IB_SNAPSHOTTER_VERSION), 0);
	s->parent.prepare = snap_prepare;
	s->parent.mounted = snap_mounted;
	s->parent.free = snap_free;
	s->with_reason = param != NULL;
	*out = &s->parent;
	return 0;
}

static int refusing_snap_new(ib_snapshotter **out, const char *dir, void *param)
{
	(void)out, (void)dir, (void)param;
	return IB_EUNSUPPORTED;
}

static void test_snapshotter_errors(void **state)
{
	fixture *f = *state;
	put(f->ctx, "a.txt", "a");
	const char df[] = "FROM scratch\nCOPY a.txt /\n";
	ib_digest id;
	assert_int_equal(ib_snapshotter_register("on-fire", failing_snap_new, (void *)1), 0);
	assert_int_equal(ib_snapshotter_register("mute", failing_snap_new, NULL), 0);
	assert_int_equal(ib_snapshotter_register("refusing", refusing_snap_new, NULL), 0);
	ib_assert_error_contains(build_ex(f, &id, df, NULL, NULL, "fake", "on-fire"), "disk on fire");
	assert_int_equal(ib_error_last()->layer, IB_LAYER_SNAPSHOT);
	ib_assert_error_contains(build_ex(f, &id, df, NULL, NULL, "fake", "mute"),
				 "snapshotter `mute`: prepare failed without a reason");
	ib_assert_error_contains(build_ex(f, &id, df, NULL, NULL, "fake", "refusing"),
				 "snapshotter `refusing`: making an instance failed without a reason");
	assert_int_equal(ib_error_last()->code, IB_EUNSUPPORTED);
	ib_buf names = IB_BUF_INIT;
	assert_int_equal(ib_snapshotter_list(&names), 0);
	assert_non_null(strstr(names.ptr, "copy"));
	assert_non_null(strstr(names.ptr, "on-fire,mute,refusing"));
	assert_int_equal(ib_snapshotter_unregister("on-fire"), 0);
	assert_int_equal(ib_snapshotter_unregister("mute"), 0);
	assert_int_equal(ib_snapshotter_unregister("refusing"), 0);
	ib_assert_error_contains(ib_snapshotter_unregister("mute"), "no snapshotter named `mute`");
	assert_int_equal(ib_snapshotter_list(&names), 0);
	assert_null(strstr(names.ptr, "mute"));
	ib_buf_dispose(&names);
	ib_snapshotter s;
	ib_assert_error_contains(ib_snapshotter_init(&s, 99), "version 99");
}

/* The final ib_shutdown() forgets registrations; the built-in backends stay. */
static void test_shutdown_forgets_registrations(void **state)
{
	(void)state;
	assert_int_equal(ib_init(), 1);
	assert_int_equal(ib_isolation_register("temp-iso", failing_iso_new, NULL), 0);
	assert_int_equal(ib_snapshotter_register("temp-snap", failing_snap_new, NULL), 0);
	assert_int_equal(ib_init(), 2);
	assert_int_equal(ib_shutdown(), 1); /* not the last: still there */
	ib_buf names = IB_BUF_INIT;
	assert_int_equal(ib_isolation_list(&names), 0);
	assert_non_null(strstr(names.ptr, "temp-iso"));
	assert_int_equal(ib_shutdown(), 0);
	assert_int_equal(ib_isolation_list(&names), 0);
	assert_null(strstr(names.ptr, "temp-iso"));
	assert_non_null(strstr(names.ptr, "chroot"));
	assert_int_equal(ib_snapshotter_list(&names), 0);
	assert_null(strstr(names.ptr, "temp-snap"));
	assert_string_equal(names.ptr, "overlay,copy");
	ib_buf_dispose(&names);
}

DEFINE_GROUP(orchestrator_tests,
	cmocka_unit_test_setup_teardown(test_cache_hits_and_misses, setup, teardown),
	cmocka_unit_test_setup_teardown(test_metadata_steps, setup, teardown),
	cmocka_unit_test_setup_teardown(test_multi_stage_copy_from, setup, teardown),
	cmocka_unit_test_setup_teardown(test_failing_run, setup, teardown),
	cmocka_unit_test_setup_teardown(test_isolation_errors, setup, teardown),
	cmocka_unit_test_setup_teardown(test_snapshotter_errors, setup, teardown),
	cmocka_unit_test(test_shutdown_forgets_registrations),
)
