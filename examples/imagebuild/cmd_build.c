/* imagebuild build: a Dockerfile and its context into an image. */
#include "common.h"
#include "progress.h"
#include "build_output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void log_line(ib_log_level level, const char *line, void *payload)
{
	(void)payload;
	fprintf(stderr, "%s%s\n", level == IB_LOG_WARNING ? "warning: " : "", line);
}

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			char *b2 = realloc(buf, cap *= 2);
			if (!b2) {
				free(buf);
				return NULL;
			}
			buf = b2;
		}
	}
	*len = n;
	return buf;
}

/* The options of build; the switch of cmd_build is on their index. */
const cli_option cli_opts_build[] = {
	{ "tag", 't', 1, "NAME", "Name and optionally a tag (name:tag); repeatable" },
	{ "file", 'f', 1, "FILE", "Name of the Dockerfile (default PATH/Dockerfile; - for stdin)" },
	{ "build-arg", 0, 1, "K[=V]", "Set a build-time variable (K alone: from the environment); repeatable" },
	{ "target", 0, 1, "STAGE", "Set the target build stage to build" },
	{ "no-cache", 0, 0, NULL, "Do not use cache when building the image" },
	{ "iidfile", 0, 1, "FILE", "Write the image ID to the file" },
	{ "isolation", 0, 1, "NAME", "Isolation backend of RUN (namespaces, oci, chroot)" },
	{ "snapshotter", 0, 1, "NAME", "Snapshotter of the build (overlay, copy)" },
	{ "dry-run", 0, 0, NULL, "Print the build plan, build nothing" },
	{ "network", 0, 1, "MODE", "Networking mode of RUN: default, host or none" },
	{ "platform", 0, 1, "OS/ARCH[,...]", "Set the target platforms (several: built at once, up to --jobs, into one image index); repeatable" },
	{ "quiet", 'q', 0, NULL, "Suppress the build output and print the image ID on success" },
	{ "pull", 0, 0, NULL, "Always attempt to pull a newer version of the base images" },
	{ "secret", 0, 1, "id=ID,src=FILE", "Secret to expose to the build; repeatable" },
	{ "check", 0, 0, NULL, "Run the build checks only, build nothing (exit 1 when one fires)" },
	{ "allow", 0, 1, "ENTITLEMENT", "Allow an extra privileged entitlement (network.host, security.insecure)" },
	{ "authfile", 0, 1, "FILE", "Credentials file for pulling base images (containers' auth.json)" },
	{ "progress", 0, 1, "TYPE", "Progress on stderr: auto, tty, plain, rawjson or quiet (auto: tty on a terminal, else plain)" },
	{ "label", 0, 1, "K=V", "Set a label of the image; repeatable" },
	{ "annotation", 0, 1, "[manifest:]K=V", "Add an annotation to the image manifest; repeatable" },
	{ "output", 'o', 1, "type=T,dest=D", "Output destination: type=oci|docker|tar|local|image, dest=PATH or - (PATH alone: local; - alone: tar)" },
	{ "build-context", 0, 1, "NAME=VALUE", "Additional named context: docker-image://REF, oci-layout://PATH[:TAG] or a directory (replaces the image or stage NAME); repeatable" },
	{ "metadata-file", 0, 1, "FILE", "Write the build result metadata (buildx's keys) to the file" },
	{ "add-host", 0, 1, "HOST:IP", "Add a custom host-to-IP mapping to RUN's /etc/hosts; repeatable" },
	{ "ulimit", 0, 1, "NAME=SOFT[:HARD]", "Resource limit of RUN (nofile=1024:2048); repeatable" },
	{ "shm-size", 0, 1, "BYTES", "Size of RUN's /dev/shm (64m; default 64m)" },
	{ "no-cache-filter", 0, 1, "STAGE[,STAGE]", "Do not use the cache for these stages; repeatable" },
	{ "jobs", 0, 1, "N", "Run up to N independent stages (and platforms of --platform A,B) at once (buildah bud --jobs; default: the online CPUs; 1: one after the other)" },
	{ "cache-from", 0, 1, "type=registry,ref=REF", "External cache source (a registry cache artifact or an image with inline cache, or type=local,src=DIR; its cache mounts restored); repeatable, in order" },
	{ "cache-to", 0, 1, "type=registry,ref=REF[,mode=min|max][,cache-mounts=ID,…|all]", "Cache export destination (a registry cache artifact, type=local,dest=DIR, or type=inline: in the image config; cache-mounts= also exports the contents of those cache mounts of RUN); repeatable" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_build(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_build;
	ib_build_options o = IB_BUILD_OPTIONS_INIT;
	ib_registry_options reg = IB_REGISTRY_OPTIONS_INIT;
	const char **tags = NULL, **args = NULL, **secrets = NULL, **allow = NULL;
	size_t ntags = 0, nargs = 0, nsecrets = 0, nallow = 0;
	const char *iidfile = NULL, *metadata_file = NULL;
	const char **labels = NULL, **annotations = NULL, **contexts = NULL, **hosts = NULL, **ulimits = NULL,
		   **nocache = NULL, **cache_from = NULL, **cache_to = NULL, **platforms = NULL;
	size_t nlabels = 0, nannotations = 0, ncontexts = 0, nhosts = 0, nulimits = 0, nnocache = 0, ncache_from = 0,
	       ncache_to = 0, nplatforms = 0;
	build_output output;
	int noutputs = 0;
	char *stdin_dir = NULL, *joined_file = NULL;
	memset(&output, 0, sizeof output);
	char *content = NULL;
	int dry_run = 0, quiet = 0, check = 0, i = 1, k, status = CLI_EXIT_ERROR;
	const char *v = NULL;
	cli_progress_mode progress_mode = CLI_PROGRESS_AUTO;

	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0) {
		switch (k) {
		case 0: cli_list_add(&tags, &ntags, v); break;
		case 1: o.dockerfile = v; break;
		case 2: {
			char *kv = cli_kv_from_env(v);
			if (kv)
				cli_list_add(&args, &nargs, kv);
			break;
		}
		case 3: o.target = v; break;
		case 4: o.no_cache = 1; break;
		case 5: iidfile = v; break;
		case 6: o.isolation = v; break;
		case 7: o.snapshotter = v; break;
		case 8: dry_run = 1; break;
		case 9:
			if (!strcmp(v, "none"))
				o.network = IB_NETWORK_NONE;
			else if (!strcmp(v, "host")) /* as buildx: --network=host grants network.host */
				cli_list_add(&allow, &nallow, strdup("network.host"));
			else if (strcmp(v, "host") && strcmp(v, "default")) {
				fprintf(stderr, "imagebuild build: --network must be host or none\n");
				goto out;
			}
			break;
		case 10: cli_list_add(&platforms, &nplatforms, v); break;
		case 11: quiet = 1; break;
		case 12: o.pull = IB_PULL_ALWAYS; break;
		case 13: cli_list_add(&secrets, &nsecrets, v); break;
		case 14: check = 1; break;
		case 15: {
			/* as docker buildx build --allow: repeatable, or comma-separated */
			char *copy = strdup(v), *save = NULL;
			for (char *e = copy ? strtok_r(copy, ",", &save) : NULL; e; e = strtok_r(NULL, ",", &save))
				cli_list_add(&allow, &nallow, strdup(e));
			free(copy);
			break;
		}
		case 16: reg.auth_file = v; o.registry = &reg; break;
		case 17:
			if (cli_progress_parse("build", v, &progress_mode) < 0)
				goto out; /* status: CLI_EXIT_ERROR */
			break;
		case 18: cli_list_add(&labels, &nlabels, v); break;
		case 19: cli_list_add(&annotations, &nannotations, v); break;
		case 20:
			if (noutputs++) {
				fprintf(stderr, "imagebuild build: only one --output is supported\n");
				goto out;
			}
			if (build_output_parse(&output, v) < 0)
				goto out;
			break;
		case 21: cli_list_add(&contexts, &ncontexts, v); break;
		case 22: metadata_file = v; break;
		case 23: cli_list_add(&hosts, &nhosts, v); break;
		case 24: cli_list_add(&ulimits, &nulimits, v); break;
		case 25:
			if (build_parse_bytes(&o.shm_size, v) < 0 || o.shm_size <= 0) {
				fprintf(stderr, "imagebuild build: --shm-size %s: invalid size\n", v);
				goto out;
			}
			break;
		case 26: {
			/* as buildx: repeatable, or comma-separated */
			char *copy = strdup(v), *save = NULL;
			for (char *e = copy ? strtok_r(copy, ",", &save) : NULL; e; e = strtok_r(NULL, ",", &save))
				cli_list_add(&nocache, &nnocache, strdup(e));
			free(copy);
			break;
		}
		case 27: {
			char *end = NULL;
			errno = 0;
			unsigned long n = strtoul(v, &end, 10);
			if (!*v || *v == '-' || *end || errno || n == 0 || n > 1024) {
				fprintf(stderr, "imagebuild build: --jobs %s: a number from 1 to 1024\n", v);
				goto out;
			}
			o.jobs = (unsigned int)n;
			break;
		}
		case 28: cli_list_add(&cache_from, &ncache_from, v); break;
		case 29: cli_list_add(&cache_to, &ncache_to, v); break;
		}
	}
	if (k == -2 || i != argc - 1) {
		status = cli_usage(cli);
		goto out;
	}
	o.context = argv[i];
	o.tags = tags;
	o.labels = labels;
	o.annotations = annotations;
	o.build_contexts = contexts;
	o.extra_hosts = hosts;
	o.ulimits = ulimits;
	o.no_cache_filter = nocache;
	o.cache_from = cache_from;
	o.cache_to = cache_to;
	o.platforms = platforms;
	/* where RUN of another platform looks for its emulator (tests point it at an empty directory) */
	o.binfmt_misc = getenv("IMAGEBUILD_BINFMT_MISC");
	size_t nplat = 0;
	for (size_t p = 0; p < nplatforms; p++)
		for (const char *c = platforms[p]; c; c = strchr(c, ','), c = c ? c + 1 : NULL)
			nplat++;
	if (nplat > 1 && (output.type == BUILD_OUTPUT_LOCAL || output.type == BUILD_OUTPUT_TAR)) {
		fprintf(stderr, "imagebuild build: --output type=local and type=tar of several platforms are not "
			"supported (one root filesystem per platform); use type=oci or type=image\n");
		goto out;
	}
	if (!strcmp(o.context, "-")) {
		/* docker build -: a Dockerfile (no context) or a context tar on stdin */
		if (o.dockerfile && !strcmp(o.dockerfile, "-")) {
			fprintf(stderr, "imagebuild build: the context and the Dockerfile cannot both come from stdin\n");
			goto out;
		}
		size_t n = 0;
		char *data = read_all(stdin, &n);
		if (!data) {
			fprintf(stderr, "imagebuild build: cannot read the context from stdin\n");
			goto out;
		}
		int src = build_stdin_context(&stdin_dir, &content, &o.dockerfile_len, data, n);
		free(data);
		if (src < 0)
			goto out;
		o.context = stdin_dir;
		if (content) {
			if (o.dockerfile) {
				fprintf(stderr, "imagebuild build: -f with a Dockerfile on stdin: there is no context to find it in\n");
				goto out;
			}
			o.dockerfile_content = content;
		} else if (o.dockerfile && o.dockerfile[0] != '/') {
			/* docker: -f names a file of the context tar */
			size_t l = strlen(stdin_dir) + strlen(o.dockerfile) + 2;
			if (!(joined_file = malloc(l)))
				goto out;
			snprintf(joined_file, l, "%s/%s", stdin_dir, o.dockerfile);
			o.dockerfile = joined_file;
		}
	}
	if (cli_source_date_epoch(&args, &nargs, &o.use_source_date_epoch, &o.source_date_epoch) < 0)
		goto out;
	o.build_args = args;
	o.secrets = secrets;
	o.allow = allow;
	if (o.dockerfile && !strcmp(o.dockerfile, "-")) {
		content = read_all(stdin, &o.dockerfile_len);
		if (!content) {
			fprintf(stderr, "imagebuild build: cannot read the Dockerfile from stdin\n");
			status = 1;
			goto out;
		}
		o.dockerfile_content = content;
		o.dockerfile = NULL;
	}
	int out_stdout = output.dest && !strcmp(output.dest, "-");
	if (out_stdout && isatty(1)) {
		fprintf(stderr, "imagebuild build: refusing to write the output to a terminal (redirect stdout)\n");
		goto out;
	}
	FILE *info = out_stdout ? stderr : stdout;
	ib_callbacks cb = IB_CALLBACKS_INIT;
	cb.log = log_line;
	cb.cancel = &cli_cancel; /* SIGINT/SIGTERM, caught below */
	o.callbacks = &cb;
	if (check) {
		/* as `docker build --check`: only the build checks; 1 when one fired */
		ib_checks *checks = NULL;
		if (ib_build_check(&checks, &o) < 0) {
			status = cli_fail("build");
			goto out;
		}
		size_t n = ib_checks_count(checks);
		const char *file = o.dockerfile ? o.dockerfile : o.dockerfile_content ? "-" : "Dockerfile";
		for (size_t w = 0; w < n; w++) {
			const ib_check_warning *cw = ib_checks_warning(checks, w);
			printf("WARNING: %s%s%s\n%s:%d: %s\n\n", cw->rule, cw->url ? " - " : "", cw->url ? cw->url : "",
			       file, cw->line, cw->message);
		}
		if (n)
			printf("%zu warning%s found\n", n, n == 1 ? "" : "s");
		else
			printf("Check complete, no warnings found.\n");
		ib_checks_free(checks);
		status = n ? 1 : 0;
		goto out;
	}
	if (dry_run) {
		ib_buf plan = IB_BUF_INIT;
		if (ib_build_plan_print(&plan, &o) < 0) {
			status = cli_fail("build");
		} else {
			fputs(plan.ptr, stdout);
			status = 0;
		}
		ib_buf_dispose(&plan);
		goto out;
	}
	ib_store *store = cli_store(cli);
	if (!store) {
		status = 1;
		goto out;
	}
	ib_digest id;
	cli_catch_signals();
	/* progress on stderr as BuildKit shows it; -q is --progress=quiet */
	if (quiet)
		progress_mode = CLI_PROGRESS_QUIET;
	cli_progress *prog = cli_progress_start(progress_mode, CLI_VIEW_BUILD, &cb);
	if (ib_build(&id, store, &o) < 0) {
		cli_progress_end(prog, 1);
		status = cli_cancel ? cli_cancelled_status(1) : cli_fail("build");
		goto out;
	}
	char hex[IB_DIGEST_STRLEN];
	ib_digest_fmt(hex, &id);
	if (output.type && build_output_write(store, &output, &id, tags, ntags) < 0) {
		cli_progress_end(prog, 1);
		status = 1;
		goto out;
	}
	if (metadata_file && build_metadata_write(metadata_file, store, &id, tags, ntags, &output) < 0) {
		cli_progress_end(prog, 1);
		status = 1;
		goto out;
	}
	cli_progress_exported(prog, hex, tags);
	cli_progress_end(prog, 0);
	if (quiet || progress_mode == CLI_PROGRESS_QUIET) {
		fprintf(info, "%s\n", hex);
	} else {
		fprintf(info, "Successfully built %.12s\n", hex + 7);
		for (size_t t = 0; t < ntags; t++)
			fprintf(info, "Successfully tagged %s\n", tags[t]);
	}
	if (iidfile) {
		FILE *f = fopen(iidfile, "w");
		if (!f || fprintf(f, "%s", hex) < 0 || fclose(f) != 0) {
			perror(iidfile);
			status = 1;
			goto out;
		}
	}
	status = 0;
out:
	build_output_dispose(&output);
	if (stdin_dir) {
		build_stdin_context_remove(stdin_dir);
		free(stdin_dir);
	}
	free(joined_file);
	free(labels);
	free(annotations);
	free(contexts);
	free(hosts);
	free(ulimits);
	free(cache_from);
	free(cache_to);
	for (size_t a = 0; a < nnocache; a++)
		free((char *)nocache[a]);
	free(nocache);
	free(platforms);
	free(tags);
	free(secrets);
	for (size_t a = 0; a < nallow; a++)
		free((char *)allow[a]);
	free(allow);
	for (size_t a = 0; a < nargs; a++)
		free((char *)args[a]);
	free(args);
	free(content);
	return status;
}
