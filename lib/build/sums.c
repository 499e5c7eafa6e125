/*
 * A checksum cache for build contexts, as BuildKit and git keep one: the
 * sha256 of a context file is remembered with what stat(2) said of it
 * (device, inode, size, mtime and ctime, to the nanosecond), so a rebuild
 * that finds the file unchanged does not read it again. ctime cannot be set
 * by a user, so a file whose content changed never matches its old entry.
 * A file changed within the last two seconds is hashed but not remembered
 * (the "racily clean" case of git: a later change in the same clock tick
 * could leave every stat field as it was).
 */
#include "build/copy.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util/callback.h"

typedef struct {
	char *path;
	uint64_t dev, ino, size;
	int64_t mts, mtns, cts, ctns;
	ib_digest digest;
} sum_entry;

struct ib_build__sums {
	char *file;
	sum_entry *slots; /* open addressing; path NULL = empty */
	size_t cap, n;
	int dirty;
	int racy;         /* seconds within which a change is too fresh to remember */
	const ib_callbacks *cb; /* BYTES "context" as files are hashed */
	uint64_t hashed, reported;
	pthread_mutex_t mu; /* stages running at once share it (parallel.c) */
};

void ib_build__sums_set_callbacks(ib_build__sums *s, const ib_callbacks *cb)
{
	if (s)
		s->cb = cb;
}

int ib_build__sums_hashed(ib_build__sums *s, uint64_t bytes)
{
	if (!s)
		return 0;
	pthread_mutex_lock(&s->mu);
	s->hashed += bytes;
	uint64_t hashed = s->hashed;
	int report = !(s->reported && s->hashed - s->reported < (1u << 20));
	if (report)
		s->reported = s->hashed ? s->hashed : 1;
	const ib_callbacks *cb = s->cb;
	pthread_mutex_unlock(&s->mu);
	if (!report)
		return ib_callback_check(cb, "the build, hashing its context");
	return ib_callback_progress(cb, IB_PROGRESS_BYTES, "context", "Hashing context", hashed, 0, 0,
				    "the build, hashing its context");
}

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static sum_entry *slot_of(ib_build__sums *s, const char *path)
{
	size_t i = (size_t)fnv(path) & (s->cap - 1);
	while (s->slots[i].path && strcmp(s->slots[i].path, path) != 0)
		i = (i + 1) & (s->cap - 1);
	return &s->slots[i];
}

static int grow(ib_build__sums *s)
{
	if ((s->n + 1) * 2 <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap * 2 : 1024;
	sum_entry *old = s->slots;
	size_t oldcap = s->cap;
	s->slots = ib_calloc(cap, sizeof *s->slots);
	if (!s->slots) {
		s->slots = old;
		return IB_ERROR;
	}
	s->cap = cap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].path)
			*slot_of(s, old[i].path) = old[i];
	free(old);
	return 0;
}

static void fill(sum_entry *e, const struct stat *st)
{
	e->dev = (uint64_t)st->st_dev;
	e->ino = (uint64_t)st->st_ino;
	e->size = (uint64_t)st->st_size;
	e->mts = st->st_mtim.tv_sec;
	e->mtns = st->st_mtim.tv_nsec;
	e->cts = st->st_ctim.tv_sec;
	e->ctns = st->st_ctim.tv_nsec;
}

static int same(const sum_entry *e, const struct stat *st)
{
	sum_entry now;
	fill(&now, st);
	return e->dev == now.dev && e->ino == now.ino && e->size == now.size && e->mts == now.mts &&
	       e->mtns == now.mtns && e->cts == now.cts && e->ctns == now.ctns;
}

int ib_build__sums_open(ib_build__sums **out, const char *file)
{
	ib_build__sums *s = ib_calloc(1, sizeof *s);
	ib_buf b = IB_BUF_INIT;
	if (!s || !(s->file = ib_strdup(file))) {
		free(s);
		return IB_ERROR;
	}
	s->racy = 2;
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	if (ib_read_file(&b, file) < 0) {
		ib_error_clear(); /* none yet, or unreadable: start empty */
		return 0;
	}
	char *save = NULL;
	for (char *line = strtok_r(b.ptr, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		sum_entry e;
		char hex[72];
		int off = 0;
		memset(&e, 0, sizeof e);
		if (sscanf(line, "%71s %lu %lu %lu %ld %ld %ld %ld %n", hex, &e.dev, &e.ino, &e.size, &e.mts, &e.mtns,
			   &e.cts, &e.ctns, &off) != 8 || !off || ib_digest_parse(&e.digest, hex) < 0) {
			ib_error_clear();
			continue; /* a damaged line costs only a re-hash */
		}
		if (grow(s) < 0 || !(e.path = ib_strdup(line + off))) {
			ib_buf_dispose(&b);
			return IB_ERROR;
		}
		sum_entry *slot = slot_of(s, e.path);
		if (slot->path) {
			free(slot->path);
			s->n--;
		}
		*slot = e;
		s->n++;
	}
	ib_buf_dispose(&b);
	return 0;
}

int ib_build__sums_get(ib_build__sums *s, const char *path, const struct stat *st, ib_digest *out)
{
	if (!s)
		return 0;
	pthread_mutex_lock(&s->mu);
	sum_entry *e = s->cap ? slot_of(s, path) : NULL;
	int hit = e && e->path && same(e, st);
	if (hit)
		*out = e->digest;
	pthread_mutex_unlock(&s->mu);
	return hit;
}

static int sums_put_locked(ib_build__sums *s, const char *path, const struct stat *st, const ib_digest *d);

int ib_build__sums_put(ib_build__sums *s, const char *path, const struct stat *st, const ib_digest *d)
{
	if (!s)
		return 0;
	pthread_mutex_lock(&s->mu);
	int rc = sums_put_locked(s, path, st, d);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int sums_put_locked(ib_build__sums *s, const char *path, const struct stat *st, const ib_digest *d)
{
	if (strchr(path, '\n'))
		return 0;
	time_t now = time(NULL);
	if (st->st_ctim.tv_sec >= now - s->racy || st->st_mtim.tv_sec >= now - s->racy)
		return 0; /* racily clean: hash it again next time */
	if (grow(s) < 0)
		return IB_ERROR;
	sum_entry *e = slot_of(s, path);
	if (!e->path) {
		if (!(e->path = ib_strdup(path)))
			return IB_ERROR;
		s->n++;
	}
	fill(e, st);
	e->digest = *d;
	s->dirty = 1;
	return 0;
}

int ib_build__sums_save(ib_build__sums *s)
{
	if (!s || !s->dirty)
		return 0;
	ib_buf b = IB_BUF_INIT;
	for (size_t i = 0; i < s->cap; i++) {
		const sum_entry *e = &s->slots[i];
		char hex[IB_DIGEST_STRLEN];
		if (!e->path)
			continue;
		ib_digest_fmt(hex, &e->digest);
		ib_buf_printf(&b, "%s %lu %lu %lu %ld %ld %ld %ld %s\n", hex, e->dev, e->ino, e->size, e->mts, e->mtns,
			      e->cts, e->ctns, e->path);
	}
	char *dir = ib_strdup(s->file);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	if (slash)
		*slash = '\0';
	int rc = dir ? ib_mkdir_p(dir, 0700) : IB_ERROR;
	if (rc == 0)
		rc = ib_atomic_write(s->file, b.ptr ? b.ptr : "", b.size, 0600);
	if (rc == 0)
		s->dirty = 0;
	free(dir);
	ib_buf_dispose(&b);
	return rc;
}

void ib_build__sums_set_racy(ib_build__sums *s, int seconds)
{
	s->racy = seconds;
}

void ib_build__sums_free(ib_build__sums *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->cap; i++)
		free(s->slots[i].path);
	free(s->slots);
	free(s->file);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
