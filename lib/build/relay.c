/*
 * The callback queue of the schedulers that run build work in threads
 * (parallel.c: stages, multi.c: platforms). A worker thread's progress or
 * log call becomes an event queued under the scheduler's lock; the calling
 * thread, the only one that calls the caller's callbacks, takes the events
 * in order, calls each callback with the lock released and hands its
 * return value back to the worker that waits for it. So callbacks run on
 * the caller's thread, one at a time, as in a build without threads.
 */
#include "build/internal.h"

int ib_build__cbq_wait(ib_build__cbq *q, ib_build__cbev *ev)
{
	ev->next = NULL;
	ev->done = 0;
	if (q->tail)
		q->tail->next = ev;
	else
		q->head = ev;
	q->tail = ev;
	pthread_cond_signal(q->wake);
	while (!ev->done)
		pthread_cond_wait(q->changed, q->mu);
	return ev->rc;
}

void ib_build__cbq_dispatch(ib_build__cbq *q)
{
	while (q->head) {
		ib_build__cbev *ev = q->head;
		q->head = ev->next;
		if (!q->head)
			q->tail = NULL;
		pthread_mutex_unlock(q->mu);
		int rc = 0;
		if (ev->is_log)
			q->user->log(ev->level, ev->line, q->user->payload);
		else
			rc = q->user->progress(&ev->p, q->user->payload);
		pthread_mutex_lock(q->mu);
		ev->rc = rc;
		ev->done = 1;
		pthread_cond_broadcast(q->changed);
	}
}
