/*
 * Export: an OCI layout directory, an OCI archive (that layout as a tar) or
 * a docker-archive (docker save's manifest.json format). Reads the store only.
 */
#include "store/internal.h"
#include "util/callback.h"
#include "util/fs.h"
#include "util/hash.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where the files go: a directory or a tar stream. */
typedef struct {
	const char *dir;           /* IB_ARCHIVE_OCI */
	struct archive *tar;       /* the others */
	char **added;              /* names already written */
	size_t nadded;
	const ib_callbacks *cb;    /* progress (BYTES "blob:<12 hex>") and cancel */
} sink;

/* "blob:<12 hex>" for a blob or a docker-archive layer, "" for the rest (JSON files). */
static void progress_id(char out[18], const char *name)
{
	const char *hex = !strncmp(name, "blobs/sha256/", 13) ? name + 13 : strstr(name, "/layer.tar") ? name : NULL;
	if (hex && strlen(hex) >= 12)
		snprintf(out, 18, "blob:%.12s", hex);
	else
		out[0] = 0;
}

static int sink_seen(sink *k, const char *name)
{
	for (size_t i = 0; i < k->nadded; i++)
		if (!strcmp(k->added[i], name))
			return 1;
	char **n = ib_realloc(k->added, (k->nadded + 1) * sizeof *n);
	if (!n)
		return -1;
	k->added = n;
	if (!(k->added[k->nadded] = ib_strdup(name)))
		return -1;
	k->nadded++;
	return 0;
}

static int tar_error(sink *k, const char *name)
{
	return ib_error_set(IB_LAYER_STORE, "write `%s` to the archive: %s", name, archive_error_string(k->tar));
}

static int sink_dir(sink *k, const char *name)
{
	int seen = sink_seen(k, name);
	if (seen)
		return seen < 0 ? IB_ERROR : 0;
	if (k->dir) {
		char *p = ib_sprintf("%s/%s", k->dir, name);
		int rc = p ? ib_mkdir_p(p, 0755) : IB_ERROR;
		free(p);
		return rc;
	}
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return ib_error_oom();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFDIR);
	archive_entry_set_perm(e, 0755);
	int rc = archive_write_header(k->tar, e) == ARCHIVE_OK ? 0 : tar_error(k, name);
	archive_entry_free(e);
	return rc;
}

/* Add `size` bytes: from `data`, or read from `fd` when data is NULL. */
static int sink_file(sink *k, const char *name, const void *data, int fd, uint64_t size)
{
	int seen = sink_seen(k, name);
	if (seen)
		return seen < 0 ? IB_ERROR : 0;
	int out = -1, rc = 0;
	struct archive_entry *e = NULL;
	char *p = NULL;
	if (k->dir) {
		if (!(p = ib_sprintf("%s/%s", k->dir, name)))
			return IB_ERROR;
		out = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (out < 0) {
			rc = ib_error_set_os(IB_LAYER_STORE, "create `%s`", p);
			free(p);
			return rc;
		}
	} else {
		if (!(e = archive_entry_new()))
			return ib_error_oom();
		archive_entry_set_pathname(e, name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)size);
		if (archive_write_header(k->tar, e) != ARCHIVE_OK)
			rc = tar_error(k, name);
	}
	char *buf = data ? NULL : ib_malloc(1 << 16);
	uint64_t done = 0, reported = 0;
	char id[18];
	progress_id(id, name);
	if (rc == 0)
		rc = ib_callback_check(k->cb, "save");
	while (rc == 0 && done < size) {
		const char *chunk = data ? (const char *)data + done : buf;
		size_t n = data ? (size_t)(size - done) : (size_t)(size - done < (1 << 16) ? size - done : (1 << 16));
		if (!data) {
			if (!buf) {
				rc = IB_ERROR;
				break;
			}
			ssize_t r = read(fd, buf, n);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				rc = r < 0 ? ib_error_set_os(IB_LAYER_STORE, "read for `%s`", name)
					   : ib_error_set(IB_LAYER_STORE, "read for `%s`: file shrank", name);
				break;
			}
			n = (size_t)r;
		}
		if (k->dir)
			rc = ib_write_all(out, chunk, n);
		else if (archive_write_data(k->tar, chunk, n) != (la_ssize_t)n)
			rc = tar_error(k, name);
		done += n;
		if (rc == 0 && id[0] && (done - reported >= (1u << 20) || done == size)) {
			reported = done;
			rc = ib_callback_progress(k->cb, IB_PROGRESS_BYTES, id, "Saving", done, size, 0, "save");
		} else if (rc == 0) {
			rc = ib_callback_check(k->cb, "save");
		}
	}
	free(buf);
	if (out >= 0) {
		if (rc == 0 && fsync(out) < 0)
			rc = ib_error_set_os(IB_LAYER_STORE, "fsync `%s`", p);
		close(out);
	}
	free(p);
	archive_entry_free(e);
	return rc;
}

static int sink_blob(sink *k, ib_store *s, const ib_digest *d, const char *name)
{
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, d);
	char *n = name ? ib_strdup(name) : ib_sprintf("blobs/sha256/%s", hex);
	int fd = -1;
	uint64_t size;
	int rc = n ? 0 : IB_ERROR;
	if (rc == 0 && (rc = ib_store_blob_size(&size, s, d)) == 0 && (rc = ib_store_blob_open(&fd, s, d)) == 0)
		rc = sink_file(k, n, NULL, fd, size);
	if (fd >= 0)
		close(fd);
	free(n);
	return rc;
}

static int sink_json(sink *k, const char *name, const json_t *j)
{
	ib_buf b = IB_BUF_INIT;
	int rc = ib_json_dump(&b, j, IB_JSON_SORTED);
	if (rc == 0)
		rc = sink_file(k, name, b.ptr, -1, b.size);
	ib_buf_dispose(&b);
	return rc;
}

/* ---- what to save ---- */

typedef struct {
	ib_image *img;
	char *name; /* normalised, or NULL when saved by id */
} saved;

static int resolve(saved *out, ib_store *s, const char *q)
{
	out->name = NULL;
	int rc = ib_store_image_lookup(&out->img, s, q);
	if (rc < 0)
		return rc;
	ib_buf n = IB_BUF_INIT;
	if (ib_reference_normalize(&n, q) == 0) {
		/* detaching empties `n`: stop at the match (the next name would be compared with NULL) */
		for (size_t i = 0; i < ib_image_name_count(out->img) && !out->name; i++)
			if (!strcmp(ib_image_name(out->img, i), n.ptr) && !(out->name = ib_buf_detach(&n)))
				return IB_ERROR;
	}
	ib_error_clear();
	ib_buf_dispose(&n);
	return 0;
}

static int save_image_blobs(void *payload, ib_store *s, const ib_image *img);
static int save_oci_entry(json_t *index, json_t *desc, const saved *sv, const ib_save_options *o);

static int save_oci(sink *k, ib_store *s, saved *imgs, size_t n, const ib_save_options *o)
{
	json_t *index = json_pack("{s:i,s:s,s:[]}", "schemaVersion", 2, "mediaType", IB_MEDIA_TYPE_OCI_INDEX, "manifests");
	int rc = index ? 0 : ib_error_oom();
	if (rc == 0)
		rc = sink_file(k, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", -1, 30);
	if (rc == 0 && (rc = sink_dir(k, "blobs")) == 0)
		rc = sink_dir(k, "blobs/sha256");
	for (size_t i = 0; i < n && rc == 0; i++) {
		ib_image *img = imgs[i].img;
		const ib_digest *md = ib_image_manifest_digest(img);
		const char *mt = ib_image_manifest_media_type(img);
		uint64_t msize;
		int whole = 0;
		/* a multi-platform image: its index and every platform, when the store has them all */
		if (ib_image_index_digest(img) && (rc = ib_store__save_index(&whole, s, img, save_image_blobs, k)) < 0)
			break;
		if (whole) {
			md = ib_image_index_digest(img);
			mt = IB_MEDIA_TYPE_OCI_INDEX;
			json_t *top = NULL;
			if (ib_store__blob_json(&top, s, md, "index") == 0 && ib_json_str(top, "mediaType"))
				mt = ib_json_str(top, "mediaType");
			json_t *keep = top; /* mt borrows from it until the descriptor copies it */
			if ((rc = sink_blob(k, s, md, NULL)) < 0 || (rc = ib_store_blob_size(&msize, s, md)) < 0) {
				json_decref(keep);
				break;
			}
			json_t *desc = ib_store__descriptor_new(mt, md, msize);
			json_decref(keep);
			rc = save_oci_entry(index, desc, &imgs[i], o);
			continue;
		}
		ib_error_clear();
		if ((rc = save_image_blobs(k, s, img)) < 0 || (rc = ib_store_blob_size(&msize, s, md)) < 0)
			break;
		json_t *desc = ib_store__descriptor_new(mt, md, msize);
		rc = save_oci_entry(index, desc, &imgs[i], o);
	}
	if (rc == 0)
		rc = sink_json(k, "index.json", index);
	json_decref(index);
	return rc;
}

/* One image's manifest, config and layers into the sink. */
static int save_image_blobs(void *payload, ib_store *s, const ib_image *img)
{
	sink *k = payload;
	int rc = sink_blob(k, s, ib_image_manifest_digest(img), NULL);
	if (rc == 0)
		rc = sink_blob(k, s, ib_image_id(img), NULL);
	for (size_t l = 0; l < ib_image_layer_count(img) && rc == 0; l++)
		rc = sink_blob(k, s, &ib_image_layer(img, l)->digest, NULL);
	return rc;
}

/* index.json's entry of a saved image: `desc` (taken) with its names. */
static int save_oci_entry(json_t *index, json_t *desc, const saved *sv, const ib_save_options *o)
{
	int rc = 0;
	{
		if (!desc)
			return IB_ERROR;
		const saved *imgs = sv;
		size_t i = 0;
		if (imgs[i].name) {
			ib_reference *ref = NULL;
			const char *refname = o->ref_name;
			if (!refname && ib_reference_parse(&ref, imgs[i].name) == 0)
				refname = ib_reference_tag(ref);
			json_t *ann = json_pack("{s:s,s:s?}", IB_ANNOTATION_CONTAINERD_NAME, imgs[i].name,
						IB_ANNOTATION_REF_NAME, refname);
			rc = ann ? ib_json_set_new(desc, "annotations", ann) : ib_error_oom();
			ib_reference_free(ref);
		} else if (o->ref_name) {
			rc = ib_json_set_new(desc, "annotations", json_pack("{s:s}", IB_ANNOTATION_REF_NAME, o->ref_name));
		}
		if (json_array_append_new(json_object_get(index, "manifests"), desc) != 0 && rc == 0)
			rc = ib_error_oom();
	}
	return rc;
}

/* A layer as an uncompressed tar file: the blob itself, or decompressed into a temporary blob. */
static int layer_tar_fd(int *fd, uint64_t *size, ib_store *s, const ib_layer *l)
{
	if (!ib_store__layer_is_compressed(l->media_type)) {
		*size = l->size;
		return ib_store_blob_open(fd, s, &l->digest);
	}
	/* decompress into a blob: it is the layer's uncompressed form, named by its diff_id */
	int in, rc = ib_store_blob_open(&in, s, &l->digest);
	if (rc < 0)
		return rc;
	ib_blob_writer *w;
	if ((rc = ib_store_blob_writer(&w, s)) == 0) {
		if ((rc = ib_store__decompress_into(w, in, "layer")) < 0)
			ib_blob_writer_abort(w);
		else
			rc = ib_blob_writer_commit(w, NULL, size, &l->diff_id);
	}
	close(in);
	return rc < 0 ? rc : ib_store_blob_open(fd, s, &l->diff_id);
}

static int save_docker(sink *k, ib_store *s, saved *imgs, size_t n)
{
	json_t *manifest = json_array();
	int rc = manifest ? 0 : ib_error_oom();
	for (size_t i = 0; i < n && rc == 0; i++) {
		ib_image *img = imgs[i].img;
		char hex[IB_DIGEST_HEXLEN + 1];
		ib_digest_hex(hex, ib_image_id(img));
		char *cfgname = ib_sprintf("%s.json", hex);
		json_t *entry = json_pack("{s:s,s:[],s:[]}", "Config", cfgname ? cfgname : "", "RepoTags", "Layers");
		if (!cfgname || !entry || json_array_append_new(manifest, entry) != 0) {
			free(cfgname);
			rc = ib_error_oom();
			break;
		}
		rc = sink_blob(k, s, ib_image_id(img), cfgname);
		free(cfgname);
		if (imgs[i].name) {
			ib_reference *ref;
			if (ib_reference_parse(&ref, imgs[i].name) == 0) {
				/* the familiar form, as docker save writes it ("x:1", "user/x:1"); load normalises it back */
				json_array_append_new(json_object_get(entry, "RepoTags"), json_string(ib_reference_familiar(ref)));
				ib_reference_free(ref);
			}
		}
		for (size_t l = 0; l < ib_image_layer_count(img) && rc == 0; l++) {
			const ib_layer *ly = ib_image_layer(img, l);
			ib_digest_hex(hex, &ly->diff_id);
			char *dir = ib_sprintf("%s", hex);
			char *name = ib_sprintf("%s/layer.tar", hex);
			int fd = -1;
			uint64_t size;
			if (!dir || !name)
				rc = IB_ERROR;
			else if ((rc = sink_dir(k, dir)) == 0 && (rc = layer_tar_fd(&fd, &size, s, ly)) == 0)
				rc = sink_file(k, name, NULL, fd, size);
			if (rc == 0)
				json_array_append_new(json_object_get(entry, "Layers"), json_string(name));
			if (fd >= 0)
				close(fd);
			free(dir);
			free(name);
		}
	}
	if (rc == 0)
		rc = sink_json(k, "manifest.json", manifest);
	json_decref(manifest);
	return rc;
}

static int dir_is_empty_or_missing(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 1 : 0;
	struct dirent *de;
	int empty = 1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

static int save_to_file(ib_store *s, saved *imgs, size_t n, const char *path, const ib_save_options *o)
{
	ib_atomic_file af;
	int rc = ib_atomic_open(&af, path, 0644);
	if (rc < 0)
		return rc;
	sink k = { NULL, archive_write_new(), NULL, 0, o->version >= 2 ? o->callbacks : NULL };
	if (!k.tar) {
		ib_atomic_abort(&af);
		return ib_error_oom();
	}
	archive_write_set_format_pax_restricted(k.tar);
	archive_write_set_bytes_in_last_block(k.tar, 1);
	if (archive_write_open_fd(k.tar, af.fd) != ARCHIVE_OK)
		rc = tar_error(&k, path);
	if (rc == 0)
		rc = o->format == IB_ARCHIVE_DOCKER ? save_docker(&k, s, imgs, n) : save_oci(&k, s, imgs, n, o);
	if (archive_write_close(k.tar) != ARCHIVE_OK && rc == 0)
		rc = tar_error(&k, path);
	archive_write_free(k.tar);
	for (size_t i = 0; i < k.nadded; i++)
		free(k.added[i]);
	free(k.added);
	if (rc == 0)
		rc = ib_atomic_commit(&af);
	else
		ib_atomic_abort(&af);
	return rc;
}

int ib_store_save(ib_store *s, const char *const *names, size_t n, const char *path, const ib_save_options *opts)
{
	ib_save_options defaults = IB_SAVE_OPTIONS_INIT;
	const ib_save_options *o = opts ? opts : &defaults;
	if (o->version < 1 || o->version > IB_SAVE_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_save_options version %u is not supported", o->version);
	if (o->version >= 2 && ib_callback_validate(o->callbacks, IB_LAYER_STORE) < 0)
		return IB_EINVALID;
	if (o->format > IB_ARCHIVE_DOCKER)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "save: unknown format %d", (int)o->format);
	if (n == 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "save: no image given");
	saved *imgs = ib_calloc(n, sizeof *imgs);
	if (!imgs)
		return IB_ERROR;
	int rc = 0;
	/* hold a lease: a concurrent GC must not remove what we are reading */
	if ((rc = ib_store__lease(s)) < 0)
		goto out;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = resolve(&imgs[i], s, names[i]);
	if (rc < 0)
		goto unlease;
	if (o->format == IB_ARCHIVE_OCI) {
		if (!dir_is_empty_or_missing(path)) {
			rc = ib_error_setc(IB_EEXISTS, IB_LAYER_STORE, "save: `%s` exists and is not an empty directory", path);
			goto unlease;
		}
		sink k = { path, NULL, NULL, 0, o->version >= 2 ? o->callbacks : NULL };
		if ((rc = ib_mkdir_p(path, 0755)) == 0)
			rc = save_oci(&k, s, imgs, n, o);
		if (rc < 0) { /* stopped or failed: leave no half layout behind */
			ib_error_saved es;
			ib_error_save(&es);
			ib_rm_rf(path);
			ib_error_restore(&es);
		}
		for (size_t i = 0; i < k.nadded; i++)
			free(k.added[i]);
		free(k.added);
	} else {
		rc = save_to_file(s, imgs, n, path, o);
	}
unlease:
	ib_store__unlease(s);
out:
	for (size_t i = 0; i < n; i++) {
		ib_image_free(imgs[i].img);
		free(imgs[i].name);
	}
	free(imgs);
	if (rc < 0)
		ib_error_prefix("save to `%s`", path);
	return ib_callback_result(rc);
}
