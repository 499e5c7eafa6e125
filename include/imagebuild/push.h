/*
 * push.h: the OCI distribution protocol: pull images from a registry into
 * the store and push store images to a registry; credentials (Docker's
 * config.json), TLS, retries.
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

/** The version of ib_registry_options (2: `callbacks` moved to ib_pull_options and ib_push_options). */
#define IB_REGISTRY_OPTIONS_VERSION 2
/**
 * How to reach a registry: credentials, TLS, retries; shared by pull, push
 * and login (which point to it).
 */
typedef struct {
	unsigned int version;
	/* credentials; NULL: those Docker's config file has for the registry, else anonymous */
	const char *username;
	/** The password or token for `username`. */
	const char *password;
	/* the Docker config file; NULL: $DOCKER_CONFIG/config.json, else ~/.docker/config.json */
	const char *docker_config;
	/* 1: allow plain HTTP and unverified certificates for any registry */
	int insecure;
	/* a PEM file of CA certificates to verify the registry with (curl's CAINFO) */
	const char *tls_ca_file;
	/* attempts per request on transient failures (connection errors, 429, 5xx); 0: 4 */
	unsigned int attempts;
} ib_registry_options;
#define IB_REGISTRY_OPTIONS_INIT { IB_REGISTRY_OPTIONS_VERSION, NULL, NULL, NULL, 0, NULL, 0 }

/**
 * Initialise `opts` like IB_REGISTRY_OPTIONS_INIT for `version` (for
 * bindings): 2, or 1 (the older, larger layout that ended in `callbacks`;
 * only that version's size is written). IB_EINVALID for another version.
 */
IB_EXTERN(int) ib_registry_options_init(ib_registry_options *opts, unsigned int version);

/* 2: `registry` became a pointer, `callbacks` moved here from it */
#define IB_PULL_OPTIONS_VERSION 2
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
} ib_pull_options;
#define IB_PULL_OPTIONS_INIT { IB_PULL_OPTIONS_VERSION, NULL, 0, NULL }

/**
 * Initialise `opts` like IB_PULL_OPTIONS_INIT for `version` (for bindings):
 * 2, or 1 (the older layout with the registry options by value; only that
 * version's size is written). IB_EINVALID for another version.
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
 * 2, or 1 (the older layout with the registry options by value; only that
 * version's size is written). IB_EINVALID for another version.
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
 * Docker config file (mode 0600). IB_EINVALID when the registry refuses them
 * (as for every 401/403 answer).
 */
IB_EXTERN(int) ib_registry_login(const char *host, const ib_registry_options *opts);

/** docker logout: forget the credentials of `host`; IB_ENOTFOUND when there were none. */
IB_EXTERN(int) ib_registry_logout(const char *host, const ib_registry_options *opts);

IB_END_DECL

#endif
