/*
 * The _init() of the store's versioned structs, for bindings (cffi and
 * other FFIs cannot use the IB_*_INIT macros): each fills the defaults of
 * its INIT macro for a version this library knows, and refuses others.
 */
#include "store/internal.h"
#include "util/error.h"

#include <stddef.h>
#include <string.h>

#define STORE_INIT_FN(fn, type, VERSION, INIT)                                                          \
	int fn(type *opts, unsigned int version)                                                       \
	{                                                                                              \
		if (!opts)                                                                             \
			return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, #fn ": NULL " #type);        \
		if (version != VERSION)                                                                \
			return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, #type " version %u is not supported", \
					     version);                                                 \
		/* a static object's padding is zero (C11 6.7.9): bindings compare bytes */            \
		static const type d = INIT;                                                            \
		memcpy(opts, &d, sizeof *opts);                                                        \
		return 0;                                                                              \
	}

STORE_INIT_FN(ib_store_options_init, ib_store_options, IB_STORE_OPTIONS_VERSION, IB_STORE_OPTIONS_INIT)
STORE_INIT_FN(ib_healthcheck_init, ib_healthcheck, IB_HEALTHCHECK_VERSION, IB_HEALTHCHECK_INIT)
STORE_INIT_FN(ib_container_record_init, ib_container_record, IB_CONTAINER_RECORD_VERSION,
	      IB_CONTAINER_RECORD_INIT)
STORE_INIT_FN(ib_store_gc_options_init, ib_store_gc_options, IB_STORE_GC_OPTIONS_VERSION,
	      IB_STORE_GC_OPTIONS_INIT)
STORE_INIT_FN(ib_store_fsck_options_init, ib_store_fsck_options, IB_STORE_FSCK_OPTIONS_VERSION,
	      IB_STORE_FSCK_OPTIONS_INIT)
/* The same for a struct whose version 1 ends before `callbacks` (added in 2): version 1 writes only that. */
#define STORE_INIT_FN_V1(fn, type, VERSION, INIT)                                                       \
	int fn(type *opts, unsigned int version)                                                       \
	{                                                                                              \
		if (!opts)                                                                             \
			return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, #fn ": NULL " #type);        \
		if (version < 1 || version > VERSION)                                                  \
			return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, #type " version %u is not supported", \
					     version);                                                 \
		static const type d = INIT; /* zero padding (C11 6.7.9): bindings compare bytes */   \
		size_t n = version == 1 ? offsetof(type, callbacks) : sizeof *opts;                    \
		memcpy(opts, &d, n);                                                                   \
		opts->version = version;                                                               \
		return 0;                                                                              \
	}

STORE_INIT_FN_V1(ib_save_options_init, ib_save_options, IB_SAVE_OPTIONS_VERSION, IB_SAVE_OPTIONS_INIT)
STORE_INIT_FN_V1(ib_load_options_init, ib_load_options, IB_LOAD_OPTIONS_VERSION, IB_LOAD_OPTIONS_INIT)

/* version 1 ends before annotations (added in 2) */
int ib_image_commit_options_init(ib_image_commit_options *opts, unsigned int version)
{
	if (!opts)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_image_commit_options_init: NULL ib_image_commit_options");
	if (version < 1 || version > IB_IMAGE_COMMIT_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_image_commit_options version %u is not supported",
				     version);
	static const ib_image_commit_options d = IB_IMAGE_COMMIT_OPTIONS_INIT;
	memcpy(opts, &d, version == 1 ? offsetof(ib_image_commit_options, annotations) : sizeof *opts);
	opts->version = version;
	return 0;
}
/* caller-allocated outputs */
STORE_INIT_FN(ib_store_gc_stats_init, ib_store_gc_stats, IB_STORE_GC_STATS_VERSION, IB_STORE_GC_STATS_INIT)
STORE_INIT_FN(ib_history_entry_init, ib_history_entry, IB_HISTORY_ENTRY_VERSION, IB_HISTORY_ENTRY_INIT)
STORE_INIT_FN(ib_image_history_item_init, ib_image_history_item, IB_IMAGE_HISTORY_ITEM_VERSION,
	      IB_IMAGE_HISTORY_ITEM_INIT)
