/*
 * sys/snapshotter.h: the snapshotter backend interface, for implementers
 * (see docs/STYLE.md). Users only see the ib_snapshotter typedef of types.h
 * and the functions of snapshot.h, which check their arguments (keys are
 * validated, chains are unpacked through layer_ensure first) and call these.
 */
#ifndef IMAGEBUILD_SYS_SNAPSHOTTER_H
#define IMAGEBUILD_SYS_SNAPSHOTTER_H

#include "../snapshot.h"

IB_BEGIN_DECL

/* 2 added layer_adopt; backends of version 1 are still accepted (without it) */
#define IB_SNAPSHOTTER_VERSION 2

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
	int (*layer_list)(ib_snapshotter *self, ib_snapshot_layer_cb cb, void *payload);
	int (*layer_remove)(ib_snapshotter *self, const ib_digest *diff_id);

	/** Layers of the chain are unpacked (or, without layer_unpack, readable from the store). */
	int (*prepare)(ib_snapshotter *self, const char *key, const ib_digest *chain, size_t n);
	int (*mount)(ib_snapshotter *self, ib_buf *rootfs, const char *key);
	int (*unmount)(ib_snapshotter *self, const char *key);
	/** 1 when mounted (in use), 0 when not, IB_ENOTFOUND when no such key. */
	int (*mounted)(ib_snapshotter *self, const char *key);
	int (*diff)(ib_snapshotter *self, const char *key, ib_snapshot_write_cb write, void *payload);
	int (*remove)(ib_snapshotter *self, const char *key);
	int (*list)(ib_snapshotter *self, ib_snapshot_key_cb cb, void *payload);
	/** The diff_ids the snapshot `key` stands on, for prune; `*chain` is malloc()ed, the caller free()s it. */
	int (*chain)(ib_snapshotter *self, const char *key, ib_digest **chain, size_t *n);

	void (*free)(ib_snapshotter *self);

	/* version 2 */
	/**
	 * Optional. The unmounted snapshot `key` was just committed as layer
	 * `diff_id`: make its files that unpacked layer (instead of unpacking
	 * the blob again on next use) and remove the snapshot. Without it, the
	 * snapshot is removed and the layer unpacked when needed.
	 */
	int (*layer_adopt)(ib_snapshotter *self, const char *key, const ib_digest *diff_id);
};

/**
 * Make a backend whose files live under `dir` (`<store root>/snapshots/<name>`,
 * created already). `param` is what was given at registration. A backend
 * that cannot work on this host returns IB_EUNSUPPORTED with the reason.
 */
typedef int (*ib_snapshotter_ctor)(ib_snapshotter **out, const char *dir, void *param);

/** Register (or replace) the backend `name` (1..32 characters of [a-z0-9_-]). */
IB_EXTERN(int) ib_snapshotter_register(const char *name, ib_snapshotter_ctor ctor, void *param);
/** Forget a registered backend. IB_ENOTFOUND when none has that name. */
IB_EXTERN(int) ib_snapshotter_unregister(const char *name);

IB_END_DECL

#endif
