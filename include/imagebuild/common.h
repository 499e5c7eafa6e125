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

/** Log levels of ib_log_cb, most important first. */
typedef enum {
	IB_LOG_ERROR = 0,
	IB_LOG_WARNING = 1,
	IB_LOG_INFO = 2,
	IB_LOG_DEBUG = 3
} ib_log_level;

/**
 * A log line: one formatted UTF-8 line without its newline. The payload is
 * the caller's, passed last.
 */
typedef void (*ib_log_cb)(ib_log_level level, const char *line, void *payload);

/** What kind of work an ib_progress reports. */
typedef enum {
	IB_PROGRESS_STEP = 0,     /* a build step starts; current/total count steps */
	IB_PROGRESS_STEP_DONE = 1,/* a build step ended (cached says whether it ran) */
	IB_PROGRESS_BYTES = 2,    /* bytes moved: layer written, blob sent... */
	IB_PROGRESS_OUTPUT = 3    /* a line of a process's output */
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
	const char *id;         /* what the report is about: "2/7", a digest... */
	const char *text;       /* human text: "RUN make", an output line */
	uint64_t current;       /* step index or bytes done */
	uint64_t total;         /* step count or bytes expected, 0 if unknown */
	int cached;             /* STEP/STEP_DONE: the step came from the cache */
} ib_progress;

/**
 * A progress callback. A non-zero return cancels the work; the outer call
 * then returns that value (IB_EUSER by convention).
 */
typedef int (*ib_progress_cb)(const ib_progress *progress, void *payload);

#define IB_CALLBACKS_VERSION 1

/** The callbacks every long operation takes. NULL means "no reports". */
typedef struct {
	unsigned int version;   /* IB_CALLBACKS_VERSION */
	/** Called with progress reports, or NULL. */
	ib_progress_cb progress;
	/** Called with log lines, or NULL. */
	ib_log_cb log;
	/** Passed last to both callbacks. */
	void *payload;
} ib_callbacks;

#define IB_CALLBACKS_INIT { IB_CALLBACKS_VERSION, NULL, NULL, NULL }

IB_END_DECL

#endif
