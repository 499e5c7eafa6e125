#include "util/error.h"
#include "imagebuild/sys/errors.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static __thread int err_code;
static __thread int err_layer;
static __thread int err_errno;
static __thread char *err_message;
static __thread ib_error err_public;

static const char oom_message[] = "out of memory";
static __thread int err_is_oom;

/*
 * The message lives in thread-local storage; a key destructor frees it when
 * a thread exits, so threads that fail do not leak their last error.
 */
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static __thread int exit_registered;

static void thread_exit(void *unused)
{
	(void)unused;
	ib_error_clear();
}

static void make_exit_key(void)
{
	pthread_key_create(&exit_key, thread_exit);
}

static void register_thread_exit(void)
{
	if (exit_registered)
		return;
	pthread_once(&exit_once, make_exit_key);
	pthread_setspecific(exit_key, &exit_registered);
	exit_registered = 1;
}

static void replace_message(char *msg)
{
	if (msg)
		register_thread_exit();
	if (!err_is_oom)
		free(err_message);
	err_message = msg;
	err_is_oom = 0;
}

static char *vformat(const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

static void set_oom(void)
{
	if (!err_is_oom)
		free(err_message);
	err_message = (char *)oom_message;
	err_is_oom = 1;
	err_errno = 0;
	err_code = IB_ERROR;
	err_layer = IB_LAYER_NOMEMORY;
}

static int vset(int code, int layer, const char *suffix, const char *fmt, va_list ap)
{
	char *msg = vformat(fmt, ap);
	if (!msg) {
		set_oom();
		return IB_ERROR;
	}
	if (suffix) {
		size_t a = strlen(msg), b = strlen(suffix);
		char *m2 = realloc(msg, a + 2 + b + 1);
		if (!m2) {
			free(msg);
			set_oom();
			return IB_ERROR;
		}
		memcpy(m2 + a, ": ", 2);
		memcpy(m2 + a + 2, suffix, b + 1);
		msg = m2;
	}
	replace_message(msg);
	err_code = code;
	err_layer = layer;
	err_errno = 0;
	return code;
}

int ib_error_setc(int code, int layer, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(code, layer, NULL, fmt, ap);
	va_end(ap);
	return code;
}

int ib_error_set(int layer, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(IB_ERROR, layer, NULL, fmt, ap);
	va_end(ap);
	return IB_ERROR;
}

int ib_error_set_str(int code, const char *fmt, ...)
{
	if (code >= 0)
		code = IB_ERROR;
	if (!fmt)
		fmt = "(no message)";
	va_list ap;
	va_start(ap, fmt);
	vset(code, IB_LAYER_NONE, NULL, fmt, ap);
	va_end(ap);
	return code;
}

void ib_error_adopt_layer(int layer)
{
	if (err_code != IB_OK && err_layer == IB_LAYER_NONE)
		err_layer = layer;
}

int ib_error_set_os(int layer, const char *fmt, ...)
{
	int e = errno;
	char sbuf[256];
	const char *s = strerror_r(e, sbuf, sizeof sbuf);
	int code = (e == ENOENT || e == ENOTDIR) ? IB_ENOTFOUND : (e == EEXIST ? IB_EEXISTS : IB_ERROR);
	va_list ap;
	va_start(ap, fmt);
	vset(code, layer, s, fmt, ap);
	va_end(ap);
	err_errno = e;
	errno = e;
	return code;
}

int ib_error_errno(void)
{
	return err_code == IB_OK ? 0 : err_errno;
}

void ib_error_note_errno(int e)
{
	err_errno = e;
}

int ib_error_oom(void)
{
	set_oom();
	return IB_ERROR;
}

void ib_error_prefix(const char *fmt, ...)
{
	if (err_code == IB_OK && !err_message)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *ctx = vformat(fmt, ap);
	va_end(ap);
	if (!ctx) {
		set_oom();
		return;
	}
	const char *old = err_message ? err_message : "";
	size_t a = strlen(ctx), b = strlen(old);
	char *m = malloc(a + 2 + b + 1);
	if (!m) {
		free(ctx);
		set_oom();
		return;
	}
	memcpy(m, ctx, a);
	memcpy(m + a, ": ", 2);
	memcpy(m + a + 2, old, b + 1);
	free(ctx);
	replace_message(m);
}

int ib_error_current(void)
{
	return err_code;
}

void ib_error_save(ib_error_saved *s)
{
	s->code = err_code;
	s->layer = err_layer;
	s->os_errno = err_errno;
	s->message = err_is_oom ? NULL : err_message;
	if (err_is_oom)
		s->code = IB_ERROR, s->layer = IB_LAYER_NOMEMORY;
	err_message = NULL;
	err_is_oom = 0;
	err_code = IB_OK;
	err_layer = IB_LAYER_NONE;
	err_errno = 0;
}

void ib_error_restore(ib_error_saved *s)
{
	if (s->layer == IB_LAYER_NOMEMORY && !s->message) {
		set_oom();
		return;
	}
	replace_message(s->message);
	err_code = s->code;
	err_layer = s->layer;
	err_errno = s->os_errno;
	s->message = NULL;
}

void ib_error_saved_dispose(ib_error_saved *s)
{
	free(s->message);
	s->message = NULL;
}

const ib_error *ib_error_last(void)
{
	err_public.code = err_code;
	err_public.layer = err_layer;
	err_public.message = err_message ? err_message : "no error";
	return &err_public;
}

void ib_error_clear(void)
{
	replace_message(NULL);
	err_code = IB_OK;
	err_layer = IB_LAYER_NONE;
	err_errno = 0;
}

void *ib_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		set_oom();
	return p;
}

void *ib_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		set_oom();
	return p;
}

void *ib_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		set_oom();
	return q;
}

char *ib_strdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		set_oom();
	return p;
}

char *ib_strndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		set_oom();
	return p;
}

char *ib_sprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = vformat(fmt, ap);
	va_end(ap);
	if (!s)
		set_oom();
	return s;
}
