/*
 * The options of `docker buildx build` that are neither the Dockerfile nor
 * its context (ib_build_options version 7): --label, --annotation,
 * --add-host, --ulimit, --shm-size, --no-cache-filter, and the
 * named contexts of --build-context. Parsed and checked once, before
 * anything runs, as buildx and BuildKit's dockerui frontend parse them.
 */
#include "build/internal.h"

#include "util/fs.h"

#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
	const char *host = b->platform; /* "NAME::os/arch": the target platform's */
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

/* libarchive's write callback: into the blob writer. */
static la_ssize_t blob_write(struct archive *a, void *payload, const void *buf, size_t len)
{
	(void)a;
	return ib_blob_writer_write(payload, buf, len) < 0 ? -1 : (la_ssize_t)len;
}

/*
 * The tree under `dir` as an uncompressed layer tar in `w`: the
 * .dockerignore of `dir` applied (BuildKit's NamedContext reads it), owners
 * 0:0 as buildx's file sync sends them (filesync resetUIDAndGID), symlinks
 * as symlinks, no extended attributes.
 */
static int dir_tar(ib_blob_writer *w, const char *dir)
{
	ib_ignore *ign = NULL;
	ib_buf ipath = IB_BUF_INIT, icontent = IB_BUF_INIT;
	int rc = ib_buf_printf(&ipath, "%s/.dockerignore", dir);
	if (rc == 0) {
		rc = ib_read_regular_file(&icontent, ipath.ptr, IB_BUILD__CONTEXT_FILE_MAX);
		if (rc == IB_ENOTFOUND) {
			ib_error_clear();
			rc = 0;
		} else if (rc == 0) {
			rc = ib_ignore_parse(&ign, ib_buf_cstr(&icontent), icontent.size, ipath.ptr);
		}
	}
	ib_buf_dispose(&ipath);
	ib_buf_dispose(&icontent);
	struct archive *r = rc == 0 ? archive_read_disk_new() : NULL;
	struct archive *t = rc == 0 ? archive_write_new() : NULL;
	if (rc == 0 && (!r || !t))
		rc = ib_error_oom();
	if (rc == 0) {
		archive_read_disk_set_symlink_physical(r);
		archive_read_disk_set_behavior(r, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS | ARCHIVE_READDISK_NO_XATTR |
							  ARCHIVE_READDISK_NO_ACL | ARCHIVE_READDISK_NO_FFLAGS);
		archive_write_set_format_pax_restricted(t);
		archive_write_set_bytes_in_last_block(t, 1);
		if (archive_write_open(t, w, NULL, blob_write, NULL) != ARCHIVE_OK)
			rc = ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "write a layer: %s", archive_error_string(t));
		else if (archive_read_disk_open(r, dir) != ARCHIVE_OK)
			rc = ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "read the directory `%s`: %s", dir,
					   archive_error_string(r));
	}
	size_t dl = strlen(dir);
	while (rc == 0) {
		struct archive_entry *e = archive_entry_new();
		if (!e) {
			rc = ib_error_oom();
			break;
		}
		int ar = archive_read_next_header2(r, e);
		if (ar == ARCHIVE_EOF) {
			archive_entry_free(e);
			break;
		}
		if (ar < ARCHIVE_WARN) {
			rc = ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "read `%s`: %s", dir, archive_error_string(r));
			archive_entry_free(e);
			break;
		}
		const char *p = archive_entry_pathname(e);
		const char *rel = strlen(p) > dl ? p + dl : "";
		while (*rel == '/')
			rel++;
		int is_dir = archive_entry_filetype(e) == AE_IFDIR;
		int excluded = *rel && ign && ib_ignore_matches(ign, rel) == 1;
		/* an excluded directory is entered only when an exception may keep something below it */
		if (is_dir && (!excluded || ib_ignore_descend(ign, rel) == 1))
			archive_read_disk_descend(r);
		if (!*rel || excluded) {
			archive_entry_free(e);
			continue;
		}
		char *name = ib_strdup(rel);
		char *src = ib_strdup(archive_entry_sourcepath(e));
		if (!name || !src)
			rc = IB_ERROR;
		if (rc == 0) {
			archive_entry_set_pathname(e, name);
			archive_entry_set_uid(e, 0);
			archive_entry_set_gid(e, 0);
			archive_entry_set_uname(e, NULL);
			archive_entry_set_gname(e, NULL);
			archive_entry_set_hardlink(e, NULL);
			if (archive_write_header(t, e) < ARCHIVE_WARN)
				rc = ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "write a layer: %s", archive_error_string(t));
		}
		if (rc == 0 && archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0) {
			int fd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			char buf[65536];
			ssize_t n = 0;
			if (fd < 0)
				rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", src);
			while (rc == 0 && (n = read(fd, buf, sizeof buf)) > 0)
				if (archive_write_data(t, buf, (size_t)n) != n)
					rc = ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "write a layer: %s",
							   archive_error_string(t));
			if (rc == 0 && n < 0)
				rc = ib_error_set_os(IB_LAYER_BUILD, "read `%s`", src);
			if (fd >= 0)
				close(fd);
		}
		free(name);
		free(src);
		archive_entry_free(e);
	}
	if (t && archive_write_close(t) != ARCHIVE_OK && rc == 0)
		rc = ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "write a layer: %s", archive_error_string(t));
	if (t)
		archive_write_free(t);
	if (r)
		archive_read_free(r);
	ib_ignore_free(ign);
	return rc;
}

/*
 * A local directory as a named context: an image of one layer (its files)
 * and BuildKit's empty image config (dockerfile2llb emptyImage: os, arch,
 * WorkingDir "/", the default PATH), with one history entry as BuildKit's
 * exporter adds for a layer no instruction made. No creation time, so the
 * same files give the same image (and cache keys).
 */
int ib_build__dir_image(ib_image **out, builder *b, const char *name, const char *dir)
{
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
				     "build context %s=%s: not a directory (nor docker-image://, oci-layout://)",
				     name, dir);
	ib_blob_writer *w = NULL;
	ib_layer layer;
	memset(&layer, 0, sizeof layer);
	int rc = ib_store_blob_writer(&w, b->store);
	if (rc == 0)
		rc = dir_tar(w, dir);
	if (rc == 0) {
		rc = ib_blob_writer_commit(w, &layer.digest, &layer.size, NULL);
		w = NULL;
	}
	ib_blob_writer_abort(w);
	ib_image_config *c = NULL;
	if (rc == 0)
		rc = ib_image_config_new(&c);
	if (rc == 0)
		rc = ib_image_config_set(c, IB_CONFIG_WORKDIR, "/");
	if (rc == 0)
		rc = ib_image_config_env_set(c, "PATH", IB_BUILD_DEFAULT_PATH);
	if (rc == 0)
		rc = ib_image_config_diff_id_add(c, &layer.digest);
	if (rc == 0) {
		ib_history_entry h = IB_HISTORY_ENTRY_INIT;
		h.created_by = "";
		h.comment = "buildkit.exporter.image.v0";
		rc = ib_image_config_history_add(c, &h);
	}
	ib_digest id;
	if (rc == 0)
		rc = ib_store_image_commit(&id, NULL, b->store, c, &layer, 1, NULL);
	ib_image_config_free(c);
	char hex[IB_DIGEST_STRLEN];
	if (rc == 0) {
		ib_digest_fmt(hex, &id);
		rc = ib_store_image_lookup(out, b->store, hex);
	}
	if (rc < 0)
		ib_error_prefix("build context %s=%s", name, dir);
	return rc;
}
