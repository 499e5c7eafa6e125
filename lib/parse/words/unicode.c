#include "unicode.h"

struct ib_parse__urange {
	uint32_t lo, hi;
};

#include "unicode-tables.h"

size_t ib_parse__u_decode(const char *str, size_t len, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	uint32_t c = s[0], min;
	size_t n, i;

	*cp = IB_UNICODE_INVALID;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xE0) == 0xC0) {
		n = 2, c &= 0x1F, min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3, c &= 0x0F, min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		return 1;
	}
	if (len < n)
		return 1;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 1;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 1;
	*cp = c;
	return n;
}

int ib_parse__u_is_space(uint32_t cp)
{
	switch (cp) {
	case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
	case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
	case 0x202F: case 0x205F: case 0x3000:
		return 1;
	default:
		return cp >= 0x2000 && cp <= 0x200A;
	}
}

static int in_table(const struct ib_parse__urange *t, size_t n, uint32_t cp)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cp < t[mid].lo)
			hi = mid;
		else if (cp > t[mid].hi)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

int ib_parse__u_is_letter(uint32_t cp)
{
	if (cp < 0x80)
		return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
	return in_table(ib_parse__uletter, sizeof(ib_parse__uletter) / sizeof(ib_parse__uletter[0]), cp);
}

int ib_parse__u_is_digit(uint32_t cp)
{
	if (cp < 0x80)
		return cp >= '0' && cp <= '9';
	return in_table(ib_parse__udigit, sizeof(ib_parse__udigit) / sizeof(ib_parse__udigit[0]), cp);
}

/* The start of the last character ending at s[end) (end > 0). */
static size_t prev_char(const char *s, size_t end)
{
	size_t i = end - 1;
	while (i > 0 && end - i < 4 && ((unsigned char)s[i] & 0xC0) == 0x80)
		i--;
	return i;
}

const char *ib_parse__u_trim_space(const char *s, size_t *len)
{
	size_t start = 0, end = *len;
	uint32_t cp;

	while (start < end) {
		size_t n = ib_parse__u_decode(s + start, end - start, &cp);
		if (!ib_parse__u_is_space(cp))
			break;
		start += n;
	}
	while (end > start) {
		size_t i = prev_char(s, end);
		size_t n = ib_parse__u_decode(s + i, end - i, &cp);
		if (i < start || i + n != end) {
			/* not a whole character: a stray byte, never white space */
			break;
		}
		if (!ib_parse__u_is_space(cp))
			break;
		end = i;
	}
	*len = end - start;
	return s + start;
}
