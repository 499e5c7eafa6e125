/*
 * sys/snapshotter.h: the snapshotter backend interface, for implementers
 * (see docs/STYLE.md). Users only see the ib_snapshotter typedef of types.h
 * and the functions of snapshot.h, which check their arguments (keys are
 * validated, chains are unpacked through layer_ensure first) and call these.
 */
#ifndef IMAGEBUILD_SYS_SNAPSHOTTER_H
#define IMAGEBUILD_SYS_SNAPSHOTTER_H

#include "../snapshot.h"
#include "errors.h"

IB_BEGIN_DECL

/*
 * 2 added layer_adopt; 3 gave diff its options (ib_diff_options: the
 * SOURCE_DATE_EPOCH clamp). Backends of versions 1 and 2 are refused: their
 * diff has another signature.
 */
#define IB_SNAPSHOTTER_VERSION 3

/**
 * A backend. Implementations embed it first (struct my { ib_snapshotter
 * parent; ... }). `free` is required; a NULL `layer_has`/`layer_unpack`
 * means the backend keeps no unpacked layers; other NULL operations are
 * IB_EUNSUPPORTED.
 */
struct ib_snapshotter {
	unsigned int version;   /* IB_SNAPSHOTTER_VERSION */
	const char *name;       /* set by ib_snapshotter_open */
	ib_store *store;        /* set by ib_snapshotter_open (borrowed) */

	/** 1 when the layer is unpacked, 0 when not, < 0 on error. */
	int (*layer_has)(ib_snapshotter *self, const ib_digest *diff_id);
	/** Unpack the layer read from `tar_fd` (any supported compression). */
	int (*layer_unpack)(ib_snapshotter *self, const ib_digest *diff_id, int tar_fd);
	/** Call `cb` for every unpacked layer, in digest order. */
	int (*layer_list)(ib_snapshotter *self, ib_snapshot_layer_cb cb, void *payload);
	/** Remove an unpacked layer. */
	int (*layer_remove)(ib_snapshotter *self, const ib_digest *diff_id);

	/** Layers of the chain are unpacked (or, without layer_unpack, readable from the store). */
	int (*prepare)(ib_snapshotter *self, const char *key, const ib_digest *chain, size_t n);
	/** Mount the snapshot `key`; its root path into `rootfs` (given empty: ib_snapshot_mount() clears it first). */
	int (*mount)(ib_snapshotter *self, ib_buf *rootfs, const char *key);
	/** Unmount the snapshot `key`. */
	int (*unmount)(ib_snapshotter *self, const char *key);
	/** 1 when mounted (in use), 0 when not, IB_ENOTFOUND when no such key. */
	int (*mounted)(ib_snapshotter *self, const char *key);
	/**
	 * Write the snapshot's changes as an OCI layer tar through `write`;
	 * `opts` is never NULL (its SOURCE_DATE_EPOCH clamp: see
	 * ib_snapshot_diff_trees(), which does it all).
	 */
	int (*diff)(ib_snapshotter *self, const char *key, const ib_diff_options *opts,
		    ib_snapshot_write_cb write, void *payload);
	/** Remove the snapshot `key`. */
	int (*remove)(ib_snapshotter *self, const char *key);
	/** Call `cb` for every snapshot key, in byte order. */
	int (*list)(ib_snapshotter *self, ib_snapshot_key_cb cb, void *payload);
	/** The diff_ids the snapshot `key` stands on, for prune; `*chain` is malloc()ed, the caller free()s it. */
	int (*chain)(ib_snapshotter *self, const char *key, ib_digest **chain, size_t *n);

	/** Free the backend. Required. */
	void (*free)(ib_snapshotter *self);

	/* version 2 */
	/**
	 * Optional. The unmounted snapshot `key` was just committed as layer
	 * `diff_id`: make its files that unpacked layer (instead of unpacking
	 * the blob again on next use) and remove the snapshot. Without it, the
	 * snapshot is removed and the layer unpacked when needed. Returns 1
	 * (the snapshot left as it is) when the layer was unpacked already,
	 * e.g. by another process: its files are then not the snapshot's.
	 */
	int (*layer_adopt)(ib_snapshotter *self, const char *key, const ib_digest *diff_id);
};

/**
 * Make a backend whose files live under `dir` (`<store root>/snapshots/<name>`,
 * created already). `param` is what was given at registration. A backend
 * that cannot work on this host returns IB_EUNSUPPORTED with the reason.
 */
typedef int (*ib_snapshotter_ctor)(ib_snapshotter **out, const char *dir, void *param);

/*
 * The registry, one for both backend kinds (sys/isolation.h and
 * sys/snapshotter.h say the same):
 *
 * - names are 1..32 characters of [a-z0-9_-] (others are IB_EINVALID);
 * - ib_snapshotter_register() adds a backend, or replaces the one of that name
 *   (built-in ones included); thread-safe, like the rest of the registry;
 * - `param` is borrowed: the library never frees it. It must stay valid
 *   until the backend is unregistered (or the final ib_shutdown()) and
 *   every instance made from it is freed;
 * - ib_snapshotter_unregister() removes a registration (IB_ENOTFOUND when
 *   there is none): nothing new is made from it, instances already made
 *   work until they are freed. A built-in one can be removed too;
 * - ib_snapshotter_list() (in snapshot.h) gives the registered names,
 *   comma-separated, in registration order, built-in ones first;
 * - the final ib_shutdown() forgets every registration and gives the
 *   built-in ones back;
 * - an instance is the backend's own memory: its constructor makes it and
 *   its `free` (required) frees it: ib_snapshotter_open() makes one,
 *   ib_snapshotter_free() frees it;
 * - errors: a backend function that fails returns < 0 and says why with
 *   ib_error_set_str() (sys/errors.h); one that says nothing gets an error
 *   naming the backend and the operation.
 *
 * Implementers start from IB_SNAPSHOTTER_INIT (or ib_snapshotter_init()) so that
 * fields of later versions are NULL.
 */

/** Register (or replace) the backend `name` (1..32 characters of [a-z0-9_-]). */
IB_EXTERN(int) ib_snapshotter_register(const char *name, ib_snapshotter_ctor ctor, void *param);

/** Forget a registered backend. IB_ENOTFOUND when none has that name. */
IB_EXTERN(int) ib_snapshotter_unregister(const char *name);

#define IB_SNAPSHOTTER_INIT { IB_SNAPSHOTTER_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, \
		NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL }

/**
 * Fill `snap` with what IB_SNAPSHOTTER_INIT gives for `version` (3):
 * every operation NULL. For implementers and bindings.
 */
IB_EXTERN(int) ib_snapshotter_init(ib_snapshotter *snap, unsigned int version);

IB_END_DECL

#endif
