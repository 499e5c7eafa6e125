/*
 * What `imagebuild build` does besides the build: --output (buildx's
 * exporters: oci, docker, tar, local), --metadata-file (buildx's keys),
 * --shm-size values, and a context from stdin (`build -`). Public API only
 * (and libarchive for the flat rootfs tar and a context tar).
 */
#include "build_output.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int out_err(const char *fmt, const char *a)
{
	fprintf(stderr, "imagebuild build: ");
	fprintf(stderr, fmt, a);
	fputc('\n', stderr);
	return -1;
}

/*
 * buildx's --output: "type=T,dest=D[,k=v]", or a bare PATH (type=local) or
 * "-" (type=tar to stdout).
 */
int build_output_parse(build_output *out, const char *spec)
{
	memset(out, 0, sizeof *out);
	out->oci_tar = 1;
	if (!strchr(spec, '=')) {
		out->type = !strcmp(spec, "-") ? BUILD_OUTPUT_TAR : BUILD_OUTPUT_LOCAL;
		out->dest = strdup(spec);
		return out->dest ? 0 : -1;
	}
	char *copy = strdup(spec), *save = NULL;
	int rc = copy ? 0 : -1;
	for (char *f = copy ? strtok_r(copy, ",", &save) : NULL; rc == 0 && f; f = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(f, '=');
		if (!eq) {
			rc = out_err("--output: invalid field `%s`: expected KEY=VALUE", f);
			break;
		}
		*eq++ = 0;
		if (!strcmp(f, "type")) {
			if (!strcmp(eq, "oci"))
				out->type = BUILD_OUTPUT_OCI;
			else if (!strcmp(eq, "docker"))
				out->type = BUILD_OUTPUT_DOCKER;
			else if (!strcmp(eq, "tar"))
				out->type = BUILD_OUTPUT_TAR;
			else if (!strcmp(eq, "local"))
				out->type = BUILD_OUTPUT_LOCAL;
			else if (!strcmp(eq, "image"))
				out->type = BUILD_OUTPUT_IMAGE;
			else
				rc = out_err("--output: type `%s` is not supported (oci, docker, tar, local, image)", eq);
		} else if (!strcmp(f, "dest")) {
			free(out->dest);
			if (!(out->dest = strdup(eq)))
				rc = -1;
		} else if (!strcmp(f, "tar")) {
			if (!strcmp(eq, "true"))
				out->oci_tar = 1;
			else if (!strcmp(eq, "false"))
				out->oci_tar = 0;
			else
				rc = out_err("--output: tar=%s: expected true or false", eq);
		} else {
			/* name=, push=, compression=, ... change what buildx writes: refused, never ignored */
			rc = out_err("--output: the attribute `%s` is not supported (type, dest, tar)", f);
		}
	}
	free(copy);
	if (rc == 0 && !out->type)
		rc = out_err("--output %s: type= is required", spec);
	if (rc == 0 && out->type != BUILD_OUTPUT_IMAGE && !out->dest)
		rc = out_err("--output %s: dest= is required", spec);
	if (rc == 0 && out->type == BUILD_OUTPUT_LOCAL && !strcmp(out->dest, "-"))
		rc = out_err("--output %s: a local output needs a directory, not stdout", spec);
	if (rc == 0 && out->type == BUILD_OUTPUT_OCI && !out->oci_tar && !strcmp(out->dest, "-"))
		rc = out_err("--output %s: tar=false needs a directory, not stdout", spec);
	if (rc == 0 && !out->oci_tar && out->type != BUILD_OUTPUT_OCI)
		rc = out_err("--output %s: tar= is only for type=oci", spec);
	if (rc < 0)
		build_output_dispose(out);
	return rc;
}

void build_output_dispose(build_output *out)
{
	free(out->dest);
	out->dest = NULL;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *tmp_path(const char *tag, int dir)
{
	const char *t = getenv("TMPDIR");
	size_t n = strlen(t && *t ? t : "/tmp") + strlen(tag) + 16;
	char *p = malloc(n);
	if (!p)
		return NULL;
	snprintf(p, n, "%s/%s-XXXXXX", t && *t ? t : "/tmp", tag);
	if (dir ? !mkdtemp(p) : 0) {
		free(p);
		return NULL;
	}
	if (!dir) {
		int fd = mkstemp(p);
		if (fd < 0) {
			free(p);
			return NULL;
		}
		close(fd);
	}
	return p;
}

static int copy_to_stdout(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return out_err("read `%s` back", path);
	char buf[65536];
	ssize_t r;
	int rc = 0;
	while (rc == 0 && (r = read(fd, buf, sizeof buf)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		for (ssize_t off = 0; off < r;) {
			ssize_t w = write(1, buf + off, r - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				rc = out_err("write the output to stdout: %s", strerror(errno));
				break;
			}
			off += w;
		}
	}
	close(fd);
	return rc;
}

/* The image's layers, in order, into the directory `dir` (whiteouts applied). */
static int unpack_rootfs(ib_store *store, const ib_image *img, const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return out_err("open the output directory `%s`", dir);
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < ib_image_layer_count(img); i++) {
		const ib_layer *l = ib_image_layer(img, i);
		char hex[IB_DIGEST_STRLEN];
		ib_digest_fmt(hex, &l->digest);
		int fd = -1;
		if (ib_store_blob_open(&fd, store, &l->digest) < 0 ||
		    ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_DELETE, hex) < 0)
			rc = cli_fail("build: --output");
		if (fd >= 0)
			close(fd);
	}
	close(dfd);
	return rc;
}

/* The tree at `dir` as a tar (paths relative, no "./", as BuildKit's tar exporter). */
static int tar_tree(const char *dir, const char *path)
{
	struct archive *w = archive_write_new();
	struct archive *r = archive_read_disk_new();
	int rc = w && r ? 0 : -1;
	if (rc == 0) {
		archive_write_set_format_pax_restricted(w);
		archive_read_disk_set_symlink_physical(r);
		archive_read_disk_set_standard_lookup(r);
		archive_read_disk_set_behavior(r, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS);
		if (archive_write_open_filename(w, path) != ARCHIVE_OK ||
		    archive_read_disk_open(r, dir) != ARCHIVE_OK)
			rc = out_err("write the tar: %s", archive_error_string(archive_errno(w) ? w : r));
	}
	size_t dl = strlen(dir);
	while (rc == 0) {
		struct archive_entry *e = archive_entry_new();
		int ar = archive_read_next_header2(r, e);
		if (ar == ARCHIVE_EOF) {
			archive_entry_free(e);
			break;
		}
		if (ar < ARCHIVE_WARN) {
			rc = out_err("read the root filesystem: %s", archive_error_string(r));
			archive_entry_free(e);
			break;
		}
		archive_read_disk_descend(r);
		const char *p = archive_entry_pathname(e);
		const char *rel = strlen(p) > dl ? p + dl : "";
		while (*rel == '/')
			rel++;
		if (!*rel) { /* the root itself */
			archive_entry_free(e);
			continue;
		}
		char *name = strdup(rel);
		char *src = strdup(archive_entry_sourcepath(e));
		archive_entry_set_pathname(e, name);
		const char *hl = archive_entry_hardlink(e);
		if (hl && strlen(hl) > dl) {
			const char *hr = hl + dl;
			while (*hr == '/')
				hr++;
			char *h = strdup(hr);
			archive_entry_set_hardlink(e, h);
			free(h);
		}
		if (archive_write_header(w, e) < ARCHIVE_WARN)
			rc = out_err("write the tar: %s", archive_error_string(w));
		if (rc == 0 && archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0 && !hl) {
			int fd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			char buf[65536];
			ssize_t n;
			if (fd < 0)
				rc = out_err("read `%s`", src);
			while (rc == 0 && (n = read(fd, buf, sizeof buf)) > 0)
				if (archive_write_data(w, buf, n) != n)
					rc = out_err("write the tar: %s", archive_error_string(w));
			if (fd >= 0)
				close(fd);
		}
		free(name);
		free(src);
		archive_entry_free(e);
	}
	if (r)
		archive_read_free(r);
	if (w && archive_write_close(w) != ARCHIVE_OK && rc == 0)
		rc = out_err("write the tar: %s", archive_error_string(w));
	if (w)
		archive_write_free(w);
	return rc;
}

int build_output_write(ib_store *store, const build_output *o, const ib_digest *id, const char *const *tags,
		       size_t ntags)
{
	char hex[IB_DIGEST_STRLEN];
	ib_digest_fmt(hex, id);
	if (o->type == BUILD_OUTPUT_IMAGE || !o->type)
		return 0;
	int to_stdout = !strcmp(o->dest, "-");
	if (o->type == BUILD_OUTPUT_OCI || o->type == BUILD_OUTPUT_DOCKER) {
		ib_save_options so = IB_SAVE_OPTIONS_INIT;
		so.format = o->type == BUILD_OUTPUT_DOCKER ? IB_ARCHIVE_DOCKER
			    : o->oci_tar                   ? IB_ARCHIVE_OCI_ARCHIVE
							   : IB_ARCHIVE_OCI;
		/* the image by its names (-t), as buildx names it in the archive; else by id */
		const char *by_id[] = { hex, NULL };
		const char *const *names = ntags ? tags : by_id;
		char *tmp = to_stdout ? tmp_path("imagebuild-output", 0) : NULL;
		if (to_stdout && !tmp)
			return out_err("create a temporary file: %s", strerror(errno));
		if (tmp)
			unlink(tmp); /* ib_store_save writes it atomically */
		int rc = ib_store_save(store, names, ntags ? ntags : 1, tmp ? tmp : o->dest, &so) < 0
				 ? cli_fail("build: --output") : 0;
		if (rc == 0 && tmp)
			rc = copy_to_stdout(tmp);
		if (tmp)
			unlink(tmp);
		free(tmp);
		return rc;
	}
	ib_image *img = NULL;
	if (ib_store_image_lookup(&img, store, hex) < 0)
		return cli_fail("build: --output");
	int rc = 0;
	if (o->type == BUILD_OUTPUT_LOCAL) {
		if (mkdir(o->dest, 0755) < 0 && errno != EEXIST)
			rc = out_err("--output: create `%s`", o->dest);
		if (rc == 0)
			rc = unpack_rootfs(store, img, o->dest);
	} else { /* tar: the root filesystem, flat */
		char *dir = tmp_path("imagebuild-rootfs", 1);
		char *tmp = to_stdout ? tmp_path("imagebuild-output", 0) : NULL;
		if (!dir || (to_stdout && !tmp))
			rc = out_err("create a temporary directory: %s", strerror(errno));
		if (rc == 0)
			rc = unpack_rootfs(store, img, dir);
		if (rc == 0)
			rc = tar_tree(dir, tmp ? tmp : o->dest);
		if (rc == 0 && tmp)
			rc = copy_to_stdout(tmp);
		if (dir)
			rm_rf(dir);
		if (tmp)
			unlink(tmp);
		free(dir);
		free(tmp);
	}
	ib_image_free(img);
	return rc;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

int build_metadata_write(const char *path, ib_store *store, const ib_digest *id, const char *const *tags,
			 size_t ntags, const build_output *o)
{
	char hex[IB_DIGEST_STRLEN], mhex[IB_DIGEST_STRLEN];
	ib_digest_fmt(hex, id);
	FILE *f = fopen(path, "w");
	if (!f)
		return out_err("--metadata-file: cannot write `%s`", path);
	int image = !o->type || o->type == BUILD_OUTPUT_IMAGE || o->type == BUILD_OUTPUT_OCI ||
		    o->type == BUILD_OUTPUT_DOCKER;
	int rc = 0;
	fputs("{", f);
	if (image) { /* the local and tar exporters report no image (buildx writes none of these keys) */
		ib_image *img = NULL;
		uint64_t size = 0;
		if (ib_store_image_lookup(&img, store, ntags ? tags[0] : hex) < 0 ||
		    ib_store_blob_size(&size, store, ib_image_manifest_digest(img)) < 0) {
			rc = cli_fail("build: --metadata-file");
		} else {
			ib_digest_fmt(mhex, ib_image_manifest_digest(img));
			fprintf(f, "\n  \"containerimage.config.digest\": \"%s\",", hex);
			fprintf(f, "\n  \"containerimage.descriptor\": {\n    \"mediaType\": ");
			json_str(f, ib_image_manifest_media_type(img) ? ib_image_manifest_media_type(img)
								       : "application/vnd.oci.image.manifest.v1+json");
			fprintf(f, ",\n    \"digest\": \"%s\",\n    \"size\": %llu\n  },", mhex, (unsigned long long)size);
			fprintf(f, "\n  \"containerimage.digest\": \"%s\"", mhex);
			if (ntags) {
				/*
				 * the image exporter reports the names as given; the oci and
				 * docker exporters normalized (exporter/oci normalizedNames)
				 */
				fputs(",\n  \"image.name\": \"", f);
				for (size_t t = 0; t < ntags; t++) {
					ib_buf norm = IB_BUF_INIT;
					const char *n = tags[t];
					if ((o->type == BUILD_OUTPUT_OCI || o->type == BUILD_OUTPUT_DOCKER) &&
					    ib_reference_normalize(&norm, tags[t]) == 0)
						n = norm.ptr;
					fprintf(f, "%s", t ? "," : "");
					for (const char *c = n; *c; c++)
						fprintf(f, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
					ib_buf_dispose(&norm);
				}
				fputs("\"", f);
			}
		}
		ib_image_free(img);
	}
	fputs("\n}\n", f);
	if (fclose(f) != 0 && rc == 0)
		rc = out_err("--metadata-file: cannot write `%s`", path);
	return rc;
}

/* docker's units.RAMInBytes: "64m", "1g", "1.5GB", "1024" (binary multiples). */
int build_parse_bytes(int64_t *out, const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0 || *s == '-' || *s == '+' || *s == '.')
		return -1;
	if (*end == ' ')
		end++;
	double mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1024.0; end++; break;
	case 'm': case 'M': mul = 1024.0 * 1024; end++; break;
	case 'g': case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
	case 't': case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
	case 'p': case 'P': mul = 1024.0 * 1024 * 1024 * 1024 * 1024; end++; break;
	default: break;
	}
	if (mul > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return -1;
	*out = (int64_t)(v * mul);
	return 0;
}

/* Whether `b` starts like a tar (ustar magic) or a compressed stream docker takes. */
static int looks_like_archive(const unsigned char *b, size_t n)
{
	if (n >= 262 && !memcmp(b + 257, "ustar", 5))
		return 1;
	if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) /* gzip */
		return 1;
	if (n >= 3 && !memcmp(b, "BZh", 3))
		return 1;
	if (n >= 6 && !memcmp(b, "\xfd" "7zXZ\0", 6))
		return 1;
	if (n >= 4 && !memcmp(b, "\x28\xb5\x2f\xfd", 4)) /* zstd */
		return 1;
	return 0;
}

int build_stdin_context(char **dir, char **content, size_t *len, const char *data, size_t n)
{
	*dir = NULL;
	*content = NULL;
	if (!looks_like_archive((const unsigned char *)data, n)) {
		/* a Dockerfile: the context is empty (docker build - < Dockerfile) */
		if (!(*dir = tmp_path("imagebuild-context", 1)))
			return out_err("create a temporary directory: %s", strerror(errno));
		if (!(*content = malloc(n ? n : 1)))
			return -1;
		memcpy(*content, data, n);
		*len = n;
		return 0;
	}
	/* a tar: the context, unpacked safely (nothing outside the directory) */
	if (!(*dir = tmp_path("imagebuild-context", 1)))
		return out_err("create a temporary directory: %s", strerror(errno));
	char *tmp = tmp_path("imagebuild-context-tar", 0);
	int rc = tmp ? 0 : out_err("create a temporary file: %s", strerror(errno));
	int fd = rc == 0 ? open(tmp, O_RDWR | O_TRUNC | O_CLOEXEC) : -1;
	if (rc == 0 && fd < 0)
		rc = out_err("open `%s`", tmp);
	for (size_t off = 0; rc == 0 && off < n;) {
		ssize_t w = write(fd, data + off, n - off);
		if (w <= 0)
			rc = out_err("write `%s`", tmp);
		else
			off += (size_t)w;
	}
	if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
		rc = -1;
	int dfd = rc == 0 ? open(*dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (rc == 0 && (dfd < 0 || ib_snapshot_apply_tar(dfd, fd, IB_WHITEOUT_DELETE, "stdin") < 0))
		rc = cli_fail("build: the context tar from stdin");
	if (dfd >= 0)
		close(dfd);
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	return rc;
}

void build_stdin_context_remove(const char *dir)
{
	if (dir)
		rm_rf(dir);
}
