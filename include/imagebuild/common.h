/*
 * libimagebuild: build OCI container images from Dockerfiles, in-process.
 *
 * common.h: what every layer and every caller needs: the export macro,
 * library initialisation, and the progress and log callback types through
 * which every layer reports (so no layer needs another layer's header to
 * report).
 */
#ifndef IMAGEBUILD_COMMON_H
#define IMAGEBUILD_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define IB_BEGIN_DECL extern "C" {
#define IB_END_DECL }
#else
/** Opens `extern "C"` for C++ (empty in C). */
#define IB_BEGIN_DECL
/** Closes IB_BEGIN_DECL. */
#define IB_END_DECL
#endif

#if defined(__GNUC__)
/** Declares a public function of the library: exported, default visibility. */
#define IB_EXTERN(type) extern __attribute__((visibility("default"))) type
#else
#define IB_EXTERN(type) extern type
#endif

IB_BEGIN_DECL

/**
 * Initialise the library. Reference counted: every call must be matched by
 * one ib_shutdown(). Returns the new count (> 0), or < 0 on error.
 * Most functions work without it; those that register built-in backends
 * or global state call it themselves.
 */
IB_EXTERN(int) ib_init(void);

/**
 * Drop one reference taken by ib_init(). Returns the remaining count. The
 * last one forgets every backend registered with ib_isolation_register()
 * and ib_snapshotter_register() (the built-in ones stay); free the handles
 * made from them first.
 */
IB_EXTERN(int) ib_shutdown(void);

/**
 * Rootless: when the calling process is not root, make it root of a new
 * user namespace (with its own mount namespace) in which the store, the
 * snapshotters and the isolation backends work as an ordinary user. The
 * caller's uid and gid map to 0, its subordinate ranges of /etc/subuid and
 * /etc/subgid (through the setuid newuidmap and newgidmap) to 1 and up;
 * without a range only the caller's own ids are mapped, and files of other
 * owners are refused where they appear. Does nothing and returns 0 for
 * root (or a process that already is root of a user namespace).
 *
 * This changes the whole process, for good: it must still be
 * single-threaded (else IB_EUNSUPPORTED), geteuid() is 0 afterwards, mounts
 * it makes are private to it and its children, and files it creates on the
 * host still belong to the caller. ib_store_open() calls it for a non-root
 * caller; call it first thing (before any thread starts) to control when
 * it happens. See docs/rootless.md. Returns 0, or < 0 with the reason in
 * ib_error_last() (user namespaces refused by the host, newuidmap failing).
 */
IB_EXTERN(int) ib_rootless_enter(void);

/** 1 when ib_rootless_enter() moved this process into a user namespace, else 0. */
IB_EXTERN(int) ib_rootless_active(void);

/** Log levels of ib_log_cb, most important first. */
typedef enum {
	IB_LOG_ERROR = 0,
	IB_LOG_WARNING = 1,
	IB_LOG_INFO = 2,
	IB_LOG_DEBUG = 3
} ib_log_level;

/**
 * A log line: one formatted UTF-8 line without its newline. The payload is
 * the caller's, passed last. It returns nothing: a log line cannot stop
 * the work (see "The callback contract" below).
 */
typedef void (*ib_log_cb)(ib_log_level level, const char *line, void *payload);

/**
 * The callback contract.
 *
 * One rule for every callback of the API (ib_progress_cb, the iterators
 * ib_snapshot_key_cb, ib_snapshot_layer_cb, ib_snapshot_write_cb,
 * ib_expand_lookup_cb; ib_log_cb returns nothing), as in libgit2: a
 * callback returns 0 to go on; any other value stops the work, which is
 * cleaned up as for any failure (processes killed, snapshots and mounts
 * removed, temporary files deleted), and the outer call returns exactly
 * that value (a callback returning 42 makes ib_build() return 42). The
 * error of ib_error_last() then has that value as its `code`, the layer
 * IB_LAYER_CALLBACK, and a message naming what was stopped. Return a
 * negative value (IB_EUSER by convention) so that callers testing `< 0`
 * see a failure.
 *
 * Cancellation: ib_callbacks.cancel points to an int the embedder owns
 * and sets non-zero, from any thread or a signal handler, to cancel. Every
 * long operation taking ib_callbacks polls it (ib_build, ib_pull, ib_push,
 * ib_execute_run, ib_container_run, ib_snapshot_diff/commit through a
 * snapshotter opened with callbacks, ib_store_save/load/import): a running
 * process is killed with its whole tree within 100 ms, even when it prints
 * nothing, everything is cleaned up, and the call returns IB_EUSER with a
 * message saying it was cancelled. It is the one way to cancel: no
 * options struct has a flag of its own.
 *
 * Threads: callbacks run on the thread that made the call, except those of
 * ib_pull and ib_push (and the pulls of a build), which move blobs on
 * worker threads and call them from there; the calls of one ib_pull or
 * ib_push are serialised (a lock of that call, not a process-wide one), so
 * a callback never runs twice at once for one call, while two calls in two
 * threads may call theirs concurrently. ib_build running stages at once
 * (ib_build_options.jobs) queues their reports to the calling thread, which
 * calls the callbacks one at a time. No callback may call back into
 * the library with the handles of the running call.
 */

/** What kind of work an ib_progress reports. */
typedef enum {
	/**
	 * A build step starts (also a cached one: `cached` then says it is
	 * taken from the cache and STEP_DONE follows at once). `id` is its
	 * label, as in the build output ("[2/7]", "[builder 3/5]"), `text`
	 * the instruction as written, `current` the 1-based number of the step
	 * in the build and `total` the number of steps of the build (it grows
	 * when a base image's ONBUILD triggers add steps).
	 */
	IB_PROGRESS_STEP = 0,
	/** The step ended: same id, text, current, total and cached as its STEP. */
	IB_PROGRESS_STEP_DONE = 1,
	/**
	 * Bytes moved. `current` bytes of `total` (0: unknown) so far; `id`
	 * says what moves and `text` how:
	 * - "context": the build hashing its context for COPY/ADD, text
	 *   "Hashing context", current = bytes hashed;
	 * - "layer:<key>": a snapshot's changes written as a layer (a build
	 *   step's, or ib_snapshot_commit), text "Writing layer";
	 * - the first 12 hex digits of a blob's digest: a blob of ib_pull
	 *   (text, in order: "Pulling fs layer", "Downloading", "Download
	 *   complete", "Pull complete"; or "Already exists"), also during a
	 *   build's pulls, or of ib_push ("Preparing", "Compressing",
	 *   "Pushing", "Pushed"; or "Layer already exists");
	 * - "blob:<12 hex>": a blob copied by ib_store_save or ib_store_load
	 *   (text "Saving", "Loading"), "import": the tarball of
	 *   ib_store_import (text "Importing").
	 * - "cache-import:<ref>", "cache-export:<ref>": a build's cache
	 *   sources and destinations (ib_build_options.cache_from/cache_to;
	 *   text "Importing cache manifest", "Imported cache manifest" with
	 *   current = total = its records; "Exporting cache" with current
	 *   records of total, "Exported cache").
	 */
	IB_PROGRESS_BYTES = 2,
	/** A line of a RUN's output: `id` is the step's label, `text` the line. */
	IB_PROGRESS_OUTPUT = 3
} ib_progress_kind;

#define IB_PROGRESS_VERSION 1

/**
 * Progress report. A versioned struct: fields are only appended. Strings are
 * borrowed for the duration of the callback.
 */
typedef struct {
	unsigned int version;   /* IB_PROGRESS_VERSION */
	/** What kind of report this is. */
	ib_progress_kind kind;
	const char *id;         /* what the report is about: see ib_progress_kind */
	const char *text;       /* human text: the instruction, a state, an output line */
	uint64_t current;       /* step number or bytes done */
	uint64_t total;         /* step count or bytes expected, 0 if unknown */
	int cached;             /* STEP/STEP_DONE: the step came from the cache */
} ib_progress;

/**
 * A progress callback. A non-zero return stops the work and the outer call
 * returns that value (see "The callback contract" above).
 */
typedef int (*ib_progress_cb)(const ib_progress *progress, void *payload);

/* 2 added cancel */
#define IB_CALLBACKS_VERSION 2

/**
 * The callbacks and the cancellation flag every long operation takes, by
 * pointer (`const ib_callbacks *callbacks` in its options; NULL: no
 * reports, no cancellation). Each member may be NULL.
 */
typedef struct {
	unsigned int version;   /* IB_CALLBACKS_VERSION */
	/** Called with progress reports, or NULL. */
	ib_progress_cb progress;
	/** Called with log lines, or NULL (on the calling thread, see above). */
	ib_log_cb log;
	/** Passed last to both callbacks. */
	void *payload;
	/* version 2 */
	/**
	 * Set `*cancel` non-zero (from any thread, or a signal handler) to
	 * cancel: the call returns IB_EUSER within 100 ms. NULL: only a
	 * callback's return value stops the work.
	 */
	const volatile int *cancel;
} ib_callbacks;

#define IB_CALLBACKS_INIT { IB_CALLBACKS_VERSION, NULL, NULL, NULL, NULL }

/** Initialise `cb` for `version` (1 or 2) as IB_CALLBACKS_INIT does (for bindings). */
IB_EXTERN(int) ib_callbacks_init(ib_callbacks *cb, unsigned int version);

IB_END_DECL

#endif
