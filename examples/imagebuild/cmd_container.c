/* imagebuild run, ps, rm, commit: containers, as docker users know them. */
#include "common.h"
#include "format.h"
#include "progress.h"

#include <errno.h>
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
	/* run only: -v, --mount, --tmpfs, --ulimit, --env-file, --cap-add/--cap-drop, -d */
	ib_mount *mounts;
	size_t nmounts;
	ib_rlimit *rlimits;
	size_t nrlimits;
	const char **env_files;
	size_t nenv_files;
	const char **cap_add, **cap_drop;
	size_t ncap_add, ncap_drop;
	const char **owned; /* strings the mounts and limits point into */
	size_t nowned;
	int detach;
} run_opts;

#define RUN_OPTS_INIT { IB_CONTAINER_OPTIONS_INIT, IB_CONTAINER_RUN_OPTIONS_INIT, NULL, 0, NULL, {NULL, NULL}, \
		0, 0, 0, NULL, 0, NULL, 0, NULL, 0, NULL, NULL, 0, 0, NULL, 0, 0 }

static void add_env(run_opts *r, const char *val);

static char *own(run_opts *r, const char *s, size_t len)
{
	char *copy = strndup(s, len);
	if (copy)
		cli_list_add(&r->owned, &r->nowned, copy);
	return copy;
}

static int run_flag_error(ib_cli *cli, const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "imagebuild %s: ", cli->command);
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	cli->status = CLI_EXIT_ERROR;
	return -1;
}

static ib_mount *new_mount(run_opts *r)
{
	ib_mount *grown = realloc(r->mounts, (r->nmounts + 1) * sizeof *grown);
	if (!grown)
		return NULL;
	r->mounts = grown;
	ib_mount *m = &r->mounts[r->nmounts++];
	memset(m, 0, sizeof *m);
	return m;
}

/* A named volume's name as docker takes it in -v and --mount: not a path. */
static int is_volume_name(const char *s)
{
	return *s && *s != '/' && *s != '.' && !strchr(s, '/');
}

/* -v SRC:DST[:OPTS]: SRC an absolute host path (a bind) or a volume name; OPTS ro, rw, nocopy */
static int parse_volume(ib_cli *cli, run_opts *r, const char *spec)
{
	const char *c1 = strchr(spec, ':');
	if (!c1)
		return run_flag_error(cli, "-v %s: anonymous volumes are not supported; give SOURCE:%s", spec, spec);
	const char *dst = c1 + 1, *c2 = strchr(dst, ':');
	size_t dlen = c2 ? (size_t)(c2 - dst) : strlen(dst);
	ib_mount *m = new_mount(r);
	if (!m)
		return run_flag_error(cli, "%s%s: out of memory", "", "");
	m->source = own(r, spec, (size_t)(c1 - spec));
	m->target = own(r, dst, dlen);
	if (!m->source || !m->target)
		return run_flag_error(cli, "%s%s: out of memory", "", "");
	if (m->target[0] != '/')
		return run_flag_error(cli, "-v %s: the destination `%s` must be an absolute path", spec, m->target);
	if (m->source[0] == '/') {
		m->type = IB_MOUNT_BIND;
	} else if (is_volume_name(m->source)) {
		m->type = IB_MOUNT_VOLUME;
	} else {
		return run_flag_error(cli, "-v %s: the source `%s` must be an absolute host path or a volume name",
				      spec, m->source);
	}
	for (const char *o = c2 ? c2 + 1 : ""; *o;) {
		const char *end = strchr(o, ',');
		size_t len = end ? (size_t)(end - o) : strlen(o);
		if (len == 2 && !strncmp(o, "ro", 2)) {
			m->readonly = 1;
		} else if (len == 2 && !strncmp(o, "rw", 2)) {
			m->readonly = 0;
		} else if (len == 6 && !strncmp(o, "nocopy", 6) && m->type == IB_MOUNT_VOLUME) {
			m->options = "nocopy";
		} else {
			char *bad = own(r, o, len);
			return run_flag_error(cli, "-v %s: option `%s` is not supported (only ro, rw, and nocopy for a volume)", spec,
					      bad ? bad : "");
		}
		o = end ? end + 1 : o + len;
	}
	return 0;
}

/* A tmpfs's options, docker's defaults first (noexec, nosuid, nodev: the later words win). */
static const char *tmpfs_opts(run_opts *r, const char *given)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "noexec%s%s", given && *given ? "," : "", given ? given : "");
	return own(r, buf, strlen(buf));
}

/* --tmpfs DST[:OPTS] */
static int parse_tmpfs(ib_cli *cli, run_opts *r, const char *spec)
{
	const char *colon = strchr(spec, ':');
	ib_mount *m = new_mount(r);
	if (!m)
		return run_flag_error(cli, "%s%s: out of memory", "", "");
	m->type = IB_MOUNT_TMPFS;
	m->target = own(r, spec, colon ? (size_t)(colon - spec) : strlen(spec));
	m->options = tmpfs_opts(r, colon ? colon + 1 : NULL);
	if (!m->target || m->target[0] != '/')
		return run_flag_error(cli, "--tmpfs %s: the destination must be an absolute path%s", spec, "");
	return 0;
}

static int is_true(const char *v)
{
	return !v || !strcmp(v, "1") || !strcmp(v, "true");
}

/* --mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,tmpfs-size=N][,tmpfs-mode=M] */
static int parse_mount(ib_cli *cli, run_opts *r, const char *spec)
{
	char *copy = own(r, spec, strlen(spec));
	if (!copy)
		return run_flag_error(cli, "%s%s: out of memory", "", "");
	const char *type = "volume", *src = NULL, *dst = NULL;
	int ro = 0, nocopy = 0;
	char tmpfs[256] = "";
	char *save = NULL;
	for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		const char *v = eq ? eq + 1 : NULL;
		if (eq)
			*eq = '\0';
		if (!strcmp(kv, "type") && v) {
			type = v;
		} else if ((!strcmp(kv, "source") || !strcmp(kv, "src")) && v) {
			src = v;
		} else if ((!strcmp(kv, "target") || !strcmp(kv, "destination") || !strcmp(kv, "dst")) && v) {
			dst = v;
		} else if (!strcmp(kv, "readonly") || !strcmp(kv, "ro")) {
			if (v && strcmp(v, "1") && strcmp(v, "0") && strcmp(v, "true") && strcmp(v, "false"))
				return run_flag_error(cli, "--mount %s: invalid readonly value `%s`", spec, v);
			ro = is_true(v);
		} else if (!strcmp(kv, "volume-nocopy")) {
			if (v && strcmp(v, "1") && strcmp(v, "0") && strcmp(v, "true") && strcmp(v, "false"))
				return run_flag_error(cli, "--mount %s: invalid volume-nocopy value `%s`", spec, v);
			nocopy = is_true(v);
		} else if ((!strcmp(kv, "tmpfs-size") || !strcmp(kv, "tmpfs-mode")) && v) {
			snprintf(tmpfs + strlen(tmpfs), sizeof tmpfs - strlen(tmpfs), "%s%s=%s", *tmpfs ? "," : "",
				 kv[6] == 's' ? "size" : "mode", v);
		} else {
			return run_flag_error(cli, "--mount %s: `%s` is not supported", spec, kv);
		}
	}
	if (!dst || dst[0] != '/')
		return run_flag_error(cli, "--mount %s: an absolute target is required%s", spec, "");
	ib_mount *m = new_mount(r);
	if (!m)
		return run_flag_error(cli, "%s%s: out of memory", "", "");
	m->target = dst;
	m->readonly = ro;
	if (!strcmp(type, "bind")) {
		if (!src || src[0] != '/')
			return run_flag_error(cli, "--mount %s: a bind needs an absolute source%s", spec, "");
		m->type = IB_MOUNT_BIND;
		m->source = src;
	} else if (!strcmp(type, "volume")) {
		if (!src)
			return run_flag_error(cli, "--mount %s: anonymous volumes are not supported; give source=NAME%s",
					      spec, "");
		if (!is_volume_name(src))
			return run_flag_error(cli, "--mount %s: invalid volume name `%s`", spec, src);
		m->type = IB_MOUNT_VOLUME;
		m->source = src;
		m->options = nocopy ? "nocopy" : NULL;
	} else if (!strcmp(type, "tmpfs")) {
		if (src)
			return run_flag_error(cli, "--mount %s: a tmpfs takes no source%s", spec, "");
		m->type = IB_MOUNT_TMPFS;
		m->options = tmpfs_opts(r, tmpfs);
	} else {
		return run_flag_error(cli, "--mount %s: type `%s` is not supported (bind, volume, tmpfs)", spec, type);
	}
	if (*tmpfs && m->type != IB_MOUNT_TMPFS)
		return run_flag_error(cli, "--mount %s: tmpfs options on a mount of type `%s`", spec, type);
	if (nocopy && m->type != IB_MOUNT_VOLUME)
		return run_flag_error(cli, "--mount %s: volume-nocopy on a mount of type `%s`", spec, type);
	return 0;
}

/* A --ulimit value: a number, or -1 for unlimited. */
static int ulimit_value(uint64_t *out, const char *s, size_t len)
{
	char buf[32];
	if (!len || len >= sizeof buf)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!strcmp(buf, "-1")) {
		*out = IB_RLIM_INFINITY;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (*end || errno || buf[0] == '-')
		return -1;
	*out = v;
	return 0;
}

/* --ulimit NAME=SOFT[:HARD] */
static int parse_ulimit(ib_cli *cli, run_opts *r, const char *spec)
{
	const char *eq = strchr(spec, '=');
	if (!eq)
		return run_flag_error(cli, "--ulimit %s: expected NAME=SOFT[:HARD]%s", spec, "");
	ib_rlimit *grown = realloc(r->rlimits, (r->nrlimits + 1) * sizeof *grown);
	if (!grown)
		return run_flag_error(cli, "%s%s: out of memory", "", "");
	r->rlimits = grown;
	ib_rlimit *l = &r->rlimits[r->nrlimits++];
	l->name = own(r, spec, (size_t)(eq - spec));
	const char *colon = strchr(eq + 1, ':');
	size_t slen = colon ? (size_t)(colon - eq - 1) : strlen(eq + 1);
	if (!l->name || ulimit_value(&l->soft, eq + 1, slen) < 0 ||
	    (colon ? ulimit_value(&l->hard, colon + 1, strlen(colon + 1)) : ulimit_value(&l->hard, eq + 1, slen)) < 0)
		return run_flag_error(cli, "--ulimit %s: the limits must be numbers (-1: unlimited)%s", spec, "");
	if (l->soft != IB_RLIM_INFINITY && (l->hard == IB_RLIM_INFINITY ? 0 : l->soft > l->hard))
		return run_flag_error(cli, "--ulimit %s: the soft limit is above the hard one%s", spec, "");
	if (l->soft == IB_RLIM_INFINITY && l->hard != IB_RLIM_INFINITY)
		return run_flag_error(cli, "--ulimit %s: the soft limit is above the hard one%s", spec, "");
	return 0;
}

/* --cap-add/--cap-drop CAP[,CAP...] */
static int add_caps(run_opts *r, const char ***list, size_t *n, const char *v)
{
	for (const char *p = v; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len) {
			char *one = own(r, p, len);
			if (!one || cli_list_add(list, n, one) < 0)
				return -1;
		}
		p = end ? end + 1 : p + len;
	}
	return 0;
}

/* --env-file FILE as docker reads it: NAME=VALUE lines, NAME alone from our environment, # comments. */
static int read_env_file(ib_cli *cli, run_opts *r, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "imagebuild %s: --env-file %s: %s\n", cli->command, path, strerror(errno));
		cli->status = CLI_EXIT_ERROR;
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0;
	while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		char *eq = strchr(p, '=');
		size_t nlen = eq ? (size_t)(eq - p) : strlen(p);
		if (!nlen || strcspn(p, " \t") < nlen || (!eq && p[strcspn(p, " \t")])) {
			fprintf(stderr, "imagebuild %s: --env-file %s: variable `%.*s` has white space\n",
				cli->command, path, (int)nlen, p);
			cli->status = CLI_EXIT_ERROR;
			rc = -1;
			break;
		}
		add_env(r, p);
	}
	free(line);
	fclose(f);
	return rc;
}

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
	for (size_t i = 0; i < r->nowned; i++)
		free((char *)r->owned[i]);
	free(r->owned);
	free(r->mounts);
	free(r->rlimits);
	free(r->env_files);
	free(r->cap_add);
	free(r->cap_drop);
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
       RO_HOSTNAME, RO_ENTRYPOINT, RO_RM, RO_NAME, RO_SNAPSHOTTER,
       RO_VOLUME, RO_MOUNT, RO_TMPFS, RO_ENV_FILE, RO_READ_ONLY, RO_CAP_ADD, RO_CAP_DROP, RO_ULIMIT,
       RO_INIT, RO_DETACH };
const cli_option cli_opts_run[] = {
	RUN_OPTS_COMMON,
	{ "hostname", 'h', 1, "NAME", "Container host name" },
	{ "entrypoint", 0, 1, "CMD", "Overwrite the default ENTRYPOINT of the image (\"\": none)" },
	{ "rm", 0, 0, NULL, "Automatically remove the container when it exits" },
	{ "name", 0, 1, "NAME", "Assign a name to the container" },
	{ "snapshotter", 0, 1, "NAME", "Snapshotter of the container (overlay, copy)" },
	{ "volume", 'v', 1, "SRC:DST[:OPTS]", "Bind mount a host path (absolute SRC) or a named volume (SRC a name, created when missing; OPTS ro, rw, nocopy); repeatable" },
	{ "mount", 0, 1, "type=bind|volume|tmpfs,...", "Attach a mount: type, source/src, target/dst, readonly, volume-nocopy, tmpfs-size, tmpfs-mode; repeatable" },
	{ "tmpfs", 0, 1, "DST[:OPTS]", "Mount a tmpfs (rw,noexec,nosuid,nodev unless OPTS say otherwise); repeatable" },
	{ "env-file", 0, 1, "FILE", "Read environment variables from a file (NAME=VALUE lines, # comments); repeatable" },
	{ "read-only", 0, 0, NULL, "Mount the container's root filesystem as read only" },
	{ "cap-add", 0, 1, "CAP", "Add a Linux capability (CAP[,CAP...]); repeatable" },
	{ "cap-drop", 0, 1, "CAP", "Drop a Linux capability (CAP[,CAP...], ALL); repeatable" },
	{ "ulimit", 0, 1, "NAME=SOFT[:HARD]", "Set a resource limit (nofile, nproc, ...; -1: unlimited); repeatable" },
	{ "init", 0, 0, NULL, "Run an init (catatonit or tini) as PID 1 that forwards signals and reaps processes" },
	{ "detach", 'd', 0, NULL, "Run the container in the background under a supervisor and print its ID" },
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
		case RO_VOLUME: if (parse_volume(cli, r, v) < 0) return -1; break;
		case RO_MOUNT: if (parse_mount(cli, r, v) < 0) return -1; break;
		case RO_TMPFS: if (parse_tmpfs(cli, r, v) < 0) return -1; break;
		case RO_ENV_FILE: cli_list_add(&r->env_files, &r->nenv_files, v); break;
		case RO_READ_ONLY: r->ro.readonly_rootfs = 1; break;
		case RO_CAP_ADD: add_caps(r, &r->cap_add, &r->ncap_add, v); break;
		case RO_CAP_DROP: add_caps(r, &r->cap_drop, &r->ncap_drop, v); break;
		case RO_ULIMIT: if (parse_ulimit(cli, r, v) < 0) return -1; break;
		case RO_INIT: r->ro.init = 1; break;
		case RO_DETACH: r->detach = 1; break;
		}
	}
	if (k == -2 || i >= argc)
		return -1;
	/* docker: --env-file first, -e after (and winning) */
	if (r->nenv_files) {
		const char **given = r->env;
		size_t ngiven = r->nenv;
		r->env = NULL;
		r->nenv = 0;
		int rc = 0;
		for (size_t f = 0; rc == 0 && f < r->nenv_files; f++)
			rc = read_env_file(cli, r, r->env_files[f]);
		for (size_t e = 0; e < ngiven; e++)
			cli_list_add(&r->env, &r->nenv, given[e]);
		free(given);
		if (rc < 0)
			return -1;
	}
	r->ro.mounts = r->mounts;
	r->ro.nmounts = r->nmounts;
	r->ro.rlimits = r->rlimits;
	r->ro.nrlimits = r->nrlimits;
	r->ro.cap_add = r->cap_add;
	r->ro.cap_drop = r->cap_drop;
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
	run_opts r = RUN_OPTS_INIT;
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
	if (r.detach && (r.interactive || r.tty || r.rm)) {
		fprintf(stderr, "imagebuild run: -d with %s is not supported\n",
			r.rm ? "--rm" : r.tty ? "-t" : "-i");
		status = CLI_EXIT_ERROR;
		goto out;
	}
	ib_container *c = NULL;
	int rc = ib_container_create(&c, store, image, &r.co);
	if (rc < 0) {
		status = cli_error("run");
		goto out;
	}
	if (r.detach) {
		/* the supervisor holds it from now on; its output goes to `logs` */
		r.ro.stdin_fd = r.ro.stdout_fd = r.ro.stderr_fd = -1;
		fflush(stdout);
		if (ib_container_start(c, &r.ro) < 0) {
			/* as docker run -d: 127 (not found) or 126 (not executable), as the container records it */
			ib_exit_status st = { 0, 0 };
			cli_fail("run");
			status = ib_container_wait(&st, c) == 0 && !st.signal && (st.code == 126 || st.code == 127)
					 ? st.code
					 : CLI_EXIT_ERROR;
			ib_error_clear();
		} else {
			printf("%s\n", ib_container_id(c));
			status = 0;
		}
		ib_container_free(c);
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
	run_opts r = RUN_OPTS_INIT;
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
		/* "running" only while something holds it: a killed supervisor or run recorded no exit */
		if (!strcmp(state, "running")) {
			ib_container *h = NULL;
			if (ib_container_open(&h, store, c->id) == 0 && ib_container_running(h) == 0)
				state = "exited (unknown)";
			ib_container_free(h);
		}
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
	int force = 0;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0)
		force = 1;
	if (k == -2 || i >= argc)
		return cli_usage(cli);
	ib_store *store = cli_store(cli);
	if (!store)
		return 1;
	for (; i < argc; i++) {
		/* -f: a running detached container is killed first, as docker rm -f */
		ib_container *c = NULL;
		if (force && ib_container_open(&c, store, argv[i]) == 0 && ib_container_running(c) == 1 &&
		    ib_container_stop(NULL, c, 0) < 0) {
			status = cli_fail(argv[i]);
			ib_container_free(c);
			continue;
		}
		ib_container_free(c);
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
