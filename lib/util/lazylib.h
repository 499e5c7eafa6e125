/*
 * Libraries opened when first needed (dlopen), not when the process starts.
 *
 * libcurl and libgit2 (with their ~30 dependencies: TLS stacks, Kerberos,
 * LDAP, SSH...) cost a process ~15 ms of dynamic loading before main(), which
 * was most of what `imagebuild images` or `inspect` cost. Only network
 * commands need curl, only `ADD <git ref>` needs libgit2, so their layers call
 * them through forwarders of the same names (lib/push/curl_lazy.c,
 * lib/build/git_lazy.c) that open the library on first use. The soname is the
 * one the build found (meson.build); a library that cannot be opened makes
 * every forwarder fail as the real function fails, and ib_lazylib_open reports
 * why with the error set.
 */
#ifndef IB_UTIL_LAZYLIB_H
#define IB_UTIL_LAZYLIB_H

#include <pthread.h>

typedef struct {
	const char *soname;  /* "libcurl.so.4" */
	int layer;           /* IB_LAYER_* of the errors */
	pthread_once_t once;
	void *handle;        /* NULL: not loaded (or not loadable: `error` says why) */
	char error[256];
} ib_lazylib;

#define IB_LAZYLIB_INIT(soname, layer) { (soname), (layer), PTHREAD_ONCE_INIT, NULL, "" }

/* Open the library once; 0, or IB_ERROR with the error set (naming the library). */
int ib_lazylib_open(ib_lazylib *l);
/* 1 when the library is loaded in this process (tests: it was not loaded before it was needed). */
int ib_lazylib_loaded(ib_lazylib *l);
/* A symbol of the library (opened first); NULL when it cannot be opened or lacks it. */
void *ib_lazylib_sym(ib_lazylib *l, const char *name);

/*
 * A forwarder `ret name params` calling the library's `name` with `args`,
 * returning `fail` when it cannot be found. The symbol is looked up once.
 */
#define IB_LAZY_FN(lib, ret, name, params, args, fail)                                   \
	ret name params                                                                   \
	{                                                                                 \
		static ret(*fn) params;                                                   \
		ret(*f) params = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);                  \
		if (!f && (f = (ret(*) params)ib_lazylib_sym(&(lib), #name)))             \
			__atomic_store_n(&fn, f, __ATOMIC_RELEASE);                       \
		return f ? f args : (fail);                                               \
	}
#define IB_LAZY_VOID(lib, name, params, args)                                            \
	void name params                                                                  \
	{                                                                                 \
		static void(*fn) params;                                                  \
		void(*f) params = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);                 \
		if (!f && (f = (void(*) params)ib_lazylib_sym(&(lib), #name)))            \
			__atomic_store_n(&fn, f, __ATOMIC_RELEASE);                       \
		if (f)                                                                    \
			f args;                                                           \
	}

#endif
