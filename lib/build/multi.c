/*
 * The platforms of --platform A,B,... built at once (ib_build_options.jobs),
 * each one a whole build of its own (ib_build__one_ex), as BuildKit solves
 * every platform of a multi-platform build at the same time.
 *
 * - At most `jobs` platforms at a time, each in a thread with its own store
 *   handle (a handle is single-thread; the store's files are shared through
 *   its locks, as two processes building at once). Each platform's build
 *   is the same as when built alone: its image id does not depend on
 *   whether the others ran beside it.
 * - Callbacks run on the calling thread, one at a time: a platform thread's
 *   progress and log calls (and those of its stages' threads, whose own
 *   dispatcher runs in the platform thread) wait in a queue until the
 *   calling thread has called the caller's callback. Step labels carry the
 *   platform (BuildKit's "[linux/arm64 build 2/3]"), log lines are prefixed
 *   "[linux/arm64] ". STEP numbers (current/total) are the platform's own.
 * - A failure stops the others: the platforms' cancel flag is `abort`, set
 *   by the first failing platform and when the caller's own flag is seen
 *   set (polled every 20 ms); their RUN processes are killed, snapshots
 *   removed, and the build returns the first error, prefixed by its
 *   platform.
 * - With --cache-from/--cache-to the platforms are built one after the
 *   other (the cache's records and exports are not shared between builds
 *   running at once), as with jobs 1.
 */
#include "build/internal.h"
#include "util/callback.h"
#include "util/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct msched;

typedef struct {
	struct msched *ms;
	const char *platform;
	ib_callbacks cb;         /* the relay the platform's build is given */
	ib_build_options o;      /* the caller's, for this platform */
	ib_digest id, manifest;
	pthread_t th;
	int started, finished;
	int rc;
	ib_error_saved err;
} pjob;

struct msched {
	pthread_mutex_t mu;
	pthread_cond_t wake;     /* the calling thread: an event queued, a platform ended */
	pthread_cond_t changed;  /* the platform threads: an event handled */
	const ib_callbacks *user;
	const char *root;        /* the store's root, each thread opens its own handle */
	int threaded;            /* 0: one platform after the other on the calling thread */
	volatile int abort;      /* the platforms' cancel flag */
	int user_cancel;         /* the caller's flag set it, before any platform failed */
	ib_build__cbq q;         /* the callbacks' queue (relay.c), under mu */
	size_t running;
	int failed;
	int rc;
	ib_error_saved err;
};

/* ---- callbacks: to the calling thread ---- */

static int deliver(struct msched *ms, ib_build__cbev *ev)
{
	if (!ms->threaded) {
		if (ev->is_log) {
			ms->user->log(ev->level, ev->line, ms->user->payload);
			return 0;
		}
		return ms->user->progress(&ev->p, ms->user->payload);
	}
	pthread_mutex_lock(&ms->mu);
	int rc = ib_build__cbq_wait(&ms->q, ev);
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

static int relay_progress(const ib_progress *p, void *payload)
{
	pjob *j = payload;
	ib_build__cbev ev;
	memset(&ev, 0, sizeof ev);
	ev.p = *p;
	return deliver(j->ms, &ev);
}

static void relay_log(ib_log_level level, const char *line, void *payload)
{
	pjob *j = payload;
	ib_error_saved saved; /* a log line never changes the error being reported */
	ib_error_save(&saved);
	char *l = ib_sprintf("[%s] %s", j->platform, line);
	ib_error_restore(&saved);
	ib_build__cbev ev;
	memset(&ev, 0, sizeof ev);
	ev.is_log = 1;
	ev.level = level;
	ev.line = l ? l : line;
	deliver(j->ms, &ev);
	free(l);
}

/* ---- one platform ---- */

static int build_one(pjob *j, ib_store *store)
{
	int rc = ib_callback_internal(ib_build__one_ex(&j->id, &j->manifest, store, &j->o, IB_BUILD__ONE_MULTI));
	if (rc < 0)
		ib_error_prefix("[%s]", j->platform);
	return rc;
}

/* Called with ms->mu held: the end of platform `j`. */
static void finish(struct msched *ms, pjob *j, int rc)
{
	j->rc = rc;
	j->finished = 1;
	if (rc < 0 && !ms->failed) { /* the first failure: the build's error */
		ms->failed = 1;
		ms->rc = rc;
		ms->err = j->err;
		memset(&j->err, 0, sizeof j->err);
	}
	if (rc < 0)
		ms->abort = 1;
}

static void *platform_thread(void *arg)
{
	pjob *j = arg;
	struct msched *ms = j->ms;
	ib_store *store = NULL;
	int rc = ib_store_open(&store, ms->root, NULL);
	if (rc == 0)
		rc = build_one(j, store);
	ib_store_free(store);
	if (rc < 0)
		ib_error_save(&j->err);
	pthread_mutex_lock(&ms->mu);
	finish(ms, j, rc);
	ms->running--;
	pthread_cond_signal(&ms->wake);
	pthread_mutex_unlock(&ms->mu);
	ib_error_clear();
	return NULL;
}

unsigned int ib_build__platform_jobs(const ib_build_options *o, size_t nplatforms)
{
	unsigned int jobs = o->version >= 8 ? o->jobs : 1;
	if (o->version >= 8 && ((o->cache_from && o->cache_from[0]) || (o->cache_to && o->cache_to[0])))
		return 1; /* the cache's records: one build at a time (as the stages) */
	if (!jobs) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		jobs = n > 0 ? (unsigned int)n : 1;
	}
	return nplatforms < jobs ? (unsigned int)(nplatforms ? nplatforms : 1) : jobs;
}

int ib_build__platforms_run(ib_digest *ids, ib_digest *manifests, ib_store *store, const ib_build_options *opts,
			    const ib_strlist *platforms, unsigned int jobs)
{
	size_t n = platforms->n;
	struct msched ms;
	memset(&ms, 0, sizeof ms);
	pjob *js = ib_calloc(n ? n : 1, sizeof *js);
	if (!js)
		return IB_ERROR;
	static const ib_callbacks none = IB_CALLBACKS_INIT;
	ms.user = opts->callbacks ? opts->callbacks : &none;
	ms.q.mu = &ms.mu;
	ms.q.wake = &ms.wake;
	ms.q.changed = &ms.changed;
	ms.q.user = ms.user;
	ms.root = ib_store_root(store);
	ms.threaded = jobs > 1 && n > 1;
	(void)ib_build__host_platform(); /* set once, before any thread reads it */
	pthread_mutex_init(&ms.mu, NULL);
	pthread_cond_init(&ms.wake, NULL);
	pthread_cond_init(&ms.changed, NULL);
	for (size_t i = 0; i < n; i++) {
		pjob *j = &js[i];
		ib_callbacks c = IB_CALLBACKS_INIT;
		j->ms = &ms;
		j->platform = platforms->items[i];
		c.progress = ms.user->progress ? relay_progress : NULL;
		c.log = ms.user->log ? relay_log : NULL;
		c.payload = j;
		c.cancel = ms.threaded ? &ms.abort : ms.user->cancel;
		j->cb = c;
		j->o = *opts;
		j->o.platform = j->platform;
		j->o.platforms = NULL;
		j->o.tags = NULL;
		j->o.callbacks = &j->cb;
	}
	int rc = 0, start_failed = 0;
	if (!ms.threaded) {
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (ms.user->log) {
				char line[IB_BUILD__PLATFORM_MAX + 64];
				snprintf(line, sizeof line, "building for %s (%zu/%zu)", js[i].platform, i + 1, n);
				ms.user->log(IB_LOG_INFO, line, ms.user->payload);
			}
			rc = build_one(&js[i], store);
			js[i].rc = rc;
			js[i].finished = 1;
		}
	} else {
		pthread_mutex_lock(&ms.mu);
		size_t started = 0;
		for (;;) {
			ib_build__cbq_dispatch(&ms.q);
			if (!ms.abort && ib_callback_cancelled(ms.user))
				ms.abort = ms.user_cancel = 1; /* the caller cancelled: every platform stops */
			for (size_t i = 0; !ms.abort && i < n && ms.running < jobs; i++) {
				pjob *j = &js[i];
				if (j->started)
					continue;
				if (ms.user->log) {
					char line[IB_BUILD__PLATFORM_MAX + 64];
					snprintf(line, sizeof line, "building for %s (%zu/%zu)", j->platform, i + 1, n);
					pthread_mutex_unlock(&ms.mu);
					ms.user->log(IB_LOG_INFO, line, ms.user->payload);
					pthread_mutex_lock(&ms.mu);
				}
				j->started = 1;
				ms.running++;
				int e = pthread_create(&j->th, NULL, platform_thread, j);
				if (e != 0) {
					j->started = 0;
					ms.running--;
					ms.abort = 1;
					start_failed = e;
					break;
				}
				started++;
			}
			if (!ms.running && !ms.q.head && (ms.abort || started == n))
				break;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 20 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (!ms.q.head)
				pthread_cond_timedwait(&ms.wake, &ms.mu, &ts);
		}
		pthread_mutex_unlock(&ms.mu);
		for (size_t i = 0; i < n; i++)
			if (js[i].started)
				pthread_join(js[i].th, NULL);
		if (ms.user_cancel) { /* the platforms' errors are only that: the build's is the caller's cancel */
			ib_error_saved_dispose(&ms.err);
			rc = ib_callback_cancel_error("the build");
		} else if (ms.failed) {
			ib_error_restore(&ms.err);
			rc = ms.rc;
		} else if (start_failed) {
			errno = start_failed;
			rc = ib_error_set_os(IB_LAYER_BUILD, "start a thread for a platform");
		} else if (ms.abort) {
			rc = ib_callback_cancel_error("the build");
		}
	}
	/* what was made (also on failure: the caller drops those) */
	for (size_t i = 0; i < n; i++) {
		if (!js[i].finished || js[i].rc < 0)
			continue;
		if (ids)
			ids[i] = js[i].id;
		manifests[i] = js[i].manifest;
	}
	for (size_t i = 0; i < n; i++)
		ib_error_saved_dispose(&js[i].err);
	pthread_cond_destroy(&ms.wake);
	pthread_cond_destroy(&ms.changed);
	pthread_mutex_destroy(&ms.mu);
	free(js);
	return rc;
}

/* ---- steps in flight: one step run once when builds running at once need it ---- */

/*
 * BuildKit solves the platforms of one build as one graph, so a step they
 * share (a FROM --platform=$BUILDPLATFORM stage that no TARGET* arg makes
 * differ) runs once. Here each platform is a build of its own: a step whose
 * cache key another build of this process is running waits for it, then
 * finds its result in the cache (as a build after it would). Process-wide,
 * by store root and key; a claim is held only while its one step runs, so
 * waiting never forms a cycle.
 */
typedef struct inflight {
	struct inflight *next;
	char *root;
	char key[IB_DIGEST_HEXLEN + 1];
} inflight;

static pthread_mutex_t inflight_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t inflight_done = PTHREAD_COND_INITIALIZER;
static inflight *inflight_head;

static inflight **inflight_find(const char *root, const char *key)
{
	for (inflight **p = &inflight_head; *p; p = &(*p)->next)
		if (!strcmp((*p)->key, key) && !strcmp((*p)->root, root))
			return p;
	return NULL;
}

int ib_build__step_claim(builder *b, const char *key, int *waited)
{
	const char *root = ib_store_root(b->store);
	*waited = 0;
	pthread_mutex_lock(&inflight_mu);
	while (inflight_find(root, key)) {
		if (ib_callback_cancelled(b->o->callbacks) || b->cancel) {
			pthread_mutex_unlock(&inflight_mu);
			return ib_callback_cancel_error("the build, waiting for the same step of another build");
		}
		*waited = 1;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&inflight_done, &inflight_mu, &ts);
	}
	if (*waited) { /* the other build ran it: the caller looks in the cache again */
		pthread_mutex_unlock(&inflight_mu);
		return 0;
	}
	inflight *f = ib_calloc(1, sizeof *f);
	if (!f || !(f->root = ib_strdup(root))) {
		free(f);
		pthread_mutex_unlock(&inflight_mu);
		return IB_ERROR;
	}
	memcpy(f->key, key, IB_DIGEST_HEXLEN + 1);
	f->next = inflight_head;
	inflight_head = f;
	pthread_mutex_unlock(&inflight_mu);
	return 1;
}

void ib_build__step_release(builder *b, const char *key)
{
	pthread_mutex_lock(&inflight_mu);
	inflight **p = inflight_find(ib_store_root(b->store), key);
	if (p) {
		inflight *f = *p;
		*p = f->next;
		free(f->root);
		free(f);
		pthread_cond_broadcast(&inflight_done);
	}
	pthread_mutex_unlock(&inflight_mu);
}
