/* Helpers shared by the commands. */
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

ib_store *cli_store(ib_cli *cli)
{
	if (cli->store)
		return cli->store;
	if (ib_store_open(&cli->store, cli->root, NULL) < 0) {
		cli_fail("open store");
		cli->store = NULL;
	}
	return cli->store;
}

int cli_fail(const char *context)
{
	if (context)
		fprintf(stderr, "imagebuild: %s: %s\n", context, ib_error_last()->message);
	else
		fprintf(stderr, "imagebuild: %s\n", ib_error_last()->message);
	return 1;
}

int cli_error(const char *context)
{
	cli_fail(context);
	return CLI_EXIT_ERROR;
}

int cli_container_status(int rc, const ib_exit_status *st, const char *context)
{
	if (cli_cancel)
		return cli_cancelled_status(CLI_EXIT_ERROR);
	if (rc < 0) {
		cli_fail(context);
		return !st->signal && (st->code == 126 || st->code == 127) ? st->code : CLI_EXIT_ERROR;
	}
	return st->signal ? 128 + st->signal : st->code;
}

int cli_usage(ib_cli *cli)
{
	if (cli->status >= 0)
		return cli->status; /* --help, or a bad option: already said */
	fprintf(stderr, "Usage: imagebuild %s [OPTIONS]%s%s\nSee 'imagebuild %s --help'.\n", cli->command,
		cli->usage && *cli->usage ? " " : "", cli->usage ? cli->usage : "", cli->command);
	return CLI_EXIT_ERROR;
}

/* The column where the descriptions of --help start. */
#define HELP_COL 28

static void help_options(FILE *f, const cli_option *opts, int add_help, int help_short)
{
	for (const cli_option *o = opts; o && o->long_name; o++) {
		char left[128];
		int n = snprintf(left, sizeof left, "  %c%c%c --%s%s%s", o->short_name ? '-' : ' ',
				 o->short_name ? o->short_name : ' ', o->short_name ? ',' : ' ', o->long_name,
				 o->has_value ? " " : "", o->has_value ? (o->value_name ? o->value_name : "VALUE") : "");
		if (n >= HELP_COL - 1)
			fprintf(f, "%s\n%*s%s\n", left, HELP_COL, "", o->help ? o->help : "");
		else
			fprintf(f, "%-*s%s\n", HELP_COL, left, o->help ? o->help : "");
	}
	if (add_help)
		fprintf(f, "%-*s%s\n", HELP_COL, help_short ? "  -h, --help" : "      --help", "Print usage");
}

/* Whether `opts` uses the short name `c` itself (run: -h is --hostname, as docker's). */
static int has_short(const cli_option *opts, char c)
{
	for (const cli_option *o = opts; o && o->long_name; o++)
		if (o->short_name == c)
			return 1;
	return 0;
}

void cli_help(FILE *f, const cli_command *cmd)
{
	if (!cmd) {
		fprintf(f, "Usage:  imagebuild [OPTIONS] COMMAND\n\n"
			   "A docker-like command line on libimagebuild: build, run and move OCI images\n"
			   "without a daemon.\n\nManagement Commands:\n");
		for (size_t g = 0; cli_groups[g][0]; g++)
			fprintf(f, "  %-10s %s\n", cli_groups[g][0], cli_groups[g][1]);
		fprintf(f, "\nCommands:\n");
		for (size_t i = 0; i < cli_ncommands; i++)
			fprintf(f, "  %-10s %s\n", cli_commands[i].name, cli_commands[i].summary);
		fprintf(f, "\nGlobal Options:\n");
		help_options(f, cli_global_opts, 0, 0);
		fprintf(f, "\nThe store is --root DIR, else $IMAGEBUILD_ROOT, else /var/lib/imagebuild (root)\n"
			   "or $XDG_DATA_HOME/imagebuild.\n\n"
			   "Run 'imagebuild COMMAND --help' for more information on a command.\n");
		return;
	}
	fprintf(f, "Usage:  imagebuild %s [OPTIONS]%s%s\n\n%s\n\n", cmd->name, *cmd->usage ? " " : "",
		cmd->usage, cmd->summary);
	int aliases = 0;
	for (const cli_alias *a = cli_aliases; a->group; a++)
		if (!strcmp(a->command, cmd->name))
			fprintf(f, "%s imagebuild %s %s", aliases++ ? "," : "Aliases:\n ", a->group, a->name);
	if (aliases)
		fprintf(f, "\n\n");
	fprintf(f, "Options:\n");
	help_options(f, cmd->opts, 1, !has_short(cmd->opts, 'h'));
}

/* The parser's state between the calls of one loop (one argv at a time). */
static struct {
	char **argv;
	struct option *longopts;
	char shorts[128];
	int help_index; /* the index getopt_long reports for --help */
	/* per flag (no value): how often it occurs, how often seen yet, and the last
	   occurrence's value; pflag keeps the last: --rm --rm=false is no --rm */
	unsigned int *count, *seen;
	unsigned char *last;
} parse;

static void parse_reset(void)
{
	free(parse.longopts);
	free(parse.count);
	free(parse.seen);
	free(parse.last);
	memset(&parse, 0, sizeof parse);
}

/* The value a flag occurrence gives: 1 (no value, or a true word), 0 (a false word), -1 (invalid). */
static int flag_value(const char *arg)
{
	static const char *const yes[] = { "1", "t", "T", "true", "TRUE", "True" };
	static const char *const no[] = { "0", "f", "F", "false", "FALSE", "False" };
	if (!arg)
		return 1;
	for (size_t b = 0; b < sizeof no / sizeof no[0]; b++)
		if (!strcmp(arg, no[b]))
			return 0;
	for (size_t b = 0; b < sizeof yes / sizeof yes[0]; b++)
		if (!strcmp(arg, yes[b]))
			return 1;
	return -1;
}

/* The option index of short option c, or -1. */
static int short_index(const cli_option *opts, int c)
{
	for (int k = 0; opts && opts[k].long_name; k++)
		if (opts[k].short_name == c)
			return k;
	return -1;
}

/*
 * Counts each flag's occurrences and keeps the last one's value, with the same
 * getopt_long over a copy of argv (it permutes its argv), so that the parse can
 * give a flag only at its last occurrence. Stops at the first error: the real
 * parse reports it there.
 */
static int parse_count(const cli_option *opts, size_t n, int argc, char **argv)
{
	char **copy = calloc((size_t)argc + 1, sizeof *copy);
	if (!copy)
		return -1;
	memcpy(copy, argv, (size_t)argc * sizeof *copy);
	optind = 0;
	opterr = 0;
	int c, idx;
	while ((c = getopt_long(argc, copy, parse.shorts, parse.longopts, &idx)) != -1) {
		int k = c >= 0x100 ? c - 0x100 : c == '?' || c == ':' ? -2 : short_index(opts, c);
		if (k == -2)
			break;
		if (k < 0 || (size_t)k >= n || opts[k].has_value)
			continue;
		int b = flag_value(c >= 0x100 ? optarg : NULL);
		if (b < 0)
			break;
		parse.count[k]++;
		parse.last[k] = (unsigned char)b;
	}
	free(copy);
	return 0;
}

static int parse_start(const cli_option *opts, unsigned int flags, int argc, char **argv)
{
	size_t n = 0;
	while (opts && opts[n].long_name)
		n++;
	parse_reset();
	parse.longopts = calloc(n + 2, sizeof *parse.longopts);
	parse.count = calloc(n + 1, sizeof *parse.count);
	parse.seen = calloc(n + 1, sizeof *parse.seen);
	parse.last = calloc(n + 1, sizeof *parse.last);
	if (!parse.longopts || !parse.count || !parse.seen || !parse.last)
		return -1;
	size_t s = 0;
	/* +: stop at the first operand; ':': a missing value is ':' (our message) */
	if (flags & CLI_NO_INTERSPERSE)
		parse.shorts[s++] = '+';
	parse.shorts[s++] = ':';
	for (size_t k = 0; k < n; k++) {
		parse.longopts[k].name = opts[k].long_name;
		/* flags take =true/=false as docker's (pflag's) booleans do: --rm=false */
		parse.longopts[k].has_arg = opts[k].has_value ? required_argument : optional_argument;
		parse.longopts[k].val = 0x100 + (int)k;
		if (opts[k].short_name && s + 3 < sizeof parse.shorts) {
			parse.shorts[s++] = opts[k].short_name;
			if (opts[k].has_value)
				parse.shorts[s++] = ':';
		}
	}
	if (!has_short(opts, 'h'))
		parse.shorts[s++] = 'h';
	parse.shorts[s] = '\0';
	parse.longopts[n].name = "help";
	parse.longopts[n].val = 0x100 + (int)n;
	parse.help_index = (int)n;
	if (parse_count(opts, n, argc, argv) < 0)
		return -1;
	parse.argv = argv;
	optind = 0; /* GNU: start over */
	opterr = 0;
	return 0;
}

static int bad_option(ib_cli *cli, const char *fmt, const char *what, int c)
{
	fprintf(stderr, "imagebuild%s%s: ", cli->command ? " " : "", cli->command ? cli->command : "");
	if (what)
		fprintf(stderr, fmt, what);
	else
		fprintf(stderr, fmt, c);
	fprintf(stderr, "\nSee 'imagebuild%s%s --help'.\n", cli->command ? " " : "", cli->command ? cli->command : "");
	cli->status = CLI_EXIT_ERROR;
	parse_reset();
	return -2;
}

int cli_next_option(ib_cli *cli, int argc, char **argv, int *i, const cli_option *opts, const char **value)
{
	if (parse.argv != argv &&
	    parse_start(opts, cli->cmd ? cli->cmd->flags : CLI_NO_INTERSPERSE, argc, argv) < 0) {
		fprintf(stderr, "imagebuild: out of memory\n");
		cli->status = CLI_EXIT_ERROR;
		return -2;
	}
	int idx = -1;
	int c = getopt_long(argc, argv, parse.shorts, parse.longopts, &idx);
	if (c == -1) {
		*i = optind;
		parse_reset();
		return -1;
	}
	if (c == '?') {
		if (optopt >= 0x100 || (optopt == 0 && optind > 0))
			return bad_option(cli, "unknown flag: %s", argv[optind - 1], 0);
		return bad_option(cli, "unknown shorthand flag: '%c'", NULL, optopt);
	}
	if (c == ':') {
		if (optopt >= 0x100)
			return bad_option(cli, "flag needs an argument: --%s", opts[optopt - 0x100].long_name, 0);
		if (optopt == 0)
			return bad_option(cli, "flag needs an argument: %s", argv[optind - 1], 0);
		return bad_option(cli, "flag needs an argument: -%c", NULL, optopt);
	}
	int k;
	if (c >= 0x100) {
		k = c - 0x100;
		/* getopt_long takes abbreviations (--no-c); docker does not: the name in full */
		const char *word = optarg && optind >= 2 && optarg == argv[optind - 1] ? argv[optind - 2] : argv[optind - 1];
		const char *name = k == parse.help_index ? "help" : opts[k].long_name;
		size_t ln = strlen(name);
		if (strncmp(word, "--", 2) || strncmp(word + 2, name, ln) || (word[2 + ln] && word[2 + ln] != '='))
			return bad_option(cli, "unknown flag: %s", word, 0);
	} else if (c == 'h' && !has_short(opts, 'h')) {
		k = parse.help_index;
	} else {
		for (k = 0; opts[k].long_name && opts[k].short_name != c; k++)
			;
	}
	if (k != parse.help_index && !opts[k].has_value) {
		if (c >= 0x100 && flag_value(optarg) < 0) {
			char what[256];
			snprintf(what, sizeof what, "invalid argument \"%.100s\" for \"--%.100s\" flag (true or false)", optarg,
				 opts[k].long_name);
			return bad_option(cli, "%s", what, 0);
		}
		/* the last occurrence wins, as pflag's; a false one is as if not given
		   (the flags default to false) */
		if (parse.seen[k] + 1 == parse.count[k] && !parse.last[k] && opts[k].default_true)
			return bad_option(cli, "--%s=false is not supported", opts[k].long_name, 0);
		if (++parse.seen[k] < parse.count[k] || !parse.last[k])
			return cli_next_option(cli, argc, argv, i, opts, value);
	}
	if (k == parse.help_index) {
		cli_help(stdout, cli->cmd);
		cli->status = 0;
		parse_reset();
		return -2;
	}
	*value = opts[k].has_value ? optarg : NULL;
	return k;
}

void cli_human_size(char *out, size_t len, uint64_t bytes)
{
	const char *units[] = { "B", "kB", "MB", "GB", "TB" };
	double v = (double)bytes;
	int u = 0;
	while (v >= 1000 && u < 4) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%lluB", (unsigned long long)bytes);
	else
		snprintf(out, len, "%.3g%s", v, units[u]);
}

void cli_human_since(char *out, size_t len, const char *t)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!t || !strptime(t, "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(out, len, "N/A");
		return;
	}
	time_t then = timegm(&tm), now = time(NULL);
	long long d = (long long)(now - then);
	if (d < 0)
		d = 0;
	struct { long long secs; const char *unit; } steps[] = {
		{ 365LL * 86400, "year" }, { 30LL * 86400, "month" }, { 7LL * 86400, "week" },
		{ 86400, "day" }, { 3600, "hour" }, { 60, "minute" }, { 1, "second" },
	};
	if (d < 1) {
		snprintf(out, len, "Less than a second ago");
		return;
	}
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		if (d >= steps[i].secs) {
			long long n = d / steps[i].secs;
			snprintf(out, len, "%lld %s%s ago", n, steps[i].unit, n > 1 ? "s" : "");
			return;
		}
	}
}

int cli_list_add(const char ***list, size_t *n, const char *item)
{
	const char **l = realloc(*list, (*n + 2) * sizeof *l);
	if (!l)
		return -1;
	l[(*n)++] = item;
	l[*n] = NULL;
	*list = l;
	return 0;
}

char *cli_kv_from_env(const char *arg)
{
	if (strchr(arg, '='))
		return strdup(arg);
	const char *v = getenv(arg);
	if (!v)
		return NULL;
	char *kv = malloc(strlen(arg) + strlen(v) + 2);
	if (kv)
		sprintf(kv, "%s=%s", arg, v);
	return kv;
}

static int parse_epoch(const char *v, int *use, int64_t *epoch)
{
	*use = 0;
	if (!v || !*v)
		return 0;
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || *end || n < 0 || *v < '0' || *v > '9') {
		fprintf(stderr, "imagebuild: SOURCE_DATE_EPOCH `%s` is not a number of seconds\n", v);
		return -1;
	}
	*use = 1;
	*epoch = n;
	return 0;
}

int cli_source_date_epoch_env(int *use, int64_t *epoch)
{
	return parse_epoch(getenv("SOURCE_DATE_EPOCH"), use, epoch);
}

int cli_source_date_epoch(const char ***args, size_t *nargs, int *use, int64_t *epoch)
{
	static const char name[] = "SOURCE_DATE_EPOCH=";
	const char *v = NULL;
	for (size_t i = 0; i < *nargs; i++)
		if (!strncmp((*args)[i], name, sizeof name - 1))
			v = (*args)[i] + sizeof name - 1;
	if (v)
		return parse_epoch(v, use, epoch);
	const char *env = getenv("SOURCE_DATE_EPOCH");
	if (parse_epoch(env, use, epoch) < 0)
		return -1;
	if (*use) {
		char *kv = cli_kv_from_env("SOURCE_DATE_EPOCH");
		if (kv)
			cli_list_add(args, nargs, kv);
	}
	return 0;
}

volatile int cli_cancel;

static void on_signal(int sig)
{
	cli_cancel = sig;
}

void cli_catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

const ib_callbacks *cli_cancel_callbacks(void)
{
	static ib_callbacks cb = IB_CALLBACKS_INIT;
	cb.cancel = &cli_cancel;
	return &cb;
}

int cli_cancelled_status(int status)
{
	if (!cli_cancel)
		return status;
	fprintf(stderr, "imagebuild: cancelled (%s)\n", cli_cancel == SIGINT ? "SIGINT" : "SIGTERM");
	return 128 + cli_cancel;
}
