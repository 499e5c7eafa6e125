/* libarchive glue: decompressing streams, error text. */
#include "store/internal.h"
#include "util/callback.h"
#include "util/hash.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

/* The libarchive filter a layer media type promises; -1: any (or none). */
static int filter_of(const char *media_type)
{
	if (!media_type)
		return -1;
	if (strstr(media_type, "gzip"))
		return ARCHIVE_FILTER_GZIP;
	if (strstr(media_type, "zstd"))
		return ARCHIVE_FILTER_ZSTD;
	return -1;
}

typedef int (*chunk_fn)(void *payload, const void *data, size_t len);

/*
 * Stream what `fd` yields through libarchive's decompressors, 64 KiB at a
 * time, into `fn`. With `media_type` (a gzip or zstd layer type) the stream
 * must be exactly that compression, once.
 */
static int decompress(int fd, const char *media_type, const char *what, chunk_fn fn, void *payload)
{
	struct archive *a = archive_read_new();
	if (!a)
		return ib_error_oom();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	archive_read_support_format_empty(a);
	int rc = 0, want = filter_of(media_type);
	struct archive_entry *e;
	char *buf = NULL;
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: %s", what, archive_error_string(a));
		goto out;
	}
	int r = archive_read_next_header(a, &e);
	/* the filters are known once the first header is read; filter 0 is the one next to the data */
	if (want >= 0 && (r == ARCHIVE_OK || r == ARCHIVE_EOF) &&
	    (archive_filter_count(a) != 2 || archive_filter_code(a, 0) != want)) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s is not %s-compressed data, as its media type %s says",
				   what, want == ARCHIVE_FILTER_GZIP ? "gzip" : "zstd", media_type);
		goto out;
	}
	if (r == ARCHIVE_EOF)
		goto out;
	if (r != ARCHIVE_OK) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: %s", what, archive_error_string(a));
		goto out;
	}
	if (!(buf = ib_malloc(1 << 16))) {
		rc = IB_ERROR;
		goto out;
	}
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, 1 << 16);
		if (n < 0) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: %s", what, archive_error_string(a));
			break;
		}
		if (n == 0)
			break;
		if ((rc = fn(payload, buf, (size_t)n)) < 0)
			break;
	}
out:
	free(buf);
	archive_read_free(a);
	return rc;
}

static int to_writer(void *payload, const void *data, size_t len)
{
	return ib_blob_writer_write(payload, data, len);
}

static int to_hash(void *payload, const void *data, size_t len)
{
	return ib_sha256_update(payload, data, len);
}

int ib_store__decompress_into(ib_blob_writer *w, int fd, const char *what)
{
	return decompress(fd, NULL, what, to_writer, w);
}

/* to_writer with BYTES reports (every MiB) and the cancel flag. */
typedef struct {
	ib_blob_writer *w;
	const ib_callbacks *cb;
	const char *id, *text;
	uint64_t done, reported;
} reporting_writer;

static int to_reporting_writer(void *payload, const void *data, size_t len)
{
	reporting_writer *r = payload;
	int rc = ib_blob_writer_write(r->w, data, len);
	if (rc < 0)
		return rc;
	r->done += len;
	if (r->done - r->reported < (1u << 20))
		return ib_callback_check(r->cb, r->text);
	r->reported = r->done;
	return ib_callback_progress(r->cb, IB_PROGRESS_BYTES, r->id, r->text, r->done, 0, 0, r->text);
}

int ib_store__decompress_into_cb(ib_blob_writer *w, int fd, const char *what, const ib_callbacks *cb,
				 const char *id, const char *text)
{
	reporting_writer r = { w, cb, id, text, 0, 0 };
	int rc = ib_callback_check(cb, text);
	if (rc == 0)
		rc = decompress(fd, NULL, what, to_reporting_writer, &r);
	if (rc == 0)
		rc = ib_callback_progress(cb, IB_PROGRESS_BYTES, id, text, r.done, r.done, 0, text);
	return rc;
}

int ib_store__decompress_layer_into(ib_blob_writer *w, int fd, const char *media_type, const char *what)
{
	return decompress(fd, media_type, what, to_writer, w);
}

int ib_store__decompressed_digest(ib_digest *out, int fd, const char *media_type, const char *what)
{
	ib_sha256 *h = ib_sha256_new();
	if (!h)
		return IB_ERROR;
	int rc = decompress(fd, media_type, what, to_hash, h);
	if (rc == 0)
		rc = ib_sha256_final(h, out);
	ib_sha256_free(h);
	return rc;
}
