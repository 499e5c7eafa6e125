/*
 * --cache-to type=local,dest=DIR / --cache-from type=local,src=DIR: the
 * cache artifact of docs/cache.md in an OCI image layout directory: the
 * manifest is the one entry of DIR/index.json (ref.name "latest"), the
 * blobs under DIR/blobs/sha256/. Layers go uncompressed (the store's own
 * blobs, digest = diff_id: nothing to compress, nothing to push). Writers
 * take an flock on DIR/.imagebuild-cache.lock around read-merge-write, so
 * concurrent exports into one directory never lose a record. Read blobs are
 * checked against their digests (and layers against their diff_ids) as for
 * a registry.
 */
#include "build/cache.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
	ib_build__cache_backend parent;
	char *dir;
	ib_lock lock;
} local_backend;

#define LOCAL_CONFIG_LIMIT (64u << 20)

static char *blob_path(const local_backend *l, const ib_digest *d)
{
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, d);
	return ib_sprintf("%s/blobs/sha256/%s", l->dir, hex);
}

/* A blob of the directory into `out` (at most `limit`), checked against `d`. */
static int read_blob(ib_buf *out, local_backend *l, const ib_digest *d, size_t limit)
{
	char *p = blob_path(l, d);
	int rc = p ? ib_read_regular_file(out, p, limit) : IB_ERROR;
	ib_digest got;
	if (rc == 0 && ib_digest_of(&got, out->ptr ? out->ptr : "", out->size) == 0 && !ib_digest_equal(&got, d))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "`%s` is not its digest", p);
	free(p);
	return rc;
}

static int local_read(ib_build__cache_backend *self, ib_buf *config, ib_buf *listed)
{
	local_backend *l = (local_backend *)self;
	ib_buf idx = IB_BUF_INIT, man = IB_BUF_INIT;
	json_t *ij = NULL, *mj = NULL;
	char *p = ib_sprintf("%s/index.json", l->dir);
	int rc = p ? 0 : IB_ERROR;
	if (rc == 0 && !ib_path_exists(p))
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD, "`%s`: no such file", p);
	if (rc == 0)
		rc = ib_read_regular_file(&idx, p, 1u << 20);
	if (rc == 0)
		rc = ib_json_loadb(&ij, idx.ptr, idx.size, p);
	const json_t *ms = ij ? json_object_get(ij, "manifests") : NULL;
	const json_t *desc = json_is_array(ms) && json_array_size(ms) == 1 ? json_array_get(ms, 0) : NULL;
	ib_digest md, cd;
	const char *mds = desc ? ib_json_str(desc, "digest") : NULL;
	if (rc == 0 && (!mds || ib_digest_parse(&md, mds) < 0)) {
		ib_error_clear();
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "`%s`: not a cache artifact's layout (one manifest)", p);
	}
	if (rc == 0)
		rc = read_blob(&man, l, &md, 4u << 20);
	if (rc == 0)
		rc = ib_json_loadb(&mj, man.ptr, man.size, "the cache manifest");
	const json_t *cfg = mj ? json_object_get(mj, "config") : NULL;
	const json_t *ls = mj ? json_object_get(mj, "layers") : NULL;
	const char *cds = cfg ? ib_json_str(cfg, "digest") : NULL;
	if (rc == 0 && (!cds || !ib_json_str(cfg, "mediaType") || strcmp(ib_json_str(cfg, "mediaType"), IB_MEDIA_TYPE_CACHE_CONFIG) ||
			ib_digest_parse(&cd, cds) < 0 || !json_is_array(ls))) {
		ib_error_clear();
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "`%s`: not an imagebuild cache artifact", l->dir);
	}
	if (rc == 0)
		rc = read_blob(config, l, &cd, LOCAL_CONFIG_LIMIT);
	if (rc == 0) {
		ib_buf_clear(listed);
		for (size_t i = 0; rc == 0 && i < json_array_size(ls); i++) {
			const json_t *e = json_array_get(ls, i);
			const char *ds = ib_json_str(e, "digest");
			const json_t *sz = json_object_get(e, "size");
			if (!ds || !json_is_integer(sz))
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "`%s`: layers[%zu] is malformed", l->dir, i);
			else
				rc = ib_buf_printf(listed, "%s %lld\n", ds, (long long)json_integer_value(sz));
		}
	}
	json_decref(ij);
	json_decref(mj);
	ib_buf_dispose(&idx);
	ib_buf_dispose(&man);
	free(p);
	return rc;
}

/* Copy the store's blob `d` into the directory unless it is there. */
static int put_store_blob(local_backend *l, ib_store *s, const ib_digest *d)
{
	char *p = blob_path(l, d);
	if (!p)
		return IB_ERROR;
	if (ib_path_exists(p)) {
		free(p);
		return 0;
	}
	int in = -1, rc = ib_store_blob_open(&in, s, d);
	ib_atomic_file af;
	if (rc == 0 && (rc = ib_atomic_open(&af, p, 0644)) == 0) {
		char buf[1 << 16];
		ssize_t n;
		while (rc == 0 && (n = read(in, buf, sizeof buf)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			rc = n < 0 ? ib_error_set_os(IB_LAYER_BUILD, "read a blob for `%s`", p) : ib_write_all(af.fd, buf, (size_t)n);
		}
		rc = rc == 0 ? ib_atomic_commit(&af) : (ib_atomic_abort(&af), rc);
	}
	if (in >= 0)
		close(in);
	free(p);
	return rc;
}

static int local_upload_layer(ib_build__cache_backend *self, ib_digest *blob, uint64_t *size, const char **mt,
			      ib_store *s, const ib_digest *diff_id)
{
	local_backend *l = (local_backend *)self;
	*blob = *diff_id;
	*mt = IB_MEDIA_TYPE_OCI_LAYER;
	int rc = ib_store_blob_size(size, s, diff_id);
	return rc < 0 ? rc : put_store_blob(l, s, diff_id);
}

static int local_upload_blob(ib_build__cache_backend *self, ib_store *s, const ib_digest *d)
{
	return put_store_blob((local_backend *)self, s, d);
}

static int local_write(ib_build__cache_backend *self, const void *config, size_t len, const ib_digest *layers,
		       const uint64_t *sizes, const char *const *types, size_t n)
{
	local_backend *l = (local_backend *)self;
	ib_digest cd, md;
	char cds[IB_DIGEST_STRLEN], mds[IB_DIGEST_STRLEN];
	ib_digest_of(&cd, config, len);
	ib_digest_fmt(cds, &cd);
	char *cp = blob_path(l, &cd);
	int rc = cp ? ib_atomic_write(cp, config, len, 0644) : IB_ERROR;
	free(cp);
	json_t *list = json_array();
	json_t *m = list ? json_pack("{s:i,s:s,s:s,s:{s:s,s:s,s:I},s:o}", "schemaVersion", 2, "mediaType",
				     IB_MEDIA_TYPE_OCI_MANIFEST, "artifactType", IB_MEDIA_TYPE_CACHE_CONFIG, "config",
				     "mediaType", IB_MEDIA_TYPE_CACHE_CONFIG, "digest", cds, "size", (json_int_t)len,
				     "layers", list)
			 : NULL;
	if (!m)
		return ib_error_oom();
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char ds[IB_DIGEST_STRLEN];
		ib_digest_fmt(ds, &layers[i]);
		if (json_array_append_new(list, json_pack("{s:s,s:s,s:I}", "mediaType",
							  types && types[i] ? types[i] : IB_MEDIA_TYPE_OCI_LAYER, "digest",
							  ds, "size", (json_int_t)sizes[i])) < 0)
			rc = ib_error_oom();
	}
	ib_buf body = IB_BUF_INIT, idx = IB_BUF_INIT;
	if (rc == 0)
		rc = ib_json_dump(&body, m, 0);
	json_decref(m);
	char *mp = NULL;
	if (rc == 0 && (rc = ib_digest_of(&md, body.ptr, body.size)) == 0 && !(mp = blob_path(l, &md)))
		rc = IB_ERROR;
	if (rc == 0)
		rc = ib_atomic_write(mp, body.ptr, body.size, 0644);
	ib_digest_fmt(mds, &md);
	if (rc == 0)
		rc = ib_buf_printf(&idx, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\","
				   "\"artifactType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"annotations\":"
				   "{\"org.opencontainers.image.ref.name\":\"latest\"}}]}\n",
				   IB_MEDIA_TYPE_OCI_INDEX, IB_MEDIA_TYPE_OCI_MANIFEST, IB_MEDIA_TYPE_CACHE_CONFIG, mds,
				   body.size);
	char *ip = ib_sprintf("%s/index.json", l->dir);
	if (rc == 0)
		rc = ip ? ib_atomic_write(ip, idx.ptr, idx.size, 0644) : IB_ERROR;
	free(ip);
	free(mp);
	ib_buf_dispose(&body);
	ib_buf_dispose(&idx);
	return rc;
}

static int local_fetch_layer(ib_build__cache_backend *self, ib_store *s, const ib_digest *blob, uint64_t size,
			     const char *mt, const ib_digest *diff_id)
{
	local_backend *l = (local_backend *)self;
	int rc = ib_store_lease_acquire(s);
	if (rc < 0)
		return rc;
	if (ib_store_blob_has(s, blob) != 1) {
		char *p = blob_path(l, blob);
		int in = p ? open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
		ib_blob_writer *w = NULL;
		if (!p)
			rc = IB_ERROR;
		else if (in < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", p);
		else
			rc = ib_store_blob_writer(&w, s);
		uint64_t done = 0;
		char buf[1 << 16];
		ssize_t n;
		while (rc == 0 && (n = read(in, buf, sizeof buf)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 || (done += (uint64_t)n) > size)
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "`%s`: %s", p,
						   n < 0 ? "read error" : "larger than its descriptor");
			else
				rc = ib_blob_writer_write(w, buf, (size_t)n);
		}
		if (rc == 0 && done != size)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "`%s`: smaller than its descriptor", p);
		if (rc == 0)
			rc = ib_blob_writer_commit(w, NULL, NULL, blob);
		else
			ib_blob_writer_abort(w);
		if (in >= 0)
			close(in);
		free(p);
	}
	if (rc == 0) /* records without a media type are a registry's: gzip */
		rc = ib_store_layer_uncompress(s, blob, mt ? mt : IB_MEDIA_TYPE_OCI_LAYER_GZIP, diff_id);
	ib_store_lease_release(s);
	return rc;
}

static int local_lock(ib_build__cache_backend *self)
{
	local_backend *l = (local_backend *)self;
	char *p = ib_sprintf("%s/.imagebuild-cache.lock", l->dir);
	int rc = p ? ib_lock_acquire(&l->lock, p, IB_LOCK_EXCLUSIVE) : IB_ERROR;
	free(p);
	return rc;
}

static void local_unlock(ib_build__cache_backend *self)
{
	ib_lock_release(&((local_backend *)self)->lock);
}

static void local_free(ib_build__cache_backend *self)
{
	local_backend *l = (local_backend *)self;
	ib_lock_release(&l->lock);
	free(l->dir);
	free(l);
}

int ib_build__cache_local_open(ib_build__cache_backend **out, const char *dir, int write)
{
	*out = NULL;
	local_backend *l = ib_calloc(1, sizeof *l);
	if (!l)
		return IB_ERROR;
	l->lock.fd = -1;
	l->parent.read = local_read;
	l->parent.upload_layer = local_upload_layer;
	l->parent.upload_blob = local_upload_blob;
	l->parent.write = local_write;
	l->parent.fetch_layer = local_fetch_layer;
	l->parent.lock = local_lock;
	l->parent.unlock = local_unlock;
	l->parent.free = local_free;
	int rc = (l->dir = ib_strdup(dir)) ? 0 : IB_ERROR;
	char *blobs = rc == 0 ? ib_sprintf("%s/blobs/sha256", dir) : NULL;
	if (rc == 0 && write) {
		char *layout = ib_sprintf("%s/oci-layout", dir);
		rc = blobs && layout ? ib_mkdir_p(blobs, 0755) : IB_ERROR;
		if (rc == 0 && !ib_path_exists(layout))
			rc = ib_atomic_write(layout, "{\"imageLayoutVersion\":\"1.0.0\"}", 30, 0644);
		free(layout);
	}
	free(blobs);
	if (rc < 0) {
		local_free(&l->parent);
		return rc;
	}
	*out = &l->parent;
	return 0;
}
