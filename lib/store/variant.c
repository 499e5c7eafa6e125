/*
 * Compressed variants of layers: variants/<diff_id hex>.json holds
 * {"variants":[{"mediaType":...,"digest":...,"size":...,"annotations":
 * {"org.imagebuild.verified.diff_id": <diff_id>}}]}, rewritten atomically
 * under index.lock.
 *
 * A variant is what a push ships for the layer, so a blob is recorded only
 * once it is verified to decompress to the layer's diff_id (streamed, never
 * held in memory); the annotation says it was. Records without it (written
 * before the check existed, or by hand) are not used, fsck reports them and
 * GC drops them.
 */
#include "store/internal.h"
#include "util/fs.h"

#include <errno.h>
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

int ib_store__variant_verify(ib_store *s, const ib_digest *diff_id, const ib_digest *blob, const char *media_type)
{
	char bs[IB_DIGEST_STRLEN], ds[IB_DIGEST_STRLEN], gs[IB_DIGEST_STRLEN];
	ib_digest_fmt(bs, blob);
	ib_digest_fmt(ds, diff_id);
	if (!ib_store__layer_is_compressed(media_type)) {
		if (ib_digest_equal(blob, diff_id))
			return 0;
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE,
				     "layer %s is uncompressed (%s), so its digest must be its diff_id %s", bs,
				     media_type ? media_type : "no media type", ds);
	}
	int fd;
	int rc = ib_store_blob_open(&fd, s, blob);
	if (rc < 0)
		return rc;
	char *what = ib_sprintf("layer %s", bs);
	ib_digest got;
	rc = what ? ib_store__decompressed_digest(&got, fd, media_type, what) : IB_ERROR;
	close(fd);
	free(what);
	if (rc == 0 && !ib_digest_equal(&got, diff_id)) {
		ib_digest_fmt(gs, &got);
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "layer %s decompresses to %s, not to its diff_id %s", bs, gs,
				   ds);
	}
	return rc;
}

/* Record a verified variant, replacing the one of the same media type. */
static int record(ib_store *s, const ib_digest *diff_id, const ib_digest *blob, const char *media_type)
{
	int rc = ib_store__lease(s);
	if (rc < 0)
		return rc;
	ib_lock lk = IB_LOCK_INIT;
	json_t *j = NULL;
	char *dir = ib_store__path(s, "variants"), *p = ib_store__variant_path(s, diff_id);
	ib_buf b = IB_BUF_INIT;
	uint64_t size;
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, diff_id);
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
	if (rc == IB_ENOTFOUND || rc == IB_EINVALID) {
		/* a damaged record only remembered work: start again */
		ib_error_clear();
		j = json_pack("{s:[]}", "variants");
		rc = j ? 0 : ib_error_oom();
	}
	if (rc < 0)
		goto out;
	json_t *list = json_object_get(j, "variants");
	for (size_t i = json_array_size(list); i-- > 0;) {
		const char *mt = ib_json_str(json_array_get(list, i), "mediaType");
		if (!mt || !strcmp(mt, media_type))
			json_array_remove(list, i);
	}
	json_t *desc = ib_store__descriptor_new(media_type, blob, size);
	/* json_object_set_new takes the annotations even when it fails; the list takes its own reference */
	if (!desc || json_object_set_new(desc, "annotations", json_pack("{s:s}", IB_VARIANT_VERIFIED, ds)) != 0 ||
	    json_array_append(list, desc) != 0)
		rc = ib_error_oom();
	json_decref(desc);
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

int ib_store_variant_put(ib_store *s, const ib_digest *diff_id, const ib_digest *blob, const char *media_type)
{
	if (!media_type || !*media_type)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "variant: no media type");
	/* the lease keeps the blob from GC between the check and the record */
	int rc = ib_store__lease(s);
	if (rc < 0)
		return rc;
	if ((rc = ib_store__variant_verify(s, diff_id, blob, media_type)) < 0)
		ib_error_prefix("variant");
	else
		rc = record(s, diff_id, blob, media_type);
	ib_store__unlease(s);
	return rc;
}

int ib_store__variant_put_made(ib_store *s, const ib_digest *diff_id, const ib_digest *blob, const char *media_type)
{
	if (!media_type || !*media_type)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "variant: no media type");
	int rc = ib_store_blob_has(s, diff_id);
	if (rc == 0) {
		char ds[IB_DIGEST_STRLEN];
		ib_digest_fmt(ds, diff_id);
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "variant: no uncompressed layer %s in the store", ds);
	}
	return rc < 0 ? rc : record(s, diff_id, blob, media_type);
}

/* The gzip and zstd magic numbers. */
static int magic_matches(ib_store *s, const ib_digest *blob, const char *media_type)
{
	static const unsigned char gz[] = { 0x1f, 0x8b }, zst[] = { 0x28, 0xb5, 0x2f, 0xfd };
	const unsigned char *m = strstr(media_type, "gzip") ? gz : zst;
	size_t n = m == gz ? sizeof gz : sizeof zst;
	unsigned char head[4];
	int fd;
	if (ib_store_blob_open(&fd, s, blob) < 0) {
		ib_error_clear();
		return 0;
	}
	ssize_t got;
	do
		got = pread(fd, head, n, 0);
	while (got < 0 && errno == EINTR);
	close(fd);
	return got == (ssize_t)n && !memcmp(head, m, n);
}

int ib_store__variant_check(ib_store *s, const ib_digest *diff_id, const json_t *e, int full)
{
	char ds[IB_DIGEST_STRLEN], bs[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, diff_id);
	char *what = ib_sprintf("variant of layer %s", ds);
	if (!what)
		return IB_ERROR;
	const char *mt;
	ib_digest blob;
	uint64_t size, real;
	int rc = ib_store__descriptor(&mt, &blob, &size, e, what);
	free(what);
	if (rc < 0)
		return rc;
	ib_digest_fmt(bs, &blob);
	const char *verified = ib_json_str(json_object_get(e, "annotations"), IB_VARIANT_VERIFIED);
	if (!mt)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "variant %s of layer %s has no media type", bs, ds);
	if ((rc = ib_store_blob_size(&real, s, &blob)) < 0) {
		ib_error_prefix("variant of layer %s", ds);
		return rc == IB_ENOTFOUND ? IB_EINVALID : rc;
	}
	if (real != size)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "variant %s of layer %s: the blob has %llu bytes, the record says %llu",
				     bs, ds, (unsigned long long)real, (unsigned long long)size);
	if (ib_store__layer_is_compressed(mt) ? !magic_matches(s, &blob, mt) : !ib_digest_equal(&blob, diff_id))
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "variant %s of layer %s is not %s", bs, ds, mt);
	if (full) {
		if ((rc = ib_store__variant_verify(s, diff_id, &blob, mt)) < 0)
			ib_error_prefix("variant of layer %s", ds);
		return rc;
	}
	if (!verified || strcmp(verified, ds))
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE,
				     "variant %s of layer %s was recorded without being checked against the layer "
				     "(prune drops the record; fsck --full decompresses it)", bs, ds);
	return 0;
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
		const char *verified = ib_json_str(json_object_get(e, "annotations"), IB_VARIANT_VERIFIED);
		ib_digest d;
		uint64_t sz;
		/* a record nobody checked is never shipped: the caller makes a new variant */
		if (!mt || strcmp(mt, media_type) || !verified || strcmp(verified, ds) ||
		    ib_store__descriptor(NULL, &d, &sz, e, "variant") < 0)
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

/* 1 when `blob` is already recorded, checked, as the `media_type` variant of `diff_id` (a pull again). */
static int already_checked(ib_store *s, const ib_digest *diff_id, const ib_digest *blob, const char *media_type)
{
	json_t *j;
	if (ib_store__variants_read(&j, s, diff_id) < 0) {
		ib_error_clear();
		return 0;
	}
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, diff_id);
	int found = 0;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(j, "variants"), i, e) {
		const char *mt = ib_json_str(e, "mediaType");
		const char *verified = ib_json_str(json_object_get(e, "annotations"), IB_VARIANT_VERIFIED);
		ib_digest d;
		if (mt && !strcmp(mt, media_type) && verified && !strcmp(verified, ds) &&
		    ib_store__descriptor(NULL, &d, NULL, e, "variant") == 0 && ib_digest_equal(&d, blob)) {
			found = 1;
			break;
		}
	}
	ib_error_clear();
	json_decref(j);
	return found;
}

int ib_store_layer_uncompress(ib_store *s, const ib_digest *blob, const char *media_type, const ib_digest *diff_id)
{
	if (!ib_store__layer_is_compressed(media_type))
		return ib_store__variant_verify(s, diff_id, blob, media_type);
	char bs[IB_DIGEST_STRLEN];
	ib_digest_fmt(bs, blob);
	int rc = ib_store__lease(s);
	if (rc < 0)
		return rc;
	if (ib_store__blob_local_has(s, diff_id) == 1) {
		/* the layer is here already: the blob must still be it, compressed (checked once) */
		if (already_checked(s, diff_id, blob, media_type)) {
			ib_store__unlease(s);
			return 0;
		}
		rc = ib_store__variant_verify(s, diff_id, blob, media_type);
	} else {
		int fd = -1;
		ib_blob_writer *w = NULL;
		char *what = ib_sprintf("layer %s", bs);
		if (!what)
			rc = IB_ERROR;
		else if ((rc = ib_store_blob_open(&fd, s, blob)) == 0 && (rc = ib_store_blob_writer(&w, s)) == 0) {
			rc = ib_store__decompress_layer_into(w, fd, media_type, what);
			if (rc < 0)
				ib_blob_writer_abort(w);
			else
				rc = ib_blob_writer_commit(w, NULL, NULL, diff_id);
		}
		if (fd >= 0)
			close(fd);
		free(what);
		if (rc < 0)
			ib_error_prefix("uncompressed copy of layer %s", bs);
	}
	if (rc == 0)
		rc = record(s, diff_id, blob, media_type);
	ib_store__unlease(s);
	return rc;
}
