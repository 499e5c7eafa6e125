/* imagebuild run, ps, rm, commit: containers, as docker users know them. */
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The value of an option: "--name=x" or "--name x". */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (!strcmp(argv[*i], name) && *i + 1 < argc)
		return argv[++*i];
	return NULL;
}

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

/* Parse options up to the first operand; returns its index, or -1 (usage printed). */
static int parse_run_opts(ib_cli *cli, run_opts *r, int argc, char **argv, int for_run)
{
	int i = 1;
	const char *v;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];
		if (a[1] != '-') {
			/* combined short flags: -it, -i, -t, and -e/-u/-w/-h with a value */
			for (const char *f = a + 1; *f; f++) {
				if (*f == 'i') {
					r->interactive = 1;
				} else if (*f == 't') {
					r->tty = 1;
				} else if ((*f == 'e' || *f == 'u' || *f == 'w' || *f == 'h') && !f[1] && i + 1 < argc) {
					const char *val = argv[++i];
					if (*f == 'e')
						add_env(r, val);
					else if (*f == 'u')
						r->ro.user = val;
					else if (*f == 'h')
						r->ro.hostname = val; /* docker run -h */
					else
						r->ro.workdir = val;
				} else {
					fprintf(stderr, "imagebuild %s: unknown option `-%c`\n", cli->command, *f);
					return -1;
				}
			}
		} else if (!strcmp(a, "--interactive")) {
			r->interactive = 1;
		} else if (!strcmp(a, "--tty")) {
			r->tty = 1;
		} else if ((v = opt_value(argc, argv, &i, "--env"))) {
			add_env(r, v);
		} else if ((v = opt_value(argc, argv, &i, "--user"))) {
			r->ro.user = v;
		} else if ((v = opt_value(argc, argv, &i, "--workdir"))) {
			r->ro.workdir = v;
		} else if ((v = opt_value(argc, argv, &i, "--network"))) {
			if (!strcmp(v, "none")) {
				r->ro.network = IB_NETWORK_NONE;
			} else if (strcmp(v, "host")) {
				fprintf(stderr, "imagebuild %s: --network must be host or none\n", cli->command);
				return -1;
			}
		} else if ((v = opt_value(argc, argv, &i, "--isolation"))) {
			r->ro.isolation = v;
		} else if ((v = opt_value(argc, argv, &i, "--hostname"))) {
			r->ro.hostname = v;
		} else if ((v = opt_value(argc, argv, &i, "--entrypoint"))) {
			r->entry_value = v; /* "" means none */
		} else if (for_run && !strcmp(a, "--rm")) {
			r->rm = 1;
		} else if (for_run && (v = opt_value(argc, argv, &i, "--name"))) {
			r->co.name = v;
		} else if (for_run && (v = opt_value(argc, argv, &i, "--snapshotter"))) {
			r->co.snapshotter = v;
		} else {
			fprintf(stderr, "imagebuild %s: unknown option `%s`\n", cli->command, a);
			cli_usage(cli);
			return -1;
		}
	}
	if (i >= argc) {
		cli_usage(cli);
		return -1;
	}
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

static int exit_status(const ib_exit_status *st)
{
	return st->signal ? 128 + st->signal : st->code;
}

int cmd_run(ib_cli *cli, int argc, char **argv)
{
	run_opts r = {IB_CONTAINER_OPTIONS_INIT, IB_CONTAINER_RUN_OPTIONS_INIT, NULL, 0, NULL, {NULL, NULL}, 0, 0, 0};
	int status = 2;
	int i = parse_run_opts(cli, &r, argc, argv, 1);
	if (i < 0)
		goto out;
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
		status = 1;
		goto out;
	}
	/* docker run pulls an image it does not have */
	ib_image *img = NULL;
	if (ib_store_image_lookup(&img, store, image) == IB_ENOTFOUND) {
		ib_pull_options po = IB_PULL_OPTIONS_INIT;
		fprintf(stderr, "Unable to find image '%s' locally; pulling\n", image);
		if (ib_pull(NULL, NULL, store, image, &po) < 0) {
			status = cli_fail("run");
			goto out;
		}
	}
	ib_image_free(img);
	ib_container *c = NULL;
	int rc = ib_container_create(&c, store, image, &r.co);
	if (rc < 0) {
		status = cli_fail("run");
		goto out;
	}
	ib_exit_status st = {0, 0};
	r.ro.callbacks = cli_cancel_callbacks();
	cli_catch_signals();
	int rrc = ib_container_run(&st, c, &r.ro);
	status = cli_cancel ? cli_cancelled_status(1) : rrc < 0 ? cli_fail("run") : exit_status(&st);
	if (r.rm && ib_container_remove(store, ib_container_id(c)) < 0)
		status = cli_fail("run --rm");
	ib_container_free(c);
out:
	run_opts_dispose(&r);
	return status;
}

int cmd_exec(ib_cli *cli, int argc, char **argv)
{
	run_opts r = {IB_CONTAINER_OPTIONS_INIT, IB_CONTAINER_RUN_OPTIONS_INIT, NULL, 0, NULL, {NULL, NULL}, 0, 0, 0};
	int status = 2;
	int i = parse_run_opts(cli, &r, argc, argv, 0);
	if (i < 0 || i + 1 >= argc) {
		if (i >= 0)
			cli_usage(cli);
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
		status = 1;
	else if (ib_container_open(&c, store, argv[i]) < 0)
		status = cli_fail("exec");
	else if (ib_container_run(&st, c, &r.ro) < 0)
		status = cli_cancel ? cli_cancelled_status(1) : cli_fail("exec");
	else
		status = cli_cancel ? cli_cancelled_status(1) : exit_status(&st);
	ib_container_free(c);
out:
	run_opts_dispose(&r);
	return status;
}

int cmd_ps(ib_cli *cli, int argc, char **argv)
{
	static const cli_option opts[] = {{"all", 'a', 0}, {"quiet", 'q', 0}, {NULL, 0, 0}};
	int all = 0, quiet = 0, i = 1, k;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0)
		k == 0 ? (all = 1) : (quiet = 1);
	if (k == -2 || i != argc)
		return cli_usage(cli);
	ib_store *store = cli_store(cli);
	if (!store)
		return 1;
	ib_container_list *recs = NULL;
	if (ib_store_container_list(&recs, store) < 0)
		return cli_fail("ps");
	size_t n = ib_container_list_count(recs);
	if (!quiet)
		printf("%-12s   %-20s   %-22s   %-15s   %-18s   %s\n", "CONTAINER ID", "IMAGE", "COMMAND",
		       "CREATED", "STATUS", "NAMES");
	for (size_t r = 0; r < n; r++) {
		const ib_container_record *c = ib_container_list_get(recs, r);
		const char *state = c->state ? c->state : "";
		if (!all && strcmp(state, "running") != 0)
			continue;
		if (quiet) {
			printf("%.12s\n", c->id);
			continue;
		}
		char since[64], cmd[64];
		cli_human_since(since, sizeof since, c->created);
		snprintf(cmd, sizeof cmd, "\"%.18s\"", c->command ? c->command : "");
		printf("%.12s   %-20.20s   %-22s   %-15s   %-18s   %s\n", c->id,
		       c->image_name ? c->image_name : "", cmd, since, state, c->name ? c->name : "");
	}
	ib_container_list_free(recs);
	return 0;
}

int cmd_rm(ib_cli *cli, int argc, char **argv)
{
	static const cli_option opts[] = {{"force", 'f', 0}, {NULL, 0, 0}};
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

int cmd_commit(ib_cli *cli, int argc, char **argv)
{
	static const cli_option opts[] = {
		{"message", 'm', 1}, {"author", 'a', 1}, {"change", 'c', 1}, {NULL, 0, 0},
	};
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
		return 2;
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
