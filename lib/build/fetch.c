/*
 * ADD <url>: the file is downloaded once per build (libcurl), hashed while
 * it streams to disk, checked against --checksum, and kept in the build's
 * private directory until the build ends; its mtime is the server's
 * Last-Modified, as Docker sets it.
 */
#include "build/internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"

#include <curl/curl.h>
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
	int failed;
} sink;

static size_t on_data(char *data, size_t size, size_t n, void *payload)
{
	sink *k = payload;
	size_t len = size * n;
	if (ib_write_all(k->fd, data, len) < 0 || ib_sha256_update(k->h, data, len) < 0) {
		k->failed = 1;
		return 0;
	}
	return len;
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

static int download(const char *url, const char *path, ib_digest *digest, long *mtime)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "create `%s`", path);
	sink k = {fd, ib_sha256_new(), 0};
	CURL *c = curl_easy_init();
	char err[CURL_ERROR_SIZE] = "";
	int rc = 0;
	if (!k.h || !c) {
		rc = k.h ? ib_error_set(IB_LAYER_BUILD, "curl_easy_init failed") : IB_ERROR;
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	/* a URL and its redirects are http or https, never file://, ftp://, gopher://...;
	 * a stalled server fails the transfer (and it is tried again) */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_FILETIME, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &k);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "libimagebuild");
	CURLcode cr = CURLE_OK;
	for (int attempt = 0; attempt < 3; attempt++) {
		if (attempt) {
			/* transient failures are tried again, from the start */
			if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0 || ib_sha256_reset(k.h) < 0)
				break;
			sleep((unsigned)attempt);
		}
		err[0] = '\0';
		cr = curl_easy_perform(c);
		if (cr != CURLE_COULDNT_CONNECT && cr != CURLE_OPERATION_TIMEDOUT && cr != CURLE_RECV_ERROR &&
		    cr != CURLE_PARTIAL_FILE && cr != CURLE_GOT_NOTHING)
			break;
	}
	if (k.failed) {
		rc = IB_ERROR; /* the write error is set */
	} else if (cr != CURLE_OK) {
		rc = ib_error_set(IB_LAYER_BUILD, "download `%s`: %s", url, err[0] ? err : curl_easy_strerror(cr));
	} else {
		curl_easy_getinfo(c, CURLINFO_FILETIME, mtime);
		rc = ib_sha256_final(k.h, digest);
	}
out:
	if (c)
		curl_easy_cleanup(c);
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

int ib_build__fetch(builder *b, const char *url, const char *checksum, const char **dir, const char **name,
		    ib_digest *digest)
{
	/* downloaded already in this build: entries are "<url>\n<dir>\0<name>\0<digest>" */
	size_t ul = strlen(url);
	for (size_t i = 0; i < b->fetched.n; i++) {
		const char *e = b->fetched.items[i];
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
	long mtime = -1;
	int rc = path ? download(url, path, digest, &mtime) : IB_ERROR;
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
		struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
		utimensat(AT_FDCWD, path, ts, 0);
	}
	char hex[IB_DIGEST_STRLEN];
	if (rc == 0) {
		ib_digest_fmt(hex, digest);
		rc = ib_strlist_take(&b->fetched, ib_sprintf("%s\n%s\n%s\n%s", url, tmp, fname, hex));
	}
	if (rc == 0) {
		/* split the entry in place: url, dir, name, digest */
		char *e = b->fetched.items[b->fetched.n - 1];
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
