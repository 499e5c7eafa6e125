/*
 * From a logical line to a node of the syntax tree, as BuildKit's
 * newNodeFromLine: keyword, flags, then the arguments by keyword (JSON or
 * shell form, whitespace lists, words, ENV/LABEL pairs, HEALTHCHECK,
 * ONBUILD's nested instruction).
 */
#include <string.h>
#include "parse/dockerfile/df.h"

typedef struct {
	ib_parse__ptrvec v;       /* of ib_parse__dfstr* */
	int json;
	ib_node *nested;
} argv_build;

static int push_arg(ib_parse__node_ctx *c, argv_build *b, const char *s, size_t n)
{
	ib_parse__dfstr *str = ib_parse__alloc(c->arena, sizeof(*str));
	if (!str || !(str->ptr = ib_parse__strndup(c->arena, s, n)))
		return IB_ERROR;
	str->len = n;
	return ib_parse__vec_push(c->arena, &b->v, str);
}

static void trim(const char **s, size_t *n)
{
	size_t l = ib_parse__lspace(*s, *n);
	*s += l;
	*n -= l;
	*n -= ib_parse__rspace(*s, *n);
}

/*
 * --flags at the start of `s` (BuildKit extractBuilderFlags; `\` escapes,
 * whatever the escape directive says, as upstream). Deliberate deviation:
 * upstream scans bytes, so the UTF-8 bytes 0x85/0xA0 split a flag and every
 * byte >= 0x80 is re-encoded (`--chown=à` becomes `--chown=Ã`); we scan
 * UTF-8 characters and keep them intact. No corpus case depends on it.
 */
static int extract_flags(ib_parse__node_ctx *c, ib_parse__ptrvec *flags, const char *s, size_t n,
			 size_t *rest)
{
	enum { SPACES, WORD, QUOTE } phase = SPACES;
	ib_buf word = IB_BUF_INIT;
	bool blank_ok = false;
	char quote = 0;
	int rc = 0;
	size_t pos = 0;
	*rest = n;
	for (; pos <= n; pos++) {
		int w = 1, r = 0;
		if (pos < n)
			r = ib_parse__utf8_decode(s + pos, n - pos, &w);
		if (phase == SPACES) {
			if (pos == n)
				break;
			if (ib_parse__is_space(r)) {
				pos += (size_t)w - 1;
				continue;
			}
			if (s[pos] != '-' || pos + 1 == n || s[pos + 1] != '-') {
				*rest = pos;
				goto out;
			}
			phase = WORD;
		}
		if (pos == n) {
			bool dashdash = word.size == 2 && memcmp(word.ptr, "--", 2) == 0;
			if (!dashdash && (blank_ok || word.size))
				goto push_last;
			break;
		}
		if (phase == WORD) {
			if (ib_parse__is_space(r)) {
				if (word.size == 2 && memcmp(word.ptr, "--", 2) == 0) {
					*rest = pos;
					goto out;
				}
				if (blank_ok || word.size) {
					char *f = ib_parse__strndup(c->arena, ib_buf_cstr(&word), word.size);
					if (!f || ib_parse__vec_push(c->arena, flags, f) < 0)
						goto oom;
				}
				ib_buf_clear(&word);
				blank_ok = false;
				phase = SPACES;
				pos += (size_t)w - 1;
				continue;
			}
			if (r == '\'' || r == '"') {
				quote = (char)r;
				blank_ok = true;
				phase = QUOTE;
				continue;
			}
		} else if (r == quote) {
			phase = WORD;
			continue;
		}
		if (r == '\\') {
			if (pos + 1 == n) {
				phase = WORD;
				continue;
			}
			pos++;
			r = ib_parse__utf8_decode(s + pos, n - pos, &w);
		}
		if (ib_buf_put(&word, s + pos, (size_t)w) < 0)
			goto oom;
		pos += (size_t)w - 1;
	}
	*rest = n;
	goto out;
push_last: {
		char *f = ib_parse__strndup(c->arena, ib_buf_cstr(&word), word.size);
		if (!f || ib_parse__vec_push(c->arena, flags, f) < 0)
			goto oom;
		*rest = n;
	}
out:
	ib_buf_dispose(&word);
	return rc;
oom:
	ib_buf_dispose(&word);
	return IB_ERROR;
}

/* Split on runs of [\t\v\f\r ] (`limit2`: at most two pieces). */
static int split_blank(ib_parse__node_ctx *c, argv_build *b, const char *s, size_t n, bool limit2)
{
	size_t i = 0, start = 0;
	if (n == 0)
		return 0;
	while (i < n) {
		if (ib_parse__is_ascii_blank(s[i])) {
			if (push_arg(c, b, s + start, i - start) < 0)
				return IB_ERROR;
			while (i < n && ib_parse__is_ascii_blank(s[i]))
				i++;
			start = i;
			if (limit2)
				return push_arg(c, b, s + start, n - start);
			continue;
		}
		i++;
	}
	return push_arg(c, b, s + start, n - start);
}

/* BuildKit parseWords: quotes and escapes stay in the words. */
static int parse_words(ib_parse__node_ctx *c, ib_parse__ptrvec *out, const char *s, size_t n)
{
	enum { SPACES, WORD, QUOTE } phase = SPACES;
	ib_buf word = IB_BUF_INIT;
	bool blank_ok = false;
	int quote = 0;
	int w = 1;
	for (size_t pos = 0; pos <= n; pos += (size_t)w) {
		int r = 0;
		if (pos < n)
			r = ib_parse__utf8_decode(s + pos, n - pos, &w);
		if (phase == SPACES) {
			if (pos == n)
				break;
			if (ib_parse__is_space(r))
				continue;
			phase = WORD;
		}
		if (pos == n) {
			if (blank_ok || word.size) {
				char *x = ib_parse__strndup(c->arena, ib_buf_cstr(&word), word.size);
				if (!x || ib_parse__vec_push(c->arena, out, x) < 0)
					goto oom;
			}
			break;
		}
		if (phase == WORD) {
			if (ib_parse__is_space(r)) {
				phase = SPACES;
				if (blank_ok || word.size) {
					char *x = ib_parse__strndup(c->arena, ib_buf_cstr(&word), word.size);
					if (!x || ib_parse__vec_push(c->arena, out, x) < 0)
						goto oom;
				}
				ib_buf_clear(&word);
				blank_ok = false;
				continue;
			}
			if (r == '\'' || r == '"') {
				quote = r;
				blank_ok = true;
				phase = QUOTE;
			}
			if (r == c->escape) {
				if (pos + (size_t)w == n)
					continue;
				if (ib_buf_put(&word, s + pos, (size_t)w) < 0)
					goto oom;
				pos += (size_t)w;
				r = ib_parse__utf8_decode(s + pos, n - pos, &w);
			}
			if (ib_buf_put(&word, s + pos, (size_t)w) < 0)
				goto oom;
			continue;
		}
		/* QUOTE */
		if (r == quote)
			phase = WORD;
		if (r == c->escape && quote != '\'') {
			if (pos + (size_t)w == n) {
				phase = WORD;
				continue;
			}
			if (ib_buf_put(&word, s + pos, (size_t)w) < 0)
				goto oom;
			pos += (size_t)w;
			r = ib_parse__utf8_decode(s + pos, n - pos, &w);
		}
		if (ib_buf_put(&word, s + pos, (size_t)w) < 0)
			goto oom;
	}
	ib_buf_dispose(&word);
	return 0;
oom:
	ib_buf_dispose(&word);
	return IB_ERROR;
}

static int json_or(ib_parse__node_ctx *c, argv_build *b, const char *s, size_t n, bool list)
{
	ib_parse__dfstr *items;
	size_t count;
	if (!list && n == 0)
		return 0;
	int rc = ib_parse__json_strings(c->arena, s, n, &items, &count);
	if (rc == IB_PARSE__JSON_NOT_STRINGS)
		return ib_parse__syntax_error(c->filename, c->line,
			"when using JSON array syntax, arrays must be comprised of strings only");
	if (rc < 0)
		return rc;
	if (rc == 1) {
		b->json = 1;
		for (size_t i = 0; i < count; i++)
			if (ib_parse__vec_push(c->arena, &b->v, &items[i]) < 0)
				return IB_ERROR;
		return 0;
	}
	if (list)
		return split_blank(c, b, s, n, false);
	return push_arg(c, b, s, n);
}

static int name_val(ib_parse__node_ctx *c, argv_build *b, const char *s, size_t n, const char *key)
{
	ib_parse__ptrvec words = { 0 };
	if (parse_words(c, &words, s, n) < 0)
		return IB_ERROR;
	if (words.count == 0)
		return 0;
	if (!strchr(words.items[0], '=')) {
		argv_build parts = { 0 };
		if (split_blank(c, &parts, s, n, true) < 0)
			return IB_ERROR;
		if (parts.v.count < 2)
			return ib_parse__syntax_error(c->filename, c->line,
						      "%s must have two arguments", key);
		for (size_t i = 0; i < 2; i++) {
			ib_parse__dfstr *p = parts.v.items[i];
			if (push_arg(c, b, p->ptr, p->len) < 0)
				return IB_ERROR;
		}
		return push_arg(c, b, "", 0);
	}
	for (size_t i = 0; i < words.count; i++) {
		const char *wd = words.items[i];
		const char *eq = strchr(wd, '=');
		if (!eq)
			return ib_parse__syntax_error(c->filename, c->line,
				"Syntax error - can't find = in \"%s\". Must be of the form: name=value", wd);
		if (push_arg(c, b, wd, (size_t)(eq - wd)) < 0 ||
		    push_arg(c, b, eq + 1, strlen(eq + 1)) < 0 || push_arg(c, b, "=", 1) < 0)
			return IB_ERROR;
	}
	return 0;
}

static int healthcheck(ib_parse__node_ctx *c, argv_build *b, const char *s, size_t n)
{
	size_t sep = 0;
	while (sep < n) {
		int w, r = ib_parse__utf8_decode(s + sep, n - sep, &w);
		if (ib_parse__is_space(r))
			break;
		sep += (size_t)w;
	}
	if (sep == 0)
		return 0;
	size_t next = sep + ib_parse__lspace(s + sep, n - sep);
	if (push_arg(c, b, s, sep) < 0)
		return IB_ERROR;
	return json_or(c, b, s + next, n - next, false);
}

int ib_parse__node_from_line(ib_node **out, ib_parse__node_ctx *c, const char *line, size_t len)
{
	const char *s = line;
	size_t n = len, kw = 0;
	ib_parse__ptrvec flags = { 0 };
	argv_build b = { 0 };
	ib_node *node = ib_parse__alloc(c->arena, sizeof(*node));
	if (!node)
		return IB_ERROR;
	if (!(node->original = ib_parse__strndup(c->arena, line, len)))
		return IB_ERROR;
	trim(&s, &n);
	while (kw < n && !ib_parse__is_ascii_blank(s[kw]))
		kw++;
	char *raw = ib_parse__strndup(c->arena, s, kw), *lower = ib_parse__strndup(c->arena, s, kw);
	if (!raw || !lower)
		return IB_ERROR;
	for (char *p = lower; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	node->keyword_raw = raw;
	node->keyword = lower;

	const char *args = s + n;
	size_t nargs = 0;
	if (kw < n) {
		size_t start = kw, rest;
		while (start < n && ib_parse__is_ascii_blank(s[start]))
			start++;
		if (extract_flags(c, &flags, s + start, n - start, &rest) < 0)
			return IB_ERROR;
		args = s + start + rest;
		nargs = n - start - rest;
		trim(&args, &nargs);
	}

	int rc = 0;
	const char *k = lower;
	if (!strcmp(k, "run") || !strcmp(k, "cmd") || !strcmp(k, "entrypoint") || !strcmp(k, "shell"))
		rc = json_or(c, &b, args, nargs, false);
	else if (!strcmp(k, "add") || !strcmp(k, "copy") || !strcmp(k, "volume"))
		rc = json_or(c, &b, args, nargs, true);
	else if (!strcmp(k, "from") || !strcmp(k, "expose"))
		rc = split_blank(c, &b, args, nargs, false);
	else if (!strcmp(k, "maintainer") || !strcmp(k, "user") || !strcmp(k, "workdir") ||
		 !strcmp(k, "stopsignal"))
		rc = nargs ? push_arg(c, &b, args, nargs) : 0;
	else if (!strcmp(k, "arg")) {
		ib_parse__ptrvec words = { 0 };
		rc = parse_words(c, &words, args, nargs);
		for (size_t i = 0; rc == 0 && i < words.count; i++)
			rc = push_arg(c, &b, words.items[i], strlen(words.items[i]));
	} else if (!strcmp(k, "env"))
		rc = name_val(c, &b, args, nargs, "ENV");
	else if (!strcmp(k, "label"))
		rc = name_val(c, &b, args, nargs, "LABEL");
	else if (!strcmp(k, "healthcheck"))
		rc = healthcheck(c, &b, args, nargs);
	else if (!strcmp(k, "onbuild")) {
		if (nargs)
			rc = ib_parse__node_from_line(&node->nested, c, args, nargs);
	} else
		rc = push_arg(c, &b, "", 0);   /* unknown: not an error here */
	if (rc < 0)
		return rc;

	node->json = b.json;
	node->flags = (const char **)flags.items;
	node->nflags = flags.count;
	if (b.v.count) {
		node->args = ib_parse__alloc(c->arena, b.v.count * sizeof(ib_parse__dfstr));
		if (!node->args)
			return IB_ERROR;
		for (size_t i = 0; i < b.v.count; i++)
			node->args[i] = *(ib_parse__dfstr *)b.v.items[i];
	}
	node->nargs = b.v.count;
	*out = node;
	return 0;
}

bool ib_parse__node_can_heredoc(const ib_node *n)
{
	if (!strcmp(n->keyword, "onbuild")) {
		if (!n->nested)
			return false;
		n = n->nested;
	}
	if (strcmp(n->keyword, "run") && strcmp(n->keyword, "copy") && strcmp(n->keyword, "add"))
		return false;
	return !n->json;
}
