/*
 * Where the build cache's artifact lives (docs/cache.md): a registry tag
 * (cache_export.c, over lib/push's ib_cache_remote) or an OCI layout
 * directory (cache_local.c). cache_export.c reads, merges and writes the
 * records through this.
 */
#ifndef IB_BUILD_CACHE_H
#define IB_BUILD_CACHE_H

#include "imagebuild/build.h"
#include "build/internal.h"
#include "util/buf.h"
#include "util/json.h"

typedef struct ib_build__cache_backend ib_build__cache_backend;
struct ib_build__cache_backend {
	/* the records (config blob, digest checked) and the manifest's "digest size" lines; IB_ENOTFOUND: none */
	int (*read)(ib_build__cache_backend *self, ib_buf *config, ib_buf *listed);
	/* make the layer `diff_id` present: its blob, size and media type */
	int (*upload_layer)(ib_build__cache_backend *self, ib_digest *blob, uint64_t *size, const char **media_type,
			    ib_store *s, const ib_digest *diff_id);
	/* make the store's blob present as it is */
	int (*upload_blob)(ib_build__cache_backend *self, ib_store *s, const ib_digest *d);
	/* put the manifest: the records and these blobs (types[i] NULL: the backend's layer type) */
	int (*write)(ib_build__cache_backend *self, const void *config, size_t len, const ib_digest *blobs,
		     const uint64_t *sizes, const char *const *types, size_t n);
	/* fetch a layer blob into the store, verified against its digest and `diff_id` */
	int (*fetch_layer)(ib_build__cache_backend *self, ib_store *s, const ib_digest *blob, uint64_t size,
			   const char *media_type, const ib_digest *diff_id);
	/* an exclusive lock around read-merge-write (NULL: none, the registry's check-after-write instead) */
	int (*lock)(ib_build__cache_backend *self);
	void (*unlock)(ib_build__cache_backend *self);
	void (*free)(ib_build__cache_backend *self);
};

/* An OCI layout directory `dir` (created when `write`). */
int ib_build__cache_local_open(ib_build__cache_backend **out, const char *dir, int write);

/* cache_mounts.c: RUN --mount=type=cache instances in the artifact (cache-mounts=) */
/* The largest layer a cache mount may make or bring (uncompressed tar, or its compressed blob). */
#define IB_BUILD__CACHE_MOUNT_MAX (32ull << 30)
/* The instance `dir` as an uncompressed layer blob of the store: its diff_id, size, and the root's owner and mode. */
int ib_build__cache_mount_pack(ib_digest *diff_id, uint64_t *size, unsigned long *uid, unsigned long *gid,
			       unsigned long *mode, builder *b, const char *dir);
/* The stored layer `diff_id` unpacked safely into the new directory `dir` (removed again on failure). */
int ib_build__cache_mount_unpack(builder *b, const ib_digest *diff_id, const char *dir, unsigned long uid,
				 unsigned long gid, unsigned long mode, const char *label);

/* cache_inline.c: --cache-to type=inline, records in the image config (docs/cache.md) */
#define IB_BUILD__CACHE_INLINE_KEY "imagebuild.cache.v1"
/* The most bytes an image config with its inline records may have. */
#define IB_BUILD__CACHE_INLINE_MAX ((size_t)8 << 20)
/* `*c` without the inline records (a base image's: they are not the new image's). */
int ib_build__cache_inline_strip(ib_image_config **c);
/* `*c` with `records` (key -> {parent, config, layer: diff_id}) under the key; its JSON size in `size`. */
int ib_build__cache_inline_embed(ib_image_config **c, json_t *records, size_t *size);
/* An image's config and manifest layers ("digest size mediaType" lines) as a cache artifact's records
 * (`doc`) and layer list (`listed`); IB_ENOTFOUND for an image without inline records. */
int ib_build__cache_inline_artifact(ib_buf *doc, ib_buf *listed, const ib_buf *config, const ib_buf *layers);

#endif
