/*
 * A named context `oci-layout://PATH[:TAG|@DIGEST]` (docker buildx build
 * --build-context): the image of an OCI image layout directory, as buildx
 * resolves it (the manifest whose org.opencontainers.image.ref.name is TAG,
 * "latest" by default, or the one of DIGEST; an index gives this host's
 * platform). Its blobs are verified and copied into the store, and the
 * image committed there untagged: the layout itself is never changed, no
 * name of the store is.
 */
#include "build/internal.h"
#include "util/fs.h"
#include "util/json.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LAYOUT_JSON_MAX ((size_t)4 << 20)

/* Copy the blob `d` of the layout into the store, checked against its digest. */
static int copy_blob(ib_store *store, const char *layout, const ib_digest *d)
{
	if (ib_store_blob_has(store, d) == 1)
		return 0;
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, d);
	char *path = ib_sprintf("%s/blobs/sha256/%s", layout, hex);
	if (!path)
		return IB_ERROR;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int rc = fd < 0 ? ib_error_set_os(IB_LAYER_BUILD, "open `%s`", path) : 0;
	ib_blob_writer *w = NULL;
	if (rc == 0)
		rc = ib_store_blob_writer(&w, store);
	char buf[65536];
	ssize_t n = 0;
	while (rc == 0 && (n = read(fd, buf, sizeof buf)) > 0)
		rc = ib_blob_writer_write(w, buf, (size_t)n);
	if (rc == 0 && n < 0)
		rc = ib_error_set_os(IB_LAYER_BUILD, "read `%s`", path);
	if (rc == 0) {
		rc = ib_blob_writer_commit(w, NULL, NULL, d);
		w = NULL;
	}
	ib_blob_writer_abort(w);
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* Read a JSON blob of the layout (bounded), checked against its digest. */
static int read_blob(ib_buf *out, const char *layout, const ib_digest *d)
{
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, d);
	char *path = ib_sprintf("%s/blobs/sha256/%s", layout, hex);
	if (!path)
		return IB_ERROR;
	int rc = ib_read_regular_file(out, path, LAYOUT_JSON_MAX);
	if (rc == 0 && ib_digest_verify(d, out->ptr, out->size) != 0)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "`%s` does not match its digest", path);
	free(path);
	return rc;
}

static int descriptor_digest(ib_digest *d, const json_t *desc)
{
	const char *ds = ib_json_str(desc, "digest");
	if (!ds || ib_digest_parse(d, ds) < 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "a descriptor without a sha256 digest");
	return 0;
}

static int is_index(const char *mt)
{
	return mt && (!strcmp(mt, IB_MEDIA_TYPE_OCI_INDEX) || !strcmp(mt, IB_MEDIA_TYPE_DOCKER_LIST));
}

/* The manifest `index.json` names for `tag` or `want` (a digest), then through any index to this host's. */
static int find_manifest(ib_buf *manifest, const char *layout, const char *tag, const ib_digest *want,
			 const char *platform)
{
	char *ipath = ib_sprintf("%s/index.json", layout);
	ib_buf text = IB_BUF_INIT;
	json_t *index = NULL;
	int rc = ipath ? ib_read_regular_file(&text, ipath, LAYOUT_JSON_MAX) : IB_ERROR;
	if (rc == 0)
		rc = ib_json_loadb(&index, text.ptr, text.size, "the layout's index.json");
	ib_digest d;
	int found = 0;
	json_t *ms = index ? json_object_get(index, "manifests") : NULL;
	const char *mt = NULL;
	for (size_t i = 0; rc == 0 && json_is_array(ms) && i < json_array_size(ms) && !found; i++) {
		json_t *m = json_array_get(ms, i);
		ib_digest md;
		if (descriptor_digest(&md, m) < 0) {
			rc = IB_EINVALID;
			break;
		}
		if (want) {
			found = ib_digest_equal(&md, want);
		} else {
			json_t *an = json_object_get(m, "annotations");
			const char *ref = an ? ib_json_str(an, "org.opencontainers.image.ref.name") : NULL;
			found = ref && !strcmp(ref, tag);
		}
		if (found) {
			d = md;
			mt = ib_json_str(m, "mediaType");
		}
	}
	if (rc == 0 && !found)
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD, "`%s` has no image %s%s", ipath,
				   want ? "of that digest" : "tagged ", want ? "" : tag);
	char *mtc = rc == 0 && mt ? ib_strdup(mt) : NULL;
	json_decref(index);
	ib_buf_dispose(&text);
	if (rc == 0)
		rc = read_blob(manifest, layout, &d);
	if (rc == 0 && is_index(mtc)) {
		ib_digest pd;
		if ((rc = ib_store_index_platform_for(&pd, NULL, manifest->ptr, manifest->size, platform)) == 0) {
			ib_buf_clear(manifest);
			rc = read_blob(manifest, layout, &pd);
		}
	}
	free(mtc);
	free(ipath);
	return rc;
}

int ib_build__oci_layout_image(ib_image **out, builder *b, const char *name, const char *spec)
{
	/* PATH@sha256:..., else PATH:TAG (the last ':' after the last '/'), else PATH and "latest" */
	char *path = ib_strdup(spec);
	if (!path)
		return IB_ERROR;
	const char *tag = "latest";
	ib_digest want;
	int by_digest = 0, rc = 0;
	char *at = strrchr(path, '@'), *slash = strrchr(path, '/');
	if (at && (!slash || at > slash)) {
		*at = 0;
		if (ib_digest_parse(&want, at + 1) < 0)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "`%s`: not a sha256 digest", at + 1);
		by_digest = 1;
	} else {
		char *colon = strrchr(path, ':');
		if (colon && (!slash || colon > slash)) {
			*colon = 0;
			tag = colon + 1;
		}
	}
	ib_buf manifest = IB_BUF_INIT, cfg = IB_BUF_INIT;
	json_t *m = NULL;
	ib_image_config *config = NULL;
	ib_layer *layers = NULL;
	size_t n = 0;
	if (rc == 0)
		rc = find_manifest(&manifest, path, tag, by_digest ? &want : NULL, b->platform);
	if (rc == 0)
		rc = ib_json_loadb(&m, manifest.ptr, manifest.size, "the image manifest");
	ib_digest cd;
	json_t *ls = m ? json_object_get(m, "layers") : NULL;
	if (rc == 0 && (!json_is_array(ls) || descriptor_digest(&cd, json_object_get(m, "config")) < 0))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "an image manifest without config or layers");
	if (rc == 0)
		rc = read_blob(&cfg, path, &cd);
	if (rc == 0)
		rc = ib_image_config_from_json(&config, cfg.ptr, cfg.size);
	n = rc == 0 ? json_array_size(ls) : 0;
	if (rc == 0 && n != ib_image_config_diff_id_count(config))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "the manifest has %zu layers, its config %zu diff_ids", n,
				   ib_image_config_diff_id_count(config));
	if (rc == 0 && !(layers = ib_calloc(n ? n : 1, sizeof *layers)))
		rc = IB_ERROR;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		json_t *l = json_array_get(ls, i);
		ib_digest blob, diff;
		if ((rc = descriptor_digest(&blob, l)) < 0 || (rc = ib_image_config_diff_id(&diff, config, i)) < 0)
			break;
		const char *mt = ib_json_str(l, "mediaType");
		if ((rc = copy_blob(b->store, path, &blob)) == 0)
			rc = ib_store_layer_uncompress(b->store, &blob, mt ? mt : IB_MEDIA_TYPE_OCI_LAYER, &diff);
		layers[i].digest = diff; /* the store keeps layers uncompressed */
		layers[i].diff_id = diff;
	}
	ib_digest id;
	if (rc == 0)
		rc = ib_store_image_commit(&id, NULL, b->store, config, layers, n, NULL);
	if (rc == 0) {
		char hex[IB_DIGEST_STRLEN];
		ib_digest_fmt(hex, &id);
		rc = ib_store_image_lookup(out, b->store, hex);
	}
	if (rc < 0)
		ib_error_prefix("build context %s=oci-layout://%s", name, spec);
	free(layers);
	ib_image_config_free(config);
	json_decref(m);
	ib_buf_dispose(&manifest);
	ib_buf_dispose(&cfg);
	free(path);
	return rc;
}
