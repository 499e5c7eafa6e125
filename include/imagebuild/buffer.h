/*
 * buffer.h: a growable byte buffer, the way the library returns strings.
 */
#ifndef IMAGEBUILD_BUFFER_H
#define IMAGEBUILD_BUFFER_H

#include "common.h"

IB_BEGIN_DECL

/**
 * A growable buffer. `ptr` is always NUL-terminated when non-NULL (the NUL
 * is not counted in `size`). Initialise with IB_BUF_INIT; release with
 * ib_buf_dispose(). The library owns what it puts in; never free() `ptr`.
 *
 * One rule for outputs: a function that gives its result in a caller's
 * ib_buf (`out`, `report`, `rootfs`, ...) REPLACES what the buffer held; it
 * never appends, so a buffer can be reused from call to call without
 * ib_buf_clear(). On failure its content is unspecified (still a valid
 * buffer to dispose). Only ib_buf_put() and ib_buf_puts() below append.
 */
typedef struct {
	/** The bytes, NUL-terminated; NULL while nothing was allocated. */
	char *ptr;
	size_t size;   /* bytes used */
	size_t asize;  /* bytes allocated */
} ib_buf;

#define IB_BUF_INIT { NULL, 0, 0 }

/** Release the memory of a buffer and reset it to empty. NULL is fine. */
IB_EXTERN(void) ib_buf_dispose(ib_buf *buf);

/** Make room for at least `size` bytes (plus the NUL). */
IB_EXTERN(int) ib_buf_grow(ib_buf *buf, size_t size);

/** Replace the content with `len` bytes of `data`. */
IB_EXTERN(int) ib_buf_set(ib_buf *buf, const void *data, size_t len);

/** Append `len` bytes. */
IB_EXTERN(int) ib_buf_put(ib_buf *buf, const void *data, size_t len);

/** Append a NUL-terminated string. */
IB_EXTERN(int) ib_buf_puts(ib_buf *buf, const char *str);

/** Empty the buffer, keeping its memory. */
IB_EXTERN(void) ib_buf_clear(ib_buf *buf);

/**
 * A list of strings owned by the library, shared by every layer; release
 * with ib_strarray_dispose().
 */
typedef struct {
	char **strings; /* `count` NUL-terminated strings */
	/** How many strings. */
	size_t count;
} ib_strarray;

#define IB_STRARRAY_INIT { NULL, 0 }

/** Free the strings and reset the array to empty. NULL is fine. */
IB_EXTERN(void) ib_strarray_dispose(ib_strarray *array);

IB_END_DECL

#endif
