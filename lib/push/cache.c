/*
 * Build cache artifacts in a registry (docs/cache.md): an OCI manifest
 * whose config (IB_MEDIA_TYPE_CACHE_CONFIG) holds the cache records and
 * whose layers are the steps' gzip layers: the very blobs ib_push sends for
 * an image, so the registry stores each once and a push of a cached image
 * finds its layers there (HEAD). This file moves bytes only; what the
 * records mean is the build's (lib/build/cache_export.c).
 */
#include "push/internal.h"
#include "util/callback.h"
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

struct ib_cache_remote {
	ib_push__registry *r;
	ib_reference *ref;
	char *what;
	int pinged;
	int keeps; /* holds ib_push__gzip_keep() (a handle that pushes) */
};

int ib_cache_remote_open(ib_cache_remote **out, const char *ref, int push, const ib_registry_options *opts,
			 const ib_callbacks *callbacks)
{
	*out = NULL;
	ib_cache_remote *c = ib_calloc(1, sizeof *c);
	if (!c)
		return IB_ERROR;
	int rc = ib_reference_parse(&c->ref, ref);
	if (rc == 0 && ib_reference_digest(c->ref))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "cache ref `%s`: give a tag, not a digest", ref);
	if (rc == 0 && !(c->what = ib_sprintf("cache %s", ib_reference_familiar(c->ref))))
		rc = IB_ERROR;
	if (rc == 0)
		rc = ib_push__registry_new(&c->r, ib_reference_domain(c->ref), ib_reference_path(c->ref),
					   push ? "pull,push" : "pull", opts, callbacks, c->what);
	if (rc < 0) {
		ib_cache_remote_free(c);
		return rc;
	}
	if (push) {
		c->keeps = 1;
		ib_push__gzip_keep(1);
	}
	*out = c;
	return 0;
}

void ib_cache_remote_free(ib_cache_remote *c)
{
	if (!c)
		return;
	if (c->keeps)
		ib_push__gzip_keep(0);
	ib_push__registry_free(c->r);
	ib_reference_free(c->ref);
	free(c->what);
	free(c);
}

static int ping(ib_cache_remote *c)
{
	if (c->pinged)
		return 0;
	int rc = ib_push__registry_ping(c->r);
	c->pinged = rc == 0;
	return rc;
}

/* GET a small blob (the config) into `out`, at most `limit` bytes, checked against `d`. */
static int get_small_blob(ib_buf *out, ib_cache_remote *c, const ib_digest *d, uint64_t size, size_t limit)
{
	char ds[IB_DIGEST_STRLEN], object[IB_DIGEST_STRLEN + 8];
	ib_digest_fmt(ds, d);
	snprintf(object, sizeof object, "blob %s", ds);
	if (size > limit)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: %s: %llu bytes, more than %zu", c->what, object,
				     (unsigned long long)size, limit);
	char *rel = ib_sprintf("/v2/%s/blobs/%s", ib_push__registry_path(c->r), ds);
	if (!rel)
		return IB_ERROR;
	ib_push__sink sink = { out, limit, NULL, NULL, NULL };
	ib_push__response resp = { 0 };
	ib_buf_clear(out);
	int rc = ib_push__registry_request(c->r, &resp, "GET", rel, NULL, NULL, &sink, object);
	ib_digest got;
	if (rc == 0)
		rc = ib_digest_of(&got, out->ptr ? out->ptr : "", out->size);
	if (rc == 0 && (!ib_digest_equal(&got, d) || out->size != size))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: %s: the registry sent other content", c->what,
				   object);
	ib_push__response_dispose(&resp);
	free(rel);
	return rc;
}

/* The cache records' size limit: configs of every step inline (docs/cache.md). */
#define CACHE_CONFIG_LIMIT (64u << 20)

/*
 * The manifest the tag names: a cache artifact, or (`image` not NULL) an
 * image too, *image then telling which (an image's layer lines get their
 * media type).
 */
static int read_manifest(ib_buf *config, ib_digest *manifest, ib_buf *layers, int *image, ib_cache_remote *c)
{
	int rc = ping(c);
	if (rc < 0)
		return ib_callback_result(rc);
	const char *tag = ib_reference_tag(c->ref);
	char *rel = ib_sprintf("/v2/%s/manifests/%s", ib_push__registry_path(c->r), tag);
	char *object = ib_sprintf("manifest %s", tag);
	ib_buf body = IB_BUF_INIT;
	ib_push__sink sink = { &body, IB_PUSH_MANIFEST_LIMIT, NULL, NULL, NULL };
	ib_push__response resp = { 0 };
	json_t *m = NULL;
	ib_digest md;
	rc = rel && object ? ib_push__registry_request(c->r, &resp, "GET", rel,
							image ? IB_MEDIA_TYPE_OCI_MANIFEST ", " IB_MEDIA_TYPE_DOCKER_MANIFEST
							      : IB_MEDIA_TYPE_OCI_MANIFEST,
							NULL, &sink, object)
			   : IB_ERROR;
	if (rc == 0)
		rc = ib_digest_of(&md, body.ptr ? body.ptr : "", body.size);
	if (rc == 0)
		rc = ib_push__digest_header(c->r, &resp, &md, object);
	if (rc == 0 && !(m = json_loadb(body.ptr ? body.ptr : "", body.size, 0, NULL)))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: %s is not JSON", c->what, object);
	const json_t *cfg = m ? json_object_get(m, "config") : NULL;
	const json_t *ls = m ? json_object_get(m, "layers") : NULL;
	const char *cmt = cfg ? ib_json_str(cfg, "mediaType") : NULL;
	int is_image = image && cmt && (!strcmp(cmt, IB_MEDIA_TYPE_OCI_CONFIG) || !strcmp(cmt, IB_MEDIA_TYPE_DOCKER_CONFIG));
	if (rc == 0 && image && json_object_get(m, "manifests"))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH,
				   "%s: an image index (a multi-platform image), not one image with its cache", c->what);
	else if (rc == 0 && (!json_is_object(cfg) || !json_is_array(ls) || json_object_get(m, "manifests") || !cmt ||
			     (strcmp(cmt, IB_MEDIA_TYPE_CACHE_CONFIG) && !is_image)))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH,
				   "%s: not an imagebuild cache artifact (its config is not %s)%s", c->what,
				   IB_MEDIA_TYPE_CACHE_CONFIG, image ? " nor an image" : "");
	ib_digest cd;
	const char *cds = rc == 0 ? ib_json_str(cfg, "digest") : NULL;
	json_t *csz = rc == 0 ? json_object_get(cfg, "size") : NULL;
	if (rc == 0 && (!cds || ib_digest_parse(&cd, cds) < 0 || !json_is_integer(csz) || json_integer_value(csz) < 0))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: %s: a malformed config descriptor", c->what, object);
	if (rc == 0)
		rc = get_small_blob(config, c, &cd, (uint64_t)json_integer_value(csz), CACHE_CONFIG_LIMIT);
	if (rc == 0 && layers) {
		ib_buf_clear(layers);
		for (size_t i = 0; rc == 0 && i < json_array_size(ls); i++) {
			const json_t *l = json_array_get(ls, i);
			const char *ds = ib_json_str(l, "digest");
			const json_t *sz = json_object_get(l, "size");
			ib_digest d;
			const char *lmt = ib_json_str(l, "mediaType");
			if (!ds || ib_digest_parse(&d, ds) < 0 || !json_is_integer(sz) || json_integer_value(sz) < 0 ||
			    (is_image && (!lmt || strpbrk(lmt, " \n"))))
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: %s: layers[%zu] is malformed",
						   c->what, object, i);
			else if (is_image)
				rc = ib_buf_printf(layers, "%s %lld %s\n", ds, (long long)json_integer_value(sz), lmt);
			else
				rc = ib_buf_printf(layers, "%s %lld\n", ds, (long long)json_integer_value(sz));
		}
	}
	if (rc == 0 && manifest)
		*manifest = md;
	if (rc == 0 && image)
		*image = is_image;
	json_decref(m);
	ib_push__response_dispose(&resp);
	ib_buf_dispose(&body);
	free(rel);
	free(object);
	return ib_callback_result(rc);
}

int ib_cache_remote_read(ib_buf *config, ib_digest *manifest, ib_buf *layers, ib_cache_remote *c)
{
	return read_manifest(config, manifest, layers, NULL, c);
}

int ib_cache_remote_read_any(ib_buf *config, ib_buf *layers, int *image, ib_cache_remote *c)
{
	*image = 0;
	return read_manifest(config, NULL, layers, image, c);
}

int ib_cache_remote_upload_layer(ib_digest *digest, uint64_t *size, ib_cache_remote *c, ib_store *s,
				 const ib_digest *diff_id)
{
	int rc = ping(c);
	if (rc < 0)
		return ib_callback_result(rc);
	char id[13];
	ib_push__short(id, diff_id);
	if ((rc = ib_store_lease_acquire(s)) < 0)
		return rc;
	rc = ib_store_variant_get(digest, size, s, diff_id, IB_MEDIA_TYPE_OCI_LAYER_GZIP);
	ib_store_remote_layer rl;
	if (rc == IB_ENOTFOUND && ib_store_remote_layer_get(&rl, s, diff_id) == 0 &&
	    !strcmp(rl.media_type, IB_MEDIA_TYPE_OCI_LAYER_GZIP)) {
		/* a remote layer (lazy.c): its blob found, mounted, or fetched and sent; no byte moved when found */
		ib_error_clear();
		*digest = rl.blob;
		*size = rl.blob_size;
		rc = ib_push__remote_layer_upload(c->r, ib_reference_domain(c->ref), s, &rl, id, NULL,
						  IB_PUSH_CHUNK_DEFAULT);
		ib_store_lease_release(s);
		if (rc < 0)
			ib_error_prefix("%s", c->what);
		return ib_callback_result(rc);
	}
	if (rc == IB_ENOTFOUND) {
		ib_error_clear();
		rc = ib_push__registry_progress(c->r, id, "Compressing", 0, 0);
		if (rc == 0)
			rc = ib_push__gzip_layer(digest, size, s, diff_id);
		if (rc == 0)
			rc = ib_store__variant_put_made(s, diff_id, digest, IB_MEDIA_TYPE_OCI_LAYER_GZIP);
	}
	if (rc == 0)
		rc = ib_push__upload_blob(c->r, s, digest, id, NULL, IB_PUSH_CHUNK_DEFAULT);
	ib_store_lease_release(s);
	if (rc < 0)
		ib_error_prefix("%s", c->what);
	return ib_callback_result(rc);
}

int ib_cache_remote_upload_blob(ib_cache_remote *c, ib_store *s, const ib_digest *digest)
{
	int rc = ping(c);
	if (rc == 0 && (rc = ib_store_lease_acquire(s)) == 0) {
		rc = ib_push__upload_blob(c->r, s, digest, NULL, NULL, IB_PUSH_CHUNK_DEFAULT);
		ib_store_lease_release(s);
	}
	return ib_callback_result(rc);
}

int ib_cache_remote_write(ib_digest *manifest, ib_cache_remote *c, const void *config, size_t len,
			  const ib_digest *layers, const uint64_t *sizes, const char *const *media_types, size_t n)
{
	int rc = ping(c);
	if (rc < 0)
		return ib_callback_result(rc);
	ib_digest cd;
	char cds[IB_DIGEST_STRLEN];
	ib_digest_of(&cd, config, len);
	ib_digest_fmt(cds, &cd);
	/* the config blob: a HEAD, else POST + PUT of the bytes */
	rc = ib_push__blob_exists(c->r, &cd);
	if (rc == 0) {
		char *rel = ib_sprintf("/v2/%s/blobs/uploads/", ib_push__registry_path(c->r));
		ib_push__response resp = { 0 };
		rc = rel ? ib_push__registry_request(c->r, &resp, "POST", rel, NULL, NULL, NULL, "config upload")
			 : IB_ERROR;
		free(rel);
		if (rc == 0 && !resp.location)
			rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "%s: config upload: no Location", c->what);
		char *put = NULL;
		if (rc == 0)
			put = ib_sprintf("%s%sdigest=%s", resp.location, strchr(resp.location, '?') ? "&" : "?", cds);
		ib_push__response_dispose(&resp);
		memset(&resp, 0, sizeof resp);
		ib_push__source src = { config, len, -1, 0, "application/octet-stream", NULL, 0, 0 };
		if (rc == 0)
			rc = put ? ib_push__registry_request(c->r, &resp, "PUT", put, NULL, &src, NULL, "config upload")
				 : IB_ERROR;
		ib_push__response_dispose(&resp);
		free(put);
	}
	if (rc < 0)
		return ib_callback_result(rc);
	/* the manifest */
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
		const char *mt = media_types && media_types[i] ? media_types[i] : IB_MEDIA_TYPE_OCI_LAYER_GZIP;
		if (json_array_append_new(list, json_pack("{s:s,s:s,s:I}", "mediaType", mt,
							  "digest", ds, "size", (json_int_t)sizes[i])) < 0)
			rc = ib_error_oom();
	}
	ib_buf body = IB_BUF_INIT;
	if (rc == 0)
		rc = ib_json_dump(&body, m, 0);
	json_decref(m);
	const char *tag = ib_reference_tag(c->ref);
	char *rel = ib_sprintf("/v2/%s/manifests/%s", ib_push__registry_path(c->r), tag);
	char *object = ib_sprintf("manifest %s", tag);
	ib_push__source src = { body.ptr, body.size, -1, 0, IB_MEDIA_TYPE_OCI_MANIFEST, NULL, 0, 0 };
	ib_push__response resp = { 0 };
	if (rc == 0)
		rc = rel && object ? ib_push__registry_request(c->r, &resp, "PUT", rel, NULL, &src, NULL, object)
				   : IB_ERROR;
	if (rc == 0 && manifest)
		rc = ib_digest_of(manifest, body.ptr, body.size);
	ib_push__response_dispose(&resp);
	ib_buf_dispose(&body);
	free(rel);
	free(object);
	return ib_callback_result(rc);
}

int ib_cache_remote_fetch_layer(ib_cache_remote *c, ib_store *s, const ib_digest *digest, uint64_t size,
				const ib_digest *diff_id)
{
	int rc = ping(c);
	if (rc < 0)
		return ib_callback_result(rc);
	char id[13];
	ib_push__short(id, digest);
	if ((rc = ib_store_lease_acquire(s)) < 0)
		return rc;
	if (ib_store_blob_has(s, digest) == 1) {
		rc = ib_push__registry_progress(c->r, id, "Already exists", size, size);
	} else if ((rc = ib_push__registry_progress(c->r, id, "Pulling fs layer", 0, size)) == 0 &&
		   (rc = ib_push__fetch_blob(c->r, s, digest, size, id)) == 0) {
		rc = ib_push__registry_progress(c->r, id, "Download complete", size, size);
	}
	/* the record is trusted only once its layer is: uncompressed and checked against the diff_id */
	if (rc == 0 && (rc = ib_store_layer_uncompress(s, digest, IB_MEDIA_TYPE_OCI_LAYER_GZIP, diff_id)) < 0)
		ib_error_prefix("%s", c->what);
	ib_store_lease_release(s);
	return ib_callback_result(rc);
}
