/*
 * The registry client: one repository of one registry over one curl handle
 * (so one thread). Every request goes through ib_push__registry_request(), which
 * authenticates on a 401 (Basic, or a Bearer token from the challenge's
 * realm), falls back to plain HTTP for insecure registries that do not
 * speak TLS, and retries transient failures with backoff.
 */
#include "push/internal.h"
#include "util/callback.h"
#include "push/http.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct ib_push__registry {
	char *domain;     /* as in references: docker.io, localhost:5000 */
	const char *host; /* what serves it (points into domain or a constant) */
	char *path;       /* the repository: library/busybox; "" for login */
	char *actions;    /* token scope actions: "pull", "pull,push" */
	char *what;       /* "push to localhost:5000/app", for errors */
	const char *scheme;
	int scheme_known; /* a response came back over `scheme` */
	int insecure;
	/*
	 * An insecure registry that answered in plain HTTP is remembered in the
	 * store (`memo`: <root>/hosts/<host>.http, ib_push__registry_memo) so that
	 * the next command asks it in HTTP first, without a TLS attempt (a TLS
	 * context, a handshake and a second connection: ~5 ms, as long as a push
	 * again takes otherwise). `guessed`: the scheme is the memo's, not
	 * confirmed yet; when plain HTTP fails there, HTTPS is tried and the memo
	 * forgotten.
	 */
	char *memo;
	int guessed;
	char *ca_file;
	unsigned int attempts;
	unsigned int stall; /* seconds: the low-speed window, and how long an error body is read */
	char *user, *pass;
	char *identity_token; /* an OAuth2 refresh token, traded at the token realm (then `pass` is NULL) */
	char *auth;       /* the Authorization header value, once known */
	ib_push__calls *calls; /* the call's callbacks and their lock; the first client's, shared by its clones */
	int owns_calls;
	int plain;        /* a plain download (ib_push__http_get): no registry auth */
	CURL *curl;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void ib_push__response_dispose(ib_push__response *r)
{
	free(r->location);
	free(r->content_type);
	free(r->docker_digest);
	free(r->www_authenticate);
	free(r->range);
	free(r->last_modified);
	ib_buf_dispose(&r->error_body);
	memset(r, 0, sizeof *r);
}

static int dup_opt(char **out, const char *s)
{
	*out = NULL;
	return !s || (*out = ib_strdup(s)) ? 0 : IB_ERROR;
}

/* Free a string that held a secret (a password, a token), wiping it first. */
static void free_secret(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

/*
 * Loading Debian's libcurl is ~28 shared objects (TLS, Kerberos, LDAP, SSH:
 * ~10 ms of the loader on the reference machine), then OpenSSL's
 * initialisation: as long as a push again (one HEAD) takes. Done on another
 * core while the caller reads the store, it costs the caller only what is
 * left of it when the first request is made (client_alloc waits for it).
 */
static void *warm_main(void *arg)
{
	(void)arg;
	if (ib_push__curl_load() == 0)
		pthread_once(&curl_once, curl_init);
	ib_error_clear(); /* this thread's: the caller's client_alloc says it again */
	return NULL;
}

int ib_push__curl_warm(pthread_t *t)
{
	if (ib_push__curl_loaded())
		return 1;
	return pthread_create(t, NULL, warm_main, NULL) == 0 ? 0 : 1;
}

void ib_push__curl_warm_join(pthread_t t, int started)
{
	if (started == 0)
		pthread_join(t, NULL);
}

static int client_alloc(ib_push__registry **out, const char *domain, const char *path, const char *actions,
			const char *what)
{
	if (ib_push__curl_load() < 0)
		return IB_ERROR;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
	ib_push__registry *r = ib_calloc(1, sizeof *r);
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

int ib_registry_options_init(ib_registry_options *opts, unsigned int version)
{
	if (!opts)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "ib_registry_options_init: NULL options");
	if (version == 1) { /* only version 1's size: the caller's struct may be that */
		ib_push__registry_options_v1 *old = (ib_push__registry_options_v1 *)(void *)opts;
		memset(old, 0, sizeof *old);
		old->version = 1;
		return 0;
	}
	if (version == 2) { /* only version 2's size */
		ib_push__registry_options_v2 *old = (ib_push__registry_options_v2 *)(void *)opts;
		memset(old, 0, sizeof *old);
		old->version = 2;
		return 0;
	}
	if (version != IB_REGISTRY_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "ib_registry_options version %u is not supported",
				     version);
	static const ib_registry_options d = IB_REGISTRY_OPTIONS_INIT; /* zero padding (C11 6.7.9): bindings compare bytes */
	memcpy(opts, &d, sizeof *opts);
	return 0;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *payload)
{
	(void)h;
	(void)access;
	ib_push__calls *c = payload;
	pthread_mutex_lock(&c->share_locks[(unsigned)data < CURL_LOCK_DATA_LAST ? data : 0]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *payload)
{
	(void)h;
	ib_push__calls *c = payload;
	pthread_mutex_unlock(&c->share_locks[(unsigned)data < CURL_LOCK_DATA_LAST ? data : 0]);
}

/*
 * The call's shared caches (ib_push__calls), attached to its first client;
 * none is no error. Not the connection cache: curl's shared connection
 * cache is not safe across threads (its known bug 11.11), so each client
 * keeps its own connections alive, one per thread.
 */
static void share_new(ib_push__registry *r)
{
	ib_push__calls *c = r->calls;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	CURLSH *sh = curl_share_init();
	if (!sh)
		return;
	if (curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_USERDATA, c) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
	    curl_easy_setopt(r->curl, CURLOPT_SHARE, sh) != CURLE_OK) {
		curl_share_cleanup(sh);
		return;
	}
	c->share = sh;
}

int ib_push__registry_new(ib_push__registry **out, const char *domain, const char *path, const char *actions,
		    const ib_registry_options *opts, const ib_callbacks *cb, const char *what)
{
	return ib_push__registry_new_at(out, domain, path, actions, opts, cb, what, NULL, 0);
}

int ib_push__registry_new_at(ib_push__registry **out, const char *domain, const char *path, const char *actions,
			     const ib_registry_options *opts, const ib_callbacks *cb, const char *what,
			     const ib_push__regconf *conf, int insecure)
{
	static const ib_registry_options defaults = IB_REGISTRY_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	/*
	 * version 1 is version 2 and a callbacks field (read by ib_pull/ib_push's
	 * version 1); version 3 adds auth_file and registries_conf, read only then
	 */
	if (opts->version < 1 || opts->version > IB_REGISTRY_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "registry options: unknown version %u", opts->version);
	if (ib_callback_validate(cb, IB_LAYER_PUSH) < 0)
		return IB_EINVALID;
	ib_push__regconf own;
	int rc = conf ? 0 : ib_push__regconf_load(&own, opts);
	if (rc < 0) {
		ib_error_prefix("%s", what);
		return rc;
	}
	rc = ib_push__regconf_host(&insecure, conf ? conf : &own, domain);
	if (!conf)
		ib_push__regconf_dispose(&own);
	if (rc < 0) {
		ib_error_prefix("%s", what);
		return rc;
	}
	ib_push__registry *r = NULL;
	rc = client_alloc(&r, domain, path, actions, what);
	if (rc == 0 && !(r->calls = ib_calloc(1, sizeof *r->calls)))
		rc = IB_ERROR;
	if (rc == 0) {
		r->owns_calls = 1;
		r->calls->cb = cb;
		pthread_mutex_init(&r->calls->lock, NULL);
		share_new(r);
		r->insecure = insecure || opts->insecure || ib_push__default_insecure(domain);
		r->attempts = opts->attempts ? opts->attempts : 4;
		rc = ib_push__stall_seconds(&r->stall);
		if (rc == 0)
			rc = dup_opt(&r->ca_file, opts->tls_ca_file);
	}
	if (rc == 0 && opts->username) {
		if (dup_opt(&r->user, opts->username) < 0 || dup_opt(&r->pass, opts->password ? opts->password : "") < 0)
			rc = IB_ERROR;
	} else if (rc == 0) {
		ib_push__creds c;
		rc = ib_push__credentials(&c, domain, path, opts);
		if (rc == 0) {
			r->user = c.user;
			r->pass = c.pass;
			r->identity_token = c.identity_token;
		} else if (rc == IB_ENOTFOUND) { /* anonymous */
			ib_error_clear();
			rc = 0;
		}
		if (rc < 0)
			ib_error_prefix("%s: credentials", what);
	}
	if (rc < 0) {
		ib_push__registry_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void ib_push__registry_memo(ib_push__registry *r, const char *root)
{
	/* only an insecure registry may be asked in plain HTTP at all; a host is never a path */
	if (!r || !root || !r->insecure || r->scheme_known || r->memo || !r->host[0] || strchr(r->host, '/') ||
	    r->host[0] == '.')
		return;
	if (!(r->memo = ib_sprintf("%s/hosts/%s.http", root, r->host))) {
		ib_error_clear(); /* only a shortcut */
		return;
	}
	if (access(r->memo, F_OK) == 0) {
		r->scheme = "http";
		r->guessed = 1;
	}
}

/* The registry answered over plain HTTP after HTTPS failed: remembered (a shortcut: failures are ignored). */
static void memo_write(ib_push__registry *r)
{
	char *dir = ib_sprintf("%.*s", (int)(strrchr(r->memo, '/') - r->memo), r->memo);
	if (!dir) {
		ib_error_clear();
		return;
	}
	(void)mkdir(dir, 0755); /* EEXIST, or the open below fails */
	int fd = open(r->memo, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd >= 0)
		close(fd);
	free(dir);
}

int ib_push__registry_clone(ib_push__registry **out, const ib_push__registry *o)
{
	ib_push__registry *r = NULL;
	int rc = client_alloc(&r, o->domain, o->path, o->actions, o->what);
	if (rc == 0 && (dup_opt(&r->ca_file, o->ca_file) < 0 || dup_opt(&r->user, o->user) < 0 ||
			dup_opt(&r->pass, o->pass) < 0 || dup_opt(&r->identity_token, o->identity_token) < 0 ||
			dup_opt(&r->auth, o->auth) < 0))
		rc = IB_ERROR;
	if (rc < 0) {
		ib_push__registry_free(r);
		return rc;
	}
	r->scheme = o->scheme;
	r->scheme_known = o->scheme_known;
	r->insecure = o->insecure;
	r->attempts = o->attempts;
	r->stall = o->stall;
	r->calls = o->calls;
	/* curl_easy_reset() keeps it: the clone's requests use the call's connections */
	if (r->calls && r->calls->share)
		curl_easy_setopt(r->curl, CURLOPT_SHARE, r->calls->share);
	*out = r;
	return 0;
}

void ib_push__registry_free(ib_push__registry *r)
{
	if (!r)
		return;
	if (r->curl)
		curl_easy_cleanup(r->curl);
	free(r->memo);
	free(r->domain);
	free(r->path);
	free(r->actions);
	free(r->what);
	free(r->ca_file);
	free(r->user);
	free_secret(r->pass);
	free_secret(r->identity_token);
	free_secret(r->auth);
	if (r->owns_calls && r->calls) {
		/* the clones (worker threads) are gone, and this client's handle was cleaned up above */
		if (r->calls->share) {
			curl_share_cleanup(r->calls->share);
			for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
				pthread_mutex_destroy(&r->calls->share_locks[i]);
		}
		pthread_mutex_destroy(&r->calls->lock);
		free(r->calls);
	}
	free(r);
}

const char *ib_push__registry_what(const ib_push__registry *r)
{
	return r->what;
}

const char *ib_push__registry_path(const ib_push__registry *r)
{
	return r->path;
}

int ib_push__registry_progress(ib_push__registry *r, const char *id, const char *text, uint64_t cur, uint64_t total)
{
	ib_push__calls *c = r->calls;
	if (!c)
		return 0;
	/* one call's callbacks one at a time (its worker threads), not every call's */
	pthread_mutex_lock(&c->lock);
	int rc = c->stopped ? IB_EUSER : 0;
	if (rc == 0 && (rc = ib_callback_progress(c->cb, IB_PROGRESS_BYTES, id, text, cur, total, 0, r->what)) < 0)
		c->stopped = 1;
	else if (rc < 0)
		ib_callback_stopped(IB_EUSER, r->what); /* another thread's callback stopped the call */
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* curl's progress hook: the cancel flag is polled while bytes move (or not). */
static int on_xferinfo(void *payload, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	ib_push__registry *r = payload;
	return r->calls && (r->calls->stopped || ib_callback_cancelled(r->calls->cb));
}

int ib_push__registry_cancel_check(ib_push__registry *r)
{
	if (!r->calls)
		return 0;
	if (ib_callback_cancelled(r->calls->cb))
		return ib_callback_cancel_error(r->what);
	return 0;
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

/* ---- limits ---- */

int ib_push__stall_seconds(unsigned int *out)
{
	const char *e = getenv("IMAGEBUILD_REGISTRY_STALL_TIMEOUT");
	*out = IB_PUSH_STALL_DEFAULT;
	if (!e || !*e)
		return 0;
	char *end;
	unsigned long v = strtoul(e, &end, 10);
	if (!isdigit((unsigned char)*e) || *end || v == 0 || v > 3600)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH,
				     "IMAGEBUILD_REGISTRY_STALL_TIMEOUT=`%s`: not a number of seconds from 1 to 3600", e);
	*out = (unsigned int)v;
	return 0;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- URLs and origins ---- */

int ib_push__resolve(ib_buf *out, ib_buf *origin, const char *base, const char *url)
{
	CURLU *h = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *full = NULL;
	int rc = 0;
	if (!h)
		return ib_error_oom();
	CURLUcode uc = base ? curl_url_set(h, CURLUPART_URL, base, CURLU_NON_SUPPORT_SCHEME) : CURLUE_OK;
	if (uc == CURLUE_OK)
		uc = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (uc == CURLUE_OK)
		uc = curl_url_get(h, CURLUPART_SCHEME, &scheme, 0);
	if (uc != CURLUE_OK) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "`%s`: not a URL (%s)", url, curl_url_strerror(uc));
		goto out;
	}
	for (char *c = scheme; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "`%s`: scheme `%s` (only http and https are used)", url, scheme);
		goto out;
	}
	uc = curl_url_get(h, CURLUPART_HOST, &host, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	if (uc == CURLUE_OK)
		uc = curl_url_get(h, CURLUPART_URL, &full, 0);
	if (uc != CURLUE_OK) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "`%s`: not a URL (%s)", url, curl_url_strerror(uc));
		goto out;
	}
	for (char *c = host; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (out && (rc = ib_buf_set(out, full, strlen(full))) == 0)
		rc = ib_buf_puts(out, "");
	if (rc == 0 && origin) {
		ib_buf_clear(origin);
		rc = ib_buf_printf(origin, "%s://%s:%s", scheme, host, port);
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(full);
	curl_url_cleanup(h);
	return rc;
}

/* The origin the registry's credentials and token belong to: its scheme, host and port. */
static int registry_origin(ib_buf *out, const ib_push__registry *r)
{
	ib_buf url = IB_BUF_INIT;
	int rc = ib_push__url(&url, r->scheme, r->host, "/v2/");
	if (rc == 0)
		rc = ib_push__resolve(NULL, out, NULL, url.ptr);
	ib_buf_dispose(&url);
	return rc;
}

/* Nothing goes over plain HTTP once the registry is reached over HTTPS (no downgrade). */
static int no_downgrade(const ib_push__registry *r, const char *url, const char *origin)
{
	if (strcmp(r->scheme, "https") || !strncmp(origin, "https://", 8))
		return 0;
	return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "`%s`: plain HTTP, and the registry is reached over HTTPS", url);
}

/* ---- one exchange ---- */

typedef struct {
	ib_push__response *resp;
	const ib_push__sink *sink;
	int sink_rc;
	const ib_push__source *body;
	uint64_t offset, reported;
	ib_push__registry *r;
	char reason[128];
	/* this response */
	double started;      /* when the request went out */
	size_t header_bytes;
	int headers_done;    /* the final response's headers are all in */
	int truncated;       /* we stopped reading a body we do not keep past its cap */
	int foreign;         /* it came from another origin than the credentials' (a redirect) */
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
	ib_push__response *r = x->resp;
	x->header_bytes += len;
	if (x->header_bytes > IB_PUSH_HEADERS_LIMIT) {
		x->sink_rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "response headers larger than %u bytes",
					   IB_PUSH_HEADERS_LIMIT);
		return 0;
	}
	if (len > 5 && !strncmp(data, "HTTP/", 5)) { /* a new response (100 Continue) */
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
		free(r->last_modified);
		memset(r, 0, sizeof *r);
		r->error_body = err;
		r->status = status;
		x->headers_done = 0;
		const char *reason = sp ? memchr(sp + 1, ' ', len - (size_t)(sp + 1 - data)) : NULL;
		snprintf(x->reason, sizeof x->reason, "%.*s", reason ? (int)strcspn(reason + 1, "\r\n") : 0,
			 reason ? reason + 1 : "");
		return len;
	}
	if ((data[0] == '\r' || data[0] == '\n') && r->status >= 200)
		x->headers_done = 1;
	set_header(&r->location, header_value(data, len, "Location"));
	set_header(&r->content_type, header_value(data, len, "Content-Type"));
	set_header(&r->docker_digest, header_value(data, len, "Docker-Content-Digest"));
	set_header(&r->www_authenticate, header_value(data, len, "WWW-Authenticate"));
	set_header(&r->range, header_value(data, len, "Range"));
	set_header(&r->last_modified, header_value(data, len, "Last-Modified"));
	char *ra = header_value(data, len, "Retry-After");
	if (ra) {
		r->retry_after = strtol(ra, NULL, 10);
		free(ra);
	}
	return len;
}

/* A body we only look at (errors, redirects, /v2/): not kept past its cap, nor read for longer than the stall time. */
static int body_glanced(const exchange *x)
{
	return x->resp->status < 200 || x->resp->status >= 300 || !x->sink;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *payload)
{
	exchange *x = payload;
	size_t len = size * nmemb;
	ib_push__response *r = x->resp;
	if (body_glanced(x)) {
		size_t room = IB_PUSH_ERROR_BODY_LIMIT - r->error_body.size;
		if (ib_buf_put(&r->error_body, data, len < room ? len : room) < 0)
			return 0;
		if (len >= room || now_seconds() - x->started > (double)x->r->stall) {
			x->truncated = 1; /* enough of it: stop here (a CURLE_WRITE_ERROR we take back) */
			return 0;
		}
		return len;
	}
	const ib_push__sink *s = x->sink;
	if (s->buf) {
		if (s->buf->size + len > s->limit) {
			x->sink_rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "larger than %zu bytes (the limit)", s->limit);
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
	const ib_push__source *b = x->body;
	if (b->fd >= 0) {
		if (want > b->fd_size - x->offset)
			want = (size_t)(b->fd_size - x->offset);
		ssize_t n = want ? pread(b->fd, out, want, (off_t)(b->fd_offset + x->offset)) : 0;
		if (n < 0)
			return CURL_READFUNC_ABORT;
		x->offset += (uint64_t)n;
		if (b->progress_id && x->offset - x->reported >= (1u << 20)) {
			x->reported = x->offset;
			if ((x->sink_rc = ib_push__registry_progress(x->r, b->progress_id, "Pushing", b->fd_offset + x->offset,
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

static void tls_options(ib_push__registry *r)
{
	CURL *c = r->curl;
	if (r->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, r->ca_file);
	if (r->insecure && !r->ca_file) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

/*
 * One HTTP exchange with curl, redirects not followed (send_request() does that).
 * `auth` is the Authorization value for this URL, or NULL.
 */
static CURLcode perform(ib_push__registry *r, exchange *x, const char *method, const char *url, const char *accept,
			const char *auth, char *errbuf)
{
	CURL *c = r->curl;
	curl_easy_reset(c);
	struct curl_slist *h = NULL;
	char line[4096];
	if (accept) {
		snprintf(line, sizeof line, "Accept: %s", accept);
		h = curl_slist_append(h, line);
	}
	if (auth) {
		snprintf(line, sizeof line, "Authorization: %s", auth);
		h = curl_slist_append(h, line);
	}
	const ib_push__source *b = x->body;
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
	/* http and https only, whatever a registry names; redirects are ours to follow */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	/*
	 * A stalled transfer fails (and is retried): under 1 KiB/s for the
	 * stall time; an upload gets ten times that, as a registry may think a
	 * while before it answers the last byte.
	 */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)IB_PUSH_LOW_SPEED);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(b ? 10 * r->stall : r->stall));
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
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
	x->started = now_seconds();
	x->header_bytes = 0;
	x->headers_done = x->truncated = 0;
	CURLcode cc = curl_easy_perform(c);
	curl_slist_free_all(h);
	/*
	 * A body we only glance at ends when we stopped reading it, or when it
	 * stalled or broke after the headers: the answer is the status.
	 */
	if (cc != CURLE_OK && x->sink_rc == 0 && x->headers_done && body_glanced(x) &&
	    (x->truncated || cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_PARTIAL_FILE || cc == CURLE_RECV_ERROR))
		cc = CURLE_OK;
	return cc;
}

static int is_redirect(long status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/*
 * Send a request to `url`, following redirects of a GET or HEAD ourselves
 * (at most 10): `auth` goes only to `auth_origin` (scheme, host, port),
 * never to where a redirect leads elsewhere; http and https only, nothing
 * over http once the registry is reached over https. x->foreign says that
 * the answer came from another origin. <0 (an error set) when a URL is
 * refused; else the curl code in *cc.
 */
static int send_request(ib_push__registry *r, exchange *x, CURLcode *cc, const char *method, const char *url,
			const char *accept, const char *auth_origin, const char *auth, char *errbuf)
{
	ib_buf cur = IB_BUF_INIT, next = IB_BUF_INIT, origin = IB_BUF_INIT;
	int follow = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	int rc = ib_push__resolve(&cur, &origin, NULL, url);
	if (rc == 0)
		rc = no_downgrade(r, cur.ptr, origin.ptr);
	for (int hops = 0; rc == 0; hops++) {
		x->foreign = strcmp(origin.ptr, auth_origin) != 0;
		*cc = perform(r, x, method, cur.ptr, accept, x->foreign ? NULL : auth, errbuf);
		if (*cc != CURLE_OK || x->sink_rc < 0 || !follow || !is_redirect(x->resp->status) || !x->resp->location)
			break;
		if (hops == 10) {
			rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "more than 10 redirects (the last to `%s`)",
					   x->resp->location);
			break;
		}
		if ((rc = ib_push__resolve(&next, &origin, cur.ptr, x->resp->location)) < 0 ||
		    (rc = no_downgrade(r, next.ptr, origin.ptr)) < 0) {
			ib_error_prefix("redirect from `%s`", cur.ptr);
			break;
		}
		ib_buf t = cur;
		cur = next;
		next = t;
	}
	ib_buf_dispose(&cur);
	ib_buf_dispose(&next);
	ib_buf_dispose(&origin);
	return rc;
}

int ib_push__digest_header(ib_push__registry *r, const ib_push__response *resp, const ib_digest *d, const char *object)
{
	const char *h = resp->docker_digest;
	if (!h)
		return 0;
	ib_digest theirs;
	int rc = ib_digest_parse(&theirs, h);
	if (rc == IB_EUNSUPPORTED) { /* sha512: the content is checked against our own digest anyway */
		ib_error_clear();
		return 0;
	}
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, d);
	if (rc < 0 || !ib_digest_equal(&theirs, d))
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH,
				     "%s: %s: the registry's Docker-Content-Digest header `%.100s` is not %s", r->what, object,
				     h, ds);
	return 0;
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

/* "Basic base64(user:password)", a new string (free with free_secret). */
static char *basic_value(const ib_push__registry *r)
{
	ib_buf up = IB_BUF_INIT, enc = IB_BUF_INIT;
	char *v = NULL;
	if (ib_buf_printf(&up, "%s:%s", r->user, r->pass) == 0 && ib_push__base64(&enc, up.ptr, up.size) == 0)
		v = ib_sprintf("Basic %s", enc.ptr);
	if (up.ptr)
		memset(up.ptr, 0, up.size);
	if (enc.ptr)
		memset(enc.ptr, 0, enc.size);
	ib_buf_dispose(&up);
	ib_buf_dispose(&enc);
	return v;
}

static int basic_auth(ib_push__registry *r)
{
	char *v = basic_value(r);
	if (!v)
		return IB_ERROR;
	free_secret(r->auth);
	r->auth = v;
	return 0;
}

/*
 * A Bearer token from the challenge's realm: a GET with service, scope and
 * account; the credentials (Basic) go to the realm's origin only, for this
 * request only. The realm must be http or https, and https when the
 * registry is reached over https.
 */
static int token_auth(ib_push__registry *r, const ib_push__challenge *ch)
{
	ib_buf url = IB_BUF_INIT, origin = IB_BUF_INIT, body = IB_BUF_INIT, msg = IB_BUF_INIT, form = IB_BUF_INIT;
	char *basic = NULL;
	int rc = ib_push__resolve(&url, &origin, NULL, ch->realm);
	if (rc == 0)
		rc = no_downgrade(r, url.ptr, origin.ptr);
	if (rc < 0) {
		ib_error_prefix("token realm");
		goto out;
	}
	/*
	 * With an identity token (an OAuth2 refresh token): a POST of
	 * grant_type=refresh_token (docker/distribution's token auth spec,
	 * "OAuth2"); else a GET with service, scope, account and Basic.
	 */
	int oauth = r->identity_token != NULL;
	ib_buf *params = oauth ? &form : &url;
	char sep = oauth ? 0 : strchr(url.ptr, '?') ? '&' : '?';
	if (oauth) {
		char *e = curl_easy_escape(r->curl, r->identity_token, 0);
		rc = e ? ib_buf_printf(&form, "grant_type=refresh_token&client_id=imagebuild&refresh_token=%s", e) : IB_ERROR;
		if (e) {
			memset(e, 0, strlen(e));
			curl_free(e);
		}
		sep = '&';
	}
	if (rc == 0 && ch->service) {
		char *e = curl_easy_escape(r->curl, ch->service, 0);
		rc = ib_buf_printf(params, "%cservice=%s", sep, e ? e : "");
		curl_free(e);
		sep = '&';
	}
	if (rc == 0 && r->path && *r->path) {
		char *scope = ib_sprintf("repository:%s:%s", r->path, r->actions);
		char *e = scope ? curl_easy_escape(r->curl, scope, 0) : NULL;
		rc = e ? ib_buf_printf(params, "%cscope=%s", sep, e) : IB_ERROR;
		curl_free(e);
		free(scope);
		sep = '&';
	}
	if (rc == 0 && r->user && !oauth) {
		char *e = curl_easy_escape(r->curl, r->user, 0);
		rc = ib_buf_printf(&url, "%caccount=%s", sep, e ? e : "");
		curl_free(e);
	}
	if (rc == 0 && r->user && r->pass && !oauth && !(basic = basic_value(r)))
		rc = IB_ERROR;
	if (rc < 0)
		goto out;
	ib_push__source src = { .fd = -1, .content_type = "application/x-www-form-urlencoded" };
	if (oauth) {
		src.data = form.ptr;
		src.len = form.size;
	}
	ib_push__response resp = { 0 };
	ib_push__sink sink = { &body, IB_PUSH_TOKEN_LIMIT, NULL, NULL, NULL };
	exchange x = { .resp = &resp, .sink = &sink, .r = r, .body = oauth ? &src : NULL };
	char errbuf[CURL_ERROR_SIZE];
	CURLcode cc = CURLE_OK;
	for (unsigned int attempt = 1;; attempt++) {
		ib_buf_clear(&body);
		x.sink_rc = 0;
		x.offset = 0;
		if ((rc = send_request(r, &x, &cc, oauth ? "POST" : "GET", url.ptr, "application/json", origin.ptr, basic,
				       errbuf)) < 0)
			break;
		long d = x.sink_rc < 0 ? -1 : ib_push__retry_delay(cc, resp.status, attempt, r->attempts, resp.retry_after);
		if (d < 0)
			break;
		usleep((useconds_t)d * 1000);
	}
	if (rc < 0) {
		ib_error_prefix("token from %s", ch->realm);
	} else if (x.sink_rc < 0) {
		rc = x.sink_rc;
		ib_error_prefix("token from %s", ch->realm);
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
			free_secret(r->auth);
			r->auth = ib_sprintf("Bearer %s", tok);
			rc = r->auth ? 0 : IB_ERROR;
		}
		json_decref(j);
	}
	ib_push__response_dispose(&resp);
out:
	free_secret(basic);
	if (form.ptr)
		memset(form.ptr, 0, form.size);
	ib_buf_dispose(&form);
	ib_buf_dispose(&url);
	ib_buf_dispose(&origin);
	if (body.ptr)
		memset(body.ptr, 0, body.size);
	ib_buf_dispose(&body);
	ib_buf_dispose(&msg);
	return rc;
}

/* Answer a challenge: 0 when there is something new to try, 1 when there is nothing (no credentials). */
static int authenticate(ib_push__registry *r, const char *header)
{
	ib_push__challenge ch;
	int rc = ib_push__challenge_parse(&ch, header);
	if (rc < 0)
		return rc;
	if (!strcasecmp(ch.scheme, "Bearer")) {
		rc = token_auth(r, &ch);
	} else if (!strcasecmp(ch.scheme, "Basic")) {
		if (r->identity_token && !r->pass)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH,
					   "the credentials are an identity token, and the registry asks for Basic auth (it needs a token server)");
		else
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

int ib_push__registry_request(ib_push__registry *r, ib_push__response *resp, const char *method, const char *rel,
			const char *accept, const ib_push__source *body, const ib_push__sink *sink, const char *object)
{
	ib_buf url = IB_BUF_INIT, msg = IB_BUF_INIT, origin = IB_BUF_INIT;
	exchange x = { .resp = resp, .sink = sink, .body = body, .r = r };
	char errbuf[CURL_ERROR_SIZE] = "";
	int rc = 0, auth_tried = 0, no_credentials = 0;
	CURLcode cc = CURLE_OK;
	for (unsigned int attempt = 1;; attempt++) {
		ib_push__response_dispose(resp);
		x.offset = x.reported = 0;
		x.sink_rc = 0;
		if (sink && sink->buf)
			ib_buf_clear(sink->buf);
		if (sink && sink->reset && (rc = sink->reset(sink->payload)) < 0)
			goto out;
		if ((rc = ib_push__url(&url, r->scheme, r->host, rel)) < 0 || (rc = registry_origin(&origin, r)) < 0 ||
		    (rc = send_request(r, &x, &cc, method, url.ptr, accept, origin.ptr, r->auth, errbuf)) < 0) {
			ib_error_prefix("%s: %s", r->what, object);
			goto out;
		}
		if (x.sink_rc < 0) {
			rc = x.sink_rc;
			ib_error_prefix("%s: %s", r->what, object);
			goto out;
		}
		if (cc == CURLE_ABORTED_BY_CALLBACK) { /* on_xferinfo: cancelled, or another thread's callback stopped it */
			if ((rc = ib_push__registry_cancel_check(r)) == 0)
				rc = ib_callback_stopped(IB_EUSER, r->what);
			goto out;
		}
		if (cc != CURLE_OK && r->insecure && !r->scheme_known && !strcmp(r->scheme, "https") && tls_failure(cc) &&
		    rel[0] == '/' && !x.foreign) {
			r->scheme = "http"; /* an insecure registry without TLS */
			attempt--;
			continue;
		}
		if ((cc != CURLE_OK || resp->status == 400) && r->guessed && !r->scheme_known && rel[0] == '/' &&
		    !x.foreign) {
			/*
			 * it spoke plain HTTP last time, not now (no answer, or Go's "400 Client
			 * sent an HTTP request to an HTTPS server"): HTTPS first again, as
			 * without the memo
			 */
			r->scheme = "https";
			r->guessed = 0;
			unlink(r->memo);
			attempt--;
			continue;
		}
		if (cc == CURLE_OK && !r->scheme_known && r->memo && !r->guessed && !strcmp(r->scheme, "http"))
			memo_write(r);
		if (cc == CURLE_OK)
			r->scheme_known = 1;
		/* a challenge is answered only when the registry itself made it (not a redirect's target) */
		if (cc == CURLE_OK && resp->status == 401 && !auth_tried && resp->www_authenticate && !x.foreign &&
		    !r->plain) {
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
		if (r->calls && r->calls->cb && r->calls->cb->log) {
			char line[512];
			snprintf(line, sizeof line, "%s: %s: %s, retrying in %ldms", r->what, object,
				 cc != CURLE_OK ? curl_easy_strerror(cc) : "server error", d);
			pthread_mutex_lock(&r->calls->lock);
			r->calls->cb->log(IB_LOG_WARNING, line, r->calls->cb->payload);
			pthread_mutex_unlock(&r->calls->lock);
		}
		/* wait, but not past a cancellation */
		for (long waited = 0; waited < d; waited += 20) {
			if ((rc = ib_push__registry_cancel_check(r)) < 0)
				goto out;
			usleep((useconds_t)(d - waited < 20 ? d - waited : 20) * 1000);
		}
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
		else if (x.foreign && resp->status == 401)
			snprintf(hint, sizeof hint, " (from a redirect's target, which gets no credentials)");
		rc = ib_error_setc(code, IB_LAYER_PUSH, "%s: %s: %ld %s%s", r->what, object, resp->status,
				   msg.size ? msg.ptr : x.reason, hint);
	}
out:
	ib_buf_dispose(&url);
	ib_buf_dispose(&msg);
	ib_buf_dispose(&origin);
	return rc;
}

int ib_push__registry_ping(ib_push__registry *r)
{
	ib_push__response resp = { 0 };
	int rc = ib_push__registry_request(r, &resp, "GET", "/v2/", NULL, NULL, NULL, "/v2/");
	ib_push__response_dispose(&resp);
	return rc;
}

/* ---- plain downloads (http.h) ---- */

typedef struct {
	const ib_push__http_request *g;
	ib_push__registry *r;
	uint64_t got, reported;
} http_body;

static int http_reset(void *payload)
{
	http_body *hb = payload;
	hb->got = hb->reported = 0;
	return hb->g->reset ? hb->g->reset(hb->g->payload) : 0;
}

static int http_write(const void *data, size_t len, void *payload)
{
	http_body *hb = payload;
	const ib_push__http_request *g = hb->g;
	hb->got += len;
	if (g->max_size && hb->got > g->max_size)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "larger than %llu bytes (the limit)",
				     (unsigned long long)g->max_size);
	if (g->progress_id && hb->got - hb->reported >= (1u << 20)) {
		curl_off_t total = -1;
		curl_easy_getinfo(hb->r->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &total);
		hb->reported = hb->got;
		int rc = ib_push__registry_progress(hb->r, g->progress_id, "Downloading", hb->got,
					      total > 0 ? (uint64_t)total : 0);
		if (rc < 0)
			return rc;
	}
	return g->write(data, len, g->payload);
}

int ib_push__http_get(const char *url, const ib_push__http_request *g, int64_t *last_modified)
{
	static const ib_registry_options defaults = IB_REGISTRY_OPTIONS_INIT;
	const ib_registry_options *o = g->registry ? g->registry : &defaults;
	const char *what = g->what ? g->what : "download";
	ib_buf origin = IB_BUF_INIT;
	ib_push__registry *r = NULL;
	ib_push__response resp = { 0 };
	if (last_modified)
		*last_modified = -1;
	/* http or https, and the origin it names (the client's "host": nothing is sent to it but the GET) */
	int rc = ib_push__resolve(NULL, &origin, NULL, url);
	if (rc == 0)
		rc = client_alloc(&r, strstr(origin.ptr, "://") + 3, "", "", what);
	if (rc == 0) {
		/* the system's CAs, verified: a registry's `insecure` and CA file are not for other hosts */
		r->plain = 1;
		r->scheme = !strncmp(origin.ptr, "https:", 6) ? "https" : "http";
		r->scheme_known = 1;
		r->host = r->domain;
		r->attempts = o->attempts ? o->attempts : 4;
		if (!(r->calls = ib_calloc(1, sizeof *r->calls))) {
			rc = IB_ERROR;
		} else {
			r->owns_calls = 1;
			r->calls->cb = g->callbacks;
			pthread_mutex_init(&r->calls->lock, NULL);
			rc = ib_push__stall_seconds(&r->stall);
		}
	}
	http_body hb = { g, r, 0, 0 };
	ib_push__sink sink = { NULL, 0, http_write, http_reset, &hb };
	if (rc == 0)
		rc = ib_push__registry_request(r, &resp, "GET", url, NULL, NULL, &sink, url);
	else
		ib_error_prefix("%s: `%s`", what, url);
	if (rc == 0 && last_modified && resp.last_modified) {
		time_t t = curl_getdate(resp.last_modified, NULL);
		*last_modified = t > 0 ? (int64_t)t : -1;
	}
	if (rc == 0 && g->progress_id)
		rc = ib_push__registry_progress(r, g->progress_id, "Download complete", hb.got, hb.got);
	ib_push__response_dispose(&resp);
	ib_push__registry_free(r);
	ib_buf_dispose(&origin);
	return rc;
}
