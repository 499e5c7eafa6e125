#include "imagebuild/digest.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/bigio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * libcrypto's SHA256_* functions, not EVP: the first EVP digest of a process
 * initialises libcrypto's default library context (reads openssl.cnf, loads
 * the default provider), ~2-3 ms that every command paid for its first hash
 * (a lookup's memo sum) while nothing here needs a provider. The same
 * assembly (SHA extensions, AVX2) does the work either way. Deprecated in
 * OpenSSL 3, not removed; libcurl still initialises libcrypto as configured
 * when a network command loads it.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>

struct ib_sha256 {
	SHA256_CTX ctx;
};

ib_sha256 *ib_sha256_new(void)
{
	ib_sha256 *h = ib_calloc(1, sizeof *h);
	if (!h)
		return NULL;
	if (SHA256_Init(&h->ctx) != 1) {
		free(h);
		ib_error_set(IB_LAYER_UTIL, "sha256: cannot initialise libcrypto digest");
		return NULL;
	}
	return h;
}

int ib_sha256_reset(ib_sha256 *h)
{
	if (SHA256_Init(&h->ctx) != 1)
		return ib_error_set(IB_LAYER_UTIL, "sha256: reset failed");
	return 0;
}

int ib_sha256_update(ib_sha256 *h, const void *data, size_t len)
{
	if (len && SHA256_Update(&h->ctx, data, len) != 1)
		return ib_error_set(IB_LAYER_UTIL, "sha256: update failed");
	return 0;
}

int ib_sha256_final(ib_sha256 *h, ib_digest *out)
{
	if (SHA256_Final(out->bytes, &h->ctx) != 1)
		return ib_error_set(IB_LAYER_UTIL, "sha256: final failed");
	return 0;
}

void ib_sha256_free(ib_sha256 *h)
{
	if (!h)
		return;
	free(h);
}

/*
 * A big regular file from `pos` to its end, around the page cache
 * (bigio.h), leaving the fd's position at the end as read(2) would. 1 when
 * hashed, 0 when the file is not big (nothing read), IB_ERROR.
 */
static int sha256_big(ib_sha256 *h, int fd, uint64_t *total)
{
	struct stat st;
	off_t pos = lseek(fd, 0, SEEK_CUR);
	if (pos < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size - pos < (off_t)IB_BIGIO_MIN)
		return 0;
	unsigned char *chunk = ib_bigio_alloc_filled(IB_BIGIO_CHUNK);
	if (!chunk)
		return IB_ERROR;
	ib_bigio b;
	ib_bigio_init(&b, fd);
	int rc = 1;
	for (;;) {
		ssize_t n = ib_bigio_pread(&b, chunk, IB_BIGIO_CHUNK, pos);
		if (n < 0) {
			rc = ib_error_set_os(IB_LAYER_UTIL, "read");
			break;
		}
		if (n == 0)
			break;
		ib_sha256_update(h, chunk, (size_t)n);
		*total += (uint64_t)n;
		pos += n;
	}
	ib_bigio_done(&b);
	free(chunk);
	if (rc > 0)
		lseek(fd, pos, SEEK_SET);
	return rc;
}

int ib_sha256_fd(ib_digest *out, int fd, uint64_t *size_out)
{
	static __thread unsigned char chunk[1 << 16];
	ib_sha256 *h = ib_sha256_new();
	uint64_t total = 0;
	if (!h)
		return IB_ERROR;
	int big = sha256_big(h, fd, &total);
	if (big < 0) {
		ib_sha256_free(h);
		return IB_ERROR;
	}
	for (; !big;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ib_sha256_free(h);
			return ib_error_set_os(IB_LAYER_UTIL, "read");
		}
		if (n == 0)
			break;
		ib_sha256_update(h, chunk, (size_t)n);
		total += (uint64_t)n;
	}
	int rc = ib_sha256_final(h, out);
	ib_sha256_free(h);
	if (size_out)
		*size_out = total;
	return rc;
}

int ib_sha256_file(ib_digest *out, const char *path, uint64_t *size_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_UTIL, "open `%s`", path);
	int rc = ib_sha256_fd(out, fd, size_out);
	close(fd);
	if (rc < 0)
		ib_error_prefix("hash `%s`", path);
	return rc;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int ib_digest_parse(ib_digest *out, const char *str)
{
	if (!str)
		return ib_error_setc(IB_EINVALID, IB_LAYER_UTIL, "invalid digest: (null)");
	if (strncmp(str, "sha256:", 7) != 0) {
		const char *colon = strchr(str, ':');
		if (colon && colon != str)
			return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_UTIL,
					     "unsupported digest algorithm `%.*s` in `%s`",
					     (int)(colon - str), str, str);
		return ib_error_setc(IB_EINVALID, IB_LAYER_UTIL,
				     "invalid digest `%s`: expected sha256:<64 hex digits>", str);
	}
	const char *hex = str + 7;
	size_t len = strlen(hex);
	if (len != IB_DIGEST_HEXLEN)
		return ib_error_setc(IB_EINVALID, IB_LAYER_UTIL,
				     "invalid digest `%s`: %zu hex digits, expected 64", str, len);
	for (size_t i = 0; i < 32; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return ib_error_setc(IB_EINVALID, IB_LAYER_UTIL,
					     "invalid digest `%s`: not lower-case hex at position %zu",
					     str, 7 + 2 * i + (hi < 0 ? 0 : 1));
		out->bytes[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

void ib_digest_hex(char out[IB_DIGEST_HEXLEN + 1], const ib_digest *d)
{
	static const char x[] = "0123456789abcdef";
	for (size_t i = 0; i < 32; i++) {
		out[2 * i] = x[d->bytes[i] >> 4];
		out[2 * i + 1] = x[d->bytes[i] & 15];
	}
	out[IB_DIGEST_HEXLEN] = '\0';
}

void ib_digest_fmt(char out[IB_DIGEST_STRLEN], const ib_digest *d)
{
	memcpy(out, "sha256:", 7);
	ib_digest_hex(out + 7, d);
}

int ib_digest_equal(const ib_digest *a, const ib_digest *b)
{
	return memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

int ib_digest_of(ib_digest *out, const void *data, size_t len)
{
	ib_sha256 *h = ib_sha256_new();
	if (!h)
		return IB_ERROR;
	int rc = ib_sha256_update(h, data, len);
	if (rc == 0)
		rc = ib_sha256_final(h, out);
	ib_sha256_free(h);
	return rc;
}

int ib_digest_verify(const ib_digest *expected, const void *data, size_t len)
{
	ib_digest got;
	if (ib_digest_of(&got, data, len) < 0)
		return IB_ERROR;
	if (!ib_digest_equal(&got, expected)) {
		char e[IB_DIGEST_STRLEN], g[IB_DIGEST_STRLEN];
		ib_digest_fmt(e, expected);
		ib_digest_fmt(g, &got);
		return ib_error_setc(IB_EINVALID, IB_LAYER_UTIL,
				     "digest mismatch: expected %s, content is %s", e, g);
	}
	return 0;
}
