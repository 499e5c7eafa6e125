/*
 * custom-isolation: an isolation backend written outside the library, on
 * the public headers only (imagebuild.h and imagebuild/sys/). It logs
 * every process a build runs and hands it to a built-in backend
 * ("namespaces" unless --inner says otherwise); --fail MESSAGE makes it
 * refuse every run with that message, --fail-silently without one, to
 * show how a backend's errors reach the caller. Then it builds a
 * Dockerfile with it, as `imagebuild build` would:
 *
 *   custom-isolation [--inner NAME] [--fail MSG | --fail-silently] STORE CONTEXT [TAG]
 *
 * What a backend does, step by step:
 *   1. embed ib_isolation first in its own struct, start from
 *      IB_ISOLATION_INIT and fill in the operations (sys/isolation.h);
 *   2. report failures with ib_error_set_str() (sys/errors.h): the library
 *      adds its context ("[2/4] RUN ...: ") and ib_error_last() shows it;
 *   3. register a constructor under a name, choose it by that name in the
 *      options, unregister it when done (the registration's `param` is
 *      the caller's: the library never frees it).
 */
#include <imagebuild.h>
#include <imagebuild/sys/errors.h>
#include <imagebuild/sys/isolation.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the registration's param points at: the example's settings. */
typedef struct {
	const char *inner;      /* the built-in backend that does the work */
	const char *fail;       /* when set: refuse every run with this message */
	int fail_silently;      /* refuse every run without a message */
	int runs;               /* processes started, over every instance */
} logged_settings;

typedef struct {
	ib_isolation parent;    /* first, so an ib_isolation * is a logged_iso * */
	ib_isolation *inner;
	logged_settings *settings;
} logged_iso;

static int logged_probe(ib_isolation *self)
{
	logged_iso *l = (logged_iso *)self;
	return l->inner->probe ? l->inner->probe(l->inner) : 0;
}

static int logged_start(ib_isolation *self, ib_isolation_run **run, int *pid,
			ib_exit_status *status, const ib_isolation_spec *spec)
{
	logged_iso *l = (logged_iso *)self;
	if (l->settings->fail)
		return ib_error_set_str(IB_ERROR, "%s", l->settings->fail);
	if (l->settings->fail_silently)
		return IB_ERROR; /* the library names us: "... `logged`: start failed without a reason" */
	fprintf(stderr, "logged: run #%d as %u:%u in %s:", ++l->settings->runs, spec->uid,
		spec->gid, spec->cwd);
	for (size_t i = 0; spec->argv[i]; i++)
		fprintf(stderr, " [%s]", spec->argv[i]);
	fprintf(stderr, " (through `%s`)\n", l->settings->inner);
	/* the inner backend's run state is ours: we hand it back to it */
	return l->inner->start(l->inner, run, pid, status, spec);
}

static int logged_kill(ib_isolation *self, ib_isolation_run *run)
{
	logged_iso *l = (logged_iso *)self;
	fprintf(stderr, "logged: kill\n");
	return l->inner->kill ? l->inner->kill(l->inner, run) : 0;
}

static int logged_finish(ib_isolation *self, ib_isolation_run *run, int wstatus,
			 ib_exit_status *out)
{
	logged_iso *l = (logged_iso *)self;
	int rc = l->inner->finish(l->inner, run, wstatus, out);
	if (rc == 0)
		fprintf(stderr, "logged: exit code %d\n", out->code);
	return rc;
}

static void logged_free(ib_isolation *self)
{
	logged_iso *l = (logged_iso *)self;
	l->inner->free(l->inner);
	free(l);
}

static int logged_new(ib_isolation **out, const ib_execute_options *opts, void *param)
{
	logged_settings *settings = param;
	logged_iso *l = calloc(1, sizeof *l);
	if (!l)
		return ib_error_set_str(IB_ERROR, "out of memory");
	ib_isolation init = IB_ISOLATION_INIT;
	l->parent = init;
	l->parent.probe = logged_probe;
	l->parent.start = logged_start;
	l->parent.kill = logged_kill;
	l->parent.finish = logged_finish;
	l->parent.free = logged_free;
	l->settings = settings;
	/* the built-in backend, with the caller's options (runtime, tmp_dir) */
	int rc = ib_isolation_new(&l->inner, settings->inner, opts);
	if (rc < 0) {
		free(l);
		return rc; /* its error stays: it says why */
	}
	/* what the inner one can do beyond the basics (a privileged RUN), we can */
	l->parent.features = l->inner->version >= 2 ? l->inner->features : 0;
	*out = &l->parent;
	return 0;
}

static int on_progress(const ib_progress *p, void *payload)
{
	(void)payload;
	if (p->kind == IB_PROGRESS_STEP && !p->cached)
		printf("=> %s %s\n", p->id, p->text);
	else if (p->kind == IB_PROGRESS_STEP_DONE && p->cached)
		printf("=> CACHED %s %s\n", p->id, p->text);
	else if (p->kind == IB_PROGRESS_OUTPUT)
		printf("   %s\n", p->text);
	return 0;
}

int main(int argc, char **argv)
{
	logged_settings settings = { "namespaces", NULL, 0, 0 };
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--inner") && i + 1 < argc)
			settings.inner = argv[++i];
		else if (!strcmp(argv[i], "--fail") && i + 1 < argc)
			settings.fail = argv[++i];
		else if (!strcmp(argv[i], "--fail-silently"))
			settings.fail_silently = 1;
		else
			break;
	}
	if (argc - i < 2 || argc - i > 3) {
		fprintf(stderr, "usage: custom-isolation [--inner NAME] [--fail MSG | --fail-silently] "
			"STORE CONTEXT [TAG]\n");
		return 2;
	}
	const char *tags[] = { argc - i == 3 ? argv[i + 2] : NULL, NULL };

	ib_init();
	ib_store *store = NULL;
	ib_digest id;
	char hex[IB_DIGEST_STRLEN];
	int rc = ib_isolation_register("logged", logged_new, &settings);
	if (rc == 0)
		rc = ib_store_open(&store, argv[i], NULL);
	if (rc == 0) {
		ib_build_options o = IB_BUILD_OPTIONS_INIT;
		o.context = argv[i + 1];
		o.tags = tags[0] ? tags : NULL;
		o.isolation = "logged";
		o.pull = IB_PULL_NEVER;
		o.callbacks.progress = on_progress;
		rc = ib_build(&id, store, &o);
	}
	if (rc < 0) {
		fprintf(stderr, "custom-isolation: %s\n", ib_error_last()->message);
	} else {
		ib_digest_fmt(hex, &id);
		printf("%s\n", hex);
	}
	ib_store_free(store);
	ib_isolation_unregister("logged");
	ib_shutdown();
	return rc < 0 ? 1 : 0;
}
