/*
 * Conformance runner for the Dockerfile half of ../shared/conformance (see
 * its README, sections 1-5 and 8): dockerfile-parse, dockerfile-parse-errors,
 * dockerfile-lines, dockerfile-heredoc (+ both TSV tables),
 * dockerfile-warnings and real-world. Prints "N passed, N failed" per
 * folder; exits 1 on any failure. Usage: conformance-dockerfile <corpus dir>
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "imagebuild/parse.h"
#include "parse/dockerfile/df.h"

typedef struct {
	int passed, failed;
} tally;

static int total_failed;

/* snprintf that may truncate quietly (paths and messages of a test runner). */
static void fmt(char *buf, size_t size, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	vsnprintf(buf, size, f, ap);
	va_end(ap);
}
static int verbose;

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	ib_buf b = IB_BUF_INIT;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		ib_buf_put(&b, chunk, n);
	fclose(f);
	ib_buf_grow(&b, b.size);
	*len = b.size;
	return b.ptr ? b.ptr : calloc(1, 1);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void report(tally *t, bool ok, const char *what, const char *why)
{
	if (ok) {
		t->passed++;
		return;
	}
	t->failed++;
	fprintf(stderr, "FAIL %s: %s\n", what, why ? why : "");
}

static void summary(const char *folder, tally *t)
{
	printf("%-28s %d passed, %d failed\n", folder, t->passed, t->failed);
	total_failed += t->failed;
}

/* Sorted entries of a directory (caller frees). */
static int list_dir(const char *dir, char ***out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		v = realloc(v, (size_t)(n + 1) * sizeof(*v));
		v[n++] = strdup(e->d_name);
	}
	closedir(d);
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (strcmp(v[i], v[j]) > 0) {
				char *t = v[i]; v[i] = v[j]; v[j] = t;
			}
	*out = v;
	return n;
}

static void free_list(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Expected file without its '#' comment lines. */
static char *expected_without_comments(const char *path)
{
	size_t len;
	char *s = slurp(path, &len);
	if (!s)
		return NULL;
	ib_buf b = IB_BUF_INIT;
	for (char *p = s; *p;) {
		char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
		if (*p != '#')
			ib_buf_put(&b, p, n);
		p += n;
	}
	free(s);
	ib_buf_grow(&b, b.size);
	return b.ptr ? b.ptr : calloc(1, 1);
}

static ib_dockerfile *parse_file(const char *path, char **err)
{
	size_t len;
	char *buf = slurp(path, &len);
	ib_dockerfile *df = NULL;
	*err = NULL;
	if (!buf) {
		*err = strdup("cannot read");
		return NULL;
	}
	if (ib_dockerfile_parse(&df, buf, len, NULL) < 0)
		*err = strdup(ib_error_last()->message);
	free(buf);
	return df;
}

static void dump_lines(ib_buf *b, const ib_dockerfile *df)
{
	ib_buf_printf(b, "root\t%d\t%d\n", ib_dockerfile_start_line(df), ib_dockerfile_end_line(df));
	for (size_t i = 0; i < ib_dockerfile_node_count(df); i++) {
		const ib_node *n = ib_dockerfile_node(df, i);
		ib_buf_printf(b, "%zu\t%d\t%d\n", i, ib_node_start_line(n), ib_node_end_line(n));
	}
}

static void dump_heredocs(ib_buf *b, const ib_dockerfile *df)
{
	for (size_t i = 0; i < ib_dockerfile_node_count(df); i++) {
		const ib_node *n = ib_dockerfile_node(df, i);
		for (size_t j = 0; j < ib_node_heredoc_count(n); j++) {
			const ib_heredoc *h = ib_node_heredoc(n, j);
			ib_buf_printf(b, "%zu\t", i);
			ib_parse__go_quote(b, h->name, strlen(h->name));
			ib_buf_printf(b, "\t%u\t%s\t%s\t", h->fd, h->expand ? "true" : "false",
				      h->chomp ? "true" : "false");
			ib_parse__go_quote(b, h->content, h->content_len);
			ib_buf_putc(b, '\n');
		}
	}
}

/* Compare `got` with the file `path` (comments dropped when `strip`). */
static bool same_as(const char *got, const char *path, bool strip, char *why, size_t whylen)
{
	size_t len;
	char *want = strip ? expected_without_comments(path) : slurp(path, &len);
	if (!want) {
		fmt(why, whylen, "cannot read %s", path);
		return false;
	}
	bool ok = strcmp(got, want) == 0;
	if (!ok) {
		size_t i = 0;
		while (got[i] && got[i] == want[i])
			i++;
		size_t ls = i;
		while (ls > 0 && got[ls - 1] != '\n')
			ls--;
		fmt(why, whylen, "differs from %s at byte %zu:\n  got:  %.200s\n  want: %.200s",
			 path, i, got + ls, want + ls);
	}
	free(want);
	return ok;
}

static void run_parse(const char *corpus)
{
	tally t = { 0 };
	char dir[4096], path[4096], why[1024];
	fmt(dir, sizeof(dir), "%s/dockerfile-parse", corpus);
	char **cases;
	int n = list_dir(dir, &cases);
	for (int i = 0; i < n; i++) {
		char *err;
		fmt(path, sizeof(path), "%s/%s/Dockerfile", dir, cases[i]);
		ib_dockerfile *df = parse_file(path, &err);
		if (!df) {
			report(&t, false, cases[i], err);
			free(err);
			continue;
		}
		ib_buf b = IB_BUF_INIT;
		ib_dockerfile_dump(&b, df);
		fmt(path, sizeof(path), "%s/%s/result", dir, cases[i]);
		bool ok = same_as(ib_buf_cstr(&b), path, false, why, sizeof(why));
		report(&t, ok, cases[i], why);
		ib_buf_dispose(&b);
		ib_dockerfile_free(df);
	}
	free_list(cases, n);
	summary("dockerfile-parse", &t);
}

static void run_parse_errors(const char *corpus)
{
	static const struct { const char *c, *msg; } msgs[] = {
		{ "empty_dockerfile", "file with no instructions" },
		{ "only_comments", "file with no instructions" },
		{ "env_no_value", "ENV must have two arguments" },
		{ "shykes-nested-json", "arrays must be comprised of strings only" },
	};
	tally t = { 0 };
	char dir[4096], path[4096], why[1024];
	fmt(dir, sizeof(dir), "%s/dockerfile-parse-errors", corpus);
	char **cases;
	int n = list_dir(dir, &cases);
	for (int i = 0; i < n; i++) {
		char *err;
		fmt(path, sizeof(path), "%s/%s/Dockerfile", dir, cases[i]);
		ib_dockerfile *df = parse_file(path, &err);
		bool ok = df == NULL && err;
		fmt(why, sizeof(why), "parsed without error");
		if (ok) {
			int line = 0;
			ok = sscanf(err, "Dockerfile:%d:", &line) == 1 && line >= 1;
			fmt(why, sizeof(why), "error without a line number: %s", err);
			for (size_t m = 0; ok && m < sizeof(msgs) / sizeof(msgs[0]); m++)
				if (!strcmp(cases[i], msgs[m].c) && !strstr(err, msgs[m].msg)) {
					ok = false;
					fmt(why, sizeof(why), "message `%s` lacks `%s`", err, msgs[m].msg);
				}
		}
		if (verbose && err)
			printf("  %s: %s\n", cases[i], err);
		report(&t, ok, cases[i], why);
		free(err);
		ib_dockerfile_free(df);
	}
	free_list(cases, n);
	summary("dockerfile-parse-errors", &t);
}

static void run_lines(const char *corpus)
{
	tally t = { 0 };
	char dir[4096], path[4096], why[1024];
	fmt(dir, sizeof(dir), "%s/dockerfile-lines", corpus);
	char **cases;
	int n = list_dir(dir, &cases);
	for (int i = 0; i < n; i++) {
		char *err;
		fmt(path, sizeof(path), "%s/%s/Dockerfile", dir, cases[i]);
		ib_dockerfile *df = parse_file(path, &err);
		if (!df) {
			report(&t, false, cases[i], err);
			free(err);
			continue;
		}
		ib_buf b = IB_BUF_INIT;
		dump_lines(&b, df);
		fmt(path, sizeof(path), "%s/%s/lines", dir, cases[i]);
		report(&t, same_as(ib_buf_cstr(&b), path, true, why, sizeof(why)), cases[i], why);
		ib_buf_dispose(&b);
		ib_dockerfile_free(df);
	}
	free_list(cases, n);
	summary("dockerfile-lines", &t);
}

/* Split a TSV line into fields (in place). */
static int tsv_fields(char *line, char **f, int max)
{
	int n = 0;
	f[n++] = line;
	for (char *p = line; *p && n < max; p++)
		if (*p == '\t') {
			*p = '\0';
			f[n++] = p + 1;
		}
	return n;
}

static void run_heredoc_words(const char *corpus, tally *t)
{
	char path[4096], why[1024];
	size_t len;
	fmt(path, sizeof(path), "%s/dockerfile-heredoc/heredoc-words.tsv", corpus);
	char *s = slurp(path, &len);
	if (!s) {
		report(t, false, "heredoc-words.tsv", "cannot read");
		return;
	}
	int row = 0;
	for (char *line = s, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (*line == '#')
			continue;
		row++;
		char *f[3] = { "", "", "" };
		tsv_fields(line, f, 3);
		ib_parse__arena a = { 0 };
		ib_heredoc h;
		int rc = ib_parse__heredoc_word(&h, &a, f[0]);
		const char *got = rc < 0 ? "error" : rc ? "heredoc" : "none";
		bool ok = !strcmp(got, f[1]) && (rc <= 0 || !strcmp(h.name, f[2]));
		fmt(why, sizeof(why), "row %d `%s`: got %s %s, want %s %s", row, f[0], got,
			 rc > 0 ? h.name : "", f[1], f[2]);
		report(t, ok, "heredoc-words.tsv", why);
		ib_parse__arena_free(&a);
		ib_error_clear();
	}
	free(s);
}

static void run_heredocs_from_line(const char *corpus, tally *t)
{
	char path[4096], why[1024];
	size_t len;
	fmt(path, sizeof(path), "%s/dockerfile-heredoc/heredocs-from-line.tsv", corpus);
	char *s = slurp(path, &len);
	if (!s) {
		report(t, false, "heredocs-from-line.tsv", "cannot read");
		return;
	}
	int row = 0;
	for (char *line = s, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (*line == '#')
			continue;
		row++;
		char *f[32];
		int nf = tsv_fields(line, f, 32);
		ib_parse__arena a = { 0 };
		ib_heredoc *docs;
		size_t nd;
		int rc = ib_parse__heredocs_from_line(&docs, &nd, &a, f[0], strlen(f[0]));
		bool ok = rc == 0 && (int)nd == nf - 1;
		for (size_t i = 0; ok && i < nd; i++)
			ok = !strcmp(docs[i].name, f[i + 1]);
		fmt(why, sizeof(why), "row %d `%s`: got %zu heredocs (rc %d), want %d",
			 row, f[0], rc == 0 ? nd : 0, rc, nf - 1);
		report(t, ok, "heredocs-from-line.tsv", why);
		ib_parse__arena_free(&a);
	}
	free(s);
}

static void run_heredoc(const char *corpus)
{
	tally t = { 0 };
	char dir[4096], path[4096], why[1024];
	fmt(dir, sizeof(dir), "%s/dockerfile-heredoc", corpus);
	char **cases;
	int n = list_dir(dir, &cases);
	for (int i = 0; i < n; i++) {
		fmt(path, sizeof(path), "%s/%s/Dockerfile", dir, cases[i]);
		if (!exists(path))
			continue;
		char *err;
		ib_dockerfile *df = parse_file(path, &err);
		if (!df) {
			report(&t, false, cases[i], err);
			free(err);
			continue;
		}
		ib_buf b = IB_BUF_INIT;
		dump_heredocs(&b, df);
		fmt(path, sizeof(path), "%s/%s/heredocs", dir, cases[i]);
		report(&t, same_as(ib_buf_cstr(&b), path, true, why, sizeof(why)), cases[i], why);
		ib_buf_dispose(&b);
		ib_dockerfile_free(df);
	}
	free_list(cases, n);
	run_heredoc_words(corpus, &t);
	run_heredocs_from_line(corpus, &t);
	summary("dockerfile-heredoc", &t);
}

static void run_warnings(const char *corpus)
{
	tally t = { 0 };
	char dir[4096], path[4096], why[1024];
	fmt(dir, sizeof(dir), "%s/dockerfile-warnings", corpus);
	char **cases;
	int n = list_dir(dir, &cases);
	for (int i = 0; i < n; i++) {
		char *err;
		fmt(path, sizeof(path), "%s/%s/Dockerfile", dir, cases[i]);
		ib_dockerfile *df = parse_file(path, &err);
		if (!df) {
			report(&t, false, cases[i], err);
			free(err);
			continue;
		}
		fmt(path, sizeof(path), "%s/%s/warnings", dir, cases[i]);
		char *want = expected_without_comments(path);
		bool ok = want != NULL;
		fmt(why, sizeof(why), "cannot read %s", path);
		for (char *line = want, *nl; ok && line && *line; line = nl ? nl + 1 : NULL) {
			nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			size_t count, idx;
			int off = 0;
			if (sscanf(line, "count %zu", &count) == 1) {
				ok = ib_dockerfile_warning_count(df) == count;
				fmt(why, sizeof(why), "%zu warnings, want %zu",
					 ib_dockerfile_warning_count(df), count);
			} else if (sscanf(line, "contains %zu %n", &idx, &off) == 1 && off > 0) {
				const ib_parse_warning *w = ib_dockerfile_warning(df, idx);
				ok = w && strstr(w->message, line + off);
				fmt(why, sizeof(why), "warning %zu `%s` lacks `%s`", idx,
					 w ? w->message : "(none)", line + off);
			}
		}
		report(&t, ok, cases[i], why);
		free(want);
		ib_dockerfile_free(df);
	}
	free_list(cases, n);
	summary("dockerfile-warnings", &t);
}

static void run_real_world(const char *corpus)
{
	tally t = { 0 };
	char dir[4096], path[4096], why[1024], what[512];
	fmt(dir, sizeof(dir), "%s/real-world", corpus);
	char **files;
	int n = list_dir(dir, &files);
	for (int i = 0; i < n; i++) {
		size_t l = strlen(files[i]);
		if (l < 11 || strcmp(files[i] + l - 11, ".Dockerfile"))
			continue;
		char base[512];
		fmt(base, sizeof(base), "%.*s", (int)(l - 11), files[i]);
		char *err;
		fmt(path, sizeof(path), "%s/%s", dir, files[i]);
		ib_dockerfile *df = parse_file(path, &err);
		if (!df) {
			report(&t, false, files[i], err);
			free(err);
			continue;
		}
		ib_buf b = IB_BUF_INIT;
		ib_dockerfile_dump(&b, df);
		fmt(path, sizeof(path), "%s/expected/%s.result", dir, base);
		fmt(what, sizeof(what), "%s.result", base);
		report(&t, same_as(ib_buf_cstr(&b), path, false, why, sizeof(why)), what, why);

		ib_buf_clear(&b);
		dump_lines(&b, df);
		fmt(path, sizeof(path), "%s/expected/%s.lines", dir, base);
		fmt(what, sizeof(what), "%s.lines", base);
		report(&t, same_as(ib_buf_cstr(&b), path, true, why, sizeof(why)), what, why);

		ib_buf_clear(&b);
		dump_heredocs(&b, df);
		fmt(path, sizeof(path), "%s/expected/%s.heredocs", dir, base);
		fmt(what, sizeof(what), "%s.heredocs", base);
		if (exists(path)) {
			report(&t, same_as(ib_buf_cstr(&b), path, true, why, sizeof(why)), what, why);
		} else {
			fmt(why, sizeof(why), "has heredocs but no expected file");
			report(&t, b.size == 0, what, why);
		}
		if (ib_dockerfile_warning_count(df))
			report(&t, false, files[i], "unexpected warnings");
		ib_buf_dispose(&b);
		ib_dockerfile_free(df);
	}
	free_list(files, n);
	summary("real-world", &t);
}

int main(int argc, char **argv)
{
	const char *corpus = argc > 1 ? argv[1] : getenv("IB_CONFORMANCE_DIR");
	verbose = getenv("IB_VERBOSE") != NULL;
	if (!corpus || !exists(corpus)) {
		fprintf(stderr, "conformance corpus not found (%s)\n", corpus ? corpus : "no argument");
		const char *strict = getenv("IB_TEST_STRICT");
		return strict && !strcmp(strict, "1") ? 1 : 77;
	}
	run_parse(corpus);
	run_parse_errors(corpus);
	run_lines(corpus);
	run_heredoc(corpus);
	run_warnings(corpus);
	run_real_world(corpus);
	return total_failed ? 1 : 0;
}
