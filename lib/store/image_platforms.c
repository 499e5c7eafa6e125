/*
 * The platforms of an image (ib_store_image_platforms): each image manifest
 * an OCI index / Docker manifest list names, whether the store has it, and
 * its id and sizes, as `docker image ls --tree` shows them; a single
 * manifest is one platform, its config's.
 */
#include "store/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ib_image_platform_list {
	ib_image_platform *rows;
	size_t n, cap;
};

static int add_row(ib_image_platform_list *l, const char *platform, const ib_digest *manifest)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 4;
		ib_image_platform *r = realloc(l->rows, cap * sizeof *r);
		if (!r)
			return ib_error_oom();
		l->rows = r;
		l->cap = cap;
	}
	ib_image_platform *r = &l->rows[l->n];
	memset(r, 0, sizeof *r);
	if (!(r->platform = ib_strdup(platform)))
		return IB_ERROR;
	r->manifest = *manifest;
	l->n++;
	return 0;
}

/* The store's image of manifest `d` (its id, sizes, users), when the store has all of it. */
static void fill(ib_image_platform *r, ib_store *s, json_t *index, const char *media_type)
{
	ib_image *img = NULL;
	uint64_t msize = 0, csize = 0;
	if (ib_store_blob_has(s, &r->manifest) != 1 || ib_store_blob_size(&msize, s, &r->manifest) < 0 ||
	    ib_store__image_load(&img, s, index, &r->manifest, media_type) < 0 ||
	    ib_store_blob_size(&csize, s, ib_image_id(img)) < 0) {
		ib_image_free(img);
		ib_error_clear();
		return;
	}
	uint64_t content = msize + csize;
	int all = 1;
	for (size_t i = 0; i < ib_image_layer_count(img); i++) {
		const ib_layer *ly = ib_image_layer(img, i);
		all = all && ib_store_blob_has(s, &ly->digest) == 1;
		content += ly->size;
	}
	if (all) {
		r->available = 1;
		r->id = *ib_image_id(img);
		r->size = ib_image_size(img);
		r->content_size = content;
		int used = ib_store__containers_using(s, &r->id, NULL);
		r->containers = used > 0 ? (unsigned int)used : 0;
	}
	ib_image_free(img);
	ib_error_clear();
}

/* A config's "os/arch[/variant]" ("" when it says none). */
static void config_platform(char *out, size_t len, ib_store *s, json_t *index, const ib_digest *d, const char *mt)
{
	ib_image *img = NULL;
	out[0] = '\0';
	if (ib_store__image_load(&img, s, index, d, mt) == 0) {
		const ib_image_config *c = ib_image_config_of(img);
		const char *os = ib_image_config_get(c, IB_CONFIG_OS), *arch = ib_image_config_get(c, IB_CONFIG_ARCHITECTURE);
		const char *variant = ib_image_config_get(c, IB_CONFIG_VARIANT);
		if (os && *os && arch && *arch)
			snprintf(out, len, "%s/%s%s%s", os, arch, variant && *variant ? "/" : "", variant && *variant ? variant : "");
	}
	ib_image_free(img);
	ib_error_clear();
}

/* Rows for the index or manifest `d` (nested indexes followed, at most `depth` deep). */
static int walk(ib_image_platform_list *l, ib_store *s, json_t *index, const ib_digest *d, const char *given_type,
		int depth)
{
	json_t *m = NULL;
	int rc = ib_store__blob_json(&m, s, d, "manifest");
	if (rc < 0)
		return rc;
	const char *mt = ib_json_str(m, "mediaType");
	if (!mt)
		mt = given_type ? given_type : json_object_get(m, "manifests") ? IB_MEDIA_TYPE_OCI_INDEX : IB_MEDIA_TYPE_OCI_MANIFEST;
	if (!ib_store__is_index_type(mt)) {
		char plat[256];
		config_platform(plat, sizeof plat, s, index, d, mt);
		if ((rc = add_row(l, plat, d)) == 0)
			fill(&l->rows[l->n - 1], s, index, mt);
		json_decref(m);
		return rc;
	}
	json_t *list = json_object_get(m, "manifests"), *e;
	size_t i;
	json_array_foreach(list, i, e) {
		ib_digest cd;
		const char *cmt = NULL;
		if (ib_store__descriptor(&cmt, &cd, NULL, e, "index") < 0) {
			ib_error_clear();
			continue;
		}
		if (cmt && ib_store__is_index_type(cmt)) {
			if (depth < 4 && ib_store_blob_has(s, &cd) == 1 && (rc = walk(l, s, index, &cd, cmt, depth + 1)) < 0)
				break;
			ib_error_clear();
			rc = 0;
			continue;
		}
		json_t *p = json_object_get(e, "platform");
		const char *os = ib_json_str(p, "os"), *arch = ib_json_str(p, "architecture");
		const char *variant = ib_json_str(p, "variant");
		/* attestations (BuildKit's "unknown/unknown") are not platforms, as docker's tree */
		if (os && !strcmp(os, "unknown"))
			continue;
		char plat[256] = "";
		if (os && *os && arch && *arch)
			snprintf(plat, sizeof plat, "%s/%s%s%s", os, arch, variant && *variant ? "/" : "",
				 variant && *variant ? variant : "");
		else if (ib_store_blob_has(s, &cd) == 1)
			config_platform(plat, sizeof plat, s, index, &cd, cmt);
		if ((rc = add_row(l, plat, &cd)) < 0)
			break;
		fill(&l->rows[l->n - 1], s, index, cmt);
	}
	json_decref(m);
	return rc;
}

int ib_store_image_platforms(ib_image_platform_list **out, ib_store *s, const ib_digest *manifest)
{
	*out = NULL;
	if (!s || !manifest)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_store_image_platforms: no store or manifest");
	ib_image_platform_list *l = ib_calloc(1, sizeof *l);
	if (!l)
		return IB_ERROR;
	json_t *index = NULL;
	int rc = ib_store__index_read(&index, s);
	if (rc == 0 && ib_store_blob_has(s, manifest) != 1) {
		char ds[IB_DIGEST_STRLEN];
		ib_digest_fmt(ds, manifest);
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "No such image: %s", ds);
	}
	if (rc == 0)
		rc = walk(l, s, index, manifest, NULL, 0);
	json_decref(index);
	if (rc < 0) {
		ib_image_platform_list_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

size_t ib_image_platform_list_count(const ib_image_platform_list *l)
{
	return l ? l->n : 0;
}

const ib_image_platform *ib_image_platform_list_get(const ib_image_platform_list *l, size_t i)
{
	return l && i < l->n ? &l->rows[i] : NULL;
}

void ib_image_platform_list_free(ib_image_platform_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free((char *)l->rows[i].platform);
	free(l->rows);
	free(l);
}
