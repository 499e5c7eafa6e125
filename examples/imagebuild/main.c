/*
 * imagebuild: a docker-like command line on libimagebuild's public API.
 *
 *   imagebuild [--root DIR] COMMAND [ARG...]
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const cli_command cli_commands[] = {
#define IB_COMMAND(name, flags, usage, summary) { #name, usage, summary, cli_opts_##name, flags, cmd_##name },
#include "commands.h"
#undef IB_COMMAND
};
const size_t cli_ncommands = sizeof cli_commands / sizeof cli_commands[0];

const cli_alias cli_aliases[] = {
	{ "image", "build", "build" },
	{ "image", "ls", "images" },
	{ "image", "rm", "rmi" },
	{ "image", "tag", "tag" },
	{ "image", "history", "history" },
	{ "image", "inspect", "inspect" },
	{ "image", "save", "save" },
	{ "image", "load", "load" },
	{ "image", "push", "push" },
	{ "image", "pull", "pull" },
	{ "image", "prune", "prune" },
	{ "image", "import", "import" },
	{ "container", "run", "run" },
	{ "container", "ls", "ps" },
	{ "container", "rm", "rm" },
	{ "container", "commit", "commit" },
	{ "container", "exec", "exec" },
	{ "builder", "prune", "prune" },
	{ NULL, NULL, NULL },
};

const char *const cli_groups[][2] = {
	{ "image", "Manage images" },
	{ "container", "Manage containers" },
	{ "builder", "Manage builds" },
	{ NULL, NULL },
};

const cli_command *cli_find_command(const char *name)
{
	for (size_t c = 0; c < cli_ncommands; c++)
		if (!strcmp(cli_commands[c].name, name))
			return &cli_commands[c];
	return NULL;
}

/* `imagebuild GROUP` alone, or with --help: its commands. */
static void group_help(FILE *f, const char *group, const char *summary)
{
	fprintf(f, "Usage:  imagebuild %s COMMAND\n\n%s\n\nCommands:\n", group, summary);
	for (const cli_alias *a = cli_aliases; a->group; a++)
		if (!strcmp(a->group, group))
			fprintf(f, "  %-10s %s\n", a->name, cli_find_command(a->command)->summary);
	fprintf(f, "\nRun 'imagebuild %s COMMAND --help' for more information on a command.\n", group);
}

enum { GOPT_ROOT, GOPT_VERSION, GOPT_HELP };
const cli_option cli_global_opts[] = {
	{ "root", 0, 1, "DIR", "The store's directory (default $IMAGEBUILD_ROOT, else the library's default)" },
	{ "version", 'v', 0, NULL, "Print version information and quit" },
	{ "help", 'h', 0, NULL, "Print usage" },
	{ NULL, 0, 0, NULL, NULL },
};

int main(int argc, char **argv)
{
	ib_cli cli = { NULL, NULL, argv[0], NULL, NULL, NULL, -1 };
	int i = 1, k;
	/* into a pipe or a file, a line at a time (unbuffered, a progress line was three writes, each waking the reader) */
	static char errbuf[4096];
	if (!isatty(STDERR_FILENO))
		setvbuf(stderr, errbuf, _IOLBF, sizeof errbuf);
	if (argc > 1 && !strcmp(argv[1], "__gen"))
		return cli_gen(argc - 1, argv + 1);
	const char *v = NULL;
	while ((k = cli_next_option(&cli, argc, argv, &i, cli_global_opts, &v)) >= 0) {
		switch (k) {
		case GOPT_ROOT: cli.root = v; break;
		case GOPT_VERSION:
			printf("imagebuild version %s (libimagebuild %s)\n", IB_VERSION, ib_version_string());
			return 0;
		case GOPT_HELP:
			cli_help(stdout, NULL);
			return 0;
		}
	}
	if (k == -2)
		return cli.status;
	if (i >= argc) {
		cli_help(stderr, NULL);
		return CLI_EXIT_ERROR;
	}
	const cli_command *cmd = cli_find_command(argv[i]);
	char alias[64];
	for (size_t g = 0; !cmd && cli_groups[g][0]; g++) {
		if (strcmp(argv[i], cli_groups[g][0]))
			continue;
		const char *name = i + 1 < argc ? argv[i + 1] : NULL;
		if (!name || !strcmp(name, "--help") || !strcmp(name, "-h")) {
			group_help(name ? stdout : stderr, cli_groups[g][0], cli_groups[g][1]);
			return name ? 0 : CLI_EXIT_ERROR;
		}
		for (const cli_alias *a = cli_aliases; a->group; a++) {
			if (!strcmp(a->group, argv[i]) && !strcmp(a->name, name)) {
				cmd = cli_find_command(a->command);
				snprintf(alias, sizeof alias, "%s %s", a->group, a->name);
				i++;
				break;
			}
		}
		if (!cmd) {
			fprintf(stderr, "imagebuild: '%s %s' is not an imagebuild command.\nSee 'imagebuild %s --help'.\n",
				argv[i], name, argv[i]);
			return CLI_EXIT_ERROR;
		}
		cli.command = alias; /* in messages: imagebuild image ls: ... */
	}
	if (cmd) {
		cli.cmd = cmd;
		if (!cli.command)
			cli.command = cmd->name;
		cli.usage = cmd->usage;
		ib_init();
		int rc = cmd->run(&cli, argc - i, argv + i);
		ib_store_free(cli.store);
		ib_shutdown();
		return rc;
	}
	fprintf(stderr, "imagebuild: '%s' is not an imagebuild command.\nSee 'imagebuild --help'.\n", argv[i]);
	return CLI_EXIT_ERROR;
}
