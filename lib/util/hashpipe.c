/*
 * sha256 in a pipeline thread (util/hash.h): the producer fills a ring of
 * buffers, the thread hashes full ones. Hashing a big layer then costs the
 * producer a memcpy per byte instead of the digest, so reading, writing and
 * hashing use two cores.
 */
#include "util/error.h"
#include "util/hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PIPE_NBUF 4
#define PIPE_BUFSZ (1u << 20)

struct ib_sha256_pipe {
	ib_sha256 *h;
	pthread_t thread;
	int threaded;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned char *buf[PIPE_NBUF];
	size_t len[PIPE_NBUF];
	unsigned head, tail; /* producer fills buf[head % N]; the thread hashes buf[tail % N] while tail < head */
	size_t fill;         /* bytes in buf[head % N] */
	int done, failed;
	uint64_t size;
};

static void *hasher(void *arg)
{
	ib_sha256_pipe *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->tail == p->head && !p->done)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->tail == p->head)
			break;
		unsigned i = p->tail % PIPE_NBUF;
		pthread_mutex_unlock(&p->mu);
		int bad = ib_sha256_update(p->h, p->buf[i], p->len[i]) < 0;
		pthread_mutex_lock(&p->mu);
		if (bad)
			p->failed = 1;
		p->tail++;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

ib_sha256_pipe *ib_sha256_pipe_new(void)
{
	ib_sha256_pipe *p = ib_calloc(1, sizeof *p);
	if (!p)
		return NULL;
	if (!(p->h = ib_sha256_new())) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (int i = 0; i < PIPE_NBUF; i++) {
		if (!(p->buf[i] = malloc(PIPE_BUFSZ)))
			goto inline_only;
	}
	if (pthread_create(&p->thread, NULL, hasher, p) == 0)
		p->threaded = 1;
	return p;
inline_only:
	for (int i = 0; i < PIPE_NBUF; i++) {
		free(p->buf[i]);
		p->buf[i] = NULL;
	}
	return p;
}

/* Hand the filling buffer to the thread and wait for a free one. */
static void pipe_push(ib_sha256_pipe *p)
{
	pthread_mutex_lock(&p->mu);
	p->len[p->head % PIPE_NBUF] = p->fill;
	p->head++;
	pthread_cond_broadcast(&p->cv);
	while (p->head - p->tail >= PIPE_NBUF)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	p->fill = 0;
}

int ib_sha256_pipe_update(ib_sha256_pipe *p, const void *data, size_t len)
{
	p->size += len;
	if (!p->threaded)
		return ib_sha256_update(p->h, data, len);
	const unsigned char *d = data;
	while (len) {
		size_t n = PIPE_BUFSZ - p->fill;
		if (n > len)
			n = len;
		memcpy(p->buf[p->head % PIPE_NBUF] + p->fill, d, n);
		p->fill += n;
		d += n;
		len -= n;
		if (p->fill == PIPE_BUFSZ)
			pipe_push(p);
	}
	return 0;
}

static void pipe_stop(ib_sha256_pipe *p)
{
	if (!p->threaded)
		return;
	if (p->fill)
		pipe_push(p);
	pthread_mutex_lock(&p->mu);
	p->done = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	p->threaded = 0;
}

int ib_sha256_pipe_final(ib_sha256_pipe *p, ib_digest *out, uint64_t *size)
{
	pipe_stop(p);
	if (p->failed)
		return ib_error_set(IB_LAYER_UTIL, "sha256: update failed");
	if (size)
		*size = p->size;
	return ib_sha256_final(p->h, out);
}

void ib_sha256_pipe_free(ib_sha256_pipe *p)
{
	if (!p)
		return;
	pipe_stop(p);
	for (int i = 0; i < PIPE_NBUF; i++)
		free(p->buf[i]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	ib_sha256_free(p->h);
	free(p);
}
