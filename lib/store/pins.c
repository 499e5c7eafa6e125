/*
 * Pins: what other layers keep alive in the store. Container records live in
 * containers/<id>/record.json, build-cache entries in cache/<key>.json; both
 * are written atomically under a lease, and GC keeps every blob they name.
 */
#include "store/internal.h"
#include "util/fs.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int valid_hex_key(const char *k, const char *what)
{
	size_t n = strlen(k);
	if (n != 64)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s `%s` is not 64 hex digits", what, k);
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
			return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s `%s` is not 64 hex digits", what, k);
	return 0;
}

/* ---- containers ---- */

static char *container_dir(ib_store *s, const char *id)
{
	return ib_sprintf("%s/containers/%s", s->root, id);
}

int ib_store_container_dir(ib_buf *out, ib_store *s, const char *id)
{
	int rc = valid_hex_key(id, "container id");
	if (rc < 0)
		return rc;
	ib_buf_clear(out);
	return ib_buf_printf(out, "%s/containers/%s", s->root, id);
}

int ib_store_container_put(ib_store *s, const ib_container_record *rec)
{
	if (rec->version != IB_CONTAINER_RECORD_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_container_record version %u is not supported",
				     rec->version);
	int rc = valid_hex_key(rec->id ? rec->id : "", "container id");
	if (rc < 0)
		return rc;
	char ids[IB_DIGEST_STRLEN];
	ib_digest_fmt(ids, &rec->image_id);
	json_t *extra = NULL;
	if (rec->extra_json && (rc = ib_json_loadb(&extra, rec->extra_json, strlen(rec->extra_json),
						   "container record extra_json")) < 0)
		return rc;
	ib_buf created = IB_BUF_INIT, b = IB_BUF_INIT;
	if (!rec->created && (rc = ib_store__timestamp(&created, -1)) < 0) {
		json_decref(extra);
		return rc;
	}
	json_t *j = json_pack("{s:s,s:s?,s:s,s:s?,s:s?,s:s?,s:s,s:o?}", "id", rec->id, "name", rec->name, "image_id", ids,
			      "image_name", rec->image_name, "command", rec->command, "state", rec->state, "created",
			      rec->created ? rec->created : created.ptr, "extra", extra);
	char *dir = container_dir(s, rec->id);
	char *path = dir ? ib_sprintf("%s/record.json", dir) : NULL;
	if (!j || !path) {
		rc = IB_ERROR;
		goto out;
	}
	if ((rc = ib_store__lease(s)) < 0)
		goto out;
	if ((rc = ib_mkdir_p(dir, 0700)) == 0 && (rc = ib_json_dump(&b, j, IB_JSON_PRETTY)) == 0)
		rc = ib_atomic_write(path, b.ptr, b.size, 0600);
	ib_store__unlease(s);
out:
	json_decref(j);
	free(dir);
	free(path);
	ib_buf_dispose(&b);
	ib_buf_dispose(&created);
	return rc;
}

static char *dup_str(const json_t *j, const char *k, int *oom)
{
	const char *v = ib_json_str(j, k);
	if (!v)
		return NULL;
	char *c = ib_strdup(v);
	if (!c)
		*oom = 1;
	return c;
}

static int record_read(ib_container_record **out, ib_store *s, const char *id)
{
	char *path = ib_sprintf("%s/containers/%s/record.json", s->root, id);
	if (!path)
		return IB_ERROR;
	json_t *j;
	int rc = ib_json_load_file(&j, path);
	free(path);
	if (rc < 0)
		return rc;
	ib_container_record *r = ib_calloc(1, sizeof *r);
	int oom = !r;
	if (r) {
		r->version = IB_CONTAINER_RECORD_VERSION;
		r->id = dup_str(j, "id", &oom);
		r->name = dup_str(j, "name", &oom);
		r->image_name = dup_str(j, "image_name", &oom);
		r->command = dup_str(j, "command", &oom);
		r->state = dup_str(j, "state", &oom);
		r->created = dup_str(j, "created", &oom);
		json_t *extra = json_object_get(j, "extra");
		if (extra) {
			ib_buf b = IB_BUF_INIT;
			if (ib_json_dump(&b, extra, 0) < 0)
				oom = 1;
			r->extra_json = ib_buf_detach(&b);
		}
		const char *img = ib_json_str(j, "image_id");
		if (!r->id || !img || ib_digest_parse(&r->image_id, img) < 0) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "container record `%s`: missing id or image_id", id);
		}
	}
	json_decref(j);
	if (oom && rc == 0)
		rc = ib_error_oom();
	if (rc < 0)
		ib_container_record_free(r);
	else
		*out = r;
	return rc;
}

void ib_container_record_free(ib_container_record *r)
{
	if (!r)
		return;
	free((char *)r->id);
	free((char *)r->name);
	free((char *)r->image_name);
	free((char *)r->command);
	free((char *)r->state);
	free((char *)r->created);
	free((char *)r->extra_json);
	free(r);
}

void ib_store__container_records_free(ib_container_record **list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		ib_container_record_free(list[i]);
	free(list);
}

/* The API's list shape: opaque, count/get/free (as ib_image_list). */
struct ib_container_list {
	ib_container_record **items;
	size_t n;
};

int ib_store_container_list(ib_container_list **out, ib_store *s)
{
	if (!out || !s)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_store_container_list: NULL argument");
	*out = NULL;
	ib_container_list *l = ib_calloc(1, sizeof *l);
	if (!l)
		return IB_ERROR;
	int rc = ib_store__container_records(&l->items, &l->n, s);
	if (rc < 0) {
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

size_t ib_container_list_count(const ib_container_list *list)
{
	return list ? list->n : 0;
}

const ib_container_record *ib_container_list_get(const ib_container_list *list, size_t i)
{
	return list && i < list->n ? list->items[i] : NULL;
}

void ib_container_list_free(ib_container_list *list)
{
	if (!list)
		return;
	ib_store__container_records_free(list->items, list->n);
	free(list);
}

static int cmp_created(const void *a, const void *b)
{
	const ib_container_record *x = *(ib_container_record *const *)a, *y = *(ib_container_record *const *)b;
	int c = strcmp(x->created ? x->created : "", y->created ? y->created : "");
	return c ? c : strcmp(x->id, y->id);
}

int ib_store__container_records(ib_container_record ***out, size_t *n, ib_store *s)
{
	*out = NULL;
	*n = 0;
	char *dir = ib_store__path(s, "containers");
	if (!dir)
		return IB_ERROR;
	DIR *d = opendir(dir);
	free(dir);
	if (!d)
		return 0;
	ib_container_record **list = NULL;
	size_t count = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (valid_hex_key(de->d_name, "container id") < 0) {
			ib_error_clear();
			continue;
		}
		ib_container_record *r;
		if (record_read(&r, s, de->d_name) < 0) {
			/* a directory without a record is being created or removed */
			ib_error_clear();
			continue;
		}
		ib_container_record **nl = ib_realloc(list, (count + 1) * sizeof *list);
		if (!nl) {
			ib_container_record_free(r);
			rc = IB_ERROR;
			break;
		}
		list = nl;
		list[count++] = r;
	}
	closedir(d);
	if (rc < 0) {
		ib_store__container_records_free(list, count);
		return rc;
	}
	if (count)
		qsort(list, count, sizeof *list, cmp_created);
	*out = list;
	*n = count;
	return 0;
}

int ib_store_container_get(ib_container_record **out, ib_store *s, const char *q)
{
	ib_container_record **list;
	size_t n;
	int rc = ib_store__container_records(&list, &n, s);
	if (rc < 0)
		return rc;
	size_t hit = (size_t)-1, hits = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(list[i]->id, q) || (list[i]->name && !strcmp(list[i]->name, q))) {
			hit = i;
			hits = 1;
			break;
		}
		if (*q && !strncmp(list[i]->id, q, strlen(q))) {
			hit = i;
			hits++;
		}
	}
	if (hits == 1) {
		*out = list[hit];
		list[hit] = NULL;
	} else if (hits > 1) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "container id prefix `%s` is ambiguous", q);
	} else {
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "No such container: %s", q);
	}
	ib_store__container_records_free(list, n);
	return rc;
}

int ib_store_container_remove(ib_store *s, const char *id)
{
	int rc = valid_hex_key(id, "container id");
	if (rc < 0)
		return rc;
	char *dir = container_dir(s, id);
	char *rec = dir ? ib_sprintf("%s/record.json", dir) : NULL;
	if (!rec) {
		free(dir);
		return IB_ERROR;
	}
	if (!ib_path_exists(rec))
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "No such container: %s", id);
	else if (unlink(rec) < 0) /* the record goes first: a half-removed directory is no container */
		rc = ib_error_set_os(IB_LAYER_STORE, "remove `%s`", rec);
	else
		rc = ib_rm_rf(dir);
	free(dir);
	free(rec);
	return rc;
}

int ib_store__containers_using(ib_store *s, const ib_digest *id, char **which)
{
	ib_container_record **list;
	size_t n;
	int rc = ib_store__container_records(&list, &n, s);
	if (rc < 0)
		return rc;
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		if (ib_digest_equal(&list[i]->image_id, id)) {
			if (which && !count)
				*which = ib_strdup(list[i]->id);
			count++;
		}
	}
	ib_store__container_records_free(list, n);
	return count;
}

/* ---- build cache ---- */

static char *cache_path(ib_store *s, const char *key)
{
	return ib_sprintf("%s/cache/%s.json", s->root, key);
}

int ib_store_cache_put(ib_store *s, const char *key, const ib_digest *layer, const ib_digest *config)
{
	int rc = valid_hex_key(key, "cache key");
	if (rc < 0)
		return rc;
	if ((rc = ib_store__lease(s)) < 0)
		return rc;
	char ls[IB_DIGEST_STRLEN] = "", cs[IB_DIGEST_STRLEN];
	ib_digest_fmt(cs, config);
	if (layer)
		ib_digest_fmt(ls, layer);
	char *dir = ib_store__path(s, "cache");
	char *path = cache_path(s, key);
	json_t *j = json_pack("{s:s?,s:s}", "layer", layer ? ls : NULL, "config", cs);
	ib_buf b = IB_BUF_INIT;
	if (!dir || !path || !j) {
		rc = IB_ERROR;
		goto out;
	}
	if (ib_store_blob_has(s, config) != 1 || (layer && ib_store_blob_has(s, layer) != 1)) {
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "cache entry %s: blob %s is not in the store", key,
				   ib_store_blob_has(s, config) != 1 ? cs : ls);
		goto out;
	}
	if ((rc = ib_mkdir_p(dir, 0755)) == 0 && (rc = ib_json_dump(&b, j, 0)) == 0)
		rc = ib_atomic_write(path, b.ptr, b.size, 0644);
out:
	ib_store__unlease(s);
	json_decref(j);
	free(dir);
	free(path);
	ib_buf_dispose(&b);
	return rc;
}

/* Read a cache entry file; used by get, GC and fsck. */
int ib_store__cache_read(ib_digest *layer, int *has_layer, ib_digest *config, ib_store *s, const char *key)
{
	char *path = cache_path(s, key);
	if (!path)
		return IB_ERROR;
	json_t *j;
	int rc = ib_json_load_file(&j, path);
	if (rc < 0) {
		free(path);
		if (rc == IB_ENOTFOUND)
			return ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "no cache entry %s", key);
		return rc;
	}
	const char *ls = ib_json_str(j, "layer"), *cs = ib_json_str(j, "config");
	ib_digest l;
	if (!cs || ib_digest_parse(config, cs) < 0 || (ls && ib_digest_parse(&l, ls) < 0))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: invalid cache entry", path);
	if (rc == 0) {
		if (has_layer)
			*has_layer = ls != NULL;
		if (layer && ls)
			*layer = l;
	}
	json_decref(j);
	free(path);
	return rc;
}

int ib_store_cache_get(ib_digest *layer, int *has_layer, ib_digest *config, ib_store *s, const char *key)
{
	int rc = valid_hex_key(key, "cache key");
	if (rc < 0)
		return rc;
	int hl = 0;
	ib_digest l, c;
	if ((rc = ib_store__cache_read(&l, &hl, &c, s, key)) < 0)
		return rc;
	if (ib_store_blob_has(s, &c) != 1 || (hl && ib_store_blob_has(s, &l) != 1))
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "cache entry %s names a blob that is gone", key);
	if (has_layer)
		*has_layer = hl;
	if (layer && hl)
		*layer = l;
	*config = c;
	return 0;
}

int ib_store_cache_remove(ib_store *s, const char *key)
{
	int rc = valid_hex_key(key, "cache key");
	if (rc < 0)
		return rc;
	char *path = cache_path(s, key);
	if (!path)
		return IB_ERROR;
	if (unlink(path) < 0)
		rc = ib_error_set_os(IB_LAYER_STORE, "remove cache entry `%s`", path);
	free(path);
	return rc;
}

int ib_store_cache_clear(ib_store *s)
{
	char *dir = ib_store__path(s, "cache");
	if (!dir)
		return IB_ERROR;
	int rc = ib_rm_rf(dir);
	free(dir);
	/* and the build layer's COPY --from memo, whose values are cache keys */
	char *memo = rc == 0 ? ib_store__path(s, "build-memo") : NULL;
	if (rc == 0)
		rc = memo ? ib_rm_rf(memo) : IB_ERROR;
	free(memo);
	return rc;
}
