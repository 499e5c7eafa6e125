/*
 * Image configs, kept as the JSON object they are (so fields we do not know
 * survive a read-modify-write), with typed accessors for what Docker's
 * builder changes.
 */
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

struct ib_image_config {
	json_t *root;
};

json_t *ib_image_config__json(const ib_image_config *c)
{
	return c->root;
}

/*
 * The fields we read must have the types Docker's decoder wants, or the
 * config is refused as Docker refuses it (a label that is a number would
 * otherwise read as "" here and as missing there). null is an unset field,
 * as in Go. Cmd, Entrypoint and Shell may be one string (Docker's
 * strslice): it becomes a one-item list.
 */
typedef enum { T_STRING, T_BOOL, T_INT, T_STRINGS, T_STRSLICE, T_MAP_STRING, T_MAP_OBJECT, T_OBJECT } field_type;

static int wrong_type(const char *where, const char *key, const char *what)
{
	return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "image config: %s%s is not %s", where, key, what);
}

static int check_field(json_t *obj, const char *where, const char *key, field_type t)
{
	json_t *v = json_object_get(obj, key);
	const char *k;
	json_t *e;
	size_t i;
	if (!v || json_is_null(v))
		return 0;
	switch (t) {
	case T_STRING:
		return json_is_string(v) ? 0 : wrong_type(where, key, "a string");
	case T_BOOL:
		return json_is_boolean(v) ? 0 : wrong_type(where, key, "true or false");
	case T_INT:
		return json_is_integer(v) ? 0 : wrong_type(where, key, "an integer");
	case T_OBJECT:
		return json_is_object(v) ? 0 : wrong_type(where, key, "an object");
	case T_STRSLICE:
		if (json_is_string(v)) {
			json_t *a = json_pack("[O]", v);
			return a ? ib_json_set_new(obj, key, a) : ib_error_oom();
		}
		/* fall through */
	case T_STRINGS:
		if (!json_is_array(v))
			return wrong_type(where, key, "a list of strings");
		json_array_foreach(v, i, e) {
			if (!json_is_string(e))
				return wrong_type(where, key, "a list of strings");
		}
		return 0;
	case T_MAP_STRING:
	case T_MAP_OBJECT:
		if (!json_is_object(v))
			return wrong_type(where, key, "an object");
		json_object_foreach(v, k, e) {
			if (t == T_MAP_STRING ? !json_is_string(e) : !json_is_object(e))
				return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "image config: %s%s.%s is not %s", where, key,
						     k, t == T_MAP_STRING ? "a string" : "an object");
		}
		return 0;
	}
	return 0;
}

static int check_types(json_t *j)
{
	static const struct { const char *key; field_type t; } top[] = {
		{ "created", T_STRING }, { "author", T_STRING }, { "architecture", T_STRING }, { "os", T_STRING },
		{ "variant", T_STRING }, { "config", T_OBJECT }, { "rootfs", T_OBJECT },
	}, cfg[] = {
		{ "User", T_STRING }, { "WorkingDir", T_STRING }, { "StopSignal", T_STRING }, { "ArgsEscaped", T_BOOL },
		{ "Env", T_STRINGS }, { "OnBuild", T_STRINGS }, { "Cmd", T_STRSLICE }, { "Entrypoint", T_STRSLICE },
		{ "Shell", T_STRSLICE }, { "Labels", T_MAP_STRING }, { "ExposedPorts", T_MAP_OBJECT },
		{ "Volumes", T_MAP_OBJECT }, { "Healthcheck", T_OBJECT },
	}, hc[] = {
		{ "Test", T_STRINGS }, { "Interval", T_INT }, { "Timeout", T_INT }, { "StartPeriod", T_INT },
		{ "StartInterval", T_INT }, { "Retries", T_INT },
	}, hist[] = {
		{ "created", T_STRING }, { "created_by", T_STRING }, { "author", T_STRING }, { "comment", T_STRING },
		{ "empty_layer", T_BOOL },
	};
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < sizeof top / sizeof top[0]; i++)
		rc = check_field(j, "", top[i].key, top[i].t);
	json_t *c = json_object_get(j, "config");
	for (size_t i = 0; rc == 0 && json_is_object(c) && i < sizeof cfg / sizeof cfg[0]; i++)
		rc = check_field(c, "config.", cfg[i].key, cfg[i].t);
	json_t *h = json_object_get(c, "Healthcheck");
	for (size_t i = 0; rc == 0 && json_is_object(h) && i < sizeof hc / sizeof hc[0]; i++)
		rc = check_field(h, "config.Healthcheck.", hc[i].key, hc[i].t);
	json_t *r = json_object_get(j, "rootfs");
	if (rc == 0 && json_is_object(r))
		rc = check_field(r, "rootfs.", "diff_ids", T_STRINGS);
	json_t *hl = json_object_get(j, "history");
	if (rc == 0 && hl && !json_is_null(hl) && !json_is_array(hl))
		rc = wrong_type("", "history", "a list");
	size_t i;
	json_t *e;
	json_array_foreach(hl, i, e) {
		if (rc < 0)
			break;
		if (!json_is_object(e)) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "image config: history[%zu] is not an object", i);
			break;
		}
		for (size_t f = 0; rc == 0 && f < sizeof hist / sizeof hist[0]; f++)
			rc = check_field(e, "history[].", hist[f].key, hist[f].t);
	}
	return rc;
}

int ib_image_config__wrap(ib_image_config **out, json_t *j)
{
	if (!json_is_object(j)) {
		json_decref(j);
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "image config is not a JSON object");
	}
	int rc = check_types(j);
	if (rc < 0) {
		json_decref(j);
		return rc;
	}
	ib_image_config *c = ib_calloc(1, sizeof *c);
	if (!c) {
		json_decref(j);
		return IB_ERROR;
	}
	c->root = j;
	*out = c;
	return 0;
}

int ib_image_config_new(ib_image_config **out)
{
	json_t *j = json_pack("{s:s,s:s,s:{},s:{s:s,s:[]}}", "architecture", ib_store__host_arch(), "os", "linux",
			      "config", "rootfs", "type", "layers", "diff_ids");
	if (!j)
		return ib_error_oom();
	return ib_image_config__wrap(out, j);
}

int ib_image_config_from_json(ib_image_config **out, const char *json, size_t len)
{
	json_t *j;
	int rc = ib_json_loadb(&j, json, len, "image config");
	if (rc < 0)
		return rc;
	if ((rc = ib_image_config__wrap(out, j)) < 0)
		return rc;
	json_t *cfg = json_object_get(j, "config");
	json_t *rootfs = json_object_get(j, "rootfs");
	if ((cfg && !json_is_object(cfg) && !json_is_null(cfg)) || (rootfs && !json_is_object(rootfs))) {
		ib_image_config_free(*out);
		*out = NULL;
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "image config: \"config\" or \"rootfs\" is not an object");
	}
	return 0;
}

int ib_image_config_to_json(ib_buf *out, const ib_image_config *c)
{
	ib_buf_clear(out);
	return ib_json_dump(out, c->root, IB_JSON_SORTED);
}

int ib_image_config_dup(ib_image_config **out, const ib_image_config *c)
{
	json_t *j = json_deep_copy(c->root);
	if (!j)
		return ib_error_oom();
	return ib_image_config__wrap(out, j);
}

void ib_image_config_free(ib_image_config *c)
{
	if (!c)
		return;
	json_decref(c->root);
	free(c);
}

/* The "config" object; created when `create`. */
static json_t *inner(const ib_image_config *c, int create)
{
	json_t *cfg = json_object_get(c->root, "config");
	if (json_is_object(cfg) || !create)
		return json_is_object(cfg) ? cfg : NULL;
	cfg = json_object();
	if (!cfg || json_object_set_new(c->root, "config", cfg) != 0)
		return NULL;
	return cfg;
}

static const char *string_key(ib_config_string which, int *in_config)
{
	*in_config = 0;
	switch (which) {
	case IB_CONFIG_CREATED: return "created";
	case IB_CONFIG_AUTHOR: return "author";
	case IB_CONFIG_ARCHITECTURE: return "architecture";
	case IB_CONFIG_OS: return "os";
	case IB_CONFIG_VARIANT: return "variant";
	default: break;
	}
	*in_config = 1;
	switch (which) {
	case IB_CONFIG_WORKDIR: return "WorkingDir";
	case IB_CONFIG_USER: return "User";
	case IB_CONFIG_STOPSIGNAL: return "StopSignal";
	default: return NULL;
	}
}

const char *ib_image_config_get(const ib_image_config *c, ib_config_string which)
{
	int in_config;
	const char *key = string_key(which, &in_config);
	if (!key)
		return NULL;
	const char *v = ib_json_str(in_config ? inner(c, 0) : c->root, key);
	return v;
}

int ib_image_config_set(ib_image_config *c, ib_config_string which, const char *value)
{
	int in_config;
	const char *key = string_key(which, &in_config);
	if (!key)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "unknown config string field %d", (int)which);
	json_t *obj = in_config ? inner(c, 1) : c->root;
	if (!obj)
		return ib_error_oom();
	if (!value) {
		json_object_del(obj, key);
		return 0;
	}
	return ib_json_set_str(obj, key, value);
}

int ib_image_config_args_escaped(const ib_image_config *c)
{
	json_t *cfg = json_object_get(c->root, "config");
	return json_is_true(json_object_get(cfg, "ArgsEscaped"));
}

int ib_image_config_set_args_escaped(ib_image_config *c, int escaped)
{
	json_t *obj = inner(c, 1);
	if (!obj)
		return ib_error_oom();
	if (!escaped) {
		json_object_del(obj, "ArgsEscaped");
		return 0;
	}
	return ib_json_set_new(obj, "ArgsEscaped", json_true());
}

int ib_image_config_set_created_now(ib_image_config *c)
{
	ib_buf b = IB_BUF_INIT;
	int rc = ib_store__timestamp(&b, -1);
	if (rc == 0)
		rc = ib_image_config_set(c, IB_CONFIG_CREATED, b.ptr);
	ib_buf_dispose(&b);
	return rc;
}

int ib_image_config_set_created_at(ib_image_config *c, int64_t unix_seconds)
{
	if (unix_seconds < 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "created time %lld is before 1970",
				     (long long)unix_seconds);
	ib_buf b = IB_BUF_INIT;
	int rc = ib_store__timestamp(&b, unix_seconds);
	if (rc == 0)
		rc = ib_image_config_set(c, IB_CONFIG_CREATED, b.ptr);
	ib_buf_dispose(&b);
	return rc;
}

/* ---- lists ---- */

static const char *list_key(ib_config_list which, int *is_set)
{
	*is_set = 0;
	switch (which) {
	case IB_CONFIG_ENV: return "Env";
	case IB_CONFIG_CMD: return "Cmd";
	case IB_CONFIG_ENTRYPOINT: return "Entrypoint";
	case IB_CONFIG_SHELL: return "Shell";
	case IB_CONFIG_ONBUILD: return "OnBuild";
	case IB_CONFIG_HEALTHCHECK_TEST: return "Test";
	case IB_CONFIG_EXPOSED_PORTS: *is_set = 1; return "ExposedPorts";
	case IB_CONFIG_VOLUMES: *is_set = 1; return "Volumes";
	default: return NULL;
	}
}

static json_t *list_parent(const ib_image_config *c, ib_config_list which, int create)
{
	json_t *cfg = inner(c, create);
	if (!cfg || which != IB_CONFIG_HEALTHCHECK_TEST)
		return cfg;
	json_t *hc = json_object_get(cfg, "Healthcheck");
	if (json_is_object(hc) || !create)
		return json_is_object(hc) ? hc : NULL;
	hc = json_object();
	if (!hc || json_object_set_new(cfg, "Healthcheck", hc) != 0)
		return NULL;
	return hc;
}

static json_t *list_value(const ib_image_config *c, ib_config_list which, int *is_set)
{
	const char *key = list_key(which, is_set);
	json_t *parent = key ? list_parent(c, which, 0) : NULL;
	json_t *v = parent ? json_object_get(parent, key) : NULL;
	if (*is_set ? !json_is_object(v) : !json_is_array(v))
		return NULL;
	return v;
}

int ib_image_config_list_is_set(const ib_image_config *c, ib_config_list which)
{
	int is_set;
	return list_value(c, which, &is_set) != NULL;
}

size_t ib_image_config_list_count(const ib_image_config *c, ib_config_list which)
{
	int is_set;
	json_t *v = list_value(c, which, &is_set);
	if (!v)
		return 0;
	return is_set ? json_object_size(v) : json_array_size(v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The i-th key of an object in sorted order. */
static const char *sorted_key(json_t *obj, size_t i)
{
	size_t n = json_object_size(obj);
	if (i >= n)
		return NULL;
	const char **keys = ib_calloc(n, sizeof *keys);
	if (!keys)
		return NULL;
	size_t k = 0;
	const char *key;
	json_t *val;
	json_object_foreach(obj, key, val) {
		(void)val;
		keys[k++] = key;
	}
	qsort(keys, n, sizeof *keys, cmp_str);
	const char *r = keys[i];
	free(keys);
	return r;
}

const char *ib_image_config_list_get(const ib_image_config *c, ib_config_list which, size_t i)
{
	int is_set;
	json_t *v = list_value(c, which, &is_set);
	if (!v)
		return NULL;
	if (is_set)
		return sorted_key(v, i);
	json_t *item = json_array_get(v, i);
	return json_is_string(item) ? json_string_value(item) : NULL;
}

int ib_image_config_list_set(ib_image_config *c, ib_config_list which, const char *const *items, size_t n)
{
	int is_set;
	const char *key = list_key(which, &is_set);
	if (!key)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "unknown config list field %d", (int)which);
	json_t *parent = list_parent(c, which, 1);
	if (!parent)
		return ib_error_oom();
	if (!items) {
		json_object_del(parent, key);
		return 0;
	}
	json_t *v = is_set ? json_object() : json_array();
	if (!v)
		return ib_error_oom();
	for (size_t i = 0; i < n; i++) {
		int r = is_set ? json_object_set_new(v, items[i], json_object())
			       : json_array_append_new(v, json_string(items[i]));
		if (r != 0) {
			json_decref(v);
			return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "config %s: invalid item `%s`", key, items[i]);
		}
	}
	return ib_json_set_new(parent, key, v);
}

int ib_image_config_list_add(ib_image_config *c, ib_config_list which, const char *item)
{
	int is_set;
	const char *key = list_key(which, &is_set);
	if (!key)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "unknown config list field %d", (int)which);
	json_t *v = list_value(c, which, &is_set);
	if (!v) {
		int rc = ib_image_config_list_set(c, which, &item, 1);
		return rc;
	}
	int r = is_set ? (json_object_get(v, item) ? 0 : json_object_set_new(v, item, json_object()))
		       : json_array_append_new(v, json_string(item));
	if (r != 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "config %s: invalid item `%s`", key, item);
	return 0;
}

/* ---- env ---- */

static size_t env_find(json_t *env, const char *key)
{
	size_t klen = strlen(key), i;
	json_t *e;
	json_array_foreach(env, i, e) {
		const char *s = json_string_value(e);
		if (s && !strncmp(s, key, klen) && (s[klen] == '=' || s[klen] == '\0'))
			return i;
	}
	return (size_t)-1;
}

const char *ib_image_config_env_get(const ib_image_config *c, const char *key)
{
	int is_set;
	json_t *env = list_value(c, IB_CONFIG_ENV, &is_set);
	size_t i = env ? env_find(env, key) : (size_t)-1;
	if (i == (size_t)-1)
		return NULL;
	const char *s = json_string_value(json_array_get(env, i));
	const char *eq = strchr(s, '=');
	return eq ? eq + 1 : "";
}

int ib_image_config_env_set(ib_image_config *c, const char *key, const char *value)
{
	if (!*key || strchr(key, '='))
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "invalid environment variable name `%s`", key);
	char *kv = ib_sprintf("%s=%s", key, value ? value : "");
	if (!kv)
		return IB_ERROR;
	int is_set, rc = 0;
	json_t *env = list_value(c, IB_CONFIG_ENV, &is_set);
	size_t i = env ? env_find(env, key) : (size_t)-1;
	if (i == (size_t)-1)
		rc = ib_image_config_list_add(c, IB_CONFIG_ENV, kv);
	else if (json_array_set_new(env, i, json_string(kv)) != 0)
		rc = ib_error_oom();
	free(kv);
	return rc;
}

/* ---- labels ---- */

static json_t *labels(const ib_image_config *c, int create)
{
	json_t *cfg = inner(c, create);
	json_t *l = cfg ? json_object_get(cfg, "Labels") : NULL;
	if (json_is_object(l) || !create)
		return json_is_object(l) ? l : NULL;
	l = json_object();
	if (!l || json_object_set_new(cfg, "Labels", l) != 0)
		return NULL;
	return l;
}

size_t ib_image_config_label_count(const ib_image_config *c)
{
	json_t *l = labels(c, 0);
	return l ? json_object_size(l) : 0;
}

int ib_image_config_label_at(const char **key, const char **value, const ib_image_config *c, size_t i)
{
	json_t *l = labels(c, 0);
	const char *k = l ? sorted_key(l, i) : NULL;
	if (!k)
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "no label %zu", i);
	*key = k;
	*value = ib_json_str(l, k);
	if (!*value)
		*value = "";
	return 0;
}

const char *ib_image_config_label_get(const ib_image_config *c, const char *key)
{
	json_t *l = labels(c, 0);
	return l ? ib_json_str(l, key) : NULL;
}

int ib_image_config_label_set(ib_image_config *c, const char *key, const char *value)
{
	json_t *l = labels(c, value != NULL);
	if (!value) {
		if (l)
			json_object_del(l, key);
		return 0;
	}
	if (!l)
		return ib_error_oom();
	return ib_json_set_str(l, key, value);
}

/* ---- healthcheck ---- */

static int64_t int_member(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

int ib_image_config_healthcheck(ib_healthcheck *out, const ib_image_config *c)
{
	json_t *cfg = inner(c, 0);
	json_t *hc = cfg ? json_object_get(cfg, "Healthcheck") : NULL;
	if (out && out->version != IB_HEALTHCHECK_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_healthcheck version %u is not supported",
				     out->version);
	if (!json_is_object(hc))
		return 0;
	if (out) {
		out->interval = int_member(hc, "Interval");
		out->timeout = int_member(hc, "Timeout");
		out->start_period = int_member(hc, "StartPeriod");
		out->start_interval = int_member(hc, "StartInterval");
		out->retries = (int)int_member(hc, "Retries");
	}
	return 1;
}

int ib_image_config_set_healthcheck(ib_image_config *c, const char *const *test, size_t n,
				    const ib_healthcheck *t)
{
	json_t *cfg = inner(c, 1);
	if (!cfg)
		return ib_error_oom();
	if (!test) {
		json_object_del(cfg, "Healthcheck");
		return 0;
	}
	json_t *hc = json_object();
	if (!hc || json_object_set_new(cfg, "Healthcheck", hc) != 0)
		return ib_error_oom();
	if (t && t->version != IB_HEALTHCHECK_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_healthcheck version %u is not supported",
				     t->version);
	int rc = ib_image_config_list_set(c, IB_CONFIG_HEALTHCHECK_TEST, test, n);
	if (rc < 0 || !t)
		return rc;
	struct { const char *k; int64_t v; } f[] = {
		{ "Interval", t->interval }, { "Timeout", t->timeout }, { "StartPeriod", t->start_period },
		{ "StartInterval", t->start_interval }, { "Retries", t->retries },
	};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (f[i].v && (rc = ib_json_set_new(hc, f[i].k, json_integer(f[i].v))) < 0)
			return rc;
	return 0;
}

/* ---- rootfs.diff_ids ---- */

static json_t *diff_ids(const ib_image_config *c, int create)
{
	json_t *rootfs = json_object_get(c->root, "rootfs");
	if (!json_is_object(rootfs)) {
		if (!create)
			return NULL;
		rootfs = json_pack("{s:s,s:[]}", "type", "layers", "diff_ids");
		if (!rootfs || json_object_set_new(c->root, "rootfs", rootfs) != 0)
			return NULL;
	}
	json_t *ids = json_object_get(rootfs, "diff_ids");
	if (!json_is_array(ids)) {
		if (!create)
			return NULL;
		ids = json_array();
		if (!ids || json_object_set_new(rootfs, "diff_ids", ids) != 0)
			return NULL;
	}
	return ids;
}

size_t ib_image_config_diff_id_count(const ib_image_config *c)
{
	json_t *ids = diff_ids(c, 0);
	return ids ? json_array_size(ids) : 0;
}

int ib_image_config_diff_id(ib_digest *out, const ib_image_config *c, size_t i)
{
	json_t *ids = diff_ids(c, 0);
	json_t *v = ids ? json_array_get(ids, i) : NULL;
	if (!v)
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "image config has no diff_id %zu", i);
	if (!json_is_string(v) || ib_digest_parse(out, json_string_value(v)) < 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "image config: rootfs.diff_ids[%zu] is not a sha256 digest",
				     i);
	return 0;
}

int ib_image_config_diff_id_add(ib_image_config *c, const ib_digest *d)
{
	json_t *ids = diff_ids(c, 1);
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, d);
	if (!ids || json_array_append_new(ids, json_string(ds)) != 0)
		return ib_error_oom();
	return 0;
}

/* ---- history ---- */

size_t ib_image_config_history_count(const ib_image_config *c)
{
	json_t *h = json_object_get(c->root, "history");
	return json_is_array(h) ? json_array_size(h) : 0;
}

int ib_image_config_history_get(ib_history_entry *out, const ib_image_config *c, size_t i)
{
	json_t *h = json_object_get(c->root, "history");
	json_t *e = json_is_array(h) ? json_array_get(h, i) : NULL;
	if (!out || out->version != IB_HISTORY_ENTRY_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_history_entry version %u is not supported",
				     out ? out->version : 0);
	if (!json_is_object(e))
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "image config has no history entry %zu", i);
	out->created = ib_json_str(e, "created");
	out->created_by = ib_json_str(e, "created_by");
	out->author = ib_json_str(e, "author");
	out->comment = ib_json_str(e, "comment");
	out->empty_layer = json_is_true(json_object_get(e, "empty_layer"));
	return 0;
}

int ib_image_config_history_add(ib_image_config *c, const ib_history_entry *in)
{
	if (!in || in->version != IB_HISTORY_ENTRY_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_history_entry version %u is not supported",
				     in ? in->version : 0);
	json_t *h = json_object_get(c->root, "history");
	if (!json_is_array(h)) {
		h = json_array();
		if (!h || json_object_set_new(c->root, "history", h) != 0)
			return ib_error_oom();
	}
	json_t *e = json_object();
	if (!e)
		return ib_error_oom();
	int rc = 0;
	if (in->created && rc == 0)
		rc = ib_json_set_str(e, "created", in->created);
	if (in->created_by && rc == 0)
		rc = ib_json_set_str(e, "created_by", in->created_by);
	if (in->author && rc == 0)
		rc = ib_json_set_str(e, "author", in->author);
	if (in->comment && rc == 0)
		rc = ib_json_set_str(e, "comment", in->comment);
	if (in->empty_layer && rc == 0)
		rc = ib_json_set_new(e, "empty_layer", json_true());
	if (rc == 0 && json_array_append(h, e) != 0)
		rc = ib_error_oom();
	json_decref(e);
	return rc;
}
