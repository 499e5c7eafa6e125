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

/* 2: `registry` became a pointer, `callbacks` moved here from it */
#define IB_PUSH_OPTIONS_VERSION 2
/** Options of ib_push(). */
typedef struct {
	unsigned int version;
	const ib_registry_options *registry; /* how to reach the registry; NULL: the defaults */
	/* layers compressed and uploaded at once; 0: 3 */
	unsigned int jobs;
	/*
	 * blobs larger than this go up in PATCH chunks of this size, and an
	 * interrupted upload goes on from where the registry has it; 0: 32 MiB
	 */
	uint64_t chunk_size;
	/* as in ib_pull_options */
	const ib_callbacks *callbacks;
} ib_push_options;
#define IB_PUSH_OPTIONS_INIT { IB_PUSH_OPTIONS_VERSION, NULL, 0, 0, NULL }

/**
 * Initialise `opts` like IB_PUSH_OPTIONS_INIT for `version` (for bindings):
 * 3, 2 (without `platform`), or 1 (the older layout with the registry
 * options by value; only that version's size is written). IB_EINVALID for another version.
 */
IB_EXTERN(int) ib_push_options_init(ib_push_options *opts, unsigned int version);

/**
 * docker push: send the image `local_name` (name or id) to `dest_ref`
 * (NULL: `local_name` itself, which must then be a name). Uncompressed
 * layers leave gzip-compressed: the gzip variant is made once (in
 * parallel, remembered in the store) and reused later; blobs the
 * registry has are not sent again. The image id (config) does not change.
 * `manifest` (may be NULL) gets the digest of the pushed manifest.
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

IB_END_DECL

#endif
