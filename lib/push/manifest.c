/* The manifest a push sends: an OCI image manifest naming the compressed layers. */
#include "push/internal.h"

#include <string.h>

static json_t *descriptor(const char *mt, const ib_digest *d, uint64_t size)
{
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, d);
	return json_pack("{s:s,s:s,s:I}", "mediaType", mt, "digest", ds, "size", (json_int_t)size);
}

int ib_push__manifest_json(ib_buf *out, const ib_digest *config, uint64_t config_size, const ib_push__blob *layers,
			   size_t n)
{
	json_t *list = json_array();
	json_t *m = list ? json_pack("{s:i,s:s,s:o,s:o}", "schemaVersion", 2, "mediaType", IB_MEDIA_TYPE_OCI_MANIFEST,
				     "config", descriptor(IB_MEDIA_TYPE_OCI_CONFIG, config, config_size), "layers",
				     list)
			 : NULL;
	if (!m)
		return ib_error_oom();
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *mt = layers[i].media_type ? layers[i].media_type : IB_MEDIA_TYPE_OCI_LAYER;
		/* Docker's media types have OCI twins; an OCI manifest names those */
		if (!strcmp(mt, IB_MEDIA_TYPE_DOCKER_LAYER_GZIP))
			mt = IB_MEDIA_TYPE_OCI_LAYER_GZIP;
		else if (!strcmp(mt, "application/vnd.docker.image.rootfs.diff.tar"))
			mt = IB_MEDIA_TYPE_OCI_LAYER;
		if (json_array_append_new(list, descriptor(mt, &layers[i].digest, layers[i].size)) < 0)
			rc = ib_error_oom();
	}
	if (rc == 0) {
		ib_buf_clear(out);
		rc = ib_json_dump(out, m, 0);
	}
	json_decref(m);
	return rc;
}

void ib_push__short(char out[13], const ib_digest *d)
{
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, d);
	memcpy(out, hex, 12);
	out[12] = 0;
}
