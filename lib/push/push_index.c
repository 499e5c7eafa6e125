/*
 * docker push of a multi-platform image: each platform's image (layers,
 * config, its manifest under its own digest), then an index naming what
 * went, under the tag. A child may leave with another digest than the
 * local one (its layers compressed), so the index is written anew, with
 * each child's platform as the local index has it. A platform the local
 * index names but the store lacks (an image pulled for one platform only)
 * is refused, as containerd refuses to push missing content.
 */
#include "push/internal.h"
#include "store/internal.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

int ib_push__index(ib_digest *manifest, ib_push__registry *r, ib_store *s, const ib_image *img,
		   const ib_reference *dest, const ib_push_options *opts)
{
	const ib_digest *top = ib_image_index_digest(img);
	char ts[IB_DIGEST_STRLEN];
	ib_digest_fmt(ts, top);
	ib_buf body = IB_BUF_INIT, sent = IB_BUF_INIT, out = IB_BUF_INIT;
	json_t *index = NULL, *list2 = json_array();
	int rc = list2 ? ib_store_blob_read(&body, s, top) : IB_ERROR;
	if (rc == 0)
		rc = ib_json_loadb(&index, body.ptr, body.size, "index");
	json_t *list = index ? json_object_get(index, "manifests") : NULL;
	if (rc == 0 && !json_is_array(list))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "index %s: no \"manifests\" array", ts);
	int all_docker = 1;
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		if (rc < 0)
			break;
		json_t *p = json_object_get(e, "platform");
		const char *os = ib_json_str(p, "os"), *arch = ib_json_str(p, "architecture");
		const char *variant = ib_json_str(p, "variant");
		char plat[256];
		snprintf(plat, sizeof plat, "%s/%s%s%s", os ? os : "", arch ? arch : "", variant && *variant ? "/" : "",
			 variant && *variant ? variant : "");
		if (!os || !arch) {
			rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_PUSH, "index %s: manifests[%zu] has no platform", ts, i);
			break;
		}
		ib_image *child = NULL;
		if ((rc = ib_store_image_lookup_platform(&child, s, ts, plat)) < 0) {
			ib_error_prefix("push index %s: %s (pull it for that platform first)", ts, plat);
			break;
		}
		ib_digest cd;
		const char *mt = NULL;
		rc = ib_push__image(&cd, &sent, &mt, r, s, child, dest, opts, NULL);
		ib_image_free(child);
		if (rc < 0) {
			ib_error_prefix("%s", plat);
			break;
		}
		char cds[IB_DIGEST_STRLEN];
		ib_digest_fmt(cds, &cd);
		all_docker = all_docker && mt && !strcmp(mt, IB_MEDIA_TYPE_DOCKER_MANIFEST);
		json_t *d = json_pack("{s:s,s:s,s:I,s:O}", "mediaType", mt ? mt : IB_MEDIA_TYPE_OCI_MANIFEST, "digest", cds,
				      "size", (json_int_t)sent.size, "platform", p);
		if (!d || json_array_append_new(list2, d) < 0)
			rc = ib_error_oom();
	}
	if (rc == 0) {
		const char *mt = all_docker && !strcmp(ib_json_str(index, "mediaType") ? ib_json_str(index, "mediaType") : "",
							IB_MEDIA_TYPE_DOCKER_LIST)
					 ? IB_MEDIA_TYPE_DOCKER_LIST
					 : IB_MEDIA_TYPE_OCI_INDEX;
		json_t *j = json_pack("{s:i,s:s,s:O}", "schemaVersion", 2, "mediaType", mt, "manifests", list2);
		if (!j)
			rc = ib_error_oom();
		if (rc == 0 && json_object_get(index, "annotations"))
			json_object_set(j, "annotations", json_object_get(index, "annotations"));
		if (rc == 0)
			rc = ib_json_dump(&out, j, JSON_COMPACT);
		json_decref(j);
		if (rc == 0)
			rc = ib_push__put_manifest(manifest, r, ib_reference_tag(dest), &out, mt);
	}
	json_decref(index);
	json_decref(list2);
	ib_buf_dispose(&body);
	ib_buf_dispose(&sent);
	ib_buf_dispose(&out);
	return rc;
}
