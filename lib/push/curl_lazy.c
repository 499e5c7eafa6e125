/*
 * libcurl, opened when the first network call needs it (util/lazylib.h): a
 * command that talks to no registry never loads curl and its TLS, Kerberos,
 * LDAP and SSH dependencies. Each curl function the layer uses has a
 * forwarder of the same name here (hidden in the library, like every symbol
 * of the layer); a forwarder whose library cannot be opened fails as the
 * function does (NULL, CURLE_FAILED_INIT...), and client.c reports
 * ib_push__curl_load's error first.
 */
#define CURL_DISABLE_TYPECHECK 1 /* the forwarders take curl's variadic options as they come */
#include "push/internal.h"
#include "util/lazylib.h"

#include <stdarg.h>

#ifndef IB_LIBCURL_SONAME
#define IB_LIBCURL_SONAME "libcurl.so.4"
#endif

static ib_lazylib curl_lib = IB_LAZYLIB_INIT(IB_LIBCURL_SONAME, IB_LAYER_PUSH);

int ib_push__curl_load(void)
{
	return ib_lazylib_open(&curl_lib);
}

int ib_push__curl_loaded(void)
{
	return ib_lazylib_loaded(&curl_lib);
}

IB_LAZY_FN(curl_lib, CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)
IB_LAZY_FN(curl_lib, CURL *, curl_easy_init, (void), (), NULL)
IB_LAZY_FN(curl_lib, CURLcode, curl_easy_perform, (CURL *curl), (curl), CURLE_FAILED_INIT)
IB_LAZY_VOID(curl_lib, curl_easy_cleanup, (CURL *curl), (curl))
IB_LAZY_VOID(curl_lib, curl_easy_reset, (CURL *curl), (curl))
IB_LAZY_FN(curl_lib, const char *, curl_easy_strerror, (CURLcode code), (code), "libcurl not loaded")
IB_LAZY_FN(curl_lib, char *, curl_easy_escape, (CURL *handle, const char *string, int length),
	   (handle, string, length), NULL)
IB_LAZY_VOID(curl_lib, curl_free, (void *p), (p))
IB_LAZY_FN(curl_lib, struct curl_slist *, curl_slist_append, (struct curl_slist *list, const char *data),
	   (list, data), NULL)
IB_LAZY_VOID(curl_lib, curl_slist_free_all, (struct curl_slist *list), (list))
IB_LAZY_FN(curl_lib, CURLSH *, curl_share_init, (void), (), NULL)
IB_LAZY_FN(curl_lib, CURLSHcode, curl_share_cleanup, (CURLSH *share), (share), CURLSHE_NOT_BUILT_IN)
IB_LAZY_FN(curl_lib, CURLU *, curl_url, (void), (), NULL)
IB_LAZY_VOID(curl_lib, curl_url_cleanup, (CURLU *handle), (handle))
IB_LAZY_FN(curl_lib, CURLUcode, curl_url_get, (CURLU *handle, CURLUPart what, char **part, unsigned int flags),
	   (handle, what, part, flags), CURLUE_OUT_OF_MEMORY)
IB_LAZY_FN(curl_lib, CURLUcode, curl_url_set,
	   (CURLU *handle, CURLUPart what, const char *part, unsigned int flags), (handle, what, part, flags),
	   CURLUE_OUT_OF_MEMORY)
IB_LAZY_FN(curl_lib, const char *, curl_url_strerror, (CURLUcode code), (code), "libcurl not loaded")
IB_LAZY_FN(curl_lib, time_t, curl_getdate, (const char *p, const time_t *unused), (p, unused), (time_t)-1)

/* The variadic ones: the one argument is fetched with the type its option number says (curl.h's CURLOPTTYPE_*). */
CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
	static CURLcode (*fn)(CURL *, CURLoption, ...);
	CURLcode (*f)(CURL *, CURLoption, ...) = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);
	if (!f && (f = (CURLcode(*)(CURL *, CURLoption, ...))ib_lazylib_sym(&curl_lib, "curl_easy_setopt")))
		__atomic_store_n(&fn, f, __ATOMIC_RELEASE);
	if (!f)
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, option);
	CURLcode rc;
	if (option < CURLOPTTYPE_OBJECTPOINT)
		rc = f(curl, option, va_arg(ap, long));
	else if (option >= CURLOPTTYPE_OFF_T && option < CURLOPTTYPE_BLOB)
		rc = f(curl, option, va_arg(ap, curl_off_t));
	else /* object, function (passed as data pointers: the same on every platform curl runs on) and blob pointers */
		rc = f(curl, option, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...)
{
	static CURLcode (*fn)(CURL *, CURLINFO, ...);
	CURLcode (*f)(CURL *, CURLINFO, ...) = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);
	if (!f && (f = (CURLcode(*)(CURL *, CURLINFO, ...))ib_lazylib_sym(&curl_lib, "curl_easy_getinfo")))
		__atomic_store_n(&fn, f, __ATOMIC_RELEASE);
	if (!f)
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, info);
	CURLcode rc = f(curl, info, va_arg(ap, void *)); /* always a pointer to the result */
	va_end(ap);
	return rc;
}

CURLSHcode curl_share_setopt(CURLSH *share, CURLSHoption option, ...)
{
	static CURLSHcode (*fn)(CURLSH *, CURLSHoption, ...);
	CURLSHcode (*f)(CURLSH *, CURLSHoption, ...) = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);
	if (!f && (f = (CURLSHcode(*)(CURLSH *, CURLSHoption, ...))ib_lazylib_sym(&curl_lib, "curl_share_setopt")))
		__atomic_store_n(&fn, f, __ATOMIC_RELEASE);
	if (!f)
		return CURLSHE_NOT_BUILT_IN;
	va_list ap;
	va_start(ap, option);
	CURLSHcode rc;
	if (option == CURLSHOPT_SHARE || option == CURLSHOPT_UNSHARE)
		rc = f(share, option, va_arg(ap, int)); /* a curl_lock_data */
	else
		rc = f(share, option, va_arg(ap, void *));
	va_end(ap);
	return rc;
}
