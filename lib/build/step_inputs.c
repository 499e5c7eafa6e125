/*
 * The inputs of a COPY/ADD step, resolved once (step_inputs.h): the
 * sources after .dockerignore, wildcards, --exclude and --parents, the
 * downloads, the checkouts, the heredocs and the destination; and the
 * step's cache key from them.
 */
#include "build/step_inputs.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/path.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static int worst(int a, int b)
{
	if (a == IB_WALK_EXCLUDE || b == IB_WALK_EXCLUDE)
		return IB_WALK_EXCLUDE;
	return a == IB_WALK_EXCLUDE_DESCEND || b == IB_WALK_EXCLUDE_DESCEND ? IB_WALK_EXCLUDE_DESCEND : IB_WALK_INCLUDE;
}

int ib_build__copy_filter_fn(void *payload, const char *rel, int is_dir)
{
	const ib_build__copy_filter *x = payload;
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

int ib_build__source_filter(ib_build__copy_filter *f, ib_ignore **incl, const ib_build__inputs *si, size_t i)
{
	const char *pattern = si->patterns.items[i];
	*incl = NULL;
	*f = (ib_build__copy_filter){si->filter, si->filter_payload, si->excl, NULL, si->matches.items[i]};
	if (pattern && *pattern) {
		const char *pats[] = {pattern};
		int rc = ib_ignore_new(incl, pats, 1);
		if (rc < 0)
			return rc;
		f->incl = *incl;
	}
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

void ib_build__inputs_dispose(builder *b, ib_build__inputs *si)
{
	if (si->srcfd >= 0 && si->srcfd != b->ctxfd)
		close(si->srcfd);
	si->srcfd = -1;
	if (si->snapkey) {
		ib_build__drop_snapshot(b, si->snapkey);
		free(si->snapkey);
		si->snapkey = NULL;
	}
	ib_ignore_free(si->excl);
	si->excl = NULL;
	ib_strlist_clear(&si->matches);
	ib_strlist_clear(&si->patterns);
	ib_strlist_clear(&si->urls);
	ib_strlist_clear(&si->gits);
	ib_strlist_clear(&si->heredocs);
	ib_buf_dispose(&si->dest);
	ib_buf_dispose(&si->shown);
}

int ib_build__inputs_resolve(ib_build__inputs *si, builder *b, stage_state *s, const ib_instruction *in,
			     size_t stage_index, keyer *k)
{
	const ib_instr_copy *c = &in->u.copy;
	int add = in->kind == IB_INSTR_ADD;
	int rc = 0;
	ib_buf tmp = IB_BUF_INIT;
	ib_buf scope = IB_BUF_INIT; /* --from's files in the checksum cache */
	memset(si, 0, sizeof *si);
	si->srcfd = b->ctxfd;
	si->filter = ib_build__ignore_filter;
	si->filter_payload = b->ignore;

	if (c->from) {
		ib_buf from = IB_BUF_INIT;
		rc = ib_build__expand_one(&from, b, s, c->from);
		if (rc == 0)
			rc = ib_build__source_root(&si->srcfd, &si->snapkey, b, from.ptr, stage_index);
		if (rc == 0)
			rc = ib_buf_printf(&scope, "/from/%s/", from.ptr);
		ib_buf_dispose(&from);
		si->filter = NULL;
		si->filter_payload = NULL;
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
	si->dest_slash = tmp.size && tmp.ptr[tmp.size - 1] == '/';
	if (tmp.ptr[0] != '/') {
		const char *wd = ib_image_config_get(s->config, IB_CONFIG_WORKDIR);
		rc = ib_path_join(&si->dest, wd && *wd ? wd : "/", tmp.ptr);
	} else {
		rc = ib_buf_set(&si->dest, tmp.ptr, tmp.size);
	}
	if (rc < 0)
		goto out;
	/* BuildKit: --checksum only for one HTTP(S) (or Git) source */
	if (c->checksum && c->sources.count + ib_instruction_heredoc_count(in) != 1) {
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
		if (rc == 0)
			ib_buf_printf(&si->shown, "%s%s", i ? " " : (add ? "ADD " : c->parents ? "COPY --parents " : "COPY "),
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
				rc = ib_strlist_add(&si->gits, dir);
			}
			if (rc == 0)
				rc = ib_strlist_add(&si->gits, sub);
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
				rc = ib_strlist_add(&si->urls, dir);
			}
			if (rc == 0)
				rc = ib_strlist_add(&si->urls, name);
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
				int fd = rc == 0 ? ib_open_in_root(si->srcfd, scoped.ptr, O_PATH, 0) : -1;
				int ign = rc == 0 && fd >= 0 && si->filter && strcmp(scoped.ptr, ".") &&
					  si->filter(si->filter_payload, scoped.ptr, 0) != IB_WALK_INCLUDE;
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
			rc = ib_build__glob(&si->matches, si->srcfd, dir.ptr, si->filter, si->filter_payload);
			/* BuildKit (AllowEmptyWildcard): a pattern that matches
			 * nothing copies nothing; a missing plain path is an error */
			if (rc == IB_ENOTFOUND && strpbrk(dir.ptr, "*?[")) {
				ib_error_clear();
				rc = 0;
			}
		}
		while (rc == 0 && si->patterns.n < si->matches.n)
			rc = ib_strlist_add(&si->patterns, c->parents ? pattern.ptr : "");
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
		if ((rc = ib_ignore_new(&si->excl, c->excludes.items, c->excludes.count)) < 0) {
			rc = ib_build__refuse(b, in, IB_EINVALID, "--exclude: %s", ib_error_last()->message);
			goto out;
		}
	}
	if (c->parents)
		ib_build__key_add(k, "--parents");
	/* the content of every match, through the filter the copy applies */
	for (size_t i = 0; rc == 0 && i < si->matches.n; i++) {
		ib_build__copy_filter xf;
		ib_ignore *incl = NULL;
		ib_build__key_add(k, si->matches.items[i]);
		ib_build__key_add(k, si->patterns.items[i]);
		rc = ib_build__source_filter(&xf, &incl, si, i);
		if (rc == 0)
			rc = ib_build__hash_source(k->h, si->srcfd, si->matches.items[i], ib_build__copy_filter_fn, &xf,
						   b->sums, c->from != NULL, c->from ? scope.ptr : NULL);
		ib_ignore_free(incl);
	}
	/* heredocs: their texts, as the files will hold them */
	for (size_t i = 0; rc == 0 && i < ib_instruction_heredoc_count(in); i++) {
		const ib_heredoc *h = ib_instruction_heredoc(in, i);
		ib_buf text = IB_BUF_INIT;
		if (!*h->name || strchr(h->name, '/') || !strcmp(h->name, ".") || !strcmp(h->name, ".."))
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "heredoc `%s` cannot name a file", h->name);
		if (rc == 0)
			rc = heredoc_text(&text, b, s, h);
		if (rc == 0) {
			ib_build__key_add(k, h->name);
			ib_sha256_update(k->h, text.ptr ? text.ptr : "", text.size);
			rc = ib_strlist_add(&si->heredocs, h->name);
		}
		if (rc == 0)
			rc = ib_strlist_add(&si->heredocs, text.ptr ? text.ptr : "");
		ib_buf_dispose(&text);
		if (rc < 0)
			ib_error_prefix("%s:%d", b->filename ? b->filename : "Dockerfile", in->line);
	}
	ib_build__key_add(k, ib_buf_cstr(&si->dest));
	/* BuildKit: "COPY a b <<EOF /dest" */
	if (rc == 0 && !c->sources.count)
		ib_buf_puts(&si->shown, add ? "ADD" : "COPY");
	for (size_t i = 0; rc == 0 && i < ib_instruction_heredoc_count(in); i++)
		ib_buf_printf(&si->shown, " <<%s", ib_instruction_heredoc(in, i)->name);
	if (rc == 0)
		rc = ib_buf_printf(&si->shown, " %s # buildkit", tmp.ptr);
out:
	ib_buf_dispose(&tmp);
	ib_buf_dispose(&scope);
	return rc;
}
