#include "imagebuild/buffer.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ib_buf_dispose(ib_buf *buf)
{
	if (!buf)
		return;
	free(buf->ptr);
	buf->ptr = NULL;
	buf->size = buf->asize = 0;
}

int ib_buf_grow(ib_buf *buf, size_t size)
{
	if (size >= SIZE_MAX / 2)
		return ib_error_oom();
	if (size + 1 <= buf->asize)
		return 0;
	size_t n = buf->asize ? buf->asize : 64;
	while (n < size + 1) {
		n *= 2;
	}
	char *p = ib_realloc(buf->ptr, n);
	if (!p)
		return IB_ERROR;
	if (!buf->ptr)
		p[0] = '\0';
	buf->ptr = p;
	buf->asize = n;
	return 0;
}

int ib_buf_put(ib_buf *buf, const void *data, size_t len)
{
	if (len > SIZE_MAX - buf->size - 1)
		return ib_error_oom();
	if (ib_buf_grow(buf, buf->size + len) < 0)
		return IB_ERROR;
	if (len)
		memmove(buf->ptr + buf->size, data, len);
	buf->size += len;
	buf->ptr[buf->size] = '\0';
	return 0;
}

int ib_buf_puts(ib_buf *buf, const char *str)
{
	return ib_buf_put(buf, str, strlen(str));
}

int ib_buf_set(ib_buf *buf, const void *data, size_t len)
{
	if (buf->ptr && data >= (const void *)buf->ptr &&
	    data < (const void *)(buf->ptr + buf->asize)) {
		size_t off = (size_t)((const char *)data - buf->ptr);
		memmove(buf->ptr, buf->ptr + off, len);
		buf->size = len;
		buf->ptr[len] = '\0';
		return 0;
	}
	ib_buf_clear(buf);
	return ib_buf_put(buf, data, len);
}

void ib_buf_clear(ib_buf *buf)
{
	buf->size = 0;
	if (buf->ptr)
		buf->ptr[0] = '\0';
}

int ib_buf_putc(ib_buf *buf, char c)
{
	return ib_buf_put(buf, &c, 1);
}

int ib_buf_printf(ib_buf *buf, const char *fmt, ...)
{
	va_list ap, cp;
	va_start(ap, fmt);
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0) {
		va_end(ap);
		return ib_error_set(IB_LAYER_UTIL, "format `%s`", fmt);
	}
	if (ib_buf_grow(buf, buf->size + (size_t)n) < 0) {
		va_end(ap);
		return IB_ERROR;
	}
	vsnprintf(buf->ptr + buf->size, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf->size += (size_t)n;
	return 0;
}

void ib_buf_truncate(ib_buf *buf, size_t len)
{
	if (len < buf->size) {
		buf->size = len;
		buf->ptr[len] = '\0';
	}
}

char *ib_buf_detach(ib_buf *buf)
{
	char *p = buf->ptr;
	if (!p)
		p = ib_strdup("");
	buf->ptr = NULL;
	buf->size = buf->asize = 0;
	return p;
}

const char *ib_buf_cstr(const ib_buf *buf)
{
	return buf->ptr ? buf->ptr : "";
}

void ib_strarray_dispose(ib_strarray *array)
{
	if (!array)
		return;
	for (size_t i = 0; i < array->count; i++)
		free(array->strings[i]);
	free(array->strings);
	array->strings = NULL;
	array->count = 0;
}
