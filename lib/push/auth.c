/*
 * Names of registries, WWW-Authenticate challenges and Docker's config file
 * ({"auths": {"<host>": {"auth": base64("user:pass")}}}).
 */
#include "push/internal.h"
#include "util/fs.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ---- */

const char *ib_push__api_host(const char *domain)
{
	if (!strcmp(domain, "docker.io") || !strcmp(domain, "index.docker.io"))
		return "registry-1.docker.io";
	return domain;
}

const char *ib_push__config_key(const char *domain)
{
	if (!strcmp(domain, "docker.io") || !strcmp(domain, "index.docker.io") || !strcmp(domain, "registry-1.docker.io"))
		return "https://index.docker.io/v1/";
	return domain;
}

/* The host of a domain, without its port (and brackets of an IPv6 address). */
static void host_only(char *out, size_t n, const char *domain)
{
	if (domain[0] == '[') {
		const char *end = strchr(domain, ']');
		size_t len = end ? (size_t)(end - domain - 1) : strlen(domain + 1);
		snprintf(out, n, "%.*s", (int)len, domain + 1);
		return;
	}
	const char *colon = strrchr(domain, ':');
	size_t len = colon ? (size_t)(colon - domain) : strlen(domain);
	snprintf(out, n, "%.*s", (int)len, domain);
}

int ib_push__default_insecure(const char *domain)
{
	char host[256];
	host_only(host, sizeof host, domain);
	if (!strcmp(host, "localhost") || !strcmp(host, "::1"))
		return 1;
	struct in_addr a;
	if (inet_pton(AF_INET, host, &a) == 1)
		return (ntohl(a.s_addr) >> 24) == 127;
	return 0;
}

/* ---- WWW-Authenticate ---- */

void ib_push__challenge_dispose(ib_push__challenge *c)
{
	free(c->scheme);
	free(c->realm);
	free(c->service);
	free(c->scope);
	memset(c, 0, sizeof *c);
}

/* A quoted-string or token at *p; a new string. */
static char *param_value(const char **p)
{
	const char *s = *p;
	ib_buf b = IB_BUF_INIT;
	if (*s == '"') {
		for (s++; *s && *s != '"'; s++) {
			if (*s == '\\' && s[1])
				s++;
			if (ib_buf_putc(&b, *s) < 0)
				goto fail;
		}
		if (*s == '"')
			s++;
	} else {
		while (*s && *s != ',' && !isspace((unsigned char)*s))
			if (ib_buf_putc(&b, *s++) < 0)
				goto fail;
	}
	*p = s;
	if (!b.ptr && ib_buf_puts(&b, "") < 0)
		goto fail;
	return ib_buf_detach(&b);
fail:
	ib_buf_dispose(&b);
	return NULL;
}

int ib_push__challenge_parse(ib_push__challenge *out, const char *header)
{
	memset(out, 0, sizeof *out);
	const char *p = header;
	while (isspace((unsigned char)*p))
		p++;
	const char *start = p;
	while (*p && !isspace((unsigned char)*p))
		p++;
	if (p == start)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "empty WWW-Authenticate challenge");
	if (!(out->scheme = ib_strndup(start, (size_t)(p - start))))
		return IB_ERROR;
	while (*p) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		const char *k = p;
		while (*p && *p != '=' && *p != ',' && !isspace((unsigned char)*p))
			p++;
		size_t klen = (size_t)(p - k);
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=') {
			ib_push__challenge_dispose(out);
			return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "WWW-Authenticate `%s`: expected key=value", header);
		}
		p++;
		while (isspace((unsigned char)*p))
			p++;
		char *v = param_value(&p);
		if (!v) {
			ib_push__challenge_dispose(out);
			return IB_ERROR;
		}
		char **slot = NULL;
		if (klen == 5 && !strncasecmp(k, "realm", 5))
			slot = &out->realm;
		else if (klen == 7 && !strncasecmp(k, "service", 7))
			slot = &out->service;
		else if (klen == 5 && !strncasecmp(k, "scope", 5))
			slot = &out->scope;
		if (slot) {
			free(*slot);
			*slot = v;
		} else {
			free(v);
		}
	}
	if (!strcasecmp(out->scheme, "Bearer") && (!out->realm || !*out->realm)) {
		ib_push__challenge_dispose(out);
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "WWW-Authenticate `%s`: a Bearer challenge without a realm",
				     header);
	}
	return 0;
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int ib_push__base64(ib_buf *out, const void *data, size_t len)
{
	const unsigned char *s = data;
	ib_buf_clear(out);
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < len ? (unsigned)s[i + 1] << 8 : 0) |
			     (i + 2 < len ? s[i + 2] : 0);
		char q[4] = { b64[v >> 18 & 63], b64[v >> 12 & 63], i + 1 < len ? b64[v >> 6 & 63] : '=',
			      i + 2 < len ? b64[v & 63] : '=' };
		if (ib_buf_put(out, q, 4) < 0)
			return IB_ERROR;
	}
	return ib_buf_puts(out, "");
}

int ib_push__base64_decode(ib_buf *out, const char *text)
{
	unsigned v = 0;
	int bits = 0;
	ib_buf_clear(out);
	for (const char *p = text; *p && *p != '='; p++) {
		const char *c = strchr(b64, *p);
		if (!c || !*p) {
			if (isspace((unsigned char)*p))
				continue;
			return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "invalid base64 character `%c`", *p);
		}
		v = v << 6 | (unsigned)(c - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (ib_buf_putc(out, (char)(v >> bits & 0xff)) < 0)
				return IB_ERROR;
		}
	}
	return ib_buf_puts(out, "");
}

/* ---- Docker's config file ---- */

int ib_push__config_path(ib_buf *out, const char *given)
{
	ib_buf_clear(out);
	if (given && *given)
		return ib_buf_puts(out, given);
	const char *dir = getenv("DOCKER_CONFIG");
	if (dir && *dir)
		return ib_buf_printf(out, "%s/config.json", dir);
	const char *home = getenv("HOME");
	if (!home || !*home)
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_PUSH, "no Docker config file: neither DOCKER_CONFIG nor HOME is set");
	return ib_buf_printf(out, "%s/.docker/config.json", home);
}

/* Does the config.json key `key` name `domain`? Keys may carry a scheme and a path. */
static int key_matches(const char *key, const char *domain)
{
	const char *k = key;
	if (!strncmp(k, "https://", 8))
		k += 8;
	else if (!strncmp(k, "http://", 7))
		k += 7;
	size_t len = strcspn(k, "/");
	const char *want = ib_push__config_key(domain);
	if (!strcmp(key, want))
		return 1;
	if (strncmp(want, "https://", 8) == 0) /* docker.io: any of its names */
		return (len == 9 && !strncmp(k, "docker.io", 9)) || (len == 15 && !strncmp(k, "index.docker.io", 15)) ||
		       (len == 20 && !strncmp(k, "registry-1.docker.io", 20));
	return strlen(domain) == len && !strncmp(k, domain, len);
}

static int load_config(json_t **out, const char *path)
{
	int rc = ib_json_load_file(out, path);
	if (rc == 0 && !json_is_object(*out)) {
		json_decref(*out);
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "`%s`: not a JSON object", path);
	}
	return rc;
}

/* The credential helper `j` names for `domain`: credHelpers, else (Docker's config) credsStore; NULL: none. */
const char *ib_push__config_helper(const json_t *j, const char *domain, int docker)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)json_object_get(j, "credHelpers"), key, v) {
		if (key_matches(key, domain) && json_is_string(v) && *json_string_value(v))
			return json_string_value(v);
	}
	const char *store = docker ? ib_json_str(j, "credsStore") : NULL;
	return store && *store ? store : NULL;
}

/* An auths entry's credentials into `out`; IB_ENOTFOUND when it has none. */
static int entry_decode(ib_push__creds *out, const json_t *v, const char *path, const char *key)
{
	const char *auth = ib_json_str(v, "auth");
	const char *u = ib_json_str(v, "username"), *p = ib_json_str(v, "password");
	const char *tok = ib_json_str(v, "identitytoken");
	ib_buf dec = IB_BUF_INIT;
	int rc = IB_ENOTFOUND;
	if (auth && *auth) {
		if ((rc = ib_push__base64_decode(&dec, auth)) < 0) {
			ib_error_prefix("`%s`: auths.%s.auth", path, key);
			ib_buf_dispose(&dec);
			return rc;
		}
		char *colon = strchr(dec.ptr, ':');
		if (!colon) {
			ib_buf_dispose(&dec);
			return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "`%s`: auths.%s.auth is not base64(user:password)", path,
					     key);
		}
		*colon = 0;
		u = dec.ptr;
		p = colon + 1;
		rc = IB_ENOTFOUND;
	}
	if (tok && *tok) { /* docker: an identity token replaces the password */
		out->identity_token = ib_strdup(tok);
		out->user = u ? ib_strdup(u) : NULL;
		rc = out->identity_token && (!u || out->user) ? 0 : IB_ERROR;
	} else if (u && p && (*u || *p)) {
		out->user = ib_strdup(u);
		out->pass = ib_strdup(p);
		rc = out->user && out->pass ? 0 : IB_ERROR;
	}
	if (dec.ptr)
		memset(dec.ptr, 0, dec.size);
	ib_buf_dispose(&dec);
	return rc;
}

/* A key of containers' auth.json scoped to a namespace: "quay.io/org" (no scheme, a path). */
static int namespaced_key(const char *key)
{
	return strchr(key, '/') && !strstr(key, "://");
}

int ib_push__file_credentials(ib_push__creds *out, const char *path, const char *domain, const char *repo,
			      unsigned int flags)
{
	int docker = (flags & IB_PUSH_CREDS_DOCKER) != 0;
	json_t *j;
	memset(out, 0, sizeof *out);
	int rc = load_config(&j, path);
	if (rc < 0)
		return rc;
	const char *helper = flags & IB_PUSH_CREDS_NO_HELPERS ? NULL : ib_push__config_helper(j, domain, docker);
	if (helper) {
		rc = ib_push__helper_get(out, helper, ib_push__config_key(domain));
		if (rc < 0 && rc != IB_ENOTFOUND)
			ib_error_prefix("`%s`", path);
		json_decref(j);
		return rc;
	}
	const char *key;
	json_t *v, *auths = json_object_get(j, "auths");
	rc = IB_ENOTFOUND;
	/*
	 * containers' auth.json: a key "host/namespace" applies to the
	 * repositories under it, the longest first (podman); Docker's config
	 * knows hosts only (docker strips a key's path).
	 */
	if (!docker && repo && *repo) {
		char *full = ib_sprintf("%s/%s", domain, repo);
		const char *best_key = NULL;
		json_t *best = NULL;
		size_t best_len = 0;
		json_object_foreach(auths, key, v) {
			size_t n = strlen(key);
			if (!namespaced_key(key) || !full || strncmp(full, key, n) || (full[n] && full[n] != '/'))
				continue;
			ib_push__creds probe = { 0 };
			int prc = entry_decode(&probe, v, path, key);
			ib_push__creds_dispose(&probe);
			if (prc == IB_ENOTFOUND) {
				ib_error_clear();
				continue;
			}
			if (n > best_len) {
				best_len = n;
				best_key = key;
				best = v;
			}
		}
		if (!full)
			rc = IB_ERROR;
		else if (best)
			rc = entry_decode(out, best, path, best_key);
		free(full);
	}
	if (rc == IB_ENOTFOUND) {
		json_object_foreach(auths, key, v) {
			if (!key_matches(key, domain) || (!docker && namespaced_key(key)))
				continue;
			if ((rc = entry_decode(out, v, path, key)) != IB_ENOTFOUND)
				break;
		}
	}
	if (rc == IB_ENOTFOUND)
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_PUSH, "`%s`: no credentials for %s", path, domain);
	else if (rc == 0)
		ib_error_clear();
	if (rc < 0)
		ib_push__creds_dispose(out);
	json_decref(j);
	return rc;
}

int ib_push__config_get(char **user, char **pass, const char *path, const char *domain)
{
	ib_push__creds c;
	*user = *pass = NULL;
	int rc = ib_push__file_credentials(&c, path, domain, NULL, IB_PUSH_CREDS_DOCKER | IB_PUSH_CREDS_NO_HELPERS);
	if (rc == 0 && c.identity_token) {
		ib_push__creds_dispose(&c);
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_PUSH, "`%s`: %s has an identity token, not a password", path, domain);
	}
	if (rc == 0) {
		*user = c.user;
		*pass = c.pass;
	}
	return rc;
}

int ib_push__config_set(const char *path, const char *domain, const char *user, const char *pass)
{
	return ib_push__config_put(path, domain, user, pass, 0);
}

int ib_push__config_put(const char *path, const char *domain, const char *user, const char *pass, unsigned int flags)
{
	json_t *j = NULL;
	int rc = load_config(&j, path);
	if (rc == IB_ENOTFOUND) {
		ib_error_clear();
		if (!user && !(flags & IB_PUSH_CONFIG_EMPTY))
			return ib_error_setc(IB_ENOTFOUND, IB_LAYER_PUSH, "not logged in to %s", domain);
		j = json_object();
		rc = j ? 0 : ib_error_oom();
	}
	if (rc < 0)
		return rc;
	json_t *auths = json_object_get(j, "auths");
	if (!json_is_object(auths)) {
		auths = json_object();
		if (!auths || json_object_set_new(j, "auths", auths) < 0) {
			json_decref(j);
			return ib_error_oom();
		}
	}
	/* drop every key that names this registry, then add ours */
	int removed = 0;
	const char *key;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(auths, tmp, key, v) {
		if (key_matches(key, domain)) {
			json_object_del(auths, key);
			removed = 1;
		}
	}
	ib_buf b = IB_BUF_INIT, enc = IB_BUF_INIT, dir = IB_BUF_INIT;
	if (!user && !removed && !(flags & IB_PUSH_CONFIG_EMPTY)) {
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_PUSH, "not logged in to %s", domain);
		goto out;
	}
	if (user) {
		if ((rc = ib_buf_printf(&b, "%s:%s", user, pass ? pass : "")) < 0 ||
		    (rc = ib_push__base64(&enc, b.ptr, b.size)) < 0)
			goto out;
		json_t *e = json_pack("{s:s}", "auth", enc.ptr);
		if (!e || json_object_set_new(auths, ib_push__config_key(domain), e) < 0) {
			rc = ib_error_oom();
			goto out;
		}
	} else if (flags & IB_PUSH_CONFIG_EMPTY) {
		json_t *e = json_object();
		if (!e || json_object_set_new(auths, ib_push__config_key(domain), e) < 0) {
			rc = ib_error_oom();
			goto out;
		}
	}
	ib_buf_clear(&b);
	const char *slash = strrchr(path, '/');
	if (slash && slash != path && (rc = ib_buf_put(&dir, path, (size_t)(slash - path))) == 0 &&
	    (rc = ib_buf_puts(&dir, "")) == 0 && (rc = ib_mkdir_p(dir.ptr, 0700)) < 0)
		goto out;
	if ((rc = ib_json_dump(&b, j, IB_JSON_PRETTY | IB_JSON_SORTED)) == 0 && (rc = ib_buf_puts(&b, "\n")) == 0)
		rc = ib_atomic_write(path, b.ptr, b.size, 0600);
out:
	ib_buf_dispose(&b);
	ib_buf_dispose(&enc);
	ib_buf_dispose(&dir);
	json_decref(j);
	return rc;
}
