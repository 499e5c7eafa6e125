/*
 * The part of BuildKit's shell lexer that heredoc detection needs: split a
 * line into words with escape `\`, an empty environment and unset
 * variables kept as written ($X, ${X:-y}), optionally keeping quotes and
 * escapes (raw mode). `<<` glues to the white space that follows it, so
 * `<<  EOF` is one word. Expansion proper lives in lib/parse/words/.
 */
#include <string.h>
#include "parse/dockerfile/df.h"

#define LEX_EOF (-2)

typedef struct {
	const char *s;
	size_t len, pos;
	bool raw_quotes;
	bool raw_escapes;
	const char *err;
} lexer;

typedef struct {
	ib_buf word;
	ib_parse__ptrvec *words;   /* NULL: no word splitting wanted */
	ib_parse__arena *arena;
	bool in_word;
} wordlist;

static int peek(lexer *l, int *w)
{
	if (l->pos >= l->len) {
		*w = 0;
		return LEX_EOF;
	}
	int r = ib_parse__utf8_decode(l->s + l->pos, l->len - l->pos, w);
	return r;   /* -1 for an invalid byte: an ordinary character */
}

/* Append the character at the current position (raw bytes) and advance. */
static int take(lexer *l, ib_buf *out)
{
	int w;
	peek(l, &w);
	int rc = out ? ib_buf_put(out, l->s + l->pos, (size_t)w) : 0;
	l->pos += (size_t)w;
	return rc;
}

static int flush(wordlist *wl)
{
	if (!wl->words || wl->word.size == 0)
		return 0;
	char *w = ib_parse__strndup(wl->arena, wl->word.ptr, wl->word.size);
	if (!w || ib_parse__vec_push(wl->arena, wl->words, w) < 0)
		return IB_ERROR;
	ib_buf_clear(&wl->word);
	wl->in_word = false;
	return 0;
}

static int add_raw(wordlist *wl, const char *s, size_t n)
{
	wl->in_word = true;
	return ib_buf_put(&wl->word, s, n);
}

static int add_char(wordlist *wl, const char *s, size_t n)
{
	int w, r = ib_parse__utf8_decode(s, n, &w);
	if (ib_parse__is_space(r)) {
		if (wl->in_word && wl->word.size)
			return flush(wl);
		return 0;
	}
	return add_raw(wl, s, n);
}

static int add_string(wordlist *wl, const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		int w;
		ib_parse__utf8_decode(s + i, n - i, &w);
		if (add_char(wl, s + i, (size_t)w) < 0)
			return IB_ERROR;
		i += (size_t)w;
	}
	return 0;
}

static int stop_on(lexer *l, int stop, bool raw_escapes, ib_buf *result, wordlist *wl);

static int single_quote(lexer *l, ib_buf *out)
{
	int w;
	if (take(l, l->raw_quotes ? out : NULL) < 0)
		return IB_ERROR;
	for (;;) {
		int r = peek(l, &w);
		if (r == LEX_EOF) {
			l->err = "unexpected end of statement while looking for matching single-quote";
			return IB_ESYNTAX;
		}
		if (r == '\'') {
			if (take(l, l->raw_quotes ? out : NULL) < 0)
				return IB_ERROR;
			return 0;
		}
		if (take(l, out) < 0)
			return IB_ERROR;
	}
}

static int dollar(lexer *l, ib_buf *out);

static int double_quote(lexer *l, ib_buf *out)
{
	int w;
	if (take(l, l->raw_quotes ? out : NULL) < 0)
		return IB_ERROR;
	for (;;) {
		int r = peek(l, &w);
		if (r == LEX_EOF) {
			l->err = "unexpected end of statement while looking for matching double-quote";
			return IB_ESYNTAX;
		}
		if (r == '"')
			return take(l, l->raw_quotes ? out : NULL);
		if (r == '$') {
			int rc = dollar(l, out);
			if (rc < 0)
				return rc;
			continue;
		}
		if (r == '\\') {
			if (take(l, l->raw_escapes ? out : NULL) < 0)
				return IB_ERROR;
			int n = peek(l, &w);
			if (n == LEX_EOF)
				continue;
			/* `\"` `\$` `\\` escape; before anything else the `\` stays
			 * (and in raw mode appears twice, as upstream) */
			if (n == '"' || n == '$' || n == '\\') {
				if (take(l, out) < 0)
					return IB_ERROR;
			} else if (ib_buf_putc(out, '\\') < 0) {
				return IB_ERROR;
			}
			continue;
		}
		if (take(l, out) < 0)
			return IB_ERROR;
	}
}

static bool is_special_param(int r)
{
	return r == '@' || r == '*' || r == '#' || r == '?' || r == '-' || r == '$' ||
	       r == '!' || r == '0';
}

/* Read a variable name (buildkit processName) into `name`. */
static int name_of(lexer *l, ib_buf *name)
{
	int w;
	for (;;) {
		int r = peek(l, &w);
		if (r == LEX_EOF)
			return 0;
		if (name->size == 0 && ib_parse__is_digit(r)) {
			while ((r = peek(l, &w)) != LEX_EOF && ib_parse__is_digit(r))
				if (take(l, name) < 0)
					return IB_ERROR;
			return 0;
		}
		if (name->size == 0 && is_special_param(r))
			return take(l, name);
		if (!ib_parse__is_letter(r) && !ib_parse__is_digit(r) && r != '_')
			return 0;
		if (take(l, name) < 0)
			return IB_ERROR;
	}
}

/* `$...` with every variable unset and kept as written. */
static int dollar(lexer *l, ib_buf *out)
{
	int w, rc;
	ib_buf name = IB_BUF_INIT, word = IB_BUF_INIT;
	take(l, NULL);
	if (peek(l, &w) != '{') {
		rc = name_of(l, &name);
		if (rc == 0)
			rc = ib_buf_putc(out, '$');
		if (rc == 0 && name.size)
			rc = ib_buf_put(out, name.ptr, name.size);
		goto done;
	}
	take(l, NULL);
	int r = peek(l, &w);
	if (r == LEX_EOF) {
		l->err = "syntax error: missing '}'";
		rc = IB_ESYNTAX;
		goto done;
	}
	if (r == '{' || r == '}' || r == ':') {
		l->err = "syntax error: bad substitution";
		rc = IB_ESYNTAX;
		goto done;
	}
	if ((rc = name_of(l, &name)) < 0)
		goto done;
	r = peek(l, &w);
	if (r == LEX_EOF) {
		l->err = "unsupported modifier in substitution";
		rc = IB_ESYNTAX;
		goto done;
	}
	size_t mod_start = l->pos;
	take(l, NULL);
	if (r == '}') {
		rc = ib_buf_puts(out, "${");
		if (!rc && name.size)
			rc = ib_buf_put(out, name.ptr, name.size);
		if (!rc)
			rc = ib_buf_putc(out, '}');
		goto done;
	}
	if (r == ':' || r == '+' || r == '-' || r == '?' || r == '#' || r == '%') {
		int m = r;
		if (r == ':') {
			m = peek(l, &w);
			if (m != LEX_EOF)
				take(l, NULL);
		}
		bool raw = m == '#' || m == '%';
		if (r == ':' && raw) {
			l->err = "unsupported modifier in substitution";
			rc = IB_ESYNTAX;
			goto done;
		}
		size_t mod_end = l->pos;
		rc = stop_on(l, '}', raw, &word, NULL);
		if (rc < 0) {
			if (l->pos >= l->len)
				l->err = "syntax error: missing '}'";
			goto done;
		}
		rc = ib_buf_puts(out, "${");
		if (!rc)
			rc = ib_buf_put(out, name.ptr ? name.ptr : "", name.size);
		if (!rc)
			rc = ib_buf_put(out, l->s + mod_start, mod_end - mod_start);
		if (!rc)
			rc = ib_buf_put(out, word.ptr ? word.ptr : "", word.size);
		if (!rc)
			rc = ib_buf_putc(out, '}');
		goto done;
	}
	if (r == '/') {
		ib_buf repl = IB_BUF_INIT;
		if (peek(l, &w) == '/')
			take(l, NULL);
		rc = stop_on(l, '/', true, &word, NULL);
		if (rc == 0)
			rc = stop_on(l, '}', true, &repl, NULL);
		if (rc < 0) {
			if (l->pos >= l->len)
				l->err = "syntax error: missing '}'";
			ib_buf_dispose(&repl);
			goto done;
		}
		rc = ib_buf_printf(out, "${%s/%s/%s}", ib_buf_cstr(&name), ib_buf_cstr(&word),
				   ib_buf_cstr(&repl));
		ib_buf_dispose(&repl);
		goto done;
	}
	l->err = "unsupported modifier in substitution";
	rc = IB_ESYNTAX;
done:
	ib_buf_dispose(&name);
	ib_buf_dispose(&word);
	return rc;
}

/* `<<` plus the white space after it; a lone `<` is itself. */
static int possible_heredoc(lexer *l, ib_buf *out)
{
	int w;
	take(l, out);
	if (peek(l, &w) != '<')
		return 0;
	if (take(l, out) < 0)
		return IB_ERROR;
	for (;;) {
		int r = peek(l, &w);
		if (r == LEX_EOF || !ib_parse__is_space(r))
			return 0;
		if (take(l, out) < 0)
			return IB_ERROR;
	}
}

static int stop_on(lexer *l, int stop, bool raw_escapes, ib_buf *result, wordlist *wl)
{
	bool saved = l->raw_escapes;
	ib_buf tmp = IB_BUF_INIT;
	int w, rc = 0;
	l->raw_escapes = raw_escapes;
	for (;;) {
		int r = peek(l, &w);
		if (r == LEX_EOF)
			break;
		if (stop != LEX_EOF && r == stop) {
			take(l, NULL);
			goto out;
		}
		if (r == '\'' || r == '"' || r == '$' || r == '<') {
			ib_buf_clear(&tmp);
			rc = r == '\'' ? single_quote(l, &tmp) :
			     r == '"' ? double_quote(l, &tmp) :
			     r == '$' ? dollar(l, &tmp) : possible_heredoc(l, &tmp);
			if (rc < 0)
				goto out;
			if (ib_buf_put(result, tmp.ptr ? tmp.ptr : "", tmp.size) < 0 ||
			    (wl && (r == '$' ? add_string(wl, tmp.ptr, tmp.size)
					     : add_raw(wl, tmp.ptr ? tmp.ptr : "", tmp.size)) < 0)) {
				rc = IB_ERROR;
				goto out;
			}
			continue;
		}
		size_t at = l->pos;
		take(l, NULL);
		if (r == '\\') {
			if (l->raw_escapes) {
				if (ib_buf_putc(result, '\\') < 0 || (wl && add_raw(wl, "\\", 1) < 0)) {
					rc = IB_ERROR;
					goto out;
				}
			}
			if (peek(l, &w) == LEX_EOF)
				break;
			at = l->pos;
			take(l, NULL);
			if (ib_buf_put(result, l->s + at, (size_t)w) < 0 ||
			    (wl && add_raw(wl, l->s + at, (size_t)w) < 0)) {
				rc = IB_ERROR;
				goto out;
			}
			continue;
		}
		if (ib_buf_put(result, l->s + at, l->pos - at) < 0 ||
		    (wl && add_char(wl, l->s + at, l->pos - at) < 0)) {
			rc = IB_ERROR;
			goto out;
		}
	}
	if (stop != LEX_EOF) {
		l->err = "unexpected end of statement while looking for matching stop character";
		rc = IB_ESYNTAX;
	}
out:
	l->raw_escapes = saved;
	ib_buf_dispose(&tmp);
	return rc;
}

/* Split into words. `err` receives the lexer's message on a syntax error. */
static int lex_words(ib_parse__ptrvec *out, ib_parse__arena *a, const char *s, size_t len,
		     bool raw_quotes, bool raw_escapes, const char **err)
{
	lexer l = { s, len, 0, raw_quotes, raw_escapes, NULL };
	wordlist wl = { IB_BUF_INIT, out, a, false };
	ib_buf result = IB_BUF_INIT;
	memset(out, 0, sizeof(*out));
	int rc = stop_on(&l, LEX_EOF, raw_escapes, &result, &wl);
	if (rc == 0)
		rc = flush(&wl);
	ib_buf_dispose(&result);
	ib_buf_dispose(&wl.word);
	if (rc < 0) {
		memset(out, 0, sizeof(*out));
		if (err)
			*err = l.err ? l.err : "out of memory";
	}
	return rc;
}

int ib_parse__lex_raw_words(ib_parse__ptrvec *out, ib_parse__arena *a, const char *s, size_t len)
{
	return lex_words(out, a, s, len, true, true, NULL);
}

static size_t count_quotes(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\'' || *s == '"';
	return n;
}

static bool is_re_space(char c) /* Go regexp \s */
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

int ib_parse__heredoc_word(ib_heredoc *out, ib_parse__arena *a, const char *word)
{
	/* ^(\d*)<<(-?)\s*([^<]*)$ */
	const char *p = word;
	unsigned long fd = 0;
	bool overflow = false;
	memset(out, 0, sizeof(*out));
	while (*p >= '0' && *p <= '9') {
		if (fd > 0xFFFFFFFFUL / 10)
			overflow = true;
		fd = fd * 10 + (unsigned long)(*p - '0');
		p++;
	}
	if (p[0] != '<' || p[1] != '<')
		return 0;
	p += 2;
	bool chomp = *p == '-';
	if (chomp)
		p++;
	while (is_re_space(*p))
		p++;
	if (strchr(p, '<'))
		return 0;
	if (!*p)
		return 0;

	ib_parse__ptrvec words, raw;
	const char *err = NULL;
	int rc = lex_words(&words, a, p, strlen(p), false, false, &err);
	if (rc == IB_ERROR)
		return rc;
	if (rc < 0)
		return ib_error_setc(IB_ESYNTAX, IB_LAYER_PARSE, "heredoc `%s`: %s", word, err);
	if (words.count != 1)
		return 0;
	rc = lex_words(&raw, a, p, strlen(p), true, false, &err);
	if (rc == IB_ERROR)
		return rc;
	if (rc < 0 || raw.count != 1)
		return ib_error_setc(IB_ESYNTAX, IB_LAYER_PARSE,
				     "internal lexing of heredoc produced inconsistent results: %s", p);
	out->name = words.items[0];
	out->expand = count_quotes(words.items[0]) == count_quotes(raw.items[0]);
	out->chomp = chomp;
	out->fd = overflow ? 0 : (unsigned int)fd;
	out->content = "";
	return 1;
}

int ib_parse__heredocs_from_line(ib_heredoc **out, size_t *n, ib_parse__arena *a,
				  const char *line, size_t len)
{
	ib_parse__ptrvec words;
	*out = NULL;
	*n = 0;
	int rc = lex_words(&words, a, line, len, true, true, NULL);
	if (rc == IB_ERROR)
		return rc;
	if (rc < 0)
		return 0;   /* buildkit ignores a line it cannot split: no heredocs */
	ib_heredoc *docs = NULL;
	size_t count = 0;
	for (size_t i = 0; i < words.count; i++) {
		ib_heredoc h;
		rc = ib_parse__heredoc_word(&h, a, words.items[i]);
		if (rc < 0)
			return rc;
		if (rc == 0)
			continue;
		ib_heredoc *bigger = ib_parse__alloc(a, (count + 1) * sizeof(*bigger));
		if (!bigger)
			return IB_ERROR;
		if (count)
			memcpy(bigger, docs, count * sizeof(*docs));
		bigger[count++] = h;
		docs = bigger;
	}
	*out = docs;
	*n = count;
	return 0;
}
