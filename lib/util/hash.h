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

#endif
