/*
 * ib_dockerfile_parse: bytes to logical lines (BOM, CRLF, parser
 * directives, comments, continuations with the escape character), nodes,
 * heredoc bodies; line numbers and warnings. Mirrors BuildKit's
 * frontend/dockerfile/parser.Parse.
 */
#include <string.h>
#include <strings.h>
#include "parse/dockerfile/df.h"

#define MAX_LINE 65535

typedef struct {
	const char *buf;
	size_t len, pos;
	int line;                /* physical lines consumed so far */
	ib_dockerfile *df;
	bool directives_done;
	bool seen[3];            /* syntax, escape, check */
	ib_parse__ptrvec nodes, warnings;
	ib_parse__ptrvec comments;      /* comment lines since the last instruction */
} parser;

typedef struct {
	const char *s;
	size_t n;
} span;

int ib_parse_options_init(ib_parse_options *opts, unsigned int version)
{
	if (!opts || version != IB_PARSE_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE,
				     "unknown ib_parse_options version %u", version);
	memset(opts, 0, sizeof(*opts));
	opts->version = version;
	return 0;
}

/* Next physical line with its ending; false at end of input. */
static int next_line(parser *p, span *out, bool *ok)
{
	*ok = false;
	if (p->pos >= p->len)
		return 0;
	const char *s = p->buf + p->pos;
	const char *nl = memchr(s, '\n', p->len - p->pos);
	size_t n = nl ? (size_t)(nl - s) + 1 : p->len - p->pos;
	size_t content = nl ? n - 1 : n;
	if (content > MAX_LINE)
		return ib_parse__syntax_error(p->df->filename, p->line + 1,
			"dockerfile line greater than max allowed size of %d", MAX_LINE);
	p->pos += n;
	out->s = s;
	out->n = n;
	*ok = true;
	return 0;
}

static span trim_newline(span l)
{
	while (l.n && (l.s[l.n - 1] == '\n' || l.s[l.n - 1] == '\r'))
		l.n--;
	return l;
}

static bool is_comment(span l)
{
	size_t sp = ib_parse__lspace(l.s, l.n);
	return sp < l.n && l.s[sp] == '#';
}

static bool is_re_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/* A parser directive on a (left-trimmed, newline-less) line, until the first non-directive. */
static int directive(parser *p, span l, int line)
{
	static const char *const keys[] = { "syntax", "escape", "check" };
	if (p->directives_done)
		return 0;
	size_t i = 0, n = l.n;
	const char *s = l.s;
	if (n == 0 || s[0] != '#')
		goto done;
	i = 1;
	while (i < n && is_re_space(s[i]))
		i++;
	size_t ks = i;
	if (i >= n || !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
		goto done;
	while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			 (s[i] >= '0' && s[i] <= '9')))
		i++;
	size_t ke = i;
	while (i < n && is_re_space(s[i]))
		i++;
	if (i >= n || s[i] != '=')
		goto done;
	i++;
	while (i < n && is_re_space(s[i]))
		i++;
	size_t ve = n;
	while (ve > i && is_re_space(s[ve - 1]))
		ve--;
	if (ve == i)
		goto done;
	int k = -1;
	for (int j = 0; j < 3; j++)
		if (ke - ks == strlen(keys[j]) && !strncasecmp(s + ks, keys[j], ke - ks))
			k = j;
	if (k < 0)
		goto done;
	if (p->seen[k])
		return ib_parse__syntax_error(p->df->filename, line,
					      "only one %s parser directive can be used", keys[k]);
	p->seen[k] = true;
	char *value = ib_parse__strndup(&p->df->arena, s + i, ve - i);
	if (!value)
		return IB_ERROR;
	if (k == 0) {
		p->df->syntax = value;
	} else if (k == 2) {
		p->df->check = value;
	} else {
		if (strcmp(value, "\\") && strcmp(value, "`"))
			return ib_parse__syntax_error(p->df->filename, line,
				"invalid escape token '%s' does not match ` or \\", value);
		p->df->escape = value[0];
	}
	return 0;
done:
	p->directives_done = true;
	return 0;
}

/* `([^E])E[ \t]*$` or `^E[ \t]*$`: remove E and what follows; true if it continues. */
static bool trim_continuation(span *l, char esc)
{
	size_t e = l->n;
	while (e && (l->s[e - 1] == ' ' || l->s[e - 1] == '\t'))
		e--;
	if (e == 0 || l->s[e - 1] != esc)
		return false;
	if (e >= 2 && l->s[e - 2] == esc)
		return false;
	l->n = e - 1;
	return true;
}

static int add_warning(parser *p, int line, const char *logical)
{
	ib_parse_warning *w = ib_parse__alloc(&p->df->arena, sizeof(*w));
	if (!w)
		return IB_ERROR;
	w->line = line;
	w->message = ib_parse__strndup(&p->df->arena, "", 0);
	char *m = ib_sprintf("Empty continuation line found in: %s", logical);
	if (!m)
		return IB_ERROR;
	w->message = ib_parse__strdup(&p->df->arena, m);
	free(m);
	if (!w->message)
		return IB_ERROR;
	return ib_parse__vec_push(&p->df->arena, &p->warnings, w);
}

/* Read the bodies of the heredocs of `node`, in order. */
static int read_heredocs(parser *p, ib_node *node, const char *line, size_t len, int start)
{
	ib_heredoc *docs;
	size_t n;
	int rc = ib_parse__heredocs_from_line(&docs, &n, &p->df->arena, line, len);
	if (rc < 0) {
		if (ib_error_current() == IB_ESYNTAX)
			ib_error_prefix("%s:%d", p->df->filename, start);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		ib_buf content = IB_BUF_INIT;
		size_t tlen = strlen(docs[i].name);
		bool terminated = false;
		for (;;) {
			span l;
			bool ok;
			if (next_line(p, &l, &ok) < 0) {
				ib_buf_dispose(&content);
				return IB_ESYNTAX;
			}
			if (!ok)
				break;
			p->line++;
			span t = trim_newline(l);
			if (docs[i].chomp)
				while (t.n && t.s[0] == '\t')
					t.s++, t.n--;
			if (t.n == tlen && !memcmp(t.s, docs[i].name, tlen)) {
				terminated = true;
				break;
			}
			if (ib_buf_put(&content, l.s, l.n) < 0) {
				ib_buf_dispose(&content);
				return IB_ERROR;
			}
		}
		if (!terminated) {
			ib_buf_dispose(&content);
			return ib_parse__syntax_error(p->df->filename, start,
				"unterminated heredoc `%s` (end of file at line %d)", docs[i].name, p->line);
		}
		docs[i].content = ib_parse__strndup(&p->df->arena, ib_buf_cstr(&content), content.size);
		docs[i].content_len = content.size;
		ib_buf_dispose(&content);
		if (!docs[i].content)
			return IB_ERROR;
	}
	node->heredocs = docs;
	node->nheredocs = n;
	return 0;
}

/* One instruction starting with physical line `first`. 1 if one was made, 0 if skipped. */
static int instruction(parser *p, span first, ib_buf *logical)
{
	int rc;
	span t = trim_newline(first);
	if (p->line == 0 && t.n >= 3 && !memcmp(t.s, "\xEF\xBB\xBF", 3))
		t.s += 3, t.n -= 3;
	span raw = t;
	size_t sp = ib_parse__lspace(t.s, t.n);
	t.s += sp;
	t.n -= sp;
	int seen = p->seen[0] + p->seen[1] + p->seen[2];
	if ((rc = directive(p, t, p->line + 1)) < 0)
		return rc;
	/* BuildKit keeps the comment lines before an instruction (the text
	 * after the line's first byte, trimmed; a bare `#` forgets them, a
	 * directive is not one); `# check=` among them configures the build
	 * checks of that instruction */
	if (t.n && t.s[0] == '#' && seen == p->seen[0] + p->seen[1] + p->seen[2]) {
		span c = { raw.s + 1, raw.n - 1 };
		size_t ls = ib_parse__lspace(c.s, c.n);
		c.s += ls;
		c.n -= ls;
		while (c.n && (c.s[c.n - 1] == ' ' || c.s[c.n - 1] == '\t' || c.s[c.n - 1] == '\r' ||
			       c.s[c.n - 1] == '\n' || c.s[c.n - 1] == '\v' || c.s[c.n - 1] == '\f'))
			c.n--;
		if (!c.n) {
			p->comments.count = 0;
		} else {
			char *text = ib_parse__strndup(&p->df->arena, c.s, c.n);
			if (!text || ib_parse__vec_push(&p->df->arena, &p->comments, text) < 0)
				return IB_ERROR;
		}
	}
	if (t.n && t.s[0] == '#')
		t.n = 0;
	p->line++;
	int start = p->line;
	bool cont = trim_continuation(&t, p->df->escape);
	if (!cont && t.n == 0)
		return 0;
	ib_buf_clear(logical);
	if (ib_buf_put(logical, t.s, t.n) < 0)
		return IB_ERROR;
	bool empty_cont = false;
	while (cont) {
		span l;
		bool ok;
		if ((rc = next_line(p, &l, &ok)) < 0)
			return rc;
		if (!ok)
			break;
		t = trim_newline(l);
		if ((rc = directive(p, t, p->line + 1)) < 0)
			return rc;
		p->line++;
		if (is_comment(l))
			continue;
		if (ib_parse__lspace(t.s, t.n) == t.n) {
			empty_cont = true;
			continue;
		}
		cont = trim_continuation(&t, p->df->escape);
		if (ib_buf_put(logical, t.s, t.n) < 0)
			return IB_ERROR;
	}
	if (empty_cont && add_warning(p, p->line, ib_buf_cstr(logical)) < 0)
		return IB_ERROR;

	ib_parse__node_ctx ctx = { &p->df->arena, p->df->escape, p->df->filename, start };
	ib_node *node;
	if ((rc = ib_parse__node_from_line(&node, &ctx, ib_buf_cstr(logical), logical->size)) < 0)
		return rc;
	if (ib_parse__node_can_heredoc(node) && memmem(logical->ptr, logical->size, "<<", 2) &&
	    (rc = read_heredocs(p, node, logical->ptr, logical->size, start)) < 0)
		return rc;
	node->start_line = start;
	node->end_line = p->line;
	node->comments = (const char **)p->comments.items;
	node->ncomments = p->comments.count;
	p->comments = (ib_parse__ptrvec){ NULL, 0, 0 };
	if (node->nested) {
		node->nested->start_line = start;
		node->nested->end_line = p->line;
	}
	if (ib_parse__vec_push(&p->df->arena, &p->nodes, node) < 0)
		return IB_ERROR;
	return 1;
}

static int run(parser *p)
{
	ib_buf logical = IB_BUF_INIT;
	int rc = 0;
	for (;;) {
		span l;
		bool ok;
		if ((rc = next_line(p, &l, &ok)) < 0 || !ok)
			break;
		if ((rc = instruction(p, l, &logical)) < 0)
			break;
	}
	ib_buf_dispose(&logical);
	if (rc < 0)
		return rc;
	if (p->nodes.count == 0)
		return ib_parse__syntax_error(p->df->filename, p->line ? p->line : 1,
					      "file with no instructions");
	return 0;
}

int ib_dockerfile_parse(ib_dockerfile **out, const char *buf, size_t len,
			const ib_parse_options *opts)
{
	if (!out || (!buf && len))
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "ib_dockerfile_parse: invalid arguments");
	*out = NULL;
	if (opts && opts->version != IB_PARSE_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE,
				     "unknown ib_parse_options version %u", opts->version);
	ib_dockerfile *df = ib_calloc(1, sizeof(*df));
	if (!df)
		return IB_ERROR;
	df->escape = '\\';
	df->filename = ib_parse__strdup(&df->arena,
					opts && opts->filename ? opts->filename : "Dockerfile");
	if (!df->filename) {
		ib_dockerfile_free(df);
		return IB_ERROR;
	}
	parser p = { .buf = buf ? buf : "", .len = len, .df = df };
	int rc = run(&p);
	if (rc < 0) {
		ib_dockerfile_free(df);
		return rc;
	}
	df->nodes = (ib_node **)p.nodes.items;
	df->nnodes = p.nodes.count;
	if (p.warnings.count) {
		df->warnings = ib_parse__alloc(&df->arena, p.warnings.count * sizeof(ib_parse_warning));
		if (!df->warnings) {
			ib_dockerfile_free(df);
			return IB_ERROR;
		}
		for (size_t i = 0; i < p.warnings.count; i++)
			df->warnings[i] = *(ib_parse_warning *)p.warnings.items[i];
		df->nwarnings = p.warnings.count;
	}
	df->start_line = df->nodes[0]->start_line;
	df->end_line = df->nodes[df->nnodes - 1]->end_line;
	*out = df;
	return 0;
}

void ib_dockerfile_free(ib_dockerfile *df)
{
	if (!df)
		return;
	ib_parse__arena_free(&df->arena);
	free(df);
}

size_t ib_dockerfile_node_count(const ib_dockerfile *df) { return df ? df->nnodes : 0; }

const ib_node *ib_dockerfile_node(const ib_dockerfile *df, size_t i)
{
	return df && i < df->nnodes ? df->nodes[i] : NULL;
}

int ib_dockerfile_start_line(const ib_dockerfile *df) { return df ? df->start_line : 0; }
int ib_dockerfile_end_line(const ib_dockerfile *df) { return df ? df->end_line : 0; }
char ib_dockerfile_escape(const ib_dockerfile *df) { return df ? df->escape : '\\'; }

const char *ib_dockerfile_directive(const ib_dockerfile *df, const char *name)
{
	if (!df || !name)
		return NULL;
	if (!strcasecmp(name, "syntax"))
		return df->syntax;
	if (!strcasecmp(name, "check"))
		return df->check;
	if (!strcasecmp(name, "escape"))
		return df->escape == '`' ? "`" : (df->escape == '\\' ? "\\" : NULL);
	return NULL;
}

size_t ib_dockerfile_warning_count(const ib_dockerfile *df) { return df ? df->nwarnings : 0; }

const ib_parse_warning *ib_dockerfile_warning(const ib_dockerfile *df, size_t i)
{
	return df && i < df->nwarnings ? &df->warnings[i] : NULL;
}

const char *ib_node_keyword(const ib_node *n) { return n ? n->keyword : NULL; }
const char *ib_node_keyword_raw(const ib_node *n) { return n ? n->keyword_raw : NULL; }
const char *ib_node_original(const ib_node *n) { return n ? n->original : NULL; }
size_t ib_node_flag_count(const ib_node *n) { return n ? n->nflags : 0; }
const char *ib_node_flag(const ib_node *n, size_t i) { return n && i < n->nflags ? n->flags[i] : NULL; }
size_t ib_node_arg_count(const ib_node *n) { return n ? n->nargs : 0; }

const char *ib_node_arg(const ib_node *n, size_t i, size_t *len)
{
	if (!n || i >= n->nargs) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = n->args[i].len;
	return n->args[i].ptr;
}

int ib_node_is_json(const ib_node *n) { return n ? n->json : 0; }
const ib_node *ib_node_nested(const ib_node *n) { return n ? n->nested : NULL; }
size_t ib_node_heredoc_count(const ib_node *n) { return n ? n->nheredocs : 0; }
size_t ib_node_comment_count(const ib_node *n) { return n ? n->ncomments : 0; }

const char *ib_node_comment(const ib_node *n, size_t i)
{
	return n && i < n->ncomments ? n->comments[i] : NULL;
}

const ib_heredoc *ib_node_heredoc(const ib_node *n, size_t i)
{
	return n && i < n->nheredocs ? &n->heredocs[i] : NULL;
}

int ib_node_start_line(const ib_node *n) { return n ? n->start_line : 0; }
int ib_node_end_line(const ib_node *n) { return n ? n->end_line : 0; }

int ib_heredoc_chomp(ib_buf *out, const ib_heredoc *h)
{
	if (!out || !h)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "ib_heredoc_chomp: invalid arguments");
	ib_buf_clear(out);
	bool bol = true;
	for (size_t i = 0; i < h->content_len; i++) {
		char c = h->content[i];
		if (bol && c == '\t')
			continue;
		bol = c == '\n';
		if (ib_buf_putc(out, c) < 0)
			return IB_ERROR;
	}
	if (ib_buf_grow(out, out->size) < 0)   /* keep it NUL-terminated even when empty */
		return IB_ERROR;
	return 0;
}

/* ---- dump ---- */

static int dump_node(ib_buf *out, const ib_node *n)
{
	ib_buf tmp = IB_BUF_INIT;
	int rc = ib_buf_puts(&tmp, n->keyword);
	if (!rc && n->nflags) {
		rc = ib_buf_puts(&tmp, " [");
		for (size_t i = 0; !rc && i < n->nflags; i++) {
			if (i)
				rc = ib_buf_putc(&tmp, ' ');
			if (!rc)
				rc = ib_parse__go_quote(&tmp, n->flags[i], strlen(n->flags[i]));
		}
		if (!rc)
			rc = ib_buf_putc(&tmp, ']');
	}
	for (size_t i = 0; !rc && i < n->nargs; i++) {
		rc = ib_buf_putc(&tmp, ' ');
		if (!rc)
			rc = ib_parse__go_quote(&tmp, n->args[i].ptr, n->args[i].len);
	}
	if (!rc && n->nested) {
		rc = ib_buf_puts(&tmp, " (");
		if (!rc)
			rc = dump_node(&tmp, n->nested);
		if (!rc)
			rc = ib_buf_putc(&tmp, ')');
	}
	if (!rc) {
		/* Go's Dump() ends with strings.TrimSpace */
		const char *s = ib_buf_cstr(&tmp);
		size_t len = tmp.size, l = ib_parse__lspace(s, len);
		size_t r = ib_parse__rspace(s + l, len - l);
		rc = ib_buf_put(out, s + l, len - l - r);
	}
	ib_buf_dispose(&tmp);
	return rc < 0 ? IB_ERROR : 0;
}

int ib_node_dump(ib_buf *out, const ib_node *node)
{
	if (!out || !node)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "ib_node_dump: invalid arguments");
	ib_buf_clear(out);
	return dump_node(out, node);
}

int ib_dockerfile_dump(ib_buf *out, const ib_dockerfile *df)
{
	if (!out || !df)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "ib_dockerfile_dump: invalid arguments");
	ib_buf_clear(out);
	for (size_t i = 0; i < df->nnodes; i++) {
		if (ib_buf_putc(out, '(') < 0 || dump_node(out, df->nodes[i]) < 0 ||
		    ib_buf_puts(out, ")\n") < 0)
			return IB_ERROR;
	}
	return 0;
}
