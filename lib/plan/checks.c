/*
 * Build checks: BuildKit's Dockerfile linter (frontend/dockerfile/linter),
 * run as static analysis of the syntax tree, the typed instructions and the
 * plan. Messages are BuildKit's, word for word.
 */
#include "imagebuild/plan.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/strlist.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#define URL "https://docs.docker.com/go/dockerfile/rule/"

struct ib_checks {
	ib_check_warning *items;
	size_t n, cap;
	bool error_on_warn;
};

typedef struct {
	bool skip_all, error;
	ib_strlist skip;
} check_config;

typedef struct {
	ib_checks *out;
	check_config cfg;
	const ib_dockerfile *df;
	const ib_instructions *ins;
	const ib_plan *plan;
	const ib_ignore *ignore;
	int all_stages;
	char escape;
	const check_config *local;  /* from `# check=` comments before the instruction */
	const ib_check_base *bases; /* the base images the build resolved, by stage index */
	size_t nbases;
} ctx;

int ib_check_options_init(ib_check_options *opts, unsigned int version)
{
	if (version < 1 || version > IB_CHECK_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PLAN, "unknown ib_check_options version %u", version);
	/* a version 1 caller's struct ends before `bases`: never write past it */
	memset(opts, 0, version == 1 ? offsetof(ib_check_options, bases) : sizeof *opts);
	opts->version = version;
	return 0;
}

/* ---- the configuration (linter.ParseLintOptions) ---- */

static char *trim(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	char *r = malloc(n + 1);
	if (r) {
		memcpy(r, s, n);
		r[n] = 0;
	}
	return r;
}

/* Go's strconv.ParseBool: 1 true, 0 false, -1 invalid. */
static int parse_bool(const char *v)
{
	static const char *const t[] = { "1", "t", "T", "TRUE", "true", "True", NULL };
	static const char *const f[] = { "0", "f", "F", "FALSE", "false", "False", NULL };
	for (size_t i = 0; t[i]; i++)
		if (!strcmp(v, t[i]))
			return 1;
	for (size_t i = 0; f[i]; i++)
		if (!strcmp(v, f[i]))
			return 0;
	return -1;
}

static int parse_config(check_config *cfg, const char *str)
{
	char *all = trim(str, strlen(str));
	if (!all)
		return IB_ERROR;
	int rc = 0;
	char *p = all;
	/* strings.SplitN(s, ";", 3): the third part keeps any further `;` */
	for (int part = 0; *all && part < 3 && p && rc == 0; part++) {
		char *end = part < 2 ? strchr(p, ';') : NULL;
		if (end)
			*end = 0;
		char *eq = strchr(p, '=');
		if (!eq) {
			rc = ib_error_setc(IB_ESYNTAX, IB_LAYER_PLAN, "invalid check option \"%s\"", p);
			break;
		}
		char *k = trim(p, (size_t)(eq - p)), *v = trim(eq + 1, strlen(eq + 1));
		if (!k || !v) {
			rc = IB_ERROR;
		} else if (!strcmp(k, "skip")) {
			if (!strcmp(v, "all")) {
				cfg->skip_all = true;
			} else {
				for (char *s = v, *c; rc == 0; s = c + 1) {
					c = strchr(s, ',');
					char *r = trim(s, c ? (size_t)(c - s) : strlen(s));
					rc = ib_strlist_take(&cfg->skip, r);
					if (!c)
						break;
				}
			}
		} else if (!strcmp(k, "error")) {
			int b = parse_bool(v);
			if (b < 0) {
				rc = ib_error_setc(IB_ESYNTAX, IB_LAYER_PLAN,
						   "failed to parse check option \"%s\": strconv.ParseBool: parsing \"%s\": invalid syntax",
						   p, v);
			} else {
				cfg->error = b;
			}
		} else if (!strcmp(k, "experimental")) {
			rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_PLAN,
					   "check option \"experimental\": experimental build checks are not supported");
		} else {
			rc = ib_error_setc(IB_ESYNTAX, IB_LAYER_PLAN, "invalid check option \"%s\"", k);
		}
		free(k);
		free(v);
		p = end ? end + 1 : NULL;
	}
	free(all);
	return rc;
}

/* ---- reporting ---- */

static bool skipped(const ctx *c, const char *rule)
{
	if (c->local && (c->local->skip_all || ib_strlist_contains(&c->local->skip, rule)))
		return true;
	return c->cfg.skip_all || ib_strlist_contains(&c->cfg.skip, rule);
}

/*
 * linter.WithMergedConfigFromComments: the first comment before an
 * instruction that reads `check=VALUE` adds the skips of VALUE (up to its
 * first space) for that instruction; `error=` there changes nothing, and an
 * invalid VALUE is ignored, as BuildKit does. 1 when `cfg` was filled.
 */
static int comment_config(check_config *cfg, const ib_node *node)
{
	for (size_t i = 0; i < ib_node_comment_count(node); i++) {
		const char *t = ib_node_comment(node, i);
		size_t k = 0;
		if (!isalpha((unsigned char)t[0]))
			continue;
		while (isalnum((unsigned char)t[k]))
			k++;
		if (k != 5 || strncasecmp(t, "check", 5))
			continue;
		const char *v = t + k;
		while (isspace((unsigned char)*v))
			v++;
		if (*v != '=')
			continue;
		v++;
		while (isspace((unsigned char)*v))
			v++;
		if (!*v)
			continue;
		char *val = strndup(v, strcspn(v, " "));
		if (!val)
			return IB_ERROR;
		int rc = parse_config(cfg, val);
		free(val);
		if (rc == IB_EUNSUPPORTED) {
			ib_strlist_clear(&cfg->skip);
			ib_error_prefix("line %d: # %s", ib_node_start_line(node), t);
			return rc;
		}
		if (rc < 0) {
			ib_error_clear();
			ib_strlist_clear(&cfg->skip);
			memset(cfg, 0, sizeof *cfg);
			return 0;
		}
		return 1;
	}
	return 0;
}

static int warn(ctx *c, const char *rule, const char *url_tail, int line, const char *fmt, ...)
	IB_PRINTF(5, 6);

static int warn(ctx *c, const char *rule, const char *url_tail, int line, const char *fmt, ...)
{
	if (skipped(c, rule))
		return 0;
	ib_checks *o = c->out;
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 8;
		ib_check_warning *n = realloc(o->items, cap * sizeof *n);
		if (!n)
			return ib_error_setc(IB_ERROR, IB_LAYER_NOMEMORY, "out of memory");
		o->items = n;
		o->cap = cap;
	}
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	char *url = url_tail ? ib_sprintf("%s%s/", URL, url_tail) : NULL;
	if (!msg || (url_tail && !url)) {
		free(msg);
		free(url);
		return ib_error_setc(IB_ERROR, IB_LAYER_NOMEMORY, "out of memory");
	}
	ib_check_warning *w = &o->items[o->n++];
	w->rule = rule; /* static strings */
	w->message = msg;
	w->url = url;
	w->line = line;
	return 0;
}

/* Go's %q for the ASCII names we quote. */
static char *goquote(const char *s)
{
	ib_buf b = IB_BUF_INIT;
	ib_buf_puts(&b, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			ib_buf_printf(&b, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			ib_buf_printf(&b, "\\x%02x", ch);
		else
			ib_buf_put(&b, s, 1);
	}
	ib_buf_puts(&b, "\"");
	char *r = ib_strdup(ib_buf_cstr(&b));
	ib_buf_dispose(&b);
	return r;
}

/* ---- helpers ---- */

static bool is_lower(const char *s)
{
	for (; *s; s++)
		if (isupper((unsigned char)*s))
			return false;
	return true;
}

static bool is_upper(const char *s)
{
	for (; *s; s++)
		if (islower((unsigned char)*s))
			return false;
	return true;
}

static size_t levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *row = calloc(lb + 1, sizeof *row);
	if (!row)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			if (up + 1 < best)
				best = up + 1;
			row[j] = best;
			diag = up;
		}
	}
	size_t d = row[lb];
	free(row);
	return d;
}

/* util/suggest.Search, case-sensitive: the closest option at distance < 3. */
static const char *suggest(const char *val, const ib_strlist *opts)
{
	const char *match = NULL;
	size_t mind = 3;
	for (size_t i = 0; i < opts->n; i++) {
		if (!strcmp(val, opts->items[i]))
			return NULL;
		size_t d = levenshtein(val, opts->items[i]);
		if (d < mind) {
			match = opts->items[i];
			mind = d;
		}
	}
	return match;
}

/* Variables an expansion looked up: found ones and unset ones, in order. */
typedef struct {
	ib_strlist matched, unmatched;
} lookups;

static int on_lookup(const char *name, int found, void *payload)
{
	lookups *l = payload;
	ib_strlist *t = found ? &l->matched : &l->unmatched;
	if (!isalpha((unsigned char)name[0]) && name[0] != '_' && !((unsigned char)name[0] & 0x80))
		return 0; /* $0, $@...: special parameters, never variables */
	if (ib_strlist_contains(t, name))
		return 0;
	return ib_strlist_add(t, name) < 0 ? IB_ERROR : 0;
}

static void lookups_clear(lookups *l)
{
	ib_strlist_clear(&l->matched);
	ib_strlist_clear(&l->unmatched);
}

/* Expand `word` with `env`; 0, or <0 when it does not expand (checks then stay quiet). */
static int expand(ib_buf *out, lookups *l, const ctx *c, const char *word, const ib_strlist *env)
{
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
	o.env = env->n ? (const char *const *)env->items : NULL;
	o.escape = c->escape;
	o.lookup = l ? on_lookup : NULL;
	o.payload = l;
	int rc = ib_expand_word(out, word, &o);
	if (rc < 0)
		ib_error_clear();
	return rc;
}

static const char *env_get(const ib_strlist *env, const char *name)
{
	size_t n = strlen(name);
	const char *found = NULL;
	for (size_t i = 0; i < env->n; i++)
		if (!strncmp(env->items[i], name, n) && env->items[i][n] == '=')
			found = env->items[i] + n + 1;
	return found;
}

static const char *const platform_args[] = {
	"TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
	"BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT", NULL,
};

/* ---- distribution/reference.ParseNormalizedNamed, enough to validate ---- */

static bool alnum_lower(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* path-component: [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)* */
static bool path_component(const char *s, size_t n)
{
	size_t i = 0;
	if (!n || !alnum_lower(s[0]))
		return false;
	while (i < n) {
		while (i < n && alnum_lower(s[i]))
			i++;
		if (i == n)
			return true;
		size_t sep = i;
		if (s[i] == '.')
			i++;
		else if (s[i] == '_')
			i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
		else if (s[i] == '-')
			while (i < n && s[i] == '-')
				i++;
		else
			return false;
		if (i == sep || i == n || !alnum_lower(s[i]))
			return false;
	}
	return true;
}

static bool domain_ok(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t hn = colon ? (size_t)(colon - s) : n;
	if (colon) {
		if (colon + 1 == s + n)
			return false;
		for (const char *p = colon + 1; p < s + n; p++)
			if (!isdigit((unsigned char)*p))
				return false;
	}
	if (!hn)
		return false;
	if (s[0] == '[')
		return s[hn - 1] == ']';
	size_t i = 0;
	while (i < hn) {
		size_t st = i;
		while (i < hn && (isalnum((unsigned char)s[i]) || s[i] == '-'))
			i++;
		if (i == st || s[st] == '-' || s[i - 1] == '-')
			return false;
		if (i < hn) {
			if (s[i] != '.')
				return false;
			i++;
			if (i == hn)
				return false;
		}
	}
	return true;
}

static bool reference_ok(const char *ref)
{
	size_t n = strlen(ref);
	if (!n)
		return false;
	const char *at = strchr(ref, '@');
	size_t end = at ? (size_t)(at - ref) : n;
	if (at) {
		const char *d = at + 1, *colon = strchr(d, ':');
		if (!colon || colon == d || strlen(colon + 1) < 32)
			return false;
		for (const char *p = colon + 1; *p; p++)
			if (!isxdigit((unsigned char)*p))
				return false;
	}
	/* the tag: after the last ':' that follows the last '/' */
	const char *slash = NULL;
	for (size_t i = 0; i < end; i++)
		if (ref[i] == '/')
			slash = ref + i;
	const char *tag = NULL;
	for (const char *p = slash ? slash : ref; p < ref + end; p++)
		if (*p == ':')
			tag = p;
	size_t name_end = tag ? (size_t)(tag - ref) : end;
	if (tag) {
		size_t tl = (size_t)(ref + end - tag - 1);
		if (!tl || tl > 128)
			return false;
		for (size_t i = 1; i <= tl; i++) {
			char ch = tag[i];
			if (!(isalnum((unsigned char)ch) || ch == '_' || (i > 1 && (ch == '.' || ch == '-'))))
				return false;
		}
	}
	if (name_end > 255)
		return false;
	/* the domain: a first component with '.' or ':', "localhost", or upper case */
	size_t i = 0;
	const char *first_slash = memchr(ref, '/', name_end);
	if (first_slash) {
		size_t fl = (size_t)(first_slash - ref);
		bool dom = memchr(ref, '.', fl) || memchr(ref, ':', fl) || (fl == 9 && !strncmp(ref, "localhost", 9));
		for (size_t k = 0; k < fl && !dom; k++)
			if (isupper((unsigned char)ref[k]))
				dom = true;
		if (dom) {
			if (!domain_ok(ref, fl))
				return false;
			i = fl + 1;
		}
	}
	if (i >= name_end)
		return false;
	while (i < name_end) {
		const char *s = memchr(ref + i, '/', name_end - i);
		size_t cl = s ? (size_t)(s - ref - i) : name_end - i;
		if (!path_component(ref + i, cl))
			return false;
		i += cl + 1;
		if (s && i >= name_end)
			return false;
	}
	return true;
}

/* ---- FROM: the meta ARGs ---- */

/* The meta ARGs with their defaults only (no build arguments), and platform ARGs. */
static int default_meta_env(ib_strlist *env, const ctx *c)
{
	const char *const *plan_env = ib_plan_meta_env(c->plan);
	for (size_t i = 0; plan_env && plan_env[i]; i++)
		for (size_t k = 0; platform_args[k]; k++) {
			size_t l = strlen(platform_args[k]);
			if (!strncmp(plan_env[i], platform_args[k], l) && plan_env[i][l] == '=' &&
			    ib_strlist_add(env, plan_env[i]) < 0)
				return IB_ERROR;
		}
	size_t n = ib_instructions_meta_arg_count(c->ins);
	for (size_t i = 0; i < n; i++) {
		const ib_instruction *in = ib_instructions_meta_arg(c->ins, i);
		for (size_t k = 0; k < ib_instruction_arg_count(in); k++) {
			const ib_instr_arg *a = ib_instruction_arg(in, k);
			if (!a->has_default)
				continue;
			ib_buf v = IB_BUF_INIT;
			if (expand(&v, NULL, c, a->default_value, env) < 0) {
				ib_buf_dispose(&v);
				return 1; /* BuildKit abandons this check */
			}
			int rc = ib_strlist_take(env, ib_sprintf("%s=%s", a->name, ib_buf_cstr(&v)));
			ib_buf_dispose(&v);
			if (rc < 0)
				return IB_ERROR;
		}
	}
	return 0;
}

static int undefined_from_args(ctx *c, const lookups *l, const ib_strlist *keys, int line)
{
	for (size_t i = 0; i < l->unmatched.n; i++) {
		const char *a = l->unmatched.items[i];
		if (ib_strlist_contains(keys, a))
			continue;
		const char *s = suggest(a, keys);
		int rc = s ? warn(c, "UndefinedArgInFrom", "undefined-arg-in-from", line,
				  "FROM argument '%s' is not declared (did you mean %s?)", a, s)
			   : warn(c, "UndefinedArgInFrom", "undefined-arg-in-from", line,
				  "FROM argument '%s' is not declared", a);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static const char *const known_os[] = {
	"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos",
	"aix", "android", "ios", "js", "plan9", "dragonfly", "wasip1", NULL,
};
static const char *const known_arch[] = {
	"amd64", "386", "arm", "arm64", "ppc64le", "ppc64", "s390x", "riscv64", "mips",
	"mipsle", "mips64", "mips64le", "loong64", "wasm", NULL,
};

static bool in_list(const char *const *l, const char *s, size_t n)
{
	for (size_t i = 0; l[i]; i++)
		if (strlen(l[i]) == n && !strncmp(l[i], s, n))
			return true;
	return false;
}

/* containerd's platforms.Parse, as far as this rule needs: os and arch, or false. */
static bool parse_platform(const char *p, char *os, char *arch, size_t n)
{
	const char *s1 = strchr(p, '/');
	size_t l0 = s1 ? (size_t)(s1 - p) : strlen(p);
	if (!s1) {
		if (in_list(known_os, p, l0)) {
			snprintf(os, n, "%.*s", (int)l0, p);
			snprintf(arch, n, "amd64");
			return true;
		}
		if (in_list(known_arch, p, l0) || !strcmp(p, "x86_64") || !strcmp(p, "aarch64")) {
			snprintf(os, n, "linux");
			snprintf(arch, n, "%s", !strcmp(p, "x86_64") ? "amd64" : !strcmp(p, "aarch64") ? "arm64" : p);
			return true;
		}
		return false;
	}
	const char *a = s1 + 1, *s2 = strchr(a, '/');
	size_t la = s2 ? (size_t)(s2 - a) : strlen(a);
	if (!in_list(known_os, p, l0) || !la)
		return false;
	snprintf(os, n, "%.*s", (int)l0, p);
	if (la == 6 && !strncmp(a, "x86_64", 6))
		snprintf(arch, n, "amd64");
	else if (la == 7 && !strncmp(a, "aarch64", 7))
		snprintf(arch, n, "arm64");
	else if (in_list(known_arch, a, la))
		snprintf(arch, n, "%.*s", (int)la, a);
	else
		return false;
	return true;
}

/* containerd's platforms.FormatAll(platforms.Normalize(p)): os/arch[/variant], or NULL when it does not parse. */
static char *platform_shown(const char *p, char *os, char *arch, size_t n)
{
	if (!parse_platform(p, os, arch, n))
		return NULL;
	const char *v = strchr(p, '/');
	v = v ? strchr(v + 1, '/') : NULL;
	const char *variant = v && v[1] ? v + 1 : NULL;
	if (!strcmp(arch, "arm64") && variant && !strcmp(variant, "v8"))
		variant = NULL;
	if (!strcmp(arch, "amd64") && variant && !strcmp(variant, "v1"))
		variant = NULL;
	if (!strcmp(arch, "arm") && !variant)
		variant = "v7";
	return variant ? ib_sprintf("%s/%s/%s", os, arch, variant) : ib_sprintf("%s/%s", os, arch);
}

/*
 * InvalidBaseImagePlatform (validateBaseImagePlatform): the image a built
 * stage starts from has another OS or architecture than the stage's
 * platform (FROM --platform, else the target platform).
 */
static int check_base_platform(ctx *c, const ib_stage *st, const char *base, const char *actual, ib_strlist *menv)
{
	ib_buf want = IB_BUF_INIT;
	const char *tp = env_get(menv, "TARGETPLATFORM");
	int rc = 0;
	if (st->platform) {
		if (expand(&want, NULL, c, st->platform, menv) < 0) {
			ib_error_clear();
			return 0; /* the plan says what is wrong with it */
		}
	} else if (!tp || ib_buf_puts(&want, tp) < 0) {
		return tp ? IB_ERROR : 0;
	}
	char eos[64], earch[64], aos[64], aarch[64];
	char *e = platform_shown(ib_buf_cstr(&want), eos, earch, sizeof eos);
	char *a = platform_shown(actual, aos, aarch, sizeof aos);
	if (e && a && (strcmp(eos, aos) || strcmp(earch, aarch))) {
		char *qa = goquote(a), *qe = goquote(e);
		rc = qa && qe ? warn(c, "InvalidBaseImagePlatform", NULL, st->line,
				     "Base image %s was pulled with platform %s, expected %s for current build", base, qa, qe)
			      : IB_ERROR;
		free(qa);
		free(qe);
	}
	free(e);
	free(a);
	ib_buf_dispose(&want);
	return rc;
}

static int check_from(ctx *c, ib_strlist *keys)
{
	const char *const *meta = ib_plan_meta_env(c->plan);
	ib_strlist env = { 0 }, defaults = { 0 };
	for (size_t i = 0; meta && meta[i]; i++)
		if (ib_strlist_add(&env, meta[i]) < 0)
			return IB_ERROR;
	int rc = default_meta_env(&defaults, c), have_defaults = rc == 0;
	if (rc < 0)
		goto out;
	rc = 0;
	size_t ns = ib_instructions_stage_count(c->ins);
	for (size_t i = 0; rc == 0 && i < ns; i++) {
		const ib_stage *st = ib_instructions_stage(c->ins, i);
		ib_buf v = IB_BUF_INIT;
		lookups l = { 0 };
		check_config local = { 0 };
		if ((rc = comment_config(&local, st->from->node)) < 0)
			break;
		c->local = rc ? &local : NULL;
		rc = 0;
		if (expand(&v, &l, c, st->base, &env) == 0)
			rc = undefined_from_args(c, &l, keys, st->line);
		lookups_clear(&l);
		ib_buf_truncate(&v, 0);
		if (rc == 0 && st->platform) {
			if (expand(&v, &l, c, st->platform, &env) == 0) {
				rc = undefined_from_args(c, &l, keys, st->line);
				const char *tp = env_get(&env, "TARGETPLATFORM");
				if (rc == 0 && l.matched.n == 1 && !l.unmatched.n &&
				    !strcmp(l.matched.items[0], "TARGETPLATFORM") && tp && !strcmp(tp, ib_buf_cstr(&v)))
					rc = warn(c, "RedundantTargetPlatform", "redundant-target-platform", st->line,
						  "Setting platform to predefined %s in FROM is redundant as this is the default behavior",
						  st->platform);
				char os[64], arch[64];
				if (rc == 0 && !l.matched.n && !l.unmatched.n &&
				    parse_platform(ib_buf_cstr(&v), os, arch, sizeof os) &&
				    !(st->name && (strstr(st->name, os) || strstr(st->name, arch)))) {
					char *q = goquote(ib_buf_cstr(&v));
					rc = q ? warn(c, "FromPlatformFlagConstDisallowed", "from-platform-flag-const-disallowed",
						      st->line, "FROM --platform flag should not use constant value %s", q)
					       : IB_ERROR;
					free(q);
				}
			}
			lookups_clear(&l);
			ib_buf_truncate(&v, 0);
		}
		/* InvalidDefaultArgInFrom runs with the Dockerfile's configuration only */
		c->local = NULL;
		ib_strlist_clear(&local.skip);
		if (rc == 0 && have_defaults) {
			if (expand(&v, NULL, c, st->base, &defaults) < 0)
				have_defaults = 0; /* BuildKit stops this check at the first error */
			else if (!reference_ok(ib_buf_cstr(&v)))
				rc = warn(c, "InvalidDefaultArgInFrom", "invalid-default-arg-in-from", st->line,
					  "Default value for ARG %s results in empty or invalid base image name", st->base);
		}
		ib_buf_dispose(&v);
	}
out:
	ib_strlist_clear(&env);
	ib_strlist_clear(&defaults);
	return rc;
}

/* ---- the stages, instruction by instruction ---- */

typedef struct {
	ib_strlist env;      /* NAME=VALUE: ENV, and ARGs with a value */
	ib_strlist args;     /* names of the ARGs declared */
	bool scratch;        /* the chain of bases ends at scratch or a known image: its environment is all known */
	bool shell;          /* a SHELL instruction was seen */
	bool workdir;        /* a WORKDIR was seen */
	bool done;
} stage_state;

static int env_put(ib_strlist *env, const char *name, const char *value)
{
	size_t n = strlen(name), w = 0;
	for (size_t i = 0; i < env->n; i++) {
		if (!strncmp(env->items[i], name, n) && env->items[i][n] == '=')
			free(env->items[i]);
		else
			env->items[w++] = env->items[i];
	}
	env->n = w;
	if (env->items)
		env->items[w] = NULL;
	return ib_strlist_take(env, ib_sprintf("%s=%s", name, value));
}

/* Expand `word` as the step would; report the variables nobody defined. */
static int expand_step(ib_buf *out, ctx *c, stage_state *s, const char *word, int line)
{
	lookups l = { 0 };
	ib_buf tmp = IB_BUF_INIT;
	if (!out)
		out = &tmp;
	int rc = expand(out, &l, c, word, &s->env);
	if (rc < 0) {
		rc = 0;
		goto done;
	}
	if (!s->scratch)
		goto done;
	for (size_t i = 0; rc == 0 && i < l.unmatched.n; i++) {
		const char *v = l.unmatched.items[i];
		if (ib_strlist_contains(&s->args, v) || !strncmp(v, "BUILDKIT_SBOM_SCAN_", 19))
			continue;
		ib_strlist keys = { 0 };
		for (size_t k = 0; rc == 0 && k < s->env.n; k++) {
			const char *e = strchr(s->env.items[k], '=');
			rc = ib_strlist_addn(&keys, s->env.items[k], (size_t)(e - s->env.items[k]));
		}
		const char *sg = rc == 0 ? suggest(v, &keys) : NULL;
		if (rc == 0)
			rc = sg ? warn(c, "UndefinedVar", "undefined-var", line,
				       "Usage of undefined variable '$%s' (did you mean $%s?)", v, sg)
				: warn(c, "UndefinedVar", "undefined-var", line, "Usage of undefined variable '$%s'", v);
		ib_strlist_clear(&keys);
	}
done:
	lookups_clear(&l);
	ib_buf_dispose(&tmp);
	return rc;
}

/* The secrets regexps of validations.go: a token as the whole key, or its first/last `_` word. */
static bool has_token(const char *key, const char *const *tokens)
{
	size_t n = strlen(key);
	for (size_t t = 0; tokens[t]; t++) {
		size_t tl = strlen(tokens[t]);
		for (size_t i = 0; i + tl <= n; i++) {
			if ((i == 0 || key[i - 1] == '_') && (i + tl == n || key[i + tl] == '_') &&
			    !strncasecmp(key + i, tokens[t], tl))
				return true;
		}
	}
	return false;
}

static int check_secret(ctx *c, const char *instr, const char *key, int line)
{
	static const char *const deny[] = { "apikey", "auth", "credential", "credentials", "key", "password",
					    "pword", "passwd", "secret", "token", NULL };
	static const char *const allow[] = { "public", "file", "version", NULL };
	if (!has_token(key, deny) || has_token(key, allow))
		return 0;
	char *q = goquote(key);
	int rc = q ? warn(c, "SecretsUsedInArgOrEnv", "secrets-used-in-arg-or-env", line,
			  "Do not use ARG or ENV instructions for sensitive data (%s %s)", instr, q)
		   : IB_ERROR;
	free(q);
	return rc;
}

static bool legacy_kv(const ib_instruction *in)
{
	/* the tree gives `key value ""` for the old form, `key value "="` for key=value */
	size_t n = ib_node_arg_count(in->node);
	return n >= 3 && !*ib_node_arg(in->node, 2, NULL);
}

static int check_expose(ctx *c, stage_state *s, const ib_instruction *in)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < in->u.list.count; i++) {
		ib_buf v = IB_BUF_INIT;
		rc = expand_step(&v, c, s, in->u.list.items[i], in->line);
		const char *p = ib_buf_cstr(&v);
		/* nat.SplitParts: [ip:]hostport:containerport, the ip may hold colons */
		const char *last = strrchr(p, ':');
		bool mapped = last != NULL;
		const char *cport = last ? last + 1 : p;
		const char *slash = strchr(cport, '/');
		if (rc == 0 && slash && !is_lower(slash + 1))
			rc = warn(c, "ExposeProtoCasing", "expose-proto-casing", in->line,
				  "Defined protocol '%s' in EXPOSE instruction should be lowercase", p);
		if (rc == 0 && mapped) {
			/* an empty ip and an empty host port ("":"":80) is not a mapping */
			bool empty = true;
			for (const char *q = p; q < last; q++)
				if (*q != ':')
					empty = false;
			if (!empty)
				rc = warn(c, "ExposeInvalidFormat", "expose-invalid-format", in->line,
					  "EXPOSE instruction should not define an IP address or host-port mapping, found '%s'", p);
		}
		ib_buf_dispose(&v);
	}
	return rc;
}

static bool has_exclusions(const ib_ignore *ig)
{
	for (size_t i = 0, n = ib_ignore_count(ig); i < n; i++) {
		int ex = 0;
		ib_ignore_pattern(ig, i, &ex);
		if (ex)
			return true;
	}
	return false;
}

/* filepath.Clean, for the slash-separated relative paths of a COPY. */
static char *clean_path(const char *p)
{
	bool abs = *p == '/';
	ib_strlist parts = { 0 };
	const char *s = p;
	while (*s) {
		while (*s == '/')
			s++;
		const char *e = s;
		while (*e && *e != '/')
			e++;
		size_t n = (size_t)(e - s);
		if (n == 0 || (n == 1 && s[0] == '.')) {
			/* nothing */
		} else if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (parts.n && strcmp(parts.items[parts.n - 1], "..")) {
				free(parts.items[--parts.n]);
				parts.items[parts.n] = NULL;
			} else if (!abs) {
				ib_strlist_add(&parts, "..");
			}
		} else {
			ib_strlist_addn(&parts, s, n);
		}
		s = e;
	}
	ib_buf b = IB_BUF_INIT;
	if (abs)
		ib_buf_puts(&b, "/");
	for (size_t i = 0; i < parts.n; i++)
		ib_buf_printf(&b, "%s%s", i ? "/" : "", parts.items[i]);
	if (!b.size)
		ib_buf_puts(&b, ".");
	ib_strlist_clear(&parts);
	char *r = ib_strdup(ib_buf_cstr(&b));
	ib_buf_dispose(&b);
	return r;
}

static bool root_ignored(const ib_ignore *ig)
{
	for (size_t i = 0, n = ib_ignore_count(ig); i < n; i++) {
		int ex = 0;
		const char *p = ib_ignore_pattern(ig, i, &ex);
		if (!ex && (!strcmp(p, "*") || !strcmp(p, "**") || !strcmp(p, "**/*")))
			return true;
	}
	return false;
}

static int check_copy(ctx *c, stage_state *s, const ib_instruction *in)
{
	const ib_instr_copy *cp = &in->u.copy;
	bool add = in->kind == IB_INSTR_ADD;
	bool check_ignored = c->ignore && !cp->from && !has_exclusions(c->ignore);
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < cp->sources.count; i++) {
		ib_buf v = IB_BUF_INIT;
		rc = expand_step(&v, c, s, cp->sources.items[i], in->line);
		const char *src = ib_buf_cstr(&v);
		bool remote = add && (strstr(src, "://") || !strncmp(src, "git@", 4));
		if (rc == 0 && check_ignored && !remote) {
			char *cl = clean_path(src);
			if (!cl) {
				rc = IB_ERROR;
			} else if ((strcmp(cl, ".") && strcmp(cl, "/")) || root_ignored(c->ignore)) {
				if (ib_ignore_matches(c->ignore, cl) == 1) {
					char *q = goquote(cl);
					rc = q ? warn(c, "CopyIgnoredFile", "copy-ignored-file", in->line,
						      "Attempting to %s file %s that is excluded by .dockerignore",
						      add ? "Add" : "Copy", q)
					       : IB_ERROR;
					free(q);
				}
			}
			free(cl);
		}
		ib_buf_dispose(&v);
	}
	if (rc == 0 && cp->dest)
		rc = expand_step(NULL, c, s, cp->dest, in->line);
	if (rc == 0 && cp->chown)
		rc = expand_step(NULL, c, s, cp->chown, in->line);
	if (rc == 0 && cp->chmod)
		rc = expand_step(NULL, c, s, cp->chmod, in->line);
	return rc;
}

typedef struct {
	const ib_instruction *prev;
} tracker;

/* MultipleInstructionsDisallowed: reported at the instruction that will be ignored. */
static int used_once(ctx *c, tracker *t, const ib_instruction *in)
{
	int rc = 0;
	if (t->prev)
		rc = warn(c, "MultipleInstructionsDisallowed", "multiple-instructions-disallowed", t->prev->line,
			  "Multiple %s instructions should not be used in the same stage because only the last one will be used",
			  ib_node_keyword_raw(in->node));
	t->prev = in;
	return rc;
}

static int check_instruction(ctx *c, stage_state *s, tracker tr[3], const ib_instruction *in)
{
	int rc = 0, line = in->line;
	const char *kw = ib_node_keyword_raw(in->node);
	switch (in->kind) {
	case IB_INSTR_ENV:
	case IB_INSTR_LABEL: {
		bool env = in->kind == IB_INSTR_ENV;
		ib_strlist add = { 0 };
		for (size_t i = 0; rc == 0 && i < ib_instruction_kv_count(in); i++) {
			const ib_instr_kv *kv = ib_instruction_kv(in, i);
			if (legacy_kv(in))
				rc = warn(c, "LegacyKeyValueFormat", "legacy-key-value-format", line,
					  "\"%s key=value\" should be used instead of legacy \"%s key value\" format", kw, kw);
			if (rc == 0 && env)
				rc = check_secret(c, "ENV", kv->key, line);
			ib_buf k = IB_BUF_INIT, v = IB_BUF_INIT;
			if (rc == 0)
				rc = expand_step(&k, c, s, kv->key, line);
			if (rc == 0)
				rc = expand_step(&v, c, s, kv->value, line);
			/* every value sees the environment before the instruction */
			if (rc == 0 && env)
				rc = ib_strlist_take(&add, ib_sprintf("%s=%s", ib_buf_cstr(&k), ib_buf_cstr(&v)));
			ib_buf_dispose(&k);
			ib_buf_dispose(&v);
		}
		for (size_t i = 0; rc == 0 && i < add.n; i++) {
			char *eq = strchr(add.items[i], '=');
			*eq = 0;
			rc = env_put(&s->env, add.items[i], eq + 1);
		}
		ib_strlist_clear(&add);
		break;
	}
	case IB_INSTR_ARG:
		for (size_t i = 0; rc == 0 && i < ib_instruction_arg_count(in); i++) {
			const ib_instr_arg *a = ib_instruction_arg(in, i);
			rc = check_secret(c, "ARG", a->name, line);
			const char *given = NULL;
			int has_value = ib_plan_arg_value(&given, c->plan, a->name, NULL) == 0;
			ib_error_clear();
			ib_buf v = IB_BUF_INIT;
			if (rc == 0 && a->has_default && !has_value)
				rc = expand_step(&v, c, s, a->default_value, line);
			if (rc == 0 && (has_value || a->has_default))
				rc = env_put(&s->env, a->name, has_value ? given : ib_buf_cstr(&v));
			if (rc == 0 && !ib_strlist_contains(&s->args, a->name))
				rc = ib_strlist_add(&s->args, a->name);
			ib_buf_dispose(&v);
		}
		break;
	case IB_INSTR_CMD:
	case IB_INSTR_ENTRYPOINT:
		rc = used_once(c, &tr[in->kind == IB_INSTR_CMD ? 0 : 1], in);
		if (rc == 0 && !in->u.cmd.json && !s->shell)
			rc = warn(c, "JSONArgsRecommended", "json-args-recommended", line,
				  "JSON arguments recommended for %s to prevent unintended behavior related to OS signals", kw);
		break;
	case IB_INSTR_HEALTHCHECK:
		rc = used_once(c, &tr[2], in);
		break;
	case IB_INSTR_SHELL:
		s->shell = true;
		break;
	case IB_INSTR_MAINTAINER:
		rc = expand_step(NULL, c, s, in->u.value, line);
		break;
	case IB_INSTR_WORKDIR: {
		ib_buf v = IB_BUF_INIT;
		rc = expand_step(&v, c, s, in->u.value, line);
		if (rc == 0 && !s->workdir && ib_buf_cstr(&v)[0] != '/') {
			char *q = goquote(ib_buf_cstr(&v));
			rc = q ? warn(c, "WorkdirRelativePath", "workdir-relative-path", line,
				      "Relative workdir %s can have unexpected results if the base image changes", q)
			       : IB_ERROR;
			free(q);
		}
		s->workdir = true;
		ib_buf_dispose(&v);
		break;
	}
	case IB_INSTR_USER:
	case IB_INSTR_STOPSIGNAL:
		rc = expand_step(NULL, c, s, in->u.value, line);
		break;
	case IB_INSTR_VOLUME:
		for (size_t i = 0; rc == 0 && i < in->u.list.count; i++)
			rc = expand_step(NULL, c, s, in->u.list.items[i], line);
		break;
	case IB_INSTR_EXPOSE:
		rc = check_expose(c, s, in);
		break;
	case IB_INSTR_ADD:
	case IB_INSTR_COPY:
		rc = check_copy(c, s, in);
		break;
	default:
		break;
	}
	return rc;
}

static int check_stages(ctx *c)
{
	size_t ns = ib_instructions_stage_count(c->ins);
	stage_state *st = calloc(ns ? ns : 1, sizeof *st);
	if (!st)
		return ib_error_setc(IB_ERROR, IB_LAYER_NOMEMORY, "out of memory");
	const char *const *meta = ib_plan_meta_env(c->plan);
	ib_strlist menv = { 0 };
	int rc = 0;
	for (size_t i = 0; meta && meta[i] && rc == 0; i++)
		rc = ib_strlist_add(&menv, meta[i]);
	for (size_t i = 0; rc == 0 && i < ns; i++) {
		const ib_stage *stage = ib_instructions_stage(c->ins, i);
		stage_state *s = &st[i];
		ib_buf base = IB_BUF_INIT;
		size_t parent;
		if (expand(&base, NULL, c, stage->base, &menv) == 0) {
			if (!strcmp(ib_buf_cstr(&base), "scratch")) {
				/* BuildKit gives every stage a PATH (not on Windows) */
				const char *os = env_get(&menv, "TARGETOS");
				s->scratch = true;
				if (!(os && !strcmp(os, "windows")))
					rc = env_put(&s->env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
			} else if (ib_plan_resolve_stage(&parent, c->plan, ib_buf_cstr(&base), i) == 0 && parent < i) {
				stage_state *p = &st[parent];
				s->scratch = p->scratch;
				s->shell = p->shell;
				s->workdir = p->workdir;
				for (size_t k = 0; rc == 0 && k < p->env.n; k++)
					rc = ib_strlist_add(&s->env, p->env.items[k]);
				for (size_t k = 0; rc == 0 && k < p->args.n; k++)
					rc = ib_strlist_add(&s->args, p->args.items[k]);
			} else if (i < c->nbases && c->bases[i].env) {
				/* an image the build resolved: its ENV, and a PATH as BuildKit adds one (not on Windows) */
				const char *const *e = c->bases[i].env;
				const char *os = env_get(&menv, "TARGETOS");
				s->scratch = true;
				for (size_t k = 0; rc == 0 && e[k]; k++) {
					const char *eq = strchr(e[k], '=');
					if (!eq || eq == e[k])
						continue;
					char *name = ib_strndup(e[k], (size_t)(eq - e[k]));
					rc = name ? env_put(&s->env, name, eq + 1) : IB_ERROR;
					free(name);
				}
				if (rc == 0 && !env_get(&s->env, "PATH") && !(os && !strcmp(os, "windows")))
					rc = env_put(&s->env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
			}
			/* BuildKit checks the platform of the images of the stages it builds */
			if (rc == 0 && i < c->nbases && c->bases[i].platform && strcmp(ib_buf_cstr(&base), "scratch") &&
			    !(ib_plan_resolve_stage(&parent, c->plan, ib_buf_cstr(&base), i) == 0 && parent < i) &&
			    (c->all_stages || ib_plan_stage_by_index(c->plan, i)))
				rc = check_base_platform(c, stage, ib_buf_cstr(&base), c->bases[i].platform, &menv);
			ib_error_clear();
		}
		ib_buf_dispose(&base);
		tracker tr[3] = { { NULL }, { NULL }, { NULL } };
		/* BuildKit converts (and checks) only the stages it builds */
		bool built = c->all_stages || ib_plan_stage_by_index(c->plan, i);
		for (size_t k = 0; rc == 0 && built && k < stage->instruction_count; k++) {
			check_config local = { 0 };
			const ib_instruction *in = stage->instructions[k];
			rc = comment_config(&local, in->node);
			if (rc >= 0) {
				c->local = rc ? &local : NULL;
				rc = check_instruction(c, s, tr, in);
				c->local = NULL;
			}
			ib_strlist_clear(&local.skip);
		}
	}
	for (size_t i = 0; i < ns; i++) {
		ib_strlist_clear(&st[i].env);
		ib_strlist_clear(&st[i].args);
	}
	free(st);
	ib_strlist_clear(&menv);
	return rc;
}

/* The rules on the syntax: casing, names, MAINTAINER, empty continuations. */
static int check_syntax(ctx *c)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < ib_dockerfile_warning_count(c->df); i++) {
		const ib_parse_warning *w = ib_dockerfile_warning(c->df, i);
		if (!strncmp(w->message, "Empty continuation line", 23))
			rc = warn(c, "NoEmptyContinuation", "no-empty-continuation", w->line, "Empty continuation line");
	}
	size_t ns = ib_instructions_stage_count(c->ins);
	size_t lower = 0, upper = 0;
	for (size_t i = 0; i < ns; i++) {
		const ib_stage *st = ib_instructions_stage(c->ins, i);
		for (size_t k = 0; k <= st->instruction_count; k++) {
			const ib_instruction *in = k ? st->instructions[k - 1] : st->from;
			const char *kw = ib_node_keyword_raw(in->node);
			if (is_lower(kw))
				lower++;
			else if (is_upper(kw))
				upper++;
		}
	}
	bool majority_lower = lower > upper;
	for (size_t i = 0; rc == 0 && i < ns; i++) {
		const ib_stage *st = ib_instructions_stage(c->ins, i);
		const ib_node *from = st->from->node;
		const char *fkw = ib_node_keyword_raw(from);
		if (ib_node_arg_count(from) == 3) {
			const char *as = ib_node_arg(from, 1, NULL), *name = ib_node_arg(from, 2, NULL);
			if (!is_lower(name))
				rc = warn(c, "StageNameCasing", "stage-name-casing", st->line,
					  "Stage name '%s' should be lowercase", name);
			bool fl = is_lower(fkw), fu = is_upper(fkw);
			if (rc == 0 && (fl || fu) && (fl ? !is_lower(as) : !is_upper(as)))
				rc = warn(c, "FromAsCasing", "from-as-casing", st->line,
					  "'%s' and '%s' keywords' casing do not match", as, fkw);
		}
		for (size_t k = 0; rc == 0 && k <= st->instruction_count; k++) {
			const ib_instruction *in = k ? st->instructions[k - 1] : st->from;
			const char *kw = ib_node_keyword_raw(in->node);
			if (majority_lower ? !is_lower(kw) : !is_upper(kw))
				rc = warn(c, "ConsistentInstructionCasing", "consistent-instruction-casing", in->line,
					  "Command '%s' should match the case of the command majority (%s)", kw,
					  majority_lower ? "lowercase" : "uppercase");
			if (rc == 0 && in->kind == IB_INSTR_MAINTAINER)
				rc = warn(c, "MaintainerDeprecated", "maintainer-deprecated", in->line,
					  "Maintainer instruction is deprecated in favor of using label");
		}
		if (rc == 0 && st->name) {
			if (!strcmp(st->name, "context") || !strcmp(st->name, "scratch")) {
				char *q = goquote(st->name);
				rc = q ? warn(c, "ReservedStageName", "reserved-stage-name", st->line,
					      "Stage name should not use the same name as reserved stage %s", q)
				       : IB_ERROR;
				free(q);
			}
			/* BuildKit warns and builds: the plan resolves a duplicate
			 * name to its last stage (FROM: the last one before it) */
			for (size_t j = 0; rc == 0 && j < i; j++) {
				const ib_stage *o = ib_instructions_stage(c->ins, j);
				if (o->name && !strcmp(o->name, st->name)) {
					char *q = goquote(st->name);
					rc = q ? warn(c, "DuplicateStageName", "duplicate-stage-name", st->line,
						      "Duplicate stage name %s, stage names should be unique", q)
					       : IB_ERROR;
					free(q);
					break;
				}
			}
		}
	}
	return rc;
}

static int cmp_line(const void *a, const void *b)
{
	const ib_check_warning *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x < y ? -1 : x > y;
}

int ib_checks_run(ib_checks **out, const ib_dockerfile *df, const ib_instructions *ins,
		  const ib_plan *plan, const ib_check_options *opts)
{
	*out = NULL;
	if (opts && (opts->version < 1 || opts->version > IB_CHECK_OPTIONS_VERSION))
		return ib_error_setc(IB_EINVALID, IB_LAYER_PLAN, "unknown ib_check_options version %u", opts->version);
	if (!df || !ins || !plan)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PLAN, "ib_checks_run: no Dockerfile, instructions or plan");
	ctx c;
	memset(&c, 0, sizeof c);
	c.df = df;
	c.ins = ins;
	c.plan = plan;
	c.ignore = opts ? opts->ignore : NULL;
	c.all_stages = opts ? opts->all_stages : 0;
	if (opts && opts->version >= 2) {
		c.bases = opts->bases;
		c.nbases = opts->bases ? opts->nbases : 0;
	}
	c.escape = ib_dockerfile_escape(df);
	const char *config = opts && opts->config ? opts->config : ib_dockerfile_directive(df, "check");
	int rc = 0;
	if (config && (rc = parse_config(&c.cfg, config)) < 0) {
		if (opts && opts->config)
			ib_error_prefix("BUILDKIT_DOCKERFILE_CHECK: failed to parse check options");
		else
			ib_error_prefix("# check=%s: failed to parse check options", config);
		ib_strlist_clear(&c.cfg.skip);
		return rc;
	}
	if (!(c.out = calloc(1, sizeof *c.out))) {
		ib_strlist_clear(&c.cfg.skip);
		return ib_error_setc(IB_ERROR, IB_LAYER_NOMEMORY, "out of memory");
	}
	c.out->error_on_warn = c.cfg.error;
	ib_strlist keys = { 0 };
	size_t nm = ib_instructions_meta_arg_count(ins);
	for (size_t i = 0; rc == 0 && i < nm; i++) {
		const ib_instruction *in = ib_instructions_meta_arg(ins, i);
		for (size_t k = 0; rc == 0 && k < ib_instruction_arg_count(in); k++)
			if (!ib_strlist_contains(&keys, ib_instruction_arg(in, k)->name))
				rc = ib_strlist_add(&keys, ib_instruction_arg(in, k)->name);
	}
	for (size_t i = 0; rc == 0 && platform_args[i]; i++)
		if (!ib_strlist_contains(&keys, platform_args[i]))
			rc = ib_strlist_add(&keys, platform_args[i]);
	if (rc == 0)
		rc = check_syntax(&c);
	if (rc == 0)
		rc = check_from(&c, &keys);
	if (rc == 0)
		rc = check_stages(&c);
	ib_strlist_clear(&keys);
	ib_strlist_clear(&c.cfg.skip);
	if (rc < 0) {
		ib_checks_free(c.out);
		return rc;
	}
	if (c.out->n)
		qsort(c.out->items, c.out->n, sizeof *c.out->items, cmp_line);
	*out = c.out;
	return 0;
}

void ib_checks_free(ib_checks *checks)
{
	if (!checks)
		return;
	for (size_t i = 0; i < checks->n; i++) {
		free((char *)checks->items[i].message);
		free((char *)checks->items[i].url);
	}
	free(checks->items);
	free(checks);
}

size_t ib_checks_count(const ib_checks *checks)
{
	return checks ? checks->n : 0;
}

const ib_check_warning *ib_checks_warning(const ib_checks *checks, size_t i)
{
	return checks && i < checks->n ? &checks->items[i] : NULL;
}

int ib_checks_error(const ib_checks *checks)
{
	if (!checks || !checks->error_on_warn || !checks->n)
		return 0;
	ib_strlist rules = { 0 };
	for (size_t i = 0; i < checks->n; i++)
		if (!ib_strlist_contains(&rules, checks->items[i].rule) &&
		    ib_strlist_add(&rules, checks->items[i].rule) < 0) {
			ib_strlist_clear(&rules);
			return IB_ERROR;
		}
	ib_strlist_sort(&rules);
	ib_buf b = IB_BUF_INIT;
	for (size_t i = 0; i < rules.n; i++)
		ib_buf_printf(&b, "%s%s", i ? ", " : "", rules.items[i]);
	int rc = ib_error_setc(IB_EINVALID, IB_LAYER_PLAN, "lint violation found for rules: %s", ib_buf_cstr(&b));
	ib_buf_dispose(&b);
	ib_strlist_clear(&rules);
	return rc;
}
