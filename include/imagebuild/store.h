/*
 * store.h: the content-addressed image store (an OCI image layout on disk),
 * image references, images, tags, history, import/export, GC.
 */
#ifndef IMAGEBUILD_STORE_H
#define IMAGEBUILD_STORE_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"
#include "digest.h"

IB_BEGIN_DECL

#define IB_STORE_OPTIONS_VERSION 1
typedef struct {
	unsigned int version;
	unsigned int flags;   /* none yet */
} ib_store_options;
#define IB_STORE_OPTIONS_INIT { IB_STORE_OPTIONS_VERSION, 0 }

/**
 * Open (creating if needed) the store at `root`. NULL root means the
 * default: $IMAGEBUILD_ROOT, else /var/lib/imagebuild as root, else
 * $XDG_DATA_HOME/imagebuild (~/.local/share/imagebuild).
 */
IB_EXTERN(int) ib_store_open(ib_store **out, const char *root, const ib_store_options *opts);
IB_EXTERN(void) ib_store_free(ib_store *store);
/** The root directory (borrowed). */
IB_EXTERN(const char *) ib_store_root(const ib_store *store);

/* ---- blobs ---- */

/** A blob being written: content is hashed as it streams in. */
typedef struct ib_blob_writer ib_blob_writer;

IB_EXTERN(int) ib_store_blob_writer(ib_blob_writer **out, ib_store *store);
IB_EXTERN(int) ib_blob_writer_write(ib_blob_writer *w, const void *data, size_t len);
/**
 * Finish: fsync, and rename into blobs/sha256/<hex>. When `expected` is not
 * NULL and the content differs, nothing is stored and IB_EINVALID names both
 * digests. Frees the writer in every case. `out` and `size` may be NULL.
 */
IB_EXTERN(int) ib_blob_writer_commit(ib_blob_writer *w, ib_digest *out, uint64_t *size,
				     const ib_digest *expected);
/** Drop an unfinished blob; frees the writer. NULL is fine. */
IB_EXTERN(void) ib_blob_writer_abort(ib_blob_writer *w);

IB_EXTERN(int) ib_store_blob_put(ib_digest *out, ib_store *store, const void *data, size_t len);
/** 1 if present, 0 if not. */
IB_EXTERN(int) ib_store_blob_has(ib_store *store, const ib_digest *d);
IB_EXTERN(int) ib_store_blob_size(uint64_t *out, ib_store *store, const ib_digest *d);
/** Open a blob for reading; the caller closes the fd. IB_ENOTFOUND names the digest. */
IB_EXTERN(int) ib_store_blob_open(int *fd_out, ib_store *store, const ib_digest *d);
/** Read a whole (small) blob, verifying its digest. */
IB_EXTERN(int) ib_store_blob_read(ib_buf *out, ib_store *store, const ib_digest *d);

IB_END_DECL

#endif
