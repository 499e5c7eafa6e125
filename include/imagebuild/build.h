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

/*
 * 2 added pull and registry, 3 cancel, 4 allow, 5 source_date_epoch; 6
 * made callbacks a pointer and moved cancellation into it (a new layout:
 * structs of versions 1 to 5 are still read with theirs); 7 labels,
 * annotations, build_contexts, extra_hosts, ulimits, shm_size,
 * no_cache_filter; 8 jobs, cache_from, cache_to, platforms, binfmt_misc
 */
#define IB_BUILD_OPTIONS_VERSION 8

/** When a build pulls the images it starts from (FROM, COPY --from, RUN --mount from=). */
typedef enum {
	IB_PULL_MISSING = 0, /* only those the store lacks (docker build) */
	IB_PULL_ALWAYS = 1,  /* every one, once per build (docker build --pull) */
	IB_PULL_NEVER = 2    /* none: a missing image is an error */
} ib_pull_policy;

/** What to build and how. Zero means default; NULL options are refused (a context is needed). */
typedef struct {
	unsigned int version;           /* IB_BUILD_OPTIONS_VERSION */
	/*
	 * The build context (required): a directory, or a git repository as
	 * ADD takes one (https://host/x.git#ref:subdir, git://..., with
	 * BuildKit's rules, see ADD), checked out for the build; with a git
	 * context `dockerfile` is a path inside the checkout. Other URLs are
	 * refused.
	 */
	const char *context;
	const char *dockerfile;         /* path of the Dockerfile; NULL: <context>/Dockerfile */
	const char *dockerfile_content; /* when not NULL, the Dockerfile itself (e.g. read from stdin) */
	/** The length of `dockerfile_content`. */
	size_t dockerfile_len;
	const char *const *tags;        /* NULL-terminated names to tag the result with */
	const char *const *build_args;  /* NULL-terminated "NAME=VALUE" */
	const char *target;             /* stage to build; NULL: the last */
	int no_cache;                   /* 1: run every step (results still fill the cache) */
	const char *isolation;          /* execute backend; NULL: "namespaces" */
	const char *snapshotter;        /* NULL: "overlay" where it works, else "copy" */
	const char *platform;           /* NULL: this host's */
	ib_network_mode network;        /* for RUN; IB_NETWORK_HOST by default */
	/*
	 * Progress (STEP/STEP_DONE for every step, cached ones included; BYTES
	 * for the context hashed, layers written and blobs pulled; OUTPUT of
	 * RUN), log lines, and cancellation (callbacks->cancel is polled
	 * between steps and every 20 ms while a RUN runs, whose processes are
	 * then killed). NULL: none. See common.h.
	 */
	const ib_callbacks *callbacks;
	/* version 2 */
	/** When to pull base images (version 2). */
	ib_pull_policy pull;
	const ib_registry_options *registry; /* credentials, TLS for pulls; NULL: the defaults */
	/*
	 * Secrets for RUN --mount=type=secret, NULL-terminated, as docker
	 * build --secret takes them: "id=NAME,src=PATH" (a file) or
	 * "id=NAME,env=VAR" (our environment). Never stored in a layer, a
	 * config or a cache key.
	 */
	const char *const *secrets;
	/* version 4 */
	/*
	 * BuildKit's entitlements the build grants, NULL-terminated (docker
	 * buildx build --allow): "security.insecure" lets `RUN
	 * --security=insecure` run privileged (see ib_process.privileged),
	 * "network.host" lets `RUN --network=host` run. Without them such a
	 * step is refused, naming its file and line. Another name is an error.
	 */
	const char *const *allow;
	/* version 5 (6 in this layout) */
	/*
	 * SOURCE_DATE_EPOCH, as BuildKit takes it: 1 makes every history entry
	 * and the image `created` source_date_epoch, and clamps the file times
	 * later than it in the layers the build writes (it is part of the
	 * cache keys). The library never reads the environment: the imagebuild
	 * CLI maps $SOURCE_DATE_EPOCH and --build-arg SOURCE_DATE_EPOCH here.
	 */
	int use_source_date_epoch;
	int64_t source_date_epoch;      /* seconds since 1970 (>= 0) */
	/* version 7 */
	/**
	 * Labels set on the built image's config, NULL-terminated "KEY=VALUE"
	 * (docker build --label), after the Dockerfile's LABELs, which they
	 * override; no history entry, as BuildKit (version 7).
	 */
	const char *const *labels;
	/**
	 * Annotations of the built image's manifest, NULL-terminated
	 * "KEY=VALUE" or "manifest:KEY=VALUE" (docker buildx build
	 * --annotation). The other types of buildx (index, manifest-descriptor,
	 * index-descriptor) and platform selectors are refused: a single-
	 * platform image in the store has no index of its own (version 7).
	 */
	const char *const *annotations;
	/**
	 * BuildKit's named contexts, NULL-terminated "NAME=VALUE" (docker
	 * buildx build --build-context): VALUE is `docker-image://REF` (the
	 * image REF is used wherever the Dockerfile names the image or stage
	 * NAME: FROM, COPY --from, RUN --mount from=), or
	 * `oci-layout://PATH[:TAG|@DIGEST]` (the image of that OCI layout
	 * directory whose ref.name is TAG, default "latest", or of DIGEST; an
	 * index gives this host's; copied into the store untagged), or
	 * a local directory (its files, .dockerignore applied and owned by
	 * 0:0 as buildx sends them, as an image of one layer with BuildKit's
	 * empty config: for COPY --from, or as a base). NAME is matched as
	 * BuildKit does: the familiar form of an image name without ":latest"
	 * ("alpine", "alpine:3.20", "ghcr.io/o/r"), or a stage name, whose
	 * instructions are then not run; "NAME::os/arch" only for this host's
	 * platform. Git and URL contexts are refused for now (version 7).
	 */
	const char *const *build_contexts;
	/**
	 * Extra lines of /etc/hosts for RUN, NULL-terminated "HOST:IP" or
	 * "HOST=IP" (docker build --add-host), appended to BuildKit's default
	 * file as "IP\tHOST" (version 7).
	 */
	const char *const *extra_hosts;
	/**
	 * Resource limits for RUN, NULL-terminated docker `--ulimit` values:
	 * "NAME=SOFT[:HARD]" (NAME: core, cpu, data, fsize, locks, memlock,
	 * msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending,
	 * stack; -1: unlimited) (version 7).
	 */
	const char *const *ulimits;
	/**
	 * Size in bytes of RUN's /dev/shm (docker build --shm-size): as
	 * BuildKit, a tmpfs of that size mounted there; 0: the default 64 MiB
	 * (version 7).
	 */
	int64_t shm_size;
	/**
	 * Stages whose steps do not use the build cache, NULL-terminated stage
	 * names (docker build --no-cache-filter), matched case-insensitively
	 * with the AS names as BuildKit does (a name no stage has changes
	 * nothing); their results still fill the cache (version 7).
	 */
	const char *const *no_cache_filter;
	/* version 8 */
	/**
	 * How many stages may run at once (docker buildx has no such flag;
	 * BuildKit runs every independent vertex at once): independent stages
	 * of a multi-stage build (neither needs the other through FROM, COPY
	 * --from or RUN --mount from=) then run in threads of the build, each
	 * with its own store and snapshotter handles. 1: one stage after the
	 * other, in the plan's order, as before; 0: the number of online CPUs.
	 * The image is the same whatever the value. The platforms of
	 * `platforms` run at once under the same bound (each its own build,
	 * whose stages are bounded by it again). Callbacks still run on the
	 * calling thread, one at a time, in the order each stage reports
	 * (STEP numbers in the order steps start); a failing stage stops the
	 * others (their processes killed, their snapshots removed) and the
	 * build returns the first error (version 8).
	 */
	unsigned int jobs;
	/**
	 * Where the build looks for cached steps its store lacks,
	 * NULL-terminated, in order, as docker buildx build --cache-from takes
	 * them: "type=registry,ref=REGISTRY/REPOSITORY:TAG", or the bare
	 * reference (a cache artifact, or an image whose config holds inline
	 * cache records: cache_to "type=inline"), or "type=local,src=DIR" (an
	 * OCI layout). A step found
	 * there is CACHED: its config and the layers the store lacks are
	 * fetched, each verified against its digest and diff_id before the
	 * record is trusted (docs/cache.md). The artifact's cache mounts
	 * (cache_to's cache-mounts=) become the store's when it has none of
	 * that id: verified before they are unpacked. A missing or unreadable
	 * artifact is a warning; other types (gha, s3) and keys are refused
	 * (version 8).
	 */
	const char *const *cache_from;
	/**
	 * Where the build writes the cache records of its steps after it
	 * succeeds, NULL-terminated, as docker buildx build --cache-to:
	 * "type=registry,ref=REGISTRY/REPOSITORY:TAG[,mode=min|max]" (min, the
	 * default: the steps of the result's stages; max: every step), or
	 * "type=local,dest=DIR[,mode=…]" (an OCI layout). The records are
	 * merged with what the tag holds (docs/cache.md). A ",cache-mounts=ID,…"
	 * (or "all") exports the contents of those RUN --mount=type=cache
	 * mounts too (by id; an id no RUN of the build has is an error), which
	 * a cache_from restores into a store that lacks them. "type=inline"
	 * puts the records of the result (mode=min) into the image's own
	 * config instead (so into its id, as BuildKit's inline cache). Other
	 * types and keys are refused (version 8).
	 */
	const char *const *cache_to;
	/**
	 * The platforms to build, NULL-terminated "os/arch[/variant]" (docker
	 * buildx build --platform A,B): with more than one, each is built, at
	 * once (at most `jobs` at a time, each platform's build in a thread
	 * with its own store handle; one after another with cache_from/cache_to
	 * or jobs 1: the images are the same), step labels naming the platform
	 * as BuildKit's ("[linux/amd64->arm64 build 2/3]"), log lines prefixed
	 * "[linux/arm64] "; a failing platform cancels the others, its error
	 * names it and no image of the build stays. The result is an OCI image
	 * index with one manifest
	 * per platform, which the tags name and `image_id` is then the digest
	 * of. One platform is as `platform`; NULL or empty: `platform`. FROM
	 * resolves each stage's platform (FROM --platform, else the target's)
	 * from an index, never taking a local image of another platform; RUN of
	 * a platform this host cannot run goes through a binfmt_misc emulator
	 * registered with the F flag (qemu-user-static), and fails naming the
	 * missing one when there is none (version 8).
	 */
	const char *const *platforms;
	/**
	 * Where the binfmt_misc registrations are read to find an emulator for
	 * RUN of another platform; NULL: /proc/sys/fs/binfmt_misc (version 8).
	 */
	const char *binfmt_misc;
} ib_build_options;

#define IB_BUILD_OPTIONS_INIT { IB_BUILD_OPTIONS_VERSION, NULL, NULL, NULL, 0, NULL, NULL, \
		NULL, 0, NULL, NULL, NULL, IB_NETWORK_HOST, NULL, IB_PULL_MISSING, NULL, NULL, NULL, 0, 0, \
		NULL, NULL, NULL, NULL, NULL, 0, NULL, 0, NULL, NULL, NULL, NULL }

/**
 * Initialise for `version` (1 to 8; 1 to 5 in their own layout, only that
 * version's size written): what IB_BUILD_OPTIONS_INIT gives, for bindings.
 */
IB_EXTERN(int) ib_build_options_init(ib_build_options *opts, unsigned int version);

/**
 * Build. On success `image_id` (may be NULL) is the new image's id (its
 * config digest) and every tag names it. A failing step stops the build:
 * the error names the step, the instruction, and for RUN the exit code and
 * the last lines of its output; nothing is tagged, and the cache entries
 * of the steps that succeeded stay valid. Cancelled (callbacks->cancel),
 * it returns IB_EUSER; stopped by a callback, that callback's value; in
 * both cases no process, mount or snapshot of the build remains.
 */
IB_EXTERN(int) ib_build(ib_digest *image_id, ib_store *store, const ib_build_options *opts);

/**
 * Parse and plan without running anything, and run only the build checks
 * (`build --check`, see ib_checks_run() in plan.h): *out is the caller's
 * (ib_checks_free). Warnings are not logged and `# check=error=true` does
 * not fail it; a Dockerfile that does not parse or plan does.
 */
IB_EXTERN(int) ib_build_check(ib_checks **out, const ib_build_options *opts);

/** Parse and plan without running anything: the plan in `out` (`--dry-run`). */
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
