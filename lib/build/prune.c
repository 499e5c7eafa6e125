/* ib_prune(): unreferenced blobs and unpacked layers, together. */
#include "build/internal.h"
#include "build/copy.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/lock.h"
#include "util/path.h"
#include "util/strlist.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- prune: blobs and snapshots together ---- */

/*
 * An image gone from the index is no error: a container's image removed by
 * `rmi -f` (as docker's, it goes while a stopped container uses it), or an
 * image removed since the listing. Its layers stay all the same: GC keeps
 * the blobs a container record's image config names (and so does the
 * keep_if_stored pass below), and the container's snapshot keeps its chain.
 * Before, such a container made every `prune` fail ("No such image").
 */
static int add_image_layers(ib_digest **layers, size_t *n, size_t *cap, ib_store *store, const ib_digest *id)
{
	char hex[IB_DIGEST_STRLEN];
	ib_image *img = NULL;
	ib_digest_fmt(hex, id);
	int rc = ib_store_image_lookup(&img, store, hex);
	if (rc == IB_ENOTFOUND) {
		ib_error_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	const ib_image_config *cfg = ib_image_config_of(img);
	size_t k = ib_image_config_diff_id_count(cfg);
	for (size_t i = 0; rc == 0 && i < k; i++) {
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			ib_digest *p = ib_realloc(*layers, nc * sizeof *p);
			if (!p) {
				rc = IB_ERROR;
				break;
			}
			*layers = p;
			*cap = nc;
		}
		rc = ib_image_config_diff_id(&(*layers)[(*n)++], cfg, i);
	}
	ib_image_free(img);
	return rc;
}

/* An unpacked layer whose blob survived GC is still used (by an image, a container or the build cache). */
typedef struct {
	ib_store *store;
	ib_digest **layers;
	size_t *n, *cap;
	int rc;
} kept_layers;

static int keep_if_stored(const ib_digest *d, void *payload)
{
	kept_layers *k = payload;
	if (ib_store_blob_has(k->store, d) != 1) {
		ib_error_clear();
		return 0;
	}
	if (*k->n == *k->cap) {
		size_t nc = *k->cap ? *k->cap * 2 : 64;
		ib_digest *p = ib_realloc(*k->layers, nc * sizeof *p);
		if (!p)
			return k->rc = IB_ERROR;
		*k->layers = p;
		*k->cap = nc;
	}
	(*k->layers)[(*k->n)++] = *d;
	return 0;
}

/* A container whose `run` was killed still says "running": its process is gone. */
static void settle_container(ib_store *store, ib_snapshotter *snap, const ib_container_record *rec)
{
	if (!rec->state || strcmp(rec->state, "running") != 0 || ib_snapshot_stale(snap, rec->id) != 1) {
		ib_error_clear();
		return;
	}
	ib_container_record r = *rec;
	r.state = "exited (signal 9)";
	if (ib_store_container_put(store, &r) < 0)
		ib_error_clear();
}

/*
 * What the snapshot prune below keeps must be read while no container can be
 * created: a container made after the list was read, and persisted (its
 * snapshot then has no living owner) before the prune, would lose its
 * snapshot under its first run. Creating a container holds a store lease (a
 * shared flock on <root>/gc.lock, store.h) from its snapshot's prepare to its
 * record; the prune holds that lock exclusively, as GC does. Inside, only
 * functions that take no lease are called (a lease would wait for us).
 */
static int gc_lock(ib_lock *lk, ib_store *store)
{
	ib_buf path = IB_BUF_INIT;
	int rc = ib_path_join(&path, ib_store_root(store), "gc.lock");
	if (rc == 0)
		rc = ib_lock_acquire(lk, ib_buf_cstr(&path), IB_LOCK_EXCLUSIVE);
	ib_buf_dispose(&path);
	return rc;
}

int ib_prune(size_t *freed_blobs, size_t *freed_snapshots, ib_store *store)
{
	ib_store_gc_stats stats = IB_STORE_GC_STATS_INIT;
	int rc = ib_store_gc(&stats, store, NULL);
	if (rc < 0)
		return rc;
	if (freed_blobs)
		*freed_blobs = (size_t)stats.blobs_removed;
	/*
	 * What stays unpacked: the layers of every image and of every
	 * container's image, and every layer whose blob GC kept (the build
	 * cache's: the next build stands on them).
	 */
	ib_digest *layers = NULL;
	size_t n = 0, cap = 0, total = 0;
	ib_image_list *list = NULL;
	ib_container_list *recs = NULL;
	ib_strlist keys = IB_STRLIST_INIT;
	static const char *const backends[] = {"overlay", "copy"};
	ib_snapshotter *snaps[2] = { NULL, NULL };
	rc = ib_store_images(&list, store);
	for (size_t i = 0; rc == 0 && i < ib_image_list_count(list); i++)
		rc = add_image_layers(&layers, &n, &cap, store, &ib_image_list_get(list, i)->id);
	for (size_t i = 0; rc == 0 && i < 2; i++) {
		ib_snapshotter_options so = IB_SNAPSHOTTER_OPTIONS_INIT;
		so.flags = IB_SNAPSHOTTER_KEEP_STALE; /* the prune below cleans up, counting */
		if (ib_snapshotter_open(&snaps[i], store, backends[i], &so) < 0)
			ib_error_clear(); /* not usable on this host: nothing of it to prune */
	}
	/* containers whose run was killed say "exited" (this writes records: before the lock) */
	if (rc == 0)
		rc = ib_store_container_list(&recs, store);
	for (size_t i = 0; rc == 0 && i < 2; i++)
		for (size_t r = 0; snaps[i] && r < ib_container_list_count(recs); r++)
			settle_container(store, snaps[i], ib_container_list_get(recs, r));
	ib_container_list_free(recs);
	recs = NULL;
	ib_lock lk = IB_LOCK_INIT;
	int locked = 0;
	if (rc == 0 && (rc = gc_lock(&lk, store)) == 0)
		locked = 1;
	if (rc == 0)
		rc = ib_store_container_list(&recs, store);
	size_t nrecs = ib_container_list_count(recs);
	for (size_t i = 0; rc == 0 && i < nrecs; i++) {
		const ib_container_record *rec = ib_container_list_get(recs, i);
		rc = ib_strlist_add(&keys, rec->id);
		if (rc == 0)
			rc = add_image_layers(&layers, &n, &cap, store, &rec->image_id);
	}
	for (size_t i = 0; rc == 0 && i < 2; i++) {
		size_t freed = 0, base = n;
		if (!snaps[i])
			continue;
		kept_layers k = { store, &layers, &n, &cap, 0 };
		rc = ib_snapshot_layer_list(snaps[i], keep_if_stored, &k);
		if (rc == 0)
			rc = k.rc;
		if (rc == 0)
			rc = ib_snapshotter_prune(&freed, snaps[i], layers, n, (const char *const *)keys.items, keys.n);
		n = base;
		total += freed;
	}
	if (locked)
		ib_lock_release(&lk);
	for (size_t i = 0; i < 2; i++)
		ib_snapshotter_free(snaps[i]);
	if (freed_snapshots)
		*freed_snapshots = total;
	free(layers);
	ib_image_list_free(list);
	ib_container_list_free(recs);
	ib_strlist_clear(&keys);
	return rc;
}
