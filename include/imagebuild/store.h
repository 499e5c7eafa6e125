/*
 * store.h: the content-addressed image store (an OCI image layout on disk),
 * image references, images, tags, history, import/export, GC.
 */
#ifndef IMAGEBUILD_STORE_H
#define IMAGEBUILD_STORE_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"
#include "digest.h"

IB_BEGIN_DECL

#define IB_STORE_OPTIONS_VERSION 1
/** Options of ib_store_open(). */
typedef struct {
	unsigned int version;
	unsigned int flags;   /* none yet */
} ib_store_options;
#define IB_STORE_OPTIONS_INIT { IB_STORE_OPTIONS_VERSION, 0 }
/** Initialise like IB_STORE_OPTIONS_INIT (for bindings); unknown versions are IB_EINVALID. */
IB_EXTERN(int) ib_store_options_init(ib_store_options *opts, unsigned int version);

/**
 * Open (creating if needed) the store at `root`. NULL root means the
 * default: $IMAGEBUILD_ROOT, else /var/lib/imagebuild as root, else
 * $XDG_DATA_HOME/imagebuild (~/.local/share/imagebuild).
 */
IB_EXTERN(int) ib_store_open(ib_store **out, const char *root, const ib_store_options *opts);
/** Close the store handle (releasing its leases). NULL is fine. */
IB_EXTERN(void) ib_store_free(ib_store *store);
/** The root directory (borrowed). */
IB_EXTERN(const char *) ib_store_root(const ib_store *store);

/* ---- blobs ---- */

/** A blob being written: content is hashed as it streams in. */
typedef struct ib_blob_writer ib_blob_writer;

/** Start writing a new blob into `store`; finish it with ib_blob_writer_commit() or ib_blob_writer_abort(). */
IB_EXTERN(int) ib_store_blob_writer(ib_blob_writer **out, ib_store *store);
/** Append `len` bytes to the blob being written. */
IB_EXTERN(int) ib_blob_writer_write(ib_blob_writer *w, const void *data, size_t len);
/**
 * Finish: fsync, and rename into blobs/sha256/<hex>. When `expected` is not
 * NULL and the content differs, nothing is stored and IB_EINVALID names both
 * digests. Frees the writer in every case. `out` and `size` may be NULL.
 */
IB_EXTERN(int) ib_blob_writer_commit(ib_blob_writer *w, ib_digest *out, uint64_t *size,
				     const ib_digest *expected);
/** Drop an unfinished blob; frees the writer. NULL is fine. */
IB_EXTERN(void) ib_blob_writer_abort(ib_blob_writer *w);

/** Store `len` bytes as a blob in one call; `out` gets its digest. */
IB_EXTERN(int) ib_store_blob_put(ib_digest *out, ib_store *store, const void *data, size_t len);
/** 1 if present, 0 if not. */
IB_EXTERN(int) ib_store_blob_has(ib_store *store, const ib_digest *d);
/** The size of the blob `d` in `out`; IB_ENOTFOUND names the digest when it is missing. */
IB_EXTERN(int) ib_store_blob_size(uint64_t *out, ib_store *store, const ib_digest *d);
/** Open a blob for reading; the caller closes the fd. IB_ENOTFOUND names the digest. */
IB_EXTERN(int) ib_store_blob_open(int *fd_out, ib_store *store, const ib_digest *d);
/** Read a whole (small) blob, verifying its digest. */
IB_EXTERN(int) ib_store_blob_read(ib_buf *out, ib_store *store, const ib_digest *d);


/* ---- leases: what keeps a concurrent GC away from fresh blobs ----
 *
 * The protocol (docs in lib/store/README.md):
 *  - every writer holds a *lease* (a shared flock on <root>/gc.lock) from
 *    before it writes its first blob until the record that references the
 *    blobs (index.json, a cache entry, a container record) is durable;
 *  - GC holds the exclusive flock for its whole run, so it never runs while
 *    a lease is held, and writers wait while GC runs;
 *  - index.json is read-modify-written under <root>/index.lock and
 *    replaced atomically (temporary file, fsync, rename); readers take no lock.
 * Every mutating function of this header takes a lease itself. A caller that
 * writes blobs and references them in later calls (a build: layer, then
 * cache entry, then image) holds its own lease across them. Leases are
 * counted per store handle. Calling ib_store_gc() on a handle that holds a
 * lease is refused (it would wait for itself).
 */
/** Take a lease (see above): GC waits until it is released. Counted per handle. */
IB_EXTERN(int) ib_store_lease_acquire(ib_store *store);
/** Release one lease taken by ib_store_lease_acquire(). */
IB_EXTERN(void) ib_store_lease_release(ib_store *store);

/* ---- references: [HOST[:PORT]/]PATH[:TAG][@DIGEST], normalised as Docker does ---- */

/**
 * Parse and normalise a reference: `busybox` is
 * `docker.io/library/busybox:latest`; `localhost:5000/a/b@sha256:...` keeps
 * its digest and gets no tag. Errors are IB_ESYNTAX with Docker's reason
 * ("invalid reference format: repository name (X) must be lowercase").
 */
IB_EXTERN(int) ib_reference_parse(ib_reference **out, const char *str);
/** Free a parsed reference. NULL is fine. */
IB_EXTERN(void) ib_reference_free(ib_reference *ref);
/** The registry host, with its port: "docker.io", "localhost:5000". */
IB_EXTERN(const char *) ib_reference_domain(const ib_reference *ref);
/** The path in the registry: "library/busybox". */
IB_EXTERN(const char *) ib_reference_path(const ib_reference *ref);
/** domain/path: "docker.io/library/busybox". */
IB_EXTERN(const char *) ib_reference_repository(const ib_reference *ref);
/** The tag ("latest" when none was given and no digest), or NULL. */
IB_EXTERN(const char *) ib_reference_tag(const ib_reference *ref);
/** 1 when the tag was written in the input, 0 when it is the default. */
IB_EXTERN(int) ib_reference_tag_given(const ib_reference *ref);
/** The digest, or NULL. */
IB_EXTERN(const ib_digest *) ib_reference_digest(const ib_reference *ref);
/** The whole normalised name: "docker.io/library/busybox:latest". */
IB_EXTERN(const char *) ib_reference_name(const ib_reference *ref);
/** Docker's short form: "busybox:latest", "localhost:5000/a/b@sha256:...". */
IB_EXTERN(const char *) ib_reference_familiar(const ib_reference *ref);
/** Normalise a name in one call: `out` gets ib_reference_name(). */
IB_EXTERN(int) ib_reference_normalize(ib_buf *out, const char *str);

/* ---- media types ---- */

/** Media type of an OCI image manifest. */
#define IB_MEDIA_TYPE_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
/** Media type of an OCI image index. */
#define IB_MEDIA_TYPE_OCI_INDEX "application/vnd.oci.image.index.v1+json"
/** Media type of an OCI image config. */
#define IB_MEDIA_TYPE_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
/** Media type of an uncompressed OCI layer (tar). */
#define IB_MEDIA_TYPE_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
/** Media type of a gzip-compressed OCI layer. */
#define IB_MEDIA_TYPE_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
/** Media type of a zstd-compressed OCI layer. */
#define IB_MEDIA_TYPE_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
/** Media type of a Docker image manifest (schema 2). */
#define IB_MEDIA_TYPE_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
/** Media type of a Docker manifest list. */
#define IB_MEDIA_TYPE_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
/** Media type of a Docker image config. */
#define IB_MEDIA_TYPE_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
/** Media type of a gzip-compressed Docker layer. */
#define IB_MEDIA_TYPE_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* ---- image configs: the mutable object later layers change ---- */

/** An image config (the OCI config JSON), mutable: made by ib_image_config_new(), parsed, or copied with ib_image_config_dup(). */
typedef struct ib_image_config ib_image_config;

/** Strings of a config (NULL when unset). */
typedef enum {
	IB_CONFIG_CREATED = 0,    /* RFC 3339 */
	IB_CONFIG_AUTHOR,
	IB_CONFIG_ARCHITECTURE,
	IB_CONFIG_OS,
	IB_CONFIG_VARIANT,
	IB_CONFIG_WORKDIR,        /* config.WorkingDir */
	IB_CONFIG_USER,           /* config.User */
	IB_CONFIG_STOPSIGNAL      /* config.StopSignal */
} ib_config_string;

/**
 * String lists of a config. CMD, ENTRYPOINT, SHELL and HEALTHCHECK_TEST
 * are argv arrays that may be unset (null) or empty, which differ; ENV is
 * "KEY=VALUE" entries; ONBUILD the trigger lines; EXPOSED_PORTS
 * ("80/tcp") and VOLUMES are sets (JSON objects with {} values in the file).
 */
typedef enum {
	IB_CONFIG_ENV = 0,
	IB_CONFIG_CMD,
	IB_CONFIG_ENTRYPOINT,
	IB_CONFIG_SHELL,
	IB_CONFIG_ONBUILD,
	IB_CONFIG_EXPOSED_PORTS,
	IB_CONFIG_VOLUMES,
	IB_CONFIG_HEALTHCHECK_TEST
} ib_config_list;

/** A new config: os "linux", the host's architecture, no layers. */
IB_EXTERN(int) ib_image_config_new(ib_image_config **out);
/** Parse a config blob; unknown fields are kept and written back. */
IB_EXTERN(int) ib_image_config_from_json(ib_image_config **out, const char *json, size_t len);
/** The config as JSON (compact, keys sorted: the blob that is stored). */
IB_EXTERN(int) ib_image_config_to_json(ib_buf *out, const ib_image_config *c);
/** A deep copy of `c` into *out (the caller's, ib_image_config_free()). */
IB_EXTERN(int) ib_image_config_dup(ib_image_config **out, const ib_image_config *c);
/** Free a config. NULL is fine. */
IB_EXTERN(void) ib_image_config_free(ib_image_config *c);

/** Borrowed until the next change of `c`; NULL when unset. */
IB_EXTERN(const char *) ib_image_config_get(const ib_image_config *c, ib_config_string which);
/** Set, or unset with NULL. */
IB_EXTERN(int) ib_image_config_set(ib_image_config *c, ib_config_string which, const char *value);
/**
 * Docker's config.ArgsEscaped (BuildKit of Docker 20.10 sets it for every
 * CMD; it means nothing on Linux); 0 removes the field.
 */
IB_EXTERN(int) ib_image_config_args_escaped(const ib_image_config *c);
/** Set config.ArgsEscaped (see ib_image_config_args_escaped()); 0 removes the field. */
IB_EXTERN(int) ib_image_config_set_args_escaped(ib_image_config *c, int escaped);
/** Set IB_CONFIG_CREATED to now (RFC 3339, UTC, whole seconds). */
IB_EXTERN(int) ib_image_config_set_created_now(ib_image_config *c);
/** Set IB_CONFIG_CREATED to `unix_seconds` (>= 0), e.g. a SOURCE_DATE_EPOCH. */
IB_EXTERN(int) ib_image_config_set_created_at(ib_image_config *c, int64_t unix_seconds);

/** 1 when the list is set (even empty), 0 when unset/null. */
IB_EXTERN(int) ib_image_config_list_is_set(const ib_image_config *c, ib_config_list which);
/** The number of items of the list `which` (0 when unset). */
IB_EXTERN(size_t) ib_image_config_list_count(const ib_image_config *c, ib_config_list which);
/** Item `i` (borrowed), NULL past the end. Sets come back sorted. */
IB_EXTERN(const char *) ib_image_config_list_get(const ib_image_config *c, ib_config_list which, size_t i);
/** Replace the whole list; `items` NULL (and n 0) unsets it. */
IB_EXTERN(int) ib_image_config_list_set(ib_image_config *c, ib_config_list which,
					const char *const *items, size_t n);
/** Append an item (sets: add the key if absent). */
IB_EXTERN(int) ib_image_config_list_add(ib_image_config *c, ib_config_list which, const char *item);

/** The value of environment variable `key` (borrowed) or NULL. */
IB_EXTERN(const char *) ib_image_config_env_get(const ib_image_config *c, const char *key);
/** Set `key`=`value`, replacing an earlier value in place (as ENV does). */
IB_EXTERN(int) ib_image_config_env_set(ib_image_config *c, const char *key, const char *value);

/** The number of labels. */
IB_EXTERN(size_t) ib_image_config_label_count(const ib_image_config *c);
/** Label `i` in key order (borrowed); 0, or IB_ENOTFOUND past the end. */
IB_EXTERN(int) ib_image_config_label_at(const char **key, const char **value,
					const ib_image_config *c, size_t i);
/** The value of label `key` (borrowed until the next change of `c`), or NULL. */
IB_EXTERN(const char *) ib_image_config_label_get(const ib_image_config *c, const char *key);
/** Set a label; NULL value removes it. */
IB_EXTERN(int) ib_image_config_label_set(ib_image_config *c, const char *key, const char *value);

/**
 * Docker's Healthcheck durations, in nanoseconds (0 = inherit/default).
 * An output of ib_image_config_healthcheck(): the caller sets `version`
 * (IB_HEALTHCHECK_INIT or ib_healthcheck_init()) and the library fills
 * only what that version has.
 */
typedef struct {
	unsigned int version;
	/** Healthcheck.Interval. */
	int64_t interval;
	/** Healthcheck.Timeout. */
	int64_t timeout;
	/** Healthcheck.StartPeriod. */
	int64_t start_period;
	/** Healthcheck.StartInterval. */
	int64_t start_interval;
	/** Healthcheck.Retries; 0: inherit. */
	int retries;
} ib_healthcheck;
#define IB_HEALTHCHECK_VERSION 1
/** A static initializer: the current version (IB_HEALTHCHECK_VERSION), every time inherited. */
#define IB_HEALTHCHECK_INIT { IB_HEALTHCHECK_VERSION, 0, 0, 0, 0, 0 }
/** Initialise like IB_HEALTHCHECK_INIT (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_healthcheck_init(ib_healthcheck *hc, unsigned int version);
/** 1 and the times in `out` when a Healthcheck is set, else 0. Its test is IB_CONFIG_HEALTHCHECK_TEST. */
IB_EXTERN(int) ib_image_config_healthcheck(ib_healthcheck *out, const ib_image_config *c);
/** Set the Healthcheck (test ["NONE"] disables); `test` NULL removes it. */
IB_EXTERN(int) ib_image_config_set_healthcheck(ib_image_config *c, const char *const *test, size_t n,
					       const ib_healthcheck *times);

/** The number of layers of the config (rootfs.diff_ids). */
IB_EXTERN(size_t) ib_image_config_diff_id_count(const ib_image_config *c);
/** The i-th diff_id, lowest layer first, in `out`; IB_ENOTFOUND past the end. */
IB_EXTERN(int) ib_image_config_diff_id(ib_digest *out, const ib_image_config *c, size_t i);
/** Append a layer's diff_id (the layer goes on top). */
IB_EXTERN(int) ib_image_config_diff_id_add(ib_image_config *c, const ib_digest *diff_id);

#define IB_HISTORY_ENTRY_VERSION 1
/**
 * A history entry; strings borrowed (NULL when absent). Versioned: the
 * caller sets `version` (IB_HISTORY_ENTRY_INIT or ib_history_entry_init())
 * for ib_image_config_history_get() to fill and for history_add to read.
 */
typedef struct {
	unsigned int version;    /* IB_HISTORY_ENTRY_VERSION */
	/** When: RFC 3339. */
	const char *created;
	/** The command that made it ("RUN make"). */
	const char *created_by;
	/** Who made it. */
	const char *author;
	/** A comment (commit -m). */
	const char *comment;
	/** Non-zero when the step added no layer. */
	int empty_layer;
} ib_history_entry;
#define IB_HISTORY_ENTRY_INIT { IB_HISTORY_ENTRY_VERSION, NULL, NULL, NULL, NULL, 0 }
/** Initialise like IB_HISTORY_ENTRY_INIT (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_history_entry_init(ib_history_entry *e, unsigned int version);
/** Entries in config order (oldest first). */
IB_EXTERN(size_t) ib_image_config_history_count(const ib_image_config *c);
/** The i-th history entry (strings borrowed until the next change of `c`); IB_ENOTFOUND past the end. */
IB_EXTERN(int) ib_image_config_history_get(ib_history_entry *out, const ib_image_config *c, size_t i);
/** Append a history entry (the strings are copied). */
IB_EXTERN(int) ib_image_config_history_add(ib_image_config *c, const ib_history_entry *e);

/* ---- images ---- */

/** A layer of an image, as its manifest names it. */
typedef struct {
	ib_digest digest;        /* the blob */
	uint64_t size;           /* of the blob */
	const char *media_type;  /* NULL in ib_store_image_commit() input: uncompressed OCI tar */
	ib_digest diff_id;       /* the uncompressed digest (config rootfs.diff_ids) */
} ib_layer;

/* 2 added annotations */
#define IB_IMAGE_COMMIT_OPTIONS_VERSION 2
/** Options of ib_store_image_commit(). */
typedef struct {
	unsigned int version;
	const char *name;        /* tag the image with this name; NULL: untagged (dangling) */
	/* version 2 */
	/**
	 * The manifest's annotations, NULL-terminated "KEY=VALUE" (a later
	 * one of a key wins); NULL: none (version 2).
	 */
	const char *const *annotations;
} ib_image_commit_options;
#define IB_IMAGE_COMMIT_OPTIONS_INIT { IB_IMAGE_COMMIT_OPTIONS_VERSION, NULL, NULL }
/**
 * Initialise like IB_IMAGE_COMMIT_OPTIONS_INIT for `version` (1 or 2; only
 * that version's size is written), for bindings; IB_EINVALID for another.
 */
IB_EXTERN(int) ib_image_commit_options_init(ib_image_commit_options *opts, unsigned int version);

/**
 * Write `config` and an OCI manifest naming `layers` (blobs already in the
 * store, in order; the config's diff_ids must match them) and record the
 * image in index.json. `image_id` (the config digest) and `manifest` may be
 * NULL. IB_ENOTFOUND names a missing layer blob, IB_EINVALID a mismatch.
 */
IB_EXTERN(int) ib_store_image_commit(ib_digest *image_id, ib_digest *manifest, ib_store *store,
				     const ib_image_config *config, const ib_layer *layers, size_t n,
				     const ib_image_commit_options *opts);

/**
 * Find an image by name ("busybox", "docker.io/library/busybox:1"),
 * by name@digest, by id ("sha256:<hex>", or a manifest digest) or by an
 * unambiguous id prefix ("3f5a", "sha256:3f5a"). IB_ENOTFOUND:
 * "No such image: X"; IB_EINVALID when a short id is ambiguous.
 */
IB_EXTERN(int) ib_store_image_lookup(ib_image **out, ib_store *store, const char *name_or_id);
/**
 * ib_store_image_lookup for one platform ("os/arch[/variant]"; NULL or "":
 * as ib_store_image_lookup): an index gives its child of that platform,
 * which must be in the store (an index keeps several platforms of one
 * name); a single manifest or an id must have a config of that platform.
 * Never an image of another platform: IB_ENOTFOUND says what the store has.
 */
IB_EXTERN(int) ib_store_image_lookup_platform(ib_image **out, ib_store *store, const char *name_or_id,
					      const char *platform);
/** Free an image handle (the image stays in the store). NULL is fine. */
IB_EXTERN(void) ib_image_free(ib_image *img);
/** The image id: its config digest. */
IB_EXTERN(const ib_digest *) ib_image_id(const ib_image *img);
/** The digest of its (platform) manifest. */
IB_EXTERN(const ib_digest *) ib_image_manifest_digest(const ib_image *img);
/**
 * The digest of the OCI index / Docker manifest list the image was found
 * through (a name or id of a multi-platform image: the index whose child
 * ib_image_manifest_digest is); NULL when it is a single manifest.
 */
IB_EXTERN(const ib_digest *) ib_image_index_digest(const ib_image *img);
/** The media type of its manifest (borrowed). */
IB_EXTERN(const char *) ib_image_manifest_media_type(const ib_image *img);
/** The config (borrowed); ib_image_config_dup() it to change it. */
IB_EXTERN(const ib_image_config *) ib_image_config_of(const ib_image *img);
/** The number of layers. */
IB_EXTERN(size_t) ib_image_layer_count(const ib_image *img);
/** The i-th layer, lowest first (borrowed), or NULL when out of range. */
IB_EXTERN(const ib_layer *) ib_image_layer(const ib_image *img, size_t i);
/** Every name that points at this image id, sorted by strcmp of the normalised names, as docker inspect's RepoTags (borrowed). */
IB_EXTERN(size_t) ib_image_name_count(const ib_image *img);
/** The i-th name (borrowed), or NULL when out of range. */
IB_EXTERN(const char *) ib_image_name(const ib_image *img, size_t i);
/**
 * The sum of its layers' uncompressed sizes (the layer tars the store holds
 * for every image), so one image has the same size in every store, built,
 * pulled (gzip layers) or loaded.
 */
IB_EXTERN(uint64_t) ib_image_size(const ib_image *img);
/**
 * The number of repository digests of this image (docker's RepoDigests):
 * one per repository and manifest digest a push or pull of it gave.
 */
IB_EXTERN(size_t) ib_image_repo_digest_count(const ib_image *img);
/**
 * The i-th repository digest, normalised ("docker.io/library/busybox@sha256:<hex>"),
 * sorted by strcmp (borrowed), or NULL when out of range.
 */
IB_EXTERN(const char *) ib_image_repo_digest(const ib_image *img, size_t i);
/** A `docker image inspect`-like JSON object. */
IB_EXTERN(int) ib_image_inspect_json(ib_buf *out, const ib_image *img);

#define IB_IMAGE_HISTORY_ITEM_VERSION 1
/**
 * A `docker image history` row, filled by ib_image_history_get() for the
 * `version` the caller sets (IB_IMAGE_HISTORY_ITEM_INIT or _init()).
 */
typedef struct {
	unsigned int version;    /* IB_IMAGE_HISTORY_ITEM_VERSION */
	/** When: RFC 3339. */
	const char *created;
	/** The command that made it. */
	const char *created_by;
	/** Who made it. */
	const char *author;
	/** A comment. */
	const char *comment;
	/** Non-zero when the step added no layer. */
	int empty_layer;
	uint64_t size;           /* the layer's size; 0 for an empty layer */
	/** Non-zero when the row has a layer (then `layer` is its diff_id). */
	int has_layer;
	ib_digest layer;         /* its diff_id when has_layer */
} ib_image_history_item;
#define IB_IMAGE_HISTORY_ITEM_INIT { IB_IMAGE_HISTORY_ITEM_VERSION, NULL, NULL, NULL, NULL, 0, 0, 0, { { 0 } } }
/** Initialise like IB_IMAGE_HISTORY_ITEM_INIT (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_image_history_item_init(ib_image_history_item *item, unsigned int version);
/**
 * The size `docker history` shows for the layer whose diff_id is `diff_id`
 * (what Docker's layer store counts for an imported, pulled or committed
 * layer): the bytes of its regular files (a hardlink group once) and of its
 * symlinks' targets; directories, devices and whiteouts count 0. Not the
 * size of its tar. Reads the layer's tar headers.
 */
IB_EXTERN(int) ib_store_layer_content_size(uint64_t *out, ib_store *store, const ib_digest *diff_id);
/** History rows, newest first (a config without history gets one row per layer). */
IB_EXTERN(size_t) ib_image_history_count(const ib_image *img);
/** History row `i` (newest first; strings borrowed from `img`) in `out`; IB_ENOTFOUND past the end. */
IB_EXTERN(int) ib_image_history_get(ib_image_history_item *out, const ib_image *img, size_t i);

/* ---- names ---- */

/** Give the image `source` (name or id) the name `target` (docker image tag). */
IB_EXTERN(int) ib_store_tag(ib_store *store, const char *source, const char *target);
/**
 * Record the manifest blob `manifest` (OCI or Docker manifest, OCI index or
 * Docker manifest list, already in the store with the blobs it names) under
 * `name`, or untagged when `name` is NULL. For the push layer's pull.
 */
IB_EXTERN(int) ib_store_tag_manifest(ib_store *store, const char *name, const ib_digest *manifest);
/**
 * Record the repository digest `repo_digest` ("REPOSITORY@sha256:<hex>", as
 * pushed: the digest of the manifest the registry has) on the image
 * `name_or_id`; ib_push does it. It stays while the image does (ib_store_untag
 * of another name keeps it) and goes with the image.
 */
IB_EXTERN(int) ib_store_repo_digest_add(ib_store *store, const char *name_or_id, const char *repo_digest);
/** Remove one name; the image goes when it was its last name. */
IB_EXTERN(int) ib_store_untag(ib_store *store, const char *name);
/**
 * Remove the untagged index entries of the manifest `manifest` (a named
 * entry stays; its blobs stay while anything names them): a multi-platform
 * build drops those of its platforms' manifests once its index names them.
 */
IB_EXTERN(int) ib_store_untagged_drop(ib_store *store, const ib_digest *manifest);

#define IB_STORE_REMOVE_FORCE 1  /* remove an id with several names, or used by a container */
/**
 * docker rmi: a name is untagged (and the image deleted when it was its last
 * name); an id deletes the image and every name of it. `report` (may be
 * NULL) gets "Untagged: NAME" and "Deleted: ID" lines.
 */
IB_EXTERN(int) ib_store_image_remove(ib_store *store, const char *name_or_id, unsigned int flags,
				     ib_buf *report);

/** A row of ib_store_images(): one per name, and one per untagged image. */
typedef struct {
	const char *name;         /* normalised, or NULL for an untagged image */
	/** The image id (config digest). */
	ib_digest id;
	/** The digest of its manifest. */
	ib_digest manifest;
	const char *created;      /* from the config, may be NULL */
	/** The sum of its layers' uncompressed sizes, as ib_image_size(). */
	uint64_t size;
} ib_image_summary;

/** The result of ib_store_images(): rows, with count/get/free. */
typedef struct ib_image_list ib_image_list;
/** Every image, sorted by name (untagged last). */
IB_EXTERN(int) ib_store_images(ib_image_list **out, ib_store *store);
/** The number of rows. */
IB_EXTERN(size_t) ib_image_list_count(const ib_image_list *list);
/** Row `i` (borrowed from the list), or NULL when out of range. */
IB_EXTERN(const ib_image_summary *) ib_image_list_get(const ib_image_list *list, size_t i);
/** Free the list. NULL is fine. */
IB_EXTERN(void) ib_image_list_free(ib_image_list *list);

/* ---- import and export ---- */

/* 2 added source_date_epoch (the environment is never read), 3 callbacks */
#define IB_IMPORT_OPTIONS_VERSION 3
/** Options of ib_store_import() and ib_store_import_fd(). */
typedef struct {
	unsigned int version;
	const char *name;                 /* tag the result; NULL: untagged */
	const ib_image_config *config;    /* changes (docker import --change); NULL: empty */
	const char *comment;              /* history comment; NULL: "Imported from <source>" */
	const char *source;               /* how to name the input in the comment ("-") */
	/*
	 * 1: created (image and history) = source_date_epoch instead of now.
	 * Version 1 had no source_date_epoch: 1 there is IB_EUNSUPPORTED.
	 */
	int use_source_date_epoch;
	/* version 2 */
	int64_t source_date_epoch;        /* seconds since 1970 (>= 0) */
	/* version 3 */
	/* progress (BYTES "import") and cancel, see common.h; NULL: none */
	const ib_callbacks *callbacks;
} ib_import_options;
#define IB_IMPORT_OPTIONS_INIT { IB_IMPORT_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, 0, NULL }
/**
 * Initialise for `version` (1 to 3; only that version's size is written)
 * like IB_IMPORT_OPTIONS_INIT (for bindings).
 */
IB_EXTERN(int) ib_import_options_init(ib_import_options *opts, unsigned int version);

/**
 * docker import: read a root filesystem tarball (plain, gzip, zstd, xz,
 * bzip2) from `fd` and make a one-layer image of it; the layer is stored
 * uncompressed. `image_id` may be NULL.
 */
IB_EXTERN(int) ib_store_import_fd(ib_digest *image_id, ib_store *store, int fd,
				  const ib_import_options *opts);
/** ib_store_import_fd() on the file at `path` ("-" is not special here). */
IB_EXTERN(int) ib_store_import(ib_digest *image_id, ib_store *store, const char *path,
			       const ib_import_options *opts);

/** The formats ib_store_save() writes. */
typedef enum {
	IB_ARCHIVE_OCI = 0,          /* an OCI image layout directory */
	IB_ARCHIVE_OCI_ARCHIVE = 1,  /* that directory as a tar */
	IB_ARCHIVE_DOCKER = 2        /* docker save's format (docker/podman load) */
} ib_archive_format;

/* 2 added callbacks */
#define IB_SAVE_OPTIONS_VERSION 2
/** Options of ib_store_save(). */
typedef struct {
	unsigned int version;
	/** What to write. */
	ib_archive_format format;
	/*
	 * OCI formats: the org.opencontainers.image.ref.name of the (single)
	 * image; default: the tag of its name ("latest"), as docker save does.
	 * The full name always goes in io.containerd.image.name.
	 */
	const char *ref_name;
	/* version 2 */
	/* progress (BYTES "blob:<12 hex>" per blob) and cancel, see common.h; NULL: none */
	const ib_callbacks *callbacks;
} ib_save_options;
#define IB_SAVE_OPTIONS_INIT { IB_SAVE_OPTIONS_VERSION, IB_ARCHIVE_OCI, NULL, NULL }
/**
 * Initialise like IB_SAVE_OPTIONS_INIT for `version` (1 or 2; only that
 * version's size is written), for bindings; IB_EINVALID for another version.
 */
IB_EXTERN(int) ib_save_options_init(ib_save_options *opts, unsigned int version);

/**
 * Save the images `names` (names or ids) to `path`: a new (or empty)
 * directory for IB_ARCHIVE_OCI, else a file, written atomically. Never
 * changes the store.
 */
IB_EXTERN(int) ib_store_save(ib_store *store, const char *const *names, size_t n, const char *path,
			     const ib_save_options *opts);

/* ib_strarray is in buffer.h (shared by every layer; lib/util/buffer.c). */

/* 2 added callbacks */
#define IB_LOAD_OPTIONS_VERSION 2
/** Options of ib_store_load(). */
typedef struct {
	unsigned int version;
	/* the repository for OCI images whose ref.name is a bare tag ("latest") */
	const char *repository;
	/* version 2 */
	/* progress (BYTES "blob:<12 hex>" per blob) and cancel, see common.h; NULL: none */
	const ib_callbacks *callbacks;
} ib_load_options;
#define IB_LOAD_OPTIONS_INIT { IB_LOAD_OPTIONS_VERSION, NULL, NULL }
/**
 * Initialise like IB_LOAD_OPTIONS_INIT for `version` (1 or 2; only that
 * version's size is written), for bindings; IB_EINVALID for another version.
 */
IB_EXTERN(int) ib_load_options_init(ib_load_options *opts, unsigned int version);

/**
 * Load an OCI layout directory, an OCI archive or a docker-archive (the
 * format is detected; archives may be compressed). Everything is verified
 * (paths, sizes, digests, references) before any name changes; on error
 * nothing stored changes. `loaded` (may be NULL) gets the names loaded, or
 * the ids of untagged images.
 */
IB_EXTERN(int) ib_store_load(ib_strarray *loaded, ib_store *store, const char *path,
			     const ib_load_options *opts);

/* ---- pins: what other layers keep alive ---- */

/** A container record (containers/<id>/record.json); the snapshot belongs to the snapshot layer. */
typedef struct {
	unsigned int version;
	const char *id;          /* 64 hex */
	const char *name;        /* may be NULL */
	ib_digest image_id;      /* config digest of its image (kept by GC) */
	const char *image_name;  /* what the user named, may be NULL */
	const char *command;     /* may be NULL */
	const char *state;       /* "created", "running", "exited"...; may be NULL */
	const char *created;     /* RFC 3339; NULL: now at put time */
	const char *extra_json;  /* a JSON object the owner keeps with it, may be NULL */
} ib_container_record;
#define IB_CONTAINER_RECORD_VERSION 1
/** A record's defaults: the current version, everything else empty. */
#define IB_CONTAINER_RECORD_INIT { IB_CONTAINER_RECORD_VERSION, NULL, NULL, { { 0 } }, NULL, NULL, NULL, NULL, NULL }
/** Initialise like IB_CONTAINER_RECORD_INIT (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_container_record_init(ib_container_record *rec, unsigned int version);

/** Create or replace a record (atomically). */
IB_EXTERN(int) ib_store_container_put(ib_store *store, const ib_container_record *rec);
/** By id, unambiguous id prefix, or name. Free with ib_container_record_free(). */
IB_EXTERN(int) ib_store_container_get(ib_container_record **out, ib_store *store, const char *id_or_name);
/** Free a record returned by ib_store_container_get(). NULL is fine. */
IB_EXTERN(void) ib_container_record_free(ib_container_record *rec);
/** A list of container records (ib_store_container_list()). */
typedef struct ib_container_list ib_container_list;
/** Every record, sorted by created time; free with ib_container_list_free(). */
IB_EXTERN(int) ib_store_container_list(ib_container_list **out, ib_store *store);
/** The number of records in the list. */
IB_EXTERN(size_t) ib_container_list_count(const ib_container_list *list);
/** The i-th record (borrowed from the list), NULL out of range. */
IB_EXTERN(const ib_container_record *) ib_container_list_get(const ib_container_list *list, size_t i);
/** Free the list and its records. NULL is fine. */
IB_EXTERN(void) ib_container_list_free(ib_container_list *list);
/** Remove a record (the whole containers/<id>/ directory). */
IB_EXTERN(int) ib_store_container_remove(ib_store *store, const char *id);
/** containers/<id>/ for the owner's own files (the directory exists after put). */
IB_EXTERN(int) ib_store_container_dir(ib_buf *out, ib_store *store, const char *id);

/**
 * Build cache: `key` (64 hex) -> the resulting layer blob (NULL: a step
 * without a layer) and image config blob, both already stored.
 */
IB_EXTERN(int) ib_store_cache_put(ib_store *store, const char *key, const ib_digest *layer,
				  const ib_digest *config);
/** IB_ENOTFOUND when absent or when its blobs are gone. `layer`/`has_layer` may be NULL. */
IB_EXTERN(int) ib_store_cache_get(ib_digest *layer, int *has_layer, ib_digest *config,
				  ib_store *store, const char *key);
/** Remove the cache entry `key` (64 hex); the blobs it names stay until GC. */
IB_EXTERN(int) ib_store_cache_remove(ib_store *store, const char *key);
/** Remove every cache entry. */
IB_EXTERN(int) ib_store_cache_clear(ib_store *store);

/* ---- compressed variants of layers ----
 *
 * Local layers are stored uncompressed (digest = diff_id). When a layer
 * leaves (push, export) compressed, the compressed blob is stored too and
 * remembered here, so it is made once. GC keeps a variant as long as its
 * uncompressed layer is kept.
 */

/**
 * Remember that blob `blob` (already stored, of `media_type`) is `diff_id`
 * compressed — once it is checked to be: it is decompressed (streaming) and
 * hashed, and IB_EINVALID is returned, nothing recorded, when it is not
 * `diff_id` or not compressed as `media_type` says. Records that were not
 * checked so (older stores) are not returned by ib_store_variant_get().
 */
IB_EXTERN(int) ib_store_variant_put(ib_store *store, const ib_digest *diff_id, const ib_digest *blob,
				    const char *media_type);
/** The remembered variant of `diff_id` in `media_type`; IB_ENOTFOUND when none (or its blob is gone). `size` may be NULL. */
IB_EXTERN(int) ib_store_variant_get(ib_digest *blob, uint64_t *size, ib_store *store, const ib_digest *diff_id,
				    const char *media_type);

/**
 * For a compressed layer blob `blob` (already stored; a gzip or zstd
 * `media_type`): make sure its uncompressed copy is stored, checked against
 * `diff_id` (the config's), and remember `blob` as its variant — when the
 * uncompressed copy is already stored, `blob` is still decompressed and
 * checked against it first. Local layers are read uncompressed, so load and
 * pull call this for every layer. For an uncompressed media type, checks
 * that `blob` is `diff_id`. IB_EINVALID when the blob is not that layer.
 */
IB_EXTERN(int) ib_store_layer_uncompress(ib_store *store, const ib_digest *blob, const char *media_type,
					 const ib_digest *diff_id);

/**
 * Choose this host's image in an OCI index / Docker manifest list (JSON
 * text), as the store does when it reads one: the linux/<host arch> entry.
 * `digest` gets its digest, `media_type` (may be NULL) its media type.
 * IB_ENOTFOUND names the platforms the index has.
 */
IB_EXTERN(int) ib_store_index_platform(ib_digest *digest, ib_buf *media_type, const char *index_json, size_t len);

/**
 * ib_store_index_platform for `platform` ("os/arch[/variant]", normalised
 * as containerd does: "linux/aarch64" is "linux/arm64"); NULL or "": the
 * host's. IB_ENOTFOUND names the platforms the index has.
 */
IB_EXTERN(int) ib_store_index_platform_for(ib_digest *digest, ib_buf *media_type, const char *index_json, size_t len,
					   const char *platform);

/**
 * containerd's platforms.Normalize: `platform` ("arm64", "linux/aarch64",
 * "linux/arm/7", "LINUX/AMD64") as "os/arch[/variant]" in `out`
 * ("linux/arm64", "linux/arm/v7", "linux/amd64"). An os-less value is linux.
 * IB_EINVALID when it is not os/arch[/variant].
 */
IB_EXTERN(int) ib_platform_normalize(ib_buf *out, const char *platform);

/* ---- maintenance ---- */

#define IB_STORE_GC_OPTIONS_VERSION 1
/** Options of ib_store_gc(). */
typedef struct {
	unsigned int version;
	int prune_dangling;   /* first remove untagged images (docker image prune) */
	int nowait;           /* IB_EEXISTS instead of waiting for writers' leases */
} ib_store_gc_options;
#define IB_STORE_GC_OPTIONS_INIT { IB_STORE_GC_OPTIONS_VERSION, 0, 0 }
/** Initialise like IB_STORE_GC_OPTIONS_INIT (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_store_gc_options_init(ib_store_gc_options *opts, unsigned int version);

#define IB_STORE_GC_STATS_VERSION 1
/** What ib_store_gc() did; the caller sets `version` (IB_STORE_GC_STATS_INIT or _init()). */
typedef struct {
	unsigned int version;
	/** Blobs deleted. */
	uint64_t blobs_removed;
	/** Bytes they held. */
	uint64_t bytes_freed;
	/** Untagged images removed (with prune_dangling). */
	uint64_t images_removed;
} ib_store_gc_stats;
#define IB_STORE_GC_STATS_INIT { IB_STORE_GC_STATS_VERSION, 0, 0, 0 }
/** Initialise like IB_STORE_GC_STATS_INIT (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_store_gc_stats_init(ib_store_gc_stats *stats, unsigned int version);

/**
 * Delete every blob that no name, container record, cache entry or lease
 * reaches, and stale temporary files. Layer variant records that fail
 * fsck's cheap checks (see ib_store_fsck_ext) are dropped first. Safe while other processes use the
 * store. `stats` may be NULL. Never touches snapshots/.
 */
IB_EXTERN(int) ib_store_gc(ib_store_gc_stats *stats, ib_store *store, const ib_store_gc_options *opts);

/**
 * Verify every blob's digest and every reference (index entries, manifests,
 * configs, layers, cache entries, container records). 0 when sound; else
 * IB_EINVALID with the first problem as the error, and one line per
 * problem in `report` (may be NULL).
 */
IB_EXTERN(int) ib_store_fsck(ib_buf *report, ib_store *store);

#define IB_STORE_FSCK_OPTIONS_VERSION 1
/** Options of ib_store_fsck_ext(). */
typedef struct {
	unsigned int version;
	int full;   /* also decompress every compressed layer variant and check it hashes to its diff_id */
} ib_store_fsck_options;
#define IB_STORE_FSCK_OPTIONS_INIT { IB_STORE_FSCK_OPTIONS_VERSION, 0 }
/** Initialise like IB_STORE_FSCK_OPTIONS_INIT (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_store_fsck_options_init(ib_store_fsck_options *opts, unsigned int version);

/**
 * ib_store_fsck() with options (NULL: the defaults). Without `full`, a
 * variant record is checked cheaply: its blob is present with the recorded
 * size and the media type's magic, and it was verified against the layer
 * when recorded (records that fail are what ib_store_gc() drops).
 */
IB_EXTERN(int) ib_store_fsck_ext(ib_buf *report, ib_store *store, const ib_store_fsck_options *opts);

IB_END_DECL

#endif
