/*
 * .dockerignore: reading (moby/patternmatcher ignorefile.ReadAll),
 * compiling and matching (patternmatcher.New, MatchesOrParentMatches), and
 * the walker's "descend into an excluded directory?" (tonistiigi/fsutil).
 */
#include "words.h"
#include "unicode.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/path.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* How a pattern is matched (patternmatcher's shortcuts, then a regexp). */
enum { MATCH_EXACT, MATCH_PREFIX, MATCH_SUFFIX, MATCH_REGEX };

/* The elements of a MATCH_REGEX pattern. */
enum {
	T_LIT,         /* one character */
	T_ONE,         /* `?`: [^/] */
	T_STAR,        /* `*`: [^/]* */
	T_CLASS,       /* [...] */
	T_ANY_DIRS,    /* `**` inside the pattern: any directories, or none */
	T_ANY_END,     /* `**` ending the pattern: .* */
	T_BOL          /* `^` outside a class: a regexp anchor, as upstream */
};

typedef struct {
	int type;
	uint32_t cp;        /* T_LIT */
	int negated;        /* T_CLASS */
	size_t first, n;    /* T_CLASS: ranges[first .. first+n) */
} ptoken;

typedef struct {
	char *text;         /* cleaned, without the `!` */
	int exception;
	int kind;           /* MATCH_* */
	ptoken *toks;
	size_t ntok;
	uint32_t (*ranges)[2];
	size_t nranges;
} pattern;

struct ib_ignore {
	pattern *pats;
	size_t n;
	int has_exceptions;
	int only_prefix_exceptions; /* no exception has glob characters */
};

/* ---- syntax (Go's filepath.Match rules) ---- */

/* One class character at p[*i] (maybe escaped); Go's getEsc. */
static int class_char(const char *p, size_t len, size_t *i, uint32_t *cp)
{
	size_t w;

	if (*i >= len || p[*i] == '-' || p[*i] == ']')
		return -1;
	if (p[*i] == '\\' && ++*i >= len)
		return -1;
	w = ib_parse__u_decode(p + *i, len - *i, cp);
	if (*cp == IB_UNICODE_INVALID && w == 1)
		return -1;
	*i += w;
	return *i < len ? 0 : -1; /* the class must still be closed */
}

/*
 * Parse the class starting after `[` at p[*i]; add its ranges to `pat`
 * when it is not NULL. Returns -1 on a syntax error.
 */
static int parse_class(const char *p, size_t len, size_t *i, pattern *pat, ptoken *t)
{
	size_t nrange = 0;

	if (*i < len && p[*i] == '^') {
		(*i)++;
		if (t)
			t->negated = 1;
	}
	for (;;) {
		uint32_t lo, hi;
		if (*i < len && p[*i] == ']' && nrange > 0) {
			(*i)++;
			return 0;
		}
		if (class_char(p, len, i, &lo) < 0)
			return -1;
		hi = lo;
		if (p[*i] == '-') {
			(*i)++;
			if (class_char(p, len, i, &hi) < 0)
				return -1;
		}
		if (pat) {
			pat->ranges[pat->nranges][0] = lo;
			pat->ranges[pat->nranges][1] = hi;
			pat->nranges++;
			t->n++;
		}
		nrange++;
	}
}

static int check_syntax(const char *p)
{
	size_t len = strlen(p), i = 0;
	uint32_t cp;

	while (i < len) {
		if (p[i] == '\\') {
			if (++i >= len)
				return -1;
			i += ib_parse__u_decode(p + i, len - i, &cp);
		} else if (p[i] == '[') {
			i++;
			if (parse_class(p, len, &i, NULL, NULL) < 0)
				return -1;
		} else {
			i += ib_parse__u_decode(p + i, len - i, &cp);
		}
	}
	return 0;
}

/* ---- compiling ---- */

static ptoken *add_tok(pattern *pat, int type)
{
	ptoken *t = &pat->toks[pat->ntok++];
	memset(t, 0, sizeof(*t));
	t->type = type;
	return t;
}

/* `**` (the first `*` is at p[*i - 1]); `i0` says it starts the pattern. */
static void compile_stars(pattern *pat, const char *p, size_t len, size_t *i, int first)
{
	(*i)++;
	if (*i < len && p[*i] == '/')
		(*i)++;
	if (*i >= len) {
		if (pat->kind == MATCH_EXACT) {
			pat->kind = MATCH_PREFIX;
		} else {
			add_tok(pat, T_ANY_END);
			pat->kind = MATCH_REGEX;
		}
	} else {
		add_tok(pat, T_ANY_DIRS);
		pat->kind = MATCH_REGEX;
	}
	if (first)
		pat->kind = MATCH_SUFFIX;
}

/* patternmatcher's compile(): the kind of match, and the tokens. */
static void compile(pattern *pat)
{
	const char *p = pat->text;
	size_t len = strlen(p), i = 0;
	uint32_t c;

	pat->kind = MATCH_EXACT;
	for (int first = 1; i < len; first = 0) {
		i += ib_parse__u_decode(p + i, len - i, &c);
		if (c == '*' && i < len && p[i] == '*') {
			compile_stars(pat, p, len, &i, first);
		} else if (c == '*' || c == '?') {
			add_tok(pat, c == '*' ? T_STAR : T_ONE);
			pat->kind = MATCH_REGEX;
		} else if (c == '\\' && i < len) {
			i += ib_parse__u_decode(p + i, len - i, &c);
			add_tok(pat, T_LIT)->cp = c;
			pat->kind = MATCH_REGEX;
		} else if (c == '[') {
			ptoken *t = add_tok(pat, T_CLASS);
			t->first = pat->nranges;
			parse_class(p, len, &i, pat, t); /* checked before */
			pat->kind = MATCH_REGEX;
		} else {
			/* `]` alone is a literal in a Go regexp, but still makes one */
			if (c == ']')
				pat->kind = MATCH_REGEX;
			add_tok(pat, c == '^' ? T_BOL : T_LIT)->cp = c;
		}
	}
}

static void pattern_free(pattern *p)
{
	free(p->text);
	free(p->toks);
	free(p->ranges);
}

static int pattern_init(pattern *pat, const char *raw)
{
	ib_buf clean = IB_BUF_INIT;
	size_t len = strlen(raw);
	const char *t = ib_parse__u_trim_space(raw, &len);
	char *trimmed = ib_strndup(t, len);
	int rc = IB_ERROR;

	memset(pat, 0, sizeof(*pat));
	if (!trimmed || ib_path_clean(&clean, trimmed) < 0)
		goto done;
	if (clean.ptr[0] == '!') {
		if (clean.size == 1) {
			rc = ib_error_setc(IB_ESYNTAX, IB_LAYER_PARSE, "illegal exclusion pattern: \"!\"");
			goto done;
		}
		pat->exception = 1;
	}
	pat->text = ib_strdup(clean.ptr + pat->exception);
	if (!pat->text)
		goto done;
	if (check_syntax(pat->text) < 0) {
		rc = ib_error_setc(IB_ESYNTAX, IB_LAYER_PARSE,
				   "invalid pattern `%s`: syntax error in pattern", trimmed);
		goto done;
	}
	len = strlen(pat->text);
	pat->toks = ib_calloc(len + 1, sizeof(*pat->toks));
	pat->ranges = ib_calloc(len + 1, sizeof(*pat->ranges));
	if (!pat->toks || !pat->ranges)
		goto done;
	compile(pat);
	rc = 0;
done:
	if (rc < 0)
		pattern_free(pat);
	free(trimmed);
	ib_buf_dispose(&clean);
	return rc;
}

/* fsutil's patternWithoutTrailingGlob: drop one trailing slash-star-star, then one slash-star. */
static size_t without_trailing_glob(const char *s)
{
	size_t n = strlen(s);
	if (n >= 3 && memcmp(s + n - 3, "/**", 3) == 0)
		n -= 3;
	if (n >= 2 && memcmp(s + n - 2, "/*", 2) == 0)
		n -= 2;
	return n;
}

static int has_glob_chars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strchr("*[]?^\\", s[i]))
			return 1;
	return 0;
}

static int is_blank(const char *s)
{
	size_t len = strlen(s);
	ib_parse__u_trim_space(s, &len);
	return len == 0;
}

/* Compile patterns[i] for i < count into a new ib_ignore; lines[i] (if any) for errors. */
static int ignore_new(ib_ignore **out, const char *const *patterns, const size_t *lines,
		      size_t count)
{
	ib_ignore *ig = ib_calloc(1, sizeof(*ig));

	*out = NULL;
	if (!ig || (count && !(ig->pats = ib_calloc(count, sizeof(*ig->pats))))) {
		free(ig);
		return IB_ERROR;
	}
	ig->only_prefix_exceptions = 1;
	for (size_t i = 0; i < count; i++) {
		if (!patterns[i] || is_blank(patterns[i]))
			continue;
		pattern *p = &ig->pats[ig->n];
		if (pattern_init(p, patterns[i]) < 0) {
			if (lines)
				ib_error_prefix("line %zu", lines[i]);
			ib_ignore_free(ig);
			return ib_error_current();
		}
		ig->n++;
		if (p->exception) {
			ig->has_exceptions = 1;
			if (has_glob_chars(p->text, without_trailing_glob(p->text)))
				ig->only_prefix_exceptions = 0;
		}
	}
	*out = ig;
	return 0;
}

int ib_ignore_new(ib_ignore **out, const char *const *patterns, size_t count)
{
	if (!out || (count && !patterns))
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "ib_ignore_new: no patterns given");
	return ignore_new(out, patterns, NULL, count);
}

void ib_ignore_free(ib_ignore *ig)
{
	if (!ig)
		return;
	for (size_t i = 0; i < ig->n; i++)
		pattern_free(&ig->pats[i]);
	free(ig->pats);
	free(ig);
}

size_t ib_ignore_count(const ib_ignore *ig)
{
	return ig ? ig->n : 0;
}

const char *ib_ignore_pattern(const ib_ignore *ig, size_t i, int *exception)
{
	if (!ig || i >= ig->n)
		return NULL;
	if (exception)
		*exception = ig->pats[i].exception;
	return ig->pats[i].text;
}

/* ---- reading a .dockerignore ---- */

/*
 * ReadAll on one line (without its "\n"); appends the pattern to `out` and
 * its line number to `lines` (may be NULL) when the line has one.
 */
static int read_line(ib_strarray *out, const char *s, size_t len)
{
	ib_buf clean = IB_BUF_INIT;
	int invert, rc;
	char *tmp;

	if (len > 0 && s[0] == '#')
		return 0;
	s = ib_parse__u_trim_space(s, &len);
	if (len == 0)
		return 0;
	invert = s[0] == '!';
	if (invert) {
		len--;
		s = ib_parse__u_trim_space(s + 1, &len);
	}
	if (ib_buf_puts(&clean, invert ? "!" : "") < 0)
		return IB_ERROR;
	if (len > 0) {
		ib_buf path = IB_BUF_INIT;
		if (!(tmp = ib_strndup(s, len)) || ib_path_clean(&path, tmp) < 0) {
			free(tmp);
			ib_buf_dispose(&clean);
			return IB_ERROR;
		}
		free(tmp);
		/* drop one leading "/" (but keep "/" itself) */
		int skip = path.size > 1 && path.ptr[0] == '/';
		rc = ib_buf_put(&clean, path.ptr + skip, path.size - (size_t)skip);
		ib_buf_dispose(&path);
		if (rc < 0) {
			ib_buf_dispose(&clean);
			return IB_ERROR;
		}
	}
	rc = ib_parse__strarray_add(out, clean.ptr, clean.size);
	ib_buf_dispose(&clean);
	return rc;
}

/* ReadAll, also giving the line number of each pattern (when `lines` is not NULL). */
static int read_all(ib_strarray *out, size_t **lines, const char *buf, size_t len)
{
	ib_strarray res = IB_STRARRAY_INIT;
	size_t *ln = NULL, cap = 0, lineno = 0;

	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		buf += 3, len -= 3;
	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t n = nl ? (size_t)(nl - buf) : len;
		size_t before = res.count;
		lineno++;
		if (read_line(&res, buf, n) < 0)
			goto fail;
		if (lines && res.count > before) {
			if (res.count > cap) {
				size_t *g = ib_realloc(ln, (cap = cap * 2 + 8) * sizeof(*ln));
				if (!g)
					goto fail;
				ln = g;
			}
			ln[res.count - 1] = lineno;
		}
		buf += n + (nl != NULL);
		len -= n + (nl != NULL);
	}
	ib_strarray_dispose(out);
	*out = res;
	if (lines)
		*lines = ln;
	return 0;
fail:
	free(ln);
	ib_strarray_dispose(&res);
	return IB_ERROR;
}

int ib_ignore_read(ib_strarray *out, const char *buf, size_t len)
{
	if (!out || (len && !buf))
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "ib_ignore_read: no buffer given");
	return read_all(out, NULL, buf, len);
}

int ib_ignore_parse(ib_ignore **out, const char *buf, size_t len, const char *filename)
{
	ib_strarray pats = IB_STRARRAY_INIT;
	size_t *lines = NULL;
	int rc;

	if (!out || (len && !buf))
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "ib_ignore_parse: no buffer given");
	*out = NULL;
	rc = read_all(&pats, &lines, buf, len);
	if (rc == 0)
		rc = ignore_new(out, (const char *const *)pats.strings, lines, pats.count);
	if (rc < 0)
		ib_error_prefix("`%s`", filename ? filename : ".dockerignore");
	free(lines);
	ib_strarray_dispose(&pats);
	return rc;
}

/* ---- matching ---- */

typedef struct {
	const ptoken *toks;
	size_t ntok;
	const uint32_t (*ranges)[2];
	const uint32_t *cp;
	size_t n;
	size_t *next_slash;  /* [i]: the first '/' at or after i, or n */
	size_t *next_nl;     /* [i]: the first newline at or after i, or n */
	/*
	 * Per `*` or `**` token t: after it failed from lo[t], the states
	 * (t + 1, k) it could reach from any i >= lo[t] in the same run (which
	 * ends at hi[t]) are known to fail; hi[t] is SIZE_MAX when nothing is
	 * known. This keeps matching linear per token instead of quadratic.
	 */
	size_t *lo, *hi;
	unsigned char *dead; /* memo of (token, position) dead ends, or NULL */
} rmatch;

static int class_has(const rmatch *m, const ptoken *t, uint32_t c)
{
	int in = 0;
	for (size_t i = t->first; i < t->first + t->n && !in; i++)
		in = m->ranges[i][0] <= c && c <= m->ranges[i][1];
	return in != t->negated;
}

static int dead_get(const rmatch *m, size_t t, size_t i)
{
	size_t bit = t * (m->n + 1) + i;
	return m->dead && (m->dead[bit / 8] >> (bit % 8)) & 1;
}

static void dead_set(rmatch *m, size_t t, size_t i)
{
	size_t bit = t * (m->n + 1) + i;
	if (m->dead)
		m->dead[bit / 8] |= (unsigned char)(1u << (bit % 8));
}

/* `*` at (t, i): [^/]* then the rest. */
static int rmatch_from(rmatch *m, size_t t, size_t i);

static int rmatch_star(rmatch *m, size_t t, size_t i)
{
	size_t end = m->next_slash[i], last = end;

	if (m->hi[t] == end) {
		if (m->lo[t] <= i)
			return 0;
		last = m->lo[t] - 1;
	}
	for (size_t k = i; k <= last; k++)
		if (rmatch_from(m, t + 1, k))
			return 1;
	m->lo[t] = i;
	m->hi[t] = end;
	return 0;
}

/* `**` inside the pattern at (t, i): (.*SLASH)? then the rest. */
static int rmatch_dirs(rmatch *m, size_t t, size_t i)
{
	size_t end = m->next_nl[i], limit = end + 1;

	if (rmatch_from(m, t + 1, i))
		return 1;
	if (m->hi[t] == end) {
		if (m->lo[t] <= i)
			return 0;
		limit = m->lo[t];
	}
	for (size_t j = i; j < end && j + 1 < limit; j++)
		if (m->cp[j] == '/' && rmatch_from(m, t + 1, j + 1))
			return 1;
	m->lo[t] = i;
	m->hi[t] = end;
	return 0;
}

/* Does the rest of the regexp (from token t) match the whole rest of the path (from i)? */
static int rmatch_from(rmatch *m, size_t t, size_t i)
{
	int r = 0;

	for (; t < m->ntok; t++, i++) {
		const ptoken *k = &m->toks[t];
		if (k->type == T_STAR || k->type == T_ANY_DIRS || k->type == T_ANY_END)
			break;
		if (k->type == T_BOL) {
			if (i != 0)
				return 0;
			i--; /* zero width */
			continue;
		}
		if (i >= m->n)
			return 0;
		if ((k->type == T_LIT && m->cp[i] != k->cp) ||
		    (k->type == T_ONE && m->cp[i] == '/') ||
		    (k->type == T_CLASS && !class_has(m, k, m->cp[i])))
			return 0;
	}
	if (t == m->ntok)
		return i == m->n;
	if (dead_get(m, t, i))
		return 0;
	switch (m->toks[t].type) {
	case T_STAR:
		r = rmatch_star(m, t, i);
		break;
	case T_ANY_DIRS:
		r = rmatch_dirs(m, t, i);
		break;
	default: /* T_ANY_END: .* to the end, which it always is */
		r = m->next_nl[i] == m->n && rmatch_from(m, t + 1, m->n);
		break;
	}
	if (!r)
		dead_set(m, t, i);
	return r;
}

static void rmatch_free(rmatch *m)
{
	free((void *)m->cp);
	free(m->next_slash);
	free(m->next_nl);
	free(m->lo);
	free(m->hi);
	free(m->dead);
}

static int regex_match(const pattern *p, const char *s, size_t len)
{
	rmatch m;
	uint32_t *cp;
	size_t i = 0;
	int r;

	memset(&m, 0, sizeof(m));
	m.toks = p->toks;
	m.ntok = p->ntok;
	m.ranges = (const uint32_t(*)[2])p->ranges;
	m.cp = cp = ib_calloc(len + 1, sizeof(*cp));
	m.next_slash = ib_calloc(len + 1, sizeof(size_t));
	m.next_nl = ib_calloc(len + 1, sizeof(size_t));
	m.lo = ib_calloc(p->ntok + 1, sizeof(size_t));
	m.hi = ib_calloc(p->ntok + 1, sizeof(size_t));
	if (!cp || !m.next_slash || !m.next_nl || !m.lo || !m.hi) {
		rmatch_free(&m);
		return IB_ERROR;
	}
	while (i < len)
		i += ib_parse__u_decode(s + i, len - i, &cp[m.n++]);
	m.next_slash[m.n] = m.next_nl[m.n] = m.n;
	for (i = m.n; i-- > 0;) {
		m.next_slash[i] = cp[i] == '/' ? i : m.next_slash[i + 1];
		m.next_nl[i] = cp[i] == '\n' ? i : m.next_nl[i + 1];
	}
	for (i = 0; i <= p->ntok; i++)
		m.hi[i] = SIZE_MAX;
	/* the memo of dead ends is optional: without it, slower but correct */
	if (p->ntok + 1 <= (SIZE_MAX / 8) / (m.n + 1))
		m.dead = calloc((p->ntok + 1) * (m.n + 1) / 8 + 1, 1);
	r = rmatch_from(&m, 0, 0);
	rmatch_free(&m);
	return r;
}

/* One pattern against s[0..len): 1, 0, or < 0 (out of memory). */
static int pattern_match(const pattern *p, const char *s, size_t len)
{
	size_t plen = strlen(p->text);

	switch (p->kind) {
	case MATCH_EXACT:
		return len == plen && memcmp(s, p->text, len) == 0;
	case MATCH_PREFIX: /* "abc**": starts with "abc" */
		return len >= plen - 2 && memcmp(s, p->text, plen - 2) == 0;
	case MATCH_SUFFIX: { /* "**xyz": ends with "xyz", or "**" + "/x" is "x" */
		const char *suf = p->text + 2;
		size_t n = plen - 2;
		if (len >= n && memcmp(s + len - n, suf, n) == 0)
			return 1;
		return n > 0 && suf[0] == '/' && len == n - 1 && memcmp(s, suf + 1, len) == 0;
	}
	default:
		return regex_match(p, s, len);
	}
}

/* The pattern matches the path or one of the parents in path's directory part. */
static int match_or_parent(const pattern *p, const char *path, const char *dir)
{
	int m = pattern_match(p, path, strlen(path));
	size_t dlen = strlen(dir);

	if (m != 0 || strcmp(dir, ".") == 0)
		return m;
	for (size_t i = 0; i <= dlen && m == 0; i++)
		if (i == dlen || dir[i] == '/')
			m = pattern_match(p, dir, i);
	return m;
}

/* Go's filepath.Dir. */
static int path_dir(ib_buf *out, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *head;
	int rc;

	if (!slash)
		return ib_buf_set(out, ".", 1);
	if (!(head = ib_strndup(path, (size_t)(slash - path) + 1)))
		return IB_ERROR;
	rc = ib_path_clean(out, head);
	free(head);
	return rc;
}

int ib_ignore_matches(const ib_ignore *ig, const char *path)
{
	ib_buf dir = IB_BUF_INIT;
	int matched = 0;

	if (!ig || !path)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "ib_ignore_matches: no %s given",
				     ig ? "path" : "patterns");
	if (path_dir(&dir, path) < 0)
		return IB_ERROR;
	for (size_t i = 0; i < ig->n; i++) {
		const pattern *p = &ig->pats[i];
		if (p->exception != matched)
			continue;
		int m = match_or_parent(p, path, dir.ptr);
		if (m < 0) {
			matched = m;
			break;
		}
		if (m)
			matched = !p->exception;
	}
	ib_buf_dispose(&dir);
	return matched;
}

int ib_ignore_descend(const ib_ignore *ig, const char *dir)
{
	size_t dlen;

	if (!ig || !dir)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "ib_ignore_descend: no %s given",
				     ig ? "directory" : "patterns");
	if (!ig->has_exceptions)
		return 0;
	if (!ig->only_prefix_exceptions)
		return 1;
	dlen = strlen(dir);
	for (size_t i = 0; i < ig->n; i++) {
		const pattern *p = &ig->pats[i];
		size_t n = without_trailing_glob(p->text);
		/* (pattern + "/") starts with (dir + "/") */
		if (p->exception && n + 1 >= dlen + 1 && memcmp(p->text, dir, dlen) == 0 &&
		    (n == dlen || p->text[dlen] == '/'))
			return 1;
	}
	return 0;
}

/* ---- which file ---- */

int ib_ignore_candidates(ib_strarray *out, const char *dockerfile_path)
{
	ib_strarray res = IB_STRARRAY_INIT;
	ib_buf name = IB_BUF_INIT;
	const char *df = dockerfile_path ? dockerfile_path : "";
	size_t n = strlen(df);
	int rc = 0;

	if (n > 0 && df[n - 1] == '/')
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE,
				     "Dockerfile path `%s` names a directory", df);
	if (n > 0 && strcmp(df, "-") != 0) {
		rc = ib_buf_printf(&name, "%s.dockerignore", df);
		if (rc == 0)
			rc = ib_parse__strarray_add(&res, name.ptr, name.size);
	}
	if (rc == 0)
		rc = ib_parse__strarray_add(&res, ".dockerignore", strlen(".dockerignore"));
	ib_buf_dispose(&name);
	if (rc < 0) {
		ib_strarray_dispose(&res);
		return rc;
	}
	ib_strarray_dispose(out);
	*out = res;
	return 0;
}
