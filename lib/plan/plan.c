#include "imagebuild/plan.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/strlist.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

struct ib_plan {
	const ib_dockerfile *df;
	const ib_instructions *ins;
	char escape;
	ib_strlist build_args; /* NAME=VALUE, later entries win */
	ib_strlist meta_env;   /* NAME=VALUE of the meta ARGs with a value */
	ib_strlist meta_names; /* every meta ARG name (declared, with or without value) */
	ib_strlist platform_env;
	size_t nstages;        /* in the Dockerfile */
	ib_plan_stage *all;    /* one per Dockerfile stage */
	int *needed;
	size_t *order;         /* Dockerfile indexes of the stages built, in order */
	size_t norder;
	size_t target;
};

static const char *const proxy_args[] = {
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
	"NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", NULL,
};

int ib_plan_is_proxy_arg(const char *name)
{
	for (size_t i = 0; proxy_args[i]; i++)
		if (strcmp(proxy_args[i], name) == 0)
			return 1;
	return 0;
}

int ib_plan_options_init(ib_plan_options *opts, unsigned int version)
{
	if (version != IB_PLAN_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PLAN, "unknown ib_plan_options version %u", version);
	memset(opts, 0, sizeof *opts);
	opts->version = version;
	return 0;
}

/* The value of NAME in a NAME=VALUE list (last one wins), or NULL. */
static const char *env_get(const ib_strlist *env, const char *name)
{
	size_t n = strlen(name);
	const char *found = NULL;
	for (size_t i = 0; i < env->n; i++)
		if (strncmp(env->items[i], name, n) == 0 && env->items[i][n] == '=')
			found = env->items[i] + n + 1;
	return found;
}

/* Remove every NAME=... of `env`. */
static void env_unset(ib_strlist *env, const char *name)
{
	size_t n = strlen(name), w = 0;
	for (size_t i = 0; i < env->n; i++) {
		if (strncmp(env->items[i], name, n) == 0 && env->items[i][n] == '=')
			free(env->items[i]);
		else
			env->items[w++] = env->items[i];
	}
	env->n = w;
	if (env->items)
		env->items[w] = NULL;
}

static int env_set(ib_strlist *env, const char *name, const char *value)
{
	return ib_strlist_take(env, ib_sprintf("%s=%s", name, value));
}

static void host_platform(char *os, char *arch, size_t n)
{
	struct utsname u;
	snprintf(os, n, "linux");
	if (uname(&u) < 0) {
		snprintf(arch, n, "amd64");
		return;
	}
	if (!strcmp(u.machine, "x86_64"))
		snprintf(arch, n, "amd64");
	else if (!strcmp(u.machine, "aarch64"))
		snprintf(arch, n, "arm64");
	else if (!strncmp(u.machine, "armv7", 5))
		snprintf(arch, n, "arm");
	else if (!strcmp(u.machine, "i686") || !strcmp(u.machine, "i386"))
		snprintf(arch, n, "386");
	else
		snprintf(arch, n, "%.32s", u.machine);
}

static int set_platform_args(ib_plan *p, const char *platform)
{
	char os[64], arch[64], bos[64], barch[64], variant[64] = "";
	host_platform(bos, barch, sizeof bos);
	if (platform && *platform) {
		const char *s1 = strchr(platform, '/');
		if (!s1 || s1 == platform || !s1[1])
			return ib_error_setc(IB_EINVALID, IB_LAYER_PLAN,
					     "invalid platform `%s`: expected os/arch[/variant]", platform);
		snprintf(os, sizeof os, "%.*s", (int)(s1 - platform), platform);
		const char *s2 = strchr(s1 + 1, '/');
		if (s2) {
			snprintf(arch, sizeof arch, "%.*s", (int)(s2 - s1 - 1), s1 + 1);
			snprintf(variant, sizeof variant, "%s", s2 + 1);
		} else {
			snprintf(arch, sizeof arch, "%s", s1 + 1);
		}
	} else {
		snprintf(os, sizeof os, "%s", bos);
		snprintf(arch, sizeof arch, "%s", barch);
	}
	char buf[256];
	int rc = 0;
	snprintf(buf, sizeof buf, "%s/%s%s%s", bos, barch, "", "");
	rc |= env_set(&p->platform_env, "BUILDPLATFORM", buf);
	rc |= env_set(&p->platform_env, "BUILDOS", bos);
	rc |= env_set(&p->platform_env, "BUILDARCH", barch);
	rc |= env_set(&p->platform_env, "BUILDVARIANT", "");
	snprintf(buf, sizeof buf, "%s/%s%s%s", os, arch, *variant ? "/" : "", variant);
	rc |= env_set(&p->platform_env, "TARGETPLATFORM", buf);
	rc |= env_set(&p->platform_env, "TARGETOS", os);
	rc |= env_set(&p->platform_env, "TARGETARCH", arch);
	rc |= env_set(&p->platform_env, "TARGETVARIANT", variant);
	return rc ? IB_ERROR : 0;
}

static int expand(ib_buf *out, const ib_plan *p, const char *word, const ib_strlist *env)
{
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
	o.env = (const char *const *)env->items;
	o.escape = p->escape;
	return ib_expand_word(out, word, &o);
}

static int eval_meta_args(ib_plan *p)
{
	/* FROM lines see the platform ARGs and the meta ARGs */
	for (size_t i = 0; i < p->platform_env.n; i++)
		if (ib_strlist_add(&p->meta_env, p->platform_env.items[i]) < 0)
			return IB_ERROR;
	size_t n = ib_instructions_meta_arg_count(p->ins);
	for (size_t i = 0; i < n; i++) {
		const ib_instruction *in = ib_instructions_meta_arg(p->ins, i);
		for (size_t k = 0; k < ib_instruction_arg_count(in); k++) {
			const ib_instr_arg *a = ib_instruction_arg(in, k);
			const char *given = env_get(&p->build_args, a->name);
			if (ib_strlist_add(&p->meta_names, a->name) < 0)
				return IB_ERROR;
			if (given) {
				if (env_set(&p->meta_env, a->name, given) < 0)
					return IB_ERROR;
			} else if (a->has_default) {
				ib_buf v = IB_BUF_INIT;
				if (expand(&v, p, a->default_value, &p->meta_env) < 0) {
					ib_error_prefix("line %d: ARG %s", in->line, a->name);
					return IB_ERROR;
				}
				int rc = env_set(&p->meta_env, a->name, ib_buf_cstr(&v));
				ib_buf_dispose(&v);
				if (rc < 0)
					return rc;
			} else {
				/* declared without a value: unset, even a predefined
				 * platform ARG (BuildKit: `ARG TARGETARCH` empties it) */
				env_unset(&p->meta_env, a->name);
			}
		}
	}
	return 0;
}

/*
 * A stage named `ref` (or numbered) among stages [0, before); -1 if none.
 * With duplicate names the last of them wins, as in BuildKit's
 * dispatchStates (a later stage of the name replaces the earlier in its
 * map): FROM sees the last one defined before it; --target, COPY --from
 * and RUN --mount from= (before = the number of stages) the last one.
 */
static long find_named(const ib_plan *p, const char *ref, size_t before)
{
	for (size_t i = before < p->nstages ? before : p->nstages; i-- > 0;) {
		const ib_stage *st = ib_instructions_stage(p->ins, i);
		if (st->name && strcasecmp(st->name, ref) == 0)
			return (long)i;
	}
	return -1;
}

static long find_stage(const ib_plan *p, const char *ref, size_t before)
{
	if (!ref || !*ref)
		return -1;
	long named = find_named(p, ref, before);
	if (named >= 0)
		return named;
	char *end = NULL;
	unsigned long v = strtoul(ref, &end, 10);
	if (isdigit((unsigned char)ref[0]) && end && !*end && v < before)
		return (long)v;
	return -1;
}

int ib_plan_resolve_stage(size_t *index, const ib_plan *plan, const char *ref, size_t before)
{
	long i = find_stage(plan, ref, before);
	if (i < 0)
		return IB_ENOTFOUND;
	*index = (size_t)i;
	return 0;
}

static int add_dep(ib_plan_stage *s, size_t dep)
{
	for (size_t i = 0; i < s->dep_count; i++)
		if (s->deps[i] == dep)
			return 0;
	size_t *d = ib_realloc((void *)s->deps, (s->dep_count + 1) * sizeof *d);
	if (!d)
		return IB_ERROR;
	d[s->dep_count++] = dep;
	s->deps = d;
	return 0;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/* A stage reference of COPY --from / RUN --mount from=, expanded with the meta ARGs. */
static int stage_ref(ib_plan *p, ib_plan_stage *ps, const char *raw, const ib_instruction *in)
{
	ib_buf v = IB_BUF_INIT;
	if (expand(&v, p, raw, &p->meta_env) < 0) {
		ib_error_prefix("line %d", in->line);
		return IB_ERROR;
	}
	int rc = 0;
	/* BuildKit resolves the name among all the stages (the last of a
	 * duplicate name); one at or after this stage cannot be copied from */
	if (find_named(p, v.ptr, p->nstages) >= (long)ps->index) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PLAN,
				   "line %d: stage `%s` is used before it is defined (or by itself)", in->line, v.ptr);
		ib_buf_dispose(&v);
		return rc;
	}
	long dep = find_stage(p, v.ptr, ps->index);
	/* BuildKit: a number (Go's Atoi: an optional sign, digits) is a stage
	 * index, never an image name */
	const char *ref = ib_buf_cstr(&v);
	const char *digits = ref + (ref[0] == '-' || ref[0] == '+');
	if (dep < 0 && *digits && strspn(digits, "0123456789") == strlen(digits)) {
		long idx = strlen(digits) > 9 ? -1 : strtol(ref, NULL, 10);
		if (idx < 0 || (size_t)idx >= p->nstages)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_PLAN,
					   "line %d: invalid stage index %s (the Dockerfile has %zu stages)", in->line, ref,
					   p->nstages);
		else if ((size_t)idx >= ps->index)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_PLAN,
					   "line %d: stage %s is used before it is defined (or by itself)", in->line, ref);
		else
			rc = add_dep(ps, (size_t)idx);
		ib_buf_dispose(&v);
		return rc;
	}
	if (dep >= 0) {
		rc = add_dep(ps, (size_t)dep);
	} else {
		/* a stage named later, or itself, is an error, not an image */
		for (size_t i = ps->index; i < p->nstages; i++) {
			const ib_stage *st = ib_instructions_stage(p->ins, i);
			if (st->name && strcasecmp(st->name, v.ptr) == 0) {
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_PLAN,
						   "line %d: stage `%s` is used before it is defined (or by itself)",
						   in->line, v.ptr);
				break;
			}
		}
	}
	ib_buf_dispose(&v);
	return rc;
}

static int plan_stage(ib_plan *p, size_t i)
{
	const ib_stage *st = ib_instructions_stage(p->ins, i);
	ib_plan_stage *ps = &p->all[i];
	ib_buf v = IB_BUF_INIT;
	ps->index = i;
	ps->stage = st;
	ps->name = st->name;
	if (expand(&v, p, st->base, &p->meta_env) < 0) {
		ib_error_prefix("line %d: FROM %s", st->line, st->base);
		return IB_ERROR;
	}
	if (v.size == 0) {
		ib_buf_dispose(&v);
		return ib_error_setc(IB_EINVALID, IB_LAYER_PLAN,
				     "line %d: FROM `%s` expands to an empty base name", st->line, st->base);
	}
	long base = find_stage(p, v.ptr, i);
	/* a stage number is not a base: FROM 0 means an image called "0" */
	if (base >= 0 && isdigit((unsigned char)v.ptr[0]) && !ib_instructions_stage(p->ins, (size_t)base)->name)
		base = -1;
	else if (base >= 0 && isdigit((unsigned char)v.ptr[0]) &&
		 strcasecmp(ib_instructions_stage(p->ins, (size_t)base)->name, v.ptr) != 0)
		base = -1;
	if (base >= 0) {
		ps->base_kind = IB_BASE_STAGE;
		ps->base_stage = (size_t)base;
		if (add_dep(ps, (size_t)base) < 0)
			return IB_ERROR;
	} else if (strcasecmp(v.ptr, "scratch") == 0) {
		ps->base_kind = IB_BASE_SCRATCH;
	} else {
		ps->base_kind = IB_BASE_IMAGE;
		if (st->name && strcasecmp(st->name, v.ptr) == 0) {
			ib_buf_dispose(&v);
			return ib_error_setc(IB_EINVALID, IB_LAYER_PLAN,
					     "line %d: stage `%s` cannot use itself as its base", st->line, st->name);
		}
	}
	ps->base = ib_buf_detach(&v);
	if (!ps->base)
		return IB_ERROR;
	for (size_t k = 0; k < st->instruction_count; k++) {
		const ib_instruction *in = st->instructions[k];
		if ((in->kind == IB_INSTR_COPY || in->kind == IB_INSTR_ADD) && in->u.copy.from) {
			if (stage_ref(p, ps, in->u.copy.from, in) < 0)
				return IB_ERROR;
		} else if (in->kind == IB_INSTR_RUN) {
			for (size_t m = 0; m < ib_instruction_mount_count(in); m++)
				if (ib_instruction_mount(in, m)->from && stage_ref(p, ps, ib_instruction_mount(in, m)->from, in) < 0)
					return IB_ERROR;
		}
	}
	if (ps->dep_count > 1)
		qsort((void *)ps->deps, ps->dep_count, sizeof *ps->deps, cmp_size);
	return 0;
}

static void mark_needed(ib_plan *p, size_t i)
{
	if (p->needed[i])
		return;
	p->needed[i] = 1;
	for (size_t k = 0; k < p->all[i].dep_count; k++)
		mark_needed(p, p->all[i].deps[k]);
}

int ib_plan_new(ib_plan **out, const ib_dockerfile *df, const ib_instructions *ins,
		const ib_plan_options *opts)
{
	ib_plan_options defaults = IB_PLAN_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	if (opts->version != IB_PLAN_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PLAN, "unknown ib_plan_options version %u",
				     opts->version);
	ib_plan *p = ib_calloc(1, sizeof *p);
	if (!p)
		return IB_ERROR;
	p->df = df;
	p->ins = ins;
	p->escape = df ? ib_dockerfile_escape(df) : '\\';
	int rc = 0;
	for (const char *const *a = opts->build_args; rc == 0 && a && *a; a++) {
		if (!strchr(*a, '='))
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_PLAN,
					   "build argument `%s`: expected NAME=VALUE", *a);
		else
			rc = ib_strlist_add(&p->build_args, *a);
	}
	if (rc == 0)
		rc = set_platform_args(p, opts->platform);
	if (rc == 0)
		rc = eval_meta_args(p);
	p->nstages = ib_instructions_stage_count(ins);
	if (rc == 0 && p->nstages == 0)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PLAN, "the Dockerfile has no FROM: nothing to build");
	if (rc == 0) {
		p->all = ib_calloc(p->nstages, sizeof *p->all);
		p->needed = ib_calloc(p->nstages, sizeof *p->needed);
		p->order = ib_calloc(p->nstages, sizeof *p->order);
		if (!p->all || !p->needed || !p->order)
			rc = IB_ERROR;
	}
	for (size_t i = 0; rc == 0 && i < p->nstages; i++)
		rc = plan_stage(p, i);
	if (rc == 0) {
		if (opts->target && *opts->target) {
			long t = find_stage(p, opts->target, p->nstages);
			if (t < 0)
				rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_PLAN,
						   "target stage `%s` could not be found", opts->target);
			else
				p->target = (size_t)t;
		} else {
			p->target = p->nstages - 1;
		}
	}
	if (rc == 0) {
		mark_needed(p, p->target);
		for (size_t i = 0; i < p->nstages; i++) {
			if (!p->needed[i])
				continue;
			size_t level = 0;
			for (size_t k = 0; k < p->all[i].dep_count; k++)
				if (p->all[p->all[i].deps[k]].level + 1 > level)
					level = p->all[p->all[i].deps[k]].level + 1;
			p->all[i].level = level;
			p->order[p->norder++] = i;
		}
	}
	if (rc < 0) {
		ib_plan_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void ib_plan_free(ib_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; p->all && i < p->nstages; i++) {
		free((void *)p->all[i].base);
		free((void *)p->all[i].deps);
	}
	free(p->all);
	free(p->needed);
	free(p->order);
	ib_strlist_clear(&p->build_args);
	ib_strlist_clear(&p->meta_env);
	ib_strlist_clear(&p->meta_names);
	ib_strlist_clear(&p->platform_env);
	free(p);
}

size_t ib_plan_stage_count(const ib_plan *plan)
{
	return plan->norder;
}

const ib_plan_stage *ib_plan_stage_at(const ib_plan *plan, size_t i)
{
	return i < plan->norder ? &plan->all[plan->order[i]] : NULL;
}

const ib_plan_stage *ib_plan_stage_by_index(const ib_plan *plan, size_t index)
{
	return index < plan->nstages && plan->needed[index] ? &plan->all[index] : NULL;
}

const ib_plan_stage *ib_plan_target(const ib_plan *plan)
{
	return &plan->all[plan->target];
}

int ib_plan_arg_value(const char **value, const ib_plan *plan, const char *name,
		      const char *default_value)
{
	const char *v = env_get(&plan->build_args, name);
	if (!v)
		v = default_value;
	if (!v && ib_strlist_contains(&plan->meta_names, name)) {
		/* a meta ARG of that name decides, even when it has no value */
		if (!(v = env_get(&plan->meta_env, name)))
			return IB_ENOTFOUND;
	}
	if (!v)
		v = env_get(&plan->platform_env, name);
	if (!v)
		return IB_ENOTFOUND;
	*value = v;
	return 0;
}

const char *const *ib_plan_meta_env(const ib_plan *plan)
{
	static const char *const empty[] = {NULL};
	return plan->meta_env.n ? (const char *const *)plan->meta_env.items : empty;
}

static int declared(const ib_plan *p, const char *name)
{
	if (ib_strlist_contains(&p->meta_names, name))
		return 1;
	for (size_t o = 0; o < p->norder; o++) {
		const ib_stage *st = p->all[p->order[o]].stage;
		for (size_t k = 0; k < st->instruction_count; k++) {
			const ib_instruction *in = st->instructions[k];
			if (in->kind != IB_INSTR_ARG)
				continue;
			for (size_t a = 0; a < ib_instruction_arg_count(in); a++)
				if (strcmp(ib_instruction_arg(in, a)->name, name) == 0)
					return 1;
		}
	}
	return 0;
}

int ib_plan_unused_build_args(ib_strarray *out, const ib_plan *plan)
{
	ib_strlist l = IB_STRLIST_INIT;
	for (size_t i = 0; i < plan->build_args.n; i++) {
		const char *kv = plan->build_args.items[i];
		char *name = ib_strndup(kv, (size_t)(strchr(kv, '=') - kv));
		if (!name) {
			ib_strlist_clear(&l);
			return IB_ERROR;
		}
		/* BUILDKIT_DOCKERFILE_CHECK configures the build checks (checks.c),
		 * BUILDKIT_SANDBOX_HOSTNAME the RUN steps' hostname (the build's),
		 * SOURCE_DATE_EPOCH is BuildKit's (the build's source_date_epoch) */
		if (!ib_plan_is_proxy_arg(name) && strcmp(name, "BUILDKIT_DOCKERFILE_CHECK") &&
		    strcmp(name, "BUILDKIT_SANDBOX_HOSTNAME") && strcmp(name, "SOURCE_DATE_EPOCH") &&
		    !declared(plan, name) && !ib_strlist_contains(&l, name))
			ib_strlist_take(&l, name);
		else
			free(name);
	}
	ib_strlist_sort(&l);
	ib_strarray_dispose(out);
	out->strings = l.items;
	out->count = l.n;
	return 0;
}

static const char *kind_text(ib_base_kind k)
{
	return k == IB_BASE_SCRATCH ? "scratch" : k == IB_BASE_STAGE ? "stage" : "image";
}

int ib_plan_print(ib_buf *out, const ib_plan *plan)
{
	int rc = 0;
	ib_buf_clear(out);
	const ib_plan_stage *t = ib_plan_target(plan);
	rc |= ib_buf_printf(out, "target: stage %zu%s%s%s, %zu of %zu stages built\n", t->index,
			    t->name ? " (" : "", t->name ? t->name : "", t->name ? ")" : "", plan->norder,
			    plan->nstages);
	for (size_t o = 0; o < plan->norder; o++) {
		const ib_plan_stage *s = &plan->all[plan->order[o]];
		rc |= ib_buf_printf(out, "stage %zu", s->index);
		if (s->name)
			rc |= ib_buf_printf(out, " \"%s\"", s->name);
		rc |= ib_buf_printf(out, ": FROM %s (%s), level %zu", s->base, kind_text(s->base_kind),
				    s->level);
		if (s->dep_count) {
			rc |= ib_buf_puts(out, ", needs");
			for (size_t k = 0; k < s->dep_count; k++)
				rc |= ib_buf_printf(out, " %zu", s->deps[k]);
		}
		rc |= ib_buf_putc(out, '\n');
		for (size_t k = 0; k < s->stage->instruction_count; k++) {
			const ib_instruction *in = s->stage->instructions[k];
			rc |= ib_buf_printf(out, "  [%zu/%zu] %s\n", k + 1, s->stage->instruction_count,
					    in->original);
		}
	}
	ib_strarray unused = IB_STRARRAY_INIT;
	if (ib_plan_unused_build_args(&unused, plan) == 0 && unused.count) {
		rc |= ib_buf_puts(out, "warning: build arguments not consumed:");
		for (size_t i = 0; i < unused.count; i++)
			rc |= ib_buf_printf(out, " %s", unused.strings[i]);
		rc |= ib_buf_putc(out, '\n');
	}
	ib_strarray_dispose(&unused);
	return rc ? IB_ERROR : 0;
}
