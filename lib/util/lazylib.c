/* Libraries opened when first needed: see lazylib.h. */
#include "util/lazylib.h"
#include "util/error.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static __thread ib_lazylib *opening;

static void open_once(void)
{
	ib_lazylib *l = opening;
	/* RTLD_LOCAL: its symbols serve only our forwarders, never other libraries */
	void *h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(l->error, sizeof l->error, "%s", e ? e : "unknown error");
		return;
	}
	__atomic_store_n(&l->handle, h, __ATOMIC_RELEASE);
}

static void *load(ib_lazylib *l)
{
	void *h = __atomic_load_n(&l->handle, __ATOMIC_ACQUIRE);
	if (h)
		return h;
	opening = l;
	pthread_once(&l->once, open_once);
	opening = NULL;
	return __atomic_load_n(&l->handle, __ATOMIC_ACQUIRE);
}

int ib_lazylib_open(ib_lazylib *l)
{
	if (load(l))
		return 0;
	return ib_error_setc(IB_ERROR, l->layer, "cannot load %s: %s", l->soname, l->error);
}

int ib_lazylib_loaded(ib_lazylib *l)
{
	return __atomic_load_n(&l->handle, __ATOMIC_ACQUIRE) != NULL;
}

void *ib_lazylib_sym(ib_lazylib *l, const char *name)
{
	/* no error set: the forwarder fails as the function does, and its caller reports it */
	void *h = load(l);
	return h ? dlsym(h, name) : NULL;
}
