/*
 * imagebuild logs, wait, stop, kill, volume: detached containers (run -d,
 * each held by a supervisor process of its own, no daemon) and named volumes.
 */
#include "common.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Open each CONTAINER operand and call `fn`; the status is the last failure's. */
static int each_container(ib_cli *cli, int argc, char **argv, int i,
			  int (*fn)(ib_container *c, const char *arg, void *payload), void *payload)
{
	if (i >= argc)
		return cli_usage(cli);
	ib_store *store = cli_store(cli);
	if (!store)
		return 1;
	int status = 0;
	for (; i < argc; i++) {
		ib_container *c = NULL;
		if (ib_container_open(&c, store, argv[i]) < 0 || fn(c, argv[i], payload) < 0)
			status = cli_fail(argv[i]);
		ib_container_free(c);
	}
	return status;
}

const cli_option cli_opts_logs[] = {
	{ "follow", 'f', 0, NULL, "Follow log output until the container exits" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_logs(ib_cli *cli, int argc, char **argv)
{
	int i = 1, k, follow = 0;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, cli_opts_logs, &v)) >= 0)
		follow = 1;
	if (k == -2 || i + 1 != argc)
		return cli_usage(cli);
	ib_store *store = cli_store(cli);
	if (!store)
		return 1;
	ib_container *c = NULL;
	int status = 0;
	fflush(stdout);
	if (ib_container_open(&c, store, argv[i]) < 0 || ib_container_logs(c, 1, follow) < 0)
		status = cli_fail("logs");
	ib_container_free(c);
	return status;
}

const cli_option cli_opts_wait[] = {
	{ NULL, 0, 0, NULL, NULL },
};

static int wait_one(ib_container *c, const char *arg, void *payload)
{
	(void)arg;
	(void)payload;
	ib_exit_status st;
	if (ib_container_wait(&st, c) < 0)
		return -1;
	printf("%d\n", st.code);
	fflush(stdout);
	return 0;
}

int cmd_wait(ib_cli *cli, int argc, char **argv)
{
	int i = 1, k;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, cli_opts_wait, &v)) >= 0)
		;
	if (k == -2)
		return cli_usage(cli);
	return each_container(cli, argc, argv, i, wait_one, NULL);
}

const cli_option cli_opts_stop[] = {
	{ "time", 't', 1, "SECONDS", "Seconds to wait for the stop signal to end it before killing it (default 10)" },
	{ NULL, 0, 0, NULL, NULL },
};

static int stop_one(ib_container *c, const char *arg, void *payload)
{
	if (ib_container_stop(NULL, c, *(int *)payload) < 0)
		return -1;
	printf("%s\n", arg);
	fflush(stdout);
	return 0;
}

int cmd_stop(ib_cli *cli, int argc, char **argv)
{
	int i = 1, k, timeout = 10;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, cli_opts_stop, &v)) >= 0) {
		char *end;
		long t = strtol(v, &end, 10);
		if (!*v || *end || t < 0 || t > 1000000) {
			fprintf(stderr, "imagebuild stop: --time `%s` is not a number of seconds\n", v);
			return CLI_EXIT_ERROR;
		}
		timeout = (int)t;
	}
	if (k == -2)
		return cli_usage(cli);
	return each_container(cli, argc, argv, i, stop_one, &timeout);
}

const cli_option cli_opts_kill[] = {
	{ "signal", 's', 1, "SIGNAL", "Signal to send, by name or number (default KILL)" },
	{ NULL, 0, 0, NULL, NULL },
};

/* A signal by name ("SIGTERM", "TERM", any case) or number; 0 when unknown. */
static int signal_number(const char *s)
{
	static const struct { const char *name; int sig; } names[] = {
		{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL },
		{ "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "BUS", SIGBUS }, { "FPE", SIGFPE },
		{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
		{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CHLD", SIGCHLD },
		{ "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },
		{ "TTOU", SIGTTOU }, { "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
		{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
		{ "PWR", SIGPWR }, { "SYS", SIGSYS },
	};
	if (*s >= '0' && *s <= '9') {
		char *end;
		long n = strtol(s, &end, 10);
		return !*end && n > 0 && n < NSIG ? (int)n : 0;
	}
	const char *bare = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(names[i].name, bare) == 0)
			return names[i].sig;
	return 0;
}

static int kill_one(ib_container *c, const char *arg, void *payload)
{
	if (ib_container_kill(c, *(int *)payload) < 0)
		return -1;
	printf("%s\n", arg);
	fflush(stdout);
	return 0;
}

int cmd_kill(ib_cli *cli, int argc, char **argv)
{
	int i = 1, k, sig = SIGKILL;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, cli_opts_kill, &v)) >= 0) {
		if (!(sig = signal_number(v))) {
			fprintf(stderr, "imagebuild kill: invalid signal `%s`\n", v);
			return CLI_EXIT_ERROR;
		}
	}
	if (k == -2)
		return cli_usage(cli);
	return each_container(cli, argc, argv, i, kill_one, &sig);
}

const cli_option cli_opts_volume[] = {
	{ NULL, 0, 0, NULL, NULL },
};

/* volume create NAME | ls [-q] | rm NAME... | inspect NAME (its host path) */
int cmd_volume(ib_cli *cli, int argc, char **argv)
{
	int i = 1, k;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, cli_opts_volume, &v)) >= 0)
		;
	if (k == -2 || i >= argc)
		return cli_usage(cli);
	const char *sub = argv[i++];
	int quiet = 0;
	if ((!strcmp(sub, "ls") || !strcmp(sub, "list")) && i < argc &&
	    (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))) {
		quiet = 1;
		i++;
	}
	int is_ls = !strcmp(sub, "ls") || !strcmp(sub, "list");
	if (!is_ls && strcmp(sub, "create") && strcmp(sub, "rm") && strcmp(sub, "remove") && strcmp(sub, "inspect")) {
		fprintf(stderr, "imagebuild volume: unknown command `%s` (create, ls, rm, inspect)\n", sub);
		return CLI_EXIT_ERROR;
	}
	if (is_ls ? i != argc : !strcmp(sub, "create") || !strcmp(sub, "inspect") ? i + 1 != argc : i >= argc) {
		fprintf(stderr, "imagebuild volume %s: wrong number of arguments\n", sub);
		return CLI_EXIT_ERROR;
	}
	ib_store *store = cli_store(cli);
	if (!store)
		return 1;
	ib_buf out = IB_BUF_INIT;
	int status = 0;
	if (is_ls) {
		if (ib_volume_list(&out, store) < 0) {
			status = cli_fail("volume ls");
		} else {
			if (!quiet)
				printf("%-10s   %s\n", "DRIVER", "VOLUME NAME");
			for (char *line = out.ptr; line && *line;) {
				char *nl = strchr(line, '\n');
				if (nl)
					*nl = '\0';
				if (quiet)
					printf("%s\n", line);
				else
					printf("%-10s   %s\n", "local", line);
				line = nl ? nl + 1 : NULL;
			}
		}
	} else if (!strcmp(sub, "create")) {
		if (ib_volume_create(store, argv[i]) < 0)
			status = cli_fail("volume create");
		else
			printf("%s\n", argv[i]);
	} else if (!strcmp(sub, "inspect")) {
		if (ib_volume_path(&out, store, argv[i]) < 0)
			status = cli_fail("volume inspect");
		else
			printf("[{\"Driver\": \"local\", \"Name\": \"%s\", \"Mountpoint\": \"%s\"}]\n", argv[i], out.ptr);
	} else {
		for (; i < argc; i++) {
			if (ib_volume_remove(store, argv[i]) < 0)
				status = cli_fail(argv[i]);
			else
				printf("%s\n", argv[i]);
		}
	}
	ib_buf_dispose(&out);
	return status;
}
