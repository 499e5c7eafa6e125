/*
 * docker push: every layer leaves compressed (a gzip variant, made once and
 * remembered, or the compressed blob a pulled/loaded image came with),
 * layers in parallel, then the config, then the manifest under the tag.
 */
#include "push/internal.h"
#include "util/callback.h"
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
	const ib_image *img;
	ib_push__blob *blobs;   /* what each layer leaves as */
	const char *mount_from; /* another repository of the registry the image came from, or NULL */
	uint64_t chunk;
} push_job;

/* The compressed blob layer `l` leaves as: as it is, the remembered gzip variant, or a new one. */
static int compressed_layer(ib_push__blob *out, ib_push__registry *r, ib_store *s, const ib_layer *l, const char *id)
{
	if (l->media_type && (strstr(l->media_type, "gzip") || strstr(l->media_type, "zstd"))) {
		out->digest = l->digest;
		out->size = l->size;
		out->media_type = l->media_type;
		return 0;
	}
	out->media_type = IB_MEDIA_TYPE_OCI_LAYER_GZIP;
	int rc = ib_store_variant_get(&out->digest, &out->size, s, &l->diff_id, IB_MEDIA_TYPE_OCI_LAYER_GZIP);
	if (rc != IB_ENOTFOUND)
		return rc;
	ib_error_clear();
	if ((rc = ib_push__registry_progress(r, id, "Compressing", 0, l->size)) < 0)
		return rc;
	if ((rc = ib_push__gzip_layer(&out->digest, &out->size, s, &l->digest)) == 0)
		/* compressed here from the layer's own blob: recorded without a second pass over it */
		rc = ib_digest_equal(&l->digest, &l->diff_id)
			     ? ib_store__variant_put_made(s, &l->diff_id, &out->digest, IB_MEDIA_TYPE_OCI_LAYER_GZIP)
			     : ib_store_variant_put(s, &l->diff_id, &out->digest, IB_MEDIA_TYPE_OCI_LAYER_GZIP);
	if (rc < 0)
		ib_error_prefix("%s", ib_push__registry_what(r));
	return rc;
}

static int push_layer(ib_push__registry *r, ib_store *s, size_t i, void *payload)
{
	push_job *job = payload;
	const ib_layer *l = ib_image_layer(job->img, i);
	char id[13];
	ib_push__short(id, &l->diff_id);
	int rc = ib_push__registry_progress(r, id, "Preparing", 0, 0);
	if (rc == 0)
		rc = compressed_layer(&job->blobs[i], r, s, l, id);
	if (rc == 0)
		rc = ib_push__upload_blob(r, s, &job->blobs[i].digest, id, job->mount_from, job->chunk);
	return rc;
}

/* The manifest to send: the image's own when every layer already left compressed, else a new OCI one. */
static int manifest_for(ib_buf *out, const char **media_type, ib_store *s, const ib_image *img,
			const ib_push__blob *blobs, size_t n)
{
	int same = 1;
	for (size_t i = 0; i < n; i++)
		same = same && ib_digest_equal(&blobs[i].digest, &ib_image_layer(img, i)->digest);
	if (same) {
		*media_type = ib_image_manifest_media_type(img);
		return ib_store_blob_read(out, s, ib_image_manifest_digest(img));
	}
	uint64_t cfg_size;
	int rc = ib_store_blob_size(&cfg_size, s, ib_image_id(img));
	*media_type = IB_MEDIA_TYPE_OCI_MANIFEST;
	return rc < 0 ? rc : ib_push__manifest_json(out, ib_image_id(img), cfg_size, blobs, n);
}

static int put_manifest(ib_digest *out, ib_push__registry *r, const char *tag, const ib_buf *body, const char *mt)
{
	char *rel = ib_sprintf("/v2/%s/manifests/%s", ib_push__registry_path(r), tag);
	char *object = ib_sprintf("manifest %s", tag);
	ib_push__source src = { body->ptr, body->size, -1, 0, mt, NULL };
	ib_push__response resp = { 0 };
	int rc = rel && object ? ib_push__registry_request(r, &resp, "PUT", rel, NULL, &src, NULL, object) : IB_ERROR;
	if (rc == 0)
		rc = ib_digest_of(out, body->ptr, body->size);
	if (rc == 0 && resp.docker_digest) {
		ib_digest theirs;
		if (ib_digest_parse(&theirs, resp.docker_digest) < 0)
			ib_error_clear();
		else if (!ib_digest_equal(&theirs, out))
			rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "%s: %s: the registry stored it as %s",
					   ib_push__registry_what(r), object, resp.docker_digest);
	}
	ib_push__response_dispose(&resp);
	free(rel);
	free(object);
	return rc;
}

int ib_push__put_manifest(ib_digest *out, ib_push__registry *r, const char *tag, const ib_buf *body, const char *mt)
{
	return put_manifest(out, r, tag, body, mt);
}

/*
 * A repository of the destination registry (other than the destination)
 * that the image has a name in: where its blobs may be mounted from.
 */
static char *mount_source(const ib_image *img, const ib_reference *dest)
{
	for (size_t i = 0; i < ib_image_name_count(img); i++) {
		ib_reference *ref;
		if (ib_reference_parse(&ref, ib_image_name(img, i)) < 0) {
			ib_error_clear();
			continue;
		}
		char *path = NULL;
		if (!strcmp(ib_reference_domain(ref), ib_reference_domain(dest)) &&
		    strcmp(ib_reference_path(ref), ib_reference_path(dest)))
			path = ib_strdup(ib_reference_path(ref));
		ib_reference_free(ref);
		if (path)
			return path;
	}
	return NULL;
}

/* One image; its manifest under `tag`, or under its own digest when `tag` is NULL (an index's child). */
int ib_push__image(ib_digest *manifest, ib_buf *sent, const char **sent_type, ib_push__registry *r, ib_store *s,
		   const ib_image *img, const ib_reference *dest, const ib_push_options *opts, const char *tag)
{
	size_t n = ib_image_layer_count(img);
	char *from = mount_source(img, dest);
	push_job job = { img, ib_calloc(n ? n : 1, sizeof(ib_push__blob)), from,
			 opts->chunk_size ? opts->chunk_size : IB_PUSH_CHUNK_DEFAULT };
	ib_buf body = IB_BUF_INIT;
	const char *mt = NULL;
	int rc = job.blobs ? ib_push__registry_ping(r) : IB_ERROR;
	if (rc == 0)
		rc = ib_push__run_jobs(r, s, n, opts->jobs, push_layer, &job);
	if (rc == 0)
		rc = ib_push__upload_blob(r, s, ib_image_id(img), NULL, from, job.chunk);
	if (rc == 0)
		rc = manifest_for(&body, &mt, s, img, job.blobs, n);
	char by_digest[IB_DIGEST_STRLEN];
	if (rc == 0 && !tag) {
		ib_digest d;
		if ((rc = ib_digest_of(&d, body.ptr, body.size)) == 0)
			ib_digest_fmt(by_digest, &d);
	}
	if (rc == 0)
		rc = put_manifest(manifest, r, tag ? tag : by_digest, &body, mt);
	if (rc == 0 && sent)
		rc = ib_buf_set(sent, body.ptr, body.size);
	if (rc == 0 && sent_type)
		*sent_type = mt;
	ib_buf_dispose(&body);
	free(job.blobs);
	free(from);
	return rc;
}

int ib_push_options_init(ib_push_options *opts, unsigned int version)
{
	if (!opts)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "ib_push_options_init: NULL options");
	if (version == 1) { /* only version 1's size: the caller's struct may be that */
		ib_push__push_options_v1 *old = (ib_push__push_options_v1 *)(void *)opts;
		memset(old, 0, sizeof *old);
		old->version = 1;
		old->registry.version = 1;
		return 0;
	}
	if (version != IB_PUSH_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "ib_push_options version %u is not supported", version);
	static const ib_push_options d = IB_PUSH_OPTIONS_INIT; /* zero padding (C11 6.7.9): bindings compare bytes */
	memcpy(opts, &d, sizeof *opts);
	return 0;
}

int ib_push(ib_digest *manifest, ib_store *store, const char *local_name, const char *dest_ref,
	    const ib_push_options *opts)
{
	static const ib_push_options defaults = IB_PUSH_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	ib_push_options v2 = IB_PUSH_OPTIONS_INIT;
	if (opts->version == 1) { /* the registry options by value, holding the callbacks */
		const ib_push__push_options_v1 *old = (const ib_push__push_options_v1 *)(const void *)opts;
		v2.registry = (const ib_registry_options *)(const void *)&old->registry;
		v2.jobs = old->jobs;
		v2.chunk_size = old->chunk_size;
		v2.callbacks = old->registry.callbacks;
		opts = &v2;
	}
	if (opts->version != IB_PUSH_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "push options: unknown version %u", opts->version);
	ib_reference *ref;
	int rc = ib_reference_parse(&ref, dest_ref ? dest_ref : local_name);
	if (rc < 0)
		return rc;
	ib_image *img = NULL;
	ib_push__registry *r = NULL;
	char *what = ib_sprintf("push to %s", ib_reference_repository(ref));
	if (!what)
		rc = IB_ERROR;
	else if (ib_reference_digest(ref))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "%s: push to a digest (`%s`): give a tag", what,
				   ib_reference_familiar(ref));
	else if ((rc = ib_store_image_lookup(&img, store, local_name)) == 0)
		rc = ib_push__registry_new(&r, ib_reference_domain(ref), ib_reference_path(ref), "pull,push", opts->registry,
				     opts->callbacks, what);
	ib_digest md;
	if (rc == 0 && (rc = ib_store_lease_acquire(store)) == 0) {
		/* a multi-platform image: every platform's image, then the index under the tag */
		rc = ib_image_index_digest(img) ? ib_push__index(&md, r, store, img, ref, opts)
						: ib_push__image(&md, NULL, NULL, r, store, img, ref, opts, ib_reference_tag(ref));
		ib_store_lease_release(store);
	}
	if (rc == 0) {
		/* docker's RepoDigests: REPOSITORY@<the digest of the manifest the registry has> */
		char ids[IB_DIGEST_STRLEN], ms[IB_DIGEST_STRLEN];
		ib_digest_fmt(ids, ib_image_id(img));
		ib_digest_fmt(ms, &md);
		char *rd = ib_sprintf("%s@%s", ib_reference_repository(ref), ms);
		rc = rd ? ib_store_repo_digest_add(store, ids, rd) : IB_ERROR;
		if (rc < 0)
			ib_error_prefix("%s: record the repository digest", what);
		free(rd);
	}
	if (rc == 0 && manifest)
		*manifest = md;
	ib_push__registry_free(r);
	ib_image_free(img);
	free(what);
	ib_reference_free(ref);
	return ib_callback_result(rc);
}
