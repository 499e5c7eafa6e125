/*
 * docker push: every layer leaves compressed (a gzip variant, made once and
 * remembered, or the compressed blob a pulled/loaded image came with),
 * layers (biggest first) and the config in parallel, then the manifest
 * under the tag.
 */
#include "push/internal.h"
#include "util/callback.h"
#include "store/internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/*
 * A layer compressed ahead (ib_push): the biggest one the push has to
 * compress is started before the registry client is made (libcurl loaded)
 * and the registry first asked, so those ~30 ms overlap it. Its job takes
 * the result (joined once); whatever happens, ib_push joins it before it
 * returns.
 */
typedef struct {
	pthread_mutex_t mu;
	pthread_t th;
	int started, joined, taken;
	char *root; /* the thread's own store handle, as the jobs' */
	ib_digest diff_id;
	int zstd, level;
	ib_push__blob blob;
	int rc;
	ib_error_saved err;
} ahead_job;

typedef struct {
	const ib_image *img;
	ib_push__blob *blobs;   /* what each layer leaves as (media_type NULL: not known yet) */
	const char *mount_from; /* another repository of the registry the image came from, or NULL */
	uint64_t chunk;
	int zstd;               /* layers leave as zstd (else gzip) */
	int convert;            /* a compression was asked: a layer in the other format is converted */
	int level;              /* compression level asked (0: the default, remembered variants reused) */
	const char *domain;     /* the destination registry's */
	size_t *order;          /* the jobs in the order they start: layers biggest first, then the config (index n) */
	ahead_job *ahead;       /* a layer being compressed ahead, or NULL */
} push_job;

static const char *wanted_type(const push_job *job)
{
	return job->zstd ? IB_MEDIA_TYPE_OCI_LAYER_ZSTD : IB_MEDIA_TYPE_OCI_LAYER_GZIP;
}

/*
 * What layer `l` leaves as, when that is known without compressing: as it
 * is (already compressed, in the format asked when one was), or the
 * remembered variant. IB_ENOTFOUND (no error set) when it must be made.
 */
static int known_layer(ib_push__blob *out, ib_store *s, const ib_layer *l, const push_job *job)
{
	int gz = l->media_type && strstr(l->media_type, "gzip"), zs = l->media_type && strstr(l->media_type, "zstd");
	if ((gz || zs) && (!job->convert || (job->zstd ? zs : gz))) {
		out->digest = l->digest;
		out->size = l->size;
		out->media_type = l->media_type;
		return 0;
	}
	if (job->level) /* a level asked: made again at that level */
		return IB_ENOTFOUND;
	int rc = ib_store_variant_get(&out->digest, &out->size, s, &l->diff_id, wanted_type(job));
	if (rc == 0)
		out->media_type = wanted_type(job);
	else if (rc == IB_ENOTFOUND)
		ib_error_clear();
	/* a remote layer (a build from a registry cache): the blob its record names, in the format asked */
	ib_store_remote_layer rl;
	if (rc == IB_ENOTFOUND && ib_store_remote_layer_get(&rl, s, &l->diff_id) == 0 &&
	    !strcmp(rl.media_type, wanted_type(job))) {
		out->digest = rl.blob;
		out->size = rl.blob_size;
		out->media_type = wanted_type(job);
		rc = 0;
	}
	if (rc == IB_ENOTFOUND)
		ib_error_clear();
	return rc;
}

/* The compression compressed_layer() does, on the ahead thread (its variant recorded the same way). */
static void *ahead_main(void *arg)
{
	ahead_job *a = arg;
	const char *mt = a->zstd ? IB_MEDIA_TYPE_OCI_LAYER_ZSTD : IB_MEDIA_TYPE_OCI_LAYER_GZIP;
	ib_store *s = NULL;
	int rc = ib_store_open(&s, a->root, NULL);
	if (rc == 0)
		rc = a->zstd ? ib_push__zstd_layer(&a->blob.digest, &a->blob.size, s, &a->diff_id, a->level)
			     : ib_push__gzip_layer_level(&a->blob.digest, &a->blob.size, s, &a->diff_id, a->level);
	if (rc == 0)
		rc = ib_store__variant_put_made(s, &a->diff_id, &a->blob.digest, mt);
	if (rc == 0)
		a->blob.media_type = mt;
	else
		ib_error_save(&a->err);
	a->rc = rc;
	ib_store_free(s);
	return NULL;
}

static void ahead_join(ahead_job *a)
{
	pthread_mutex_lock(&a->mu);
	if (a->started && !a->joined) {
		pthread_join(a->th, NULL);
		a->joined = 1;
	}
	pthread_mutex_unlock(&a->mu);
}

/*
 * The ahead layer's result for its job: 1 with `out` (or its error, *rc <
 * 0) the first time; 0 when it never started or its error was taken
 * already (a layer twice in the image): the caller compresses it itself.
 */
static int ahead_take(ib_push__blob *out, int *rc, ahead_job *a)
{
	ahead_join(a);
	pthread_mutex_lock(&a->mu);
	int got = a->started && (a->rc == 0 || !a->taken);
	if (got) {
		*rc = a->rc;
		if (a->rc == 0)
			*out = a->blob;
		else
			ib_error_restore(&a->err);
		a->taken = 1;
	}
	pthread_mutex_unlock(&a->mu);
	return got;
}

/*
 * Start compressing, ahead, the biggest layer of `img` the push will have to
 * compress: one without a compressed form, kept here (a blob or unpacked,
 * never a remote one, which would be fetched), small enough to be
 * compressed whole (bigger ones stream: stream.c). Nothing started is no error.
 */
static void ahead_start(ahead_job *a, ib_store *s, const ib_image *img, const push_job *job, uint64_t chunk)
{
	uint64_t best = 0;
	const ib_layer *pick = NULL;
	for (size_t i = 0; i < ib_image_layer_count(img); i++) {
		const ib_layer *l = ib_image_layer(img, i);
		ib_push__blob b;
		if (l->size <= best || l->size > chunk || l->size > IB_PUSH_CHUNK_DEFAULT)
			continue;
		if (known_layer(&b, s, l, job) == IB_ENOTFOUND && ib_store__blob_local_has(s, &l->diff_id) == 1) {
			best = l->size;
			pick = l;
		}
		ib_error_clear();
	}
	if (!pick || !(a->root = ib_strdup(ib_store_root(s)))) {
		ib_error_clear();
		return;
	}
	/*
	 * A layer kept only unpacked is regenerated as a tar (libarchive, loaded
	 * on first use): loaded here first, or the thread would wait on the
	 * loader's lock while this one loads libcurl (~20 ms), then load it.
	 */
	if (ib_store_layer_source_has(s, &pick->diff_id) == 1 && ib_store__archive_load() < 0)
		ib_error_clear(); /* said again where it is used */
	a->diff_id = pick->diff_id;
	a->zstd = job->zstd;
	a->level = job->level;
	a->started = pthread_create(&a->th, NULL, ahead_main, a) == 0;
}

static void ahead_dispose(ahead_job *a)
{
	ahead_join(a);
	if (a->started && a->rc < 0 && !a->taken)
		ib_error_saved_dispose(&a->err);
	free(a->root);
	pthread_mutex_destroy(&a->mu);
}

/* The compressed blob layer `l` leaves as: as it is, the remembered variant, or a new one (made from the uncompressed layer). */
static int compressed_layer(ib_push__blob *out, ib_push__registry *r, ib_store *s, const ib_layer *l, const char *id,
			    const push_job *job)
{
	int rc = known_layer(out, s, l, job);
	if (rc != IB_ENOTFOUND)
		return rc;
	const char *mt = wanted_type(job);
	if ((rc = ib_push__registry_progress(r, id, "Compressing", 0, l->size)) < 0)
		return rc;
	if (job->ahead && ib_digest_equal(&job->ahead->diff_id, &l->diff_id) && ahead_take(out, &rc, job->ahead)) {
		if (rc < 0)
			ib_error_prefix("%s", ib_push__registry_what(r));
		return rc;
	}
	rc = job->zstd ? ib_push__zstd_layer(&out->digest, &out->size, s, &l->diff_id, job->level)
		       : ib_push__gzip_layer_level(&out->digest, &out->size, s, &l->diff_id, job->level);
	/* compressed here from the layer's own uncompressed blob: recorded without a second pass over it */
	if (rc == 0)
		rc = ib_store__variant_put_made(s, &l->diff_id, &out->digest, mt);
	if (rc == 0)
		out->media_type = mt;
	if (rc < 0)
		ib_error_prefix("%s", ib_push__registry_what(r));
	return rc;
}

static int push_layer(ib_push__registry *r, ib_store *s, size_t i, void *payload)
{
	push_job *job = payload;
	i = job->order[i];
	if (i == ib_image_layer_count(job->img)) /* the config, alongside the layers */
		return ib_push__upload_blob(r, s, ib_image_id(job->img), NULL, job->mount_from, job->chunk);
	const ib_layer *l = ib_image_layer(job->img, i);
	char id[13];
	ib_push__short(id, &l->diff_id);
	int rc = ib_push__registry_progress(r, id, "Preparing", 0, 0);
	/*
	 * A layer bigger than a chunk with no compressed form yet: compressed
	 * and sent at once (stream.c). The digest is only known at the end, so
	 * no HEAD first; such a layer was never pushed from this store.
	 */
	if (rc == 0 && !job->blobs[i].media_type && l->size > job->chunk) {
		if ((rc = known_layer(&job->blobs[i], s, l, job)) == IB_ENOTFOUND)
			return ib_push__stream_layer(&job->blobs[i], r, s, &l->diff_id, job->zstd, job->level, id,
						     job->chunk);
	}
	if (rc == 0 && !job->blobs[i].media_type)
		rc = compressed_layer(&job->blobs[i], r, s, l, id, job);
	/* a remote layer's blob is not in the store: found, mounted, or fetched (checked) first */
	ib_store_remote_layer rl;
	if (rc == 0 && ib_store_blob_has(s, &job->blobs[i].digest) != 1) {
		int rr = ib_store_remote_layer_get(&rl, s, &l->diff_id);
		if (rr == 0 && ib_digest_equal(&rl.blob, &job->blobs[i].digest))
			return ib_push__remote_layer_upload(r, job->domain, s, &rl, id, job->mount_from, job->chunk);
		if (rr < 0 && rr != IB_ENOTFOUND)
			return rr; /* a damaged record: said, not guessed around */
	}
	if (rc == 0)
		rc = ib_push__upload_blob(r, s, &job->blobs[i].digest, id, job->mount_from, job->chunk);
	return rc;
}

/* The manifest to send: the image's own when every layer already left compressed, else a new OCI one. */
static int manifest_for(ib_buf *out, const char **media_type, ib_store *s, const ib_image *img,
			const ib_push__blob *blobs, size_t n)
{
	int same = 1;
	for (size_t i = 0; i < n; i++)
		same = same && ib_digest_equal(&blobs[i].digest, &ib_image_layer(img, i)->digest);
	if (same) {
		*media_type = ib_image_manifest_media_type(img);
		return ib_store_blob_read(out, s, ib_image_manifest_digest(img));
	}
	uint64_t cfg_size;
	int rc = ib_store_blob_size(&cfg_size, s, ib_image_id(img));
	*media_type = IB_MEDIA_TYPE_OCI_MANIFEST;
	return rc < 0 ? rc : ib_push__manifest_json(out, ib_image_id(img), cfg_size, blobs, n);
}

static int put_manifest(ib_digest *out, ib_push__registry *r, const char *tag, const ib_buf *body, const char *mt)
{
	char *rel = ib_sprintf("/v2/%s/manifests/%s", ib_push__registry_path(r), tag);
	char *object = ib_sprintf("manifest %s", tag);
	ib_push__source src = { body->ptr, body->size, -1, 0, mt, NULL };
	ib_push__response resp = { 0 };
	int rc = rel && object ? ib_push__registry_request(r, &resp, "PUT", rel, NULL, &src, NULL, object) : IB_ERROR;
	if (rc == 0)
		rc = ib_digest_of(out, body->ptr, body->size);
	if (rc == 0 && resp.docker_digest) {
		ib_digest theirs;
		if (ib_digest_parse(&theirs, resp.docker_digest) < 0)
			ib_error_clear();
		else if (!ib_digest_equal(&theirs, out))
			rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "%s: %s: the registry stored it as %s",
					   ib_push__registry_what(r), object, resp.docker_digest);
	}
	ib_push__response_dispose(&resp);
	free(rel);
	free(object);
	return rc;
}

int ib_push__put_manifest(ib_digest *out, ib_push__registry *r, const char *tag, const ib_buf *body, const char *mt)
{
	return put_manifest(out, r, tag, body, mt);
}

/*
 * A repository of the destination registry (other than the destination)
 * that the image has a name in: where its blobs may be mounted from.
 */
static char *mount_source(const ib_image *img, const ib_reference *dest)
{
	for (size_t i = 0; i < ib_image_name_count(img); i++) {
		ib_reference *ref;
		if (ib_reference_parse(&ref, ib_image_name(img, i)) < 0) {
			ib_error_clear();
			continue;
		}
		char *path = NULL;
		if (!strcmp(ib_reference_domain(ref), ib_reference_domain(dest)) &&
		    strcmp(ib_reference_path(ref), ib_reference_path(dest)))
			path = ib_strdup(ib_reference_path(ref));
		ib_reference_free(ref);
		if (path)
			return path;
	}
	return NULL;
}

/*
 * HEAD of the tag's manifest: 1 when the registry has `body` (of digest
 * `d`) under it already, as its Docker-Content-Digest says; 0 when not (or
 * when it does not say). Also the first request of the push: it learns the
 * scheme and the auth the registry wants, as a GET /v2/ would.
 */
static int manifest_present(ib_push__registry *r, const char *tag, const char *mt, const ib_digest *d)
{
	char *rel = ib_sprintf("/v2/%s/manifests/%s", ib_push__registry_path(r), tag);
	char *object = ib_sprintf("manifest %s", tag);
	ib_push__response resp = { 0 };
	int rc = rel && object ? ib_push__registry_request(r, &resp, "HEAD", rel, mt, NULL, NULL, object) : IB_ERROR;
	if (rc == IB_ENOTFOUND) {
		ib_error_clear();
		rc = 0;
	} else if (rc == 0) {
		ib_digest theirs;
		rc = resp.docker_digest && ib_digest_parse(&theirs, resp.docker_digest) == 0 &&
		     ib_digest_equal(&theirs, d);
		ib_error_clear();
	}
	ib_push__response_dispose(&resp);
	free(rel);
	free(object);
	return rc;
}

static int compression_of(push_job *job, const ib_push_options *opts);
static int push_image(ib_digest *manifest, ib_buf *sent, const char **sent_type, ib_push__registry *r, ib_store *s,
		      const ib_image *img, const ib_reference *dest, const ib_push_options *opts, const char *tag,
		      ahead_job *ahead);

/* One image; its manifest under `tag`, or under its own digest when `tag` is NULL (an index's child). */
int ib_push__image(ib_digest *manifest, ib_buf *sent, const char **sent_type, ib_push__registry *r, ib_store *s,
		   const ib_image *img, const ib_reference *dest, const ib_push_options *opts, const char *tag)
{
	return push_image(manifest, sent, sent_type, r, s, img, dest, opts, tag, NULL);
}

static int push_image(ib_digest *manifest, ib_buf *sent, const char **sent_type, ib_push__registry *r, ib_store *s,
		      const ib_image *img, const ib_reference *dest, const ib_push_options *opts, const char *tag,
		      ahead_job *ahead)
{
	size_t n = ib_image_layer_count(img);
	char *from = mount_source(img, dest);
	push_job job = { 0 };
	int rc = compression_of(&job, opts);
	job.img = img;
	job.blobs = ib_calloc(n ? n : 1, sizeof(ib_push__blob));
	job.mount_from = from;
	job.domain = ib_reference_domain(dest);
	job.chunk = opts->chunk_size ? opts->chunk_size : IB_PUSH_CHUNK_DEFAULT;
	job.ahead = ahead;
	ib_buf body = IB_BUF_INIT;
	const char *mt = NULL;
	char by_digest[IB_DIGEST_STRLEN];
	if (rc == 0 && !job.blobs)
		rc = IB_ERROR;
	/* every layer's blob known without compressing (a push again): the manifest is known, asked for first */
	size_t known = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = known_layer(&job.blobs[i], s, ib_image_layer(img, i), &job);
		if (rc == 0)
			known++;
		else if (rc == IB_ENOTFOUND)
			rc = 0;
	}
	int done = 0, asked = 0, have_body = 0;
	if (rc == 0 && known == n && (rc = manifest_for(&body, &mt, s, img, job.blobs, n)) == 0) {
		ib_digest md;
		have_body = 1;
		if ((rc = ib_digest_of(&md, body.ptr, body.size)) == 0) {
			ib_digest_fmt(by_digest, &md);
			if ((rc = manifest_present(r, tag ? tag : by_digest, mt, &md)) >= 0)
				asked = 1;
		}
		/* only a shortcut: when the HEAD fails, the push goes the long way and says what fails there */
		if (rc < 0 && rc != IB_EUSER) {
			ib_error_clear();
			rc = 0;
		}
		if (rc == 1) {
			/* the registry has the manifest, so it has every blob it names: said as docker says it */
			*manifest = md;
			done = 1;
			rc = 0;
			for (size_t i = 0; rc == 0 && i < n; i++) {
				char id[13];
				ib_push__short(id, &ib_image_layer(img, i)->diff_id);
				rc = ib_push__registry_progress(r, id, "Layer already exists", 0, 0);
			}
		}
	}
	if (rc == 0 && !asked)
		rc = ib_push__registry_ping(r);
	/*
	 * The layers and the config go up in parallel (the manifest only after
	 * all of them): the biggest layers first, so that the one that takes
	 * longest (regenerated, compressed, sent) never waits behind small ones.
	 */
	if (rc == 0 && !done && !(job.order = ib_calloc(n + 1, sizeof *job.order)))
		rc = IB_ERROR;
	if (rc == 0 && !done) {
		for (size_t i = 0; i <= n; i++) {
			size_t k = i;
			uint64_t size = i < n ? ib_image_layer(img, i)->size : 0;
			for (; k > 0 && job.order[k - 1] < n && ib_image_layer(img, job.order[k - 1])->size < size; k--)
				job.order[k] = job.order[k - 1];
			job.order[k] = i;
		}
		rc = ib_push__run_jobs(r, s, n + 1, opts->jobs, push_layer, &job);
	}
	if (rc == 0 && !done && !have_body)
		rc = manifest_for(&body, &mt, s, img, job.blobs, n);
	if (rc == 0 && !done && !tag) {
		ib_digest d;
		if ((rc = ib_digest_of(&d, body.ptr, body.size)) == 0)
			ib_digest_fmt(by_digest, &d);
	}
	if (rc == 0 && !done)
		rc = put_manifest(manifest, r, tag ? tag : by_digest, &body, mt);
	if (rc == 0 && sent)
		rc = ib_buf_set(sent, body.ptr, body.size);
	if (rc == 0 && sent_type)
		*sent_type = mt;
	ib_buf_dispose(&body);
	free(job.blobs);
	free(job.order);
	free(from);
	return rc;
}

int ib_push_options_init(ib_push_options *opts, unsigned int version)
{
	if (!opts)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "ib_push_options_init: NULL options");
	if (version == 1) { /* only version 1's size: the caller's struct may be that */
		ib_push__push_options_v1 *old = (ib_push__push_options_v1 *)(void *)opts;
		memset(old, 0, sizeof *old);
		old->version = 1;
		old->registry.version = 1;
		return 0;
	}
	if (version == 2) { /* only version 2's size */
		ib_push__push_options_v2 *old = (ib_push__push_options_v2 *)(void *)opts;
		memset(old, 0, sizeof *old);
		old->version = 2;
		return 0;
	}
	if (version != IB_PUSH_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "ib_push_options version %u is not supported", version);
	static const ib_push_options d = IB_PUSH_OPTIONS_INIT; /* zero padding (C11 6.7.9): bindings compare bytes */
	memcpy(opts, &d, sizeof *opts);
	return 0;
}

/* The compression asked: a known name, a level in its range. */
static int compression_of(push_job *job, const ib_push_options *opts)
{
	const char *c = opts->compression;
	if (c && strcmp(c, "gzip") && strcmp(c, "zstd"))
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "push: unknown compression `%s` (gzip or zstd)", c);
	job->zstd = c && !strcmp(c, "zstd");
	job->convert = c != NULL;
	job->level = opts->compression_level;
	int max = job->zstd ? IB_PUSH_ZSTD_MAX_LEVEL : 9;
	if (job->level < 0 || job->level > max)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "push: %s compression level %d: give 1 to %d",
				     job->zstd ? "zstd" : "gzip", job->level, max);
	return 0;
}

int ib_push(ib_digest *manifest, ib_store *store, const char *local_name, const char *dest_ref,
	    const ib_push_options *opts)
{
	static const ib_push_options defaults = IB_PUSH_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	ib_push_options cur = IB_PUSH_OPTIONS_INIT;
	if (opts->version == 1) { /* the registry options by value, holding the callbacks */
		const ib_push__push_options_v1 *old = (const ib_push__push_options_v1 *)(const void *)opts;
		cur.registry = (const ib_registry_options *)(const void *)&old->registry;
		cur.jobs = old->jobs;
		cur.chunk_size = old->chunk_size;
		cur.callbacks = old->registry.callbacks;
		opts = &cur;
	} else if (opts->version == 2) { /* no compression fields: only version 2's size is read */
		const ib_push__push_options_v2 *old = (const ib_push__push_options_v2 *)(const void *)opts;
		cur.registry = old->registry;
		cur.jobs = old->jobs;
		cur.chunk_size = old->chunk_size;
		cur.callbacks = old->callbacks;
		opts = &cur;
	}
	if (opts->version != IB_PUSH_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "push options: unknown version %u", opts->version);
	push_job job = { 0 };
	int rc = compression_of(&job, opts);
	if (rc < 0)
		return rc;
	ib_reference *ref;
	rc = ib_reference_parse(&ref, dest_ref ? dest_ref : local_name);
	if (rc < 0)
		return rc;
	pthread_t warm;
	memset(&warm, 0, sizeof warm);
	int warming = 1; /* (nothing to join) */
	ib_push__gzip_keep(1); /* one layer's compressors serve the next */
	ib_image *img = NULL;
	ib_push__registry *r = NULL;
	ahead_job ahead = { .mu = PTHREAD_MUTEX_INITIALIZER };
	int leased = 0;
	char *what = ib_sprintf("push to %s", ib_reference_repository(ref));
	if (!what)
		rc = IB_ERROR;
	else if (ib_reference_digest(ref))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: push to a digest (`%s`): give a tag", what,
				   ib_reference_familiar(ref));
	else if ((rc = ib_store_image_lookup(&img, store, local_name)) == 0 && (rc = ib_store_lease_acquire(store)) == 0)
		leased = 1;
	/*
	 * One image: its biggest layer to compress starts now, while libcurl
	 * loads (on another thread) and the registry is asked. In that order:
	 * the loader is one lock, so libarchive (6 ms), which the compression
	 * needs first, is loaded before libcurl's ~28 objects (13 ms) begin.
	 */
	if (rc == 0 && !ib_image_index_digest(img))
		ahead_start(&ahead, store, img, &job, opts->chunk_size ? opts->chunk_size : IB_PUSH_CHUNK_DEFAULT);
	if (rc == 0)
		warming = ib_push__curl_warm(&warm);
	if (rc == 0)
		rc = ib_push__registry_new(&r, ib_reference_domain(ref), ib_reference_path(ref), "pull,push", opts->registry,
				     opts->callbacks, what);
	if (rc == 0)
		ib_push__registry_memo(r, ib_store_root(store));
	ib_digest md;
	if (rc == 0) {
		/* a multi-platform image: every platform's image, then the index under the tag */
		rc = ib_image_index_digest(img) ? ib_push__index(&md, r, store, img, ref, opts)
						: push_image(&md, NULL, NULL, r, store, img, ref, opts, ib_reference_tag(ref),
							     &ahead);
	}
	if (rc < 0) { /* the error said, not the ahead layer's (joined below) */
		ib_error_saved err;
		ib_error_save(&err);
		ahead_dispose(&ahead);
		ib_error_restore(&err);
	} else {
		ahead_dispose(&ahead);
	}
	if (leased)
		ib_store_lease_release(store);
	if (rc == 0) {
		/* docker's RepoDigests: REPOSITORY@<the digest of the manifest the registry has> */
		char ids[IB_DIGEST_STRLEN], ms[IB_DIGEST_STRLEN];
		ib_digest_fmt(ids, ib_image_id(img));
		ib_digest_fmt(ms, &md);
		char *rd = ib_sprintf("%s@%s", ib_reference_repository(ref), ms);
		int known = 0; /* a push again: recorded already (nothing written, no fsync) */
		for (size_t i = 0; rd && i < ib_image_repo_digest_count(img); i++)
			known = known || !strcmp(ib_image_repo_digest(img, i), rd);
		rc = !rd ? IB_ERROR : known ? 0 : ib_store_repo_digest_add(store, ids, rd);
		if (rc < 0)
			ib_error_prefix("%s: record the repository digest", what);
		free(rd);
	}
	if (rc == 0 && manifest)
		*manifest = md;
	ib_push__registry_free(r);
	ib_image_free(img);
	free(what);
	ib_reference_free(ref);
	ib_push__gzip_keep(0);
	ib_push__curl_warm_join(warm, warming);
	return ib_callback_result(rc);
}
