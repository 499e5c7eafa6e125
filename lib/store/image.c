/* Images: commit, lookup, names (tag, untag, remove), listing, history, inspect. */
#include "store/internal.h"
#include "util/fs.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ib_image {
	ib_digest id;
	ib_digest manifest;
	char *manifest_type;
	ib_image_config *config;
	ib_layer *layers;
	size_t nlayers;
	char **names;
	size_t nnames;
	char **digests;  /* repository digests: "docker.io/library/x@sha256:..." */
	size_t ndigests;
	uint64_t size;
	ib_image_history_item *history;
	size_t nhistory;
	ib_digest top;   /* the index entry's digest: an index's, or the manifest's */
};

/* ---- resolving index entries ---- */

typedef struct {
	json_t *entry;      /* borrowed from the index (NULL: from the names file) */
	const char *name;   /* ref.name annotation, or NULL */
	const char *digests; /* repository digests annotation, or NULL */
	ib_digest top;      /* the entry's digest */
	const char *top_type;
	ib_digest manifest; /* the platform manifest */
	ib_digest id;       /* its config digest */
	int ok;
} entry_info;

static const char *entry_name(const json_t *e)
{
	json_t *a = json_object_get(e, "annotations");
	return a ? ib_json_str(a, IB_ANNOTATION_REF_NAME) : NULL;
}

/*
 * Repository digests (docker's RepoDigests) live in the annotation
 * IB_ANNOTATION_REPO_DIGESTS of the image's index entries: normalised
 * "repository@sha256:<hex>" references, separated by spaces. An image's
 * repository digests are those of every entry with its id; an entry that goes
 * while its image stays hands them to one that stays.
 */
static const char *entry_digests(const json_t *e)
{
	json_t *a = json_object_get(e, "annotations");
	return a ? ib_json_str(a, IB_ANNOTATION_REPO_DIGESTS) : NULL;
}

/* 1 when the space-separated `list` holds the word `w` (of `n` bytes). */
static int words_have(const char *list, const char *w, size_t n)
{
	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, " ");
		if (len == n && !strncmp(p, w, n))
			return 1;
		p += len;
		p += *p == ' ';
	}
	return 0;
}

/* Add the space-separated references `add` to the entry `e`'s repository digests. */
static int digests_merge(json_t *e, const char *add)
{
	if (!add || !*add)
		return 0;
	const char *cur = entry_digests(e);
	ib_buf b = IB_BUF_INIT;
	int rc = cur ? ib_buf_puts(&b, cur) : 0;
	for (const char *p = add; rc == 0 && *p;) {
		size_t len = strcspn(p, " ");
		if (len && !words_have(b.size ? b.ptr : "", p, len)) {
			if ((b.size && ib_buf_puts(&b, " ") < 0) || ib_buf_put(&b, p, len) < 0)
				rc = IB_ERROR;
		}
		p += len;
		p += *p == ' ';
	}
	json_t *a = json_object_get(e, "annotations");
	if (rc == 0 && b.size && !a) {
		if (!(a = json_object()) || ib_json_set_new(e, "annotations", a) < 0)
			rc = ib_error_oom();
	}
	if (rc == 0 && b.size)
		rc = ib_json_set_str(a, IB_ANNOTATION_REPO_DIGESTS, b.ptr) < 0 ? ib_error_oom() : 0;
	ib_buf_dispose(&b);
	return rc;
}

static int resolve_entry(entry_info *info, ib_store *s, json_t *e)
{
	memset(info, 0, sizeof *info);
	info->entry = e;
	info->name = entry_name(e);
	info->digests = entry_digests(e);
	int rc = ib_store__descriptor(&info->top_type, &info->top, NULL, e, "index.json");
	if (rc < 0)
		return rc;
	json_t *m;
	if ((rc = ib_store__platform_manifest(&info->manifest, &m, s, &info->top, info->top_type)) < 0)
		return rc;
	rc = ib_store__descriptor(NULL, &info->id, NULL, json_object_get(m, "config"), "manifest config");
	json_decref(m);
	info->ok = rc == 0;
	return rc;
}

/*
 * Every entry of the index, resolved; broken entries have ok = 0. An image
 * manifest's id comes from the index memo (memo.c) when it is there: a
 * lookup does not open the manifests of the store's other images.
 */
static int resolve_all_memo(entry_info **out, size_t *n, ib_store *s, json_t *index, ib_store__memo *memo)
{
	json_t *list = json_object_get(index, "manifests");
	size_t count = json_array_size(list);
	entry_info *infos = ib_calloc(count ? count : 1, sizeof *infos);
	if (!infos)
		return IB_ERROR;
	for (size_t i = 0; i < count; i++) {
		json_t *e = json_array_get(list, i);
		entry_info *info = &infos[i];
		const ib_store__memo_entry *me = NULL;
		if (ib_store__descriptor(&info->top_type, &info->top, NULL, e, "index.json") == 0 &&
		    !ib_store__is_index_type(info->top_type) && (me = ib_store__memo_get(memo, &info->top))) {
			info->entry = e;
			info->name = entry_name(e);
			info->digests = entry_digests(e);
			info->manifest = me->manifest;
			info->id = me->id;
			info->ok = 1;
			continue;
		}
		ib_error_clear();
		if (resolve_entry(info, s, e) < 0) {
			ib_error_clear();
		} else if (!ib_store__is_index_type(info->top_type)) {
			ib_store__memo_entry ne;
			memset(&ne, 0, sizeof ne);
			ne.top = info->top;
			ne.manifest = info->manifest;
			ne.id = info->id;
			if (ib_store__memo_put(memo, &ne) < 0)
				ib_error_clear();
		}
	}
	*out = infos;
	*n = count;
	return 0;
}

/*
 * Write the names file (names.c) for the index whose bytes hash to `key`,
 * from its entries resolved (`infos`) and the memo's summaries. Only when
 * every entry resolved: a broken entry may mend (its blobs arrive), and the
 * slow way sees that. Best effort: a cache.
 */
static void names_save(ib_store *s, const ib_digest *key, const entry_info *infos, size_t n, ib_store__memo *memo,
		       const json_t *index)
{
	ib_store__names_entry *e = ib_calloc(n ? n : 1, sizeof *e);
	int ok = e != NULL;
	/*
	 * The entries' byte ranges, when index.json is in this library's layout:
	 * our dump of the parse hashes to the key exactly when it is those bytes.
	 */
	ib_buf b = IB_BUF_INIT;
	ib_store__index_span span = { 0 };
	ib_digest dk;
	int ranged = ok && index && ib_store__index_dump(&b, index, &span) == 0 && span.ok && span.n == n &&
		     ib_digest_of(&dk, b.size ? b.ptr : "", b.size) == 0 && ib_digest_equal(&dk, key);
	ib_buf_dispose(&b);
	for (size_t i = 0; ok && i < n; i++) {
		const entry_info *in = &infos[i];
		ib_store__names_entry *x = &e[i];
		if (!in->ok || !in->entry || ib_store__descriptor(NULL, &x->top, &x->dsize, in->entry, "index.json") < 0) {
			ok = 0;
			break;
		}
		x->top_type = in->top_type;
		x->name = in->name;
		x->digests = in->digests;
		if (ranged) {
			x->off = span.ranges[2 * i];
			x->len = span.ranges[2 * i + 1];
		}
		if (ib_store__is_index_type(in->top_type))
			continue;
		x->resolved = 1;
		x->manifest = in->manifest;
		x->id = in->id;
		const ib_store__memo_entry *me = ib_store__memo_get(memo, &in->top);
		if (me && me->summary && ib_digest_equal(&me->id, &in->id)) {
			x->summary = 1;
			x->size = me->size;
			x->created = me->created[0] ? me->created : NULL;
		}
	}
	uint64_t sp[2] = { ranged ? span.open : 0, ranged ? span.close : 0 };
	if (ok && ib_store__names_save(s, key, e, n, ranged ? sp : NULL) < 0)
		ok = 0;
	ib_store__index_span_dispose(&span);
	ib_error_clear();
	free(e);
}

/* `key`: the sha256 of the bytes `index` was parsed from (NULL: a changed copy, no names file from it). */
static int resolve_all(entry_info **out, size_t *n, ib_store *s, json_t *index, const ib_digest *key)
{
	ib_store__memo *memo = NULL;
	int rc = ib_store__memo_load(&memo, s);
	if (rc == 0)
		rc = resolve_all_memo(out, n, s, index, memo);
	if (rc == 0 && ib_store__memo_save(memo, s, index) < 0)
		ib_error_clear(); /* a cache: the next reader resolves again */
	if (rc == 0 && key)
		names_save(s, key, *out, *n, memo, index);
	ib_store__memo_free(memo);
	return rc;
}

/*
 * The entries of index.json as it is now, from the names file: 1 and the
 * infos (their strings borrowed from *names_out), or 0 when there is no
 * valid names file (the caller takes the slow way). No JSON parsed, no memo
 * read; an index / manifest list is resolved here, as the slow way does.
 */
static int names_infos(entry_info **out, ib_store *s, const ib_store__names *nm);

static int resolve_fast(entry_info **out, size_t *n, ib_store__names **names_out, ib_store *s)
{
	ib_store__names *nm = NULL;
	if (ib_store__names_load(&nm, s) < 0 || !nm) {
		ib_error_clear();
		return 0;
	}
	if (names_infos(out, s, nm) < 0) {
		ib_store__names_free(nm);
		return IB_ERROR;
	}
	*n = nm->n;
	*names_out = nm;
	return 1;
}

/* The entries of the names file `nm` as entry_info (strings borrowed from it); an index is resolved here. */
static int names_infos(entry_info **out, ib_store *s, const ib_store__names *nm)
{
	entry_info *infos = ib_calloc(nm->n ? nm->n : 1, sizeof *infos);
	if (!infos)
		return IB_ERROR;
	for (size_t i = 0; i < nm->n; i++) {
		const ib_store__names_entry *x = &nm->e[i];
		entry_info *info = &infos[i];
		info->name = x->name;
		info->digests = x->digests;
		info->top = x->top;
		info->top_type = x->top_type;
		if (x->resolved) {
			info->manifest = x->manifest;
			info->id = x->id;
			info->ok = 1;
			continue;
		}
		json_t *m = NULL;
		info->ok = ib_store__platform_manifest(&info->manifest, &m, s, &info->top, info->top_type) == 0 &&
			   ib_store__descriptor(NULL, &info->id, NULL, json_object_get(m, "config"), "manifest config") == 0;
		json_decref(m);
		ib_error_clear();
	}
	*out = infos;
	return 0;
}

/* ---- loading an image ---- */

static const char *oci_layer_type(const char *mt)
{
	if (!mt || !strcmp(mt, "application/vnd.docker.image.rootfs.diff.tar"))
		return IB_MEDIA_TYPE_OCI_LAYER;
	if (!strcmp(mt, IB_MEDIA_TYPE_DOCKER_LAYER_GZIP))
		return IB_MEDIA_TYPE_OCI_LAYER_GZIP;
	return mt;
}

static int image_layers(ib_image *img, ib_store *s, const json_t *m, const char *what)
{
	json_t *layers = json_object_get(m, "layers");
	size_t n = json_array_size(layers);
	size_t nd = ib_image_config_diff_id_count(img->config);
	if (n != nd)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: %zu layers but its config has %zu diff_ids", what, n,
				     nd);
	img->layers = ib_calloc(n ? n : 1, sizeof *img->layers);
	if (!img->layers)
		return IB_ERROR;
	for (size_t i = 0; i < n; i++) {
		ib_layer *l = &img->layers[i];
		const char *mt;
		int rc = ib_store__descriptor(&mt, &l->digest, &l->size, json_array_get(layers, i), what);
		if (rc < 0 || (rc = ib_image_config_diff_id(&l->diff_id, img->config, i)) < 0)
			return rc;
		l->media_type = ib_strdup(mt ? mt : IB_MEDIA_TYPE_OCI_LAYER);
		if (!l->media_type)
			return IB_ERROR;
		img->nlayers++;
		/*
		 * Size: of the uncompressed layers (every store holds them: pull and
		 * load uncompress each layer), so one image has one size in every
		 * store, whether its layers came gzip from a registry or were built here.
		 */
		uint64_t usize = l->size;
		if (!ib_digest_equal(&l->digest, &l->diff_id) && ib_store_blob_size(&usize, s, &l->diff_id) < 0) {
			ib_error_clear();
			usize = l->size;
		}
		img->size += usize;
	}
	return 0;
}

static int build_history(ib_image *img, ib_store *s);

/* qsort on an array of strings: the elements are char pointers */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int image_load(ib_image **out, ib_store *s, json_t *index, const ib_digest *top, const char *top_type,
		      const entry_info *known, size_t nknown);

int ib_store__image_load(ib_image **out, ib_store *s, json_t *index, const ib_digest *top, const char *top_type)
{
	return image_load(out, s, index, top, top_type, NULL, 0);
}

/* `known`: the index's entries already resolved (or NULL to resolve them here). */
static int image_load(ib_image **out, ib_store *s, json_t *index, const ib_digest *top, const char *top_type,
		      const entry_info *known, size_t nknown)
{
	ib_image *img = ib_calloc(1, sizeof *img);
	if (!img)
		return IB_ERROR;
	json_t *m = NULL, *cfgj = NULL;
	char what[IB_DIGEST_STRLEN + 16];
	int rc = ib_store__platform_manifest(&img->manifest, &m, s, top, top_type);
	if (rc < 0)
		goto out;
	img->top = *top;
	char ms[IB_DIGEST_STRLEN];
	ib_digest_fmt(ms, &img->manifest);
	snprintf(what, sizeof what, "manifest %s", ms);
	const char *mt = ib_json_str(m, "mediaType");
	img->manifest_type = ib_strdup(mt ? mt : IB_MEDIA_TYPE_OCI_MANIFEST);
	if (!img->manifest_type ||
	    (rc = ib_store__descriptor(NULL, &img->id, NULL, json_object_get(m, "config"), what)) < 0)
		goto out;
	if ((rc = ib_store__blob_json(&cfgj, s, &img->id, "image config")) < 0) {
		ib_error_prefix("%s", what);
		goto out;
	}
	rc = ib_image_config__wrap(&img->config, cfgj);
	cfgj = NULL;
	if (rc < 0 || (rc = image_layers(img, s, m, what)) < 0 || (rc = build_history(img, s)) < 0)
		goto out;
	/* every name of this image id */
	entry_info *infos = NULL;
	size_t n = nknown;
	if (!known && (rc = resolve_all(&infos, &n, s, index, NULL)) < 0)
		goto out;
	if (known)
		infos = (entry_info *)known;
	img->names = ib_calloc(n ? n : 1, sizeof *img->names);
	size_t nd = 0;
	for (size_t i = 0; i < n; i++) {
		const char *ds = infos[i].ok && ib_digest_equal(&infos[i].id, &img->id) ? infos[i].digests : NULL;
		for (const char *p = ds; p && *p; p++)
			nd += *p != ' ' && (p == ds || p[-1] == ' ');
	}
	img->digests = ib_calloc(nd ? nd : 1, sizeof *img->digests);
	for (size_t i = 0; img->names && img->digests && i < n; i++) {
		if (!infos[i].ok || !ib_digest_equal(&infos[i].id, &img->id))
			continue;
		if (infos[i].name) {
			if (!(img->names[img->nnames] = ib_strdup(infos[i].name)))
				break;
			img->nnames++;
		}
		for (const char *p = infos[i].digests; p && *p && img->ndigests < nd;) {
			size_t len = strcspn(p, " ");
			int dup = 0;
			for (size_t k = 0; k < img->ndigests && !dup; k++)
				dup = strlen(img->digests[k]) == len && !strncmp(img->digests[k], p, len);
			if (len && !dup) {
				if (!(img->digests[img->ndigests] = ib_strndup(p, len)))
					break;
				img->ndigests++;
			}
			p += len;
			p += *p == ' ';
		}
	}
	if (!known)
		free(infos);
	if (!img->names || !img->digests) {
		rc = IB_ERROR;
	} else {
		/* as docker's reference store: sorted by the normalised reference */
		qsort(img->names, img->nnames, sizeof *img->names, cmp_str);
		qsort(img->digests, img->ndigests, sizeof *img->digests, cmp_str);
	}
out:
	json_decref(m);
	if (rc < 0)
		ib_image_free(img);
	else
		*out = img;
	return rc;
}

void ib_image_free(ib_image *img)
{
	if (!img)
		return;
	for (size_t i = 0; i < img->nlayers; i++)
		free((char *)img->layers[i].media_type);
	free(img->layers);
	for (size_t i = 0; i < img->nnames; i++)
		free(img->names[i]);
	free(img->names);
	for (size_t i = 0; i < img->ndigests; i++)
		free(img->digests[i]);
	free(img->digests);
	free(img->history);
	free(img->manifest_type);
	ib_image_config_free(img->config);
	free(img);
}

const ib_digest *ib_image_id(const ib_image *img) { return &img->id; }
const ib_digest *ib_image_manifest_digest(const ib_image *img) { return &img->manifest; }
const char *ib_image_manifest_media_type(const ib_image *img) { return img->manifest_type; }
const ib_image_config *ib_image_config_of(const ib_image *img) { return img->config; }
size_t ib_image_layer_count(const ib_image *img) { return img->nlayers; }
const ib_layer *ib_image_layer(const ib_image *img, size_t i) { return i < img->nlayers ? &img->layers[i] : NULL; }
size_t ib_image_name_count(const ib_image *img) { return img->nnames; }
const char *ib_image_name(const ib_image *img, size_t i) { return i < img->nnames ? img->names[i] : NULL; }
uint64_t ib_image_size(const ib_image *img) { return img->size; }
size_t ib_image_repo_digest_count(const ib_image *img) { return img->ndigests; }
const char *ib_image_repo_digest(const ib_image *img, size_t i) { return i < img->ndigests ? img->digests[i] : NULL; }

/* ---- history ---- */

static int build_history(ib_image *img, ib_store *s)
{
	size_t nh = ib_image_config_history_count(img->config);
	size_t total = nh ? nh : img->nlayers;
	img->history = ib_calloc(total ? total : 1, sizeof *img->history);
	if (!img->history)
		return IB_ERROR;
	size_t li = 0;
	for (size_t i = 0; i < total; i++) {
		ib_image_history_item *it = &img->history[total - 1 - i]; /* newest first */
		it->version = IB_IMAGE_HISTORY_ITEM_VERSION;
		if (nh) {
			ib_history_entry e = IB_HISTORY_ENTRY_INIT;
			if (ib_image_config_history_get(&e, img->config, i) < 0)
				return IB_ERROR;
			it->created = e.created;
			it->created_by = e.created_by;
			it->author = e.author;
			it->comment = e.comment;
			it->empty_layer = e.empty_layer;
		} else {
			it->created = ib_image_config_get(img->config, IB_CONFIG_CREATED);
		}
		if (!it->empty_layer && li < img->nlayers) {
			it->has_layer = 1;
			it->layer = img->layers[li].diff_id;
			it->size = img->layers[li].size;
			/* as docker history: the size of the layer, not of its compressed blob */
			uint64_t usize;
			if (!ib_digest_equal(&img->layers[li].digest, &img->layers[li].diff_id)) {
				if (ib_store_blob_size(&usize, s, &img->layers[li].diff_id) == 0)
					it->size = usize;
				else
					ib_error_clear();
			}
			li++;
		}
	}
	img->nhistory = total;
	return 0;
}

int ib_store_layer_content_size(uint64_t *out, ib_store *store, const ib_digest *diff_id)
{
	*out = 0;
	char label[IB_DIGEST_STRLEN];
	ib_digest_fmt(label, diff_id);
	int fd = -1;
	int rc = ib_store_blob_open(&fd, store, diff_id);
	if (rc < 0)
		return rc;
	struct archive *a = archive_read_new();
	if (!a) {
		close(fd);
		return ib_error_oom();
	}
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	uint64_t sum = 0;
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "layer %s: not a tar archive: %s", label,
				   archive_error_string(a));
	} else {
		struct archive_entry *e;
		int r;
		while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
			/*
			 * What docker's layer store counts once the layer is unpacked
			 * (the size of every non-directory, an inode once): a
			 * regular file's content (a hardlink's header says 0, so a
			 * group counts once) and a symlink's target.
			 */
			const char *target = archive_entry_symlink(e);
			if (archive_entry_hardlink(e))
				;
			else if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0)
				sum += (uint64_t)archive_entry_size(e);
			else if (archive_entry_filetype(e) == AE_IFLNK && target)
				sum += strlen(target);
			if (archive_read_data_skip(a) != ARCHIVE_OK) {
				r = ARCHIVE_FATAL;
				break;
			}
		}
		if (r != ARCHIVE_EOF)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "layer %s: %s", label,
					   archive_error_string(a) ? archive_error_string(a) : "bad tar");
	}
	archive_read_free(a);
	close(fd);
	if (rc == 0)
		*out = sum;
	return rc;
}

size_t ib_image_history_count(const ib_image *img)
{
	return img->nhistory;
}

int ib_image_history_get(ib_image_history_item *out, const ib_image *img, size_t i)
{
	if (!out || out->version != IB_IMAGE_HISTORY_ITEM_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_image_history_item version %u is not supported",
				     out ? out->version : 0);
	if (i >= img->nhistory)
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "no history entry %zu", i);
	*out = img->history[i];
	return 0;
}

/* ---- lookup ---- */

static int is_hex_prefix(const char *s)
{
	if (!*s || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s) && !(*s >= 'a' && *s <= 'f'))
			return 0;
	return 1;
}

static int no_such_image(const char *what)
{
	return ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "No such image: %s", what);
}

/* Find the index entry for `name_or_id`: its position in `infos`. */
static int find_entry(size_t *pos, entry_info *infos, size_t n, const char *q)
{
	ib_reference *ref = NULL;
	if (ib_reference_parse(&ref, q) == 0) {
		const ib_digest *rd = ib_reference_digest(ref);
		char repo_digest[IB_DIGEST_STRLEN + 512] = "";
		if (rd) {
			char ds[IB_DIGEST_STRLEN];
			ib_digest_fmt(ds, rd);
			snprintf(repo_digest, sizeof repo_digest, "%s@%s", ib_reference_repository(ref), ds);
		}
		for (size_t i = 0; i < n; i++) {
			if (!infos[i].ok)
				continue;
			/* a digest: of the manifest here, or a repository digest recorded by push or pull */
			int hit = rd ? (ib_digest_equal(rd, &infos[i].top) || ib_digest_equal(rd, &infos[i].manifest) ||
					words_have(infos[i].digests, repo_digest, strlen(repo_digest)))
				     : (infos[i].name && !strcmp(infos[i].name, ib_reference_name(ref)));
			if (hit) {
				*pos = i;
				ib_reference_free(ref);
				return 0;
			}
		}
		ib_reference_free(ref);
	}
	ib_error_clear();
	const char *hex = !strncmp(q, "sha256:", 7) ? q + 7 : q;
	if (!is_hex_prefix(hex))
		return no_such_image(q);
	size_t found = (size_t)-1;
	ib_digest found_id;
	for (size_t i = 0; i < n; i++) {
		if (!infos[i].ok)
			continue;
		char h[IB_DIGEST_HEXLEN + 1], mh[IB_DIGEST_HEXLEN + 1];
		ib_digest_hex(h, &infos[i].id);
		ib_digest_hex(mh, &infos[i].top);
		int hit = !strncmp(h, hex, strlen(hex)) || (strlen(hex) == 64 && !strcmp(mh, hex));
		if (!hit)
			continue;
		if (found != (size_t)-1 && !ib_digest_equal(&found_id, &infos[i].id))
			return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "short image id `%s` is ambiguous", q);
		if (found == (size_t)-1 || (!infos[found].name && infos[i].name))
			found = i;
		found_id = infos[i].id;
	}
	if (found == (size_t)-1)
		return no_such_image(q);
	*pos = found;
	return 0;
}

static int lookup_in(ib_image **out, ib_store *s, json_t *index, const ib_digest *key, const char *q,
		     entry_info **infos_out, size_t *n_out, size_t *pos_out)
{
	entry_info *infos;
	size_t n, pos = 0;
	int rc = resolve_all(&infos, &n, s, index, key);
	if (rc < 0)
		return rc;
	if ((rc = find_entry(&pos, infos, n, q)) == 0 && out)
		rc = image_load(out, s, index, &infos[pos].top, infos[pos].top_type, infos, n);
	if (rc == 0 && infos_out) {
		*infos_out = infos;
		*n_out = n;
		*pos_out = pos;
	} else {
		free(infos);
	}
	return rc;
}

int ib_store_image_lookup(ib_image **out, ib_store *s, const char *q)
{
	/* the names file, when it was made from index.json as it is now */
	entry_info *infos = NULL;
	size_t n = 0, pos = 0;
	ib_store__names *nm = NULL;
	int rc = resolve_fast(&infos, &n, &nm, s);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		if ((rc = find_entry(&pos, infos, n, q)) == 0 && out)
			rc = image_load(out, s, NULL, &infos[pos].top, infos[pos].top_type, infos, n);
		free(infos);
		ib_store__names_free(nm);
		return rc;
	}
	json_t *index;
	ib_digest key;
	if ((rc = ib_store__index_read_shared_key(&index, &key, s)) < 0)
		return rc;
	rc = lookup_in(out, s, index, &key, q, NULL, NULL, NULL);
	json_decref(index);
	return rc;
}

/* ---- index entries ---- */

static size_t count_top(json_t *list, const ib_digest *d)
{
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(list, i, e) {
		ib_digest ed;
		if (ib_store__descriptor(NULL, &ed, NULL, e, "index.json") == 0 && ib_digest_equal(&ed, d))
			n++;
	}
	return n;
}

/* The first entry of the manifest `d` other than `skip` (NULL when none). */
static json_t *other_entry_of(json_t *list, const ib_digest *d, const json_t *skip)
{
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		ib_digest ed;
		if (e != skip && ib_store__descriptor(NULL, &ed, NULL, e, "index.json") == 0 && ib_digest_equal(&ed, d))
			return e;
	}
	return NULL;
}

int ib_store__index_set(ib_store *s, json_t *index, const char *name, const char *mt, const ib_digest *d,
			uint64_t size)
{
	return ib_store__index_set_digest(s, index, name, mt, d, size, NULL);
}

/*
 * 1 when the index `list` already names `d` `name` as ib_store__index_set_digest
 * would (so it would change nothing). Reads only: also asked of the handle's
 * shared index (commit_unchanged).
 */
static int index_already_set(const json_t *list, const char *name, const char *mt, const ib_digest *d, uint64_t size,
			     const char *repo_digest)
{
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		const char *en = entry_name(e), *emt = ib_json_str(e, "mediaType");
		ib_digest ed;
		uint64_t esize;
		if (!en || strcmp(en, name) || ib_store__descriptor(NULL, &ed, &esize, e, "index.json") < 0) {
			ib_error_clear();
			continue;
		}
		return ib_digest_equal(&ed, d) && esize == size && emt && mt && !strcmp(emt, mt) &&
		       (!repo_digest || words_have(entry_digests(e), repo_digest, strlen(repo_digest)));
	}
	return 0;
}

/* index_already_set, asked of the names file */
static int names_already_set(const ib_store__names *nm, const char *name, const char *mt, const ib_digest *d,
			     uint64_t size, const char *repo_digest)
{
	for (size_t i = 0; i < nm->n; i++) {
		const ib_store__names_entry *x = &nm->e[i];
		if (!x->name || strcmp(x->name, name))
			continue;
		return ib_digest_equal(&x->top, d) && x->dsize == size && x->top_type && mt && !strcmp(x->top_type, mt) &&
		       (!repo_digest || words_have(x->digests, repo_digest, strlen(repo_digest)));
	}
	return 0;
}

/* other_entry_of (no entry skipped), asked of the names file */
static const ib_store__names_entry *names_entry_of(const ib_store__names *nm, const ib_digest *d)
{
	for (size_t i = 0; i < nm->n; i++)
		if (ib_digest_equal(&nm->e[i].top, d))
			return &nm->e[i];
	return NULL;
}

int ib_store__index_set_digest(ib_store *s, json_t *index, const char *name, const char *mt, const ib_digest *d,
			       uint64_t size, const char *repo_digest)
{
	(void)s;
	json_t *list = json_object_get(index, "manifests");
	size_t i;
	json_t *e;
	if (!name) {
		json_t *have = other_entry_of(list, d, NULL);
		if (have)
			return digests_merge(have, repo_digest);
		json_t *desc = ib_store__descriptor_new(mt, d, size);
		if (!desc || digests_merge(desc, repo_digest) < 0) {
			json_decref(desc);
			return ib_error_oom();
		}
		return json_array_append_new(list, desc) ? ib_error_oom() : 0;
	}
	/* already so (a rebuild's tag): nothing changes, not even the entries' order */
	if (index_already_set(list, name, mt, d, size, repo_digest))
		return 0;
	/* the repository digests of the entries this replaces */
	ib_buf carried = IB_BUF_INIT;
	int rc = repo_digest ? ib_buf_puts(&carried, repo_digest) : 0;
	/* drop the name from where it was; that image stays, untagged, if it has no other name */
	for (i = 0; rc == 0 && i < json_array_size(list); i++) {
		e = json_array_get(list, i);
		const char *en = entry_name(e);
		if (!en || strcmp(en, name))
			continue;
		ib_digest old;
		if (ib_store__descriptor(NULL, &old, NULL, e, "index.json") == 0 && count_top(list, &old) == 1 &&
		    !ib_digest_equal(&old, d)) {
			/* untagged, it keeps its repository digests (docker images --digests shows <none> rows) */
			json_t *ann = json_object_get(e, "annotations");
			json_object_del(ann, IB_ANNOTATION_REF_NAME);
			if (!entry_digests(e))
				json_object_del(e, "annotations");
		} else {
			const char *ds = entry_digests(e);
			json_t *heir = ds && !ib_digest_equal(&old, d) ? other_entry_of(list, &old, e) : NULL;
			if (heir)
				rc = digests_merge(heir, ds);
			else if (ds && ((carried.size && ib_buf_puts(&carried, " ") < 0) || ib_buf_puts(&carried, ds) < 0))
				rc = IB_ERROR;
			json_array_remove(list, i);
		}
		break;
	}
	/* an untagged entry of this manifest becomes the named one */
	for (i = 0; rc == 0 && i < json_array_size(list); i++) {
		e = json_array_get(list, i);
		ib_digest ed;
		if (!entry_name(e) && ib_store__descriptor(NULL, &ed, NULL, e, "index.json") == 0 &&
		    ib_digest_equal(&ed, d)) {
			const char *ds = entry_digests(e);
			if (ds && ((carried.size && ib_buf_puts(&carried, " ") < 0) || ib_buf_puts(&carried, ds) < 0))
				rc = IB_ERROR;
			json_array_remove(list, i);
			break;
		}
	}
	json_t *desc = rc == 0 ? ib_store__descriptor_new(mt, d, size) : NULL;
	json_t *ann = desc ? json_object() : NULL;
	if (rc == 0 && (!ann || ib_json_set_new(desc, "annotations", ann) < 0 ||
			ib_json_set_str(ann, IB_ANNOTATION_REF_NAME, name) < 0 ||
			digests_merge(desc, carried.size ? carried.ptr : NULL) < 0)) {
		json_decref(desc);
		rc = ib_error_oom();
	}
	ib_buf_dispose(&carried);
	if (rc < 0)
		return rc;
	/* append_new takes `desc` even when it fails: no decref here */
	return json_array_append_new(list, desc) != 0 ? ib_error_oom() : 0;
}


/*
 * The names file for `index`, just written as the bytes `key`. What an image
 * manifest resolves to never changes, so it is taken from the names file the
 * handle read last (whatever index that was made from) where it has the
 * manifest; a manifest it lacks is resolved from its blobs. Without one, the
 * memo's way (resolve_all). Best effort: a cache, the next reader writes it.
 */
static void names_refresh(ib_store *s, json_t *index, const ib_digest *key, const ib_store__index_span *span)
{
	ib_store__names *old = NULL;
	pthread_mutex_lock(&s->cache_mu);
	if ((old = s->names_cache))
		__atomic_add_fetch(&old->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&s->cache_mu);
	json_t *list = json_object_get(index, "manifests");
	size_t n = json_array_size(list), cap = 16;
	if (!old) {
		entry_info *infos = NULL;
		if (resolve_all(&infos, &n, s, index, key) == 0)
			free(infos);
		ib_error_clear();
		return;
	}
	while (cap < 2 * old->n + 2)
		cap *= 2;
	const ib_store__names_entry **tab = ib_calloc(cap, sizeof *tab);
	ib_store__names_entry *e = ib_calloc(n ? n : 1, sizeof *e);
	int ok = tab && e;
	for (size_t i = 0; ok && i < old->n; i++) {
		const ib_store__names_entry *o = &old->e[i];
		size_t h;
		memcpy(&h, o->top.bytes, sizeof h);
		for (h &= cap - 1; tab[h] && !ib_digest_equal(&tab[h]->top, &o->top); h = (h + 1) & (cap - 1))
			;
		if (!tab[h] && o->resolved)
			tab[h] = o;
	}
	for (size_t i = 0; ok && i < n; i++) {
		json_t *je = json_array_get(list, i);
		ib_store__names_entry *x = &e[i];
		if (ib_store__descriptor(&x->top_type, &x->top, &x->dsize, je, "index.json") < 0) {
			ok = 0;
			break;
		}
		x->name = entry_name(je);
		x->digests = entry_digests(je);
		if (span->ok) {
			x->off = span->ranges[2 * i];
			x->len = span->ranges[2 * i + 1];
		}
		if (ib_store__is_index_type(x->top_type))
			continue; /* resolved at each lookup */
		size_t h;
		memcpy(&h, x->top.bytes, sizeof h);
		for (h &= cap - 1; tab[h] && !ib_digest_equal(&tab[h]->top, &x->top); h = (h + 1) & (cap - 1))
			;
		x->resolved = 1;
		if (tab[h]) {
			x->manifest = tab[h]->manifest;
			x->id = tab[h]->id;
			x->summary = tab[h]->summary;
			x->size = tab[h]->size;
			x->created = tab[h]->created;
			continue;
		}
		entry_info info;
		if (resolve_entry(&info, s, je) < 0) {
			ok = 0; /* an entry that does not resolve: no names file (the slow way sees it mend) */
			break;
		}
		x->manifest = info.manifest;
		x->id = info.id;
	}
	uint64_t sp[2] = { span->open, span->close };
	if (ok)
		ib_store__names_save(s, key, e, n, span->ok && span->n == n ? sp : NULL);
	ib_error_clear();
	free(tab);
	free(e);
	ib_store__names_free(old);
}

int ib_store__index_update(ib_store *s, index_change_fn fn, void *payload)
{
	int rc = ib_store__lease(s);
	if (rc < 0)
		return rc;
	ib_lock lk = IB_LOCK_INIT;
	json_t *index = NULL, *before = NULL;
	ib_buf was = IB_BUF_INIT, now = IB_BUF_INIT;
	ib_store__index_span span = { 0 };
	ib_digest key;
	int wrote = 0, fresh = 0;
	/*
	 * Read under the lock, so current. The handle's shared parse (before) is
	 * copied to be changed and compared with; a parse of our own (what a
	 * command gets: its lookups read the names file) is changed in place and
	 * compared by its dumps before and after — no second tree of 1,000
	 * entries. A change that changes nothing writes nothing, either way (the
	 * dumps differ only when the tree does, or when a key moved in its object).
	 */
	if ((rc = ib_store__index_lock(&lk, s)) == 0 && (rc = ib_store__index_read_change(&before, &fresh, s)) == 0) {
		if (fresh) {
			index = before;
			before = NULL;
			rc = ib_store__index_dump(&was, index, NULL);
		} else if (!(index = json_deep_copy(before))) {
			rc = ib_error_oom();
		}
	}
	/* written in this library's layout, each entry's bytes known for the names file (image.c splices them) */
	if (rc == 0 && (rc = fn(s, index, payload)) == 0) {
		if (!fresh && !json_equal(before, index))
			wrote = (rc = ib_store__index_dump(&now, index, &span)) == 0 &&
				(rc = ib_store__index_write_bytes(s, &now, &key)) == 0;
		else if (fresh && (rc = ib_store__index_dump(&now, index, &span)) == 0 &&
			 (now.size != was.size || memcmp(now.ptr, was.ptr, now.size)))
			wrote = (rc = ib_store__index_write_bytes(s, &now, &key)) == 0;
	}
	ib_buf_dispose(&was);
	ib_buf_dispose(&now);
	json_decref(before);
	ib_lock_release(&lk);
	/*
	 * The names file of what was written, so the next lookup (a rebuild
	 * after a tag) need not parse index.json. Outside the lock: keyed by the
	 * bytes written, it is never believed once another writer replaces them.
	 */
	if (wrote)
		names_refresh(s, index, &key, &span);
	ib_store__index_span_dispose(&span);
	json_decref(index);
	ib_store__unlease(s);
	return rc;
}

/*
 * As ib_store__index_update, for a change `fn` without side effects outside
 * the index object (commit, naming a manifest): tried first on the index as
 * it is, without the lock; when it changes nothing (a rebuild's commit and
 * tag), that is the answer — index.json is replaced whole, so what was read
 * is a state the index was in — and neither the lock nor the file is touched.
 */
static int index_update_idem(ib_store *s, index_change_fn fn, void *payload)
{
	json_t *now = NULL, *changed = NULL;
	int same = 0;
	if (ib_store__lease(s) < 0) {
		ib_error_clear();
	} else {
		if (ib_store__index_read_shared(&now, s) == 0 && (changed = json_deep_copy(now)) && fn(s, changed, payload) == 0)
			same = json_equal(now, changed);
		ib_store__unlease(s);
	}
	json_decref(now);
	json_decref(changed);
	ib_error_clear();
	return same ? 0 : ib_store__index_update(s, fn, payload);
}

/* ---- commit ---- */

static int check_layers(ib_store *s, const ib_image_config *c, const ib_layer *layers, size_t n)
{
	size_t nd = ib_image_config_diff_id_count(c);
	if (nd != n)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "image commit: %zu layers but the config has %zu diff_ids",
				     n, nd);
	static const ib_digest zero;
	for (size_t i = 0; i < n; i++) {
		char ds[IB_DIGEST_STRLEN];
		ib_digest_fmt(ds, &layers[i].digest);
		uint64_t size;
		int rc = ib_store_blob_size(&size, s, &layers[i].digest);
		if (rc < 0) {
			ib_error_prefix("image commit: layer %zu", i);
			return rc;
		}
		if (layers[i].size && layers[i].size != size)
			return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "image commit: layer %zu (%s) has %llu bytes, not %llu",
					     i, ds, (unsigned long long)size, (unsigned long long)layers[i].size);
		ib_digest diff;
		if ((rc = ib_image_config_diff_id(&diff, c, i)) < 0)
			return rc;
		int compressed = ib_store__layer_is_compressed(layers[i].media_type);
		if ((!compressed && !ib_digest_equal(&diff, &layers[i].digest)) ||
		    (memcmp(&layers[i].diff_id, &zero, sizeof zero) && !ib_digest_equal(&diff, &layers[i].diff_id)))
			return ib_error_setc(IB_EINVALID, IB_LAYER_STORE,
					     "image commit: layer %zu (%s) does not match the config's diff_id", i, ds);
	}
	return 0;
}

int ib_store__write_manifest(ib_digest *manifest, uint64_t *msize, ib_store *s, const ib_digest *config,
			     uint64_t config_size, const ib_layer *layers, size_t n)
{
	return ib_store__write_manifest_annotated(manifest, msize, s, config, config_size, layers, n, NULL);
}

int ib_store__write_manifest_annotated(ib_digest *manifest, uint64_t *msize, ib_store *s, const ib_digest *config,
				       uint64_t config_size, const ib_layer *layers, size_t n,
				       const char *const *annotations)
{
	json_t *m = json_pack("{s:i,s:s,s:o,s:[]}", "schemaVersion", 2, "mediaType", IB_MEDIA_TYPE_OCI_MANIFEST, "config",
			      ib_store__descriptor_new(IB_MEDIA_TYPE_OCI_CONFIG, config, config_size), "layers");
	if (!m)
		return ib_error_oom();
	json_t *arr = json_object_get(m, "layers");
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint64_t size;
		if ((rc = ib_store_blob_size(&size, s, &layers[i].digest)) < 0)
			break;
		if (json_array_append_new(arr, ib_store__descriptor_new(oci_layer_type(layers[i].media_type),
									&layers[i].digest, size)) != 0)
			rc = ib_error_oom();
	}
	if (rc == 0 && annotations && *annotations) {
		json_t *an = json_object();
		if (!an || json_object_set_new(m, "annotations", an) != 0)
			rc = ib_error_oom();
		for (const char *const *a = annotations; rc == 0 && *a; a++) {
			const char *eq = strchr(*a, '=');
			char *k = eq ? ib_strndup(*a, eq - *a) : NULL;
			if (!eq || eq == *a)
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "annotation `%s`: expected KEY=VALUE", *a);
			else if (!k || json_object_set_new(an, k, json_string(eq + 1)) != 0)
				rc = ib_error_oom();
			free(k);
		}
	}
	if (rc == 0)
		rc = ib_store__blob_put_json(manifest, msize, s, m);
	json_decref(m);
	return rc;
}

typedef struct {
	const char *name;
	const char *mt;
	ib_digest d;
	uint64_t size;
} set_args;

static int set_change(ib_store *s, json_t *index, void *payload)
{
	set_args *a = payload;
	return ib_store__index_set(s, index, a->name, a->mt, &a->d, a->size);
}

/*
 * A rebuild's commit: the index as the handle has it parsed (shared, not
 * copied) already gives the manifest this name (or, untagged, has an entry
 * of it), so set_change would change nothing: 1, and nothing is written,
 * copied or locked. Any doubt (no index, a read error): 0, the full path.
 */
static int commit_unchanged(ib_store *s, const set_args *a)
{
	ib_store__names *nm = NULL;
	if (ib_store__names_load(&nm, s) == 0 && nm) {
		int same = a->name ? names_already_set(nm, a->name, a->mt, &a->d, a->size, NULL)
				   : names_entry_of(nm, &a->d) != NULL;
		ib_store__names_free(nm);
		return same;
	}
	ib_error_clear();
	json_t *index = NULL;
	if (ib_store__index_read_shared(&index, s) < 0) {
		ib_error_clear();
		return 0;
	}
	json_t *list = json_object_get(index, "manifests");
	int same = a->name ? index_already_set(list, a->name, a->mt, &a->d, a->size, NULL)
			   : other_entry_of(list, &a->d, NULL) != NULL;
	json_decref(index);
	return same;
}

static int commit_splice(ib_store *s, const char *name, const char *mt, const ib_digest *d, uint64_t size,
			 const ib_digest *id);

int ib_store_image_commit(ib_digest *image_id, ib_digest *manifest, ib_store *s, const ib_image_config *c,
			  const ib_layer *layers, size_t n, const ib_image_commit_options *opts)
{
	if (opts && (opts->version < 1 || opts->version > IB_IMAGE_COMMIT_OPTIONS_VERSION))
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_image_commit_options version %u is not supported",
				     opts->version);
	const char *const *annotations = opts && opts->version >= 2 ? opts->annotations : NULL;
	ib_buf name = IB_BUF_INIT, cj = IB_BUF_INIT;
	int rc = 0;
	if (opts && opts->name && (rc = ib_reference_normalize(&name, opts->name)) < 0)
		return rc;
	if ((rc = ib_store__lease(s)) < 0)
		goto out0;
	set_args a = { name.size ? name.ptr : NULL, IB_MEDIA_TYPE_OCI_MANIFEST, { { 0 } }, 0 };
	ib_digest cd;
	if ((rc = check_layers(s, c, layers, n)) < 0 || (rc = ib_image_config_to_json(&cj, c)) < 0 ||
	    (rc = ib_store_blob_put(&cd, s, cj.ptr, cj.size)) < 0 ||
	    (rc = ib_store__write_manifest_annotated(&a.d, &a.size, s, &cd, cj.size, layers, n, annotations)) < 0)
		goto out;
	/* named already: nothing to do; else spliced (1); else (0) the parse path */
	if (!commit_unchanged(s, &a) && (rc = commit_splice(s, a.name, a.mt, &a.d, a.size, &cd)) == 0)
		rc = index_update_idem(s, set_change, &a);
	if (rc < 0)
		goto out;
	rc = 0;
	if (image_id)
		*image_id = cd;
	if (manifest)
		*manifest = a.d;
out:
	ib_store__unlease(s);
out0:
	ib_buf_dispose(&name);
	ib_buf_dispose(&cj);
	return rc;
}

/* ---- names ---- */

typedef struct {
	const char *source;
	const char *target;
	const ib_digest *manifest;
	const char *repo_digest; /* normalised, or NULL */
} tag_args;

static int tag_change(ib_store *s, json_t *index, void *payload)
{
	tag_args *a = payload;
	entry_info *infos = NULL;
	size_t n = 0, pos = 0;
	ib_store__names *nm = NULL;
	uint64_t size = 0;
	const char *mt = NULL;
	ib_digest d;
	/*
	 * The source from the names file when it was made from index.json as it
	 * is now — under index.lock, so the bytes `index` was parsed from — else
	 * from `index` itself.
	 */
	int rc = resolve_fast(&infos, &n, &nm, s);
	if (rc == 1) {
		if ((rc = find_entry(&pos, infos, n, a->source)) == 0) {
			mt = nm->e[pos].top_type;
			d = nm->e[pos].top;
			size = nm->e[pos].dsize;
		}
	} else if (rc == 0 && (rc = lookup_in(NULL, s, index, NULL, a->source, &infos, &n, &pos)) == 0) {
		rc = ib_store__descriptor(&mt, &d, &size, infos[pos].entry, "index.json");
	}
	char *mtc = rc == 0 ? ib_strdup(mt ? mt : IB_MEDIA_TYPE_OCI_MANIFEST) : NULL;
	free(infos);
	ib_store__names_free(nm);
	if (rc == 0)
		rc = mtc ? ib_store__index_set(s, index, a->target, mtc, &d, size) : IB_ERROR;
	free(mtc);
	return rc;
}

/*
 * 1 when the names file (current) says `target` already names what `source`
 * finds, as tag_change would set it: nothing would change, so nothing is
 * locked, parsed or written. Any doubt: 0, the full path (which also reports
 * a source that is not there).
 */
static int tag_unchanged(ib_store *s, const char *source, const char *target, ib_store__names **nm_out,
			 entry_info **infos_out)
{
	entry_info *infos = NULL;
	size_t n = 0, pos = 0;
	ib_store__names *nm = NULL;
	int same = 0;
	if (resolve_fast(&infos, &n, &nm, s) == 1 && find_entry(&pos, infos, n, source) == 0) {
		const ib_store__names_entry *x = &nm->e[pos];
		same = names_already_set(nm, target, x->top_type ? x->top_type : IB_MEDIA_TYPE_OCI_MANIFEST, &x->top,
					 x->dsize, NULL);
	}
	ib_error_clear();
	/* what it read, for the splice (splice_begin) when index.json is still those bytes */
	*nm_out = nm;
	*infos_out = infos;
	return same;
}

/* ---- splicing index.json: a tag without parsing it ---- */

/*
 * 1 when jansson writes `v` in a JSON string as it is (no escape): printable
 * ASCII but '"' and '\\' (a space only when `space`).
 */
static int json_plain(const char *v, int space)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 + !space || *p > 0x7e || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

/*
 * An index entry as this library writes it (ib_store__index_set_digest's
 * descriptor, dumped compact): mediaType, digest, size, then annotations
 * with the name before the repository digests, none when both are absent.
 * 0, or 1 when a string would need escaping (then this is not the layout).
 */
static int entry_bytes(ib_buf *out, const char *mt, const ib_digest *d, uint64_t size, const char *name,
		       const char *digests)
{
	if ((mt && !json_plain(mt, 0)) || (name && !json_plain(name, 0)) || (digests && !json_plain(digests, 1)))
		return 1;
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, d);
	int rc = ib_buf_putc(out, '{');
	if (rc == 0 && mt)
		rc = ib_buf_printf(out, "\"mediaType\":\"%s\",", mt);
	if (rc == 0)
		rc = ib_buf_printf(out, "\"digest\":\"%s\",\"size\":%" PRIu64, ds, size);
	if (rc == 0 && (name || digests))
		rc = ib_buf_printf(out, ",\"annotations\":{%s%s%s%s%s%s%s}", name ? "\"" IB_ANNOTATION_REF_NAME "\":\"" : "",
				   name ? name : "", name ? "\"" : "", name && digests ? "," : "",
				   digests ? "\"" IB_ANNOTATION_REPO_DIGESTS "\":\"" : "", digests ? digests : "",
				   digests ? "\"" : "");
	if (rc == 0)
		rc = ib_buf_putc(out, '}');
	return rc < 0 ? IB_ERROR : 0;
}

/* `cur` with the words of `add` it lacks (digests_merge on strings): malloc'ed, NULL when empty (*rc < 0: OOM). */
static char *words_merge(const char *cur, const char *add, int *rc)
{
	ib_buf b = IB_BUF_INIT;
	*rc = cur ? ib_buf_puts(&b, cur) : 0;
	for (const char *p = add; *rc == 0 && p && *p;) {
		size_t len = strcspn(p, " ");
		if (len && !words_have(b.size ? b.ptr : "", p, len) &&
		    ((b.size && ib_buf_puts(&b, " ") < 0) || ib_buf_put(&b, p, len) < 0))
			*rc = IB_ERROR;
		p += len;
		p += *p == ' ';
	}
	char *r = *rc == 0 && b.size ? ib_buf_detach(&b) : NULL;
	if (*rc == 0 && b.size && !r)
		*rc = IB_ERROR;
	ib_buf_dispose(&b);
	return r;
}

/*
 * 1 when the names file's ranges are where index.json's bytes `b` say: the
 * manifests array's '[' and ']' at open and close, the entries one after
 * the other between them, each from '{' to '}', separated by one ','.
 */
static int ranges_hold(const ib_store__names *nm, const char *b, size_t size)
{
	if (!nm->ranged || nm->close >= size || b[nm->open] != '[' || b[nm->close] != ']')
		return 0;
	uint64_t pos = nm->open + 1;
	for (size_t i = 0; i < nm->n; i++) {
		const ib_store__names_entry *x = &nm->e[i];
		if (i && (b[pos] != ',' || ++pos > nm->close))
			return 0;
		if (x->off != pos || x->len < 2 || x->len > nm->close - pos || b[pos] != '{' || b[pos + x->len - 1] != '}')
			return 0;
		pos += x->len;
	}
	return pos == nm->close;
}

typedef struct {
	const char *name;    /* the entry's name after the change */
	const char *digests; /* its repository digests after the change */
	char *owned;         /* digests, when made here */
	int drop, touched;
} splice_op;

/* A change made on index.json's bytes (tag, untag, rmi): what splice_begin read, under index.lock. */
typedef struct {
	ib_lock lk;
	const char *cur;     /* index.json's bytes: mapped past 64 KiB (page faults are dear), else read */
	size_t size;
	void *map;
	ib_buf small;
	ib_buf out;          /* the new bytes, then the names file's (pages touched once) */
	ib_store__names *nm; /* the names file of those bytes, ranged */
	entry_info *infos;   /* its entries (names_infos) */
	splice_op *ops;      /* nm->n of them */
	int leased;
} index_splice;

static void splice_end(index_splice *sp, ib_store *s)
{
	ib_lock_release(&sp->lk);
	for (size_t i = 0; sp->ops && i < sp->nm->n; i++)
		free(sp->ops[i].owned);
	free(sp->ops);
	free(sp->infos);
	ib_store__names_free(sp->nm);
	if (sp->map)
		munmap(sp->map, sp->size);
	ib_buf_dispose(&sp->small);
	ib_buf_dispose(&sp->out);
	if (sp->leased)
		ib_store__unlease(s);
}

/*
 * Lease, lock index.lock, read and hash index.json, load the names file of
 * that hash: 1 when it knows every entry's bytes and they are where it says
 * (then sp->infos and sp->ops, one per entry, unchanged); 0 when the change
 * must take the parse path; < 0 on error. splice_end in every case.
 */
static int splice_begin(index_splice *sp, ib_store *s, ib_store__names *pre, entry_info **pre_infos)
{
	memset(sp, 0, sizeof *sp);
	sp->lk = (ib_lock)IB_LOCK_INIT;
	sp->small = (ib_buf)IB_BUF_INIT;
	sp->out = (ib_buf)IB_BUF_INIT;
	char *p = ib_store__path(s, "index.json");
	ib_digest key;
	struct stat st;
	int fd = -1, rc = p ? ib_store__lease(s) : IB_ERROR;
	sp->leased = rc == 0;
	if (rc == 0 && (rc = ib_store__index_lock(&sp->lk, s)) == 0 &&
	    ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	     st.st_size > (off_t)IB_STORE_MAX_JSON)) {
		if (fd >= 0)
			close(fd);
		free(p);
		return 0; /* no names file is made for such a one either: the parse path says what is wrong */
	}
	if (rc == 0 && st.st_size >= (off_t)(64u << 10)) {
		sp->size = (size_t)st.st_size;
		if ((sp->map = mmap(NULL, sp->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0)) == MAP_FAILED) {
			sp->map = NULL;
			rc = ib_error_set_os(IB_LAYER_STORE, "map `%s`", p);
		}
		sp->cur = sp->map;
	} else if (rc == 0 && (rc = ib_read_fd(&sp->small, fd, IB_STORE_MAX_JSON, p)) == 0) {
		sp->cur = sp->small.size ? sp->small.ptr : "";
		sp->size = sp->small.size;
	}
	if (fd >= 0)
		close(fd);
	free(p);
	if (rc == 0)
		rc = ib_digest_of(&key, sp->cur, sp->size);
	if (rc < 0)
		return rc;
	/* the names (and entries) the caller read before the lock, when index.json is still those bytes */
	if (pre && ib_digest_equal(&pre->key, &key) && pre_infos && *pre_infos) {
		__atomic_add_fetch(&pre->refs, 1, __ATOMIC_ACQ_REL);
		sp->nm = pre;
		sp->infos = *pre_infos;
		*pre_infos = NULL;
	} else if (ib_store__names_load_key(&sp->nm, s, &key) < 0) {
		sp->nm = NULL;
	}
	if (!sp->nm || !ranges_hold(sp->nm, sp->cur, sp->size)) {
		ib_error_clear();
		return 0; /* the parse path */
	}
	if ((!sp->infos && (rc = names_infos(&sp->infos, s, sp->nm)) < 0) ||
	    !(sp->ops = ib_calloc(sp->nm->n + 1, sizeof *sp->ops)))
		return rc < 0 ? rc : IB_ERROR;
	for (size_t i = 0; i < sp->nm->n; i++) {
		sp->ops[i].name = sp->nm->e[i].name;
		sp->ops[i].digests = sp->nm->e[i].digests;
	}
	return 1;
}

/*
 * Write what sp->ops say, and `add` appended (NULL: nothing; its name and
 * digests are those given): every touched entry (changed or dropped) must
 * be, byte for byte, the entry as this library writes it (else 0: the parse
 * path keeps what it holds), untouched ones are copied. Written as the parse
 * path writes (tmp, fsync, rename), still under the lock; the names file for
 * the new bytes after it, keyed by their hash, ranged. 1: written; 0: the
 * parse path; < 0: error.
 */
static int splice_finish(index_splice *sp, ib_store *s, const ib_store__names_entry *add, const char *add_name,
			 const char *add_digests)
{
	const ib_store__names *nm = sp->nm;
	const char *cur = sp->cur;
	ib_buf out = IB_BUF_INIT;
	ib_store__names_entry *ne = ib_calloc(nm->n + 1, sizeof *ne);
	ib_digest newkey;
	size_t kept = 0;
	int rc = ne ? 0 : IB_ERROR;
	for (size_t i = 0; rc == 0 && i < nm->n; i++) {
		const ib_store__names_entry *x = &nm->e[i];
		if (!sp->ops[i].touched)
			continue;
		ib_buf_clear(&out);
		if ((rc = entry_bytes(&out, x->top_type, &x->top, x->dsize, x->name, x->digests)) == 0 &&
		    (out.size != x->len || memcmp(out.ptr, cur + x->off, out.size)))
			rc = 1;
	}
	ib_buf_clear(&out);
	if (rc == 0 && (rc = ib_buf_grow(&out, sp->size + 512)) == 0)
		rc = ib_buf_put(&out, cur, nm->open + 1);
	for (size_t i = 0; rc == 0 && i <= nm->n; i++) {
		const ib_store__names_entry *x = i < nm->n ? &nm->e[i] : add;
		if (!x || (i < nm->n && sp->ops[i].drop))
			continue;
		ib_store__names_entry *y = &ne[kept];
		*y = *x;
		if (kept && (rc = ib_buf_putc(&out, ',')) < 0)
			break;
		y->off = out.size;
		if (i == nm->n) {
			y->name = add_name;
			y->digests = add_digests;
			rc = entry_bytes(&out, y->top_type, &y->top, y->dsize, y->name, y->digests);
		} else if (sp->ops[i].touched) {
			y->name = sp->ops[i].name;
			y->digests = sp->ops[i].digests;
			rc = entry_bytes(&out, y->top_type, &y->top, y->dsize, y->name, y->digests);
		} else {
			rc = ib_buf_put(&out, cur + x->off, x->len);
		}
		y->len = out.size - y->off;
		kept++;
	}
	uint64_t span[2] = { nm->open, out.size };
	if (rc == 0 && (rc = ib_buf_put(&out, cur + nm->close, sp->size - nm->close)) == 0) {
		ib_store__hook("index-spliced");
		if ((rc = ib_store__index_write_bytes(s, &out, &newkey)) == 0)
			rc = 2;
	}
	sp->out = out; /* its pages are the names file's next */
	/* the names file of what was written, outside the lock (keyed: never believed once replaced) */
	ib_lock_release(&sp->lk);
	if (rc == 2 && ib_store__names_save_buf(s, &newkey, ne, kept, span, &sp->out) < 0)
		ib_error_clear();
	free(ne);
	return rc < 0 ? rc : rc == 2;
}

/*
 * ib_store__index_set_digest (no repository digest) made on the names of
 * `sp` and written (splice_finish): `add` is the entry naming the manifest
 * (its digest, size, media type and what it resolves to), `target` the name
 * (NULL: an untagged entry, added when the manifest has none). 1: done (or
 * nothing to do); 0: the parse path; < 0: error.
 */
static int set_on_names(index_splice *sp, ib_store *s, const char *target, const ib_store__names_entry *add)
{
	const ib_store__names *nm = sp->nm;
	splice_op *ops = sp->ops;
	const ib_digest d = add->top;
	ib_buf carried = IB_BUF_INIT;
	char *newds = NULL;
	int rc = 0;
	if (!target) {
		for (size_t i = 0; i < nm->n; i++)
			if (ib_digest_equal(&nm->e[i].top, &d))
				return 1;
		return splice_finish(sp, s, add, NULL, NULL);
	}
	if (names_already_set(nm, target, add->top_type, &d, add->dsize, NULL))
		return 1;
	/* drop the name from where it was */
	for (size_t i = 0; i < nm->n; i++) {
		if (!ops[i].name || strcmp(ops[i].name, target))
			continue;
		const ib_digest *old = &nm->e[i].top;
		size_t count = 0, heir = (size_t)-1;
		for (size_t k = 0; k < nm->n; k++)
			if (ib_digest_equal(&nm->e[k].top, old)) {
				count++;
				if (k != i && heir == (size_t)-1)
					heir = k;
			}
		ops[i].touched = 1;
		if (count == 1 && !ib_digest_equal(old, &d)) {
			ops[i].name = NULL; /* that image stays, untagged, with its repository digests */
		} else {
			const char *ds = ops[i].digests;
			if (ds && !ib_digest_equal(old, &d) && heir != (size_t)-1) {
				ops[heir].owned = words_merge(ops[heir].digests, ds, &rc);
				ops[heir].digests = ops[heir].owned;
				ops[heir].touched = 1;
			} else if (ds && ((carried.size && ib_buf_puts(&carried, " ") < 0) || ib_buf_puts(&carried, ds) < 0)) {
				rc = IB_ERROR;
			}
			ops[i].drop = 1;
		}
		break;
	}
	/* an untagged entry of this manifest becomes the named one */
	for (size_t i = 0; rc == 0 && i < nm->n; i++) {
		if (ops[i].drop || ops[i].name || !ib_digest_equal(&nm->e[i].top, &d))
			continue;
		const char *ds = ops[i].digests;
		if (ds && ((carried.size && ib_buf_puts(&carried, " ") < 0) || ib_buf_puts(&carried, ds) < 0))
			rc = IB_ERROR;
		ops[i].drop = ops[i].touched = 1;
		break;
	}
	if (rc == 0)
		newds = words_merge(NULL, carried.size ? carried.ptr : NULL, &rc);
	if (rc == 0)
		rc = splice_finish(sp, s, add, target, newds);
	free(newds);
	ib_buf_dispose(&carried);
	return rc;
}

/*
 * ib_store_tag on index.json's bytes (splice_begin, set_on_names): the
 * source found in the names file read under the lock. 1: done (or nothing
 * to do); 0: take the parse path; < 0: an error (the source is not there).
 */
static int tag_splice(ib_store *s, const char *source, const char *target, ib_store__names *pre,
		      entry_info **pre_infos)
{
	index_splice sp;
	size_t pos = 0;
	int rc = splice_begin(&sp, s, pre, pre_infos);
	if (rc > 0 && (rc = find_entry(&pos, sp.infos, sp.nm->n, source)) == 0) {
		ib_store__names_entry add = sp.nm->e[pos];
		if (!add.top_type)
			add.top_type = IB_MEDIA_TYPE_OCI_MANIFEST;
		rc = set_on_names(&sp, s, target, &add);
	}
	splice_end(&sp, s);
	if (rc < 0)
		return rc;
	ib_error_clear();
	return rc;
}

/*
 * A commit's naming (set_change) on index.json's bytes: the new entry
 * resolves to the manifest itself and the config `id` (or, when the index
 * has the manifest already, to what that entry says).
 */
static int commit_splice(ib_store *s, const char *name, const char *mt, const ib_digest *d, uint64_t size,
			 const ib_digest *id)
{
	index_splice sp;
	int rc = splice_begin(&sp, s, NULL, NULL);
	if (rc > 0) {
		ib_store__names_entry add;
		memset(&add, 0, sizeof add);
		const ib_store__names_entry *have = names_entry_of(sp.nm, d);
		if (have)
			add = *have;
		add.top = *d;
		add.dsize = size;
		add.top_type = mt;
		add.name = add.digests = NULL;
		if (!have) {
			add.resolved = 1;
			add.manifest = *d;
			add.id = *id;
		}
		rc = set_on_names(&sp, s, name, &add);
	}
	splice_end(&sp, s);
	if (rc < 0)
		return rc;
	ib_error_clear();
	return rc;
}

int ib_store_tag(ib_store *s, const char *source, const char *target)
{
	ib_reference *ref;
	int rc = ib_reference_parse(&ref, target);
	if (rc < 0)
		return rc;
	if (ib_reference_digest(ref)) {
		ib_reference_free(ref);
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "refusing to create a tag with a digest reference: %s",
				     target);
	}
	tag_args a = { source, ib_reference_name(ref), NULL, NULL };
	/* nothing to do; else spliced; else parsed, changed and written */
	ib_store__names *nm = NULL;
	entry_info *infos = NULL;
	if (!tag_unchanged(s, source, a.target, &nm, &infos) && (rc = tag_splice(s, source, a.target, nm, &infos)) == 0)
		rc = ib_store__index_update(s, tag_change, &a);
	rc = rc < 0 ? rc : 0;
	free(infos);
	ib_store__names_free(nm);
	ib_reference_free(ref);
	return rc;
}

static int tag_manifest_change(ib_store *s, json_t *index, void *payload)
{
	tag_args *a = payload;
	return ib_store__tag_manifest_digest_locked(s, index, a->target, a->manifest, a->repo_digest);
}

int ib_store__tag_manifest_locked(ib_store *s, json_t *index, const char *name, const ib_digest *d)
{
	return ib_store__tag_manifest_digest_locked(s, index, name, d, NULL);
}

/*
 * What naming manifest `d` needs, checked against `index` (read only): its
 * media type (*mtc, malloc'ed) and size, and that it makes a whole image here.
 */
static int tag_manifest_check(char **mtc_out, uint64_t *size_out, ib_store *s, json_t *index, const ib_digest *d,
			      const entry_info *known, size_t nknown)
{
	json_t *m;
	int rc = ib_store__blob_json(&m, s, d, "manifest");
	if (rc < 0)
		return rc;
	const char *mt = ib_json_str(m, "mediaType");
	if (!mt)
		mt = json_object_get(m, "manifests") ? IB_MEDIA_TYPE_OCI_INDEX : IB_MEDIA_TYPE_OCI_MANIFEST;
	char *mtc = ib_strdup(mt);
	json_decref(m);
	if (!mtc)
		return IB_ERROR;
	ib_image *img = NULL;
	/* it must make a whole image here: manifest, config, every layer */
	if ((rc = image_load(&img, s, index, d, mtc, known, nknown)) == 0) {
		for (size_t i = 0; i < img->nlayers && rc == 0; i++) {
			uint64_t size;
			if ((rc = ib_store_blob_size(&size, s, &img->layers[i].digest)) < 0)
				ib_error_prefix("manifest names a missing layer");
			else if (size != img->layers[i].size) {
				char ls[IB_DIGEST_STRLEN];
				ib_digest_fmt(ls, &img->layers[i].digest);
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "layer %s has %llu bytes, its descriptor says %llu",
						   ls, (unsigned long long)size, (unsigned long long)img->layers[i].size);
			}
		}
	}
	ib_image_free(img);
	if (rc == 0)
		rc = ib_store_blob_size(size_out, s, d);
	if (rc < 0)
		free(mtc);
	else
		*mtc_out = mtc;
	return rc;
}

int ib_store__tag_manifest_digest_locked(ib_store *s, json_t *index, const char *name, const ib_digest *d,
					 const char *repo_digest)
{
	char *mtc = NULL;
	uint64_t size = 0;
	int rc = tag_manifest_check(&mtc, &size, s, index, d, NULL, 0);
	if (rc == 0)
		rc = ib_store__index_set_digest(s, index, name, mtc, d, size, repo_digest);
	free(mtc);
	return rc;
}

/*
 * A rebuild's tag: the handle's shared index already names the (whole)
 * manifest so, and the repository digest is there: naming it again would
 * change nothing (ib_store__index_set_digest's own check), so 1 and nothing
 * is copied, locked or written. Any doubt: 0, the full path.
 */
static int tag_manifest_unchanged(ib_store *s, const char *name, const ib_digest *d, const char *repo_digest)
{
	entry_info *infos = NULL;
	size_t n = 0;
	ib_store__names *nm = NULL;
	char *mtc = NULL;
	uint64_t size = 0;
	int same = 0;
	if (resolve_fast(&infos, &n, &nm, s) == 1) {
		if (tag_manifest_check(&mtc, &size, s, NULL, d, infos, n) == 0) {
			const ib_store__names_entry *have = name ? NULL : names_entry_of(nm, d);
			same = name ? names_already_set(nm, name, mtc, d, size, repo_digest)
				    : have && (!repo_digest || words_have(have->digests, repo_digest, strlen(repo_digest)));
		}
		ib_error_clear();
		free(mtc);
		free(infos);
		ib_store__names_free(nm);
		return same;
	}
	ib_error_clear();
	json_t *index = NULL;
	if (ib_store__index_read_shared(&index, s) < 0) {
		ib_error_clear();
		return 0;
	}
	if (tag_manifest_check(&mtc, &size, s, index, d, NULL, 0) == 0) {
		json_t *list = json_object_get(index, "manifests");
		json_t *have = name ? NULL : other_entry_of(list, d, NULL);
		same = name ? index_already_set(list, name, mtc, d, size, repo_digest)
			    : have && (!repo_digest || words_have(entry_digests(have), repo_digest, strlen(repo_digest)));
	}
	ib_error_clear();
	free(mtc);
	json_decref(index);
	return same;
}

int ib_store_tag_manifest(ib_store *s, const char *name, const ib_digest *manifest)
{
	return ib_store__tag_manifest_digest(s, name, manifest, NULL);
}

/* `out`: "repository@sha256:<hex>" of the reference `str`, which must have a digest. */
static int repo_digest_norm(ib_buf *out, const char *str)
{
	ib_reference *ref;
	int rc = ib_reference_parse(&ref, str);
	if (rc < 0)
		return rc;
	const ib_digest *d = ib_reference_digest(ref);
	if (!d) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s` is not a repository digest (REPOSITORY@sha256:...)", str);
	} else {
		char ds[IB_DIGEST_STRLEN];
		ib_digest_fmt(ds, d);
		ib_buf_clear(out);
		if (ib_buf_puts(out, ib_reference_repository(ref)) < 0 || ib_buf_puts(out, "@") < 0 || ib_buf_puts(out, ds) < 0)
			rc = IB_ERROR;
	}
	ib_reference_free(ref);
	return rc;
}

int ib_store__tag_manifest_digest(ib_store *s, const char *name, const ib_digest *manifest, const char *repo_digest)
{
	ib_buf n = IB_BUF_INIT, rd = IB_BUF_INIT;
	int rc = name ? ib_reference_normalize(&n, name) : 0;
	if (rc == 0 && repo_digest)
		rc = repo_digest_norm(&rd, repo_digest);
	if (rc == 0) {
		tag_args a = { NULL, name ? n.ptr : NULL, manifest, repo_digest ? rd.ptr : NULL };
		if (!tag_manifest_unchanged(s, a.target, manifest, a.repo_digest))
			rc = index_update_idem(s, tag_manifest_change, &a);
	}
	ib_buf_dispose(&n);
	ib_buf_dispose(&rd);
	return rc;
}

static int digest_add_change(ib_store *s, json_t *index, void *payload)
{
	tag_args *a = payload;
	entry_info *infos = NULL;
	size_t n = 0, pos = 0;
	int rc = lookup_in(NULL, s, index, NULL, a->source, &infos, &n, &pos);
	if (rc == 0)
		rc = digests_merge(infos[pos].entry, a->repo_digest);
	free(infos);
	return rc;
}

/* digest_add_change on index.json's bytes (splice_begin, splice_finish): 1 done (or already there), 0 the parse path, < 0 error. */
static int digest_add_splice(ib_store *s, const char *query, const char *repo_digest)
{
	index_splice sp;
	size_t pos = 0;
	int rc = splice_begin(&sp, s, NULL, NULL);
	if (rc > 0 && (rc = find_entry(&pos, sp.infos, sp.nm->n, query)) == 0) {
		splice_op *op = &sp.ops[pos];
		if (op->digests && words_have(op->digests, repo_digest, strlen(repo_digest))) {
			rc = 1; /* there already: nothing changes */
		} else {
			op->owned = words_merge(op->digests, repo_digest, &rc);
			op->digests = op->owned;
			op->touched = 1;
			if (rc == 0)
				rc = splice_finish(&sp, s, NULL, NULL, NULL);
		}
	}
	splice_end(&sp, s);
	if (rc < 0)
		return rc;
	ib_error_clear();
	return rc;
}

int ib_store_repo_digest_add(ib_store *s, const char *name_or_id, const char *repo_digest)
{
	if (!name_or_id || !repo_digest)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_store_repo_digest_add: NULL argument");
	ib_buf rd = IB_BUF_INIT;
	int rc = repo_digest_norm(&rd, repo_digest);
	if (rc == 0) {
		tag_args a = { name_or_id, NULL, NULL, rd.ptr };
		if ((rc = digest_add_splice(s, name_or_id, rd.ptr)) == 0)
			rc = ib_store__index_update(s, digest_add_change, &a);
		rc = rc < 0 ? rc : 0;
	}
	ib_buf_dispose(&rd);
	return rc;
}

/* ---- untag and remove ---- */


typedef struct {
	const char *query;
	unsigned int flags;
	ib_buf *report;
	int by_name_only; /* ib_store_untag */
	uint64_t removed;
} rm_args;

static void report(ib_buf *r, const char *fmt, const char *arg)
{
	if (r) {
		ib_buf_printf(r, fmt, arg);
		ib_buf_putc(r, '\n');
	}
}

static const char *familiar_of(const char *name, ib_reference **keep)
{
	*keep = NULL;
	if (ib_reference_parse(keep, name) < 0) {
		ib_error_clear();
		return name;
	}
	return ib_reference_familiar(*keep);
}

static int in_use(ib_store *s, const ib_digest *id, const char *what)
{
	char *c = NULL;
	int n = ib_store__containers_using(s, id, &c);
	if (n <= 0) {
		free(c);
		return n;
	}
	char ids[IB_DIGEST_STRLEN];
	ib_digest_fmt(ids, id);
	int rc = ib_error_setc(IB_EEXISTS, IB_LAYER_STORE,
			       "conflict: unable to remove %s (must force) - container %.12s is using its referenced image %s",
			       what, c, ids);
	free(c);
	return rc;
}

/*
 * What removing `a->query` (found at `pos` of the entries `infos`) does:
 * drop[i] for every entry that goes; *heir, when the image stays, the entry
 * that takes the repository digests of the one that goes (*from), else
 * (size_t)-1; the report (docker's "Untagged:" / "Deleted:" lines). Shared
 * by the parse path (rm_change) and the splice (rm_splice).
 */
static int rm_plan(rm_args *a, ib_store *s, const entry_info *infos, size_t n, size_t pos, unsigned char *drop,
		   size_t *heir, size_t *from)
{
	if (a->report)
		ib_buf_clear(a->report); /* the report replaces, also when the change is tried again */
	a->removed = 0;
	*heir = *from = (size_t)-1;
	ib_digest id = infos[pos].id;
	ib_buf norm = IB_BUF_INIT;
	int rc = 0, by_name = ib_reference_normalize(&norm, a->query) == 0 && infos[pos].name &&
			      !strcmp(infos[pos].name, norm.ptr);
	ib_error_clear();
	ib_buf_dispose(&norm);
	size_t names = 0;
	for (size_t i = 0; i < n; i++)
		names += infos[i].ok && infos[i].name && ib_digest_equal(&infos[i].id, &id);
	char ids[IB_DIGEST_STRLEN];
	ib_digest_fmt(ids, &id);
	if (a->by_name_only && !by_name)
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "No such image name: %s", a->query);
	int delete_all = !by_name || names <= 1;
	if (!by_name && names > 1 && !(a->flags & IB_STORE_REMOVE_FORCE))
		return ib_error_setc(IB_EEXISTS, IB_LAYER_STORE,
				     "conflict: unable to delete %.19s (must be forced) - image is referenced in multiple repositories",
				     ids);
	if (delete_all && !(a->flags & IB_STORE_REMOVE_FORCE) && (rc = in_use(s, &id, a->query)) < 0)
		return rc;
	/* from the end, as the entries are removed */
	for (size_t i = n; i-- > 0;) {
		int match = delete_all ? (infos[i].ok && ib_digest_equal(&infos[i].id, &id)) : i == pos;
		if (!match)
			continue;
		if (infos[i].name) {
			ib_reference *ref;
			report(a->report, "Untagged: %s", familiar_of(infos[i].name, &ref));
			ib_reference_free(ref);
		}
		const char *ds = infos[i].digests;
		for (const char *p = delete_all ? ds : NULL; p && *p;) {
			/* docker rmi: "Untagged: busybox@sha256:..." for each repository digest */
			size_t len = strcspn(p, " ");
			char *w = ib_strndup(p, len);
			ib_reference *ref = NULL;
			if (w)
				report(a->report, "Untagged: %s", familiar_of(w, &ref));
			ib_reference_free(ref);
			free(w);
			p += len;
			p += *p == ' ';
		}
		/* the image stays: an entry of it that stays keeps its repository digests */
		for (size_t k = 0; !delete_all && ds && k < n; k++)
			if (k != i && infos[k].ok && ib_digest_equal(&infos[k].id, &id)) {
				*heir = k;
				*from = i;
				break;
			}
		drop[i] = 1;
	}
	if (delete_all) {
		report(a->report, "Deleted: %s", ids);
		a->removed++;
	}
	return 0;
}

static int rm_change(ib_store *s, json_t *index, void *payload)
{
	rm_args *a = payload;
	if (a->report)
		ib_buf_clear(a->report);
	entry_info *infos = NULL;
	size_t n = 0, pos = 0, heir, from;
	int rc = lookup_in(NULL, s, index, NULL, a->query, &infos, &n, &pos);
	if (rc < 0)
		return rc;
	unsigned char *drop = ib_calloc(n ? n : 1, 1);
	if (!drop)
		rc = IB_ERROR;
	if (rc == 0 && (rc = rm_plan(a, s, infos, n, pos, drop, &heir, &from)) == 0 && heir != (size_t)-1)
		rc = digests_merge(infos[heir].entry, entry_digests(infos[from].entry));
	json_t *list = json_object_get(index, "manifests");
	for (size_t i = n; rc == 0 && i-- > 0;)
		if (drop[i])
			json_array_remove(list, i);
	free(drop);
	free(infos);
	return rc;
}

/* rm_change on index.json's bytes (splice_begin, splice_finish): 1 done, 0 the parse path, < 0 error. */
static int rm_splice(ib_store *s, rm_args *a)
{
	index_splice sp;
	size_t pos = 0, heir, from;
	unsigned char *drop = NULL;
	int rc = splice_begin(&sp, s, NULL, NULL);
	if (rc > 0 && (rc = find_entry(&pos, sp.infos, sp.nm->n, a->query)) == 0 &&
	    (rc = (drop = ib_calloc(sp.nm->n + 1, 1)) ? 0 : IB_ERROR) == 0 &&
	    (rc = rm_plan(a, s, sp.infos, sp.nm->n, pos, drop, &heir, &from)) == 0) {
		for (size_t i = 0; i < sp.nm->n; i++)
			sp.ops[i].drop = sp.ops[i].touched = drop[i];
		if (heir != (size_t)-1) {
			sp.ops[heir].owned = words_merge(sp.ops[heir].digests, sp.ops[from].digests, &rc);
			sp.ops[heir].digests = sp.ops[heir].owned;
			sp.ops[heir].touched = 1;
		}
		if (rc == 0)
			rc = splice_finish(&sp, s, NULL, NULL, NULL);
	}
	splice_end(&sp, s);
	free(drop);
	if (rc < 0)
		return rc;
	ib_error_clear();
	return rc;
}

int ib_store_image_remove(ib_store *s, const char *q, unsigned int flags, ib_buf *rep)
{
	rm_args a = { q, flags, rep, 0, 0 };
	if (rep)
		ib_buf_clear(rep);
	int rc = rm_splice(s, &a);
	return rc != 0 ? (rc < 0 ? rc : 0) : ib_store__index_update(s, rm_change, &a);
}

int ib_store_untag(ib_store *s, const char *name)
{
	rm_args a = { name, IB_STORE_REMOVE_FORCE, NULL, 1, 0 };
	int rc = rm_splice(s, &a);
	return rc != 0 ? (rc < 0 ? rc : 0) : ib_store__index_update(s, rm_change, &a);
}

/* Drop every untagged entry (docker image prune); returns how many images went. */
static int prune_change(ib_store *s, json_t *index, void *payload)
{
	uint64_t *count = payload;
	json_t *list = json_object_get(index, "manifests");
	entry_info *infos;
	size_t n;
	int rc = resolve_all(&infos, &n, s, index, NULL);
	if (rc < 0)
		return rc;
	for (size_t i = n; i-- > 0;) {
		if (infos[i].name || !infos[i].ok)
			continue;
		if (ib_store__containers_using(s, &infos[i].id, NULL) > 0)
			continue;
		json_array_remove(list, i);
		(*count)++;
	}
	free(infos);
	return 0;
}

int ib_store__prune_dangling(ib_store *s, uint64_t *count)
{
	return ib_store__index_update(s, prune_change, count);
}

/* ---- listing ---- */

struct ib_image_list {
	ib_image_summary *rows;
	size_t n;
	char **strings;
	size_t nstrings;
};

static const char *keep_str(ib_image_list *l, const char *s)
{
	if (!s)
		return NULL;
	char *c = ib_strdup(s);
	if (c)
		l->strings[l->nstrings++] = c;
	return c;
}

static int cmp_rows(const void *a, const void *b)
{
	const ib_image_summary *x = a, *y = b;
	if (!x->name || !y->name)
		return x->name ? -1 : y->name ? 1 : memcmp(&x->id, &y->id, sizeof x->id);
	return strcmp(x->name, y->name);
}

/*
 * The listing from the names file: 1 and *out when it is valid for
 * index.json as it is now and summarises every image manifest (an index is
 * loaded, as the slow way does); 0 to take the slow way.
 */
static int images_fast(ib_image_list **out, ib_store *s)
{
	entry_info *infos = NULL;
	size_t n = 0;
	ib_store__names *nm = NULL;
	int rc = resolve_fast(&infos, &n, &nm, s);
	if (rc <= 0)
		return rc;
	ib_image_list *l = ib_calloc(1, sizeof *l);
	if (l) {
		l->rows = ib_calloc(n ? n : 1, sizeof *l->rows);
		l->strings = ib_calloc(2 * n + 1, sizeof *l->strings);
	}
	if (!l || !l->rows || !l->strings) {
		rc = IB_ERROR;
		goto out;
	}
	for (size_t i = 0; i < n && rc == 1; i++) {
		const ib_store__names_entry *x = &nm->e[i];
		if (!infos[i].ok)
			continue;
		ib_image_summary *r = &l->rows[l->n];
		if (x->resolved && x->summary) {
			r->name = keep_str(l, infos[i].name);
			r->id = x->id;
			r->manifest = infos[i].top;
			r->created = keep_str(l, x->created);
			r->size = x->size;
			l->n++;
			continue;
		}
		if (x->resolved) {
			rc = 0; /* an image not summarised yet: the slow way summarises it and writes it down */
			break;
		}
		ib_image *img;
		if (image_load(&img, s, NULL, &infos[i].top, infos[i].top_type, infos, n) < 0) {
			ib_error_clear();
			continue;
		}
		r->name = keep_str(l, infos[i].name);
		r->id = img->id;
		r->manifest = infos[i].top;
		r->created = keep_str(l, ib_image_config_get(img->config, IB_CONFIG_CREATED));
		r->size = img->size;
		l->n++;
		ib_image_free(img);
	}
out:
	free(infos);
	ib_store__names_free(nm);
	if (rc == 1) {
		qsort(l->rows, l->n, sizeof *l->rows, cmp_rows);
		*out = l;
	} else {
		ib_image_list_free(l);
	}
	return rc;
}

int ib_store_images(ib_image_list **out, ib_store *s)
{
	int rc = images_fast(out, s);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	json_t *index;
	ib_digest key;
	if ((rc = ib_store__index_read_shared_key(&index, &key, s)) < 0)
		return rc;
	entry_info *infos = NULL;
	size_t n = 0;
	ib_store__memo *memo = NULL;
	ib_image_list *l = ib_calloc(1, sizeof *l);
	if (!l || (rc = ib_store__memo_load(&memo, s)) < 0 || (rc = resolve_all_memo(&infos, &n, s, index, memo)) < 0)
		goto fail;
	l->rows = ib_calloc(n ? n : 1, sizeof *l->rows);
	l->strings = ib_calloc(2 * n + 1, sizeof *l->strings);
	if (!l->rows || !l->strings)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (!infos[i].ok)
			continue;
		/* an image manifest summarised before: its row without opening it */
		const ib_store__memo_entry *me = ib_store__is_index_type(infos[i].top_type)
							 ? NULL : ib_store__memo_get(memo, &infos[i].top);
		if (me && me->summary) {
			ib_image_summary *r = &l->rows[l->n++];
			r->name = keep_str(l, infos[i].name);
			r->id = me->id;
			r->manifest = infos[i].top;
			r->created = keep_str(l, me->created[0] ? me->created : NULL);
			r->size = me->size;
			continue;
		}
		ib_image *img;
		if (image_load(&img, s, index, &infos[i].top, infos[i].top_type, infos, n) < 0) {
			ib_error_clear();
			continue;
		}
		ib_image_summary *r = &l->rows[l->n++];
		r->name = keep_str(l, infos[i].name);
		r->id = img->id;
		r->manifest = infos[i].top;
		const char *created = ib_image_config_get(img->config, IB_CONFIG_CREATED);
		r->created = keep_str(l, created);
		r->size = img->size;
		if (!ib_store__is_index_type(infos[i].top_type) && (!created || (strlen(created) < sizeof me->created && !strpbrk(created, " \t\n")))) {
			ib_store__memo_entry ne;
			memset(&ne, 0, sizeof ne);
			ne.top = infos[i].top;
			ne.manifest = img->manifest;
			ne.id = img->id;
			ne.size = img->size;
			ne.summary = 1;
			if (created)
				memcpy(ne.created, created, strlen(created) + 1);
			if (ib_store__memo_put(memo, &ne) < 0)
				ib_error_clear();
		}
		ib_image_free(img);
	}
	qsort(l->rows, l->n, sizeof *l->rows, cmp_rows);
	if (ib_store__memo_save(memo, s, index) < 0)
		ib_error_clear(); /* a cache: the next listing summarises again */
	names_save(s, &key, infos, n, memo, index);
	ib_store__memo_free(memo);
	free(infos);
	json_decref(index);
	*out = l;
	return 0;
fail:
	ib_store__memo_free(memo);
	free(infos);
	json_decref(index);
	ib_image_list_free(l);
	return rc < 0 ? rc : IB_ERROR;
}

size_t ib_image_list_count(const ib_image_list *l) { return l->n; }
const ib_image_summary *ib_image_list_get(const ib_image_list *l, size_t i) { return i < l->n ? &l->rows[i] : NULL; }

void ib_image_list_free(ib_image_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nstrings; i++)
		free(l->strings[i]);
	free(l->strings);
	free(l->rows);
	free(l);
}

/* ---- inspect ---- */

int ib_image_inspect_json(ib_buf *out, const ib_image *img)
{
	char ids[IB_DIGEST_STRLEN], ms[IB_DIGEST_STRLEN];
	ib_digest_fmt(ids, &img->id);
	ib_digest_fmt(ms, &img->manifest);
	json_t *cfg = ib_image_config__json(img->config);
	json_t *o = json_pack("{s:s,s:[],s:[],s:s?,s:s,s:O?,s:s?,s:s?,s:s?,s:I,s:{s:s,s:[]},s:{s:s,s:s}}",
			      "Id", ids, "RepoTags", "RepoDigests", "Created", ib_json_str(cfg, "created"), "Author",
			      ib_json_str(cfg, "author") ? ib_json_str(cfg, "author") : "", "Config",
			      json_object_get(cfg, "config"), "Architecture", ib_json_str(cfg, "architecture"), "Os",
			      ib_json_str(cfg, "os"), "Variant", ib_json_str(cfg, "variant"), "Size",
			      (json_int_t)img->size, "RootFS", "Type", "layers", "Layers", "Descriptor", "mediaType",
			      img->manifest_type, "digest", ms);
	if (!o)
		return ib_error_oom();
	if (json_is_null(json_object_get(o, "Variant")))
		json_object_del(o, "Variant");
	json_t *tags = json_object_get(o, "RepoTags"), *layers = json_object_get(json_object_get(o, "RootFS"), "Layers");
	for (size_t i = 0; i < img->nnames; i++) {
		ib_reference *ref;
		json_array_append_new(tags, json_string(familiar_of(img->names[i], &ref)));
		ib_reference_free(ref);
	}
	json_t *rds = json_object_get(o, "RepoDigests");
	for (size_t i = 0; i < img->ndigests; i++) {
		ib_reference *ref;
		json_array_append_new(rds, json_string(familiar_of(img->digests[i], &ref)));
		ib_reference_free(ref);
	}
	for (size_t i = 0; i < img->nlayers; i++) {
		char ds[IB_DIGEST_STRLEN];
		ib_digest_fmt(ds, &img->layers[i].diff_id);
		json_array_append_new(layers, json_string(ds));
	}
	ib_buf_clear(out);
	int rc = ib_json_dump(out, o, IB_JSON_PRETTY);
	json_decref(o);
	return rc;
}

const ib_digest *ib_store__image_top(const ib_image *img)
{
	static const ib_digest zero;
	return img && memcmp(&img->top, &zero, sizeof zero) ? &img->top : NULL;
}
