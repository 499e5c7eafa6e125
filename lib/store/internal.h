/* The store layer's internals, shared by the files of lib/store/. */
#ifndef IB_STORE_INTERNAL_H
#define IB_STORE_INTERNAL_H

#include "imagebuild/store.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/lock.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

#define IB_ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"
#define IB_ANNOTATION_CONTAINERD_NAME "io.containerd.image.name"
/* an index entry's repository digests: "docker.io/library/x@sha256:<hex>", space-separated */
#define IB_ANNOTATION_REPO_DIGESTS "org.imagebuild.repo.digests"
/* JSON files we read whole are small; anything larger is refused. */
#define IB_STORE_MAX_JSON (16u << 20)

struct ib_store {
	char *root;
	char *blobs;   /* <root>/blobs/sha256 */
	char *tmp;     /* <root>/tmp: blobs being written, loads being staged */
	ib_lock lease;
	unsigned int leases;
	/*
	 * What this handle read last (store.c, memo.c): index.json parsed, with
	 * the stat(2) identity it had, reused while that identity holds and the
	 * file is older than the racy window; the index memo's entries. Guarded
	 * by cache_mu (a handle may serve several threads).
	 */
	pthread_mutex_t cache_mu;
	json_t *index_cache;
	struct stat index_st;
	ib_digest index_key; /* the sha256 of the bytes index_cache was parsed from */
	ib_digest key_cache; /* ib_store__index_key's last hash, of the file as key_st */
	struct stat key_st;
	int key_known;
	struct ib_store__memo *memo_cache;
	struct ib_store__names *names_cache; /* names.c: the names file last read (keyed) */
	/* remote.c: this handle's fetcher of remote layers (NULL: the process-wide one) */
	ib_store_remote_fetch_fn remote_fetch;
	void *remote_payload;
};

/* <root>/<rel>, malloc'ed (NULL on OOM with the error set). */
char *ib_store__path(const ib_store *s, const char *rel);
char *ib_store__blob_path(const ib_store *s, const ib_digest *d);

/*
 * Test hook: called at every step of a write or a GC with the step's name
 * ("lease", "blob-write", "blob-rename", "index-locked", "index-write",
 * "gc-locked", "gc-scanned", "gc-delete", ...).
 */
typedef void (*ib_store__hook_fn)(const char *point, void *payload);
void ib_store__set_hook(ib_store__hook_fn hook, void *payload);
void ib_store__hook(const char *point);

/* index.json: read (a fresh object), and read-modify-write under index.lock. */
int ib_store__index_read(json_t **out, ib_store *s);
/* The same, shared with the handle's cache: a reference the caller must not modify (lookups, listings). */
int ib_store__index_read_shared(json_t **out, ib_store *s);
int ib_store__index_lock(ib_lock *lock, ib_store *s);
int ib_store__index_write(ib_store *s, json_t *index);

/* Read a JSON blob (verified, size-limited). `what` names it in errors. */
int ib_store__blob_json(json_t **out, ib_store *s, const ib_digest *d, const char *what);
/* Put a JSON value as a blob in its canonical compact form. */
int ib_store__blob_put_json(ib_digest *out, uint64_t *size, ib_store *s, const json_t *j);
/*
 * Verify a file of ours (a staged archive member) and hard-link it into blobs/
 * without copying. IB_EUNSUPPORTED (no error set worth keeping) when it cannot
 * be linked: copy it then. `expected_size` < 0: unknown.
 */
int ib_store__blob_adopt_fd(ib_store *s, int fd, const ib_digest *expected, int64_t expected_size, const char *what);
/* Stream fd into a new blob. */
int ib_store__blob_from_fd(ib_digest *out, uint64_t *size, ib_store *s, int fd);
/* The temporary-file directory of a blob writer, and a fresh temp dir. */
int ib_store__mkdtemp(ib_buf *out, ib_store *s, const char *tag);

/* A descriptor's fields; IB_EINVALID naming `what` when malformed. */
int ib_store__descriptor(const char **media_type, ib_digest *d, uint64_t *size, const json_t *desc,
			 const char *what);
json_t *ib_store__descriptor_new(const char *media_type, const ib_digest *d, uint64_t size);

/* Media type classes. */
int ib_store__is_index_type(const char *mt);
int ib_store__is_manifest_type(const char *mt);

/*
 * From a manifest or index digest, the image manifest for this host's
 * platform: its digest, media type and parsed JSON.
 */
int ib_store__platform_manifest(ib_digest *out, json_t **manifest, ib_store *s, const ib_digest *d,
				const char *media_type);

/* Every container record, sorted by created time (ib_store_container_list's items). */
int ib_store__container_records(ib_container_record ***out, size_t *n, ib_store *s);
void ib_store__container_records_free(ib_container_record **list, size_t n);

/* RFC 3339 of `when` (seconds since 1970); now when `when` < 0. */
int ib_store__timestamp(ib_buf *out, int64_t when);
/* 64 lower-case hex digits at *p then a space, as the memo and the names file write a digest (memo.c); *p moves past the space. */
int ib_store__parse_hex_field(ib_digest *d, char **p);

/* The host architecture in Go's names (amd64, arm64...). */
const char *ib_store__host_arch(void);
/* platform.c: the platform lookups of this thread want ("" = the host's), and matching one */
void ib_store__want_platform(const char *platform);
const char *ib_store__wanted_platform(void);
int ib_store__platform_match(const char *want, const char *os, const char *arch, const char *variant);
/* the digest of the index entry an image was found through (image.c); NULL: not known */
const ib_digest *ib_store__image_top(const ib_image *img);
/* save.c's: `fn` on every platform of a multi-platform image; *whole = 0 (nothing done) when some are missing */
int ib_store__save_index(int *whole, ib_store *s, const ib_image *img,
			 int (*fn)(void *payload, ib_store *s, const ib_image *child), void *payload);

/* libarchive is opened on first use (archive_lazy.c): whether it is loaded (tests). */
int ib_store__archive_loaded(void);
/*
 * Open it now (0, or IB_ERROR with the error set): for a caller about to
 * need it on another thread while this one loads something else — two
 * dlopen()s take turns on the loader's lock.
 */
int ib_store__archive_load(void);

/* Leases held inside library calls. */
int ib_store__lease(ib_store *s);
void ib_store__unlease(ib_store *s);

/* The config JSON inside a config object (borrowed) and adopting one. */
json_t *ib_image_config__json(const ib_image_config *c);
int ib_image_config__wrap(ib_image_config **out, json_t *j); /* takes the reference */

/* Names → images (image.c). */
int ib_store__image_load(ib_image **out, ib_store *s, json_t *index, const ib_digest *manifest,
			 const char *media_type);
/* Add or replace a name (NULL: untagged entry) on a manifest in a locked index object. */
int ib_store__index_set(ib_store *s, json_t *index, const char *name, const char *media_type,
			const ib_digest *manifest, uint64_t size);
int ib_store__tag_manifest_locked(ib_store *s, json_t *index, const char *name, const ib_digest *manifest);
/*
 * As ib_store__index_set / ib_store__tag_manifest_locked / ib_store_tag_manifest,
 * and record the normalised repository digest `repo_digest` ("repo@sha256:...",
 * may be NULL) on the image in the same index update (pull).
 */
int ib_store__index_set_digest(ib_store *s, json_t *index, const char *name, const char *media_type,
			       const ib_digest *d, uint64_t size, const char *repo_digest);
int ib_store__tag_manifest_digest_locked(ib_store *s, json_t *index, const char *name, const ib_digest *manifest,
					 const char *repo_digest);
int ib_store__tag_manifest_digest(ib_store *s, const char *name, const ib_digest *manifest, const char *repo_digest);

/* Pins (pins.c): how many container records use image `id` (and the first one's id). */
int ib_store__containers_using(ib_store *s, const ib_digest *id, char **which);
int ib_store__cache_read(ib_digest *layer, int *has_layer, ib_digest *config, ib_store *s, const char *key);
/* Drop untagged images (image.c). */
int ib_store__prune_dangling(ib_store *s, uint64_t *count);

/* Write an OCI manifest naming `config` and `layers` (image.c). */
int ib_store__write_manifest(ib_digest *manifest, uint64_t *msize, ib_store *s, const ib_digest *config,
			     uint64_t config_size, const ib_layer *layers, size_t n);
/* The same with the manifest's annotations ("KEY=VALUE", NULL-terminated; NULL: none). */
int ib_store__write_manifest_annotated(ib_digest *manifest, uint64_t *msize, ib_store *s, const ib_digest *config,
				       uint64_t config_size, const ib_layer *layers, size_t n,
				       const char *const *annotations);
/* Lease, lock, read, change, write index.json, unlock, unlease. */
typedef int (*index_change_fn)(ib_store *s, json_t *index, void *payload);
int ib_store__index_update(ib_store *s, index_change_fn fn, void *payload);

/* Blob writer internals (blob.c): its temporary file's descriptor (read-write). */
int ib_store__blob_writer_fd(ib_blob_writer *w);
/*
 * The content is whole: its digest (and size) now, before the commit makes
 * it durable; nothing more may be written. ib_blob_writer_commit() follows
 * (or the abort).
 */
int ib_store__blob_writer_seal(ib_blob_writer *w, ib_digest *out, uint64_t *size);
/* Decompress (gzip, zstd, xz, bzip2 or nothing) what `fd` yields into `w`. `what` names the input. */
int ib_store__decompress_into(ib_blob_writer *w, int fd, const char *what);
/* The same, reporting BYTES `id` with `text` to `cb` and polling its cancel flag. */
int ib_store__decompress_into_cb(ib_blob_writer *w, int fd, const char *what, const ib_callbacks *cb,
				 const char *id, const char *text);
/* The same, but the input must be compressed exactly as layer `media_type` (gzip, zstd) says. */
int ib_store__decompress_layer_into(ib_blob_writer *w, int fd, const char *media_type, const char *what);
/* The sha256 of what `fd` decompresses to (as layer `media_type` says), streamed: nothing is kept. */
int ib_store__decompressed_digest(ib_digest *out, int fd, const char *media_type, const char *what);

/* Variants (variant.c). */
char *ib_store__variant_path(ib_store *s, const ib_digest *diff_id);
int ib_store__variants_read(json_t **out, ib_store *s, const ib_digest *diff_id);

/* Layers kept only unpacked (regen.c): 1 and the size when `d` is one, 0 when not. */
int ib_store__layer_source_size(uint64_t *size, ib_store *s, const ib_digest *d);
/* The layer's tar regenerated into an unlinked temporary file, checked against its digest. */
int ib_store__layer_source_open(int *fd_out, ib_store *s, const ib_digest *d);
/* Regenerate and check only (fsck). */
int ib_store__layer_source_check(ib_store *s, const ib_digest *d);
/*
 * The layers the regeneration of `d` stands on: its source's "chain" (a
 * JSON object's array of layer digests, as the snapshot layer writes it;
 * store.h), each given to `fn`. 1 when `d` is a record, 0 when not, < 0 on
 * a damaged record or when `fn` failed.
 */
int ib_store__layer_source_needs(ib_store *s, const ib_digest *d, int (*fn)(const ib_digest *needed, void *payload),
				 void *payload);
/*
 * Blob `d` for a consumer that can take it as a stream: 0 and `*fd_out` (to
 * read) when it is a file (or a remote layer, fetched and checked, as
 * ib_store_blob_open() does); 1 when it is a layer kept only unpacked, which
 * was regenerated straight into `write` (no temporary file) and checked
 * against its digest and size *after* the last byte: until this returns 1,
 * the consumer must treat what it got as unverified (keep nothing, send
 * nothing for good). < 0 on error (a damaged unpacked layer: IB_EINVALID,
 * the same error as ib_store_blob_open()).
 */
int ib_store__blob_open_or_stream(int *fd_out, ib_store *s, const ib_digest *d, ib_store_write_cb write,
				  void *payload);
/* The annotation a variant record carries once its blob was checked against the layer: the diff_id. */
#define IB_VARIANT_VERIFIED "org.imagebuild.verified.diff_id"
/* Check, streaming, that `blob` (of layer `media_type`) is `diff_id`: decompressed, or equal when uncompressed. */
int ib_store__variant_verify(ib_store *s, const ib_digest *diff_id, const ib_digest *blob, const char *media_type);
/*
 * Record `blob` as a variant the library itself compressed from the store's own
 * uncompressed blob `diff_id` (push's compressor): it is not decompressed again
 * to be checked, which would cost a push a second pass over every layer it
 * compresses. Anything that comes from outside goes through ib_store_variant_put.
 */
int ib_store__variant_put_made(ib_store *s, const ib_digest *diff_id, const ib_digest *blob, const char *media_type);
/*
 * One record of variants/<diff_id>.json: well-formed, its blob present with the
 * recorded size and the media type's magic, marked verified (`full`: instead
 * decompressed and hashed). IB_EINVALID with the reason as the error.
 */
int ib_store__variant_check(ib_store *s, const ib_digest *diff_id, const json_t *e, int full);

/*
 * The index memo (memo.c, <root>/index.memo): what an index entry's image
 * manifest `top` resolves to, so lookups and listings open no manifest or
 * config of the other images. A cache, never the truth: load never fails on
 * a missing or damaged file (empty memo), save writes only when something was
 * added, keeping the entries of `index`.
 */
typedef struct {
	ib_digest top, manifest, id;
	uint64_t size;      /* ib_image_size, when summary */
	char created[40];   /* the config's created, when summary ("" none) */
	int summary;        /* size and created known */
	int used;
} ib_store__memo_entry;
typedef struct ib_store__memo ib_store__memo;
/* Load: the handle's copy when it has one (a memo line never goes stale), else the file. */
int ib_store__memo_load(ib_store__memo **out, ib_store *s);
const ib_store__memo_entry *ib_store__memo_get(ib_store__memo *m, const ib_digest *top);
int ib_store__memo_put(ib_store__memo *m, const ib_store__memo_entry *e);
int ib_store__memo_save(ib_store__memo *m, ib_store *s, json_t *index);
void ib_store__memo_free(ib_store__memo *m);

/*
 * The names file (names.c, <root>/index.names): index.json's entries with
 * what each resolves to, keyed by the sha256 of the index.json bytes they were
 * made from. A cache, never the truth: believed only under that key and its
 * own sum; load gives NULL (not an error) when there is no such file.
 */
typedef struct {
	ib_digest top;           /* the entry's digest */
	uint64_t dsize;          /* its descriptor's size */
	const char *top_type;    /* its descriptor's mediaType, or NULL */
	const char *name;        /* ref.name annotation, or NULL */
	const char *digests;     /* repository digests (space-separated), or NULL */
	int resolved;            /* an image manifest: manifest and id known */
	ib_digest manifest, id;
	int summary;             /* size and created known (resolved only) */
	uint64_t size;
	const char *created;     /* or NULL */
	uint64_t off, len;       /* its bytes in index.json (when the names are ranged) */
} ib_store__names_entry;
typedef struct ib_store__names {
	char *buf; /* the strings of e[] point into it */
	ib_store__names_entry *e;
	size_t n;
	ib_digest key;
	int refs;
	/*
	 * 1 when every entry's off and len are known, and open and close: the
	 * offsets of the manifests array's '[' and ']' (index.json in this
	 * library's layout, whose entries image.c splices instead of parsing)
	 */
	int ranged;
	uint64_t open, close;
} ib_store__names;
/* The sha256 of index.json's bytes as they are now. */
int ib_store__index_key(ib_digest *key, ib_store *s);
/* The names file for index.json as it is now (the handle's copy when its key holds), or *out NULL. */
int ib_store__names_load(ib_store__names **out, ib_store *s);
/* The same, for index.json bytes that hash to `key` (the caller read or wrote them). */
int ib_store__names_load_key(ib_store__names **out, ib_store *s, const ib_digest *key);
/*
 * Write it for the index.json bytes `key` (nothing when the same bytes are
 * there, or when a string cannot be held). `span` (or NULL): the manifests
 * array's '[' and ']' offsets, when every entry's off and len are set.
 */
int ib_store__names_save(ib_store *s, const ib_digest *key, const ib_store__names_entry *e, size_t n,
			 const uint64_t *span);
/* The same, formatted in `buf` (taken: its pages already touched; disposed, left empty). */
int ib_store__names_save_buf(ib_store *s, const ib_digest *key, const ib_store__names_entry *e, size_t n,
			     const uint64_t *span, ib_buf *buf);
/*
 * index.json's bytes for `index` in this library's layout — what jansson's
 * compact dump gives — with where each entry of "manifests" is (`span`, may
 * be NULL): span[0] and span[1] the array's '[' and ']', ranges[2i] and
 * ranges[2i+1] entry i's offset and length (*ranges malloc'ed, n entries).
 */
typedef struct {
	uint64_t open, close;
	uint64_t *ranges;
	size_t n;
	int ok; /* the index had a manifests array */
} ib_store__index_span;
int ib_store__index_dump(ib_buf *out, const json_t *index, ib_store__index_span *span);
void ib_store__index_span_dispose(ib_store__index_span *span);
void ib_store__names_free(ib_store__names *n);
/* As ib_store__index_read_shared, with the sha256 of the bytes parsed (`key` may be NULL). */
int ib_store__index_read_shared_key(json_t **out, ib_digest *key, ib_store *s);
/*
 * index.json for a change (under index.lock): the handle's shared parse
 * (*fresh = 0: never modify it) or, when it has none that holds, a new parse
 * of its own (*fresh = 1: the caller's to change; not kept as the cache).
 */
int ib_store__index_read_change(json_t **out, int *fresh, ib_store *s);
/* Write `b` (a dump of the index) as index.json, with its sha256 (`key` may be NULL). */
int ib_store__index_write_bytes(ib_store *s, const ib_buf *b, ib_digest *key);
/* As ib_store__index_write, with the sha256 of the bytes written (`key` may be NULL). */
int ib_store__index_write_key(ib_store *s, json_t *index, ib_digest *key);

/* Remote layers (remote.c): 1 when `d` has a remote record, 0 when not. */
int ib_store__remote_has(ib_store *s, const ib_digest *d);
/* The record of `d`: 1 and its fields (`out` may be NULL), 0 when none, < 0 when damaged. */
int ib_store__remote_read(ib_store_remote_layer *out, ib_store *s, const ib_digest *d);
/* Fetch the remote layer `d` (checked) and open its blob. */
int ib_store__remote_open(int *fd_out, ib_store *s, const ib_digest *d);
/* 1 when the store holds `d` itself: a blob file or a layer kept unpacked (not a remote record). */
int ib_store__blob_local_has(ib_store *s, const ib_digest *d);

/* Layer helpers. */
int ib_store__layer_is_compressed(const char *media_type);

#endif
