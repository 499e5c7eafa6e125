/*
 * errors.h: error codes and the per-thread last error.
 *
 * Every function that can fail returns an int: 0 on success, < 0 on failure.
 * The details of the last failure on this thread are in ib_error_last().
 */
#ifndef IMAGEBUILD_ERRORS_H
#define IMAGEBUILD_ERRORS_H

#include "common.h"

IB_BEGIN_DECL

/** The few codes a caller may want to act on; anything else is IB_ERROR. */
typedef enum {
	IB_OK = 0,
	IB_ERROR = -1,        /* generic failure, out of memory, I/O... */
	IB_ENOTFOUND = -3,    /* the object does not exist */
	IB_EEXISTS = -4,      /* the object already exists */
	IB_EINVALID = -5,     /* an argument or input is invalid */
	IB_ESYNTAX = -6,      /* a syntax error in a Dockerfile, reference... */
	IB_EUNSUPPORTED = -7, /* valid, but not supported (here, or yet) */
	IB_EUSER = -8         /* a callback asked to stop */
} ib_error_code;

/** Which part of the library an error comes from. */
typedef enum {
	IB_LAYER_NONE = 0,
	IB_LAYER_OS,       /* a system call */
	IB_LAYER_NOMEMORY,
	IB_LAYER_UTIL,
	IB_LAYER_PARSE,
	IB_LAYER_PLAN,
	IB_LAYER_EXECUTE,
	IB_LAYER_SNAPSHOT,
	IB_LAYER_STORE,
	IB_LAYER_PUSH,
	IB_LAYER_BUILD,
	IB_LAYER_CALLBACK
} ib_error_layer;

/** The details of an error. */
typedef struct {
	int code;            /* the ib_error_code that was returned */
	int layer;           /* an ib_error_layer */
	const char *message; /* never NULL; "no error" when there is none */
} ib_error;

/**
 * The last error of this thread. Never NULL; valid until the next call
 * into the library on this thread.
 */
IB_EXTERN(const ib_error *) ib_error_last(void);

/** Forget the last error of this thread. */
IB_EXTERN(void) ib_error_clear(void);

IB_END_DECL

#endif
