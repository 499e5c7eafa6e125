/*
 * The glob patterns of `${v#p}`, `${v%p}` and `${v/p/r}`. buildkit turns
 * them into Go regular expressions (`*` is `.*` or `.*?`, `?` is `.`) and
 * relies on leftmost-first matching; this is a small backtracking matcher
 * with the same preferences (and a memo of dead ends, so it stays
 * polynomial). Work is done on characters (UTF-8 decoded, a stray byte is
 * one character), as Go does.
 */
#include "words.h"
#include "unicode.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { TOK_LIT, TOK_ANY, TOK_STAR };

typedef struct {
	int type;
	uint32_t cp; /* TOK_LIT */
} token;

struct ib_parse__shpattern {
	token *toks;
	size_t n;
};

/* A decoded value: character i is s[off[i] .. off[i+1]). */
typedef struct {
	uint32_t *cp;
	size_t *off;
	size_t n;
} chars;

/* What one match attempt needs. */
typedef struct {
	const token *toks;
	size_t ntok;
	const uint32_t *cp;
	size_t n;
	int greedy;
	unsigned char *dead; /* (ntok + 1) * (n + 1) bits, or NULL */
	/*
	 * Per star token t: after the star failed from i, every state
	 * (t + 1, k) with k in [lo[t], hi[t]] is known to fail; hi[t] is the
	 * end of the newline-free run (SIZE_MAX: nothing known). This keeps
	 * `*a*a*b` against a long value linear per star, not quadratic.
	 */
	size_t *lo, *hi;
	size_t *run_end; /* run_end[i]: the first newline at or after i, or n */
} matcher;

void ib_parse__shpattern_free(ib_parse__shpattern *p)
{
	if (!p)
		return;
	free(p->toks);
	free(p);
}

int ib_parse__shpattern_new(ib_parse__shpattern **out, const char *pattern)
{
	size_t len = strlen(pattern), i = 0;
	ib_parse__shpattern *p = ib_calloc(1, sizeof(*p));

	*out = NULL;
	if (!p || !(p->toks = ib_calloc(len + 1, sizeof(token)))) {
		free(p);
		return IB_ERROR;
	}
	while (i < len) {
		uint32_t c;
		i += ib_parse__u_decode(pattern + i, len - i, &c);
		token *t = &p->toks[p->n];
		if (c == '*' || c == '?') {
			t->type = c == '*' ? TOK_STAR : TOK_ANY;
			p->n++;
			continue;
		}
		if (c == '\\') {
			if (i < len && (pattern[i] == '}' || pattern[i] == '/'))
				continue; /* the escape of `\}` and `\/` is not part of the pattern */
			if (i >= len || (pattern[i] != '*' && pattern[i] != '?' && pattern[i] != '\\')) {
				ib_parse__shpattern_free(p);
				return ib_error_setc(IB_ESYNTAX, IB_LAYER_PARSE,
						     "invalid pattern (%s) in substitution: invalid escape '\\%.1s'",
						     pattern, i < len ? pattern + i : "");
			}
			c = (unsigned char)pattern[i++];
		}
		t->type = TOK_LIT;
		t->cp = c;
		p->n++;
	}
	*out = p;
	return 0;
}

static void chars_free(chars *c)
{
	free(c->cp);
	free(c->off);
}

static int chars_decode(chars *c, const char *s)
{
	size_t len = strlen(s), i = 0;

	c->n = 0;
	c->cp = ib_calloc(len + 1, sizeof(*c->cp));
	c->off = ib_calloc(len + 1, sizeof(*c->off));
	if (!c->cp || !c->off) {
		chars_free(c);
		return IB_ERROR;
	}
	while (i < len) {
		c->off[c->n] = i;
		i += ib_parse__u_decode(s + i, len - i, &c->cp[c->n]);
		c->n++;
	}
	c->off[c->n] = len;
	return 0;
}

static int is_dead(const matcher *m, size_t t, size_t i)
{
	size_t bit = t * (m->n + 1) + i;
	return m->dead && (m->dead[bit / 8] & (1u << (bit % 8)));
}

static void set_dead(matcher *m, size_t t, size_t i)
{
	size_t bit = t * (m->n + 1) + i;
	if (m->dead)
		m->dead[bit / 8] |= (unsigned char)(1u << (bit % 8));
}

/*
 * Match the tokens from `t` against the characters from `i`, preferring
 * what Go prefers. Returns the end of the match, or -1.
 */
static long match_from(matcher *m, size_t t, size_t i)
{
	for (; t < m->ntok && m->toks[t].type != TOK_STAR; t++, i++) {
		if (i >= m->n)
			return -1;
		if (m->toks[t].type == TOK_LIT ? m->cp[i] != m->toks[t].cp : m->cp[i] == '\n')
			return -1;
	}
	if (t == m->ntok)
		return (long)i;
	if (is_dead(m, t, i))
		return -1;
	size_t end = m->run_end[i], last;
	/* candidates: (t + 1, k) for k in [i, last] */
	last = end;
	if (m->hi[t] == end) {
		if (m->lo[t] <= i)
			return -1;
		last = m->lo[t] - 1;
	}
	for (size_t k = 0; k <= last - i; k++) {
		long r = match_from(m, t + 1, m->greedy ? last - k : i + k);
		if (r >= 0)
			return r;
	}
	m->lo[t] = i;
	m->hi[t] = end;
	set_dead(m, t, i);
	return -1;
}

static int matcher_init(matcher *m, const token *toks, size_t ntok, const chars *c, int greedy)
{
	memset(m, 0, sizeof(*m));
	m->toks = toks;
	m->ntok = ntok;
	m->cp = c->cp;
	m->n = c->n;
	m->greedy = greedy;
	m->lo = ib_calloc(ntok + 1, sizeof(*m->lo));
	m->hi = ib_calloc(ntok + 1, sizeof(*m->hi));
	m->run_end = ib_calloc(c->n + 1, sizeof(*m->run_end));
	if (!m->lo || !m->hi || !m->run_end) {
		free(m->lo);
		free(m->hi);
		free(m->run_end);
		return IB_ERROR;
	}
	for (size_t t = 0; t <= ntok; t++)
		m->hi[t] = SIZE_MAX;
	m->run_end[c->n] = c->n;
	for (size_t i = c->n; i-- > 0;)
		m->run_end[i] = c->cp[i] == '\n' ? i : m->run_end[i + 1];
	/* the memo of dead ends is optional: without it, slower but correct */
	if (ntok + 1 <= (SIZE_MAX / 8) / (c->n + 1))
		m->dead = calloc((ntok + 1) * (c->n + 1) / 8 + 1, 1);
	return 0;
}

static void matcher_free(matcher *m)
{
	free(m->dead);
	free(m->lo);
	free(m->hi);
	free(m->run_end);
}

/* Leftmost match at or after character `from`: [*a, *b), or 0 if none. */
static int find(matcher *m, size_t from, size_t *a, size_t *b)
{
	for (size_t s = from; s <= m->n; s++) {
		long end = match_from(m, 0, s);
		if (end >= 0) {
			*a = s;
			*b = (size_t)end;
			return 1;
		}
	}
	return 0;
}

/* The end of the preferred match of `toks` at the start of `c`, or -1 (*end). */
static int anchored_end(long *end, const token *toks, size_t ntok, const chars *c, int greedy)
{
	matcher m;

	if (matcher_init(&m, toks, ntok, c, greedy) < 0)
		return IB_ERROR;
	*end = match_from(&m, 0, 0);
	matcher_free(&m);
	return 0;
}

int ib_parse__shpattern_trim(ib_buf *out, const ib_parse__shpattern *p, const char *value,
			     int suffix, int greedy)
{
	chars c, r = { NULL, NULL, 0 };
	token *toks = NULL;
	long end;
	int rc = IB_ERROR;

	if (chars_decode(&c, value) < 0)
		return IB_ERROR;
	if (!suffix) {
		if (anchored_end(&end, p->toks, p->n, &c, greedy) == 0)
			rc = ib_buf_puts(out, value + (end >= 0 ? c.off[end] : 0));
		chars_free(&c);
		return rc;
	}
	/* a suffix: match the reversed pattern against the reversed value */
	r.n = c.n;
	r.cp = ib_calloc(c.n + 1, sizeof(*r.cp));
	toks = ib_calloc(p->n + 1, sizeof(*toks));
	if (r.cp && toks) {
		for (size_t i = 0; i < c.n; i++)
			r.cp[i] = c.cp[c.n - 1 - i];
		for (size_t i = 0; i < p->n; i++)
			toks[i] = p->toks[p->n - 1 - i];
		if (anchored_end(&end, toks, p->n, &r, greedy) == 0)
			rc = ib_buf_put(out, value, c.off[end >= 0 ? c.n - (size_t)end : c.n]);
	}
	free(r.cp);
	free(toks);
	chars_free(&c);
	return rc;
}

/* Go's regexp template expansion, for a regexp without groups: `$0` is the match. */
static int expand_template(ib_buf *out, const char *t, const char *match, size_t mlen)
{
	const char *d;

	while ((d = strchr(t, '$')) != NULL) {
		int brace = d[1] == '{', rc;
		const char *name = d + 1 + brace, *e = name;
		uint32_t cp;

		if (ib_buf_put(out, t, (size_t)(d - t)) < 0)
			return IB_ERROR;
		if (d[1] == '$') {
			rc = ib_buf_putc(out, '$');
			t = d + 2;
			if (rc < 0)
				return IB_ERROR;
			continue;
		}
		while (*e) {
			size_t w = ib_parse__u_decode(e, strlen(e), &cp);
			if (!ib_parse__u_is_letter(cp) && !ib_parse__u_is_digit(cp) && cp != '_')
				break;
			e += w;
		}
		if (e == name || (brace && *e != '}')) {
			/* malformed: the `$` is text */
			if (ib_buf_putc(out, '$') < 0)
				return IB_ERROR;
			t = d + 1;
			continue;
		}
		/* only group 0 exists: "0" (no leading zeros) is the whole match */
		if (e - name == 1 && *name == '0' && ib_buf_put(out, match, mlen) < 0)
			return IB_ERROR;
		t = e + brace;
	}
	return ib_buf_puts(out, t);
}

int ib_parse__shpattern_replace(ib_buf *out, const ib_parse__shpattern *p, const char *value,
				const char *repl, int all, size_t limit)
{
	chars c;
	matcher m;
	size_t a, b, last = 0, search = 0;
	int rc = 0;

	if (chars_decode(&c, value) < 0)
		return IB_ERROR;
	if (matcher_init(&m, p->toks, p->n, &c, 1) < 0) {
		chars_free(&c);
		return IB_ERROR;
	}
	if (!all) {
		if (find(&m, 0, &a, &b)) {
			if (ib_buf_put(out, value, c.off[a]) < 0 || ib_buf_puts(out, repl) < 0)
				rc = IB_ERROR;
			last = b;
		}
	} else {
		while (rc == 0 && search <= c.n && find(&m, search, &a, &b)) {
			rc = ib_buf_put(out, value + c.off[last], c.off[a] - c.off[last]);
			/* no replacement for an empty match right after a match */
			if (rc == 0 && (b > last || a == 0))
				rc = expand_template(out, repl, value + c.off[a], c.off[b] - c.off[a]);
			last = b;
			search = b > search ? b : search + 1;
			if (rc == 0 && out->size > limit)
				rc = ib_parse__expand_too_big(limit);
		}
	}
	if (rc == 0)
		rc = ib_buf_puts(out, value + c.off[last]);
	matcher_free(&m);
	chars_free(&c);
	return rc;
}
