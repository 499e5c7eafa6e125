/* --progress: BuildKit's tty and plain views, rawjson and quiet. See progress.h. */
#include "progress.h"
#include "common.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define LOG_TAIL 6 /* lines of a running RUN's output the tty view shows, as BuildKit */

enum { V_STEP, V_CONTEXT, V_BLOB, V_EXPORT };

typedef struct {
	int num;          /* #N, in order of first appearance */
	int kind;         /* V_* */
	char *key;        /* the step's label, "context", a blob's id */
	char *name;       /* what its row shows */
	int cached, done, error;
	int canceled;     /* stopped because another step failed (BuildKit's CANCELED) */
	double start, end;
	char *status;     /* BYTES: the last state */
	uint64_t cur, total;
	uint64_t layer;   /* a step's layer written so far */
	char *tail[LOG_TAIL];
	size_t ntail;     /* lines seen; tail[] is a ring of the last LOG_TAIL */
	char **subs;      /* "writing image sha256:... done" */
	size_t nsubs;
	char *errmsg;
} vertex;

struct cli_progress {
	cli_progress_mode mode;
	cli_view view;
	pthread_mutex_t mu;
	pthread_t ticker;
	int ticker_on;
	volatile int stop;
	double t0, t_end;
	vertex **v;
	size_t nv, cap;
	int drawn;        /* lines of the tty view on screen */
	int finished;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cli_progress_parse(const char *cmd, const char *value, cli_progress_mode *mode)
{
	static const char *const names[] = { "auto", "tty", "plain", "rawjson", "quiet" };
	for (int i = 0; i < 5; i++) {
		if (!strcmp(value, names[i])) {
			*mode = (cli_progress_mode)i;
			return 0;
		}
	}
	fprintf(stderr, "imagebuild %s: --progress must be auto, tty, plain, rawjson or quiet, not `%s`\n", cmd,
		value);
	return -1;
}

/* A copy of `s` fit for one terminal line: control characters become spaces, no trailing blanks. */
static char *clean(const char *s)
{
	char *c = strdup(s ? s : "");
	if (!c)
		return NULL;
	for (char *q = c; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			*q = ' ';
	size_t n = strlen(c);
	while (n && c[n - 1] == ' ')
		c[--n] = 0;
	return c;
}

static void vertex_free(vertex *v)
{
	if (!v)
		return;
	free(v->key);
	free(v->name);
	free(v->status);
	for (size_t i = 0; i < LOG_TAIL; i++)
		free(v->tail[i]);
	for (size_t i = 0; i < v->nsubs; i++)
		free(v->subs[i]);
	free(v->subs);
	free(v->errmsg);
	free(v);
}

static vertex *vertex_new(cli_progress *p, int kind, const char *key, const char *name)
{
	if (p->nv == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		vertex **nv = realloc(p->v, cap * sizeof *nv);
		if (!nv)
			return NULL;
		p->v = nv;
		p->cap = cap;
	}
	vertex *v = calloc(1, sizeof *v);
	if (!v)
		return NULL;
	v->kind = kind;
	v->key = strdup(key ? key : "");
	v->name = clean(name);
	if (!v->key || !v->name) {
		vertex_free(v);
		return NULL;
	}
	v->num = (int)p->nv + 1;
	v->start = now();
	p->v[p->nv++] = v;
	return v;
}

/* The latest vertex of `kind` with `key`, preferring one still running. */
static vertex *vertex_find(cli_progress *p, int kind, const char *key)
{
	vertex *found = NULL;
	for (size_t i = p->nv; i-- > 0;) {
		vertex *v = p->v[i];
		if (v->kind != kind || strcmp(v->key, key ? key : ""))
			continue;
		if (!v->done)
			return v;
		if (!found)
			found = v;
	}
	return found;
}

static void sub_add(vertex *v, const char *text)
{
	char **s = realloc(v->subs, (v->nsubs + 1) * sizeof *s);
	if (!s)
		return;
	v->subs = s;
	if ((s[v->nsubs] = clean(text)))
		v->nsubs++;
}

/* ---- plain ---- */

static void plain_line(cli_progress *p, const vertex *v, const char *fmt, ...)
{
	(void)p;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "#%d ", v->num);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- rawjson ---- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
		switch (*c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*c < 0x20 || *c == 0x7f)
				fprintf(f, "\\u%04x", *c);
			else
				fputc(*c, f);
		}
	}
	fputc('"', f);
}

static const char *kind_name(ib_progress_kind k)
{
	switch (k) {
	case IB_PROGRESS_STEP: return "step";
	case IB_PROGRESS_STEP_DONE: return "step_done";
	case IB_PROGRESS_BYTES: return "bytes";
	case IB_PROGRESS_OUTPUT: return "output";
	}
	return "unknown";
}

static void rawjson_event(cli_progress *p, const ib_progress *e)
{
	fprintf(stderr, "{\"version\":%u,\"kind\":", e->version);
	json_str(stderr, kind_name(e->kind));
	fputs(",\"id\":", stderr);
	if (e->id)
		json_str(stderr, e->id);
	else
		fputs("null", stderr);
	fputs(",\"text\":", stderr);
	if (e->text)
		json_str(stderr, e->text);
	else
		fputs("null", stderr);
	fprintf(stderr, ",\"current\":%llu,\"total\":%llu,\"cached\":%s,\"elapsed\":%.3f}\n",
		(unsigned long long)e->current, (unsigned long long)e->total, e->cached ? "true" : "false",
		now() - p->t0);
	fflush(stderr);
}

/* ---- tty ---- */

typedef struct {
	char **l;
	size_t n, cap;
} lines;

static void lines_add(lines *ls, char *s)
{
	if (!s)
		return;
	if (ls->n == ls->cap) {
		size_t cap = ls->cap ? ls->cap * 2 : 32;
		char **l = realloc(ls->l, cap * sizeof *l);
		if (!l) {
			free(s);
			return;
		}
		ls->l = l;
		ls->cap = cap;
	}
	ls->l[ls->n++] = s;
}

/* Characters (not bytes) of UTF-8 `s`. */
static size_t width_of(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

/* The first `w` characters of `s`, as a byte length. */
static size_t cut_at(const char *s, size_t w)
{
	size_t i = 0, seen = 0;
	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80 && seen++ == w)
			break;
	}
	return i;
}

/* `left` cut to fit, padded, and `right` flush with the right edge of `cols`. */
static char *row(int cols, const char *left, const char *right)
{
	size_t rw = width_of(right), room = (size_t)cols > rw + 2 ? (size_t)cols - rw - 2 : 10;
	size_t lw = width_of(left);
	size_t lb = lw > room ? cut_at(left, room) : strlen(left);
	size_t shown = lw > room ? room : lw;
	char *out;
	if (asprintf(&out, "%.*s%*s%s", (int)lb, left, (int)(room - shown + 1), "", right) < 0)
		return NULL;
	return out;
}

static char *cut(int cols, const char *s)
{
	size_t room = cols > 1 ? (size_t)cols - 1 : 79;
	return strndup(s, cut_at(s, room));
}

static char *fmt(const char *f, ...)
{
	char *out;
	va_list ap;
	va_start(ap, f);
	int r = vasprintf(&out, f, ap);
	va_end(ap);
	return r < 0 ? NULL : out;
}

/* "[======>      ] 1.2MB / 3.4MB" */
static char *bar(uint64_t cur, uint64_t total)
{
	char a[32], b[32], line[64];
	int w = 20, fill = total ? (int)((double)cur / (double)total * w) : 0;
	if (fill > w)
		fill = w;
	for (int i = 0; i < w; i++)
		line[i] = i < fill - 1 ? '=' : i == fill - 1 ? '>' : ' ';
	line[w] = 0;
	cli_human_size(a, sizeof a, cur);
	cli_human_size(b, sizeof b, total);
	return fmt("[%s] %s / %s", line, a, b);
}

static void tty_lines(cli_progress *p, lines *ls, int cols, double t)
{
	size_t done = 0;
	for (size_t i = 0; i < p->nv; i++)
		done += p->v[i]->done || p->v[i]->error;
	const char *verb = p->view == CLI_VIEW_BUILD ? "Building" : p->view == CLI_VIEW_PULL ? "Pulling" : "Pushing";
	lines_add(ls, fmt("[+] %s %.1fs (%zu/%zu)%s", verb, t - p->t0, done, p->nv, p->finished ? " FINISHED" : ""));
	for (size_t i = 0; i < p->nv; i++) {
		vertex *v = p->v[i];
		double end = v->done || v->error ? v->end : t;
		char tm[32], sz[32];
		snprintf(tm, sizeof tm, "%.1fs", v->cached ? 0.0 : end - v->start);
		char *left = NULL;
		if (v->kind == V_BLOB) {
			char *b = !v->done && v->total ? bar(v->cur, v->total) : NULL;
			left = fmt(" => %s%s %s%s%s", v->error ? "ERROR " : "", v->name, v->status ? v->status : "",
				   b ? " " : "", b ? b : "");
			free(b);
		} else {
			left = fmt(" => %s%s", v->cached ? "CACHED " : v->canceled ? "CANCELED " : v->error ? "ERROR " : "",
				   v->name);
		}
		if (left)
			lines_add(ls, row(cols, left, tm));
		free(left);
		if (v->kind == V_CONTEXT) {
			cli_human_size(sz, sizeof sz, v->cur);
			lines_add(ls, cut(cols, (left = fmt(" => => transferring context: %s%s", sz, v->done ? " done" : ""))));
			free(left);
		}
		if (v->kind == V_STEP && !v->done && v->layer) {
			cli_human_size(sz, sizeof sz, v->layer);
			lines_add(ls, cut(cols, (left = fmt(" => => writing layer %s", sz))));
			free(left);
		}
		for (size_t s = 0; s < v->nsubs; s++) {
			lines_add(ls, cut(cols, (left = fmt(" => => %s", v->subs[s]))));
			free(left);
		}
		/* the last lines of a running (or failed) step's output */
		if (v->kind == V_STEP && (!v->done || v->error)) {
			size_t n = v->ntail < LOG_TAIL ? v->ntail : LOG_TAIL;
			for (size_t k = v->ntail - n; k < v->ntail; k++) {
				lines_add(ls, cut(cols, (left = fmt(" => => # %s", v->tail[k % LOG_TAIL]))));
				free(left);
			}
		}
		if (v->errmsg) {
			lines_add(ls, cut(cols, (left = fmt(" => => ERROR: %s", v->errmsg))));
			free(left);
		}
	}
}

/* Redraw the view in place (called with the lock held). `final`: all of it, cursor shown. */
static void tty_draw(cli_progress *p, int final)
{
	struct winsize ws;
	int cols = 80, rows = 24;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
		cols = ws.ws_col;
		rows = ws.ws_row > 2 ? ws.ws_row : 24;
	}
	lines ls = { NULL, 0, 0 };
	tty_lines(p, &ls, cols, final ? p->t_end : now());
	/* too tall while live: the header, then the last lines that fit */
	size_t first = 1;
	if (!final && ls.n > (size_t)rows - 1)
		first = ls.n - ((size_t)rows - 2);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (m) {
		fputs("\033[?25l", m);
		if (p->drawn)
			fprintf(m, "\033[%dA\r", p->drawn);
		int drawn = 0;
		for (size_t i = 0; i < ls.n; i++) {
			if (i && i < first)
				continue;
			fprintf(m, "%s\033[K\n", ls.l[i]);
			drawn++;
		}
		fputs("\033[J", m);
		if (final)
			fputs("\033[?25h", m);
		p->drawn = drawn;
		fclose(m);
		fwrite(buf, 1, len, stderr);
		fflush(stderr);
		free(buf);
	}
	for (size_t i = 0; i < ls.n; i++)
		free(ls.l[i]);
	free(ls.l);
}

static void *ticker(void *arg)
{
	cli_progress *p = arg;
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	while (!p->stop) {
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&p->mu);
		if (!p->stop)
			tty_draw(p, 0);
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

/* ---- events ---- */

static int blob_final(const char *text)
{
	static const char *const finals[] = { "Pull complete", "Already exists", "Pushed",
					      "Layer already exists", "Mounted from" };
	for (size_t i = 0; i < sizeof finals / sizeof finals[0]; i++)
		if (!strncmp(text, finals[i], strlen(finals[i])))
			return 1;
	return 0;
}

/* States worth a plain line (not every megabyte), as the old output printed them. */
static int blob_plain_worthy(const ib_progress *e)
{
	return strcmp(e->text, "Downloading") && strcmp(e->text, "Pulling fs layer") &&
	       strcmp(e->text, "Download complete") && (strcmp(e->text, "Pushing") || !e->current);
}

static void context_done(cli_progress *p, double t)
{
	vertex *c = vertex_find(p, V_CONTEXT, "context");
	if (!c || c->done)
		return;
	c->done = 1;
	c->end = t;
	if (p->mode == CLI_PROGRESS_PLAIN) {
		char sz[32];
		cli_human_size(sz, sizeof sz, c->cur);
		plain_line(p, c, "transferring context: %s done", sz);
		plain_line(p, c, "DONE %.1fs", c->end - c->start);
	}
}

static void on_step(cli_progress *p, const ib_progress *e, double t)
{
	context_done(p, t);
	char *name = fmt("%s %s", e->id ? e->id : "", e->text ? e->text : "");
	vertex *v = name ? vertex_new(p, V_STEP, e->id, name) : NULL;
	free(name);
	if (!v)
		return;
	v->cached = e->cached;
	if (p->mode == CLI_PROGRESS_PLAIN) {
		plain_line(p, v, "%s", v->name);
		if (v->cached)
			plain_line(p, v, "CACHED");
	}
}

static void on_step_done(cli_progress *p, const ib_progress *e, double t)
{
	vertex *v = vertex_find(p, V_STEP, e->id);
	if (!v || v->done)
		return;
	v->done = 1;
	v->end = t;
	if (p->mode == CLI_PROGRESS_PLAIN && !v->cached)
		plain_line(p, v, "DONE %.1fs", v->end - v->start);
}

static void on_output(cli_progress *p, const ib_progress *e, double t)
{
	vertex *v = vertex_find(p, V_STEP, e->id);
	if (!v)
		return;
	if (p->mode == CLI_PROGRESS_PLAIN) {
		plain_line(p, v, "%.3f %s", t - v->start, e->text ? e->text : "");
		return;
	}
	char *c = clean(e->text);
	if (!c)
		return;
	free(v->tail[v->ntail % LOG_TAIL]);
	v->tail[v->ntail % LOG_TAIL] = c;
	v->ntail++;
}

static void on_bytes(cli_progress *p, const ib_progress *e, double t)
{
	const char *id = e->id ? e->id : "";
	const char *text = e->text ? e->text : "";
	if (!strcmp(id, "context")) {
		vertex *c = vertex_find(p, V_CONTEXT, "context");
		if (!c || c->done) {
			if (!(c = vertex_new(p, V_CONTEXT, "context", "[internal] load build context")))
				return;
			if (p->mode == CLI_PROGRESS_PLAIN)
				plain_line(p, c, "%s", c->name);
		}
		c->cur = e->current;
		c->total = e->total;
		return;
	}
	if (!strncmp(id, "layer:", 6)) {
		/* a step's changes written as a layer: shown on the running step */
		for (size_t i = p->nv; i-- > 0;) {
			if (p->v[i]->kind == V_STEP && !p->v[i]->done) {
				p->v[i]->layer = e->current;
				break;
			}
		}
		return;
	}
	/* a blob pulled or pushed (also by a build), saved or loaded */
	vertex *v = vertex_find(p, V_BLOB, id);
	int is_new = !v || (v->done && !blob_final(text));
	if (is_new) {
		if (!(v = vertex_new(p, V_BLOB, id, id)))
			return;
		if (p->mode == CLI_PROGRESS_PLAIN && p->view == CLI_VIEW_BUILD)
			plain_line(p, v, "%s", v->name);
	}
	int changed = !v->status || strcmp(v->status, text);
	if (changed) {
		free(v->status);
		v->status = clean(text);
	}
	v->cur = e->current;
	v->total = e->total;
	if (p->mode == CLI_PROGRESS_PLAIN && blob_plain_worthy(e) && (changed || !strcmp(text, "Pushing"))) {
		if (p->view == CLI_VIEW_BUILD)
			plain_line(p, v, "%s", text);
		else
			fprintf(stderr, "%s: %s\n", id, text);
	}
	if (blob_final(text) && !v->done) {
		v->done = 1;
		v->end = t;
		if (p->mode == CLI_PROGRESS_PLAIN && p->view == CLI_VIEW_BUILD)
			plain_line(p, v, "DONE %.1fs", v->end - v->start);
	}
}

static int progress_cb(const ib_progress *e, void *payload)
{
	cli_progress *p = payload;
	pthread_mutex_lock(&p->mu);
	double t = now();
	if (p->mode == CLI_PROGRESS_RAWJSON) {
		rawjson_event(p, e);
	} else {
		switch (e->kind) {
		case IB_PROGRESS_STEP: on_step(p, e, t); break;
		case IB_PROGRESS_STEP_DONE: on_step_done(p, e, t); break;
		case IB_PROGRESS_OUTPUT: on_output(p, e, t); break;
		case IB_PROGRESS_BYTES: on_bytes(p, e, t); break;
		}
		if (p->mode == CLI_PROGRESS_PLAIN)
			fflush(stderr);
		else if (p->mode == CLI_PROGRESS_TTY && e->kind != IB_PROGRESS_OUTPUT && e->kind != IB_PROGRESS_BYTES)
			tty_draw(p, 0); /* output and bytes come often: the ticker shows them */
	}
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static void log_plain(ib_log_level level, const char *line, cli_view view)
{
	if (view == CLI_VIEW_BUILD)
		fprintf(stderr, "%s%s\n", level == IB_LOG_WARNING ? "warning: " : "", line);
	else if (level <= IB_LOG_WARNING)
		fprintf(stderr, "imagebuild: %s\n", line);
}

static void log_build(ib_log_level level, const char *line, void *payload)
{
	(void)payload;
	log_plain(level, line, CLI_VIEW_BUILD);
}

static void log_registry(ib_log_level level, const char *line, void *payload)
{
	(void)payload;
	log_plain(level, line, CLI_VIEW_PULL);
}

static void log_cb(ib_log_level level, const char *line, void *payload)
{
	cli_progress *p = payload;
	static const char *const levels[] = { "error", "warning", "info", "debug" };
	pthread_mutex_lock(&p->mu);
	if (p->mode == CLI_PROGRESS_RAWJSON) {
		fputs("{\"kind\":\"log\",\"level\":", stderr);
		json_str(stderr, (unsigned)level < 4 ? levels[level] : "info");
		fputs(",\"text\":", stderr);
		json_str(stderr, line);
		fprintf(stderr, ",\"elapsed\":%.3f}\n", now() - p->t0);
	} else if (p->mode == CLI_PROGRESS_TTY) {
		/* above the view, which is drawn again below it */
		if (p->drawn)
			fprintf(stderr, "\033[%dA\r\033[J", p->drawn);
		p->drawn = 0;
		log_plain(level, line, p->view);
		tty_draw(p, 0);
	} else {
		log_plain(level, line, p->view);
	}
	fflush(stderr);
	pthread_mutex_unlock(&p->mu);
}

cli_progress *cli_progress_start(cli_progress_mode mode, cli_view view, ib_callbacks *cb)
{
	if (mode == CLI_PROGRESS_AUTO) {
		const char *env = view == CLI_VIEW_BUILD ? getenv("BUILDKIT_PROGRESS") : NULL; /* buildx's */
		cli_progress_mode m;
		if (env && *env && strcmp(env, "auto") && cli_progress_parse("", env, &m) == 0)
			mode = m;
		else
			mode = isatty(STDERR_FILENO) ? CLI_PROGRESS_TTY : CLI_PROGRESS_PLAIN;
	}
	cb->progress = NULL;
	cb->log = view == CLI_VIEW_BUILD ? log_build : log_registry;
	cb->payload = NULL;
	cli_progress *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->mode = mode;
	p->view = view;
	p->t0 = now();
	pthread_mutex_init(&p->mu, NULL);
	if (mode == CLI_PROGRESS_QUIET)
		return p;
	cb->progress = progress_cb;
	cb->log = log_cb;
	cb->payload = p;
	if (mode == CLI_PROGRESS_TTY) {
		tty_draw(p, 0);
		p->ticker_on = pthread_create(&p->ticker, NULL, ticker, p) == 0;
	}
	return p;
}

cli_progress_mode cli_progress_mode_of(const cli_progress *p)
{
	return p ? p->mode : CLI_PROGRESS_QUIET;
}

void cli_progress_exported(cli_progress *p, const char *image_id, const char *const *tags)
{
	if (!p || p->mode == CLI_PROGRESS_QUIET || p->mode == CLI_PROGRESS_RAWJSON)
		return;
	pthread_mutex_lock(&p->mu);
	double t = now(), since = p->t0;
	for (size_t i = 0; i < p->nv; i++)
		if (p->v[i]->done && p->v[i]->end > since)
			since = p->v[i]->end;
	context_done(p, t);
	vertex *v = vertex_new(p, V_EXPORT, "export", "exporting to image");
	if (v) {
		v->start = since;
		char *s = fmt("writing image %s done", image_id);
		if (s)
			sub_add(v, s);
		free(s);
		for (size_t i = 0; tags && tags[i]; i++) {
			ib_buf name = IB_BUF_INIT;
			if (ib_reference_normalize(&name, tags[i]) < 0)
				ib_error_clear();
			s = fmt("naming to %s done", name.ptr ? name.ptr : tags[i]);
			if (s)
				sub_add(v, s);
			free(s);
			ib_buf_dispose(&name);
		}
		v->done = 1;
		v->end = now();
		if (p->mode == CLI_PROGRESS_PLAIN) {
			plain_line(p, v, "%s", v->name);
			for (size_t i = 0; i < v->nsubs; i++)
				plain_line(p, v, "%s", v->subs[i]);
			plain_line(p, v, "DONE %.1fs", v->end - v->start);
			fflush(stderr);
		}
	}
	pthread_mutex_unlock(&p->mu);
}

void cli_progress_end(cli_progress *p, int failed)
{
	if (!p)
		return;
	/*
	 * The error's first line (the lines after it, a RUN's last output, are
	 * on the view already); a closing "; <what follows>:" goes with them.
	 */
	char *msg = failed ? strdup(ib_error_last()->message) : NULL;
	if (msg) {
		msg[strcspn(msg, "\n")] = 0;
		size_t n = strlen(msg);
		char *semi = n && msg[n - 1] == ':' ? strrchr(msg, ';') : NULL;
		if (semi)
			*semi = 0;
		char *c = clean(msg);
		free(msg);
		msg = c;
	}
	pthread_mutex_lock(&p->mu);
	double t = now();
	p->t_end = t;
	if (!failed)
		context_done(p, t);
	/* stages run at once: the step the error names failed, the others running were cancelled */
	const vertex *culprit = NULL;
	const char *m = msg;
	if (m && m[0] == '[') { /* several platforms at once: "[linux/arm64]: " before the step's label */
		size_t k = strcspn(m + 1, "] ");
		if (m[1 + k] == ']' && m[2 + k] == ':' && m[3 + k] == ' ')
			m += k + 4;
	}
	for (size_t i = 0; failed && m && i < p->nv; i++) {
		const vertex *v = p->v[i];
		size_t kl = strlen(v->key);
		if (!v->done && v->kind == V_STEP && kl && !strncmp(m, v->key, kl) && m[kl] == ' ')
			culprit = v;
	}
	for (size_t i = 0; failed && i < p->nv; i++) {
		vertex *v = p->v[i];
		if (v->done)
			continue;
		v->error = 1;
		v->end = t;
		if (culprit && v != culprit && v->kind == V_STEP) {
			v->canceled = 1;
			if (p->mode == CLI_PROGRESS_PLAIN && p->view == CLI_VIEW_BUILD)
				plain_line(p, v, "CANCELED");
			continue;
		}
		if (v->kind == V_STEP && msg && !v->errmsg)
			v->errmsg = strdup(msg);
		if (p->mode == CLI_PROGRESS_PLAIN && p->view == CLI_VIEW_BUILD)
			plain_line(p, v, "ERROR: %s", v->errmsg ? v->errmsg : "cancelled");
	}
	p->stop = 1;
	pthread_mutex_unlock(&p->mu);
	if (p->ticker_on)
		pthread_join(p->ticker, NULL);
	if (p->mode == CLI_PROGRESS_TTY) {
		p->finished = 1;
		tty_draw(p, 1);
	}
	fflush(stderr);
	free(msg);
	for (size_t i = 0; i < p->nv; i++)
		vertex_free(p->v[i]);
	free(p->v);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
