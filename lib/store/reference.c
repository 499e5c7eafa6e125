/*
 * Image references, parsed and normalised as Docker's
 * github.com/distribution/reference ParseNormalizedNamed + TagNameOnly:
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [domain "/"] path-component ["/" path-component]*   (<= 255 chars)
 *   domain    := host [":" port]; host := domain-component ("." domain-component)* | "[" ipv6 "]"
 *   path-component := [a-z0-9]+ (separator [a-z0-9]+)*; separator := "." | "_" | "__" | "-"+
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *
 * The first component is a domain when it contains "." or ":", is
 * "localhost", or has upper case; otherwise the domain is docker.io, and a
 * one-component name there gets "library/". No tag and no digest: ":latest".
 */
#include "store/internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 255

struct ib_reference {
	char *domain;
	char *path;
	char *repository;
	char *tag;
	int tag_given;
	int has_digest;
	ib_digest digest;
	char *name;
	char *familiar;
};

static int invalid(const char *input, const char *why)
{
	if (why)
		return ib_error_setc(IB_ESYNTAX, IB_LAYER_STORE, "invalid reference format `%s`: %s", input, why);
	return ib_error_setc(IB_ESYNTAX, IB_LAYER_STORE, "invalid reference format `%s`", input);
}

static int is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_alnum(char c)
{
	return isalnum((unsigned char)c);
}

static int valid_domain_component(const char *s, size_t n)
{
	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return 0;
	return 1;
}

static int valid_domain(const char *s)
{
	const char *host_end;
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close || close == s + 1)
			return 0;
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':')
				return 0;
		host_end = close + 1;
		if (*host_end && *host_end != ':')
			return 0;
	} else {
		host_end = strchr(s, ':');
		if (!host_end)
			host_end = s + strlen(s);
		const char *p = s;
		while (p <= host_end) {
			const char *dot = memchr(p, '.', (size_t)(host_end - p));
			const char *end = dot ? dot : host_end;
			if (!valid_domain_component(p, (size_t)(end - p)))
				return 0;
			if (!dot)
				break;
			p = dot + 1;
		}
	}
	if (*host_end == ':') {
		const char *port = host_end + 1;
		if (!*port)
			return 0;
		for (const char *p = port; *p; p++)
			if (!isdigit((unsigned char)*p))
				return 0;
	}
	return 1;
}

static int valid_path_component(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !is_lower_alnum(s[0]))
		return 0;
	while (i < n) {
		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == n)
			return 1;
		/* a separator, then more alpha-numerics */
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < n && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return 0;
		}
		if (i == n || !is_lower_alnum(s[i]))
			return 0;
	}
	return 1;
}

static int valid_path(const char *s)
{
	const char *p = s;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (!valid_path_component(p, n))
			return 0;
		if (!slash)
			return 1;
		p = slash + 1;
	}
}

static int valid_tag(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128)
		return 0;
	if (!is_alnum(t[0]) && t[0] != '_')
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum(t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
			return 0;
	return 1;
}

static int is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static int parse_digest(ib_reference *r, const char *input, const char *ds)
{
	const char *colon = strchr(ds, ':');
	if (!colon || colon == ds || !colon[1])
		return invalid(input, "invalid digest format");
	for (const char *p = ds; p < colon; p++)
		if (!is_lower_alnum(*p) && !strchr("+._-", *p))
			return invalid(input, "invalid digest format");
	if ((size_t)(colon - ds) != 6 || strncmp(ds, "sha256", 6) != 0) {
		return ib_error_setc(IB_ESYNTAX, IB_LAYER_STORE, "invalid reference format `%s`: unsupported digest algorithm",
				     input);
	}
	if (!is_hex64(colon + 1))
		return invalid(input, strlen(colon + 1) != 64 ? "invalid checksum digest length"
							       : "invalid checksum digest format");
	if (ib_digest_parse(&r->digest, ds) < 0)
		return invalid(input, "invalid digest format");
	r->has_digest = 1;
	return 0;
}

static int has_upper(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (isupper((unsigned char)s[i]))
			return 1;
	return 0;
}

/* Split "NAME[:TAG]" (NAME without domain) into path and tag. */
static int split_tag(ib_reference *r, const char *input, const char *remainder)
{
	const char *colon = strchr(remainder, ':');
	size_t plen = colon ? (size_t)(colon - remainder) : strlen(remainder);
	if (has_upper(remainder, plen)) {
		char *rn = ib_strndup(remainder, plen);
		int rc = rn ? ib_error_setc(IB_ESYNTAX, IB_LAYER_STORE,
					    "invalid reference format `%s`: repository name (%s) must be lowercase",
					    input, rn)
			    : IB_ERROR;
		free(rn);
		return rc;
	}
	r->path = ib_strndup(remainder, plen);
	if (!r->path)
		return IB_ERROR;
	if (colon) {
		r->tag = ib_strdup(colon + 1);
		if (!r->tag)
			return IB_ERROR;
		if (!valid_tag(r->tag))
			return invalid(input, "invalid tag");
		r->tag_given = 1;
	}
	if (!valid_path(r->path))
		return invalid(input, NULL);
	return 0;
}

static int split_domain(ib_reference *r, const char *input, const char *name_tag, const char **remainder)
{
	const char *slash = strchr(name_tag, '/');
	size_t n = slash ? (size_t)(slash - name_tag) : 0;
	int is_domain = slash && (memchr(name_tag, '.', n) || memchr(name_tag, ':', n) ||
				  (n == 9 && !strncmp(name_tag, "localhost", 9)) || has_upper(name_tag, n));
	if (!is_domain) {
		r->domain = ib_strdup("docker.io");
		*remainder = name_tag;
	} else {
		r->domain = ib_strndup(name_tag, n);
		*remainder = slash + 1;
		if (r->domain && !strcmp(r->domain, "index.docker.io")) {
			free(r->domain);
			r->domain = ib_strdup("docker.io");
		}
	}
	if (!r->domain)
		return IB_ERROR;
	if (!valid_domain(r->domain))
		return invalid(input, NULL);
	return 0;
}

static int build_strings(ib_reference *r, const char *input)
{
	char ds[IB_DIGEST_STRLEN] = "";
	if (r->has_digest)
		ib_digest_fmt(ds, &r->digest);
	if (!r->tag && !r->has_digest && !(r->tag = ib_strdup("latest")))
		return IB_ERROR;
	r->repository = ib_sprintf("%s/%s", r->domain, r->path);
	if (!r->repository)
		return IB_ERROR;
	if (strlen(r->repository) > NAME_MAX_LEN)
		return invalid(input, "repository name must not be more than 255 characters");
	r->name = ib_sprintf("%s%s%s%s%s", r->repository, r->tag ? ":" : "", r->tag ? r->tag : "",
			     r->has_digest ? "@" : "", ds);
	const char *fam = r->repository;
	if (!strcmp(r->domain, "docker.io")) {
		fam = r->path;
		if (!strncmp(fam, "library/", 8) && !strchr(fam + 8, '/'))
			fam += 8;
	}
	r->familiar = ib_sprintf("%s%s%s%s%s", fam, r->tag ? ":" : "", r->tag ? r->tag : "",
				 r->has_digest ? "@" : "", ds);
	return r->name && r->familiar ? 0 : IB_ERROR;
}

int ib_reference_parse(ib_reference **out, const char *str)
{
	if (!str || !*str)
		return ib_error_setc(IB_ESYNTAX, IB_LAYER_STORE,
				     "invalid reference format: repository name must have at least one component");
	if (is_hex64(str))
		return ib_error_setc(IB_ESYNTAX, IB_LAYER_STORE,
				     "invalid repository name (%s), cannot specify 64-byte hexadecimal strings", str);
	ib_reference *r = ib_calloc(1, sizeof *r);
	char *name_tag = NULL;
	if (!r)
		return IB_ERROR;
	int rc;
	const char *at = strchr(str, '@');
	name_tag = at ? ib_strndup(str, (size_t)(at - str)) : ib_strdup(str);
	if (!name_tag) {
		rc = IB_ERROR;
		goto fail;
	}
	if (at && (rc = parse_digest(r, str, at + 1)) < 0)
		goto fail;
	if (!*name_tag) {
		rc = invalid(str, "repository name must have at least one component");
		goto fail;
	}
	const char *remainder;
	if ((rc = split_domain(r, str, name_tag, &remainder)) < 0)
		goto fail;
	char *full_remainder = NULL;
	if (!strcmp(r->domain, "docker.io") && !strchr(remainder, '/')) {
		full_remainder = ib_sprintf("library/%s", remainder);
		if (!full_remainder) {
			rc = IB_ERROR;
			goto fail;
		}
		remainder = full_remainder;
	}
	rc = split_tag(r, str, remainder);
	free(full_remainder);
	if (rc < 0 || (rc = build_strings(r, str)) < 0)
		goto fail;
	free(name_tag);
	*out = r;
	return 0;
fail:
	free(name_tag);
	ib_reference_free(r);
	return rc;
}

void ib_reference_free(ib_reference *r)
{
	if (!r)
		return;
	free(r->domain);
	free(r->path);
	free(r->repository);
	free(r->tag);
	free(r->name);
	free(r->familiar);
	free(r);
}

const char *ib_reference_domain(const ib_reference *r) { return r->domain; }
const char *ib_reference_path(const ib_reference *r) { return r->path; }
const char *ib_reference_repository(const ib_reference *r) { return r->repository; }
const char *ib_reference_tag(const ib_reference *r) { return r->tag; }
int ib_reference_tag_given(const ib_reference *r) { return r->tag_given; }
const ib_digest *ib_reference_digest(const ib_reference *r) { return r->has_digest ? &r->digest : NULL; }
const char *ib_reference_name(const ib_reference *r) { return r->name; }
const char *ib_reference_familiar(const ib_reference *r) { return r->familiar; }

int ib_reference_normalize(ib_buf *out, const char *str)
{
	ib_reference *r;
	int rc = ib_reference_parse(&r, str);
	if (rc < 0)
		return rc;
	ib_buf_clear(out);
	rc = ib_buf_puts(out, r->name);
	ib_reference_free(r);
	return rc;
}
