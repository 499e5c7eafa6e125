/*
 * push.h: the OCI distribution protocol: pull images from a registry into
 * the store and push store images to a registry; credentials (Docker's
 * config.json and its credential helpers, containers' auth.json), mirrors
 * and registry settings (containers' registries.conf), TLS, retries.
 *
 * Registries are named as in references: "docker.io" (which is served by
 * registry-1.docker.io), "quay.io", "localhost:5000". HTTPS with
 * certificate verification is the default; a registry on localhost or
 * 127.0.0.0/8 is "insecure" as Docker's default, and so is any registry
 * when `insecure` is set: HTTPS without verification, falling back to plain
 * HTTP when the registry does not speak TLS.
 *
 * What a registry sends is bounded and checked: credentials go only to the
 * registry's origin (and Basic to its token realm), never to a redirect's
 * target; only http and https, never http after https; a blob stops at its
 * descriptor's size, manifests at 4 MiB, configs at 8 MiB; a transfer
 * stalled (under 1 KiB/s) for 30 s — $IMAGEBUILD_REGISTRY_STALL_TIMEOUT
 * seconds — fails and is retried; ambiguous manifests are refused.
 */
#ifndef IMAGEBUILD_PUSH_H
#define IMAGEBUILD_PUSH_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"
#include "digest.h"
#include "store.h"

IB_BEGIN_DECL

/**
 * The version of ib_registry_options (2: `callbacks` moved to
 * ib_pull_options and ib_push_options; 3: `auth_file` and
 * `registries_conf` added at the end).
 */
#define IB_REGISTRY_OPTIONS_VERSION 3
/**
 * How to reach a registry: credentials, TLS, retries; shared by pull, push
 * and login (which point to it).
 *
 * Credentials, unless `username` is set, come from the first of these
 * files that has some for the registry, in podman's order: `auth_file`,
 * else $REGISTRY_AUTH_FILE (then that file alone); else
 * $XDG_RUNTIME_DIR/containers/auth.json (/run/containers/UID/auth.json),
 * $XDG_CONFIG_HOME/containers/auth.json (~/.config/containers/auth.json),
 * then Docker's config file. In a file, `credHelpers.<registry>` (and in
 * Docker's, `credsStore`) names a credential helper,
 * `docker-credential-<name>` on PATH, asked with `get` once per registry
 * per call; else `auths.<registry>` (`auth`, `username`/`password`, or an
 * `identitytoken`, traded for a token with the token server's
 * `grant_type=refresh_token`). Docker Hub is found under any of its names
 * (`docker.io`, `index.docker.io`, `registry-1.docker.io`,
 * `https://index.docker.io/v1/`), other registries by host and port.
 *
 * Mirrors, insecure and blocked registries come from containers'
 * registries.conf (version 2): see `registries_conf`.
 */
typedef struct {
	/** IB_REGISTRY_OPTIONS_VERSION (or an older version: see ib_registry_options_init()). */
	unsigned int version;
	/** The user name; NULL: the credentials the auth files have for the registry, else anonymous. */
	const char *username;
	/** The password or token for `username`. */
	const char *password;
	/** Docker's config file; NULL: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
	const char *docker_config;
	/** 1: allow plain HTTP and unverified certificates for any registry. */
	int insecure;
	/** A PEM file of CA certificates to verify the registry with (curl's CAINFO); NULL: the system's. */
	const char *tls_ca_file;
	/** Attempts per request on transient failures (connection errors, 429, 5xx); 0: 4. */
	unsigned int attempts;
	/**
	 * containers' auth.json (podman's `--authfile`): the only file
	 * credentials are read from, and the one login and logout change.
	 * NULL: $REGISTRY_AUTH_FILE, else the search described above (login
	 * and logout then change Docker's config file). Version 3.
	 */
	const char *auth_file;
	/**
	 * containers' registries.conf (version 2 TOML): `[[registry]]` entries
	 * (`prefix`, `location`, `insecure`, `blocked`, `mirror-by-digest-only`,
	 * `[[registry.mirror]]` with `location`, `insecure`,
	 * `pull-from-mirror`) and `unqualified-search-registries`. A pull
	 * tries the mirrors of the registry its reference falls under, in order,
	 * then the registry itself; a blocked registry is refused; an insecure one
	 * is reached as `insecure` says. NULL: $CONTAINERS_REGISTRIES_CONF,
	 * else /etc/containers/registries.conf (a missing file is no
	 * configuration); "none": no file. Version 3.
	 */
	const char *registries_conf;
} ib_registry_options;
/** The defaults, for a declaration: `ib_registry_options o = IB_REGISTRY_OPTIONS_INIT;`. */
#define IB_REGISTRY_OPTIONS_INIT { IB_REGISTRY_OPTIONS_VERSION, NULL, NULL, NULL, 0, NULL, 0, NULL, NULL }

/**
 * Initialise `opts` like IB_REGISTRY_OPTIONS_INIT for `version` (for
 * bindings): 3; 2 (without `auth_file` and `registries_conf`); or 1 (the
 * older layout that ended in `callbacks`). Only that version's size is
 * written. IB_EINVALID for another version.
 */
IB_EXTERN(int) ib_registry_options_init(ib_registry_options *opts, unsigned int version);

/* 2: `registry` became a pointer, `callbacks` moved here from it; 3: `platform` */
#define IB_PULL_OPTIONS_VERSION 3
/** Options of ib_pull(). */
typedef struct {
	unsigned int version;
	const ib_registry_options *registry; /* how to reach the registry; NULL: the defaults */
	/* blobs fetched at once; 0: 3 */
	unsigned int jobs;
	/*
	 * progress (IB_PROGRESS_BYTES per blob: id = the digest's first 12
	 * hex digits, text = its state), log lines, and cancel (see common.h:
	 * called from worker threads, one at a time). NULL: none.
	 */
	const ib_callbacks *callbacks;
	/* version 3 */
	/**
	 * The platform to fetch from an index, "os/arch[/variant]" (docker
	 * pull --platform); NULL: this host's. The store keeps the index, so a
	 * second pull of the same name for another platform adds that one
	 * (version 3).
	 */
	const char *platform;
} ib_pull_options;
#define IB_PULL_OPTIONS_INIT { IB_PULL_OPTIONS_VERSION, NULL, 0, NULL, NULL }

/**
 * Initialise `opts` like IB_PULL_OPTIONS_INIT for `version` (for bindings):
 * 3, 2 (without `platform`), or 1 (the older layout with the registry
 * options by value; only that version's size is written). IB_EINVALID for another version.
 */
IB_EXTERN(int) ib_pull_options_init(ib_pull_options *opts, unsigned int version);

/**
 * docker pull: fetch `ref` ("busybox", "localhost:5000/app:1",
 * "quay.io/x/y@sha256:...") into the store. An index / manifest list is
 * resolved to this host's platform; blobs already stored are not fetched;
 * every blob's digest is checked while it streams to disk. Compressed layers
 * are kept as they came (so the manifest digest stays) with an uncompressed
 * copy checked against the config's diff_id. The name is tagged (a pull by
 * digest leaves the image untagged). `image_id` (may be NULL) gets the
 * config digest, `manifest` (may be NULL) the digest of what the registry
 * served for the reference.
 */
IB_EXTERN(int) ib_pull(ib_digest *image_id, ib_digest *manifest, ib_store *store, const char *ref,
		       const ib_pull_options *opts);

/**
 * The version of ib_push_options (2: `registry` became a pointer,
 * `callbacks` moved here from it; 3: `compression` and
 * `compression_level` added at the end).
 */
#define IB_PUSH_OPTIONS_VERSION 3
/** Options of ib_push(). */
typedef struct {
	/** IB_PUSH_OPTIONS_VERSION (or an older version: see ib_push_options_init()). */
	unsigned int version;
	/** How to reach the registry; NULL: the defaults. */
	const ib_registry_options *registry;
	/** Layers compressed and uploaded at once; 0: 3. */
	unsigned int jobs;
	/**
	 * Blobs larger than this go up in PATCH chunks of this size, and an
	 * interrupted upload goes on from where the registry has it; 0: 32 MiB.
	 */
	uint64_t chunk_size;
	/** As in ib_pull_options. */
	const ib_callbacks *callbacks;
	/**
	 * podman's `--compression-format`: "gzip" or "zstd" (another name is
	 * IB_EINVALID). Set, every layer leaves in that format: a layer that
	 * is already so leaves as it is, any other as the format's variant of
	 * its uncompressed layer (made once, remembered in the store, reused by
	 * later pushes). zstd layers go in an OCI manifest. NULL: gzip, and a
	 * layer that came compressed (gzip or zstd) leaves as it came.
	 * Version 3.
	 */
	const char *compression;
	/**
	 * The compression level of the variants this push makes: gzip 1-9
	 * (libdeflate's levels; default 5, within 5% of `gzip -6`'s size),
	 * zstd 1-22 (default 3); another value is IB_EINVALID.
	 * Set (not 0), a remembered variant is not reused: every layer that is
	 * not already in the format is compressed again at this level (and
	 * remembered so). Layers already in the format leave as they are.
	 * 0: the default, and remembered variants are reused. Version 3.
	 */
	int compression_level;
} ib_push_options;
/** The defaults, for a declaration: `ib_push_options o = IB_PUSH_OPTIONS_INIT;`. */
#define IB_PUSH_OPTIONS_INIT { IB_PUSH_OPTIONS_VERSION, NULL, 0, 0, NULL, NULL, 0 }

/**
 * Initialise `opts` like IB_PUSH_OPTIONS_INIT for `version` (for bindings):
 * 3; 2 (without `compression` and `compression_level`); or 1 (the older
 * layout with the registry options by value). Only that version's size is
 * written. IB_EINVALID for another version.
 */
IB_EXTERN(int) ib_push_options_init(ib_push_options *opts, unsigned int version);

/**
 * docker push: send the image `local_name` (name or id) to `dest_ref`
 * (NULL: `local_name` itself, which must then be a name). Uncompressed
 * layers leave gzip-compressed (or as `compression` says): the variant is
 * made once (in parallel, remembered in the store) and reused later.
 * When every layer's compressed blob is known, the manifest's digest is
 * known before anything is sent: a HEAD of the tag's manifest comes first,
 * and when the registry already has that manifest under the tag the push
 * is done (one request). Else blobs the registry has are not sent again,
 * the others go up in parallel (`jobs`), each thread over a kept-alive connection.
 * The image id (config) does not change. `manifest` (may be NULL) gets
 * the digest of the pushed manifest.
 */
IB_EXTERN(int) ib_push(ib_digest *manifest, ib_store *store, const char *local_name, const char *dest_ref,
		       const ib_push_options *opts);

/**
 * docker login: check `username`/`password` (in `opts`) against the
 * registry `host` ("docker.io", "localhost:5000"), then record them in the
 * login file: `auth_file`, else $REGISTRY_AUTH_FILE, else Docker's config
 * file (mode 0600). When that file names a credential helper for the
 * registry (`credHelpers`, or `credsStore` in Docker's), the helper stores
 * them (`docker-credential-<name> store`) and the file gets only the
 * registry's key, without a secret, as docker does. IB_EINVALID when the
 * registry refuses them (as for every 401/403 answer).
 */
IB_EXTERN(int) ib_registry_login(const char *host, const ib_registry_options *opts);

/**
 * docker logout: forget the credentials of `host` in the login file (see
 * ib_registry_login()), and in its credential helper (`erase`) when it
 * names one; IB_ENOTFOUND when there were none. `opts` may be NULL.
 */
IB_EXTERN(int) ib_registry_logout(const char *host, const ib_registry_options *opts);

/**
 * Fetch remote layer `layer` (see ib_store_remote_layer_put()) from the
 * registry and repository it names into `store`: the blob checked against
 * its digest as it streams in, then uncompressed and checked against the
 * diff_id. `registry_options`: a `const ib_registry_options *` (NULL: the
 * defaults). An ib_store_remote_fetch_fn: the process-wide fetcher, and
 * what a build sets on its store handle with its own registry options.
 */
IB_EXTERN(int) ib_push_fetch_remote_layer(ib_store *store, const ib_store_remote_layer *layer,
					  void *registry_options);

/* ---- build cache artifacts (cache.c; docs/cache.md) ---- */

/** The media type of a build cache artifact (the manifest's artifactType and its config's mediaType). */
#define IB_MEDIA_TYPE_CACHE_CONFIG "application/vnd.imagebuild.cache.config.v1+json"

/** One tag of a registry repository that holds a build cache artifact (see docs/cache.md). */
typedef struct ib_cache_remote ib_cache_remote;

/**
 * Open the cache artifact reference `ref` (REGISTRY/REPOSITORY:TAG) for
 * reading (`push` 0) or reading and writing (1); `opts` (may be NULL) for
 * credentials and TLS, `callbacks` (may be NULL) for progress. Nothing is
 * sent yet. Free it with ib_cache_remote_free().
 */
IB_EXTERN(int) ib_cache_remote_open(ib_cache_remote **out, const char *ref, int push,
				    const ib_registry_options *opts, const ib_callbacks *callbacks);
/** Free it. NULL is fine. */
IB_EXTERN(void) ib_cache_remote_free(ib_cache_remote *r);

/**
 * Read the artifact the tag names now: its manifest's digest into
 * `manifest` (may be NULL) and its config blob (the cache records, JSON),
 * whose digest is checked, into `config`; the layers the manifest lists
 * (compressed digests) into `layers` (may be NULL), one
 * "sha256:<hex> <size>" line each. IB_ENOTFOUND when the tag is absent;
 * IB_EINVALID when it is not a cache artifact (an image, another artifact).
 */
IB_EXTERN(int) ib_cache_remote_read(ib_buf *config, ib_digest *manifest, ib_buf *layers, ib_cache_remote *r);

/**
 * As ib_cache_remote_read(), or the tag names an image (an OCI or Docker
 * schema 2 manifest of one platform, whose config may hold inline cache
 * records: docs/cache.md): then `image` is 1, `config` the image config
 * (its digest checked) and each line of `layers`
 * "sha256:<hex> <size> <mediaType>", in the manifest's order. An image
 * index is IB_EINVALID.
 */
IB_EXTERN(int) ib_cache_remote_read_any(ib_buf *config, ib_buf *layers, int *image, ib_cache_remote *r);

/**
 * Make sure the repository has the stored layer `diff_id` compressed
 * (gzip, the variant made once and remembered, as ib_push): a HEAD first,
 * an upload only when it lacks it. Its compressed digest and size into
 * `digest` and `size`.
 */
IB_EXTERN(int) ib_cache_remote_upload_layer(ib_digest *digest, uint64_t *size, ib_cache_remote *r, ib_store *store,
					    const ib_digest *diff_id);

/**
 * Make sure the repository has the stored blob `digest` as it is (an image
 * config): a HEAD first, an upload only when it lacks it.
 */
IB_EXTERN(int) ib_cache_remote_upload_blob(ib_cache_remote *r, ib_store *store, const ib_digest *digest);

/**
 * Put the artifact under the tag: a config blob `config` (`len` bytes,
 * uploaded unless present) and the blobs `layers` / `sizes` (`n` blobs the
 * repository has), of media types `media_types` (NULL, or a NULL entry:
 * gzip layers). Its digest into `manifest` (may be NULL). The registry
 * offers no compare-and-swap: docs/cache.md says how writers avoid losing
 * each other's records.
 */
IB_EXTERN(int) ib_cache_remote_write(ib_digest *manifest, ib_cache_remote *r, const void *config, size_t len,
				     const ib_digest *layers, const uint64_t *sizes, const char *const *media_types,
				     size_t n);

/**
 * Fetch the gzip layer blob `digest` (`size` bytes) of the repository into
 * `store` unless it holds it, verified: its digest and size, then its
 * uncompressed content against `diff_id` (both stored only when right, the
 * blob then remembered as the layer's gzip variant). IB_EINVALID when it is
 * not that layer.
 */
IB_EXTERN(int) ib_cache_remote_fetch_layer(ib_cache_remote *r, ib_store *store, const ib_digest *digest,
					   uint64_t size, const ib_digest *diff_id);

IB_END_DECL

#endif
