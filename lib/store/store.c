/* Opening a store, its paths, leases, index.json, test hooks, timestamps. */
#include "store/internal.h"
#include "util/fs.h"
#include "util/rootless.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static ib_store__hook_fn store_hook;
static void *store_hook_payload;

void ib_store__set_hook(ib_store__hook_fn hook, void *payload)
{
	store_hook = hook;
	store_hook_payload = payload;
}

void ib_store__hook(const char *point)
{
	if (store_hook)
		store_hook(point, store_hook_payload);
}

char *ib_store__path(const ib_store *s, const char *rel)
{
	return ib_sprintf("%s/%s", s->root, rel);
}

char *ib_store__blob_path(const ib_store *s, const ib_digest *d)
{
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, d);
	return ib_sprintf("%s/%s", s->blobs, hex);
}

static int default_root(ib_buf *out)
{
	const char *env = getenv("IMAGEBUILD_ROOT");
	if (env && *env)
		return ib_buf_puts(out, env);
	/* root's store, unless root only of the namespace ib_rootless_enter made (podman's choice) */
	if (geteuid() == 0 && !ib_rootless__host_ids(NULL, NULL))
		return ib_buf_puts(out, "/var/lib/imagebuild");
	const char *xdg = getenv("XDG_DATA_HOME");
	if (xdg && *xdg)
		return ib_buf_printf(out, "%s/imagebuild", xdg);
	const char *home = getenv("HOME");
	if (!home || !*home)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE,
				     "no store root: set IMAGEBUILD_ROOT, XDG_DATA_HOME or HOME");
	return ib_buf_printf(out, "%s/.local/share/imagebuild", home);
}

/*
 * The root is 0700: blobs hold every file of every image (an image's 0600
 * file included), so no other local user may reach them. A new root is made
 * so; an existing one we own loses its group and other bits (a store made
 * before this was 0755). Its parents are made 0755 when missing.
 */
static int private_root(const char *root)
{
	struct stat st;
	if (lstat(root, &st) < 0) {
		if (errno != ENOENT)
			return ib_error_set_os(IB_LAYER_STORE, "stat `%s`", root);
		char *parent = ib_strdup(root);
		if (!parent)
			return IB_ERROR;
		char *slash = strrchr(parent, '/');
		int rc = 0;
		if (slash && slash != parent) {
			*slash = '\0';
			rc = ib_mkdir_p(parent, 0755);
		}
		free(parent);
		if (rc < 0)
			return rc;
		if (mkdir(root, 0700) < 0 && errno != EEXIST)
			return ib_error_set_os(IB_LAYER_STORE, "mkdir `%s`", root);
	}
	if (stat(root, &st) < 0)
		return ib_error_set_os(IB_LAYER_STORE, "stat `%s`", root);
	if (!S_ISDIR(st.st_mode))
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s` is not a directory", root);
	if ((st.st_mode & 077) && st.st_uid == geteuid() && chmod(root, st.st_mode & 07700) < 0)
		return ib_error_set_os(IB_LAYER_STORE, "make `%s` private (chmod 0700)", root);
	return 0;
}

static int ensure_layout(ib_store *s)
{
	int rc = 0;
	char *layout = ib_store__path(s, "oci-layout");
	char *index = ib_store__path(s, "index.json");
	if (!layout || !index) {
		rc = IB_ERROR;
		goto out;
	}
	if ((rc = private_root(s->root)) < 0 || (rc = ib_mkdir_p(s->blobs, 0755)) < 0 ||
	    (rc = ib_mkdir_p(s->tmp, 0700)) < 0)
		goto out;
	if (!ib_path_exists(layout)) {
		const char *text = "{\"imageLayoutVersion\":\"1.0.0\"}";
		if ((rc = ib_atomic_write(layout, text, strlen(text), 0644)) < 0)
			goto out;
	} else {
		json_t *j = NULL;
		if ((rc = ib_json_load_file(&j, layout)) < 0)
			goto out;
		const char *v = ib_json_str(j, "imageLayoutVersion");
		if (!v || strncmp(v, "1.", 2) != 0)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: unsupported imageLayoutVersion", layout);
		json_decref(j);
		if (rc < 0)
			goto out;
	}
	if (!ib_path_exists(index)) {
		ib_lock lk = IB_LOCK_INIT;
		if ((rc = ib_store__index_lock(&lk, s)) < 0)
			goto out;
		if (!ib_path_exists(index)) {
			const char *text = "{\"schemaVersion\":2,\"mediaType\":\"" IB_MEDIA_TYPE_OCI_INDEX
					   "\",\"manifests\":[]}";
			rc = ib_atomic_write(index, text, strlen(text), 0644);
		}
		ib_lock_release(&lk);
	}
out:
	free(layout);
	free(index);
	return rc;
}

int ib_store_open(ib_store **out, const char *root, const ib_store_options *opts)
{
	if (opts && opts->version != IB_STORE_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_store_options version %u is not supported",
				     opts->version);
	/* a non-root caller becomes root of its own user namespace first (docs/rootless.md) */
	if (geteuid() != 0 && ib_rootless_enter() < 0) {
		ib_error_prefix("open store");
		return ib_error_current();
	}
	ib_buf r = IB_BUF_INIT;
	int rc = root && *root ? ib_buf_puts(&r, root) : default_root(&r);
	if (rc < 0)
		return rc;
	while (r.size > 1 && r.ptr[r.size - 1] == '/')
		ib_buf_truncate(&r, r.size - 1);
	ib_store *s = ib_calloc(1, sizeof *s);
	if (!s) {
		ib_buf_dispose(&r);
		return IB_ERROR;
	}
	s->lease.fd = -1;
	pthread_mutex_init(&s->cache_mu, NULL);
	s->root = ib_buf_detach(&r);
	s->blobs = s->root ? ib_store__path(s, "blobs/sha256") : NULL;
	s->tmp = s->root ? ib_store__path(s, "tmp") : NULL;
	if (!s->root || !s->blobs || !s->tmp || (rc = ensure_layout(s)) < 0) {
		if (rc == 0)
			rc = IB_ERROR;
		ib_error_prefix("open store `%s`", s->root ? s->root : "?");
		ib_store_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void ib_store_free(ib_store *s)
{
	if (!s)
		return;
	ib_lock_release(&s->lease);
	json_decref(s->index_cache);
	ib_store__memo_free(s->memo_cache);
	ib_store__names_free(s->names_cache);
	pthread_mutex_destroy(&s->cache_mu);
	free(s->root);
	free(s->blobs);
	free(s->tmp);
	free(s);
}

const char *ib_store_root(const ib_store *s)
{
	return s->root;
}

/* ---- leases ---- */

int ib_store__lease(ib_store *s)
{
	if (s->leases++ > 0)
		return 0;
	char *p = ib_store__path(s, "gc.lock");
	int rc = p ? ib_lock_acquire(&s->lease, p, IB_LOCK_SHARED) : IB_ERROR;
	free(p);
	if (rc < 0) {
		s->leases = 0;
		return rc;
	}
	ib_store__hook("lease");
	return 0;
}

void ib_store__unlease(ib_store *s)
{
	if (s->leases == 0)
		return;
	if (--s->leases == 0) {
		ib_store__hook("unlease");
		ib_lock_release(&s->lease);
	}
}

int ib_store_lease_acquire(ib_store *s)
{
	return ib_store__lease(s);
}

void ib_store_lease_release(ib_store *s)
{
	ib_store__unlease(s);
}

/* ---- index.json ---- */

/*
 * index.json as this handle read it last, when it is the same file: same
 * device, inode, size, mtime and ctime (to the nanosecond), and older than a
 * second, so that a replacement cannot share its timestamps (git's "racily
 * clean" rule; ctime cannot be set by a user). A second open of the store
 * in one process (a build's lookups, commit and tag) then parses it once.
 */
#define INDEX_RACY_NS 1000000000LL

/* the index's identity and age: util/fs.h */
static int settled(const struct stat *st)
{
	return ib_stat_settled(st, INDEX_RACY_NS);
}

/*
 * index.json parsed, shared: the handle's cached object (a new reference) when
 * the file's identity still holds, else parsed and validated and, once
 * settled, kept as the cache. Never modified: callers that change the index
 * take ib_store__index_read's private copy.
 */
int ib_store__index_read_shared(json_t **out, ib_store *s)
{
	return ib_store__index_read_shared_key(out, NULL, s);
}

/* `fresh` (may be NULL): set to 1 when *out is a new parse the cache does not share (then not kept) */
static int index_read(json_t **out, ib_digest *key, ib_store *s, int *fresh)
{
	char *p = ib_store__path(s, "index.json");
	if (!p)
		return IB_ERROR;
	struct stat st;
	int have_st = stat(p, &st) == 0 && settled(&st);
	if (have_st) {
		json_t *keep = NULL;
		pthread_mutex_lock(&s->cache_mu);
		if (s->index_cache && ib_stat_same(&s->index_st, &st)) {
			keep = json_incref(s->index_cache);
			if (key)
				*key = s->index_key;
		}
		pthread_mutex_unlock(&s->cache_mu);
		if (keep) {
			free(p);
			*out = keep;
			return 0;
		}
	}
	json_t *j = NULL;
	ib_buf b = IB_BUF_INIT;
	ib_digest k;
	/* the bytes parsed are the bytes hashed: the key of the names file made from this parse */
	int rc = ib_read_file(&b, p);
	if (rc == 0 && (rc = ib_digest_of(&k, b.size ? b.ptr : "", b.size)) == 0)
		rc = ib_json_loadb(&j, ib_buf_cstr(&b), b.size, p);
	ib_buf_dispose(&b);
	if (rc == 0) {
		json_t *m = json_object_get(j, "manifests");
		if (!json_is_object(j) || !json_is_array(m)) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE,
					   "`%s`: not an OCI image index (no \"manifests\" array)", p);
		} else {
			size_t i;
			json_t *e;
			json_array_foreach(m, i, e) {
				ib_digest d;
				const char *mt;
				uint64_t size;
				char what[64];
				snprintf(what, sizeof what, "manifests[%zu]", i);
				if ((rc = ib_store__descriptor(&mt, &d, &size, e, what)) < 0) {
					ib_error_prefix("`%s`", p);
					break;
				}
			}
		}
		if (rc < 0) {
			json_decref(j);
		} else {
			*out = j;
			if (key)
				*key = k;
			if (fresh)
				*fresh = 1;
			else if (have_st) {
				pthread_mutex_lock(&s->cache_mu);
				json_decref(s->index_cache);
				s->index_cache = json_incref(j);
				s->index_st = st;
				s->index_key = k;
				pthread_mutex_unlock(&s->cache_mu);
			}
		}
	} else {
		ib_error_prefix("store index");
	}
	free(p);
	return rc;
}

/*
 * The sha256 of index.json's bytes: read (mapped) and hashed, except that a
 * handle reuses the hash it made while the file keeps the stat(2) identity
 * it had and is older than the racy window (the rule of the parse cache
 * above: a replacement cannot share that identity).
 */
int ib_store__index_key(ib_digest *key, ib_store *s)
{
	char *p = ib_store__path(s, "index.json");
	if (!p)
		return IB_ERROR;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int rc = 0;
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = ib_error_set_os(IB_LAYER_STORE, "open `%s`", p);
		goto out;
	}
	int settle = settled(&st);
	if (settle) {
		int hit = 0;
		pthread_mutex_lock(&s->cache_mu);
		if (s->key_known && ib_stat_same(&s->key_st, &st)) {
			*key = s->key_cache;
			hit = 1;
		}
		pthread_mutex_unlock(&s->cache_mu);
		if (hit)
			goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)IB_STORE_MAX_JSON) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: not a regular file of at most %u bytes", p,
				   IB_STORE_MAX_JSON);
		goto out;
	}
	if (st.st_size < (off_t)(64u << 10)) { /* small: read (a mapping costs more than it saves) */
		ib_buf b = IB_BUF_INIT;
		rc = ib_read_file(&b, p);
		if (rc == 0)
			rc = ib_digest_of(key, b.size ? b.ptr : "", b.size);
		ib_buf_dispose(&b);
	} else {
		void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
		if (map == MAP_FAILED) {
			rc = ib_error_set_os(IB_LAYER_STORE, "map `%s`", p);
			goto out;
		}
		rc = ib_digest_of(key, map, (size_t)st.st_size);
		munmap(map, (size_t)st.st_size);
	}
	if (rc == 0 && settle) {
		pthread_mutex_lock(&s->cache_mu);
		s->key_cache = *key;
		s->key_st = st;
		s->key_known = 1;
		pthread_mutex_unlock(&s->cache_mu);
	}
out:
	if (fd >= 0)
		close(fd);
	free(p);
	return rc;
}

int ib_store__index_read_shared_key(json_t **out, ib_digest *key, ib_store *s)
{
	return index_read(out, key, s, NULL);
}

int ib_store__index_read_change(json_t **out, int *fresh, ib_store *s)
{
	*fresh = 0;
	return index_read(out, NULL, s, fresh);
}

int ib_store__index_read(json_t **out, ib_store *s)
{
	json_t *shared = NULL;
	int rc = ib_store__index_read_shared(&shared, s);
	if (rc < 0)
		return rc;
	*out = json_deep_copy(shared);
	json_decref(shared);
	return *out ? 0 : ib_error_oom();
}

int ib_store__index_lock(ib_lock *lock, ib_store *s)
{
	char *p = ib_store__path(s, "index.lock");
	int rc = p ? ib_lock_acquire(lock, p, IB_LOCK_EXCLUSIVE) : IB_ERROR;
	free(p);
	if (rc == 0)
		ib_store__hook("index-locked");
	return rc;
}

int ib_store__index_write(ib_store *s, json_t *index)
{
	return ib_store__index_write_key(s, index, NULL);
}

int ib_store__index_write_bytes(ib_store *s, const ib_buf *b, ib_digest *key)
{
	char *p = ib_store__path(s, "index.json");
	int rc = p ? 0 : IB_ERROR;
	if (rc == 0 && key)
		rc = ib_digest_of(key, b->size ? b->ptr : "", b->size);
	if (rc == 0) {
		ib_store__hook("index-write");
		rc = ib_atomic_write(p, b->ptr, b->size, 0644);
	}
	if (rc == 0)
		ib_store__hook("index-written");
	free(p);
	return rc;
}

/*
 * jansson's compact dump, written out at the top level so that the bytes of
 * each entry of "manifests" are known: `{"key":value,...}` in the object's
 * order, each value dumped compact (tests/store/names.c compares this with
 * json_dumps for every index it writes).
 */
int ib_store__index_dump(ib_buf *out, const json_t *index, ib_store__index_span *span)
{
	if (span)
		memset(span, 0, sizeof *span);
	if (!json_is_object(index))
		return ib_json_dump(out, index, 0);
	const char *k;
	json_t *v;
	int rc = ib_buf_putc(out, '{'), first = 1;
	json_object_foreach((json_t *)index, k, v) {
		json_t *ks = json_string(k);
		if (rc == 0 && !ks)
			rc = ib_error_oom();
		if (rc == 0 && !first)
			rc = ib_buf_putc(out, ',');
		if (rc == 0)
			rc = ib_json_dump(out, ks, 0);
		json_decref(ks);
		if (rc == 0)
			rc = ib_buf_putc(out, ':');
		first = 0;
		if (rc < 0)
			break;
		if (!span || span->ok || strcmp(k, "manifests") || !json_is_array(v)) {
			rc = ib_json_dump(out, v, 0);
			continue;
		}
		size_t n = json_array_size(v);
		if (!(span->ranges = ib_calloc(2 * n + 1, sizeof *span->ranges)))
			rc = IB_ERROR;
		span->open = out->size;
		if (rc == 0)
			rc = ib_buf_putc(out, '[');
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (i && (rc = ib_buf_putc(out, ',')) < 0)
				break;
			span->ranges[2 * i] = out->size;
			rc = ib_json_dump(out, json_array_get(v, i), 0);
			span->ranges[2 * i + 1] = out->size - span->ranges[2 * i];
		}
		span->close = out->size;
		if (rc == 0)
			rc = ib_buf_putc(out, ']');
		span->n = n;
		span->ok = rc == 0;
	}
	if (rc == 0)
		rc = ib_buf_putc(out, '}');
	if (rc < 0 && span)
		ib_store__index_span_dispose(span);
	return rc < 0 ? IB_ERROR : 0;
}

void ib_store__index_span_dispose(ib_store__index_span *span)
{
	if (span) {
		free(span->ranges);
		memset(span, 0, sizeof *span);
	}
}

int ib_store__index_write_key(ib_store *s, json_t *index, ib_digest *key)
{
	ib_buf b = IB_BUF_INIT;
	char *p = ib_store__path(s, "index.json");
	int rc = p ? ib_store__index_dump(&b, index, NULL) : IB_ERROR;
	if (rc == 0 && key)
		rc = ib_digest_of(key, b.size ? b.ptr : "", b.size);
	if (rc == 0) {
		ib_store__hook("index-write");
		rc = ib_atomic_write(p, b.ptr, b.size, 0644);
	}
	if (rc == 0)
		ib_store__hook("index-written");
	ib_buf_dispose(&b);
	free(p);
	return rc;
}

/* ---- descriptors ---- */

int ib_store__descriptor(const char **media_type, ib_digest *d, uint64_t *size, const json_t *desc,
			 const char *what)
{
	if (!json_is_object(desc))
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: descriptor is not an object", what);
	const char *mt = ib_json_str(desc, "mediaType");
	const char *ds = ib_json_str(desc, "digest");
	json_t *sz = json_object_get(desc, "size");
	if (!ds)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: descriptor has no digest", what);
	if (!json_is_integer(sz) || json_integer_value(sz) < 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: descriptor of %s has no valid size", what, ds);
	if (ib_digest_parse(d, ds) < 0) {
		ib_error_prefix("%s", what);
		return IB_EINVALID;
	}
	if (media_type)
		*media_type = mt;
	if (size)
		*size = (uint64_t)json_integer_value(sz);
	return 0;
}

json_t *ib_store__descriptor_new(const char *media_type, const ib_digest *d, uint64_t size)
{
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, d);
	json_t *j = json_pack("{s:s,s:s,s:I}", "mediaType", media_type, "digest", ds, "size", (json_int_t)size);
	if (!j)
		ib_error_oom();
	return j;
}

int ib_store__is_index_type(const char *mt)
{
	return mt && (!strcmp(mt, IB_MEDIA_TYPE_OCI_INDEX) || !strcmp(mt, IB_MEDIA_TYPE_DOCKER_LIST));
}

int ib_store__is_manifest_type(const char *mt)
{
	return mt && (!strcmp(mt, IB_MEDIA_TYPE_OCI_MANIFEST) || !strcmp(mt, IB_MEDIA_TYPE_DOCKER_MANIFEST));
}

int ib_store__layer_is_compressed(const char *mt)
{
	return mt && (strstr(mt, "gzip") || strstr(mt, "zstd"));
}

/* ---- time and platform ---- */

int ib_store__timestamp(ib_buf *out, int64_t when)
{
	time_t t = when >= 0 ? (time_t)when : time(NULL);
	struct tm tm;
	char text[64];
	if (!gmtime_r(&t, &tm) || !strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return ib_error_set(IB_LAYER_STORE, "cannot format time %lld", (long long)t);
	ib_buf_clear(out);
	return ib_buf_puts(out, text);
}

const char *ib_store__host_arch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__i386__)
	return "386";
#elif defined(__arm__)
	return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return "ppc64le";
#elif defined(__s390x__)
	return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
	return "riscv64";
#else
	return "unknown";
#endif
}
