/*
 * Word expansion, with buildkit's lexer (frontend/dockerfile/shell) as the
 * reference: the same grammar, the same corner cases, the same errors.
 * One deliberate difference: bytes that are not valid UTF-8 are copied
 * through unchanged (Go's scanner turns each into U+FFFD).
 */
#include "words.h"
#include "unicode.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define END (-1) /* "no character": end of input, or no stop character */

/* The words of ib_expand_words(), built while the result is. */
typedef struct {
	ib_strarray list;
	ib_buf word;
	int in_word;
} word_acc;

typedef struct {
	const char *s;
	size_t len, pos;
	int32_t esc;
	unsigned int flags;
	int raw_escapes;
	size_t limit;     /* no buffer grows past this (IB_EXPAND_MAX_RESULT) */
	int stopped;      /* the lookup callback stopped us... */
	int stop_rc;      /* ...with this value */
	const ib_expand_options *opts;
} lexer;

static int process_until(lexer *lx, int32_t stop, int raw, ib_buf *out, word_acc *wa);

/* ---- characters ---- */

static int32_t peek(const lexer *lx, size_t *width)
{
	uint32_t cp;
	if (lx->pos >= lx->len) {
		*width = 0;
		return END;
	}
	*width = ib_parse__u_decode(lx->s + lx->pos, lx->len - lx->pos, &cp);
	return (int32_t)cp;
}

static int32_t peek1(const lexer *lx)
{
	size_t w;
	return peek(lx, &w);
}

/* Take the next character; its bytes are at *at, *width long. */
static int32_t next(lexer *lx, const char **at, size_t *width)
{
	int32_t c = peek(lx, width);
	*at = lx->s + lx->pos;
	lx->pos += *width;
	return c;
}

/* ---- words ---- */

static int wa_push(word_acc *wa)
{
	if (wa->word.size > 0) {
		if (ib_parse__strarray_add(&wa->list, wa->word.ptr, wa->word.size) < 0)
			return IB_ERROR;
		ib_buf_clear(&wa->word);
		wa->in_word = 0;
	}
	return 0;
}

static int wa_raw(word_acc *wa, const char *s, size_t n)
{
	if (!wa)
		return 0;
	wa->in_word = 1;
	return ib_buf_put(&wa->word, s, n);
}

/* An unquoted character: white space ends a word. */
static int wa_char(word_acc *wa, uint32_t cp, const char *s, size_t n)
{
	if (!wa)
		return 0;
	if (ib_parse__u_is_space(cp))
		return wa->in_word ? wa_push(wa) : 0;
	return wa_raw(wa, s, n);
}

/* The value of an unquoted `$...`: split at white space. */
static int wa_string(word_acc *wa, const char *s, size_t n)
{
	size_t i = 0;
	uint32_t cp;
	while (wa && i < n) {
		size_t w = ib_parse__u_decode(s + i, n - i, &cp);
		if (wa_char(wa, cp, s + i, w) < 0)
			return IB_ERROR;
		i += w;
	}
	return 0;
}

/* ---- errors ---- */

static int syntax(const char *msg)
{
	return ib_error_setc(IB_ESYNTAX, IB_LAYER_PARSE, "%s", msg);
}

int ib_parse__expand_too_big(size_t limit)
{
	return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_PARSE,
			     "the expansion grows past %zu bytes (nested substitutions?); "
			     "the limit is the word's length + %u bytes",
			     limit, (unsigned)IB_EXPAND_MAX_RESULT);
}

/*
 * Only a `$` expansion makes a buffer longer than the input; each one is
 * checked where its result lands, so a doubling per nesting level stops at
 * the limit, not at the memory's.
 */
static int check_size(const lexer *lx, const ib_buf *b)
{
	return b->size > lx->limit ? ib_parse__expand_too_big(lx->limit) : 0;
}

/* ---- variables ---- */

static int lookup(lexer *lx, const char *name, const char **val, size_t *vlen, int *found)
{
	const char *const *e = lx->opts ? lx->opts->env : NULL;
	size_t nlen = strlen(name);

	*found = 0;
	*val = "";
	*vlen = 0;
	for (; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		size_t klen = eq ? (size_t)(eq - *e) : strlen(*e);
		if (klen == nlen && memcmp(*e, name, nlen) == 0) {
			*found = 1;
			*val = eq ? eq + 1 : "";
			*vlen = strlen(*val);
		}
	}
	if (lx->opts && lx->opts->lookup) {
		int rc = lx->opts->lookup(name, *found, lx->opts->payload);
		if (rc) {
			lx->stopped = 1;
			lx->stop_rc = rc;
			/* the error's code is the callback's value, as the call's result (common.h) */
			ib_error_setc(rc, IB_LAYER_CALLBACK, "the lookup callback stopped the expansion at `%s` (%d)",
				      name, rc);
			return IB_EUSER;
		}
	}
	return 0;
}

static int is_special_param(int32_t c)
{
	return c == '@' || c == '*' || c == '#' || c == '?' || c == '-' ||
	       c == '$' || c == '!' || c == '0';
}

/* A name: letters, digits, `_`; or a run of digits; or one special character. */
static int process_name(lexer *lx, ib_buf *name)
{
	size_t w;
	int32_t c;
	int digits;

	ib_buf_clear(name);
	c = peek(lx, &w);
	if (c == END)
		return ib_buf_puts(name, "");
	digits = ib_parse__u_is_digit((uint32_t)c);
	if (!digits && is_special_param(c)) {
		lx->pos += w;
		return ib_buf_put(name, lx->s + lx->pos - w, w);
	}
	while ((c = peek(lx, &w)) != END) {
		uint32_t u = (uint32_t)c;
		int ok = digits ? ib_parse__u_is_digit(u)
				: ib_parse__u_is_letter(u) || ib_parse__u_is_digit(u) || u == '_';
		if (!ok)
			break;
		if (ib_buf_put(name, lx->s + lx->pos, w) < 0)
			return IB_ERROR;
		lx->pos += w;
	}
	return ib_buf_puts(name, "");
}

/* ---- quotes ---- */

static int process_single_quote(lexer *lx, ib_buf *out)
{
	const char *at;
	size_t w;
	int raw = (lx->flags & IB_EXPAND_RAW_QUOTES) != 0;
	int32_t c = next(lx, &at, &w);

	if (raw && ib_buf_put(out, at, w) < 0)
		return IB_ERROR;
	for (;;) {
		c = next(lx, &at, &w);
		if (c == END)
			return syntax("unexpected end of statement while looking for matching single-quote");
		if (c == '\'')
			return raw ? ib_buf_put(out, at, w) : 0;
		if (ib_buf_put(out, at, w) < 0)
			return IB_ERROR;
	}
}

static int process_dollar(lexer *lx, ib_buf *out);

static int process_double_quote(lexer *lx, ib_buf *out)
{
	const char *at;
	size_t w;
	int raw = (lx->flags & IB_EXPAND_RAW_QUOTES) != 0;
	int32_t c = next(lx, &at, &w);

	if (raw && ib_buf_put(out, at, w) < 0)
		return IB_ERROR;
	for (;;) {
		c = peek1(lx);
		if (c == END)
			return syntax("unexpected end of statement while looking for matching double-quote");
		if (c == '"') {
			c = next(lx, &at, &w);
			return raw ? ib_buf_put(out, at, w) : 0;
		}
		if (c == '$') {
			if (process_dollar(lx, out) < 0)
				return IB_ERROR;
			continue;
		}
		c = next(lx, &at, &w);
		if (c == lx->esc) {
			int32_t n = peek1(lx);
			if (lx->raw_escapes && ib_buf_put(out, at, w) < 0)
				return IB_ERROR;
			if (n == END)
				continue; /* a final escape is dropped (then the quote is missing) */
			if (n == '"' || n == '$' || n == lx->esc)
				c = next(lx, &at, &w);
			/* else the escape character stays */
		}
		if (ib_buf_put(out, at, w) < 0)
			return IB_ERROR;
	}
}

/* ---- ${...} ---- */

/* Expand a modifier's word up to `stop`; a missing stop gets `missing`. */
static int modifier_word(lexer *lx, int32_t stop, int raw, ib_buf *word, const char *missing)
{
	if (process_until(lx, stop, raw, word, NULL) == 0)
		return 0;
	if (!lx->stopped && lx->pos >= lx->len)
		return ib_error_setc(IB_ESYNTAX, IB_LAYER_PARSE, "syntax error: missing %s", missing);
	return IB_ERROR;
}

static int put_unset(ib_buf *out, const char *name, const char *mod, const ib_buf *word)
{
	return ib_buf_printf(out, "${%s%s%s}", name, mod, ib_buf_cstr(word));
}

static int apply_trim(ib_buf *out, int mod, ib_buf *word, const char *val)
{
	ib_parse__shpattern *pat = NULL;
	const char *p = ib_buf_cstr(word);
	int greedy = p[0] == mod, rc;

	if (ib_parse__shpattern_new(&pat, p + greedy) < 0)
		return IB_ERROR;
	rc = ib_parse__shpattern_trim(out, pat, val, mod == '%', greedy);
	ib_parse__shpattern_free(pat);
	return rc;
}

/* `${name:-word}` and friends; `colon` when the modifier had a `:`. */
static int process_modifier(lexer *lx, ib_buf *out, const char *name, int colon, int32_t mod)
{
	ib_buf word = IB_BUF_INIT;
	const char *val;
	size_t vlen;
	int found, rc = 0;
	char mods[3] = { ':', (char)mod, 0 };

	if (mod == END)
		return syntax("syntax error: missing '}'");
	if (modifier_word(lx, '}', mod == '#' || mod == '%', &word, "'}'") < 0 ||
	    lookup(lx, name, &val, &vlen, &found) < 0) {
		ib_buf_dispose(&word);
		return IB_ERROR;
	}
	ib_buf_puts(&word, "");
	if (!found && (lx->flags & IB_EXPAND_KEEP_UNSET)) {
		rc = put_unset(out, name, colon ? mods : mods + 1, &word);
		ib_buf_dispose(&word);
		return rc;
	}
	int empty = !found || (colon && vlen == 0);
	switch (colon ? -mod : mod) {
	case '-': case -'-':
		rc = empty ? ib_buf_put(out, word.ptr, word.size) : ib_buf_put(out, val, vlen);
		break;
	case '+': case -'+':
		rc = empty ? 0 : ib_buf_put(out, word.ptr, word.size);
		break;
	case '?': case -'?':
		if (empty)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "%s: %s", name,
					   word.size ? word.ptr : !found ? "is not allowed to be unset"
									 : "is not allowed to be empty");
		else
			rc = ib_buf_put(out, val, vlen);
		break;
	case '#': case '%':
		rc = apply_trim(out, mod, &word, val);
		break;
	default:
		rc = ib_error_setc(IB_ESYNTAX, IB_LAYER_PARSE,
				   "unsupported modifier (%s) in substitution", colon ? mods : mods + 1);
	}
	ib_buf_dispose(&word);
	return rc;
}

/* `${name/pattern/replacement}` and `${name//pattern/replacement}`. */
static int process_replace(lexer *lx, ib_buf *out, const char *name)
{
	ib_buf pat = IB_BUF_INIT, repl = IB_BUF_INIT;
	ib_parse__shpattern *sp = NULL;
	const char *val;
	size_t vlen, w;
	int found, rc = IB_ERROR;
	int all = peek(lx, &w) == '/';

	lx->pos += all ? w : 0;
	if (modifier_word(lx, '/', 1, &pat, "'/' in ${}") < 0 ||
	    modifier_word(lx, '}', 1, &repl, "'}'") < 0 ||
	    lookup(lx, name, &val, &vlen, &found) < 0)
		goto done;
	if (!found && (lx->flags & IB_EXPAND_KEEP_UNSET)) {
		rc = ib_buf_printf(out, "${%s/%s/%s}", name, ib_buf_cstr(&pat), ib_buf_cstr(&repl));
		goto done;
	}
	if (ib_parse__shpattern_new(&sp, ib_buf_cstr(&pat)) < 0)
		goto done;
	rc = ib_parse__shpattern_replace(out, sp, val, ib_buf_cstr(&repl), all, lx->limit);
done:
	ib_parse__shpattern_free(sp);
	ib_buf_dispose(&pat);
	ib_buf_dispose(&repl);
	return rc;
}

static int process_braces(lexer *lx, ib_buf *out, ib_buf *name)
{
	const char *at, *val;
	size_t w, vlen;
	int32_t c = peek1(lx);
	int found;

	if (c == END)
		return syntax("syntax error: missing '}'");
	if (c == '{' || c == '}' || c == ':')
		return syntax("syntax error: bad substitution");
	if (process_name(lx, name) < 0)
		return IB_ERROR;
	c = next(lx, &at, &w);
	switch (c) {
	case '}':
		if (lookup(lx, name->ptr, &val, &vlen, &found) < 0)
			return IB_ERROR;
		if (!found && (lx->flags & IB_EXPAND_KEEP_UNSET))
			return ib_buf_printf(out, "${%s}", name->ptr);
		return ib_buf_put(out, val, vlen);
	case ':':
		return process_modifier(lx, out, name->ptr, 1, next(lx, &at, &w));
	case '+': case '-': case '?': case '#': case '%':
		return process_modifier(lx, out, name->ptr, 0, c);
	case '/':
		return process_replace(lx, out, name->ptr);
	case END:
		return syntax("syntax error: missing '}'");
	default:
		return ib_error_setc(IB_ESYNTAX, IB_LAYER_PARSE,
				     "unsupported modifier (%.*s) in substitution", (int)w, at);
	}
}

static int process_dollar(lexer *lx, ib_buf *out)
{
	ib_buf name = IB_BUF_INIT;
	const char *val;
	size_t vlen;
	int found, rc;

	lx->pos++; /* '$' */
	if (peek1(lx) == '{') {
		lx->pos++;
		rc = process_braces(lx, out, &name);
	} else if ((rc = process_name(lx, &name)) < 0) {
		/* out of memory */
	} else if (name.size == 0) {
		rc = ib_buf_putc(out, '$');
	} else if ((rc = lookup(lx, name.ptr, &val, &vlen, &found)) < 0) {
		/* stopped */
	} else if (!found && (lx->flags & IB_EXPAND_KEEP_UNSET)) {
		rc = ib_buf_printf(out, "$%s", name.ptr);
	} else {
		rc = ib_buf_put(out, val, vlen);
	}
	if (rc == 0)
		rc = check_size(lx, out);
	ib_buf_dispose(&name);
	return rc;
}

/* ---- the word ---- */

/* One special construct ($, quotes) at lx->pos: expand it into out and wa. */
static int process_special(lexer *lx, int32_t c, ib_buf *out, word_acc *wa)
{
	ib_buf tmp = IB_BUF_INIT;
	int rc;

	if (c == '$')
		rc = process_dollar(lx, &tmp);
	else if (c == '\'')
		rc = process_single_quote(lx, &tmp);
	else
		rc = process_double_quote(lx, &tmp);
	if (rc == 0 && tmp.size)
		rc = ib_buf_put(out, tmp.ptr, tmp.size);
	if (rc == 0)
		rc = check_size(lx, out);
	if (rc == 0)
		rc = c == '$' ? wa_string(wa, tmp.ptr, tmp.size) : wa_raw(wa, tmp.ptr, tmp.size);
	ib_buf_dispose(&tmp);
	return rc;
}

/* An ordinary character or an escape sequence at lx->pos. */
static int process_plain(lexer *lx, ib_buf *out, word_acc *wa)
{
	const char *at;
	size_t w;
	int32_t c = next(lx, &at, &w);

	if (c != lx->esc) {
		if (ib_buf_put(out, at, w) < 0)
			return IB_ERROR;
		return wa_char(wa, (uint32_t)c, at, w);
	}
	if (lx->raw_escapes && (ib_buf_put(out, at, w) < 0 || wa_raw(wa, at, w) < 0))
		return IB_ERROR;
	if (next(lx, &at, &w) == END)
		return 0; /* a final escape is dropped */
	if (ib_buf_put(out, at, w) < 0)
		return IB_ERROR;
	return wa_raw(wa, at, w);
}

/* Expand up to the `stop` character (consumed) or, with END, the end. */
static int process_until(lexer *lx, int32_t stop, int raw, ib_buf *out, word_acc *wa)
{
	int saved = lx->raw_escapes, rc = 0;

	lx->raw_escapes = raw;
	for (;;) {
		size_t w;
		int32_t c = peek(lx, &w);
		if (c == END)
			break;
		if (stop != END && c == stop) {
			lx->pos += w;
			goto done;
		}
		if (c == '$' || c == '\'' || c == '"')
			rc = process_special(lx, c, out, wa);
		else
			rc = process_plain(lx, out, wa);
		if (rc < 0)
			goto done;
	}
	if (stop != END)
		rc = ib_error_setc(IB_ESYNTAX, IB_LAYER_PARSE,
				   "unexpected end of statement while looking for matching %c", (char)stop);
done:
	lx->raw_escapes = saved;
	return rc;
}

/* ---- public API ---- */

int ib_expand_options_init(ib_expand_options *opts, unsigned int version)
{
	if (version != IB_EXPAND_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE,
				     "ib_expand_options: unknown version %u", version);
	memset(opts, 0, sizeof(*opts));
	opts->version = version;
	return 0;
}

static int lexer_init(lexer *lx, const char *word, const ib_expand_options *opts)
{
	memset(lx, 0, sizeof(*lx));
	lx->s = word;
	lx->len = strlen(word);
	lx->limit = lx->len + IB_EXPAND_MAX_RESULT;
	lx->esc = '\\';
	lx->opts = opts;
	/* Go's text/scanner, which buildkit reads words with, skips a leading BOM */
	if (strncmp(word, "\xEF\xBB\xBF", 3) == 0)
		lx->pos = 3;
	if (!opts)
		return 0;
	if (opts->version != IB_EXPAND_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE,
				     "ib_expand_options: unknown version %u", opts->version);
	if (opts->escape && opts->escape != '\\' && opts->escape != '`')
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE,
				     "invalid escape character '%c': must be '\\' or '`'", opts->escape);
	if (opts->escape)
		lx->esc = opts->escape;
	lx->flags = opts->flags;
	return 0;
}

static int expand(ib_buf *out, word_acc *wa, const char *word, const ib_expand_options *opts)
{
	lexer lx;
	int rc;

	if (!word)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "expand: no word given");
	if (lexer_init(&lx, word, opts) < 0)
		return IB_EINVALID;
	if (ib_buf_grow(out, 0) < 0)
		return IB_ERROR;
	rc = process_until(&lx, END, (lx.flags & IB_EXPAND_RAW_ESCAPES) != 0, out, wa);
	if (rc == 0 && wa)
		rc = wa_push(wa);
	if (rc == 0)
		return 0;
	if (lx.stopped)
		return lx.stop_rc;
	ib_error_prefix("expand `%s`", word);
	/* inner failures return IB_ERROR; the error knows the real code */
	return ib_error_current() < 0 ? ib_error_current() : IB_ERROR;
}

int ib_expand_word(ib_buf *out, const char *word, const ib_expand_options *opts)
{
	ib_buf res = IB_BUF_INIT;
	int rc = expand(&res, NULL, word, opts);

	if (rc == 0) {
		ib_buf_dispose(out);
		*out = res;
	} else {
		ib_buf_dispose(&res);
	}
	return rc;
}

int ib_expand_words(ib_strarray *out, const char *word, const ib_expand_options *opts)
{
	ib_buf res = IB_BUF_INIT;
	word_acc wa = { IB_STRARRAY_INIT, IB_BUF_INIT, 0 };
	int rc = expand(&res, &wa, word, opts);

	ib_buf_dispose(&res);
	ib_buf_dispose(&wa.word);
	if (rc == 0) {
		ib_strarray_dispose(out);
		*out = wa.list;
	} else {
		ib_strarray_dispose(&wa.list);
	}
	return rc;
}
