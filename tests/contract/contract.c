/*
 * The embedding contract of common.h, through the public API only, on a
 * busybox image made offline (tests/resources/make-busybox-tar.sh):
 *
 * - cancellation: a build whose `RUN sleep 613` prints nothing, cancelled
 *   from another thread through ib_callbacks.cancel, returns IB_EUSER
 *   within 1 s, and leaves no process, no mount and no snapshot (each
 *   snapshotter);
 * - one rule for callback values: a callback returning 42 makes ib_build
 *   (STEP, OUTPUT of a running RUN, BYTES of a layer), ib_store_save,
 *   ib_store_load, ib_store_import, ib_snapshot_diff, ib_snapshot_list,
 *   ib_snapshot_layer_list, ib_pull and ib_push return 42;
 * - progress: a rebuild whose steps all come from the cache still reports
 *   STEP (and STEP_DONE) with current/total for every step.
 *
 * Needs root (the namespaces isolation, overlayfs). ib_pull/ib_push run
 * against the registry contract.sh starts ($IB_TEST_REGISTRY).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <imagebuild.h>
#include "ib_test.h"

#define SLEEP_ARG "613" /* `sleep 613`: how the test finds the RUN's process in /proc */

static char *tmp;
static char store_root[4096];
static ib_store *store;

static void write_file(const char *dir, const char *name, const char *content)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

/* A fresh context directory holding `dockerfile`. */
static char *context(const char *tag, const char *dockerfile)
{
	char *dir = malloc(4096);
	snprintf(dir, 4096, "%s/ctx-%s", tmp, tag);
	mkdir(dir, 0755);
	write_file(dir, "Dockerfile", dockerfile);
	write_file(dir, "f", "a file\n");
	return dir;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Processes whose command line is `sleep 613`. */
static int sleepers(void)
{
	DIR *d = opendir("/proc");
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char p[300], buf[256];
		snprintf(p, sizeof p, "/proc/%s/cmdline", e->d_name);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = 0;
		const char *base = strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf;
		size_t l = strlen(buf);
		if (!strcmp(base, "sleep") && (size_t)r > l + 1 && !strcmp(buf + l + 1, SLEEP_ARG))
			n++;
	}
	closedir(d);
	return n;
}

/* Lines of /proc/self/mountinfo under the test's directory. */
static int mounts_under_tmp(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	assert_non_null(f);
	char line[8192];
	int n = 0;
	while (fgets(line, sizeof line, f))
		if (strstr(line, tmp)) {
			fprintf(stderr, "left mounted: %s", line);
			n++;
		}
	fclose(f);
	return n;
}

static int count_key(const char *key, void *payload)
{
	fprintf(stderr, "left snapshot: %s\n", key);
	(*(int *)payload)++;
	return 0;
}

/* Nothing of a stopped build stays: process, mount, snapshot (fsck clean). */
static void assert_nothing_left(const char *snapshotter)
{
	assert_int_equal(sleepers(), 0);
	assert_int_equal(mounts_under_tmp(), 0);
	ib_snapshotter *snap = NULL;
	ib_snapshotter_options so = IB_SNAPSHOTTER_OPTIONS_INIT;
	so.flags = IB_SNAPSHOTTER_KEEP_STALE; /* see leftovers rather than clean them */
	assert_int_equal(ib_snapshotter_open(&snap, store, snapshotter, &so), 0);
	ib_buf report = IB_BUF_INIT;
	int rc = ib_snapshotter_fsck(&report, snap);
	if (rc != 0)
		fprintf(stderr, "fsck: %s\n", report.ptr ? report.ptr : ib_error_last()->message);
	assert_int_equal(rc, 0);
	ib_buf_dispose(&report);
	int n = 0;
	assert_int_equal(ib_snapshot_list(snap, count_key, &n), 0);
	assert_int_equal(n, 0);
	ib_snapshotter_free(snap);
}

/* ---- cancellation ---- */

typedef struct {
	volatile int cancel;
	volatile int run_started;
	volatile int returned;
	double cancelled_at;
} canceller;

/* SIGKILL every `sleep 613` (so that a build that ignores its cancel flag fails rather than hangs). */
static void kill_sleepers(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char p[300], buf[256];
		snprintf(p, sizeof p, "/proc/%s/cmdline", e->d_name);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = 0;
		const char *base = strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf;
		size_t l = strlen(buf);
		if (!strcmp(base, "sleep") && (size_t)r > l + 1 && !strcmp(buf + l + 1, SLEEP_ARG))
			kill(atoi(e->d_name), SIGKILL);
	}
	if (d)
		closedir(d);
}

static int note_run(const ib_progress *p, void *payload)
{
	canceller *c = payload;
	if (p->kind == IB_PROGRESS_STEP && p->text && !strncmp(p->text, "RUN", 3))
		c->run_started = 1;
	return 0;
}

static void *cancel_when_sleeping(void *payload)
{
	canceller *c = payload;
	/* wait for the RUN's `sleep` to be running, then cancel */
	for (int i = 0; i < 3000 && !(c->run_started && sleepers() > 0); i++)
		usleep(10000);
	usleep(200000);
	c->cancelled_at = now();
	c->cancel = 1;
	for (int i = 0; i < 500 && !c->returned; i++)
		usleep(10000);
	if (!c->returned) {
		fprintf(stderr, "the build ignored its cancel flag for 5 s: killing its sleep\n");
		kill_sleepers();
	}
	return NULL;
}

static void cancel_silent_run(const char *snapshotter)
{
	char *ctx = context(snapshotter, "FROM busybox\nRUN sleep " SLEEP_ARG "\n");
	canceller c = { 0, 0, 0, 0 };
	ib_callbacks cb = IB_CALLBACKS_INIT;
	cb.progress = note_run;
	cb.payload = &c;
	cb.cancel = &c.cancel;
	ib_build_options o = IB_BUILD_OPTIONS_INIT;
	o.context = ctx;
	o.snapshotter = snapshotter;
	o.callbacks = &cb;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, cancel_when_sleeping, &c), 0);
	int rc = ib_build(NULL, store, &o);
	double returned = now();
	c.returned = 1;
	pthread_join(t, NULL);
	assert_true(c.run_started);
	assert_true(c.cancelled_at > 0);
	fprintf(stderr, "%s: ib_build returned %d %.0f ms after the cancel: %s\n", snapshotter, rc,
		(returned - c.cancelled_at) * 1000, ib_error_last()->message);
	assert_int_equal(rc, IB_EUSER);
	assert_int_equal(ib_error_last()->code, IB_EUSER);
	assert_non_null(strstr(ib_error_last()->message, "cancelled"));
	assert_true(returned - c.cancelled_at < 1.0);
	assert_nothing_left(snapshotter);
	free(ctx);
}

static void test_cancel_overlay(void **state)
{
	(void)state;
	cancel_silent_run("overlay");
}

static void test_cancel_copy(void **state)
{
	(void)state;
	cancel_silent_run("copy");
}

/* A container's process: output to callbacks->log, cancelled through callbacks->cancel. */
typedef struct {
	int lines;
	int hello;
} log_lines;

static void on_log(ib_log_level level, const char *line, void *payload)
{
	(void)level;
	log_lines *l = payload;
	l->lines++;
	l->hello += !strcmp(line, "hello from the container");
}

static void test_container_run(void **state)
{
	(void)state;
	ib_container *c = NULL;
	assert_int_equal(ib_container_create(&c, store, "busybox", NULL), 0);
	log_lines l = { 0, 0 };
	ib_callbacks cb = IB_CALLBACKS_INIT;
	cb.log = on_log;
	cb.payload = &l;
	const char *echo[] = { "echo", "hello from the container", NULL };
	ib_container_run_options ro = IB_CONTAINER_RUN_OPTIONS_INIT;
	ro.argv = echo;
	ro.callbacks = &cb;
	ib_exit_status st;
	assert_int_equal(ib_container_run(&st, c, &ro), 0);
	assert_int_equal(st.code, 0);
	assert_int_equal(l.hello, 1);
	/* a silent process, cancelled from another thread */
	const char *sleeper[] = { "sleep", SLEEP_ARG, NULL };
	canceller k = { 0, 1, 0, 0 };
	cb.cancel = &k.cancel;
	ro.argv = sleeper;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, cancel_when_sleeping, &k), 0);
	int rc = ib_container_run(&st, c, &ro);
	double returned = now();
	k.returned = 1;
	pthread_join(t, NULL);
	fprintf(stderr, "container run returned %d %.0f ms after the cancel: %s\n", rc,
		(returned - k.cancelled_at) * 1000, ib_error_last()->message);
	assert_int_equal(rc, IB_EUSER);
	assert_non_null(strstr(ib_error_last()->message, "cancelled"));
	assert_true(returned - k.cancelled_at < 1.0);
	assert_int_equal(sleepers(), 0);
	assert_int_equal(mounts_under_tmp(), 0);
	assert_int_equal(ib_container_remove(store, ib_container_id(c)), 0);
	ib_container_free(c);
}

/* Cancelled before it starts: nothing runs, IB_EUSER. */
static void test_cancel_before(void **state)
{
	(void)state;
	char *ctx = context("before", "FROM busybox\nRUN sleep " SLEEP_ARG "\n");
	volatile int cancel = 1;
	ib_callbacks cb = IB_CALLBACKS_INIT;
	cb.cancel = &cancel;
	ib_build_options o = IB_BUILD_OPTIONS_INIT;
	o.context = ctx;
	o.callbacks = &cb;
	assert_int_equal(ib_build(NULL, store, &o), IB_EUSER);
	assert_non_null(strstr(ib_error_last()->message, "cancelled"));
	assert_nothing_left(NULL);
	free(ctx);
}

/* ---- a callback's value is the call's ---- */

/* ib_build_options as programs built against version 3 have it (callbacks by value, then cancel) */
typedef struct {
	unsigned int version;
	const char *context, *dockerfile, *dockerfile_content;
	size_t dockerfile_len;
	const char *const *tags;
	const char *const *build_args;
	const char *target;
	int no_cache;
	const char *isolation, *snapshotter, *platform;
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
} build_options_v3;

typedef struct {
	int kind;    /* the ib_progress_kind to answer 42 to; -1: any */
	int calls;
} answer;

static int progress_42(const ib_progress *p, void *payload)
{
	answer *a = payload;
	a->calls++;
	return a->kind < 0 || (int)p->kind == a->kind ? 42 : 0;
}

static ib_callbacks callbacks_42(answer *a, int kind)
{
	ib_callbacks cb = IB_CALLBACKS_INIT;
	a->kind = kind;
	a->calls = 0;
	cb.progress = progress_42;
	cb.payload = a;
	return cb;
}

static void assert_42(int rc, const answer *a)
{
	if (rc != 42)
		fprintf(stderr, "returned %d: %s\n", rc, ib_error_last()->message);
	assert_int_equal(rc, 42);
	assert_true(a->calls > 0);
	assert_int_equal(ib_error_last()->code, 42);
	assert_int_equal(ib_error_last()->layer, IB_LAYER_CALLBACK);
}

static void build_42(const char *tag, const char *dockerfile, int kind)
{
	char *ctx = context(tag, dockerfile);
	answer a;
	ib_callbacks cb = callbacks_42(&a, kind);
	ib_build_options o = IB_BUILD_OPTIONS_INIT;
	o.context = ctx;
	o.no_cache = 1;
	o.callbacks = &cb;
	double t0 = now();
	assert_42(ib_build(NULL, store, &o), &a);
	assert_true(now() - t0 < 30); /* a running RUN was killed, not waited for */
	assert_nothing_left(NULL);
	free(ctx);
}

static int step_42(const ib_progress *p, void *payload)
{
	(void)payload;
	return p->kind == IB_PROGRESS_STEP ? 42 : 0;
}

/* A program built against version 3 of ib_build_options: its callbacks and cancel flag still work. */
static void test_build_options_v3(void **state)
{
	(void)state;
	char *ctx = context("v3", "FROM busybox\nRUN true\n");
	build_options_v3 old;
	assert_int_equal(ib_build_options_init((ib_build_options *)(void *)&old, 3), 0);
	assert_int_equal(old.version, 3);
	assert_int_equal(old.callbacks.version, 1);
	old.context = ctx;
	old.no_cache = 1;
	old.callbacks.progress = step_42;
	assert_int_equal(ib_build(NULL, store, (const ib_build_options *)(const void *)&old), 42);
	volatile int cancel = 1;
	old.callbacks.progress = NULL;
	old.cancel = &cancel;
	assert_int_equal(ib_build(NULL, store, (const ib_build_options *)(const void *)&old), IB_EUSER);
	assert_non_null(strstr(ib_error_last()->message, "cancelled"));
	assert_nothing_left(NULL);
	free(ctx);
}

static void test_build_42(void **state)
{
	(void)state;
	build_42("step42", "FROM busybox\nRUN true\n", IB_PROGRESS_STEP);
	/* the RUN runs when its output's callback answers: it is killed */
	build_42("output42", "FROM busybox\nRUN echo hello; sleep " SLEEP_ARG "\n", IB_PROGRESS_OUTPUT);
	/* while the step's layer is written */
	build_42("bytes42", "FROM busybox\nRUN echo x >/x\n", IB_PROGRESS_BYTES);
}

static void test_store_42(void **state)
{
	(void)state;
	answer a;
	char path[4096];
	/* save: an OCI directory, not left behind half-written */
	ib_callbacks cb = callbacks_42(&a, -1);
	ib_save_options so = IB_SAVE_OPTIONS_INIT;
	so.callbacks = &cb;
	const char *names[] = { "busybox" };
	snprintf(path, sizeof path, "%s/saved-oci", tmp);
	assert_42(ib_store_save(store, names, 1, path, &so), &a);
	struct stat st;
	assert_int_equal(stat(path, &st), -1);
	/* save as an archive: also 42; then a plain save to load from */
	snprintf(path, sizeof path, "%s/saved.tar", tmp);
	so.format = IB_ARCHIVE_DOCKER;
	cb = callbacks_42(&a, -1);
	assert_42(ib_store_save(store, names, 1, path, &so), &a);
	so.callbacks = NULL;
	assert_int_equal(ib_store_save(store, names, 1, path, &so), 0);
	/* load */
	cb = callbacks_42(&a, -1);
	ib_load_options lo = IB_LOAD_OPTIONS_INIT;
	lo.callbacks = &cb;
	assert_42(ib_store_load(NULL, store, path, &lo), &a);
	/* import */
	cb = callbacks_42(&a, -1);
	ib_import_options io = IB_IMPORT_OPTIONS_INIT;
	io.callbacks = &cb;
	io.name = "imported42";
	assert_42(ib_store_import(NULL, store, getenv("IB_BUSYBOX_TAR"), &io), &a);
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, store, "imported42"), IB_ENOTFOUND);
	ib_error_clear();
}

static int key_42(const char *key, void *payload)
{
	(void)key;
	(*(int *)payload)++;
	return 42;
}

static int layer_42(const ib_digest *d, void *payload)
{
	(void)d;
	(*(int *)payload)++;
	return 42;
}

static int write_42(const void *data, size_t len, void *payload)
{
	(void)data, (void)len;
	(*(int *)payload)++;
	return 42;
}

static int lookup_42(const char *name, int found, void *payload)
{
	(void)name, (void)found;
	(*(int *)payload)++;
	return 42;
}

static void test_iterators_42(void **state)
{
	(void)state;
	/* the expansion's lookup */
	int looked = 0;
	ib_expand_options eo = IB_EXPAND_OPTIONS_INIT;
	eo.lookup = lookup_42;
	eo.payload = &looked;
	ib_buf out = IB_BUF_INIT;
	assert_int_equal(ib_expand_word(&out, "a $X b", &eo), 42);
	assert_int_equal(looked, 1);
	assert_int_equal(ib_error_last()->code, 42);
	ib_buf_dispose(&out);
	ib_snapshotter *snap = NULL;
	assert_int_equal(ib_snapshotter_open(&snap, store, "overlay", NULL), 0);
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, store, "busybox"), 0);
	const ib_digest *layer = &ib_image_layer(img, 0)->diff_id;
	assert_int_equal(ib_snapshot_prepare(snap, "contract42", layer, 1), 0);
	int calls = 0;
	assert_int_equal(ib_snapshot_list(snap, key_42, &calls), 42);
	assert_int_equal(calls, 1);
	calls = 0;
	assert_int_equal(ib_snapshot_layer_list(snap, layer_42, &calls), 42);
	assert_int_equal(calls, 1);
	calls = 0;
	assert_int_equal(ib_snapshot_diff(snap, "contract42", NULL, write_42, &calls), 42);
	assert_int_equal(calls, 1);
	/* the building block too */
	calls = 0;
	int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(ib_snapshot_diff_trees(dfd, -1, IB_DIFF_TREE, NULL, write_42, &calls), 42);
	assert_int_equal(calls, 1);
	close(dfd);
	/* the snapshotter's own callbacks: commit stopped by a BYTES report */
	answer a;
	ib_callbacks cb = callbacks_42(&a, IB_PROGRESS_BYTES);
	ib_snapshotter_options so = IB_SNAPSHOTTER_OPTIONS_INIT;
	so.callbacks = &cb;
	ib_snapshotter *snap2 = NULL;
	assert_int_equal(ib_snapshotter_open(&snap2, store, "overlay", &so), 0);
	assert_42(ib_snapshot_commit(NULL, NULL, snap2, "contract42", NULL), &a);
	ib_snapshotter_free(snap2);
	assert_int_equal(ib_snapshot_remove(snap, "contract42"), 0);
	ib_snapshotter_free(snap);
	ib_image_free(img);
}

static void test_registry_42(void **state)
{
	(void)state;
	const char *reg = getenv("IB_TEST_REGISTRY");
	if (!reg || !*reg) {
		skip();
		return;
	}
	char ref[512];
	snprintf(ref, sizeof ref, "%s/contract/busybox:42", reg);
	answer a;
	ib_callbacks cb = callbacks_42(&a, -1);
	ib_push_options po = IB_PUSH_OPTIONS_INIT;
	po.callbacks = &cb;
	assert_42(ib_push(NULL, store, "busybox", ref, &po), &a);
	po.callbacks = NULL;
	assert_int_equal(ib_push(NULL, store, "busybox", ref, &po), 0);
	/* pull into a fresh store, so blobs move */
	char root2[4096];
	snprintf(root2, sizeof root2, "%s/store2", tmp);
	ib_store *s2 = NULL;
	assert_int_equal(ib_store_open(&s2, root2, NULL), 0);
	cb = callbacks_42(&a, -1);
	ib_pull_options pl = IB_PULL_OPTIONS_INIT;
	pl.callbacks = &cb;
	assert_42(ib_pull(NULL, NULL, s2, ref, &pl), &a);
	/* and a cancelled pull is IB_EUSER */
	volatile int cancel = 1;
	ib_callbacks cc = IB_CALLBACKS_INIT;
	cc.cancel = &cancel;
	pl.callbacks = &cc;
	assert_int_equal(ib_pull(NULL, NULL, s2, ref, &pl), IB_EUSER);
	assert_non_null(strstr(ib_error_last()->message, "cancelled"));
	ib_store_free(s2);
}

/* ---- progress of a fully cached rebuild ---- */

typedef struct {
	int steps, done, cached;
	uint64_t last, total;
	int bad;
	int context_bytes, layer_bytes; /* BYTES "context" and "layer:<key>" */
} step_log;

static int record_steps(const ib_progress *p, void *payload)
{
	step_log *l = payload;
	if (p->kind == IB_PROGRESS_STEP) {
		l->steps++;
		if (p->current != l->last + 1 || p->total == 0 || (l->total && p->total != l->total) || !p->id ||
		    !p->text) {
			fprintf(stderr, "bad STEP: %s %s %llu/%llu\n", p->id ? p->id : "(null)", p->text ? p->text : "",
				(unsigned long long)p->current, (unsigned long long)p->total);
			l->bad++;
		}
		l->last = p->current;
		l->total = p->total;
		l->cached += p->cached != 0;
	} else if (p->kind == IB_PROGRESS_BYTES && p->id) {
		l->context_bytes += !strcmp(p->id, "context") && p->current > 0;
		l->layer_bytes += !strncmp(p->id, "layer:", 6) && p->current > 0;
	} else if (p->kind == IB_PROGRESS_STEP_DONE) {
		l->done++;
		if (p->current != l->last || p->total != l->total)
			l->bad++;
	}
	return 0;
}

static void test_cached_steps(void **state)
{
	(void)state;
	char *ctx = context("cached", "FROM busybox\nENV A=1\nRUN echo hi >/hi\nCOPY f /f\nCMD [\"sh\"]\n");
	for (int round = 0; round < 2; round++) {
		step_log l;
		memset(&l, 0, sizeof l);
		ib_callbacks cb = IB_CALLBACKS_INIT;
		cb.progress = record_steps;
		cb.payload = &l;
		ib_build_options o = IB_BUILD_OPTIONS_INIT;
		o.context = ctx;
		o.callbacks = &cb;
		int rc = ib_build(NULL, store, &o);
		if (rc)
			fprintf(stderr, "%s\n", ib_error_last()->message);
		assert_int_equal(rc, 0);
		assert_int_equal(l.bad, 0);
		assert_true(l.steps >= 4);
		assert_int_equal(l.done, l.steps);
		assert_int_equal((int)l.last, l.steps);
		assert_int_equal((int)l.total, l.steps);
		/* the second build: every step from the cache, and each reported */
		assert_int_equal(l.cached, round == 0 ? 0 : l.steps);
		/* the first hashes the context (COPY) and writes layers (RUN, COPY) */
		if (round == 0) {
			assert_true(l.context_bytes > 0);
			assert_true(l.layer_bytes > 0);
		}
	}
	free(ctx);
}

int main(void)
{
	if (geteuid() != 0)
		ib_test_skip_or_fail("the contract test runs builds: it needs root");
	const char *tar = getenv("IB_BUSYBOX_TAR");
	if (!tar || access(tar, R_OK) != 0)
		ib_test_skip_or_fail("no busybox tarball ($IB_BUSYBOX_TAR; contract.sh makes one)");
	tmp = ib_test_tmpdir("contract");
	snprintf(store_root, sizeof store_root, "%s/store", tmp);
	if (ib_store_open(&store, store_root, NULL) < 0) {
		fprintf(stderr, "%s\n", ib_error_last()->message);
		return 1;
	}
	ib_image_config *cfg = NULL;
	ib_import_options io = IB_IMPORT_OPTIONS_INIT;
	io.name = "busybox";
	if (ib_image_config_new(&cfg) < 0 || ib_commit_apply_change(cfg, "CMD [\"sh\"]") < 0 ||
	    (io.config = cfg, ib_store_import(NULL, store, tar, &io)) < 0) {
		fprintf(stderr, "import busybox: %s\n", ib_error_last()->message);
		return 1;
	}
	ib_image_config_free(cfg);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cancel_overlay),
		cmocka_unit_test(test_cancel_copy),
		cmocka_unit_test(test_cancel_before),
		cmocka_unit_test(test_container_run),
		cmocka_unit_test(test_build_42),
		cmocka_unit_test(test_build_options_v3),
		cmocka_unit_test(test_store_42),
		cmocka_unit_test(test_iterators_42),
		cmocka_unit_test(test_registry_42),
		cmocka_unit_test(test_cached_steps),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	ib_store_free(store);
	if (!failed) {
		char cmd[4200];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
	}
	return failed ? 1 : 0;
}
