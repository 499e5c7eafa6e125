// registries.conf (containers-registries.conf(5), version 2) read with
// toml++ (header-only) into the plain C structs of regconf.h. The only C++
// in the library: no exception leaves this file, every string handed back
// is malloc()ed, and the C side (regconf.c) frees it.
#include "push/regconf.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include <toml++/toml.h>

namespace {

struct shape_error {
	std::string msg;
};

char *dup(const std::string &s)
{
	char *p = static_cast<char *>(std::malloc(s.size() + 1));
	if (!p)
		throw std::bad_alloc();
	std::memcpy(p, s.data(), s.size());
	p[s.size()] = 0;
	return p;
}

std::string where(const toml::node &n)
{
	const auto &src = n.source();
	return "line " + std::to_string(src.begin.line);
}

// A string key of `t`: "" when absent; an error when it is not a string.
std::string get_string(const toml::table &t, const char *key, const std::string &ctx)
{
	const toml::node *n = t.get(key);
	if (!n)
		return "";
	if (!n->is_string())
		throw shape_error{ ctx + "." + key + " (" + where(*n) + "): not a string" };
	return n->as_string()->get();
}

int get_bool(const toml::table &t, const char *key, const std::string &ctx)
{
	const toml::node *n = t.get(key);
	if (!n)
		return 0;
	if (!n->is_boolean())
		throw shape_error{ ctx + "." + key + " (" + where(*n) + "): not a boolean" };
	return n->as_boolean()->get() ? 1 : 0;
}

void parse_mirror(ib_push__mirror_conf *m, const toml::table &t, const std::string &ctx)
{
	std::string loc = get_string(t, "location", ctx);
	if (loc.empty())
		throw shape_error{ ctx + ": a mirror without a location" };
	m->location = dup(loc);
	m->insecure = get_bool(t, "insecure", ctx);
	std::string pf = get_string(t, "pull-from-mirror", ctx);
	if (!pf.empty()) {
		if (pf != "all" && pf != "digest-only" && pf != "tag-only")
			throw shape_error{ ctx + ".pull-from-mirror: `" + pf + "` is not all, digest-only or tag-only" };
		m->pull_from = dup(pf);
	}
}

void parse_registry(ib_push__registry_conf *r, const toml::table &t, const std::string &ctx)
{
	std::string loc = get_string(t, "location", ctx), prefix = get_string(t, "prefix", ctx);
	if (prefix.empty())
		prefix = loc;
	if (prefix.empty())
		throw shape_error{ ctx + ": neither prefix nor location" };
	r->location = dup(loc);
	r->prefix = dup(prefix);
	r->insecure = get_bool(t, "insecure", ctx);
	r->blocked = get_bool(t, "blocked", ctx);
	r->mirror_by_digest_only = get_bool(t, "mirror-by-digest-only", ctx);
	const toml::node *mn = t.get("mirror");
	if (!mn)
		return;
	const toml::array *ma = mn->as_array();
	if (!ma)
		throw shape_error{ ctx + ".mirror (" + where(*mn) + "): not an array of tables ([[registry.mirror]])" };
	r->mirrors = static_cast<ib_push__mirror_conf *>(std::calloc(ma->size() ? ma->size() : 1, sizeof *r->mirrors));
	if (!r->mirrors)
		throw std::bad_alloc();
	for (const toml::node &e : *ma) {
		const toml::table *mt = e.as_table();
		if (!mt)
			throw shape_error{ ctx + ".mirror (" + where(e) + "): not a table" };
		std::string mctx = ctx + ".mirror[" + std::to_string(r->n_mirrors) + "]";
		parse_mirror(&r->mirrors[r->n_mirrors++], *mt, mctx);
		if (r->mirror_by_digest_only && r->mirrors[r->n_mirrors - 1].pull_from &&
		    std::strcmp(r->mirrors[r->n_mirrors - 1].pull_from, "digest-only"))
			throw shape_error{ mctx + ": pull-from-mirror contradicts mirror-by-digest-only" };
	}
}

void parse(ib_push__regconf *c, const toml::table &root)
{
	if (root.get("registries"))
		throw shape_error{ "[registries.*] is version 1 of registries.conf, which is not supported (write version 2: [[registry]])" };
	if (const toml::node *n = root.get("unqualified-search-registries")) {
		const toml::array *a = n->as_array();
		if (!a)
			throw shape_error{ "unqualified-search-registries (" + where(*n) + "): not an array" };
		c->has_search = 1;
		c->search = static_cast<char **>(std::calloc(a->size() ? a->size() : 1, sizeof *c->search));
		if (!c->search)
			throw std::bad_alloc();
		for (const toml::node &e : *a) {
			if (!e.is_string())
				throw shape_error{ "unqualified-search-registries (" + where(e) + "): not a string" };
			c->search[c->n_search++] = dup(e.as_string()->get());
		}
	}
	std::string mode = get_string(root, "short-name-mode", "");
	if (!mode.empty()) {
		if (mode != "enforcing" && mode != "permissive" && mode != "disabled")
			throw shape_error{ "short-name-mode: `" + mode + "` is not enforcing, permissive or disabled" };
		c->short_name_mode = dup(mode);
	}
	const toml::node *rn = root.get("registry");
	if (!rn)
		return;
	const toml::array *ra = rn->as_array();
	if (!ra)
		throw shape_error{ "registry (" + where(*rn) + "): not an array of tables ([[registry]])" };
	c->regs = static_cast<ib_push__registry_conf *>(std::calloc(ra->size() ? ra->size() : 1, sizeof *c->regs));
	if (!c->regs)
		throw std::bad_alloc();
	for (const toml::node &e : *ra) {
		const toml::table *t = e.as_table();
		if (!t)
			throw shape_error{ "registry (" + where(e) + "): not a table" };
		std::string ctx = "registry[" + std::to_string(c->n_regs) + "]";
		parse_registry(&c->regs[c->n_regs++], *t, ctx);
	}
}

} // namespace

extern "C" int ib_push__regconf_parse_toml(ib_push__regconf *out, const char *text, size_t len, char *err, size_t errlen)
{
	std::memset(out, 0, sizeof *out);
	err[0] = 0;
	try {
		// TOML_EXCEPTIONS=0: a parse error is a value, so no toml++ type's
		// typeinfo is emitted (the archive defines only ib_ names)
		toml::parse_result res = toml::parse(std::string_view(text, len));
		if (!res) {
			const toml::parse_error &e = res.error();
			std::snprintf(err, errlen, "line %u: %.*s", static_cast<unsigned>(e.source().begin.line),
				      static_cast<int>(e.description().size()), e.description().data());
		} else {
			parse(out, res.table());
			return 0;
		}
	} catch (const shape_error &e) {
		std::snprintf(err, errlen, "%s", e.msg.c_str());
	} catch (const std::bad_alloc &) {
		ib_push__regconf_dispose(out);
		return -2;
	} catch (...) {
		std::snprintf(err, errlen, "unexpected error while parsing");
	}
	ib_push__regconf_dispose(out);
	return -1;
}
