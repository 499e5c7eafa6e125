/*
 * build.h: the orchestrator. Builds a Dockerfile and its context into an
 * image in the store: plans the stages, walks the steps, asks the build
 * cache, runs RUN through the execute layer on snapshots, writes COPY/ADD
 * itself, commits every layer to the store, and reports progress.
 */
#ifndef IMAGEBUILD_BUILD_H
#define IMAGEBUILD_BUILD_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"
#include "digest.h"
#include "parse.h"
#include "plan.h"
#include "execute.h"
#include "snapshot.h"
#include "store.h"
#include "push.h"

IB_BEGIN_DECL

/* 2 added pull and registry, 3 cancel */
#define IB_BUILD_OPTIONS_VERSION 3

/** When a build pulls the images it starts from (FROM, COPY --from, RUN --mount from=). */
typedef enum {
	IB_PULL_MISSING = 0, /* only those the store lacks (docker build) */
	IB_PULL_ALWAYS = 1,  /* every one, once per build (docker build --pull) */
	IB_PULL_NEVER = 2    /* none: a missing image is an error */
} ib_pull_policy;

/** What to build and how. Zero means default; NULL options are refused (a context is needed). */
typedef struct {
	unsigned int version;           /* IB_BUILD_OPTIONS_VERSION */
	const char *context;            /* the build context directory (required) */
	const char *dockerfile;         /* path of the Dockerfile; NULL: <context>/Dockerfile */
	const char *dockerfile_content; /* when not NULL, the Dockerfile itself (e.g. read from stdin) */
	size_t dockerfile_len;
	const char *const *tags;        /* NULL-terminated names to tag the result with */
	const char *const *build_args;  /* NULL-terminated "NAME=VALUE" */
	const char *target;             /* stage to build; NULL: the last */
	int no_cache;                   /* 1: run every step (results still fill the cache) */
	const char *isolation;          /* execute backend; NULL: "namespaces" */
	const char *snapshotter;        /* NULL: "overlay" where it works, else "copy" */
	const char *platform;           /* NULL: this host's */
	ib_network_mode network;        /* for RUN; IB_NETWORK_HOST by default */
	ib_callbacks callbacks;         /* progress (steps, CACHED, RUN output) and log lines */
	/* version 2 */
	ib_pull_policy pull;
	const ib_registry_options *registry; /* credentials, TLS for pulls; NULL: the defaults */
	/*
	 * Secrets for RUN --mount=type=secret, NULL-terminated, as docker
	 * build --secret takes them: "id=NAME,src=PATH" (a file) or
	 * "id=NAME,env=VAR" (our environment). Never stored in a layer, a
	 * config or a cache key.
	 */
	const char *const *secrets;
	/* version 3 */
	/*
	 * Cancellation (e.g. set by a SIGINT handler or another thread):
	 * checked between steps and, every 50 ms, while a RUN runs (its
	 * processes are then killed). The build stops, removes its snapshots
	 * and returns IB_EUSER. NULL: only the progress callback cancels.
	 */
	const volatile int *cancel;
} ib_build_options;

#define IB_BUILD_OPTIONS_INIT { IB_BUILD_OPTIONS_VERSION, NULL, NULL, NULL, 0, NULL, NULL, \
		NULL, 0, NULL, NULL, NULL, IB_NETWORK_HOST, IB_CALLBACKS_INIT, IB_PULL_MISSING, NULL, NULL, NULL }

/** Initialise for `version` (1 to 3): what IB_BUILD_OPTIONS_INIT gives, for bindings. */
IB_EXTERN(int) ib_build_options_init(ib_build_options *opts, unsigned int version);

/**
 * Build. On success `image_id` (may be NULL) is the new image's id (its
 * config digest) and every tag names it. A failing step stops the build:
 * the error names the step, the instruction, and for RUN the exit code and
 * the last lines of its output; nothing is tagged, and the cache entries
 * of the steps that succeeded stay valid.
 */
IB_EXTERN(int) ib_build(ib_digest *image_id, ib_store *store, const ib_build_options *opts);

/**
 * Parse and plan without running anything, and run only the build checks
 * (`build --check`, see ib_checks_run() in plan.h): *out is the caller's
 * (ib_checks_free). Warnings are not logged and `# check=error=true` does
 * not fail it; a Dockerfile that does not parse or plan does.
 */
IB_EXTERN(int) ib_build_check(ib_checks **out, const ib_build_options *opts);

/** Parse and plan without running anything: append the plan to `out` (`--dry-run`). */
IB_EXTERN(int) ib_build_plan_print(ib_buf *out, const ib_build_options *opts);

/**
 * Free what no image, container or cache entry needs any more: unreferenced
 * blobs in the store (and temporary files of killed writers) and, for
 * every snapshotter, unpacked layers whose blob GC removed (no image,
 * container or cache entry uses them), and the snapshots and mounts killed processes left (a container's
 * snapshot is unmounted, not removed, and its record no longer says
 * running). Safe beside builds and runs in other threads and processes:
 * what they stand on or are preparing stays. `freed_blobs`/`freed_snapshots`
 * may be NULL.
 */
IB_EXTERN(int) ib_prune(size_t *freed_blobs, size_t *freed_snapshots, ib_store *store);

IB_END_DECL

#endif
