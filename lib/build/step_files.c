/* COPY, ADD and WORKDIR: the steps that write files into the rootfs. */
#include "build/internal.h"
#include "build/copy.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/path.h"
#include "util/strlist.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- COPY / ADD ---- */

int ib_build__ignore_filter(void *payload, const char *rel, int is_dir)
{
	const ib_ignore *ig = payload;
	if (!ig || !ib_ignore_matches(ig, rel))
		return IB_WALK_INCLUDE;
	if (is_dir && ib_ignore_descend(ig, rel))
		return IB_WALK_EXCLUDE_DESCEND;
	return IB_WALK_EXCLUDE;
}

/*
 * COPY/ADD --exclude and COPY --parents' pattern: the source's own filter
 * (.dockerignore for the context, nothing for --from), then the patterns,
 * matched as fsutil's copy does against the path below each matched source
 * (the source itself is always copied), with .dockerignore's pattern rules
 * (patternmatcher): an excluded path goes; with an include pattern (the
 * part of a --parents source after its "/./" pivot) only what matches it
 * or lies below a match is copied, and a directory on the way to a match
 * only when something below it is (fsutil creates such parents lazily).
 */
typedef struct {
	ib_build__walk_filter inner;
	void *inner_payload;
	const ib_ignore *excl; /* --exclude, or NULL */
	const ib_ignore *incl; /* --parents' pattern, or NULL */
	const char *base;      /* the matched source, scoped ("." for the root) */
} copy_filter;

static int worst(int a, int b)
{
	if (a == IB_WALK_EXCLUDE || b == IB_WALK_EXCLUDE)
		return IB_WALK_EXCLUDE;
	return a == IB_WALK_EXCLUDE_DESCEND || b == IB_WALK_EXCLUDE_DESCEND ? IB_WALK_EXCLUDE_DESCEND : IB_WALK_INCLUDE;
}

static int copy_filter_fn(void *payload, const char *rel, int is_dir)
{
	const copy_filter *x = payload;
	int a = x->inner ? x->inner(x->inner_payload, rel, is_dir) : IB_WALK_INCLUDE;
	if (a == IB_WALK_EXCLUDE)
		return a;
	const char *below = rel;
	if (strcmp(x->base, ".") != 0) {
		size_t n = strlen(x->base);
		if (strncmp(rel, x->base, n) != 0 || rel[n] != '/')
			return a; /* the source itself */
		below = rel + n + 1;
	}
	if (x->excl && ib_ignore_matches(x->excl, below))
		a = worst(a, is_dir && ib_ignore_descend(x->excl, below) ? IB_WALK_EXCLUDE_DESCEND : IB_WALK_EXCLUDE);
	if (x->incl && !ib_ignore_matches(x->incl, below))
		a = worst(a, is_dir ? IB_WALK_EXCLUDE_DESCEND : IB_WALK_EXCLUDE);
	return a;
}

/*
 * COPY --parents SRC (BuildKit's dockerfile2llb/convert_copy.go): the part
 * before the first "/./" (the pivot) is the source directory, copied with
 * its contents only; what follows is an include pattern, relative to it.
 * Without a pivot the source is the root and the whole path the pattern.
 */
static int parents_split(ib_buf *src, ib_buf *pattern, const char *word)
{
	const char *pivot = strstr(word, "/./");
	ib_buf raw = IB_BUF_INIT;
	int rc = pivot ? ib_buf_set(src, word, (size_t)(pivot - word)) : ib_buf_set(src, "/", 1);
	if (rc == 0)
		rc = ib_buf_printf(&raw, "/%s", pivot ? pivot + 3 : word);
	if (rc == 0)
		rc = ib_path_clean(pattern, raw.ptr);
	if (rc == 0 && !src->size)
		rc = ib_buf_set(src, "/", 1);
	ib_buf_dispose(&raw);
	if (rc == 0) {
		/* drop the leading "/" */
		memmove(pattern->ptr, pattern->ptr + 1, pattern->size);
		pattern->size--;
	}
	return rc;
}

/* The filter of one matched source: its --parents pattern compiled into *incl. */
static int source_filter(copy_filter *f, ib_ignore **incl, ib_build__walk_filter inner, void *inner_payload,
			 const ib_ignore *excl, const char *match, const char *pattern)
{
	*incl = NULL;
	*f = (copy_filter){inner, inner_payload, excl, NULL, match};
	if (pattern && *pattern) {
		const char *pats[] = {pattern};
		int rc = ib_ignore_new(incl, pats, 1);
		if (rc < 0)
			return rc;
		f->incl = *incl;
	}
	return 0;
}

/* A mounted rootfs of another stage or image, for COPY --from. */
int ib_build__source_root(int *fd, char **snapkey, builder *b, const char *from, size_t stage_index)
{
	size_t idx;
	stage_state tmp;
	const stage_state *src = NULL;
	memset(&tmp, 0, sizeof tmp);
	int rc = 0;
	if (ib_plan_resolve_stage(&idx, b->plan, from, stage_index) == 0) {
		src = &b->stages[idx];
	} else {
		ib_image *img = NULL;
		if ((rc = ib_build__image(&img, b, from)) < 0) {
			ib_error_prefix("COPY --from=%s", from);
			return rc;
		}
		rc = ib_image_config_dup(&tmp.config, ib_image_config_of(img));
		ib_image_free(img);
		if (rc == 0)
			rc = ib_build__layers_from_config(&tmp, b->store);
		src = &tmp;
	}
	ib_buf rootfs = IB_BUF_INIT;
	if (rc == 0)
		rc = ib_build__new_snapshot(&rootfs, snapkey, b, src);
	if (rc == 0) {
		*fd = open(rootfs.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (*fd < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", rootfs.ptr);
	}
	ib_buf_dispose(&rootfs);
	ib_build__state_dispose(&tmp);
	return rc;
}

int ib_build__parse_chown(uid_t *uid, gid_t *gid, const char *rootfs, const char *spec)
{
	char *end = NULL;
	if (!strchr(spec, ':')) {
		unsigned long v = strtoul(spec, &end, 10);
		if (*spec && end && !*end) {
			*uid = (uid_t)v;
			*gid = (gid_t)v;
			return 0;
		}
	}
	ib_user u = IB_USER_INIT;
	int rc = ib_user_resolve(&u, rootfs, spec);
	if (rc == 0) {
		*uid = u.uid;
		*gid = u.gid;
	}
	ib_user_dispose(&u);
	return rc;
}

/*
 * Whether ADD extracts the local file `fd` (Docker's isArchivePath): a tar,
 * plain or compressed with gzip, bzip2, xz or zstd (what Docker's
 * DecompressStream reads), whose first header reads. A compressed file that
 * is not a tar (data.json.gz), an empty tar or anything else is copied as
 * it is. *filter receives libarchive's code of the compression.
 */
static int is_archive(int fd, int *filter)
{
	struct archive *a = archive_read_new();
	if (!a)
		return 0;
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	struct archive_entry *e;
	/* a first entry, as Docker's isArchivePath (tar.Reader.Next): an empty tar (only
	 * its end blocks, ARCHIVE_EOF) is copied as it is, not extracted to nothing */
	int yes = lseek(fd, 0, SEEK_SET) == 0 && archive_read_open_fd(a, fd, 64 * 1024) == ARCHIVE_OK;
	if (yes) {
		int r = archive_read_next_header(a, &e);
		yes = r == ARCHIVE_OK || r == ARCHIVE_WARN;
	}
	if (yes)
		*filter = archive_filter_code(a, 0);
	archive_read_free(a);
	lseek(fd, 0, SEEK_SET);
	return yes;
}

/*
 * ADD of a local archive: extracted into the directory `dest` (made when
 * missing), safely (ib_snapshot_apply_tar), as Docker's Untar does it: the
 * archive's "./" entry leaves the existing directory's owner and mode alone.
 * What the snapshot layer does not decompress itself (bzip2, xz) is
 * decompressed into a private temporary file first.
 */
static int add_archive(builder *b, int rootfd, const char *dest, int afd, int filter, const char *shown, uid_t uid,
		       gid_t gid)
{
	int rc = ib_build__mkdir_in_root(rootfd, dest, uid, gid, NULL);
	int dfd = rc == 0 ? ib_open_in_root(rootfd, dest, O_RDONLY | O_DIRECTORY, 0) : -1;
	struct stat before;
	if (rc == 0 && dfd < 0)
		rc = IB_ERROR;
	if (rc == 0 && fstat(dfd, &before) < 0)
		rc = ib_error_set_os(IB_LAYER_BUILD, "stat `%s`", dest);
	char *tmpdir = NULL;
	int tfd = -1;
	if (rc == 0 && filter != ARCHIVE_FILTER_NONE && filter != ARCHIVE_FILTER_GZIP && filter != ARCHIVE_FILTER_ZSTD) {
		struct archive *a = archive_read_new();
		char *file = NULL;
		if (!a || !(tmpdir = ib_build__tmpdir(b, "imagebuild-add")) || !(file = ib_sprintf("%s/tar", tmpdir)))
			rc = IB_ERROR;
		if (rc == 0 && (tfd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "create `%s`", file);
		free(file);
		if (rc == 0) {
			archive_read_support_filter_bzip2(a);
			archive_read_support_filter_xz(a);
			archive_read_support_format_raw(a);
			struct archive_entry *e;
			if (archive_read_open_fd(a, afd, 64 * 1024) != ARCHIVE_OK ||
			    archive_read_next_header(a, &e) < ARCHIVE_WARN)
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "decompress `%s`: %s", shown,
						   archive_error_string(a));
		}
		char chunk[64 * 1024];
		for (la_ssize_t n; rc == 0 && (n = archive_read_data(a, chunk, sizeof chunk)) != 0;) {
			if (n < 0)
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "decompress `%s`: %s", shown,
						   archive_error_string(a));
			else
				rc = ib_write_all(tfd, chunk, (size_t)n);
		}
		if (a)
			archive_read_free(a);
		if (rc == 0 && lseek(tfd, 0, SEEK_SET) < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "rewind `%s`", shown);
	}
	if (rc == 0)
		rc = ib_snapshot_apply_tar(dfd, tfd >= 0 ? tfd : afd, IB_WHITEOUT_DELETE, shown);
	/* "./" (or "/") in the archive names the directory it is extracted into: skipped */
	if (rc == 0 && (fchown(dfd, before.st_uid, before.st_gid) < 0 || fchmod(dfd, before.st_mode & 07777) < 0))
		rc = ib_error_set_os(IB_LAYER_BUILD, "restore the owner and mode of `%s`", dest);
	if (tfd >= 0)
		close(tfd);
	if (tmpdir) {
		ib_rm_rf(tmpdir);
		free(tmpdir);
	}
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* The text of a heredoc as COPY/ADD write it: `<<-` chomps tabs; unquoted delimiters expand variables. */
static int heredoc_text(ib_buf *out, builder *b, const stage_state *s, const ib_heredoc *h)
{
	ib_buf raw = IB_BUF_INIT;
	int rc = h->chomp ? ib_heredoc_chomp(&raw, h) : ib_buf_put(&raw, h->content, h->content_len);
	if (rc == 0 && h->expand) {
		ib_strlist env = IB_STRLIST_INIT;
		rc = ib_build__step_env(&env, s);
		if (rc == 0) {
			ib_expand_options eo = IB_EXPAND_OPTIONS_INIT;
			eo.env = (const char *const *)env.items;
			eo.escape = b->escape;
			eo.flags = IB_EXPAND_RAW_QUOTES | IB_EXPAND_RAW_ESCAPES;
			rc = ib_expand_word(out, ib_buf_cstr(&raw), &eo);
		}
		ib_strlist_clear(&env);
	} else if (rc == 0) {
		rc = ib_buf_set(out, raw.ptr ? raw.ptr : "", raw.size);
	}
	ib_buf_dispose(&raw);
	return rc;
}

/* Write the heredocs of COPY/ADD as files named after their delimiters in a new temporary directory. */
static int heredoc_dir(int *fd, char **path, builder *b, const stage_state *s, const ib_instr_copy *c,
		       keyer *k, int hash_only)
{
	int rc = 0;
	*fd = -1;
	*path = NULL;
	if (!hash_only) {
		if (!(*path = ib_build__tmpdir(b, "imagebuild-heredoc")))
			return IB_ERROR;
		*fd = open(*path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (*fd < 0)
			return ib_error_set_os(IB_LAYER_BUILD, "open `%s`", *path);
	}
	for (size_t i = 0; rc == 0 && i < c->heredoc_count; i++) {
		const ib_heredoc *h = &c->heredocs[i];
		ib_buf text = IB_BUF_INIT;
		if (!*h->name || strchr(h->name, '/') || !strcmp(h->name, ".") || !strcmp(h->name, ".."))
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "heredoc `%s` cannot name a file", h->name);
		if (rc == 0)
			rc = heredoc_text(&text, b, s, h);
		if (rc == 0) {
			ib_build__key_add(k, h->name);
			ib_sha256_update(k->h, text.ptr ? text.ptr : "", text.size);
		}
		if (rc == 0 && !hash_only) {
			int f = openat(*fd, h->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (f < 0)
				rc = ib_error_set_os(IB_LAYER_BUILD, "heredoc `%s`", h->name);
			else {
				rc = ib_write_all(f, text.ptr ? text.ptr : "", text.size);
				fchmod(f, 0644);
				close(f);
			}
		}
		ib_buf_dispose(&text);
	}
	return rc;
}

int ib_build__copy_sources(builder *b, stage_state *s, const ib_instruction *in, size_t stage_index,
			const char *rootfs, int rootfd, keyer *k, int hash_only, ib_buf *shown)
{
	const ib_instr_copy *c = &in->u.copy;
	int add = in->kind == IB_INSTR_ADD;
	int srcfd = b->ctxfd, rc = 0, hdfd = -1;
	char *hdpath = NULL;
	char *snapkey = NULL;
	ib_buf dest = IB_BUF_INIT, tmp = IB_BUF_INIT;
	ib_strlist matches = IB_STRLIST_INIT, urls = IB_STRLIST_INIT; /* urls: dir, name pairs */
	ib_strlist patterns = IB_STRLIST_INIT; /* each match's --parents pattern ("" for none) */
	ib_strlist gits = IB_STRLIST_INIT; /* ADD <git ref>: dir, subdir pairs (git.c) */
	ib_build__walk_filter filter = ib_build__ignore_filter;
	void *fpayload = b->ignore;
	ib_build__copy_opts co;
	ib_build__modeset modeset;
	ib_ignore *excl = NULL;
	memset(&co, 0, sizeof co);

	if (c->from) {
		ib_buf from = IB_BUF_INIT;
		rc = ib_build__expand_one(&from, b, s, c->from);
		if (rc == 0)
			rc = ib_build__source_root(&srcfd, &snapkey, b, from.ptr, stage_index);
		ib_buf_dispose(&from);
		filter = NULL;
		fpayload = NULL;
		if (rc < 0)
			goto out;
		/* the key follows the content copied (hashed below), not the source
		 * stage's key: a change in that stage that leaves these files as they
		 * were still finds this step in the cache, as BuildKit does */
		ib_build__key_add(k, "--from");
	}
	/* the destination, relative to WORKDIR */
	if ((rc = ib_build__expand_one(&tmp, b, s, c->dest)) < 0)
		goto out;
	int dest_slash = tmp.size && tmp.ptr[tmp.size - 1] == '/';
	if (tmp.ptr[0] != '/') {
		const char *wd = ib_image_config_get(s->config, IB_CONFIG_WORKDIR);
		ib_path_join(&dest, wd && *wd ? wd : "/", tmp.ptr);
	} else {
		ib_buf_set(&dest, tmp.ptr, tmp.size);
	}
	/* BuildKit: --checksum only for one HTTP(S) (or Git) source */
	if (c->checksum && c->sources.count + c->heredoc_count != 1) {
		rc = ib_build__refuse(b, in, IB_EINVALID, "ADD --checksum can't be specified for multiple sources");
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < c->sources.count; i++) {
		ib_buf src = IB_BUF_INIT;
		rc = ib_build__expand_one(&src, b, s, c->sources.items[i]);
		if (rc == 0 && c->checksum && !ib_build__is_url(src.ptr) && !ib_build__is_git(src.ptr)) {
			rc = ib_build__refuse(b, in, IB_EINVALID,
					      "ADD --checksum requires an HTTP(S) or Git source (`%s` is not one)", src.ptr);
			ib_buf_dispose(&src);
			goto out;
		}
		if (rc == 0 && shown)
			ib_buf_printf(shown, "%s%s", i ? " " : (add ? "ADD " : c->parents ? "COPY --parents " : "COPY "),
				      src.ptr);
		if (rc == 0 && ib_build__is_git(src.ptr)) {
			/* ADD <git ref>: checked out once per build; the commit is in the key */
			const char *dir = NULL, *sub = NULL;
			char commit[41];
			if (!add)
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "source can't be a git ref for COPY (`%s`)",
						   src.ptr);
			else if (c->keep_git_dir)
				rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
						   "ADD --keep-git-dir is not supported (BuildKit keeps a shallow .git, "
						   "which imagebuild does not reproduce)");
			if (rc == 0)
				rc = ib_build__git_fetch(b, src.ptr, c->checksum, &dir, &sub, commit);
			if (rc == 0) {
				ib_build__key_add(k, "git");
				ib_build__key_add(k, src.ptr);
				ib_build__key_add(k, commit);
				rc = ib_strlist_add(&gits, dir);
			}
			if (rc == 0)
				rc = ib_strlist_add(&gits, sub);
			ib_buf_dispose(&src);
			continue;
		}
		if (rc == 0 && ib_build__is_url(src.ptr)) {
			/* ADD <url>: downloaded once per build; its content is in the key */
			const char *dir = NULL, *name = NULL;
			ib_digest d;
			char hex[IB_DIGEST_STRLEN];
			if (!add)
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "COPY cannot copy from a URL (`%s`): use ADD",
						   src.ptr);
			if (rc == 0)
				rc = ib_build__fetch(b, src.ptr, c->checksum, &dir, &name, &d);
			if (rc == 0) {
				ib_digest_fmt(hex, &d);
				ib_build__key_add(k, src.ptr);
				ib_build__key_add(k, hex);
				rc = ib_strlist_add(&urls, dir);
			}
			if (rc == 0)
				rc = ib_strlist_add(&urls, name);
			ib_buf_dispose(&src);
			continue;
		}
		if (rc == 0 && (strstr(src.ptr, "://") || !strncmp(src.ptr, "git@", 4)))
			rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
					   "%s from `%s` is not supported (http:// and https:// URLs are)",
					   add ? "ADD" : "COPY", src.ptr);
		ib_buf pattern = IB_BUF_INIT, dir = IB_BUF_INIT;
		if (rc == 0 && c->parents) {
			rc = parents_split(&dir, &pattern, src.ptr);
			/* BuildKit: a path without wildcards must exist (RequiredPaths) */
			if (rc == 0 && !strpbrk(src.ptr, "*?[")) {
				ib_buf req = IB_BUF_INIT, scoped = IB_BUF_INIT;
				rc = ib_buf_printf(&req, "%s/%s", dir.ptr, pattern.ptr);
				if (rc == 0)
					rc = ib_path_scope(&scoped, req.ptr);
				int fd = rc == 0 ? ib_open_in_root(srcfd, scoped.ptr, O_PATH, 0) : -1;
				int ign = rc == 0 && fd >= 0 && filter && strcmp(scoped.ptr, ".") &&
					  filter(fpayload, scoped.ptr, 0) != IB_WALK_INCLUDE;
				if (rc == 0 && (fd < 0 || ign)) {
					ib_error_clear();
					/* named with the line below, after the loop */
					rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD,
							   "COPY --parents: `%s`: not found in the source (or excluded by .dockerignore)",
							   src.ptr);
				}
				if (fd >= 0)
					close(fd);
				ib_buf_dispose(&req);
				ib_buf_dispose(&scoped);
			}
		} else if (rc == 0) {
			rc = ib_buf_set(&dir, src.ptr, src.size);
		}
		if (rc == 0) {
			rc = ib_build__glob(&matches, srcfd, dir.ptr, filter, fpayload);
			/* BuildKit (AllowEmptyWildcard): a pattern that matches
			 * nothing copies nothing; a missing plain path is an error */
			if (rc == IB_ENOTFOUND && strpbrk(dir.ptr, "*?[")) {
				ib_error_clear();
				rc = 0;
			}
		}
		while (rc == 0 && patterns.n < matches.n)
			rc = ib_strlist_add(&patterns, c->parents ? pattern.ptr : "");
		ib_buf_dispose(&pattern);
		ib_buf_dispose(&dir);
		ib_buf_dispose(&src);
	}
	if (rc < 0) {
		ib_error_prefix("%s:%d", b->filename ? b->filename : "Dockerfile", in->line);
		goto out;
	}
	/* --exclude (raw: BuildKit does not expand them), in the key as written */
	if (c->excludes.count) {
		for (size_t i = 0; i < c->excludes.count; i++) {
			ib_build__key_add(k, "--exclude");
			ib_build__key_add(k, c->excludes.items[i]);
		}
		if ((rc = ib_ignore_new(&excl, c->excludes.items, c->excludes.count)) < 0) {
			rc = ib_build__refuse(b, in, IB_EINVALID, "--exclude: %s", ib_error_last()->message);
			goto out;
		}
	}
	if (c->parents)
		ib_build__key_add(k, "--parents");
	for (size_t i = 0; rc == 0 && i < matches.n; i++) {
		copy_filter xf;
		ib_ignore *incl = NULL;
		ib_build__key_add(k, matches.items[i]);
		ib_build__key_add(k, patterns.items[i]);
		rc = source_filter(&xf, &incl, filter, fpayload, excl, matches.items[i], patterns.items[i]);
		if (rc == 0)
			rc = ib_build__hash_source(k->h, srcfd, matches.items[i], copy_filter_fn, &xf,
						   c->from ? NULL : b->sums);
		ib_ignore_free(incl);
	}
	if (rc == 0 && c->heredoc_count) {
		rc = heredoc_dir(&hdfd, &hdpath, b, s, c, k, hash_only);
		if (rc < 0)
			ib_error_prefix("%s:%d", b->filename ? b->filename : "Dockerfile", in->line);
	}
	ib_build__key_add(k, ib_buf_cstr(&dest));
	/* BuildKit: "COPY a b <<EOF /dest" */
	if (rc == 0 && shown && !c->sources.count)
		ib_buf_puts(shown, add ? "ADD" : "COPY");
	for (size_t i = 0; rc == 0 && shown && i < c->heredoc_count; i++)
		ib_buf_printf(shown, " <<%s", c->heredocs[i].name);
	if (rc == 0 && shown)
		ib_buf_printf(shown, " %s # buildkit", tmp.ptr);
	if (rc < 0 || hash_only)
		goto out;

	/* where it goes */
	int dst_is_dir = dest_slash;
	if (matches.n + c->heredoc_count + urls.n / 2 + gits.n / 2 > 1 && !dst_is_dir) {
		int dfd = ib_open_in_root(rootfd, dest.ptr, O_RDONLY | O_DIRECTORY, 0);
		if (dfd >= 0) {
			close(dfd);
			dst_is_dir = 1;
		} else {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					   "line %d: with more than one source file, the destination must be a directory and end with a /",
					   in->line);
			goto out;
		}
	}
	if (!dst_is_dir) {
		int dfd = ib_open_in_root(rootfd, dest.ptr, O_RDONLY | O_DIRECTORY, 0);
		if (dfd >= 0) {
			close(dfd);
			dst_is_dir = 1;
		} else {
			ib_error_clear();
		}
	}
	/* BuildKit: files from the context become 0:0, files from another stage or
	 * image keep their owners; --chown overrides both */
	co.set_owner = c->from ? 0 : 1;
	if (c->chown) {
		ib_buf ch = IB_BUF_INIT;
		rc = ib_build__expand_one(&ch, b, s, c->chown);
		if (rc == 0)
			rc = ib_build__parse_chown(&co.uid, &co.gid, rootfs, ch.ptr);
		ib_buf_dispose(&ch);
		if (rc < 0) {
			ib_error_prefix("line %d: --chown", in->line);
			goto out;
		}
		co.set_owner = 1;
	}
	if (c->chmod) {
		char *end = NULL;
		unsigned long m = strtoul(c->chmod, &end, 8);
		if (*c->chmod >= '0' && *c->chmod <= '9') {
			/* BuildKit: octal, 0 to 07777 */
			if (*end || m > 07777) {
				rc = ib_build__refuse(b, in, IB_EINVALID,
						      "invalid chmod parameter: '%s'. it should be octal string and between 0 and 07777",
						      c->chmod);
				goto out;
			}
			co.mode = (mode_t)m;
		} else if (ib_build__modeset_parse(&modeset, c->chmod) == 0) {
			/* symbolic (u+x,g-w): applied to each file's own mode */
			co.modeset = &modeset;
		} else {
			rc = ib_build__refuse(b, in, IB_EINVALID,
					      "invalid chmod parameter: '%s': neither an octal mode nor a symbolic one (u+x,g-w)",
					      c->chmod);
			goto out;
		}
		co.set_mode = 1;
	}
	co.filter = filter;
	co.filter_payload = fpayload;
	ib_ignore *incl = NULL;
	for (size_t i = 0; rc == 0 && i < matches.n; i++) {
		copy_filter xf;
		ib_ignore_free(incl);
		if ((rc = source_filter(&xf, &incl, filter, fpayload, excl, matches.items[i], patterns.items[i])) < 0)
			break;
		co.filter = copy_filter_fn;
		co.filter_payload = &xf;
		int afd = -1;
		if (add && (afd = ib_open_in_root(srcfd, matches.items[i], O_RDONLY | O_NONBLOCK, 0)) >= 0) {
			struct stat st;
			int compression = ARCHIVE_FILTER_NONE;
			if (fstat(afd, &st) == 0 && S_ISREG(st.st_mode) && is_archive(afd, &compression)) {
				/* ADD extracts local archives into the destination directory */
				rc = add_archive(b, rootfd, dest.ptr, afd, compression, matches.items[i], co.uid, co.gid);
				close(afd);
				continue;
			}
			close(afd);
		}
		ib_error_clear();
		rc = ib_build__copy(srcfd, matches.items[i], rootfd, dest.ptr, dst_is_dir, &co);
	}
	ib_ignore_free(incl);
	co.filter = filter;
	co.filter_payload = fpayload;
	/* heredocs are files too (never extracted, even by ADD) */
	ib_build__copy_opts hco = co;
	hco.filter = NULL;
	hco.filter_payload = NULL;
	hco.set_owner = 1;
	if (!c->chown)
		hco.uid = 0, hco.gid = 0;
	for (size_t i = 0; rc == 0 && i < c->heredoc_count; i++)
		rc = ib_build__copy(hdfd, c->heredocs[i].name, rootfd, dest.ptr, dst_is_dir, &hco);
	/* downloads: mode 0600 unless --chmod, as Docker; never extracted */
	hco.set_mode = 1;
	hco.mode = c->chmod ? co.mode : 0600;
	hco.modeset = c->chmod ? co.modeset : NULL; /* on the download's 0600 */
	for (size_t i = 0; rc == 0 && i + 1 < urls.n; i += 2) {
		int ufd = open(urls.items[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = ufd < 0 ? ib_error_set_os(IB_LAYER_BUILD, "open `%s`", urls.items[i])
			     : ib_build__copy(ufd, urls.items[i + 1], rootfd, dest.ptr, dst_is_dir, &hco);
		if (ufd >= 0)
			close(ufd);
	}
	/* git checkouts: the tree's contents into the destination, owned 0:0 or --chown, modes as checked out or --chmod */
	hco = co;
	hco.filter = NULL;
	hco.filter_payload = NULL;
	hco.set_owner = 1;
	if (!c->chown)
		hco.uid = 0, hco.gid = 0;
	for (size_t i = 0; rc == 0 && i + 1 < gits.n; i += 2) {
		int gfd = open(gits.items[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = gfd < 0 ? ib_error_set_os(IB_LAYER_BUILD, "open `%s`", gits.items[i])
			     : ib_build__copy(gfd, gits.items[i + 1], rootfd, dest.ptr, 1, &hco);
		if (gfd >= 0)
			close(gfd);
	}
	if (rc < 0)
		ib_error_prefix("%s:%d", b->filename ? b->filename : "Dockerfile", in->line);
out:
	if (hdfd >= 0)
		close(hdfd);
	if (hdpath) {
		ib_rm_rf(hdpath);
		free(hdpath);
	}
	if (srcfd >= 0 && srcfd != b->ctxfd)
		close(srcfd);
	if (snapkey) {
		ib_build__drop_snapshot(b, snapkey);
		free(snapkey);
	}
	ib_ignore_free(excl);
	ib_strlist_clear(&patterns);
	ib_strlist_clear(&matches);
	ib_strlist_clear(&urls);
	ib_strlist_clear(&gits);
	ib_buf_dispose(&dest);
	ib_buf_dispose(&tmp);
	return rc;
}

int ib_build__do_copy(builder *b, stage_state *s, const ib_instruction *in, size_t stage_index)
{
	ib_buf rootfs = IB_BUF_INIT, created_by = IB_BUF_INIT;
	char *key = NULL;
	keyer k = {NULL};
	int rootfd = -1;
	int rc = ib_build__new_snapshot(&rootfs, &key, b, s);
	if (rc == 0) {
		rootfd = open(rootfs.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", rootfs.ptr);
	}
	if (rc == 0)
		rc = ib_build__key_begin(&k, s, in);
	if (rc == 0)
		rc = ib_build__copy_sources(b, s, in, stage_index, rootfs.ptr, rootfd, &k, 0, &created_by);
	if (k.h)
		ib_sha256_free(k.h);
	if (rootfd >= 0)
		close(rootfd);
	/* COPY and ADD always make a layer in BuildKit, even one that copied nothing */
	if (rc == 0)
		rc = ib_build__commit_snapshot(b, s, key, created_by.ptr, 1);
	if (key)
		ib_build__drop_snapshot(b, key);
	free(key);
	ib_buf_dispose(&rootfs);
	ib_buf_dispose(&created_by);
	return rc;
}

/* ---- WORKDIR ---- */

int ib_build__do_workdir(builder *b, stage_state *s, const ib_instruction *in)
{
	ib_buf v = IB_BUF_INIT, path = IB_BUF_INIT, rootfs = IB_BUF_INIT, created_by = IB_BUF_INIT;
	char *key = NULL;
	int rc = ib_build__expand_one(&v, b, s, in->u.value);
	if (rc == 0) {
		if (v.ptr[0] == '/') {
			rc = ib_path_clean(&path, v.ptr);
		} else {
			const char *wd = ib_image_config_get(s->config, IB_CONFIG_WORKDIR);
			ib_buf j = IB_BUF_INIT;
			rc = ib_path_join(&j, wd && *wd ? wd : "/", v.ptr);
			if (rc == 0)
				rc = ib_path_clean(&path, j.ptr);
			ib_buf_dispose(&j);
		}
	}
	if (rc == 0)
		rc = ib_image_config_set(s->config, IB_CONFIG_WORKDIR, path.ptr);
	if (rc == 0)
		rc = ib_build__new_snapshot(&rootfs, &key, b, s);
	if (rc == 0) {
		int rootfd = open(rootfs.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		uid_t uid = 0;
		gid_t gid = 0;
		const char *user = ib_image_config_get(s->config, IB_CONFIG_USER);
		if (rootfd < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", rootfs.ptr);
		if (rc == 0 && user && *user)
			rc = ib_build__parse_chown(&uid, &gid, rootfs.ptr, user);
		if (rc == 0)
			rc = ib_build__mkdir_in_root(rootfd, path.ptr, uid, gid, NULL);
		if (rootfd >= 0)
			close(rootfd);
	}
	if (rc == 0) {
		/* BuildKit makes a layer for every WORKDIR but "/", even when the
		 * directory was there already */
		ib_buf_printf(&created_by, "WORKDIR %s", path.ptr);
		rc = ib_build__commit_snapshot(b, s, key, created_by.ptr, strcmp(path.ptr, "/") != 0);
	}
	if (key)
		ib_build__drop_snapshot(b, key);
	free(key);
	ib_buf_dispose(&v);
	ib_buf_dispose(&path);
	ib_buf_dispose(&rootfs);
	ib_buf_dispose(&created_by);
	return rc;
}
