/*
 * The typed level: a syntax tree becomes meta-ARGs and stages of typed
 * instructions, refusing what has no meaning (unknown instruction or flag,
 * bad flag value, wrong argument count, instruction before FROM, ...).
 * Values stay raw (not expanded); see include/imagebuild/parse.h.
 */
#include <limits.h>
#include <string.h>
#include <strings.h>
#include "parse/dockerfile/df.h"

struct ib_instructions {
	ib_parse__arena arena;
	const ib_dockerfile *df;
	ib_instruction **meta;
	size_t nmeta;
	ib_stage *stages;
	size_t nstages;
};

typedef struct {
	ib_parse__arena *arena;
	const char *filename;
	const ib_node *node;
	const char *name;          /* upper-case keyword, for messages */
} ictx;

#define FAIL(c, ...) ib_parse__syntax_error((c)->filename, (c)->node->start_line, __VA_ARGS__)

static const char *const kind_names[] = {
	"FROM", "RUN", "CMD", "ENTRYPOINT", "SHELL", "LABEL", "MAINTAINER", "EXPOSE", "ENV",
	"ADD", "COPY", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK"
};
#define NKINDS (sizeof(kind_names) / sizeof(kind_names[0]))

const char *ib_instruction_kind_name(ib_instruction_kind kind)
{
	return (unsigned int)kind < NKINDS ? kind_names[kind] : NULL;
}

static int kind_of(const char *keyword)
{
	for (size_t i = 0; i < NKINDS; i++)
		if (!strcasecmp(keyword, kind_names[i]))
			return (int)i;
	return -1;
}

/* ---- flags (BuildKit BFlags) ---- */

typedef enum { F_STRING, F_STRINGS, F_BOOL } ftype;

typedef struct {
	const char *name;
	ftype type;
	bool used;
	const char *value;         /* F_STRING: last value */
	int bval;                  /* F_BOOL */
	ib_parse__ptrvec values;          /* F_STRINGS */
} flagdef;

static flagdef *find_flag(flagdef *defs, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(defs[i].name) == len && !memcmp(defs[i].name, name, len))
			return &defs[i];
	return NULL;
}

static int parse_flags(ictx *c, flagdef *defs, size_t ndefs)
{
	for (size_t i = 0; i < c->node->nflags; i++) {
		const char *arg = c->node->flags[i];
		if (strncmp(arg, "--", 2))
			return FAIL(c, "%s: flag should start with --: %s", c->name, arg);
		if (!strcmp(arg, "--"))
			return 0;
		const char *name = arg + 2, *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		const char *value = eq ? eq + 1 : "";
		flagdef *f = find_flag(defs, ndefs, name, nlen);
		if (!f)
			return FAIL(c, "%s: unknown flag: --%.*s", c->name, (int)nlen, name);
		if (f->used && f->type != F_STRINGS)
			return FAIL(c, "%s: duplicate flag specified: --%s", c->name, f->name);
		f->used = true;
		if (f->type == F_BOOL) {
			if (eq && !*value)
				return FAIL(c, "%s: missing a value on flag: --%s", c->name, f->name);
			if (!*value || !strcasecmp(value, "true"))
				f->bval = 1;
			else if (!strcasecmp(value, "false"))
				f->bval = 0;
			else
				return FAIL(c, "%s: expecting boolean value for flag --%s, not: %s",
					    c->name, f->name, value);
			continue;
		}
		if (!eq)
			return FAIL(c, "%s: missing a value on flag: --%s", c->name, f->name);
		if (f->type == F_STRING)
			f->value = value;
		else if (ib_parse__vec_push(c->arena, &f->values, (void *)value) < 0)
			return IB_ERROR;
	}
	return 0;
}

static ib_instr_strings strings_of(ib_parse__ptrvec *v)
{
	ib_instr_strings s = { (const char *const *)v->items, v->count };
	return s;
}

static int node_strings(ictx *c, ib_instr_strings *out, size_t from)
{
	ib_parse__ptrvec v = { 0 };
	for (size_t i = from; i < c->node->nargs; i++)
		if (ib_parse__vec_push(c->arena, &v, (void *)c->node->args[i].ptr) < 0)
			return IB_ERROR;
	*out = strings_of(&v);
	return 0;
}

static int no_flags(ictx *c)
{
	return parse_flags(c, NULL, 0);
}

/* ---- durations (Go time.ParseDuration) ---- */

int ib_parse_duration(int64_t *out, const char *text)
{
	const char *s = text;
	bool neg = false;
	double total = 0;
	if (!out || !text)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "ib_parse_duration: invalid arguments");
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (!strcmp(s, "0")) {
		*out = 0;
		return 0;
	}
	if (!*s)
		goto bad;
	while (*s) {
		double v = 0, scale = 1;
		bool any = false;
		while (*s >= '0' && *s <= '9') {
			v = v * 10 + (*s++ - '0');
			any = true;
		}
		if (*s == '.') {
			s++;
			while (*s >= '0' && *s <= '9') {
				scale /= 10;
				v += (*s++ - '0') * scale;
				any = true;
			}
		}
		if (!any)
			goto bad;
		static const struct { const char *u; double ns; } units[] = {
			{ "ns", 1 }, { "us", 1e3 }, { "\xC2\xB5s", 1e3 }, { "\xCE\xBCs", 1e3 },
			{ "ms", 1e6 }, { "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 },
		};
		size_t best = 0, blen = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t l = strlen(units[i].u);
			if (l > blen && !strncmp(s, units[i].u, l)) {
				best = i;
				blen = l;
			}
		}
		if (!blen)
			goto bad;
		s += blen;
		total += v * units[best].ns;
		if (total > 9.2e18)
			goto bad;
	}
	*out = (int64_t)(neg ? -total : total);
	return 0;
bad:
	return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "invalid duration `%s`", text);
}

/* ---- per instruction ---- */

static bool valid_stage_name(const char *s)
{
	if (!(*s >= 'a' && *s <= 'z'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_' || *s == '.'))
			return false;
	return true;
}

/*
 * What a typed instruction holds beyond its public struct: its arrays of
 * growable structs, reached only through the public accessors (parse.h) so
 * those structs can grow without breaking a program built against fewer
 * fields. Every ib_instruction is the `pub` of one of these.
 */
typedef struct {
	ib_instruction pub;
	const ib_run_mount *mounts;
	size_t nmounts;
	const ib_heredoc *heredocs;
	size_t nheredocs;
	const ib_instr_kv *kv;
	size_t nkv;
	const ib_instr_arg *args;
	size_t nargs;
} instr_full;

#define FULL(in) ((instr_full *)(in))
#define CFULL(in) ((const instr_full *)(in))

static int do_from(ictx *c, ib_instruction *in)
{
	flagdef f[] = { { "platform", F_STRING } };
	int rc = parse_flags(c, f, 1);
	if (rc < 0)
		return rc;
	size_t n = c->node->nargs;
	if (n != 1 && n != 3)
		return FAIL(c, "FROM requires either one or three arguments");
	if (n == 3 && strcasecmp(c->node->args[1].ptr, "as"))
		return FAIL(c, "FROM: expected `AS` but found `%s`", c->node->args[1].ptr);
	in->u.from.image = c->node->args[0].ptr;
	in->u.from.platform = f[0].value;
	if (n == 3) {
		char *name = ib_parse__strdup(c->arena, c->node->args[2].ptr);
		if (!name)
			return IB_ERROR;
		for (char *p = name; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		if (!valid_stage_name(name))
			return FAIL(c, "invalid name for build stage: \"%s\", name can't start with a number or contain symbols",
				    c->node->args[2].ptr);
		in->u.from.name = name;
	}
	return 0;
}

/* Split a CSV line (Go encoding/csv, one record) into fields. */
static int csv_fields(ictx *c, ib_parse__ptrvec *out, const char *s)
{
	ib_buf f = IB_BUF_INIT;
	for (;;) {
		ib_buf_clear(&f);
		if (*s == '"') {
			s++;
			for (;;) {
				if (!*s) {
					ib_buf_dispose(&f);
					return FAIL(c, "RUN: --mount: unterminated quote in `%s`", s);
				}
				if (*s == '"' && s[1] == '"') {
					ib_buf_putc(&f, '"');
					s += 2;
				} else if (*s == '"') {
					s++;
					break;
				} else {
					ib_buf_putc(&f, *s++);
				}
			}
		}
		while (*s && *s != ',')
			ib_buf_putc(&f, *s++);
		char *field = ib_parse__strndup(c->arena, ib_buf_cstr(&f), f.size);
		if (!field || ib_parse__vec_push(c->arena, out, field) < 0) {
			ib_buf_dispose(&f);
			return IB_ERROR;
		}
		if (!*s)
			break;
		s++;
	}
	ib_buf_dispose(&f);
	return 0;
}

static int bool_value(ictx *c, const char *key, const char *v, int *out)
{
	if (!v || !strcasecmp(v, "true") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcasecmp(v, "false") || !strcmp(v, "0"))
		*out = 0;
	else
		return FAIL(c, "RUN: --mount: invalid value `%s` for `%s`", v, key);
	return 0;
}

/* Go's strconv.ParseUint(s, base, 32): digits only, no sign or space, below 2^32. */
static int mount_number_ok(const char *s, int base)
{
	if (!*s)
		return 0;
	unsigned long long v = 0;
	for (const char *p = s; *p; p++) {
		int d = *p >= '0' && *p <= '9' ? *p - '0' : 99;
		if (d >= base)
			return 0;
		v = v * (unsigned)base + (unsigned)d;
		if (v > 0xffffffffULL)
			return 0;
	}
	return 1;
}

static int parse_mount(ictx *c, ib_run_mount *m, const char *raw)
{
	static const char *const types[] = { "bind", "cache", "tmpfs", "secret", "ssh" };
	ib_parse__ptrvec fields = { 0 };
	int rc = csv_fields(c, &fields, raw);
	if (rc < 0)
		return rc;
	memset(m, 0, sizeof(*m));
	m->raw = raw;
	m->type = IB_RUN_MOUNT_BIND;
	for (size_t i = 0; i < fields.count; i++) {
		const char *fl = fields.items[i];
		if (!strncasecmp(fl, "type=", 5)) {
			size_t t = 0;
			while (t < 5 && strcmp(fl + 5, types[t]))
				t++;
			if (t == 5)
				return FAIL(c, "RUN: --mount: unsupported mount type `%s`", fl + 5);
			m->type = (ib_run_mount_type)t;
		}
	}
	m->readonly = m->type == IB_RUN_MOUNT_BIND || m->type == IB_RUN_MOUNT_SECRET || m->type == IB_RUN_MOUNT_SSH;
	for (size_t i = 0; i < fields.count; i++) {
		char *fl = fields.items[i];
		if (!*fl)
			continue;
		char *eq = strchr(fl, '=');
		const char *v = eq ? eq + 1 : NULL;
		if (eq)
			*eq = '\0';
		for (char *p = fl; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		const char **slot = NULL;
		if (!strcmp(fl, "type"))
			continue;
		if (!strcmp(fl, "readonly") || !strcmp(fl, "ro")) {
			if ((rc = bool_value(c, fl, v, &m->readonly)) < 0)
				return rc;
			continue;
		}
		if (!strcmp(fl, "readwrite") || !strcmp(fl, "rw")) {
			int rw;
			if ((rc = bool_value(c, fl, v, &rw)) < 0)
				return rc;
			m->readonly = !rw;
			continue;
		}
		if (!strcmp(fl, "required")) {
			if ((rc = bool_value(c, fl, v, &m->required)) < 0)
				return rc;
			continue;
		}
		if (!strcmp(fl, "target") || !strcmp(fl, "dst") || !strcmp(fl, "destination"))
			slot = &m->target;
		else if (!strcmp(fl, "source") || !strcmp(fl, "src"))
			slot = &m->source;
		else if (!strcmp(fl, "from"))
			slot = &m->from;
		else if (!strcmp(fl, "id"))
			slot = &m->id;
		else if (!strcmp(fl, "sharing"))
			slot = &m->sharing;
		else if (!strcmp(fl, "mode"))
			slot = &m->mode;
		else if (!strcmp(fl, "uid"))
			slot = &m->uid;
		else if (!strcmp(fl, "gid"))
			slot = &m->gid;
		else if (!strcmp(fl, "size"))
			slot = &m->size;
		else if (!strcmp(fl, "env"))
			slot = &m->env;
		else
			return FAIL(c, "RUN: --mount: unexpected key `%s` in `%s`", fl, raw);
		if (!v)
			return FAIL(c, "RUN: --mount: `%s` needs a value in `%s`", fl, raw);
		*slot = v;
	}
	/* BuildKit lower-cases the value */
	if (m->sharing && strcasecmp(m->sharing, "shared") && strcasecmp(m->sharing, "private") &&
	    strcasecmp(m->sharing, "locked"))
		return FAIL(c, "RUN: --mount: unsupported sharing value `%s`", m->sharing);
	if (m->sharing && m->type != IB_RUN_MOUNT_CACHE)
		return FAIL(c, "RUN: --mount: sharing is only valid for cache mounts");
	/* as BuildKit: mode octal, uid and gid decimal, each an unsigned 32-bit
	 * number; only for the mounts that make a file or directory (values
	 * with a variable are checked by the build, once expanded) */
	const char *const nums[] = { m->mode, m->uid, m->gid };
	static const char *const num_keys[] = { "mode", "uid", "gid" };
	for (size_t i = 0; i < 3; i++) {
		if (!nums[i])
			continue;
		if (m->type != IB_RUN_MOUNT_CACHE && m->type != IB_RUN_MOUNT_SECRET && m->type != IB_RUN_MOUNT_SSH)
			return FAIL(c, "RUN: --mount: %s not allowed for %s mounts", num_keys[i], types[m->type]);
		if (!strchr(nums[i], '$') && !mount_number_ok(nums[i], i == 0 ? 8 : 10)) {
			return FAIL(c, "RUN: --mount: invalid value `%s` for %s (%s)", nums[i], num_keys[i],
				    i == 0 ? "an octal number" : "a decimal number below 2^32");
		}
	}
	if (!m->target && m->type != IB_RUN_MOUNT_SECRET && m->type != IB_RUN_MOUNT_SSH)
		return FAIL(c, "RUN: --mount: mount type %s requires a target in `%s`",
			    types[m->type], raw);
	return 0;
}

static int do_run(ictx *c, ib_instruction *in)
{
	flagdef f[] = { { "mount", F_STRINGS }, { "network", F_STRING }, { "security", F_STRING } };
	int rc = parse_flags(c, f, 3);
	if (rc < 0)
		return rc;
	if (c->node->nargs == 0)
		return FAIL(c, "RUN requires at least one argument");
	ib_instr_run *r = &in->u.run;
	if ((rc = node_strings(c, &r->args, 0)) < 0)
		return rc;
	r->json = c->node->json;
	r->network = f[1].value;
	r->security = f[2].value;
	if (r->network && strcmp(r->network, "none") && strcmp(r->network, "default") &&
	    strcmp(r->network, "host"))
		return FAIL(c, "RUN: unsupported network mode `%s` (none, default or host)", r->network);
	if (r->security && strcmp(r->security, "sandbox") && strcmp(r->security, "insecure"))
		return FAIL(c, "RUN: unsupported security mode `%s` (sandbox or insecure)", r->security);
	if (f[0].values.count) {
		ib_run_mount *m = ib_parse__alloc(c->arena, f[0].values.count * sizeof(*m));
		if (!m)
			return IB_ERROR;
		for (size_t i = 0; i < f[0].values.count; i++)
			if ((rc = parse_mount(c, &m[i], f[0].values.items[i])) < 0)
				return rc;
		FULL(in)->mounts = m;
		FULL(in)->nmounts = f[0].values.count;
	}
	FULL(in)->heredocs = c->node->heredocs;
	FULL(in)->nheredocs = c->node->nheredocs;
	return 0;
}

static int do_cmd(ictx *c, ib_instruction *in)
{
	int rc = no_flags(c);
	if (rc < 0)
		return rc;
	if ((rc = node_strings(c, &in->u.cmd.args, 0)) < 0)
		return rc;
	in->u.cmd.json = c->node->json;
	if (in->kind == IB_INSTR_SHELL) {
		if (!c->node->json)
			return FAIL(c, "SHELL requires the arguments to be in JSON form");
		if (c->node->nargs == 0)
			return FAIL(c, "SHELL requires at least one argument");
	}
	return 0;
}

static int do_kv(ictx *c, ib_instruction *in)
{
	int rc = no_flags(c);
	if (rc < 0)
		return rc;
	size_t n = c->node->nargs / 3;
	if (n == 0)
		return FAIL(c, "%s requires at least one argument", c->name);
	ib_instr_kv *kv = ib_parse__alloc(c->arena, n * sizeof(*kv));
	if (!kv)
		return IB_ERROR;
	for (size_t i = 0; i < n; i++) {
		kv[i].key = c->node->args[3 * i].ptr;
		kv[i].value = c->node->args[3 * i + 1].ptr;
		if (!*kv[i].key)
			return FAIL(c, "%s names can not be blank", c->name);
	}
	FULL(in)->kv = kv;
	FULL(in)->nkv = n;
	return 0;
}

static int do_value(ictx *c, ib_instruction *in)
{
	int rc = no_flags(c);
	if (rc < 0)
		return rc;
	if (c->node->nargs != 1)
		return FAIL(c, "%s requires exactly one argument", c->name);
	in->u.value = c->node->args[0].ptr;
	return 0;
}

static int do_list(ictx *c, ib_instruction *in)
{
	int rc = no_flags(c);
	if (rc < 0)
		return rc;
	if (c->node->nargs == 0)
		return FAIL(c, "%s requires at least one argument", c->name);
	for (size_t i = 0; in->kind == IB_INSTR_VOLUME && i < c->node->nargs; i++) {
		const char *v = c->node->args[i].ptr;
		size_t len = strlen(v);
		if (ib_parse__lspace(v, len) == len)
			return FAIL(c, "VOLUME specified can not be an empty string");
	}
	return node_strings(c, &in->u.list, 0);
}

static const ib_heredoc *find_heredoc(const ib_node *n, const char *name)
{
	for (size_t i = 0; i < n->nheredocs; i++)
		if (!strcmp(n->heredocs[i].name, name))
			return &n->heredocs[i];
	return NULL;
}

static int do_copy(ictx *c, ib_instruction *in)
{
	bool add = in->kind == IB_INSTR_ADD;
	flagdef f[] = {
		{ "chown", F_STRING }, { "chmod", F_STRING }, { "link", F_BOOL },
		{ "exclude", F_STRINGS },
		{ add ? "checksum" : "from", F_STRING },
		{ add ? "keep-git-dir" : "parents", F_BOOL },
	};
	int rc = parse_flags(c, f, 6);
	if (rc < 0)
		return rc;
	size_t n = c->node->nargs;
	if (n < 2)
		return FAIL(c, "%s requires at least two arguments, but only %s provided. Destination could not be determined.",
			    c->name, n ? "one was" : "none were");
	ib_instr_copy *cp = &in->u.copy;
	ib_parse__ptrvec src = { 0 }, docs = { 0 };
	ib_heredoc h;
	for (size_t i = 0; i < n; i++) {
		const char *a = c->node->args[i].ptr;
		const ib_heredoc *doc = NULL;
		if (!c->node->json) {
			rc = ib_parse__heredoc_word(&h, c->arena, a);
			if (rc == IB_ERROR && ib_error_current() != IB_ESYNTAX)
				return rc;
			if (rc < 0)
				ib_error_clear();
			if (rc > 0)
				doc = find_heredoc(c->node, h.name);
		}
		if (i == n - 1) {
			if (doc)
				return FAIL(c, "%s cannot have a heredoc as the destination", c->name);
			cp->dest = a;
		} else if (ib_parse__vec_push(c->arena, doc ? &docs : &src, doc ? (void *)doc : (void *)a) < 0) {
			return IB_ERROR;
		}
	}
	cp->sources = strings_of(&src);
	if (docs.count) {
		ib_heredoc *arr = ib_parse__alloc(c->arena, docs.count * sizeof(*arr));
		if (!arr)
			return IB_ERROR;
		for (size_t i = 0; i < docs.count; i++)
			arr[i] = *(ib_heredoc *)docs.items[i];
		FULL(in)->heredocs = arr;
		FULL(in)->nheredocs = docs.count;
	}
	cp->json = c->node->json;
	cp->chown = f[0].value;
	cp->chmod = f[1].value;
	cp->link = f[2].bval;
	cp->excludes = strings_of(&f[3].values);
	if (add) {
		cp->checksum = f[4].value;
		cp->keep_git_dir = f[5].bval;
	} else {
		cp->from = f[4].value;
		cp->parents = f[5].bval;
	}
	return 0;
}

static int do_arg(ictx *c, ib_instruction *in)
{
	int rc = no_flags(c);
	if (rc < 0)
		return rc;
	size_t n = c->node->nargs;
	if (n == 0)
		return FAIL(c, "ARG requires at least one argument");
	ib_instr_arg *a = ib_parse__alloc(c->arena, n * sizeof(*a));
	if (!a)
		return IB_ERROR;
	for (size_t i = 0; i < n; i++) {
		const char *w = c->node->args[i].ptr, *eq = strchr(w, '=');
		if (eq) {
			if (!(a[i].name = ib_parse__strndup(c->arena, w, (size_t)(eq - w))))
				return IB_ERROR;
			a[i].default_value = eq + 1;
			a[i].has_default = 1;
		} else {
			a[i].name = w;
		}
		if (!*a[i].name)
			return FAIL(c, "ARG names can not be blank");
	}
	FULL(in)->args = a;
	FULL(in)->nargs = n;
	return 0;
}

static int do_onbuild(ictx *c, ib_instruction *in)
{
	int rc = no_flags(c);
	if (rc < 0)
		return rc;
	const ib_node *t = c->node->nested;
	if (!t)
		return FAIL(c, "ONBUILD requires at least one argument");
	int k = kind_of(t->keyword);
	if (k < 0)
		return FAIL(c, "ONBUILD: unknown instruction: %s", t->keyword_raw);
	if (k == IB_INSTR_ONBUILD)
		return FAIL(c, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
	if (k == IB_INSTR_FROM || k == IB_INSTR_MAINTAINER)
		return FAIL(c, "%s isn't allowed as an ONBUILD trigger", kind_names[k]);
	const char *s = t->original;
	size_t len = strlen(s), l = ib_parse__lspace(s, len);
	in->u.onbuild.trigger = ib_parse__strndup(c->arena, s + l, len - l - ib_parse__rspace(s + l, len - l));
	in->u.onbuild.keyword = kind_names[k];
	return in->u.onbuild.trigger ? 0 : IB_ERROR;
}

static int duration_flag(ictx *c, flagdef *f, int64_t *out)
{
	if (!f->value || !*f->value)
		return 0;
	if (ib_parse_duration(out, f->value) < 0) {
		ib_error_clear();
		return FAIL(c, "HEALTHCHECK: invalid duration `%s` for --%s", f->value, f->name);
	}
	if (*out != 0 && *out < 1000000)
		return FAIL(c, "HEALTHCHECK: Interval \"%s\" cannot be less than 1ms", f->name);
	return 0;
}

static int do_healthcheck(ictx *c, ib_instruction *in)
{
	ib_instr_healthcheck *h = &in->u.healthcheck;
	size_t n = c->node->nargs;
	if (n == 0)
		return FAIL(c, "HEALTHCHECK requires at least one argument");
	const char *typ = c->node->args[0].ptr;
	if (!strcasecmp(typ, "NONE")) {
		if (n != 1)
			return FAIL(c, "HEALTHCHECK NONE takes no arguments");
		if (c->node->nflags)
			return FAIL(c, "HEALTHCHECK NONE takes no flags");
		static const char *const none[] = { "NONE" };
		h->none = 1;
		h->test.items = none;
		h->test.count = 1;
		return 0;
	}
	flagdef f[] = { { "interval", F_STRING }, { "timeout", F_STRING },
			{ "start-period", F_STRING }, { "start-interval", F_STRING },
			{ "retries", F_STRING } };
	int rc = parse_flags(c, f, 5);
	if (rc < 0)
		return rc;
	if (strcasecmp(typ, "CMD"))
		return FAIL(c, "Unknown type \"%s\" in HEALTHCHECK (try CMD)", typ);
	if (n < 2)
		return FAIL(c, "Missing command after HEALTHCHECK CMD");
	ib_parse__ptrvec test = { 0 };
	if (ib_parse__vec_push(c->arena, &test, c->node->json ? "CMD" : "CMD-SHELL") < 0)
		return IB_ERROR;
	for (size_t i = 1; i < n; i++)
		if (ib_parse__vec_push(c->arena, &test, (void *)c->node->args[i].ptr) < 0)
			return IB_ERROR;
	h->test = strings_of(&test);
	if ((rc = duration_flag(c, &f[0], &h->interval)) < 0 ||
	    (rc = duration_flag(c, &f[1], &h->timeout)) < 0 ||
	    (rc = duration_flag(c, &f[2], &h->start_period)) < 0 ||
	    (rc = duration_flag(c, &f[3], &h->start_interval)) < 0)
		return rc;
	if (f[4].value) {
		char *end;
		long long v = strtoll(f[4].value, &end, 10);
		if (!*f[4].value || *end || v > INT_MAX || v < INT_MIN)
			return FAIL(c, "HEALTHCHECK: invalid --retries value `%s`", f[4].value);
		if (v < 0)
			return FAIL(c, "HEALTHCHECK: --retries cannot be negative (%lld)", v);
		h->retries = (int)v;
	}
	return 0;
}

/* Type one node. */
static int typed(ib_instruction **out, ib_parse__arena *arena, const char *filename, const ib_node *node)
{
	ictx c = { arena, filename, node, NULL };
	int k = kind_of(node->keyword);
	if (k < 0)
		return FAIL(&c, "unknown instruction: %s", node->keyword_raw);
	instr_full *full = ib_parse__alloc(arena, sizeof(*full));
	if (!full)
		return IB_ERROR;
	ib_instruction *in = &full->pub;
	c.name = kind_names[k];
	in->kind = (ib_instruction_kind)k;
	in->line = node->start_line;
	in->end_line = node->end_line;
	in->original = node->original;
	in->node = node;
	int rc;
	switch (in->kind) {
	case IB_INSTR_FROM: rc = do_from(&c, in); break;
	case IB_INSTR_RUN: rc = do_run(&c, in); break;
	case IB_INSTR_CMD: case IB_INSTR_ENTRYPOINT: case IB_INSTR_SHELL: rc = do_cmd(&c, in); break;
	case IB_INSTR_LABEL: case IB_INSTR_ENV: rc = do_kv(&c, in); break;
	case IB_INSTR_MAINTAINER: case IB_INSTR_USER: case IB_INSTR_WORKDIR:
	case IB_INSTR_STOPSIGNAL: rc = do_value(&c, in); break;
	case IB_INSTR_EXPOSE: case IB_INSTR_VOLUME: rc = do_list(&c, in); break;
	case IB_INSTR_ADD: case IB_INSTR_COPY: rc = do_copy(&c, in); break;
	case IB_INSTR_ARG: rc = do_arg(&c, in); break;
	case IB_INSTR_ONBUILD: rc = do_onbuild(&c, in); break;
	case IB_INSTR_HEALTHCHECK: rc = do_healthcheck(&c, in); break;
	default: rc = FAIL(&c, "unknown instruction: %s", node->keyword_raw); break;
	}
	if (rc < 0)
		return rc;
	*out = in;
	return 0;
}

/* ---- stages ---- */

static int finish_stage(ib_instructions *ins, ib_parse__ptrvec *stages, ib_stage *st, ib_parse__ptrvec *body)
{
	if (!st)
		return 0;
	st->instructions = (const ib_instruction *const *)body->items;
	st->instruction_count = body->count;
	memset(body, 0, sizeof(*body));
	return ib_parse__vec_push(&ins->arena, stages, st);
}

static int build(ib_instructions *ins)
{
	const ib_dockerfile *df = ins->df;
	ib_parse__ptrvec meta = { 0 }, stages = { 0 }, body = { 0 };
	ib_stage *st = NULL;
	int rc;
	for (size_t i = 0; i < df->nnodes; i++) {
		ib_instruction *in;
		if ((rc = typed(&in, &ins->arena, df->filename, df->nodes[i])) < 0)
			return rc;
		if (in->kind == IB_INSTR_FROM) {
			if ((rc = finish_stage(ins, &stages, st, &body)) < 0)
				return rc;
			if (!(st = ib_parse__alloc(&ins->arena, sizeof(*st))))
				return IB_ERROR;
			st->index = stages.count;
			st->base = in->u.from.image;
			st->name = in->u.from.name;
			st->platform = in->u.from.platform;
			st->line = in->line;
			st->from = in;
			/* a duplicate stage name is BuildKit's DuplicateStageName
			 * warning (lib/plan/checks.c), not an error: the plan
			 * resolves a name as BuildKit does */
			continue;
		}
		if (!st && in->kind != IB_INSTR_ARG)
			return ib_parse__syntax_error(df->filename, in->line,
				"%s before the first FROM: only ARG may come before FROM",
				kind_names[in->kind]);
		if ((rc = ib_parse__vec_push(&ins->arena, st ? &body : &meta, in)) < 0)
			return rc;
	}
	if ((rc = finish_stage(ins, &stages, st, &body)) < 0)
		return rc;
	ins->meta = (ib_instruction **)meta.items;
	ins->nmeta = meta.count;
	if (stages.count) {
		ins->stages = ib_parse__alloc(&ins->arena, stages.count * sizeof(ib_stage));
		if (!ins->stages)
			return IB_ERROR;
		for (size_t i = 0; i < stages.count; i++)
			ins->stages[i] = *(ib_stage *)stages.items[i];
	}
	ins->nstages = stages.count;
	return 0;
}

int ib_instructions_parse(ib_instructions **out, const ib_dockerfile *df)
{
	if (!out || !df)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE, "ib_instructions_parse: invalid arguments");
	*out = NULL;
	ib_instructions *ins = ib_calloc(1, sizeof(*ins));
	if (!ins)
		return IB_ERROR;
	ins->df = df;
	int rc = build(ins);
	if (rc < 0) {
		ib_instructions_free(ins);
		return rc;
	}
	*out = ins;
	return 0;
}

void ib_instructions_free(ib_instructions *ins)
{
	if (!ins)
		return;
	ib_parse__arena_free(&ins->arena);
	free(ins);
}

size_t ib_instructions_meta_arg_count(const ib_instructions *ins) { return ins ? ins->nmeta : 0; }

const ib_instruction *ib_instructions_meta_arg(const ib_instructions *ins, size_t i)
{
	return ins && i < ins->nmeta ? ins->meta[i] : NULL;
}

size_t ib_instructions_stage_count(const ib_instructions *ins) { return ins ? ins->nstages : 0; }

const ib_stage *ib_instructions_stage(const ib_instructions *ins, size_t i)
{
	return ins && i < ins->nstages ? &ins->stages[i] : NULL;
}

const ib_stage *ib_instructions_stage_by_name(const ib_instructions *ins, const char *name)
{
	for (size_t i = 0; ins && name && i < ins->nstages; i++)
		if (ins->stages[i].name && !strcasecmp(ins->stages[i].name, name))
			return &ins->stages[i];
	return NULL;
}

/* ---- a single instruction ---- */

typedef struct {
	instr_full instr;          /* first: what the caller sees (its `pub`) */
	ib_dockerfile *df;
	ib_parse__arena arena;
} single;

int ib_instruction_parse_single(ib_instruction **out, const char *text, const ib_parse_options *opts)
{
	if (!out || !text)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PARSE,
				     "ib_instruction_parse_single: invalid arguments");
	*out = NULL;
	ib_dockerfile *df;
	int rc = ib_dockerfile_parse(&df, text, strlen(text), opts);
	if (rc < 0)
		return rc;
	if (df->nnodes != 1) {
		rc = ib_parse__syntax_error(df->filename, df->nodes[1]->start_line,
			"expected a single instruction, found %zu", df->nnodes);
		ib_dockerfile_free(df);
		return rc;
	}
	single *s = ib_calloc(1, sizeof(*s));
	if (!s) {
		ib_dockerfile_free(df);
		return IB_ERROR;
	}
	s->df = df;
	ib_instruction *in;
	rc = typed(&in, &s->arena, df->filename, df->nodes[0]);
	if (rc < 0) {
		ib_instruction_free(&s->instr.pub);
		return rc;
	}
	s->instr = *(instr_full *)in;
	*out = &s->instr.pub;
	return 0;
}

void ib_instruction_free(ib_instruction *instr)
{
	if (!instr)
		return;
	single *s = (single *)instr;
	ib_parse__arena_free(&s->arena);
	ib_dockerfile_free(s->df);
	free(s);
}

size_t ib_instruction_mount_count(const ib_instruction *in)
{
	return in && in->kind == IB_INSTR_RUN ? CFULL(in)->nmounts : 0;
}

const ib_run_mount *ib_instruction_mount(const ib_instruction *in, size_t i)
{
	return i < ib_instruction_mount_count(in) ? &CFULL(in)->mounts[i] : NULL;
}

size_t ib_instruction_heredoc_count(const ib_instruction *in)
{
	return in && (in->kind == IB_INSTR_RUN || in->kind == IB_INSTR_COPY || in->kind == IB_INSTR_ADD)
		       ? CFULL(in)->nheredocs : 0;
}

const ib_heredoc *ib_instruction_heredoc(const ib_instruction *in, size_t i)
{
	return i < ib_instruction_heredoc_count(in) ? &CFULL(in)->heredocs[i] : NULL;
}

size_t ib_instruction_kv_count(const ib_instruction *in)
{
	return in && (in->kind == IB_INSTR_ENV || in->kind == IB_INSTR_LABEL) ? CFULL(in)->nkv : 0;
}

const ib_instr_kv *ib_instruction_kv(const ib_instruction *in, size_t i)
{
	return i < ib_instruction_kv_count(in) ? &CFULL(in)->kv[i] : NULL;
}

size_t ib_instruction_arg_count(const ib_instruction *in)
{
	return in && in->kind == IB_INSTR_ARG ? CFULL(in)->nargs : 0;
}

const ib_instr_arg *ib_instruction_arg(const ib_instruction *in, size_t i)
{
	return i < ib_instruction_arg_count(in) ? &CFULL(in)->args[i] : NULL;
}
