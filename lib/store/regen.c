/*
 * Layers kept only unpacked: layers/<hex>.json = {"size": N, "source": "..."}
 * stands for blobs/sha256/<hex>. The layer's tar is regenerated on demand by
 * the provider the snapshot layer installs, into an unlinked temporary file,
 * hashed as it is written, and handed out only when it is the recorded
 * digest and size (lib/store/README.md, "Layers regenerated on demand").
 */
#include "store/internal.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SOURCE_MAX (64u << 10)

static ib_store_layer_source_fn provider;

void ib_store_layer_source_provider(ib_store_layer_source_fn fn)
{
	__atomic_store_n(&provider, fn, __ATOMIC_RELEASE);
}

static char *record_path(ib_store *s, const ib_digest *d)
{
	char hex[IB_DIGEST_STRLEN];
	ib_digest_fmt(hex, d);
	return ib_sprintf("%s/layers/%s.json", s->root, hex + 7);
}

/* 1 and the record's fields, 0 when there is none, < 0 on a damaged record. */
static int record_read(ib_store *s, const ib_digest *d, uint64_t *size, char **source)
{
	char *p = record_path(s, d);
	if (!p)
		return IB_ERROR;
	ib_buf b = IB_BUF_INIT;
	struct stat st;
	int rc = 0;
	if (stat(p, &st) < 0 && errno == ENOENT)
		goto out;
	if ((rc = ib_read_file(&b, p)) < 0)
		goto out;
	json_t *j = NULL;
	if ((rc = ib_json_loadb(&j, b.ptr, b.size, p)) < 0)
		goto out;
	json_t *js = json_object_get(j, "size"), *jsrc = json_object_get(j, "source");
	if (!json_is_integer(js) || json_integer_value(js) < 0 || !json_is_string(jsrc)) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "`%s`: not a layer source record (size, source)", p);
	} else {
		if (size)
			*size = (uint64_t)json_integer_value(js);
		if (source && !(*source = ib_strdup(json_string_value(jsrc))))
			rc = IB_ERROR;
		else
			rc = 1;
	}
	json_decref(j);
out:
	ib_buf_dispose(&b);
	free(p);
	return rc;
}

int ib_store_layer_source_has(ib_store *s, const ib_digest *d)
{
	if (!s || !d)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "layer source: no store or digest");
	char *p = record_path(s, d);
	if (!p)
		return IB_ERROR;
	struct stat st;
	int rc = stat(p, &st) == 0 && S_ISREG(st.st_mode);
	free(p);
	return rc;
}

int ib_store__layer_source_size(uint64_t *size, ib_store *s, const ib_digest *d)
{
	return record_read(s, d, size, NULL);
}

int ib_store__layer_source_needs(ib_store *s, const ib_digest *d, int (*fn)(const ib_digest *needed, void *payload),
				 void *payload)
{
	char *source = NULL;
	int rc = record_read(s, d, NULL, &source);
	if (rc <= 0)
		return rc;
	json_t *j = json_loads(source, 0, NULL);
	json_t *chain = json_object_get(j, "chain");
	size_t i;
	json_t *v;
	rc = 1;
	json_array_foreach(chain, i, v) {
		ib_digest n;
		if (!json_is_string(v) || ib_digest_parse(&n, json_string_value(v)) < 0) {
			ib_error_clear(); /* not a digest: nothing a GC could keep (fsck says the record is bad) */
			continue;
		}
		if (fn(&n, payload) < 0) {
			rc = IB_ERROR;
			break;
		}
	}
	json_decref(j);
	free(source);
	return rc;
}

int ib_store_layer_source_put(ib_store *s, const ib_digest *d, uint64_t size, const char *source)
{
	if (!s || !d || !source)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "layer source: no store, digest or source");
	if (strlen(source) > SOURCE_MAX)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "layer source: more than %u bytes", SOURCE_MAX);
	int rc = ib_store__lease(s);
	if (rc < 0)
		return rc;
	char *dir = ib_sprintf("%s/layers", s->root), *p = record_path(s, d);
	json_t *j = json_pack("{s:I,s:s}", "size", (json_int_t)size, "source", source);
	ib_buf b = IB_BUF_INIT;
	if (!dir || !p || !j) {
		rc = IB_ERROR;
		goto out;
	}
	if (ib_store__blob_local_has(s, d) == 1)
		goto out; /* a blob, or a record, is there already (a remote record is replaced: GC drops it) */
	ib_error_clear();
	if ((rc = ib_mkdir_p(dir, 0700)) == 0 && (rc = ib_json_dump(&b, j, IB_JSON_SORTED)) == 0)
		rc = ib_atomic_write(p, b.ptr, b.size, 0644);
	if (rc < 0)
		ib_error_prefix("record layer %s", strrchr(p, '/') + 1);
out:
	ib_buf_dispose(&b);
	json_decref(j);
	free(dir);
	free(p);
	ib_store__unlease(s);
	return rc;
}

/*
 * Up to this size a regenerated layer is hashed as it is made, on the
 * thread making it: sha256 (libcrypto, SHA-NI or AVX2) costs less there than
 * copying the bytes into the hashing thread's fresh buffers (and faulting
 * them in). A bigger one is hashed on a core of its own (util/hashpipe.c).
 */
#define REGEN_HASH_INLINE (64u << 20)

typedef struct {
	int fd;
	ib_sha256_pipe *hp; /* a big layer's */
	ib_sha256 *h;       /* else */
	uint64_t n, size; /* made so far; recorded */
	int over;         /* more than the recorded size came: stopped there */
	ib_store_write_cb write; /* a consumer of the bytes as they come (stream), or NULL */
	void *payload;
} regen_out;

static int regen_write(const void *data, size_t len, void *payload)
{
	regen_out *o = payload;
	if (len > o->size - o->n) { /* it cannot be the recorded layer: no need to make (and hold) the rest */
		o->over = 1;
		return IB_EINVALID;
	}
	if (o->fd >= 0 && ib_write_all(o->fd, data, len) < 0)
		return IB_ERROR;
	o->n += len;
	int rc = o->h ? ib_sha256_update(o->h, data, len) : ib_sha256_pipe_update(o->hp, data, len);
	if (rc == 0 && o->write)
		rc = o->write(data, len, o->payload);
	return rc;
}

/*
 * Regenerate layer `d` into `fd` (-1: not into a file) and to `write` (NULL:
 * to nothing), and check it against the record. 0 when it is the recorded
 * layer, IB_ENOTFOUND without a record.
 */
static int regenerate(ib_store *s, const ib_digest *d, int fd, ib_store_write_cb write, void *payload)
{
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, d);
	uint64_t size = 0;
	char *source = NULL;
	int rc = record_read(s, d, &size, &source);
	if (rc == 0)
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "blob %s not found in the store", ds);
	if (rc < 0)
		return rc;
	ib_store_layer_source_fn fn = __atomic_load_n(&provider, __ATOMIC_ACQUIRE);
	regen_out o = { fd, NULL, NULL, 0, size, 0, write, payload };
	if (size <= REGEN_HASH_INLINE)
		o.h = ib_sha256_new();
	else
		o.hp = ib_sha256_pipe_new();
	if (!o.h && !o.hp) {
		rc = IB_ERROR;
	} else if (!fn) {
		rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_STORE,
				   "layer %s is kept only unpacked and nothing here can regenerate it (no snapshot layer)", ds);
	} else if ((rc = fn(s, d, source, regen_write, &o)) != 0 && o.over) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE,
				   "layer %s: its unpacked files (under %s/snapshots) give more than the recorded %llu "
				   "bytes: the unpacked layer was modified or damaged; remove the images and build cache "
				   "that use it (rmi, prune) and build again",
				   ds, s->root, (unsigned long long)size);
	} else if (rc != 0) {
		if (rc > 0)
			rc = ib_error_setc(IB_EUSER, IB_LAYER_STORE, "regenerating layer %s: stopped", ds);
		ib_error_prefix("regenerate layer %s from its unpacked files", ds);
	} else {
		ib_digest got;
		uint64_t n = 0;
		rc = o.h ? ib_sha256_final(o.h, &got) : ib_sha256_pipe_final(o.hp, &got, NULL);
		n = o.n;
		if (rc == 0 && (n != size || !ib_digest_equal(&got, d))) {
			char gs[IB_DIGEST_STRLEN];
			ib_digest_fmt(gs, &got);
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE,
					   "layer %s: its unpacked files (under %s/snapshots) give %s, %llu bytes, not the "
					   "recorded digest and %llu bytes: the unpacked layer was modified or damaged; "
					   "remove the images and build cache that use it (rmi, prune) and build again",
					   ds, s->root, gs, (unsigned long long)n, (unsigned long long)size);
		}
	}
	ib_sha256_pipe_free(o.hp);
	ib_sha256_free(o.h);
	free(source);
	return rc;
}

int ib_store__layer_source_open(int *fd_out, ib_store *s, const ib_digest *d)
{
	int fd = open(s->tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == ENOENT)) {
		/* no O_TMPFILE here: a named file, unlinked at once */
		char *p = ib_sprintf("%s/regen-XXXXXX", s->tmp);
		if (!p)
			return IB_ERROR;
		fd = mkostemp(p, O_CLOEXEC);
		if (fd >= 0)
			unlink(p);
		free(p);
	}
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_STORE, "create a temporary file in `%s`", s->tmp);
	int rc = regenerate(s, d, fd, NULL, NULL);
	if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
		rc = ib_error_set_os(IB_LAYER_STORE, "seek");
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

int ib_store__layer_source_check(ib_store *s, const ib_digest *d)
{
	return regenerate(s, d, -1, NULL, NULL);
}

int ib_store__blob_open_or_stream(int *fd_out, ib_store *s, const ib_digest *d, ib_store_write_cb write,
				  void *payload)
{
	*fd_out = -1;
	char *p = ib_store__blob_path(s, d);
	if (!p)
		return IB_ERROR;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	int gone = fd < 0 && errno == ENOENT;
	free(p);
	if (fd >= 0) {
		*fd_out = fd;
		return 0;
	}
	if (gone && ib_store_layer_source_has(s, d) == 1) {
		/* the consumer gets the bytes as they are made; the verdict comes after the last one */
		int rc = regenerate(s, d, -1, write, payload);
		return rc < 0 ? rc : 1;
	}
	return ib_store_blob_open(fd_out, s, d); /* a remote layer, or the error */
}
