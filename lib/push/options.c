/*
 * The _init() of the push layer's options, for bindings (cffi and other
 * FFIs cannot use the IB_*_INIT macros): the defaults of the INIT macro for
 * a version this library knows; others are refused.
 */
#include "push/internal.h"
#include "util/error.h"

#include <string.h>

#define PUSH_INIT_FN(fn, type, VERSION, INIT)                                                           \
	int fn(type *opts, unsigned int version)                                                       \
	{                                                                                              \
		if (!opts)                                                                             \
			return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, #fn ": NULL " #type);         \
		if (version != VERSION)                                                                \
			return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, #type " version %u is not supported", \
					     version);                                                 \
		type d = INIT;                                                                         \
		memset(opts, 0, sizeof *opts); /* padding too: bindings compare bytes */              \
		*opts = d;                                                                             \
		return 0;                                                                              \
	}

PUSH_INIT_FN(ib_registry_options_init, ib_registry_options, IB_REGISTRY_OPTIONS_VERSION,
	     IB_REGISTRY_OPTIONS_INIT)
PUSH_INIT_FN(ib_pull_options_init, ib_pull_options, IB_PULL_OPTIONS_VERSION, IB_PULL_OPTIONS_INIT)
PUSH_INIT_FN(ib_push_options_init, ib_push_options, IB_PUSH_OPTIONS_VERSION, IB_PUSH_OPTIONS_INIT)
