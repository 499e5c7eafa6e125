/*
 * Stages in parallel (ib_build_options.jobs): the independent stages of a
 * multi-stage build run at once, each in a thread of the build.
 *
 * - The plan's stages form a DAG (FROM <stage>, COPY --from, RUN --mount
 *   from=; a named context replaces a stage and its needs). A stage starts
 *   once every stage it needs is done, in the plan's order, at most `jobs`
 *   at a time. A stage that names another the plan did not see it need
 *   (a --from expanded with the stage's own ARGs) waits for it
 *   (ib_build__stage_wait), and its slot is given to others meanwhile.
 * - Each stage thread works on a copy of the builder: the read-only parts
 *   (options, plan, Dockerfile, context, stages' states) are shared; it has
 *   its own store and snapshotter handles (which are single-thread) and its
 *   own lease on the store, its own step state (RUN's output tail, cancel
 *   flag) and its own list of snapshots, removed when it ends. What the
 *   stages share and change is behind the scheduler's locks: the images
 *   pulled (pull_mu), the downloads and git checkouts (fetch_mu), the
 *   context's checksum cache (its own lock, sums.c), the step numbers (mu).
 * - Callbacks still run on the calling thread, one at a time: a stage
 *   thread's report (and those of its pulls' threads) waits in a queue
 *   until the calling thread, which only dispatches while the stages run,
 *   has called the caller's callback, and gets its return value. Steps are
 *   numbered in the order their STEP reports are dispatched.
 * - A failure stops the others: the stage threads' cancel flag (the relay
 *   callbacks' `cancel`) is the scheduler's `abort`, set when a stage fails
 *   and when the caller's own cancel flag is seen set (polled every 20 ms);
 *   RUN's processes are killed, snapshots removed, and the build returns
 *   the first stage's error.
 */
#include "build/internal.h"
#include "build/copy.h"
#include "util/callback.h"
#include "util/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { ST_NONE = 0, ST_PENDING, ST_RUNNING, ST_DONE, ST_FAILED };

typedef struct relay {
	struct ib_build__sched *sc;
	builder *b;             /* the stage thread's builder, or NULL (the shared checksum cache) */
	ib_callbacks cb;        /* what the stage's work is given */
} relay;

typedef struct {
	builder b;              /* the stage's copy of the builder */
	relay rl;
	const ib_plan_stage *ps;
	size_t nth;
	pthread_t th;
	int started;
	int rc;
	ib_error_saved err;
} stage_job;

struct ib_build__sched {
	pthread_mutex_t mu;
	pthread_cond_t wake;    /* the calling thread: an event queued, a stage ended or waits */
	pthread_cond_t changed; /* the stage threads: an event handled, a stage ended */
	pthread_mutex_t pull_mu, fetch_mu;
	builder *root;
	ib_build__stage_fn fn;
	const ib_callbacks *user;
	int dispatching;
	volatile int abort;     /* the stage threads' cancel flag */
	ib_build__cbq q;        /* the callbacks' queue (relay.c), under mu */
	unsigned char *state;   /* ST_* by Dockerfile stage index */
	size_t running;         /* stage threads not waiting for another stage */
	relay shared;           /* for the checksum cache, which every stage uses */
	int failed;             /* the first failure is in err */
	int rc;
	ib_error_saved err;
};

/* ---- callbacks: queued to the calling thread ---- */

static int relay_progress(const ib_progress *p, void *payload)
{
	relay *r = payload;
	struct ib_build__sched *sc = r->sc;
	pthread_mutex_lock(&sc->mu);
	if (!sc->dispatching) { /* not while the stages run (cannot happen): call it here */
		pthread_mutex_unlock(&sc->mu);
		return sc->user->progress(p, sc->user->payload);
	}
	ib_build__cbev ev;
	memset(&ev, 0, sizeof ev);
	ev.p = *p;
	if (r->b && (p->kind == IB_PROGRESS_STEP || p->kind == IB_PROGRESS_STEP_DONE)) {
		/* numbered in the order the steps are reported to start */
		if (p->kind == IB_PROGRESS_STEP)
			r->b->step_no = ++sc->root->step_no;
		ev.p.current = r->b->step_no;
		ev.p.total = sc->root->step_total;
	}
	int rc = ib_build__cbq_wait(&sc->q, &ev);
	pthread_mutex_unlock(&sc->mu);
	return rc;
}

static void relay_log(ib_log_level level, const char *line, void *payload)
{
	relay *r = payload;
	struct ib_build__sched *sc = r->sc;
	pthread_mutex_lock(&sc->mu);
	if (!sc->dispatching) {
		pthread_mutex_unlock(&sc->mu);
		sc->user->log(level, line, sc->user->payload);
		return;
	}
	ib_build__cbev ev;
	memset(&ev, 0, sizeof ev);
	ev.is_log = 1;
	ev.level = level;
	ev.line = line;
	ib_build__cbq_wait(&sc->q, &ev);
	pthread_mutex_unlock(&sc->mu);
}

static void relay_init(relay *r, struct ib_build__sched *sc, builder *b)
{
	ib_callbacks c = IB_CALLBACKS_INIT;
	r->sc = sc;
	r->b = b;
	c.progress = sc->user && sc->user->progress ? relay_progress : NULL;
	c.log = sc->user && sc->user->log ? relay_log : NULL;
	c.payload = r;
	c.cancel = &sc->abort;
	r->cb = c;
}

/* ---- what the stages share ---- */

void ib_build__lock(builder *b, int which)
{
	struct ib_build__sched *sc = b->root ? b->root->sched : NULL;
	if (sc)
		pthread_mutex_lock(which == IB_BUILD__LOCK_PULL ? &sc->pull_mu : &sc->fetch_mu);
}

void ib_build__unlock(builder *b, int which)
{
	struct ib_build__sched *sc = b->root ? b->root->sched : NULL;
	if (sc)
		pthread_mutex_unlock(which == IB_BUILD__LOCK_PULL ? &sc->pull_mu : &sc->fetch_mu);
}

builder *ib_build__shared(builder *b)
{
	return b->root ? b->root : b;
}

void ib_build__steps_add(builder *b, uint64_t n)
{
	struct ib_build__sched *sc = b->root ? b->root->sched : NULL;
	if (!sc) {
		b->step_total += n;
		return;
	}
	pthread_mutex_lock(&sc->mu);
	sc->root->step_total += n;
	b->step_total = sc->root->step_total;
	pthread_mutex_unlock(&sc->mu);
}

void ib_build__step_next(builder *b)
{
	struct ib_build__sched *sc = b->root ? b->root->sched : NULL;
	if (!sc) {
		b->step_no++;
		return;
	}
	/* numbered when reported (relay_progress); without a progress callback, here */
	if (!sc->user || !sc->user->progress) {
		pthread_mutex_lock(&sc->mu);
		b->step_no = ++sc->root->step_no;
		pthread_mutex_unlock(&sc->mu);
	}
}

int ib_build__stage_wait(builder *b, size_t index)
{
	struct ib_build__sched *sc = b->root ? b->root->sched : NULL;
	if (!sc || index >= b->nstages)
		return 0;
	pthread_mutex_lock(&sc->mu);
	int waited = 0;
	while ((sc->state[index] == ST_PENDING || sc->state[index] == ST_RUNNING) && !sc->abort) {
		if (!waited++) {
			/* its slot goes to others (the one it waits for may need it) */
			sc->running--;
			pthread_cond_signal(&sc->wake);
		}
		pthread_cond_wait(&sc->changed, &sc->mu);
	}
	if (waited)
		sc->running++;
	int st = sc->state[index];
	pthread_mutex_unlock(&sc->mu);
	if (st == ST_FAILED || ((st == ST_PENDING || st == ST_RUNNING) && sc->abort))
		return ib_callback_cancel_error("the build, waiting for another stage");
	return 0;
}

/* ---- the stage threads ---- */

static int job_open(builder *b)
{
	int rc = ib_store_open(&b->store, ib_store_root(b->root->store), NULL);
	if (rc < 0)
		return rc;
	if ((rc = ib_store_lease_acquire(b->store)) < 0)
		return rc;
	b->leased = 1;
	ib_snapshotter_options so = IB_SNAPSHOTTER_OPTIONS_INIT;
	so.callbacks = b->o->callbacks;
	so.flags = IB_SNAPSHOTTER_KEEP_STALE; /* the build's own open reaped already */
	/* the backend the build opened (NULL options: the one it found usable) */
	return ib_snapshotter_open(&b->snap, b->store, ib_snapshotter_name(b->root->snap), &so);
}

static void job_close(builder *b)
{
	ib_error_saved saved;
	ib_error_save(&saved);
	while (b->snapshots.n && b->snap) {
		char *k = ib_strdup(b->snapshots.items[0]);
		if (!k)
			break;
		ib_build__drop_snapshot(b, k);
		free(k);
	}
	ib_strlist_clear(&b->snapshots);
	ib_build__tail_clear(b);
	ib_snapshotter_free(b->snap);
	b->snap = NULL;
	if (b->leased)
		ib_store_lease_release(b->store);
	b->leased = 0;
	ib_store_free(b->store);
	b->store = NULL;
	ib_error_restore(&saved);
}

static void *stage_thread(void *arg)
{
	stage_job *j = arg;
	builder *b = &j->b;
	struct ib_build__sched *sc = b->root->sched;
	int rc = job_open(b);
	if (rc == 0)
		rc = sc->fn(b, j->ps, j->nth, ib_plan_stage_count(b->plan));
	job_close(b);
	if (rc < 0)
		ib_error_save(&j->err);
	pthread_mutex_lock(&sc->mu);
	j->rc = rc;
	sc->state[j->ps->index] = rc < 0 ? ST_FAILED : ST_DONE;
	if (rc < 0) {
		if (!sc->failed) { /* the first failure: the build's error */
			sc->failed = 1;
			sc->rc = rc;
			sc->err = j->err;
			memset(&j->err, 0, sizeof j->err);
		}
		__atomic_store_n(&sc->abort, 1, __ATOMIC_RELAXED); /* read unlocked as the stages' cancel flag */
	}
	sc->running--;
	pthread_cond_broadcast(&sc->changed);
	pthread_cond_signal(&sc->wake);
	pthread_mutex_unlock(&sc->mu);
	ib_error_clear();
	return NULL;
}

/* A stage can start: every stage it needs is done. */
static int ready(struct ib_build__sched *sc, const ib_plan_stage *ps)
{
	for (size_t k = 0; k < ps->dep_count; k++)
		if (sc->state[ps->deps[k]] != ST_DONE && sc->state[ps->deps[k]] != ST_NONE)
			return 0;
	return 1;
}

unsigned int ib_build__jobs(const builder *b)
{
	unsigned int jobs = b->o->jobs;
	if (!jobs) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		jobs = n > 0 ? (unsigned int)n : 1;
	}
	if (jobs == 1)
		return 1;
	/* some two stages can run at once: two of one level (see ib_plan_stage.level) */
	size_t n = ib_plan_stage_count(b->plan);
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++)
			if (ib_plan_stage_at(b->plan, i)->level == ib_plan_stage_at(b->plan, k)->level)
				return jobs;
	return 1;
}

int ib_build__run_stages(builder *b, unsigned int jobs, ib_build__stage_fn fn)
{
	size_t n = ib_plan_stage_count(b->plan);
	struct ib_build__sched sc;
	memset(&sc, 0, sizeof sc);
	stage_job *js = ib_calloc(n, sizeof *js);
	sc.state = ib_calloc(b->nstages, 1);
	if (!js || !sc.state) {
		free(js);
		free(sc.state);
		return IB_ERROR;
	}
	pthread_mutex_init(&sc.mu, NULL);
	pthread_mutex_init(&sc.pull_mu, NULL);
	pthread_mutex_init(&sc.fetch_mu, NULL);
	pthread_cond_init(&sc.wake, NULL);
	pthread_cond_init(&sc.changed, NULL);
	sc.root = b;
	sc.user = b->o->callbacks;
	sc.q.mu = &sc.mu;
	sc.q.wake = &sc.wake;
	sc.q.changed = &sc.changed;
	sc.q.user = sc.user;
	sc.fn = fn;
	relay_init(&sc.shared, &sc, NULL);
	/* every copy made before any thread runs: the stages change the builder only under locks */
	for (size_t i = 0; i < n; i++) {
		stage_job *j = &js[i];
		j->ps = ib_plan_stage_at(b->plan, i);
		j->nth = i;
		j->b = *b;
		j->b.root = b;
		j->b.sched = NULL;
		j->b.o = &j->b.opts;
		j->b.store = NULL;
		j->b.snap = NULL;
		j->b.leased = 0;
		memset(&j->b.snapshots, 0, sizeof j->b.snapshots);
		memset(&j->b.pulled, 0, sizeof j->b.pulled);
		memset(&j->b.fetched, 0, sizeof j->b.fetched);
		memset(j->b.tail, 0, sizeof j->b.tail);
		j->b.tail_next = 0;
		j->b.cancel = 0;
		j->b.cancel_value = 0;
		j->b.step_label = NULL;
		relay_init(&j->rl, &sc, &j->b);
		j->b.opts.callbacks = &j->rl.cb;
		sc.state[j->ps->index] = ST_PENDING;
	}
	b->sched = &sc;
	ib_build__sums_set_callbacks(b->sums, &sc.shared.cb);

	pthread_mutex_lock(&sc.mu);
	sc.dispatching = 1;
	size_t started = 0;
	int start_failed = 0;
	for (;;) {
		ib_build__cbq_dispatch(&sc.q);
		if (!sc.abort && ib_callback_cancelled(sc.user)) {
			__atomic_store_n(&sc.abort, 1, __ATOMIC_RELAXED); /* the caller cancelled: every stage stops */
			pthread_cond_broadcast(&sc.changed);
		}
		for (size_t i = 0; !sc.abort && i < n && sc.running < jobs; i++) {
			stage_job *j = &js[i];
			if (j->started || !ready(&sc, j->ps))
				continue;
			j->started = 1;
			sc.state[j->ps->index] = ST_RUNNING;
			sc.running++;
			int e = pthread_create(&j->th, NULL, stage_thread, j);
			if (e != 0) {
				j->started = 0;
				sc.state[j->ps->index] = ST_FAILED;
				sc.running--;
				__atomic_store_n(&sc.abort, 1, __ATOMIC_RELAXED);
				pthread_cond_broadcast(&sc.changed);
				start_failed = e;
				break;
			}
			started++;
		}
		size_t live = 0;
		for (size_t i = 0; i < n; i++)
			live += js[i].started && sc.state[js[i].ps->index] == ST_RUNNING;
		if (!live && !sc.q.head && (sc.abort || started == n))
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!sc.q.head)
			pthread_cond_timedwait(&sc.wake, &sc.mu, &ts);
	}
	sc.dispatching = 0;
	pthread_mutex_unlock(&sc.mu);
	for (size_t i = 0; i < n; i++)
		if (js[i].started)
			pthread_join(js[i].th, NULL);
	ib_build__sums_set_callbacks(b->sums, b->o->callbacks);
	b->sched = NULL;

	int rc = 0;
	if (sc.failed) {
		ib_error_restore(&sc.err);
		rc = sc.rc;
	} else if (start_failed) {
		errno = start_failed;
		rc = ib_error_set_os(IB_LAYER_BUILD, "start a thread for a stage");
	} else if (sc.abort) {
		rc = ib_callback_cancel_error("the build");
	}
	for (size_t i = 0; i < n; i++)
		ib_error_saved_dispose(&js[i].err);
	pthread_cond_destroy(&sc.wake);
	pthread_cond_destroy(&sc.changed);
	pthread_mutex_destroy(&sc.mu);
	pthread_mutex_destroy(&sc.pull_mu);
	pthread_mutex_destroy(&sc.fetch_mu);
	free(sc.state);
	free(js);
	return rc;
}
