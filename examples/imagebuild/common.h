/* What the commands of the `imagebuild` example share. Public API only. */
#ifndef IMAGEBUILD_CLI_COMMON_H
#define IMAGEBUILD_CLI_COMMON_H

#include <imagebuild.h>
#include <stdio.h>

/*
 * One row per option of a command: the single source of its parsing
 * (cli_next_option, getopt_long), its --help text, its man page and its
 * shell completion. A table ends with a row whose long_name is NULL.
 */
typedef struct {
	const char *long_name;  /* "tag": --tag */
	char short_name;        /* 't': -t, or 0 */
	int has_value;          /* 1: takes a value (-tNAME, -t NAME, --tag=NAME, --tag NAME) */
	const char *value_name; /* "NAME", as help shows the value; NULL for flags */
	const char *help;       /* one line, as docker's --help has it */
	int default_true;       /* a flag that is on unless =false: its =false (as the last
				   occurrence) is refused, for we implement only the default */
} cli_option;

typedef struct ib_cli ib_cli;

/* A command of commands.h, as main, --help, the man pages and completion see it. */
typedef struct {
	const char *name;       /* "build" */
	const char *usage;      /* the operands after "imagebuild build [OPTIONS]" */
	const char *summary;    /* one line */
	const cli_option *opts; /* cli_opts_<name> */
	unsigned int flags;     /* CLI_* below */
	int (*run)(ib_cli *cli, int argc, char **argv);
} cli_command;

/* Options stop at the first operand (run, exec: the rest is the container's command). */
#define CLI_NO_INTERSPERSE 1u

struct ib_cli {
	const char *root;   /* --root, else $IMAGEBUILD_ROOT, else the library's default */
	ib_store *store;    /* opened on first use */
	const char *argv0;
	const char *command;
	const char *usage;
	const cli_command *cmd;
	/*
	 * -1, else the exit status decided while parsing: 0 after --help, 125
	 * after a bad option (both printed). cli_usage() then returns it.
	 */
	int status;
};

/* Every command, in commands.h's order; cli_ncommands of them. */
extern const cli_command cli_commands[];
extern const size_t cli_ncommands;
/*
 * docker's management commands: `imagebuild GROUP NAME` runs COMMAND
 * (`image ls` is `images`). The table ends with a NULL group.
 */
typedef struct {
	const char *group;   /* "image" */
	const char *name;    /* "ls" */
	const char *command; /* "images" */
} cli_alias;
extern const cli_alias cli_aliases[];
/* The groups of cli_aliases and their summaries, ending with NULL. */
extern const char *const cli_groups[][2];
/* The command called `name` (NULL: none). */
const cli_command *cli_find_command(const char *name);

/*
 * `imagebuild __gen man DIR|bash|zsh`: the man pages (written into DIR),
 * bash or zsh completion (on stdout), all from the command and option
 * tables. Returns the exit status.
 */
int cli_gen(int argc, char **argv);

/* The options before the command (--root, --version...). */
extern const cli_option cli_global_opts[];
/* The exit status of the tool's own errors (bad flags, store errors), as docker's. */
#define CLI_EXIT_ERROR 125

/* Open the store (once). Prints the error and returns NULL on failure. */
ib_store *cli_store(ib_cli *cli);

/* Print "imagebuild: <context>: <last error>" to stderr; returns 1 (the exit status). */
int cli_fail(const char *context);

/* The same, returning 125: run and exec's own errors, as docker run's. */
int cli_error(const char *context);

/*
 * The exit status of run and exec, as docker's: the container's code (128 +
 * its signal), 126 when the command cannot be executed, 127 when it is not
 * found, 125 for our own errors (printed), 128 + our signal when cancelled.
 * `rc` is what ib_container_run returned.
 */
int cli_container_status(int rc, const ib_exit_status *st, const char *context);

/*
 * Wrong operands: print the command's usage line and the --help hint to
 * stderr, return 125. After --help or a bad option (cli->status set while
 * parsing) it prints nothing and returns that status (0 or 125).
 */
int cli_usage(ib_cli *cli);

/*
 * getopt_long over `opts` (the command's table): -tNAME, -t NAME,
 * --tag=NAME, --tag NAME, clustered flags (-it), `--`; options and operands
 * may mix unless the command has CLI_NO_INTERSPERSE. Returns the option's
 * index in `opts` (*value set for those taking one); -1 when the options
 * end, the operands then being argv[*i..argc-1] (reordered after the
 * options); -2 after --help/-h (printed to stdout, cli->status 0) or a bad
 * option (one line and a hint on stderr, cli->status 125). Call it until
 * it returns a negative value.
 */
int cli_next_option(ib_cli *cli, int argc, char **argv, int *i, const cli_option *opts, const char **value);

/* The help of a command (NULL: of imagebuild itself), as --help prints it. */
void cli_help(FILE *f, const cli_command *cmd);

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

#define IB_COMMAND(name, flags, usage, summary) \
	int cmd_##name(ib_cli *cli, int argc, char **argv); \
	extern const cli_option cli_opts_##name[];
#include "commands.h"
#undef IB_COMMAND

#endif
