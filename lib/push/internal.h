/* The push layer's internals: the registry client, auth, credentials. */
#ifndef IB_PUSH_INTERNAL_H
#define IB_PUSH_INTERNAL_H

#include "imagebuild/push.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "push/regconf.h"

#include <curl/curl.h>
#include <pthread.h>

/* curl.h defines these three as macros: the forwarders' names (curl_lazy.c, util/lazy_names.h) */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_share_setopt
#define curl_easy_setopt ib_lazy__curl_easy_setopt
#define curl_easy_getinfo ib_lazy__curl_easy_getinfo
#define curl_share_setopt ib_lazy__curl_share_setopt
CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...);
CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...);
CURLSHcode curl_share_setopt(CURLSH *share, CURLSHoption option, ...);

/*
 * libcurl is opened on first use (curl_lazy.c): load it, with the error set
 * naming the library when it cannot be; and whether it is loaded (tests).
 */
int ib_push__curl_load(void);
int ib_push__curl_loaded(void);
/*
 * Start loading and initialising libcurl on a thread of its own (a call that
 * will talk to a registry, while it reads the store first); 0 when started
 * (join it with ib_push__curl_warm_join), 1 when there is nothing to do.
 */
int ib_push__curl_warm(pthread_t *t);
void ib_push__curl_warm_join(pthread_t t, int started);

/* ---- names (auth.c) ---- */

/* The host that serves `domain`'s API: docker.io → registry-1.docker.io. */
const char *ib_push__api_host(const char *domain);
/* The key of `domain` in Docker's config.json: docker.io → https://index.docker.io/v1/. */
const char *ib_push__config_key(const char *domain);
/* 1 when Docker treats `domain` as insecure by default (localhost, 127.0.0.0/8, ::1). */
int ib_push__default_insecure(const char *domain);

/* ---- WWW-Authenticate (auth.c) ---- */

typedef struct {
	char *scheme;   /* "Bearer", "Basic" */
	char *realm;
	char *service;
	char *scope;
} ib_push__challenge;
int ib_push__challenge_parse(ib_push__challenge *out, const char *header);
void ib_push__challenge_dispose(ib_push__challenge *c);

/* ---- Docker's config file (auth.c) ---- */

/* The config.json path: `given`, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
int ib_push__config_path(ib_buf *out, const char *given);
/* user and password for `domain` in `auths` (helpers are not run); IB_ENOTFOUND when none (no file, no entry). */
int ib_push__config_get(char **user, char **pass, const char *path, const char *domain);
/* Record (user, pass) for `domain`, or remove it (user NULL); mode 0600, atomically. */
int ib_push__config_set(const char *path, const char *domain, const char *user, const char *pass);
/* The same; with IB_PUSH_CONFIG_EMPTY (and user NULL) the key stays, as `{}` (docker's entry beside a helper). */
#define IB_PUSH_CONFIG_EMPTY 1u
int ib_push__config_put(const char *path, const char *domain, const char *user, const char *pass, unsigned int flags);

/* ---- registries.conf (regconf.c; parsed by regconf_toml.cpp) ---- */

/* The file: `registries_conf` ("none": out is empty), else $CONTAINERS_REGISTRIES_CONF, else /etc/containers/registries.conf. */
int ib_push__regconf_path(ib_buf *out, const ib_registry_options *opts);
/* Read and parse it; a missing file is an empty configuration. */
int ib_push__regconf_load(ib_push__regconf *out, const ib_registry_options *opts);
/* The [[registry]] whose prefix matches `name` ("host/path") the longest, or NULL. */
int ib_push__regconf_find(const ib_push__registry_conf **out, const ib_push__regconf *c, const char *name);
/* A registry host: an error when blocked; `insecure` set to 1 when insecure. */
int ib_push__regconf_host(int *insecure, const ib_push__regconf *c, const char *domain);

/* A place a pull tries. */
typedef struct {
	char *domain;
	char *path;
	int insecure;
	int mirror;
} ib_push__pull_source;
typedef struct {
	ib_push__pull_source *v;
	size_t n;
} ib_push__source_list;
/* The mirrors of `domain/path` (those that serve tags or digests as `by_digest` asks), then the registry. */
int ib_push__pull_sources(ib_push__source_list *out, const ib_push__regconf *c, const char *domain, const char *path,
			  int by_digest);
void ib_push__sources_dispose(ib_push__source_list *l);
/* 1 when the reference names no registry (docker's rule). */
int ib_push__unqualified(const char *ref);
/* An unqualified `ref` with unqualified-search-registries not starting with docker.io: refused. */
int ib_push__check_search(const ib_push__regconf *c, const char *ref);

/* ---- credentials: helpers, auth files (creds.c) ---- */

/* Credentials: a user and password, or an identity token (an OAuth2 refresh token; user may be set). */
typedef struct {
	char *user;
	char *pass;
	char *identity_token;
} ib_push__creds;
void ib_push__creds_dispose(ib_push__creds *c); /* wipes the secrets */

#define IB_PUSH_CREDS_DOCKER 1u     /* Docker's config.json: credsStore applies too */
#define IB_PUSH_CREDS_NO_HELPERS 2u /* read `auths` only, run no helper */
/*
 * Credentials for `domain` in one auth file: its credential helper
 * (credHelpers; credsStore in Docker's config) when it names one, else
 * `auths`. IB_ENOTFOUND when none (no file, no entry, the helper has none).
 */
/* `repo` (may be NULL): the repository path, for auth.json's namespaced keys ("quay.io/org"). */
int ib_push__file_credentials(ib_push__creds *out, const char *path, const char *domain, const char *repo,
			      unsigned int flags);
/* The helper a parsed auth file names for `domain` (borrowed), or NULL. */
const char *ib_push__config_helper(const json_t *j, const char *domain, int docker);

/* The auth files, in podman's order (creds.c explains it). */
typedef struct {
	char *path;
	int docker; /* Docker's config.json */
} ib_push__auth_file;
int ib_push__auth_files(ib_push__auth_file **out, size_t *n, const ib_registry_options *opts);
void ib_push__auth_files_free(ib_push__auth_file *f, size_t n);
/* The file login and logout change: auth_file, else $REGISTRY_AUTH_FILE, else Docker's config. */
int ib_push__login_file(ib_buf *out, const ib_registry_options *opts);
/* Credentials for `domain` from the first auth file that has some; IB_ENOTFOUND when none. */
int ib_push__credentials(ib_push__creds *out, const char *domain, const char *repo, const ib_registry_options *opts);

/*
 * Run docker-credential-<helper> <action> with `input` on stdin; its stdout
 * into `out` (at most 1 MiB), its exit status into `exit_status`; its
 * stderr goes to /dev/null. A program not on PATH is an error (as docker).
 */
int ib_push__helper_run(ib_buf *out, int *exit_status, const char *helper, const char *action, const char *input,
			size_t input_len);
/* get: IB_ENOTFOUND when the helper has nothing for `server`. */
int ib_push__helper_get(ib_push__creds *out, const char *helper, const char *server);
int ib_push__helper_store(const char *helper, const char *server, const char *user, const char *secret);
int ib_push__helper_erase(const char *helper, const char *server);
/* list: {"server URL": "username", ...} */
int ib_push__helper_list(json_t **out, const char *helper);

int ib_push__base64(ib_buf *out, const void *data, size_t len);
int ib_push__base64_decode(ib_buf *out, const char *text);

/* ---- limits (client.c) ---- */

/*
 * Every transfer is bounded in size and time. A transfer slower than
 * IB_PUSH_LOW_SPEED bytes/s over the stall time (IB_PUSH_STALL_DEFAULT
 * seconds, or $IMAGEBUILD_REGISTRY_STALL_TIMEOUT; ten times that for an
 * upload) fails and is retried. Bodies we only look at (errors, redirects,
 * /v2/) are read up to IB_PUSH_ERROR_BODY_LIMIT and for at most the stall
 * time; response headers up to IB_PUSH_HEADERS_LIMIT. Manifests and
 * indexes are read up to IB_PUSH_MANIFEST_LIMIT (as distribution and
 * containerd), configs up to IB_PUSH_CONFIG_LIMIT, tokens up to
 * IB_PUSH_TOKEN_LIMIT; a blob stops at its descriptor's size.
 */
#define IB_PUSH_STALL_DEFAULT 30u
#define IB_PUSH_LOW_SPEED 1024u
#define IB_PUSH_ERROR_BODY_LIMIT (64u << 10)
#define IB_PUSH_HEADERS_LIMIT (256u << 10)
#define IB_PUSH_MANIFEST_LIMIT (4u << 20)
#define IB_PUSH_CONFIG_LIMIT (8u << 20)
#define IB_PUSH_TOKEN_LIMIT (1u << 20)
/* The stall time in seconds: IB_PUSH_STALL_DEFAULT, or $IMAGEBUILD_REGISTRY_STALL_TIMEOUT (1..3600). */
int ib_push__stall_seconds(unsigned int *out);

/* ---- URLs (client.c) ---- */

/*
 * `url` resolved against `base` (may be NULL) into `out` (may be NULL),
 * and its origin "scheme://host:port" (lower case, the port explicit) into
 * `origin` (may be NULL). IB_EINVALID for what is not an http or https URL.
 */
int ib_push__resolve(ib_buf *out, ib_buf *origin, const char *base, const char *url);

/* ---- retries (client.c) ---- */

/*
 * Whether attempt `attempt` (1-based) of `max` that ended with curl code
 * `cc` and HTTP `status` should be tried again: the delay in milliseconds
 * (`retry_after` seconds when the registry said so), or -1.
 */
long ib_push__retry_delay(CURLcode cc, long status, unsigned int attempt, unsigned int max, long retry_after);

/* ---- the registry client (client.c) ---- */

typedef struct ib_push__registry ib_push__registry;

/* Where a response body goes on success. */
typedef struct {
	ib_buf *buf;                    /* collect it here (up to `limit` bytes) */
	size_t limit;
	/* or stream it: write returns <0 to stop; reset (before each attempt) may be NULL */
	int (*write)(const void *data, size_t len, void *payload);
	int (*reset)(void *payload);
	void *payload;
} ib_push__sink;

/* Where a request body comes from. */
typedef struct {
	const void *data;   /* a buffer */
	size_t len;
	int fd;             /* or a file (from offset 0), when fd >= 0 */
	uint64_t fd_size;
	const char *content_type;
	const char *progress_id; /* report IB_PROGRESS_BYTES "Pushing" as it goes (may be NULL) */
	uint64_t fd_offset;      /* a part of the file: fd_size bytes from here (PATCH sends Content-Range) */
	uint64_t progress_total; /* the whole blob's size, for progress (0: fd_size) */
} ib_push__source;

typedef struct {
	long status;
	char *location;
	char *content_type;
	char *docker_digest;
	char *www_authenticate;
	char *range;         /* an upload's Range: "0-1234" */
	char *last_modified; /* a download's Last-Modified */
	long retry_after;
	ib_buf error_body;   /* the body of a failed response */
} ib_push__response;
void ib_push__response_dispose(ib_push__response *r);

/*
 * A client for one repository of one registry. `domain` as in references
 * (docker.io, localhost:5000), `path` the repository (library/busybox),
 * `actions` the token scope ("pull" or "pull,push"), `what` names the
 * operation in errors ("pull from localhost:5000/app").
 */
/* The options of version 1, read for programs built against them: the registry's held the callbacks. */
typedef struct {
	unsigned int version;
	const char *username;
	const char *password;
	const char *docker_config;
	int insecure;
	const char *tls_ca_file;
	unsigned int attempts;
	const ib_callbacks *callbacks;
} ib_push__registry_options_v1;
/* The options of version 2: version 3 without `auth_file` and `registries_conf`. */
typedef struct {
	unsigned int version;
	const char *username;
	const char *password;
	const char *docker_config;
	int insecure;
	const char *tls_ca_file;
	unsigned int attempts;
} ib_push__registry_options_v2;
typedef struct {
	unsigned int version;
	ib_push__registry_options_v1 registry;
	unsigned int jobs;
} ib_push__pull_options_v1;
typedef struct {
	unsigned int version;
	ib_push__registry_options_v1 registry;
	unsigned int jobs;
	uint64_t chunk_size;
} ib_push__push_options_v1;
/* ib_push_options version 2: version 3 without `compression` and `compression_level`. */
typedef struct {
	unsigned int version;
	const ib_registry_options *registry;
	unsigned int jobs;
	uint64_t chunk_size;
	const ib_callbacks *callbacks;
} ib_push__push_options_v2;

/* The callbacks of one ib_pull/ib_push call and the lock that serialises them. */
typedef struct {
	const ib_callbacks *cb;
	pthread_mutex_t lock;
	int stopped;
	/*
	 * The DNS and TLS session caches of the call's clients, the worker
	 * threads' clones too: a clone resumes the TLS session the first
	 * client made. Connections are each client's own (curl's shared
	 * connection cache is not thread-safe), kept alive across its
	 * requests. NULL when curl could not make one.
	 */
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
} ib_push__calls;

int ib_push__registry_new(ib_push__registry **out, const char *domain, const char *path, const char *actions,
		    const ib_registry_options *opts, const ib_callbacks *cb, const char *what);
/*
 * The same with registries.conf already read (`conf`; NULL: read it here):
 * a blocked host is refused, an insecure one (or `insecure`) is insecure.
 */
int ib_push__registry_new_at(ib_push__registry **out, const char *domain, const char *path, const char *actions,
			     const ib_registry_options *opts, const ib_callbacks *cb, const char *what,
			     const ib_push__regconf *conf, int insecure);
/*
 * Remember in the store at `root` (<root>/hosts/<host>.http) whether an
 * insecure registry speaks plain HTTP, and ask it so first when it did last
 * time (client.c); nothing for a registry that is not insecure.
 */
void ib_push__registry_memo(ib_push__registry *r, const char *root);
/* Another client with the same settings and what `r` learnt (scheme, token): for another thread. */
int ib_push__registry_clone(ib_push__registry **out, const ib_push__registry *r);
void ib_push__registry_free(ib_push__registry *r);
const char *ib_push__registry_what(const ib_push__registry *r);
const char *ib_push__registry_path(const ib_push__registry *r);

/* The URL of `rel` ("/v2/..."), or an absolute Location as it is. */
int ib_push__url(ib_buf *out, const char *scheme, const char *host, const char *rel);

/*
 * One request with auth (401 → challenge → credentials/token → again) and
 * retries. `expect` is the success status (0: any 2xx); other statuses
 * return IB_ERROR (IB_ENOTFOUND for 404) with an error naming `object`,
 * the status and the registry's message, unless `quiet_404`.
 * `accept` may be NULL.
 */
int ib_push__registry_request(ib_push__registry *r, ib_push__response *resp, const char *method, const char *rel,
			const char *accept, const ib_push__source *body, const ib_push__sink *sink, const char *object);
/* GET /v2/: learn the scheme and the auth the registry wants. */
int ib_push__registry_ping(ib_push__registry *r);

/*
 * Check the answer's Docker-Content-Digest header, when it has one, against
 * `d` (what was asked for, or what the content hashed to): a false one is
 * an error naming `object`.
 */
int ib_push__digest_header(ib_push__registry *r, const ib_push__response *resp, const ib_digest *d, const char *object);

/* The registry's JSON error text: "UNAUTHORIZED: authentication required". */
int ib_push__error_text(ib_buf *out, const char *body, size_t len);

/*
 * Progress through the call's callbacks (and its cancel flag), serialised
 * by the call's lock across its worker threads. Non-zero (IB_EUSER, the
 * callback's value recorded as the error) stops the call; once one did,
 * every later report of the call stops too.
 */
int ib_push__registry_progress(ib_push__registry *r, const char *id, const char *text, uint64_t cur, uint64_t total);
/* IB_EUSER when the caller's cancel flag is set. */
int ib_push__registry_cancel_check(ib_push__registry *r);

/* ---- manifests (manifest.c) ---- */

typedef struct {
	ib_digest digest;
	uint64_t size;
	const char *media_type;
} ib_push__blob;

/*
 * The manifest to push: an OCI manifest naming `config` and `layers`
 * (compressed blobs), as JSON text.
 */
int ib_push__manifest_json(ib_buf *out, const ib_digest *config, uint64_t config_size, const ib_push__blob *layers,
			   size_t n);

/* Accept header of a manifest GET. */
#define IB_PUSH_MANIFEST_ACCEPT                                                                            \
	IB_MEDIA_TYPE_OCI_MANIFEST ", " IB_MEDIA_TYPE_OCI_INDEX ", " IB_MEDIA_TYPE_DOCKER_MANIFEST ", " \
	IB_MEDIA_TYPE_DOCKER_LIST

/* Short digest for progress: the first 12 hex digits. */
void ib_push__short(char out[13], const ib_digest *d);

/* ---- moving blobs (transfer.c) ---- */

/* A job of ib_push__run_jobs: item `i`, with this thread's client and store handle. */
typedef int (*ib_push__job_fn)(ib_push__registry *r, ib_store *s, size_t i, void *payload);
/* Run `fn` on items 0..n-1 in up to `jobs` threads (0: 3); the first error stops the rest. */
int ib_push__run_jobs(ib_push__registry *r, ib_store *store, size_t n, unsigned int jobs, ib_push__job_fn fn,
		      void *payload);
/*
 * GET a blob of `size` bytes (its descriptor's) into the store: the
 * download stops past `size`, and nothing is stored unless the size and the
 * digest are right; `id` for progress (may be NULL).
 */
int ib_push__fetch_blob(ib_push__registry *r, ib_store *s, const ib_digest *d, uint64_t size, const char *id);
/* 1 when the repository has the blob, 0 when not. */
int ib_push__blob_exists(ib_push__registry *r, const ib_digest *d);
/*
 * Make remote layer `l`'s blob present in `r`'s repository (lazy.c): found
 * by a HEAD, mounted from the record's repository when `domain` (the
 * destination registry's) is the record's registry, else fetched into the
 * store (checked) and uploaded.
 */
int ib_push__remote_layer_upload(ib_push__registry *r, const char *domain, ib_store *s, const ib_store_remote_layer *l,
				 const char *id, const char *mount_from, uint64_t chunk);
/*
 * Upload a stored blob unless the repository has it; `id` for progress (may
 * be NULL); `mount_from` (may be NULL) a repository of the same registry
 * that may have it (a cross-repository mount is tried first); blobs larger
 * than `chunk` (not 0) go in PATCH chunks, resumed after a failure.
 */
int ib_push__upload_blob(ib_push__registry *r, ib_store *s, const ib_digest *d, const char *id, const char *mount_from,
			 uint64_t chunk);
/* Blobs larger than this go up in PATCH chunks of this size by default. */
#define IB_PUSH_CHUNK_DEFAULT (32u << 20)
/*
 * The gzip level when none is asked: libdeflate's 6. Against one `gzip -6`
 * stream of the same bytes (1 MiB members): the reference workload's
 * source layer (2,000 small text files in a tar) 2.4% bigger (libdeflate
 * 5: 6.3%, over the 5% the goal allows), log lines 0.5% bigger (5: 4.2%).
 * Level 5 costs 30-40% less CPU on text, but only level 6 keeps every
 * text corpus measured within 5% of what the container world's pushers
 * (gzip's default, level 6) give; a level asked is libdeflate's level of
 * that number.
 */
#define IB_PUSH__GZIP_LEVEL_DEFAULT 6
/* gzip the stored blob `layer` into a new blob (at IB_PUSH__GZIP_LEVEL_DEFAULT). */
int ib_push__gzip_layer(ib_digest *out, uint64_t *size, ib_store *s, const ib_digest *layer);
/* The same at `level` (1-9; 0: IB_PUSH__GZIP_LEVEL_DEFAULT); IB_EINVALID for another level. */
int ib_push__gzip_layer_level(ib_digest *out, uint64_t *size, ib_store *s, const ib_digest *layer, int level);
/*
 * Between ib_push__gzip_keep(1) and ib_push__gzip_keep(0) (nested, from any
 * thread) the compressors of finished layers are kept for the next ones; the
 * last ib_push__gzip_keep(0) frees them. A push or an export of many layers
 * holds it.
 */
void ib_push__gzip_keep(int on);
/* zstd's default level (zstd's own, and containers/image's). */
#define IB_PUSH_ZSTD_DEFAULT_LEVEL 3
/* zstd's highest level (ZSTD_maxCLevel() of libzstd 1.4 and later). */
#define IB_PUSH_ZSTD_MAX_LEVEL 22
/*
 * zstd of the stored blob `layer` into a new blob: one frame, with its
 * checksum, made by libzstd's worker threads (zstd.c); `level` 1 to
 * ZSTD_maxCLevel() (22), 0: 3. IB_EINVALID for another level.
 */
int ib_push__zstd_layer(ib_digest *out, uint64_t *size, ib_store *s, const ib_digest *layer, int level);

/*
 * stream.c: a layer compressed and uploaded at once (its first push, no
 * variant remembered): a thread compresses into the variant's temporary
 * file, PATCH chunks of `chunk` bytes follow it as it grows, the closing
 * PUT names the digest found; the variant is recorded as
 * ib_store__variant_put_made() does. A session that fails for good: the
 * blob goes up the ordinary way (ib_push__upload_blob()) once it is whole.
 */
int ib_push__stream_layer(ib_push__blob *out, ib_push__registry *r, ib_store *s, const ib_digest *diff_id, int zstd,
			  int level, const char *id, uint64_t chunk);
/* What a compression reports as it writes (NULL: nothing): the file it writes and how much of it is written. */
typedef struct ib_push__tap ib_push__tap;
int ib_push__tap_open(ib_push__tap *t, ib_blob_writer *w);
/* IB_EUSER when the upload following it was cancelled. */
int ib_push__tap_wrote(ib_push__tap *t, size_t len);
/*
 * The compressed blob is whole (and the layer it came from checked): its
 * digest and size, before the variant is made durable, so the upload can
 * close meanwhile. Takes the writer's digest (ib_store__blob_writer_seal).
 */
int ib_push__tap_complete(ib_push__tap *t, ib_blob_writer *w);
int ib_push__gzip_layer_tap(ib_digest *out, uint64_t *size, ib_store *s, const ib_digest *layer, int level,
			    ib_push__tap *tap);
int ib_push__zstd_layer_tap(ib_digest *out, uint64_t *size, ib_store *s, const ib_digest *layer, int level,
			    ib_push__tap *tap);

/* push.c: one image (manifest under `tag`, or its digest when NULL); `sent` and `sent_type` (may be NULL) what went */
int ib_push__image(ib_digest *manifest, ib_buf *sent, const char **sent_type, ib_push__registry *r, ib_store *s,
		   const ib_image *img, const ib_reference *dest, const ib_push_options *opts, const char *tag);
int ib_push__put_manifest(ib_digest *out, ib_push__registry *r, const char *tag, const ib_buf *body, const char *mt);
/* push_index.c: a multi-platform image: each platform's image by digest, then the index under dest's tag */
int ib_push__index(ib_digest *manifest, ib_push__registry *r, ib_store *s, const ib_image *img,
		   const ib_reference *dest, const ib_push_options *opts);

#endif
