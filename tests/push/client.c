/*
 * The registry client against a fake registry: a tiny HTTP/1.1 server on
 * 127.0.0.1 in a thread (loopback only), scripted per test. Checks the
 * Bearer token dance, Basic auth, Docker config credentials, retries,
 * error messages, the plain-HTTP fallback, and blob digests.
 */
#include "tests.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
	int listen_fd;
	int port;
	pthread_t thread;
	volatile int stop;
	pthread_mutex_t lock;
	/* what the server saw */
	char token_query[1024];
	char token_auth[256];
	char token_method[16];
	char token_body[1024];
	int hits_flaky, hits_blob, token_requests, tls_hellos;
	char last_auth[256];
	/* script */
	int bearer;          /* 1: Bearer via /token, 0: Basic */
	int flaky_failures;  /* /v2/app/flaky fails this many times with 503 */
	/* an upload session */
	unsigned char *upload;
	size_t uploaded;
	int patches, lose_patch; /* the lose_patch-th PATCH is kept but answered 503 */
	int monolithic_puts;
	int deletes; /* upload sessions cancelled */
	char put_digest[128];
	/* hostile answers: an endless blob body, an endless 404 body; what was sent of it */
	int endless_blob, endless_404;
	size_t endless_sent; /* under lock, with endless_done (bodies ended) */
	int endless_done;
} fake;

/* What the fake sent of an endless body, once it has ended (it goes on until the client hangs up; 10 s at most). */
static size_t endless_sent_after(fake *f, int done_before)
{
	for (int i = 0; i < 1000; i++) {
		pthread_mutex_lock(&f->lock);
		int done = f->endless_done;
		size_t sent = f->endless_sent;
		pthread_mutex_unlock(&f->lock);
		if (done > done_before)
			return sent;
		usleep(10000);
	}
	fail_msg("the fake's endless body never ended: the client did not hang up");
	return 0;
}

/* A body without an end (up to 256 MiB): `first`, then filler until the client hangs up. */
static size_t endless(int fd, int status, const char *first)
{
	char head[256], chunk[65536];
	int n = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nConnection: close\r\n\r\n%s", status, first);
	if (send(fd, head, (size_t)n, MSG_NOSIGNAL) < 0)
		return 0;
	memset(chunk, 'x', sizeof chunk);
	size_t sent = 0;
	while (sent < (256u << 20)) {
		ssize_t w = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		sent += (size_t)w;
	}
	return sent;
}

static void reply(int fd, int status, const char *headers, const char *body)
{
	char head[2048];
	size_t blen = body ? strlen(body) : 0;
	int n = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
			 blen, headers ? headers : "");
	if (write(fd, head, (size_t)n) < 0 || (blen && write(fd, body, blen) < 0))
		return;
}

static const char *header(const char *req, const char *name, char *out, size_t n)
{
	out[0] = 0;
	const char *p = strcasestr(req, name);
	if (!p)
		return out;
	p += strlen(name);
	while (*p == ' ')
		p++;
	size_t len = strcspn(p, "\r\n");
	snprintf(out, n, "%.*s", (int)len, p);
	return out;
}

static void upload(fake *f, int fd, const char *method, const char *path, const char *req, const unsigned char *body,
		   size_t blen)
{
	char hdrs[256], range[64];
	if (!strcmp(method, "POST")) {
		f->uploaded = 0;
		reply(fd, 202, "Location: /v2/app/blobs/uploads/u1?_state=x\r\n", NULL);
	} else if (!strcmp(method, "PATCH")) {
		unsigned long long a = 0, b = 0;
		header(req, "\nContent-Range:", range, sizeof range);
		if (sscanf(range, "%llu-%llu", &a, &b) != 2 || a != f->uploaded || b - a + 1 != blen) {
			snprintf(hdrs, sizeof hdrs, "Range: 0-%lld\r\n", (long long)f->uploaded - 1);
			reply(fd, 416, hdrs, "{\"errors\":[{\"code\":\"BLOB_UPLOAD_INVALID\",\"message\":\"bad range\"}]}");
			return;
		}
		f->upload = realloc(f->upload, f->uploaded + blen);
		memcpy(f->upload + f->uploaded, body, blen);
		f->uploaded += blen;
		snprintf(hdrs, sizeof hdrs, "Location: /v2/app/blobs/uploads/u1?_state=%d\r\nRange: 0-%zu\r\n", f->patches,
			 f->uploaded - 1);
		reply(fd, ++f->patches == f->lose_patch ? 503 : 202, hdrs, NULL);
	} else if (!strcmp(method, "GET")) {
		snprintf(hdrs, sizeof hdrs, "Range: 0-%lld\r\n", (long long)f->uploaded - 1);
		reply(fd, 204, hdrs, NULL);
	} else if (!strcmp(method, "DELETE")) {
		f->deletes++;
		reply(fd, 204, NULL, NULL);
	} else if (!strcmp(method, "PUT")) {
		if (blen) {
			f->monolithic_puts++;
			f->upload = realloc(f->upload, blen);
			memcpy(f->upload, body, blen);
			f->uploaded = blen;
		}
		const char *d = strstr(path, "digest=");
		pthread_mutex_lock(&f->lock); /* (read by a store hook on another thread) */
		snprintf(f->put_digest, sizeof f->put_digest, "%s", d ? d + 7 : "");
		pthread_mutex_unlock(&f->lock);
		reply(fd, 201, NULL, NULL);
	}
}

static void handle(fake *f, int fd, const char *req, const unsigned char *body, size_t blen)
{
	char method[16], path[1024], auth[256], hdrs[1024];
	if (sscanf(req, "%15s %1023s", method, path) != 2)
		return;
	header(req, "\nAuthorization:", auth, sizeof auth);
	pthread_mutex_lock(&f->lock);
	if (strncmp(path, "/token", 6)) {
		snprintf(f->last_auth, sizeof f->last_auth, "%s", auth);
	}
	pthread_mutex_unlock(&f->lock);
	if (!strncmp(path, "/token", 6)) {
		pthread_mutex_lock(&f->lock);
		f->token_requests++;
		snprintf(f->token_query, sizeof f->token_query, "%s", path);
		snprintf(f->token_auth, sizeof f->token_auth, "%s", auth);
		snprintf(f->token_method, sizeof f->token_method, "%s", method);
		snprintf(f->token_body, sizeof f->token_body, "%.*s", (int)blen, body ? (const char *)body : "");
		pthread_mutex_unlock(&f->lock);
		/* OAuth2 (docker/distribution's token spec): a refresh token traded by POST */
		if (!strcmp(method, "POST") && strstr(f->token_body, "grant_type=refresh_token") &&
		    strstr(f->token_body, "refresh_token=R3FR3SH"))
			reply(fd, 200, "Content-Type: application/json\r\n", "{\"access_token\":\"T0K3N\",\"expires_in\":300}");
		else if (!strcmp(method, "POST"))
			reply(fd, 401, "Content-Type: application/json\r\n", "{\"details\":\"invalid refresh token\"}");
		else if (strcmp(auth, "Basic YWxpY2U6czNjcmV0")) /* alice:s3cret */
			reply(fd, 401, "Content-Type: application/json\r\n", "{\"details\":\"incorrect username or password\"}");
		else
			reply(fd, 200, "Content-Type: application/json\r\n", "{\"token\":\"T0K3N\",\"expires_in\":300}");
		return;
	}
	int authorised = f->bearer ? !strcmp(auth, "Bearer T0K3N") : !strcmp(auth, "Basic YWxpY2U6czNjcmV0");
	if (!authorised) {
		if (f->bearer)
			snprintf(hdrs, sizeof hdrs,
				 "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\",service=\"fake registry\"\r\n", f->port);
		else
			snprintf(hdrs, sizeof hdrs, "WWW-Authenticate: Basic realm=\"fake\"\r\n");
		reply(fd, 401, hdrs, "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}");
		return;
	}
	if (!strncmp(path, "/v2/app/blobs/uploads/", 22)) {
		upload(f, fd, method, path, req, body, blen);
	} else if (!strcmp(method, "HEAD")) {
		reply(fd, 404, NULL, NULL);
	} else if (!strcmp(path, "/v2/")) {
		reply(fd, 200, NULL, "{}");
	} else if (!strcmp(path, "/v2/app/flaky")) {
		pthread_mutex_lock(&f->lock);
		int n = ++f->hits_flaky;
		pthread_mutex_unlock(&f->lock);
		if (n <= f->flaky_failures)
			reply(fd, 503, NULL, "upstream busy");
		else
			reply(fd, 200, NULL, "fine");
	} else if (!strncmp(path, "/v2/app/blobs/", 14) && f->endless_blob) {
		size_t n = endless(fd, 200, "hello");
		pthread_mutex_lock(&f->lock);
		f->endless_sent = n;
		f->endless_done++;
		pthread_mutex_unlock(&f->lock);
	} else if (!strncmp(path, "/v2/app/manifests/", 18) && f->endless_404) {
		size_t n = endless(fd, 404, "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"");
		pthread_mutex_lock(&f->lock);
		f->endless_sent = n;
		f->endless_done++;
		pthread_mutex_unlock(&f->lock);
	} else if (!strncmp(path, "/v2/app/blobs/", 14)) {
		/* the content "hello": 500 on the first try, then the whole of it */
		pthread_mutex_lock(&f->lock);
		int n = ++f->hits_blob;
		pthread_mutex_unlock(&f->lock);
		if (n == 1)
			reply(fd, 500, NULL, "{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"oops\"}]}");
		else
			reply(fd, 200, NULL, "hello");
	} else {
		reply(fd, 404, "Content-Type: application/json\r\n",
		      "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\",\"detail\":{}}]}");
	}
}

static void *serve(void *arg)
{
	fake *f = arg;
	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
		struct pollfd p = { f->listen_fd, POLLIN, 0 };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept(f->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		char req[8192];
		size_t len = 0;
		for (;;) {
			ssize_t n = read(fd, req + len, sizeof req - 1 - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			req[len] = 0;
			if ((unsigned char)req[0] == 0x16) { /* a TLS ClientHello: we speak plain HTTP */
				pthread_mutex_lock(&f->lock);
				f->tls_hellos++;
				pthread_mutex_unlock(&f->lock);
				len = 0;
				break;
			}
			if (strstr(req, "\r\n\r\n") || len == sizeof req - 1)
				break;
		}
		char *end = len ? strstr(req, "\r\n\r\n") : NULL;
		if (end) {
			char cl[32];
			size_t blen = (size_t)strtoull(header(req, "\nContent-Length:", cl, sizeof cl), NULL, 10);
			unsigned char *body = malloc(blen + 1);
			size_t have = len - (size_t)(end + 4 - req);
			memcpy(body, end + 4, have < blen ? have : blen);
			while (have < blen) {
				ssize_t n = read(fd, body + have, blen - have);
				if (n <= 0)
					break;
				have += (size_t)n;
			}
			end[2] = 0;
			handle(f, fd, req, body, blen);
			free(body);
		}
		close(fd);
	}
	return NULL;
}

static int fake_start(void **state)
{
	fake *f = calloc(1, sizeof *f);
	pthread_mutex_init(&f->lock, NULL);
	f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	if (bind(f->listen_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(f->listen_fd, 16) < 0 ||
	    getsockname(f->listen_fd, (struct sockaddr *)&a, &al) < 0)
		return -1;
	f->port = ntohs(a.sin_port);
	f->bearer = 1;
	pthread_create(&f->thread, NULL, serve, f);
	*state = f;
	return 0;
}

static int fake_stop(void **state)
{
	fake *f = *state;
	__atomic_store_n(&f->stop, 1, __ATOMIC_RELAXED);
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	pthread_mutex_destroy(&f->lock);
	free(f->upload);
	free(f);
	return 0;
}

static ib_push__registry *client(fake *f, const char *user, const char *pass, const char *docker_config, unsigned int attempts)
{
	char domain[64];
	snprintf(domain, sizeof domain, "127.0.0.1:%d", f->port);
	ib_registry_options o = IB_REGISTRY_OPTIONS_INIT;
	o.username = user;
	o.password = pass;
	o.docker_config = docker_config ? docker_config : "/nonexistent/config.json";
	o.attempts = attempts;
	ib_push__registry *r = NULL;
	assert_int_equal(ib_push__registry_new(&r, domain, "app", "pull,push", &o, NULL, "push to fake/app"), 0);
	return r;
}

static void test_bearer(void **state)
{
	fake *f = *state;
	ib_push__registry *r = client(f, "alice", "s3cret", NULL, 0);
	assert_int_equal(ib_push__registry_ping(r), 0);
	/* plain HTTP after a TLS hello the fake cannot answer (127.0.0.1 is insecure by default) */
	assert_true(f->tls_hellos >= 1);
	assert_int_equal(f->token_requests, 1);
	assert_non_null(strstr(f->token_query, "service=fake%20registry"));
	assert_non_null(strstr(f->token_query, "scope=repository%3Aapp%3Apull%2Cpush"));
	assert_non_null(strstr(f->token_query, "account=alice"));
	assert_string_equal(f->token_auth, "Basic YWxpY2U6czNjcmV0");
	assert_string_equal(f->last_auth, "Bearer T0K3N");
	/* the token is reused, and cloned into another client */
	ib_push__registry *r2;
	assert_int_equal(ib_push__registry_clone(&r2, r), 0);
	assert_int_equal(ib_push__registry_ping(r2), 0);
	assert_int_equal(f->token_requests, 1);
	/* a registry error names the operation, the object, the status and the registry's message */
	ib_push__response resp = { 0 };
	ib_assert_error_contains(ib_push__registry_request(r, &resp, "GET", "/v2/app/manifests/nope", NULL, NULL, NULL, "manifest nope"),
				 "push to fake/app: manifest nope: 404 MANIFEST_UNKNOWN: manifest unknown");
	assert_int_equal(ib_error_last()->code, IB_ENOTFOUND);
	ib_push__response_dispose(&resp);
	ib_push__registry_free(r2);
	ib_push__registry_free(r);
}

/* An `identitytoken` in the config: traded at the realm by POST grant_type=refresh_token, never sent as Basic. */
static void test_identity_token(void **state)
{
	fake *f = *state;
	char *dir = ib_test_tmpdir("push-idtoken");
	char path[4096], text[512];
	snprintf(path, sizeof path, "%s/config.json", dir);
	snprintf(text, sizeof text, "{\"auths\":{\"127.0.0.1:%d\":{\"auth\":\"YWxpY2U6\",\"identitytoken\":\"R3FR3SH\"}}}",
		 f->port);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	setenv("REGISTRY_AUTH_FILE", path, 1);
	ib_push__registry *r = client(f, NULL, NULL, NULL, 0);
	assert_int_equal(ib_push__registry_ping(r), 0);
	assert_string_equal(f->token_method, "POST");
	assert_non_null(strstr(f->token_body, "grant_type=refresh_token"));
	assert_non_null(strstr(f->token_body, "refresh_token=R3FR3SH"));
	assert_non_null(strstr(f->token_body, "service=fake%20registry"));
	assert_non_null(strstr(f->token_body, "scope=repository%3Aapp%3Apull%2Cpush"));
	assert_non_null(strstr(f->token_body, "client_id="));
	assert_string_equal(f->token_auth, ""); /* no Basic with a refresh token */
	assert_string_equal(f->last_auth, "Bearer T0K3N");
	ib_push__registry_free(r);
	/* a Basic registry cannot take an identity token: a clear error, nothing sent */
	f->bearer = 0;
	r = client(f, NULL, NULL, NULL, 0);
	ib_assert_error_contains(ib_push__registry_ping(r), "identity token");
	ib_push__registry_free(r);
	unsetenv("REGISTRY_AUTH_FILE");
	free(dir);
}

static void test_bearer_wrong_password(void **state)
{
	fake *f = *state;
	ib_push__registry *r = client(f, "alice", "wrong", NULL, 0);
	ib_assert_error_contains(ib_push__registry_ping(r), "token from http://127.0.0.1:");
	assert_non_null(strstr(ib_error_last()->message, "401 incorrect username or password"));
	assert_int_equal(ib_error_last()->code, IB_EINVALID);
	ib_push__registry_free(r);
}

static void test_basic(void **state)
{
	fake *f = *state;
	f->bearer = 0;
	/* no credentials: the 401 with a hint */
	ib_push__registry *r = client(f, NULL, NULL, NULL, 0);
	ib_assert_error_contains(ib_push__registry_ping(r), "401 UNAUTHORIZED: authentication required (no credentials for 127.0.0.1:");
	ib_push__registry_free(r);
	/* wrong ones: the 401 */
	r = client(f, "alice", "nope", NULL, 0);
	ib_assert_error_contains(ib_push__registry_ping(r), "push to fake/app: /v2/: 401 UNAUTHORIZED: authentication required");
	ib_push__registry_free(r);
	/* from Docker's config file */
	char *dir = ib_test_tmpdir("push-fake");
	char path[4096], domain[64];
	snprintf(path, sizeof path, "%s/config.json", dir);
	snprintf(domain, sizeof domain, "127.0.0.1:%d", f->port);
	assert_int_equal(ib_push__config_set(path, domain, "alice", "s3cret"), 0);
	r = client(f, NULL, NULL, path, 0);
	assert_int_equal(ib_push__registry_ping(r), 0);
	assert_string_equal(f->last_auth, "Basic YWxpY2U6czNjcmV0");
	ib_push__registry_free(r);
	/* login checks them, then writes them; logout removes them */
	snprintf(path, sizeof path, "%s/login/config.json", dir);
	ib_registry_options o = IB_REGISTRY_OPTIONS_INIT;
	o.docker_config = path;
	o.username = "alice";
	o.password = "bad";
	ib_assert_error_contains(ib_registry_login(domain, &o), "401");
	assert_int_equal(access(path, F_OK), -1);
	o.password = "s3cret";
	assert_int_equal(ib_registry_login(domain, &o), 0);
	char *u, *p;
	assert_int_equal(ib_push__config_get(&u, &p, path, domain), 0);
	assert_string_equal(p, "s3cret");
	free(u);
	free(p);
	assert_int_equal(ib_registry_logout(domain, &o), 0);
	assert_int_equal(ib_registry_logout(domain, &o), IB_ENOTFOUND);
	f->bearer = 1;
	free(dir);
}

static void test_retries(void **state)
{
	fake *f = *state;
	ib_buf body = IB_BUF_INIT;
	ib_push__sink sink = { &body, 1024, NULL, NULL, NULL };
	ib_push__response resp = { 0 };
	/* two 503s, then fine: within 4 attempts */
	f->flaky_failures = 2;
	f->hits_flaky = 0;
	ib_push__registry *r = client(f, "alice", "s3cret", NULL, 4);
	assert_int_equal(ib_push__registry_request(r, &resp, "GET", "/v2/app/flaky", NULL, NULL, &sink, "flaky"), 0);
	assert_string_equal(body.ptr, "fine");
	assert_int_equal(f->hits_flaky, 3);
	ib_push__registry_free(r);
	/* not within 2 */
	f->hits_flaky = 0;
	r = client(f, "alice", "s3cret", NULL, 2);
	ib_assert_error_contains(ib_push__registry_request(r, &resp, "GET", "/v2/app/flaky", NULL, NULL, &sink, "flaky"),
				 "flaky: 503 upstream busy");
	assert_int_equal(f->hits_flaky, 2);
	ib_push__registry_free(r);
	ib_push__response_dispose(&resp);
	ib_buf_dispose(&body);
}

static void test_blob(void **state)
{
	fake *f = *state;
	char *dir = ib_test_tmpdir("push-blob");
	ib_store *s;
	assert_int_equal(ib_store_open(&s, dir, NULL), 0);
	ib_push__registry *r = client(f, "alice", "s3cret", NULL, 3);
	ib_digest good, bad;
	ib_digest_of(&good, "hello", 5);
	ib_digest_of(&bad, "other", 5);
	/* a 500 first: the retry starts the blob again, and the digest checks out */
	f->hits_blob = 0;
	assert_int_equal(ib_push__fetch_blob(r, s, &good, 5, NULL), 0);
	assert_int_equal(f->hits_blob, 2);
	assert_int_equal(ib_store_blob_has(s, &good), 1);
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_store_blob_read(&b, s, &good), 0);
	assert_string_equal(b.ptr, "hello");
	ib_buf_dispose(&b);
	/* content that is not what the digest says is refused, and not stored */
	f->hits_blob = 1;
	ib_assert_error_contains(ib_push__fetch_blob(r, s, &bad, 5, NULL), "push to fake/app: blob sha256:");
	assert_int_equal(ib_store_blob_has(s, &bad), 0);
	/* the wrong size: nothing stored, even though the digest is right */
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, &good);
	char *path = ib_sprintf("%s/blobs/sha256/%s", dir, hex);
	assert_int_equal(unlink(path), 0); /* stored above: gone again */
	f->hits_blob = 1;
	ib_assert_error_contains(ib_push__fetch_blob(r, s, &good, 6, NULL), "has 5 bytes, its descriptor says 6");
	assert_int_equal(ib_store_blob_has(s, &good), 0);
	f->hits_blob = 1;
	ib_assert_error_contains(ib_push__fetch_blob(r, s, &good, 4, NULL), "more than the 4 bytes its descriptor says");
	assert_int_equal(ib_store_blob_has(s, &good), 0);
	/* an endless body stops at the descriptor's size: the fake could only fill the socket buffers */
	f->endless_blob = 1;
	int before = f->endless_done;
	ib_assert_error_contains(ib_push__fetch_blob(r, s, &good, 5, NULL), "more than the 5 bytes its descriptor says");
	assert_int_equal(ib_store_blob_has(s, &good), 0);
	assert_true(endless_sent_after(f, before) < (64u << 20));
	f->endless_blob = 0;
	free(path);
	ib_push__registry_free(r);
	ib_store_free(s);
	ib_rm_rf(dir);
	free(dir);
}

static void test_upload(void **state)
{
	fake *f = *state;
	char *dir = ib_test_tmpdir("push-upload");
	ib_store *s;
	assert_int_equal(ib_store_open(&s, dir, NULL), 0);
	ib_push__registry *r = client(f, "alice", "s3cret", NULL, 3);
	size_t n = 100000;
	unsigned char *data = malloc(n);
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)(i * 7 + i / 251);
	ib_digest d;
	char ds[IB_DIGEST_STRLEN];
	assert_int_equal(ib_store_blob_put(&d, s, data, n), 0);
	ib_digest_fmt(ds, &d);
	/* in one PUT */
	assert_int_equal(ib_push__upload_blob(r, s, &d, NULL, NULL, 0), 0);
	assert_int_equal(f->monolithic_puts, 1);
	assert_int_equal(f->patches, 0);
	assert_string_equal(f->put_digest, ds);
	assert_int_equal(f->uploaded, n);
	assert_memory_equal(f->upload, data, n);
	/* in 16 KiB chunks; the answer to the third is lost: the client asks where the session is and goes on */
	f->lose_patch = 3;
	f->put_digest[0] = 0;
	assert_int_equal(ib_push__upload_blob(r, s, &d, NULL, NULL, 16384), 0);
	assert_int_equal(f->monolithic_puts, 1);
	assert_int_equal(f->patches, 7); /* ceil(100000 / 16384) */
	assert_string_equal(f->put_digest, ds);
	assert_int_equal(f->uploaded, n);
	assert_memory_equal(f->upload, data, n);
	free(data);
	ib_push__registry_free(r);
	ib_store_free(s);
	ib_rm_rf(dir);
	free(dir);
}

/* A layer of `n` bytes that deflate cannot shrink much, stored uncompressed; its digest in `d`. */
static void incompressible_layer(ib_digest *d, ib_store *s, size_t n, uint32_t seed)
{
	unsigned char *data = malloc(n);
	assert_non_null(data);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		data[i] = (unsigned char)(seed >> 16);
	}
	assert_int_equal(ib_store_blob_put(d, s, data, n), 0);
	free(data);
}

/* What the fake holds is the blob named `want`: its digest is that. */
static void assert_upload_is(fake *f, const ib_digest *want)
{
	ib_digest got;
	char a[IB_DIGEST_STRLEN], b[IB_DIGEST_STRLEN];
	assert_int_equal(ib_digest_of(&got, f->upload, f->uploaded), 0);
	ib_digest_fmt(a, want);
	ib_digest_fmt(b, &got);
	assert_string_equal(b, a);
	assert_string_equal(f->put_digest, a);
}

typedef void (*ib_store__hook_fn)(const char *point, void *payload);
void ib_store__set_hook(ib_store__hook_fn hook, void *payload);

/* -1: no variant fsync yet; 1: the closing PUT had come when it began (waited for up to 5 s); 0: it had not */
static int put_before_fsync = -1;

static void wait_put_at_fsync(const char *point, void *payload)
{
	fake *f = payload;
	if (strcmp(point, "blob-fsync") != 0 || put_before_fsync != -1)
		return;
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&f->lock);
		int seen = f->put_digest[0] != 0;
		pthread_mutex_unlock(&f->lock);
		if (seen) {
			put_before_fsync = 1;
			return;
		}
		usleep(10000);
	}
	put_before_fsync = 0;
}

/* A layer's first push, compressed and sent at once (stream.c): PATCH chunks while it is compressed, the variant recorded. */
static void test_stream_upload(void **state)
{
	fake *f = *state;
	char *dir = ib_test_tmpdir("push-stream");
	ib_store *s;
	assert_int_equal(ib_store_open(&s, dir, NULL), 0);
	ib_push__registry *r = client(f, "alice", "s3cret", NULL, 3);
	ib_digest d, v, again;
	ib_push__blob b = { 0 };
	incompressible_layer(&d, s, (3u << 20) + 777, 1);
	/* the session closes while the variant is made durable, not after: its fsync waits here for the PUT */
	f->put_digest[0] = 0;
	put_before_fsync = -1;
	ib_store__set_hook(wait_put_at_fsync, f);
	assert_int_equal(ib_push__stream_layer(&b, r, s, &d, 0, 0, "layer", 256u << 10), 0);
	ib_store__set_hook(NULL, NULL);
	assert_int_equal(put_before_fsync, 1);
	assert_string_equal(b.media_type, IB_MEDIA_TYPE_OCI_LAYER_GZIP);
	assert_true(f->patches >= 4); /* > 3 MiB in PATCHes of 256 KiB to 1 MiB (four chunks at most) */
	assert_int_equal(f->monolithic_puts, 0);
	assert_int_equal(f->uploaded, b.size);
	assert_upload_is(f, &b.digest);
	/* the variant is remembered, and is what the ordinary compression makes */
	assert_int_equal(ib_store_variant_get(&v, NULL, s, &d, IB_MEDIA_TYPE_OCI_LAYER_GZIP), 0);
	assert_true(ib_digest_equal(&v, &b.digest));
	assert_int_equal(ib_push__gzip_layer(&again, NULL, s, &d), 0);
	assert_true(ib_digest_equal(&again, &b.digest));

	/* a chunk lost for good (its answer a 503, the resend out of range): the blob goes the ordinary way, whole */
	incompressible_layer(&d, s, (2u << 20) + 5, 2);
	f->patches = 0;
	f->lose_patch = 3;
	f->put_digest[0] = 0;
	memset(&b, 0, sizeof b);
	assert_int_equal(ib_push__stream_layer(&b, r, s, &d, 0, 0, "layer", 256u << 10), 0);
	assert_int_equal(f->uploaded, b.size);
	assert_upload_is(f, &b.digest);
	assert_int_equal(ib_store_variant_get(&v, NULL, s, &d, IB_MEDIA_TYPE_OCI_LAYER_GZIP), 0);
	assert_true(ib_digest_equal(&v, &b.digest));

	/* zstd likewise */
	f->lose_patch = 0;
	f->patches = 0;
	memset(&b, 0, sizeof b);
	assert_int_equal(ib_push__stream_layer(&b, r, s, &d, 1, 0, "layer", 256u << 10), 0);
	assert_string_equal(b.media_type, IB_MEDIA_TYPE_OCI_LAYER_ZSTD);
	assert_true(f->patches >= 2);
	assert_upload_is(f, &b.digest);
	assert_int_equal(ib_store_variant_get(&v, NULL, s, &d, IB_MEDIA_TYPE_OCI_LAYER_ZSTD), 0);
	assert_true(ib_digest_equal(&v, &b.digest));

	ib_push__registry_free(r);
	ib_store_free(s);
	ib_rm_rf(dir);
	free(dir);
}

/*
 * Layers kept only unpacked (lib/store/regen.c), with a provider of this
 * test's own: the source "seed N" stands for REGEN_SIZE bytes made from N;
 * while regen_damage is set, one byte far into them is changed (a file
 * modified under snapshots/), after several chunks already went out.
 */
#define REGEN_SIZE ((5u << 20) + 321)
static int regen_damage;
static fake *regen_wait; /* set: the last piece waits (5 s at most) until a PATCH reached this fake */

static void regen_bytes(unsigned char *data, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		data[i] = (unsigned char)(seed >> 16);
	}
}

static int test_provider(ib_store *store, const ib_digest *diff_id, const char *source, ib_store_write_cb write,
			 void *payload)
{
	(void)store;
	(void)diff_id;
	unsigned seed;
	if (sscanf(source, "seed %u", &seed) != 1)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "test provider: source `%s`", source);
	unsigned char *data = malloc(REGEN_SIZE);
	assert_non_null(data);
	regen_bytes(data, REGEN_SIZE, seed);
	if (regen_damage)
		data[REGEN_SIZE - 1000] ^= 1;
	int rc = 0;
	if (regen_damage == 2) { /* a file that grew: more bytes than recorded, stopped at the first one too many */
		static const unsigned char extra[4096];
		rc = write(data, REGEN_SIZE, payload);
		free(data);
		return rc ? rc : write(extra, sizeof extra, payload);
	}
	/* in uneven pieces, as a diff writes them */
	for (size_t off = 0, piece = 1; rc == 0 && off < REGEN_SIZE; off += piece, piece = piece * 3 + 17) {
		if (piece >= REGEN_SIZE - off) {
			piece = REGEN_SIZE - off;
			for (int i = 0; regen_wait && i < 500 && !__atomic_load_n(&regen_wait->patches, __ATOMIC_ACQUIRE); i++)
				usleep(10000);
		}
		rc = write(data + off, piece, payload);
	}
	free(data);
	return rc;
}

/* A layer kept only unpacked: recorded with its digest and size, no blob. */
static void unpacked_layer(ib_digest *d, ib_store *s, unsigned seed)
{
	unsigned char *data = malloc(REGEN_SIZE);
	assert_non_null(data);
	regen_bytes(data, REGEN_SIZE, seed);
	assert_int_equal(ib_digest_of(d, data, REGEN_SIZE), 0);
	free(data);
	char source[32];
	snprintf(source, sizeof source, "seed %u", seed);
	assert_int_equal(ib_store_layer_source_put(s, d, REGEN_SIZE, source), 0);
	assert_int_equal(ib_store_layer_source_has(s, d), 1);
}

/* Files under <dir>/blobs/sha256. */
static int count_blobs(const char *dir)
{
	char *cmd = ib_sprintf("ls %s/blobs/sha256 2>/dev/null | wc -l", dir);
	FILE *p = popen(cmd, "r");
	int n = -1;
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	free(cmd);
	return n;
}

/*
 * A layer kept only unpacked goes straight from its regeneration into the
 * compression and the upload: the same blob as from a file; a damaged one
 * (its bytes not its digest) is refused naming the layer, with no closing
 * PUT, its session cancelled, no variant recorded and no compressed blob kept.
 */
static void test_regenerated_upload(void **state)
{
	fake *f = *state;
	char *dir = ib_test_tmpdir("push-regen");
	ib_store *s;
	assert_int_equal(ib_store_open(&s, dir, NULL), 0);
	ib_store_layer_source_provider(test_provider);
	ib_push__registry *r = client(f, "alice", "s3cret", NULL, 3);
	ib_digest d, v, from_file;
	ib_push__blob b = { 0 };
	char ds[IB_DIGEST_STRLEN];

	for (int zstd = 0; zstd < 2; zstd++) {
		const char *mt = zstd ? IB_MEDIA_TYPE_OCI_LAYER_ZSTD : IB_MEDIA_TYPE_OCI_LAYER_GZIP;
		/* sound: streamed and sent, the variant is what a file of the same bytes gives */
		regen_damage = 0;
		unpacked_layer(&d, s, 10 + (unsigned)zstd);
		f->patches = 0;
		f->put_digest[0] = 0;
		memset(&b, 0, sizeof b);
		assert_int_equal(ib_push__stream_layer(&b, r, s, &d, zstd, 0, "layer", 256u << 10), 0);
		assert_string_equal(b.media_type, mt);
		assert_true(f->patches >= 2);
		assert_upload_is(f, &b.digest);
		assert_int_equal(ib_store_variant_get(&v, NULL, s, &d, mt), 0);
		assert_true(ib_digest_equal(&v, &b.digest));
		unsigned char *data = malloc(REGEN_SIZE);
		assert_non_null(data);
		regen_bytes(data, REGEN_SIZE, 10 + (unsigned)zstd);
		ib_digest copy;
		assert_int_equal(ib_store_blob_put(&copy, s, data, REGEN_SIZE), 0);
		free(data);
		assert_int_equal(zstd ? ib_push__zstd_layer(&from_file, NULL, s, &copy, 0)
				      : ib_push__gzip_layer(&from_file, NULL, s, &copy),
				 0);
		assert_true(ib_digest_equal(&from_file, &b.digest));

		/* damaged, first push (stream.c): chunks went out, but no closing PUT, no variant */
		regen_damage = 1;
		unpacked_layer(&d, s, 20 + (unsigned)zstd);
		ib_digest_fmt(ds, &d);
		int blobs = count_blobs(dir), deletes = f->deletes;
		f->patches = 0;
		f->put_digest[0] = 0;
		memset(&b, 0, sizeof b);
		regen_wait = zstd ? NULL : f; /* libzstd may hold 5 MiB back whole: only gzip surely sends before the end */
		int rc = ib_push__stream_layer(&b, r, s, &d, zstd, 0, "layer", 256u << 10);
		regen_wait = NULL;
		assert_int_equal(rc, IB_EINVALID);
		assert_non_null(strstr(ib_error_last()->message, ds));
		assert_non_null(strstr(ib_error_last()->message, "modified or damaged"));
		if (!zstd)
			assert_true(f->patches >= 1); /* it did stream: the check is what stopped it */
		assert_string_equal(f->put_digest, "");
		assert_int_equal(f->deletes, deletes + 1);
		assert_int_equal(ib_store_variant_get(&v, NULL, s, &d, mt), IB_ENOTFOUND);
		assert_int_equal(count_blobs(dir), blobs);
		/* damaged, compressed whole first (push.c's path for small layers): refused, nothing kept */
		rc = zstd ? ib_push__zstd_layer(&v, NULL, s, &d, 0) : ib_push__gzip_layer(&v, NULL, s, &d);
		assert_int_equal(rc, IB_EINVALID);
		assert_non_null(strstr(ib_error_last()->message, "modified or damaged"));
		assert_int_equal(count_blobs(dir), blobs);
		/* grown past the recorded size: stopped there, said so */
		regen_damage = 2;
		rc = zstd ? ib_push__zstd_layer(&v, NULL, s, &d, 0) : ib_push__gzip_layer(&v, NULL, s, &d);
		assert_int_equal(rc, IB_EINVALID);
		assert_non_null(strstr(ib_error_last()->message, "more than the recorded"));
		assert_non_null(strstr(ib_error_last()->message, ds));
		assert_int_equal(count_blobs(dir), blobs);
		ib_error_clear();
	}
	regen_damage = 0;
	ib_store_layer_source_provider(NULL);
	ib_push__registry_free(r);
	ib_store_free(s);
	ib_rm_rf(dir);
	free(dir);
}

/* An endless error body: the status comes back, the body is read up to its cap and no further. */
static void test_endless_error(void **state)
{
	fake *f = *state;
	ib_push__registry *r = client(f, "alice", "s3cret", NULL, 0);
	ib_push__response resp = { 0 };
	f->endless_404 = 1;
	int before = f->endless_done;
	ib_assert_error_contains(ib_push__registry_request(r, &resp, "GET", "/v2/app/manifests/x", NULL, NULL, NULL, "manifest x"),
				 "push to fake/app: manifest x: 404 ");
	assert_int_equal(ib_error_last()->code, IB_ENOTFOUND);
	assert_true(resp.error_body.size <= IB_PUSH_ERROR_BODY_LIMIT);
	assert_true(endless_sent_after(f, before) < (64u << 20));
	ib_push__response_dispose(&resp);
	ib_push__registry_free(r);
}

const struct CMUnitTest client_tests[] = {
	cmocka_unit_test_setup_teardown(test_upload, fake_start, fake_stop),
	cmocka_unit_test_setup_teardown(test_stream_upload, fake_start, fake_stop),
	cmocka_unit_test_setup_teardown(test_regenerated_upload, fake_start, fake_stop),
	cmocka_unit_test_setup_teardown(test_bearer, fake_start, fake_stop),
	cmocka_unit_test_setup_teardown(test_bearer_wrong_password, fake_start, fake_stop),
	cmocka_unit_test_setup_teardown(test_identity_token, fake_start, fake_stop),
	cmocka_unit_test_setup_teardown(test_basic, fake_start, fake_stop),
	cmocka_unit_test_setup_teardown(test_retries, fake_start, fake_stop),
	cmocka_unit_test_setup_teardown(test_blob, fake_start, fake_stop),
	cmocka_unit_test_setup_teardown(test_endless_error, fake_start, fake_stop),
};
const size_t client_tests_count = sizeof client_tests / sizeof *client_tests;
