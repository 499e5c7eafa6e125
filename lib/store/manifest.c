/* Manifests and indexes: reading OCI and Docker schema 2, choosing the platform, checking what they name. */
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

/* The media type of a manifest JSON whose descriptor did not say (or to cross-check). */
static const char *guess_type(const json_t *m, const char *given)
{
	const char *mt = ib_json_str(m, "mediaType");
	if (mt)
		return mt;
	if (given)
		return given;
	if (json_object_get(m, "manifests"))
		return IB_MEDIA_TYPE_OCI_INDEX;
	return IB_MEDIA_TYPE_OCI_MANIFEST;
}

/*
 * The platform a lookup on this thread wants (ib_store_image_lookup_platform,
 * ib_store_index_platform_for): "os/arch[/variant]", normalised; empty: the host's.
 */
static _Thread_local char wanted[128];

void ib_store__want_platform(const char *platform)
{
	snprintf(wanted, sizeof wanted, "%s", platform ? platform : "");
}

const char *ib_store__wanted_platform(void)
{
	return wanted;
}

static int platform_matches(const json_t *desc)
{
	json_t *p = json_object_get(desc, "platform");
	if (!json_is_object(p))
		return 0;
	const char *os = ib_json_str(p, "os"), *arch = ib_json_str(p, "architecture");
	if (!wanted[0])
		return os && arch && !strcmp(os, "linux") && !strcmp(arch, ib_store__host_arch());
	return os && arch && ib_store__platform_match(wanted, os, arch, ib_json_str(p, "variant"));
}

/* The platform lookups want, for messages: "linux/<host arch>" or the wanted one. */
static void wanted_name(char *out, size_t n)
{
	if (wanted[0])
		snprintf(out, n, "%s", wanted);
	else
		snprintf(out, n, "linux/%s", ib_store__host_arch());
}

/* Check a manifest's structure: config descriptor and layers array. */
static int check_manifest(const json_t *m, const char *what)
{
	json_t *cfg = json_object_get(m, "config");
	json_t *layers = json_object_get(m, "layers");
	ib_digest d;
	int rc = ib_store__descriptor(NULL, &d, NULL, cfg, what);
	if (rc < 0)
		return rc;
	if (!json_is_array(layers))
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: no \"layers\" array", what);
	size_t i;
	json_t *l;
	json_array_foreach(layers, i, l) {
		if ((rc = ib_store__descriptor(NULL, &d, NULL, l, what)) < 0)
			return rc;
	}
	return 0;
}

static int platform_manifest(ib_digest *out, json_t **manifest, ib_store *s, const ib_digest *d,
			     const char *media_type, int depth)
{
	char ds[IB_DIGEST_STRLEN], what[IB_DIGEST_STRLEN + 16];
	ib_digest_fmt(ds, d);
	snprintf(what, sizeof what, "manifest %s", ds);
	if (depth > 4)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: indexes nested too deeply", what);
	json_t *m;
	int rc = ib_store__blob_json(&m, s, d, "manifest");
	if (rc < 0)
		return rc;
	const char *mt = guess_type(m, media_type);
	if (ib_store__is_index_type(mt)) {
		json_t *list = json_object_get(m, "manifests");
		if (!json_is_array(list)) {
			json_decref(m);
			return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: index without a \"manifests\" array", what);
		}
		json_t *pick = NULL, *e;
		size_t i;
		json_array_foreach(list, i, e) {
			ib_digest hd;
			/* the host's when no platform is asked for: only if it is here (a pull of another platform) */
			if (platform_matches(e) &&
			    (wanted[0] || (ib_store__descriptor(NULL, &hd, NULL, e, what) == 0 && ib_store_blob_has(s, &hd) == 1))) {
				pick = e;
				break;
			}
		}
		ib_error_clear();
		if (!pick && !wanted[0]) {
			/* no platform for this host: the first image manifest that is here */
			json_array_foreach(list, i, e) {
				ib_digest cd;
				if (ib_store__descriptor(NULL, &cd, NULL, e, what) == 0 && ib_store_blob_has(s, &cd) == 1) {
					pick = e;
					break;
				}
			}
		}
		ib_digest cd;
		const char *cmt;
		char wn[128];
		wanted_name(wn, sizeof wn);
		rc = pick ? ib_store__descriptor(&cmt, &cd, NULL, pick, what)
			  : ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "%s: no manifest for %s in the store", what, wn);
		/* the index names it, but only some platforms of an index are in the store */
		if (rc == 0 && wanted[0] && ib_store_blob_has(s, &cd) != 1)
			rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "%s: the manifest for %s is not in the store",
					   what, wn);
		if (rc == 0)
			rc = platform_manifest(out, manifest, s, &cd, cmt, depth + 1);
		json_decref(m);
		return rc;
	}
	if (!ib_store__is_manifest_type(mt)) {
		rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_STORE, "%s: unsupported media type `%s`", what, mt);
		json_decref(m);
		return rc;
	}
	if ((rc = check_manifest(m, what)) < 0) {
		json_decref(m);
		return rc;
	}
	*out = *d;
	*manifest = m;
	return 0;
}

int ib_store__platform_manifest(ib_digest *out, json_t **manifest, ib_store *s, const ib_digest *d,
				const char *media_type)
{
	return platform_manifest(out, manifest, s, d, media_type, 0);
}

int ib_store_index_platform(ib_digest *digest, ib_buf *media_type, const char *index_json, size_t len)
{
	json_error_t err;
	json_t *m = json_loadb(index_json, len, 0, &err);
	if (!m)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "index: line %d: %s", err.line, err.text);
	json_t *list = json_object_get(m, "manifests");
	int rc = 0;
	if (!json_is_array(list)) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "index: no \"manifests\" array");
		goto out;
	}
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		if (!platform_matches(e))
			continue;
		const char *mt = NULL;
		if ((rc = ib_store__descriptor(&mt, digest, NULL, e, "index")) == 0 && media_type) {
			ib_buf_clear(media_type);
			rc = ib_buf_puts(media_type, mt ? mt : IB_MEDIA_TYPE_OCI_MANIFEST);
		}
		goto out;
	}
	ib_buf have = IB_BUF_INIT;
	json_array_foreach(list, i, e) {
		json_t *p = json_object_get(e, "platform");
		const char *os = ib_json_str(p, "os"), *arch = ib_json_str(p, "architecture");
		const char *variant = ib_json_str(p, "variant");
		ib_buf_printf(&have, "%s%s/%s%s%s", have.size ? ", " : "", os ? os : "?", arch ? arch : "?",
			      variant && *variant ? "/" : "", variant && *variant ? variant : "");
	}
	char wn[128];
	wanted_name(wn, sizeof wn);
	rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "no manifest for %s in the index (it has: %s)", wn,
			   have.size ? have.ptr : "nothing");
	ib_buf_dispose(&have);
out:
	json_decref(m);
	return rc;
}
