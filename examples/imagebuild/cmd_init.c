/*
 * imagebuild init: write a Dockerfile, a .dockerignore and a compose.yaml
 * for a project, as `docker init` does. The stack is detected from the
 * project's files (go.mod, pyproject.toml/requirements.txt, package.json,
 * Cargo.toml, pom.xml/build.gradle, *.csproj, composer.json), else it is the
 * generic template; what cannot be detected is asked when stdin is a
 * terminal, else taken from flags or defaults (an error names the flag when
 * there is no default).
 *
 * The files are rendered from templates, one directory per stack:
 * $IMAGEBUILD_INIT_TEMPLATES, else the installed data directory
 * (IB_INIT_TEMPLATE_DIR, <datadir>/imagebuild/init), else the source tree's
 * examples/imagebuild/init when nothing is installed. A template is text with {{NAME}} variables and
 * {{#if NAME}} / {{#unless NAME}} ... {{end}} lines (NAME set and not
 * empty); <stack>/defaults holds a stack's NAME=VALUE defaults (the base
 * image pins among them). Nothing is written unless all three files can be:
 * an existing one is replaced only with --force.
 */
#include "common.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef IB_INIT_TEMPLATE_DIR
#define IB_INIT_TEMPLATE_DIR "/usr/local/share/imagebuild/init"
#endif

typedef struct {
	const char *name;     /* --language value and template directory */
	const char *title;    /* as docker init shows it */
	const char *managers; /* --package-manager values, "" when none */
	int takes_cmd;        /* the start command is ours to choose (--cmd) */
} stack;

static const stack stacks[] = {
	{ "go", "Go", "", 0 },
	{ "python", "Python", "pip,poetry,uv", 1 },
	{ "node", "Node", "npm,yarn,pnpm", 1 },
	{ "rust", "Rust", "", 0 },
	{ "java", "Java", "maven,gradle", 0 },
	{ "dotnet", ".NET", "", 0 },
	{ "php", "PHP with Apache", "", 0 },
	{ "other", "Other (generic)", "", 1 },
};
#define NSTACKS (sizeof stacks / sizeof stacks[0])

/* ---- variables ---- */

typedef struct {
	char **names, **values;
	size_t n;
} vars;

static int vars_set(vars *v, const char *name, const char *value)
{
	for (size_t i = 0; i < v->n; i++) {
		if (!strcmp(v->names[i], name)) {
			char *dup = strdup(value);
			if (!dup)
				return -1;
			free(v->values[i]);
			v->values[i] = dup;
			return 0;
		}
	}
	char **n2 = realloc(v->names, (v->n + 1) * sizeof *n2);
	if (!n2)
		return -1;
	v->names = n2;
	char **v2 = realloc(v->values, (v->n + 1) * sizeof *v2);
	if (!v2)
		return -1;
	v->values = v2;
	v->names[v->n] = strdup(name);
	v->values[v->n] = strdup(value);
	if (!v->names[v->n] || !v->values[v->n]) {
		free(v->names[v->n]);
		free(v->values[v->n]);
		return -1;
	}
	v->n++;
	return 0;
}

static const char *vars_get(const vars *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->names[i], name))
			return v->values[i];
	return NULL;
}

static void vars_free(vars *v)
{
	for (size_t i = 0; i < v->n; i++) {
		free(v->names[i]);
		free(v->values[i]);
	}
	free(v->names);
	free(v->values);
}

/* ---- small file helpers ---- */

static char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 2);
	if (!p)
		return NULL;
	memcpy(p, a, la);
	p[la] = '/';
	memcpy(p + la + 1, b, lb + 1);
	return p;
}

/* The file's contents (NUL-terminated), or NULL (errno set) */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0, r;
	char *buf = malloc(cap);
	while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (n + 1 == cap) {
			char *b2 = realloc(buf, cap *= 2);
			if (!b2) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = b2;
		}
	}
	int err = ferror(f);
	fclose(f);
	if (!buf || err) {
		free(buf);
		errno = EIO;
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static char *slurp_in(const char *dir, const char *name)
{
	char *p = path_join(dir, name);
	char *s = p ? slurp(p) : NULL;
	free(p);
	return s;
}

static int exists_in(const char *dir, const char *name)
{
	struct stat st;
	char *p = path_join(dir, name);
	int r = p && lstat(p, &st) == 0;
	free(p);
	return r;
}

/* The first whitespace-trimmed line of a file in dir, or NULL */
static char *first_line(const char *dir, const char *name)
{
	char *s = slurp_in(dir, name);
	if (!s)
		return NULL;
	char *b = s;
	while (*b && isspace((unsigned char)*b))
		b++;
	size_t n = strcspn(b, "\r\n");
	while (n && isspace((unsigned char)b[n - 1]))
		n--;
	char *out = n ? strndup(b, n) : NULL;
	free(s);
	return out;
}

/* A version we may put in an image tag: [0-9A-Za-z._-], starting with a digit */
static int tag_safe(const char *v)
{
	if (!v || !isdigit((unsigned char)v[0]) || strlen(v) > 64)
		return 0;
	for (const char *c = v; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_')
			return 0;
	return 1;
}

/*
 * In a TOML-ish or XML-ish text, the value after `key` (within `section` when
 * given): `key = "v"` for TOML, `<key>v</key>` for XML. A new string or NULL.
 */
static char *toml_string(const char *text, const char *section, const char *key)
{
	int in = section == NULL;
	size_t kl = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		while (*l == ' ' || *l == '\t')
			l++;
		if (*l == '[') {
			size_t sl = section ? strlen(section) : 0;
			in = section && !strncmp(l + 1, section, sl) && l[1 + sl] == ']';
			continue;
		}
		if (!in || strncmp(l, key, kl))
			continue;
		const char *p = l + kl;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p++ != '=')
			continue;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '"' && *p != '\'')
			continue;
		char q = *p++;
		const char *e = strchr(p, q);
		if (!e || memchr(p, '\n', (size_t)(e - p)))
			continue;
		return strndup(p, (size_t)(e - p));
	}
	return NULL;
}

static char *xml_value(const char *text, const char *tag)
{
	char open[64], close[64];
	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	const char *b = strstr(text, open);
	if (!b)
		return NULL;
	b += strlen(open);
	const char *e = strstr(b, close);
	if (!e)
		return NULL;
	while (b < e && isspace((unsigned char)*b))
		b++;
	while (e > b && isspace((unsigned char)e[-1]))
		e--;
	return e > b ? strndup(b, (size_t)(e - b)) : NULL;
}

/* ---- detection ---- */

static const stack *stack_by_name(const char *name)
{
	if (!strcmp(name, "golang"))
		name = "go";
	else if (!strcmp(name, "generic"))
		name = "other";
	else if (!strcmp(name, "aspnet") || !strcmp(name, "aspnetcore") || !strcmp(name, ".net"))
		name = "dotnet";
	for (size_t i = 0; i < NSTACKS; i++)
		if (!strcmp(stacks[i].name, name))
			return &stacks[i];
	return NULL;
}

/* *.csproj files of dir (sorted, NULL-terminated; free each and the array) */
static char **csproj_files(const char *dir, size_t *n)
{
	char **list = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l <= 7 || strcmp(e->d_name + l - 7, ".csproj"))
			continue;
		char **l2 = realloc(list, (*n + 2) * sizeof *l2);
		if (!l2)
			break;
		list = l2;
		list[(*n)++] = strdup(e->d_name);
		list[*n] = NULL;
	}
	closedir(d);
	for (size_t i = 1; i < *n; i++) /* insertion sort: a handful of names */
		for (size_t j = i; j > 0 && strcmp(list[j - 1], list[j]) > 0; j--) {
			char *t = list[j];
			list[j] = list[j - 1];
			list[j - 1] = t;
		}
	return list;
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static const stack *detect_stack(const char *dir)
{
	size_t ncs = 0;
	char **cs = csproj_files(dir, &ncs);
	free_list(cs, ncs);
	if (exists_in(dir, "go.mod"))
		return stack_by_name("go");
	if (exists_in(dir, "pyproject.toml") || exists_in(dir, "requirements.txt"))
		return stack_by_name("python");
	if (exists_in(dir, "package.json"))
		return stack_by_name("node");
	if (exists_in(dir, "Cargo.toml"))
		return stack_by_name("rust");
	if (exists_in(dir, "pom.xml") || exists_in(dir, "build.gradle") || exists_in(dir, "build.gradle.kts"))
		return stack_by_name("java");
	if (ncs)
		return stack_by_name("dotnet");
	if (exists_in(dir, "composer.json"))
		return stack_by_name("php");
	return stack_by_name("other");
}

static const char *detect_manager(const stack *s, const char *dir)
{
	if (!strcmp(s->name, "python")) {
		if (exists_in(dir, "uv.lock"))
			return "uv";
		if (exists_in(dir, "poetry.lock"))
			return "poetry";
		char *py = slurp_in(dir, "pyproject.toml");
		int poetry = py && strstr(py, "[tool.poetry]");
		free(py);
		if (poetry)
			return "poetry";
		return "pip";
	}
	if (!strcmp(s->name, "node")) {
		if (exists_in(dir, "pnpm-lock.yaml"))
			return "pnpm";
		if (exists_in(dir, "yarn.lock"))
			return "yarn";
		return "npm";
	}
	if (!strcmp(s->name, "java"))
		return exists_in(dir, "pom.xml") ? "maven" : "gradle";
	return NULL;
}

/* Node's start command from package.json: scripts.start, main, index.js... */
static char *node_start(const char *dir, const char *manager)
{
	char *text = slurp_in(dir, "package.json");
	json_t *pkg = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	char *out = NULL;
	const char *start = json_string_value(json_object_get(json_object_get(pkg, "scripts"), "start"));
	const char *main_file = json_string_value(json_object_get(pkg, "main"));
	if (start && !strncmp(start, "node ", 5) && !strpbrk(start, "|&;<>()$`\\\"'*?")) {
		out = strdup(start); /* node itself as PID 1 gets the signals */
	} else if (start) {
		if (asprintf(&out, "%s start", manager) < 0)
			out = NULL;
	} else if (main_file && exists_in(dir, main_file)) {
		if (asprintf(&out, "node %s", main_file) < 0)
			out = NULL;
	} else {
		static const char *const files[] = { "index.js", "server.js", "app.js", "main.js" };
		for (size_t i = 0; i < sizeof files / sizeof files[0] && !out; i++)
			if (exists_in(dir, files[i]) && asprintf(&out, "node %s", files[i]) < 0)
				out = NULL;
	}
	json_decref(pkg);
	return out;
}

static char *python_start(const char *dir)
{
	static const char *const files[] = { "app.py", "main.py", "server.py" };
	char *out = NULL;
	for (size_t i = 0; i < sizeof files / sizeof files[0] && !out; i++)
		if (exists_in(dir, files[i]) && asprintf(&out, "python %s", files[i]) < 0)
			out = NULL;
	return out;
}

/* ---- the start command as JSON (exec form, as the build checks want) ---- */

static int json_str(char **out, size_t *len, size_t *cap, const char *s);

static int append(char **out, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 64;
		while (*len + n + 1 > c)
			c *= 2;
		char *o = realloc(*out, c);
		if (!o)
			return -1;
		*out = o;
		*cap = c;
	}
	memcpy(*out + *len, s, n);
	*len += n;
	(*out)[*len] = '\0';
	return 0;
}

static int json_str(char **out, size_t *len, size_t *cap, const char *s)
{
	if (append(out, len, cap, "\"", 1) < 0)
		return -1;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		char esc[8];
		if (*c == '"' || *c == '\\')
			snprintf(esc, sizeof esc, "\\%c", *c);
		else if (*c < 0x20)
			snprintf(esc, sizeof esc, "\\u%04x", *c);
		else
			snprintf(esc, sizeof esc, "%c", *c);
		if (append(out, len, cap, esc, strlen(esc)) < 0)
			return -1;
	}
	return append(out, len, cap, "\"", 1);
}

/*
 * Split a shell command into words (quotes and backslashes as sh does);
 * a command with anything else of the shell in it (pipes, variables,
 * globs, redirections, `&&`) runs under /bin/sh -c. Returns the JSON
 * array, or NULL for an empty or unbalanced command.
 */
static char *cmd_json(const char *cmd)
{
	char **words = NULL, *w = NULL;
	size_t nw = 0, wl = 0, wc = 0;
	int shell = 0, quote = 0, in_word = 0, bad = 0;
	for (const char *c = cmd;; c++) {
		if (!quote && (*c == '\0' || *c == ' ' || *c == '\t' || *c == '\n')) {
			if (in_word) {
				char **w2 = realloc(words, (nw + 1) * sizeof *w2);
				if (!w2) {
					bad = 1;
					break;
				}
				words = w2;
				words[nw++] = w ? w : strdup("");
				w = NULL;
				wl = wc = 0;
				in_word = 0;
			}
			if (*c == '\0')
				break;
			continue;
		}
		if (*c == '\0') { /* open quote */
			bad = 1;
			break;
		}
		in_word = 1;
		if (quote == '\'' && *c == '\'') {
			quote = 0;
		} else if (quote == '"' && *c == '"') {
			quote = 0;
		} else if (!quote && (*c == '\'' || *c == '"')) {
			quote = *c;
		} else if (quote != '\'' && *c == '\\') {
			if (!c[1]) {
				bad = 1;
				break;
			}
			c++;
			if (append(&w, &wl, &wc, c, 1) < 0)
				bad = 1;
		} else {
			if ((quote != '\'' && (*c == '$' || *c == '`')) ||
			    (!quote && strchr("|&;<>()*?[]{}~#", *c)))
				shell = 1;
			if (append(&w, &wl, &wc, c, 1) < 0)
				bad = 1;
		}
	}
	free(w);
	char *out = NULL;
	size_t len = 0, cap = 0;
	if (!bad && nw) {
		if (shell) {
			bad = append(&out, &len, &cap, "[ \"/bin/sh\", \"-c\", ", 19) < 0 || json_str(&out, &len, &cap, cmd) < 0;
		} else {
			bad = append(&out, &len, &cap, "[ ", 2) < 0;
			for (size_t i = 0; i < nw && !bad; i++)
				bad = (i && append(&out, &len, &cap, ", ", 2) < 0) || json_str(&out, &len, &cap, words[i]) < 0;
		}
		bad = bad || append(&out, &len, &cap, " ]", 2) < 0;
	}
	for (size_t i = 0; i < nw; i++)
		free(words[i]);
	free(words);
	if (bad || !nw) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- templates ---- */

/*
 * $IMAGEBUILD_INIT_TEMPLATES, else the installed data directory, else (a
 * binary run from its build tree, never installed) the source tree's.
 */
static const char *template_dir(void)
{
	const char *env = getenv("IMAGEBUILD_INIT_TEMPLATES");
	if (env && *env)
		return env;
#ifdef IB_INIT_SOURCE_TEMPLATE_DIR
	struct stat st;
	if (stat(IB_INIT_TEMPLATE_DIR "/common", &st) < 0 && stat(IB_INIT_SOURCE_TEMPLATE_DIR "/common", &st) == 0)
		return IB_INIT_SOURCE_TEMPLATE_DIR;
#endif
	return IB_INIT_TEMPLATE_DIR;
}

/* Read NAME=VALUE lines (comments, blank lines skipped) into v */
static int load_defaults(vars *v, const char *path)
{
	char *text = slurp(path);
	if (!text)
		return errno == ENOENT ? 0 : -1;
	int rc = 0;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && !rc; l = strtok_r(NULL, "\n", &save)) {
		while (isspace((unsigned char)*l))
			l++;
		char *eq = strchr(l, '=');
		if (!*l || *l == '#' || !eq)
			continue;
		*eq = '\0';
		rc = vars_set(v, l, eq + 1);
	}
	free(text);
	return rc;
}

/*
 * Render a template: {{NAME}} is NAME's value, lines {{#if NAME}},
 * {{#unless NAME}} and {{end}} keep or drop the lines between them. An
 * unknown variable or an unbalanced block is an error (printed).
 */
static char *render(const char *path, const vars *v)
{
	char *text = slurp(path);
	if (!text) {
		fprintf(stderr, "imagebuild init: cannot read the template `%s`: %s\n", path, strerror(errno));
		return NULL;
	}
	char *out = NULL;
	size_t len = 0, cap = 0;
	int keep[32], depth = 0, bad = 0, lineno = 0;
	for (char *l = text; *l && !bad;) {
		char *nl = strchr(l, '\n');
		size_t ll = nl ? (size_t)(nl - l) + 1 : strlen(l);
		lineno++;
		int on = 1;
		for (int d = 0; d < depth; d++)
			on = on && keep[d];
		char name[64];
		if (!strncmp(l, "{{#if ", 6) || !strncmp(l, "{{#unless ", 10)) {
			int unless = l[3] == 'u';
			const char *b = l + (unless ? 10 : 6);
			const char *e = strstr(b, "}}");
			if (!e || (size_t)(e - b) >= sizeof name || depth == 32) {
				bad = 1;
				break;
			}
			snprintf(name, sizeof name, "%.*s", (int)(e - b), b);
			const char *val = vars_get(v, name);
			keep[depth++] = (val && *val) != unless;
		} else if (!strncmp(l, "{{end}}", 7)) {
			if (!depth) {
				bad = 1;
				break;
			}
			depth--;
		} else if (on) {
			for (size_t i = 0; i < ll && !bad;) {
				if (l[i] == '{' && i + 1 < ll && l[i + 1] == '{') {
					const char *b = l + i + 2;
					const char *e = strstr(b, "}}");
					if (!e || e >= l + ll || (size_t)(e - b) >= sizeof name) {
						bad = 1;
						break;
					}
					snprintf(name, sizeof name, "%.*s", (int)(e - b), b);
					const char *val = vars_get(v, name);
					if (!val) {
						fprintf(stderr, "imagebuild init: %s:%d: no value for {{%s}}\n", path, lineno, name);
						bad = 2;
						break;
					}
					bad = append(&out, &len, &cap, val, strlen(val)) < 0;
					i = (size_t)(e + 2 - l);
				} else {
					bad = append(&out, &len, &cap, l + i, 1) < 0;
					i++;
				}
			}
		}
		l += ll;
	}
	if (!bad && depth)
		bad = 1;
	if (bad == 1)
		fprintf(stderr, "imagebuild init: %s:%d: malformed template\n", path, lineno);
	free(text);
	if (bad) {
		free(out);
		return NULL;
	}
	return out ? out : strdup("");
}

/* <dir>/<stack>/<base>.<variant>.in, <dir>/<stack>/<base>.in, then <dir>/common/<base>.in */
static char *find_template(const char *dir, const char *stack_name, const char *base, const char *variant, int common)
{
	char *p = NULL;
	struct stat st;
	if (variant) {
		if (asprintf(&p, "%s/%s/%s.%s.in", dir, stack_name, base, variant) >= 0 && stat(p, &st) == 0)
			return p;
		free(p);
	}
	if (asprintf(&p, "%s/%s/%s.in", dir, common ? "common" : stack_name, base) >= 0 && stat(p, &st) == 0)
		return p;
	free(p);
	return NULL;
}

/* ---- prompts ---- */

static char *ask(const char *question, const char *def)
{
	printf("? %s%s%s%s ", question, def ? " (" : "", def ? def : "", def ? ")" : "");
	fflush(stdout);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n && isspace((unsigned char)line[n - 1]))
		line[--n] = '\0';
	char *b = line;
	while (isspace((unsigned char)*b))
		b++;
	char *out = strdup(*b ? b : def ? def : "");
	free(line);
	return out;
}

/* ---- writing ---- */

/* Write data to dir/name: through a temporary file, then link (no overwrite) or rename (force) */
static int write_file(const char *dir, const char *name, const char *data, int force)
{
	char *final = path_join(dir, name), *tmp = NULL;
	int rc = -1, fd = -1;
	if (!final || asprintf(&tmp, "%s/.%s.imagebuild-init-XXXXXX", dir, name) < 0) {
		tmp = NULL;
		goto out;
	}
	fd = mkstemp(tmp);
	if (fd < 0)
		goto fail;
	mode_t um = umask(0);
	umask(um);
	size_t len = strlen(data);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)w;
	}
	if (fchmod(fd, 0666 & ~um) < 0 || close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (force ? rename(tmp, final) < 0 : link(tmp, final) < 0)
		goto fail;
	if (!force)
		unlink(tmp);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "imagebuild init: cannot write `%s`: %s\n", final ? final : name, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
out:
	free(tmp);
	free(final);
	return rc;
}

/* ---- the command ---- */

const cli_option cli_opts_init[] = {
	{ "language", 0, 1, "LANG", "go, python, node, rust, java, dotnet, php or other (default: detected)" },
	{ "language-version", 0, 1, "VERSION", "The language's version, in the base image tag (default: the project's, else a pinned one)" },
	{ "port", 0, 1, "PORT", "The port the application listens on (default: the stack's; other: none)" },
	{ "cmd", 0, 1, "COMMAND", "The command that starts the application (python, node, other)" },
	{ "package-manager", 0, 1, "PM", "pip, poetry or uv; npm, yarn or pnpm; maven or gradle (default: detected)" },
	{ "force", 0, 0, NULL, "Replace existing files (else nothing is written when one exists)" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_init(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_init;
	const char *o_lang = NULL, *o_version = NULL, *o_port = NULL, *o_cmd = NULL, *o_pm = NULL;
	int force = 0, i = 1, k, status = 1;
	const char *val = NULL;
	vars v = { NULL, NULL, 0 };
	char *owned[8] = { NULL };
	size_t nowned = 0;
	char *files[3] = { NULL, NULL, NULL };

	while ((k = cli_next_option(cli, argc, argv, &i, opts, &val)) >= 0) {
		switch (k) {
		case 0: o_lang = val; break;
		case 1: o_version = val; break;
		case 2: o_port = val; break;
		case 3: o_cmd = val; break;
		case 4: o_pm = val; break;
		case 5: force = 1; break;
		}
	}
	if (k == -2 || argc - i > 1)
		return cli_usage(cli);
	const char *dir = i < argc ? argv[i] : ".";
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "imagebuild init: `%s` is not a directory\n", dir);
		return 1;
	}
	int interactive = isatty(STDIN_FILENO);
	const char *tdir = template_dir();

	/* language */
	const stack *s = detect_stack(dir);
	if (o_lang) {
		s = stack_by_name(o_lang);
		if (!s) {
			fprintf(stderr, "imagebuild init: --language `%s`: not one of go, python, node, rust, java, dotnet, php, other\n", o_lang);
			return CLI_EXIT_ERROR;
		}
	} else if (interactive) {
		printf("Which application platform does the project use?\n");
		for (size_t n = 0; n < NSTACKS; n++)
			printf("  %-7s %s%s\n", stacks[n].name, stacks[n].title, &stacks[n] == s ? " (detected)" : "");
		for (;;) {
			char *a = ask("Platform", s->name);
			if (!a)
				return 1;
			const stack *c = stack_by_name(a);
			free(a);
			if (c) {
				s = c;
				break;
			}
			printf("Not one of the platforms above.\n");
		}
	}
	if (o_cmd && !s->takes_cmd) {
		fprintf(stderr, "imagebuild init: --cmd: a %s image runs what its build makes; the start command is not chosen here\n", s->title);
		return CLI_EXIT_ERROR;
	}

	/* defaults, then what the project says, then flags and answers */
	char *p = NULL;
	if (asprintf(&p, "%s/%s/defaults", tdir, s->name) < 0 || (stat(p, &st) < 0 && errno == ENOENT)) {
		fprintf(stderr, "imagebuild init: no templates for %s in `%s` (set IMAGEBUILD_INIT_TEMPLATES to their directory)\n",
			s->title, tdir);
		free(p);
		return 1;
	}
	if (load_defaults(&v, p) < 0) {
		fprintf(stderr, "imagebuild init: cannot read `%s`: %s\n", p, strerror(errno));
		free(p);
		goto out;
	}
	free(p);

	const char *pm = detect_manager(s, dir);
	if (o_pm) {
		size_t pl = strlen(o_pm);
		const char *m = s->managers;
		int ok = 0;
		while (*m && !ok) {
			size_t ml = strcspn(m, ",");
			ok = ml == pl && !strncmp(m, o_pm, pl);
			m += ml + (m[ml] == ',');
		}
		if (!ok) {
			if (*s->managers)
				fprintf(stderr, "imagebuild init: --package-manager `%s`: a %s project uses one of %s\n", o_pm, s->title, s->managers);
			else
				fprintf(stderr, "imagebuild init: --package-manager: the %s template has no choice of package manager\n", s->title);
			goto out_usage;
		}
		pm = o_pm;
	}
	const char *variant = pm;
	char *detected_version = NULL, *detected_cmd = NULL;
	int lock = 0;
	if (!strcmp(s->name, "go")) {
		char *mod = slurp_in(dir, "go.mod");
		for (char *l = mod; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
			if (!strncmp(l, "go ", 3)) {
				detected_version = strndup(l + 3, strcspn(l + 3, " \t\r\n/"));
				break;
			}
		}
		free(mod);
		vars_set(&v, "GO_SUM", exists_in(dir, "go.sum") ? "1" : "");
	} else if (!strcmp(s->name, "python")) {
		detected_version = first_line(dir, ".python-version");
		if (!strcmp(pm, "pip") && !exists_in(dir, "requirements.txt"))
			variant = "pip-project";
		lock = exists_in(dir, !strcmp(pm, "uv") ? "uv.lock" : "poetry.lock");
		vars_set(&v, "UV_LOCKED", !strcmp(pm, "uv") && lock ? "--locked " : "");
		detected_cmd = python_start(dir);
	} else if (!strcmp(s->name, "node")) {
		detected_version = first_line(dir, ".nvmrc");
		if (detected_version && detected_version[0] == 'v')
			memmove(detected_version, detected_version + 1, strlen(detected_version));
		lock = exists_in(dir, !strcmp(pm, "pnpm") ? "pnpm-lock.yaml" : !strcmp(pm, "yarn") ? "yarn.lock" : "package-lock.json");
		detected_cmd = node_start(dir, pm);
	} else if (!strcmp(s->name, "rust")) {
		char *toml = slurp_in(dir, "Cargo.toml");
		char *name = toml ? toml_string(toml, "package", "name") : NULL;
		free(toml);
		/* a pinned toolchain (rust-version is only the minimum) */
		char *tc = slurp_in(dir, "rust-toolchain.toml");
		detected_version = tc ? toml_string(tc, "toolchain", "channel") : first_line(dir, "rust-toolchain");
		free(tc);
		if (!name) {
			fprintf(stderr, "imagebuild init: no [package] name in %s/Cargo.toml (the Rust template builds one package's binary)\n", dir);
			goto out;
		}
		int safe = 1;
		for (const char *c = name; *c; c++)
			safe = safe && (isalnum((unsigned char)*c) || *c == '-' || *c == '_');
		if (!safe) {
			fprintf(stderr, "imagebuild init: Cargo.toml's package name `%s` is not a crate name\n", name);
			free(name);
			goto out;
		}
		vars_set(&v, "APP_NAME", name);
		free(name);
		lock = exists_in(dir, "Cargo.lock");
		vars_set(&v, "CARGO_LOCK", lock ? "1" : "");
		vars_set(&v, "CARGO_LOCKED", lock ? "--locked " : "");
	} else if (!strcmp(s->name, "java")) {
		if (!strcmp(pm, "maven")) {
			char *pom = slurp_in(dir, "pom.xml");
			if (pom) {
				detected_version = xml_value(pom, "maven.compiler.release");
				if (!detected_version)
					detected_version = xml_value(pom, "java.version");
			}
			free(pom);
		}
	} else if (!strcmp(s->name, "dotnet")) {
		size_t ncs = 0;
		char **cs = csproj_files(dir, &ncs);
		if (ncs != 1) {
			fprintf(stderr, "imagebuild init: %s .csproj file%s in `%s`: the .NET template publishes one project\n",
				ncs ? "several" : "no", ncs ? "s" : "", dir);
			free_list(cs, ncs);
			goto out;
		}
		char *proj = slurp_in(dir, cs[0]);
		char *tf = proj ? xml_value(proj, "TargetFramework") : NULL;
		char *asm_name = proj ? xml_value(proj, "AssemblyName") : NULL;
		free(proj);
		if (tf && !strncmp(tf, "net", 3) && isdigit((unsigned char)tf[3]))
			detected_version = strdup(tf + 3);
		free(tf);
		if (!asm_name)
			asm_name = strndup(cs[0], strlen(cs[0]) - 7);
		int safe = asm_name && *asm_name;
		for (const char *c = asm_name; safe && *c; c++)
			safe = isalnum((unsigned char)*c) || strchr("._-", *c);
		for (const char *c = cs[0]; safe && *c; c++)
			safe = isalnum((unsigned char)*c) || strchr("._-", *c);
		if (!safe) {
			fprintf(stderr, "imagebuild init: the project `%s` (assembly `%s`) has a name the template cannot quote\n",
				cs[0], asm_name ? asm_name : "");
			free(asm_name);
			free_list(cs, ncs);
			goto out;
		}
		vars_set(&v, "PROJECT_FILE", cs[0]);
		vars_set(&v, "ASSEMBLY", asm_name);
		free(asm_name);
		free_list(cs, ncs);
	} else if (!strcmp(s->name, "php")) {
		lock = exists_in(dir, "composer.lock");
	}
	vars_set(&v, "LOCK", lock ? "1" : "");
	if (detected_version && tag_safe(detected_version))
		vars_set(&v, "VERSION", detected_version);
	free(detected_version);

	/* version */
	if (vars_get(&v, "VERSION")) {
		char *ver = NULL;
		if (o_version)
			ver = strdup(o_version);
		else if (interactive) {
			char q[96];
			snprintf(q, sizeof q, "What version of %s do you want to use?", s->title);
			ver = ask(q, vars_get(&v, "VERSION"));
		}
		if (ver && !tag_safe(ver)) {
			fprintf(stderr, "imagebuild init: --language-version `%s`: a version such as 1.24 or 3.13.1 (digits, letters, . - _)\n", ver);
			free(ver);
			goto out_usage;
		}
		if (ver)
			vars_set(&v, "VERSION", ver);
		free(ver);
	} else if (o_version) {
		fprintf(stderr, "imagebuild init: --language-version: the %s template has no language version\n", s->title);
		goto out_usage;
	}

	/* port: optional for the generic template only */
	{
		char *port = o_port ? strdup(o_port) : NULL;
		if (!port && interactive) {
			const char *def = vars_get(&v, "PORT");
			port = ask("What port does the application listen on? ('none': no port)", def && *def ? def : "none");
			if (port && !strcmp(port, "none"))
				port[0] = '\0';
		}
		if (port && *port) {
			char *end = NULL;
			long n = strtol(port, &end, 10);
			if (!isdigit((unsigned char)*port) || *end || n < 1 || n > 65535) {
				fprintf(stderr, "imagebuild init: --port `%s`: a port number from 1 to 65535\n", port);
				free(port);
				goto out_usage;
			}
			char num[16];
			snprintf(num, sizeof num, "%ld", n);
			vars_set(&v, "PORT", num);
		} else if (port) {
			vars_set(&v, "PORT", "");
		}
		free(port);
		if (!vars_get(&v, "PORT"))
			vars_set(&v, "PORT", "");
		const char *pv = vars_get(&v, "PORT");
		vars_set(&v, "APACHE_PORT", *pv && strcmp(pv, "80") ? pv : "");
	}

	/* start command */
	if (s->takes_cmd) {
		char *cmd = o_cmd ? strdup(o_cmd) : NULL;
		if (!cmd && interactive)
			cmd = ask("What is the command that starts the application?", detected_cmd);
		if (!cmd && detected_cmd)
			cmd = strdup(detected_cmd);
		if (!cmd || !*cmd) {
			fprintf(stderr, "imagebuild init: no start command found for the %s project in `%s`: give it with --cmd\n", s->title, dir);
			free(cmd);
			free(detected_cmd);
			goto out_usage;
		}
		char *json = cmd_json(cmd);
		if (!json) {
			fprintf(stderr, "imagebuild init: --cmd `%s`: an empty command or an unbalanced quote\n", cmd);
			free(cmd);
			free(detected_cmd);
			goto out_usage;
		}
		vars_set(&v, "CMD", json);
		free(json);
		free(cmd);
	}
	free(detected_cmd);

	/* the files: all three rendered, and none in the way, before any is written */
	static const char *const compose_names[] = { "compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml" };
	const char *compose = compose_names[0];
	for (size_t c = 0; c < 4; c++)
		if (exists_in(dir, compose_names[c])) {
			compose = compose_names[c]; /* as docker init: replace the Compose file there is */
			break;
		}
	const char *names[3] = { ".dockerignore", "Dockerfile", compose };
	char *tpl[3] = { find_template(tdir, s->name, "Dockerfile", variant, 0), NULL,
			 find_template(tdir, s->name, "compose.yaml", NULL, 0) };
	if (!tpl[2])
		tpl[2] = find_template(tdir, s->name, "compose.yaml", NULL, 1);
	tpl[1] = find_template(tdir, s->name, "dockerignore", NULL, 1);
	for (int t = 0; t < 3; t++)
		owned[nowned++] = tpl[t];
	if (!tpl[0] || !tpl[1] || !tpl[2]) {
		fprintf(stderr, "imagebuild init: the %s templates are incomplete in `%s`\n", s->title, tdir);
		goto out;
	}
	files[1] = render(tpl[0], &v);
	files[0] = render(tpl[1], &v);
	char *extra = find_template(tdir, s->name, "dockerignore", NULL, 0);
	if (extra && files[0]) { /* the stack's lines after the common ones */
		char *more = render(extra, &v);
		char *both = NULL;
		if (!more || asprintf(&both, "%s%s", files[0], more) < 0) {
			free(files[0]);
			files[0] = NULL;
		} else {
			free(files[0]);
			files[0] = both;
		}
		free(more);
	}
	free(extra);
	files[2] = render(tpl[2], &v);
	if (!files[0] || !files[1] || !files[2])
		goto out;

	int in_way = 0;
	for (int f = 0; f < 3; f++)
		in_way += exists_in(dir, names[f]);
	if (in_way && !force) {
		int ok = 0;
		fprintf(stderr, "imagebuild init: these files exist in `%s` and would be replaced:", dir);
		for (int f = 0; f < 3; f++)
			if (exists_in(dir, names[f]))
				fprintf(stderr, " %s", names[f]);
		fprintf(stderr, "\n");
		if (interactive) {
			char *a = ask("Replace them? [y/N]", NULL);
			ok = a && (!strcmp(a, "y") || !strcmp(a, "Y") || !strcmp(a, "yes"));
			free(a);
		}
		if (!ok) {
			fprintf(stderr, "imagebuild init: nothing written (--force replaces them)\n");
			goto out;
		}
		force = 1;
	}
	for (int f = 0; f < 3; f++) {
		if (write_file(dir, names[f], files[f], force) < 0)
			goto out;
		printf("Created %s\n", names[f]);
	}
	printf("\nThe %s files are ready. Build the image with\n  imagebuild build -t NAME %s\n", s->title, dir);
	status = 0;
	goto out;
out_usage:
	status = CLI_EXIT_ERROR; /* a flag's value, or a missing flag, as docker's 125 */
out:
	for (int f = 0; f < 3; f++)
		free(files[f]);
	for (size_t n = 0; n < nowned; n++)
		free(owned[n]);
	vars_free(&v);
	return status;
}
