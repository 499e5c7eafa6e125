/* imagebuild run, ps, rm, commit: containers, as docker users know them. */
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int push(const char ***list, size_t *n, const char *item)
{
	const char **l = realloc(*list, (*n + 2) * sizeof *l);
	if (!l)
		return -1;
	l[(*n)++] = item;
	l[*n] = NULL;
	*list = l;
	return 0;
}

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

int cmd_run(ib_cli *cli, int argc, char **argv)
{
	ib_container_options co = IB_CONTAINER_OPTIONS_INIT;
	ib_container_run_options ro = IB_CONTAINER_RUN_OPTIONS_INIT;
	const char **env = NULL;
	const char *entry_value = NULL, *entry[2] = {NULL, NULL};
	size_t nenv = 0;
	int interactive = 0, tty = 0, rm = 0, status = 2, i = 1;
	const char *v;

	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];
		if (a[1] != '-') {
			/* combined short flags: -it, -i, -t, and -e/-u/-w with a value */
			for (const char *f = a + 1; *f; f++) {
				if (*f == 'i') {
					interactive = 1;
				} else if (*f == 't') {
					tty = 1;
				} else if ((*f == 'e' || *f == 'u' || *f == 'w') && !f[1] && i + 1 < argc) {
					const char *val = argv[++i];
					if (*f == 'e') {
						if (strchr(val, '='))
							push(&env, &nenv, val);
						else if (getenv(val)) {
							char *kv = malloc(strlen(val) + strlen(getenv(val)) + 2);
							sprintf(kv, "%s=%s", val, getenv(val));
							push(&env, &nenv, kv);
						}
					} else if (*f == 'u') {
						ro.user = val;
					} else {
						ro.workdir = val;
					}
					break;
				} else {
					fprintf(stderr, "imagebuild run: unknown option `-%c`\n", *f);
					goto out;
				}
			}
		} else if (!strcmp(a, "--rm")) {
			rm = 1;
		} else if (!strcmp(a, "--interactive")) {
			interactive = 1;
		} else if (!strcmp(a, "--tty")) {
			tty = 1;
		} else if ((v = opt_value(argc, argv, &i, "--name"))) {
			co.name = v;
		} else if ((v = opt_value(argc, argv, &i, "--env"))) {
			push(&env, &nenv, v);
		} else if ((v = opt_value(argc, argv, &i, "--user"))) {
			ro.user = v;
		} else if ((v = opt_value(argc, argv, &i, "--workdir"))) {
			ro.workdir = v;
		} else if ((v = opt_value(argc, argv, &i, "--network"))) {
			if (!strcmp(v, "none"))
				ro.network = IB_NETWORK_NONE;
			else if (strcmp(v, "host")) {
				fprintf(stderr, "imagebuild run: --network must be host or none\n");
				goto out;
			}
		} else if ((v = opt_value(argc, argv, &i, "--isolation"))) {
			ro.isolation = v;
		} else if ((v = opt_value(argc, argv, &i, "--snapshotter"))) {
			co.snapshotter = v;
		} else if ((v = opt_value(argc, argv, &i, "--hostname"))) {
			ro.hostname = v;
		} else if ((v = opt_value(argc, argv, &i, "--entrypoint"))) {
			entry_value = v; /* "" means none */
		} else {
			fprintf(stderr, "imagebuild run: unknown option `%s`\n", a);
			status = cli_usage(cli);
			goto out;
		}
	}
	if (i >= argc) {
		status = cli_usage(cli);
		goto out;
	}
	const char *image = argv[i++];
	if (entry_value) {
		entry[0] = *entry_value ? entry_value : NULL;
		ro.entrypoint = entry;
	}
	if (i < argc)
		ro.argv = (const char *const *)argv + i;
	ro.env = env;
	ro.tty = tty;
	ro.stdin_fd = interactive ? 0 : -1;
	ro.stdout_fd = 1;
	ro.stderr_fd = tty ? 1 : 2;
	/* what `ps` shows */
	char command[256] = "";
	for (int k = i; k < argc && strlen(command) < sizeof command - 2; k++)
		snprintf(command + strlen(command), sizeof command - strlen(command), "%s%s", k > i ? " " : "", argv[k]);
	co.command = *command ? command : NULL;

	ib_store *store = cli_store(cli);
	if (!store) {
		status = 1;
		goto out;
	}
	ib_container *c = NULL;
	if (ib_container_create(&c, store, image, &co) < 0) {
		status = cli_fail("run");
		goto out;
	}
	ib_exit_status st = {0, 0};
	int rc = ib_container_run(&st, c, &ro);
	if (rc < 0)
		status = cli_fail("run");
	else
		status = st.signal ? 128 + st.signal : st.code;
	if (rm && ib_container_remove(store, ib_container_id(c)) < 0)
		status = cli_fail("run --rm");
	ib_container_free(c);
out:
	free(env);
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
	ib_container_record **recs = NULL;
	size_t n = 0;
	if (ib_store_container_list(&recs, &n, store) < 0)
		return cli_fail("ps");
	if (!quiet)
		printf("%-12s   %-20s   %-22s   %-15s   %-18s   %s\n", "CONTAINER ID", "IMAGE", "COMMAND",
		       "CREATED", "STATUS", "NAMES");
	for (size_t r = 0; r < n; r++) {
		const ib_container_record *c = recs[r];
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
	ib_container_record_list_free(recs, n);
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
			push(&changes, &nchanges, v);
	}
	if (k == -2 || i >= argc || argc - i > 2) {
		free(changes);
		return cli_usage(cli);
	}
	o.changes = changes;
	o.tag = i + 1 < argc ? argv[i + 1] : NULL;
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
