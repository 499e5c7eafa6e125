/*
 * imagebuild: a docker-like command line on libimagebuild's public API.
 *
 *   imagebuild [--root DIR] COMMAND [ARG...]
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

const cli_command cli_commands[] = {
#define IB_COMMAND(name, flags, usage, summary) { #name, usage, summary, cli_opts_##name, flags, cmd_##name },
#include "commands.h"
#undef IB_COMMAND
};
const size_t cli_ncommands = sizeof cli_commands / sizeof cli_commands[0];

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
	for (size_t c = 0; c < cli_ncommands; c++) {
		if (strcmp(cli_commands[c].name, argv[i]))
			continue;
		cli.cmd = &cli_commands[c];
		cli.command = cli_commands[c].name;
		cli.usage = cli_commands[c].usage;
		ib_init();
		int rc = cli_commands[c].run(&cli, argc - i, argv + i);
		ib_store_free(cli.store);
		ib_shutdown();
		return rc;
	}
	fprintf(stderr, "imagebuild: '%s' is not an imagebuild command.\nSee 'imagebuild --help'.\n", argv[i]);
	return CLI_EXIT_ERROR;
}
