/*
 * The inline cache (docs/cache.md, --cache-to type=inline): the cache
 * records of the result's steps in the image's own config, under the key
 * IB_BUILD__CACHE_INLINE_KEY, as BuildKit keeps its records under
 * "moby.buildkit.cache.v0". A record's layer is only its diff_id: its blob
 * is the image's own layer of that diff_id (the manifest's layer at the
 * same index as rootfs.diff_ids). Import (an image as a --cache-from)
 * turns the image config and manifest into the artifact form the rest of
 * cache_export.c reads, so every layer is fetched and verified as from a
 * cache artifact.
 */
#include "build/internal.h"
#include "build/cache.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

/* the config as JSON, to read or change a field the typed accessors do not know */
static int config_json(json_t **out, const ib_image_config *c)
{
	ib_buf text = IB_BUF_INIT;
	int rc = ib_image_config_to_json(&text, c);
	if (rc == 0)
		rc = ib_json_loadb(out, text.ptr ? text.ptr : "", text.size, "image config");
	ib_buf_dispose(&text);
	return rc;
}

static int config_replace(ib_image_config **c, const json_t *j, size_t limit, size_t *size)
{
	ib_buf text = IB_BUF_INIT;
	ib_image_config *n = NULL;
	int rc = ib_json_dump(&text, j, IB_JSON_SORTED);
	if (rc == 0 && limit && text.size > limit)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
				   "the image config with the inline cache would be %zu bytes, more than %zu: "
				   "export to a registry instead (type=registry)", text.size, limit);
	if (rc == 0)
		rc = ib_image_config_from_json(&n, text.ptr, text.size);
	if (rc == 0) {
		if (size)
			*size = text.size;
		ib_image_config_free(*c);
		*c = n;
	}
	ib_buf_dispose(&text);
	return rc;
}

int ib_build__cache_inline_strip(ib_image_config **c)
{
	ib_buf text = IB_BUF_INIT;
	int rc = ib_image_config_to_json(&text, *c);
	/* most configs do not have it: no parse */
	int has = rc == 0 && text.ptr && strstr(text.ptr, "\"" IB_BUILD__CACHE_INLINE_KEY "\"");
	ib_buf_dispose(&text);
	if (rc < 0 || !has)
		return rc;
	json_t *j = NULL;
	if ((rc = config_json(&j, *c)) < 0)
		return rc;
	json_object_del(j, IB_BUILD__CACHE_INLINE_KEY);
	rc = config_replace(c, j, 0, NULL);
	json_decref(j);
	return rc;
}

int ib_build__cache_inline_embed(ib_image_config **c, json_t *records, size_t *size)
{
	json_t *j = NULL;
	int rc = config_json(&j, *c);
	if (rc == 0 && json_object_set_new(j, IB_BUILD__CACHE_INLINE_KEY, json_pack("{s:O}", "records", records)) < 0)
		rc = ib_error_oom();
	if (rc == 0)
		rc = config_replace(c, j, IB_BUILD__CACHE_INLINE_MAX, size);
	json_decref(j);
	return rc;
}

int ib_build__cache_inline_artifact(ib_buf *doc, ib_buf *listed, const ib_buf *config, const ib_buf *layers)
{
	json_t *j = NULL, *out = NULL;
	int rc = ib_json_loadb(&j, config->ptr ? config->ptr : "", config->size, "image config");
	if (rc < 0)
		return rc;
	const json_t *inl = json_object_get(j, IB_BUILD__CACHE_INLINE_KEY);
	const json_t *recs = json_object_get(inl, "records");
	const json_t *diff_ids = json_object_get(json_object_get(j, "rootfs"), "diff_ids");
	size_t n = json_array_size(diff_ids);
	if (!inl) {
		json_decref(j);
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD,
				     "an image without inline cache records (build it with --cache-to type=inline)");
	}
	if (!json_is_object(recs) || !json_is_array(diff_ids))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "malformed inline cache records");
	/* the manifest's layers, one a line: "digest size mediaType", as many as diff_ids */
	json_t *descs = json_array();
	if (rc == 0 && !descs)
		rc = ib_error_oom();
	ib_buf_clear(listed);
	for (const char *p = layers->ptr; rc == 0 && p && *p;) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char line[IB_DIGEST_STRLEN + 256], dg[IB_DIGEST_STRLEN + 1], mt[200];
		unsigned long long size;
		if (len >= sizeof line) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "the image manifest: a malformed layer");
			break;
		}
		memcpy(line, p, len);
		line[len] = 0;
		if (sscanf(line, "%71s %llu %199s", dg, &size, mt) != 3) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "the image manifest: a malformed layer");
			break;
		}
		/* a Docker gzip layer is the same bytes as an OCI gzip one */
		const char *m = !strcmp(mt, IB_MEDIA_TYPE_DOCKER_LAYER_GZIP) ? IB_MEDIA_TYPE_OCI_LAYER_GZIP : mt;
		if (json_array_append_new(descs, json_pack("{s:s,s:I,s:s}", "digest", dg, "size", (json_int_t)size,
							   "mediaType", m)) < 0 ||
		    ib_buf_printf(listed, "%s %llu\n", dg, size) < 0)
			rc = ib_error_oom();
		p = e ? e + 1 : p + len;
	}
	if (rc == 0 && json_array_size(descs) != n)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "the image has %zu layers and %zu diff_ids",
				   json_array_size(descs), n);
	json_t *artifact = rc == 0 ? json_object() : NULL;
	if (rc == 0 && !artifact)
		rc = ib_error_oom();
	const char *key;
	json_t *r;
	json_object_foreach(rc == 0 ? (json_t *)recs : NULL, key, r) {
		const char *parent = ib_json_str(r, "parent"), *text = ib_json_str(r, "config");
		const json_t *l = json_object_get(r, "layer");
		if (!parent || !text || (l && !json_is_string(l))) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "a malformed inline cache record `%.80s`", key);
			break;
		}
		json_t *a = json_pack("{s:s,s:s}", "parent", parent, "config", text);
		size_t i = n;
		for (size_t k = 0; l && k < n; k++)
			if (json_is_string(json_array_get(diff_ids, k)) &&
			    !strcmp(json_string_value(json_array_get(diff_ids, k)), json_string_value(l)))
				i = k;
		if (!a) {
			rc = ib_error_oom();
		} else if (l && i == n) {
			json_decref(a);
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "inline cache record %.12s: its layer %.80s is not "
					   "one of the image's", key, json_string_value(l));
		} else {
			const json_t *d = json_array_get(descs, i);
			if (l && json_object_set_new(a, "layer", json_pack("{s:O,s:O,s:O,s:O}", "diff_id", l, "digest",
									   json_object_get(d, "digest"), "size",
									   json_object_get(d, "size"), "mediaType",
									   json_object_get(d, "mediaType"))) < 0)
				rc = ib_error_oom();
			if (rc == 0 && json_object_set_new(artifact, key, a) < 0)
				rc = ib_error_oom();
			else if (rc < 0)
				json_decref(a);
		}
		if (rc < 0)
			break;
	}
	if (rc == 0 && !(out = json_pack("{s:i,s:O,s:{}}", "imagebuild.cache", 1, "records", artifact, "blobs")))
		rc = ib_error_oom();
	if (rc == 0)
		rc = ib_json_dump(doc, out, IB_JSON_SORTED);
	json_decref(out);
	json_decref(artifact);
	json_decref(descs);
	json_decref(j);
	return rc;
}
