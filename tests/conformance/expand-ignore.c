/*
 * Conformance runner for word expansion and .dockerignore: the
 * `shell-expand/` and `dockerignore/` folders of the corpus whose directory
 * is argv[1] (see its README, sections 0, 6 and 7). Prints
 * "N passed, N failed" per file and per folder; exits 1 on any failure.
 */
#include "imagebuild/parse.h"
#include "parse/words/unicode.h"
#include "util/path.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	int passed, failed, skipped;
} tally;

static const char *corpus;
static int verbose;

/* ---- small helpers ---- */

static char *read_all(const char *dir, const char *name, size_t *len)
{
	char path[4096];
	FILE *f;
	char *buf = NULL;
	size_t cap = 0, n = 0, r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "rb")))
		return NULL;
	do {
		if (n + 4096 + 1 > cap) {
			cap = (n + 4096 + 1) * 2;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		r = fread(buf + n, 1, 4096, f);
		n += r;
	} while (r > 0);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* Split `s` in place at `sep`; returns the number of fields (at most max). */
static size_t split(char *s, char sep, char **fields, size_t max)
{
	size_t n = 0;
	fields[n++] = s;
	for (char *p = s; *p && n < max; p++) {
		if (*p == sep) {
			*p = '\0';
			fields[n++] = p + 1;
		}
	}
	return n;
}

/* Go's strings.TrimSpace, in place. */
static char *trim(char *s)
{
	size_t len = strlen(s);
	char *t = (char *)ib_parse__u_trim_space(s, &len);
	t[len] = '\0';
	return t;
}

static char *ltrim_spaces(char *s)
{
	while (*s == ' ')
		s++;
	return s;
}

/* The next line of *cur (LF-terminated, or the rest); NULL at the end. */
static char *next_line(char **cur)
{
	char *s = *cur, *nl;
	if (!s || !*s)
		return NULL;
	nl = strchr(s, '\n');
	if (nl) {
		*nl = '\0';
		*cur = nl + 1;
	} else {
		*cur = s + strlen(s);
	}
	return s;
}

static void result(tally *t, int ok, const char *where, const char *fmt, const char *a,
		   const char *b)
{
	if (ok) {
		t->passed++;
		return;
	}
	t->failed++;
	printf("FAIL %s: ", where);
	printf(fmt, a, b);
	printf("\n");
}

static void report(const char *name, const tally *t)
{
	printf("%s: %d passed, %d failed", name, t->passed, t->failed);
	if (t->skipped)
		printf(" (%d not applicable)", t->skipped);
	printf("\n");
}

static void add(tally *to, const tally *t)
{
	to->passed += t->passed;
	to->failed += t->failed;
	to->skipped += t->skipped;
}

/* ---- shell-expand ---- */

static void env_test(tally *t)
{
	char dir[4096];
	static const char *env[] = { "PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL=", NULL };
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
	char *buf, *cur, *line;
	int lineno = 0;

	snprintf(dir, sizeof(dir), "%s/shell-expand", corpus);
	if (!(cur = buf = read_all(dir, "envVarTest", NULL))) {
		result(t, 0, "envVarTest", "cannot read %s%s", dir, "/envVarTest");
		return;
	}
	o.env = env;
	while ((line = next_line(&cur))) {
		char *f[4], where[64];
		ib_buf out = IB_BUF_INIT;
		lineno++;
		if (line[0] == '#')
			continue;
		line = trim(line);
		if (!*line)
			continue;
		snprintf(where, sizeof(where), "envVarTest:%d", lineno);
		if (split(line, '|', f, 4) != 3) {
			result(t, 0, where, "not 3 fields%s%s", "", "");
			continue;
		}
		char *plat = trim(f[0]), *in = trim(f[1]), *exp = trim(f[2]);
		if (strcmp(plat, "W") == 0) {
			t->skipped++;
			continue;
		}
		int rc = ib_expand_word(&out, in, &o);
		if (strcmp(exp, "error") == 0)
			result(t, rc < 0, where, "`%s` should fail, gave `%s`", in, out.ptr ? out.ptr : "");
		else if (rc < 0)
			result(t, 0, where, "`%s` failed: %s", in, ib_error_last()->message);
		else
			result(t, strcmp(out.ptr, exp) == 0, where, "got `%s`, want `%s`", out.ptr, exp);
		ib_buf_dispose(&out);
	}
	free(buf);
}

static void words_test(tally *t)
{
	char dir[4096];
	char *buf, *cur, *line, *env[256];
	size_t nenv = 0;
	int lineno = 0;
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;

	snprintf(dir, sizeof(dir), "%s/shell-expand", corpus);
	if (!(cur = buf = read_all(dir, "wordsTest", NULL))) {
		result(t, 0, "wordsTest", "cannot read %s%s", dir, "/wordsTest");
		return;
	}
	env[0] = NULL;
	o.env = (const char *const *)env;
	while ((line = next_line(&cur))) {
		char *f[3], where[64], *want[64], got[4096];
		ib_strarray words = IB_STRARRAY_INIT;
		lineno++;
		if (line[0] == '#')
			continue;
		if (strncmp(line, "ENV ", 4) == 0) {
			if (nenv + 1 < sizeof(env) / sizeof(env[0])) {
				env[nenv++] = ltrim_spaces(line + 3);
				env[nenv] = NULL;
			}
			continue;
		}
		snprintf(where, sizeof(where), "wordsTest:%d", lineno);
		if (split(line, '|', f, 3) != 2) {
			result(t, 0, where, "not 2 fields%s%s", "", "");
			continue;
		}
		char *in = trim(f[0]);
		size_t nwant = split(ltrim_spaces(f[1]), ',', want, 64);
		int ok;
		if (ib_expand_words(&words, in, &o) < 0) {
			ok = nwant == 1 && strcmp(want[0], "error") == 0;
			snprintf(got, sizeof(got), "error: %s", ib_error_last()->message);
		} else {
			ok = words.count == nwant;
			got[0] = '\0';
			for (size_t i = 0; i < words.count; i++) {
				if (ok && strcmp(words.strings[i], want[i]) != 0)
					ok = 0;
				snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s[%s]",
					 i ? "," : "", words.strings[i]);
			}
		}
		result(t, ok, where, "`%s` gave %s", in, got);
		ib_strarray_dispose(&words);
	}
	free(buf);
}

/* The names looked up, found and not found, as sorted, unique, space-separated lists. */
typedef struct {
	char found[1024], missing[1024];
} lookups;

static void add_name(char *list, size_t size, const char *name)
{
	char *copy = strdup(list), *words[128], out[1024] = "";
	size_t n = 0, i;
	int placed = 0;

	if (*copy)
		n = split(copy, ' ', words, 127);
	for (i = 0; i < n; i++)
		if (strcmp(words[i], name) == 0) {
			free(copy);
			return;
		}
	for (i = 0; i <= n; i++) {
		const char *w = NULL;
		if (!placed && (i == n || strcmp(name, words[i]) < 0)) {
			w = name;
			placed = 1;
			i--;
		} else if (i < n) {
			w = words[i];
		}
		if (w)
			snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", *out ? " " : "", w);
	}
	snprintf(list, size, "%s", out);
	free(copy);
}

static int on_lookup(const char *name, int found, void *payload)
{
	lookups *l = payload;
	if (found)
		add_name(l->found, sizeof(l->found), name);
	else
		add_name(l->missing, sizeof(l->missing), name);
	return 0;
}

static void matches_test(tally *t)
{
	char dir[4096];
	char *buf, *cur, *line;
	int lineno = 0;

	snprintf(dir, sizeof(dir), "%s/shell-expand", corpus);
	if (!(cur = buf = read_all(dir, "process-with-matches.tsv", NULL))) {
		result(t, 0, "process-with-matches.tsv", "cannot read %s%s", dir, "");
		return;
	}
	while ((line = next_line(&cur))) {
		char *f[64], where[128];
		ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
		ib_buf out = IB_BUF_INIT;
		lookups l = { "", "" };
		lineno++;
		if (line[0] == '#')
			continue;
		size_t n = split(line, '\t', f, 63);
		while (n < 7)
			f[n++] = "";
		f[n] = NULL;
		snprintf(where, sizeof(where), "process-with-matches.tsv %s", f[0]);
		o.env = (const char *const *)&f[7];
		o.lookup = on_lookup;
		o.payload = &l;
		int rc = ib_expand_word(&out, f[2], &o);
		if (strcmp(f[3], "error") == 0) {
			if (rc >= 0)
				result(t, 0, where, "`%s` should fail, gave `%s`", f[2], out.ptr);
			else
				result(t, strstr(ib_error_last()->message, f[4]) != NULL, where,
				       "error `%s` lacks `%s`", ib_error_last()->message, f[4]);
		} else if (rc < 0) {
			result(t, 0, where, "`%s` failed: %s", f[2], ib_error_last()->message);
		} else if (strcmp(out.ptr, f[4]) != 0) {
			result(t, 0, where, "got `%s`, want `%s`", out.ptr, f[4]);
		} else if (strcmp(f[5], "-") != 0 && strcmp(f[5], l.found) != 0) {
			result(t, 0, where, "matched `%s`, want `%s`", l.found, f[5]);
		} else {
			result(t, strcmp(f[6], "-") == 0 || strcmp(f[6], l.missing) == 0, where,
			       "unmatched `%s`, want `%s`", l.missing, f[6]);
		}
		ib_buf_dispose(&out);
	}
	free(buf);
}

/* ---- dockerignore ---- */

static void cases_test(tally *t)
{
	char dir[4096];
	char *buf, *cur, *line;

	snprintf(dir, sizeof(dir), "%s/dockerignore", corpus);
	if (!(cur = buf = read_all(dir, "cases.tsv", NULL))) {
		result(t, 0, "cases.tsv", "cannot read %s%s", dir, "/cases.tsv");
		return;
	}
	while ((line = next_line(&cur))) {
		char *f[64], where[128];
		ib_ignore *ig = NULL;
		const char *got;
		if (line[0] == '#')
			continue;
		size_t n = split(line, '\t', f, 64);
		if (n < 5) {
			result(t, 0, line, "short row%s%s", "", "");
			continue;
		}
		snprintf(where, sizeof(where), "cases.tsv %s", f[0]);
		if (ib_ignore_new(&ig, (const char *const *)&f[5], n - 5) < 0) {
			got = "error";
		} else if (strcmp(f[2], "Matches") == 0) {
			ib_buf clean = IB_BUF_INIT;
			ib_path_clean(&clean, f[4]);
			got = strcmp(clean.ptr, ".") == 0 ? "nomatch"
			      : ib_ignore_matches(ig, clean.ptr) ? "match" : "nomatch";
			ib_buf_dispose(&clean);
		} else {
			got = ib_ignore_matches(ig, f[4]) ? "match" : "nomatch";
		}
		result(t, strcmp(got, f[3]) == 0, where, "got %s, want %s", got, f[3]);
		ib_ignore_free(ig);
	}
	free(buf);
}

/* Every directory of `dir` (not . and ..), sorted; NULL-terminated, malloc'd. */
static char **subdirs(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **list = calloc(1024, sizeof(*list));
	size_t n = 0;

	while (d && (e = readdir(d)) && n < 1023)
		if (e->d_name[0] != '.')
			list[n++] = strdup(e->d_name);
	if (d)
		closedir(d);
	qsort(list, n, sizeof(*list), (int (*)(const void *, const void *))strcmp);
	return list;
}

static void free_list(char **l)
{
	for (size_t i = 0; l && l[i]; i++)
		free(l[i]);
	free(l);
}

static void readall_test(tally *t)
{
	char dir[4096], cdir[8192];
	snprintf(dir, sizeof(dir), "%s/dockerignore/readall", corpus);
	char **cases = subdirs(dir);

	for (size_t c = 0; cases[c]; c++) {
		size_t len;
		ib_strarray got = IB_STRARRAY_INIT;
		snprintf(cdir, sizeof(cdir), "%s/%s", dir, cases[c]);
		char *in = read_all(cdir, "dockerignore", &len), *want = read_all(cdir, "expected", NULL);
		char *cur = want, *line;
		size_t i = 0;
		int ok = in && want && ib_ignore_read(&got, in, len) == 0;
		while (ok && (line = next_line(&cur)))
			ok = i < got.count && strcmp(got.strings[i++], line) == 0;
		ok = ok && i == got.count;
		result(t, ok, cases[c], "patterns differ from `expected`%s%s", "", "");
		ib_strarray_dispose(&got);
		free(in);
		free(want);
	}
	if (!cases[0])
		result(t, 0, dir, "no cases%s%s", "", "");
	free_list(cases);
}

/* A context tree: paths, whether each is a directory, and the walk's verdict. */
typedef struct {
	char *path[512];
	int is_dir[512];
	int included[512];
	size_t n;
} tree;

static void tree_add(tree *tr, const char *path, int is_dir)
{
	char *copy = strdup(path);
	/* implicit parents first */
	for (char *p = copy; *p; p++)
		if (*p == '/') {
			*p = '\0';
			tree_add(tr, copy, 1);
			*p = '/';
		}
	for (size_t i = 0; i < tr->n; i++)
		if (strcmp(tr->path[i], path) == 0) {
			tr->is_dir[i] |= is_dir;
			free(copy);
			return;
		}
	if (tr->n < 512) {
		tr->path[tr->n] = copy;
		tr->is_dir[tr->n++] = is_dir;
	} else {
		free(copy);
	}
}

static int is_child(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 0)
		return strchr(path, '/') == NULL;
	return strncmp(path, dir, n) == 0 && path[n] == '/' && !strchr(path + n + 1, '/');
}

/*
 * Walk `dir` ("" is the root) as buildkit does: a kept path is sent; an
 * excluded directory is entered only when ib_ignore_descend() says so, and
 * sent only if something below it is. Returns whether anything was sent.
 */
static int walk(tree *tr, const ib_ignore *ig, const char *dir)
{
	int any = 0;
	for (size_t i = 0; i < tr->n; i++) {
		if (!is_child(tr->path[i], dir))
			continue;
		int m = ib_ignore_matches(ig, tr->path[i]);
		if (!m) {
			tr->included[i] = 1;
			if (tr->is_dir[i])
				walk(tr, ig, tr->path[i]);
		} else if (tr->is_dir[i] && ib_ignore_descend(ig, tr->path[i]) == 1) {
			tr->included[i] = walk(tr, ig, tr->path[i]);
		}
		any |= tr->included[i];
	}
	return any;
}

static void context_case(tally *t, const char *dir, const char *name)
{
	char cdir[8192], where[512];
	size_t len;
	tree tr;
	ib_ignore *ig = NULL;

	memset(&tr, 0, sizeof(tr));
	snprintf(cdir, sizeof(cdir), "%s/%s", dir, name);
	char *di = read_all(cdir, "dockerignore", &len);
	char *treef = read_all(cdir, "tree", NULL), *expect = read_all(cdir, "expect", NULL);
	char *cur = treef, *line;
	if (!di || !treef || !expect) {
		result(t, 0, name, "cannot read the case%s%s", "", "");
		goto done;
	}
	while ((line = next_line(&cur))) {
		char *sp = strchr(line, ' ');
		if (sp)
			tree_add(&tr, sp + 1, strncmp(line, "dir ", 4) == 0);
	}
	int rc = ib_ignore_parse(&ig, di, len, ".dockerignore");
	if (rc == 0)
		walk(&tr, ig, "");
	cur = expect;
	while ((line = next_line(&cur))) {
		snprintf(where, sizeof(where), "context/%s: %s", name, line);
		if (line[0] == '#' || !line[0])
			continue;
		if (strncmp(line, "error ", 6) == 0) {
			result(t, rc < 0 && strstr(ib_error_last()->message, line + 6), where,
			       "got `%s`%s", rc < 0 ? ib_error_last()->message : "no error", "");
			continue;
		}
		if (rc < 0) {
			result(t, 0, where, "parse failed: %s%s", ib_error_last()->message, "");
			continue;
		}
		int present = strncmp(line, "present ", 8) == 0;
		const char *path = strchr(line, ' ') + 1;
		int included = 0;
		for (size_t i = 0; i < tr.n; i++)
			if (strcmp(tr.path[i], path) == 0)
				included = tr.included[i];
		result(t, included == present, where, "is %s%s", included ? "included" : "excluded", "");
	}
done:
	for (size_t i = 0; i < tr.n; i++)
		free(tr.path[i]);
	ib_ignore_free(ig);
	free(di);
	free(treef);
	free(expect);
}

static void context_test(tally *t)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/dockerignore/context", corpus);
	char **cases = subdirs(dir);
	for (size_t c = 0; cases[c]; c++) {
		tally one = { 0, 0, 0 };
		context_case(&one, dir, cases[c]);
		if (verbose)
			report(cases[c], &one);
		/* a scenario passes when all its assertions do */
		t->passed += one.failed == 0;
		t->failed += one.failed != 0;
	}
	if (!cases[0])
		result(t, 0, dir, "no cases%s%s", "", "");
	free_list(cases);
}

int main(int argc, char **argv)
{
	tally se = { 0, 0, 0 }, di = { 0, 0, 0 };
	struct {
		const char *name;
		void (*fn)(tally *);
		tally *folder;
	} files[] = {
		{ "shell-expand/envVarTest", env_test, &se },
		{ "shell-expand/wordsTest", words_test, &se },
		{ "shell-expand/process-with-matches.tsv", matches_test, &se },
		{ "dockerignore/cases.tsv", cases_test, &di },
		{ "dockerignore/readall", readall_test, &di },
		{ "dockerignore/context", context_test, &di },
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR [-v]\n", argv[0]);
		return 2;
	}
	corpus = argv[1];
	verbose = argc > 2 && strcmp(argv[2], "-v") == 0;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		tally t = { 0, 0, 0 };
		files[i].fn(&t);
		report(files[i].name, &t);
		add(files[i].folder, &t);
	}
	report("shell-expand", &se);
	report("dockerignore", &di);
	return se.failed || di.failed || !se.passed || !di.passed ? 1 : 0;
}
