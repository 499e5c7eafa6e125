/*
 * Remote layers: remote/<diff_id hex>.json records a layer the store knows
 * but does not hold (a build that took its steps from a registry cache):
 * {"size", "blob": {"digest", "size", "mediaType"}, "registry", "repository"}.
 * The layer is fetched when something opens it, through the fetcher the
 * push layer installs, and checked against the blob's digest and the
 * diff_id before it is stored (lib/store/README.md, "Remote layers").
 */
#include "store/internal.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static ib_store_remote_fetch_fn provider;

void ib_store_remote_fetch_provider(ib_store_remote_fetch_fn fn)
{
	__atomic_store_n(&provider, fn, __ATOMIC_RELEASE);
}

void ib_store_set_remote_fetcher(ib_store *s, ib_store_remote_fetch_fn fn, void *payload)
{
	if (!s)
		return;
	s->remote_fetch = fn;
	s->remote_payload = fn ? payload : NULL;
}

static char *record_path(ib_store *s, const ib_digest *d)
{
	char hex[IB_DIGEST_STRLEN];
	ib_digest_fmt(hex, d);
	return ib_sprintf("%s/remote/%s.json", s->root, hex + 7);
}

/*
 * A repository whose blob once failed its check: remote/untrusted-<sha256 of
 * "registry/repository">. Its remote records are dropped then, and no layer
 * of it is recorded as remote again: a build then fetches and checks every
 * layer it takes from there (the cache import refuses the artifact).
 */
static char *untrusted_path(ib_store *s, const char *registry, const char *repository)
{
	char *name = ib_sprintf("%s/%s", registry, repository);
	ib_digest d;
	char ds[IB_DIGEST_STRLEN];
	if (!name || ib_digest_of(&d, name, strlen(name)) < 0) {
		free(name);
		return NULL;
	}
	free(name);
	ib_digest_fmt(ds, &d);
	return ib_sprintf("%s/remote/untrusted-%s", s->root, ds + 7);
}

/* Untrust `registry/repository` and drop every remote record of it (a lease is held). */
static void untrust(ib_store *s, const char *registry, const char *repository)
{
	ib_error_saved err;
	ib_error_save(&err); /* the caller's error stays the one reported */
	char *mark = untrusted_path(s, registry, repository);
	if (mark)
		ib_atomic_write(mark, "", 0, 0644);
	ib_error_clear();
	free(mark);
	char *dir = ib_sprintf("%s/remote", s->root);
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		char ds[IB_DIGEST_STRLEN];
		ib_digest dg;
		ib_store_remote_layer r;
		if (strlen(de->d_name) != 69 || strcmp(de->d_name + 64, ".json"))
			continue;
		snprintf(ds, sizeof ds, "sha256:%.64s", de->d_name);
		if (ib_digest_parse(&dg, ds) < 0 || ib_store__remote_read(&r, s, &dg) != 1) {
			ib_error_clear();
			continue;
		}
		if (!strcmp(r.registry, registry) && !strcmp(r.repository, repository))
			unlinkat(dirfd(d), de->d_name, 0);
	}
	if (d)
		closedir(d);
	free(dir);
	ib_error_restore(&err);
}

int ib_store__remote_has(ib_store *s, const ib_digest *d)
{
	char *p = record_path(s, d);
	if (!p)
		return IB_ERROR;
	struct stat st;
	int rc = stat(p, &st) == 0 && S_ISREG(st.st_mode);
	free(p);
	return rc;
}

/* A blob file, or a layer kept unpacked: what the store holds itself. */
int ib_store__blob_local_has(ib_store *s, const ib_digest *d)
{
	char *p = ib_store__blob_path(s, d);
	if (!p)
		return IB_ERROR;
	struct stat st;
	int rc = stat(p, &st) == 0 && S_ISREG(st.st_mode);
	free(p);
	return rc ? rc : ib_store_layer_source_has(s, d);
}

static int copy_field(char *dst, size_t cap, const char *v, const char *what, const char *p)
{
	if (!v || !*v || strlen(v) >= cap || strchr(v, '\n'))
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: not a remote layer record (%s)", p, what);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* The record of `d`: 1 and its fields, 0 when there is none, < 0 on a damaged record. */
int ib_store__remote_read(ib_store_remote_layer *out, ib_store *s, const ib_digest *d)
{
	char *p = record_path(s, d);
	if (!p)
		return IB_ERROR;
	ib_buf b = IB_BUF_INIT;
	json_t *j = NULL;
	struct stat st;
	int rc = 0;
	ib_store_remote_layer r;
	memset(&r, 0, sizeof r);
	if (stat(p, &st) < 0 && errno == ENOENT)
		goto out;
	if ((rc = ib_read_file(&b, p)) < 0 || (rc = ib_json_loadb(&j, b.ptr, b.size, p)) < 0)
		goto out;
	json_t *js = json_object_get(j, "size"), *blob = json_object_get(j, "blob");
	json_t *bs = json_object_get(blob, "size");
	const char *bd = ib_json_str(blob, "digest");
	if (!json_is_integer(js) || json_integer_value(js) < 0 || !json_is_integer(bs) || json_integer_value(bs) < 0 ||
	    !bd || ib_digest_parse(&r.blob, bd) < 0) {
		ib_error_clear();
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: not a remote layer record (size, blob)", p);
		goto out;
	}
	r.diff_id = *d;
	r.size = (uint64_t)json_integer_value(js);
	r.blob_size = (uint64_t)json_integer_value(bs);
	if ((rc = copy_field(r.media_type, sizeof r.media_type, ib_json_str(blob, "mediaType"), "mediaType", p)) < 0 ||
	    (rc = copy_field(r.registry, sizeof r.registry, ib_json_str(j, "registry"), "registry", p)) < 0 ||
	    (rc = copy_field(r.repository, sizeof r.repository, ib_json_str(j, "repository"), "repository", p)) < 0)
		goto out;
	if (!ib_store__layer_is_compressed(r.media_type)) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: not a remote layer record (media type `%s`)", p,
				   r.media_type);
		goto out;
	}
	if (out)
		*out = r;
	rc = 1;
out:
	json_decref(j);
	ib_buf_dispose(&b);
	free(p);
	return rc;
}

int ib_store_remote_layer_get(ib_store_remote_layer *out, ib_store *s, const ib_digest *diff_id)
{
	if (!s || !diff_id)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "remote layer: no store or digest");
	if (ib_store__blob_local_has(s, diff_id) == 1)
		return IB_ENOTFOUND;
	int rc = ib_store__remote_read(out, s, diff_id);
	return rc == 1 ? 0 : rc == 0 ? IB_ENOTFOUND : rc;
}

int ib_store_remote_layer_put(ib_store *s, const ib_store_remote_layer *l)
{
	if (!s || !l)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "remote layer: no store or layer");
	char ds[IB_DIGEST_STRLEN], bs[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, &l->diff_id);
	ib_digest_fmt(bs, &l->blob);
	if (!memchr(l->media_type, 0, sizeof l->media_type) || !memchr(l->registry, 0, sizeof l->registry) ||
	    !memchr(l->repository, 0, sizeof l->repository) || !*l->registry || !*l->repository ||
	    strchr(l->registry, '/') || !ib_store__layer_is_compressed(l->media_type))
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "remote layer %s: a malformed record", ds);
	int rc = ib_store__lease(s);
	if (rc < 0)
		return rc;
	char *dir = ib_sprintf("%s/remote", s->root), *p = record_path(s, &l->diff_id);
	json_t *j = json_pack("{s:I,s:{s:s,s:I,s:s},s:s,s:s}", "size", (json_int_t)l->size, "blob", "digest", bs, "size",
			      (json_int_t)l->blob_size, "mediaType", l->media_type, "registry", l->registry,
			      "repository", l->repository);
	ib_buf b = IB_BUF_INIT;
	if (!dir || !p || !j) {
		rc = IB_ERROR;
		goto out;
	}
	if (ib_store_blob_has(s, &l->diff_id) == 1)
		goto out; /* held, or recorded, already */
	ib_error_clear();
	char *mark = untrusted_path(s, l->registry, l->repository);
	struct stat st;
	if (!mark)
		rc = IB_ERROR;
	else if (stat(mark, &st) == 0)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE,
				   "remote layer %s: a blob of %s/%s failed its check before: its layers are fetched and "
				   "checked at once", ds, l->registry, l->repository);
	free(mark);
	if (rc < 0)
		goto out;
	if ((rc = ib_mkdir_p(dir, 0700)) == 0 && (rc = ib_json_dump(&b, j, IB_JSON_SORTED)) == 0)
		rc = ib_atomic_write(p, b.ptr, b.size, 0644);
	if (rc < 0)
		ib_error_prefix("record remote layer %s", ds);
out:
	ib_buf_dispose(&b);
	json_decref(j);
	free(dir);
	free(p);
	ib_store__unlease(s);
	return rc;
}

/* Drop the record of a layer the store now holds (a lease is held). */
static void drop_record(ib_store *s, const ib_digest *d)
{
	char *p = record_path(s, d);
	if (p)
		unlink(p);
	free(p);
}

int ib_store_remote_layer_fetch(ib_store *s, const ib_digest *diff_id)
{
	if (!s || !diff_id)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "remote layer: no store or digest");
	char ds[IB_DIGEST_STRLEN], bs[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, diff_id);
	int rc = ib_store__lease(s);
	if (rc < 0)
		return rc;
	ib_store_remote_layer r;
	if (ib_store__blob_local_has(s, diff_id) == 1) {
		drop_record(s, diff_id);
		ib_store__unlease(s);
		return 0;
	}
	rc = ib_store__remote_read(&r, s, diff_id);
	if (rc <= 0) {
		ib_store__unlease(s);
		return rc < 0 ? rc : ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "blob %s not found in the store", ds);
	}
	ib_digest_fmt(bs, &r.blob);
	ib_store_remote_fetch_fn fn = s->remote_fetch ? s->remote_fetch : __atomic_load_n(&provider, __ATOMIC_ACQUIRE);
	void *payload = s->remote_fetch ? s->remote_payload : NULL;
	int had_blob = ib_store__blob_local_has(s, &r.blob) == 1;
	if (!fn)
		rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_STORE, "nothing here can fetch remote layers (no push layer)");
	else
		rc = fn(s, &r, payload);
	uint64_t got = 0;
	if (rc == 0 && ib_store__blob_local_has(s, diff_id) != 1)
		rc = ib_error_setc(IB_ERROR, IB_LAYER_STORE, "the fetcher did not store it");
	if (rc == 0 && (rc = ib_store_blob_size(&got, s, diff_id)) == 0 && got != r.size)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "the layer is %llu bytes, its record said %llu",
				   (unsigned long long)got, (unsigned long long)r.size);
	if (rc == 0) {
		drop_record(s, diff_id);
	} else {
		if (!had_blob) {
			/* nothing of a fetch that failed stays: not the compressed blob it may have written */
			char *p = ib_store__blob_path(s, &r.blob);
			if (p)
				unlink(p);
			free(p);
		}
		if (rc == IB_EINVALID) {
			/* not what its record says: no record of that repository is trusted any more */
			untrust(s, r.registry, r.repository);
			ib_error_prefix("fetch layer %s (blob %s from %s/%s; nothing stored, and the remote layers "
					"recorded from there are dropped: build again to fetch and check them at once)",
					ds, bs, r.registry, r.repository);
		} else if (rc != IB_EUSER) {
			ib_error_prefix("fetch layer %s (blob %s from %s/%s)", ds, bs, r.registry, r.repository);
		}
	}
	ib_store__unlease(s);
	return rc;
}

int ib_store__remote_open(int *fd_out, ib_store *s, const ib_digest *d)
{
	int rc = ib_store_remote_layer_fetch(s, d);
	if (rc < 0)
		return rc;
	char *p = ib_store__blob_path(s, d);
	if (!p)
		return IB_ERROR;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		*fd_out = fd;
	else if (errno == ENOENT)
		rc = ib_store__layer_source_open(fd_out, s, d);
	else
		rc = ib_error_set_os(IB_LAYER_STORE, "open `%s`", p);
	free(p);
	return rc;
}
