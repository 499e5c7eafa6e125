/*
 * sys/errors.h: error reporting for backend implementers (isolation,
 * snapshotter; see sys/isolation.h and sys/snapshotter.h), as libgit2's
 * sys/errors.h.
 *
 * A backend function that fails returns < 0 and says why with
 * ib_error_set_str(); the caller of the library then finds that message in
 * ib_error_last(), with the library's context in front of it ("step 3/5
 * RUN: ..."). The library clears the error of the thread before it calls a
 * backend function, so what is there when the function returns is the
 * backend's. When a backend returns < 0 without setting an error, the
 * library sets one naming the backend and the operation:
 * "isolation backend `mine`: start failed without a reason".
 */
#ifndef IMAGEBUILD_SYS_ERRORS_H
#define IMAGEBUILD_SYS_ERRORS_H

#include "../errors.h"

IB_BEGIN_DECL

/**
 * Set the error of the calling thread to the printf-style message `fmt`
 * with the code `code` (an ib_error_code < 0; anything else is taken as
 * IB_ERROR), replacing any error there. Returns the code, so a backend can
 * write `return ib_error_set_str(IB_ERROR, "disk on fire");`. The layer of
 * the error becomes the backend's (IB_LAYER_EXECUTE or IB_LAYER_SNAPSHOT)
 * when the library gets it back. Language bindings pass "%s" and the text.
 */
IB_EXTERN(int) ib_error_set_str(int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

IB_END_DECL

#endif
