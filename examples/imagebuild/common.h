/* What the commands of the `imagebuild` example share. Public API only. */
#ifndef IMAGEBUILD_CLI_COMMON_H
#define IMAGEBUILD_CLI_COMMON_H

#include <imagebuild.h>
#include <stdio.h>

typedef struct {
	const char *root;   /* --root, else $IMAGEBUILD_ROOT, else the library's default */
	ib_store *store;    /* opened on first use */
	const char *argv0;
	const char *command;
	const char *usage;
} ib_cli;

/* Open the store (once). Prints the error and returns NULL on failure. */
ib_store *cli_store(ib_cli *cli);

/* Print "imagebuild: <context>: <last error>" to stderr; returns 1 (the exit status). */
int cli_fail(const char *context);

/* Print the usage of the current command to stderr; returns 2. */
int cli_usage(ib_cli *cli);

/*
 * A tiny option parser: `--name VALUE`, `--name=VALUE`, `-n VALUE` and flags.
 * Returns the option's index in `names` (and *value for those that take one),
 * -1 at the first operand (argv[*i]), -2 on an unknown option (printed).
 */
typedef struct {
	const char *long_name;  /* "format" */
	char short_name;        /* 'o', or 0 */
	int has_value;
} cli_option;
int cli_next_option(ib_cli *cli, int argc, char **argv, int *i, const cli_option *opts, const char **value);

/* Append to a NULL-terminated array (grown with realloc; free() the array, not the items). */
int cli_list_add(const char ***list, size_t *n, const char *item);

/*
 * "NAME=VALUE" for `--build-arg NAME` and `-e NAME`, which take the value
 * from our environment as docker does: a new string (free it), or NULL when
 * NAME is not set there. "NAME=VALUE" given in full is returned as a copy.
 */
char *cli_kv_from_env(const char *arg);
/*
 * SOURCE_DATE_EPOCH as BuildKit and buildx take it: the last --build-arg
 * SOURCE_DATE_EPOCH=... of `args` (`*nargs` of them), else the variable
 * from our environment, which is then added to the build args (as buildx
 * does). `*use` is 1 and `*epoch` its value when set; an empty value is
 * unset. -1 (with a message on stderr) when it is not a number of seconds.
 */
int cli_source_date_epoch(const char ***args, size_t *nargs, int *use, int64_t *epoch);
/* The same from the environment only (commit). */
int cli_source_date_epoch_env(int *use, int64_t *epoch);

/* "3.2MB", as docker prints sizes. */
void cli_human_size(char *out, size_t len, uint64_t bytes);
/* "2 hours ago" from an RFC 3339 time; "N/A" when unknown. */
void cli_human_since(char *out, size_t len, const char *rfc3339);

/*
 * SIGINT and SIGTERM during a build, run or exec: the handler sets
 * cli_cancel (the signal's number), which the library polls and cancels
 * through; the command then exits 128 + the signal, as docker does.
 */
extern volatile int cli_cancel;
void cli_catch_signals(void);
/* 128 + the signal that cancelled the command, or `status` when none did. */
int cli_cancelled_status(int status);

/* Callbacks whose cancel flag is cli_cancel (nothing else). */
const ib_callbacks *cli_cancel_callbacks(void);

#define IB_COMMAND(name, usage, summary) int cmd_##name(ib_cli *cli, int argc, char **argv);
#include "commands.h"
#undef IB_COMMAND

#endif
