/* Internal helpers of the snapshot layer. */
#ifndef IB_SNAPSHOT_INTERNAL_H
#define IB_SNAPSHOT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include "imagebuild/sys/snapshotter.h"

/* The built-in backends. */
int ib_snapshot__overlay_new(ib_snapshotter **out, const char *dir, void *param);
int ib_snapshot__copy_new(ib_snapshotter **out, const char *dir, void *param);
int ib_snapshot__diff_options(ib_diff_options *out, const ib_diff_options *opts); /* checked copy; NULL: defaults */
/* The snapshotter kind in the backend registry (snapshotter.c; util/backend.h). */
#include "util/backend.h"
extern const ib_backend_class ib_snapshot__class;
/*
 * Every call of a backend function goes through this: the thread's error
 * is set aside and cleared before (and comes back when the call succeeds),
 * and a failure without an error gets one naming the backend and `op`
 * (sys/errors.h).
 */
#define IB_SNAP_CALL(snap, op, call) __extension__({ \
		ib_backend_call call__; \
		ib_backend_call_begin(&call__); \
		int rc__ = (call); \
		ib_backend_call_end(&call__, &ib_snapshot__class, ib_snapshotter_name(snap), (op), rc__); \
	})

/* overlay.c: 1 when `snap` is the built-in overlay backend; an adopted layer's tar made again. */
int ib_snapshot__overlay_is(const ib_snapshotter *snap);
int ib_snapshot__overlay_layer_diff(ib_snapshotter *self, const ib_digest *id, const ib_digest *chain, size_t n,
				    const ib_diff_options *opts, ib_snapshot_write_cb write, void *payload);
/*
 * overlay.c: start writing the snapshot `key`'s upper directory to the disk
 * (syncfs on a thread of its own) while the commit reads and hashes it, so
 * that layer_adopt's syncfs finds the work done; wait for it. A volatile
 * mount left it all unwritten (see overlay.c). NULL (nothing started) is
 * fine for wait; errors are left to layer_adopt's own syncfs.
 */
typedef struct ib_snapshot__flush ib_snapshot__flush;
ib_snapshot__flush *ib_snapshot__overlay_flush(ib_snapshotter *self, const char *key);
void ib_snapshot__overlay_flush_wait(ib_snapshot__flush *f);

/*
 * regen.c: a snapshot of the overlay backend committed by hashing its diff
 * only (`diff` is snapshotter.c's, with progress and cancel); `*source` is
 * then the store's layer source record to write once the layer is adopted,
 * or NULL when the tar must be written as a blob (ib_snapshot_commit).
 */
typedef int (*ib_snapshot__diff_fn)(ib_snapshotter *snap, const char *key, const ib_diff_options *opts,
				    ib_snapshot_write_cb write, void *payload);
int ib_snapshot__commit_unpacked(ib_digest *diff_id, uint64_t *size, char **source, ib_snapshotter *snap,
				 const char *key, const ib_diff_options *opts, ib_snapshot__diff_fn diff);
/* overlay.c: remove the half-made and half-removed layers of killed processes (under the prune lease). */
int ib_snapshot__overlay_sweep(ib_snapshotter *snap, size_t *count);
/* 1 when the store holds layer `d` itself (blob or record), 0 when not or only as a remote layer. */
int ib_snapshot__store_holds(ib_store *store, const ib_digest *d);

/* 1 when overlayfs can be used here (root, overlay in /proc/filesystems). */
int ib_snapshot__overlay_supported(void);

/* rm -rf of `name` in `dirfd`, fd-relative, never following symlinks. ENOENT is fine. */
int ib_snapshot__rm_at(int dirfd, const char *name);
/*
 * overlayfs' own extended attributes: trusted.overlay.*, and in a user
 * namespace (rootless, where overlay is mounted with `userxattr`) also
 * user.overlay.*. ib_snapshot__ovl_opaque is the opaque mark overlay reads
 * there.
 */
int ib_snapshot__ovl_xattr(const char *name);
const char *ib_snapshot__ovl_opaque(void);

/* Remove every entry inside the directory `dirfd`. */
int ib_snapshot__empty_dir(int dirfd);
/* Sorted names of a directory (without . and ..); free with ib_snapshot__names_free. */
int ib_snapshot__names(char ***out, size_t *n, int dirfd);
void ib_snapshot__names_free(char **names, size_t n);

/*
 * The extended attributes of `name` in `dirfd` (st gives its type), sorted by
 * name, as "name\0" + 4-byte little-endian value length + value, repeated.
 * overlayfs' own attributes (ib_snapshot__ovl_xattr) are left out.
 */
typedef struct {
	char *data;
	size_t len;
} ib_snapshot__xattr_list;
int ib_snapshot__xattrs(ib_snapshot__xattr_list *out, int dirfd, const char *name);
/* The same of a file open as `fd` (`name` for the errors). */
int ib_snapshot__xattrs_fd(ib_snapshot__xattr_list *out, int fd, const char *name);
void ib_snapshot__xattrs_free(ib_snapshot__xattr_list *x);
/* Iterate: *pos starts at 0; 1 while there is one more, 0 at the end. */
int ib_snapshot__xattrs_next(const ib_snapshot__xattr_list *x, size_t *pos, const char **name,
			     const void **value, size_t *vlen);

/* A fd-relative "/proc/self/fd/<dirfd>/<name>" path for the l*xattr calls. */
void ib_snapshot__proc_path(char *buf, size_t size, int dirfd, const char *name);

/* Key validation for snapshot keys. */
int ib_snapshot__check_key(const char *key);



/* The `chain` file of a snapshot: one `sha256:<hex>` per line, lowest first. */
int ib_snapshot__chain_write(const char *path, const ib_digest *chain, size_t n);
int ib_snapshot__chain_read(ib_digest **chain, size_t *n, const char *path);

/* Sorted names of the directory at `path` ([] when it is missing). */
int ib_snapshot__list_dir(char ***out, size_t *n, const char *path);

/*
 * What the built-in backends share: their files under `dir`, writable
 * snapshots in `<dir>/active/<key>/` (with the `chain` file of their
 * layers). Each backend's struct starts with this one.
 */
typedef struct {
	ib_snapshotter parent;
	char *dir;
} ib_snapshot__backend;

/* `<dir>/active/<key>[/<sub>]`, or NULL (OOM). */
char *ib_snapshot__active(const ib_snapshot__backend *be, const char *key, const char *sub);
/* The vtable entries both backends use as they are. */
int ib_snapshot__backend_remove(ib_snapshotter *self, const char *key);
int ib_snapshot__backend_list(ib_snapshotter *self, ib_snapshot_key_cb cb, void *payload);
int ib_snapshot__backend_chain(ib_snapshotter *self, const char *key, ib_digest **chain, size_t *n);
void ib_snapshot__backend_free(ib_snapshotter *self);

/* ---- owners (owner.c): what a killed process leaves is cleaned up ---- */
#include "util/lock.h"
enum { IB_OWNER_NONE = 0, IB_OWNER_ALIVE = 1, IB_OWNER_DEAD = 2 };
/* Set while the reaper unmounts: backends detach (MNT_DETACH) instead of failing when busy. */
extern _Thread_local int ib_snapshot__detach;
/* "PID START BOOT PIDNS\n" of this process. */
int ib_snapshot__owner_self(char *out, size_t size);
/* 1 when the process of an owner record still runs; its pid in *pid (may be NULL). */
int ib_snapshot__owner_alive(const char *record, long *pid);
/* `<root>/snapshots/<name>/<sub>[/<key>]`, or NULL (OOM). */
char *ib_snapshot__meta(ib_snapshotter *snap, const char *sub, const char *key);
int ib_snapshot__meta_init(ib_snapshotter *snap);
/* The prune lock (IB_LOCK_SHARED: a prepare; IB_LOCK_EXCLUSIVE: prune, reaper). */
int ib_snapshot__lease(ib_lock *lock, ib_snapshotter *snap, int flags);
/* Record this process as `sub` ("owners", "mounts") of `key`; drop such a record. */
int ib_snapshot__owner_write(ib_snapshotter *snap, const char *sub, const char *key);
void ib_snapshot__owner_drop(ib_snapshotter *snap, const char *sub, const char *key);
/* IB_OWNER_NONE, _ALIVE or _DEAD; the recorded pid in *pid (may be NULL). */
int ib_snapshot__owner_state(ib_snapshotter *snap, const char *sub, const char *key, long *pid);
/*
 * 1 when `key` is the active state of this very process (its owner record is
 * ours, not persisted): it cannot outlive us, so nothing of it needs to
 * survive a crash. 0 when not, < 0 on error.
 */
int ib_snapshot__owner_is_self(ib_snapshotter *snap, const char *key);
/*
 * Under the exclusive prune lock: unmount (detached) and remove the
 * snapshots of dead owners (those in keep[] are unmounted and kept), and
 * unmount those that dead processes mounted. `freed` counts removals.
 */
int ib_snapshot__reap(size_t *freed, ib_snapshotter *snap, const char *const *keep, size_t nkeep);
#endif
