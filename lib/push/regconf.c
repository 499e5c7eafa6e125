/*
 * containers' registries.conf (v2) as the push layer uses it: which file,
 * which [[registry]] a name falls under (the longest matching prefix, as
 * containers/image), the blocked and insecure flags of a registry host, and
 * the places a pull tries: the mirrors, in order, then the registry.
 */
#include "push/internal.h"
#include "push/regconf.h"
#include "util/fs.h"

#include <stdlib.h>
#include <string.h>

#define REGCONF_DEFAULT "/etc/containers/registries.conf"
#define REGCONF_LIMIT (4u << 20)

void ib_push__regconf_dispose(ib_push__regconf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_search; i++)
		free(c->search[i]);
	free(c->search);
	free(c->short_name_mode);
	for (size_t i = 0; i < c->n_regs; i++) {
		ib_push__registry_conf *r = &c->regs[i];
		free(r->prefix);
		free(r->location);
		for (size_t k = 0; k < r->n_mirrors; k++) {
			free(r->mirrors[k].location);
			free(r->mirrors[k].pull_from);
		}
		free(r->mirrors);
	}
	free(c->regs);
	memset(c, 0, sizeof *c);
}

int ib_push__regconf_path(ib_buf *out, const ib_registry_options *opts)
{
	const char *given = opts && opts->version >= 3 ? opts->registries_conf : NULL;
	const char *env = getenv("CONTAINERS_REGISTRIES_CONF");
	ib_buf_clear(out);
	if (given && *given)
		return strcmp(given, "none") ? ib_buf_puts(out, given) : 0;
	return ib_buf_puts(out, env && *env ? env : REGCONF_DEFAULT);
}

int ib_push__regconf_load(ib_push__regconf *out, const ib_registry_options *opts)
{
	ib_buf path = IB_BUF_INIT, text = IB_BUF_INIT;
	memset(out, 0, sizeof *out);
	int rc = ib_push__regconf_path(&path, opts);
	if (rc == 0 && !path.size) /* "none" */
		goto done;
	if (rc == 0)
		rc = ib_read_regular_file(&text, path.ptr, REGCONF_LIMIT);
	if (rc == IB_ENOTFOUND) { /* no file: no configuration, as containers/image */
		ib_error_clear();
		rc = 0;
		goto done;
	}
	if (rc == 0) {
		char err[512];
		int prc = ib_push__regconf_parse_toml(out, text.ptr ? text.ptr : "", text.size, err, sizeof err);
		if (prc == -2)
			rc = ib_error_oom();
		else if (prc < 0)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "registries.conf `%s`: %s", path.ptr, err);
	}
done:
	ib_buf_dispose(&path);
	ib_buf_dispose(&text);
	return rc;
}

/*
 * How much of `name` ("host[:port]/path") `prefix` matches: its length
 * when `name` is `prefix` or goes on after it with / (or the prefix ends
 * in /), else -1. A wildcard prefix (*.example.com) matches any subdomain
 * of the host: -2 (not supported beyond being recognised).
 */
static long prefix_match(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	if (!strncmp(prefix, "*.", 2)) {
		size_t hl = strcspn(name, "/"), sl = n - 1;
		return hl > sl && !strncmp(name + hl - sl, prefix + 1, sl) ? -2 : -1;
	}
	if (strncmp(name, prefix, n))
		return -1;
	if (name[n] == 0 || name[n] == '/' || (n && prefix[n - 1] == '/'))
		return (long)n;
	return -1;
}

int ib_push__regconf_find(const ib_push__registry_conf **out, const ib_push__regconf *c, const char *name)
{
	long best = -1;
	*out = NULL;
	for (size_t i = 0; c && i < c->n_regs; i++) {
		long m = prefix_match(name, c->regs[i].prefix);
		if (m == -2)
			return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_PUSH,
					     "registries.conf: the wildcard prefix `%s` matches %s, and wildcard prefixes are not supported",
					     c->regs[i].prefix, name);
		if (m > best) {
			best = m;
			*out = &c->regs[i];
		}
	}
	return 0;
}

int ib_push__regconf_host(int *insecure, const ib_push__regconf *c, const char *domain)
{
	const ib_push__registry_conf *r;
	int rc = ib_push__regconf_find(&r, c, domain);
	if (rc < 0)
		return rc;
	if (r && r->blocked)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "registry %s is blocked in registries.conf", domain);
	if (r && r->insecure)
		*insecure = 1;
	return 0;
}

/* One place to try: "host[:port]" and the repository path, split from `full`. */
static int add_source(ib_push__source_list *l, const char *full, int insecure, int mirror)
{
	const char *slash = strchr(full, '/');
	if (!slash || !slash[1])
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "registries.conf: `%s` has no repository path", full);
	ib_push__pull_source *s = realloc(l->v, (l->n + 1) * sizeof *s);
	if (!s)
		return ib_error_oom();
	l->v = s;
	s = &l->v[l->n];
	memset(s, 0, sizeof *s);
	s->domain = ib_strndup(full, (size_t)(slash - full));
	s->path = ib_strdup(slash + 1);
	s->insecure = insecure;
	s->mirror = mirror;
	l->n++;
	return s->domain && s->path ? 0 : IB_ERROR;
}

void ib_push__sources_dispose(ib_push__source_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].domain);
		free(l->v[i].path);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

int ib_push__pull_sources(ib_push__source_list *out, const ib_push__regconf *c, const char *domain, const char *path,
			  int by_digest)
{
	memset(out, 0, sizeof *out);
	char *name = ib_sprintf("%s/%s", domain, path);
	if (!name)
		return IB_ERROR;
	const ib_push__registry_conf *r = NULL;
	int rc = ib_push__regconf_find(&r, c, name);
	if (rc == 0 && r && r->blocked)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "registry %s is blocked in registries.conf", r->prefix);
	if (rc == 0 && r) {
		const char *rest = name + strlen(r->prefix);
		for (size_t i = 0; rc == 0 && i < r->n_mirrors; i++) {
			const ib_push__mirror_conf *m = &r->mirrors[i];
			const char *pf = m->pull_from ? m->pull_from : r->mirror_by_digest_only ? "digest-only" : "all";
			if ((!strcmp(pf, "digest-only") && !by_digest) || (!strcmp(pf, "tag-only") && by_digest))
				continue;
			char *full = ib_sprintf("%s%s", m->location, rest);
			rc = full ? add_source(out, full, m->insecure, 1) : IB_ERROR;
			free(full);
		}
		if (rc == 0) {
			char *full = ib_sprintf("%s%s", *r->location ? r->location : r->prefix, rest);
			rc = full ? add_source(out, full, r->insecure, 0) : IB_ERROR;
			free(full);
		}
	} else if (rc == 0) {
		rc = add_source(out, name, 0, 0);
	}
	free(name);
	if (rc < 0)
		ib_push__sources_dispose(out);
	return rc;
}

/* Docker's rule: the first component names a registry when it has a . or a :, or is localhost. */
int ib_push__unqualified(const char *ref)
{
	const char *slash = strchr(ref, '/');
	if (!slash)
		return 1;
	size_t n = (size_t)(slash - ref);
	if (memchr(ref, '.', n) || memchr(ref, ':', n) || (n == 9 && !strncmp(ref, "localhost", 9)))
		return 0;
	return 1;
}

int ib_push__check_search(const ib_push__regconf *c, const char *ref)
{
	if (!c->has_search || !c->n_search || !ib_push__unqualified(ref))
		return 0;
	if (!strcmp(c->search[0], "docker.io"))
		return 0;
	return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_PUSH,
			     "`%s` names no registry, and registries.conf's unqualified-search-registries starts with %s: "
			     "only docker.io first is supported (name the registry, e.g. %s/%s)",
			     ref, c->search[0], c->search[0], ref);
}
