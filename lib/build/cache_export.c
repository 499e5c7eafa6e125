/*
 * The build cache shared through a registry (docs/cache.md): --cache-from
 * and --cache-to (ib_build_options.cache_from / cache_to, version 8).
 *
 * A record is one step: its cache key (a content key: build.c), its
 * parent's key, the image config after it (inline, as its JSON text, so its
 * digest and the image id are the same on every machine) and its layer (the
 * diff_id, and the gzip blob's digest and size in the artifact). Import
 * reads every artifact's records once; a step the local store misses is
 * looked up in them, in order, and taken only once every layer its config
 * names is in the store, each fetched blob checked against its digest and
 * its diff_id (lib/push/cache.c). Export writes the records of the steps
 * the build went through (mode=min: the result's stages; max: all), merged
 * with what the tag already holds, and checks after a pause that its
 * records are still there (the registry has no compare-and-swap).
 */
#include "build/internal.h"
#include "build/cache.h"
#include "util/buf.h"
#include "util/callback.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the registry backend ---- */

typedef struct {
	ib_build__cache_backend parent;
	ib_cache_remote *r;
	int write;
} registry_backend;

static int reg_read(ib_build__cache_backend *self, ib_buf *config, ib_buf *listed)
{
	registry_backend *r = (registry_backend *)self;
	if (r->write)
		return ib_callback_internal(ib_cache_remote_read(config, NULL, listed, r->r));
	/* a cache source may be an image with inline records (cache_inline.c): read as an artifact */
	int image = 0;
	ib_buf cfg = IB_BUF_INIT, layers = IB_BUF_INIT;
	int rc = ib_callback_internal(ib_cache_remote_read_any(&cfg, &layers, &image, r->r));
	if (rc == 0 && !image) {
		if ((rc = ib_buf_set(config, cfg.ptr ? cfg.ptr : "", cfg.size)) == 0)
			rc = ib_buf_set(listed, layers.ptr ? layers.ptr : "", layers.size);
	} else if (rc == 0) {
		ib_buf_clear(config);
		rc = ib_build__cache_inline_artifact(config, listed, &cfg, &layers);
	}
	ib_buf_dispose(&cfg);
	ib_buf_dispose(&layers);
	return rc;
}

static int reg_upload_layer(ib_build__cache_backend *self, ib_digest *blob, uint64_t *size, const char **mt,
			    ib_store *s, const ib_digest *diff_id)
{
	*mt = IB_MEDIA_TYPE_OCI_LAYER_GZIP;
	return ib_callback_internal(ib_cache_remote_upload_layer(blob, size, ((registry_backend *)self)->r, s, diff_id));
}

static int reg_upload_blob(ib_build__cache_backend *self, ib_store *s, const ib_digest *d)
{
	return ib_callback_internal(ib_cache_remote_upload_blob(((registry_backend *)self)->r, s, d));
}

static int reg_write(ib_build__cache_backend *self, const void *config, size_t len, const ib_digest *blobs,
		     const uint64_t *sizes, const char *const *types, size_t n)
{
	return ib_callback_internal(
		ib_cache_remote_write(NULL, ((registry_backend *)self)->r, config, len, blobs, sizes, types, n));
}

static int reg_fetch_layer(ib_build__cache_backend *self, ib_store *s, const ib_digest *blob, uint64_t size,
			   const char *mt, const ib_digest *diff_id)
{
	if (mt && strcmp(mt, IB_MEDIA_TYPE_OCI_LAYER_GZIP))
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "a layer of media type `%s` (only gzip in a registry)",
				     mt);
	return ib_callback_internal(ib_cache_remote_fetch_layer(((registry_backend *)self)->r, s, blob, size, diff_id));
}

static void reg_free(ib_build__cache_backend *self)
{
	ib_cache_remote_free(((registry_backend *)self)->r);
	free(self);
}

static int registry_open(ib_build__cache_backend **out, builder *b, const char *ref, int write)
{
	registry_backend *r = ib_calloc(1, sizeof *r);
	if (!r)
		return IB_ERROR;
	r->parent.read = reg_read;
	r->parent.upload_layer = reg_upload_layer;
	r->parent.upload_blob = reg_upload_blob;
	r->parent.write = reg_write;
	r->parent.fetch_layer = reg_fetch_layer;
	r->parent.free = reg_free;
	r->write = write;
	int rc = ib_cache_remote_open(&r->r, ref, write, b->o->registry, b->o->callbacks);
	if (rc < 0) {
		free(r);
		return rc;
	}
	*out = &r->parent;
	return 0;
}

/* A cache_from/cache_to's backend: a registry ref, or a local directory (`local` set). */
static int backend_open(ib_build__cache_backend **out, builder *b, const char *ref, int local, int write)
{
	*out = NULL;
	return local ? ib_build__cache_local_open(out, ref, write) : registry_open(out, b, ref, write);
}

typedef struct {
	char *ref;           /* a registry ref, or the directory (local) */
	int local;
	int max;             /* mode=max */
	ib_strlist mounts;   /* cache-mounts=: the ids ("all": every one) */
} cache_dest;

typedef struct {
	char *ref;
	int local;
	ib_build__cache_backend *remote;
	json_t *records;     /* key -> record (NULL: not read yet, or refused) */
	json_t *layers;      /* diff_id -> {"digest", "size"} of every record */
	json_t *mounts;      /* sha256 of a cache mount's ident -> its record (cache_mounts.c) */
	json_t *aliases;     /* COPY --from memo key -> step key (a record's "aliases") */
	int loaded, refused;
} cache_source;

typedef struct {
	char key[IB_DIGEST_HEXLEN + 1];
	char parent[IB_DIGEST_HEXLEN + 1];
	size_t stage;
} step_rec;

struct ib_build__cache {
	cache_source *from;
	size_t nfrom;
	cache_dest *to;
	size_t nto;
	step_rec *steps;
	size_t nsteps;
	ib_strlist seen;     /* the build's cache mounts: id, ident, id, ident... */
	int inline_;         /* --cache-to type=inline (cache_inline.c) */
	json_t *aliases;     /* step key -> [memo keys] of this build's COPY --from steps */
};

/* The stage threads of a build (parallel.c) share b->cache: the aliases are kept under this lock. */
static pthread_mutex_t alias_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- options ---- */

/*
 * --cache-to type=inline: BuildKit's inline exporter takes no attribute
 * and always exports mode=min (it ignores the others: we refuse them).
 */
static int parse_inline(char **type, const char *value)
{
	char *copy = ib_strdup(value);
	int rc = copy ? 0 : IB_ERROR;
	for (char *save = NULL, *f = copy ? strtok_r(copy, ",", &save) : NULL; rc == 0 && f;
	     f = strtok_r(NULL, ",", &save)) {
		if (!strcmp(f, "type=inline") || !strcmp(f, "mode=min"))
			continue;
		char *eq = strchr(f, '=');
		if (eq)
			*eq = 0;
		rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
				   "--cache-to %s: `%s%s` is not supported with type=inline (BuildKit's inline cache has "
				   "no options and exports mode=min only; for mode=max or cache-mounts= use type=registry)",
				   value, f, eq ? "=" : "");
	}
	free(copy);
	if (rc == 0 && !(*type = ib_strdup("inline")))
		rc = IB_ERROR;
	return rc;
}

/* One "k=v,k=v" value of --cache-from/--cache-to (buildx's CSV): type and ref (or dest/src). */
static int parse_csv(char **type, char **ref, int *max, ib_strlist *mounts, const char *value, int to)
{
	int in_mounts = 0; /* buildx's CSV quotes "cache-mounts=a,b"; unquoted, the ids after it stay its */
	const char *dirkey = to ? "dest" : "src";
	const char *what = to ? "--cache-to" : "--cache-from";
	*type = *ref = NULL;
	*max = 0;
	/* buildx: a value without '=' is a registry reference */
	if (!strchr(value, '=')) {
		*type = ib_strdup("registry");
		*ref = ib_strdup(value);
		return *type && *ref ? 0 : IB_ERROR;
	}
	/* the type first: its keys are another type's */
	for (const char *t = value; t; t = strchr(t, ',') ? strchr(t, ',') + 1 : NULL) {
		if (strncmp(t, "type=", 5))
			continue;
		size_t tl = strcspn(t + 5, ",");
		if (tl == 6 && !strncmp(t + 5, "inline", 6)) {
			if (!to)
				return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
						     "%s %s: an inline cache is read from its image: --cache-from REF "
						     "(or type=registry,ref=REF)", what, value);
			return parse_inline(type, value);
		}
		if (!(tl == 8 && !strncmp(t + 5, "registry", 8)) && !(tl == 5 && !strncmp(t + 5, "local", 5)))
			return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
					     "%s %s: type=%.*s is not supported (only type=registry, type=local and, "
					     "for --cache-to, type=inline; gha, s3 and azblob are not implemented)", what,
					     value, (int)tl, t + 5);
	}
	char *copy = ib_strdup(value);
	if (!copy)
		return IB_ERROR;
	int rc = 0;
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); rc == 0 && f; f = strtok_r(NULL, ",", &save)) {
		/* buildx's CSV quoting of a field with commas: "cache-mounts=a,b" */
		if (*f == '"')
			f++;
		if (*f && f[strlen(f) - 1] == '"')
			f[strlen(f) - 1] = 0;
		char *eq = strchr(f, '=');
		if (!eq && in_mounts) {
			rc = ib_strlist_add(mounts, f);
			continue;
		}
		in_mounts = 0;
		if (!eq) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "%s %s: `%s` is not KEY=VALUE", what, value, f);
			break;
		}
		*eq = 0;
		const char *k = f, *v = eq + 1;
		if (!strcmp(k, "type")) {
			free(*type);
			*type = ib_strdup(v);
		} else if (!strcmp(k, "ref") || !strcmp(k, dirkey)) {
			/* ref= for a registry, dest=/src= for a directory: checked against the type below */
			if (*ref)
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "%s %s: ref=/%s= given twice", what, value,
						   dirkey);
			free(*ref);
			*ref = ib_strdup(v);
			if (strcmp(k, "ref"))
				*max |= 2; /* a directory key */
		} else if (to && !strcmp(k, "mode")) {
			if (!strcmp(v, "max"))
				*max |= 1;
			else if (strcmp(v, "min"))
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "%s %s: mode=%s: min or max", what, value, v);
		} else if (to && !strcmp(k, "cache-mounts")) {
			if (!*v)
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "%s %s: cache-mounts= needs ids (or all)",
						   what, value);
			else
				rc = ib_strlist_add(mounts, v);
			in_mounts = 1;
		} else {
			rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD, "%s %s: `%s=` is not supported (only "
					   "type=registry with ref=, type=local with %s=%s)", what, value, k, dirkey,
					   to ? ", and mode=min|max, cache-mounts=" : "");
		}
	}
	free(copy);
	if (rc == 0 && !*type)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "%s %s: no type=", what, value);
	int local = rc == 0 && !strcmp(*type, "local");
	if (rc == 0 && (!*ref || !**ref))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "%s %s: type=%s needs %s=", what, value, *type,
				   local ? dirkey : "ref");
	else if (rc == 0 && local != !!(*max & 2))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "%s %s: type=%s takes %s=, not %s=", what, value, *type,
				   local ? dirkey : "ref", local ? "ref" : dirkey);
	if (rc == 0 && !local) {
		ib_reference *r = NULL;
		if ((rc = ib_reference_parse(&r, *ref)) == 0 && ib_reference_digest(r))
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "%s %s: ref=%s: a tag, not a digest", what, value,
					   *ref);
		else if (rc < 0)
			ib_error_prefix("%s %s", what, value);
		ib_reference_free(r);
	}
	if (rc < 0) {
		free(*type);
		free(*ref);
		*type = *ref = NULL;
		if (mounts)
			ib_strlist_clear(mounts);
	}
	return rc;
}

int ib_build__cache_parse(builder *b)
{
	const ib_build_options *o = b->o;
	if (!o->cache_from && !o->cache_to)
		return 0;
	struct ib_build__cache *c = ib_calloc(1, sizeof *c);
	if (!c)
		return IB_ERROR;
	b->cache = c;
	size_t nf = 0, nt = 0;
	for (const char *const *p = o->cache_from; p && *p; p++)
		nf++;
	for (const char *const *p = o->cache_to; p && *p; p++)
		nt++;
	if ((nf && !(c->from = ib_calloc(nf, sizeof *c->from))) || (nt && !(c->to = ib_calloc(nt, sizeof *c->to))))
		return IB_ERROR;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < nf; i++) {
		char *type = NULL;
		int max;
		if ((rc = parse_csv(&type, &c->from[i].ref, &max, NULL, o->cache_from[i], 0)) == 0) {
			c->from[i].local = !strcmp(type, "local");
			c->nfrom++;
		}
		free(type);
	}
	for (size_t i = 0; rc == 0 && i < nt; i++) {
		char *type = NULL;
		cache_dest *d = &c->to[c->nto];
		if ((rc = parse_csv(&type, &d->ref, &d->max, &d->mounts, o->cache_to[i], 1)) == 0 &&
		    !strcmp(type, "inline")) {
			c->inline_ = 1; /* given twice: once, as BuildKit */
		} else if (rc == 0) {
			d->local = !strcmp(type, "local");
			d->max &= 1;
			c->nto++;
		}
		free(type);
	}
	return rc;
}

int ib_build__cache_want_inline(builder *b)
{
	if (!b->cache && !(b->cache = ib_calloc(1, sizeof *b->cache)))
		return IB_ERROR;
	b->cache->inline_ = 1;
	return 0;
}

void ib_build__cache_free(builder *b)
{
	struct ib_build__cache *c = b->cache;
	if (!c)
		return;
	for (size_t i = 0; i < c->nfrom; i++) {
		free(c->from[i].ref);
		if (c->from[i].remote)
			c->from[i].remote->free(c->from[i].remote);
		json_decref(c->from[i].records);
		json_decref(c->from[i].layers);
		json_decref(c->from[i].mounts);
		json_decref(c->from[i].aliases);
	}
	json_decref(c->aliases);
	for (size_t i = 0; i < c->nto; i++) {
		free(c->to[i].ref);
		ib_strlist_clear(&c->to[i].mounts);
	}
	ib_strlist_clear(&c->seen);
	free(c->from);
	free(c->to);
	free(c->steps);
	free(c);
	b->cache = NULL;
}

/* ---- the records ---- */

/* A record's layer: {"diff_id", "digest", "size"} with valid digests. */
static int layer_of(ib_digest *diff_id, ib_digest *digest, uint64_t *size, const json_t *l)
{
	const char *di = ib_json_str(l, "diff_id"), *dg = ib_json_str(l, "digest");
	const json_t *sz = json_object_get(l, "size");
	if (!di || !dg || ib_digest_parse(diff_id, di) < 0 || ib_digest_parse(digest, dg) < 0 || !json_is_integer(sz) ||
	    json_integer_value(sz) < 0) {
		ib_error_clear();
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "a malformed layer in a record");
	}
	*size = (uint64_t)json_integer_value(sz);
	return 0;
}

/*
 * The records of an artifact's config, checked as a whole: every key 64
 * hex, every record a config text and, when it has one, a layer that the
 * manifest lists (`listed`: "digest size" lines). What fails makes the
 * whole artifact refused.
 */
/* 1 when the blob `digest` of `size` bytes is one of the manifest's layers (`listed`: "digest size" lines) */
static int is_listed(const ib_buf *listed, const char *digest, uint64_t size)
{
	char line[IB_DIGEST_STRLEN + 32];
	snprintf(line, sizeof line, "%s %llu\n", digest, (unsigned long long)size);
	return listed->ptr && strstr(listed->ptr, line);
}

/*
 * The cache mounts of an artifact (`mounts`, absent in one without), checked
 * as a whole: key = sha256 of the ident, an id, the root's uid, gid, mode,
 * a layer the manifest lists, of at most IB_BUILD__CACHE_MOUNT_MAX bytes.
 */
static int check_mounts(const json_t *mounts, const ib_buf *listed)
{
	if (!mounts)
		return 0;
	if (!json_is_object(mounts))
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "cache records: a malformed `mounts`");
	const char *key;
	json_t *m;
	json_object_foreach((json_t *)mounts, key, m) {
		const char *id = ib_json_str(m, "id"), *ident = ib_json_str(m, "ident");
		char hex[IB_DIGEST_HEXLEN + 1] = "";
		if (ident) {
			ib_digest d;
			ib_digest_of(&d, ident, strlen(ident));
			ib_digest_hex(hex, &d);
		}
		const json_t *u = json_object_get(m, "uid"), *g = json_object_get(m, "gid"), *md = json_object_get(m, "mode");
		ib_digest di, dg;
		uint64_t size = 0;
		if (!id || !ident || strcmp(hex, key) || !json_is_integer(u) || !json_is_integer(g) || !json_is_integer(md) ||
		    json_integer_value(u) < 0 || json_integer_value(u) > 0xffffffffLL || json_integer_value(g) < 0 ||
		    json_integer_value(g) > 0xffffffffLL || json_integer_value(md) < 0 || json_integer_value(md) > 07777 ||
		    layer_of(&di, &dg, &size, json_object_get(m, "layer")) < 0) {
			ib_error_clear();
			return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "a malformed cache mount record `%.80s`", key);
		}
		if (size > IB_BUILD__CACHE_MOUNT_MAX)
			return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "cache mount `%s`: a layer of %llu bytes (at most %llu)",
					     id, (unsigned long long)size, (unsigned long long)IB_BUILD__CACHE_MOUNT_MAX);
		if (!is_listed(listed, ib_json_str(json_object_get(m, "layer"), "digest"), size))
			return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					     "cache mount `%s`: its layer is not one of the artifact's layers", id);
	}
	return 0;
}

static int parse_records(json_t **records, json_t **layers, json_t **images, json_t **mounts, json_t **aliases,
			 const ib_buf *config, const ib_buf *listed)
{
	json_t *j = NULL;
	int rc = ib_json_loadb(&j, config->ptr ? config->ptr : "", config->size, "cache records");
	if (rc < 0)
		return rc;
	json_t *recs = json_object_get(j, "records");
	json_t *lm = json_object(), *am = json_object();
	if (!lm || !am)
		rc = ib_error_oom();
	else if (json_integer_value(json_object_get(j, "imagebuild.cache")) != 1 || !json_is_object(recs))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "cache records of an unknown version");
	const char *key;
	json_t *r;
	json_object_foreach(rc == 0 ? recs : NULL, key, r) {
		size_t kl = strlen(key);
		if (kl != IB_DIGEST_HEXLEN || strspn(key, "0123456789abcdef") != kl || !json_is_object(r) ||
		    !json_is_string(json_object_get(r, "config"))) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "a malformed cache record `%.80s`", key);
			break;
		}
		/* the memo keys of a COPY --from step (optional; an alias names its own record only) */
		json_t *al = json_object_get(r, "aliases");
		size_t ai;
		json_t *a;
		if (al && !json_is_array(al)) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "a malformed cache record `%.80s` (aliases)", key);
			break;
		}
		json_array_foreach(al, ai, a) {
			const char *m = json_string_value(a);
			if (!m || strlen(m) != IB_DIGEST_HEXLEN || strspn(m, "0123456789abcdef") != IB_DIGEST_HEXLEN) {
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "a malformed cache record `%.80s` (aliases)",
						   key);
				break;
			}
			if (!json_object_get(am, m) && json_object_set_new(am, m, json_string(key)) < 0)
				rc = ib_error_oom();
		}
		if (rc < 0)
			break;
		json_t *l = json_object_get(r, "layer");
		if (!l)
			continue;
		ib_digest di, dg;
		uint64_t size;
		if ((rc = layer_of(&di, &dg, &size, l)) < 0)
			break;
		if (!is_listed(listed, ib_json_str(l, "digest"), size)) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					   "record %.12s: its layer %s is not one of the artifact's layers", key,
					   ib_json_str(l, "digest"));
			break;
		}
		json_t *prev = json_object_get(lm, ib_json_str(l, "diff_id"));
		if (prev && strcmp(ib_json_str(prev, "digest"), ib_json_str(l, "digest")))
			continue; /* another compression of the same layer: the first is enough */
		if (json_object_set(lm, ib_json_str(l, "diff_id"), l) < 0)
			rc = ib_error_oom();
	}
	json_t *imgs = json_object_get(j, "blobs");
	if (rc == 0 && imgs && !json_is_object(imgs))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "cache records: a malformed `images`");
	json_t *mts = json_object_get(j, "mounts");
	if (rc == 0)
		rc = check_mounts(mts, listed);
	if (rc == 0) {
		*records = json_incref(recs);
		*layers = lm;
		if (images)
			*images = imgs ? json_incref(imgs) : json_object();
		if (mounts)
			*mounts = mts ? json_incref(mts) : json_object();
		if (aliases)
			*aliases = json_incref(am);
	} else {
		json_decref(lm);
	}
	json_decref(am);
	json_decref(j);
	return rc;
}

static int report(builder *b, const char *id, const char *text, uint64_t cur, uint64_t total)
{
	return ib_build__report(b, IB_PROGRESS_BYTES, id, text, cur, total, 0);
}

/* Read a source's artifact once; a missing or unreadable one is a warning (as BuildKit), then unused. */
static int load_source(builder *b, cache_source *src)
{
	if (src->loaded)
		return 0;
	src->loaded = 1;
	ib_buf cfg = IB_BUF_INIT, listed = IB_BUF_INIT;
	char *id = ib_sprintf("cache-import:%s", src->ref);
	int rc = id ? report(b, id, "Importing cache manifest", 0, 0) : IB_ERROR;
	if (rc < 0) {
		free(id);
		return rc;
	}
	rc = backend_open(&src->remote, b, src->ref, src->local, 0);
	if (rc == 0)
		rc = src->remote->read(src->remote, &cfg, &listed);
	if (rc == 0)
		rc = parse_records(&src->records, &src->layers, NULL, &src->mounts, &src->aliases, &cfg, &listed);
	if (rc == IB_EUSER) {
		free(id);
		ib_buf_dispose(&cfg);
		ib_buf_dispose(&listed);
		return rc;
	}
	if (rc < 0) {
		ib_build__log_line(b, IB_LOG_WARNING, "cache import %s: %s%s", src->ref, ib_error_last()->message,
				   rc == IB_ENOTFOUND ? "" : " (not used)");
		ib_error_clear();
		src->refused = 1;
		rc = 0;
	} else {
		size_t n = json_object_size(src->records);
		ib_build__log_line(b, IB_LOG_INFO, "cache import %s: %zu records", src->ref, n);
		rc = report(b, id, "Imported cache manifest", n, n);
	}
	free(id);
	ib_buf_dispose(&cfg);
	ib_buf_dispose(&listed);
	return rc;
}

/*
 * Record layer `diff_id` of a registry source as remote (lib/store/README.md,
 * "Remote layers"): 1 when recorded, 0 when it must be fetched now (a
 * directory source, a record without the layer's size: written before
 * remote layers, an unknown media type).
 */
static int remote_layer(builder *b, const cache_source *src, const json_t *l, const ib_digest *diff_id,
			const ib_digest *blob, uint64_t blob_size)
{
	const json_t *ds = json_object_get(l, "diff_size");
	const char *mt = ib_json_str(l, "mediaType");
	if (src->local || !json_is_integer(ds) || json_integer_value(ds) < 0)
		return 0;
	ib_store_remote_layer r;
	memset(&r, 0, sizeof r);
	r.diff_id = *diff_id;
	r.size = (uint64_t)json_integer_value(ds);
	r.blob = *blob;
	r.blob_size = blob_size;
	ib_reference *ref = NULL;
	int rc = ib_reference_parse(&ref, src->ref);
	if (rc == 0 && snprintf(r.media_type, sizeof r.media_type, "%s", mt ? mt : IB_MEDIA_TYPE_OCI_LAYER_GZIP) <
			       (int)sizeof r.media_type &&
	    snprintf(r.registry, sizeof r.registry, "%s", ib_reference_domain(ref)) < (int)sizeof r.registry &&
	    snprintf(r.repository, sizeof r.repository, "%s", ib_reference_path(ref)) < (int)sizeof r.repository)
		rc = ib_store_remote_layer_put(b->store, &r);
	else if (rc == 0)
		rc = IB_EINVALID;
	ib_reference_free(ref);
	if (rc < 0)
		ib_error_clear(); /* then fetched now, as before */
	return rc == 0;
}

/*
 * Take record `r` of `src` for `key`: its config into the store, every
 * layer it names that the store lacks fetched and verified, then a local
 * cache entry. IB_ENOTFOUND when a layer is neither stored nor in the
 * artifact; IB_EINVALID when something does not verify.
 */
static int take_record(builder *b, ib_digest *config, cache_source *src, const char *key, const json_t *r)
{
	const char *text = ib_json_str(r, "config");
	ib_image_config *c = NULL;
	int rc = ib_image_config_from_json(&c, text, strlen(text));
	size_t n = rc == 0 ? ib_image_config_diff_id_count(c) : 0;
	const json_t *own = json_object_get(r, "layer");
	ib_digest own_diff, own_blob;
	uint64_t own_size;
	if (rc == 0 && own && (rc = layer_of(&own_diff, &own_blob, &own_size, own)) == 0) {
		ib_digest last;
		if (!n || ib_image_config_diff_id(&last, c, n - 1) < 0 || !ib_digest_equal(&last, &own_diff)) {
			ib_error_clear();
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					   "record %.12s: its layer is not the last of its config", key);
		}
	}
	/* every layer first: nothing is recorded unless all verify */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		ib_digest di;
		if ((rc = ib_image_config_diff_id(&di, c, i)) < 0)
			break;
		if (ib_store_blob_has(b->store, &di) == 1)
			continue;
		char ds[IB_DIGEST_STRLEN];
		ib_digest_fmt(ds, &di);
		const json_t *l = json_object_get(src->layers, ds);
		ib_digest dd, dg;
		uint64_t size;
		if (!l) {
			rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD, "record %.12s: layer %s is neither in the store "
					   "nor in the cache", key, ds);
			break;
		}
		if ((rc = layer_of(&dd, &dg, &size, l)) == 0 && remote_layer(b, src, l, &di, &dg, size) == 1)
			continue; /* recorded as remote: fetched, and checked, when something needs its content */
		if (rc == 0)
			rc = src->remote->fetch_layer(src->remote, b->store, &dg, size, ib_json_str(l, "mediaType"), &di);
		if (rc < 0 && rc != IB_EUSER)
			ib_error_prefix("record %.12s: layer %s (blob %s)", key, ds, ib_json_str(l, "digest"));
	}
	ib_image_config_free(c);
	if (rc == 0)
		rc = ib_store_blob_put(config, b->store, text, strlen(text));
	if (rc == 0)
		rc = ib_store_cache_put(b->store, key, own ? &own_diff : NULL, config);
	return rc;
}

int ib_build__cache_load(builder *b)
{
	struct ib_build__cache *c = b->cache;
	int rc = 0;
	for (size_t i = 0; c && rc == 0 && i < c->nfrom; i++)
		rc = load_source(b, &c->from[i]);
	return rc;
}

int ib_build__cache_import(builder *b, ib_digest *config, const char *key)
{
	struct ib_build__cache *c = b->cache;
	for (size_t i = 0; c && i < c->nfrom; i++) {
		cache_source *src = &c->from[i];
		int rc = load_source(b, src);
		if (rc < 0)
			return rc;
		const json_t *r = src->refused ? NULL : json_object_get(src->records, key);
		if (!r)
			continue;
		rc = take_record(b, config, src, key, r);
		if (rc == 0 || rc == IB_EUSER)
			return rc;
		if (rc == IB_ENOTFOUND) {
			ib_build__log_line(b, IB_LOG_WARNING, "cache import %s: %s", src->ref, ib_error_last()->message);
			ib_error_clear();
			continue;
		}
		/* a layer that is not what its record says: the artifact is refused, none of it used again */
		ib_build__log_line(b, IB_LOG_WARNING, "cache import %s: refused: %s", src->ref,
				   ib_error_last()->message);
		ib_error_clear();
		src->refused = 1;
	}
	return IB_ENOTFOUND;
}

/* ---- cache mounts (cache_mounts.c) ---- */

int ib_build__cache_mount_seen(builder *b, const char *id, const char *ident)
{
	struct ib_build__cache *c = b->cache;
	if (!c)
		return 0;
	for (size_t i = 0; i + 1 < c->seen.n; i += 2)
		if (!strcmp(c->seen.items[i + 1], ident))
			return 0;
	int rc = ib_strlist_add(&c->seen, id);
	return rc == 0 ? ib_strlist_add(&c->seen, ident) : rc;
}

int ib_build__cache_mount_restore(builder *b, const char *ident, const char *dir)
{
	struct ib_build__cache *c = b->cache;
	ib_digest d;
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_of(&d, ident, strlen(ident));
	ib_digest_hex(hex, &d);
	for (size_t i = 0; c && i < c->nfrom; i++) {
		cache_source *src = &c->from[i];
		int rc = load_source(b, src);
		if (rc < 0)
			return rc;
		const json_t *m = src->refused ? NULL : json_object_get(src->mounts, hex);
		if (!m)
			continue;
		/* checked by parse_records: a valid layer, listed, bounded; the ident is the key's */
		const json_t *l = json_object_get(m, "layer");
		const char *id = ib_json_str(m, "id");
		ib_digest di, dg;
		uint64_t size;
		char *label = ib_sprintf("of the cache mount `%s`", id);
		if (!label)
			return IB_ERROR;
		rc = layer_of(&di, &dg, &size, l);
		/* the blob checked against its digest and diff_id as it comes in, before anything is unpacked */
		if (rc == 0 && ib_store_blob_has(b->store, &di) != 1)
			rc = src->remote->fetch_layer(src->remote, b->store, &dg, size, ib_json_str(l, "mediaType"), &di);
		if (rc == 0)
			rc = ib_build__cache_mount_unpack(b, &di, dir, (unsigned long)json_integer_value(json_object_get(m, "uid")),
							  (unsigned long)json_integer_value(json_object_get(m, "gid")),
							  (unsigned long)json_integer_value(json_object_get(m, "mode")), label);
		free(label);
		if (rc == IB_EUSER)
			return rc;
		if (rc == 0) {
			ib_build__log_line(b, IB_LOG_INFO, "cache import %s: the cache mount `%s` restored", src->ref, id);
			return 1;
		}
		/* not what its record says (or not safe to unpack): the artifact is refused, none of it used again */
		ib_build__log_line(b, IB_LOG_WARNING, "cache import %s: refused: cache mount `%s`: %s", src->ref, id,
				   ib_error_last()->message);
		ib_error_clear();
		src->refused = 1;
	}
	return 0;
}

int ib_build__cache_alias(builder *b, const char *memo, const char *key)
{
	struct ib_build__cache *c = b->cache;
	if (!c || !c->nto)
		return 0;
	int rc = 0;
	pthread_mutex_lock(&alias_mu);
	if (!c->aliases && !(c->aliases = json_object()))
		rc = ib_error_oom();
	json_t *list = rc == 0 ? json_object_get(c->aliases, key) : NULL;
	if (rc == 0 && !list && json_object_set_new(c->aliases, key, list = json_array()) < 0)
		rc = ib_error_oom();
	int have = 0;
	size_t i;
	json_t *a;
	json_array_foreach(rc == 0 ? list : NULL, i, a) {
		have |= !strcmp(json_string_value(a), memo);
	}
	if (rc == 0 && !have && json_array_append_new(list, json_string(memo)) < 0)
		rc = ib_error_oom();
	pthread_mutex_unlock(&alias_mu);
	return rc;
}

int ib_build__cache_alias_get(builder *b, const char *memo, char key[IB_DIGEST_HEXLEN + 1])
{
	struct ib_build__cache *c = b->cache;
	for (size_t i = 0; c && i < c->nfrom; i++) {
		const cache_source *src = &c->from[i];
		if (!src->loaded || src->refused)
			continue;
		const char *k = json_string_value(json_object_get(src->aliases, memo));
		if (k && json_object_get(src->records, k)) {
			snprintf(key, IB_DIGEST_HEXLEN + 1, "%s", k);
			return 1;
		}
	}
	return 0;
}

int ib_build__cache_step(builder *b, size_t stage, const char *parent, const char *key)
{
	struct ib_build__cache *c = b->cache;
	if (!c || (!c->nto && !c->inline_))
		return 0;
	step_rec *s = ib_realloc(c->steps, (c->nsteps + 1) * sizeof *s);
	if (!s)
		return IB_ERROR;
	c->steps = s;
	memset(&s[c->nsteps], 0, sizeof *s);
	snprintf(s[c->nsteps].key, sizeof s->key, "%s", key);
	snprintf(s[c->nsteps].parent, sizeof s->parent, "%s", parent);
	s[c->nsteps].stage = stage;
	c->nsteps++;
	return 0;
}

/* ---- export ---- */

/* The stages of the result: the target and the stages it starts FROM, transitively. */
static int in_result(builder *b, size_t stage)
{
	const ib_plan_stage *ps = ib_plan_target(b->plan);
	while (ps) {
		if (ps->index == stage)
			return 1;
		if (ps->base_kind != IB_BASE_STAGE)
			break;
		ps = ib_plan_stage_by_index(b->plan, ps->base_stage);
	}
	return 0;
}

/*
 * --cache-to type=inline: the records of the result's steps (mode=min, as
 * BuildKit's inline cache) into `*config`, the image's config, before it is
 * committed. A record's layer is its diff_id, one of the image's layers (a
 * record whose layer is not one is left out, as BuildKit leaves out what
 * does not match the image's layers).
 */
int ib_build__cache_inline(builder *b, ib_image_config **config)
{
	struct ib_build__cache *c = b->cache;
	if (!c || !c->inline_)
		return 0;
	json_t *recs = json_object();
	int rc = recs ? 0 : ib_error_oom();
	size_t nl = ib_image_config_diff_id_count(*config), dropped = 0;
	for (size_t i = 0; rc == 0 && i < c->nsteps; i++) {
		const step_rec *s = &c->steps[i];
		if (!in_result(b, s->stage) || json_object_get(recs, s->key))
			continue;
		ib_digest layer, cfg;
		int has_layer = 0, found = 0;
		ib_buf text = IB_BUF_INIT;
		if ((rc = ib_store_cache_get(&layer, &has_layer, &cfg, b->store, s->key)) < 0 ||
		    (rc = ib_store_blob_read(&text, b->store, &cfg)) < 0)
			break;
		for (size_t k = 0; has_layer && !found && k < nl; k++) {
			ib_digest d;
			found = ib_image_config_diff_id(&d, *config, k) == 0 && ib_digest_equal(&d, &layer);
		}
		if (has_layer && !found) {
			dropped++;
			ib_buf_dispose(&text);
			continue;
		}
		char di[IB_DIGEST_STRLEN];
		ib_digest_fmt(di, &layer);
		json_t *r = json_pack("{s:s,s:s%}", "parent", s->parent, "config", text.ptr, text.size);
		ib_buf_dispose(&text);
		if (!r)
			rc = ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "record %.12s: its config is not UTF-8 JSON", s->key);
		else if ((has_layer && json_object_set_new(r, "layer", json_string(di)) < 0) ||
			 json_object_set_new(recs, s->key, r) < 0)
			rc = ib_error_oom();
	}
	size_t size = 0;
	if (rc == 0)
		rc = ib_build__cache_inline_embed(config, recs, &size);
	if (rc == 0)
		ib_build__log_line(b, IB_LOG_INFO, "cache export inline: %zu records in the image config (%zu bytes)%s",
				   json_object_size(recs), size, dropped ? ", some left out (their layer is not the image's)" : "");
	else if (rc != IB_EUSER)
		ib_error_prefix("--cache-to type=inline");
	json_decref(recs);
	return rc;
}

/* Our records for `d` as a JSON object key -> record (layers uploaded). */
static int our_records(json_t **out, builder *b, const cache_dest *d, ib_build__cache_backend *remote,
		       const char *id)
{
	struct ib_build__cache *c = b->cache;
	json_t *recs = json_object();
	int rc = recs ? 0 : ib_error_oom();
	for (size_t i = 0; rc == 0 && i < c->nsteps; i++) {
		const step_rec *s = &c->steps[i];
		if (!d->max && !in_result(b, s->stage))
			continue;
		if (json_object_get(recs, s->key))
			continue;
		ib_digest layer, config;
		int has_layer = 0;
		ib_buf text = IB_BUF_INIT;
		if ((rc = ib_store_cache_get(&layer, &has_layer, &config, b->store, s->key)) < 0 ||
		    (rc = ib_store_blob_read(&text, b->store, &config)) < 0)
			break;
		json_t *r = json_pack("{s:s,s:s%}", "parent", s->parent, "config", text.ptr, text.size);
		ib_buf_dispose(&text);
		if (!r) {
			rc = ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "record %.12s: its config is not UTF-8 JSON", s->key);
			break;
		}
		if (has_layer) {
			ib_digest blob;
			uint64_t size;
			char di[IB_DIGEST_STRLEN], dg[IB_DIGEST_STRLEN];
			const char *mt = NULL;
			uint64_t diff_size = 0;
			rc = remote->upload_layer(remote, &blob, &size, &mt, b->store, &layer);
			/* the uncompressed size too: an importer records the layer as remote without fetching it */
			if (rc == 0)
				rc = ib_store_blob_size(&diff_size, b->store, &layer);
			ib_digest_fmt(di, &layer);
			ib_digest_fmt(dg, &blob);
			if (rc == 0 && json_object_set_new(r, "layer", json_pack("{s:s,s:s,s:I,s:s,s:I}", "diff_id", di,
										  "digest", dg, "size", (json_int_t)size,
										  "mediaType", mt, "diff_size",
										  (json_int_t)diff_size)) < 0)
				rc = ib_error_oom();
		}
		/* a COPY --from step: the memo keys that lead to it (an importer need not fetch the source stage) */
		pthread_mutex_lock(&alias_mu);
		json_t *al = c->aliases ? json_object_get(c->aliases, s->key) : NULL;
		if (rc == 0 && al && json_object_set_new(r, "aliases", json_deep_copy(al)) < 0)
			rc = ib_error_oom();
		pthread_mutex_unlock(&alias_mu);
		if (rc == 0 && json_object_set_new(recs, s->key, r) < 0)
			rc = ib_error_oom();
		if (rc == 0)
			rc = report(b, id, "Exporting cache", i + 1, c->nsteps);
	}
	if (rc < 0) {
		json_decref(recs);
		return rc;
	}
	*out = recs;
	return 0;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void pause_ms(unsigned int ms)
{
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&t, NULL);
}

/* The tag's records, image blobs and cache mounts now (an absent tag: none). */
static int read_remote(json_t **records, json_t **images, json_t **mounts, ib_build__cache_backend *remote)
{
	ib_buf cfg = IB_BUF_INIT, listed = IB_BUF_INIT;
	json_t *layers = NULL;
	*images = *mounts = NULL;
	int rc = remote->read(remote, &cfg, &listed);
	if (rc == IB_ENOTFOUND) {
		ib_error_clear();
		*records = json_object();
		*images = json_object();
		*mounts = json_object();
		rc = *records && *images && *mounts ? 0 : ib_error_oom();
	} else if (rc == 0) {
		rc = parse_records(records, &layers, images, mounts, NULL, &cfg, &listed);
		json_decref(layers);
	}
	ib_buf_dispose(&cfg);
	ib_buf_dispose(&listed);
	return rc;
}

/* 1 when every record of `ours` is in `theirs` (under its key, whatever its result). */
static int has_all(const json_t *theirs, const json_t *ours)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)ours, k, v) {
		if (!json_object_get(theirs, k))
			return 0;
	}
	return 1;
}

/* 1 when every cache mount of `ours` is in `theirs` with the same layer. */
static int same_mounts(const json_t *theirs, const json_t *ours)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)ours, k, v) {
		const json_t *t = json_object_get(theirs, k);
		const char *a = ib_json_str(json_object_get(t, "layer"), "digest");
		if (!a || strcmp(a, ib_json_str(json_object_get(v, "layer"), "digest")))
			return 0;
	}
	return 1;
}

/* The longest a writer lets pass between its read and its manifest PUT, and the pause before its check. */
#define CACHE_WINDOW_S 0.5
#define CACHE_SETTLE_MS 1500u
#define CACHE_ATTEMPTS 12

static int write_merged(ib_build__cache_backend *remote, const json_t *ours, const json_t *our_images,
			const json_t *our_mounts, builder *b, const char *ref)
{
	int rc = 0;
	for (int attempt = 0; attempt < CACHE_ATTEMPTS; attempt++) {
		json_t *recs = NULL, *imgs = NULL, *mts = NULL;
		double t0 = now_s();
		if ((rc = read_remote(&recs, &imgs, &mts, remote)) < 0)
			return rc;
		if (has_all(recs, ours) && has_all(imgs, our_images) && same_mounts(mts, our_mounts)) {
			json_decref(recs);
			json_decref(imgs);
			json_decref(mts);
			return 0; /* everything ours is there (a first writer's result stays) */
		}
		/* the merge: what the tag holds stays as it is, ours are added */
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)ours, k, v) {
			if (!json_object_get(recs, k) && json_object_set(recs, k, v) < 0)
				rc = ib_error_oom();
		}
		json_object_foreach((json_t *)our_images, k, v) {
			if (json_object_set(imgs, k, v) < 0)
				rc = ib_error_oom();
		}
		/* a cache mount: the last writer's content wins (both are valid contents of that cache) */
		json_object_foreach((json_t *)our_mounts, k, v) {
			if (json_object_set(mts, k, v) < 0)
				rc = ib_error_oom();
		}
		/* the layers: each record's, once; the cache mounts'; then the image configs (a push of the image
		 * finds them) */
		json_t *seen = json_object(),
		       *doc = json_pack("{s:i,s:O,s:O}", "imagebuild.cache", 1, "records", recs, "blobs", imgs);
		if (doc && json_object_size(mts) && json_object_set(doc, "mounts", mts) < 0)
			rc = ib_error_oom();
		size_t cap = json_object_size(recs) + json_object_size(imgs) + json_object_size(mts) + 1;
		ib_digest *layers = ib_calloc(cap, sizeof *layers);
		uint64_t *sizes = ib_calloc(cap, sizeof *sizes);
		const char **types = ib_calloc(cap, sizeof *types);
		size_t n = 0;
		if (!seen || !doc || !layers || !sizes || !types)
			rc = ib_error_oom();
		json_object_foreach(rc == 0 ? recs : NULL, k, v) {
			const json_t *l = json_object_get(v, "layer");
			ib_digest di;
			if (!l || json_object_get(seen, ib_json_str(l, "digest")))
				continue;
			if ((rc = layer_of(&di, &layers[n], &sizes[n], l)) < 0)
				break;
			json_object_set_new(seen, ib_json_str(l, "digest"), json_true());
			types[n++] = ib_json_str(l, "mediaType");
		}
		json_object_foreach(rc == 0 ? mts : NULL, k, v) {
			const json_t *l = json_object_get(v, "layer");
			ib_digest di;
			if (json_object_get(seen, ib_json_str(l, "digest")))
				continue;
			if ((rc = layer_of(&di, &layers[n], &sizes[n], l)) < 0)
				break;
			json_object_set_new(seen, ib_json_str(l, "digest"), json_true());
			types[n++] = ib_json_str(l, "mediaType");
		}
		json_object_foreach(rc == 0 ? imgs : NULL, k, v) {
			const json_t *sz = json_object_get(v, "size");
			const char *mt = ib_json_str(v, "mediaType");
			if (json_object_get(seen, k))
				continue;
			if (ib_digest_parse(&layers[n], k) < 0 || !json_is_integer(sz) || json_integer_value(sz) < 0 || !mt ||
			    (strcmp(mt, IB_MEDIA_TYPE_OCI_CONFIG) && strcmp(mt, IB_MEDIA_TYPE_OCI_LAYER_GZIP) &&
			     strcmp(mt, IB_MEDIA_TYPE_OCI_LAYER))) {
				ib_error_clear();
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "cache records: a malformed image blob `%.80s`", k);
				break;
			}
			json_object_set_new(seen, k, json_true());
			sizes[n] = (uint64_t)json_integer_value(sz);
			types[n++] = mt;
		}
		ib_buf body = IB_BUF_INIT;
		if (rc == 0)
			rc = ib_json_dump(&body, doc, JSON_SORT_KEYS | JSON_COMPACT);
		/* a read too old may have missed a writer that the pause of its check no longer covers: read again
		 * (under a lock, as in a directory, nobody else writes) */
		int stale = rc == 0 && !remote->lock && now_s() - t0 > CACHE_WINDOW_S;
		if (rc == 0 && !stale)
			rc = remote->write(remote, body.ptr, body.size, layers, sizes, types, n);
		/* types point into recs and imgs */
		json_decref(seen);
		json_decref(doc);
		json_decref(recs);
		json_decref(imgs);
		json_decref(mts);
		ib_buf_dispose(&body);
		free(layers);
		free(sizes);
		free(types);
		if (stale)
			continue;
		if (rc < 0 || remote->lock)
			return rc; /* under the lock: nobody wrote between our read and our write */
		/* then check, after any writer that read before us has written, that ours stayed */
		pause_ms(CACHE_SETTLE_MS + (unsigned int)(rand() % 300));
		if ((rc = read_remote(&recs, &imgs, &mts, remote)) < 0)
			return rc;
		/* a cache mount another writer replaced after us is theirs (last writer wins): only its presence */
		int ok = has_all(recs, ours) && has_all(imgs, our_images) && has_all(mts, our_mounts);
		json_decref(recs);
		json_decref(imgs);
		json_decref(mts);
		if (ok)
			return 0;
		ib_build__log_line(b, IB_LOG_INFO, "cache export %s: another builder's write replaced ours, merging again",
				   ref);
		pause_ms((unsigned int)(rand() % 400));
	}
	return ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "the tag kept changing under %d attempts", CACHE_ATTEMPTS);
}

/* The image's config and every layer's gzip blob, in the repository: digest -> {size, mediaType}. */
static int image_blobs(json_t **out, builder *b, ib_build__cache_backend *remote, const ib_digest *image_id)
{
	char ds[IB_DIGEST_STRLEN];
	uint64_t size = 0;
	ib_buf text = IB_BUF_INIT;
	ib_image_config *c = NULL;
	json_t *o = json_object();
	int rc = o ? 0 : ib_error_oom();
	if (rc == 0)
		rc = ib_store_blob_size(&size, b->store, image_id);
	if (rc == 0)
		rc = remote->upload_blob(remote, b->store, image_id);
	ib_digest_fmt(ds, image_id);
	if (rc == 0 && json_object_set_new(o, ds, json_pack("{s:I,s:s}", "size", (json_int_t)size, "mediaType",
							    IB_MEDIA_TYPE_OCI_CONFIG)) < 0)
		rc = ib_error_oom();
	if (rc == 0 && (rc = ib_store_blob_read(&text, b->store, image_id)) == 0)
		rc = ib_image_config_from_json(&c, text.ptr, text.size);
	size_t n = rc == 0 ? ib_image_config_diff_id_count(c) : 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		ib_digest di, blob;
		const char *mt = NULL;
		if ((rc = ib_image_config_diff_id(&di, c, i)) == 0)
			rc = remote->upload_layer(remote, &blob, &size, &mt, b->store, &di);
		ib_digest_fmt(ds, &blob);
		if (rc == 0 && json_object_set_new(o, ds, json_pack("{s:I,s:s}", "size", (json_int_t)size, "mediaType",
								    mt)) < 0)
			rc = ib_error_oom();
	}
	ib_image_config_free(c);
	ib_buf_dispose(&text);
	if (rc < 0) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return 0;
}

/* 1 when `d` exports the cache mount `id`. */
static int wants_mount(const cache_dest *d, const char *id)
{
	return ib_strlist_contains(&d->mounts, "all") || ib_strlist_contains(&d->mounts, id);
}

/* Every id cache-mounts= names is one of the build's cache mounts: else an error naming it. */
static int check_mount_ids(builder *b, const cache_dest *d)
{
	struct ib_build__cache *c = b->cache;
	for (size_t i = 0; i < d->mounts.n; i++) {
		const char *want = d->mounts.items[i];
		int found = !strcmp(want, "all");
		for (size_t j = 0; !found && j + 1 < c->seen.n; j += 2)
			found = !strcmp(c->seen.items[j], want);
		if (found)
			continue;
		ib_buf known = IB_BUF_INIT;
		for (size_t j = 0; j + 1 < c->seen.n; j += 2)
			ib_buf_printf(&known, "%s`%s`", known.size ? ", " : "", c->seen.items[j]);
		int rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
				       "cache-mounts=%s: no RUN --mount=type=cache of this build has the id `%s` (%s%s)", want,
				       want, known.size ? "its cache mounts: " : "it has no cache mount",
				       known.size ? known.ptr : "");
		ib_buf_dispose(&known);
		return rc;
	}
	return 0;
}

/* The cache mounts `d` exports, packed and uploaded: sha256(ident) -> record. */
static int our_mounts(json_t **out, builder *b, const cache_dest *d, ib_build__cache_backend *remote)
{
	struct ib_build__cache *c = b->cache;
	json_t *o = json_object();
	int rc = o ? 0 : ib_error_oom();
	for (size_t i = 0; rc == 0 && i + 1 < c->seen.n; i += 2) {
		const char *id = c->seen.items[i], *ident = c->seen.items[i + 1];
		if (!wants_mount(d, id))
			continue;
		ib_digest h, di, blob;
		char hex[IB_DIGEST_HEXLEN + 1], ds[IB_DIGEST_STRLEN], bs[IB_DIGEST_STRLEN];
		ib_digest_of(&h, ident, strlen(ident));
		ib_digest_hex(hex, &h);
		/* the first instance (a private cache's others are its copies made while it was in use) */
		char *dir = ib_sprintf("%s/cache-mounts/%s", ib_store_root(b->store), hex);
		if (!dir) {
			rc = IB_ERROR;
			break;
		}
		if (!ib_path_exists(dir)) {
			/* its RUN steps were all cached: the store never made it */
			ib_build__log_line(b, IB_LOG_INFO, "cache export %s: the cache mount `%s` is not in this store "
					   "(its steps were cached): not exported", d->ref, id);
			free(dir);
			continue;
		}
		uint64_t size = 0, bsize = 0;
		unsigned long uid = 0, gid = 0, mode = 0;
		const char *mt = NULL;
		rc = ib_build__cache_mount_pack(&di, &size, &uid, &gid, &mode, b, dir);
		if (rc == 0)
			rc = remote->upload_layer(remote, &blob, &bsize, &mt, b->store, &di);
		if (rc < 0 && rc != IB_EUSER)
			ib_error_prefix("the cache mount `%s`", id);
		free(dir);
		if (rc < 0)
			break;
		ib_digest_fmt(ds, &di);
		ib_digest_fmt(bs, &blob);
		json_t *r = json_pack("{s:s,s:s,s:I,s:I,s:I,s:{s:s,s:s,s:I,s:s}}", "id", id, "ident", ident, "uid",
				      (json_int_t)uid, "gid", (json_int_t)gid, "mode", (json_int_t)mode, "layer", "diff_id",
				      ds, "digest", bs, "size", (json_int_t)bsize, "mediaType", mt);
		if (!r || json_object_set_new(o, hex, r) < 0)
			rc = ib_error_oom();
		else
			ib_build__log_line(b, IB_LOG_INFO, "cache export %s: the cache mount `%s` (%llu bytes)", d->ref, id,
					   (unsigned long long)size);
	}
	if (rc < 0) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return 0;
}

int ib_build__cache_export(builder *b, const ib_digest *image_id)
{
	struct ib_build__cache *c = b->cache;
	int rc = 0;
	srand((unsigned int)(getpid() ^ (unsigned int)time(NULL)));
	for (size_t i = 0; c && rc == 0 && i < c->nto; i++) {
		const cache_dest *d = &c->to[i];
		ib_build__cache_backend *remote = NULL;
		json_t *ours = NULL, *mounts = NULL;
		char *id = ib_sprintf("cache-export:%s", d->ref);
		rc = id ? report(b, id, "Exporting cache", 0, c->nsteps) : IB_ERROR;
		if (rc == 0)
			rc = check_mount_ids(b, d);
		if (rc == 0)
			rc = backend_open(&remote, b, d->ref, d->local, 1);
		if (rc == 0)
			rc = our_records(&ours, b, d, remote, id);
		/* the image's blobs too (its config, its base's layers): a push of the image to this
		 * repository then uploads nothing */
		json_t *images = NULL;
		if (rc == 0)
			rc = image_blobs(&images, b, remote, image_id);
		if (rc == 0)
			rc = our_mounts(&mounts, b, d, remote);
		int locked = 0;
		if (rc == 0 && remote->lock && (rc = remote->lock(remote)) == 0)
			locked = 1;
		if (rc == 0)
			rc = write_merged(remote, ours, images, mounts, b, d->ref);
		if (locked)
			remote->unlock(remote);
		json_decref(images);
		json_decref(mounts);
		if (rc == 0) {
			ib_build__log_line(b, IB_LOG_INFO, "cache export %s (mode=%s): %zu records", d->ref,
					   d->max ? "max" : "min", json_object_size(ours));
			rc = report(b, id, "Exported cache", json_object_size(ours), json_object_size(ours));
		} else if (rc != IB_EUSER) {
			ib_error_prefix("cache export %s", d->ref);
		}
		json_decref(ours);
		if (remote)
			remote->free(remote);
		free(id);
	}
	return rc;
}
