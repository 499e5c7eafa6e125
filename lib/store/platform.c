/*
 * Platforms: containerd's normalised "os/arch[/variant]", and finding the
 * image of one platform (an index's child, or a single manifest whose config
 * says that platform, or does not say any) in the store. A local image of another platform is
 * never taken for the one asked (BuildKit's rule): the lookup says
 * IB_ENOTFOUND and the caller pulls.
 */
#include "store/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s + 32);
}

/* containerd's platforms.Normalize on os, arch and variant (each at most 63 bytes). */
static void normalize(char os[64], char arch[64], char variant[64])
{
	lower(os);
	lower(arch);
	lower(variant);
	if (!strcmp(os, "macos"))
		snprintf(os, 64, "darwin");
	if (!strcmp(arch, "i386") || !strcmp(arch, "i686") || !strcmp(arch, "x86"))
		snprintf(arch, 64, "386");
	else if (!strcmp(arch, "x86_64") || !strcmp(arch, "x86-64") || !strcmp(arch, "amd64")) {
		snprintf(arch, 64, "amd64");
		if (!strcmp(variant, "v1"))
			variant[0] = 0;
	} else if (!strcmp(arch, "aarch64") || !strcmp(arch, "arm64")) {
		snprintf(arch, 64, "arm64");
		if (!strcmp(variant, "8") || !strcmp(variant, "v8") || !strcmp(variant, "v8.0"))
			variant[0] = 0;
	} else if (!strncmp(arch, "armv", 4) && arch[4] >= '5' && arch[4] <= '8') { /* uname's armv7l */
		snprintf(variant, 64, "v%c", arch[4]);
		snprintf(arch, 64, "arm");
	} else if (!strcmp(arch, "armhf")) {
		snprintf(arch, 64, "arm");
		snprintf(variant, 64, "v7");
	} else if (!strcmp(arch, "armel")) {
		snprintf(arch, 64, "arm");
		snprintf(variant, 64, "v6");
	} else if (!strcmp(arch, "arm")) {
		if (!variant[0] || !strcmp(variant, "7"))
			snprintf(variant, 64, "v7");
		else if (!strcmp(variant, "5") || !strcmp(variant, "6") || !strcmp(variant, "8")) {
			char v = variant[0];
			snprintf(variant, 64, "v%c", v);
		}
	}
}

static int valid_part(const char *s, size_t n)
{
	if (n == 0 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return 0;
	return 1;
}

int ib_platform_normalize(ib_buf *out, const char *platform)
{
	char os[64] = "linux", arch[64] = "", variant[64] = "";
	const char *p = platform ? platform : "";
	const char *s1 = strchr(p, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	int ok;
	if (!s1) { /* "arm64": the os is linux (containerd: the host's) */
		ok = valid_part(p, strlen(p));
		if (ok)
			snprintf(arch, sizeof arch, "%s", p);
	} else {
		size_t la = s2 ? (size_t)(s2 - s1 - 1) : strlen(s1 + 1);
		ok = valid_part(p, (size_t)(s1 - p)) && valid_part(s1 + 1, la) && (!s2 || valid_part(s2 + 1, strlen(s2 + 1)));
		if (ok) {
			snprintf(os, sizeof os, "%.*s", (int)(s1 - p), p);
			snprintf(arch, sizeof arch, "%.*s", (int)la, s1 + 1);
			if (s2)
				snprintf(variant, sizeof variant, "%s", s2 + 1);
		}
	}
	if (!ok)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "invalid platform `%s`: expected os/arch[/variant]", p);
	normalize(os, arch, variant);
	ib_buf_clear(out);
	return ib_buf_printf(out, "%s/%s%s%s", os, arch, variant[0] ? "/" : "", variant);
}

int ib_store__platform_match(const char *want, const char *os, const char *arch, const char *variant)
{
	char o[64], a[64], v[64];
	snprintf(o, sizeof o, "%s", os ? os : "");
	snprintf(a, sizeof a, "%s", arch ? arch : "");
	snprintf(v, sizeof v, "%s", variant ? variant : "");
	normalize(o, a, v);
	char have[200];
	snprintf(have, sizeof have, "%s/%s%s%s", o, a, v[0] ? "/" : "", v);
	return !strcmp(have, want);
}

int ib_store_image_lookup_platform(ib_image **out, ib_store *store, const char *name_or_id, const char *platform)
{
	*out = NULL;
	if (!platform || !*platform)
		return ib_store_image_lookup(out, store, name_or_id);
	ib_buf want = IB_BUF_INIT;
	int rc = ib_platform_normalize(&want, platform);
	if (rc < 0) {
		ib_buf_dispose(&want);
		return rc;
	}
	ib_store__want_platform(want.ptr);
	rc = ib_store_image_lookup(out, store, name_or_id);
	ib_store__want_platform(NULL);
	if (rc == 0) {
		/* a single manifest (or an id): its config must say that platform */
		const ib_image_config *c = ib_image_config_of(*out);
		const char *os = ib_image_config_get(c, IB_CONFIG_OS), *arch = ib_image_config_get(c, IB_CONFIG_ARCHITECTURE);
		const char *variant = ib_image_config_get(c, IB_CONFIG_VARIANT);
		/* a config that does not say (an old import) is not of another platform */
		if (os && *os && arch && *arch && !ib_store__platform_match(want.ptr, os, arch, variant)) {
			rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "image `%s` in the store is %s/%s%s%s, not %s",
					   name_or_id, os ? os : "?", arch ? arch : "?", variant && *variant ? "/" : "",
					   variant && *variant ? variant : "", want.ptr);
			ib_image_free(*out);
			*out = NULL;
		}
	}
	ib_buf_dispose(&want);
	return rc;
}

int ib_store_index_platform_for(ib_digest *digest, ib_buf *media_type, const char *index_json, size_t len,
				const char *platform)
{
	if (!platform || !*platform)
		return ib_store_index_platform(digest, media_type, index_json, len);
	ib_buf want = IB_BUF_INIT;
	int rc = ib_platform_normalize(&want, platform);
	if (rc == 0) {
		ib_store__want_platform(want.ptr);
		rc = ib_store_index_platform(digest, media_type, index_json, len);
		ib_store__want_platform(NULL);
	}
	ib_buf_dispose(&want);
	return rc;
}

/* index.json without the untagged entries of one manifest */
static int drop_untagged_change(ib_store *s, json_t *index, void *payload)
{
	(void)s;
	const ib_digest *d = payload;
	json_t *list = json_object_get(index, "manifests");
	for (size_t i = json_array_size(list); i-- > 0;) {
		json_t *e = json_array_get(list, i), *ann = json_object_get(e, "annotations");
		ib_digest ed;
		if (ib_store__descriptor(NULL, &ed, NULL, e, "index.json") < 0) {
			ib_error_clear();
			continue;
		}
		if (ib_digest_equal(&ed, d) && !(ann && ib_json_str(ann, IB_ANNOTATION_REF_NAME)))
			json_array_remove(list, i);
	}
	return 0;
}

int ib_store_untagged_drop(ib_store *store, const ib_digest *manifest)
{
	return ib_store__index_update(store, drop_untagged_change, (void *)manifest);
}

/* image.c's handle, for what this file adds to it */
const ib_digest *ib_image_index_digest(const ib_image *img)
{
	const ib_digest *top = ib_store__image_top(img);
	return top && !ib_digest_equal(top, ib_image_manifest_digest(img)) ? top : NULL;
}

int ib_store__save_index(int *whole, ib_store *s, const ib_image *img,
			 int (*fn)(void *payload, ib_store *s, const ib_image *child), void *payload)
{
	*whole = 0;
	const ib_digest *top = ib_image_index_digest(img);
	if (!top)
		return 0;
	char ts[IB_DIGEST_STRLEN];
	ib_digest_fmt(ts, top);
	json_t *index = NULL;
	int rc = ib_store__blob_json(&index, s, top, "index");
	json_t *list = rc == 0 ? json_object_get(index, "manifests") : NULL;
	size_t i;
	json_t *e;
	int all = json_is_array(list);
	/* every child here, with a platform, first: else the caller saves the one platform */
	json_array_foreach(list, i, e) {
		ib_digest d;
		json_t *p = json_object_get(e, "platform");
		if (ib_store__descriptor(NULL, &d, NULL, e, "index") < 0 || ib_store_blob_has(s, &d) != 1 ||
		    !ib_json_str(p, "os") || !ib_json_str(p, "architecture"))
			all = 0;
	}
	ib_error_clear();
	json_array_foreach(list, i, e) {
		if (!all || rc < 0)
			break;
		json_t *p = json_object_get(e, "platform");
		const char *variant = ib_json_str(p, "variant");
		char plat[256];
		snprintf(plat, sizeof plat, "%s/%s%s%s", ib_json_str(p, "os"), ib_json_str(p, "architecture"),
			 variant && *variant ? "/" : "", variant && *variant ? variant : "");
		ib_image *child = NULL;
		if ((rc = ib_store_image_lookup_platform(&child, s, ts, plat)) == 0)
			rc = fn(payload, s, child);
		ib_image_free(child);
	}
	json_decref(index);
	if (rc == 0)
		*whole = all;
	return rc;
}
