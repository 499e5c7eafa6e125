/*
 * Garbage collection and fsck.
 *
 * GC takes <root>/gc.lock exclusively, so it runs only when no writer holds
 * a lease (see store.h), computes every blob reachable from index.json,
 * the build cache and container records, and deletes the rest, plus
 * temporary files (no writer is active, so they are a dead process's).
 * Any object it cannot read makes it stop without deleting anything: a
 * damaged store is for fsck, not for GC to "clean".
 */
#include "store/internal.h"
#include "util/fs.h"
#include "util/hash.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
	ib_digest *d;
	size_t n, cap;
} digest_set;

static int set_add(digest_set *s, const ib_digest *d)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		ib_digest *nd = ib_realloc(s->d, cap * sizeof *nd);
		if (!nd)
			return IB_ERROR;
		s->d = nd;
		s->cap = cap;
	}
	s->d[s->n++] = *d;
	return 0;
}

static int cmp_digest(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(ib_digest));
}

static int set_has(const digest_set *s, const ib_digest *d)
{
	return s->n && bsearch(d, s->d, s->n, sizeof *d, cmp_digest) != NULL;
}

/* A config: itself and the blobs of its diff_ids (local layers are stored by diff_id). */
static int mark_config(digest_set *live, ib_store *s, const ib_digest *d)
{
	if (set_add(live, d) < 0)
		return IB_ERROR;
	if (ib_store_blob_has(s, d) != 1)
		return 0;
	json_t *j;
	int rc = ib_store__blob_json(&j, s, d, "image config");
	if (rc < 0)
		return rc;
	json_t *ids = json_object_get(json_object_get(j, "rootfs"), "diff_ids");
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) {
		ib_digest dd;
		if (json_is_string(v) && ib_digest_parse(&dd, json_string_value(v)) == 0 && set_add(live, &dd) < 0) {
			rc = IB_ERROR;
			break;
		}
		ib_error_clear();
	}
	json_decref(j);
	return rc;
}

static int mark_manifest(digest_set *live, ib_store *s, const ib_digest *d, int depth)
{
	if (set_add(live, d) < 0)
		return IB_ERROR;
	if (ib_store_blob_has(s, d) != 1 || depth > 4)
		return 0; /* a missing child of an index (a partial pull) */
	json_t *m;
	int rc = ib_store__blob_json(&m, s, d, "manifest");
	if (rc < 0)
		return rc;
	size_t i;
	json_t *e;
	ib_digest cd;
	json_array_foreach(json_object_get(m, "manifests"), i, e) {
		if ((rc = ib_store__descriptor(NULL, &cd, NULL, e, "index")) < 0 ||
		    (rc = mark_manifest(live, s, &cd, depth + 1)) < 0)
			goto out;
	}
	json_t *cfg = json_object_get(m, "config");
	if (cfg && ((rc = ib_store__descriptor(NULL, &cd, NULL, cfg, "manifest config")) < 0 ||
		    (rc = mark_config(live, s, &cd)) < 0))
		goto out;
	json_array_foreach(json_object_get(m, "layers"), i, e) {
		if ((rc = ib_store__descriptor(NULL, &cd, NULL, e, "manifest layer")) < 0 || (rc = set_add(live, &cd)) < 0)
			goto out;
	}
out:
	json_decref(m);
	return rc;
}

static int is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

/* 1 and the digest when `name` is a record's "<64 hex digits>.json", 0 when not (no error set). */
static int record_name(ib_digest *out, const char *name)
{
	char hex[65], ds[IB_DIGEST_STRLEN];
	if (strlen(name) != 69 || strcmp(name + 64, ".json"))
		return 0;
	memcpy(hex, name, 64);
	hex[64] = 0;
	snprintf(ds, sizeof ds, "sha256:%s", hex);
	if (!is_hex64(hex) || ib_digest_parse(out, ds) < 0) {
		ib_error_clear();
		return 0;
	}
	return 1;
}

/* <root>/<sub> to read (*out NULL when there is none); IB_ERROR when out of memory. */
static int open_sub(DIR **out, ib_store *s, const char *sub)
{
	char *dir = ib_store__path(s, sub);
	if (!dir)
		return IB_ERROR;
	*out = opendir(dir);
	free(dir);
	return 0;
}

static int mark_cache(digest_set *live, ib_store *s)
{
	DIR *d;
	if (open_sub(&d, s, "cache") < 0)
		return IB_ERROR;
	if (!d)
		return 0; /* none yet */
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n != 69 || strcmp(de->d_name + 64, ".json"))
			continue;
		char key[65];
		memcpy(key, de->d_name, 64);
		key[64] = 0;
		ib_digest l, c;
		int hl = 0;
		if ((rc = ib_store__cache_read(&l, &hl, &c, s, key)) < 0)
			break;
		if (hl && (rc = set_add(live, &l)) < 0)
			break;
		rc = mark_config(live, s, &c);
	}
	closedir(d);
	return rc;
}

/*
 * The records of variants/<diff_id>.json that pass the cheap checks (blob
 * present with its size and magic, verified against the layer when
 * recorded) keep their blobs; the others are dropped from the file, so a
 * variant nobody checked is never shipped.
 */
static int keep_good_variants(digest_set *live, ib_store *s, const ib_digest *diff, json_t *j)
{
	json_t *list = json_object_get(j, "variants");
	size_t before = json_array_size(list);
	int rc = 0;
	for (size_t i = before; i-- > 0 && rc == 0;) {
		json_t *e = json_array_get(list, i);
		ib_digest v;
		rc = ib_store__variant_check(s, diff, e, 0);
		if (rc == IB_EINVALID) {
			ib_error_clear();
			rc = json_array_remove(list, i) == 0 ? 0 : ib_error_oom();
		} else if (rc == 0 && (rc = ib_store__descriptor(NULL, &v, NULL, e, "variant")) == 0) {
			rc = set_add(live, &v);
		}
	}
	if (rc < 0 || json_array_size(list) == before)
		return rc;
	char *p = ib_store__variant_path(s, diff);
	ib_buf b = IB_BUF_INIT;
	if (!p)
		rc = IB_ERROR;
	else if (!json_array_size(list))
		rc = unlink(p) == 0 ? 0 : ib_error_set_os(IB_LAYER_STORE, "remove `%s`", p);
	else if ((rc = ib_json_dump(&b, j, 0)) == 0)
		rc = ib_atomic_write(p, b.ptr, b.size, 0644);
	ib_buf_dispose(&b);
	free(p);
	return rc;
}

/* Compressed variants live as long as their layer; the records of dead layers go. */
static int mark_variants(digest_set *live, ib_store *s)
{
	DIR *d;
	if (open_sub(&d, s, "variants") < 0)
		return IB_ERROR;
	if (!d)
		return 0; /* none yet */
	size_t before = live->n;
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		ib_digest diff;
		if (!record_name(&diff, de->d_name))
			continue;
		/* only the sorted part: what this loop adds is unsorted until the end */
		if (!before || !bsearch(&diff, live->d, before, sizeof diff, cmp_digest)) {
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		json_t *j;
		if ((rc = ib_store__variants_read(&j, s, &diff)) < 0) {
			if (rc != IB_EINVALID)
				break;
			/* a damaged record only remembered work: drop it */
			ib_error_clear();
			rc = 0;
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		rc = keep_good_variants(live, s, &diff, j);
		json_decref(j);
	}
	closedir(d);
	if (rc == 0 && live->n != before)
		qsort(live->d, live->n, sizeof *live->d, cmp_digest);
	return rc;
}

/*
 * A layer kept only unpacked is regenerated as a diff against the layers
 * its record's chain names (regen.c), which need not be layers of the
 * images that use it: the same diff made on another base (the same COPY
 * onto two images) is recorded once, with the chain it was made on. Those
 * layers live as long as the record does, and so, in turn, do theirs.
 * `live` is sorted on entry and on return.
 */
typedef struct {
	digest_set *live;
	size_t sorted; /* live->d[0, sorted) is sorted; what mark_chains adds follows, unsorted */
} chain_marks;

static int chain_has(const chain_marks *m, const ib_digest *d)
{
	if (m->sorted && bsearch(d, m->live->d, m->sorted, sizeof *d, cmp_digest))
		return 1;
	for (size_t i = m->sorted; i < m->live->n; i++)
		if (!memcmp(&m->live->d[i], d, sizeof *d))
			return 1;
	return 0;
}

static int chain_mark(const ib_digest *needed, void *payload)
{
	chain_marks *m = payload;
	return chain_has(m, needed) ? 0 : set_add(m->live, needed);
}

static int mark_chains(digest_set *live, ib_store *s)
{
	DIR *d;
	if (open_sub(&d, s, "layers") < 0)
		return IB_ERROR;
	if (!d)
		return 0; /* none yet */
	digest_set records = { NULL, 0, 0 };
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		ib_digest dg;
		if (record_name(&dg, de->d_name))
			rc = set_add(&records, &dg);
	}
	closedir(d);
	chain_marks m = { live, live->n };
	/* until no live record is left to follow: each pass follows the records that became live */
	int more = 1;
	while (rc == 0 && more) {
		more = 0;
		for (size_t i = 0; rc == 0 && i < records.n; i++) {
			if (!chain_has(&m, &records.d[i]))
				continue;
			ib_digest r = records.d[i];
			records.d[i] = records.d[--records.n]; /* followed once */
			i--;
			more = 1;
			if ((rc = ib_store__layer_source_needs(s, &r, chain_mark, &m)) > 0)
				rc = 0;
		}
	}
	free(records.d);
	if (rc == 0 && live->n != m.sorted)
		qsort(live->d, live->n, sizeof *live->d, cmp_digest);
	return rc;
}

static int mark_all(digest_set *live, ib_store *s)
{
	json_t *index;
	int rc = ib_store__index_read(&index, s);
	if (rc < 0)
		return rc;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(index, "manifests"), i, e) {
		ib_digest d;
		if ((rc = ib_store__descriptor(NULL, &d, NULL, e, "index.json")) < 0 || (rc = mark_manifest(live, s, &d, 0)) < 0)
			break;
	}
	json_decref(index);
	if (rc < 0 || (rc = mark_cache(live, s)) < 0)
		return rc;
	ib_container_record **list;
	size_t n;
	if ((rc = ib_store__container_records(&list, &n, s)) < 0)
		return rc;
	for (i = 0; i < n && rc == 0; i++)
		rc = mark_config(live, s, &list[i]->image_id);
	ib_store__container_records_free(list, n);
	if (rc == 0 && live->n)
		qsort(live->d, live->n, sizeof *live->d, cmp_digest);
	if (rc == 0)
		rc = mark_chains(live, s);
	if (rc == 0)
		rc = mark_variants(live, s);
	return rc;
}

static int sweep_blobs(ib_store_gc_stats *st, ib_store *s, const digest_set *live)
{
	DIR *d = opendir(s->blobs);
	if (!d)
		return ib_error_set_os(IB_LAYER_STORE, "open `%s`", s->blobs);
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		ib_digest dg;
		char ds[IB_DIGEST_STRLEN];
		snprintf(ds, sizeof ds, "sha256:%.64s", de->d_name);
		if (!is_hex64(de->d_name) || ib_digest_parse(&dg, ds) < 0) {
			ib_error_clear();
			continue; /* not ours: leave it for fsck to report */
		}
		if (set_has(live, &dg))
			continue;
		struct stat sb;
		uint64_t size = fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 ? (uint64_t)sb.st_size : 0;
		ib_store__hook("gc-delete");
		if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
			rc = ib_error_set_os(IB_LAYER_STORE, "remove blob `%s/%s`", s->blobs, de->d_name);
			break;
		}
		st->blobs_removed++;
		st->bytes_freed += size;
	}
	closedir(d);
	return rc;
}

/*
 * Records of layers kept only unpacked (regen.c, `sub` "layers") and of
 * remote layers (remote.c, "remote") go with the blob they stand for; a
 * remote record also goes once the store holds its layer.
 */
static int sweep_layer_sources(ib_store_gc_stats *st, ib_store *s, const digest_set *live, const char *sub)
{
	int remote = !strcmp(sub, "remote");
	char *dir = ib_store__path(s, sub);
	DIR *d = dir ? opendir(dir) : NULL;
	int rc = dir ? 0 : IB_ERROR;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		ib_digest dg;
		if (!record_name(&dg, de->d_name))
			continue;
		if (set_has(live, &dg) && (!remote || ib_store__blob_local_has(s, &dg) != 1))
			continue;
		ib_error_clear();
		uint64_t size = 0;
		if (!remote && ib_store__layer_source_size(&size, s, &dg) < 0)
			ib_error_clear();
		ib_store__hook("gc-delete");
		if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
			rc = ib_error_set_os(IB_LAYER_STORE, "remove `%s/%s`", dir, de->d_name);
			break;
		}
		st->blobs_removed++;
		(void)size; /* the bytes are the unpacked layer's: the snapshot prune frees them */
	}
	if (d)
		closedir(d);
	free(dir);
	return rc;
}

/* Temporary files of writers that died: under the exclusive lock, nobody else is writing. */
static void sweep_tmp(ib_store *s)
{
	DIR *d = opendir(s->tmp);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			char *p = ib_sprintf("%s/%s", s->tmp, de->d_name);
			if (p)
				ib_rm_rf(p);
			free(p);
		}
		closedir(d);
	}
	const char *dirs[] = { "", "cache" };
	for (size_t i = 0; i < 2; i++) {
		char *dp = ib_store__path(s, dirs[i]);
		DIR *dd = dp ? opendir(dp) : NULL;
		struct dirent *de;
		while (dd && (de = readdir(dd)) != NULL)
			if (strstr(de->d_name, ".tmp-"))
				unlinkat(dirfd(dd), de->d_name, 0);
		if (dd)
			closedir(dd);
		free(dp);
	}
	ib_error_clear();
}

int ib_store_gc(ib_store_gc_stats *stats, ib_store *s, const ib_store_gc_options *opts)
{
	if (opts && opts->version != IB_STORE_GC_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_store_gc_options version %u is not supported",
				     opts->version);
	if (stats && stats->version != IB_STORE_GC_STATS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_store_gc_stats version %u is not supported",
				     stats->version);
	if (s->leases)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "gc: this store handle holds a lease; release it first");
	ib_store_gc_stats st = IB_STORE_GC_STATS_INIT;
	int rc = 0;
	if (opts && opts->prune_dangling && (rc = ib_store__prune_dangling(s, &st.images_removed)) < 0)
		return rc;
	char *lp = ib_store__path(s, "gc.lock");
	if (!lp)
		return IB_ERROR;
	ib_lock lk = IB_LOCK_INIT;
	rc = ib_lock_acquire(&lk, lp, IB_LOCK_EXCLUSIVE | (opts && opts->nowait ? IB_LOCK_NOWAIT : 0));
	free(lp);
	if (rc < 0) {
		ib_error_prefix("gc");
		return rc;
	}
	ib_store__hook("gc-locked");
	digest_set live = { NULL, 0, 0 };
	if ((rc = mark_all(&live, s)) < 0) {
		ib_error_prefix("gc: nothing was removed");
	} else {
		ib_store__hook("gc-scanned");
		if ((rc = sweep_blobs(&st, s, &live)) == 0 && (rc = sweep_layer_sources(&st, s, &live, "layers")) == 0 &&
		    (rc = sweep_layer_sources(&st, s, &live, "remote")) == 0)
			sweep_tmp(s);
	}
	free(live.d);
	ib_lock_release(&lk);
	ib_store__hook("gc-done");
	if (stats)
		*stats = st;
	return rc;
}

/* ---- fsck ---- */

typedef struct {
	ib_buf *report;
	int problems;
	char *first;
} fsck_state;

static void problem(fsck_state *f, const char *fmt, const char *a, const char *b)
{
	char *msg = ib_sprintf(fmt, a, b ? b : "");
	if (!msg)
		return;
	if (f->report) {
		ib_buf_puts(f->report, msg);
		ib_buf_putc(f->report, '\n');
	}
	if (!f->first)
		f->first = msg;
	else
		free(msg);
	f->problems++;
}

static void fsck_blob_present(fsck_state *f, ib_store *s, const ib_digest *d, uint64_t size, int check_size,
			      const char *what)
{
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, d);
	uint64_t real;
	if (ib_store_blob_size(&real, s, d) < 0) {
		ib_error_clear();
		problem(f, "%s: blob %s is missing", what, ds);
	} else if (check_size && real != size) {
		problem(f, "%s: blob %s has a size other than its descriptor's", what, ds);
	}
}

static void fsck_config(fsck_state *f, ib_store *s, const ib_digest *d, const char *what)
{
	json_t *j;
	if (ib_store_blob_has(s, d) != 1)
		return;
	if (ib_store__blob_json(&j, s, d, "image config") < 0) {
		problem(f, "%s: %s", what, ib_error_last()->message);
		ib_error_clear();
		return;
	}
	if (!json_is_object(j))
		problem(f, "%s: image config is not an object%s", what, NULL);
	json_decref(j);
}

static void fsck_manifest(fsck_state *f, ib_store *s, const ib_digest *d, int depth)
{
	char ds[IB_DIGEST_STRLEN], what[IB_DIGEST_STRLEN + 16];
	ib_digest_fmt(ds, d);
	snprintf(what, sizeof what, "manifest %s", ds);
	json_t *m;
	if (ib_store_blob_has(s, d) != 1 || depth > 4)
		return;
	if (ib_store__blob_json(&m, s, d, "manifest") < 0) {
		problem(f, "%s%s", ib_error_last()->message, NULL);
		ib_error_clear();
		return;
	}
	size_t i;
	json_t *e;
	ib_digest cd;
	uint64_t size;
	json_array_foreach(json_object_get(m, "manifests"), i, e) {
		/* children of an index may be absent (a one-platform pull) */
		if (ib_store__descriptor(NULL, &cd, &size, e, what) < 0) {
			problem(f, "%s%s", ib_error_last()->message, NULL);
			ib_error_clear();
			continue;
		}
		if (ib_store_blob_has(s, &cd) == 1) {
			fsck_blob_present(f, s, &cd, size, 1, what);
			fsck_manifest(f, s, &cd, depth + 1);
		}
	}
	json_t *cfg = json_object_get(m, "config");
	if (cfg) {
		if (ib_store__descriptor(NULL, &cd, &size, cfg, what) < 0) {
			problem(f, "%s%s", ib_error_last()->message, NULL);
			ib_error_clear();
		} else {
			fsck_blob_present(f, s, &cd, size, 1, what);
			fsck_config(f, s, &cd, what);
		}
		json_array_foreach(json_object_get(m, "layers"), i, e) {
			if (ib_store__descriptor(NULL, &cd, &size, e, what) < 0) {
				problem(f, "%s%s", ib_error_last()->message, NULL);
				ib_error_clear();
				continue;
			}
			fsck_blob_present(f, s, &cd, size, 1, what);
		}
	}
	json_decref(m);
}

static void fsck_blobs(fsck_state *f, ib_store *s)
{
	DIR *d = opendir(s->blobs);
	if (!d) {
		problem(f, "cannot open `%s`%s", s->blobs, NULL);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *p = ib_sprintf("%s/%s", s->blobs, de->d_name);
		if (!p)
			break;
		ib_digest want, got;
		char ds[IB_DIGEST_STRLEN];
		snprintf(ds, sizeof ds, "sha256:%.64s", de->d_name);
		if (!is_hex64(de->d_name) || ib_digest_parse(&want, ds) < 0) {
			ib_error_clear();
			problem(f, "`%s`: not a blob name (64 hex digits)%s", p, NULL);
		} else if (ib_sha256_file(&got, p, NULL) < 0) {
			problem(f, "%s%s", ib_error_last()->message, NULL);
			ib_error_clear();
		} else if (!ib_digest_equal(&want, &got)) {
			problem(f, "blob %s is corrupt: its content does not match its digest%s", ds, NULL);
		}
		free(p);
	}
	closedir(d);
}

/* Layers kept only unpacked: regenerated and checked, as fsck_blobs hashes every blob. */
static void fsck_layer_sources(fsck_state *f, ib_store *s)
{
	char *dir = ib_store__path(s, "layers");
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		ib_digest dg;
		if (de->d_name[0] == '.')
			continue;
		if (!record_name(&dg, de->d_name)) {
			problem(f, "`%s/%s`: not a layer source record (<64 hex digits>.json)", dir, de->d_name);
			continue;
		}
		if (ib_store__layer_source_check(s, &dg) < 0) {
			problem(f, "%s%s", ib_error_last()->message, NULL);
			ib_error_clear();
		}
	}
	if (d)
		closedir(d);
	free(dir);
}

/*
 * Remote layers: each record well formed (its content is not fetched: a
 * remote layer is checked when it is fetched). An image whose layers are
 * remote is complete.
 */
static void fsck_remote(fsck_state *f, ib_store *s)
{
	char *dir = ib_store__path(s, "remote");
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		ib_digest dg;
		if (de->d_name[0] == '.' || !strncmp(de->d_name, "untrusted-", 10))
			continue;
		if (!record_name(&dg, de->d_name)) {
			problem(f, "`%s/%s`: not a remote layer record (<64 hex digits>.json)", dir, de->d_name);
			continue;
		}
		if (ib_store__remote_read(NULL, s, &dg) < 0) {
			problem(f, "%s%s", ib_error_last()->message, NULL);
			ib_error_clear();
		}
	}
	if (d)
		closedir(d);
	free(dir);
}

static void fsck_variants(fsck_state *f, ib_store *s, int full)
{
	char *dir = ib_store__path(s, "variants");
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		char ds[IB_DIGEST_STRLEN];
		ib_digest diff;
		snprintf(ds, sizeof ds, "sha256:%.64s", de->d_name);
		if (strlen(de->d_name) != 69 || ib_digest_parse(&diff, ds) < 0) {
			ib_error_clear();
			continue;
		}
		json_t *j;
		if (ib_store__variants_read(&j, s, &diff) < 0) {
			problem(f, "%s%s", ib_error_last()->message, NULL);
			ib_error_clear();
			continue;
		}
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(j, "variants"), i, e) {
			if (ib_store__variant_check(s, &diff, e, full) < 0) {
				problem(f, "%s%s", ib_error_last()->message, NULL);
				ib_error_clear();
			}
		}
		json_decref(j);
	}
	if (d)
		closedir(d);
	free(dir);
}

int ib_store_fsck(ib_buf *report, ib_store *s)
{
	return ib_store_fsck_ext(report, s, NULL);
}

int ib_store_fsck_ext(ib_buf *report, ib_store *s, const ib_store_fsck_options *opts)
{
	static const ib_store_fsck_options defaults = IB_STORE_FSCK_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	if (opts->version != IB_STORE_FSCK_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "fsck options: unknown version %u", opts->version);
	if (report)
		ib_buf_clear(report);
	fsck_state f = { report, 0, NULL };
	json_t *index;
	if (ib_store__index_read(&index, s) < 0) {
		problem(&f, "%s%s", ib_error_last()->message, NULL);
		ib_error_clear();
	} else {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(index, "manifests"), i, e) {
			ib_digest d;
			uint64_t size;
			if (ib_store__descriptor(NULL, &d, &size, e, "index.json") < 0) {
				problem(&f, "%s%s", ib_error_last()->message, NULL);
				ib_error_clear();
				continue;
			}
			fsck_blob_present(&f, s, &d, size, 1, "index.json");
			fsck_manifest(&f, s, &d, 0);
		}
		json_decref(index);
	}
	/* cache entries and container records */
	char *dir = ib_store__path(s, "cache");
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != 69 || strcmp(de->d_name + 64, ".json"))
			continue;
		char key[65];
		memcpy(key, de->d_name, 64);
		key[64] = 0;
		ib_digest l, c;
		int hl = 0;
		if (ib_store__cache_read(&l, &hl, &c, s, key) < 0) {
			problem(&f, "%s%s", ib_error_last()->message, NULL);
			ib_error_clear();
			continue;
		}
		fsck_blob_present(&f, s, &c, 0, 0, "cache entry");
		if (hl)
			fsck_blob_present(&f, s, &l, 0, 0, "cache entry");
	}
	if (d)
		closedir(d);
	free(dir);
	ib_container_record **list;
	size_t n;
	if (ib_store__container_records(&list, &n, s) == 0) {
		for (size_t i = 0; i < n; i++)
			fsck_blob_present(&f, s, &list[i]->image_id, 0, 0, "container record");
		ib_store__container_records_free(list, n);
	}
	ib_error_clear();
	fsck_variants(&f, s, opts->full);
	fsck_blobs(&f, s);
	fsck_layer_sources(&f, s);
	fsck_remote(&f, s);
	if (!f.problems)
		return 0;
	int rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "fsck: %d problem%s; the first: %s", f.problems,
			       f.problems > 1 ? "s" : "", f.first ? f.first : "?");
	free(f.first);
	return rc;
}
