/* Registries: push, pull, login, logout. */
#include "common.h"
#include "progress.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void log_line(ib_log_level level, const char *line, void *payload)
{
	(void)payload;
	if (level <= IB_LOG_WARNING)
		fprintf(stderr, "imagebuild: %s\n", line);
}

/*
 * The options every registry command takes; returns the option index like
 * cli_next_option, having applied the shared ones (which come back as -3).
 */
enum { OPT_INSECURE, OPT_TLS_CA, OPT_QUIET, OPT_USER, OPT_PASSWORD, OPT_PASSWORD_STDIN };
static const cli_option reg_opts[] = { { "insecure", 0, 0 },	 { "tls-ca", 0, 1 },
				       { "quiet", 'q', 0 },	 { "username", 'u', 1 },
				       { "password", 'p', 1 },	 { "password-stdin", 0, 0 },
				       { NULL, 0, 0 } };

typedef struct {
	ib_registry_options reg;
	ib_callbacks cb;
	int quiet, password_stdin;
	cli_progress_mode progress; /* push, pull: set up by cli_progress_start() */
} reg_args;

/* Parse options; `allowed` is a bit set of the OPT_* this command takes. Returns the first operand or -2. */
static int parse(reg_args *a, ib_cli *cli, int argc, char **argv, unsigned int allowed)
{
	ib_registry_options def = IB_REGISTRY_OPTIONS_INIT;
	ib_callbacks cbdef = IB_CALLBACKS_INIT;
	a->reg = def;
	a->cb = cbdef;
	a->quiet = a->password_stdin = 0;
	a->progress = CLI_PROGRESS_AUTO;
	int i = 1, k;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, reg_opts, &v)) >= 0) {
		if (!(allowed & (1u << k))) {
			fprintf(stderr, "imagebuild %s: unknown option `%s`\n", cli->command, argv[i - 1]);
			return -2;
		}
		switch (k) {
		case OPT_INSECURE: a->reg.insecure = 1; break;
		case OPT_TLS_CA: a->reg.tls_ca_file = v; break;
		case OPT_QUIET: a->quiet = 1; break;
		case OPT_USER: a->reg.username = v; break;
		case OPT_PASSWORD: a->reg.password = v; break;
		case OPT_PASSWORD_STDIN: a->password_stdin = 1; break;
		}
	}
	if (k == -2)
		return -2;
	if (a->quiet)
		a->progress = CLI_PROGRESS_QUIET;
	a->cb.log = log_line;
	a->cb.cancel = &cli_cancel; /* SIGINT/SIGTERM, once cli_catch_signals() ran */
	return i;
}

int cmd_push(ib_cli *cli, int argc, char **argv)
{
	reg_args a;
	int i = parse(&a, cli, argc, argv, 1u << OPT_INSECURE | 1u << OPT_TLS_CA | 1u << OPT_QUIET);
	if (i == -2)
		return 2;
	if (i >= argc || argc - i > 2)
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	ib_push_options o = IB_PUSH_OPTIONS_INIT;
	o.registry = &a.reg;
	o.callbacks = &a.cb;
	const char *dest = i + 1 < argc ? argv[i + 1] : argv[i];
	ib_digest md;
	cli_catch_signals();
	cli_progress *prog = cli_progress_start(a.progress, CLI_VIEW_PUSH, &a.cb);
	if (ib_push(&md, s, argv[i], dest, &o) < 0) {
		cli_progress_end(prog, 1);
		return cli_cancel ? cli_cancelled_status(1) : cli_fail(NULL);
	}
	cli_progress_end(prog, 0);
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, &md);
	ib_reference *ref = NULL;
	char tag[256] = "latest";
	if (ib_reference_parse(&ref, dest) == 0 && ib_reference_tag(ref))
		snprintf(tag, sizeof tag, "%s", ib_reference_tag(ref));
	ib_reference_free(ref);
	if (a.progress == CLI_PROGRESS_QUIET)
		printf("%s\n", ds);
	else
		printf("%s: digest: %s\n", tag, ds);
	return 0;
}

int cmd_pull(ib_cli *cli, int argc, char **argv)
{
	reg_args a;
	int i = parse(&a, cli, argc, argv, 1u << OPT_INSECURE | 1u << OPT_TLS_CA | 1u << OPT_QUIET);
	if (i == -2)
		return 2;
	if (i + 1 != argc)
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	ib_pull_options o = IB_PULL_OPTIONS_INIT;
	o.registry = &a.reg;
	o.callbacks = &a.cb;
	ib_digest id, md;
	cli_catch_signals();
	cli_progress *prog = cli_progress_start(a.progress, CLI_VIEW_PULL, &a.cb);
	if (ib_pull(&id, &md, s, argv[i], &o) < 0) {
		cli_progress_end(prog, 1);
		return cli_cancel ? cli_cancelled_status(1) : cli_fail(NULL);
	}
	cli_progress_end(prog, 0);
	char ids[IB_DIGEST_STRLEN], mds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ids, &id);
	ib_digest_fmt(mds, &md);
	ib_buf name = IB_BUF_INIT;
	ib_reference_normalize(&name, argv[i]);
	if (a.progress == CLI_PROGRESS_QUIET) {
		printf("%s\n", name.ptr ? name.ptr : argv[i]);
	} else {
		printf("Digest: %s\n", mds);
		printf("Status: Downloaded image %s for %s\n", ids, name.ptr ? name.ptr : argv[i]);
		printf("%s\n", name.ptr ? name.ptr : argv[i]);
	}
	ib_buf_dispose(&name);
	return 0;
}

/* A line from stdin without its newline; NULL at EOF. */
static char *read_line(const char *prompt)
{
	if (prompt && isatty(0)) {
		fputs(prompt, stderr);
		fflush(stderr);
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = 0;
	return line;
}

int cmd_login(ib_cli *cli, int argc, char **argv)
{
	reg_args a;
	int i = parse(&a, cli, argc, argv,
		      1u << OPT_INSECURE | 1u << OPT_TLS_CA | 1u << OPT_USER | 1u << OPT_PASSWORD | 1u << OPT_PASSWORD_STDIN);
	if (i == -2)
		return 2;
	if (argc - i > 1 || (a.password_stdin && a.reg.password))
		return cli_usage(cli);
	const char *host = i < argc ? argv[i] : "docker.io";
	char *user = NULL, *pass = NULL;
	if (a.password_stdin && !a.reg.username) {
		fprintf(stderr, "imagebuild login: --password-stdin needs --username\n");
		return 2;
	}
	if (!a.reg.username && !(a.reg.username = user = read_line("Username: "))) {
		fprintf(stderr, "imagebuild login: no username\n");
		return 1;
	}
	if (!a.reg.password) {
		if (a.password_stdin || !isatty(0)) {
			pass = read_line(NULL);
		} else {
			const char *p = getpass("Password: ");
			pass = p ? strdup(p) : NULL;
		}
		a.reg.password = pass ? pass : "";
	} else {
		fprintf(stderr, "WARNING! Using --password via the command line is insecure. Use --password-stdin.\n");
	}
	int rc = ib_registry_login(host, &a.reg);
	free(user);
	free(pass);
	if (rc < 0)
		return cli_fail(NULL);
	printf("Login Succeeded\n");
	return 0;
}

int cmd_logout(ib_cli *cli, int argc, char **argv)
{
	reg_args a;
	int i = parse(&a, cli, argc, argv, 0);
	if (i == -2)
		return 2;
	if (argc - i > 1)
		return cli_usage(cli);
	const char *host = i < argc ? argv[i] : "docker.io";
	int rc = ib_registry_logout(host, NULL);
	if (rc == IB_ENOTFOUND) {
		printf("Not logged in to %s\n", host);
		return 0;
	}
	if (rc < 0)
		return cli_fail(NULL);
	printf("Removing login credentials for %s\n", host);
	return 0;
}
