/* imagebuild run, ps, rm, commit: containers, as docker users know them. */
#include "common.h"
#include "format.h"
#include "progress.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The options `run` and `exec` share, and those of `run` only. */
typedef struct {
	ib_container_options co;
	ib_container_run_options ro;
	const char **env;
	size_t nenv;
	const char *entry_value;
	const char *entry[2];
	int interactive, tty, rm;
} run_opts;

static void add_env(run_opts *r, const char *val)
{
	char *kv = cli_kv_from_env(val);
	if (kv)
		cli_list_add(&r->env, &r->nenv, kv);
}

static void run_opts_dispose(run_opts *r)
{
	for (size_t i = 0; i < r->nenv; i++)
		free((char *)r->env[i]);
	free(r->env);
}

/*
 * The options of run and exec: exec's table is the first rows of run's
 * (RUN_EXEC_OPTS of them), so one switch serves both.
 */
#define RUN_OPTS_COMMON \
	{ "interactive", 'i', 0, NULL, "Keep STDIN open" }, \
	{ "tty", 't', 0, NULL, "Allocate a pseudo-TTY" }, \
	{ "env", 'e', 1, "K[=V]", "Set an environment variable (K alone: from the environment); repeatable" }, \
	{ "user", 'u', 1, "USER[:GROUP]", "Username or UID (format: <name|uid>[:<group|gid>])" }, \
	{ "workdir", 'w', 1, "DIR", "Working directory inside the container" }, \
	{ "network", 0, 1, "MODE", "Network mode: host or none" }, \
	{ "isolation", 0, 1, "NAME", "Isolation backend (namespaces, oci, chroot)" }
enum { RO_INTERACTIVE, RO_TTY, RO_ENV, RO_USER, RO_WORKDIR, RO_NETWORK, RO_ISOLATION,
       RO_HOSTNAME, RO_ENTRYPOINT, RO_RM, RO_NAME, RO_SNAPSHOTTER };
const cli_option cli_opts_run[] = {
	RUN_OPTS_COMMON,
	{ "hostname", 'h', 1, "NAME", "Container host name" },
	{ "entrypoint", 0, 1, "CMD", "Overwrite the default ENTRYPOINT of the image (\"\": none)" },
	{ "rm", 0, 0, NULL, "Automatically remove the container when it exits" },
	{ "name", 0, 1, "NAME", "Assign a name to the container" },
	{ "snapshotter", 0, 1, "NAME", "Snapshotter of the container (overlay, copy)" },
	{ NULL, 0, 0, NULL, NULL },
};
const cli_option cli_opts_exec[] = {
	RUN_OPTS_COMMON,
	{ NULL, 0, 0, NULL, NULL },
};

/* Parse options up to the first operand; returns its index, or -1 (cli_usage gives the status). */
static int parse_run_opts(ib_cli *cli, run_opts *r, int argc, char **argv, int for_run)
{
	int i = 1, k;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, for_run ? cli_opts_run : cli_opts_exec, &v)) >= 0) {
		switch (k) {
		case RO_INTERACTIVE: r->interactive = 1; break;
		case RO_TTY: r->tty = 1; break;
		case RO_ENV: add_env(r, v); break;
		case RO_USER: r->ro.user = v; break;
		case RO_WORKDIR: r->ro.workdir = v; break;
		case RO_NETWORK:
			if (!strcmp(v, "none")) {
				r->ro.network = IB_NETWORK_NONE;
			} else if (strcmp(v, "host")) {
				fprintf(stderr, "imagebuild %s: --network must be host or none\n", cli->command);
				cli->status = CLI_EXIT_ERROR;
				return -1;
			}
			break;
		case RO_ISOLATION: r->ro.isolation = v; break;
		case RO_HOSTNAME: r->ro.hostname = v; break;
		case RO_ENTRYPOINT: r->entry_value = v; break; /* "" means none */
		case RO_RM: r->rm = 1; break;
		case RO_NAME: r->co.name = v; break;
		case RO_SNAPSHOTTER: r->co.snapshotter = v; break;
		}
	}
	if (k == -2 || i >= argc)
		return -1;
	if (r->entry_value) {
		r->entry[0] = *r->entry_value ? r->entry_value : NULL;
		r->ro.entrypoint = r->entry;
	}
	r->ro.env = r->env;
	r->ro.tty = r->tty;
	r->ro.stdin_fd = r->interactive ? 0 : -1;
	r->ro.stdout_fd = 1;
	r->ro.stderr_fd = r->tty ? 1 : 2;
	return i;
}

int cmd_run(ib_cli *cli, int argc, char **argv)
{
	run_opts r = {IB_CONTAINER_OPTIONS_INIT, IB_CONTAINER_RUN_OPTIONS_INIT, NULL, 0, NULL, {NULL, NULL}, 0, 0, 0};
	int status;
	int i = parse_run_opts(cli, &r, argc, argv, 1);
	if (i < 0) {
		status = cli_usage(cli);
		goto out;
	}
	const char *image = argv[i++];
	if (i < argc)
		r.ro.argv = (const char *const *)argv + i;
	/* what `ps` shows */
	char command[256] = "";
	for (int k = i; k < argc && strlen(command) < sizeof command - 2; k++)
		snprintf(command + strlen(command), sizeof command - strlen(command), "%s%s", k > i ? " " : "", argv[k]);
	/* none: the image's CMD (recorded by create), none at all with --entrypoint (as docker) */
	r.co.command = *command ? command : r.entry_value ? "" : NULL;

	ib_store *store = cli_store(cli);
	if (!store) {
		status = CLI_EXIT_ERROR;
		goto out;
	}
	/* docker run pulls an image it does not have */
	ib_image *img = NULL;
	if (ib_store_image_lookup(&img, store, image) == IB_ENOTFOUND) {
		ib_pull_options po = IB_PULL_OPTIONS_INIT;
		fprintf(stderr, "Unable to find image '%s' locally; pulling\n", image);
		ib_callbacks pcb = IB_CALLBACKS_INIT; /* the pull's progress on stderr, as pull shows it */
		cli_progress *prog = cli_progress_start(CLI_PROGRESS_AUTO, CLI_VIEW_PULL, &pcb);
		po.callbacks = &pcb;
		int prc = ib_pull(NULL, NULL, store, image, &po);
		cli_progress_end(prog, prc < 0);
		if (prc < 0) {
			status = cli_error("run");
			goto out;
		}
	}
	ib_image_free(img);
	ib_container *c = NULL;
	int rc = ib_container_create(&c, store, image, &r.co);
	if (rc < 0) {
		status = cli_error("run");
		goto out;
	}
	ib_exit_status st = {0, 0};
	r.ro.callbacks = cli_cancel_callbacks();
	cli_catch_signals();
	int rrc = ib_container_run(&st, c, &r.ro);
	status = cli_container_status(rrc, &st, "run");
	if (r.rm && ib_container_remove(store, ib_container_id(c)) < 0)
		status = cli_error("run --rm");
	ib_container_free(c);
out:
	run_opts_dispose(&r);
	return status;
}

int cmd_exec(ib_cli *cli, int argc, char **argv)
{
	run_opts r = {IB_CONTAINER_OPTIONS_INIT, IB_CONTAINER_RUN_OPTIONS_INIT, NULL, 0, NULL, {NULL, NULL}, 0, 0, 0};
	int status;
	int i = parse_run_opts(cli, &r, argc, argv, 0);
	if (i < 0 || i + 1 >= argc) {
		status = cli_usage(cli);
		goto out;
	}
	r.ro.argv = (const char *const *)argv + i + 1;
	r.ro.entrypoint = r.entry; /* exec runs the command as given */
	ib_store *store = cli_store(cli);
	ib_container *c = NULL;
	ib_exit_status st = {0, 0};
	r.ro.callbacks = cli_cancel_callbacks();
	cli_catch_signals();
	if (!store)
		status = CLI_EXIT_ERROR;
	else if (ib_container_open(&c, store, argv[i]) < 0)
		status = cli_error("exec");
	else
		status = cli_container_status(ib_container_run(&st, c, &r.ro), &st, "exec");
	ib_container_free(c);
out:
	run_opts_dispose(&r);
	return status;
}

const cli_option cli_opts_ps[] = {
	{ "all", 'a', 0, NULL, "Show all containers (default shows just running)" },
	{ "quiet", 'q', 0, NULL, "Only display container IDs" },
	{ "format", 0, 1, "FORMAT", "Format output: table, table TEMPLATE, json, or a Go template ({{.ID}}...)" },
	{ "no-trunc", 0, 0, NULL, "Don't truncate output" },
	{ NULL, 0, 0, NULL, NULL },
};
enum { PS_ALL, PS_QUIET, PS_FORMAT, PS_NO_TRUNC };

int cmd_ps(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_ps;
	int all = 0, quiet = 0, notrunc = 0, i = 1, k, status = 0;
	const char *v, *format = NULL;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0) {
		switch (k) {
		case PS_ALL: all = 1; break;
		case PS_QUIET: quiet = 1; break;
		case PS_FORMAT: format = v; break;
		case PS_NO_TRUNC: notrunc = 1; break;
		}
	}
	if (k == -2 || i != argc)
		return cli_usage(cli);
	cli_format *fmt = NULL;
	json_t *headers = NULL;
	if (format && !quiet) {
		headers = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Command", "COMMAND",
				    "CreatedAt", "CREATED AT", "ID", "CONTAINER ID", "Image", "IMAGE", "Labels", "LABELS",
				    "LocalVolumes", "LOCAL VOLUMES", "Mounts", "MOUNTS", "Names", "NAMES", "Networks",
				    "NETWORKS", "Ports", "PORTS", "RunningFor", "CREATED", "Size", "SIZE", "State", "STATE",
				    "Status", "STATUS");
		fmt = cli_format_new(format,
				     "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
				     headers);
		if (!fmt) {
			json_decref(headers);
			return CLI_EXIT_ERROR;
		}
	}
	ib_store *store = cli_store(cli);
	ib_container_list *recs = NULL;
	if (!store) {
		status = 1;
		goto out;
	}
	if (ib_store_container_list(&recs, store) < 0) {
		status = cli_fail("ps");
		goto out;
	}
	size_t n = ib_container_list_count(recs);
	if (!quiet && !fmt)
		printf("%-12s   %-20s   %-22s   %-15s   %-18s   %s\n", "CONTAINER ID", "IMAGE", "COMMAND",
		       "CREATED", "STATUS", "NAMES");
	for (size_t r = 0; r < n; r++) {
		const ib_container_record *c = ib_container_list_get(recs, r);
		const char *state = c->state ? c->state : "";
		if (!all && strcmp(state, "running") != 0)
			continue;
		char id[80];
		snprintf(id, sizeof id, notrunc ? "%s" : "%.12s", c->id);
		if (quiet) {
			printf("%s\n", id);
			continue;
		}
		char since[64], cmd[1100];
		cli_human_since(since, sizeof since, c->created);
		if (notrunc)
			snprintf(cmd, sizeof cmd, "\"%.1024s\"", c->command ? c->command : "");
		else
			snprintf(cmd, sizeof cmd, "\"%.18s\"", c->command ? c->command : "");
		if (fmt) {
			char st[64]; /* docker's State: "exited" of "exited (0)" */
			snprintf(st, sizeof st, "%.*s", (int)strcspn(state, " "), state);
			json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Command", cmd,
					      "CreatedAt", c->created ? c->created : "", "ID", id, "Image",
					      c->image_name ? c->image_name : "", "Labels", "", "LocalVolumes", "0", "Mounts",
					      "", "Names", c->name ? c->name : "", "Networks", "", "Ports", "", "RunningFor",
					      since, "Size", "N/A", "State", st, "Status", state);
			int rc = o ? cli_format_row(fmt, o) : -1;
			json_decref(o);
			if (rc < 0) {
				status = 1;
				break;
			}
			continue;
		}
		printf("%-12s   %-20.20s   %-22s   %-15s   %-18s   %s\n", id,
		       c->image_name ? c->image_name : "", cmd, since, state, c->name ? c->name : "");
	}
out:
	if (fmt && cli_format_end(fmt) < 0)
		status = 1;
	json_decref(headers);
	ib_container_list_free(recs);
	return status;
}

const cli_option cli_opts_rm[] = {
	{ "force", 'f', 0, NULL, "Force the removal of a running container" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_rm(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_rm;
	int i = 1, k, status = 0;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0)
		;
	if (k == -2 || i >= argc)
		return cli_usage(cli);
	ib_store *store = cli_store(cli);
	if (!store)
		return 1;
	for (; i < argc; i++) {
		if (ib_container_remove(store, argv[i]) < 0)
			status = cli_fail(argv[i]);
		else
			printf("%s\n", argv[i]);
	}
	return status;
}

const cli_option cli_opts_commit[] = {
	{ "message", 'm', 1, "MESSAGE", "Commit message" },
	{ "author", 'a', 1, "AUTHOR", "Author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")" },
	{ "change", 'c', 1, "INSTRUCTION", "Apply a Dockerfile instruction to the created image; repeatable" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_commit(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_commit;
	ib_commit_options o = IB_COMMIT_OPTIONS_INIT;
	const char **changes = NULL;
	size_t nchanges = 0;
	int i = 1, k, status;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0) {
		if (k == 0)
			o.message = v;
		else if (k == 1)
			o.author = v;
		else
			cli_list_add(&changes, &nchanges, v);
	}
	if (k == -2 || i >= argc || argc - i > 2) {
		free(changes);
		return cli_usage(cli);
	}
	o.changes = changes;
	o.tag = i + 1 < argc ? argv[i + 1] : NULL;
	/* as before the option existed: $SOURCE_DATE_EPOCH sets created and clamps file times */
	if (cli_source_date_epoch_env(&o.use_source_date_epoch, &o.source_date_epoch) < 0) {
		free(changes);
		return CLI_EXIT_ERROR;
	}
	ib_store *store = cli_store(cli);
	ib_container *c = NULL;
	ib_digest id;
	if (!store) {
		status = 1;
	} else if (ib_container_open(&c, store, argv[i]) < 0 || ib_container_commit(&id, c, &o) < 0) {
		status = cli_fail("commit");
	} else {
		char hex[IB_DIGEST_STRLEN];
		ib_digest_fmt(hex, &id);
		printf("%s\n", hex);
		status = 0;
	}
	ib_container_free(c);
	free(changes);
	return status;
}
