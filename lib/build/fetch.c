/*
 * ADD <url>: the file is downloaded once per build, on the push layer's
 * HTTP client (push/http.h: the registry client's limits, retries, stall
 * timeout, progress and cancel), hashed while it streams to disk, checked against --checksum, and kept in the build's
 * private directory until the build ends; its mtime is the server's
 * Last-Modified, as Docker sets it.
 */
#include "build/internal.h"
#include "push/http.h"
#include "util/buf.h"
#include "util/callback.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ib_build__is_url(const char *src)
{
	return !strncmp(src, "http://", 7) || !strncmp(src, "https://", 8);
}

typedef struct {
	int fd;
	ib_sha256 *h;
} sink;

static int on_data(const void *data, size_t len, void *payload)
{
	sink *k = payload;
	int rc = ib_write_all(k->fd, data, len);
	return rc < 0 ? rc : ib_sha256_update(k->h, data, len);
}

/* a transient failure is tried again from the start */
static int on_reset(void *payload)
{
	sink *k = payload;
	if (ftruncate(k->fd, 0) < 0 || lseek(k->fd, 0, SEEK_SET) < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "truncate a download");
	return ib_sha256_reset(k->h);
}

/* The file name a URL gives (the last part of its path), or NULL. */
static char *url_name(const char *url)
{
	const char *p = strstr(url, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	if (!p)
		return NULL;
	size_t len = strcspn(p, "?#");
	while (len > 1 && p[len - 1] == '/')
		len--;
	const char *start = p;
	for (size_t i = 0; i < len; i++)
		if (p[i] == '/')
			start = p + i + 1;
	size_t n = (size_t)(p + len - start);
	if (n == 0 || (n == 1 && *start == '.') || (n == 2 && !strncmp(start, "..", 2)))
		return NULL;
	return ib_strndup(start, n);
}

/* On the push layer's HTTP client (push/http.h): its limits, retries, progress and cancel. */
static int download(builder *b, const char *url, const char *path, ib_digest *digest, int64_t *mtime)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "create `%s`", path);
	sink k = {fd, ib_sha256_new()};
	ib_push__http_request g = {b->o->registry, "ADD", url, 0, b->o->callbacks, on_data, on_reset, &k};
	int rc = k.h ? ib_callback_internal(ib_push__http_get(url, &g, mtime)) : IB_ERROR;
	if (rc == 0)
		rc = ib_sha256_final(k.h, digest);
	ib_sha256_free(k.h);
	if (close(fd) < 0 && rc == 0)
		rc = ib_error_set_os(IB_LAYER_BUILD, "write `%s`", path);
	return rc;
}

void ib_build__fetch_cleanup(builder *b)
{
	for (size_t i = 0; i < b->fetched.n; i++) {
		const char *nl = strchr(b->fetched.items[i], '\n');
		if (nl)
			ib_rm_rf(nl + 1);
	}
	ib_strlist_clear(&b->fetched);
}

static int fetch_locked(builder *b, ib_strlist *fetched, const char *url, const char *checksum, const char **dir,
			const char **name,
			ib_digest *digest)
{
	/* downloaded already in this build: entries are "<url>\n<dir>\0<name>\0<digest>" */
	size_t ul = strlen(url);
	for (size_t i = 0; i < fetched->n; i++) {
		const char *e = fetched->items[i];
		if (strncmp(e, url, ul) == 0 && e[ul] == '\n') {
			const char *d = e + ul + 1, *n = d + strlen(d) + 1, *g = n + strlen(n) + 1;
			*dir = d;
			*name = n;
			return ib_digest_parse(digest, g);
		}
	}
	char *fname = url_name(url);
	if (!fname)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "ADD `%s`: the URL names no file", url);
	char *tmp = ib_build__tmpdir(b, "imagebuild-add");
	char *path = tmp ? ib_sprintf("%s/%s", tmp, fname) : NULL;
	int64_t mtime = -1;
	int rc = path ? download(b, url, path, digest, &mtime) : IB_ERROR;
	if (rc == 0 && checksum) {
		ib_digest want;
		char got[IB_DIGEST_STRLEN];
		if ((rc = ib_digest_parse(&want, checksum)) < 0)
			ib_error_prefix("ADD --checksum");
		else if (!ib_digest_equal(&want, digest)) {
			ib_digest_fmt(got, digest);
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					   "ADD `%s`: checksum mismatch: expected %s, downloaded %s", url, checksum, got);
		}
	}
	if (rc == 0 && mtime > 0) {
		struct timespec ts[2] = {{(time_t)mtime, 0}, {(time_t)mtime, 0}};
		utimensat(AT_FDCWD, path, ts, 0);
	}
	char hex[IB_DIGEST_STRLEN];
	if (rc == 0) {
		ib_digest_fmt(hex, digest);
		rc = ib_strlist_take(fetched, ib_sprintf("%s\n%s\n%s\n%s", url, tmp, fname, hex));
	}
	if (rc == 0) {
		/* split the entry in place: url, dir, name, digest */
		char *e = fetched->items[fetched->n - 1];
		char *d = e + ul + 1, *n = strchr(d, '\n'), *g;
		*n++ = '\0';
		g = strchr(n, '\n');
		*g = '\0';
		*dir = d;
		*name = n;
	}
	if (rc < 0 && tmp)
		ib_rm_rf(tmp);
	free(tmp);
	free(path);
	free(fname);
	return rc;
}

/* The stages running at once share the build's downloads, made one at a time. */
int ib_build__fetch(builder *b, const char *url, const char *checksum, const char **dir, const char **name,
		    ib_digest *digest)
{
	ib_build__lock(b, IB_BUILD__LOCK_FETCH);
	int rc = fetch_locked(b, &ib_build__shared(b)->fetched, url, checksum, dir, name, digest);
	ib_build__unlock(b, IB_BUILD__LOCK_FETCH);
	return rc;
}
