/*
 * Compressed variants of layers: variants/<diff_id hex>.json holds
 * {"variants":[{"mediaType":...,"digest":...,"size":...}]}, rewritten
 * atomically under index.lock.
 */
#include "store/internal.h"
#include "util/fs.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *ib_store__variant_path(ib_store *s, const ib_digest *diff_id)
{
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, diff_id);
	return ib_sprintf("%s/variants/%s.json", s->root, hex);
}

int ib_store__variants_read(json_t **out, ib_store *s, const ib_digest *diff_id)
{
	char *p = ib_store__variant_path(s, diff_id);
	if (!p)
		return IB_ERROR;
	json_t *j = NULL;
	int rc = ib_json_load_file(&j, p);
	if (rc == 0 && !json_is_array(json_object_get(j, "variants"))) {
		json_decref(j);
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: no \"variants\" array", p);
	}
	free(p);
	if (rc == 0)
		*out = j;
	return rc;
}

int ib_store_variant_put(ib_store *s, const ib_digest *diff_id, const ib_digest *blob, const char *media_type)
{
	if (!media_type || !*media_type)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "variant: no media type");
	int rc = ib_store__lease(s);
	if (rc < 0)
		return rc;
	ib_lock lk = IB_LOCK_INIT;
	json_t *j = NULL;
	char *dir = ib_store__path(s, "variants"), *p = ib_store__variant_path(s, diff_id);
	ib_buf b = IB_BUF_INIT;
	uint64_t size;
	if (!dir || !p) {
		rc = IB_ERROR;
		goto out;
	}
	if ((rc = ib_store_blob_size(&size, s, blob)) < 0) {
		ib_error_prefix("variant");
		goto out;
	}
	if ((rc = ib_mkdir_p(dir, 0755)) < 0 || (rc = ib_store__index_lock(&lk, s)) < 0)
		goto out;
	rc = ib_store__variants_read(&j, s, diff_id);
	if (rc == IB_ENOTFOUND) {
		ib_error_clear();
		j = json_pack("{s:[]}", "variants");
		rc = j ? 0 : ib_error_oom();
	}
	if (rc < 0)
		goto out;
	json_t *list = json_object_get(j, "variants");
	for (size_t i = json_array_size(list); i-- > 0;) {
		const char *mt = ib_json_str(json_array_get(list, i), "mediaType");
		if (mt && !strcmp(mt, media_type))
			json_array_remove(list, i);
	}
	if (json_array_append_new(list, ib_store__descriptor_new(media_type, blob, size)) != 0)
		rc = ib_error_oom();
	if (rc == 0 && (rc = ib_json_dump(&b, j, 0)) == 0)
		rc = ib_atomic_write(p, b.ptr, b.size, 0644);
out:
	ib_lock_release(&lk);
	ib_store__unlease(s);
	json_decref(j);
	ib_buf_dispose(&b);
	free(dir);
	free(p);
	return rc;
}

int ib_store_variant_get(ib_digest *blob, uint64_t *size, ib_store *s, const ib_digest *diff_id,
			 const char *media_type)
{
	json_t *j;
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, diff_id);
	int rc = ib_store__variants_read(&j, s, diff_id);
	if (rc == IB_ENOTFOUND)
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "no %s variant of layer %s", media_type, ds);
	if (rc < 0)
		return rc;
	rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "no %s variant of layer %s", media_type, ds);
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(j, "variants"), i, e) {
		const char *mt = ib_json_str(e, "mediaType");
		ib_digest d;
		uint64_t sz;
		if (!mt || strcmp(mt, media_type) || ib_store__descriptor(NULL, &d, &sz, e, "variant") < 0)
			continue;
		if (ib_store_blob_has(s, &d) != 1)
			break;
		*blob = d;
		if (size)
			*size = sz;
		ib_error_clear();
		rc = 0;
		break;
	}
	json_decref(j);
	return rc;
}

int ib_store_layer_uncompress(ib_store *s, const ib_digest *blob, const char *media_type, const ib_digest *diff_id)
{
	if (!ib_store__layer_is_compressed(media_type))
		return 0;
	char bs[IB_DIGEST_STRLEN];
	ib_digest_fmt(bs, blob);
	int rc = ib_store__lease(s);
	if (rc < 0)
		return rc;
	if (ib_store_blob_has(s, diff_id) != 1) {
		int fd = -1;
		ib_blob_writer *w = NULL;
		char *what = ib_sprintf("layer %s", bs);
		if (!what)
			rc = IB_ERROR;
		else if ((rc = ib_store_blob_open(&fd, s, blob)) == 0 && (rc = ib_store_blob_writer(&w, s)) == 0) {
			rc = ib_store__decompress_into(w, fd, what);
			if (rc < 0)
				ib_blob_writer_abort(w);
			else
				rc = ib_blob_writer_commit(w, NULL, NULL, diff_id);
		}
		if (fd >= 0)
			close(fd);
		free(what);
	}
	if (rc == 0)
		rc = ib_store_variant_put(s, diff_id, blob, media_type);
	if (rc < 0)
		ib_error_prefix("uncompressed copy of layer %s", bs);
	ib_store__unlease(s);
	return rc;
}
