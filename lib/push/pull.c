/*
 * docker pull: manifest (an index is resolved to this host's platform),
 * config, layers (in parallel; each compressed layer also gets its checked
 * uncompressed copy), then the manifest blobs and the name.
 */
#include "push/internal.h"
#include "util/callback.h"
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
	json_t *layers;
	ib_digest *diff_ids;
} pull_job;

static int is_index(const char *mt)
{
	return !strcmp(mt, IB_MEDIA_TYPE_OCI_INDEX) || !strcmp(mt, IB_MEDIA_TYPE_DOCKER_LIST);
}

/* A Content-Type that says nothing about which document it is. */
static int generic_type(const char *ct)
{
	return !*ct || !strcasecmp(ct, "application/json") || !strcasecmp(ct, "text/plain") ||
	       !strcasecmp(ct, "application/octet-stream") || !strcasecmp(ct, "binary/octet-stream");
}

/*
 * The media type of a manifest or index: its own mediaType, else the
 * Content-Type, else what its fields say. Ambiguous documents are refused
 * (CVE-2021-41190): a mediaType that disagrees with the Content-Type, both
 * `manifests` and `layers`/`config`, an index with layers or a manifest
 * with manifests.
 */
static int media_type_of(ib_buf *out, const json_t *j, const char *content_type)
{
	const char *mt = ib_json_str(j, "mediaType");
	char ct[256] = "";
	if (content_type) {
		size_t n = strcspn(content_type, "; \t");
		snprintf(ct, sizeof ct, "%.*s", (int)(n < sizeof ct ? n : sizeof ct - 1), content_type);
	}
	int has_manifests = json_object_get(j, "manifests") != NULL;
	int has_image = json_object_get(j, "layers") != NULL || json_object_get(j, "config") != NULL;
	if (json_object_get(j, "mediaType") && !mt)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "mediaType is not a string");
	if (mt && !generic_type(ct) && strcasecmp(mt, ct))
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH,
				     "mediaType `%s` disagrees with the registry's Content-Type `%s` (an ambiguous document)", mt, ct);
	if (has_manifests && has_image)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH,
				     "both `manifests` and `layers`/`config` (an ambiguous document, refused)");
	ib_buf_clear(out);
	int rc = ib_buf_puts(out, mt                   ? mt
				  : !generic_type(ct) ? ct
				  : has_manifests     ? IB_MEDIA_TYPE_OCI_INDEX
						      : IB_MEDIA_TYPE_OCI_MANIFEST);
	if (rc == 0 && is_index(out->ptr) && has_image)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "an index (%s) with `layers`/`config`", out->ptr);
	if (rc == 0 && !is_index(out->ptr) && has_manifests)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "a manifest (%s) with `manifests`", out->ptr);
	return rc;
}

/*
 * GET a manifest by tag or digest (at most IB_PUSH_MANIFEST_LIMIT bytes);
 * its digest is checked when we asked by digest, and against the
 * Docker-Content-Digest header when there is one.
 */
static int get_manifest(ib_buf *body, ib_digest *digest, ib_buf *media_type, ib_push__registry *r, const char *object,
			const ib_digest *expected)
{
	char *rel = ib_sprintf("/v2/%s/manifests/%s", ib_push__registry_path(r), object);
	char *what = ib_sprintf("manifest %s", object);
	ib_push__sink sink = { body, IB_PUSH_MANIFEST_LIMIT, NULL, NULL, NULL };
	ib_push__response resp = { 0 };
	int rc = rel && what ? ib_push__registry_request(r, &resp, "GET", rel, IB_PUSH_MANIFEST_ACCEPT, NULL, &sink, what)
			     : IB_ERROR;
	if (rc == 0)
		rc = ib_digest_of(digest, body->ptr ? body->ptr : "", body->size);
	if (rc == 0 && expected && !ib_digest_equal(digest, expected)) {
		char got[IB_DIGEST_STRLEN];
		ib_digest_fmt(got, digest);
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: %s: the registry sent content of digest %s",
				   ib_push__registry_what(r), what, got);
	}
	if (rc == 0)
		rc = ib_push__digest_header(r, &resp, digest, what);
	if (rc == 0) {
		json_t *j = json_loadb(body->ptr ? body->ptr : "", body->size, 0, NULL);
		if (!j) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: %s is not JSON", ib_push__registry_what(r), what);
		} else if ((rc = media_type_of(media_type, j, resp.content_type)) < 0) {
			char ds[IB_DIGEST_STRLEN];
			ib_digest_fmt(ds, digest);
			ib_error_prefix("%s: %s (%s)", ib_push__registry_what(r), what, ds);
		} else if (json_integer_value(json_object_get(j, "schemaVersion")) == 1) {
			rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_PUSH, "%s: %s: Docker schema 1 manifests are not supported",
					   ib_push__registry_what(r), what);
		}
		json_decref(j);
	}
	ib_push__response_dispose(&resp);
	free(rel);
	free(what);
	return rc;
}

/* A descriptor's digest, size and media type. */
static int descriptor(ib_digest *d, uint64_t *size, const char **mt, const json_t *desc, const char *what)
{
	const char *ds = ib_json_str(desc, "digest");
	json_t *sz = json_object_get(desc, "size");
	if (!ds || ib_digest_parse(d, ds) < 0 || !json_is_integer(sz) || json_integer_value(sz) < 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: a malformed descriptor", what);
	*size = (uint64_t)json_integer_value(sz);
	if (mt)
		*mt = ib_json_str(desc, "mediaType");
	return 0;
}

static int pull_layer(ib_push__registry *r, ib_store *s, size_t i, void *payload)
{
	pull_job *job = payload;
	ib_digest d;
	uint64_t size;
	const char *mt;
	int rc = descriptor(&d, &size, &mt, json_array_get(job->layers, i), ib_push__registry_what(r));
	if (rc < 0)
		return rc;
	char id[13];
	ib_push__short(id, &d);
	int existed = ib_store_blob_has(s, &d) == 1;
	if (existed) {
		rc = ib_push__registry_progress(r, id, "Already exists", size, size);
	} else {
		if ((rc = ib_push__registry_progress(r, id, "Pulling fs layer", 0, size)) == 0 &&
		    (rc = ib_push__fetch_blob(r, s, &d, size, id)) == 0)
			rc = ib_push__registry_progress(r, id, "Download complete", size, size);
	}
	if (rc == 0 && (rc = ib_store_layer_uncompress(s, &d, mt, &job->diff_ids[i])) < 0)
		ib_error_prefix("%s", ib_push__registry_what(r));
	if (rc == 0 && !existed)
		rc = ib_push__registry_progress(r, id, "Pull complete", size, size);
	return rc;
}

/* The config's diff_ids, one per layer. */
static int read_diff_ids(ib_digest **out, ib_store *s, const ib_digest *config, size_t nlayers, const char *what)
{
	ib_buf b = IB_BUF_INIT;
	ib_image_config *c = NULL;
	int rc = ib_store_blob_read(&b, s, config);
	if (rc == 0)
		rc = ib_image_config_from_json(&c, b.ptr, b.size);
	ib_buf_dispose(&b);
	if (rc < 0) {
		ib_error_prefix("%s: image config", what);
		return rc;
	}
	size_t n = ib_image_config_diff_id_count(c);
	if (n != nlayers)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: the manifest has %zu layers, the config %zu diff_ids", what,
				   nlayers, n);
	ib_digest *ids = rc == 0 ? ib_calloc(n ? n : 1, sizeof *ids) : NULL;
	for (size_t i = 0; ids && i < n && rc == 0; i++)
		rc = ib_image_config_diff_id(&ids[i], c, i);
	ib_image_config_free(c);
	if (rc == 0 && !ids)
		rc = IB_ERROR;
	if (rc < 0) {
		free(ids);
		return rc;
	}
	*out = ids;
	return 0;
}

/* A descriptor of the manifest `mds` at `field` ("layers[2]"): errors name the manifest and the field. */
static int check_descriptor(const json_t *desc, const char *field, const char *what, const char *mds)
{
	const char *ds = ib_json_str(desc, "digest");
	json_t *sz = json_object_get(desc, "size"), *mt = json_object_get(desc, "mediaType");
	ib_digest d;
	if (!json_is_object(desc))
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: manifest %s: %s: not a descriptor (a JSON object)", what,
				     mds, field);
	if (!ds)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: manifest %s: %s.digest: missing, or not a string", what,
				     mds, field);
	int rc = ib_digest_parse(&d, ds);
	if (rc < 0) {
		ib_error_prefix("%s: manifest %s: %s.digest", what, mds, field);
		return rc;
	}
	if (!json_is_integer(sz) || json_integer_value(sz) < 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: manifest %s: %s.size: missing, or not a size (an integer >= 0)",
				     what, mds, field);
	if (mt && !json_is_string(mt))
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: manifest %s: %s.mediaType: not a string", what, mds, field);
	return 0;
}

/* Every descriptor of an image manifest, before anything is fetched. */
static int check_manifest(const json_t *m, const ib_buf *body, const char *what)
{
	ib_digest md;
	char mds[IB_DIGEST_STRLEN], field[64];
	int rc = ib_digest_of(&md, body->ptr, body->size);
	if (rc < 0)
		return rc;
	ib_digest_fmt(mds, &md);
	json_t *layers = json_object_get(m, "layers"), *l;
	if (!json_is_array(layers))
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: manifest %s: layers: missing, or not an array", what, mds);
	if ((rc = check_descriptor(json_object_get(m, "config"), "config", what, mds)) < 0)
		return rc;
	size_t i;
	json_array_foreach(layers, i, l) {
		snprintf(field, sizeof field, "layers[%zu]", i);
		if ((rc = check_descriptor(l, field, what, mds)) < 0)
			return rc;
	}
	uint64_t cfg_size = (uint64_t)json_integer_value(json_object_get(json_object_get(m, "config"), "size"));
	if (cfg_size > IB_PUSH_CONFIG_LIMIT)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH,
				     "%s: manifest %s: config.size: %llu bytes, more than an image config may have (%u)", what,
				     mds, (unsigned long long)cfg_size, IB_PUSH_CONFIG_LIMIT);
	return 0;
}

/* Config and layers of an image manifest, then the manifest blob itself. */
static int pull_image(ib_digest *image_id, ib_push__registry *r, ib_store *s, const ib_buf *body, unsigned int jobs)
{
	const char *what = ib_push__registry_what(r);
	json_t *m = json_loadb(body->ptr, body->size, 0, NULL);
	json_t *layers = json_object_get(m, "layers");
	ib_digest cfg, *diff_ids = NULL;
	uint64_t cfg_size;
	int rc = check_manifest(m, body, what);
	if (rc == 0)
		rc = descriptor(&cfg, &cfg_size, NULL, json_object_get(m, "config"), what);
	if (rc == 0 && ib_store_blob_has(s, &cfg) != 1)
		rc = ib_push__fetch_blob(r, s, &cfg, cfg_size, NULL);
	if (rc == 0)
		rc = read_diff_ids(&diff_ids, s, &cfg, json_array_size(layers), what);
	if (rc == 0) {
		pull_job job = { layers, diff_ids };
		rc = ib_push__run_jobs(r, s, json_array_size(layers), jobs, pull_layer, &job);
	}
	ib_digest md;
	if (rc == 0)
		rc = ib_store_blob_put(&md, s, body->ptr, body->size);
	if (rc == 0)
		*image_id = cfg;
	free(diff_ids);
	json_decref(m);
	return rc;
}

static int pull(ib_digest *image_id, ib_digest *manifest, ib_push__registry *r, ib_store *s, const ib_reference *ref,
		unsigned int jobs, const char *platform)
{
	const ib_digest *want = ib_reference_digest(ref);
	char object[IB_DIGEST_STRLEN + 256];
	if (want)
		ib_digest_fmt(object, want);
	else
		snprintf(object, sizeof object, "%s", ib_reference_tag(ref));
	ib_buf body = IB_BUF_INIT, mt = IB_BUF_INIT, index = IB_BUF_INIT;
	ib_digest top, d;
	int rc = ib_push__registry_ping(r);
	if (rc == 0)
		rc = get_manifest(&body, &top, &mt, r, object, want);
	if (rc == 0 && is_index(mt.ptr)) {
		/* keep the index, fetch this platform's manifest */
		ib_buf_set(&index, body.ptr, body.size);
		if ((rc = ib_store_index_platform_for(&d, NULL, index.ptr, index.size, platform)) < 0) {
			ib_error_prefix("%s: manifest %s", ib_push__registry_what(r), object);
		} else {
			ib_digest_fmt(object, &d);
			rc = get_manifest(&body, &d, &mt, r, object, &d);
		}
	}
	if (rc == 0 && is_index(mt.ptr))
		rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_PUSH, "%s: nested indexes are not supported", ib_push__registry_what(r));
	if (rc == 0)
		rc = pull_image(image_id, r, s, &body, jobs);
	if (rc == 0 && index.size)
		rc = ib_store_blob_put(&d, s, index.ptr, index.size);
	if (rc == 0) {
		/* the name and docker's RepoDigests entry (REPOSITORY@<what the tag or digest gave>) in one index update */
		char ts[IB_DIGEST_STRLEN];
		ib_digest_fmt(ts, &top);
		char *rd = ib_sprintf("%s@%s", ib_reference_repository(ref), ts);
		rc = rd ? ib_store__tag_manifest_digest(s, want ? NULL : ib_reference_name(ref), &top, rd) : IB_ERROR;
		free(rd);
		if (rc < 0)
			ib_error_prefix("%s", ib_push__registry_what(r));
	}
	if (rc == 0 && manifest)
		*manifest = top;
	ib_buf_dispose(&body);
	ib_buf_dispose(&mt);
	ib_buf_dispose(&index);
	return rc;
}

int ib_pull_options_init(ib_pull_options *opts, unsigned int version)
{
	if (!opts)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "ib_pull_options_init: NULL options");
	if (version == 1) { /* only version 1's size: the caller's struct may be that */
		ib_push__pull_options_v1 *old = (ib_push__pull_options_v1 *)(void *)opts;
		memset(old, 0, sizeof *old);
		old->version = 1;
		old->registry.version = 1;
		return 0;
	}
	if (version != 2 && version != IB_PULL_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "ib_pull_options version %u is not supported", version);
	static const ib_pull_options d = IB_PULL_OPTIONS_INIT; /* zero padding (C11 6.7.9): bindings compare bytes */
	memcpy(opts, &d, version == 2 ? offsetof(ib_pull_options, platform) : sizeof *opts);
	opts->version = version;
	return 0;
}

int ib_pull(ib_digest *image_id, ib_digest *manifest, ib_store *store, const char *refstr,
	    const ib_pull_options *opts)
{
	static const ib_pull_options defaults = IB_PULL_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	ib_pull_options v2 = IB_PULL_OPTIONS_INIT;
	if (opts->version == 1) { /* the registry options by value, holding the callbacks */
		const ib_push__pull_options_v1 *old = (const ib_push__pull_options_v1 *)(const void *)opts;
		v2.registry = (const ib_registry_options *)(const void *)&old->registry;
		v2.jobs = old->jobs;
		v2.callbacks = old->registry.callbacks;
		opts = &v2;
	}
	if (opts->version == 2) { /* without `platform` */
		memcpy(&v2, opts, offsetof(ib_pull_options, platform));
		v2.version = IB_PULL_OPTIONS_VERSION;
		opts = &v2;
	}
	if (opts->version != IB_PULL_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "pull options: unknown version %u", opts->version);
	ib_reference *ref;
	int rc = ib_reference_parse(&ref, refstr);
	if (rc < 0)
		return rc;
	/* registries.conf: a blocked registry is refused; its mirrors are tried first, in order */
	ib_push__regconf conf;
	ib_push__source_list sources = { 0 };
	ib_buf mirror_errors = IB_BUF_INIT;
	rc = ib_push__regconf_load(&conf, opts->registry);
	if (rc == 0 && (rc = ib_push__check_search(&conf, refstr)) < 0)
		ib_push__regconf_dispose(&conf);
	if (rc == 0) {
		rc = ib_push__pull_sources(&sources, &conf, ib_reference_domain(ref), ib_reference_path(ref),
					   ib_reference_digest(ref) != NULL);
		if (rc < 0)
			ib_error_prefix("pull from %s", ib_reference_repository(ref));
	}
	for (size_t i = 0; rc == 0 && i < sources.n; i++) {
		const ib_push__pull_source *src = &sources.v[i];
		char *what = src->mirror ? ib_sprintf("pull from %s/%s (a mirror of %s)", src->domain, src->path,
						      ib_reference_repository(ref))
					 : ib_sprintf("pull from %s/%s", src->domain, src->path);
		ib_push__registry *r = NULL;
		if (!what)
			rc = IB_ERROR;
		else
			rc = ib_push__registry_new_at(&r, src->domain, src->path, "pull", opts->registry, opts->callbacks,
						      what, &conf, src->insecure);
		if (rc == 0)
			ib_push__registry_memo(r, ib_store_root(store));
		ib_digest id;
		if (rc == 0 && (rc = ib_store_lease_acquire(store)) == 0) {
			rc = pull(&id, manifest, r, store, ref, opts->jobs, opts->platform);
			ib_store_lease_release(store);
		}
		if (rc == 0 && image_id)
			*image_id = id;
		ib_push__registry_free(r);
		free(what);
		/* a mirror that fails: the next place (never after a cancel) */
		if (rc < 0 && src->mirror && i + 1 < sources.n && rc != IB_EUSER) {
			ib_buf_printf(&mirror_errors, "%s%s", mirror_errors.size ? "; " : "", ib_error_last()->message);
			ib_error_clear();
			rc = 0;
			continue;
		}
		break;
	}
	if (rc < 0 && rc != IB_EUSER && mirror_errors.size) {
		char *last = ib_strdup(ib_error_last()->message);
		rc = ib_error_setc(rc, IB_LAYER_PUSH, "%s (the mirrors failed too: %s)", last ? last : "?", mirror_errors.ptr);
		free(last);
	}
	ib_buf_dispose(&mirror_errors);
	ib_push__sources_dispose(&sources);
	ib_push__regconf_dispose(&conf);
	ib_reference_free(ref);
	return ib_callback_result(rc);
}
