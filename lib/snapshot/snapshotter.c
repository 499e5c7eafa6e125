/* Snapshotter registry and the public entry points, which check and dispatch. */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/internal.h"
#include "util/buf.h"
#include "util/callback.h"
#include "util/error.h"
#include "util/fs.h"

/* ---- registry (util/backend.h: one for both backend kinds) ---- */

static const ib_backend_builtin builtins[] = {
	{ "overlay", (ib_backend_fn)ib_snapshot__overlay_new },
	{ "copy", (ib_backend_fn)ib_snapshot__copy_new },
};

const ib_backend_class ib_snapshot__class = {
	IB_BACKEND_SNAPSHOTTER, "snapshotter", IB_LAYER_SNAPSHOT, builtins,
	sizeof builtins / sizeof builtins[0],
};
#define CLS (&ib_snapshot__class)

int ib_snapshotter_register(const char *name, ib_snapshotter_ctor ctor, void *param)
{
	return ib_backend_register(CLS, name, (ib_backend_fn)ctor, param);
}

int ib_snapshotter_unregister(const char *name)
{
	return ib_backend_unregister(CLS, name);
}

int ib_snapshotter_list(ib_buf *out)
{
	return ib_backend_list(CLS, out);
}

int ib_snapshotter_init(ib_snapshotter *snap, unsigned int version)
{
	if (!snap)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "ib_snapshotter_init: no backend");
	if (version != IB_SNAPSHOTTER_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT,
				     "snapshotter version %u is not supported (only %d: the diff of older ones "
				     "has no options)", version, IB_SNAPSHOTTER_VERSION);
	memset(snap, 0, sizeof *snap);
	snap->version = version;
	return 0;
}

/*
 * The callbacks each open handle was given (ib_snapshotter_options v2): a
 * side table, as struct ib_snapshotter is the backend's (sys/) and has no
 * room for them.
 */
typedef struct handle_cb {
	struct handle_cb *next;
	const ib_snapshotter *snap;
	const ib_callbacks *cb;
} handle_cb;
static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static handle_cb *handle_cbs;

static int handle_cb_set(const ib_snapshotter *snap, const ib_callbacks *cb)
{
	handle_cb *h = ib_calloc(1, sizeof *h);
	if (!h)
		return IB_ERROR;
	h->snap = snap;
	h->cb = cb;
	pthread_mutex_lock(&cb_lock);
	h->next = handle_cbs;
	handle_cbs = h;
	pthread_mutex_unlock(&cb_lock);
	return 0;
}

static const ib_callbacks *handle_cb_get(const ib_snapshotter *snap)
{
	const ib_callbacks *cb = NULL;
	pthread_mutex_lock(&cb_lock);
	for (handle_cb *h = handle_cbs; h; h = h->next)
		if (h->snap == snap) {
			cb = h->cb;
			break;
		}
	pthread_mutex_unlock(&cb_lock);
	return cb;
}

static void handle_cb_drop(const ib_snapshotter *snap)
{
	pthread_mutex_lock(&cb_lock);
	for (handle_cb **pp = &handle_cbs; *pp; pp = &(*pp)->next)
		if ((*pp)->snap == snap) {
			handle_cb *h = *pp;
			*pp = h->next;
			free(h);
			break;
		}
	pthread_mutex_unlock(&cb_lock);
}

int ib_snapshotter_options_init(ib_snapshotter_options *opts, unsigned int version)
{
	if (version < 1 || version > IB_SNAPSHOTTER_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT,
				     "snapshotter options version %u is not supported", version);
	/* a version 1 struct ends before `callbacks` */
	memset(opts, 0, version == 1 ? offsetof(ib_snapshotter_options, callbacks) : sizeof *opts);
	opts->version = version;
	return 0;
}

/*
 * What processes that were killed left: cleaned when a snapshotter is
 * opened, unless another process holds the lease (preparing or pruning):
 * then the next open or prune does it.
 */
static void reap_on_open(ib_snapshotter *s)
{
	ib_lock lk = IB_LOCK_INIT;
	ib_error_saved saved;
	ib_error_save(&saved);
	if (ib_snapshot__lease(&lk, s, IB_LOCK_EXCLUSIVE | IB_LOCK_NOWAIT) == 0)
		ib_snapshot__reap(NULL, s, NULL, 0);
	ib_lock_release(&lk);
	ib_error_restore(&saved);
}

int ib_snapshotter_open(ib_snapshotter **out, ib_store *store, const char *name,
			const ib_snapshotter_options *opts)
{
	*out = NULL;
	if (opts && (opts->version < 1 || opts->version > IB_SNAPSHOTTER_OPTIONS_VERSION))
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT,
				     "snapshotter options version %u is not supported", opts->version);
	const ib_callbacks *cbs = opts && opts->version >= 2 ? opts->callbacks : NULL;
	if (ib_callback_validate(cbs, IB_LAYER_SNAPSHOT) < 0)
		return IB_EINVALID;
	if (!store)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "open snapshotter: no store");
	if (!name)
		name = ib_snapshot__overlay_supported() ? "overlay" : "copy";
	ib_backend_fn fn = NULL;
	void *param = NULL;
	const char *interned = NULL;
	int rc = ib_backend_check_name(CLS, name);
	if (rc == 0)
		rc = ib_backend_find(CLS, name, &fn, &param, &interned);
	if (rc < 0)
		return rc;
	ib_snapshotter_ctor ctor = (ib_snapshotter_ctor)fn;
	char *dir = ib_sprintf("%s/snapshots/%s", ib_store_root(store), name);
	if (!dir)
		return -1;
	ib_snapshotter *s = NULL;
	int named = 0; /* the error names the backend already */
	if ((rc = ib_mkdir_p(dir, 0700)) == 0) {
		ib_backend_call call;
		ib_backend_call_begin(&call);
		rc = ctor(&s, dir, param);
		named = rc < 0 && ib_error_current() == IB_OK;
		rc = ib_backend_call_end(&call, CLS, name, "making an instance", rc);
	}
	if (rc == 0) {
		if (!s || s->version != IB_SNAPSHOTTER_VERSION || !s->free) {
			if (s && s->free)
				s->free(s);
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT,
					   "snapshotter `%s`: the backend has version %u, not %u, or no free()",
					   name, s ? s->version : 0, IB_SNAPSHOTTER_VERSION);
		} else {
			s->name = interned;
			s->store = store;
			if ((rc = ib_snapshot__meta_init(s)) < 0 || (cbs && (rc = handle_cb_set(s, cbs)) < 0)) {
				s->free(s);
			} else {
				*out = s;
				if (!(opts && (opts->flags & IB_SNAPSHOTTER_KEEP_STALE)))
					reap_on_open(s);
			}
		}
	}
	if (rc < 0 && !named)
		ib_error_prefix("snapshotter `%s`", name);
	free(dir);
	return rc;
}

void ib_snapshotter_free(ib_snapshotter *snap)
{
	if (snap) {
		handle_cb_drop(snap);
		snap->free(snap);
	}
}

const char *ib_snapshotter_name(const ib_snapshotter *snap)
{
	return snap && snap->name ? snap->name : "";
}

/* ---- entry points ---- */

/*
 * The caller's callback, between a backend and the caller: when the
 * callback stopped the work, what the backend returns is the callback's
 * value, not a failure of the backend's own.
 */
typedef struct {
	union {
		ib_snapshot_key_cb key;
		ib_snapshot_layer_cb layer;
	} cb;
	void *payload;
	int stopped;
} relay;

/* the callback's value is kept as the error (common.h); the backend unwinds with IB_EUSER */
static int relay_key(const char *key, void *payload)
{
	relay *r = payload;
	int rc = r->cb.key(key, r->payload);
	if (rc)
		r->stopped = rc;
	return rc ? ib_callback_stopped(rc, "the callback stopped the listing") : 0;
}

static int relay_layer(const ib_digest *diff_id, void *payload)
{
	relay *r = payload;
	int rc = r->cb.layer(diff_id, r->payload);
	if (rc)
		r->stopped = rc;
	return rc ? ib_callback_stopped(rc, "the callback stopped the listing") : 0;
}

static int relay_end(ib_backend_call *c, ib_snapshotter *snap, const char *op, const relay *r,
		     int rc)
{
	/* a callback stopped it: its error (layer IB_LAYER_CALLBACK) stays as it is */
	if (r->stopped && rc < 0)
		return ib_backend_call_end_quiet(c, rc);
	return ib_backend_call_end(c, &ib_snapshot__class, ib_snapshotter_name(snap), op, rc);
}

static int unsupported(ib_snapshotter *s, const char *what)
{
	return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_SNAPSHOT, "snapshotter `%s` cannot %s",
			     ib_snapshotter_name(s), what);
}

#define CHECK(snap, key) do { \
		if (!(snap)) \
			return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "no snapshotter"); \
		if (ib_snapshot__check_key(key) < 0) \
			return IB_EINVALID; \
	} while (0)

int ib_snapshot_layer_ensure(ib_snapshotter *snap, const ib_digest *diff_id)
{
	if (!snap || !diff_id)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "layer_ensure: missing argument");
	char label[IB_DIGEST_STRLEN];
	ib_digest_fmt(label, diff_id);
	if (!snap->layer_has || !snap->layer_unpack) {
		if (ib_store_blob_has(snap->store, diff_id) == 1)
			return 0;
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_SNAPSHOT, "layer %s is not in the store", label);
	}
	int rc = IB_SNAP_CALL(snap, "layer_has", snap->layer_has(snap, diff_id));
	if (rc != 0)
		return rc < 0 ? rc : 0;
	int fd = -1;
	if ((rc = ib_store_blob_open(&fd, snap->store, diff_id)) < 0) {
		ib_error_prefix("unpack layer %s", label);
		return rc;
	}
	rc = IB_SNAP_CALL(snap, "layer_unpack", snap->layer_unpack(snap, diff_id, fd));
	close(fd);
	return rc;
}

int ib_snapshot_prepare(ib_snapshotter *snap, const char *key, const ib_digest *chain, size_t n)
{
	CHECK(snap, key);
	if (n && !chain)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "prepare `%s`: no chain", key);
	if (!snap->prepare)
		return unsupported(snap, "prepare snapshots");
	int rc = snap->mounted ? ib_snapshot_exists(snap, key) : 0;
	if (rc != 0)
		return rc < 0 ? rc : ib_error_setc(IB_EEXISTS, IB_LAYER_SNAPSHOT, "snapshot `%s` exists already", key);
	/*
	 * The lease: from the owner record to a complete snapshot (whose chain
	 * file keeps its layers), no prune runs, so none of the layers
	 * unpacked here goes before the snapshot stands on it.
	 */
	ib_lock lk = IB_LOCK_INIT;
	if ((rc = ib_snapshot__lease(&lk, snap, IB_LOCK_SHARED)) < 0 ||
	    (rc = ib_snapshot__owner_write(snap, "owners", key)) < 0) {
		ib_lock_release(&lk);
		ib_error_prefix("prepare snapshot `%s`", key);
		return rc;
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		if ((rc = ib_snapshot_layer_ensure(snap, &chain[i])) < 0)
			ib_error_prefix("prepare snapshot `%s`", key);
	if (rc == 0)
		rc = IB_SNAP_CALL(snap, "prepare", snap->prepare(snap, key, chain, n));
	if (rc < 0) {
		ib_error_saved saved;
		ib_error_save(&saved);
		if (ib_snapshot_exists(snap, key) != 1)
			ib_snapshot__owner_drop(snap, "owners", key);
		ib_error_restore(&saved);
	}
	ib_lock_release(&lk);
	return rc;
}

int ib_snapshot_mount(ib_buf *rootfs, ib_snapshotter *snap, const char *key)
{
	CHECK(snap, key);
	if (!rootfs)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "mount `%s`: no output buffer", key);
	if (!snap->mount)
		return unsupported(snap, "mount");
	/* recorded first: a mount whose process is killed is undone by the next prune; but a
	 * live process's record (a container's run while an exec mounts it too) is left as
	 * it is, or our exit would make its mount look abandoned and a prune detach it */
	long opid = 0;
	int recorded = ib_snapshot__owner_state(snap, "mounts", key, &opid) != IB_OWNER_ALIVE ||
		       opid == (long)getpid();
	int rc = recorded ? ib_snapshot__owner_write(snap, "mounts", key) : 0;
	ib_buf_clear(rootfs); /* the backend appends the path: the caller's content is replaced */
	if (rc == 0 && (rc = IB_SNAP_CALL(snap, "mount", snap->mount(snap, rootfs, key))) < 0) {
		ib_error_saved saved;
		ib_error_save(&saved);
		if (recorded && (!snap->mounted || IB_SNAP_CALL(snap, "mounted", snap->mounted(snap, key)) != 1))
			ib_snapshot__owner_drop(snap, "mounts", key);
		ib_error_restore(&saved);
	}
	return rc;
}

int ib_snapshot_unmount(ib_snapshotter *snap, const char *key)
{
	CHECK(snap, key);
	if (!snap->unmount)
		return unsupported(snap, "unmount");
	int rc = IB_SNAP_CALL(snap, "unmount", snap->unmount(snap, key));
	if (rc == 0)
		ib_snapshot__owner_drop(snap, "mounts", key);
	return rc;
}

static int exists_or_fail(ib_snapshotter *snap, const char *key)
{
	int rc = ib_snapshot_exists(snap, key);
	if (rc < 0)
		return rc;
	if (!rc)
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_SNAPSHOT, "no snapshot `%s` in `%s`", key,
				     ib_snapshotter_name(snap));
	return 0;
}

int ib_diff_options_init(ib_diff_options *opts, unsigned int version)
{
	if (!opts)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "NULL diff options");
	if (version != 1 && version != IB_DIFF_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "diff options version %u is not supported",
				     version);
	/* a version 1 struct ends after source_date_epoch */
	memset(opts, 0, version == 1 ? offsetof(ib_diff_options, content_source) : sizeof *opts);
	opts->version = version;
	return 0;
}

int ib_snapshot__diff_options(ib_diff_options *out, const ib_diff_options *opts)
{
	ib_diff_options_init(out, IB_DIFF_OPTIONS_VERSION);
	if (!opts)
		return 0;
	if (opts->version != 1 && opts->version != IB_DIFF_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "diff options version %u is not supported",
				     opts->version);
	if (opts->use_source_date_epoch && opts->source_date_epoch < 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT,
				     "SOURCE_DATE_EPOCH %lld is negative", (long long)opts->source_date_epoch);
	/* a version 1 struct has the first three members only; the copy is the current version */
	out->use_source_date_epoch = opts->use_source_date_epoch;
	out->source_date_epoch = opts->source_date_epoch;
	if (opts->version >= 2) {
		out->content_source = opts->content_source;
		out->content_payload = opts->content_payload;
	}
	return 0;
}

/*
 * Between the backend's diff and the caller's write: the handle's cancel
 * flag and BYTES "layer:<key>" every MiB, and the write callback's
 * non-zero return recorded (the backend then unwinds with IB_EUSER).
 */
typedef struct {
	const ib_callbacks *cb;
	ib_snapshot_write_cb write;
	void *payload;
	char id[160];
	uint64_t done, reported;
	int external;   /* `write` is the caller's: its value is theirs to get back */
	int stopped;    /* a callback or the cancel flag stopped the diff */
} diff_relay;

static int diff_relay_write(const void *data, size_t len, void *payload)
{
	diff_relay *r = payload;
	int rc = r->write(data, len, r->payload);
	if (rc && r->external) {
		r->stopped = 1;
		return ib_callback_stopped(rc, "diff");
	}
	if (rc)
		return rc < 0 ? rc : IB_ERROR;
	r->done += len;
	if (r->done - r->reported >= (1u << 20) || ib_callback_cancelled(r->cb)) {
		r->reported = r->done;
		if ((rc = ib_callback_progress(r->cb, IB_PROGRESS_BYTES, r->id, "Writing layer", r->done, 0, 0,
					       "write the layer")) < 0) {
			r->stopped = 1;
			return rc;
		}
	}
	return 0;
}

static int diff_internal(ib_snapshotter *snap, const char *key, const ib_diff_options *opts,
			 ib_snapshot_write_cb write, void *payload, int external)
{
	if (!snap->diff)
		return unsupported(snap, "diff");
	diff_relay r = { handle_cb_get(snap), write, payload, "", 0, 0, external, 0 };
	snprintf(r.id, sizeof r.id, "layer:%s", key);
	ib_diff_options o;
	int rc = ib_snapshot__diff_options(&o, opts);
	if (rc == 0)
		rc = ib_callback_check(r.cb, "diff");
	if (rc == 0)
		rc = exists_or_fail(snap, key);
	if (rc == 0) {
		ib_backend_call call;
		ib_backend_call_begin(&call);
		rc = snap->diff(snap, key, &o, diff_relay_write, &r);
		/* stopped by a callback or the cancel flag: that error stays (layer IB_LAYER_CALLBACK) */
		rc = r.stopped && rc < 0 ? ib_backend_call_end_quiet(&call, rc)
					 : ib_backend_call_end(&call, &ib_snapshot__class, ib_snapshotter_name(snap),
							       "diff", rc);
		if (rc < 0 && !r.stopped)
			ib_error_prefix("diff snapshot `%s`", key);
	}
	if (rc == 0)
		rc = ib_callback_progress(r.cb, IB_PROGRESS_BYTES, r.id, "Writing layer", r.done, r.done, 0,
					  "write the layer");
	return rc;
}

int ib_snapshot_diff(ib_snapshotter *snap, const char *key, const ib_diff_options *opts,
		     ib_snapshot_write_cb write, void *payload)
{
	CHECK(snap, key);
	if (!write)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "diff: no write callback");
	return ib_callback_result(diff_internal(snap, key, opts, write, payload, 1));
}

static int diff_quiet(ib_snapshotter *snap, const char *key, const ib_diff_options *opts,
		      ib_snapshot_write_cb write, void *payload)
{
	return diff_internal(snap, key, opts, write, payload, 0);
}

static int to_blob(const void *data, size_t len, void *payload)
{
	return ib_blob_writer_write(payload, data, len);
}

static int commit_internal(ib_digest *diff_id, uint64_t *size, ib_snapshotter *snap, const char *key,
			   const ib_diff_options *opts)
{
	ib_blob_writer *w = NULL;
	int rc = ib_store_blob_writer(&w, snap->store);
	if (rc < 0)
		return rc;
	if ((rc = diff_internal(snap, key, opts, to_blob, w, 0)) < 0) {
		ib_error_saved s;
		ib_error_save(&s);
		ib_blob_writer_abort(w);
		ib_error_restore(&s);
		ib_error_prefix("commit");
		return rc;
	}
	rc = ib_blob_writer_commit(w, diff_id, size, NULL);
	if (rc < 0)
		ib_error_prefix("commit snapshot `%s`", key);
	return rc;
}

int ib_snapshot_commit(ib_digest *diff_id, uint64_t *size, ib_snapshotter *snap, const char *key,
		       const ib_diff_options *opts)
{
	CHECK(snap, key);
	return ib_callback_result(commit_internal(diff_id, size, snap, key, opts));
}

static int commit_remove(ib_digest *diff_id, uint64_t *size, ib_snapshotter *snap, const char *key,
			 const ib_diff_options *opts)
{
	int rc = snap->mounted ? IB_SNAP_CALL(snap, "mounted", snap->mounted(snap, key)) : 0;
	if (rc == 1)
		return ib_error_setc(IB_EEXISTS, IB_LAYER_SNAPSHOT, "snapshot `%s` is mounted (in use)", key);
	if (rc < 0)
		return rc;
	ib_digest d;
	uint64_t sz = 0;
	char *source = NULL;
	/*
	 * The overlay backend keeps the snapshot's files as the unpacked layer,
	 * so its tar need not be written: hashed only, and regenerated from the
	 * layer when it leaves (push, save); see lib/store/README.md.
	 */
	if (ib_snapshot__overlay_is(snap)) {
		ib_snapshot__flush *flush = ib_snapshot__overlay_flush(snap, key);
		rc = ib_snapshot__commit_unpacked(&d, &sz, &source, snap, key, opts, diff_quiet);
		ib_snapshot__overlay_flush_wait(flush);
		if (rc < 0) {
			ib_error_prefix("commit snapshot `%s`", key);
			return ib_callback_result(rc);
		}
		if (!source && (rc = ib_snapshot__store_holds(snap->store, &d)) == 0)
			rc = commit_internal(&d, &sz, snap, key, opts);
		else if (rc > 0)
			rc = 0;
	} else {
		rc = commit_internal(&d, &sz, snap, key, opts);
	}
	if (rc < 0)
		return ib_callback_result(rc);
	if (snap->layer_adopt && (rc = IB_SNAP_CALL(snap, "layer_adopt", snap->layer_adopt(snap, key, &d))) < 0) {
		free(source);
		ib_error_prefix("keep snapshot `%s` as layer", key);
		return rc;
	}
	if (rc > 0 && source) {
		/*
		 * Another process adopted this layer between our look and our adopt
		 * (a concurrent build making the same diff, maybe on another chain):
		 * the files there are theirs, and a record of our chain might not
		 * regenerate them. The blob, from our snapshot (still here), does
		 * not depend on them.
		 */
		free(source);
		source = NULL;
		if ((rc = ib_snapshot__store_holds(snap->store, &d)) == 0)
			rc = commit_internal(&d, &sz, snap, key, opts);
		if (rc < 0)
			return ib_callback_result(rc);
	}
	rc = 0;
	if (source) {
		rc = ib_store_layer_source_put(snap->store, &d, sz, source);
		free(source);
		if (rc < 0)
			return rc;
	}
	if (ib_snapshot_exists(snap, key) == 1 && (rc = ib_snapshot_remove(snap, key)) < 0)
		return rc;
	ib_snapshot__owner_drop(snap, "owners", key);
	ib_snapshot__owner_drop(snap, "mounts", key);
	if (diff_id)
		*diff_id = d;
	if (size)
		*size = sz;
	return 0;
}

/*
 * Under a store lease from the first look at the store to the record: the
 * blob the commit found there (and so did not write), the layer directory
 * adopted before its record exists, are what a GC and the snapshot prune
 * (ib_prune: they hold the store's gc.lock exclusively) would remove. A
 * build holds its own lease already; a caller of this function alone did
 * not, and a prune between the adopt and the record left a record whose
 * layer directory was gone (fsck, push and save failed on it).
 */
int ib_snapshot_commit_remove(ib_digest *diff_id, uint64_t *size, ib_snapshotter *snap, const char *key,
			      const ib_diff_options *opts)
{
	CHECK(snap, key);
	int rc = ib_store_lease_acquire(snap->store);
	if (rc < 0)
		return rc;
	rc = commit_remove(diff_id, size, snap, key, opts);
	ib_store_lease_release(snap->store);
	return rc;
}

int ib_snapshot_exists(ib_snapshotter *snap, const char *key)
{
	CHECK(snap, key);
	if (!snap->mounted)
		return unsupported(snap, "tell whether a snapshot exists");
	int rc = IB_SNAP_CALL(snap, "mounted", snap->mounted(snap, key));
	if (rc == IB_ENOTFOUND) {
		ib_error_clear();
		return 0;
	}
	return rc < 0 ? rc : 1;
}

int ib_snapshot_remove(ib_snapshotter *snap, const char *key)
{
	CHECK(snap, key);
	if (!snap->remove || !snap->mounted)
		return unsupported(snap, "remove snapshots");
	int m = IB_SNAP_CALL(snap, "mounted", snap->mounted(snap, key));
	if (m < 0)
		return m;
	if (m)
		return ib_error_setc(IB_EEXISTS, IB_LAYER_SNAPSHOT,
				     "snapshot `%s` is in use (mounted); unmount it first", key);
	int rc = IB_SNAP_CALL(snap, "remove", snap->remove(snap, key));
	if (rc == 0) {
		ib_snapshot__owner_drop(snap, "owners", key);
		ib_snapshot__owner_drop(snap, "mounts", key);
	}
	return rc;
}

int ib_snapshot_list(ib_snapshotter *snap, ib_snapshot_key_cb cb, void *payload)
{
	if (!snap || !cb)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "list snapshots: missing argument");
	if (!snap->list)
		return unsupported(snap, "list snapshots");
	relay r = { { .key = cb }, payload, 0 };
	ib_backend_call call;
	ib_backend_call_begin(&call);
	int rc = snap->list(snap, relay_key, &r);
	return ib_callback_result(relay_end(&call, snap, "list", &r, rc));
}

int ib_snapshot_layer_list(ib_snapshotter *snap, ib_snapshot_layer_cb cb, void *payload)
{
	if (!snap || !cb)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "list layers: missing argument");
	if (!snap->layer_list)
		return 0;
	relay r = { { .layer = cb }, payload, 0 };
	ib_backend_call call;
	ib_backend_call_begin(&call);
	int rc = snap->layer_list(snap, relay_layer, &r);
	return ib_callback_result(relay_end(&call, snap, "layer_list", &r, rc));
}

/* ---- prune ---- */

typedef struct {
	char **keys;
	size_t nkeys, capkeys;
	ib_digest *layers;
	size_t nlayers, caplayers;
} collected;

static int collect_key(const char *key, void *payload)
{
	collected *c = payload;
	if (c->nkeys == c->capkeys) {
		size_t n = c->capkeys ? c->capkeys * 2 : 16;
		char **k = ib_realloc(c->keys, n * sizeof *k);
		if (!k)
			return -1;
		c->keys = k;
		c->capkeys = n;
	}
	if (!(c->keys[c->nkeys] = ib_strdup(key)))
		return -1;
	c->nkeys++;
	return 0;
}

static int push_layer(collected *c, const ib_digest *d)
{
	if (c->nlayers == c->caplayers) {
		size_t n = c->caplayers ? c->caplayers * 2 : 16;
		ib_digest *l = ib_realloc(c->layers, n * sizeof *l);
		if (!l)
			return -1;
		c->layers = l;
		c->caplayers = n;
	}
	c->layers[c->nlayers++] = *d;
	return 0;
}

static int collect_layer(const ib_digest *d, void *payload)
{
	return push_layer(payload, d);
}

static int in_digests(const ib_digest *set, size_t n, const ib_digest *d)
{
	for (size_t i = 0; i < n; i++)
		if (ib_digest_equal(&set[i], d))
			return 1;
	return 0;
}

static void collected_free(collected *c)
{
	for (size_t i = 0; i < c->nkeys; i++)
		free(c->keys[i]);
	free(c->keys);
	free(c->layers);
}

int ib_snapshotter_prune(size_t *freed, ib_snapshotter *snap, const ib_digest *keep_layers,
			 size_t nlayers, const char *const *keep_keys, size_t nkeys)
{
	if (freed)
		*freed = 0;
	if (!snap || (nlayers && !keep_layers) || (nkeys && !keep_keys))
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "prune: missing argument");
	collected all = { 0 }, used = { 0 }, layers = { 0 };
	size_t count = 0;
	/* no prepare runs meanwhile: every snapshot being made is complete or not begun */
	ib_lock lk = IB_LOCK_INIT;
	int rc = ib_snapshot__lease(&lk, snap, IB_LOCK_EXCLUSIVE);
	if (rc == 0)
		rc = ib_snapshot__reap(&count, snap, keep_keys, nkeys);
	if (rc == 0 && snap->list)
		rc = IB_SNAP_CALL(snap, "list", snap->list(snap, collect_key, &all));
	for (size_t i = 0; rc == 0 && i < nlayers; i++)
		rc = push_layer(&used, &keep_layers[i]);
	for (size_t i = 0; rc == 0 && i < all.nkeys; i++) {
		const char *key = all.keys[i];
		int keep = 0;
		for (size_t j = 0; j < nkeys && !keep; j++)
			keep = keep_keys[j] && !strcmp(keep_keys[j], key);
		if (!keep && ib_snapshot__owner_state(snap, "owners", key, NULL) == IB_OWNER_ALIVE)
			keep = 1; /* the active state of a running process (a build step) */
		if (!keep && snap->mounted && IB_SNAP_CALL(snap, "mounted", snap->mounted(snap, key)) > 0)
			keep = 1; /* in use */
		ib_error_clear();
		if (!keep) {
			if ((rc = IB_SNAP_CALL(snap, "remove", snap->remove(snap, key))) == 0) {
				count++;
				ib_snapshot__owner_drop(snap, "owners", key);
				ib_snapshot__owner_drop(snap, "mounts", key);
			}
			continue;
		}
		/* the layers a kept snapshot stands on stay */
		ib_digest *chain = NULL;
		size_t n = 0;
		if (snap->chain && IB_SNAP_CALL(snap, "chain", snap->chain(snap, key, &chain, &n)) == 0)
			for (size_t j = 0; rc == 0 && j < n; j++)
				rc = push_layer(&used, &chain[j]);
		ib_error_clear();
		free(chain);
	}
	if (rc == 0 && snap->layer_list && snap->layer_remove)
		rc = IB_SNAP_CALL(snap, "layer_list", snap->layer_list(snap, collect_layer, &layers));
	for (size_t i = 0; rc == 0 && i < layers.nlayers; i++) {
		if (in_digests(used.layers, used.nlayers, &layers.layers[i]))
			continue;
		if ((rc = IB_SNAP_CALL(snap, "layer_remove", snap->layer_remove(snap, &layers.layers[i]))) == 0)
			count++;
	}
	if (rc == 0 && ib_snapshot__overlay_is(snap))
		rc = ib_snapshot__overlay_sweep(snap, &count);
	ib_lock_release(&lk);
	collected_free(&all);
	collected_free(&used);
	collected_free(&layers);
	if (freed)
		*freed = count;
	if (rc < 0)
		ib_error_prefix("prune snapshotter `%s`", ib_snapshotter_name(snap));
	return rc;
}
