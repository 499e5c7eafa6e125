/*
 * Load: an OCI layout directory, an OCI archive or a docker-archive.
 * Archives are extracted into a staging directory under <root>/tmp (paths
 * checked, every later open resolved inside it with RESOLVE_IN_ROOT so a
 * symlink cannot leave it); then every blob is copied in with its digest and
 * size checked; names change last, in one index.json update, and only when
 * everything verified.
 */
#include "store/internal.h"
#include "util/callback.h"
#include "util/fs.h"
#include "util/path.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
	ib_store *s;
	const char *input; /* the user's path, for errors */
	int rootfd;        /* the layout's top directory */
	int staged;        /* extracted into our own staging directory */
	/* what to tag at the end */
	struct pending {
		char *name;
		ib_digest manifest;
	} *pending;
	size_t npending;
	const ib_callbacks *cb; /* progress (BYTES "blob:<12 hex>") and cancel */
} loader;

/* BYTES "blob:<first 12 of the name>" for a file of the layout being loaded. */
static int load_progress(loader *L, const char *rel, uint64_t done, uint64_t total)
{
	char id[18];
	const char *name = !strncmp(rel, "blobs/sha256/", 13) ? rel + 13 : rel;
	snprintf(id, sizeof id, "blob:%.12s", name);
	return ib_callback_progress(L->cb, IB_PROGRESS_BYTES, id, "Loading", done, total, 0, "load");
}

/* ---- safe extraction ---- */

/*
 * The directory of `rel` (already clean and relative), created component by
 * component, never through a symlink. Returns an O_PATH fd and the last component.
 */
static int open_parent(int rootfd, const char *rel, const char **base)
{
	const char *slash = strrchr(rel, '/');
	*base = slash ? slash + 1 : rel;
	int cur = dup(rootfd);
	if (cur < 0)
		return ib_error_set_os(IB_LAYER_STORE, "dup");
	const char *p = rel;
	while (slash && p < *base) {
		const char *end = strchr(p, '/');
		char *comp = ib_strndup(p, (size_t)(end - p));
		if (!comp) {
			close(cur);
			return IB_ERROR;
		}
		if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
			int rc = ib_error_set_os(IB_LAYER_STORE, "mkdir `%s` in `%s`", comp, rel);
			free(comp);
			close(cur);
			return rc;
		}
		int next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		free(comp);
		close(cur);
		if (next < 0)
			return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "entry `%s` goes through a symlink or a file", rel);
		cur = next;
		p = end + 1;
	}
	return cur;
}

static int extract_entry(struct archive *a, struct archive_entry *e, int rootfd, const char *input,
			 const ib_callbacks *cb)
{
	const char *raw = archive_entry_pathname(e);
	ib_buf clean = IB_BUF_INIT;
	int rc = 0, fd = -1, pfd = -1;
	if (!raw || !*raw || raw[0] == '/' || ib_path_clean(&clean, raw) < 0 || !strcmp(clean.ptr, "..") ||
	    !strncmp(clean.ptr, "../", 3)) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: entry `%s` points outside the archive", input,
				   raw ? raw : "");
		goto out;
	}
	if (!strcmp(clean.ptr, "."))
		goto out;
	const char *base;
	mode_t type = archive_entry_filetype(e);
	if (type == AE_IFDIR) {
		pfd = open_parent(rootfd, clean.ptr, &base);
		if (pfd >= 0 && mkdirat(pfd, base, 0755) < 0 && errno != EEXIST)
			rc = ib_error_set_os(IB_LAYER_STORE, "`%s`: mkdir `%s`", input, clean.ptr);
		goto out;
	}
	if (type != AE_IFREG && type != AE_IFLNK) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: entry `%s` is neither a file, a directory nor a symlink",
				   input, raw);
		goto out;
	}
	if ((pfd = open_parent(rootfd, clean.ptr, &base)) < 0) {
		rc = pfd;
		goto out;
	}
	if (type == AE_IFLNK) {
		const char *target = archive_entry_symlink(e);
		if (!target || symlinkat(target, pfd, base) < 0)
			rc = ib_error_set_os(IB_LAYER_STORE, "`%s`: symlink `%s`", input, clean.ptr);
		goto out;
	}
	fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = errno == EEXIST ? ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: entry `%s` appears twice", input, raw)
				     : ib_error_set_os(IB_LAYER_STORE, "`%s`: create `%s`", input, clean.ptr);
		goto out;
	}
	char buf[65536];
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, sizeof buf);
		if (n < 0) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: entry `%s`: %s", input, raw,
					   archive_error_string(a));
			break;
		}
		if (n == 0)
			break;
		if ((rc = ib_write_all(fd, buf, (size_t)n)) < 0 || (rc = ib_callback_check(cb, "load")) < 0)
			break;
	}
out:
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	ib_buf_dispose(&clean);
	return rc;
}

static int extract(const char *path, int rootfd, const ib_callbacks *cb)
{
	struct archive *a = archive_read_new();
	if (!a)
		return ib_error_oom();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	int rc = 0;
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: %s", path, archive_error_string(a));
	} else {
		struct archive_entry *e;
		int r, n = 0;
		while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
			n++;
			if ((rc = ib_callback_check(cb, "load")) < 0 || (rc = extract_entry(a, e, rootfd, path, cb)) < 0)
				break;
		}
		if (rc == 0 && r != ARCHIVE_EOF)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: %s", path,
					   archive_error_string(a) ? archive_error_string(a) : "unreadable archive");
		if (rc == 0 && n == 0)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: empty archive", path);
	}
	archive_read_free(a);
	return rc;
}

/* ---- reading from the layout ---- */

static int open_rel(loader *L, const char *rel)
{
	int fd = ib_open_in_root(L->rootfd, rel, O_RDONLY, 0);
	if (fd < 0) {
		ib_error_clear();
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "`%s`: `%s` is missing", L->input, rel);
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: `%s` is not a regular file", L->input, rel);
	}
	return fd;
}

static int read_json(json_t **out, loader *L, const char *rel)
{
	int fd = open_rel(L, rel);
	if (fd < 0)
		return fd;
	ib_buf b = IB_BUF_INIT;
	char *shown = ib_sprintf("%s: %s", L->input, rel);
	int rc = shown ? ib_read_fd(&b, fd, IB_STORE_MAX_JSON, shown) : IB_ERROR;
	free(shown);
	close(fd);
	if (rc == 0) {
		char *what = ib_sprintf("`%s`: %s", L->input, rel);
		rc = what ? ib_json_loadb(out, b.ptr ? b.ptr : "", b.size, what) : IB_ERROR;
		free(what);
	}
	ib_buf_dispose(&b);
	return rc;
}

/* Copy a file of the layout into the store, checking digest (and size when known). */
static int copy_blob(loader *L, const char *rel, const ib_digest *expected, int64_t size, ib_digest *got,
		     int decompress)
{
	int fd = open_rel(L, rel);
	if (fd < 0)
		return fd;
	/* a staged member with a known digest: verify it and link it in, no copy */
	if (L->staged && expected && !decompress) {
		char *what = ib_sprintf("`%s`: `%s`", L->input, rel);
		int rc = what ? ib_store__blob_adopt_fd(L->s, fd, expected, size, what) : IB_ERROR;
		free(what);
		if (rc != IB_EUNSUPPORTED) {
			close(fd);
			if (rc == 0 && got)
				*got = *expected;
			if (rc == 0)
				rc = load_progress(L, rel, size > 0 ? (uint64_t)size : 0, size > 0 ? (uint64_t)size : 0);
			return rc;
		}
		ib_error_clear();
		lseek(fd, 0, SEEK_SET);
	}
	ib_blob_writer *w;
	int rc = ib_store_blob_writer(&w, L->s);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	char *what = ib_sprintf("`%s`: `%s`", L->input, rel);
	if (!what)
		rc = IB_ERROR;
	else if (decompress)
		rc = ib_store__decompress_into(w, fd, what);
	else {
		char chunk[65536];
		for (;;) {
			ssize_t n = read(fd, chunk, sizeof chunk);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = ib_error_set_os(IB_LAYER_STORE, "read %s", what);
				break;
			}
			if (n == 0 || (rc = ib_blob_writer_write(w, chunk, (size_t)n)) < 0 ||
			    (rc = ib_callback_check(L->cb, "load")) < 0)
				break;
		}
	}
	close(fd);
	uint64_t real = 0;
	if (rc < 0) {
		ib_blob_writer_abort(w);
	} else if ((rc = ib_blob_writer_commit(w, got, &real, expected)) < 0) {
		ib_error_prefix("%s", what);
	} else if (size >= 0 && real != (uint64_t)size) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s has %llu bytes, its descriptor says %lld", what,
				   (unsigned long long)real, (long long)size);
	}
	free(what);
	if (rc == 0)
		rc = load_progress(L, rel, real, real);
	return rc;
}

static int blob_rel(char out[96], const ib_digest *d)
{
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, d);
	snprintf(out, 96, "blobs/sha256/%s", hex);
	return 0;
}

static int copy_descriptor(loader *L, const json_t *desc, const char *what, int depth);

/*
 * Local layers are uncompressed, their digest their diff_id, which is what
 * the snapshotters read: next to a compressed layer keep an uncompressed
 * copy, checked against the config's diff_id, and remember the compressed
 * blob as its variant (so a push sends it as it came) — only once it is
 * checked to decompress to that diff_id. An uncompressed layer's digest
 * must be its diff_id.
 */
static int ensure_uncompressed(loader *L, const char *rel, const char *media_type, const ib_digest *blob,
			       const char *diff_id_str, const char *what)
{
	ib_digest diff_id;
	if (!diff_id_str)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: %s: the config has fewer diff_ids than layers",
				     L->input, what);
	int rc = ib_digest_parse(&diff_id, diff_id_str);
	if (rc == 0)
		rc = ib_store_layer_uncompress(L->s, blob, media_type, &diff_id);
	if (rc < 0)
		ib_error_prefix("`%s`: `%s`", L->input, rel);
	return rc;
}

static int copy_manifest(loader *L, const ib_digest *d, const char *mt, int depth)
{
	char rel[96], ds[IB_DIGEST_STRLEN];
	blob_rel(rel, d);
	ib_digest_fmt(ds, d);
	json_t *m;
	int rc = ib_store__blob_json(&m, L->s, d, "manifest");
	if (rc < 0)
		return rc;
	const char *mmt = ib_json_str(m, "mediaType");
	if (!mmt)
		mmt = mt;
	char what[IB_DIGEST_STRLEN + 16];
	snprintf(what, sizeof what, "manifest %s", ds);
	if (depth > 4) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: indexes nested too deeply", L->input);
	} else if (json_is_array(json_object_get(m, "manifests"))) {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(m, "manifests"), i, e) {
			if ((rc = copy_descriptor(L, e, what, depth + 1)) < 0)
				break;
		}
	} else if (json_is_object(json_object_get(m, "config")) && json_is_array(json_object_get(m, "layers"))) {
		ib_digest cd;
		uint64_t size;
		json_t *cfg = NULL;
		if ((rc = ib_store__descriptor(NULL, &cd, &size, json_object_get(m, "config"), what)) == 0) {
			blob_rel(rel, &cd);
			rc = copy_blob(L, rel, &cd, (int64_t)size, NULL, 0);
		}
		if (rc == 0)
			rc = ib_store__blob_json(&cfg, L->s, &cd, "config");
		json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(m, "layers"), i, e) {
			const char *lmt = NULL;
			if (rc < 0)
				break;
			if ((rc = ib_store__descriptor(&lmt, &cd, &size, e, what)) == 0) {
				blob_rel(rel, &cd);
				rc = copy_blob(L, rel, &cd, (int64_t)size, NULL, 0);
			}
			if (rc == 0)
				rc = ensure_uncompressed(L, rel, lmt, &cd, json_string_value(json_array_get(diff_ids, i)), what);
		}
		json_decref(cfg);
	} else {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: %s is neither an image manifest nor an index",
				   L->input, what);
	}
	json_decref(m);
	return rc;
}

static int copy_descriptor(loader *L, const json_t *desc, const char *what, int depth)
{
	const char *mt;
	ib_digest d;
	uint64_t size;
	int rc = ib_store__descriptor(&mt, &d, &size, desc, what);
	if (rc < 0)
		return rc;
	char rel[96];
	blob_rel(rel, &d);
	if ((rc = copy_blob(L, rel, &d, (int64_t)size, NULL, 0)) < 0)
		return rc;
	return copy_manifest(L, &d, mt, depth);
}

static int add_pending(loader *L, const char *name, const ib_digest *d)
{
	struct pending *p = ib_realloc(L->pending, (L->npending + 1) * sizeof *p);
	if (!p)
		return IB_ERROR;
	L->pending = p;
	p[L->npending].name = NULL;
	p[L->npending].manifest = *d;
	if (name && !(p[L->npending].name = ib_strdup(name)))
		return IB_ERROR;
	L->npending++;
	return 0;
}

/* The name of an OCI index entry: io.containerd.image.name, a full ref.name, or repository:ref.name. */
static int oci_entry_name(ib_buf *out, const json_t *desc, const ib_load_options *o)
{
	json_t *ann = json_object_get(desc, "annotations");
	const char *full = ann ? ib_json_str(ann, IB_ANNOTATION_CONTAINERD_NAME) : NULL;
	const char *ref = ann ? ib_json_str(ann, IB_ANNOTATION_REF_NAME) : NULL;
	ib_buf_clear(out);
	if (full)
		return ib_reference_normalize(out, full);
	if (!ref)
		return 0;
	if (strchr(ref, '/') || strchr(ref, ':'))
		return ib_reference_normalize(out, ref);
	if (o->repository) {
		char *n = ib_sprintf("%s:%s", o->repository, ref);
		int rc = n ? ib_reference_normalize(out, n) : IB_ERROR;
		free(n);
		return rc;
	}
	return 0;
}

static int load_oci(loader *L, const ib_load_options *o)
{
	json_t *index;
	int rc = read_json(&index, L, "index.json");
	if (rc < 0)
		return rc;
	json_t *list = json_object_get(index, "manifests");
	if (!json_is_array(list))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: index.json has no \"manifests\" array", L->input);
	size_t i;
	json_t *e;
	ib_buf name = IB_BUF_INIT;
	json_array_foreach(list, i, e) {
		if (rc < 0)
			break;
		char what[48];
		snprintf(what, sizeof what, "index.json manifests[%zu]", i);
		ib_digest d;
		if ((rc = copy_descriptor(L, e, what, 0)) < 0 || (rc = ib_store__descriptor(NULL, &d, NULL, e, what)) < 0 ||
		    (rc = oci_entry_name(&name, e, o)) < 0)
			break;
		rc = add_pending(L, name.size ? name.ptr : NULL, &d);
	}
	ib_buf_dispose(&name);
	json_decref(index);
	return rc;
}

static int is_compressed_file(loader *L, const char *rel)
{
	int fd = open_rel(L, rel);
	if (fd < 0)
		return fd;
	unsigned char m[4] = { 0 };
	ssize_t n = read(fd, m, 4);
	close(fd);
	return n >= 2 && ((m[0] == 0x1f && m[1] == 0x8b) || (n == 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd));
}

static int load_docker_entry(loader *L, const json_t *entry, size_t idx)
{
	char what[48];
	snprintf(what, sizeof what, "manifest.json[%zu]", idx);
	const char *cfgrel = ib_json_str(entry, "Config");
	json_t *layers = json_object_get(entry, "Layers");
	if (!cfgrel || !json_is_array(layers))
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: %s has no Config or Layers", L->input, what);
	ib_digest cd;
	int rc = copy_blob(L, cfgrel, NULL, -1, &cd, 0);
	if (rc < 0)
		return rc;
	ib_image_config *c = NULL;
	json_t *cj;
	if ((rc = ib_store__blob_json(&cj, L->s, &cd, "image config")) < 0 || (rc = ib_image_config__wrap(&c, cj)) < 0)
		return rc;
	size_t n = json_array_size(layers);
	ib_layer *ls = ib_calloc(n ? n : 1, sizeof *ls);
	if (!ls)
		rc = IB_ERROR;
	else if (ib_image_config_diff_id_count(c) != n)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: %s has %zu layers, its config %zu diff_ids", L->input,
				   what, n, ib_image_config_diff_id_count(c));
	for (size_t i = 0; i < n && rc == 0; i++) {
		json_t *l = json_array_get(layers, i);
		if (!json_is_string(l)) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: %s Layers[%zu] is not a path", L->input, what, i);
			break;
		}
		const char *rel = json_string_value(l);
		if ((rc = ib_image_config_diff_id(&ls[i].diff_id, c, i)) < 0)
			break;
		int comp = is_compressed_file(L, rel);
		if (comp < 0) {
			rc = comp;
			break;
		}
		rc = copy_blob(L, rel, &ls[i].diff_id, -1, &ls[i].digest, comp);
		if (rc == 0)
			rc = ib_store_blob_size(&ls[i].size, L->s, &ls[i].digest);
	}
	uint64_t csize;
	ib_digest md;
	if (rc == 0 && (rc = ib_store_blob_size(&csize, L->s, &cd)) == 0)
		rc = ib_store__write_manifest(&md, NULL, L->s, &cd, csize, ls, n);
	ib_image_config_free(c);
	free(ls);
	if (rc < 0)
		return rc;
	json_t *tags = json_object_get(entry, "RepoTags");
	size_t i;
	json_t *t;
	ib_buf name = IB_BUF_INIT;
	json_array_foreach(tags, i, t) {
		if (!json_is_string(t) || (rc = ib_reference_normalize(&name, json_string_value(t))) < 0) {
			if (rc == 0)
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: %s RepoTags[%zu] is not a string", L->input,
						   what, i);
			break;
		}
		if ((rc = add_pending(L, name.ptr, &md)) < 0)
			break;
	}
	ib_buf_dispose(&name);
	if (rc == 0 && json_array_size(tags) == 0)
		rc = add_pending(L, NULL, &md);
	return rc;
}

static int load_docker(loader *L)
{
	json_t *m;
	int rc = read_json(&m, L, "manifest.json");
	if (rc < 0)
		return rc;
	if (!json_is_array(m) || json_array_size(m) == 0)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: manifest.json is not a non-empty array", L->input);
	size_t i;
	json_t *e;
	json_array_foreach(m, i, e) {
		if (rc < 0 || (rc = load_docker_entry(L, e, i)) < 0)
			break;
	}
	json_decref(m);
	return rc;
}

static int apply_change(ib_store *s, json_t *index, void *payload)
{
	loader *L = payload;
	for (size_t i = 0; i < L->npending; i++) {
		int rc = ib_store__tag_manifest_locked(s, index, L->pending[i].name, &L->pending[i].manifest);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int report(ib_strarray *out, loader *L)
{
	out->strings = ib_calloc(L->npending + 1, sizeof *out->strings);
	out->count = 0;
	if (!out->strings)
		return IB_ERROR;
	for (size_t i = 0; i < L->npending; i++) {
		char ds[IB_DIGEST_STRLEN];
		char *v;
		if (L->pending[i].name) {
			v = ib_strdup(L->pending[i].name);
		} else {
			ib_image *img;
			ib_digest_fmt(ds, &L->pending[i].manifest);
			if (ib_store_image_lookup(&img, L->s, ds) == 0) {
				ib_digest_fmt(ds, ib_image_id(img));
				ib_image_free(img);
			}
			ib_error_clear();
			v = ib_strdup(ds);
		}
		if (!v)
			return IB_ERROR;
		out->strings[out->count++] = v;
	}
	return 0;
}

int ib_store_load(ib_strarray *loaded, ib_store *s, const char *path, const ib_load_options *opts)
{
	ib_load_options defaults = IB_LOAD_OPTIONS_INIT;
	const ib_load_options *o = opts ? opts : &defaults;
	if (o->version < 1 || o->version > IB_LOAD_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_load_options version %u is not supported", o->version);
	if (o->version >= 2 && ib_callback_validate(o->callbacks, IB_LAYER_STORE) < 0)
		return IB_EINVALID;
	if (loaded) {
		loaded->strings = NULL;
		loaded->count = 0;
	}
	loader L = { s, path, -1, 0, NULL, 0, o->version >= 2 ? o->callbacks : NULL };
	ib_buf staging = IB_BUF_INIT;
	struct stat st;
	int rc = ib_store__lease(s);
	if (rc < 0)
		return rc;
	if (stat(path, &st) < 0) {
		rc = ib_error_set_os(IB_LAYER_STORE, "load: `%s`", path);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		L.rootfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	} else {
		if ((rc = ib_store__mkdtemp(&staging, s, "load")) < 0)
			goto out;
		L.rootfd = open(staging.ptr, O_PATH | O_DIRECTORY | O_CLOEXEC);
		L.staged = 1;
		ib_store__hook("load-extract");
		if (L.rootfd >= 0 && (rc = extract(path, L.rootfd, L.cb)) < 0)
			goto out;
	}
	if (L.rootfd < 0) {
		rc = ib_error_set_os(IB_LAYER_STORE, "load: open `%s`", path);
		goto out;
	}
	int has_docker = faccessat(L.rootfd, "manifest.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	int has_oci = faccessat(L.rootfd, "index.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	if (has_docker)
		rc = load_docker(&L);
	else if (has_oci)
		rc = load_oci(&L, o);
	else
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE,
				   "`%s` is neither an OCI layout (index.json) nor a docker-archive (manifest.json)", path);
	if (rc == 0)
		rc = ib_store__index_update(s, apply_change, &L);
	if (rc == 0 && loaded)
		rc = report(loaded, &L);
out:
	if (L.rootfd >= 0)
		close(L.rootfd);
	if (staging.size)
		ib_rm_rf(staging.ptr);
	for (size_t i = 0; i < L.npending; i++)
		free(L.pending[i].name);
	free(L.pending);
	ib_buf_dispose(&staging);
	ib_store__unlease(s);
	if (rc < 0) {
		if (loaded)
			ib_strarray_dispose(loaded);
		ib_error_prefix("load");
	}
	return ib_callback_result(rc);
}

/* ib_strarray_dispose() is util's (include/imagebuild/buffer.h, lib/util/buffer.c). */
