/*
 * Blobs: blobs/sha256/<hex>. A blob is written to a temporary file in
 * <root>/tmp, hashed while it streams in, fsynced and renamed into place, so
 * a blob appears under its digest only when complete. The writer holds a
 * lease (see store.h) for its whole life.
 *
 * A big blob's pages are handed to the disk as it grows (a window of
 * BLOB_WRITEBACK bytes at a time, sync_file_range without waiting), so the
 * fsync of the commit has only the last window left: a 1.3 GB compressed
 * layer's fsync took 0.7 s at the end of its push (with all of it dirty, the
 * registry's own writes on the same disk waited behind it), its writeback now
 * runs while the compression does. The pages stay cached for the readers
 * that follow the file (a streamed upload).
 */
#include "store/internal.h"
#include "util/fs.h"
#include "util/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOB_WRITEBACK (16u << 20)

struct ib_blob_writer {
	ib_store *store;
	int fd;
	char *tmp;
	ib_sha256 *hash;
	uint64_t size;
	uint64_t written_back; /* handed to the disk up to here (sync_file_range) */
	int sealed;       /* ib_store__blob_writer_seal(): the content is whole, its digest known */
	ib_digest digest;
};

int ib_store__mkdtemp(ib_buf *out, ib_store *s, const char *tag)
{
	ib_buf_clear(out);
	if (ib_buf_printf(out, "%s/%s-XXXXXX", s->tmp, tag) < 0)
		return IB_ERROR;
	if (!mkdtemp(out->ptr))
		return ib_error_set_os(IB_LAYER_STORE, "create a temporary directory in `%s`", s->tmp);
	return 0;
}

int ib_store_blob_writer(ib_blob_writer **out, ib_store *s)
{
	int rc = ib_store__lease(s);
	if (rc < 0)
		return rc;
	ib_blob_writer *w = ib_calloc(1, sizeof *w);
	if (!w) {
		ib_store__unlease(s);
		return IB_ERROR;
	}
	w->store = s;
	w->fd = -1;
	w->tmp = ib_sprintf("%s/blob-XXXXXX", s->tmp);
	w->hash = ib_sha256_new();
	if (!w->tmp || !w->hash) {
		rc = IB_ERROR;
		goto fail;
	}
	ib_store__hook("blob-open");
	w->fd = mkostemp(w->tmp, O_CLOEXEC);
	if (w->fd < 0) {
		rc = ib_error_set_os(IB_LAYER_STORE, "create blob temporary file `%s`", w->tmp);
		goto fail;
	}
	fchmod(w->fd, 0644);
	*out = w;
	return 0;
fail:
	free(w->tmp);
	w->tmp = NULL;
	ib_blob_writer_abort(w);
	return rc;
}

int ib_blob_writer_write(ib_blob_writer *w, const void *data, size_t len)
{
	if (w->sealed)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "blob writer: written after its content was sealed");
	if (len == 0)
		return 0;
	ib_store__hook("blob-write");
	if (ib_write_all(w->fd, data, len) < 0) {
		ib_error_prefix("write blob `%s`", w->tmp);
		return IB_ERROR;
	}
	w->size += len;
	if (w->size - w->written_back >= BLOB_WRITEBACK) {
		/* start writing the window back, without waiting; its errors are the fsync's too */
		if (sync_file_range(w->fd, (off_t)w->written_back, (off_t)(w->size - w->written_back),
				    SYNC_FILE_RANGE_WRITE) < 0 &&
		    errno != ENOSYS && errno != EINVAL && errno != ESPIPE)
			return ib_error_set_os(IB_LAYER_STORE, "write blob `%s` back to disk", w->tmp);
		w->written_back = w->size;
	}
	return ib_sha256_update(w->hash, data, len);
}

static void writer_free(ib_blob_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp)
		unlink(w->tmp);
	free(w->tmp);
	ib_sha256_free(w->hash);
	ib_store__unlease(w->store);
	free(w);
}

void ib_blob_writer_abort(ib_blob_writer *w)
{
	if (w)
		writer_free(w);
}

/* Move a complete, fsynced file to its digest's place (or drop it when the blob exists). */
static int blob_install(ib_store *s, const char *tmp, const ib_digest *d)
{
	char *dst = ib_store__blob_path(s, d);
	if (!dst)
		return IB_ERROR;
	int rc = 0;
	ib_store__hook("blob-rename");
	if (ib_path_exists(dst)) {
		unlink(tmp);
	} else if (rename(tmp, dst) < 0) {
		rc = ib_error_set_os(IB_LAYER_STORE, "rename `%s` to `%s`", tmp, dst);
	} else {
		rc = ib_fsync_dir(s->blobs);
	}
	ib_store__hook("blob-done");
	free(dst);
	return rc;
}

int ib_store__blob_writer_seal(ib_blob_writer *w, ib_digest *out, uint64_t *size)
{
	if (!w->sealed) {
		if (ib_sha256_final(w->hash, &w->digest) < 0)
			return IB_ERROR;
		w->sealed = 1;
	}
	if (out)
		*out = w->digest;
	if (size)
		*size = w->size;
	return 0;
}

int ib_blob_writer_commit(ib_blob_writer *w, ib_digest *out, uint64_t *size, const ib_digest *expected)
{
	ib_digest d;
	int rc = ib_store__blob_writer_seal(w, &d, NULL);
	if (rc < 0)
		goto out;
	if (expected && !ib_digest_equal(expected, &d)) {
		char a[IB_DIGEST_STRLEN], b[IB_DIGEST_STRLEN];
		ib_digest_fmt(a, expected);
		ib_digest_fmt(b, &d);
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "blob content does not match its digest: expected %s, got %s",
				   a, b);
		goto out;
	}
	ib_store__hook("blob-fsync");
	if (fsync(w->fd) < 0) {
		rc = ib_error_set_os(IB_LAYER_STORE, "fsync `%s`", w->tmp);
		goto out;
	}
	close(w->fd);
	w->fd = -1;
	if ((rc = blob_install(w->store, w->tmp, &d)) < 0)
		goto out;
	free(w->tmp);
	w->tmp = NULL;
	if (out)
		*out = d;
	if (size)
		*size = w->size;
out:
	writer_free(w);
	return rc;
}

/*
 * Whole content in memory (configs, manifests): hashed first, and not written
 * when the store has that blob already (a rebuild's config and manifest) —
 * under a lease, so GC cannot take the blob before the caller refers to it.
 */
int ib_store_blob_put(ib_digest *out, ib_store *s, const void *data, size_t len)
{
	ib_digest d;
	int rc = ib_store__lease(s);
	if (rc < 0)
		return rc;
	if (ib_digest_of(&d, data, len) == 0) {
		char *p = ib_store__blob_path(s, &d);
		struct stat st;
		int have = p && stat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == (uint64_t)len;
		free(p);
		if (have) {
			if (out)
				*out = d;
			ib_store__unlease(s);
			return 0;
		}
	}
	ib_error_clear();
	ib_blob_writer *w;
	rc = ib_store_blob_writer(&w, s);
	ib_store__unlease(s); /* the writer holds its own */
	if (rc < 0)
		return rc;
	if ((rc = ib_blob_writer_write(w, data, len)) < 0) {
		ib_blob_writer_abort(w);
		return rc;
	}
	return ib_blob_writer_commit(w, out, NULL, NULL);
}

int ib_store__blob_from_fd(ib_digest *out, uint64_t *size, ib_store *s, int fd)
{
	ib_blob_writer *w;
	int rc = ib_store_blob_writer(&w, s);
	if (rc < 0)
		return rc;
	char *chunk = ib_malloc(1 << 16);
	if (!chunk) {
		ib_blob_writer_abort(w);
		return IB_ERROR;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, 1 << 16);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ib_error_set_os(IB_LAYER_STORE, "read blob input");
			break;
		}
		if (n == 0)
			break;
		if ((rc = ib_blob_writer_write(w, chunk, (size_t)n)) < 0)
			break;
	}
	free(chunk);
	if (rc < 0) {
		ib_blob_writer_abort(w);
		return rc;
	}
	return ib_blob_writer_commit(w, out, size, NULL);
}

int ib_store__blob_adopt_fd(ib_store *s, int fd, const ib_digest *expected, int64_t expected_size, const char *what)
{
	char es[IB_DIGEST_STRLEN];
	ib_digest_fmt(es, expected);
	if (lseek(fd, 0, SEEK_SET) < 0)
		return ib_error_set_os(IB_LAYER_STORE, "%s: seek", what);
	ib_digest d;
	uint64_t size;
	int rc = ib_sha256_fd(&d, fd, &size);
	if (rc == 0 && expected_size >= 0 && size != (uint64_t)expected_size)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s has %llu bytes, its descriptor says %lld", what,
				   (unsigned long long)size, (long long)expected_size);
	if (rc == 0 && !ib_digest_equal(&d, expected)) {
		char gs[IB_DIGEST_STRLEN];
		ib_digest_fmt(gs, &d);
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: blob content does not match its digest: expected %s, got %s",
				   what, es, gs);
	}
	if (rc < 0 || ib_store__blob_local_has(s, expected) == 1)
		return rc;
	if (fsync(fd) < 0)
		return ib_error_set_os(IB_LAYER_STORE, "%s: fsync", what);
	char *dst = ib_store__blob_path(s, expected);
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if (!dst)
		return IB_ERROR;
	fchmod(fd, 0644);
	ib_store__hook("blob-rename");
	if (linkat(AT_FDCWD, proc, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) < 0 && errno != EEXIST)
		rc = IB_EUNSUPPORTED; /* no /proc, another file system...: the caller copies */
	else
		rc = ib_fsync_dir(s->blobs);
	ib_store__hook("blob-done");
	free(dst);
	return rc;
}

int ib_store_blob_has(ib_store *s, const ib_digest *d)
{
	char *p = ib_store__blob_path(s, d);
	if (!p)
		return IB_ERROR;
	struct stat st;
	int rc = stat(p, &st) == 0 && S_ISREG(st.st_mode);
	free(p);
	if (!rc)
		rc = ib_store_layer_source_has(s, d);
	return rc ? rc : ib_store__remote_has(s, d);
}

static int not_found(const ib_digest *d)
{
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, d);
	return ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "blob %s not found in the store", ds);
}

int ib_store_blob_size(uint64_t *out, ib_store *s, const ib_digest *d)
{
	char *p = ib_store__blob_path(s, d);
	if (!p)
		return IB_ERROR;
	struct stat st;
	int rc = 0;
	if (stat(p, &st) < 0) {
		if (errno != ENOENT) {
			rc = ib_error_set_os(IB_LAYER_STORE, "stat `%s`", p);
		} else {
			/* a layer kept only unpacked: its recorded size */
			rc = ib_store__layer_source_size(out, s, d);
			if (rc == 0) {
				/* a remote layer (remote.c): the size its record says */
				ib_store_remote_layer r;
				if ((rc = ib_store__remote_read(&r, s, d)) == 1)
					*out = r.size;
			}
			rc = rc == 0 ? not_found(d) : rc < 0 ? rc : 0;
		}
	} else
		*out = (uint64_t)st.st_size;
	free(p);
	return rc;
}

int ib_store_blob_open(int *fd_out, ib_store *s, const ib_digest *d)
{
	char *p = ib_store__blob_path(s, d);
	if (!p)
		return IB_ERROR;
	int rc = 0;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && ib_store_layer_source_has(s, d) != 1 && ib_store__remote_has(s, d) == 1)
		/* a remote layer: fetched now, checked, then opened */
		rc = ib_store__remote_open(fd_out, s, d);
	else if (fd < 0 && errno == ENOENT)
		/* a layer kept only unpacked: regenerated and checked (or IB_ENOTFOUND) */
		rc = ib_store__layer_source_open(fd_out, s, d);
	else if (fd < 0)
		rc = ib_error_set_os(IB_LAYER_STORE, "open `%s`", p);
	else
		*fd_out = fd;
	free(p);
	return rc;
}

static int blob_read_limited(ib_buf *out, ib_store *s, const ib_digest *d, size_t limit)
{
	uint64_t size;
	int rc = ib_store_blob_size(&size, s, d);
	if (rc < 0)
		return rc;
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, d);
	if (limit && size > limit)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "blob %s is too large (%llu bytes) to read whole",
				     ds, (unsigned long long)size);
	char *p = ib_store__blob_path(s, d);
	if (!p)
		return IB_ERROR;
	rc = ib_read_file(out, p);
	free(p);
	if (rc < 0)
		return rc;
	if (ib_digest_verify(d, out->ptr, out->size) < 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "blob %s is corrupt: its content does not match its digest",
				     ds);
	return 0;
}

int ib_store_blob_read(ib_buf *out, ib_store *s, const ib_digest *d)
{
	return blob_read_limited(out, s, d, 0);
}

int ib_store__blob_json(json_t **out, ib_store *s, const ib_digest *d, const char *what)
{
	ib_buf b = IB_BUF_INIT;
	int rc = blob_read_limited(&b, s, d, IB_STORE_MAX_JSON);
	if (rc == 0) {
		char ds[IB_DIGEST_STRLEN];
		ib_digest_fmt(ds, d);
		char *name = ib_sprintf("%s %s", what, ds);
		rc = name ? ib_json_loadb(out, b.ptr, b.size, name) : IB_ERROR;
		free(name);
	} else {
		ib_error_prefix("%s", what);
	}
	ib_buf_dispose(&b);
	return rc;
}

int ib_store__blob_put_json(ib_digest *out, uint64_t *size, ib_store *s, const json_t *j)
{
	ib_buf b = IB_BUF_INIT;
	int rc = ib_json_dump(&b, j, IB_JSON_SORTED);
	if (rc == 0)
		rc = ib_store_blob_put(out, s, b.ptr, b.size);
	if (rc == 0 && size)
		*size = b.size;
	ib_buf_dispose(&b);
	return rc;
}

int ib_store__blob_writer_fd(ib_blob_writer *w)
{
	return w->fd;
}
