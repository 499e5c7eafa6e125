/*
 * A big layer's first push: compressed and uploaded at once.
 *
 * A layer the registry is to get compressed, when no compressed variant of
 * it is remembered yet, used to be compressed whole into the store (the
 * variant, fsynced), then read back and uploaded: the upload waited for
 * the last byte of the compression. Here a thread compresses into the
 * variant's temporary file as before while this thread sends what is
 * written in PATCH chunks (each a range of that file, so a chunk is sent
 * again after a transient failure as any chunk is), and the closing PUT
 * names the digest the compression found. The variant is recorded as
 * before: the next push of the layer finds it, asks (HEAD) first and moves
 * nothing the registry has.
 *
 * The closing PUT goes as soon as the blob is whole and checked (its
 * digest known: ib_push__tap_complete), while the compression's thread
 * makes the variant durable (fsync, rename, ~0.8 s for 1.3 GB on the
 * reference VM): the registry's own finishing and that fsync overlap. A
 * variant that then fails to be stored fails the push as before, with the
 * registry holding a correct blob nothing names yet.
 *
 * What it gives up: the blob HEAD before the upload (the digest is not
 * known before the compression ends), so a registry that has the blob
 * already gets it again; only layers whose variant is not remembered come
 * here, and a push of the same image again asks for the manifest first.
 * When a chunk fails for good, the compression still ends, the variant is
 * recorded and the blob goes up the ordinary way (HEAD, whole upload,
 * resumable): never a wrong blob, at worst the old cost.
 *
 * A layer kept only unpacked is regenerated straight into the compression
 * (transfer.c, zstd.c): its digest is known to be the recorded one only
 * after its last byte. The compression fails when it is not, before the
 * variant is recorded and before the closing PUT: the chunks sent so far
 * stay an incomplete session (cancelled with a DELETE), which no registry
 * makes a blob of.
 */
#include "push/internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/internal.h"

struct ib_push__tap {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fd;           /* a duplicate of the variant's temporary file; -1 until it exists */
	uint64_t written; /* bytes of it written */
	int done;         /* the compression ended (rc says how) */
	int complete;     /* the blob is whole and checked: `digest`, `size` (its durability may still be under way) */
	ib_digest digest;
	uint64_t size;
	int rc;
	int cancel;       /* the upload was cancelled by the caller: the compression stops too */
};

int ib_push__tap_open(ib_push__tap *t, ib_blob_writer *w)
{
	if (!t)
		return 0;
	int fd = dup(ib_store__blob_writer_fd(w));
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_PUSH, "dup of a blob's temporary file");
	pthread_mutex_lock(&t->mu);
	t->fd = fd;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

int ib_push__tap_wrote(ib_push__tap *t, size_t len)
{
	if (!t)
		return 0;
	pthread_mutex_lock(&t->mu);
	t->written += len;
	int cancel = t->cancel;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return cancel ? ib_error_setc(IB_EUSER, IB_LAYER_PUSH, "compression stopped: the upload was cancelled") : 0;
}

int ib_push__tap_complete(ib_push__tap *t, ib_blob_writer *w)
{
	if (!t)
		return 0;
	ib_digest d;
	uint64_t size = 0;
	int rc = ib_store__blob_writer_seal(w, &d, &size);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&t->mu);
	t->digest = d;
	t->size = size;
	t->complete = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

typedef struct {
	ib_push__tap tap;
	ib_store *s;
	const ib_digest *diff_id;
	int zstd, level;
	ib_digest digest; /* of the compressed blob, when rc == 0 */
	uint64_t size;
	ib_error_saved err;
} stream_job;

static void *compress_main(void *arg)
{
	stream_job *j = arg;
	int rc = j->zstd ? ib_push__zstd_layer_tap(&j->digest, &j->size, j->s, j->diff_id, j->level, &j->tap)
			 : ib_push__gzip_layer_tap(&j->digest, &j->size, j->s, j->diff_id, j->level, &j->tap);
	if (rc < 0)
		ib_error_save(&j->err);
	pthread_mutex_lock(&j->tap.mu);
	j->tap.rc = rc;
	j->tap.done = 1;
	pthread_cond_broadcast(&j->tap.cv);
	pthread_mutex_unlock(&j->tap.mu);
	return NULL;
}

/*
 * Wait until `chunk` bytes past `sent` are written or the compression ended
 * (or its blob is whole); what is written, and (`failed`) whether it ended
 * in an error before the blob was whole.
 */
static uint64_t wait_for(stream_job *j, uint64_t sent, uint64_t chunk, int *done, int *failed)
{
	pthread_mutex_lock(&j->tap.mu);
	while (!j->tap.done && !j->tap.complete && (j->tap.fd < 0 || j->tap.written - sent < chunk))
		pthread_cond_wait(&j->tap.cv, &j->tap.mu);
	uint64_t w = j->tap.written;
	*done = j->tap.done || j->tap.complete; /* (complete: nothing more is written) */
	*failed = j->tap.done && !j->tap.complete && j->tap.rc < 0;
	pthread_mutex_unlock(&j->tap.mu);
	return w;
}

static void follow_location(char **location, ib_push__response *resp)
{
	if (resp->location) {
		free(*location);
		*location = resp->location;
		resp->location = NULL;
	}
}

/* Drop an upload session that must not complete (DELETE; the registry's own expiry when it refuses). */
static void cancel_session(ib_push__registry *r, const char *location, const char *object)
{
	ib_error_saved err;
	ib_error_save(&err);
	ib_push__response resp = { 0 };
	ib_push__registry_request(r, &resp, "DELETE", location, NULL, NULL, NULL, object);
	ib_push__response_dispose(&resp);
	ib_error_restore(&err);
}

/* The upload session: POST, the PATCH chunks as the file grows; 0 with `location` for the closing PUT. */
static int send_growing(ib_push__registry *r, stream_job *j, const char *id, uint64_t chunk, const char *object,
			char **location)
{
	ib_push__response resp = { 0 };
	char *rel = ib_sprintf("/v2/%s/blobs/uploads/", ib_push__registry_path(r));
	int rc = rel ? ib_push__registry_request(r, &resp, "POST", rel, NULL, NULL, NULL, object) : IB_ERROR;
	free(rel);
	if (rc == 0 && !resp.location)
		rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "%s: %s: no Location in the answer", ib_push__registry_what(r),
				   object);
	follow_location(location, &resp);
	uint64_t sent = 0;
	int done = 0, failed = 0;
	while (rc == 0) {
		uint64_t written = wait_for(j, sent, chunk, &done, &failed);
		if (failed)
			break; /* the compression failed: said by the caller */
		if (written == sent && done)
			break;
		/* whole chunks while it grows (the last one, short, when it ended); at most four at once */
		uint64_t n = written - sent;
		if (!done)
			n -= n % chunk;
		if (n > 4 * chunk)
			n = 4 * chunk;
		ib_push__source body = { NULL, 0, j->tap.fd, n, "application/octet-stream", NULL, sent, 0 };
		ib_push__response_dispose(&resp);
		if ((rc = ib_push__registry_request(r, &resp, "PATCH", *location, NULL, &body, NULL, object)) < 0)
			break;
		follow_location(location, &resp);
		sent += n;
		if (id && (rc = ib_push__registry_progress(r, id, "Pushing", sent, 0)) < 0)
			break;
	}
	ib_push__response_dispose(&resp);
	return rc;
}

/* The closing PUT of the session at `location`, naming `digest`; 0 or the error (not saved). */
static int close_session(ib_push__registry *r, const char *location, const ib_digest *digest, const char *object)
{
	char dg[IB_DIGEST_STRLEN];
	ib_digest_fmt(dg, digest);
	char *put = ib_sprintf("%s%cdigest=%s", location, strchr(location, '?') ? '&' : '?', dg);
	ib_push__source none = { "", 0, -1, 0, "application/octet-stream", NULL, 0, 0 };
	ib_push__response resp = { 0 };
	int rc = put ? ib_push__registry_request(r, &resp, "PUT", put, NULL, &none, NULL, object) : IB_ERROR;
	ib_push__response_dispose(&resp);
	free(put);
	return rc;
}

int ib_push__stream_layer(ib_push__blob *out, ib_push__registry *r, ib_store *s, const ib_digest *diff_id, int zstd,
			  int level, const char *id, uint64_t chunk)
{
	const char *mt = zstd ? IB_MEDIA_TYPE_OCI_LAYER_ZSTD : IB_MEDIA_TYPE_OCI_LAYER_GZIP;
	char ds[IB_DIGEST_STRLEN], object[IB_DIGEST_STRLEN + 32];
	ib_digest_fmt(ds, diff_id);
	snprintf(object, sizeof object, "blob upload of layer %s", ds);
	stream_job j = { .s = s, .diff_id = diff_id, .zstd = zstd, .level = level };
	pthread_mutex_init(&j.tap.mu, NULL);
	pthread_cond_init(&j.tap.cv, NULL);
	j.tap.fd = -1;
	pthread_t th;
	int rc = ib_push__registry_progress(r, id, "Compressing", 0, 0);
	if (rc == 0 && pthread_create(&th, NULL, compress_main, &j) != 0)
		rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "%s: no thread to compress layer %s", ib_push__registry_what(r),
				   ds);
	if (rc < 0) {
		pthread_mutex_destroy(&j.tap.mu);
		pthread_cond_destroy(&j.tap.cv);
		return rc;
	}
	char *location = NULL;
	int up = send_growing(r, &j, id, chunk ? chunk : IB_PUSH_CHUNK_DEFAULT, object, &location);
	ib_error_saved up_err = { 0 };
	if (up < 0) {
		ib_error_save(&up_err);
		if (up == IB_EUSER) { /* cancelled: the compression stops as well */
			pthread_mutex_lock(&j.tap.mu);
			j.tap.cancel = 1;
			pthread_mutex_unlock(&j.tap.mu);
		}
	}
	/*
	 * The blob whole and checked, all of it sent: the session closes now,
	 * while the compression's thread makes the variant durable (an fsync of
	 * the whole blob, ~0.8 s for 1.3 GB here), not after it.
	 */
	int closed = 0;
	pthread_mutex_lock(&j.tap.mu);
	int complete = j.tap.complete;
	ib_digest sealed = j.tap.digest;
	pthread_mutex_unlock(&j.tap.mu);
	if (up == 0 && complete) {
		if ((up = close_session(r, location, &sealed, object)) < 0)
			ib_error_save(&up_err);
		else
			closed = 1;
	}
	pthread_join(th, NULL);
	if (j.tap.fd >= 0)
		close(j.tap.fd);
	pthread_mutex_destroy(&j.tap.mu);
	pthread_cond_destroy(&j.tap.cv);
	if (up == IB_EUSER) {
		ib_error_saved_dispose(&j.err);
		ib_error_restore(&up_err);
		free(location);
		return up;
	}
	if (j.tap.rc < 0) {
		/*
		 * No closing PUT: the registry never takes the blob. A layer kept
		 * only unpacked is checked only after its last byte (regenerated
		 * straight into the compression), so this is also where a damaged
		 * one stops: the chunks it sent are dropped with the session.
		 */
		ib_error_saved_dispose(&up_err);
		if (location && !closed)
			cancel_session(r, location, object);
		ib_error_restore(&j.err);
		ib_error_prefix("%s", ib_push__registry_what(r));
		free(location);
		return j.tap.rc;
	}
	/* made from the layer's own uncompressed blob: recorded without a second pass over it */
	rc = ib_store__variant_put_made(s, diff_id, &j.digest, mt);
	if (rc == 0) {
		out->digest = j.digest;
		out->size = j.size;
		out->media_type = mt;
	}
	if (rc == 0 && up == 0 && !closed && (up = close_session(r, location, &j.digest, object)) < 0)
		ib_error_save(&up_err);
	free(location);
	if (rc < 0) {
		ib_error_saved_dispose(&up_err);
		return rc;
	}
	if (up == 0) {
		ib_error_saved_dispose(&up_err);
		return ib_push__registry_progress(r, id, "Pushed", j.size, j.size);
	}
	if (up == IB_EUSER) {
		ib_error_restore(&up_err);
		return up;
	}
	/* the session failed for good: the blob is whole in the store now, and goes the ordinary way */
	ib_error_saved_dispose(&up_err);
	ib_error_clear();
	return ib_push__upload_blob(r, s, &j.digest, id, NULL, chunk);
}
