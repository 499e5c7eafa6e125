/* COPY, ADD and WORKDIR: the steps that write files into the rootfs. */
#include "util/rootless.h"
#include "build/step_inputs.h"
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

/* A mounted rootfs of another stage or image, for COPY --from. */
int ib_build__source_root(int *fd, char **snapkey, builder *b, const char *from, size_t stage_index)
{
	size_t idx;
	stage_state tmp;
	const stage_state *src = NULL;
	memset(&tmp, 0, sizeof tmp);
	int rc = 0;
	if (ib_plan_resolve_stage(&idx, b->plan, from, stage_index) == 0) {
		/* a stage running beside this one: done first */
		if ((rc = ib_build__stage_wait(b, idx)) < 0)
			return rc;
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

/* Rootless: an owner outside the user namespace's mapped ids is refused here, naming them. */
static int chown_mapped(uid_t uid, gid_t gid, const char *spec)
{
	int uid_ok = ib_userns_id_mapped(0, uid), gid_ok = ib_userns_id_mapped(1, gid);
	if (uid_ok && gid_ok)
		return 0;
	ib_buf why = IB_BUF_INIT;
	ib_userns_describe(&why, uid_ok);
	int rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD, "`%s`: %s %lu is not mapped in this user namespace: %s",
			       spec, uid_ok ? "gid" : "uid", uid_ok ? (unsigned long)gid : (unsigned long)uid,
			       ib_buf_cstr(&why));
	ib_buf_dispose(&why);
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
			return chown_mapped(*uid, *gid, spec);
		}
	}
	ib_user u = IB_USER_INIT;
	int rc = ib_user_resolve(&u, rootfs, spec);
	if (rc == 0) {
		*uid = u.uid;
		*gid = u.gid;
		rc = chown_mapped(*uid, *gid, spec);
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

/* COPY/ADD: the resolved inputs (ib_build__inputs_resolve) into the rootfs. */
static int copy_inputs(builder *b, stage_state *s, const ib_instruction *in, const ib_build__inputs *si,
		       const char *rootfs, int rootfd, ib_build__copied_list *copied)
{
	const ib_instr_copy *c = &in->u.copy;
	int add = in->kind == IB_INSTR_ADD;
	int rc = 0, hdfd = -1;
	char *hdpath = NULL;
	ib_build__copy_opts co;
	ib_build__modeset modeset;
	memset(&co, 0, sizeof co);

	/* the heredocs, as files named after their delimiters in a new temporary directory */
	if (si->heredocs.n) {
		if (!(hdpath = ib_build__tmpdir(b, "imagebuild-heredoc")))
			return IB_ERROR;
		hdfd = open(hdpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (hdfd < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", hdpath);
	}
	for (size_t i = 0; rc == 0 && i + 1 < si->heredocs.n; i += 2) {
		const char *text = si->heredocs.items[i + 1];
		int f = openat(hdfd, si->heredocs.items[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (f < 0) {
			rc = ib_error_set_os(IB_LAYER_BUILD, "heredoc `%s`", si->heredocs.items[i]);
		} else {
			rc = ib_write_all(f, text, strlen(text));
			fchmod(f, 0644);
			close(f);
		}
	}
	if (rc < 0)
		goto out;
	/* where it goes */
	int dst_is_dir = si->dest_slash;
	if (si->matches.n + ib_instruction_heredoc_count(in) + si->urls.n / 2 + si->gits.n / 2 > 1 && !dst_is_dir) {
		int dfd = ib_open_in_root(rootfd, si->dest.ptr, O_RDONLY | O_DIRECTORY, 0);
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
		int dfd = ib_open_in_root(rootfd, si->dest.ptr, O_RDONLY | O_DIRECTORY, 0);
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
	/*
	 * the big files of the context (and of downloads, git checkouts: their
	 * copies below start from `co`) are read there again by the commit
	 * (copy.h); another stage's are not held open
	 */
	if (!c->from) {
		co.copied = ib_build__copied_add;
		co.copied_payload = copied;
	}
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
	ib_ignore *incl = NULL;
	for (size_t i = 0; rc == 0 && i < si->matches.n; i++) {
		ib_build__copy_filter xf;
		ib_ignore_free(incl);
		incl = NULL;
		if ((rc = ib_build__source_filter(&xf, &incl, si, i)) < 0)
			break;
		co.filter = ib_build__copy_filter_fn;
		co.filter_payload = &xf;
		int afd = -1;
		if (add && (afd = ib_open_in_root(si->srcfd, si->matches.items[i], O_RDONLY | O_NONBLOCK, 0)) >= 0) {
			struct stat st;
			int compression = ARCHIVE_FILTER_NONE;
			if (fstat(afd, &st) == 0 && S_ISREG(st.st_mode) && is_archive(afd, &compression)) {
				/* ADD extracts local archives into the destination directory */
				rc = add_archive(b, rootfd, si->dest.ptr, afd, compression, si->matches.items[i], co.uid, co.gid);
				close(afd);
				continue;
			}
			close(afd);
		}
		ib_error_clear();
		rc = ib_build__copy(si->srcfd, si->matches.items[i], rootfd, si->dest.ptr, dst_is_dir, &co);
	}
	ib_ignore_free(incl);
	co.filter = NULL;
	co.filter_payload = NULL;
	/* heredocs are files too (never extracted, even by ADD) */
	ib_build__copy_opts hco = co;
	hco.filter = NULL;
	hco.filter_payload = NULL;
	hco.set_owner = 1;
	if (!c->chown)
		hco.uid = 0, hco.gid = 0;
	for (size_t i = 0; rc == 0 && i < ib_instruction_heredoc_count(in); i++)
		rc = ib_build__copy(hdfd, ib_instruction_heredoc(in, i)->name, rootfd, si->dest.ptr, dst_is_dir, &hco);
	/* downloads: mode 0600 unless --chmod, as Docker; never extracted */
	hco.set_mode = 1;
	hco.mode = c->chmod ? co.mode : 0600;
	hco.modeset = c->chmod ? co.modeset : NULL; /* on the download's 0600 */
	for (size_t i = 0; rc == 0 && i + 1 < si->urls.n; i += 2) {
		int ufd = open(si->urls.items[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = ufd < 0 ? ib_error_set_os(IB_LAYER_BUILD, "open `%s`", si->urls.items[i])
			     : ib_build__copy(ufd, si->urls.items[i + 1], rootfd, si->dest.ptr, dst_is_dir, &hco);
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
	for (size_t i = 0; rc == 0 && i + 1 < si->gits.n; i += 2) {
		int gfd = open(si->gits.items[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = gfd < 0 ? ib_error_set_os(IB_LAYER_BUILD, "open `%s`", si->gits.items[i])
			     : ib_build__copy(gfd, si->gits.items[i + 1], rootfd, si->dest.ptr, 1, &hco);
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
	return rc;
}

int ib_build__do_copy(builder *b, stage_state *s, const ib_instruction *in, const ib_build__inputs *si)
{
	ib_buf rootfs = IB_BUF_INIT;
	char *key = NULL;
	int rootfd = -1;
	/*
	 * --link (BuildKit's dispatchCopy: a copy onto scratch merged over the
	 * stage, unless --chmod is given): the files go into a layer made on an
	 * empty filesystem, which sees nothing of the stage. The destination's
	 * directories are created in it (a symlink of the stage on the way is
	 * not followed), and once stacked they replace the stage's own; --chown
	 * names are looked up in that empty filesystem.
	 */
	stage_state empty;
	memset(&empty, 0, sizeof empty);
	int link = in->u.copy.link && !in->u.copy.chmod;
	int rc = ib_build__new_snapshot(&rootfs, &key, b, link ? &empty : s);
	if (rc == 0) {
		rootfd = open(rootfs.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", rootfs.ptr);
	}
	ib_build__copied_list copied = { NULL, 0, 0, IB_BUILD__COPIED_SETTLE_NS };
	if (rc == 0)
		rc = copy_inputs(b, s, in, si, rootfs.ptr, rootfd, &copied);
	if (rootfd >= 0)
		close(rootfd);
	/* COPY and ADD always make a layer in BuildKit, even one that copied nothing */
	ib_diff_options dopts = b->diff_opts;
	if (copied.n) {
		dopts.content_source = ib_build__copied_source;
		dopts.content_payload = &copied;
	}
	if (rc == 0)
		rc = ib_build__commit_snapshot_with(b, s, key, si->shown.ptr, 1, &dopts);
	ib_build__copied_free(&copied);
	if (key)
		ib_build__drop_snapshot(b, key);
	free(key);
	ib_buf_dispose(&rootfs);
	return rc;
}

/* ---- WORKDIR ---- */

int ib_build__do_workdir(builder *b, stage_state *s, const ib_instruction *in)
{
	ib_buf rootfs = IB_BUF_INIT, created_by = IB_BUF_INIT;
	ib_strlist env = IB_STRLIST_INIT;
	char *key = NULL;
	ib_build__meta m;
	memset(&m, 0, sizeof m);
	int rc = ib_build__step_env(&env, s);
	m.env = (const char *const *)env.items;
	m.escape = b->escape;
	m.history = &created_by;
	if (rc == 0 && (rc = ib_build__meta_apply(s->config, in, &m)) < 0)
		ib_error_prefix("%s:%d", b->filename ? b->filename : "Dockerfile", in->line);
	ib_strlist_clear(&env);
	/* a copy: the config changes below */
	char *path = rc == 0 ? strdup(ib_image_config_get(s->config, IB_CONFIG_WORKDIR)) : NULL;
	if (rc == 0 && !path)
		rc = IB_ERROR;
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
			rc = ib_build__mkdir_in_root(rootfd, path, uid, gid, NULL);
		if (rootfd >= 0)
			close(rootfd);
	}
	if (rc == 0) {
		/* BuildKit makes a layer for every WORKDIR but "/", even when the
		 * directory was there already */
		rc = ib_build__commit_snapshot(b, s, key, created_by.ptr, strcmp(path, "/") != 0);
	}
	if (key)
		ib_build__drop_snapshot(b, key);
	free(key);
	free(path);
	ib_buf_dispose(&rootfs);
	ib_buf_dispose(&created_by);
	return rc;
}
