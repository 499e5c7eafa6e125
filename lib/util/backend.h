/*
 * The one registry of pluggable backends (isolation, snapshotter): names,
 * registration, listing and lifetimes are the same for both kinds, and so
 * is the way their failures are reported (see include/imagebuild/sys/errors.h).
 *
 * Each layer describes its kind once (an ib_backend_class: its label for
 * messages, its error layer, its built-in backends) and passes it to every
 * call; the built-ins are registered on first use, and again after the
 * final ib_shutdown() forgot every registration.
 */
#ifndef IB_UTIL_BACKEND_H
#define IB_UTIL_BACKEND_H

#include "imagebuild/buffer.h"

typedef enum {
	IB_BACKEND_ISOLATION = 0,
	IB_BACKEND_SNAPSHOTTER = 1,
	IB_BACKEND_KINDS
} ib_backend_kind;

/* A constructor of the kind's own type, stored without it. */
typedef void (*ib_backend_fn)(void);

typedef struct {
	const char *name;
	ib_backend_fn ctor;
} ib_backend_builtin;

typedef struct {
	ib_backend_kind kind;
	const char *label;                 /* "isolation backend", "snapshotter" */
	int layer;                         /* IB_LAYER_EXECUTE, IB_LAYER_SNAPSHOT */
	const ib_backend_builtin *builtins;
	size_t nbuiltins;
} ib_backend_class;

/* 1..32 characters of [a-z0-9_-]; else IB_EINVALID naming the kind. */
int ib_backend_check_name(const ib_backend_class *cls, const char *name);

/* Register or replace; `param` is borrowed. */
int ib_backend_register(const ib_backend_class *cls, const char *name, ib_backend_fn ctor,
			void *param);
/* IB_ENOTFOUND when no backend has that name. */
int ib_backend_unregister(const ib_backend_class *cls, const char *name);
/*
 * The constructor and parameter of `name`, and the name as the registry
 * keeps it (valid until the process ends, for handles to point at).
 * IB_ENOTFOUND (naming the known ones) when none is registered.
 */
int ib_backend_find(const ib_backend_class *cls, const char *name, ib_backend_fn *ctor,
		    void **param, const char **interned);
/* The registered names, comma-separated ("a,b"), in registration order; replaces `out`. */
int ib_backend_list(const ib_backend_class *cls, ib_buf *out);

/* Forget every registration (the built-ins come back on next use): the final ib_shutdown(). */
void ib_backend_reset(void);

/*
 * Around every call into a backend function: `begin` sets the error of the
 * thread aside and clears it, so what the backend leaves is its own; `end`
 * returns `rc`. When it is >= 0 the error set aside comes back (a pending
 * error of the caller's cleanup path survives a backend call); when < 0
 * and the backend set no error, it sets "<label> `<name>`: <op> failed
 * without a reason"; an error the backend set without a layer
 * (ib_error_set_str) gets the kind's.
 */
#include "util/error.h"
typedef struct {
	ib_error_saved before;
} ib_backend_call;
void ib_backend_call_begin(ib_backend_call *c);
int ib_backend_call_end(ib_backend_call *c, const ib_backend_class *cls, const char *name,
			const char *op, int rc);
/* `end` when the failure is not the backend's to explain (a callback's value): no error is set. */
int ib_backend_call_end_quiet(ib_backend_call *c, int rc);

#endif
