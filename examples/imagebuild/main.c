/*
 * imagebuild: a docker-like command line on libimagebuild's public API.
 *
 *   imagebuild [--root DIR] COMMAND [ARG...]
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
	const char *name;
	const char *usage;
	const char *summary;
	int (*run)(ib_cli *cli, int argc, char **argv);
} command;

static const command commands[] = {
#define IB_COMMAND(name, usage, summary) { #name, usage, summary, cmd_##name },
#include "commands.h"
#undef IB_COMMAND
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: imagebuild [--root DIR] COMMAND [ARG...]\n\n"
		   "The store is DIR, else $IMAGEBUILD_ROOT, else /var/lib/imagebuild (root)\n"
		   "or $XDG_DATA_HOME/imagebuild.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
	ib_cli cli = { NULL, NULL, argv[0], NULL, NULL };
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--root") && i + 1 < argc) {
			cli.root = argv[++i];
		} else if (!strncmp(argv[i], "--root=", 7)) {
			cli.root = argv[i] + 7;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "imagebuild: unknown option `%s`\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
		if (strcmp(commands[c].name, argv[i]))
			continue;
		cli.command = commands[c].name;
		cli.usage = commands[c].usage;
		ib_init();
		int rc = commands[c].run(&cli, argc - i, argv + i);
		ib_store_free(cli.store);
		ib_shutdown();
		return rc;
	}
	fprintf(stderr, "imagebuild: unknown command `%s`\n", argv[i]);
	usage(stderr);
	return 2;
}
