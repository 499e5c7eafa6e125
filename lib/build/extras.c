/*
 * The options of `docker buildx build` that are neither the Dockerfile nor
 * its context (ib_build_options version 7): --label, --annotation,
 * --add-host, --ulimit, --shm-size, --no-cache-filter, --platform, and the
 * named contexts of --build-context. Parsed and checked once, before
 * anything runs, as buildx and BuildKit's dockerui frontend parse them.
 */
#include "build/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

/* go-units' ulimitNameMapping: the names docker --ulimit takes. */
static const char *const ulimit_names[] = {
	"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
	"nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", NULL,
};

static int parse_int64(int64_t *out, const char *s, size_t len)
{
	char buf[32];
	if (!len || len >= sizeof buf)
		return -1;
	memcpy(buf, s, len);
	buf[len] = 0;
	char *end;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno || *end || end == buf)
		return -1;
	*out = v;
	return 0;
}

/* go-units ParseUlimit: "name=soft[:hard]"; -1 is unlimited. */
static int parse_ulimit(ib_rlimit *out, const char *spec)
{
	const char *eq = strchr(spec, '=');
	if (!eq)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid ulimit argument: %s", spec);
	const char *name = NULL;
	for (size_t i = 0; ulimit_names[i]; i++)
		if (strlen(ulimit_names[i]) == (size_t)(eq - spec) && !strncmp(ulimit_names[i], spec, eq - spec))
			name = ulimit_names[i];
	if (!name)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid ulimit type: %.*s", (int)(eq - spec), spec);
	const char *v = eq + 1, *colon = strchr(v, ':');
	if (colon && strchr(colon + 1, ':'))
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "too many limit value arguments - %s, can only have up to two, `soft[:hard]`", v);
	int64_t soft, hard;
	if (parse_int64(&soft, v, colon ? (size_t)(colon - v) : strlen(v)) < 0 ||
	    (colon && parse_int64(&hard, colon + 1, strlen(colon + 1)) < 0))
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid ulimit value in `%s`: not a number", spec);
	if (!colon)
		hard = soft;
	if (hard != -1 && soft > hard)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
				     "ulimit soft limit must be less than or equal to hard limit: %" PRId64 " > %" PRId64,
				     soft, hard);
	if (soft < -1 || hard < -1)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid ulimit value in `%s`: negative", spec);
	out->name = name;
	out->soft = soft == -1 ? IB_RLIM_INFINITY : (uint64_t)soft;
	out->hard = hard == -1 ? IB_RLIM_INFINITY : (uint64_t)hard;
	return 0;
}

/* buildx's --add-host: "host=ip" or "host:ip" (BuildKit lowercases the host). */
static int parse_host(ib_buf *hosts, const char *spec)
{
	const char *sep = strchr(spec, '=');
	if (!sep)
		sep = strchr(spec, ':');
	if (!sep || sep == spec)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid host %s: expected HOST:IP", spec);
	const char *ip = sep + 1;
	char addr[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(ip);
	if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']') { /* buildx takes [v6] */
		ip++;
		n -= 2;
	}
	if (n >= sizeof addr)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid host %s: not an IP address", spec);
	memcpy(addr, ip, n);
	addr[n] = 0;
	unsigned char bin[16];
	if (!strcmp(addr, "host-gateway"))
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
				     "add-host %s: host-gateway is only known to the docker daemon", spec);
	if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid IP address in add-host: %s", addr);
	/* Go's net.IP.String(): the canonical form */
	char canon[INET6_ADDRSTRLEN];
	if (inet_pton(AF_INET, addr, bin) == 1)
		inet_ntop(AF_INET, bin, canon, sizeof canon);
	else
		inet_ntop(AF_INET6, bin, canon, sizeof canon);
	ib_buf_printf(hosts, "%s\t", canon);
	for (const char *c = spec; c < sep; c++)
		ib_buf_putc(hosts, (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c));
	return ib_buf_putc(hosts, '\n');
}

/*
 * buildx's annotation syntax: "[TYPE[PLATFORM],...:]KEY=VALUE". Only the
 * manifest type (the default) exists for a single-platform image here.
 */
static int parse_annotation(ib_strlist *out, const char *spec)
{
	const char *eq = strchr(spec, '=');
	if (!eq)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid annotation %s, expected key=value", spec);
	const char *key = spec, *colon = memchr(spec, ':', eq - spec);
	if (colon) {
		/* buildx's annotationRegexp: types are [a-z-]+ with an optional [platform] */
		int typed = colon > spec;
		for (const char *c = spec; typed && c < colon; c++)
			if (!((*c >= 'a' && *c <= 'z') || *c == '-' || *c == ',' || *c == '[' || *c == ']' ||
			      *c == '/' || *c == '_' || (*c >= '0' && *c <= '9') || (*c >= 'A' && *c <= 'Z')))
				typed = 0;
		if (typed) {
			if (colon - spec != 8 || strncmp(spec, "manifest", 8))
				return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
						     "annotation %s: only the manifest type (without a platform) is "
						     "supported: a single-platform image has no index", spec);
			key = colon + 1;
		}
	}
	if (key == eq)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid annotation %s: empty key", spec);
	return ib_strlist_add(out, key);
}

/* containerd's platforms.Normalize of this host: os/arch[/variant]. */
static void host_platform(char *buf, size_t n)
{
	struct utsname u;
	const char *arch = "amd64";
	if (uname(&u) == 0) {
		arch = !strcmp(u.machine, "x86_64")                                   ? "amd64"
		       : !strcmp(u.machine, "aarch64")                                ? "arm64"
		       : !strcmp(u.machine, "i686") || !strcmp(u.machine, "i386")     ? "386"
		       : !strncmp(u.machine, "armv7", 5)                              ? "arm/v7"
										      : u.machine;
	}
	snprintf(buf, n, "linux/%s", arch);
}

/* containerd's Normalize for the spellings of the host's arch. */
static void normalize_platform(char *out, size_t n, const char *p)
{
	char os[64] = "linux", arch[64] = "", variant[64] = "";
	const char *s1 = strchr(p, '/');
	if (!s1) {
		snprintf(arch, sizeof arch, "%s", p); /* "amd64": the os is the host's */
	} else {
		snprintf(os, sizeof os, "%.*s", (int)(s1 - p), p);
		const char *s2 = strchr(s1 + 1, '/');
		snprintf(arch, sizeof arch, "%.*s", s2 ? (int)(s2 - s1 - 1) : (int)strlen(s1 + 1), s1 + 1);
		if (s2)
			snprintf(variant, sizeof variant, "%s", s2 + 1);
	}
	for (char *c = os; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	for (char *c = arch; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	if (!strcmp(arch, "x86_64") || !strcmp(arch, "x86-64"))
		snprintf(arch, sizeof arch, "amd64");
	else if (!strcmp(arch, "aarch64"))
		snprintf(arch, sizeof arch, "arm64");
	else if (!strcmp(arch, "i386") || !strcmp(arch, "i686"))
		snprintf(arch, sizeof arch, "386");
	if (!strcmp(arch, "arm64") && (!strcmp(variant, "v8") || !strcmp(variant, "8")))
		variant[0] = 0;
	if (!strcmp(arch, "amd64") && !strcmp(variant, "v1"))
		variant[0] = 0;
	snprintf(out, n, "%s/%s%s%s", os, arch, *variant ? "/" : "", variant);
}

int ib_build__check_platform(const char *platform)
{
	if (!platform || !*platform)
		return 0;
	char host[128], want[256];
	host_platform(host, sizeof host);
	normalize_platform(want, sizeof want, platform);
	if (strchr(platform, ','))
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
				     "platform `%s`: multi-platform builds are not supported yet (this host is %s)",
				     platform, host);
	if (strcmp(want, host))
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
				     "platform `%s`: building for a platform other than this host's (%s) is not "
				     "supported yet", platform, host);
	return 0;
}

int ib_build__parse_extras(builder *b)
{
	const ib_build_options *o = b->o;
	int rc = 0;
	ib_buf hosts = IB_BUF_INIT;
	for (const char *const *l = o->labels; rc == 0 && l && *l; l++)
		if (**l == '=')
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid label %s: empty key", *l);
	for (const char *const *a = o->annotations; rc == 0 && a && *a; a++)
		rc = parse_annotation(&b->annotations, *a);
	for (const char *const *h = o->extra_hosts; rc == 0 && h && *h; h++)
		rc = parse_host(&hosts, *h);
	if (rc == 0 && hosts.size && !(b->extra_hosts = ib_strdup(hosts.ptr)))
		rc = IB_ERROR;
	ib_buf_dispose(&hosts);
	size_t n = 0;
	for (const char *const *u = o->ulimits; u && *u; u++)
		n++;
	if (rc == 0 && n && !(b->rlimits = ib_calloc(n, sizeof *b->rlimits)))
		rc = IB_ERROR;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		/* docker: a later --ulimit of the same name replaces the earlier */
		ib_rlimit r;
		if ((rc = parse_ulimit(&r, o->ulimits[i])) < 0)
			break;
		size_t k = 0;
		while (k < b->nrlimits && strcmp(b->rlimits[k].name, r.name))
			k++;
		b->rlimits[k] = r;
		if (k == b->nrlimits)
			b->nrlimits++;
	}
	if (rc == 0 && o->shm_size < 0)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "shm size %lld is negative", (long long)o->shm_size);
	for (const char *const *c = o->build_contexts; rc == 0 && c && *c; c++) {
		const char *eq = strchr(*c, '=');
		if (!eq || eq == *c || !eq[1])
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid build context %s: expected NAME=VALUE", *c);
	}
	return rc;
}

int ib_build__no_cache(builder *b, const char *stage_name)
{
	if (b->o->no_cache)
		return 1;
	for (const char *const *f = b->o->no_cache_filter; stage_name && f && *f; f++)
		if (!strcasecmp(*f, stage_name))
			return 1;
	return 0;
}

int ib_build__apply_labels(builder *b, ib_image_config *config)
{
	int rc = 0;
	for (const char *const *l = b->o->labels; rc == 0 && l && *l; l++) {
		const char *eq = strchr(*l, '=');
		char *k = eq ? ib_strndup(*l, eq - *l) : ib_strdup(*l);
		rc = k ? ib_image_config_label_set(config, k, eq ? eq + 1 : "") : IB_ERROR;
		free(k);
	}
	return rc;
}

/*
 * The value of the named context `name` (as FROM, COPY --from or RUN
 * --mount from= names an image or a stage), or NULL. BuildKit
 * (dockerui.NamedContext) looks the name up in its familiar form without
 * ":latest", first with "::<platform>", then without.
 */
const char *ib_build__named_context(builder *b, const char *name)
{
	if (!b->o->build_contexts || !name)
		return NULL;
	ib_reference *ref = NULL;
	char *key = NULL;
	if (ib_reference_parse(&ref, name) == 0) {
		const char *f = ib_reference_familiar(ref);
		size_t n = strlen(f);
		key = n > 7 && !strcmp(f + n - 7, ":latest") ? ib_strndup(f, n - 7) : ib_strdup(f);
	} else {
		key = ib_strdup(name); /* a stage name need not be a reference */
	}
	ib_error_clear();
	ib_reference_free(ref);
	if (!key)
		return NULL;
	char host[128];
	host_platform(host, sizeof host);
	const char *found = NULL;
	for (int pass = 0; pass < 2 && !found; pass++) {
		for (const char *const *c = b->o->build_contexts; *c && !found; c++) {
			const char *eq = strchr(*c, '='), *sep = strstr(*c, "::");
			size_t kl = strlen(key);
			if (pass == 0 && sep && sep < eq && (size_t)(sep - *c) == kl && !strncmp(*c, key, kl) &&
			    strlen(host) == (size_t)(eq - sep - 2) && !strncmp(sep + 2, host, eq - sep - 2))
				found = eq + 1;
			if (pass == 1 && (size_t)(eq - *c) == kl && !strncmp(*c, key, kl))
				found = eq + 1;
		}
	}
	free(key);
	return found;
}

/* ---- named contexts that are not registry images ---- */

int ib_build__oci_layout_image(ib_image **out, builder *b, const char *name, const char *path)
{
	(void)out;
	(void)b;
	return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
			     "build context %s=oci-layout://%s: OCI layout contexts are not supported yet "
			     "(load the layout and use docker-image://NAME)", name, path);
}

int ib_build__dir_image(ib_image **out, builder *b, const char *name, const char *dir)
{
	(void)out;
	(void)b;
	return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
			     "build context %s=%s: local directory contexts are not supported yet "
			     "(only docker-image://REF)", name, dir);
}
