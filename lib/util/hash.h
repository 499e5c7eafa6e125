/* Streaming sha256 through OpenSSL's libcrypto. */
#ifndef IB_UTIL_HASH_H
#define IB_UTIL_HASH_H

#include "imagebuild/digest.h"

typedef struct ib_sha256 ib_sha256;

/* A new hashing context, or NULL (OOM, error set). */
ib_sha256 *ib_sha256_new(void);
int ib_sha256_update(ib_sha256 *h, const void *data, size_t len);
/* Finish; the context may be reused after ib_sha256_reset(). */
int ib_sha256_final(ib_sha256 *h, ib_digest *out);
int ib_sha256_reset(ib_sha256 *h);
void ib_sha256_free(ib_sha256 *h);

/* Digest of a whole file, read in chunks; names the path on failure. */
int ib_sha256_file(ib_digest *out, const char *path, uint64_t *size_out);
/* Digest of whatever an open descriptor yields until EOF. */
int ib_sha256_fd(ib_digest *out, int fd, uint64_t *size_out);

/*
 * sha256 on another core: what ib_sha256_pipe_update() is given is copied
 * into one of a few 1 MiB buffers that a thread of its own hashes while the
 * caller goes on reading and writing (bounded memory: 4 MiB). Without a
 * thread (pthread_create failed) it hashes inline. Errors set the usual way.
 */
typedef struct ib_sha256_pipe ib_sha256_pipe;
ib_sha256_pipe *ib_sha256_pipe_new(void);
int ib_sha256_pipe_update(ib_sha256_pipe *p, const void *data, size_t len);
/* Waits for the thread; `size` (may be NULL) is the byte count. One final per pipe. */
int ib_sha256_pipe_final(ib_sha256_pipe *p, ib_digest *out, uint64_t *size);
void ib_sha256_pipe_free(ib_sha256_pipe *p);

#endif
