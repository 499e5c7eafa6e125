/*
 * Moving blobs: parallel jobs (each thread with its own store handle and
 * registry client), fetching a blob into the store (digest checked while it
 * streams), uploading one (HEAD to skip, POST + PUT), gzip of a local layer.
 */
#include "push/internal.h"
#include "store/internal.h"
#include "util/bigio.h"
#include "util/fs.h"

#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <libdeflate.h>

/* ---- parallel jobs ---- */

typedef struct {
	ib_push__registry *main;
	ib_store *store;
	size_t n, next;
	ib_push__job_fn fn;
	void *payload;
	pthread_mutex_t lock;
	int failed;
	int code;
	ib_error_saved err;
} job_pool;

static void *worker(void *arg)
{
	job_pool *p = arg;
	ib_push__registry *r = NULL;
	ib_store *s = NULL;
	int rc = ib_push__registry_clone(&r, p->main);
	if (rc == 0)
		rc = ib_store_open(&s, ib_store_root(p->store), NULL);
	for (;;) {
		pthread_mutex_lock(&p->lock);
		if (rc < 0 && !p->failed) {
			p->failed = 1;
			p->code = rc;
			ib_error_save(&p->err);
		}
		if (p->failed || p->next >= p->n) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		size_t i = p->next++;
		pthread_mutex_unlock(&p->lock);
		rc = p->fn(r, s, i, p->payload);
	}
	ib_store_free(s);
	ib_push__registry_free(r);
	return NULL;
}

int ib_push__run_jobs(ib_push__registry *r, ib_store *store, size_t n, unsigned int jobs, ib_push__job_fn fn,
		      void *payload)
{
	job_pool p = { r, store, n, 0, fn, payload, PTHREAD_MUTEX_INITIALIZER, 0, 0, { 0, 0, NULL } };
	if (!jobs)
		jobs = 3;
	if (jobs > n)
		jobs = (unsigned int)n;
	if (jobs > 16)
		jobs = 16;
	pthread_t th[16];
	unsigned int started = 0;
	for (; started < jobs; started++) {
		if (pthread_create(&th[started], NULL, worker, &p) != 0)
			break;
	}
	if (!started && n) {
		worker(&p); /* no threads to be had: do it here */
	}
	for (unsigned int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&p.lock);
	if (p.failed) {
		ib_error_restore(&p.err);
		return p.code;
	}
	return 0;
}

/* ---- fetching ---- */

typedef struct {
	ib_push__registry *r;
	ib_store *s;
	ib_blob_writer *w;
	const char *id;
	uint64_t done, total, reported;
} fetch_ctx;

static int fetch_reset(void *payload)
{
	fetch_ctx *f = payload;
	ib_blob_writer_abort(f->w);
	f->w = NULL;
	f->done = f->reported = 0;
	return ib_store_blob_writer(&f->w, f->s);
}

static int fetch_write(const void *data, size_t len, void *payload)
{
	fetch_ctx *f = payload;
	/* a blob stops at its descriptor's size: nothing past it reaches the disk */
	if (len > f->total - f->done)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "more than the %llu bytes its descriptor says",
				     (unsigned long long)f->total);
	int rc = ib_blob_writer_write(f->w, data, len);
	f->done += len;
	if (rc == 0 && f->id && f->done - f->reported >= (1u << 20)) {
		f->reported = f->done;
		rc = ib_push__registry_progress(f->r, f->id, "Downloading", f->done, f->total);
	}
	return rc;
}

int ib_push__fetch_blob(ib_push__registry *r, ib_store *s, const ib_digest *d, uint64_t size, const char *id)
{
	char ds[IB_DIGEST_STRLEN], object[IB_DIGEST_STRLEN + 8];
	ib_digest_fmt(ds, d);
	snprintf(object, sizeof object, "blob %s", ds);
	char *rel = ib_sprintf("/v2/%s/blobs/%s", ib_push__registry_path(r), ds);
	if (!rel)
		return IB_ERROR;
	fetch_ctx f = { r, s, NULL, id, 0, size, 0 };
	ib_push__sink sink = { NULL, 0, fetch_write, fetch_reset, &f };
	ib_push__response resp = { 0 };
	int rc = ib_push__registry_request(r, &resp, "GET", rel, NULL, NULL, &sink, object);
	/* what is not the blob whole, of its size and digest, is not kept */
	if (rc == 0)
		rc = ib_push__digest_header(r, &resp, d, object);
	if (rc == 0 && f.done != size)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: %s has %llu bytes, its descriptor says %llu",
				   ib_push__registry_what(r), object, (unsigned long long)f.done, (unsigned long long)size);
	if (rc < 0) {
		ib_blob_writer_abort(f.w);
	} else if ((rc = ib_blob_writer_commit(f.w, NULL, NULL, d)) < 0) {
		ib_error_prefix("%s: %s", ib_push__registry_what(r), object);
	}
	ib_push__response_dispose(&resp);
	free(rel);
	return rc;
}

/* ---- uploading ---- */

int ib_push__blob_exists(ib_push__registry *r, const ib_digest *d)
{
	char ds[IB_DIGEST_STRLEN], object[IB_DIGEST_STRLEN + 16];
	ib_digest_fmt(ds, d);
	snprintf(object, sizeof object, "blob %s", ds);
	char *rel = ib_sprintf("/v2/%s/blobs/%s", ib_push__registry_path(r), ds);
	if (!rel)
		return IB_ERROR;
	ib_push__response resp = { 0 };
	int rc = ib_push__registry_request(r, &resp, "HEAD", rel, NULL, NULL, NULL, object);
	if (rc == IB_ENOTFOUND) {
		ib_error_clear();
		rc = 0;
	} else if (rc == 0) {
		rc = 1;
	}
	ib_push__response_dispose(&resp);
	free(rel);
	return rc;
}

/* The next offset an upload session wants, from its Range ("0-1234", "bytes=0-1234"). */
static int range_next(uint64_t *out, const char *range)
{
	const char *dash = range ? strchr(range, '-') : NULL;
	if (!dash)
		return -1;
	char *end;
	unsigned long long last = strtoull(dash + 1, &end, 10);
	if (end == dash + 1)
		return -1;
	*out = (uint64_t)last + 1;
	return 0;
}

/* Take the session's new Location when the answer has one. */
static void follow(char **location, ib_push__response *resp)
{
	if (resp->location) {
		free(*location);
		*location = resp->location;
		resp->location = NULL;
	}
}

/*
 * Send the blob in PATCH chunks of `chunk` bytes; after a chunk failed (its
 * own retries spent, or the registry refusing the range), ask the session
 * where it stands (GET, Range) and go on from there, a few times.
 */
static int upload_chunks(ib_push__registry *r, int fd, uint64_t size, const char *object, const char *id, char **location,
			 uint64_t chunk)
{
	ib_push__response resp = { 0 };
	uint64_t off = 0;
	int rc = 0, resumes = 0;
	while (rc == 0 && off < size) {
		uint64_t n = size - off < chunk ? size - off : chunk;
		ib_push__source body = { NULL, 0, fd, n, "application/octet-stream", id, off, size };
		rc = ib_push__registry_request(r, &resp, "PATCH", *location, NULL, &body, NULL, object);
		if (rc == 0) {
			off += n;
			follow(location, &resp);
			continue;
		}
		if (rc != IB_ERROR || resumes++ >= 3)
			break;
		ib_error_saved err;
		ib_error_save(&err);
		uint64_t next;
		if (ib_push__registry_request(r, &resp, "GET", *location, NULL, NULL, NULL, object) == 0 &&
		    range_next(&next, resp.range) == 0 && next <= size) {
			ib_error_restore(&err);
			ib_error_clear();
			off = next;
			follow(location, &resp);
			rc = 0;
		} else {
			ib_error_restore(&err);
		}
	}
	ib_push__response_dispose(&resp);
	return rc;
}

/*
 * POST (a cross-repository mount from `from` when given: 201 and done),
 * then the blob: in one PUT, or in chunks when larger than `chunk`, and
 * the closing PUT with its digest. 1 when mounted.
 */
static int upload_once(ib_push__registry *r, int fd, uint64_t size, const char *ds, const char *object, const char *id,
		       const char *from, uint64_t chunk)
{
	ib_push__response resp = { 0 };
	char *rel = from ? ib_sprintf("/v2/%s/blobs/uploads/?mount=%s&from=%s", ib_push__registry_path(r), ds, from)
			 : ib_sprintf("/v2/%s/blobs/uploads/", ib_push__registry_path(r));
	int rc = rel ? ib_push__registry_request(r, &resp, "POST", rel, NULL, NULL, NULL, object) : IB_ERROR;
	free(rel);
	if (rc == 0 && from && resp.status == 201) {
		ib_push__response_dispose(&resp);
		return 1;
	}
	if (rc == 0 && !resp.location)
		rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "%s: %s: no Location in the answer", ib_push__registry_what(r),
				   object);
	char *location = NULL, *put = NULL;
	follow(&location, &resp);
	if (rc == 0 && id)
		rc = ib_push__registry_progress(r, id, "Pushing", 0, size);
	int chunked = chunk && size > chunk;
	if (rc == 0 && chunked)
		rc = upload_chunks(r, fd, size, object, id, &location, chunk);
	if (rc == 0) {
		put = ib_sprintf("%s%cdigest=%s", location, strchr(location, '?') ? '&' : '?', ds);
		rc = put ? 0 : IB_ERROR;
	}
	if (rc == 0) {
		ib_push__source whole = { NULL, 0, fd, size, "application/octet-stream", id, 0, size };
		ib_push__source none = { "", 0, -1, 0, "application/octet-stream", NULL, 0, 0 };
		ib_push__response_dispose(&resp);
		rc = ib_push__registry_request(r, &resp, "PUT", put, NULL, chunked ? &none : &whole, NULL, object);
	}
	free(location);
	free(put);
	ib_push__response_dispose(&resp);
	return rc;
}

int ib_push__upload_blob(ib_push__registry *r, ib_store *s, const ib_digest *d, const char *id, const char *mount_from,
			 uint64_t chunk)
{
	char ds[IB_DIGEST_STRLEN], object[IB_DIGEST_STRLEN + 16];
	ib_digest_fmt(ds, d);
	snprintf(object, sizeof object, "blob upload %s", ds);
	int rc = ib_push__blob_exists(r, d);
	if (rc < 0)
		return rc;
	uint64_t size = 0;
	if (rc == 1)
		return id ? ib_push__registry_progress(r, id, "Layer already exists", 0, 0) : 0;
	int fd = -1;
	if ((rc = ib_store_blob_size(&size, s, d)) < 0 || (rc = ib_store_blob_open(&fd, s, d)) < 0)
		return rc;
	/* the whole upload again from the start when the session failed transiently */
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((rc = upload_once(r, fd, size, ds, object, id, mount_from, chunk)) >= 0 || rc != IB_ERROR)
			break;
	}
	close(fd);
	if (rc == 1 && id) {
		char *text = ib_sprintf("Mounted from %s", mount_from);
		rc = text ? ib_push__registry_progress(r, id, text, size, size) : IB_ERROR;
		free(text);
	} else if (rc == 0 && id) {
		rc = ib_push__registry_progress(r, id, "Pushed", size, size);
	}
	return rc < 0 ? rc : 0;
}

/* ---- gzip, in parallel ----
 *
 * A layer leaves as a multi-member gzip stream: the input is cut into
 * 1 MiB chunks, each compressed on its own (a complete gzip member) by a
 * pool of threads, and the members are written in order. RFC 1952 allows
 * members to follow one another; every gzip reader of the container world
 * (Go's compress/gzip, zlib, libarchive) reads them as one stream. Chunks
 * are compressed with libdeflate (whole buffers, 2-3x zlib's speed). The
 * result depends only on the input, the chunk size and the level, never on
 * the number of threads, so a variant is the same wherever it is made.
 */

#define GZ_CHUNK (1u << 20)

/*
 * The chunks go round a ring of slots: the producer fills slot `seq % n`,
 * hands it to the pool as soon as it is full (a worker compresses it while
 * the next one fills), and writes the members out in order when it needs a
 * slot back or at the end. So the reading (or the regeneration of a layer
 * kept unpacked, which produces the tar as it walks its files) and the
 * compression overlap.
 */
typedef struct {
	unsigned char *in, *out;
	size_t in_len, in_cap, out_len, out_cap;
	int rc;
	int done; /* compressed (under the pool's lock) */
} gz_slot;

typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	gz_slot *slots;
	size_t nslots;
	uint64_t next, submitted; /* the next chunk a worker takes; chunks handed over */
	int quit;
	int level; /* of the chunks that compress (1-9) */
} gz_pool;

/* A worker's compressors: the level asked (IB_PUSH__GZIP_LEVEL_DEFAULT unless told), 1 to probe, 0 to store. */
typedef struct gz_work {
	struct libdeflate_compressor *c6, *c1, *c0;
	unsigned char *probe;
	int level; /* of c6 */
	struct gz_work *next; /* kept (below) */
} gz_work;

#define GZ_PROBE (64u << 10)

static size_t gz_threads(void);

/*
 * A compressor is ~0.7 MB of tables that every call writes whole: fresh
 * memory, so a page fault a page, dearer than compressing a small layer.
 * While a push runs (ib_push__gzip_keep), the compressors a worker is done
 * with are kept for the next layer's workers, at most two per core; the
 * last push to end frees them. A worker takes its set when it gets its
 * first chunk, so a one-chunk layer makes one set, not one per core.
 */
static pthread_mutex_t gz_kept_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned int gz_keepers;
static gz_work *gz_kept;
static size_t gz_kept_n;

static void gz_work_free(gz_work *w)
{
	while (w) {
		gz_work *next = w->next;
		libdeflate_free_compressor(w->c6);
		libdeflate_free_compressor(w->c1);
		libdeflate_free_compressor(w->c0);
		free(w->probe);
		free(w);
		w = next;
	}
}

static gz_work *gz_work_take(int level)
{
	pthread_mutex_lock(&gz_kept_mu);
	gz_work **at = &gz_kept;
	while (*at && (*at)->level != level)
		at = &(*at)->next;
	gz_work *w = *at;
	if (w) {
		*at = w->next;
		w->next = NULL;
		gz_kept_n--;
	}
	pthread_mutex_unlock(&gz_kept_mu);
	if (w)
		return w;
	if (!(w = calloc(1, sizeof *w)))
		return NULL;
	w->level = level;
	w->c6 = libdeflate_alloc_compressor(level);
	w->c1 = libdeflate_alloc_compressor(1);
	w->c0 = libdeflate_alloc_compressor(0);
	w->probe = malloc(GZ_PROBE);
	if (!w->c6 || !w->c1 || !w->c0 || !w->probe) {
		gz_work_free(w);
		return NULL;
	}
	return w;
}

static void gz_work_give(gz_work *w)
{
	pthread_mutex_lock(&gz_kept_mu);
	if (gz_keepers > 0 && gz_kept_n < 2 * gz_threads()) {
		w->next = gz_kept;
		gz_kept = w;
		gz_kept_n++;
		w = NULL;
	}
	pthread_mutex_unlock(&gz_kept_mu);
	gz_work_free(w);
}

void ib_push__gzip_keep(int on)
{
	gz_work *drop = NULL;
	pthread_mutex_lock(&gz_kept_mu);
	if (on)
		gz_keepers++;
	else if (gz_keepers > 0 && --gz_keepers == 0) {
		drop = gz_kept;
		gz_kept = NULL;
		gz_kept_n = 0;
	}
	pthread_mutex_unlock(&gz_kept_mu);
	gz_work_free(drop);
}

/*
 * The probe's answer known without it: at most 128 distinct byte values in
 * `p` mean a 7-bit code fits every byte, so deflate's Huffman codes (optimal,
 * never worse than that) make it at least 12% smaller, and level 1 passes
 * the 2% test whatever its matches. Text is so; random bytes are not. (A
 * histogram of 64 KiB costs ~1/20 of the level 1 probe it saves.)
 */
static int few_byte_values(const unsigned char *p, size_t n)
{
	uint32_t count[256] = { 0 };
	for (size_t i = 0; i < n; i++)
		count[p[i]]++;
	unsigned distinct = 0;
	for (unsigned b = 0; b < 256; b++)
		distinct += count[b] != 0;
	return distinct <= 128;
}

/*
 * One chunk as a complete gzip member. Data that does not compress (already
 * compressed files, random bytes) costs a real level a lot and gains nothing, so
 * a fast probe of the chunk's start decides: stored as it is when level 1
 * gains under 2% there, else the level asked (6 by default). The choice depends only on the
 * content, so the output stays the same everywhere.
 */
static int gz_member(gz_work *w, gz_slot *sl)
{
	size_t probe = sl->in_len < GZ_PROBE ? sl->in_len : GZ_PROBE;
	int known = probe == GZ_PROBE && few_byte_values(sl->in, probe); /* (a whole probe: headers are ~1% of it) */
	size_t got = probe && !known ? libdeflate_deflate_compress(w->c1, sl->in, probe, w->probe, GZ_PROBE) : 0;
	struct libdeflate_compressor *c = probe && !known && (got == 0 || got * 100 > probe * 98) ? w->c0 : w->c6;
	if (libdeflate_gzip_compress_bound(c, sl->in_len) > sl->out_cap)
		return -1;
	sl->out_len = libdeflate_gzip_compress(c, sl->in, sl->in_len, sl->out, sl->out_cap);
	return sl->out_len ? 0 : -1;
}

static void *gz_worker(void *arg)
{
	gz_pool *p = arg;
	gz_work *w = NULL;
	int tried = 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->quit && p->next >= p->submitted)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->quit)
			break;
		gz_slot *sl = &p->slots[p->next++ % p->nslots];
		pthread_mutex_unlock(&p->mu);
		if (!tried++)
			w = gz_work_take(p->level);
		sl->rc = w ? gz_member(w, sl) : -1;
		pthread_mutex_lock(&p->mu);
		sl->done = 1;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	if (w)
		gz_work_give(w);
	return NULL;
}

static size_t gz_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 8 ? 8 : (size_t)n;
}

typedef struct {
	gz_pool p;
	pthread_t *threads;
	size_t started;
	ib_blob_writer *w;
	ib_push__tap *tap;
	const char *ds;
	uint64_t fill, out; /* the chunk filling (when `filling`), the next to write out */
	int filling;
	uint64_t total;
	int rc; /* the first failure, its error saved in err */
	ib_error_saved err;
} gz_stream;

static int gz_fail(gz_stream *g, int rc)
{
	if (g->rc == 0) {
		g->rc = rc;
		ib_error_save(&g->err);
	}
	return rc;
}

/* Wait for the oldest chunk handed over, write its member out. */
static int gz_write_out(gz_stream *g)
{
	gz_slot *sl = &g->p.slots[g->out % g->p.nslots];
	pthread_mutex_lock(&g->p.mu);
	while (!sl->done)
		pthread_cond_wait(&g->p.done, &g->p.mu);
	pthread_mutex_unlock(&g->p.mu);
	g->out++;
	int rc;
	if (sl->rc < 0)
		rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "gzip of layer %s: deflate failed", g->ds);
	else if ((rc = ib_blob_writer_write(g->w, sl->out, sl->out_len)) == 0)
		rc = ib_push__tap_wrote(g->tap, sl->out_len);
	return rc < 0 ? gz_fail(g, rc) : 0;
}

/*
 * A slot's buffers: a chunk's worth, or for a layer of one chunk only its
 * size (fresh memory is dear: a 100 KB layer does not fill 1 MiB).
 */
static int gz_slot_alloc(gz_slot *sl, size_t in_cap)
{
	unsigned char *in = ib_bigio_alloc_filled(in_cap); /* written whole, but for the last chunk */
	/* more than libdeflate's bound for a gzip member of in_cap bytes */
	size_t out_cap = in_cap + in_cap / 8 + 4096;
	unsigned char *out = in ? ib_malloc(out_cap) : NULL;
	if (!out) {
		free(in);
		return IB_ERROR;
	}
	if (sl->in_len)
		memcpy(in, sl->in, sl->in_len);
	free(sl->in);
	free(sl->out);
	sl->in = in;
	sl->in_cap = in_cap;
	sl->out = out;
	sl->out_cap = out_cap;
	return 0;
}

/*
 * A slot sized for a smaller layer than comes: a whole chunk's. (Not
 * expected: a regeneration stops at the recorded size, and a blob does not
 * change; but more bytes than the size said are never an overflow.)
 */
static int gz_grow(gz_stream *g, gz_slot *sl)
{
	return gz_slot_alloc(sl, GZ_CHUNK) < 0 ? gz_fail(g, IB_ERROR) : 0;
}

/* The slot to fill (a free one: its old member written out first). */
static gz_slot *gz_space(gz_stream *g)
{
	if (g->rc < 0)
		return NULL;
	gz_slot *sl = &g->p.slots[g->fill % g->p.nslots];
	if (!g->filling) {
		if (g->fill - g->out == g->p.nslots && gz_write_out(g) < 0)
			return NULL;
		sl->in_len = 0;
		sl->done = 0;
		g->filling = 1;
	}
	if (sl->in_len == sl->in_cap && gz_grow(g, sl) < 0)
		return NULL;
	return sl;
}

/* Hand the filling chunk to the pool. */
static void gz_submit(gz_stream *g)
{
	pthread_mutex_lock(&g->p.mu);
	g->p.submitted = ++g->fill;
	pthread_cond_signal(&g->p.work);
	pthread_mutex_unlock(&g->p.mu);
	g->filling = 0;
}

/* The bytes of the layer as they come (ib_store_write_cb). */
static int gz_feed(const void *data, size_t len, void *payload)
{
	gz_stream *g = payload;
	const unsigned char *d = data;
	while (len) {
		gz_slot *sl = gz_space(g);
		if (!sl)
			return g->rc;
		size_t n = sl->in_cap - sl->in_len < len ? sl->in_cap - sl->in_len : len;
		memcpy(sl->in + sl->in_len, d, n);
		sl->in_len += n;
		g->total += n;
		d += n;
		len -= n;
		if (sl->in_len == GZ_CHUNK)
			gz_submit(g);
	}
	return 0;
}

/* The bytes of a file, read straight into the slots. */
static int gz_feed_fd(gz_stream *g, int fd)
{
	for (;;) {
		gz_slot *sl = gz_space(g);
		if (!sl)
			return g->rc;
		size_t want = sl->in_cap - sl->in_len;
		ssize_t got = ib_read_full(fd, sl->in + sl->in_len, want);
		if (got < 0)
			return gz_fail(g, ib_error_set_os(IB_LAYER_PUSH, "gzip of layer %s: read", g->ds));
		sl->in_len += (size_t)got;
		g->total += (uint64_t)got;
		if ((size_t)got < want)
			return 0; /* the end of the file */
		if (sl->in_len == GZ_CHUNK)
			gz_submit(g);
	}
}

/* The last (short) chunk, every member out; an empty input still makes one (empty) member. */
static int gz_finish(gz_stream *g)
{
	if (g->rc == 0 && g->total == 0 && !gz_space(g))
		return g->rc;
	if (g->rc == 0 && g->filling && (g->p.slots[g->fill % g->p.nslots].in_len > 0 || g->total == 0))
		gz_submit(g);
	while (g->rc == 0 && g->out < g->fill)
		gz_write_out(g);
	return g->rc;
}

int ib_push__gzip_layer(ib_digest *out, uint64_t *size, ib_store *s, const ib_digest *layer)
{
	return ib_push__gzip_layer_level(out, size, s, layer, 0);
}

int ib_push__gzip_layer_level(ib_digest *out, uint64_t *size, ib_store *s, const ib_digest *layer, int level)
{
	return ib_push__gzip_layer_tap(out, size, s, layer, level, NULL);
}

/*
 * A layer kept only unpacked is regenerated straight into the compression
 * (ib_store__blob_open_or_stream()): its digest and size are checked only
 * after its last byte, so nothing is committed before: the compressed blob
 * is committed (and so can be recorded as a variant, or sent with its
 * closing PUT by stream.c) only when the regenerated layer was the
 * recorded one; else it is dropped with the error naming the layer.
 */
int ib_push__gzip_layer_tap(ib_digest *out, uint64_t *size, ib_store *s, const ib_digest *layer, int level,
			    ib_push__tap *tap)
{
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, layer);
	if (level == 0)
		level = IB_PUSH__GZIP_LEVEL_DEFAULT;
	if (level < 1 || level > 9)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "gzip level %d: give 1 to 9", level);
	/* no more workers and slots than the layer has chunks (a small layer: one worker, one slot) */
	size_t nthreads = gz_threads();
	uint64_t lsize = 0;
	if (ib_store_blob_size(&lsize, s, layer) < 0)
		ib_error_clear(); /* said by the open below */
	uint64_t chunks = lsize / GZ_CHUNK + 1;
	if (nthreads > chunks)
		nthreads = (size_t)chunks;
	gz_stream g;
	memset(&g, 0, sizeof g);
	g.tap = tap;
	g.ds = ds;
	pthread_mutex_init(&g.p.mu, NULL);
	pthread_cond_init(&g.p.work, NULL);
	pthread_cond_init(&g.p.done, NULL);
	/* a chunk filling while each worker compresses one: fresh memory is dear (faults), so no more */
	g.p.nslots = nthreads + 1 < chunks ? nthreads + 1 : (size_t)chunks;
	g.p.level = level;
	g.p.slots = ib_calloc(g.p.nslots, sizeof *g.p.slots);
	g.threads = ib_calloc(nthreads, sizeof *g.threads);
	int fd = -1, rc = 0;
	if (!g.p.slots || !g.threads) {
		rc = IB_ERROR;
		goto out;
	}
	/* one chunk: room for the layer and its end (a read that comes back short) */
	size_t in_cap = chunks > 1 ? GZ_CHUNK : (size_t)(lsize + 1 + 4095) / 4096 * 4096;
	for (size_t i = 0; i < g.p.nslots; i++) {
		if (gz_slot_alloc(&g.p.slots[i], in_cap) < 0) {
			rc = IB_ERROR;
			goto out;
		}
	}
	for (; g.started < nthreads; g.started++)
		if (pthread_create(&g.threads[g.started], NULL, gz_worker, &g.p) != 0)
			break;
	if (g.started == 0) {
		rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "gzip of layer %s: no thread", ds);
		goto out;
	}
	if ((rc = ib_store_blob_writer(&g.w, s)) < 0 || (rc = ib_push__tap_open(tap, g.w)) < 0)
		goto out;
	rc = ib_store__blob_open_or_stream(&fd, s, layer, gz_feed, &g);
	if (rc == 0)
		rc = gz_feed_fd(&g, fd);
	if (rc >= 0 && g.rc == 0)
		rc = gz_finish(&g);
	if (g.rc < 0) {
		/* the compression's own failure, not the "stopped by a callback" the regeneration says of it */
		ib_error_restore(&g.err);
		rc = g.rc;
	}
	/* whole and checked: the upload may close while the variant is made durable */
	if (rc >= 0)
		rc = ib_push__tap_complete(tap, g.w);
	if (rc >= 0) {
		rc = ib_blob_writer_commit(g.w, out, size, NULL);
		g.w = NULL;
	}
out:
	if (g.w)
		ib_blob_writer_abort(g.w);
	pthread_mutex_lock(&g.p.mu);
	g.p.quit = 1;
	pthread_cond_broadcast(&g.p.work);
	pthread_mutex_unlock(&g.p.mu);
	for (size_t i = 0; i < g.started; i++)
		pthread_join(g.threads[i], NULL);
	for (size_t i = 0; g.p.slots && i < g.p.nslots; i++) {
		free(g.p.slots[i].in);
		free(g.p.slots[i].out);
	}
	free(g.p.slots);
	free(g.threads);
	pthread_mutex_destroy(&g.p.mu);
	pthread_cond_destroy(&g.p.work);
	pthread_cond_destroy(&g.p.done);
	if (fd >= 0)
		close(fd);
	return rc;
}
