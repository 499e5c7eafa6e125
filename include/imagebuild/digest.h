/*
 * digest.h: content digests, `sha256:<64 lower-case hex>`.
 */
#ifndef IMAGEBUILD_DIGEST_H
#define IMAGEBUILD_DIGEST_H

#include "common.h"

IB_BEGIN_DECL

/** The number of hex digits of a sha256 digest. */
#define IB_DIGEST_HEXLEN 64
/* "sha256:" + 64 hex + NUL */
#define IB_DIGEST_STRLEN (7 + IB_DIGEST_HEXLEN + 1)

/** A sha256 digest, as raw bytes. A plain value: copy it freely. */
typedef struct {
	/** The 32 bytes of the sha256. */
	unsigned char bytes[32];
} ib_digest;

/**
 * Parse `sha256:<64 lower-case hex>`. Anything else (another algorithm,
 * upper case, wrong length) is IB_EINVALID with the reason.
 */
IB_EXTERN(int) ib_digest_parse(ib_digest *out, const char *str);

/** Format as `sha256:<hex>` into `out` (IB_DIGEST_STRLEN bytes). */
IB_EXTERN(void) ib_digest_fmt(char out[IB_DIGEST_STRLEN], const ib_digest *d);

/** The 64 hex digits alone into `out` (IB_DIGEST_HEXLEN + 1 bytes). */
IB_EXTERN(void) ib_digest_hex(char out[IB_DIGEST_HEXLEN + 1], const ib_digest *d);

/** 1 if equal, else 0. */
IB_EXTERN(int) ib_digest_equal(const ib_digest *a, const ib_digest *b);

/** The sha256 of `len` bytes. */
IB_EXTERN(int) ib_digest_of(ib_digest *out, const void *data, size_t len);

/**
 * Check that `data` hashes to `expected`; IB_EINVALID naming both digests
 * when it does not.
 */
IB_EXTERN(int) ib_digest_verify(const ib_digest *expected, const void *data, size_t len);

IB_END_DECL

#endif
