/*
 * ADD <git ref>: a repository at a ref, checked out with libgit2, as
 * BuildKit's Dockerfile frontend (frontend/dockerfile/dfgitutil, util/gitutil)
 * and its git source (source/git/source.go) do it:
 *
 *   - which sources are git: http(s):// URLs whose path ends in ".git",
 *     git:// URLs, ssh:// URLs and scp-like `user@host:path`; `./x`, `../x`
 *     and the deprecated `github.com/x/y` are local paths for ADD.
 *   - `#ref:subdir`: the ref (a branch, a tag, `refs/...` or a full commit
 *     sha; none: the remote's default branch) resolved as BuildKit resolves
 *     `git ls-remote` (an exact `refs/...` name, then a branch, then a tag,
 *     an annotated tag peeled to its commit); the subdir cleaned as Go's
 *     path.Join("/", subdir) does, so `../x` is `x` inside the repository;
 *     a subdir that is not a directory of the tree (a file, a symlink, a
 *     path through a symlink) is refused. A ref starting with `-` is refused.
 *   - the checkout: the commit's tree (with a subdir, its paths only), files 0644 or 0755 as the
 *     tree says, directories 0755, symlinks as symlinks, mtimes the time of
 *     the checkout (BuildKit's default `mtime=checkout`), no `.git`.
 *   - the step's cache key holds the commit sha (and the source as
 *     written): a ref that moves to another commit runs the step again.
 *   - the query form (Dockerfile frontend 1.18): ?ref= ?tag= ?branch=
 *     ?subdir= ?checksum= ?commit= ?submodules ?keep-git-dir=false and
 *     ?mtime=checkout|commit (commit: the committer's time on every entry,
 *     as BuildKit's resetSnapshotMtimes), with BuildKit's conflicts and
 *     errors (loadQuery).
 *
 * Refused, naming the line: ssh transports (BuildKit needs a forwarded SSH
 * agent, which we do not have), `--keep-git-dir` and ?keep-git-dir=true
 * (BuildKit keeps a shallow `.git` we do not reproduce), ?fetch-by-commit,
 * and trees that hold submodules (BuildKit checks them out).
 *
 * Bounds: a clone stops at IB_GIT_MAX_BYTES received or IB_GIT_MAX_SECONDS
 * while data flows; libgit2 1.5 has no read timeout of its own.
 */
#include "build/internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <git2.h>
#include "build/git_names.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IB_GIT_MAX_BYTES (4ULL << 30)
#define IB_GIT_MAX_SECONDS 1800

/* The scheme of `src` ("http", ...) when it starts with [a-zA-Z0-9]+://, else NULL. */
static const char *scheme_end(const char *src)
{
	const char *p = src;
	while (isalnum((unsigned char)*p))
		p++;
	return p > src && !strncmp(p, "://", 3) ? p : NULL;
}

static int scheme_is(const char *src, const char *end, const char *name)
{
	return (size_t)(end - src) == strlen(name) && !strncasecmp(src, name, strlen(name));
}

/* BuildKit's sshutil.IsImplicitSSHTransport: ^[a-zA-Z0-9-_]+@[a-zA-Z0-9-.]+:.* */
static int is_scp_like(const char *src)
{
	static const char user[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
	static const char host[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.";
	size_t u = strspn(src, user);
	if (!u || src[u] != '@')
		return 0;
	size_t h = strspn(src + u + 1, host);
	return h && src[u + 1 + h] == ':';
}

int ib_build__is_git(const char *src)
{
	if (!strncmp(src, "./", 2) || !strncmp(src, "../", 3) || !strncmp(src, "github.com/", 11))
		return 0;
	const char *end = scheme_end(src);
	if (!end)
		return is_scp_like(src);
	if (scheme_is(src, end, "git") || scheme_is(src, end, "ssh"))
		return 1;
	if (!scheme_is(src, end, "http") && !scheme_is(src, end, "https"))
		return 0;
	/* an HTTP(S) URL is git when its path ends in ".git" */
	const char *host = end + 3;
	const char *path = host + strcspn(host, "/?#");
	size_t len = *path == '/' ? strcspn(path, "?#") : 0;
	return len >= 4 && !strncmp(path + len - 4, ".git", 4);
}

/* Go's url.Parse unescapes the fragment: %XX. */
static int unescape(ib_buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			char hex[3] = {s[i + 1], s[i + 2], 0};
			char c = (char)strtol(hex, NULL, 16);
			if (ib_buf_put(out, &c, 1) < 0)
				return IB_ERROR;
			i += 2;
		} else if (ib_buf_put(out, s + i, 1) < 0) {
			return IB_ERROR;
		}
	}
	return 0;
}

/* path.Join("/", p) without the leading "/": "." and ".." resolved, never above the top. */
static int clean_subdir(ib_buf *out, const char *p)
{
	ib_buf_clear(out);
	int rc = 0;
	while (rc == 0 && *p) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* nothing */
		} else if (n == 2 && !strncmp(p, "..", 2)) {
			const char *slash = strrchr(ib_buf_cstr(out), '/');
			ib_buf_truncate(out, slash ? (size_t)(slash - out->ptr) : 0);
		} else {
			if (out->size)
				rc = ib_buf_put(out, "/", 1);
			if (rc == 0)
				rc = ib_buf_put(out, p, n);
		}
		p += n;
		if (*p == '/')
			p++;
	}
	return rc;
}

typedef struct {
	ib_buf remote, ref, subdir;
	ib_buf checksum;  /* --checksum, or ?checksum= / ?commit= */
	int mtime_commit; /* ?mtime=commit: every mtime is the commit's time */
} git_src;

static void git_src_dispose(git_src *g)
{
	ib_buf_dispose(&g->remote);
	ib_buf_dispose(&g->ref);
	ib_buf_dispose(&g->subdir);
	ib_buf_dispose(&g->checksum);
}

/* Go's url.QueryUnescape: %XX, and '+' for a space. */
static int query_unescape(ib_buf *out, const char *s, size_t n)
{
	int rc = 0;
	ib_buf_clear(out);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (s[i] == '+') {
			rc = ib_buf_putc(out, ' ');
		} else if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
			   isxdigit((unsigned char)s[i + 2])) {
			char hex[3] = {s[i + 1], s[i + 2], 0};
			rc = ib_buf_putc(out, (char)strtol(hex, NULL, 16));
			i += 2;
		} else {
			rc = ib_buf_putc(out, s[i]);
		}
	}
	return rc;
}

/* strconv.ParseBool */
static int parse_bool(const char *v, int *out)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < 6; i++) {
		if (!strcmp(v, t[i]))
			return *out = 1, 0;
		if (!strcmp(v, f[i]))
			return *out = 0, 0;
	}
	return -1;
}

#define QUERY_FAIL(...) (rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, __VA_ARGS__))

/*
 * The query form (Dockerfile frontend 1.18, dfgitutil loadQuery): ref, tag,
 * branch, subdir, checksum/commit, keep-git-dir, submodules, mtime; what
 * BuildKit refuses is refused with its words; keep-git-dir=true and
 * fetch-by-commit are not supported.
 */
static int parse_query(git_src *g, const char *src, const char *q, size_t qlen)
{
	int rc = 0;
	ib_buf key = IB_BUF_INIT, val = IB_BUF_INIT, tag = IB_BUF_INIT, branch = IB_BUF_INIT, seen = IB_BUF_INIT;
	int has_tag = 0, has_branch = 0;
	ib_buf_puts(&seen, "&");
	for (size_t i = 0; rc == 0 && i < qlen;) {
		size_t n = 0;
		while (i + n < qlen && q[i + n] != '&')
			n++;
		const char *pair = q + i;
		i += n + 1;
		if (!n)
			continue;
		size_t kl = 0;
		while (kl < n && pair[kl] != '=')
			kl++;
		int noval = kl == n;
		if ((rc = query_unescape(&key, pair, kl)) < 0 ||
		    (rc = query_unescape(&val, noval ? "" : pair + kl + 1, noval ? 0 : n - kl - 1)) < 0)
			break;
		const char *k = ib_buf_cstr(&key), *v = ib_buf_cstr(&val);
		if (!k || !v) { /* never: tells GCC's -Wformat-overflow under UBSan that they are not NULL */
			rc = IB_ERROR;
			break;
		}
		ib_buf probe = IB_BUF_INIT;
		ib_buf_printf(&probe, "&%s&", k);
		if (strstr(ib_buf_cstr(&seen), ib_buf_cstr(&probe)))
			QUERY_FAIL("ADD `%s`: query \"%s\" has multiple values", src, k);
		ib_buf_dispose(&probe);
		if (rc < 0)
			break;
		ib_buf_printf(&seen, "%s&", k);
		int flag = !strcmp(k, "submodules") || !strcmp(k, "keep-git-dir") || !strcmp(k, "fetch-by-commit");
		int b = 1;
		if (!*v && !flag) {
			QUERY_FAIL("ADD `%s`: query \"%s\" has no value", src, k);
		} else if (!strcmp(k, "ref")) {
			if (g->ref.size && strcmp(g->ref.ptr, v))
				QUERY_FAIL("ADD `%s`: ref conflicts: \"%s\" vs \"%s\"", src, g->ref.ptr, v);
			else
				rc = ib_buf_puts(&g->ref, g->ref.size ? "" : v);
		} else if (!strcmp(k, "tag")) {
			has_tag = 1;
			rc = ib_buf_set(&tag, v, strlen(v));
		} else if (!strcmp(k, "branch")) {
			has_branch = 1;
			rc = ib_buf_set(&branch, v, strlen(v));
		} else if (!strcmp(k, "subdir")) {
			ib_buf clean = IB_BUF_INIT;
			rc = clean_subdir(&clean, v);
			if (rc == 0 && g->subdir.size && strcmp(g->subdir.ptr, ib_buf_cstr(&clean)))
				QUERY_FAIL("ADD `%s`: subdir conflicts: \"%s\" vs \"%s\"", src, g->subdir.ptr, v);
			else if (rc == 0)
				rc = ib_buf_set(&g->subdir, ib_buf_cstr(&clean), clean.size);
			ib_buf_dispose(&clean);
		} else if (!strcmp(k, "checksum") || !strcmp(k, "commit")) {
			if (g->checksum.size && strcmp(g->checksum.ptr, v))
				QUERY_FAIL("ADD `%s`: checksum mismatch \"%s\" != \"%s\"", src, g->checksum.ptr, v);
			else
				rc = ib_buf_set(&g->checksum, v, strlen(v));
		} else if (!strcmp(k, "keep-git-dir") || !strcmp(k, "submodules") || !strcmp(k, "fetch-by-commit")) {
			if (*v && parse_bool(v, &b) < 0)
				QUERY_FAIL("ADD `%s`: invalid %s value: \"%s\"", src, k, v);
			else if (b && strcmp(k, "submodules"))
				rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD, "ADD `%s`: %s is not supported", src, k);
			/* submodules: either way, a tree holding one is refused below */
		} else if (!strcmp(k, "mtime")) {
			if (strcmp(v, "checkout") && strcmp(v, "commit"))
				QUERY_FAIL("ADD `%s`: invalid mtime value: \"%s\" (must be \"checkout\" or \"commit\")", src, v);
			g->mtime_commit = !strcmp(v, "commit");
		} else {
			QUERY_FAIL("ADD `%s`: unexpected query \"%s\"", src, k);
		}
	}
	if (rc == 0 && has_tag && tag.size) {
		ib_buf full = IB_BUF_INIT;
		rc = ib_buf_printf(&full, "%s%s", strncmp(tag.ptr, "refs/tags/", 10) ? "refs/tags/" : "", tag.ptr);
		if (rc == 0 && g->ref.size && strcmp(g->ref.ptr, full.ptr))
			QUERY_FAIL("ADD `%s`: ref conflicts: \"%s\" vs \"%s\"", src, g->ref.ptr, full.ptr);
		else if (rc == 0)
			rc = ib_buf_set(&g->ref, full.ptr, full.size);
		ib_buf_dispose(&full);
	}
	if (rc == 0 && has_branch && branch.size) {
		ib_buf full = IB_BUF_INIT;
		if (has_tag && tag.size)
			QUERY_FAIL("ADD `%s`: branch conflicts with tag", src);
		if (rc == 0)
			rc = ib_buf_printf(&full, "%s%s", strncmp(branch.ptr, "refs/heads/", 11) ? "refs/heads/" : "",
					   branch.ptr);
		if (rc == 0 && g->ref.size && strcmp(g->ref.ptr, full.ptr))
			QUERY_FAIL("ADD `%s`: ref conflicts: \"%s\" vs \"%s\"", src, g->ref.ptr, full.ptr);
		else if (rc == 0)
			rc = ib_buf_set(&g->ref, full.ptr, full.size);
		ib_buf_dispose(&full);
	}
	ib_buf_dispose(&key);
	ib_buf_dispose(&val);
	ib_buf_dispose(&tag);
	ib_buf_dispose(&branch);
	ib_buf_dispose(&seen);
	return rc;
}

static int parse_src(git_src *g, const char *src, const char *checksum)
{
	const char *end = scheme_end(src);
	if (!end || scheme_is(src, end, "ssh"))
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
				     "ADD `%s`: git over SSH is not supported (BuildKit needs a forwarded SSH agent, "
				     "which imagebuild does not have); use an https:// URL",
				     src);
	/* as Go's url.Parse: the fragment after the first '#', the query between '?' and it */
	size_t rlen = strcspn(src, "?#");
	const char *hash = strchr(src, '#');
	int rc = ib_buf_set(&g->remote, src, rlen);
	if (rc == 0 && checksum)
		rc = ib_buf_puts(&g->checksum, checksum);
	if (rc == 0 && hash) {
		const char *frag = hash + 1;
		size_t reflen = strcspn(frag, ":");
		ib_buf raw = IB_BUF_INIT;
		rc = unescape(&g->ref, frag, reflen);
		if (rc == 0 && frag[reflen] == ':')
			rc = unescape(&raw, frag + reflen + 1, strlen(frag + reflen + 1));
		if (rc == 0)
			rc = clean_subdir(&g->subdir, ib_buf_cstr(&raw));
		ib_buf_dispose(&raw);
	}
	if (rc == 0 && src[rlen] == '?')
		rc = parse_query(g, src, src + rlen + 1, (hash ? (size_t)(hash - src) : strlen(src)) - rlen - 1);
	/* BuildKit (validateGitRef): a ref never reads as an option */
	if (rc == 0 && ib_buf_cstr(&g->ref)[0] == '-')
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "ADD `%s`: invalid git ref \"%s\"", src, ib_buf_cstr(&g->ref));
	return rc;
}

static int git_fail(const char *what, const char *remote)
{
	const git_error *e = git_error_last();
	return ib_error_set(IB_LAYER_BUILD, "git %s `%s`: %s", what, remote, e && e->message ? e->message : "failed");
}

typedef struct {
	time_t start;
} progress;

static int on_transfer(const git_indexer_progress *st, void *payload)
{
	progress *p = payload;
	if (st->received_bytes > IB_GIT_MAX_BYTES) {
		git_error_set_str(GIT_ERROR_NET, "the repository is larger than the limit");
		return -1;
	}
	if (time(NULL) - p->start > IB_GIT_MAX_SECONDS) {
		git_error_set_str(GIT_ERROR_NET, "the clone took longer than the limit");
		return -1;
	}
	return 0;
}

static int is_sha(const char *s)
{
	size_t n = strlen(s);
	return n == 40 && strspn(s, "0123456789abcdef") == n;
}

/*
 * Which ref and commit `ref` names on the remote, as BuildKit reads
 * `git ls-remote`: an exact refs/ name, then refs/heads/REF, then
 * refs/tags/REF (its peeled ^{} when annotated).
 */
static int resolve_remote(ib_buf *used, git_oid *oid, git_remote *remote, const char *ref, const char *shown)
{
	const git_remote_head **heads;
	size_t n;
	git_buf def = {0};
	int rc = 0;
	ib_buf partial = IB_BUF_INIT, head = IB_BUF_INIT, tag = IB_BUF_INIT;
	if (!*ref) {
		if (git_remote_default_branch(&def, remote) < 0)
			return git_fail("find the default branch of", shown);
		ref = def.ptr ? def.ptr : "";
	}
	if (git_remote_ls(&heads, &n, remote) < 0) {
		git_buf_dispose(&def);
		return git_fail("list the refs of", shown);
	}
	/* BuildKit's partialRef, headRef and tagRef */
	if (ib_buf_puts(&partial, "refs/") < 0 || ib_buf_puts(&partial, ref + (strncmp(ref, "refs/", 5) ? 0 : 5)) < 0 ||
	    ib_buf_puts(&head, "refs/heads/") < 0 ||
	    ib_buf_puts(&head, ref + (strncmp(ref, "refs/heads/", 11) ? 0 : 11)) < 0 ||
	    ib_buf_puts(&tag, "refs/tags/") < 0 || ib_buf_puts(&tag, ref + (strncmp(ref, "refs/tags/", 10) ? 0 : 10)) < 0)
		rc = IB_ERROR;
	const git_remote_head *hp = NULL, *hh = NULL, *ht = NULL;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!strcmp(heads[i]->name, partial.ptr))
			hp = heads[i];
		else if (!strcmp(heads[i]->name, head.ptr))
			hh = heads[i];
		else if (!strcmp(heads[i]->name, tag.ptr))
			ht = heads[i];
	}
	const git_remote_head *pick = hp ? hp : hh ? hh : ht;
	if (rc == 0 && !pick)
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD, "git `%s`: the repository has no ref \"%s\"", shown, ref);
	if (rc == 0) {
		*oid = pick->oid;
		rc = ib_buf_puts(used, pick->name);
	}
	git_buf_dispose(&def);
	ib_buf_dispose(&partial);
	ib_buf_dispose(&head);
	ib_buf_dispose(&tag);
	return rc;
}

/* Files 0644 or 0755 as the tree says, directories 0755, whatever the umask. */
typedef struct {
	int rootfd;
	const char *prefix; /* the subdir and "/", or "" */
	const struct timespec *mtime; /* mtime=commit: set on every entry */
	int failed;
	const char *submodule;
	ib_buf sub;
} walk_ctx;

static int on_entry(const char *root, const git_tree_entry *e, void *payload)
{
	walk_ctx *w = payload;
	ib_buf path = IB_BUF_INIT;
	git_filemode_t m = git_tree_entry_filemode(e);
	if (ib_buf_printf(&path, "%s%s%s", w->prefix, root, git_tree_entry_name(e)) < 0) {
		w->failed = 1;
		return -1;
	}
	if (m == GIT_FILEMODE_COMMIT) {
		/* the first walk (no rootfd) looks for submodules; the second leaves their empty directories */
		int first = w->rootfd < 0;
		if (first)
			ib_buf_set(&w->sub, path.ptr, path.size);
		ib_buf_dispose(&path);
		return first ? -1 : 0;
	}
	if (w->rootfd >= 0 && m != GIT_FILEMODE_LINK) {
		mode_t mode = m == GIT_FILEMODE_BLOB_EXECUTABLE || m == GIT_FILEMODE_TREE ? 0755 : 0644;
		if (fchmodat(w->rootfd, path.ptr, mode, 0) < 0) {
			ib_error_set_os(IB_LAYER_BUILD, "chmod `%s`", path.ptr);
			w->failed = 1;
			ib_buf_dispose(&path);
			return -1;
		}
	}
	if (w->rootfd >= 0 && w->mtime) {
		struct timespec ts[2] = {w->mtime[0], w->mtime[0]};
		if (utimensat(w->rootfd, path.ptr, ts, AT_SYMLINK_NOFOLLOW) < 0) {
			ib_error_set_os(IB_LAYER_BUILD, "set the mtime of `%s`", path.ptr);
			w->failed = 1;
			ib_buf_dispose(&path);
			return -1;
		}
	}
	ib_buf_dispose(&path);
	return 0;
}

/* Clone `g` into `dir`/repo and check it out into `dir`/tree; the commit's sha in `commit`. */
static int clone_checkout(const char *dir, const git_src *g, const char *checksum, char commit[GIT_OID_HEXSZ + 1],
			  const char *shown)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	git_object *obj = NULL, *peeled = NULL;
	git_tree *tree = NULL;
	git_tree_entry *sub = NULL;
	git_oid oid;
	ib_buf used = IB_BUF_INIT, spec = IB_BUF_INIT;
	char *repodir = ib_sprintf("%s/repo", dir), *treedir = ib_sprintf("%s/tree", dir);
	progress prog = {time(NULL)};
	int rc = repodir && treedir ? 0 : IB_ERROR;
	walk_ctx w = {-1, "", NULL, 0, NULL, IB_BUF_INIT};

	if (rc == 0 && git_repository_init(&repo, repodir, 1) < 0)
		rc = git_fail("init a repository for", shown);
	/* anonymous, and no url.*.insteadOf rewriting from the host's git config
	 * (which also leaks in libgit2 1.5's PCRE2 matching) */
	git_remote_create_options ro = GIT_REMOTE_CREATE_OPTIONS_INIT;
	ro.repository = repo;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	if (rc == 0 && git_remote_create_with_opts(&remote, g->remote.ptr, &ro) < 0)
		rc = git_fail("open", shown);
	git_remote_callbacks cbs = GIT_REMOTE_CALLBACKS_INIT;
	cbs.transfer_progress = on_transfer;
	cbs.payload = &prog;
	if (rc == 0 && git_remote_connect(remote, GIT_DIRECTION_FETCH, &cbs, NULL, NULL) < 0)
		rc = git_fail("connect to", shown);
	int by_sha = is_sha(ib_buf_cstr(&g->ref));
	if (rc == 0 && !by_sha)
		rc = resolve_remote(&used, &oid, remote, ib_buf_cstr(&g->ref), shown);
	if (remote)
		git_remote_disconnect(remote);
	/* a ref: fetch it alone; a commit sha: the branches and tags that hold it */
	char *specs[2];
	git_strarray refspecs = {specs, 0};
	if (rc == 0 && !by_sha) {
		rc = ib_buf_printf(&spec, "+%s:%s", used.ptr, used.ptr);
		specs[0] = spec.ptr;
		refspecs.count = 1;
	} else if (rc == 0) {
		specs[0] = "+refs/heads/*:refs/heads/*";
		specs[1] = "+refs/tags/*:refs/tags/*";
		refspecs.count = 2;
		if (git_oid_fromstr(&oid, ib_buf_cstr(&g->ref)) < 0)
			rc = git_fail("read the commit of", shown);
	}
	git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
	fo.callbacks = cbs;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fo.update_fetchhead = 0;
	if (rc == 0 && git_remote_fetch(remote, &refspecs, &fo, NULL) < 0)
		rc = git_fail("fetch", shown);
	if (rc == 0 && git_object_lookup(&obj, repo, &oid, GIT_OBJECT_ANY) < 0)
		rc = by_sha ? ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD,
					    "git `%s`: no branch or tag of the repository holds the commit %s", shown,
					    ib_buf_cstr(&g->ref))
			    : git_fail("read the fetched ref of", shown);
	if (rc == 0 && git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0)
		rc = git_fail("find the commit of", shown);
	if (rc == 0) {
		git_oid_tostr(commit, GIT_OID_HEXSZ + 1, git_object_id(peeled));
		/* BuildKit: --checksum is a prefix of the commit (or of the annotated tag) */
		char tagsha[GIT_OID_HEXSZ + 1];
		git_oid_tostr(tagsha, sizeof tagsha, &oid);
		if (checksum && strncmp(commit, checksum, strlen(checksum)) && strncmp(tagsha, checksum, strlen(checksum)))
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					   "git `%s`: expected checksum to match %s, got %s", shown, checksum, commit);
	}
	if (rc == 0 && git_commit_tree(&tree, (git_commit *)peeled) < 0)
		rc = git_fail("read the tree of", shown);
	/* the subdir: a directory of the tree (never a symlink or a path through one) */
	const git_tree *top = tree;
	git_tree *subtree = NULL;
	if (rc == 0 && g->subdir.size) {
		if (git_tree_entry_bypath(&sub, tree, g->subdir.ptr) < 0)
			rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD,
					   "git `%s`: invalid subdir \"%s\": not in the tree of commit %s", shown,
					   g->subdir.ptr, commit);
		else if (git_tree_entry_filemode(sub) != GIT_FILEMODE_TREE)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					   "git `%s`: invalid subdir \"%s\": not a directory", shown, g->subdir.ptr);
		else if (git_tree_lookup(&subtree, repo, git_tree_entry_id(sub)) < 0)
			rc = git_fail("read the subdir of", shown);
		top = subtree;
	}
	/* BuildKit checks submodules out: refused rather than left empty */
	if (rc == 0 && git_tree_walk(top, GIT_TREEWALK_PRE, on_entry, &w) < 0)
		rc = w.sub.size ? ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
						"git `%s`: submodules are not supported (`%s` is one)", shown, w.sub.ptr)
				: w.failed ? IB_ERROR : git_fail("walk the tree of", shown);
	if (rc == 0) {
		git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
		co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DONT_UPDATE_INDEX | GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH;
		co.target_directory = treedir;
		co.dir_mode = 0755;
		/* with a subdir, only its paths: a submodule elsewhere in the tree is left alone */
		char *paths[1] = {g->subdir.ptr};
		if (g->subdir.size) {
			co.paths.strings = paths;
			co.paths.count = 1;
		}
		if (git_checkout_tree(repo, (git_object *)tree, &co) < 0)
			rc = git_fail("check out", shown);
	}
	if (rc == 0 && mkdir(treedir, 0755) < 0 && errno != EEXIST)
		rc = ib_error_set_os(IB_LAYER_BUILD, "mkdir `%s`", treedir);
	if (rc == 0 && (w.rootfd = open(treedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", treedir);
	if (rc == 0 && (fchmod(w.rootfd, 0755) < 0 || (g->subdir.size && fchmodat(w.rootfd, g->subdir.ptr, 0755, 0) < 0)))
		rc = ib_error_set_os(IB_LAYER_BUILD, "chmod `%s`", treedir);
	/* the modes of what was checked out: the subdir's tree */
	char *prefix = g->subdir.size ? ib_sprintf("%s/", g->subdir.ptr) : NULL;
	w.prefix = prefix ? prefix : "";
	if (rc == 0 && g->subdir.size && !prefix)
		rc = IB_ERROR;
	/* ?mtime=commit (BuildKit's resetSnapshotMtimes): the committer's time on every entry and the top */
	struct timespec when = {0, 0};
	if (rc == 0 && g->mtime_commit) {
		when.tv_sec = (time_t)git_commit_time((git_commit *)peeled);
		w.mtime = &when;
	}
	if (rc == 0 && git_tree_walk(top, GIT_TREEWALK_PRE, on_entry, &w) < 0)
		rc = w.failed ? IB_ERROR : git_fail("walk the tree of", shown);
	if (rc == 0 && w.mtime) {
		struct timespec ts[2] = {when, when};
		if (utimensat(w.rootfd, g->subdir.size ? g->subdir.ptr : ".", ts, 0) < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "set the mtime of `%s`", treedir);
	}
	if (w.rootfd >= 0)
		close(w.rootfd);
	ib_buf_dispose(&w.sub);
	free(prefix);
	git_tree_free(subtree);
	git_tree_entry_free(sub);
	git_tree_free(tree);
	git_object_free(peeled);
	git_object_free(obj);
	git_remote_free(remote);
	git_repository_free(repo);
	if (repodir)
		ib_rm_rf(repodir);
	free(repodir);
	free(treedir);
	ib_buf_dispose(&used);
	ib_buf_dispose(&spec);
	return rc;
}

static int git_fetch_locked(builder *b, ib_strlist *fetched, const char *src, const char *checksum, const char **dir,
			    const char **subdir,
			char commit[41])
{
	/* checked out already in this build: entries are "git\x01<src>\n<dir>\0<subdir>\0<commit>"
	 * in the build's fetched list, whose cleanup removes <dir> (fetch.c) */
	ib_buf key = IB_BUF_INIT;
	if (ib_buf_printf(&key, "git\x01%s\x01%s", src, checksum ? checksum : "") < 0)
		return IB_ERROR;
	for (size_t i = 0; i < fetched->n; i++) {
		const char *e = fetched->items[i];
		if (strncmp(e, key.ptr, key.size) == 0 && e[key.size] == '\n') {
			const char *d = e + key.size + 1, *s = d + strlen(d) + 1, *c = s + strlen(s) + 1;
			*dir = d;
			*subdir = s;
			memcpy(commit, c, 41);
			ib_buf_dispose(&key);
			return 0;
		}
	}
	git_src g = {IB_BUF_INIT, IB_BUF_INIT, IB_BUF_INIT, IB_BUF_INIT, 0};
	int rc = parse_src(&g, src, checksum);
	char *tmp = NULL;
	if (rc == 0 && !(tmp = ib_build__tmpdir(b, "imagebuild-git")))
		rc = IB_ERROR;
	if (rc == 0) {
		if (ib_build__git_load() < 0)
			rc = IB_ERROR;
		else if (git_libgit2_init() < 0)
			rc = git_fail("start libgit2 for", src);
		else {
			rc = clone_checkout(tmp, &g, g.checksum.size ? g.checksum.ptr : NULL, commit, g.remote.ptr);
			git_libgit2_shutdown();
		}
	}
	if (rc == 0)
		rc = ib_strlist_take(fetched, ib_sprintf("%s\n%s\ntree%s%s\n%s", key.ptr, tmp,
							     g.subdir.size ? "/" : "", ib_buf_cstr(&g.subdir), commit));
	if (rc == 0) {
		char *e = fetched->items[fetched->n - 1];
		char *d = e + key.size + 1, *s = strchr(d, '\n'), *c;
		*s++ = '\0';
		c = strchr(s, '\n');
		*c++ = '\0';
		*dir = d;
		*subdir = s;
	}
	if (rc < 0 && tmp)
		ib_rm_rf(tmp);
	free(tmp);
	git_src_dispose(&g);
	ib_buf_dispose(&key);
	return rc;
}

/* The stages running at once share the build's downloads, made one at a time. */
int ib_build__git_fetch(builder *b, const char *src, const char *checksum, const char **dir, const char **subdir,
			char commit[41])
{
	ib_build__lock(b, IB_BUILD__LOCK_FETCH);
	int rc = git_fetch_locked(b, &ib_build__shared(b)->fetched, src, checksum, dir, subdir, commit);
	ib_build__unlock(b, IB_BUILD__LOCK_FETCH);
	return rc;
}
