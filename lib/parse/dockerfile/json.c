/*
 * A strict JSON reader for the exec form (`CMD ["a", "b"]`), following Go's
 * encoding/json: the whole text must be one valid JSON value (an array),
 * then every element must be a string. Strings are decoded: escapes, UTF-16
 * surrogate pairs; invalid UTF-8 and lone surrogates become U+FFFD.
 */
#include <string.h>
#include "parse/dockerfile/df.h"

#define MAX_DEPTH 10000

typedef struct {
	const char *s;
	size_t len, pos;
} jp;

static void skip_ws(jp *p)
{
	while (p->pos < p->len) {
		char c = p->s[p->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

static bool lit(jp *p, const char *word)
{
	size_t n = strlen(word);
	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return false;
	p->pos += n;
	return true;
}

static bool digits(jp *p)
{
	size_t start = p->pos;
	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		p->pos++;
	return p->pos > start;
}

static bool number(jp *p)
{
	if (p->pos < p->len && p->s[p->pos] == '-')
		p->pos++;
	if (p->pos >= p->len)
		return false;
	if (p->s[p->pos] == '0')
		p->pos++;
	else if (!digits(p))
		return false;
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (!digits(p))
			return false;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (!digits(p))
			return false;
	}
	return true;
}

static int hex4(const char *s)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static int put_rune(ib_buf *b, int r)
{
	char u[4];
	size_t n;
	if (r < 0x80) {
		u[0] = (char)r; n = 1;
	} else if (r < 0x800) {
		u[0] = (char)(0xC0 | (r >> 6)); u[1] = (char)(0x80 | (r & 0x3F)); n = 2;
	} else if (r < 0x10000) {
		u[0] = (char)(0xE0 | (r >> 12)); u[1] = (char)(0x80 | ((r >> 6) & 0x3F));
		u[2] = (char)(0x80 | (r & 0x3F)); n = 3;
	} else {
		u[0] = (char)(0xF0 | (r >> 18)); u[1] = (char)(0x80 | ((r >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((r >> 6) & 0x3F)); u[3] = (char)(0x80 | (r & 0x3F)); n = 4;
	}
	return ib_buf_put(b, u, n);
}

/* Scan a string at p->pos (which is '"'); decode into `out` when not NULL.
 * Returns 1 valid, 0 invalid, <0 OOM. */
static int string_value(jp *p, ib_buf *out)
{
	p->pos++;
	while (p->pos < p->len) {
		unsigned char c = (unsigned char)p->s[p->pos];
		if (c == '"') {
			p->pos++;
			return 1;
		}
		if (c < 0x20)
			return 0;
		if (c == '\\') {
			if (p->pos + 1 >= p->len)
				return 0;
			char e = p->s[p->pos + 1];
			int r = -1;
			p->pos += 2;
			switch (e) {
			case '"': r = '"'; break;
			case '\\': r = '\\'; break;
			case '/': r = '/'; break;
			case 'b': r = '\b'; break;
			case 'f': r = '\f'; break;
			case 'n': r = '\n'; break;
			case 'r': r = '\r'; break;
			case 't': r = '\t'; break;
			case 'u':
				if (p->len - p->pos < 4 || (r = hex4(p->s + p->pos)) < 0)
					return 0;
				p->pos += 4;
				if (r >= 0xD800 && r < 0xDC00 && p->len - p->pos >= 6 &&
				    p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
					int lo = hex4(p->s + p->pos + 2);
					if (lo >= 0xDC00 && lo < 0xE000) {
						r = 0x10000 + ((r - 0xD800) << 10) + (lo - 0xDC00);
						p->pos += 6;
					}
				}
				if (r >= 0xD800 && r < 0xE000)
					r = 0xFFFD;
				break;
			default:
				return 0;
			}
			if (out && put_rune(out, r) < 0)
				return IB_ERROR;
			continue;
		}
		int w, r = ib_parse__utf8_decode(p->s + p->pos, p->len - p->pos, &w);
		if (out && (r < 0 ? put_rune(out, 0xFFFD) : ib_buf_put(out, p->s + p->pos, (size_t)w)) < 0)
			return IB_ERROR;
		p->pos += (size_t)w;
	}
	return 0;
}

/* Validate any JSON value. 1 valid, 0 invalid. */
static int value(jp *p, int depth)
{
	if (depth > MAX_DEPTH)
		return 0;
	skip_ws(p);
	if (p->pos >= p->len)
		return 0;
	char c = p->s[p->pos];
	if (c == '"')
		return string_value(p, NULL);
	if (c == '[' || c == '{') {
		char close = c == '[' ? ']' : '}';
		p->pos++;
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == close) {
			p->pos++;
			return 1;
		}
		for (;;) {
			if (c == '{') {
				skip_ws(p);
				if (p->pos >= p->len || p->s[p->pos] != '"')
					return 0;
				int rc = string_value(p, NULL);
				if (rc <= 0)
					return rc;
				skip_ws(p);
				if (p->pos >= p->len || p->s[p->pos] != ':')
					return 0;
				p->pos++;
			}
			int rc = value(p, depth + 1);
			if (rc <= 0)
				return rc;
			skip_ws(p);
			if (p->pos >= p->len)
				return 0;
			if (p->s[p->pos] == close) {
				p->pos++;
				return 1;
			}
			if (p->s[p->pos] != ',')
				return 0;
			p->pos++;
		}
	}
	if (lit(p, "true") || lit(p, "false") || lit(p, "null"))
		return 1;
	if (c == '-' || (c >= '0' && c <= '9'))
		return number(p) ? 1 : 0;
	return 0;
}

int ib_parse__json_strings(ib_parse__arena *a, const char *s, size_t len, ib_parse__dfstr **out, size_t *n)
{
	size_t skip = ib_parse__lspace(s, len);
	jp p = { s + skip, len - skip, 0 };
	*out = NULL;
	*n = 0;
	if (p.len == 0 || p.s[0] != '[')
		return 0;
	/* pass 1: validity of the whole text */
	int rc = value(&p, 1);
	if (rc <= 0)
		return rc;
	skip_ws(&p);
	if (p.pos != p.len)
		return 0;
	/* pass 2: every element a string, decoded */
	ib_parse__ptrvec v = { 0 };
	ib_buf b = IB_BUF_INIT;
	p.pos = 1;
	for (;;) {
		skip_ws(&p);
		if (p.s[p.pos] == ']')
			break;
		if (p.s[p.pos] != '"') {
			ib_buf_dispose(&b);
			return IB_PARSE__JSON_NOT_STRINGS;
		}
		ib_buf_clear(&b);
		ib_parse__dfstr *str = ib_parse__alloc(a, sizeof(*str));
		if (!str || string_value(&p, &b) < 0 ||
		    !(str->ptr = ib_parse__strndup(a, ib_buf_cstr(&b), b.size)) ||
		    ib_parse__vec_push(a, &v, str) < 0) {
			ib_buf_dispose(&b);
			return IB_ERROR;
		}
		str->len = b.size;
		skip_ws(&p);
		if (p.s[p.pos] == ',')
			p.pos++;
	}
	ib_buf_dispose(&b);
	if (v.count) {
		ib_parse__dfstr *arr = ib_parse__alloc(a, v.count * sizeof(*arr));
		if (!arr)
			return IB_ERROR;
		for (size_t i = 0; i < v.count; i++)
			arr[i] = *(ib_parse__dfstr *)v.items[i];
		*out = arr;
	}
	*n = v.count;
	return 1;
}
