#include "util/callback.h"

#include <string.h>

int ib_callbacks_init(ib_callbacks *cb, unsigned int version)
{
	if (version < 1 || version > IB_CALLBACKS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_UTIL, "unknown ib_callbacks version %u", version);
	static const ib_callbacks d = IB_CALLBACKS_INIT; /* zero padding (C11 6.7.9) */
	memcpy(cb, &d, version == 1 ? offsetof(ib_callbacks, cancel) : sizeof d);
	cb->version = version;
	return 0;
}

int ib_callback_validate(const ib_callbacks *cb, int layer)
{
	if (cb && (cb->version < 1 || cb->version > IB_CALLBACKS_VERSION))
		return ib_error_setc(IB_EINVALID, layer, "unknown ib_callbacks version %u", cb->version);
	return 0;
}

int ib_callback_cancelled(const ib_callbacks *cb)
{
	/* set by another thread or a signal handler: an atomic read (a plain one is a data race) */
	return cb && cb->version >= 2 && cb->cancel && __atomic_load_n(cb->cancel, __ATOMIC_RELAXED);
}

int ib_callback_stopped(int value, const char *what)
{
	ib_error_setc(value, IB_LAYER_CALLBACK, "%s: stopped by a callback, which returned %d", what, value);
	return IB_EUSER;
}

int ib_callback_cancel_error(const char *what)
{
	ib_error_setc(IB_EUSER, IB_LAYER_CALLBACK, "%s: cancelled by the caller", what);
	return IB_EUSER;
}

int ib_callback_check(const ib_callbacks *cb, const char *what)
{
	return ib_callback_cancelled(cb) ? ib_callback_cancel_error(what) : 0;
}

int ib_callback_progress(const ib_callbacks *cb, ib_progress_kind kind, const char *id,
			 const char *text, uint64_t current, uint64_t total, int cached,
			 const char *what)
{
	if (ib_callback_cancelled(cb))
		return ib_callback_cancel_error(what);
	if (!cb || !cb->progress)
		return 0;
	ib_progress p = { IB_PROGRESS_VERSION, kind, id, text, current, total, cached };
	int rc = cb->progress(&p, cb->payload);
	return rc ? ib_callback_stopped(rc, what) : 0;
}

int ib_callback_result(int rc)
{
	if (rc != IB_EUSER)
		return rc;
	const ib_error *e = ib_error_last();
	if (e->layer == IB_LAYER_CALLBACK && e->code != 0)
		return e->code;
	return rc;
}
