/*
 * Internal error helpers. Every layer reports failures through these, so the
 * caller finds one message in ib_error_last() that names the object, path or
 * line and the reason, with context added on the way up:
 *
 *   ib_error_set(IB_LAYER_SNAPSHOT, "mount overlay on `%s`", dir);   // + errno text? use _os
 *   ib_error_set_os(IB_LAYER_SNAPSHOT, "open `%s`", path);           // "...: No such file"
 *   ib_error_prefix("step 4/9 RUN");  // "step 4/9 RUN: mount overlay on ..."
 */
#ifndef IB_UTIL_ERROR_H
#define IB_UTIL_ERROR_H

#include "imagebuild/errors.h"

#if defined(__GNUC__)
#define IB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define IB_PRINTF(a, b)
#endif

/* Set the error of this thread; returns `code` so callers can `return ib_error_set...`. */
int ib_error_setc(int code, int layer, const char *fmt, ...) IB_PRINTF(3, 4);

/* Same with IB_ERROR as the code. Returns IB_ERROR. */
int ib_error_set(int layer, const char *fmt, ...) IB_PRINTF(2, 3);

/* Append ": <strerror(errno)>" to the message; code IB_ENOTFOUND for ENOENT, else IB_ERROR. */
int ib_error_set_os(int layer, const char *fmt, ...) IB_PRINTF(2, 3);

/*
 * The errno behind the current error: what ib_error_set_os saw, or what
 * ib_error_note_errno attached; 0 when the error did not come from the OS.
 * Any other ib_error_set* clears it; ib_error_prefix keeps it. For callers
 * (and tests) that must tell e.g. EROFS from text that merely reads like it.
 */
int ib_error_errno(void);
void ib_error_note_errno(int e);

/* An error set without a layer (ib_error_set_str, by a backend) gets `layer`. */
void ib_error_adopt_layer(int layer);

/* Out of memory. Returns IB_ERROR. */
int ib_error_oom(void);

/* Put "<context>: " in front of the current message. Keeps code and layer. */
void ib_error_prefix(const char *fmt, ...) IB_PRINTF(1, 2);

/* The code of the current error (IB_OK when none). */
int ib_error_current(void);

/* Save and restore the current error around cleanup code that may fail. */
typedef struct {
	int code;
	int layer;
	char *message;
	int os_errno;
} ib_error_saved;
void ib_error_save(ib_error_saved *s);
void ib_error_restore(ib_error_saved *s);
/* Forget a saved error instead of restoring it. */
void ib_error_saved_dispose(ib_error_saved *s);

/* Allocation wrappers that set the OOM error (never abort). */
void *ib_malloc(size_t n);
void *ib_calloc(size_t n, size_t size);
void *ib_realloc(void *p, size_t n);
char *ib_strdup(const char *s);
char *ib_strndup(const char *s, size_t n);
char *ib_sprintf(const char *fmt, ...) IB_PRINTF(1, 2);

#endif
