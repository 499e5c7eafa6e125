/*
 * Layers kept only unpacked (lib/store/README.md, "Layers regenerated on
 * demand"). A build step's snapshot on the overlay backend becomes its
 * unpacked layer (ov_layer_adopt); its tar is then not written as a blob:
 * the commit only hashes the diff (on a second core), and the store records
 * where the tar comes from — the backend, the parent chain and the diff
 * options. The provider installed below makes it again, byte for byte, for
 * ib_store_blob_open(), which checks it against the recorded digest.
 */
#include <stdlib.h>
#include <string.h>

#include "snapshot/internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/json.h"

static int to_hash(const void *data, size_t len, void *payload)
{
	return ib_sha256_pipe_update(payload, data, len);
}

static char *source_of(const ib_digest *chain, size_t n, const ib_diff_options *o)
{
	json_t *j = json_pack("{s:s,s:[]}", "snapshotter", "overlay", "chain");
	json_t *arr = j ? json_object_get(j, "chain") : NULL;
	char *out = NULL;
	for (size_t i = 0; arr && i < n; i++) {
		char ds[IB_DIGEST_STRLEN];
		ib_digest_fmt(ds, &chain[i]);
		if (json_array_append_new(arr, json_string(ds)) < 0)
			arr = NULL;
	}
	if (arr && o->use_source_date_epoch &&
	    json_object_set_new(j, "source_date_epoch", json_integer((json_int_t)o->source_date_epoch)) < 0)
		arr = NULL;
	ib_buf b = IB_BUF_INIT;
	if (arr && ib_json_dump(&b, j, IB_JSON_SORTED) == 0)
		out = ib_strdup(ib_buf_cstr(&b));
	ib_buf_dispose(&b);
	json_decref(j);
	if (!out)
		ib_error_set(IB_LAYER_SNAPSHOT, "layer source: out of memory");
	return out;
}

/*
 * 1 when the store holds layer `d` itself (a blob file or a record of a
 * layer kept unpacked), 0 when it does not, or only knows it as a remote
 * layer (remote/<hex>.json: ib_store_blob_has says 1 for it too). A layer
 * built here whose diff_id a registry cache had made known was recorded
 * nowhere but in that remote record: its files were in the store and yet
 * save needed the registry, and once the record went (a lying blob of the
 * same repository drops them all) the image lacked the layer (fsck, save
 * and push failed) though its files were here.
 */
int ib_snapshot__store_holds(ib_store *store, const ib_digest *d)
{
	int rc = ib_store_blob_has(store, d);
	if (rc != 1)
		return rc < 0 ? rc : 0;
	ib_store_remote_layer r;
	rc = ib_store_remote_layer_get(&r, store, d);
	if (rc == IB_ENOTFOUND) {
		ib_error_clear();
		return 1;
	}
	return rc < 0 ? rc : 0;
}

int ib_snapshot__commit_unpacked(ib_digest *diff_id, uint64_t *size, char **source, ib_snapshotter *snap,
				 const char *key, const ib_diff_options *opts, ib_snapshot__diff_fn diff)
{
	*source = NULL;
	ib_diff_options o;
	ib_digest *chain = NULL;
	size_t n = 0;
	int rc = ib_snapshot__diff_options(&o, opts);
	if (rc == 0)
		rc = IB_SNAP_CALL(snap, "chain", snap->chain(snap, key, &chain, &n));
	ib_sha256_pipe *h = rc == 0 ? ib_sha256_pipe_new() : NULL;
	if (rc == 0 && !h)
		rc = IB_ERROR;
	if (rc == 0)
		rc = diff(snap, key, opts, to_hash, h);
	if (rc == 0)
		rc = ib_sha256_pipe_final(h, diff_id, size);
	ib_sha256_pipe_free(h);
	int held = rc == 0 ? ib_snapshot__store_holds(snap->store, diff_id) : 0;
	if (held < 0)
		rc = held;
	if (rc == 0 && !held) {
		/*
		 * Kept only unpacked, unless this layer's directory exists already
		 * (another chain's, or left by a crash before its record): then the
		 * tar is written as a blob, which never depends on that directory.
		 */
		int there = IB_SNAP_CALL(snap, "layer_has", snap->layer_has(snap, diff_id));
		if (there < 0)
			rc = there;
		else if (!there && !(*source = source_of(chain, n, &o)))
			rc = IB_ERROR;
	}
	free(chain);
	return rc;
}

/* The provider: the overlay backend of the store, the parent chain unpacked, the layer's diff again. */
static int regen(ib_store *store, const ib_digest *diff_id, const char *source, ib_store_write_cb write,
		 void *payload)
{
	json_t *j = NULL;
	int rc = ib_json_loadb(&j, source, strlen(source), "layer source");
	if (rc < 0)
		return rc;
	json_t *jc = json_object_get(j, "chain"), *je = json_object_get(j, "source_date_epoch");
	const char *name = ib_json_str(j, "snapshotter");
	size_t n = json_array_size(jc);
	ib_digest *chain = n ? ib_calloc(n, sizeof *chain) : NULL;
	ib_diff_options o = IB_DIFF_OPTIONS_INIT;
	ib_snapshotter *snap = NULL;
	if (!name || strcmp(name, "overlay") || !json_is_array(jc) || (je && !json_is_integer(je)))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "layer source: not an overlay layer record");
	else if (n && !chain)
		rc = IB_ERROR;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *s = json_string_value(json_array_get(jc, i));
		if (!s || ib_digest_parse(&chain[i], s) < 0)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "layer source: a chain entry is not a digest");
	}
	if (rc == 0 && je) {
		o.use_source_date_epoch = 1;
		o.source_date_epoch = (int64_t)json_integer_value(je);
	}
	ib_snapshotter_options so = IB_SNAPSHOTTER_OPTIONS_INIT;
	so.flags = IB_SNAPSHOTTER_KEEP_STALE; /* only read: reap nothing of others */
	if (rc == 0)
		rc = ib_snapshotter_open(&snap, store, "overlay", &so);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = ib_snapshot_layer_ensure(snap, &chain[i]);
	if (rc == 0)
		rc = ib_snapshot__overlay_layer_diff(snap, diff_id, chain, n, &o, write, payload);
	ib_snapshotter_free(snap);
	free(chain);
	json_decref(j);
	return rc;
}

__attribute__((constructor)) static void install_provider(void)
{
	ib_store_layer_source_provider(regen);
}
