/* --format: json, table, and the subset of Go templates docker documents. */
#include "format.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

enum { ARG_FIELD, ARG_STRING, ARG_INT };
typedef struct {
	int kind;
	char *text; /* the field path (".A.B") or the string */
	long long n;
} arg;

typedef struct {
	char *text;  /* literal text, or NULL for an action */
	char *func;  /* NULL: the value of args[0] */
	arg args[4];
	int nargs;
} segment;

typedef struct {
	segment *segs;
	size_t n;
} tmpl;

struct cli_format {
	int json, table;
	tmpl t;
	json_t *headers;
	char **lines; /* table: the rows, cells separated by \t */
	size_t nlines;
	int failed;
};

static void tmpl_free(tmpl *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->segs[i].text);
		free(t->segs[i].func);
		for (int a = 0; a < t->segs[i].nargs; a++)
			free(t->segs[i].args[a].text);
	}
	free(t->segs);
	t->segs = NULL;
	t->n = 0;
}

static int add_seg(tmpl *t, segment s)
{
	segment *n = realloc(t->segs, (t->n + 1) * sizeof *n);
	if (!n)
		return -1;
	t->segs = n;
	t->segs[t->n++] = s;
	return 0;
}

/* Literal text with docker's \t and \n. */
static char *unescape(const char *s, size_t len)
{
	char *o = malloc(len + 1), *p = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len && (s[i + 1] == 't' || s[i + 1] == 'n')) {
			*p++ = s[i + 1] == 't' ? '\t' : '\n';
			i++;
		} else {
			*p++ = s[i];
		}
	}
	*p = '\0';
	return o;
}

static int bad(const char *what, const char *action)
{
	fprintf(stderr, "imagebuild: template parsing error: %s in `{{%s}}` (supported: {{.Field}}, {{.A.B}}, "
			"{{json .X}}, {{index .X N}}, {{join .X \"SEP\"}}, {{lower .X}}, {{upper .X}})\n",
		what, action);
	return -1;
}

static int parse_action(segment *s, const char *a)
{
	char *buf = strdup(a), *p = buf;
	if (!buf)
		return -1;
	int rc = 0;
	memset(s, 0, sizeof *s);
	while (*p && !rc) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (s->nargs == 4) {
			rc = bad("too many arguments", a);
			break;
		}
		char *start = p;
		if (*p == '"') {
			char *end = strchr(p + 1, '"');
			if (!end) {
				rc = bad("unterminated string", a);
				break;
			}
			*end = '\0';
			if (!s->func && s->nargs == 0) {
				rc = bad("a string is not a template value", a);
				break;
			}
			s->args[s->nargs].kind = ARG_STRING;
			s->args[s->nargs++].text = strdup(start + 1);
			p = end + 1;
			continue;
		}
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
		if (*start == '.') {
			for (const char *c = start + 1; *c; c++)
				if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.')
					rc = bad("unsupported field syntax", a);
			s->args[s->nargs].kind = ARG_FIELD;
			s->args[s->nargs++].text = strdup(start);
		} else if (isdigit((unsigned char)*start) || (*start == '-' && isdigit((unsigned char)start[1]))) {
			s->args[s->nargs].kind = ARG_INT;
			s->args[s->nargs++].n = strtoll(start, NULL, 10);
		} else if (!s->func && s->nargs == 0) {
			if (strcmp(start, "json") && strcmp(start, "index") && strcmp(start, "join") &&
			    strcmp(start, "lower") && strcmp(start, "upper")) {
				char what[128];
				snprintf(what, sizeof what, "`%.60s` is not supported", start);
				rc = bad(what, a);
			} else {
				s->func = strdup(start);
			}
		} else {
			char what[128];
			snprintf(what, sizeof what, "`%.60s` is not supported", start);
			rc = bad(what, a);
		}
	}
	if (!rc && s->nargs == 0)
		rc = bad(s->func ? "missing argument" : "empty action", a);
	if (!rc && !s->func && s->nargs != 1)
		rc = bad("one value expected", a);
	if (!rc && s->func) {
		int want = !strcmp(s->func, "index") || !strcmp(s->func, "join") ? 2 : 1;
		if (s->nargs != want || s->args[0].kind != ARG_FIELD)
			rc = bad("wrong arguments", a);
	}
	free(buf);
	return rc;
}

static int tmpl_parse(tmpl *t, const char *spec)
{
	const char *p = spec;
	while (*p) {
		const char *open = strstr(p, "{{");
		size_t len = open ? (size_t)(open - p) : strlen(p);
		if (len) {
			segment s = { unescape(p, len), NULL, { { 0, NULL, 0 } }, 0 };
			if (!s.text || add_seg(t, s) < 0)
				return -1;
		}
		if (!open)
			break;
		const char *close = strstr(open + 2, "}}");
		if (!close) {
			fprintf(stderr, "imagebuild: template parsing error: unclosed action `%s`\n", open);
			return -1;
		}
		char action[512];
		snprintf(action, sizeof action, "%.*s", (int)(close - open - 2), open + 2);
		if (action[0] == '-' || (*action && action[strlen(action) - 1] == '-') || strchr(action, '|') ||
		    strchr(action, '(') || strchr(action, '$'))
			return bad("pipelines, variables and trim markers are not supported", action);
		segment s;
		if (parse_action(&s, action) < 0 || add_seg(t, s) < 0) {
			tmpl seg1 = { &s, 1 };
			(void)seg1;
			return -1;
		}
		p = close + 2;
	}
	return 0;
}

/* The value of a field path; *missing when a key below the top is absent. -1: unknown top field. */
static int field(json_t **out, json_t *root, const char *path)
{
	*out = root;
	if (!strcmp(path, "."))
		return 0;
	char *copy = strdup(path + 1), *save = NULL;
	int depth = 0, rc = 0;
	for (char *k = copy ? strtok_r(copy, ".", &save) : NULL; k; k = strtok_r(NULL, ".", &save), depth++) {
		if (!*out) /* below a missing key: Go's <no value> */
			break;
		if (!json_is_object(*out)) {
			fprintf(stderr, "imagebuild: template: can't evaluate field %s in a %s\n", k,
				json_is_array(*out) ? "list" : "value");
			rc = -1;
			break;
		}
		json_t *v = json_object_get(*out, k);
		if (!v && depth == 0) {
			fprintf(stderr, "imagebuild: template: can't evaluate field %s (no such field)\n", k);
			rc = -1;
			break;
		}
		*out = v;
	}
	free(copy);
	return rc;
}

/* As Go's %v prints a value. */
static void put_value(FILE *f, json_t *v)
{
	if (!v) {
		fputs("<no value>", f);
	} else if (json_is_string(v)) {
		fputs(json_string_value(v), f);
	} else if (json_is_integer(v)) {
		fprintf(f, "%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		fprintf(f, "%g", json_real_value(v));
	} else if (json_is_true(v)) {
		fputs("true", f);
	} else if (json_is_false(v)) {
		fputs("false", f);
	} else if (json_is_null(v)) {
		fputs("<nil>", f);
	} else if (json_is_array(v)) {
		fputc('[', f);
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				fputc(' ', f);
			put_value(f, json_array_get(v, i));
		}
		fputc(']', f);
	} else {
		/* map[k:v ...], keys sorted as Go prints maps */
		size_t n = json_object_size(v), i = 0;
		const char **keys = calloc(n ? n : 1, sizeof *keys);
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
			if (keys)
				keys[i++] = k;
		for (size_t a = 1; keys && a < n; a++)
			for (size_t b = a; b > 0 && strcmp(keys[b - 1], keys[b]) > 0; b--) {
				const char *t = keys[b];
				keys[b] = keys[b - 1];
				keys[b - 1] = t;
			}
		fputs("map[", f);
		for (size_t a = 0; keys && a < n; a++) {
			fprintf(f, "%s%s:", a ? " " : "", keys[a]);
			put_value(f, json_object_get(v, keys[a]));
		}
		fputc(']', f);
		free(keys);
	}
}

/*
 * The map and slice fields docker's inspect structs always have (image and
 * container inspect: types.ImageInspect, container.Config, ...): absent (or
 * null) in our JSON, they are nil there, which Go prints as `map[]` and `[]`
 * (and json as null), never <no value>; their string fields likewise are ""
 * (json: ""). Returns that text, or NULL.
 */
static const char *docker_zero(const char *path)
{
	static const char *const maps[] = { ".Config.Labels", ".Config.ExposedPorts", ".Config.Volumes",
					    ".ContainerConfig.Labels", ".ContainerConfig.ExposedPorts",
					    ".ContainerConfig.Volumes", NULL };
	static const char *const slices[] = { ".RepoTags", ".RepoDigests", ".Config.Env", ".Config.Cmd",
					      ".Config.Entrypoint", ".Config.OnBuild", ".Config.Shell",
					      ".ContainerConfig.Env", ".ContainerConfig.Cmd",
					      ".ContainerConfig.Entrypoint", ".ContainerConfig.OnBuild",
					      ".ContainerConfig.Shell", ".RootFS.Layers", ".Args", ".Mounts", NULL };
	static const char *const strings[] = { ".Config.User", ".Config.WorkingDir", ".Config.StopSignal",
					       ".Config.Hostname", ".Config.Domainname", ".Config.Image", NULL };
	for (size_t i = 0; maps[i]; i++)
		if (!strcmp(path, maps[i]))
			return "map[]";
	for (size_t i = 0; strings[i]; i++)
		if (!strcmp(path, strings[i]))
			return "";
	for (size_t i = 0; slices[i]; i++)
		if (!strcmp(path, slices[i]))
			return "[]";
	return NULL;
}

static int eval(FILE *f, const tmpl *t, json_t *row)
{
	for (size_t i = 0; i < t->n; i++) {
		const segment *s = &t->segs[i];
		if (s->text) {
			fputs(s->text, f);
			continue;
		}
		json_t *v;
		if (field(&v, row, s->args[0].text) < 0)
			return -1;
		const char *zero = !v || json_is_null(v) ? docker_zero(s->args[0].text) : NULL;
		if (!s->func && zero) {
			fputs(zero, f);
		} else if (!s->func) {
			put_value(f, v);
		} else if (!strcmp(s->func, "json") && zero && !*zero) {
			fputs("\"\"", f);
		} else if (!strcmp(s->func, "json")) {
			char *d = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
			fputs(d ? d : "null", f);
			free(d);
		} else if (!strcmp(s->func, "lower") || !strcmp(s->func, "upper")) {
			if (!json_is_string(v)) {
				fprintf(stderr, "imagebuild: template: %s of a value that is not a string\n", s->func);
				return -1;
			}
			for (const char *c = json_string_value(v); *c; c++)
				fputc(s->func[0] == 'l' ? tolower((unsigned char)*c) : toupper((unsigned char)*c), f);
		} else if (!strcmp(s->func, "join")) {
			if (!json_is_array(v) || s->args[1].kind != ARG_STRING) {
				fprintf(stderr, "imagebuild: template: join takes a list and a string\n");
				return -1;
			}
			for (size_t e = 0; e < json_array_size(v); e++) {
				if (e)
					fputs(s->args[1].text, f);
				put_value(f, json_array_get(v, e));
			}
		} else { /* index */
			json_t *r = NULL;
			if (json_is_array(v) && s->args[1].kind == ARG_INT) {
				if (s->args[1].n < 0 || (size_t)s->args[1].n >= json_array_size(v)) {
					fprintf(stderr, "imagebuild: template: error calling index: index out of range: %lld\n",
						s->args[1].n);
					return -1;
				}
				r = json_array_get(v, (size_t)s->args[1].n);
			} else if (json_is_object(v) && s->args[1].kind == ARG_STRING) {
				r = json_object_get(v, s->args[1].text);
			} else {
				fprintf(stderr, "imagebuild: template: index takes a list and a number, or a map and a string\n");
				return -1;
			}
			put_value(f, r);
		}
	}
	return 0;
}

cli_format *cli_format_new(const char *spec, const char *default_table, json_t *headers)
{
	cli_format *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->headers = headers;
	if (!strcmp(spec, "json")) {
		f->json = 1;
		return f;
	}
	if (!strncmp(spec, "table", 5) && (!spec[5] || isspace((unsigned char)spec[5]))) {
		f->table = 1;
		spec += 5;
		while (*spec == ' ')
			spec++;
		if (!*spec)
			spec = default_table;
	}
	if (tmpl_parse(&f->t, spec) < 0) {
		tmpl_free(&f->t);
		free(f);
		return NULL;
	}
	return f;
}

int cli_format_is_json(const cli_format *f)
{
	return f->json;
}

/* One row as text (a new string), or NULL after an error. */
static char *render(cli_format *f, json_t *row)
{
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);
	if (!m)
		return NULL;
	int rc = eval(m, &f->t, row);
	if (fclose(m) != 0 || rc < 0) {
		free(out);
		return NULL;
	}
	return out;
}

int cli_format_row(cli_format *f, json_t *row)
{
	if (f->json) {
		char *d = json_dumps(row, JSON_COMPACT);
		if (!d)
			return -1;
		printf("%s\n", d);
		free(d);
		return 0;
	}
	if (f->table && f->nlines == 0 && f->headers) {
		/* the header: the same template over the headers */
		char *h = render(f, f->headers);
		char **l = realloc(f->lines, sizeof *l);
		if (!h || !l) {
			free(h);
			f->failed = 1;
			return -1;
		}
		f->lines = l;
		f->lines[f->nlines++] = h;
	}
	char *line = render(f, row);
	if (!line) {
		f->failed = 1;
		return -1;
	}
	if (!f->table) {
		printf("%s\n", line);
		free(line);
		return 0;
	}
	char **l = realloc(f->lines, (f->nlines + 1) * sizeof *l);
	if (!l) {
		free(line);
		f->failed = 1;
		return -1;
	}
	f->lines = l;
	f->lines[f->nlines++] = line;
	return 0;
}

/* Go's tabwriter as docker sets it up: cells of at least 10, padded by 3. */
static void print_table(char **lines, size_t n)
{
	size_t width[64] = { 0 };
	for (size_t i = 0; i < n; i++) {
		size_t col = 0, start = 0;
		for (size_t c = 0; lines[i][c]; c++) {
			if (lines[i][c] == '\t') {
				if (col < 64 && c - start + 3 > width[col])
					width[col] = c - start + 3;
				col++;
				start = c + 1;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		size_t col = 0, start = 0;
		const char *l = lines[i];
		for (size_t c = 0;; c++) {
			if (l[c] == '\t' || !l[c]) {
				size_t w = c - start;
				fwrite(l + start, 1, w, stdout);
				if (!l[c])
					break;
				size_t want = col < 64 ? (width[col] < 10 ? 10 : width[col]) : w + 3;
				for (; w < want; w++)
					putchar(' ');
				col++;
				start = c + 1;
			}
		}
		putchar('\n');
	}
}

int cli_format_end(cli_format *f)
{
	if (!f)
		return -1;
	int failed = f->failed;
	if (f->table && !failed) {
		if (f->nlines == 0 && f->headers) { /* no rows: the header alone */
			char *h = render(f, f->headers);
			if (h) {
				print_table(&h, 1);
				free(h);
			}
		}
		print_table(f->lines, f->nlines);
	}
	for (size_t i = 0; i < f->nlines; i++)
		free(f->lines[i]);
	free(f->lines);
	tmpl_free(&f->t);
	free(f);
	return failed ? -1 : 0;
}
