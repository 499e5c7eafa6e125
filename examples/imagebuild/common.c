/* Helpers shared by the commands. */
#include "common.h"

#include <errno.h>
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

int cli_usage(ib_cli *cli)
{
	fprintf(stderr, "Usage: imagebuild %s\n", cli->usage);
	return 2;
}

int cli_next_option(ib_cli *cli, int argc, char **argv, int *i, const cli_option *opts, const char **value)
{
	if (*i >= argc)
		return -1;
	const char *a = argv[*i];
	if (a[0] != '-' || !strcmp(a, "-"))
		return -1;
	if (!strcmp(a, "--")) {
		(*i)++;
		return -1;
	}
	for (int k = 0; opts[k].long_name || opts[k].short_name; k++) {
		const cli_option *o = &opts[k];
		size_t ln = o->long_name ? strlen(o->long_name) : 0;
		int is_long = a[1] == '-' && o->long_name && !strncmp(a + 2, o->long_name, ln) &&
			      (a[2 + ln] == '\0' || (a[2 + ln] == '=' && o->has_value));
		int is_short = a[1] != '-' && o->short_name && a[1] == o->short_name && a[2] == '\0';
		if (!is_long && !is_short)
			continue;
		(*i)++;
		if (o->has_value) {
			if (is_long && a[2 + ln] == '=') {
				*value = a + 3 + ln;
			} else if (*i < argc) {
				*value = argv[(*i)++];
			} else {
				fprintf(stderr, "imagebuild %s: option `%s` needs a value\n", cli->command, a);
				return -2;
			}
		}
		return k;
	}
	fprintf(stderr, "imagebuild %s: unknown option `%s`\n", cli->command, a);
	cli_usage(cli);
	return -2;
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
