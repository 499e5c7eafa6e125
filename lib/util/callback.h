/*
 * The callback contract of common.h, for every layer: a callback's
 * non-zero return, or the caller's cancel flag, stops the work. Inside the
 * library the work unwinds with IB_EUSER (so every `rc < 0` path cleans
 * up), while this thread's error keeps the callback's value as its code
 * and IB_LAYER_CALLBACK as its layer; the public entry point returns
 * ib_callback_result(rc), which is that value.
 */
#ifndef IB_UTIL_CALLBACK_H
#define IB_UTIL_CALLBACK_H

#include "imagebuild/common.h"
#include "util/error.h"

/* Whether the caller's cancel flag is set (NULL callbacks: never). */
int ib_callback_cancelled(const ib_callbacks *cb);

/*
 * A callback returned `value` (non-zero) while doing `what`: record it and
 * return IB_EUSER. `what` names the work ("build", "pull `x`").
 */
int ib_callback_stopped(int value, const char *what);

/* The cancel flag was seen set during `what`: record it, return IB_EUSER. */
int ib_callback_cancel_error(const char *what);

/* IB_EUSER after ib_callback_stopped/cancel_error: 0, or the cancel check's IB_EUSER. */
int ib_callback_check(const ib_callbacks *cb, const char *what);

/*
 * Call the progress callback (when there is one) after checking the cancel
 * flag: 0 to go on, else IB_EUSER with the error recorded.
 */
int ib_callback_progress(const ib_callbacks *cb, ib_progress_kind kind, const char *id,
			 const char *text, uint64_t current, uint64_t total, int cached,
			 const char *what);

/* What a public call returns: `rc`, or the value the callback stopped it with. */
int ib_callback_result(int rc);

/* A public call's result used inside the library: a positive callback value becomes IB_EUSER. */
static inline int ib_callback_internal(int rc)
{
	return rc > 0 ? IB_EUSER : rc;
}

/* Check the version of caller's callbacks (1 or 2); NULL is fine. */
int ib_callback_validate(const ib_callbacks *cb, int layer);

#endif
