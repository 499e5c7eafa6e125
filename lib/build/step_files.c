/* COPY, ADD and WORKDIR: the steps that write files into the rootfs. */
#include "build/internal.h"
#include "build/copy.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/path.h"
#include "util/strlist.h"

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

static int is_archive(int fd)
{
	unsigned char m[512];
	ssize_t n = pread(fd, m, sizeof m, 0);
	if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b)
		return 1; /* gzip */
	if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
		return 1; /* zstd */
	if (n >= 3 && m[0] == 'B' && m[1] == 'Z' && m[2] == 'h')
		return 1; /* bzip2 */
	if (n >= 6 && m[0] == 0xfd && !memcmp(m + 1, "7zXZ", 4))
		return 1; /* xz */
	if (n >= 263 && !memcmp(m + 257, "ustar", 5))
		return 1; /* tar */
	return 0;
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
	ib_walk_filter filter = ib_build__ignore_filter;
	void *fpayload = b->ignore;
	ib_copy_opts co;
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
	for (size_t i = 0; rc == 0 && i < c->sources.count; i++) {
		ib_buf src = IB_BUF_INIT;
		rc = ib_build__expand_one(&src, b, s, c->sources.items[i]);
		if (rc == 0 && shown)
			ib_buf_printf(shown, "%s%s", i ? " " : (add ? "ADD " : "COPY "), src.ptr);
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
		if (rc == 0)
			rc = ib_build__glob(&matches, srcfd, src.ptr, filter, fpayload);
		ib_buf_dispose(&src);
	}
	if (rc < 0) {
		ib_error_prefix("line %d", in->line);
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < matches.n; i++) {
		ib_build__key_add(k, matches.items[i]);
		rc = ib_build__hash_source(k->h, srcfd, matches.items[i], filter, fpayload, c->from ? NULL : b->sums);
	}
	if (rc == 0 && c->heredoc_count) {
		rc = heredoc_dir(&hdfd, &hdpath, b, s, c, k, hash_only);
		if (rc < 0)
			ib_error_prefix("line %d", in->line);
	}
	ib_build__key_add(k, ib_buf_cstr(&dest));
	if (rc == 0 && shown)
		ib_buf_printf(shown, " %s # buildkit", tmp.ptr);
	if (rc < 0 || hash_only)
		goto out;

	/* where it goes */
	int dst_is_dir = dest_slash;
	if (matches.n + c->heredoc_count + urls.n / 2 > 1 && !dst_is_dir) {
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
		if (!*c->chmod || *end || m > 07777) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					   "line %d: --chmod=%s: expected an octal mode", in->line, c->chmod);
			goto out;
		}
		co.set_mode = 1;
		co.mode = (mode_t)m;
	}
	co.filter = filter;
	co.filter_payload = fpayload;
	for (size_t i = 0; rc == 0 && i < matches.n; i++) {
		int afd = -1;
		if (add && (afd = ib_open_in_root(srcfd, matches.items[i], O_RDONLY, 0)) >= 0) {
			struct stat st;
			if (fstat(afd, &st) == 0 && S_ISREG(st.st_mode) && is_archive(afd)) {
				/* ADD extracts local archives into the destination directory */
				rc = ib_build__mkdir_in_root(rootfd, dest.ptr, co.uid, co.gid, NULL);
				int dfd = rc == 0 ? ib_open_in_root(rootfd, dest.ptr, O_RDONLY | O_DIRECTORY, 0) : -1;
				if (rc == 0 && dfd < 0)
					rc = IB_ERROR;
				if (rc == 0)
					rc = ib_snapshot_apply_tar(dfd, afd, IB_WHITEOUT_DELETE, matches.items[i]);
				if (dfd >= 0)
					close(dfd);
				close(afd);
				continue;
			}
			close(afd);
		}
		ib_error_clear();
		rc = ib_build__copy(srcfd, matches.items[i], rootfd, dest.ptr, dst_is_dir, &co);
	}
	/* heredocs are files too (never extracted, even by ADD) */
	ib_copy_opts hco = co;
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
	for (size_t i = 0; rc == 0 && i + 1 < urls.n; i += 2) {
		int ufd = open(urls.items[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = ufd < 0 ? ib_error_set_os(IB_LAYER_BUILD, "open `%s`", urls.items[i])
			     : ib_build__copy(ufd, urls.items[i + 1], rootfd, dest.ptr, dst_is_dir, &hco);
		if (ufd >= 0)
			close(ufd);
	}
	if (rc < 0)
		ib_error_prefix("line %d", in->line);
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
	ib_strlist_clear(&matches);
	ib_strlist_clear(&urls);
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
	if (rc == 0) {
		rc = ib_build__commit_snapshot(b, s, key, created_by.ptr, 0);
	}
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
