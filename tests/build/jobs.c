/*
 * Stages in parallel (ib_build_options.jobs) without root, through the copy
 * snapshotter and the fake isolation backend (RUN's shell on the host):
 *
 * - a rendezvous: each of two independent stages writes its file into a
 *   shared directory and waits (up to a timeout) for the other's, so the
 *   build passes only when both run at once, and fails one after the other
 *   (jobs = 1);
 * - the image is the same whatever jobs is;
 * - callbacks come on the calling thread, one at a time, steps numbered
 *   1..N in the order they start, each stage's steps in their order;
 * - a failing stage stops the one running beside it (its process killed,
 *   no snapshot left) and its error is the build's.
 */
#include "tests.h"
#include "fake_isolation.h"
#include "imagebuild/build.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

static fake_isolation_counts counts;

typedef struct {
	char *dir;
	char *ctx;
	char *meet;            /* the rendezvous directory (RUN runs on the host) */
	ib_store *store;
	pthread_t caller;
	int inside;            /* a callback is running */
	int off_thread, overlap;
	uint64_t last_step;
	int steps_in_order;    /* every STEP's number is the one after the last */
	char order[4096];      /* the labels of the STEPs, in order */
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->dir = ib_test_tmpdir("jobs");
	char p[4200];
	snprintf(p, sizeof p, "%s/store", f->dir);
	assert_int_equal(ib_store_open(&f->store, p, NULL), 0);
	snprintf(p, sizeof p, "%s/ctx", f->dir);
	mkdir(p, 0755);
	f->ctx = strdup(p);
	snprintf(p, sizeof p, "%s/meet", f->dir);
	mkdir(p, 0755);
	f->meet = strdup(p);
	assert_int_equal(ib_isolation_register("fake", fake_isolation_new, &counts), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char cmd[4400];
	ib_store_free(f->store);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
	free(f->dir);
	free(f->ctx);
	free(f->meet);
	free(f);
	return 0;
}

static int on_progress(const ib_progress *p, void *payload)
{
	fixture *f = payload;
	if (!pthread_equal(pthread_self(), f->caller))
		f->off_thread = 1;
	if (__atomic_exchange_n(&f->inside, 1, __ATOMIC_SEQ_CST))
		f->overlap = 1;
	if (p->kind == IB_PROGRESS_STEP) {
		if (p->current != f->last_step + 1)
			f->steps_in_order = 0;
		f->last_step = p->current;
		size_t n = strlen(f->order);
		snprintf(f->order + n, sizeof f->order - n, "%s%s", n ? "," : "", p->id);
	}
	usleep(1000); /* a slow callback: another thread calling it meanwhile would be seen */
	__atomic_store_n(&f->inside, 0, __ATOMIC_SEQ_CST);
	return 0;
}

static int build(fixture *f, ib_digest *id, const char *df, unsigned int jobs, int no_cache)
{
	char arg[4200];
	snprintf(arg, sizeof arg, "MEET=%s", f->meet);
	const char *args[] = { arg, NULL };
	ib_build_options o = IB_BUILD_OPTIONS_INIT;
	o.context = f->ctx;
	o.dockerfile_content = df;
	o.dockerfile_len = strlen(df);
	o.build_args = args;
	o.isolation = "fake";
	o.snapshotter = "copy";
	o.pull = IB_PULL_NEVER;
	o.no_cache = no_cache;
	o.jobs = jobs;
	o.use_source_date_epoch = 1; /* the same image whenever it is built */
	o.source_date_epoch = 1700000000;
	ib_callbacks cb = IB_CALLBACKS_INIT;
	cb.progress = on_progress;
	cb.payload = f;
	o.callbacks = &cb;
	f->caller = pthread_self();
	f->off_thread = f->overlap = 0;
	f->last_step = 0;
	f->steps_in_order = 1;
	f->order[0] = '\0';
	return ib_build(id, f->store, &o);
}

/* No snapshot of a build stays in the copy snapshotter. */
static void assert_no_snapshots(fixture *f)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/store/snapshots/copy/active", f->dir);
	DIR *d = opendir(p);
	if (!d)
		return; /* never made */
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			fail_msg("snapshot `%s` left behind", e->d_name);
	closedir(d);
}

/* Each stage writes its name and waits (120 times 50 ms) for the other's. */
static const char rendezvous[] =
	"FROM scratch AS left\n"
	"ARG MEET\n"
	"RUN echo left > \"$MEET/left\"; i=0; while [ ! -f \"$MEET/right\" ]; do i=$((i+1)); "
	"[ $i -gt 120 ] && { echo 'left: right never came'; exit 1; }; sleep 0.05; done; "
	"echo left-met-right > \"$IB_FAKE_ROOT/left.txt\"\n"
	"FROM scratch AS right\n"
	"ARG MEET\n"
	"RUN echo right > \"$MEET/right\"; i=0; while [ ! -f \"$MEET/left\" ]; do i=$((i+1)); "
	"[ $i -gt 120 ] && { echo 'right: left never came'; exit 1; }; sleep 0.05; done; "
	"echo right-met-left > \"$IB_FAKE_ROOT/right.txt\"\n"
	"FROM scratch\n"
	"COPY --from=left /left.txt /\n"
	"COPY --from=right /right.txt /\n";

static void clear_meet(fixture *f)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/left", f->meet);
	unlink(p);
	snprintf(p, sizeof p, "%s/right", f->meet);
	unlink(p);
}

static void test_rendezvous(void **state)
{
	fixture *f = *state;
	ib_digest id;
	if (build(f, &id, rendezvous, 2, 0) < 0)
		fail_msg("jobs=2: %s", ib_error_last()->message);
	assert_false(f->off_thread);
	assert_false(f->overlap);
	assert_true(f->steps_in_order);
	assert_int_equal(f->last_step, 6);
	/* BuildKit's labels; each stage's steps in their order, the last stage's after both */
	const char *l1 = strstr(f->order, "[left 1/2]"), *l2 = strstr(f->order, "[left 2/2]");
	const char *r1 = strstr(f->order, "[right 1/2]"), *r2 = strstr(f->order, "[right 2/2]");
	const char *tail = ",[stage-2 1/2],[stage-2 2/2]";
	size_t n = strlen(f->order);
	if (!l1 || !l2 || !r1 || !r2 || l1 > l2 || r1 > r2 || n < strlen(tail) ||
	    strcmp(f->order + n - strlen(tail), tail))
		fail_msg("steps in the order %s", f->order);
	assert_no_snapshots(f);
	clear_meet(f);
	/* one stage after the other: the first waits for a file that never comes */
	ib_digest id1;
	int rc = build(f, &id1, rendezvous, 1, 1);
	assert_true(rc < 0);
	if (!strstr(ib_error_last()->message, "never came"))
		fail_msg("jobs=1: %s", ib_error_last()->message);
	assert_no_snapshots(f);
}

/* Three independent stages and one that needs two of them: the same image whatever jobs is. */
static const char independent[] =
	"FROM scratch AS one\n"
	"RUN echo one > \"$IB_FAKE_ROOT/one\"\n"
	"FROM scratch AS two\n"
	"RUN echo two > \"$IB_FAKE_ROOT/two\"\n"
	"FROM scratch AS three\n"
	"COPY --from=one /one /\n"
	"RUN echo three >> \"$IB_FAKE_ROOT/one\"\n"
	"FROM scratch AS four\n"
	"RUN echo four > \"$IB_FAKE_ROOT/four\"\n"
	"FROM scratch\n"
	"COPY --from=three /one /\n"
	"COPY --from=two /two /\n"
	"COPY --from=four /four /\n";

static void test_same_image(void **state)
{
	fixture *f = *state;
	ib_digest a, b, c;
	if (build(f, &a, independent, 1, 1) < 0)
		fail_msg("jobs=1: %s", ib_error_last()->message);
	if (build(f, &b, independent, 3, 1) < 0)
		fail_msg("jobs=3: %s", ib_error_last()->message);
	assert_true(f->steps_in_order);
	assert_false(f->off_thread);
	assert_false(f->overlap);
	if (build(f, &c, independent, 0, 1) < 0) /* the online CPUs */
		fail_msg("jobs=0: %s", ib_error_last()->message);
	char ha[IB_DIGEST_STRLEN], hb[IB_DIGEST_STRLEN], hc[IB_DIGEST_STRLEN];
	ib_digest_fmt(ha, &a);
	ib_digest_fmt(hb, &b);
	ib_digest_fmt(hc, &c);
	assert_string_equal(ha, hb);
	assert_string_equal(ha, hc);
	assert_no_snapshots(f);
}

/* A stage fails while another waits: that one is stopped, and the first error is the build's. */
static void test_failure_stops_others(void **state)
{
	fixture *f = *state;
	const char df[] =
		"FROM scratch AS waits\n"
		"ARG MEET\n"
		"RUN echo $$ > \"$MEET/pid\"; i=0; while [ ! -f \"$MEET/never\" ]; do i=$((i+1)); "
		"[ $i -gt 1200 ] && exit 0; sleep 0.05; done\n"
		"FROM scratch AS fails\n"
		"ARG MEET\n"
		"RUN i=0; while [ ! -s \"$MEET/pid\" ]; do i=$((i+1)); [ $i -gt 200 ] && exit 9; sleep 0.05; done; "
		"echo broken-stage >&2; exit 7\n"
		"FROM scratch\n"
		"COPY --from=waits / /w\n"
		"COPY --from=fails / /f\n";
	ib_digest id;
	int rc = build(f, &id, df, 2, 0);
	assert_true(rc < 0);
	const char *m = ib_error_last()->message;
	if (!strstr(m, "[fails 2/2]") || !strstr(m, "exit code 7") || !strstr(m, "broken-stage"))
		fail_msg("not the failing stage's error: %s", m);
	/* the waiting stage's shell was killed (the fake backend kills the shell only) */
	char p[4200], buf[32] = "";
	snprintf(p, sizeof p, "%s/pid", f->meet);
	FILE *fp = fopen(p, "r");
	assert_non_null(fp);
	assert_non_null(fgets(buf, sizeof buf, fp));
	fclose(fp);
	pid_t pid = (pid_t)atoi(buf);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
	assert_no_snapshots(f);
	unlink(p);
}

DEFINE_GROUP(jobs_tests,
	cmocka_unit_test_setup_teardown(test_rendezvous, setup, teardown),
	cmocka_unit_test_setup_teardown(test_same_image, setup, teardown),
	cmocka_unit_test_setup_teardown(test_failure_stops_others, setup, teardown),
)
