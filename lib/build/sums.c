/*
 * A checksum cache for build contexts, as BuildKit and git keep one: the
 * sha256 of a context file is remembered with what stat(2) said of it
 * (device, inode, size, mtime and ctime, to the nanosecond), so a rebuild
 * that finds the file unchanged does not read it again. ctime cannot be set
 * by a user, so a file whose content changed never matches its old entry.
 * A file changed within the last two seconds is hashed but not remembered
 * (the "racily clean" case of git: a later change in the same clock tick
 * could leave every stat field as it was).
 *
 * The files of a stage or an image that COPY --from reads are remembered
 * too, under paths that start with '/' (`/from/NAME/path`: no context path
 * does) and matched without the device: they are seen through an overlay
 * mount, whose device number is new each time it is mounted, while the
 * inode, size and times are those of the file in its layer (every layer of
 * a store is on the store's file system, so overlay shows their own inode
 * numbers). Layers are never written once made, so an unchanged lower file
 * keeps every one of those fields; a file a later step rewrote has another
 * inode or ctime.
 *
 * The file is a hash table as it lies on disk, mapped and used in place: a
 * rebuild opens it with one mmap and looks each file up where it lies,
 * without parsing or copying the table (a no-op rebuild of a context of
 * thousands of files costs a lookup per file, nothing per entry on open).
 * Layout (native byte order; the file never leaves this machine):
 *   header   "IBSUMS2\n", u32 count, u32 cap (a power of two), u64 size of the file
 *   slots    u32[cap]: 0 empty, else 1 + the index of an entry (FNV-1a of the path, linear probing)
 *   entries  count records: u64 dev, ino, size; i64 mtime s, ns, ctime s, ns; 32 bytes of sha256;
 *            u32 offset of the path in the file, u32 its length
 *   paths    the paths' bytes
 * Every offset, length and index read is checked against the mapping; a
 * file that is not this format (an older one, a damaged one) is not
 * believed: the cache starts empty and every file is hashed once more.
 * What a build adds lives in a table in memory until ib_build__sums_save
 * writes the union, atomically, as a new file.
 */
#include "build/copy.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/callback.h"

typedef struct {
	char *path;
	uint64_t dev, ino, size;
	int64_t mts, mtns, cts, ctns;
	ib_digest digest;
} sum_entry;

#define SUMS_MAGIC "IBSUMS2\n"
#define SUMS_HDR 24
#define SUMS_REC 96

typedef struct {
	char magic[8];
	uint32_t count, cap;
	uint64_t size;
} sums_hdr;

typedef struct {
	uint64_t dev, ino, size;
	int64_t mts, mtns, cts, ctns;
	unsigned char digest[32];
	uint32_t path_off, path_len;
} sums_rec;

_Static_assert(sizeof(sums_hdr) == SUMS_HDR, "sums header layout");
_Static_assert(sizeof(sums_rec) == SUMS_REC, "sums record layout");

struct ib_build__sums {
	char *file;
	/* the file, mapped (NULL: none) */
	const unsigned char *map;
	size_t map_len;
	uint32_t fcount, fcap;
	/* what this build added or changed */
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

static uint64_t fnv_n(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

static sum_entry *slot_of(ib_build__sums *s, const char *path)
{
	size_t i = (size_t)fnv_n(path, strlen(path)) & (s->cap - 1);
	while (s->slots[i].path && strcmp(s->slots[i].path, path) != 0)
		i = (i + 1) & (s->cap - 1);
	return &s->slots[i];
}

static int grow(ib_build__sums *s)
{
	if ((s->n + 1) * 2 <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap * 2 : 256;
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

/* `path` names a stage's file (see above): its device is not compared. */
static int same(const sum_entry *e, const struct stat *st, const char *path)
{
	sum_entry now;
	fill(&now, st);
	return (e->dev == now.dev || path[0] == '/') && e->ino == now.ino && e->size == now.size &&
	       e->mts == now.mts && e->mtns == now.mtns && e->cts == now.cts && e->ctns == now.ctns;
}

/* ---- the mapped file ---- */

static size_t entries_off(uint32_t cap)
{
	return SUMS_HDR + (size_t)cap * 4;
}

/* Entry `i` of the file (i < fcount), its path checked to lie in the mapping; 0 when it does not. */
static int file_rec(const ib_build__sums *s, uint32_t i, sums_rec *r, const char **path)
{
	memcpy(r, s->map + entries_off(s->fcap) + (size_t)i * SUMS_REC, sizeof *r);
	if ((size_t)r->path_off > s->map_len || (size_t)r->path_len > s->map_len - r->path_off)
		return 0;
	*path = (const char *)s->map + r->path_off;
	return 1;
}

/* The file's entry for `path`; 0 when none (or when what is there does not hold together). */
static int file_find(const ib_build__sums *s, const char *path, sums_rec *r)
{
	if (!s->map)
		return 0;
	size_t len = strlen(path);
	uint32_t mask = s->fcap - 1, i = (uint32_t)fnv_n(path, len) & mask;
	for (uint32_t probes = 0; probes < s->fcap; probes++, i = (i + 1) & mask) {
		uint32_t v;
		memcpy(&v, s->map + SUMS_HDR + (size_t)i * 4, sizeof v);
		if (v == 0 || v > s->fcount)
			return 0;
		const char *p;
		if (!file_rec(s, v - 1, r, &p))
			return 0;
		if (r->path_len == len && memcmp(p, path, len) == 0)
			return 1;
	}
	return 0;
}

/* Map the file when it is one of ours and holds together; else leave the cache empty. */
static void map_file(ib_build__sums *s)
{
	int fd = open(s->file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < SUMS_HDR ||
	    (uint64_t)st.st_size > (1ULL << 32)) {
		if (fd >= 0)
			close(fd);
		return;
	}
	size_t len = (size_t)st.st_size;
	void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return;
	sums_hdr h;
	memcpy(&h, m, sizeof h);
	int ok = memcmp(h.magic, SUMS_MAGIC, 8) == 0 && h.size == (uint64_t)len && h.cap >= 2 &&
		 (h.cap & (h.cap - 1)) == 0 && h.count < h.cap && h.cap <= len / 4 &&
		 entries_off(h.cap) + (uint64_t)h.count * SUMS_REC <= len;
	if (!ok) {
		munmap(m, len);
		return;
	}
	s->map = m;
	s->map_len = len;
	s->fcount = h.count;
	s->fcap = h.cap;
}

int ib_build__sums_open(ib_build__sums **out, const char *file)
{
	ib_build__sums *s = ib_calloc(1, sizeof *s);
	if (!s || !(s->file = ib_strdup(file))) {
		free(s);
		return IB_ERROR;
	}
	s->racy = 2;
	pthread_mutex_init(&s->mu, NULL);
	map_file(s); /* none yet, unreadable or not believed: start empty */
	*out = s;
	return 0;
}

int ib_build__sums_get(ib_build__sums *s, const char *path, const struct stat *st, ib_digest *out)
{
	if (!s)
		return 0;
	pthread_mutex_lock(&s->mu);
	sum_entry *e = s->cap ? slot_of(s, path) : NULL;
	int hit = 0;
	if (e && e->path) {
		hit = same(e, st, path);
		if (hit)
			*out = e->digest;
	} else {
		sums_rec r;
		if (file_find(s, path, &r)) {
			sum_entry fe = { NULL, r.dev, r.ino, r.size, r.mts, r.mtns, r.cts, r.ctns, { { 0 } } };
			hit = same(&fe, st, path);
			if (hit)
				memcpy(out->bytes, r.digest, sizeof out->bytes);
		}
	}
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
	if (strlen(path) > UINT32_MAX / 2)
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

/* ---- writing ---- */

typedef struct {
	const char *path;
	size_t len;
	sums_rec r;
} out_entry;

static int add_out(out_entry **v, size_t *n, size_t *cap, const char *path, size_t len, const sums_rec *r)
{
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 256;
		out_entry *nv = ib_realloc(*v, nc * sizeof *nv);
		if (!nv)
			return IB_ERROR;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = (out_entry){ path, len, *r };
	return 0;
}

/* The union of the file's entries and this build's, as a new file's bytes. */
static int sums_serialize(ib_build__sums *s, ib_buf *b)
{
	out_entry *v = NULL;
	size_t n = 0, capv = 0;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < s->cap; i++) {
		const sum_entry *e = &s->slots[i];
		if (!e->path)
			continue;
		sums_rec r = { e->dev, e->ino, e->size, e->mts, e->mtns, e->cts, e->ctns, { 0 }, 0, 0 };
		memcpy(r.digest, e->digest.bytes, sizeof r.digest);
		rc = add_out(&v, &n, &capv, e->path, strlen(e->path), &r);
	}
	for (uint32_t i = 0; rc == 0 && s->map && i < s->fcount; i++) {
		sums_rec r;
		const char *p;
		if (!file_rec(s, i, &r, &p) || memchr(p, '\0', r.path_len))
			continue;
		char *path = ib_strndup(p, r.path_len);
		if (!path) {
			rc = IB_ERROR;
			break;
		}
		int mine = s->cap && slot_of(s, path)->path; /* changed by this build: its entry wins */
		free(path);
		if (!mine)
			rc = add_out(&v, &n, &capv, p, r.path_len, &r);
	}
	uint32_t cap = 16;
	while (rc == 0 && cap / 2 <= n) {
		if (cap > UINT32_MAX / 4) {
			rc = ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "the context's checksum cache is too big");
			break;
		}
		cap *= 2;
	}
	size_t paths = entries_off(cap) + n * SUMS_REC, total = paths;
	for (size_t i = 0; rc == 0 && i < n; i++)
		total += v[i].len;
	if (rc == 0 && total > UINT32_MAX)
		rc = ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "the context's checksum cache is too big");
	unsigned char *m = rc == 0 ? ib_calloc(1, total) : NULL;
	if (rc == 0 && !m)
		rc = IB_ERROR;
	if (rc == 0) {
		sums_hdr h;
		memcpy(h.magic, SUMS_MAGIC, 8);
		h.count = (uint32_t)n;
		h.cap = cap;
		h.size = total;
		memcpy(m, &h, sizeof h);
		size_t at = paths;
		for (size_t i = 0; i < n; i++) {
			v[i].r.path_off = (uint32_t)at;
			v[i].r.path_len = (uint32_t)v[i].len;
			memcpy(m + at, v[i].path, v[i].len);
			at += v[i].len;
			memcpy(m + entries_off(cap) + i * SUMS_REC, &v[i].r, sizeof v[i].r);
			uint32_t j = (uint32_t)fnv_n(v[i].path, v[i].len) & (cap - 1), slot;
			for (;; j = (j + 1) & (cap - 1)) {
				memcpy(&slot, m + SUMS_HDR + (size_t)j * 4, sizeof slot);
				if (!slot)
					break;
			}
			slot = (uint32_t)i + 1;
			memcpy(m + SUMS_HDR + (size_t)j * 4, &slot, sizeof slot);
		}
		ib_buf_dispose(b);
		b->ptr = (char *)m;
		b->size = b->asize = total;
	}
	free(v);
	return rc;
}

int ib_build__sums_save(ib_build__sums *s)
{
	if (!s || !s->dirty)
		return 0;
	ib_buf b = IB_BUF_INIT;
	int rc = sums_serialize(s, &b);
	char *dir = rc == 0 ? ib_strdup(s->file) : NULL;
	char *slash = dir ? strrchr(dir, '/') : NULL;
	if (slash)
		*slash = '\0';
	if (rc == 0)
		rc = dir ? ib_mkdir_p(dir, 0700) : IB_ERROR;
	if (rc == 0)
		rc = ib_atomic_write(s->file, b.ptr, b.size, 0600);
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
	if (s->map)
		munmap((void *)s->map, s->map_len);
	free(s->file);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
