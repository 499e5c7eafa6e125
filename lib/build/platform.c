/*
 * Platforms of a build (ib_build_options.platform/platforms, FROM
 * --platform): the target platform, each stage's, the image config's, RUN
 * of another platform under a binfmt_misc emulator, and --platform A,B,...
 * as one build per platform joined in an OCI image index.
 */
#include "build/internal.h"
#include "util/hash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#define BINFMT_MISC "/proc/sys/fs/binfmt_misc"

const char *ib_build__host_platform(void)
{
	static char host[IB_BUILD__PLATFORM_MAX];
	if (!host[0]) {
		struct utsname u;
		ib_buf b = IB_BUF_INIT;
		char tmp[IB_BUILD__PLATFORM_MAX];
		snprintf(tmp, sizeof tmp, "linux/%s", uname(&u) == 0 ? u.machine : "amd64");
		if (ib_platform_normalize(&b, tmp) == 0)
			snprintf(tmp, sizeof tmp, "%s", b.ptr);
		else
			snprintf(tmp, sizeof tmp, "linux/amd64");
		ib_buf_dispose(&b);
		ib_error_clear();
		memcpy(host, tmp, sizeof host); /* the same bytes in every thread */
	}
	return host;
}

static int normalize_into(char out[IB_BUILD__PLATFORM_MAX], const char *p)
{
	ib_buf b = IB_BUF_INIT;
	int rc = ib_platform_normalize(&b, p);
	if (rc == 0 && b.size >= IB_BUILD__PLATFORM_MAX)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "platform `%s` is too long", p);
	if (rc == 0)
		memcpy(out, b.ptr, b.size + 1);
	ib_buf_dispose(&b);
	return rc;
}

int ib_build__setup_platform(builder *b)
{
	const char *p = b->o->platform;
	b->platform_explicit = p && *p;
	if (!b->platform_explicit) {
		snprintf(b->platform, sizeof b->platform, "%s", ib_build__host_platform());
		return 0;
	}
	if (strchr(p, ','))
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "platform `%s`: one platform per build here", p);
	int rc = normalize_into(b->platform, p);
	if (rc < 0)
		ib_error_prefix("--platform");
	return rc;
}

int ib_build__stage_platform(char out[IB_BUILD__PLATFORM_MAX], builder *b, const ib_plan_stage *ps)
{
	const char *flag = ps->stage->platform;
	if (!flag || !*flag) {
		memcpy(out, b->platform, IB_BUILD__PLATFORM_MAX);
		return 0;
	}
	ib_buf v = IB_BUF_INIT;
	ib_expand_options eo = IB_EXPAND_OPTIONS_INIT;
	eo.env = ib_plan_meta_env(b->plan);
	eo.escape = b->escape;
	int rc = ib_expand_word(&v, flag, &eo);
	if (rc == 0 && !v.size) /* BuildKit: "empty platform value from expression" */
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "empty platform value from expression %s", flag);
	if (rc == 0)
		rc = normalize_into(out, ib_buf_cstr(&v));
	ib_buf_dispose(&v);
	return rc;
}

int ib_build__config_platform(ib_image_config *c, const char *platform)
{
	char os[IB_BUILD__PLATFORM_MAX], arch[IB_BUILD__PLATFORM_MAX];
	const char *s1 = strchr(platform, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	if (!s1)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid platform `%s`", platform);
	snprintf(os, sizeof os, "%.*s", (int)(s1 - platform), platform);
	snprintf(arch, sizeof arch, "%.*s", s2 ? (int)(s2 - s1 - 1) : (int)strlen(s1 + 1), s1 + 1);
	int rc = ib_image_config_set(c, IB_CONFIG_OS, os);
	if (rc == 0)
		rc = ib_image_config_set(c, IB_CONFIG_ARCHITECTURE, arch);
	if (rc == 0)
		rc = ib_image_config_set(c, IB_CONFIG_VARIANT, s2 ? s2 + 1 : NULL);
	return rc;
}

/* BuildKit: with an explicit target platform, the image says it (os, arch; variant when given or changed). */
int ib_build__final_platform(builder *b, ib_image_config *c)
{
	if (!b->platform_explicit)
		return 0;
	char have[IB_BUILD__PLATFORM_MAX];
	const char *os = ib_image_config_get(c, IB_CONFIG_OS), *arch = ib_image_config_get(c, IB_CONFIG_ARCHITECTURE);
	snprintf(have, sizeof have, "%s/%s/", os ? os : "", arch ? arch : "");
	const char *s2 = strchr(strchr(b->platform, '/') + 1, '/');
	size_t osarch = s2 ? (size_t)(s2 - b->platform) : strlen(b->platform);
	int same = strlen(have) == osarch + 1 && !strncmp(have, b->platform, osarch);
	if (same && !s2)
		return 0; /* the base's variant stays */
	return ib_build__config_platform(c, b->platform);
}

void ib_build__platform_key(char key[IB_DIGEST_HEXLEN + 1], const char *base, const char *platform)
{
	ib_sha256 *h = ib_sha256_new();
	ib_digest d;
	memset(&d, 0, sizeof d);
	if (h && ib_sha256_update(h, base, strlen(base) + 1) == 0 && ib_sha256_update(h, platform, strlen(platform)) == 0)
		ib_sha256_final(h, &d);
	ib_sha256_free(h);
	ib_digest_hex(key, &d);
}

/* ---- emulation ---- */

/* A small (procfs) file whole: st_size says 0 there, so read to the end, at most `max` bytes. */
static int read_small(ib_buf *out, const char *path, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return IB_ENOTFOUND;
	char chunk[4096];
	ssize_t n;
	int rc = 0;
	while (rc == 0 && (n = read(fd, chunk, sizeof chunk)) > 0)
		rc = out->size + (size_t)n > max ? IB_EINVALID : ib_buf_put(out, chunk, (size_t)n);
	close(fd);
	return rc;
}

/* The ELF header prefix (20 bytes, as qemu's binfmt magic) of an executable of `arch`. */
static int elf_header(unsigned char hdr[20], const char *arch, const char **elf_name)
{
	static const struct {
		const char *arch, *name;
		unsigned char cls, data;
		unsigned short machine;
	} t[] = {
		{ "amd64", "x86_64", 2, 1, 62 },    { "386", "i386", 1, 1, 3 },        { "arm64", "aarch64", 2, 1, 183 },
		{ "arm", "arm", 1, 1, 40 },         { "ppc64le", "ppc64le", 2, 1, 21 }, { "s390x", "s390x", 2, 2, 22 },
		{ "riscv64", "riscv64", 2, 1, 243 }, { "mips64le", "mips64el", 2, 1, 8 }, { "loong64", "loongarch64", 2, 1, 258 },
		{ "ppc64", "ppc64", 2, 2, 21 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (strcmp(t[i].arch, arch))
			continue;
		memset(hdr, 0, 20);
		hdr[0] = 0x7f, hdr[1] = 'E', hdr[2] = 'L', hdr[3] = 'F';
		hdr[4] = t[i].cls, hdr[5] = t[i].data, hdr[6] = 1;
		if (t[i].data == 1) { /* ET_EXEC, e_machine, little-endian */
			hdr[16] = 2, hdr[18] = (unsigned char)(t[i].machine & 0xff), hdr[19] = (unsigned char)(t[i].machine >> 8);
		} else {
			hdr[17] = 2, hdr[19] = (unsigned char)(t[i].machine & 0xff), hdr[18] = (unsigned char)(t[i].machine >> 8);
		}
		*elf_name = t[i].name;
		return 0;
	}
	return IB_ENOTFOUND;
}

static size_t unhex(unsigned char *out, size_t max, const char *s)
{
	size_t n = 0;
	while (s[0] && s[1] && n < max) {
		unsigned int v;
		if (sscanf(s, "%2x", &v) != 1)
			break;
		out[n++] = (unsigned char)v;
		s += 2;
	}
	return n;
}

typedef struct {
	int enabled, fix_binary, matched;
	char interpreter[256];
} handler;

/* Does the binfmt_misc entry `path` handle `hdr`? */
static int read_handler(handler *h, const char *path, const unsigned char hdr[20])
{
	ib_buf text = IB_BUF_INIT;
	memset(h, 0, sizeof *h);
	if (read_small(&text, path, 1 << 16) < 0 || !text.size) {
		ib_error_clear();
		ib_buf_dispose(&text);
		return 0;
	}
	unsigned char magic[128], mask[128];
	size_t nmagic = 0, nmask = 0;
	long offset = 0;
	int ext = 0;
	char *save = NULL;
	for (char *l = strtok_r(text.ptr, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(l, "enabled"))
			h->enabled = 1;
		else if (!strncmp(l, "interpreter ", 12))
			snprintf(h->interpreter, sizeof h->interpreter, "%s", l + 12);
		else if (!strncmp(l, "flags:", 6))
			h->fix_binary = strchr(l + 6, 'F') != NULL;
		else if (!strncmp(l, "offset ", 7))
			offset = strtol(l + 7, NULL, 10);
		else if (!strncmp(l, "magic ", 6))
			nmagic = unhex(magic, sizeof magic, l + 6);
		else if (!strncmp(l, "mask ", 5))
			nmask = unhex(mask, sizeof mask, l + 5);
		else if (!strncmp(l, "extension ", 10))
			ext = 1;
	}
	ib_buf_dispose(&text);
	if (ext || !nmagic || offset < 0 || (size_t)offset + nmagic > 20)
		return 0;
	for (size_t i = 0; i < nmagic; i++) {
		unsigned char m = i < nmask ? mask[i] : 0xff;
		if ((hdr[offset + i] & m) != (magic[i] & m))
			return 0;
	}
	h->matched = 1;
	return 1;
}

int ib_build__check_emulator(builder *b, const char *platform)
{
	const char *host = ib_build__host_platform();
	if (!*platform) /* a stage whose platform was never set: the target's (none: the host's) */
		platform = *b->platform ? b->platform : host;
	if (!strcmp(platform, host))
		return 0;
	if (!strcmp(host, "linux/amd64") && !strcmp(platform, "linux/386"))
		return 0; /* the kernel runs i386 binaries itself */
	const char *s1 = strchr(platform, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	char arch[IB_BUILD__PLATFORM_MAX];
	snprintf(arch, sizeof arch, "%.*s", s2 ? (int)(s2 - s1 - 1) : (int)strlen(s1 ? s1 + 1 : ""), s1 ? s1 + 1 : "");
	if (strncmp(platform, "linux/", 6))
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD, "RUN for %s: only linux platforms can run here",
				     platform);
	if (!strcmp(host + 6, arch))
		return 0; /* another variant of this host's arch */
	unsigned char hdr[20];
	const char *elf = NULL;
	if (elf_header(hdr, arch, &elf) < 0)
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
				     "RUN for %s on this %s host: no emulator is known for the architecture `%s`", platform,
				     host, arch);
	const char *dir = b->o->binfmt_misc && *b->o->binfmt_misc ? b->o->binfmt_misc : BINFMT_MISC;
	const char *hint = "(install qemu-user-static and run `imagebuild binfmt`, which registers its emulators with the "
			   "F flag)";
	char path[4096];
	snprintf(path, sizeof path, "%s/status", dir);
	ib_buf status = IB_BUF_INIT;
	int rc = read_small(&status, path, 64);
	if (rc < 0) {
		ib_error_clear();
		ib_buf_dispose(&status);
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
				     "RUN for %s needs an emulator for %s binaries on this %s host, and binfmt_misc is not "
				     "mounted at %s %s", platform, elf, host, dir, hint);
	}
	int on = !strncmp(ib_buf_cstr(&status), "enabled", 7);
	ib_buf_dispose(&status);
	if (!on)
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
				     "RUN for %s needs an emulator for %s binaries, and binfmt_misc is disabled (%s/status)",
				     platform, elf, dir);
	DIR *d = opendir(dir);
	if (!d)
		return ib_error_set_os(IB_LAYER_BUILD, "open `%s`", dir);
	struct dirent *e;
	handler found, without_f;
	int have = 0, have_nof = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !strcmp(e->d_name, "register") || !strcmp(e->d_name, "status"))
			continue;
		handler h;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (!read_handler(&h, path, hdr) || !h.enabled)
			continue;
		if (h.fix_binary) {
			found = h;
			have = 1;
			break;
		}
		without_f = h;
		have_nof = 1;
	}
	closedir(d);
	if (have) {
		ib_build__log_line(b, IB_LOG_DEBUG, "RUN for %s through %s", platform, found.interpreter);
		return 0;
	}
	if (have_nof)
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
				     "RUN for %s: the binfmt_misc handler for %s binaries (%s) is registered without the F "
				     "flag, so the build's root filesystem would need its own %s; register it again with F %s",
				     platform, elf, without_f.interpreter, without_f.interpreter, hint);
	return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
			     "RUN for %s needs an emulator: no binfmt_misc handler for %s binaries is registered in %s %s",
			     platform, elf, dir, hint);
}

/* ---- several platforms: one build each, one index ---- */

/* Split the comma-separated `list` entries into normalised, distinct platforms. */
static int collect(ib_strlist *out, const char *list)
{
	int rc = 0;
	char *copy = ib_strdup(list), *save = NULL;
	if (!copy)
		return IB_ERROR;
	for (char *p = strtok_r(copy, ",", &save); rc == 0 && p; p = strtok_r(NULL, ",", &save)) {
		while (*p == ' ')
			p++;
		char n[IB_BUILD__PLATFORM_MAX];
		if ((rc = normalize_into(n, p)) < 0)
			ib_error_prefix("--platform");
		else if (!ib_strlist_contains(out, n))
			rc = ib_strlist_add(out, n);
	}
	free(copy);
	return rc;
}

int ib_build__platform_list(ib_strlist *out, const ib_build_options *o)
{
	int rc = 0;
	if (o->version >= 8 && o->platforms && o->platforms[0]) {
		for (const char *const *p = o->platforms; rc == 0 && *p; p++)
			rc = collect(out, *p);
	} else if (o->version >= 1 && o->platform && strchr(o->platform, ',')) {
		rc = collect(out, o->platform);
	}
	return rc;
}

int ib_build__multi(ib_digest *image_id, ib_store *store, const ib_build_options *opts, const ib_strlist *platforms)
{
	ib_buf index = IB_BUF_INIT;
	ib_build_options o;
	if (opts->version < 8)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "several platforms need ib_build_options version 8");
	o = *opts;
	o.platforms = NULL;
	o.tags = NULL;
	int rc = ib_store_lease_acquire(store); /* the manifests stay until the index names them */
	if (rc < 0)
		return rc;
	ib_digest *made = ib_calloc(platforms->n ? platforms->n : 1, sizeof *made);
	if (!made) {
		ib_store_lease_release(store);
		return IB_ERROR;
	}
	ib_buf_puts(&index, "{\"schemaVersion\":2,\"mediaType\":\"" IB_MEDIA_TYPE_OCI_INDEX "\",\"manifests\":[");
	/* every platform's build, at once where jobs allows (multi.c) */
	rc = ib_build__platforms_run(NULL, made, store, &o, platforms, ib_build__platform_jobs(&o, platforms->n));
	for (size_t i = 0; rc == 0 && i < platforms->n; i++) {
		const char *p = platforms->items[i];
		ib_digest manifest = made[i];
		uint64_t size = 0;
		if ((rc = ib_store_blob_size(&size, store, &manifest)) < 0)
			break;
		char ds[IB_DIGEST_STRLEN], os[IB_BUILD__PLATFORM_MAX], arch[IB_BUILD__PLATFORM_MAX];
		ib_digest_fmt(ds, &manifest);
		const char *s1 = strchr(p, '/'), *s2 = strchr(s1 + 1, '/');
		snprintf(os, sizeof os, "%.*s", (int)(s1 - p), p);
		snprintf(arch, sizeof arch, "%.*s", s2 ? (int)(s2 - s1 - 1) : (int)strlen(s1 + 1), s1 + 1);
		ib_buf_printf(&index, "%s{\"mediaType\":\"" IB_MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%llu,"
			      "\"platform\":{\"architecture\":\"%s\",\"os\":\"%s\"%s%s%s}}", i ? "," : "", ds,
			      (unsigned long long)size, arch, os, s2 ? ",\"variant\":\"" : "", s2 ? s2 + 1 : "", s2 ? "\"" : "");
	}
	if (rc == 0 && ib_buf_puts(&index, "]}") < 0)
		rc = IB_ERROR;
	ib_digest top;
	if (rc == 0)
		rc = ib_store_blob_put(&top, store, index.ptr, index.size);
	if (rc == 0 && !(opts->tags && opts->tags[0]))
		rc = ib_store_tag_manifest(store, NULL, &top);
	for (const char *const *t = opts->tags; rc == 0 && t && *t; t++)
		rc = ib_store_tag_manifest(store, *t, &top);
	/* the platforms' images are the index's now, not images of their own */
	for (size_t i = 0; rc == 0 && i < platforms->n; i++)
		rc = ib_store_untagged_drop(store, &made[i]);
	if (rc == 0 && image_id)
		*image_id = top; /* as docker with the containerd store: the index digest */
	if (rc < 0) { /* a failed build leaves no image: the platforms built drop out */
		static const ib_digest zero;
		ib_error_saved saved;
		ib_error_save(&saved);
		for (size_t i = 0; i < platforms->n; i++)
			if (memcmp(&made[i], &zero, sizeof zero) && ib_store_untagged_drop(store, &made[i]) < 0)
				ib_error_clear();
		ib_error_restore(&saved);
	}
	free(made);
	ib_store_lease_release(store);
	ib_buf_dispose(&index);
	return rc;
}
