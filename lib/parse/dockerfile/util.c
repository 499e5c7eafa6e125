/* Arena, UTF-8 and white-space helpers, Go strconv.Quote. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "parse/dockerfile/df.h"

struct ib_parse__arena_chunk {
	ib_parse__arena_chunk *next;
	size_t used, size;
	max_align_t data[];
};

#define ARENA_CHUNK 16384

void *ib_parse__alloc(ib_parse__arena *a, size_t n)
{
	size_t need = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t);
	ib_parse__arena_chunk *c = a->head;
	if (n > SIZE_MAX / 2)
		return ib_error_oom(), NULL;
	if (!c || c->size - c->used < need) {
		size_t slots = ARENA_CHUNK / sizeof(max_align_t);
		if (need > slots / 4) {
			/* big allocation: own chunk, placed after the current one */
			ib_parse__arena_chunk *big = ib_calloc(1, sizeof(*big) + need * sizeof(max_align_t));
			if (!big)
				return NULL;
			big->size = big->used = need;
			if (c) {
				big->next = c->next;
				c->next = big;
			} else {
				a->head = big;
			}
			return big->data;
		}
		c = ib_calloc(1, sizeof(*c) + slots * sizeof(max_align_t));
		if (!c)
			return NULL;
		c->size = slots;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += need;
	return p;
}

char *ib_parse__strndup(ib_parse__arena *a, const char *s, size_t n)
{
	char *p = ib_parse__alloc(a, n + 1);
	if (p && n)
		memcpy(p, s, n);
	return p;
}

char *ib_parse__strdup(ib_parse__arena *a, const char *s)
{
	return ib_parse__strndup(a, s, strlen(s));
}

void ib_parse__arena_free(ib_parse__arena *a)
{
	ib_parse__arena_chunk *c = a->head;
	while (c) {
		ib_parse__arena_chunk *n = c->next;
		free(c);
		c = n;
	}
	a->head = NULL;
}

int ib_parse__vec_push(ib_parse__arena *a, ib_parse__ptrvec *v, void *item)
{
	if (v->count == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 8;
		void **items = ib_parse__alloc(a, cap * sizeof(void *));
		if (!items)
			return IB_ERROR;
		if (v->count)
			memcpy(items, v->items, v->count * sizeof(void *));
		v->items = items;
		v->cap = cap;
	}
	v->items[v->count++] = item;
	return 0;
}

int ib_parse__syntax_error(const char *filename, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ib_error_setc(IB_ESYNTAX, IB_LAYER_PARSE, "%s:%d: %s",
			     filename ? filename : "Dockerfile", line, msg);
}

/* ---- UTF-8 ---- */

int ib_parse__utf8_decode(const char *str, size_t len, int *width)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned int c = s[0];
	int n, min;
	unsigned int r;
	*width = 1;
	if (c < 0x80)
		return (int)c;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2; r = c & 0x1F; min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3; r = c & 0x0F; min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4; r = c & 0x07; min = 0x10000;
	} else {
		return -1;
	}
	if ((size_t)n > len)
		return -1;
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return -1;
		r = (r << 6) | (s[i] & 0x3F);
	}
	if ((int)r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
		return -1;
	*width = n;
	return (int)r;
}

bool ib_parse__is_space(int r)
{
	switch (r) {
	case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
	case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
	case 0x202F: case 0x205F: case 0x3000:
		return true;
	default:
		return r >= 0x2000 && r <= 0x200A;
	}
}

bool ib_parse__is_digit(int r)
{
	if (r < 0x80)
		return r >= '0' && r <= '9';
	/* Unicode Nd blocks of the common scripts */
	static const int starts[] = { 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66,
		0xBE6, 0xC66, 0xCE6, 0xD66, 0xE50, 0xED0, 0xF20, 0x1040, 0x17E0, 0x1810, 0xFF10 };
	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
		if (r >= starts[i] && r < starts[i] + 10)
			return true;
	return false;
}

bool ib_parse__is_letter(int r)
{
	if (r < 0x80)
		return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
	if (r < 0xC0)
		return r == 0xAA || r == 0xB5 || r == 0xBA;
	if (r == 0xD7 || r == 0xF7)
		return false;
	if (ib_parse__is_digit(r) || ib_parse__is_space(r))
		return false;
	/* punctuation, symbols and marks blocks that are not letters */
	if ((r >= 0x2000 && r <= 0x2BFF) || (r >= 0x3000 && r <= 0x303F) ||
	    (r >= 0x0300 && r <= 0x036F) || (r >= 0xFE00 && r <= 0xFE0F) ||
	    (r >= 0xFF00 && r <= 0xFF20) || (r >= 0xE000 && r <= 0xF8FF) ||
	    (r >= 0x1F000 && r <= 0x1FAFF))
		return false;
	return true;
}

size_t ib_parse__lspace(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		int w, r = ib_parse__utf8_decode(s + i, len - i, &w);
		if (!ib_parse__is_space(r))
			break;
		i += (size_t)w;
	}
	return i;
}

size_t ib_parse__rspace(const char *s, size_t len)
{
	size_t end = len;
	while (end > 0) {
		size_t start = end - 1;
		/* back up to the start of a UTF-8 sequence (at most 3 continuation bytes) */
		while (start > 0 && end - start < 4 && ((unsigned char)s[start] & 0xC0) == 0x80)
			start--;
		int w, r = ib_parse__utf8_decode(s + start, end - start, &w);
		if (r < 0 || start + (size_t)w != end) {
			start = end - 1;
			r = ib_parse__utf8_decode(s + start, 1, &w);
		}
		if (!ib_parse__is_space(r))
			break;
		end = start;
	}
	return len - end;
}

/* ---- Go strconv.Quote ---- */

/* Go's strconv.IsPrint for non-ASCII, approximated: letters, marks, numbers,
 * punctuation and symbols print; spaces, controls, format characters,
 * private use and non-characters do not. */
static bool is_print_nonascii(int r)
{
	if (r < 0xA0)
		return false;                      /* C1 controls */
	if (ib_parse__is_space(r))
		return false;
	if (r == 0xAD || r == 0x061C || r == 0x180E || (r >= 0x200B && r <= 0x200F) ||
	    (r >= 0x202A && r <= 0x202E) || (r >= 0x2060 && r <= 0x206F) || r == 0xFEFF ||
	    (r >= 0xFFF9 && r <= 0xFFFB) || (r >= 0xE000 && r <= 0xF8FF) ||
	    (r & 0xFFFE) == 0xFFFE || r >= 0xF0000 || (r >= 0xE0000 && r <= 0xE007F))
		return false;
	return true;
}

int ib_parse__go_quote(ib_buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	if (ib_buf_putc(out, '"') < 0)
		return IB_ERROR;
	for (size_t i = 0; i < len;) {
		int w, r = ib_parse__utf8_decode(s + i, len - i, &w);
		unsigned char c = (unsigned char)s[i];
		int rc = 0;
		if (r < 0) {
			char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
			rc = ib_buf_put(out, e, 4);
		} else if (r == '"' || r == '\\') {
			char e[2] = { '\\', (char)r };
			rc = ib_buf_put(out, e, 2);
		} else if (r >= 0x20 && r < 0x7F) {
			rc = ib_buf_putc(out, (char)r);
		} else if (r < 0x80) {
			const char *esc = NULL;
			switch (r) {
			case '\a': esc = "\\a"; break;
			case '\b': esc = "\\b"; break;
			case '\f': esc = "\\f"; break;
			case '\n': esc = "\\n"; break;
			case '\r': esc = "\\r"; break;
			case '\t': esc = "\\t"; break;
			case '\v': esc = "\\v"; break;
			}
			if (esc) {
				rc = ib_buf_puts(out, esc);
			} else {
				char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
				rc = ib_buf_put(out, e, 4);
			}
		} else if (is_print_nonascii(r)) {
			rc = ib_buf_put(out, s + i, (size_t)w);
		} else if (r < 0x10000) {
			rc = ib_buf_printf(out, "\\u%04x", (unsigned int)r);
		} else {
			rc = ib_buf_printf(out, "\\U%08x", (unsigned int)r);
		}
		if (rc < 0)
			return IB_ERROR;
		i += (size_t)w;
	}
	return ib_buf_putc(out, '"');
}
