/*
 * snapshot.h: root filesystems made of layers (see docs/ARCHITECTURE.md).
 *
 * A snapshotter keeps, under `<store root>/snapshots/<backend>/`, the layers
 * it has unpacked and the writable snapshots it has prepared. A writable
 * snapshot has a caller-chosen key (a container id, a build step id) and is
 * made from an ordered chain of layer diff_ids, lowest first; the layers
 * are read from the store (uncompressed, gzip or zstd tar; the blob's digest
 * is the layer's diff_id). Its changes become an OCI layer (tar with
 * whiteouts) streamed into the store.
 *
 * Two backends are built in, chosen by name: "overlay" (kernel overlayfs;
 * each layer unpacked once and shared, the diff read from the upper
 * directory) and "copy" (plain directories, diff by tree comparison). Both
 * produce the same layer for the same changes. Embedders can add their own
 * (sys/snapshotter.h).
 *
 * A snapshotter handle is single-thread; separate handles (and processes)
 * may share a store.
 */
#ifndef IMAGEBUILD_SNAPSHOT_H
#define IMAGEBUILD_SNAPSHOT_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"
#include "digest.h"
#include "store.h"

IB_BEGIN_DECL

/* 2 added callbacks */
#define IB_SNAPSHOTTER_OPTIONS_VERSION 2
/** Options of ib_snapshotter_open(). */
typedef struct {
	unsigned int version;  /* IB_SNAPSHOTTER_OPTIONS_VERSION */
	unsigned int flags;    /* IB_SNAPSHOTTER_* */
	/* version 2 */
	/*
	 * For the handle's life: ib_snapshot_diff, ib_snapshot_commit and
	 * ib_snapshot_commit_remove poll callbacks->cancel and report BYTES
	 * "layer:<key>" (see common.h). Borrowed: it must outlive the handle.
	 * NULL: none.
	 */
	const ib_callbacks *callbacks;
} ib_snapshotter_options;

/*
 * Opening a snapshotter cleans up after processes that were killed (see
 * ib_snapshot_prepare); with this flag it leaves that to prune, so that
 * ib_snapshotter_fsck() can report it.
 */
#define IB_SNAPSHOTTER_KEEP_STALE 1u
/** A static initializer: the current version (IB_SNAPSHOTTER_OPTIONS_VERSION) and every default. */
#define IB_SNAPSHOTTER_OPTIONS_INIT { IB_SNAPSHOTTER_OPTIONS_VERSION, 0, NULL }

/** Initialise `opts` like IB_SNAPSHOTTER_OPTIONS_INIT for `version` (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_snapshotter_options_init(ib_snapshotter_options *opts, unsigned int version);

/**
 * Open the snapshotter `name` ("overlay", "copy", or one an embedder
 * registered) on `store`, which must outlive it. NULL name means "overlay"
 * when the host supports it, else "copy". IB_ENOTFOUND for an unknown name,
 * IB_EUNSUPPORTED when the backend cannot work on this host.
 */
IB_EXTERN(int) ib_snapshotter_open(ib_snapshotter **out, ib_store *store, const char *name,
				   const ib_snapshotter_options *opts);
/** Close the snapshotter (its snapshots and layers stay on disk). NULL is fine. */
IB_EXTERN(void) ib_snapshotter_free(ib_snapshotter *snap);
/** The backend's name (borrowed; valid as long as `snap`). */
IB_EXTERN(const char *) ib_snapshotter_name(const ib_snapshotter *snap);

/**
 * The names of the registered snapshotters, comma-separated, in
 * registration order (built-in ones first); replaces `out`. See
 * sys/snapshotter.h for the registry.
 */
IB_EXTERN(int) ib_snapshotter_list(ib_buf *out);

/**
 * Make sure the layer `diff_id` is unpacked (a no-op for backends that keep
 * no unpacked layers). Reads the blob of that digest from the store.
 */
IB_EXTERN(int) ib_snapshot_layer_ensure(ib_snapshotter *snap, const ib_digest *diff_id);

/**
 * Prepare the writable snapshot `key` on the chain of layers `chain[0..n)`
 * (lowest first; n = 0 is an empty root), unpacking the layers that are
 * not yet. IB_EEXISTS when the key is taken. Keys are 1..128 characters of
 * [A-Za-z0-9_.-], not starting with '.' or '-'.
 *
 * The snapshot is the active state of the calling process (recorded as its
 * pid and start time): when that process is gone (killed, SIGKILL
 * included) before removing it, the next ib_snapshotter_prune() or
 * ib_snapshotter_open() unmounts and removes it. ib_snapshot_persist()
 * makes it outlive the process. Likewise a mount is undone once the
 * process that made it is gone. While it is prepared, no prune removes
 * the layers it stands on.
 */
IB_EXTERN(int) ib_snapshot_prepare(ib_snapshotter *snap, const char *key,
				   const ib_digest *chain, size_t n);

/**
 * Make the snapshot `key` outlive the process that prepared it (a
 * container's, once its record is written): it stays until removed, or
 * until a prune whose keep list lacks it. IB_ENOTFOUND when missing.
 */
IB_EXTERN(int) ib_snapshot_persist(ib_snapshotter *snap, const char *key);

/**
 * Make the calling process the owner of the snapshot `key` (the inverse of
 * ib_snapshot_persist()): while it lives, no prune and no reaper removes
 * the snapshot; once it is gone, they do (unless a container record names
 * it). Adopt a container's snapshot before dropping its record, then
 * remove it: a prune running meanwhile then neither removes it under the
 * remover nor races it. IB_ENOTFOUND when missing.
 */
IB_EXTERN(int) ib_snapshot_adopt(ib_snapshotter *snap, const char *key);

/**
 * 1 when the snapshot `key` is what a process that is gone left behind (its
 * active state, or a mount of it), which prune cleans up; 0 when not.
 */
IB_EXTERN(int) ib_snapshot_stale(ib_snapshotter *snap, const char *key);

/**
 * Report what processes that are gone left (snapshots, mounts), one line
 * each in `report` (may be NULL). 0 when there is nothing, else
 * IB_EINVALID with the first as the error. Open the snapshotter with
 * IB_SNAPSHOTTER_KEEP_STALE to see them.
 */
IB_EXTERN(int) ib_snapshotter_fsck(ib_buf *report, ib_snapshotter *snap);

/**
 * Mount the snapshot (in the caller's mount namespace) and put the root path
 * in `rootfs`. The overlay backend mounts a snapshot that is the calling
 * process's active state (prepared, not persisted) `volatile`: neither the
 * unmount nor an fsync inside it waits for the disk, as such a snapshot
 * does not outlive the process; ib_snapshot_commit_remove makes its files
 * durable as it turns them into a layer. A persisted snapshot is mounted
 * as usual.
 */
IB_EXTERN(int) ib_snapshot_mount(ib_buf *rootfs, ib_snapshotter *snap, const char *key);
/** Unmount; a snapshot that is not mounted is fine. */
IB_EXTERN(int) ib_snapshot_unmount(ib_snapshotter *snap, const char *key);

/** A big regular file of a snapshot, as ib_diff_options.content_source is asked about it. */
typedef struct {
	const char *path;  /* relative to the snapshot's root, as in the layer ("data/f.bin") */
	uint64_t ino;      /* its inode number (the same seen through a mount of the snapshot) */
	uint64_t size;     /* its size in bytes */
	int64_t mtime_sec; /* its modification time: seconds... */
	long mtime_nsec;   /* ...and nanoseconds */
} ib_diff_file;

/*
 * 2 added content_source. A caller with version 1 (the three first
 * members) is still served.
 */
#define IB_DIFF_OPTIONS_VERSION 2
/**
 * How a layer is written. SOURCE_DATE_EPOCH is never read from the
 * environment: the caller passes it (BuildKit's rewrite-timestamp).
 */
typedef struct {
	unsigned int version;        /* IB_DIFF_OPTIONS_VERSION */
	/* 1: file times later than `source_date_epoch` are clamped to it */
	int use_source_date_epoch;
	int64_t source_date_epoch;   /* seconds since 1970 (>= 0) */
	/* version 2 */
	/**
	 * Optional: for a regular file of 8 MiB or more, an fd to read its
	 * bytes from instead of the snapshot's own copy, or -1 for none. A
	 * caller that just copied the file from somewhere still in the page
	 * cache (a COPY from the build context, whose copy went straight to
	 * the disk) saves reading it back. The fd is read from offset 0 and
	 * closed by the diff; one whose size is not `file->size` is not used.
	 * The caller vouches for the bytes being the same: the layer's digest
	 * is made of them.
	 */
	int (*content_source)(const ib_diff_file *file, void *payload);
	void *content_payload; /* passed to content_source */
} ib_diff_options;
#define IB_DIFF_OPTIONS_INIT { IB_DIFF_OPTIONS_VERSION, 0, 0, NULL, NULL }

/** Initialise like IB_DIFF_OPTIONS_INIT for `version` (1 or 2; for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_diff_options_init(ib_diff_options *opts, unsigned int version);

/**
 * Where a layer stream goes: called with consecutive pieces. A non-zero
 * return stops the work, and the outer call returns exactly that value
 * (the callback contract of common.h).
 */
typedef int (*ib_snapshot_write_cb)(const void *data, size_t len, void *payload);

/**
 * The changes of snapshot `key` against its chain, as an uncompressed OCI
 * layer tar (PAX, entries in a stable order, whiteouts for deletions,
 * opaque directories, hardlinks kept). With `opts` asking for it, file
 * times later than its source_date_epoch are clamped to it (NULL: times
 * kept). Works mounted or not.
 */
IB_EXTERN(int) ib_snapshot_diff(ib_snapshotter *snap, const char *key, const ib_diff_options *opts,
				ib_snapshot_write_cb write, void *payload);

/**
 * The diff of `key` streamed into a new store blob in one pass; its digest
 * (the layer's diff_id, as the blob is uncompressed) and size come back in
 * `diff_id` and `size` (each may be NULL).
 */
IB_EXTERN(int) ib_snapshot_commit(ib_digest *diff_id, uint64_t *size, ib_snapshotter *snap,
				  const char *key, const ib_diff_options *opts);

/**
 * ib_snapshot_commit(), then remove the (unmounted) snapshot; a backend
 * that can reuses the snapshot's files as the unpacked layer, so the next
 * snapshot on it needs no unpacking (what a build does after each step).
 * Holds a store lease (ib_store_lease_acquire) for its duration, so no GC
 * or prune runs between keeping the files and recording the layer; as after
 * ib_snapshot_commit, the caller holds its own until something references
 * the layer.
 */
IB_EXTERN(int) ib_snapshot_commit_remove(ib_digest *diff_id, uint64_t *size, ib_snapshotter *snap,
					 const char *key, const ib_diff_options *opts);

/** Remove the snapshot `key`. IB_EEXISTS ("in use") while it is mounted. IB_ENOTFOUND if missing. */
IB_EXTERN(int) ib_snapshot_remove(ib_snapshotter *snap, const char *key);

/** 1 when the snapshot `key` exists, 0 when not. */
IB_EXTERN(int) ib_snapshot_exists(ib_snapshotter *snap, const char *key);

/**
 * Called once per item; a non-zero return stops the listing, which returns
 * exactly that value (the callback contract of common.h).
 */
typedef int (*ib_snapshot_key_cb)(const char *key, void *payload);
/** Called once per unpacked layer by ib_snapshot_layer_list(); a non-zero return stops it, which returns exactly that value. */
typedef int (*ib_snapshot_layer_cb)(const ib_digest *diff_id, void *payload);

/** The keys of the writable snapshots, in byte order. */
IB_EXTERN(int) ib_snapshot_list(ib_snapshotter *snap, ib_snapshot_key_cb cb, void *payload);
/** The layers unpacked by the backend, in digest order. */
IB_EXTERN(int) ib_snapshot_layer_list(ib_snapshotter *snap, ib_snapshot_layer_cb cb, void *payload);

/**
 * Remove every unpacked layer not in `keep_layers[0..nlayers)` and every
 * writable snapshot whose key is not in `keep_keys[0..nkeys)`. Snapshots
 * that are the active state of a running process or mounted, and the
 * layers they stand on, are kept. What dead processes left is cleaned
 * first: their snapshots are unmounted (detached) and removed (those in
 * `keep_keys` only unmounted), their mounts undone. `freed` (may be NULL)
 * counts the snapshots and layers that went.
 */
IB_EXTERN(int) ib_snapshotter_prune(size_t *freed, ib_snapshotter *snap,
				    const ib_digest *keep_layers, size_t nlayers,
				    const char *const *keep_keys, size_t nkeys);

/* ---- building blocks, for tests, tools and other backends ---- */

/** How ib_snapshot_apply_tar() turns OCI whiteouts into a tree. */
typedef enum {
	IB_WHITEOUT_DELETE = 0,  /* delete what they name: a full tree */
	IB_WHITEOUT_OVERLAY = 1  /* overlayfs whiteouts (0/0 char devices, opaque xattr): one layer */
} ib_whiteout_mode;

/**
 * Unpack the tar stream read from `tar_fd` (uncompressed, gzip or zstd) into
 * the directory `dir_fd`, safely: nothing is written outside it, whatever
 * the entries say. `label` names the layer in errors ("layer <label>: entry
 * `<name>`: <reason>"); NULL is fine. Paths may be longer than PATH_MAX;
 * a layer holds at most 16,384 levels, 255-byte names and 256 KiB paths
 * (IB_EINVALID beyond), the limits ib_snapshot_diff_trees() keeps. Past
 * PATH_MAX, a symlink among an entry's parents is not followed (IB_EUNSUPPORTED).
 * A hardlink must name a file the same layer wrote before it: one into the
 * layers below is IB_EINVALID in both modes.
 */
IB_EXTERN(int) ib_snapshot_apply_tar(int dir_fd, int tar_fd, ib_whiteout_mode mode,
				     const char *label);

/** How ib_snapshot_diff_trees() reads the changed tree. */
typedef enum {
	IB_DIFF_TREE = 0,         /* `changed_fd` is the whole new tree */
	IB_DIFF_OVERLAY_UPPER = 1 /* `changed_fd` is an overlayfs upper directory */
} ib_diff_mode;

/**
 * The OCI layer tar of the changes from the tree `parent_fd` (-1: empty) to
 * the tree `changed_fd`, as ib_snapshot_diff() writes it. A tree beyond the
 * limits ib_snapshot_apply_tar() reads is IB_EINVALID, naming the path.
 * `opts` as for ib_snapshot_diff() (NULL: times kept).
 */
IB_EXTERN(int) ib_snapshot_diff_trees(int changed_fd, int parent_fd, ib_diff_mode mode,
				      const ib_diff_options *opts, ib_snapshot_write_cb write,
				      void *payload);

IB_END_DECL

#endif
