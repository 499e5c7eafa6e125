/*
 * The registry client: one repository of one registry over one curl handle
 * (so one thread). Every request goes through ib_registry_request(), which
 * authenticates on a 401 (Basic, or a Bearer token from the challenge's
 * realm), falls back to plain HTTP for insecure registries that do not
 * speak TLS, and retries transient failures with backoff.
 */
#include "push/internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct ib_registry {
	char *domain;     /* as in references: docker.io, localhost:5000 */
	const char *host; /* what serves it (points into domain or a constant) */
	char *path;       /* the repository: library/busybox; "" for login */
	char *actions;    /* token scope actions: "pull", "pull,push" */
	char *what;       /* "push to localhost:5000/app", for errors */
	const char *scheme;
	int scheme_known; /* a response came back over `scheme` */
	int insecure;
	char *ca_file;
	unsigned int attempts;
	char *user, *pass;
	char *auth;       /* the Authorization header value, once known */
	const ib_callbacks *cb;
	CURL *curl;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void ib_response_dispose(ib_response *r)
{
	free(r->location);
	free(r->content_type);
	free(r->docker_digest);
	free(r->www_authenticate);
	free(r->range);
	ib_buf_dispose(&r->error_body);
	memset(r, 0, sizeof *r);
}

static int dup_opt(char **out, const char *s)
{
	*out = NULL;
	return !s || (*out = ib_strdup(s)) ? 0 : IB_ERROR;
}

static int client_alloc(ib_registry **out, const char *domain, const char *path, const char *actions,
			const char *what)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
	ib_registry *r = ib_calloc(1, sizeof *r);
	if (!r)
		return IB_ERROR;
	*out = r;
	if (dup_opt(&r->domain, domain) < 0 || dup_opt(&r->path, path) < 0 || dup_opt(&r->actions, actions) < 0 ||
	    dup_opt(&r->what, what) < 0)
		return IB_ERROR;
	if (!(r->curl = curl_easy_init()))
		return ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "%s: curl_easy_init failed", what);
	r->host = ib_push__api_host(r->domain);
	r->scheme = "https";
	return 0;
}

int ib_registry_new(ib_registry **out, const char *domain, const char *path, const char *actions,
		    const ib_registry_options *opts, const char *what)
{
	static const ib_registry_options defaults = IB_REGISTRY_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	if (opts->version != IB_REGISTRY_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "registry options: unknown version %u", opts->version);
	ib_registry *r = NULL;
	int rc = client_alloc(&r, domain, path, actions, what);
	if (rc == 0) {
		r->insecure = opts->insecure || ib_push__default_insecure(domain);
		r->attempts = opts->attempts ? opts->attempts : 4;
		r->cb = opts->callbacks;
		rc = dup_opt(&r->ca_file, opts->tls_ca_file);
	}
	if (rc == 0 && opts->username) {
		if (dup_opt(&r->user, opts->username) < 0 || dup_opt(&r->pass, opts->password ? opts->password : "") < 0)
			rc = IB_ERROR;
	} else if (rc == 0) {
		ib_buf path_buf = IB_BUF_INIT;
		rc = ib_push__config_path(&path_buf, opts->docker_config);
		if (rc == 0)
			rc = ib_push__config_get(&r->user, &r->pass, path_buf.ptr, domain);
		if (rc == IB_ENOTFOUND) { /* anonymous */
			ib_error_clear();
			rc = 0;
		}
		if (rc < 0)
			ib_error_prefix("%s: credentials", what);
		ib_buf_dispose(&path_buf);
	}
	if (rc < 0) {
		ib_registry_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int ib_registry_clone(ib_registry **out, const ib_registry *o)
{
	ib_registry *r = NULL;
	int rc = client_alloc(&r, o->domain, o->path, o->actions, o->what);
	if (rc == 0 && (dup_opt(&r->ca_file, o->ca_file) < 0 || dup_opt(&r->user, o->user) < 0 ||
			dup_opt(&r->pass, o->pass) < 0 || dup_opt(&r->auth, o->auth) < 0))
		rc = IB_ERROR;
	if (rc < 0) {
		ib_registry_free(r);
		return rc;
	}
	r->scheme = o->scheme;
	r->scheme_known = o->scheme_known;
	r->insecure = o->insecure;
	r->attempts = o->attempts;
	r->cb = o->cb;
	*out = r;
	return 0;
}

void ib_registry_free(ib_registry *r)
{
	if (!r)
		return;
	if (r->curl)
		curl_easy_cleanup(r->curl);
	free(r->domain);
	free(r->path);
	free(r->actions);
	free(r->what);
	free(r->ca_file);
	free(r->user);
	if (r->pass) {
		memset(r->pass, 0, strlen(r->pass));
		free(r->pass);
	}
	free(r->auth);
	free(r);
}

const char *ib_registry_what(const ib_registry *r)
{
	return r->what;
}

const char *ib_registry_path(const ib_registry *r)
{
	return r->path;
}

int ib_registry_progress(ib_registry *r, const char *id, const char *text, uint64_t cur, uint64_t total)
{
	if (!r->cb || !r->cb->progress)
		return 0;
	ib_progress p = { IB_PROGRESS_VERSION, IB_PROGRESS_BYTES, id, text, cur, total, 0 };
	pthread_mutex_lock(&cb_lock);
	int rc = r->cb->progress(&p, r->cb->payload);
	pthread_mutex_unlock(&cb_lock);
	if (rc)
		ib_error_setc(rc < 0 ? rc : IB_EUSER, IB_LAYER_CALLBACK, "%s: cancelled by the progress callback", r->what);
	return rc ? (rc < 0 ? rc : IB_EUSER) : 0;
}

int ib_push__url(ib_buf *out, const char *scheme, const char *host, const char *rel)
{
	ib_buf_clear(out);
	if (!strncmp(rel, "http://", 7) || !strncmp(rel, "https://", 8))
		return ib_buf_puts(out, rel);
	return ib_buf_printf(out, "%s://%s%s%s", scheme, host, rel[0] == '/' ? "" : "/", rel);
}

/* ---- retries ---- */

static int transient_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

long ib_push__retry_delay(CURLcode cc, long status, unsigned int attempt, unsigned int max, long retry_after)
{
	if (attempt >= max)
		return -1;
	if (cc != CURLE_OK) {
		if (!transient_curl(cc))
			return -1;
	} else if (status != 429 && status != 408 && !(status >= 500 && status != 501 && status != 505 && status < 600)) {
		return -1;
	}
	if (retry_after > 0)
		return (retry_after > 30 ? 30 : retry_after) * 1000L;
	long d = 250L << (attempt - 1 < 5 ? attempt - 1 : 5);
	return d > 5000 ? 5000 : d;
}

/* ---- one exchange ---- */

typedef struct {
	ib_response *resp;
	const ib_sink *sink;
	int sink_rc;
	const ib_source *body;
	uint64_t offset, reported;
	ib_registry *r;
	char reason[128];
} exchange;

static char *header_value(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	if (len <= n || strncasecmp(line, name, n) || line[n] != ':')
		return NULL;
	const char *v = line + n + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	return ib_strndup(v, (size_t)(end - v));
}

static void set_header(char **slot, char *v)
{
	if (v) {
		free(*slot);
		*slot = v;
	}
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *payload)
{
	exchange *x = payload;
	size_t len = size * nmemb;
	ib_response *r = x->resp;
	if (len > 5 && !strncmp(data, "HTTP/", 5)) { /* a new response (redirects, 100 Continue) */
		const char *sp = memchr(data, ' ', len);
		long status = sp ? strtol(sp + 1, NULL, 10) : 0;
		if (status == 100)
			return len;
		ib_buf err = r->error_body;
		ib_buf_clear(&err);
		free(r->location);
		free(r->content_type);
		free(r->docker_digest);
		free(r->www_authenticate);
		free(r->range);
		memset(r, 0, sizeof *r);
		r->error_body = err;
		r->status = status;
		const char *reason = sp ? memchr(sp + 1, ' ', len - (size_t)(sp + 1 - data)) : NULL;
		snprintf(x->reason, sizeof x->reason, "%.*s", reason ? (int)strcspn(reason + 1, "\r\n") : 0,
			 reason ? reason + 1 : "");
		return len;
	}
	set_header(&r->location, header_value(data, len, "Location"));
	set_header(&r->content_type, header_value(data, len, "Content-Type"));
	set_header(&r->docker_digest, header_value(data, len, "Docker-Content-Digest"));
	set_header(&r->www_authenticate, header_value(data, len, "WWW-Authenticate"));
	set_header(&r->range, header_value(data, len, "Range"));
	char *ra = header_value(data, len, "Retry-After");
	if (ra) {
		r->retry_after = strtol(ra, NULL, 10);
		free(ra);
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *payload)
{
	exchange *x = payload;
	size_t len = size * nmemb;
	ib_response *r = x->resp;
	if (r->status < 200 || r->status >= 300 || !x->sink) {
		if (r->error_body.size < 65536 && ib_buf_put(&r->error_body, data, len) < 0)
			return 0;
		return len;
	}
	const ib_sink *s = x->sink;
	if (s->buf) {
		if (s->buf->size + len > s->limit) {
			x->sink_rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "response larger than %zu bytes", s->limit);
			return 0;
		}
		if ((x->sink_rc = ib_buf_put(s->buf, data, len)) < 0)
			return 0;
	} else if (s->write && (x->sink_rc = s->write(data, len, s->payload)) < 0) {
		return 0;
	}
	return len;
}

static size_t on_read(char *out, size_t size, size_t nmemb, void *payload)
{
	exchange *x = payload;
	size_t want = size * nmemb;
	const ib_source *b = x->body;
	if (b->fd >= 0) {
		if (want > b->fd_size - x->offset)
			want = (size_t)(b->fd_size - x->offset);
		ssize_t n = want ? pread(b->fd, out, want, (off_t)(b->fd_offset + x->offset)) : 0;
		if (n < 0)
			return CURL_READFUNC_ABORT;
		x->offset += (uint64_t)n;
		if (b->progress_id && x->offset - x->reported >= (1u << 20)) {
			x->reported = x->offset;
			if ((x->sink_rc = ib_registry_progress(x->r, b->progress_id, "Pushing", b->fd_offset + x->offset,
							       b->progress_total ? b->progress_total : b->fd_size)) < 0)
				return CURL_READFUNC_ABORT;
		}
		return (size_t)n;
	}
	size_t left = b->len - (size_t)x->offset;
	size_t n = left < want ? left : want;
	memcpy(out, (const char *)b->data + x->offset, n);
	x->offset += n;
	return n;
}

static int on_seek(void *payload, curl_off_t offset, int origin)
{
	exchange *x = payload;
	if (origin != SEEK_SET || offset < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	x->offset = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static void tls_options(ib_registry *r)
{
	CURL *c = r->curl;
	if (r->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, r->ca_file);
	if (r->insecure && !r->ca_file) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

static CURLcode perform(ib_registry *r, exchange *x, const char *method, const char *url, const char *accept,
			char *errbuf)
{
	CURL *c = r->curl;
	curl_easy_reset(c);
	struct curl_slist *h = NULL;
	char line[4096];
	if (accept) {
		snprintf(line, sizeof line, "Accept: %s", accept);
		h = curl_slist_append(h, line);
	}
	if (r->auth) {
		snprintf(line, sizeof line, "Authorization: %s", r->auth);
		h = curl_slist_append(h, line);
	}
	const ib_source *b = x->body;
	if (b && b->content_type) {
		snprintf(line, sizeof line, "Content-Type: %s", b->content_type);
		h = curl_slist_append(h, line);
	}
	if (b && b->fd >= 0 && b->fd_size && !strcmp(method, "PATCH")) {
		snprintf(line, sizeof line, "Content-Range: %llu-%llu", (unsigned long long)b->fd_offset,
			 (unsigned long long)(b->fd_offset + b->fd_size - 1));
		h = curl_slist_append(h, line);
	}
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "imagebuild/" "0.1");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, !strcmp(method, "GET") || !strcmp(method, "HEAD") ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 120L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	tls_options(r);
	if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (b) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(b->fd >= 0 ? b->fd_size : b->len));
	} else if (strcmp(method, "GET")) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		if (!strcmp(method, "POST")) {
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
		}
	}
	errbuf[0] = 0;
	CURLcode cc = curl_easy_perform(c);
	curl_slist_free_all(h);
	return cc;
}

int ib_push__error_text(ib_buf *out, const char *body, size_t len)
{
	ib_buf_clear(out);
	json_t *j = len ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *errs = json_object_get(j, "errors");
	size_t i;
	json_t *e;
	json_array_foreach(errs, i, e) {
		const char *code = ib_json_str(e, "code"), *msg = ib_json_str(e, "message");
		ib_buf_printf(out, "%s%s%s%s", i ? "; " : "", code ? code : "", code && msg ? ": " : "", msg ? msg : "");
	}
	if (!out->size && j && ib_json_str(j, "details"))
		ib_buf_puts(out, ib_json_str(j, "details"));
	json_decref(j);
	if (!out->size && len) { /* not JSON: the first line of it */
		size_t n = strcspn(body, "\r\n");
		if (n > len)
			n = len;
		ib_buf_put(out, body, n > 200 ? 200 : n);
	}
	return ib_buf_puts(out, "");
}

/* ---- auth ---- */

static int basic_auth(ib_registry *r)
{
	ib_buf up = IB_BUF_INIT, enc = IB_BUF_INIT;
	int rc = ib_buf_printf(&up, "%s:%s", r->user, r->pass);
	if (rc == 0)
		rc = ib_push__base64(&enc, up.ptr, up.size);
	if (rc == 0) {
		free(r->auth);
		r->auth = ib_sprintf("Basic %s", enc.ptr);
		rc = r->auth ? 0 : IB_ERROR;
	}
	memset(up.ptr, 0, up.size);
	ib_buf_dispose(&up);
	ib_buf_dispose(&enc);
	return rc;
}

static int token_auth(ib_registry *r, const ib_challenge *ch)
{
	ib_buf url = IB_BUF_INIT, body = IB_BUF_INIT, msg = IB_BUF_INIT;
	int rc = ib_buf_puts(&url, ch->realm);
	char sep = strchr(ch->realm, '?') ? '&' : '?';
	if (rc == 0 && ch->service) {
		char *e = curl_easy_escape(r->curl, ch->service, 0);
		rc = ib_buf_printf(&url, "%cservice=%s", sep, e ? e : "");
		curl_free(e);
		sep = '&';
	}
	if (rc == 0 && r->path && *r->path) {
		char *scope = ib_sprintf("repository:%s:%s", r->path, r->actions);
		char *e = scope ? curl_easy_escape(r->curl, scope, 0) : NULL;
		rc = e ? ib_buf_printf(&url, "%cscope=%s", sep, e) : IB_ERROR;
		curl_free(e);
		free(scope);
	}
	if (rc == 0 && r->user) {
		char *e = curl_easy_escape(r->curl, r->user, 0);
		rc = ib_buf_printf(&url, "%caccount=%s", strchr(url.ptr, '?') ? '&' : '?', e ? e : "");
		curl_free(e);
	}
	if (rc < 0)
		goto out;
	ib_response resp = { 0 };
	ib_sink sink = { &body, 1 << 20, NULL, NULL, NULL };
	exchange x = { &resp, &sink, 0, NULL, 0, 0, r, { 0 } };
	char errbuf[CURL_ERROR_SIZE];
	char *saved_auth = r->auth;
	r->auth = NULL;
	if (r->user && basic_auth(r) < 0) {
		r->auth = saved_auth;
		rc = IB_ERROR;
		goto out;
	}
	CURLcode cc = CURLE_OK;
	for (unsigned int attempt = 1;; attempt++) {
		ib_buf_clear(&body);
		cc = perform(r, &x, "GET", url.ptr, "application/json", errbuf);
		long d = ib_push__retry_delay(cc, resp.status, attempt, r->attempts, resp.retry_after);
		if (d < 0)
			break;
		usleep((useconds_t)d * 1000);
	}
	free(r->auth);
	r->auth = saved_auth;
	if (x.sink_rc < 0) {
		rc = x.sink_rc;
	} else if (cc != CURLE_OK) {
		rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "token from %s: %s", ch->realm, errbuf[0] ? errbuf : curl_easy_strerror(cc));
	} else if (resp.status != 200) {
		ib_push__error_text(&msg, resp.error_body.ptr, resp.error_body.size);
		rc = ib_error_setc(resp.status == 401 || resp.status == 403 ? IB_EINVALID : IB_ERROR, IB_LAYER_PUSH,
				   "token from %s: %ld %s", ch->realm, resp.status, msg.size ? msg.ptr : x.reason);
	} else {
		json_t *j = json_loadb(body.ptr ? body.ptr : "", body.size, 0, NULL);
		const char *tok = ib_json_str(j, "token");
		if (!tok || !*tok)
			tok = ib_json_str(j, "access_token");
		if (!tok || !*tok) {
			rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "token from %s: no token in the answer", ch->realm);
		} else {
			free(r->auth);
			r->auth = ib_sprintf("Bearer %s", tok);
			rc = r->auth ? 0 : IB_ERROR;
		}
		json_decref(j);
	}
	ib_response_dispose(&resp);
out:
	ib_buf_dispose(&url);
	ib_buf_dispose(&body);
	ib_buf_dispose(&msg);
	return rc;
}

/* Answer a challenge: 0 when there is something new to try, 1 when there is nothing (no credentials). */
static int authenticate(ib_registry *r, const char *header)
{
	ib_challenge ch;
	int rc = ib_push__challenge_parse(&ch, header);
	if (rc < 0)
		return rc;
	if (!strcasecmp(ch.scheme, "Bearer")) {
		rc = token_auth(r, &ch);
	} else if (!strcasecmp(ch.scheme, "Basic")) {
		rc = r->user ? basic_auth(r) : 1;
	} else {
		rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_PUSH, "unsupported authentication scheme `%s`", ch.scheme);
	}
	ib_push__challenge_dispose(&ch);
	return rc;
}

/* ---- requests ---- */

static int tls_failure(CURLcode cc)
{
	return cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING;
}

int ib_registry_request(ib_registry *r, ib_response *resp, const char *method, const char *rel,
			const char *accept, const ib_source *body, const ib_sink *sink, const char *object)
{
	ib_buf url = IB_BUF_INIT, msg = IB_BUF_INIT;
	exchange x = { resp, sink, 0, body, 0, 0, r, { 0 } };
	char errbuf[CURL_ERROR_SIZE];
	int rc = 0, auth_tried = 0, no_credentials = 0;
	CURLcode cc = CURLE_OK;
	for (unsigned int attempt = 1;; attempt++) {
		ib_response_dispose(resp);
		x.offset = x.reported = 0;
		x.sink_rc = 0;
		if (sink && sink->buf)
			ib_buf_clear(sink->buf);
		if (sink && sink->reset && (rc = sink->reset(sink->payload)) < 0)
			goto out;
		if ((rc = ib_push__url(&url, r->scheme, r->host, rel)) < 0)
			goto out;
		cc = perform(r, &x, method, url.ptr, accept, errbuf);
		if (x.sink_rc < 0) {
			rc = x.sink_rc;
			ib_error_prefix("%s: %s", r->what, object);
			goto out;
		}
		if (cc != CURLE_OK && r->insecure && !r->scheme_known && !strcmp(r->scheme, "https") && tls_failure(cc) &&
		    rel[0] == '/') {
			r->scheme = "http"; /* an insecure registry without TLS */
			attempt--;
			continue;
		}
		if (cc == CURLE_OK)
			r->scheme_known = 1;
		if (cc == CURLE_OK && resp->status == 401 && !auth_tried && resp->www_authenticate) {
			auth_tried = 1;
			if ((rc = authenticate(r, resp->www_authenticate)) < 0) {
				ib_error_prefix("%s: %s", r->what, object);
				goto out;
			}
			if (rc == 0) {
				attempt--;
				continue;
			}
			rc = 0;
			no_credentials = 1;
		}
		long d = ib_push__retry_delay(cc, resp->status, attempt, r->attempts, resp->retry_after);
		if (d < 0)
			break;
		if (r->cb && r->cb->log) {
			char line[512];
			snprintf(line, sizeof line, "%s: %s: %s, retrying in %ldms", r->what, object,
				 cc != CURLE_OK ? curl_easy_strerror(cc) : "server error", d);
			pthread_mutex_lock(&cb_lock);
			r->cb->log(IB_LOG_WARNING, line, r->cb->payload);
			pthread_mutex_unlock(&cb_lock);
		}
		usleep((useconds_t)d * 1000);
	}
	if (cc != CURLE_OK) {
		rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "%s: %s: %s://%s: %s", r->what, object, r->scheme, r->host,
				   errbuf[0] ? errbuf : curl_easy_strerror(cc));
	} else if (resp->status < 200 || resp->status >= 300) {
		ib_push__error_text(&msg, resp->error_body.ptr, resp->error_body.size);
		int code = resp->status == 404 ? IB_ENOTFOUND
			   : resp->status == 401 || resp->status == 403 ? IB_EINVALID : IB_ERROR;
		char hint[600] = "";
		if (no_credentials)
			snprintf(hint, sizeof hint, " (no credentials for %s: imagebuild login %s)", r->domain, r->domain);
		rc = ib_error_setc(code, IB_LAYER_PUSH, "%s: %s: %ld %s%s", r->what, object, resp->status,
				   msg.size ? msg.ptr : x.reason, hint);
	}
out:
	ib_buf_dispose(&url);
	ib_buf_dispose(&msg);
	return rc;
}

int ib_registry_ping(ib_registry *r)
{
	ib_response resp = { 0 };
	int rc = ib_registry_request(r, &resp, "GET", "/v2/", NULL, NULL, NULL, "/v2/");
	ib_response_dispose(&resp);
	return rc;
}
