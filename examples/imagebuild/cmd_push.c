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

/* The options of the registry commands; parse() applies them by name. */
#define OPT_INSECURE { "insecure", 0, 0, NULL, "Use plain HTTP, or HTTPS without verifying the certificate" }
#define OPT_TLS_CA { "tls-ca", 0, 1, "FILE", "Trust the CA certificates of FILE (PEM) for the registry" }
#define OPT_AUTHFILE { "authfile", 0, 1, "FILE", "Credentials file (containers' auth.json; default $REGISTRY_AUTH_FILE, else the usual search)" }
#define OPT_PROGRESS { "progress", 0, 1, "TYPE", "Progress on stderr: auto, tty, plain, rawjson or quiet (auto: tty on a terminal, else plain)" }
const cli_option cli_opts_push[] = {
	OPT_INSECURE, OPT_TLS_CA, OPT_AUTHFILE,
	{ "compression-format", 0, 1, "FORMAT", "Compress every layer as gzip or zstd (podman's flag; default: gzip, layers that came compressed leave as they are)" },
	{ "compression", 0, 1, "FORMAT", "The same as --compression-format" },
	{ "compression-level", 0, 1, "N", "Compression level of the layers this push compresses: gzip 1-9 (5), zstd 1-22 (3); compresses again instead of reusing a remembered variant" },
	{ "quiet", 'q', 0, NULL, "Suppress verbose output (print the manifest digest)" },
	OPT_PROGRESS,
	{ NULL, 0, 0, NULL, NULL },
};
const cli_option cli_opts_pull[] = {
	OPT_INSECURE, OPT_TLS_CA, OPT_AUTHFILE,
	{ "quiet", 'q', 0, NULL, "Suppress verbose output (print the image name)" },
	OPT_PROGRESS,
	{ "platform", 0, 1, "OS/ARCH", "Pull this platform's image of a multi-platform image" },
	{ NULL, 0, 0, NULL, NULL },
};
const cli_option cli_opts_login[] = {
	{ "username", 'u', 1, "USER", "Username" },
	{ "password", 'p', 1, "PASSWORD", "Password (insecure on the command line: use --password-stdin)" },
	{ "password-stdin", 0, 0, NULL, "Take the password from stdin" },
	OPT_INSECURE, OPT_TLS_CA, OPT_AUTHFILE,
	{ NULL, 0, 0, NULL, NULL },
};
const cli_option cli_opts_logout[] = {
	OPT_AUTHFILE,
	{ NULL, 0, 0, NULL, NULL },
};

typedef struct {
	ib_registry_options reg;
	ib_callbacks cb;
	int quiet, password_stdin;
	const char *compression; /* push */
	int compression_level;   /* push */
	cli_progress_mode progress; /* push, pull: set up by cli_progress_start() */
	const char *platform;       /* pull --platform */
} reg_args;

/* Parse the options of `opts` (the command's table). Returns the first operand or -2. */
static int parse(reg_args *a, ib_cli *cli, int argc, char **argv, const cli_option *opts)
{
	ib_registry_options def = IB_REGISTRY_OPTIONS_INIT;
	ib_callbacks cbdef = IB_CALLBACKS_INIT;
	a->reg = def;
	a->cb = cbdef;
	a->quiet = a->password_stdin = 0;
	a->compression = NULL;
	a->compression_level = 0;
	a->progress = CLI_PROGRESS_AUTO;
	a->platform = NULL;
	int i = 1, k;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0) {
		const char *n = opts[k].long_name;
		if (!strcmp(n, "insecure"))
			a->reg.insecure = 1;
		else if (!strcmp(n, "tls-ca"))
			a->reg.tls_ca_file = v;
		else if (!strcmp(n, "authfile"))
			a->reg.auth_file = v;
		else if (!strcmp(n, "quiet"))
			a->quiet = 1;
		else if (!strcmp(n, "username"))
			a->reg.username = v;
		else if (!strcmp(n, "password"))
			a->reg.password = v;
		else if (!strcmp(n, "password-stdin"))
			a->password_stdin = 1;
		else if (!strcmp(n, "compression-format") || !strcmp(n, "compression")) {
			if (strcmp(v, "gzip") && strcmp(v, "zstd")) {
				fprintf(stderr, "imagebuild %s: unknown compression format `%s` (gzip or zstd)\n", cli->command, v);
				cli->status = CLI_EXIT_ERROR;
				return -2;
			}
			a->compression = v;
		} else if (!strcmp(n, "compression-level")) {
			char *end;
			long l = strtol(v, &end, 10);
			if (!*v || *end || l < 1 || l > 22) {
				fprintf(stderr, "imagebuild %s: --compression-level `%s`: give a number, 1-9 for gzip, 1-22 for zstd\n",
					cli->command, v);
				cli->status = CLI_EXIT_ERROR;
				return -2;
			}
			a->compression_level = (int)l;
		} else if (!strcmp(n, "platform"))
			a->platform = v;
		else if (!strcmp(n, "progress") && cli_progress_parse(cli->command, v, &a->progress) < 0) {
			cli->status = CLI_EXIT_ERROR; /* said: cli_usage() adds nothing */
			return -2;
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
	int i = parse(&a, cli, argc, argv, cli_opts_push);
	if (i == -2 || i >= argc || argc - i > 2)
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	ib_push_options o = IB_PUSH_OPTIONS_INIT;
	o.registry = &a.reg;
	o.callbacks = &a.cb;
	o.compression = a.compression;
	o.compression_level = a.compression_level;
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
	int i = parse(&a, cli, argc, argv, cli_opts_pull);
	if (i == -2 || i + 1 != argc)
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	ib_pull_options o = IB_PULL_OPTIONS_INIT;
	o.registry = &a.reg;
	o.callbacks = &a.cb;
	o.platform = a.platform;
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
	int i = parse(&a, cli, argc, argv, cli_opts_login);
	if (i == -2 || argc - i > 1 || (a.password_stdin && a.reg.password))
		return cli_usage(cli);
	const char *host = i < argc ? argv[i] : "docker.io";
	char *user = NULL, *pass = NULL;
	if (a.password_stdin && !a.reg.username) {
		fprintf(stderr, "imagebuild login: --password-stdin needs --username\n");
		return CLI_EXIT_ERROR;
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
	int i = parse(&a, cli, argc, argv, cli_opts_logout);
	if (i == -2 || argc - i > 1)
		return cli_usage(cli);
	const char *host = i < argc ? argv[i] : "docker.io";
	int rc = ib_registry_logout(host, &a.reg);
	if (rc == IB_ENOTFOUND) {
		printf("Not logged in to %s\n", host);
		return 0;
	}
	if (rc < 0)
		return cli_fail(NULL);
	printf("Removing login credentials for %s\n", host);
	return 0;
}
